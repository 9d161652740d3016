"""The renditions' view model, bound by the renditions panel (gallery, variety, reference): the
kept renditions and which one plays, the model new renditions use, variety and the reference."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from PyQt6.QtCore import QObject, pyqtSignal

from app.reference import rendition_follows
from core.limits import DEFAULT_VARIETY

from .base import notifying

__all__ = ["RenditionEntry", "RenditionsViewModel", "reference_label"]


def reference_label(scene) -> str:
    """The name of reference scene ``scene`` as the gallery shows it ("" for none)."""
    return (scene.name or scene.id) if scene is not None else ""


@dataclass(frozen=True)
class RenditionEntry:
    """One kept rendition as the gallery lists it."""
    seed: int
    model: str
    temperature: Optional[float]
    placement: str
    variety: float
    reference: str          # the reference it was made with ("" for none)
    follows: bool = False   # whether it followed that reference (not when gated out, or hedged and left to the model)


class RenditionsViewModel(QObject):
    """``entries`` (a tuple of :class:`RenditionEntry`) and ``current`` (the index playing, -1
    for none), announced by ``gallery_changed``; ``model`` and ``has_renders`` (``state_changed``);
    ``variety`` (``variety_changed``); ``reference``, the name of the reference new renditions
    follow ("" for none, ``reference_changed``)."""
    gallery_changed = pyqtSignal()
    state_changed = pyqtSignal()
    variety_changed = pyqtSignal()
    reference_changed = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._entries: tuple[RenditionEntry, ...] = ()
        self._current = -1
        self._model = ""
        self._has_renders = False
        self._variety = float(DEFAULT_VARIETY)
        self._reference = ""

    entries = notifying("entries", gallery_changed)
    current = notifying("current", gallery_changed, int)
    model = notifying("model", state_changed, str)
    has_renders = notifying("has_renders", state_changed, bool)
    variety = notifying("variety", variety_changed, float)
    reference = notifying("reference", reference_changed, str)

    def sync(self, session) -> None:
        entries = tuple(RenditionEntry(r.seed, r.model, r.temperature, r.placement, r.variety,
                                       reference_label(r.reference), rendition_follows(session, r))
                        for r in session.renditions)
        gallery, state = (entries, int(session.current)), (session.model, bool(session.renders))
        variety, ref = float(session.variety), reference_label(session.reference)
        changed = [gallery != (self._entries, self._current), state != (self._model, self._has_renders),
                   variety != self._variety, ref != self._reference]
        # every value in place before the first signal: a handler may read any of them
        (self._entries, self._current), (self._model, self._has_renders) = gallery, state
        self._variety, self._reference = variety, ref
        for signal, yes in zip((self.gallery_changed, self.state_changed, self.variety_changed,
                                self.reference_changed), changed):
            if yes:
                signal.emit()
