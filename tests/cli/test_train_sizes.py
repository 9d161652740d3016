"""A new PS model run without --d/--layers trains the shipped models' size (128 wide, 4 layers: their cards), not
the network config's own default; given sizes are kept."""
from __future__ import annotations

import numpy as np
import soundfile as sf
import torch

from cli.commands.train import SHIPPED_SIZE
from cli.main import main


def _music(tmp_path):
    data = tmp_path / "music"
    data.mkdir()
    rng = np.random.default_rng(4)
    for i, g in enumerate((0.3, 1.0, 3.0)):
        x = (0.1 * rng.standard_normal(2 * 44100)).astype(np.float32)
        sf.write(data / f"song{i}.wav", np.stack([x, g * x + 0.05 * rng.standard_normal(len(x))], 1), 44100)
    return data


def test_a_new_run_has_the_shipped_size_unless_told(tmp_path, monkeypatch):
    monkeypatch.setenv("SOUNDSTAGE_TRAIN_CACHE", str(tmp_path / "cache"))
    data = _music(tmp_path)
    common = ["--quiet", "train", "--method", "ps-mtm", "--data", str(data), "--steps", "1", "--batch", "2",
              "--threads", "1"]
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    net = torch.load(tmp_path / "a" / "ckpt.pt", weights_only=True)["net"]
    assert (net["d"], net["layers"]) == (SHIPPED_SIZE["d"], SHIPPED_SIZE["layers"]) == (128, 4)
    assert main([*common, "--out", str(tmp_path / "b"), "--d", "32", "--layers", "1"]) == 0
    net = torch.load(tmp_path / "b" / "ckpt.pt", weights_only=True)["net"]
    assert (net["d"], net["layers"]) == (32, 1)
