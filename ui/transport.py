"""The transport bar: play/pause, stop, loop, A/B against the mono original, position and length.
It shows the transport's view model (:class:`ui.viewmodels.TransportViewModel`) and acts through the
controller."""
from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy

from . import theme

__all__ = ["TransportBar", "clock"]


def clock(seconds: float) -> str:
    seconds = max(0.0, seconds)
    m, s = divmod(seconds, 60)
    return f"{int(m)}:{s:04.1f}"


class TransportBar(QFrame):
    loopToggled = pyqtSignal(bool)

    def __init__(self, ctl, parent=None):
        super().__init__(parent)
        self.ctl = ctl
        self.vm = ctl.vms.transport              # what it shows (the controller sets it)
        self.setObjectName("panel")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 6)
        lay.setSpacing(6)
        self.play = QPushButton("▶  Play")
        self.play.setObjectName("primary")
        self.play.setToolTip("Play / pause (Space)")
        self.play.setMinimumWidth(96)
        self.play.clicked.connect(ctl.toggle_play)
        self.stop = QPushButton("■  Stop")
        self.stop.setToolTip("Stop and go back to the start")
        self.stop.clicked.connect(ctl.stop)
        self.loop = QPushButton("⟲  Loop")
        self.loop.setCheckable(True)
        self.loop.setToolTip("Loop the region dragged on the overview, or the whole recording when none is marked (L)")
        self.loop.toggled.connect(self.loopToggled.emit)
        self.ab = QPushButton("A/B  Stereo")
        self.ab.setCheckable(True)
        self.ab.setToolTip("Switch between the stereo render (A) and the mono original (B)  (key: B)")
        self.ab.toggled.connect(lambda on: ctl.set_ab(on))
        self.ab.setMinimumWidth(120)
        self.time = QLabel("0:00.0")
        self.time.setObjectName("time")
        self.length = QLabel("/ 0:00.0")
        self.length.setStyleSheet(f"color: {theme.TEXT_DIM}; font-family: 'DejaVu Sans Mono';")
        self.device = QLabel("")
        self.device.setStyleSheet(f"color: {theme.TEXT_DIM};")
        self.device.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.device.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        for w in (self.play, self.stop, self.loop, self.ab):
            lay.addWidget(w)
        lay.addSpacing(14)
        lay.addWidget(self.time)
        lay.addWidget(self.length)
        lay.addStretch(1)
        lay.addWidget(self.device, 2)
        for signal in (self.vm.state_changed, self.vm.position_changed, self.vm.device_changed):
            signal.connect(self.refresh)
        ctl.ab_changed.connect(self._ab_changed)
        self.refresh()

    def _ab_changed(self, original: bool) -> None:
        self.ab.blockSignals(True)
        self.ab.setChecked(original)
        self.ab.blockSignals(False)
        self.ab.setText("A/B  Original" if original else "A/B  Stereo")

    def refresh(self) -> None:
        vm = self.vm
        have = vm.available
        for w in (self.play, self.stop, self.loop, self.ab):
            w.setEnabled(have)
        if not have:
            self.time.setText("0:00.0")
            self.length.setText("/ 0:00.0")
            self.device.setText(vm.note)
            return
        self.play.setText("❚❚  Pause" if vm.playing else "▶  Play")
        self.time.setText(clock(vm.position))
        self.length.setText(f"/ {clock(vm.length)}")
        note = vm.note
        self.device.setText(note)
        self.device.setToolTip(vm.detail or note)
        if vm.detail:
            self.device.setStyleSheet(f"color: {theme.WARN};")
