"""Where E_min comes from on the valid split: IID and IC parts for models and references.

    .venv/bin/python bench/emin_analysis.py [-K 8] [--models-dir DIR] [--skip-mtm]

Same excerpts and measures as ``soundstage eval`` (one 10-s excerpt from the middle of each
clean ``valid`` track; ``training/ps_metrics.py``). For every row: the mean error of a rendition
split into its IID part (0.15 |clip(dIID, +-20 dB)| averaged over bands and frames) and its IC
part (|dIC|), E_min over K renditions, and D_F. The reference rows are not models:

* "IID 0, training-median IC": the per-band median IC of 10-s excerpts of the train split and
  0 dB IID, constant: the best fixed profile in the spirit of Decorr;
* "real stereo, next 10 s": the real parameters of the neighbouring 10 s of the *same* track
  (the evaluation's "Stereo" D_F reference) used as a rendition: a generator that knows how
  this very track is mixed, but not frame by frame; "+ mirror": the better of it and its
  left/right mirror image (two renditions).

PS-MTM rows vary the sampling noise on the IID tokens alone (``iid_temperature``) with the
model's default temperature for IC and guidance. Not a test: it prints a table.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.datahash import distinct  # noqa: E402
from training.dataset import load_excerpt, tracks  # noqa: E402
from training.evaluation import load_excerpts  # noqa: E402
from core.models import load_model  # noqa: E402
from core.ps import PSParams, analyze  # noqa: E402
from training.ps_metrics import GaussianStats, d_f, delta  # noqa: E402


def _fit(p: PSParams, t: int) -> PSParams:
    reps = int(np.ceil(t / p.iid.shape[1]))
    return PSParams(np.tile(p.iid, reps)[:, :t], np.tile(p.ic, reps)[:, :t])


def _mirror(p: PSParams) -> PSParams:
    return PSParams(-p.iid, p.ic)


def train_median_ic(limit: int = 60) -> np.ndarray:
    ics = []
    for t in distinct(tracks(split="train"))[:limit]:
        if t.seconds >= 10:
            ics.append(analyze(load_excerpt(t.path, t.seconds / 2 - 5, 10.0)).ic)
    return np.median(np.concatenate(ics, axis=1), axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-K", type=int, default=8)
    ap.add_argument("--models-dir", default=None)
    ap.add_argument("--skip-mtm", action="store_true")
    args = ap.parse_args()
    ex = load_excerpts(None, "valid", 10.0)
    real = GaussianStats()
    for e in ex:
        real.add_params(e.real)
    print(f"{len(ex)} clean valid excerpts of 10 s, K = {args.K}")
    print(f"{'rendition':40s} {'E_min':>6s} {'E mean':>7s} {'IID':>6s} {'IC':>6s} {'D_F':>7s}")

    def row(name, renditions):   # renditions: per excerpt, a list of PSParams
        e_min, e_all, e_iid, e_ic = [], [], [], []
        gen = GaussianStats()
        for e, rs in zip(ex, renditions):
            errs = []
            for r in rs:
                d = delta(e.real, r)
                errs.append(d.mean())
                e_iid.append(d[:34].mean())
                e_ic.append(d[34:].mean())
                gen.add_params(r, weight=args.K / len(rs))
            e_min.append(min(errs))
            e_all.extend(errs)
        print(f"{name:40s} {np.mean(e_min):6.3f} {np.mean(e_all):7.3f} {np.mean(e_iid):6.3f} {np.mean(e_ic):6.3f} "
              f"{d_f(real, gen):7.2f}", flush=True)

    for name in ("mono", "decorr", "ps-reg", "ps-nn"):
        m = load_model(name, args.models_dir)
        row(name, [[m.predict(e.mono)] for e in ex])
    med = train_median_ic()
    row("IID 0, training-median IC (constant)",
        [[PSParams(np.zeros_like(e.real.iid), np.repeat(med[:, None], e.real.ic.shape[1], 1))] for e in ex])
    nb = [_fit(e.other, e.real.iid.shape[1]) for e in ex]
    row("real stereo, next 10 s of the same track", [[p] for p in nb])
    row("real stereo, next 10 s + its mirror", [[p, _mirror(p)] for p in nb])
    if args.skip_mtm:
        return
    mtm = load_model("ps-mtm", args.models_dir)
    for tau_iid in (None, 1.0, 0.5, 0.0):
        label = "default" if tau_iid is None else f"iid_temperature {tau_iid}"
        row(f"ps-mtm ({label})", [[mtm.predict(e.mono, seed=s, iid_temperature=tau_iid) for s in range(args.K)]
                                  for e in ex])


if __name__ == "__main__":
    main()
