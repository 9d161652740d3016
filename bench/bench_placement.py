"""The placement model: file size, load time, and proposing a placement for 8 sources of a 3-minute
recording (features from the sources' band energies + sampling), at variety 0 and 1; the auto
trajectories around the proposed places; and all shipped model files together.

Run: .venv/bin/python bench/bench_placement.py [--seconds 180] [--sources 8] [--demo]
``--demo``: also the pan and width of each source of the bundled demo (formation sources, as the app
finds them) for seeds 0, 1, 2 at variety 0 and seed 0 at variety 1, as the app proposes them.
Targets (issue 13): proposal under 0.5 s; all shipped models under 30 MB; loading under 1 s.
The 8 sources are formation sources of a real recording when the data set is there.
"""
import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import real_mono, timed

from core.models.base import models_dir
from core.models.placement import placement_model_path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--sources", type=int, default=8)
    ap.add_argument("--demo", action="store_true")
    a = ap.parse_args()
    if a.demo:
        demo_table()
    x, what = real_mono(a.seconds)
    path = placement_model_path()
    # load time in a fresh process (torch import included, as the app pays it once)
    code = ("import time; t=time.perf_counter(); from core.models.placement import load_placement_model; "
            "load_placement_model(); print(time.perf_counter()-t)")
    root = str(Path(__file__).resolve().parents[1])
    t_load_cold = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                       cwd=root, env={**os.environ, "PYTHONPATH": root}).stdout.strip())
    from core.models.placement import PlacementModel
    t_load, _ = timed(PlacementModel.load, path)

    import separation
    from core.ps import band_energy
    from core.stft import stft
    t0 = time.perf_counter()
    sources = separation.get("formation", n_sources=min(8, max(2, a.sources - 1))).separate(x)
    t_sep = time.perf_counter() - t0
    energies = np.stack([band_energy(stft(s.audio)) for s in sources])[:a.sources]
    residual = [s.kind == "residual" for s in sources][:a.sources]

    from core.models import load_model
    from core.placement import propose, trajectories
    propose(energies, method="model", seed=0, residual=residual)      # warm (model loaded once)
    t_v0, _ = timed(lambda: propose(energies, method="model", seed=1, residual=residual), repeat=5)
    t_v1, _ = timed(lambda: propose(energies, method="model", seed=1, variety=1.0, residual=residual), repeat=5)
    params = load_model("decorr").predict(x)
    pl = propose(energies, method="model", seed=1, residual=residual)
    centres = np.array([(p.pan, p.width) for p in pl])
    t_traj, _ = timed(lambda: trajectories(params, energies, centres=centres), repeat=3)
    shipped = sum(f.stat().st_size for f in models_dir().iterdir() if f.suffix in (".pt", ".npz"))

    print(f"recording: {what}, {len(x) / 44100:.0f} s; {len(energies)} sources "
          f"(formation, {t_sep:.1f} s, not part of the proposal); {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores")
    print(f"{'what':<52s} {'figure':>12s}")
    print("-" * 65)
    print(f"{'placement model file':<52s} {path.stat().st_size / 1e6:9.2f} MB")
    print(f"{'all shipped model files (*.pt, *.npz)':<52s} {shipped / 1e6:9.2f} MB")
    print(f"{'load, fresh process (torch import included)':<52s} {t_load_cold:10.3f} s")
    print(f"{'load, torch already imported':<52s} {t_load:10.3f} s")
    print(f"{'propose, variety 0 (features + sampling)':<52s} {t_v0:10.3f} s")
    print(f"{'propose, variety 1':<52s} {t_v1:10.3f} s")
    print(f"{'auto trajectories around the places':<52s} {t_traj:10.3f} s")


def demo_table():
    from app.session import Session
    from core.models.base import models_dir as shipped
    s = Session()
    s.open(shipped().parent / "demo" / "feelings-mono.flac")
    s.separate("formation")
    runs = [(0, 0.0), (1, 0.0), (2, 0.0), (0, 1.0)]
    cols = []
    for seed, v in runs:
        s.new_rendition(seed, model="decorr", variety=v)
        cols.append(list(s.placements))
    print("demo (formation sources): pan / width per rendition")
    head = f"{'source':<28s}" + "".join(f"{f'seed {sd}, v {v:g}':>16s}" for sd, v in runs)
    print(head)
    print("-" * len(head))
    for i, src in enumerate(s.sources):
        print(f"{src.name[:27]:<28s}" + "".join(f"{c[i].pan:+8.2f} / {c[i].width:4.2f}" for c in cols))
    print()


if __name__ == "__main__":
    main()
