"""Issue 23 through the command line: ``render`` takes the output stage's options (item 1), options
that need a separator are refused without one (item 6), the summary is plain text under ``-q`` and
names the file each part describes (item 9), no output is written over another output (item 10),
and a run's outputs are checked before any work and committed together or not at all (item 12)."""
from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest
import soundfile as sf

from cli.main import main
from core.loudness import true_peak_db

SR = 44100
FAST = ["--separator", "formation", "--sources", "2", "--method", "decorr"]


@pytest.fixture
def loud(tmp_path, rng):
    """Two seconds of two tones and a little noise peaking near full scale."""
    t = np.arange(2 * SR) / SR
    x = np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 3000 * t) + 0.05 * rng.standard_normal(len(t))
    path = tmp_path / "in.wav"
    sf.write(path, (0.9 * x / np.abs(x).max()).astype(np.float32), SR, subtype="FLOAT")
    return path


def _files(folder):
    """Every file and folder under ``folder`` (relative, sorted), temporary files included."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _one_line(capsys, *says):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("soundstage: error: "), err
    for s in says:
        assert s in err, err


# --- item 1 -------------------------------------------------------------------------------------
def test_render_takes_ceiling_and_keep_loudness_else_uses_the_projects(tmp_path, loud, capsys):
    first = tmp_path / "a.wav"
    assert main(["-q", "upmix", str(loud), "-o", str(first), *FAST, "--ceiling", "-6"]) == 0
    proj = tmp_path / "a.soundstage.json"
    assert json.loads(proj.read_text())["export"]["ceiling_db"] == -6.0
    capsys.readouterr()

    same = tmp_path / "same.wav"                         # nothing given: the project's output stage
    assert main(["-q", "render", str(proj), "-o", str(same)]) == 0
    assert "original's loudness" not in capsys.readouterr().out
    assert same.read_bytes() == first.read_bytes()
    assert -6.05 < true_peak_db(sf.read(same)[0]) <= -5.99

    lower = tmp_path / "lower.wav"
    assert main(["-q", "render", str(proj), "-o", str(lower), "--ceiling", "-3"]) == 0
    assert "-3.0 dBTP ceiling" in capsys.readouterr().out
    assert -3.05 < true_peak_db(sf.read(lower)[0]) <= -2.99

    kept = tmp_path / "kept.wav"
    assert main(["-q", "render", str(proj), "-o", str(kept), "--keep-loudness"]) == 0
    text = capsys.readouterr().out
    assert "to the original's loudness" in text and "-6.0 dBTP ceiling" in text
    assert true_peak_db(sf.read(kept)[0]) <= -5.99

    assert main(["-q", "render", str(proj), "-o", str(tmp_path / "bad.wav"), "--ceiling", "3"]) == 2
    _one_line(capsys, "ceiling must be between -24 and 0")
    assert not (tmp_path / "bad.wav").exists()


# --- item 6 -------------------------------------------------------------------------------------
def test_options_that_need_a_separator_are_refused_without_one(tmp_path, loud, capsys):
    out = tmp_path / "o.wav"
    assert main(["-q", "upmix", str(loud), "-o", str(out), "--renditions", "3", "--stems", "--variety", "1"]) == 2
    _one_line(capsys, "--renditions, --variety and --stems need sources: add --separator formation")
    assert main(["-q", "upmix", str(loud), "-o", str(out), "--separator", "formation", "--demucs-model",
                 "htdemucs_6s"]) == 2
    _one_line(capsys, "--demucs-model is for --separator demucs, not formation")
    assert main(["-q", "batch", str(tmp_path), str(tmp_path / "b"), "--separator", "none", "--stems"]) == 2
    _one_line(capsys, "--stems needs sources")
    assert _files(tmp_path) == ["in.wav"]


# --- item 9 -------------------------------------------------------------------------------------
def test_quiet_summary_is_plain_and_json_is_asked_for(tmp_path, loud, capsys):
    out = tmp_path / "plain.wav"
    assert main(["-q", "upmix", str(loud), "-o", str(out), "--method", "decorr"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"wrote {out}: 2.0 s stereo, method decorr, seed 0\n") and "{" not in text
    out2 = tmp_path / "j.wav"
    assert main(["-q", "upmix", str(loud), "-o", str(out2), "--method", "decorr", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["method"] == "decorr" and [o["output"] for o in d["outputs"]] == [str(out2)]


def test_each_renditions_summary_names_its_file_and_its_places(tmp_path, loud, capsys):
    out = tmp_path / "r.wav"
    assert main(["-q", "upmix", str(loud), "-o", str(out), *FAST, "--renditions", "2", "--variety", "1"]) == 0
    text = capsys.readouterr().out
    blocks = text.split("wrote ")[1:]
    assert len(blocks) == 2
    for k, (block, name) in enumerate(zip(blocks, ["r.wav", "r-seed1.wav"])):
        assert block.startswith(f"{tmp_path / name} (rendition {k + 1} of 2, seed {k})")
        proj = json.loads((tmp_path / name).with_suffix(".soundstage.json").read_text())
        places = ", ".join(f"{s['name']} pan {s['placement']['pan']:+.2f} width {s['placement']['width']:.2f}"
                           for s in proj["sources"])
        assert f"  {len(proj['sources'])} sources: {places}\n" in block


# --- item 10 ------------------------------------------------------------------------------------
def test_the_project_file_may_not_be_another_output(tmp_path, loud, capsys):
    out = tmp_path / "X.wav"
    assert main(["-q", "upmix", str(loud), "-o", str(out), *FAST, "--project", str(out)]) == 2
    _one_line(capsys, f"{out}: named as the output and as the project file")
    assert _files(tmp_path) == ["in.wav"]
    out.write_bytes(b"keep")                          # with --force an existing file is not replaced either
    assert main(["-q", "upmix", str(loud), "-o", str(out), *FAST, "--project", str(out), "--force"]) == 2
    _one_line(capsys, "named as the output and as the project file")
    assert out.read_bytes() == b"keep" and _files(tmp_path) == ["X.wav", "in.wav"]
    stem = tmp_path / "Y-stems" / "01-a.wav"          # a project among the stems
    assert main(["-q", "upmix", str(loud), "-o", str(tmp_path / "Y.wav"), *FAST, "--stems",
                 "--project", str(stem)]) == 2
    _one_line(capsys, f"{stem}: the project file would be inside the stems folder {tmp_path / 'Y-stems'}")
    assert _files(tmp_path) == ["X.wav", "in.wav"]


# --- item 12 ------------------------------------------------------------------------------------
def test_outputs_are_checked_before_any_work(tmp_path, loud, capsys):
    out = tmp_path / "A.wav"
    assert main(["-q", "upmix", str(loud), "-o", str(out), *FAST, "--dawproject", str(out)]) == 2
    _one_line(capsys, "named as the output and as the DAWproject file")
    assert _files(tmp_path) == ["in.wav"]
    (tmp_path / "afile").write_text("x")             # a project folder that cannot be made
    assert main(["-q", "upmix", str(loud), "-o", str(out), *FAST, "--project", str(tmp_path / "afile" / "p.json")]) == 2
    _one_line(capsys, f"{tmp_path / 'afile'} is a file, not a folder")
    assert _files(tmp_path) == ["afile", "in.wav"]


def test_a_project_folder_without_write_permission_is_refused_before_any_work(tmp_path, loud, capsys, monkeypatch):
    # The report's read-only --project folder (as root every folder is writable, so the
    # permission the check asks for is what is denied here).
    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if str(p) == str(ro) else real(p, mode, **k))
    out = tmp_path / "A.wav"
    assert main(["-q", "upmix", str(loud), "-o", str(out), *FAST, "--project", str(ro / "A.json")]) == 2
    _one_line(capsys, f"{ro / 'A.json'}: permission denied: cannot write in {ro}")
    assert _files(tmp_path) == ["in.wav", "ro"]


@pytest.mark.parametrize("force", [False, True])
def test_a_failure_after_the_work_leaves_no_output_and_keeps_old_ones(tmp_path, loud, capsys, monkeypatch, force):
    # The disk fills up while the DAWproject file (the last output) is written: no rendition, project,
    # stem or folder of the run is left, and with --force the files it would have replaced keep their content.
    import app.dawproject

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(app.dawproject, "_wav_bytes", full)
    out = tmp_path / "A.wav"
    if force:
        for name in ("A.wav", "A-seed1.soundstage.json"):
            (tmp_path / name).write_bytes(b"old " + name.encode())
    before = _files(tmp_path)
    rc = main(["-q", "upmix", str(loud), "-o", str(out), *FAST, "--renditions", "2", "--stems",
               "--project", str(tmp_path / "p" / "q" / "A.json"), "--dawproject", str(tmp_path / "d" / "A.dawproject"),
               *(["--force"] if force else [])])
    assert rc == 2
    _one_line(capsys, "no space left on the device")
    assert _files(tmp_path) == before
    if force:
        assert out.read_bytes() == b"old A.wav"
        assert (tmp_path / "A-seed1.soundstage.json").read_bytes() == b"old A-seed1.soundstage.json"
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".part")]
