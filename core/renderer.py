"""Rendering sources to stereo through the PS decoder, built for live mixing.

Per source, :func:`prepare_source` computes once (heavy, in a worker) the decorrelated copy ``d``
of its mono stem ``s`` in the time domain: the all-pass cascade, made orthogonal to ``s`` and of
equal power in every band and frame, ducked at transients so attacks stay sharp. A source is then
rendered with the PS decoder's mixing law ``L = a s + b d``, ``R = c s + d d``:

- pinned: four constant coefficients from its pan and width (:func:`pinned_coefficients`), applied
  to ``s`` and ``d`` as they are (a drag is heard at once);
- auto: band by band (:func:`render_auto`): per tile (34 bands x STFT frames) the coefficients of
  the model's parameters around the source's place (:func:`core.placement.tile_parameters`) mix
  the STFTs of ``s`` and ``d``; the result is transformed back once, when a rendition is planned
  (:func:`auto_renders`), and kept as the source's stereo pair ``auto`` [shape=(n, 2)]. Real
  stereo width is mostly per-band detail inside a source, which one broadband pair of
  coefficients per frame cannot carry.

So playback and export only scale and add precomputed signals: a pinned source's ``s`` and ``d``
times its four coefficients, an auto source's pair times its gain (:func:`mix_chunks`, and the
same sums in :class:`app.playback.MixEngine`).

Mono-compatible mode (``mono_compatible=True``): the coefficients come from
:func:`core.decoder.monocompat_coefficients` (a + c = 2 and b + d = 0); a pinned source is
``L = s + side``, ``R = s - side`` with ``side = a s + b d``, and an auto source's pair is built the
same way from its side transformed back (``L = s + side``, ``R = s - side``), so each source folds
down to its stem times its gain, and the mix of all sources at 0 dB folds down to the recording.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from .bands import N_BANDS, band_edges, band_of_bin
from .decoder import CHUNK_FRAMES, mixing_coefficients, side_coefficients
from .decorrelator import transient_strength
from .detail import lean_tiles
from . import HOP
from .errors import ParameterError
from .listening import FillOrder
from .mixdown import CHUNK, MIX_FRAMES, active_gains, mix_stream, mix_streams, pinned_coefficients
from .placement import Placement, downmix_gain, tile_parameters, trajectories
from .progress import ProgressFn, check_cancel, report
from .ps import PSParams
from .stft import OverlapAdd, n_frames, stft_frames
from .spill import mapped_buffer, mapped_on_file, release, signal_buffer
from . import reference
from . import streaming

__all__ = ["SourceRender", "prepare_source", "pinned_coefficients", "auto_renders", "render_auto", "render_missing",
           "missing", "pair_buffer", "mapped_on_file", "active_gains", "mix", "mix_chunks", "mix_stream", "mix_streams",
           "PairFiller", "CHUNK"]

@dataclass(eq=False)
class SourceRender:
    """Precomputed signals of one source: ``s``, ``d`` [shape=(n,)], band energies [34, frames];
    for "auto" mode, of the current rendition: the tile parameters ``tiles`` (IID dB, IC), each
    [shape=(34, frames)], the source rendered band by band with them, ``auto`` [shape=(n, 2)] (None
    before any rendition, or released to save memory: :func:`render_missing` makes it again from
    ``tiles``), and the broadband per-frame trajectory ``iid_t``, ``ic_t`` [shape=(frames,)] for
    display."""
    s: np.ndarray
    d: np.ndarray
    energy: np.ndarray
    auto: Optional[np.ndarray] = None
    tiles: Optional[tuple] = None
    iid_t: Optional[np.ndarray] = None  # per-frame IID (dB) of the current rendition [frames]
    ic_t: Optional[np.ndarray] = None
    mono_compatible: bool = False       # the mode ``auto`` was made for
    pending: bool = False               # ``auto`` is still being filled (:class:`PairFiller`)

    @property
    def has_auto(self) -> bool:
        """Whether the source has a rendition's "auto" parameters (its pair may be released)."""
        return self.tiles is not None

    @property
    def auto_bytes(self) -> int:
        return 0 if self.auto is None else int(self.auto.nbytes)


def prepare_source(s: np.ndarray, *, out: Optional[np.ndarray] = None,
                   cancel: Optional[threading.Event] = None) -> SourceRender:
    """Decorrelate stem ``s`` [shape=(n,)]; ``out`` [shape=(n,)] receives ``d`` when given (no extra copy;
    else a :func:`core.spill.signal_buffer`: on disk inside :func:`core.spill.spilling`).

    As :class:`core.decoder.Decorrelated` with the decoder's transient ducking: the all-pass
    cascade's spectrum made orthogonal to ``S`` and of its power per band and frame, ducked at
    onsets, transformed back. Spectra stay frames-major [frames, bins] throughout (no transposed
    copies), and each chunk's band powers are summed once for the energies and the projection.
    Chunk by chunk from end to end: the cascade (:class:`core.streaming.AllpassWindow`) and the
    inverse transform (:class:`core.streaming.OverlapAddRolling`) keep a chunk each, and ``d`` is
    written as it is made (the same bits as the whole signal at once); a file-mapped ``s`` or
    ``d`` (:mod:`core.spill`) holds a chunk of resident memory."""
    x = np.asarray(s, dtype=np.float32)
    if x.ndim != 1:
        raise ParameterError(f"a source's stem must be mono, shape (n,), got {x.shape}")
    n = len(x)
    t = n_frames(n)
    d = signal_buffer(n) if out is None else out
    xd = streaming.AllpassWindow(x)
    ola = streaming.OverlapAddRolling(n)
    bob = band_of_bin()
    edges = band_edges()[:-1]
    energies, state = [], None
    for f0 in range(0, t, MIX_FRAMES):
        check_cancel(cancel)
        f1 = min(f0 + MIX_FRAMES, t)
        S = stft_frames(x, f0, f1, frames_major=True)                 # [frames, bins]
        ps = np.add.reduceat(S.real ** 2 + S.imag ** 2, edges, axis=1)  # band powers [frames, 34]
        D = xd.frames(f0, f1)
        proj = np.add.reduceat(D * S.conj(), edges, axis=1) / np.maximum(ps, 1e-20)
        D -= proj[:, bob] * S                                           # orthogonal to S ...
        pd = np.add.reduceat(D.real ** 2 + D.imag ** 2, edges, axis=1)
        g = np.sqrt(ps / np.maximum(pd, 1e-20))
        g = np.where(ps > 1e-20, np.minimum(g, 8.0), 0.0).astype(np.float32)   # ... and of its power
        energy = np.ascontiguousarray(ps.T, dtype=np.float32)
        tr, state = transient_strength(energy, state=state)
        g *= np.sqrt(1.0 - tr).T                                         # ducked at onsets
        D *= g[:, bob]
        a, block = ola.add(D, f0, frames_major=True)
        d[a:a + len(block)] = block
        release(x, d)
        energies.append(energy)
    return SourceRender(x, d, np.concatenate(energies, axis=1))


def auto_renders(renders: list[SourceRender], params: PSParams, centres=None, *, mono_compatible: bool = False,
                 only=None, spill: Optional[Path] = None, pairs: bool = True, detail=None, band_image=None,
                 progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None) -> None:
    """Set each render's tile parameters, display trajectory and band-by-band stereo pair for model
    parameters ``params``, around each source's proposed (pan, width) ``centres``
    [shape=(sources, 2)] when given (:func:`core.placement.tile_parameters`; without, the "mean"
    baseline's broadband projection). ``only``: the indices of the renders to set (the others are
    left as they are; every source's energy still weighs in). Heavy (two STFTs and an inverse per
    source): run it in a worker, on copies of the session's renders. ``pairs=False``: the tile
    parameters only (cheap): :func:`mix_stream` mixes from them, no pair is needed to export. ``detail``: the
    PS model's :class:`core.detail.DetailCalibration` (:func:`core.detail.load_detail`), applied to ``params``
    first when given (with the width gain it gives). ``band_image``: (per-band pan offsets [shape=(sources, 34)],
    confidence [shape=(sources,)]) of a stereo reference the per-band detail follows around the places
    (:func:`core.reference.follow_band_image`)."""
    if not renders:
        return
    if detail is not None:
        params = detail.apply(params)
    energies = np.stack([r.energy for r in renders])
    iid, ic = tile_parameters(params, energies, centres=centres, width_gain=None if detail is None else detail.width_gain)
    if detail is not None and detail.lean_offsets is not None and centres is not None:
        iid = lean_tiles(iid, energies, detail.lean_offsets)        # the rendition's band leans
    if band_image is not None and centres is not None:
        iid = reference.follow_band_image(iid, energies, *band_image)
    iid_t, ic_t = trajectories(params, energies, centres=centres)
    idx = sorted(set(range(len(renders)) if only is None else only))
    whole = len(idx) == len(renders)        # every source's rows taken: views, no second copy (an hour's
    for i in idx:                           # tile parameters are 40 MB a source)
        r = renders[i]
        r.tiles = (iid[i], ic[i]) if whole else (iid[i].copy(), ic[i].copy())
        r.iid_t, r.ic_t = iid_t[i].copy(), ic_t[i].copy()
        r.auto = None
    if not pairs:
        return
    render_missing([renders[i] for i in idx], mono_compatible=mono_compatible, spill=spill, progress=progress,
                   cancel=cancel)


def render_missing(renders: list[SourceRender], *, mono_compatible: bool, spill: Optional[Path] = None,
                   progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None) -> None:
    """Render (band by band) the pair of every render with tile parameters whose pair is missing or
    was made for the other mode (``mono_compatible``)."""
    todo = [r for r in renders if _needs_pair(r, mono_compatible)]
    for i, r in enumerate(todo):
        check_cancel(cancel)
        pair = render_auto(r, *r.tiles, mono_compatible=mono_compatible, spill=spill, cancel=cancel)
        r.auto, r.mono_compatible, r.pending = pair, bool(mono_compatible), False
        report(progress, "render", i + 1, len(todo))


def _needs_pair(r: SourceRender, mono_compatible: bool) -> bool:
    return r.has_auto and (r.auto is None or r.mono_compatible != bool(mono_compatible))


def missing(renders: list[SourceRender], *, mono_compatible: bool) -> bool:
    """Whether :func:`render_missing` has work to do on ``renders`` (a pair a live
    :class:`PairFiller` is filling is not missing: it plays)."""
    return any(_needs_pair(r, mono_compatible) for r in renders)


class PairFiller:
    """The auto pairs of ``renders`` made from the playhead: :meth:`start` renders, for every
    source that needs one, a new pair's first ``first_frames`` frames from sample ``start`` on (in
    a few tens of milliseconds: the rendition is heard at once), :meth:`run` (in a background
    thread) the rest, ``chunk`` frames at a time for every source together, from the playhead to the
    end, then from the beginning (far faster than it plays); where the person seeks to a part not
    made yet, it goes on from there (:class:`core.listening.FillOrder`). A pair is
    :attr:`SourceRender.pending` until it is whole; a filler that stops before (cancelled, or its
    pair released) leaves it missing (``auto`` None), so it is made again when needed. Each pair
    equals :func:`render_auto`'s to float rounding (the chunks differ), and whatever the order its
    parts were made in, the same bits (:func:`mix_stream` from any sample)."""

    def __init__(self, renders: list[SourceRender], *, start: int = 0, mono_compatible: bool = False,
                 spill: Optional[Path] = None, first_frames: int = 24, chunk: int = 256):
        self.todo = [r for r in renders if _needs_pair(r, mono_compatible)]
        self.n = len(renders[0].s) if renders else 0
        self.start = int(min(max(start, 0), max(self.n - 1, 0)))
        self.mono_compatible = bool(mono_compatible)
        self.spill, self.first_frames, self.chunk = spill, int(first_frames), int(chunk)
        self._streams = []
        self._first = 0                     # samples of the first block (every pair's the same)
        self.cancelled = threading.Event()

    @property
    def done(self) -> bool:
        return not any(r.pending for r in self.todo)

    def start_pairs(self, cancel: Optional[threading.Event] = None, *, install: bool = True) -> "PairFiller":
        """New pairs for every source that needs one, their first block rendered (worker side);
        with ``install`` set on the renders at once (else by :meth:`install`)."""
        one = [Placement()]
        for r in self.todo:
            check_cancel(cancel)
            pair = pair_buffer(self.n, self.spill, zeros=True)
            stream = mix_stream([r], one, start=self.start, mono_compatible=self.mono_compatible,
                                chunk=self.chunk, first_chunk=self.first_frames)
            a, block = next(stream)
            stream.close()                  # the rest: :meth:`run`, every pair a part at a time
            pair[a:a + len(block)] = block
            self._first = len(block)
            self._streams.append((r, pair, None))
        if install:
            self.install()
        return self

    def install(self) -> None:
        """The new pairs set on their renders (pending until :meth:`run` ends), all together."""
        for r, pair, _ in self._streams:
            r.auto, r.mono_compatible, r.pending = pair, self.mono_compatible, True

    def run(self) -> None:
        """The rest of every pair (a background thread; :meth:`cancel` stops it between chunks,
        leaving the pairs pending)."""
        one = [Placement()]
        order = FillOrder(self.n)
        pos = self.start
        if self._streams:
            order.mark(self.start, self.start + self._first)
            pos = self.start + self._first
        span = self.chunk * HOP
        try:
            while self._streams:
                gap = order.gap_from(pos)
                if gap is None:
                    break
                a, b = gap[0], min(gap[1], gap[0] + span)
                for r, pair, _ in self._streams:           # this part of every pair
                    for lo, block in mix_stream([r], one, start=a, stop=b, mono_compatible=self.mono_compatible,
                                                chunk=self.chunk):
                        if self.cancelled.is_set() or r.auto is not pair:
                            raise _Stop
                        pair[lo:lo + len(block)] = block
                order.mark(a, b)
                wanted = order.wanted(b)
                pos = b if wanted is None else wanted
            for r, pair, _ in self._streams:
                if r.auto is pair:
                    r.pending = False
        except _Stop:
            for r, pair, _ in self._streams:
                if r.auto is pair and r.pending:
                    r.auto, r.pending = None, False
        self._streams = []

    def cancel(self) -> None:
        self.cancelled.set()


class _Stop(Exception):
    pass


def pair_buffer(n: int, spill: Optional[Path] = None, *, zeros: bool = False) -> np.ndarray:
    """A float32 buffer [shape=(n, 2)] for a source's auto pair: in RAM, or with ``spill`` (a
    folder) mapped on a file there (:func:`core.spill.mapped_buffer`), so that the pairs of a long
    recording do not have to fit in RAM beside its stems: the OS keeps the pages it has room for
    and writes the others out, as a DAW streams from disk. ``zeros``: every sample 0, at no cost
    up front."""
    return mapped_buffer((max(n, 0), 2), spill if n > 0 else None, zeros=zeros)


def render_auto(r: SourceRender, iid: np.ndarray, ic: np.ndarray, *, mono_compatible: bool = False,
                chunk: int = CHUNK_FRAMES, spill: Optional[Path] = None,
                cancel: Optional[threading.Event] = None) -> np.ndarray:
    """Source ``r`` rendered band by band [shape=(n, 2)], float32: per tile, the PS decoder's mixing
    law with the tile's IID (dB) and IC [shape=(34, frames)] applied to the STFTs of ``s`` and
    ``d``, at the power real stereo of those parameters has (:func:`core.placement.downmix_gain`,
    as :func:`pinned_coefficients`), then overlap-added (the STFT reconstructs perfectly, so parameters equal in every tile
    give exactly ``a s + b d``, ``c s + d d``). Mono-compatible: only the side ``a S + b D``
    (:func:`core.decoder.side_coefficients`) is transformed back and ``L = s + side``,
    ``R = s - side``, so (L + R) / 2 is the stem to float rounding. The output is a
    :func:`pair_buffer` (``spill``: a folder to map it in). Memory: the output, one more [n, 2]
    (the overlap-add) while transforming back, and one chunk of spectra."""
    n = len(r.s)
    t = n_frames(n)
    if iid.shape != (N_BANDS, t) or ic.shape != iid.shape:
        raise ParameterError(f"tile parameters must be ({N_BANDS}, {t}), got {iid.shape} and {ic.shape}")
    bob = band_of_bin()
    ola = OverlapAdd(n, channels=1 if mono_compatible else 2)
    for f0 in range(0, t, chunk):
        check_cancel(cancel)
        f1 = min(t, f0 + chunk)
        S, D = stft_frames(r.s, f0, f1), stft_frames(r.d, f0, f1)
        release(r.s, r.d)
        if mono_compatible:
            a, b = side_coefficients(iid[:, f0:f1], ic[:, f0:f1])
            ola.add(a[bob] * S + b[bob] * D, f0)
        else:
            a, b, c, d = mixing_coefficients(iid[:, f0:f1], ic[:, f0:f1])
            g = downmix_gain(iid[:, f0:f1], ic[:, f0:f1])
            a, b, c, d = a * g, b * g, c * g, d * g
            ola.add(a[bob] * S + b[bob] * D, f0, channel=0)
            ola.add(c[bob] * S + d[bob] * D, f0, channel=1)
    out = pair_buffer(n, spill)
    if mono_compatible:
        ola.result_into(out[:, 1:])                    # the side, then L = s + side, R = s - side
        np.add(r.s, out[:, 1], out=out[:, 0])
        np.subtract(r.s, out[:, 1], out=out[:, 1])
    else:
        ola.result_into(out)
    return out


def mix_chunks(renders: list[SourceRender], placements: list[Placement], *, start: int = 0,
               stop: Optional[int] = None, chunk: int = CHUNK, stems: bool = False,
               mono_compatible: bool = False) -> Iterator[tuple[int, np.ndarray, list]]:
    """Yield ``(start, stereo [shape=(m, 2)], stems)`` for consecutive chunks of the mix of
    samples ``start:stop``; ``stems`` lists each source's stereo part when asked for.
    ``mono_compatible`` must match the mode the auto pairs were made for (:func:`render_missing`)."""
    n = len(renders[0].s) if renders else 0
    stop = n if stop is None else min(stop, n)
    gains = active_gains(placements)
    consts, pairs = [], []          # the pairs are taken once: a session releasing them meanwhile is harmless
    for r, p in zip(renders, placements):
        pair = r.auto
        pairs.append(pair)
        if p.pinned or not r.has_auto:
            consts.append(pinned_coefficients(p, mono_compatible=mono_compatible) * gains[len(consts)])
            continue
        if pair is None or r.mono_compatible != bool(mono_compatible):
            raise ParameterError("a source's auto render is missing or in the other mode: render_missing() first")
        consts.append(None)
    for a in range(start, stop, chunk):
        b = min(stop, a + chunk)
        out = np.zeros((b - a, 2), np.float32)
        parts = []
        for i, r in enumerate(renders):
            if consts[i] is not None:
                ca, cb, cc, cd = consts[i]
                s, dd = r.s[a:b], r.d[a:b]
                part = np.stack([ca * s + cb * dd, cc * s + cd * dd], axis=1)
            else:
                part = pairs[i][a:b] * gains[i]
            out += part
            if stems:
                parts.append(part)
        yield a, out, parts


def mix(renders: list[SourceRender], placements: list[Placement], *, start: int = 0, stop: Optional[int] = None,
        stems: bool = False, mono_compatible: bool = False, progress: Optional[ProgressFn] = None,
        cancel: Optional[threading.Event] = None):
    """Stereo mix [shape=(stop-start, 2)] of all sources (:func:`mix_stream`: no auto pair is
    needed); with ``stems`` also each source's stereo stem (list of [shape=(n, 2)], gains
    applied; from the pairs, :func:`mix_chunks`)."""
    n = len(renders[0].s) if renders else 0
    stop = n if stop is None else min(stop, n)
    out = np.zeros((max(stop - start, 0), 2), np.float32)
    for a, block in mix_stream(renders, placements, start=start, stop=stop, mono_compatible=mono_compatible,
                               cancel=cancel):
        out[a - start: a - start + len(block)] = block
        report(progress, "mix", a - start + len(block), stop - start)
    if not stems:
        return out
    parts = [np.zeros((stop - start, 2), np.float32) for _ in renders]
    for a, chunk, cparts in mix_chunks(renders, placements, start=start, stop=stop, stems=True,
                                       mono_compatible=mono_compatible):
        for p, c in zip(parts, cparts):
            p[a - start: a - start + len(chunk)] = c
    return out, parts
