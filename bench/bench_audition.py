"""Audition speed (issue 22): how long a person waits to hear stereo, a new rendition, a switch.

    .venv/bin/python bench/bench_audition.py [--json] [FILE] [--sources 8] [--quick]

FILE: any recording (default: the first 3 minutes of the first long-enough track of the ``valid``
split, downmixed to mono). Everything runs with a fresh, empty stem cache (a temporary
``SOUNDSTAGE_CACHE_DIR``), so opening is a first open.

Session steps (in this process, headless, through ``app.session.Session`` and the playback engine
as the app drives them; 8 formation sources, PS-MTM; medians of 5 where repeated):

* ``open_to_first_sound_s``: opening the file until the engine plays its first stereo block (the
  whole mix upmixed, as the app plays it while separating);
* ``open_to_placed_s``: until every source is placed and the sources' mix plays (taking over);
* ``new_rendition_s``: pressing "new rendition" until the first audible block of it (after the user
  listened a while: the next rendition is planned in the background, ``Session.prefetch``);
* ``switch_rendition_s``: switching to a kept rendition until it plays (its kept mix swapped in, or
  its mix made from the playhead);
* ``undo_s``: undoing a rendition until the state before plays.

As the app does (ui/controller.py), the session steps run with a 1-ms thread switch interval, and
the background threads (the rest of each mix, the pairs, the next rendition) run beside them.

Whole commands (fresh processes, wall time and peak RSS of each):

* ``upmix_chain_s``: ``soundstage upmix FILE --separator formation --method ps-mtm``;
* ``render_project_cached_s``: ``soundstage render`` of the project that upmix wrote (its stems cached);
* ``upmix_chain_4_renditions_s``: the chain with ``--renditions 4``;
* ``upmix_decorr_s``: ``soundstage upmix FILE --method decorr`` (no separator);
* ``peak_rss_mb``: the highest peak RSS of those processes (``wait4``: the largest process; with its
  children sampled every 0.2 s and added up, ``peak_rss_tree_mb``: the chain samples its PS model in
  a process of its own).

With ``--json`` the last line is one JSON object with those keys (seconds; MB), and the load
average (1 minute) before and after the run (``load_before``, ``load_after``).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
CLI = "cli" if (ROOT / "cli" / "__main__.py").exists() else "app.cli"     # (older trees: app.cli)
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import TreePeak  # noqa: E402

KEYS = ("open_to_first_sound_s", "open_to_placed_s", "new_rendition_s", "switch_rendition_s", "undo_s",
        "render_project_cached_s", "upmix_chain_s", "upmix_chain_4_renditions_s", "upmix_decorr_s", "peak_rss_mb")
LOAD_KEYS = ("load_before", "load_after")


def _first_block(engine) -> float:
    """Play one 512-frame block from the engine; its peak (0 when silent)."""
    buf = np.zeros((512, 2), np.float32)
    engine.playing = True
    engine.callback(buf, 512)
    return float(np.abs(buf).max())


def session_steps(path: Path, sources: int, repeat: int) -> dict:
    """The app's waits, measured on a Session driven as the controller drives it (ui/controller.py:
    the first rendition's PS parameters predicted while separating, renditions made from the
    playhead, new ones over the detail already computed)."""
    from app.memory import plan_restore, restore_needs_render
    from app.plans import Rendition, SeparationPlan
    from app.playback import whole_mix_engine
    from app.session import Session
    out = {}
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(min(switch_interval, 0.001))      # as the app's controller does
    s = Session()
    s.model = "ps-mtm"
    t0 = time.perf_counter()
    s.open(path)
    first = whole_mix_engine(s.mono, s.whole_mix())          # the open job: the whole mix upmixed
    _first_block(first)
    out["open_to_first_sound_s"] = time.perf_counter() - t0
    ahead = s.predict_ahead(Rendition(0, s.model, placement=s.placement, variety=s.variety))
    plan = s.plan_sources("formation", {"n_sources": sources})
    ahead.join()
    rplan = s.plan_rendition(0, sources=plan, playhead=0)
    engine = Session.make_engine(rplan.renders, rplan.placements, mono_compatible=s.mono_compatible,
                                 bus=rplan.mix.buf if getattr(rplan, "mix", None) is not None else None)
    SeparationPlan(plan, rplan, engine).adopt(s)
    eng = s.mix_engine()
    eng.take_over(first)                                      # the sources' mix takes over (crossfade)
    _first_block(eng)
    out["open_to_placed_s"] = time.perf_counter() - t0
    s.wait_filled()
    eng.seek(len(s.mono) // 3)
    _first_block(eng)
    news, switches, undos = [], [], []
    ahead = hasattr(s, "prefetch") and hasattr(s, "wait_ahead")
    for k in range(repeat):
        if ahead:                                             # the user listens: the next one is planned
            s.prefetch(s.next_seed())
            s.wait_ahead()
        t0 = time.perf_counter()
        seed = s.next_seed()                                  # the press (ui/controller.py new_rendition)
        detail = s.detail_for(seed) if ahead else s.shared_detail()
        s.adopt_rendition(s.plan_rendition(seed, detail=detail, playhead=eng.position))
        _first_block(eng)
        news.append(time.perf_counter() - t0)
        s.wait_filled()
    for k in range(repeat):
        t0 = time.perf_counter()
        index = k % max(1, len(s.renditions) - 1)
        plan = s.switch_at_once(index) if hasattr(s, "switch_at_once") else None   # (ui/controller.py recall)
        s.adopt_rendition(plan if plan is not None else s.plan_rendition(index=index, playhead=eng.position))
        _first_block(eng)
        switches.append(time.perf_counter() - t0)
        s.wait_filled()
    for k in range(repeat):
        t0 = time.perf_counter()
        if restore_needs_render(s):
            plan_restore(s, playhead=eng.position).adopt(s)
        else:
            s.undo.undo()
        _first_block(eng)
        undos.append(time.perf_counter() - t0)
    s.wait_filled()
    if ahead:
        s._stop_fillers()                                     # (the next rendition's prediction, if running)
    sys.setswitchinterval(switch_interval)
    out["new_rendition_s"] = statistics.median(news)
    out["switch_rendition_s"] = statistics.median(switches)
    out["undo_s"] = statistics.median(undos)
    out["_sources"] = len(s.sources)
    return out


def run_cmd(args: list[str], env: dict) -> tuple[float, float, int, str]:
    """Wall seconds, peak RSS (MB), exit status and last stderr line of ``soundstage ARGS`` (its
    CPU seconds, user + system, in ``CPU[key]`` by :func:`main`: on a busy machine the wall time
    says more about the others' work than about this one's)."""
    cmd = [sys.executable, "-m", CLI, "-q", *args]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    tree = TreePeak(p.pid)
    _pid, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    LAST_TREE[0] = tree.stop()
    err = p.stderr.read().decode(errors="replace").strip().splitlines()
    p.stdout.close(), p.stderr.close()
    LAST_CPU[0] = usage.ru_utime + usage.ru_stime
    return wall, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), (err[-1] if err else "")


LAST_CPU = [0.0]
LAST_TREE = [0.0]       # the process and its children (the PS model's sample process) together, sampled


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", help="a recording (default: 3 min of the valid split, downmixed)")
    ap.add_argument("--json", action="store_true", help="end with one line holding a JSON object")
    ap.add_argument("--sources", type=int, default=8, help="formation sources in the session steps")
    ap.add_argument("--repeat", type=int, default=5, help="repeats of the session's quick steps (median)")
    ap.add_argument("--skip-session", action="store_true")
    ap.add_argument("--skip-commands", action="store_true")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="soundstage-audition-"))
    os.environ["SOUNDSTAGE_CACHE_DIR"] = str(tmp / "cache")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if a.file:
        path, what = Path(a.file), Path(a.file).name
        info = sf.info(str(path))
        seconds = info.frames / info.samplerate
    else:
        from _common import real_mono
        x, what = real_mono(180.0)
        path = tmp / "input.wav"
        sf.write(str(path), x, 44100, subtype="FLOAT")
        seconds = len(x) / 44100
    load = os.getloadavg()
    res, rss, cpu, tree, notes = {}, {}, {}, {}, []
    if not a.skip_commands:
        out = tmp / "chain.wav"
        for key, args in [("upmix_chain_s", ["upmix", str(path), "-o", str(out), "--separator", "formation",
                                             "--method", "ps-mtm", "--force"]),
                          ("render_project_cached_s", ["render", str(out.with_suffix(".soundstage.json")), "-o",
                                                       str(tmp / "render.wav"), "--force"]),
                          ("upmix_chain_4_renditions_s", ["upmix", str(path), "-o", str(tmp / "chain4.wav"),
                                                          "--separator", "formation", "--method", "ps-mtm",
                                                          "--renditions", "4", "--force"]),
                          ("upmix_decorr_s", ["upmix", str(path), "-o", str(tmp / "decorr.wav"), "--method", "decorr",
                                              "--force"])]:
            print(f"running {key} ...", file=sys.stderr, flush=True)
            wall, peak, rc, err = run_cmd(args, env)
            res[key], rss[key], cpu[key], tree[key] = wall, peak, LAST_CPU[0], LAST_TREE[0]
            if rc:
                notes.append(f"{key}: exit {rc}: {err}")
        if (tmp / "render.wav").exists():
            y0, _ = sf.read(str(out), dtype="float32")
            y1, _ = sf.read(str(tmp / "render.wav"), dtype="float32")
            notes.append(f"render of the project {'equals' if np.array_equal(y0, y1) else 'DIFFERS FROM'} "
                         "the upmix that made it, sample for sample")
        res["peak_rss_mb"] = max(rss.values())
        res["peak_rss_tree_mb"] = max(tree.values())
    if not a.skip_session:
        print("running the session steps ...", file=sys.stderr, flush=True)
        ses = session_steps(path, a.sources, a.repeat)
        n_src = ses.pop("_sources")
        res.update(ses)
        notes.append(f"session: {n_src} formation sources asked {a.sources}")
    load2 = os.getloadavg()
    print(f"input: {what}, {seconds:.0f} s; load average {load[0]:.1f} before, {load2[0]:.1f} after "
          f"({os.cpu_count()} CPUs)")
    print(f"{'step':<30}{'seconds':>10}{'RTF':>9}{'peak RSS MB':>13}{'CPU s':>9}{'with children MB':>18}")
    for k in KEYS:
        if k not in res or k == "peak_rss_mb":
            continue
        extra = f"{rss[k]:13.0f}{cpu[k]:9.1f}{tree[k]:18.0f}" if k in rss else ""
        print(f"{k:<30}{res[k]:10.2f}{res[k] / seconds:9.3f}{extra}")
    if "peak_rss_mb" in res:
        print(f"{'peak_rss_mb':<30}{res['peak_rss_mb']:10.0f}   (with its children, sampled: "
              f"{res['peak_rss_tree_mb']:.0f})")
    for n in notes:
        print(f"note: {n}")
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
    if a.json:
        out = {k: (round(res[k], 3) if k in res else None) for k in KEYS}
        out.update(load_before=round(load[0], 2), load_after=round(load2[0], 2))
        if "peak_rss_tree_mb" in res:
            out["peak_rss_tree_mb"] = round(res["peak_rss_tree_mb"], 1)
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
