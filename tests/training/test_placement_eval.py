"""Source-level measures of placement proposals, on known answers."""
import numpy as np
import pytest

from core.errors import ParameterError
from training.evaluation_sources import format_source_tables, source_metrics, SourceEvalResult, SourceRow


def _truth():
    # two excerpts; the second's sources have unequal energy
    return [(np.array([0.5, -0.5]), np.array([0.2, 0.2]), np.array([1.0, 1.0])),
            (np.array([0.3, 0.0]), np.array([0.6, 0.0]), np.array([3.0, 1.0]))]


def test_all_centre():
    truth = _truth()
    props = [np.zeros((4, 2, 2)), np.zeros((4, 2, 2))]
    m = source_metrics(truth, props)
    assert m["diversity"] == 0.0 and m["mean_abs_pan"] == 0.0
    # E_min per excerpt: weighted mean |true pan| = 0.5, and 0.75 * 0.3 = 0.225
    assert m["e_min"] == pytest.approx((0.5 + 0.225) / 2)
    # Frechet distance to a point at (0, 0): |mu|^2 + trace(cov) of the weighted real pool
    x = np.array([[0.5, 0.2], [-0.5, 0.2], [0.3, 0.6], [0.0, 0.0]])
    w = np.array([0.5, 0.5, 0.75, 0.25])
    mu = (w[:, None] * x).sum(0) / w.sum()
    cov = ((w[:, None, None] * np.einsum("ni,nj->nij", x - mu, x - mu)).sum(0)) / w.sum()
    assert m["frechet"] == pytest.approx(float(mu @ mu + np.trace(cov)), rel=1e-9)


def test_truth_itself_and_diversity():
    truth = _truth()
    exact = [np.repeat(np.column_stack([p, wd])[None], 3, axis=0) for p, wd, _ in truth]
    m = source_metrics(truth, exact)
    assert m["e_min"] == 0.0 and m["diversity"] == 0.0 and m["frechet"] < 1e-9
    # one source alternating +-0.5 over K = 2 seeds: std 0.5, weighted by its share
    alt = [np.array([[[0.5, 0.2], [0.0, 0.2]], [[-0.5, 0.2], [0.0, 0.2]]]),
           np.array([[[0.3, 0.6], [0.0, 0.0]], [[0.3, 0.6], [0.0, 0.0]]])]
    m = source_metrics(truth, alt)
    assert m["diversity"] == pytest.approx((0.5 * 0.5 + 0.0) / 2)
    # the best seed of the first excerpt matches source 0 and misses source 1 by 0.5
    assert m["e_min"] == pytest.approx((0.5 * 0.0 + 0.5 * 0.5 + 0.0) / 2)
    with pytest.raises(ParameterError):
        source_metrics(truth, alt[:1])


def test_table_prints_every_row():
    res = SourceEvalResult("valid", 10.0, 8, 2, 4, 0.15, 0.09, 0.3,
                           [SourceRow("centre", "All centre", 0.0, 0.29, 0.36, 0.1, 0.0)])
    text = format_source_tables(res)
    assert "All centre" in text and "0.290" in text and "pan spread (weighted std) 0.150" in text
