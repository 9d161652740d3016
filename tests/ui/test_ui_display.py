"""The numbers the UI draws (app/display.py): known answers, no Qt."""
from __future__ import annotations

import tracemalloc

import numpy as np

from app.display import ClockPlayer, OutputTap, dominance, meter_values, waveform_envelope
from app.playback import MixEngine, snapshot_for
from core.placement import Placement


def test_envelope_min_max_per_column():
    x = np.array([0, 1, -2, 3, 0.5, -0.5, 4, -4], np.float32)
    lo, hi = waveform_envelope(x, 4)
    assert np.array_equal(lo, [0, -2, -0.5, -4]) and np.array_equal(hi, [1, 3, 0.5, 4])


def test_dominance_picks_the_loudest_source():
    e = np.zeros((3, 2, 2))
    e[0, 0, 0], e[1, 0, 0] = 1.0, 0.5
    e[2, 1, 1] = 1e-3
    e[1, 0, 1] = 1e-9
    idx, level = dominance(e, floor_db=-60)
    assert idx[0, 0] == 0 and idx[1, 1] == 2 and idx[0, 1] == 1
    assert level[0, 0] == 1.0 and abs(level[1, 1] - (1 - (10 * np.log10(1e-3 / 1.5)) / -60)) < 1e-6


def test_meter_values_known_signals():
    t = np.arange(4096) / 44100
    s = 0.5 * np.sin(2 * np.pi * 440 * t)
    mono = np.stack([s, s], axis=1)
    v = meter_values(mono)
    assert abs(v.peak_db[0] - 20 * np.log10(0.5)) < 0.01 and abs(v.correlation - 1) < 1e-9
    assert np.allclose(v.side, 0) and np.max(v.mid) > 0.7
    anti = meter_values(np.stack([s, -s], axis=1))
    assert abs(anti.correlation + 1) < 1e-9 and np.allclose(anti.mid, 0)
    assert abs(meter_values(np.stack([s, np.cos(2 * np.pi * 440 * t) * 0.5], axis=1)).correlation) < 0.02


def test_tap_ring_buffer_keeps_the_last_frames_without_allocating():
    tap = OutputTap(8)
    blocks = [np.full((3, 2), k, np.float32) for k in range(1, 5)]
    tap.write(blocks[0])
    tracemalloc.start()
    for b in blocks[1:]:
        tap.write(b)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1024
    assert tap.written == 12
    assert np.array_equal(tap.last(8)[:, 0], [2, 2, 3, 3, 3, 4, 4, 4])
    tap.write(np.arange(40, dtype=np.float32).reshape(20, 2))     # longer than the buffer
    assert np.array_equal(tap.last(2)[:, 1], [37, 39])


def test_clock_player_advances_the_engine_and_feeds_the_tap():
    n = 44100
    s = np.tile(np.sin(np.linspace(0, 200 * np.pi, n, dtype=np.float32)), (2, 1))
    d = np.zeros_like(s)
    snap = snapshot_for([Placement(), Placement()], has_auto=[False, False])
    eng = MixEngine(s, d, snap)
    p = ClockPlayer(eng)
    p.play()
    p.pull(0.1)
    assert eng.position == 4410 and p.tap.written == 4410
    assert max(meter_values(p.tap.last(2048)).peak_db) > -10
    p.pause()
    p.pull(0.1)
    assert eng.position == 4410
    p.stop()
    assert eng.position == 0 and not eng.playing
