"""A desktop tool people can trust (issue 14), through the real widgets, offscreen (pytest-qt):
the layout at 1280 x 720, the loop region, Space after Separate / Cancel, the Demucs banner,
unsaved changes, and opening a recording without losing it to a failed separation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")

from PyQt6.QtCore import QEvent, QPoint, QPointF, Qt  # noqa: E402
from PyQt6.QtGui import QMouseEvent, QTextDocument  # noqa: E402
from PyQt6.QtWidgets import (QAbstractButton, QApplication, QComboBox, QFileDialog, QLabel,  # noqa: E402
                             QLineEdit, QMessageBox, QWidget)

from conftest import harmonic_note  # noqa: E402
from uikit import ini_settings, main_window, wait_idle  # noqa: E402

SR = 44100


def _recording(path: Path, seconds: float = 4.0) -> Path:
    """Two harmonic voices and a bass, one note a second (formation finds a few sources)."""
    n = int(seconds * SR)
    x = np.zeros(n, np.float32)
    for k in range(int(np.ceil(seconds))):
        for f0, amp in ((82.4, 0.3), (659.3 if k % 2 else 784.0, 0.2), (392.0, 0.15)):
            seg = harmonic_note(f0, 1.0, amp=amp, decay=1.5)
            a = k * SR
            x[a:a + len(seg)] += seg[: n - a]
    sf.write(str(path), x, SR, subtype="FLOAT")
    return path


@pytest.fixture
def settings(tmp_path):
    return ini_settings(tmp_path)


_idle = wait_idle


def _window(qtbot, settings, size=(1400, 880)):
    return main_window(qtbot, settings, size=size)


@pytest.fixture
def win(qtbot, tmp_path, settings):
    w = _window(qtbot, settings)
    w.open_path(_recording(tmp_path / "voices.wav"))
    _idle(qtbot, w)
    assert w.ctl.engine is not None, w.ctl.last_error
    yield w
    w.ctl.mark_saved()          # whatever the test left unsaved: close without asking
    w.close()


# --- 6. the layout at 1280 x 720 ------------------------------------------------------------------

def _cut(w: QWidget) -> str:
    """Why the text of ``w`` does not fit its widget ('' when it fits)."""
    fm = w.fontMetrics()
    r = w.contentsRect()
    if isinstance(w, QLabel):
        text = w.text()
        if not text or w.textFormat() == Qt.TextFormat.RichText or "<" in text:
            return ""
        if w.wordWrap():
            return f"needs {w.heightForWidth(r.width())} px of height, has {r.height()}" \
                if w.heightForWidth(r.width()) > r.height() else ""
        need = max(fm.horizontalAdvance(line) for line in text.split("\n"))
        return f"needs {need} px, has {r.width()}" if need > r.width() else ""
    if isinstance(w, QAbstractButton):
        need = fm.horizontalAdvance(w.text()) + (w.iconSize().width() if not w.icon().isNull() else 0)
        return f"needs {need} px, has {r.width()}" if need > r.width() else ""
    if isinstance(w, QLineEdit):
        need = fm.horizontalAdvance(w.text()) + 4           # QLineEdit's own horizontal margin
        return f"needs {need} px, has {r.width()}" if need > r.width() else ""
    if isinstance(w, QComboBox):
        need = fm.horizontalAdvance(w.currentText()) + 20   # the drop-down arrow
        return f"needs {need} px, has {r.width()}" if need > r.width() else ""
    return ""


def _visible_texts(w) -> list[QWidget]:
    return [c for c in w.findChildren(QWidget)
            if c.isVisibleTo(w) and isinstance(c, (QLabel, QAbstractButton, QLineEdit, QComboBox))]


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_window_at_laptop_and_desktop_sizes_shows_every_panel_uncut(qtbot, win, size):
    win.separation.n_sources.setValue(6)           # more rows than fit at 720: the list scrolls
    win.separation.run.click()
    _idle(qtbot, win)
    qtbot.waitUntil(lambda: len(win.sources.rows) == len(win.ctl.session.sources) >= 6)
    hint = win.minimumSize()
    assert hint.width() <= 1280 and hint.height() <= 720, hint
    win.resize(*size)
    qtbot.waitUntil(lambda: (win.width(), win.height()) == size)
    panels = {"transport": win.transport, "separation": win.separation, "sources": win.sources,
              "canvas": win.canvas, "renditions": win.renditions, "meters": win.meters,
              "overview": win.waveform, "spectrogram": win.spectrogram}
    frame = win.rect()
    for name, p in panels.items():
        assert p.isVisible(), name
        r = p.rect().translated(p.mapTo(win, QPoint(0, 0)))
        assert frame.contains(r), f"{name} {r} leaves the window {frame}"
        hint = p.minimumSizeHint().expandedTo(p.minimumSize())
        assert p.width() >= hint.width() and p.height() >= hint.height(), f"{name} squeezed: {p.size()} < {hint}"
    # the panels do not overlap one another
    rects = {n: p.rect().translated(p.mapTo(win, QPoint(0, 0))) for n, p in panels.items()}
    names = list(rects)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not rects[a].intersects(rects[b]), (a, b)
    cut = {f"{type(c).__name__} {getattr(c, 'text', lambda: '')()!r}": _cut(c) for c in _visible_texts(win)}
    assert {k: v for k, v in cut.items() if v} == {}
    # every source row shows its whole name, numbers and buttons
    assert win.sources.rows
    for row in win.sources.rows:
        for wdg in row.widgets():
            assert wdg.isVisible() and not _cut(wdg), (row.name.text(), _cut(wdg))


# --- 4. the loop region ---------------------------------------------------------------------------

def _send_mouse(widget, kind, pos: QPointF, button, buttons):
    ev = QMouseEvent(kind, pos, QPointF(widget.mapToGlobal(pos.toPoint())), button, buttons,
                     Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, ev)


def _drag_overview(view, t0: float, t1: float, steps: int = 8) -> None:
    """Press at ``t0`` seconds on the overview, move to ``t1`` and release (real mouse events)."""
    vb = view.getPlotItem().getViewBox()
    y = vb.viewRect().center().y()
    port = view.viewport()

    def at(t):
        return QPointF(view.mapFromScene(vb.mapViewToScene(QPointF(t, y))))
    left = Qt.MouseButton.LeftButton
    _send_mouse(port, QEvent.Type.MouseButtonPress, at(t0), left, left)
    for k in range(1, steps + 1):
        _send_mouse(port, QEvent.Type.MouseMove, at(t0 + (t1 - t0) * k / steps), Qt.MouseButton.NoButton, left)
    _send_mouse(port, QEvent.Type.MouseButtonRelease, at(t1), left, Qt.MouseButton.NoButton)


def test_loop_plays_the_dragged_region_or_the_whole_recording(qtbot, win):
    ctl, view = win.ctl, win.waveform
    n = len(ctl.session.mono)
    px = (view.getPlotItem().getViewBox().viewRange()[0][1]) / view.getPlotItem().getViewBox().width()  # s per px
    # L with no region loops the whole recording, wherever the playhead is
    ctl.seek(3.0)
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win)
    qtbot.keyClick(win, Qt.Key.Key_L)
    assert win.transport.loop.isChecked()
    assert ctl.engine.loop == (0, n)
    qtbot.keyClick(win, Qt.Key.Key_L)
    assert ctl.engine.loop is None
    # drag on the overview from 1.0 s to 2.5 s: that is the loop region
    _drag_overview(view, 1.0, 2.5)
    a, b = view.region()
    assert abs(a - 1.0) < 2 * px and abs(b - 2.5) < 2 * px
    qtbot.keyClick(win, Qt.Key.Key_L)
    assert ctl.engine.loop == (int(a * SR), int(b * SR))
    # play from inside the region: the playhead wraps back to its start and never passes its end
    ctl.seek(2.2)
    seen = []
    ctl.tick.connect(lambda: seen.append(ctl.engine.position))
    ctl.toggle_play()
    qtbot.waitUntil(lambda: any(p < int(2.2 * SR) for p in seen), timeout=20000)
    ctl.toggle_play()
    lo, hi = ctl.engine.loop
    assert all(lo <= p <= hi for p in seen), (lo, hi, min(seen), max(seen))
    # dragging the region again moves the loop at once, while it is on
    _drag_overview(view, 0.5, 1.5)
    a, b = view.region()
    assert ctl.engine.loop == (int(a * SR), int(b * SR)) and abs(a - 0.5) < 2 * px
    # a double-click clears the region (press, release, double-click, release: what Qt delivers):
    # the loop is the whole recording again
    vb = view.getPlotItem().getViewBox()
    pos = QPointF(view.mapFromScene(vb.mapViewToScene(QPointF(3.0, 0.0))))
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    for kind, buttons in ((QEvent.Type.MouseButtonPress, left), (QEvent.Type.MouseButtonRelease, none),
                          (QEvent.Type.MouseButtonDblClick, left), (QEvent.Type.MouseButtonRelease, none)):
        _send_mouse(view.viewport(), kind, pos, left, buttons)
    assert view.region() is None
    assert ctl.engine.loop == (0, n)


# --- 5. Space reaches the transport ---------------------------------------------------------------

def _key(qtbot, key, text_widget=None):
    target = text_widget or QApplication.focusWidget()
    assert target is not None
    qtbot.keyClick(target, key)


def test_space_after_separate_and_cancel_plays_and_keeps_names(qtbot, win):
    ctl = win.ctl
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win)
    names = [s.name for s in ctl.session.sources]
    # Separate, then Cancel at once: the job ends cancelled
    qtbot.mouseClick(win.separation.run, Qt.MouseButton.LeftButton)
    assert ctl.busy
    qtbot.mouseClick(win.cancel_button, Qt.MouseButton.LeftButton)
    _idle(qtbot, win)
    assert "cancelled" in win.statusBar().currentMessage()
    qtbot.waitUntil(lambda: len(win.sources.rows) == len(names))
    fw = QApplication.focusWidget()
    assert not isinstance(fw, QLineEdit), "focus landed in a text field"
    _key(qtbot, Qt.Key.Key_Space)
    assert ctl.playing
    _key(qtbot, Qt.Key.Key_Space)
    assert not ctl.playing
    assert [r.name.text() for r in win.sources.rows] == names
    # a field that focus merely landed in (what had it was deleted: nothing had focus) lets Space
    # through; one the user tabbed or clicked into takes it (issue 23: tests/ui/test_ui_keys.py)
    field = win.sources.rows[0].name
    win.canvas.setFocus(Qt.FocusReason.OtherFocusReason)
    win.canvas.clearFocus()
    field.setFocus(Qt.FocusReason.OtherFocusReason)
    qtbot.waitUntil(field.hasFocus)
    _key(qtbot, Qt.Key.Key_Space, field)
    assert ctl.playing and field.text() == names[0]
    _key(qtbot, Qt.Key.Key_Space, field)
    assert not ctl.playing
    # a field the user clicked into is really being edited: Space types a space
    qtbot.mouseClick(field, Qt.MouseButton.LeftButton)
    field.selectAll()
    qtbot.keyClicks(field, "lead voice")
    assert field.text() == "lead voice" and not ctl.playing
    qtbot.keyClick(field, Qt.Key.Key_Return)
    assert ctl.session.sources[0].name == "lead voice"


# --- 1. unsaved changes ---------------------------------------------------------------------------

def _drag_node(qtbot, canvas, i, pan, width, steps=6):
    start = canvas.node_center(i).toPoint()
    end = canvas.to_screen(pan, width).toPoint()
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=start)
    for k in range(1, steps + 1):
        p = start + (end - start) * (k / steps)
        qtbot.mouseMove(canvas, QPoint(int(p.x()), int(p.y())))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=end)


def _answer(qtbot, win, button):
    """Click ``button`` of the unsaved-changes box the window is showing."""
    qtbot.waitUntil(lambda: win.unsaved_prompt is not None and win.unsaved_prompt.isVisible())
    box = win.unsaved_prompt
    assert "Save the changes to" in box.text()
    box.button(button).click()
    qtbot.waitUntil(lambda: win.unsaved_prompt is None)


def _shown_title(win) -> str:
    return win.windowHandle().title()         # the title as the window system gets it ("[*]" resolved)


def test_edits_are_never_lost_without_asking(qtbot, win, tmp_path, monkeypatch):
    ctl, s = win.ctl, win.ctl.session
    no = QMessageBox.StandardButton
    assert not ctl.modified and _shown_title(win) == "voices.wav — Soundstage"
    _drag_node(qtbot, win.canvas, 0, -0.6, 0.4)
    assert abs(s.placements[0].pan + 0.6) < 0.02
    assert ctl.modified and win.isWindowModified() and _shown_title(win) == "voices.wav* — Soundstage"
    edited = s.placements[0]

    # the close button: asked; Cancel keeps the window and the session
    opened = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: opened.append(1) or ("", ""))
    assert not win.close()
    _answer(qtbot, win, no.Cancel)
    assert win.isVisible() and ctl.session is s and s.placements[0] == edited and ctl.modified
    # Ctrl+Q: the same
    win.activateWindow()
    qtbot.keyClick(win, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    _answer(qtbot, win, no.Cancel)
    assert win.isVisible() and ctl.session is s
    # File > Open: asked before the file dialog; Cancel: no dialog, nothing changes
    win.act_open.trigger()
    _answer(qtbot, win, no.Cancel)
    assert opened == [] and ctl.session is s and s.placements[0] == edited

    # undoing back to the opened state is not a change; redoing is
    win.act_undo.trigger()
    assert not ctl.modified and _shown_title(win) == "voices.wav — Soundstage"
    win.act_redo.trigger()
    assert ctl.modified and s.placements[0] == edited

    # Save the first time asks where (Save As); the title names the project from then on
    proj = tmp_path / "voices.soundstage.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(proj), ""))
    win.act_save.trigger()
    assert proj.exists() and not ctl.modified and ctl.project_path == proj
    assert _shown_title(win) == "voices.soundstage.json — Soundstage"
    win.recent_projects_menu.aboutToShow.emit()
    assert [a.text() for a in win.recent_projects_menu.actions()] == ["voices.soundstage.json"]
    assert "voices.wav" in [a.text() for a in win.recent_menu.actions()]

    # a rename is an edit too; closing then and answering Save writes the project file (no dialog
    # now) and closes the window
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: pytest.fail("Save asked again"))
    field = win.sources.rows[1].name
    qtbot.mouseClick(field, Qt.MouseButton.LeftButton)
    field.selectAll()
    qtbot.keyClicks(field, "bass line")
    qtbot.keyClick(field, Qt.Key.Key_Return)
    assert s.sources[1].name == "bass line" and ctl.modified
    assert not win.close()
    _answer(qtbot, win, no.Save)
    qtbot.waitUntil(lambda: not win.isVisible())
    import json
    saved = json.loads(proj.read_text())
    assert saved["sources"][1]["name"] == "bass line"
    assert saved["sources"][0]["placement"]["pan"] == pytest.approx(edited.pan)


def test_discard_goes_on_and_open_asks_before_the_file_dialog(qtbot, win, tmp_path, monkeypatch):
    ctl = win.ctl
    other = _recording(tmp_path / "other.wav", seconds=3.0)
    _drag_node(qtbot, win.canvas, 0, 0.5, 0.2)
    assert ctl.modified
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(other), ""))
    win.act_open.trigger()
    _answer(qtbot, win, QMessageBox.StandardButton.Discard)
    _idle(qtbot, win)
    assert ctl.session.recording == other and ctl.engine is not None and not ctl.modified
    assert _shown_title(win) == "other.wav — Soundstage"


# --- 3. opening always loads; a failed or cancelled separation keeps the recording ----------------

def test_failed_demucs_keeps_the_recording_and_points_to_preferences(qtbot, tmp_path, settings):
    settings.setValue("demucs/models_dir", str(tmp_path / "no-models-here"))
    w = _window(qtbot, settings)
    panel = w.separation
    panel.backend.setCurrentIndex(panel.backend.findData("demucs"))
    rec = _recording(tmp_path / "band.wav")
    w.open_path(rec)
    _idle(qtbot, w)
    s = w.ctl.session
    assert s.recording == rec and s.mono is not None and len(s.mono) == 4 * SR    # loaded all the same
    assert s.sources == [] and _plays_the_recording(w)
    assert w.waveform.hi.getData()[0] is not None and len(w.waveform.hi.getData()[0]) > 0
    assert "band.wav" in _shown_title(w)
    # 7. the banner speaks to someone in the app
    assert w.banner.isVisible()
    doc = QTextDocument()
    doc.setHtml(w.banner.text.text())
    text = doc.toPlainText()
    assert text.startswith("Separate failed\ndemucs model 'htdemucs' is not available")
    assert "Edit > Preferences > Demucs model folder" in text and "Sound source formation" in text
    assert "--demucs-models" not in text and "SOUNDSTAGE_DEMUCS_MODELS" not in text and "--separator" not in text
    assert w.banner.action.isVisible() and w.banner.action.text() == "Preferences…"
    w.banner.action.click()
    qtbot.waitUntil(lambda: w._prefs_dialog.isVisible())
    assert w._prefs_dialog.models_dir.text() == str(tmp_path / "no-models-here")
    w._prefs_dialog.reject()
    # the recording is still there to separate with another backend
    panel.backend.setCurrentIndex(panel.backend.findData("formation"))
    panel.n_sources.setValue(3)
    qtbot.mouseClick(panel.run, Qt.MouseButton.LeftButton)
    _idle(qtbot, w)
    assert w.ctl.session is s and w.ctl.engine is not None
    assert s.backend == "formation" and s.backend_settings["n_sources"] == 3
    assert len([src for src in s.sources if src.kind != "residual"]) == 3
    w.close()


def test_sources_chosen_before_the_first_separation_and_cancel_keeps_the_recording(qtbot, tmp_path, settings):
    w = _window(qtbot, settings)
    panel = w.separation
    panel.auto.setChecked(False)                 # open only loads
    assert settings.value("separation/auto", True, bool) is False
    rec = _recording(tmp_path / "take.wav")
    w.open_path(rec)
    _idle(qtbot, w)
    s = w.ctl.session
    assert s.recording == rec and s.sources == [] and _plays_the_recording(w) and not w.banner.isVisible()
    # Separate, then Cancel: the recording stays, nothing half-made
    panel.n_sources.setValue(2)
    qtbot.mouseClick(panel.run, Qt.MouseButton.LeftButton)
    assert w.ctl.busy
    qtbot.mouseClick(w.cancel_button, Qt.MouseButton.LeftButton)
    _idle(qtbot, w)
    assert "cancelled" in w.statusBar().currentMessage()
    assert w.ctl.session is s and s.recording == rec and s.sources == [] and _plays_the_recording(w)
    # the number of sources chosen before the first separation is the one used
    qtbot.mouseClick(panel.run, Qt.MouseButton.LeftButton)
    _idle(qtbot, w)
    assert w.ctl.engine is not None and s.backend_settings["n_sources"] == 2
    assert len([src for src in s.sources if src.kind != "residual"]) == 2
    assert not w.ctl.modified                    # the first separation of a recording is no edit
    # cancelling the separation of a newly opened file keeps the new file loaded
    panel.auto.setChecked(True)
    other = _recording(tmp_path / "next.wav", seconds=24.0)
    w.open_path(other)
    qtbot.waitUntil(lambda: w.progress.value() > 0, timeout=30000)
    w.cancel_button.click()
    _idle(qtbot, w)
    assert w.ctl.session.recording == other and w.ctl.session.mono is not None and _plays_the_recording(w)
    assert "next.wav" in _shown_title(w)
    w.close()


# --- 8. a word when the recording is converted ----------------------------------------------------

def test_a_converted_recording_is_said_so_and_opens(qtbot, tmp_path, settings):
    w = _window(qtbot, settings)
    w.separation.auto.setChecked(False)
    t = np.arange(3 * 8000) / 8000
    x = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    sf.write(tmp_path / "six.wav", np.stack([x * (k + 1) / 6 for k in range(6)], axis=1), 8000)
    w.open_path(tmp_path / "six.wav")
    _idle(qtbot, w)
    s = w.ctl.session
    assert s.recording == tmp_path / "six.wav" and len(s.mono) == 3 * SR     # resampled to 44.1 kHz
    doc = QTextDocument()
    doc.setHtml(w.banner.text.text())
    assert w.banner.isVisible() and doc.toPlainText() == (
        "The recording was converted\nsix.wav: 6 channels downmixed to mono, resampled from 8000 Hz to 44100 Hz")
    w.banner.hide()
    w.open_path(_recording(tmp_path / "plain.wav"))         # mono at 44.1 kHz: nothing to say
    _idle(qtbot, w)
    assert w.ctl.session.recording == tmp_path / "plain.wav" and not w.banner.isVisible()
    w.close()


def _plays_the_recording(w):
    """Before any separation the engine plays the recording itself (one row: the mono on both channels)."""
    e = w.ctl.engine
    return e is not None and e.rows == 1 and e.length == len(w.ctl.session.mono) and e.s[0] is w.ctl.session.mono
