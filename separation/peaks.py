"""Spectral peaks per frame and harmonic pitch estimation from peak sets.

Sound source formation (Lagrange, Martins & Tzanetakis 2007) works on a sparse representation:
per STFT frame, a bounded number of the most prominent local maxima of the magnitude spectrum,
each with its frequency and amplitude refined by parabolic interpolation of the log magnitude.

A :class:`Peaks` set is flat (one row per peak) and sorted by frame, so the peaks of frames
``[a, b)`` are the contiguous slice ``peaks.span(a, b)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d

from core.errors import ParameterError

__all__ = ["Peaks", "pick_peaks", "harmonic_pitches", "bark"]

_EPS = 1e-12


@dataclass(frozen=True)
class Peaks:
    """Spectral peaks of a recording, flat and sorted by frame.

    ``frame`` [shape=(P,), int64], ``bin`` fractional STFT bin [shape=(P,), float64],
    ``freq`` in Hz [shape=(P,)], ``mag`` interpolated STFT magnitude (same scale as ``|X|``)
    [shape=(P,)], ``db`` the same in dB re full-scale sine [shape=(P,)].
    """
    frame: np.ndarray
    bin: np.ndarray
    freq: np.ndarray
    mag: np.ndarray
    db: np.ndarray

    def __len__(self) -> int:
        return int(self.frame.shape[0])

    def span(self, start: int, stop: int) -> slice:
        """Slice of the peaks whose frame lies in ``[start, stop)``."""
        a, b = np.searchsorted(self.frame, [start, stop], side="left")
        return slice(int(a), int(b))

    @staticmethod
    def concat(parts: list["Peaks"]) -> "Peaks":
        if not parts:
            e = np.zeros(0)
            return Peaks(e.astype(np.int64), e, e, e, e)
        return Peaks(*(np.concatenate([getattr(p, f) for p in parts])
                       for f in ("frame", "bin", "freq", "mag", "db")))


def bark(freq: np.ndarray) -> np.ndarray:
    """Frequency in Hz -> critical-band rate in Bark (Traunmüller 1990) [same shape]."""
    f = np.asarray(freq, dtype=np.float64)
    return 26.81 * f / (1960.0 + f) - 0.53


def pick_peaks(mag: np.ndarray, *, sr: int, n_fft: int, max_peaks: int = 30,
               prominence_db: float = 9.0, range_db: float = 65.0, floor_db: float = -90.0,
               fmin: float = 30.0, fmax: float = 16000.0, frame_offset: int = 0) -> Peaks:
    """The ``max_peaks`` most prominent spectral peaks of each frame.

    ``mag`` is an STFT magnitude [shape=(n_fft//2+1, frames)] of a Hann-windowed signal. A peak is
    a local maximum that stands ``prominence_db`` above the local mean log spectrum (a moving
    average over about ±10 bins, which rejects window side lobes and most noise maxima), lies
    within ``range_db`` of the frame's strongest bin and above ``floor_db`` (dB re a full-scale
    sine). Frequency and amplitude are refined by a parabola through the log magnitudes of the
    peak bin and its two neighbours. Frames are numbered from ``frame_offset``.
    """
    if mag.ndim != 2 or mag.shape[0] != n_fft // 2 + 1:
        raise ParameterError(f"pick_peaks expects shape ({n_fft // 2 + 1}, frames), got {mag.shape}")
    if max_peaks < 1:
        raise ParameterError(f"max_peaks must be >= 1, got {max_peaks}")
    n_bins, n_frames = mag.shape
    # Full-scale sine of amplitude 1 gives |X| = sum(hann)/2 = n_fft/4 at its bin.
    ref = n_fft / 4.0
    d = 20.0 * np.log10(np.ascontiguousarray(mag.T, dtype=np.float32) / ref + _EPS)  # [frames, bins]
    mid = d[:, 1:-1]
    local = (mid > d[:, :-2]) & (mid >= d[:, 2:])
    smooth = uniform_filter1d(d, size=21, axis=1, mode="nearest")[:, 1:-1]
    top = d.max(axis=1, keepdims=True)
    ok = local & (mid - smooth >= prominence_db) & (mid >= top - range_db) & (mid >= floor_db)
    bins = np.arange(1, n_bins - 1)
    ok &= ((bins >= fmin * n_fft / sr) & (bins <= fmax * n_fft / sr))[None, :]
    score = np.where(ok, mid, -np.inf)
    k = min(max_peaks, score.shape[1])
    cand = np.argpartition(-score, k - 1, axis=1)[:, :k] if k < score.shape[1] else \
        np.broadcast_to(np.arange(score.shape[1]), score.shape)
    rows = np.broadcast_to(np.arange(n_frames)[:, None], cand.shape)
    keep = np.isfinite(score[rows, cand])
    fr, b = rows[keep], cand[keep] + 1  # back to full-spectrum bin index
    order = np.lexsort((b, fr))
    fr, b = fr[order], b[order]
    alpha, beta, gamma = d[fr, b - 1], d[fr, b], d[fr, b + 1]
    den = alpha - 2.0 * beta + gamma
    p = np.where(den < -1e-9, 0.5 * (alpha - gamma) / np.where(den < -1e-9, den, -1.0), 0.0)
    p = np.clip(p, -0.5, 0.5)
    db = beta - 0.25 * (alpha - gamma) * p
    fbin = b + p
    return Peaks(frame=(fr + frame_offset).astype(np.int64), bin=fbin.astype(np.float64),
                 freq=(fbin * sr / n_fft).astype(np.float64),
                 mag=(ref * 10.0 ** (db / 20.0)).astype(np.float64), db=db.astype(np.float64))


def harmonic_pitches(freq: np.ndarray, weight: np.ndarray, *, n_pitches: int = 1,
                     fmin: float = 40.0, fmax: float = 2000.0, max_harmonic: int = 16,
                     tolerance: float = 0.03, n_strong: int = 8, max_divisor: int = 6
                     ) -> np.ndarray:
    """Up to ``n_pitches`` fundamental frequencies explaining a set of peaks [shape=(<=n_pitches,)].

    Sub-harmonic summation over candidates ``f / m`` (``m = 1..max_divisor``) of the ``n_strong``
    strongest peaks: a candidate scores the weight of the peaks lying within ``tolerance``
    (relative) of one of its harmonics, each discounted by ``h ** -0.5`` so that sub-octave
    candidates, which explain the same peaks with doubled harmonic numbers, lose. The best
    candidate is kept, the peaks it explains are removed, and the search repeats.
    ``freq`` and ``weight`` [shape=(P,)]; weights are amplitudes (linear).
    """
    freq = np.asarray(freq, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64).copy()
    out: list[float] = []
    div = np.arange(1, max_divisor + 1, dtype=np.float64)
    for _ in range(n_pitches):
        live = w > 0
        if live.sum() == 0:
            break
        strong = np.argsort(-w)[:n_strong]
        strong = strong[w[strong] > 0]
        cand = (freq[strong][:, None] / div[None, :]).ravel()
        cand = cand[(cand >= fmin) & (cand <= fmax)]
        if cand.size == 0:
            break
        r = freq[None, :] / cand[:, None]                      # [C, P]
        h = np.rint(r)
        dev = np.abs(r - h) / np.maximum(h, 1.0)
        hit = (h >= 1) & (h <= max_harmonic) & (dev <= tolerance)
        score = (np.where(hit, w[None, :] / np.sqrt(np.maximum(h, 1.0)), 0.0)).sum(axis=1)
        best = int(np.argmax(score))
        if score[best] <= 0:
            break
        out.append(float(cand[best]))
        w = np.where(hit[best], 0.0, w)
    return np.asarray(out, dtype=np.float64)
