"""Oracle tests of E_min and D_F (training.ps_metrics): known inputs, known answers."""
import numpy as np
import pytest
from scipy.linalg import sqrtm

from core.errors import ParameterError
from core.ps import PSParams
from training.ps_metrics import (EPS_DB, LAMBDA, GaussianStats, d_f, delta, e_min, embed, frechet_distance,
                             rendition_error)


def random_params(rng, frames=200, iid_scale=6.0):
    iid = np.clip(rng.normal(0, iid_scale, (34, frames)), -15, 15)
    ic = np.clip(rng.uniform(0.2, 0.85, (34, frames)), -1, 1)
    return PSParams(iid, ic)


def test_identical_params_give_zero(rng):
    p = random_params(rng)
    assert rendition_error(p, p) == 0.0
    assert e_min(p, [p, p]) == 0.0
    assert d_f([p], [p]) == pytest.approx(0.0, abs=1e-9)


def test_known_shifts_give_known_errors(rng):
    p = random_params(rng)
    # IC shifted by 0.1 (stays in range): delta 0.1 on the 34 IC rows, 0 on the IID rows
    q = PSParams(p.iid, p.ic + 0.1)
    assert rendition_error(p, q) == pytest.approx(0.5 * 0.1, abs=1e-6)
    # IID shifted by 4 dB (all |IID| <= 15 + 4 < 20, no clipping): delta = 0.15 * 4 on half the rows
    r = PSParams(p.iid + 4.0, p.ic)
    assert rendition_error(p, r) == pytest.approx(0.5 * LAMBDA * 4.0, abs=1e-6)
    # D_F of a constant shift: only the mean term, |shift|^2 summed over the shifted dimensions
    assert d_f([p], [q]) == pytest.approx(34 * 0.1 ** 2, rel=1e-5)
    assert d_f([p], [r]) == pytest.approx(34 * (LAMBDA * 4.0) ** 2, rel=1e-5)


def test_iid_is_clipped_at_20_db():
    a = PSParams(np.full((34, 3), 30.0), np.ones((34, 3)))
    b = PSParams(np.full((34, 3), 45.0), np.ones((34, 3)))
    assert rendition_error(a, b) == 0.0
    c = PSParams(np.full((34, 3), -30.0), np.ones((34, 3)))
    d = delta(a, c)
    assert np.allclose(d[:34], LAMBDA * 2 * EPS_DB) and np.allclose(d[34:], 0.0)


def test_e_min_is_the_best_rendition(rng):
    p = random_params(rng)
    renditions = [PSParams(p.iid, p.ic + s) for s in (0.3, 0.05, -0.2)]
    assert e_min(p, renditions) == pytest.approx(0.5 * 0.05, abs=1e-6)
    with pytest.raises(ParameterError):
        e_min(p, [])


def test_frechet_matches_scipy_sqrtm(rng):
    a = rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6)) + 0.5
    mu1, mu2 = a.mean(0), b.mean(0)
    c1, c2 = np.cov(a.T, bias=True), np.cov(b.T, bias=True)
    ref = np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * np.real(sqrtm(c1 @ c2)))
    assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(ref, rel=1e-6)
    # one-dimensional closed form: (mu1 - mu2)^2 + (s1 - s2)^2
    assert frechet_distance(np.array([1.0]), np.array([[1.0]]), np.array([3.0]), np.array([[9.0]])) \
        == pytest.approx(4.0 + 4.0)


def test_frechet_against_a_constant_pool(rng):
    # Mono's pool has zero covariance: D_F = |mu_r - mu_g|^2 + Tr(S_r)
    p = random_params(rng)
    mono = PSParams.neutral(p.n_frames)
    x = embed(p)
    expected = np.sum((x.mean(0) - embed(mono)[0]) ** 2) + np.trace(np.cov(x.T, bias=True))
    assert d_f([p], [mono]) == pytest.approx(expected, rel=1e-6)


def test_weighted_stats_equal_a_replicated_pool(rng):
    p, q = random_params(rng), random_params(rng, iid_scale=3.0)
    rep = GaussianStats()
    for _ in range(8):
        rep.add_params(q)
    w = GaussianStats().add_params(q, weight=8)
    assert np.allclose(rep.mean, w.mean) and np.allclose(rep.cov, w.cov)
    real = GaussianStats().add_params(p)
    assert d_f(real, rep) == pytest.approx(d_f(real, w), rel=1e-9)
    # merging two halves equals one pool
    h = GaussianStats().add_params(p.slice(0, 80)).merge(GaussianStats().add_params(p.slice(80, 200)))
    assert np.allclose(h.cov, real.cov) and np.allclose(h.mean, real.mean)


def test_embedding_weights_iid_like_delta():
    p = PSParams(np.array([[30.0, -5.0]] * 34), np.array([[0.5, 1.0]] * 34))
    x = embed(p)
    assert x.shape == (2, 68)
    assert np.allclose(x[:, 0], [LAMBDA * 20.0, LAMBDA * -5.0]) and np.allclose(x[:, 34], [0.5, 1.0])


def test_bad_shapes_raise():
    with pytest.raises(ParameterError):
        delta(np.zeros((34, 5)), np.zeros((34, 5)))
    with pytest.raises(ParameterError):
        delta(np.zeros((68, 5)), np.zeros((68, 6)))
    with pytest.raises(ParameterError):
        GaussianStats().mean
