"""The user's settings (core.settings.Settings): one object, resolved in a fixed order, passed down;
`--models-dir` reaches prediction with and without a separator; projects record what a re-render
needs to be exact."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app import __version__
from cli.main import main
from app.session import Session
from core.settings import ENV, STORED, Settings
from core.models.base import models_dir

from conftest import harmonic_note
from app.project_io import load_project, save_project


def test_resolution_order_cli_env_stored_default(tmp_path):
    env = {ENV["models_dir"]: str(tmp_path / "env-models"), ENV["cache_max_mb"]: "100",
           ENV["torch_threads"]: "3"}
    stored = {STORED["models_dir"]: str(tmp_path / "stored-models"), STORED["cache_max_mb"]: 50,
              STORED["demucs_models"]: str(tmp_path / "demucs")}
    s = Settings.resolve({"models_dir": str(tmp_path / "cli-models")}, env=env, stored=stored)
    assert s.models_dir == tmp_path / "cli-models"              # command line first
    assert s.cache_max_mb == 100 and s.torch_threads == 3       # then the environment
    assert s.demucs_models == tmp_path / "demucs"                # then the stored preferences
    d = Settings.resolve(env={})
    assert d.models_dir == models_dir() and d.cache_max_mb == 4096 and d.torch_threads == 1
    assert d.demucs_models is None and d.stem_cache_dir == d.cache_dir / "stems"
    assert dict(s.sources)["models_dir"] == "command line" and dict(s.sources)["cache_max_mb"] == ENV["cache_max_mb"]
    with pytest.raises(Exception, match="not a number"):
        Settings.resolve(env={ENV["torch_threads"]: "many"})
    with pytest.raises(Exception, match=">= 0"):
        Settings.resolve(env={ENV["cache_max_mb"]: "-5"})


def test_backend_folders_come_from_the_user_not_the_project(tmp_path):
    s = Settings.resolve({"demucs_models": str(tmp_path / "m")}, env={})
    opts = s.backend_options("demucs")
    assert opts["models_dir"] == tmp_path / "m" and opts["cache_dir"] == s.stem_cache_dir
    assert s.backend_options("formation") == {"cache_dir": s.stem_cache_dir, "cache_max_bytes": s.cache_max_bytes}


@pytest.fixture
def recording(tmp_path):
    n = 3 * 44100
    x = np.zeros(n, np.float32)
    x[:n] += np.tile(harmonic_note(110.0, 1.0), 3)[:n]
    x[:n] += np.tile(harmonic_note(880.0, 0.5, n_harm=4), 6)[:n]
    path = tmp_path / "rec.wav"
    sf.write(str(path), 0.5 * x / np.abs(x).max(), 44100, subtype="FLOAT")
    return path


@pytest.mark.parametrize("separator", [None, "formation"])
def test_models_dir_reaches_prediction(recording, tmp_path, capsys, separator):
    """An empty --models-dir makes PS-NN unavailable *from that folder* (with a separator too, where
    it used to be dropped); a folder holding the file works."""
    empty, full = tmp_path / "empty", tmp_path / "full"
    empty.mkdir()
    full.mkdir()
    shutil.copy(models_dir() / "ps-nn.npz", full / "ps-nn.npz")
    sep = ["--separator", separator, "--sources", "2"] if separator else []
    rc = main(["upmix", str(recording), "-o", str(tmp_path / "a.wav"), "--method", "ps-nn",
               "--models-dir", str(empty), *sep])
    err = capsys.readouterr().err
    assert rc == 2 and str(empty / "ps-nn.npz") in err
    rc = main(["upmix", str(recording), "-o", str(tmp_path / "b.wav"), "--method", "ps-nn",
               "--models-dir", str(full), *sep])
    assert rc == 0, capsys.readouterr().err
    y, _ = sf.read(str(tmp_path / "b.wav"))
    assert y.shape[1] == 2 and np.abs(y[:, 0] - y[:, 1]).max() > 1e-3
    if separator:      # the project records the model file used, from that folder
        proj = json.loads((tmp_path / "b.soundstage.json").read_text())
        assert proj["app_version"] == __version__
        assert set(proj["models"]["ps-nn"]) == {"ps-nn.npz"} and len(proj["models"]["ps-nn"]["ps-nn.npz"]) == 64
    # "best" picks from the given folder: nothing there but Decorr
    rc = main(["upmix", str(recording), "-o", str(tmp_path / "c.wav"), "--models-dir", str(empty), *sep])
    assert rc == 0
    out = capsys.readouterr().out
    if not separator:
        assert "method decorr" in out


def test_project_says_when_a_rerender_cannot_be_exact(recording, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(models_dir() / "ps-nn.npz", folder / "ps-nn.npz")
    user = Settings.resolve({"models_dir": str(folder)}, env={})
    s = Session(user)
    s.open(recording)
    s.model = "ps-nn"
    s.separate("formation", {"n_sources": 2})
    s.new_rendition(0)
    p = save_project(s, tmp_path / "p.soundstage.json")
    again = load_project(p, settings=user)
    assert again.project_notes == [] and again.placements == s.placements
    data = json.loads(p.read_text())
    data["models"]["ps-nn"]["ps-nn.npz"] = "0" * 64            # another model file than the one used
    data["app_version"] = "0.0.1"
    p.write_text(json.dumps(data))
    notes = load_project(p, settings=user).project_notes
    assert any("0.0.1" in n for n in notes) and any("ps-nn" in n and "not be exact" in n for n in notes)
