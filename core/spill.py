"""Signals kept on disk instead of in RAM: long recordings' stems and decorrelated copies.

An hour of audio is 635 MB per float32 mono signal: the chain's sources, each with its
decorrelated copy, do not fit in memory beside each other. Inside :func:`spilling` (the headless
chain), :func:`signal_buffer` gives float32 arrays mapped on unlinked files in a folder (the OS's
page cache holds them, written out when memory is short, as a DAW streams from disk), and code
that walks such a signal chunk by chunk calls :func:`release` after each chunk: the pages it
touched leave the process's resident set (their data stays in the file), so a mapped signal
costs a chunk of RSS however long it is. Outside :func:`spilling`, :func:`signal_buffer` is
``np.zeros`` and :func:`release` does nothing: the app keeps its signals in RAM as before.

The arrays are plain ``np.ndarray`` views (their base is the map): every reader sees the same
bits it would see in RAM.
"""
from __future__ import annotations

import contextlib
import logging
import mmap
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from .progress import ProgressFn

__all__ = ["Releasing", "spilling", "spill_folder", "signal_buffer", "to_disk", "mapped_buffer", "mapped_on_file", "release"]

log = logging.getLogger(__name__)

_FOLDER: list = [None]      # the folder signals go to while :func:`spilling` is active (one per process)
_LOCK = threading.Lock()


@contextlib.contextmanager
def spilling(folder) -> Iterator[None]:
    """While active, :func:`signal_buffer` maps its arrays on unlinked files in ``folder`` (None:
    nothing changes). Not nested across threads: the chain runs one at a time per process."""
    with _LOCK:
        before, _FOLDER[0] = _FOLDER[0], (Path(folder) if folder is not None else None)
    try:
        yield
    finally:
        with _LOCK:
            _FOLDER[0] = before


def spill_folder() -> Optional[Path]:
    """The folder :func:`signal_buffer` maps on now, or None (in RAM)."""
    return _FOLDER[0]


def mapped_buffer(shape, folder, *, zeros: bool = False) -> np.ndarray:
    """A float32 array of ``shape``: with ``folder``, mapped on a file there that is unlinked as
    soon as it is mapped (nothing is left behind, even after a crash; the space is freed with the
    array), its space reserved first (a full disk is an error here, and then the array is kept in
    RAM, never a fault while writing); without, in RAM. ``zeros``: every element 0 (a reserved file
    reads as zeros; in RAM the pages are zeroed as they are first touched), at no cost up front."""
    shape = tuple(int(s) for s in np.atleast_1d(shape))
    alloc = np.zeros if zeros else np.empty
    size = int(np.prod(shape)) * 4
    if folder is None or size <= 0 or not hasattr(os, "posix_fallocate"):
        return alloc(shape, np.float32)
    try:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix="signal-", suffix=".f32", dir=folder)
        try:
            os.posix_fallocate(fd, 0, size)
            with open(fd, "r+b", closefd=False) as f:
                buf = np.memmap(f, dtype=np.float32, mode="r+", shape=shape)
        finally:
            os.close(fd)
            os.unlink(path)
        return buf.view(np.ndarray)       # a plain array (the map lives as its base)
    except OSError as exc:
        log.info("signal kept in memory: cannot map it in %s (%s)", folder, exc)
        return alloc(shape, np.float32)


def signal_buffer(n: int) -> np.ndarray:
    """A float32 signal of zeros [shape=(n,)]: on disk inside :func:`spilling`, else in RAM."""
    return mapped_buffer((max(int(n), 0),), spill_folder(), zeros=True)


def to_disk(x: np.ndarray, *, block: int = 1 << 20) -> np.ndarray:
    """``x`` [shape=(n,)] copied into a :func:`signal_buffer` a block at a time (the same values),
    inside :func:`spilling`; outside, ``x`` itself."""
    if spill_folder() is None or np.ndim(x) != 1 or mapped_on_file(x):
        return x
    out = signal_buffer(len(x))
    if not mapped_on_file(out):                # (no room on disk: kept in RAM as it was)
        return x
    for i in range(0, len(x), block):
        out[i:i + block] = x[i:i + block]
        release(out)
    return out


def _map_of(a) -> Optional[mmap.mmap]:
    while a is not None:
        if isinstance(a, mmap.mmap):
            return a
        a = getattr(a, "base", None)
    return None


def mapped_on_file(a) -> bool:
    """Whether array ``a`` lives on a file mapping (:func:`mapped_buffer` with a folder)."""
    return _map_of(a) is not None


def release(*arrays) -> None:
    """Drop the pages of every file-mapped array among ``arrays`` from the resident set (their
    data stays in the file and reads back the same); arrays in RAM (and None) are left alone."""
    for a in arrays:
        m = _map_of(a)
        if m is not None and not m.closed:
            try:
                m.madvise(mmap.MADV_DONTNEED)
            except (OSError, ValueError, AttributeError):      # (no madvise: the pages just stay)
                pass


class Releasing:
    """A progress callback (``progress``, or none) that also drops the pages of the file-mapped
    ``arrays`` (:func:`release`) at most every 0.2 s: the headless chain's and ``render``'s input,
    which the separation, the prediction (another thread) and the loudness walk in chunks without
    releasing it themselves, stays a few chunks resident."""

    def __init__(self, progress: Optional[ProgressFn], *arrays):
        self.progress, self.arrays, self.last = progress, arrays, 0.0

    def __call__(self, p) -> None:
        now = time.monotonic()
        if now - self.last >= 0.2:
            self.last = now
            release(*self.arrays)
        if self.progress is not None:
            self.progress(p)
