"""Grouping tracks into instruments: a learned same-instrument model of track pairs, clustered.

Tracks (notes or held chords: see :func:`separation.timbre.link_tracks`) of one instrument share
its timbre and its way of playing; tracks of different instruments differ in one or the other. For
every pair of tracks, :func:`pair_features` measures

* timbre differences: the absolute differences of their :func:`separation.timbre.track_table` rows
  (register, harmonicity, percussiveness, tilt, brightness, polyphony, decay, duration, the
  harmonic profile at the notes' own pitch, odd/even balance, vibrato, tremolo, the envelope over
  absolute frequency) and of their loudness, and a timbre distance measured against the
  recording: in units of the spread of its tracks, and of the two tracks' local scales
  (:func:`with_context`), so that a difference counts more in a recording whose instruments are
  each steady;
* where the pair lies: the means of the same columns (what separates two instruments at 80 Hz is
  not what separates two at 800 Hz), and the register gap relative to the spread of the recording;
* time: how much the two overlap (tracks of one instrument that sound together: a piano's two hands,
  a guitar's chord), the gap between them when they do not (a melody's notes follow one another),
  and how close their onsets and ends are (notes of one chord start and stop together).

A small multilayer perceptron (:class:`PairModel`, weights in ``resources/models/grouping.json`` with
its card ``grouping.md``, loaded through the model registry of :mod:`core.models.base`; fitted by
bench/formation_fit.py on the track pairs of the tuning scenes rendered from General MIDI; the
held-out scenes and the multitrack songs are never seen) turns them into P(same instrument).
:func:`group_tracks` clusters the loudest tracks by average linkage on P (:func:`cluster`), with a
prior that keeps apart groups sounding at the same time in distinct registers (layers of the music),
and cuts where the groups are no longer likely one instrument, so that the number of sources follows
the music; the quieter tracks join the group they are most likely one with.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.models.base import load_model as _load_registered
from core.models.base import models_dir, register_model

from .timbre import FEATURES
from core import lazy
timbre = lazy.module("separation.timbre")

__all__ = ["Tracks", "tracks_from_clusters", "with_context", "pair_features", "PAIR_FEATURES", "PairModel",
           "load_model", "same_probability", "group_tracks", "core_probabilities", "assign_rest", "cluster"]

_F = {name: i for i, name in enumerate(FEATURES)}
_EPS = 1e-12
MODEL_FILE = "grouping.json"
MODEL_PATH = models_dir() / MODEL_FILE            # the shipped model (bench/formation_fit.py --write)
# timbre columns of separation.timbre.track_table
TABLE_COLUMNS = ("register", "harmonicity", "percussive", "tilt", "brightness", "polyphony", "decay",
                 "duration") + FEATURES[FEATURES.index("h1"):]
PAIR_FEATURES = tuple(f"d_{c}" for c in TABLE_COLUMNS) + tuple(f"mean_{c}" for c in TABLE_COLUMNS) + (
    "d_loudness", "register_gap_rel", "overlap", "overlap_union", "gap_s", "onset_gap_s", "end_gap_s",
    "same_onset", "min_duration", "max_duration", "timbre_dist", "timbre_dist_local")
# timbre columns of the scene-relative timbre distance (not register, duration or the absolute envelope),
# with the least spread each is measured against
_TIMBRE = {"harmonicity": 0.05, "percussive": 0.05, "tilt": 1.0, "brightness": 0.1, "polyphony": 0.2, "decay": 3.0,
           **{f"h{i}": 2.0 for i in range(1, 9)}, "odd_even": 1.0, "jitter": 2.0, "richness": 0.2, "spread": 0.1,
           "tremolo": 0.5}
_TIMBRE_COLS = np.array([TABLE_COLUMNS.index(c) for c in _TIMBRE])
_TIMBRE_FLOOR = np.array(list(_TIMBRE.values()))
REGISTER_FREE = 0.5   # octaves of register gap that the layer prior of cluster() does not count
LOCAL_K = 7           # a track's local timbre scale: the distance to its LOCAL_K-th nearest track


@dataclass(frozen=True)
class Tracks:
    """Per track [shape=(T, ...)]: ``table`` (:func:`separation.timbre.track_table` rows), ``weight``
    (energy), ``first`` and ``last`` texture window, and ``window_s`` (seconds per window)."""
    table: np.ndarray
    weight: np.ndarray
    first: np.ndarray
    last: np.ndarray
    window_s: float
    z: np.ndarray | None = None        # timbre columns standardized for the recording [shape=(T, K)]
    local: np.ndarray | None = None    # local timbre scale [shape=(T,)]

    def __len__(self) -> int:
        return int(self.table.shape[0])

    def take(self, idx: np.ndarray) -> "Tracks":
        return Tracks(self.table[idx], self.weight[idx], self.first[idx], self.last[idx], self.window_s,
                      None if self.z is None else self.z[idx], None if self.local is None else self.local[idx])


def _timbre_distance(za: np.ndarray, zb: np.ndarray) -> np.ndarray:
    """RMS over the standardized timbre columns of the differences (each clipped at 5) of all pairs
    [shape=(len(za), len(zb))]."""
    d = np.minimum(np.abs(za[:, None, :] - zb[None, :, :]), 5.0)
    return np.sqrt(np.mean(d * d, axis=2))


def with_context(tr: Tracks, ref: np.ndarray, *, block: int = 256) -> Tracks:
    """``tr`` with its timbre measured relative to the recording: the timbre columns standardized by
    the median and spread (MAD, at least a floor per column) of the reference tracks ``ref`` (ids
    [shape=(R,)]), and each track's local scale, its timbre distance to its :data:`LOCAL_K`-th nearest
    reference track (as in self-tuning spectral clustering, Zelnik-Manor & Perona 2004)."""
    x = tr.table[:, _TIMBRE_COLS]
    med = np.median(x[ref], axis=0)
    mad = np.median(np.abs(x[ref] - med), axis=0) * 1.4826
    z = ((x - med) / np.maximum(mad, _TIMBRE_FLOOR)).astype(np.float32)
    k = min(LOCAL_K, len(ref) - 1)
    local = np.ones(len(tr), dtype=np.float32)
    for i in range(0, len(tr) if k >= 1 else 0, block):
        d = _timbre_distance(z[i:i + block], z[ref])
        local[i:i + block] = np.partition(d, k, axis=1)[:, k]     # column 0 is (mostly) the track itself
    return Tracks(tr.table, tr.weight, tr.first, tr.last, tr.window_s, z, np.maximum(local, 0.05))


def tracks_from_clusters(feats: np.ndarray, track: np.ndarray, *, window_s: float) -> Tracks:
    """:class:`Tracks` from the clusters' features [shape=(C, len(FEATURES))] and their track ids
    [shape=(C,)] (see :func:`separation.timbre.track_table`)."""
    table, weight = timbre.track_table(feats, track, window_s=window_s)
    t = len(weight)
    win = feats[:, _F["window"]]
    first = np.full(t, np.inf)
    last = np.full(t, -np.inf)
    np.minimum.at(first, track, win)
    np.maximum.at(last, track, win)
    return Tracks(table, weight, first, last, window_s)


def pair_features(a: Tracks, b: Tracks, *, spread: float) -> np.ndarray:
    """Features of every pair of ``a`` and ``b`` tracks [shape=(len(a), len(b), len(PAIR_FEATURES))],
    float32, symmetric in the two, both measured :func:`with_context`. ``spread``: the energy-weighted
    standard deviation of the recording's track registers (octaves)."""
    ta, tb = a.table.astype(np.float32), b.table.astype(np.float32)
    d = np.abs(ta[:, None, :] - tb[None, :, :])
    la = np.log10(a.weight + _EPS).astype(np.float32)
    lb = np.log10(b.weight + _EPS).astype(np.float32)

    ws = a.window_s
    fa, fb = a.first[:, None].astype(np.float32), b.first[None, :].astype(np.float32)
    ea, eb = a.last[:, None].astype(np.float32), b.last[None, :].astype(np.float32)
    na, nb = ea - fa + 1, eb - fb + 1
    inter = np.minimum(ea, eb) - np.maximum(fa, fb) + 1
    overlap = np.maximum(inter, 0) / np.minimum(na, nb)
    union = np.maximum(ea, eb) - np.minimum(fa, fb) + 1
    gap = np.maximum(-inter, 0) * ws
    m = 0.5 * (ta[:, None, :] + tb[None, :, :])
    td = _timbre_distance(a.z, b.z)
    rest = [np.abs(la[:, None] - lb[None, :]), d[:, :, 0] / max(spread, 0.1), overlap,
            np.maximum(inter, 0) / union, np.log1p(gap),
            np.log1p(np.abs(fa - fb) * ws), np.log1p(np.abs(ea - eb) * ws), (fa == fb).astype(np.float32),
            np.log2(np.minimum(na, nb) * ws), np.log2(np.maximum(na, nb) * ws), td,
            td / np.sqrt(a.local[:, None] * b.local[None, :])]
    return np.concatenate([d, m, np.stack(rest, axis=2).astype(np.float32)], axis=2)


class PairModel:
    """P(same instrument) of track pairs: :func:`pair_features` clipped to the range seen in fitting
    (``lo``, ``hi``: no extrapolation to, say, a minute-long note), standardized (``mean``, ``scale``),
    then dense layers (ReLU between them) and a sigmoid. ``layers``: ``[(W [shape=(in, out)],
    b [shape=(out,)]), ...]``. ``threshold`` and ``layer_prior``: see :func:`cluster`."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]],
                 threshold: float, provenance: str = "", layer_prior: float = 0.0,
                 lo: np.ndarray | None = None, hi: np.ndarray | None = None):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.scale = np.asarray(scale, dtype=np.float32)
        self.lo = np.full(len(self.mean), -np.inf, np.float32) if lo is None else np.asarray(lo, dtype=np.float32)
        self.hi = np.full(len(self.mean), np.inf, np.float32) if hi is None else np.asarray(hi, dtype=np.float32)
        self.layers = [(np.asarray(w, dtype=np.float32), np.asarray(b, dtype=np.float32)) for w, b in layers]
        self.threshold = float(threshold)
        self.provenance = provenance
        self.layer_prior = float(layer_prior)

    def logit(self, x: np.ndarray) -> np.ndarray:
        """Logit of P(same) for features ``x`` [shape=(..., len(PAIR_FEATURES))] [shape=(...)]."""
        h = (np.clip(x.reshape(-1, x.shape[-1]), self.lo, self.hi) - self.mean) / self.scale
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                np.maximum(h, 0.0, out=h)
        return h[:, 0].reshape(x.shape[:-1])

    def prob(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.clip(self.logit(x), -30.0, 30.0)))

    def to_dict(self) -> dict:
        return {"features": list(PAIR_FEATURES), "lo": self.lo.round(5).tolist(), "hi": self.hi.round(5).tolist(),
                "mean": self.mean.round(6).tolist(), "scale": self.scale.round(6).tolist(),
                "layers": [{"w": w.round(5).tolist(), "b": b.round(5).tolist()} for w, b in self.layers],
                "threshold": round(self.threshold, 4), "layer_prior": self.layer_prior,
                "provenance": self.provenance}

    @classmethod
    def from_dict(cls, d: dict) -> "PairModel":
        if list(d["features"]) != list(PAIR_FEATURES):
            raise ValueError("grouping model was fitted on other pair features")
        return cls(d["mean"], d["scale"], [(layer["w"], layer["b"]) for layer in d["layers"]], d["threshold"],
                   d.get("provenance", ""), d.get("layer_prior", 0.0), d["lo"], d["hi"])


register_model("grouping", label="Grouping", kind="grouping", files=(MODEL_FILE,),
               description="source formation's same-instrument model of track pairs",
               loader=lambda folder: PairModel.from_dict(json.loads((Path(folder) / MODEL_FILE).read_text())))


def load_model() -> PairModel:
    """The fitted pair model shipped with the package (loaded once: the registry's cache)."""
    return _load_registered("grouping")


def _register_spread(tr: Tracks) -> float:
    w = tr.weight / (tr.weight.sum() + _EPS)
    r = tr.table[:, 0]
    return float(np.sqrt(max(w @ (r - w @ r) ** 2, 0.0)))


def same_probability(a: Tracks, b: Tracks, *, model: PairModel, spread: float, block: int = 256) -> np.ndarray:
    """P(same instrument) of every pair of ``a`` and ``b`` tracks [shape=(len(a), len(b))], float32,
    computed in blocks of ``block`` rows (memory bounded)."""
    out = np.empty((len(a), len(b)), dtype=np.float32)
    for i in range(0, len(a), block):
        idx = np.arange(i, min(i + block, len(a)))
        out[idx] = model.prob(pair_features(a.take(idx), b, spread=spread))
    return out


def group_tracks(tr: Tracks, *, n_sources: int | None, max_sources: int, min_share: float,
                 model: PairModel | None = None, threshold: float | None = None,
                 affinity: dict | None = None) -> np.ndarray:
    """Source per track [shape=(T,)], numbered from 0.

    The :data:`CORE_TRACKS` loudest tracks are clustered by average linkage on P(same) with the
    model's layer prior (:func:`cluster`): the closest groups merge until ``n_sources`` are left or,
    with ``n_sources=None``, until the mean P(same) of the closest pair of groups falls below
    ``threshold`` (the model's own by default, chosen on the tuning scenes: see
    bench/formation_fit.py). Groups holding less than ``min_share`` of the energy join the group they
    are most likely one with, and at most ``max_sources`` are kept. The quieter tracks join the group
    whose loudest :data:`ANCHOR_TRACKS` members they are on average most likely one instrument with.
    ``affinity`` (a dict) receives ``"same"``: the groups' mean P(same) [shape=(G, G)], each pair of
    their core tracks weighted as the clustering weighs them (what suggested merges show)."""
    model = model or load_model()
    thr = model.threshold if threshold is None else float(threshold)
    probs = core_probabilities(tr, model=model)
    lab = cluster(probs[1], tr.weight[probs[0]], n_sources=n_sources, max_sources=max_sources,
                  min_share=min_share, threshold=thr, tracks=tr.take(probs[0]), layer_prior=model.layer_prior)
    if affinity is not None:
        affinity["same"] = group_affinity(probs[1], tr.weight[probs[0]], lab)
    return assign_rest(probs, lab)


def group_affinity(p: np.ndarray, weight: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """Mean P(same) between groups [shape=(G, G)] from the tracks' ``p`` [shape=(T, T)], energies
    ``weight`` and groups ``lab`` [shape=(T,)], pairs weighted by the square roots of the energies
    (average linkage, as :func:`cluster`); the diagonal is 1."""
    g = int(lab.max()) + 1 if len(lab) else 0
    mass = np.sqrt(np.maximum(weight, 0.0)) + _EPS
    onehot = np.zeros((len(lab), g))
    onehot[np.arange(len(lab)), lab] = mass
    sim = 0.5 * (p + p.T).astype(np.float64)
    num = onehot.T @ sim @ onehot
    den = np.outer(onehot.sum(axis=0), onehot.sum(axis=0))
    out = num / np.maximum(den, _EPS)
    np.fill_diagonal(out, 1.0)
    return out


CORE_TRACKS = 600     # tracks clustered by their pair probabilities
ANCHOR_TRACKS = 200   # the loudest of them, which the quieter tracks are compared with


def core_probabilities(tr: Tracks, *, model: PairModel) -> tuple:
    """``(core track ids [shape=(K,)], P(same) among them [shape=(K, K)], the other track ids
    [shape=(R,)], their P(same) with the anchors [shape=(R, min(K, ANCHOR_TRACKS))])``, the core being
    the :data:`CORE_TRACKS` loudest tracks (in order of energy)."""
    spread = _register_spread(tr)
    order = np.argsort(-tr.weight, kind="stable")
    core, rest = order[:CORE_TRACKS], order[CORE_TRACKS:]
    tr = with_context(tr, core)
    ct = tr.take(core)
    p = same_probability(ct, ct, model=model, spread=spread)
    pr = same_probability(tr.take(rest), ct.take(np.arange(min(len(core), ANCHOR_TRACKS))), model=model,
                          spread=spread)
    return core, p, rest, pr


def assign_rest(probs: tuple, lab: np.ndarray) -> np.ndarray:
    """Group per track [shape=(T,)] from the core's groups ``lab`` [shape=(K,)] and
    :func:`core_probabilities`: each other track joins the group whose anchors it is on average most
    likely one instrument with (groups without anchors take none)."""
    core, _, rest, pr = probs
    group = np.empty(len(core) + len(rest), dtype=np.int64)
    group[core] = lab
    if len(rest):
        anchors = lab[:pr.shape[1]]
        onehot = np.zeros((pr.shape[1], int(lab.max()) + 1), dtype=np.float32)
        onehot[np.arange(pr.shape[1]), anchors] = 1.0
        count = onehot.sum(axis=0)
        mean = np.where(count > 0, (pr @ onehot) / np.maximum(count, 1.0), -1.0)
        group[rest] = np.argmax(mean, axis=1)
    return group


def _adjust(sim: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    """Probabilities ``sim`` with ``penalty`` subtracted from their logits (``-inf`` stays)."""
    q = np.clip(sim, 1e-6, 1.0 - 1e-6)
    out = 1.0 / (1.0 + np.exp(np.log((1.0 - q) / q) + penalty))
    return np.where(np.isfinite(sim), out, -np.inf)


def cluster(p: np.ndarray, weight: np.ndarray, *, n_sources: int | None, max_sources: int, min_share: float,
            threshold: float, tracks: Tracks | None = None, layer_prior: float = 0.0) -> np.ndarray:
    """Group per track [shape=(T,)] from the pair probabilities ``p`` [shape=(T, T)] and the tracks'
    energies ``weight`` [shape=(T,)] (see :func:`group_tracks`).

    Average linkage weighted by the square root of the tracks' energies (loud notes count more, many
    quiet ones count too): the two groups with the highest mean P(same) merge (Lance-Williams update)
    until ``n_sources`` are left (groups under ``min_share`` of the energy merge first), or, with
    ``n_sources=None``, until that mean is below ``threshold``; then the group with the least energy
    joins the group it is most likely one with, while it holds less than ``min_share`` of the energy
    or more than ``max_sources`` groups are left.

    Layers: with ``tracks`` (the same tracks) and ``layer_prior`` > 0, two groups that sound at the
    same time (``co``: the share of the windows of the shorter-lived group in which both have a
    track) in registers more than :data:`REGISTER_FREE` octaves apart (``gap``, between their mean
    registers) are taken for two layers of the music, two instruments: their mean P(same) loses
    ``layer_prior * co * (gap - REGISTER_FREE)`` in logit. An instrument's notes in turn, in
    whatever register, are not penalized."""
    t = len(weight)
    if t == 1:
        return np.zeros(1, dtype=np.int64)
    sim = 0.5 * (p + p.T).astype(np.float64)
    np.fill_diagonal(sim, -np.inf)
    mass = np.sqrt(np.maximum(weight, 0.0)) + _EPS
    energy = np.asarray(weight, dtype=np.float64).copy()
    group = np.arange(t)
    alive = np.ones(t, dtype=bool)
    total = energy.sum() + _EPS
    layered = tracks is not None and layer_prior > 0
    if layered:
        win = np.arange(int(tracks.last.max()) + 1)
        act = ((win >= tracks.first[:, None]) & (win <= tracks.last[:, None])).astype(np.float32)
        count = act.sum(axis=1)
        reg = tracks.table[:, 0].astype(np.float64).copy()

        sc = _adjust(sim, layer_prior * (act @ act.T) / np.minimum(count[:, None], count[None, :])
                     * np.maximum(np.abs(reg[:, None] - reg[None, :]) - REGISTER_FREE, 0.0))
    else:
        sc = sim

    def merge(a: int, b: int) -> None:              # b absorbs a
        new = (mass[a] * sim[a] + mass[b] * sim[b]) / (mass[a] + mass[b])
        sim[b, :] = new
        sim[:, b] = new
        sim[b, b] = -np.inf
        sim[a, :] = -np.inf
        sim[:, a] = -np.inf
        if layered:
            reg[b] = (mass[a] * reg[a] + mass[b] * reg[b]) / (mass[a] + mass[b])
            np.maximum(act[a], act[b], out=act[b])
            count[b] = act[b].sum()
            co = (act @ act[b]) / np.minimum(count, count[b])
            row = _adjust(sim[b], layer_prior * co * np.maximum(np.abs(reg - reg[b]) - REGISTER_FREE, 0.0))
            sc[b, :] = row
            sc[:, b] = row
            sc[a, :] = -np.inf
            sc[:, a] = -np.inf
        mass[b] += mass[a]
        energy[b] += energy[a]
        group[group == a] = b
        alive[a] = False

    n_alive = t
    target = 1 if n_sources is None else max(int(n_sources), 1)
    while n_alive > target:
        small = np.flatnonzero(alive & (energy < min_share * total)) if n_sources is not None else ()
        if len(small):
            k = int(np.argmax(sc[small]))
            a, b = int(small[k // t]), k % t
        else:
            a, b = np.unravel_index(int(np.argmax(sc)), sc.shape)
            if n_sources is None and sc[a, b] < threshold:
                break
        merge(int(a), int(b))
        n_alive -= 1
    limit = max_sources if n_sources is None else target
    while n_alive > 1:
        live = np.flatnonzero(alive)
        small = int(live[np.argmin(energy[live])])
        if energy[small] / total >= min_share and n_alive <= limit:
            break
        merge(small, int(np.argmax(sc[small])))
        n_alive -= 1
    _, out = np.unique(group, return_inverse=True)
    return out
