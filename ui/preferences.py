"""The desktop app's preferences and recent files (QSettings holds only these and window geometry).

The user's settings are resolved by :meth:`core.settings.Settings.resolve`: the environment, then the
stored preferences read here, then the defaults.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from PyQt6.QtCore import QSettings

from core.settings import STORED, Settings

__all__ = ["Preferences"]

RECENT_MAX = 8


class Preferences:
    def __init__(self, qsettings: Optional[QSettings] = None):
        self.qsettings = qsettings or QSettings("Soundstage", "Soundstage")

    def resolve(self) -> Settings:
        """The user's settings (a stored cache size of 0 means the default)."""
        stored = {key: self.qsettings.value(key, "") for key in STORED.values()}
        if str(stored.get(STORED["cache_max_mb"])) in ("0", "0.0"):
            stored[STORED["cache_max_mb"]] = ""
        return Settings.resolve(stored=stored)

    def recent_files(self) -> list[str]:
        files = self.qsettings.value("recent/files", [], list) or []
        return [f for f in files if isinstance(f, str)]

    def add_recent(self, path) -> None:
        p = str(Path(path).resolve())
        files = [p] + [f for f in self.recent_files() if f != p]
        self.qsettings.setValue("recent/files", files[:RECENT_MAX])
