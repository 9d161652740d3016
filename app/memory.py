"""Which undo states keep their auto renders in memory, and making released ones again.

An auto source's band-by-band render is a stereo pair as long as the recording (8 bytes a sample:
484 MiB for 8 sources of 3 minutes). Undo states record their renders; the current state's pairs
always stay in memory, and those of the most recent other states as long as all together fit in
``keep_bytes`` (:data:`KEEP_BYTES`, 1 GiB: the state before too for 8 sources of 3 minutes, the
current one alone for 10 minutes). Released pairs are made again from their tile parameters when
an undo step returns to them (:func:`plan_restore` in a worker, then the plan's ``adopt``).
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Optional

from core.progress import ProgressFn, check_cancel, report
from core.renderer import PairFiller, SourceRender, missing, render_auto

from .plans import RestorePlan

if TYPE_CHECKING:
    from .session import Session

__all__ = ["RenderMemory", "KEEP_BYTES", "restore_needs_render", "plan_restore"]

KEEP_BYTES = 1 << 30   # auto renders of recent undo states kept in memory, the current state's included


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
        for rs in self._resident[keep:]:
            for r in rs:
                if id(r) not in kept:
                    r.auto = None
        del self._resident[keep:]


def _target_state(session: "Session", redo: bool) -> Optional[tuple]:
    cmd = session.undo.peek(redo=redo)
    if cmd is None or cmd.states is None:
        return None
    return cmd.states[1 if redo else 0]


def restore_needs_render(session: "Session", *, redo: bool = False) -> bool:
    """Whether the next undo (or redo) step restores a state whose auto renders were released
    (then :func:`plan_restore` in a worker keeps the UI responsive)."""
    state = _target_state(session, redo)
    return state is not None and missing(state[1], mono_compatible=state[3])


def plan_restore(session: "Session", *, redo: bool = False, playhead: Optional[int] = None,
                 progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None) -> RestorePlan:
    """Worker side of an undo (or redo) step: render the released auto pairs of the state it
    restores; nothing is changed until the plan is adopted. ``playhead`` (a sample): only the
    pairs' first block from there (:class:`core.renderer.PairFiller`), the rest filled in while
    the state plays."""
    cmd = session.undo.peek(redo=redo)
    state = _target_state(session, redo)
    pairs = []
    if state is not None and playhead is not None and session.pairs:
        filler = PairFiller(state[1], start=playhead, mono_compatible=state[3],
                            spill=session.spill_dir).start_pairs(cancel, install=False)
        return RestorePlan(redo, cmd, [], filler)
    if state is not None:
        todo = [r for r in state[1] if r.has_auto and (r.auto is None or r.mono_compatible != state[3])]
        for i, r in enumerate(todo):
            check_cancel(cancel)
            pairs.append((r, render_auto(r, *r.tiles, mono_compatible=state[3], spill=session.spill_dir,
                                         cancel=cancel), state[3]))
            report(progress, "render", i + 1, len(todo))
    return RestorePlan(redo, cmd, pairs)
