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
