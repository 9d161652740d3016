"""The transport bar: play/pause, stop, loop, A/B against the mono original, position and length."""
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
        ctl.tick.connect(self.refresh)
        ctl.play_state.connect(lambda _p: self.refresh())
        ctl.engine_changed.connect(self.refresh)
        ctl.ab_changed.connect(self._ab_changed)
        ctl.busy_changed.connect(lambda _b: self.refresh())
        self.refresh()

    def _ab_changed(self, original: bool) -> None:
        self.ab.blockSignals(True)
        self.ab.setChecked(original)
        self.ab.blockSignals(False)
        self.ab.setText("A/B  Original" if original else "A/B  Stereo")

    def refresh(self) -> None:
        e = self.ctl.engine
        have = e is not None
        for w in (self.play, self.stop, self.loop, self.ab):
            w.setEnabled(have)
        if not have:
            self.time.setText("0:00.0")
            self.length.setText("/ 0:00.0")
            self.device.setText(self.ctl.playback_note)
            return
        self.play.setText("❚❚  Pause" if e.playing else "▶  Play")
        self.time.setText(clock(e.position / e.sample_rate))
        self.length.setText(f"/ {clock(e.length / e.sample_rate)}")
        note = self.ctl.playback_note
        self.device.setText(note)
        self.device.setToolTip(self.ctl.playback_detail or note)
        if self.ctl.playback_detail:
            self.device.setStyleSheet(f"color: {theme.WARN};")
