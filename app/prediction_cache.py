"""The PS model's predictions kept on disk, so a recording opened or re-rendered again skips the model.

A prediction (:class:`core.ps.PSParams`) depends on the recording, the model's files, the seed, the
temperature and the guidance, nothing else; the key hashes all of them (the model files by their
SHA-256, so a retrained model never reuses an old entry). Entries are small (``34 x frames`` IID
and IC: 2 MB for 3 minutes), one ``.npz`` each under ``CACHE_DIR/params``, written atomically; the
least recently used go when there are more than :data:`MAX_ENTRIES`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from core.atomic import replacing
from core.npz import read_npz
from core.ps import PSParams

__all__ = ["PredictionCache", "MAX_ENTRIES"]

log = logging.getLogger(__name__)

MAX_ENTRIES = 256


class PredictionCache:
    """``folder``: where the entries live (created on the first store); ``None``: no cache."""

    def __init__(self, folder, *, max_entries: int = MAX_ENTRIES):
        self.folder = None if folder is None else Path(folder)
        self.max_entries = int(max_entries)

    @staticmethod
    def key(audio_sha256: str, model: str, files: dict, seed: int, temperature, guidance) -> str:
        blob = json.dumps({"v": 1, "audio": audio_sha256, "model": model, "files": files, "seed": int(seed),
                           "temperature": temperature, "guidance": guidance}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:40]

    def contains(self, key: str) -> bool:
        return self.folder is not None and (self.folder / f"{key}.npz").is_file()

    def get(self, key: str, make: Callable[[], PSParams]) -> PSParams:
        """The entry for ``key``, or ``make()`` stored under it (a cache that cannot be read or
        written is a miss, never an error)."""
        if self.folder is None:
            return make()
        path = self.folder / f"{key}.npz"
        try:
            params = read_npz(path, lambda z: PSParams(z["iid"], z["ic"]))
            os.utime(path)
            return params
        except FileNotFoundError:
            pass
        except SystemError as exc:                     # CPython's spurious AST error again and again (core.npz)
            log.info("prediction cache: %s not read (%s)", path, exc)
        except Exception as exc:                       # damaged: made again
            log.warning("prediction cache: dropping %s (%s)", path, exc)
        params = make()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with replacing(path) as tmp, open(tmp, "wb") as f:
                np.savez(f, iid=params.iid, ic=params.ic)
            self._evict()
        except OSError as exc:
            log.info("prediction cache: not stored (%s)", exc)
        return params

    def _evict(self) -> None:
        entries = sorted(self.folder.glob("*.npz"), key=lambda p: p.stat().st_mtime)
        for p in entries[:max(0, len(entries) - self.max_entries)]:
            try:
                p.unlink()
            except OSError:
                pass
