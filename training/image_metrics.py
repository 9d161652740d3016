"""How wide and how real a stereo output is, pooled over excerpts with standard errors.

Broadband measures of a stereo signal [shape=(n, 2)] (an independent meter: time domain, no PS
analysis):

* ``broadband_correlation``: ``sum(L R) / sqrt(sum(L^2) sum(R^2))`` over the whole signal (1: mono,
  0: unrelated channels);
* ``side_to_mid_db``: ``10 log10(sum(S^2) / sum(M^2))`` with ``M = (L + R) / 2``, ``S = (L - R) / 2``
  (-inf dB: mono).

:class:`OutputPool` gathers, for one approach, per excerpt the real and generated PS parameters
(:mod:`training.ps_metrics`), the error of every rendition and the broadband measures of every
rendition; it reports E_min (mean over excerpts, standard error over excerpts), D_F with a standard
error from a bootstrap over *tracks* (excerpts of one track are not independent), and the median
correlation and side-to-mid level over all renditions of all excerpts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from core.errors import ParameterError

from .ps_metrics import GaussianStats, frechet_distance, rendition_error

__all__ = ["broadband_correlation", "side_to_mid_db", "OutputPool", "OutputFigures", "paired_se", "BOOTSTRAP"]

BOOTSTRAP = 200   # resamples of the tracks for the standard error of D_F


def _pair(stereo) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(stereo)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ParameterError(f"expected stereo audio of shape (n, 2), got {x.shape}")
    return x[:, 0].astype(np.float64), x[:, 1].astype(np.float64)


def broadband_correlation(stereo) -> float:
    """Correlation of L and R over the whole signal [shape=(n, 2)]; 1.0 for silence."""
    left, right = _pair(stereo)
    den = float(np.sqrt(np.dot(left, left) * np.dot(right, right)))
    return float(np.dot(left, right) / den) if den > 0 else 1.0


def side_to_mid_db(stereo) -> float:
    """Side-to-mid level in dB (``M = (L + R) / 2``, ``S = (L - R) / 2``); -inf for mono, +inf
    for a signal with no mid."""
    left, right = _pair(stereo)
    m, s = 0.5 * (left + right), 0.5 * (left - right)
    pm, ps = float(np.dot(m, m)), float(np.dot(s, s))
    with np.errstate(divide="ignore"):
        return float(10.0 * np.log10(ps / pm)) if pm > 0 else float("inf")


@dataclass
class OutputFigures:
    e_min: float
    e_min_se: Optional[float]
    d_f: float
    d_f_se: Optional[float]
    corr: float            # median broadband correlation over renditions
    side_mid_db: float     # median side-to-mid level
    excerpts: int
    renditions: int
    d_f_reps: Optional[np.ndarray] = None   # D_F of each bootstrap resample (the same resamples in every pool
    #                                        of the same tracks and seed: differences between pools are paired)


@dataclass
class OutputPool:
    """Per-excerpt statistics of one approach (see the module docstring)."""
    tracks: list = field(default_factory=list)
    real: list = field(default_factory=list)        # GaussianStats per excerpt
    gen: list = field(default_factory=list)
    emin: list = field(default_factory=list)
    corr: list = field(default_factory=list)
    side: list = field(default_factory=list)
    renditions: int = 0

    def add(self, track: str, real, renditions: list, stereos: Optional[list] = None, *,
            weight: float = 1.0, measures: Optional[list] = None) -> None:
        """One excerpt: its real parameters, its renditions' parameters (each counted ``weight``
        times in D_F: a deterministic approach's one rendition stands for K), and the renditions'
        stereo signals (or their ``measures``, (correlation, side-to-mid dB) each)."""
        r, g = GaussianStats(), GaussianStats()
        r.add_params(real)
        errs = []
        for p in renditions:
            p = p.fit_frames(real.n_frames)
            g.add_params(p, weight)
            errs.append(rendition_error(real, p))
        if measures is None:
            measures = [(broadband_correlation(s), side_to_mid_db(s)) for s in (stereos or [])]
        self.tracks.append(track)
        self.real.append(r)
        self.gen.append(g)
        self.emin.append(min(errs))
        self.corr += [m[0] for m in measures]
        self.side += [m[1] for m in measures]
        self.renditions = max(self.renditions, len(renditions))

    @staticmethod
    def _d_f(real: list, gen: list, idx) -> float:
        a, b = GaussianStats(), GaussianStats()
        for i in idx:
            a.merge(real[i])
            b.merge(gen[i])
        return frechet_distance(a.mean, a.cov, b.mean, b.cov)

    def figures(self, *, bootstrap: int = BOOTSTRAP, seed: int = 0) -> OutputFigures:
        if not self.emin:
            raise ParameterError("empty pool")
        n = len(self.emin)
        d = self._d_f(self.real, self.gen, range(n))
        names = sorted(set(self.tracks))
        by_track = {t: [i for i in range(n) if self.tracks[i] == t] for t in names}
        d_se, reps = None, None
        if len(names) > 1 and bootstrap > 1:
            rng = np.random.default_rng(seed)
            reps = []
            for _ in range(bootstrap):
                pick = rng.integers(0, len(names), len(names))
                reps.append(self._d_f(self.real, self.gen, [i for j in pick for i in by_track[names[j]]]))
            d_se = float(np.std(reps, ddof=1))
            reps = np.asarray(reps)
        e = np.asarray(self.emin)
        e_se = float(e.std(ddof=1) / np.sqrt(n)) if n > 1 else None
        corr = float(np.median(self.corr)) if self.corr else float("nan")
        side = float(np.median(self.side)) if self.side else float("nan")
        return OutputFigures(float(e.mean()), e_se, d, d_se, corr, side, n, self.renditions, reps)


def paired_se(a: OutputFigures, b: OutputFigures) -> Optional[float]:
    """Standard error of ``a.d_f - b.d_f`` from their common bootstrap resamples (pools of the same
    excerpts, figures computed with the same seed): much smaller than either's own when the two
    approaches err alike on the same tracks."""
    if a.d_f_reps is None or b.d_f_reps is None or len(a.d_f_reps) != len(b.d_f_reps):
        return None
    return float(np.std(a.d_f_reps - b.d_f_reps, ddof=1))
