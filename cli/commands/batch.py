"""``soundstage batch IN_DIR OUT_DIR``: upmix a whole folder tree on Dask, resumably.

Every audio file under IN_DIR goes through the chain of ``soundstage upmix`` (by default with
the formation separator, so every output comes with a project file to refine in the app), on a
local Dask cluster or an existing one (``--scheduler``). See :mod:`app.batch` for the manifest and
what a re-run does. Exit status: 0 when every file is done, 1 when some failed (listed in the
summary and the manifest), 130 when interrupted.
"""
from __future__ import annotations

import sys

from app.batch import MANIFEST, BatchError, clock as _clock, run_batch
from cli.commands.upmix import add_settings_arguments, settings_from_args
from cli.main import UserError
from cli.progress_bar import StatusLine

NAME = "batch"
HELP = "upmix every audio file of a folder tree (Dask; resumable)"


def add_arguments(p) -> None:
    p.add_argument("in_dir", metavar="IN_DIR", help="folder of mono recordings (searched recursively)")
    p.add_argument("out_dir", metavar="OUT_DIR",
                   help=f"folder for the stereo files and project files (mirrors IN_DIR; holds {MANIFEST})")
    add_settings_arguments(p, separator_default="formation")
    p.add_argument("--demucs-models", default=None, metavar="DIR",   # the user's settings (cli.main.user_settings)
                   help="with --separator demucs: folder of Demucs model files for offline use "
                        "(default $SOUNDSTAGE_DEMUCS_MODELS); the workers must see it at the same path")
    p.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                   help="use a running Dask cluster (its workers must see IN_DIR and OUT_DIR at the same paths)")
    p.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="--scheduler: seconds the scheduler has to answer (default 10)")
    p.add_argument("--workers", type=int, default=None, help="local cluster: worker processes (default: one per core)")
    p.add_argument("--memory-limit", default=None,
                   help="local cluster: memory per worker, e.g. 4GB, 512MiB or auto (default auto: the machine's memory "
                        "divided by workers)")
    p.add_argument("--verify", action="store_true", help="check the checksum of every output marked done")
    p.add_argument("--retry-failed", action="store_true",
                   help="also retry files that failed on an input that has not changed since (unreadable, empty, too short)")
    p.add_argument("--force", action="store_true",
                   help="overwrite files in OUT_DIR this batch did not make; OUT_DIR made with other settings: "
                        "make every file again")


class _BatchProgress:
    """Files and audio hours done, rate, time left: one updating line on a terminal, a plain line
    per finished file on a pipe or in a log."""

    def __init__(self, enabled: bool, stream=None):
        self.enabled = enabled
        self.line = StatusLine(stream)

    def __call__(self, p: dict) -> None:
        if not self.enabled:
            return
        frac = p["seconds"] / p["seconds_total"] if p["seconds_total"] > 0 else p["files"] / max(1, p["files_total"])
        eta = f"  {_clock(p['eta'])} left" if p.get("eta") else ""
        failed = f"  {p['failed']} failed" if p["failed"] else ""
        self.line.show(f"batch {frac * 100:5.1f}%  {p['files']}/{p['files_total']} files  "
                       f"audio {_clock(p['seconds'])}/{_clock(p['seconds_total'])}  "
                       f"{p['rate']:.1f}x real time{eta}{failed}")

    def close(self) -> None:
        self.line.close()


def run(args) -> int:
    settings = settings_from_args(args)
    bar = _BatchProgress(enabled=not args.quiet)

    def on_start(info: dict) -> None:
        if args.quiet:
            return
        if info["pending"] == 0:
            bad = f" ({info['standing']} bad files unchanged, not retried)" if info["standing"] else ""
            print(f"nothing to do: {info['skipped']} of {info['total']} audio files in {args.in_dir} are done{bad}",
                  file=sys.stderr)
            return
        mem = f", {info['memory_limit'] / 2 ** 30:.1f} GiB each" if info.get("memory_limit") else ""
        print(f"{info['pending']} of {info['total']} files to render ({_clock(info['seconds'])} of audio; "
              f"{info['skipped']} already done) on {info['workers']} worker{'s' if info['workers'] != 1 else ''}{mem}",
              file=sys.stderr)
        if info["dashboard"]:
            print(f"Dask dashboard: {info['dashboard']}", file=sys.stderr)

    try:
        summary = run_batch(args.in_dir, args.out_dir, settings, scheduler=args.scheduler, workers=args.workers,
                            memory_limit=args.memory_limit, verify=args.verify, force=args.force,
                            retry_failed=args.retry_failed, connect_timeout=args.connect_timeout, progress=bar,
                            on_start=on_start, user=args.user)
    except BatchError as exc:
        raise UserError(str(exc)) from None
    finally:
        bar.close()
    for line in summary.lines():
        print(line)
    if summary.interrupted:
        return 130
    return 1 if summary.failed or summary.standing else 0
