"""Training the reference matcher (:class:`core.models.reference_match.ReferenceMatcher`) on pairs
of excerpts of real stereo music (:mod:`training.reference_data`): resumable, the best held-out
checkpoint kept.

Every tenth track (by content digest) is held out of training to select the checkpoint; ``valid``
stays for evaluation (``soundstage eval --sources --reference``).

    python -m training.train_reference --minutes 10 --out ~/.cache/soundstage-train-reference/model \
        --export resources/models/reference-match.pt
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from core.audio import replacing
from core.models.base import load_weights
from core.models.placement_features import N_MIX_FEATURES, N_SOURCE_FEATURES
from core.models.reference_match import MatchConfig, ReferenceMatcher, _net, band_projection, match_nll

from .reference_data import load_pairs, pairs
from core.reference import ReferenceScene, place_features
from core import lazy
placement = lazy.module("core.models.placement")
torch = lazy.module("torch")

__all__ = ["TrainMatchConfig", "train_matcher", "pairs_nll", "split_pairs"]

SPREAD_P = 0.5      # share of training pairs whose pans (both sides alike) are scaled up ...
SPREAD_MAX = 4.0    # ... by a factor up to this (clipped to the stage): real mixes of these sources sit
                    # near the centre, and matching matters most where the reference is wide


@dataclass
class TrainMatchConfig:
    steps: int = 2500
    batch: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup: int = 100
    minutes: float = 0.0
    val_every: int = 100
    seed: int = 0
    net: dict = field(default_factory=dict)


def split_pairs(scenes: dict, packages: dict, *, every: int = 5, seed: int = 0):
    """(fit, select) pairs: tracks whose digest is a multiple of ``every`` are held out (the
    select pairs are made among them only)."""
    held = {d for d in scenes if int(d[:8], 16) % every == 0}
    fit = pairs({d: v for d, v in scenes.items() if d not in held}, packages, seed=seed)
    sel = pairs({d: v for d, v in scenes.items() if d in held}, packages, seed=seed)
    return fit, sel


def _collate(batch: Sequence, rng: Optional[np.random.Generator]):
    b = len(batch)
    s = max(p[0].n for p in batch)
    r = max(p[1].n for p in batch)
    f = np.zeros((b, s, N_SOURCE_FEATURES), np.float32)
    g = np.zeros((b, r, N_SOURCE_FEATURES), np.float32)
    y = np.zeros((b, r, 2), np.float32)
    t = np.zeros((b, s, 2), np.float32)
    ls = np.zeros((b, r), np.float32)
    mf = np.zeros((b, N_MIX_FEATURES), np.float32)
    mg = np.zeros((b, N_MIX_FEATURES), np.float32)
    fpad = np.ones((b, s), bool)
    gpad = np.ones((b, r), bool)
    wt = np.zeros((b, s), np.float32)
    band = np.zeros((b, s), np.float32)
    for k, (rec, ref, _kind) in enumerate(batch):
        sign = -1.0 if rng is not None and rng.random() < 0.5 else 1.0
        if rng is not None and rng.random() < SPREAD_P:     # a wider mix of the same music: both pans scaled
            sign *= float(np.exp(rng.uniform(0.0, np.log(SPREAD_MAX))))
        f[k, :rec.n], g[k, :ref.n] = rec.feats, ref.feats
        y[k, :ref.n, 0], y[k, :ref.n, 1] = np.clip(sign * ref.pan, -1, 1), ref.width
        t[k, :rec.n, 0], t[k, :rec.n, 1] = np.clip(sign * rec.pan, -1, 1), rec.width
        share = np.maximum(ref.energy / max(float(ref.energy.sum()), 1e-30), 1e-6)
        ls[k, :ref.n] = np.log(share)
        mf[k], mg[k] = rec.mix, ref.mix
        fpad[k, :rec.n], gpad[k, :ref.n] = False, False
        w = np.sqrt(rec.energy / max(float(rec.energy.sum()), 1e-30))
        wt[k, :rec.n] = w / w.sum()
        band[k, :rec.n] = band_projection(rec.feats, ref.feats, share / share.sum(), y[k, :ref.n, 0])
    tt = torch.from_numpy
    return tuple(tt(a) for a in (f, g, y, ls, mf, mg, fpad, gpad, band)), tt(t), tt(wt)


def _loss(net, batch):
    inputs, target, w = batch
    mu, ls = net(*inputs)
    return (match_nll(mu, ls, target) * w).sum() / w.shape[0]


def pairs_nll(matcher: ReferenceMatcher, prs: Sequence, size: int = 64) -> float:
    """Mean per-pair loss (weighted NLL) of ``prs``, no mirroring."""
    net = matcher.net.eval()
    tot, n = 0.0, 0
    with torch.inference_mode():
        for i in range(0, len(prs), size):
            chunk = prs[i:i + size]
            tot += float(_loss(net, _collate(chunk, None))) * len(chunk)
            n += len(chunk)
    return tot / max(n, 1)


def _norm_stats(prs) -> tuple:
    feats = np.concatenate([p[0].feats for p in prs] + [p[1].feats for p in prs])
    mixes = np.stack([p[0].mix for p in prs] + [p[1].mix for p in prs])
    return feats.mean(0), np.maximum(feats.std(0), 1e-3), np.maximum(mixes.std(0), 1e-3)


def train_matcher(cfg: TrainMatchConfig, fit: Sequence, select: Sequence, out: Path, *,
                  log: Callable[[str], None] = print) -> Path:
    """Train (resuming from ``out/ckpt.pt``); the best held-out weights go to ``out/best.pt``."""
    torch.set_num_threads(1)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mcfg = MatchConfig.from_dict(cfg.net)
    torch.manual_seed(cfg.seed)
    net = _net(mcfg)
    fm, fs, ms = _norm_stats(fit)
    with torch.no_grad():
        net.f_mean.copy_(torch.from_numpy(fm))
        net.f_std.copy_(torch.from_numpy(fs))
        net.m_std.copy_(torch.from_numpy(ms))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, best, rng = 0, math.inf, np.random.default_rng(cfg.seed)
    ck = out / "ckpt.pt"
    if ck.exists():
        st = load_weights(ck, keys=("state", "opt", "step", "best"))
        net.load_state_dict(st["state"])
        opt.load_state_dict(st["opt"])
        step, best = int(st["step"]), float(st["best"])
        rng = np.random.default_rng(cfg.seed + step)
        log(f"resumed at step {step} (best held-out {best:.4f})")
    sel_m = ReferenceMatcher(net, mcfg)
    tracks_ = [i for i, p in enumerate(fit) if p[2] == "same-track"]
    albums = [i for i, p in enumerate(fit) if p[2] != "same-track"]
    t0 = time.monotonic()
    while step < cfg.steps:
        if cfg.minutes > 0 and time.monotonic() - t0 > cfg.minutes * 60:
            log("time is up")
            break
        net.train()
        lr = cfg.lr * min(1.0, (step + 1) / cfg.warmup) * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
        for gp in opt.param_groups:
            gp["lr"] = lr
        half = cfg.batch // 2           # half same-track pairs, half same-album
        idx = [int(i) for i in rng.choice(tracks_, size=min(half, len(tracks_)), replace=False)] + \
              [int(i) for i in rng.choice(albums, size=min(cfg.batch - half, len(albums)), replace=False)]
        loss = _loss(net, _collate([fit[i] for i in idx], rng))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        step += 1
        if step % cfg.val_every == 0 or step == cfg.steps:
            v = pairs_nll(sel_m, select)
            ReferenceMatcher(net, mcfg).save(out / f"step-{step:05d}.pt", {"step": step, "select_nll": v})
            if v < best:
                best = v
                ReferenceMatcher(net, mcfg).save(out / "best.pt", {"step": step, "select_nll": v})
            log(f"step {step}: train {float(loss.detach()):.4f}, held-out {v:.4f} (best {best:.4f})")
            with replacing(ck) as tmp:
                torch.save({"state": net.state_dict(), "opt": opt.state_dict(), "step": step, "best": best}, tmp)
    return out / "best.pt"


def _main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", default=None, help="pair scene folder (default: training.reference_data.cache_root())")
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=2500)
    ap.add_argument("--minutes", type=float, default=0.0)
    ap.add_argument("--export", default=None, help="copy the best checkpoint here, with its info")
    ap.add_argument("--select", action="store_true", help="choose among the saved step checkpoints by the "
                    "held-out source E_min (with the reference, relative to the placement model alone) instead")
    a = ap.parse_args()
    scenes, packages = load_pairs("train", out=Path(a.scenes) if a.scenes else None)
    fit, sel = split_pairs(scenes, packages)
    kinds = lambda prs: {k: sum(p[2] == k for p in prs) for k in ("same-track", "same-album")}  # noqa: E731
    print(f"pairs: fit {len(fit)} {kinds(fit)}, held out {len(sel)} {kinds(sel)}", flush=True)
    cfg = TrainMatchConfig(steps=a.steps, minutes=a.minutes)
    best = (select_by_emin(Path(a.out), sel, log=lambda s: print(s, flush=True)) if a.select
            else train_matcher(cfg, fit, sel, Path(a.out), log=lambda s: print(s, flush=True)))
    if a.export:
        m = ReferenceMatcher.load(best)
        info = dict(m.info, tracks=len(scenes), fit_pairs=kinds(fit), held_out_pairs=kinds(sel),
                    config=asdict(cfg))
        m.save(Path(a.export), info)
        print(json.dumps(info))



def select_by_emin(out: Path, sel: Sequence, *, k: int = 8, log: Callable[[str], None] = print) -> Path:
    """The step checkpoint in ``out`` whose held-out source E_min, averaged over the two kinds of
    pair as a ratio to the placement model alone, is lowest."""
    best, best_score = None, math.inf
    for p in sorted(Path(out).glob("step-*.pt")):
        r = heldout_emin(ReferenceMatcher.load(p), sel, k=k)
        score = 0.5 * sum(r[(kind, None)] / r[(kind, "none")] for kind in ("same-track", "same-album"))
        log(f"{p.name}: same-track {r[('same-track', None)]:.4f} (none {r[('same-track', 'none')]:.4f}), "
            f"same-album {r[('same-album', None)]:.4f} (none {r[('same-album', 'none')]:.4f}), score {score:.3f}")
        if score < best_score:
            best, best_score = p, score
    log(f"selected {best.name}")
    return best


def heldout_emin(matcher: ReferenceMatcher, prs: Sequence, *, k: int = 8, powers=(None,), model=None) -> dict:
    """Source E_min (per pair the minimum over K seeds of the energy-weighted mean |pan error|,
    averaged) of the proposal with the reference for each placement-model ``power``, and of the
    placement model alone ("none"), per pair kind: {(kind, power): value}."""
    model = model or placement.load_placement_model()
    out: dict = {}
    for rec, ref, kind in prs:
        share = ref.energy / max(float(ref.energy.sum()), 1e-30)
        scene = ReferenceScene("", "", "formation", tuple(map(tuple, ref.feats.tolist())), tuple(ref.mix.tolist()),
                               tuple(np.clip(ref.pan, -1, 1).tolist()), tuple(np.clip(ref.width, 0, 1).tolist()),
                               tuple(share.tolist()))
        w = rec.energy / max(float(rec.energy.sum()), 1e-30)
        cands = {"none": [model.sample(rec.feats, rec.mix, rec.energy, seed=s) for s in range(k)]}
        for pw in powers:
            cands[pw] = [place_features(rec.feats, rec.mix, rec.energy, scene, model=model, matcher=matcher, seed=s,
                                        power=pw) for s in range(k)]
        for key, ys in cands.items():
            e = min(float((np.abs(y[:, 0] - rec.pan) * w).sum()) for y in ys)
            out.setdefault((kind, key), []).append(e)
    return {key: float(np.mean(v)) for key, v in out.items()}


if __name__ == "__main__":
    _main()
