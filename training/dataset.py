"""Real stereo music for training and evaluation: the manifest written by
``shared/data/fetch-music.sh`` (columns split, package, path, samplerate, channels, seconds), or
any folder of stereo files.

Evaluation excerpts are deterministic: ``eval_excerpts(data, split="valid", seconds=10)`` takes one
excerpt from the middle of each file, so every method is compared on the same audio.
"""
from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import soundfile as sf

from core import SAMPLE_RATE
from core.audio import resample
from core.errors import ParameterError
from core.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["Track", "default_data_dir", "tracks", "load_excerpt", "eval_excerpts", "AUDIO_EXTS"]

AUDIO_EXTS = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")


@dataclass(frozen=True)
class Track:
    path: Path
    split: str
    seconds: float
    package: str = ""


def default_data_dir() -> Path:
    return Settings.resolve().data_dir


def tracks(data: Optional[os.PathLike] = None, split: Optional[str] = None) -> list[Track]:
    """Stereo tracks of ``split`` ("train", "valid", "multitrack"; None = all) from a manifest folder,
    or every stereo audio file under a plain folder (then ``split`` is ignored)."""
    root = Path(data) if data is not None else default_data_dir()
    manifest = root / "manifest.tsv"
    out: list[Track] = []
    if manifest.exists():
        with open(manifest, newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                if split is None or row["split"] == split:
                    out.append(Track(root / row["path"], row["split"], float(row["seconds"]), row["package"]))
    elif root.is_dir():
        for p in sorted(root.rglob("*")):
            if p.suffix.lower() in AUDIO_EXTS:
                try:
                    info = sf.info(str(p))
                except Exception as exc:
                    log.warning("skipping %s: unreadable as audio (%s)", p, exc)
                    continue
                if info.channels == 2:
                    out.append(Track(p, split or "all", info.duration))
    else:
        raise ParameterError(f"{root}: no manifest.tsv and not a folder of audio files "
                             f"(run shared/data/fetch-music.sh to fetch the training data)")
    return out


def load_excerpt(path, start_s: float, seconds: float) -> np.ndarray:
    """``seconds`` of stereo audio from ``start_s`` [shape=(n, 2), float32 at 44.1 kHz]."""
    info = sf.info(str(path))
    start = max(0, int(start_s * info.samplerate))
    stop = min(info.frames, start + int(round(seconds * info.samplerate)))
    x, sr = sf.read(str(path), start=start, stop=stop, dtype="float32", always_2d=True)
    if x.shape[1] == 1:
        x = np.repeat(x, 2, axis=1)
    return np.ascontiguousarray(resample(x[:, :2], sr, SAMPLE_RATE))


def eval_excerpts(data=None, split: str = "valid", seconds: float = 10.0,
                  limit: Optional[int] = None) -> Iterator[tuple[Track, np.ndarray]]:
    """One ``seconds`` excerpt from the middle of each track of ``split``: (track, stereo)."""
    ts = [t for t in tracks(data, split) if t.seconds >= seconds]
    for t in ts[:limit]:
        yield t, load_excerpt(t.path, max(0.0, t.seconds / 2 - seconds / 2), seconds)
