"""Renditions: ask the models for a new proposal (seed, temperature, variety) and keep a gallery of them.
Number keys switch between kept renditions while playing; the current one is highlighted. The panel
shows the renditions' view model (:class:`ui.viewmodels.RenditionsViewModel`) and acts through the
controller."""
from __future__ import annotations

from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtGui import QBrush, QFont
from PyQt6.QtWidgets import (QDoubleSpinBox, QFormLayout, QFrame, QLabel, QListWidget, QListWidgetItem,
                             QPushButton, QSpinBox, QVBoxLayout)

from core.limits import VARIETY_RANGE

from . import theme
from .reference_control import ReferenceRow

__all__ = ["RenditionsPanel"]


class RenditionsPanel(QFrame):
    def __init__(self, ctl, parent=None):
        super().__init__(parent)
        self.ctl = ctl
        self.vm = ctl.vms.renditions             # the gallery it shows (the controller sets it)
        self.setObjectName("panel")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        title = QLabel("RENDITIONS")
        title.setObjectName("title")
        lay.addWidget(title)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        self.seed = QSpinBox()
        self.seed.setRange(-1, 2 ** 31 - 1)
        self.seed.setSpecialValueText("next free")
        self.seed.setValue(-1)
        self.seed.setToolTip("Seed of the new rendition (the same seed re-makes it exactly)")
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 3.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setSpecialValueText("model default")
        self.temperature.setValue(0.0)
        self.temperature.setToolTip("Sampling temperature for generative models (higher: bolder)")
        self.variety = QDoubleSpinBox()
        self.variety.setObjectName("variety")
        self.variety.setRange(*VARIETY_RANGE)
        self.variety.setSingleStep(0.1)
        self.variety.setDecimals(2)
        self.variety.setValue(self.vm.variety)
        self.variety.setToolTip("How far the placement model's proposals may go: 0 places sources as real "
                                "mixes do, 1 proposes the boldest alternatives (saved with each rendition)")
        for box in (self.seed, self.temperature, self.variety):
            box.setKeyboardTracking(False)   # a typed value counts on Enter or leaving; Escape reverts it
        self.variety.valueChanged.connect(self._set_variety)
        form.addRow("Seed", self.seed)
        form.addRow("Temperature", self.temperature)
        self.reference = ReferenceRow(ctl)       # beside Variety: the same row, no extra height
        form.addRow("Variety", ReferenceRow.beside(self.variety, self.reference))
        lay.addLayout(form)
        self.new = QPushButton("✦  New rendition")
        self.new.setObjectName("primary")
        self.new.setToolTip("Ask the model for a fresh proposal; pinned sources keep their place (N)")
        self.new.clicked.connect(self.request_new)
        lay.addWidget(self.new)
        self.gallery = QListWidget()
        self.gallery.setToolTip("Kept renditions: click or press 1–9 to switch")
        self.gallery.itemClicked.connect(lambda item: ctl.recall(self.gallery.row(item)))
        lay.addWidget(self.gallery, 1)
        self.model_label = QLabel()
        self.model_label.setStyleSheet(f"color: {theme.TEXT_DIM};")
        lay.addWidget(self.model_label)
        self._pending = False
        for signal in (self.vm.gallery_changed, self.vm.state_changed, self.vm.reference_changed):
            signal.connect(self._schedule)
        self.vm.variety_changed.connect(self._show_variety)
        ctl.busy_changed.connect(self._busy)
        self.rebuild()

    def request_new(self) -> None:
        seed = None if self.seed.value() < 0 else self.seed.value()
        temp = None if self.temperature.value() <= 0 else self.temperature.value()
        self.ctl.new_rendition(seed, temp)

    def _set_variety(self, value: float) -> None:
        self.ctl.set_variety(value)

    def _show_variety(self) -> None:
        """The session's variety (another recording starts from the default), unless being typed."""
        if not self.variety.hasFocus() and self.variety.value() != self.vm.variety:
            self.variety.blockSignals(True)
            self.variety.setValue(self.vm.variety)
            self.variety.blockSignals(False)

    def _busy(self, busy: bool) -> None:
        self.new.setEnabled(not busy and self.vm.has_renders)
        self.gallery.setEnabled(not busy)

    def _schedule(self) -> None:
        if not self._pending:
            self._pending = True               # several changes in a row: one rebuild
            QTimer.singleShot(0, self.rebuild)

    def rebuild(self) -> None:
        self._pending = False
        vm = self.vm
        self.gallery.blockSignals(True)
        self.gallery.clear()
        for k, r in enumerate(vm.entries):
            extra = "" if r.temperature is None else f" · T {r.temperature:g}"
            if r.placement == "model" and r.variety > 0:
                extra += f" · variety {r.variety:g}"
            elif r.placement != "model":
                extra += f" · {r.placement} placement"
            ref = r.reference
            extra += (f" · ref {ref}" if r.follows else f" · ref {ref} not followed") if ref else ""
            item = QListWidgetItem(f"{k + 1}   seed {r.seed} · {r.model}{extra}")
            item.setToolTip(f"Rendition {k + 1}: model {r.model}, seed {r.seed}"
                            + (f", temperature {r.temperature:g}" if r.temperature is not None else "")
                            + f", placement {r.placement} (variety {r.variety:g})"
                            + ((f", following the reference {ref}" if r.follows else
                                f", made with the reference {ref} but not following it (the placement "
                                f"model's own proposal)") if ref else "")
                            + (f"\nKey {k + 1} switches to it" if k < 9 else ""))
            if k == vm.current:
                f = QFont(item.font())
                f.setBold(True)
                item.setFont(f)
                item.setText("● " + item.text())
                item.setForeground(QBrush(theme.qcolor("#ffffff")))
            self.gallery.addItem(item)
        if 0 <= vm.current < self.gallery.count():
            self.gallery.setCurrentRow(vm.current)
        self.gallery.blockSignals(False)
        self.model_label.setText(f"Model: {vm.model}" if vm.has_renders else "")
        self.reference.refresh()
        self._busy(self.ctl.busy)
