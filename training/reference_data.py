"""Training pairs for the reference matcher (:mod:`core.models.reference_match`): two excerpts of
real stereo music, one as the recording and one as the reference.

Scenes are :class:`training.placement_data.Scene` files (sources found by source formation in the
mono downmix of a 10-s excerpt, each with its features and its true place in the real stereo),
one ``.npz`` per excerpt under ``<cache>/<split>/<track digest>-<j>.npz``, as the placement data
builder writes them. Excerpt ``j`` of a track is centred at ``(j + 1/2) / 3`` of its length; the
builder here writes excerpt 1 (the middle) and excerpt "2", the 10 s right after excerpt 0, of every
track that has excerpt 0 (which the placement data build makes; ``--link FOLDER`` hard-links those
in), with the automatic number of sources, as the app separates a reference. ``packages.tsv`` beside the scenes maps each track's digest to its
package (its album or game).

Pairs (:func:`pairs`):

* ``same-track``: excerpt 0 with excerpt 1 (another part of the track) and with excerpt 2 (the next
  10 s), each way round;
* ``same-album``: excerpt 0 of one track and excerpt 0 of another track of the same package.

    SOUNDSTAGE_REFERENCE_CACHE=~/.cache/soundstage-train-reference \
    python -m training.reference_data --split train --minutes 40 --link ~/.cache/soundstage-train/placement/scenes
"""
from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from core.audio import replacing

from .datahash import file_digest
from .dataset import load_excerpt
from .placement_data import Scene, excerpt_scene, split_tracks
from core.settings import training_cache_dir

__all__ = ["cache_root", "build", "load_pairs", "pairs"]

SECONDS = 10.0
PER_TRACK = 3


def cache_root() -> Path:
    """``$SOUNDSTAGE_REFERENCE_CACHE/scenes`` (default ``~/.cache/soundstage-reference/scenes``)."""
    return training_cache_dir("reference") / "scenes"


def _save(path: Path, sc: Optional[Scene]) -> None:
    arrays = {"empty": np.array(1)} if sc is None else dict(
        feats=sc.feats, mix=sc.mix, pan=sc.pan, width=sc.width, energy=sc.energy,
        pan_spread=sc.pan_spread, name=np.array(sc.name))
    with replacing(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def build(data=None, split: str = "train", *, out: Optional[Path] = None, link: Optional[Path] = None,
          minutes: float = 0.0, shard: tuple[int, int] = (0, 1), which: int = 1,
          log: Callable[[str], None] = print) -> int:
    """Write excerpt ``which`` (1 or 2) of every track of ``split`` that has excerpt 0 (resumable);
    returns how many tracks have it."""
    folder = (Path(out) if out else cache_root()) / split
    folder.mkdir(parents=True, exist_ok=True)
    ts = [t for t in split_tracks(data, split) if t.seconds >= 2 * SECONDS]
    with open(folder.parent / f"packages-{split}.tsv", "w", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        for t in ts:
            w.writerow([file_digest(t.path), t.package, t.path.name])
    if link is not None:
        for p in (Path(link) / split).glob("*-0.npz"):
            q = folder / p.name
            if not q.exists():
                os.link(p, q)
    t0 = time.monotonic()
    made = 0
    for t in ts[shard[0]::shard[1]]:
        dig = file_digest(t.path)
        if not (folder / f"{dig}-0.npz").exists() or (folder / f"{dig}-{which}.npz").exists():
            continue
        if minutes > 0 and time.monotonic() - t0 > minutes * 60:
            log(f"stopped after {minutes:g} min; run again to continue")
            break
        start0 = max(0.0, t.seconds * 0.5 / PER_TRACK - SECONDS / 2)
        start = max(0.0, t.seconds * 1.5 / PER_TRACK - SECONDS / 2) if which == 1 else start0 + SECONDS
        if start + SECONDS > t.seconds:
            continue
        stereo = load_excerpt(t.path, start, SECONDS)
        try:
            sc = excerpt_scene(stereo, name=f"{t.path.stem}@{start:.0f}s")
        except Exception as exc:  # a silent excerpt, a formation failure: an empty scene
            log(f"skipped {t.path.name}: {exc}")
            sc = None
        _save(folder / f"{dig}-{which}.npz", sc)
        made += 1
        if made % 10 == 0:
            log(f"{split}: {made} new scenes, {time.monotonic() - t0:.0f} s")
    return len(list(folder.glob(f"*-{which}.npz")))


def _load(path: Path) -> Optional[Scene]:
    with np.load(path) as z:
        if "empty" in z.files or len(z["pan"]) < 1:
            return None
        return Scene(z["feats"], z["mix"], z["pan"], z["width"], z["energy"], z["pan_spread"],
                     str(z["name"]), path.stem.rsplit("-", 1)[0])


def load_pairs(split: str = "train", *, out: Optional[Path] = None) -> tuple[dict, dict]:
    """(scenes, packages): ``scenes[digest][j]`` = Scene of excerpt j, ``packages[digest]`` = package."""
    folder = (Path(out) if out else cache_root()) / split
    pk = {}
    tsv = folder.parent / f"packages-{split}.tsv"
    if tsv.exists():
        with open(tsv, newline="") as f:
            for row in csv.reader(f, delimiter="\t"):
                pk[row[0]] = row[1]
    scenes: dict = {}
    for p in sorted(folder.glob("*.npz")):
        dig, j = p.stem.rsplit("-", 1)
        sc = _load(p)
        if sc is not None and float(sc.energy.sum()) > 0:
            scenes.setdefault(dig, {})[int(j)] = sc
    return scenes, pk


def pairs(scenes: dict, packages: dict, *, kinds=("same-track", "same-album"), album_per_track: int = 2,
          seed: int = 0) -> list[tuple[Scene, Scene, str]]:
    """(recording, reference, kind) pairs (see the module docstring); ``album_per_track`` other
    tracks of the package per track, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    out = []
    digs = sorted(scenes)
    if "same-track" in kinds:
        for d in digs:
            for j in (1, 2):
                if 0 in scenes[d] and j in scenes[d]:
                    out.append((scenes[d][0], scenes[d][j], "same-track"))
                    out.append((scenes[d][j], scenes[d][0], "same-track"))
    if "same-album" in kinds:
        by_pk: dict = {}
        for d in digs:
            if 0 in scenes[d] and d in packages:
                by_pk.setdefault(packages[d], []).append(d)
        for d in digs:
            others = [o for o in by_pk.get(packages.get(d), []) if o != d]
            if 0 not in scenes[d] or not others:
                continue
            for o in rng.choice(others, size=min(album_per_track, len(others)), replace=False):
                out.append((scenes[d][0], scenes[str(o)][0], "same-album"))
    return out


def _main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--split", default="train")
    ap.add_argument("--minutes", type=float, default=0.0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--link", default=None, help="a placement-data scene folder whose excerpt-0 scenes to hard-link")
    ap.add_argument("--shard", default="0/1", help="I/N: every N-th track from the I-th")
    ap.add_argument("--which", type=int, default=1, choices=(1, 2), help="excerpt 1 (the middle) or 2 (after 0)")
    a = ap.parse_args()
    i, n = (int(v) for v in a.shard.split("/"))
    n = build(a.data, a.split, out=Path(a.out) if a.out else None, link=Path(a.link) if a.link else None,
              minutes=a.minutes, shard=(i, n), which=a.which, log=lambda s: print(s, flush=True))
    print(f"{n} tracks with two excerpts in {(Path(a.out) if a.out else cache_root()) / a.split}")


if __name__ == "__main__":
    _main()
