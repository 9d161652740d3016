"""Renditions that carry a followed reference's image differently wide (issue 27, session 9):
core.models.reference_match.ReferenceMatcher.for_rendition and its use in core.reference.place_features."""
import math

import numpy as np
import pytest

from core.bands import N_BANDS
from core.detail import detail_level
from core.errors import ParameterError
from core.models.reference_match import Match, ReferenceMatcher
from core.reference import ReferenceScene, place_features


def _feats(low=0.5):
    """Two sources, one low (bands 0-9) and one high (bands 24-33), equal shares; the mixture flat
    over the bands they fill, ``low`` of its energy in the low ones."""
    prof = np.full((2, N_BANDS), -6.0)
    prof[0, :10], prof[1, 24:] = np.log10(1 / 10), np.log10(1 / 10)
    feats = np.zeros((2, 43))
    feats[:, :N_BANDS] = prof
    feats[:, N_BANDS] = np.log10(0.5)
    mix = np.zeros(36)
    mix[:N_BANDS] = np.log10(np.maximum((np.array([[low], [1 - low]]) * 10.0 ** prof).sum(axis=0), 1e-6))
    return feats, mix


def _match(followed=True):
    return Match(np.array([[-0.3, 0.2], [0.9, 0.4]]), np.array([[0.03, 0.2]] * 2), np.zeros((2, N_BANDS)),
                 np.ones(2), 0.0, followed, "close" if followed else "")


def test_seed_zero_no_spread_and_other_tiers_keep_the_transported_places():
    m = _match()
    assert ReferenceMatcher(spread=0.5).for_rendition(m, 0) is m           # z = 0: the median rendition
    assert ReferenceMatcher(spread=0.0).for_rendition(m, 3) is m
    off = _match(followed=False)
    assert ReferenceMatcher(spread=0.5).for_rendition(off, 3) is off       # nothing followed, nothing scaled
    loose = Match(m.mu, m.sigma, m.band, np.zeros(2), 0.5, True, "loose")
    assert ReferenceMatcher(spread=0.5).for_rendition(loose, 3) is loose   # a loose tier: its own deviation


def test_a_rendition_scales_the_pans_by_its_quantile_and_keeps_the_widths():
    m = _match()
    got = ReferenceMatcher(spread=0.5).for_rendition(m, 1)
    c = math.exp(0.5 * -1.185)                                             # seed 1: z = -1.185, narrower
    assert detail_level(1) == pytest.approx(-1.185, abs=1e-3)
    assert np.allclose(got.mu[:, 0], [-0.3 * c, 0.9 * c], atol=2e-4)
    assert np.array_equal(got.mu[:, 1], m.mu[:, 1]) and np.array_equal(got.sigma, m.sigma)
    wide = ReferenceMatcher(spread=0.5).for_rendition(m, 4)                # z = 1.913: 2.6 times, clipped
    assert wide.mu[0, 0] == pytest.approx(-0.3 * math.exp(0.5 * detail_level(4))) and wide.mu[1, 0] == 1.0


def test_spread_out_of_range_is_refused():
    with pytest.raises(ParameterError):
        ReferenceMatcher(spread=-0.1)
    with pytest.raises(ParameterError):
        ReferenceMatcher(spread=2.5)


class _FlatModel:
    """A placement model whose density is one very wide component: the product is the matcher's Normal."""

    def densities(self, feats, mix, y, known):
        n, s = len(y), len(feats)
        return np.ones((n, s, 1)), np.zeros((n, s, 1, 2)), np.full((n, s, 1, 2), 100.0)


def test_proposals_follow_each_renditions_scale_and_a_mirrored_reference_mirrors_them():
    feats, mix = _feats()
    scene = ReferenceScene(name="ref", sha256="", separator="", feats=tuple(map(tuple, feats)), mix=tuple(mix),
                           pan=(-0.3, 0.5), width=(0.2, 0.4), share=(0.5, 0.5))
    m = ReferenceMatcher(temperature=0.05, sigma=1e-4, width_sigma=1e-4, gate_max=0.3, spread=0.4)
    for seed in range(4):
        y = place_features(feats, mix, np.ones(2), scene, model=_FlatModel(), matcher=m, seed=seed)
        c = math.exp(0.4 * detail_level(seed))
        assert np.allclose(y[:, 0], [-0.3 * c, 0.5 * c], atol=2e-3), seed
        assert np.allclose(y[:, 1], [0.2, 0.4], atol=2e-3)
        ym = place_features(feats, mix, np.ones(2), scene.mirrored(), model=_FlatModel(), matcher=m, seed=seed)
        assert np.allclose(ym[:, 0], -y[:, 0]) and np.allclose(ym[:, 1], y[:, 1])
