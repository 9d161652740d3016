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
from .decoder import CHUNK_FRAMES, _orthonormal_d, mixing_coefficients, side_coefficients
from .decorrelator import DELAYS_MS, GAIN, transient_strength
from .errors import ParameterError
from .progress import ProgressFn, check_cancel, report
from .ps import PSParams
from .stft import HOP, N_FFT, n_frames, window, window_sum

__all__ = ["AllpassStream", "decode_stream"]


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
        D = _orthonormal_d(S, _frames(xd, n, f0, f1))
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


# -- loudness and true peak on a stream ---------------------------------------------------------------

class TruePeakStream:
    """:func:`core.loudness.true_peak_db` of a signal of ``n`` samples given block by block
    (same chunks of the zero-padded signal, same FFT convolutions: the same value)."""

    def __init__(self, n: int, channels: int, *, oversample: int = 4):
        from .loudness import _CHUNK, _phases
        self.n, self.ch, self.chunk = int(n), int(channels), _CHUNK
        self.h = _phases(oversample)
        self.m = self.h.shape[1] - 1
        self.peak = 0.0
        self.buf = np.zeros((self.m, self.ch), np.float32)   # the padded signal from self.buf_start on
        self.buf_start = 0
        self.a = 0                                           # next chunk start (padded coordinates)
        self.fed = 0
        self.done = False

    def push(self, block: np.ndarray) -> None:
        block = np.asarray(block, np.float32).reshape(len(block), self.ch)
        self.peak = max(self.peak, float(np.max(np.abs(block), initial=0.0)))
        self.buf = np.concatenate([self.buf, block])
        self.fed += len(block)
        self._run(final=False)

    def _run(self, *, final: bool) -> None:
        from scipy.signal import oaconvolve
        n, m = self.n, self.m
        while not self.done and self.a < n + m:
            lo, hi = self.a, min(self.a + self.chunk + m, n + 2 * m)
            have = self.buf_start + len(self.buf)
            if hi > have and not final:
                return
            if hi - lo <= m:
                self.done = True
                return
            seg = np.zeros((hi - lo, self.ch), np.float32)
            s0, s1 = max(lo, m), min(hi, n + m)               # padded positions holding signal
            if s1 > s0:
                seg[s0 - lo: s1 - lo] = self.buf[s0 - self.buf_start: s1 - self.buf_start]
            for ph in self.h:
                y = oaconvolve(seg, ph[:, None], mode="valid", axes=0)
                self.peak = max(self.peak, float(np.max(np.abs(y), initial=0.0)))
            self.a += self.chunk
            keep = self.a - self.buf_start                     # the next chunk starts at self.a
            if keep > 0:
                self.buf, self.buf_start = self.buf[keep:], self.a
        self.done = True

    def result(self) -> float:
        import math
        self._run(final=True)
        return 20 * math.log10(self.peak) if self.peak > 0 else -math.inf


class LoudnessStream:
    """:func:`core.loudness.integrated_lufs` (pyloudnorm's BS.1770-4 meter with the "DeMan"
    filters) of ``n`` samples given block by block: the K-weighting filters carry their state, the
    400 ms blocks are summed as the meter sums them and gated the same way."""

    def __init__(self, n: int, channels: int, *, sr: int = SAMPLE_RATE):
        import pyloudnorm
        meter = pyloudnorm.Meter(sr, filter_class="DeMan")
        self.stages = [(f.b, f.a, f.passband_gain) for f in meter._filters.values()]
        self.zi = [[np.zeros(max(len(b), len(a)) - 1) for b, a, _ in self.stages] for _ in range(channels)]
        self.n, self.ch, self.sr = int(n), int(channels), sr
        self.T_g, self.step = meter.block_size, 1.0 - meter.overlap
        T = self.n / sr
        self.n_blocks = int(np.round(((T - self.T_g) / (self.T_g * self.step)))) + 1
        self.z = np.zeros((channels, max(self.n_blocks, 0)))
        self.j = 0
        self.buf = np.zeros((0, channels), np.float32)          # K-weighted samples from buf_start on
        self.buf_start = 0

    def _bounds(self, j: int) -> tuple[int, int]:
        T_g, step, rate = self.T_g, self.step, self.sr
        return int(T_g * (j * step) * rate), int(T_g * (j * step + 1) * rate)

    def push(self, block: np.ndarray, *, final: bool = False) -> None:
        block = np.asarray(block, np.float32).reshape(len(block), self.ch)
        out = np.empty_like(block)
        for c in range(self.ch):
            col = block[:, c]
            for k, (b, a, gain) in enumerate(self.stages):
                y, self.zi[c][k] = lfilter(b, a, col, zi=self.zi[c][k])
                col = (gain * y).astype(np.float32)           # pyloudnorm stores each stage in float32
            out[:, c] = col
        self.buf = np.concatenate([self.buf, out])
        end = self.buf_start + len(self.buf)
        while self.j < self.n_blocks:
            lo, hi = self._bounds(self.j)
            if min(hi, self.n) > end and not final:
                break
            for c in range(self.ch):
                seg = self.buf[max(lo, self.buf_start) - self.buf_start: min(hi, end) - self.buf_start, c]
                self.z[c, self.j] = (1.0 / (self.T_g * self.sr)) * np.sum(np.square(np.ascontiguousarray(seg)))
            self.j += 1
        if self.j < self.n_blocks:
            drop = self._bounds(self.j)[0] - self.buf_start
            if drop > 0:
                self.buf, self.buf_start = self.buf[drop:], self.buf_start + drop

    def result(self) -> float:
        """The integrated loudness in LUFS (as pyloudnorm computes it from the block powers)."""
        import warnings
        z, G, Gamma_a = self.z, [1.0, 1.0, 1.0, 1.41, 1.41], -70.0
        j_range = np.arange(0, self.n_blocks)
        ch = range(self.ch)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=RuntimeWarning)
            loud = [-0.691 + 10.0 * np.log10(np.sum([G[i] * z[i, j] for i in ch])) for j in j_range]
            J_g = [j for j, l_j in enumerate(loud) if l_j >= Gamma_a]
            z_avg = [np.mean([z[i, j] for j in J_g]) for i in ch]
            Gamma_r = -0.691 + 10.0 * np.log10(np.sum([G[i] * z_avg[i] for i in ch])) - 10.0
            J_g = [j for j, l_j in enumerate(loud) if (l_j > Gamma_r and l_j > Gamma_a)]
            z_avg = np.nan_to_num(np.array([np.mean([z[i, j] for j in J_g]) for i in ch]))
        with np.errstate(divide="ignore"):
            return float(-0.691 + 10.0 * np.log10(np.sum([G[i] * z_avg[i] for i in ch])))


def measure_stream(x: np.ndarray, *, block: int = 1 << 18):
    """:func:`core.loudness.measure` of ``x`` [shape=(n,) or (n, channels)] computed block by
    block (the K-weighted copy and the oversampled signal never exist whole)."""
    from .loudness import Loudness
    x2 = x[:, None] if x.ndim == 1 else x
    n, ch = x2.shape
    if n < int(0.4 * SAMPLE_RATE):
        raise ParameterError(f"loudness needs at least 0.4 s of audio, got {n / SAMPLE_RATE:.3f} s")
    tp, ls = TruePeakStream(n, ch), LoudnessStream(n, ch)
    peak = 0.0
    for a in range(0, n, block):
        b = min(n, a + block)
        peak = max(peak, float(np.max(np.abs(x2[a:b]), initial=0.0)))
        tp.push(x2[a:b])
        ls.push(x2[a:b], final=b == n)
    import math
    return Loudness(ls.result(), tp.result(), 20 * math.log10(peak) if peak > 0 else -math.inf, ch)
