"""Shared fixtures: a seeded rng and generated test signals (no files needed)."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SR = 44100

# Tests by layer: tests/core, separation, training, app, ui, cli (shared helpers here and in
# tests/_demucs_tiny.py, tests/ui/uikit.py). Everything under tests/ui (the desktop window) and
# tests/cli (the command line, mostly in processes) is end to end: marked slow, with the long ones
# elsewhere (their own ``pytest.mark.slow``); ``pytest -m "not slow"`` is the fast subset.
_SLOW_FOLDERS = ("ui", "cli")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.parent.name in _SLOW_FOLDERS and item.path.parent.parent.name == "tests":
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _own_stem_cache(tmp_path_factory, monkeypatch):
    """Every test its own, empty stem cache (formation's and Demucs' sources are kept there): no
    test sees another's entries, and the user's cache is never touched."""
    monkeypatch.setenv("SOUNDSTAGE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def tone(freq, seconds=1.0, sr=SR, amp=0.5, phase=0.0):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def harmonic_note(f0, seconds=1.0, sr=SR, n_harm=8, amp=0.3, decay=3.0):
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, n_harm + 1) if f0 * k < sr / 2)
    return (amp * x * np.exp(-decay * t)).astype(np.float32)


def chirp(f0=100.0, f1=8000.0, seconds=1.0, sr=SR, amp=0.5):
    t = np.arange(int(seconds * sr)) / sr
    k = np.log(f1 / f0) / seconds
    return (amp * np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1) / k)).astype(np.float32)


def clicks(seconds=1.0, sr=SR, every=0.25, amp=0.9):
    x = np.zeros(int(seconds * sr), np.float32)
    x[:: int(every * sr)] = amp
    return x


def noise(rng, seconds=1.0, sr=SR, amp=0.3):
    return (amp * rng.standard_normal(int(seconds * sr))).astype(np.float32)


def pan_mono(x, iid_db):
    """Stereo [n, 2] of mono ``x`` with a level difference of ``iid_db`` (L over R), power kept."""
    c = 10 ** (iid_db / 20)
    gl, gr = np.sqrt(2 * c * c / (1 + c * c)), np.sqrt(2 / (1 + c * c))
    return np.stack([gl * x, gr * x], axis=1).astype(np.float32)


def play_blocks(eng, blocks, n=512):
    """What ``eng`` (an :class:`app.playback.MixEngine`) plays in ``blocks`` callbacks of ``n`` frames."""
    out = np.zeros((blocks * n, 2), np.float32)
    buf = np.zeros((n, 2), np.float32)
    for k in range(blocks):
        eng.callback(buf, n)
        out[k * n:(k + 1) * n] = buf
    return out


@pytest.fixture
def play():
    """:func:`play_blocks`: the blocks an engine plays, as the audio device would ask for them."""
    return play_blocks


@pytest.fixture
def signals():
    """Namespace of the generators above, for tests in any module."""
    class _S:
        pass
    s = _S()
    for f in (tone, harmonic_note, chirp, clicks, noise, pan_mono):
        setattr(s, f.__name__, staticmethod(f))
    s.SR = SR
    return s


@pytest.fixture
def spurious_ast_errors(monkeypatch):
    """``arm(times)``: np.load raises CPython's spurious AST SystemError (python/cpython gh-106905, what
    :mod:`core.npz` reads again) on its next ``times`` calls; returns the list its calls are counted in (each
    ``arm`` starts a new count)."""
    real = np.load

    def arm(times: int) -> list:
        calls = []

        def flaky(*a, **k):
            calls.append(1)
            if len(calls) <= times:
                raise SystemError("AST constructor recursion depth mismatch (before=39, after=40)")
            return real(*a, **k)
        monkeypatch.setattr(np, "load", flaky)
        return calls
    return arm
