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
of any grouping). Results per recording and setting are cached in ``~/.cache/soundstage-bench``.
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
            st = stats.setdefault(kind, {"base": [], "oracle": [], "recordings": 0})
            st["base"] += list(base)
            st["oracle"] += list(oracle)
            st["recordings"] += 1
            for n in settings:
                res = run_one(mix, refs, n)
                gain = np.array(res["merge"]) - base
                st.setdefault(f"merge {n}", []).extend(gain)
                st.setdefault(f"n {n}", []).append(res["n"])
                st.setdefault(f"merges {n}", []).append(res["merges"])
                st.setdefault(f"gestures {n}", []).append(res["gestures"])
                st.setdefault(f"secs {n}", []).append(res["seconds"])
                if n == "auto":
                    st.setdefault("single", []).extend(np.array(res["single"]) - base)
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
