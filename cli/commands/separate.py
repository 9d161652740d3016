"""``soundstage separate IN -o STEMS_DIR``: split a recording into sources, one audio file each.

Works with any registered separator (``--separator formation|demucs``, formation by default as in
``upmix`` and ``batch``); its settings come from the named options below (passed only when given)
or from ``--set KEY=VALUE``. Old spellings still work: ``--backend`` for ``--separator``,
``--model`` for ``--demucs-model``.
"""
from __future__ import annotations

import argparse
import inspect
import re
import threading
from pathlib import Path

from core.formats import OUTPUT_FORMATS, extension
import math
import sys
import numpy as np
from cli.main import UserError
from cli.progress_bar import TerminalProgress
from core import lazy
base = lazy.module("separation.base")
core_audio = lazy.module("core.audio")
separation = lazy.module("separation")

NAME = "separate"
HELP = "separate a recording into sources (stems) and write one audio file per source"

_FORMATS = {name: extension(name) for name in OUTPUT_FORMATS}
# option dest -> (backend setting name, the option's spelling); passed only when the option was given
_SETTINGS = {"sources": ("n_sources", "--sources"), "demucs_model": ("model", "--demucs-model"),
             "demucs_models": ("models_dir", "--demucs-models"), "device": ("device", "--device"),
             "shifts": ("shifts", "--shifts"), "overlap": ("overlap", "--overlap"),
             "segment": ("segment", "--segment"), "jobs": ("jobs", "--jobs"), "threads": ("threads", "--threads")}


def add_arguments(p) -> None:
    p.add_argument("input", metavar="IN", help="recording to separate (any format soundfile reads)")
    p.add_argument("-o", "--output", metavar="STEMS_DIR", required=True,
                   help="folder for the stems (created if needed)")
    p.add_argument("--separator", default="formation", metavar="NAME",
                   help="formation (default, as upmix and batch: needs no model files) or demucs")
    p.add_argument("--backend", dest="separator", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # old name
    p.add_argument("--sources", type=int, metavar="N", help="formation: number of sources to find (2-16; default auto)")
    p.add_argument("--demucs-model", metavar="NAME", help="demucs: htdemucs (default), htdemucs_6s, htdemucs_ft")
    p.add_argument("--model", dest="demucs_model", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # old name
    p.add_argument("--demucs-models", metavar="DIR",
                   help="demucs: folder of model files for offline use (default $SOUNDSTAGE_DEMUCS_MODELS)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="demucs: where the model runs (default auto)")
    p.add_argument("--shifts", type=int, help="demucs: random shifts averaged (default 1)")
    p.add_argument("--overlap", type=float, help="demucs: overlap between segments (default 0.25)")
    p.add_argument("--segment", type=float, help="demucs: segment length in seconds (default: the model's)")
    p.add_argument("--jobs", type=int, help="demucs: segments processed in parallel (default 0)")
    p.add_argument("--threads", type=int, help="CPU threads (default: all usable cores)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="any other separator setting (repeatable), e.g. --set sensitivity=0.7")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the stem cache")
    p.add_argument("--format", choices=sorted(_FORMATS), default=None,
                   help="stem file format (default wav24; wav32f when the stems pass full scale)")
    p.add_argument("--force", action="store_true", help="overwrite existing stem files")


def _parse_value(text: str):
    low = text.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def _settings(args, accepts, accepts_cache: bool) -> dict:
    settings, spelled = {}, {}
    for dest, (key, option) in _SETTINGS.items():
        value = getattr(args, dest, None)
        if value is not None:
            settings[key], spelled[key] = value, option
    for item in args.settings:
        if "=" not in item:
            raise UserError(f"--set expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        settings[k.strip().replace("-", "_")] = _parse_value(v.strip())
    unknown = [spelled.get(k, k) for k in settings if not accepts(k)]
    if unknown:
        raise UserError(f"separator {args.separator!r} has no setting {', '.join(unknown)}")
    if args.no_cache and accepts_cache:
        settings["cache"] = False   # (a backend without a cache has nothing to skip)
    return settings


def _file_names(names, ext) -> list[str]:
    out, seen = [], {}
    for i, name in enumerate(names):
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or f"source{i + 1}"
        seen[base] = seen.get(base, 0) + 1
        out.append(f"{base}{ext}" if seen[base] == 1 else f"{base}_{seen[base]}{ext}")
    return out


def run(args) -> int:
    infos = {b.name: b for b in base.list_backends()}
    if args.separator not in infos:
        raise UserError(f"unknown separator {args.separator!r}; available: {', '.join(infos) or 'none'}")
    info = infos[args.separator]
    ok, why = info.available()
    if not ok:
        raise UserError(f"separator {args.separator!r} is not available: {why}")
    params = inspect.signature(info.factory).parameters
    any_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    settings = _settings(args, lambda k: any_kw or k in params, "cache" in params)
    for k, v in args.user.backend_options(args.separator).items():   # the user's folders and cache
        if v is not None and (any_kw or k in params):
            settings.setdefault(k, v)

    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: exists and is not a folder")
    try:
        backend = separation.get(args.separator, **settings)
    except TypeError as exc:
        bad = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if bad:
            name = next((opt for key, opt in _SETTINGS.values() if key == bad.group(1)), bad.group(1))
            raise UserError(f"separator {args.separator!r} has no setting {name}") from None
        raise UserError(f"separator {args.separator!r}: {exc}") from None

    bar = TerminalProgress(enabled=not args.quiet)
    cancel = threading.Event()
    try:
        audio = core_audio.load_mono(args.input)       # (a downmix or resampling is noted on stderr)
        sources = backend.separate(audio, progress=bar, cancel=cancel)   # missing weights: ParameterError
    finally:
        bar.close()

    peak = max(float(np.max(np.abs(s.audio), initial=0.0)) for s in sources)
    fmt = args.format or ("wav32f" if peak > 1.0 else "wav24")
    if peak > 1.0:
        # PCM would clip the stems and they would no longer sum to the input: float keeps them exact.
        in_peak = float(np.max(np.abs(audio), initial=0.0))
        if not core_audio.SUBTYPES[fmt][1] == "FLOAT":
            raise UserError(f"the stems peak at {20 * math.log10(peak):+.1f} dBFS (the input at "
                            f"{20 * math.log10(in_peak):+.1f} dBFS): --format {fmt} would clip them; "
                            f"use --format wav32f (or leave --format out)")
        print(f"note: the input peaks at {20 * math.log10(max(in_peak, 1e-12)):+.1f} dBFS, above full scale; "
              f"the stems are 32-bit float so that they still sum to it exactly", file=sys.stderr)
    ext = _FORMATS[fmt]
    targets = [out_dir / f for f in _file_names([s.name for s in sources], ext)]
    # Check every destination before writing any, so a refusal leaves no half-written set.
    for t in targets:
        if core_audio.same_file(args.input, t):
            raise UserError(f"{t}: refusing to write over the input recording")
        if t.exists() and not args.force:
            raise UserError(f"{t}: already exists (use --force to overwrite)")
    # All stems or none: each goes to a temporary file renamed only when every one is complete;
    # a failure (no space, no permission) removes them all and a stems folder made for them.
    with core_audio.AtomicWriters(targets, fmt=fmt, channels=1, overwrite=args.force, inputs=[args.input]) as writers:
        step = 1 << 18
        for s, w in zip(sources, writers):
            for start in range(0, len(s.audio), step):
                w.write(s.audio[start:start + step])
    for t in targets:
        print(t)
    return 0
