"""The separation panel: choose a backend and its few settings, then separate in a worker.

"Separate on open" (kept in QSettings, on by default) separates a recording as soon as it opens,
with the settings shown; turned off, a recording only loads, so the number of sources (or the
Demucs model) can be chosen before the first separation."""
from __future__ import annotations

from PyQt6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFrame, QHBoxLayout, QLabel, QPushButton, QSpinBox,
                             QStackedWidget, QVBoxLayout, QWidget)

import separation

from . import theme

__all__ = ["SeparationPanel", "DEMUCS_MODELS"]

DEMUCS_MODELS = ("htdemucs", "htdemucs_6s", "htdemucs_ft")


def _settings_row(pairs) -> QWidget:
    """Labelled fields side by side on one line (each field as wide as its longest value)."""
    w = QWidget()
    row = QHBoxLayout(w)
    row.setContentsMargins(0, 0, 0, 0)
    row.setSpacing(6)
    for k, (text, field) in enumerate(pairs):
        if k:
            row.addSpacing(8)
        row.addWidget(QLabel(text))
        field.setMinimumWidth(field.minimumSizeHint().width() + 8)
        row.addWidget(field, 1)
    return w


class SeparationPanel(QFrame):
    def __init__(self, ctl, parent=None):
        super().__init__(parent)
        self.ctl = ctl
        self.setObjectName("panel")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 8)
        lay.setSpacing(5)
        title = QLabel("SEPARATION")
        title.setObjectName("title")
        self.backend = QComboBox()
        self.infos = separation.list_backends()
        for info in self.infos:
            ok, why = info.available()
            self.backend.addItem(info.label, info.name)
            idx = self.backend.count() - 1
            self.backend.setItemData(idx, info.description + ("" if ok else f"\nUnavailable: {why}"),
                                     3)  # Qt.ItemDataRole.ToolTipRole
        default = self.backend.findData("formation")  # the default backend needs no model files
        if default >= 0:
            self.backend.setCurrentIndex(default)
        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(title)
        head.addWidget(self.backend, 1)
        lay.addLayout(head)
        self.stack = QStackedWidget()
        # formation
        self.n_sources = QSpinBox()
        self.n_sources.setRange(1, 16)
        self.n_sources.setSpecialValueText("auto")
        self.n_sources.setValue(1)
        self.n_sources.setToolTip("Number of sources to find (2–16: more, smaller ones to merge by hand), or auto")
        self.sensitivity = QDoubleSpinBox()
        self.sensitivity.setRange(0.0, 1.0)
        self.sensitivity.setSingleStep(0.1)
        self.sensitivity.setValue(0.5)
        self.sensitivity.setToolTip("How readily quiet peaks count (0–1)")
        # demucs
        self.demucs_model = QComboBox()
        self.demucs_model.addItems(DEMUCS_MODELS)
        self.shifts = QSpinBox()
        self.shifts.setRange(0, 10)
        self.shifts.setValue(1)
        self.shifts.setToolTip("Random shifts averaged (better, slower)")
        for pairs in ((("Sources", self.n_sources), ("Sensitivity", self.sensitivity)),
                      (("Model", self.demucs_model), ("Shifts", self.shifts))):
            self.stack.addWidget(_settings_row(pairs))
        lay.addWidget(self.stack)
        self.desc = QLabel()
        self.desc.setWordWrap(True)
        self.desc.setStyleSheet(f"color: {theme.TEXT_DIM}; font-size: 8.5pt;")
        lay.addWidget(self.desc)
        self.run = QPushButton("Separate")
        self.run.setToolTip("Find the sources with these settings (in the background)")
        self.run.clicked.connect(self.request)
        self.auto = QCheckBox("Separate on open")
        self.auto.setToolTip("Separate a recording as soon as it opens, with these settings. Off: a recording only "
                             "loads; choose the settings, then press Separate.")
        self.auto.setChecked(ctl.settings.value("separation/auto", True, bool))
        self.auto.toggled.connect(lambda on: ctl.settings.setValue("separation/auto", bool(on)))
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.run, 1)
        row.addWidget(self.auto)
        lay.addLayout(row)
        self.backend.currentIndexChanged.connect(self._backend_changed)
        ctl.busy_changed.connect(lambda busy: self.run.setEnabled(not busy))
        self._backend_changed()

    def show_description(self, on: bool) -> None:
        """Show the chosen separator's description under its settings (where the window has the
        height; it is always the backend list's tooltip)."""
        self.desc.setVisible(on)

    def _backend_changed(self) -> None:
        name = self.backend.currentData()
        self.stack.setCurrentIndex(0 if name == "formation" else 1)
        info = next(i for i in self.infos if i.name == name)
        ok, why = info.available()
        self.desc.setText(info.description + ("" if ok else f"\nUnavailable: {why}"))
        self.backend.setToolTip(self.desc.text())

    def settings(self) -> tuple[str, dict]:
        name = self.backend.currentData()
        if name == "formation":
            n = self.n_sources.value()
            return name, {"n_sources": None if n < 2 else n, "sensitivity": round(self.sensitivity.value(), 3)}
        st = {"model": self.demucs_model.currentText(), "shifts": self.shifts.value()}
        return name, st

    def request(self):
        name, st = self.settings()
        return self.ctl.separate(name, st)
