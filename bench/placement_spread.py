"""How far from the centre the placement model's variety-0 proposals sit, against the real sources (issue 24).

On ``train`` excerpts whose formation sources are in the eval cache (``bench/rendition_spread.py`` fills it: the
middle 10 s of every ``--every``-th clean track), every source's true place is measured in the real stereo
(:func:`core.models.placement_features.true_placement`) and the placement model proposes K scenes at variety 0
(seeds 0..K-1). Variants: ``base`` (the model as shipped), ``scale@G`` (every proposed pan times G, clipped),
``sd@G`` (the pan standard deviations of the model's mixture components times G while sampling: a temperature
on the pan alone). Printed per variant: the source-level measures of ``soundstage eval --sources``
(:func:`training.evaluation_sources.source_metrics`: diversity, D_F over (pan, width), source E_min +- se, mean
|pan|) and the energy-weighted rms pan of the proposals against the real sources'.

    nice .venv/bin/python bench/placement_spread.py --every 12 -K 4 --variants base,scale@1.5,sd@1.5
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.models import placement as pm  # noqa: E402
from core.models import placement_features as pf  # noqa: E402
from core.stft import stft  # noqa: E402
from training.evaluation import load_excerpts  # noqa: E402
from training.evaluation_sources import _cached_sources, source_metrics  # noqa: E402

CACHE = Path.home() / ".cache" / "soundstage-realism" / "eval-cache"


def sample(model, e, residual, seed: int, spec: str) -> np.ndarray:
    name, _, arg = spec.partition("@")
    g = float(arg) if arg else 1.0
    feats, mix = pf.source_features(e, residual), pf.mix_features(e)
    if name == "sd":
        dens = model.density

        def wider(*a, **k):
            w, mu, sd = dens(*a, **k)
            sd = sd.copy()
            sd[..., 0] *= g
            return w, mu, sd
        model.density = wider
        try:
            return model.sample(feats, mix, e.sum(axis=(1, 2)), seed=seed, variety=0.0)
        finally:
            del model.density
    y = model.sample(feats, mix, e.sum(axis=(1, 2)), seed=seed, variety=0.0)
    if name == "scale":
        y[:, 0] = np.clip(g * y[:, 0], -1.0, 1.0)
    elif name != "base":
        raise SystemExit(f"unknown variant {spec!r}")
    return y


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", default="train")
    ap.add_argument("--every", type=int, default=12)
    ap.add_argument("--per-track", type=int, default=1)
    ap.add_argument("-K", type=int, default=4)
    ap.add_argument("--cache", default=str(CACHE))
    ap.add_argument("--models-dir", default=None)
    ap.add_argument("--variants", default="base,scale@1.5,scale@2,sd@1.5,sd@2")
    a = ap.parse_args(argv)
    specs = a.variants.split(",")
    model = pm.load_placement_model(a.models_dir)
    cache = Path(a.cache) / a.split
    truth, props = [], {s: [] for s in specs}
    for ex in load_excerpts(None, a.split, 10.0, None, per_track=a.per_track, every=a.every, keep_stereo=True):
        digest = hashlib.sha1(ex.mono.tobytes()).hexdigest()[:16]
        if not (cache / f"sources-{digest}.npz").exists():
            continue
        renders, residual = _cached_sources(cache, digest, None, None, None)
        t = pf.true_placement(np.stack([stft(r.s) for r in renders]), stft(ex.stereo[:, 0]), stft(ex.stereo[:, 1]))
        truth.append((t["pan"], t["width"], t["energy"]))
        e = np.maximum(np.stack([r.energy for r in renders]).astype(np.float64), 0.0)
        for s in specs:
            props[s].append(np.stack([sample(model, e, residual, seed, s) for seed in range(a.K)]))
    w = [t[2] / t[2].sum() for t in truth]
    rms_real = np.sqrt(sum((wi * t[0] ** 2).sum() for wi, t in zip(w, truth)) / len(truth))
    print(f"split {a.split!r}: {len(truth)} excerpts, {sum(len(t[0]) for t in truth)} sources, K = {a.K}; real "
          f"sources: rms pan {rms_real:.3f}, mean |pan| "
          f"{np.mean([(wi * np.abs(t[0])).sum() for wi, t in zip(w, truth)]):.3f}")
    quiet = [wi < 0.1 for wi in w]
    q_real = np.concatenate([np.abs(t[0])[q] for t, q in zip(truth, quiet)])
    print(f"sources under 10% of their excerpt's energy: {len(q_real)}, real mean |pan| {q_real.mean():.3f} "
          f"(median {np.median(q_real):.3f}, 90th percentile {np.quantile(q_real, 0.9):.3f})")
    head = (f"{'variant':<12s} {'diversity':>9s} {'D_F(pan,w)':>10s} {'src E_min':>9s} {'(+-se)':>7s} {'mean|pan|':>9s} "
            f"{'rms pan':>8s} {'quiet|pan|':>10s}")
    print(head)
    print("-" * len(head))
    for s in specs:
        r = source_metrics(truth, props[s])
        rms = np.sqrt(np.mean([(wi[None] * p[:, :, 0] ** 2).sum(axis=1).mean() for wi, p in zip(w, props[s])]))
        print(f"{s:<12s} {r['diversity']:9.3f} {r['frechet']:10.4f} {r['e_min']:9.3f} {r['e_min_se']:7.3f} "
              f"{r['mean_abs_pan']:9.3f} {rms:8.3f} "
              f"{np.concatenate([np.abs(p[:, q, 0]).ravel() for p, q in zip(props[s], quiet)]).mean():10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
