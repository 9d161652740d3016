"""Jobs hand typed results to the UI thread, and an unseparated recording plays (issue 25; issue 23 item 7)."""
import numpy as np
import pytest

pytest.importorskip("PyQt6")

from app.export import ExportResult  # noqa: E402
from ui.jobs import JobRunner, Prepared  # noqa: E402
from test_ui_main import _recording  # noqa: E402
from uikit import ini_settings, main_window, wait_idle  # noqa: E402


def test_every_job_returns_a_typed_result(qtbot, tmp_path, monkeypatch):
    seen = []
    finished = JobRunner._finished

    def record(self, result):
        seen.append((self.job.name, result))
        return finished(self, result)

    monkeypatch.setattr(JobRunner, "_finished", record)
    w = main_window(qtbot, ini_settings(tmp_path))
    w.open_path(_recording(tmp_path / "voices.wav"))
    wait_idle(qtbot, w)
    ctl = w.ctl
    ctl.new_rendition()
    wait_idle(qtbot, w)
    ctl.recall(0)
    wait_idle(qtbot, w)
    ctl.set_mono_compatible(True)
    wait_idle(qtbot, w)
    ctl.export(tmp_path / "out.wav", fmt="wav24", stems=False)
    wait_idle(qtbot, w)
    names = [n for n, _ in seen]
    assert names[:2] == ["Open voices.wav", "Separate"] and "New rendition" in names and "Export" in names
    for name, result in seen:
        assert not isinstance(result, dict), name
        assert isinstance(result, ExportResult if name == "Export" else Prepared), (name, type(result))
    assert ctl.session.current == 0 and ctl.session.mono_compatible
    w.close()


def test_an_unseparated_recording_plays(qtbot, tmp_path):
    """"Separate on open" unticked: the recording is heard as it is, on both channels."""
    w = main_window(qtbot, ini_settings(tmp_path))
    w.ctl.open_file(_recording(tmp_path / "voices.wav"), separate=False)
    wait_idle(qtbot, w)
    ctl = w.ctl
    assert not ctl.session.sources and ctl.engine is not None
    assert ctl.engine.length == len(ctl.session.mono)
    ctl.seek(1.0)
    block = np.zeros((512, 2), np.float32)
    ctl.engine.playing = True
    ctl.engine.callback(block, 512)
    start = 44100
    assert np.allclose(block[:, 0], ctl.session.mono[start:start + 512], atol=1e-6)
    assert np.array_equal(block[:, 0], block[:, 1])
    ctl.engine.playing = False
    w.close()


def test_the_output_panel_binds_to_its_view_model(qtbot, tmp_path):
    """The OUTPUT panel shows what its view model says, and the controller keeps the model true to
    the session: the measured gain, the mono-compatible switch and whether it can change now."""
    w = main_window(qtbot, ini_settings(tmp_path))
    vm = w.ctl.output_vm
    assert vm.gain_db is None and not vm.mode_enabled and not w.meters.mono_compat.isEnabled()
    w.open_path(_recording(tmp_path / "voices.wav"))
    wait_idle(qtbot, w)
    s = w.ctl.session
    qtbot.waitUntil(lambda: s.output_plan_current() and vm.gain_db is not None, timeout=60000)
    assert vm.gain_db == s.stage.plan.gain_db
    assert w.meters.gain_label.text() == f"out gain {s.stage.plan.gain_db:+.1f} dB"
    assert vm.mode_enabled and w.meters.mono_compat.isEnabled() and not w.meters.mono_compat.isChecked()
    with qtbot.waitSignal(vm.mode_changed, timeout=60000):
        w.ctl.set_mono_compatible(True)
    qtbot.waitUntil(lambda: not w.ctl.busy and vm.mono_compatible and vm.mode_enabled, timeout=60000)
    assert w.meters.mono_compat.isChecked() and s.mono_compatible
    w.close()
