"""``soundstage train --method NAME --data DIR``: train a neural PS model on CPU (resumable).

Uses the ``train`` split of the manifest in DIR for training and ``valid`` for validation (each
distinct file once; validation files that are also training files are left out); a plain
folder of stereo files is split deterministically (every tenth file validates). Checkpoints go to
``--out`` (default ``~/.cache/soundstage-train/NAME``); running the same command again resumes.
``--export FILE`` writes the fp16 model file that ``resources/models/`` ships.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from cli.main import UserError
from core.errors import ParameterError
from core.settings import training_cache_dir
from dataclasses import replace
from cli.progress_bar import TerminalProgress
from core import lazy
features = lazy.module("core.models.features")
dataset = lazy.module("training.dataset")
fit_detail = lazy.module("training.fit_detail")
fit_lean = lazy.module("training.fit_lean")
placement = lazy.module("core.models.placement")
placement_data = lazy.module("training.placement_data")
psnn = lazy.module("core.models.psnn")
psnn_build = lazy.module("training.psnn_build")
train_placement = lazy.module("training.train_placement")
train_ps = lazy.module("training.train_ps")

SHIPPED_SIZE = {"d": 128, "layers": 4}     # the shipped PS models' width and depth (their cards): a new run's default
TRAINABLE = ("ps-mtm", "ps-reg", "ps-ar", "ps-nn", "placement", "detail", "lean")
NAME = "train"
HELP = ("train a PS model (ps-mtm, ps-reg, ps-ar; ps-nn builds its table; detail: PS-MTM's detail calibration; "
        "lean: its renditions' band leans) "
        "on a folder of stereo music")


def add_arguments(p) -> None:
    p.add_argument("--method", choices=TRAINABLE, metavar="{" + ",".join(TRAINABLE) + "}",
                   help="the model to train (required; ps-nn: build the nearest-neighbour table; not "
                        "resumable, minutes; placement: the source-level placement model)")
    p.add_argument("--model", dest="method", choices=TRAINABLE, default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)   # old name
    p.add_argument("--data", default=None, help="data folder with manifest.tsv, or any folder of stereo files "
                   "(default: ~/.cache/soundstage-data)")
    p.add_argument("--out", default=None, help="checkpoint folder (default ~/.cache/soundstage-train/MODEL)")
    p.add_argument("--steps", type=int, default=None, help="total optimizer steps (default 20000; 3000 for ps-reg)")
    p.add_argument("--minutes", type=float, default=0.0, help="stop this run after so many minutes (resumable)")
    p.add_argument("--batch", type=int, default=16, help="patches of 6 s per step")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate")
    p.add_argument("--init", default=None, help="initialize from this checkpoint or model file (a model of the same kind: fine-tuning, its architecture and input normalization kept; PS-AR from PS-MTM: the matching weights)")
    p.add_argument("--export", default=None, help="write the fp16 model file here when done")
    p.add_argument("--prev-drop", type=float, default=0.0, help="PS-AR: share of patches trained without "
                   "previous-frame tokens (new runs only)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--d", type=int, default=None, help="model width (new runs only; PS models: default 128, "
                   "the shipped ones' width)")
    p.add_argument("--layers", type=int, default=None, help="transformer layers (new runs only; PS models: "
                   "default 4, as shipped)")
    p.add_argument("--build-minutes", type=float, default=0.0, help="placement: stop building training scenes "
                   "after so many minutes and train on what there is (the build resumes next time)")
    p.add_argument("--no-build", action="store_true", help="placement: train on the scenes built so far")
    p.add_argument("--every", type=int, default=4, help="detail: one excerpt from every N-th train track (default 4)")
    p.add_argument("--iterations", type=int, default=3, help="detail: rendering passes after the first (default 3)")
    p.add_argument("--renditions", type=int, default=1, help="detail: PS-MTM seeds per excerpt (default 1)")


def _fit_detail(args) -> int:
    """PS-MTM's detail calibration (``training.fit_detail``) on the train split; ``--export`` writes the JSON file
    (``resources/models/ps-mtm-detail.json``)."""

    log = print if not getattr(args, "quiet", False) else (lambda s: None)
    cache = Path(args.out) if args.out else training_cache_dir("detail") / "train"
    try:
        res = fit_detail.fit_detail(args.data, every=args.every, k=args.renditions, iterations=args.iterations,
                                    cache=cache)
    except ParameterError as exc:
        raise UserError(str(exc)) from None
    log(f"{res.excerpts} excerpts of {res.tracks} train tracks, K = {args.renditions}: D_F of the chain per pass "
        + ", ".join(f"{d:.3f}" for d in res.d_f) + f"; kept pass {res.best} ({res.seconds / 60:.1f} min)")
    if args.export:
        info = {"data": "train split", "excerpts": res.excerpts, "tracks": res.tracks, "every": args.every,
                "renditions": args.renditions, "iterations": args.iterations, "kept": res.best,
                "train_d_f": [round(d, 4) for d in res.d_f], "train_e": [round(e, 4) for e in res.e_mean],
                "minutes": round(res.seconds / 60, 1)}
        replace(res.calibration, info=info).save(args.export)
        log(f"exported {args.export}")
    return 0


def _fit_lean(args) -> int:
    """The band leans of PS-MTM's renditions (``training.fit_lean``) on the train split, added to the shipped detail
    calibration; ``--export`` writes the calibration with them (``resources/models/ps-mtm-detail.json``)."""
    log = print if not getattr(args, "quiet", False) else (lambda s: None)
    cache = Path(args.out) if args.out else training_cache_dir("detail") / "train"
    try:
        res = fit_lean.fit_lean(args.data, every=args.every, cache=cache, log=log)
    except ParameterError as exc:
        raise UserError(str(exc)) from None
    log(f"{res.excerpts} excerpts (shape: {res.shape_excerpts}): kept scale {res.scale:g} "
        f"({res.seconds / 60:.1f} min)")
    if args.export:
        info = dict(res.calibration.info or {}, lean={
            "data": "train split", "shape_excerpts": res.shape_excerpts, "excerpts": res.excerpts,
            "every": args.every, "scale": res.scale, "train_d_f": {f"{k:g}": round(v, 4) for k, v in res.d_f.items()},
            "train_e": {f"{k:g}": round(v, 4) for k, v in res.e_mean.items()}, "minutes": round(res.seconds / 60, 1)})
        replace(res.calibration, info=info).save(args.export)
        log(f"exported {args.export}")
    return 0


def _train_placement(args) -> int:
    """Scenes of the train and valid splits (resumable, ``training.placement_data``), then the
    placement model (``training.train_placement``); the best validation checkpoint is exported."""

    log = print if not getattr(args, "quiet", False) else (lambda s: None)
    try:
        if not args.no_build:
            placement_data.build(args.data, "valid", seconds=10.0, per_track=1, log=log)
            placement_data.build(args.data, "train", seconds=20.0, per_track=3, minutes=args.build_minutes, log=log)
    except ParameterError as exc:
        raise UserError(str(exc)) from None
    train, valid = placement_data.load_scenes("train"), placement_data.load_scenes("valid")
    if not train:
        raise UserError("no training scenes were built")
    fit, select = placement_data.holdout(train)
    log(f"{len(fit)} training scenes ({sum(s.n for s in fit)} sources), {len(select)} held out to select the "
        f"checkpoint, {len(valid)} validation scenes (evaluation only)")
    cfg = train_placement.TrainPlacementConfig(steps=args.steps or 3000, minutes=args.minutes, threads=args.threads,
                                 batch=args.batch if args.batch != 16 else 64)
    if args.lr:
        cfg.lr = args.lr
    if args.d:
        cfg.net["d"] = args.d
    if args.layers:
        cfg.net["layers"] = args.layers
    out = Path(args.out) if args.out else placement_data.cache_root() / "model"
    t0 = time.monotonic()
    res = train_placement.train_placement(cfg, fit, select, out,
                                          log=lambda s: log(f"[{(time.monotonic() - t0) / 60:6.1f} min] {s}"))
    log(f"checkpoint: {out / 'ckpt.pt'} (step {res['step']}, {res['elapsed'] / 60:.1f} min); "
        f"best valid NLL {res['best']['loss']:.3f} at step {res['best']['step']}")
    model = placement.PlacementModel.load(out / "best.pt")
    valid_nll = train_placement.scenes_nll(model, valid) if valid else None
    if valid_nll is not None:
        marginal = train_placement.marginal_nll(fit, valid)
        log(f"valid NLL {valid_nll:.3f} (marginal baseline, no features: {marginal:.3f})")
    if args.export:
        model.save(Path(args.export), {**model.info, "train_scenes": len(fit),
                                       "train_sources": int(sum(s.n for s in fit)), "select_scenes": len(select),
                                       "valid_scenes": len(valid), "valid_nll": valid_nll,
                                       "train_minutes": round(res["elapsed"] / 60, 1), "steps": res["step"]})
        log(f"exported {args.export}")
    return 0


def run(args) -> int:
    if getattr(args, "method", None) == "placement":
        return _train_placement(args)
    if getattr(args, "method", None) == "detail":
        return _fit_detail(args)
    if getattr(args, "method", None) == "lean":
        return _fit_lean(args)

    if args.method is None:
        raise UserError(f"train: --method is required ({', '.join(TRAINABLE)})")
    if args.method == "ps-nn":
        return _build_psnn(args)
    objective = train_ps.OBJECTIVES[args.method]
    log = print if not getattr(args, "quiet", False) else (lambda s: None)
    try:
        has_manifest = args.data is None or (Path(args.data) / "manifest.tsv").exists()
        if has_manifest:
            train_ex = train_ps.load_examples(args.data, "train", log=log)
            valid_ex = train_ps.load_examples(args.data, "valid", exclude=train_ps.split_files(args.data, "train"),
                                              log=log)
        else:
            ts = dataset.tracks(args.data)
            ex = features.build_cache([t.path for t in ts])
            valid_ex = ex[::10] if len(ex) >= 2 else []
            train_ex = [e for i, e in enumerate(ex) if i % 10 or len(ex) < 2]
    except ParameterError as exc:
        raise UserError(str(exc)) from None
    if not train_ex:
        raise UserError(f"no stereo training files found in {args.data or 'the default data folder'}")
    net = {k: v if v is not None else SHIPPED_SIZE[k] for k, v in (("d", args.d), ("layers", args.layers))}
    cfg = train_ps.TrainConfig(objective=objective, batch=args.batch, minutes=args.minutes, threads=args.threads,
                               net=net,
                        steps=args.steps or (3000 if objective == "reg" else 20000))
    if args.lr:
        cfg.lr = args.lr
    cfg.prev_drop = args.prev_drop
    out = Path(args.out) if args.out else train_ps.default_out(args.method)
    t0 = time.monotonic()

    def tlog(s):
        log(f"[{(time.monotonic() - t0) / 60:6.1f} min] {s}", flush=True) if log is print else None

    res = train_ps.train(cfg, train_ex, valid_ex, out, init=Path(args.init) if args.init else None, log=tlog)
    log(f"checkpoint: {out / 'ckpt.pt'}  (step {res['step']}, {res['elapsed'] / 60:.1f} min of training)")
    if args.export:
        train_ps.export_checkpoint(out / "ckpt.pt", Path(args.export), {"model": args.method})
        log(f"exported {args.export}")
    return 0


def _build_psnn(args) -> int:
    """PS-NN has no training loop: sample key/value pairs from the train split and save the table
    (to ``--export``, default the user's model folder)."""
    out = Path(args.export) if args.export else Path(args.user.models_dir) / psnn.FILE_NAME
    bar = TerminalProgress(enabled=not getattr(args, "quiet", False))
    try:
        table = psnn_build.build_index(args.data, "train", psnn.N_PAIRS, 0, progress=bar)
    finally:
        bar.close()
    path = table.save(out)
    print(f"{path}: {table.keys.shape[0]} pairs, {path.stat().st_size / 1e6:.2f} MB, "
          f"built in {table.meta['build_seconds']} s")
    return 0
