"""PS-NN (core.models.psnn): post-processing oracles, retrieval, causality, chunking, the builder,
the file format, and the shipped model file."""
import threading

import numpy as np
import pytest
import soundfile as sf

from core.errors import Cancelled, ParameterError
from core.models import psnn
from core.models.base import list_models, load_model, models_dir
from core.ps import IC_TABLE, IID_TABLE, N_IC, PSParams, to_tokens
from core.stft import n_frames, stft
from training.psnn_build import build_index

from conftest import SR, noise, pan_mono, tone


def token(iid_db, ic):
    return int(np.flatnonzero(IID_TABLE == iid_db)[0]) * N_IC + int(np.argmin(np.abs(IC_TABLE - ic)))


def keys_of(x, kind="db-norm"):
    pw, mg = psnn.frame_stats(stft(x))
    return psnn.keys_from_power(psnn.causal_mean(pw)[0], psnn.causal_mean(mg)[0], kind)


def table_from(signals_and_tokens, kind="db-norm"):
    keys, toks = [], []
    for x, tok in signals_and_tokens:
        k = keys_of(x, kind)
        keys.append(k)
        toks.append(np.full(k.shape, tok, np.uint8) if np.isscalar(tok) else tok)
    return psnn.PSNNTable(np.concatenate(keys), np.concatenate(toks), kind)


# ----------------------------------------------------------------------------- post-processing

def test_sign_flip_removes_left_right_wobble():
    v = np.linspace(-8, 12, 34)
    cols = np.stack([v, -v, v, -v, -v], axis=1)
    p = np.concatenate([cols, np.full((34, 5), 0.5)])
    out, state = psnn.postprocess(p, smoothing=0.0)
    assert np.allclose(out[:34], v[:, None])            # every column flipped back to the first
    assert np.allclose(out[34:], 0.5)                    # IC untouched
    # the state carries the corrected column into the next chunk: -v arrives, is flipped to v
    out2, _ = psnn.postprocess(np.concatenate([-v[:, None], [[0.5]] * 34]), state, smoothing=0.0)
    assert np.allclose(out2[:34, 0], v)


def test_no_flip_when_the_column_is_already_closer():
    a, b = np.linspace(1, 5, 34), np.linspace(2, -1, 34)   # a . b > 0
    assert a @ b > 0
    p = np.concatenate([np.stack([a, b], 1), np.ones((34, 2))])
    out, _ = psnn.postprocess(p, smoothing=0.0)
    assert np.allclose(out[:34, 1], b)


def test_exponential_smoothing_step_response():
    p = np.zeros((68, 60))
    p[34:, 1:] = 1.0                                     # IC rows: 0 then a step to 1
    out, _ = psnn.postprocess(p)
    j = np.arange(60)
    assert np.allclose(out[34, :], np.where(j == 0, 0.0, 1.0 - 0.95 ** j), atol=1e-6)
    # the filter state continues across chunks exactly
    a, st = psnn.postprocess(p[:, :25])
    b, _ = psnn.postprocess(p[:, 25:], st)
    assert np.allclose(np.concatenate([a, b], 1), out, atol=1e-6)


def test_causal_mean_matches_brute_force(rng):
    x = rng.random((3, 50))
    m, _ = psnn.causal_mean(x, n=20)
    ref = np.stack([x[:, max(0, t - 19): t + 1].mean(1) for t in range(50)], 1)
    assert np.allclose(m, ref)
    a, h = psnn.causal_mean(x[:, :7], n=20)
    b, _ = psnn.causal_mean(x[:, 7:], h, n=20)
    assert np.allclose(np.concatenate([a, b], 1), ref)


# ----------------------------------------------------------------------------- retrieval

@pytest.fixture(scope="module")
def two_tone_model():
    low, high = tone(440, 2.0), tone(5000, 2.0)
    return psnn.PSNNModel(table_from([(low, token(10, 0.60092)), (high, token(-6, 0.36764))]))


def test_retrieves_the_stored_parameters(two_tone_model):
    p = two_tone_model.predict(tone(440, 1.5))
    assert p.iid.shape == (34, n_frames(int(1.5 * SR)))
    assert np.allclose(p.iid, 10.0) and np.allclose(p.ic, np.float32(0.60092))


@pytest.mark.parametrize("kind", ["mag", "db"])
def test_other_key_domains_retrieve_too(kind):
    m = psnn.PSNNModel(table_from([(tone(440, 2.0), token(10, 1.0)), (tone(5000, 2.0), token(-6, 0.0))], kind))
    assert m.key_kind == kind
    p = m.predict(tone(5000, 1.0))
    assert np.allclose(p.iid, -6.0) and np.allclose(p.ic, 0.0)


def test_switch_is_sign_corrected_and_smoothed(two_tone_model):
    x = np.concatenate([tone(440, 2.0), tone(5000, 4.0)])
    p = two_tone_model.predict(x)
    # the second sound's IID (-6 dB in every band) is flipped to +6, closer to the previous +10
    assert np.allclose(p.iid[:, -1], 6.0, atol=1e-3)
    assert np.allclose(p.ic[:, -1], np.float32(0.36764), atol=1e-3)
    d = np.abs(np.diff(p.iid, axis=1)).max()
    assert d <= 0.05 * 4.0 + 1e-4                       # smoothing 0.95: at most 5 % of the 4 dB jump


def test_level_normalized_keys_ignore_the_input_level(busy_model, rng):
    x = noise(rng, 3.0) * np.linspace(0.1, 1.0, 3 * SR).astype(np.float32) + tone(300, 3.0)
    a, b = busy_model.predict(x), busy_model.predict(0.05 * x)
    same = np.all(np.isclose(a.iid, b.iid, atol=1e-3), axis=0)
    assert same.mean() > 0.95
    k = psnn.keys_from_power(np.array([[1.0, 100.0], [4.0, 400.0]]), None, "db-norm")
    assert np.allclose(k[0], k[1], atol=1e-4) and np.allclose(k[0], [-3.0103, 3.0103], atol=1e-3)


def test_silence_gives_a_mono_image(two_tone_model):
    p = two_tone_model.predict(np.zeros(SR, np.float32))
    assert np.all(p.iid == 0.0) and np.all(p.ic == 1.0)


@pytest.fixture(scope="module")
def busy_model():
    rng = np.random.default_rng(5)
    x = noise(rng, 4.0) * np.repeat(rng.uniform(0.05, 1.0, 40), int(0.1 * SR)).astype(np.float32)
    x = x + tone(300, 4.0) * np.repeat(rng.uniform(0, 1, 8), SR // 2).astype(np.float32)
    k = keys_of(x)
    toks = rng.integers(0, 248, k.shape).astype(np.uint8)
    return psnn.PSNNModel(psnn.PSNNTable(k, toks, "db-norm"))


def test_chunked_prediction_equals_one_pass(busy_model, monkeypatch, rng):
    x = noise(rng, 3.0) * np.linspace(0.1, 1.0, 3 * SR).astype(np.float32) + tone(300, 3.0)
    whole = busy_model.predict(x)
    monkeypatch.setattr(psnn, "CHUNK", 37)
    parts = busy_model.predict(x)
    assert np.allclose(whole.iid, parts.iid, atol=1e-4) and np.allclose(whole.ic, parts.ic, atol=1e-5)


def test_prediction_is_causal(busy_model, rng):
    x = noise(rng, 3.0) + tone(300, 3.0)
    y = x.copy()
    cut = 2 * SR
    y[cut:] = tone(3000, 1.0)
    a, b = busy_model.predict(x), busy_model.predict(y)
    last_same = (cut - 2048) // 1024                     # frames whose window ends before the cut
    assert np.array_equal(a.iid[:, :last_same + 1], b.iid[:, :last_same + 1])
    assert not np.allclose(a.iid[:, -1], b.iid[:, -1])


def test_interface_determinism_progress_and_cancel(busy_model, rng):
    x = noise(rng, 2.0)
    seen = []
    a = busy_model.predict(x, seed=0, progress=seen.append)
    b = busy_model.predict(x, seed=123, temperature=2.0, guidance=1.0)
    assert isinstance(a, PSParams) and a.iid.dtype == np.float32
    assert np.array_equal(a.iid, b.iid) and np.array_equal(a.ic, b.ic)
    assert seen and seen[-1].done == seen[-1].total == n_frames(len(x))
    ev = threading.Event()
    ev.set()
    with pytest.raises(Cancelled):
        busy_model.predict(x, cancel=ev)
    with pytest.raises(ParameterError):
        busy_model.predict(np.zeros((100, 2), np.float32))


# ----------------------------------------------------------------------------- building and files

@pytest.fixture(scope="module")
def stereo_folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("stereo")
    rng = np.random.default_rng(3)
    sf.write(d / "a.wav", pan_mono(tone(440, 3.0) + noise(rng, 3.0, amp=0.003), 10.0), SR, subtype="FLOAT")
    quiet_then_noise = np.concatenate([np.zeros(SR, np.float32), noise(rng, 3.0)])
    sf.write(d / "b.wav", pan_mono(quiet_then_noise, -6.0), SR, subtype="FLOAT")
    return d


def test_build_index_from_real_files(stereo_folder):
    t = build_index(stereo_folder, n_pairs=120, seed=1, swap=False)
    assert t.keys.shape == t.tokens.shape == (120, 34)
    vals = t.values()
    assert set(np.unique(vals[:, :34])) <= {10.0, -6.0}      # the panning of each file, exactly
    assert np.allclose(vals[:, 34:], 1.0)                       # panned mono: fully coherent
    assert np.all(np.isfinite(t.keys)) and t.keys.min() > -60.0  # no digitally silent windows
    again = build_index(stereo_folder, n_pairs=120, seed=1, swap=False)
    assert np.array_equal(t.keys, again.keys) and np.array_equal(t.tokens, again.tokens)
    swapped = build_index(stereo_folder, n_pairs=120, seed=1, swap=True).values()[:, 0]
    assert set(np.unique(swapped)) <= {10.0, -10.0, 6.0, -6.0} and (swapped < 0).any() and (swapped > 0).any()
    # end to end: the tone's mono retrieves the tone's panning
    p = psnn.PSNNModel(t).predict(tone(440, 1.0) + noise(np.random.default_rng(9), 1.0, amp=0.003))
    assert np.allclose(p.iid, 10.0) and np.allclose(p.ic, 1.0)


def test_build_skips_duplicates_and_copies_of_the_evaluation_split(tmp_path, stereo_folder):
    (tmp_path / "b-link.wav").symlink_to(stereo_folder / "b.wav")
    (tmp_path / "a-link.wav").symlink_to(stereo_folder / "a.wav")
    rows = [("train", str(stereo_folder / "a.wav")), ("train", "a-link.wav"), ("train", "b-link.wav"),
            ("valid", str(stereo_folder / "b.wav"))]
    (tmp_path / "manifest.tsv").write_text("split\tpackage\tpath\tsamplerate\tchannels\tseconds\n" + "".join(
        f"{s}\tx\t{p}\t44100\t2\t3.0\n" for s, p in rows))
    t = build_index(tmp_path, n_pairs=60, seed=0, swap=False)
    assert t.meta["tracks"] == 1 and t.meta["duplicates_skipped"] == 1
    assert t.meta["copies_of_other_splits_skipped"] == 1
    assert np.all(t.values()[:, :34] == 10.0)                 # only a.wav: b.wav is evaluation data


def test_save_load_round_trip(tmp_path, busy_model):
    t = busy_model.table
    path = t.save(tmp_path / "ps-nn.npz")
    u = psnn.PSNNTable.load(path)
    assert np.array_equal(u.tokens, t.tokens) and u.key_kind == "db-norm"
    step = np.maximum(psnn.KEY_STEP_DB, (t.keys.max(0) - t.keys.min(0)) / 255)
    assert np.all(np.abs(u.keys - t.keys) <= step / 2 + 1e-4)
    ok, why = psnn.available(tmp_path)
    assert ok and why == ""
    ok, why = psnn.available(tmp_path / "nowhere")
    assert not ok and "not found" in why


def test_inverted_file_index_equals_exact_search_when_all_lists_are_probed(tmp_path, busy_model, rng):
    ivf = busy_model.table.clustered(4, seed=0)
    assert ivf.list_sizes.sum() == busy_model.table.keys.shape[0] and ivf.centroids.shape == (4, 34)
    x = noise(rng, 3.0) * np.linspace(0.1, 1.0, 3 * SR).astype(np.float32) + tone(300, 3.0)
    exact = busy_model.predict(x)
    approx = psnn.PSNNModel(ivf, nprobe=4).predict(x)
    assert np.allclose(exact.iid, approx.iid, atol=1e-4) and np.allclose(exact.ic, approx.ic, atol=1e-5)
    back = psnn.PSNNTable.load(ivf.save(tmp_path / "ivf.npz"))
    assert np.array_equal(back.list_sizes, ivf.list_sizes) and np.allclose(back.centroids, ivf.centroids)
    assert psnn.PSNNModel(back).index.nprobe == psnn.NPROBE


# ----------------------------------------------------------------------------- the shipped model

SHIPPED = models_dir() / psnn.FILE_NAME


@pytest.mark.skipif(not SHIPPED.exists(), reason="resources/models/ps-nn.npz not built yet")
def test_shipped_model_loads_fast_and_predicts_plausibly():
    assert SHIPPED.stat().st_size <= 8_000_000
    m = psnn.load(models_dir())                            # load time: bench/bench_psnn.py
    assert m.table.keys.shape[0] >= 100_000 and m.table.meta["split"] == "train"
    assert "ps-nn" in [i.name for i in list_models()]
    reg = load_model("ps-nn")
    assert reg.name == "ps-nn" and reg.generative is False
    x = sf.read(str(models_dir().parent / "demo" / "feelings-mono.flac"), dtype="float32")[0]
    x = x[: 15 * SR] if x.ndim == 1 else x[: 15 * SR].mean(1)
    p = reg.predict(x, seed=3)
    assert p.iid.shape == (34, n_frames(len(x)))
    assert np.all(np.isfinite(p.iid)) and np.all(np.abs(p.iid) <= 50) and np.all(np.abs(p.ic) <= 1)
    assert 0.2 < p.ic.mean() < 0.98                        # some width, not fully decorrelated
    assert p.iid.std() > 0.5                               # sources are panned, not all centred
    assert np.abs(np.diff(p.iid, axis=1)).mean() < 1.0     # smooth over time (no wobble)
    q = reg.predict(x, seed=4)
    assert np.array_equal(p.iid, q.iid)
