"""Content identity of data files, to keep evaluation data out of training data.

The fetched music contains identical copies under different paths (the same game track linked
into one folder per language), and some copies fall in different splits. ``distinct`` keeps one
track per content and ``split_leaks`` finds the tracks of one split whose content also occurs in
another, so builders and the evaluation can exclude them.
"""
from __future__ import annotations

import hashlib
import os
from typing import Iterable, Sequence

from .dataset import Track

__all__ = ["file_digest", "distinct", "copies_of"]

_CACHE: dict[tuple[str, int, int], str] = {}


def file_digest(path: os.PathLike) -> str:
    """BLAKE2b digest of the file's bytes (cached by path, size and modification time)."""
    st = os.stat(path)
    key = (str(path), st.st_size, st.st_mtime_ns)
    d = _CACHE.get(key)
    if d is None:
        h = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        d = _CACHE[key] = h.hexdigest()
    return d


def distinct(ts: Iterable[Track]) -> list[Track]:
    """The tracks with the first of every set of byte-identical files kept, order preserved."""
    seen, out = set(), []
    for t in ts:
        d = file_digest(t.path)
        if d not in seen:
            seen.add(d)
            out.append(t)
    return out


def copies_of(ts: Sequence[Track], others: Iterable[Track]) -> list[Track]:
    """The tracks of ``ts`` whose bytes also occur in a file of ``others`` (sizes compared first)."""
    own = {str(t.path) for t in ts}          # the same entry; a link to it is a copy
    by_size: dict[int, list] = {}
    for o in others:
        if str(o.path) not in own:
            by_size.setdefault(os.path.getsize(o.path), []).append(o.path)
    out = []
    for t in ts:
        cands = by_size.get(os.path.getsize(t.path), ())
        if cands and any(file_digest(c) == file_digest(t.path) for c in cands):
            out.append(t)
    return out
