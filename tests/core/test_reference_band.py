"""Per-band detail following a stereo reference's image (issue 27): core.reference.follow_band_image
and the transport of core.models.reference_match on known scenes."""
import numpy as np
import pytest

from core.bands import N_BANDS
from core.models.reference_match import ReferenceMatcher
from core.pan import iid_to_pan, pan_to_iid, source_weights
from core.reference import UNSURE_PAN, follow_band_image

T = 40


def _scene(rng, wander):
    """Two sources' band energies and tile IIDs around pans 0.2 / -0.3 whose tiles wander by
    ``wander`` [shape=(34,)] from frame to frame."""
    e = rng.uniform(0.5, 1.5, size=(2, N_BANDS, T))
    e[0, 20:] *= 1e-3                     # source 0 low, source 1 high
    e[1, :14] *= 1e-3
    pan = np.array([0.2, -0.3])[:, None, None] + wander[None, :, None] * rng.standard_normal((2, N_BANDS, T))
    return e, pan_to_iid(np.clip(pan, -1, 1)).astype(np.float32)


def _band_means(iid, e):
    w = source_weights(e)
    p = iid_to_pan(iid.astype(np.float64))
    return (w * p).sum(2) / w.sum(2), (w * p).sum((1, 2)) / w.sum((1, 2))


def test_no_confidence_leaves_the_tiles_as_they_are():
    e, iid = _scene(np.random.default_rng(0), np.full(N_BANDS, 0.2))
    out = follow_band_image(iid, e, np.ones((2, N_BANDS)) * 0.3, np.zeros(2))
    assert np.allclose(out, iid, atol=1e-3)


def test_sure_bands_stay_and_unsure_bands_follow_keeping_the_place():
    wander = np.where(np.arange(N_BANDS) % 2 == 0, 0.0, 0.4)       # even bands: the model holds still
    e, iid = _scene(np.random.default_rng(1), wander)
    offsets = np.zeros((2, N_BANDS))
    offsets[:, 1::4], offsets[:, 3::4] = 0.25, -0.25              # the reference: odd bands alternate
    before, place = _band_means(iid, e)
    out = follow_band_image(iid, e, offsets, np.ones(2))
    after, place2 = _band_means(out, e)
    assert np.allclose(place2, place, atol=5e-3)       # each source stays on its place (tiles clip at the edges)
    assert np.allclose(after[:, 0::2] - place2[:, None], before[:, 0::2] - place[:, None], atol=0.02)
    odd = after[:, 1::2] - place2[:, None]
    target = offsets[:, 1::2]
    # the unsure bands moved most of the way to the reference's offsets (u^2 / (u^2 + 0.2^2) ~ 0.8)
    err_before = np.abs(before[:, 1::2] - place[:, None] - target).mean()
    assert np.abs(odd - target).mean() < 0.25 * err_before
    # frame-to-frame detail inside a band is kept: every tile of a band moved alike
    p0, p1 = iid_to_pan(iid.astype(np.float64)), iid_to_pan(out.astype(np.float64))
    ok = (np.abs(p0) < 0.95) & (np.abs(p1) < 0.95)                   # away from the stage's edges
    d = p1 - p0
    for s in range(2):
        for b in range(N_BANDS):
            v = d[s, b][ok[s, b]]
            assert len(v) == 0 or np.ptp(v) < 1e-4


def test_transport_takes_the_counterparts_place_and_band_image():
    """Two reference sources, low left and high right: a recording source like the low one takes its
    place and its per-band pans; a reference whose mixture sounds unlike the recording's is
    followed loosely (its deviation grows past the gate)."""
    prof = np.full((2, N_BANDS), -6.0)
    prof[0, :10], prof[1, 24:] = np.log10(1 / 10), np.log10(1 / 10)
    feats = np.zeros((2, 43))
    feats[:, :N_BANDS] = prof
    feats[:, N_BANDS] = np.log10(0.5)
    band_pan = np.zeros((2, N_BANDS))
    band_pan[0, :10] = np.linspace(-0.8, -0.4, 10)
    band_pan[1, 24:] = 0.6
    m = ReferenceMatcher(temperature=0.1, share_power=1.0, sigma=0.03, gate_max=0.3)
    mix = np.zeros(36)
    mix[:N_BANDS] = np.log10(np.full(N_BANDS, 1 / N_BANDS))
    got = m.match(feats[::-1], mix, feats, mix, [0.5, 0.5], [-0.6, 0.6], [0.1, 0.3], band_pan)
    assert got.mu[1, 0] == pytest.approx(-0.6, abs=0.01) and got.mu[0, 0] == pytest.approx(0.6, abs=0.01)
    assert got.mu[1, 1] == pytest.approx(0.1, abs=0.01)
    assert np.allclose(got.band[1, :10], band_pan[0, :10], atol=0.01)
    assert got.gate < 0.01 and np.allclose(got.sigma[:, 0], 0.03) and np.allclose(got.confidence, 1.0)
    other = np.zeros((1, 43))
    other[0, :N_BANDS] = np.log10(np.full(N_BANDS, 1 / N_BANDS))      # a flat profile: no counterpart
    low = np.zeros(36)
    low[:N_BANDS] = prof[0]                                             # the reference: low only
    far = m.match(other, mix, feats[:1], low, [1.0], [-0.6], [0.1], band_pan[:1])
    assert far.gate > 0.3 and not far.followed and far.confidence[0] == 0.0


def test_tiers_close_loose_and_not_followed():
    """Past ``gate_max`` and up to ``loose_gate`` the reference is followed loosely: its places with
    the wide deviation, no per-band detail (confidence 0); beyond, not at all."""
    prof = np.full((1, N_BANDS), -6.0)
    prof[0, :10] = np.log10(1 / 10)
    feats = np.zeros((1, 43))
    feats[:, :N_BANDS] = prof
    flat = np.zeros(36)
    flat[:N_BANDS] = np.log10(np.full(N_BANDS, 1 / N_BANDS))
    low = np.zeros(36)
    low[:N_BANDS] = prof[0]
    m = ReferenceMatcher(temperature=0.05, sigma=0.03, width_sigma=0.2, gate_max=0.3, loose_gate=0.8,
                         loose_sigma=0.2)
    args = (feats, low, [1.0], [-0.6], [0.1])       # the reference: one low source, left
    close = m.match(feats, low, *args)
    assert close.tier == "close" and close.followed and np.allclose(close.sigma, [[0.03, 0.2]])
    assert close.confidence[0] == 1.0
    # the flat mixture against a low one: Hellinger distance sqrt(1 - sum_b sqrt(p_b q_b)), about 0.67
    q = 10.0 ** prof[0] / (10.0 ** prof[0]).sum()
    gate = np.sqrt(1 - np.sqrt(q / N_BANDS).sum())
    loose = m.match(feats, flat, *args)
    assert loose.gate == pytest.approx(gate, abs=1e-3) and 0.3 < loose.gate < 0.8
    assert loose.tier == "loose" and loose.followed and np.allclose(loose.sigma, [[0.2, 0.2]])
    assert loose.confidence[0] == 0.0 and loose.mu[0, 0] == pytest.approx(-0.6, abs=1e-6)
    off = ReferenceMatcher(temperature=0.05, gate_max=0.3, loose_gate=0.5).match(feats, flat, *args)
    assert off.tier == "" and not off.followed and off.sigma[0, 0] >= 1.0
    assert ReferenceMatcher(temperature=0.05, gate_max=0.3).match(feats, flat, *args).tier == ""   # no loose tier


def test_following_a_source_at_a_time_gives_the_whole_array_formulas_bits(rng):
    """follow_band_image works a source at a time (an hour's float64 arrays of every source at once were
    hundreds of MB); the tiles are bit for bit those of the formulas over the whole array."""
    s, t = 5, 1300
    e = (rng.gamma(0.5, 1.0, (s, 34, t)) * (rng.uniform(size=(s, 34, t)) > 0.2)).astype(np.float32)
    iid = rng.normal(0, 6, (s, 34, t)).astype(np.float32)
    offsets, conf = rng.normal(0, 0.2, (s, 34)), rng.uniform(0, 1, s)
    w = source_weights(np.maximum(e.astype(np.float64), 0.0))
    tiles = iid_to_pan(iid.astype(np.float64))
    wb, wt = np.maximum(w.sum(axis=2), 1e-30), np.maximum(w.sum(axis=(1, 2)), 1e-30)
    mean_b = (w * tiles).sum(axis=2) / wb
    place = (w * tiles).sum(axis=(1, 2)) / wt
    u2 = (w * (tiles - mean_b[..., None]) ** 2).sum(axis=2) / wb
    alpha = conf[:, None] * u2 / (u2 + UNSURE_PAN ** 2)
    moved = tiles + (alpha * (offsets - (mean_b - place[:, None])))[..., None]
    moved += (place - (w * moved).sum(axis=(1, 2)) / wt)[:, None, None]
    want = pan_to_iid(np.clip(moved, -1.0, 1.0)).astype(np.float32)
    assert np.array_equal(follow_band_image(iid, e, offsets, conf), want)
