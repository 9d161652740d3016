"""Peak memory of `soundstage upmix` on hour-long inputs (issue 17, case 7): prints a table.

    .venv/bin/python bench/bench_memory.py [--minutes 60] [--cases decorr,ps-mtm,8ch-192k,formation] [--keep]
        [--cap-mb 6144] [--valid] [--renditions K]

Generates its inputs in a temporary folder (deleted afterwards unless --keep; an hour of mono
16-bit WAV is 318 MB):

* ``mono``: an hour of 44.1 kHz mono music-like signal (decaying harmonic notes over noise), or
  with ``--valid`` real music: the ``valid`` split's files downmixed and concatenated (repeated
  when they are shorter);
* ``8ch-192k``: an hour of 8-channel 192 kHz silence as FLAC (a small file that decodes to 22 GB
  of float samples when read whole).

Each case runs ``soundstage upmix IN -o OUT --method M`` in a fresh process and reads that
process's peak resident memory (``wait4``'s ``ru_maxrss``), wall time and exit status. Target:
at most 2 GB per case, and every case finishing. ``formation`` (issue 22) is the separator chain,
``upmix --separator formation --method ps-mtm`` (sources found, placed, rendered, a project
written); a case whose resident memory passes ``--cap-mb`` is stopped there (so the bench never
takes the machine down) and the table says when. Below the table, each case's highest resident
memory in each stage its progress lines named (sampled every 0.5 s): where the peak is.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
CLI = "cli" if (ROOT / "cli" / "__main__.py").exists() else "app.cli"     # (older trees: app.cli)
sys.path.insert(0, str(ROOT / "bench"))
from _common import tree_rss_mb  # noqa: E402
SR = 44100
BLOCK = 1 << 20


def make_mono(path: Path, seconds: float) -> None:
    rng = np.random.default_rng(0)
    n = int(seconds * SR)
    notes = [110.0, 146.8, 164.8, 196.0, 220.0, 293.7, 329.6, 392.0]
    with sf.SoundFile(str(path), "w", SR, 1, "PCM_16", format="WAV") as f:
        for a in range(0, n, BLOCK):
            t = (a + np.arange(min(BLOCK, n - a))) / SR
            f0 = np.array(notes)[(t // 0.5).astype(int) % len(notes)]
            env = np.exp(-4 * (t % 0.5))
            x = 0.3 * env * (np.sin(2 * np.pi * f0 * t) + 0.3 * np.sin(4 * np.pi * f0 * t))
            x += 0.02 * rng.standard_normal(len(t))
            f.write(x.astype(np.float32))


def make_valid(path: Path, seconds: float) -> None:
    """``seconds`` of the valid split's music, downmixed to mono and concatenated (16-bit WAV)."""
    sys.path.insert(0, str(ROOT))
    from training.dataset import load_excerpt, tracks
    need, done = int(seconds * SR), 0
    with sf.SoundFile(str(path), "w", SR, 1, "PCM_16", format="WAV") as f:
        while done < need:
            for t in tracks(split="valid"):
                x = load_excerpt(t.path, 0.0, t.seconds).mean(axis=1).astype(np.float32)[: need - done]
                f.write(x)
                done += len(x)
                if done >= need:
                    break


def make_8ch(path: Path, seconds: float, sr: int = 192000) -> None:
    n = int(seconds * sr)
    zeros = np.zeros((BLOCK, 8), np.float32)
    with sf.SoundFile(str(path), "w", sr, 8, "PCM_24", format="FLAC") as f:
        for a in range(0, n, BLOCK):
            f.write(zeros[: min(BLOCK, n - a)])


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _stage(line: str) -> Optional[str]:
    """The stage of a progress line on a pipe (``separate formation  42.0%  ...``), else None."""
    m = re.match(r"^(\S.*?)\s+\d+\.\d%", line)
    return m.group(1) if m else None


def run_case(inp: Path, out: Path, method: str, *, separator: Optional[str] = None, cap_mb: float = 6144,
             renditions: int = 1) -> dict:
    """One ``soundstage upmix`` in a fresh process: its peak RSS, wall time, exit status (a run
    whose resident memory passes ``cap_mb`` is stopped there, and the error says when), and the
    highest RSS seen (sampled every 0.5 s) in each stage its progress lines named
    (``stages``: {stage: MB}, in order)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", CLI, "upmix", str(inp), "-o", str(out), "--method", method, "--force"]
    if separator:
        cmd += ["--separator", separator]
    if renditions > 1:
        cmd += ["--renditions", str(renditions)]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines, stage = [], ["start"]

    def read() -> None:                     # progress lines: the stage the process is in
        for raw in p.stderr:
            line = raw.decode(errors="replace").rstrip()
            lines.append(line)
            stage[0] = _stage(line) or stage[0]

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    stopped, tree = None, 0.0
    stages: dict = {}
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        rss = _rss_mb(p.pid)
        stages[stage[0]] = max(stages.get(stage[0], 0.0), rss)
        tree = max(tree, tree_rss_mb(p.pid))           # with its children (the PS model's sample process)
        if stopped is None and rss > cap_mb:
            stopped = time.perf_counter() - t0
            p.kill()
        time.sleep(0.5)
    wall = time.perf_counter() - t0
    reader.join(timeout=5)
    p.stderr.close()
    err = [ln for ln in lines if _stage(ln) is None and ln.strip()]
    if stopped is not None:
        err = [f"stopped at {cap_mb:.0f} MB after {stopped:.0f} s"]
    return {"rc": os.waitstatus_to_exitcode(status), "rss_mb": usage.ru_maxrss / 1024, "tree_mb": tree, "wall_s": wall,
            "error": err[-1] if err else "", "stages": stages}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0, help="length of each input (default 60)")
    ap.add_argument("--cases", default="decorr,8ch-192k,ps-mtm,formation",
                    help="which of decorr, ps-mtm, 8ch-192k, formation (the separator chain)")
    ap.add_argument("--cap-mb", type=float, default=6144, help="stop a case whose resident memory passes this")
    ap.add_argument("--dir", default=None, help="where to put the inputs (default: a new temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--valid", action="store_true", help="the mono input from the valid split's music")
    ap.add_argument("--renditions", type=int, default=1, help="renditions of the formation case (--renditions K)")
    args = ap.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    seconds = args.minutes * 60
    work = Path(args.dir or tempfile.mkdtemp(prefix="soundstage-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        mono = work / "mono-44k.wav"
        if any(c in ("decorr", "ps-mtm", "formation") for c in cases) and not mono.exists():
            print(f"making {mono} ({args.minutes:g} min) ...", file=sys.stderr, flush=True)
            (make_valid if args.valid else make_mono)(mono, seconds)
        multi = work / "8ch-192k.flac"
        if "8ch-192k" in cases and not multi.exists():
            print(f"making {multi} ({args.minutes:g} min) ...", file=sys.stderr, flush=True)
            make_8ch(multi, seconds)
        for case in cases:
            inp, method = (multi, "decorr") if case == "8ch-192k" else (mono, "ps-mtm" if case == "formation" else case)
            print(f"running {case} ...", file=sys.stderr, flush=True)
            r = run_case(inp, work / f"out-{case}.wav", method, separator="formation" if case == "formation" else None,
                         cap_mb=args.cap_mb, renditions=args.renditions if case == "formation" else 1)
            size = inp.stat().st_size / 2 ** 20
            print(f"  {case}: peak RSS {r['rss_mb']:.0f} MB, {r['wall_s']:.0f} s, exit {r['rc']}", file=sys.stderr,
                  flush=True)
            rows.append((case, method, f"{size:.1f} MB", r))
            for f in work.glob(f"out-{case}*"):           # the outputs and projects of every rendition
                f.unlink(missing_ok=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nsoundstage upmix on {args.minutes:g} min inputs (peak RSS of the whole process; target <= 2048 MB)\n")
    print(f"| input | method | file | peak RSS | with its children (sampled) | wall | RTF | exit |")
    print(f"|---|---|---|---|---|---|---|---|")
    for case, method, size, r in rows:
        what = ("8 ch 192 kHz FLAC (silence)" if case == "8ch-192k" else
                "valid split, mono 16-bit WAV" if args.valid else "mono 44.1 kHz 16-bit WAV")
        if case == "formation":
            method = "formation + ps-mtm" + (f", {args.renditions} renditions" if args.renditions > 1 else "")
        print(f"| {what} | {method} | {size} | {r['rss_mb']:.0f} MB | {r['tree_mb']:.0f} MB | {r['wall_s']:.0f} s | "
              f"{r['wall_s'] / seconds:.3f} | {r['rc']}{' ' + r['error'] if r['rc'] else ''} |")
    for case, _method, _size, r in rows:
        print(f"\n{case}: highest RSS by stage (sampled every 0.5 s): "
              + ", ".join(f"{k} {v:.0f} MB" for k, v in r["stages"].items()))
    return 0 if all(r["rc"] == 0 for *_, r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
