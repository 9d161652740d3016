"""``soundstage separate`` and ``soundstage cache`` end to end (tiny Demucs model, generated audio)."""
from __future__ import annotations


import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("demucs")

import cli.main as cli  # noqa: E402
from separation import demucs_backend, demucs_weights  # noqa: E402

from _demucs_tiny import STEMS4, STEMS6, make_model_folder  # noqa: E402

SR = 44100


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("SOUNDSTAGE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("SOUNDSTAGE_DEMUCS_MODELS", raising=False)
    import huggingface_hub.constants as hfc
    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path / "hf"))
    # Only this test's commands: other subcommands are other people's work in progress.
    monkeypatch.setattr(cli, "COMMANDS", ("separate", "cache"))
    demucs_backend._loaded.clear()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    make_model_folder(folder, name="htdemucs")
    make_model_folder(folder, name="htdemucs_6s", sources=STEMS6)
    return folder


@pytest.fixture
def recording(tmp_path, rng):
    t = np.arange(int(2.0 * SR)) / SR
    x = 0.3 * np.sin(2 * np.pi * 110 * t) + 0.05 * rng.standard_normal(len(t))
    path = tmp_path / "in.wav"
    sf.write(path, x.astype(np.float32), SR, subtype="FLOAT")
    return path, x.astype(np.float32)


def run(*argv):
    return cli.main(["-q", *map(str, argv)])


def test_commands_are_registered():
    import ast
    tree = ast.parse(open(cli.__file__).read())          # the file, not the patched tuple
    commands = next(ast.literal_eval(n.value) for n in tree.body
                    if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "COMMANDS")
    assert "separate" in commands and "cache" in commands


def test_separate_writes_one_wav_per_stem(models, recording, tmp_path, capsys):
    path, x = recording
    out = tmp_path / "stems"
    rc = run("separate", path, "--separator", "demucs", "--demucs-model", "htdemucs", "--demucs-models", models,
             "-o", out, "--threads", "1", "--shifts", "0")
    assert rc == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(f"{s}.wav" for s in STEMS4)
    printed = capsys.readouterr().out.split()
    assert sorted(printed) == sorted(str(out / f) for f in files)
    total = 0
    for f in files:
        y, sr = sf.read(out / f, dtype="float32")
        info = sf.info(out / f)
        assert sr == SR and y.ndim == 1 and len(y) == len(x) and info.subtype == "PCM_24"
        total = total + y.astype(np.float64)
    assert np.max(np.abs(total - x)) < 1e-5                    # stems sum to the input (24-bit)


def test_refuses_to_overwrite_unless_forced(models, recording, tmp_path, capsys):
    path, _ = recording
    out = tmp_path / "stems"
    args = ("separate", path, "--separator", "demucs", "--demucs-model", "htdemucs_6s", "--demucs-models", models,
            "-o", out, "--threads", "1", "--format", "flac")
    assert run(*args) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s}.flac" for s in STEMS6)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    capsys.readouterr()
    assert run(*args) == 2
    assert "already exists (use --force" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert run(*args, "--force") == 0                          # from the cache this time


def test_missing_weights_is_a_clear_user_error(recording, tmp_path, capsys, monkeypatch):
    path, _ = recording
    dead = {"huggingface": "http://127.0.0.1:9/x", "legacy": "http://127.0.0.1:9/y"}
    monkeypatch.setattr(demucs_weights, "probe_urls", lambda src: dead)
    rc = run("separate", path, "--separator", "demucs", "--demucs-model", "htdemucs", "-o", tmp_path / "stems")
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("soundstage: error: demucs model 'htdemucs' is not available")
    assert "955717e8-8726e21a.th" in err and "--demucs-models" in err and "--separator formation" in err
    assert not (tmp_path / "stems").exists()


def test_bad_settings(models, recording, tmp_path, capsys):
    path, _ = recording
    assert run("separate", path, "--separator", "nope", "-o", tmp_path / "o") == 2
    assert "unknown separator 'nope'" in capsys.readouterr().err
    assert run("separate", path, "--separator", "demucs", "--set", "bogus=1", "--demucs-models", models, "-o", tmp_path / "o") == 2
    assert "has no setting bogus" in capsys.readouterr().err
    assert run("separate", path, "--separator", "demucs", "--overlap", "1.5", "--demucs-models", models, "-o", tmp_path / "o") == 2
    assert "overlap" in capsys.readouterr().err


def test_cache_info_and_clear(models, recording, tmp_path, capsys):
    path, _ = recording
    assert run("cache", "info") == 0
    assert "entries:   0" in capsys.readouterr().out
    assert run("separate", path, "--separator", "demucs", "--demucs-models", models, "-o", tmp_path / "a",
               "--threads", "1", "--shifts", "0") == 0
    assert run("separate", path, "--separator", "demucs", "--demucs-models", models, "-o", tmp_path / "b",
               "--threads", "1", "--shifts", "0", "--no-cache") == 0
    capsys.readouterr()
    assert run("cache", "info") == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "cache" / "stems") in out and "entries:   1" in out and "demucs htdemucs 2.0 s" in out
    assert run("cache", "clear") == 0
    assert "removed 1 cached entry " in capsys.readouterr().out
    assert run("cache", "info") == 0
    assert "entries:   0" in capsys.readouterr().out


def test_other_backend_through_the_same_command(recording, tmp_path):
    from separation.base import list_backends
    if "formation" not in [b.name for b in list_backends()]:
        pytest.skip("formation backend not present")
    path, x = recording
    out = tmp_path / "stems"
    assert run("separate", path, "--separator", "formation", "-o", out, "--format", "wav32f") == 0
    stems = [sf.read(p, dtype="float32")[0] for p in sorted(out.iterdir())]
    assert len(stems) >= 2
    assert np.max(np.abs(np.sum(stems, axis=0) - x)) < 1e-3
