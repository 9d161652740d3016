"""``soundstage`` command line: parses arguments and calls the facades in core/, separation/, app/.

Each subcommand lives in its own module under :mod:`cli.commands`; add new ones to ``COMMANDS``.
Errors the user can fix (bad input, existing output, missing weights) print one line to stderr
and exit with status 2; a cancelled run (Ctrl+C) exits with 130.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from core.errors import AudioError, Cancelled, ParameterError
import signal
from pathlib import Path
from core.settings import Settings
from app import __version__
from core import lazy
audio = lazy.module("core.audio")
base = lazy.module("core.models.base")

COMMANDS = ("upmix", "analyze", "roundtrip", "separate", "cache", "eval", "render", "edit", "batch", "train", "gui")


class UserError(Exception):
    """An error the user can fix; printed as one line, exit status 2."""


def check_output(out, *, inputs=(), force: bool = False):
    """Refuse an output path that is an input, or that exists without ``--force``."""
    out = Path(out)
    for src in inputs:
        if src is not None and audio.same_file(src, out):
            raise UserError(f"{out}: refusing to write over the input recording")
    if out.exists() and not force:
        raise UserError(f"{out}: already exists (use --force to overwrite)")
    return out


# command-line options that set the user's settings (core.settings.Settings fields)
_SETTING_OPTIONS = {"models_dir": "models_dir", "demucs_models": "demucs_models", "data": "data_dir"}


def user_settings(args):
    """The user's settings (core.settings.Settings): the command line, then the environment, then
    the defaults (the desktop app adds its stored preferences)."""
    cli = {field: getattr(args, opt, None) for opt, field in _SETTING_OPTIONS.items()}
    user = Settings.resolve(cli)
    base.set_default_threads(user.torch_threads)
    return user


def _load(name):
    return importlib.import_module(f"cli.commands.{name}")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command. Command modules import only light modules at the top (their
    heavy imports happen in ``run``), so ``--help`` and ``--version`` answer at once."""
    parser = argparse.ArgumentParser(prog="soundstage",
                                     description="Turn mono music recordings into stereo.")
    parser.add_argument("--version", action="version", version=f"soundstage {__version__}")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        mod = _load(name)
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.add_argument("--quiet", "-q", action="store_true", default=argparse.SUPPRESS,   # after the command too
                       help="no progress output")
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if not argv and "gui" in COMMANDS:
        argv = ["gui"]
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 1
    previous = _terminate_as_cancel() if args.command != "gui" else None
    try:
        args.user = user_settings(args)
        return int(args._run(args) or 0)
    except (AudioError, ParameterError, UserError) as exc:
        print(f"soundstage: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.filename is None:
            raise
        # a file the command could not use (a name too long, no permission): one line, not a traceback
        print(f"soundstage: error: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except (Cancelled, KeyboardInterrupt):
        print("soundstage: cancelled", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminate_as_cancel():
    """SIGTERM (``kill``) stops a command the way Ctrl+C does: the exception unwinds through the
    atomic writers, which remove their temporary files. Returns the previous handler (None when
    no handler can be set here, e.g. outside the main thread)."""

    def handler(signum, frame):
        raise Cancelled("terminated")
    try:
        return signal.signal(signal.SIGTERM, handler)
    except (ValueError, AttributeError, OSError):
        return None


if __name__ == "__main__":
    # run through the package so that UserError is the same class the command modules raise
    from cli.main import main as _main
    sys.exit(_main())
