"""A tiny HTDemucs (random weights, small channel counts) saved as demucs saves its models.

Used by the Demucs backend and CLI tests: a real ``demucs.htdemucs.HTDemucs`` going through
demucs' own loading code, small enough to separate seconds of audio in a fraction of a second.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

STEMS4 = ["drums", "bass", "other", "vocals"]
STEMS6 = STEMS4 + ["guitar", "piano"]


def tiny_htdemucs(sources=STEMS4, *, seed=0, segment=Fraction(1, 1)):
    import torch
    from demucs.htdemucs import HTDemucs
    torch.manual_seed(seed)
    return HTDemucs(sources=list(sources), channels=8, dconv_comp=4, depth=3, t_layers=1, t_heads=2,
                    nfft=1024, segment=segment)


def make_model_folder(folder, *, name="htdemucs", sig=None, sources=STEMS4, seed=0) -> Path:
    """Save a tiny model as ``folder/SIG-CHECKSUM.th`` plus ``folder/NAME.yaml``; returns the .th."""
    from separation.demucs_weights import save_to_folder
    return save_to_folder(tiny_htdemucs(sources, seed=seed), folder, name=name, sig=sig)
