"""Issue 23, ``soundstage batch`` through the command line: a bad ``--memory-limit`` is one line
before any work (item 13), and a batch that cannot start leaves OUT_DIR as it was (item 14)."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from cli.main import main

SR = 44100


@pytest.fixture
def in_dir(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    t = np.arange(SR) / SR
    sf.write(d / "a.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), SR)
    return d


def _one_line(capsys, *says):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("soundstage: error: "), err
    for s in says:
        assert s in err, err


@pytest.mark.parametrize("value", ["banana", "0", "-4GB"])
def test_a_memory_limit_that_is_no_size_is_one_line_before_any_work(tmp_path, in_dir, capsys, value):
    out = tmp_path / "out"
    rc = main(["-q", "batch", str(in_dir), str(out), "--separator", "none", "--method", "decorr",
               f"--memory-limit={value}"])
    assert rc == 2
    _one_line(capsys, f"--memory-limit {value!r} is not a memory size")
    assert not out.exists()


@pytest.mark.timeout(120)
def test_an_unreachable_scheduler_leaves_out_dir_as_it_was(tmp_path, in_dir, capsys):
    new, empty = tmp_path / "new" / "out", tmp_path / "empty"
    empty.mkdir()
    for out in (new, empty):
        rc = main(["-q", "batch", str(in_dir), str(out), "--separator", "none", "--method", "decorr",
                   "--scheduler", "tcp://127.0.0.1:1", "--connect-timeout", "1"])
        assert rc == 2
        _one_line(capsys, "Dask scheduler at tcp://127.0.0.1:1")
    assert not (tmp_path / "new").exists()                    # made by the run, removed again
    assert list(empty.iterdir()) == []                         # no manifest, no lock file


def test_local_cluster_options_with_a_scheduler_are_refused(tmp_path, in_dir, capsys):
    out = tmp_path / "out"
    rc = main(["-q", "batch", str(in_dir), str(out), "--separator", "none", "--method", "decorr",
               "--scheduler", "tcp://127.0.0.1:1", "--workers", "2"])
    assert rc == 2
    _one_line(capsys, "--workers and --memory-limit set up the local cluster")
    assert not out.exists()
