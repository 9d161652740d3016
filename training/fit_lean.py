"""The band leans of a PS model's detail calibration (issue 24), fitted on the ``train`` split.

Over a real excerpt each band leans persistently to a side (the instruments playing in it are panned); the mono
cannot tell which way, so a rendition draws its band leans (:mod:`core.detail`: ``lean``, ``for_rendition``,
``lean_tiles``). Their covariance is the real stereo's, up to a scale:

* **shape**: over one 10-s excerpt from the middle of every clean ``train`` track (each also mirrored: the side
  is not known), the covariance between bands of the excerpt's mean tile pan per band, ``C`` [34, 34];
* **scale** ``s``: the chain renders the fitting excerpts (one every ``every``-th track, formation sources, PS
  model seed 0 through the shipped calibration, the placement model at variety 0) for rendition seeds 0 (no lean:
  the median rendition) and ``seeds`` with leans of covariance ``s C`` at each of ``scales``; the scale whose
  pooled output is nearest the real stereo (Fréchet distance D_F of :mod:`training.ps_metrics`) is kept.

The result is the calibration with ``lean`` = the Cholesky factor of ``s C``.
"""
from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from core import lazy
from core.detail import DetailCalibration, load_detail
from core.errors import ParameterError
from core.models.base import load_model
from core.pan import iid_to_pan
from core.placement import propose
from core.progress import ProgressFn, check_cancel, report
from core.ps import analyze
from core.renderer import auto_renders, mix

from .evaluation import load_excerpts
from .evaluation_sources import _cached, _cached_sources, prediction_tag
from .ps_metrics import GaussianStats, frechet_distance, rendition_error

separation = lazy.module("separation")

__all__ = ["LeanFit", "band_lean_covariance", "fit_lean"]


@dataclass
class LeanFit:
    calibration: DetailCalibration
    scale: float = 0.0
    shape_excerpts: int = 0
    excerpts: int = 0
    d_f: dict = field(default_factory=dict)       # scale -> D_F of the pooled renditions (0: without leans)
    e_mean: dict = field(default_factory=dict)    # scale -> mean rendition error
    seconds: float = 0.0


def band_lean_covariance(band_pans: Sequence[np.ndarray]) -> np.ndarray:
    """``C`` [34, 34] of the module docstring from the excerpts' mean tile pans per band (each [34]), every excerpt
    counted with its mirror image (so the mean is 0 and ``C`` the mean outer product)."""
    v = np.asarray(band_pans, np.float64)
    if v.ndim != 2 or len(v) < 2:
        raise ParameterError("the band leans' covariance needs two excerpts or more")
    return v.T @ v / len(v)


def _factor(cov: np.ndarray) -> np.ndarray:
    w, V = np.linalg.eigh(0.5 * (cov + cov.T))
    root = V * np.sqrt(np.clip(w, 0.0, None))
    q, r = np.linalg.qr(root.T)                        # root root^T = r^T r: a lower-triangular factor r^T
    return r.T * np.sign(np.diag(r))[None, :]


def fit_lean(data=None, *, every: int = 8, limit: Optional[int] = None, scales: Sequence[float] = (0.5, 1.0, 2.0),
             seeds: Sequence[int] = (1, 2), ps_model: str = "ps-mtm", cache: Optional[Path] = None,
             base: Optional[DetailCalibration] = None, separate: Optional[Callable] = None,
             progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None,
             log: Callable[[str], None] = lambda s: None) -> LeanFit:
    """The fit of the module docstring; ``base``: the calibration to add leans to (default the shipped one)."""
    t0 = time.monotonic()
    if cache is None:
        raise ParameterError("fitting the band leans needs a cache folder (the sources are rendered again per scale)")
    base = base if base is not None else load_detail(ps_model)
    if base is None:
        raise ParameterError(f"{ps_model} has no detail calibration to add band leans to")
    base = replace(base, lean=None)
    separate = separate if separate is not None else separation.get("formation").separate
    shape_ex = load_excerpts(data, "train", 10.0, limit, cancel=cancel)
    cov = band_lean_covariance([iid_to_pan(ex.real.iid).mean(axis=1) for ex in shape_ex])
    log(f"shape: {len(shape_ex)} train excerpts, trace {np.trace(cov):.4f}")
    exs = load_excerpts(data, "train", 10.0, limit, every=every, cancel=cancel)
    ps = load_model(ps_model)
    tag = prediction_tag(ps_model)
    res = LeanFit(base, shape_excerpts=len(shape_ex), excerpts=len(exs))
    trials = [0.0] + [float(s) for s in scales]
    pools = {s: GaussianStats() for s in trials}
    errs: dict = {s: [] for s in trials}
    real_pool = GaussianStats()
    k = 1 + len(seeds)
    for j, ex in enumerate(exs):
        check_cancel(cancel)
        digest = hashlib.sha1(ex.mono.tobytes()).hexdigest()[:16]
        renders, residual = _cached_sources(cache, digest, ex.mono, separate, cancel)
        energies = np.stack([r.energy for r in renders])
        p = _cached(cache, f"{ps_model}-{digest}-0", lambda: ps.predict(ex.mono, seed=0, cancel=cancel), tag)
        real_pool.add_params(ex.real)

        def render(seed: int, cal: DetailCalibration):
            pl = propose(energies, method="model", seed=seed, variety=0.0, residual=residual)
            auto_renders(renders, p, np.array([(q.pan, q.width) for q in pl]), detail=cal.for_rendition(seed),
                         cancel=cancel)
            return analyze(mix(renders, pl)).fit_frames(ex.real.n_frames)
        median = render(0, base)                      # seed 0 draws no lean: the same rendition for every scale
        for s in trials:
            cal = base if s == 0.0 else replace(base, lean=_factor(s * cov))
            for seed, a in [(0, median)] + [(q, render(q, cal)) for q in seeds]:
                pools[s].add_params(a, 1.0 / k)
                errs[s].append(rendition_error(ex.real, a))
        report(progress, "lean", j + 1, len(exs), ex.name)
    for s in trials:
        res.d_f[s] = frechet_distance(real_pool.mean, real_pool.cov, pools[s].mean, pools[s].cov)
        res.e_mean[s] = float(np.mean(errs[s]))
        log(f"scale {s:g}: D_F {res.d_f[s]:.3f}, mean rendition error {res.e_mean[s]:.4f}")
    res.scale = min(trials, key=lambda s: res.d_f[s])
    res.calibration = base if res.scale == 0.0 else replace(base, lean=_factor(res.scale * cov))
    res.seconds = time.monotonic() - t0
    return res
