"""Content checksums, in one place: files (models, outputs, recordings) and arrays (audio)."""
from __future__ import annotations

import hashlib
import os

import numpy as np

from .spill import release

__all__ = ["sha256_file", "sha256_array"]

_FILES: dict[tuple[str, int, int], str] = {}


def sha256_file(path: os.PathLike, *, chunk: int = 1 << 20) -> str:
    """SHA-256 (hex) of a file's bytes, read in ``chunk`` blocks; remembered while the file's
    size and modification time stay the same."""
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    digest = _FILES.get(key)
    if digest is None:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(chunk), b""):
                h.update(block)
        digest = _FILES[key] = h.hexdigest()
    return digest


def sha256_array(a: np.ndarray) -> str:
    """SHA-256 (hex) of an array's values (C order, its own dtype)."""
    # the array's own bytes, not a copy of them (an hour's mono signal is 635 MB), a block at a time
    # (a file-mapped array, core.spill, keeps a block resident)
    a = np.ascontiguousarray(a)
    h = hashlib.sha256()
    raw = memoryview(a).cast("B")
    for i in range(0, len(raw), 1 << 22):
        h.update(raw[i:i + (1 << 22)])
        release(a)
    return h.hexdigest()
