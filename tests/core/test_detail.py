"""The PS model's detail calibration (core.detail): per-band monotone maps of |IID| and IC, known answers, the
file format, the registry's file, and the chain rendering through it."""
from dataclasses import replace

import numpy as np
import pytest

from core.bands import N_BANDS
from core.detail import DetailCalibration, detail_file, detail_level, load_detail, mirrored
from core.errors import ParameterError
from core.placement import tile_parameters
from core.ps import PSParams
from core.renderer import auto_renders, prepare_source
from core.stft import n_frames


def _params(rng, t=50):
    return PSParams(rng.uniform(-30, 30, (N_BANDS, t)).astype(np.float32),
                    rng.uniform(-1, 1, (N_BANDS, t)).astype(np.float32))


def _doubling():
    """|IID| doubled (up to 10 dB, then flat at 20), IC moved half way to 1, in every band but band 3 (identity)."""
    ix = np.tile([0.0, 10.0, 50.0], (N_BANDS, 1))
    iy = np.tile([0.0, 20.0, 20.0], (N_BANDS, 1))
    cx = np.tile([-1.0, 1.0], (N_BANDS, 1))
    cy = np.tile([0.0, 1.0], (N_BANDS, 1))
    iy[3], cy[3] = [0.0, 10.0, 50.0], [-1.0, 1.0]
    return DetailCalibration(ix, iy, cx, cy)


def test_identity_leaves_the_parameters_as_they_are(rng):
    p = _params(rng)
    q = DetailCalibration.identity().apply(p)
    assert np.allclose(q.iid, p.iid, atol=1e-5) and np.allclose(q.ic, p.ic, atol=1e-6)


def test_maps_are_per_band_and_keep_the_side(rng):
    p = _params(rng)
    q = _doubling().apply(p)
    others = [b for b in range(N_BANDS) if b != 3]
    small = np.abs(p.iid[others]) <= 10
    assert np.allclose(q.iid[others][small], 2 * p.iid[others][small], atol=1e-4)       # doubled, sign kept
    assert np.allclose(np.abs(q.iid[others][~small]), 20.0)                              # flat beyond the knots
    assert np.all(np.sign(q.iid) == np.sign(p.iid))
    assert np.allclose(q.ic[others], (p.ic[others] + 1) / 2, atol=1e-6)
    assert np.allclose(q.ic[3], p.ic[3], atol=1e-6) and np.allclose(q.iid[3], p.iid[3], atol=1e-4)


def test_file_round_trip_and_bad_files(tmp_path):
    cal = _doubling()
    path = tmp_path / "x-detail.json"
    cal.save(path)
    back = DetailCalibration.load(path)
    for name in ("iid_from", "iid_to", "ic_from", "ic_to"):
        assert np.array_equal(getattr(back, name), getattr(cal, name))
    with pytest.raises(ParameterError):
        DetailCalibration.from_dict({"format": "something else"})
    with pytest.raises(ParameterError):     # knots must increase
        DetailCalibration(cal.iid_from[:, ::-1], cal.iid_to, cal.ic_from, cal.ic_to)
    assert load_detail("x", tmp_path) is not None and load_detail("y", tmp_path) is None
    assert load_detail(None) is None and detail_file("x", tmp_path) == path


def test_the_chain_renders_the_calibrated_detail(rng, signals):
    x = signals.noise(rng, 1.0, amp=0.1).astype(np.float32)
    t = n_frames(len(x))
    p = _params(rng, t)
    centres = np.array([[0.2, 0.3]])
    a, b = prepare_source(x), prepare_source(x)
    auto_renders([a], p, centres, detail=_doubling())
    auto_renders([b], _doubling().apply(p), centres)
    assert np.array_equal(a.tiles[0], b.tiles[0]) and np.array_equal(a.tiles[1], b.tiles[1])
    assert np.array_equal(a.auto, b.auto)


def test_the_calibration_carries_the_width_gain_the_tiles_are_rendered_with(rng, signals):
    x = signals.noise(rng, 1.0, amp=0.1).astype(np.float32)
    p = _params(rng, n_frames(len(x)))
    centres = np.array([[0.0, 0.3]])
    a = prepare_source(x)
    cal = replace(_doubling(), width_gain=2.4)
    auto_renders([a], p, centres, detail=cal, pairs=False)
    iid, ic = tile_parameters(cal.apply(p), a.energy[None], centres=centres, width_gain=2.4)
    assert np.array_equal(a.tiles[1], ic[0]) and np.array_equal(a.tiles[0], iid[0])
    wider = tile_parameters(cal.apply(p), a.energy[None], centres=centres)[1]       # the default gain, 1.8
    assert not np.array_equal(wider[0], ic[0])
    with pytest.raises(ParameterError):
        replace(cal, width_gain=-1.0)


def test_a_renditions_detail_level_follows_the_golden_ratio_sequence():
    # z = Phi^-1(frac(1/2 + seed * phi)): seed 0 the median, then -1.185, 0.631, -0.374, 1.913
    assert detail_level(0) == 0.0
    assert [round(detail_level(k), 3) for k in range(1, 5)] == [-1.185, 0.631, -0.374, 1.913]
    zs = np.array([detail_level(k) for k in range(1000)])
    assert abs(zs.mean()) < 0.01 and abs(zs.std() - 1.0) < 0.02       # standard normal quantiles, evenly spread


def test_a_rendition_scales_the_iid_map_by_its_draw_and_odd_seeds_mirror_it(rng, tmp_path):
    p = _params(rng)
    cal = replace(_doubling(), iid_spread=0.4)
    assert np.array_equal(cal.for_rendition(0).apply(p).iid, cal.apply(p).iid)       # seed 0: the median, scale 1
    s = float(np.exp(0.4 * detail_level(1)))                     # seed 1: exp(0.4 * -1.185) = 0.623, mirrored
    assert abs(s - 0.6226) < 1e-3 and mirrored(1) and not mirrored(0) and not mirrored(2)
    q = cal.for_rendition(1).apply(p)
    assert np.allclose(q.iid, -np.clip(s * cal.apply(p).iid, -50, 50), atol=1e-4)  # |IID| times s, the side negated
    assert np.array_equal(q.ic, cal.apply(p).ic)                 # IC untouched
    s2 = float(np.exp(0.4 * detail_level(2)))                    # seed 2: exp(0.4 * 0.631) = 1.287, not mirrored
    assert np.allclose(cal.for_rendition(2).apply(p).iid, np.clip(s2 * cal.apply(p).iid, -50, 50), atol=1e-4)
    plain = _doubling()                                          # no spread: only the odd seeds' mirror
    assert plain.for_rendition(2) is plain
    assert np.array_equal(plain.for_rendition(3).apply(p).iid, -plain.apply(p).iid)
    path = tmp_path / "s-detail.json"
    cal.save(path)
    assert DetailCalibration.load(path).iid_spread == 0.4
    _doubling().save(path)
    assert "iid_spread" not in path.read_text() and DetailCalibration.load(path).iid_spread is None
    with pytest.raises(ParameterError):
        replace(cal, iid_spread=-0.1)


def test_a_rendition_following_a_reference_is_not_mirrored(rng):
    p = _params(rng)
    cal = replace(_doubling(), iid_spread=0.4)
    s = float(np.exp(0.4 * detail_level(1)))
    assert np.allclose(cal.for_rendition(1, mirror=False).apply(p).iid, np.clip(s * cal.apply(p).iid, -50, 50),
                       atol=1e-4)
    assert _doubling().for_rendition(1, mirror=False).mirror is False
