"""Sound source formation (separation.formation): peaks, HWPS + normalized cuts, tracks, timbre
grouping, masks.

Synthetic truth: three harmonic instruments in different registers with staggered onsets and
light noise (each recovered with >= 6 dB SI-SDR improvement over the mixture); a small band of
two harmonic instruments in overlapping registers with different timbres, a percussive part and a
sustained pad, where sources must beat the best frequency-region split (an oracle 2-band
crossover) and a frequency-region splitter must fail the same check. Plus: exact sum to the
input, names, settings, progress, cancel, bad input.
"""
from __future__ import annotations

import threading
import time
import tracemalloc

import numpy as np
import pytest

import separation
from core.errors import Cancelled, ParameterError
from core.stft import N_FFT, istft, stft
from separation.base import RESIDUAL_COLOUR
from separation.formation import SourceFormation
from separation.ncut import hwps, normalized_cut, similarity
from separation.peaks import harmonic_pitches, pick_peaks
from separation import grouping
from separation.timbre import (FEATURES, cluster_features, continuation, describe, link_tracks, note_name,
                               percussive_fraction)

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


def note(rng, f0, dur, *, n_harm, tilt, attack, decay, vibrato=0.003):
    """One harmonic note [shape=(dur * SR,)]: ``n_harm`` partials at ``k ** -tilt``, a linear
    attack of ``attack`` s, an exponential decay of ``decay`` per second, 5 Hz vibrato."""
    n = int(dur * SR)
    t = np.arange(n) / SR
    env = np.minimum(1, t / attack) * np.exp(-decay * t) * np.minimum(1, t[::-1] / 0.03)
    ph = 2 * np.pi * f0 * np.cumsum(1 + vibrato * np.sin(2 * np.pi * 5 * t + rng.uniform(0, 6))) / SR
    return env * sum(np.sin(k * ph + rng.uniform(0, 2 * np.pi)) / k ** tilt
                     for k in range(1, n_harm + 1) if f0 * k < 0.45 * SR)


def part(rng, seconds, events, **kw):
    """A part from ``(start s, f0 or chord f0s, duration s)`` events [shape=(seconds * SR,)]."""
    y = np.zeros(int(seconds * SR))
    for start, f0s, dur in events:
        s = int(start * SR)
        for f0 in np.atleast_1d(f0s):
            z = note(rng, f0, min(dur, seconds - start), **kw)
            y[s:s + len(z)] += z
    return y


def midi(m):
    return 440.0 * 2 ** ((m - 69) / 12)


def small_band(rng, seconds=8.0):
    """({part: reference}, mixture): a bright sustained instrument (16 partials, slow attack) on
    G3..E4 and a dark plucked one (4 partials, fast decay) on A3..A4, overlapping in register;
    a percussive part (kick and noise snare); a sustained three-note pad."""
    bright = part(rng, seconds, [(0.1 + i * 0.8, midi(m), 0.75) for i, m in
                                 enumerate([55, 59, 62, 64, 62, 59, 57, 60, 64, 62])],
                  n_harm=16, tilt=0.7, attack=0.06, decay=0.2)
    plucked = part(rng, seconds, [(0.3 + i * 0.4, midi(m), 0.4) for i, m in
                                  enumerate([69, 64, 67, 60, 62, 65, 69, 67, 64, 60,
                                             57, 62, 65, 64, 60, 59, 62, 65, 67, 69])],
                   n_harm=4, tilt=2.0, attack=0.003, decay=7.0)
    pad = part(rng, seconds, [(0.0, [midi(48), midi(52), midi(55)], 4.0), (4.0, [midi(53), midi(57), midi(60)], 4.0)],
               n_harm=6, tilt=1.5, attack=0.6, decay=0.0, vibrato=0.0)
    drums = np.zeros(int(seconds * SR))
    t = np.arange(int(0.2 * SR)) / SR
    for i in range(int(seconds / 0.5)):
        s = int(i * 0.5 * SR)
        if i % 2 == 0:   # kick: a falling sine
            z = np.sin(2 * np.pi * (50 * t + 40 * (1 - np.exp(-t * 30)) / 30)) * np.exp(-t * 25)
        else:            # snare: a noise burst
            z = rng.standard_normal(len(t)) * np.exp(-t * 30)
        drums[s:s + len(z)] += z[:len(drums) - s]

    def rms(y, r):
        return (y * r / np.sqrt(np.mean(y ** 2))).astype(np.float32)

    refs = {"bright": rms(bright, 0.15), "plucked": rms(plucked, 0.15), "pad": rms(pad, 0.1), "drums": rms(drums, 0.15)}
    return refs, np.sum(list(refs.values()), axis=0).astype(np.float32)


def si_sdr(ref, est):
    ref = ref.astype(np.float64)
    est = est.astype(np.float64)
    target = np.dot(est, ref) / np.dot(ref, ref) * ref
    return 10 * np.log10(np.dot(target, target) / max(np.dot(est - target, est - target), 1e-20))


def band_split(x, edges):
    """``x`` split into frequency regions at ``edges`` (Hz) by binary STFT masks [list of (n,)]."""
    spec = stft(x)
    f = np.arange(spec.shape[0]) * SR / N_FFT
    lims = [0.0, *edges, SR]
    return [istft(spec * ((f >= a) & (f < b))[:, None], length=len(x)) for a, b in zip(lims[:-1], lims[1:])]


def best_gain(ref, mix, estimates):
    """Best SI-SDR of ``estimates`` against ``ref`` minus the mixture's (dB)."""
    return max(si_sdr(ref, e) for e in estimates) - si_sdr(ref, mix)


def crossover_gain(ref, mix):
    """The oracle 2-band crossover: the better band at the best of 250, 500, 1000, 2000 Hz."""
    return max(best_gain(ref, mix, band_split(mix, [fc])) for fc in (250.0, 500.0, 1000.0, 2000.0))


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


@pytest.mark.parametrize("bad", [dict(n_sources=1), dict(n_sources=17), dict(sensitivity=1.5),
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
def test_percussive_fraction_tells_clicks_from_tones():
    x = sine(440.0, 2.0, amp=0.3) + clicks_at(2.0, every=0.5)
    mag = np.abs(stft(x))
    pf = percussive_fraction(mag)
    tone_bin = int(round(440.0 * N_FFT / SR))
    click_frames = (np.arange(0.5, 2.0, 0.5) * SR / 1024).round().astype(int)
    high = slice(int(3000 * N_FFT / SR), int(8000 * N_FFT / SR))
    assert pf[high, click_frames].mean() > 0.9           # broadband, short: percussive
    assert pf[tone_bin, 10:-10].mean() < 0.1             # steady partial: harmonic


def clicks_at(seconds, *, every, amp=0.8):
    x = np.zeros(int(seconds * SR), np.float32)
    x[int(every * SR)::int(every * SR)] = amp
    return x


def test_continuation_follows_partials_across_windows():
    """Window 1 has two clusters (harmonics of 110 Hz and of 330 Hz); window 2 continues them in
    the other order and adds a new 520-Hz series: each continued cluster links to its own."""
    f110, f330, f520 = 110.0 * np.arange(1, 6), 330.0 * np.arange(1, 4) * 1.001, 520.0 * np.arange(1, 4)
    prev_f = np.r_[f110, f330]
    prev_c = np.r_[np.zeros(5, int), np.ones(3, int)]
    next_f = np.r_[f330 * 1.002, f520, f110 * 0.999]
    next_c = np.r_[np.zeros(3, int), np.ones(3, int), np.full(5, 2)]
    score = continuation(prev_f, np.ones(8), prev_c, 2, next_f, np.ones(11), next_c, 3)
    assert score.shape == (3, 2)
    assert score[0, 1] > 0.9 and score[2, 0] > 0.9 and score[1].max() == 0.0
    track = link_tracks(5, [(0, 2, score)])
    assert track[2] == track[1] and track[4] == track[0] and track[3] not in (track[0], track[1])


def test_cluster_features_measure_pitch_tilt_and_profile():
    f0 = 220.0
    k = np.arange(1, 9)
    freq = np.tile(f0 * k, 3)
    mag = np.tile(k ** -2.0, 3)                      # -12 dB per octave
    db = 20 * np.log10(mag)
    frame = np.repeat(np.arange(3), 8)
    out = cluster_features(4, freq, mag, db, frame, np.zeros(24), np.zeros(24, int), 1)[0]
    col = {n: i for i, n in enumerate(FEATURES)}
    assert out[col["window"]] == 4 and abs(out[col["pitch"]] - f0) < 2
    assert abs(out[col["tilt"]] + 12.04) < 0.5
    assert out[col["harmonicity"]] > 0.99 and out[col["frames"]] == 3 and out[col["polyphony"]] == 8
    assert abs(out[col["h3"]] - 20 * np.log10(1 / 9)) < 0.1


def test_cluster_cuts_where_tracks_are_unlikely_one_instrument():
    """Pair probabilities with three blocks of known truth (0.8 inside, 0.15 across, noisy): the
    automatic cut finds the three; a fixed count returns that many; a group under the least share of
    the energy joins the one it is most likely one with."""
    rng = np.random.default_rng(0)
    truth = np.repeat([0, 1, 2], [20, 15, 10])
    p = np.where(truth[:, None] == truth[None, :], 0.8, 0.15) + rng.uniform(-0.1, 0.1, (45, 45))
    p = np.clip(0.5 * (p + p.T), 0.0, 1.0)
    weight = np.ones(45)
    lab = grouping.cluster(p, weight, n_sources=None, max_sources=6, min_share=0.0, threshold=0.5)
    assert len(np.unique(lab)) == 3
    assert all(len(np.unique(lab[truth == t])) == 1 for t in range(3))
    assert len(np.unique(grouping.cluster(p, weight, n_sources=2, max_sources=2, min_share=0.0, threshold=0.5))) == 2
    weight[truth == 2] = 0.01               # block 2 holds under 1 % of the energy
    lab = grouping.cluster(p, weight, n_sources=None, max_sources=6, min_share=0.03, threshold=0.5)
    assert len(np.unique(lab)) == 2 and len(np.unique(lab[truth != 2])) == 2


def toy_model():
    """A hand-made pair model: same instrument unless the registers are a fifth of an octave or
    more apart, or the percussiveness differs by 0.3 or more."""
    f = list(grouping.PAIR_FEATURES)
    w = np.zeros((len(f), 1))
    w[f.index("d_register"), 0] = -10.0
    w[f.index("d_percussive"), 0] = -10.0
    return grouping.PairModel(np.zeros(len(f)), np.ones(len(f)), [(w, np.array([2.0]))], threshold=0.5)


def test_group_tracks_quiet_tracks_join_their_own_group():
    """Two kinds of tracks (registers an octave apart) under a hand-made pair model, with more
    tracks than the core holds: the loud ones form the two groups, every quiet one joins its kind."""
    rng = np.random.default_rng(2)
    n = grouping.CORE_TRACKS + 100
    kind = rng.integers(0, 2, n)
    cols = len(grouping.TABLE_COLUMNS)
    table = rng.normal(0.0, 0.02, (n, cols))
    table[:, 0] = 8.0 + kind + rng.normal(0, 0.03, n)
    tr = grouping.Tracks(table, rng.uniform(0.1, 1.0, n), np.zeros(n), np.full(n, 3.0), 0.2)
    lab = grouping.group_tracks(tr, n_sources=None, max_sources=6, min_share=0.03, model=toy_model())
    assert len(np.unique(lab)) == 2
    assert all(len(np.unique(lab[kind == k])) == 1 for k in (0, 1))
    assert len(np.unique(grouping.group_tracks(tr, n_sources=3, max_sources=3, min_share=0.0, model=toy_model()))) == 3


def test_pair_features_are_symmetric_and_measure_time():
    """Two notes that overlap for half of the shorter; a third follows the second 0.4 s after it ends."""
    cols = len(grouping.TABLE_COLUMNS)
    table = np.zeros((3, cols))
    table[:, 0] = [7.0, 8.0, 7.5]
    table[2, grouping.TABLE_COLUMNS.index("tilt")] = -20.0      # the third is much darker
    tr = grouping.Tracks(table, np.array([1.0, 2.0, 3.0]), np.array([0.0, 2.0, 10.0]), np.array([3.0, 7.0, 12.0]), 0.2)
    tr = grouping.with_context(tr, np.arange(3))
    x = grouping.pair_features(tr, tr, spread=0.5)
    f = {n: i for i, n in enumerate(grouping.PAIR_FEATURES)}
    assert x.shape == (3, 3, len(grouping.PAIR_FEATURES))
    assert np.allclose(x, x.transpose(1, 0, 2))
    assert x[0, 1, f["d_register"]] == 1.0 and x[0, 1, f["register_gap_rel"]] == 2.0
    assert x[0, 1, f["overlap"]] == 0.5 and x[0, 1, f["gap_s"]] == 0.0
    assert abs(x[1, 2, f["gap_s"]] - np.log1p(0.4)) < 1e-6 and x[1, 2, f["overlap"]] == 0.0
    assert x[0, 0, f["same_onset"]] == 1.0 and x[0, 1, f["same_onset"]] == 0.0
    assert x[0, 0, f["timbre_dist"]] == 0.0 and x[0, 1, f["timbre_dist"]] == 0.0
    assert x[0, 2, f["timbre_dist"]] > 0.5 and x[0, 2, f["d_tilt"]] == 20.0


def test_shipped_pair_model_loads_and_round_trips():
    model = grouping.load_model()
    assert 0.0 < model.threshold < 1.0 and "tune scenes" in model.provenance
    again = grouping.PairModel.from_dict(model.to_dict())
    x = np.random.default_rng(0).normal(size=(50, len(grouping.PAIR_FEATURES))).astype(np.float32)
    assert np.allclose(model.prob(x), again.prob(x), atol=1e-5)


def test_names_come_from_measurements():
    assert note_name(440.0) == "A4" and note_name(261.63) == "C4" and note_name(55.0) == "A1"
    assert describe(300.0, 0.8, -40.0, 0.1, 3.0) == "percussive"
    assert describe(80.0, 0.1, -10.0, 0.5, 4.0) == "bass line"
    assert describe(440.0, 0.05, -1.0, 2.0, 12.0) == "sustained pad"
    assert describe(440.0, 0.05, -30.0, 0.4, 4.0) == "plucked around A4"
    assert describe(440.0, 0.05, -8.0, 0.4, 4.0) == "lead around A4"


@pytest.mark.parametrize("n_sources", [None, 3])
def test_three_instruments_recovered(n_sources):
    refs, mix = three_instruments(np.random.default_rng(7))
    sources = separation.get("formation", n_sources=n_sources).separate(mix)
    assert_valid(mix, sources)
    assert len(sources) - 1 == 3, [s.name for s in sources]
    gains = []
    for name, ref in zip(("bass", "mid", "high"), refs):
        gains.append(best_gain(ref, mix, [s.audio for s in sources]))
        print(f"n_sources={n_sources} {name}: SI-SDR improvement of the best source {gains[-1]:.2f} dB")
    assert min(gains) >= 6.0, gains
    # named from what was measured, ordered by register
    pitches = [s.meta["pitch_hz"] for s in sources[:-1]]
    assert pitches == sorted(pitches)
    assert sources[0].name == "bass line"
    assert abs(pitches[0] - 110.0) < 10 and abs(pitches[-1] - 830.0) < 60


def test_small_band_sources_are_instruments_not_frequency_regions():
    """Each part's best source against the best frequency-region split (the oracle 2-band
    crossover): on average over the four parts the sources win by at least 1 dB, and for the
    percussive part (which spans every band) by at least 3 dB. A frequency-region splitter (four
    bands as "sources") fails the same check, so the test tells instruments from regions. The two
    instruments sharing a register (bright, sustained G3..E4 and dark, plucked A3..A4) end up in
    different sources, each its part's best."""
    refs, mix = small_band(np.random.default_rng(0))
    sources = separation.get("formation").separate(mix)
    assert_valid(mix, sources)

    def margins(estimates):
        return {k: best_gain(r, mix, estimates) - crossover_gain(r, mix) for k, r in refs.items()}

    ours = margins([s.audio for s in sources])
    regions = margins(band_split(mix, [250.0, 1000.0, 4000.0]))
    print("formation - crossover (dB):", {k: round(v, 2) for k, v in ours.items()}, [s.name for s in sources])
    print("4-band split - crossover (dB):", {k: round(v, 2) for k, v in regions.items()})

    def passes(m):
        return np.mean(list(m.values())) >= 1.0 and m["drums"] >= 3.0

    assert passes(ours), ours
    assert not passes(regions), regions
    assert "percussive" in [s.name for s in sources]
    best = {k: int(np.argmax([si_sdr(r, s.audio) for s in sources])) for k, r in refs.items()}
    assert best["bright"] != best["plucked"], best
    assert sources[best["bright"]].kind == sources[best["plucked"]].kind == "source"


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


def test_stems_made_on_two_threads_are_those_of_one(monkeypatch):
    """The resynthesis makes its chunks two at a time: every sample equals the one-thread result."""
    from separation import formation
    rng = np.random.default_rng(11)
    _refs, mix = three_instruments(rng, seconds=6.0)
    mix = np.tile(mix, 3)                          # 18 s: several chunks
    monkeypatch.setattr(formation, "RESYNTH_WORKERS", 1)
    a = separation.get("formation").separate(mix)
    monkeypatch.setattr(formation, "RESYNTH_WORKERS", 2)
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


@pytest.mark.slow
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
