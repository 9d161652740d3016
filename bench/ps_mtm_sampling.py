"""PS-MTM's sampling defaults judged on held-out ``train`` excerpts: its sampled parameters on the whole mix (not
decoded) against the real stereo's, per model folder and setting (temperature / guidance).

Excerpts: the middle of every 8th clean train track from the 4th (the tracks the detail calibration does not fit
on), seeds 0 and 1. Prints D_F, the IID and IC blocks' D_F, D_F after every IC dimension is mapped to the real
pool's mean and standard deviation (what the chain's IC calibration can do: the criterion the defaults are chosen
by), the IID standard deviation (bands 0-10 / 11-33) and the mean IC.

    nice .venv/bin/python bench/ps_mtm_sampling.py FOLDER:1.75/2.0 FOLDER:2.0/2.0 OTHER_FOLDER:1.75/2.0
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.models.base import load_model  # noqa: E402
from training.evaluation import load_excerpts  # noqa: E402
from training.ps_metrics import embed, frechet_distance  # noqa: E402


def _df(a: np.ndarray, b: np.ndarray) -> float:
    return frechet_distance(a.mean(0), np.cov(a.T), b.mean(0), np.cov(b.T))


def main(argv=None) -> int:
    runs = sys.argv[1:] if argv is None else argv
    if not runs:
        print(__doc__)
        return 2
    exs = load_excerpts(None, "train", 10.0, None, per_track=1, every=4)[1::2]
    real = np.concatenate([embed(e.real) for e in exs])
    for run in runs:
        folder, setting = run.rsplit(":", 1)
        tau, g = map(float, setting.split("/"))
        m, t0 = load_model("ps-mtm", folder), time.time()
        gen = np.concatenate([embed(m.predict(e.mono, seed=k, temperature=tau, guidance=g).fit_frames(e.real.n_frames))
                              for e in exs for k in (0, 1)])
        aff = gen.copy()
        aff[:, 34:] = ((aff[:, 34:] - aff[:, 34:].mean(0)) / (aff[:, 34:].std(0) + 1e-9) * real[:, 34:].std(0)
                       + real[:, 34:].mean(0))
        print(f"{run:50s} D_F {_df(real, gen):.2f} IID {_df(real[:, :34], gen[:, :34]):.2f} "
              f"IC {_df(real[:, 34:], gen[:, 34:]):.2f} after the IC map {_df(real, aff):.2f} "
              f"IID sd {gen[:, :11].std(0).mean():.3f}/{gen[:, 11:34].std(0).mean():.3f} "
              f"IC mean {gen[:, 34:].mean():.3f} ({time.time() - t0:.0f} s)", flush=True)
    print(f"real: IID sd {real[:, :11].std(0).mean():.3f}/{real[:, 11:34].std(0).mean():.3f} "
          f"IC mean {real[:, 34:].mean():.3f} ({len(exs)} excerpts)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
