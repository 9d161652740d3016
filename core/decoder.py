"""Parametric-stereo decoder (Breebaart et al. 2005, Sec. 5; Serrà et al. 2023, Sec. 2.2).

Per band b and frame t, with c = 10^(IID/20), the mono S and a decorrelated copy D (same power,
orthogonal to S) are mixed by

    L = c1 cos(beta + alpha) S + c1 sin(beta + alpha) D
    R = c2 cos(beta - alpha) S + c2 sin(beta - alpha) D

    c1 = sqrt(2 c^2 / (1 + c^2)),  c2 = sqrt(2 / (1 + c^2)),  alpha = arccos(IC) / 2,
    beta = arctan( (c2 - c1) / (c2 + c1) * tan(alpha) )

so that P_L / P_R = c^2, Re<L, R> / sqrt(P_L P_R) = IC and P_L + P_R = 2 P_S (the decorrelated
part cancels in L + R). :func:`decode` then scales every tile by :func:`downmix_gain`, to the power
real stereo with that IID and IC has when its downmix (L + R) / 2 is the mono: the mid keeps the
mono's power and (L + R) / 2 is the input to float rounding wherever IC >= -0.5 (the gain's limit),
the law the chain renders every source with (:mod:`core.renderer`). D is made exactly orthogonal to S and of equal power in every band and
frame (a complex projection and a gain on the all-pass cascade's spectrum), so the targets hold
per tile and not only on average. Mixing happens per STFT frame; the 75 %-overlap Hann
overlap-add crossfades consecutive frames, which interpolates the parameters over time (no zipper
noise). At detected transients the target IC is raised towards 1, so the attack is carried by S
alone and never smeared by the decorrelator. Work runs in chunks of frames: memory stays bounded
for long recordings.

Mono-compatible mode (``mono_compatible=True``): the output is built as mid = S exactly and
side = a S + b D per band and frame, L = S + side, R = S - side, so (L + R) / 2 is the input to
float rounding. With |S|^2 = |D|^2 = P and S orthogonal to D, the tile's powers are
P_L = P ((1 + a)^2 + b^2), P_R = P ((1 - a)^2 + b^2) and Re<L, R> = P (1 - a^2 - b^2). With
t = (c^2 - 1) / (c^2 + 1) (= tanh of IID in nepers) and k = IC sqrt(1 - t^2), the closed form

    a = t / (1 + k),   b = sqrt((1 - t^2) (1 - IC^2)) / (1 + k)

meets the target IID and IC exactly (:func:`side_coefficients`). Negative IC would need a side
louder than the mid (P_side = P (1 - k) / (1 + k)); IC is clamped at 0 so the side never exceeds
the mid: those tiles get IC 0 and their exact IID. The side alone goes through the overlap-add;
L and R are formed in the time domain, so the overlap-add cannot break the sum.
"""
from __future__ import annotations

import threading
from typing import Optional

import numpy as np

from .bands import N_BANDS, band_of_bin, band_sum
from .decorrelator import allpass_cascade, transient_strength
from .errors import ParameterError
from .progress import ProgressFn, check_cancel, report
from .ps import PSParams
from .stft import OverlapAdd, n_frames, stft_frames
from core import lazy
bands = lazy.module("core.bands")

__all__ = ["mixing_coefficients", "downmix_gain", "DOWNMIX_MAX_GAIN", "side_coefficients", "monocompat_coefficients", "coefficients", "decode", "Decorrelated", "prepare", "CHUNK_FRAMES"]

CHUNK_FRAMES = 1024  # ~24 s of audio per chunk
DOWNMIX_MAX_GAIN = 2.0  # +6 dB: real tiles down to IC -0.5 (centred) get their power back


def mixing_coefficients(iid: np.ndarray, ic: np.ndarray):
    """Mixing matrix entries (a, b, c, d) from IID (dB) and IC, each with the inputs' shape.

    ``L = a S + b D``, ``R = c S + d D``."""
    cc = np.power(10.0, np.asarray(iid, dtype=np.float64) / 20.0)
    c1 = np.sqrt(2.0 * cc * cc / (1.0 + cc * cc))
    c2 = np.sqrt(2.0 / (1.0 + cc * cc))
    alpha = 0.5 * np.arccos(np.clip(np.asarray(ic, dtype=np.float64), -1.0, 1.0))
    beta = np.arctan((c2 - c1) / (c2 + c1) * np.tan(np.minimum(alpha, np.pi / 2 - 1e-9)))
    a = c1 * np.cos(beta + alpha)
    b = c1 * np.sin(beta + alpha)
    c = c2 * np.cos(beta - alpha)
    d = c2 * np.sin(beta - alpha)
    return (a.astype(np.float32), b.astype(np.float32), c.astype(np.float32), d.astype(np.float32))


def downmix_gain(iid, ic, *, max_gain: float = DOWNMIX_MAX_GAIN) -> np.ndarray:
    """Amplitude gain per tile [shape of the inputs] that gives a decoded tile the power of real
    stereo with this IID (dB) and IC whose downmix ``(L + R) / 2`` is the mono.

    The mixing law alone (:func:`mixing_coefficients`) keeps ``P_L + P_R = 2 P_S`` whatever the IC.
    Real stereo has
    ``|(L + R) / 2|^2 = (P_L + P_R) (1 + k) / 4`` with ``k = IC sqrt(1 - t^2)`` and
    ``t = tanh(IID ln(10) / 20)``: for the mono ``S = (L + R) / 2`` its power is
    ``P_L + P_R = 4 P_S / (1 + k)``. A wide tile (IC 0) is thus 3 dB louder than the decoder makes
    it, and since broadband correlation and side-to-mid level weigh tiles by their power, decoded
    output reads narrower than the real stereo it came from, even with every tile's IID and IC
    right. Gain ``sqrt(2 / (1 + k))``, at most ``max_gain`` (negative IC would need a side louder
    than the mid without bound); with it the output's mid keeps the mono's power in every tile.
    1 for coherent centred tiles; tiles made coherent at transients (no decorrelated part) get
    exactly the coherent power ``2 P_S`` back."""
    t = np.tanh(np.asarray(iid, dtype=np.float64) * (np.log(10.0) / 20.0))
    k = np.asarray(ic, dtype=np.float64) * np.sqrt(np.maximum(1.0 - t * t, 0.0))
    return np.sqrt(np.minimum(2.0 / np.maximum(1.0 + k, 1e-12), max_gain * max_gain)).astype(np.float32)


def side_coefficients(iid: np.ndarray, ic: np.ndarray):
    """Mono-compatible side gains (a, b), each with the inputs' shape: ``side = a S + b D``,
    ``L = S + side``, ``R = S - side`` has the target IID (dB) and IC (clamped to [0, 1])."""
    iid = np.asarray(iid, dtype=np.float64)
    ic = np.clip(np.asarray(ic, dtype=np.float64), 0.0, 1.0)
    t = np.tanh(iid * (np.log(10.0) / 20.0))          # (c^2 - 1) / (c^2 + 1) with c = 10^(IID/20)
    r = np.sqrt(np.maximum(1.0 - t * t, 0.0))
    k = ic * r
    a = t / (1.0 + k)
    b = r * np.sqrt(np.maximum(1.0 - ic * ic, 0.0)) / (1.0 + k)
    return a.astype(np.float32), b.astype(np.float32)


def monocompat_coefficients(iid: np.ndarray, ic: np.ndarray):
    """The mono-compatible mode in the decoder's form ``L = a S + b D``, ``R = c S + d D``:
    (1 + a_s, b_s, 1 - a_s, -b_s) with (a_s, b_s) from :func:`side_coefficients`; a + c = 2 and
    b + d = 0 in every element, so any interpolation of these tables keeps L + R = 2 S."""
    a, b = side_coefficients(iid, ic)
    one = np.float32(1.0)
    return (one + a, b, one - a, -b)


def coefficients(iid: np.ndarray, ic: np.ndarray, *, mono_compatible: bool = False):
    """:func:`monocompat_coefficients` or :func:`mixing_coefficients`."""
    return (monocompat_coefficients if mono_compatible else mixing_coefficients)(iid, ic)


def _band_rows(x: np.ndarray) -> np.ndarray:
    """:func:`core.bands.band_sum` of ``x`` [shape=(bins, ...)] (to float rounding), added row by
    row: the bands are contiguous and widen with frequency, so step ``j`` adds bin ``edge + j`` of
    every band still that wide. A fixed order (the same bits every time), and on
    [bins, frames] spectra several times faster than ``np.add.reduceat`` along the bins."""
    e0, widths, steps = _band_layout()
    out = x[e0].copy()
    for j, b0 in steps:
        out[b0:] += x[e0[b0:] + j]
    return out


def _band_layout():
    global _LAYOUT
    if _LAYOUT is None:
        e = np.asarray(bands.band_edges())
        e0, widths = e[:-1], np.diff(e)
        if np.any(np.diff(widths) < 0):               # the row-by-row sum needs widths non-decreasing
            raise AssertionError("band widths must not decrease with frequency")
        steps = [(j, int(np.searchsorted(widths, j, side="right"))) for j in range(1, int(widths.max()))]
        _LAYOUT = (e0, widths, steps)
    return _LAYOUT


_LAYOUT = None


def _orthonormal_d(S: np.ndarray, D: np.ndarray, max_gain: float = 8.0, *, ps: Optional[np.ndarray] = None) -> np.ndarray:
    """D made orthogonal to S (complex projection) and of S's power, per band and frame (``ps``:
    S's band powers when known)."""
    if ps is None:
        ps = _band_rows(S.real ** 2 + S.imag ** 2)
    cross = _band_rows(D * S.conj())            # <D, S> per band and frame
    proj = cross / np.maximum(ps, 1e-20)
    bob = band_of_bin()
    D = D - proj[bob] * S
    pd = _band_rows(D.real ** 2 + D.imag ** 2)
    g = np.sqrt(ps / np.maximum(pd, 1e-20))
    g = np.where(ps > 1e-20, np.minimum(g, max_gain), 0.0).astype(np.float32)
    return D * g[bob]


class Decorrelated:
    """A mono signal with its decorrelated copy, ready to be mixed chunk by chunk.

    ``x`` [shape=(n,)] and ``xd = allpass_cascade(x)``; ``chunks()`` yields
    ``(start, S, D, transient)`` with S, D [shape=(bins, frames)] and transient strength
    [shape=(34, frames)] for consecutive frame ranges; after each, ``energy`` holds S's band
    energies [shape=(34, frames)] (:func:`core.ps.band_energy`).
    """

    def __init__(self, x: np.ndarray, *, transients: bool = True):
        self.x = np.asarray(x, dtype=np.float32)
        if self.x.ndim != 1:
            raise ParameterError(f"decoder expects mono audio of shape (n,), got {self.x.shape}")
        self.xd = allpass_cascade(self.x)
        self.transients = transients
        self.n_frames = n_frames(len(self.x))

    def chunks(self, chunk: int = CHUNK_FRAMES):
        state = None
        for f0 in range(0, self.n_frames, chunk):
            f1 = min(f0 + chunk, self.n_frames)
            S = stft_frames(self.x, f0, f1)
            self.energy = band_sum(S.real ** 2 + S.imag ** 2)
            D = _orthonormal_d(S, stft_frames(self.xd, f0, f1), ps=_band_rows(S.real ** 2 + S.imag ** 2))
            if self.transients:
                tr, state = transient_strength(self.energy, state=state)
            else:
                tr = np.zeros((N_BANDS, f1 - f0), np.float32)
            yield f0, S, D, tr


def prepare(x: np.ndarray, *, transients: bool = True) -> Decorrelated:
    return Decorrelated(x, transients=transients)


def decode(mono, params: PSParams, *, transients: bool = True, chunk: int = CHUNK_FRAMES,
           mono_compatible: bool = False, progress: Optional[ProgressFn] = None,
           cancel: Optional[threading.Event] = None) -> np.ndarray:
    """Decode mono [shape=(n,)] (or a :class:`Decorrelated`) with PS ``params`` -> stereo [shape=(n, 2)].

    ``params`` must have ``n_frames(n)`` frames (use ``params.fit_frames``). With
    ``mono_compatible`` the output's (L + R) / 2 equals the input to float rounding (see the
    module docstring)."""
    dec = mono if isinstance(mono, Decorrelated) else Decorrelated(mono, transients=transients)
    if params.n_frames != dec.n_frames:
        raise ParameterError(f"PS parameters have {params.n_frames} frames, the audio needs {dec.n_frames}")
    out = OverlapAdd(len(dec.x), channels=1 if mono_compatible else 2)
    bob = band_of_bin()
    for f0, S, D, tr in dec.chunks(chunk):
        check_cancel(cancel)
        f1 = f0 + S.shape[1]
        ic = params.ic[:, f0:f1]
        ic = ic + tr * (1.0 - ic)           # transients: coherent (no decorrelated signal)
        if mono_compatible:
            a, b = side_coefficients(params.iid[:, f0:f1], ic)
            out.add(a[bob] * S + b[bob] * D, f0)
        else:
            a, b, c, d = mixing_coefficients(params.iid[:, f0:f1], ic)
            g = downmix_gain(params.iid[:, f0:f1], ic)
            a, b, c, d = a * g, b * g, c * g, d * g
            out.add(a[bob] * S + b[bob] * D, f0, channel=0)
            out.add(c[bob] * S + d[bob] * D, f0, channel=1)
        report(progress, "decode", f1, dec.n_frames)
    if mono_compatible:
        side = out.result()
        return np.stack([dec.x + side, dec.x - side], axis=1)
    return out.result()
