"""The timeline's view model, bound by the overview (waveform) and the spectrogram: the recording
(its samples and length) and the loop region marked on it."""
from __future__ import annotations

from typing import Optional

from PyQt6.QtCore import QObject, pyqtSignal

from .base import notifying

__all__ = ["TimelineViewModel"]


class TimelineViewModel(QObject):
    """``mono`` (the recording's samples, read only; None before one is open) and ``seconds``,
    announced by ``recording_changed`` when another recording or session comes; ``loop_region``
    ((start, end) seconds or None, saved in the project), announced by ``region_changed``."""
    recording_changed = pyqtSignal()
    region_changed = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._mono = None
        self._seconds = 0.0
        self._loop_region: Optional[tuple[float, float]] = None
        self._session = None

    mono = notifying("mono", recording_changed)
    seconds = notifying("seconds", recording_changed, float)
    loop_region = notifying("loop_region", region_changed)

    @property
    def has_recording(self) -> bool:
        return self._mono is not None

    def clip(self, t: float) -> float:
        """``t`` seconds, within the recording."""
        return min(max(float(t), 0.0), self._seconds)

    def sync(self, session) -> None:
        """Take the session's recording and region; announce what changed (every value is in
        place before the first signal: a new recording's handler reads its region)."""
        recording = session is not self._session or session.mono is not self._mono
        region = session.loop_region != self._loop_region
        self._session, self._mono, self._seconds = session, session.mono, float(session.seconds)
        self._loop_region = session.loop_region
        if recording:
            self.recording_changed.emit()
        if region:
            self.region_changed.emit()
