"""Live playback: an audio callback that only mixes precomputed signals with the current gains.

:class:`MixEngine` holds, per source row, the mono stem ``s``, its decorrelated copy ``d`` and
its "auto" stereo render; one extra row carries the mono original, so the A/B switch to the
original is a change of coefficients like any other. The UI or the session builds an immutable
:class:`MixSnapshot` (coefficients a, b, c, d and an auto gain per row) and swaps it in with one
reference assignment; the callback ramps from the previous coefficients to the new ones over the
block (no zipper noise), so a change is heard in the very next block. The callback allocates no
buffers, takes no locks, logs nothing and emits no signals: everything is preallocated.

:class:`Player` connects the engine to the default output device with sounddevice. When there is
no PortAudio library or no output device it raises :class:`PlaybackUnavailable` with a message
for the user; rendering and export do not need it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from core.placement import Placement
from core.renderer import active_gains, pinned_coefficients

__all__ = ["MixSnapshot", "MixEngine", "Player", "PlaybackUnavailable", "snapshot_for", "MAX_BLOCK"]

MAX_BLOCK = 8192


class PlaybackUnavailable(Exception):
    """No audio output (no PortAudio library or no device); the message says what to do."""


@dataclass(frozen=True)
class MixSnapshot:
    coefs: np.ndarray  # [rows, 4] float32: L = a s + b d, R = c s + d d
    auto: np.ndarray   # [rows] float32: gain on the row's auto stereo render


def snapshot_for(placements: list[Placement], *, has_auto: list[bool], ab_original: bool = False,
                 original_gain: float = 1.0) -> MixSnapshot:
    """The snapshot for ``placements`` (+ the original's row last). With ``ab_original`` only the
    mono original sounds; otherwise only the stereo render."""
    n = len(placements)
    coefs = np.zeros((n + 1, 4), np.float32)
    auto = np.zeros(n + 1, np.float32)
    if ab_original:
        coefs[n] = (original_gain, 0.0, original_gain, 0.0)
    else:
        g = active_gains(placements)
        for i, p in enumerate(placements):
            if p.pinned or not has_auto[i]:
                coefs[i] = pinned_coefficients(p) * g[i]
            else:
                auto[i] = g[i]
    coefs.setflags(write=False)
    auto.setflags(write=False)
    return MixSnapshot(coefs, auto)


class MixEngine:
    """The callback's state and logic; usable without any audio device (tests drive it directly).

    ``s``, ``d`` [shape=(rows, n)], ``auto_l``, ``auto_r`` [shape=(rows, n)] float32, where the last
    row is the mono original (its ``d`` and auto rows are zero)."""

    def __init__(self, s: np.ndarray, d: np.ndarray, auto_l: np.ndarray, auto_r: np.ndarray,
                 snapshot: MixSnapshot, *, sample_rate: int = 44100):
        self.s, self.d, self.auto_l, self.auto_r = s, d, auto_l, auto_r
        self.rows, self.length = s.shape
        self.sample_rate = sample_rate
        self.snapshot = snapshot
        self._cur = np.array(snapshot.coefs, dtype=np.float32)
        self._cur_auto = np.array(snapshot.auto, dtype=np.float32)
        self._dc = np.zeros_like(self._cur)
        self._da = np.zeros_like(self._cur_auto)
        # contiguous per-coefficient vectors for the dot products
        self._k = np.zeros((10, self.rows), np.float32)
        self._ramp_base = np.arange(1, MAX_BLOCK + 1, dtype=np.float32)
        self._ramp = np.zeros(MAX_BLOCK, np.float32)
        self._t1 = np.zeros(MAX_BLOCK, np.float32)
        self._t2 = np.zeros(MAX_BLOCK, np.float32)
        self.position = 0          # next sample to play
        self.playing = False
        self.loop: Optional[tuple[int, int]] = None
        self.underruns = 0
        self.blocks = 0

    # --- control (any thread; plain attribute writes) -----------------------------------------
    def set_snapshot(self, snap: MixSnapshot) -> None:
        self.snapshot = snap

    def seek(self, sample: int) -> None:
        self.position = int(min(max(sample, 0), self.length))

    def set_loop(self, start: Optional[int], end: Optional[int]) -> None:
        if start is None or end is None or end - start < 64:
            self.loop = None
        else:
            self.loop = (int(max(0, start)), int(min(end, self.length)))

    # --- the callback ---------------------------------------------------------------------------
    def callback(self, outdata, frames, time_info=None, status=None) -> None:
        if status is not None and status.output_underflow:
            self.underruns += 1
        self.blocks += 1
        snap = self.snapshot
        if not self.playing or frames > MAX_BLOCK:
            outdata.fill(0)
            return
        np.subtract(snap.coefs, self._cur, out=self._dc)
        np.subtract(snap.auto, self._cur_auto, out=self._da)
        k = self._k
        np.copyto(k[0:4], self._cur.T)
        np.copyto(k[4:8], self._dc.T)
        k[8] = self._cur_auto
        k[9] = self._da
        ramp = self._ramp[:frames]
        np.multiply(self._ramp_base[:frames], np.float32(1.0 / frames), out=ramp)
        done = 0
        while done < frames:
            pos = self.position
            end = self.loop[1] if self.loop is not None and pos < self.loop[1] else self.length
            n = min(frames - done, end - pos)
            if n <= 0:
                if self.loop is not None:
                    self.position = self.loop[0]
                    continue
                outdata[done:].fill(0)
                self.playing = False
                break
            self._segment(outdata, done, n, pos, ramp[done:done + n])
            done += n
            self.position = pos + n
            if self.loop is not None and self.position >= self.loop[1]:
                self.position = self.loop[0]
        np.copyto(self._cur, snap.coefs)
        np.copyto(self._cur_auto, snap.auto)

    def _segment(self, outdata, o, n, pos, ramp) -> None:
        k, t1, t2 = self._k, self._t1[:n], self._t2[:n]
        s = self.s[:, pos:pos + n]
        d = self.d[:, pos:pos + n]
        for ch, (ia, ib, src) in enumerate(((0, 1, self.auto_l), (2, 3, self.auto_r))):
            au = src[:, pos:pos + n]
            # static part: a.s + b.d + g.auto ; ramped part: ramp * (da.s + db.d + dg.auto)
            np.matmul(k[ia], s, out=t1)
            np.matmul(k[ib], d, out=t2)
            np.add(t1, t2, out=t1)
            np.matmul(k[8], au, out=t2)
            np.add(t1, t2, out=t1)
            out_col = outdata[o:o + n, ch]
            np.copyto(out_col, t1)
            np.matmul(k[4 + ia], s, out=t1)
            np.matmul(k[4 + ib], d, out=t2)
            np.add(t1, t2, out=t1)
            np.matmul(k[9], au, out=t2)
            np.add(t1, t2, out=t1)
            np.multiply(t1, ramp, out=t1)
            np.add(out_col, t1, out=out_col)

    @property
    def seconds(self) -> float:
        return self.position / self.sample_rate


class Player:
    """A sounddevice output stream driven by a :class:`MixEngine`."""

    def __init__(self, engine: MixEngine, *, device=None, blocksize: int = 512):
        try:
            import sounddevice as sd
        except OSError as exc:  # the PortAudio library is missing
            raise PlaybackUnavailable("audio playback needs the PortAudio library (Debian/Ubuntu: "
                                      f"sudo apt-get install libportaudio2): {exc}") from None
        self._sd = sd
        try:
            info = sd.query_devices(device, "output")
        except Exception as exc:
            raise PlaybackUnavailable(f"no audio output device found ({exc}); rendering and export "
                                      "still work") from None
        self.engine = engine
        self.device_name = info["name"]
        self.stream = sd.OutputStream(samplerate=engine.sample_rate, channels=2, dtype="float32",
                                      blocksize=blocksize, device=device, callback=self._callback,
                                      latency="low")

    def _callback(self, outdata, frames, time_info, status):
        self.engine.callback(outdata, frames, time_info, status)

    def play(self) -> None:
        if self.engine.position >= self.engine.length:
            self.engine.seek(0)
        self.engine.playing = True
        if not self.stream.active:
            self.stream.start()

    def pause(self) -> None:
        self.engine.playing = False

    def stop(self) -> None:
        self.engine.playing = False
        self.engine.seek(0)

    def close(self) -> None:
        try:
            self.stream.stop()
            self.stream.close()
        except Exception:
            pass

    @staticmethod
    def output_devices() -> list[str]:
        try:
            import sounddevice as sd
            return [d["name"] for d in sd.query_devices() if d["max_output_channels"] >= 2]
        except Exception:
            return []
