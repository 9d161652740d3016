"""``soundstage edit PROJECT.json --merge 2,3 --split 4:2 [--name 2=piano] -o NEW.json``.

The edits a person makes in the app, for scripted archives: the project is opened (its separation
and its own edits re-made), the edits run in the order given, each exactly as the app runs it
(:func:`app.editing.plan_edit`: the auto sources are placed again around the pinned ones), and the
result is written as a new project whose edit list has them appended; ``soundstage render`` then
re-makes its export, bit-identical to exporting the same edits from the app. Sources are numbered
from 1 as the app lists them, each edit counting the sources as the edits before it left them;
``--name`` names the sources as they are after all the edits. A bad edit is one line, and nothing
is written.
"""
from __future__ import annotations

import argparse
import sys
import threading
from cli.main import UserError, check_output
from cli.progress_bar import TerminalProgress
from core import lazy
app_edits = lazy.module("app.edits")
editing = lazy.module("app.editing")
progress = lazy.module("core.progress")
project_io = lazy.module("app.project_io")

NAME = "edit"
HELP = "merge, split or move a region between a project's sources; write the edited project"


class _InOrder(argparse.Action):
    """Keeps every edit option in ``args.edits`` in command-line order."""

    def __call__(self, parser, namespace, values, option_string=None):
        edits = list(getattr(namespace, "edits", None) or [])
        edits.append((self.dest, values))
        namespace.edits = edits


def add_arguments(p) -> None:
    p.add_argument("project", help="a project file (from `upmix --project`, the app, or `edit`)")
    p.add_argument("-o", "--output", required=True, help="the edited project file to write")
    p.add_argument("--merge", action=_InOrder, metavar="I,J[,...]",
                   help="merge these sources into one (at the place of the first)")
    p.add_argument("--split", action=_InOrder, metavar="I:N|I@HZ",
                   help="split source I into N parts (2-8, source formation on it alone) or in two at HZ")
    p.add_argument("--move", action=_InOrder, metavar="I:J|new:T0-T1:F0-F1",
                   help="move source I's share of the region T0-T1 seconds by F0-F1 Hz to source J "
                        "(or to a new source)")
    p.add_argument("--name", action="append", default=[], metavar="I=NAME",
                   help="name source I (numbered as after the edits)")
    p.add_argument("--force", action="store_true", help="overwrite NEW.json if it exists")
    p.set_defaults(edits=[])


def _index(text: str, what: str) -> int:
    try:
        i = int(text.strip())
    except ValueError:
        raise _bad(f"{what}: {text!r} is not a source number") from None
    if i < 1:
        raise _bad(f"{what}: sources are numbered from 1, not {i}")
    return i - 1


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise _bad(f"{what}: {text!r} is not a number") from None


def _bad(msg: str):
    return UserError(msg)


def parse_edit(kind: str, text: str, *, names: tuple = ()):
    """One edit from its command-line form (:class:`cli.main.UserError` when it does not parse)."""
    what = f"--{kind} {text}"
    if kind == "merge":
        return app_edits.Merge(tuple(_index(t, what) for t in text.split(",")))
    if kind == "split":
        if "@" in text:
            i, hz = text.split("@", 1)
            return app_edits.Split(_index(i, what), at_hz=_number(hz.lower().removesuffix("hz"), what))
        if ":" not in text:
            raise _bad(f"{what}: write I:N (parts) or I@HZ (a frequency)")
        i, n = text.split(":", 1)
        try:
            return app_edits.Split(_index(i, what), parts=int(n))
        except ValueError:
            raise _bad(f"{what}: {n!r} is not a number of parts") from None
    parts = text.split(":")
    if len(parts) != 4 or "-" not in parts[2][1:] or "-" not in parts[3][1:]:
        raise _bad(f"{what}: write SRC:DST:T0-T1:F0-F1 (DST a number or 'new')")
    src = _index(parts[0], what)
    dst = None if parts[1].strip().lower() == "new" else _index(parts[1], what)
    t0, t1 = (_number(v, what) for v in parts[2].split("-", 1))
    f0, f1 = (_number(v, what) for v in parts[3].split("-", 1))
    return app_edits.MoveRegion(src, dst, t0, t1, f0, f1)


def run(args) -> int:
    edits = [parse_edit(kind, text) for kind, text in args.edits]
    names = []
    for item in args.name:
        if "=" not in item:
            raise _bad(f"--name {item}: write I=NAME")
        i, name = item.split("=", 1)
        if not name.strip():
            raise _bad(f"--name {item}: a name cannot be empty")
        names.append((_index(i, f"--name {item}"), name.strip()))
    if not edits and not names:
        raise _bad("nothing to do: give --merge, --split, --move or --name")
    out = check_output(args.output, inputs=[args.project], force=args.force)
    bar = TerminalProgress(enabled=not args.quiet)
    try:
        session = project_io.load_project(args.project, settings=args.user, progress=progress.Reporter(bar,
                                                                                                       "load project"),
                               cancel=threading.Event())
        for k, e in enumerate(edits):
            try:
                plan = editing.plan_edit(session, e, progress=progress.Reporter(bar, f"edit {k + 1}"),
                                         cancel=threading.Event())
            except app_edits.EditError as exc:
                raise _bad(f"--{args.edits[k][0]} {args.edits[k][1]}: {exc}") from None
            editing.adopt_edit(session, plan)
    finally:
        bar.close()
    for note in session.project_notes:
        print(f"soundstage: note: {note}", file=sys.stderr)
    for i, name in names:
        if i >= len(session.sources):
            raise _bad(f"--name {i + 1}={name}: there is no source {i + 1} (there are {len(session.sources)})")
        session.sources[i].name = name
    project_io.save_project(session, out)
    print(f"wrote {out}: {len(session.sources)} sources after {len(edits)} edit{'s' if len(edits) != 1 else ''}")
    for i, (src, p) in enumerate(zip(session.sources, session.placements)):
        print(f"  {i + 1}. {src.name} ({src.kind}): pan {p.pan:+.2f}, width {p.width:.2f}"
              f"{', pinned' if p.pinned else ''}")
    return 0
