"""One output gain stage for preview and export, the meters' peak readout and clip light, the
mono-compatible toggle and the DAWproject export, through the real widgets (pytest-qt, offscreen)."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")

from PyQt6.QtCore import Qt  # noqa: E402

from conftest import harmonic_note  # noqa: E402
from uikit import ini_settings, main_window, wait_idle  # noqa: E402

BLOCK = 512


def _loud_recording(path, seconds=3.0):
    """Three voices whose mix peaks well above full scale (the export must scale it down)."""
    n = int(seconds * 44100)
    x = np.zeros(n, np.float32)
    for f0, amp in ((110.0, 0.9), (440.0, 0.6), (660.0, 0.5)):
        x += np.resize(harmonic_note(f0, 1.0, amp=amp, decay=0.5), n)
    sf.write(str(path), x, 44100, subtype="FLOAT")
    return path


@pytest.fixture
def win(qtbot, tmp_path):
    w = main_window(qtbot, ini_settings(tmp_path))
    w.open_path(_loud_recording(tmp_path / "loud.wav"))
    wait_idle(qtbot, w)
    assert w.ctl.engine is not None, w.ctl.last_error
    _wait_gain(qtbot, w)
    yield w
    w.close()


def _wait_gain(qtbot, w):
    """Until the output gain of the session as it is now has been measured and reached the engine."""
    qtbot.waitUntil(lambda: w.ctl.session.output_plan_current() and not w.ctl.measuring, timeout=60000)


def _play_all(w) -> np.ndarray:
    """Play the whole recording through the engine block by block, feeding the meters' tap."""
    eng = w.ctl.engine
    eng.seek(0)
    eng.settle()
    eng.start()
    out = np.zeros((eng.length, 2), np.float32)
    block = np.zeros((BLOCK, 2), np.float32)
    pos = 0
    while eng.playing and pos < eng.length:
        eng.callback(block, BLOCK)
        k = min(BLOCK, eng.length - pos)
        out[pos:pos + k] = block[:k]
        w.ctl.tap.write(block)
        w.meters.refresh()
        pos += BLOCK
    eng.stop()
    return out


def _db(x) -> float:
    return float(20 * np.log10(np.max(np.abs(x))))


def test_preview_peak_equals_export_peak_and_meters_read_it(qtbot, win, tmp_path):
    ctl = win.ctl
    s = ctl.session
    raw = s.render()
    assert _db(raw) > 1.0                       # the mix needs scaling (it would clip by > 1 dB)
    plan = s.stage.plan
    assert plan.gain_db < -2.0 and plan.true_peak and plan.ceiling_db == -1.0
    # the engine plays the gain: coefficient rows are the session's times the output gain
    preview = _play_all(win)
    assert abs(_db(preview) - (_db(raw) + plan.gain_db)) < 0.1
    assert _db(preview) < 0.0
    # the meters' readout holds the highest peak; nothing clipped
    assert abs(win.meters.max_peak_db - _db(preview)) < 0.01
    assert not win.meters.clipped and f"{_db(preview):+.1f} dBFS" in win.meters.peak_button.text()
    assert f"{plan.gain_db:+.1f} dB" in win.meters.gain_label.text()
    # the export dialog says what gain it applies; the export applies it
    dlg = win.export_dialog()
    assert f"output gain {plan.gain_db:+.2f} dB".lower() in dlg.output_info.text().lower()
    assert "LUFS" in dlg.output_info.text() and "dBTP" in dlg.output_info.text()
    dlg.path.setText(str(tmp_path / "mix.wav"))
    dlg.depth.setCurrentText("32-bit float")
    dlg.ok.click()
    qtbot.waitUntil(lambda: not ctl.busy and ctl.last_export is not None, timeout=60000)
    y, _ = sf.read(str(tmp_path / "mix.wav"), dtype="float32")
    assert abs(_db(y) - _db(preview)) < 0.1
    assert ctl.last_export.gain_db == pytest.approx(plan.gain_db)
    assert f"{plan.gain_db:+.2f} dB" in win.statusBar().currentMessage()


def test_clip_light_and_reset(qtbot, win):
    m = win.meters
    win.ctl.tap.write(np.full((BLOCK, 2), 1.25, np.float32))      # a block over full scale
    m.refresh()
    assert m.clipped and m.max_peak_db == pytest.approx(20 * np.log10(1.25), abs=1e-4)
    assert "+1.9 dBFS" in m.peak_button.text()
    qtbot.mouseClick(m.clip_button, Qt.MouseButton.LeftButton)
    assert not m.clipped and m.max_peak_db == -np.inf and "−∞" in m.peak_button.text()
    win.ctl.tap.write(np.full((BLOCK, 2), 0.5, np.float32))
    m.refresh()
    assert not m.clipped and m.max_peak_db == pytest.approx(20 * np.log10(0.5), abs=1e-4)


def test_keep_loudness_in_the_dialog_changes_the_preview_gain(qtbot, win):
    ctl = win.ctl
    before = ctl.session.stage.plan.gain_db
    dlg = win.export_dialog()
    dlg.ceiling.setValue(-6.0)                   # a lower ceiling: more gain reduction, heard at once
    _wait_gain(qtbot, win)
    plan = ctl.session.stage.plan
    assert plan.ceiling_db == -6.0 and plan.gain_db == pytest.approx(before - 5.0, abs=0.01)
    assert ctl.engine.snapshot is not None and abs(_db(_play_all(win)) - plan.out_peak_db) < 0.3
    dlg.keep_loudness.setChecked(True)
    _wait_gain(qtbot, win)
    assert ctl.session.output.keep_loudness and "loudness" in dlg.output_info.text()
    dlg.reject()


def test_mono_compatible_toggle_and_dawproject_menu(qtbot, win, tmp_path):
    ctl = win.ctl
    s = ctl.session
    assert not win.meters.mono_compat.isChecked() and win.meters.mono_compat.isEnabled()
    win.meters.mono_compat.click()                 # the auto sources are rendered again in a job
    qtbot.waitUntil(lambda: not ctl.busy, timeout=60000)
    assert s.mono_compatible
    _wait_gain(qtbot, win)
    g = 10 ** (s.stage.plan.gain_db / 20)
    y = _play_all(win)
    assert np.max(np.abs((y[:, 0] + y[:, 1]) / 2 - g * s.mono)) < 1e-5
    ctl.undo()
    assert not s.mono_compatible and not win.meters.mono_compat.isChecked()
    ctl.redo()
    assert s.mono_compatible and win.meters.mono_compat.isChecked()
    out = tmp_path / "handoff.dawproject"
    dlg = win.export_dawproject_dialog()
    dlg.selectFile(str(out))
    dlg.accept()
    qtbot.waitUntil(lambda: not ctl.busy and out.exists(), timeout=60000)
    with zipfile.ZipFile(out) as z:
        assert "project.xml" in z.namelist() and len([n for n in z.namelist() if n.endswith(".wav")]) == len(s.sources) + 1
    assert "DAW project" in win.statusBar().currentMessage()


def test_an_older_projects_sample_peak_ceiling_is_kept_until_edited(qtbot, win):
    from app.output import OutputSettings
    ctl = win.ctl
    ctl.set_output(OutputSettings(-0.1, False, False))      # as a project from before the output stage
    _wait_gain(qtbot, win)
    dlg = win.export_dialog()
    assert "dBFS" in dlg.ceiling.suffix() and ctl.session.output == OutputSettings(-0.1, False, False)
    plan = ctl.session.stage.plan
    assert not plan.true_peak and plan.out_peak_db == pytest.approx(-0.1, abs=1e-6)
    dlg.ceiling.setValue(-2.0)
    assert "dBTP" in dlg.ceiling.suffix() and ctl.session.output == OutputSettings(-2.0, True, False)
    _wait_gain(qtbot, win)
    assert ctl.session.stage.plan.true_peak and "dBTP" in dlg.output_info.text()
    dlg.reject()
