"""Seeding on real multitrack music: the pans the models propose for guitar vs backing.

For each song of the `multitrack` split (full mix = song.ogg + guitar.ogg), a 30-s excerpt from the
middle: the two true stems (each downmixed to mono) are the sources, and placements are seeded
(a) from the PS parameters of the real stereo mix (the truth: where the mix engineer put them)
and (b) from each model's prediction on the mono mix (seed 0). Pan -1 = left, +1 = right;
width 0 = point source, 1 = diffuse.

Run: .venv/bin/python bench/seeding_multitrack.py [--seconds 30]
"""
import argparse
from collections import defaultdict

import numpy as np

from _common import real_mono  # noqa: F401  (sets sys.path)

from training.dataset import load_excerpt, tracks
from core.models import list_models, load_model
from core.models.base import models_dir
from core.placement import pan_to_iid, seed_placements
from core.ps import analyze, band_energy
from core.stft import stft


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30.0)
    a = ap.parse_args()
    songs = defaultdict(dict)
    for t in tracks(split="multitrack"):
        songs[t.path.parent.name][t.path.stem] = t
    models = [m.name for m in list_models() if m.name != "mono" and m.available(models_dir())[0]
              and m.name != "ps-ar"]
    print(f"{'song':<24}{'method':<10}{'guitar pan':>11}{'width':>7}{'backing pan':>12}{'width':>7}{'|dIID| vs truth dB':>20}")
    for song, parts in sorted(songs.items()):
        if "song" not in parts or "guitar" not in parts:
            continue
        mid = parts["song"].seconds / 2 - a.seconds / 2
        back = load_excerpt(parts["song"].path, mid, a.seconds)
        gtr = load_excerpt(parts["guitar"].path, mid, a.seconds)
        n = min(len(back), len(gtr))
        stereo = back[:n] + gtr[:n]
        mono = stereo.mean(axis=1).astype(np.float32)
        stems = [gtr[:n].mean(axis=1).astype(np.float32), back[:n].mean(axis=1).astype(np.float32)]
        energies = np.stack([band_energy(stft(s)) for s in stems])
        truth = seed_placements(analyze(stereo), energies)
        rows = [("truth", truth)]
        for name in models:
            p = load_model(name).predict(mono, seed=0)
            rows.append((name, seed_placements(p, energies)))
        t_iid = [float(pan_to_iid(p.pan)) for p in truth]
        for name, pl in rows:
            d = np.mean([abs(float(pan_to_iid(p.pan)) - t) for p, t in zip(pl, t_iid)])
            print(f"{song[:23]:<24}{name:<10}{pl[0].pan:11.2f}{pl[0].width:7.2f}{pl[1].pan:12.2f}{pl[1].width:7.2f}"
                  f"{d:20.2f}")


if __name__ == "__main__":
    main()
