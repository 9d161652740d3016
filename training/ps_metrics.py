"""Objective measures for generated PS parameters (Serrà et al. 2023, Sec. 4.2).

Per element of the stacked parameters P [shape=(68, frames)] (34 IID rows in dB, then 34 IC rows):

    delta(x, y) = lambda * | [x]_{+-eps} - [y]_{+-eps} |    for IID   (lambda = 0.15, eps = 20 dB)
    delta(x, y) = | x - y |                                  for IC

* ``E_min`` = min over K renditions of the error of one rendition. The paper writes the error as
  a sum over elements; its table's values (~0.1) are per-element means, so :func:`e_min` returns
  the **mean** of delta over the 68 x frames elements (sum / (68 * frames)).
* ``D_F`` = Fréchet distance between Gaussian fits (mean, covariance over frames) of a pool of real
  parameter frames and a K times larger pool of generated frames. Frames are embedded with the
  same weighting as delta, ``phi(P) = [lambda * clip(IID, +-eps); IC]`` (68-dim): raw dB IIDs would
  make the IID variance (tens of dB^2) swamp the IC term, and IIDs beyond 20 dB are perceptually
  saturated (the reason for the clip in delta). Pools are accumulated as running sums
  (:class:`GaussianStats`), so a deterministic model's K identical renditions are one rendition
  with weight K, exactly.

    D_F = |mu_r - mu_g|^2 + Tr( S_r + S_g - 2 (S_r S_g)^(1/2) )

``Tr (S_r S_g)^(1/2)`` is computed as ``sum(sqrt(eig(S_r^(1/2) S_g S_r^(1/2))))`` with symmetric
eigendecompositions, which is exact for positive semi-definite matrices and stays stable when a
covariance is singular (Mono's is zero).
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from core.bands import N_BANDS
from core.errors import ParameterError
from core.ps import PSParams

__all__ = ["LAMBDA", "EPS_DB", "delta", "rendition_error", "e_min", "embed", "GaussianStats",
           "frechet_distance", "d_f"]

LAMBDA = 0.15   # IID weight (compensates dB vs IC magnitudes)
EPS_DB = 20.0   # IID clip: larger level differences are perceptually saturated


def _stacked(p) -> np.ndarray:
    a = p.stacked() if isinstance(p, PSParams) else np.asarray(p)
    if a.ndim != 2 or a.shape[0] != 2 * N_BANDS:
        raise ParameterError(f"expected PS parameters of shape ({2 * N_BANDS}, frames), got {a.shape}")
    return a.astype(np.float64, copy=False)


def delta(real, gen, *, lam: float = LAMBDA, eps: float = EPS_DB) -> np.ndarray:
    """Element-wise error [shape=(68, frames)] between real and generated parameters
    (:class:`PSParams` or stacked arrays of equal shape)."""
    r, g = _stacked(real), _stacked(gen)
    if r.shape != g.shape:
        raise ParameterError(f"real and generated parameters differ in shape: {r.shape} vs {g.shape}")
    out = np.empty_like(r)
    out[:N_BANDS] = lam * np.abs(np.clip(r[:N_BANDS], -eps, eps) - np.clip(g[:N_BANDS], -eps, eps))
    out[N_BANDS:] = np.abs(r[N_BANDS:] - g[N_BANDS:])
    return out


def rendition_error(real, gen, **kw) -> float:
    """Mean of :func:`delta` over all elements: the error of one rendition."""
    return float(delta(real, gen, **kw).mean())


def e_min(real, renditions: Iterable, **kw) -> float:
    """``E_min`` of one excerpt: the smallest per-element mean error over the renditions."""
    errs = [rendition_error(real, g, **kw) for g in renditions]
    if not errs:
        raise ParameterError("e_min needs at least one rendition")
    return min(errs)


def embed(p, *, lam: float = LAMBDA, eps: float = EPS_DB) -> np.ndarray:
    """Frames as D_F feature vectors ``[lam * clip(IID); IC]`` [shape=(frames, 68)], float64."""
    a = _stacked(p)
    return np.concatenate([lam * np.clip(a[:N_BANDS], -eps, eps), a[N_BANDS:]], axis=0).T


class GaussianStats:
    """Running mean and covariance of a pool of feature vectors [shape=(dim,)]."""

    def __init__(self, dim: int = 2 * N_BANDS):
        self.n = 0.0
        self.s1 = np.zeros(dim)
        self.s2 = np.zeros((dim, dim))

    def add(self, x: np.ndarray, weight: float = 1.0) -> "GaussianStats":
        """Add rows of ``x`` [shape=(n, dim)], each counted ``weight`` times."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.s1.shape[0]:
            raise ParameterError(f"expected feature rows of width {self.s1.shape[0]}, got {x.shape}")
        self.n += weight * x.shape[0]
        self.s1 += weight * x.sum(axis=0)
        self.s2 += weight * (x.T @ x)
        return self

    def add_params(self, p, weight: float = 1.0, **kw) -> "GaussianStats":
        return self.add(embed(p, **kw), weight)

    def merge(self, other: "GaussianStats") -> "GaussianStats":
        self.n += other.n
        self.s1 += other.s1
        self.s2 += other.s2
        return self

    @property
    def mean(self) -> np.ndarray:
        if self.n <= 0:
            raise ParameterError("empty pool")
        return self.s1 / self.n

    @property
    def cov(self) -> np.ndarray:
        """Maximum-likelihood covariance (divides by n)."""
        mu = self.mean
        c = self.s2 / self.n - np.outer(mu, mu)
        return 0.5 * (c + c.T)


def _psd_sqrt(c: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(c)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, cov1) and N(mu2, cov2)."""
    s1 = _psd_sqrt(cov1)
    m = s1 @ cov2 @ s1
    tr_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh(0.5 * (m + m.T)), 0.0, None)).sum())
    d = float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2.0 * tr_sqrt)
    return max(d, 0.0)


def d_f(real: GaussianStats | Sequence, gen: GaussianStats | Sequence) -> float:
    """``D_F`` between two pools: :class:`GaussianStats` or sequences of PS parameters."""
    def stats(x):
        if isinstance(x, GaussianStats):
            return x
        g = GaussianStats()
        for p in x:
            g.add_params(p)
        return g
    a, b = stats(real), stats(gen)
    return frechet_distance(a.mean, a.cov, b.mean, b.cov)
