"""What a person who merges optimally reaches from N proposed sources (issue 26).

Usage::

    nice .venv/bin/python bench/formation_merge_oracle.py [--set all|multitrack|scenes] [--split heldout|tune|all]
                                                        [--seconds 0] [--n auto,8,12,16] [--rows]

The material is bench/formation_multitrack.py's: the multitrack songs (guitar and backing; the
mixture is their sum) and the rendered General-MIDI scenes (scripts/render_midi_scenes.py; held out
by default). For each recording, formation proposes N sources (``auto``: the shipped setting; 8, 12,
16: the "more, smaller sources" setting a person edits), residual included. The **merge oracle** is a
user who knows the true stems and, for each stem, merges the proposed sources that estimate it best:
the best SI-SDR over every merge of the N sources (all 2^N - 1 of them, exactly: any merge's SI-SDR
follows from the sources' Gram matrix and their dot products with the stems, cached per recording
and setting). As the ``auto best`` column picks each stem's best single source, each stem's merge is
chosen on its own (a source may serve two stems). ``merges`` counts pairwise merges (a stem made
of k sources took k - 1, summed over the stems), ``gestures`` the merge actions (one per stem made
of two or more sources).

Columns, as improvements over the mixture's SI-SDR (dB), averaged over the stems holding at least
2 % of the mixture's energy: ``auto best`` the best single source of the automatic grouping (what
formation_multitrack.py calls ``formation``), ``merge N`` the merge oracle on N proposed sources, and
``peak oracle`` the same peaks perfectly grouped (formation_multitrack.py ``--oracle``: the ceiling
of any grouping). Each recording's sources (their Gram matrix) are cached per setting in
``~/.cache/soundstage-bench``.

Result (2-core machine, shared, 2026-12-06; ``--set scenes`` on the 10 held-out scenes, 30-s
excerpts; ``--set multitrack --seconds 60``, the first minute of the four songs), SI-SDR of the
mixture and improvements over it (dB), averaged over the stems:

| material | recordings | stems | mix SI-SDR | auto best | merge auto | merge 8 | merge 12 | merge 16 | peak oracle |
|---|---|---|---|---|---|---|---|---|---|
| scenes-heldout | 10 | 56 | -7.97 | +1.21 | +3.18 | +2.85 | +3.35 | +3.46 | +9.39 |
| multitrack guitar (60 s) | 4 | 4 | -3.17 | -1.58 | +1.34 | +1.35 | +1.37 | +1.37 | +5.35 |
| multitrack backing (60 s) | 4 | 4 | 3.16 | -4.69 | +0.96 | +1.00 | +1.04 | +1.02 | +2.20 |

| material | setting | sources: mean (min-max) | merges per recording: mean (max) | merge gestures | formation s (all) |
|---|---|---|---|---|---|
| scenes-heldout | auto | 7.2 (6-8) | 12.9 (32) | 4.4 | 113 |
| scenes-heldout | 8 | 9.0 | 15.9 (37) | 4.3 | 117 |
| scenes-heldout | 12 | 13.0 | 24.6 (55) | 4.7 | 143 |
| scenes-heldout | 16 | 17.0 | 33.1 (73) | 5.1 | 154 |
| multitrack (60 s) | auto | 6.5 (6-7) | 6.8 (9) | 2.0 | 138 |
| multitrack (60 s) | 8 | 9.0 | 9.8 (13) | 2.0 | 159 |
| multitrack (60 s) | 12 | 13.0 | 14.5 (19) | 2.0 | 155 |
| multitrack (60 s) | 16 | 17.0 | 20.8 (26) | 2.0 | 179 |

Reading: merging is worth about 2 dB over the best single source on the held-out scenes
(+1.21 -> +3.18 with the automatic proposal) and turns the guitar's best estimate from worse than
the mixture into better than it (-1.58 -> +1.34 dB); more, smaller sources add little: +0.28 dB
from auto to 16 on the scenes, +0.03 on the guitar, and 8 sources are below the automatic proposal
on the scenes (a fixed count forces the grouping to join what it would keep apart elsewhere). The
perfectly grouped peaks stay far above (+9.39 and +5.35): the limit is the grouping of peaks within
each proposed source (a source mixes instruments at the level of notes), which no merge of whole
sources can undo; splitting a source, moving a region, or a finer proposal at the note level is
where the remaining gain is. The oracle's pairwise merges are many (every source that helps a stem
even slightly is taken: 13 to 33 per scene), in 4 to 5 merge gestures (one per stem built from
several sources); how much of the gain fewer merges keep is not measured here.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import separation  # noqa: E402
from formation_multitrack import CACHE, MIN_SHARE, cached, multitrack_items, peak_oracle, scene_items, \
    si_sdr  # noqa: E402

__all__ = ["merge_oracle", "sisdr_of_merge"]


def sisdr_of_merge(G: np.ndarray, C: np.ndarray, rr: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """SI-SDR (dB) of each candidate merge [shape=(m, K)]: ``masks`` [shape=(m, M), 0/1] picks
    sources, ``G`` [shape=(M, M)] their Gram matrix, ``C`` [shape=(M, K)] their dot products with
    the K references, ``rr`` [shape=(K,)] the references' energies; all in float64."""
    dot = masks @ C                                           # (m, K)
    ee = np.einsum("mi,ij,mj->m", masks, G, masks)[:, None]   # (m, 1)
    target = dot ** 2 / rr[None, :]
    err = np.maximum(ee - target, 1e-20)
    out = 10 * np.log10(np.maximum(target, 1e-20) / err)
    return np.where(masks.sum(axis=1, keepdims=True) > 0, out, -np.inf)


def best_subsets(G: np.ndarray, C: np.ndarray, rr: np.ndarray, *, block: int = 1 << 14) -> tuple:
    """Each reference's best merge: ``(mask per reference [shape=(K, M)] of the sources merged,
    SI-SDR per reference [shape=(K,)])``, exhaustive over the 2^M - 1 merges (M <= 18), else a
    local search that adds or removes one source at a time from the best single source."""
    M, K = C.shape
    best = np.full(K, -np.inf)
    masks = np.zeros((K, M))
    if M <= 18:
        for start in range(1, 1 << M, block):
            codes = np.arange(start, min(start + block, 1 << M))
            cand = ((codes[:, None] >> np.arange(M)[None, :]) & 1).astype(np.float64)
            val = sisdr_of_merge(G, C, rr, cand)                 # (m, K)
            k = np.argmax(val, axis=0)
            better = val[k, np.arange(K)] > best
            best[better] = val[k, np.arange(K)][better]
            masks[better] = cand[k[better]]
        return masks, best
    for r in range(K):
        single = sisdr_of_merge(G, C[:, [r]], rr[[r]], np.eye(M))[:, 0]
        cur = np.eye(M)[int(np.argmax(single))]
        val = float(single.max())
        improved = True
        while improved:
            flips = np.abs(cur[None, :] - np.eye(M))
            v = sisdr_of_merge(G, C[:, [r]], rr[[r]], flips)[:, 0]
            improved = float(v.max()) > val + 1e-9
            if improved:
                cur, val = flips[int(np.argmax(v))], float(v.max())
        masks[r], best[r] = cur, val
    return masks, best


def gram(sources: list[np.ndarray], refs: list[np.ndarray]) -> tuple:
    """``(G, C, rr)``: the sources' Gram matrix, their dot products with the references, the
    references' energies (float64): all any merge's SI-SDR needs."""
    S = np.stack([s.astype(np.float64) for s in sources])
    R = np.stack([r.astype(np.float64) for r in refs])
    return S @ S.T, S @ R.T, np.einsum("ij,ij->i", R, R)


def merge_oracle(sources: list[np.ndarray], refs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The best merge of ``sources`` for each of ``refs``: ``(mask [shape=(K, M)], SI-SDR [shape=(K,)])``."""
    return best_subsets(*gram(sources, refs))


def _setting(n: str):
    return None if n == "auto" else int(n)


def run_one(mix: np.ndarray, refs: list[np.ndarray], n: str) -> dict:
    def compute():
        t0 = time.perf_counter()
        sources = separation.get("formation", n_sources=_setting(n), cache=False).separate(mix)
        secs = time.perf_counter() - t0
        G, C, rr = gram([s.audio for s in sources], refs)
        return {"n": len(sources), "G": G.tolist(), "C": C.tolist(), "rr": rr.tolist(), "seconds": secs}
    res = cached(f"gram-{n}", mix, compute)          # the sources' Gram matrix: any merge, no re-run
    G, C, rr = (np.array(res[k]) for k in ("G", "C", "rr"))
    masks, per = best_subsets(G, C, rr)
    single = sisdr_of_merge(G, C, rr, np.eye(len(G))).max(axis=0)
    sizes = masks.sum(axis=1)
    return {"n": res["n"], "merge": [float(v) for v in per], "single": [float(v) for v in single],
            "merges": int(sum(max(z - 1, 0) for z in sizes)), "gestures": int(sum(z >= 2 for z in sizes)),
            "seconds": res["seconds"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=("all", "multitrack", "scenes"), default="all")
    ap.add_argument("--split", choices=("all", "tune", "heldout"), default="heldout", help="scenes split")
    ap.add_argument("--seconds", type=float, default=0.0, help="multitrack: first S seconds (0 = whole songs)")
    ap.add_argument("--n", default="auto,8,12,16", help="settings: auto and/or source counts (2..16)")
    ap.add_argument("--rows", action="store_true", help="one row per recording and setting")
    args = ap.parse_args()
    settings = args.n.split(",")
    items = []
    if args.set in ("all", "multitrack"):
        items.append(multitrack_items(args.seconds))
    if args.set in ("all", "scenes"):
        items.append(scene_items(args.split))
    stats: dict[str, dict[str, list]] = {}
    for gen in items:
        for kind, name, stems in gen:
            mix = np.sum([y for _, y in stems], axis=0).astype(np.float32)
            total = float(np.dot(mix.astype(np.float64), mix))
            keep = [(s, y) for s, y in stems if float(np.dot(y.astype(np.float64), y)) >= MIN_SHARE * total]
            refs = [y for _, y in keep]
            base = np.array([si_sdr(r, mix) for r in refs])
            oracle = np.array(cached("oracle", mix, lambda: peak_oracle(mix, refs))) - base
            keys = [f"{kind} {st_name}" if kind.startswith("multitrack") else kind for st_name, _ in keep]
            for key in dict.fromkeys(keys):
                st = stats.setdefault(key, {"base": [], "oracle": [], "recordings": 0})
                st["recordings"] += 1
            for i, key in enumerate(keys):
                stats[key]["base"].append(base[i])
                stats[key]["oracle"].append(oracle[i])
            for n in settings:
                res = run_one(mix, refs, n)
                gain = np.array(res["merge"]) - base
                for i, key in enumerate(keys):
                    st = stats[key]
                    st.setdefault(f"merge {n}", []).append(gain[i])
                    if n == "auto":
                        st.setdefault("single", []).append(res["single"][i] - base[i])
                for key in dict.fromkeys(keys):
                    st = stats[key]
                    st.setdefault(f"n {n}", []).append(res["n"])
                    st.setdefault(f"merges {n}", []).append(res["merges"])
                    st.setdefault(f"gestures {n}", []).append(res["gestures"])
                    st.setdefault(f"secs {n}", []).append(res["seconds"])
                if args.rows:
                    print(f"| {kind} | {name} | {n} | {res['n']} | "
                          + " ".join(f"{g:+.2f}" for g in gain) + f" | {res['merges']} |", flush=True)
    cols = " | ".join(f"merge {n}" for n in settings)
    print()
    print(f"| material | recordings | stems | mix SI-SDR | auto best | {cols} | peak oracle |")
    print("|---|---|---|---|---|" + "---|" * len(settings) + "---|")
    for kind, st in stats.items():
        vals = " | ".join(f"{np.mean(st[f'merge {n}']):+.2f}" for n in settings)
        single = f"{np.mean(st['single']):+.2f}" if "single" in st else ""
        print(f"| {kind} | {st['recordings']} | {len(st['base'])} | {np.mean(st['base']):.2f} | {single} | {vals} "
              f"| {np.mean(st['oracle']):+.2f} |")
    print()
    print("| material | setting | sources: mean (min-max) | merges: mean (max) | merge gestures: mean | formation s |")
    print("|---|---|---|---|---|---|")
    for kind, st in stats.items():
        for n in settings:
            c, m, g = st[f"n {n}"], st[f"merges {n}"], st[f"gestures {n}"]
            print(f"| {kind} | {n} | {np.mean(c):.1f} ({min(c)}-{max(c)}) | {np.mean(m):.1f} ({max(m)}) | "
                  f"{np.mean(g):.1f} | {np.sum(st[f'secs {n}']):.0f} |")


if __name__ == "__main__":
    main()
