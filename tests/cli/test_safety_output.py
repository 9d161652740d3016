"""Issue 17, cases 5, 6, 7 (stale temporary files) and 8: outputs that fail say so in one line and
leave nothing behind; `separate` keeps the stems' sum exact above full scale; odd inputs (a FIFO,
a WAV cut short) and extension mismatches are refused."""
from __future__ import annotations

import errno
import os

import numpy as np
import pytest
import soundfile as sf

from cli.main import main
from core import audio
from core.errors import AudioError, OutputError

SR = 44100
SEP = ["--backend", "formation", "--set", "n_sources=2", "--no-cache"]


def _music(seconds=1.5, amp=0.3, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = amp * (np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 1375 * t) * (t % 0.5 < 0.25))
    return (x + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def _one_line(err):
    return err.count("\n") == 1 and "Traceback" not in err


# -- case 5: separate keeps the sum exact above full scale ------------------------------------------
def test_separate_float_input_above_full_scale_keeps_the_sum(tmp_path, capsys):
    x = _music(amp=1.4)                                  # peaks near +6 dBFS, 32-bit float file
    assert np.abs(x).max() > 1.5
    src = tmp_path / "hot.wav"
    sf.write(src, x, SR, subtype="FLOAT")
    out = tmp_path / "stems"
    assert main(["-q", "separate", str(src), "-o", str(out), *SEP]) == 0
    err = capsys.readouterr().err
    assert "above full scale" in err and "32-bit float" in err
    stems = [sf.read(p, dtype="float64") for p in sorted(out.iterdir())]
    assert all(info.subtype == "FLOAT" for info in (sf.info(str(p)) for p in out.iterdir()))
    total = sum(s for s, _ in stems)
    assert np.max(np.abs(total - x)) < 1e-5
    # A PCM format chosen by hand would clip: refused in one line, nothing written.
    out2 = tmp_path / "stems24"
    assert main(["-q", "separate", str(src), "-o", str(out2), "--format", "wav24", *SEP]) == 2
    err = capsys.readouterr().err
    assert _one_line(err) and "would clip" in err and not out2.exists()


def test_separate_in_range_input_stays_24_bit(tmp_path):
    src = tmp_path / "ok.wav"
    sf.write(src, _music(amp=0.3), SR, subtype="FLOAT")
    assert main(["-q", "separate", str(src), "-o", str(tmp_path / "s"), *SEP]) == 0
    assert {sf.info(str(p)).subtype for p in (tmp_path / "s").iterdir()} == {"PCM_24"}


# -- case 6: output failures ------------------------------------------------------------------------
@pytest.fixture
def recording(tmp_path):
    src = tmp_path / "in.wav"
    sf.write(src, _music(), SR)
    return src


def _full_disk_after(monkeypatch, n_calls):
    """soundfile writes fail with ENOSPC from the ``n_calls``-th block on (a disk filling up)."""
    real = sf.SoundFile.write
    calls = {"n": 0}

    def write(self, data):
        calls["n"] += 1
        if calls["n"] >= n_calls:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)
    monkeypatch.setattr(sf.SoundFile, "write", write)


def test_separate_on_a_full_disk_leaves_no_stem(tmp_path, recording, monkeypatch, capsys):
    out = tmp_path / "stems"
    _full_disk_after(monkeypatch, 3)                     # two stems written, the third fails
    assert main(["-q", "separate", str(recording), "-o", str(out), *SEP]) == 2
    err = capsys.readouterr().err
    assert _one_line(err) and "no space left" in err
    assert not out.exists()
    assert _files(tmp_path) == ["in.wav"]


def test_session_upmix_on_a_full_disk_leaves_no_stems_folder(tmp_path, recording, monkeypatch, capsys):
    _full_disk_after(monkeypatch, 2)
    out = tmp_path / "out.wav"
    rc = main(["-q", "upmix", str(recording), "-o", str(out), "--separator", "formation", "--sources", "2",
               "--method", "decorr", "--stems"])
    err = capsys.readouterr().err
    assert rc == 2 and _one_line(err) and "no space left" in err
    assert _files(tmp_path) == ["in.wav"]


def test_permission_denied_is_one_line(tmp_path, recording, monkeypatch, capsys):
    from core import atomic
    real = atomic._open_new

    def open_new(path):
        if str(path).startswith(str(tmp_path / "locked")):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real(path)
    monkeypatch.setattr(atomic, "_open_new", open_new)
    (tmp_path / "locked").mkdir()
    out = tmp_path / "locked" / "new" / "out.wav"
    assert main(["-q", "upmix", str(recording), "-o", str(out), "--method", "decorr"]) == 2
    err = capsys.readouterr().err
    assert _one_line(err) and "permission denied" in err
    assert not (tmp_path / "locked" / "new").exists()     # the folder it made is gone again


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_for_real(tmp_path, recording, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert main(["-q", "upmix", str(recording), "-o", str(ro / "out.wav"), "--method", "decorr"]) == 2
        err = capsys.readouterr().err
        assert _one_line(err) and "permission denied" in err
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_long_names(tmp_path, recording, capsys):
    # 245 characters: legal, but the temporary name beside it used to pass the 255-byte limit.
    name = "n" * 241 + ".wav"
    assert main(["-q", "upmix", str(recording), "-o", str(tmp_path / name), "--method", "decorr"]) == 0
    assert sf.info(str(tmp_path / name)).channels == 2
    capsys.readouterr()
    # Past the file system's limit: one line, nothing left.
    too_long = "n" * 300 + ".wav"
    assert main(["-q", "upmix", str(recording), "-o", str(tmp_path / too_long), "--method", "decorr"]) == 2
    err = capsys.readouterr().err
    assert _one_line(err) and "file name too long" in err.lower()
    assert _files(tmp_path) == sorted(["in.wav", name])


def test_writer_errors_are_output_errors(tmp_path, monkeypatch):
    # The stem cache and other callers that tolerate a failed write catch OSError: still true.
    _full_disk_after(monkeypatch, 1)
    with pytest.raises(OutputError, match="no space left") as exc:
        audio.write(tmp_path / "x.wav", np.zeros((1000, 2)))
    assert isinstance(exc.value, OSError) and isinstance(exc.value, AudioError)
    assert _files(tmp_path) == []


# -- case 7 (part): stale temporary files of a killed run --------------------------------------------
def test_stale_part_files_are_removed_by_the_next_run(tmp_path, recording):
    out = tmp_path / "out.wav"
    stale = tmp_path / ".out.wav.k1ll3d.part"               # what a kill -9 mid-export leaves
    stale.write_bytes(b"\0" * 4096)
    other = tmp_path / ".other.wav.abc.part"                # another output's: not ours to remove
    other.write_bytes(b"x")
    assert main(["-q", "upmix", str(recording), "-o", str(out), "--method", "decorr"]) == 0
    assert not stale.exists() and other.exists()
    assert _files(tmp_path) == sorted([".other.wav.abc.part", "in.wav", "out.wav"])


@pytest.mark.skipif(os.name == "nt", reason="POSIX file locks")
def test_a_live_writers_temporary_file_is_kept(tmp_path):
    import fcntl
    dest = tmp_path / "x.wav"
    live = tmp_path / ".x.wav.l1ve.part"
    live.write_bytes(b"being written")
    with open(live, "rb") as f:
        fcntl.flock(f, fcntl.LOCK_EX)                       # as a running writer holds it
        assert audio.remove_stale_parts(dest) == 0
        assert live.exists()
    assert audio.remove_stale_parts(dest) == 1 and not live.exists()


# -- case 8: odd inputs and extension mismatches ----------------------------------------------------
def test_truncated_wav_is_reported(tmp_path, capsys):
    src = tmp_path / "cut.wav"
    sf.write(src, _music(seconds=5.0), SR, subtype="PCM_16")
    data = src.read_bytes()
    src.write_bytes(data[: 44 + (len(data) - 44) // 2])    # half of the audio data, header intact
    with pytest.raises(AudioError, match=r"cut short.*\(50 %\)"):
        audio.load_mono(src)
    assert main(["-q", "upmix", str(src), "-o", str(tmp_path / "o.wav"), "--method", "decorr"]) == 2
    assert "cut short" in capsys.readouterr().err and not (tmp_path / "o.wav").exists()


def test_streamed_wav_without_sizes_is_read(tmp_path):
    # A WAV written as a stream (size fields never filled in) is not "cut short".
    src = tmp_path / "stream.wav"
    x = _music(seconds=1.0)
    sf.write(src, x, SR, subtype="FLOAT")
    b = bytearray(src.read_bytes())
    i = b.index(b"data")
    b[i + 4:i + 8] = (0xFFFFFFFF).to_bytes(4, "little")
    src.write_bytes(bytes(b))
    assert np.allclose(audio.load_mono(src), x, atol=1e-6)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")
def test_fifo_is_not_a_regular_file(tmp_path, capsys):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    with pytest.raises(AudioError, match=r"not a regular file \(a FIFO"):
        audio.load_mono(fifo)
    assert main(["-q", "upmix", str(fifo), "-o", str(tmp_path / "o.wav"), "--method", "decorr"]) == 2
    assert "not a regular file" in capsys.readouterr().err


@pytest.mark.parametrize("out, fmt, says", [
    ("x.mp3", None, "writes WAV or FLAC, not a .mp3 file"),
    ("x.wav", "flac", "does not belong in a .wav file"),
    ("x.flac", "wav24", "does not belong in a .flac file"),
    ("x", None, "without an extension"),
])
def test_extension_must_match_the_format(tmp_path, recording, capsys, out, fmt, says):
    args = ["-q", "upmix", str(recording), "-o", str(tmp_path / out), "--method", "decorr"]
    assert main(args + (["--format", fmt] if fmt else [])) == 2
    err = capsys.readouterr().err
    assert _one_line(err) and says in err
    assert _files(tmp_path) == ["in.wav"]
    # and the right pairs pass
    assert main(["-q", "upmix", str(recording), "-o", str(tmp_path / "ok.flac"), "--method", "decorr"]) == 0
    assert sf.info(str(tmp_path / "ok.flac")).format == "FLAC"


@pytest.mark.skipif(os.name == "nt", reason="SIGTERM")
@pytest.mark.timeout(300)
def test_sigterm_mid_export_leaves_nothing(tmp_path):
    # A kill (SIGTERM) while the output is being written: the temporary file goes with it.
    import signal
    import subprocess
    import sys
    import time
    src = tmp_path / "long.wav"
    sf.write(src, np.tile(_music(seconds=5.0), 60), SR, subtype="PCM_16")      # 5 minutes
    out = tmp_path / "out.wav"
    env = dict(os.environ, PYTHONPATH=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    p = subprocess.Popen([sys.executable, "-m", "cli", "-q", "upmix", str(src), "-o", str(out), "--method",
                          "decorr"], env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not list(tmp_path.glob(".out.wav.*.part")) and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)                                   # waiting for the condition: writing has begun
    if p.poll() is not None:
        pytest.skip("the export finished before it could be interrupted")
    p.send_signal(signal.SIGTERM)
    err = p.communicate(timeout=120)[1].decode()
    files = _files(tmp_path)
    if "out.wav" in files:
        # on a loaded machine the signal can arrive after the export was renamed into place: then
        # the file must be whole (never a half-written one), and nothing temporary is left
        assert files == ["long.wav", "out.wav"]
        assert sf.info(str(out)).frames == sf.info(str(src)).frames
    else:
        assert p.returncode == 130 and "cancelled" in err, err
        assert files == ["long.wav"]


@pytest.mark.parametrize("where", ["file made", "lock"])
def test_a_signal_while_the_temporary_file_is_made_leaves_nothing(tmp_path, monkeypatch, where):
    # Ctrl+C / SIGTERM raise in the main thread between any two bytecodes: one landing just after
    # the temporary file appeared (before its writer knows its descriptor) must still remove it
    from core import atomic
    from core.errors import Cancelled
    real = atomic._open_new

    def open_new(path):
        real(path)
        raise Cancelled("terminated")                     # the signal, right after the file exists
    if where == "file made":
        monkeypatch.setattr(atomic, "_open_new", open_new)
    else:
        monkeypatch.setattr(atomic, "_lock", lambda fd: (_ for _ in ()).throw(Cancelled("terminated")))
    out = tmp_path / "sub" / "out.wav"
    with pytest.raises(Cancelled):
        with audio.replacing(out) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"x")
    with pytest.raises(Cancelled):
        with audio.AtomicWriters([tmp_path / "a.wav", tmp_path / "b.wav"]) as files:
            files[0].write(np.zeros((10, 2), np.float32))
    assert sorted(p.name for p in tmp_path.rglob("*")) == []
