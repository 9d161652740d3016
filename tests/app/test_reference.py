"""A stereo reference guides the proposal (issue 27): the scene, the matcher, the product with the
placement model, mirroring, pins, a mono reference, projects without the reference file."""
import json

import numpy as np
import pytest
import soundfile as sf

from conftest import pan_mono
from core.errors import ParameterError
from core.models.placement import load_placement_model, placement_model_path
from core.models.placement_features import mix_features, source_features
from core.models.reference_match import ReferenceMatcher, matcher_path
from core.placement import Placement, propose
from core.ps import band_energy
from core.reference import MonoReference, ReferenceScene, analyse_reference, place_features, propose_with_reference
from core.stft import stft
from separation.base import Source
from test_session import _session_with, _three_sources

pytestmark = pytest.mark.skipif(not (placement_model_path().exists() and matcher_path().exists()),
                                reason="no shipped placement model or reference matcher")

BASS_LEFT, LEAD_RIGHT = 12.0, -12.0      # IID (dB, L over R) of the reference's bass and lead


def _reference(rng, swap=False, seconds=6.0):
    """A reference: a bass-like source left, a bright lead right, hats in the middle; its stems."""
    stems = _three_sources(rng, seconds)
    stereo = pan_mono(stems[0], BASS_LEFT) + pan_mono(stems[1], LEAD_RIGHT) + pan_mono(stems[2], 0.0)
    return (stereo[:, ::-1].copy() if swap else stereo), stems


def _given(stems):
    return lambda mono: [Source(f"s{i}", s, "#808080") for i, s in enumerate(stems)]


@pytest.fixture(scope="module")
def scene():
    stereo, stems = _reference(np.random.default_rng(5))
    return analyse_reference(stereo, _given(stems), name="ref.wav", separator="custom")


@pytest.fixture(scope="module")
def recording():
    """Other notes and other hats of the same three kinds of source: their band energies."""
    stems = _three_sources(np.random.default_rng(9), 4.0)
    return np.stack([band_energy(stft(s)) for s in stems])


def test_scene_measures_the_reference(scene):
    assert scene.n == 3
    assert scene.pan[0] < -0.5 and scene.pan[1] > 0.5 and abs(scene.pan[2]) < 0.05
    assert max(scene.width) < 0.05                             # amplitude panning: coherent
    assert abs(sum(scene.share) - 1) < 1e-6
    back = ReferenceScene.from_dict(json.loads(json.dumps(scene.to_dict())))
    assert back == scene and back.id == scene.id               # JSON keeps it exactly


def test_bass_goes_left_and_lead_right_like_the_reference(scene, recording):
    for seed in range(4):
        y = propose_with_reference(recording, scene, seed=seed)
        assert y[0, 0] < -0.3, (seed, y)                       # the bass-like source: left
        assert y[1, 0] > 0.3, (seed, y)                        # the bright lead: right
        assert y[0, 0] < y[2, 0] < y[1, 0] or abs(y[2, 0]) < 0.35


def test_without_reference_the_sides_are_not_those(recording):
    """The placement model alone cannot know sides: over seeds the bass is not always left."""
    sides = {np.sign(propose(recording, seed=s)[0].pan) for s in range(8)}
    assert len(sides) == 2


def test_swapped_channels_mirror_the_proposal(recording):
    stereo, stems = _reference(np.random.default_rng(5))
    a = analyse_reference(stereo, _given(stems))
    b = analyse_reference(stereo[:, ::-1].copy(), _given(stems))
    assert np.allclose(b.pan, -np.asarray(a.pan), atol=1e-6) and np.allclose(b.width, a.width, atol=1e-6)
    for seed in range(3):
        ya = propose_with_reference(recording, a, seed=seed)
        yb = propose_with_reference(recording, b, seed=seed)
        assert np.allclose(yb[:, 0], -ya[:, 0], atol=1e-4) and np.allclose(yb[:, 1], ya[:, 1], atol=1e-4)
        ym = propose_with_reference(recording, a.mirrored(), seed=seed)
        assert np.array_equal(ym[:, 0], -ya[:, 0]) and np.array_equal(ym[:, 1], ya[:, 1])   # exactly


def test_pinned_sources_win(scene, recording):
    pinned = Placement(0.9, 0.4, pinned=True)                  # the bass pinned right, against the reference
    out = propose(recording, seed=1, previous=[pinned, Placement(), Placement()], reference=scene)
    assert out[0] == pinned
    assert out[1].pan > 0.3 and not out[1].pinned               # the lead still follows the reference
    free = propose(recording, seed=1, reference=scene)
    assert free[0].pan < -0.3


def test_variety_widens_around_the_reference(scene, recording):
    calm = np.array([propose_with_reference(recording, scene, seed=s)[:, 0] for s in range(6)])
    bold = np.array([propose_with_reference(recording, scene, seed=s, variety=1.0)[:, 0] for s in range(6)])
    assert bold.std(axis=0).mean() > calm.std(axis=0).mean()


def test_mono_reference_is_said_in_one_line():
    stems = _three_sources(np.random.default_rng(5), 2.0)
    mono = np.sum(stems, axis=0)
    with pytest.raises(MonoReference) as e:
        analyse_reference(np.stack([mono, mono], axis=1), _given(stems), name="mono.wav")
    assert "\n" not in str(e.value) and "mono.wav is mono" in str(e.value)
    near = np.stack([mono, mono * 0.999], axis=1)               # side 66 dB under mid
    with pytest.raises(MonoReference, match="near-mono"):
        analyse_reference(near, _given(stems), name="near.wav")


def test_scene_refuses_bad_values(scene):
    d = scene.to_dict()
    d["pan"][0] = 2.0
    with pytest.raises(ParameterError):
        ReferenceScene.from_dict(d)
    d = scene.to_dict()
    d["feats"] = d["feats"][:2]
    with pytest.raises(ParameterError):
        ReferenceScene.from_dict(d)


def test_a_loose_reference_gives_its_layout_either_way_round(scene, recording):
    """Followed loosely with mirroring (a reference only partly like the recording): every proposal
    keeps the reference's layout (bass and lead on opposite sides, away from the centre), on its
    sides or mirrored by seed; without mirroring, always on its sides."""
    feats, mix = source_features(recording), mix_features(recording)
    energy = recording.sum(axis=(1, 2))
    model = load_placement_model()

    def proposals(mirror):
        m = ReferenceMatcher(temperature=0.05, gate_max=-1.0, loose_gate=2.0, loose_sigma=0.05, loose_mirror=mirror)
        assert m.match(feats, mix, np.array(scene.feats), np.array(scene.mix), np.array(scene.share),
                       np.array(scene.pan), np.array(scene.width)).tier == "loose"
        return np.array([place_features(feats, mix, energy, scene, model=model, matcher=m, seed=s)
                         for s in range(12)])

    ys = proposals(1.0)
    bass, lead = ys[:, 0, 0], ys[:, 1, 0]
    assert np.all(np.abs(bass) > 0.3) and np.all(np.abs(lead) > 0.3)
    assert np.all(np.sign(bass) == -np.sign(lead))
    assert 0 < (bass < 0).sum() < len(bass)                    # both ways round over the seeds
    kept = proposals(0.0)
    assert np.all(kept[:, 0, 0] < -0.3) and np.all(kept[:, 1, 0] > 0.3)


def test_the_reference_decides_the_sides_only_when_followed_closely(scene, recording):
    """A followed reference fixes the sides (the chain does not mirror its renditions' detail); one
    the gate leaves out does not (its renditions lean either way by seed, places and detail alike)."""
    from dataclasses import replace
    from core.reference import decides_sides, followed
    assert followed(recording, scene)[0] == "close" and decides_sides(recording, scene)
    bright = list(scene.mix)
    bright[:34] = [-6.0] * 30 + [np.log10(0.25)] * 4          # a mixture all in the top four bands
    far = replace(scene, mix=tuple(bright))
    assert followed(recording, far)[0] == "" and not decides_sides(recording, far)


def test_a_hedged_reference_is_followed_by_some_renditions_detail_and_gallery_alike(scene, recording, tmp_path):
    """A matcher whose gate is unsure of this reference (hedged, half the renditions): seeds 0, 1 of
    every four follow it (places, per-band image, the sides), the others not at all; the app says so
    per rendition (what the gallery shows) and once in the notice."""
    from types import SimpleNamespace
    from app.reference import rendition_follows, unlike_notice
    from core.reference import band_image, decides_sides, followed, follows
    gate = followed(recording, scene)[1]
    shipped = ReferenceMatcher.load(matcher_path()).params()
    ReferenceMatcher(**{**shipped, "gate_max": gate - 0.02, "hedge_gate": gate + 0.02, "hedge_follow": 0.5}).save(
        tmp_path / "reference-match.json")
    assert followed(recording, scene, folder=tmp_path)[0] == "hedged"
    session = SimpleNamespace(renders=[SimpleNamespace(energy=e) for e in recording],
                              settings=SimpleNamespace(models_dir=tmp_path))
    for seed in range(8):
        yes = seed % 4 in (0, 1)
        assert follows(recording, scene, seed, folder=tmp_path) is yes
        assert decides_sides(recording, scene, seed=seed, folder=tmp_path) is yes
        assert band_image(recording, scene, seed=seed, folder=tmp_path)[1].any() is np.bool_(yes)
        r = SimpleNamespace(reference=scene, seed=seed, placement="model")
        assert rendition_follows(session, r) is yes
        assert rendition_follows(session, SimpleNamespace(reference=None, seed=seed, placement="model")) is False
    assert "followed by some renditions" in unlike_notice(session, scene)
    assert all(follows(recording, scene, s) for s in range(4))        # the shipped file: followed closely
