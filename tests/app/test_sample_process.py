"""The PS model's sample in a process of its own (app.sample_process): the same values as here,
progress as it goes, cancel and errors come back."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from app import sample_process
from core.errors import Cancelled, ParameterError
from core.models import load_model


def _mono(seconds=8.0, seed=3):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 44100)) / 44100
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def test_sample_elsewhere_equals_the_sample_here(tmp_path):
    mono = _mono()
    seen = []
    there = sample_process.predict("ps-mtm", mono, seed=7, progress=seen.append, folder=tmp_path)
    here = load_model("ps-mtm").predict(mono, seed=7)
    assert np.array_equal(there.iid, here.iid) and np.array_equal(there.ic, here.ic)
    assert seen and seen[-1].fraction == 1.0                 # progress came back as it was made
    assert list(tmp_path.iterdir()) == []                    # the recording's temporary file is gone


def test_cancel_ends_the_process(tmp_path):
    cancel = threading.Event()

    def progress(p):
        if p.fraction > 0:
            cancel.set()

    with pytest.raises(Cancelled):
        sample_process.predict("ps-mtm", _mono(30.0), seed=1, progress=progress, cancel=cancel, folder=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_error_there_is_raised_here(tmp_path):
    with pytest.raises(ParameterError, match="unknown PS model"):
        sample_process.predict("no-such-model", _mono(1.0), folder=tmp_path)
    with pytest.raises(ParameterError):
        sample_process.predict("ps-mtm", np.zeros((2, 3), np.float32), folder=tmp_path)


def test_no_process_possible_samples_here(tmp_path, monkeypatch):
    """Where no process can be started (an OSError from Popen), the sample is made in this process: the same values."""
    def refuse(*a, **k):
        raise OSError("no processes here")

    monkeypatch.setattr(sample_process.subprocess, "Popen", refuse)
    mono = _mono(3.0)
    got = sample_process.predict("ps-mtm", mono, seed=2, folder=tmp_path)
    want = load_model("ps-mtm").predict(mono, seed=2)
    assert np.array_equal(got.iid, want.iid) and np.array_equal(got.ic, want.ic)
