"""Tuning the reference matcher (:class:`core.models.reference_match.ReferenceMatcher`) on pairs of
excerpts of real stereo music of the ``train`` split (:func:`training.reference_data.build_analysed`:
excerpt A of a track as the recording, B of the same track or A of another track of its package as
the reference, each analysed as the app analyses a reference).

The objective is the evaluation's (``soundstage eval --sources --reference``): source E_min over K
proposals (seeds 0..K-1, variety 0), the energy-weighted mean |pan error| of the best one, averaged
over pairs, for same-track and same-album pairs, each as a ratio to the placement model alone (their mean is
minimised). Stages (each on
the fitting pairs; every fifth track by content digest is held out and only reported):

1. the transport's ``temperature`` and ``share_power`` at a fixed narrow ``sigma``, same-track pairs;
2. per pair, E_min for a ladder of pan deviations (from sure to the placement model alone);
3. ``sigma`` (a rung of the ladder) and ``gate_max`` (a pair whose gate is beyond it gets the
   placement model's proposals alone): the setting whose mean of the two ratios is lowest.

    python -m training.train_reference --export resources/models/reference-match.json
"""
from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from core.models.placement import load_placement_model
from core.models.reference_match import ReferenceMatcher
from core.reference import place_features

from .reference_data import analysed_pairs, load_analysed

__all__ = ["split_pairs", "pair_emin", "tune"]

K = 8
TEMPERATURES = (0.05, 0.1, 0.2)
SHARE_POWERS = (1.0,)
LADDER = (0.015, 0.02, 0.03, 0.05, 0.08, 0.15, 0.3, 1.0)
GATE_MAX = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35)


def split_pairs(prs: Sequence, *, every: int = 5) -> tuple[list, list]:
    """(fit, held out): pairs whose recording's track digest is a multiple of ``every`` are held out."""
    held = [int(p[3][:8], 16) % every == 0 for p in prs]
    return [p for p, h in zip(prs, held) if not h], [p for p, h in zip(prs, held) if h]


def _arrays(rec):
    w = np.asarray(rec.share, np.float64)
    return (np.asarray(rec.feats, np.float32), np.asarray(rec.mix, np.float32), w, w / max(float(w.sum()), 1e-30),
            np.asarray(rec.pan, np.float64))


def pair_emin(rec, ref, matcher, model, *, k: int = K) -> float:
    """Source E_min of the proposals with ``ref`` as the reference (``matcher=None``: the placement
    model alone)."""
    f, mix, energy, w, truth = _arrays(rec)
    if matcher is None:
        ys = [model.sample(f, mix, energy, seed=s) for s in range(k)]
    else:
        ys = [place_features(f, mix, energy, ref, model=model, matcher=matcher, seed=s) for s in range(k)]
    return min(float((np.abs(y[:, 0] - truth) * w).sum()) for y in ys)


class _Fixed(ReferenceMatcher):
    """A matcher that follows every reference with its pan deviation one rung of the ladder."""

    def match(self, *a, **kw):
        m = super().match(*a, **kw)
        sig = m.sigma.copy()
        sig[:, 0] = self.sigma
        return replace(m, sigma=sig, confidence=np.ones(len(sig)), followed=True)


def tune(prs: Sequence, *, table=None, log: Callable[[str], None] = print) -> tuple[ReferenceMatcher, dict]:
    """The matcher tuned on ``prs`` ((recording, reference, kind, digest) tuples) and its figures."""
    model = load_placement_model()
    fit, held = split_pairs(prs)
    kinds = ("same-track", "same-album")
    none = {id(p): pair_emin(p[0], p[1], None, model) for p in prs}
    st = [p for p in fit if p[2] == "same-track"]
    best, best_e = None, np.inf
    for t, b in itertools.product(TEMPERATURES, SHARE_POWERS):            # stage 1
        m = _Fixed(temperature=t, share_power=b, sigma=0.03)
        e = float(np.mean([pair_emin(p[0], p[1], m, model) for p in st]))
        log(f"temperature {t}, share power {b}: same-track E_min {e:.4f}")
        if e < best_e:
            best, best_e = m, e
    ladder = {}                                                              # stage 2
    for s in LADDER:
        m = _Fixed(temperature=best.temperature, share_power=best.share_power, sigma=s)
        for p in prs:
            ladder[(id(p), s)] = pair_emin(p[0], p[1], m, model) if s < 1.0 else none[id(p)]
    gates = {id(p): best.match(p[0].feats, p[0].mix, p[1].feats, p[1].mix, p[1].share, p[1].pan, p[1].width,
                               p[1].band_pan or None).gate for p in prs}
    if table is not None:
        Path(table).write_text(json.dumps({"gates": [gates[id(p)] for p in prs], "kinds": [p[2] for p in prs],
                                           "none": [none[id(p)] for p in prs], "ladder": {str(s): [
                                               ladder[(id(p), s)] for p in prs] for s in LADDER}}))
    mean = {kind: float(np.mean([none[id(p)] for p in fit if p[2] == kind])) for kind in kinds}
    best_score, tuned = np.inf, None
    for sig, g in itertools.product(LADDER[:-1], GATE_MAX):                  # stage 3 (exact: beyond the
        e = {kind: float(np.mean([ladder[(id(p), sig)] if gates[id(p)] <= g else none[id(p)]   # gate, the
                                  for p in fit if p[2] == kind])) for kind in kinds}          # model alone)
        score = 0.5 * sum(e[kind] / mean[kind] for kind in kinds)
        log(f"sigma {sig}, gate max {g}: same-track {e['same-track']:.4f}, same-album {e['same-album']:.4f} "
            f"(none {mean['same-track']:.4f}), score {score:.3f}")
        if score < best_score:
            best_score = score
            tuned = ReferenceMatcher(temperature=best.temperature, share_power=best.share_power, sigma=sig,
                                     gate_max=g)
    figures = {}
    for name, group in (("fit", fit), ("held_out", held)):
        exact = {kind: float(np.mean([pair_emin(p[0], p[1], tuned, model) for p in group if p[2] == kind]))
                 for kind in kinds if any(p[2] == kind for p in group)}
        figures[name] = {kind: {"pairs": sum(p[2] == kind for p in group), "none": float(np.mean(
            [none[id(p)] for p in group if p[2] == kind])), "reference": exact[kind]} for kind in exact}
        log(f"{name}: " + ", ".join(f"{kind} {v['reference']:.4f} (none {v['none']:.4f}, {v['pairs']} pairs)"
                                    for kind, v in figures[name].items()))
    return tuned, figures


def _main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", default=None, help="analysed excerpts' folder (default: the reference cache)")
    ap.add_argument("--export", default=None, help="write the tuned matcher here")
    ap.add_argument("--table", default=None, help="write the per-pair E_min table (gates, ladder, none) here")
    a = ap.parse_args()
    t0 = time.monotonic()
    scenes, packages = load_analysed("train", out=Path(a.scenes) if a.scenes else None)
    digest = {id(sc): d for d, v in scenes.items() for sc in v.values()}
    prs = [(r, f, kind, digest[id(r)]) for r, f, kind in analysed_pairs(scenes, packages)]
    print(f"{len(scenes)} tracks, {len(prs)} pairs", flush=True)
    m, figures = tune(prs, table=a.table, log=lambda s: print(s, flush=True))
    info = {"tracks": len(scenes), "k": K, "figures": figures, "minutes": round((time.monotonic() - t0) / 60, 1)}
    print(json.dumps({"params": m.params(), "info": info}))
    if a.export:
        m.save(Path(a.export), info)


if __name__ == "__main__":
    _main()
