"""Issue 22: opening a recording plays stereo at once (the whole mix upmixed), and the sources'
mix takes over with a one-block crossfade, without a click."""
import tracemalloc

import numpy as np
import soundfile as sf

from app.playback import MixEngine, snapshot_for, whole_mix_engine
from core.placement import Placement

SR = 44100


def test_the_sources_engine_takes_over_from_the_whole_mix_with_a_crossfade(rng, play):
    n = SR
    mono = (0.3 * rng.standard_normal(n)).astype(np.float32)
    stereo = np.stack([mono * 0.9, mono * 0.4], axis=1).astype(np.float32)
    first = whole_mix_engine(mono, stereo)
    first.seek(1000)
    first.playing = True
    head = play(first, 2)
    assert np.array_equal(head, stereo[1000:1000 + 1024])            # the whole mix, as upmixed
    srcs = [mono * 0.5, mono * 0.5]
    new = MixEngine(srcs, srcs, snapshot_for([Placement(pan=-0.5, pinned=True), Placement(pan=0.5, pinned=True)],
                                             has_auto=[False, False]))
    ref_new = MixEngine(srcs, srcs, new.snapshot)
    ref_new.seek(first.position)
    ref_new.playing = True
    want_new = play(ref_new, 2)
    warm = MixEngine(srcs, srcs, new.snapshot)                        # a first take-over warms numpy up
    warm.take_over(whole_mix_engine(mono, stereo))
    warm.callback(np.zeros((512, 2), np.float32), 512)
    pos = first.position
    new.take_over(first)
    assert new.position == pos and new.playing
    buf = np.zeros((512, 2), np.float32)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    new.callback(buf, 512)                                           # the crossfade block
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak - base < 2048, peak - base                           # allocation-free: views only
    ramp = (np.arange(1, 513) / 512.0).astype(np.float32)[:, None]
    old = stereo[pos:pos + 512]
    assert np.abs(buf - (old * (1 - ramp) + want_new[:512] * ramp)).max() < 1e-6
    assert np.abs(buf[0] - old[0]).max() < 0.01                      # no jump at the seam
    assert not first.playing                                         # the old engine stopped
    rest = play(new, 1)
    assert np.abs(rest - want_new[512:]).max() < 1e-6                # then the sources' mix alone


def test_opening_plays_the_whole_mix_in_stereo_until_the_sources_are_placed(qtbot, tmp_path):
    from PyQt6.QtCore import QSettings

    from ui.controller import SessionController
    t = np.arange(3 * SR) / SR
    x = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 1.5 * t))
         + 0.05 * np.random.default_rng(0).standard_normal(len(t))).astype(np.float32)
    sf.write(str(tmp_path / "rec.wav"), x, SR, subtype="FLOAT")
    ctl = SessionController(settings=QSettings(str(tmp_path / "prefs.ini"), QSettings.Format.IniFormat))
    ctl.session.model = "decorr"
    ctl.open_file(tmp_path / "rec.wav")                              # "separate on open"
    qtbot.waitUntil(lambda: ctl.engine is not None, timeout=60000)
    eng = ctl.engine                                                 # heard while separating
    whole = ctl.session.whole_mix()
    assert eng.rows == 1 and eng.snapshot.pairs[0].shape == (len(x), 2)
    assert np.array_equal(eng.snapshot.pairs[0], whole)
    assert np.abs(whole[:, 0] - whole[:, 1]).max() > 0.01           # stereo, not the mono twice
    assert ctl.busy                                                  # the separation is running
    eng.set_loop(0, len(x))                                          # it plays on while the sources are found
    eng.playing = True
    qtbot.waitUntil(lambda: not ctl.busy and ctl.engine is not eng, timeout=120000)
    new = ctl.engine
    assert new.rows == len(ctl.session.sources) and new.playing and new.loop == eng.loop
    if new._from is not None:                                        # no device here: play the next block
        new.callback(np.zeros((512, 2), np.float32), 512)
    assert new._from is None and not eng.playing                     # crossfaded over one block, then stopped
    ctl.shutdown()
