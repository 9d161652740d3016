"""Pan and width as PS parameters: the mapping both the placement (core.placement) and the
placement model's features (core.models.placement_features) need, in a leaf module.

Constant-power pan law: a source at ``pan`` in [-1, 1] has IID = 20 log10(cot(theta)) with
theta = (pan + 1) pi / 4 (hard left = +50 dB, the quantizer's limit), and IC = 1 - width.
"""
from __future__ import annotations

import numpy as np

from .ps import IID_MAX_DB

__all__ = ["pan_to_iid", "iid_to_pan", "width_to_ic", "ic_to_width", "source_weights", "source_weight_rows",
           "shift_band_row"]


def pan_to_iid(pan) -> np.ndarray:
    theta = (np.clip(np.asarray(pan, dtype=np.float64), -1, 1) + 1.0) * np.pi / 4
    with np.errstate(divide="ignore"):
        iid = 20.0 * np.log10(np.cos(theta) / np.maximum(np.sin(theta), 1e-300))
    return np.clip(iid, -IID_MAX_DB, IID_MAX_DB)


def iid_to_pan(iid_db) -> np.ndarray:
    c = np.power(10.0, np.asarray(iid_db, dtype=np.float64) / 20.0)   # = cot(theta)
    return np.clip(4.0 / np.pi * np.arctan2(1.0, c) - 1.0, -1.0, 1.0)


def width_to_ic(width) -> np.ndarray:
    return 1.0 - np.clip(np.asarray(width, dtype=np.float64), 0.0, 1.0)


def ic_to_width(ic) -> np.ndarray:
    return np.clip(1.0 - np.asarray(ic, dtype=np.float64), 0.0, 1.0)


def source_weights(energies: np.ndarray) -> np.ndarray:
    """Seeding weights [shape=(sources, bands, frames)] from source band energies of the same shape:
    energy times the source's share of the total energy in each tile."""
    e = np.maximum(np.asarray(energies, dtype=np.float64), 0.0)
    total = e.sum(axis=0, keepdims=True)
    share = e / np.maximum(total, 1e-30)
    return e * share


def source_weight_rows(energies: np.ndarray):
    """:func:`source_weights` of ``energies`` a source at a time: yields each source's weights [shape=(bands,
    frames)], the same bits, holding one source's float64 array instead of all of them (an hour's is 40 MB a
    source)."""
    energies = np.asarray(energies)
    total = np.zeros(energies.shape[1:], np.float64)
    for row in energies:                       # the sum over sources in their order, as e.sum(axis=0)
        total += np.maximum(row.astype(np.float64), 0.0)
    total = np.maximum(total, 1e-30)
    for row in energies:
        e = np.maximum(row.astype(np.float64), 0.0)
        yield e * (e / total)


def shift_band_row(iid: np.ndarray, w: np.ndarray, delta: np.ndarray, *, tiles=None) -> np.ndarray:
    """One source's tile IIDs [shape=(bands, frames)] with every tile of band b moved by ``delta[b]`` in pan, then
    the source moved back onto its place: its mean tile pan weighted by ``w`` (:func:`source_weights`' row) is
    what it was, up to the tiles clipped at the stage's edges. ``tiles``: the tiles' pans when already at hand."""
    tiles = iid_to_pan(np.asarray(iid, np.float64)) if tiles is None else tiles
    wt = max(float(w.sum()), 1e-30)
    place = (w * tiles).sum() / wt
    moved = tiles + np.asarray(delta, np.float64)[:, None]
    moved += place - (w * moved).sum() / wt
    return pan_to_iid(np.clip(moved, -1.0, 1.0)).astype(np.asarray(iid).dtype)
