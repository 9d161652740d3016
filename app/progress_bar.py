"""A terminal progress callback for the CLI (``core.progress.Progress`` -> one updating line)."""
from __future__ import annotations

import sys
import time

from core.progress import Progress


class TerminalProgress:
    """Callable progress sink: prints ``stage  42%  12.3 s left`` on stderr, at most 5 times a second."""

    def __init__(self, enabled: bool = True, stream=None):
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.t0 = time.monotonic()
        self._last = 0.0
        self._stage = None
        self._stage_t0 = self.t0
        self._open = False

    def __call__(self, p: Progress) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if p.stage != self._stage:
            self._stage, self._stage_t0 = p.stage, now
        elif now - self._last < 0.2 and p.fraction < 1.0:
            return
        self._last = now
        frac = p.fraction
        elapsed = now - self._stage_t0
        left = f"  {elapsed * (1 - frac) / frac:5.1f} s left" if 0.02 < frac < 1.0 else ""
        msg = f"  {p.message}" if p.message else ""
        self.stream.write(f"\r{p.stage:<14s} {frac * 100:5.1f}%{left}{msg}\033[K")
        self.stream.flush()
        self._open = True

    def close(self) -> None:
        if self.enabled and self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
