"""The pan canvas: every source is a coloured node in the stereo image.

Horizontal: pan from hard left to hard right. Vertical: width, from a point source (bottom) to
fully diffuse (top). Node size: the source's loudness (with its gain). The translucent bar through
a node shows how far its width spreads it. Pinned nodes are drawn solid with a pin; "auto" nodes
have a dashed ring, and a faint trail and halo show where the model moves them around the playhead.
Drag a node to move it (heard while dragging); right-click for mute, solo, pin, rename and reset.
A click takes the node whose centre is nearest (so stacked nodes can all be grabbed), and labels
are laid out so that they never overprint: each goes below its node, else above, right or left,
else to the nearest free slot in a column under or over it (joined to its node by a thin line),
preferring places that cover no other node. Everything a source draws (node, glow, trail, label)
stays inside the plot's frame, clear of the axis labels: pan and width map onto the frame less room
for the largest node, so a node at pan 1.00 or width 0 is drawn whole.

It draws the sources' view model (:class:`ui.viewmodels.SourcesViewModel`: one node per source)
and acts through the controller's methods.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Optional

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QAction, QBrush, QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen, QRadialGradient
from PyQt6.QtWidgets import QInputDialog, QMenu, QSizePolicy, QWidget

from app.display import frame_of_sample

from . import theme
from .edit_widgets import add_edit_menu

__all__ = ["PanCanvas"]

TRAIL_FRAMES = 86          # about two seconds of model motion behind the playhead
MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 46, 22, 30, 34
RADIUS_MIN, RADIUS_MAX = 9.0, 26.0      # px: the quietest and the loudest source's node


class PanCanvas(QWidget):
    nodeSelected = pyqtSignal(int)

    def __init__(self, ctl, parent=None):
        super().__init__(parent)
        self.ctl = ctl
        self.setMinimumSize(340, 220)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setAccessibleName("Pan canvas")
        self._drag: Optional[int] = None
        self._hover: Optional[int] = None
        self.selected: Optional[int] = None
        self.paints = 0
        self.vm = ctl.vms.sources                # the nodes it draws (the controller sets them)
        self.vm.sources_changed.connect(self._sources_changed)
        for signal in (self.vm.nodes_changed, self.vm.ab_changed, self.vm.state_changed, ctl.views_changed):
            signal.connect(self.update)
        ctl.editing.selection_changed.connect(self.update)
        self.transport = ctl.vms.transport       # the playhead the trails follow
        ctl.tick.connect(self._on_tick)
        ctl.busy_changed.connect(lambda _b: self.update())

    # --- geometry -------------------------------------------------------------------------------
    def plot_rect(self) -> QRectF:
        """The plot's frame; nodes, their glows and labels are drawn inside it, axis labels outside."""
        return QRectF(MARGIN_L, MARGIN_T, max(10, self.width() - MARGIN_L - MARGIN_R),
                      max(10, self.height() - MARGIN_T - MARGIN_B))

    def _scale(self) -> float:
        """Node sizes shrink a little on a small canvas (a laptop screen)."""
        r = self.plot_rect()
        return float(np.clip(min(r.width(), r.height()) / 300.0, 0.7, 1.0))

    def data_rect(self) -> QRectF:
        """Where pan -1..+1 and width 0..1 lie: the frame less room for the largest node (and its
        solo ring), so a node at pan 1.00 or width 0 is drawn whole inside the frame."""
        r = self.plot_rect()
        pad = min(RADIUS_MAX * self._scale() + 6, r.width() / 2 - 1, r.height() / 2 - 1)
        return r.adjusted(pad, pad, -pad, -pad)

    def to_screen(self, pan: float, width: float) -> QPointF:
        r = self.data_rect()
        return QPointF(r.left() + (pan + 1) / 2 * r.width(), r.bottom() - width * r.height())

    def from_screen(self, pt: QPointF) -> tuple[float, float]:
        r = self.data_rect()
        pan = (pt.x() - r.left()) / r.width() * 2 - 1
        width = (r.bottom() - pt.y()) / r.height()
        return float(np.clip(pan, -1, 1)), float(np.clip(width, 0, 1))

    def node_radius(self, i: int) -> float:
        loud = self.ctl.views.loudness_db
        node = self.vm.node(i)
        db = loud[i] if i < len(loud) else -12.0
        if node is not None:
            db += node.gain_db
        t = float(np.clip((db + 36.0) / 36.0, 0.0, 1.0))      # -36 dB .. 0 dB -> small .. large
        return (RADIUS_MIN + (RADIUS_MAX - RADIUS_MIN) * t) * self._scale()

    def node_at(self, pt: QPointF) -> Optional[int]:
        """The node whose centre is nearest to ``pt``, if ``pt`` is on some node (or within 4 px);
        among nodes with the same centre, the smallest (drawn on top)."""
        hits = []
        for i, p in enumerate(self.vm.nodes):
            c = self.to_screen(p.pan, p.width)
            d = math.hypot(c.x() - pt.x(), c.y() - pt.y())
            hits.append((d, self.node_radius(i), i, d <= self.node_radius(i) + 4))
        if not any(h[3] for h in hits):
            return None
        return min(hits)[2]

    def _label_font(self, bold: bool = False) -> QFont:
        f = QFont(self.font())
        f.setPointSizeF(8.5)
        f.setBold(bold)
        return f

    def label_text(self, i: int) -> str:
        node = self.vm.nodes[i]
        return node.name + ("  (muted)" if node.mute else "")

    def label_rects(self) -> list[QRectF]:
        """Where each node's label goes [one QRectF per source]: inside the plot's frame (clear of
        the axis labels), no two overlapping where the frame has room for them all."""
        n = len(self.vm.nodes)
        fm = QFontMetricsF(self._label_font(True))
        bounds = self.plot_rect().adjusted(2, 2, -2, -2)
        placed: list[QRectF] = []
        nodes = []                                      # node discs, kept clear of other nodes' labels
        for k in range(n):
            c, rad = self.node_center(k), self.node_radius(k)
            nodes.append(QRectF(c.x() - rad, c.y() - rad, 2 * rad, 2 * rad))
        out: list[Optional[QRectF]] = [None] * n
        order = sorted(range(n), key=lambda k: (-self.node_radius(k), k))   # loud sources get the best places
        for i in order:
            c, rad = self.node_center(i), self.node_radius(i)
            w, h = min(fm.horizontalAdvance(self.label_text(i)) + 8, bounds.width()), fm.height() + 2
            below = QRectF(c.x() - w / 2, c.y() + rad + 2, w, h)
            cands = [below, QRectF(c.x() - w / 2, c.y() - rad - 2 - h, w, h),
                     QRectF(c.x() + rad + 4, c.y() - h / 2, w, h), QRectF(c.x() - rad - 4 - w, c.y() - h / 2, w, h)]
            for k in range(1, 2 * n + 2):
                cands.append(below.translated(0, k * h))
                cands.append(below.translated(0, -(k * h + 2 * rad + 4 + h)))
            for dx in (w / 2 + rad + 4, -(w / 2 + rad + 4), w + 4, -(w + 4)):
                for k in range(-1, 2 * n + 2):
                    cands.append(below.translated(dx, k * h))
                    cands.append(below.translated(dx, -(k * h + 2 * rad + 4 + h)))
            inside = [self._clamped(r, bounds) for r in cands]
            # the four places around the node first, then the nearest of the others
            inside = inside[:4] + sorted(inside[4:], key=lambda r: math.hypot(r.center().x() - c.x(),
                                                                               r.center().y() - c.y()))
            others = [q for k, q in enumerate(nodes) if k != i]
            free = [r for r in inside if not any(r.intersects(q) for q in placed)]
            clear = [r for r in free if not any(r.intersects(q) for q in others)]
            free = clear or free
            pick = free[0] if free else min(inside, key=lambda r: sum(r.intersected(q).width() * r.intersected(q).height()
                                                                     for q in placed))
            placed.append(pick)
            out[i] = pick
        return out

    @staticmethod
    def _clamped(r: QRectF, bounds: QRectF) -> QRectF:
        """``r`` moved the least that puts it inside ``bounds``."""
        x = min(max(r.left(), bounds.left()), bounds.right() - r.width())
        y = min(max(r.top(), bounds.top()), bounds.bottom() - r.height())
        return QRectF(x, y, r.width(), r.height())

    def node_center(self, i: int) -> QPointF:
        p = self.vm.nodes[i]
        return self.to_screen(p.pan, p.width)

    # --- events ---------------------------------------------------------------------------------
    def _sources_changed(self) -> None:
        self.selected = None                     # other sources (or renamed): nothing selected
        self.update()

    def _on_tick(self) -> None:
        if self.transport.playing:
            self.update()

    def mousePressEvent(self, ev):
        i = self.node_at(ev.position())
        if ev.button() == Qt.MouseButton.LeftButton and i is not None \
                and ev.modifiers() & Qt.KeyboardModifier.ControlModifier:   # tick for merge / A/B (issue 26)
            self.ctl.editing.select(i, i not in self.ctl.editing.selected)
            return
        if ev.button() == Qt.MouseButton.LeftButton and i is not None and not self.ctl.busy:
            self._drag = i
            self.selected = i
            self.nodeSelected.emit(i)
            self.ctl.begin_drag(i)
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            self.update()
        elif ev.button() == Qt.MouseButton.RightButton and i is not None:
            self.selected = i
            self.show_menu(i, ev.globalPosition().toPoint())

    def mouseMoveEvent(self, ev):
        if self._drag is not None:
            pan, width = self.from_screen(ev.position())
            self.ctl.drag_to(self._drag, pan, width)
            self.repaint() if self.immediate else self.update()
        else:
            i = self.node_at(ev.position())
            if i != self._hover:
                self._hover = i
                self.setCursor(Qt.CursorShape.OpenHandCursor if i is not None else Qt.CursorShape.ArrowCursor)
                if i is not None:
                    p = self.vm.nodes[i]
                    self.setToolTip(f"{p.name}\npan {p.pan:+.2f}  width {p.width:.2f}  "
                                    f"gain {p.gain_db:+.1f} dB\n{p.mode}")
                else:
                    self.setToolTip("")
                self.update()

    immediate = False   # the drag benchmark repaints synchronously to time each frame

    def mouseReleaseEvent(self, ev):
        if self._drag is not None:
            i, self._drag = self._drag, None
            self.ctl.end_drag(i)
            self.setCursor(Qt.CursorShape.OpenHandCursor)
            self.update()

    def keyPressEvent(self, ev):
        i = self.selected
        node = self.vm.node(i) if i is not None else None
        if node is not None and ev.key() in (Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Up, Qt.Key.Key_Down):
            p = node.placement
            step = 0.1 if ev.modifiers() & Qt.KeyboardModifier.ShiftModifier else 0.02
            dp = {Qt.Key.Key_Left: -step, Qt.Key.Key_Right: step}.get(ev.key(), 0.0)
            dw = {Qt.Key.Key_Up: step, Qt.Key.Key_Down: -step}.get(ev.key(), 0.0)
            self.ctl.set_placement(i, p.moved(p.pan + dp, p.width + dw), label=f"move {node.name}",
                                   merge_key=("keys", i))
            return
        super().keyPressEvent(ev)

    def show_menu(self, i: int, global_pos) -> QMenu:
        ctl, vm = self.ctl, self.vm
        p = vm.nodes[i]
        menu = QMenu(self)
        menu.setTitle(p.name)
        head = menu.addAction(p.name)
        head.setEnabled(False)
        menu.addSeparator()

        def toggle(text, attr, label):
            act = QAction(text, menu, checkable=True)
            act.setChecked(getattr(p, attr))
            act.triggered.connect(lambda on: ctl.set_placement(i, replace(vm.nodes[i].placement, **{attr: bool(on)}),
                                                               label=f"{label} {vm.nodes[i].name}"))
            menu.addAction(act)
            return act

        toggle("Mute", "mute", "mute")
        toggle("Solo", "solo", "solo")
        toggle("Pin here", "pinned", "pin")
        menu.addSeparator()
        menu.addAction("Rename…", lambda: self._rename(i))
        menu.addAction("Reset to the model's proposal", lambda: ctl.reset_placement(i))
        add_edit_menu(menu, ctl, i)              # select, merge with, split (issue 26)
        if global_pos is not None:
            menu.popup(global_pos)
        self._menu = menu
        return menu

    def _rename(self, i: int) -> None:
        name, ok = QInputDialog.getText(self, "Rename source", "Name:", text=self.vm.nodes[i].name)
        if ok:
            self.ctl.rename(i, name)

    # --- painting -------------------------------------------------------------------------------
    def paintEvent(self, ev):
        self.paints += 1
        qp = QPainter(self)
        qp.setRenderHint(QPainter.RenderHint.Antialiasing)
        qp.fillRect(self.rect(), theme.qcolor(theme.PANEL))
        self._paint_grid(qp)
        nodes = self.vm.nodes
        n = len(nodes)
        if n == 0:
            qp.setPen(theme.qcolor(theme.TEXT_DIM))
            msg = ("Working…" if self.ctl.busy else
                   "Open a recording (File ▸ Open, or drop a file here)" if not self.vm.has_recording else
                   "Separate the recording to place its sources (Separation panel ▸ Separate); Space plays it")
            qp.drawText(self.plot_rect(), Qt.AlignmentFlag.AlignCenter, msg)
            return
        frame = QPainterPath()
        frame.addRoundedRect(self.plot_rect(), 4, 4)
        qp.save()
        qp.setClipPath(frame)                 # glows, trails, nodes and labels stay inside the frame
        self._paint_trails(qp, n)
        order = sorted(range(n), key=lambda k: -self.node_radius(k))   # big ones below small ones
        solo = any(p.solo for p in nodes)
        for i in order:
            self._paint_node(qp, i, solo)
        self._paint_labels(qp, n, solo)
        qp.restore()
        qp.setPen(QPen(theme.qcolor(theme.GRID), 1))
        qp.setBrush(Qt.BrushStyle.NoBrush)
        qp.drawRoundedRect(self.plot_rect(), 4, 4)
        qp.end()

    def _paint_labels(self, qp: QPainter, n: int, solo: bool) -> None:
        nodes = self.vm.nodes
        for i, rect in enumerate(self.label_rects()):
            p = nodes[i]
            silent = p.mute or (solo and not p.solo)
            alpha = 70 if silent else 235
            c, rad = self.node_center(i), self.node_radius(i)
            dx = max(rect.left() - c.x(), 0.0, c.x() - rect.right())
            dy = max(rect.top() - c.y(), 0.0, c.y() - rect.bottom())
            if math.hypot(dx, dy) > rad + 6:             # displaced from its node: a leader line
                qp.setPen(QPen(theme.qcolor(p.colour, 210), 1.3, Qt.PenStyle.DotLine))
                qp.drawLine(c, QPointF(min(max(c.x(), rect.left()), rect.right()),
                                       rect.top() if rect.top() > c.y() else rect.bottom()))
            qp.setFont(self._label_font(i == self.selected))
            qp.setPen(theme.qcolor(theme.TEXT if not silent else theme.TEXT_DIM, alpha))
            qp.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.label_text(i))

    def axis_label_rects(self) -> list[QRectF]:
        """Where the pan axis labels (L, L50, C, R50, R) are written, under the frame."""
        r, d = self.plot_rect(), self.data_rect()
        return [QRectF(d.left() + (pan + 1) / 2 * d.width() - 20, r.bottom() + 4, 40, 16) for pan in (-1, -0.5, 0, 0.5, 1)]

    def _paint_grid(self, qp: QPainter) -> None:
        r, d = self.plot_rect(), self.data_rect()
        grid = QPen(theme.qcolor(theme.GRID), 1)
        qp.setPen(grid)
        qp.drawRoundedRect(r, 4, 4)
        for k in range(0, 9):                 # pan: the data's edges (hard left and right) and every quarter
            x = d.left() + d.width() * k / 8
            qp.setPen(QPen(theme.qcolor(theme.GRID, 255 if k == 4 else 110), 1,
                           Qt.PenStyle.SolidLine if k == 4 else Qt.PenStyle.DotLine))
            qp.drawLine(QPointF(x, r.top()), QPointF(x, r.bottom()))
        for k in range(0, 5):                 # width 0, 0.25 .. 1
            y = d.bottom() - d.height() * k / 4
            qp.setPen(QPen(theme.qcolor(theme.GRID, 110), 1, Qt.PenStyle.DotLine))
            qp.drawLine(QPointF(r.left(), y), QPointF(r.right(), y))
        f = QFont(self.font())
        f.setPointSizeF(8.5)
        qp.setFont(f)
        qp.setPen(theme.qcolor(theme.TEXT_DIM))
        for rect, text in zip(self.axis_label_rects(), ("L", "L50", "C", "R50", "R")):
            qp.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
        qp.save()
        qp.translate(14, r.center().y())
        qp.rotate(-90)
        qp.drawText(QRectF(-r.height() / 2, -8, r.height(), 16), Qt.AlignmentFlag.AlignCenter,
                    "narrow   ─   width   ─   wide")
        qp.restore()
        qp.drawText(QRectF(r.left(), 4, r.width(), 20), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                    "STEREO IMAGE")
        if self.vm.ab_original:
            qp.setPen(theme.qcolor(theme.ACCENT))
            qp.drawText(QRectF(r.left(), 4, r.width(), 20), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                        "B · listening to the mono original")

    def _paint_trails(self, qp: QPainter, n: int) -> None:
        v, nodes = self.ctl.views, self.vm.nodes
        if v.traj_pan is None or not self.transport.available or v.traj_pan.shape[0] != n:
            return
        f = min(frame_of_sample(self.transport.position_samples), v.traj_pan.shape[1] - 1)
        lo = max(0, f - TRAIL_FRAMES)
        for i in range(n):
            p = nodes[i]
            if p.pinned or p.mute:
                continue
            col = QColor(p.colour)
            pans, widths = v.traj_pan[i, lo:f + 1], v.traj_width[i, lo:f + 1]
            ok = ~(np.isnan(pans) | np.isnan(widths))
            if not ok.any():
                continue
            pts = [self.to_screen(float(a), float(b)) for a, b, g in zip(pans, widths, ok) if g]
            m = len(pts)
            for k in range(1, m):          # fading trail, older = fainter
                col.setAlpha(int(20 + 90 * k / m))
                qp.setPen(QPen(col, 2.0, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
                qp.drawLine(pts[k - 1], pts[k])
            if ok[-1]:
                c = pts[-1]
                rad = self.node_radius(i) * 1.6
                g = QRadialGradient(c, rad)
                inner = QColor(p.colour)
                inner.setAlpha(110)
                outer = QColor(inner)
                outer.setAlpha(0)
                g.setColorAt(0.0, inner)
                g.setColorAt(1.0, outer)
                qp.setPen(Qt.PenStyle.NoPen)
                qp.setBrush(QBrush(g))
                qp.drawEllipse(c, rad, rad)

    def _paint_node(self, qp: QPainter, i: int, solo: bool) -> None:
        p = src = self.vm.nodes[i]
        c = self.to_screen(p.pan, p.width)
        rad = self.node_radius(i)
        silent = p.mute or (solo and not p.solo)
        alpha = 70 if silent else 255
        col = theme.qcolor(src.colour, alpha)
        # the spread: a bar as wide as the width puts the source
        r = self.plot_rect()
        half = p.width * self.data_rect().width() / 4
        spread = theme.qcolor(src.colour, 40 if not silent else 15)
        qp.setPen(Qt.PenStyle.NoPen)
        qp.setBrush(spread)
        x0, x1 = max(r.left(), c.x() - half - rad * 0.5), min(r.right(), c.x() + half + rad * 0.5)
        qp.drawRoundedRect(QRectF(x0, c.y() - 3, max(0.0, x1 - x0), 6), 3, 3)
        # body
        g = QRadialGradient(QPointF(c.x() - rad * 0.35, c.y() - rad * 0.35), rad * 1.4)
        g.setColorAt(0.0, col.lighter(135))
        g.setColorAt(1.0, col.darker(125))
        qp.setBrush(QBrush(g))
        ring = QColor("#ffffff") if (i == self._drag or i == self.selected) else col.lighter(160)
        ring.setAlpha(alpha)
        if p.pinned:
            qp.setPen(QPen(ring, 2.2))
        else:
            qp.setPen(QPen(ring, 1.6, Qt.PenStyle.DashLine))
        qp.drawEllipse(c, rad, rad)
        if p.solo:
            qp.setPen(QPen(theme.qcolor(theme.ACCENT), 2))
            qp.setBrush(Qt.BrushStyle.NoBrush)
            qp.drawEllipse(c, rad + 4, rad + 4)
        if p.pinned:
            self._paint_pin(qp, QPointF(c.x() + rad * 0.72, c.y() - rad * 0.72), alpha)
        if i in self.ctl.editing.selected:       # ticked for merge / A/B: a dotted halo
            qp.setPen(QPen(QColor("#ffffff"), 1.4, Qt.PenStyle.DotLine))
            qp.setBrush(Qt.BrushStyle.NoBrush)
            qp.drawEllipse(c, rad + 7, rad + 7)

    @staticmethod
    def _paint_pin(qp: QPainter, at: QPointF, alpha: int) -> None:
        head = theme.qcolor(theme.ACCENT, alpha)
        qp.setPen(QPen(theme.qcolor("#101010", alpha), 1.2))
        qp.setBrush(head)
        path = QPainterPath()
        path.addEllipse(at, 5.0, 5.0)
        qp.drawPath(path)
        qp.setPen(QPen(theme.qcolor("#101010", alpha), 1.6))
        qp.drawLine(QPointF(at.x() - 1.5, at.y() + 1.5), QPointF(at.x() - 6.5, at.y() + 6.5))
