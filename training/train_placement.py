"""Training the source-level placement model (:class:`core.models.placement.PlacementModel`) on
scenes of real stereo music (:mod:`training.placement_data`): resumable, the best validation
checkpoint kept."""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from core.audio import replacing
from core.errors import ParameterError
from core.models.base import load_weights
from core.models.placement import MAX_SOURCES, PlacementConfig, PlacementModel, _net, _nll
from core.models.placement_features import N_MIX_FEATURES, N_SOURCE_FEATURES
from core.progress import check_cancel
from core import lazy
torch = lazy.module("torch")

__all__ = ["TrainPlacementConfig", "train_placement", "scenes_nll", "marginal_nll", "batch_loss"]


@dataclass
class TrainPlacementConfig:
    steps: int = 3000
    batch: int = 64
    lr: float = 5e-4
    weight_decay: float = 0.05
    warmup: int = 100
    minutes: float = 0.0
    val_every: int = 100
    ckpt_minutes: float = 2.0
    seed: int = 0
    threads: int = 1
    net: dict = field(default_factory=dict)


def _collate(scenes: Sequence, rng: Optional[np.random.Generator], augment: bool):
    """Pad scenes to one batch; choose known subsets and mirror (when ``rng`` is given)."""
    b = len(scenes)
    s = min(MAX_SOURCES, max(sc.n for sc in scenes))
    feats = np.zeros((b, s, N_SOURCE_FEATURES), np.float32)
    mix = np.zeros((b, N_MIX_FEATURES), np.float32)
    y = np.zeros((b, s, 2), np.float32)
    known = np.zeros((b, s), bool)
    pad = np.ones((b, s), bool)
    wt = np.zeros((b, s), np.float32)
    for j, sc in enumerate(scenes):
        n = min(sc.n, s)
        feats[j, :n], mix[j] = sc.feats[:n], sc.mix
        y[j, :n, 0], y[j, :n, 1] = sc.pan[:n], sc.width[:n]
        pad[j, :n] = False
        share = sc.energy[:n] / max(float(sc.energy[:n].sum()), 1e-30)
        wt[j, :n] = np.sqrt(share)
        if rng is not None:
            k = int(rng.integers(0, n))
            known[j, rng.permutation(n)[:k]] = True
            if augment and rng.random() < 0.5:
                y[j, :, 0] = -y[j, :, 0]
    return {k: torch.from_numpy(v) for k, v in
            dict(feats=feats, mix=mix, y=y, known=known, pad=pad, wt=wt).items()}


def batch_loss(net, batch) -> "torch.Tensor":
    """Weighted mean NLL of the unknown, real sources of a batch."""
    lg, mu, ls = net(batch["feats"], batch["mix"], batch["y"], batch["known"], batch["pad"])
    nll = _nll(lg, mu, ls, batch["y"])
    w = batch["wt"] * (~batch["known"]) * (~batch["pad"])
    return (nll * w).sum() / w.sum().clamp_min(1e-8)


def _valid_batches(scenes, seed: int = 1234, size: int = 64):
    rng = np.random.default_rng(seed)   # fixed known subsets: comparable across evaluations
    return [_collate(scenes[i:i + size], rng, augment=False) for i in range(0, len(scenes), size)]


def _valid_loss(net, batches) -> float:
    net.eval()
    with torch.inference_mode():
        tot = [(float(batch_loss(net, b)), float((b["wt"] * ~b["known"] * ~b["pad"]).sum())) for b in batches]
    net.train()
    return sum(a * w for a, w in tot) / max(sum(w for _, w in tot), 1e-8)


def scenes_nll(model: "PlacementModel", scenes: Sequence) -> float:
    """Weighted NLL of ``scenes`` under ``model`` (random known subsets, fixed seed): the
    validation figure of the model card."""
    return _valid_loss(model.net, _valid_batches(list(scenes)))


def marginal_nll(train: Sequence, scenes: Sequence) -> float:
    """The same NLL for a baseline that ignores every feature: pan ~ Laplace(0, b) (mirror
    symmetric), width ~ Normal, fitted on ``train`` (each source weighted as in training)."""
    p = np.concatenate([s.pan for s in train]).astype(np.float64)
    w = np.concatenate([s.width for s in train]).astype(np.float64)
    b = max(float(np.mean(np.abs(p))), 1e-3)
    mw, sw = float(w.mean()), max(float(w.std()), 1e-3)
    tot, wsum = 0.0, 0.0
    for s in scenes:
        wt = np.sqrt(s.energy / max(float(s.energy.sum()), 1e-30))
        nll = (np.abs(s.pan) / b + math.log(2 * b) + 0.5 * ((s.width - mw) / sw) ** 2 + math.log(sw)
               + 0.5 * math.log(2 * math.pi))
        tot += float((nll * wt).sum())
        wsum += float(wt.sum())
    return tot / max(wsum, 1e-30)


def _norm_stats(scenes) -> tuple:
    f = np.concatenate([sc.feats for sc in scenes]).astype(np.float64)
    m = np.stack([sc.mix for sc in scenes]).astype(np.float64)
    return f.mean(0), np.maximum(f.std(0), 1e-3), m.mean(0), np.maximum(m.std(0), 1e-3)


def train_placement(cfg: TrainPlacementConfig, train: Sequence, valid: Sequence, out: Path, *,
                    log: Callable[[str], None] = print, cancel=None) -> dict:
    """Train (or resume from ``out/ckpt.pt``); keep the best validation checkpoint in
    ``out/best.pt``. Returns {"step", "elapsed", "history", "best"}."""
    if not train:
        raise ParameterError("no training scenes")
    torch.set_num_threads(max(1, cfg.threads))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "ckpt.pt"
    pcfg = PlacementConfig.from_dict(cfg.net)
    torch.manual_seed(cfg.seed)
    net = _net(pcfg)
    fm, fs, mm, ms = _norm_stats(train)
    for name, v in (("f_mean", fm), ("f_std", fs), ("m_mean", mm), ("m_std", ms)):
        getattr(net, name).copy_(torch.from_numpy(v.astype(np.float32)))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)
    step, elapsed, history, best = 0, 0.0, [], {"loss": float("inf"), "step": 0}
    if ckpt.exists():
        ck = load_weights(ckpt, keys=("config", "model", "opt", "step", "elapsed", "history", "best", "rng"))
        pcfg = PlacementConfig.from_dict(ck["config"])
        net = _net(pcfg)
        net.load_state_dict(ck["model"])
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        opt.load_state_dict(ck["opt"])
        step, elapsed, history, best = ck["step"], ck["elapsed"], ck["history"], ck["best"]
        rng.bit_generator.state = ck["rng"]
        log(f"resumed at step {step} ({elapsed / 60:.1f} min)")
    vb = _valid_batches(list(valid)) if valid else []
    net.train()
    t_run, t_ck = time.monotonic(), time.monotonic()
    elapsed0 = elapsed

    def save(path):
        with replacing(path) as tmp:
            torch.save({"config": asdict(pcfg), "model": net.state_dict(), "opt": opt.state_dict(), "step": step,
                        "elapsed": elapsed, "history": history, "best": best, "rng": rng.bit_generator.state}, tmp)

    while step < cfg.steps:
        check_cancel(cancel)
        if cfg.minutes > 0 and time.monotonic() - t_run > cfg.minutes * 60:
            break
        lr = cfg.lr * min(1.0, (step + 1) / cfg.warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / cfg.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = rng.integers(0, len(train), cfg.batch)
        batch = _collate([train[i] for i in idx], rng, augment=True)
        loss = batch_loss(net, batch)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        step += 1
        elapsed = elapsed0 + time.monotonic() - t_run
        if step % cfg.val_every == 0 or step == cfg.steps:
            v = _valid_loss(net, vb) if vb else float("nan")
            history.append({"step": step, "train": float(loss.detach()), "valid": v, "minutes": round(elapsed / 60, 2)})
            log(f"step {step}: train NLL {float(loss.detach()):.3f}, valid NLL {v:.3f}")
            if vb and v < best["loss"]:
                best = {"loss": v, "step": step}
                PlacementModel(net, pcfg).save(out / "best.pt", {"step": step, "valid_nll": v})
                net.train()
        if time.monotonic() - t_ck > cfg.ckpt_minutes * 60:
            save(ckpt)
            t_ck = time.monotonic()
    save(ckpt)
    if not vb:
        PlacementModel(net, pcfg).save(out / "best.pt", {"step": step})
    return {"step": step, "elapsed": elapsed, "history": history, "best": best}
