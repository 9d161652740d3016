"""Which undo states keep their auto renders and their mixes in memory, and making released ones again.

An auto source's band-by-band render is a stereo pair as long as the recording (8 bytes a sample:
484 MiB for 8 sources of 3 minutes). Undo states record their renders; the current state's pairs
always stay in memory, and those of the most recent other states as long as all together fit in
``keep_bytes`` (:data:`KEEP_BYTES`, 1 GiB: the state before too for 8 sources of 3 minutes, the
current one alone for 10 minutes). Released pairs are made again from their tile parameters when
an undo step returns to them (:func:`plan_restore` in a worker, then the plan's ``adopt``).

Each state auditioned lately also keeps its whole stereo mix (:class:`app.mixes.StateMix`, 8 bytes
a sample whatever the number of sources: 61 MiB for 3 minutes) in :class:`MixCache`, the most recent
first, as many as fit in ``keep_bytes`` (:data:`MIX_KEEP_BYTES`, 512 MiB: 8 states of 3 minutes).
Going back to such a state (a rendition of the gallery, an undo or redo step) plays its mix at once
and makes its pairs behind it, for the edits that need them.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Optional

from core.placement import Placement
from core.progress import ProgressFn, check_cancel, report
from core.renderer import SourceRender, missing, render_auto

from .mixes import StateMix, background
from .plans import RestorePlan

if TYPE_CHECKING:
    from .session import Session

__all__ = ["RenderMemory", "MixCache", "KEEP_BYTES", "MIX_KEEP_BYTES", "restore_needs_render", "plan_restore"]

KEEP_BYTES = 1 << 30   # auto renders of recent undo states kept in memory, the current state's included
MIX_KEEP_BYTES = 1 << 29   # the whole mixes of the states auditioned last (the current one's included)


class RenderMemory:
    """The recent states' renders whose auto pairs stay resident (most recent first)."""

    def __init__(self, keep_bytes: int = KEEP_BYTES):
        self.keep_bytes = keep_bytes      # 0 where nothing is undone (the headless chain)
        self._resident: list[list[SourceRender]] = []

    def clear(self) -> None:
        self._resident = []

    def keep(self, renders: list[SourceRender]) -> None:
        """``renders`` (now current) first among the states whose auto pairs stay in memory, then
        the most recent others while all their pairs together fit in ``keep_bytes``; the pairs of
        the rest are released (their tile parameters stay)."""
        ids = [id(r) for r in renders]
        self._resident = [rs for rs in self._resident if [id(r) for r in rs] != ids]
        self._resident.insert(0, list(renders))
        kept, total, keep = set(), 0, 0
        for k, rs in enumerate(self._resident):
            new = [r for r in rs if id(r) not in kept]
            size = sum(r.auto_bytes for r in new)
            if k > 0 and total + size > self.keep_bytes:
                break
            total += size
            kept.update(id(r) for r in new)
            keep = k + 1
        released = []
        for rs in self._resident[keep:]:
            for r in rs:
                if id(r) not in kept and r.auto is not None:
                    released.append(r.auto)
                    r.auto = None
        del self._resident[keep:]
        if released:            # freeing hundreds of MB takes a while: not on the caller's (the UI's) thread
            background(released.clear, lambda: None, "release pairs")


class MixCache:
    """The mixes of the states auditioned last (:class:`app.mixes.StateMix`), most recent first,
    within ``keep_bytes`` (the most recent is always kept). Safe from any thread (the output
    gain's measurement adds the mix it made); the audio callback never touches it."""

    def __init__(self, keep_bytes: int = MIX_KEEP_BYTES):
        self.keep_bytes = keep_bytes
        self._mixes: list[StateMix] = []
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            old, self._mixes = self._mixes, []
        for m in old:
            m.cancel()

    def find(self, renders: list[SourceRender], placements: list[Placement], mono_compatible: bool,
             *, filled: bool = False) -> Optional[StateMix]:
        """The kept mix of that state (with ``filled``, only a whole one), or None."""
        with self._lock:
            for m in self._mixes:
                if not m.cancelled.is_set() and m.is_for(renders, placements, mono_compatible):
                    return m if not filled or m.filled.is_set() else None
        return None

    def keep(self, mix: StateMix) -> None:
        """``mix`` first (added, or moved to the front), then the most recent others that fit."""
        evicted = []
        with self._lock:
            rest = [m for m in self._mixes if m is not mix and not m.is_for(mix.renders, mix.placements,
                                                                             mix.mono_compatible)]
            evicted += [m for m in self._mixes if m is not mix and m not in rest]
            kept, total = [mix], mix.nbytes
            for m in rest:
                if total + m.nbytes > self.keep_bytes:
                    evicted.append(m)
                    continue
                kept.append(m)
                total += m.nbytes
            self._mixes = kept
        for m in evicted:
            m.cancel()

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(m.nbytes for m in self._mixes)

    def __len__(self) -> int:
        return len(self._mixes)


def _target_state(session: "Session", redo: bool) -> Optional[tuple]:
    cmd = session.undo.peek(redo=redo)
    if cmd is None or cmd.states is None:
        return None
    return cmd.states[1 if redo else 0]


def restore_needs_render(session: "Session", *, redo: bool = False) -> bool:
    """Whether the next undo (or redo) step restores a state whose auto renders were released
    and whose mix is not kept (then :func:`plan_restore` in a worker keeps the UI responsive)."""
    state = _target_state(session, redo)
    return (state is not None and missing(state[1], mono_compatible=state[3])
            and session.mixes.find(state[1], state[2], state[3]) is None)


def plan_restore(session: "Session", *, redo: bool = False, playhead: Optional[int] = None,
                 progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None) -> RestorePlan:
    """Worker side of an undo (or redo) step: the state it restores made playable; nothing is
    changed until the plan is adopted. ``playhead`` (a sample): only the first block of the
    state's mix from there (:class:`app.mixes.StateMix`), the rest and its pairs made behind it
    while the state plays; without, its released auto pairs rendered here."""
    cmd = session.undo.peek(redo=redo)
    state = _target_state(session, redo)
    pairs = []
    if state is not None and playhead is not None and session.pairs:
        mix = session.mixes.find(state[1], state[2], state[3])
        if mix is None:
            mix = StateMix(state[1], state[2], state[3], spill=session.spill_dir).start(
                playhead, cancel=cancel).run_behind()
        return RestorePlan(redo, cmd, [], mix=mix)
    if state is not None:
        todo = [r for r in state[1] if r.has_auto and (r.auto is None or r.mono_compatible != state[3])]
        for i, r in enumerate(todo):
            check_cancel(cancel)
            pairs.append((r, render_auto(r, *r.tiles, mono_compatible=state[3], spill=session.spill_dir,
                                         cancel=cancel), state[3]))
            report(progress, "render", i + 1, len(todo))
    return RestorePlan(redo, cmd, pairs)
