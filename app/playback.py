"""Live playback: an audio callback that only mixes precomputed signals with the current gains.

:class:`MixEngine` holds, per source row, the mono stem ``s`` and its decorrelated copy ``d``
(views of the session's arrays, no copies), and reads each row's "auto" stereo pair (the source
rendered band by band for the current rendition, :func:`core.renderer.render_auto`) from the
snapshot. Each row plays ``L = a s + b d + g L_auto``, ``R = c s + d d + g R_auto``: the snapshot's
constants (a, b, c, d) for a pinned source, its gain ``g`` on the pair for a source in "auto" mode.
The UI or the session builds an immutable :class:`MixSnapshot` and swaps it in with one reference
assignment; the callback ramps from the previous block's coefficients to the new ones over the
block (no zipper noise), so a change is heard in the very next block, and when a row's pair is
replaced (another rendition, mono-compatible mode) the old pair fades out while the new one fades
in over that block. Switching a source between pinned and auto is the same one-block crossfade.
A/B to the mono original is a snapshot too (every row a = c = 1, b = d = 0, no pair: the stems sum
to the recording). While the places are those of a state whose whole mix is made (the state's
:class:`app.mixes.StateMix`, the export's samples bit for bit), the snapshot plays that one stereo
bus instead of the rows (no row plays): what is heard is the export times the output gain, sample
for sample, and a switch to another state is one buffer swapped (with the same one-block crossfade). The session's output gain (one gain for the whole mix, the one export applies:
:meth:`app.session.Session.plan_output`) is folded into every row's coefficients, so preview and
export play the same levels. The callback allocates no buffers, takes no locks, logs nothing and
emits no signals: everything is preallocated.

:class:`Player` connects the engine to an output device with sounddevice. When there is no
PortAudio library or no device it raises :class:`PlaybackUnavailable` with a message for the
user; rendering and export do not need it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from core.errors import ParameterError
from core.placement import Placement
from core.renderer import active_gains, pinned_coefficients

log = logging.getLogger(__name__)

__all__ = ["MixSnapshot", "MixEngine", "Player", "PlaybackUnavailable", "snapshot_for", "whole_mix_engine",
           "MAX_BLOCK"]

MAX_BLOCK = 8192


class PlaybackUnavailable(Exception):
    """No audio output (no PortAudio library or no device); the message says what to do."""


@dataclass(frozen=True)
class MixSnapshot:
    coefs: np.ndarray  # [rows, 4] float32, pinned part: L = a s + b d, R = c s + d d
    auto: np.ndarray   # [rows] float32: gain on the row's auto pair
    pairs: tuple = ()  # per row: its auto pair [shape=(n, 2)] or None (rows beyond: None)
    bus: Optional[np.ndarray] = None   # a state's whole mix [shape=(n, 2)], played instead of the rows
    bus_gain: float = 0.0              # its gain (the output gain), float32


def snapshot_for(placements: list[Placement], *, has_auto: list[bool], pairs: Optional[Sequence] = None,
                 ab_original: bool = False, original_gain: float = 1.0, mono_compatible: bool = False,
                 output_gain: float = 1.0, bus: Optional[np.ndarray] = None) -> MixSnapshot:
    """The snapshot for ``placements``; with ``ab_original`` the mono original (sum of the stems).
    ``has_auto``: per source, whether it has a rendition's auto render; ``pairs``: those renders
    [shape=(n, 2)] (needed for every source in auto mode). ``output_gain`` (linear) scales
    everything: the output stage shared with export. ``bus``: the whole mix of the sources at
    exactly these ``placements`` (:class:`app.mixes.StateMix`): played alone, no pair is needed."""
    n = len(placements)
    coefs = np.zeros((n, 4), np.float32)
    auto = np.zeros(n, np.float32)
    rows = [None] * n
    if bus is not None and not ab_original:
        coefs.setflags(write=False)
        auto.setflags(write=False)
        return MixSnapshot(coefs, auto, tuple(rows), bus, float(np.float32(output_gain)))
    if ab_original:
        coefs[:, 0] = coefs[:, 2] = original_gain * output_gain
    else:
        g = active_gains(placements) * np.float32(output_gain)
        for i, p in enumerate(placements):
            if p.pinned or not has_auto[i]:
                coefs[i] = pinned_coefficients(p, mono_compatible=mono_compatible) * g[i]
            else:
                pair = pairs[i] if pairs is not None and i < len(pairs) else None
                if pair is None:
                    raise ParameterError(f"source {i + 1} follows the model but its auto render is missing")
                rows[i] = pair
                auto[i] = g[i]
    coefs.setflags(write=False)
    auto.setflags(write=False)
    return MixSnapshot(coefs, auto, tuple(rows))


def whole_mix_engine(mono: np.ndarray, stereo: np.ndarray) -> "MixEngine":
    """An engine that plays ``stereo`` [shape=(n, 2)], the whole mix upmixed at once (e.g. the PS
    decoder on the recording), while its sources are being found: one row whose pair it is."""
    snap = MixSnapshot(np.zeros((1, 4), np.float32), np.ones(1, np.float32), (stereo,))
    snap.coefs.setflags(write=False)
    snap.auto.setflags(write=False)
    return MixEngine([mono], [mono], snap)


class MixEngine:
    """The callback's state and logic; usable without any audio device (tests drive it directly).

    ``s``, ``d``: one float32 array [shape=(n,)] per row (the session's own arrays, read in place,
    never copied) or a [rows, n] array; the snapshot brings each row's auto pair."""

    def __init__(self, s, d, snapshot: MixSnapshot, *, sample_rate: int = 44100):
        self.s, self.d = list(s), list(d)
        self.rows, self.length = len(self.s), (len(self.s[0]) if len(self.s) else 0)
        self.sample_rate = sample_rate
        self.snapshot = snapshot
        self._cur = np.zeros((self.rows, 4), np.float32)
        self._dc = np.zeros((self.rows, 4), np.float32)
        self._gcur = np.zeros(self.rows, np.float32)     # auto gain on the pair played last block
        self._played: list = [None] * self.rows          # the pair each row played last block
        self._bus = None                                  # the bus played last block, and its gain
        self._gbus = np.float32(0.0)
        self._k = np.zeros((8, self.rows), np.float32)
        self._ramp_base = np.arange(1, MAX_BLOCK + 1, dtype=np.float32)
        self._ramp = np.zeros(MAX_BLOCK, np.float32)
        self._t1 = np.zeros(MAX_BLOCK, np.float32)
        self._t2 = np.zeros(MAX_BLOCK, np.float32)
        self._acc = np.zeros((2, MAX_BLOCK), np.float32)
        self.position = 0          # next sample to play
        self.playing = False
        self.loop: Optional[tuple[int, int]] = None
        self.underruns = 0
        self.blocks = 0
        self.last_block = np.zeros((MAX_BLOCK, 2), np.float32)  # for meters: the last block played
        self.last_frames = 0
        self._from: Optional["MixEngine"] = None          # an engine this one takes over from (crossfade)
        self._fade = np.zeros((MAX_BLOCK, 2), np.float32)
        self.settle()

    # --- control (any thread; plain attribute writes) -----------------------------------------
    def set_snapshot(self, snap: MixSnapshot) -> None:
        self.snapshot = snap
        if not self.playing:        # nothing to ramp from; and the pairs played before are let go
            self.settle()

    def take_over(self, old: "MixEngine") -> None:
        """Replace ``old`` (another engine, e.g. the whole mix's before the sources are ready)
        without a click: the next block crossfades from what ``old`` plays to what this one plays,
        then ``old`` stops. Call before this engine starts, at ``old``'s position."""
        if old is self or old is None:
            return
        self.position = min(old.position, self.length)
        self.loop, self.playing = old.loop, old.playing
        self._from = old if old.playing else None

    def seek(self, sample: int) -> None:
        self.position = int(min(max(sample, 0), self.length))

    def set_loop(self, start: Optional[int], end: Optional[int]) -> None:
        if start is None or end is None or end - start < 64:
            self.loop = None
        else:
            self.loop = (int(max(0, start)), int(min(end, self.length)))

    def start(self) -> None:
        """Play from the current position (from the start when at the end)."""
        if self.position >= self.length:
            self.seek(0)
        self.playing = True

    def stop(self) -> None:
        """Stop and rewind to the start."""
        self.playing = False
        self.seek(0)

    def settle(self) -> None:
        """Jump to the current snapshot without a ramp (e.g. before starting playback)."""
        snap = self.snapshot
        np.copyto(self._cur, snap.coefs)
        np.copyto(self._gcur, snap.auto)
        for j in range(self.rows):
            self._played[j] = snap.pairs[j] if j < len(snap.pairs) else None
        self._bus, self._gbus = snap.bus, np.float32(snap.bus_gain)

    # --- the callback ---------------------------------------------------------------------------
    def callback(self, outdata, frames, time_info=None, status=None) -> None:
        if status is not None and status.output_underflow:
            self.underruns += 1
        self.blocks += 1
        if not self.playing or frames > MAX_BLOCK:
            outdata.fill(0)
            self.last_frames = 0
            return
        snap = self.snapshot
        np.subtract(snap.coefs, self._cur, out=self._dc)
        k = self._k
        np.copyto(k[0:4], self._cur.T)
        np.copyto(k[4:8], self._dc.T)
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
            self._segment(snap, outdata, done, n, pos, ramp[done:done + n])
            done += n
            self.position = pos + n
            if self.loop is not None and self.position >= self.loop[1]:
                self.position = self.loop[0]
        np.copyto(self._cur, snap.coefs)
        np.copyto(self._gcur, snap.auto)
        for j in range(self.rows):
            self._played[j] = snap.pairs[j] if j < len(snap.pairs) else None
        self._bus, self._gbus = snap.bus, np.float32(snap.bus_gain)
        old = self._from
        if old is not None:                 # taking over: fade the old engine out over this block
            self._from = None
            fade = self._fade[:frames]
            old.callback(fade, frames)
            old.playing = False
            t1, t2 = self._t1[:frames], self._t2[:frames]
            for ch in (0, 1):
                np.multiply(outdata[:frames, ch], ramp, out=t1)       # this engine fades in ...
                np.multiply(fade[:, ch], ramp, out=t2)
                np.subtract(fade[:, ch], t2, out=t2)                  # ... the old one out
                np.add(t1, t2, out=t1)
                outdata[:frames, ch] = t1
        np.copyto(self.last_block[:frames], outdata[:frames])
        self.last_frames = frames

    def _add(self, acc, sig, g0, g1, ramp, t) -> None:
        """acc += (g0 + (g1 - g0) ramp) sig, in place."""
        np.multiply(ramp, g1 - g0, out=t)
        np.add(t, g0, out=t)
        np.multiply(t, sig, out=t)
        np.add(acc, t, out=acc)

    def _segment(self, snap, outdata, o, n, pos, ramp) -> None:
        # per row and channel: (c0 + dc * ramp) * signal, for a.s + b.d, accumulated in place; then
        # the row's auto pair times its ramped gain (a replaced pair: the old one fades out and
        # the new one fades in)
        k, t1 = self._k, self._t1[:n]
        acc = self._acc[:, :n]
        acc.fill(0.0)
        pairs, gcur, gnew = snap.pairs, self._gcur, snap.auto
        for j in range(self.rows):
            s = self.s[j][pos:pos + n]
            d = self.d[j][pos:pos + n]
            for ch, (ia, ib) in enumerate(((0, 1), (2, 3))):
                a0, b0 = k[ia, j], k[ib, j]
                a1, b1 = a0 + k[4 + ia, j], b0 + k[4 + ib, j]
                if a0 or a1:
                    self._add(acc[ch], s, a0, a1, ramp, t1)
                if b0 or b1:
                    self._add(acc[ch], d, b0, b1, ramp, t1)
            new = pairs[j] if j < len(pairs) else None
            old = self._played[j]
            if new is old:
                if new is not None and (gcur[j] or gnew[j]):
                    for ch in (0, 1):
                        self._add(acc[ch], new[pos:pos + n, ch], gcur[j], gnew[j], ramp, t1)
                continue
            if old is not None and gcur[j]:
                for ch in (0, 1):
                    self._add(acc[ch], old[pos:pos + n, ch], gcur[j], 0.0, ramp, t1)
            if new is not None and gnew[j]:
                for ch in (0, 1):
                    self._add(acc[ch], new[pos:pos + n, ch], 0.0, gnew[j], ramp, t1)
        bus, old, g0, g1 = snap.bus, self._bus, self._gbus, np.float32(snap.bus_gain)
        if bus is old:                           # the bus alone (no row plays): its gain times its samples
            if bus is not None and (g0 or g1):
                for ch in (0, 1):
                    self._add(acc[ch], bus[pos:pos + n, ch], g0, g1, ramp, t1)
        else:
            if old is not None and g0:
                for ch in (0, 1):
                    self._add(acc[ch], old[pos:pos + n, ch], g0, np.float32(0.0), ramp, t1)
            if bus is not None and g1:
                for ch in (0, 1):
                    self._add(acc[ch], bus[pos:pos + n, ch], np.float32(0.0), g1, ramp, t1)
        np.copyto(outdata[o:o + n, 0], acc[0])
        np.copyto(outdata[o:o + n, 1], acc[1])

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
        self.engine.start()
        if not self.stream.active:
            self.stream.start()

    def pause(self) -> None:
        self.engine.playing = False

    def stop(self) -> None:
        self.engine.stop()

    def close(self) -> None:
        try:
            self.stream.stop()
            self.stream.close()
        except Exception as exc:      # a device that vanished: nothing left to close
            log.warning("closing the audio stream failed: %s", exc)

    @staticmethod
    def output_devices() -> list[str]:
        try:
            import sounddevice as sd
            return [d["name"] for d in sd.query_devices() if d["max_output_channels"] >= 2]
        except Exception as exc:      # no PortAudio, no devices: the app runs with a silent clock
            log.info("no audio output devices: %s", exc)
            return []
