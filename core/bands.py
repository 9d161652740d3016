"""The 34 ERB-like frequency bands used for PS parameters (Breebaart et al. 2005; Serrà et al. 2023).

Band edges are equally spaced on the ERB-rate scale (Glasberg & Moore) from 0 Hz to Nyquist and
rounded to STFT bins of the 4096-point transform (10.8 Hz apart), so every band holds at least
three bins. ``band_sum(X)`` implements the paper's banding matrix ``B`` as a segment sum along bins.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from . import SAMPLE_RATE
from .errors import ParameterError
from .stft import N_BINS, N_FFT

__all__ = ["N_BANDS", "band_edges", "band_of_bin", "band_sum", "band_centres_hz"]

N_BANDS = 34


def _erb_rate(f):
    return 21.4 * np.log10(1.0 + 0.00437 * np.asarray(f, dtype=np.float64))


def _inv_erb_rate(e):
    return (10 ** (np.asarray(e, dtype=np.float64) / 21.4) - 1.0) / 0.00437


@lru_cache(maxsize=8)
def band_edges(n_bands: int = N_BANDS, n_fft: int = N_FFT, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Bin indices [shape=(n_bands+1,)]: band ``b`` holds bins ``edges[b]:edges[b+1]``."""
    n_bins = n_fft // 2 + 1
    hz = _inv_erb_rate(np.linspace(0.0, _erb_rate(sr / 2), n_bands + 1))
    edges = np.round(hz / (sr / n_fft)).astype(np.int64)
    edges[0], edges[-1] = 0, n_bins
    for i in range(1, n_bands + 1):  # strictly increasing, at least 2 bins per band
        edges[i] = max(edges[i], edges[i - 1] + 2)
    if edges[-1] != n_bins:
        raise ParameterError(f"cannot fit {n_bands} bands in {n_bins} bins")
    edges.setflags(write=False)
    return edges


@lru_cache(maxsize=8)
def band_of_bin(n_bands: int = N_BANDS, n_fft: int = N_FFT, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Band index of every bin [shape=(n_bins,)]."""
    e = band_edges(n_bands, n_fft, sr)
    out = np.repeat(np.arange(n_bands), np.diff(e))
    out.setflags(write=False)
    return out


def band_centres_hz(n_bands: int = N_BANDS, n_fft: int = N_FFT, sr: int = SAMPLE_RATE) -> np.ndarray:
    e = band_edges(n_bands, n_fft, sr)
    return 0.5 * (e[:-1] + e[1:] - 1) * sr / n_fft


def band_sum(x: np.ndarray, n_bands: int = N_BANDS) -> np.ndarray:
    """Sum ``x`` [shape=(n_bins, ...)] over the bins of each band -> [shape=(n_bands, ...)]."""
    if x.shape[0] != N_BINS:
        raise ParameterError(f"band_sum expects {N_BINS} bins on axis 0, got shape {x.shape}")
    return np.add.reduceat(x, band_edges(n_bands)[:-1], axis=0)
