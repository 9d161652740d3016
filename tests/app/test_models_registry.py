"""One registry for every model file: PS, placement and grouping models, each with a card and a
checksum that projects record (issue 25)."""
import json
import subprocess
import sys
from pathlib import Path

from app.project import ProjectData, exactness_notes, model_checksums
from core.models.base import list_models, load_model, model_files, models_dir
from core.models.placement import load_placement_model
from separation import grouping


def test_every_shipped_model_file_has_a_card_and_is_registered():
    infos = list_models(kind=None)
    assert {m.kind for m in infos} == {"ps", "placement", "grouping", "reference"}
    assert [m.name for m in list_models()] == [m.name for m in infos if m.kind == "ps"]
    registered = set()
    for m in infos:
        for path in model_files(m.name):
            registered.add(path.name)
            assert path.exists(), path
            assert path.with_suffix(".md").exists(), f"{path.name} has no model card"
    shipped = {p.name for p in models_dir().iterdir() if p.suffix != ".md" and not p.name.startswith(("_", "."))}
    assert shipped <= registered, shipped - registered


def test_placement_and_grouping_models_load_through_the_one_cache():
    assert load_placement_model() is load_model("placement")
    assert grouping.load_model() is load_model("grouping")
    assert grouping.MODEL_PATH == models_dir() / "grouping.json"


def test_projects_record_the_grouping_model_and_notice_another(tmp_path):
    sums = model_checksums(["grouping", "placement", "decorr"], tmp_path)   # grouping: always the shipped file
    assert set(sums["grouping"]) == {"grouping.json"} and len(sums["grouping"]["grouping.json"]) == 64
    assert sums["placement"] == {} and sums["decorr"] == {}                  # nothing in tmp_path / no files
    data = ProjectData(recording="r.wav", backend="formation", models={"grouping": sums["grouping"]})
    assert exactness_notes(data, folder=models_dir(), app_version=None) == []
    other = ProjectData(recording="r.wav", backend="formation", models={"grouping": {"grouping.json": "0" * 64}})
    notes = exactness_notes(other, folder=models_dir(), app_version=None)
    assert len(notes) == 1 and "'grouping'" in notes[0]
    assert json.loads((models_dir() / "grouping.json").read_text())["threshold"] == grouping.load_model().threshold


def test_models_and_their_checksums_are_listed_without_importing_torch():
    """A project's checksums (a cached re-render, the prediction cache's key) need no torch: the PS
    models are declared in core.models.catalog and their code is imported when one is loaded."""
    code = ("import sys\nfrom app.project import model_checksums\nfrom core.models.base import list_models\n"
            "names = [m.name for m in list_models(kind=None)]\nsums = model_checksums(names, None)\n"
            "assert len(sums['ps-mtm']['ps-mtm.pt']) == 64, sums\n"
            "print(sorted(names)); print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], timeout=300)
    assert out.returncode == 0, out.stderr
    names, torch_loaded = out.stdout.strip().splitlines()
    assert "ps-mtm" in names and "placement" in names and "ps-ar" in names
    assert torch_loaded == "False"
    assert load_model("ps-mtm").name == "ps-mtm"          # and the entry still loads the model
