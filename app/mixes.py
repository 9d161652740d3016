"""The whole stereo mix of one session state, made from the playhead: what a switch plays at once.

A session state is its sources' renders (with a rendition's tile parameters), their places and the
mode (:meth:`app.session.Session._state`). Its mix [shape=(n, 2)], before the output gain, is
:meth:`app.session.Session.render` of that state bit for bit: :func:`core.renderer.mix_stream`
gives every sample the same bits whatever sample it starts from. :class:`StateMix` makes it from
the playhead: :meth:`StateMix.start` the first block (a few tens of milliseconds, worker side),
:meth:`StateMix.run` the rest in a background thread, from the playhead to the end, then from the
beginning (far faster than it plays). The playback engine plays it as one stereo bus while the
places are the state's (:class:`app.playback.MixSnapshot`); :class:`app.memory.MixCache` keeps the
mixes of the states auditioned last, so switching back to one, or undoing to it, swaps the buffer
the engine reads and does no work.
"""
from __future__ import annotations

import atexit
import threading
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from core.errors import Cancelled
from core.listening import FillOrder
from core.placement import Placement
from core.progress import check_cancel
from core.renderer import SourceRender, mix_stream, pair_buffer

__all__ = ["StateMix", "FIRST_FRAMES", "background", "wait_background"]

FIRST_FRAMES = 12       # STFT frames of the first block made from the playhead (about 0.2 s of sound)
MIX_CHUNK = 256         # STFT frames made at a time behind the first block (about 6 s)

_RUNNING: list[tuple[Callable[[], None], threading.Thread]] = []
_RUNNING_LOCK = threading.Lock()


def background(target: Callable[[], None], cancel: Callable[[], None], name: str) -> threading.Thread:
    """Start ``target`` in a daemon thread that the process stops (``cancel``, then a short wait)
    before it exits: a thread killed inside a multi-threaded transform at exit aborts the process."""
    t = threading.Thread(target=target, name=name, daemon=True)
    with _RUNNING_LOCK:
        _RUNNING[:] = [(c, th) for c, th in _RUNNING if th.is_alive()]
        _RUNNING.append((cancel, t))
    t.start()
    return t


def wait_background(timeout: Optional[float] = None) -> None:
    """Until every thread :func:`background` started has ended (tests that measure the process)."""
    with _RUNNING_LOCK:
        running = [t for _c, t in _RUNNING]
    for t in running:
        t.join(timeout)


@atexit.register
def _stop_background() -> None:
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for cancel, _t in running:
        cancel()
    for _c, t in running:
        t.join(5.0)


class StateMix:
    """The mix of ``renders`` at ``placements`` in mode ``mono_compatible`` [shape=(n, 2)] in
    ``buf`` (a :func:`core.renderer.pair_buffer`: ``spill`` maps it on a file). ``filled`` is set
    when every sample is made; until then the samples not yet made read 0."""

    def __init__(self, renders: list[SourceRender], placements: list[Placement], mono_compatible: bool, *,
                 spill: Optional[Path] = None, buf: Optional[np.ndarray] = None):
        self.renders, self.placements = list(renders), list(placements)
        self.mono_compatible = bool(mono_compatible)
        self.n = len(renders[0].s) if renders else 0
        self.filled = threading.Event()
        self.cancelled = threading.Event()
        self.start_at = 0
        self._stream = None
        self.order = FillOrder(self.n)           # the parts made; where to go on (the person's seeks)
        self._running = False
        self._run_lock = threading.Lock()
        if buf is not None:                      # made elsewhere (e.g. the output gain's measurement)
            if buf.shape != (self.n, 2):
                raise ValueError(f"a mix of {self.n} samples cannot be {buf.shape}")
            self.buf = buf
            self.filled.set()
        else:
            self.buf = pair_buffer(self.n, spill, zeros=True)

    @property
    def nbytes(self) -> int:
        return int(self.buf.nbytes)

    def is_for(self, renders: list[SourceRender], placements: list[Placement], mono_compatible: bool) -> bool:
        """Whether this is the mix of that state (the same render objects, places and mode)."""
        return (bool(mono_compatible) == self.mono_compatible and len(renders) == len(self.renders)
                and all(a is b for a, b in zip(renders, self.renders)) and list(placements) == self.placements)

    def start(self, playhead: int = 0, *, cancel: Optional[threading.Event] = None,
              first_frames: int = FIRST_FRAMES) -> "StateMix":
        """Make the first block from sample ``playhead`` (worker side); :meth:`run` makes the rest."""
        if self.filled.is_set() or self.n == 0:
            self.filled.set()
            return self
        self.start_at = int(min(max(playhead, 0), self.n - 1))
        check_cancel(cancel)
        self._stream = mix_stream(self.renders, self.placements, start=self.start_at,
                                  mono_compatible=self.mono_compatible, first_chunk=first_frames, chunk=MIX_CHUNK)
        a, block = next(self._stream)
        self.buf[a:a + len(block)] = block
        self.order.mark(a, a + len(block))
        return self

    def run_behind(self) -> "StateMix":
        """:meth:`run` in a thread of its own, started now: the mix runs ahead of the playhead
        while the plan that holds it is handed over and adopted."""
        background(self.run, self.cancel, "mix behind")
        return self

    def run(self) -> bool:
        """The rest (a background thread): from the first block to the end, then from the
        beginning to the playhead; :meth:`cancel` stops it between chunks. Where the person seeks to
        a part not made yet (:class:`core.listening.FillOrder`), it goes on from there, and makes the
        part it skipped after. Whether it is whole. Another thread running it already: waits for that one."""
        with self._run_lock:
            running, self._running = self._running, True
        if running:
            return self.wait()
        if self.filled.is_set():
            return True
        try:
            if self._stream is None:
                self.start(0)
            stream, pos = self._stream, self.start_at
            while stream is not None:
                for a, block in stream:
                    self._check()
                    self.buf[a:a + len(block)] = block
                    self.order.mark(a, a + len(block))
                    pos = a + len(block)
                    wanted = self.order.wanted(pos)
                    if wanted is not None:
                        pos = wanted
                        break
                stream = self._stream_from(pos)
        except Cancelled:
            return False
        finally:
            self._stream = None
        self.filled.set()
        return True

    def _stream_from(self, pos: int):
        gap = self.order.gap_from(pos)
        if gap is None:
            return None
        return mix_stream(self.renders, self.placements, start=gap[0], stop=gap[1],
                          mono_compatible=self.mono_compatible, chunk=MIX_CHUNK)

    def _check(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled("the mix is not needed any more")

    def cancel(self) -> None:
        self.cancelled.set()

    def wait(self) -> bool:
        """Until it is whole (or cancelled); whether it is whole."""
        while not self.filled.wait(0.05):
            if self.cancelled.is_set():
                break
        return self.filled.is_set()
