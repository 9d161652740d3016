"""Parametric-stereo (PS) analysis and quantization (Serrà et al. 2023, Sec. 2.1).

For complex spectrograms L and R [shape=(bins, frames)] and the banding sum rho(X, Y) = B (X . Y*):

    IID = 10 log10( rho(L, L) / rho(R, R) )                 in dB, positive = louder on the left
    IC  = Re{ rho(L, R) } / sqrt( rho(L, L) rho(R, R) )      in [-1, 1]

Both are [shape=(34, frames)]. Silence is safe: where both channels are silent IID = 0 and IC = 1
(a silent band carries no stereo image). IID is limited to +-50 dB, the range of the quantizer.
Quantization uses the MPEG-4 PS tables (31 IID steps, 8 IC steps); the fused token is
``8 * iid_index + ic_index`` in [0, 248).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bands import N_BANDS, band_sum
from .errors import ParameterError
from .stft import stft

__all__ = ["PSParams", "IID_TABLE", "IC_TABLE", "N_IID", "N_IC", "N_TOKENS", "analyze_spectra",
           "analyze", "quantize", "dequantize", "to_tokens", "from_tokens", "band_energy"]

# MPEG-4 PS (ISO/IEC 14496-3) fine-resolution IID table, dB, and the ICC table.
IID_TABLE = np.array([-50, -45, -40, -35, -30, -25, -22, -19, -16, -13, -10, -8, -6, -4, -2, 0,
                      2, 4, 6, 8, 10, 13, 16, 19, 22, 25, 30, 35, 40, 45, 50], dtype=np.float32)
IC_TABLE = np.array([1.0, 0.937, 0.84118, 0.60092, 0.36764, 0.0, -0.589, -1.0], dtype=np.float32)
N_IID, N_IC = len(IID_TABLE), len(IC_TABLE)
N_TOKENS = N_IID * N_IC
IID_MAX_DB = 50.0

# decision thresholds halfway between table entries (IC table is decreasing)
_IID_THR = 0.5 * (IID_TABLE[1:] + IID_TABLE[:-1])
_IC_THR = 0.5 * (IC_TABLE[1:] + IC_TABLE[:-1])[::-1]  # increasing

# relative floor under which a band is treated as silent (power relative to the loudest band)
_SILENCE = 1e-10


@dataclass
class PSParams:
    """PS parameters: ``iid`` in dB and ``ic`` in [-1, 1], both [shape=(34, frames)] float32."""
    iid: np.ndarray
    ic: np.ndarray

    def __post_init__(self):
        self.iid = np.asarray(self.iid, dtype=np.float32)
        self.ic = np.asarray(self.ic, dtype=np.float32)
        if self.iid.shape != self.ic.shape or self.iid.ndim != 2 or self.iid.shape[0] != N_BANDS:
            raise ParameterError(f"PS parameters need iid and ic of shape ({N_BANDS}, frames); "
                                 f"got {self.iid.shape} and {self.ic.shape}")

    @property
    def n_frames(self) -> int:
        return self.iid.shape[1]

    def stacked(self) -> np.ndarray:
        """IID and IC concatenated along bands, the paper's P [shape=(68, frames)]."""
        return np.concatenate([self.iid, self.ic], axis=0)

    @classmethod
    def from_stacked(cls, p: np.ndarray) -> "PSParams":
        return cls(p[:N_BANDS], p[N_BANDS:])

    def slice(self, start: int, stop: int) -> "PSParams":
        return PSParams(self.iid[:, start:stop], self.ic[:, start:stop])

    def fit_frames(self, n: int) -> "PSParams":
        """Trim or extend (repeating the last frame) to ``n`` frames."""
        t = self.n_frames
        if t == n:
            return self
        if t > n:
            return self.slice(0, n)
        pad = n - t
        return PSParams(np.pad(self.iid, ((0, 0), (0, pad)), mode="edge"),
                        np.pad(self.ic, ((0, 0), (0, pad)), mode="edge"))

    @classmethod
    def neutral(cls, n_frames: int) -> "PSParams":
        """Mono image: IID 0 dB and IC 1 everywhere."""
        return cls(np.zeros((N_BANDS, n_frames), np.float32), np.ones((N_BANDS, n_frames), np.float32))


def analyze_spectra(L: np.ndarray, R: np.ndarray) -> PSParams:
    """IID/IC from complex spectrograms L, R [shape=(bins, frames)]."""
    if L.shape != R.shape:
        raise ParameterError(f"left and right spectrograms differ in shape: {L.shape} vs {R.shape}")
    pll = band_sum((L.real ** 2 + L.imag ** 2).astype(np.float64))
    prr = band_sum((R.real ** 2 + R.imag ** 2).astype(np.float64))
    plr = band_sum((L.real * R.real + L.imag * R.imag).astype(np.float64))  # Re{L R*}
    floor = _SILENCE * max(float(pll.max(initial=0.0)), float(prr.max(initial=0.0)), 1e-30)
    iid = 10.0 * np.log10((pll + floor) / (prr + floor))
    silent = (pll <= floor) & (prr <= floor)
    with np.errstate(invalid="ignore", divide="ignore"):
        ic = plr / np.sqrt(pll * prr)
    ic = np.where(silent | ~np.isfinite(ic), 1.0, ic)
    return PSParams(np.clip(iid, -IID_MAX_DB, IID_MAX_DB), np.clip(ic, -1.0, 1.0))


def analyze(stereo: np.ndarray) -> PSParams:
    """IID/IC of a stereo signal [shape=(n, 2)] with the paper's STFT settings."""
    stereo = np.asarray(stereo)
    if stereo.ndim != 2 or stereo.shape[1] != 2:
        raise ParameterError(f"analyze expects stereo audio of shape (n, 2), got {stereo.shape}")
    return analyze_spectra(stft(stereo[:, 0]), stft(stereo[:, 1]))


def band_energy(spec: np.ndarray) -> np.ndarray:
    """Band energies rho(S, S) of a complex spectrogram [shape=(bins, frames)] -> [shape=(34, frames)]."""
    return band_sum((spec.real ** 2 + spec.imag ** 2)).astype(np.float32)


def quantize(p: PSParams) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-entry quantization -> (iid_index, ic_index), int64 [shape=(34, frames)] each."""
    qi = np.searchsorted(_IID_THR, p.iid, side="left")
    qc = (N_IC - 1) - np.searchsorted(_IC_THR, p.ic, side="left")
    return qi.astype(np.int64), qc.astype(np.int64)


def dequantize(qi: np.ndarray, qc: np.ndarray) -> PSParams:
    return PSParams(IID_TABLE[np.asarray(qi)], IC_TABLE[np.asarray(qc)])


def to_tokens(p: PSParams) -> np.ndarray:
    """Fused tokens ``8 * iid_index + ic_index`` [shape=(34, frames)], int64 in [0, 248)."""
    qi, qc = quantize(p)
    return qi * N_IC + qc


def from_tokens(tokens: np.ndarray) -> PSParams:
    tokens = np.asarray(tokens)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= N_TOKENS):
        raise ParameterError(f"tokens must lie in [0, {N_TOKENS}), got [{tokens.min()}, {tokens.max()}]")
    return dequantize(tokens // N_IC, tokens % N_IC)
