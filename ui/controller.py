"""The UI's single owner of the session: every write to it goes through here.

The controller composes three parts (its export, project and output-stage actions live in
:mod:`ui.output_actions`, opening and separating in :mod:`ui.recording_actions`, renditions and undo in
:mod:`ui.rendition_actions`): the job runner
(:mod:`ui.jobs`: one heavy job at a time, progress, cancel, and a lane for measuring the output
gain), playback (:mod:`ui.playback_control`:
engine, device, transport, tick) and the preferences (:mod:`ui.preferences`). Heavy steps run as
jobs that return a typed :class:`ui.jobs.Prepared` (a new session, or a plan from :mod:`app.plans`
for the live one); it is adopted here, on the UI thread, when the job ends. Session events raised
while a job runs are replayed then, so widgets only ever see a consistent session. Cheap edits
(placements, A/B, transport) run on the UI thread and reach the engine by a snapshot swap. Widgets
read the view models it owns (``vms``, :mod:`ui.viewmodels`), which it sets from the session.
"""
from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Optional

from PyQt6.QtCore import QObject, QSettings, QThreadPool, pyqtSignal

from app.playback import MixEngine, snapshot_for, whole_mix_engine
from app.session import Session
from core import SAMPLE_RATE
from core.limits import VARIETY_RANGE, check_range
from core.placement import Placement

from .edit_actions import EditActions
from .jobs import KEEP, JobRunner, Prepared
from .output_actions import OutputActions
from .playback_control import Playback
from .preferences import Preferences
from .recording_actions import RecordingActions
from .rendition_actions import RenditionActions
from .viewmodels import ViewModels
from .views import Views, compute_views, session_views

__all__ = ["SessionController", "Views", "EVENT_ORDER"]

EVENT_ORDER = ("recording", "sources", "params", "renditions", "placements", "undo")
WHOLE_MIX_MAX_SECONDS = 20 * 60     # longer recordings play as they are until placed (the upmix would take long)


def original_engine(mono) -> Optional[MixEngine]:
    """An engine that plays the mono recording on both channels (before any separation)."""
    if mono is None:
        return None
    return MixEngine([mono], [mono], snapshot_for([Placement()], has_auto=[False], ab_original=True))


class SessionController(RecordingActions, RenditionActions, OutputActions, QObject):
    session_event = pyqtSignal(str)            # one of EVENT_ORDER, or "all"
    notice = pyqtSignal(str, str)              # title, message worth a look, not an error (e.g. a converted input)
    engine_changed = pyqtSignal()
    ab_changed = pyqtSignal(bool)
    output_changed = pyqtSignal()              # a new output gain was measured (preview and export share it)
    modified_changed = pyqtSignal(bool)        # the session differs from its project file (or the opened recording)
    views_changed = pyqtSignal()               # new display data (loudness, trajectories, the coloured spectrogram)

    def __init__(self, parent=None, *, settings: Optional[QSettings] = None):
        super().__init__(parent)
        self.prefs = Preferences(settings)
        self.settings = self.prefs.qsettings
        # The UI thread re-takes the GIL at every call into Python (each slot, each paint); with a
        # busy worker each re-take can wait a whole switch interval (5 ms by default), which adds
        # up to visible stalls. 1 ms keeps the UI thread's waits short.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        self.user = self.prefs.resolve()
        self.session = Session(self.user)
        self._attach(self.session)
        # the widgets' view models, set from the session before any widget hears of a change
        self.vms = ViewModels(self)
        self.output_vm = self.vms.output
        self.session_event.connect(lambda name: self.vms.sync(self.session, name))
        for signal in (self.engine_changed, self.ab_changed):
            signal.connect(self._sync_view_models)
        self.vms.sync(self.session)
        self.jobs = JobRunner(install=self._install, ended=self._flush_events, resync=self._resync, parent=self)
        self.playback = Playback(self.settings, parent=self)
        self.editing = EditActions(self)         # merge, split, move a region (issue 26)
        self._views = Views()
        self._pending: list[str] = []
        self._deferring = False                    # session events wait in _pending (see recall)
        self._drag_id = 0
        self._measure_again = False
        self._failed_state = None
        self.last_export = None
        self.project_path: Optional[Path] = None   # where Save writes (None: Save asks)
        self._generation = 0                       # changes outside the undo history (rename, re-separate)
        self._saved: tuple = ()
        self._modified = False
        self.mark_saved()
        # the parts' signals and transport, as the widgets know them
        for name in ("busy_changed", "job_progress", "status", "error", "run_job", "cancel"):
            setattr(self, name, getattr(self.jobs, name if name != "run_job" else "run"))
        self.playback.status.connect(self.jobs.status)
        for signal in (self.output_changed, self.session_event, self.jobs.busy_changed):
            signal.connect(self._sync_output_vm)
        for name in ("tick", "play_state", "toggle_play", "stop", "seek", "set_loop", "meters", "reopen_player"):
            setattr(self, name, getattr(self.playback, name))
        for signal in (self.tick, self.play_state, self.engine_changed, self.jobs.busy_changed):   # the transport's model
            signal.connect(lambda *_: self.vms.transport.sync(self.engine, self.playback_note, self.playback_detail))

    # the parts' state, read by the widgets
    busy = property(lambda self: self.jobs.busy)
    job = property(lambda self: self.jobs.job)
    measuring = property(lambda self: self.jobs.measuring)
    last_error = property(lambda self: self.jobs.last_error)
    last_exception = property(lambda self: self.jobs.last_exception,
                              lambda self, e: setattr(self.jobs, "last_exception", e))
    engine = property(lambda self: self.playback.engine)
    player = property(lambda self: self.playback.player)
    tap = property(lambda self: self.playback.tap)
    playing = property(lambda self: self.playback.playing)
    playback_note = property(lambda self: self.playback.playback_note)
    playback_detail = property(lambda self: self.playback.playback_detail)

    @property
    def views(self) -> Views:
        """What the views draw (computed with the renders in the job that made them)."""
        return self._views

    @views.setter
    def views(self, views: Views) -> None:
        self._views = views
        self.views_changed.emit()

    def _sync_view_models(self, *_) -> None:
        """The view models from the session as it is now (after a change no session event announces)."""
        self.vms.sync(self.session)
        self._sync_output_vm()

    # --- session events -------------------------------------------------------------------------
    def _attach(self, s: Session) -> None:
        s.subscribe(self._on_session_event)
        s.undo.on_change = lambda: self._on_session_event("undo")

    def _on_session_event(self, name: str) -> None:
        if threading.current_thread() is threading.main_thread() and not self._deferring:
            self.session_event.emit(name)
            self._check_modified()
        else:                       # a worker: replay on the UI thread when the job ends
            self._pending.append(name)

    def _flush_events(self) -> None:
        pending, self._pending = set(self._pending), []
        for name in EVENT_ORDER:
            if name in pending:
                self.session_event.emit(name)
        self._check_modified()

    # --- unsaved changes ------------------------------------------------------------------------
    def _state_key(self) -> tuple:
        """What tells one state of the session from another: the session, the undo history's top
        command (the object itself: a merged edit replaces it) and depth, and the changes the
        history does not hold."""
        top = self.session.undo.peek()
        return (self.session, self.session.undo.depth, top, self._generation)

    @property
    def modified(self) -> bool:
        """Whether the session has changes its project file (or the freshly opened recording) lacks."""
        return self._modified

    def mark_saved(self) -> None:
        """The session as it is now is saved (or freshly opened): not modified."""
        self.session.undo.end_merge()       # a drag or gain change after this is a new step
        self._saved = self._state_key()
        self._check_modified()

    def _check_modified(self) -> None:
        key, saved = self._state_key(), self._saved
        now = not (saved and key[0] is saved[0] and key[1] == saved[1] and key[2] is saved[2] and key[3] == saved[3])
        if now != self._modified:
            self._modified = now
            self.modified_changed.emit(now)

    # --- adopting what jobs prepared --------------------------------------------------------------
    def _resync(self) -> None:
        """After a failed or cancelled step: jobs never change the live session before they end,
        so there is nothing to undo; make sure the engine plays what the session holds."""
        s = self.session
        if s.renders and (self.engine is None or not self.playback.fits(s.snapshot())):
            self._install(Prepared(views=session_views(s), engine=s.mix_engine()))

    def _prepared(self, session: Session, *, whole: bool = False, **kw) -> Prepared:
        """Worker side, for a session no widget reads yet (a file or project being opened); before
        its separation the engine plays the recording itself, or with ``whole`` (a separation
        follows) the whole recording upmixed at once (the PS decoder with the Decorr baseline), so
        stereo is heard at once; the sources' mix takes over with a crossfade when they are placed."""
        if session.renders:
            engine = session.mix_engine()
        elif session.mono is not None and whole and len(session.mono) <= WHOLE_MIX_MAX_SECONDS * SAMPLE_RATE:
            engine = whole_mix_engine(session.mono, session.whole_mix())
        else:
            engine = original_engine(session.mono)
        return Prepared(session=session, views=session_views(session), engine=engine,
                        player=self._probe(engine), **kw)

    def _adopting(self, plan, renders, *, engine=KEEP, **adopt_args) -> Prepared:
        """Worker side, for the live session: ``plan`` is adopted on the UI thread; the views of
        the planned ``renders`` are computed here (and with a new ``engine`` the device probed)."""
        return Prepared(plan=plan, adopt_args=adopt_args, views=compute_views(renders, placed=True), engine=engine,
                        player=None if engine is KEEP else self._probe(engine))

    def _probe(self, engine) -> Optional[tuple]:
        """The audio device for the first engine (probing is slow: not on the UI thread)."""
        return self.playback.make_player(engine) if engine is not None and self.player is None else None

    def _install(self, r: Prepared) -> None:
        """UI side: adopt what a job prepared (a new session, or a plan for the live one; engine, views)."""
        if r.session is not None and r.session is not self.session:
            self.session = r.session
            self._attach(self.session)
            self.project_path = r.project_path   # a recording (None) or a project file
            self.mark_saved()                    # just opened: nothing to save
            self._pending.extend(EVENT_ORDER)
        if r.plan is not None:
            r.adopted = r.plan.adopt(self.session, **r.adopt_args)
        if r.views is not None:
            self.views = r.views
        if r.player is not None:
            self.playback.install_player(r.player)
        if r.engine is not KEEP:
            self.playback.set_engine(r.engine, self.session.snapshot() if self.session.renders else None)
            self.engine_changed.emit()
        else:
            self._push_snapshot()
        self.remeasure()

    # --- cheap edits ----------------------------------------------------------------------------
    def _push_snapshot(self) -> None:
        if self.engine is not None and self.session.renders:
            self.playback.push(self.session.snapshot())

    def set_placement(self, i: int, p: Placement, *, label: str = "edit source", merge_key=None) -> None:
        if self.busy:
            self.status.emit("Wait for the running task to finish (or cancel it)")
            return
        self.session.set_placement(i, p, merge_key=merge_key, label=label)
        self._push_snapshot()
        self.remeasure()

    def begin_drag(self, i: int) -> None:
        self._drag_id += 1

    def drag_to(self, i: int, pan: float, width: float) -> None:
        """Live drag: the engine hears the new place at once; the session records one undo step."""
        s = self.session
        if self.busy or not 0 <= i < len(s.placements):
            return
        p = s.placements[i].moved(pan, width)
        placements = list(s.placements)
        placements[i] = p
        self.playback.push(s.snapshot(placements))
        s.set_placement(i, p, merge_key=("drag", self._drag_id), label=f"move {s.sources[i].name}")

    def end_drag(self, i: int) -> None:
        self.end_edit()

    def end_edit(self) -> None:
        """A drag or a gain change has ended: the next one is an undo step of its own."""
        self.session.undo.end_merge()
        self.remeasure()

    def set_region(self, span) -> None:
        """The marked loop region (start, end) in seconds, or None (saved in the project)."""
        span = None if span is None else (round(float(span[0]), 3), round(float(span[1]), 3))
        if span != self.session.loop_region:
            self.session.loop_region = span
            self._generation += 1
            self.vms.timeline.sync(self.session)
            self._check_modified()

    def set_variety(self, value: float) -> None:
        """How far new renditions go from real mixes (0 .. 1); the session checks the range."""
        self.session.variety = check_range("variety", value, VARIETY_RANGE)
        self.vms.renditions.sync(self.session)

    def set_model(self, name: str) -> None:
        """The PS model new renditions sample."""
        self.session.model = name
        self.vms.renditions.sync(self.session)

    def reset_placement(self, i: int):
        """Back to the model's proposal: the source's auto render is made in a job."""
        s = self.session
        if self.busy or not 0 <= i < len(s.placements):
            return None

        def fn(progress, cancel):
            plan = s.plan_reset(i, progress=progress, cancel=cancel)
            return Prepared() if plan is None else self._adopting(plan, plan.renders)

        return self.run_job(f"Reset {s.sources[i].name}", fn)

    def rename(self, i: int, name: str) -> None:
        name = name.strip()
        if name and 0 <= i < len(self.session.sources) and self.session.sources[i].name != name:
            self.session.sources[i].name = name
            self._generation += 1
            self.session_event.emit("sources")
            self._check_modified()

    def set_ab(self, original: bool) -> None:
        self.session.ab_original = bool(original)
        self._push_snapshot()
        self.ab_changed.emit(self.session.ab_original)
        self.status.emit("A/B: the mono original" if original else "A/B: the stereo render")

    # --- preferences and recent files -----------------------------------------------------------
    def resolve_settings(self):
        return self.prefs.resolve()

    def apply_settings(self) -> None:
        """After the preferences changed: the next sessions and jobs use the new settings (the
        open session too, from its next separation or prediction)."""
        self.user = self.prefs.resolve()
        self.session.settings = self.user

    def recent_files(self) -> list[str]:
        return self.prefs.recent_files()

    def recent_projects(self) -> list[str]:
        return self.prefs.recent_projects()

    def shutdown(self) -> None:
        self.jobs.shutdown()
        self.playback.shutdown()
        QThreadPool.globalInstance().waitForDone(5000)   # cancelled jobs stop at their next step
