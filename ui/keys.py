"""Keyboard rules of the main window's text fields.

* A field the user put focus in (a click, Tab from another control, typing in it) takes the keys
  it edits with: digits, Space, letters. Focus that merely landed in a field (the control that had
  it was disabled, hidden or rebuilt) lets Space through to the transport, and the window moves it
  off fields when a job starts or ends. Without a field in focus, Space plays and pauses and the
  digits switch renditions.
* Escape reverts the field to its last committed value and leaves it (focus goes to ``home``):
  nothing typed is applied.
* A window shortcut with a modifier (Ctrl+E, Ctrl+Shift+E, Ctrl+S, Ctrl+Space…) works from any
  field, although a line edit would take some of them as editing keys (Ctrl+E: end of line on X11).
  Only undo and redo stay with a field while it holds a typed, uncommitted edit.
"""
from __future__ import annotations

from typing import Optional

from PyQt6.QtCore import QEvent, QObject, Qt, pyqtSignal
from PyQt6.QtGui import QKeySequence
from PyQt6.QtWidgets import QAbstractSpinBox, QApplication, QLineEdit, QWidget

__all__ = ["FieldKeys", "is_text_field"]

_COMMITTED = "_soundstage_committed"       # a field's committed text (a dynamic property)
_MODIFIERS = (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
              | Qt.KeyboardModifier.MetaModifier)


def is_text_field(w) -> bool:
    return isinstance(w, (QLineEdit, QAbstractSpinBox))


def _shown(w) -> str:
    """What a field shows now (a spin box's value text without prefix and suffix)."""
    return w.cleanText() if isinstance(w, QAbstractSpinBox) else w.text()


def _committed(w) -> str:
    """What the field held when it was last committed: a spin box without keyboard tracking keeps
    its committed value as ``value()``; other fields remember their text on focus and on Enter."""
    if isinstance(w, QAbstractSpinBox) and not w.keyboardTracking() and hasattr(w, "value"):
        return w.textFromValue(w.value())
    v = w.property(_COMMITTED)
    return _shown(w) if v is None else str(v)


def _remember(w) -> None:
    w.setProperty(_COMMITTED, _shown(w))


def _revert(w) -> None:
    """Show the committed value again, without emitting anything."""
    w.blockSignals(True)
    try:
        if isinstance(w, QAbstractSpinBox) and hasattr(w, "setValue"):
            w.setValue(w.value() if not w.keyboardTracking() else w.valueFromText(_committed(w)))
        elif isinstance(w, QLineEdit):
            w.setText(_committed(w))
            w.setCursorPosition(0)
    finally:
        w.blockSignals(False)


class FieldKeys(QObject):
    """The rules above for the text fields of ``window``; ``home`` takes focus when Escape leaves a
    field. ``left`` is emitted with the field that Escape left, so its owner can show the session's
    value in it again."""

    left = pyqtSignal(QWidget)

    def __init__(self, window: QWidget, home: QWidget):
        super().__init__(window)
        self.window = window
        self.home = home
        self.editing: Optional[QWidget] = None
        QApplication.instance().focusChanged.connect(self._focus_changed)

    def dirty(self, w) -> bool:
        """Whether ``w`` holds typed text that was not committed."""
        return _shown(w) != _committed(w)

    def _focus_changed(self, old, new) -> None:
        if new is None or new.window() is not self.window:
            return                       # focus left the window (a dialog, another program): kept for its return
        if not is_text_field(new):
            self.editing = None
            return
        for w in (new, new.findChild(QLineEdit) if isinstance(new, QAbstractSpinBox) else None):
            if w is not None:            # (a click in a spin box lands on its line edit)
                w.removeEventFilter(self)
                w.installEventFilter(self)
        if new is self.editing and (old is None or old.window() is not self.window):
            return                       # back from a dialog or another window: still being edited
        _remember(new)
        clicked = QApplication.mouseButtons() != Qt.MouseButton.NoButton
        # Tab from a control that is still there is the user's choice; a control that was just
        # disabled, hidden or deleted hands focus on by itself
        tabbed = old is not None and old.window() is self.window and old.isEnabled() and old.isVisible()
        self.editing = new if (clicked or tabbed) else None

    def _window_shortcut(self, ev) -> bool:
        seq = QKeySequence(ev.keyCombination())
        return any(seq.matches(s) == QKeySequence.SequenceMatch.ExactMatch
                   for a in self.window.actions() for s in a.shortcuts())

    def leave(self, field: QWidget) -> None:
        """Revert ``field`` and give focus to ``home`` (Escape)."""
        _revert(field)
        field.blockSignals(True)         # leaving must not commit (editingFinished)
        try:
            self.home.setFocus(Qt.FocusReason.OtherFocusReason)
            if field.hasFocus():         # home cannot take focus now (hidden): nobody has it
                field.clearFocus()
        finally:
            field.blockSignals(False)
        self.editing = None
        self.left.emit(field)

    def eventFilter(self, obj, ev) -> bool:
        t = ev.type()
        if t == QEvent.Type.MouseButtonPress:
            parent = obj.parentWidget()
            self.editing = parent if isinstance(parent, QAbstractSpinBox) else obj
        elif t == QEvent.Type.KeyPress:
            key = ev.key()
            if key == Qt.Key.Key_Escape and ev.modifiers() == Qt.KeyboardModifier.NoModifier:
                self.leave(obj)
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                _remember(obj)           # Enter commits what the field shows
            elif key != Qt.Key.Key_Space and ev.text() and not ev.modifiers() & _MODIFIERS:
                self.editing = obj
        elif t == QEvent.Type.ShortcutOverride:
            mods = ev.modifiers()
            if ev.key() == Qt.Key.Key_Space and mods == Qt.KeyboardModifier.NoModifier and obj is not self.editing:
                return True              # not accepted by the field: the Space shortcut (play / pause) runs
            if mods & _MODIFIERS and self._window_shortcut(ev):
                if (ev.matches(QKeySequence.StandardKey.Undo) or ev.matches(QKeySequence.StandardKey.Redo)) \
                        and self.dirty(obj):
                    return False         # undo the typing in the field
                return True              # the window's shortcut runs
        return False
