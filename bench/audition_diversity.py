"""Renditions that share per-band detail (issue 22): as different and as real as before?

    .venv/bin/python bench/audition_diversity.py [--split valid] [-K 4] [--per-track 3] [--cache DIR]

On the clean excerpts of the split (as ``soundstage eval --sources``: 10 s each, formation
sources), K renditions per excerpt are made two ways and measured as that command's chain rows do
(each rendition mixed, analysed again and compared with the real stereo's PS parameters: E_min over
the K renditions, D_F of all of them against the real):

* ``own detail`` (before issue 22): rendition k's places (placement model, seed k) over the PS
  model's sample of seed k;
* ``shared detail`` (a new rendition now): rendition k's places (seed k) over the sample of seed 0,
  as ``upmix --renditions K`` and the app's New rendition make them.

The places are the same in both (they depend on the seed alone), so the source-level diversity
(standard deviation of each source's pan over the K renditions, energy-weighted) is printed once,
beside the whole output's diversity: the mean over excerpts of the standard deviation of the mixed
output's per-tile IID (dB) over the K renditions. ``--cache``: a folder of PS predictions (as
``eval --sources --cache``; read, and new ones written under ``--write-cache``).
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="valid")
    ap.add_argument("-K", type=int, default=4)
    ap.add_argument("--per-track", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None, help="tracks")
    ap.add_argument("--ps-model", default="ps-mtm")
    ap.add_argument("--cache", default=None, help="PS predictions to read (eval --sources --cache)")
    ap.add_argument("--write-cache", default="/tmp/soundstage-audition-eval-cache")
    a = ap.parse_args()

    import separation
    from core.models.base import load_model
    from core.models.placement_features import true_placement
    from core.placement import propose
    from core.ps import PSParams, analyze, band_energy
    from core.renderer import auto_renders, mix, prepare_source
    from core.stft import stft
    from training.evaluation import load_excerpts
    from training.evaluation_sources import source_metrics
    from training.ps_metrics import GaussianStats, d_f, rendition_error

    t0 = time.monotonic()
    exs = load_excerpts(None, a.split, 10.0, a.limit, per_track=a.per_track, keep_stereo=True)
    ps = load_model(a.ps_model)
    form = separation.get("formation")
    read = Path(a.cache) if a.cache else None
    write = Path(a.write_cache)
    write.mkdir(parents=True, exist_ok=True)

    def predicted(mono, seed):
        key = f"{a.ps_model}-{hashlib.sha1(mono.tobytes()).hexdigest()[:16]}-{seed}.npz"
        for folder in (read, write):
            if folder is not None and (folder / key).exists():
                with np.load(folder / key) as z:
                    return PSParams(z["iid"], z["ic"])
        p = ps.predict(mono, seed=seed)
        np.savez(write / key, iid=p.iid, ic=p.ic)
        return p

    ways = ("own detail", "shared detail")
    real, gen = GaussianStats(), {w: GaussianStats() for w in ways}
    err = {w: [] for w in ways}
    spread = {w: [] for w in ways}
    truth, props = [], []
    for j, ex in enumerate(exs):
        sources = form.separate(ex.mono)
        stems = [np.ascontiguousarray(s.audio[:len(ex.mono)], dtype=np.float32) for s in sources]
        specs = np.stack([stft(s) for s in stems])
        energies = np.stack([band_energy(sp) for sp in specs])
        t = true_placement(specs, stft(ex.stereo[:, 0]), stft(ex.stereo[:, 1]))
        truth.append((t["pan"], t["width"], t["energy"]))
        residual = [s.kind == "residual" for s in sources]
        renders = [prepare_source(s) for s in stems]
        real.add_params(ex.real)
        params = [predicted(ex.mono, k) for k in range(a.K)]
        places = [propose(energies, method="model", seed=k, variety=0.0, residual=residual) for k in range(a.K)]
        props.append(np.array([[(p.pan, p.width) for p in pl] for pl in places], np.float64))
        for w in ways:
            iids, errs = [], []
            for k in range(a.K):
                centres = np.array([(p.pan, p.width) for p in places[k]])
                auto_renders(renders, params[k] if w == "own detail" else params[0], centres, pairs=False)
                out = analyze(mix(renders, places[k])).fit_frames(ex.real.n_frames)
                errs.append(rendition_error(ex.real, out))
                gen[w].add_params(out)
                iids.append(out.iid)
            err[w].append(min(errs))
            spread[w].append(float(np.mean(np.std(np.stack(iids), axis=0))))
        print(f"{j + 1}/{len(exs)} {ex.name}", file=sys.stderr, flush=True)
    src = source_metrics(truth, props)
    print(f"{a.split} split: {len(exs)} excerpts of 10 s, K = {a.K} renditions each, {a.ps_model}, formation sources, "
          f"placement model at variety 0 ({time.monotonic() - t0:.0f} s)")
    print(f"source-level diversity (std of each source's pan over the K renditions; the same places both ways): "
          f"{src['diversity']:.3f}; source D_F(pan, width) {src['frechet']:.4f}")
    print(f"{'renditions':<16}{'E_min':>8}{'(+-se)':>8}{'D_F':>8}{'output IID spread dB':>22}")
    for w in ways:
        e = np.array(err[w])
        se = e.std(ddof=1) / np.sqrt(len(e)) if len(e) > 1 else float("nan")
        print(f"{w:<16}{e.mean():8.4f}{se:8.4f}{d_f(real, gen[w]):8.3f}{np.mean(spread[w]):22.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
