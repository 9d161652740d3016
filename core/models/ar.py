"""PS-AR: autoregressive PS generation, band by band and frame by frame (Serrà et al. 2023, Sec. 3.2).

The trunk of :mod:`core.models.net` run causally over frames. Position t sees the mono features
of frame t, the complete tokens of frame t - 1 (``prev`` embedding), the tokens of the bands
already generated in frame t and mask tokens for the rest; it predicts the next band. Sampling
goes band by band from low to high, then to the next frame (34 network passes per frame of
23 ms), with softmax temperature ``tau`` (0.9 as in the paper) and classifier-free guidance
``g`` (0.25), the conditional and unconditional passes batched. Keys and values of past frames
are cached (a sliding window of 257 frames, the training context), so each pass costs one
position. Slow by nature: recordings are limited to ``MAX_SECONDS``; progress is reported and
cancel is checked every frame. The same seed gives the same rendition.

Silent frames (every sample of the analysis window below -80 dBFS: digital silence, e.g. a
silent lead-in) are not sampled: they get centred, coherent parameters, and the next sounding
frame starts afresh (no past frames, positions from 0), exactly as at the start of a recording.
Feeding the model its own tokens for silence as context made it continue in mono for the whole
recording after a silent intro.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .. import SAMPLE_RATE
from ..bands import N_BANDS
from ..errors import ParameterError
from ..progress import ProgressFn, check_cancel, report
from ..ps import IC_TABLE, IID_TABLE, N_IC, N_IID, PSParams, from_tokens
from ..stft import HOP, N_FFT, n_frames
from .files import AR_FILE as FILENAME, AR_MAX_SECONDS as MAX_SECONDS
from .features import mono_features
from .net import IC_MASK, IID_MASK, PSNet, sinusoid, torch_threads

__all__ = ["ARModel", "FILENAME", "MAX_SECONDS", "silent_frames"]

WINDOW = 257  # cached past frames (training patches are 258 frames long)
SILENCE = 1e-4  # -80 dBFS: a frame whose window never exceeds it is silent
CENTRE_IID = int(np.argmin(np.abs(IID_TABLE)))  # 0 dB
COHERENT_IC = int(np.argmax(IC_TABLE))          # IC 1


def silent_frames(mono: np.ndarray) -> np.ndarray:
    """Bool per analysis frame (centred 4096-sample windows, hop 1024): no sample above -80 dBFS."""
    t = n_frames(len(mono))
    loud = np.abs(mono) > SILENCE
    # a frame's window covers samples [t*HOP - N_FFT/2, t*HOP + N_FFT/2): count loud samples in it
    c = np.concatenate([[0], np.cumsum(loud)])
    lo = np.clip(np.arange(t) * HOP - N_FFT // 2, 0, len(mono))
    hi = np.clip(np.arange(t) * HOP + N_FFT // 2, 0, len(mono))
    return (c[hi] - c[lo]) == 0


class ARModel:
    name = "ps-ar"
    generative = True

    def __init__(self, net: PSNet, meta: Optional[dict] = None, *, temperature: float = 0.9,
                 guidance: float = 0.25, max_seconds: float = MAX_SECONDS):
        if not net.cfg.causal or not net.cfg.prev_tokens:
            raise ParameterError("PS-AR needs a causal network with previous-frame tokens")
        self.net = net.eval()
        self.meta = meta or {}
        self.temperature = float(self.meta.get("temperature", temperature))
        self.guidance = float(self.meta.get("guidance", guidance))
        self.max_seconds = max_seconds

    @classmethod
    def load(cls, folder) -> "ARModel":
        net, meta = PSNet.load(Path(folder) / FILENAME)
        return cls(net, meta)

    def _band_logits(self, h: torch.Tensor, k: int):
        """Logits of band ``k`` only from hidden states [2, d] (the head's last layer sliced)."""
        net = self.net
        lin1, act, lin2 = net.out
        z = act(lin1(net.ln_f(h)))
        n = N_IID + N_IC
        y = torch.nn.functional.linear(z, lin2.weight[k * n:(k + 1) * n], lin2.bias[k * n:(k + 1) * n])
        return y[:, :N_IID], y[:, N_IID:]

    @torch.no_grad()
    def predict(self, mono: np.ndarray, *, seed: int = 0, temperature: Optional[float] = None,
                guidance: Optional[float] = None, progress: Optional[ProgressFn] = None,
                cancel: Optional[threading.Event] = None) -> PSParams:
        mono = np.asarray(mono, dtype=np.float32)
        if mono.ndim != 1 or len(mono) == 0:
            raise ParameterError(f"PS-AR expects a non-empty mono signal [shape=(n,)], got {mono.shape}")
        seconds = len(mono) / SAMPLE_RATE
        if seconds > self.max_seconds + 1e-9:
            raise ParameterError(
                f"PS-AR generates band by band and frame by frame and is slow (several seconds per second "
                f"of audio); it is limited to excerpts of at most {self.max_seconds:.0f} s, this recording is "
                f"{seconds:.1f} s. Use PS-MTM for whole recordings, or cut an excerpt.")
        tau = self.temperature if temperature is None else float(temperature)
        g = self.guidance if guidance is None else float(guidance)
        if tau < 0:
            raise ParameterError(f"temperature must be >= 0, got {tau}")
        net = self.net
        t_total = n_frames(len(mono))
        gen = torch.Generator().manual_seed(int(seed) & 0xFFFF_FFFF_FFFF)
        check_cancel(cancel)
        feats = torch.from_numpy(mono_features(mono))
        silent = silent_frames(mono)
        qi_out = torch.empty((t_total, N_BANDS), dtype=torch.long)
        qc_out = torch.empty((t_total, N_BANDS), dtype=torch.long)
        with torch_threads():
            cond = net.phi((feats - net.feat_mean) / net.feat_std)  # [T, d]
            caches: list = [None] * len(net.blocks)
            prev_i = torch.full((1, 1, N_BANDS), IID_MASK, dtype=torch.long)
            prev_c = torch.full((1, 1, N_BANDS), IC_MASK, dtype=torch.long)
            t0 = 0   # the frame the current context starts at (after the last silent frame)
            for t in range(t_total):
                check_cancel(cancel)
                if silent[t]:
                    qi_out[t], qc_out[t] = CENTRE_IID, COHERENT_IC
                    caches = [None] * len(net.blocks)
                    prev_i = torch.full((1, 1, N_BANDS), IID_MASK, dtype=torch.long)
                    prev_c = torch.full((1, 1, N_BANDS), IC_MASK, dtype=torch.long)
                    t0 = t + 1
                    report(progress, "ps-ar", t + 1, t_total, f"frame {t + 1}/{t_total}")
                    continue
                base = torch.stack([cond[t], net.drop_token]) if g != 0.0 else cond[t][None]
                base = base + net._bag(net.xi_prev, prev_i, prev_c)[0] + sinusoid(torch.tensor([t - t0]), net.cfg.d)
                cur_i = torch.full((1, 1, N_BANDS), IID_MASK, dtype=torch.long)
                cur_c = torch.full((1, 1, N_BANDS), IC_MASK, dtype=torch.long)
                for k in range(N_BANDS):
                    h = (base + net._bag(net.xi, cur_i, cur_c)[0]).unsqueeze(1)  # [2, 1, d]
                    new = []
                    for blk, past in zip(net.blocks, caches):
                        h, kv = blk(h, causal=True, past=past)
                        new.append(kv)
                    li, lc = self._band_logits(h[:, 0], k)
                    if g != 0.0:
                        li = (1 + g) * li[0].log_softmax(-1) - g * li[1].log_softmax(-1)
                        lc = (1 + g) * lc[0].log_softmax(-1) - g * lc[1].log_softmax(-1)
                    else:
                        li, lc = li[0], lc[0]
                    cur_i[0, 0, k] = self._draw(li, tau, gen)
                    cur_c[0, 0, k] = self._draw(lc, tau, gen)
                # the cache keeps this frame as seen at its last band step (a state seen in training)
                caches = [(k_[:, :, -WINDOW:], v_[:, :, -WINDOW:]) for k_, v_ in new]
                qi_out[t], qc_out[t] = cur_i[0, 0], cur_c[0, 0]
                prev_i, prev_c = cur_i, cur_c
                report(progress, "ps-ar", t + 1, t_total, f"frame {t + 1}/{t_total}")
        return from_tokens((qi_out * N_IC + qc_out).numpy().T)

    @staticmethod
    def _draw(logits: torch.Tensor, tau: float, gen: torch.Generator) -> int:
        if tau == 0:
            return int(logits.argmax())
        p = torch.softmax(logits / tau, dim=-1)
        return int(torch.multinomial(p, 1, generator=gen))
