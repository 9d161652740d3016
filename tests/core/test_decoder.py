import numpy as np
import pytest

from core.bands import N_BANDS
from core.decoder import decode, mixing_coefficients
from core.decorrelator import allpass_cascade, transient_strength
from core.models import load_model
from core.ps import PSParams, analyze, band_energy
from core.stft import n_frames, stft


def _const(iid, ic, t):
    return PSParams(np.full((N_BANDS, t), iid, np.float32), np.full((N_BANDS, t), ic, np.float32))


@pytest.mark.parametrize("iid,ic", [(0.0, 1.0), (6.0, 0.5), (-10.0, 0.0), (20.0, 0.9), (3.0, -0.5)])
def test_decoder_reproduces_targets_on_noise(rng, signals, iid, ic):
    x = signals.noise(rng, 6.0, amp=0.1)
    y = decode(x, _const(iid, ic, n_frames(len(x))))
    q = analyze(y)
    inner = slice(3, -3)  # skip the edge frames of the file
    assert abs(np.median(q.iid[2:, inner]) - iid) < 0.3
    assert abs(np.median(q.ic[2:, inner]) - ic) < 0.05
    # output power per band: that of real stereo whose downmix (L + R) / 2 is the mono,
    # P_L + P_R = 4 P_S / (1 + k), k = IC sqrt(1 - t^2), t = tanh(IID ln 10 / 20) (at most 2 x 2 P_S)
    ratio = (band_energy(stft(y[:, 0])) + band_energy(stft(y[:, 1]))) / band_energy(stft(x))
    t = np.tanh(iid * np.log(10) / 20)
    want = min(4.0 / (1.0 + ic * np.sqrt(1 - t * t)), 8.0)
    assert abs(10 * np.log10(np.median(ratio[:, inner]) / want)) < 0.25


@pytest.mark.parametrize("transients", [True, False])
def test_decode_folds_down_to_the_mono_exactly(rng, signals, transients):
    """The whole-mix decoder renders at the chain's law (core.decoder.downmix_gain): (L + R) / 2 is the input to
    float rounding for any IID and any IC down to -0.5, per tile, with or without transients."""
    x = np.concatenate([signals.noise(rng, 2.0, amp=0.1), signals.clicks(2.0, every=0.5)])
    t = n_frames(len(x))
    p = PSParams(rng.uniform(-30, 30, (N_BANDS, t)).astype(np.float32),
                 rng.uniform(-0.5, 1.0, (N_BANDS, t)).astype(np.float32))
    y = decode(x, p, transients=transients, chunk=50)
    assert np.max(np.abs((y[:, 0] + y[:, 1]) / 2 - x)) < 1e-5
    assert np.max(np.abs(y[:, 0] - y[:, 1])) > 0.05     # and it is stereo


def test_mixing_matrix_identities():
    iid = np.linspace(-30, 30, 13)[:, None] * np.ones((1, 7))
    ic = np.ones((13, 1)) * np.linspace(-1, 1, 7)[None, :]
    a, b, c, d = mixing_coefficients(iid, ic)
    pl, pr = a ** 2 + b ** 2, c ** 2 + d ** 2
    assert np.allclose(pl + pr, 2.0, atol=1e-5)
    assert np.allclose(10 * np.log10(pl / pr), iid, atol=1e-3)
    assert np.allclose((a * c + b * d) / np.sqrt(pl * pr), ic, atol=1e-4)
    assert np.allclose((b + d)[6], 0.0, atol=1e-6)  # IID 0: D cancels in L + R


def test_mono_params_give_identical_channels(rng, signals):
    x = signals.harmonic_note(220.0, 2.0)
    y = decode(x, PSParams.neutral(n_frames(len(x))))
    assert np.max(np.abs(y[:, 0] - x)) < 1e-4 and np.max(np.abs(y[:, 1] - x)) < 1e-4


def test_allpass_keeps_spectrum_and_decorrelates(rng, signals):
    x = signals.noise(rng, 4.0)
    y = allpass_cascade(x)
    ex, ey = band_energy(stft(x)).sum(1), band_energy(stft(y)).sum(1)
    assert np.all(np.abs(10 * np.log10(ey[3:] / ex[3:])) < 1.0)
    assert abs(np.corrcoef(x, y)[0, 1]) < 0.2


def test_transients_detected_and_kept_sharp(signals):
    # clicks every 250 ms: each click frame is a transient in (nearly) every band
    x = signals.clicks(2.0, every=0.5)
    e = band_energy(stft(x))
    tr, _ = transient_strength(e)
    onset_frames = [int(round(k * 0.5 * 44100 / 1024)) for k in range(1, 4)]
    assert all(tr[5:, f - 1: f + 1].max(axis=1).mean() > 0.9 for f in onset_frames)
    # decorrelation at IC 0: with transient handling the click stays compact in time
    p = _const(0.0, 0.0, n_frames(len(x)))
    y_on = decode(x, p, transients=True)
    y_off = decode(x, p, transients=False)
    win = slice(22050 + 500, 22050 + 4000)  # 11-90 ms after the click at 0.5 s: the all-pass tail
    assert np.sum(y_on[win] ** 2) < 0.1 * np.sum(y_off[win] ** 2)


def test_transient_state_carries_across_chunks(rng):
    e = rng.uniform(0.1, 1.0, (N_BANDS, 200)) ** 4
    full, _ = transient_strength(e)
    a, st = transient_strength(e[:, :77])
    b, _ = transient_strength(e[:, 77:], state=st)
    assert np.allclose(np.concatenate([a, b], axis=1), full, atol=1e-6)


def test_chunked_decode_equals_single_chunk(rng, signals):
    x = signals.noise(rng, 3.0, amp=0.1)
    t = n_frames(len(x))
    p = PSParams(rng.uniform(-20, 20, (N_BANDS, t)), rng.uniform(-1, 1, (N_BANDS, t)))
    assert np.allclose(decode(x, p, chunk=40), decode(x, p, chunk=10_000), atol=2e-5)


def test_decorr_baseline_is_mono_compatible_and_wider(rng, signals):
    x = signals.noise(rng, 4.0, amp=0.1)
    model = load_model("decorr")
    y = decode(x, model.predict(x))
    p = analyze(y)
    assert np.abs(np.median(p.iid[:, 3:-3])) < 0.3
    assert np.median(p.ic[:3, 3:-3]) > 0.85 and np.median(p.ic[25:, 3:-3]) < 0.7
