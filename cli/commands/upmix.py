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
Every output of the run is checked before any work and they are written together or not at all
(:func:`app.chain.upmix_file`). Options a run with sources needs are refused without a separator
(:func:`check_separator_options`). The summary is plain text (``-q`` turns off progress only), a
part per rendition naming its file; ``--json`` prints it as one JSON object.
"""
from __future__ import annotations

import argparse
import json
import threading

from app.chain import FORMATS, UpmixSettings, best_method, upmix_file
from core.limits import DEFAULT_CEILING_DB
from cli.main import UserError, check_output
from cli.progress_bar import TerminalProgress
from core import lazy
audio = lazy.module("core.audio")
chain = lazy.module("app.chain")

NAME = "upmix"
HELP = "upmix a mono recording to stereo"
__all__ = ["best_method", "FORMATS", "settings_from_args"]


def add_arguments(p) -> None:
    p.add_argument("input", help="input audio file (any format soundfile reads; downmixed to mono)")
    p.add_argument("-o", "--output", required=True, help="output stereo file (.wav or .flac)")
    add_settings_arguments(p, separator_default=None)
    p.add_argument("--demucs-models", default=None, metavar="DIR",   # the user's settings (cli.main.user_settings)
                   help="with --separator demucs: folder of Demucs model files for offline use "
                        "(default $SOUNDSTAGE_DEMUCS_MODELS, or the desktop app's preference)")
    p.add_argument("--project", default=None, help="with --separator: project file path (default OUT.soundstage.json)")
    p.add_argument("--dawproject", default=None, metavar="OUT.dawproject",
                   help="with --separator: also write a DAWproject file (one track per source, the mono original muted)")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    p.add_argument("--json", action="store_true",
                   help="print the summary as one JSON object (every rendition's files, gain, loudness and places)")


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
                   help="with --separator formation: number of sources to find (2-16; default auto)")
    p.add_argument("--demucs-model", default=None, metavar="NAME",
                   help="with --separator demucs: htdemucs (default), htdemucs_6s, htdemucs_ft")
    p.add_argument("--renditions", type=int, default=None, metavar="K",
                   help="with a separator: render K renditions (seeds N..N+K-1; default 1)")
    p.add_argument("--stems", action="store_true", help="with a separator: also write each source's stereo stem")
    p.add_argument("--mono-compatible", action="store_true",
                   help="build the output as mid = the input, side from the input and its decorrelated copy: "
                        "(L + R) / 2 equals the input (times the output gain)")
    p.add_argument("--ceiling", type=float, default=DEFAULT_CEILING_DB, metavar="DBTP",
                   help="true-peak ceiling of the output in dBTP (default -1.0)")
    p.add_argument("--keep-loudness", action="store_true",
                   help="bring the output to the input's integrated loudness (as the mono plays on both "
                        "channels), within the ceiling")
    p.add_argument("--variety", type=float, default=None, help="with a separator: how far the placement model's "
                   "proposals may go, 0 (as real mixes are, default) to 1 (boldest)")
    p.add_argument("--placement", choices=["model", "mean"], default=None, help="with a separator: place the "
                   "sources by the placement model (default when shipped) or by the PS model's mean projection")
    p.add_argument("--reference", default=None, metavar="REF", help="with a separator: a stereo file to place the "
                   "sources like (its own sources, found by the same separator, and where each sits in it)")


def settings_from_args(args) -> UpmixSettings:
    """The settings the options give (refused first when an option needs a separator that is
    not chosen: :func:`check_separator_options`); options not given keep UpmixSettings' defaults."""
    check_separator_options(args)
    given = {k: v for k, v in (("renditions", args.renditions), ("variety", args.variety)) if v is not None}
    return UpmixSettings(method=args.method, seed=args.seed, temperature=args.temperature, guidance=args.guidance,
                         format=args.format, separator=args.separator, sources=args.sources,
                         demucs_model=args.demucs_model, stems=args.stems, models_dir=args.models_dir,
                         mono_compatible=args.mono_compatible, ceiling_db=args.ceiling,
                         keep_loudness=args.keep_loudness, placement=args.placement, reference=args.reference,
                         **given)


# options that only a run with sources uses, and the separator each needs (None: any)
_NEEDS_SEPARATOR = (("renditions", "--renditions", None), ("variety", "--variety", None),
                    ("placement", "--placement", None), ("reference", "--reference", None), ("stems", "--stems", None), ("project", "--project", None),
                    ("dawproject", "--dawproject", None), ("sources", "--sources", "formation"),
                    ("demucs_model", "--demucs-model", "demucs"), ("demucs_models", "--demucs-models", "demucs"))


def check_separator_options(args) -> None:
    """Refuse (one line) options the run would ignore: those that need sources when no separator
    is chosen, ``--sources`` without formation, the Demucs model options without demucs."""
    sep = None if args.separator in (None, "", chain.NO_SEPARATOR) else args.separator
    given = [(opt, need) for attr, opt, need in _NEEDS_SEPARATOR
             if getattr(args, attr, None) not in (None, False)]
    names = [opt for opt, need in given if need is None]
    if sep is None and names:
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        raise UserError(f"{listed} need{'s' if len(names) == 1 else ''} sources: add --separator formation "
                        f"(or demucs); without a separator the whole recording is decoded with the PS model")
    for opt, need in given:
        if need is not None and sep != need:
            raise UserError(f"{opt} is for --separator {need}, "
                            + (f"not {sep}" if sep else "and no separator was chosen"))


def run(args) -> int:
    audio.check_input(args.input)                 # a missing input is reported before models load
    settings = settings_from_args(args).resolved()
    out = check_output(args.output, inputs=[args.input], force=args.force)
    audio.check_extension(out, settings.format or audio.format_for_path(out))   # before any work
    # with a separator, upmix_file checks every other output (renditions, projects, stems, the
    # DAWproject file) before any work and writes them all or none
    bar = TerminalProgress(enabled=not args.quiet)
    try:
        res = upmix_file(args.input, out, settings, project=args.project, overwrite=args.force,
                         user=args.user, progress=bar, cancel=threading.Event(), dawproject=args.dawproject)
    finally:
        bar.close()
    if args.json:
        print(json.dumps(summary_dict(res, settings)))
    else:
        print(summary_text(res, settings))
    return 0


def summary_dict(res, settings: UpmixSettings) -> dict:
    """The ``--json`` summary: the run, then every rendition's files, output gain and places."""
    outs = []
    for k, o in enumerate(res.outputs):
        outs.append({"rendition": k + 1, "output": str(o.path), "seed": o.seed,
                     "project": str(o.project) if o.project else None, "stems": [str(p) for p in o.stems],
                     "gain_db": round(o.gain_db, 2), "output_gain": o.plan.to_dict(), "reference": o.reference,
                     "output_lufs": _r(o.plan.out_lufs), "output_true_peak_dbtp": _r(o.plan.out_peak_db),
                     "sources": [{"name": src["name"], "pan": round(src["pan"], 3), "width": round(src["width"], 3)}
                                 for src in o.sources]})
    return {"method": res.method, "separator": settings.separator, "seconds": round(res.seconds, 2),
            "format": settings.format or audio.format_for_path(res.outputs[0].path),
            "mono_compatible": settings.mono_compatible, "input": res.input_loudness.as_dict(),
            "outputs": outs, "dawproject": str(res.dawproject) if res.dawproject is not None else None}


def summary_text(res, settings: UpmixSettings) -> str:
    """What was written: per rendition its files, seed, output gain and loudness, and with a
    separator where each source was placed (each block names the file it describes)."""
    mono = ", mono-compatible" if settings.mono_compatible else ""
    lines = []
    for k, o in enumerate(res.outputs):
        if not settings.uses_session:
            lines.append(f"wrote {o.path}: {round(res.seconds, 2)} s stereo, method {res.method}, seed {o.seed}{mono}")
        else:
            which = f"rendition {k + 1} of {len(res.outputs)}, " if len(res.outputs) > 1 else ""
            ref = {None: "", "followed": ", reference followed",
                   "not followed": ", reference not followed: the placement model's own"}[o.reference]
            lines.append(f"wrote {o.path} ({which}seed {o.seed}{mono}{ref}); project {o.project}")
        lines.append(loudness_lines(res.input_loudness, o.plan))
        if o.stems:
            lines.append(f"  {len(o.stems)} stems in {o.stems[0].parent}")
        if o.sources:
            lines.append(f"  {len(o.sources)} sources: " + ", ".join(
                f"{src['name']} pan {src['pan']:+.2f} width {src['width']:.2f}" for src in o.sources))
    if res.dawproject is not None:
        lines.append(f"wrote {res.dawproject} (DAWproject of {res.outputs[0].path.name}: one track per source, "
                     f"the mono original muted)")
    return "\n".join(lines)


def _r(v):
    return None if v is None else round(float(v), 2)


def loudness_lines(inp, plan) -> str:
    """Two lines: the input's and the output's loudness and peak, and the gain applied."""
    out = f"{plan.out_lufs:.1f} LUFS, {plan.out_peak_db:.1f} dBTP" if plan.out_lufs is not None else \
        f"{plan.out_peak_db:.1f} dBTP"
    return f"  loudness: input {inp.line()}; output {out}\n  {plan.describe()}"
