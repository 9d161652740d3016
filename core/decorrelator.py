"""Decorrelation of a mono signal: an all-pass cascade plus transient detection.

``allpass_cascade(x)`` runs four Schroeder all-pass sections (mutually prime delays of 3-11 ms,
gain 0.6) in series: the magnitude spectrum is unchanged, the phase is scrambled, so the output is
largely incoherent with the input within each band and frame (Schroeder 1958; Breebaart et al.
2005 use the same structure in the sub-band domain). Each section ``y[n] = -g x[n] + x[n-M] +
g y[n-M]`` is evaluated as ``M`` independent first-order recursions (a reshape and one
``scipy.signal.lfilter`` call), so the cost is linear in the signal length.

``transient_strength(energy)`` detects onsets per band and frame from the mono signal's band
energies; the decoder raises the coherence of the output there (less decorrelated signal), so the
all-pass cascade's smeared copy of an attack never reaches the output: onsets stay sharp.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from . import SAMPLE_RATE
from .denormals import flushed
from .errors import ParameterError

__all__ = ["allpass_cascade", "transient_strength", "DELAYS_MS", "GAIN"]

DELAYS_MS = (3.1, 4.7, 7.3, 11.3)
GAIN = 0.6


def _allpass(x: np.ndarray, m: int, g: float) -> np.ndarray:
    n = len(x)
    blocks = -(-n // m)
    v = np.empty(blocks * m, np.float32)   # v[k] = -g x[k] + x[k - m] (x is 0 outside 0..n-1)
    np.multiply(x, np.float32(-g), out=v[:n])
    v[n:] = 0.0
    lo = max(n, m)
    v[lo:] = x[lo - m:blocks * m - m]
    if n > m:
        v[m:n] += x[:n - m]
    # y[n] = v[n] + g y[n - m]; float32 coefficients keep lfilter in float32 (half the memory)
    y = lfilter(np.array([1.0], np.float32), np.array([1.0, -g], np.float32), v.reshape(blocks, m), axis=0)
    return y.reshape(-1)[:n].astype(np.float32, copy=False)


def allpass_cascade(x: np.ndarray, *, sr: int = SAMPLE_RATE, delays_ms=DELAYS_MS, gain: float = GAIN) -> np.ndarray:
    """Decorrelated copy of ``x`` [shape=(n,)] -> [shape=(n,)], same magnitude spectrum."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 1:
        raise ParameterError(f"allpass_cascade expects a 1-D signal, got shape {x.shape}")
    if not 0.0 <= gain < 1.0:
        raise ParameterError(f"all-pass gain must be in [0, 1), got {gain}")
    y = x
    with flushed():                         # silence would leave the sections in subnormals (core.denormals)
        for d in delays_ms:
            y = _allpass(y, max(1, int(round(d * sr / 1000))), gain)
    return y


def transient_strength(energy: np.ndarray, *, rise_db: float = 4.0, full_db: float = 12.0,
                       smooth: float = 0.6, hold=(1.0, 1.0, 0.6), state=None):
    """Onset strength in [0, 1] per band and frame from band energies [shape=(bands, frames)].

    A frame is a transient in a band when its energy rises more than ``rise_db`` above the
    recursively smoothed energy of the frames before it (fully at ``full_db``); the strength is
    held over the next frames with weights ``hold`` (the all-pass tail lasts ~2 frames).
    ``state`` carries the detector across consecutive chunks: pass the returned state back in.
    Returns ``(strength [shape=(bands, frames)], state)``.
    """
    e = np.asarray(energy, dtype=np.float64)
    bands, t = e.shape
    k = len(hold) - 1
    if t == 0:
        return np.zeros((bands, 0), np.float32), state
    if state is None:
        s0, prev_raw = e[:, 0], np.zeros((bands, k))
    else:
        s0, prev_raw = state
    floor = 1e-12 + 1e-9 * float(e.max(initial=0.0))
    # smoothed energy of the frames before frame t: s[t] = smooth * s[t-1] + (1 - smooth) * e[t-1]
    rest, _ = lfilter([1.0 - smooth], [1.0, -smooth], e[:, :-1], axis=1, zi=(smooth * s0)[:, None])
    s = np.concatenate([s0[:, None], rest], axis=1)
    rise = 10.0 * np.log10((e + floor) / (s + floor))
    raw = np.clip((rise - rise_db) / (full_db - rise_db), 0.0, 1.0)
    ext = np.concatenate([prev_raw, raw], axis=1)
    out = raw * hold[0]
    for j in range(1, k + 1):
        out = np.maximum(out, ext[:, k - j: k - j + t] * hold[j])
    new_state = (smooth * s[:, -1] + (1 - smooth) * e[:, -1], ext[:, ext.shape[1] - k:])
    return out.astype(np.float32), new_state
