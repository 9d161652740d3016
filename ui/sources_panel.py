"""The sources panel: one line per source with its colour, name, pan, width and gain (numbers that
can be typed in; a typed pan or width pins the source there, as a drag does; the gain also on a
slider), mute, solo and pin, so that five sources fit in the panel at 1280 x 720.

The names and numbers stay editable while a job runs (a click always puts focus in the field, so
what is typed goes there and never to the window's keys); a value committed meanwhile is applied
as soon as the job ends. The buttons and the gain slider, which apply at once, wait for it.

The rows show the sources' view model (:class:`ui.viewmodels.SourcesViewModel`) and write through
the controller's methods."""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (QAbstractSpinBox, QCheckBox, QDoubleSpinBox, QFrame, QGridLayout, QLabel, QLineEdit, QScrollArea,
                             QSizePolicy, QSlider, QToolButton, QVBoxLayout, QWidget)

from . import theme
from .edit_widgets import EditBar

__all__ = ["SourcesPanel", "SourceRow"]

GAIN_MIN, GAIN_MAX = -24, 12   # dB, 0.5 dB steps on the slider
NAME_MIN = 96                  # px: a name field never gets narrower (the panel's minimum width follows)


class NumberField(QDoubleSpinBox):
    """A typed number. The mouse wheel turns it only while it has focus: over the list, the wheel
    scrolls the list and never changes a value on its way."""

    def wheelEvent(self, ev):
        if self.hasFocus():
            super().wheelEvent(ev)
        else:
            ev.ignore()


class SourceRow:
    """The widgets of one source, on one line of the panel's grid: colour, name, pan, width, gain
    (slider and typed dB), mute, solo, pin."""

    def __init__(self, panel: "SourcesPanel", i: int, grid: QGridLayout, row: int):
        self.panel, self.i = panel, i
        ctl = panel.ctl
        src = panel.vm.nodes[i]
        self.swatch = QLabel()
        self.swatch.setFixedSize(8, 22)
        self.swatch.setStyleSheet(f"background: {src.colour}; border-radius: 3px;")
        self.name = QLineEdit(src.name)
        self.name.setMinimumWidth(NAME_MIN)
        self.name.setCursorPosition(0)
        self.name.setToolTip(f"{src.kind}: rename with Enter")
        self.name.editingFinished.connect(self._name_typed)
        self.pan = self._number(f"pan_{i}", -1.0, 1.0, 0.05, 2, "", "Pan, -1 (left) to +1 (right); typing pins the source")
        self.width = self._number(f"width_{i}", 0.0, 1.0, 0.05, 2, "", "Width, 0 (point) to 1 (diffuse); typing pins the source")
        self.gain = QSlider(Qt.Orientation.Horizontal)
        self.gain.setRange(GAIN_MIN * 2, GAIN_MAX * 2)
        self.gain.setFixedWidth(52)
        self.gain.setToolTip("Gain (dB), heard while dragging")
        self.gain.valueChanged.connect(self._gain_changed)
        self.gain.sliderReleased.connect(lambda: ctl.end_edit())
        self.gain_value = self._number(f"gain_{i}", GAIN_MIN, GAIN_MAX, 0.5, 1, " dB", "Gain in dB (type a value)")
        self.pan.editingFinished.connect(lambda: self._place_typed(pan=self.pan.value()))
        self.width.editingFinished.connect(lambda: self._place_typed(width=self.width.value()))
        self.gain_value.editingFinished.connect(self._gain_typed)
        self.mute = self._toggle("M", "Mute", "mute")
        self.solo = self._toggle("S", "Solo", "solo")
        self.pin = self._toggle("P", "", "pinned")
        self.select = QCheckBox()
        self.select.setObjectName(f"select_{i}")
        self.select.setToolTip("Select (merge, split, A/B compare)")
        self.select.toggled.connect(lambda on: self.panel.syncing or ctl.editing.select(self.i, on))
        for col, w in enumerate(self.widgets()):
            grid.addWidget(w, row, col)
        self.sync()

    def widgets(self) -> tuple:
        """The row's widgets, left to right (the panel's columns)."""
        return (self.swatch, self.name, self.pan, self.width, self.gain, self.gain_value, self.mute, self.solo,
                self.pin, self.select)

    @staticmethod
    def _number(name: str, lo: float, hi: float, step: float, decimals: int, suffix: str, tip: str) -> QDoubleSpinBox:
        b = NumberField()
        b.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        b.setObjectName(name)
        b.setRange(lo, hi)
        b.setSingleStep(step)
        b.setDecimals(decimals)
        b.setSuffix(suffix)
        b.setKeyboardTracking(False)
        b.setButtonSymbols(QAbstractSpinBox.ButtonSymbols.NoButtons)
        b.setAlignment(Qt.AlignmentFlag.AlignRight)
        b.setMinimumWidth(b.fontMetrics().horizontalAdvance(f"-{hi:.{decimals}f}{suffix}") + 16)
        b.setToolTip(tip)
        return b

    def _name_typed(self) -> None:
        name = self.name.text().strip()
        if not name:                         # a name cannot be empty: show the one it has
            self.name.setText(self.panel.vm.nodes[self.i].name)
            self.name.setCursorPosition(0)
            return
        self.panel.ctl.rename(self.i, name)

    def _gain_typed(self) -> None:
        if self.panel.syncing:
            return
        db = round(self.gain_value.value() * 2) / 2

        def apply(ctl, node):
            if db != node.gain_db:
                ctl.set_placement(self.i, replace(node.placement, gain_db=db), label=f"gain {node.name}")
        self.panel.when_idle(self.i, "gain", apply)

    def _place_typed(self, *, pan=None, width=None) -> None:
        """A typed pan or width (the other one stays where the source is when it is applied)."""
        if self.panel.syncing:
            return
        pan = None if pan is None else round(pan, 2)
        width = None if width is None else round(width, 2)

        def apply(ctl, node):
            new = (pan if pan is not None else node.pan, width if width is not None else node.width)
            if (round(new[0], 2), round(new[1], 2)) != (round(node.pan, 2), round(node.width, 2)):
                ctl.set_placement(self.i, node.placement.moved(*new), label=f"move {node.name}")
        self.panel.when_idle(self.i, "pan" if pan is not None else "width", apply)

    def _toggle(self, text: str, tip: str, attr: str) -> QToolButton:
        b = QToolButton()
        b.setText(text)
        b.setCheckable(True)
        b.setToolTip(tip)
        b.setFixedSize(22, 22)
        b.setStyleSheet("padding: 0px; font-weight: bold;")
        b.setObjectName(f"{attr}_{self.i}")
        ctl, vm = self.panel.ctl, self.panel.vm
        b.toggled.connect(lambda on: self.panel.syncing or ctl.set_placement(
            self.i, replace(vm.nodes[self.i].placement, **{attr: bool(on)}),
            label=f"{attr} {vm.nodes[self.i].name}"))
        return b

    def _gain_changed(self, v: int) -> None:
        db = v / 2.0 + 0.0
        if not self.gain_value.hasFocus():
            self.gain_value.setValue(db)
        if self.panel.syncing:
            return
        node = self.panel.vm.nodes[self.i]
        self.panel.ctl.set_placement(self.i, replace(node.placement, gain_db=db), label=f"gain {node.name}",
                                     merge_key=("gain", self.i))

    def set_busy(self, busy: bool) -> None:
        for w in (self.gain, self.mute, self.solo, self.pin):
            w.setEnabled(not busy)

    def sync(self) -> None:
        p = src = self.panel.vm.node(self.i)
        if p is None:
            return
        if not self.name.hasFocus() and self.name.text() != src.name:
            self.name.setText(src.name)
            self.name.setCursorPosition(0)
        self.gain.setValue(int(round(p.gain_db * 2)))
        self.mute.setChecked(p.mute)
        self.select.setChecked(self.i in self.panel.ctl.editing.selected)
        self.solo.setChecked(p.solo)
        self.pin.setChecked(p.pinned)
        self.pin.setToolTip("Pinned: holds this place (click to let the model place it again)" if p.pinned else
                            "Auto: the model places it (click to pin it where it is)")
        for box, v in ((self.gain_value, p.gain_db), (self.pan, p.pan), (self.width, p.width)):
            if not box.hasFocus():
                box.setValue(v)


class SourcesPanel(QFrame):
    sourceClicked = pyqtSignal(int)

    def __init__(self, ctl, parent=None):
        super().__init__(parent)
        self.ctl = ctl
        self.vm = ctl.vms.sources                # the rows it shows (the controller sets them)
        self.setObjectName("panel")
        self.rows: list[SourceRow] = []
        self.syncing = False
        self._rebuild_pending = False
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 8, 8, 8)
        title = QLabel("SOURCES")
        title.setObjectName("title")
        self.edit_bar = EditBar(ctl)             # merge / split / suggested merges / A/B of the checked sources
        outer.addLayout(self.edit_bar.beside(title))
        ctl.editing.selection_changed.connect(self.sync)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer.addWidget(self.scroll)
        self.empty = QLabel("No sources yet.\nOpen a recording and separate it.")
        self.empty.setStyleSheet(f"color: {theme.TEXT_DIM};")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        outer.addWidget(self.empty)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self.setMinimumWidth(self._min_width())
        self.vm.sources_changed.connect(self._sources_changed)
        self.vm.nodes_changed.connect(self._nodes_changed)
        self._deferred: dict = {}
        ctl.busy_changed.connect(self._busy)
        self.rebuild()

    def _min_width(self) -> int:
        """As narrow as a row with its name at NAME_MIN px (the rows live in a scroll area, whose
        own minimum knows nothing of them)."""
        numbers = [SourceRow._number("", lo, hi, step, dec, suffix, "") for lo, hi, step, dec, suffix in
                   ((-1.0, 1.0, 0.05, 2, ""), (0.0, 1.0, 0.05, 2, ""), (GAIN_MIN, GAIN_MAX, 0.5, 1, " dB"))]
        widths = [8, NAME_MIN, 52, 22, 22, 22] + [b.minimumWidth() for b in numbers]
        for b in numbers:
            b.deleteLater()
        bar = self.style().pixelMetric(self.style().PixelMetric.PM_ScrollBarExtent)
        return sum(widths) + 5 * (len(widths) - 1) + 2 + bar + 2 * 8 + 2

    def when_idle(self, i: int, what: str, apply: Callable) -> None:
        """Run ``apply(ctl, node)`` for source ``i`` (its :class:`ui.viewmodels.SourceNode`) now, or
        when the running job has ended (the last value typed for each of its fields), if the source
        is still there."""
        node = self.vm.nodes[i]
        if not self.ctl.busy:
            apply(self.ctl, node)
            return
        self._deferred[(i, what)] = (node.key, apply)
        self.ctl.status.emit("Applied when the running task ends")

    def _busy(self, busy: bool) -> None:
        for r in self.rows:
            r.set_busy(busy)
        if not busy and self._deferred:
            QTimer.singleShot(0, self._apply_deferred)

    def _apply_deferred(self) -> None:
        if self.ctl.busy:
            return                               # another job began: when it ends
        pending, self._deferred = self._deferred, {}
        for (i, _what), (key, apply) in pending.items():
            node = self.vm.node(i)
            if node is not None and node.key == key:
                apply(self.ctl, node)

    def _sources_changed(self) -> None:
        if not self._rebuild_pending:          # several changes in a row: one rebuild
            self._rebuild_pending = True
            QTimer.singleShot(0, self.rebuild)

    def _nodes_changed(self) -> None:
        if not self._rebuild_pending:
            self.sync()

    def rebuild(self) -> None:
        self._rebuild_pending = False
        body = QWidget()
        grid = QGridLayout(body)
        grid.setContentsMargins(0, 0, 2, 0)
        grid.setHorizontalSpacing(5)
        grid.setVerticalSpacing(4)
        for col, text in ((1, "name"), (2, "pan"), (3, "width"), (4, "gain")):
            head = QLabel(text)
            head.setStyleSheet(f"color: {theme.TEXT_DIM}; font-size: 8pt;")
            head.setAlignment(Qt.AlignmentFlag.AlignLeft if col == 1 else Qt.AlignmentFlag.AlignHCenter)
            grid.addWidget(head, 0, col, 1, 2 if col == 4 else 1)
        self.syncing = True
        self.rows = [SourceRow(self, i, grid, 1 + i) for i in range(len(self.vm.nodes))]
        for r in self.rows:
            r.set_busy(self.ctl.busy)
        self.syncing = False
        grid.setRowStretch(1 + len(self.rows), 1)
        grid.setColumnStretch(1, 1)
        self.scroll.setWidget(body)
        self.empty.setVisible(not self.rows)
        self.scroll.setVisible(bool(self.rows))

    def sync(self) -> None:
        if len(self.rows) != len(self.vm.nodes):
            self.rebuild()
            return
        self.syncing = True
        try:
            for r in self.rows:
                r.sync()
        finally:
            self.syncing = False
