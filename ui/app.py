"""Starting the desktop application: ``run_gui(file=None)``.

Without a file the bundled demo recording opens, is separated with the default backend and placed
by the best available model, so play works at once. ``python -m ui.app [FILE] --screenshot PNG [--size WxH]``
does the same, plays a few seconds (silently, if there is no device), saves a picture of the
window and quits (scripts/screenshot.sh uses it under Xvfb).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from resources import demo_recording  # noqa: E402
from app.chain import best_method
from core import lazy
QtCore = lazy.module("PyQt6.QtCore")
QtWidgets = lazy.module("PyQt6.QtWidgets")
banner = lazy.module("ui.banner")
demucs_weights = lazy.module("separation.demucs_weights")
main_window = lazy.module("ui.main_window")
theme = lazy.module("ui.theme")

DEMO = demo_recording()

__all__ = ["run_gui", "create_window", "DEMO"]


def create_window(file: Optional[str] = None, *, settings=None):
    """The main window (a QApplication must exist), opening ``file`` or the demo."""
    win = main_window.MainWindow(settings=settings)
    win.ctl.set_model(best_method())
    path = Path(file) if file else DEMO
    win.show()
    win.open_path(path)
    return win


def arrange(ctl) -> None:
    """Place the sources across the stage by hand, as a user would (for the README picture):
    found sources are pinned left to right with varied widths; the residual stays on auto."""
    nodes = ctl.vms.sources.nodes
    movable = [i for i, node in enumerate(nodes) if node.kind != "residual"]
    spots = [(-0.55, 0.25), (0.5, 0.35), (-0.15, 0.7), (0.42, 0.1), (0.75, 0.6), (-0.8, 0.5), (0.0, 0.9), (0.4, 0.8)]
    for k, i in enumerate(movable):
        pan, width = spots[k % len(spots)]
        ctl.set_placement(i, nodes[i].placement.moved(pan, width), label="arrange")


def show_demucs_banner(win) -> None:
    """Show the window as after a failed Demucs separation: Demucs chosen in the Separation panel
    and the banner it shows when Demucs has no weights (its real message, for a model folder that
    does not exist)."""
    panel = win.separation
    panel.backend.setCurrentIndex(panel.backend.findData("demucs"))
    try:
        demucs_weights.locate("htdemucs", models_dir=Path("/nonexistent/demucs-models"))
        message = "demucs model 'htdemucs' is not available"
    except demucs_weights.ModelUnavailable as exc:
        message = str(exc)
    win.banner.show_message("Separate failed", banner.demucs_advice(message),
                            action=("Preferences…", win._demucs_preferences))


def _screenshot_when_ready(app, win, out: Path, *, at: float = 12.0, play: float = 2.0, timeout: float = 240.0,
                           arranged: bool = False, banner: bool = False):
    state = {"phase": "wait", "renditions": 3 if arranged else 1}

    def check():
        ctl = win.ctl
        if state["phase"] == "wait" and not ctl.busy and ctl.engine is not None:
            if len(ctl.vms.renditions.entries) < state["renditions"]:    # fill the gallery a little
                ctl.new_rendition()
                return
            if not ctl.output_vm.gain_current:
                return                   # the output gain is being measured: the meters show it
            state["phase"] = "play"
            if arranged:
                arrange(ctl)
            if banner:
                show_demucs_banner(win)
            ctl.seek(at)
            ctl.toggle_play()
            win.canvas.selected = 0
            QtCore.QTimer.singleShot(int(play * 1000), shoot)
        elif state["phase"] == "wait" and not ctl.busy and ctl.last_error:
            print(f"screenshot: the app reported an error: {ctl.last_error}", file=sys.stderr)
            app.exit(1)

    def shoot():
        win.ctl.toggle_play()   # freeze the playhead and the meters as they are
        out.parent.mkdir(parents=True, exist_ok=True)
        ok = win.grab().save(str(out))
        print(f"screenshot saved to {out} (window {win.width()}x{win.height()})" if ok
              else f"screenshot: could not write {out}")
        app.exit(0 if ok else 1)

    timer = QtCore.QTimer(win)
    timer.timeout.connect(check)
    timer.start(200)
    QtCore.QTimer.singleShot(int(timeout * 1000), lambda: (print("screenshot: timed out", file=sys.stderr),
                                                           app.exit(1)))
    return timer


def run_gui(file: Optional[str] = None, *, screenshot: Optional[str] = None, arranged: bool = False,
            banner: bool = False, size=(1480, 920)) -> int:
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("Soundstage")
    app.setOrganizationName("Soundstage")
    theme.apply(app)
    win = create_window(file)
    if screenshot:
        win.resize(*size)
        _keep = _screenshot_when_ready(app, win, Path(screenshot), arranged=arranged,
                                       banner=banner)  # noqa: F841
    rc = app.exec()
    win.close_without_asking()      # (after a confirmed close this only closes the player)
    return rc


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ui.app")
    p.add_argument("file", nargs="?", help="recording or project to open (default: the demo)")
    p.add_argument("--screenshot", help="save a PNG of the window once the recording is ready, then quit")
    p.add_argument("--arrange", action="store_true",
                   help="with --screenshot: place the found sources across the stage first")
    p.add_argument("--banner", action="store_true",
                   help="with --screenshot: show the banner of a failed Demucs separation (no model files)")
    p.add_argument("--size", default="1480x920", metavar="WxH", help="with --screenshot: the window's size")
    args = p.parse_args(argv)
    parts = args.size.lower().split("x")
    if len(parts) != 2 or not all(v.isdigit() and int(v) > 0 for v in parts):
        p.error(f"--size wants WIDTHxHEIGHT, e.g. 1280x720; got {args.size!r}")
    size = (int(parts[0]), int(parts[1]))
    return run_gui(args.file, screenshot=args.screenshot, arranged=args.arrange, banner=args.banner,
                   size=size)


if __name__ == "__main__":
    sys.exit(main())
