"""Editing the session's sources (:mod:`app.edits`) as undoable steps that the placement follows.

:func:`plan_edit` runs in a worker: it applies the edit to copies, prepares only the sources whose
audio is new (the others keep their renders), keeps each source's place (new sources, and the merged
or split ones that were not pinned, are placed by the current rendition's model around the pinned
ones) and renders the auto sources again (each one's tile parameters weigh every source's energy,
so they follow any change of the set; a kept source is not decorrelated again). ``EditPlan.adopt`` makes it
current on the UI thread as one undo step tagged :attr:`Change.SOURCES` (the playback engine is made
anew). The session's ``edits`` list grows with each step and is saved in the project
(:mod:`app.project_io`), which re-applies it after the separation with :func:`apply_saved`.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Optional

from core.placement import Placement
from core.progress import ProgressFn, Reporter, check_cancel
from core.renderer import SourceRender, render_missing
from separation.base import Source

from . import proposal
from .edits import Edit, apply_edit, apply_edits, describe
from .plans import Change
from .undo import Command

if TYPE_CHECKING:
    from .session import Session

__all__ = ["EditPlan", "plan_edit", "adopt_edit", "apply_saved", "edits_of"]


def edits_of(s: "Session") -> list:
    """The session's edit list (sessions made before editing existed have none)."""
    return getattr(s, "edits", None) or []


@dataclass
class EditPlan:
    """Sources after an edit, with their renders and places, for :func:`adopt_edit`."""
    edit: Edit
    label: str
    sources: list[Source]
    renders: list[SourceRender]
    placements: list[Placement]
    gallery: list
    changed: set

    def adopt(self, session: "Session", *, engine=None) -> Change:
        """Make it current (one undo step); ``engine``: a playback engine made for it in the worker."""
        adopt_edit(session, self)
        session._engine = engine
        return Change.SOURCES


def _follow(s: "Session", sources, origin, changed, *, progress=None, cancel=None):
    """Renders and places of edited ``sources``: the new ones prepared, places carried over from
    their origin (a new or changed source that was not pinned follows the model), the auto renders
    made around the current rendition's parameters."""
    fresh = sorted(changed)
    prepared = dict(zip(fresh, proposal.prepare([sources[i] for i in fresh], len(s.mono),
                                                 progress=Reporter(progress, "prepare", 0.0, 0.6), cancel=cancel,
                                                 cache=s.copies_cache())))
    renders = [prepared[i] if i in prepared else s.renders[o] for i, o in enumerate(origin)]
    placements = []
    for i, o in enumerate(origin):
        p = Placement() if o is None else s.placements[o]
        placements.append(p if p.pinned or i not in changed else replace(p, pinned=False))
    gallery = [None if g is None else [Placement() if o is None else g[o] for o in origin] for g in s.gallery]
    if s.current >= 0 and s.renditions:
        check_cancel(cancel)
        r = s.renditions[s.current]
        params = s._params[r.ps_key]
        placements = proposal.propose(r, renders, params, placements, sources, models_dir=s.settings.models_dir)
        # every source's energy weighs in each auto source's tile parameters: all are made again
        renders = [sr if i in prepared else replace(sr) for i, sr in enumerate(renders)]
        s._render(r, renders, params, placements, progress=Reporter(progress, "render", 0.6, 0.4), cancel=cancel)
    return renders, placements, gallery


def plan_edit(s: "Session", edit: Edit, *, progress: Optional[ProgressFn] = None,
              cancel: Optional[threading.Event] = None) -> EditPlan:
    """Worker side of an edit: the session is not changed. :class:`app.edits.EditError` for an
    edit that does not fit the sources (nothing is changed)."""
    label = describe(edit, s.sources)
    sources, origin, changed = apply_edit(s.sources, edit, progress=Reporter(progress, "edit", 0.0, 0.5),
                                          cancel=cancel)
    renders, placements, gallery = _follow(s, sources, origin, changed,
                                           progress=Reporter(progress, "place", 0.5, 0.5), cancel=cancel)
    return EditPlan(edit, label, sources, renders, placements, gallery, changed)


def _state(s: "Session") -> tuple:
    """What an edit step restores; items 1 and 3 are the renders and the mode, as
    :mod:`app.memory` reads every undo state."""
    return (s.current, list(s.renders), list(s.placements), s.mono_compatible, list(s.sources),
            list(edits_of(s)), [None if g is None else list(g) for g in s.gallery])


def _installing(s: "Session") -> None:
    """Before other sources become current: the renders kept for the renditions and the pairs
    being filled are the old sources'."""
    s._stop_fillers()
    s._kept = {}


def _restore(s: "Session", state: tuple) -> None:
    current, renders, placements, mono_compatible, sources, edits, gallery = state
    _installing(s)
    if s.pairs:
        render_missing(renders, mono_compatible=s.mono_compatible, spill=s.spill_dir)
    s.sources, s.renders, s.placements = list(sources), list(renders), list(placements)
    s.edits, s.gallery = list(edits), list(gallery)
    s.memory.keep(s.renders)
    s._engine = None                       # other sources: the UI makes a new engine (Change.SOURCES)
    s._changed()
    s._emit("sources")
    s._emit("placements")


def adopt_edit(s: "Session", plan: EditPlan) -> None:
    """UI side (cheap): the planned sources become current, one undo step."""
    before = _state(s)
    after = (s.current, plan.renders, plan.placements, s.mono_compatible, plan.sources,
             edits_of(s) + [plan.edit], plan.gallery)
    s.undo.push(Command(plan.label, lambda: _restore(s, after), lambda: _restore(s, before),
                        states=(before, after), change=Change.SOURCES))


def apply_saved(s: "Session", edits: list[Edit], *, progress: Optional[ProgressFn] = None,
                cancel: Optional[threading.Event] = None) -> None:
    """Re-apply a project's edit list right after its separation (no rendition current yet, no
    undo step): the sources are the ones the edits made when the project was saved."""
    if not edits:
        return
    sources, origin, changed = apply_edits(s.sources, edits, progress=Reporter(progress, "edit", 0.0, 0.8),
                                           cancel=cancel)
    renders, placements, gallery = _follow(s, sources, origin, changed, progress=Reporter(progress, "edit", 0.8, 0.2),
                                           cancel=cancel)
    _installing(s)
    s.sources, s.renders, s.placements, s.gallery = sources, renders, placements, gallery
    s.edits = list(edits)
    s.memory.keep(s.renders)
    s._engine = None
    s._changed()
    s._emit("sources")
