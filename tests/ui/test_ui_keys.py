"""Keys in text fields (issue 23, items 3, 4 and 8), through the real widgets offscreen with real
key and mouse events: Escape reverts a typed value and leaves the field; digits and Space go to a
field that has focus and to renditions / the transport when none has; shortcuts with a modifier
work from every field."""
from __future__ import annotations

import json
import threading

import pytest

pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")

from PyQt6.QtCore import Qt  # noqa: E402
from PyQt6.QtWidgets import QApplication, QFileDialog  # noqa: E402

from test_ui_trust import _recording  # noqa: E402
from uikit import ini_settings, main_window, wait_idle  # noqa: E402

CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier


@pytest.fixture
def win(qtbot, tmp_path):
    w = main_window(qtbot, ini_settings(tmp_path))
    w.open_path(_recording(tmp_path / "voices.wav"))
    wait_idle(qtbot, w)
    assert w.ctl.engine is not None, w.ctl.last_error
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w)
    yield w
    w.ctl.mark_saved()
    w.close()


def _renditions(qtbot, w, n: int) -> None:
    """``n`` renditions in the gallery, the first one current."""
    while len(w.ctl.session.renditions) < n:
        w.ctl.new_rendition()
        wait_idle(qtbot, w)
    w.ctl.recall(0)
    wait_idle(qtbot, w)
    assert w.ctl.session.current == 0


def _type(qtbot, text: str = "", key=None, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """Keys as the keyboard sends them: to whatever has focus (the window when nothing has)."""
    target = QApplication.focusWidget() or QApplication.activeWindow()
    if key is not None:
        qtbot.keyClick(target, key, modifier)
    for ch in text:
        qtbot.keyClick(QApplication.focusWidget() or QApplication.activeWindow(), ch)


def _click_into(qtbot, field) -> None:
    inner = field.lineEdit() if hasattr(field, "lineEdit") else field
    qtbot.mouseClick(inner, Qt.MouseButton.LeftButton)


def _hold_a_job(w):
    """A job that runs until the returned event is set (as a long separation or render would)."""
    release = threading.Event()
    w.ctl.run_job("Hold", lambda progress, cancel: release.wait(30))
    assert w.ctl.busy
    return release


# --- 3. Escape reverts and leaves --------------------------------------------------------------------

def test_escape_reverts_a_typed_value_and_leaves_the_field(qtbot, win, tmp_path, monkeypatch):
    ctl, s = win.ctl, win.ctl.session
    row = win.sources.rows[0]
    before, name, variety = s.placements[0], s.sources[0].name, s.variety
    shown = row.pan.text()
    # a pan typed, then Escape: the field shows the source's pan again and focus has left it
    _click_into(qtbot, row.pan)
    assert row.pan.hasFocus()
    _type(qtbot, key=Qt.Key.Key_A, modifier=CTRL)
    _type(qtbot, "0.3")
    assert row.pan.text() == "0.3"
    _type(qtbot, key=Qt.Key.Key_Escape)
    assert row.pan.text() == shown and not row.pan.hasFocus()
    assert QApplication.focusWidget() is win.canvas
    # so Space now plays and pauses
    _type(qtbot, key=Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: ctl.playing)
    _type(qtbot, key=Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: not ctl.playing)
    # a name and the variety: the same
    _click_into(qtbot, row.name)
    row.name.selectAll()
    _type(qtbot, "kick")
    _type(qtbot, key=Qt.Key.Key_Escape)
    assert row.name.text() == name and not row.name.hasFocus()
    _click_into(qtbot, win.renditions.variety)
    _type(qtbot, key=Qt.Key.Key_A, modifier=CTRL)
    _type(qtbot, "0.9")
    _type(qtbot, key=Qt.Key.Key_Escape)
    assert not win.renditions.variety.hasFocus() and win.renditions.variety.value() == pytest.approx(variety)
    # nothing was applied, nothing is unsaved, and a save holds the source where it was
    qtbot.wait(50)
    assert s.placements[0] == before and s.sources[0].name == name and s.variety == variety
    assert not ctl.modified and not s.undo.can_undo
    proj = tmp_path / "voices.soundstage.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(proj), ""))
    _type(qtbot, key=Qt.Key.Key_S, modifier=CTRL)
    qtbot.waitUntil(proj.exists)
    saved = json.loads(proj.read_text())["sources"][0]
    assert saved["name"] == name and saved["placement"]["pan"] == pytest.approx(before.pan)
    assert saved["placement"]["pinned"] == before.pinned
    # Enter still applies a typed value (and Escape after it keeps what was applied)
    _click_into(qtbot, row.pan)
    _type(qtbot, key=Qt.Key.Key_A, modifier=CTRL)
    _type(qtbot, "-0.4")
    _type(qtbot, key=Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: s.placements[0].pan == pytest.approx(-0.4))
    _type(qtbot, key=Qt.Key.Key_Escape)
    assert s.placements[0].pan == pytest.approx(-0.4) and s.placements[0].pinned and row.pan.value() == -0.4


# --- 4. digits and Space go to the field that has focus ----------------------------------------------

def test_digits_and_space_go_to_a_field_with_focus_else_to_renditions_and_transport(qtbot, win):
    ctl, s = win.ctl, win.ctl.session
    _renditions(qtbot, win, 3)
    row = win.sources.rows[0]
    # a click on a field while a job runs puts focus there: the digits typed go into it, and the
    # value committed meanwhile is applied when the job ends
    release = _hold_a_job(win)
    _click_into(qtbot, row.pan)
    assert row.pan.hasFocus()
    _type(qtbot, key=Qt.Key.Key_A, modifier=CTRL)
    _type(qtbot, "0.3")
    assert row.pan.text() == "0.3"
    _type(qtbot, key=Qt.Key.Key_Return)
    release.set()
    wait_idle(qtbot, win)
    qtbot.waitUntil(lambda: s.placements[0].pan == pytest.approx(0.3))
    assert s.placements[0].pinned and s.current == 0
    # typed after the job too: still the field's
    assert row.pan.hasFocus()
    _type(qtbot, key=Qt.Key.Key_A, modifier=CTRL)
    _type(qtbot, "0.2")
    assert row.pan.text() == "0.2" and s.current == 0 and not ctl.busy
    # a field the user tabbed into takes Space (a name gets a space, the transport stays)
    row.name.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(row.name.hasFocus)
    row.name.end(False)
    _type(qtbot, " 2")
    assert row.name.text().endswith(" 2") and not ctl.playing and s.current == 0
    # no text field in focus: the digits switch renditions and Space plays
    _type(qtbot, key=Qt.Key.Key_Escape)
    assert QApplication.focusWidget() is win.canvas
    _type(qtbot, "2")
    wait_idle(qtbot, win)
    assert s.current == 1
    _type(qtbot, key=Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: ctl.playing)
    _type(qtbot, key=Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: not ctl.playing)


# --- 8. shortcuts with a modifier work from every field ----------------------------------------------

def test_shortcuts_with_a_modifier_work_from_every_field(qtbot, win):
    ctl = win.ctl
    row = win.sources.rows[0]
    fields = {"variety": win.renditions.variety, "seed": win.renditions.seed, "pan": row.pan,
              "name": row.name}
    for what, field in fields.items():
        _click_into(qtbot, field)
        assert field.hasFocus(), what
        _type(qtbot, key=Qt.Key.Key_E, modifier=CTRL)
        qtbot.waitUntil(lambda: getattr(win, "_export_dialog", None) is not None and win._export_dialog.isVisible())
        win._export_dialog.reject()
        qtbot.waitUntil(lambda: not win._export_dialog.isVisible())
        win._export_dialog = None
        win.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is win)
        _click_into(qtbot, field)
        _type(qtbot, key=Qt.Key.Key_E, modifier=CTRL | SHIFT)
        qtbot.waitUntil(lambda: getattr(win, "_dawproject_dialog", None) is not None
                        and win._dawproject_dialog.isVisible())
        win._dawproject_dialog.reject()
        qtbot.waitUntil(lambda: not win._dawproject_dialog.isVisible())
        win._dawproject_dialog = None
        win.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is win)
    # Ctrl+Z from a field undoes the last edit of the session; while the field holds typed text,
    # it undoes the typing instead
    s = ctl.session
    before = s.placements[1]
    ctl.set_placement(1, before.moved(0.7, 0.5), label="move")
    _click_into(qtbot, row.pan)
    _type(qtbot, key=Qt.Key.Key_Z, modifier=CTRL)
    qtbot.waitUntil(lambda: s.placements[1] == before)
    shown = row.pan.text()
    _type(qtbot, key=Qt.Key.Key_A, modifier=CTRL)
    _type(qtbot, "0.5")
    _type(qtbot, key=Qt.Key.Key_Z, modifier=CTRL)
    assert row.pan.text() == shown and s.placements[1] == before and s.undo.can_redo
