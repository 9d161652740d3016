"""``soundstage eval``: the paper's objective table (E_min, D_F) on real stereo excerpts."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli.progress_bar import TerminalProgress
from cli.main import UserError
from core import lazy
evaluation = lazy.module("training.evaluation")
evaluation_reference = lazy.module("training.evaluation_reference")
evaluation_sources = lazy.module("training.evaluation_sources")
separation = lazy.module("separation")

NAME = "eval"
HELP = ("Evaluate every PS model against real stereo: E_min and D_F (Serrà et al. 2023, Table 1) "
        "on 10-s excerpts of a data split.")


def add_arguments(p) -> None:
    p.add_argument("--data", default=None, help="data folder with manifest.tsv, or a folder of stereo "
                   "files (default: $SOUNDSTAGE_DATA or ~/.cache/soundstage-data)")
    p.add_argument("--split", default="valid", help="manifest split to evaluate on (default: valid)")
    p.add_argument("-K", "--renditions", dest="k", type=int, default=8,
                   help="renditions per excerpt and model, seeds 0..K-1 (default: 8)")
    p.add_argument("--seconds", type=float, default=10.0, help="excerpt length (default: 10)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N tracks")
    p.add_argument("--per-track", type=int, default=1, help="excerpts per track, spread over it and "
                   "not overlapping (default: 1, the middle)")
    p.add_argument("--methods", default=None,
                   help="comma-separated PS models, e.g. decorr,ps-nn,ps-mtm (default: every registered one)")
    p.add_argument("--models", dest="methods", default=argparse.SUPPRESS, help=argparse.SUPPRESS)   # old name
    p.add_argument("--ar-excerpts", type=int, default=3,
                   help="excerpts for the slow autoregressive PS-AR (default: 3)")
    p.add_argument("--models-dir", default=None, help="folder of trained model files "
                   "(default: resources/models)")
    p.add_argument("--include-copies", action="store_true", help="keep tracks whose file also occurs "
                   "in another split (left out by default: the models have trained on them)")
    p.add_argument("--no-roundtrip", action="store_true", help="skip the PS decode/re-analyse row")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--sources", action="store_true", help="source-level placement rows instead: formation "
                   "sources of each excerpt, all-centre / uniform / mean projection / placement model, and the "
                   "whole chain's rendered stereo beside the PS model on the whole mix")
    p.add_argument("--no-chain", action="store_true", help="with --sources: skip the rendered whole-output rows")
    p.add_argument("--uncalibrated", action="store_true", help="with --sources: also the chain's rows with the PS "
                   "model's detail as it samples it (when the model has a detail calibration; paired with the rows)")
    p.add_argument("--ps-model", default="ps-mtm", help="with --sources: the PS model (default ps-mtm)")
    p.add_argument("--reference", default=None, metavar="same-track|same-album|none",
                   help="with --sources: placement given a stereo reference (issue 27), one row per condition "
                   "(comma-separated, or all): excerpt B of the same track, a track of the same package, none; "
                   "same-track-places: B's places only, the per-band detail the PS model's alone")
    p.add_argument("--cache", default=None, help="with --sources: keep the PS model's predictions in this folder "
                   "(re-evaluating another placement model then skips them)")


def run(args) -> int:

    if args.k < 1:
        raise UserError(f"-K must be at least 1, got {args.k}")
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be at least 1, got {args.limit}")
    if args.per_track < 1:
        raise UserError(f"--per-track must be at least 1, got {args.per_track}")
    if args.seconds <= 0:
        raise UserError(f"--seconds must be positive, got {args.seconds}")
    models = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    if args.json and Path(args.json).is_dir():
        raise UserError(f"{args.json} is a directory")
    if args.reference is not None and not args.sources:
        raise UserError("--reference needs --sources")
    if args.sources and args.reference is not None:
        return _run_reference(args)
    if args.sources:
        return _run_sources(args)
    bar = TerminalProgress(enabled=not getattr(args, "quiet", False))
    try:
        res = evaluation.evaluate(args.data, args.split, k=args.k, seconds=args.seconds, limit=args.limit,
                       per_track=args.per_track,
                       models=models, ar_excerpts=args.ar_excerpts, models_folder=args.models_dir,
                       roundtrip=not args.no_roundtrip, include_copies=args.include_copies, progress=bar)
    finally:
        bar.close()
    print(evaluation.format_table(res))
    print(f"({res.wall_seconds:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(res.to_dict(), indent=2))
    return 0


def _run_sources(args) -> int:
    """``--sources``: :func:`training.evaluation_sources.evaluate_sources` on the split's clean excerpts."""

    bar = TerminalProgress(enabled=not getattr(args, "quiet", False))
    try:
        exs = evaluation.load_excerpts(args.data, args.split, args.seconds, args.limit, per_track=args.per_track,
                            include_copies=args.include_copies, keep_stereo=True, progress=bar)
        res = evaluation_sources.evaluate_sources(exs, separation.get("formation").separate, k=args.k,
                                                  ps_model=args.ps_model,
                               chain=not args.no_chain, split=args.split, seconds=args.seconds,
                               raw_rows=args.uncalibrated,
                               cache=Path(args.cache) if args.cache else None, progress=bar)
    finally:
        bar.close()
    print(evaluation_sources.format_source_tables(res))
    print(f"({res.wall_seconds:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(res.to_dict(), indent=2))
    return 0


def _run_reference(args) -> int:
    """``--sources --reference``: :func:`training.evaluation_reference.evaluate_reference`."""
    conds = (list(evaluation_reference.CONDITIONS) if args.reference == "all"
             else [c.strip() for c in args.reference.split(",") if c.strip()])
    bad = [c for c in conds if c not in evaluation_reference.ALL_CONDITIONS]
    if bad or not conds:
        raise UserError(f"--reference: unknown condition {bad[0] if bad else args.reference!r}; "
                        f"choose from {', '.join(evaluation_reference.ALL_CONDITIONS)} or all")
    bar = TerminalProgress(enabled=not getattr(args, "quiet", False))
    try:
        exs, from_train = evaluation_reference.reference_excerpts(args.data, args.split, limit=args.limit, progress=bar)
        res = evaluation_reference.evaluate_reference(exs, separation.get("formation").separate, k=args.k,
                                                      conditions=conds,
                                 ps_model=args.ps_model, chain=not args.no_chain, split=args.split,
                                 album_from_train=from_train, cache=Path(args.cache) if args.cache else None,
                                 progress=bar)
    finally:
        bar.close()
    print(evaluation_reference.format_reference_table(res))
    print(f"({res.wall_seconds:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(res.to_dict(), indent=2))
    return 0
