"""The window at 1280 x 720 and at its minimum size, the pan canvas's drawing and where exports are
proposed (issue 23, items 5 and 9), through the real widgets offscreen."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")

from PyQt6.QtCore import QPoint, QRectF, QSize, Qt  # noqa: E402
from PyQt6.QtGui import QColor  # noqa: E402
from PyQt6.QtWidgets import QAbstractButton, QApplication  # noqa: E402

from test_ui_trust import _cut, _recording, _visible_texts  # noqa: E402
from uikit import ini_settings, main_window, wait_idle  # noqa: E402

PANELS = ("transport", "separation", "sources", "canvas", "renditions", "meters", "waveform", "spectrogram")


@pytest.fixture
def settings(tmp_path):
    return ini_settings(tmp_path)


def _six_sources(qtbot, w, tmp_path) -> None:
    w.separation.n_sources.setValue(6)
    w.open_path(_recording(tmp_path / "voices.wav"))
    wait_idle(qtbot, w)
    qtbot.waitUntil(lambda: len(w.sources.rows) == len(w.ctl.session.sources) >= 6)


def _settle() -> None:
    for _ in range(3):                      # layout requests are posted events
        QApplication.processEvents()


def _demucs_fails(qtbot, w, tmp_path) -> None:
    """Separate with Demucs and no model files: the banner shows; the sources found before stay."""
    w.settings.setValue("demucs/models_dir", str(tmp_path / "no-models-here"))
    panel = w.separation
    panel.backend.setCurrentIndex(panel.backend.findData("demucs"))
    qtbot.mouseClick(panel.run, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, w)
    qtbot.waitUntil(w.banner.isVisible)
    assert w.ctl.session.sources


def _rect_in(w, widget) -> QRectF:
    return QRectF(widget.rect().translated(widget.mapTo(w, QPoint(0, 0))))


def _panels_hold(w) -> None:
    """Every panel has at least its minimum size, and no two overlap."""
    rects = {}
    for name in PANELS:
        p = getattr(w, name)
        assert p.isVisible(), name
        hint = p.minimumSizeHint().expandedTo(p.minimumSize())
        assert p.width() >= hint.width() and p.height() >= hint.height(), f"{name} squeezed: {p.size()} < {hint}"
        rects[name] = _rect_in(w, p)
    names = list(rects)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not rects[a].intersects(rects[b]), (a, b, rects[a], rects[b])


def _shown_whole(x, w) -> bool:
    """Whether widget ``x`` is inside each of its ancestors up to ``w`` (no scroll area or window
    edge cuts it)."""
    a = x.parentWidget()
    while a is not None:
        if not QRectF(a.rect()).contains(QRectF(x.rect().translated(x.mapTo(a, QPoint(0, 0))))):
            return False
        if a is w:
            return True
        a = a.parentWidget()
    return False


def _fully_shown(w) -> None:
    """None of the panels is cut by the window or by a scroll area."""
    for name in PANELS:
        assert _shown_whole(getattr(w, name), w), f"{name} is not shown whole"


def _rows_shown(w) -> int:
    """How many source rows the Sources list shows whole (name to pin button)."""
    return sum(1 for r in w.sources.rows if _shown_whole(r.name, w) and _shown_whole(r.pin, w))


def _canvas_holds(c) -> None:
    """Nodes (with a solo ring) and labels inside the plot's frame; labels clear of one another
    and of the axis labels."""
    s = c.ctl.session
    frame = c.plot_rect()
    for i in range(len(s.sources)):
        ctr, rad = c.node_center(i), c.node_radius(i) + 4 + 1.1
        disc = QRectF(ctr.x() - rad, ctr.y() - rad, 2 * rad, 2 * rad)
        assert frame.contains(disc), (s.sources[i].name, s.placements[i].pan, s.placements[i].width, disc, frame)
    labels = c.label_rects()
    for k, r in enumerate(labels):
        assert frame.contains(r), (s.sources[k].name, r, frame)
        for ax in c.axis_label_rects():
            assert not r.intersects(ax), (s.sources[k].name, r, ax)
        for j in range(k):
            assert not r.intersects(labels[j]), (s.sources[k].name, s.sources[j].name)


# --- 5. usable at 1280 x 720, with and without the banner ---------------------------------------------

@pytest.mark.parametrize("banner", [False, True], ids=["no-banner", "demucs-banner"])
def test_1280x720_shows_five_sources_and_a_clean_canvas(qtbot, tmp_path, settings, banner):
    w = main_window(qtbot, settings, size=(1280, 720))
    _six_sources(qtbot, w, tmp_path)
    if banner:
        _demucs_fails(qtbot, w, tmp_path)
    _settle()
    assert w.size() == QSize(1280, 720)             # the banner does not make the window grow
    _panels_hold(w)
    _fully_shown(w)
    assert _rows_shown(w) >= 5
    cut = {f"{type(x).__name__} {getattr(x, 'text', lambda: '')()!r}": _cut(x) for x in _visible_texts(w)}
    assert {k: v for k, v in cut.items() if v} == {}
    if banner:
        # the Demucs settings are fields, not slivers; the banner's buttons show their text whole
        for f in (w.separation.demucs_model, w.separation.shifts):
            assert f.isVisible() and f.height() >= f.sizeHint().height() and f.width() >= f.minimumSizeHint().width()
        buttons = [b for b in w.banner.findChildren(QAbstractButton) if b.isVisible()]
        assert len(buttons) == 2
        for b in buttons:
            assert b.width() >= b.sizeHint().width() and b.height() >= b.sizeHint().height(), (b.text(), b.size())
    c = w.canvas
    _canvas_holds(c)
    # at the edges of the stage too: hard right and wide, hard left and narrow
    ctl, s = w.ctl, w.ctl.session
    ctl.set_placement(0, s.placements[0].moved(1.0, 1.0))
    ctl.set_placement(1, s.placements[1].moved(-1.0, 0.0))
    ctl.set_placement(2, s.placements[2].moved(1.0, 0.0))
    _canvas_holds(c)
    w.ctl.mark_saved()
    w.close()


def test_minimum_window_size_holds_the_layout_with_the_banner(qtbot, tmp_path, settings):
    w = main_window(qtbot, settings, size=(1280, 720))
    _six_sources(qtbot, w, tmp_path)
    least = w.minimumSize()
    assert 900 <= least.width() <= 1280 and 500 <= least.height() <= 720, least
    w.resize(800, 500)                               # smaller than it can be: the minimum
    qtbot.waitUntil(lambda: w.size() == least)
    _settle()
    _panels_hold(w)
    _fully_shown(w)
    # the banner needs height the minimum does not have: the panels keep their sizes (they scroll)
    # and the window keeps its own
    _demucs_fails(qtbot, w, tmp_path)
    _settle()
    assert w.size() == least
    _panels_hold(w)
    w.ctl.mark_saved()
    w.close()


# --- 9. glows stay inside the frame; exports are proposed in the user's folders ----------------------

def test_glows_and_nodes_are_drawn_inside_the_plot_frame(qtbot, tmp_path, settings):
    w = main_window(qtbot, settings, size=(1280, 720))
    w.open_path(_recording(tmp_path / "voices.wav"))
    wait_idle(qtbot, w)
    ctl, c = w.ctl, w.canvas
    n = len(ctl.session.sources)
    # the model takes every "auto" source to the stage's top-right corner (hard right, diffuse)
    ctl.views.traj_pan = np.ones((n, 400), np.float32)
    ctl.views.traj_width = np.ones((n, 400), np.float32)
    ctl.seek(1.0)
    assert any(not p.pinned for p in ctl.session.placements)
    img = c.grab().toImage()
    assert img.width() == c.width()                 # (device pixels = widget pixels here)
    frame = c.plot_rect()
    panel = QColor("#1e2128").rgb()
    top, right = int(frame.top()), int(frame.right())
    outside = [(x, y) for x in range(int(frame.left()), right) for y in range(top - 4, top - 1)]     # over the frame
    outside += [(x, y) for x in range(right + 2, c.width()) for y in range(top, int(frame.bottom()))]  # right of it
    stray = [(x, y) for x, y in outside if img.pixel(x, y) != panel]
    assert stray == [], f"{len(stray)} px drawn outside the frame, e.g. {stray[:5]}"
    w.ctl.mark_saved()
    w.close()


def test_export_proposes_the_recordings_or_last_folder_never_the_apps_own(qtbot, tmp_path, settings):
    from importlib.resources import files

    from resources import demo_recording
    app_own = Path(str(files("resources"))).resolve()
    w = main_window(qtbot, settings, size=(1280, 720))
    w.separation.n_sources.setValue(2)
    w.open_path(demo_recording())
    wait_idle(qtbot, w)
    assert w.ctl.session.recording == demo_recording() and w.ctl.session.renders
    dlg = w.export_dialog()
    first = Path(dlg.path.text())
    assert app_own not in first.parents and first.name == "feelings-mono-stereo.wav", first
    # the user exports to a folder of theirs: proposed from then on for the demo
    out = tmp_path / "mixes"
    out.mkdir()
    dlg.path.setText(str(out / "demo-stereo.wav"))
    dlg.ok.click()
    wait_idle(qtbot, w)
    assert (out / "demo-stereo.wav").exists()
    assert Path(w.export_dialog().path.text()).parent == out
    w._export_dialog.reject()
    assert Path(w.export_dawproject_dialog().selectedFiles()[0]).parent == out
    w._dawproject_dialog.reject()
    # a recording of the user's own: its folder
    rec = _recording(tmp_path / "take.wav")
    w.ctl.mark_saved()
    w.open_path(rec)
    wait_idle(qtbot, w)
    assert Path(w.export_dialog().path.text()) == tmp_path / "take-stereo.wav"
    w._export_dialog.reject()
    w.ctl.mark_saved()
    w.close()
