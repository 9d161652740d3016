"""Non-learned "models": Mono (no stereo image) and Decorr, the classical decorrelation upmix.

Decorr (Schroeder 1958, Orban 1970, Faller 2005; the paper's Sec. 4.1 baseline) is an all-pass
network (the decoder's decorrelator, with transient preservation) mixed with the original in a
frequency-dependent proportion: coherent in the bass, where a wide image sounds hollow and breaks
mono compatibility, increasingly decorrelated towards the mid and high range. IID stays 0 dB.
Expressed as PS parameters it runs through the same decoder as the learned models.
"""
from __future__ import annotations

import numpy as np

from ..bands import N_BANDS, band_centres_hz
from ..ps import PSParams
from ..stft import n_frames
from .base import register_model

__all__ = ["MonoModel", "DecorrModel", "decorr_ic_profile"]


def decorr_ic_profile(*, low_hz: float = 150.0, high_hz: float = 3000.0, ic_low: float = 0.95,
                      ic_high: float = 0.55) -> np.ndarray:
    """Target IC per band [shape=(34,)]: ``ic_low`` below ``low_hz``, ``ic_high`` above ``high_hz``,
    log-frequency interpolation between."""
    f = np.maximum(band_centres_hz(), 1.0)
    w = np.clip(np.log(f / low_hz) / np.log(high_hz / low_hz), 0.0, 1.0)
    return (ic_low + (ic_high - ic_low) * w).astype(np.float32)


class MonoModel:
    name = "mono"
    generative = False

    def predict(self, mono, *, seed=0, temperature=None, guidance=None, progress=None, cancel=None) -> PSParams:
        return PSParams.neutral(n_frames(len(mono)))


class DecorrModel:
    name = "decorr"
    generative = False

    def __init__(self, profile=None):
        self.profile = decorr_ic_profile() if profile is None else np.asarray(profile, np.float32)

    def predict(self, mono, *, seed=0, temperature=None, guidance=None, progress=None, cancel=None) -> PSParams:
        t = n_frames(len(mono))
        return PSParams(np.zeros((N_BANDS, t), np.float32), np.repeat(self.profile[:, None], t, axis=1))


register_model("mono", label="Mono", description="No stereo image (IID 0 dB, IC 1): the input in both channels.",
               loader=lambda d: MonoModel())
register_model("decorr", label="Decorr", description="Classical all-pass decorrelation with a "
               "frequency-dependent mix (coherent bass, wider highs); no trained model needed.",
               loader=lambda d: DecorrModel())
