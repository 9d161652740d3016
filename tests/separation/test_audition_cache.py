"""Issue 22: formation's sources are kept in the stem cache, keyed by the input and the settings;
a re-render from the cache is bit-identical to a fresh one, an entry for other settings is unused."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import separation
from separation.stem_cache import StemCache

pytestmark = pytest.mark.slow     # end to end (processes, clusters)

SR = 44100


def _music(rng, seconds=4.0):
    t = np.arange(int(seconds * SR)) / SR
    x = sum(0.2 / k * np.sin(2 * np.pi * 110 * k * t) for k in range(1, 6)) * np.exp(-2 * (t % 1.0))
    x = x + sum(0.1 / k * np.sin(2 * np.pi * 660 * k * t) for k in range(1, 4)) * (t % 0.5 < 0.25)
    return (x + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def _same(a, b):
    assert [s.name for s in a] == [s.name for s in b]
    assert [s.kind for s in a] == [s.kind for s in b] and [s.colour for s in a] == [s.colour for s in b]
    for sa, sb in zip(a, b):
        assert sa.audio.dtype == sb.audio.dtype and np.array_equal(sa.audio, sb.audio)


def test_formation_sources_come_from_the_cache_bit_identical(rng, tmp_path):
    x = _music(rng)
    fresh = separation.get("formation", n_sources=3).separate(x)           # no cache folder: no cache
    first = separation.get("formation", n_sources=3, cache_dir=tmp_path)
    a = first.separate(x)
    assert not first.last_from_cache and len(StemCache(tmp_path).entries()) == 1
    second = separation.get("formation", n_sources=3, cache_dir=tmp_path)
    b = second.separate(x)
    assert second.last_from_cache
    _same(fresh, a)
    _same(a, b)
    assert np.abs(np.sum([s.audio for s in b], axis=0) - x).max() < 1e-5


def test_a_cache_entry_for_other_settings_or_audio_is_not_used(rng, tmp_path):
    x = _music(rng)
    separation.get("formation", n_sources=3, cache_dir=tmp_path).separate(x)
    for settings in ({"n_sources": 4}, {"n_sources": 3, "sensitivity": 0.7}, {"n_sources": 3, "seed": 1}):
        be = separation.get("formation", cache_dir=tmp_path, **settings)
        got = be.separate(x)
        assert not be.last_from_cache, settings
        _same(got, separation.get("formation", **settings).separate(x))
    be = separation.get("formation", n_sources=3, cache_dir=tmp_path)
    be.separate(x * np.float32(0.5))                                      # other audio
    assert not be.last_from_cache
    be = separation.get("formation", n_sources=3, cache_dir=tmp_path, cache=False)
    be.separate(x)
    assert not be.last_from_cache


def _kinds(folder) -> dict:
    """{backend: entries} of a stem cache: separations and the sources' decorrelated copies."""
    cache, out = StemCache(folder), {}
    for e in cache.entries():
        backend = cache.read_meta(e.key)["meta"]["backend"]
        out[backend] = out.get(backend, 0) + 1
    return out


def test_session_separation_uses_the_users_cache(rng, tmp_path, monkeypatch):
    from app.session import Session
    monkeypatch.setenv("SOUNDSTAGE_CACHE_DIR", str(tmp_path / "cache"))
    sf.write(str(tmp_path / "rec.wav"), _music(rng), SR, subtype="FLOAT")
    s = Session()
    s.open(tmp_path / "rec.wav")
    s.separate("formation", {"n_sources": 3})
    assert _kinds(tmp_path / "cache" / "stems") == {"formation": 1, "decorrelated": len(s.sources)}
    assert "cache_dir" not in s.backend_settings                         # the project keeps only the settings


def test_cached_project_render_is_bit_identical_to_a_fresh_one(rng, tmp_path):
    """The upmix fills the cache; ``render`` of its project from the cache, and again with an
    empty cache, write the same bytes as the upmix."""
    import os
    sf.write(str(tmp_path / "rec.wav"), _music(rng, 3.0), SR, subtype="FLOAT")
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root), SOUNDSTAGE_CACHE_DIR=str(tmp_path / "cache"))

    def cli(*args):
        r = subprocess.run([sys.executable, "-m", "cli", "-q", *args], cwd=root, env=env, capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, r.stderr

    cli("upmix", str(tmp_path / "rec.wav"), "-o", str(tmp_path / "up.wav"), "--separator", "formation",
        "--sources", "3", "--method", "decorr", "--format", "wav24")
    kinds = _kinds(tmp_path / "cache" / "stems")
    assert kinds["formation"] == 1 and kinds["decorrelated"] >= 3      # the separation, each source's copy
    cli("render", str(tmp_path / "up.soundstage.json"), "-o", str(tmp_path / "cached.wav"))
    env["SOUNDSTAGE_CACHE_DIR"] = str(tmp_path / "empty")
    cli("render", str(tmp_path / "up.soundstage.json"), "-o", str(tmp_path / "fresh.wav"))
    up = (tmp_path / "up.wav").read_bytes()
    assert (tmp_path / "cached.wav").read_bytes() == up
    assert (tmp_path / "fresh.wav").read_bytes() == up


def test_renditions_share_the_first_ones_detail_and_re_render_exactly(rng, tmp_path):
    """``--renditions 2``: the second rendition keeps the first one's PS sample (its ``detail``)
    with places of its own; its project re-makes it bit for bit."""
    import json
    import os
    sf.write(str(tmp_path / "rec.wav"), _music(rng, 3.0), SR, subtype="FLOAT")
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    r = subprocess.run([sys.executable, "-m", "cli", "-q", "upmix", str(tmp_path / "rec.wav"), "-o",
                        str(tmp_path / "up.wav"), "--separator", "formation", "--sources", "3", "--method", "ps-nn",
                        "--renditions", "2", "--seed", "5"], cwd=root, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    second = json.loads((tmp_path / "up-seed6.soundstage.json").read_text())
    rend = second["renditions"][second["current_rendition"]]
    assert rend["seed"] == 6 and rend["detail"] == 5
    first = json.loads((tmp_path / "up.soundstage.json").read_text())
    assert "detail" not in first["renditions"][first["current_rendition"]]
    r = subprocess.run([sys.executable, "-m", "cli", "-q", "render", str(tmp_path / "up-seed6.soundstage.json"),
                        "-o", str(tmp_path / "again.wav")], cwd=root, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "again.wav").read_bytes() == (tmp_path / "up-seed6.wav").read_bytes()
    assert (tmp_path / "up.wav").read_bytes() != (tmp_path / "up-seed6.wav").read_bytes()


def test_predictions_are_kept_on_disk_per_seed(rng, tmp_path, monkeypatch):
    from app import proposal
    from app.plans import Rendition
    from core.models import load_model
    x = _music(rng, 2.0)
    model = load_model("ps-nn")
    calls = []
    real = type(model).predict

    def counted(self, mono, **kw):
        calls.append(kw["seed"])
        return real(self, mono, **kw)

    monkeypatch.setattr(type(model), "predict", counted)
    a = proposal.predict(Rendition(3, "ps-nn"), x, cache_dir=tmp_path)
    b = proposal.predict(Rendition(3, "ps-nn"), x, cache_dir=tmp_path)
    c = proposal.predict(Rendition(9, "ps-nn", detail=3), x, cache_dir=tmp_path)      # the same detail
    proposal.predict(Rendition(4, "ps-nn"), x, cache_dir=tmp_path)
    assert calls == [3, 4]
    assert np.array_equal(a.iid, b.iid) and np.array_equal(a.ic, c.ic)
    assert Rendition.from_dict(Rendition(9, "ps-nn", detail=3).to_dict()) == Rendition(9, "ps-nn", detail=3)
    assert Rendition.from_dict({"seed": 2, "model": "ps-nn"}).detail is None
