"""On-disk LRU stem cache: round trip, keys, eviction order, atomic writes, clearing."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from core.errors import ParameterError
from separation.base import Source
from separation.stem_cache import StemCache, default_cache_dir


@pytest.fixture(autouse=True)
def _cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("SOUNDSTAGE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SOUNDSTAGE_CACHE_MAX_MB", raising=False)


def sources(rng, n=4410, k=3):
    return [Source(f"s{i}", rng.standard_normal(n).astype(np.float32), colour=f"#00000{i}",
                   kind="stem" if i else "residual", meta={"i": i, "gain": np.float32(0.5)}) for i in range(k)]


def test_default_directory_from_env_and_platformdirs(tmp_path, monkeypatch):
    assert default_cache_dir() == tmp_path / "cache" / "stems"
    assert StemCache().directory == tmp_path / "cache" / "stems"
    monkeypatch.delenv("SOUNDSTAGE_CACHE_DIR")
    import platformdirs
    assert default_cache_dir() == Path(platformdirs.user_cache_dir("soundstage")) / "stems"


def test_round_trip_exact(rng):
    cache = StemCache()
    src = sources(rng)
    key = cache.key(StemCache.content_hash(src[0].audio), "demucs", "sig", {"shifts": 1})
    assert cache.load(key) is None and not cache.contains(key)
    path = cache.store(key, src, meta={"model": "htdemucs"})
    assert path.is_file() and path.parent == cache.directory
    back = cache.load(key)
    assert [s.name for s in back] == ["s0", "s1", "s2"]
    assert [s.kind for s in back] == ["residual", "stem", "stem"]
    assert [s.colour for s in back] == [s.colour for s in src]
    assert back[1].meta == {"i": 1, "gain": 0.5}
    for a, b in zip(src, back):
        assert b.audio.dtype == np.float32 and np.array_equal(a.audio, b.audio)
    assert cache.read_meta(key)["meta"] == {"model": "htdemucs"}
    assert cache.info().entries == 1 and cache.info().total_bytes == path.stat().st_size


def test_keys_change_with_every_part(rng):
    x = rng.standard_normal(1000).astype(np.float32)
    h = StemCache.content_hash(x)
    y = x.copy()
    y[500] += 1e-6
    assert StemCache.content_hash(y) != h
    assert StemCache.content_hash(x, 48000) != h
    base = StemCache.key(h, "demucs", "sig", {"shifts": 1})
    assert base == StemCache.key(h, "demucs", "sig", {"shifts": 1})
    others = {StemCache.key(StemCache.content_hash(y), "demucs", "sig", {"shifts": 1}),
              StemCache.key(h, "formation", "sig", {"shifts": 1}),
              StemCache.key(h, "demucs", "sig2", {"shifts": 1}),
              StemCache.key(h, "demucs", "sig", {"shifts": 2})}
    assert base not in others and len(others) == 4
    with pytest.raises(ParameterError):
        StemCache().path_for("../etc/passwd")


def test_lru_eviction_keeps_recently_used(rng):
    src = sources(rng)
    probe = StemCache(max_bytes=10 ** 9)
    size = probe.store("aa", src).stat().st_size
    probe.clear()
    cache = StemCache(max_bytes=int(2.5 * size))              # room for two entries
    for i, key in enumerate(("aa", "bb")):
        cache.store(key, src)
        os.utime(cache.path_for(key), (1000 + i, 1000 + i))   # aa older than bb
    assert cache.load("aa") is not None                        # a hit makes aa the most recent
    cache.store("cc", src)
    assert [e.key for e in cache.entries()] == ["aa", "cc"]    # bb was least recently used
    assert cache.info().total_bytes <= cache.max_bytes
    # An entry larger than the whole limit is not kept (and evicts nothing).
    tiny = StemCache(max_bytes=100)
    assert tiny.store("dd", src) is None and not tiny.contains("dd")
    assert cache.evict(0) == ["aa", "cc"] and cache.entries() == []


def test_failed_write_leaves_nothing(rng, monkeypatch):
    cache = StemCache()
    src = sources(rng)

    def broken(f, arrays):
        f.write(b"PK partial")
        raise OSError("disk full")

    import separation.stem_cache
    monkeypatch.setattr(separation.stem_cache, "_savez", broken)
    with pytest.raises(OSError):
        cache.store("ab", src)
    assert list(cache.directory.iterdir()) == []


def test_damaged_entry_is_a_miss_and_removed(rng):
    cache = StemCache()
    path = cache.store("ef", sources(rng))
    path.write_bytes(path.read_bytes()[:100])
    assert cache.load("ef") is None and not path.exists()


def test_a_spurious_ast_error_reads_the_entry_again(rng, spurious_ast_errors):
    cache = StemCache()
    src = sources(rng)
    path = cache.store("ef", src)
    calls = spurious_ast_errors(1)
    got = cache.load("ef")
    assert len(calls) == 2 and path.exists()
    assert [s.name for s in got] == [s.name for s in src]
    assert all(np.array_equal(g.audio, s.audio) for g, s in zip(got, src))


def test_an_ast_error_every_time_is_a_miss_that_keeps_the_file(rng, spurious_ast_errors):
    cache = StemCache()
    path = cache.store("ef", sources(rng))
    calls = spurious_ast_errors(10)
    assert cache.load("ef") is None and path.exists() and len(calls) == 3     # core.npz.ATTEMPTS


def test_clear_and_size_limit_from_env(rng, monkeypatch):
    cache = StemCache()
    for key in ("a1", "b2", "c3"):
        cache.store(key, sources(rng))
    (cache.directory / ".a1.stale.part").write_bytes(b"x")
    os.utime(cache.directory / ".a1.stale.part", (1000, 1000))
    n, size = cache.clear()
    assert n == 3 and size > 3 * 3 * 4410 * 4
    assert list(cache.directory.iterdir()) == []
    monkeypatch.setenv("SOUNDSTAGE_CACHE_MAX_MB", "1.5")
    assert StemCache().max_bytes == int(1.5 * 1024 ** 2)
    monkeypatch.setenv("SOUNDSTAGE_CACHE_MAX_MB", "lots")
    with pytest.raises(ParameterError):
        StemCache()


def test_header_reads_survive_a_spurious_ast_error(rng, spurious_ast_errors):
    """The header of an entry (``read_meta``) and whether a file is one of the cache's (``made_here``: what
    ``clear`` removes) are read again on the spurious error, not taken for an unreadable or foreign file."""
    cache = StemCache()
    path = cache.store("ef", sources(rng))
    calls = spurious_ast_errors(1)
    assert cache.read_meta("ef")["sources"] and len(calls) == 2
    calls = spurious_ast_errors(1)
    assert StemCache.made_here(path) and len(calls) == 2
