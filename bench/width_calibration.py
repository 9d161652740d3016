"""Where the chain loses width, and the calibration of its width: the chain's output at variety 0
(formation sources, the placement model, PS-MTM's tiles rendered band by band) against the real
stereo of the same excerpts, for variants of the rendering rule.

Calibrates on the ``train`` split (never on ``valid``): one 10-s excerpt from the middle of every
``--every``-th train track (tracks that are copies of other splits' files left out), K seeds.
Prints per variant: E_min (+-se), D_F (+-se, bootstrap over tracks), median broadband L/R
correlation and side-to-mid level, beside the real stereo's own medians and PS-MTM decoded on the
whole mix. Sources, decorrelated copies and PS-MTM's predictions are cached (``--cache``), so
trying a variant costs only the rendering.

    nice .venv/bin/python bench/width_calibration.py --split train --every 6 -K 2 \\
        --gains 1,1.25,1.5 [--no-downmix-gain]
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import formation_separate  # noqa: E402

import core.decoder as D  # noqa: E402
import core.renderer as R  # noqa: E402
from core.models.base import load_model  # noqa: E402
from core.placement import propose  # noqa: E402
from core.ps import analyze  # noqa: E402
from training.evaluation import load_excerpts  # noqa: E402
from training.evaluation_sources import _cached, _cached_decode, _cached_sources, prediction_tag  # noqa: E402
from training.image_metrics import OutputPool, broadband_correlation, paired_se, side_to_mid_db  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--split", default="train")
    ap.add_argument("--every", type=int, default=6, help="every N-th track of the split")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--per-track", type=int, default=1, help="excerpts per track (as soundstage eval)")
    ap.add_argument("-K", type=int, default=2)
    ap.add_argument("--variety", type=float, default=0.0)
    ap.add_argument("--gains", default="1", help="comma-separated width gains (core.placement.WIDTH_GAIN) to try")
    ap.add_argument("--variants", default="", help="more variants, comma-separated GAIN:MAX_RATIO:KEEP_SIGN "
                    "(e.g. 1.3:2:1); MAX_RATIO 1 keeps PS-MTM's tile widths as they are")
    ap.add_argument("--no-downmix-gain", action="store_true", help="also the rendering without the downmix power gain")
    ap.add_argument("--only-no-downmix-gain", action="store_true", help="with --no-downmix-gain: not the --gains "
                    "rows with the gain")
    ap.add_argument("--roundtrip", action="store_true", help="also the real parameters decoded onto the mono, with the "
                    "decoder's power law and at the power real stereo has (core.placement.downmix_gain)")
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "soundstage-train" / "eval-cache"))
    a = ap.parse_args(argv)
    if a.split == "valid":
        print("note: calibrate on train; on valid this only measures (e.g. before/after, paired)", file=sys.stderr)
    sep = formation_separate

    t0 = time.monotonic()
    exs = load_excerpts(a.data, a.split, 10.0, a.limit, per_track=a.per_track, every=a.every, keep_stereo=True)
    cache = Path(a.cache) / a.split
    ps = load_model("ps-mtm")
    tag = prediction_tag("ps-mtm")
    gains = [g for g in a.gains.split(",") if g]
    variants = [(f"chain v{a.variety:g}, width gain {g}, no downmix gain", float(g), False, 2.0, False)
                for g in gains] if a.no_downmix_gain else []      # the rendering before issue 24 first
    if not a.only_no_downmix_gain:
        variants += [(f"chain v{a.variety:g}, width gain {g}", float(g), True, 2.0, False) for g in gains]
    for v in filter(None, a.variants.split(",")):
        g, mr, ks = v.split(":")
        variants.append((f"chain v{a.variety:g}, width gain {g}, max ratio {mr}{', sign kept' if int(ks) else ''}",
                         float(g), True, float(mr), bool(int(ks))))
    dec = load_model("decorr")
    pools = {"real": OutputPool(), "next": OutputPool(), "decorr": OutputPool(), "ps": OutputPool(),
             **{v[0]: OutputPool() for v in variants}}
    ones = lambda iid, ic: np.ones(np.shape(iid), np.float32)  # noqa: E731

    for j, ex in enumerate(exs):
        digest = hashlib.sha1(ex.mono.tobytes()).hexdigest()[:16]
        renders, residual = _cached_sources(cache, digest, ex.mono, sep, None)
        energies = np.stack([r.energy for r in renders])
        pools["real"].add(ex.track, ex.real, [ex.real], [ex.stereo])
        pools["next"].add(ex.track, ex.real, [ex.other], [ex.other_stereo])
        p, m = _cached_decode(cache, f"decorr-{digest}", ex.mono, dec.predict(ex.mono), None)
        pools["decorr"].add(ex.track, ex.real, [p], weight=float(a.K), measures=[m])
        if a.roundtrip:
            for name, law in (("roundtrip", ones), ("roundtrip-power", D.downmix_gain)):
                saved, D.downmix_gain = D.downmix_gain, law     # the decoder's law before issue 24, and its own
                try:
                    y = D.decode(ex.mono, ex.real)
                finally:
                    D.downmix_gain = saved
                pools.setdefault(name, OutputPool()).add(ex.track, ex.real, [analyze(y)], [y])
        outs = {k: ([], []) for k in pools if k not in ("real", "next", "decorr", "roundtrip", "roundtrip-power")}
        for seed in range(a.K):
            key = f"ps-mtm-{digest}-{seed}"
            params = _cached(cache, key, lambda: ps.predict(ex.mono, seed=seed), tag)
            p, m = _cached_decode(cache, key + "-decoded", ex.mono, params, None, tag)
            outs["ps"][0].append(p)
            outs["ps"][1].append(m)
            pl = propose(energies, method="model", seed=seed, variety=a.variety, residual=residual)
            centres = np.array([(q.pan, q.width) for q in pl])
            for name, g, dm, mr, ks in variants:
                saved = R.downmix_gain
                R.downmix_gain = saved if dm else ones
                try:
                    iid, ic = R.tile_parameters(params, energies, centres=centres, width_gain=g, max_ratio=mr,
                                                keep_sign=ks)
                    for i, r in enumerate(renders):
                        r.tiles, r.auto = (iid[i], ic[i]), None
                        r.auto = R.render_auto(r, iid[i], ic[i])
                    y = R.mix(renders, pl)          # (the mix may re-make auto pairs from their tiles)
                finally:
                    R.downmix_gain = saved
                outs[name][0].append(analyze(y))
                outs[name][1].append((broadband_correlation(y), side_to_mid_db(y)))
        for k, (ps_, ms_) in outs.items():
            pools[k].add(ex.track, ex.real, ps_, measures=ms_)
        print(f"\r{j + 1}/{len(exs)} excerpts", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print(f"split {a.split!r}: {len(exs)} excerpts of 10 s (every {a.every}th track), K = {a.K}")
    head = f"{'rendering':<46s} {'E_min':>6s} {'(+-se)':>6s} {'D_F':>6s} {'(+-se)':>6s} {'corr':>6s} {'S/M dB':>7s}"
    print(head)
    print("-" * len(head))
    labels = {"real": "real stereo (the reference)", "next": "real stereo, next 10 s", "decorr": "decorr on the whole mix",
              "ps": "ps-mtm on the whole mix", "roundtrip": "PS roundtrip (real parameters decoded)",
              "roundtrip-power": "PS roundtrip at real stereo's power"}
    figs = {k: pool.figures() for k, pool in pools.items()}
    base = figs[variants[0][0]] if variants else None
    for k, f in figs.items():
        se = f"{f.e_min_se:6.3f}" if f.e_min_se is not None else " " * 6
        dse = f"{f.d_f_se:6.2f}" if f.d_f_se is not None else " " * 6
        pse = paired_se(f, base) if base is not None else None
        vs = f"  D_F vs the first chain row {f.d_f - base.d_f:+.2f} +- {pse:.2f}" if pse is not None else ""
        print(f"{labels.get(k, k):<46s} {f.e_min:6.3f} {se} {f.d_f:6.2f} {dse} {f.corr:6.3f} {f.side_mid_db:7.2f}{vs}")
    print(f"({time.monotonic() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
