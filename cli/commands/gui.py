"""``soundstage gui [FILE]``: the desktop application (the default when no command is given).

With no display (no DISPLAY / WAYLAND_DISPLAY and no offscreen Qt platform) it prints one line
naming the headless commands and exits with status 2, instead of a Qt error.
"""
from __future__ import annotations

import sys

from core.settings import has_display

NAME = "gui"
HELP = "open the desktop application (default: the bundled demo)"

HEADLESS = ("soundstage: no display found for the desktop app; use the headless commands instead: "
            "soundstage upmix IN -o OUT [--separator formation], soundstage batch IN_DIR OUT_DIR, "
            "soundstage render, soundstage separate (see soundstage --help)")


def add_arguments(p) -> None:
    p.add_argument("file", nargs="?", default=None,
                   help="recording (any format soundfile reads) or project file to open; default: the demo")


def run(args) -> int:
    if not has_display():
        print(HEADLESS, file=sys.stderr)
        return 2
    try:
        from ui.app import run_gui
    except ImportError as exc:
        print(f"soundstage: the desktop app needs PyQt6 and pyqtgraph ({exc}); "
              "the headless commands still work: soundstage upmix IN -o OUT", file=sys.stderr)
        return 2
    return run_gui(args.file)
