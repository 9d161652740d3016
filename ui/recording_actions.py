"""The controller's recording actions: opening a recording, separating it into sources, and the
stereo reference new renditions follow.

:class:`RecordingActions` is a part of :class:`ui.controller.SessionController` (a mixin working on
its session and jobs, see there), in a module of its own like :mod:`ui.output_actions`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from app.plans import Rendition, SeparationPlan
from app.reference import MonoReference, ReferencePlan, notice, plan_reference, unlike_notice
from app.session import Session
from core.progress import Reporter, check_cancel

from .jobs import Prepared

__all__ = ["RecordingActions"]


class RecordingActions:
    """Open, separate and follow a reference, for a :class:`SessionController`."""

    def open_file(self, path, *, separate: bool = True, backend: Optional[str] = None,
                  settings: Optional[dict] = None):
        """Load a recording (a new session; the current one stays if it cannot be read), then, with
        ``separate``, separate it as a job of its own: a failed or cancelled separation leaves the
        recording loaded, ready for other settings."""
        path = Path(path)
        backend = backend or self.session.backend
        settings = dict(settings if settings is not None else self.session.backend_settings)
        model = self.session.model

        def fn(progress, cancel):
            s = Session(self.user)
            s.model = model
            s.open(path)
            check_cancel(cancel)
            return self._prepared(s, whole=separate, notes=s.input_notes)   # "6 channels downmixed to mono, resampled ..."

        def done(result: Prepared):
            self.prefs.add_recent(path)
            if result.notes:
                self.notice.emit("The recording was converted", "; ".join(result.notes))
            if separate:
                self.separate(backend, settings)

        return self.run_job(f"Open {path.name}", fn, on_done=done)

    def separate(self, backend: str, settings: dict):
        s = self.session
        if s.mono is None:
            self.status.emit("Open a recording first")
            return None
        first = not s.renditions
        replacing = bool(s.sources)           # the first separation of a recording is no edit; a new one is

        def fn(progress, cancel):
            # the first rendition's PS parameters depend on the recording alone: sampled on the
            # other core while separating (kept in the prediction cache, where the plan finds them)
            ahead = s.predict_ahead(Rendition(0, s.model, placement=s.placement, variety=s.variety),
                                    cancel=cancel) if first else None
            plan = s.plan_sources(backend, settings, progress=Reporter(progress, "separate", 0.0, 0.85),
                                  cancel=cancel)
            if ahead is not None:
                ahead.join()
            rplan = None
            if first:                       # its mix from where the whole mix plays now (the take-over)
                playhead = self.engine.position if self.engine is not None else 0
                rplan = s.plan_rendition(0, sources=plan, playhead=playhead,
                                         progress=Reporter(progress, "place", 0.85, 0.15), cancel=cancel)
            renders = rplan.renders if rplan is not None else plan.renders
            placements = rplan.placements if rplan is not None else plan.placements
            engine = Session.make_engine(renders, placements, mono_compatible=s.mono_compatible,
                                         bus=rplan.mix.buf if rplan is not None and rplan.mix is not None else None)
            return self._adopting(SeparationPlan(plan, rplan, engine), renders, engine=engine)

        def done(_):
            if replacing:
                self._generation += 1
                self._check_modified()
            if s.renditions:                # the next rendition's own detail, sampled while this one plays
                s.prefetch(s.next_seed())

        return self.run_job("Separate", fn, on_done=done)

    def follow_reference(self, path: Optional[Path]):
        """New renditions follow stereo file ``path`` (analysed in a job: its downmix separated with
        the session's separator, each of its sources measured in its own L/R, adopted on the UI
        thread), or none (``path`` None, at once). A mono or near-mono file is said in one line (a
        notice) and not used; one that sounds unlike the recording is said in one line too (its
        proposals are the placement model's alone)."""
        s = self.session
        if path is None:
            ReferencePlan(None).adopt(s)
            self.status.emit("New renditions follow no reference")
            return None
        if s.mono is None or not s.sources:
            self.status.emit("Separate the recording first: the reference is separated the same way")
            return None

        def fn(progress, cancel):
            try:
                return plan_reference(s, path, progress=progress, cancel=cancel)
            except MonoReference as exc:
                return notice(exc)

        def done(result):
            if isinstance(result, str):
                self.notice.emit("Reference not used", result)
                return
            result.adopt(self.session)
            unlike = unlike_notice(self.session, result.scene)
            if unlike:                 # kept (the gallery says it), but its places are not followed closely
                self.notice.emit("Reference followed loosely" if "loosely" in unlike else
                                 "Reference followed by some renditions" if "some renditions" in unlike else
                                 "Reference not followed",
                                 unlike)
                return
            self.status.emit(f"New renditions follow {result.scene.name} ({result.scene.n} sources)")

        return self.run_job(f"Reference {Path(path).name}", fn, on_done=done)
