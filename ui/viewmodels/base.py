"""What every view model shares: a property whose reads come from the model's own fields and
whose changes are announced by a notify signal (Friture's level view model is the pattern)."""
from __future__ import annotations

from PyQt6.QtCore import pyqtProperty

__all__ = ["notifying"]


def notifying(name: str, signal, type_=object):
    """A read-only Qt property ``name`` (stored in ``self._NAME``) announced by ``signal``."""
    return pyqtProperty(type_, fget=lambda self: getattr(self, "_" + name), notify=signal)
