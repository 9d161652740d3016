"""The controller's rendition and undo actions: a new rendition, going back to one in the gallery,
undo and redo, each heard at once where the state's mix (or its pairs) is kept, else made from the
playhead in a job.

:class:`RenditionActions` is a part of :class:`ui.controller.SessionController` (a mixin working on
its session, jobs and playback, see there), in a module of its own so that the controller module
holds the wiring, the adoption of jobs' results and the cheap edits.
"""
from __future__ import annotations

from typing import Optional

from app.memory import plan_restore, restore_needs_render
from app.undo import Change

from .jobs import Prepared
from .views import session_views

__all__ = ["RenditionActions"]


class RenditionActions:
    """New renditions, the gallery's recall, undo and redo of a :class:`SessionController`."""

    def _rendition_job(self, name: str, on_done=None, **kw):
        s = self.session
        # made from the playhead (heard at once, the rest fills in while it plays)
        playhead = self.engine.position if self.engine is not None else 0

        def fn(progress, cancel):
            plan = s.plan_rendition(progress=progress, cancel=cancel, playhead=playhead, **kw)
            return self._adopting(plan, plan.renders)

        return self.run_job(name, fn, on_done=on_done)

    def new_rendition(self, seed: Optional[int] = None, temperature: Optional[float] = None):
        if not self.session.renders:
            self.status.emit("Separate the recording first")
            return None
        # new places over a per-band detail already computed (its own when the background
        # prediction of it is done, else the current one's): no prediction to wait for
        s = self.session
        seed = s.next_seed() if seed is None else int(seed)
        detail = s.detail_for(seed, temperature=temperature)
        return self._rendition_job("New rendition", seed=seed, temperature=temperature, detail=detail,
                                   on_done=lambda _r: s.prefetch(s.next_seed(), temperature=temperature))

    def _plan_ahead(self) -> None:
        """The next rendition planned in the background for the state now current (the press of
        N then only makes its first block)."""
        s = self.session
        if s.renders and s.renditions:
            s.prefetch(s.next_seed())

    def recall(self, index: int):
        s = self.session
        if index == s.current or not 0 <= index < len(s.renditions):
            return None
        plan = None if self.busy else s.switch_at_once(index)
        if plan is not None:             # its mix (or its pairs) kept: the switch is heard from the next block
            self._deferring = True       # the widgets hear of it once the views follow
            try:
                self._install(Prepared(plan=plan))
            finally:
                self._deferring = False
            self.views = session_views(s)
            self._flush_events()
            self.engine_changed.emit()
            self._plan_ahead()
            self.status.emit(f"Rendition {index + 1}")
            return None
        return self._rendition_job(f"Rendition {index + 1}", index=index, on_done=lambda _r: self._plan_ahead())

    # --- undo -----------------------------------------------------------------------------------
    def _undo_or_redo(self, redo: bool) -> None:
        """An undo step runs here when it is cheap (the state it restores still has its auto
        renders in memory); otherwise the released renders are made again in a job first."""
        if self.busy:
            self.status.emit("Wait for the running task to finish (or cancel it)")
            return
        s = self.session
        if restore_needs_render(s, redo=redo):
            playhead = self.engine.position if self.engine is not None else 0   # heard from there at once

            def fn(progress, cancel):
                return Prepared(plan=plan_restore(s, redo=redo, playhead=playhead, progress=progress, cancel=cancel))
            self.run_job("Redo" if redo else "Undo", fn, on_done=lambda r: self._after_undo(r.adopted, redo))
            return
        self._after_undo(s.undo.redo() if redo else s.undo.undo(), redo)

    def _after_undo(self, cmd, redo: bool) -> None:
        if cmd is None:
            return
        if cmd.change is not Change.PLACES:      # the renders changed: views and engine follow
            self.views = session_views(self.session)
            if cmd.change is Change.SOURCES:     # other sources (an edit): another engine
                self.playback.set_engine(self.session.mix_engine(), self.session.snapshot())
            self.engine_changed.emit()
        self._push_snapshot()
        self.remeasure()
        if cmd.change is not Change.PLACES:
            self._plan_ahead()
        self.status.emit(f"{'Redo' if redo else 'Undo'}: {cmd.label}")

    def undo(self) -> None:
        self._undo_or_redo(False)

    def redo(self) -> None:
        self._undo_or_redo(True)
