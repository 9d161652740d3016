import numpy as np
import pytest

from core.errors import ParameterError
from core.stft import HOP, N_BINS, N_FFT, OverlapAdd, istft, n_frames, stft, stft_frames, window, window_sum


@pytest.mark.parametrize("n", [N_FFT, 44100, 44100 * 3 + 17, 5 * HOP])
def test_perfect_reconstruction(rng, n):
    x = rng.standard_normal(n).astype(np.float32)
    S = stft(x)
    assert S.shape == (N_BINS, n_frames(n))
    y = istft(S, length=n)
    assert np.max(np.abs(y - x)) < 1e-5


def test_chunked_equals_full(rng):
    x = rng.standard_normal(44100 * 2).astype(np.float32)
    S = stft(x)
    assert np.allclose(stft_frames(x, 10, 40), S[:, 10:40], atol=1e-4)
    ola = OverlapAdd(len(x))
    for f0 in range(0, S.shape[1], 17):
        ola.add(S[:, f0:f0 + 17], f0)
    assert np.max(np.abs(ola.result() - x)) < 1e-5


def test_sine_lands_in_its_bin(signals):
    f = 1000.0
    S = stft(signals.tone(f, 1.0))
    k = np.argmax(np.abs(S[:, S.shape[1] // 2]))
    assert abs(k * 44100 / N_FFT - f) < 44100 / N_FFT


def test_bad_shapes():
    with pytest.raises(ParameterError):
        stft(np.zeros((100, 2), np.float32))
    with pytest.raises(ParameterError):
        istft(np.zeros((10, 4), np.complex64), length=100)


def test_window_sum_is_the_frames_squared_windows_added_in_order(rng):
    """window_sum over any range equals adding each frame's squared window sample by sample, frame
    after frame (the order OverlapAdd normalizes with), bit for bit."""
    w2 = window(N_FFT) ** 2
    k = N_FFT // HOP
    for _ in range(40):
        t = int(rng.integers(1, 12))
        total = (t - 1) * HOP + N_FFT + HOP
        s0 = int(rng.integers(0, total))
        s1 = int(rng.integers(s0, total + 1))
        want = np.zeros(s1 - s0, np.float32)
        for j in range(k):                      # part j of every frame, frames 0 .. t-1
            for f in range(t):
                lo, hi = max(s0, (f + j) * HOP), min(s1, (f + j + 1) * HOP)
                if hi > lo:
                    want[lo - s0: hi - s0] += w2[j * HOP + np.arange(lo, hi) - (f + j) * HOP]
        assert np.array_equal(window_sum(s0, s1, t), want)
