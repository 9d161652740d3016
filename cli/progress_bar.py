"""Progress and notes on stderr for the CLI.

On a terminal, progress is one line rewritten in place (``\\r``, erase to the end of the line). On
a pipe or a log file there are no control characters at all: a plain line when a stage starts,
every 10 % and when it ends, so a log reads top to bottom. While a :class:`TerminalProgress` is
open it also prints the notes of :mod:`core.audio` (its ``logging`` INFO records, e.g. "IN.wav:
6 channels downmixed to mono") as ``soundstage: note: ...`` lines.
"""
from __future__ import annotations

import logging
import sys
import time

from core.progress import Progress

__all__ = ["TerminalProgress", "StatusLine", "is_terminal", "NOTES_LOGGER"]

NOTES_LOGGER = "core.audio"


def is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):     # no isatty, or a closed stream
        return False


class StatusLine:
    """A status line on ``stream``: rewritten in place on a terminal, plain lines otherwise."""

    def __init__(self, stream=None, *, tty=None):
        self.stream = stream or sys.stderr
        self.tty = is_terminal(self.stream) if tty is None else bool(tty)
        self._open = False

    def note(self, text: str) -> None:
        """A line of its own (ends an open progress line first)."""
        if self._open:
            self.stream.write("\n")
            self._open = False
        self.stream.write(text.rstrip() + "\n")
        self.stream.flush()

    def show(self, text: str) -> None:
        if self.tty:
            self.stream.write(f"\r{text}\033[K")
            self._open = True
        else:
            self.stream.write(text.rstrip() + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


class TerminalProgress:
    """Callable progress sink: ``stage  42.0%  12.3 s left`` on stderr.

    On a terminal the line is rewritten at most 5 times a second; elsewhere a line is written when a
    stage starts, when it passes each tenth, and when it is done. Until :meth:`close`, notes of
    :data:`NOTES_LOGGER` are printed too (not when disabled: ``--quiet``)."""

    def __init__(self, enabled: bool = True, stream=None, *, tty=None):
        self.enabled = enabled
        self.line = StatusLine(stream, tty=tty)
        self.stream = self.line.stream
        self.t0 = time.monotonic()
        self._last = 0.0
        self._stage = None
        self._stage_t0 = self.t0
        self._tenth = -1
        self._notes = None
        if enabled:
            self._notes = _NoteHandler(self.line)
            logger = logging.getLogger(NOTES_LOGGER)
            logger.addHandler(self._notes)
            self._level = logger.level
            if logger.getEffectiveLevel() > logging.INFO:
                logger.setLevel(logging.INFO)

    def __call__(self, p: Progress) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        frac = min(max(float(p.fraction), 0.0), 1.0)
        tenth = int(frac * 10)
        if p.stage != self._stage:
            self._stage, self._stage_t0, self._tenth = p.stage, now, tenth
        elif self.line.tty:
            if now - self._last < 0.2 and frac < 1.0:
                return
        elif tenth <= self._tenth:
            return
        else:
            self._tenth = tenth
        self._last = now
        elapsed = now - self._stage_t0
        left = f"  {elapsed * (1 - frac) / frac:5.1f} s left" if 0.02 < frac < 1.0 else ""
        msg = f"  {p.message}" if p.message else ""
        self.line.show(f"{p.stage:<14s} {frac * 100:5.1f}%{left}{msg}")

    def close(self) -> None:
        if self._notes is not None:
            logger = logging.getLogger(NOTES_LOGGER)
            logger.removeHandler(self._notes)
            logger.setLevel(self._level)
            self._notes = None
        if self.enabled:
            self.line.close()


class _NoteHandler(logging.Handler):
    def __init__(self, line: StatusLine):
        super().__init__(logging.INFO)
        self.line = line

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.line.note(f"soundstage: note: {record.getMessage()}")
        except Exception:     # a closed stream: the note is not worth a crash
            self.handleError(record)
