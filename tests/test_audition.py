"""Issue 22, the fast rendition: the auto sources mixed in the STFT domain (one inverse STFT per
channel), from any playhead, equal the reference (every source rendered on its own, then mixed)."""
import numpy as np
import pytest

from core.bands import N_BANDS
from core.placement import Placement
from core.ps import PSParams
from core.renderer import auto_renders, mix, mix_chunks, mix_stream, prepare_source
from core.stft import HOP, OverlapAdd, OverlapAddStream, first_sample, n_frames, stft


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(7)
    n = 44100 * 3 + 321
    t = np.arange(n) / 44100
    srcs = [0.3 * np.sin(2 * np.pi * 110 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t)),
            0.1 * rng.standard_normal(n),
            0.2 * np.sign(np.sin(2 * np.pi * 2 * t)) * np.exp(-8 * (t % 0.5)) * rng.standard_normal(n),
            0.15 * np.sin(2 * np.pi * (300 + 400 * t) * t)]
    renders = [prepare_source(s.astype(np.float32)) for s in srcs]
    frames = n_frames(n)
    params = PSParams(rng.uniform(-25, 25, (N_BANDS, frames)).astype(np.float32),
                      rng.uniform(-0.2, 1.0, (N_BANDS, frames)).astype(np.float32))
    centres = np.array([[-0.6, 0.2], [0.4, 0.5], [0.0, 0.1], [0.7, 0.3]])
    return renders, params, centres


PLACES = [
    [Placement(), Placement(), Placement(), Placement()],
    [Placement(gain_db=-6.0), Placement(pan=0.3, width=0.4, pinned=True), Placement(mute=True), Placement(gain_db=3.0)],
    [Placement(), Placement(solo=True), Placement(pan=-0.5, pinned=True, solo=True), Placement()],
]


@pytest.mark.parametrize("mono_compatible", [False, True])
@pytest.mark.parametrize("places", range(len(PLACES)))
def test_fast_rendition_equals_the_per_source_render(scene, mono_compatible, places):
    renders, params, centres = scene
    auto_renders(renders, params, centres, mono_compatible=mono_compatible)     # pairs: the reference
    pl = PLACES[places]
    ref = np.concatenate([c for _, c, _ in mix_chunks(renders, pl, mono_compatible=mono_compatible)])
    peak = np.abs(ref).max()
    assert peak > 0.1
    fast = mix(renders, pl, mono_compatible=mono_compatible)
    assert fast.shape == ref.shape
    assert np.abs(fast - ref).max() < 1e-5 * max(1.0, peak)
    n = len(ref)
    for start in (1, HOP - 1, HOP, 3 * HOP + 5, n // 2, n - 100):
        blocks = list(mix_stream(renders, pl, start=start, mono_compatible=mono_compatible, chunk=50, first_chunk=4))
        assert blocks[0][0] == start                                  # the first block starts at the playhead
        got = np.concatenate([b for _, b in blocks])
        assert [a for a, _ in blocks] == list(np.cumsum([start] + [len(b) for _, b in blocks[:-1]]))
        assert np.abs(got - ref[start:]).max() < 1e-5 * max(1.0, peak)
    window = mix(renders, pl, start=5000, stop=9000, mono_compatible=mono_compatible)
    assert np.abs(window - ref[5000:9000]).max() < 1e-5 * max(1.0, peak)


def test_fast_rendition_needs_no_pairs_and_is_deterministic(scene):
    renders, params, centres = scene
    auto_renders(renders, params, centres)
    ref = mix(renders, PLACES[1])
    auto_renders(renders, params, centres, pairs=False)
    assert all(r.auto is None and r.has_auto for r in renders)
    again = mix(renders, PLACES[1])
    assert np.array_equal(again, ref)                                 # the same chunks: the same bits


def test_mono_compatible_fast_rendition_folds_down_to_the_recording(scene):
    renders, params, centres = scene
    auto_renders(renders, params, centres, pairs=False, mono_compatible=True)
    y = mix(renders, [Placement()] * 4, mono_compatible=True)
    x = np.sum([r.s for r in renders], axis=0)
    assert np.abs((y[:, 0] + y[:, 1]) / 2 - x).max() < 1e-6
    assert np.abs(y[:, 0] - y[:, 1]).max() > 0.05


def test_overlap_add_stream_equals_the_whole_inverse(rng):
    n = 20000
    x = rng.standard_normal(n).astype(np.float32)
    spec = stft(x) * rng.uniform(0.5, 1.5, (1, n_frames(n))).astype(np.float32)
    whole = OverlapAdd(n)
    for f0 in range(0, spec.shape[1], 3):
        whole.add(spec[:, f0:f0 + 3], f0)
    ref = whole.result()
    for first in (0, 1, 2, 7, spec.shape[1] - 1):
        st = OverlapAddStream(n, first=first)
        got = []
        for f0 in range(first, spec.shape[1], 3):
            a, block = st.add([spec[:, f0:f0 + 3]], f0)
            got.append((a, block[:, 0]))
        start = first_sample(first)
        assert got[0][0] == min(start, n) and st.done
        y = np.concatenate([b for _, b in got])
        assert len(y) == max(0, n - start)
        if len(y) == 0:
            continue
        if first % 3 == 0:                                             # the same chunks: bit for bit
            assert np.array_equal(y, ref[start:])
        assert np.abs(y - ref[start:]).max() < 1e-6
