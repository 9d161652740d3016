"""Speed and memory of the sound-source-formation backend on a real 3-minute recording.

Usage::

    nice .venv/bin/python bench/bench_formation.py [--seconds 180] [--file PATH]

Takes the first ``valid``-split recording of the data manifest that lasts at least
``--seconds``, downmixes it to mono, cuts it to ``--seconds`` and runs
``separation.get("formation").separate`` once (after a short warm-up on 5 s). Prints one table
row: real-time factor (processing time / audio duration), the peak Python heap during the call
(tracemalloc, numpy arrays included) and the process's peak resident memory.

Result (2-core machine, load average ~2; learned track grouping of separation/grouping.py)::

    file: wesnoth-1.16-music/usr/share/games/wesnoth/1.16/data/core/music/northern_mountains.ogg
    | audio (s) | time (s) | RTF | CPU time (s) | CPU RTF | peak heap (MiB) | peak RSS (MiB) | sources | sum error |
    | 180.0 | 32.74 | 0.182 | 32.99 | 0.183 | 295 | 471 | 5 + residual | 1.2e-07 |
"""
from __future__ import annotations

import argparse
import csv
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import separation  # noqa: E402
from core.audio import load_mono  # noqa: E402

DATA = Path.home() / ".cache" / "soundstage-data"


def pick_file(seconds: float) -> Path:
    with open(DATA / "manifest.tsv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["split"] == "valid"]
    for r in rows:
        if float(r["seconds"]) >= seconds:
            return DATA / r["path"]
    raise SystemExit(f"no valid-split recording of at least {seconds} s in the manifest")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--file", type=Path, default=None)
    ap.add_argument("--n-sources", type=int, default=None)
    args = ap.parse_args()
    path = args.file or pick_file(args.seconds)
    x = load_mono(path)
    n = int(args.seconds * 44100)
    if len(x) < n:
        x = np.tile(x, -(-n // len(x)))
    x = np.ascontiguousarray(x[:n])
    backend = separation.get("formation", n_sources=args.n_sources)
    backend.separate(x[:5 * 44100])  # warm-up (imports, FFT plans)
    tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    sources = backend.separate(x)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    err = separation.check_sum(x, sources)
    print(f"file: {path.relative_to(DATA) if path.is_relative_to(DATA) else path}")
    print("| audio (s) | time (s) | RTF | CPU time (s) | CPU RTF | peak heap (MiB) | peak RSS (MiB) | sources "
          "| sum error |")
    print("|---|---|---|---|---|---|---|---|---|")
    secs = len(x) / 44100
    print(f"| {secs:.1f} | {dt:.2f} | {dt / secs:.3f} | {cpu:.2f} | {cpu / secs:.3f} | {peak / 2**20:.0f} | {rss:.0f} "
          f"| {len(sources) - 1} + residual | {err:.1e} |")
    for s in sources:
        print(f"  {s.name}: share {s.meta.get('share', 0):.3f}")
    print(f"load average while running: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
