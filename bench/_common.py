"""Shared helpers for the benchmarks: a real 3-minute recording, timing, peak memory."""
from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.dataset import load_excerpt, tracks  # noqa: E402


def real_mono(seconds: float = 180.0, split: str = "valid") -> tuple[np.ndarray, str]:
    """``seconds`` of real music (downmixed), from the first long-enough track of ``split``;
    generated harmonic noise when the data set is not fetched (say so in the output)."""
    try:
        for t in tracks(split=split):
            if t.seconds >= seconds:
                x = load_excerpt(t.path, 0.0, seconds).mean(axis=1).astype(np.float32)
                return x, f"{t.path.name} ({split})"
    except Exception:
        pass
    rng = np.random.default_rng(0)
    return (0.1 * rng.standard_normal(int(seconds * 44100))).astype(np.float32), "generated noise (no data set)"


def timed(fn, *args, repeat: int = 3, **kw):
    """Best wall time of ``repeat`` runs and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args, **kw)
        best = min(best, time.perf_counter() - t0)
    return best, out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


_FORMATION = []


def formation_separate(mono: np.ndarray):
    """The formation backend's sources of ``mono`` (the separator imported on the first call: benches that find
    every excerpt's sources in their cache never load it)."""
    if not _FORMATION:
        import separation
        _FORMATION.append(separation.get("formation").separate)
    return _FORMATION[0](mono)


def tree_rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` and all its descendants now, MB (Linux ``/proc``; the chain
    samples its PS model in a child process: both count)."""
    total, unvisited = 0.0, [pid]
    while unvisited:
        p = unvisited.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next((int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:")), 0) / 1024
            for task in Path(f"/proc/{p}/task").iterdir():
                unvisited += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            pass
    return total


class TreePeak:
    """The highest :func:`tree_rss_mb` of ``pid`` sampled every ``every`` seconds until :meth:`stop`."""

    def __init__(self, pid: int, every: float = 0.2):
        import threading
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            self.peak = max(self.peak, tree_rss_mb(self.pid))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak
