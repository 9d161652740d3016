"""Shaping the sources through the real widgets (issue 26): check two sources and merge them, split
one from the canvas menu, draw a rectangle on the spectrogram and move it to a new source; undo each;
save, reopen and export bit-identically; suggested merges and the A/B of two sources."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")

from PyQt6.QtCore import QPointF, Qt  # noqa: E402
from PyQt6.QtTest import QTest  # noqa: E402

from test_ui_main import _recording, _wait_idle  # noqa: E402
from uikit import ini_settings, main_window  # noqa: E402


@pytest.fixture
def win(qtbot, tmp_path):
    """The window on a 4-s bass, lead and chords, separated in 6 sources (more, smaller ones)."""
    w = main_window(qtbot, ini_settings(tmp_path))
    w.open_path(_recording(tmp_path / "voices.wav"))
    _wait_idle(qtbot, w)
    w.ctl.separate("formation", {"n_sources": 6})
    _wait_idle(qtbot, w)
    assert len(w.ctl.session.sources) == 7, w.ctl.last_error     # 6 and the residual
    yield w
    w.close()


def _sum(s) -> np.ndarray:
    return np.sum([x.audio.astype(np.float64) for x in s.sources], axis=0)


def _menu_action(menu, *path):
    """The action reached by the menu texts ``path`` (each a prefix)."""
    for k, text in enumerate(path):
        act = next(a for a in menu.actions() if a.text().startswith(text))
        if k == len(path) - 1:
            return act
        menu = act.menu()


def _drag_rect(qtbot, view, t0, b0, t1, b1):
    """Shift + drag on the spectrogram from (t0 s, band b0) to (t1 s, band b1)."""
    vb = view.getPlotItem().vb

    def at(t, b):
        return view.mapFromScene(vb.mapViewToScene(QPointF(t, b)))
    vp = view.viewport()
    shift = Qt.KeyboardModifier.ShiftModifier
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, shift, at(t0, b0))
    QTest.mouseMove(vp, at(0.5 * (t0 + t1), 0.5 * (b0 + b1)))
    QTest.mouseMove(vp, at(t1, b1))
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, shift, at(t1, b1))


def test_merge_split_move_undo_save_reopen(win, qtbot, tmp_path, monkeypatch):
    ctl, s = win.ctl, win.ctl.session
    rec = s.mono.astype(np.float64)
    base = _sum(s)
    assert np.abs(base - rec).max() < 1e-5
    first = list(s.sources)
    # 1. merge: check two sources in the list, press Merge
    bar = win.sources.edit_bar
    assert not bar.merge.isEnabled()
    qtbot.mouseClick(win.sources.rows[2].select, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(win.sources.rows[3].select, Qt.MouseButton.LeftButton)
    assert ctl.editing.selected == {2, 3} and bar.merge.isEnabled() and bar.merge.text() == "Merge 2"
    qtbot.mouseClick(bar.merge, Qt.MouseButton.LeftButton)
    _wait_idle(qtbot, win)
    assert len(s.sources) == 6 and s.sources[2].name == f"{first[2].name} + {first[3].name}"
    assert np.abs(_sum(s) - base).max() < 2e-7
    assert ctl.engine.snapshot.coefs.shape[0] == 6                   # the engine plays the new sources
    qtbot.waitUntil(lambda: len(win.sources.rows) == 6, timeout=5000)
    assert ctl.editing.selected == set()
    # 2. split the merged source at 300 Hz from the canvas menu
    monkeypatch.setattr("ui.edit_widgets.QInputDialog.getDouble", lambda *a, **k: (300.0, True))
    _menu_action(win.canvas.show_menu(2, None), "Split", "At a frequency").trigger()
    _wait_idle(qtbot, win)
    assert len(s.sources) == 7 and s.sources[2].name.endswith("below 300 Hz")
    assert np.abs(_sum(s) - base).max() < 2e-7
    # 3. a rectangle on the spectrogram: its share of the loudest source there goes to a new source
    win.spectrogram.reload()
    _drag_rect(qtbot, win.spectrogram, 0.5, 8.0, 2.5, 24.0)
    tool = win.spectrogram.region_tool
    t0, t1, f0, f1 = tool.region()
    assert (t0, t1) == pytest.approx((0.5, 2.5), abs=0.02) and 300 < f0 < f1 < 20000
    loudest = tool.shares()[0][0]
    _menu_action(tool.menu, f"Move {s.sources[loudest].name}'s share", "A new source").trigger()
    _wait_idle(qtbot, win)
    assert len(s.sources) == 8 and s.sources[-1].name.startswith(f"{s.sources[loudest].name} (0.5-2.5 s")
    assert np.abs(_sum(s) - base).max() < 2e-7
    assert len(s.edits) == 3 and s.undo.depth >= 3
    edited = list(s.sources)
    # undo each: the sources come back, the very same ones, and the engine follows
    for n in (7, 6, 7):
        ctl.undo()
        _wait_idle(qtbot, win)
        assert len(s.sources) == n and ctl.engine.snapshot.coefs.shape[0] == n
        assert np.abs(_sum(s) - base).max() < 2e-7
    assert all(a is b for a, b in zip(s.sources, first)) and s.edits == []
    for _ in range(3):
        ctl.redo()
        _wait_idle(qtbot, win)
    assert all(a is b for a, b in zip(s.sources, edited))
    # save, export, reopen, export again: the same bytes
    proj = ctl.save_project(tmp_path / "edited.soundstage.json")
    ctl.export(tmp_path / "app.wav", fmt="wav24", stems=False)
    _wait_idle(qtbot, win)
    ctl.load_project(proj)
    _wait_idle(qtbot, win)
    again = ctl.session
    assert again is not s and [x.name for x in again.sources] == [x.name for x in edited]
    assert len(again.edits) == 3 and np.abs(_sum(again) - base).max() < 2e-7
    ctl.export(tmp_path / "again.wav", fmt="wav24", stems=False)
    _wait_idle(qtbot, win)
    assert (tmp_path / "app.wav").read_bytes() == (tmp_path / "again.wav").read_bytes()


def test_a_bad_edit_says_why_and_changes_nothing(win, qtbot):
    ctl, s = win.ctl, win.ctl.session
    sources = list(s.sources)
    residual = len(s.sources) - 1
    _menu_action(win.canvas.show_menu(residual, None), "Split", "Into 4 parts").trigger()
    _wait_idle(qtbot, win)
    assert "'Residual' has" in ctl.last_error and "split it" in ctl.last_error
    assert all(a is b for a, b in zip(s.sources, sources)) and s.edits == []
    ctl.editing.merge((1,))                                          # one source: refused in the job
    _wait_idle(qtbot, win)
    assert "two or more different sources" in ctl.last_error and len(s.sources) == len(sources)


def test_suggested_merge_in_one_click_and_ab_of_two_sources(win, qtbot):
    ctl, s = win.ctl, win.ctl.session
    bar = win.sources.edit_bar
    bar.fill_suggestions()
    acts = [a for a in bar.suggest_menu.actions() if a.isEnabled()]
    pairs = ctl.editing.suggestions()
    assert pairs and len(acts) == len(pairs)
    i, j, p = pairs[0]
    assert acts[0].text() == f"{s.sources[i].name} + {s.sources[j].name}: {p:.2f}" and 0.3 <= p <= 1
    assert all(a[2] >= b[2] for a, b in zip(pairs, pairs[1:]))
    names = (s.sources[i].name, s.sources[j].name)
    n = len(s.sources)
    acts[0].trigger()
    _wait_idle(qtbot, win)
    places_before = list(s.placements)
    assert len(s.sources) == n - 1 and s.sources[i].name == " + ".join(names)
    # A/B: tick two sources (Ctrl+click on the canvas, a box in the list), press A/B: the first plays
    # alone, then the second
    qtbot.waitUntil(lambda: len(win.sources.rows) == n - 1, timeout=5000)
    qtbot.mouseClick(win.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                     win.canvas.node_center(0).toPoint())
    assert ctl.editing.selected == {0} and win.sources.rows[0].select.isChecked()
    assert s.placements[0] == places_before[0]                        # a tick, not a drag
    qtbot.mouseClick(win.sources.rows[1].select, Qt.MouseButton.LeftButton)
    assert bar.ab.isEnabled()
    for playing in (0, 1, 0):
        qtbot.mouseClick(bar.ab, Qt.MouseButton.LeftButton)
        snap = ctl.engine.snapshot
        heard = [k for k in range(len(s.sources)) if np.any(snap.coefs[k] != 0) or snap.auto[k] != 0]
        assert heard == [playing]
    assert not any(p.solo for p in s.placements)                      # the session was not changed
    ctl.editing.stop_compare()
    snap = ctl.engine.snapshot
    if snap.bus is not None:                # the whole mix again: the state's kept mix (the export's samples)
        assert np.array_equal(snap.bus, s.render()) and not snap.coefs.any() and not snap.auto.any()
    else:                                   # or every source on its own row
        assert sum(bool(np.any(snap.coefs[k] != 0) or snap.auto[k] != 0) for k in range(len(s.sources))) == len(s.sources)
