"""The sources' decorrelated copies kept in the stem cache, so that re-rendering a project, reopening a
recording or a project, or a second upmix of the same sources skips the decorrelator.

A source's decorrelated copy (:func:`core.renderer.prepare_source`) depends on its stem alone and on the
decorrelator. An entry is one stem cache entry (:class:`separation.stem_cache.StemCache`: atomic, bounded,
least recently used first, listed and emptied by ``soundstage cache``) holding the copy, keyed by the stem's
content and by the decorrelator's *fingerprint*: the SHA-256 of its output on a fixed probe signal, made
once per process, so that any change to the decorrelator (or a machine whose float kernels give other
bits) misses instead of reusing copies made another way. The band energies are made again from the stem
(one STFT: a twelfth of the decorrelation's cost), bit for bit as :func:`~core.renderer.prepare_source`
makes them. A copy comes back bit for bit as it was made, so a render from the cache equals a fresh one.

Long recordings are not kept (their copies would push the stems themselves out of the cache): a source
is kept when all of a recording's copies together stay within a quarter of the cache's size.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from typing import Optional

import numpy as np

from core.mixdown import MIX_FRAMES
from core.renderer import SourceRender, prepare_source
from core.bands import band_edges
from core.spill import release
from core.stft import n_frames, stft_frames
from separation.base import Source

__all__ = ["DecorrelatedCache", "band_energies", "fingerprint", "BACKEND"]

log = logging.getLogger(__name__)

BACKEND = "decorrelated"         # the entries' backend name (``soundstage cache info`` shows it)
_FINGERPRINT: list[Optional[str]] = [None]
_LOCK = threading.Lock()


def fingerprint() -> str:
    """The decorrelator's fingerprint: SHA-256 of its copy of a fixed probe (0.5 s of a chord in
    noise, with an onset, then 0.25 s of silence: the all-pass tails die away in it, the path
    :mod:`core.denormals` guards), made once per process."""
    with _LOCK:
        if _FINGERPRINT[0] is None:
            t = np.arange(22050) / 44100
            rng = np.random.default_rng(20261206)
            probe = (0.2 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 1375 * t)
                     + 0.05 * rng.standard_normal(len(t)) * (t > 0.25)).astype(np.float32)
            probe = np.concatenate([probe, np.zeros(11025, np.float32)])
            d = prepare_source(probe).d
            _FINGERPRINT[0] = hashlib.sha256(np.ascontiguousarray(d, np.float32).tobytes()).hexdigest()
        return _FINGERPRINT[0]


def band_energies(x: np.ndarray) -> np.ndarray:
    """Stem ``x``'s band energies [shape=(34, frames)], as :func:`core.renderer.prepare_source`
    makes them (the same chunks, the same sums: the same bits)."""
    t = n_frames(len(x))
    edges = band_edges()[:-1]
    out = []
    for f0 in range(0, t, MIX_FRAMES):
        S = stft_frames(x, f0, min(f0 + MIX_FRAMES, t), frames_major=True)
        release(x)                       # a file-mapped stem (core.spill) keeps a chunk resident
        out.append(np.ascontiguousarray(np.add.reduceat(S.real ** 2 + S.imag ** 2, edges, axis=1).T,
                                        dtype=np.float32))
    return np.concatenate(out, axis=1)


class DecorrelatedCache:
    """The decorrelated copies of a recording's ``count`` stems kept in ``cache`` (a stem cache;
    None: nothing kept)."""

    def __init__(self, cache, count: int):
        self.cache = cache
        self.count = max(1, int(count))

    def _key(self, x: np.ndarray) -> str:
        return self.cache.key(self.cache.content_hash(x), BACKEND, fingerprint())

    def keeps(self, n: int) -> bool:
        """Whether copies of ``n`` samples are kept (all ``count`` together within a quarter of the cache)."""
        return self.cache is not None and self.count * n * 4 <= self.cache.max_bytes // 4

    def prepare(self, x: np.ndarray, *, cancel: Optional[threading.Event] = None) -> SourceRender:
        """:func:`core.renderer.prepare_source` of stem ``x``, its copy from the cache when kept there
        (and kept there when made)."""
        if not self.keeps(len(x)):
            return prepare_source(x, cancel=cancel)
        key = self._key(x)
        kept = self.cache.load(key)
        if kept is not None and len(kept) == 1 and kept[0].audio.shape == x.shape:
            return SourceRender(x, np.ascontiguousarray(kept[0].audio, dtype=np.float32), band_energies(x))
        r = prepare_source(x, cancel=cancel)
        try:
            self.cache.store(key, [Source("decorrelated copy", r.d, kind="stem")],
                             meta={"backend": BACKEND, "seconds": len(x) / 44100})
        except OSError as exc:                  # a full or read-only disk: not kept, never an error
            log.info("decorrelated copy not kept in the cache (%s)", exc)
        return r
