import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from cli.main import main
from core.metrics import stereo_stats

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "resources" / "demo" / "feelings-mono.flac"


def test_upmix_decorr_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo.wav"
    assert main(["upmix", str(DEMO), "-o", str(out), "--method", "decorr"]) == 0
    y, sr = sf.read(str(out))
    assert sr == 44100 and y.shape[1] == 2 and abs(len(y) - 30 * 44100) < 10
    assert np.abs(y).max() <= 10 ** (-0.1 / 20) + 1e-4
    st = stereo_stats(y.astype(np.float32))
    assert 0.5 < st.correlation < 0.99 and st.width > 0.05
    # folds down to (nearly) the mono input in the bass, where Decorr stays coherent
    x, _ = sf.read(str(DEMO))
    assert np.corrcoef(y.mean(axis=1), x[: len(y)])[0, 1] > 0.9


def test_upmix_refuses_overwrite_and_input(tmp_path, capsys):
    out = tmp_path / "x.wav"
    out.write_bytes(b"keep")
    assert main(["upmix", str(DEMO), "-o", str(out), "--method", "decorr"]) == 2
    assert out.read_bytes() == b"keep"
    assert "already exists" in capsys.readouterr().err
    assert main(["upmix", str(DEMO), "-o", str(DEMO), "--method", "decorr", "--force"]) == 2
    assert "over the input" in capsys.readouterr().err


def test_bad_input_one_line_error(tmp_path, capsys):
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"not audio at all" * 100)
    assert main(["upmix", str(bad), "-o", str(tmp_path / "o.wav")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "corrupt.wav" in err and "unreadable" in err
    assert not (tmp_path / "o.wav").exists()


def test_analyze_and_roundtrip(tmp_path, rng, signals, capsys):
    x = signals.noise(rng, 3.0, amp=0.1)
    st = tmp_path / "st.wav"
    sf.write(str(st), signals.pan_mono(x, 6.0), 44100, subtype="FLOAT")
    assert main(["analyze", str(st), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert abs(d["median_abs_iid_db"] - 6.0) < 0.1 and d["mean_ic"] > 0.99
    out = tmp_path / "rt.wav"
    assert main(["roundtrip", str(st), "-o", str(out)]) == 0
    y, _ = sf.read(str(out))
    assert abs(stereo_stats(y.astype(np.float32)).median_abs_iid_db - 6.0) < 0.3


def test_roundtrip_output_keeps_the_true_peak_ceiling(tmp_path, rng, signals, capsys):
    from core.loudness import true_peak_db
    x = signals.noise(rng, 3.0, amp=0.1)
    x = 0.99 * x / np.abs(x).max()                      # a full-scale recording
    st = tmp_path / "loud.wav"
    sf.write(str(st), signals.pan_mono(x, 6.0), 44100, subtype="FLOAT")
    out = tmp_path / "rt.wav"
    assert main(["roundtrip", str(st), "-o", str(out)]) == 0
    assert "-1.0 dBTP ceiling" in capsys.readouterr().out
    y, _ = sf.read(str(out))
    assert -1.1 < true_peak_db(y) <= -0.99              # the output stage's ceiling, as upmix and export


def test_console_script_runs():
    exe = Path(sys.executable).with_name("soundstage")
    r = subprocess.run([str(exe), "upmix", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--method" in r.stdout
