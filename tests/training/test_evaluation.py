"""The evaluation runner (training.evaluation) and ``soundstage eval`` on generated stereo."""
import json

import numpy as np
import pytest
import soundfile as sf

from cli.main import main
from training.evaluation import Excerpt, evaluate, format_table, load_excerpts
from core.models import base
from core.ps import PSParams, analyze
from training.ps_metrics import d_f, rendition_error
from core.stft import n_frames

from conftest import SR, noise, pan_mono, tone


class LadderModel:
    """Generative stand-in: IID 0, IC = 1 - 0.2 * seed everywhere."""
    name = "ladder"
    generative = True

    def predict(self, mono, *, seed=0, temperature=None, guidance=None, progress=None, cancel=None):
        t = n_frames(len(mono))
        return PSParams(np.zeros((34, t)), np.full((34, t), 1.0 - 0.2 * seed))


@pytest.fixture
def ladder(monkeypatch):
    monkeypatch.setattr(base, "_CACHE", {})
    monkeypatch.setitem(base._REGISTRY, "ladder", base.ModelInfo(
        "ladder", "Ladder", "test model", loader=lambda d: LadderModel(), available=lambda d: (True, "")))
    return "ladder"


def constant_excerpts(n=2, seconds=1.0, ic=0.6, rng=None):
    mono = noise(rng or np.random.default_rng(0), seconds)
    t = n_frames(len(mono))
    return [Excerpt(f"ex{i}", mono, PSParams(np.zeros((34, t)), np.full((34, t), ic))) for i in range(n)]


def test_e_min_takes_the_best_of_k_and_d_f_pools_all_renditions(ladder):
    exs = constant_excerpts()
    one = evaluate(models=[ladder], k=1, excerpts=exs, roundtrip=False).row("ladder")
    three = evaluate(models=[ladder], k=3, excerpts=exs, roundtrip=False).row("ladder")
    assert one.e_min == pytest.approx(0.5 * 0.4)        # seed 0: IC 1 vs 0.6 on half the elements
    assert three.e_min == pytest.approx(0.0, abs=1e-6)  # seed 2 hits IC 0.6 exactly
    # generated IC pool {1, .8, .6} (34 perfectly correlated dims) vs a constant real pool of .6
    assert three.d_f == pytest.approx(34 * 0.2 ** 2 + 34 * np.var([1.0, 0.8, 0.6]), rel=1e-6)
    assert three.renditions == 3 and three.excerpts == 2


def test_deterministic_rows_and_the_stereo_rows(rng):
    exs = []
    for i, pan in enumerate((6.0, -3.0, 0.0)):
        st = pan_mono(tone(300 + 200 * i, 1.5) + noise(rng, 1.5, amp=0.05), pan)
        exs.append(Excerpt(f"ex{i}", st.mean(1), analyze(st)))
    res = evaluate(models=["mono", "decorr", "nonexistent"], k=4, excerpts=exs)
    mono = res.row("mono")
    neutral = [PSParams.neutral(e.real.n_frames) for e in exs]
    assert mono.e_min == pytest.approx(np.mean([rendition_error(e.real, n) for e, n in zip(exs, neutral)]))
    assert mono.d_f == pytest.approx(d_f([e.real for e in exs], neutral), rel=1e-6)
    assert mono.renditions == 1 and "deterministic" in mono.note
    assert res.row("decorr").e_min > 0
    assert res.row("stereo").e_min == 0.0 and res.row("stereo").d_f > 0
    assert res.row("roundtrip").e_min < 0.05             # panned mono survives decode + analysis
    assert ("nonexistent", "not a registered model") in res.skipped
    text = format_table(res)
    assert "Mono" in text and "Decorr" in text and "skipped nonexistent" in text


def test_a_failing_model_is_reported_not_fatal(ladder, monkeypatch):
    def boom(self, mono, **kw):
        raise RuntimeError("weights corrupt")
    monkeypatch.setattr(LadderModel, "predict", boom)
    res = evaluate(models=[ladder, "mono"], k=2, excerpts=constant_excerpts(), roundtrip=False)
    assert res.row("mono") is not None and res.row("ladder") is None
    assert res.skipped == [("ladder", "failed: RuntimeError: weights corrupt")]


def test_slow_models_use_few_excerpts(ladder, monkeypatch):
    monkeypatch.setattr("training.evaluation.SLOW_MODELS", ("ladder",))
    res = evaluate(models=[ladder], k=2, excerpts=constant_excerpts(n=5), ar_excerpts=2, roundtrip=False)
    assert res.row("ladder").excerpts == 2 and "first 2 excerpts" in res.row("ladder").note


def test_cli_eval_end_to_end(tmp_path, capsys, rng):
    data = tmp_path / "music"
    data.mkdir()
    for i, pan in enumerate((8.0, -4.0)):
        sf.write(data / f"s{i}.wav", pan_mono(tone(220 * (i + 1), 3.0) + noise(rng, 3.0, amp=0.1), pan),
                 SR, subtype="FLOAT")
    out = tmp_path / "res.json"
    rc = main(["-q", "eval", "--data", str(data), "--seconds", "2", "-K", "2", "--models", "mono,decorr",
               "--json", str(out)])
    text = capsys.readouterr().out
    assert rc == 0 and "Mono" in text and "Stereo" in text and "neighbouring 2 s" in text
    res = json.loads(out.read_text())
    assert res["k"] == 2 and res["excerpts"] == 2 and [r["name"] for r in res["rows"]][:2] == ["mono", "decorr"]
    assert main(["-q", "eval", "--data", str(data), "-K", "0"]) == 2


def test_copies_in_other_splits_are_left_out(tmp_path, rng):
    from training.datahash import copies_of, distinct
    from training.dataset import tracks
    from training.evaluation import load_excerpts
    (tmp_path / "a").mkdir()
    for i in range(3):
        sf.write(tmp_path / "a" / f"t{i}.wav", pan_mono(noise(rng, 2.5), 3.0 * i), SR, subtype="FLOAT")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "t0.wav").symlink_to(tmp_path / "a" / "t0.wav")     # the same file, linked
    (tmp_path / "b" / "t1.wav").write_bytes((tmp_path / "a" / "t1.wav").read_bytes())  # a byte copy
    rows = [("train", "a/t0.wav"), ("train", "a/t1.wav"), ("valid", "a/t2.wav"), ("valid", "b/t0.wav"),
            ("valid", "b/t1.wav"), ("train", "b/t1.wav")]
    (tmp_path / "manifest.tsv").write_text("split\tpackage\tpath\tsamplerate\tchannels\tseconds\n" + "".join(
        f"{s}\tx\t{p}\t44100\t2\t2.5\n" for s, p in rows))
    train, valid = tracks(tmp_path, "train"), tracks(tmp_path, "valid")
    assert [t.path.name for t in distinct(train)] == ["t0.wav", "t1.wav"]   # b/t1 repeats a/t1
    assert [str(t.path.relative_to(tmp_path)) for t in copies_of(valid, train)] == ["b/t0.wav", "b/t1.wav"]
    excluded = []
    exs = load_excerpts(tmp_path, "valid", 2.0, excluded=excluded)
    assert [e.name for e in exs] == ["t2"] and excluded == ["b/t0.wav", "b/t1.wav"]
    assert len(load_excerpts(tmp_path, "valid", 2.0, include_copies=True)) == 3


def test_several_excerpts_per_track(tmp_path, rng):
    sf.write(tmp_path / "long.wav", pan_mono(noise(rng, 7.0), 2.0), SR, subtype="FLOAT")
    sf.write(tmp_path / "short.wav", pan_mono(noise(rng, 3.0), -2.0), SR, subtype="FLOAT")
    exs = load_excerpts(tmp_path, "all", 2.0, per_track=3)
    # 7 s holds three 2-s excerpts centred at 7/6, 7/2 and 35/6 s; 3 s holds one
    assert [e.name for e in exs] == ["long@0s", "long@2s", "long@5s", "short"]
    assert all(len(e.mono) == 2 * SR for e in exs)
