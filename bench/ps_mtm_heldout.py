"""PS-MTM model files side by side on the same held-out patches (the model card's validation table).

The patches: ``--per-file`` fixed 6-s patches spread evenly over every distinct ``valid`` file of the manifest that
is not a training file (a link to a train file, or a byte copy of one, is left out), as training validates. For
each model: the cross-entropy (nats per token, -log p(IID) - log p(IC) of the masked tokens) and the accuracy with
all, 90 % and 50 % of the tokens masked (the same masks for every model), and with all masked and no mono condition
(the dropout token). Differences to the first model are paired over patches (mean +- standard error). The per-band
unigram prior of the train split's tokens is the baseline that ignores the mono input.

    PYTHONPATH=$PWD python bench/ps_mtm_heldout.py resources/models/ps-mtm.pt NEW.pt [--per-file 6] [--json F]
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from core.hashing import sha256_file
from core.models.net import PSNet
from training import dataset, train_ps

SETTINGS = (("all masked", 1.0, 0.0), ("90 % masked", 0.9, 0.0), ("50 % masked", 0.5, 0.0),
            ("all masked, no condition", 1.0, 1.0))


def heldout_files(data=None) -> tuple[list[str], set]:
    """The valid split's distinct files that are neither a train file nor a byte copy of one; the train files."""
    train = train_ps.split_files(data, "train")
    sums = {sha256_file(p) for p in train}
    seen, out = set(train), []
    for t in dataset.tracks(data, "valid"):
        real = os.path.realpath(t.path)
        if real not in seen and sha256_file(real) not in sums:
            seen.add(real)
            out.append(t.path)
    return out, train


@torch.no_grad()
def per_patch(net: PSNet, val: dict, ratio: float, cond_drop: float, chunk: int = 16) -> tuple[np.ndarray, float]:
    """Per-patch CE [N] and the accuracy with a fixed mask sequence (seed 1234, as training validates)."""
    gen = torch.Generator().manual_seed(1234)
    n = val["qi"].shape[0]
    ces, hits = [], 0.0
    for a in range(0, n, chunk):
        part = {k: v[a:a + chunk] for k, v in val.items()}
        _, per, acc = train_ps.mtm_loss(net, part, gen, cond_drop=cond_drop, ratio=ratio, weighted=False)
        ces.append(per.numpy())
        hits += acc * len(per)
    return np.concatenate(ces).astype(np.float64), hits / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--per-file", type=int, default=6)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.monotonic()
    files, train = heldout_files()
    valid_ex = train_ps.build_cache(files)
    val = train_ps.Batcher(valid_ex, train_ps.PATCH, np.random.default_rng(0)).fixed(args.per_file * len(valid_ex))
    minutes = sum(len(e["tokens"]) for e in valid_ex) * 1024 / 44100 / 60
    print(f"{len(files)} held-out valid files ({minutes:.1f} min), {val['qi'].shape[0]} patches of 6 s; "
          f"{len(train)} train files")
    train_ex = train_ps.load_examples(None, "train", log=lambda s: None)
    prior = train_ps.prior_ce(train_ex, val)
    del train_ex
    print(f"per-band unigram prior (train tokens, left/right symmetric): {prior:.4f}")
    out = {"files": len(files), "minutes": round(minutes, 1), "patches": int(val["qi"].shape[0]), "prior": prior,
           "models": {}}
    base = {}
    for path in args.models:
        net, _ = PSNet.load(path)
        row = {}
        for name, ratio, drop in SETTINGS:
            ce, acc = per_patch(net, val, ratio, drop)
            row[name] = {"ce": float(ce.mean()), "acc": acc}
            if path == args.models[0]:
                base[name] = ce
            else:
                d = ce - base[name]
                row[name]["diff"], row[name]["diff_se"] = float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))
        out["models"][path] = row
        print(path)
        for name, r in row.items():
            extra = f"  {r['diff']:+.4f} +- {r['diff_se']:.4f} vs {args.models[0]}" if "diff" in r else ""
            print(f"  {name:26s} CE {r['ce']:.4f}  acc {r['acc']:.3f}{extra}")
    print(f"({time.monotonic() - t0:.0f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
