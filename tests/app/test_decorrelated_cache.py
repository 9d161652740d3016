"""Issue 22: the sources' decorrelated copies kept in the stem cache: a re-render reads them instead of
decorrelating again, bit for bit; another stem, another decorrelator or a long recording is not served."""
import numpy as np
import pytest

from app import decorrelated_cache
from app.decorrelated_cache import BACKEND, DecorrelatedCache, band_energies
from app.proposal import prepare
from core.renderer import prepare_source
from separation.base import Source
from separation.stem_cache import StemCache


@pytest.fixture
def stems(rng, signals):
    return [signals.harmonic_note(110.0, 2.0, amp=0.4), signals.chirp(300, 5000, 2.0, amp=0.2),
            signals.noise(rng, 2.0, amp=0.05)]


@pytest.fixture
def made(monkeypatch):
    """How many stems the decorrelator made (a copy read from the cache is not made)."""
    decorrelated_cache.fingerprint()                              # (made once per process, from a probe)
    count = [0]
    real = decorrelated_cache.prepare_source

    def counting(x, **kw):
        count[0] += 1
        return real(x, **kw)
    monkeypatch.setattr(decorrelated_cache, "prepare_source", counting)
    return count


def test_copies_made_once_then_read_back_bit_for_bit(stems, made, tmp_path):
    cache = StemCache(tmp_path / "stems")
    fresh = [prepare_source(x) for x in stems]
    first = prepare([Source(f"s{i}", x.copy()) for i, x in enumerate(stems)], len(stems[0]), cache=cache)
    assert made[0] == 3
    again = prepare([Source(f"s{i}", x.copy()) for i, x in enumerate(stems)], len(stems[0]), cache=cache)
    assert made[0] == 3                                          # all three read, none made
    for f, a, b in zip(fresh, first, again):
        assert np.array_equal(f.d, a.d) and np.array_equal(f.d, b.d)
        assert np.array_equal(f.energy, b.energy) and b.energy.dtype == np.float32
        assert np.array_equal(f.s, b.s)
    metas = [cache.read_meta(e.key)["meta"] for e in cache.entries()]
    assert len(metas) == 3 and all(m["backend"] == BACKEND for m in metas)      # listed by `soundstage cache`


def test_band_energies_are_those_the_decorrelator_makes(stems):
    long = np.tile(stems[0], 4)                                  # more than one chunk of frames
    assert np.array_equal(band_energies(long), prepare_source(long).energy)


def test_another_stem_or_another_decorrelator_is_not_served(stems, made, tmp_path, monkeypatch):
    cache = StemCache(tmp_path / "stems")
    copies = DecorrelatedCache(cache, 1)
    copies.prepare(stems[1])
    other = stems[1].copy()
    other[1000] += 1e-3                                          # one sample differs
    r = copies.prepare(other)
    assert made[0] == 2 and np.array_equal(r.d, prepare_source(other).d)
    monkeypatch.setattr(decorrelated_cache, "_FINGERPRINT", ["f" * 64])     # the decorrelator changed
    copies.prepare(stems[1])
    assert made[0] == 3
    copies.prepare(stems[1])
    assert made[0] == 3


def test_long_recordings_copies_are_not_kept(stems, made, tmp_path):
    n = len(stems[0])
    small = StemCache(tmp_path / "stems", max_bytes=4 * 4 * n * 3 - 4)    # three copies: just over a quarter
    copies = DecorrelatedCache(small, 3)
    assert not copies.keeps(n) and DecorrelatedCache(small, 2).keeps(n)
    copies.prepare(stems[0])
    copies.prepare(stems[0])
    assert made[0] == 2 and small.entries() == []
    assert not DecorrelatedCache(None, 1).keeps(n)


def test_inside_the_chains_spilling_a_kept_copy_is_read_onto_disk(stems, made, tmp_path):
    """The headless chain maps its signals on files (core.spill): a copy read from the cache is
    too (a block of RSS, not its length), with the same bits; so is a cached stem."""
    from core.spill import mapped_on_file, spilling
    cache = StemCache(tmp_path / "stems")
    copies = DecorrelatedCache(cache, 1)
    fresh = copies.prepare(stems[0])
    with spilling(tmp_path / "spill"):
        (tmp_path / "spill").mkdir()
        kept = copies.prepare(stems[0])
        assert made[0] == 1 and mapped_on_file(kept.d) and np.array_equal(kept.d, fresh.d)
        cache.store("ab12", [Source("a", stems[1])])
        back = cache.load("ab12")[0].audio
        assert mapped_on_file(back) and np.array_equal(back, stems[1])
    assert not mapped_on_file(cache.load("ab12")[0].audio)          # outside: in RAM, as before
