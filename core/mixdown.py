"""The stereo mix of sources in the STFT domain, block by block, for one rendition or several.

A source (:class:`core.renderer.SourceRender`) is its mono stem ``s`` and decorrelated copy ``d``;
a rendition gives each one a place (:class:`core.placement.Placement`) and, when it follows the
model, per-tile parameters (``tiles``). Pinned sources are mixed in the time domain with four
constant coefficients (:func:`pinned_coefficients`); auto ones in the STFT domain, per tile, then
one inverse STFT per channel (:func:`mix_stream`). Renditions of the same sources differ only in
their coefficients: :func:`mix_streams` mixes several of them in one pass, each source's ``S`` and
``D`` transformed once per chunk for all of them, every rendition's blocks the same bits
:func:`mix_stream` gives it alone.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Iterator, Optional

import numpy as np

from concurrent.futures import ThreadPoolExecutor

from .bands import band_of_bin
from .decoder import coefficients, mixing_coefficients, side_coefficients
from .errors import ParameterError
from .placement import Placement, downmix_gain, pan_to_iid, width_to_ic
from .progress import check_cancel
from .spill import release
from .stft import HOP, OverlapAddStream, n_frames, stft_frames

if TYPE_CHECKING:
    from .renderer import SourceRender

__all__ = ["active_gains", "pinned_coefficients", "mix_stream", "mix_streams", "CHUNK"]

CHUNK = 1 << 18  # samples per chunk when mixing long recordings (~6 s)
LAW_WORKERS = 1   # threads applying the mixing laws beside the caller's (half the channels each)
_ROWS = 16        # frames of a chunk the mixing laws work on at a time (they stay in the cache)
MIX_FRAMES = 256  # frames per chunk of the STFT-domain mix (~6 s): a chunk's spectra are 4 MB a channel


def pinned_coefficients(p: Placement, *, mono_compatible: bool = False) -> np.ndarray:
    """(a, b, c, d) for a fixed pan/width: ``L = a s + b d``, ``R = c s + d d`` [shape=(4,)]; outside the
    mono-compatible mode with the power real stereo of that place has (:func:`core.placement.downmix_gain`)."""
    iid, ic = np.array([pan_to_iid(p.pan)]), np.array([width_to_ic(p.width)])
    a, b, c, d = coefficients(iid, ic, mono_compatible=mono_compatible)
    g = np.float32(1.0) if mono_compatible else downmix_gain(iid, ic)[0]
    return np.array([a[0], b[0], c[0], d[0]], dtype=np.float32) * g


def active_gains(placements: list[Placement]) -> np.ndarray:
    """Linear gain per source after mute and solo [shape=(sources,)]."""
    solo = any(p.solo for p in placements)
    return np.array([0.0 if (p.mute or (solo and not p.solo)) else 10 ** (p.gain_db / 20) for p in placements],
                    dtype=np.float32)


def split(renders: list["SourceRender"], placements: list[Placement], mono_compatible: bool):
    """Per source: its constant coefficients times its gain (pinned, or without a rendition's
    parameters: played from ``s`` and ``d`` as they are) or None (auto: mixed band by band from
    its tile parameters); and the gains [shape=(sources,)]."""
    gains = active_gains(placements)
    consts = []
    for i, (r, p) in enumerate(zip(renders, placements)):
        if p.pinned or not r.has_auto:
            consts.append(pinned_coefficients(p, mono_compatible=mono_compatible) * gains[i])
        else:
            consts.append(None)
    return consts, gains


def add_pinned(out: np.ndarray, renders: list["SourceRender"], consts: list, lo: int, hi: int) -> None:
    """``out`` [shape=(hi-lo, 2)] += each constant-law source's ``a s + b d``, ``c s + d d``."""
    for i, c in enumerate(consts):
        if c is None or not c.any():
            continue
        ca, cb, cc, cd = c
        s_, d_ = renders[i].s[lo:hi], renders[i].d[lo:hi]
        out[:, 0] += ca * s_ + cb * d_
        out[:, 1] += cc * s_ + cd * d_
        release(renders[i].s, renders[i].d)        # a file-mapped signal keeps a chunk resident (core.spill)


def mix_stream(renders: list["SourceRender"], placements: list[Placement], *, start: int = 0,
               stop: Optional[int] = None, mono_compatible: bool = False, chunk: int = MIX_FRAMES,
               first_chunk: Optional[int] = None, cancel: Optional[threading.Event] = None
               ) -> Iterator[tuple[int, np.ndarray]]:
    """The stereo mix of samples ``start:stop`` as consecutive blocks ``(start, block)``
    [block shape=(m, 2), float32], the first one starting at ``start`` (any sample: the playhead).

    The auto sources are mixed in the STFT domain: per tile the mixing law of each source's tile
    parameters (:attr:`SourceRender.tiles`) times its gain is applied to the source's ``S`` and
    ``D`` and summed over the sources, then one inverse STFT per channel (one, the side, in
    mono-compatible mode); the pinned ones are added in the time domain (``a s + b d``). The
    result equals rendering every auto source on its own (:func:`core.renderer.render_auto`) and
    mixing the pairs (:func:`core.renderer.mix_chunks`) to float rounding; no pair is needed.
    Work runs ``chunk`` frames at a time (``first_chunk`` for the first: a smaller one is heard
    sooner); every sample comes out bit for bit the same whatever ``start`` and the chunks
    (:class:`core.stft.OverlapAddStream` sums the frames in one order): a mix started at the
    playhead is the export's. Memory: a few chunks of spectra."""
    for lo, blocks in mix_streams([renders], [placements], start=start, stop=stop, mono_compatible=mono_compatible,
                                  chunk=chunk, first_chunk=first_chunk, cancel=cancel):
        yield lo, blocks[0]


def mix_streams(sets: list[list["SourceRender"]], placements: list[list[Placement]], *, start: int = 0,
                stop: Optional[int] = None, mono_compatible: bool = False, chunk: int = MIX_FRAMES,
                first_chunk: Optional[int] = None, cancel: Optional[threading.Event] = None
                ) -> Iterator[tuple[int, list[np.ndarray]]]:
    """:func:`mix_stream` of several renditions of the same sources at once: ``sets[k]`` are
    rendition ``k``'s renders (one per source, sharing the sources' ``s`` and ``d`` arrays) and
    ``placements[k]`` its places. Yields ``(start, [block of rendition k])`` on one grid of
    blocks; each rendition's blocks are, bit for bit, those :func:`mix_stream` yields for it alone
    (same transforms, same sums in the same order), while each source is transformed once per
    chunk for all the renditions (one source's spectra in memory at a time, beside one chunk of
    each rendition's mix)."""
    n = len(sets[0][0].s) if sets and sets[0] else 0
    if any(len(rs) != len(sets[0]) or any(r.s is not r0.s or r.d is not r0.d for r, r0 in zip(rs, sets[0]))
           for rs in sets):
        raise ParameterError("renditions mixed together must share their sources' signals")
    stop = n if stop is None else min(int(stop), n)
    start = max(0, int(start))
    if start >= stop:
        return
    splits = [split(r, p, mono_compatible) for r, p in zip(sets, placements)]
    autos = [[i for i, c in enumerate(consts) if c is None and gains[i] != 0.0] for consts, gains in splits]
    if not any(autos):                      # nothing to transform: the time-domain law alone
        for a0 in range(start, stop, CHUNK):
            check_cancel(cancel)
            hi = min(stop, a0 + CHUNK)
            blocks = []
            for renders, (consts, _g) in zip(sets, splits):
                out = np.zeros((hi - a0, 2), np.float32)
                add_pinned(out, renders, consts, a0, hi)
                blocks.append(out)
            yield a0, blocks
        return
    t_total = n_frames(n)
    n_ch = 1 if mono_compatible else 2
    f = 0 if start == 0 else max(0, start // HOP - 1)    # first_sample(f) <= start
    olas = [OverlapAddStream(n, n_ch, first=f) if auto else None for auto in autos]
    # the channels' mixing laws shared between this thread and one worker (numpy works outside the GIL;
    # each channel's sums keep their order, so its bits are those of one thread)
    pool = ThreadPoolExecutor(LAW_WORKERS, thread_name_prefix="mix")
    try:
        yield from _mix_chunks(sets, splits, autos, olas, f, t_total, first_chunk or chunk, chunk, start, stop,
                               mono_compatible, n_ch, pool, cancel)
    finally:
        pool.shutdown(wait=True)


def _laws(r, f: int, f1: int, mono_compatible: bool) -> tuple:
    """Source ``r``'s mixing law over frames ``f:f1``: per output channel, the coefficients of its ``S`` and
    ``D`` per band [shape=(34, t)] (left and right; the side alone in mono-compatible mode)."""
    iid, ic = r.tiles[0][:, f:f1], r.tiles[1][:, f:f1]
    if mono_compatible:
        return (side_coefficients(iid, ic),)
    a, b, c, d = mixing_coefficients(iid, ic)
    dg = downmix_gain(iid, ic)
    return (a * dg, b * dg), (c * dg, d * dg)


def _apply_laws(jobs: list, pool: ThreadPoolExecutor) -> None:
    """The jobs (each a channel of its own, :func:`_add_laws`) shared between this thread and the
    pool's: every channel's sum keeps its order, source after source (the same bits as one thread).
    A pool that takes no more work (the interpreter is exiting under a daemon thread) leaves them all
    to this thread."""
    here, there = jobs[0::2], jobs[1::2]
    future = None
    if there:
        try:
            future = pool.submit(_add_laws, there)
        except RuntimeError:
            here = jobs
    _add_laws(here)
    if future is not None:
        future.result()


def _add_laws(jobs: list) -> None:
    """Each job's law added to its channel: ``acc += g (ca S + cb D)`` per band, ``_ROWS`` frames at a time
    for every job (a block of the source's ``S`` and ``D``, of each sum and of the per-bin coefficients stays
    in the core's cache: about twice as fast as whole chunks). Per element the same products and sums in
    the same order as whole rows: the same bits."""
    if not jobs:
        return
    S, D = jobs[0][0], jobs[0][1]
    t, n_bins = S.shape
    bob = band_of_bin()
    laws = [((ca * g).T, (cb * g).T, acc) for _S, _D, ca, cb, g, acc in jobs]
    part = np.empty((_ROWS, n_bins), np.complex64)
    coef = np.empty((_ROWS, n_bins), np.float32)
    for r0 in range(0, t, _ROWS):
        r1 = min(t, r0 + _ROWS)
        m = r1 - r0
        s_rows, d_rows = S[r0:r1], D[r0:r1]
        for a, b, acc in laws:
            rows = acc[r0:r1]
            np.take(a[r0:r1], bob, axis=1, out=coef[:m])
            np.multiply(coef[:m], s_rows, out=part[:m])
            rows += part[:m]
            np.take(b[r0:r1], bob, axis=1, out=coef[:m])
            np.multiply(coef[:m], d_rows, out=part[:m])
            rows += part[:m]


def _mix_chunks(sets, splits, autos, olas, f, t_total, step, chunk, start, stop, mono_compatible, n_ch, pool, cancel):
    n_bins = len(band_of_bin())
    while f < t_total:
        check_cancel(cancel)
        f1 = min(t_total, f + step)
        step = chunk
        t = f1 - f
        specs = [[np.zeros((t, n_bins), np.complex64) for _ in range(n_ch)] if auto else None for auto in autos]
        for i in sorted(set().union(*autos)):  # each source transformed once, frames-major [t, bins]
            S = D = None
            jobs = []
            for renders, (consts, gains), auto, acc_k in zip(sets, splits, autos, specs):
                if i not in auto:
                    continue
                r = renders[i]
                if S is None:
                    S = stft_frames(r.s, f, f1, frames_major=True)
                    D = stft_frames(r.d, f, f1, frames_major=True)
                    release(r.s, r.d)
                for (ca, cb), acc in zip(_laws(r, f, f1, mono_compatible), acc_k):
                    jobs.append((S, D, ca, cb, gains[i], acc))
            _apply_laws(jobs, pool)
        emitted = [None if ola is None else ola.add(acc_k, f, frames_major=True) for ola, acc_k in zip(olas, specs)]
        del specs
        f = f1
        a0, first = next(e for e in emitted if e is not None)
        lo, hi = max(a0, start), min(a0 + len(first), stop)
        if hi <= lo:
            if a0 >= stop:
                break
            continue
        blocks = []
        for renders, (consts, gains), auto, e in zip(sets, splits, autos, emitted):
            out = np.empty((hi - lo, 2), np.float32)
            if e is None:                   # this rendition has no auto source: its time-domain law
                out[:] = 0.0
            else:
                side = e[1][lo - a0: hi - a0]
                if mono_compatible:
                    mid = np.zeros(hi - lo, np.float32)
                    for i in auto:
                        mid += gains[i] * renders[i].s[lo:hi]
                        release(renders[i].s)
                    out[:, 0] = mid + side[:, 0]
                    out[:, 1] = mid - side[:, 0]
                else:
                    out[:] = side
            add_pinned(out, renders, consts, lo, hi)
            blocks.append(out)
        yield lo, blocks
        if hi >= stop:
            break
