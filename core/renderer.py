"""Rendering sources to stereo through the PS decoder, built for live mixing.

Per source, :func:`prepare_source` computes once (heavy, in a worker) the decorrelated copy ``d``
of its mono stem ``s`` in the time domain: the all-pass cascade, made orthogonal to ``s`` and of
equal power in every band and frame, ducked at transients so attacks stay sharp. A source is then
rendered as ``L = a s + b d``, ``R = c s + d d`` (the PS decoder's mixing law, broadband):

- pinned: four constant coefficients from its pan and width (:func:`pinned_coefficients`);
- auto: coefficients per STFT frame from the model's parameters projected on the source
  (:func:`core.placement.trajectories`), interpolated linearly between frame centres.

So playback and export only scale and add precomputed signals, and switching renditions only
recomputes small per-frame tables.

Mono-compatible mode (``mono_compatible=True``): the coefficients come from
:func:`core.decoder.monocompat_coefficients`, ``L = s + side``, ``R = s - side`` with
``side = a s + b d``: every coefficient table has a + c = 2 and b + d = 0, so however the tables
are interpolated (per frame here, per block in the playback engine) each source folds down to
its stem times its gain, and the mix of all sources at 0 dB folds down to the recording.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np

from .bands import band_of_bin
from .decoder import Decorrelated, coefficients
from .placement import Placement, pan_to_iid, trajectories, width_to_ic
from .progress import ProgressFn, check_cancel, report
from .ps import PSParams, band_energy
from .stft import HOP, OverlapAdd

__all__ = ["SourceRender", "prepare_source", "pinned_coefficients", "auto_coefficients", "set_mode", "active_gains",
           "mix", "mix_chunks", "CHUNK"]

CHUNK = 1 << 18  # samples per chunk when mixing long recordings (~6 s)


@dataclass
class SourceRender:
    """Precomputed signals of one source: ``s``, ``d`` [shape=(n,)], band energies [34, frames],
    and for "auto" mode the per-frame mixing coefficients ``auto`` [shape=(frames, 4)] of the
    current rendition (None before any)."""
    s: np.ndarray
    d: np.ndarray
    energy: np.ndarray
    auto: Optional[np.ndarray] = None
    iid_t: Optional[np.ndarray] = None  # per-frame IID (dB) of the current rendition [frames]
    ic_t: Optional[np.ndarray] = None
    mono_compatible: bool = False       # the mode ``auto`` was made for (:func:`set_mode`)


def prepare_source(s: np.ndarray, *, out: Optional[np.ndarray] = None,
                   cancel: Optional[threading.Event] = None) -> SourceRender:
    """Decorrelate stem ``s``; ``out`` [shape=(n,)] receives ``d`` when given (no extra copy)."""
    dec = Decorrelated(s)
    ola = OverlapAdd(len(dec.x))
    energies = []
    bob = band_of_bin()
    for f0, S, D, tr in dec.chunks():
        check_cancel(cancel)
        ola.add(D * np.sqrt(1.0 - tr)[bob], f0)
        energies.append(band_energy(S))
    d = ola.result()
    if out is not None:
        out[:] = d
        d = out
    return SourceRender(dec.x, d.astype(np.float32, copy=False), np.concatenate(energies, axis=1))


def pinned_coefficients(p: Placement, *, mono_compatible: bool = False) -> np.ndarray:
    """(a, b, c, d) for a fixed pan/width: ``L = a s + b d``, ``R = c s + d d`` [shape=(4,)]."""
    a, b, c, d = coefficients(np.array([pan_to_iid(p.pan)]), np.array([width_to_ic(p.width)]),
                              mono_compatible=mono_compatible)
    return np.array([a[0], b[0], c[0], d[0]], dtype=np.float32)


def auto_coefficients(renders: list[SourceRender], params: PSParams, centres=None, *,
                      mono_compatible: bool = False) -> None:
    """Set each render's per-frame trajectory and coefficients for model parameters ``params``
    (re-centred on each source's proposed (pan, width) ``centres`` [shape=(sources, 2)] when given,
    see :func:`core.placement.trajectories`)."""
    if not renders:
        return
    iid, ic = trajectories(params, np.stack([r.energy for r in renders]), centres=centres)
    for r, i_t, c_t in zip(renders, iid, ic):
        r.iid_t, r.ic_t = i_t, c_t
    set_mode(renders, mono_compatible=mono_compatible)


def set_mode(renders: list[SourceRender], *, mono_compatible: bool) -> None:
    """Recompute each render's per-frame coefficients from its trajectory for the given mode."""
    for r in renders:
        if r.iid_t is not None:
            r.auto = np.stack(coefficients(r.iid_t, r.ic_t, mono_compatible=mono_compatible),
                              axis=1).astype(np.float32)
        r.mono_compatible = bool(mono_compatible)


def active_gains(placements: list[Placement]) -> np.ndarray:
    """Linear gain per source after mute and solo [shape=(sources,)]."""
    solo = any(p.solo for p in placements)
    return np.array([0.0 if (p.mute or (solo and not p.solo)) else 10 ** (p.gain_db / 20) for p in placements],
                    dtype=np.float32)


_HOP_RAMP = (np.arange(HOP, dtype=np.float32) / HOP)


def _coef_curve(table: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Per-sample coefficients [shape=(4, stop-start)] from a per-frame table [frames, 4]
    (linear between frame centres; frame t is centred on sample t * HOP)."""
    f0 = start // HOP
    f1 = -(-stop // HOP)
    last = len(table) - 1
    idx = np.minimum(np.arange(f0, f1 + 1), last)
    c = table[idx].T                                   # [4, frames+1]
    seg = c[:, :-1, None] + (c[:, 1:] - c[:, :-1])[:, :, None] * _HOP_RAMP  # [4, frames, HOP]
    seg = seg.reshape(4, -1)
    return seg[:, start - f0 * HOP: stop - f0 * HOP]


def mix_chunks(renders: list[SourceRender], placements: list[Placement], *, start: int = 0,
               stop: Optional[int] = None, chunk: int = CHUNK, stems: bool = False,
               mono_compatible: bool = False) -> Iterator[tuple[int, np.ndarray, list]]:
    """Yield ``(start, stereo [shape=(m, 2)], stems)`` for consecutive chunks of the mix of
    samples ``start:stop``; ``stems`` lists each source's stereo part when asked for.
    ``mono_compatible`` must match the mode the auto tables were made for (:func:`set_mode`)."""
    n = len(renders[0].s) if renders else 0
    stop = n if stop is None else min(stop, n)
    gains = active_gains(placements)
    consts = [None if (not p.pinned and r.auto is not None) else pinned_coefficients(p, mono_compatible=mono_compatible)
              for r, p in zip(renders, placements)]
    for a in range(start, stop, chunk):
        b = min(stop, a + chunk)
        out = np.zeros((b - a, 2), np.float32)
        parts = []
        for i, r in enumerate(renders):
            s, dd = r.s[a:b], r.d[a:b]
            if consts[i] is not None:
                ca, cb, cc, cd = consts[i] * gains[i]
            else:
                ca, cb, cc, cd = _coef_curve(r.auto, a, b) * gains[i]
            left, right = ca * s + cb * dd, cc * s + cd * dd
            out[:, 0] += left
            out[:, 1] += right
            if stems:
                parts.append(np.stack([left, right], axis=1))
        yield a, out, parts


def mix(renders: list[SourceRender], placements: list[Placement], *, start: int = 0, stop: Optional[int] = None,
        stems: bool = False, mono_compatible: bool = False, progress: Optional[ProgressFn] = None):
    """Stereo mix [shape=(stop-start, 2)] of all sources; with ``stems`` also each source's stereo
    stem (list of [shape=(n, 2)], gains applied)."""
    n = len(renders[0].s) if renders else 0
    stop = n if stop is None else min(stop, n)
    out = np.zeros((stop - start, 2), np.float32)
    parts = [np.zeros((stop - start, 2), np.float32) for _ in renders] if stems else []
    for a, chunk, cparts in mix_chunks(renders, placements, start=start, stop=stop, stems=stems,
                                         mono_compatible=mono_compatible):
        out[a - start: a - start + len(chunk)] = chunk
        for p, c in zip(parts, cparts):
            p[a - start: a - start + len(chunk)] = c
        report(progress, "mix", a - start + len(chunk), stop - start)
    return (out, parts) if stems else out
