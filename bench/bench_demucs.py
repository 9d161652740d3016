"""Benchmark of the Demucs backend against demucs' own ``apply_model`` (not a timed test).

The model is the real HTDemucs architecture (41.98 M parameters: channels 48, depth 4,
dconv_mode 3, bottom_channels 512, 5 transformer layers, 7.8 s segments) with random weights,
which take the same time as the trained ones; it is saved into a model folder the way demucs
publishes models and loaded through demucs' local repository, as users with offline weights do.
The input is the demo recording (resources/demo, real music) repeated to the requested length.

    python bench/bench_demucs.py                     # 60 s: RTF, overhead vs apply_model, cached reopen
    python bench/bench_demucs.py --memory --minutes 10   # peak memory of one 10-minute separation

Timing runs alternate apply_model and the backend ``--repeats`` times and keep each one's best
(the machine may be shared); the backend run includes everything its ``separate`` does on a
cache miss (normalization, stereo duplication, mono downmix, residual, hashing, cache write).
"""
from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SR = 44100
STEMS = ["drums", "bass", "other", "vocals"]


def real_architecture():
    import torch
    from demucs.htdemucs import HTDemucs
    torch.manual_seed(0)
    return HTDemucs(sources=STEMS, dconv_mode=3, bottom_channels=512, t_layers=5, t_dropout=0.02,
                    segment=Fraction(39, 5))


def music(seconds: float) -> np.ndarray:
    demo = ROOT / "resources" / "demo" / "feelings-mono.flac"
    if demo.is_file():
        from core.audio import load_mono
        x = load_mono(demo)
    else:  # synthetic fallback: random weights time the same on any input
        t = np.arange(int(30 * SR)) / SR
        x = (0.3 * np.sin(2 * np.pi * 110 * t) + 0.05 * np.random.default_rng(0).standard_normal(len(t)))
    n = int(seconds * SR)
    return np.ascontiguousarray(np.resize(x.astype(np.float32), n))


def model_folder(tmp: Path) -> Path:
    from separation.demucs_weights import save_to_folder
    folder = tmp / "models"
    save_to_folder(real_architecture(), folder, name="htdemucs", sig="955717e8")
    return folder


def reference_apply(model, x, *, shifts, overlap, seed=0):
    """demucs' own call on the same prepared input (normalized, duplicated to stereo)."""
    import torch
    from demucs.apply import apply_model
    mono = torch.from_numpy(x)
    mean, std = float(mono.mean()), float(mono.std()) + 1e-8
    mix = ((mono - mean) / std).expand(2, -1)[None].contiguous()
    random.seed(seed)
    c0, t0 = time.process_time(), time.perf_counter()
    with torch.no_grad():
        out = apply_model(model, mix, shifts=shifts, split=True, overlap=overlap)
    return time.perf_counter() - t0, time.process_time() - c0, out


class _TimedApply:
    """Wraps demucs.apply.apply_model to time the outermost call (it recurses through the module
    global), so the backend's own work can be measured inside the very same run."""

    def __init__(self):
        import demucs.apply
        self.mod, self.real, self.depth, self.seconds = demucs.apply, demucs.apply.apply_model, 0, 0.0

    def __enter__(self):
        self.mod.apply_model = self
        return self

    def __exit__(self, *exc):
        self.mod.apply_model = self.real

    def __call__(self, *a, **k):
        self.depth += 1
        t0 = time.perf_counter()
        try:
            return self.real(*a, **k)
        finally:
            self.depth -= 1
            if self.depth == 0:
                self.seconds += time.perf_counter() - t0


def timing(args) -> None:
    import torch
    import separation
    from separation.stem_cache import StemCache
    from demucs.pretrained import get_model
    from separation import demucs_backend

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["SOUNDSTAGE_CACHE_DIR"] = str(tmp / "cache")
        folder = model_folder(tmp)
        x = music(args.seconds)
        settings = dict(model="htdemucs", models_dir=folder, shifts=args.shifts, overlap=args.overlap,
                        threads=args.threads)
        ref_model = get_model("htdemucs", repo=folder)
        # Warm both paths (model load, allocator) on a short excerpt, outside the timings.
        separation.get("demucs", cache=False, **settings).separate(x[: 10 * SR])
        reference_apply(ref_model, x[: 10 * SR], shifts=0, overlap=args.overlap)

        ref_t, back_t, ref_c, back_c, own_t = [], [], [], [], []
        for r in range(args.repeats):
            t, c, out = reference_apply(ref_model, x, shifts=args.shifts, overlap=args.overlap)
            ref_t.append(t)
            ref_c.append(c)
            ref_mono = out[0].mean(dim=1).numpy()
            del out
            for entry in StemCache().entries():
                entry.path.unlink()
            b = separation.get("demucs", **settings)
            with _TimedApply() as inside:
                c0, t0 = time.process_time(), time.perf_counter()
                sources = b.separate(x)
                back_t.append(time.perf_counter() - t0)
                back_c.append(time.process_time() - c0)
            own_t.append((back_t[-1] - inside.seconds, inside.seconds))
            print(f"  run {r + 1}: apply_model {ref_t[-1]:.1f} s (cpu {ref_c[-1]:.1f} s), "
                  f"backend {back_t[-1]:.1f} s (cpu {back_c[-1]:.1f} s), load {os.getloadavg()[0]:.1f}", flush=True)

        # Same numbers as apply_model (the backend scales back by std and adds the mean; compare
        # drums/bass/vocals, "other" also holds the residual).
        std = float(x.std()) + 1e-8
        err = max(float(np.max(np.abs(s.audio - (ref_mono[i] * std + float(x.mean())))))
                  for i, s in enumerate(sources) if s.name != "other")

        demucs_backend._loaded.clear()                      # a reopen in a fresh session
        reopen = separation.get("demucs", **settings)
        t0 = time.perf_counter()
        cached = reopen.separate(x)
        reopen_t = time.perf_counter() - t0
        assert reopen.last_from_cache and len(cached) == 4
        from separation.base import check_sum
        sum_err = check_sum(x, sources)

    ref, back, refc, backc = min(ref_t), min(back_t), min(ref_c), min(back_c)
    print()
    print(f"HTDemucs (real architecture, random weights), {args.seconds:.0f} s input, shifts={args.shifts}, "
          f"overlap={args.overlap}, {args.threads} torch threads, load average {os.getloadavg()[0]:.1f}")
    print(f"{'':34s}{'wall s':>9s}{'RTF':>8s}{'CPU s':>9s}")
    print(f"{'demucs apply_model':34s}{ref:9.2f}{ref / args.seconds:8.3f}{refc:9.1f}")
    print(f"{'soundstage demucs backend':34s}{back:9.2f}{back / args.seconds:8.3f}{backc:9.1f}")
    print(f"{'backend overhead (wall, best runs)':34s}{100 * (back / ref - 1):8.2f} %   (limit 5 %)")
    print(f"{'backend overhead (CPU time)':34s}{100 * (backc / refc - 1):8.2f} %")
    own, inside = min(own_t)
    print(f"{'backend work outside apply_model':34s}{own:9.2f} s = {100 * own / inside:.2f} % of its apply_model call "
          f"(same run: load-independent)")
    print(f"{'cached reopen (same recording)':34s}{reopen_t:9.3f}          (limit 1 s)")
    print(f"max |backend - apply_model| (drums, bass, vocals): {err:.2e}; stems sum error {sum_err:.1e}")


def memory(args) -> None:
    import torch
    import separation
    from separation.stem_cache import StemCache

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["SOUNDSTAGE_CACHE_DIR"] = str(tmp / "cache")
        folder = model_folder(tmp)
        x = music(60 * args.minutes)
        b = separation.get("demucs", model="htdemucs", models_dir=folder, shifts=args.shifts,
                           overlap=args.overlap, threads=args.threads)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        last = [0.0]

        def progress(p):
            if p.stage == "separate" and p.fraction - last[0] >= 0.1:
                last[0] = p.fraction
                print(f"  {p.fraction * 100:3.0f}%  {p.message}", flush=True)

        t0 = time.perf_counter()
        sources = b.separate(x, progress=progress)
        wall = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        cache_bytes = StemCache().info().total_bytes
    print()
    print(f"HTDemucs (real architecture, random weights), {args.minutes:g}-minute input, shifts={args.shifts}, "
          f"{args.threads} torch threads, load average {os.getloadavg()[0]:.1f}")
    print(f"peak memory (max RSS of the process): {peak:8.0f} MiB   (limit 4096 MiB; {before:.0f} MiB before separating)")
    print(f"wall time {wall:.0f} s, RTF {wall / (60 * args.minutes):.3f}; {len(sources)} stems; "
          f"cache entry {cache_bytes / 2 ** 20:.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--shifts", type=int, default=1)
    ap.add_argument("--overlap", type=float, default=0.25)
    ap.add_argument("--memory", action="store_true", help="measure peak memory of one long separation")
    ap.add_argument("--minutes", type=float, default=10.0)
    args = ap.parse_args()
    memory(args) if args.memory else timing(args)


if __name__ == "__main__":
    main()
