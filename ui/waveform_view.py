"""The overview: the input's waveform with the playhead and the loop region.

Click to seek; drag to mark a loop region (drag its edges to adjust it, double-click to clear it).
The loop (transport button, key L) plays the marked region, or the whole recording when none is
marked. It reads the timeline's view model (:class:`ui.viewmodels.TimelineViewModel`) and keeps
the marked region in the session through the controller."""
from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal

from app.display import waveform_envelope

from . import theme
from .spectrogram_view import AXIS_WIDTH

__all__ = ["WaveformView", "MIN_REGION_S"]

MIN_REGION_S = 0.05     # a shorter drag is a click, not a region


class _OverviewBox(pg.ViewBox):
    """A view box whose left-button drag marks a time span (instead of panning)."""
    spanDragged = pyqtSignal(float, float, bool)   # start s, end s, finished

    def mouseDragEvent(self, ev, axis=None):
        if ev.button() != Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        ev.accept()
        a = self.mapSceneToView(ev.buttonDownScenePos()).x()
        b = self.mapSceneToView(ev.scenePos()).x()
        self.spanDragged.emit(float(a), float(b), bool(ev.isFinish()))


class WaveformView(pg.PlotWidget):
    seekRequested = pyqtSignal(float)
    regionChanged = pyqtSignal()        # the marked region was set, moved or cleared

    def __init__(self, ctl, parent=None):
        self.box = _OverviewBox()
        super().__init__(parent, viewBox=self.box)
        self.ctl = ctl
        self.setMinimumHeight(48)
        self.setMaximumHeight(110)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.setToolTip("Click to seek; drag to mark a loop region; double-click to clear it")
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
        self.loop = pg.LinearRegionItem(movable=True)
        self.loop.setZValue(5)
        self.loop.hide()
        self.loop.sigRegionChanged.connect(self._loop_moved)
        self.addItem(self.loop)
        self.loop_enabled = False
        self._style_region()
        self.playhead = pg.InfiniteLine(0, angle=90, pen=pg.mkPen(theme.ACCENT, width=2), movable=False)
        self.playhead.setZValue(10)
        self.addItem(self.playhead)
        self.setYRange(-1, 1, padding=0.05)
        self.scene().sigMouseClicked.connect(self._clicked)
        self.box.spanDragged.connect(self._span_dragged)
        self.vm = ctl.vms.timeline                # the recording and its region (the controller sets them)
        self.vm.recording_changed.connect(self._recording_changed)
        self.transport = ctl.vms.transport        # the playhead
        self.transport.position_changed.connect(self._on_tick)
        ctl.engine_changed.connect(self._apply)     # a new engine (new sources) loops the same span

    def _recording_changed(self) -> None:
        self.loop.hide()                          # (not cleared in the session: a project's comes back)
        self.reload()
        span = self.vm.loop_region                # a project's marked region comes back
        if span is not None and span != self.region():
            self.set_region(*span)

    def reload(self) -> None:
        mono, seconds = self.vm.mono, self.vm.seconds
        if mono is None:
            self.hi.setData([], [])
            self.lo.setData([], [])
            return
        cols = 2400
        lo, hi = waveform_envelope(mono, cols)
        t = np.linspace(0, seconds, len(lo))
        peak = max(float(np.max(np.abs(hi))), float(np.max(np.abs(lo))), 1e-6)
        self.hi.setData(t, hi / peak)
        self.lo.setData(t, lo / peak)
        self.setXRange(0, seconds, padding=0)
        self.setLimits(xMin=0, xMax=seconds)
        self.loop.setBounds((0, seconds))

    def _on_tick(self) -> None:
        if self.transport.available:
            self.playhead.setValue(self.transport.position)

    def _clicked(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton or not self.vm.has_recording:
            return
        if ev.double():
            self.clear_region()
            return
        x = self.box.mapSceneToView(ev.scenePos()).x()
        x = self.vm.clip(x)
        self.ctl.seek(x)
        self.seekRequested.emit(x)

    # --- loop -----------------------------------------------------------------------------------
    def region(self) -> Optional[tuple[float, float]]:
        """The marked region (start, end) in seconds, or None."""
        if not self.loop.isVisible():
            return None
        a, b = self.loop.getRegion()
        return float(a), float(b)

    def set_region(self, start: float, end: float) -> None:
        """Mark ``start``..``end`` seconds (clipped to the recording; shorter than MIN_REGION_S clears)."""
        a, b = sorted((self.vm.clip(start), self.vm.clip(end)))
        if b - a < MIN_REGION_S:
            self.clear_region()
            return
        self.loop.blockSignals(True)
        self.loop.setRegion((a, b))
        self.loop.blockSignals(False)
        self.loop.show()
        self._edited()

    def clear_region(self) -> None:
        if self.loop.isVisible():
            self.loop.hide()
            self._edited()

    def loop_span(self) -> Optional[tuple[float, float]]:
        """What the loop plays: the marked region, or the whole recording; None without one."""
        if not self.vm.has_recording:
            return None
        return self.region() or (0.0, self.vm.seconds)

    def set_loop_enabled(self, on: bool) -> None:
        self.loop_enabled = bool(on)
        self._style_region()
        self._apply()
        span = self.loop_span()
        if on and span is not None:
            what = "the marked region" if self.region() else "the whole recording (drag on the overview to mark a region)"
            self.ctl.status.emit(f"Loop on: {what}")

    def _span_dragged(self, a: float, b: float, finished: bool) -> None:
        if not self.vm.has_recording:
            return
        a, b = sorted((self.vm.clip(a), self.vm.clip(b)))
        if b - a < MIN_REGION_S:
            if finished:
                self.clear_region()
            return
        self.loop.blockSignals(True)
        self.loop.setRegion((a, b))
        self.loop.blockSignals(False)
        self.loop.show()
        if finished:
            self._edited()

    def _loop_moved(self) -> None:
        if self.loop.isVisible():
            self._edited()

    def _apply(self) -> None:
        """Tell the engine what to loop (nothing when the loop is off)."""
        span = self.loop_span() if self.loop_enabled else None
        if span is None:
            self.ctl.set_loop(None, None)
        else:
            self.ctl.set_loop(*span)
        self.regionChanged.emit()

    def _edited(self) -> None:
        """The person marked, moved or cleared the region: the session keeps it (saved in the project)."""
        self._apply()
        self.ctl.set_region(self.region())

    def _style_region(self) -> None:
        alpha = (45, 200) if self.loop_enabled else (18, 90)    # dimmer while the loop is off
        self.loop.setBrush(pg.mkBrush(theme.qcolor(theme.ACCENT, alpha[0])))
        for line in self.loop.lines:
            line.setPen(pg.mkPen(theme.qcolor(theme.ACCENT, alpha[1]), width=2))
