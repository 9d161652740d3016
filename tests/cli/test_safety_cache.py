"""Issue 17, case 4: the stem cache removes only what it made, whatever folder it is pointed at."""
from __future__ import annotations

import os
import time

import numpy as np

from cli.main import main
from separation.base import Source
from separation.stem_cache import StemCache


def _sources(n=4410, k=2):
    return [Source(name=f"s{i}", audio=np.full(n, 0.1 * (i + 1), np.float32), colour="#fff", kind="stem")
            for i in range(k)]


def _foreign_files(d):
    np.savez(d / "measurements.npz", x=np.arange(10))                      # a user's own data
    np.savez(d / ("ab" * 20 + ".npz"), x=np.arange(3))                       # named like an entry
    (d / ("cd" * 20 + ".npz")).write_bytes(b"not even a zip")
    (d / ".draft.part").write_text("a user's temporary file")
    old = time.time() - 3 * 24 * 3600
    os.utime(d / ".draft.part", (old, old))
    return sorted(p.name for p in d.iterdir())


def test_clear_removes_only_the_cache_entries(tmp_path, capsys):
    d = tmp_path / "folder"
    d.mkdir()
    foreign = _foreign_files(d)
    cache = StemCache(d)
    for i in range(3):
        cache.store(cache.key(f"{i:064x}", "demucs", "sig"), _sources())
    assert len(cache.entries()) == 5        # named like entries; their content decides at removal
    assert main(["cache", "clear", "--dir", str(d)]) == 0
    assert "removed 3 cached entries" in capsys.readouterr().out
    assert sorted(p.name for p in d.iterdir()) == foreign
    assert np.array_equal(np.load(d / "measurements.npz")["x"], np.arange(10))


def test_eviction_spares_files_it_did_not_make(tmp_path):
    d = tmp_path / "folder"
    d.mkdir()
    foreign = _foreign_files(d)
    cache = StemCache(d, max_bytes=10 ** 6)
    keys = [cache.key(f"{i:064x}", "formation", "sig") for i in range(4)]
    for k in keys:                          # each entry ~35 kB: all fit
        cache.store(k, _sources())
    assert all(cache.contains(k) for k in keys)
    removed = cache.evict(0)
    assert sorted(removed) == sorted(keys)
    assert sorted(p.name for p in d.iterdir()) == foreign
    # An entry the cache wrote is recognised; the look-alike files are not.
    cache.store(keys[0], _sources())
    assert StemCache.made_here(cache.path_for(keys[0]))
    assert not StemCache.made_here(d / ("ab" * 20 + ".npz")) and not StemCache.made_here(d / "measurements.npz")
