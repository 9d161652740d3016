"""Input features of the neural PS models, and the on-disk training cache.

Input (the mono downmix S, the paper's Eq. 2 input to phi): the power spectrum of the STFT
(4096 / hop 1024, the PS analysis settings) pooled into ``N_FEAT`` = 96 ERB-spaced bands,
as ``log10(power + 1e-10)`` [shape=(frames, 96)], float32. A gain of g dB is exactly a shift of
g/10 on every feature (up to the floor), which is how training augments gain without re-analysis.
The models normalize features with a mean/std stored in their checkpoint.

Targets: the PS parameters of the stereo signal (:func:`core.ps.analyze`) and their fused
tokens. The training cache keeps, per stereo file, ``feats`` float16 [frames, 96], ``tokens``
uint8 [frames, 34], ``iid`` / ``ic`` float16 [frames, 34] in ``~/.cache/soundstage-train/feats``
(computed once, keyed by path, size and mtime).
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .. import SAMPLE_RATE
from ..errors import ParameterError
from ..ps import analyze_spectra, to_tokens
from ..stft import N_BINS, N_FFT, n_frames, stft_frames
from ..settings import training_cache_dir
from core import lazy
audio = lazy.module("core.audio")
soundfile = lazy.module("soundfile")

__all__ = ["N_FEAT", "feat_edges", "pool_features", "mono_features", "stereo_example", "cache_dir",
           "cached_example", "build_cache"]

N_FEAT = 96
_FLOOR = 1e-10


def cache_dir() -> Path:
    return training_cache_dir("train")


@lru_cache(maxsize=2)
def feat_edges(n: int = N_FEAT) -> np.ndarray:
    """Bin edges [shape=(n+1,)] of ``n`` ERB-spaced pooling bands (at least one bin each)."""
    erb = lambda f: 21.4 * np.log10(1.0 + 0.00437 * f)  # noqa: E731
    inv = lambda e: (10 ** (e / 21.4) - 1.0) / 0.00437  # noqa: E731
    hz = inv(np.linspace(erb(20.0), erb(SAMPLE_RATE / 2), n + 1))
    edges = np.round(hz / (SAMPLE_RATE / N_FFT)).astype(np.int64)
    edges[0], edges[-1] = 1, N_BINS  # bin 0 (DC) is left out
    for i in range(1, n + 1):
        edges[i] = max(edges[i], edges[i - 1] + 1)
    if edges[-1] != N_BINS:
        raise ParameterError(f"cannot fit {n} feature bands")
    return edges


def pool_features(power: np.ndarray) -> np.ndarray:
    """Power spectrogram [shape=(2049, frames)] -> log-band features [shape=(frames, 96)] float32."""
    e = feat_edges()
    pooled = np.add.reduceat(power[: e[-1]], e[:-1], axis=0) / np.diff(e)[:, None]
    return np.log10(pooled.T + _FLOOR).astype(np.float32)


FEATURE_CHUNK = 512      # frames per spectrogram chunk (about 12 s; 8 MB of spectrum, the same features)


def mono_features(mono: np.ndarray, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
    """Features of frames ``start:stop`` of a mono signal [shape=(n,)] -> [shape=(frames, 96)]."""
    mono = np.asarray(mono, dtype=np.float32)
    if mono.ndim != 1:
        raise ParameterError(f"mono_features expects a 1-D signal, got shape {mono.shape}")
    stop = n_frames(len(mono)) if stop is None else stop
    if stop - start <= FEATURE_CHUNK:
        spec = stft_frames(mono, start, stop)
        return pool_features(spec.real ** 2 + spec.imag ** 2)
    # in chunks of frames: an hour's full spectrogram would take gigabytes; features are per frame
    out = np.empty((stop - start, len(feat_edges()) - 1), np.float32)
    for a in range(start, stop, FEATURE_CHUNK):
        b = min(stop, a + FEATURE_CHUNK)
        spec = stft_frames(mono, a, b)
        out[a - start:b - start] = pool_features(spec.real ** 2 + spec.imag ** 2)
    return out


def stereo_example(stereo: np.ndarray, chunk: int = 2048) -> dict:
    """Training example of a stereo signal [shape=(n, 2)]: mono-downmix features and the stereo's
    PS parameters and tokens (computed in chunks of frames to bound memory)."""
    stereo = np.asarray(stereo, dtype=np.float32)
    if stereo.ndim != 2 or stereo.shape[1] != 2:
        raise ParameterError(f"expected stereo of shape (n, 2), got {stereo.shape}")
    t = n_frames(len(stereo))
    feats, iid, ic, tok = [], [], [], []
    left, right = np.ascontiguousarray(stereo[:, 0]), np.ascontiguousarray(stereo[:, 1])
    for a in range(0, t, chunk):
        b = min(t, a + chunk)
        L, R = stft_frames(left, a, b), stft_frames(right, a, b)
        S = 0.5 * (L + R)  # the STFT is linear: spectrum of the downmix (L + R) / 2
        feats.append(pool_features(S.real ** 2 + S.imag ** 2))
        p = analyze_spectra(L, R)
        iid.append(p.iid.T), ic.append(p.ic.T), tok.append(to_tokens(p).T)
    return {"feats": np.concatenate(feats).astype(np.float16),
            "iid": np.concatenate(iid).astype(np.float16),
            "ic": np.concatenate(ic).astype(np.float16),
            "tokens": np.concatenate(tok).astype(np.uint8)}


def _key(path: Path) -> str:
    st = path.stat()
    h = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{int(st.st_mtime)}|v1".encode()).hexdigest()[:16]
    return f"{path.stem[:40]}-{h}.npz"


def cached_example(path, *, folder: Optional[Path] = None) -> dict:
    """:func:`stereo_example` of a stereo file, computed once and kept in the training cache."""
    path = Path(path)
    folder = Path(folder) if folder is not None else cache_dir() / "feats"
    folder.mkdir(parents=True, exist_ok=True)
    f = folder / _key(path)
    if f.exists():
        with np.load(f) as z:
            return {k: z[k] for k in z.files}
    x, sr = soundfile.read(str(path), dtype="float32", always_2d=True)
    if x.shape[1] == 1:
        x = np.repeat(x, 2, axis=1)
    x = audio.resample(x[:, :2], sr, SAMPLE_RATE)
    ex = stereo_example(x)
    with audio.replacing(f) as tmp, open(tmp, "wb") as out:
        np.savez(out, **ex)
    return ex


def build_cache(paths: list, *, progress: Optional[Callable[[int, int, str], None]] = None,
                folder: Optional[Path] = None) -> list[dict]:
    """Training examples of every file in ``paths`` (cached); ``progress(done, total, name)``."""
    out = []
    for i, p in enumerate(paths):
        out.append(cached_example(p, folder=folder))
        if progress is not None:
            progress(i + 1, len(paths), Path(p).name)
    return out
