"""Issue 23, model files through the command line: a crafted safetensors structure is refused
whatever its JSON spelling (item 11), and a model file that is not plain data is one line, never
a traceback (item 13)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
SR = 44100
ZEN = "Beautiful is better than ugly"          # what ``import this`` prints


def _cli(*argv, env=None, cwd=None):
    e = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    e.pop("SOUNDSTAGE_DEMUCS_MODELS", None)
    return subprocess.run([sys.executable, "-m", "cli", *argv], capture_output=True, text=True, timeout=300,
                          env=e, cwd=cwd)


def _one_line_error(r, *says):
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("soundstage: error: "), r.stderr
    for s in says:
        assert s in r.stderr, r.stderr


@pytest.fixture
def recording(tmp_path, rng):
    path = tmp_path / "in.wav"
    t = np.arange(2 * SR) / SR
    x = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.02 * rng.standard_normal(len(t))
    sf.write(path, x.astype(np.float32), SR)
    return path


def _hf_cache(root: Path, structure_json: str) -> Path:
    """A HuggingFace cache holding htdemucs (its bag file and one safetensors file, as demucs 4.1
    downloads them) whose state structure is ``structure_json``, written as given."""
    pytest.importorskip("demucs")
    from safetensors.torch import save_file

    from separation import demucs_weights
    official = demucs_weights.official_files("htdemucs")
    repo = root / "models--adefossez--HTDemucs"
    snap = repo / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    shutil.copy(official.bag_file, snap / "htdemucs.yaml")
    save_file({"w": torch.zeros(1)}, str(snap / f"{official.sigs[0]}.safetensors"),
              metadata={"klass": "demucs.htdemucs.HTDemucs", "args": "[]", "kwargs": "{}",
                        "structure": structure_json})
    return root


@pytest.mark.parametrize("structure", [
    '{"\\u005fdict": [["w", {"\\u005fclass": "this.s"}]]}',       # the report's spelling
    '{"_dict": [["w", {"_class": "this.s"}]]}',                    # plain
    '{"_dict": [["w", {"_tensor": "w", "_class": "this.s"}]]}',   # hidden behind a tensor
])
def test_safetensors_structure_naming_a_module_is_refused_whatever_the_spelling(tmp_path, recording, structure):
    # Item 11: demucs' loader imports whatever a "_class" node names; the check reads the decoded
    # structure, so "\u005fclass" is "_class", and only demucs' model classes may be named.
    cache = _hf_cache(tmp_path / "hf", structure)
    out = tmp_path / "stems"
    r = _cli("-q", "separate", str(recording), "-o", str(out), "--separator", "demucs", "--no-cache",
             env={"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "TORCH_HOME": str(tmp_path / "torch")})
    assert ZEN not in r.stdout and ZEN not in r.stderr          # `this` was never imported
    _one_line_error(r, "state structure", "refused")
    assert not out.exists()


def test_the_structure_check_reads_genuine_structures(tmp_path):
    # Tensors, dicts, lists, tuples and plain values come back as demucs builds them.
    from separation.demucs_weights import _unflatten_state
    t = torch.ones(2)
    s = json.loads('{"_dict": [["a", {"_tensor": "t"}], ["b", {"_tuple": [1, {"_list": [2.5, "x"]}]}], '
                   '["c", [1, 2]], ["k", {"_class": "demucs.htdemucs.HTDemucs"}]]}')
    state = _unflatten_state("f", {"t": t}, s)
    assert state["a"] is t and state["b"] == (1, [2.5, "x"]) and state["c"] == [1, 2]
    assert state["k"].__name__ == "HTDemucs"


# --- item 13: a file that is not plain data is one line, never a traceback ------------------------
class _Payload:
    """Unpickling this runs ``exec(code)``, which writes the marker file."""

    def __init__(self, marker):
        self.code = f"open({str(marker)!r}, 'w').write('code ran')"

    def __reduce__(self):
        return exec, (self.code,)


def _pickled_model(path, marker):
    torch.save({"config": _Payload(marker), "state_dict": {}, "state": {}}, path)


@pytest.fixture
def models_dir(tmp_path):
    from core.models.base import models_dir as shipped
    folder = tmp_path / "models"
    shutil.copytree(shipped(), folder)
    return folder


@pytest.mark.parametrize("file, extra", [
    ("ps-mtm.pt", ["--method", "ps-mtm"]),
    ("ps-reg.pt", ["--method", "ps-reg"]),
    ("ps-ar.pt", ["--method", "ps-ar", "--separator", "formation", "--sources", "2"]),
    ("placement.pt", ["--method", "decorr", "--separator", "formation", "--sources", "2"]),
])
def test_a_pickle_model_file_in_models_dir_is_one_line(tmp_path, recording, models_dir, file, extra, capsys):
    from cli.main import main
    marker = tmp_path / "MARKER"
    _pickled_model(models_dir / file, marker)
    out = tmp_path / "out.wav"
    rc = main(["-q", "upmix", str(recording), "-o", str(out), "--models-dir", str(models_dir), *extra])
    r = subprocess.CompletedProcess([], rc, *capsys.readouterr())
    _one_line_error(r, f"refusing to load {models_dir / file}", "(it names exec)", "weights-only")
    assert not marker.exists() and sorted(os.listdir(tmp_path)) == ["in.wav", "models"]


def _scene_file(path, rng, n=3):
    from core.models.placement_features import N_MIX_FEATURES, N_SOURCE_FEATURES
    np.savez(path, feats=rng.standard_normal((n, N_SOURCE_FEATURES)).astype(np.float32),
             mix=rng.standard_normal(N_MIX_FEATURES).astype(np.float32),
             pan=rng.uniform(-1, 1, n).astype(np.float32), width=rng.uniform(0, 1, n).astype(np.float32),
             energy=rng.uniform(0.1, 1, n).astype(np.float32), pan_spread=np.zeros(n, np.float32),
             name=np.array(path.stem))


def test_train_placement_resuming_a_pickled_checkpoint_is_one_line(tmp_path, rng):
    cache = tmp_path / "scenes"
    for split, keys in (("train", ["00000001", "00000002", "00000003", "0000000a"]), ("valid", ["00000005"])):
        (cache / split).mkdir(parents=True)
        for k in keys:
            _scene_file(cache / split / f"{k}-0.npz", rng)
    out = tmp_path / "ck"
    out.mkdir()
    marker = tmp_path / "MARKER"
    torch.save({"config": _Payload(marker), "model": {}, "opt": {}}, out / "ckpt.pt")
    r = _cli("-q", "train", "--method", "placement", "--no-build", "--steps", "2", "--batch", "2", "--d", "16",
             "--layers", "1", "--out", str(out), env={"SOUNDSTAGE_PLACEMENT_CACHE": str(cache)})
    _one_line_error(r, f"refusing to load {out / 'ckpt.pt'}", "(it names exec)")
    assert not marker.exists() and sorted(os.listdir(out)) == ["ckpt.pt"]


def test_a_demucs_bag_file_with_a_python_tag_is_one_line(tmp_path, recording):
    folder = tmp_path / "demucs"
    folder.mkdir()
    marker = tmp_path / "MARKER"
    (folder / "htdemucs.yaml").write_text(
        f"models: !!python/object/apply:os.system [\"touch {marker}\"]\n")
    out = tmp_path / "out.wav"
    r = _cli("-q", "upmix", str(recording), "-o", str(out), "--separator", "demucs", "--demucs-models", str(folder))
    _one_line_error(r, f"{folder / 'htdemucs.yaml'}: not a demucs bag file", "python/object/apply:os.system")
    assert not marker.exists() and not out.exists()
