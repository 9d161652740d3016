"""Session engine: prepare, render and export times, and peak memory, for N sources.

Run: .venv/bin/python bench/bench_session.py [--seconds 180] [--sources 8]
Targets (issue 6): full render + export of a 3-minute recording with 8 sources <= 2 s;
(issue 13) auto sources are rendered band by band when a rendition is made: a stereo pair per source,
kept for the current state and recent undo states within a memory bound, printed below;
peak memory for a 10-minute recording with 8 sources <= 2 GB (run with --seconds 600); the pairs are
mapped on files (unlinked; the OS pages them) unless --in-ram.
Sources: the real recording split into N frequency regions with STFT masks that sum to one, so
the stems add up to the input as a separator's would (separation time is not part of this bench:
see bench_formation.py / bench_demucs.py).
"""
import argparse
import gc
import tempfile
import tracemalloc
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from _common import peak_rss_mb, real_mono

from app.session import Session
from core.renderer import mapped_on_file
from core.stft import istft, stft
from separation.base import Source, colour_for
from app.export import export


def split_sources(x: np.ndarray, n: int) -> list[np.ndarray]:
    S = stft(x)
    edges = np.unique(np.geomspace(2, S.shape[0], n + 1).astype(int))
    edges[0], edges[-1] = 0, S.shape[0]
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        m = np.zeros((S.shape[0], 1), np.float32)
        m[a:b] = 1.0
        out.append(istft(S * m, length=len(x)))
    out[-1] = out[-1] + (x - np.sum(out, axis=0))  # exact sum
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--sources", type=int, default=8)
    ap.add_argument("--model", default="decorr")
    ap.add_argument("--in-ram", action="store_true", help="hold the auto pairs in RAM (default: mapped on files)")
    a = ap.parse_args()
    x, what = real_mono(a.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        rec = Path(tmp) / "rec.flac"
        sf.write(str(rec), x, 44100)
        stems = split_sources(x, a.sources)
        gc.collect()
        tracemalloc.start()   # from here on: the session's own memory (the stems count, as a separator's output)
        s = Session()
        s.open(rec)
        s.model = a.model
        if a.in_ram:
            s.spill_dir = None
        t0 = time.perf_counter()
        s.set_sources([Source(f"band {i}", st, colour_for(i)) for i, st in enumerate(stems)])
        del stems
        t_prep = time.perf_counter() - t0
        t0 = time.perf_counter()
        s.new_rendition(0)
        t_rend = time.perf_counter() - t0
        pair_mb = sum(r.auto_bytes for r in s.renders) / 2 ** 20
        n_mapped = sum(mapped_on_file(r.auto) for r in s.renders if r.auto is not None)
        t0 = time.perf_counter()
        s.set_mono_compatible(True)
        t_mode = time.perf_counter() - t0
        t0 = time.perf_counter()
        s.undo.undo()                    # the previous state's renders are kept: instant
        t_undo = time.perf_counter() - t0
        s.set_placement(0, s.placements[0].moved(-0.5, 0.2))
        t0 = time.perf_counter()
        y = s.render()
        t_mix = time.perf_counter() - t0
        t0 = time.perf_counter()
        export(s, Path(tmp) / "out.wav", fmt="wav24")
        t_exp = time.perf_counter() - t0
        t0 = time.perf_counter()
        eng = s.mix_engine()
        t_eng = time.perf_counter() - t0
        buf = np.zeros((512, 2), np.float32)
        eng.playing = True
        t0 = time.perf_counter()
        for _ in range(200):
            eng.callback(buf, 512)
        t_cb = (time.perf_counter() - t0) / 200
    traced_peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
    tracemalloc.stop()
    dur = len(x) / 44100
    print(f"input: {what}, {dur:.0f} s, {a.sources} sources, model {a.model}")
    print(f"{'step':<40}{'wall s':>9}{'RTF':>9}")
    for name, t in [("prepare sources (decorrelate)", t_prep), ("new rendition (predict + auto renders)", t_rend),
                    ("mono-compatible on (auto re-render)", t_mode), ("undo that (kept renders, or re-made)", t_undo),
                    ("render (mix)", t_mix), ("render + export (wav24, with project)", t_exp),
                    ("build playback engine", t_eng)]:
        print(f"{name:<40}{t:9.3f}{t / dur:9.4f}")
    print(f"{'audio callback, 512-frame block':<40}{t_cb * 1000:8.3f} ms ({t_cb / (512 / 44100) * 100:.1f} % of the block's time)")
    print(f"auto sources' band-by-band stereo renders: {pair_mb:.0f} MiB per state (undo keeps up to "
          f"{s.memory.keep_bytes / 2 ** 20:.0f} MiB of them); {n_mapped} of {len(s.renders)} mapped on files"
          f"{' (--in-ram)' if a.in_ram else ''}")
    print(f"peak memory of the session steps (tracemalloc) {traced_peak:.0f} MiB; "
          f"process peak RSS {peak_rss_mb():.0f} MB (includes this bench's STFT-mask split)")


if __name__ == "__main__":
    main()
