"""Training scenes for the placement model: real stereo music, its sources, and where each one sits.

For every track of a split (each distinct file once; for ``valid`` and ``multitrack`` the files
that also occur in another split are left out), up to ``per_track`` excerpts of ``seconds``,
centred at ``(j + 1/2) / n`` of the track: the mono downmix ``(L + R) / 2`` is separated with the
source-formation backend (``separation.get("formation")``: the automatic number of sources for
the first excerpt of a track, a fixed 2..6 chosen from the track's digest for the others, so that
the model meets sets of every size), and each source gets

* its features (:func:`core.models.placement_features.source_features`, from its band energies);
* its true place in the real stereo (:func:`core.models.placement_features.true_placement`).

One ``.npz`` per excerpt under ``<cache>/<split>/`` (default ``~/.cache/soundstage-placement``,
``SOUNDSTAGE_PLACEMENT_CACHE``): building is resumable and goes over the tracks in passes (first
excerpt of every track, then the second ...), so an interrupted build still covers every track.

    python -m training.placement_data --split train --per-track 3 --seconds 20
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from core.audio import replacing
from core.errors import ParameterError
from core.models.placement_features import mix_features, source_features, true_placement
from core.ps import band_energy
from core.stft import stft

from .datahash import copies_of, distinct, file_digest
from .dataset import Track, load_excerpt, tracks
import separation
from core.settings import training_cache_dir

__all__ = ["Scene", "cache_root", "excerpt_scene", "build", "load_scenes", "split_tracks", "holdout"]


@dataclass
class Scene:
    """One excerpt: per source features [shape=(S, F)], true ``pan`` / ``width`` / ``energy``
    [shape=(S,)], mixture features [shape=(M,)], and where it came from."""
    feats: np.ndarray
    mix: np.ndarray
    pan: np.ndarray
    width: np.ndarray
    energy: np.ndarray
    pan_spread: np.ndarray
    name: str = ""
    key: str = ""          # the track's content digest (scenes of one track share it)

    @property
    def n(self) -> int:
        return len(self.pan)


def cache_root() -> Path:
    return training_cache_dir("placement")


def excerpt_scene(stereo: np.ndarray, *, n_sources: Optional[int] = None, name: str = "") -> Scene:
    """Separate the downmix of ``stereo`` [shape=(n, 2)] with source formation and measure each source."""
    mono = stereo.mean(axis=1, dtype=np.float64).astype(np.float32)
    settings = {} if n_sources is None else {"n_sources": int(n_sources)}
    sources = separation.get("formation", **settings).separate(mono)
    specs = np.stack([stft(s.audio[:len(mono)]) for s in sources])
    energies = np.stack([band_energy(sp) for sp in specs])
    truth = true_placement(specs, stft(stereo[:, 0]), stft(stereo[:, 1]))
    residual = [s.kind == "residual" for s in sources]
    return Scene(source_features(energies, residual), mix_features(energies), truth["pan"], truth["width"],
                 truth["energy"], truth["pan_spread"], name)


def split_tracks(data, split: str) -> list[Track]:
    """The tracks of ``split`` to use: each distinct file once; outside ``train``, files that also
    occur in another split are left out."""
    ts = distinct(tracks(data, split))
    if split != "train":
        leaked = set(copies_of(ts, [t for t in tracks(data) if t.split != split]))
        ts = [t for t in ts if t not in leaked]
    return ts


def _starts(t: Track, seconds: float, per_track: int) -> list[float]:
    n = max(1, min(int(per_track), int(t.seconds // seconds)))
    return [max(0.0, t.seconds * (j + 0.5) / n - seconds / 2) for j in range(n)]


def build(data=None, split: str = "train", *, seconds: float = 20.0, per_track: int = 3,
          out: Optional[Path] = None, minutes: float = 0.0, shard: tuple[int, int] = (0, 1),
          log: Callable[[str], None] = print) -> int:
    """Write the scenes of ``split`` (resumable); returns how many exist. ``minutes`` > 0 stops
    the build after that long; ``shard`` (i, n): only every n-th track from the i-th (to run n
    builds side by side)."""
    folder = (Path(out) if out else cache_root()) / split
    folder.mkdir(parents=True, exist_ok=True)
    ts = [t for t in split_tracks(data, split) if t.seconds >= min(seconds, 5.0)][shard[0]::shard[1]]
    if not ts:
        raise ParameterError(f"no tracks in split {split!r}")
    t0 = time.monotonic()
    made = 0
    for j in range(per_track):
        for t in ts:
            starts = _starts(t, min(seconds, t.seconds), per_track)
            if j >= len(starts):
                continue
            dig = file_digest(t.path)
            path = folder / f"{dig}-{j}.npz"
            if path.exists():
                continue
            if minutes > 0 and time.monotonic() - t0 > minutes * 60:
                log(f"stopped after {minutes:g} min; run again to continue")
                return len(list(folder.glob("*.npz")))
            stereo = load_excerpt(t.path, starts[j], min(seconds, t.seconds))
            n_src = None if j == 0 else 2 + int(dig[:4], 16) % 5
            try:
                sc = excerpt_scene(stereo, n_sources=n_src, name=f"{t.path.stem}@{starts[j]:.0f}s")
            except ParameterError as exc:      # e.g. a silent excerpt
                log(f"skipped {t.path.name}: {exc}")
                sc = None
            arrays = {"empty": np.array(1)} if sc is None else dict(
                feats=sc.feats, mix=sc.mix, pan=sc.pan, width=sc.width, energy=sc.energy,
                pan_spread=sc.pan_spread, name=np.array(sc.name))
            with replacing(path) as tmp, open(tmp, "wb") as f:
                np.savez(f, **arrays)
            made += 1
            if made % 25 == 0:
                log(f"{split}: {made} new scenes, pass {j + 1}/{per_track}, {time.monotonic() - t0:.0f} s")
    return len(list(folder.glob("*.npz")))


def load_scenes(split: str, *, out: Optional[Path] = None) -> list[Scene]:
    """Every cached scene of ``split`` (sorted by file name: a fixed order)."""
    folder = (Path(out) if out else cache_root()) / split
    scenes = []
    for p in sorted(folder.glob("*.npz")):
        with np.load(p) as z:
            if "empty" in z.files or len(z["pan"]) < 1:
                continue
            scenes.append(Scene(z["feats"], z["mix"], z["pan"], z["width"], z["energy"], z["pan_spread"],
                                str(z["name"]), p.stem.rsplit("-", 1)[0]))
    return scenes


def holdout(scenes: list[Scene], every: int = 10) -> tuple[list[Scene], list[Scene]]:
    """(fit, select): every ``every``-th track (by content digest, all its excerpts together) is
    held out of the training scenes to select the checkpoint, so that ``valid`` stays for
    evaluation only."""
    held = [int(s.key[:8] or "0", 16) % every == 0 for s in scenes]
    return [s for s, h in zip(scenes, held) if not h], [s for s, h in zip(scenes, held) if h]


def _main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--split", default="train")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--per-track", type=int, default=3)
    ap.add_argument("--minutes", type=float, default=0.0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--shard", default="0/1", help="I/N: every N-th track from the I-th")
    a = ap.parse_args()
    i, n = (int(v) for v in a.shard.split("/"))
    n = build(a.data, a.split, seconds=a.seconds, per_track=a.per_track, minutes=a.minutes,
              out=Path(a.out) if a.out else None, shard=(i, n), log=lambda s: print(s, flush=True))
    print(f"{n} scenes in {(Path(a.out) if a.out else cache_root()) / a.split}")


if __name__ == "__main__":
    _main()

