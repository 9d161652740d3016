"""What a worker computes for the session, as typed values that adopt themselves on the UI thread.

Every heavy step of :class:`app.session.Session` is split in two: ``plan_*`` runs in a worker on
copies and returns one of the plans below (the session is not changed), and ``plan.adopt(session)``
makes it current, cheaply, on the UI thread. ``adopt`` returns a :class:`Change`: what the UI must
refresh afterwards (the sources' renders changed, so views and engine follow; or only places).
Undo steps carry the same tag (:attr:`app.undo.Command.change`), so the UI never guesses from a
label what an undo did.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from core.limits import DEFAULT_VARIETY
from core.placement import Placement
from core.ps import PSParams
from core.reference import ReferenceScene
from core.renderer import SourceRender
from separation.base import Source

from .undo import Change

if TYPE_CHECKING:
    from .session import Session

__all__ = ["Rendition", "Change", "SourcesPlan", "RenditionPlan", "ModePlan", "ResetPlan", "RestorePlan",
           "SeparationPlan"]


@dataclass(frozen=True)
class Rendition:
    """One proposal: the PS model's parameters (``model``, ``seed``, ``temperature``, ``guidance``)
    and the sources' places (``placement`` method, the same ``seed``, ``variety``, the stereo
    ``reference`` followed, a :class:`core.reference.ReferenceScene` saved by its id; see
    :func:`core.placement.propose`). Projects made before the placement model had no ``placement``
    and were placed by the "mean" projection, which ``from_dict`` keeps. ``detail``: the seed of the
    PS model's sample whose per-band, per-frame detail the auto sources keep around their places
    (None: the rendition's own seed, as every rendition before issue 22): a new rendition can
    sample new places over detail already computed, and be heard at once."""
    seed: int
    model: str
    temperature: Optional[float] = None
    guidance: Optional[float] = None
    placement: str = "model"
    variety: float = DEFAULT_VARIETY
    detail: Optional[int] = None
    reference: Optional[ReferenceScene] = None

    def to_dict(self) -> dict:
        d = {"seed": self.seed, "model": self.model, "temperature": self.temperature, "guidance": self.guidance,
             "placement": self.placement, "variety": self.variety}
        if self.detail is not None:
            d["detail"] = self.detail
        if self.reference is not None:
            d["reference"] = self.reference.id
        return d

    @classmethod
    def from_dict(cls, d: dict, references: Optional[dict] = None) -> "Rendition":
        """``references``: the project's reference scenes by id (a rendition names its own)."""
        detail = d.get("detail")
        return cls(int(d["seed"]), str(d["model"]), d.get("temperature"), d.get("guidance"),
                   str(d.get("placement", "mean")), float(d.get("variety", DEFAULT_VARIETY)),
                   None if detail is None or int(detail) == int(d["seed"]) else int(detail),
                   (references or {}).get(d["reference"]) if d.get("reference") else None)

    @property
    def ps_seed(self) -> int:
        """The seed the PS model samples the detail with."""
        return self.seed if self.detail is None else self.detail

    @property
    def ps_key(self) -> tuple:
        """What the PS parameters depend on (renditions that differ only in placement share them)."""
        return (self.ps_seed, self.model, self.temperature, self.guidance)


@dataclass
class SourcesPlan:
    """New sources (with their renders and first places) for :meth:`Session.adopt_sources`."""
    sources: list[Source]
    renders: list[SourceRender]
    placements: list[Placement]
    backend: str
    settings: dict

    def adopt(self, session: "Session", *, engine=None) -> Change:
        session.adopt_sources(self, engine=engine)
        return Change.SOURCES


@dataclass
class RenditionPlan:
    """A rendition's parameters, renders and places for :meth:`Session.adopt_rendition`."""
    rendition: Rendition
    params: PSParams
    renders: list[SourceRender]
    placements: list[Placement]
    mix: Optional[object] = None        # app.mixes.StateMix: its mix made from the playhead, to finish

    def adopt(self, session: "Session", *, record: bool = True) -> Change:
        session.adopt_rendition(self, record=record)
        return Change.RENDERS


@dataclass
class ModePlan:
    """The current renders made again in mono-compatible mode ``on`` (or out of it)."""
    on: bool
    renders: list[SourceRender]

    def adopt(self, session: "Session", *, record: bool = True) -> Change:
        session.adopt_mono_compatible(self, record=record)
        return Change.RENDERS


@dataclass
class ResetPlan:
    """Source ``index`` back at the current rendition's proposal, its auto render made."""
    index: int
    renders: list[SourceRender]
    placements: list[Placement]

    def adopt(self, session: "Session") -> Change:
        session.adopt_reset(self)
        return Change.RENDERS


@dataclass
class RestorePlan:
    """The auto renders an undo (or redo) step needs that were released to save memory, made again."""
    redo: bool
    command: object
    pairs: list[tuple]        # (render, pair [shape=(n, 2)], mono_compatible)
    mix: Optional[object] = None      # app.mixes.StateMix: the state's mix made from the playhead, to finish

    def adopt(self, session: "Session"):
        """Install the pairs (or keep the mix) and run the step; the :class:`app.undo.Command` run
        (its ``change`` says what changed), None when the history moved on meanwhile."""
        if session.undo.peek(redo=self.redo) is not self.command:
            return None
        for r, pair, mode in self.pairs:
            r.auto, r.mono_compatible = pair, mode
        if self.mix is not None:
            session.mixes.keep(self.mix)           # the step plays it (and makes the rest behind it)
        return session.undo.redo() if self.redo else session.undo.undo()


@dataclass
class SeparationPlan:
    """New sources and, for a recording's first separation, its first rendition."""
    sources: SourcesPlan
    rendition: Optional[RenditionPlan] = None
    engine: object = None                        # a playback engine made for them in the worker

    def adopt(self, session: "Session") -> Change:
        session.adopt_sources(self.sources, engine=self.engine)
        if self.rendition is not None:
            session.adopt_rendition(self.rendition, record=False)
            session.undo.clear()                 # the first proposal is no edit
        return Change.SOURCES
