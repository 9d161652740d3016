"""Rendering sources to stereo through the PS decoder, built for live mixing.

Per source, :func:`prepare_source` computes once (heavy, in a worker): its mono stem ``s`` and
the decorrelated copy ``d`` in the time domain (all-pass cascade, made orthogonal to ``s`` and of
equal power per band and frame, ducked at transients so attacks stay sharp). A pinned source is
then ``L = a s + b d``, ``R = c s + d d`` with four constant coefficients from its pan and width
(:func:`pinned_coefficients`); that is all the audio callback does. A source in "auto" mode follows
the model's parameters per band and frame: its stereo render is made by the PS decoder
(:func:`render_auto`) and mixed with a gain.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .bands import band_of_bin, band_sum
from .decoder import Decorrelated, decode, mixing_coefficients
from .placement import Placement, pan_to_iid, width_to_ic
from .progress import ProgressFn, check_cancel, report
from .ps import PSParams, band_energy
from .stft import OverlapAdd

__all__ = ["SourceRender", "prepare_source", "render_auto", "pinned_coefficients", "source_gain",
           "mix", "active_gains"]


@dataclass
class SourceRender:
    """Precomputed signals of one source: ``s``, ``d`` [shape=(n,)], band energies [34, frames]
    and, when rendered, ``auto`` [shape=(n, 2)] for the current model parameters."""
    s: np.ndarray
    d: np.ndarray
    energy: np.ndarray
    auto: Optional[np.ndarray] = None


def prepare_source(s: np.ndarray, *, cancel: Optional[threading.Event] = None) -> SourceRender:
    dec = Decorrelated(s)
    ola = OverlapAdd(len(dec.x))
    energies = []
    bob = band_of_bin()
    for f0, S, D, tr in dec.chunks():
        check_cancel(cancel)
        ola.add(D * np.sqrt(1.0 - tr)[bob], f0)
        energies.append(band_energy(S))
    return SourceRender(dec.x, ola.result().astype(np.float32), np.concatenate(energies, axis=1))


def render_auto(sr: SourceRender, params: PSParams, *, cancel: Optional[threading.Event] = None) -> np.ndarray:
    """The source decoded with the model's time-varying parameters -> [shape=(n, 2)]."""
    return decode(sr.s, params, cancel=cancel)


def pinned_coefficients(p: Placement) -> np.ndarray:
    """(a, b, c, d) for a fixed pan/width: ``L = a s + b d``, ``R = c s + d d`` [shape=(4,)]."""
    a, b, c, d = mixing_coefficients(np.array([pan_to_iid(p.pan)]), np.array([width_to_ic(p.width)]))
    return np.array([a[0], b[0], c[0], d[0]], dtype=np.float32)


def active_gains(placements: list[Placement]) -> np.ndarray:
    """Linear gain per source after mute and solo [shape=(sources,)]."""
    solo = any(p.solo for p in placements)
    return np.array([0.0 if (p.mute or (solo and not p.solo)) else 10 ** (p.gain_db / 20) for p in placements],
                    dtype=np.float32)


def source_gain(p: Placement) -> float:
    return 0.0 if p.mute else float(10 ** (p.gain_db / 20))


def mix(renders: list[SourceRender], placements: list[Placement], *, start: int = 0, stop: Optional[int] = None,
        stems: bool = False, progress: Optional[ProgressFn] = None):
    """Stereo mix [shape=(stop-start, 2)] of all sources with their placements; with ``stems``
    also each source's stereo stem (list of [shape=(n, 2)], gains applied)."""
    n = len(renders[0].s) if renders else 0
    stop = n if stop is None else stop
    out = np.zeros((stop - start, 2), np.float32)
    gains = active_gains(placements)
    parts = []
    for i, (r, p) in enumerate(zip(renders, placements)):
        g = gains[i]
        if p.pinned or r.auto is None:
            a, b, c, d = pinned_coefficients(p) * g
            s, dd = r.s[start:stop], r.d[start:stop]
            stem = np.stack([a * s + b * dd, c * s + d * dd], axis=1)
        else:
            stem = r.auto[start:stop] * g
        out += stem
        if stems:
            parts.append(stem.astype(np.float32))
        report(progress, "mix", i + 1, len(renders))
    return (out, parts) if stems else out
