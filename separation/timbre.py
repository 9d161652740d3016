"""What stays constant for an instrument: timbre descriptors of peak clusters, tracks, sources.

Sound source formation (Lagrange, Martins & Tzanetakis 2007) groups a texture window's peaks into
clusters with normalized cuts. Across windows, clusters of one instrument share what the
instrument's sound is made of rather than a frequency region:

* spectral envelope shape relative to the fundamental: the tilt of the partials' levels over
  log-frequency (dB per octave) and how far above the fundamental their energy lies;
* harmonicity (energy on the fundamental's harmonics) and percussiveness (energy in short,
  broadband events: see :func:`percussive_fraction`);
* onset behaviour: how a note's level changes inside the window and over its life (a piano or a
  plucked string decays, a pad or an organ holds), and how long it lasts;
* the spectral envelope over absolute frequency (octave bands), the odd/even harmonic balance,
  the partials' frequency spread around their harmonics (vibrato, inharmonicity) and level
  fluctuation (tremolo);
* register (log pitch): an instrument plays many notes.

:func:`cluster_features` measures the clusters of one window; :func:`link_tracks` joins clusters
of consecutive windows that continue one another (same pitch) into tracks, notes or held chords, so
that features are measured over a whole note (:func:`track_table`); :mod:`separation.grouping`
groups tracks into sources with a learned same-instrument model of track pairs;
:func:`describe` names a source from its measurements.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d

from .peaks import harmonic_pitches

__all__ = ["percussive_fraction", "cluster_features", "continuation", "link_tracks", "track_table",
           "describe", "note_name", "FEATURES", "N_HARMONICS", "N_BANDS"]

# Columns of the per-cluster feature table.
N_HARMONICS = 8
N_BANDS = 8
BAND_EDGES = 60.0 * 2.0 ** np.arange(N_BANDS + 1)      # 60 Hz .. 15.4 kHz, octave bands
FEATURES = ("window", "pitch", "energy", "harmonicity", "percussive", "tilt", "brightness",
            "polyphony", "slope", "frames") + tuple(f"h{i}" for i in range(1, N_HARMONICS + 1)) + (
            "odd_even", "jitter", "richness", "spread", "tremolo") + tuple(f"b{i}" for i in range(1, N_BANDS + 1))
_F = {name: i for i, name in enumerate(FEATURES)}
_EPS = 1e-12


def percussive_fraction(mag: np.ndarray, *, frames: int = 9, bins: int = 17, power: float = 4.0) -> np.ndarray:
    """Share of each STFT tile that is percussive [shape=(bins, frames)], in [0, 1].

    Harmonic/percussive separation by smoothing (FitzGerald 2010), with moving averages of the log
    magnitude (geometric means, a fast stand-in for the medians) over ``frames`` along time (H) and
    ``bins`` along frequency (P): a harmonic tile is continuous along time, a percussive one along
    frequency. The share is ``P^power / (P^power + H^power)``. ``mag`` [shape=(bins, frames)]."""
    lm = np.log(np.asarray(mag, dtype=np.float32) + 1e-9)
    h = uniform_filter1d(lm, size=frames, axis=1, mode="nearest")
    p = uniform_filter1d(lm, size=bins, axis=0, mode="nearest")
    return (1.0 / (1.0 + np.exp(np.clip(power * (h - p), -30.0, 30.0)))).astype(np.float32)


def cluster_features(window: int, freq: np.ndarray, mag: np.ndarray, db: np.ndarray, frame: np.ndarray,
                     perc: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Features of the ``k`` clusters of one texture window [shape=(k, len(FEATURES))].

    Per peak [shape=(N,)]: ``freq`` Hz, ``mag`` linear, ``db`` dB, ``frame`` index, ``perc``
    percussive fraction; ``labels`` cluster per peak. Columns (see :data:`FEATURES`): window index,
    pitch (Hz), energy, harmonicity (energy share on the pitch's harmonics), percussive (energy-
    weighted), tilt (dB per octave of the partials' levels over log-frequency), brightness
    (log2 of the energy centroid over the pitch), polyphony (peaks per frame), slope (level change
    within the window, dB per frame), frames (frames in which the cluster has peaks), h1..h8 (level of
    the pitch's harmonics relative to the strongest, dB), odd_even (dB of the odd harmonics 3, 5, 7
    over the even ones 2..8), jitter (energy-weighted spread of the harmonic peaks' frequencies
    around their harmonic, cents: vibrato, inharmonicity), richness (log2 of the number of harmonics
    present), spread (energy-weighted spread of the peaks' log2 frequency, octaves), tremolo (spread
    of the frame levels around their trend, dB), b1..b8 (share of the energy in octave bands from
    60 Hz, dB, -40 if empty: the spectral envelope over absolute frequency)."""
    out = np.zeros((k, len(FEATURES)))
    for c in range(k):
        m = labels == c
        fc, ac, dc, frc = freq[m], mag[m], db[m], frame[m]
        e = ac * ac
        et = float(e.sum()) + _EPS
        p = harmonic_pitches(fc, ac, n_pitches=1)
        pitch = float(p[0]) if p.size else float(fc.min())
        r = fc / pitch
        h = np.rint(r)
        on = (h >= 1) & (np.abs(r - h) <= 0.03 * np.maximum(h, 1))
        lf = np.log2(fc)
        if len(fc) >= 3 and np.ptp(lf) > 0.3:
            # least-squares slope of the partials' levels over log-frequency, each peak alike
            mx = lf.mean()
            tilt = np.sum((lf - mx) * (dc - dc.mean())) / max(np.sum((lf - mx) ** 2), _EPS)
        else:
            tilt = -12.0                                   # one partial: a pure, dark tone
        frames, inv = np.unique(frc, return_inverse=True)
        per_frame = np.bincount(inv, weights=e)
        if len(frames) >= 2:
            lvl = 10 * np.log10(per_frame + _EPS)
            slope = np.polyfit(frames - frames.mean(), lvl, 1)[0]
        else:
            slope = 0.0
        # harmonic profile: level of harmonics 1..N_HARMONICS relative to the strongest (dB, -40 if absent)
        hk = np.bincount(h[on & (h <= N_HARMONICS)].astype(np.int64), weights=e[on & (h <= N_HARMONICS)],
                         minlength=N_HARMONICS + 1)[1:]
        profile = np.maximum(10 * np.log10(hk / max(hk.max(), _EPS) + _EPS), -40.0)
        odd_even = 10 * np.log10((hk[2] + hk[4] + hk[6] + _EPS) / (hk[1] + hk[3] + hk[5] + hk[7] + _EPS))
        cents = 1200 * np.log2(r[on] / h[on]) if on.any() else np.zeros(1)
        eo = e[on] if on.any() else np.ones(1)
        jitter = np.sqrt(np.sum(eo * (cents - np.sum(eo * cents) / eo.sum()) ** 2) / eo.sum())
        richness = np.log2(1 + len(np.unique(h[on])))
        mlf = np.sum(e * lf) / et
        spread = np.sqrt(np.sum(e * (lf - mlf) ** 2) / et)
        tremolo = float(np.std(lvl - slope * (frames - frames.mean()))) if len(frames) >= 3 else 0.0
        band = np.bincount(np.clip(np.searchsorted(BAND_EDGES, fc) - 1, 0, N_BANDS - 1), weights=e, minlength=N_BANDS)
        env = np.maximum(10 * np.log10(band / et + _EPS), -40.0)
        out[c] = (window, pitch, et, float(e[on].sum()) / et, float(np.sum(e * perc[m])) / et,
                  np.clip(tilt, -30.0, 10.0), np.log2(max(np.exp(np.sum(e * np.log(fc)) / et) / pitch, 1.0)),
                  len(fc) / len(frames), np.clip(slope, -10.0, 10.0), len(frames), *profile,
                  np.clip(odd_even, -30.0, 30.0), min(jitter, 100.0), richness, spread, min(tremolo, 20.0), *env)
    return out


def continuation(prev_freq: np.ndarray, prev_mag: np.ndarray, prev_cl: np.ndarray, n_prev: int,
                 next_freq: np.ndarray, next_mag: np.ndarray, next_cl: np.ndarray, n_next: int, *,
                 tolerance: float = 0.02) -> np.ndarray:
    """How much each cluster of a window continues each cluster of the previous one
    [shape=(n_next, n_prev)], in [0, 1].

    Partial tracking across the window boundary (as McAulay & Quatieri's): each peak of the next
    window's first frame (``next_*`` [shape=(N,)], cluster ids ``next_cl``) continues the nearest
    peak of the previous window's last frame (``prev_*``) within ``tolerance`` (relative frequency);
    the score of a cluster pair is the energy of such continued peaks (the smaller of the two
    amplitudes, squared) over the next cluster's boundary energy."""
    out = np.zeros((n_next, n_prev))
    if len(prev_freq) == 0 or len(next_freq) == 0:
        return out
    order = np.argsort(prev_freq)
    pf = prev_freq[order]
    pos = np.clip(np.searchsorted(pf, next_freq), 1, len(pf)) - 1
    pos2 = np.minimum(pos + 1, len(pf) - 1)
    pick = np.where(np.abs(pf[pos2] - next_freq) < np.abs(pf[pos] - next_freq), pos2, pos)
    j = order[pick]
    ok = np.abs(prev_freq[j] - next_freq) <= tolerance * next_freq
    e = np.minimum(prev_mag[j], next_mag) ** 2
    np.add.at(out, (next_cl[ok], prev_cl[j[ok]]), e[ok])
    own = np.bincount(next_cl, weights=next_mag ** 2, minlength=n_next)
    return out / np.maximum(own, _EPS)[:, None]


def link_tracks(n_clusters: int, links: list[tuple[int, int, np.ndarray]], *, min_score: float = 0.3) -> np.ndarray:
    """Track id per cluster [shape=(n_clusters,)] from the continuation scores of consecutive
    windows: ``links`` holds ``(first id of the previous window's clusters, first id of the next
    window's, scores [shape=(n_next, n_prev)])`` (see :func:`continuation`). Each cluster continues
    at most one cluster and is continued at most once, best scores first, scores of at least
    ``min_score`` only."""
    track = np.arange(n_clusters)
    for a0, b0, score in links:
        taken_a, taken_b = set(), set()
        for flat in np.argsort(-score, axis=None):
            i, j = np.unravel_index(flat, score.shape)
            if score[i, j] < min_score:
                break
            if i in taken_b or j in taken_a:
                continue
            taken_b.add(i)
            taken_a.add(j)
            track[b0 + i] = track[a0 + j]
    _, track = np.unique(track, return_inverse=True)
    return track


def track_table(feats: np.ndarray, track: np.ndarray, *, window_s: float) -> np.ndarray:
    """Per-track timbre vectors [shape=(T, 8 + N_HARMONICS + 5 + N_BANDS)] and weights: energy-weighted
    means of the clusters' features plus duration and decay over the track's life.

    Columns: register (log2 pitch), harmonicity, percussive, tilt, brightness, polyphony,
    decay (dB per second, within-window slopes and the level change from window to window),
    log2 duration (s), harmonic profile (dB, harmonics 1..N_HARMONICS), odd_even, jitter, richness,
    spread, tremolo and the octave-band envelope (b1..b8; see :func:`cluster_features`)."""
    t = int(track.max()) + 1
    e = feats[:, _F["energy"]]
    w = np.bincount(track, weights=e, minlength=t) + _EPS

    def mean(col):
        return np.bincount(track, weights=e * col, minlength=t) / w

    n_win = np.bincount(track, minlength=t)
    first = np.full(t, np.inf)
    np.minimum.at(first, track, feats[:, _F["window"]])
    peak_e = np.zeros(t)
    np.maximum.at(peak_e, track, e)
    last_e = np.zeros(t)
    order = np.argsort(feats[:, _F["window"]], kind="stable")
    last_e[track[order]] = e[order]                     # the last window's energy wins
    life_db = 10 * np.log10((last_e + _EPS) / (peak_e + _EPS))
    frames_per_window = max(feats[:, _F["frames"]].max(), 1.0)
    within = mean(feats[:, _F["slope"]]) * frames_per_window / window_s      # dB/s
    across = np.where(n_win > 1, life_db / np.maximum(n_win - 1, 1) / window_s, within)
    decay = np.clip(0.5 * (within + across), -80.0, 20.0)
    dur = np.log2(n_win * window_s)
    return np.stack([np.log2(np.exp(mean(np.log(feats[:, _F["pitch"]])))), mean(feats[:, _F["harmonicity"]]),
                     mean(feats[:, _F["percussive"]]), mean(feats[:, _F["tilt"]]),
                     mean(feats[:, _F["brightness"]]), mean(np.log2(feats[:, _F["polyphony"]])),
                     decay, dur] + [mean(feats[:, _F[f"h{i}"]]) for i in range(1, N_HARMONICS + 1)]
                    + [mean(feats[:, _F[c]]) for c in FEATURES[_F["odd_even"]:]], axis=1), w


_NOTES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def note_name(hz: float) -> str:
    """Nearest equal-tempered note, e.g. 440 -> "A4"."""
    midi = int(round(69 + 12 * np.log2(max(hz, 1.0) / 440.0)))
    return f"{_NOTES[midi % 12]}{midi // 12 - 1}"


def describe(pitch_hz: float, percussive: float, decay_db_s: float, duration_s: float, polyphony: float) -> str:
    """A name for a source from what was measured of it (energy-weighted over its tracks)."""
    if percussive > 0.5:
        return "percussive"
    if pitch_hz < 160.0:
        return "bass line"
    if duration_s >= 0.8 and decay_db_s > -6.0:
        return "sustained pad" if polyphony >= 4.0 else f"sustained around {note_name(pitch_hz)}"
    if decay_db_s <= -15.0:
        return f"plucked around {note_name(pitch_hz)}"
    return f"lead around {note_name(pitch_hz)}"
