"""Running the session's heavy steps off the UI thread.

A :class:`Job` wraps a callable ``fn(progress, cancel)`` in a ``QRunnable`` for the global
``QThreadPool``. The thin adapter :class:`JobSignals` turns the engine's plain progress callback
(:class:`core.progress.Progress`) and its :class:`core.errors.Cancelled` exception into Qt signals,
which Qt delivers to the UI thread by queued connection. Progress is throttled (at most one signal
per 50 ms, plus the last one), so a chatty backend cannot flood the event loop. Nothing here ever
calls ``processEvents()``.
"""
from __future__ import annotations

import threading
import time
import traceback
from typing import Any, Callable, Optional

from PyQt6.QtCore import QObject, QRunnable, QThreadPool, pyqtSignal

from core.errors import Cancelled
from core.progress import Progress

__all__ = ["Job", "JobSignals", "TimeLeft", "start_job"]


class JobSignals(QObject):
    progress = pyqtSignal(object)     # Progress
    finished = pyqtSignal(object)     # the callable's result
    failed = pyqtSignal(str, str)     # message, traceback
    cancelled = pyqtSignal()
    done = pyqtSignal()               # after any of the three above


class Job(QRunnable):
    """``fn(progress, cancel)`` run in a pool thread; see :class:`JobSignals`."""

    def __init__(self, name: str, fn: Callable[[Callable[[Progress], None], threading.Event], Any], *,
                 min_interval: float = 0.05):
        super().__init__()
        self.setAutoDelete(False)
        self.name = name
        self.fn = fn
        self.cancel = threading.Event()
        self.signals = JobSignals()
        self._min_interval = min_interval
        self._last_emit = 0.0
        self.started_at = 0.0
        self.error: Optional[BaseException] = None     # what made it fail (read after ``failed``)

    def _progress(self, p: Progress) -> None:
        now = time.monotonic()
        if now - self._last_emit >= self._min_interval or p.fraction >= 1.0:
            self._last_emit = now
            self.signals.progress.emit(p)

    def run(self) -> None:
        self.started_at = time.monotonic()
        try:
            result = self.fn(self._progress, self.cancel)
        except Cancelled:
            self.signals.cancelled.emit()
        except Exception as exc:  # shown to the user; the UI stays up
            self.error = exc.with_traceback(None)   # (its frames would keep the job's arrays alive)
            self.signals.failed.emit(str(exc) or exc.__class__.__name__, traceback.format_exc())
        else:
            self.signals.finished.emit(result)
        self.signals.done.emit()
        _RUNNING.discard(self)


_RUNNING: set = set()      # jobs in flight: kept alive (with their signals) until they end, even if
                           # the window that started them is gone


def start_job(job: Job, pool: Optional[QThreadPool] = None) -> Job:
    _RUNNING.add(job)
    (pool or QThreadPool.globalInstance()).start(job)
    return job


class TimeLeft:
    """A time-left estimate from the fraction done, smoothed so that it does not jitter."""

    def __init__(self):
        self.t0 = time.monotonic()
        self.estimate: Optional[float] = None

    def update(self, fraction: float) -> Optional[float]:
        elapsed = time.monotonic() - self.t0
        if fraction <= 0.02 or elapsed < 0.5:
            return None
        raw = elapsed * (1.0 - fraction) / fraction
        self.estimate = raw if self.estimate is None else 0.7 * self.estimate + 0.3 * raw
        return max(0.0, self.estimate)

    @staticmethod
    def text(seconds: Optional[float]) -> str:
        if seconds is None:
            return "estimating…"
        s = int(round(seconds))
        return f"{s // 60}:{s % 60:02d} left" if s >= 60 else f"{s} s left"
