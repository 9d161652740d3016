"""How fast the command line answers: whole-process wall time of `soundstage --help`, `--version`
and a bad input (targets: 0.5 s, 0.5 s, 1 s). Prints a table (median of 5 runs each)."""
from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

EXE = Path(sys.executable).with_name("soundstage")
CASES = [("--help", ["--help"], 0.5), ("--version", ["--version"], 0.5),
         ("upmix missing.wav -o x.wav", ["upmix", "missing.wav", "-o", "/tmp/soundstage-bench-x.wav"], 1.0)]


def main() -> None:
    print(f"{'command':32s} {'median s':>9s} {'worst s':>8s} {'target s':>9s}")
    for label, argv, target in CASES:
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            subprocess.run([str(EXE), *argv], capture_output=True)
            times.append(time.perf_counter() - t0)
        print(f"{'soundstage ' + label:32s} {statistics.median(times):9.3f} {max(times):8.3f} {target:9.1f}")


if __name__ == "__main__":
    main()
