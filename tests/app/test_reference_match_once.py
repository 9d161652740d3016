"""A rendition following a reference matches the reference to its sources once (issue 27 review
mend): the proposal, the per-band detail and the sides read one match (:func:`app.reference.scene_match`),
and what they make is what separate matches made (bit-identical)."""
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from app import proposal
from app import reference as app_reference
from core.models.reference_match import ReferenceMatcher
from core.models.placement_features import mix_features, source_features
from core.reference import band_image, decides_sides, match_scene, propose_with_reference
from core.renderer import auto_renders
from core.detail import load_detail
from test_reference import pytestmark, scene, recording  # noqa: F401 (the skip mark, fixtures)
from test_reference_session import _files, _following


@pytest.fixture
def matches(monkeypatch):
    """Counts the matcher's matches (the cache emptied first)."""
    calls = []
    real = ReferenceMatcher.match

    def counted(self, *a, **kw):
        calls.append(1)
        return real(self, *a, **kw)
    monkeypatch.setattr(ReferenceMatcher, "match", counted)
    app_reference._MATCHES.clear()
    return calls


def test_a_rendition_matches_its_reference_once(tmp_path, matches):
    rec, ref = _files(tmp_path)
    s = _following(rec, ref, seeds=())
    del matches[:]                                     # following the file judged it (the notice): not a rendition
    s.new_rendition(0)
    assert len(matches) == 1                           # proposal, per-band image and sides: one match
    for seed in (1, 2, 3):
        s.new_rendition(seed)
    assert len(matches) <= 4                           # at most once per rendition (the same sources: once)
    r = s.renditions[s.current]
    app_reference._MATCHES.clear()
    del matches[:]
    places = proposal.propose(r, s.renders, s._params[r.ps_key], [], s.sources)
    proposal.render_around(r, [replace(sr) for sr in s.renders], s._params[r.ps_key], places,
                           mono_compatible=False, pairs=False)
    assert len(matches) == 1


def test_a_rendition_is_what_separate_matches_made(tmp_path):
    """Its tiles equal those made with the per-band image and sides matched on their own (the
    path before the mend), for a reference each way round (the mirrored scene's match is the
    match mirrored, to the bit)."""
    rec, ref = _files(tmp_path)
    s = _following(rec, ref, seeds=())
    energies = np.stack([sr.energy for sr in s.renders])
    for scene in (s.reference, s.reference.mirrored()):
        s.reference = scene
        for seed in (0, 1, 2):
            s.new_rendition(seed)
            r = s.renditions[s.current]
            fresh = [replace(sr) for sr in s.renders]
            params = s._params[r.ps_key]
            centres = np.array([(p.pan, p.width) for p in s.placements])
            cal = load_detail(r.model)
            cal = cal and cal.for_rendition(seed, mirror=not decides_sides(energies, scene, seed=seed))
            auto_renders(fresh, params, centres, mono_compatible=s.mono_compatible, pairs=False, detail=cal,
                         band_image=band_image(energies, scene, seed=seed))
            for a, b in zip(fresh, s.renders):
                assert np.array_equal(a.tiles[0], b.tiles[0]) and np.array_equal(a.tiles[1], b.tiles[1])


def test_the_mirrored_match_is_the_match_mirrored_and_proposals_equal(scene, recording):  # noqa: F811
    """What :func:`core.reference.place_features` did before (matching the mirrored pans itself) and
    what it does now (mirroring the one match) give equal arrays; the proposal with the match given
    equals the one without."""
    e = np.maximum(recording.astype(np.float64), 0.0)
    feats, mix = source_features(e), mix_features(e)
    for sc in (scene, scene.mirrored()):
        matcher, m = match_scene(recording, sc)
        old = matcher.match(feats, mix, np.array(sc.feats), np.array(sc.mix), np.array(sc.share),
                            -np.array(sc.pan), np.array(sc.width), -np.array(sc.band_pan))
        assert np.array_equal(old.mu, m.mu * [-1.0, 1.0]) and np.array_equal(old.band, -m.band)
        assert np.array_equal(old.sigma, m.sigma) and old.gate == m.gate and old.tier == m.tier
        for seed in range(4):
            for variety in (0.0, 0.4):
                assert np.array_equal(propose_with_reference(recording, sc, seed=seed, variety=variety),
                                      propose_with_reference(recording, sc, seed=seed, variety=variety,
                                                             match=(matcher, m)))
        y = propose_with_reference(recording, sc, seed=0, match=(matcher, m))
        side = 1.0 if sc is scene else -1.0
        assert side * y[0, 0] < -0.3 and side * y[1, 0] > 0.3       # what the existing tests check, both ways


def test_the_gallery_and_the_renditions_share_the_cache(scene, recording, matches):  # noqa: F811
    session = SimpleNamespace(renders=[SimpleNamespace(energy=e) for e in recording],
                              settings=SimpleNamespace(models_dir=None))
    for seed in range(4):
        app_reference.rendition_follows(session, SimpleNamespace(reference=scene, seed=seed, placement="model"))
    assert len(matches) == 1
    matcher, m = app_reference.scene_match(scene, [sr.energy for sr in session.renders])
    assert len(matches) == 1                                               # the gallery's match, kept
    app_reference.scene_match(scene, [e.copy() for e in recording])         # other sources: matched again
    assert len(matches) == 2
    assert np.array_equal(m.band, match_scene(recording, scene)[1].band)
