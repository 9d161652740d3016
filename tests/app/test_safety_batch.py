"""Issue 17, cases 2 and 3: ``soundstage batch`` with clashing names, odd files, bad or silent
schedulers, foreign files in OUT_DIR, and a local cluster other local users cannot use."""
from __future__ import annotations

import os
import socket
import threading

import numpy as np
import pytest
import soundfile as sf

from app.batch import (MANIFEST, BatchError, Manifest, _local_cluster, find_audio, plan_batch, probe_scheduler,
                       run_batch)
from app.chain import UpmixSettings
from cli.main import main

pytestmark = pytest.mark.slow     # end to end (processes, clusters)

SR = 44100
PLAIN = UpmixSettings(separator="none", method="decorr")


def _tone(path, seconds=1.0, f=220.0):
    t = np.arange(int(seconds * SR)) / SR
    sf.write(path, (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32), SR)
    return path


def _plan(src, out, settings=PLAIN, **kw):
    return plan_batch(src, out, settings.resolved(), Manifest(out, settings.resolved()).load(), **kw)


def test_clashing_output_names_are_an_error_before_any_work(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name in ("song.wav", "song.flac", "other.wav"):
        _tone(src / name)
    plan = _plan(src, out)
    assert sorted(t.output.name for t in plan.pending) == ["other.wav", "song-flac.wav", "song-wav.wav"]
    _tone(src / "song-wav.wav")           # would write song-wav.wav too
    with pytest.raises(BatchError, match=r"in/song-wav.wav and .*in/song.wav would both write .*out/song-wav.wav"):
        run_batch(src, out, PLAIN)
    assert not list(out.rglob("*.wav")) and not (out / MANIFEST).exists()
    assert main(["-q", "batch", str(src), str(out), "--separator", "none", "--method", "decorr"]) == 2


def test_rendition_and_project_names_count_as_outputs(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    _tone(src / "a.wav")
    _tone(src / "a-seed1.wav")            # the second rendition of a.wav is a-seed1.wav
    settings = UpmixSettings(separator="formation", method="decorr", renditions=2, seed=0)
    with pytest.raises(BatchError, match="would both write .*a-seed1"):
        _plan(src, out, settings)
    assert len(_plan(src, out, UpmixSettings(separator="formation", method="decorr")).pending) == 2


def test_fifo_and_broken_link_are_skipped_with_a_reason(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    _tone(src / "good.wav")
    os.mkfifo(src / "pipe.wav")
    (src / "gone.flac").symlink_to(src / "missing.flac")
    skipped = []
    assert [p.name for p in find_audio(src, skipped=skipped)] == ["good.wav"]
    assert [(p.name, why) for p, why in skipped] == [("gone.flac", "a broken link"),
                                                     ("pipe.wav", "not a regular file: a FIFO (named pipe)")]


@pytest.mark.timeout(300)
def test_local_cluster_run_skips_a_fifo_and_reports_it(tmp_path, capsys):
    # Planning never opens the FIFO (it would block forever); the batch runs on the TLS cluster.
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    _tone(src / "one.wav")
    os.mkfifo(src / "pipe.wav")
    rc = main(["batch", str(src), str(out), "--separator", "none", "--method", "decorr", "--workers", "1"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "1 rendered" in text and "skipped: pipe.wav: not a regular file: a FIFO" in text
    assert sf.info(str(out / "one.wav")).channels == 2


@pytest.mark.parametrize("address", ["nonsense", "tcp://", "tcp://127.0.0.1"])
def test_bad_scheduler_address_is_one_line(tmp_path, capsys, address):
    src = tmp_path / "in"
    src.mkdir()
    _tone(src / "a.wav")
    rc = main(["-q", "batch", str(src), str(tmp_path / "out"), "--separator", "none", "--scheduler", address])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "not a Dask scheduler address" in err, err


@pytest.fixture
def silent_peer():
    """A TCP port that accepts connections and never says a word."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held, stop = [], threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                pass
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"tcp://127.0.0.1:{srv.getsockname()[1]}", held
    stop.set()
    t.join()
    for c in held:
        c.close()
    srv.close()


@pytest.mark.timeout(60)
def test_a_silent_scheduler_times_out_as_stated(tmp_path, silent_peer, capsys):
    address, held = silent_peer
    src = tmp_path / "in"
    src.mkdir()
    _tone(src / "a.wav")
    with pytest.raises(BatchError, match=r"did not answer within 1 s"):
        run_batch(src, tmp_path / "out", PLAIN, scheduler=address, connect_timeout=1)
    assert held, "the peer was reached"
    rc = main(["-q", "batch", str(src), str(tmp_path / "out2"), "--separator", "none", "--method", "decorr",
               "--scheduler", address, "--connect-timeout", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "did not answer within 1 s" in err


def test_files_the_batch_did_not_make_are_not_overwritten(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    _tone(src / "a.wav")
    _tone(src / "b.wav")
    (out / "b.wav").write_bytes(b"the user's own file")
    with pytest.raises(BatchError, match=r"b.wav exists and this batch did not make it.*--force"):
        run_batch(src, out, PLAIN)
    assert (out / "b.wav").read_bytes() == b"the user's own file" and not (out / "a.wav").exists()
    assert {t.rel for t in _plan(src, out, force=True).pending} == {"a.wav", "b.wav"}
    # A project file beside the output is an output too (formation writes a.soundstage.json).
    (out / "b.wav").unlink()
    (out / "a.soundstage.json").write_text("{}")
    with pytest.raises(BatchError, match="a.soundstage.json exists"):
        _plan(src, out, UpmixSettings(separator="formation", method="decorr"))


def test_outputs_of_a_killed_run_still_belong_to_the_batch(tmp_path):
    # A run killed after writing an output but before recording it: the next run may replace it.
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    _tone(src / "a.wav")
    s = PLAIN.resolved()
    m = Manifest(out, s).load()
    m.open()
    m.record({"rel": "a.wav", "state": "started", "claims": ["a.wav"]})
    m.close()
    (out / "a.wav").write_bytes(b"written just before the kill")
    plan = _plan(src, out)
    assert [(t.rel, t.reason) for t in plan.pending] == [("a.wav", "interrupted before")]


@pytest.mark.timeout(300)
def test_local_cluster_refuses_clients_without_its_credentials():
    from distributed import Client
    cluster = _local_cluster(1, None, False)
    try:
        assert cluster.scheduler_address.startswith("tls://127.0.0.1:")
        with Client(cluster, security=cluster.security) as client:       # the batch's own client
            assert client.submit(pow, 3, 4).result() == 81
        # Another local process knows the port but not the credentials: the TLS handshake fails.
        with pytest.raises(BatchError, match="cannot reach|did not answer"):
            probe_scheduler(cluster.scheduler_address, timeout=5)
        plain = cluster.scheduler_address.replace("tls://", "tcp://")
        with pytest.raises(BatchError):
            probe_scheduler(plain, timeout=5)
    finally:
        cluster.close()
