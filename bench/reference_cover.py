"""Covering renditions of a followed reference (issue 27, session 12; core.cover): what they gain and cost.

Quality: on the analysed ``train`` pairs (``python -m training.reference_data``; the tuner's fitting and
held-out pairs), source E_min as a ratio to the placement model alone at K = 8 and at the first 4
renditions, for the shipped matcher with its renditions chosen together (its file as it is) and drawn
each on its own (``cover`` 0, everything else the same), for same-track and same-album references.
Speed: the seconds a rendition takes with the shipped matcher for the biggest analysed scenes, the first
of a block (its pool drawn and the renditions chosen) and the next (kept).

    .venv/bin/python bench/reference_cover.py [--limit N]
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from core.models.placement import load_placement_model
from core.models.reference_match import load_reference_matcher
from core.reference import place_features
from training.reference_data import analysed_pairs, load_analysed
from training.train_reference import pair_errors, split_pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=0, help="at most this many pairs per group (0: all)")
    a = ap.parse_args()
    scenes, packages = load_analysed("train")
    if not scenes:
        raise SystemExit("no analysed train excerpts: run python -m training.reference_data --split train first")
    prs = analysed_pairs(scenes, packages, with_digest=True)
    model, shipped = load_placement_model(), load_reference_matcher()
    matchers = {"chosen together (shipped)": shipped, "each on its own": replace(shipped, cover=0.0)}
    print(f"{len(scenes)} analysed train tracks; shipped matcher: cover {shipped.cover:g}, temperature "
          f"{shipped.cover_temperature:g}, sigma {shipped.sigma:g}, spread {shipped.spread:g}")
    print(f"{'pairs':9s} {'kind':11s} {'n':>4s} {'renditions':26s} {'E_min K8':>9s} {'ratio':>6s} {'E_min K4':>9s} {'ratio':>6s}")
    for group, pairs in zip(("fit", "held out"), split_pairs(prs)):
        for kind in ("same-track", "same-album"):
            g = [p for p in pairs if p[2] == kind][: a.limit or None]
            none = [pair_errors(p[0], p[1], None, model) for p in g]
            n8, n4 = np.mean([min(e) for e in none]), np.mean([min(e[:4]) for e in none])
            print(f"{group:9s} {kind:11s} {len(g):4d} {'placement model alone':26s} {n8:9.4f} {1:6.3f} {n4:9.4f} {1:6.3f}")
            for name, m in matchers.items():
                errs = [pair_errors(p[0], p[1], m, model) for p in g]
                e8, e4 = np.mean([min(e) for e in errs]), np.mean([min(e[:4]) for e in errs])
                print(f"{'':9s} {'':11s} {'':4s} {name:26s} {e8:9.4f} {e8 / n8:6.3f} {e4:9.4f} {e4 / n4:6.3f}")
    print(f"\n{'sources':>7s} {'ref sources':>11s} {'first of a block s':>18s} {'next s':>8s}")
    for v in sorted((v for v in scenes.values() if "B" in v), key=lambda v: -len(v["A"].pan))[:3]:
        rec, ref = v["A"], v["B"]
        f, mix, w = np.asarray(rec.feats, np.float32), np.asarray(rec.mix, np.float32), np.asarray(rec.share)
        cover_m = replace(shipped, gate_max=1.0)            # followed closely, whatever its gate
        times = []
        for seed in (0, 1):
            t0 = time.perf_counter()
            place_features(f, mix, w, ref, model=model, matcher=cover_m, seed=seed)
            times.append(time.perf_counter() - t0)
        print(f"{len(rec.pan):7d} {len(ref.pan):11d} {times[0]:18.3f} {times[1]:8.3f}")


if __name__ == "__main__":
    main()
