"""A non-editable install (`pip install . --no-deps --target DIR`) carries the shipped models and
the demo beside the code, and loads a model from there."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_target_install_ships_models_and_demo(tmp_path):
    src = tmp_path / "src"                 # a clean copy: no build/ left over from another build
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info",
                                                             "__pycache__", "out", ".pytest_cache"))
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", ".", "--no-deps", "--no-build-isolation",
                        "--target", str(target), "-q", "--disable-pip-version-check"],
                       cwd=src, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    for rel in ("resources/models/ps-nn.npz", "resources/models/ps-mtm.pt", "resources/models/ps-mtm.md",
                "resources/demo/feelings-mono.flac", "resources/demo/CREDITS.md", "core/models/base.py", "ui/app.py"):
        assert (target / rel).is_file(), rel
    code = ("import core, sys\n"
            "from core.models import load_model, models_dir\n"
            "from resources import demo_recording\n"
            "import soundfile as sf, numpy as np\n"
            "x = sf.read(str(demo_recording()), dtype='float32')[0][: 3 * 44100]\n"
            "p = load_model('ps-nn').predict(x, seed=0)\n"
            "print(core.__file__); print(models_dir()); print(p.iid.shape[0], np.isfinite(p.iid).all())\n")
    env = dict(os.environ, PYTHONPATH=str(target))
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    core_file, folder, result = r.stdout.strip().splitlines()[-3:]
    assert core_file.startswith(str(target)) and folder == str(target / "resources" / "models")
    assert result == "34 True"
