"""The prediction cache reads an entry again on CPython's spurious AST SystemError from np.load (core.npz) instead
of making the prediction again, and still makes a damaged entry again."""
from __future__ import annotations

import numpy as np

from app.prediction_cache import PredictionCache
from core.ps import PSParams


def _params(v):
    return PSParams(np.full((34, 6), v, np.float32), np.full((34, 6), 0.25, np.float32))


def test_a_spurious_ast_error_is_read_again_and_a_damaged_entry_made_again(tmp_path, spurious_ast_errors):
    cache, made = PredictionCache(tmp_path), []
    key = PredictionCache.key("a" * 64, "ps-mtm", {"ps-mtm.pt": "b" * 64}, 0, None, None)

    def make(v):
        def f():
            made.append(v)
            return _params(v)
        return f

    assert cache.get(key, make(1.0)).iid[0, 0] == 1.0 and made == [1.0]
    calls = spurious_ast_errors(1)
    assert cache.get(key, make(2.0)).iid[0, 0] == 1.0 and made == [1.0] and len(calls) == 2
    path = tmp_path / f"{key}.npz"
    path.write_bytes(path.read_bytes()[:50])
    assert cache.get(key, make(3.0)).iid[0, 0] == 3.0 and made == [1.0, 3.0]
    assert cache.get(key, make(4.0)).iid[0, 0] == 3.0
