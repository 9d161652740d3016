"""``soundstage upmix IN -o OUT --method NAME``: mono to stereo through the PS decoder.

The method is any registered PS model (``decorr``, ``mono``, ``ps-nn``, ``ps-mtm``, ...); the
predicted parameters drive the decoder over the whole recording. The export never clips (a gain
brings the peak under -0.1 dBFS and the command says by how much) and never overwrites the input.
"""
from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from app.progress_bar import TerminalProgress
from core import SAMPLE_RATE, audio
from core.decoder import decode
from core.metrics import peak_ceiling
from core.models import list_models, load_model
from core.progress import Reporter

NAME = "upmix"
HELP = "upmix a mono recording to stereo"
FORMATS = ("wav16", "wav24", "wav32f", "flac", "flac16")


def best_method() -> str:
    """The best available method: PS-MTM, then PS-NN, then Decorr (which needs no model file)."""
    from core.models.base import models_dir
    avail = {m.name for m in list_models() if m.available(models_dir())[0]}
    for name in ("ps-mtm", "ps-nn", "decorr"):
        if name in avail:
            return name
    return "decorr"


def add_arguments(p) -> None:
    p.add_argument("input", help="input audio file (any format soundfile reads; downmixed to mono)")
    p.add_argument("-o", "--output", required=True, help="output stereo file (.wav or .flac)")
    p.add_argument("--method", default="best", help="PS model: best (default), decorr, mono, ps-nn, ps-mtm, ps-reg, ps-ar")
    p.add_argument("--seed", type=int, default=0, help="rendition seed for generative models (default 0)")
    p.add_argument("--temperature", type=float, default=None, help="sampling temperature (model default)")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance (model default)")
    p.add_argument("--format", choices=FORMATS, default=None, help="output format (default from extension: wav24 or flac)")
    p.add_argument("--models-dir", default=None, help="folder of model files (default: shipped models)")
    p.add_argument("--separator", default=None, help="find sources first (formation, demucs) and place each one; "
                   "without it the whole recording is decoded with the model's parameters")
    p.add_argument("--sources", type=int, default=None, help="number of sources for the formation separator (2-8)")
    p.add_argument("--demucs-model", default=None, help="Demucs model name (htdemucs, htdemucs_6s, htdemucs_ft)")
    p.add_argument("--renditions", type=int, default=1, help="with --separator: render K renditions (seeds N..N+K-1)")
    p.add_argument("--project", default=None, help="with --separator: project file path (default OUT.soundstage.json)")
    p.add_argument("--stems", action="store_true", help="with --separator: also write each source's stereo stem")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")


def run(args) -> int:
    from app.cli import UserError, check_output
    out = check_output(args.output, inputs=[args.input], force=args.force)
    method = best_method() if args.method == "best" else args.method
    names = [m.name for m in list_models()]
    if method not in names:
        raise UserError(f"unknown method {method!r}; choose one of: best, {', '.join(names)}")
    if args.separator:
        return _run_session(args, method, out)
    mono = audio.load_mono(args.input)
    model = load_model(method, args.models_dir)
    bar = TerminalProgress(enabled=not args.quiet)
    cancel = threading.Event()
    try:
        params = model.predict(mono, seed=args.seed, temperature=args.temperature, guidance=args.guidance,
                               progress=Reporter(bar, f"predict {method}"), cancel=cancel)
        stereo = decode(mono, params, progress=Reporter(bar, "decode"), cancel=cancel)
    finally:
        bar.close()
    stereo, gain_db = peak_ceiling(stereo)
    fmt = args.format or audio.format_for_path(out)
    audio.write(out, stereo, fmt=fmt, overwrite=args.force, inputs=[args.input])
    info = {"output": str(out), "method": method, "seed": args.seed, "seconds": round(len(mono) / SAMPLE_RATE, 2),
            "format": fmt, "gain_db": round(gain_db, 2)}
    if not args.quiet:
        note = f" (scaled by {gain_db:.2f} dB to stay under -0.1 dBFS)" if gain_db < 0 else ""
        print(f"wrote {out}: {info['seconds']} s stereo, method {method}, seed {args.seed}{note}")
    else:
        print(json.dumps(info), file=sys.stdout)
    return 0


def _run_session(args, method: str, out: Path) -> int:
    """The whole chain: separate, predict, seed placements, render, export with a project file."""
    from app.project import save_project
    from app.session import Session
    settings = {}
    if args.sources is not None:
        settings["n_sources"] = args.sources
    if args.demucs_model is not None:
        settings["model"] = args.demucs_model
    session = Session()
    session.open(args.input)
    session.model = method
    bar = TerminalProgress(enabled=not args.quiet)
    cancel = threading.Event()
    try:
        session.separate(args.separator, settings, progress=Reporter(bar, f"separate {args.separator}"), cancel=cancel)
        results = []
        for k in range(max(1, args.renditions)):
            seed = args.seed + k
            session.new_rendition(seed, model=method, temperature=args.temperature, guidance=args.guidance,
                                  progress=Reporter(bar, f"rendition {k + 1}"), cancel=cancel)
            dest = out if k == 0 else out.with_name(f"{out.stem}-seed{seed}{out.suffix}")
            res = session.export(dest, fmt=args.format, stems=args.stems, overwrite=args.force,
                                 project=args.project is None or k > 0)
            if args.project is not None and k == 0:
                res.project = save_project(session, args.project, export={"path": str(dest), "format": args.format})
            results.append(res)
    finally:
        bar.close()
    for res in results:
        note = f" (scaled by {res.gain_db:.2f} dB to stay under -0.1 dBFS)" if res.gain_db < 0 else ""
        print(f"wrote {res.path}{note}; project {res.project}")
    names = ", ".join(f"{s.name} pan {p.pan:+.2f} width {p.width:.2f}" for s, p in zip(session.sources, session.placements))
    if not args.quiet:
        print(f"{len(session.sources)} sources: {names}")
    return 0
