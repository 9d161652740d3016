"""The document's view model, bound by the main window (title, File and Edit actions): which
recording is open, whether there is a mix, and whether an edit can be undone or redone."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from PyQt6.QtCore import QObject, pyqtSignal

from .base import notifying

__all__ = ["DocumentViewModel"]


class DocumentViewModel(QObject):
    """``recording`` (its path; None before one is open), announced by ``recording_changed`` also
    when another session opens the same file; ``has_renders``, ``can_undo`` and ``can_redo``, announced
    by ``actions_changed``."""
    recording_changed = pyqtSignal()
    actions_changed = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._recording: Optional[Path] = None
        self._session = None
        self._has_renders = self._can_undo = self._can_redo = False

    recording = notifying("recording", recording_changed)
    has_renders = notifying("has_renders", actions_changed, bool)
    can_undo = notifying("can_undo", actions_changed, bool)
    can_redo = notifying("can_redo", actions_changed, bool)

    @property
    def recording_name(self) -> str:
        return self._recording.name if self._recording is not None else ""

    def sync(self, session) -> None:
        recording = session is not self._session or session.recording != self._recording
        acts = (bool(session.renders), bool(session.undo.can_undo), bool(session.undo.can_redo))
        changed = acts != (self._has_renders, self._can_undo, self._can_redo)
        self._session, self._recording = session, session.recording     # all in place, then the signals
        self._has_renders, self._can_undo, self._can_redo = acts
        if recording:
            self.recording_changed.emit()
        if changed:
            self.actions_changed.emit()
