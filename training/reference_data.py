"""Pairs of real stereo excerpts for the reference matcher (:mod:`core.models.reference_match`):
one excerpt as the recording, another as the reference, as the evaluation pairs them
(:mod:`training.evaluation_reference`), on the ``train`` split.

For every track of the split of at least 20 s, excerpt A (the middle 10 s) and excerpt B (the 10 s
after A, before it near the end) are each analysed as the app analyses a reference
(:func:`core.reference.analyse_reference`: the downmix separated with source formation, each
source's features, place, width and per-band pan measured in the excerpt's own L/R): one JSON per
excerpt under ``<cache>/analysed/<split>/<track digest>-A.json`` (``$SOUNDSTAGE_REFERENCE_CACHE``,
default ``~/.cache/soundstage-reference``), with ``packages-<split>.tsv`` beside (each track's
package: its album or game), and a ``.bins.npz`` of bin- and frame-level images beside each (kept
for studies of finer transports: per-bin pans, per-frame band powers, the sources' energies).

Pairs (:func:`analysed_pairs`): *same-track*: A as the recording, B as the reference; *same-album*:
A of a track with A of the next track of its package (cyclically).

    python -m training.reference_data --split train --shard 0/2
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

import separation
from core.audio import replacing
from core.bands import band_sum
from core.pan import iid_to_pan
from core.reference import MonoReference, ReferenceScene, analyse_reference
from core.settings import training_cache_dir
from core.stft import stft

from .datahash import file_digest
from .dataset import load_excerpt
from .evaluation_reference import _b_start, _middle
from .placement_data import split_tracks

__all__ = ["cache_root", "build_analysed", "load_analysed", "analysed_pairs"]

SECONDS = 10.0


def cache_root() -> Path:
    """``$SOUNDSTAGE_REFERENCE_CACHE`` (default ``~/.cache/soundstage-reference``)."""
    return training_cache_dir("reference")


def build_analysed(data=None, split: str = "train", *, out: Optional[Path] = None, minutes: float = 0.0,
                   shard: tuple[int, int] = (0, 1), log: Callable[[str], None] = print) -> int:
    """Excerpts A (the middle 10 s) and B (the 10 s after A) of every track of ``split``, each
    analysed as the app analyses a reference (:func:`core.reference.analyse_reference`, formation):
    the protocol of :mod:`training.evaluation_reference`, on training tracks. One JSON per excerpt
    under ``<root>/analysed/<split>/<digest>-A.json`` (``{"mono": true}`` for a near-mono one),
    ``packages-<split>.tsv`` beside; resumable. Returns how many tracks have both."""
    folder = (Path(out) if out else cache_root() / "analysed") / split
    folder.mkdir(parents=True, exist_ok=True)
    ts = [t for t in split_tracks(data, split) if t.seconds >= 2 * SECONDS]
    with open(folder.parent / f"packages-{split}.tsv", "w", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        for t in ts:
            w.writerow([file_digest(t.path), t.package, t.path.name])
    sep = separation.get("formation")
    t0, made = time.monotonic(), 0
    for t in ts[shard[0]::shard[1]]:
        dig = file_digest(t.path)
        for tag, start in (("A", _middle(t)), ("B", _b_start(t))):
            path = folder / f"{dig}-{tag}.json"
            bins = folder / f"{dig}-{tag}.bins.npz"
            if path.exists() and (not bins.exists() or "f_e" in np.load(bins).files):
                continue
            if minutes > 0 and time.monotonic() - t0 > minutes * 60:
                log(f"stopped after {minutes:g} min; run again to continue")
                return len(list(folder.glob("*-B.json")))
            stereo = load_excerpt(t.path, start, SECONDS)
            try:
                sources = list(sep.separate(stereo.mean(axis=1, dtype=np.float64).astype(np.float32)))
                d = analyse_reference(stereo, lambda mono: sources, name=f"{t.path.stem}@{start:.0f}s",
                                      separator="formation").to_dict()
                with replacing(folder / f"{dig}-{tag}.bins.npz") as tmp, open(tmp, "wb") as f:
                    np.savez(f, **_bins(stereo, sources))
            except MonoReference:
                d = {"mono": True}
            except Exception as exc:  # a silent excerpt, a formation failure
                log(f"skipped {t.path.name}: {exc}")
                d = {"mono": True, "error": str(exc)}
            with replacing(path) as tmp:
                Path(tmp).write_text(json.dumps(d))
            made += 1
            if made % 20 == 0:
                log(f"{split}: {made} new excerpts, {time.monotonic() - t0:.0f} s")
    return len(list(folder.glob("*-B.json")))


def _bins(stereo: np.ndarray, sources) -> dict:
    """Bin-level images of an excerpt: per STFT bin the time sums of |L|^2, |R|^2, Re(L R*) and
    per source its energy per bin and its energy times its share of each tile, summed over time."""
    L, R = stft(stereo[:, 0]), stft(stereo[:, 1])
    specs = np.stack([stft(np.ascontiguousarray(np.asarray(s.audio, np.float32)[:len(stereo)])) for s in sources])
    p = (specs.real ** 2 + specs.imag ** 2).astype(np.float64)
    share = p / np.maximum(p.sum(axis=0, keepdims=True), 1e-20)
    ll, rr, lr = np.abs(L) ** 2, np.abs(R) ** 2, L.real * R.real + L.imag * R.imag
    return dict(ll=ll.sum(1), rr=rr.sum(1), lr=lr.sum(1), pan_t=_bin_pan(L, R), e=p.sum(2).astype(np.float32),
                dom=(p * share).sum(2).astype(np.float32), f_ll=band_sum(ll).astype(np.float32),
                f_rr=band_sum(rr).astype(np.float32), f_lr=band_sum(lr).astype(np.float32),
                f_e=np.stack([band_sum(q) for q in p]).astype(np.float32))


def _bin_pan(L, R) -> np.ndarray:
    """Energy-weighted mean over frames of each bin's tile pan [shape=(bins,)]."""
    ll, rr = np.abs(L) ** 2, np.abs(R) ** 2
    e = ll + rr
    fl = 1e-10 * max(float(e.max()), 1e-20)
    pan = iid_to_pan(10 * np.log10((ll + fl) / (rr + fl)))
    return ((e * pan).sum(1) / np.maximum(e.sum(1), 1e-30)).astype(np.float32)


def load_analysed(split: str = "train", *, out: Optional[Path] = None) -> tuple[dict, dict]:
    """(scenes, packages): ``scenes[digest][tag]`` = the ReferenceScene of excerpt ``tag`` ("A"/"B")."""
    folder = (Path(out) if out else cache_root() / "analysed") / split
    pk = {}
    tsv = folder.parent / f"packages-{split}.tsv"
    if tsv.exists():
        with open(tsv, newline="") as f:
            for row in csv.reader(f, delimiter="\t"):
                pk[row[0]] = row[1]
    scenes: dict = {}
    for p in sorted(folder.glob("*.json")):
        dig, tag = p.stem.rsplit("-", 1)
        d = json.loads(p.read_text())
        if not d.get("mono"):
            scenes.setdefault(dig, {})[tag] = ReferenceScene.from_dict(d)
    return scenes, pk


def analysed_pairs(scenes: dict, packages: dict, *, with_digest: bool = False) -> list[tuple]:
    """(recording, reference, kind) of analysed excerpts: same-track (A with B as the reference),
    same-album (A with A of the next track of the package, cyclically), as the evaluation pairs them;
    ``with_digest``: (recording, reference, kind, the recording's track digest), as the tuner takes them."""
    out = []
    digs = sorted(d for d in scenes if "A" in scenes[d])
    by_pk: dict = {}
    for d in digs:
        by_pk.setdefault(packages.get(d, ""), []).append(d)
    for d in digs:
        if "B" in scenes[d]:
            out.append((scenes[d]["A"], scenes[d]["B"], "same-track") + ((d,) if with_digest else ()))
        same = by_pk[packages.get(d, "")]
        if len(same) > 1:
            out.append((scenes[d]["A"], scenes[same[(same.index(d) + 1) % len(same)]]["A"], "same-album")
                       + ((d,) if with_digest else ()))
    return out


def _main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--split", default="train")
    ap.add_argument("--minutes", type=float, default=0.0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--shard", default="0/1", help="I/N: every N-th track from the I-th")
    a = ap.parse_args()
    i, n = (int(v) for v in a.shard.split("/"))
    n = build_analysed(a.data, a.split, out=Path(a.out) if a.out else None, minutes=a.minutes, shard=(i, n),
                       log=lambda s: print(s, flush=True))
    print(f"{n} tracks with excerpts A and B analysed")


if __name__ == "__main__":
    _main()
