"""The band leans on held-out ``train`` excerpts: the chain at variety 0, K renditions (seeds 0..K-1, each as the app
draws it: ``DetailCalibration.for_rendition``), with each calibration file given, beside the real stereo's next 10 s.

Excerpts: the middle of every 8th clean train track from the 4th (``--every 4``, odd positions: the tracks
``soundstage train --method detail|lean --every 8`` does not fit on); sources and PS-MTM's predictions from the
cache. Prints per calibration E_min (± se over excerpts; paired difference to the first ± se), D_F of the pooled
renditions, the median broadband correlation and side-to-mid level; the next 10 s's E and D_F.

    nice .venv/bin/python bench/lean_check.py -K 4 --calibration without=OLD.json --calibration with=NEW.json
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import formation_separate  # noqa: E402

from core.detail import DetailCalibration  # noqa: E402
from core.models.base import load_model  # noqa: E402
from core.placement import propose  # noqa: E402
from core.ps import analyze  # noqa: E402
from core.renderer import auto_renders, mix  # noqa: E402
from training.evaluation import load_excerpts  # noqa: E402
from training.evaluation_sources import _cached, _cached_sources, prediction_tag  # noqa: E402
from training.image_metrics import broadband_correlation, side_to_mid_db  # noqa: E402
from training.ps_metrics import GaussianStats, frechet_distance, rendition_error  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("-K", type=int, default=4)
    ap.add_argument("--calibration", action="append", required=True, help="NAME=FILE (repeat)")
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "soundstage-realism" / "eval-cache" / "train"))
    a = ap.parse_args(argv)
    cals = dict(c.split("=", 1) for c in a.calibration)
    cals = {n: DetailCalibration.load(f) for n, f in cals.items()}
    cache = Path(a.cache)
    exs = load_excerpts(a.data, "train", 10.0, a.limit, every=a.every, keep_stereo=True)[1::2]
    ps, tag = load_model("ps-mtm"), prediction_tag("ps-mtm")
    real, nxt = GaussianStats(), GaussianStats()
    pools = {n: GaussianStats() for n in cals}
    emin = {n: [] for n in cals}
    width = {n: [] for n in cals}
    next_e = []
    for j, ex in enumerate(exs):
        digest = hashlib.sha1(ex.mono.tobytes()).hexdigest()[:16]
        renders, residual = _cached_sources(cache, digest, ex.mono, formation_separate, None)
        energies = np.stack([r.energy for r in renders])
        real.add_params(ex.real)
        other = ex.other.fit_frames(ex.real.n_frames)
        nxt.add_params(other)
        next_e.append(rendition_error(ex.real, other))
        done: dict = {}
        for seed in range(a.K):
            p = _cached(cache, f"ps-mtm-{digest}-{seed}", lambda: ps.predict(ex.mono, seed=seed), tag)
            pl = propose(energies, method="model", seed=seed, variety=0.0, residual=residual)
            errs = {}
            for n, cal in cals.items():
                c = cal.for_rendition(seed)
                leans = c.lean_offsets if c.lean_offsets is not None and np.any(c.lean_offsets) else None
                key = (repr(c.to_dict()), None if leans is None else leans.tobytes())     # seed 0 leans none
                if key not in done:
                    auto_renders(renders, p, np.array([(q.pan, q.width) for q in pl]), detail=c)
                    out = mix(renders, pl)
                    done[key] = (analyze(out).fit_frames(ex.real.n_frames), broadband_correlation(out),
                                 side_to_mid_db(out))
                an, corr, side = done[key]
                pools[n].add_params(an, 1.0 / a.K)
                errs[n] = rendition_error(ex.real, an)
                width[n].append((corr, side))
            for n in cals:
                if seed == 0:
                    emin[n].append(errs[n])
                else:
                    emin[n][-1] = min(emin[n][-1], errs[n])
        print(f"\r{j + 1}/{len(exs)} excerpts", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    first = next(iter(cals))
    print(f"{len(exs)} held-out train excerpts, K = {a.K}")
    print(f"{'':24s} {'E_min':>7s} {'se':>6s} {'paired':>16s} {'D_F':>6s} {'corr':>6s} {'S/M dB':>7s}")
    ne = np.array(next_e)
    print(f"{'real stereo, next 10 s':24s} {ne.mean():7.4f} {ne.std(ddof=1) / np.sqrt(len(ne)):6.4f} {'':16s} "
          f"{frechet_distance(real.mean, real.cov, nxt.mean, nxt.cov):6.3f}")
    for n in cals:
        e = np.array(emin[n])
        d = e - np.array(emin[first])
        w = np.array(width[n])
        print(f"{n:24s} {e.mean():7.4f} {e.std(ddof=1) / np.sqrt(len(e)):6.4f} "
              f"{d.mean():+8.4f} ±{d.std(ddof=1) / np.sqrt(len(d)):6.4f} "
              f"{frechet_distance(real.mean, real.cov, pools[n].mean, pools[n].cov):6.3f} "
              f"{np.median(w[:, 0]):6.3f} {np.median(w[:, 1]):7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
