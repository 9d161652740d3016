"""Building the PS-NN table (:class:`core.models.psnn.PSNNTable`) from real stereo music: random
frames of the ``train`` split, their mono keys and the real PS parameters.

    python -m training.psnn_build build --data DIR [--pairs N] [--out FILE]
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import numpy as np

from core.audio import load_stereo
from core.bands import N_BANDS
from core.errors import ParameterError
from core.models.base import models_dir
from core.models.psnn import (CHUNK, FILE_NAME, KEY_KINDS, N_PAIRS, NLIST, NPROBE, SILENT_POWER, PSNNTable, causal_mean,
                              frame_stats, keys_from_power)
from core.progress import ProgressFn, check_cancel, report
from core.ps import PSParams, analyze_spectra, to_tokens
from core.stft import n_frames, stft_frames

from .datahash import copies_of, distinct
from .dataset import default_data_dir, tracks

__all__ = ["sample_pairs", "table_from_pairs", "build_index", "main"]


def _file_frames(stereo: np.ndarray, chunk: int = CHUNK):
    """Mono (L+R)/2 window-mean band power / magnitude and the stereo's PS parameters of every
    frame: three arrays [shape=(34, t)], [shape=(34, t)], [shape=(68, t)]."""
    total = n_frames(len(stereo))
    mp, mm, pp = [], [], []
    hist_p = hist_m = None
    left, right = stereo[:, 0], stereo[:, 1]
    for f0 in range(0, total, chunk):
        f1 = min(total, f0 + chunk)
        L, R = stft_frames(left, f0, f1), stft_frames(right, f0, f1)
        pw, mg = frame_stats(0.5 * (L + R))
        a, hist_p = causal_mean(pw, hist_p)
        b, hist_m = causal_mean(mg, hist_m)
        mp.append(a)
        mm.append(b)
        pp.append(analyze_spectra(L, R).stacked())
    return np.concatenate(mp, 1), np.concatenate(mm, 1), np.concatenate(pp, 1)


def sample_pairs(data=None, split: str = "train", n_pairs: int = N_PAIRS, seed: int = 0, *,
                 swap: bool = True, progress: Optional[ProgressFn] = None,
                 cancel: Optional[threading.Event] = None):
    """Sample ``n_pairs`` random frames of the tracks of ``split`` (proportionally to their length,
    without replacement within a track, skipping digitally silent windows).

    Identical files are used once, and tracks whose content also occurs in another split of the
    manifest (the evaluation data) are left out. With ``swap`` half of the pairs (at random) have
    left and right exchanged (IID negated), the paper's channel-swap augmentation. Returns
    ``(mean_pow [n, 34], mean_mag [n, 34], params [n, 68], info)``, float32, in a deterministic
    order for a given seed."""
    listed = tracks(data, split)
    ts = distinct(listed)
    n_dup = len(listed) - len(ts)
    leaked = []
    if (Path(data) if data is not None else default_data_dir()).joinpath("manifest.tsv").exists():
        leaked = copies_of(ts, [t for t in tracks(data) if t.split != split])
        ts = [t for t in ts if t not in leaked]
    if not ts:
        raise ParameterError(f"no tracks in split {split!r} of {data}")
    rng = np.random.default_rng(seed)
    est = np.array([max(1, n_frames(int(t.seconds * 44100))) for t in ts], dtype=np.float64)
    counts = rng.multinomial(n_pairs, est / est.sum())
    file_seeds = rng.integers(0, 2 ** 63, size=len(ts))
    out_p, out_m, out_v = [], [], []
    used, frames_seen = 0, 0
    for i, (t, c) in enumerate(zip(ts, counts)):
        check_cancel(cancel)
        report(progress, "ps-nn build", i, len(ts), t.path.name)
        if c == 0:
            continue
        mp, mm, pp = _file_frames(load_stereo(t.path))
        ok = np.flatnonzero(mp.sum(axis=0) >= SILENT_POWER)
        frames_seen += mp.shape[1]
        if ok.size == 0:
            continue
        r = np.random.default_rng(file_seeds[i])
        pick = np.sort(r.choice(ok, size=min(int(c), ok.size), replace=False))
        v = pp[:, pick].T.copy()
        if swap:
            flip = r.random(pick.size) < 0.5
            v[flip, :N_BANDS] *= -1.0
        out_p.append(mp[:, pick].T)
        out_m.append(mm[:, pick].T)
        out_v.append(v)
        used += 1
    report(progress, "ps-nn build", len(ts), len(ts))
    info = dict(split=split, tracks=len(ts), tracks_used=used, duplicates_skipped=n_dup,
                copies_of_other_splits_skipped=len(leaked), frames_seen=int(frames_seen),
                seed=int(seed), swap=bool(swap))
    return (np.concatenate(out_p).astype(np.float32), np.concatenate(out_m).astype(np.float32),
            np.concatenate(out_v).astype(np.float32), info)


def table_from_pairs(mean_pow: np.ndarray, mean_mag: np.ndarray, params: np.ndarray, *, key_kind: str = "db-norm",
                     nlist: int = 0, nprobe: int = NPROBE, seed: int = 0, info: Optional[dict] = None) -> PSNNTable:
    """A table from sampled pairs (see :func:`sample_pairs`), partitioned into ``nlist`` inverted
    lists when ``nlist`` > 0 and there are at least 32 pairs per list (else exact search)."""
    keys = keys_from_power(mean_pow.T.astype(np.float64), mean_mag.T.astype(np.float64), key_kind)
    tokens = np.ascontiguousarray(to_tokens(PSParams.from_stacked(params.T)).T.astype(np.uint8))
    table = PSNNTable(keys, tokens, key_kind, dict(info or {}, pairs=int(keys.shape[0])))
    if nlist and keys.shape[0] >= 32 * nlist:
        table = table.clustered(nlist, seed)
        table.meta["nprobe"] = int(nprobe)
    return table


def build_index(data=None, split: str = "train", n_pairs: int = N_PAIRS, seed: int = 0, *,
                key_kind: str = "db-norm", swap: bool = True, nlist: int = NLIST, nprobe: int = NPROBE,
                progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None) -> PSNNTable:
    """Build the PS-NN key/value table from real stereo music (``save()`` it to ship it)."""
    t0 = time.monotonic()
    mp, mm, pv, info = sample_pairs(data, split, n_pairs, seed, swap=swap, progress=progress, cancel=cancel)
    check_cancel(cancel)
    table = table_from_pairs(mp, mm, pv, key_kind=key_kind, nlist=nlist, nprobe=nprobe, seed=seed, info=info)
    table.meta["build_seconds"] = round(time.monotonic() - t0, 1)
    return table


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.psnn_build", description="Build the PS-NN index.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="sample key/value pairs from the train split and save the table")
    b.add_argument("--data", default=None, help="data folder with manifest.tsv (default: SOUNDSTAGE_DATA)")
    b.add_argument("--split", default="train")
    b.add_argument("--pairs", type=int, default=N_PAIRS)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--keys", choices=KEY_KINDS, default="db-norm")
    b.add_argument("--nlist", type=int, default=NLIST, help="inverted lists (0: exact flat search)")
    b.add_argument("--nprobe", type=int, default=NPROBE, help="lists scanned per query")
    b.add_argument("--out", default=str(models_dir() / FILE_NAME))
    args = ap.parse_args(argv)
    def bar(p):
        print(f"\r{p.stage} {100 * p.fraction:5.1f}% {p.message[:40]:<40s}", end="", file=sys.stderr, flush=True)
    table = build_index(args.data, args.split, args.pairs, args.seed, key_kind=args.keys, nlist=args.nlist,
                        nprobe=args.nprobe, progress=bar)
    print(file=sys.stderr)
    path = table.save(args.out)
    print(f"{path}: {table.keys.shape[0]} pairs, {path.stat().st_size / 1e6:.2f} MB, "
          f"built in {table.meta['build_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
