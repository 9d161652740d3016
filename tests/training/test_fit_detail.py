"""The detail calibration's fitting helpers (training.fit_detail) on known answers (no fitting here)."""
import numpy as np

from training.fit_detail import knots_from


def test_knots_from_mid_ranks():
    x, lv = knots_from(np.array([0.0, 0.0, 0.0, 1.0, 2.0, 3.0]), levels=6)
    assert np.array_equal(x, [0.0, 1.0, 2.0, 3.0])
    assert np.allclose(lv, [0.25, 7 / 12, 9 / 12, 11 / 12])
