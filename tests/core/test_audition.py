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
        assert np.array_equal(got, fast[start:])                      # from any playhead: the export's bits
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
        assert np.abs(y - ref[start:]).max() < 1e-6
        for chunks in ((1,), (7, 2), (1000,)):                         # other chunks: bit for bit the same
            st2, f0, k, got2 = OverlapAddStream(n, first=first), first, 0, []
            while f0 < spec.shape[1]:
                c = chunks[k % len(chunks)]
                got2.append(st2.add([spec[:, f0:f0 + c]], f0)[1][:, 0])
                f0, k = f0 + c, k + 1
            assert np.array_equal(np.concatenate(got2), y)
        if first:                                                      # and the stream from frame 0 too
            assert np.array_equal(y, streamed0[start:])
        else:
            streamed0 = y


# --- the session: a new rendition heard from the playhead, a kept one switched to without work -----

def _session(tmp_path):
    import soundfile as sf

    from app.session import Session
    from separation.base import Source, colour_for
    rng = np.random.default_rng(3)
    n = 44100 * 4
    t = np.arange(n) / 44100
    srcs = [(0.3 * np.sin(2 * np.pi * 110 * t)).astype(np.float32),
            (0.1 * rng.standard_normal(n)).astype(np.float32),
            (0.2 * np.sin(2 * np.pi * (300 + 300 * t) * t)).astype(np.float32)]
    sf.write(str(tmp_path / "rec.wav"), np.sum(srcs, axis=0), 44100, subtype="FLOAT")
    s = Session()
    s.open(tmp_path / "rec.wav")
    s.model = "ps-nn"
    s.set_sources([Source(f"s{i}", x.copy(), colour_for(i)) for i, x in enumerate(srcs)])
    return s


def test_new_rendition_from_the_playhead_plays_at_once_and_equals_the_export(tmp_path):
    from core.renderer import render_auto
    s = _session(tmp_path)
    s.new_rendition(0)
    eng = s.mix_engine()
    head = 44100 * 2 + 77
    eng.seek(head)
    eng.settle()
    eng.playing = True
    detail = s.shared_detail()
    assert detail == 0
    plan = s.plan_rendition(seed=5, detail=detail, playhead=head)
    assert plan.rendition.detail == 0 and plan.rendition.ps_key == s.renditions[0].ps_key
    assert all(r.pending for r in plan.renders)                     # the first block only, so far
    filled = [r.auto[head:head + 512].copy() for r in plan.renders]
    s.adopt_rendition(plan)
    buf = np.zeros((512, 2), np.float32)
    eng.callback(buf, 512)                                          # the switch: crossfaded
    s.wait_filled()
    assert not any(r.pending for r in s.renders)
    for r, first in zip(s.renders, filled):
        ref = render_auto(r, *r.tiles)
        assert np.abs(r.auto - ref).max() < 1e-5                     # the filled pair is the reference
        assert np.abs(first - ref[head:head + 512]).max() < 1e-5     # and so was its first block
    eng.callback(buf, 512)                                          # the new rendition, as exported
    ref = s.render()[head + 512:head + 1024]
    assert np.abs(buf - ref).max() < 1e-5


def test_switching_to_a_kept_rendition_reuses_its_renders(tmp_path):
    s = _session(tmp_path)
    s.new_rendition(0)
    first = list(s.renders)
    s.new_rendition(1, detail=0)
    plan = s.plan_rendition(index=0)
    assert all(a is b for a, b in zip(plan.renders, first))         # nothing made again
    s.adopt_rendition(plan)
    assert s.current == 0 and all(a is b for a, b in zip(s.renders, first))


def test_undo_to_released_renders_from_the_playhead(tmp_path):
    from app.memory import plan_restore, restore_needs_render
    from core.renderer import render_auto
    s = _session(tmp_path)
    s.memory.keep_bytes = 0                                          # only the current state's pairs
    s.new_rendition(0)
    before = list(s.renders)
    s.new_rendition(1, detail=0)
    assert all(r.auto is None for r in before) and restore_needs_render(s)
    plan = plan_restore(s, playhead=44100)
    assert all(r.auto is None for r in before)                       # nothing changed before adopting
    plan.adopt(s)
    assert s.current == 0 and all(a is b for a, b in zip(s.renders, before))
    s.mix_engine()
    s.wait_filled()
    for r in s.renders:
        assert not r.pending and np.abs(r.auto - render_auto(r, *r.tiles)).max() < 1e-5


def test_the_next_renditions_own_detail_is_predicted_in_the_background(tmp_path):
    s = _session(tmp_path)
    s.new_rendition(0)
    assert s.detail_for(1) == 0                                      # not predicted yet: the current detail
    s.prefetch(1)
    s._prefetching.join()
    assert s.detail_for(1) is None                                   # its own, ready in the prediction cache
    s.new_rendition(1, detail=s.detail_for(1))
    assert s.renditions[-1].detail is None and s.renditions[-1].ps_seed == 1


def test_switching_to_a_rendition_whose_pairs_were_released_reuses_its_tiles(tmp_path):
    from core.renderer import render_auto
    s = _session(tmp_path)
    s.memory.keep_bytes = 0                                          # only the current state's pairs
    s.new_rendition(0)
    first = list(s.renders)
    s.new_rendition(1, detail=0)
    assert all(r.auto is None for r in first)
    plan = s.plan_rendition(index=0, playhead=44100)
    assert all(a is b for a, b in zip(plan.renders, first)) and plan.filler is not None
    assert all(r.auto is None for r in first)                        # nothing installed before adopting
    s.adopt_rendition(plan)
    s.wait_filled()
    for r in s.renders:
        assert np.abs(r.auto - render_auto(r, *r.tiles)).max() < 1e-5
