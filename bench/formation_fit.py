"""Fit the same-instrument model of source formation's track grouping (separation.timbre.WEIGHTS).

Usage::

    nice .venv/bin/python bench/formation_fit.py [--scenes 23]

On the first ``--scenes`` ``tune`` scenes of scripts/render_midi_scenes.py (23 of 31 by default: the
numbers in separation/timbre.py; the held-out scenes stay unseen), the
formation backend's analysis runs up to the tracks (peaks, normalized cuts, partial tracking); each
track is labelled with the instrument that holds most of its peaks' energy (from the true stems'
spectrograms). For every pair of tracks of one scene, the absolute differences of their
:func:`separation.timbre.track_table` rows are the inputs of a logistic regression of "same
instrument" (pairs weighted by the square root of the product of the tracks' energies, each scene
alike). Prints, per column, the mean difference for same and different instruments, then the
weights (``-coef``) and the bias to paste into separation/timbre.py, and the weighted accuracy.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.stft import HOP, stft  # noqa: E402
from separation import formation  # noqa: E402
from separation.ncut import single_threaded_blas  # noqa: E402
from separation.timbre import N_HARMONICS, track_table  # noqa: E402

SCENES = Path.home() / ".cache" / "soundstage-midi"
COLUMNS = ["register", "harmonicity", "percussive", "tilt", "brightness", "polyphony", "decay", "duration"] + \
    [f"h{i}" for i in range(1, N_HARMONICS + 1)]


def scene_tracks(folder: Path, channels: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(track_table [shape=(T, C)], weights [shape=(T,)], instrument per track [shape=(T,)])."""
    stems = [sf.read(folder / f"ch{c:02d}.flac", dtype="float32")[0] for c in channels]
    mix = np.sum(stems, axis=0).astype(np.float32)
    sfm = formation.SourceFormation()
    peaks, perc = sfm.analyse(mix)
    b, fr = np.rint(peaks.bin).astype(np.int64), peaks.frame
    own = np.argmax(np.stack([np.abs(stft(y))[b, fr] for y in stems]), axis=0)
    with single_threaded_blas():
        cl, feats, track = sfm._cluster(peaks, perc, formation._Ticker(None, None))
    table, w = track_table(feats, track, window_s=sfm.texture_frames * HOP / 44100)
    votes = np.zeros((int(track.max()) + 1, len(stems)))
    np.add.at(votes, (track[cl], own), peaks.mag ** 2)
    return table, w, votes.argmax(axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=23, help="how many tune scenes (the first in MIDI path order)")
    args = ap.parse_args()
    with open(SCENES / "scenes.tsv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["split"] == "tune"]
    names = list(dict.fromkeys(r["scene"] for r in rows))[:args.scenes]    # in the index's (MIDI path) order
    xs, ys, ws = [], [], []
    for name in names:
        table, w, lab = scene_tracks(SCENES / name, [int(r["channel"]) for r in rows if r["scene"] == name])
        i, j = np.triu_indices(len(w), 1)
        pw = np.sqrt(w[i] * w[j])
        xs.append(np.abs(table[i] - table[j]))
        ys.append((lab[i] == lab[j]).astype(np.float64))
        ws.append(pw / pw.sum())
        print(f"{name}: {len(w)} tracks", file=sys.stderr, flush=True)
    x, y, wt = np.concatenate(xs), np.concatenate(ys), np.concatenate(ws)
    wt /= wt.mean()
    print("| column | mean difference, same | different |")
    print("|---|---|---|")
    for k, c in enumerate(COLUMNS):
        same = np.sum(wt * y * x[:, k]) / np.sum(wt * y)
        diff = np.sum(wt * (1 - y) * x[:, k]) / np.sum(wt * (1 - y))
        print(f"| {c} | {same:.3f} | {diff:.3f} |")
    # weighted logistic regression by Newton's method, a small ridge for stability
    z = np.column_stack([np.ones(len(y)), x])
    coef = np.zeros(z.shape[1])
    for _ in range(25):
        p = 1.0 / (1.0 + np.exp(-z @ coef))
        grad = z.T @ (wt * (y - p)) - 1e-3 * coef
        hess = (z * (wt * p * (1 - p))[:, None]).T @ z + 1e-3 * np.eye(len(coef))
        step = np.linalg.solve(hess, grad)
        coef += step
        if np.abs(step).max() < 1e-6:
            break
    p = 1.0 / (1.0 + np.exp(-z @ coef))
    print(f"BIAS = {coef[0]:.3f}")
    print("WEIGHTS = np.array([" + ", ".join(f"{max(-c, 0.0):.3f}" for c in coef[1:]) + "])")
    print(f"weighted accuracy {np.mean(wt * ((p > 0.5) == (y > 0.5))):.3f}, same-instrument share "
          f"{np.mean(wt * y):.3f}")


if __name__ == "__main__":
    main()
