import numpy as np
import pytest

from core.bands import N_BANDS, band_edges, band_sum
from core.errors import ParameterError
from core.ps import (IC_TABLE, IID_TABLE, N_TOKENS, PSParams, analyze, dequantize, from_tokens, quantize,
                     to_tokens)
from core.stft import N_BINS


def test_bands_cover_all_bins():
    e = band_edges()
    assert len(e) == N_BANDS + 1 and e[0] == 0 and e[-1] == N_BINS
    assert np.all(np.diff(e) >= 2)
    x = np.ones((N_BINS, 3))
    assert np.allclose(band_sum(x).sum(axis=0), N_BINS)


def test_identical_channels_iid0_ic1(rng, signals):
    x = signals.noise(rng, 2.0)
    p = analyze(np.stack([x, x], axis=1))
    assert np.allclose(p.iid, 0, atol=1e-3)
    assert np.allclose(p.ic, 1, atol=1e-3)


def test_independent_noise_ic_near_zero(rng, signals):
    p = analyze(np.stack([signals.noise(rng, 5.0), signals.noise(rng, 5.0)], axis=1))
    # high bands hold hundreds of bins: the estimate is tight there
    assert abs(np.median(p.ic[10:])) < 0.05
    assert np.abs(np.median(p.iid[10:])) < 0.5


def test_hard_left_is_measured_left(rng, signals):
    x = signals.noise(rng, 2.0)
    p = analyze(np.stack([x, 0.001 * x], axis=1))
    assert np.allclose(p.iid, 50.0, atol=0.1)  # 60 dB, limited to the +-50 dB table range
    p = analyze(signals.pan_mono(x, -9.0))
    assert np.allclose(p.iid, -9.0, atol=0.05)


def test_opposite_phase_gives_negative_ic(rng, signals):
    x = signals.noise(rng, 1.0)
    p = analyze(np.stack([x, -x], axis=1))
    assert np.allclose(p.ic, -1.0, atol=1e-3)


def test_silence_is_safe():
    p = analyze(np.zeros((44100, 2), np.float32))
    assert np.all(np.isfinite(p.iid)) and np.all(np.isfinite(p.ic))
    assert np.allclose(p.iid, 0) and np.allclose(p.ic, 1)


def test_quantizer_round_trip():
    # every table entry maps to itself, and tokens round-trip
    qi, qc = np.meshgrid(np.arange(len(IID_TABLE)), np.arange(len(IC_TABLE)), indexing="ij")
    p = dequantize(qi.reshape(1, -1).repeat(N_BANDS, 0), qc.reshape(1, -1).repeat(N_BANDS, 0))
    qi2, qc2 = quantize(p)
    assert np.array_equal(qi2[0], qi.reshape(-1)) and np.array_equal(qc2[0], qc.reshape(-1))
    tok = to_tokens(p)
    assert tok.min() == 0 and tok.max() == N_TOKENS - 1
    assert np.array_equal(tok[0], 8 * qi.reshape(-1) + qc.reshape(-1))
    back = from_tokens(tok)
    assert np.array_equal(back.iid, p.iid) and np.array_equal(back.ic, p.ic)


def test_quantizer_picks_nearest(rng):
    iid = rng.uniform(-55, 55, (N_BANDS, 50)).astype(np.float32)
    ic = rng.uniform(-1, 1, (N_BANDS, 50)).astype(np.float32)
    q = from_tokens(to_tokens(PSParams(iid, ic)))
    best_iid = IID_TABLE[np.argmin(np.abs(iid[..., None] - IID_TABLE), axis=-1)]
    best_ic = IC_TABLE[np.argmin(np.abs(ic[..., None] - IC_TABLE), axis=-1)]
    assert np.array_equal(q.iid, best_iid) and np.array_equal(q.ic, best_ic)


def test_bad_params_rejected():
    with pytest.raises(ParameterError):
        PSParams(np.zeros((10, 3)), np.zeros((10, 3)))
    with pytest.raises(ParameterError):
        from_tokens(np.array([[300]]))
