"""The reference matcher: where each source of a recording sits, given a stereo reference's sources
and their measured places, learned from pairs of real stereo excerpts.

Model. Each source (of the recording and of the reference alike) is embedded from its features
(:func:`core.models.placement_features.source_features`, standardised) by one shared MLP. Source
``i`` of the recording attends over the reference's sources ``j``: score = <q_i, k_j> / sqrt(d) +
beta * log(share_j) (a loud reference source is a likelier counterpart), weights ``a_ij`` =
softmax over ``j``. The predicted place is ``mu_i = sum_j a_ij y_j`` (pan, width of the reference's
sources) and its uncertainty ``sigma_i`` (pan, width) comes from a head that sees the source's
share of its recording, how sharply it matched (the largest weight, the entropy of the weights, the weighted
spread of the matched places, its distance from the band projection below) and how alike the two
recordings are (the difference of their mixture features). A second opinion needs no matching: the
reference's *band image* (its pan per band, from its sources' band profiles, shares and pans) read
through the source's band profile (:func:`band_projection`); a learned gate from the same inputs
mixes the two pans: a source with no clear counterpart, or a reference of other music, gets a wide
``sigma``. Loss: per source the negative log-likelihood of its true place under Laplace(mu, sigma)
in pan and Normal(mu, sigma) in width, weighted by the square root of its energy share. Trained on
pairs of excerpts (same track, same album) of the ``train`` split, each pair also mirrored (all pans
of both negated).

Use (:mod:`core.reference`): ``mu`` and ``sigma`` are a second opinion that multiplies the
placement model's density for each source; where ``sigma`` is small the reference decides.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..bands import N_BANDS
from ..errors import ParameterError
from .base import TorchModel, load_model, register_file_model
from .placement_features import N_MIX_FEATURES, N_SOURCE_FEATURES
from .base import models_dir
from core import lazy
net = lazy.module("core.models.net")
nn = lazy.module("torch.nn")
torch = lazy.module("torch")

__all__ = ["MatchConfig", "ReferenceMatcher", "load_reference_matcher", "matcher_path", "MODEL_FILE"]

MODEL_FILE = "reference-match.pt"
_MIN_SIGMA = 0.02


@dataclass
class MatchConfig:
    d: int = 16
    hidden: int = 32
    dropout: float = 0.2
    feat_noise: float = 0.5

    @classmethod
    def from_dict(cls, d: dict) -> "MatchConfig":
        return cls(**{k: d[k] for k in asdict(cls()) if k in d})


def _net(cfg: MatchConfig):

    class MatchNet(nn.Module):
        """[B, S, F] recording sources, [B, R, F] reference sources, [B, R, 2] their places,
        [B, R] their log shares, [B, M] x2 mixture features, [B, S] / [B, R] padding, [B, S] the
        band projection (:func:`band_projection`) -> mu [B, S, 2], log sigma [B, S, 2]."""

        def __init__(self):
            super().__init__()
            h, d = cfg.hidden, cfg.d
            self.emb = nn.Sequential(nn.Linear(N_SOURCE_FEATURES, h), nn.GELU(), nn.Dropout(cfg.dropout),
                                     nn.Linear(h, h), nn.GELU())
            self.q = nn.Linear(h, d)
            self.k = nn.Linear(h, d)
            self.beta = nn.Parameter(torch.tensor(0.5))
            self.mixd = nn.Linear(N_MIX_FEATURES, 16)
            self.sig = nn.Sequential(nn.Linear(16 + 7, h), nn.GELU(), nn.Linear(h, 2))
            self.gate = nn.Sequential(nn.Linear(16 + 7, h), nn.GELU(), nn.Linear(h, 1))
            with torch.no_grad():
                self.sig[-1].bias.fill_(math.log(0.15))
                self.sig[-1].weight.mul_(0.1)
            self.register_buffer("f_mean", torch.zeros(N_SOURCE_FEATURES))
            self.register_buffer("f_std", torch.ones(N_SOURCE_FEATURES))
            self.register_buffer("m_std", torch.ones(N_MIX_FEATURES))

        def forward(self, f, g, y, lshare, mf, mg, fpad, gpad, band):
            f = (f - self.f_mean) / self.f_std
            g = (g - self.f_mean) / self.f_std
            if self.training and cfg.feat_noise > 0:
                f = f + cfg.feat_noise * torch.randn_like(f)
                g = g + cfg.feat_noise * torch.randn_like(g)
            hf, hg = self.emb(f), self.emb(g)
            score = torch.einsum("bsd,brd->bsr", self.q(hf), self.k(hg)) / math.sqrt(cfg.d)
            score = score + self.beta * lshare.unsqueeze(1)
            score = score.masked_fill(gpad.unsqueeze(1), -1e9)
            a = torch.softmax(score, dim=-1)                               # [B, S, R]
            mu = torch.einsum("bsr,brc->bsc", a, y)
            spread = torch.einsum("bsr,bsrc->bsc", a, (y.unsqueeze(1) - mu.unsqueeze(2)) ** 2)
            ent = -(a * torch.log(a + 1e-9)).sum(-1, keepdim=True)
            amax = a.max(-1, keepdim=True).values
            md = self.mixd((mf - mg).abs() / self.m_std).unsqueeze(1).expand(-1, f.shape[1], -1)
            share = f[..., N_BANDS:N_BANDS + 1]     # the source's own share of its recording (standardised)
            z = torch.cat([md, share, amax, ent, torch.log(spread + 1e-4), torch.log1p(lshare.new_full(amax.shape,
                           float(g.shape[1]))), (band.unsqueeze(-1) - mu[..., :1]).abs()], dim=-1)
            gate = torch.sigmoid(self.gate(z))      # matched counterparts (1) or the band image (0)
            mu = torch.cat([gate * mu[..., :1] + (1 - gate) * band.unsqueeze(-1), mu[..., 1:]], dim=-1)
            return mu, self.sig(z).clamp(-4.5, 1.0)

    return MatchNet()


def band_projection(feats: np.ndarray, ref_feats: np.ndarray, ref_share: np.ndarray, ref_pan: np.ndarray) -> np.ndarray:
    """Each recording source's pan [shape=(S,)] read off the reference's band image: the reference's
    pan per band (its sources' pans weighted by their energy in the band, from their band profiles
    and shares) averaged over the source's band profile."""
    eb = np.power(10.0, np.asarray(ref_feats, np.float64)[:, :N_BANDS]) * np.asarray(ref_share, np.float64)[:, None]
    bp = (eb * np.asarray(ref_pan, np.float64)[:, None]).sum(0) / np.maximum(eb.sum(0), 1e-12)
    prof = np.power(10.0, np.asarray(feats, np.float64)[:, :N_BANDS])
    return (prof / prof.sum(axis=1, keepdims=True)) @ bp


def match_nll(mu, log_sigma, y):
    """Per source [B, S]: -log p(y) under Laplace (pan) x Normal (width)."""
    s = log_sigma.exp() + _MIN_SIGMA
    pan = (y[..., 0] - mu[..., 0]).abs() / s[..., 0] + torch.log(2 * s[..., 0])
    wid = 0.5 * ((y[..., 1] - mu[..., 1]) / s[..., 1]) ** 2 + torch.log(s[..., 1]) + 0.5 * math.log(2 * math.pi)
    return pan + wid


def matcher_path(folder: Optional[Path] = None) -> Path:
    return Path(folder if folder is not None else models_dir()) / MODEL_FILE


class ReferenceMatcher(TorchModel):
    """A trained matcher network."""

    name = "reference-match"
    config = MatchConfig
    build = staticmethod(_net)

    def predict(self, feats: np.ndarray, mix: np.ndarray, ref_feats: np.ndarray, ref_mix: np.ndarray,
                ref_places: np.ndarray, ref_share: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mu, sigma) [shape=(S, 2)] each (float64): each recording source's place as its
        counterparts in the reference suggest it, and how sure that is. ``feats`` [S, F], ``mix``
        [M] of the recording; ``ref_feats`` [R, F], ``ref_mix`` [M], ``ref_places`` [R, 2] (pan,
        width) and ``ref_share`` [R] (energy shares) of the reference."""

        feats, ref_feats = np.asarray(feats, np.float32), np.asarray(ref_feats, np.float32)
        if feats.ndim != 2 or ref_feats.ndim != 2 or len(ref_feats) < 1 or len(feats) < 1:
            raise ParameterError("the matcher needs at least one source on each side")
        share = np.maximum(np.asarray(ref_share, np.float64), 1e-6)
        lshare = np.log(share / share.sum()).astype(np.float32)
        band = band_projection(feats, ref_feats, share / share.sum(), np.asarray(ref_places)[:, 0]).astype(np.float32)
        t = torch.from_numpy
        with self._lock, net.torch_threads(), torch.inference_mode():
            mu, ls = self.net(t(feats)[None], t(ref_feats)[None], t(np.asarray(ref_places, np.float32))[None],
                              t(lshare)[None], t(np.asarray(mix, np.float32))[None],
                              t(np.asarray(ref_mix, np.float32))[None],
                              torch.zeros(1, len(feats), dtype=torch.bool),
                              torch.zeros(1, len(ref_feats), dtype=torch.bool), t(band)[None])
        return mu[0].double().numpy(), ls[0].double().exp().numpy() + _MIN_SIGMA


register_file_model("reference-match", ReferenceMatcher, MODEL_FILE, label="Reference matcher", kind="reference",
                    description="matches a recording's sources to a stereo reference's",
                    train="python -m training.train_reference")


def load_reference_matcher(folder: Optional[Path] = None) -> ReferenceMatcher:
    """The shipped (or ``folder``'s) matcher, loaded once per process (the registry's cache)."""
    return load_model("reference-match", folder)
