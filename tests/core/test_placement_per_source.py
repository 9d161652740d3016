"""The tile parameters, trajectories and placement features computed a source at a time (an hour's
[sources, bands, frames] arrays in float64 are hundreds of MB each) equal, bit for bit, the same
formulas over the whole array at once (written out here as they were)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from core.models.placement_features import SOURCE_FEATURES, mix_features, source_features
from core.pan import iid_to_pan, pan_to_iid, source_weights, width_to_ic
from core.placement import WIDTH_GAIN, tile_parameters, trajectories
from core.ps import IID_MAX_DB, PSParams


def _whole_recentred(params, w, c):
    wsum = np.maximum(w.sum(axis=(1, 2)), 1e-30)
    tile_pan = iid_to_pan(params.iid)[None]
    mean_pan = (w * tile_pan).sum(axis=(1, 2)) / wsum
    mean_ic = (w * params.ic[None]).sum(axis=(1, 2)) / wsum
    pan = np.clip(tile_pan + (c[:, 0] - mean_pan)[:, None, None], -1.0, 1.0)
    tic = np.clip(params.ic[None] + (width_to_ic(c[:, 1]) - mean_ic)[:, None, None], -1.0, 1.0)
    return pan, tic, wsum


def _whole_tiles(params, energies, c):
    w = source_weights(energies)
    pan, _, wsum = _whole_recentred(params, w, c)
    tile_w = 1.0 - params.ic.astype(np.float64)
    mean_w = (w * tile_w[None]).sum(axis=(1, 2)) / wsum
    ratio = WIDTH_GAIN * np.clip(c[:, 1] / np.maximum(mean_w, 1e-3), 0.5, 2.0)
    ic = 1.0 - np.clip(tile_w[None] * ratio[:, None, None], 0.0, 2.0)
    ic = np.maximum(ic, np.minimum(params.ic.astype(np.float64), 0.0)[None])
    return (np.clip(pan_to_iid(pan), -IID_MAX_DB, IID_MAX_DB).astype(np.float32),
            np.clip(ic, -1.0, 1.0).astype(np.float32))


def _whole_trajectories(params, energies, c):
    w = source_weights(energies)
    tot = w.sum(axis=1)
    pan, tic, _ = _whole_recentred(params, w, c)
    theta = (pan + 1.0) * np.pi / 4
    gl, gr = np.cos(theta), np.sin(theta)
    pll, prr, plr = (w * gl * gl).sum(axis=1), (w * gr * gr).sum(axis=1), (w * tic * gl * gr).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        fpan = iid_to_pan(10.0 * np.log10(pll / prr))
        ic = plr / np.sqrt(pll * prr)
    ok = np.isfinite(fpan)
    tw = np.where(ok, tot, 0.0)
    shift = c[:, 0] - (np.where(ok, fpan, 0.0) * tw).sum(axis=1) / np.maximum(tw.sum(axis=1), 1e-30)
    iid = np.where(ok, pan_to_iid(np.clip(fpan + shift[:, None], -1.0, 1.0)), np.nan)
    g_iid, g_ic = pan_to_iid(c[:, :1]), width_to_ic(c[:, 1:])
    quiet = tot < tot.max(axis=1, keepdims=True) * 1e-5
    iid = np.where(quiet | ~np.isfinite(iid), g_iid, iid)
    ic = np.where(quiet | ~np.isfinite(ic), np.where(np.isfinite(g_ic), g_ic, 1.0), ic)
    iid = signal.filtfilt([0.1], [1, -0.9], iid, axis=1)
    ic = signal.filtfilt([0.1], [1, -0.9], ic, axis=1)
    return np.clip(iid, -IID_MAX_DB, IID_MAX_DB).astype(np.float32), np.clip(ic, -1, 1).astype(np.float32)


def _whole_dominance(energies):
    e = np.maximum(energies.astype(np.float64), 0.0)
    return (e * (e / np.maximum(e.sum(axis=0, keepdims=True), 1e-20))).sum(axis=(1, 2)) / e.sum(axis=(1, 2))


@pytest.mark.parametrize("sources,frames", [(1, 40), (5, 3000), (8, 12000)])
def test_a_source_at_a_time_equals_the_whole_array(sources, frames):
    rng = np.random.default_rng(sources)
    e = (rng.gamma(0.3, 1.0, (sources, 34, frames)) * 10 ** rng.uniform(-8, 0, (sources, 1, frames))).astype(np.float32)
    e[0, :, :10] = 0.0
    params = PSParams(rng.uniform(-20, 20, (34, frames)).astype(np.float32),
                      rng.uniform(-0.3, 1.0, (34, frames)).astype(np.float32))
    c = np.column_stack([rng.uniform(-1, 1, sources), rng.uniform(0, 1, sources)])
    for got, want in zip(tile_parameters(params, e, centres=c), _whole_tiles(params, e, c)):
        assert got.dtype == np.float32 and np.array_equal(got, want)
    for got, want in zip(trajectories(params, e, centres=c), _whole_trajectories(params, e, c)):
        assert np.array_equal(got, want)
    feats = source_features(e)
    dom = np.nan_to_num(_whole_dominance(e)).astype(np.float32)
    assert np.array_equal(feats[:, SOURCE_FEATURES.index("dominance")], dom)
    assert np.array_equal(source_features(e), source_features(np.maximum(e.astype(np.float64), 0.0)))
    assert np.array_equal(mix_features(e), mix_features(np.maximum(e.astype(np.float64), 0.0)))
