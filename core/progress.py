"""Progress reporting and cancellation for long operations (no Qt here).

A long operation takes ``progress: Callable[[Progress], None] | None`` and
``cancel: threading.Event | None``. It calls :func:`report` between chunks and
:func:`check_cancel` before each chunk; a set event raises :class:`Cancelled`.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Optional

from .errors import Cancelled

__all__ = ["Progress", "ProgressFn", "Cancelled", "check_cancel", "report", "Reporter"]


@dataclass(frozen=True)
class Progress:
    stage: str
    done: float
    total: float
    message: str = ""

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else min(1.0, max(0.0, self.done / self.total))


ProgressFn = Callable[[Progress], None]


def check_cancel(cancel: Optional[threading.Event]) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled")


def report(progress: Optional[ProgressFn], stage: str, done: float, total: float, message: str = "") -> None:
    if progress is not None:
        progress(Progress(stage, float(done), float(total), message))


class Reporter:
    """Maps the progress of sub-steps onto one overall [0, total] range.

    ``sub = Reporter(progress, "predict", start=0.2, span=0.5)`` reports ``done`` in
    ``start + span * fraction`` of a unit range; useful when one operation chains several.
    """

    def __init__(self, progress: Optional[ProgressFn], stage: str, start: float = 0.0, span: float = 1.0):
        self.progress, self.stage, self.start, self.span = progress, stage, start, span

    def __call__(self, p: Progress) -> None:
        if self.progress is not None:
            self.progress(Progress(self.stage or p.stage, self.start + self.span * p.fraction, 1.0, p.message))
