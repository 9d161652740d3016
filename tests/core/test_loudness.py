"""Integrated loudness (BS.1770) and true peak against signals with known answers."""
import json
import math

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import freqz

from cli.main import main
from core.errors import ParameterError
from core.loudness import DUAL_MONO_LU, integrated_lufs, measure, sample_peak_db, true_peak_db

# ITU-R BS.1770-4, Table 1 and 2: the K-weighting filter's two biquads as published for 48 kHz
_SHELF = ([1.53512485958697, -2.69169618940638, 1.19839281085285], [1.0, -1.69065929318241, 0.73248077421585])
_HIPASS = ([1.0, -2.0, 1.0], [1.0, -1.99004745483398, 0.99007225036621])


def _k_gain_db(f: float, sr: int = 48000) -> float:
    g = 1.0
    for b, a in (_SHELF, _HIPASS):
        _, h = freqz(b, a, worN=[f], fs=sr)
        g *= abs(h[0])
    return 20 * math.log10(g)


def _sine(f, seconds, sr, amp, phase=0.0):
    t = np.arange(int(seconds * sr)) / sr
    return amp * np.sin(2 * np.pi * f * t + phase)


def test_sine_at_minus_20_dbfs_reads_its_bs1770_value():
    # 1 kHz sine, peak 0.1 (-20 dBFS): mean square 0.005; BS.1770: L = -0.691 + 10 log10(K^2 * ms)
    sr = 48000
    expected = -0.691 + 10 * math.log10(0.005) + _k_gain_db(1000.0)
    assert expected == pytest.approx(-23.00, abs=0.01)    # one channel (mono)
    x = _sine(1000.0, 5.0, sr, 0.1)
    assert integrated_lufs(x, sr=sr) == pytest.approx(expected, abs=0.02)
    # the same sine in both channels of a stereo file: channel powers add, +3.01 LU
    assert integrated_lufs(np.stack([x, x], 1), sr=sr) == pytest.approx(expected + DUAL_MONO_LU, abs=0.02)
    # 44.1 kHz (the app's rate): the filters are re-derived for the rate, same answer
    assert integrated_lufs(_sine(1000.0, 5.0, 44100, 0.1)) == pytest.approx(expected, abs=0.02)


def test_gating_ignores_silence_and_short_input_is_an_error():
    sr = 48000
    x = _sine(1000.0, 20.0, sr, 0.1)
    # silence is gated out; the 3 + 3 blocks (of 197) that overlap an edge hold 25-75 % of the
    # energy, pass the relative gate and lower the mean by 10 log10(200 / 203) = -0.065 LU
    padded = np.concatenate([np.zeros(4 * sr), x, np.zeros(4 * sr)])
    assert integrated_lufs(padded, sr=sr) - integrated_lufs(x, sr=sr) == pytest.approx(-0.065, abs=0.03)
    assert integrated_lufs(np.zeros(sr), sr=sr) == -math.inf
    with pytest.raises(ParameterError, match="0.4 s"):
        integrated_lufs(np.zeros(1000), sr=sr)


def test_intersample_peak_that_sample_peak_misses():
    # fs/4 with 45 degrees of phase: every sample is at +-0.707 of the amplitude (-3.01 dB)
    amp = 0.5
    x = _sine(44100 / 4, 2.0, 44100, amp, phase=math.pi / 4)
    assert sample_peak_db(x) == pytest.approx(20 * math.log10(amp) - 3.01, abs=0.01)
    assert true_peak_db(x) == pytest.approx(20 * math.log10(amp), abs=0.1)
    # a low tone: sample and true peak agree; the chunk seams (2^18 samples) leave no gap
    y = _sine(100.0, 8.0, 44100, 0.25)
    assert true_peak_db(y) == pytest.approx(20 * math.log10(0.25), abs=0.01)
    st = np.stack([0.1 * y[:len(x)], x], axis=1)   # stereo: the larger channel
    assert true_peak_db(st) == pytest.approx(20 * math.log10(amp), abs=0.1)
    assert true_peak_db(np.zeros(100)) == -math.inf


def test_analyze_prints_lufs_and_dbtp(tmp_path, capsys):
    x = _sine(44100 / 4, 3.0, 44100, 0.5, phase=math.pi / 4).astype(np.float32)
    stereo = tmp_path / "st.wav"
    sf.write(str(stereo), np.stack([x, x], 1), 44100, subtype="FLOAT")
    assert main(["analyze", str(stereo), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    m = measure(np.stack([x, x], 1))
    assert d["loudness"]["integrated_lufs"] == pytest.approx(m.lufs, abs=0.01)
    assert d["loudness"]["true_peak_dbtp"] == pytest.approx(-6.02, abs=0.1)
    assert d["loudness"]["sample_peak_dbfs"] == pytest.approx(-9.03, abs=0.02)
    mono = tmp_path / "mono.wav"
    sf.write(str(mono), (0.1 * np.sin(2 * np.pi * 1000 * np.arange(3 * 44100) / 44100)).astype(np.float32),
             44100, subtype="FLOAT")
    assert main(["analyze", str(mono)]) == 0
    text = capsys.readouterr().out
    assert "-23.0 LUFS" in text and "-20.0 LUFS played on both channels" in text and "dBTP" in text
