"""A reference in the session, projects, the headless chain and the command line (issue 27)."""
import json

import numpy as np
import pytest
import soundfile as sf

from app import proposal
from cli.main import main
from app.project_io import load_project, save_project
from app.reference import follow_file, rendition_follows
from app.session import Session
from conftest import pan_mono
from core.models.placement import placement_model_path
from core.models.reference_match import matcher_path
from test_session import _three_sources

pytestmark = pytest.mark.skipif(not (placement_model_path().exists() and matcher_path().exists()),
                                reason="no shipped placement model or reference matcher")


def _files(tmp_path):
    rec = tmp_path / "mix.wav"
    sf.write(str(rec), np.sum(_three_sources(np.random.default_rng(9), 4.0), axis=0).astype(np.float32), 44100,
             subtype="FLOAT")
    stems = _three_sources(np.random.default_rng(5), 5.0)
    ref = tmp_path / "ref.wav"
    sf.write(str(ref), pan_mono(stems[0], 12.0) + pan_mono(stems[1], -12.0) + pan_mono(stems[2], 0.0), 44100,
             subtype="FLOAT")
    return rec, ref


def _following(rec, ref, seeds=(0,)):
    """A session of ``rec`` (decorr, three formation sources) following ``ref``, a rendition per seed."""
    s = Session()
    s.open(rec)
    s.model = "decorr"
    s.separate("formation", {"n_sources": 3})
    follow_file(s, ref)
    for seed in seeds:
        s.new_rendition(seed)
    return s


def _noise(tmp_path):
    """Wide noise: a reference that sounds nothing like the recording."""
    noise = tmp_path / "noise.wav"
    sf.write(str(noise), (0.1 * np.random.default_rng(3).standard_normal((44100 * 3, 2))).astype(np.float32), 44100,
             subtype="FLOAT")
    return noise


def test_project_with_a_reference_rerenders_without_the_file(tmp_path):
    rec, ref = _files(tmp_path)
    s = Session()
    s.open(rec)
    s.model = "decorr"
    s.separate("formation", {"n_sources": 3})
    s.new_rendition(0)                                   # without a reference
    scene = follow_file(s, ref)
    assert scene is not None and s.reference == scene and scene.name == "ref.wav"
    s.new_rendition(1)
    s.new_rendition(2)
    assert [r.reference for r in s.renditions] == [None, scene, scene]
    expected = s.render()
    proj = save_project(s, tmp_path / "p.soundstage.json")
    data = json.loads(proj.read_text())
    assert list(data["references"]) == [scene.id] and data["references"][scene.id]["sha256"] == scene.sha256
    ref.unlink()                                         # the reference is gone: the project has its scene
    again = load_project(proj)
    assert again.reference == scene and [r.reference for r in again.renditions] == [None, scene, scene]
    assert again.placements == s.placements
    assert np.array_equal(again.render(), expected)      # bit-identical
    r = again.renditions[again.current]
    fresh = proposal.propose(r, again.renders, again._params[r.ps_key], [], again.sources)
    assert fresh == s.gallery[2]                         # the proposal itself is made again without the file
    again.recall(1)
    assert again.placements == s.gallery[1]


def test_cli_reference_and_render_without_it(tmp_path, capsys):
    rec, ref = _files(tmp_path)
    out, proj = tmp_path / "out.wav", tmp_path / "out.soundstage.json"
    assert main(["-q", "upmix", str(rec), "-o", str(out), "--method", "decorr", "--separator", "formation",
                 "--sources", "3", "--reference", str(ref)]) == 0
    ref.unlink()
    again = tmp_path / "again.wav"
    assert main(["-q", "render", str(proj), "-o", str(again)]) == 0
    assert again.read_bytes() == out.read_bytes()
    data = json.loads(proj.read_text())
    assert data["renditions"][0]["reference"] == data["reference"]


def test_cli_mono_reference_is_one_line_and_not_used(tmp_path, capsys):
    rec, _ = _files(tmp_path)
    mono_ref = tmp_path / "mono.wav"
    sf.write(str(mono_ref), np.sum(_three_sources(np.random.default_rng(5), 3.0), axis=0), 44100)
    out = tmp_path / "out.wav"
    assert main(["upmix", str(rec), "-o", str(out), "--method", "decorr", "--separator", "formation",
                 "--sources", "3", "--reference", str(mono_ref)]) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "mono.wav" in ln]
    assert len(lines) == 1 and "is mono" in lines[0] and "not used" in lines[0]
    data = json.loads((tmp_path / "out.soundstage.json").read_text())
    assert "references" not in data and "reference" not in data["renditions"][0]


def test_cli_reference_needs_a_separator(tmp_path, capsys):
    rec, ref = _files(tmp_path)
    assert main(["upmix", str(rec), "-o", str(tmp_path / "o.wav"), "--reference", str(ref)]) == 2
    assert "--reference needs sources" in capsys.readouterr().err


def test_projects_record_the_matcher_file(tmp_path):
    from app.project import REFERENCE_MODEL, exactness_notes, read_project
    from core.models.base import models_dir
    rec, ref = _files(tmp_path)
    s = _following(rec, ref)
    data = read_project(save_project(s, tmp_path / "p.soundstage.json"))
    assert set(data.models[REFERENCE_MODEL]) == {"reference-match.json"}
    assert exactness_notes(data, folder=models_dir(), app_version=data.app_version) == []
    data.models[REFERENCE_MODEL] = {"reference-match.json": "0" * 64}
    notes = exactness_notes(data, folder=models_dir(), app_version=data.app_version)
    assert len(notes) == 1 and "reference-match" in notes[0]


def test_batch_takes_the_reference_with_a_separator_only(tmp_path, capsys):
    from cli.commands.upmix import settings_from_args
    from cli.main import build_parser
    rec, ref = _files(tmp_path)
    args = build_parser().parse_args(["batch", str(tmp_path), str(tmp_path / "out"), "--reference", str(ref)])
    assert settings_from_args(args).resolved().reference == str(ref.absolute())
    assert main(["batch", str(tmp_path), str(tmp_path / "out2"), "--separator", "none", "--reference", str(ref)]) == 2
    assert "--reference needs sources" in capsys.readouterr().err


def test_eval_reference_names_its_conditions_in_one_line(capsys):
    assert main(["eval", "--sources", "--reference", "same-track,bogus"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'bogus'" in err and "same-track-places" in err


def test_cli_unlike_reference_is_one_line_and_not_followed(tmp_path, capsys):
    """A reference that sounds nothing like the recording (wide noise) is said in one line and the
    proposals are the placement model's alone: the same output as without it."""
    rec, _ = _files(tmp_path)
    noise = _noise(tmp_path)
    args = ["--method", "decorr", "--separator", "formation", "--sources", "3"]
    assert main(["upmix", str(rec), "-o", str(tmp_path / "plain.wav"), *args]) == 0
    capsys.readouterr()
    assert main(["upmix", str(rec), "-o", str(tmp_path / "with-ref.wav"), *args, "--reference", str(noise)]) == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "noise.wav" in ln]
    assert len(lines) == 1 and "not followed" in lines[0] and "unlike the recording" in lines[0]
    assert (tmp_path / "with-ref.wav").read_bytes() == (tmp_path / "plain.wav").read_bytes()


def test_cli_says_per_rendition_whether_it_followed_the_reference(tmp_path, capsys):
    """The summary and --json say for each rendition whether it followed its reference (the gallery's
    answer, app.reference.rendition_follows): a reference unlike the recording is followed by none, and
    without a reference nothing is said."""
    rec, ref = _files(tmp_path)
    noise = _noise(tmp_path)
    args = ["--method", "decorr", "--separator", "formation", "--sources", "3", "--renditions", "2"]
    s = _following(rec, ref, seeds=(0, 1))
    expect = ["followed" if rendition_follows(s, r) else "not followed" for r in s.renditions]
    for name, reference, want in (("r", ref, expect), ("n", noise, ["not followed"] * 2), ("p", None, [None] * 2)):
        extra = [] if reference is None else ["--reference", str(reference)]
        assert main(["upmix", str(rec), "-o", str(tmp_path / f"{name}.wav"), *args, *extra, "--json"]) == 0
        assert [o["reference"] for o in json.loads(capsys.readouterr().out)["outputs"]] == want
        assert main(["upmix", str(rec), "-o", str(tmp_path / f"{name}.wav"), *args, *extra, "--force"]) == 0
        said = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("wrote ")]
        assert len(said) == 2
        for ln, w in zip(said, want):
            assert (f"reference {w}" in ln) if w else ("reference" not in ln)
