"""What the K renditions of the chain at variety 0 differ in, and what E_min gains from it (issue 24).

E_min is the minimum over an excerpt's K renditions of the rendition error, so renditions that differ where the
mono cannot tell (which side the scene leans to, how wide the whole mix is) can lower it without widening any
single rendition, while D_F pools all K. This bench renders the chain at variety 0 (formation sources, the
placement model, the shipped detail calibration) for seeds 0..K-1 on ``train`` excerpts (the middle 10 s of every
``--every``-th clean track; sources and PS-MTM's predictions from the eval cache), keeps each rendition's stereo
output (``--store``), and then measures variants made from the kept outputs without rendering again:

* ``base``: the renditions as they are;
* ``mirror@odd``: the renditions of odd seeds mirrored (L and R swapped: every IID negated);
* ``side@G``: every rendition's side signal times G (M = (L + R) / 2 kept: the downmix is the same);
* ``spread@G1/G2/...``: rendition k's side times G_(k mod n) (renditions that differ in how wide the mix is);
* any of these joined with ``+`` (``spread@0.7/1.3+mirror@odd``);

and variants rendered again (``--render``, each kept under its own tag), with the shipped detail calibration
changed: ``iid_spread=S`` (a rendition's |IID| map scaled by ``exp(S z)``, :meth:`core.detail.DetailCalibration.
for_rendition`), ``iid_scale=G`` (every rendition's |IID| map times G), ``width_gain=G``, ``pan_spread=G`` (the placement
model's :data:`core.models.placement.PAN_SPREAD`), ``mirror=0`` (odd seeds not mirrored,
:data:`core.detail.MIRROR_ODD`), joined with ``;``
(``iid_spread=0.4;width_gain=1.9``); a post-hoc variant may follow after ``|`` (``iid_spread=0.4|mirror@odd``).

Per variant: E_min (+- se over excerpts), the mean rendition error E, D_F of the pooled renditions, the median
broadband correlation and side-to-mid level (as ``soundstage eval --sources``), and, per rendition position k, the
mean error (which seeds win the minimum).

    nice .venv/bin/python bench/rendition_spread.py --every 12 -K 4 --variants base,mirror@odd,side@0.8
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import formation_separate  # noqa: E402

from core import detail as core_detail  # noqa: E402
from core.detail import load_detail  # noqa: E402
from core.models import placement as placement_model  # noqa: E402
from core.models.base import load_model  # noqa: E402
from core.placement import propose  # noqa: E402
from core.ps import analyze  # noqa: E402
from core.renderer import auto_renders, mix  # noqa: E402
from training.evaluation import load_excerpts  # noqa: E402
from training.evaluation_sources import _cached, _cached_sources, prediction_tag  # noqa: E402
from training.image_metrics import broadband_correlation, side_to_mid_db  # noqa: E402
from training.ps_metrics import GaussianStats, frechet_distance, rendition_error  # noqa: E402

CACHE = Path.home() / ".cache" / "soundstage-realism"


def _one(spec: str, k: int, y: np.ndarray) -> np.ndarray:
    name, _, arg = spec.partition("@")
    if name == "base":
        return y
    if name == "mirror":
        odd = arg in ("", "odd")
        return y[:, ::-1] if (k % 2 == 1) == odd else y
    if name in ("side", "spread"):
        gains = [float(g) for g in arg.split("/")]
        g = gains[k % len(gains)]
        m = 0.5 * (y[:, 0] + y[:, 1])
        s = 0.5 * (y[:, 0] - y[:, 1])
        return np.stack([m + g * s, m - g * s], axis=1)
    raise SystemExit(f"unknown variant {spec!r}")


def apply(spec: str, k: int, y: np.ndarray) -> np.ndarray:
    for part in spec.split("+"):
        y = _one(part, k, y)
    return y


def calibration(spec: str):
    """The shipped detail calibration changed by ``spec`` (``name=value`` joined with ``;``; empty: as shipped)."""
    cal = load_detail("ps-mtm")
    for part in filter(None, spec.split(";")):
        name, _, value = part.partition("=")
        if name in ("pan_spread", "mirror"):
            continue                       # set while rendering (collect)
        if name == "iid_scale":
            cal = dataclasses.replace(cal, iid_to=cal.iid_to * float(value))
        else:
            cal = dataclasses.replace(cal, **{name: float(value)})
    return cal


def collect(a, exs, spec: str = "") -> list[tuple]:
    """Per excerpt (digest, the kept renditions' paths), rendering what is not kept yet (``spec``: the detail
    calibration's changes, :func:`calibration`)."""
    sep = formation_separate
    cache = Path(a.cache) / "train"
    store = Path(a.store)
    store.mkdir(parents=True, exist_ok=True)
    ps = load_model("ps-mtm")
    detail = calibration(spec)
    opts = dict(p.partition("=")[::2] for p in spec.split(";") if p)
    saved = placement_model.PAN_SPREAD, core_detail.MIRROR_ODD
    placement_model.PAN_SPREAD = float(opts.get("pan_spread", saved[0]))
    core_detail.MIRROR_ODD = bool(float(opts.get("mirror", saved[1])))
    try:
        return _collect(a, exs, spec, ps, detail, sep, cache, store)
    finally:
        placement_model.PAN_SPREAD, core_detail.MIRROR_ODD = saved


def _collect(a, exs, spec, ps, detail, sep, cache, store):
    tag = a.tag + ("" if not spec else "-" + hashlib.sha1(spec.encode()).hexdigest()[:8])
    out = []
    t0 = time.monotonic()
    for j, ex in enumerate(exs):
        digest = hashlib.sha1(ex.mono.tobytes()).hexdigest()[:16]
        paths = [store / f"{tag}-{digest}-{seed}.npy" for seed in range(a.K)]
        if not all(p.exists() for p in paths):
            renders, residual = _cached_sources(cache, digest, ex.mono, sep, None)
            energies = np.stack([r.energy for r in renders])
            for seed, p in enumerate(paths):
                if p.exists():
                    continue
                params = _cached(cache, f"ps-mtm-{digest}-{seed}", lambda: ps.predict(ex.mono, seed=seed),
                                 prediction_tag("ps-mtm"))
                pl = propose(energies, method="model", seed=seed, variety=0.0, residual=residual)
                auto_renders(renders, params, np.array([(q.pan, q.width) for q in pl]),
                             detail=detail.for_rendition(seed))
                np.save(p, mix(renders, pl).astype(np.float32))
        out.append((digest, paths))
        print(f"\r{j + 1}/{len(exs)} excerpts ({time.monotonic() - t0:.0f} s)", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return out


def measure(exs, sets: dict, specs, k_count: int) -> list[str]:
    """``sets``: per variant label, (the kept renditions of :func:`collect`, the post-hoc spec)."""
    real = GaussianStats()
    gen = {s: GaussianStats() for s in specs}
    emin = {s: [] for s in specs}
    errs = {s: [] for s in specs}
    corr = {s: [] for s in specs}
    side = {s: [] for s in specs}
    rm = []
    for j, ex in enumerate(exs):
        real.add_params(ex.real)
        rm.append((broadband_correlation(ex.stereo), side_to_mid_db(ex.stereo)))
        for s in specs:
            kept, post = sets[s]
            e = []
            for k, path in enumerate(kept[j][1]):
                y2 = apply(post, k, np.load(path))
                p = analyze(y2).fit_frames(ex.real.n_frames)
                gen[s].add_params(p)
                e.append(rendition_error(ex.real, p))
                corr[s].append(broadband_correlation(y2))
                side[s].append(side_to_mid_db(y2))
            emin[s].append(min(e))
            errs[s].append(e)
    rm = np.array(rm)
    lines = [f"{len(exs)} train excerpts, K = {k_count}; real stereo: corr {np.median(rm[:, 0]):.3f}, "
             f"S/M {np.median(rm[:, 1]):.2f} dB"]
    head = (f"{'variant':<28s} {'E_min':>6s} {'(+-se)':>6s} {'E':>6s} {'D_F':>6s} {'corr':>6s} {'S/M dB':>7s}  "
            f"E per seed position")
    lines += [head, "-" * len(head)]
    for s in specs:
        em = np.array(emin[s])
        er = np.array(errs[s])
        d = frechet_distance(real.mean, real.cov, gen[s].mean, gen[s].cov)
        per = " ".join(f"{v:.3f}" for v in er.mean(axis=0))
        lines.append(f"{s:<28s} {em.mean():6.3f} {em.std(ddof=1) / np.sqrt(len(em)):6.3f} {er.mean():6.3f} {d:6.2f} "
                     f"{np.median(corr[s]):6.3f} {np.median(side[s]):7.2f}  {per}")
    base = np.array(emin[specs[0]])
    lines.append(f"(paired E_min differences to {specs[0]!r}: " + ", ".join(
        f"{s} {np.mean(np.array(emin[s]) - base):+.4f} +- {np.std(np.array(emin[s]) - base, ddof=1) / np.sqrt(len(base)):.4f}"
        for s in specs[1:]) + ")")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--every", type=int, default=12)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("-K", type=int, default=4)
    ap.add_argument("--cache", default=str(CACHE / "eval-cache"))
    ap.add_argument("--store", default=str(CACHE / "renditions"), help="folder keeping the rendered outputs")
    ap.add_argument("--tag", default="v1", help="name of this set of renditions in --store (the code that made them: "
                    "v0 before the odd seeds' mirror, v1 with it)")
    ap.add_argument("--variants", default="base,mirror@odd,side@0.8,side@1.2,spread@0.7/1.3,spread@0.7/1.3+mirror@odd")
    ap.add_argument("--render", default="", help="rendered variants, separated by commas")
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    exs = load_excerpts(a.data, "train", 10.0, a.limit, every=a.every, keep_stereo=True)
    kept = collect(a, exs)
    sets = {s: (kept, s) for s in a.variants.split(",") if s}
    for r in filter(None, a.render.split(",")):
        spec, _, post = r.partition("|")
        sets[r] = (collect(a, exs, spec), post or "base")
    print("\n".join(measure(exs, sets, list(sets), a.K)))
    print(f"({time.monotonic() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
