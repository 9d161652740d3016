"""Demucs backend: a tiny HTDemucs with random weights, saved as demucs saves models, loaded
through demucs' own repository code and applied to generated audio."""
from __future__ import annotations

import dataclasses
import functools
import http.server
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("demucs")

import separation  # noqa: E402
from core.errors import Cancelled, ParameterError  # noqa: E402
from separation import demucs_backend, demucs_weights  # noqa: E402
from separation.demucs_weights import ModelUnavailable  # noqa: E402
from separation.stem_cache import StemCache  # noqa: E402

from _demucs_tiny import STEMS4, STEMS6, make_model_folder  # noqa: E402

SR = 44100
OFFICIAL_HTDEMUCS = "955717e8-8726e21a.th"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Own stem cache, torch hub and HuggingFace caches; no model folder from the environment;
    one torch thread (other work shares this machine)."""
    monkeypatch.setenv("SOUNDSTAGE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("SOUNDSTAGE_DEMUCS_MODELS", raising=False)
    import huggingface_hub.constants as hfc
    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path / "hf"))
    demucs_backend._loaded.clear()
    yield
    demucs_backend._loaded.clear()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A model folder with tiny 'htdemucs' (4 stems) and 'htdemucs_6s' (6 stems)."""
    folder = tmp_path_factory.mktemp("models")
    make_model_folder(folder, name="htdemucs", sources=STEMS4)
    make_model_folder(folder, name="htdemucs_6s", sources=STEMS6, seed=1)
    return folder


def music(seconds, seed=0):
    """Generated 'music': a bass line, a chord, clicks and a little noise [shape=(n,)]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = 0.3 * np.sin(2 * np.pi * 55 * t) * (1 + np.sign(np.sin(2 * np.pi * 2 * t))) / 2
    x += sum(0.1 * np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0))
    x[:: SR // 4] += 0.8
    x += 0.02 * rng.standard_normal(len(t))
    return x.astype(np.float32)


def backend(models, **kw):
    kw.setdefault("models_dir", models)
    kw.setdefault("threads", 1)
    return separation.get("demucs", **kw)


def reference(models, x, *, name="htdemucs", shifts=0, overlap=0.25, seed=0):
    """demucs' own pipeline: get_model from the local repo, api-style normalization, apply_model."""
    from demucs.apply import apply_model
    from demucs.pretrained import get_model
    model = get_model(name, repo=models)
    wav = torch.from_numpy(x).expand(2, -1)
    mean, std = float(wav.mean(0).mean()), float(wav.mean(0).std()) + 1e-8
    random.seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)             # like backend(): the machine is shared
    try:
        with torch.no_grad():
            out = apply_model(model, ((wav - mean) / std)[None], shifts=shifts, overlap=overlap, split=True)
    finally:
        torch.set_num_threads(threads)
    return (out[0] * std + mean).mean(dim=1).numpy()


# -- separation -----------------------------------------------------------------------------------

def test_registered_and_available():
    names = [b.name for b in separation.list_backends()]
    assert "demucs" in names
    info = next(b for b in separation.list_backends() if b.name == "demucs")
    assert info.available() == (True, "")


@pytest.mark.parametrize("name, stems", [("htdemucs", STEMS4), ("htdemucs_6s", STEMS6)])
def test_stems_mono_and_sum_to_input(models, name, stems):
    x = music(2.5)
    sources = backend(models, model=name, shifts=0).separate(x)
    assert [s.name for s in sources] == stems
    for s in sources:
        assert s.audio.shape == x.shape and s.audio.dtype == np.float32
        assert s.kind == "stem"
    assert separation.check_sum(x, sources) < 1e-6
    assert len({s.colour for s in sources}) == len(stems)
    # The random model leaves a residual; it went into "other" and is recorded.
    other = next(s for s in sources if s.name == "other")
    assert math.isfinite(other.meta["residual_db"])


@pytest.mark.parametrize("shifts", [0, 1])
def test_equals_demucs_apply_model(models, shifts):
    x = music(3.0, seed=2)
    sources = backend(models, shifts=shifts, cache=False).separate(x)
    ref = reference(models, x, shifts=shifts)
    scale = float(np.abs(ref).max())
    for i, s in enumerate(sources):
        if s.name != "other":
            np.testing.assert_allclose(s.audio, ref[i], atol=1e-5 * scale)
    # "other" = the model's other + what the model left out (input minus the sum of its stems)
    other = STEMS4.index("other")
    expected_other = ref[other] + (x - ref.sum(axis=0))
    np.testing.assert_allclose(sources[other].audio, expected_other, atol=1e-5 * scale)


def test_shifts_reproducible_and_seeded(models):
    x = music(2.0, seed=3)
    a = backend(models, shifts=1, seed=7, cache=False).separate(x)
    b = backend(models, shifts=1, seed=7, cache=False).separate(x)
    c = backend(models, shifts=1, seed=8, cache=False).separate(x)
    assert all(np.array_equal(p.audio, q.audio) for p, q in zip(a, b))
    assert not all(np.array_equal(p.audio, q.audio) for p, q in zip(a, c))


def test_progress_monotone_with_segment_count(models):
    x = music(4.0)
    events = []
    backend(models, shifts=0, overlap=0.25).separate(x, progress=events.append)
    sep = [p for p in events if p.stage == "separate"]
    fractions = [p.fraction for p in sep]
    assert fractions == sorted(fractions)
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    stride = int(0.75 * SR * 1.0)                          # tiny model: 1 s segments
    assert sep[-1].total == math.ceil(len(x) / stride)     # exact without shifts
    assert any("s left" in p.message for p in sep)
    assert [p.stage for p in events][:2] == ["load", "load"]
    # With shifts the passes are longer by a random amount; the count is still exact.
    events.clear()
    backend(models, shifts=1, cache=False).separate(x, progress=events.append)
    sep = [p for p in events if p.stage == "separate"]
    assert len(sep) == sep[-1].total + 2                   # the start, one per segment, the end
    assert [p.fraction for p in sep] == sorted(p.fraction for p in sep)


def test_cache_hit_on_second_run(models, tmp_path, monkeypatch):
    x = music(3.0)
    first = backend(models, shifts=0).separate(x)
    assert len(StemCache().entries()) == 1
    # A new backend in a fresh process state: the hit must not even load the model.
    demucs_backend._loaded.clear()
    loads = []
    real_load = demucs_weights.load
    monkeypatch.setattr(demucs_weights, "load", lambda *a, **k: loads.append(1) or real_load(*a, **k))
    b = backend(models, shifts=0)
    second = b.separate(x)
    assert b.last_from_cache and loads == []
    assert [s.name for s in second] == [s.name for s in first]
    assert all(np.array_equal(p.audio, q.audio) for p, q in zip(first, second))
    # Other settings: a miss (the model is loaded and run again).
    other = backend(models, shifts=0, overlap=0.5)
    other.separate(x)
    assert not other.last_from_cache and loads == [1] and len(StemCache().entries()) == 2


def test_cache_key_follows_the_weights(models, tmp_path):
    x = music(2.0)
    folder = tmp_path / "m"
    shutil.copytree(models, folder)
    b1 = backend(folder, shifts=0)
    b1.separate(x)
    for f in folder.glob("*.th"):
        f.unlink()
    make_model_folder(folder, name="htdemucs", seed=5)        # new weights, new checksum
    b2 = backend(folder, shifts=0)
    assert b2.model_source().signature != b1.model_source().signature
    b2.separate(x)
    assert not b2.last_from_cache and len(StemCache().entries()) == 2


def test_cancel_midway_leaves_no_cache_entry(models):
    x = music(6.0)                                          # 8 segments of 1 s at 25% overlap
    cancel = threading.Event()
    done = []

    def progress(p):
        if p.stage == "separate" and p.done >= 1:
            done.append(p.done)
            if p.done >= 2:
                cancel.set()

    with pytest.raises(Cancelled):
        backend(models, shifts=0).separate(x, progress=progress, cancel=cancel)
    assert max(done) == 2                                   # stopped before the next segment
    cache_dir = StemCache().directory
    assert not cache_dir.exists() or list(cache_dir.iterdir()) == []


def test_settings_validated(models):
    with pytest.raises(ParameterError):
        separation.get("demucs", overlap=1.0)
    with pytest.raises(ParameterError):
        separation.get("demucs", device="tpu")
    with pytest.raises(ParameterError, match="longer than the model allows"):
        backend(models, segment=5.0, cache=False).separate(music(1.0))
    with pytest.raises(ParameterError):
        backend(models).separate(np.zeros((10, 2), np.float32))


# -- weights ----------------------------------------------------------------------------------------

@pytest.fixture
def blackhole():
    """A server that accepts connections and never answers (a dead network behind a proxy)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/htdemucs.yaml"
    sock.close()


def _refused_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(120)   # the code's own network timeouts are seconds; without them this would hang
@pytest.mark.parametrize("network", ["silent-server", "hanging-dns", "refused"])
def test_no_weights_clear_error_within_seconds(monkeypatch, blackhole, network, request):
    if network == "silent-server":
        monkeypatch.setattr(demucs_weights, "probe_urls", lambda src: {"huggingface": blackhole, "legacy": blackhole})
    elif network == "hanging-dns":   # a resolver that never answers; the real server names
        never = threading.Event()                 # answers only when the test is over
        request.addfinalizer(never.set)
        monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: never.wait(600))
    else:
        url = f"http://127.0.0.1:{_refused_port()}/x"
        monkeypatch.setattr(demucs_weights, "probe_urls", lambda src: {"huggingface": url, "legacy": url})
    b = separation.get("demucs", model="htdemucs", threads=1)
    with pytest.raises(ModelUnavailable) as err:     # a hang would end in pytest-timeout, not here
        b.separate(music(1.0))
    msg = str(err.value)
    for needed in ("'htdemucs'", OFFICIAL_HTDEMUCS, "https://dl.fbaipublicfiles.com/", "--demucs-models",
                   "SOUNDSTAGE_DEMUCS_MODELS", "formation", "cannot be reached"):
        assert needed in msg
    assert "\n" not in msg


def test_model_folder_errors(models, tmp_path):
    with pytest.raises(ModelUnavailable, match="does not exist"):
        backend(tmp_path / "nowhere").separate(music(1.0))
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "htdemucs.yaml").write_text("models: ['955717e8']\n")
    with pytest.raises(ModelUnavailable, match="lacks the weights of 955717e8") as err:
        backend(folder).separate(music(1.0))
    assert OFFICIAL_HTDEMUCS in str(err.value) and "formation" in str(err.value)
    with pytest.raises(ParameterError, match="unknown demucs model"):
        separation.get("demucs", model="nosuchmodel").separate(music(1.0))


def test_folder_without_bag_file_uses_demucs_bag(tmp_path, monkeypatch):
    # Users download only the official .th file; demucs ships htdemucs.yaml itself.
    folder = tmp_path / "weights"
    make_model_folder(folder, name="htdemucs", sig="955717e8")
    (folder / "htdemucs.yaml").unlink()
    monkeypatch.setenv("SOUNDSTAGE_DEMUCS_MODELS", str(folder))      # the environment variable
    b = separation.get("demucs", threads=1, shifts=0)
    src = b.model_source()
    assert src.kind == "local" and src.bag_file.name == "htdemucs.yaml" and src.bag_file.parent != folder
    assert [s.name for s in b.separate(music(1.5))] == STEMS4


def test_torch_hub_cache_is_used_offline(tmp_path, monkeypatch):
    # A file demucs downloaded before (torch hub cache) loads through demucs' remote repo, no network.
    monkeypatch.setattr(demucs_weights, "probe", lambda *a, **k: pytest.fail("network probed"))
    th = make_model_folder(tmp_path / "src", name="htdemucs", sig="955717e8")
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    # Under the official name, the tiny model's bytes do not match the checksum in that name:
    # refused before anything reads it (a file in the cache is checked, not trusted).
    shutil.copy(th, hub / OFFICIAL_HTDEMUCS)
    b = separation.get("demucs", threads=1, shifts=0, cache=False)
    assert b.model_source().kind == "hub-cache"
    with pytest.raises(ModelUnavailable, match="checksum in its name"):
        b.load_model()
    # The same weights under their own checksum name, as the official file list names them: loaded.
    (hub / OFFICIAL_HTDEMUCS).unlink()
    shutil.copy(th, hub / th.name)
    real = demucs_weights.official_files

    def official(name):
        o = real(name)
        return None if o is None else dataclasses.replace(o, files=(th.name,))
    monkeypatch.setattr(demucs_weights, "official_files", official)
    b = separation.get("demucs", threads=1, shifts=0)
    assert b.model_source().kind == "hub-cache"
    x = music(1.5)
    assert separation.check_sum(x, b.separate(x)) < 1e-6


@pytest.fixture
def http_folder(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_checks_hash_and_reports_progress(tmp_path, http_folder):
    root, url = http_folder
    th = make_model_folder(tmp_path / "src", sig="955717e8")
    shutil.copy(th, root / th.name)
    events = []
    dest = demucs_weights.download(f"{url}/{th.name}", tmp_path / "hub" / th.name, progress=events.append)
    assert dest.read_bytes() == th.read_bytes()
    done = [p.done for p in events]
    assert done == sorted(done) and events[-1].fraction == 1.0
    # Served bytes that do not match the checksum in the name: refused, nothing left behind.
    shutil.copy(th, root / "955717e8-00000000.th")
    with pytest.raises(ModelUnavailable, match="checksum"):
        demucs_weights.download(f"{url}/955717e8-00000000.th", tmp_path / "bad" / "955717e8-00000000.th")
    assert list((tmp_path / "bad").iterdir()) == []
    assert demucs_weights.probe({"up": f"{url}/{th.name}", "missing": f"{url}/nothing.th"}) == \
        {"up": True, "missing": False}


def test_light_lookups_agree_with_demucs(models):
    # locate() reads demucs' model list, names and folders without importing torch; same answers.
    from demucs import hf, pretrained
    from demucs.repo import LocalRepo
    root = demucs_weights._remote_root()
    assert root == pretrained.REMOTE_ROOT
    assert demucs_weights._parse_remote_files(root / "files.txt") == pretrained._parse_remote_files(root / "files.txt")
    for name in ("htdemucs", "htdemucs_6s", "htdemucs_ft", "mdx_extra"):
        assert demucs_weights._hf_repo_name(name) == hf.hf_repo_name(name)
    assert demucs_weights.HF_NAMESPACE == hf.DEFAULT_NAMESPACE
    assert demucs_weights._scan_folder(models) == LocalRepo(models).list_model()
    assert demucs_weights._hub_dir_from_env() == Path(torch.hub.get_dir())


def test_cached_reopen_in_a_fresh_process_needs_no_torch(models, tmp_path):
    x = music(2.0)
    np.save(tmp_path / "x.npy", x)
    backend(models, shifts=0).separate(x)
    code = (
        "import sys, time, numpy as np\n"
        "t0 = time.perf_counter()\n"
        "import separation\n"
        f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
        f"b = separation.get('demucs', models_dir={str(models)!r}, shifts=0, threads=1)\n"
        "s = b.separate(x)\n"
        "print(b.last_from_cache, 'torch' in sys.modules, len(s), time.perf_counter() - t0)\n")
    env = dict(os.environ, PYTHONPATH=str(Path(separation.__file__).parent.parent))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    hit, torch_loaded, n, seconds = out.stdout.split()
    assert (hit, torch_loaded, n) == ("True", "False", "4"), out.stderr
    # the wall time (well under a second when idle) is reported by bench/bench_demucs.py, not asserted here


def test_first_use_downloads_with_progress(tmp_path, http_folder, monkeypatch):
    # A model server (local here) with a published model: probed, downloaded into torch hub's
    # cache with progress, loaded through demucs' remote repository; the next time it is cached.
    root, url = http_folder
    th = make_model_folder(tmp_path / "pub", name="htdemucs", sig="955717e8")
    (root / "hybrid_transformer").mkdir()
    shutil.copy(th, root / "hybrid_transformer" / th.name)
    official = demucs_weights.OfficialFiles("htdemucs", ("955717e8",), (th.name,),
                                            (f"{url}/hybrid_transformer/{th.name}",),
                                            tmp_path / "pub" / "htdemucs.yaml", None, None)
    monkeypatch.setattr(demucs_weights, "official_files", lambda name: official if name == "htdemucs" else None)
    monkeypatch.setattr(demucs_weights, "probe_urls", lambda src: {"legacy": src.official.urls[0]})
    b = separation.get("demucs", threads=1, shifts=0)
    assert b.model_source().kind == "download"
    events = []
    x = music(1.5)
    sources = b.separate(x, progress=events.append)
    assert [s.name for s in sources] == STEMS4 and separation.check_sum(x, sources) < 1e-6
    dl = [p for p in events if p.stage == "download"]
    assert dl and [p.fraction for p in dl] == sorted(p.fraction for p in dl) and dl[-1].fraction == 1.0
    assert (tmp_path / "torch" / "hub" / "checkpoints" / th.name).read_bytes() == th.read_bytes()
    assert separation.get("demucs").model_source().kind == "hub-cache"


def test_huggingface_download_progress_adapter():
    # hf_hub_download(tqdm_class=...) builds a plain tqdm subclass with these arguments.
    events = []
    bar = demucs_weights._tqdm_adapter(events.append, "htdemucs weights 1/1")(
        unit="B", unit_scale=True, total=3000, initial=0, desc="955717e8.safetensors")
    for _ in range(3):
        bar.update(1000)
    bar.close()
    assert [(p.stage, p.done, p.total) for p in events] == [("download", d, 3000) for d in (1000, 2000, 3000)]
    assert events[-1].message == "htdemucs weights 1/1"
