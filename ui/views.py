"""What the views draw (dominant source per tile, levels, trajectories, loudness), computed in a
worker with the session it describes, so that the UI thread only swaps it in."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from app.display import dominance
from app.session import Session
from core.placement import ic_to_width, iid_to_pan

__all__ = ["Views", "compute_views", "session_views"]


@dataclass
class Views:
    """What the views draw, computed in the worker with the session it describes."""
    dominant: Optional[np.ndarray] = None      # [bands, frames] source index
    level: Optional[np.ndarray] = None         # [bands, frames] 0..1
    traj_pan: Optional[np.ndarray] = None      # [sources, frames] (NaN: silent)
    traj_width: Optional[np.ndarray] = None
    loudness_db: list = field(default_factory=list)   # per source, dB re the loudest


_SOURCES_VIEW: Optional[tuple] = None     # (the band energies, dominant, level, loudness) drawn last


def compute_views(renders, *, placed: bool) -> Views:
    """The views of sources with precomputed ``renders``; ``placed``: a rendition is current, so
    the "auto" trajectories of the renders are drawn too. What depends on the sources alone (the
    dominant source per tile, levels, loudness) is computed once for the same sources: another
    rendition or an undo step only draws its trajectories again (the arrays are shared: read only)."""
    global _SOURCES_VIEW
    if not renders:
        return Views()
    key = [r.energy for r in renders]
    last = _SOURCES_VIEW
    if last is not None and len(last[0]) == len(key) and all(a is b for a, b in zip(last[0], key)):
        dom, level, loud = last[1:]
    else:
        energies = np.stack(key)
        dom, level = dominance(energies)
        mean = energies.mean(axis=(1, 2))
        loud = [float(x) for x in 10 * np.log10(np.maximum(mean / max(float(mean.max()), 1e-20), 1e-6))]
        _SOURCES_VIEW = (key, dom, level, loud)
    v = Views(dom, level, loudness_db=list(loud))
    if placed and all(r.iid_t is not None for r in renders):   # what "auto" sources play
        frames = min(len(r.iid_t) for r in renders)
        v.traj_pan = np.stack([iid_to_pan(r.iid_t[:frames]) for r in renders]).astype(np.float32)
        v.traj_width = np.stack([ic_to_width(r.ic_t[:frames]) for r in renders]).astype(np.float32)
    return v


def session_views(session: Session) -> Views:
    return compute_views(session.renders, placed=0 <= session.current < len(session.renditions))
