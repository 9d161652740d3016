"""Issue 17, case 7: streaming decode, downmix, features and PS decoding give exactly what the
whole-signal code gives (so bounded memory changes no output); bench/bench_memory.py measures
the memory itself."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from cli.main import main
from core import audio
from core.decoder import decode
from core.decorrelator import allpass_cascade
from core.metrics import peak_ceiling
from core.models import features
from core.ps import PSParams
from core.stft import n_frames, stft
from core.streaming import AllpassStream, decode_stream

SR = 44100


def _params(rng, t):
    return PSParams(rng.uniform(-20, 20, (34, t)).astype(np.float32), rng.uniform(0, 1, (34, t)).astype(np.float32))


def test_allpass_stream_equals_the_cascade_bit_for_bit(rng):
    x = (0.2 * rng.standard_normal(3 * SR + 333)).astype(np.float32)
    ap, parts, i = AllpassStream(), [], 0
    for size in (1000, 77, 50000, 3, 20000, 1):        # rows cut anywhere, sections waiting for whole rows
        parts.append(ap.push(x[i:i + size]))
        i += size
    parts.append(ap.push(x[i:], last=True))
    assert np.array_equal(np.concatenate(parts), allpass_cascade(x))


@pytest.mark.parametrize("n, chunk", [(5000, 1024), (3 * SR + 17, 37), (2 * SR, 1024), (4096, 2)])
def test_decode_stream_equals_decode_bit_for_bit(rng, n, chunk):
    x = (0.2 * rng.standard_normal(n)).astype(np.float32)
    p = _params(rng, n_frames(n))
    blocks = list(decode_stream(x, p, chunk=chunk))
    assert [s for s, _ in blocks] == list(np.cumsum([0] + [len(b) for _, b in blocks[:-1]]))
    assert np.array_equal(np.concatenate([b for _, b in blocks]), decode(x, p, chunk=chunk))
    if chunk < 64:
        assert len(blocks) > 1                          # it did stream


def test_block_decoding_equals_whole_file_decoding(tmp_path, rng):
    for sr, ch, subtype, n in [(48000, 3, "FLOAT", 3 * (1 << 16) + 5), (22050, 1, "PCM_16", 70001),
                               (44100, 2, "PCM_24", (1 << 16) + 1)]:
        path = tmp_path / f"x{sr}.wav"
        sf.write(path, (0.3 * rng.standard_normal((n, ch))).astype(np.float32), sr, subtype=subtype)
        data, _ = sf.read(path, dtype="float32", always_2d=True)
        want = audio.resample(audio.to_mono(data), sr)
        assert np.array_equal(audio.load_mono(path), want), (sr, ch)


def test_chunked_features_equal_whole_spectrogram_features(rng, monkeypatch):
    monkeypatch.setattr(features, "FEATURE_CHUNK", 16)
    x = (0.2 * rng.standard_normal(SR)).astype(np.float32)
    spec = stft(x)
    assert np.array_equal(features.mono_features(x), features.pool_features(spec.real ** 2 + spec.imag ** 2))


@pytest.mark.parametrize("fmt, ext, extra", [("wav24", ".wav", []), ("flac", ".flac", []),
                                             ("wav24", ".wav", ["--mono-compatible", "--keep-loudness"])])
def test_upmix_output_equals_the_whole_signal_chain(tmp_path, rng, fmt, ext, extra):
    # Loud enough that the ceiling gain applies: the streamed plan must match plan_gain's.
    t = np.arange(3 * SR) / SR
    x = (1.5 * np.sin(2 * np.pi * 330 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))).astype(np.float32)
    src = tmp_path / "in.wav"
    sf.write(src, x, SR, subtype="FLOAT")
    out = tmp_path / f"out{ext}"
    assert main(["-q", "upmix", str(src), "-o", str(out), "--method", "decorr", *extra]) == 0
    from core.loudness import measure, plan_gain
    from core.models import load_model
    mono = audio.load_mono(src)
    mc = "--mono-compatible" in extra
    stereo = decode(mono, load_model("decorr").predict(mono), mono_compatible=mc)
    loud_in = measure(mono)
    plan = plan_gain(stereo, ceiling_db=-1.0, true_peak=True, measure_lufs=True,
                     target_lufs=loud_in.lufs_played if "--keep-loudness" in extra else None)
    assert plan.gain_db < 0
    stereo *= np.float32(10 ** (plan.gain_db / 20))
    ref = tmp_path / f"ref{ext}"
    audio.write(ref, stereo, fmt=fmt)
    assert out.read_bytes() == ref.read_bytes()


def test_streamed_loudness_equals_the_meter(rng):
    from core.loudness import measure
    from core.loudness import measure_stream
    for n, ch in [((1 << 20) + 1000, 2), (SR, 1)]:
        x = (0.3 * rng.standard_normal((n, ch))).astype(np.float32)
        x = x[:, 0].copy() if ch == 1 else x
        assert measure_stream(x, block=50001) == measure(x)


@pytest.mark.parametrize("mono_compatible", [False, True])
def test_decode_stream_mono_compatible(rng, mono_compatible):
    n = 2 * SR + 11
    x = (0.2 * rng.standard_normal(n)).astype(np.float32)
    p = _params(rng, n_frames(n))
    got = np.concatenate([b for _, b in decode_stream(x, p, chunk=40, mono_compatible=mono_compatible)])
    assert np.array_equal(got, decode(x, p, chunk=40, mono_compatible=mono_compatible))
