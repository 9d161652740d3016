"""PS-MTM's samples with the shipped model equal those computed before the speed work
(tests/_reference.py): the same tokens for the same seed, token for token."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _reference import reference, scenes  # noqa: E402
from core.models import load_model  # noqa: E402
from core.ps import to_tokens  # noqa: E402


@pytest.mark.parametrize("seed", [0, 5])
def test_mtm_tokens_as_before(seed):
    band = scenes()["band"]
    x = np.tile(band, 3)[: 20 * 44100].astype(np.float32)
    got = to_tokens(load_model("ps-mtm").predict(x, seed=seed))
    want = reference()[f"mtm_band20_seed{seed}_tokens"]
    assert got.shape == want.shape
    assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} of {want.size} tokens differ"
