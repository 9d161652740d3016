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
* register (log pitch), with a small weight: an instrument plays many notes.

:func:`cluster_features` measures the clusters of one window; :func:`link_tracks` joins clusters
of consecutive windows that continue one another (same pitch) into tracks, notes or held chords, so
that features are measured over a whole note; :func:`group_tracks` groups tracks into sources by
their timbre with a distance threshold, so that the number of sources follows the music;
:func:`describe` names a source from its measurements.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d

from .peaks import harmonic_pitches

__all__ = ["percussive_fraction", "cluster_features", "continuation", "link_tracks", "track_table",
           "group_tracks", "pair_distance", "describe", "note_name", "FEATURES", "N_HARMONICS"]

# Columns of the per-cluster feature table.
N_HARMONICS = 8
FEATURES = ("window", "pitch", "energy", "harmonicity", "percussive", "tilt", "brightness",
            "polyphony", "slope", "frames") + tuple(f"h{i}" for i in range(1, N_HARMONICS + 1))
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
    within the window, dB per frame), frames (frames in which the cluster has peaks)."""
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
        out[c] = (window, pitch, et, float(e[on].sum()) / et, float(np.sum(e * perc[m])) / et,
                  np.clip(tilt, -30.0, 10.0), np.log2(max(np.exp(np.sum(e * np.log(fc)) / et) / pitch, 1.0)),
                  len(fc) / len(frames), np.clip(slope, -10.0, 10.0), len(frames), *profile)
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
    """Per-track timbre vectors [shape=(T, 8 + N_HARMONICS)] and weights: energy-weighted means of the clusters'
    features plus duration and decay over the track's life.

    Columns: register (log2 pitch), harmonicity, percussive, tilt, brightness, polyphony,
    decay (dB per second, within-window slopes and the level change from window to window),
    log2 duration (s), harmonic profile (dB, harmonics 1..N_HARMONICS)."""
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
                     decay, dur] + [mean(feats[:, _F[f"h{i}"]]) for i in range(1, N_HARMONICS + 1)], axis=1), w


# Same-instrument model of two tracks (logistic regression on the absolute differences of their
# track_table columns): P(same) = sigmoid(BIAS - sum(WEIGHTS * |difference|)). Fitted on 23 of the 31
# tuning scenes rendered from General MIDI (bench/formation_fit.py prints these numbers). Register is
# the strongest cue there, percussiveness, brightness and polyphony follow; tilt, decay, duration and
# the harmonic profile barely tell instruments apart on those tracks (harmonicity not at all).
WEIGHTS = np.array([0.578, 0.0, 0.758, 0.019, 0.219, 0.187, 0.003, 0.021,
                    0.0, 0.0, 0.002, 0.001, 0.005, 0.003, 0.006, 0.002])
BIAS = 0.801


def pair_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``sum(WEIGHTS * |a_i - b_j|)`` for all pairs [shape=(len(a), len(b))] of track_table rows."""
    out = np.zeros((len(a), len(b)))
    for k in np.flatnonzero(WEIGHTS):
        out += WEIGHTS[k] * np.abs(a[:, k, None] - b[None, :, k])
    return out


def group_tracks(table: np.ndarray, weight: np.ndarray, *, n_sources: int | None, max_sources: int,
                 min_share: float, rng: np.random.Generator, threshold: float = 1.0) -> np.ndarray:
    """Source per track [shape=(T,)], numbered from 0.

    Tracks (rows of :func:`track_table`, weighted by the square root of their energy so that many
    quiet notes count too) are first gathered into up to 48 micro-groups by weighted k-means, then
    merged by average linkage on the weighted distance of :data:`WEIGHTS` (the mean over all
    track pairs of the two groups): the closest groups merge until ``n_sources`` are left or, with
    ``n_sources=None``, until the closest pair is further apart than ``threshold`` (at
    :data:`BIAS` two tracks would be as likely as not one instrument; the backend's threshold is
    tuned on the tuning scenes). Groups holding less than ``min_share`` of the energy join their
    closest group (with ``n_sources`` given, before the merging too), and at most ``max_sources``
    are kept."""
    from .ncut import kmeans
    wt = np.sqrt(weight)
    scale = np.where(WEIGHTS > 0, WEIGHTS, 1e-3)
    micro, _ = kmeans(table * scale, min(48, len(table)), rng=rng, weights=wt, n_init=1)
    _, micro = np.unique(micro, return_inverse=True)
    m = int(micro.max()) + 1
    mass = np.bincount(micro, weights=wt, minlength=m)
    energy = np.bincount(micro, weights=weight, minlength=m)
    # exact mean pairwise distance between micro-groups, in blocks of tracks
    onehot = np.zeros((len(table), m))
    onehot[np.arange(len(table)), micro] = wt
    acc = np.zeros((m, m))
    for i in range(0, len(table), 256):
        acc += onehot[i:i + 256].T @ pair_distance(table[i:i + 256], table) @ onehot
    dist = acc / np.maximum(np.outer(mass, mass), 1e-30)
    np.fill_diagonal(dist, np.inf)
    group = np.arange(m)
    alive = np.ones(m, dtype=bool)
    total_e = energy.sum() + _EPS

    def merge(a: int, b: int) -> None:
        # average linkage (Lance-Williams): b absorbs a
        new = (mass[a] * dist[a] + mass[b] * dist[b]) / (mass[a] + mass[b])
        dist[b, :] = new
        dist[:, b] = new
        dist[b, b] = np.inf
        dist[a, :] = np.inf
        dist[:, a] = np.inf
        mass[b] += mass[a]
        energy[b] += energy[a]
        group[group == a] = b
        alive[a] = False

    def fold_small(limit: int) -> None:
        while alive.sum() > 1:
            live = np.flatnonzero(alive)
            small = live[np.argmin(energy[live])]
            if energy[small] / total_e >= min_share and alive.sum() <= limit:
                break
            merge(int(small), int(np.argmin(dist[small])))

    if n_sources is not None:
        fold_small(m)
    target = n_sources if n_sources is not None else 1
    while alive.sum() > target:
        a, b = np.unravel_index(int(np.argmin(dist)), dist.shape)
        if n_sources is None and dist[a, b] > threshold:
            break
        merge(int(a), int(b))
    fold_small(max_sources)
    _, lab = np.unique(group[micro], return_inverse=True)
    return lab


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
