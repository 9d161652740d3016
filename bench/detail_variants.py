"""Which parts of a fitted detail calibration to ship, and at which width gain: the chain at variety 0 (seed 0)
on held-out ``train`` excerpts, uncalibrated and with variants of a calibration file (``training/fit_detail.py``).

Excerpts: the middle of every ``--every``-th clean train track, and with ``--odd`` only the odd positions of that
list (``soundstage train --method detail --every 8`` fits on the even ones when ``--every 4``: these are held out);
sources and PS-MTM's predictions from the cache. Prints per variant D_F, the mean rendition error E, the median
broadband correlation and side-to-mid level.

    nice .venv/bin/python bench/detail_variants.py --every 4 --limit 30 --odd --calibration FIT.json \\
        --variants raw,full@1.8,ic@1.8,iid@1.8,ic@2.1,ic@2.4,ic@2.8
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.detail import DetailCalibration  # noqa: E402
from core.placement import propose  # noqa: E402
from core.ps import analyze  # noqa: E402
from core.renderer import auto_renders, mix  # noqa: E402
from training.evaluation import load_excerpts  # noqa: E402
from training.evaluation_sources import _cached, _cached_sources, prediction_tag  # noqa: E402
from training.image_metrics import broadband_correlation, side_to_mid_db  # noqa: E402
from training.ps_metrics import GaussianStats, frechet_distance, rendition_error  # noqa: E402


def variant(spec: str, cal: DetailCalibration):
    """``raw``, or PART@GAIN with PART one of full / ic / iid (the other maps left as the identity)."""
    if spec == "raw":
        return None
    part, gain = spec.split("@")
    ident = DetailCalibration.identity()
    iid = (cal.iid_from, cal.iid_to) if part in ("full", "iid") else (ident.iid_from, ident.iid_to)
    ic = (cal.ic_from, cal.ic_to) if part in ("full", "ic") else (ident.ic_from, ident.ic_to)
    return DetailCalibration(*iid, *ic, width_gain=float(gain))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--split", default="train")
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--limit", type=int, default=30)
    ap.add_argument("--odd", action="store_true", help="only the odd positions of the list (held out from --every 2N)")
    ap.add_argument("--calibration", required=True)
    ap.add_argument("--variants", default="raw,full@1.8,ic@1.8,iid@1.8")
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "soundstage-realism" / "eval-cache"))
    a = ap.parse_args(argv)
    cal = DetailCalibration.load(a.calibration)
    specs = a.variants.split(",")
    vs = {s: variant(s, cal) for s in specs}
    cache = Path(a.cache) / a.split
    exs = load_excerpts(a.data, a.split, 10.0, a.limit, every=a.every, keep_stereo=True)
    real = GaussianStats()
    gen = {s: GaussianStats() for s in specs}
    errs, corr, side = ({s: [] for s in specs} for _ in range(3))
    real_m = []
    for i, ex in enumerate(exs):
        if a.odd and i % 2 == 0:
            continue
        digest = hashlib.sha1(ex.mono.tobytes()).hexdigest()[:16]
        if not (cache / f"sources-{digest}.npz").exists():
            continue                                  # only excerpts whose sources and prediction are cached
        renders, residual = _cached_sources(cache, digest, None, None, None)
        energies = np.stack([r.energy for r in renders])
        params = _cached(cache, f"ps-mtm-{digest}-0", None, prediction_tag("ps-mtm"))
        pl = propose(energies, method="model", seed=0, variety=0.0, residual=residual)
        real.add_params(ex.real)
        real_m.append((broadband_correlation(ex.stereo), side_to_mid_db(ex.stereo)))
        for s, c in vs.items():
            auto_renders(renders, params, np.array([(q.pan, q.width) for q in pl]), detail=c)
            y = mix(renders, pl)
            corr[s].append(broadband_correlation(y))
            side[s].append(side_to_mid_db(y))
            p = analyze(y).fit_frames(ex.real.n_frames)
            gen[s].add_params(p)
            errs[s].append(rendition_error(ex.real, p))
        print(f"\r{len(real_m)} excerpts", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    rm = np.array(real_m)
    print(f"split {a.split!r}: {len(real_m)} excerpts (every {a.every}th track{', odd positions' if a.odd else ''}), "
          f"seed 0; real stereo: corr {np.median(rm[:, 0]):.3f}, S/M {np.median(rm[:, 1]):.2f} dB")
    head = f"{'variant':<12s} {'D_F':>6s} {'E':>7s} {'corr':>6s} {'S/M dB':>7s}"
    print(head)
    print("-" * len(head))
    for s in specs:
        d = frechet_distance(real.mean, real.cov, gen[s].mean, gen[s].cov)
        print(f"{s:<12s} {d:6.3f} {np.mean(errs[s]):7.4f} {np.median(corr[s]):6.3f} {np.median(side[s]):7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
