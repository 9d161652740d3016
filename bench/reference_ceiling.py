"""How far the reference path is from its own ceilings (issue 27, session 13), on the analysed ``train`` pairs
(``python -m training.reference_data``; the tuner's fitting pairs, or ``--held-out``).

1. Floors, for the same-track pairs the shipped matcher follows closely (tier "close"): source error (the
   energy-weighted mean |pan error|) of the transported places alone; of the same times the best single
   factor for the pair (an oracle of how wide the reference's image carries over); of each source at its
   best single counterpart's place (an oracle of which counterpart); the shipped renditions' E_min at K 4,
   8 and 16; the placement model alone at K 8.
2. Which references are the same music: how well the matcher's gate (the Hellinger distance of the two
   mixtures' band profiles) and a harmonic distance (one minus the centred cosine of the two excerpts' mean
   chroma, 65 Hz - 4.2 kHz) tell same-track from same-album pairs (AUC, 1 = always), over all pairs and
   within the gate's unsure band (0.3 - 0.6, where same-track and same-album pairs mix).
3. The covering pool's parameters around the shipped ones: E_min K 8 / K 4 of the pairs followed closely or
   hedged, by kind and tier, every such pair followed closely.

    .venv/bin/python bench/reference_ceiling.py [--held-out] [--limit N] [--no-pools]
"""
from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

import _common  # noqa: F401  (the repository on the path)
from core.models.placement import load_placement_model
from core.models.reference_match import load_reference_matcher
from core.reference import _match
from core.stft import N_FFT, stft
from training.datahash import file_digest
from training.dataset import load_excerpt
from training.evaluation_reference import _b_start, _middle
from training.placement_data import split_tracks
from training.reference_data import SECONDS, analysed_pairs, load_analysed
from training.train_reference import pair_errors, split_pairs

SR = 44100
UNSURE = (0.3, 0.6)
POOLS = (("shipped", {}), ("each on its own (cover 0)", {"cover": 0.0}), ("pool 256", {"cover": 256.0}),
         ("cover temperature 8", {"cover_temperature": 8.0}), ("cover temperature 2", {"cover_temperature": 2.0}),
         ("spread 0.3", {"spread": 0.3}))


def chroma_profile(mono: np.ndarray) -> np.ndarray:
    """The mean over frames of each frame's share of its STFT magnitude in each pitch class [shape=(12,)]."""
    X = stft(np.ascontiguousarray(mono, np.float32))
    f = np.arange(X.shape[0]) * SR / N_FFT
    ok = (f >= 65.0) & (f <= 4200.0)
    pc = np.round(12 * np.log2(f[ok] / 440.0)).astype(int) % 12
    c = np.zeros((12, X.shape[1]))
    np.add.at(c, pc, np.abs(X[ok]))
    c /= np.maximum(c.sum(axis=0, keepdims=True), 1e-12)
    return c.mean(axis=1)


def harmonic_distance(p: np.ndarray, q: np.ndarray) -> float:
    a, b = p - p.mean(), q - q.mean()
    return float(1.0 - np.dot(a, b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-30))


def source_error(pans: np.ndarray, truth: np.ndarray, w: np.ndarray) -> float:
    """The energy-weighted (``w``, summing to 1) mean |pan error| of one proposal's pans."""
    return float((np.abs(pans - truth) * w).sum())


def auc(same: list, other: list) -> float:
    """P(a same-track pair's distance < a same-album pair's), ties counted half."""
    x, y = np.asarray(same)[:, None], np.asarray(other)[None]
    return float((x < y).mean() + 0.5 * (x == y).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--held-out", action="store_true", help="the tuner's held-out pairs instead of its fitting pairs")
    ap.add_argument("--limit", type=int, default=0, help="at most this many pairs per kind (0: all)")
    ap.add_argument("--no-pools", action="store_true", help="leave out part 3 (about a minute per row)")
    a = ap.parse_args()
    scenes, packages = load_analysed("train")
    if not scenes:
        raise SystemExit("no analysed train excerpts: run python -m training.reference_data --split train first")
    prs = analysed_pairs(scenes, packages, with_digest=True)
    fit, held = split_pairs(prs)
    pairs = held if a.held_out else fit
    pairs = [p for kind in ("same-track", "same-album") for p in [q for q in pairs if q[2] == kind][: a.limit or None]]
    model, shipped = load_placement_model(), load_reference_matcher()
    matches = [_match(shipped, np.asarray(p[0].feats, np.float32), np.asarray(p[0].mix, np.float32), p[1]) for p in pairs]
    print(f"{len(pairs)} {'held-out' if a.held_out else 'fitting'} train pairs; shipped matcher: gate_max "
          f"{shipped.gate_max:g}, hedge_gate {shipped.hedge_gate:g}, sigma {shipped.sigma:g}, cover {shipped.cover:g}")

    # 1. floors
    rows = []
    for p, m in zip(pairs, matches):
        if p[2] != "same-track" or m.tier != "close":
            continue
        w = np.asarray(p[0].share, np.float64)
        w, t = w / w.sum(), np.asarray(p[0].pan, np.float64)
        e16 = pair_errors(p[0], p[1], shipped, model, k=16)
        scaled = min(source_error(np.clip(m.mu[:, 0] * c, -1, 1), t, w) for c in np.exp(np.linspace(-1.5, 1.0, 51)))
        best_counterpart = float((np.abs(m.alt - t[:, None]).min(axis=1) * w).sum())
        rows.append((source_error(m.mu[:, 0], t, w), scaled, best_counterpart, min(e16[:4]), min(e16[:8]), min(e16),
                     min(pair_errors(p[0], p[1], None, model))))
    f = np.mean(rows, axis=0)
    print(f"\n1. floors: {len(rows)} same-track pairs followed closely; source error")
    for name, v in zip(("transported places", "... times the pair's best factor (oracle)",
                        "each source at its best counterpart (oracle)", "shipped renditions, E_min K 4",
                        "shipped renditions, E_min K 8", "shipped renditions, E_min K 16",
                        "placement model alone, E_min K 8"), f):
        print(f"   {name:44s} {v:.4f}")

    # 2. telling the same music from other music of the album
    chroma = {}
    for t in split_tracks(None, "train"):
        dg = file_digest(t.path)
        if dg in scenes and t.seconds >= 2 * SECONDS:
            for tag, start in (("A", _middle(t)), ("B", _b_start(t))):
                chroma[(dg, tag)] = chroma_profile(load_excerpt(t.path, start, SECONDS).mean(axis=1))
    refkey = {id(sc): (d, tag) for d, v in scenes.items() for tag, sc in v.items()}
    gate = np.array([m.gate for m in matches])
    harm = np.array([harmonic_distance(chroma[(p[3], "A")], chroma[refkey[id(p[1])]])
                     if (p[3], "A") in chroma and refkey[id(p[1])] in chroma else np.nan for p in pairs])
    st = np.array([p[2] == "same-track" for p in pairs])
    print("\n2. same-track against same-album pairs, AUC (1: every same-track pair nearer than every same-album one)")
    print(f"   {'':28s} {'same-track':>10s} {'same-album':>10s} {'gate':>6s} {'harmonic':>8s} {'gate + harmonic / 2':>19s}")
    for name, sel in (("all pairs", np.ones(len(pairs), bool)),
                      (f"gate in ({UNSURE[0]:g}, {UNSURE[1]:g}]", (gate > UNSURE[0]) & (gate <= UNSURE[1]))):
        sel = sel & np.isfinite(harm)
        both = gate + 0.5 * harm
        print(f"   {name:28s} {int((sel & st).sum()):10d} {int((sel & ~st).sum()):10d} "
              f"{auc(gate[sel & st], gate[sel & ~st]):6.3f} {auc(harm[sel & st], harm[sel & ~st]):8.3f} "
              f"{auc(both[sel & st], both[sel & ~st]):19.3f}")

    # 3. the covering pool's parameters
    if a.no_pools:
        return
    groups = {}
    for i, (p, m) in enumerate(zip(pairs, matches)):
        if m.tier in ("close", "hedged"):
            groups.setdefault((p[2], m.tier), []).append(i)
    keys = sorted(groups)
    print("\n3. covering pools, every close or hedged pair followed closely: E_min K 8 / K 4")
    print(f"   {'':28s} " + " ".join(f"{k[0] + ' ' + k[1] + ' (' + str(len(groups[k])) + ')':>24s}" for k in keys))
    for name, change in POOLS:
        m = replace(shipped, gate_max=1.0, **change)
        errs = {i: pair_errors(pairs[i][0], pairs[i][1], m, model) for k in keys for i in groups[k]}
        cells = [f"{np.mean([min(errs[i]) for i in groups[k]]):.4f} / {np.mean([min(errs[i][:4]) for i in groups[k]]):.4f}"
                 for k in keys]
        print(f"   {name:28s} " + " ".join(f"{c:>24s}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
