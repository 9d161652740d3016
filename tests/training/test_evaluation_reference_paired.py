"""The reference evaluation's comparison with the placement model alone, excerpt by excerpt (issue 27,
session 12): each excerpt's source E_min, and the table's line of ratios and paired differences."""
import numpy as np

from training.evaluation_reference import RefRow, ReferenceEvalResult, format_reference_table
from training.evaluation_sources import source_metrics


def test_each_excerpts_source_emin_is_its_best_renditions_weighted_error():
    truth = [(np.array([0.5, -0.5]), np.zeros(2), np.array([3.0, 1.0])),
             (np.array([0.0]), np.zeros(1), np.array([2.0]))]
    props = [np.array([[[0.5, 0.2], [0.0, 0.2]],          # 0.75 * 0 + 0.25 * 0.5 = 0.125
                       [[0.0, 0.2], [-0.5, 0.2]]]),       # 0.75 * 0.5 + 0.25 * 0 = 0.375
             np.array([[[0.3, 0.1]], [[-0.1, 0.1]]])]      # 0.3, 0.1
    r = source_metrics(truth, props)
    assert np.allclose(r["e_min_per"], [0.125, 0.1]) and np.isclose(r["e_min"], 0.1125)


def test_the_table_says_each_reference_against_none():
    res = ReferenceEvalResult("valid", 8, 32, 198, rows=[
        RefRow("none", 0.0758, 0.011, 0.002, 0.1, 0.08, ratio=1.0, ratio_se=0.0, out_diff=0.0, out_diff_se=None),
        RefRow("same-track", 0.0386, 0.006, 0.001, 0.07, 0.08, ratio=0.509, ratio_se=0.070, out_diff=-0.0098,
               out_diff_se=0.0031),
        RefRow("same-album", 0.0749, 0.011, 0.002, 0.1, 0.08, ratio=0.988, ratio_se=0.009)])
    last = format_reference_table(res).splitlines()[-1]
    assert last == ("against none, excerpt by excerpt: same-track src E_min 0.509 ±0.070 of none's, out E_min "
                    "-0.0098 ±0.0031; same-album src E_min 0.988 ±0.009 of none's")
    assert "against none" not in format_reference_table(ReferenceEvalResult("valid", 8, 32, 198, rows=[
        RefRow("same-track", 0.0386, 0.006, 0.001, 0.07, 0.08)]))
