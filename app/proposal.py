"""A rendition's proposal: the PS model's parameters, the sources' places, their auto renders.

Pure steps on explicit inputs (no session), run in workers by :meth:`app.session.Session.plan_rendition`
and :meth:`~app.session.Session.plan_reset`: :func:`predict` samples the PS model, :func:`propose`
places every source not pinned (:func:`core.placement.propose`), :func:`render_around` renders each
auto source band by band around its place.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Optional

import numpy as np

from core.detail import load_detail
from core.models import load_model
from core.placement import Placement
from core.placement import propose as propose_places
from core.progress import ProgressFn, check_cancel, report
from core.ps import PSParams
from core.reference import band_image, decides_sides
from core.renderer import SourceRender, auto_renders
from separation.base import Source
from core.hashing import sha256_array

from .decorrelated_cache import DecorrelatedCache
from .plans import Rendition
from .reference import scene_match
from . import sample_process
from core import lazy
prediction_cache = lazy.module("app.prediction_cache")
project = lazy.module("app.project")

__all__ = ["prepare", "predict", "predicted", "propose", "render_around", "PREPARE_WORKERS"]

PREPARE_WORKERS = 2     # stems decorrelated at a time (this project's machines have two cores or more)


def predict(r: Rendition, mono: np.ndarray, *, models_dir=None, cache_dir=None, audio_sha256: Optional[str] = None,
            progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None,
            elsewhere=None) -> PSParams:
    """The PS parameters of rendition ``r`` for recording ``mono`` (deterministic for its detail
    seed, :attr:`Rendition.ps_seed`). ``cache_dir``: keep them there
    (:class:`app.prediction_cache.PredictionCache`; ``audio_sha256``: the recording's checksum when
    known). ``elsewhere``: a folder for a temporary file: the model samples in a process of its own
    (:mod:`app.sample_process`: beside other work, e.g. the separation), the same values."""
    def make():                 # the model is loaded only when its prediction is not kept
        if elsewhere is not None:
            return sample_process.predict(r.model, mono, models_dir=models_dir, seed=r.ps_seed,
                                          temperature=r.temperature, guidance=r.guidance, progress=progress,
                                          cancel=cancel, folder=elsewhere)
        return load_model(r.model, models_dir).predict(mono, seed=r.ps_seed, temperature=r.temperature, guidance=r.guidance,
                             progress=progress, cancel=cancel)

    key = _cache_key(r, mono, models_dir, cache_dir, audio_sha256)
    if key is None:
        return make()
    return prediction_cache.PredictionCache(cache_dir).get(key, make)


def predicted(r: Rendition, mono: np.ndarray, *, models_dir=None, cache_dir=None,
              audio_sha256: Optional[str] = None) -> bool:
    """Whether :func:`predict` of ``r`` costs nothing: kept in ``cache_dir``, or a model without
    files (Decorr)."""
    if cache_dir is None:
        return False
    key = _cache_key(r, mono, models_dir, cache_dir, audio_sha256)
    if key is None:
        return not model_has_files(r.model, models_dir)
    return prediction_cache.PredictionCache(cache_dir).contains(key)


def model_has_files(name: str, models_dir=None) -> bool:
    return bool(project.model_checksums([name], models_dir).get(name, {}))


def _cache_key(r: Rendition, mono, models_dir, cache_dir, audio_sha256) -> Optional[str]:
    """The prediction cache's key for ``r`` (None: nothing to keep)."""
    if cache_dir is None:
        return None
    files = project.model_checksums([r.model], models_dir).get(r.model, {})
    if not files:                                    # a model without files (Decorr) costs nothing
        return None
    return prediction_cache.PredictionCache.key(audio_sha256 or sha256_array(mono), r.model, files, r.ps_seed,
                                                r.temperature,
                               r.guidance)


def propose(r: Rendition, renders: list[SourceRender], params: PSParams, previous: list[Placement],
            sources: list[Source], *, models_dir=None) -> list[Placement]:
    """Rendition ``r``'s places (every one not pinned in ``previous``; with ``r.reference``, a
    :class:`core.reference.ReferenceScene`, the placement model follows that stereo reference)."""
    if not renders:
        return []
    energies = np.stack([sr.energy for sr in renders])
    follow = r.reference is not None and r.placement == "model"
    return propose_places(energies, method=r.placement, params=params, seed=r.seed, variety=r.variety,
                          previous=previous or None, residual=[src.kind == "residual" for src in sources],
                          folder=models_dir, reference=r.reference if follow else None,
                          reference_match=_match(r, renders, models_dir) if follow else None)


def _match(r: Rendition, renders: list[SourceRender], models_dir):
    """The match of ``r.reference`` to the sources of ``renders``, made once for them
    (:func:`app.reference.scene_match`): the proposal, the per-band detail and the sides read it."""
    return scene_match(r.reference, [sr.energy for sr in renders], models_dir)


def render_around(r: Rendition, renders: list[SourceRender], params: PSParams, placements: list[Placement], *,
                  mono_compatible: bool, spill=None, only=None, pairs: bool = True, models_dir=None,
                  progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None) -> None:
    """Auto renders of ``renders`` (fresh copies) from ``params``: band by band around each place
    with the placement model (following the per-band image of ``r.reference`` when there is one),
    the broadband projection with "mean" (heavy: in a worker).
    ``only``: the indices to render (default all). ``pairs=False``: the tile parameters only
    (what export mixes from, :func:`core.renderer.mix_stream`), no stereo pair for the engine. Around places, the
    PS model's detail goes through its calibration when it has one (:func:`core.detail.load_detail`, from
    ``models_dir``), as rendition ``r.seed`` draws it (:meth:`core.detail.DetailCalibration.for_rendition`;
    not mirrored when a reference decides the sides, :func:`core.reference.decides_sides`)."""
    centres = band = match = None
    if r.placement != "mean" and placements:
        centres = np.array([(p.pan, p.width) for p in placements])
        if r.reference is not None:          # the per-band detail follows the reference's image
            match = _match(r, renders, models_dir)
            band = band_image(None, r.reference, seed=r.seed, match=match)
    detail = load_detail(r.model, models_dir) if centres is not None else None
    if detail is not None:                   # mirrored with the places unless the reference decides the sides
        detail = detail.for_rendition(r.seed, mirror=match is None or not decides_sides(None, r.reference,
                                                                                         seed=r.seed, match=match))
    auto_renders(renders, params, centres, mono_compatible=mono_compatible, only=only, spill=spill, pairs=pairs,
                 detail=detail, band_image=band,
                 progress=progress, cancel=cancel)


def prepare(sources: list[Source], n: int, *, progress: Optional[ProgressFn] = None,
            cancel: Optional[threading.Event] = None, workers: int = PREPARE_WORKERS,
            cache=None) -> list[SourceRender]:
    """Each stem cut or padded to ``n`` samples (in place: the playback engine reads the stems and
    their decorrelated copies directly, no second copy of any signal) and decorrelated, ``workers``
    stems at a time (the decorrelator's filters and transforms run outside the GIL: on two cores a
    song's sources are ready in about half the time; each result is the same as one at a time).
    ``cache``: a stem cache (:class:`separation.stem_cache.StemCache`) that keeps the decorrelated
    copies (:class:`app.decorrelated_cache.DecorrelatedCache`: a copy kept there is read, not made)."""
    audios = []
    for src in sources:
        audio_i = np.ascontiguousarray(src.audio[:n], dtype=np.float32)
        if len(audio_i) < n:
            audio_i = np.pad(audio_i, (0, n - len(audio_i)))
        src.audio = audio_i
        audios.append(audio_i)
    if not audios:
        return []
    stop = threading.Event()                 # a failed or cancelled stem stops the others between chunks
    copies = DecorrelatedCache(cache, len(audios))

    def one(audio_i):
        check_cancel(cancel)
        check_cancel(stop)
        return copies.prepare(audio_i, cancel=_either(cancel, stop))

    with ThreadPoolExecutor(max_workers=max(1, min(int(workers), len(audios))),
                            thread_name_prefix="prepare") as pool:
        futures = [pool.submit(one, a) for a in audios]
        try:
            for k, _ in enumerate(as_completed(futures)):
                report(progress, "prepare", k + 1, len(audios))
            return [f.result() for f in futures]
        except BaseException:
            stop.set()
            raise


class _either:
    """Set when either event is (a cancel that also stops with a sibling's failure)."""

    def __init__(self, a: Optional[threading.Event], b: threading.Event):
        self.a, self.b = a, b

    def is_set(self) -> bool:
        return (self.a is not None and self.a.is_set()) or self.b.is_set()
