"""Issue 17, case 1: no model file, project or folder can make Soundstage run code.

A crafted pickle whose unpickling writes a marker file stands in for a malicious model. It is put
where each path would load it (a demucs model folder named by a project, by ``--demucs-models`` or
by ``$SOUNDSTAGE_DEMUCS_MODELS``, the torch hub cache, ``train --init``, a training checkpoint), and
every path must refuse it in one line with the marker never written. Genuine files still load
(the Demucs and training tests load real packages the same way).
"""
from __future__ import annotations

import hashlib
import json
import pickle
import shutil

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")
pytest.importorskip("demucs")

import separation  # noqa: E402
from cli.main import main  # noqa: E402
from separation import demucs_weights  # noqa: E402
from separation.demucs_weights import ModelUnavailable  # noqa: E402

SR = 44100


class _Payload:
    """Unpickling this runs ``exec(code)``: the code writes the marker file."""

    def __init__(self, marker):
        self.code = f"open({str(marker)!r}, 'w').write('code ran')"

    def __reduce__(self):
        return exec, (self.code,)


def _evil_package(marker) -> dict:
    # Shaped like a demucs package so that a loader gets as far as unpickling its first field.
    return {"klass": _Payload(marker), "args": [], "kwargs": {}, "state": {}, "training_args": {}}


def _torch_pickle(path, marker):
    torch.save(_evil_package(marker), path)
    return path


def _raw_pickle(path, marker):
    path.write_bytes(pickle.dumps(_Payload(marker)))
    return path


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "MARKER"


@pytest.fixture
def recording(tmp_path, rng):
    path = tmp_path / "in.wav"
    sf.write(path, (0.1 * rng.standard_normal(SR)).astype(np.float32), SR, subtype="FLOAT")
    return path


@pytest.fixture
def evil_folder(tmp_path, marker):
    folder = tmp_path / "models"
    folder.mkdir()
    _torch_pickle(folder / "evil.th", marker)
    return folder


def test_the_payload_does_run_when_unpickled(tmp_path, marker):
    # The stand-in is real: a pickle loader (demucs' torch.load(weights_only=False)) runs it.
    path = _torch_pickle(tmp_path / "x.th", marker)
    torch.load(path, weights_only=False)
    assert marker.read_text() == "code ran"


def test_demucs_models_option_refuses(evil_folder, marker, recording, tmp_path, capsys):
    out = tmp_path / "stems"
    rc = main(["--quiet", "separate", str(recording), "--backend", "demucs", "--model", "evil",
               "--demucs-models", str(evil_folder), "--no-cache", "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and not marker.exists() and not out.exists()
    assert err.count("\n") == 1 and "(it names exec)" in err and "weights-only" in err


def test_demucs_models_environment_refuses(evil_folder, marker, monkeypatch):
    monkeypatch.setenv(demucs_weights.ENV_MODELS_DIR, str(evil_folder))
    b = separation.get("demucs", model="evil", cache=False, threads=1)
    with pytest.raises(ModelUnavailable, match="refusing to load"):
        b.separate(np.zeros(SR, np.float32))
    assert not marker.exists()


def test_demucs_checksum_named_files_are_checked_before_reading(tmp_path, marker, monkeypatch):
    # A crafted file under the official htdemucs name: its bytes fail the checksum in the name,
    # so nothing reads it. The same file under its own correct checksum: refused weights-only.
    folder = tmp_path / "official"
    folder.mkdir()
    official = demucs_weights.official_files("htdemucs")
    bad = _torch_pickle(folder / official.files[0], marker)
    monkeypatch.setenv(demucs_weights.ENV_MODELS_DIR, str(folder))
    b = separation.get("demucs", cache=False, threads=1)
    with pytest.raises(ModelUnavailable, match="checksum in its name"):
        b.load_model()
    sha = hashlib.sha256(bad.read_bytes()).hexdigest()[:8]
    bad.rename(folder / f"{official.sigs[0]}-{sha}.th")
    b = separation.get("demucs", cache=False, threads=1)
    with pytest.raises(ModelUnavailable, match="not a plain demucs weights file"):
        b.load_model()
    assert not marker.exists()


def test_demucs_hub_cache_refuses(tmp_path, marker, monkeypatch):
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(demucs_weights, "probe", lambda *a, **k: pytest.fail("network probed"))
    official = demucs_weights.official_files("htdemucs")
    _torch_pickle(hub / official.files[0], marker)
    b = separation.get("demucs", cache=False, threads=1)
    assert b.model_source().kind == "hub-cache"
    with pytest.raises(ModelUnavailable):
        b.load_model()
    assert not marker.exists()


def test_safetensors_class_must_be_a_demucs_model(tmp_path, marker):
    # demucs' own safetensors loader imports and calls whatever 'klass' the metadata names.
    from safetensors.torch import save_file
    path = tmp_path / "m.safetensors"
    save_file({"w": torch.zeros(1)}, str(path),
              metadata={"klass": "builtins.exec", "args": json.dumps([f"open({str(marker)!r}, 'w')"]),
                        "kwargs": "{}"})
    with pytest.raises(ModelUnavailable, match="not a demucs model class"):
        demucs_weights.load_safetensors(path)
    assert not marker.exists()


def test_a_genuine_package_loads_weights_only(tmp_path):
    from _demucs_tiny import make_model_folder
    th = make_model_folder(tmp_path / "m", name="tiny")
    package = demucs_weights.read_package(th)
    assert package["klass"].__name__ == "HTDemucs" and package["state"]


def _project(path, recording, settings):
    path.write_text(json.dumps({
        "format": "soundstage-project", "version": 1, "recording": str(recording),
        "separation": {"backend": "demucs", "settings": settings},
        "model": "decorr", "renditions": [], "current_rendition": -1, "sources": [], "export": {}}))
    return path


# A project names a model; the crafted file sits either in a folder the project names (refused as
# an unknown key: folders are the user's settings, never a project's) or in the user's own Demucs
# folder (the project's model name reaches it, and the file is refused as not weights-only).
_CASES = [({"model": "evil", "models_dir": "models"}, False, "unknown key 'separation.settings.models_dir'"),
          ({"model": "evil"}, True, "weights-only")]


@pytest.mark.parametrize("settings, user_folder, says", _CASES)
def test_render_of_a_malicious_project_runs_nothing(tmp_path, evil_folder, marker, recording, capsys, monkeypatch,
                                                    settings, user_folder, says):
    monkeypatch.chdir(tmp_path)            # "models" names the crafted folder, as in the report
    if user_folder:
        monkeypatch.setenv(demucs_weights.ENV_MODELS_DIR, str(evil_folder))
    proj = _project(tmp_path / "p.soundstage.json", recording, settings)
    out = tmp_path / "out.wav"
    rc = main(["--quiet", "render", str(proj), "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and says in err, err
    assert not marker.exists() and not out.exists()


@pytest.mark.parametrize("settings, user_folder, says", _CASES)
def test_gui_open_of_a_malicious_project_runs_nothing(qtbot, tmp_path, evil_folder, marker, recording, monkeypatch,
                                                      settings, user_folder, says):
    pytest.importorskip("pytestqt")
    monkeypatch.chdir(tmp_path)
    if user_folder:
        monkeypatch.setenv(demucs_weights.ENV_MODELS_DIR, str(evil_folder))
    from PyQt6.QtCore import QSettings
    from ui.main_window import MainWindow
    w = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    proj = _project(tmp_path / "p.soundstage.json", recording, settings)
    w.open_path(proj)
    qtbot.waitUntil(lambda: not w.ctl.busy, timeout=60000)
    assert w.banner.isVisible() and "p.soundstage.json" in w.banner.text.text()
    assert says in w.ctl.last_error, w.ctl.last_error
    assert not marker.exists()
    w.close()


@pytest.fixture
def music_folder(tmp_path, rng, signals):
    data = tmp_path / "music"
    data.mkdir()
    for i, db in enumerate((-9.0, 4.0, 12.0)):
        sf.write(data / f"song{i}.wav", signals.pan_mono(signals.noise(rng, seconds=2.0), db), SR)
    return data


@pytest.mark.parametrize("make", [_torch_pickle, _raw_pickle])
def test_train_init_refuses_a_pickle(tmp_path, monkeypatch, music_folder, marker, capsys, make):
    monkeypatch.setenv("SOUNDSTAGE_TRAIN_CACHE", str(tmp_path / "cache"))
    evil = make(tmp_path / "init.pt", marker)
    rc = main(["--quiet", "train", "--model", "ps-ar", "--data", str(music_folder), "--steps", "2",
               "--batch", "2", "--d", "16", "--layers", "1", "--out", str(tmp_path / "ck"), "--init", str(evil)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "weights-only" in err, err
    assert not marker.exists()


def test_train_resume_refuses_a_pickled_checkpoint(tmp_path, monkeypatch, music_folder, marker, capsys):
    monkeypatch.setenv("SOUNDSTAGE_TRAIN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "ck"
    out.mkdir()
    _torch_pickle(out / "ckpt.pt", marker)
    rc = main(["--quiet", "train", "--model", "ps-reg", "--data", str(music_folder), "--steps", "2",
               "--batch", "2", "--d", "16", "--layers", "1", "--out", str(out)])
    assert rc == 2 and "weights-only" in capsys.readouterr().err
    assert not marker.exists()
    # A genuine checkpoint written by a run still resumes weights-only.
    shutil.rmtree(out)
    args = ["--quiet", "train", "--model", "ps-reg", "--data", str(music_folder), "--steps", "2", "--batch", "2",
            "--d", "16", "--layers", "1", "--out", str(out)]
    assert main(args) == 0
    args[args.index("2")] = "3"
    assert main(args) == 0
    assert torch.load(out / "ckpt.pt", weights_only=True)["step"] == 3
