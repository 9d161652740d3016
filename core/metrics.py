"""Measurements of stereo audio, "listening with numbers": levels, clipping, correlation, width,
and PS statistics (median |IID|, mean IC) over the bands and frames that carry energy.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .bands import band_centres_hz
from .errors import ParameterError
from .ps import PSParams, analyze_spectra, band_energy
from .stft import stft

__all__ = ["StereoStats", "stereo_stats", "energy_mask", "db", "peak_ceiling", "roundtrip_errors"]


def db(x, floor: float = 1e-12) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(np.asarray(x, dtype=np.float64), floor))


def energy_mask(energy: np.ndarray, *, below_db: float = 60.0) -> np.ndarray:
    """Band-frame tiles [shape=(bands, frames)] within ``below_db`` of the loudest tile: the ones
    that carry energy (silence and near-silence do not have a meaningful stereo image)."""
    e = np.asarray(energy, dtype=np.float64)
    return e > e.max(initial=0.0) * 10 ** (-below_db / 10) if e.size else np.zeros_like(e, bool)


@dataclass
class StereoStats:
    seconds: float
    peak_db: tuple[float, float]
    rms_db: tuple[float, float]
    clipped_samples: int
    correlation: float            # broadband Pearson correlation of L and R
    width: float                  # rms(L - R) / rms(L + R): 0 = mono, 1 = as wide as loud
    median_abs_iid_db: float
    mean_ic: float
    band_iid_db: np.ndarray       # median IID per band over energetic frames [shape=(34,)]
    band_ic: np.ndarray           # median IC per band [shape=(34,)]

    def as_dict(self) -> dict:
        d = asdict(self)
        d["band_iid_db"] = self.band_iid_db.round(2).tolist()
        d["band_ic"] = self.band_ic.round(3).tolist()
        return d


def stereo_stats(stereo: np.ndarray, sr: int = 44100, params: PSParams | None = None) -> StereoStats:
    """Statistics of a stereo signal [shape=(n, 2)]."""
    x = np.asarray(stereo, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ParameterError(f"stereo_stats expects shape (n, 2), got {x.shape}")
    L, R = x[:, 0], x[:, 1]
    SL, SR = stft(L.astype(np.float32)), stft(R.astype(np.float32))
    p = params if params is not None else analyze_spectra(SL, SR)
    mask = energy_mask(band_energy(SL) + band_energy(SR))
    iid = np.where(mask, p.iid, np.nan)
    ic = np.where(mask, p.ic, np.nan)
    with np.errstate(all="ignore"):
        corr = float(np.sum(L * R) / np.sqrt(np.sum(L * L) * np.sum(R * R))) if np.any(L) and np.any(R) else 1.0
        width = float(np.sqrt(np.mean((L - R) ** 2) / max(np.mean((L + R) ** 2), 1e-30)))
        band_iid = np.nanmedian(iid, axis=1) if mask.any() else np.zeros(len(iid))
        band_ic = np.nanmedian(ic, axis=1) if mask.any() else np.ones(len(ic))
    return StereoStats(
        seconds=len(x) / sr,
        peak_db=tuple(float(v) for v in 20 * np.log10(np.maximum(np.abs(x).max(axis=0), 1e-12))),
        rms_db=tuple(float(v) for v in 10 * np.log10(np.maximum((x ** 2).mean(axis=0), 1e-24))),
        clipped_samples=int(np.sum(np.abs(x) >= 1.0)),
        correlation=corr,
        width=width,
        median_abs_iid_db=float(np.nanmedian(np.abs(iid))) if mask.any() else 0.0,
        mean_ic=float(np.nanmean(ic)) if mask.any() else 1.0,
        band_iid_db=np.nan_to_num(band_iid), band_ic=np.nan_to_num(band_ic, nan=1.0),
    )


def peak_ceiling(audio: np.ndarray, ceiling_db: float = -0.1) -> tuple[np.ndarray, float]:
    """Scale ``audio`` so its sample peak is at most ``ceiling_db`` dBFS.

    Returns ``(audio, gain_db)`` with ``gain_db <= 0`` (0 when nothing had to change). A plain
    gain, not a limiter: the mix balance and the downmix relation are kept."""
    peak = float(np.max(np.abs(audio), initial=0.0))
    limit = 10 ** (ceiling_db / 20)
    if peak <= limit:
        return audio, 0.0
    g = limit / peak
    return (audio * g).astype(np.float32), float(20 * np.log10(g))


def roundtrip_errors(original: PSParams, decoded: PSParams, energy: np.ndarray) -> dict:
    """Median absolute IID (dB) and IC errors over tiles that carry energy, overall and per band."""
    mask = energy_mask(energy)
    diid = np.abs(original.iid - decoded.iid)
    dic = np.abs(original.ic - decoded.ic)
    return {
        "iid_median_abs_db": float(np.median(diid[mask])) if mask.any() else 0.0,
        "ic_median_abs": float(np.median(dic[mask])) if mask.any() else 0.0,
        "band_hz": band_centres_hz().round(0).tolist(),
    }
