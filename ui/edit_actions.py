"""Shaping the sources in the app (issue 26): merge, split, move a region, suggested merges, A/B.

:class:`EditActions` is the controller's part for source edits: it keeps which sources are
selected (the sources list's check boxes and the canvas' menu share it), runs each edit as a job
(:func:`app.editing.plan_edit` in the worker, a new playback engine made there, the plan adopted on
the UI thread as one undo step), lists the merges the grouping model suggests, and plays two
sources solo in turn (A/B) without touching the session. The widgets here are small: the edit bar
above the sources list, the canvas menu's entries and :class:`RegionTool`, which draws a rectangle
on the spectrogram (Shift + drag) and offers to move that region of a source to another.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

import numpy as np
from PyQt6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QPen
from PyQt6.QtWidgets import (QGraphicsRectItem, QHBoxLayout, QInputDialog, QMenu, QToolButton, QWidget)

from app.editing import plan_edit
from app.edits import Merge, MoveRegion, Split, band_to_hz, describe, suggested_merges
from app.session import Session

from .jobs import Prepared
from .views import compute_views

__all__ = ["EditActions", "EditBar", "add_edit_menu", "RegionTool"]


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


class EditBar(QWidget):
    """Merge / Split / Suggested merges / A/B above the sources list (the list's check boxes select)."""

    def __init__(self, ctl, parent=None):
        super().__init__(parent)
        self.ctl, self.ed = ctl, ctl.editing
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        self.merge = self._button("Merge", "Merge the checked sources into one (one undo step)",
                                  lambda: self.ed.merge())
        self.split = self._button("Split", "Split the checked source: into 2-4 parts, or at a frequency", None)
        self.split.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.split_menu = QMenu(self)
        self.split_menu.aboutToShow.connect(self._fill_split)
        self.split.setMenu(self.split_menu)
        self.suggest = self._button("Suggested", "Merges the grouping model rates likely one instrument", None)
        self.suggest.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.suggest_menu = QMenu(self)
        self.suggest_menu.aboutToShow.connect(self.fill_suggestions)
        self.suggest.setMenu(self.suggest_menu)
        self.ab = self._button("A/B", "Play the two checked sources alone, in turn (press again to switch)",
                               lambda: self.ed.compare())
        self.ed.selection_changed.connect(self.sync)
        ctl.busy_changed.connect(lambda _b: self.sync())
        ctl.session_event.connect(lambda name: name in ("sources", "recording") and self.sync())
        self.sync()

    def beside(self, title: QWidget) -> QHBoxLayout:
        """The panel's title line with the bar at its right (no line of its own: rows stay visible)."""
        for b in self.findChildren(QToolButton):      # no taller than the title: the list keeps its rows
            b.setFixedHeight(title.sizeHint().height())
        line = QHBoxLayout()
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(title)
        line.addStretch(1)
        line.addWidget(self)
        return line

    def _button(self, text, tip, fn) -> QToolButton:
        b = QToolButton()
        b.setStyleSheet("padding: 0px 5px; font-size: 8pt;")

        b.setText(text)
        b.setToolTip(tip)
        b.setObjectName(f"edit_{text.lower().replace('/', '')}")
        if fn is not None:
            b.clicked.connect(fn)
        self.layout().addWidget(b)
        return b

    def _fill_split(self) -> None:
        self.split_menu.clear()
        sel = sorted(self.ed.selected)
        if len(sel) == 1:
            fill_split_menu(self.split_menu, self.ed, sel[0])

    def fill_suggestions(self) -> None:
        m, s = self.suggest_menu, self.ctl.session
        m.clear()
        pairs = self.ed.suggestions()
        if not pairs:
            m.addAction("No suggestions (the grouping model rates no pair likely one instrument)").setEnabled(False)
        for i, j, p in pairs:
            m.addAction(f"{s.sources[i].name} + {s.sources[j].name}: {p:.2f}",
                        lambda i=i, j=j: self.ed.merge((i, j)))

    def sync(self) -> None:
        busy, n = self.ctl.busy, len(self.ed.selected)
        have = bool(self.ctl.session.renders)
        self.merge.setEnabled(have and not busy and n >= 2)
        self.split.setEnabled(have and not busy and n == 1)
        self.ab.setEnabled(have and (n == 2 or self.ed.comparing is not None))
        self.suggest.setEnabled(have and not busy)
        self.merge.setText(f"Merge {n}" if n >= 2 else "Merge")


def _ask_hz(parent, ed, i: int) -> None:
    hz, ok = QInputDialog.getDouble(parent, "Split at a frequency", "Split below / above (Hz):", 300.0, 20.0,
                                    20000.0, 0)
    if ok:
        ed.split(i, at_hz=hz)


def fill_split_menu(menu: QMenu, ed: EditActions, i: int) -> None:
    for n in (2, 3, 4):
        menu.addAction(f"Into {n} parts", lambda n=n: ed.split(i, parts=n))
    menu.addAction("At a frequency…", lambda: _ask_hz(menu.parentWidget(), ed, i))


def add_edit_menu(menu: QMenu, ctl, i: int) -> None:
    """The canvas menu's entries for source ``i``: select, merge with, merge the selected, split."""
    ed, s = ctl.editing, ctl.session
    menu.addSeparator()
    sel = menu.addAction("Select for merge / A/B")
    sel.setCheckable(True)
    sel.setChecked(i in ed.selected)
    sel.toggled.connect(lambda on: ed.select(i, on))
    others = ed.selected - {i}
    if others:
        names = ", ".join(s.sources[k].name for k in sorted(others))
        menu.addAction(f"Merge with the selected ({names})", lambda: ed.merge(sorted(others | {i})))
    with_menu = menu.addMenu("Merge with")
    for k, src in enumerate(s.sources):
        if k != i:
            with_menu.addAction(src.name, lambda k=k: ed.merge((i, k)))
    split_menu = menu.addMenu("Split")
    fill_split_menu(split_menu, ed, i)
    for act in (sel, with_menu.menuAction(), split_menu.menuAction()):
        act.setEnabled(not ctl.busy)


class RegionTool(QObject):
    """Shift + drag on the spectrogram draws a time-frequency rectangle; on release a menu offers to
    move one source's share of it to another source or to a new one."""

    def __init__(self, view, ctl):
        super().__init__(view)
        self.view, self.ctl = view, ctl
        self.start: Optional[QPointF] = None
        self.rect: Optional[tuple] = None           # t0, t1, band0, band1 (view coordinates)
        self.menu: Optional[QMenu] = None
        self.item = QGraphicsRectItem()
        self.item.setPen(QPen(QColor("#FFFFFF"), 0, Qt.PenStyle.DashLine))
        self.item.setBrush(QColor(255, 255, 255, 40))
        self.item.setZValue(20)
        self.item.setVisible(False)
        view.addItem(self.item)
        view.viewport().installEventFilter(self)

    def _to_view(self, pos) -> QPointF:
        return self.view.getPlotItem().vb.mapSceneToView(self.view.mapToScene(pos.toPoint()))

    def eventFilter(self, obj, ev) -> bool:
        t = ev.type()
        if t == QEvent.Type.MouseButtonPress and ev.button() == Qt.MouseButton.LeftButton \
                and ev.modifiers() & Qt.KeyboardModifier.ShiftModifier and self.ctl.session.renders:
            self.start = self._to_view(ev.position())
            self._draw(self.start)
            return True
        if t == QEvent.Type.MouseMove and self.start is not None:
            self._draw(self._to_view(ev.position()))
            return True
        if t == QEvent.Type.MouseButtonRelease and self.start is not None:
            end = self._to_view(ev.position())
            self._draw(end)
            self.start = None
            self.show_menu(ev.globalPosition().toPoint())
            return True
        return False

    def _draw(self, end: QPointF) -> None:
        s = self.ctl.session
        x0, x1 = sorted((self.start.x(), end.x()))
        y0, y1 = sorted((self.start.y(), end.y()))
        x0, x1 = max(x0, 0.0), min(x1, s.seconds)
        y0, y1 = max(y0, 0.0), min(y1, float(self.ctl.views.level.shape[0]) if self.ctl.views.level is not None else y1)
        self.rect = (x0, x1, y0, y1)
        self.item.setRect(QRectF(x0, y0, max(x1 - x0, 0.0), max(y1 - y0, 0.0)))
        self.item.setVisible(True)

    def region(self) -> tuple:
        """The rectangle as (t0, t1, f0, f1) in seconds and Hz."""
        t0, t1, b0, b1 = self.rect
        return t0, t1, band_to_hz(b0), band_to_hz(b1)

    def shares(self) -> list[tuple[int, float]]:
        """Each source's share of the rectangle's energy, largest first."""
        s = self.ctl.session
        t0, t1, b0, b1 = self.rect
        e = np.stack([r.energy for r in s.renders])               # [sources, bands, frames]
        frames = e.shape[2]
        f0, f1 = int(t0 / max(s.seconds, 1e-9) * frames), int(np.ceil(t1 / max(s.seconds, 1e-9) * frames))
        part = e[:, int(b0):max(int(np.ceil(b1)), int(b0) + 1), f0:max(f1, f0 + 1)].sum(axis=(1, 2))
        total = float(part.sum()) or 1.0
        return sorted(((k, float(v) / total) for k, v in enumerate(part)), key=lambda kv: -kv[1])

    def show_menu(self, global_pos=None) -> QMenu:
        s = self.ctl.session
        t0, t1, f0, f1 = self.region()
        menu = QMenu(self.view)
        head = menu.addAction(f"{t0:.2f}-{t1:.2f} s, {f0:.0f}-{f1:.0f} Hz")
        head.setEnabled(False)
        for k, share in self.shares():
            if share <= 0:
                continue
            sub = menu.addMenu(f"Move {s.sources[k].name}'s share ({share:.0%}) to")
            for j, other in enumerate(s.sources):
                if j != k:
                    sub.addAction(other.name, lambda k=k, j=j: self._move(k, j))
            sub.addAction("A new source", lambda k=k: self._move(k, None))
        menu.aboutToHide.connect(lambda: self.item.setVisible(False))
        self.menu = menu
        if global_pos is not None:
            menu.popup(global_pos)
        return menu

    def _move(self, src: int, dst: Optional[int]) -> None:
        self.item.setVisible(False)
        self.ctl.editing.move_region(src, dst, *self.region())
