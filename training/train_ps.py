"""Training of the neural PS models (PS-MTM, PS-AR, PS-Reg) on CPU, resumable.

Data (Serrà et al. 2023, Sec. 3 and 4): stereo files -> mono downmix features as input, the
stereo's PS parameters / tokens as targets (:mod:`core.models.features`, cached once per file).
Patches of 258 frames (6 s) are drawn at random (files weighted by length) and augmented with a
random gain (+-6 dB, a shift of the log features) and a random left/right swap (IID -> -IID).

Objectives, weighted per batch element by the paper's Eq. 3,
``w = 1 + 0.15 std(clip(IID, +-20 dB)) + std(IC)``:
  * ``mtm``: masked token modelling; the masked fraction is ``cos(pi/2 u)``, u ~ U(0, 1) (MaskGIT),
    cross-entropy on the masked tokens only; the condition phi(S) is replaced by the dropout
    token 10 % of the time (classifier-free guidance).
  * ``ar``: causal over frames; at every frame t a random k_t in [0, 34) leaves bands < k_t of the
    frame visible and masks the upper ones (the paper's "upper bands of the last frame masked"),
    the complete tokens of frame t - 1 come in through the ``prev`` embedding; random position
    offsets so that sampling can slide past one patch. Same condition dropout.
  * ``reg``: mean-squared error on (IID / 20 dB, IC) (the ablation baseline, Sec. 4.1).

AdamW with linear warmup and cosine decay. A checkpoint (model, optimizer, step, rng, history)
is written to ``<out>/ckpt.pt`` every few minutes and at the end; running again resumes from it.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from core.audio import replacing
from core.bands import N_BANDS
from core.errors import ParameterError
from core.models.base import load_weights
from core.models.features import N_FEAT, build_cache, cache_dir
from core.models.net import IC_MASK, IID_MASK, NetConfig, PSNet
from core.progress import check_cancel, report
from core.ps import N_IC, N_IID, N_TOKENS
import os
from core import lazy
dataset = lazy.module("training.dataset")

__all__ = ["TrainConfig", "Batcher", "weights_eq3", "mtm_loss", "ar_loss", "reg_loss", "train", "evaluate",
           "prior_ce", "OBJECTIVES"]

OBJECTIVES = {"ps-mtm": "mtm", "ps-ar": "ar", "ps-reg": "reg"}
PATCH = 258


@dataclass
class TrainConfig:
    objective: str = "mtm"
    steps: int = 20000
    minutes: float = 0.0          # stop after this much training time in this run (0: no limit)
    batch: int = 16
    patch: int = PATCH
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: int = 200
    cond_drop: float = 0.1
    gain_db: float = 6.0
    ckpt_minutes: float = 3.0
    val_every: int = 250
    val_patches: int = 192
    prev_drop: float = 0.0        # AR: probability that a patch sees no previous-frame tokens
    seed: int = 0
    threads: int = 2
    net: dict = field(default_factory=dict)


# ---- data ------------------------------------------------------------------------------------
class Batcher:
    """Random augmented patches from in-memory examples (dicts of :func:`features.stereo_example`)."""

    def __init__(self, examples: list[dict], patch: int, rng: np.random.Generator, gain_db: float = 6.0):
        if not examples:
            raise ParameterError("no training examples")
        self.ex, self.patch, self.rng, self.gain_db = examples, patch, rng, gain_db
        lens = np.array([len(e["tokens"]) for e in examples], np.float64)
        self.p = lens / lens.sum()

    def _cut(self, e: dict, start: int) -> tuple:
        p = self.patch
        f, tok = e["feats"][start:start + p], e["tokens"][start:start + p]
        iid, ic = e["iid"][start:start + p], e["ic"][start:start + p]
        if len(tok) < p:  # a file shorter than a patch: pad with silence, neutral image
            n = p - len(tok)
            f = np.concatenate([f, np.full((n, N_FEAT), -10.0, f.dtype)])
            tok = np.concatenate([tok, np.full((n, N_BANDS), (N_IID // 2) * N_IC, tok.dtype)])
            iid = np.concatenate([iid, np.zeros((n, N_BANDS), iid.dtype)])
            ic = np.concatenate([ic, np.ones((n, N_BANDS), ic.dtype)])
        return f, tok, iid, ic

    def sample(self, n: int, augment: bool = True) -> dict:
        idx = self.rng.choice(len(self.ex), size=n, p=self.p)
        out = [self._cut(self.ex[i], int(self.rng.integers(0, max(1, len(self.ex[i]["tokens"]) - self.patch + 1))))
               for i in idx]
        return self._stack(out, augment)

    def fixed(self, n: int) -> dict:
        """``n`` deterministic patches spread evenly over the examples (validation)."""
        per = max(1, -(-n // len(self.ex)))
        out = []
        for e in self.ex:
            t = len(e["tokens"])
            for s in np.linspace(0, max(0, t - self.patch), per).astype(int):
                out.append(self._cut(e, int(s)))
        return self._stack(out[:n] if len(out) > n else out, augment=False)

    def _stack(self, items, augment: bool) -> dict:
        feats = torch.from_numpy(np.stack([i[0] for i in items]).astype(np.float32))
        tok = torch.from_numpy(np.stack([i[1] for i in items]).astype(np.int64))
        iid = torch.from_numpy(np.stack([i[2] for i in items]).astype(np.float32))
        ic = torch.from_numpy(np.stack([i[3] for i in items]).astype(np.float32))
        qi, qc = tok // N_IC, tok % N_IC
        if augment:
            b = len(items)
            gain = torch.from_numpy(self.rng.uniform(-self.gain_db, self.gain_db, b).astype(np.float32))
            feats = feats + (gain / 10.0).view(b, 1, 1)  # log10 power shifts by dB / 10
            swap = torch.from_numpy(self.rng.random(b) < 0.5).view(b, 1, 1)
            iid = torch.where(swap, -iid, iid)
            qi = torch.where(swap, (N_IID - 1) - qi, qi)  # the IID table is symmetric
        return {"feats": feats, "qi": qi, "qc": qc, "iid": iid, "ic": ic}


def weights_eq3(iid: torch.Tensor, ic: torch.Tensor) -> torch.Tensor:
    """The paper's Eq. 3 per batch element: 1 + 0.15 std(clip(IID, +-20)) + std(IC) -> [B]."""
    b = iid.shape[0]
    return 1.0 + 0.15 * iid.clamp(-20, 20).reshape(b, -1).std(dim=1) + ic.reshape(b, -1).std(dim=1)


def _ce(li: torch.Tensor, lc: torch.Tensor, qi: torch.Tensor, qc: torch.Tensor) -> torch.Tensor:
    """Per-token cross-entropy -log p(IID) - log p(IC) [B, T, 34]."""
    ci = F.cross_entropy(li.reshape(-1, N_IID), qi.reshape(-1), reduction="none")
    cc = F.cross_entropy(lc.reshape(-1, N_IC), qc.reshape(-1), reduction="none")
    return (ci + cc).view(qi.shape)


def _cond_drop(b: int, p: float, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(b, generator=gen) < p


def mtm_mask(b: int, t: int, gen: torch.Generator, ratio: Optional[float] = None) -> torch.Tensor:
    """Bool mask [B, T, 34]: a cosine-schedule fraction (or ``ratio``) of the tokens, uniformly at random."""
    n_tok = t * N_BANDS
    r = torch.cos(0.5 * math.pi * torch.rand(b, generator=gen)) if ratio is None else torch.full((b,), ratio)
    n = torch.clamp(torch.ceil(r * n_tok), 1, n_tok)
    rank = torch.rand(b, n_tok, generator=gen).argsort(dim=1).argsort(dim=1)
    return (rank < n.view(b, 1)).view(b, t, N_BANDS)


def mtm_loss(net: PSNet, batch: dict, gen: torch.Generator, *, cond_drop: float = 0.1,
             ratio: Optional[float] = None, weighted: bool = True):
    """(loss, per-element CE [B], accuracy on masked tokens) of masked token modelling."""
    qi, qc = batch["qi"], batch["qc"]
    b, t, _ = qi.shape
    mask = mtm_mask(b, t, gen, ratio)
    drop = _cond_drop(b, cond_drop, gen) if cond_drop > 0 else None
    li, lc = net(batch["feats"], qi.masked_fill(mask, IID_MASK), qc.masked_fill(mask, IC_MASK), drop_cond=drop)
    ce = _ce(li, lc, qi, qc)
    m = mask.float()
    per = (ce * m).sum(dim=(1, 2)) / m.sum(dim=(1, 2))
    w = weights_eq3(batch["iid"], batch["ic"]) if weighted else torch.ones(b)
    with torch.no_grad():
        hit = ((li.argmax(-1) == qi) & (lc.argmax(-1) == qc)).float()
        acc = float((hit * m).sum() / m.sum())
    return (w * per).sum() / w.sum(), per.detach(), acc


def ar_mask(b: int, t: int, gen: torch.Generator) -> torch.Tensor:
    """Bool mask [B, T, 34]: at every frame the bands >= k_t, k_t uniform in [0, 34)."""
    k = torch.randint(0, N_BANDS, (b, t, 1), generator=gen)
    return torch.arange(N_BANDS).view(1, 1, -1) >= k


def ar_inputs(qi: torch.Tensor, qc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens of frame t - 1 at position t (mask entries at t = 0)."""
    pi = torch.cat([torch.full_like(qi[:, :1], IID_MASK), qi[:, :-1]], dim=1)
    pc = torch.cat([torch.full_like(qc[:, :1], IC_MASK), qc[:, :-1]], dim=1)
    return pi, pc


def ar_loss(net: PSNet, batch: dict, gen: torch.Generator, *, cond_drop: float = 0.1, weighted: bool = True,
            max_offset: int = 4096, prev_drop: float = 0.0):
    qi, qc = batch["qi"], batch["qc"]
    b, t, _ = qi.shape
    mask = ar_mask(b, t, gen)
    drop = _cond_drop(b, cond_drop, gen) if cond_drop > 0 else None
    pos = torch.arange(t).view(1, t) + torch.randint(0, max_offset, (b, 1), generator=gen)
    pi, pc = ar_inputs(qi, qc)
    if prev_drop > 0:  # hide the previous frames of some patches: the mono input must carry them
        hide = (torch.rand(b, generator=gen) < prev_drop).view(b, 1, 1)
        pi, pc = pi.masked_fill(hide, IID_MASK), pc.masked_fill(hide, IC_MASK)
    li, lc = net(batch["feats"], qi.masked_fill(mask, IID_MASK), qc.masked_fill(mask, IC_MASK),
                 drop_cond=drop, pos=pos, prev_qi=pi, prev_qc=pc)
    ce = _ce(li, lc, qi, qc)
    m = mask.float()
    per = (ce * m).sum(dim=(1, 2)) / m.sum(dim=(1, 2))
    w = weights_eq3(batch["iid"], batch["ic"]) if weighted else torch.ones(b)
    with torch.no_grad():
        hit = ((li.argmax(-1) == qi) & (lc.argmax(-1) == qc)).float()
        acc = float((hit * m).sum() / m.sum())
    return (w * per).sum() / w.sum(), per.detach(), acc


def reg_targets(batch: dict) -> torch.Tensor:
    return torch.stack([batch["iid"].clamp(-50, 50) / 20.0, batch["ic"]], dim=2)  # [B, T, 2, 34]


def reg_loss(net: PSNet, batch: dict, gen: torch.Generator, **_):
    y = net(batch["feats"])
    err = ((y - reg_targets(batch)) ** 2).mean(dim=(1, 2, 3))
    return err.mean(), err.detach(), float("nan")


_LOSSES = {"mtm": mtm_loss, "ar": ar_loss, "reg": reg_loss}


# ---- evaluation ------------------------------------------------------------------------------
def prior_ce(examples: list[dict], val: dict) -> float:
    """Cross-entropy (nats per token) on ``val`` of the per-band unigram token prior of ``examples``
    (with left/right-swap symmetry, lightly smoothed): the baseline that ignores the mono input."""
    counts = np.full((N_BANDS, N_TOKENS), 0.01)
    for e in examples:
        tok = e["tokens"].astype(np.int64)
        for b in range(N_BANDS):
            counts[b] += np.bincount(tok[:, b], minlength=N_TOKENS)
    qi, qc = np.arange(N_TOKENS) // N_IC, np.arange(N_TOKENS) % N_IC
    mirror = (N_IID - 1 - qi) * N_IC + qc
    counts = 0.5 * (counts + counts[:, mirror])
    logp = np.log(counts / counts.sum(axis=1, keepdims=True))
    tok = (val["qi"] * N_IC + val["qc"]).numpy()  # [B, T, 34]
    return float(-np.mean(logp[np.arange(N_BANDS)[None, None, :], tok]))


@torch.no_grad()
def evaluate(net: PSNet, objective: str, val: dict, *, chunk: int = 16) -> dict:
    """Validation figures on fixed patches: unweighted CE (nats per token) and accuracy, with fixed
    masks (MTM: all masked and half masked)."""
    net.eval()
    out = {}
    n = val["qi"].shape[0]
    settings = {"mtm": [("ce_all_masked", 1.0), ("ce_half_masked", 0.5)], "ar": [("ce", None)],
                "reg": [("mse", None)]}[objective]
    for name, ratio in settings:
        gen = torch.Generator().manual_seed(1234)
        ces, accs = [], []
        for a in range(0, n, chunk):
            part = {k: v[a:a + chunk] for k, v in val.items()}
            if objective == "mtm":
                _, per, acc = mtm_loss(net, part, gen, cond_drop=0.0, ratio=ratio, weighted=False)
            elif objective == "ar":
                _, per, acc = ar_loss(net, part, gen, cond_drop=0.0, weighted=False, max_offset=1)
            else:
                _, per, acc = reg_loss(net, part, gen)
            ces.append(per), accs.append(acc * len(per))
        out[name] = float(torch.cat(ces).mean())
        if objective != "reg":
            out[name.replace("ce", "acc")] = float(sum(accs) / n)
    net.train()
    return out


# ---- loop ------------------------------------------------------------------------------------
def _lr(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    f = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * f)))


def _same_kind(src: Optional[dict], kind: dict) -> Optional[NetConfig]:
    """The network config of an ``init`` checkpoint / model file when it is a model of the same kind (head,
    causality): training it further keeps its architecture and its input normalization. None otherwise (PS-AR
    from PS-MTM: a new network takes the matching weights)."""
    blob = (src or {}).get("net") or (src or {}).get("config")
    if not isinstance(blob, dict):
        return None
    ncfg = NetConfig.from_dict(blob)
    return ncfg if all(getattr(ncfg, k) == v for k, v in kind.items()) else None


def feature_stats(examples: list[dict]) -> tuple[list, list]:
    f = np.concatenate([e["feats"][::7].astype(np.float32) for e in examples])
    return f.mean(axis=0).tolist(), np.maximum(f.std(axis=0), 1e-3).tolist()


def train(cfg: TrainConfig, train_ex: list[dict], valid_ex: list[dict], out: Path, *,
          init: Optional[Path] = None, log: Callable[[str], None] = print, progress=None, cancel=None) -> dict:
    """Train (or resume) into ``out``; returns the history. ``init``: a PS-MTM checkpoint / model
    file whose matching weights initialize a new run (PS-AR fine-tuning)."""
    torch.set_num_threads(cfg.threads)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "ckpt.pt"
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    if ckpt_path.exists():
        ck = load_weights(ckpt_path)
        ncfg = NetConfig.from_dict(ck["net"])
        net = PSNet(ncfg)
        net.load_state_dict(ck["model"])
        saved = TrainConfig(**{**ck["train"], "steps": cfg.steps, "minutes": cfg.minutes})
        cfg = saved
        step, history, elapsed = ck["step"], ck["history"], ck["elapsed"]
        rng.bit_generator.state = ck["np_rng"]
        gen.set_state(ck["torch_rng"])
        log(f"resumed from {ckpt_path} at step {step} ({elapsed / 60:.1f} min trained)")
    else:
        src = load_weights(init) if init is not None else None
        kind = {"head": "regress" if cfg.objective == "reg" else "tokens",
                "causal": cfg.objective == "ar", "prev_tokens": cfg.objective == "ar"}
        same = _same_kind(src, kind)
        if same is not None:  # fine-tuning: the init's architecture and input normalization go on
            ncfg = same
        else:
            mean, std = feature_stats(train_ex)
            ncfg = NetConfig(**{**cfg.net, "feat_mean": mean, "feat_std": std, **kind})
        net = PSNet(ncfg)
        if src is not None:
            sd = src.get("model") or src.get("state_dict")
            if not isinstance(sd, dict):
                raise ParameterError(f"{init}: holds no model weights ('model' or 'state_dict')")
            own = net.state_dict()
            took = {k: v.float() for k, v in sd.items() if k in own and own[k].shape == v.shape
                    and (same is not None or not k.startswith("feat_"))}
            if "xi.weight" in took and "xi_prev.weight" in own and "xi_prev.weight" not in took:
                took["xi_prev.weight"] = took["xi.weight"].clone()
            net.load_state_dict({**own, **took})
            log(f"initialized {len(took)} tensors from {init}")
        step, history, elapsed = 0, [], 0.0
        ck = None
    cfg.net = {k: v for k, v in ncfg.to_dict().items() if k not in ("feat_mean", "feat_std")}
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    if ck is not None:
        opt.load_state_dict(ck["opt"])
    log(f"{cfg.objective}: {net.n_params() / 1e6:.2f} M parameters, {len(train_ex)} training files "
        f"({sum(len(e['tokens']) for e in train_ex)} frames), {len(valid_ex)} validation files")
    batcher = Batcher(train_ex, cfg.patch, rng, cfg.gain_db)
    val = Batcher(valid_ex, cfg.patch, np.random.default_rng(0)).fixed(cfg.val_patches) if valid_ex else None
    loss_fn = _LOSSES[cfg.objective]

    def save():
        with replacing(ckpt_path) as tmp:
            torch.save({"model": net.state_dict(), "opt": opt.state_dict(), "step": step, "history": history,
                        "elapsed": elapsed, "np_rng": rng.bit_generator.state, "torch_rng": gen.get_state(),
                        "train": asdict(cfg), "net": ncfg.to_dict()}, tmp)

    def validate():
        if val is None:
            return
        figs = evaluate(net, cfg.objective, val)
        history.append({"step": step, "minutes": round(elapsed / 60, 2), **figs})
        log(f"step {step}: validation " + ", ".join(f"{k} {v:.4f}" for k, v in figs.items()))

    net.train()
    run_t0 = time.monotonic()
    last_ck = run_t0
    t_mark, run_loss, run_acc, n_run = time.monotonic(), 0.0, 0.0, 0
    while step < cfg.steps:
        check_cancel(cancel)
        if cfg.minutes and time.monotonic() - run_t0 > cfg.minutes * 60:
            log(f"time limit of {cfg.minutes} min reached at step {step}")
            break
        t0 = time.monotonic()
        for g in opt.param_groups:
            g["lr"] = _lr(step, cfg)
        batch = batcher.sample(cfg.batch)
        extra = {"prev_drop": cfg.prev_drop} if cfg.objective == "ar" and cfg.prev_drop > 0 else {}
        loss, _, acc = loss_fn(net, batch, gen, cond_drop=cfg.cond_drop, **extra)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        step += 1
        elapsed += time.monotonic() - t0
        run_loss, run_acc, n_run = run_loss + float(loss.detach()), run_acc + acc, n_run + 1
        report(progress, "train", step, cfg.steps, f"loss {float(loss.detach()):.3f}")
        if step % 50 == 0:
            dt = time.monotonic() - t_mark
            log(f"step {step}/{cfg.steps} loss {run_loss / n_run:.4f} acc {run_acc / n_run:.3f} "
                f"lr {_lr(step, cfg):.2e} {n_run * cfg.batch / dt:.1f} patches/s")
            t_mark, run_loss, run_acc, n_run = time.monotonic(), 0.0, 0.0, 0
        if step % cfg.val_every == 0:
            validate()
        if time.monotonic() - last_ck > cfg.ckpt_minutes * 60:
            save()
            last_ck = time.monotonic()
    if not history or history[-1]["step"] != step:
        validate()
    save()
    return {"step": step, "elapsed": elapsed, "history": history, "config": asdict(cfg)}


def export_checkpoint(ckpt: Path, dest: Path, meta: Optional[dict] = None) -> PSNet:
    """Write the fp16 model file of a training checkpoint (the format the models load)."""
    ck = load_weights(ckpt)
    net = PSNet(NetConfig.from_dict(ck["net"]))
    net.load_state_dict(ck["model"])
    info = {"step": ck["step"], "train_minutes": round(ck["elapsed"] / 60, 1), "history": ck["history"],
            **(meta or {})}
    net.export(dest, info)
    return net


def load_examples(data, split: Optional[str], *, exclude: Optional[set] = None,
                  log: Callable[[str], None] = print) -> list[dict]:
    """Cached training examples of the distinct stereo files of ``split`` under ``data``.

    Manifest entries that resolve to the same file (links) are used once, and files whose real
    path is in ``exclude`` (e.g. :func:`split_files` of ``train`` when loading ``valid``) are left
    out, so that validation never sees a training file."""
    seen, paths = set(exclude or ()), []
    for t in dataset.tracks(data, split):
        real = os.path.realpath(t.path)
        if real not in seen:
            seen.add(real)
            paths.append(t.path)
    if not paths:
        return []
    t0 = time.monotonic()

    def prog(done, total, name):
        if done == total or done % 20 == 0:
            log(f"features {split or 'all'}: {done}/{total} files ({time.monotonic() - t0:.0f} s)")
    return build_cache(paths, progress=prog)


def split_files(data, split: Optional[str]) -> set:
    """Real paths of the files of ``split`` (to exclude them from another split)."""
    return {os.path.realpath(t.path) for t in dataset.tracks(data, split)}


def default_out(name: str) -> Path:
    return cache_dir() / name
