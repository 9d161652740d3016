"""Fit a PS model's detail calibration (:mod:`core.detail`) on the ``train`` split.

Excerpts: 10 s from the middle of every ``every``-th clean ``train`` track (copies of other splits' files left
out), their mono downmix separated with formation, the PS model sampled for seeds 0..K-1, the placement model's
proposal at variety 0 (sources, predictions and decoded analyses kept in ``cache``, as ``soundstage eval
--sources`` keeps them). The chain's output (every auto source rendered band by band around its place,
mixed, analysed again) is compared band by band with the real stereo of the same excerpts, at the quantile
levels of the model's own values: the level ``F_b(x)`` of a knot ``x`` (the model's sampled |IID| or IC in
band b, mid-rank) maps to ``x + sum of eta (Q_real_b(F) - Q_out_b(F))`` over the iterations, where Q are the
quantile functions of the real stereo's and of the output's |IID| (clipped at 20 dB, as D_F reads it) and IC.
Each iteration renders the chain again with the maps so far; the iteration with the lowest D_F on these train
excerpts is kept. Nothing of ``valid`` is read.
"""
from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from core.bands import N_BANDS
from core.detail import DetailCalibration
from core.errors import ParameterError
from core.models.base import load_model
from core.placement import propose
from core.progress import ProgressFn, check_cancel, report
from core.ps import analyze
from core.renderer import auto_renders, mix

from .evaluation import load_excerpts
from .evaluation_sources import _cached, _cached_sources, prediction_tag
from .ps_metrics import EPS_DB, GaussianStats, frechet_distance, rendition_error
import separation

__all__ = ["FitResult", "fit_detail", "knots_from", "LEVELS"]

LEVELS = 41          # at most this many knots per band (the model's values at evenly spaced quantile levels)


@dataclass
class FitResult:
    calibration: DetailCalibration
    d_f: list = field(default_factory=list)          # D_F of the chain on the fitting excerpts, per iteration
    e_mean: list = field(default_factory=list)       # mean error of a rendition (E), per iteration
    best: int = 0
    excerpts: int = 0
    tracks: int = 0
    seconds: float = 0.0


def knots_from(values: np.ndarray, levels: int = LEVELS):
    """Knots of one band's values [shape=(n,)]: the distinct values at ``levels`` evenly spaced quantile
    levels, and each knot's mid-rank level ``F(x)`` (the mean of P(X < x) and P(X <= x))."""
    v = np.sort(np.asarray(values, np.float64))
    if len(v) == 0:
        raise ParameterError("no values to take knots from")
    x = np.unique(np.quantile(v, np.linspace(0.0, 1.0, levels), method="inverted_cdf"))   # values that occur
    if len(x) < 2:
        x = np.array([x[0], x[0] + 1e-3])
    lo = np.searchsorted(v, x, side="left")
    hi = np.searchsorted(v, x, side="right")
    return x, (lo + hi) / (2.0 * len(v))


def _pad(rows: list) -> tuple[np.ndarray, np.ndarray]:
    """Rows of knots of unequal length padded to one array by repeating each row's last knot a hair further."""
    k = max(len(r[0]) for r in rows)
    xs, ys = np.empty((len(rows), k)), np.empty((len(rows), k))
    for i, (x, y) in enumerate(rows):
        extra = k - len(x)
        xs[i] = np.concatenate([x, x[-1] + 1e-3 * np.arange(1, extra + 1)])   # beyond the values: flat
        ys[i] = np.concatenate([y, np.full(extra, y[-1])])
    return xs, ys


def _band_quantiles(v: np.ndarray, levels: list) -> list:
    """Per band of ``v`` [shape=(34, n)] its quantiles at that band's ``levels``."""
    return [np.quantile(v[b], levels[b]) for b in range(N_BANDS)]


def fit_detail(data=None, *, every: int = 4, limit: Optional[int] = None, k: int = 1, iterations: int = 3,
               eta: float = 1.0, ps_model: str = "ps-mtm", cache: Optional[Path] = None,
               separate: Optional[Callable] = None, progress: Optional[ProgressFn] = None,
               cancel: Optional[threading.Event] = None) -> FitResult:
    """The calibration of the module docstring (``iterations`` rendering passes after the first, step ``eta``)."""
    t0 = time.monotonic()
    if cache is None:
        raise ParameterError("fitting the detail calibration needs a cache folder (each pass re-reads the sources)")
    if separate is None:
        separate = separation.get("formation").separate
    exs = load_excerpts(data, "train", 10.0, limit, every=every, keep_stereo=False, cancel=cancel)
    ps = load_model(ps_model)
    tag = prediction_tag(ps_model)                   # predictions of another model file are made again
    items = []                                       # per excerpt: digest, real params, track
    raw_iid, raw_ic, real_iid, real_ic = [], [], [], []
    for j, ex in enumerate(exs):
        check_cancel(cancel)
        digest = hashlib.sha1(ex.mono.tobytes()).hexdigest()[:16]
        _cached_sources(cache, digest, ex.mono, separate, cancel)            # formation once, kept
        for seed in range(k):
            p = _cached(cache, f"{ps_model}-{digest}-{seed}", lambda: ps.predict(ex.mono, seed=seed, cancel=cancel),
                        tag)
            raw_iid.append(np.abs(p.iid))
            raw_ic.append(p.ic)
        real_iid.append(np.abs(np.clip(ex.real.iid, -EPS_DB, EPS_DB)))
        real_ic.append(ex.real.ic)
        items.append((digest, ex.real, ex.track))
        report(progress, "predict", j + 1, len(exs), ex.name)
    raw_iid, raw_ic = np.concatenate(raw_iid, axis=1), np.concatenate(raw_ic, axis=1)
    real_iid, real_ic = np.concatenate(real_iid, axis=1), np.concatenate(real_ic, axis=1)
    iid_knots = [knots_from(raw_iid[b]) for b in range(N_BANDS)]
    ic_knots = [knots_from(raw_ic[b]) for b in range(N_BANDS)]
    iid_lv = [lv for _, lv in iid_knots]
    ic_lv = [lv for _, lv in ic_knots]
    q_real_iid = _band_quantiles(real_iid, iid_lv)
    q_real_ic = _band_quantiles(real_ic, ic_lv)
    iid_to = [x.copy() for x, _ in iid_knots]
    ic_to = [x.copy() for x, _ in ic_knots]

    def calibration() -> DetailCalibration:
        ix, iy = _pad([(x, np.maximum.accumulate(np.maximum(y, 0.0))) for (x, _), y in zip(iid_knots, iid_to)])
        cx, cy = _pad([(x, np.maximum.accumulate(np.clip(y, -1.0, 1.0))) for (x, _), y in zip(ic_knots, ic_to)])
        return DetailCalibration(ix, iy, cx, cy)
    res = FitResult(DetailCalibration.identity(), excerpts=len(exs), tracks=len({t for _, _, t in items}))
    best = (np.inf, None)
    for it in range(iterations + 1):
        cal = calibration()
        real_pool, gen_pool = GaussianStats(), GaussianStats()
        out_iid, out_ic, errs = [], [], []
        for j, (digest, real, _track) in enumerate(items):
            check_cancel(cancel)
            renders, residual = _cached_sources(cache, digest, None, separate, cancel)
            energies = np.stack([r.energy for r in renders])
            real_pool.add_params(real)
            for seed in range(k):
                p = _cached(cache, f"{ps_model}-{digest}-{seed}", None, tag)
                pl = propose(energies, method="model", seed=seed, variety=0.0, residual=residual)
                auto_renders(renders, cal.apply(p), np.array([(q.pan, q.width) for q in pl]), cancel=cancel)
                a = analyze(mix(renders, pl)).fit_frames(real.n_frames)
                gen_pool.add_params(a, 1.0 / k)
                out_iid.append(np.abs(np.clip(a.iid, -EPS_DB, EPS_DB)))
                out_ic.append(a.ic)
                errs.append(rendition_error(real, a))
            report(progress, f"iteration {it}", j + 1, len(items))
        d = frechet_distance(real_pool.mean, real_pool.cov, gen_pool.mean, gen_pool.cov)
        res.d_f.append(d)
        res.e_mean.append(float(np.mean(errs)))
        if d < best[0]:
            best = (d, cal)
            res.best = it
        if it == iterations:
            break
        out_iid, out_ic = np.concatenate(out_iid, axis=1), np.concatenate(out_ic, axis=1)
        q_out_iid = _band_quantiles(out_iid, iid_lv)
        q_out_ic = _band_quantiles(out_ic, ic_lv)
        for b in range(N_BANDS):
            iid_to[b] = iid_to[b] + eta * (q_real_iid[b] - q_out_iid[b])
            ic_to[b] = ic_to[b] + eta * (q_real_ic[b] - q_out_ic[b])
    res.calibration = best[1]
    res.seconds = time.monotonic() - t0
    return res
