"""The generative source-level placement model: one coherent (pan, width) per source, learned
from real stereo music.

Model. A set transformer over the sources of one recording. Token ``i`` is the source's features
(:func:`core.models.placement_features.source_features`, standardised) plus the recording's features,
plus either the embedding of its known place (pan, width) or a learned "unknown" embedding. Full
attention (no order among sources), then a mixture-density head per token: ``K`` diagonal 2-D
Gaussians over (pan, width). It is trained as an any-order autoregressive model: per scene a
random number of sources, chosen at random, are given as known and the negative log-likelihood of
the others' true places is minimised (each source weighted by the square root of its energy
share). Every scene is also seen mirrored (all pans negated): a mono recording cannot tell left
from right.

Sampling (:meth:`PlacementModel.sample`). Known (pinned) sources are context and stay as they are;
the others are placed one at a time, loudest first, each drawn from the density given the sources
placed before it, so a rendition is one coherent scene. With no pinned source the scene is turned to lean
right (its energy-weighted mean pan >= 0) and then mirrored for an odd seed (:func:`core.detail.mirrored`): every
two consecutive seeds lean to opposite sides (exact left/right symmetry; the chain mirrors the PS model's detail
of the odd seeds' renditions with it). A
``numpy.random.Generator(seed)`` draws everything: the same seed and inputs give the same scene.

``variety`` v in [0, 1] (0 = as real mixes are, the default; 1 = boldest):

* temperature tau = 1 + 2 v: mixture weights pi_k^(1/tau) renormalised, pan standard deviations
  times tau + (:data:`PAN_SPREAD` - 1)(1 - v), width standard deviations times (1 + v);
* ``1 + round(7 v)`` candidates are drawn per source and the one farthest in pan from the centre
  and from every source already placed is kept (v = 0: one candidate, a plain sample).

So v = 0 samples the learned density with its pan deviations times :data:`PAN_SPREAD` (a calibration: the
trained density is narrower in pan than the real sources it was fitted to, see the constant); higher v widens
it and pushes sources apart (v = 1 as before the calibration).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import ParameterError
from ..hashing import sha256_file
from ..limits import VARIETY_RANGE, check_range
from .base import TorchModel, load_model, register_file_model
from .placement_features import N_MIX_FEATURES, N_SOURCE_FEATURES
from .. import detail
from .base import models_dir
from core import lazy
net = lazy.module("core.models.net")
nn = lazy.module("torch.nn")
torch = lazy.module("torch")

__all__ = ["PlacementConfig", "PlacementModel", "pinned_rows", "load_placement_model", "placement_model_path", "MODEL_FILE",
           "file_sha256"]

MODEL_FILE = "placement.pt"
MAX_SOURCES = 16
_MIN_SIGMA = 0.02     # about the precision of a measured real place
# the mixture components' pan deviations times this at variety 0 (blending to the plain temperature at 1): on
# `train` the samples' energy-weighted rms pan is 0.083 against the real sources' 0.106 (quiet sources: mean |pan|
# 0.053 against 0.105); 1.5 gives 0.104 (bench/placement_spread.py, docs/evaluation.md)
PAN_SPREAD = 1.5


@dataclass
class PlacementConfig:
    d: int = 48
    layers: int = 2
    heads: int = 4
    components: int = 6
    dropout: float = 0.2
    feat_noise: float = 0.3     # training only: Gaussian noise on the standardised features

    @classmethod
    def from_dict(cls, d: dict) -> "PlacementConfig":
        return cls(**{k: d[k] for k in asdict(cls()) if k in d})


def _net(cfg: PlacementConfig):

    class PlacementNet(nn.Module):
        """[B, S, F] source features, [B, M] mix features, [B, S, 2] known places, [B, S] known
        flags, [B, S] padding -> mixture parameters: logits [B, S, K], mu [B, S, K, 2],
        log sigma [B, S, K, 2]."""

        def __init__(self):
            super().__init__()
            d = cfg.d
            self.src = nn.Linear(N_SOURCE_FEATURES, d)
            self.mix = nn.Linear(N_MIX_FEATURES, d)
            self.known = nn.Sequential(nn.Linear(2, d), nn.GELU(), nn.Linear(d, d))
            self.unknown = nn.Parameter(torch.zeros(d))
            layer = nn.TransformerEncoderLayer(d, cfg.heads, 2 * d, cfg.dropout, batch_first=True,
                                               norm_first=True, activation="gelu")
            self.enc = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(d)
            self.head = nn.Linear(d, cfg.components * 5)
            with torch.no_grad():   # components start spread over the stage, not on one spot
                k = cfg.components
                b = self.head.bias.view(k, 5)
                b.zero_()
                b[:, 1] = torch.linspace(-0.8, 0.8, k)
                b[:, 2] = torch.linspace(0.1, 0.6, k)
                b[:, 3:5] = math.log(0.2)
                self.head.weight.mul_(0.1)
            self.register_buffer("f_mean", torch.zeros(N_SOURCE_FEATURES))
            self.register_buffer("f_std", torch.ones(N_SOURCE_FEATURES))
            self.register_buffer("m_mean", torch.zeros(N_MIX_FEATURES))
            self.register_buffer("m_std", torch.ones(N_MIX_FEATURES))

        def forward(self, feats, mix, y, known, pad):
            f = (feats - self.f_mean) / self.f_std
            m = (mix - self.m_mean) / self.m_std
            if self.training and cfg.feat_noise > 0:
                f = f + cfg.feat_noise * torch.randn_like(f)
                m = m + cfg.feat_noise * torch.randn_like(m)
            k = known.unsqueeze(-1).to(f.dtype)
            h = self.src(f) + self.mix(m).unsqueeze(1) + k * self.known(y) + (1 - k) * self.unknown
            h = self.norm(self.enc(h, src_key_padding_mask=pad))
            out = self.head(h).view(*h.shape[:2], cfg.components, 5)
            return out[..., 0], out[..., 1:3], out[..., 3:5].clamp(-5.0, 2.0)

    return PlacementNet()


def _nll(logits, mu, log_sigma, y):
    """-log p(y) under the mixture, per token [B, S]."""
    sig = log_sigma.exp() + _MIN_SIGMA
    z = (y.unsqueeze(2) - mu) / sig
    comp = -0.5 * (z ** 2).sum(-1) - torch.log(sig).sum(-1) - math.log(2 * math.pi)
    return -torch.logsumexp(torch.log_softmax(logits, dim=-1) + comp, dim=-1)


def placement_model_path(folder: Optional[Path] = None) -> Path:
    return Path(folder if folder is not None else models_dir()) / MODEL_FILE


file_sha256 = sha256_file      # (core.hashing)


def pinned_rows(known: dict, s: int) -> tuple[np.ndarray, np.ndarray]:
    """The scene's rows [S, 2] (pan, width) with the pinned sources ``known`` (index -> (pan, width))
    filled in, and which rows they are [S] (:class:`ParameterError` for an index out of range)."""
    y = np.zeros((s, 2))
    is_known = np.zeros(s, bool)
    for i, (p, w) in known.items():
        if not 0 <= i < s:
            raise ParameterError(f"pinned source {i} out of range 0..{s - 1}")
        y[i] = (float(p), float(w))
        is_known[i] = True
    return y, is_known


class PlacementModel(TorchModel):
    """A trained placement network with its sampler."""

    name = "placement"
    config = PlacementConfig
    build = staticmethod(_net)

    # --- inference ------------------------------------------------------------------------------
    def density(self, feats: np.ndarray, mix: np.ndarray, y: np.ndarray, known: np.ndarray):
        """Mixture parameters for every source of one scene: weights [S, K], means [S, K, 2],
        standard deviations [S, K, 2] (float64), given the known places ``y`` [S, 2] where ``known``."""
        w, mu, sd = self.densities(feats, mix, np.asarray(y)[None], np.asarray(known)[None])
        return w[0], mu[0], sd[0]

    def densities(self, feats: np.ndarray, mix: np.ndarray, y: np.ndarray, known: np.ndarray):
        """:meth:`density` for ``N`` scenes of the same sources at once (one batch): ``y`` [N, S, 2],
        ``known`` [N, S]; weights [N, S, K], means and deviations [N, S, K, 2]."""
        y = np.asarray(y, np.float32)
        n = len(y)
        with self._lock, net.torch_threads(), torch.inference_mode():
            lg, mu, ls = self.net(torch.from_numpy(np.asarray(feats, np.float32))[None].expand(n, -1, -1),
                                  torch.from_numpy(np.asarray(mix, np.float32))[None].expand(n, -1),
                                  torch.from_numpy(y), torch.from_numpy(np.asarray(known, bool)),
                                  torch.zeros(n, y.shape[1], dtype=torch.bool))
        w = torch.softmax(lg.double(), dim=-1).numpy()
        return w, mu.double().numpy(), ls.double().exp().numpy() + _MIN_SIGMA

    def sample(self, feats: np.ndarray, mix: np.ndarray, energy: np.ndarray, *, seed: int = 0,
               variety: float = 0.0, known: Optional[dict] = None) -> np.ndarray:
        """One placement per source [shape=(S, 2)]: (pan in [-1, 1], width in [0, 1]).

        ``feats`` [S, F], ``mix`` [M], ``energy`` [S] (sampling order: loudest first); ``known``
        maps source index -> (pan, width) of pinned sources, returned unchanged. See the module
        docstring for ``variety``."""
        feats = np.asarray(feats, np.float32)
        s = len(feats)
        if s < 1 or s > MAX_SOURCES:
            raise ParameterError(f"the placement model takes 1 to {MAX_SOURCES} sources, got {s}")
        variety = check_range("variety", variety, VARIETY_RANGE)
        known = dict(known or {})
        rng = np.random.default_rng(int(seed))
        y, is_known = pinned_rows(known, s)
        tau = 1.0 + 2.0 * variety
        n_cand = 1 + int(round(7 * variety))
        u = rng.random()     # the draw that mirrored a scene before (detail.MIRROR_ODD off); every other draw as it was
        flip = not known and u < 0.5
        order = [int(i) for i in np.argsort(-np.asarray(energy, np.float64), kind="stable") if not is_known[i]]
        for i in order:
            w, mu, sd = self.density(feats, mix, y, is_known)
            pw = w[i] ** (1.0 / tau)
            pw /= pw.sum()
            comp = rng.choice(len(pw), size=n_cand, p=pw)
            z = rng.standard_normal((n_cand, 2))
            cand = mu[i, comp] + z * sd[i, comp] * np.array([tau + (PAN_SPREAD - 1.0) * (1.0 - variety), 1.0 + variety])
            cand[:, 0] = np.clip(cand[:, 0], -1.0, 1.0)
            cand[:, 1] = np.clip(cand[:, 1], 0.0, 1.0)
            if n_cand > 1:
                others = np.concatenate([[0.0], y[is_known, 0]])
                score = np.abs(cand[:, [0]] - others[None]).min(axis=1)
                pick = cand[int(np.argmax(score))]
            else:
                pick = cand[0]
            y[i] = pick
            is_known[i] = True
        if not known and detail.MIRROR_ODD:     # the scene leaning right (by energy), then the odd seeds' mirror
            flip = (float(np.dot(np.asarray(energy, np.float64), y[:, 0])) < 0.0) != detail.mirrored(seed)
        if flip:
            y[:, 0] = -y[:, 0]
        for i, (p, w) in known.items():
            y[i] = (float(p), float(w))
        return y


register_file_model("placement", PlacementModel, MODEL_FILE, label="Placement model", kind="placement",
                    description="the source-level placement model: one coherent scene of places per seed",
                    train="soundstage train --method placement")


def load_placement_model(folder: Optional[Path] = None) -> PlacementModel:
    """The shipped (or ``folder``'s) placement model, loaded once per process (the registry's cache)."""
    return load_model("placement", folder)
