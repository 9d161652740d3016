"""PS-NN: nearest-neighbour PS prediction (Serrà et al. 2023, Sec. 3.1).

Keys are the band energies of the mono spectrogram averaged over the last ``N = 20`` frames
(causal: frames ``t-19 .. t``; fewer at the start), values are the PS parameters of the last
frame ``t``. At test time every frame's key is looked up in a faiss index (Euclidean distance) and
the retrieved parameters are post-processed: (i) the IID column is sign-flipped when that brings
it closer to the previous frame's (de-wobbling), (ii) the stacked parameters are smoothed with an
exponential filter of factor 0.95.

Key domain. The paper averages magnitude band energies. Here the averaged band power is
compressed to dB and the mean over bands is removed (``key_kind="db-norm"``): the key describes
the spectral shape, not the playback level. On the ``valid`` split (200k pairs, exact search) it
scores like the paper's magnitude keys at the original level (E_min .393 vs .367, D_F 3.24 vs
3.37), and keeps those figures when the input is 20 dB quieter, where magnitude keys fall to
E_min .482 / D_F 5.23 (they retrieve frames of quiet intros and fade-outs instead of frames
that sound alike). Archival mono comes at any level, so level invariance wins. Details in
``resources/models/ps-nn.md``.

Storage (``resources/models/ps-nn.npz``): keys as uint8 codes (per band an offset and a step of
at least 0.5 dB), values as fused PS tokens (uint8, ``8 * iid_index + ic_index``) dequantized on
load. The pairs are partitioned by k-means into 1024 inverted lists, and a faiss
``IndexIVFFlat`` scanning the 16 nearest lists per query is filled directly from the file (no
re-assignment on load): on ``valid`` it gives the exact search's figures (E_min .381 vs .382)
at 1/20 of its time.

Build from the ``train`` split only::

    python -m training.psnn_build build --data ~/.cache/soundstage-data
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from scipy.signal import lfilter

from ..bands import N_BANDS, band_sum
from ..errors import ParameterError
from ..progress import ProgressFn, check_cancel, report
from ..ps import IC_TABLE, IID_TABLE, N_IC, N_TOKENS, PSParams
from ..stft import n_frames, stft_frames
from .base import models_dir, register_model
from core import lazy
audio = lazy.module("core.audio")
faiss = lazy.module("faiss")

__all__ = ["KEY_FRAMES", "SMOOTHING", "FILE_NAME", "KEY_KINDS", "PSNNTable", "PSNNModel",
           "causal_mean", "keys_from_power", "postprocess", "PostState",
           "load", "available"]

KEY_FRAMES = 20          # N: frames averaged into one key
SMOOTHING = 0.95         # exponential smoothing factor of the post-processing
FILE_NAME = "ps-nn.npz"
FORMAT_VERSION = 1
KEY_KINDS = ("db-norm", "db", "mag")
DB_FLOOR = 1e-6          # band power floor before dB compression (-60 dB; full-scale noise is ~ +58 dB)
KEY_STEP_DB = 0.5        # finest storage resolution of dB keys
SILENT_POWER = 1e-6      # a key window whose mean total power is below this is digital silence
CHUNK = 2048             # frames per chunk (about 48 s of audio)
N_PAIRS = 150_000        # key/value pairs of the shipped table (about 7 MB)
NLIST = 1024             # inverted lists of the shipped index (0: exact IndexFlatL2)
NPROBE = 16              # lists scanned per query


# ----------------------------------------------------------------------------- features

def frame_stats(spec: np.ndarray, magnitude: bool = True) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Per-frame band power and (if ``magnitude``, else None) band magnitude sum of a mono
    spectrogram [shape=(bins, frames)] -> [shape=(34, frames)] float64 arrays."""
    mag2 = spec.real.astype(np.float64) ** 2 + spec.imag.astype(np.float64) ** 2
    return band_sum(mag2), band_sum(np.sqrt(mag2)) if magnitude else None


def causal_mean(x: np.ndarray, history: Optional[np.ndarray] = None, n: int = KEY_FRAMES):
    """Mean of the last ``n`` frames (inclusive) of ``x`` [shape=(bands, t)].

    ``history`` holds up to ``n - 1`` frames that precede ``x`` (None at the start of a signal,
    where fewer frames are averaged). Returns ``(mean [shape=(bands, t)], new_history)``."""
    x = np.asarray(x, dtype=np.float64)
    h = np.zeros((x.shape[0], 0)) if history is None else history
    full = np.concatenate([h, x], axis=1)
    c = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(full, axis=1)], axis=1)
    hi = np.arange(h.shape[1] + 1, full.shape[1] + 1)          # end (exclusive) of each window
    lo = np.maximum(hi - n, 0)
    mean = (c[:, hi] - c[:, lo]) / (hi - lo)
    return mean, full[:, -(n - 1):] if n > 1 else full[:, :0]


def keys_from_power(mean_pow: np.ndarray, mean_mag: np.ndarray, kind: str = "db-norm") -> np.ndarray:
    """Search keys [shape=(t, 34)] float32 from window-mean band power / magnitude [shape=(34, t)]:
    ``db-norm`` band power in dB minus its mean over bands (level invariant), ``db`` band power
    in dB, ``mag`` band magnitude sums (the paper's keys)."""
    if kind in ("db", "db-norm"):
        k = 10.0 * np.log10(mean_pow + DB_FLOOR)
        if kind == "db-norm":
            k = k - k.mean(axis=0, keepdims=True)
    elif kind == "mag":
        k = mean_mag
    else:
        raise ParameterError(f"unknown key kind {kind!r}; choose one of {', '.join(KEY_KINDS)}")
    return np.ascontiguousarray(k.T, dtype=np.float32)


# ----------------------------------------------------------------------------- post-processing

@dataclass
class PostState:
    """Carried between chunks: the previous (sign-corrected) IID column and smoothed column."""
    prev_iid: Optional[np.ndarray] = None   # [shape=(34,)]
    prev_out: Optional[np.ndarray] = None   # [shape=(68,)]


def postprocess(p: np.ndarray, state: Optional[PostState] = None, *, smoothing: float = SMOOTHING):
    """The paper's two-step post-processing on retrieved stacked parameters [shape=(68, t)].

    (i) the IID column of frame ``t`` is negated when the negated column is closer (Euclidean)
    to the previous frame's sign-corrected column; (ii) exponential smoothing
    ``y_t = a y_{t-1} + (1 - a) x_t`` of all 68 rows (``y`` starts at the first frame).
    Returns ``(processed [shape=(68, t)] float32, new_state)``."""
    state = state or PostState()
    p = np.array(p, dtype=np.float64)
    t = p.shape[1]
    if t == 0:
        return p.astype(np.float32), state
    iid = p[:N_BANDS]
    prev = state.prev_iid
    # ||-v - u||^2 < ||v - u||^2  <=>  v . u < 0, with u the previous corrected column
    dots = np.einsum("bt,bt->t", iid[:, 1:], iid[:, :-1])
    first = 0.0 if prev is None else float(iid[:, 0] @ prev)
    sign = np.empty(t)
    s_prev = 1.0
    for j in range(t):                     # scalar recursion; the column products are vectorized
        d = first if j == 0 else dots[j - 1] * s_prev
        s = -1.0 if d < 0.0 else 1.0
        sign[j] = s
        s_prev = s
    iid *= sign
    a = float(smoothing)
    y0 = p[:, 0] if state.prev_out is None else state.prev_out
    out, _ = lfilter([1.0 - a], [1.0, -a], p, axis=1, zi=(a * y0)[:, None])
    return out.astype(np.float32), PostState(prev_iid=iid[:, -1].copy(), prev_out=out[:, -1].copy())


# ----------------------------------------------------------------------------- the table

_IID_OF_TOKEN = IID_TABLE[np.arange(N_TOKENS) // N_IC]   # token -> dequantized IID / IC
_IC_OF_TOKEN = IC_TABLE[np.arange(N_TOKENS) % N_IC]

@dataclass
class PSNNTable:
    """Key/value pairs: keys [shape=(n, 34)] float32, tokens [shape=(n, 34)] uint8.

    With an inverted-file partition, ``centroids`` [shape=(nlist, 34)] and ``list_sizes``
    [shape=(nlist,)] describe consecutive runs of pairs: the first ``list_sizes[0]`` pairs are
    closest to centroid 0, and so on (see :meth:`clustered`)."""
    keys: np.ndarray
    tokens: np.ndarray
    key_kind: str = "db-norm"
    meta: dict = field(default_factory=dict)
    centroids: Optional[np.ndarray] = None
    list_sizes: Optional[np.ndarray] = None

    def __post_init__(self):
        if self.keys.ndim != 2 or self.keys.shape[1] != N_BANDS or self.tokens.shape != self.keys.shape:
            raise ParameterError(f"PS-NN table needs keys and tokens of shape (n, {N_BANDS}); "
                                 f"got {self.keys.shape} and {self.tokens.shape}")
        if self.centroids is not None and (self.list_sizes is None or
                                           int(np.sum(self.list_sizes)) != self.keys.shape[0]):
            raise ParameterError("PS-NN table: inverted lists do not cover the pairs")

    def values(self, rows: Optional[np.ndarray] = None) -> np.ndarray:
        """Dequantized stacked parameters of ``rows`` (default: all) [shape=(len(rows), 68)] float32."""
        t = self.tokens if rows is None else self.tokens[rows]
        return np.concatenate([_IID_OF_TOKEN[t], _IC_OF_TOKEN[t]], axis=1)

    def clustered(self, nlist: int, seed: int = 0, niter: int = 20) -> "PSNNTable":
        """The same pairs partitioned by k-means into ``nlist`` inverted lists (for an IVF index:
        a query scans only the lists of its ``nprobe`` nearest centroids)."""
        km = faiss.Kmeans(N_BANDS, int(nlist), niter=niter, seed=int(seed), verbose=False)
        km.train(self.keys)
        _, assign = km.index.search(self.keys, 1)
        assign = assign[:, 0]
        order = np.argsort(assign, kind="stable")
        sizes = np.bincount(assign, minlength=int(nlist)).astype(np.int32)
        return PSNNTable(np.ascontiguousarray(self.keys[order]), np.ascontiguousarray(self.tokens[order]),
                         self.key_kind, dict(self.meta, nlist=int(nlist)),
                         np.ascontiguousarray(km.centroids, np.float32), sizes)

    def index(self, nprobe: int = 16):
        """A faiss index over the keys whose ids are row numbers: ``IndexFlatL2`` (exact) or,
        for a clustered table, an ``IndexIVFFlat`` filled list by list (no re-assignment)."""
        if self.centroids is None:
            idx = faiss.IndexFlatL2(N_BANDS)
            idx.add(self.keys)
            return idx
        quant = faiss.IndexFlatL2(N_BANDS)
        quant.add(self.centroids)
        idx = faiss.IndexIVFFlat(quant, N_BANDS, len(self.centroids))
        idx.is_trained = True
        ids = np.arange(self.keys.shape[0], dtype=np.int64)
        keys = np.ascontiguousarray(self.keys, np.float32)
        off = 0
        for l, n in enumerate(self.list_sizes.tolist()):
            if n:
                codes = np.ascontiguousarray(keys[off:off + n]).view(np.uint8)
                idx.invlists.add_entries(l, n, faiss.swig_ptr(ids[off:off + n]), faiss.swig_ptr(codes))
            off += n
        idx.ntotal = int(off)
        idx.nprobe = int(nprobe)
        return idx

    def save(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"tokens": self.tokens.astype(np.uint8)}
        if self.key_kind in ("db", "db-norm"):
            lo, hi = self.keys.min(axis=0), self.keys.max(axis=0)
            step = np.maximum(KEY_STEP_DB, (hi - lo) / 255.0).astype(np.float32)
            codes = np.clip(np.rint((self.keys - lo) / step), 0, 255).astype(np.uint8)
            arrays.update(keys=codes, key_offset=lo.astype(np.float32), key_step=step)
        else:
            arrays.update(keys=self.keys.astype(np.float32))
        if self.centroids is not None:
            arrays.update(centroids=self.centroids.astype(np.float32), list_sizes=self.list_sizes.astype(np.int32))
        meta = dict(self.meta, key_kind=self.key_kind, format=FORMAT_VERSION,
                    key_frames=KEY_FRAMES, smoothing=SMOOTHING)
        with audio.replacing(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, meta=np.array(json.dumps(meta)), **arrays)
        return path

    @classmethod
    def load(cls, path) -> "PSNNTable":
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != FORMAT_VERSION:
                raise ParameterError(f"{path}: PS-NN file format {meta.get('format')}, "
                                     f"this version reads {FORMAT_VERSION}")
            keys = z["keys"]
            if keys.dtype == np.uint8:
                keys = z["key_offset"][None, :] + keys.astype(np.float32) * z["key_step"][None, :]
            tokens = z["tokens"]
            cent = z["centroids"] if "centroids" in z.files else None
            sizes = z["list_sizes"] if "list_sizes" in z.files else None
        return cls(np.ascontiguousarray(keys, np.float32), tokens, meta["key_kind"], meta, cent, sizes)


# ----------------------------------------------------------------------------- the model

class PSNNModel:
    """Deterministic nearest-neighbour PS predictor (``seed``/``temperature``/``guidance`` ignored)."""
    name = "ps-nn"
    generative = False

    def __init__(self, table: PSNNTable, nprobe: Optional[int] = None):
        self.table = table
        self.key_kind = table.key_kind
        self.index = table.index(nprobe or int(table.meta.get("nprobe", NPROBE)))

    def predict(self, mono, *, seed: int = 0, temperature=None, guidance=None,
                progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None) -> PSParams:
        """PS parameters [shape=(34, n_frames(len(mono)))] for mono [shape=(n,)] at 44.1 kHz."""
        x = np.asarray(mono, dtype=np.float32)
        if x.ndim != 1:
            raise ParameterError(f"PS-NN expects mono audio of shape (n,), got {x.shape}")
        total = n_frames(len(x))
        out = np.empty((2 * N_BANDS, total), np.float32)
        neutral = np.concatenate([np.zeros(N_BANDS), np.ones(N_BANDS)])
        hist_p = hist_m = None
        state = PostState()
        for f0 in range(0, total, CHUNK):
            check_cancel(cancel)
            f1 = min(total, f0 + CHUNK)
            pw, mg = frame_stats(stft_frames(x, f0, f1), magnitude=self.key_kind == "mag")
            mp, hist_p = causal_mean(pw, hist_p)
            mm = None
            if mg is not None:
                mm, hist_m = causal_mean(mg, hist_m)
            _, idx = self.index.search(keys_from_power(mp, mm, self.key_kind), 1)
            vals = self.table.values(idx[:, 0]).T.astype(np.float64)
            vals[:, mp.sum(axis=0) < SILENT_POWER] = neutral[:, None]
            out[:, f0:f1], state = postprocess(vals, state)
            report(progress, "ps-nn", f1, total)
        return PSParams.from_stacked(out)


def available(folder: Path) -> tuple[bool, str]:
    p = Path(folder) / FILE_NAME
    if not p.exists():
        return False, f"{p} not found (build it with: soundstage train --method ps-nn --data DIR)"
    return True, ""


def load(folder: Optional[Path] = None) -> PSNNModel:
    return PSNNModel(PSNNTable.load(Path(folder or models_dir()) / FILE_NAME))


register_model("ps-nn", label="PS-NN",
               description="Nearest neighbour: retrieves the PS parameters of the most similar "
                           "20-frame spectrum in real stereo music, de-wobbled and smoothed. Deterministic.",
               loader=load, available=available, files=(FILE_NAME,))
