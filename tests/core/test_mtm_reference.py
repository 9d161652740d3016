"""PS-MTM's samples with the shipped model equal those computed before the speed work
(tests/_reference.py): the same tokens for the same seed.

Token for token on the machine that computed the reference; on another CPU (AVX2 against AVX-512/AMX
kernels) a float's last bit may differ, and one token sampled the other way changes the path of every
later patch: there the same seed agrees in about 96% of tokens (measured), where another seed agrees in
about 31%. The test asks for 90%: a change to the sampling (the noise, the order, the guidance) fails it."""
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
    agree = float(np.mean(got == want))
    assert agree >= 0.9, f"{np.count_nonzero(got != want)} of {want.size} tokens differ"
    other = reference()[f"mtm_band20_seed{5 - seed}_tokens"]     # the bar is far above another seed's
    assert float(np.mean(got == other)) < 0.5
