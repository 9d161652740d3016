"""Demucs v4 (HTDemucs) stem separation behind the common backend interface.

    backend = separation.get("demucs", model="htdemucs")
    sources = backend.separate(mono, progress=cb, cancel=event)   # drums, bass, other, vocals

The work is demucs' own: weights load through its repository classes (see
:mod:`separation.demucs_weights`) and the audio goes through ``demucs.apply.apply_model``, which
cuts long recordings into overlapping segments and cross-fades them. Its per-segment callback
drives progress (stage "separate": segments done of the total, with the time left in the
message) and cancellation (checked before each segment starts, so a cancel takes effect within
one segment). Like ``demucs.api.Separator``, the mix is normalized by its mean and standard
deviation before the model and the stems are scaled back after.

Mono input is duplicated to the model's two channels and each stem is averaged back to mono.
Whatever the model leaves out (input minus the sum of its stems) is added to "other" (or becomes
a "residual" source for a model without "other"), so the stems always sum to the input.

Results are kept in the on-disk :class:`separation.stem_cache.StemCache`, keyed by the audio, the
model's signature and the settings that change the output; a cache hit loads no model.
"""
from __future__ import annotations

import math
import os
import random
import threading
import time
from collections import OrderedDict
from typing import Optional

import numpy as np

from core.errors import ParameterError
from core.progress import ProgressFn, check_cancel, report

from . import demucs_weights as weights
from .base import Source, colour_for, register
from .demucs_weights import MODELS, ModelUnavailable
from .stem_cache import StemCache
import importlib.util
from core import lazy
apply = lazy.module("demucs.apply")
torch = lazy.module("torch")

__all__ = ["DemucsBackend", "ModelUnavailable", "MODELS", "SAMPLE_RATE"]

SAMPLE_RATE = 44100
_MODEL_SLOTS = 2               # loaded models kept in memory per process
_loaded: "OrderedDict[str, object]" = OrderedDict()
_loaded_lock = threading.Lock()


def _usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class DemucsBackend:
    """Stem separation with a pretrained Demucs model (a facade like ``demucs.api.Separator``).

    Settings (keyword-only):
    model: "htdemucs" (default), "htdemucs_6s" (adds guitar and piano), "htdemucs_ft" (best, ~4x
        slower), or any model name a ``models_dir`` holds.
    models_dir: folder of model files (default ``$SOUNDSTAGE_DEMUCS_MODELS``; else the download
        caches, else a download).
    device: "auto" (CUDA when available), "cpu" or "cuda".
    shifts: random time shifts averaged (demucs' shift trick; 0 disables). Shifts are drawn from
        a generator seeded with ``seed``, so a result can be made again exactly.
    overlap: overlap between segments (0 to < 1). segment: segment length in seconds (at most the
        model's own, 7.8 s for HTDemucs; None uses the model's).
    jobs: segments processed in parallel on CPU (demucs' ``num_workers``; 0 = one at a time).
    threads: torch threads on CPU (default: the usable CPU count).
    cache: keep stems in the on-disk stem cache. cache_dir: its folder (default
        ``$SOUNDSTAGE_CACHE_DIR`` or the user cache directory); cache_max_bytes: its size limit
        (default ``$SOUNDSTAGE_CACHE_MAX_MB`` or 4 GiB).
    """

    name = "demucs"

    def __init__(self, *, model: str = "htdemucs", models_dir=None, device: str = "auto", shifts: int = 1,
                 overlap: float = 0.25, segment: Optional[float] = None, jobs: int = 0,
                 threads: Optional[int] = None, cache: bool = True, cache_dir=None,
                 cache_max_bytes: Optional[int] = None, seed: int = 0):
        if not isinstance(model, str) or not model:
            raise ParameterError(f"model must be a model name, got {model!r}")
        if device not in ("auto", "cpu", "cuda") and not str(device).startswith("cuda:"):
            raise ParameterError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
        if int(shifts) != shifts or shifts < 0:
            raise ParameterError(f"shifts must be an integer >= 0, got {shifts!r}")
        if not 0 <= overlap < 1:
            raise ParameterError(f"overlap must be in [0, 1), got {overlap!r}")
        if segment is not None and not segment > 0:
            raise ParameterError(f"segment must be a positive number of seconds, got {segment!r}")
        if int(jobs) != jobs or jobs < 0:
            raise ParameterError(f"jobs must be an integer >= 0, got {jobs!r}")
        if threads is not None and (int(threads) != threads or threads < 1):
            raise ParameterError(f"threads must be an integer >= 1, got {threads!r}")
        self.model_name = model
        self.models_dir = models_dir
        self.device = device
        self.shifts = int(shifts)
        self.overlap = float(overlap)
        self.segment = None if segment is None else float(segment)
        self.jobs = int(jobs)
        self.threads = int(threads) if threads is not None else _usable_cpus()
        self.seed = int(seed)
        self.cache = StemCache(cache_dir, max_bytes=cache_max_bytes) if cache else None
        self._source: Optional[weights.ModelSource] = None
        self.last_from_cache = False

    # -- model ----------------------------------------------------------------------------------
    def model_source(self) -> weights.ModelSource:
        """Where the weights come from and their signature (cheap: reads no weights)."""
        if self._source is None:
            self._source = weights.locate(self.model_name, self.models_dir)
        return self._source

    def load_model(self, *, progress: Optional[ProgressFn] = None, cancel=None):
        """The demucs model (loaded once per process and signature; downloads if it must)."""
        src = self.model_source()
        key = f"{src.kind}:{src.folder}:{src.signature}"
        with _loaded_lock:
            if key in _loaded:
                _loaded.move_to_end(key)
                return _loaded[key]
        report(progress, "load", 0, 1, src.describe())
        model = weights.load(src, progress=progress, cancel=cancel)
        report(progress, "load", 1, 1, src.describe())
        with _loaded_lock:
            _loaded[key] = model
            while len(_loaded) > _MODEL_SLOTS:
                _loaded.popitem(last=False)
        return model

    def _torch_device(self):
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ParameterError("device 'cuda' was chosen but torch sees no CUDA GPU; use --device cpu or auto")
        return torch.device(self.device)

    def _settings(self) -> dict:
        # What changes the output (the cache key); device and threads only change float rounding.
        return {"shifts": self.shifts, "overlap": self.overlap, "segment": self.segment,
                "seed": self.seed if self.shifts else None, "mono": "dup2-mean", "norm": "api"}

    # -- separation -----------------------------------------------------------------------------
    def separate(self, audio: np.ndarray, *, progress: Optional[ProgressFn] = None,
                 cancel: Optional[threading.Event] = None) -> list[Source]:
        """Separate mono ``audio`` [shape=(n,), float32, 44.1 kHz] into the model's stems
        (mono, [shape=(n,)] each, summing to ``audio``)."""
        x = np.asarray(audio)
        if x.ndim != 1:
            raise ParameterError(f"audio must be mono [shape=(n,)], got shape {x.shape}")
        if x.size == 0:
            raise ParameterError("audio is empty")
        x = np.ascontiguousarray(x, dtype=np.float32)
        if not np.isfinite(x).all():
            raise ParameterError("audio contains NaN or infinite samples")
        check_cancel(cancel)
        src = self.model_source()
        key = None
        self.last_from_cache = False
        if self.cache is not None:
            key = self.cache.key(StemCache.content_hash(x, SAMPLE_RATE), self.name, src.signature, self._settings())
            hit = self.cache.load(key)
            if hit is not None and all(len(s.audio) == len(x) for s in hit):
                self.last_from_cache = True
                report(progress, "separate", 1, 1, "from the stem cache")
                return hit
        model = self.load_model(progress=progress, cancel=cancel)
        names = list(model.sources)
        stems = self.run_model(model, x, progress=progress, cancel=cancel)
        sources = self._to_sources(x, names, stems, src)
        if self.cache is not None:
            try:
                self.cache.store(key, sources, meta={"backend": self.name, "model": self.model_name,
                                                     "signature": src.signature, "seconds": len(x) / SAMPLE_RATE})
            except OSError:
                pass  # a full or read-only cache never fails a separation
        return sources

    def run_model(self, model, x: np.ndarray, *, progress: Optional[ProgressFn] = None,
                  cancel: Optional[threading.Event] = None) -> np.ndarray:
        """demucs ``apply_model`` on mono ``x`` duplicated to stereo, normalized as
        ``demucs.api.Separator`` does; returns mono stems [shape=(sources, n), float32]."""

        device = self._torch_device()
        subs = list(model.models) if isinstance(model, apply.BagOfModels) else [model]
        model_segment = min(float(m.segment) for m in subs)
        if isinstance(model, apply.BagOfModels):
            model_segment = min(model_segment, model.max_allowed_segment)
        if self.segment is not None and self.segment > model_segment + 1e-9:
            raise ParameterError(f"segment {self.segment:g} s is longer than the model allows ({model_segment:g} s)")
        segment = self.segment or model_segment             # for the progress count only
        n = len(x)
        mono = torch.from_numpy(x)
        mean = float(mono.mean())
        std = float(mono.std()) + 1e-8 if n > 1 else 1.0
        mix = ((mono - mean) / std).expand(2, n)[None].contiguous()   # (1, 2, n): mono duplicated

        stride = int((1 - self.overlap) * int(SAMPLE_RATE * segment)) or 1
        if self.shifts:
            # apply_model shifts each pass by random.randint(0, max_shift) drawn from `random`,
            # seeded below: replay the draws to count the segments of every pass exactly.
            max_shift, draws = int(0.5 * SAMPLE_RATE), random.Random(self.seed)
            total = sum(math.ceil((n + max_shift - draws.randint(0, max_shift)) / stride)
                        for _ in subs for _ in range(self.shifts))
        else:
            total = len(subs) * math.ceil(n / stride)
        state = {"done": 0, "t0": None}

        def callback(d: dict) -> None:
            if d.get("state") == "start":
                check_cancel(cancel)
                if state["t0"] is None:
                    state["t0"] = time.monotonic()
                return
            state["done"] += 1
            done = min(state["done"], total - 1)
            elapsed = time.monotonic() - state["t0"]
            left = elapsed / done * (total - done) if done else float("nan")
            msg = f"segment {done}/{total}" + (f", {left:.0f} s left" if done else "")
            report(progress, "separate", done, total, msg)

        report(progress, "separate", 0, total, f"segment 0/{total}")
        prev_threads = torch.get_num_threads()
        rng_state = random.getstate()
        try:
            if device.type == "cpu":
                torch.set_num_threads(self.threads)
            random.seed(self.seed)   # apply_model draws its shifts from `random`
            with torch.no_grad():
                out = apply.apply_model(model, mix, shifts=self.shifts, split=True, overlap=self.overlap,
                                  progress=False, device=device, num_workers=self.jobs if device.type == "cpu" else 0,
                                  segment=self.segment, callback=callback)
                del mix
                stems = out[0].mean(dim=1)                   # (sources, n): each stem back to mono
                del out
                stems.mul_(std).add_(mean)
        finally:
            random.setstate(rng_state)
            torch.set_num_threads(prev_threads)
        report(progress, "separate", total, total, "done")
        return stems.numpy().astype(np.float32, copy=False)

    def _to_sources(self, x: np.ndarray, names: list, stems: np.ndarray, src) -> list[Source]:
        residual = x.astype(np.float64) - stems.sum(axis=0, dtype=np.float64)
        meta = {"model": self.model_name, "signature": src.signature}
        if "other" in names:
            i = names.index("other")
            stems[i] += residual.astype(np.float32)
            extra = []
        else:
            extra = [residual.astype(np.float32)]
        residual_db = 10 * math.log10(max(float(np.mean(residual ** 2)), 1e-20) /
                                      max(float(np.mean(x.astype(np.float64) ** 2)), 1e-20))
        del residual
        sources = [Source(name=nm, audio=stems[i], colour=colour_for(i), kind="stem",
                          meta=dict(meta, residual_db=residual_db) if nm == "other" else dict(meta))
                   for i, nm in enumerate(names)]
        if extra:
            sources.append(Source(name="residual", audio=extra[0], colour="#9A9A9A", kind="residual",
                                  meta=dict(meta, residual_db=residual_db)))
        return sources


def _available() -> tuple[bool, str]:
    if importlib.util.find_spec("demucs") is None or importlib.util.find_spec("torch") is None:
        return False, "the demucs package is not installed (pip install demucs)"
    return True, ""


register("demucs", label="Demucs stems",
         description="Demucs v4 neural stem separation (drums, bass, other, vocals; 6-stem model adds guitar, "
                     "piano). Needs model weights: downloaded on first use or from a model folder.",
         factory=DemucsBackend, available=_available)
