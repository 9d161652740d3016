"""The PS decoder as a stream: stereo blocks out, in order, with memory bounded by one chunk.

:func:`decode_stream` yields ``(start, stereo)`` blocks that, put end to end, equal
:func:`core.decoder.decode` of the same mono and parameters bit for bit: the same chunks of
``CHUNK_FRAMES`` frames, the same float32 operations in the same order. What ``decode`` keeps for
the whole recording is kept here for a chunk only:

* the all-pass cascade (:class:`AllpassStream`) runs section by section on blocks, carrying each
  section's last ``M`` inputs and outputs (the recursion ``y[n] = v[n] + g y[n-M]`` continued
  through ``lfilter``'s initial state gives exactly what one call over everything gives);
* the overlap-add keeps a rolling buffer; samples no later frame can reach are divided by the
  summed squared window and handed out at once.

Peak memory is the mono input (the caller's) plus a few chunks, so an hour of audio decodes in
a few hundred megabytes instead of several gigabytes.
"""
from __future__ import annotations

import threading
from typing import Iterator, Optional

import numpy as np
import scipy.fft as sfft
from scipy.signal import lfilter

from . import SAMPLE_RATE
from .bands import N_BANDS, band_of_bin, band_sum
from .decoder import CHUNK_FRAMES, _band_rows, _orthonormal_d, downmix_gain, mixing_coefficients, side_coefficients
from .decorrelator import DELAYS_MS, GAIN, transient_strength
from .denormals import flushed
from .errors import ParameterError
from .progress import ProgressFn, check_cancel, report
from .ps import PSParams
from .stft import HOP, N_FFT, n_frames, window, window_sum

__all__ = ["AllpassStream", "decode_stream", "AllpassWindow", "OverlapAddRolling"]


class _Section:
    """One Schroeder all-pass section ``y[n] = -g x[n] + x[n-m] + g y[n-m]`` on blocks."""

    def __init__(self, m: int, g: float):
        self.m, self.g = m, np.float32(g)
        self.x_hist = np.zeros(m, np.float32)      # the last m inputs (zeros before the start)
        self.y_hist = np.zeros(m, np.float32)      # the last m outputs
        self.pending = np.zeros(0, np.float32)     # inputs not yet a whole row of m

    def push(self, x: np.ndarray, *, last: bool = False) -> np.ndarray:
        m = self.m
        buf = np.concatenate([self.pending, x]) if len(self.pending) else x
        n_out = len(buf) if last else len(buf) // m * m
        rows = -(-n_out // m)
        if rows == 0:
            self.pending = buf
            return np.zeros(0, np.float32)
        cur = np.zeros(rows * m, np.float32)        # zero-padded past the end, as allpass_cascade pads
        cur[:n_out] = buf[:n_out]
        prev = np.concatenate([self.x_hist, cur[:-m]])            # x[n - m]
        v = prev - self.g * cur                                     # -g x[n] + x[n - m]
        y, _ = lfilter(np.array([1.0], np.float32), np.array([1.0, -self.g], np.float32), v.reshape(rows, m),
                       axis=0, zi=(self.g * self.y_hist)[None, :])
        y = y.reshape(-1).astype(np.float32, copy=False)
        self.x_hist, self.y_hist = cur[-m:].copy(), y[-m:].copy()
        self.pending = buf[n_out:]
        return y[:n_out]


class AllpassStream:
    """:func:`core.decorrelator.allpass_cascade` on consecutive blocks (same output, bit for bit).

    ``push(block)`` returns the output samples that are ready (fewer than given while sections
    wait for whole rows); ``push(rest, last=True)`` returns everything still owed."""

    def __init__(self, *, sr: int = SAMPLE_RATE, delays_ms=DELAYS_MS, gain: float = GAIN):
        self.sections = [_Section(max(1, int(round(d * sr / 1000))), gain) for d in delays_ms]

    def push(self, x: np.ndarray, *, last: bool = False) -> np.ndarray:
        y = np.asarray(x, dtype=np.float32)
        with flushed():                     # as allpass_cascade: no subnormals (core.denormals)
            for s in self.sections:
                y = s.push(y, last=last)
        return y


class _Rolling:
    """A window on a growing signal: ``extend`` appends, ``drop_before`` forgets the past."""

    def __init__(self):
        self.start, self.data = 0, np.zeros(0, np.float32)

    @property
    def end(self) -> int:
        return self.start + len(self.data)

    def extend(self, y: np.ndarray) -> None:
        if len(y):
            self.data = np.concatenate([self.data, y])

    def drop_before(self, i: int) -> None:
        k = max(0, min(i - self.start, len(self.data)))
        if k:
            self.data = self.data[k:].copy()
            self.start += k


class AllpassWindow:
    """The all-pass cascade of a signal ``x`` [shape=(n,)] made as far as it is asked for and
    forgotten behind: :meth:`frames` gives :func:`core.stft.stft_frames` (frames-major) of
    :func:`core.decorrelator.allpass_cascade` (x), bit for bit, for consecutive frame ranges,
    keeping a chunk of the cascade's output (and the sections' state) instead of the whole signal.
    ``x`` may be a file-mapped signal (:mod:`core.spill`): it is read a block at a time."""

    def __init__(self, x: np.ndarray):
        self.x, self.n = x, len(x)
        self.ap, self.sig, self.fed = AllpassStream(), _Rolling(), 0

    def frames(self, f0: int, f1: int) -> np.ndarray:
        """Frames ``f0:f1`` [shape=(f1-f0, bins)]; ``f0`` never before the last call's."""
        need = min(self.n, (f1 - 1) * HOP + N_FFT // 2)          # the last sample these frames read
        self.sig.drop_before(max(0, f0 * HOP - N_FFT // 2))
        while self.sig.end < need:
            step = min(max(need - self.fed, 1 << 16), self.n - self.fed)
            last = self.fed + step >= self.n
            self.sig.extend(self.ap.push(np.array(self.x[self.fed:self.fed + step]), last=last))
            self.fed += step
        t = f1 - f0
        lo = f0 * HOP - N_FFT // 2
        seg = np.zeros((t - 1) * HOP + N_FFT, dtype=np.float32)           # as core.stft.stft_frames
        a, b = max(lo, 0), min(lo + len(seg), self.n)
        if b > a:
            seg[a - lo: b - lo] = self.sig.data[a - self.sig.start: b - self.sig.start]
        frames = np.lib.stride_tricks.as_strided(seg, shape=(t, N_FFT), strides=(HOP * 4, 4), writeable=False)
        return sfft.rfft(frames * window(N_FFT), axis=1, workers=-1, overwrite_x=True)


class OverlapAddRolling:
    """:class:`core.stft.OverlapAdd` (one channel) whose finished samples are handed out as it goes
    and forgotten: ``add(spec, f0, frames_major=True)`` for consecutive frame ranges returns
    ``(start, samples)``, the output samples no later range reaches (all that is left after the
    recording's last frame). The same adds in the same order, the same normalization: put end to
    end they equal :meth:`core.stft.OverlapAdd.result` bit for bit, in a chunk of memory."""

    def __init__(self, length: int):
        self.length = int(length)
        self.t_total = n_frames(self.length)
        self.buf, self.buf_start, self.emitted = np.zeros(0, np.float32), 0, 0

    def add(self, spec: np.ndarray, f0: int, *, frames_major: bool = False) -> tuple[int, np.ndarray]:
        k, half = N_FFT // HOP, N_FFT // 2
        spec = np.ascontiguousarray(spec if frames_major else spec.T, dtype=np.complex64)
        frames = sfft.irfft(spec, n=N_FFT, axis=1, workers=-1) * window(N_FFT)
        t = frames.shape[0]
        blocks = frames.reshape(t, k, HOP)
        base = f0 * HOP
        end = base + (k - 1) * HOP + t * HOP
        if self.buf_start + len(self.buf) < end:
            self.buf = np.concatenate([self.buf, np.zeros(end - self.buf_start - len(self.buf), np.float32)])
        for j in range(k):
            lo = base + j * HOP - self.buf_start
            self.buf[lo: lo + t * HOP] += blocks[:, j, :].reshape(-1)
        f1 = f0 + t
        ready = self.length if f1 >= self.t_total else min(self.length, max(0, f1 * HOP - half))
        start = self.emitted
        if ready <= start:
            return start, np.zeros(0, np.float32)
        s0, s1 = start + half, ready + half
        norm = np.maximum(window_sum(s0, s1, self.t_total), 1e-3)
        out = np.divide(self.buf[s0 - self.buf_start: s1 - self.buf_start], norm)
        self.emitted = ready
        keep = s1 - self.buf_start
        self.buf, self.buf_start = self.buf[keep:].copy(), self.buf_start + keep
        return start, out


def _frames(sig: _Rolling, n_total: int, start: int, stop: int) -> np.ndarray:
    """:func:`core.stft.stft_frames` of the whole signal, from the window ``sig`` holds."""
    t = stop - start
    lo = start * HOP - N_FFT // 2
    seg = np.zeros((t - 1) * HOP + N_FFT, dtype=np.float32)
    a, b = max(lo, 0), min(lo + len(seg), n_total)
    if b > a:
        if a < sig.start or b > sig.end:
            raise AssertionError("decode_stream: samples outside the window")   # a bug, not bad input
        seg[a - lo: b - lo] = sig.data[a - sig.start: b - sig.start]
    frames = np.lib.stride_tricks.as_strided(seg, shape=(t, N_FFT), strides=(HOP * 4, 4), writeable=False)
    return np.ascontiguousarray(sfft.rfft(frames * window(N_FFT), axis=1, workers=-1).T)


def decode_stream(mono: np.ndarray, params: PSParams, *, transients: bool = True, chunk: int = CHUNK_FRAMES,
                  mono_compatible: bool = False, progress: Optional[ProgressFn] = None,
                  cancel: Optional[threading.Event] = None) -> Iterator[tuple[int, np.ndarray]]:
    """Decode mono [shape=(n,)] with ``params`` as consecutive stereo blocks ``(start, block)``
    [block shape=(k, 2), float32] covering samples ``0..n``; equal to ``decode(mono, params)``
    (with ``mono_compatible``: ``decode(..., mono_compatible=True)``, L = S + side, R = S - side)."""
    x = np.asarray(mono, dtype=np.float32)
    if x.ndim != 1:
        raise ParameterError(f"decoder expects mono audio of shape (n,), got {x.shape}")
    n = len(x)
    t_total = n_frames(n)
    if params.n_frames != t_total:
        raise ParameterError(f"PS parameters have {params.n_frames} frames, the audio needs {t_total}")
    bob = band_of_bin()
    w = window(N_FFT)
    k = N_FFT // HOP
    half = N_FFT // 2
    xd = _Rolling()
    ap = AllpassStream()
    fed = 0                                  # mono samples given to the all-pass cascade
    ola = np.zeros((0, 2), np.float32)       # overlap-add buffer from sample ola_start on
    ola_start = 0
    emitted = 0                              # output samples handed out (output i = buffer i + half)
    state = None
    whole = _view(x)
    for f0 in range(0, t_total, chunk):
        check_cancel(cancel)
        f1 = min(f0 + chunk, t_total)
        need = min(n, (f1 - 1) * HOP + half)            # the last sample these frames read
        while xd.end < need:
            step = min(max(need - fed, 1 << 16), n - fed)
            last = fed + step >= n
            xd.extend(ap.push(x[fed:fed + step], last=last))
            fed += step
        S = _frames(whole, n, f0, f1)
        D = _orthonormal_d(S, _frames(xd, n, f0, f1), ps=_band_rows(S.real ** 2 + S.imag ** 2))
        if transients:
            tr, state = transient_strength(band_sum(S.real ** 2 + S.imag ** 2), state=state)
        else:
            tr = np.zeros((N_BANDS, f1 - f0), np.float32)
        ic = params.ic[:, f0:f1]
        ic = ic + tr * (1.0 - ic)
        if mono_compatible:
            a, b = side_coefficients(params.iid[:, f0:f1], ic)
            specs = ((0, a[bob] * S + b[bob] * D),)
        else:
            a, b, c, d = mixing_coefficients(params.iid[:, f0:f1], ic)
            g = downmix_gain(params.iid[:, f0:f1], ic)
            a, b, c, d = a * g, b * g, c * g, d * g
            specs = ((0, a[bob] * S + b[bob] * D), (1, c[bob] * S + d[bob] * D))
        base = f0 * HOP
        end = base + (k - 1) * HOP + (f1 - f0) * HOP
        if ola_start + len(ola) < end:
            ola = np.concatenate([ola, np.zeros((end - ola_start - len(ola), 2), np.float32)])
        for ch, spec in specs:
            frames = sfft.irfft(np.ascontiguousarray(spec.T, dtype=np.complex64), n=N_FFT, axis=1, workers=-1) * w
            blocks = frames.reshape(f1 - f0, k, HOP)
            for j in range(k):
                lo = base + j * HOP - ola_start
                ola[lo: lo + (f1 - f0) * HOP, ch] += blocks[:, j, :].reshape(-1)
        del S, D, specs, tr, ic
        # buffer samples before f1 * HOP receive nothing more; the last chunk finishes everything
        ready = n if f1 == t_total else min(n, max(0, f1 * HOP - half))
        if ready > emitted:
            s0, s1 = emitted + half, ready + half
            norm = np.maximum(window_sum(s0, s1, t_total), 1e-3)
            if mono_compatible:
                side = ola[s0 - ola_start: s1 - ola_start, 0] / norm
                block = np.stack([x[emitted:ready] + side, x[emitted:ready] - side], axis=1)
            else:
                block = ola[s0 - ola_start: s1 - ola_start] / norm[:, None]
            yield emitted, block
            emitted = ready
            keep = emitted + half - ola_start
            ola, ola_start = ola[keep:].copy(), ola_start + keep
        xd.drop_before(max(0, f1 * HOP - half))
        report(progress, "decode", f1, t_total)


def _view(x: np.ndarray) -> _Rolling:
    r = _Rolling.__new__(_Rolling)
    r.start, r.data = 0, x
    return r
