"""View models: small QObjects whose properties carry notify signals (Friture's level view model is
the pattern). The controller owns them and sets them from the session; a widget binds to one and
never reads the session itself.
"""
from __future__ import annotations

from typing import Optional

from PyQt6.QtCore import QObject, pyqtProperty, pyqtSignal

__all__ = ["OutputViewModel"]


class OutputViewModel(QObject):
    """What the OUTPUT panel shows of the output stage: the gain the preview plays and the export
    applies (None before one is measured, or with nothing to play) with its description, and the
    mono-compatible switch (its state, and whether it can be changed now)."""
    gain_changed = pyqtSignal()
    mode_changed = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._gain_db: Optional[float] = None
        self._describe = ""
        self._mono_compatible = False
        self._mode_enabled = False

    def _get_gain(self):
        return self._gain_db

    gain_db = pyqtProperty(object, fget=_get_gain, notify=gain_changed)

    @property
    def gain_description(self) -> str:
        return self._describe

    def set_gain(self, gain_db: Optional[float], description: str = "") -> None:
        if (gain_db, description) != (self._gain_db, self._describe):
            self._gain_db, self._describe = gain_db, description
            self.gain_changed.emit()

    def _get_mono(self) -> bool:
        return self._mono_compatible

    def _get_enabled(self) -> bool:
        return self._mode_enabled

    mono_compatible = pyqtProperty(bool, fget=_get_mono, notify=mode_changed)
    mode_enabled = pyqtProperty(bool, fget=_get_enabled, notify=mode_changed)

    def set_mode(self, mono_compatible: bool, enabled: bool) -> None:
        if (bool(mono_compatible), bool(enabled)) != (self._mono_compatible, self._mode_enabled):
            self._mono_compatible, self._mode_enabled = bool(mono_compatible), bool(enabled)
            self.mode_changed.emit()
