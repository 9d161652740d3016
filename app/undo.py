"""Undo/redo for placement edits and rendition switches.

Commands are small objects with ``do()``/``undo()``; consecutive edits with the same ``merge_key``
(one drag of one node) merge into a single undo step.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable, Optional

__all__ = ["Command", "UndoStack", "Change"]


class Change(enum.Enum):
    """What an adopted plan or an undo step changed."""
    NOTHING = "nothing"
    PLACES = "places"         # placements only: the engine's snapshot follows
    RENDERS = "renders"       # the sources' renders (rendition, mode, reset): views and engine follow
    SOURCES = "sources"       # new sources: a new engine


@dataclass
class Command:
    label: str
    do: Callable[[], None]
    undo: Callable[[], None]
    merge_key: Optional[object] = None
    states: Optional[tuple] = None      # (before, after): what undo and redo restore, for a look ahead
    change: Change = Change.PLACES      # what running it changes (the UI refreshes by this tag)


class UndoStack:
    def __init__(self, on_change: Optional[Callable[[], None]] = None):
        self._done: list[Command] = []
        self._undone: list[Command] = []
        self.on_change = on_change

    def push(self, cmd: Command) -> None:
        """Run ``cmd`` and record it (merging with the last one when the keys match)."""
        cmd.do()
        last = self._done[-1] if self._done else None
        if last is not None and cmd.merge_key is not None and cmd.merge_key == last.merge_key:
            before = last.states[0] if last.states and cmd.states else None
            self._done[-1] = Command(cmd.label, cmd.do, last.undo, cmd.merge_key,
                                     (before, cmd.states[1]) if before is not None else None, cmd.change)
        else:
            self._done.append(cmd)
        self._undone.clear()
        self._changed()

    def end_merge(self) -> None:
        """Close the current merge group (e.g. when a drag ends)."""
        if self._done:
            self._done[-1].merge_key = None

    def undo(self) -> Optional[Command]:
        """Undo the last step; the command undone (None when there was none)."""
        if not self._done:
            return None
        cmd = self._done.pop()
        cmd.undo()
        self._undone.append(cmd)
        self._changed()
        return cmd

    def redo(self) -> Optional[Command]:
        """Redo the last undone step; the command redone (None when there was none)."""
        if not self._undone:
            return None
        cmd = self._undone.pop()
        cmd.do()
        self._done.append(cmd)
        self._changed()
        return cmd

    def peek(self, *, redo: bool = False) -> Optional[Command]:
        """The command :meth:`undo` (or :meth:`redo`) would run next, without running it."""
        stack = self._undone if redo else self._done
        return stack[-1] if stack else None

    @property
    def depth(self) -> int:
        """How many steps can be undone."""
        return len(self._done)

    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)

    def clear(self) -> None:
        self._done.clear()
        self._undone.clear()
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()
