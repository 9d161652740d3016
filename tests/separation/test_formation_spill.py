"""Formation's stems on disk (inside core.spill.spilling, as the headless chain runs it): the same
sources, bit for bit, as in RAM, each stem mapped on a file; the stem cache writes and reads them
back the same."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from core import spill  # noqa: E402
from separation.formation import SourceFormation  # noqa: E402
from separation.stem_cache import StemCache  # noqa: E402
from test_formation import small_band  # noqa: E402


@pytest.mark.parametrize("n_sources", [None, 3])
def test_formation_on_disk_equals_formation_in_ram(tmp_path, n_sources):
    _refs, x = small_band(np.random.default_rng(5), seconds=7.0)
    ram = SourceFormation(n_sources=n_sources, cache=False).separate(x)
    with spill.spilling(tmp_path / "spill"):
        disk = SourceFormation(n_sources=n_sources, cache_dir=tmp_path / "stems").separate(x)
    assert [s.name for s in disk] == [s.name for s in ram]
    assert [s.meta for s in disk] == [s.meta for s in ram]
    for a, b in zip(ram, disk):
        assert not spill.mapped_on_file(a.audio) and spill.mapped_on_file(b.audio)
        assert np.array_equal(a.audio, b.audio)
    again = SourceFormation(n_sources=n_sources, cache_dir=tmp_path / "stems")
    hit = again.separate(x)                      # from the entry written block by block
    assert again.last_from_cache
    assert all(np.array_equal(a.audio, b.audio) and a.meta == b.meta for a, b in zip(ram, hit))


def test_cache_entry_is_an_npz_as_numpy_writes_it(tmp_path, rng):
    from separation.base import Source
    cache = StemCache(tmp_path)
    with spill.spilling(tmp_path / "spill"):
        a = spill.signal_buffer(300_001)
    a[:] = rng.standard_normal(len(a)).astype(np.float32)
    path = cache.store("ab12", [Source("x", a, "#000000", "source", {"k": 1}), Source("r", a[::-1].copy())])
    with np.load(path, allow_pickle=False) as z:
        assert sorted(z.files) == ["header", "s0", "s1"]
        assert np.array_equal(z["s0"], a) and np.array_equal(z["s1"], a[::-1])
    assert StemCache.made_here(path)
    got = cache.load("ab12")
    assert [s.name for s in got] == ["x", "r"] and got[0].meta == {"k": 1}


def test_cache_hit_inside_spilling_reads_stems_onto_disk(tmp_path, rng):
    from separation.base import Source
    cache = StemCache(tmp_path / "stems")
    x = rng.standard_normal(3_000_001).astype(np.float32)
    cache.store("cd34", [Source("x", x), Source("y", x[::-1].copy())])
    with spill.spilling(tmp_path / "spill"):
        got = cache.load("cd34")
    assert all(spill.mapped_on_file(s.audio) for s in got)
    assert np.array_equal(got[0].audio, x) and np.array_equal(got[1].audio, x[::-1])
    assert not spill.mapped_on_file(cache.load("cd34")[0].audio)       # outside: in RAM, as np.load reads it
