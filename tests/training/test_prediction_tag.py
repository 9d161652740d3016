"""The evaluation caches keep a PS model's predictions per excerpt and seed; a new model file (or new sampling
defaults in it) must not be served the old file's predictions (issue 24: the eval caches used to key on the audio
and the seed alone)."""
from __future__ import annotations

import numpy as np
import pytest

from core.errors import ParameterError
from core.ps import PSParams
from core.stft import n_frames
from training import evaluation_sources as es


def _params(value: float, frames: int = 5) -> PSParams:
    return PSParams(np.full((34, frames), value, np.float32), np.full((34, frames), 0.5, np.float32))


def test_an_entry_of_another_model_file_is_made_again(tmp_path):
    made = []

    def make(v):
        def f():
            made.append(v)
            return _params(v)
        return f

    assert es._cached(tmp_path, "ps-mtm-x-0", make(1.0), "aaaa").iid[0, 0] == 1.0
    assert es._cached(tmp_path, "ps-mtm-x-0", make(2.0), "aaaa").iid[0, 0] == 1.0      # the same file: read
    assert made == [1.0]
    assert es._cached(tmp_path, "ps-mtm-x-0", make(3.0), "bbbb").iid[0, 0] == 3.0      # another file: made again
    assert made == [1.0, 3.0]
    assert es._cached(tmp_path, "ps-mtm-x-0", None, "bbbb").iid[0, 0] == 3.0           # and kept under its tag
    with pytest.raises(ParameterError, match="no cached PS parameters of this model file"):
        es._cached(tmp_path, "ps-mtm-x-0", None, "aaaa")
    assert es._cached(tmp_path, "ps-mtm-x-0", None).iid[0, 0] == 3.0                   # no tag: any entry


def test_an_untagged_old_entry_is_made_again_when_a_tag_is_asked(tmp_path):
    np.savez(tmp_path / "ps-mtm-y-0.npz", iid=_params(7.0).iid, ic=_params(7.0).ic)    # as entries were written before
    assert es._cached(tmp_path, "ps-mtm-y-0", lambda: _params(8.0), "cccc").iid[0, 0] == 8.0


def test_the_decode_of_another_models_parameters_is_made_again(tmp_path, monkeypatch):
    mono = np.random.default_rng(0).standard_normal(44100).astype(np.float32) * 0.1
    decoded = []
    real_decode = es.decode
    monkeypatch.setattr(es, "decode", lambda *a, **k: decoded.append(1) or real_decode(*a, **k))
    p = _params(3.0, n_frames(len(mono)))
    a1, _ = es._cached_decode(tmp_path, "k-decoded", mono, p, None, "aaaa")
    a2, _ = es._cached_decode(tmp_path, "k-decoded", mono, p, None, "aaaa")
    assert len(decoded) == 1 and np.array_equal(a1.iid, a2.iid)
    es._cached_decode(tmp_path, "k-decoded", mono, p, None, "bbbb")
    assert len(decoded) == 2


def test_the_tag_is_the_model_files_checksum(tmp_path):
    assert es.prediction_tag("ps-mtm", tmp_path) == ""                                  # no file: no tag
    f = tmp_path / "ps-mtm.pt"
    f.write_bytes(b"one model file")
    t1 = es.prediction_tag("ps-mtm", tmp_path)
    (tmp_path / "ps-mtm-detail.json").write_text("{}")                                 # the calibration: not a part
    assert es.prediction_tag("ps-mtm", tmp_path) == t1
    f.write_bytes(b"the same network, other sampling defaults in its meta")
    t2 = es.prediction_tag("ps-mtm", tmp_path)
    assert len(t1) == len(t2) == 16 and t1 != t2


def test_a_spurious_ast_error_reads_a_cached_prediction_again(tmp_path, spurious_ast_errors):
    """The eval caches read their entries through core.npz.read_npz: CPython's spurious AST SystemError from
    np.load (gh-106905) reads the entry again instead of failing (or making a slow prediction again)."""
    es._cached(tmp_path, "ps-mtm-z-0", lambda: _params(5.0), "cccc")
    calls = spurious_ast_errors(1)
    assert es._cached(tmp_path, "ps-mtm-z-0", None, "cccc").iid[0, 0] == 5.0 and len(calls) == 2
