"""Peak similarity graph and normalized-cut (spectral) clustering for one texture window.

Following Lagrange et al. (2007; 2008), the affinity of two peaks ``i, j`` is the product of
three Gaussian kernels::

    W_ij = exp(-(Δbark / σ_f)²) · exp(-(ΔdB / σ_a)²) · exp(-((1 - HWPS_ij) / σ_h)²)

HWPS, the harmonically wrapped peak similarity, compares the spectral patterns of the two
peaks' frames seen from each peak: shift the frame's peak frequencies by the peak's own
frequency, wrap them modulo a wrapping frequency ``h`` (a fundamental), and histogram them
weighted by amplitude. Two partials of one harmonic source see the same wrapped pattern when
``h`` is that source's fundamental. The 2008 paper takes ``h`` from one f0 estimate per frame,
which favours the predominant source; here each pair takes the best of the window's few pitch
candidates (see :func:`separation.peaks.harmonic_pitches`), so secondary sources are grouped by
their own fundamental too.

Clustering is the normalized cut relaxed to the eigenvectors of ``D^-1/2 W D^-1/2`` (Shi & Malik
2000), discretized with k-means on the row-normalized embedding (Ng, Jordan & Weiss 2002).
"""
from __future__ import annotations

import contextlib
import ctypes
import sys

import numpy as np
import scipy.linalg

from .peaks import bark

__all__ = ["hwps", "similarity", "normalized_cut", "kmeans", "single_threaded_blas"]

_BLAS_SYMBOLS = (("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
                 ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
                 ("openblas_set_num_threads", "openblas_get_num_threads"))


@contextlib.contextmanager
def single_threaded_blas():
    """Run the enclosed block with OpenBLAS limited to one thread, then restore it.

    The window graphs are small (a few hundred nodes): multi-threaded BLAS/LAPACK gains nothing
    there and, on a loaded machine, its spinning threads made ``eigh`` ten to twenty times
    slower. Works on the OpenBLAS builds numpy and scipy ship on Linux; elsewhere a no-op."""
    restore = []
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/self/maps") as fh:
                paths = sorted({ln.split()[-1] for ln in fh if "openblas" in ln.lower() and "/" in ln})
        except OSError:
            paths = []
        for path in paths:
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for set_name, get_name in _BLAS_SYMBOLS:
                if hasattr(lib, set_name) and hasattr(lib, get_name):
                    getattr(lib, get_name).restype = ctypes.c_int
                    restore.append((getattr(lib, set_name), int(getattr(lib, get_name)())))
                    getattr(lib, set_name)(1)
                    break
    try:
        yield
    finally:
        for setter, n in restore:
            setter(n)


def hwps(freq: np.ndarray, mag: np.ndarray, frame: np.ndarray, wraps: np.ndarray, *,
         n_bins: int = 20) -> np.ndarray:
    """Harmonically wrapped peak similarity of all peak pairs [shape=(N, N)], in [0, 1].

    ``freq`` (Hz), ``mag`` (linear amplitude) and ``frame`` (local frame index, any integers)
    [shape=(N,)]; ``wraps`` candidate wrapping frequencies in Hz [shape=(M,)]. For each ``h``
    the amplitude-weighted wrapped histogram (``n_bins`` circular bins, linear interpolation
    between bins) of every peak's shifted frame pattern is built, and the cosine similarity of
    two histograms is the HWPS under ``h``; the pair's HWPS is the maximum over ``h``.
    """
    n = freq.shape[0]
    if n == 0 or len(wraps) == 0:
        return np.zeros((n, n))
    _, local = np.unique(frame, return_inverse=True)
    n_fr = int(local.max()) + 1
    counts = np.bincount(local, minlength=n_fr)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    order = np.argsort(local, kind="stable")
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n) - starts[local[order]]
    k = int(counts.max())
    fq = np.zeros((n_fr, k))
    am = np.zeros((n_fr, k))
    fq[local, pos] = freq
    am[local, pos] = mag / np.maximum(np.bincount(local, weights=mag, minlength=n_fr), 1e-12)[local]
    pat_f = fq[local] - freq[:, None]                       # [N, K] shifted patterns
    pat_a = am[local]                                        # [N, K] their weights
    wraps = np.asarray(wraps, dtype=np.float64)
    m = len(wraps)
    # every wrapping frequency's histograms at once [M, N, n_bins] (each bin adds its terms in the
    # same order as one wrap at a time), then the similarities wrap by wrap
    rows = (np.arange(m * n) * n_bins).reshape(m, n, 1)
    u = np.mod(pat_f[None] / wraps[:, None, None], 1.0) * n_bins
    lo = np.floor(u)
    frac = u - lo
    lo = lo.astype(np.int64) % n_bins
    hi = (lo + 1) % n_bins
    hists = np.bincount((rows + lo).ravel(), weights=(pat_a * (1 - frac)).ravel(), minlength=m * n * n_bins)
    hists += np.bincount((rows + hi).ravel(), weights=(pat_a * frac).ravel(), minlength=m * n * n_bins)
    hists = hists.reshape(m, n, n_bins)
    hists /= np.maximum(np.linalg.norm(hists, axis=2, keepdims=True), 1e-12)
    best = np.zeros((n, n))
    for hist in hists:
        np.maximum(best, hist @ hist.T, out=best)
    return np.clip(best, 0.0, 1.0)


def similarity(freq: np.ndarray, db: np.ndarray, mag: np.ndarray, frame: np.ndarray,
               wraps: np.ndarray, *, sigma_bark: float = 15.0, sigma_db: float = 40.0,
               sigma_h: float = 0.15) -> np.ndarray:
    """Affinity matrix of a texture window's peaks [shape=(N, N)], zero diagonal.

    Frequency proximity in Bark, amplitude proximity in dB, harmonicity by :func:`hwps`
    (``freq`` Hz, ``db`` dB, ``mag`` linear, ``frame`` indices, all [shape=(N,)]).
    """
    b = bark(freq)
    e = ((b[:, None] - b[None, :]) / sigma_bark) ** 2
    e += ((db[:, None] - db[None, :]) / sigma_db) ** 2
    e += ((1.0 - hwps(freq, mag, frame, wraps)) / sigma_h) ** 2
    w = np.exp(-e)
    np.fill_diagonal(w, 0.0)
    return w


def kmeans(x: np.ndarray, k: int, *, rng: np.random.Generator, weights: np.ndarray | None = None,
           n_init: int = 3, n_iter: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Weighted k-means (k-means++ seeding) of points ``x`` [shape=(N, D)].

    Returns ``(labels [shape=(N,)], centres [shape=(k, D)])`` of the run with the lowest
    weighted inertia. Deterministic for a given ``rng`` state.
    """
    n = x.shape[0]
    k = max(1, min(k, n))
    wts = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    best = (np.inf, np.zeros(n, dtype=np.int64), x[:k].copy())
    dim = x.shape[1]
    cols = np.arange(dim)[None, :]
    wx = wts[:, None] * x                   # each point's weighted coordinates (as wts * x[:, j])
    for _ in range(n_init):
        centres = np.empty((k, x.shape[1]))
        centres[0] = x[rng.choice(n, p=wts / wts.sum())]
        d2 = ((x - centres[0]) ** 2).sum(axis=1)
        for c in range(1, k):
            p = d2 * wts
            idx = rng.choice(n, p=p / p.sum()) if p.sum() > 0 else rng.integers(n)
            centres[c] = x[idx]
            d2 = np.minimum(d2, ((x - centres[c]) ** 2).sum(axis=1))
        labels = np.zeros(n, dtype=np.int64)
        for it in range(n_iter):
            dist = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
            new = np.argmin(dist, axis=1)
            if it and np.array_equal(new, labels):
                break
            labels = new
            mass = np.bincount(labels, weights=wts, minlength=k)
            # every (cluster, dimension) sum in one bincount: each bin still adds its points in order
            sums = np.bincount((labels[:, None] * dim + cols).ravel(), weights=wx.ravel(),
                               minlength=k * dim).reshape(k, dim)
            filled = mass > 0
            centres[filled] = sums[filled] / mass[filled, None]
        dist = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        labels = np.argmin(dist, axis=1)
        inertia = float((dist[np.arange(n), labels] * wts).sum())
        if inertia < best[0]:
            best = (inertia, labels, centres.copy())
    return best[1], best[2]


def normalized_cut(w: np.ndarray, *, k_max: int, min_eig: float = 0.3,
                   rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Spectral normalized-cut clustering of affinity ``w`` [shape=(N, N)].

    The number of clusters ``k`` (1..``k_max``) is the number of eigenvalues of the normalized
    affinity at or above ``min_eig`` (each nearly-disconnected group contributes one eigenvalue
    near 1; ``1 - λ`` is the relaxed normalized-cut cost). Returns ``(labels [shape=(N,)], k)``.
    """
    n = w.shape[0]
    if n <= 2 or k_max <= 1:
        return np.zeros(n, dtype=np.int64), 1
    deg = w.sum(axis=1)
    isolated = deg <= 1e-9
    dinv = 1.0 / np.sqrt(np.maximum(deg, 1e-9))
    lap = w * dinv[:, None] * dinv[None, :]
    k_max = min(k_max, n - 1)
    vals, vecs = scipy.linalg.eigh(lap, subset_by_index=[n - k_max, n - 1], driver="evr",
                                   check_finite=False)
    vals, vecs = vals[::-1], vecs[:, ::-1]
    k = int(max(1, np.count_nonzero(vals >= min_eig)))
    if k == 1:
        return np.zeros(n, dtype=np.int64), 1
    emb = vecs[:, :k]
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    labels, _ = kmeans(emb, k, rng=rng, weights=np.where(isolated, 1e-6, 1.0))
    _, labels = np.unique(labels, return_inverse=True)
    return labels.astype(np.int64), int(labels.max()) + 1
