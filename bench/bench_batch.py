"""Throughput of ``soundstage batch`` with 1 and 2 local Dask workers on real music.

    .venv/bin/python bench/bench_batch.py [--files 20] [--seconds 30] [--workers 1,2] [--separator formation,none]

The inputs are ``--files`` mono excerpts of ``--seconds`` from the middle of distinct tracks of
the ``valid`` split (downmixed, 16-bit WAV in a temporary folder). Each configuration runs the
whole batch into a fresh output folder, cluster start-up included, with the default model
(the best shipped one). "worker MB" is the largest peak resident memory of a worker
process (torch and the model included). Throughput = audio hours rendered per wall-clock hour; scaling = the
speed-up of N workers over one. Not a test: it prints a table.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.batch import run_batch  # noqa: E402
from app.chain import UpmixSettings, best_method  # noqa: E402
from training.datahash import distinct  # noqa: E402
from training.dataset import load_excerpt, tracks  # noqa: E402


def make_inputs(folder: Path, n: int, seconds: float) -> list[str]:
    ts = [t for t in distinct(tracks(split="valid")) if t.seconds >= seconds][:n]
    if len(ts) < n:
        raise SystemExit(f"only {len(ts)} distinct valid tracks of at least {seconds} s; fetch the data first "
                         f"(../shared/data/fetch-music.sh)")
    names = []
    for i, t in enumerate(ts):
        x = load_excerpt(t.path, max(0.0, t.seconds / 2 - seconds / 2), seconds).mean(axis=1)
        name = f"{i:02d}-{t.path.stem[:40]}.wav"
        sf.write(folder / name, x.astype(np.float32), 44100, subtype="PCM_16")
        names.append(name)
    return names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--separator", default="formation,none")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="soundstage-bench-batch-") as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        names = make_inputs(tmp / "in", args.files, args.seconds)
        hours = len(names) * args.seconds / 3600
        print(f"{len(names)} excerpts of {args.seconds:.0f} s from the valid split ({hours * 60:.1f} min of audio), "
              f"model {best_method()}, {os.cpu_count()} cores")
        print(f"{'separator':10s} {'workers':>7s} {'wall s':>8s} {'audio h/h':>10s} {'scaling':>8s} "
              f"{'s/file (worker)':>16s} {'worker MB':>9s} {'failed':>6s}")
        for sep in args.separator.split(","):
            base = None
            for w in (int(v) for v in args.workers.split(",")):
                out = tmp / f"out-{sep}-{w}"
                t0 = time.perf_counter()
                s = run_batch(tmp / "in", out, UpmixSettings(separator=sep), workers=w)
                wall = time.perf_counter() - t0
                thr = s.audio_seconds / wall
                base = base or thr
                per_file = np.mean([r["wall_s"] for r in s.results if r["state"] == "done"])
                rss = max(r["peak_rss_mb"] for r in s.results)
                print(f"{sep:10s} {w:7d} {wall:8.1f} {thr:10.1f} {thr / base:7.2f}x {per_file:16.2f} {rss:9.0f} "
                      f"{len(s.failed):6d}", flush=True)


if __name__ == "__main__":
    main()
