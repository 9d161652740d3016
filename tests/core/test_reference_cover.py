"""Renditions of a followed reference chosen together so that they cover the proposal's distribution
(issue 27, session 12): core.cover (the pool, the greedy choice, the kept blocks) and its use in
core.reference.place_features (ReferenceMatcher.cover)."""
import json

import numpy as np
import pytest

from core import cover
from core.bands import N_BANDS
from core.errors import ParameterError
from core.models.placement import load_placement_model, placement_model_path
from core.models.reference_match import ReferenceMatcher
from core.reference import ReferenceScene, place_features

needs_model = pytest.mark.skipif(not placement_model_path().exists(), reason="no shipped placement model")


def test_greedy_takes_the_medoid_first_then_the_draw_that_covers_the_rest():
    pans = np.array([[0.0], [0.1], [0.2], [5.0], [5.1]])
    # distances summed: 0.2 is nearest all (10.0 against 10.1, 10.5, 14.8, 15.3); then the far cluster:
    # adding 5.0 or 5.1 leaves 0.4 in all, the first of the tie is taken
    assert cover.greedy(pans, np.ones(1), 2) == [2, 3]
    assert cover.greedy(pans, np.ones(1), 9) == [2, 3, 0, 1, 4]        # never more than the pool
    # the weights decide which source's distance counts: source 1 is the one that differs here
    two = np.array([[0.0, 0.0], [0.0, 1.0], [0.0, 0.9], [9.0, 0.95]])
    assert cover.greedy(two, np.array([0.0, 1.0]), 1) == [2]


def test_the_pool_takes_one_counterpart_per_source_as_often_as_the_tempered_weights_say():
    mu = np.array([[0.1, 0.3], [-0.2, 0.5]])
    alt = np.array([[-0.6, 0.7], [0.4, -0.9]])
    w = np.array([[0.8, 0.2], [0.5, 0.5]])
    n = 4000
    got = cover.pool_means(mu, alt, w, n=n, spread=0.0, temperature=1.0, rng=np.random.default_rng(0))
    assert got.shape == (n, 2, 2)
    assert np.array_equal(got[:n // 2], np.repeat(mu[None], n // 2, axis=0))     # the transported places
    assert np.all(got[:, :, 1] == mu[None, :, 1])                                  # widths kept
    drawn = got[n // 2:, :, 0]
    assert set(np.unique(drawn[:, 0])) == {-0.6, 0.7} and set(np.unique(drawn[:, 1])) == {0.4, -0.9}
    tol = 4 * np.sqrt(0.25 / (n // 2))
    assert abs(np.mean(drawn[:, 0] == -0.6) - 0.8) < tol
    assert abs(np.mean(drawn[:, 1] == 0.4) - 0.5) < tol
    # temperature 4: the weights' fourth roots, 0.946 : 0.669
    hot = cover.pool_means(mu, alt, w, n=n, spread=0.0, temperature=4.0, rng=np.random.default_rng(1))
    assert abs(np.mean(hot[n // 2:, 0, 0] == -0.6) - 0.8 ** 0.25 / (0.8 ** 0.25 + 0.2 ** 0.25)) < tol
    # spread: every draw's pans scaled by one factor (its widths not)
    small = mu * [0.1, 1.0]         # (pans that no factor of these draws takes past the stage's edge)
    wide = cover.pool_means(small, None, None, n=n, spread=0.5, temperature=1.0, rng=np.random.default_rng(2))
    ratio = wide[:, 0, 0] / small[0, 0]
    assert np.allclose(wide[:, 1, 0] / small[1, 0], ratio) and np.all(wide[:, :, 1] == mu[None, :, 1])
    assert abs(np.std(np.log(ratio)) - 0.5) < 0.05


def test_a_block_is_made_once_and_kept():
    calls = []

    def make():
        calls.append(1)
        return np.arange(16.0).reshape(8, 1, 2)
    key = (np.ones(3), "x", 0)
    a = cover.chosen(key, make)
    b = cover.chosen((np.ones(3), "x", 0), make)
    assert a is b and len(calls) == 1 and not a.flags.writeable
    cover.chosen((np.ones(3), "x", 1), make)
    assert len(calls) == 2
    assert cover.block_of(0) == (0, 0) and cover.block_of(13) == (1, 5)


def test_the_matcher_file_says_how_big_the_pool_is(tmp_path):
    assert ReferenceMatcher().cover == 0            # off unless a file says so
    with pytest.raises(ParameterError):
        ReferenceMatcher(cover=4)                   # fewer draws than a block's renditions
    with pytest.raises(ParameterError):
        ReferenceMatcher(cover=100.5)
    with pytest.raises(ParameterError):
        ReferenceMatcher(cover=64, cover_temperature=0.0)
    f = tmp_path / "reference-match.json"
    ReferenceMatcher(cover=64, cover_temperature=2.0).save(f)
    m = ReferenceMatcher.load(f)
    assert m.cover == 64 and m.cover_temperature == 2.0
    f.write_text(json.dumps({"format": "soundstage-reference-match", "params": {"sigma": 0.05}}))
    assert ReferenceMatcher.load(f).cover == 0      # an older file: every rendition drawn on its own


def _profile(lo, hi):
    p = np.full(N_BANDS, -6.0)
    p[lo:hi] = np.log10(1.0 / (hi - lo))
    return p


def _ambiguous():
    """A recording of a low source and a high one; a reference with a low source in the centre and
    two high sources of the very same timbre, one left and one right: which of them is the
    recording's high source's counterpart the reference cannot say."""
    rec = np.zeros((2, 43))
    rec[0, :N_BANDS], rec[1, :N_BANDS] = _profile(0, 10), _profile(24, 34)
    rec[:, N_BANDS] = np.log10(0.5)
    ref = np.zeros((3, 43))
    ref[0, :N_BANDS], ref[1, :N_BANDS], ref[2, :N_BANDS] = _profile(0, 10), _profile(24, 34), _profile(24, 34)
    share = np.array([0.5, 0.3, 0.2])
    ref[:, N_BANDS] = np.log10(share)

    def mix(feats, shares):
        return np.concatenate([np.log10(np.maximum((shares[:, None] * 10.0 ** feats[:, :N_BANDS]).sum(0), 1e-6)),
                               [np.log10(len(shares)), 0.0]])
    scene = ReferenceScene(name="ref", sha256="", separator="", feats=tuple(map(tuple, ref)),
                           mix=tuple(mix(ref, share)), pan=(0.0, -0.6, 0.6), width=(0.2, 0.3, 0.3),
                           share=tuple(share))
    return rec, mix(rec, np.array([0.5, 0.5])), np.array([1.0, 1.0]), scene


def _props(scene, seeds, **kw):
    feats, mix, energy, _ = _ambiguous()
    model = load_placement_model()
    known = kw.pop("known", None)
    matcher = ReferenceMatcher(gate_max=1.0, **kw)
    return np.array([place_features(feats, mix, energy, scene, model=model, matcher=matcher, seed=s, known=known)
                     for s in seeds])


@needs_model
def test_covering_renditions_take_each_reading_of_an_ambiguous_counterpart():
    """Without the cover every rendition puts the high source between its two possible counterparts
    (their weighted mean, 0.6 * 0.3 / 0.5 - 0.6 * 0.2 / 0.5 = 0.12); with it, some of the first eight
    put it left with one and some right with the other, and seed 0 (the medoid) stays the typical
    place, near the mean."""
    scene = _ambiguous()[3]
    alone = _props(scene, range(8))
    assert np.all(np.abs(alone[:, 1, 0] - (-0.12)) < 0.25), alone[:, 1, 0]     # (the mean is -0.12: left heavier)
    cov = _props(scene, range(8), cover=128, cover_temperature=1.0)
    high = cov[:, 1, 0]
    assert high.min() < -0.45 and high.max() > 0.45, high
    assert len({round(float(v), 6) for v in high}) == 8             # eight different renditions
    assert abs(high[0] - (-0.12)) < 0.3
    # the low source follows its one counterpart in the centre (a pool's rare draw of the product
    # sampler may be chosen too: it is what the other renditions leave least covered)
    assert np.sum(np.abs(cov[:, 0, 0]) < 0.1) >= 6, cov[:, 0, 0]


@needs_model
def test_covering_renditions_are_exact_mirrored_pinned_and_per_block():
    scene = _ambiguous()[3]
    kw = dict(cover=64, cover_temperature=2.0, spread=0.2)
    a = _props(scene, range(10), **kw)
    cover._cache.clear()
    assert np.array_equal(_props(scene, range(10), **kw), a)           # made again from nothing: the same bits
    assert not np.array_equal(a[8], a[0])                               # seed 8: the next block's first
    mirrored = _props(scene.mirrored(), range(10), **kw)
    assert np.array_equal(mirrored[:, :, 0], -a[:, :, 0]) and np.array_equal(mirrored[:, :, 1], a[:, :, 1])
    pinned = _props(scene, range(8), known={1: (0.9, 0.1)}, **kw)
    assert np.all(pinned[:, 1] == [0.9, 0.1])
    assert np.sum(np.abs(pinned[:, 0, 0]) < 0.1) >= 6, pinned[:, 0, 0]
