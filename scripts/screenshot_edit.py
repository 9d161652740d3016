"""Pictures of the three source edits for the README (issue 26), under a virtual X server::

    xvfb-run -a -s "-screen 0 1480x920x24" .venv/bin/python scripts/screenshot_edit.py [OUT_PREFIX]

The demo opens and is separated as usual (nothing placed by hand). Then, as a person would: two
sources are checked in the sources list (the Merge button reads "Merge 2"), a rectangle is drawn
on the spectrogram and its menu opened on "Move ...'s share to" (``OUT_PREFIX-move.png``); then
the canvas menu of a source is opened on "Split" (``OUT_PREFIX-split.png``). The screen itself is
grabbed, so the open menus show. Default prefix: docs/screenshot-edit.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PyQt6.QtCore import QPointF, QTimer  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402


def main() -> int:
    prefix = sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot-edit"
    app = QApplication(sys.argv[:1])
    from ui import theme
    from ui.app import create_window
    theme.apply(app)
    win = create_window(None)
    win.resize(1480, 920)
    win.move(0, 0)
    steps = iter(["select", "rect", "shoot-move", "canvas", "shoot-split", "quit"])
    state = {"menu": None}

    def grab(name: str) -> None:
        out = f"{prefix}-{name}.png"
        ok = app.primaryScreen().grabWindow(0).copy(0, 0, win.width(), win.height()).save(out)
        print(f"{'saved' if ok else 'could not write'} {out}")

    def step() -> None:
        ctl = win.ctl
        if ctl.busy or not ctl.session.renders or win.spectrogram.rgb is None:
            QTimer.singleShot(500, step)
            return
        what = next(steps)
        s = ctl.session
        if what == "select":
            for row in win.sources.rows[:2]:
                row.select.setChecked(True)
        elif what == "rect":
            tool = win.spectrogram.region_tool
            dur = s.seconds
            tool.start = QPointF(0.30 * dur, 9.0)
            tool._draw(QPointF(0.55 * dur, 22.0))
            tool.start = None
            vb = win.spectrogram.getPlotItem().vb
            corner = win.spectrogram.mapFromScene(vb.mapViewToScene(QPointF(0.55 * dur, 9.0)))
            menu = tool.show_menu(win.spectrogram.viewport().mapToGlobal(corner))
            first = next(a for a in menu.actions() if a.menu() is not None)
            menu.setActiveAction(first)
            first.menu().popup(menu.mapToGlobal(menu.actionGeometry(first).topRight()))
            state["menu"] = menu
        elif what == "shoot-move":
            grab("move")
            state["menu"].close()
        elif what == "canvas":
            i = 0
            at = win.canvas.mapToGlobal(win.canvas.node_center(i).toPoint())
            menu = win.canvas.show_menu(i, at)
            split = next(a for a in menu.actions() if a.text() == "Split")
            menu.setActiveAction(split)
            split.menu().popup(menu.mapToGlobal(menu.actionGeometry(split).topRight()))
            state["menu"] = menu
        elif what == "shoot-split":
            grab("split")
            state["menu"].close()
        else:
            app.quit()
            return
        QTimer.singleShot(1200, step)

    QTimer.singleShot(1000, step)
    QTimer.singleShot(300000, lambda: (print("timed out", file=sys.stderr), app.exit(1)))
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
