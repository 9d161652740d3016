"""Renditions that cover a proposal's distribution (issue 27, session 12).

A producer asks for several renditions of a proposal and keeps the one that sounds right; the
evaluation's E_min scores the best of K of them. Independent draws waste renditions on near-copies
of each other. With a reference followed closely (:mod:`core.reference`, :attr:`ReferenceMatcher.cover
<core.models.reference_match.ReferenceMatcher.cover>` > 0), the renditions of a block of
:data:`BLOCK` consecutive seeds are instead chosen together from a *pool* of draws of the proposal's
distribution:

* the pool (:func:`pool_means`): half the draws carry the transported image wider or narrower by a
  factor ``exp(spread * z)`` (``z`` standard normal), as the renditions of a followed reference
  always did; the other half also give each source the place of *one* of its counterparts in the
  reference instead of their weighted mean (drawn with the transport's weights raised to
  ``1 / cover_temperature``): where a source's counterpart is ambiguous, some renditions take each
  reading. Each draw is then placed by the product sampler as any rendition is (the placement
  model's density times the matcher's Normal around these places);
* the choice (:func:`greedy`): the draw nearest all the others (the pool's medoid, by the
  energy-weighted mean |pan difference|, the evaluation's source error), then one by one the draw
  that most lowers the pool's mean distance to its nearest chosen one (greedy k-medoids, a facility
  location). Seed ``8 b + i`` is the ``i``-th chosen of block ``b``: seed 0 is the medoid, the most
  typical rendition; any first few seeds are a good set, and each further one covers what those do
  not.

Everything is drawn from ``numpy.random.default_rng([STREAM, b])``: the same inputs and block give the
same renditions (exact re-renders). The pools of the last few blocks are kept (:data:`CACHE`), so
the renditions of a block cost one pool.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Callable, Optional

import numpy as np

__all__ = ["BLOCK", "STREAM", "pool_means", "greedy", "block_of", "chosen"]

BLOCK = 8           # renditions chosen together
STREAM = 27         # the pool's random stream (with the block)
CACHE = 8           # blocks' chosen renditions kept
_cache: "OrderedDict[str, np.ndarray]" = OrderedDict()
_lock = threading.Lock()


def block_of(seed: int) -> tuple[int, int]:
    """(block, index in it) of rendition ``seed``."""
    return divmod(int(seed), BLOCK)


def pool_means(mu: np.ndarray, alt: Optional[np.ndarray], weights: Optional[np.ndarray], *, n: int, spread: float,
               temperature: float, rng: np.random.Generator) -> np.ndarray:
    """The places [shape=(n, S, 2)] the pool's draws follow (see the module docstring): ``mu`` [S, 2]
    the transported (pan, width), ``alt`` [S, R] each source's pan from each counterpart alone and
    ``weights`` [S, R] the transport's (None: only the wider and narrower images)."""
    mu = np.asarray(mu, np.float64)
    out = np.repeat(mu[None], n, axis=0)
    z = rng.standard_normal(n)
    half = n if alt is None or weights is None else n // 2
    if half < n:
        a = np.asarray(weights, np.float64) ** (1.0 / temperature)
        cdf = np.cumsum(a / a.sum(axis=1, keepdims=True), axis=1)
        u = rng.random((n - half, len(mu)))
        j = np.minimum((u[..., None] > cdf[None]).sum(axis=-1), cdf.shape[1] - 1)          # [n - half, S]
        out[half:, :, 0] = np.asarray(alt, np.float64)[np.arange(len(mu))[None], j]
    out[:, :, 0] = np.clip(out[:, :, 0] * np.exp(spread * z)[:, None], -1.0, 1.0)
    return out


def greedy(pans: np.ndarray, weights: np.ndarray, k: int) -> list[int]:
    """``k`` draws of ``pans`` [shape=(n, S)] that cover them (greedy k-medoids by the
    ``weights``-weighted [S] sum of |pan differences|; the first is the medoid)."""
    y = np.asarray(pans, np.float64)
    d = (np.abs(y[:, None] - y[None]) * np.asarray(weights, np.float64)).sum(axis=-1)        # [n, n]
    picked: list[int] = []
    best = np.full(len(y), np.inf)
    for _ in range(min(int(k), len(y))):
        cost = np.minimum(best[None], d).sum(axis=1)
        cost[picked] = np.inf
        c = int(np.argmin(cost))
        picked.append(c)
        best = np.minimum(best, d[c])
    return picked


def chosen(key_parts: tuple, make: Callable[[], np.ndarray]) -> np.ndarray:
    """The block's chosen renditions [shape=(BLOCK, S, 2)]: kept from an earlier call with the same
    ``key_parts`` (arrays and plain values: every input of the pool), else ``make()`` (and kept)."""
    h = hashlib.sha256()
    for p in key_parts:
        h.update(np.ascontiguousarray(p).tobytes() if isinstance(p, np.ndarray) else repr(p).encode())
        h.update(b"|")
    key = h.hexdigest()
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    out = make()
    out.setflags(write=False)
    with _lock:
        _cache[key] = out
        while len(_cache) > CACHE:
            _cache.popitem(last=False)
    return out
