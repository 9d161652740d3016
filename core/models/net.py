"""The transformer trunk shared by PS-MTM, PS-AR and PS-Reg (Serrà et al. 2023, Sec. 3.2-3.3, 4.1).

Per frame t the input is (the paper's Eq. 2)

    H_t = phi(S_t) + sum_i xi_i(Q_{i,t}) + pos(t)

with ``phi`` a two-layer MLP (expansion 2) of the normalized mono features
(:mod:`core.models.features`), replaced by a learned *dropout token* when the condition is dropped
(classifier-free guidance), and ``xi_i`` a learned per-band embedding of the token of band ``i``.
The token embedding is factorized, ``xi_i(q) = E^IID_i(q // 8) + E^IC_i(q % 8)``, each table with
its own mask entry, and all 68 lookups of a frame are summed in one ``EmbeddingBag``. ``pos`` is
sinusoidal; an offset can shift it (PS-AR trains with random offsets so it runs past one patch).

The trunk is a pre-LN transformer encoder over frames (bidirectional for MTM / Reg, causal for AR).
Heads (a two-layer MLP, expansion 2):
  * ``tokens``: factorized logits per band, 31 IID classes and 8 IC classes [B, T, 34, 31 + 8];
    p(token) = p(IID index) p(IC index) given the context (34 x 39 outputs instead of 34 x 248).
  * ``regress``: 68 values per frame, IID / 20 dB and IC (PS-Reg, trained with mean-squared error).
  * AR adds ``prev`` embeddings: the complete tokens of frame t - 1 enter position t.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..bands import N_BANDS
from ..ps import N_IC, N_IID
from .features import N_FEAT
from .base import load_weights, default_threads

__all__ = ["NetConfig", "PSNet", "IID_MASK", "IC_MASK", "sinusoid"]

IID_MASK, IC_MASK = N_IID, N_IC          # mask entries of the two embedding tables
_IID_ROWS, _IC_ROWS = N_IID + 1, N_IC + 1


@dataclass
class NetConfig:
    d: int = 192
    layers: int = 5
    heads: int = 4
    ff: int = 3
    n_feat: int = N_FEAT
    head: str = "tokens"      # "tokens" or "regress"
    causal: bool = False      # PS-AR
    prev_tokens: bool = False  # PS-AR: embed the full tokens of the previous frame
    dropout: float = 0.0
    feat_mean: list = field(default_factory=lambda: [0.0] * N_FEAT)
    feat_std: list = field(default_factory=lambda: [1.0] * N_FEAT)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "NetConfig":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def sinusoid(pos: torch.Tensor, d: int) -> torch.Tensor:
    """Sinusoidal encoding of positions [shape=(..., T)] -> [shape=(..., T, d)]."""
    half = d // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    ang = pos.to(torch.float32).unsqueeze(-1) * freq
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1)


class Block(nn.Module):
    """Pre-LN transformer block; ``forward`` can take/return a key-value cache (AR decoding)."""

    def __init__(self, d: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, ff * d), nn.GELU(), nn.Linear(ff * d, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, *, causal: bool = False,
                past: Optional[tuple[torch.Tensor, torch.Tensor]] = None):
        b, t, d = x.shape
        h = self.heads
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        # with a cache the new queries are the last positions: all cached keys are in their past
        is_causal = causal and past is None and t > 1
        a = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(b, t, d)))
        x = x + self.drop(self.mlp(self.ln2(x)))
        return x, (k, v)


class PSNet(nn.Module):
    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d
        self.register_buffer("feat_mean", torch.tensor(cfg.feat_mean, dtype=torch.float32))
        self.register_buffer("feat_std", torch.tensor(cfg.feat_std, dtype=torch.float32))
        self.phi = nn.Sequential(nn.Linear(cfg.n_feat, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.drop_token = nn.Parameter(torch.zeros(d))
        n_rows = N_BANDS * (_IID_ROWS + _IC_ROWS)
        if cfg.head == "tokens":
            self.xi = nn.EmbeddingBag(n_rows, d, mode="sum")
            nn.init.normal_(self.xi.weight, std=0.02)
        if cfg.prev_tokens:
            self.xi_prev = nn.EmbeddingBag(n_rows, d, mode="sum")
            nn.init.normal_(self.xi_prev.weight, std=0.02)
        self.blocks = nn.ModuleList(Block(d, cfg.heads, cfg.ff, cfg.dropout) for _ in range(cfg.layers))
        self.ln_f = nn.LayerNorm(d)
        n_out = N_BANDS * (N_IID + N_IC) if cfg.head == "tokens" else 2 * N_BANDS
        self.out = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, n_out))
        band = torch.arange(N_BANDS)
        self.register_buffer("iid_base", band * _IID_ROWS, persistent=False)
        self.register_buffer("ic_base", N_BANDS * _IID_ROWS + band * _IC_ROWS, persistent=False)

    # ---- input -------------------------------------------------------------------------------
    def _bag(self, table: nn.EmbeddingBag, qi: torch.Tensor, qc: torch.Tensor) -> torch.Tensor:
        """Sum of per-band embeddings of index tensors [B, T, 34] -> [B, T, d]."""
        b, t, _ = qi.shape
        idx = torch.cat([qi + self.iid_base, qc + self.ic_base], dim=-1).reshape(b * t, 2 * N_BANDS)
        return table(idx).view(b, t, -1)

    def embed(self, feats: torch.Tensor, qi: Optional[torch.Tensor] = None, qc: Optional[torch.Tensor] = None,
              *, drop_cond: Optional[torch.Tensor] = None, pos: Optional[torch.Tensor] = None,
              prev_qi: Optional[torch.Tensor] = None, prev_qc: Optional[torch.Tensor] = None) -> torch.Tensor:
        """H [B, T, d] from raw features [B, T, 96], token indices [B, T, 34] (mask entries allowed),
        ``drop_cond`` [B] bool (True: use the dropout token instead of phi(S)), positions [B, T]."""
        b, t, _ = feats.shape
        x = (feats - self.feat_mean) / self.feat_std
        h = self.phi(x)
        if drop_cond is not None:
            h = torch.where(drop_cond.view(b, 1, 1), self.drop_token.expand_as(h), h)
        if self.cfg.head == "tokens" and qi is not None:
            h = h + self._bag(self.xi, qi, qc)
        if self.cfg.prev_tokens and prev_qi is not None:
            h = h + self._bag(self.xi_prev, prev_qi, prev_qc)
        if pos is None:
            pos = torch.arange(t).expand(b, t)
        return h + sinusoid(pos, self.cfg.d)

    def head(self, h: torch.Tensor):
        y = self.out(self.ln_f(h))
        b, t, _ = y.shape
        if self.cfg.head == "tokens":
            y = y.view(b, t, N_BANDS, N_IID + N_IC)
            return y[..., :N_IID], y[..., N_IID:]
        return y.view(b, t, 2, N_BANDS)

    def forward(self, feats, qi=None, qc=None, *, drop_cond=None, pos=None, prev_qi=None, prev_qc=None):
        """Tokens head: (IID logits [B, T, 34, 31], IC logits [B, T, 34, 8]);
        regression head: [B, T, 2, 34] (IID / 20 dB, IC)."""
        h = self.embed(feats, qi, qc, drop_cond=drop_cond, pos=pos, prev_qi=prev_qi, prev_qc=prev_qc)
        for blk in self.blocks:
            h, _ = blk(h, causal=self.cfg.causal)
        return self.head(h)

    # ---- files -------------------------------------------------------------------------------
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def export(self, path, meta: Optional[dict] = None) -> None:
        """Save config + fp16 weights (the shipped format)."""
        sd = {k: (v.half() if v.is_floating_point() and not k.startswith("feat_") else v)
              for k, v in self.state_dict().items()}
        torch.save({"config": self.cfg.to_dict(), "state_dict": sd, "meta": meta or {}}, path)

    @classmethod
    def load(cls, path) -> tuple["PSNet", dict]:
        blob = load_weights(path, keys=("config", "state_dict"))
        net = cls(NetConfig.from_dict(blob["config"]))
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()})
        net.eval()
        return net, blob.get("meta", {})


class torch_threads:
    """Context manager: run torch on ``n`` threads (default: the user's setting, see
    :func:`core.models.base.set_default_threads`, or 1), then
    restore. One thread is also what makes results bit-identical across machines with different
    core counts, and on a shared 2-core machine it is the fastest setting for these small models."""

    def __init__(self, n: Optional[int] = None):
        self.n = int(n or default_threads())

    def __enter__(self):
        self.old = torch.get_num_threads()
        torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        torch.set_num_threads(self.old)
        return False
