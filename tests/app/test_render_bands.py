"""Auto sources rendered band by band: per-tile parameters heard, mono fold-down exact, preview ==
export, and renders released to save memory made again exactly."""
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from app.memory import KEEP_BYTES
from core.bands import N_BANDS, band_of_bin
from core.decoder import mixing_coefficients
from core.placement import downmix_gain, iid_to_pan, pan_to_iid, source_weights, tile_parameters
from core.ps import PSParams, analyze, band_energy
from core.renderer import mapped_on_file, prepare_source, render_auto
from core.stft import N_FFT, n_frames, stft
from app.memory import plan_restore, restore_needs_render

SR = 44100


def _band_of(freq: float) -> int:
    return int(band_of_bin()[int(round(freq * N_FFT / SR))])


def _two_tones(signals, seconds=2.0):
    lo, hi = 300.0, 3000.0
    x = signals.tone(lo, seconds, amp=0.3) + signals.tone(hi, seconds, amp=0.3)
    return x.astype(np.float32), _band_of(lo), _band_of(hi)


def _measured_iid(y, band, frames):
    a = analyze(y)
    return float(np.median(a.iid[band, frames]))


def test_per_band_parameters_are_heard_where_the_broadband_render_cancels(signals):
    x, b_lo, b_hi = _two_tones(signals)
    assert b_lo != b_hi
    r = prepare_source(x)
    t = n_frames(len(x))
    iid = np.zeros((N_BANDS, t), np.float32)
    iid[b_lo], iid[b_hi] = 12.0, -12.0               # the low tone left, the high tone right
    ic = np.ones((N_BANDS, t), np.float32)
    y = render_auto(r, iid, ic)
    mid = slice(8, t - 8)
    assert _measured_iid(y, b_lo, mid) == pytest.approx(12.0, abs=0.5)
    assert _measured_iid(y, b_hi, mid) == pytest.approx(-12.0, abs=0.5)
    # the same model parameters through the broadband "mean" projection: one pair of coefficients
    # per frame for the whole source, the two tones' opposite pans cancel to the centre
    params = PSParams(iid, ic)
    e = band_energy(stft(x))[None]
    bi, bc = tile_parameters(params, e)
    yb = render_auto(r, bi[0], bc[0])
    assert abs(_measured_iid(yb, b_lo, mid)) < 1.5 and abs(_measured_iid(yb, b_hi, mid)) < 1.5


def test_equal_parameters_in_every_tile_give_the_constant_mix(rng, signals):
    """Perfect reconstruction: the same coefficients in every tile are the broadband law exactly."""
    x = signals.harmonic_note(196.0, 1.5) + signals.noise(rng, 1.5, amp=0.05)
    r = prepare_source(x)
    t = n_frames(len(x))
    iid, ic = np.full((N_BANDS, t), -7.0, np.float32), np.full((N_BANDS, t), 0.4, np.float32)
    y = render_auto(r, iid, ic)
    g = downmix_gain(np.array([-7.0]), np.array([0.4]))[0]
    a, b, c, d = (v[0] * g for v in mixing_coefficients(np.array([-7.0]), np.array([0.4])))
    ref = np.stack([a * r.s + b * r.d, c * r.s + d * r.d], axis=1)
    assert np.max(np.abs(y - ref)) < 1e-5 * np.max(np.abs(ref)) + 1e-7


def test_mono_compatible_render_folds_down_to_the_stem(rng, signals):
    x = signals.chirp(100, 8000, 1.5, amp=0.4) + signals.noise(rng, 1.5, amp=0.05)
    r = prepare_source(x)
    t = n_frames(len(x))
    iid = rng.uniform(-40, 40, (N_BANDS, t)).astype(np.float32)     # every tile somewhere else
    ic = rng.uniform(-0.5, 1.0, (N_BANDS, t)).astype(np.float32)
    y = render_auto(r, iid, ic, mono_compatible=True)
    assert np.max(np.abs((y[:, 0] + y[:, 1]) / 2 - x)) < 1e-6
    assert np.max(np.abs(y[:, 0] - y[:, 1])) > 0.05                  # and it is stereo


def test_tile_parameters_sit_at_the_place_and_keep_the_detail(rng):
    t = 40
    e = rng.uniform(0.1, 1.0, (2, N_BANDS, t))
    tile_pan = np.clip(0.3 * rng.standard_normal((N_BANDS, t)), -0.6, 0.6)
    params = PSParams(pan_to_iid(tile_pan).astype(np.float32), rng.uniform(0.5, 0.9, (N_BANDS, t)).astype(np.float32))
    centres = np.array([[-0.3, 0.2], [0.25, 0.3]])
    iid, ic = tile_parameters(params, e, centres=centres, width_gain=1.0)
    w = source_weights(e)
    pan = iid_to_pan(iid)
    for i in range(2):
        # the weighted mean tile pan is the place's; the tiles keep their spread around it
        assert np.average(pan[i], weights=w[i]) == pytest.approx(centres[i, 0], abs=2e-3)
        assert np.std(pan[i] - tile_pan) < 1e-3
        # widths are scaled (the ratio within [1/2, 2]): the ordering of the tiles' widths is kept
        ratio = (1 - ic[i]) / (1 - params.ic)
        assert np.ptp(ratio) < 1e-4 and 0.5 - 1e-6 <= ratio.mean() <= 2 + 1e-6
        mean_w = np.average(1 - params.ic, weights=w[i])
        assert ratio.mean() == pytest.approx(np.clip(centres[i, 1] / mean_w, 0.5, 2.0), rel=1e-4)
    # the calibrated width gain multiplies the ratio; coherent tiles are never widened past IC 0
    wide = np.array([[-0.3, 0.6], [0.25, 0.7]])
    _, ic1 = tile_parameters(params, e, centres=wide, width_gain=1.0)
    _, ic_g = tile_parameters(params, e, centres=wide, width_gain=1.8, keep_sign=True)
    _, ic_free = tile_parameters(params, e, centres=wide, width_gain=1.8, keep_sign=False)
    assert np.min(ic_g) >= 0.0 and np.min(ic_free) < 0.0
    assert ic_g == pytest.approx(np.maximum(ic_free, 0.0), abs=1e-6)
    assert (1 - ic_free) == pytest.approx(1.8 * (1 - ic1), rel=1e-4)


# --- the session: preview == export, mode switches, renders released and made again ----------------

def _session(rng, signals, tmp_path):
    from app.session import Session
    from separation.base import Source, colour_for
    srcs = [signals.harmonic_note(110.0, 2.0, amp=0.4), signals.chirp(300, 5000, 2.0, amp=0.2),
            signals.noise(rng, 2.0, amp=0.05)]
    rec = tmp_path / "rec.wav"
    sf.write(str(rec), np.sum(srcs, axis=0), SR, subtype="FLOAT")
    s = Session()
    s.open(rec)
    s.set_sources([Source(f"s{i}", x.copy(), colour_for(i)) for i, x in enumerate(srcs)])
    s.model = "decorr"
    return s


def test_preview_plays_the_export_and_crossfades_between_renditions(rng, signals, tmp_path, play):
    s = _session(rng, signals, tmp_path)
    s.new_rendition(0)
    s.placements[1] = s.placements[1].moved(-0.6, 0.3)   # one pinned source among auto ones
    assert all(r.auto is not None and r.auto.shape == (len(s.mono), 2) for r in s.renders)
    eng = s.mix_engine()
    eng.set_snapshot(s.snapshot())
    eng.settle()
    eng.playing = True
    played = play(eng, 40)
    ref = s.render()[:len(played)]
    assert np.max(np.abs(played - ref)) < 1e-6
    # another rendition: the block of the switch crossfades, the next one is the new mix exactly
    old = s.render()
    s.new_rendition(1)
    start = eng.position
    nxt = play(eng, 2)
    new = s.render()[start:start + 1024]
    assert np.max(np.abs(nxt[512:] - new[512:])) < 1e-6
    ramp = np.arange(1, 513, dtype=np.float32)[:, None] / 512
    fade = (1 - ramp) * old[start:start + 512] + ramp * new[:512]
    assert np.max(np.abs(nxt[:512] - fade)) < 1e-5
    # unpinning the pinned source is the same one-block crossfade onto its auto render
    s.set_placement(1, replace(s.placements[1], pinned=False))
    eng.set_snapshot(s.snapshot())
    start = eng.position
    nxt = play(eng, 2)
    assert np.max(np.abs(nxt[512:] - s.render()[start + 512:start + 1024])) < 1e-6


def test_mono_compatible_session_engine_folds_down_and_undo_switches_back(rng, signals, tmp_path, play):
    s = _session(rng, signals, tmp_path)
    s.new_rendition(0)
    normal = s.render()
    eng = s.mix_engine()
    s.set_mono_compatible(True)
    assert all(r.mono_compatible for r in s.renders)
    eng.set_snapshot(s.snapshot())
    eng.settle()
    eng.playing = True
    played = play(eng, 30)
    assert np.max(np.abs((played[:, 0] + played[:, 1]) / 2 - s.mono[:len(played)])) < 1e-5
    assert np.max(np.abs(played - s.render()[:len(played)])) < 1e-6
    s.undo.undo()
    assert not s.mono_compatible and np.array_equal(s.render(), normal)


def test_released_renders_are_made_again_exactly(rng, signals, tmp_path):
    s = _session(rng, signals, tmp_path)
    s.new_rendition(0)
    first = s.render()
    first_pairs = [r.auto for r in s.renders]
    s.memory.keep_bytes = 2 * sum(r.auto_bytes for r in s.renders)   # the current state and one more
    s.new_rendition(1)
    s.new_rendition(2)
    # the first rendition's state is beyond the kept ones: its pairs are released, its tiles kept
    s.undo.undo()
    assert s.current == 1 and restore_needs_render(s)
    plan = plan_restore(s, )                  # worker side: renders only, the session is unchanged
    assert len(plan.pairs) == len(s.renders) and s.current == 1
    for (r, pair, _), ref in zip(plan.pairs, first_pairs):
        assert r.auto is None and np.array_equal(pair, ref)
    assert plan.adopt(s).label.startswith("new rendition")
    assert s.current == 0 and np.array_equal(s.render(), first)
    # without the worker step, the undo stack renders what it needs itself
    s.undo.redo()
    s.undo.redo()                            # the last rendition again: the first one is released
    assert s.current == 2 and all(r.auto is None for r, _, _ in plan.pairs)
    s.undo.undo()
    s.undo.undo()
    assert s.current == 0 and np.array_equal(s.render(), first)
    # the default budget keeps a few states of this short recording: nothing is released
    s.memory.keep_bytes = KEEP_BYTES
    s.undo.redo()
    s.undo.redo()
    assert not restore_needs_render(s) and all(r.auto is not None for r, _, _ in plan.pairs)


def test_reset_renders_only_that_source(rng, signals, tmp_path):
    s = _session(rng, signals, tmp_path)
    s.new_rendition(2)
    proposal, pairs = s.placements[0], [r.auto for r in s.renders]
    s.set_placement(0, proposal.moved(0.9, 0.9))
    plan = s.plan_reset(0)
    assert plan.renders[1] is s.renders[1] and plan.renders[2] is s.renders[2]
    s.adopt_reset(plan)
    assert s.placements[0] == proposal and np.array_equal(s.renders[0].auto, pairs[0])


def test_upmix_renditions_remake_byte_identically(rng, signals, tmp_path, capsys):
    """Every rendition of ``upmix --renditions 2 --variety 0.5`` re-made by ``render`` from its
    project: the same bytes (auto sources rendered band by band from the recorded seeds)."""
    from cli.main import main
    x = signals.harmonic_note(196.0, 2.0) + signals.chirp(300, 4000, 2.0, amp=0.2) + signals.noise(rng, 2.0, amp=0.03)
    rec = tmp_path / "rec.wav"
    sf.write(str(rec), x / np.abs(x).max() * 0.5, SR, subtype="PCM_24")
    out = tmp_path / "a.wav"
    assert main(["-q", "upmix", str(rec), "-o", str(out), "--method", "decorr", "--separator", "formation",
                 "--sources", "3", "--renditions", "2", "--variety", "0.5", "--format", "wav24"]) == 0
    made = [out, tmp_path / "a-seed1.wav"]
    for k, path in enumerate(made):
        again = tmp_path / f"again{k}.wav"
        assert main(["-q", "render", str(path.with_suffix(".soundstage.json")), "-o", str(again)]) == 0
        assert again.read_bytes() == path.read_bytes()
    assert made[0].read_bytes() != made[1].read_bytes()
    capsys.readouterr()


def test_auto_pairs_of_a_session_live_on_unlinked_files(rng, signals, tmp_path):
    """Long recordings: the pairs are mapped on files in the spill folder (the OS may page them out
    instead of holding them in RAM), nothing stays in the folder, and the sound is the same as
    with pairs in RAM."""
    from core.renderer import pair_buffer
    s = _session(rng, signals, tmp_path)
    spill = tmp_path / "renders"
    s.spill_dir = spill
    s.new_rendition(1)
    mapped = [r.auto for r in s.renders if r.has_auto]
    assert mapped and all(mapped_on_file(a) for a in mapped)
    assert list(spill.iterdir()) == []                   # unlinked at once
    y = s.render()
    s.spill_dir = None
    for r in s.renders:
        r.auto = None
    s.recall(s.current, record=False)
    assert not any(mapped_on_file(r.auto) for r in s.renders if r.has_auto)
    assert np.array_equal(s.render(), y)
    # a spill folder that cannot be made: the pair is kept in RAM
    blocker = tmp_path / "file"
    blocker.write_text("x")
    b = pair_buffer(100, blocker / "renders")
    assert b.shape == (100, 2) and not mapped_on_file(b)
