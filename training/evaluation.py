"""The paper's objective evaluation (Serrà et al. 2023, Sec. 4.2, Table 1) on real stereo excerpts.

For every excerpt (``seconds`` from the middle of each track of ``split``): the mono downmix
``(L + R) / 2`` goes to every registered model, K renditions each with seeds ``0 .. K-1``, and the
predictions are compared with the PS parameters of the real stereo (:mod:`training.ps_metrics`):

* ``E_min``: per excerpt the smallest per-element mean error over the K renditions, averaged
  over excerpts.
* ``D_F``: Fréchet distance between the pool of real frames and the K times larger pool of
  generated frames. Deterministic models (``generative = False``) are run once and counted K
  times, which is what K identical renditions would give.
* "Stereo" (the real parameters themselves): ``E_min`` is 0 by definition. Its ``D_F`` is the
  floor a perfect generator would reach: the distance between the real pool and the real frames
  of a *different* ``seconds`` of the same tracks (the excerpt right after the evaluation excerpt,
  or before it when the track ends too soon), i.e. real stereo of the same music that is not the
  reference itself. Excerpts without that neighbour (given directly) fall back to the distance
  between the even- and the odd-numbered excerpts.
* "PS roundtrip": the real parameters decoded onto the mono downmix by the PS decoder and
  analysed again: what the decoder itself loses (transients forced coherent, leakage between
  bands), a floor for any model whose parameters go through the decoder.

Tracks of ``split`` whose file also occurs in another split of the manifest are left out (the
fetched data links some game tracks into several folders, across splits): a model trained on
the ``train`` split has seen them.

Slow models (``ps-ar``) run on the first ``ar_excerpts`` excerpts only; their D_F compares with
the real frames of those excerpts and is marked in the table.
"""
from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from core.decoder import decode
from core.errors import Cancelled, ParameterError
from core.progress import ProgressFn, check_cancel, report
from core.ps import PSParams, analyze
from core.stft import n_frames

from .datahash import copies_of
from .dataset import default_data_dir, load_excerpt, tracks
from .ps_metrics import GaussianStats, d_f, rendition_error
from core.models.base import list_models, load_model, models_dir

__all__ = ["Row", "EvalResult", "Excerpt", "load_excerpts", "evaluate", "format_table", "MODEL_ORDER",
           "SLOW_MODELS"]

MODEL_ORDER = ("mono", "decorr", "ps-reg", "ps-ar", "ps-nn", "ps-mtm")  # the paper's table order
SLOW_MODELS = ("ps-ar",)
SR = 44100


@dataclass
class Excerpt:
    name: str
    mono: np.ndarray       # [shape=(n,)]
    real: PSParams         # [shape=(34, n_frames(n))]
    other: Optional[PSParams] = None   # real parameters of another stretch of the same track
    stereo: Optional[np.ndarray] = None   # the real stereo [shape=(n, 2)] (``keep_stereo``)
    other_stereo: Optional[np.ndarray] = None   # the real stereo of ``other`` (``keep_stereo``)
    track: str = ""        # the track it comes from (excerpts of one track share it)


@dataclass
class Row:
    name: str
    label: str
    e_min: float
    d_f: float
    rtf: Optional[float]
    excerpts: int
    renditions: int
    note: str = ""
    e_min_se: Optional[float] = None   # standard error of E_min over excerpts


@dataclass
class EvalResult:
    split: str
    seconds: float
    k: int
    excerpts: int
    rows: list[Row] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)   # tracks left out: copies in other splits
    wall_seconds: float = 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["skipped"] = [list(s) for s in self.skipped]
        return d

    def row(self, name: str) -> Optional[Row]:
        return next((r for r in self.rows if r.name == name), None)


def load_excerpts(data=None, split: str = "valid", seconds: float = 10.0, limit: Optional[int] = None,
                  *, per_track: int = 1, every: int = 1, include_copies: bool = False,
                  excluded: Optional[list] = None,
                  keep_stereo: bool = False, progress: Optional[ProgressFn] = None,
                  cancel: Optional[threading.Event] = None) -> list[Excerpt]:
    """One ``seconds`` excerpt from the middle of each track of ``split`` (as
    :func:`training.dataset.eval_excerpts`) with its mono downmix, real parameters and the real
    parameters of the neighbouring ``seconds`` (after it, or before it near the end).

    With ``per_track`` > 1, up to that many excerpts per track, centred at ``(i + 1/2) / n`` of
    its length and not overlapping (fewer when the track is too short); ``every``: only every
    ``every``-th track (a spread-out subset); ``limit`` counts tracks.

    Tracks whose file also occurs in another split of the manifest (identical bytes, e.g. a link
    to the same file) are left out unless ``include_copies``: a model trained on that split has
    seen them. Their names are appended to ``excluded``. ``keep_stereo``: keep the real stereo in
    each excerpt (for the source-level evaluation)."""
    ts = [t for t in tracks(data, split) if t.seconds >= seconds]
    manifest = (Path(data) if data is not None else default_data_dir()) / "manifest.tsv"
    if not include_copies and manifest.exists():
        leaked = copies_of(ts, [t for t in tracks(data) if t.split != split])
        ts = [t for t in ts if t not in leaked]
        if excluded is not None:
            excluded.extend(str(t.path.relative_to(manifest.parent)) for t in leaked)
    ts = ts[::max(1, int(every))][:limit]
    if not ts:
        raise ParameterError(f"no excerpts of at least {seconds} s in split {split!r}")
    out = []
    for i, t in enumerate(ts):
        n = max(1, min(int(per_track), int(t.seconds // seconds)))
        for j in range(n):
            check_cancel(cancel)
            start = max(0.0, t.seconds * (j + 0.5) / n - seconds / 2)
            stereo = load_excerpt(t.path, start, seconds)
            after = start + seconds
            o_start = after if after + seconds <= t.seconds else max(0.0, min(start - seconds, t.seconds - seconds))
            o_stereo = load_excerpt(t.path, o_start, seconds)
            mono = stereo.mean(axis=1, dtype=np.float64).astype(np.float32)
            name = t.path.stem if n == 1 else f"{t.path.stem}@{start:.0f}s"
            out.append(Excerpt(name, mono, analyze(stereo), analyze(o_stereo), stereo if keep_stereo else None,
                               o_stereo if keep_stereo else None, str(t.path)))
        report(progress, "excerpts", i + 1, len(ts), t.path.name)
    return out


def _se(x: np.ndarray) -> Optional[float]:
    return float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else None


def _ordered(names: Sequence[str]) -> list[str]:
    known = [n for n in MODEL_ORDER if n in names]
    return known + [n for n in names if n not in known]


def _run_model(model, excerpts: list[Excerpt], k: int, progress, cancel, stage: str):
    """(per-excerpt E_min, generated stats, real stats, rtf) of one model over ``excerpts``."""
    gen, real = GaussianStats(), GaussianStats()
    emins, busy, audio = [], 0.0, 0.0
    seeds = range(k) if getattr(model, "generative", False) else range(1)
    weight = 1.0 if getattr(model, "generative", False) else float(k)
    total = len(excerpts) * len(seeds)
    done = 0
    for ex in excerpts:
        real.add_params(ex.real)
        errs = []
        for seed in seeds:
            check_cancel(cancel)
            t0 = time.perf_counter()
            p = model.predict(ex.mono, seed=seed, cancel=cancel)
            busy += time.perf_counter() - t0
            audio += len(ex.mono) / SR
            if p.n_frames != n_frames(len(ex.mono)):
                raise ParameterError(f"{stage}: predicted {p.n_frames} frames, expected "
                                     f"{n_frames(len(ex.mono))}")
            errs.append(rendition_error(ex.real, p))
            gen.add_params(p, weight)
            done += 1
            report(progress, stage, done, total, ex.name)
        emins.append(min(errs))
    return np.array(emins), gen, real, busy / audio


def evaluate(data=None, split: str = "valid", *, k: int = 8, seconds: float = 10.0,
             limit: Optional[int] = None, per_track: int = 1, models: Optional[Sequence[str]] = None,
             ar_excerpts: int = 3,
             models_folder: Optional[Path] = None, roundtrip: bool = True, include_copies: bool = False,
             excerpts: Optional[list[Excerpt]] = None, progress: Optional[ProgressFn] = None,
             cancel: Optional[threading.Event] = None) -> EvalResult:
    """Table 1 of the paper for every registered (or each named) model; see the module docstring."""

    if k < 1:
        raise ParameterError(f"K must be at least 1, got {k}")
    t_start = time.monotonic()
    folder = Path(models_folder) if models_folder is not None else models_dir()
    excluded: list[str] = []
    exs = excerpts if excerpts is not None else load_excerpts(
        data, split, seconds, limit, per_track=per_track, include_copies=include_copies, excluded=excluded,
        progress=progress, cancel=cancel)
    registry = {m.name: m for m in list_models()}
    names = _ordered(list(models) if models else list(registry))
    res = EvalResult(split, seconds, k, len(exs), excluded=excluded)
    real_all = GaussianStats()
    for ex in exs:
        real_all.add_params(ex.real)

    for name in names:
        info = registry.get(name)
        if info is None:
            res.skipped.append((name, "not a registered model"))
            continue
        ok, why = info.available(folder)
        if not ok:
            res.skipped.append((name, why))
            continue
        try:
            model = load_model(name, folder)
        except Exception as exc:  # a broken model file must not hide the other rows
            res.skipped.append((name, f"failed to load: {exc}"))
            continue
        sub = exs[:max(1, ar_excerpts)] if name in SLOW_MODELS else exs
        try:
            e, gen, real, rtf = _run_model(model, sub, k, progress, cancel, info.label)
        except Cancelled:
            raise
        except Exception as exc:  # one failing model must not lose the other rows
            res.skipped.append((name, f"failed: {type(exc).__name__}: {exc}"))
            continue
        gen_model = getattr(model, "generative", False)
        notes = [] if gen_model else [f"deterministic: 1 rendition counted {k} times"]
        if len(sub) < len(exs):
            notes.append(f"first {len(sub)} excerpts only")
        note = "; ".join(notes)
        reps = k if gen_model else 1
        res.rows.append(Row(name, info.label, float(e.mean()), d_f(real, gen), rtf, len(sub), reps, note,
                            _se(e)))

    if all(ex.other is not None for ex in exs):
        other = GaussianStats()
        for ex in exs:
            other.add_params(ex.other)
        res.rows.append(Row("stereo", "Stereo", 0.0, d_f(real_all, other), None, len(exs), 1,
                            f"D_F: vs the neighbouring {seconds:g} s of the same tracks"))
    elif len(exs) >= 2:
        even, odd = GaussianStats(), GaussianStats()
        for i, ex in enumerate(exs):
            (even if i % 2 == 0 else odd).add_params(ex.real)
        res.rows.append(Row("stereo", "Stereo", 0.0, d_f(even, odd), None, len(exs), 1,
                            "D_F: even vs odd excerpts"))
    if roundtrip:
        gen, errs = GaussianStats(), []
        for i, ex in enumerate(exs):
            check_cancel(cancel)
            rt = analyze(decode(ex.mono, ex.real, cancel=cancel))
            errs.append(rendition_error(ex.real, rt))
            gen.add_params(rt)
            report(progress, "PS roundtrip", i + 1, len(exs), ex.name)
        res.rows.append(Row("roundtrip", "PS roundtrip", float(np.mean(errs)), d_f(real_all, gen), None,
                            len(exs), 1, "real params decoded, re-analysed", _se(np.array(errs))))
    res.wall_seconds = time.monotonic() - t_start
    return res


def format_table(res: EvalResult) -> str:
    """The results as a plain-text table (the paper's Table 1 columns plus CPU real-time factor)."""
    head = (f"{'Approach':<14s} {'E_min':>7s} {'(+-se)':>7s} {'D_F':>8s} {'RTF':>7s}  "
            f"{'excerpts x renditions':<22s} note")
    lines = [f"split {res.split!r}: {res.excerpts} excerpts of {res.seconds:g} s, K = {res.k}", head,
             "-" * len(head)]
    for r in res.rows:
        rtf = f"{r.rtf:7.3f}" if r.rtf is not None else f"{'-':>7s}"
        se = f"{r.e_min_se:7.3f}" if r.e_min_se is not None else f"{'':7s}"
        lines.append(f"{r.label:<14s} {r.e_min:7.3f} {se} {r.d_f:8.2f} {rtf}  "
                     f"{f'{r.excerpts} x {r.renditions}':<22s} {r.note}".rstrip())
    for name, why in res.skipped:
        lines.append(f"(skipped {name}: {why})")
    if res.excluded:
        lines.append(f"({len(res.excluded)} tracks of {res.split!r} left out: identical files in other splits)")
    return "\n".join(lines)
