"""A reference the matcher's gate is unsure of is hedged (issue 27, session 10): some renditions follow
it closely, the others are the placement model's own proposals for the same seed
(core.models.reference_match.ReferenceMatcher.follows / for_rendition, core.reference.place_features)."""
import json
from dataclasses import replace

import numpy as np
import pytest

from core.bands import N_BANDS
from core.errors import ParameterError
from core.models.placement import load_placement_model, placement_model_path
from core.models.reference_match import Match, ReferenceMatcher
from core.reference import ReferenceScene, place_features
from test_reference_renditions import _feats

needs_model = pytest.mark.skipif(not placement_model_path().exists(), reason="no shipped placement model")


def _scene():
    """A reference of the same two kinds of source, its mixture mostly low: bass left, lead right."""
    feats, mix = _feats(0.9)
    return ReferenceScene(name="ref", sha256="", separator="", feats=tuple(map(tuple, feats)), mix=tuple(mix),
                          pan=(-0.6, 0.7), width=(0.2, 0.4), share=(0.6, 0.4))


def _gate(feats, mix, scene):
    m = ReferenceMatcher().match(feats, mix, np.array(scene.feats), np.array(scene.mix), np.array(scene.share),
                                 np.array(scene.pan), np.array(scene.width))
    return m.gate


def test_which_seeds_follow_a_hedged_match():
    m = Match(np.zeros((1, 2)), np.full((1, 2), 0.03), np.zeros((1, N_BANDS)), np.ones(1), 0.3, True, "hedged")
    seeds = range(12)
    assert [s for s in seeds if ReferenceMatcher(hedge_follow=0.5).follows(m, s)] == [0, 1, 4, 5, 8, 9]
    assert [s for s in seeds if ReferenceMatcher(hedge_follow=0.25).follows(m, s)] == [0, 4, 8]
    assert [s for s in seeds if ReferenceMatcher(hedge_follow=0.75).follows(m, s)] == [0, 1, 3, 4, 5, 7, 8, 9, 11]
    for k in range(9):          # any four consecutive seeds: the same share, one of each leaning left to the model
        assert sum(ReferenceMatcher(hedge_follow=0.5).follows(m, s) for s in range(k, k + 4)) == 2
    close = Match(m.mu, m.sigma, m.band, m.confidence, 0.1, True, "close")
    off = Match(m.mu, np.ones((1, 2)), m.band, np.zeros(1), 0.9, False, "")
    assert all(ReferenceMatcher(hedge_follow=0.5).follows(close, s) for s in seeds)
    assert not any(ReferenceMatcher(hedge_follow=0.5).follows(off, s) for s in seeds)
    got = ReferenceMatcher(hedge_follow=0.5).for_rendition(m, 2)
    assert not got.followed and got.tier == "" and not got.confidence.any()
    assert ReferenceMatcher(hedge_follow=0.5).for_rendition(m, 1).tier == "close"
    with pytest.raises(ParameterError):
        ReferenceMatcher(hedge_follow=1.5)


def test_tiers_by_gate_and_an_old_file_has_no_hedged_tier(tmp_path):
    feats, mix = _feats()
    scene = _scene()
    g = _gate(feats, mix, scene)
    assert 0.05 < g < 0.5

    def tier(**kw):
        return ReferenceMatcher(**kw).match(feats, mix, np.array(scene.feats), np.array(scene.mix),
                                            np.array(scene.share), np.array(scene.pan), np.array(scene.width)).tier
    assert tier(gate_max=g - 0.02, hedge_gate=g + 0.02) == "hedged"
    assert tier(gate_max=g + 0.02, hedge_gate=g + 0.1) == "close"
    assert tier(gate_max=g - 0.1, hedge_gate=g - 0.02) == ""
    assert tier(gate_max=g - 0.1, hedge_gate=g - 0.02, loose_gate=g + 0.1) == "loose"
    old = tmp_path / "reference-match.json"
    old.write_text(json.dumps({"format": "soundstage-reference-match", "params": {"gate_max": g - 0.02}}))
    m = ReferenceMatcher.load(old)
    assert m.hedge_gate == 0.0 and tier(**m.params()) == ""


@needs_model
@pytest.mark.parametrize("spread", [0.0, 0.4])
def test_a_hedged_reference_half_follows_and_half_is_the_model_alone(spread):
    """Seeds 0, 1, 4, 5 follow (equal to a matcher that follows this reference closely at any gate),
    seeds 2, 3, 6, 7 equal the placement model's proposal for the same seed; a gate well inside
    gate_max: every rendition follows; pinned sources stay in both."""
    feats, mix = _feats()
    scene = _scene()
    g = _gate(feats, mix, scene)
    model = load_placement_model()
    energy = np.array([2.0, 1.0])
    common = dict(temperature=0.05, share_power=0.5, sigma=0.03, width_sigma=0.2, spread=spread)
    hedged = ReferenceMatcher(gate_max=g - 0.05, hedge_gate=g + 0.05, hedge_follow=0.5, **common)
    inside = ReferenceMatcher(gate_max=g + 0.1, hedge_gate=g + 0.2, hedge_follow=0.5, **common)
    closely = ReferenceMatcher(gate_max=g + 0.1, **common)
    for known in (None, {1: (0.25, 0.3)}):
        follow, own = [], []
        for seed in range(8):
            y = place_features(feats, mix, energy, scene, model=model, matcher=hedged, seed=seed, known=known)
            near = place_features(feats, mix, energy, scene, model=model, matcher=closely, seed=seed, known=known)
            alone = model.sample(feats, mix, energy, seed=seed, known=known)
            assert np.array_equal(place_features(feats, mix, energy, scene, model=model, matcher=inside, seed=seed,
                                                 known=known), near), seed
            if seed % 4 in (0, 1):
                assert np.array_equal(y, near), seed
                follow.append(y)
            else:
                assert np.array_equal(y, alone), seed
                own.append(y)
            if known:
                assert tuple(y[1]) == (0.25, 0.3)
        follow, own = np.array(follow), np.array(own)
        assert np.all(follow[:, 0, 0] < -0.3)                   # the bass on the reference's side
        assert known or np.all(follow[:, 1, 0] > 0.3)
        assert not np.allclose(follow, own[:len(follow)])


def test_a_farther_hedged_band_is_followed_by_fewer_renditions(tmp_path):
    """Session 11: past ``hedge_gate`` and up to ``hedge_gate2`` a match is still hedged, but only
    ``hedge_follow2`` of the renditions follow it (1/4: seeds 0, 4, 8); up to ``hedge_gate`` the first
    share; past ``hedge_gate2`` none; without a first hedged band, no second; an older file has none."""
    bands = ReferenceMatcher(gate_max=0.2, hedge_gate=0.4, hedge_follow=0.5, hedge_gate2=0.6, hedge_follow2=0.25)
    seeds = range(12)

    def match(gate):
        return Match(np.zeros((1, 2)), np.full((1, 2), 0.03), np.zeros((1, N_BANDS)), np.ones(1), gate, True, "hedged")
    assert [s for s in seeds if bands.follows(match(0.3), s)] == [0, 1, 4, 5, 8, 9]
    assert [s for s in seeds if bands.follows(match(0.5), s)] == [0, 4, 8]
    assert bands.for_rendition(match(0.5), 1).tier == "" and bands.for_rendition(match(0.5), 4).tier == "close"
    feats, mix = _feats()
    scene = _scene()
    g = _gate(feats, mix, scene)

    def tier(m):
        return m.match(feats, mix, np.array(scene.feats), np.array(scene.mix), np.array(scene.share),
                       np.array(scene.pan), np.array(scene.width))
    far = ReferenceMatcher(gate_max=g - 0.1, hedge_gate=g - 0.05, hedge_follow=0.5, hedge_gate2=g + 0.05,
                           hedge_follow2=0.25)
    m = tier(far)
    assert m.tier == "hedged" and [s for s in range(8) if far.follows(m, s)] == [0, 4]
    assert tier(replace(far, hedge_gate2=g - 0.02)).tier == ""            # past the second band: not followed
    assert tier(replace(far, hedge_gate=0.0)).tier == ""                  # a second band needs a first
    with pytest.raises(ParameterError):
        ReferenceMatcher(hedge_follow2=-0.1)
    old = tmp_path / "reference-match.json"
    old.write_text(json.dumps({"format": "soundstage-reference-match", "params": {"hedge_gate": 0.4}}))
    assert ReferenceMatcher.load(old).hedge_gate2 == 0.0


@needs_model
def test_the_farther_band_proposals_are_the_close_ones_or_the_model_alone():
    feats, mix = _feats()
    scene = _scene()
    g = _gate(feats, mix, scene)
    model = load_placement_model()
    energy = np.array([2.0, 1.0])
    common = dict(temperature=0.05, share_power=0.5, sigma=0.03, width_sigma=0.2, spread=0.2)
    far = ReferenceMatcher(gate_max=g - 0.1, hedge_gate=g - 0.05, hedge_follow=0.5, hedge_gate2=g + 0.05,
                           hedge_follow2=0.25, **common)
    closely = ReferenceMatcher(gate_max=g + 0.1, **common)
    for seed in range(8):
        y = place_features(feats, mix, energy, scene, model=model, matcher=far, seed=seed)
        if seed % 4 == 0:
            assert np.array_equal(y, place_features(feats, mix, energy, scene, model=model, matcher=closely,
                                                    seed=seed)), seed
            assert y[0, 0] < -0.3                                  # the bass on the reference's side
        else:
            assert np.array_equal(y, model.sample(feats, mix, energy, seed=seed)), seed
