"""Issue 17, cases 1, 2, 5 and 6 (projects): a project is data checked against a schema, its backend
settings are limited to what a project may set, absurd gains are refused, and no project or
export file is written over another file without --force."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from cli.main import main
from app.project import BACKEND_SCHEMAS, ProjectError, read_project
from core.errors import ParameterError
from core.placement import Placement

SR = 44100


def _music(seconds=1.5):
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 1375 * t) * (t % 0.5 < 0.25)).astype(np.float32)


@pytest.fixture
def made(tmp_path):
    """A real project: `soundstage upmix --separator formation` on a short recording."""
    rec = tmp_path / "v.wav"
    sf.write(rec, _music(), SR)
    out = tmp_path / "p.wav"
    assert main(["-q", "upmix", str(rec), "-o", str(out), "--separator", "formation", "--sources", "2",
                 "--method", "decorr"]) == 0
    return rec, out, out.with_suffix(".soundstage.json")


def _edit(path, fn):
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))
    return path


def test_a_saved_project_passes_the_schema(made):
    _rec, _out, proj = made
    data = read_project(proj)
    assert data.backend == "formation" and set(data.backend_settings) <= set(BACKEND_SCHEMAS["formation"])
    assert len(data.sources) >= 2 and data.current == 0


def _set(*keys, value):
    def fn(d):
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return fn


BAD = [
    (_set("surprise", value=1), "unknown key 'surprise'"),
    (_set("separation", "settings", "models_dir", value="models"), "unknown key 'separation.settings.models_dir'"),
    (_set("separation", "settings", "cache_dir", value="/etc"), "unknown key 'separation.settings.cache_dir'"),
    (_set("separation", "settings", "n_sources", value=99), "separation.settings.n_sources must be between 2 and 16"),
    (_set("separation", "backend", value="evil"), "unknown separation backend 'evil'"),
    (_set("current_rendition", value="abc"), "current_rendition must be an integer, not text"),
    (_set("current_rendition", value=5), "current_rendition 5 does not name one of the 1 renditions"),
    (_set("current_rendition", value=True), "current_rendition must be an integer"),
    (_set("sources", 0, "placement", "pan", value=None), "sources[0].placement.pan must be a number, not null"),
    (_set("sources", 0, "placement", "gain_db", value=1e9), "sources[0].placement.gain_db must be between -120 and 24"),
    (_set("sources", 0, "placement", "extra", value=1), "unknown key 'sources[0].placement.extra'"),
    (_set("renditions", 0, "seed", value=1.5), "renditions[0].seed must be an integer"),
    (_set("export", value=[[[[[[[[[["deep"]]]]]]]]]]), "export must be an object, not a list"),
    (_set("sources", value={"a": 1}), "sources must be a list, not an object"),
]


@pytest.mark.parametrize("edit, says", BAD, ids=[b[1][:40] for b in BAD])
def test_malformed_projects_are_refused_in_one_line(made, tmp_path, capsys, edit, says):
    _rec, _out, proj = made
    _edit(proj, edit)
    with pytest.raises(ProjectError, match=None) as exc:
        read_project(proj)
    assert says in str(exc.value) and "\n" not in str(exc.value)
    out = tmp_path / "again.wav"
    assert main(["-q", "render", str(proj), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err and not out.exists()


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_gains_are_refused(made, capsys, literal):
    _rec, _out, proj = made
    text = proj.read_text()
    data = json.loads(text)
    data["sources"][0]["placement"]["gain_db"] = 12345.0
    proj.write_text(json.dumps(data).replace("12345.0", literal))     # as an editor would write it
    with pytest.raises(ProjectError, match=f"{literal.lstrip('-')} is not a number a project may hold"):
        read_project(proj)
    with pytest.raises(ParameterError, match="gain_db"):
        Placement(gain_db=float(literal.lower().replace("infinity", "inf")))


def test_nesting_past_the_parser_is_one_line(tmp_path, capsys):
    proj = tmp_path / "deep.soundstage.json"
    proj.write_text('{"format": "soundstage-project", "version": 1, "export": ' + "[" * 200000 + "]" * 200000 + "}")
    with pytest.raises(ProjectError, match="nested too deeply|not a Soundstage project"):
        read_project(proj)
    assert main(["-q", "render", str(proj), "-o", str(tmp_path / "o.wav")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


# -- case 2: no silent overwrites -------------------------------------------------------------------
def test_project_pointing_at_the_input_is_refused(tmp_path, capsys):
    rec = tmp_path / "v.wav"
    sf.write(rec, _music(), SR)
    before = rec.read_bytes()
    rc = main(["-q", "upmix", str(rec), "-o", str(tmp_path / "p.wav"), "--separator", "formation",
               "--sources", "2", "--method", "decorr", "--project", str(rec), "--force"])
    err = capsys.readouterr().err
    assert rc == 2 and "refusing to write over the input recording" in err and err.count("\n") == 1
    assert rec.read_bytes() == before and not (tmp_path / "p.wav").exists()


def test_existing_project_files_need_force(made, tmp_path, capsys):
    rec, out, proj = made
    out.unlink()                                           # only the project file is left
    proj_bytes = proj.read_bytes()
    args = ["-q", "upmix", str(rec), "-o", str(out), "--separator", "formation", "--sources", "2",
            "--method", "decorr"]
    assert main(args) == 2
    assert "p.soundstage.json: already exists (use --force" in capsys.readouterr().err
    assert proj.read_bytes() == proj_bytes and not out.exists()
    other = tmp_path / "mine.json"
    other.write_text("my notes")
    assert main(args + ["--project", str(other)]) == 2
    assert "mine.json: already exists" in capsys.readouterr().err and other.read_text() == "my notes"
    assert main(args + ["--force"]) == 0                   # with --force: replaced
    assert read_project(proj).backend == "formation"
