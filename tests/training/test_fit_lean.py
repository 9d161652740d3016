"""The band leans' fitting helpers (training.fit_lean) on known answers (no fitting here)."""
import numpy as np
import pytest

from core.errors import ParameterError
from training.fit_lean import _factor, band_lean_covariance


def test_the_covariance_counts_every_excerpt_with_its_mirror():
    v = np.array([[0.2, 0.1, 0.0], [-0.1, 0.3, 0.1]])
    c = band_lean_covariance(v)
    both = np.concatenate([v, -v])                        # the excerpts and their mirrors: mean 0
    assert np.allclose(c, np.cov(both, rowvar=False, bias=True))
    with pytest.raises(ParameterError):
        band_lean_covariance(v[:1])


def test_the_factor_is_lower_triangular_and_gives_the_covariance_back(rng):
    a = rng.normal(size=(34, 34))
    cov = a @ a.T / 34
    f = _factor(cov)
    assert np.allclose(np.triu(f, 1), 0.0, atol=1e-12) and np.all(np.diag(f) >= 0)
    assert np.allclose(f @ f.T, cov, atol=1e-10)
    low_rank = cov - 0.999 * np.linalg.eigvalsh(cov).min() * np.eye(34)      # nearly singular: still a factor
    assert np.allclose(_factor(low_rank) @ _factor(low_rank).T, low_rank, atol=1e-8)
