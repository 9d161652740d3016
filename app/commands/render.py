"""``soundstage render PROJECT.json -o OUT``: re-make a project's export exactly."""
from __future__ import annotations

import sys
import threading

from app.commands import FORMATS

NAME = "render"
HELP = "re-make the stereo export of a project file"


def add_arguments(p) -> None:
    p.add_argument("project", help="a .soundstage.json project file")
    p.add_argument("-o", "--output", required=True, help="output stereo file")
    p.add_argument("--format", default=None, choices=FORMATS,
                   help="output format (default: the project's, else from the extension: wav24, or flac for .flac)")
    p.add_argument("--stems", action="store_true", help="also write each source's stereo stem")
    p.add_argument("--mono-compatible", action="store_true",
                   help="render mono-compatible ((L + R) / 2 = the input times the output gain) even if the "
                        "project is not")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")


def run(args) -> int:
    from app.cli import check_output
    from app.progress_bar import TerminalProgress
    from app.output import export
    from app.project_io import load_project
    from core.progress import Reporter
    out = check_output(args.output, force=args.force)
    bar = TerminalProgress(enabled=not args.quiet)
    try:
        session = load_project(args.project, settings=args.user, progress=Reporter(bar, "load project"),
                               cancel=threading.Event())
    finally:
        bar.close()
    for note in session.project_notes:
        print(f"soundstage: note: {note}", file=sys.stderr)
    from app.commands.upmix import loudness_lines
    if args.mono_compatible:
        session.set_mono_compatible(True, record=False)
    fmt = args.format or session.export_settings.get("format") or None
    res = export(session, out, fmt=fmt, stems=args.stems, overwrite=args.force, project=False)
    print(f"wrote {res.path}{', mono-compatible' if session.mono_compatible else ''}")
    print(loudness_lines(res.input, res.plan))
    return 0
