"""Where the whole output's D_F comes from: the Fréchet distance between the real stereo's PS frames and
an approach's, taken apart.

Collects, per excerpt (``soundstage eval --sources`` excerpts and cache), the 68-dim D_F frames
(``training.ps_metrics.embed``) of the real stereo, of its next 10 s, of PS-MTM decoded on the whole mix
and of the chain at variety 0 (formation sources, the placement model, every auto source rendered band
by band; without and, when PS-MTM has one, with its detail calibration), keeps them in ``--frames FILE`` (npz), and prints for each approach against the real stereo:

* ``D_F`` and its two terms: the means' ``|mu_r - mu_g|^2`` (split IID / IC) and the covariances' trace
  term;
* ``diag``: the distance of the per-dimension Gaussians (means and standard deviations only, no
  correlation between dimensions), split IID / IC: what a per-band affine calibration can remove;
* ``after affine``: D_F after mapping every dimension of the approach's pool to the real pool's mean and
  standard deviation (the correlation structure that remains; the floor of a per-band calibration);
* ``IID only`` / ``IC only``: D_F of the 34-dim blocks;
* ``between``: D_F of the excerpts' mean frames alone (how each excerpt as a whole sits: wide or narrow,
  leaning left or right) and ``within``: of the frames minus their excerpt's mean;
* the bands whose mean and standard deviation differ most.

    nice .venv/bin/python bench/df_anatomy.py --split valid --per-track 3 -K 4 \\
        --cache ~/.cache/soundstage-realism/eval-cache --frames ~/.cache/soundstage-realism/frames-valid.npz
    nice .venv/bin/python bench/df_anatomy.py --frames FILE --analyse-only
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

from core.bands import N_BANDS  # noqa: E402
from core.detail import load_detail  # noqa: E402
from core.models.base import load_model  # noqa: E402
from core.placement import propose  # noqa: E402
from core.ps import analyze  # noqa: E402
from core.renderer import auto_renders, mix  # noqa: E402
from training.evaluation import load_excerpts  # noqa: E402
from training.evaluation_sources import _cached, _cached_decode, _cached_sources, prediction_tag  # noqa: E402
from training.ps_metrics import embed, frechet_distance  # noqa: E402


def _gauss(x: np.ndarray):
    x = np.asarray(x, np.float64)
    mu = x.mean(axis=0)
    c = np.cov(x, rowvar=False, bias=True)
    return mu, 0.5 * (c + c.T)


def fd(a: np.ndarray, b: np.ndarray) -> float:
    return frechet_distance(*_gauss(a), *_gauss(b))


def anatomy(real: np.ndarray, gen: np.ndarray, real_ex: np.ndarray, gen_ex: np.ndarray) -> dict:
    """``real`` [shape=(n, 68)], ``gen`` [shape=(m, 68)] pooled frames; ``real_ex`` / ``gen_ex`` the excerpt index of
    every frame (for the between / within split)."""
    mr, cr = _gauss(real)
    mg, cg = _gauss(gen)
    d = frechet_distance(mr, cr, mg, cg)
    dm = (mr - mg) ** 2
    sr, sg = np.sqrt(np.diag(cr)), np.sqrt(np.diag(cg))
    ds = (sr - sg) ** 2
    gen_aff = (gen - mg) / np.maximum(sg, 1e-9) * sr + mr
    out = {"d_f": d, "mean": dm.sum(), "mean_iid": dm[:N_BANDS].sum(), "mean_ic": dm[N_BANDS:].sum(),
           "cov": d - dm.sum(), "diag": (dm + ds).sum(), "diag_iid": (dm + ds)[:N_BANDS].sum(),
           "diag_ic": (dm + ds)[N_BANDS:].sum(), "affine": fd(real, gen_aff),
           "iid_only": fd(real[:, :N_BANDS], gen[:, :N_BANDS]), "ic_only": fd(real[:, N_BANDS:], gen[:, N_BANDS:])}

    def split(x, ex):
        ids = np.unique(ex)
        means = np.stack([x[ex == i].mean(axis=0) for i in ids])
        within = x - means[np.searchsorted(ids, ex)]
        return means, within
    rb, rw = split(real, real_ex)
    gb, gw = split(gen, gen_ex)
    out["between"] = fd(rb, gb)
    out["within"] = fd(rw, gw)
    out["per_dim"] = (dm, ds, mr, mg, sr, sg)
    return out


def report(name: str, a: dict, top: int = 6) -> str:
    lines = [f"{name}: D_F {a['d_f']:.2f} = means {a['mean']:.2f} (IID {a['mean_iid']:.2f}, IC {a['mean_ic']:.2f})"
             f" + covariances {a['cov']:.2f}; diag {a['diag']:.2f} (IID {a['diag_iid']:.2f}, IC {a['diag_ic']:.2f});"
             f" after affine {a['affine']:.2f}; IID only {a['iid_only']:.2f}, IC only {a['ic_only']:.2f};"
             f" between {a['between']:.2f}, within {a['within']:.2f}"]
    dm, ds, mr, mg, sr, sg = a["per_dim"]
    order = np.argsort(-(dm + ds))[:top]
    for i in order:
        kind, band = ("IID", i) if i < N_BANDS else ("IC", i - N_BANDS)
        lines.append(f"    {kind:>3s} band {band:2d}: mean real {mr[i]:+.3f} gen {mg[i]:+.3f}, sd real {sr[i]:.3f} "
                     f"gen {sg[i]:.3f}  (contributes {dm[i] + ds[i]:.3f})")
    return "\n".join(lines)


def collect(a) -> dict:
    sep = formation_separate
    exs = load_excerpts(a.data, a.split, 10.0, a.limit, per_track=a.per_track, every=a.every, keep_stereo=True)
    cache = Path(a.cache) / a.split
    ps = load_model("ps-mtm")
    tag = prediction_tag("ps-mtm")
    detail = load_detail("ps-mtm")          # the shipped calibration of PS-MTM's detail, when there is one
    got = {"real": [], "next": [], "ps": [], "chain": [], "track": []}
    for j, ex in enumerate(exs):
        digest = hashlib.sha1(ex.mono.tobytes()).hexdigest()[:16]
        renders, residual = _cached_sources(cache, digest, ex.mono, sep, None)
        energies = np.stack([r.energy for r in renders])
        t = ex.real.n_frames
        got["real"].append(embed(ex.real).astype(np.float32))
        got["next"].append(embed(ex.other.fit_frames(t)).astype(np.float32))
        got["track"].append(ex.track)
        ps_k, ch_k, cal_k = [], [], []
        for seed in range(a.K):
            key = f"ps-mtm-{digest}-{seed}"
            params = _cached(cache, key, lambda: ps.predict(ex.mono, seed=seed), tag)
            p, _ = _cached_decode(cache, key + "-decoded", ex.mono, params, None, tag)
            ps_k.append(embed(p.fit_frames(t)).astype(np.float32))
            pl = propose(energies, method="model", seed=seed, variety=0.0, residual=residual)
            auto_renders(renders, params, np.array([(q.pan, q.width) for q in pl]))
            ch_k.append(embed(analyze(mix(renders, pl)).fit_frames(t)).astype(np.float32))
            if detail is not None:
                auto_renders(renders, params, np.array([(q.pan, q.width) for q in pl]), detail=detail)
                cal_k.append(embed(analyze(mix(renders, pl)).fit_frames(t)).astype(np.float32))
        got["ps"].append(np.stack(ps_k))
        got["chain"].append(np.stack(ch_k))
        if detail is not None:
            got.setdefault("chain_cal", []).append(np.stack(cal_k))
        print(f"\r{j + 1}/{len(exs)} excerpts", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return {k: np.array(v) if k == "track" else np.stack(v) for k, v in got.items()}


def analyse(z) -> str:
    real = z["real"]                      # [E, T, 68]
    e, t, _ = real.shape
    rex = np.repeat(np.arange(e), t)
    lines = [f"{e} excerpts x {t} frames"]
    for name in ("next", "ps", "chain", "chain_cal"):
        if name not in z.files:
            continue
        g = z[name]
        if g.ndim == 3:
            g = g[:, None]
        k = g.shape[1]
        gen = g.reshape(-1, g.shape[-1])
        gex = np.repeat(np.arange(e), k * t)
        lines.append(report(name, anatomy(real.reshape(-1, real.shape[-1]), gen, rex, gex)))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--split", default="valid")
    ap.add_argument("--every", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--per-track", type=int, default=3)
    ap.add_argument("-K", type=int, default=4)
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "soundstage-realism" / "eval-cache"))
    ap.add_argument("--frames", required=True, help="npz of the collected frames (written, or read with --analyse-only)")
    ap.add_argument("--analyse-only", action="store_true")
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    if not a.analyse_only:
        got = collect(a)
        np.savez(a.frames, **got)
    with np.load(a.frames) as z:
        print(analyse(z))
    print(f"({time.monotonic() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
