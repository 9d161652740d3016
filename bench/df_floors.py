"""What D_F a generator could reach on ``valid`` without knowing each track: the real stereo of other music.

D_F (``training.ps_metrics``) between the pooled real stereo of the ``valid`` excerpts (``--per-track`` each, as
``soundstage eval --sources``) and the real stereo of the ``train`` split (the middle of every ``--every``-th track,
one and three excerpts per track): a generator that reproduced the training music's stereo exactly, frame for
frame, but could not tell one track's style from another's would score this. Beside it: two halves of those
``train`` excerpts against each other (different tracks of the same split), and the per-excerpt spread of the band
means of IID (how far each band leans over a whole excerpt) in both splits.

    nice .venv/bin/python bench/df_floors.py
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.evaluation import load_excerpts  # noqa: E402
from training.ps_metrics import embed, frechet_distance  # noqa: E402

FRAMES = 432


def _pool(split: str, **kw) -> np.ndarray:
    return np.stack([embed(e.real.fit_frames(FRAMES)) for e in load_excerpts(None, split, 10.0, None, **kw)])


def _gauss(x: np.ndarray):
    x = x.reshape(-1, x.shape[-1])
    return x.mean(0), np.cov(x, rowvar=False, bias=True)


def _spread(x: np.ndarray) -> str:
    m = x.mean(axis=1)
    return (f"band means of IID over an excerpt: sd {m[:, :11].std(0).mean():.3f} (bands 0-10) / "
            f"{m[:, 11:34].std(0).mean():.3f} (11-33); all frames: {x[..., :11].reshape(-1, 11).std(0).mean():.3f} / "
            f"{x[..., 11:34].reshape(-1, 23).std(0).mean():.3f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-track", type=int, default=3)
    ap.add_argument("--every", type=int, default=4)
    a = ap.parse_args(argv)
    valid = _pool("valid", per_track=a.per_track)
    one = _pool("train", every=a.every)
    three = _pool("train", every=a.every, per_track=3)
    h = len(one) // 2
    print(f"valid: {len(valid)} excerpts; train: {len(one)} (one a track), {len(three)} (three a track)")
    print(f"D_F valid real vs train real, one a track    {frechet_distance(*_gauss(valid), *_gauss(one)):.3f}")
    print(f"D_F valid real vs train real, three a track  {frechet_distance(*_gauss(valid), *_gauss(three)):.3f}")
    print(f"D_F train real, first half vs second half    {frechet_distance(*_gauss(one[:h]), *_gauss(one[h:2 * h])):.3f}")
    print(f"valid real: {_spread(valid)}")
    print(f"train real: {_spread(one)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
