"""An on-disk cache of separated stems, shared by every separation backend.

An entry holds the sources one backend made from one recording with one model and one set of
settings. Its key is a hash of the audio content, the backend name, the model's signature and
the settings that change the output, so reopening a recording that was separated before skips
the model entirely (a file read, well under a second for a song)::

    cache = StemCache()                        # user cache dir, or $SOUNDSTAGE_CACHE_DIR
    key = cache.key(StemCache.content_hash(mono), "demucs", signature, {"shifts": 1})
    sources = cache.load(key)                  # None on a miss
    ...
    cache.store(key, sources, meta={"model": "htdemucs"})

Each entry is one uncompressed ``.npz`` file (one float32 array [shape=(n,)] per source plus a
JSON header), written to a temporary file and renamed into place, so a crash or a cancel never
leaves a partial entry. The total size is bounded: after each store the least recently used
entries (by file modification time, refreshed on every hit) are removed until the cache fits.

Eviction and ``clear`` remove only what the cache made: a file counts as an entry when its name is
a cache key (hex digits + ``.npz``) and it holds the cache's header (checked before removal),
and temporary files only under the names the cache gives them. Whatever else lies in the folder
(the folder may be one the user chose) is never touched.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from core.audio import replacing
from core.errors import ParameterError
from core.npz import read_npz
from core.spill import release, signal_buffer, spill_folder
from core.settings import Settings

from .base import Source

log = logging.getLogger(__name__)

__all__ = ["StemCache", "CacheEntry", "CacheInfo", "default_cache_dir", "ENV_CACHE_DIR", "ENV_CACHE_MAX_MB",
           "DEFAULT_MAX_BYTES"]

ENV_CACHE_DIR = "SOUNDSTAGE_CACHE_DIR"
ENV_CACHE_MAX_MB = "SOUNDSTAGE_CACHE_MAX_MB"
DEFAULT_MAX_BYTES = 4 * 1024 ** 3
FORMAT_VERSION = 2
_SUFFIX = ".npz"
_PART = ".part"
_FORMAT = "soundstage-stem-cache"
_ENTRY_NAME = re.compile(r"[0-9a-f]{1,64}\.npz")
_HASH_BLOCK = 1 << 20
_PART_NAME = re.compile(r"\.[0-9a-f]{1,64}\..*\.part")


def default_cache_dir() -> Path:
    """``$SOUNDSTAGE_CACHE_DIR/stems`` when that variable is set, else the user cache directory
    (``platformdirs.user_cache_dir("soundstage")``) + ``/stems``."""
    return Settings.resolve().stem_cache_dir


def _default_max_bytes() -> int:
    return Settings.resolve().cache_max_bytes


@dataclass(frozen=True)
class CacheEntry:
    key: str
    path: Path
    size: int
    last_used: float
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CacheInfo:
    directory: Path
    entries: int
    total_bytes: int
    max_bytes: int


class StemCache:
    """Least-recently-used cache of separated sources in ``directory`` (see the module docstring).

    ``max_bytes`` bounds the total size (default: ``$SOUNDSTAGE_CACHE_MAX_MB`` or 4 GiB); 0 keeps
    nothing."""

    def __init__(self, directory=None, *, max_bytes: Optional[int] = None):
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.max_bytes = _default_max_bytes() if max_bytes is None else int(max_bytes)
        if self.max_bytes < 0:
            raise ParameterError(f"max_bytes must be >= 0, got {max_bytes}")

    # -- keys -----------------------------------------------------------------------------------
    @staticmethod
    def content_hash(audio: np.ndarray, sample_rate: int = 44100) -> str:
        """SHA-256 of the samples (as contiguous float32), their shape and the sample rate."""
        a = np.ascontiguousarray(audio, dtype=np.float32)
        h = hashlib.sha256(f"{a.shape}|{sample_rate}|".encode())
        flat = a.reshape(-1)
        for i in range(0, max(len(flat), 1), _HASH_BLOCK):  # a block at a time: a file-mapped signal
            h.update(memoryview(flat[i:i + _HASH_BLOCK]).cast("B"))   # (core.spill) keeps a block resident
            release(a)
        return h.hexdigest()

    @staticmethod
    def key(content_hash: str, backend: str, signature: str, settings: Optional[dict] = None) -> str:
        """Entry key from the audio hash, the backend name, the model signature and the settings
        that change the output (JSON-serializable)."""
        blob = json.dumps({"v": FORMAT_VERSION, "audio": content_hash, "backend": backend,
                           "model": signature, "settings": settings or {}}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:40]

    def path_for(self, key: str) -> Path:
        if not key or not all(c in "0123456789abcdef" for c in key):
            raise ParameterError(f"invalid cache key {key!r}")
        return self.directory / f"{key}{_SUFFIX}"

    # -- entries --------------------------------------------------------------------------------
    def contains(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def load(self, key: str) -> Optional[list[Source]]:
        """The cached sources for ``key`` (marking the entry as just used), or None.

        A damaged entry counts as a miss and is removed."""
        path = self.path_for(key)

        def read(z):
            header = json.loads(bytes(z["header"]).decode())
            count = len(header.get("sources", []))
            if spill_folder() is None:
                return header, [z[f"s{i}"] for i in range(count)]
            return header, [_read_signal(z.zip, f"s{i}.npy") for i in range(count)]   # the headless chain: onto disk

        try:
            header, stems = read_npz(path, read)
        except FileNotFoundError:
            return None
        except SystemError as exc:  # CPython's spurious AST error, again and again (core.npz): a miss, the file kept
            log.info("stem cache: %s not read (%s)", path, exc)
            return None
        except Exception as exc:  # truncated or foreign file: drop it, separate again
            log.warning("stem cache: dropping damaged entry %s (%s)", path, exc)
            _unlink(path)
            return None
        try:
            os.utime(path)
        except OSError:
            pass
        sources = []
        for i, s in enumerate(header.get("sources", [])):
            sources.append(Source(name=s["name"], audio=stems[i], colour=s["colour"], kind=s["kind"],
                                  meta=dict(s.get("meta", {}))))
        return sources

    def store(self, key: str, sources: list[Source], meta: Optional[dict] = None) -> Optional[Path]:
        """Write ``sources`` under ``key`` atomically, then evict least-recently-used entries.

        Returns the entry's path, or None when one entry alone exceeds the size limit."""
        path = self.path_for(key)
        if not sources:
            raise ParameterError("nothing to cache: no sources")
        n = len(sources[0].audio)
        if any(np.ndim(s.audio) != 1 or len(s.audio) != n for s in sources):
            raise ParameterError("cached sources must be 1-D and of equal length")
        if len(sources) * n * 4 > self.max_bytes:
            return None
        header = {"format": _FORMAT, "version": FORMAT_VERSION, "created": time.time(), "meta": meta or {},
                  "sources": [{"name": s.name, "colour": s.colour, "kind": s.kind,
                               "meta": _jsonable(s.meta)} for s in sources]}
        arrays = {"header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)}
        arrays.update({f"s{i}": np.asarray(s.audio, dtype=np.float32) for i, s in enumerate(sources)})
        self.directory.mkdir(parents=True, exist_ok=True)
        with replacing(path) as tmp:                      # (.NAME.*.part until complete)
            with open(tmp, "wb") as f:
                _savez(f, arrays)
        self.evict(keep=key)
        return path

    def entries(self) -> list[CacheEntry]:
        """All complete entries, least recently used first (files named as entries; headers are
        not read: :meth:`made_here` checks one before it is removed)."""
        out = []
        if not self.directory.is_dir():
            return out
        for p in self.directory.iterdir():
            if not _ENTRY_NAME.fullmatch(p.name):
                continue
            try:
                st = p.stat()
            except OSError:
                continue
            out.append(CacheEntry(p.stem, p, st.st_size, st.st_mtime))
        out.sort(key=lambda e: (e.last_used, e.key))
        return out

    def read_meta(self, key: str) -> Optional[dict]:
        """The header of one entry (backend meta and source names), without loading the stems."""
        try:
            return read_npz(self.path_for(key), lambda z: json.loads(bytes(z["header"]).decode()))
        except Exception as exc:
            log.info("stem cache: no readable header in %s (%s)", self.path_for(key), exc)
            return None

    @staticmethod
    def made_here(path) -> bool:
        """Whether ``path`` is an entry this cache wrote: an entry name and the cache's header
        (an ``.npz`` with a JSON ``header`` naming its version and sources)."""
        path = Path(path)
        if not _ENTRY_NAME.fullmatch(path.name) or path.is_symlink() or not path.is_file():
            return False
        try:
            header = read_npz(path, lambda z: json.loads(bytes(z["header"]).decode()) if "header" in z.files else None)
            if header is None:
                return False
        except Exception:
            return False
        return (isinstance(header, dict) and header.get("format", _FORMAT) == _FORMAT
                and isinstance(header.get("version"), int) and isinstance(header.get("sources"), list))

    def info(self) -> CacheInfo:
        entries = self.entries()
        return CacheInfo(self.directory, len(entries), sum(e.size for e in entries), self.max_bytes)

    def evict(self, max_bytes: Optional[int] = None, *, keep: Optional[str] = None) -> list[str]:
        """Remove least-recently-used entries until the total is at most ``max_bytes`` (default:
        the cache's limit); ``keep`` is never removed. Also removes stale temporary files.
        Returns the removed keys."""
        limit = self.max_bytes if max_bytes is None else int(max_bytes)
        self._remove_stale_parts()
        entries = self.entries()
        total = sum(e.size for e in entries)
        removed = []
        for e in entries:
            if total <= limit:
                break
            if e.key == keep or not self.made_here(e.path):
                continue
            if _unlink(e.path):
                removed.append(e.key)
            total -= e.size
        return removed

    def clear(self) -> tuple[int, int]:
        """Remove every entry (and leftover temporary files) this cache made; other files in the
        folder stay. Returns (entries, bytes) removed."""
        n = size = 0
        for e in self.entries():
            if self.made_here(e.path) and _unlink(e.path):
                n += 1
                size += e.size
        self._remove_stale_parts(max_age=60.0)  # spare a writer that is busy right now
        return n, size

    def _remove_stale_parts(self, max_age: float = 24 * 3600.0) -> None:
        # Temporary files of a writer that crashed; a live writer's file is younger than max_age.
        if not self.directory.is_dir():
            return
        now = time.time()
        for p in self.directory.glob(f".*{_PART}"):
            if not _PART_NAME.fullmatch(p.name):
                continue
            try:
                if now - p.stat().st_mtime >= max_age:
                    p.unlink()
            except OSError:
                pass


def _read_signal(zf, name: str, block: int = 1 << 20) -> np.ndarray:
    """Member ``name`` of an entry (a 1-D float32 ``.npy``) read a block at a time into a
    :func:`core.spill.signal_buffer` (mapped on disk inside :func:`core.spill.spilling`), its pages
    released as it goes: a cached stem costs a block of RSS, not its length."""
    with zf.open(name) as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        if len(shape) != 1 or np.dtype(dtype) != np.float32:
            raise ValueError(f"{name}: a stem must be 1-D float32, found {dtype} {shape}")
        out = signal_buffer(shape[0])
        raw = memoryview(out).cast("B")
        pos = 0
        while pos < len(raw):
            got = f.readinto(raw[pos:pos + block])
            if not got:
                raise ValueError(f"{name}: cut short")
            pos += got
            release(out)
        return out


def _savez(f, arrays: dict, block: int = 1 << 20) -> None:
    """``np.savez(f, **arrays)`` (the same uncompressed ``.npz``, read by ``np.load``), each array
    written a block at a time: a stem mapped on a file (:mod:`core.spill`) keeps a block of
    resident memory, not the whole signal."""
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, a in arrays.items():
            a = np.ascontiguousarray(a)
            with zf.open(name + ".npy", "w", force_zip64=True) as out:
                np.lib.format.write_array_header_1_0(out, np.lib.format.header_data_from_array_1_0(a))
                flat = a.reshape(-1)
                for i in range(0, len(flat), block):
                    out.write(flat[i:i + block].tobytes())
                    release(a)


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except OSError:
        return False


def _jsonable(meta: dict) -> dict:
    out = {}
    for k, v in meta.items():
        if isinstance(v, (np.floating, np.integer)):
            v = v.item()
        try:
            json.dumps(v)
        except TypeError:
            v = str(v)
        out[str(k)] = v
    return out
