"""The source-level placement model: features, truth measurement, sampler and training."""
import numpy as np
import pytest

from core.bands import N_BANDS
from core.errors import ParameterError
from core.models.placement import PlacementConfig, PlacementModel
from training.placement_data import Scene
from training.train_placement import TrainPlacementConfig, train_placement
from core.models.placement_features import (N_MIX_FEATURES, N_SOURCE_FEATURES, mix_features, source_features,
                                            true_placement)
from core.placement import iid_to_pan, pan_to_iid, trajectories
from core.ps import PSParams
from core.stft import stft

TINY = {"d": 16, "layers": 1, "heads": 2, "components": 3, "dropout": 0.0}


def _energies(rng, kinds, frames=60):
    """Band energies [S, 34, T] of generated sources: "low" lives in bands 0-9, "high" in 20-33."""
    e = np.full((len(kinds), N_BANDS, frames), 1e-6)
    for i, k in enumerate(kinds):
        lo, hi = (0, 10) if k == "low" else (20, 34)
        e[i, lo:hi] = rng.uniform(0.5, 1.5, (hi - lo, frames)) * (4.0 if k == "low" else 1.0)
    return e


def _scene(rng, n_high=2):
    """A generated scene whose truth is spread: a centred "low" source and ``n_high`` "high" ones
    at +-0.6 (alternating sides, the first side random), widths 0.1 / 0.4."""
    kinds = ["low"] + ["high"] * n_high
    e = _energies(rng, kinds)
    side = rng.choice([-1.0, 1.0])
    pan = np.array([0.0] + [0.6 * side * (-1) ** k for k in range(n_high)], np.float32)
    width = np.array([0.1] + [0.4] * n_high, np.float32)
    return Scene(source_features(e), mix_features(e), pan, width, e.sum(axis=(1, 2)).astype(np.float32),
                 np.zeros(len(kinds), np.float32))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained for a few hundred steps on generated scenes (seconds on a CPU)."""
    rng = np.random.default_rng(0)
    train = [_scene(rng, n_high=int(rng.integers(1, 4))) for _ in range(64)]
    valid = [_scene(rng, n_high=2) for _ in range(16)]
    out = tmp_path_factory.mktemp("placement")
    cfg = TrainPlacementConfig(steps=300, batch=32, lr=5e-3, warmup=20, val_every=20, net=TINY)
    res = train_placement(cfg, train, valid, out, log=lambda s: None)
    return PlacementModel.load(out / "best.pt"), res, valid


def test_features_shapes_and_level_invariance(rng):
    e = _energies(rng, ["low", "high", "high"])
    f = source_features(e, [False, False, True])
    assert f.shape == (3, N_SOURCE_FEATURES) and f.dtype == np.float32
    np.testing.assert_allclose(source_features(e * 1000.0, [False, False, True]), f, atol=1e-4)
    assert f[:, -1].tolist() == [0.0, 0.0, 1.0]                     # residual flag
    shares = 10 ** f[:, N_BANDS]
    np.testing.assert_allclose(shares.sum(), 1.0, atol=1e-5)       # shares of the mixture's energy
    assert f[0, N_BANDS + 1] < 0.3 < f[1, N_BANDS + 1]              # centroid: low below high
    assert mix_features(e).shape == (N_MIX_FEATURES,)
    with pytest.raises(ParameterError):
        source_features(e[:, :10])


def test_true_placement_recovers_known_pans(rng):
    """Two sources in disjoint bands, panned by the constant-power law to known places."""
    n = 44100 * 2
    t = np.arange(n) / 44100
    a = 0.3 * np.sin(2 * np.pi * 220 * t)
    b = 0.2 * rng.standard_normal(n)
    from scipy.signal import butter, sosfilt
    b = sosfilt(butter(6, 4000, "hp", fs=44100, output="sos"), b)
    pans = (-0.5, 0.7)
    left = np.zeros(n)
    right = np.zeros(n)
    for x, p in zip((a, b), pans):
        th = (p + 1) * np.pi / 4
        left += np.cos(th) * x * np.sqrt(2)
        right += np.sin(th) * x * np.sqrt(2)
    specs = np.stack([stft(a.astype(np.float32)), stft(b.astype(np.float32))])
    tp = true_placement(specs, stft(left.astype(np.float32)), stft(right.astype(np.float32)))
    np.testing.assert_allclose(tp["pan"], pans, atol=0.03)
    assert np.all(tp["width"] < 0.02)                                # point sources
    assert tp["energy"][0] > 0 and tp["energy"][1] > 0


def test_sampling_is_deterministic_per_seed_and_in_range(rng):
    m = PlacementModel.new(PlacementConfig(**TINY), seed=1)
    sc = _scene(rng, n_high=3)
    for v in (0.0, 0.5, 1.0):
        a = m.sample(sc.feats, sc.mix, sc.energy, seed=7, variety=v)
        b = m.sample(sc.feats, sc.mix, sc.energy, seed=7, variety=v)
        np.testing.assert_array_equal(a, b)
        assert a.shape == (4, 2)
        assert np.all(np.abs(a[:, 0]) <= 1) and np.all((a[:, 1] >= 0) & (a[:, 1] <= 1))
    c = m.sample(sc.feats, sc.mix, sc.energy, seed=8)
    assert not np.array_equal(c, m.sample(sc.feats, sc.mix, sc.energy, seed=7))
    with pytest.raises(ParameterError):
        m.sample(sc.feats, sc.mix, sc.energy, variety=1.5)
    with pytest.raises(ParameterError):
        m.sample(sc.feats, sc.mix, sc.energy, known={9: (0.0, 0.0)})


def test_pinned_sources_are_context_and_kept(trained, rng):
    m, _, _ = trained
    sc = _scene(rng, n_high=2)
    for seed in range(6):
        y = m.sample(sc.feats, sc.mix, sc.energy, seed=seed, known={1: (0.6, 0.4), 0: (-0.9, 0.8)})
        assert tuple(y[1]) == (0.6, 0.4) and tuple(y[0]) == (-0.9, 0.8)
        assert abs(abs(y[2, 0]) - 0.6) < 0.15         # the free one is sampled, where high sources go


def test_training_lowers_the_loss(trained):
    _, res, _ = trained
    h = res["history"]
    assert h[-1]["valid"] < h[0]["valid"] - 0.5
    assert res["best"]["loss"] < h[0]["valid"]


def test_model_spreads_a_spread_scene(trained, rng):
    """Truth at +-0.6: the proposals must not all sit within +-0.05 of the centre, and the loud
    centred source stays near the centre."""
    m, _, valid = trained
    far = []
    for seed in range(8):
        sc = valid[seed]
        y = m.sample(sc.feats, sc.mix, sc.energy, seed=seed)
        far.append(np.abs(y[1:, 0]).min())
        assert abs(y[0, 0]) < 0.3
    assert np.median(far) > 0.3
    # both sides occur across seeds (mirror symmetry)
    firsts = [np.sign(m.sample(valid[0].feats, valid[0].mix, valid[0].energy, seed=s)[1, 0]) for s in range(16)]
    assert 1.0 in firsts and -1.0 in firsts


def test_variety_widens_the_spread_across_seeds(trained):
    m, _, valid = trained
    sc = valid[0]

    def spread(v):
        pans = np.array([m.sample(sc.feats, sc.mix, sc.energy, seed=s, variety=v)[:, 0] for s in range(24)])
        return float(np.abs(pans[:, 0]).mean())        # the centred source moves away with variety
    assert spread(1.0) > spread(0.0) + 0.1


def test_odd_seeds_mirror_the_scene_and_pan_spread_widens_variety_0_only(trained, monkeypatch):
    import core.detail
    import core.models.placement as pm
    m, _, valid = trained
    sc = valid[0]
    ys = {s: m.sample(sc.feats, sc.mix, sc.energy, seed=s) for s in range(6)}
    monkeypatch.setattr(core.detail, "MIRROR_ODD", False)       # before: mirrored when the seed's first draw < 1/2
    before = {s: m.sample(sc.feats, sc.mix, sc.energy, seed=s) for s in range(6)}
    e = np.asarray(sc.energy, np.float64)
    for s in range(6):
        lean = float(np.dot(e, ys[s][:, 0]))
        assert (lean < 0) == (s % 2 == 1) and lean != 0      # now: even seeds lean right, odd seeds left
        assert np.array_equal(np.abs(ys[s][:, 0]), np.abs(before[s][:, 0]))          # the same scene, or its mirror
        assert np.array_equal(ys[s][:, 1], before[s][:, 1])
    pinned = m.sample(sc.feats, sc.mix, sc.energy, seed=1, known={0: (0.3, 0.2)})
    monkeypatch.setattr(core.detail, "MIRROR_ODD", True)
    assert np.array_equal(m.sample(sc.feats, sc.mix, sc.energy, seed=1, known={0: (0.3, 0.2)}), pinned)  # context
    monkeypatch.setattr(pm, "PAN_SPREAD", 1.0)
    base = np.array([m.sample(sc.feats, sc.mix, sc.energy, seed=s)[:, 0] for s in range(16)])
    v1 = np.array([m.sample(sc.feats, sc.mix, sc.energy, seed=s, variety=1.0)[:, 0] for s in range(16)])
    monkeypatch.setattr(pm, "PAN_SPREAD", 2.0)
    wide = np.array([m.sample(sc.feats, sc.mix, sc.energy, seed=s)[:, 0] for s in range(16)])
    assert np.abs(wide[:, 0]).mean() > 1.5 * np.abs(base[:, 0]).mean()     # the centred source strays further
    assert np.array_equal(np.array([m.sample(sc.feats, sc.mix, sc.energy, seed=s, variety=1.0)[:, 0]
                                    for s in range(16)]), v1)    # variety 1 as before


def test_save_load_round_trip(tmp_path, rng):
    m = PlacementModel.new(PlacementConfig(**TINY), seed=2)
    m.save(tmp_path / "p.pt", {"note": "test"})
    m2 = PlacementModel.load(tmp_path / "p.pt")
    sc = _scene(rng)
    np.testing.assert_allclose(m.sample(sc.feats, sc.mix, sc.energy, seed=3),
                               m2.sample(sc.feats, sc.mix, sc.energy, seed=3), atol=0.02)
    assert m2.info == {"note": "test"} and len(m2.sha256) == 64


def test_trajectories_keep_the_place_and_turn_detail_into_width(rng):
    """Tiles of random IID sign: the plain projection cancels to the centre, the re-centred one
    sits at the proposed place and is wider than the proposed width."""
    frames = 80
    e = _energies(rng, ["low", "high"], frames)
    iid = rng.choice([-9.0, 9.0], size=(N_BANDS, frames)).astype(np.float32)
    params = PSParams(iid, np.full((N_BANDS, frames), 0.9, np.float32))
    i0, c0 = trajectories(params, e)
    assert np.abs(iid_to_pan(i0)).mean() < 0.15
    centres = np.array([[-0.5, 0.1], [0.4, 0.3]])
    i1, c1 = trajectories(params, e, centres=centres)
    np.testing.assert_allclose(np.median(iid_to_pan(i1), axis=1), centres[:, 0], atol=0.12)
    assert np.all(np.median(1 - c1, axis=1) > centres[:, 1])
    # no detail at all (IID 0, IC = 1 - width): exactly the proposed place
    flat = PSParams(np.zeros((N_BANDS, frames), np.float32), np.ones((N_BANDS, frames), np.float32))
    i2, c2 = trajectories(flat, e, centres=centres)
    np.testing.assert_allclose(i2, np.repeat(pan_to_iid(centres[:, :1]), frames, axis=1), atol=1e-3)
    np.testing.assert_allclose(c2, np.repeat(1 - centres[:, 1:], frames, axis=1), atol=1e-4)


def test_downmix_gain_gives_real_stereo_power_and_an_exact_fold_down():
    """The decoder's law keeps P_L + P_R = 2 P_S; real stereo whose downmix is S has 4 P_S / (1 + k),
    k = IC sqrt(1 - t^2). With the gain the mixing law folds down to S exactly (b + d = 0 always)."""
    from core.decoder import mixing_coefficients
    from core.placement import DOWNMIX_MAX_GAIN, downmix_gain
    iid = np.array([0.0, 0.0, 0.0, -7.0, 12.0, 50.0, 0.0])
    ic = np.array([1.0, 0.0, -0.5, 0.4, 0.6, 0.3, -0.9])
    g = downmix_gain(iid, ic)
    t = np.tanh(iid * np.log(10) / 20)
    k = ic * np.sqrt(1 - t * t)
    assert g[:6] == pytest.approx(np.sqrt(2 / (1 + k[:6])), rel=1e-6)
    assert g[0] == pytest.approx(1.0) and g[1] == pytest.approx(np.sqrt(2)) and g[2] == pytest.approx(2.0)
    assert g[5] == pytest.approx(np.sqrt(2), rel=2e-3)         # (nearly) hard to one side: L = 2 S, R = 0
    assert g[6] == pytest.approx(DOWNMIX_MAX_GAIN)             # IC -0.9 would need 4.5x: capped
    a, b, c, d = mixing_coefficients(iid, ic)
    assert (g * (a + c))[:6] == pytest.approx(np.full(6, 2.0), abs=1e-5)
    assert (b + d) == pytest.approx(np.zeros(7), abs=1e-6)
    # tile power with S and D orthogonal, of power 1 each
    power = g ** 2 * (a ** 2 + b ** 2 + c ** 2 + d ** 2)
    assert power[:6] == pytest.approx(4 / (1 + k[:6]), rel=1e-5)
