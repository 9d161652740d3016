"""``soundstage upmix IN -o OUT --method NAME``: mono to stereo through the PS decoder.

The method is any registered PS model (``decorr``, ``mono``, ``ps-nn``, ``ps-mtm``, ...); the
predicted parameters drive the decoder over the whole recording, or, with ``--separator``, every
source found is placed and rendered (the session chain, with a project file). The chain itself is
:func:`app.chain.upmix_file`, shared with ``soundstage batch``. The export never clips (one output
gain keeps the true peak under the ceiling, -1 dBTP by default; with ``--keep-loudness`` it first
matches the input's loudness) and the command prints the gain, and the input's and output's LUFS
and dBTP. ``--mono-compatible``: (L + R) / 2 equals the input times that gain. With
``--dawproject OUT.dawproject`` (and a separator) the first rendition is also written as a
DAWproject file: one track per source with its stereo stem, and the mono original muted.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading

from app.chain import FORMATS, UpmixSettings, best_method, rendition_path, upmix_file

NAME = "upmix"
HELP = "upmix a mono recording to stereo"
__all__ = ["best_method", "FORMATS", "settings_from_args"]


def add_arguments(p) -> None:
    p.add_argument("input", help="input audio file (any format soundfile reads; downmixed to mono)")
    p.add_argument("-o", "--output", required=True, help="output stereo file (.wav or .flac)")
    add_settings_arguments(p, separator_default=None)
    p.add_argument("--demucs-models", default=None, metavar="DIR",   # the user's settings (app.cli.user_settings)
                   help="with --separator demucs: folder of Demucs model files for offline use "
                        "(default $SOUNDSTAGE_DEMUCS_MODELS, or the desktop app's preference)")
    p.add_argument("--project", default=None, help="with --separator: project file path (default OUT.soundstage.json)")
    p.add_argument("--dawproject", default=None, metavar="OUT.dawproject",
                   help="with --separator: also write a DAWproject file (one track per source, the mono original muted)")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")


def add_settings_arguments(p, *, separator_default) -> None:
    """The options that decide an upmix's output (shared with ``soundstage batch``)."""
    p.add_argument("--method", default="best",
                   help="PS model: best (default), decorr, mono, ps-nn, ps-mtm, ps-reg, ps-ar")
    p.add_argument("--model", dest="method", default=argparse.SUPPRESS, help=argparse.SUPPRESS)   # old name
    p.add_argument("--seed", type=int, default=0, help="rendition seed for generative models (default 0)")
    p.add_argument("--temperature", type=float, default=None, help="sampling temperature (model default)")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance (model default)")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="output format (default from the extension: wav24, or flac for .flac)")
    p.add_argument("--models-dir", default=None, help="folder of model files (default: shipped models)")
    if separator_default is None:
        sep_help = ("find sources first (formation, demucs) and place each one; without it the whole "
                    "recording is decoded with the model's parameters")
    else:
        sep_help = (f"source separator: formation, demucs, or none for plain PS decoding without a "
                    f"project file (default {separator_default})")
    p.add_argument("--separator", default=separator_default, help=sep_help)
    p.add_argument("--sources", type=int, default=None, metavar="N",
                   help="with --separator formation: number of sources to find (2-8; default auto)")
    p.add_argument("--demucs-model", default=None, metavar="NAME",
                   help="with --separator demucs: htdemucs (default), htdemucs_6s, htdemucs_ft")
    p.add_argument("--renditions", type=int, default=1, help="with a separator: render K renditions (seeds N..N+K-1)")
    p.add_argument("--stems", action="store_true", help="with a separator: also write each source's stereo stem")
    p.add_argument("--mono-compatible", action="store_true",
                   help="build the output as mid = the input, side from the input and its decorrelated copy: "
                        "(L + R) / 2 equals the input (times the output gain)")
    p.add_argument("--ceiling", type=float, default=-1.0, metavar="DBTP",
                   help="true-peak ceiling of the output in dBTP (default -1.0)")
    p.add_argument("--keep-loudness", action="store_true",
                   help="bring the output to the input's integrated loudness (as the mono plays on both "
                        "channels), within the ceiling")
    p.add_argument("--variety", type=float, default=0.0, help="with a separator: how far the placement model's "
                   "proposals may go, 0 (as real mixes are, default) to 1 (boldest)")
    p.add_argument("--placement", choices=["model", "mean"], default=None, help="with a separator: place the "
                   "sources by the placement model (default when shipped) or by the PS model's mean projection")


def settings_from_args(args) -> UpmixSettings:
    return UpmixSettings(method=args.method, seed=args.seed, temperature=args.temperature, guidance=args.guidance,
                         format=args.format, separator=args.separator, sources=args.sources,
                         demucs_model=args.demucs_model, renditions=args.renditions, stems=args.stems,
                         models_dir=args.models_dir, mono_compatible=args.mono_compatible, ceiling_db=args.ceiling,
                         keep_loudness=args.keep_loudness, placement=args.placement, variety=args.variety)


def run(args) -> int:
    from app.cli import check_output
    from app.progress_bar import TerminalProgress
    from core import audio
    audio.check_input(args.input)                 # a missing input is reported before models load
    settings = settings_from_args(args).resolved()
    out = check_output(args.output, inputs=[args.input], force=args.force)
    audio.check_extension(out, settings.format or audio.format_for_path(out))   # before any work
    dawproject = None
    if args.dawproject:
        from app.cli import UserError
        if not settings.uses_session:
            raise UserError("--dawproject needs sources: add --separator formation (or demucs)")
        dawproject = check_output(args.dawproject, inputs=[args.input], force=args.force)
    if settings.uses_session:
        for k in range(1, settings.renditions):
            check_output(rendition_path(out, settings.seed + k, k), inputs=[args.input], force=args.force)
    bar = TerminalProgress(enabled=not args.quiet)
    try:
        res = upmix_file(args.input, out, settings, project=args.project, overwrite=args.force,
                         user=args.user, progress=bar, cancel=threading.Event(), dawproject=dawproject)
    finally:
        bar.close()
    if not settings.uses_session:
        o = res.outputs[0]
        info = {"output": str(o.path), "method": res.method, "seed": o.seed, "seconds": round(res.seconds, 2),
                "format": settings.format or audio.format_for_path(o.path), "gain_db": round(o.gain_db, 2),
                "mono_compatible": settings.mono_compatible,
                "input": res.input_loudness.as_dict(), "output_gain": o.plan.to_dict(),
                "output_lufs": _r(o.plan.out_lufs), "output_true_peak_dbtp": _r(o.plan.out_peak_db)}
        if args.quiet:
            print(json.dumps(info), file=sys.stdout)
        else:
            print(f"wrote {o.path}: {info['seconds']} s stereo, method {res.method}, seed {o.seed}"
                  f"{', mono-compatible' if settings.mono_compatible else ''}")
            print(loudness_lines(res.input_loudness, o.plan))
        return 0
    for o in res.outputs:
        print(f"wrote {o.path}; project {o.project}")
        print(loudness_lines(res.input_loudness, o.plan))
    if res.dawproject is not None:
        print(f"wrote {res.dawproject} (DAWproject: one track per source, the mono original muted)")
    if not args.quiet:
        print(f"{len(res.sources)} sources: {', '.join(res.sources)}")
    return 0


def _r(v):
    return None if v is None else round(float(v), 2)


def loudness_lines(inp, plan) -> str:
    """Two lines: the input's and the output's loudness and peak, and the gain applied."""
    out = f"{plan.out_lufs:.1f} LUFS, {plan.out_peak_db:.1f} dBTP" if plan.out_lufs is not None else \
        f"{plan.out_peak_db:.1f} dBTP"
    return f"  loudness: input {inp.line()}; output {out}\n  {plan.describe()}"
