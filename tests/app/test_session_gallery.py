"""The gallery gives back what was auditioned, and a saved project keeps the output stage (issue 23, items 1-2)."""
import json

import pytest

from app.export import export
from app.output import OutputSettings
from app.project_io import load_project, save_project
from core.models.placement import placement_model_path
from core.placement import Placement

from test_session import _session_with, _three_sources

needs_model = pytest.mark.skipif(not placement_model_path().exists(), reason="no shipped placement model")


@pytest.fixture()
def session(rng, tmp_path):
    return _session_with(_three_sources(rng), tmp_path / "mix.wav", tmp_path)


@pytest.fixture()
def separated(rng, tmp_path):
    """A session whose sources a project can re-make (formation, 3 sources)."""
    s = _session_with(_three_sources(rng), tmp_path / "mix.wav", tmp_path)
    s.separate("formation", {"n_sources": 3})
    return s


@needs_model
def test_a_kept_rendition_comes_back_as_auditioned_after_a_pin(session):
    s = session
    s.new_rendition(0, variety=1.0)
    s.new_rendition(1, variety=1.0)
    auditioned = list(s.placements)
    s.recall(0)
    s.set_placement(0, s.placements[0].moved(-0.9, 0.2))       # a drag pins the bass on rendition 1
    s.recall(1)
    assert s.placements == auditioned                           # not re-sampled around the pin
    s.undo.undo()                                                # the switch is one undo step
    assert s.placements[0] == Placement(-0.9, 0.2, pinned=True)


@needs_model
def test_the_gallery_is_saved_and_reopened_exactly(separated, tmp_path):
    s = separated
    s.new_rendition(0, variety=1.0)
    s.new_rendition(1, variety=1.0)
    second = list(s.placements)
    s.recall(0)
    s.set_placement(2, s.placements[2].moved(0.7, 0.1))
    again = load_project(save_project(s, tmp_path / "g.soundstage.json"))
    assert again.placements == s.placements
    again.recall(1)
    assert again.placements == second


def test_a_saved_project_keeps_the_output_stage(separated, tmp_path):
    s = separated
    s.new_rendition(0)
    assert s.output == OutputSettings()                          # -1 dBTP, the default
    res = export(s, tmp_path / "out.wav", fmt="wav24")           # the export's project, then a plain save
    path = save_project(s, tmp_path / "saved.soundstage.json")
    saved = json.loads(path.read_text())["export"]
    assert saved["ceiling_db"] == -1.0 and saved["true_peak"] is True and saved["format"] == "wav24"
    again = load_project(path)
    assert again.output == OutputSettings()
    assert again.stage.settings == s.output and res.gain_db == pytest.approx(export(again, tmp_path / "b.wav").gain_db)
