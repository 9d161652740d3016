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


def _exported(s, tmp_path, name):
    """The export of the session's state (32-bit float WAV, the output gain applied), read back."""
    import soundfile as sf

    from app.export import export
    path = tmp_path / f"{name}.wav"
    export(s, path, fmt="wav32f", project=False, overwrite=True)
    y, _ = sf.read(str(path), dtype="float32")
    return y


def test_new_rendition_from_the_playhead_plays_at_once_and_equals_the_export(tmp_path, play):
    from core.renderer import render_auto
    s = _session(tmp_path)
    s.new_rendition(0)
    s.plan_output()                                                  # an output gain other than 0 dB
    assert abs(s.stage.gain_db) > 0.01
    eng = s.mix_engine()
    head = 44100 * 2 + 77
    eng.seek(head)
    eng.settle()
    eng.playing = True
    detail = s.shared_detail()
    assert detail == 0
    plan = s.plan_rendition(seed=5, detail=detail, playhead=head)
    assert plan.rendition.detail == 0 and plan.rendition.ps_key == s.renditions[0].ps_key
    assert all(r.auto is None for r in plan.renders)                # its mix (running ahead), no pair
    first = plan.mix.buf[head:head + 2048].copy()
    s.adopt_rendition(plan)
    assert eng.snapshot.bus is plan.mix.buf and not eng.snapshot.auto.any()            # one buffer swapped in
    play(eng, 1)                                                    # the switch: crossfaded
    s.wait_filled()
    fresh = s.render()                                               # a fresh render of that state
    assert plan.mix.filled.is_set() and np.array_equal(plan.mix.buf, fresh)
    assert np.array_equal(first, fresh[head:head + 2048])            # its first block too
    for r in s.renders:                                              # the pairs, made behind it, for edits
        assert not r.pending and np.abs(r.auto - render_auto(r, *r.tiles)).max() < 1e-5
    s.plan_output()                                                  # its output gain (from its kept mix)
    eng.set_snapshot(s.snapshot())
    assert eng.snapshot.bus is plan.mix.buf
    play(eng, 1)
    heard = play(eng, 4)                                            # what is heard is the export, bit for bit
    y = _exported(s, tmp_path, "new")
    assert np.array_equal(heard, y[head + 1024:head + 1024 + len(heard)])


def test_switching_back_and_undo_swap_the_kept_mix_and_play_the_export(tmp_path, play):
    from app.memory import restore_needs_render
    s = _session(tmp_path)
    s.new_rendition(0)
    eng = s.mix_engine()
    eng.seek(30000)
    eng.settle()
    eng.playing = True
    s.adopt_rendition(s.plan_rendition(seed=1, detail=0, playhead=eng.position))
    s.wait_filled()
    a = s.mixes.find(s.renders, s.placements, False)
    s.adopt_rendition(s.plan_rendition(seed=2, detail=0, playhead=eng.position))
    s.wait_filled()
    b = s.mixes.find(s.renders, s.placements, False)
    assert a is not None and b is not None and a is not b and len(s.mixes) >= 2
    plan = s.plan_rendition(index=1, playhead=eng.position)          # back to rendition 2: nothing to make
    assert plan.mix is None
    s.adopt_rendition(plan)
    assert s.current == 1 and eng.snapshot.bus is a.buf
    s.plan_output()
    eng.set_snapshot(s.snapshot())
    play(eng, 1)
    at = eng.position
    heard = play(eng, 3)
    assert np.array_equal(heard, _exported(s, tmp_path, "back")[at:at + len(heard)])
    assert not restore_needs_render(s)                                # the state before: its mix is kept
    s.undo.undo()
    assert s.current == 2 and eng.snapshot.bus is b.buf
    s.plan_output()
    eng.set_snapshot(s.snapshot())
    play(eng, 1)
    at = eng.position
    heard = play(eng, 3)
    assert np.array_equal(heard, _exported(s, tmp_path, "undo")[at:at + len(heard)])
    # an edit plays the sources one by one (their pairs), within float rounding of the export
    s.set_placement(0, s.placements[0].moved(-0.7, 0.2))
    snap = s.snapshot()
    eng.set_snapshot(snap)
    assert snap.bus is None and all(p is not None for p, pl in zip(snap.pairs, s.placements) if not pl.pinned)
    s.wait_filled()
    y = _exported(s, tmp_path, "edit")
    eng.set_snapshot(s.snapshot())                                   # with the gain the export measured
    assert eng.snapshot.bus is None
    play(eng, 1)
    at = eng.position
    heard = play(eng, 3)
    assert np.abs(heard - y[at:at + len(heard)]).max() < 1e-5


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
    s.mixes.keep_bytes = 0                                           # and mix
    s.new_rendition(0)
    before = list(s.renders)
    s.new_rendition(1, detail=0)
    assert all(r.auto is None for r in before) and restore_needs_render(s)
    plan = plan_restore(s, playhead=44100)
    assert all(r.auto is None for r in before) and plan.mix is not None   # nothing changed yet
    plan.adopt(s)
    assert s.current == 0 and all(a is b for a, b in zip(s.renders, before))
    s.mix_engine()
    s.wait_filled()
    assert np.array_equal(plan.mix.buf, s.render())
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


def test_a_rendition_planned_ahead_equals_one_made_at_the_press(tmp_path):
    s = _session(tmp_path)
    s.new_rendition(0)
    s.set_placement(1, s.placements[1].moved(0.5, 0.4))             # a pinned source stays where it is
    s.prefetch(1)
    assert s.wait_ahead(120)
    s._prefetching.join()                                            # (then its own detail, planned again)
    ready = s._ready
    assert ready is not None and ready[0].seed == 1 and ready[0].detail is None
    plan = s.plan_rendition(seed=1, detail=s.detail_for(1), playhead=1000)
    assert plan.renders is ready[4] and s._ready is None            # the prepared one, taken once
    fresh = s.plan_rendition(seed=1, detail=ready[0].detail, playhead=1000)
    assert fresh.renders is not ready[4]
    assert plan.rendition == fresh.rendition and plan.placements == fresh.placements
    assert plan.placements[1] == s.placements[1]
    for a, b in zip(plan.renders, fresh.renders):
        assert np.array_equal(a.tiles[0], b.tiles[0]) and np.array_equal(a.tiles[1], b.tiles[1])
    s.adopt_rendition(plan)
    s.wait_filled()
    assert np.array_equal(plan.mix.buf, s.render())
    # a plan for another state (another current rendition) is not taken
    s.prefetch(2)
    assert s.wait_ahead(120)
    s._prefetching.join()
    s.recall(0)
    assert s.plan_rendition(seed=2, detail=s._ready[0].detail).renders is not s._ready[4]
    s._prefetching.join()


def test_switching_to_a_rendition_whose_pairs_were_released_reuses_its_tiles(tmp_path):
    from core.renderer import render_auto
    s = _session(tmp_path)
    s.memory.keep_bytes = 0                                          # only the current state's pairs
    s.mixes.keep_bytes = 0                                           # and mix
    s.new_rendition(0)
    first = list(s.renders)
    s.new_rendition(1, detail=0)
    assert all(r.auto is None for r in first)
    plan = s.plan_rendition(index=0, playhead=44100)
    assert all(a is b for a, b in zip(plan.renders, first)) and plan.mix is not None
    assert all(r.auto is None for r in first)                        # nothing installed before adopting
    s.adopt_rendition(plan)
    s.wait_filled()
    assert np.array_equal(plan.mix.buf, s.render())
    for r in s.renders:
        assert np.abs(r.auto - render_auto(r, *r.tiles)).max() < 1e-5


@pytest.mark.parametrize("mono_compatible", [False, True])
def test_renditions_mixed_together_equal_each_alone(scene, mono_compatible):
    """mix_streams (several renditions of the same sources, each source transformed once per
    chunk) gives every rendition the bits mix_stream gives it alone; a rendition with every source
    pinned rides along on the same grid."""
    from core.renderer import mix_stream, mix_streams
    from dataclasses import replace
    renders, params, _ = scene
    sets, places = [], []
    for centres in ([(0.3, 0.2), (-0.4, 0.5), (0.0, 0.1), (0.6, 0.4)], [(-0.2, 0.7), (0.5, 0.1), (0.1, 0.3), (0.0, 0.9)]):
        rs = [replace(r) for r in renders]
        auto_renders(rs, params, np.array(centres), mono_compatible=mono_compatible, pairs=False)
        sets.append(rs)
        places.append([Placement(p, w) for p, w in centres])
    places[1][2] = Placement(-0.3, 0.2, pinned=True, gain_db=-3.0)        # pinned among auto ones
    sets.append([replace(r) for r in renders])
    places.append([Placement(0.2 * i, 0.3, pinned=True) for i in range(len(renders))])
    n = len(renders[0].s)
    together = [np.zeros((n, 2), np.float32) for _ in sets]
    for lo, blocks in mix_streams(sets, places, mono_compatible=mono_compatible, chunk=200):
        for acc, b in zip(together, blocks):
            acc[lo:lo + len(b)] = b
    for rs, ps, got in zip(sets, places, together):
        alone = np.zeros((n, 2), np.float32)
        for lo, b in mix_stream(rs, ps, mono_compatible=mono_compatible, chunk=200):
            alone[lo:lo + len(b)] = b
        assert np.array_equal(got, alone)


def test_a_mix_being_made_goes_on_from_where_the_person_seeks(scene, monkeypatch):
    """A seek into a part of a state's mix not made yet: the fill jumps there (instead of playing
    silence there until it comes round), then makes the parts it skipped; the whole is the export's
    bits."""
    from app import mixes
    from app.mixes import StateMix
    from core import listening
    from core.listening import FillOrder
    renders, params, centres = scene
    auto_renders(renders, params, centres)
    pl = PLACES[1]
    fast = mix(renders, pl)
    n = len(fast)
    head = [None]
    order = []
    real_mark = FillOrder.mark

    def mark(self, a, b):
        order.append(a)
        if a == 0 and b < n // 2:                # after the first block: the person seeks ahead
            head[0] = n - 30000
        real_mark(self, a, b)

    monkeypatch.setattr(FillOrder, "mark", mark)
    monkeypatch.setattr(mixes, "MIX_CHUNK", 16)                    # (3 s: blocks of 0.4 s)
    listening.follow(lambda: head[0])
    try:
        m = StateMix(renders, pl, False).start(0, first_frames=4)
        assert m.run()
    finally:
        listening.follow(None)
    assert order[0] == 0 and order.index(n - 30000) == 2          # the sought part after the chunk in hand
    assert order[-1] < n - 30000 and sorted(order) != order       # then the skipped middle
    assert np.array_equal(m.buf, fast)


def test_a_mix_being_made_without_a_listener_or_with_the_playhead_just_ahead_goes_in_order(scene, monkeypatch):
    from app import mixes
    from app.mixes import StateMix
    from core import listening
    from core.listening import FOLLOW_AHEAD
    monkeypatch.setattr(mixes, "MIX_CHUNK", 16)
    renders, params, centres = scene
    auto_renders(renders, params, centres)
    pl = PLACES[0]
    fast = mix(renders, pl)
    for head in (None, 5000):
        m = StateMix(renders, pl, False).start(3000, first_frames=4)
        listening.follow(lambda: head)
        try:
            assert m.run()
        finally:
            listening.follow(None)
        assert m.order.made == [[0, len(fast)]] and np.array_equal(m.buf, fast)
    assert 5000 - 3000 < FOLLOW_AHEAD


def test_pairs_being_made_go_on_from_where_the_person_seeks(scene, monkeypatch):
    """The sources' pairs (an edit's, made from the playhead) are made a part at a time for every
    source together; a seek into a part not made yet is made next; each pair is render_auto's."""
    from core import listening
    from core.listening import FillOrder
    from core.renderer import PairFiller, render_auto
    renders, params, centres = scene
    auto_renders(renders, params, centres, pairs=False)
    for r in renders:
        r.auto = None
    n = len(renders[0].s)
    head, order = [None], []
    real_mark = FillOrder.mark

    def mark(self, a, b):
        order.append(a)
        if len(order) == 2:                                       # after the first part: a seek back
            head[0] = 5000
        real_mark(self, a, b)

    monkeypatch.setattr(FillOrder, "mark", mark)
    listening.follow(lambda: head[0])
    try:
        filler = PairFiller(renders, start=n // 2, chunk=16, first_frames=4).start_pairs()
        assert all(r.pending for r in renders)
        filler.run()
    finally:
        listening.follow(None)
    assert order[0] == n // 2 and order[2] == 5000                # the sought part right after the one in hand
    assert all(not r.pending for r in renders)
    for r in renders:
        ref = render_auto(r, *r.tiles)
        assert np.abs(r.auto - ref).max() < 1e-5 * max(1.0, np.abs(ref).max())
