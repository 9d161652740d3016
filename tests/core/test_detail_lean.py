"""A rendition's band leans (issue 24): each band of the auto sources leans to a side drawn per rendition from a
covariance fitted on real stereo (core.detail: lean_draw, lean_tiles, DetailCalibration.for_rendition), the
sources staying at their places."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.bands import N_BANDS
from core.detail import DetailCalibration, lean_draw, lean_tiles
from core.pan import iid_to_pan, source_weights
from core.placement import tile_parameters
from core.ps import PSParams
from core.renderer import auto_renders, prepare_source
from core.stft import n_frames


def _lean_factor(rng):
    """A smooth covariance over bands (neighbours lean together), as its lower Cholesky factor."""
    b = np.arange(N_BANDS)
    cov = 0.04 * np.exp(-np.abs(b[:, None] - b[None, :]) / 6.0)
    return np.linalg.cholesky(cov)


def _with_lean(rng):
    return replace(DetailCalibration.identity(), lean=_lean_factor(rng))


def test_seed_zero_draws_nothing_and_the_draws_are_standard_normal_and_fixed():
    assert np.array_equal(lean_draw(0), np.zeros(N_BANDS))
    assert np.array_equal(lean_draw(7), lean_draw(7)) and not np.array_equal(lean_draw(7), lean_draw(8))
    z = np.stack([lean_draw(k) for k in range(1, 801)])
    assert np.all(np.abs(z.mean(axis=0)) < 0.15)        # 4 standard errors of 800 draws
    c = np.cov(z, rowvar=False)
    assert np.all(np.abs(np.diag(c) - 1.0) < 0.2)
    assert np.max(np.abs(c - np.diag(np.diag(c)))) < 0.18       # the dimensions do not move together


def test_a_renditions_leans_have_the_fitted_covariance_and_odd_seeds_mirror_them(rng):
    cal = _with_lean(rng)
    lf = _lean_factor(rng)
    for seed in (1, 2, 5):
        got = cal.for_rendition(seed).lean_offsets
        want = lf @ lean_draw(seed)
        assert np.allclose(got, -want if seed % 2 else want)
    offs = np.stack([cal.for_rendition(k).lean_offsets for k in range(1, 801)])
    assert np.allclose(np.cov(offs, rowvar=False), lf @ lf.T, atol=0.012)
    assert not np.any(cal.for_rendition(0).lean_offsets)
    assert cal.for_rendition(3, mirror=False).lean_offsets is None       # a reference decides: no leans
    assert DetailCalibration.identity().for_rendition(3).lean_offsets is None


def test_lean_tiles_move_every_band_by_its_offset_and_keep_each_source_at_its_place(rng):
    t = 40
    energies = rng.uniform(0.1, 1.0, (3, N_BANDS, t))
    iid = rng.uniform(-6.0, 6.0, (3, N_BANDS, t)).astype(np.float32)
    offsets = np.linspace(-0.2, 0.2, N_BANDS)
    out = lean_tiles(iid, energies, offsets)
    w = source_weights(energies)
    before, after = iid_to_pan(iid), iid_to_pan(out)
    place = lambda p: (w * p).sum(axis=(1, 2)) / w.sum(axis=(1, 2))          # noqa: E731
    assert np.allclose(place(after), place(before), atol=1e-5)
    moved = (after - before).mean(axis=2)                                    # [S, B]: offset + each source's recentring
    assert np.allclose(moved - moved[:, :1], offsets[None] - offsets[0], atol=1e-4)
    assert lean_tiles(iid, energies, np.zeros(N_BANDS)) is iid


def test_the_chain_renders_a_renditions_leans_and_a_file_keeps_them(rng, signals, tmp_path):
    x = signals.noise(rng, 1.0, amp=0.1).astype(np.float32)
    t = n_frames(len(x))
    p = PSParams(rng.uniform(-3, 3, (N_BANDS, t)).astype(np.float32), rng.uniform(0, 1, (N_BANDS, t)).astype(np.float32))
    centres = np.array([[0.2, 0.3]])
    cal = _with_lean(rng)
    a, b = prepare_source(x), prepare_source(x)
    auto_renders([a], p, centres, detail=cal.for_rendition(2), pairs=False)
    auto_renders([b], p, centres, detail=cal.for_rendition(0), pairs=False)
    iid, _ = tile_parameters(p, a.energy[None], centres=centres)
    assert np.array_equal(b.tiles[0], iid[0])                                # seed 0: the tiles as they were
    assert np.array_equal(a.tiles[0], lean_tiles(iid, a.energy[None], cal.for_rendition(2).lean_offsets)[0])
    assert not np.array_equal(a.tiles[0], b.tiles[0])
    path = tmp_path / "x-detail.json"
    cal.save(path)
    back = DetailCalibration.load(path)
    assert np.allclose(back.lean, cal.lean, atol=1e-6)
    assert np.allclose(back.for_rendition(2).lean_offsets, cal.for_rendition(2).lean_offsets, atol=1e-5)
