"""Output meters: left/right peak meters (with RMS and peak hold), a correlation meter, a
goniometer (vectorscope), the highest peak since the last reset with a clip indicator (click
either to reset), and the output gain the preview and the export share. They read the numbers
:func:`app.display.meter_values` computes from the engine's output tap; painting is all they do."""
from __future__ import annotations

import time

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt
from PyQt6.QtGui import QFont, QFontMetrics, QPainter, QPen
from PyQt6.QtWidgets import QCheckBox, QFrame, QGridLayout, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QWidget

from . import theme

__all__ = ["PeakMeter", "CorrelationMeter", "Goniometer", "MetersPanel"]

FLOOR_DB = -60.0
_CLIP_PAD = 6          # horizontal padding of the clip light (px)
CLIP_DB = 0.0          # a sample at or above full scale clips the output


def _frac(db: float) -> float:
    return min(1.0, max(0.0, (db - FLOOR_DB) / -FLOOR_DB))


class PeakMeter(QWidget):
    """Two vertical bars (L, R): RMS body, peak line, 1.5 s peak hold; red above -1 dBFS."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumSize(64, 96)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
        self.peak = [FLOOR_DB, FLOOR_DB]
        self.rms = [FLOOR_DB, FLOOR_DB]
        self.hold = [FLOOR_DB, FLOOR_DB]
        self._hold_t = [0.0, 0.0]

    def set_levels(self, peak_db, rms_db) -> None:
        now = time.monotonic()
        for ch in range(2):
            # fall back 20 dB/s, rise at once
            self.peak[ch] = max(float(peak_db[ch]), self.peak[ch] - 0.66)
            self.rms[ch] = max(float(rms_db[ch]), self.rms[ch] - 0.66)
            if peak_db[ch] >= self.hold[ch] or now - self._hold_t[ch] > 1.5:
                self.hold[ch], self._hold_t[ch] = float(peak_db[ch]), now
        self.update()

    def paintEvent(self, ev):
        qp = QPainter(self)
        qp.fillRect(self.rect(), theme.qcolor(theme.PANEL))
        h = self.height() - 20
        top = 4
        f = QFont(self.font())
        f.setPointSizeF(7.5)
        qp.setFont(f)
        for db in (0, -12, -24, -36, -48):
            y = top + (1 - _frac(db)) * h
            qp.setPen(theme.qcolor(theme.TEXT_DIM))
            qp.drawText(QRectF(0, y - 6, 22, 12), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, str(db))
            qp.setPen(theme.qcolor(theme.GRID))
            qp.drawLine(QPointF(25, y), QPointF(self.width() - 2, y))
        bw = (self.width() - 30) / 2 - 3
        for ch in range(2):
            x = 28 + ch * (bw + 4)
            qp.fillRect(QRectF(x, top, bw, h), theme.qcolor(theme.BG))
            pk, rm = _frac(self.peak[ch]), _frac(self.rms[ch])
            grad_col = theme.BAD if self.peak[ch] > -1.0 else (theme.WARN if self.peak[ch] > -6 else theme.GOOD)
            qp.fillRect(QRectF(x, top + (1 - pk) * h, bw, pk * h), theme.qcolor(grad_col, 110))
            qp.fillRect(QRectF(x, top + (1 - rm) * h, bw, rm * h), theme.qcolor(grad_col, 230))
            hy = top + (1 - _frac(self.hold[ch])) * h
            qp.setPen(QPen(theme.qcolor(theme.BAD if self.hold[ch] > -1 else theme.TEXT), 2))
            if self.hold[ch] > FLOOR_DB:
                qp.drawLine(QPointF(x, hy), QPointF(x + bw, hy))
            qp.setPen(theme.qcolor(theme.TEXT_DIM))
            qp.drawText(QRectF(x, top + h + 2, bw, 14), Qt.AlignmentFlag.AlignCenter, "LR"[ch])
        qp.end()


class CorrelationMeter(QWidget):
    """Phase correlation from -1 (out of phase, red) through 0 (wide) to +1 (mono)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumHeight(34)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.value = 0.0
        self.active = False

    def set_value(self, corr: float, active: bool = True) -> None:
        self.value = 0.8 * self.value + 0.2 * float(np.clip(corr, -1, 1)) if active else self.value
        self.active = active
        self.update()

    def paintEvent(self, ev):
        qp = QPainter(self)
        qp.setRenderHint(QPainter.RenderHint.Antialiasing)
        qp.fillRect(self.rect(), theme.qcolor(theme.PANEL))
        r = QRectF(6, 4, self.width() - 12, 12)
        qp.fillRect(r, theme.qcolor(theme.BG))
        mid = r.left() + r.width() / 2
        x = mid + self.value * r.width() / 2
        col = theme.BAD if self.value < 0 else (theme.WARN if self.value < 0.3 else theme.GOOD)
        if self.active:
            qp.fillRect(QRectF(min(mid, x), r.top() + 2, abs(x - mid), r.height() - 4), theme.qcolor(col, 220))
        qp.setPen(theme.qcolor(theme.GRID))
        qp.drawLine(QPointF(mid, r.top()), QPointF(mid, r.bottom()))
        f = QFont(self.font())
        f.setPointSizeF(7.5)
        qp.setFont(f)
        qp.setPen(theme.qcolor(theme.TEXT_DIM))
        qp.drawText(QRectF(r.left(), r.bottom() + 1, 30, 14), Qt.AlignmentFlag.AlignLeft, "−1")
        qp.drawText(QRectF(mid - 40, r.bottom() + 1, 80, 14), Qt.AlignmentFlag.AlignCenter,
                    f"corr {self.value:+.2f}" if self.active else "corr")
        qp.drawText(QRectF(r.right() - 30, r.bottom() + 1, 30, 14), Qt.AlignmentFlag.AlignRight, "+1")
        qp.end()


class Goniometer(QWidget):
    """The vectorscope: mid up, side across; a mono signal is a vertical line."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumSize(96, 96)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.side = np.zeros(0)
        self.mid = np.zeros(0)

    def set_points(self, side: np.ndarray, mid: np.ndarray) -> None:
        self.side, self.mid = side, mid
        self.update()

    def heightForWidth(self, w: int) -> int:
        return w

    def paintEvent(self, ev):
        qp = QPainter(self)
        qp.setRenderHint(QPainter.RenderHint.Antialiasing)
        qp.fillRect(self.rect(), theme.qcolor(theme.PANEL))
        size = min(self.width(), self.height()) - 8
        c = QPointF(self.width() / 2, self.height() / 2)
        half = size / 2
        qp.setPen(QPen(theme.qcolor(theme.GRID), 1))
        qp.setBrush(theme.qcolor(theme.BG))
        qp.drawEllipse(c, half, half)
        qp.drawLine(QPointF(c.x(), c.y() - half), QPointF(c.x(), c.y() + half))
        qp.drawLine(QPointF(c.x() - half, c.y()), QPointF(c.x() + half, c.y()))
        d = half * 0.7071
        qp.setPen(QPen(theme.qcolor(theme.GRID), 1, Qt.PenStyle.DotLine))
        qp.drawLine(QPointF(c.x() - d, c.y() - d), QPointF(c.x() + d, c.y() + d))
        qp.drawLine(QPointF(c.x() - d, c.y() + d), QPointF(c.x() + d, c.y() - d))
        f = QFont(self.font())
        f.setPointSizeF(7.5)
        qp.setFont(f)
        qp.setPen(theme.qcolor(theme.TEXT_DIM))
        qp.drawText(QRectF(c.x() - d - 14, c.y() - d - 14, 14, 14), Qt.AlignmentFlag.AlignCenter, "L")
        qp.drawText(QRectF(c.x() + d, c.y() - d - 14, 14, 14), Qt.AlignmentFlag.AlignCenter, "R")
        qp.drawText(QRectF(c.x() - 10, c.y() - half + 1, 20, 12), Qt.AlignmentFlag.AlignCenter, "M")
        if len(self.side):
            scale = half * 1.4      # -3 dBFS mid reaches the rim
            xs = np.clip(c.x() + self.side * scale, c.x() - half, c.x() + half)
            ys = np.clip(c.y() - self.mid * scale, c.y() - half, c.y() + half)
            qp.setPen(QPen(theme.qcolor("#7fe0b0", 120), 1.6))
            qp.drawPoints([QPointF(float(x), float(y)) for x, y in zip(xs[::2], ys[::2])])
        qp.end()


class MetersPanel(QFrame):
    def __init__(self, ctl, parent=None):
        super().__init__(parent)
        self.ctl = ctl
        self.setObjectName("panel")
        grid = QGridLayout(self)
        grid.setContentsMargins(8, 8, 8, 8)
        title = QLabel("OUTPUT")
        title.setObjectName("title")
        grid.addWidget(title, 0, 0)
        self.mono_compat = QCheckBox("Mono-compatible")
        self.mono_compat.setToolTip("Build the stereo as mid = the recording and side = a mix of the recording and "
                                    "its decorrelated copy: (L + R) / 2 is the recording exactly (times the output "
                                    "gain). Saved in the project.")
        self.mono_compat.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.mono_compat.toggled.connect(lambda on: self.ctl.set_mono_compatible(on))
        grid.addWidget(self.mono_compat, 0, 1, Qt.AlignmentFlag.AlignRight)
        self.peak = PeakMeter()
        self.gonio = Goniometer()
        self.corr = CorrelationMeter()
        grid.addWidget(self.peak, 1, 0)
        grid.addWidget(self.gonio, 1, 1)
        grid.addWidget(self.corr, 2, 0, 1, 2)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        self.peak_button = QPushButton("peak −∞")
        self.peak_button.setObjectName("peakReadout")
        self.peak_button.setToolTip("Highest sample peak since the last reset (dBFS); click to reset")
        self.peak_button.setFlat(True)
        self.clip_button = QPushButton("CLIP")
        self.clip_button.setObjectName("clipIndicator")
        self.clip_button.setToolTip("Lights when a sample reached full scale; click to reset")
        bold = QFont(self.clip_button.font())
        bold.setBold(True)               # the text fits: bold width + the padding set in _show_peak
        self.clip_button.setFixedWidth(QFontMetrics(bold).horizontalAdvance("CLIP") + 2 * _CLIP_PAD + 8)
        self.gain_label = QLabel("out gain —")
        self.gain_label.setToolTip("The output gain the preview plays and the export applies")
        self.gain_label.setStyleSheet(f"color: {theme.TEXT_DIM};")
        self.gain_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        # readouts as wide as their widest text: the panel keeps its size as the numbers change
        self.gain_label.setMinimumWidth(QFontMetrics(self.gain_label.font()).horizontalAdvance("out gain -88.8 dB") + 2)
        self.peak_button.setMinimumWidth(self.peak_button.fontMetrics().horizontalAdvance("peak -88.8 dBFS") + 20)
        for b in (self.peak_button, self.clip_button):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(self.reset_peak)
        row.addWidget(self.peak_button)
        row.addWidget(self.clip_button)
        row.addStretch(1)
        row.addWidget(self.gain_label)
        grid.addLayout(row, 3, 0, 1, 2)
        grid.setColumnStretch(1, 1)
        self._seen = -1
        self.last = None
        self.max_peak_db = -float("inf")
        self.clipped = False
        self._show_peak()
        self.vm = ctl.output_vm                 # the output stage's view model (the controller sets it)
        ctl.tick.connect(self.refresh)
        self.vm.gain_changed.connect(self.show_gain)
        self.vm.mode_changed.connect(self._sync_mode)
        self._sync_mode()
        self.show_gain()

    def _sync_mode(self) -> None:
        self.mono_compat.blockSignals(True)
        self.mono_compat.setChecked(self.vm.mono_compatible)
        self.mono_compat.blockSignals(False)
        self.mono_compat.setEnabled(self.vm.mode_enabled)

    def reset_peak(self) -> None:
        """Forget the highest peak and the clip light."""
        self.max_peak_db = -float("inf")
        self.clipped = False
        self._show_peak()

    def _show_peak(self) -> None:
        v = self.max_peak_db
        self.peak_button.setText("peak −∞" if v == -float("inf") else f"peak {v:+.1f} dBFS")
        col = theme.BAD if self.clipped else theme.PANEL
        self.clip_button.setStyleSheet(f"background: {col}; color: {theme.TEXT if self.clipped else theme.TEXT_DIM};"
                                       f" font-weight: bold; padding: 2px {_CLIP_PAD}px;")

    def show_gain(self) -> None:
        g = self.vm.gain_db
        if g is None:
            self.gain_label.setText("out gain —")
            return
        self.gain_label.setText(f"out gain {g:+.1f} dB")
        d = self.vm.gain_description
        self.gain_label.setToolTip(d[:1].upper() + d[1:])

    def refresh(self) -> None:
        tap = self.ctl.tap
        if tap.written == self._seen:           # nothing new: let the bars fall
            self.peak.set_levels((FLOOR_DB, FLOOR_DB), (FLOOR_DB, FLOOR_DB))
            self.corr.set_value(0.0, active=False)
            return
        new = tap.written - self._seen if self._seen >= 0 else tap.written
        self._seen = tap.written
        fresh = tap.last(int(min(new, tap.size)))
        if len(fresh):
            pk = float(np.max(np.abs(fresh)))
            db = 20 * np.log10(pk) if pk > 0 else -float("inf")
            if db > self.max_peak_db or (db >= CLIP_DB and not self.clipped):
                self.max_peak_db = max(db, self.max_peak_db)
                self.clipped = self.clipped or db >= CLIP_DB
                self._show_peak()
        v = self.ctl.meters(2048)
        self.last = v
        self.peak.set_levels(v.peak_db, v.rms_db)
        silent = max(v.peak_db) < -70
        self.corr.set_value(v.correlation, active=not silent)
        self.gonio.set_points(v.side, v.mid)
