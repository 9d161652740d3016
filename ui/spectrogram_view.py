"""The spectrogram coloured by source: each band-and-frame tile takes the colour of the source
that dominates it, its brightness the tile's level. Click to seek; Shift + drag a rectangle to
move a region of one source to another (:class:`ui.edit_widgets.RegionTool`). It reads the
timeline's and the sources' view models (length, colours) and the controller's views (levels)."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QRectF, Qt, QTimer
from PyQt6.QtGui import QColor

from core.bands import N_BANDS, band_centres_hz

from . import theme
from .edit_widgets import RegionTool

__all__ = ["SpectrogramView", "AXIS_WIDTH"]

AXIS_WIDTH = 44     # the waveform overview keeps an empty axis as wide, so their time axes line up


class SpectrogramView(pg.PlotWidget):
    def __init__(self, ctl, parent=None):
        super().__init__(parent)
        self.ctl = ctl
        self.setMinimumHeight(80)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        pi = self.getPlotItem()
        pi.setContentsMargins(4, 2, 4, 0)
        left = pi.getAxis("left")
        left.setWidth(AXIS_WIDTH)
        self._ticks = None
        self._set_ticks()
        self.image = pg.ImageItem(axisOrder="row-major")
        self.addItem(self.image)
        self.playhead = pg.InfiniteLine(0, angle=90, pen=pg.mkPen(theme.ACCENT, width=2), movable=False)
        self.playhead.setZValue(10)
        self.addItem(self.playhead)
        self.setYRange(0, N_BANDS, padding=0)
        self.scene().sigMouseClicked.connect(self._clicked)
        self.rgb: np.ndarray | None = None
        self._pending = False
        self.timeline, self.sources = ctl.vms.timeline, ctl.vms.sources
        for signal in (self.timeline.recording_changed, self.sources.sources_changed, ctl.views_changed,
                       ctl.engine_changed):
            signal.connect(self._schedule)
        self.transport = ctl.vms.transport        # the playhead
        self.transport.position_changed.connect(self._on_tick)
        self.region_tool = RegionTool(self, ctl)  # Shift + drag: move a region between sources (issue 26)

    def _set_ticks(self) -> None:
        """Frequency ticks, fewer where the view is too short for them all to be read."""
        freqs = (100, 300, 1000, 3000, 10000) if self.height() >= 130 else (100, 1000, 10000)
        if freqs == self._ticks:
            return
        self._ticks = freqs
        centres = band_centres_hz()
        ticks = [(int(np.argmin(np.abs(centres - hz))) + 0.5, f"{hz // 1000}k" if hz >= 1000 else str(hz))
                 for hz in freqs]
        self.getPlotItem().getAxis("left").setTicks([ticks, []])

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        if "_ticks" in self.__dict__:       # (pyqtgraph resizes the view while it is being built)
            self._set_ticks()

    def _schedule(self) -> None:
        if not self._pending:          # several events in a row: one reload
            self._pending = True
            QTimer.singleShot(0, self.reload)

    def reload(self) -> None:
        self._pending = False
        v, nodes, seconds = self.ctl.views, self.sources.nodes, self.timeline.seconds
        if v.dominant is None or not nodes or not self.timeline.has_recording:
            self.image.clear()
            self.rgb = None
            return
        lut = np.array([QColor(src.colour).getRgb()[:3] for src in nodes], np.float32)
        idx = np.clip(v.dominant, 0, len(lut) - 1)
        bright = (0.08 + 0.92 * v.level ** 1.6)[..., None]
        rgb = lut[idx] * bright + np.float32(18) * (1 - bright)
        self.rgb = np.clip(rgb, 0, 255).astype(np.uint8)       # [bands, frames, 3]
        self.image.setImage(self.rgb, levels=(0, 255))
        self.image.setRect(QRectF(0, 0, seconds, N_BANDS))
        self.setXRange(0, seconds, padding=0)
        self.setLimits(xMin=0, xMax=seconds)

    def _on_tick(self) -> None:
        if self.transport.available:
            self.playhead.setValue(self.transport.position)

    def _clicked(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton or not self.timeline.has_recording:
            return
        x = self.getPlotItem().vb.mapSceneToView(ev.scenePos()).x()
        self.ctl.seek(self.timeline.clip(x))
