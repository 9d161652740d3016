"""Playback for the UI: the mixing engine, the audio device (or a silent clock), the transport and
the ~30 Hz tick that moves playheads and meters.

The engine reads precomputed signals; the UI changes what it plays only by swapping an immutable
snapshot (:meth:`Playback.push`). The audio device is probed once, in a worker when a job makes the
first engine (:meth:`Playback.make_player`); without one, a clock advances the playhead silently.
"""
from __future__ import annotations

import time
import weakref
from typing import Callable, Optional

from PyQt6.QtCore import QObject, QSettings, QTimer, pyqtSignal

from app.display import ClockPlayer, OutputTap, TappedPlayer, meter_values
from app.playback import MixEngine, PlaybackUnavailable
from core import listening

__all__ = ["Playback"]


class Playback(QObject):
    tick = pyqtSignal()                 # ~30 Hz while the window lives (playhead, meters)
    play_state = pyqtSignal(bool)
    status = pyqtSignal(str)

    def __init__(self, prefs: QSettings, *, before_tick: Optional[Callable[[], None]] = None, parent=None):
        super().__init__(parent)
        self._prefs = prefs
        self._before_tick = before_tick
        self.engine: Optional[MixEngine] = None
        self.player = None
        self.tap = OutputTap(16384)     # ~370 ms: the meters' peak readout misses no sample between ticks
        self.playback_note = ""
        self.playback_detail = ""
        self._clock = QTimer(self)
        self._clock.setInterval(33)
        self._clock.timeout.connect(self._on_tick)
        self._last_tick = time.monotonic()
        self._clock.start()
        me = weakref.ref(self)

        def playhead() -> Optional[int]:
            p = me()
            return p.engine.position if p is not None and p.engine is not None else None
        listening.follow(playhead)      # mixes and pairs being made go on from where the person seeks

    # --- the engine and the device --------------------------------------------------------------
    def fits(self, snap) -> bool:
        """Whether ``snap`` is for the engine's rows (a job may be replacing the sources)."""
        return self.engine is not None and snap.coefs.shape == self.engine.snapshot.coefs.shape

    def push(self, snap) -> None:
        """Play ``snap`` from the next block on (when it fits the engine)."""
        if snap is not None and self.fits(snap):
            self.engine.set_snapshot(snap)

    def set_engine(self, engine: Optional[MixEngine], snap=None) -> None:
        """Play ``engine`` (at the old one's position, loop and state) with snapshot ``snap``."""
        old = self.engine
        if engine is not None and old is not None and engine is not old:
            engine.take_over(old)       # the same position, loop and state; one block's crossfade
        self.engine = engine
        if engine is not None:
            if snap is not None:
                engine.set_snapshot(snap)
            if self.player is None:
                self.install_player(self.make_player(engine))
            else:
                self.player.engine = engine
        if old is not None and engine is not old and engine is None:
            old.playing = False         # (else the new engine stops it after the crossfade)

    def make_player(self, engine: MixEngine) -> tuple:
        """(player, note, problem): a device player, or the silent clock and why (slow: a worker)."""
        device = self._prefs.value("audio/device", "", str) or None
        try:
            p = TappedPlayer(engine, device=device, tap=self.tap)
            return p, f"Output: {p.device_name}", ""
        except PlaybackUnavailable as exc:
            return ClockPlayer(engine, tap=self.tap), "No audio output: silent preview", str(exc)
        except Exception as exc:   # a device that refuses the stream
            return ClockPlayer(engine, tap=self.tap), "No audio output: silent preview", f"the audio device failed ({exc})"

    def install_player(self, made: tuple) -> None:
        if self.player is not None:
            return
        self.player, self.playback_note, self.playback_detail = made
        if self.playback_detail:
            self.status.emit(f"No sound: {self.playback_detail}")

    def reopen_player(self) -> None:
        if self.player is not None:
            self.player.close()
            self.player = None
        if self.engine is not None:
            self.install_player(self.make_player(self.engine))

    # --- the transport --------------------------------------------------------------------------
    @property
    def playing(self) -> bool:
        return bool(self.engine is not None and self.engine.playing)

    def toggle_play(self) -> None:
        if self.player is None:
            return
        if self.engine.playing:
            self.player.pause()
        else:
            loop = self.engine.loop              # looping a region: play it, from its start when outside
            if loop is not None and not loop[0] <= self.engine.position < loop[1]:
                self.engine.seek(loop[0])
            self.player.play()
        self.play_state.emit(self.engine.playing)

    def stop(self) -> None:
        if self.player is not None:
            self.player.stop()
            self.play_state.emit(False)

    def seek(self, seconds: float) -> None:
        if self.engine is not None:
            self.engine.seek(int(seconds * self.engine.sample_rate))
            self.tick.emit()

    def set_loop(self, start_s: Optional[float], end_s: Optional[float]) -> None:
        if self.engine is None:
            return
        if start_s is None:
            self.engine.set_loop(None, None)
        else:
            sr = self.engine.sample_rate
            self.engine.set_loop(int(start_s * sr), int(end_s * sr))

    def meters(self, n: int = 2048):
        return meter_values(self.tap.last(n))

    def _on_tick(self) -> None:
        now = time.monotonic()
        dt, self._last_tick = min(now - self._last_tick, 0.25), now
        if isinstance(self.player, ClockPlayer) and self.engine is not None and self.engine.playing:
            self.player.pull(dt)
            if not self.engine.playing:
                self.play_state.emit(False)
        if self._before_tick is not None:
            self._before_tick()
        self.tick.emit()

    def shutdown(self) -> None:
        self._clock.stop()
        if self.player is not None:
            self.player.close()
