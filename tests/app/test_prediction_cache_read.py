"""The prediction cache reads an entry again on CPython's spurious AST SystemError from np.load (core.npz) instead
of making the prediction again, and still makes a damaged entry again."""
from __future__ import annotations

import numpy as np

import core.npz
from app.prediction_cache import PredictionCache
from core.ps import PSParams


def _params(v):
    return PSParams(np.full((34, 6), v, np.float32), np.full((34, 6), 0.25, np.float32))


def test_a_spurious_ast_error_is_read_again_and_a_damaged_entry_made_again(tmp_path, monkeypatch):
    cache, made = PredictionCache(tmp_path), []
    key = PredictionCache.key("a" * 64, "ps-mtm", {"ps-mtm.pt": "b" * 64}, 0, None, None)

    def make(v):
        def f():
            made.append(v)
            return _params(v)
        return f

    assert cache.get(key, make(1.0)).iid[0, 0] == 1.0 and made == [1.0]
    real, calls = np.load, []

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) == 1:
            raise SystemError("AST constructor recursion depth mismatch (before=39, after=40)")
        return real(*a, **k)
    monkeypatch.setattr(core.npz.np, "load", flaky)
    assert cache.get(key, make(2.0)).iid[0, 0] == 1.0 and made == [1.0] and len(calls) == 2
    path = tmp_path / f"{key}.npz"
    path.write_bytes(path.read_bytes()[:50])
    assert cache.get(key, make(3.0)).iid[0, 0] == 3.0 and made == [1.0, 3.0]
    assert cache.get(key, make(4.0)).iid[0, 0] == 3.0
