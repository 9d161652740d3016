"""Preferences, About, drag and drop, and the progress adapter (offscreen, no separation)."""
from __future__ import annotations


from pathlib import Path

import pytest

pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")

from PyQt6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl  # noqa: E402
from PyQt6.QtGui import QDropEvent  # noqa: E402

from core.errors import Cancelled  # noqa: E402
from core.progress import Progress  # noqa: E402


@pytest.fixture
def win(qtbot, tmp_path):
    from ui.main_window import MainWindow
    w = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    w.show()
    return w


def test_preferences_are_kept_in_qsettings(win, monkeypatch):
    dlg = win.preferences_dialog()
    assert dlg.device.itemText(0) == "System default"
    dlg.models_dir.setText("/models/demucs")
    dlg.cache.setValue(2048)
    monkeypatch.delenv("SOUNDSTAGE_CACHE_MAX_MB", raising=False)
    monkeypatch.delenv("SOUNDSTAGE_DEMUCS_MODELS", raising=False)
    dlg.accept()
    assert win.settings.value("demucs/models_dir") == "/models/demucs"
    assert int(win.settings.value("cache/size_mb")) == 2048
    import os
    assert "SOUNDSTAGE_CACHE_MAX_MB" not in os.environ          # settings are passed, not put in the environment
    user = win.ctl.user                                          # the user's settings, resolved again
    assert user.demucs_models == Path("/models/demucs") and user.cache_max_mb == 2048
    assert win.ctl.session.settings is user
    assert user.backend_options("demucs")["models_dir"] == Path("/models/demucs")
    assert user.backend_options("demucs")["cache_max_bytes"] == 2048 * 2 ** 20
    win.separation.backend.setCurrentIndex(win.separation.backend.findData("demucs"))
    name, st = win.separation.settings()
    assert name == "demucs" and st["model"] == "htdemucs" and "models_dir" not in st   # a project never holds folders


def test_about_names_licences_and_credits(win):
    from ui.dialogs import about_text, show_about
    box = show_about(win)
    text = about_text()
    for word in ("MIT", "GPL", "Sectoid", "Breebaart", "Serrà", "Lagrange", "Demucs"):
        assert word in text
    assert box.isVisible()
    box.close()


def test_drop_a_file_opens_it(qtbot, win, tmp_path):
    bad = tmp_path / "dropped.wav"
    bad.write_bytes(b"not audio at all")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(bad))])
    ev = QDropEvent(QPointF(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                    Qt.KeyboardModifier.NoModifier)
    win.dropEvent(ev)
    assert win.ctl.busy or win.banner.isVisible()
    qtbot.waitUntil(lambda: not win.ctl.busy, timeout=10000)
    assert win.banner.isVisible() and "dropped.wav" in win.banner.text.text()


def test_job_adapter_turns_progress_and_cancel_into_signals(qtbot):
    from ui.workers import Job, TimeLeft, start_job
    seen = []

    def fn(progress, cancel):
        for k in range(5):
            progress(Progress("step", k + 1, 5))
        cancel.wait(5)
        if cancel.is_set():
            raise Cancelled("cancelled")
        return 42

    job = Job("test", fn, min_interval=0.0)
    job.signals.progress.connect(lambda p: seen.append(p.fraction))
    with qtbot.waitSignal(job.signals.cancelled, timeout=5000):
        start_job(job)
        qtbot.waitUntil(lambda: len(seen) == 5, timeout=5000)
        job.cancel.set()
    assert seen == [0.2, 0.4, 0.6, 0.8, 1.0]
    done = Job("ok", lambda progress, cancel: 7)
    with qtbot.waitSignal(done.signals.finished, timeout=5000) as blocker:
        start_job(done)
    assert blocker.args == [7]
    failing = Job("bad", lambda progress, cancel: 1 / 0)
    with qtbot.waitSignal(failing.signals.failed, timeout=5000) as blocker:
        start_job(failing)
    assert "division" in blocker.args[0]
    assert TimeLeft.text(None) == "estimating…" and TimeLeft.text(75) == "1:15 left" and TimeLeft.text(9) == "9 s left"


def test_recent_projects_apart_from_recordings(tmp_path):
    """Projects and recordings have their own recent lists, newest first and at most RECENT_MAX each; an older
    settings file that kept projects among the recordings (told by ".json") still lists them as projects."""
    from ui.preferences import RECENT_MAX, Preferences
    qs = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    old = [str(tmp_path / n) for n in ("a.wav", "old.soundstage.json", "b.flac")]
    qs.setValue("recent/files", old)
    prefs = Preferences(qs)
    assert prefs.recent_files() == [old[0], old[2]] and prefs.recent_projects() == [old[1]]
    prefs.add_recent(tmp_path / "mix.soundstage", project=True)
    want = [str((tmp_path / "mix.soundstage").resolve()), old[1]]
    assert prefs.recent_projects() == want and prefs.recent_files() == [old[0], old[2]]
    assert Preferences(qs).recent_projects() == want              # kept, and the old entry moved over once
    # a project an older settings file listed among the recordings (saved under another name) moves over
    stale = str((tmp_path / "a.wav").resolve())
    prefs.add_recent(tmp_path / "a.wav", project=True)
    assert prefs.recent_projects()[0] == stale and stale not in prefs.recent_files() and old[0] not in prefs.recent_files()
    prefs.add_recent(tmp_path / "a.wav")
    assert prefs.recent_files()[0] == stale and stale not in prefs.recent_projects()
    for i in range(RECENT_MAX + 2):
        prefs.add_recent(tmp_path / f"r{i}.wav")
    files = prefs.recent_files()
    assert len(files) == RECENT_MAX and files[0].endswith(f"r{RECENT_MAX + 1}.wav") and prefs.recent_projects() == want


def test_recent_labels_tell_same_names_apart():
    """A recent menu labels each file by its name, and files of the same name by as many of their folders as
    tell them apart."""
    from ui.main_window import recent_labels
    assert recent_labels(["/w/main/demo/a.flac", "/w/lead/demo/a.flac", "/w/p.soundstage", "/x/b.wav"]) == [
        "a.flac — main/demo", "a.flac — lead/demo", "p.soundstage", "b.wav"]
    assert recent_labels(["/u/a.wav", "/v/a.wav"]) == ["a.wav — u", "a.wav — v"]
