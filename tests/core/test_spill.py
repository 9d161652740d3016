"""Signals on disk (core.spill) and the chunk-by-chunk decorrelation: the same bits as in RAM and
as the whole signal at once, with a chunk of resident memory."""
from __future__ import annotations

import numpy as np
import pytest

from core import spill
from core.bands import band_edges, band_of_bin
from core.decorrelator import allpass_cascade, transient_strength
from core.mixdown import MIX_FRAMES, mix_streams
from core.placement import Placement
from core.renderer import SourceRender, prepare_source
from core.stft import OverlapAdd, n_frames, stft_frames
from core.streaming import AllpassWindow, OverlapAddRolling


def _rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    pytest.skip("no /proc/self/status")


def _whole_prepare(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The decorrelation as it was made before it streamed: the whole cascade, then the whole
    overlap-add (the oracle)."""
    xd = allpass_cascade(x)
    n = len(x)
    ola = OverlapAdd(n)
    bob, edges = band_of_bin(), band_edges()[:-1]
    energies, state = [], None
    for f0 in range(0, n_frames(n), MIX_FRAMES):
        f1 = min(f0 + MIX_FRAMES, n_frames(n))
        S = stft_frames(x, f0, f1, frames_major=True)
        ps = np.add.reduceat(S.real ** 2 + S.imag ** 2, edges, axis=1)
        D = stft_frames(xd, f0, f1, frames_major=True)
        proj = np.add.reduceat(D * S.conj(), edges, axis=1) / np.maximum(ps, 1e-20)
        D -= proj[:, bob] * S
        pd = np.add.reduceat(D.real ** 2 + D.imag ** 2, edges, axis=1)
        g = np.sqrt(ps / np.maximum(pd, 1e-20))
        g = np.where(ps > 1e-20, np.minimum(g, 8.0), 0.0).astype(np.float32)
        energy = np.ascontiguousarray(ps.T, dtype=np.float32)
        tr, state = transient_strength(energy, state=state)
        g *= np.sqrt(1.0 - tr).T
        D *= g[:, bob]
        ola.add(D, f0, frames_major=True)
        energies.append(energy)
    return ola.result(), np.concatenate(energies, axis=1)


def _music(rng, n: int) -> np.ndarray:
    t = np.arange(n)
    env = np.exp(-(t % 11025) / 3000.0)
    return (0.3 * env * np.sin(2 * np.pi * 220 * t / 44100) + 0.05 * rng.standard_normal(n)).astype(np.float32)


def test_signal_buffer_on_disk_only_while_spilling(tmp_path):
    assert not spill.mapped_on_file(spill.signal_buffer(1000))
    with spill.spilling(tmp_path):
        a = spill.signal_buffer(1000)
        assert spill.spill_folder() == tmp_path
    assert spill.spill_folder() is None
    assert spill.mapped_on_file(a) and spill.mapped_on_file(a[10:20]) and not a.any()
    assert list(tmp_path.iterdir()) == []            # unlinked at once: nothing left behind


def test_released_pages_read_back_the_same_and_leave_the_resident_set(tmp_path, rng):
    n = 610 * (1 << 16)                              # 160 MB
    with spill.spilling(tmp_path):
        a = spill.signal_buffer(n)
    x = rng.standard_normal(1 << 16).astype(np.float32)
    before = _rss_mb()
    for i in range(0, n, 1 << 16):
        a[i:i + (1 << 16)] = x
    written = _rss_mb()
    spill.release(a)
    released = _rss_mb()
    assert written - before > 100 and written - released > 100
    assert np.array_equal(a[-(1 << 16):], x) and np.array_equal(a[12345:12350], x[12345:12350])
    spill.release(np.zeros(3), None)                 # arrays in RAM: nothing happens


def test_rolling_overlap_add_equals_overlap_add_bit_for_bit(rng):
    n = 1024 * 700 + 333
    t = n_frames(n)
    whole = OverlapAdd(n)
    rolling = OverlapAddRolling(n)
    out, at = np.zeros(n, np.float32), 0
    f0 = 0
    for size in [5, 256, 1, 100, 17] * 40:
        if f0 >= t:
            break
        f1 = min(t, f0 + size)
        spec = (rng.standard_normal((f1 - f0, 2049)) + 1j * rng.standard_normal((f1 - f0, 2049))).astype(np.complex64)
        whole.add(spec, f0, frames_major=True)
        a, block = rolling.add(spec, f0, frames_major=True)
        assert a == at
        out[a:a + len(block)] = block
        at += len(block)
        f0 = f1
    assert f0 == t and at == n
    assert np.array_equal(out, whole.result())


def test_allpass_window_equals_the_whole_cascade(rng):
    x = _music(rng, 1024 * 600 + 99)
    xd = allpass_cascade(x)
    w = AllpassWindow(x)
    t = n_frames(len(x))
    for f0 in range(0, t, 200):
        f1 = min(t, f0 + 200)
        assert np.array_equal(w.frames(f0, f1), stft_frames(xd, f0, f1, frames_major=True))
    assert len(w.sig.data) < 3 * 200 * 1024          # a chunk, not the signal


@pytest.mark.parametrize("n", [3000, 1024 * 256 * 2 + 1, 44100 * 15 + 7])
def test_prepare_source_streams_the_same_bits_as_the_whole_signal(tmp_path, rng, n):
    x = _music(rng, n)
    d_ref, e_ref = _whole_prepare(x)
    r = prepare_source(x)
    assert np.array_equal(r.d, d_ref) and np.array_equal(r.energy, e_ref)
    with spill.spilling(tmp_path):
        m = spill.signal_buffer(n)
        m[:] = x
        rs = prepare_source(m)
    assert spill.mapped_on_file(rs.d) and spill.mapped_on_file(rs.s)
    assert np.array_equal(rs.d, d_ref) and np.array_equal(rs.energy, e_ref)


@pytest.mark.parametrize("mono_compatible", [False, True])
def test_mix_of_signals_on_disk_equals_the_mix_in_ram(tmp_path, rng, mono_compatible):
    n = 44100 * 8
    renders = [prepare_source(_music(np.random.default_rng(k), n)) for k in range(3)]
    t = n_frames(n)
    for k, r in enumerate(renders):
        r.tiles = (rng.uniform(-10, 10, (34, t)).astype(np.float32), rng.uniform(0, 1, (34, t)).astype(np.float32))
    places = [Placement(pan=0.3), Placement(pan=-0.5, pinned=True), Placement(width=0.8)]
    with spill.spilling(tmp_path):
        disk = []
        for r in renders:
            s, d = spill.signal_buffer(n), spill.signal_buffer(n)
            s[:], d[:] = r.s, r.d
            disk.append(SourceRender(s, d, r.energy, tiles=r.tiles))
    ram = [b for _, (b,) in mix_streams([renders], [places], mono_compatible=mono_compatible)]
    mapped = [b for _, (b,) in mix_streams([disk], [places], mono_compatible=mono_compatible)]
    assert len(ram) == len(mapped) and all(np.array_equal(a, b) for a, b in zip(ram, mapped))


def test_to_disk_copies_the_signal_onto_a_mapped_file_only_while_spilling(tmp_path, rng):
    x = rng.standard_normal(3_000_001).astype(np.float32)
    assert spill.to_disk(x) is x
    with spill.spilling(tmp_path):
        y = spill.to_disk(x)
        assert spill.to_disk(y) is y
    assert spill.mapped_on_file(y) and np.array_equal(x, y)
