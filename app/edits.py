"""Edits a person makes to the separated sources: merge, split, move a time-frequency region.

An edit list sits on top of the separation (which stays as the backend made it): each edit is a
frozen value, applied in order to the sources it finds, deterministically, so a project that
records the list re-makes the same sources bit for bit. Every edit keeps the sources summing to
the recording: a merge adds stems; a split at a frequency uses complementary STFT masks, a split
into N parts re-runs source formation on the source alone, and moving a region takes the region's
STFT share from one source and gives it to another; in each case the last part is the source minus
the others (in float64), so nothing is lost or made up but float32 rounding.

Indices count from 0 here and in project files; the command line counts from 1, as the app shows.

    sources, origin, changed = apply_edit(sources, Merge((1, 2)))
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from core import SAMPLE_RATE
from core.errors import ParameterError
from core.progress import ProgressFn
from core.stft import HOP, N_FFT, istft, n_frames, stft
from separation.base import PALETTE, Source
import separation
from core import lazy
bands = lazy.module("core.bands")

__all__ = ["band_to_hz", "suggested_merges", "Merge", "Split", "MoveRegion", "Edit", "EditError", "apply_edit", "apply_edits", "edit_from_dict",
           "SPLIT_PARTS", "NYQUIST", "describe"]

SPLIT_PARTS = (2, 8)            # a split by formation makes this many parts
MIN_PART = 0.01                 # each of them holding at least this share of the source's energy
NYQUIST = SAMPLE_RATE / 2
MAX_NAME = 200


class EditError(ParameterError):
    """An edit that cannot be applied (one line; nothing was changed)."""


@dataclass(frozen=True)
class Merge:
    """Sources ``indices`` (two or more) become one, at the place of the first; ``name`` or theirs joined."""
    indices: tuple
    name: Optional[str] = None

    def to_dict(self) -> dict:
        return {"op": "merge", "indices": list(self.indices), **({"name": self.name} if self.name else {})}


@dataclass(frozen=True)
class Split:
    """Source ``index`` in ``parts`` (2..8) by source formation on it alone, or in two at ``at_hz``."""
    index: int
    parts: Optional[int] = None
    at_hz: Optional[float] = None

    def to_dict(self) -> dict:
        return {"op": "split", "index": self.index,
                **({"parts": self.parts} if self.parts is not None else {"at_hz": self.at_hz})}


@dataclass(frozen=True)
class MoveRegion:
    """The share of source ``src`` in the rectangle ``t0..t1`` s by ``f0..f1`` Hz goes to source
    ``dst`` (None: to a new source, named ``name``)."""
    src: int
    dst: Optional[int]
    t0: float
    t1: float
    f0: float
    f1: float
    name: Optional[str] = None

    def to_dict(self) -> dict:
        return {"op": "move", "src": self.src, "dst": self.dst, "t0": self.t0, "t1": self.t1, "f0": self.f0,
                "f1": self.f1, **({"name": self.name} if self.name else {})}


Edit = Union[Merge, Split, MoveRegion]


def edit_from_dict(d: dict) -> Edit:
    """An edit from its project-file form (the schema in :mod:`app.project` checked the types)."""
    op = d.get("op")
    try:
        if op == "merge":
            return Merge(tuple(int(i) for i in d["indices"]), d.get("name"))
        if op == "split":
            return Split(int(d["index"]), d.get("parts"), d.get("at_hz"))
        if op == "move":
            return MoveRegion(int(d["src"]), None if d.get("dst") is None else int(d["dst"]), float(d["t0"]),
                              float(d["t1"]), float(d["f0"]), float(d["f1"]), d.get("name"))
    except KeyError as exc:
        raise EditError(f"a {op} edit needs {exc.args[0]!r}") from None
    raise EditError(f"unknown edit {op!r} (merge, split or move)")


def describe(edit: Edit, sources: list[Source]) -> str:
    """The edit in a few words, as an undo step's label ("merge lead around A3 + lead around E4")."""
    def nm(i):
        return sources[i].name if 0 <= i < len(sources) else f"source {i + 1}"
    if isinstance(edit, Merge):
        return "merge " + " + ".join(nm(i) for i in edit.indices)
    if isinstance(edit, Split):
        how = f"in {edit.parts}" if edit.parts is not None else f"at {edit.at_hz:.0f} Hz"
        return f"split {nm(edit.index)} {how}"
    to = nm(edit.dst) if edit.dst is not None else "a new source"
    return f"move a region of {nm(edit.src)} to {to}"


def band_to_hz(y: float) -> float:
    """A spectrogram's band coordinate (0 at the bottom of band 0, 34 at the top) in Hz."""
    hz = bands.band_edges() * (SAMPLE_RATE / N_FFT)
    return float(np.interp(y, np.arange(bands.N_BANDS + 1), hz))


def suggested_merges(sources: list[Source], *, least: float = 0.3) -> list[tuple[int, int, float]]:
    """Pairs of sources the grouping model rates likely one instrument, most likely first:
    ``(i, j, P(same))`` with P at least ``least`` (formation records it between the sources it
    made, ``meta["same"]``; sources made by an edit have none)."""
    out = []
    for i, a in enumerate(sources):
        for j in range(i + 1, len(sources)):
            b = sources[j]
            same, k = a.meta.get("same"), b.meta.get("formation_id")
            if same is None or k is None or "formation_id" not in a.meta or not 0 <= k < len(same):
                continue
            p = same[k]
            if p is not None and np.isfinite(p) and p >= least:
                out.append((i, j, float(p)))
    return sorted(out, key=lambda t: -t[2])


# --- applying ------------------------------------------------------------------------------------

def _index(i, sources: list[Source], what: str = "source") -> int:
    if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= int(i) < len(sources):
        raise EditError(f"there is no {what} {i + 1 if isinstance(i, (int, np.integer)) else i!r}: "
                        f"the sources are numbered 1 to {len(sources)}")
    return int(i)


def _free_colour(sources: list[Source], k: int = 0) -> str:
    used = {s.colour.upper() for s in sources}
    free = [c for c in PALETTE if c.upper() not in used]
    return free[k % len(free)] if free else PALETTE[(len(sources) + k) % len(PALETTE)]


def _name(name: Optional[str], default: str) -> str:
    name = (name or "").strip() or default
    if len(name) > MAX_NAME:
        raise EditError(f"a source name may have at most {MAX_NAME} characters")
    return name


def _rest(whole: np.ndarray, parts: list[np.ndarray]) -> np.ndarray:
    """``whole`` minus ``parts``, in float64, as float32: the last part, so that the parts sum to ``whole``."""
    rest = whole.astype(np.float64)
    for p in parts:
        rest -= p
    return rest.astype(np.float32)


def _merge(sources: list[Source], e: Merge):
    idx = sorted({_index(i, sources) for i in e.indices})
    if len(idx) < 2:
        raise EditError("a merge needs two or more different sources"
                        + (f" (got only {sources[idx[0]].name!r})" if idx else ""))
    picked = [sources[i] for i in idx]
    total = np.zeros(len(picked[0].audio), np.float64)
    for s in picked:
        total += s.audio
    kinds = {s.kind for s in picked}
    kind = kinds.pop() if len(kinds) == 1 else "source"      # a source that took the residual is a source
    merged = Source(_name(e.name, " + ".join(s.name for s in picked)), total.astype(np.float32), picked[0].colour,
                    kind, {"merged": [s.name for s in picked]})
    out, origin = [], []
    for i, s in enumerate(sources):
        if i == idx[0]:
            out.append(merged)
            origin.append(i)
        elif i not in idx:
            out.append(s)
            origin.append(i)
    return out, origin, {idx[0]}


def _split_at(src: Source, hz: float) -> list[np.ndarray]:
    if not 0 < hz < NYQUIST:
        raise EditError(f"a split frequency must be between 0 and {NYQUIST:.0f} Hz, not {hz:g}")
    spec = stft(src.audio)
    freqs = np.arange(spec.shape[0]) * SAMPLE_RATE / N_FFT
    low = istft(spec * (freqs < hz)[:, None], length=len(src.audio)).astype(np.float32)
    return [low, _rest(src.audio, [low])]


def _split_formation(src: Source, parts: int, progress, cancel) -> list[np.ndarray]:
    lo, hi = SPLIT_PARTS
    if not lo <= parts <= hi:
        raise EditError(f"a source splits into {lo} to {hi} parts, not {parts}")
    found = separation.get("formation", n_sources=parts, cache=False).separate(src.audio, progress=progress,
                                                                               cancel=cancel)
    stems = [s.audio for s in found if s.kind != "residual"]
    whole = max(float(np.dot(src.audio.astype(np.float64), src.audio)), 1e-30)
    audible = sum(float(np.dot(y.astype(np.float64), y)) >= MIN_PART * whole for y in stems)
    if len(stems) < parts or audible < parts:
        has = f"only {audible} part{'s' if audible != 1 else ''}" if audible else "no part"
        raise EditError(f"{src.name!r} has {has} that source formation can tell apart (holding at least "
                        f"{MIN_PART:.0%} of its energy); split it "
                        + (f"into {audible} or fewer" if audible >= 2 else "in two at a frequency instead"))
    # the loudest part takes what formation left over (its residual): the parts sum to the source
    energy = [float(np.dot(y.astype(np.float64), y)) for y in stems]
    loud = int(np.argmax(energy))
    others = [y.astype(np.float32) for k, y in enumerate(stems) if k != loud]
    rest = _rest(src.audio, others)
    return others[:loud] + [rest] + others[loud:]


def _split(sources: list[Source], e: Split, progress, cancel):
    i = _index(e.index, sources)
    src = sources[i]
    if (e.parts is None) == (e.at_hz is None):
        raise EditError("a split needs either a number of parts or a frequency")
    if e.parts is not None:
        ys = _split_formation(src, int(e.parts), progress, cancel)
        names = [f"{src.name} ({k + 1})" for k in range(len(ys))]
    else:
        ys = _split_at(src, float(e.at_hz))
        names = [f"{src.name} below {e.at_hz:.0f} Hz", f"{src.name} above {e.at_hz:.0f} Hz"]
    parts = [Source(names[0], ys[0], src.colour, src.kind, {"split_from": src.name})]
    for k, y in enumerate(ys[1:]):
        parts.append(Source(names[k + 1], y, _free_colour(sources + parts, k), src.kind, {"split_from": src.name}))
    out = sources[:i] + parts + sources[i + 1:]
    origin = list(range(i)) + [i] * len(parts) + list(range(i + 1, len(sources)))
    return out, origin, set(range(i, i + len(parts)))


def region_mask(n: int, t0: float, t1: float, f0: float, f1: float) -> np.ndarray:
    """The rectangle as an STFT mask [shape=(bins, frames)] of a signal of ``n`` samples (frame j is
    centred at j * HOP), clipped to the recording; :class:`EditError` when nothing of it is inside."""
    dur = n / SAMPLE_RATE
    vals = (t0, t1, f0, f1)
    if not all(np.isfinite(v) for v in vals) or t1 <= t0 or f1 <= f0:
        raise EditError(f"a region needs t0 < t1 and f0 < f1 (got {t0:g}-{t1:g} s, {f0:g}-{f1:g} Hz)")
    if t1 <= 0 or t0 >= dur or f1 <= 0 or f0 >= NYQUIST:
        raise EditError(f"the region {t0:g}-{t1:g} s, {f0:g}-{f1:g} Hz lies outside the recording "
                        f"(0-{dur:.2f} s, 0-{NYQUIST:.0f} Hz)")
    frames = n_frames(n)
    times = np.arange(frames) * HOP / SAMPLE_RATE
    freqs = np.arange(N_FFT // 2 + 1) * SAMPLE_RATE / N_FFT
    mask = ((freqs >= f0) & (freqs < f1))[:, None] & ((times >= t0) & (times < t1))[None, :]
    if not mask.any():
        raise EditError(f"the region {t0:g}-{t1:g} s, {f0:g}-{f1:g} Hz holds no STFT tile "
                        f"(make it at least {HOP / SAMPLE_RATE * 1000:.0f} ms by {SAMPLE_RATE / N_FFT:.0f} Hz)")
    return mask


def _move(sources: list[Source], e: MoveRegion):
    a = _index(e.src, sources)
    b = None if e.dst is None else _index(e.dst, sources, "target source")
    if a == b:
        raise EditError("a region moves from one source to another, not to itself")
    src = sources[a]
    spec = stft(src.audio)
    mask = region_mask(len(src.audio), e.t0, e.t1, e.f0, e.f1)
    moved = istft(spec * mask, length=len(src.audio)).astype(np.float32)
    left = Source(src.name, _rest(src.audio, [moved]), src.colour, src.kind, dict(src.meta))
    out = list(sources)
    out[a] = left
    origin = list(range(len(sources)))
    if b is None:
        region = f"{e.t0:.1f}-{e.t1:.1f} s, {e.f0:.0f}-{e.f1:.0f} Hz"
        out.append(Source(_name(e.name, f"{src.name} ({region})"), moved, _free_colour(sources), "source",
                          {"moved_from": src.name}))
        origin.append(None)
        return out, origin, {a, len(out) - 1}
    dst = sources[b]
    total = dst.audio.astype(np.float64) + moved
    out[b] = Source(dst.name, total.astype(np.float32), dst.colour, dst.kind, dict(dst.meta))
    return out, origin, {a, b}


def apply_edit(sources: list[Source], edit: Edit, *, progress: Optional[ProgressFn] = None,
               cancel: Optional[threading.Event] = None) -> tuple[list[Source], list[Optional[int]], set]:
    """``(sources after the edit, origin, changed)``: ``origin[i]`` is the index before the edit that
    source ``i`` comes from (None: a new source), ``changed`` the indices whose audio is new (the
    others are the very same objects). ``sources`` is not changed. :class:`EditError` for an edit
    that does not fit them."""
    if not sources:
        raise EditError("there are no sources to edit: separate the recording first")
    if isinstance(edit, Merge):
        return _merge(sources, edit)
    if isinstance(edit, Split):
        return _split(sources, edit, progress, cancel)
    if isinstance(edit, MoveRegion):
        return _move(sources, edit)
    raise EditError(f"not an edit: {edit!r}")


def apply_edits(sources: list[Source], edits: list[Edit], *, progress: Optional[ProgressFn] = None,
                cancel: Optional[threading.Event] = None) -> tuple[list[Source], list[Optional[int]], set]:
    """:func:`apply_edit` for each of ``edits`` in turn; origin and changed relative to ``sources``."""
    origin: list[Optional[int]] = list(range(len(sources)))
    changed: set = set()
    for k, e in enumerate(edits):
        try:
            sources, o, c = apply_edit(sources, e, progress=progress, cancel=cancel)
        except EditError as exc:
            raise EditError(f"edit {k + 1} ({e.to_dict()['op']}): {exc}") from None
        changed = {i for i, j in enumerate(o) if j is None or j in changed} | set(c)
        origin = [None if j is None else origin[j] for j in o]
    return sources, origin, changed
