"""The overview: the input's waveform with the playhead and the loop region; click to seek."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal

from app.display import waveform_envelope

from . import theme
from .spectrogram_view import AXIS_WIDTH

__all__ = ["WaveformView"]


class WaveformView(pg.PlotWidget):
    seekRequested = pyqtSignal(float)

    def __init__(self, ctl, parent=None):
        super().__init__(parent)
        self.ctl = ctl
        self.setMinimumHeight(70)
        self.setMaximumHeight(110)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        pi = self.getPlotItem()
        left = pi.getAxis("left")            # empty, as wide as the spectrogram's: time lines up
        left.setWidth(AXIS_WIDTH)
        left.setStyle(showValues=False, tickLength=0)
        left.setPen(pg.mkPen(None))
        pi.showGrid(x=True, y=False, alpha=0.15)
        pi.getAxis("bottom").setStyle(tickLength=-4)
        pi.setContentsMargins(4, 2, 4, 0)
        col = theme.qcolor("#7fa7c9")
        self.hi = pg.PlotDataItem(pen=pg.mkPen(col, width=1))
        self.lo = pg.PlotDataItem(pen=pg.mkPen(col, width=1))
        fill = theme.qcolor("#4f7394", 200)
        self.fill = pg.FillBetweenItem(self.hi, self.lo, brush=pg.mkBrush(fill))
        for item in (self.fill, self.hi, self.lo):
            self.addItem(item)
        self.loop = pg.LinearRegionItem(brush=pg.mkBrush(theme.qcolor(theme.ACCENT, 40)),
                                        pen=pg.mkPen(theme.qcolor(theme.ACCENT, 180)), movable=True)
        self.loop.setZValue(5)
        self.loop.hide()
        self.loop.sigRegionChangeFinished.connect(self._loop_moved)
        self.addItem(self.loop)
        self.playhead = pg.InfiniteLine(0, angle=90, pen=pg.mkPen(theme.ACCENT, width=2), movable=False)
        self.playhead.setZValue(10)
        self.addItem(self.playhead)
        self.setYRange(-1, 1, padding=0.05)
        self.scene().sigMouseClicked.connect(self._clicked)
        ctl.session_event.connect(self._on_event)
        ctl.tick.connect(self._on_tick)

    def _on_event(self, name: str) -> None:
        if name in ("recording", "sources"):
            self.reload()

    def reload(self) -> None:
        s = self.ctl.session
        if s.mono is None:
            self.hi.setData([], [])
            self.lo.setData([], [])
            return
        cols = 2400
        lo, hi = waveform_envelope(s.mono, cols)
        t = np.linspace(0, s.seconds, len(lo))
        peak = max(float(np.max(np.abs(hi))), float(np.max(np.abs(lo))), 1e-6)
        self.hi.setData(t, hi / peak)
        self.lo.setData(t, lo / peak)
        self.setXRange(0, s.seconds, padding=0)
        self.setLimits(xMin=0, xMax=s.seconds)

    def _on_tick(self) -> None:
        e = self.ctl.engine
        if e is not None:
            self.playhead.setValue(e.position / e.sample_rate)

    def _clicked(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton or self.ctl.session.mono is None:
            return
        x = self.getPlotItem().vb.mapSceneToView(ev.scenePos()).x()
        x = float(np.clip(x, 0, self.ctl.session.seconds))
        self.ctl.seek(x)
        self.seekRequested.emit(x)

    # --- loop -----------------------------------------------------------------------------------
    def set_loop_enabled(self, on: bool) -> None:
        s = self.ctl.session
        if on and s.mono is not None:
            a, b = self.loop.getRegion()
            if b - a < 0.1 or b > s.seconds:
                pos = self.ctl.engine.position / self.ctl.engine.sample_rate if self.ctl.engine else 0.0
                a, b = pos, min(s.seconds, pos + max(2.0, s.seconds / 8))
                self.loop.setRegion((a, b))
            self.loop.show()
            self.ctl.set_loop(*self.loop.getRegion())
        else:
            self.loop.hide()
            self.ctl.set_loop(None, None)

    def _loop_moved(self) -> None:
        if self.loop.isVisible():
            self.ctl.set_loop(*self.loop.getRegion())
