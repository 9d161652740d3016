"""Sound source formation (separation.formation): peaks, HWPS + normalized cuts, linking, masks.

Synthetic truth: three harmonic instruments in different registers with staggered onsets and
light noise; every instrument must be recovered by some source with >= 8 dB SDR improvement
over the mixture. Plus: exact sum to the input, settings, progress, cancel, bad input.
"""
from __future__ import annotations

import threading
import time
import tracemalloc

import numpy as np
import pytest

import separation
from core.errors import Cancelled, ParameterError
from core.stft import N_FFT, stft
from separation.base import RESIDUAL_COLOUR
from separation.formation import SourceFormation
from separation.ncut import hwps, normalized_cut, similarity
from separation.peaks import harmonic_pitches, pick_peaks

SR = 44100


# -- test signals (kept here: conftest is shared) ----------------------------------------------
def instrument(rng, f0s, *, onset, note_s, seconds, n_harm, tilt, rms=0.2):
    """A sustained harmonic instrument playing ``f0s`` one after another from ``onset``:
    attack/release ramps, a slight decay, 5 Hz vibrato of 0.3 %, random partial phases."""
    n = int(seconds * SR)
    y = np.zeros(n)
    for i, f0 in enumerate(f0s):
        s, e = int((onset + i * note_s) * SR), min(n, int((onset + (i + 1) * note_s) * SR))
        if s >= n:
            break
        t = np.arange(e - s) / SR
        env = np.minimum(1, t / 0.02) * np.minimum(1, t[::-1] / 0.05) * (0.6 + 0.4 * np.exp(-2 * t))
        phase = 2 * np.pi * f0 * np.cumsum(1 + 0.003 * np.sin(2 * np.pi * 5 * t)) / SR
        y[s:e] += env * sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k ** tilt
                            for k in range(1, n_harm + 1) if f0 * k < 0.45 * SR)
    y *= rms / np.sqrt(np.mean(y[y != 0] ** 2))
    return y.astype(np.float32)


def three_instruments(rng, seconds=6.0):
    """(references [bass, mid, high], mixture + light noise at about -40 dB)."""
    bass = instrument(rng, [110.0, 103.8, 116.5, 110.0], onset=0.0, note_s=1.5, seconds=seconds,
                      n_harm=10, tilt=1.0)
    mid = instrument(rng, [311.1, 349.2, 329.6, 311.1, 349.2], onset=0.7, note_s=1.1,
                     seconds=seconds, n_harm=8, tilt=1.2)
    high = instrument(rng, [830.6, 784.0, 880.0, 830.6, 740.0, 830.6], onset=1.5, note_s=0.75,
                      seconds=seconds, n_harm=5, tilt=1.5)
    noise = (0.005 * rng.standard_normal(len(bass))).astype(np.float32)
    return [bass, mid, high], bass + mid + high + noise


def sdr(ref, est):
    ref = ref.astype(np.float64)
    err = ref - est.astype(np.float64)
    return 10 * np.log10(np.dot(ref, ref) / max(np.dot(err, err), 1e-20))


def sine(freq, seconds, amp=0.5):
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * SR)) / SR)).astype(np.float32)


def assert_valid(x, sources):
    assert sources[-1].kind == "residual" and sources[-1].colour == RESIDUAL_COLOUR
    assert all(s.kind == "source" for s in sources[:-1])
    for s in sources:
        assert s.audio.shape == x.shape and s.audio.dtype == np.float32
        assert np.isfinite(s.audio).all()
    scale = max(float(np.linalg.norm(x)), 1e-12)
    total = np.sum([s.audio.astype(np.float64) for s in sources], axis=0)
    assert np.linalg.norm(total - x) / scale < 1e-4


# -- building blocks ----------------------------------------------------------------------------
def test_registry_lists_and_builds_formation():
    names = [b.name for b in separation.list_backends()]
    assert "formation" in names
    backend = separation.get("formation", n_sources=4, sensitivity=0.3, max_peaks=20)
    assert backend.name == "formation" and backend.n_sources == 4


@pytest.mark.parametrize("bad", [dict(n_sources=1), dict(n_sources=9), dict(sensitivity=1.5),
                                 dict(max_peaks=0), dict(texture_seconds=0.0)])
def test_bad_settings_raise(bad):
    with pytest.raises(ParameterError):
        separation.get("formation", **bad)


def test_bad_audio_raises():
    backend = separation.get("formation")
    with pytest.raises(ParameterError):
        backend.separate(np.zeros((100, 2), np.float32))
    with pytest.raises(ParameterError):
        backend.separate(np.array([0.0, np.nan] * 5000, np.float32))
    with pytest.raises(ParameterError):
        backend.separate(np.zeros(0, np.float32))


def test_peaks_parabolic_interpolation_and_bound(rng):
    x = sine(1234.5, 1.0, amp=0.25) + sine(3001.7, 1.0, amp=0.05)
    mag = np.abs(stft(x))[:, 5:-5]
    pk = pick_peaks(mag, sr=SR, n_fft=N_FFT, max_peaks=10)
    near = np.abs(pk.freq - 1234.5) < 20
    assert near.sum() == mag.shape[1]                      # once per frame
    assert np.abs(pk.freq[near] - 1234.5).max() < 1.0      # bins are 10.8 Hz wide
    assert np.abs(pk.db[near] - 20 * np.log10(0.25)).max() < 0.5
    far = np.abs(pk.freq - 3001.7) < 20
    assert np.abs(pk.db[far] - 20 * np.log10(0.05)).max() < 0.5
    # bounded per frame, even on noise with a permissive threshold
    noise_mag = np.abs(stft(rng.standard_normal(SR).astype(np.float32)))
    pn = pick_peaks(noise_mag, sr=SR, n_fft=N_FFT, max_peaks=7, prominence_db=0.0)
    assert np.bincount(pn.frame).max() == 7


def test_harmonic_pitches_finds_both_fundamentals():
    f = np.concatenate([110.0 * np.arange(1, 9), 311.1 * np.arange(1, 6)])
    a = np.concatenate([1.0 / np.arange(1, 9), 0.8 / np.arange(1, 6)])
    p = harmonic_pitches(f, a, n_pitches=2)
    assert np.abs(p - 110.0).min() < 1.0 and np.abs(p - 311.1).min() < 3.0


def test_hwps_groups_partials_of_one_source():
    f = np.concatenate([110.0 * np.arange(1, 9), 311.1 * np.arange(1, 6)])
    a = np.concatenate([1.0 / np.arange(1, 9), 0.8 / np.arange(1, 6)])
    frames = np.repeat(np.arange(3), len(f))
    f3, a3 = np.tile(f, 3), np.tile(a, 3)
    truth = np.tile(np.r_[np.zeros(8), np.ones(5)], 3).astype(int)
    h = hwps(f3, a3, frames, np.array([110.0, 311.1]))
    same = truth[:, None] == truth[None, :]
    assert h[same].mean() > 0.95 and h[~same].mean() < 0.8
    w = similarity(f3, 20 * np.log10(a3), a3, frames, np.array([110.0, 311.1]))
    labels, k = normalized_cut(w, k_max=4, rng=np.random.default_rng(0))
    assert k == 2
    assert all(len(np.unique(labels[truth == t])) == 1 for t in (0, 1))


# -- synthetic truth ----------------------------------------------------------------------------
@pytest.mark.parametrize("n_sources", [None, 3])
def test_three_instruments_recovered(n_sources):
    refs, mix = three_instruments(np.random.default_rng(7))
    sources = separation.get("formation", n_sources=n_sources).separate(mix)
    assert_valid(mix, sources)
    if n_sources is None:
        assert len(sources) - 1 == 3, [s.name for s in sources]
    gains = []
    for name, ref in zip(("bass", "mid", "high"), refs):
        base = sdr(ref, mix)
        best = max(sdr(ref, s.audio) for s in sources)
        gains.append(best - base)
        print(f"n_sources={n_sources} {name}: mixture {base:.2f} dB, best source {best:.2f} dB, "
              f"improvement {best - base:.2f} dB")
    assert min(gains) >= 8.0, gains
    # sources are named and ordered by register
    pitches = [s.meta["pitch_hz"] for s in sources[:-1]]
    assert pitches == sorted(pitches)
    assert sources[0].name.startswith("Source 1 (low, ~")


@pytest.mark.parametrize("settings", [dict(n_sources=2), dict(n_sources=8),
                                      dict(sensitivity=0.0, max_peaks=5),
                                      dict(sensitivity=1.0, max_peaks=100)])
def test_sources_sum_to_input(settings):
    refs, mix = three_instruments(np.random.default_rng(3), seconds=2.5)
    sources = separation.get("formation", **settings).separate(mix)
    assert_valid(mix, sources)
    if "n_sources" in settings:
        assert 1 <= len(sources) - 1 <= settings["n_sources"]


def test_same_settings_same_result():
    _, mix = three_instruments(np.random.default_rng(5), seconds=2.0)
    a = separation.get("formation").separate(mix)
    b = separation.get("formation").separate(mix)
    assert [s.name for s in a] == [s.name for s in b]
    assert all(np.array_equal(p.audio, q.audio) for p, q in zip(a, b))


# -- progress and cancel ------------------------------------------------------------------------
def long_signal(seconds):
    rng = np.random.default_rng(11)
    refs, mix = three_instruments(rng, seconds=6.0)
    return np.tile(mix, int(np.ceil(seconds / 6.0)))[: int(seconds * SR)]


def test_progress_is_monotone_and_frequent():
    x = long_signal(20.0)
    seen = []
    sources = separation.get("formation").separate(x, progress=seen.append)
    assert_valid(x, sources)
    fr = [p.fraction for p in seen]
    assert fr[0] == 0.0 and fr[-1] == 1.0
    assert all(b >= a for a, b in zip(fr, fr[1:]))
    assert {"peaks", "clustering", "resynthesis"} <= {p.stage for p in seen}
    # frequent: no step between two reports covers more than a sixth of the work (the wall-clock
    # spacing of reports is measured by bench/bench_formation.py)
    assert max(np.diff([0.0] + fr)) <= 1 / 6


@pytest.mark.parametrize("at", [0.05, 0.5, 0.9])
def test_cancel_stops_quickly(at):
    """Cancel set at a point of the work: the backend stops at its next check, after at most a
    small further part of the work (counted in progress reports, not in seconds)."""
    x = long_signal(60.0)
    cancel = threading.Event()
    seen = []

    def cb(p):
        seen.append(p.fraction)
        if p.fraction >= at:
            cancel.set()

    with pytest.raises(Cancelled):
        separation.get("formation").separate(x, cancel=cancel, progress=cb)
    after = [f for f in seen if f >= at]
    assert after and after[-1] - after[0] <= 0.1


# -- bad input ----------------------------------------------------------------------------------
def test_silence_is_all_residual():
    x = np.zeros(3 * SR, np.float32)
    sources = separation.get("formation").separate(x)
    assert len(sources) == 1 and sources[0].kind == "residual"
    assert not sources[0].audio.any()


def test_single_sine_is_one_source():
    x = sine(440.0, 3.0)
    sources = separation.get("formation").separate(x)
    assert_valid(x, sources)
    assert len(sources) == 2
    assert abs(sources[0].meta["pitch_hz"] - 440.0) < 5
    assert sdr(x, sources[0].audio) > 20.0


def test_white_noise_goes_to_residual(rng):
    x = (0.3 * rng.standard_normal(3 * SR)).astype(np.float32)
    sources = separation.get("formation").separate(x)
    assert_valid(x, sources)
    res = sources[-1].audio.astype(np.float64)
    assert np.dot(res, res) / np.dot(x.astype(np.float64), x) > 0.9


@pytest.mark.parametrize("seconds", [1.0, 0.05, 0.001])
def test_short_input(seconds):
    x = sine(220.0, seconds, amp=0.3) + sine(660.0, seconds, amp=0.1)
    sources = separation.get("formation").separate(x)
    assert_valid(x, sources)


def test_twenty_minute_input_bounded():
    """20 minutes (a tone stepping through pitches, light noise): completes, sums, bounded memory."""
    n = 20 * 60 * SR
    rng = np.random.default_rng(0)
    steps = [sine(220.0 * 2 ** (k / 12), 10.0, amp=0.2) + sine(440.0 * 2 ** (k / 12), 10.0, amp=0.05)
             for k in range(12)]                                          # 2 minutes, tiled
    x = np.tile(np.concatenate(steps), 10)[:n]
    x += np.tile((0.001 * rng.standard_normal(SR)).astype(np.float32), 20 * 60)[:n]
    tracemalloc.start()
    t0 = time.perf_counter()
    sources = separation.get("formation").separate(x)
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"20 min: {elapsed:.1f} s, peak traced memory {peak / 2**20:.0f} MiB, {len(sources)} sources")
    assert_valid(x, sources)
    assert 2 <= len(sources) <= 3
    assert peak < 2 * len(x) * 4 * len(sources) + 600 * 2**20
