"""STFT / inverse STFT with the PS-generation settings: 4096-point periodic Hann, hop 1024.

Frames are centred: frame ``t`` is centred on sample ``t * hop``; a signal of ``n`` samples has
``n_frames(n) = 1 + ceil(n / hop)`` frames. The inverse divides the overlap-add by the summed
squared window, so ``istft(stft(x), length=len(x))`` reconstructs ``x`` to float precision.
"""
from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from .errors import ParameterError

__all__ = ["N_FFT", "HOP", "N_BINS", "window", "n_frames", "stft", "istft", "stft_frames", "OverlapAdd",
           "OverlapAddStream", "window_sum", "first_sample"]

from . import HOP, N_FFT  # noqa: E402  (the constants live in core/__init__ so light modules can use them)
N_BINS = N_FFT // 2 + 1

_WINDOWS: dict[int, np.ndarray] = {}


def window(n_fft: int = N_FFT) -> np.ndarray:
    """Periodic Hann window [shape=(n_fft,)], float32."""
    w = _WINDOWS.get(n_fft)
    if w is None:
        w = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
        _WINDOWS[n_fft] = w
    return w


def n_frames(n_samples: int, hop: int = HOP) -> int:
    return 1 + -(-int(n_samples) // hop)


def _check(n_fft: int, hop: int) -> None:
    if n_fft % hop or n_fft // hop < 2:
        raise ParameterError(f"n_fft ({n_fft}) must be a multiple (>= 2) of hop ({hop})")


def stft(x: np.ndarray, *, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """Complex STFT of ``x`` [shape=(n,)] -> [shape=(n_fft//2+1, n_frames(n)), complex64]."""
    _check(n_fft, hop)
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 1:
        raise ParameterError(f"stft expects a 1-D signal, got shape {x.shape}")
    t = n_frames(len(x), hop)
    total = (t - 1) * hop + n_fft
    pad = np.zeros(total, dtype=np.float32)
    pad[n_fft // 2: n_fft // 2 + len(x)] = x
    frames = np.lib.stride_tricks.as_strided(pad, shape=(t, n_fft), strides=(hop * 4, 4), writeable=False)
    spec = sfft.rfft(frames * window(n_fft), axis=1, workers=-1)
    return np.ascontiguousarray(spec.T)


def istft(spec: np.ndarray, *, length: int, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """Inverse of :func:`stft`: [shape=(bins, frames)] -> [shape=(length,), float32]."""
    _check(n_fft, hop)
    if spec.ndim != 2 or spec.shape[0] != n_fft // 2 + 1:
        raise ParameterError(f"istft expects shape ({n_fft // 2 + 1}, frames), got {spec.shape}")
    t = spec.shape[1]
    w = window(n_fft)
    frames = sfft.irfft(np.ascontiguousarray(spec.T, dtype=np.complex64), n=n_fft, axis=1, workers=-1) * w
    k = n_fft // hop
    total = (t - 1) * hop + n_fft
    y = np.zeros(total + hop, dtype=np.float32)
    wss = np.zeros(total + hop, dtype=np.float32)
    w2 = (w * w).reshape(k, hop)
    blocks = frames.reshape(t, k, hop)
    for j in range(k):  # k = 4 shifted overlap-adds, each vectorized over all frames
        y[j * hop: j * hop + t * hop] += blocks[:, j, :].reshape(-1)
        wss[j * hop: j * hop + t * hop] += np.tile(w2[j], t)
    start = n_fft // 2
    out = y[start:start + length]
    norm = wss[start:start + length]
    if len(out) < length:
        raise ParameterError(f"length {length} exceeds what {t} frames can hold")
    return out / np.maximum(norm, 1e-3)


def stft_frames(x: np.ndarray, start: int, stop: int, *, n_fft: int = N_FFT, hop: int = HOP,
                frames_major: bool = False) -> np.ndarray:
    """Frames ``start:stop`` of :func:`stft` (x) without transforming the rest [shape=(bins, stop-start)];
    ``frames_major``: the same values as [shape=(stop-start, bins)] (no transposed copy)."""
    x = np.asarray(x, dtype=np.float32)
    t = stop - start
    lo = start * hop - n_fft // 2  # first sample of frame `start` in x coordinates
    seg = np.zeros((t - 1) * hop + n_fft, dtype=np.float32)
    a, b = max(lo, 0), min(lo + len(seg), len(x))
    if b > a:
        seg[a - lo: b - lo] = x[a:b]
    frames = np.lib.stride_tricks.as_strided(seg, shape=(t, n_fft), strides=(hop * 4, 4), writeable=False)
    spec = sfft.rfft(frames * window(n_fft), axis=1, workers=-1, overwrite_x=True)
    return spec if frames_major else np.ascontiguousarray(spec.T)


class OverlapAdd:
    """Chunked inverse STFT: ``add(spec, start)`` for consecutive frame ranges, then ``result()``.

    Equals ``istft`` of the concatenated chunks; memory is the output plus one chunk.
    """

    def __init__(self, length: int, channels: int = 1, *, n_fft: int = N_FFT, hop: int = HOP):
        self.length, self.n_fft, self.hop = int(length), n_fft, hop
        total = (n_frames(length, hop) - 1) * hop + n_fft + hop
        self.buf = np.zeros((total, channels), dtype=np.float32)

    def add(self, spec: np.ndarray, start: int, channel: int = 0, *, frames_major: bool = False) -> None:
        """``spec`` [shape=(bins, t)] (``frames_major``: [shape=(t, bins)]) for frames ``start:start+t``."""
        n_fft, hop = self.n_fft, self.hop
        w = window(n_fft)
        spec = np.ascontiguousarray(spec if frames_major else spec.T, dtype=np.complex64)
        frames = sfft.irfft(spec, n=n_fft, axis=1, workers=-1) * w
        t, k = frames.shape[0], n_fft // hop
        blocks = frames.reshape(t, k, hop)
        base = start * hop
        for j in range(k):
            self.buf[base + j * hop: base + j * hop + t * hop, channel] += blocks[:, j, :].reshape(-1)

    def _norm(self) -> np.ndarray:
        """The window-square sum of the output samples [shape=(length,)] (floored)."""
        n_fft, hop = self.n_fft, self.hop
        w2 = (window(n_fft) ** 2).reshape(n_fft // hop, hop)
        t = n_frames(self.length, hop)
        wss = np.zeros(len(self.buf), np.float32)
        for j in range(n_fft // hop):
            wss[j * hop: j * hop + t * hop] += np.tile(w2[j], t)
        s = n_fft // 2
        return np.maximum(wss[s:s + self.length], 1e-3)

    def result(self) -> np.ndarray:
        out = np.empty((self.length, self.buf.shape[1]), np.float32)
        self.result_into(out)
        return out[:, 0] if out.shape[1] == 1 else out

    def result_into(self, out: np.ndarray, *, block: int = 1 << 18) -> None:
        """The result written into ``out`` [shape=(length, channels)] (any float32 array or view,
        e.g. a file-mapped one), without another full-length copy: normalized ``block`` samples at
        a time (:func:`window_sum`, the same sums as :meth:`_norm`: the same bits)."""
        s = self.n_fft // 2
        t = n_frames(self.length, self.hop)
        for a in range(0, self.length, block):
            b = min(self.length, a + block)
            norm = np.maximum(window_sum(s + a, s + b, t, n_fft=self.n_fft, hop=self.hop), 1e-3)
            np.divide(self.buf[s + a:s + b], norm[:, None], out=out[a:b])


def window_sum(s0: int, s1: int, t_total: int, *, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """The summed squared window of :class:`OverlapAdd` over its buffer samples ``s0:s1`` for
    ``t_total`` frames [shape=(s1-s0,)], added in the same order (so equal bit for bit)."""
    k = n_fft // hop
    w2 = (window(n_fft) ** 2).reshape(k, hop)
    out = np.zeros(s1 - s0, np.float32)
    for j in range(k):
        lo, hi = max(s0, j * hop), min(s1, j * hop + t_total * hop)
        if hi > lo:                      # w2[j][sample % hop] for samples lo..hi-1: its period repeated
            r = lo % hop
            out[lo - s0: hi - s0] += np.tile(w2[j], -(-(r + hi - lo) // hop))[r: r + hi - lo]
    return out


def first_sample(frame: int, *, n_fft: int = N_FFT, hop: int = HOP) -> int:
    """The first output sample that frames ``frame, frame + 1, ...`` alone make exactly (the
    earlier frames no longer reach it): 0 for frame 0."""
    return 0 if frame <= 0 else (frame - 1) * hop + n_fft - n_fft // 2


class OverlapAddStream:
    """:class:`OverlapAdd` that hands out finished samples as it goes, from any first frame.

    ``add(specs, f0)`` takes one spectrum per channel [shape=(bins, t)] for frames ``f0:f0+t``
    (consecutive ranges, the first starting at ``first``) and returns ``(start, block)``
    [block shape=(m, channels), float32]: the output samples no later frame reaches, from
    :func:`first_sample` (first) on, normalized as the whole signal's inverse is. The last range
    (ending at the recording's last frame) finishes every sample. Memory: one chunk.

    Every output sample is the sum of the frames that reach it added in one order, the earliest
    frame first, whatever the chunks and the first frame: a sample comes out bit for bit the same
    from any stream that makes it (a mix started at the playhead equals the whole export), and
    equals :class:`OverlapAdd`'s result to float rounding."""

    def __init__(self, length: int, channels: int = 1, *, first: int = 0, n_fft: int = N_FFT, hop: int = HOP):
        self.length, self.channels, self.n_fft, self.hop = int(length), int(channels), n_fft, hop
        self.t_total = n_frames(self.length, hop)
        if not 0 <= first < self.t_total:
            raise ParameterError(f"first frame {first} outside 0..{self.t_total - 1}")
        self.next_frame = int(first)
        self.emitted = min(first_sample(first, n_fft=n_fft, hop=hop), self.length)  # next output sample
        k = n_fft // hop
        # the windowed frames first - k + 1 .. first - 1 (zeros: the samples they reach are not handed out,
        # or, before frame 0, none exist)
        self._tail = np.zeros((self.channels, k - 1, k, hop), np.float32)

    @property
    def done(self) -> bool:
        return self.emitted >= self.length

    def add(self, specs, f0: int, *, frames_major: bool = False) -> tuple[int, np.ndarray]:
        """``frames_major``: the spectra are [shape=(t, bins)]."""
        if f0 != self.next_frame:
            raise ParameterError(f"frames must come in order: expected {self.next_frame}, got {f0}")
        n_fft, hop, half = self.n_fft, self.hop, self.n_fft // 2
        k = n_fft // hop
        w = window(n_fft)
        t = specs[0].shape[0 if frames_major else 1]
        f1 = f0 + t
        last = f1 >= self.t_total
        # hop blocks b = f0 .. f1 - 1 are finished (every frame b - k + 1 .. b is in); at the end the
        # k - 1 blocks after them too (frames past the last one are none)
        nb = t + (k - 1 if last else 0)
        acc = np.zeros((nb, hop, self.channels), np.float32)
        for ch, spec in enumerate(specs):
            spec = np.ascontiguousarray(spec if frames_major else spec.T, dtype=np.complex64)
            frames = sfft.irfft(spec, n=n_fft, axis=1, workers=-1)
            frames *= w
            allf = np.concatenate([self._tail[ch], frames.reshape(t, k, hop)])      # frames f0 - k + 1 .. f1 - 1
            if last:
                allf = np.concatenate([allf, np.zeros((k - 1, k, hop), np.float32)])
            # block b = f0 + i gets frame b - j's part j, j = k - 1 .. 0: the earliest frame first
            out = acc[:, :, ch]
            for j in range(k - 1, -1, -1):
                out += allf[k - 1 - j: k - 1 - j + nb, j]
            self._tail[ch] = allf[t: t + k - 1]
        self.next_frame = f1
        ready = self.length if last else min(self.length, max(0, f1 * hop - half))
        start = self.emitted
        if ready <= start:
            return start, np.zeros((0, self.channels), np.float32)
        s0, s1 = start + half, ready + half                      # buffer positions; block f0 starts at f0 * hop
        norm = np.maximum(window_sum(s0, s1, self.t_total, n_fft=n_fft, hop=hop), 1e-3)
        flat = acc.reshape(nb * hop, self.channels)
        block = flat[s0 - f0 * hop: s1 - f0 * hop] / norm[:, None]
        self.emitted = ready
        return start, block
