"""PS-Reg: the regression ablation of the generative models (Serrà et al. 2023, Sec. 4.1).

The same trunk as PS-MTM / PS-AR (:mod:`core.models.net`) without the token input, with a
regression head trained with mean-squared error on (IID / 20 dB, IC). Deterministic (the seed is
ignored). As the paper observes, regression collapses the IID towards 0 dB (left and right are
equally plausible), while IC is predicted well: the baseline that shows why generation is needed.

Long recordings run in patches of 258 frames with 50 % overlap, cross-faded with a Hann-shaped
weight; the patches go through the network in batches.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..bands import N_BANDS
from ..errors import ParameterError
from ..progress import ProgressFn, check_cancel, report
from ..ps import PSParams
from ..stft import n_frames
from .files import REG_FILE as FILENAME
from .features import mono_features
from .mtm import PATCH, patch_starts
from .net import PSNet, torch_threads

__all__ = ["RegModel", "FILENAME"]



class RegModel:
    name = "ps-reg"
    generative = False

    def __init__(self, net: PSNet, meta: Optional[dict] = None, batch: int = 8):
        self.net = net.eval()
        self.meta = meta or {}
        self.batch = batch

    @classmethod
    def load(cls, folder) -> "RegModel":
        net, meta = PSNet.load(Path(folder) / FILENAME)
        return cls(net, meta)

    @torch.no_grad()
    def predict(self, mono: np.ndarray, *, seed: int = 0, temperature: Optional[float] = None,
                guidance: Optional[float] = None, progress: Optional[ProgressFn] = None,
                cancel: Optional[threading.Event] = None) -> PSParams:
        mono = np.asarray(mono, dtype=np.float32)
        if mono.ndim != 1 or len(mono) == 0:
            raise ParameterError(f"PS-Reg expects a non-empty mono signal [shape=(n,)], got {mono.shape}")
        t = n_frames(len(mono))
        check_cancel(cancel)
        feats = torch.from_numpy(mono_features(mono))
        starts = patch_starts(t)
        p = min(PATCH, t)
        w = torch.hann_window(p + 2, periodic=False)[1:-1] if len(starts) > 1 else torch.ones(p)
        acc = torch.zeros(t, 2, N_BANDS)
        wsum = torch.zeros(t)
        with torch_threads():
            for i in range(0, len(starts), self.batch):
                check_cancel(cancel)
                group = starts[i:i + self.batch]
                y = self.net(torch.stack([feats[a:a + p] for a in group]))  # [b, p, 2, 34]
                for a, yy in zip(group, y):
                    acc[a:a + p] += w.view(-1, 1, 1) * yy
                    wsum[a:a + p] += w
                report(progress, "ps-reg", min(len(starts), i + self.batch), len(starts))
        y = (acc / wsum.clamp_min(1e-6).view(-1, 1, 1)).numpy()
        iid = np.clip(20.0 * y[:, 0, :].T, -50.0, 50.0)
        ic = np.clip(y[:, 1, :].T, -1.0, 1.0)
        return PSParams(iid, ic)
