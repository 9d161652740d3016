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

    def _stored(self, key: str) -> list[str]:
        files = self.qsettings.value(key, [], list) or []
        return [f for f in files if isinstance(f, str)]

    def recent_files(self) -> list[str]:
        """The recordings opened last, newest first."""
        return [f for f in self._stored("recent/files") if not f.endswith(".json")]

    def recent_projects(self) -> list[str]:
        """The projects opened or saved last, newest first: kept apart from the recordings, so that a project
        saved under any name (``upmix --project mix.soundstage``) is listed as one (older settings kept
        projects among the recordings, told by their ``.json`` name: those are read too)."""
        mine = self._stored("recent/projects")
        return (mine + [f for f in self._stored("recent/files") if f.endswith(".json") and f not in mine])[:RECENT_MAX]

    def add_recent(self, path, *, project: bool = False) -> None:
        """``path`` (a recording, or a project with ``project``) first in its recent list, and out of the other
        one (an older settings file listed a project saved under another name among the recordings)."""
        p = str(Path(path).resolve())
        lists = {"recent/projects": self.recent_projects(), "recent/files": self.recent_files()}
        mine, other = ("recent/projects", "recent/files") if project else ("recent/files", "recent/projects")
        self.qsettings.setValue(mine, ([p] + [f for f in lists[mine] if f != p])[:RECENT_MAX])
        self.qsettings.setValue(other, [f for f in lists[other] if f != p])
