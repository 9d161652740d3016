"""The placement model behind the session: renditions, pins, reset, projects and the CLI option."""
from dataclasses import replace

import numpy as np
import pytest

from app.plans import Rendition
from core.errors import ParameterError
from core.models.placement import placement_model_path
from core.placement import Placement, iid_to_pan

from test_session import _session_with, _three_sources
from app.project_io import load_project, save_project

pytestmark = pytest.mark.skipif(not placement_model_path().exists(), reason="no shipped placement model")


@pytest.fixture()
def session(rng, tmp_path):
    s = _session_with(_three_sources(rng), tmp_path / "mix.wav", tmp_path)
    assert s.placement == "model"
    return s


def _pans(s):
    return [round(p.pan, 6) for p in s.placements]


def test_renditions_differ_by_seed_and_remake_exactly(session):
    s = session
    s.new_rendition(0)
    a = list(s.placements)
    seeds = []
    for seed in range(1, 6):
        s.new_rendition(seed)
        seeds.append(_pans(s))
    assert any(np.max(np.abs(np.subtract(p, _pans_of(a)))) > 0.05 for p in seeds)   # clearly different
    s.recall(0)
    assert s.placements == a                                            # the same seed: the same scene
    assert all(not p.pinned for p in a)
    assert s.renditions[0].placement == "model" and s.renditions[0].variety == 0.0


def _pans_of(placements):
    return [round(p.pan, 6) for p in placements]


def test_pinned_source_keeps_its_place_and_others_are_sampled(session):
    s = session
    s.new_rendition(0)
    s.set_placement(1, s.placements[1].moved(-0.8, 0.5))
    s.new_rendition(1)
    assert s.placements[1] == Placement(-0.8, 0.5, pinned=True)
    assert all(not s.placements[i].pinned for i in (0, 2))


def test_auto_trajectory_sits_at_the_proposed_place(session):
    s = session
    s.new_rendition(3, variety=1.0)
    for i, p in enumerate(s.placements):
        pan_t = iid_to_pan(s.renders[i].iid_t)
        w = s.renders[i].energy.sum(axis=0)
        assert abs(float(np.average(pan_t, weights=w[:len(pan_t)])) - p.pan) < 0.1


def test_variety_is_saved_and_checked(session):
    s = session
    s.new_rendition(2, variety=0.7)
    r = s.renditions[-1]
    assert r.variety == 0.7 and Rendition.from_dict(r.to_dict()) == r
    with pytest.raises(ParameterError):
        s.new_rendition(4, variety=1.5)
    with pytest.raises(ParameterError):
        s.new_rendition(4, placement="nowhere")
    # a project written before the placement model (no "placement") was placed by the mean projection
    old = {"seed": 1, "model": "decorr", "temperature": None, "guidance": None}
    assert Rendition.from_dict(old).placement == "mean"


def test_mean_placement_is_the_old_projection(session):
    from core.placement import seed_placements
    s = session
    s.new_rendition(0, placement="mean")
    energies = np.stack([r.energy for r in s.renders])
    assert s.placements == seed_placements(s.predict(s.renditions[-1]), energies, previous=None)


def test_reset_returns_to_the_proposal(session):
    s = session
    s.new_rendition(5)
    proposal = s.placements[2]
    s.set_placement(2, proposal.moved(0.9, 0.9))
    s.reset_placement(2)
    assert s.placements[2] == proposal
    s.undo.undo()
    assert s.placements[2] == replace(proposal, pan=0.9, width=0.9, pinned=True)


def test_project_remakes_places_sampled_in_another_context_exactly(rng, tmp_path):
    """A project re-makes the places it saved, not a fresh sample: a source pinned after the
    rendition, and one reset while another was pinned, were sampled in contexts a reload cannot
    repeat; their auto renders must still sit where the project says (the archivist's exact re-render)."""
    from app.session import Session
    from test_session import _three_sources
    rec = tmp_path / "mix.wav"
    import soundfile as sf
    sf.write(str(rec), np.sum(_three_sources(rng), axis=0).astype(np.float32), 44100, subtype="FLOAT")
    s = Session()
    s.open(rec)
    s.model = "decorr"
    s.separate("formation", {"n_sources": 3})
    s.new_rendition(4, variety=1.0)
    n = len(s.placements)
    s.set_placement(0, s.placements[0].moved(-0.9, 0.2))        # pinned after the rendition
    s.set_placement(n - 1, s.placements[n - 1].moved(0.9, 0.8))
    s.reset_placement(n - 1)                                    # re-sampled with source 0 pinned
    expected = s.render()
    proj = save_project(s, tmp_path / "p.soundstage.json")
    again = load_project(proj)
    assert again.placements == s.placements
    for a, b, p in zip(again.renders, s.renders, s.placements):
        if not p.pinned:                                        # what is heard of an auto source
            assert np.array_equal(a.auto, b.auto)
    assert np.array_equal(again.render(), expected)
