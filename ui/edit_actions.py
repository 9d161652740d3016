"""Shaping the sources in the app (issue 26): merge, split, move a region, suggested merges, A/B.

:class:`EditActions` is the controller's part for source edits: it keeps which sources are
selected (the sources list's check boxes and the canvas' menu share it), runs each edit as a job
(:func:`app.editing.plan_edit` in the worker, a new playback engine made there, the plan adopted on
the UI thread as one undo step), lists the merges the grouping model suggests, and plays two
sources solo in turn (A/B) without touching the session, and measures each source's share of a
region of the spectrogram. Its widgets (the edit bar, the canvas menu's entries, the region tool)
are in :mod:`ui.edit_widgets`.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal

from app.editing import plan_edit
from app.edits import Merge, MoveRegion, Split, describe, suggested_merges
from app.session import Session

from .jobs import Prepared
from .views import compute_views

__all__ = ["EditActions"]


class EditActions(QObject):
    selection_changed = pyqtSignal()
    compare_changed = pyqtSignal(object)        # None, or (a, b, the one playing)

    def __init__(self, ctl):
        super().__init__(ctl)
        self.ctl = ctl
        self.selected: set[int] = set()
        self.comparing: Optional[tuple] = None
        ctl.session_event.connect(self._on_event)

    def _on_event(self, name: str) -> None:
        if name in ("sources", "recording"):
            n = len(self.ctl.session.sources)
            if self.selected and max(self.selected) >= n or name == "recording":
                self.selected = set()
            self.selection_changed.emit()
            self.stop_compare()

    # --- selection --------------------------------------------------------------------------------
    def select(self, i: int, on: bool) -> None:
        if (i in self.selected) != bool(on):
            (self.selected.add if on else self.selected.discard)(i)
            self.stop_compare()
            self.selection_changed.emit()

    def set_selection(self, indices) -> None:
        self.selected = set(int(i) for i in indices)
        self.stop_compare()
        self.selection_changed.emit()

    # --- edits ----------------------------------------------------------------------------------
    def apply(self, edit):
        """Run ``edit`` as a job (one undo step when it ends); None when it cannot start. A bad
        edit fails in the job with its one-line reason and changes nothing."""
        ctl, s = self.ctl, self.ctl.session
        if ctl.busy:
            ctl.status.emit("Wait for the running task to finish (or cancel it)")
            return None
        if not s.renders:
            ctl.status.emit("Separate the recording first")
            return None
        self.stop_compare()

        def fn(progress, cancel):
            plan = plan_edit(s, edit, progress=progress, cancel=cancel)
            engine = Session.make_engine(plan.renders, plan.placements, mono_compatible=s.mono_compatible,
                                         ab_original=s.ab_original)
            return Prepared(plan=plan, adopt_args={"engine": engine},
                            views=compute_views(plan.renders, placed=0 <= s.current < len(s.renditions)),
                            engine=engine, player=ctl._probe(engine))

        def done(_):
            self.set_selection(())
            ctl.status.emit(f"{describe(edit, s.sources)}: {len(ctl.session.sources)} sources (Ctrl+Z undoes it)")

        label = describe(edit, s.sources)
        return ctl.run_job(label[:1].upper() + label[1:], fn, on_done=done)

    def merge(self, indices=None, name: Optional[str] = None):
        indices = sorted(self.selected if indices is None else indices)
        return self.apply(Merge(tuple(indices), name))

    def split(self, i: int, *, parts: Optional[int] = None, at_hz: Optional[float] = None):
        return self.apply(Split(i, parts, at_hz))

    def move_region(self, src: int, dst: Optional[int], t0: float, t1: float, f0: float, f1: float):
        return self.apply(MoveRegion(src, dst, t0, t1, f0, f1))

    def suggestions(self, limit: int = 6) -> list[tuple[int, int, float]]:
        """The merges the grouping model rates most likely one instrument: ``(i, j, P(same))``."""
        return suggested_merges(self.ctl.session.sources)[:limit]

    def region_shares(self, t0: float, t1: float, b0: float, b1: float) -> list[tuple[int, float]]:
        """Each source's share of the energy in ``t0``..``t1`` seconds and bands ``b0``..``b1``
        (fractional band indices, as the spectrogram draws them), largest first."""
        s = self.ctl.session
        e = np.stack([r.energy for r in s.renders])               # [sources, bands, frames]
        frames = e.shape[2]
        f0, f1 = int(t0 / max(s.seconds, 1e-9) * frames), int(np.ceil(t1 / max(s.seconds, 1e-9) * frames))
        part = e[:, int(b0):max(int(np.ceil(b1)), int(b0) + 1), f0:max(f1, f0 + 1)].sum(axis=(1, 2))
        total = float(part.sum()) or 1.0
        return sorted(((k, float(v) / total) for k, v in enumerate(part)), key=lambda kv: -kv[1])

    # --- A/B of two sources, solo ----------------------------------------------------------------
    def compare(self, a: Optional[int] = None, b: Optional[int] = None) -> Optional[tuple]:
        """Play ``a`` alone, then (called again) ``b`` alone, in turn; the session is not changed.
        Without arguments: the two selected sources, or the pair being compared."""
        s = self.ctl.session
        if a is None or b is None:
            if self.comparing is not None:
                a, b = self.comparing[:2]
            elif len(self.selected) == 2:
                a, b = sorted(self.selected)
            else:
                self.ctl.status.emit("Select two sources to compare")
                return None
        playing = b if self.comparing is not None and self.comparing[:2] == (a, b) and self.comparing[2] == a else a
        places = [replace(p, solo=(k == playing), mute=False if k == playing else p.mute)
                  for k, p in enumerate(s.placements)]
        self.comparing = (a, b, playing)
        self.ctl.playback.push(s.snapshot(places))
        self.compare_changed.emit(self.comparing)
        self.ctl.status.emit(f"A/B: {s.sources[playing].name} alone ({'A' if playing == a else 'B'}); "
                             f"press A/B again for {'B' if playing == a else 'A'}; uncheck a source to stop")
        return self.comparing

    def stop_compare(self) -> None:
        if self.comparing is not None:
            self.comparing = None
            self.ctl._push_snapshot()
            self.compare_changed.emit(None)
