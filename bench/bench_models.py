"""Real-time factor and peak memory of every registered PS model on a real 3-minute recording.

    .venv/bin/python bench/bench_models.py [--seconds 180] [--data DIR] [--threads 1] [--models a,b]

The recording is the mono downmix of the first ``valid`` track of the data manifest that is at
least ``--seconds`` long (from its start). Each model runs in a fresh subprocess, so its peak
resident memory (ru_maxrss) and load time are its own; RTF = prediction time / audio duration.
Models limited to short excerpts (PS-AR) run on their longest allowed excerpt, which the table
states. "model MB" is the growth of peak RSS from loading and running the model (for the neural
models it includes importing torch). Not a timed test: it prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _recording(data, seconds: float):
    from core.audio import to_mono
    from training.dataset import load_excerpt, tracks
    ts = [t for t in tracks(data, "valid") if t.seconds >= seconds]
    if not ts:
        raise SystemExit(f"no valid-split track of at least {seconds} s in the data folder")
    return ts[0], to_mono(load_excerpt(ts[0].path, 0.0, seconds))


def _one(name: str, data, seconds: float, seed: int) -> dict:
    """Runs in the subprocess: load one model, predict once, report figures as JSON."""
    import numpy as np
    from core.errors import ParameterError
    from core.models.base import list_models, models_dir
    track, mono = _recording(data, seconds)
    info = {m.name: m for m in list_models()}[name]
    ok, why = info.available(models_dir())
    if not ok:
        return {"name": name, "skipped": why}
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    model = info.loader(models_dir())
    load_s = time.perf_counter() - t0
    limit = getattr(model, "max_seconds", None)
    if limit is not None and len(mono) / 44100 > limit:
        mono = mono[: int(limit * 44100)]
    t0 = time.perf_counter()
    try:
        p = model.predict(mono, seed=seed)
    except ParameterError as exc:
        return {"name": name, "skipped": str(exc)}
    pred_s = time.perf_counter() - t0
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    dur = len(mono) / 44100
    return {"name": name, "track": track.path.name, "seconds": round(dur, 1), "load_s": round(load_s, 3),
            "predict_s": round(pred_s, 2), "rtf": round(pred_s / dur, 3), "peak_rss_mb": round(rss1 / 1024, 1),
            "model_rss_mb": round((rss1 - rss0) / 1024, 1), "frames": p.n_frames,
            "median_abs_iid_db": round(float(np.median(np.abs(p.iid))), 2), "mean_ic": round(float(p.ic.mean()), 3)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--data", default=None)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (SOUNDSTAGE_TORCH_THREADS)")
    ap.add_argument("--models", default=None, help="comma-separated names (default: every registered model)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(_one(args.one, args.data, args.seconds, args.seed)))
        return 0
    from core.models.base import list_models
    names = args.models.split(",") if args.models else [m.name for m in list_models()]
    env = {**os.environ, "SOUNDSTAGE_TORCH_THREADS": str(args.threads), "OMP_NUM_THREADS": str(args.threads)}
    rows = []
    print(f"{'model':<10s} {'audio s':>8s} {'load s':>7s} {'predict s':>10s} {'RTF':>7s} {'peak MB':>8s} "
          f"{'model MB':>9s} {'med|IID|':>9s} {'mean IC':>8s}")
    for name in names:
        cmd = [sys.executable, __file__, "--one", name, "--seconds", str(args.seconds), "--seed", str(args.seed)]
        if args.data:
            cmd += ["--data", args.data]
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            print(f"{name:<10s} failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")
            continue
        row = json.loads(r.stdout.strip().splitlines()[-1])
        rows.append(row)
        if "skipped" in row:
            print(f"{name:<10s} skipped: {row['skipped']}")
            continue
        print(f"{name:<10s} {row['seconds']:8.1f} {row['load_s']:7.3f} {row['predict_s']:10.2f} {row['rtf']:7.3f} "
              f"{row['peak_rss_mb']:8.1f} {row['model_rss_mb']:9.1f} {row['median_abs_iid_db']:9.2f} "
              f"{row['mean_ic']:8.3f}", flush=True)
    if rows and "track" in rows[0]:
        print(f"\nrecording: {rows[0]['track']} (valid split), torch threads {args.threads}, "
              f"load average {os.getloadavg()[0]:.1f} (machine shared: RTFs vary with its load)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
