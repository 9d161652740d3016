"""``soundstage render PROJECT.json -o OUT``: re-make a project's export exactly."""
from __future__ import annotations

import sys
import threading

NAME = "render"
HELP = "re-make the stereo export of a project file"


def add_arguments(p) -> None:
    p.add_argument("project", help="a .soundstage.json project file")
    p.add_argument("-o", "--output", required=True, help="output stereo file")
    p.add_argument("--format", default=None, help="wav16, wav24, wav32f or flac (default: from the extension)")
    p.add_argument("--stems", action="store_true", help="also write each source's stereo stem")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")


def run(args) -> int:
    from app.cli import check_output
    from app.progress_bar import TerminalProgress
    from app.session import Session
    from core.progress import Reporter
    out = check_output(args.output, force=args.force)
    bar = TerminalProgress(enabled=not args.quiet)
    try:
        session = Session.from_project(args.project, settings=args.user, progress=Reporter(bar, "load project"),
                                       cancel=threading.Event())
    finally:
        bar.close()
    for note in session.project_notes:
        print(f"soundstage: note: {note}", file=sys.stderr)
    fmt = args.format or session.export_settings.get("format") or None
    res = session.export(out, fmt=fmt, stems=args.stems, overwrite=args.force, project=False)
    note = f" (scaled by {res.gain_db:.2f} dB to stay under -0.1 dBFS)" if res.gain_db < 0 else ""
    print(f"wrote {res.path}{note}")
    return 0
