"""The pan canvas stays readable whatever is proposed; pan / width / gain can be typed; the variety
control reaches new renditions. Real widgets, offscreen."""
from __future__ import annotations

from dataclasses import replace

import pytest

pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")

from PyQt6.QtCore import QPointF, Qt  # noqa: E402

from test_ui_main import _wait_idle, settings, win  # noqa: E402,F401


def _stack_all(win, pan=0.02, width=0.1):
    """Every source on (almost) one spot, as a collapsed proposal would put them (through the
    controller: the canvas draws its view model)."""
    ctl = win.ctl
    for i, p in enumerate(list(ctl.session.placements)):
        ctl.set_placement(i, replace(p, pan=min(1.0, pan + 0.001 * i), width=width), label="stack")


def test_labels_never_overprint(win, qtbot):
    assert len(win.ctl.session.sources) >= 3
    for pan, width in ((0.02, 0.1), (-1.0, 0.0), (0.995, 1.0)):    # middle, corners
        _stack_all(win, pan, width)
        rects = win.canvas.label_rects()
        assert len(rects) == len(win.ctl.session.sources)
        for i in range(len(rects)):
            for j in range(i):
                assert not rects[i].intersects(rects[j]), (pan, width, i, j)
            assert win.canvas.rect().toRectF().contains(rects[i])
        win.canvas.grab()                                              # paints without error


def test_click_takes_the_nearest_node(win, qtbot):
    s = win.ctl.session
    for i, p in enumerate(list(s.placements)):
        win.ctl.set_placement(i, replace(p, pan=0.0 + 0.04 * i, width=0.5, pinned=True), label="stack")
    c = win.canvas
    for i in range(len(s.placements)):
        centre = c.node_center(i)
        assert c.node_at(QPointF(centre.x() + 1, centre.y())) == i
    assert c.node_at(QPointF(2, 2)) is None


def test_typed_pan_width_gain(win, qtbot):
    row = win.sources.rows[0]
    s = win.ctl.session
    row.pan.setFocus()
    row.pan.lineEdit().selectAll()
    qtbot.keyClicks(row.pan.lineEdit(), "-0.4")
    qtbot.keyClick(row.pan.lineEdit(), Qt.Key.Key_Return)
    assert s.placements[0].pan == pytest.approx(-0.4) and s.placements[0].pinned
    row.width.lineEdit().selectAll()
    qtbot.keyClicks(row.width.lineEdit(), "0.75")
    qtbot.keyClick(row.width.lineEdit(), Qt.Key.Key_Return)
    assert s.placements[0].width == pytest.approx(0.75)
    row.gain_value.lineEdit().selectAll()
    qtbot.keyClicks(row.gain_value.lineEdit(), "-6")
    qtbot.keyClick(row.gain_value.lineEdit(), Qt.Key.Key_Return)
    assert s.placements[0].gain_db == pytest.approx(-6.0)
    qtbot.waitUntil(lambda: row.gain.value() == -12)              # the slider follows (0.5 dB steps)
    s.undo.undo()
    assert s.placements[0].gain_db == pytest.approx(0.0)


def test_variety_control_reaches_the_rendition(win, qtbot):
    win.renditions.variety.setValue(0.8)
    assert win.ctl.session.variety == pytest.approx(0.8)
    n = len(win.ctl.session.renditions)
    win.renditions.new.click()
    _wait_idle(qtbot, win)
    qtbot.waitUntil(lambda: len(win.ctl.session.renditions) == n + 1)
    r = win.ctl.session.renditions[-1]
    assert r.variety == pytest.approx(0.8)
    g = win.renditions.gallery
    qtbot.waitUntil(lambda: g.count() > n and "variety 0.8" in g.item(n).text())
