"""Mono-compatible mode: (L + R) / 2 equals the input to float rounding, while the targets hold."""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core import audio
from core.bands import N_BANDS
from core.decoder import decode, side_coefficients
from core.placement import Placement
from core.ps import PSParams, analyze
from core.renderer import mix, pinned_coefficients, prepare_source
from core.stft import n_frames
from app.export import export
from app.project_io import load_project

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo" / "feelings-mono.flac"
FOLD_TOL = 10 ** (-100 / 20)  # -100 dBFS: well below the -90 dBFS target, well above float32 rounding


def _const(iid, ic, t):
    return PSParams(np.full((N_BANDS, t), iid, np.float32), np.full((N_BANDS, t), ic, np.float32))


def test_closed_form_meets_iid_and_ic_exactly():
    iid = np.linspace(-50, 50, 21)[:, None] * np.ones((1, 11))
    ic = np.ones((21, 1)) * np.linspace(0, 1, 11)[None, :]
    a, b = (v.astype(np.float64) for v in side_coefficients(iid, ic))
    pl, pr, cross = (1 + a) ** 2 + b ** 2, (1 - a) ** 2 + b ** 2, 1 - a ** 2 - b ** 2
    inner = np.abs(iid) <= 30          # beyond, float32 coefficients limit the IID's precision
    assert np.allclose((10 * np.log10(pl / pr))[inner], iid[inner], atol=1e-3)
    assert np.allclose(cross / np.sqrt(pl * pr), ic, atol=1e-4)
    # the side never exceeds the mid (a^2 + b^2 <= 1); a centred coherent source has no side
    assert np.all(a ** 2 + b ** 2 <= 1 + 1e-6)
    assert abs(a[10, -1]) < 1e-7 and abs(b[10, -1]) < 1e-7
    # negative IC is clamped at 0 (a side louder than the mid would be needed)
    a2, b2 = side_coefficients(np.array([0.0, 6.0]), np.array([-0.5, -1.0]))
    a0, b0 = side_coefficients(np.array([0.0, 6.0]), np.array([0.0, 0.0]))
    assert np.array_equal(a2, a0) and np.array_equal(b2, b0)


@pytest.mark.parametrize("iid,ic", [(0.0, 1.0), (6.0, 0.5), (-10.0, 0.0), (20.0, 0.9), (-50.0, 0.3)])
def test_decoder_folds_down_exactly_and_meets_targets(rng, signals, iid, ic):
    x = signals.noise(rng, 6.0, amp=0.1)
    y = decode(x, _const(iid, ic, n_frames(len(x))), mono_compatible=True)
    assert np.max(np.abs((y[:, 0] + y[:, 1]) / 2 - x)) < FOLD_TOL
    q = analyze(y)
    inner = slice(3, -3)
    if abs(iid) < 40:       # analysis of a channel 50 dB down is dominated by its leakage
        assert abs(np.median(q.iid[2:, inner]) - iid) < 0.3
    assert abs(np.median(q.ic[2:, inner]) - ic) < 0.05
    # normal decoder: at the chain's law (core.decoder.downmix_gain) it folds down to the input as well (IC >= 0
    # here), and to the same signal up to float rounding
    z = decode(x, _const(iid, ic, n_frames(len(x))))
    assert np.max(np.abs((z[:, 0] + z[:, 1]) / 2 - x)) < FOLD_TOL
    assert np.max(np.abs(z - y)) < 1e-3


def test_hard_panned_sources_fold_down_to_their_sum(rng, signals):
    n = 3 * 44100
    srcs = [signals.harmonic_note(110.0, 3.0), signals.chirp(200, 6000, 3.0, amp=0.3), signals.noise(rng, 3.0, amp=0.05)]
    srcs = [s[:n] for s in srcs]
    renders = [prepare_source(s) for s in srcs]
    places = [Placement(pan=-1.0, pinned=True), Placement(pan=1.0, width=0.0, pinned=True),
              Placement(pan=0.2, width=0.9, pinned=True)]
    y, stems = mix(renders, places, stems=True, mono_compatible=True)
    x = np.sum(srcs, axis=0)
    assert np.max(np.abs((y[:, 0] + y[:, 1]) / 2 - x)) < FOLD_TOL
    # a hard-left source is in L (about twice its stem: mid = side = s), R is 50 dB down (the IID
    # table's limit); hard right the other way round
    for k, (loud, quiet) in ((0, (0, 1)), (1, (1, 0))):
        peak = np.max(np.abs(srcs[k]))
        assert np.allclose(stems[k][:, loud], 2 * srcs[k], atol=0.01 * peak)
        ratio = np.max(np.abs(stems[k][:, quiet])) / np.max(np.abs(stems[k][:, loud]))
        assert ratio == pytest.approx(10 ** (-50 / 20), rel=1e-3)
    # the pinned coefficient law: a + c = 2, b + d = 0
    c = pinned_coefficients(places[2], mono_compatible=True)
    assert abs(c[0] + c[2] - 2) < 1e-6 and abs(c[1] + c[3]) < 1e-7


def test_session_auto_mode_folds_down_and_exports(rng, signals, tmp_path):
    from app.session import Session
    from separation.base import Source, colour_for
    srcs = [signals.harmonic_note(220.0, 2.0), signals.noise(rng, 2.0, amp=0.05)]
    rec = tmp_path / "rec.wav"
    sf.write(str(rec), np.sum(srcs, axis=0), 44100, subtype="FLOAT")
    s = Session()
    s.open(rec)
    s.set_sources([Source(f"s{i}", x.copy(), colour_for(i)) for i, x in enumerate(srcs)])
    s.model = "decorr"
    s.new_rendition(0)
    s.placements[0] = Placement(pan=-0.5, width=0.5, pinned=True)   # one source pinned, one following the model
    normal = s.render()
    s.set_mono_compatible(True)
    y = s.render()
    assert np.max(np.abs((y[:, 0] + y[:, 1]) / 2 - s.mono)) < FOLD_TOL
    # the normal mode renders every tile at the power real stereo of its IID and IC has
    # (core.placement.downmix_gain): it folds down too wherever the IC is not far below 0 (Decorr's never is)
    assert np.max(np.abs((normal[:, 0] + normal[:, 1]) / 2 - s.mono)) < FOLD_TOL
    assert np.max(np.abs(normal - y)) < 1e-3
    res = export(s, tmp_path / "out.wav", fmt="wav32f", project=False)
    z, _ = sf.read(str(res.path), dtype="float32")
    g = 10 ** (res.gain_db / 20)
    assert np.max(np.abs((z[:, 0] + z[:, 1]) / 2 - g * s.mono)) < FOLD_TOL


@pytest.mark.skipif(not DEMO.exists(), reason="demo recording missing")
def test_real_music_folds_down_exactly():
    from core.models import load_model
    x = audio.load_mono(DEMO)[5 * 44100: 13 * 44100]
    params = load_model("decorr").predict(x, seed=0)
    y = decode(x, params, mono_compatible=True)
    assert np.max(np.abs((y[:, 0] + y[:, 1]) / 2 - x)) < FOLD_TOL
    # the stereo image is really there: the channels differ
    assert np.max(np.abs(y[:, 0] - y[:, 1])) > 0.05 * np.max(np.abs(x))


def test_project_keeps_the_mode_and_output_settings_and_render_remakes_it(rng, signals, tmp_path, capsys):
    from cli.main import main
    from app.output import OutputSettings
    from app.session import Session
    from separation.base import Source, colour_for
    srcs = [signals.harmonic_note(196.0, 2.0), signals.noise(rng, 2.0, amp=0.05)]
    rec = tmp_path / "rec.wav"
    sf.write(str(rec), np.sum(srcs, axis=0), 44100, subtype="FLOAT")
    out = tmp_path / "a.wav"
    assert main(["upmix", str(rec), "-o", str(out), "--method", "decorr", "--separator", "formation",
                 "--sources", "2", "--mono-compatible", "--ceiling", "-3", "--keep-loudness",
                 "--format", "wav32f"]) == 0
    capsys.readouterr()
    proj = out.with_suffix(".soundstage.json")
    s = load_project(proj)
    assert s.mono_compatible and s.output == OutputSettings(-3.0, True, True)
    again = tmp_path / "b.wav"
    assert main(["render", str(proj), "-o", str(again), "--format", "wav32f"]) == 0
    text = capsys.readouterr().out
    assert "mono-compatible" in text and "original's loudness" in text and "LUFS" in text
    a, _ = sf.read(str(out), dtype="float32")
    b, _ = sf.read(str(again), dtype="float32")
    assert np.array_equal(a, b)
    # a project written before the output stage keeps its -0.1 dBFS sample-peak ceiling
    assert OutputSettings.from_dict({"path": "x.wav", "ceiling_db": -0.1}) == OutputSettings(-0.1, False, False)
    # batch takes the same options
    from cli.main import build_parser
    from cli.commands.upmix import settings_from_args
    args = build_parser().parse_args(["batch", "in", "out", "--mono-compatible", "--ceiling", "-2"])
    st = settings_from_args(args)
    assert st.mono_compatible and st.ceiling_db == -2.0 and not st.keep_loudness


@pytest.mark.skipif(not DEMO.exists(), reason="demo recording missing")
def test_real_music_with_formation_sources_folds_down(tmp_path):
    from app.session import Session
    x = audio.load_mono(DEMO)[10 * 44100: 16 * 44100]
    rec = tmp_path / "demo-excerpt.wav"
    sf.write(str(rec), x, 44100, subtype="FLOAT")
    s = Session()
    s.open(rec)
    s.separate("formation", {})
    s.new_rendition(0, model="decorr")
    s.placements[0] = Placement(pan=-1.0, pinned=True)      # one source hard left
    s.set_mono_compatible(True, record=False)
    y = s.render()
    assert len(s.sources) >= 2
    assert np.max(np.abs((y[:, 0] + y[:, 1]) / 2 - s.mono)) < FOLD_TOL
    assert np.max(np.abs(y[:, 0] - y[:, 1])) > 0.05 * np.max(np.abs(x))
