"""Where the person listens, and the order in which background work makes a signal around it.

A state's mix (:class:`app.mixes.StateMix`) and the sources' stereo pairs (:class:`core.renderer.PairFiller`)
are made from the playhead to the end, then from the beginning, in a background thread, far faster than
they play. A seek into a part not made yet would play silence there until the fill came round:
:class:`FillOrder` keeps the parts made and, between chunks, asks :func:`playhead` where the person
listens; a playhead in a part not made (and not just ahead of the part being made) is where the fill goes
on, and the skipped parts are made after. The app's playback sets the listener (:func:`follow`).
"""
from __future__ import annotations

from typing import Callable, Optional

__all__ = ["follow", "playhead", "FillOrder", "FOLLOW_AHEAD"]

FOLLOW_AHEAD = 44100    # a playhead this far ahead of the part being made is reached without a jump

_FOLLOW: list[Optional[Callable[[], Optional[int]]]] = [None]


def follow(listener: Optional[Callable[[], Optional[int]]]) -> None:
    """Where the person listens: a function giving the playback position in samples (None when
    nothing plays), or None. One listener per process (the app's playback)."""
    _FOLLOW[0] = listener


def playhead() -> Optional[int]:
    """The listener's position in samples, or None."""
    fn = _FOLLOW[0]
    return fn() if fn is not None else None


class FillOrder:
    """The parts of a signal of ``n`` samples made so far ([a, b) in samples, merged, in order), and
    where to make the next."""

    def __init__(self, n: int):
        self.n = int(n)
        self.made: list[list[int]] = []

    def mark(self, a: int, b: int) -> None:
        """Samples ``a:b`` are made."""
        made = self.made
        if made and made[-1][1] == a:
            made[-1][1] = b
            return
        made.append([a, b])
        made.sort()
        merged = [made[0]]
        for lo, hi in made[1:]:
            if lo <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        self.made[:] = merged

    def made_at(self, sample: int) -> bool:
        return any(lo <= sample < hi for lo, hi in self.made)

    def gap_from(self, pos: int) -> Optional[tuple[int, int]]:
        """The first part not made at or after ``pos`` (else from the beginning), or None: all made."""
        for origin in (pos, 0):
            a = origin
            for lo, hi in self.made:
                if hi <= a:
                    continue
                if lo <= a:
                    a = hi
                    continue
                return a, lo
            if a < self.n:
                return a, self.n
        return None

    def wanted(self, made_to: int) -> Optional[int]:
        """Where to go on from: the playhead when it is in a part not made and not just ahead of
        ``made_to`` (where the fill is now), else None (go on in order)."""
        head = playhead()
        if head is None or not 0 <= head < self.n or self.made_at(head):
            return None
        if made_to <= head < made_to + FOLLOW_AHEAD:
            return None                  # reached in a moment anyway
        return int(head)
