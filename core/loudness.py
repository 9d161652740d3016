"""Loudness and peaks as mastering tools report them.

- Integrated loudness (ITU-R BS.1770-4, LUFS): K-weighting, 400 ms blocks with 75 % overlap,
  absolute gate at -70 LUFS and relative gate at -10 LU, channel powers summed with weight 1
  (left, right, centre); computed by pyloudnorm with the standard's filter (its "DeMan" design,
  which reproduces BS.1770's published 48 kHz coefficients at any rate). A mono signal is one channel, as BS.1770 measures
  a mono programme on one loudspeaker: a 1 kHz sine of peak 0.1 (-20 dBFS) reads -23.0 LUFS.
  Played by a stereo system, a mono file comes out of both loudspeakers (dual mono) and reads
  3.01 LU more; :func:`dual_mono_lufs` is the figure to compare a stereo upmix with.
- True peak (BS.1770-4 Annex 2, dBTP): the signal oversampled 4x by a polyphase low-pass
  (a 257-tap Kaiser-windowed FIR in 4 phases: flat within 0.002 dB up to 20 kHz at 44.1 kHz,
  images 70 dB down), the largest absolute value of any channel. A sine at a quarter
  of the sampling rate with 45 degrees of phase has samples at 0.707 of its amplitude: sample peak
  reads 3 dB low, true peak reads the amplitude.

Signals are [shape=(n,)] (mono) or [shape=(n, channels)], float, at ``sr`` Hz.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import SAMPLE_RATE
from .errors import ParameterError
import warnings
from core import lazy
pyloudnorm = lazy.module("pyloudnorm")
signal = lazy.module("scipy.signal")

__all__ = ["integrated_lufs", "dual_mono_lufs", "true_peak_db", "sample_peak_db", "Loudness", "measure",
           "GainPlan", "plan_gain", "DUAL_MONO_LU", "OVERSAMPLE",
           "TruePeakStream", "LoudnessStream", "GainMeter", "measure_stream", "oversample_phases", "TRUE_PEAK_CHUNK"]

DUAL_MONO_LU = 10 * math.log10(2.0)     # 3.01 LU: one channel played on two loudspeakers
OVERSAMPLE = 4
TRUE_PEAK_CHUNK = 1 << 20                         # samples per true-peak chunk (bounded memory)
_TAPS = 257                              # the oversampling FIR at 4x (65 taps per phase)
_PHASES: dict[int, np.ndarray] = {}


def oversample_phases(oversample: int) -> np.ndarray:
    """The interpolation filter split into its ``oversample`` phases [shape=(oversample, taps)]:
    output sample ``oversample * n + p`` is the convolution of x with phase p."""
    h = _PHASES.get(oversample)
    if h is None:
        taps = (_TAPS - 1) * oversample // 4 + 1
        fir = signal.firwin(taps, 1.0 / oversample, window=("kaiser", 10.0)) * oversample
        fir = np.concatenate([fir, np.zeros(-len(fir) % oversample)])
        h = np.stack([fir[p::oversample] for p in range(oversample)]).astype(np.float32)
        _PHASES[oversample] = h
    return h


def _as_2d(x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] < 1:
        raise ParameterError(f"expected audio of shape (n,) or (n, channels), got {x.shape}")
    return x


def integrated_lufs(x, *, sr: int = SAMPLE_RATE) -> float:
    """Integrated loudness of ``x`` in LUFS (BS.1770-4); -inf for silence (everything gated out).
    Needs at least one 400 ms block."""

    x = _as_2d(x)
    if len(x) < int(0.4 * sr):
        raise ParameterError(f"loudness needs at least 0.4 s of audio, got {len(x) / sr:.3f} s")
    if x.dtype == np.float32:
        # the same meter block by block (the same float32 stages, the same sums): the same value,
        # without pyloudnorm's full-length filtered copies (a 10-minute mix would take ~600 MB more)
        meter = LoudnessStream(len(x), x.shape[1], sr=sr)
        for a in range(0, len(x), TRUE_PEAK_CHUNK):
            meter.push(x[a:a + TRUE_PEAK_CHUNK], final=a + TRUE_PEAK_CHUNK >= len(x))
        return float(meter.result())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # pyloudnorm warns on possible clipping
        value = pyloudnorm.Meter(sr, filter_class="DeMan").integrated_loudness(
            x if x.dtype == np.float32 else np.asarray(x, dtype=np.float64))
    return float(value)


def dual_mono_lufs(mono, *, sr: int = SAMPLE_RATE) -> float:
    """Loudness of a mono signal as a stereo system plays it (both channels): +3.01 LU."""
    return integrated_lufs(mono, sr=sr) + DUAL_MONO_LU


def sample_peak_db(x) -> float:
    """Largest absolute sample value of any channel, dBFS (-inf for silence)."""
    x = np.asarray(x)
    # a block at a time: no full-length copy of |x| (an hour's mono signal is 635 MB); the same maximum
    p = max((float(np.max(np.abs(x[a:a + TRUE_PEAK_CHUNK]), initial=0.0)) for a in range(0, len(x), TRUE_PEAK_CHUNK)),
            default=0.0) if x.ndim else float(abs(x))
    return 20 * math.log10(p) if p > 0 else -math.inf


def true_peak_db(x, *, oversample: int = OVERSAMPLE) -> float:
    """True peak of ``x`` in dBTP: the largest absolute value of any channel after ``oversample``-x
    oversampling (each polyphase branch an FFT convolution, in chunks so memory stays bounded;
    the signal is taken as zero outside the file). -inf for silence."""
    x = _as_2d(x)
    h = oversample_phases(oversample)
    m = h.shape[1] - 1                    # context each output needs
    n, ch = x.shape
    peak = max((float(np.max(np.abs(x[a:a + TRUE_PEAK_CHUNK]), initial=0.0)) for a in range(0, n, TRUE_PEAK_CHUNK)), default=0.0)
    for a in range(0, n + m, TRUE_PEAK_CHUNK):     # positions in the zero-padded signal (m zeros each side)
        lo, hi = a, min(a + TRUE_PEAK_CHUNK + m, n + 2 * m)
        seg = np.zeros((hi - lo, ch), np.float32)
        s0, s1 = max(lo - m, 0), min(hi - m, n)
        if s1 > s0:
            seg[s0 - (lo - m): s1 - (lo - m)] = x[s0:s1]
        if hi - lo <= m:
            break
        for ph in h:
            y = signal.oaconvolve(seg, ph[:, None], mode="valid", axes=0)
            peak = max(peak, float(np.max(np.abs(y), initial=0.0)))
    return 20 * math.log10(peak) if peak > 0 else -math.inf


@dataclass(frozen=True)
class Loudness:
    """Integrated loudness (LUFS), true peak (dBTP) and sample peak (dBFS) of one signal;
    ``lufs_played`` is the loudness as played on a stereo system (dual mono for one channel)."""
    lufs: float
    true_peak_db: float
    sample_peak_db: float
    channels: int

    @property
    def lufs_played(self) -> float:
        return self.lufs + (DUAL_MONO_LU if self.channels == 1 else 0.0)

    def as_dict(self) -> dict:
        r = lambda v: None if not math.isfinite(v) else round(v, 2)  # noqa: E731
        return {"integrated_lufs": r(self.lufs), "played_lufs": r(self.lufs_played),
                "true_peak_dbtp": r(self.true_peak_db), "sample_peak_dbfs": r(self.sample_peak_db),
                "channels": self.channels}

    def line(self) -> str:
        """``-23.1 LUFS, -1.4 dBTP`` (mono: with the dual-mono figure)."""
        s = f"{_fmt(self.lufs)} LUFS, {_fmt(self.true_peak_db)} dBTP"
        if self.channels == 1:
            s += f" (mono; {_fmt(self.lufs_played)} LUFS played on both channels)"
        return s


def _fmt(v: float) -> str:
    return f"{v:.1f}" if math.isfinite(v) else "-inf"


def measure(x, *, sr: int = SAMPLE_RATE) -> Loudness:
    """:class:`Loudness` of ``x`` [shape=(n,) or (n, channels)]."""
    x2 = _as_2d(x)
    return Loudness(integrated_lufs(x2, sr=sr), true_peak_db(x2), sample_peak_db(x2), x2.shape[1])


@dataclass(frozen=True)
class GainPlan:
    """One output gain for a whole mix: ``gain_db`` brings the mix to ``target_lufs`` when given
    (keeping the original's loudness), and never lets its peak (true peak in dBTP with
    ``true_peak``, else sample peak in dBFS) pass ``ceiling_db``. ``peak_db`` and ``lufs`` are the
    mix's before the gain (``lufs`` None when not measured)."""
    gain_db: float
    peak_db: float
    ceiling_db: float
    true_peak: bool
    lufs: Optional[float] = None
    target_lufs: Optional[float] = None

    @property
    def unit(self) -> str:
        return "dBTP" if self.true_peak else "dBFS"

    @property
    def out_peak_db(self) -> float:
        return self.peak_db + self.gain_db

    @property
    def out_lufs(self) -> Optional[float]:
        return None if self.lufs is None else self.lufs + self.gain_db

    @property
    def limited(self) -> bool:
        """Whether the ceiling decided the gain (the mix would otherwise pass it)."""
        want = 0.0 if self.target_lufs is None or self.lufs is None or not math.isfinite(self.lufs) \
            else self.target_lufs - self.lufs
        return self.gain_db < want - 1e-9

    def describe(self) -> str:
        """One sentence saying what gain is applied and why."""
        g = f"output gain {self.gain_db:+.2f} dB"
        if self.target_lufs is not None and self.lufs is not None and math.isfinite(self.lufs):
            s = f"{g}: the mix ({_fmt(self.lufs)} LUFS) to the original's loudness ({_fmt(self.target_lufs)} LUFS)"
            if self.limited:
                s += (f", held back by the {self.ceiling_db:.1f} {self.unit} ceiling "
                      f"(ends at {_fmt(self.out_lufs)} LUFS)")
            return s
        if self.limited:
            return f"{g}: the peak ({self.peak_db:+.2f} {self.unit}) brought to the {self.ceiling_db:.1f} {self.unit} ceiling"
        return f"{g}: the peak ({_fmt(self.peak_db)} {self.unit}) is under the {self.ceiling_db:.1f} {self.unit} ceiling"

    def to_dict(self) -> dict:
        r = lambda v: None if v is None or not math.isfinite(v) else round(float(v), 3)  # noqa: E731
        return {"gain_db": r(self.gain_db), "peak_db": r(self.peak_db), "ceiling_db": self.ceiling_db,
                "true_peak": self.true_peak, "lufs": r(self.lufs), "target_lufs": r(self.target_lufs)}


def plan_gain(stereo, *, ceiling_db: float = -1.0, true_peak: bool = True, target_lufs: Optional[float] = None,
              measure_lufs: bool = False, sr: int = SAMPLE_RATE) -> GainPlan:
    """The output gain for ``stereo`` [shape=(n, channels)]: to ``target_lufs`` (LUFS) when given,
    else 0 dB, and at most what keeps the peak under ``ceiling_db``. ``measure_lufs`` measures the
    mix's loudness even without a target (for reports)."""
    peak = true_peak_db(stereo) if true_peak else sample_peak_db(stereo)
    lufs = integrated_lufs(stereo, sr=sr) if (target_lufs is not None or measure_lufs) and len(stereo) >= 0.4 * sr \
        else None
    want = 0.0
    if target_lufs is not None and lufs is not None and math.isfinite(lufs) and math.isfinite(target_lufs):
        want = target_lufs - lufs
    room = ceiling_db - peak if math.isfinite(peak) else math.inf
    return GainPlan(float(min(want, room)), float(peak), float(ceiling_db), bool(true_peak), lufs, target_lufs)


# -- loudness and true peak on a stream ---------------------------------------------------------------

class TruePeakStream:
    """:func:`true_peak_db` of a signal of ``n`` samples given block by block
    (same chunks of the zero-padded signal, same FFT convolutions: the same value)."""

    def __init__(self, n: int, channels: int, *, oversample: int = 4):
        self.n, self.ch, self.chunk = int(n), int(channels), TRUE_PEAK_CHUNK
        self.h = oversample_phases(oversample)
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
                y = signal.oaconvolve(seg, ph[:, None], mode="valid", axes=0)
                self.peak = max(self.peak, float(np.max(np.abs(y), initial=0.0)))
            self.a += self.chunk
            keep = self.a - self.buf_start                     # the next chunk starts at self.a
            if keep > 0:
                self.buf, self.buf_start = self.buf[keep:], self.a
        self.done = True

    def result(self) -> float:
        self._run(final=True)
        return 20 * math.log10(self.peak) if self.peak > 0 else -math.inf


class LoudnessStream:
    """:func:`core.loudness.integrated_lufs` (pyloudnorm's BS.1770-4 meter with the "DeMan"
    filters) of ``n`` samples given block by block: the K-weighting filters carry their state, the
    400 ms blocks are summed as the meter sums them and gated the same way."""

    def __init__(self, n: int, channels: int, *, sr: int = SAMPLE_RATE):
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
                y, self.zi[c][k] = signal.lfilter(b, a, col, zi=self.zi[c][k])
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
    """:func:`measure` of ``x`` [shape=(n,) or (n, channels)] computed block by
    block (the K-weighted copy and the oversampled signal never exist whole)."""
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
    return Loudness(ls.result(), tp.result(), 20 * math.log10(peak) if peak > 0 else -math.inf, ch)


class GainMeter:
    """:func:`plan_gain` (with ``measure_lufs``) of a stereo signal of ``n`` samples given block by
    block (:class:`TruePeakStream`, :class:`LoudnessStream`, the sample peak): the same plan as
    the whole signal's, and its true peak, without holding the signal."""

    def __init__(self, n: int, channels: int = 2, *, sr: int = SAMPLE_RATE):
        self.n, self.sr = int(n), sr
        self.tp = TruePeakStream(n, channels)
        self.ls = LoudnessStream(n, channels, sr=sr) if n >= 0.4 * sr else None
        self.sample_peak = 0.0
        self.fed = 0

    def push(self, block: np.ndarray) -> None:
        self.sample_peak = max(self.sample_peak, float(np.max(np.abs(block), initial=0.0)))
        self.tp.push(block)
        self.fed += len(block)
        if self.ls is not None:
            self.ls.push(block, final=self.fed >= self.n)

    def true_peak_db(self) -> float:
        return self.tp.result()

    def plan(self, *, ceiling_db: float = -1.0, true_peak: bool = True,
             target_lufs: Optional[float] = None) -> GainPlan:
        if true_peak:
            peak = self.tp.result()
        else:
            peak = 20 * math.log10(self.sample_peak) if self.sample_peak > 0 else -math.inf
        lufs = float(self.ls.result()) if self.ls is not None else None
        want = 0.0
        if target_lufs is not None and lufs is not None and math.isfinite(lufs) and math.isfinite(target_lufs):
            want = target_lufs - lufs
        room = ceiling_db - peak if math.isfinite(peak) else math.inf
        return GainPlan(float(min(want, room)), float(peak), float(ceiling_db), bool(true_peak), lufs, target_lufs)
