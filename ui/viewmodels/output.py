"""The OUTPUT panel's view model: the output stage as the meters and the export dialog show it."""
from __future__ import annotations

from typing import Optional

from PyQt6.QtCore import QObject, pyqtSignal

from app.output import OutputSettings

from .base import notifying

__all__ = ["OutputViewModel"]


class OutputViewModel(QObject):
    """What the OUTPUT panel shows of the output stage: the gain the preview plays and the export
    applies (None before one is measured, or with nothing to play) with its description and whether
    it was measured for the mix as it is now (``gain_current``; else a measurement follows), the
    mono-compatible switch (its state, and whether it can be changed now) and the stage's settings
    (ceiling, keep the original's loudness) that the export dialog edits."""
    gain_changed = pyqtSignal()
    mode_changed = pyqtSignal()
    settings_changed = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._gain_db: Optional[float] = None
        self._describe = ""
        self._gain_current = False
        self._mono_compatible = False
        self._mode_enabled = False
        self._settings = OutputSettings()
        self._has_renders = False

    gain_db = notifying("gain_db", gain_changed)
    gain_current = notifying("gain_current", gain_changed, bool)

    @property
    def gain_description(self) -> str:
        return self._describe

    def set_gain(self, gain_db: Optional[float], description: str = "", current: bool = False) -> None:
        if (gain_db, description, bool(current)) != (self._gain_db, self._describe, self._gain_current):
            self._gain_db, self._describe, self._gain_current = gain_db, description, bool(current)
            self.gain_changed.emit()

    mono_compatible = notifying("mono_compatible", mode_changed, bool)
    mode_enabled = notifying("mode_enabled", mode_changed, bool)

    def set_mode(self, mono_compatible: bool, enabled: bool) -> None:
        if (bool(mono_compatible), bool(enabled)) != (self._mono_compatible, self._mode_enabled):
            self._mono_compatible, self._mode_enabled = bool(mono_compatible), bool(enabled)
            self.mode_changed.emit()

    settings = notifying("settings", settings_changed)          # an app.output.OutputSettings
    has_renders = notifying("has_renders", settings_changed, bool)   # whether there is a mix to export

    def set_settings(self, settings: OutputSettings, has_renders: bool) -> None:
        if (settings, bool(has_renders)) != (self._settings, self._has_renders):
            self._settings, self._has_renders = settings, bool(has_renders)
            self.settings_changed.emit()
