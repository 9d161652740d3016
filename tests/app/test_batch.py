"""``soundstage batch`` on a real Dask cluster: two worker processes on loopback.

A folder of generated recordings with corrupt, empty and tiny files among them: every good file
is rendered byte-identical to ``soundstage upmix`` with the same settings, the bad ones are
reported with their reasons, a second run renders nothing, and deleting one output re-makes just
that one.
"""
from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest
import soundfile as sf

from app.batch import MANIFEST, BatchError, Manifest, _Lock, find_audio, run_batch
from app.chain import UpmixSettings
from cli.main import main

pytestmark = pytest.mark.slow     # end to end (processes, clusters)

SR = 44100
SETTINGS = ["--separator", "formation", "--sources", "2", "--seed", "5"]
GOOD = {"a.wav": "a.wav", "sub/b.flac": "sub/b.wav", "sub/deeper/c.wav": "sub/deeper/c.wav"}
BAD = {"corrupt.wav": "unreadable as audio", "empty.flac": "file is empty", "sub/tiny.wav": "too short"}


def _music(seconds: float, f0: float, seed: int) -> np.ndarray:
    """A plucked harmonic tone every 0.4 s over a noise bed: something formation can split."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    env = np.exp(-8 * (t % 0.4))
    tone = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6)) * env
    bed = np.convolve(rng.standard_normal(len(t)), np.ones(8) / 8, mode="same") * 0.05
    return (0.25 * tone + bed).astype(np.float32)


@pytest.fixture(scope="module")
def in_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("recordings")
    (d / "sub" / "deeper").mkdir(parents=True)
    sf.write(d / "a.wav", _music(2.5, 220, 0), SR)
    x = _music(2.0, 330, 1)
    sf.write(d / "sub" / "b.flac", np.stack([x, 0.8 * x], 1), SR)          # stereo in: downmixed
    sf.write(d / "sub" / "deeper" / "c.wav", _music(1.5, 147, 2), 22050, subtype="PCM_16")  # 3 s, resampled
    (d / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt junk" * 20)
    (d / "empty.flac").write_bytes(b"")
    sf.write(d / "sub" / "tiny.wav", _music(0.002, 220, 3), SR)
    (d / "notes.txt").write_text("not audio")
    sf.write(d / ".hidden.wav", _music(0.5, 220, 4), SR)
    return d


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster
    c = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
                     silence_logs=logging.ERROR)
    yield c
    c.close()


def _mtimes(out_dir):
    return {p.relative_to(out_dir).as_posix(): p.stat().st_mtime_ns for p in out_dir.rglob("*")
            if p.is_file() and not p.name.startswith(".") and p.name != MANIFEST}


def test_find_audio_skips_hidden_and_other_files(in_dir):
    rels = [p.relative_to(in_dir).as_posix() for p in find_audio(in_dir)]
    assert rels == sorted(list(GOOD) + list(BAD))


@pytest.mark.timeout(400)
def test_batch_on_two_workers_matches_upmix_and_resumes(in_dir, cluster, tmp_path, capsys):
    out = tmp_path / "out"
    settings = UpmixSettings(separator="formation", sources=2, seed=5)
    summary = run_batch(in_dir, out, settings, scheduler=cluster.scheduler_address)

    # all good files rendered, the bad ones reported with their reasons
    assert summary.workers == 2 and summary.done == 3 and summary.skipped == 0
    failed = dict(summary.failed)
    assert set(failed) == set(BAD)
    for rel, why in BAD.items():
        assert why in failed[rel], failed[rel]
    assert summary.audio_seconds == pytest.approx(2.5 + 2.0 + 3.0, abs=0.01)   # c.wav: 1.5 s of samples at 22.05 kHz
    for rel, out_rel in GOOD.items():
        assert (out / out_rel).is_file()
        assert (out / out_rel).with_suffix(".soundstage.json").is_file()
    assert not any(p.name.endswith(".part") for p in out.rglob("*"))

    # both workers took part; none loaded the model more than once, however many files it did (a worker
    # whose predictions were all kept in the prediction cache loads it not at all)
    by_worker = {}
    for r in summary.results:
        by_worker.setdefault(r["worker_pid"], []).append(r["model_loads"])
    assert len(by_worker) == 2
    done_pids = {r["worker_pid"] for r in summary.results if r["state"] == "done"}
    assert all(max(by_worker[p]) <= 1 for p in done_pids)

    # the manifest: done with checksums, failed with reasons
    m = Manifest(out, settings.resolved()).load()
    assert {k: v["state"] for k, v in m.entries.items()} == {**{k: "done" for k in GOOD}, **{k: "failed" for k in BAD}}
    assert all(len(o["sha256"]) == 64 for k in GOOD for o in m.entries[k]["outputs"])

    # byte-identical to `soundstage upmix` with the same settings, in this process
    for rel, out_rel in GOOD.items():
        ref = tmp_path / "ref" / out_rel
        ref.parent.mkdir(parents=True, exist_ok=True)
        assert main(["-q", "upmix", str(in_dir / rel), "-o", str(ref), *SETTINGS]) == 0
        assert (out / out_rel).read_bytes() == ref.read_bytes(), rel
        pa = json.loads((out / out_rel).with_suffix(".soundstage.json").read_text())
        pb = json.loads(ref.with_suffix(".soundstage.json").read_text())
        for key in ("recording_sha256", "separation", "model", "renditions", "current", "placements"):
            assert pa.get(key) == pb.get(key), key
        assert (out / out_rel).parent.joinpath(pa["recording"]).resolve() == (in_dir / rel).resolve()
    capsys.readouterr()

    # a second run renders nothing and touches nothing
    before = _mtimes(out)
    assert main(["-q", "batch", str(in_dir), str(out), *SETTINGS, "--scheduler", cluster.scheduler_address]) == 1
    text = capsys.readouterr().out
    assert "0 rendered, 3 already done, 3 failed (3 not retried" in text
    for rel, why in BAD.items():
        assert f"failed: {rel}: " in text
    assert _mtimes(out) == before

    # delete one output: only that file is made again, identical to before
    b_bytes = (out / "sub/b.wav").read_bytes()
    (out / "sub/b.wav").unlink()
    again = run_batch(in_dir, out, settings, scheduler=cluster.scheduler_address)
    assert again.done == 1 and again.skipped == 2 and [r["rel"] for r in again.results] == ["sub/b.flac"]
    assert (out / "sub/b.wav").read_bytes() == b_bytes
    after = _mtimes(out)
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed == {"sub/b.wav", "sub/b.soundstage.json"}

    # a same-size change inside an output is caught by --verify
    data = bytearray((out / "a.wav").read_bytes())
    data[-2] ^= 0x7F
    (out / "a.wav").write_bytes(bytes(data))
    os.utime(out / "a.wav", ns=(after["a.wav"], after["a.wav"]))   # same size, same time: only the checksum tells
    assert run_batch(in_dir, out, settings, scheduler=cluster.scheduler_address).done == 0
    fixed = run_batch(in_dir, out, settings, scheduler=cluster.scheduler_address, verify=True)
    assert [r["rel"] for r in fixed.results] == ["a.wav"]
    assert (out / "a.wav").read_bytes() == (tmp_path / "ref" / "a.wav").read_bytes()

    # other settings into the same folder: refused, with what differs
    with pytest.raises(BatchError, match="different: seed"):
        run_batch(in_dir, out, UpmixSettings(separator="formation", sources=2, seed=6),
                  scheduler=cluster.scheduler_address)


def test_bad_input_retried_when_it_changes(tmp_path, cluster):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    (src / "x.wav").write_bytes(b"")
    settings = UpmixSettings(separator="none", method="decorr")
    first = run_batch(src, out, settings, scheduler=cluster.scheduler_address)
    assert [rel for rel, _ in first.failed] == ["x.wav"]
    sf.write(src / "x.wav", _music(1.0, 220, 5), SR)        # fixed by the archivist
    second = run_batch(src, out, settings, scheduler=cluster.scheduler_address)
    assert second.done == 1 and not second.failed and not second.standing
    assert sf.info(str(out / "x.wav")).channels == 2


def test_leftovers_lock_and_errors(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    (out / ".x.wav.abc.part").write_bytes(b"half a file")
    s = run_batch(src, out, UpmixSettings(separator="none", method="decorr"))   # nothing to do: no cluster
    assert s.total == 0 and not (out / ".x.wav.abc.part").exists()
    with _Lock(out):
        with pytest.raises(BatchError, match="another batch"):
            run_batch(src, out, UpmixSettings(separator="none", method="decorr"))
    with pytest.raises(BatchError, match="not a folder"):
        run_batch(tmp_path / "missing", out, UpmixSettings())
    with pytest.raises(BatchError, match="must differ"):
        run_batch(src, src, UpmixSettings())
    assert main(["batch", str(tmp_path / "missing"), str(out)]) == 2


@pytest.mark.timeout(300)
def test_default_local_cluster_prints_progress_and_summary(tmp_path, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    sf.write(src / "one.wav", _music(1.0, 220, 6), SR)
    rc = main(["batch", str(src), str(out), "--separator", "none", "--method", "decorr", "--workers", "1",
               "--format", "flac"])
    cap = capsys.readouterr()
    assert rc == 0
    assert "1 of 1 files to render" in cap.err and "1/1 files" in cap.err
    assert "Dask dashboard: http://127.0.0.1:" in cap.err
    assert "batch finished: 1 rendered, 0 already done, 0 failed" in cap.out
    assert "audio hours per hour" in cap.out
    assert sf.info(str(out / "one.flac")).format == "FLAC"
    assert main(["batch", str(src), str(out), "--separator", "none", "--method", "decorr", "--format", "flac"]) == 0
    assert "nothing to do: 1 of 1" in capsys.readouterr().err


def test_user_settings_reach_the_workers(tmp_path, cluster, monkeypatch, capsys):
    """`--demucs-models` (a user setting, like the stem cache folder) reaches the batch workers: a
    Demucs model that only that folder holds separates there, and without the option it is unknown."""
    from _demucs_tiny import make_model_folder
    monkeypatch.setenv("SOUNDSTAGE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SOUNDSTAGE_DEMUCS_MODELS", raising=False)
    models = tmp_path / "demucs"
    make_model_folder(models, name="tiny")
    src = tmp_path / "in"
    src.mkdir()
    sf.write(src / "a.wav", _music(2.0, 220, 0), SR)
    common = ["--separator", "demucs", "--demucs-model", "tiny", "--scheduler", cluster.scheduler_address]
    assert main(["-q", "batch", str(src), str(tmp_path / "out1"), *common]) == 1
    assert "unknown demucs model 'tiny'" in capsys.readouterr().out + (tmp_path / "out1" / MANIFEST).read_text()
    assert main(["-q", "batch", str(src), str(tmp_path / "out2"), *common, "--demucs-models", str(models)]) == 0
    y, sr = sf.read(str(tmp_path / "out2" / "a.wav"))
    assert sr == SR and y.shape == (2 * SR, 2)
    assert list((tmp_path / "cache" / "stems").glob("*.npz"))       # the user's stem cache, in the worker
