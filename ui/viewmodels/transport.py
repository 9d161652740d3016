"""The transport's view model, bound by the transport bar and the playheads (overview, spectrogram,
the canvas' trails): whether something can play, whether it plays, where the playhead is, and the
audio device's note. The controller sets it from the playback engine on every tick (~30 Hz), on
play and pause, and when the engine changes."""
from __future__ import annotations

from PyQt6.QtCore import QObject, pyqtSignal

from .base import notifying

__all__ = ["TransportViewModel"]


class TransportViewModel(QObject):
    """``available`` (an engine to play), ``playing`` and ``length`` (seconds), announced by
    ``state_changed``; ``position`` (seconds) and ``position_samples``, announced by
    ``position_changed`` when the playhead moved; ``note`` and ``detail`` (the audio device, or
    why the preview is silent), announced by ``device_changed``."""
    state_changed = pyqtSignal()
    position_changed = pyqtSignal()
    device_changed = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._available = self._playing = False
        self._length = self._position = 0.0
        self._position_samples = 0
        self._note = self._detail = ""

    available = notifying("available", state_changed, bool)
    playing = notifying("playing", state_changed, bool)
    length = notifying("length", state_changed, float)
    position = notifying("position", position_changed, float)
    position_samples = notifying("position_samples", position_changed, int)
    note = notifying("note", device_changed, str)
    detail = notifying("detail", device_changed, str)

    def sync(self, engine, note: str = "", detail: str = "") -> None:
        """Take ``engine``'s state (None: nothing to play) and the device's ``note`` and ``detail``."""
        if engine is None:
            state, samples, pos = (False, False, 0.0), 0, 0.0
        else:
            sr = engine.sample_rate
            state = (True, bool(engine.playing), engine.length / sr)
            samples = int(engine.position)
            pos = samples / sr
        changed = [state != (self._available, self._playing, self._length), samples != self._position_samples,
                   (note, detail) != (self._note, self._detail)]
        # every value in place before the first signal: a handler may read any of them
        self._available, self._playing, self._length = state
        self._position_samples, self._position = samples, pos
        self._note, self._detail = note, detail
        for signal, yes in zip((self.state_changed, self.position_changed, self.device_changed), changed):
            if yes:
                signal.emit()
