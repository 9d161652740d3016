"""Reference outputs computed on main before issue 22's chain work (b317555) by ``bench/make_chain_reference.py``: formation's
sources on two generated scenes, PS-MTM's tokens on 20 s of one, the chain's outputs on 12 s of
it. Speed work must leave them as they were (to float rounding): tests in separation/, core/ and
app/ compare against ``tests/data/chain_reference.npz``.

A signal is compared through its fingerprint: per block of 1024 samples, its RMS and its dot
product with a fixed random probe (so the waveform counts, not only the level)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REFERENCE = HERE / "data" / "chain_reference.npz"
PROBE = np.random.default_rng(22).standard_normal(1024)


def fingerprint(x) -> np.ndarray:
    """[shape=(blocks, 2)]: RMS and probe projection of each 1024-sample block."""
    x = np.asarray(x, np.float64)
    m = len(x) // 1024
    blk = x[:m * 1024].reshape(m, 1024)
    return np.stack([np.sqrt((blk ** 2).mean(1)), blk @ PROBE / 32.0], 1).astype(np.float32)


def reference() -> dict:
    with np.load(REFERENCE) as z:
        return {k: z[k] for k in z.files}


def scenes() -> dict:
    """The generated scenes the reference was computed on (tests/separation/test_formation.py's)."""
    sys.path.insert(0, str(HERE / "separation"))
    from test_formation import small_band, three_instruments
    _, band = small_band(np.random.default_rng(0))
    _, three = three_instruments(np.random.default_rng(7))
    return {"band": band, "three": three}


def assert_close_fingerprints(got: np.ndarray, want: np.ndarray, *, rtol: float = 1e-4) -> None:
    """Fingerprints equal to ``rtol`` of the signal's largest block RMS."""
    assert got.shape == want.shape, (got.shape, want.shape)
    scale = max(float(np.abs(want[..., 0]).max()), 1e-12)
    err = float(np.abs(got.astype(np.float64) - want).max()) / scale
    assert err <= rtol, f"fingerprints differ by {err:.2e} of the largest block RMS"
