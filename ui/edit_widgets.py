"""The widgets of source edits (issue 26): the edit bar beside the sources list's title, the pan
canvas menu's entries and :class:`RegionTool`, which draws a rectangle on the spectrogram (Shift +
drag) and offers to move that region of a source to another. They read the sources' and the
timeline's view models and act through the controller's part for edits
(:class:`ui.edit_actions.EditActions`)."""
from __future__ import annotations

from typing import Optional

from PyQt6.QtCore import QEvent, QObject, QPointF, QRectF, Qt
from PyQt6.QtGui import QColor, QPen
from PyQt6.QtWidgets import QGraphicsRectItem, QHBoxLayout, QInputDialog, QMenu, QToolButton, QWidget

from app.edits import band_to_hz

from .edit_actions import EditActions

__all__ = ["EditBar", "add_edit_menu", "fill_split_menu", "RegionTool"]


class EditBar(QWidget):
    """Merge / Split / Suggested merges / A/B above the sources list (the list's check boxes select)."""

    def __init__(self, ctl, parent=None):
        super().__init__(parent)
        self.ctl, self.ed, self.vm = ctl, ctl.editing, ctl.vms.sources
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
        self.vm.sources_changed.connect(self.sync)
        self.vm.state_changed.connect(self.sync)
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
        m, nodes = self.suggest_menu, self.vm.nodes
        m.clear()
        pairs = self.ed.suggestions()
        if not pairs:
            m.addAction("No suggestions (the grouping model rates no pair likely one instrument)").setEnabled(False)
        for i, j, p in pairs:
            m.addAction(f"{nodes[i].name} + {nodes[j].name}: {p:.2f}",
                        lambda i=i, j=j: self.ed.merge((i, j)))

    def sync(self) -> None:
        busy, n = self.ctl.busy, len(self.ed.selected)
        have = self.vm.has_renders
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
    ed, nodes = ctl.editing, ctl.vms.sources.nodes
    menu.addSeparator()
    sel = menu.addAction("Select for merge / A/B")
    sel.setCheckable(True)
    sel.setChecked(i in ed.selected)
    sel.toggled.connect(lambda on: ed.select(i, on))
    others = ed.selected - {i}
    if others:
        names = ", ".join(nodes[k].name for k in sorted(others))
        menu.addAction(f"Merge with the selected ({names})", lambda: ed.merge(sorted(others | {i})))
    with_menu = menu.addMenu("Merge with")
    for k, src in enumerate(nodes):
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
        self.sources, self.timeline = ctl.vms.sources, ctl.vms.timeline
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
                and ev.modifiers() & Qt.KeyboardModifier.ShiftModifier and self.sources.has_renders:
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
        x0, x1 = sorted((self.start.x(), end.x()))
        y0, y1 = sorted((self.start.y(), end.y()))
        x0, x1 = max(x0, 0.0), min(x1, self.timeline.seconds)
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
        return self.ctl.editing.region_shares(*self.rect)

    def show_menu(self, global_pos=None) -> QMenu:
        nodes = self.sources.nodes
        t0, t1, f0, f1 = self.region()
        menu = QMenu(self.view)
        head = menu.addAction(f"{t0:.2f}-{t1:.2f} s, {f0:.0f}-{f1:.0f} Hz")
        head.setEnabled(False)
        for k, share in self.shares():
            if share <= 0:
                continue
            sub = menu.addMenu(f"Move {nodes[k].name}'s share ({share:.0%}) to")
            for j, other in enumerate(nodes):
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
