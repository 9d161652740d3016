"""What the desktop UI draws, computed here so that widgets do no signal processing.

- :func:`waveform_envelope`: min/max per pixel column of the input (the overview).
- :func:`dominance`: which source dominates each band and frame, and how loud the tile is
  (the spectrogram coloured by source).
- :class:`OutputTap`: a preallocated ring buffer of the last output samples, written from the
  audio callback without allocation; :func:`meter_values` reads it for the meters.
- :class:`TappedPlayer` (a device) and :class:`ClockPlayer` (no device: the engine is pulled on a
  timer so that the playhead, the meters and A/B still work, silently).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from core.stft import HOP

from .playback import MixEngine, Player

__all__ = ["waveform_envelope", "dominance", "frame_of_sample", "OutputTap", "MeterValues",
           "meter_values", "TappedPlayer", "ClockPlayer"]


def frame_of_sample(sample: int) -> int:
    """The PS frame whose centre is nearest ``sample`` (frames are centred every HOP samples)."""
    return int(round(sample / HOP))


def waveform_envelope(mono: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) of ``mono`` over ``columns`` equal spans [shape=(columns,) each]."""
    n = len(mono)
    columns = max(1, min(int(columns), n))
    edges = np.linspace(0, n, columns + 1).astype(np.int64)
    lo = np.minimum.reduceat(mono, edges[:-1])
    hi = np.maximum.reduceat(mono, edges[:-1])
    return lo.astype(np.float32), hi.astype(np.float32)


def dominance(energies: np.ndarray, *, floor_db: float = -80.0) -> tuple[np.ndarray, np.ndarray]:
    """For source band energies [shape=(sources, bands, frames)]: the index of the loudest source
    per tile [shape=(bands, frames)] and the tile's total level in dB relative to the loudest tile,
    mapped to [0, 1] over ``floor_db``..0 dB."""
    e = np.asarray(energies, dtype=np.float64)
    idx = np.argmax(e, axis=0)
    total = e.sum(axis=0)
    ref = max(float(total.max(initial=0.0)), 1e-20)
    level_db = 10 * np.log10(np.maximum(total / ref, 1e-12))
    level = np.clip(1.0 - level_db / floor_db, 0.0, 1.0)
    return idx.astype(np.int16), level.astype(np.float32)


class OutputTap:
    """The last ``size`` output frames [shape=(size, 2)], written by the audio callback in place."""

    def __init__(self, size: int = 4096):
        self.buf = np.zeros((size, 2), np.float32)
        self.size = size
        self.pos = 0         # next write index
        self.written = 0     # total frames written (the reader notices new data)

    def write(self, block: np.ndarray) -> None:
        n = block.shape[0]
        if n >= self.size:
            np.copyto(self.buf, block[n - self.size:])
            self.pos = 0
        else:
            k = min(n, self.size - self.pos)
            np.copyto(self.buf[self.pos:self.pos + k], block[:k])
            if k < n:
                np.copyto(self.buf[:n - k], block[k:])
            self.pos = (self.pos + n) % self.size
        self.written += n

    def last(self, n: int) -> np.ndarray:
        """A copy of the last ``n`` frames, oldest first."""
        n = min(n, self.size)
        idx = (self.pos - n + np.arange(n)) % self.size
        return self.buf[idx]


@dataclass(frozen=True)
class MeterValues:
    peak_db: tuple[float, float]      # left, right (dBFS)
    rms_db: tuple[float, float]
    correlation: float                # -1 (out of phase) .. +1 (mono)
    side: np.ndarray                  # goniometer points: x = S, y = M [shape=(n,)] each
    mid: np.ndarray


def meter_values(block: np.ndarray, *, points: int = 1024) -> MeterValues:
    """Peak, RMS, correlation and goniometer points of a stereo ``block`` [shape=(n, 2)]."""
    x = np.asarray(block, dtype=np.float64)
    if x.size == 0:
        z = np.zeros(0)
        return MeterValues((-120.0, -120.0), (-120.0, -120.0), 0.0, z, z)
    peak = np.max(np.abs(x), axis=0)
    rms = np.sqrt(np.mean(x * x, axis=0))
    den = np.sqrt(np.sum(x[:, 0] ** 2) * np.sum(x[:, 1] ** 2))
    corr = float(np.sum(x[:, 0] * x[:, 1]) / den) if den > 1e-12 else 0.0
    tail = x[-points:]
    mid = (tail[:, 0] + tail[:, 1]) / np.sqrt(2)
    side = (tail[:, 1] - tail[:, 0]) / np.sqrt(2)
    db = lambda v: float(20 * np.log10(max(v, 1e-6)))
    return MeterValues((db(peak[0]), db(peak[1])), (db(rms[0]), db(rms[1])), corr, side, mid)


class TappedPlayer(Player):
    """A device :class:`Player` whose callback also copies each block into an :class:`OutputTap`."""

    def __init__(self, engine: MixEngine, *, device=None, blocksize: int = 512, tap: Optional[OutputTap] = None):
        self.tap = tap or OutputTap()
        super().__init__(engine, device=device, blocksize=blocksize)

    def _callback(self, outdata, frames, time_info, status):
        self.engine.callback(outdata, frames, time_info, status)
        self.tap.write(outdata)


class ClockPlayer:
    """No audio device: :meth:`pull` (called on a timer) runs the engine's callback for the time
    that has passed, into a preallocated block, and feeds the tap. Same interface as Player."""

    device_name = "silent clock (no audio device)"

    def __init__(self, engine: MixEngine, *, tap: Optional[OutputTap] = None, block: int = 8192):
        self.engine = engine
        self.tap = tap or OutputTap()
        self._block = np.zeros((block, 2), np.float32)
        self._owed = 0.0

    def pull(self, seconds: float) -> None:
        """Advance playback by ``seconds`` of audio."""
        self._owed += seconds * self.engine.sample_rate
        while self._owed >= 1:
            n = int(min(self._owed, len(self._block)))
            out = self._block[:n]
            self.engine.callback(out, n)
            self.tap.write(out)
            self._owed -= n
        if not self.engine.playing:
            self._owed = 0.0

    def play(self) -> None:
        self.engine.start()

    def pause(self) -> None:
        self.engine.playing = False

    def stop(self) -> None:
        self.engine.stop()

    def close(self) -> None:
        self.engine.playing = False
