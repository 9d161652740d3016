"""Keyboard focus rules of the main window: Space belongs to the transport unless a text field is
really being edited."""
from __future__ import annotations

from typing import Optional

from PyQt6.QtCore import QEvent, QObject, Qt
from PyQt6.QtWidgets import QAbstractSpinBox, QApplication, QLineEdit, QWidget

__all__ = ["SpaceForTransport"]


class SpaceForTransport(QObject):
    """Space plays and pauses unless a text field of ``window`` is really being edited.

    A field counts as being edited once the user clicked into it or typed in it; a field that
    focus merely landed in (a button beside it was disabled, the panel was rebuilt, Tab) lets Space
    through to the transport, so Space never erases a source's name."""

    def __init__(self, window: QWidget):
        super().__init__(window)
        self.window = window
        self.editing: Optional[QWidget] = None
        QApplication.instance().focusChanged.connect(self._focus_changed)

    @staticmethod
    def _is_text(w) -> bool:
        return isinstance(w, (QLineEdit, QAbstractSpinBox))

    def _focus_changed(self, old, new) -> None:
        if new is not None and self._is_text(new) and new.window() is self.window:
            new.removeEventFilter(self)
            new.installEventFilter(self)
            clicked = QApplication.mouseButtons() != Qt.MouseButton.NoButton
            self.editing = new if clicked else None
        else:
            self.editing = None

    def eventFilter(self, obj, ev) -> bool:
        t = ev.type()
        if t == QEvent.Type.MouseButtonPress:
            self.editing = obj
        elif t == QEvent.Type.KeyPress and ev.key() != Qt.Key.Key_Space and ev.text():
            self.editing = obj
        elif (t == QEvent.Type.ShortcutOverride and ev.key() == Qt.Key.Key_Space
              and ev.modifiers() == Qt.KeyboardModifier.NoModifier and obj is not self.editing):
            return True       # not accepted by the field: the Space shortcut (play / pause) runs
        return False
