"""Broadband width measures and the pooled output figures (training.image_metrics), on known answers."""
import numpy as np
import pytest

from core.errors import ParameterError
from core.ps import PSParams
from training.image_metrics import OutputPool, broadband_correlation, side_to_mid_db


def test_correlation_and_side_to_mid_of_known_signals(rng):
    x = rng.standard_normal(44100)
    y = rng.standard_normal(44100)
    assert broadband_correlation(np.column_stack([x, x])) == pytest.approx(1.0)
    assert broadband_correlation(np.column_stack([x, -x])) == pytest.approx(-1.0)
    assert abs(broadband_correlation(np.column_stack([x, y]))) < 0.02
    assert side_to_mid_db(np.column_stack([x, x])) == -np.inf
    assert side_to_mid_db(np.column_stack([x, np.zeros_like(x)])) == pytest.approx(0.0)     # M = S = L / 2
    # L = x + a y, R = x - a y: M = x, S = a y, so S/M = 20 log10(a) for unit-power x and y
    a = 0.5
    z = np.column_stack([x + a * y, x - a * y])
    assert side_to_mid_db(z) == pytest.approx(20 * np.log10(a) + 10 * np.log10(np.dot(y, y) / np.dot(x, x)))
    assert broadband_correlation(z) == pytest.approx((1 - a * a) / (1 + a * a), abs=0.02)
    with pytest.raises(ParameterError):
        broadband_correlation(x)


def test_pool_figures(rng):
    pool, same = OutputPool(), OutputPool()
    for i in range(6):
        real = PSParams(rng.uniform(-10, 10, (34, 20)).astype(np.float32), rng.uniform(0, 1, (34, 20)).astype(np.float32))
        off = PSParams(real.iid, np.clip(real.ic - 0.1, -1, 1))
        pool.add(f"track{i // 2}", real, [off, real], measures=[(0.5, -6.0), (0.7, -9.0)])
        same.add(f"track{i // 2}", real, [real], measures=[(0.6, -7.0)])
    f = pool.figures(bootstrap=50)
    assert f.e_min == 0.0 and f.excerpts == 6 and f.renditions == 2
    assert f.corr == pytest.approx(0.6) and f.side_mid_db == pytest.approx(-7.5)
    assert f.d_f > 0 and f.d_f_se is not None and f.d_f_se > 0
    g = same.figures(bootstrap=20)
    assert g.d_f == pytest.approx(0.0, abs=1e-9) and g.d_f_se == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ParameterError):
        OutputPool().figures()
