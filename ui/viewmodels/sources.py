"""The sources' view model, bound by the pan canvas and the sources list: one node per source with
its name, colour and place, the A/B switch, and whether there is a recording and renders.

The controller calls :meth:`SourcesViewModel.sync` with its session on the UI thread after each
session event; a notify signal fires only when what it announces changed (a drag step moves one
node: ``nodes_changed`` fires once)."""
from __future__ import annotations

from dataclasses import dataclass

from PyQt6.QtCore import QObject, pyqtSignal

from core.placement import Placement

from .base import notifying

__all__ = ["SourceNode", "SourcesViewModel"]


@dataclass(frozen=True)
class SourceNode:
    """One source as the widgets show it. ``key`` is the same number as long as it is the same
    source (a rename keeps it; a new separation, an edit or another session does not), so that a
    value typed for a source is never applied to another one that took its row."""
    key: int
    name: str
    colour: str
    kind: str
    placement: Placement

    pan = property(lambda self: self.placement.pan)
    width = property(lambda self: self.placement.width)
    gain_db = property(lambda self: self.placement.gain_db)
    mute = property(lambda self: self.placement.mute)
    solo = property(lambda self: self.placement.solo)
    pinned = property(lambda self: self.placement.pinned)
    mode = property(lambda self: self.placement.mode)


class SourcesViewModel(QObject):
    """``nodes`` (a tuple of :class:`SourceNode`, one per source with a place), announced by
    ``nodes_changed`` on any change and also by ``sources_changed`` when the sources themselves
    changed (others, renamed, recoloured: a list of them is rebuilt); ``ab_original`` (the mono
    original is playing); ``has_recording`` and ``has_renders`` (announced by ``state_changed``)."""
    sources_changed = pyqtSignal()
    nodes_changed = pyqtSignal()
    ab_changed = pyqtSignal()
    state_changed = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._nodes: tuple[SourceNode, ...] = ()
        self._ab_original = False
        self._has_recording = False
        self._has_renders = False
        self._session = None
        self._known: list[tuple[object, int]] = []   # (source, key) of the nodes shown: keys by identity
        self._next_key = 0

    nodes = notifying("nodes", nodes_changed)
    ab_original = notifying("ab_original", ab_changed, bool)
    has_recording = notifying("has_recording", state_changed, bool)
    has_renders = notifying("has_renders", state_changed, bool)

    def _key(self, src) -> int:
        for obj, key in self._known:
            if obj is src:
                return key
        self._next_key += 1
        return self._next_key

    def sync(self, session) -> None:
        """Take the session's sources, places, A/B and state; announce what changed."""
        new_session = session is not self._session
        if new_session:
            self._session, self._known = session, []
        pairs = list(zip(session.sources, session.placements))
        nodes = tuple(SourceNode(self._key(src), src.name, src.colour, src.kind, p) for src, p in pairs)
        self._known = [(src, node.key) for (src, _p), node in zip(pairs, nodes)]
        who = [(n.key, n.name, n.colour, n.kind) for n in nodes]
        sources = new_session or who != [(n.key, n.name, n.colour, n.kind) for n in self._nodes]
        moved = sources or nodes != self._nodes
        ab = bool(session.ab_original) != self._ab_original
        state = (session.mono is not None, bool(session.renders))
        changed_state = state != (self._has_recording, self._has_renders)
        # every value in place before the first signal: a handler may read any of them
        self._nodes, self._ab_original = nodes, bool(session.ab_original)
        self._has_recording, self._has_renders = state
        if sources:
            self.sources_changed.emit()
        if moved:
            self.nodes_changed.emit()
        if ab:
            self.ab_changed.emit()
        if changed_state:
            self.state_changed.emit()

    def node(self, i: int):
        """Source ``i``'s node, or None where there is none."""
        return self._nodes[i] if 0 <= i < len(self._nodes) else None
