"""``soundstage upmix IN -o OUT --method NAME``: mono to stereo through the PS decoder.

The method is any registered PS model (``decorr``, ``mono``, ``ps-nn``, ``ps-mtm``, ...); the
predicted parameters drive the decoder over the whole recording, or, with ``--separator``, every
source found is placed and rendered (the session chain, with a project file). The chain itself is
:func:`app.chain.upmix_file`, shared with ``soundstage batch``. The export never clips (a gain
brings the peak under -0.1 dBFS and the command says by how much) and never overwrites the input.
"""
from __future__ import annotations

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
    p.add_argument("--project", default=None, help="with --separator: project file path (default OUT.soundstage.json)")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")


def add_settings_arguments(p, *, separator_default) -> None:
    """The options that decide an upmix's output (shared with ``soundstage batch``)."""
    p.add_argument("--method", "--model", dest="method", default="best",
                   help="PS model: best (default), decorr, mono, ps-nn, ps-mtm, ps-reg, ps-ar")
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
    p.add_argument("--sources", type=int, default=None, help="number of sources for the formation separator (2-8)")
    p.add_argument("--demucs-model", default=None, help="Demucs model name (htdemucs, htdemucs_6s, htdemucs_ft)")
    p.add_argument("--renditions", type=int, default=1, help="with a separator: render K renditions (seeds N..N+K-1)")
    p.add_argument("--stems", action="store_true", help="with a separator: also write each source's stereo stem")


def settings_from_args(args) -> UpmixSettings:
    return UpmixSettings(method=args.method, seed=args.seed, temperature=args.temperature, guidance=args.guidance,
                         format=args.format, separator=args.separator, sources=args.sources,
                         demucs_model=args.demucs_model, renditions=args.renditions, stems=args.stems,
                         models_dir=args.models_dir)


def run(args) -> int:
    from app.cli import check_output
    from app.progress_bar import TerminalProgress
    from core import audio
    audio.check_input(args.input)                 # a missing input is reported before models load
    settings = settings_from_args(args).resolved()
    out = check_output(args.output, inputs=[args.input], force=args.force)
    audio.check_extension(out, settings.format or audio.format_for_path(out))   # before any work
    if settings.uses_session:
        for k in range(1, settings.renditions):
            check_output(rendition_path(out, settings.seed + k, k), inputs=[args.input], force=args.force)
    bar = TerminalProgress(enabled=not args.quiet)
    try:
        res = upmix_file(args.input, out, settings, project=args.project, overwrite=args.force,
                         user=args.user, progress=bar, cancel=threading.Event())
    finally:
        bar.close()
    if not settings.uses_session:
        o = res.outputs[0]
        info = {"output": str(o.path), "method": res.method, "seed": o.seed, "seconds": round(res.seconds, 2),
                "format": settings.format or audio.format_for_path(o.path), "gain_db": round(o.gain_db, 2)}
        if args.quiet:
            print(json.dumps(info), file=sys.stdout)
        else:
            print(f"wrote {o.path}: {info['seconds']} s stereo, method {res.method}, seed {o.seed}{_gain_note(o.gain_db)}")
        return 0
    for o in res.outputs:
        print(f"wrote {o.path}{_gain_note(o.gain_db)}; project {o.project}")
    if not args.quiet:
        print(f"{len(res.sources)} sources: {', '.join(res.sources)}")
    return 0


def _gain_note(gain_db: float) -> str:
    return f" (scaled by {gain_db:.2f} dB to stay under -0.1 dBFS)" if gain_db < 0 else ""
