"""Pan-canvas drag benchmark: how fast a node drag is turned into sound and pixels.

Each step is one mouse move over the canvas, delivered as a real Qt mouse event: the canvas maps
it to (pan, width), the controller swaps a new snapshot into the audio engine and records the
placement (one merged undo step), then every pending repaint runs (canvas, sources panel).
Prints a table of milliseconds per frame and frames per second. Needs no display
(QT_QPA_PLATFORM=offscreen is set if there is none).

    python bench/bench_ui.py [--moves 300] [--seconds 10] [--file AUDIO]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _recording(path: Path, seconds: float) -> Path:
    import soundfile as sf
    sr, n = 44100, int(seconds * 44100)
    t = np.arange(n) / sr
    x = np.zeros(n)
    for f0, amp, rate in ((82.4, 0.4, 1.0), (440.0, 0.2, 2.0), (659.3, 0.15, 4.0), (1318.5, 0.08, 8.0)):
        env = np.exp(-3.0 * ((t * rate) % 1.0))
        x += amp * env * sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    sf.write(str(path), x.astype(np.float32), sr, subtype="FLOAT")
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--moves", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--file", default=None, help="recording to use (default: generated harmonic voices)")
    args = ap.parse_args(argv)

    from PyQt6.QtCore import QPointF, QSettings, Qt
    from PyQt6.QtGui import QMouseEvent
    from PyQt6.QtWidgets import QApplication

    from ui import theme
    from ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    theme.apply(app)
    tmp = Path(tempfile.mkdtemp(prefix="soundstage-bench-"))
    win = MainWindow(settings=QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    win.ctl.set_model("decorr")
    win.resize(1480, 920)
    win.show()
    path = Path(args.file) if args.file else _recording(tmp / "voices.wav", args.seconds)
    win.open_path(path)
    t0 = time.monotonic()
    while win.ctl.busy and time.monotonic() - t0 < 300:
        app.processEvents()
        time.sleep(0.01)
    if win.ctl.engine is None:
        print(f"could not prepare the recording: {win.ctl.last_error}")
        return 1
    canvas, ctl = win.canvas, win.ctl
    n_src = len(ctl.session.sources)

    def send(kind, pos, button=Qt.MouseButton.LeftButton):
        buttons = Qt.MouseButton.LeftButton if kind != QMouseEvent.Type.MouseButtonRelease else Qt.MouseButton.NoButton
        ev = QMouseEvent(kind, pos, canvas.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(canvas, ev)

    def drag(moves: int) -> np.ndarray:
        c = canvas.node_center(0)
        send(QMouseEvent.Type.MouseButtonPress, c)
        times = np.zeros(moves)
        r = canvas.plot_rect()
        for k in range(moves):
            a = 2 * np.pi * k / 120
            pos = QPointF(r.center().x() + 0.4 * r.width() * np.cos(a), r.center().y() + 0.4 * r.height() * np.sin(a))
            t = time.perf_counter()
            send(QMouseEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton)
            app.processEvents()          # the pending repaints (canvas, sources row)
            times[k] = time.perf_counter() - t
        send(QMouseEvent.Type.MouseButtonRelease, pos)
        return times

    rows = []
    drag(20)                                   # warm-up
    p0 = canvas.paints
    rows.append(("drag, stopped", drag(args.moves)))
    paints = canvas.paints - p0
    undo_steps = len(ctl.session.undo._done)
    ctl.toggle_play()                          # trails and halos drawn, meters running
    rows.append(("drag, playing", drag(args.moves)))
    ctl.toggle_play()
    ok = abs(ctl.session.placements[0].pan) > 0 and ctl.session.placements[0].pinned

    print(f"Pan canvas drag: {n_src} sources, canvas {canvas.width()}x{canvas.height()} px, "
          f"{args.moves} moves per row, platform {app.platformName()}")
    print(f"{'scenario':<16}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'fps (mean)':>12}")
    for name, t in rows:
        ms = t * 1000
        print(f"{name:<16}{np.median(ms):9.2f}{np.percentile(ms, 95):9.2f}{ms.max():9.2f}{len(t) / t.sum():12.0f}")
    print(f"canvas repaints per move: {paints / args.moves:.2f}; undo steps after the drags: {undo_steps}; "
          f"placement followed: {ok}")
    win.close_without_asking()     # the drags left unsaved changes: close (and shut down) without a dialog
    return 0


if __name__ == "__main__":
    sys.exit(main())
