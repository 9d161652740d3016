"""The loop region: Play starts in it, and a project keeps it (issue 23, item 9)."""
import pytest

pytest.importorskip("PyQt6")

from test_ui_main import _recording  # noqa: E402
from uikit import ini_settings, main_window, wait_idle  # noqa: E402


def test_play_starts_in_the_loop_region_and_the_project_keeps_it(qtbot, tmp_path):
    w = main_window(qtbot, ini_settings(tmp_path))
    w.open_path(_recording(tmp_path / "voices.wav"))
    wait_idle(qtbot, w)
    ctl, wave = w.ctl, w.waveform
    wave.set_region(1.0, 2.0)
    wave.set_loop_enabled(True)
    assert ctl.engine.loop == (44100, 88200) and ctl.session.loop_region == (1.0, 2.0) and ctl.modified
    ctl.seek(0.25)                                   # the playhead before the region
    ctl.toggle_play()
    assert ctl.playing and 44100 <= ctl.engine.position < 88200
    ctl.toggle_play()
    path = ctl.save_project(tmp_path / "loop.soundstage.json")
    assert not ctl.modified
    wave.clear_region()
    assert ctl.session.loop_region is None and ctl.modified
    ctl.load_project(path)
    wait_idle(qtbot, w)
    qtbot.waitUntil(lambda: wave.region() is not None, timeout=10000)
    assert wave.region() == pytest.approx((1.0, 2.0), abs=1e-3) and ctl.session.loop_region == (1.0, 2.0)
    assert not ctl.modified
    w.close()
