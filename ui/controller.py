"""The UI's single owner of the session: jobs, playback, and the session's events as Qt signals.

Widgets read the session through ``ctl.session`` and act through the controller's methods; they
never call heavy session steps themselves. Heavy steps (open, separate, new rendition, recall,
undo of a rendition switch, export, project load) run as :class:`ui.workers.Job`s, one at a time.
Session events raised inside a worker are held back and replayed on the UI thread when the job
ends, so widgets only ever see a consistent session. Cheap edits (placements, A/B, transport) run
on the UI thread and reach the audio engine by a snapshot swap.
"""
from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from PyQt6.QtCore import QObject, QSettings, QTimer, pyqtSignal

from app.display import ClockPlayer, OutputTap, TappedPlayer, dominance, meter_values
from app.playback import MixEngine, PlaybackUnavailable
from app.output import export as write_export
from app.plans import Change
from app.session import Session
from app.settings import STORED, Settings
from core.errors import Cancelled
from core.placement import Placement, ic_to_width, iid_to_pan
from core.progress import check_cancel

from .workers import Job, TimeLeft, start_job
from app.memory import adopt_restore, plan_restore, restore_needs_render
from app.project_io import load_project, save_project

__all__ = ["SessionController", "Views", "EVENT_ORDER"]

EVENT_ORDER = ("recording", "sources", "params", "renditions", "placements", "undo")


@dataclass
class Views:
    """What the views draw, computed in the worker with the session it describes."""
    dominant: Optional[np.ndarray] = None      # [bands, frames] source index
    level: Optional[np.ndarray] = None         # [bands, frames] 0..1
    traj_pan: Optional[np.ndarray] = None      # [sources, frames] (NaN: silent)
    traj_width: Optional[np.ndarray] = None
    loudness_db: list = field(default_factory=list)   # per source, dB re the loudest


def compute_views(renders, *, placed: bool) -> Views:
    """The views of sources with precomputed ``renders``; ``placed``: a rendition is current, so
    the "auto" trajectories of the renders are drawn too."""
    if not renders:
        return Views()
    energies = np.stack([r.energy for r in renders])
    dom, level = dominance(energies)
    mean = energies.mean(axis=(1, 2))
    loud = 10 * np.log10(np.maximum(mean / max(float(mean.max()), 1e-20), 1e-6))
    v = Views(dom, level, loudness_db=[float(x) for x in loud])
    if placed and all(r.iid_t is not None for r in renders):   # what "auto" sources play
        frames = min(len(r.iid_t) for r in renders)
        v.traj_pan = np.stack([iid_to_pan(r.iid_t[:frames]) for r in renders]).astype(np.float32)
        v.traj_width = np.stack([ic_to_width(r.ic_t[:frames]) for r in renders]).astype(np.float32)
    return v


def session_views(session: Session) -> Views:
    return compute_views(session.renders, placed=0 <= session.current < len(session.renditions))


class SessionController(QObject):
    session_event = pyqtSignal(str)            # one of EVENT_ORDER, or "all"
    busy_changed = pyqtSignal(bool)
    job_progress = pyqtSignal(str, float, str)  # stage/message, fraction, time left
    status = pyqtSignal(str)                   # a status-bar message
    error = pyqtSignal(str, str)               # title, message (shown in the window)
    notice = pyqtSignal(str, str)              # title, message worth a look, not an error (e.g. a converted input)
    engine_changed = pyqtSignal()
    tick = pyqtSignal()                        # ~30 Hz while the window lives (playhead, meters)
    ab_changed = pyqtSignal(bool)
    play_state = pyqtSignal(bool)
    output_changed = pyqtSignal()              # a new output gain was measured (preview and export share it)
    modified_changed = pyqtSignal(bool)        # the session differs from its project file (or the opened recording)

    def __init__(self, parent=None, *, settings: Optional[QSettings] = None):
        super().__init__(parent)
        self.settings = settings or QSettings("Soundstage", "Soundstage")
        # The UI thread re-takes the GIL at every call into Python (each slot, each paint); with a
        # busy worker each re-take can wait a whole switch interval (5 ms by default), which adds
        # up to visible stalls. 1 ms keeps the UI thread's waits short.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        self.user = self.resolve_settings()
        self.session = Session(self.user)
        self._attach(self.session)
        self.engine: Optional[MixEngine] = None
        self.player = None
        self.tap = OutputTap(16384)            # ~370 ms: the meters' peak readout misses no sample between ticks
        self.playback_note = ""
        self.playback_detail = ""
        self.views = Views()
        self.job: Optional[Job] = None
        self._pending: list[str] = []
        self._time_left: Optional[TimeLeft] = None
        self._drag_id = 0
        self._measuring: Optional[threading.Thread] = None
        self._measure_cancel = threading.Event()
        self._measure_again = False
        self._measured = False
        self._failed_state = None
        self.last_export = None
        self.last_error = ""
        self.last_exception: Optional[BaseException] = None
        self.project_path: Optional[Path] = None   # where Save writes (None: Save asks)
        self._generation = 0                       # changes outside the undo history (rename, re-separate)
        self._saved: tuple = ()
        self._modified = False
        self.mark_saved()
        self._clock = QTimer(self)
        self._clock.setInterval(33)
        self._clock.timeout.connect(self._on_tick)
        self._last_tick = time.monotonic()
        self._clock.start()

    # --- session events -------------------------------------------------------------------------
    def _attach(self, s: Session) -> None:
        s.subscribe(self._on_session_event)
        s.undo.on_change = lambda: self._on_session_event("undo")

    def _on_session_event(self, name: str) -> None:
        if threading.current_thread() is threading.main_thread():
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
        done = self.session.undo._done
        return (self.session, len(done), done[-1] if done else None, self._generation)

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

    # --- jobs -----------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.job is not None

    def run_job(self, name: str, fn: Callable, on_done: Optional[Callable] = None) -> Optional[Job]:
        """Start ``fn(progress, cancel)`` in a worker; ``on_done(result)`` runs on the UI thread."""
        if self.job is not None:
            self.status.emit(f"Busy: {self.job.name} is running (cancel it first)")
            return None
        job = Job(name, fn)
        self.job = job
        # what exists now is long-lived (Qt, numpy, models): keep it out of the cyclic collector's
        # full passes, which would otherwise stall the UI thread for hundreds of milliseconds
        gc.freeze()
        self._time_left = TimeLeft()
        job.signals.progress.connect(self._on_progress)
        job.signals.finished.connect(lambda result: self._job_finished(job, result, on_done))
        job.signals.failed.connect(lambda msg, tb: self._job_failed(job, msg, tb))
        job.signals.cancelled.connect(lambda: self._job_cancelled(job))
        self.busy_changed.emit(True)
        self.job_progress.emit(name, 0.0, TimeLeft.text(None))
        self.status.emit(f"{name}…")
        start_job(job)
        return job

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel.set()
            self.status.emit(f"Cancelling {self.job.name}…")

    def _on_progress(self, p) -> None:
        if self.job is None:
            return
        left = self._time_left.update(p.fraction) if self._time_left else None
        label = self.job.name + (f": {p.stage}" if p.stage else "")
        self.job_progress.emit(label, p.fraction, TimeLeft.text(left))

    def _end_job(self, job: Job) -> None:
        if self.job is job:
            self.job = None
        self._flush_events()
        self.busy_changed.emit(False)

    def _job_finished(self, job, result, on_done) -> None:
        if isinstance(result, dict):
            self._install(result)
        self._end_job(job)
        secs = time.monotonic() - job.started_at if job.started_at else 0.0
        self.status.emit(f"{job.name}: done in {secs:.1f} s")
        if on_done is not None:
            on_done(result)

    def _job_failed(self, job, msg, tb) -> None:
        self._end_job(job)
        self._resync()
        self.last_error = msg
        self.last_exception = job.error
        self.status.emit(f"{job.name} failed: {msg}")
        self.error.emit(f"{job.name} failed", msg)

    def _job_cancelled(self, job) -> None:
        self._end_job(job)
        self._resync()
        self.status.emit(f"{job.name} cancelled; nothing was changed")

    def _resync(self) -> None:
        """After a failed or cancelled step: jobs never change the live session before they end,
        so there is nothing to undo; make sure the engine plays what the session holds."""
        s = self.session
        if s.renders and (self.engine is None or not self._fits(s.snapshot())):
            self._install({"views": session_views(s), "engine": s.mix_engine()})

    def _refresh(self, session: Session) -> dict:
        """Worker side, for a session no widget reads yet (a file or project being opened): its
        engine and views."""
        out = {"session": session, "views": session_views(session)}
        out["engine"] = engine = session.mix_engine() if session.renders else None
        if engine is not None and self.player is None:
            out["player"] = self._make_player(engine)    # device probing is slow: not on the UI thread
        return out

    def _adopting(self, adopt: Callable[[], None], renders, *, engine: Optional[MixEngine] = None) -> dict:
        """Worker side, for the live session: ``adopt`` (cheap) makes the planned state current on
        the UI thread when the job ends; the views of the planned ``renders`` are computed here, and
        with a new ``engine`` (new sources) the audio device is probed here too."""
        out = {"adopt": adopt, "views": compute_views(renders, placed=True)}
        if engine is not None:
            out["engine"] = engine
            if self.player is None:
                out["player"] = self._make_player(engine)
        return out

    def _install(self, result: dict) -> None:
        """UI side: adopt what a job prepared (a new session, or a plan for the live one; engine, views)."""
        if result.get("session") is not None and result["session"] is not self.session:
            self.session = result["session"]
            self._attach(self.session)
            self.project_path = result.get("project_path")   # a recording (None) or a project file
            self.mark_saved()                                # just opened: nothing to save
            self._pending.append("recording")
            self._pending.extend(EVENT_ORDER)
        if result.get("adopt") is not None:
            result["adopt"]()
        if "views" in result:
            self.views = result["views"]
        if result.get("player") is not None and self.player is None:
            self.player, self.playback_note, self.playback_detail = result["player"]
            if self.playback_detail:
                self.status.emit(f"No sound: {self.playback_detail}")
        if "engine" in result:
            self._set_engine(result["engine"])
        else:
            self._push_snapshot()
        self.remeasure()

    # --- heavy steps ----------------------------------------------------------------------------
    def open_file(self, path, *, separate: bool = True, backend: Optional[str] = None,
                  settings: Optional[dict] = None) -> Optional[Job]:
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
            with _input_notes() as notes:     # "6 channels downmixed to mono, resampled from ..."
                s.open(path)
            check_cancel(cancel)
            return {**self._refresh(s), "notes": notes}

        def done(result):
            self.add_recent(path)
            if result.get("notes"):
                self.notice.emit("The recording was converted", "; ".join(result["notes"]))
            if separate:
                self.separate(backend, settings)

        return self.run_job(f"Open {path.name}", fn, on_done=done)

    def separate(self, backend: str, settings: dict) -> Optional[Job]:
        s = self.session
        if s.mono is None:
            self.status.emit("Open a recording first")
            return None
        first = not s.renditions
        replacing = bool(s.sources)           # the first separation of a recording is no edit; a new one is

        def fn(progress, cancel):
            plan = s.plan_sources(backend, settings, progress=_sub(progress, "separate", 0.0, 0.85), cancel=cancel)
            rplan = None
            if first:
                rplan = s.plan_rendition(0, sources=plan, progress=_sub(progress, "place", 0.85, 0.15),
                                         cancel=cancel)

            renders = rplan.renders if rplan is not None else plan.renders
            placements = rplan.placements if rplan is not None else plan.placements
            engine = Session.make_engine(renders, placements, mono_compatible=s.mono_compatible)

            def adopt():
                if replacing:
                    self._generation += 1
                s.adopt_sources(plan, engine=engine)
                if rplan is not None:
                    s.adopt_rendition(rplan, record=False)
                    s.undo.clear()

            return self._adopting(adopt, renders, engine=engine)

        return self.run_job("Separate", fn)

    def new_rendition(self, seed: Optional[int] = None, temperature: Optional[float] = None) -> Optional[Job]:
        s = self.session
        if not s.renders:
            self.status.emit("Separate the recording first")
            return None

        def fn(progress, cancel):
            plan = s.plan_rendition(seed, temperature=temperature, progress=progress, cancel=cancel)
            return self._adopting(lambda: s.adopt_rendition(plan), plan.renders)

        return self.run_job("New rendition", fn)

    def recall(self, index: int) -> Optional[Job]:
        s = self.session
        if index == s.current or not 0 <= index < len(s.renditions):
            return None

        def fn(progress, cancel):
            plan = s.plan_rendition(index=index, progress=progress, cancel=cancel)
            return self._adopting(lambda: s.adopt_rendition(plan), plan.renders)

        return self.run_job(f"Rendition {index + 1}", fn)

    def export(self, path, *, fmt: str, stems: bool, overwrite: bool = True,
               on_done: Optional[Callable] = None) -> Optional[Job]:
        s = self.session
        if not s.renders:
            self.status.emit("Nothing to export yet: separate the recording first")
            return None

        def fn(progress, cancel):
            return write_export(s, path, fmt=fmt, stems=stems, overwrite=overwrite, progress=progress)

        def done(res):
            self.last_export = res
            self._push_snapshot()                 # the gain the export measured is the preview's too
            self.output_changed.emit()
            self.status.emit(f"Exported {res.path}: {res.summary()}")
            if on_done:
                on_done(res)

        return self.run_job("Export", fn, on_done=done)

    def export_dawproject(self, path) -> Optional[Job]:
        """Write the session as a DAWproject file (one track per source, the mono original muted)."""
        s = self.session
        if not s.renders:
            self.status.emit("Nothing to hand off yet: separate the recording first")
            return None

        def fn(progress, cancel):
            from app.dawproject import write_dawproject
            return write_dawproject(s, path, overwrite=True, progress=progress)

        def done(res):
            self._push_snapshot()
            self.output_changed.emit()
            self.status.emit(f"Wrote DAW project {res} ({len(s.sources)} source tracks and the mono original, "
                             f"{s.output_plan.describe()})")

        return self.run_job("Export DAW project", fn, on_done=done)

    def load_project(self, path) -> Optional[Job]:
        path = Path(path)

        def fn(progress, cancel):
            session = load_project(path, settings=self.user, progress=progress, cancel=cancel)
            return {**self._refresh(session), "project_path": path}

        return self.run_job(f"Open project {path.name}", fn, on_done=lambda r: self.add_recent(path))

    def save_project(self, path) -> Path:
        """Write the project file (atomically); Save writes there from now on."""
        p = save_project(self.session, path)
        self.project_path = p
        self.mark_saved()
        self.status.emit(f"Project saved to {p}")
        self.add_recent(p)
        return p

    # --- undo -----------------------------------------------------------------------------------
    def _undo_or_redo(self, redo: bool) -> None:
        """An undo step runs here when it is cheap (the state it restores still has its auto
        renders in memory); otherwise the released renders are made again in a job first."""
        if self.busy:
            self.status.emit("Wait for the running task to finish (or cancel it)")
            return
        s = self.session
        if restore_needs_render(s, redo=redo):
            def fn(progress, cancel):
                plan = plan_restore(s, redo=redo, progress=progress, cancel=cancel)
                return {"adopt": lambda: self._after_undo(adopt_restore(s, plan), redo)}
            self.run_job("Redo" if redo else "Undo", fn)
            return
        stack = s.undo
        self._after_undo(stack.redo() if redo else stack.undo(), redo)

    def _after_undo(self, cmd, redo: bool) -> None:
        if cmd is None:
            return
        if cmd.change is not Change.PLACES:      # the renders changed: views and engine follow
            self.views = session_views(self.session)
            self.engine_changed.emit()
        self._push_snapshot()
        self.remeasure()
        self.status.emit(f"{'Redo' if redo else 'Undo'}: {cmd.label}")

    def undo(self) -> None:
        self._undo_or_redo(False)

    def redo(self) -> None:
        self._undo_or_redo(True)

    # --- cheap edits ----------------------------------------------------------------------------
    def _fits(self, snap) -> bool:
        """Whether ``snap`` is for the engine's rows (a job may be replacing the sources)."""
        return self.engine is not None and snap.coefs.shape == self.engine.snapshot.coefs.shape

    def _push_snapshot(self) -> None:
        if self.engine is not None and self.session.renders:
            snap = self.session.snapshot()
            if self._fits(snap):
                self.engine.set_snapshot(snap)

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
        snap = s.snapshot(placements)
        if self._fits(snap):
            self.engine.set_snapshot(snap)
        s.set_placement(i, p, merge_key=("drag", self._drag_id), label=f"move {s.sources[i].name}")

    def end_drag(self, i: int) -> None:
        self.session.undo.end_merge()
        self.remeasure()

    def reset_placement(self, i: int) -> Optional[Job]:
        """Back to the model's proposal: the source's auto render is made in a job."""
        s = self.session
        if self.busy or not 0 <= i < len(s.placements):
            return None

        def fn(progress, cancel):
            plan = s.plan_reset(i, progress=progress, cancel=cancel)
            if plan is None:
                return {"adopt": None}
            return self._adopting(lambda: s.adopt_reset(plan), plan.renders)

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

    # --- playback -------------------------------------------------------------------------------
    def _set_engine(self, engine: Optional[MixEngine]) -> None:
        old = self.engine
        if engine is not None and old is not None:
            engine.position = min(old.position, engine.length)
            engine.loop = old.loop
            engine.playing = old.playing
        self.engine = engine
        if engine is not None:
            engine.set_snapshot(self.session.snapshot())
            if self.player is None:
                self._open_player(engine)
            else:
                self.player.engine = engine
        if old is not None and engine is not old:
            old.playing = False
        self.engine_changed.emit()

    def _make_player(self, engine: MixEngine):
        """(player, note, problem): a device player, or the silent clock and why."""
        device = self.settings.value("audio/device", "", str) or None
        try:
            p = TappedPlayer(engine, device=device, tap=self.tap)
            return p, f"Output: {p.device_name}", ""
        except PlaybackUnavailable as exc:
            return ClockPlayer(engine, tap=self.tap), "No audio output: silent preview", str(exc)
        except Exception as exc:   # a device that refuses the stream
            return ClockPlayer(engine, tap=self.tap), "No audio output: silent preview", f"the audio device failed ({exc})"

    def _open_player(self, engine: MixEngine) -> None:
        self.player, self.playback_note, self.playback_detail = self._make_player(engine)
        if self.playback_detail:
            self.status.emit(f"No sound: {self.playback_detail}")

    # --- the output stage (one gain for preview and export) ---------------------------------------
    def remeasure(self) -> None:
        """Measure the output gain of the mix as it is now, in a background thread (the full mix's
        true peak takes about a second a minute); the tick applies it to the preview."""
        s = self.session
        if not s.renders or s.output_plan_current() or s.output_state() == self._failed_state:
            return
        if self._measuring is not None and self._measuring.is_alive():
            self._measure_again = True
            return
        self._measure_again = False

        def work(session=s, state=s.output_state()):
            try:
                session.plan_output(cancel=self._measure_cancel)
            except Cancelled:
                return
            except Exception as exc:  # a failed measurement keeps the last gain; say why, once
                self._failed_state = state
                self.last_error = f"measuring the output gain failed: {exc}"
            self._measured = True

        self._measuring = threading.Thread(target=work, name="output-gain", daemon=True)
        self._measuring.start()

    def _output_tick(self) -> None:
        if self._measured:
            self._measured = False
            self._push_snapshot()
            self.output_changed.emit()
            if self._measure_again or not self.session.output_plan_current():
                self.remeasure()

    def set_mono_compatible(self, on: bool) -> Optional[Job]:
        """Mono-compatible mode on or off: the auto sources are rendered again in a job."""
        s = self.session
        if self.busy or not s.renders:
            return None

        def fn(progress, cancel):
            plan = s.plan_mono_compatible(on, progress=progress, cancel=cancel)
            if plan is None:
                return {"adopt": None}
            return self._adopting(lambda: s.adopt_mono_compatible(plan), plan.renders)

        def done(_):
            self.status.emit("Mono-compatible: (L + R) / 2 is the recording" if on else "Mono-compatible off")

        return self.run_job("Mono-compatible" if on else "Mono-compatible off", fn, on_done=done)

    def set_output(self, settings) -> None:
        """New output-stage settings (ceiling, keep loudness): re-measured, then heard."""
        self.session.set_output(settings)
        self._generation += 1                 # saved in the project, not in the undo history
        self._check_modified()
        self.remeasure()

    def reopen_player(self) -> None:
        if self.player is not None:
            self.player.close()
            self.player = None
        if self.engine is not None:
            self._open_player(self.engine)

    @property
    def playing(self) -> bool:
        return bool(self.engine is not None and self.engine.playing)

    def toggle_play(self) -> None:
        if self.player is None:
            return
        if self.engine.playing:
            self.player.pause()
        else:
            self.player.play()
        self.play_state.emit(self.engine.playing)

    def stop(self) -> None:
        if self.player is not None:
            self.player.stop()
            self.play_state.emit(False)

    def seek(self, seconds: float) -> None:
        if self.engine is not None:
            self.engine.seek(int(seconds * self.engine.sample_rate))
            self.tick.emit()

    def set_loop(self, start_s: Optional[float], end_s: Optional[float]) -> None:
        if self.engine is None:
            return
        if start_s is None:
            self.engine.set_loop(None, None)
        else:
            sr = self.engine.sample_rate
            self.engine.set_loop(int(start_s * sr), int(end_s * sr))

    def meters(self, n: int = 2048):
        return meter_values(self.tap.last(n))

    def _on_tick(self) -> None:
        now = time.monotonic()
        dt, self._last_tick = min(now - self._last_tick, 0.25), now
        if isinstance(self.player, ClockPlayer) and self.engine is not None and self.engine.playing:
            self.player.pull(dt)
            if not self.engine.playing:
                self.play_state.emit(False)
        self._output_tick()
        self.tick.emit()

    # --- preferences and recent files -----------------------------------------------------------
    def resolve_settings(self) -> Settings:
        """The user's settings: the environment, then the stored preferences, then the defaults
        (a stored cache size of 0 means the default)."""
        stored = {key: self.settings.value(key, "") for key in STORED.values()}
        if str(stored.get(STORED["cache_max_mb"])) in ("0", "0.0"):
            stored[STORED["cache_max_mb"]] = ""
        return Settings.resolve(stored=stored)

    def apply_settings(self) -> None:
        """After the preferences changed: the next sessions and jobs use the new settings (the
        open session too, from its next separation or prediction)."""
        self.user = self.resolve_settings()
        self.session.settings = self.user

    def recent_files(self) -> list[str]:
        files = self.settings.value("recent/files", [], list) or []
        return [f for f in files if isinstance(f, str)]

    def add_recent(self, path) -> None:
        p = str(Path(path).resolve())
        files = [p] + [f for f in self.recent_files() if f != p]
        self.settings.setValue("recent/files", files[:8])

    def shutdown(self) -> None:
        self._clock.stop()
        self._measure_cancel.set()
        if self._measuring is not None:
            self._measuring.join(timeout=5.0)     # it stops at its next step
        if self.job is not None:
            self.job.cancel.set()
        if self.player is not None:
            self.player.close()


@contextmanager
def _input_notes():
    """The notes :mod:`core.audio` logs (INFO) in this thread while the block runs, as a list."""
    notes: list[str] = []
    me = threading.get_ident()

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.thread == me:
                notes.append(record.getMessage())

    logger = logging.getLogger("core.audio")
    handler, level = _Collect(logging.INFO), logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield notes
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _sub(progress, stage: str, start: float, span: float):
    from core.progress import Reporter
    return Reporter(progress, stage, start, span)
