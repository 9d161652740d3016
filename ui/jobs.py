"""The job runner: one heavy job at a time, its progress, time left and cancel, as Qt signals.

A job is ``fn(progress, cancel)`` run in a pool thread (:class:`ui.workers.Job`) that returns a
:class:`Prepared`: what it computed for the UI thread (a new session, or a typed plan for the live
one, with the views, the playback engine and the audio device it probed). The runner hands the
result to its ``install`` hook on the UI thread, so no background thread writes the session.
Measuring the output gain runs in a lane of its own (:meth:`JobRunner.measure`): it never blocks
the user's jobs and never shows as busy.
"""
from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from PyQt6.QtCore import QObject, pyqtSignal

from .workers import Job, TimeLeft, start_job

__all__ = ["JobRunner", "Prepared", "KEEP"]

KEEP = object()     # Prepared.engine: keep the engine that plays now


@dataclass
class Prepared:
    """A job's typed result: what the UI thread adopts when the job ends.

    ``session``: a new session (a file or project opened; ``project_path`` where Save writes);
    ``plan``: a plan from :mod:`app.plans` for the live session, adopted by ``plan.adopt(session,
    **adopt_args)`` (its return value lands in ``adopted``); ``views`` what the views draw;
    ``engine`` the new playback engine (:data:`KEEP`: the one playing stays and follows by
    snapshot); ``player`` an audio device probed in the worker; ``notes`` what the user should know."""
    session: Any = None
    project_path: Optional[Path] = None
    plan: Any = None
    adopt_args: dict = field(default_factory=dict)
    views: Any = None
    engine: Any = KEEP
    player: Optional[tuple] = None
    notes: list[str] = field(default_factory=list)
    adopted: Any = None


class JobRunner(QObject):
    """Runs the controller's jobs; ``install(result)`` adopts a finished job's :class:`Prepared`,
    ``ended()`` replays the session's events, ``resync()`` repairs after a failure or cancel."""
    busy_changed = pyqtSignal(bool)
    job_progress = pyqtSignal(str, float, str)  # stage/message, fraction, time left
    status = pyqtSignal(str)
    error = pyqtSignal(str, str)                # title, message

    def __init__(self, *, install: Callable, ended: Callable, resync: Callable, parent=None):
        super().__init__(parent)
        self._install, self._ended, self._resync = install, ended, resync
        self.job: Optional[Job] = None
        self.measure_job: Optional[Job] = None
        self._time_left: Optional[TimeLeft] = None
        self.last_error = ""
        self.last_exception: Optional[BaseException] = None
        self._closed = False            # after shutdown, late results are dropped

    @property
    def busy(self) -> bool:
        return self.job is not None

    def run(self, name: str, fn: Callable, on_done: Optional[Callable] = None) -> Optional[Job]:
        """Start ``fn(progress, cancel)`` in a worker; ``on_done(result)`` runs on the UI thread
        after the result was installed. None (and a status message) while another job runs."""
        if self.job is not None:
            self.status.emit(f"Busy: {self.job.name} is running (cancel it first)")
            return None
        job = Job(name, fn)
        self.job = job
        # what exists now is long-lived (Qt, numpy, models): keep it out of the cyclic collector's
        # full passes, which would otherwise stall the UI thread for hundreds of milliseconds
        gc.freeze()
        self._time_left = TimeLeft()
        self._on_done = on_done
        # bound methods of this QObject: Qt drops the connections when the runner goes away
        job.signals.progress.connect(self._on_progress)
        job.signals.finished.connect(self._finished)
        job.signals.failed.connect(self._failed)
        job.signals.cancelled.connect(self._cancelled)
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

    def _end(self) -> Job:
        job, self.job = self.job, None
        self._ended()
        self.busy_changed.emit(False)
        return job

    def _finished(self, result) -> None:
        if self._closed:
            return
        if isinstance(result, Prepared):
            self._install(result)
        job, on_done = self._end(), self._on_done
        secs = time.monotonic() - job.started_at if job.started_at else 0.0
        self.status.emit(f"{job.name}: done in {secs:.1f} s")
        if on_done is not None:
            on_done(result)

    def _failed(self, msg: str, tb: str) -> None:
        if self._closed:
            return
        job = self._end()
        self._resync()
        self.last_error = msg
        self.last_exception = job.error
        self.status.emit(f"{job.name} failed: {msg}")
        self.error.emit(f"{job.name} failed", msg)

    def _cancelled(self) -> None:
        if self._closed:
            return
        job = self._end()
        self._resync()
        self.status.emit(f"{job.name} cancelled; nothing was changed")

    # --- the measuring lane ---------------------------------------------------------------------
    @property
    def measuring(self) -> bool:
        return self.measure_job is not None

    def measure(self, fn: Callable, on_done: Callable, on_failed: Callable) -> Job:
        """Run ``fn(progress, cancel)`` in the measuring lane; ``on_done(result)`` or
        ``on_failed(message)`` on the UI thread (a cancelled measurement just ends)."""
        job = Job("measure output", fn)
        self.measure_job, self._measure_then = job, (on_done, on_failed)
        job.signals.finished.connect(self._measured)
        job.signals.failed.connect(self._measure_failed)
        job.signals.cancelled.connect(self._measure_cancelled)
        start_job(job)
        return job

    def _measured(self, result) -> None:
        self.measure_job = None
        if not self._closed:
            self._measure_then[0](result)

    def _measure_failed(self, msg: str, tb: str) -> None:
        self.measure_job = None
        if not self._closed:
            self._measure_then[1](msg)

    def _measure_cancelled(self) -> None:
        self.measure_job = None

    def shutdown(self) -> None:
        self._closed = True
        for job in (self.job, self.measure_job):
            if job is not None:
                job.cancel.set()
