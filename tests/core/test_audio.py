import numpy as np
import pytest
import soundfile as sf

from core import audio
from core.errors import AudioError


def _write(path, x, sr, subtype=None):
    sf.write(str(path), x, sr, subtype=subtype)
    return path


@pytest.mark.parametrize("sr", [8000, 22050, 48000, 96000, 192000])
def test_any_rate_resampled_to_44k1(tmp_path, sr, signals):
    x = signals.tone(1000.0, 1.0, sr=sr)
    y = audio.load_mono(_write(tmp_path / f"t{sr}.wav", x, sr))
    assert y.dtype == np.float32 and abs(len(y) - 44100) <= 2
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    assert abs(np.argmax(spec) * 44100 / len(y) - 1000.0) < 3.0


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT"])
def test_bit_depths(tmp_path, subtype, signals):
    x = signals.tone(440.0, 0.5)
    y = audio.load_mono(_write(tmp_path / "b.wav", x, 44100, subtype))
    assert np.max(np.abs(y - x)) < (0.02 if subtype == "PCM_U8" else 1e-3)


def test_multichannel_downmix(tmp_path, rng):
    x = rng.standard_normal((44100, 6)).astype(np.float32) * 0.1
    y = audio.load_mono(_write(tmp_path / "six.wav", x, 44100))
    assert np.allclose(y, x.mean(axis=1), atol=1e-4)


@pytest.mark.parametrize("ext", ["flac", "ogg"])
def test_compressed_formats(tmp_path, ext, signals):
    x = signals.tone(440.0, 1.0)
    y = audio.load_mono(_write(tmp_path / f"c.{ext}", np.stack([x, x], 1), 44100))
    assert len(y) == len(x)


def _bad(tmp_path, kind):
    p = tmp_path / "bad.wav"
    if kind == "missing":
        return tmp_path / "nope.wav"
    if kind == "directory":
        return tmp_path
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "garbage":
        p.write_bytes(b"RIFF\x00\x00garbage" * 50)
    elif kind == "no samples":
        sf.write(str(p), np.zeros((0, 1), np.float32), 44100)
    elif kind == "short":
        sf.write(str(p), np.zeros(1000, np.float32), 44100)
    elif kind == "nan":
        x = np.zeros(44100, np.float32)
        x[100] = np.nan
        sf.write(str(p), x, 44100, subtype="FLOAT")
    elif kind == "inf":
        x = np.zeros(44100, np.float32)
        x[5] = np.inf
        sf.write(str(p), x, 44100, subtype="FLOAT")
    return p


@pytest.mark.parametrize("kind,words", [("missing", "no such file"), ("directory", "directory"),
                                        ("empty", "empty"), ("garbage", "unreadable"),
                                        ("no samples", "no audio"), ("short", "too short"),
                                        ("nan", "NaN"), ("inf", "NaN or infinite")])
def test_bad_input_gives_one_clear_error(tmp_path, kind, words):
    p = _bad(tmp_path, kind)
    with pytest.raises(AudioError) as exc:
        audio.load_mono(p)
    msg = str(exc.value)
    assert str(p) in msg and words in msg and "\n" not in msg


def test_write_is_atomic_and_refuses_input(tmp_path, signals):
    src = _write(tmp_path / "in.wav", signals.tone(440, 0.5), 44100)
    before = src.read_bytes()
    with pytest.raises(AudioError, match="over the input"):
        audio.write(src, np.zeros((100, 2)), overwrite=True, inputs=[src])
    assert src.read_bytes() == before
    out = audio.write(tmp_path / "out.flac", np.zeros((4410, 2)), fmt="flac")
    assert sf.info(str(out)).channels == 2
    with pytest.raises(AudioError, match="already exists"):
        audio.write(out, np.zeros((100, 2)), fmt="flac")
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []
