"""``soundstage render PROJECT.json -o OUT``: re-make a project's export exactly.

The output gain stage is the project's (its export entry: the peak ceiling and whether the
original's loudness is kept); ``--ceiling`` and ``--keep-loudness`` / ``--no-keep-loudness``
replace those settings for this render, as they set them for ``upmix`` and ``batch``.
"""
from __future__ import annotations

import argparse
import sys
import threading

from cli.commands import FORMATS
from dataclasses import replace
from cli.main import check_output
from cli.progress_bar import TerminalProgress
from cli.commands.upmix import loudness_lines
from core import lazy
export = lazy.module("app.export")
output = lazy.module("app.output")
progress = lazy.module("core.progress")
spill = lazy.module("core.spill")
project_io = lazy.module("app.project_io")

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
    p.add_argument("--ceiling", type=float, default=None, metavar="DBTP",
                   help="true-peak ceiling of the output in dBTP (default: the project's, -1.0 for a new one)")
    p.add_argument("--keep-loudness", action=argparse.BooleanOptionalAction, default=None,
                   help="bring the output to the input's integrated loudness (as the mono plays on both channels), "
                        "within the ceiling (default: as the project says)")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")


def output_changes(args) -> dict:
    """The output-stage settings the options replace (``app.output.OutputSettings`` fields)."""
    changes = {}
    if args.ceiling is not None:
        changes.update(ceiling_db=args.ceiling, true_peak=True)
    if args.keep_loudness is not None:
        changes["keep_loudness"] = args.keep_loudness
    return changes


def run(args) -> int:

    changes = output_changes(args)
    replace(output.OutputSettings(), **changes)          # a ceiling out of range is refused before any work
    out = check_output(args.output, force=args.force)
    bar = TerminalProgress(enabled=not args.quiet)
    with spill.spilling(args.user.render_spill_dir):      # the signals on disk, as the chain's: an hour fits
        return _render(args, out, bar, changes)


def _render(args, out, bar, changes) -> int:
    try:
        session = project_io.load_project(args.project, settings=args.user, pairs=False,
                                          progress=progress.Reporter(bar, "load project"),
                                          cancel=threading.Event())
    finally:
        bar.close()
    for note in session.project_notes:
        print(f"soundstage: note: {note}", file=sys.stderr)
    if args.mono_compatible:
        session.set_mono_compatible(True, record=False)
    if changes:
        session.set_output(replace(session.output, **changes))
    fmt = args.format or session.export_settings.get("format") or None
    res = export.export(session, out, fmt=fmt, stems=args.stems, overwrite=args.force, project=False)
    print(f"wrote {res.path}{', mono-compatible' if session.mono_compatible else ''}")
    print(loudness_lines(res.input, res.plan))
    return 0
