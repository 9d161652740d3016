"""The desktop app through its real widgets, offscreen (pytest-qt).

Most tests use a 4-second generated recording (three harmonic voices); one opens the bundled demo
as `soundstage gui` does and measures how long the UI thread is ever blocked while it separates.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")

from PyQt6.QtCore import QPoint, Qt  # noqa: E402

from core.settings import has_display  # noqa: E402
from core.placement import Placement  # noqa: E402
from core.renderer import pinned_coefficients  # noqa: E402
from app.playback import snapshot_for  # noqa: E402
from conftest import harmonic_note  # noqa: E402
from uikit import ini_settings, main_window, wait_idle as _wait_idle  # noqa: E402
from app.memory import restore_needs_render

ROOT = Path(__file__).resolve().parents[2]


def _recording(path: Path, seconds: float = 4.0) -> Path:
    n = int(seconds * 44100)
    x = np.zeros(n, np.float32)
    bass = np.concatenate([harmonic_note(82.4, 1.0, decay=1.0) for _ in range(int(np.ceil(seconds)))])[:n]
    x += bass
    mel = [659.3, 784.0, 880.0, 987.8]
    for k in range(int(seconds * 2)):
        seg = harmonic_note(mel[k % 4], 0.5, n_harm=5, decay=2.0)
        a = k * 22050
        x[a:a + len(seg)] += seg[: n - a]
    for k in range(int(seconds)):
        seg = harmonic_note(261.6 * 1.5, 1.0, n_harm=6, amp=0.2, decay=0.5)
        a = k * 44100
        x[a:a + len(seg)] += seg[: n - a]
    sf.write(str(path), x, 44100, subtype="FLOAT")
    return path


@pytest.fixture
def settings(tmp_path):
    return ini_settings(tmp_path)


@pytest.fixture
def win(qtbot, tmp_path, settings):
    w = main_window(qtbot, settings)
    w.open_path(_recording(tmp_path / "voices.wav"))
    assert w.ctl.busy
    _wait_idle(qtbot, w)
    assert w.ctl.engine is not None, w.ctl.last_error
    yield w
    w.close()


def _wait_gallery(qtbot, win, current):
    """The gallery rebuilds once per batch of session events (deferred): wait for it to show ``current``."""
    g = win.renditions.gallery
    qtbot.waitUntil(lambda: g.count() > current and g.item(current).text().startswith("●")
                    and g.currentRow() == current, timeout=5000)


def _drag(qtbot, canvas, i, pan, width, steps=6):
    start = canvas.node_center(i).toPoint()
    end = canvas.to_screen(pan, width).toPoint()
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=start)
    for k in range(1, steps + 1):
        p = start + (end - start) * (k / steps)
        qtbot.mouseMove(canvas, QPoint(int(p.x()), int(p.y())))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=end)
    return end


def test_open_separates_and_places(win):
    s = win.ctl.session
    n = len(s.sources)
    assert 2 <= n <= 9 and len(s.placements) == n
    assert s.backend == "formation" and len(s.renditions) == 1 and s.current == 0
    assert win.ctl.engine.snapshot.coefs.shape[0] in (n, n + 1) and win.ctl.engine.length == len(s.mono)
    assert len(win.sources.rows) == n
    assert [r.name.text() for r in win.sources.rows] == [src.name for src in s.sources]
    assert win.spectrogram.rgb is not None and win.spectrogram.rgb.shape[:2] == s.renders[0].energy.shape
    assert win.renditions.gallery.count() == 1 and win.renditions.gallery.item(0).text().startswith("●")
    assert "voices.wav" in win.windowTitle()
    assert not win.progress.isVisible() and not win.cancel_button.isVisible()
    # the spectrogram's colours are the sources' colours
    from PyQt6.QtGui import QColor
    v = win.ctl.views
    k = int(np.argmax(v.level))                       # the loudest tile: exactly its source's colour
    want = QColor(s.sources[int(v.dominant.flat[k])].colour).getRgb()[:3]
    assert np.abs(win.spectrogram.rgb.reshape(-1, 3)[k].astype(int) - want).max() <= 1
    assert len({int(i) for i in np.unique(v.dominant[v.level > 0.3])}) >= 2   # several sources show


def test_drag_node_moves_placement_and_engine_gains(qtbot, win):
    ctl, canvas = win.ctl, win.canvas
    s = ctl.session
    before = s.placements[0]
    paints = canvas.paints
    end = _drag(qtbot, canvas, 0, 0.6, 0.4)
    pan, width = canvas.from_screen(end)
    p = s.placements[0]
    assert p.pinned and abs(p.pan - pan) < 1e-9 and abs(p.width - width) < 1e-9
    assert abs(p.pan - 0.6) < 0.02 and abs(p.width - 0.4) < 0.02
    # while dragging, the source plays on its own row with its new coefficients (a pinned source:
    # L = a s + b d, R = c s + d d) times the output gain; once the mix's gain is measured
    # (preview and export share it), the engine plays the state's whole mix that the measurement
    # made: the export's samples, times that gain
    qtbot.waitUntil(lambda: s.output_plan_current() and not ctl.measuring, timeout=20000)
    g = 10 ** (s.stage.gain_db / 20)
    rows = snapshot_for(s.placements, has_auto=[r.has_auto for r in s.renders], pairs=[r.auto for r in s.renders],
                        output_gain=g)
    assert np.allclose(rows.coefs[0], pinned_coefficients(p) * g, atol=1e-6) and rows.auto[0] == 0.0
    snap = ctl.engine.snapshot
    assert snap.bus is not None and snap.bus_gain == np.float32(g) and not snap.coefs.any()
    assert np.array_equal(snap.bus, s.render())
    qtbot.waitUntil(lambda: canvas.paints > paints, timeout=2000)
    # one drag = one undo step
    ctl.undo()
    assert s.placements[0] == before
    assert not np.allclose(ctl.engine.snapshot.coefs[0], pinned_coefficients(p) * g, atol=1e-4)
    ctl.redo()
    assert s.placements[0] == p


def test_undo_redo_keys(qtbot, win):
    s = win.ctl.session
    before = s.placements[1]
    _drag(qtbot, win.canvas, 1, -0.7, 0.8)
    moved = s.placements[1]
    assert moved != before and moved.pinned
    win.activateWindow()
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert s.placements[1] == before
    assert win.sources.rows[1].pin.isChecked() == before.pinned
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert s.placements[1] == moved
    assert win.sources.rows[1].pin.isChecked()


def test_context_menu_and_panel_mute_solo(qtbot, win):
    ctl, s = win.ctl, win.ctl.session
    menu = win.canvas.show_menu(0, None)
    acts = {a.text(): a for a in menu.actions()}
    acts["Mute"].trigger()
    assert s.placements[0].mute and win.sources.rows[0].mute.isChecked()
    assert np.all(ctl.engine.snapshot.coefs[0] == 0) and ctl.engine.snapshot.auto[0] == 0
    win.sources.rows[1].solo.click()
    assert s.placements[1].solo
    g = ctl.engine.snapshot
    others = [i for i in range(len(s.sources)) if i != 1]
    assert all(np.all(g.coefs[i] == 0) and g.auto[i] == 0 for i in others)
    assert g.auto[1] > 0 or np.any(g.coefs[1] != 0)
    # reset to the model's proposal: auto again, at the model's place
    _drag(qtbot, win.canvas, 2, 0.9, 0.9)
    menu = win.canvas.show_menu(2, None)
    {a.text(): a for a in menu.actions()}["Reset to the model's proposal"].trigger()
    qtbot.waitUntil(lambda: not ctl.busy, timeout=60000)      # its auto render is made in a job
    assert not s.placements[2].pinned and abs(s.placements[2].pan - 0.9) > 0.1
    ctl.rename(2, "Flute")
    assert s.sources[2].name == "Flute"
    qtbot.waitUntil(lambda: win.sources.rows[2].name.text() == "Flute", timeout=2000)


def test_new_rendition_and_switch(qtbot, win):
    ctl, s = win.ctl, win.ctl.session
    _drag(qtbot, win.canvas, 0, 0.5, 0.2)          # a pinned source keeps its place
    pinned = s.placements[0]
    win.renditions.seed.setValue(7)
    win.renditions.new.click()
    assert ctl.busy
    assert len(s.renditions) == 1 and s.current == 0       # the live session changes only when the job ends
    _wait_idle(qtbot, win)
    assert len(s.renditions) == 2 and s.current == 1 and s.renditions[1].seed == 7
    assert s.placements[0] == pinned
    _wait_gallery(qtbot, win, 1)
    items = [win.renditions.gallery.item(k).text() for k in range(2)]
    assert items[1].startswith("●") and not items[0].startswith("●")
    assert win.renditions.gallery.currentRow() == 1
    ctl.toggle_play()                                 # switch while playing (number keys)
    assert ctl.playing
    win.activateWindow()
    qtbot.keyClick(win, Qt.Key.Key_1)
    _wait_idle(qtbot, win)
    assert s.current == 0
    _wait_gallery(qtbot, win, 0)
    assert ctl.playing and ctl.engine.snapshot.coefs.shape[0] >= len(s.sources)
    qtbot.keyClick(win, Qt.Key.Key_2)
    _wait_idle(qtbot, win)
    assert s.current == 1
    ctl.undo()                                        # undo the switch: recorded tables, no job
    assert s.current == 0 and not ctl.busy
    _wait_gallery(qtbot, win, 0)
    ctl.redo()
    assert s.current == 1
    ctl.undo()
    ctl.toggle_play()
    assert not ctl.playing


def test_undo_to_released_renders_runs_a_job_and_plays_the_export(qtbot, win):
    ctl, s = win.ctl, win.ctl.session
    first = s.render()
    s.memory.keep_bytes = 0          # only the current state's renders kept (whether or not their pairs are filled yet)
    s.mixes.keep_bytes = 0                                          # and its mix
    ctl.new_rendition(5)
    _wait_idle(qtbot, win)
    assert s.current == 1 and restore_needs_render(s)
    ctl.undo()                                        # the first rendition's mix is made again, from the playhead
    assert ctl.busy
    _wait_idle(qtbot, win)
    assert s.current == 0 and np.array_equal(s.render(), first)
    s.wait_filled()
    qtbot.waitUntil(lambda: s.output_plan_current() and not ctl.measuring, timeout=20000)
    # the preview plays what export writes: the state's mix, made again, times the output gain
    eng = ctl.engine
    eng.seek(0)
    eng.settle()
    snap = eng.snapshot                   # no events are processed below: it stays the one played
    assert snap.bus is not None and np.array_equal(snap.bus, first) and not snap.coefs.any()
    g = np.float32(snap.bus_gain)
    eng.playing = True
    buf = np.zeros((512, 2), np.float32)
    played = []
    for _ in range(20):
        eng.callback(buf, 512)
        played.append(buf.copy())
    eng.playing = False
    assert np.array_equal(np.concatenate(played), g * first[:20 * 512])


def test_export_through_dialog(qtbot, win, tmp_path):
    dlg = win.export_dialog()
    out = tmp_path / "exports" / "mix.wav"
    dlg.path.setText(str(out))
    dlg.container.setCurrentText("WAV")
    dlg.depth.setCurrentText("24-bit PCM")
    dlg.stems.setChecked(True)
    dlg.ok.click()
    _wait_idle(qtbot, win)
    assert out.exists(), win.ctl.last_error
    info = sf.info(str(out))
    assert info.channels == 2 and info.subtype == "PCM_24" and info.samplerate == 44100
    y, _ = sf.read(str(out))
    assert len(y) == len(win.ctl.session.mono)
    assert np.max(np.abs(y)) <= 10 ** (-0.1 / 20) + 1e-4          # never clipped
    # stereo: the Decorr baseline widens the highs, so the channels differ by far more than rounding
    assert np.sqrt(np.mean((y[:, 0] - y[:, 1]) ** 2)) > 0.05 * np.sqrt(np.mean(y ** 2))
    stems = sorted((tmp_path / "exports" / "mix-stems").glob("*.wav"))
    assert len(stems) == len(win.ctl.session.sources)
    proj = json.loads((tmp_path / "exports" / "mix.soundstage.json").read_text())
    assert proj["format"] == "soundstage-project" and len(proj["sources"]) == len(stems)
    assert "Exported" in win.statusBar().currentMessage()


def test_corrupt_file_shows_message_and_keeps_session(qtbot, win, tmp_path):
    s = win.ctl.session
    n, rec = len(s.sources), s.recording
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4)
    win.open_path(bad)
    _wait_idle(qtbot, win)
    assert win.banner.isVisible()
    assert "broken.wav" in win.banner.text.text()
    assert win.ctl.session is s and s.recording == rec and len(s.sources) == n
    _drag(qtbot, win.canvas, 0, -0.3, 0.5)                  # still fully usable
    assert abs(s.placements[0].pan + 0.3) < 0.02


def test_cancel_separation_keeps_window_usable(qtbot, tmp_path, settings):
    from ui.main_window import MainWindow
    w = MainWindow(settings=settings)
    w.ctl.set_model("decorr")
    qtbot.addWidget(w)
    w.show()
    w.open_path(_recording(tmp_path / "long.wav", seconds=24.0))
    qtbot.waitUntil(lambda: w.progress.value() > 0, timeout=30000)
    assert w.cancel_button.isVisible()
    w.cancel_button.click()
    _wait_idle(qtbot, w, timeout=30000)
    assert "cancelled" in w.statusBar().currentMessage()
    s = w.ctl.session                                   # loaded, nothing half-made: the recording plays as it is
    assert s.recording == tmp_path / "long.wav" and not s.sources and w.ctl.engine.s[0] is s.mono
    assert not w.banner.isVisible() and not w.cancel_button.isVisible()
    # the window is usable: open a short file and drag a node
    w.open_path(_recording(tmp_path / "short.wav", seconds=3.0))
    _wait_idle(qtbot, w)
    assert w.ctl.engine is not None
    _drag(qtbot, w.canvas, 0, 0.25, 0.25)
    assert w.ctl.session.placements[0].pinned
    w.close()


def test_ab_meters_and_transport(qtbot, win):
    ctl = win.ctl
    n = len(ctl.session.sources)
    ctl.seek(1.0)
    ctl.toggle_play()
    qtbot.waitUntil(lambda: win.meters.last is not None and max(win.meters.last.peak_db) > -40, timeout=5000)
    v = win.meters.last
    assert -1.0 <= v.correlation <= 1.0 and len(v.side) == len(v.mid) > 0
    assert ctl.engine.position > 44100
    assert win.transport.play.text().startswith("❚❚")
    win.activateWindow()
    qtbot.keyClick(win, Qt.Key.Key_B)                   # A/B: the mono original
    assert ctl.session.ab_original and win.transport.ab.isChecked()
    snap = ctl.engine.snapshot                          # only mono signal paths: a = c, b = d = 0
    assert not snap.coefs[:, [1, 3]].any() and np.array_equal(snap.coefs[:, 0], snap.coefs[:, 2])
    assert not snap.auto[:n].any()
    written = ctl.tap.written
    qtbot.waitUntil(lambda: ctl.tap.written > written + 8192, timeout=5000)
    # the original is mono: L == R once the block that ramps from the stereo render has left the
    # last 2048 frames (a late tick can make that block up to 8192 frames long)
    qtbot.waitUntil(lambda: ctl.meters(2048).correlation > 0.999, timeout=5000)
    win.transport.ab.click()
    assert not ctl.session.ab_original
    win.transport.stop.click()
    assert not ctl.playing and ctl.engine.position == 0
    win.transport.loop.setChecked(True)
    assert ctl.engine.loop is not None and ctl.engine.loop[1] > ctl.engine.loop[0]
    win.transport.loop.setChecked(False)
    assert ctl.engine.loop is None


def test_project_save_and_open(qtbot, win, tmp_path):
    _drag(qtbot, win.canvas, 0, -0.5, 0.3)
    want = list(win.ctl.session.placements)
    path = win.ctl.save_project(tmp_path / "p.soundstage.json")
    win.ctl.session.set_placement(0, Placement())
    win.open_path(path)
    _wait_idle(qtbot, win)
    assert win.ctl.session.placements == want
    assert win.canvas.node_center(0) == win.canvas.to_screen(want[0].pan, want[0].width)
    assert str(path.resolve()) in win.ctl.recent_projects() and str(path.resolve()) not in win.ctl.recent_files()
    # a project saved under a name without ".json" (as `upmix --project mix.soundstage` writes it) opens as one
    other = tmp_path / "mix.soundstage"
    other.write_bytes(path.read_bytes())
    win.ctl.session.set_placement(0, Placement())
    win.open_path(other)
    _wait_idle(qtbot, win)
    assert win.ctl.session.placements == want and win.ctl.last_error in (None, "")
    # ... and is listed with the projects, not the recordings (newest first)
    win.recent_projects_menu.aboutToShow.emit()
    assert [a.text() for a in win.recent_projects_menu.actions()][:2] == ["mix.soundstage", "p.soundstage.json"]
    win.recent_menu.aboutToShow.emit()
    assert "mix.soundstage" not in [a.text() for a in win.recent_menu.actions()]


def test_demo_opens_ready_to_play(qtbot, settings):
    """As `soundstage gui`: the demo opens, is separated with formation and placed, ready to play.
    (How long the UI thread is ever blocked meanwhile is measured by bench/bench_ui.py.)"""
    from cli.commands.upmix import best_method
    from ui.app import DEMO
    from ui.main_window import MainWindow
    w = MainWindow(settings=settings)
    w.ctl.set_model(best_method())
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.open_path(DEMO)                 # what `soundstage gui` does with no file
    assert w.ctl.busy
    _wait_idle(qtbot, w, timeout=300000)
    assert w.ctl.engine is not None, w.ctl.last_error
    s = w.ctl.session
    assert s.recording == DEMO and s.backend == "formation" and len(s.sources) >= 2
    assert len(s.renditions) == 1 and w.transport.play.isEnabled()
    assert w.ctl.engine.length == len(s.mono) and w.ctl.engine.rows >= len(s.sources)
    qtbot.waitUntil(lambda: len(w.sources.rows) == len(s.sources), timeout=5000)
    w.close()


def test_no_display_prints_one_line(tmp_path):
    assert not has_display({})
    assert has_display({"QT_QPA_PLATFORM": "offscreen"}) and has_display({"DISPLAY": ":0"})
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "cli", "gui"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "soundstage upmix" in lines[0] and "Traceback" not in r.stderr
