"""PS-MTM: masked token modelling with MaskGIT-style iterative sampling (Serrà et al. 2023, Sec. 3.3).

Sampling one patch of N <= 258 frames (6 s), with some tokens possibly fixed in advance:

1. all free tokens start masked; at step s = 1..S the model is run with and without the
   condition (one batched pass of two), and the logits are combined by classifier-free guidance,
   ``U = (1 + g) U_cond - g U_uncond`` (Eq. 4);
2. Gaussian noise of standard deviation ``tau`` (the temperature) is added to the
   log-probabilities; every masked token takes its best noisy candidate, and its noisy score is
   its confidence;
3. the most confident candidates become fixed, the others stay masked, so that the masked count
   follows the training schedule ``cos(pi/2 * s/S)`` down to zero at step S.

Long recordings are sampled in patches of 258 frames with 50 % overlap: the first half of each
later patch is fixed to the tokens already chosen there (no masking), so the image continues
consistently across patch boundaries; the last patch is aligned to the end of the recording.
A ``torch.Generator`` seeded with ``seed`` drives all noise: the same seed gives the same rendition.
"""
from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..bands import N_BANDS
from ..errors import ParameterError
from ..progress import ProgressFn, check_cancel, report
from ..ps import N_IC, N_IID, PSParams, from_tokens
from ..stft import n_frames
from .files import MTM_FILE as FILENAME
from .features import mono_features
from .net import IC_MASK, IID_MASK, PSNet, torch_threads

__all__ = ["MTMModel", "patch_starts", "FILENAME"]

PATCH = 258


def patch_starts(t: int, patch: int = PATCH) -> list[int]:
    """First frames of the 50 %-overlapping patches covering ``t`` frames (last one flush with the end)."""
    if t <= patch:
        return [0]
    hop = patch // 2
    starts = list(range(0, t - patch, hop))
    starts.append(t - patch)
    return starts


class MTMModel:
    name = "ps-mtm"
    generative = True

    def __init__(self, net: PSNet, meta: Optional[dict] = None, *, steps: int = 8,
                 temperature: float = 1.5, guidance: float = 1.5):
        self.net = net.eval()
        self.meta = meta or {}
        self.steps = int(self.meta.get("sampling_steps", steps))
        self.temperature = float(self.meta.get("temperature", temperature))
        self.guidance = float(self.meta.get("guidance", guidance))

    @classmethod
    def load(cls, folder) -> "MTMModel":
        net, meta = PSNet.load(Path(folder) / FILENAME)
        return cls(net, meta)

    def _logp(self, feats: torch.Tensor, qi: torch.Tensor, qc: torch.Tensor, g: float,
              rows: Optional[torch.Tensor] = None):
        """Guided log-probabilities (IID [R, 34, 31], IC [R, 34, 8]) for one patch, of the frames
        ``rows`` (indices [R]; default all): the trunk sees every frame, the output head only
        those (the sampler needs no logits of frames whose tokens are all fixed)."""
        net = self.net
        if g == 0.0:
            h = net.embed(feats[None], qi[None], qc[None])
        else:
            drop = torch.tensor([False, True])
            h = net.embed(feats.expand(2, -1, -1), qi.expand(2, -1, -1), qc.expand(2, -1, -1), drop_cond=drop)
        for blk in net.blocks:
            h, _ = blk(h, causal=net.cfg.causal)
        if rows is not None:
            h = h[:, rows]
        li, lc = net.head(h)
        if g == 0.0:
            return li[0].log_softmax(-1), lc[0].log_softmax(-1)
        li, lc = li.log_softmax(-1), lc.log_softmax(-1)
        li = (1 + g) * li[0] - g * li[1]
        lc = (1 + g) * lc[0] - g * lc[1]
        return li.log_softmax(-1), lc.log_softmax(-1)

    def sample_patch(self, feats: torch.Tensor, qi: torch.Tensor, qc: torch.Tensor, known: torch.Tensor, *,
                     gen: torch.Generator, steps: int, tau: float, g: float, tau_iid: Optional[float] = None,
                     cancel=None, tick=None):
        """Fill the unknown tokens of one patch. ``feats`` [T, 96]; ``qi``, ``qc`` [T, 34] long
        (values at unknown places are ignored); ``known`` [T, 34] bool. ``tau_iid``: the noise on
        the IID logits when it should differ from ``tau`` (which then applies to IC only).
        Returns (qi, qc)."""
        tau_i = tau if tau_iid is None else tau_iid
        qi, qc = qi.clone(), qc.clone()
        masked = ~known
        total = int(masked.sum())
        qi[masked], qc[masked] = IID_MASK, IC_MASK
        shape_i = (*masked.shape, N_IID)               # the noise is drawn for every token, used or not,
        shape_c = (*masked.shape, N_IC)                # so the generator moves as it always did
        with torch.inference_mode():
            for s in range(steps):
                check_cancel(cancel)
                n_masked = int(masked.sum())
                if n_masked == 0:
                    break
                rows = masked.any(-1).nonzero().view(-1)       # frames with a token still to choose
                li, lc = self._logp(feats, qi, qc, g, None if len(rows) == len(masked) else rows)
                if tau > 0 or tau_i > 0:
                    ni = torch.randn(shape_i, generator=gen)
                    nc = torch.randn(shape_c, generator=gen)
                    if len(rows) != len(masked):
                        ni, nc = ni[rows], nc[rows]
                    li = li + tau_i * ni
                    lc = lc + tau * nc
                si, ci_r = li.max(-1)
                sc, cc_r = lc.max(-1)
                conf = torch.full(masked.shape, -math.inf)
                conf[rows] = torch.where(masked[rows], si + sc, torch.tensor(-math.inf))
                ci = torch.zeros(masked.shape, dtype=torch.long)
                cc = torch.zeros(masked.shape, dtype=torch.long)
                ci[rows], cc[rows] = ci_r, cc_r
                keep_masked = 0 if s == steps - 1 else int(math.floor(total * math.cos(0.5 * math.pi * (s + 1) / steps)))
                n_fix = max(1, n_masked - keep_masked)
                idx = conf.view(-1).topk(n_fix).indices
                fix = torch.zeros(masked.numel(), dtype=torch.bool)
                fix[idx] = True
                fix = fix.view_as(masked) & masked
                qi[fix], qc[fix] = ci[fix], cc[fix]
                masked &= ~fix
                if tick is not None:
                    tick()
        return qi, qc

    def predict(self, mono: np.ndarray, *, seed: int = 0, temperature: Optional[float] = None,
                guidance: Optional[float] = None, progress: Optional[ProgressFn] = None,
                cancel: Optional[threading.Event] = None, steps: Optional[int] = None,
                iid_temperature: Optional[float] = None) -> PSParams:
        """``iid_temperature``: a separate sampling noise for the panning (IID) tokens; by default
        the same ``temperature`` drives both (an evaluation knob, not in the app)."""
        mono = np.asarray(mono, dtype=np.float32)
        if mono.ndim != 1 or len(mono) == 0:
            raise ParameterError(f"PS-MTM expects a non-empty mono signal [shape=(n,)], got {mono.shape}")
        tau = self.temperature if temperature is None else float(temperature)
        g = self.guidance if guidance is None else float(guidance)
        steps = self.steps if steps is None else int(steps)
        if tau < 0 or steps < 1 or (iid_temperature is not None and iid_temperature < 0):
            raise ParameterError(f"temperature must be >= 0 and steps >= 1 (got {tau}, {steps})")
        t = n_frames(len(mono))
        check_cancel(cancel)
        report(progress, "ps-mtm", 0, 1, "features")
        feats = torch.from_numpy(mono_features(mono))
        qi = torch.full((t, N_BANDS), IID_MASK, dtype=torch.long)
        qc = torch.full((t, N_BANDS), IC_MASK, dtype=torch.long)
        known = torch.zeros((t, N_BANDS), dtype=torch.bool)
        gen = torch.Generator().manual_seed(int(seed) & 0xFFFF_FFFF_FFFF)
        starts = patch_starts(t)
        done, total = [0], len(starts) * steps

        def tick():
            done[0] += 1
            report(progress, "ps-mtm", done[0], total, f"patch {min(len(starts), done[0] // steps + 1)}/{len(starts)}")

        with torch_threads():
            for a in starts:
                b = min(t, a + PATCH)
                pi, pc = self.sample_patch(feats[a:b], qi[a:b], qc[a:b], known[a:b], gen=gen, steps=steps,
                                           tau=tau, g=g, tau_iid=iid_temperature, cancel=cancel, tick=tick)
                qi[a:b], qc[a:b] = pi, pc
                known[a:b] = True
                done[0] = (starts.index(a) + 1) * steps
        tokens = (qi * N_IC + qc).numpy().T  # [34, T]
        return from_tokens(tokens)
