"""The source-formation algorithm as it was before issue 16 (frequency-region linking), kept only so that
bench/formation_multitrack.py can compare against it; not registered as a backend.

Sound source formation backend (Lagrange, Martins & Tzanetakis 2007, AES 122).

Pipeline, all on the 4096 / 1024 Hann STFT of :mod:`core.stft` (computed in chunks, so memory
stays bounded on long recordings)::

    peaks      per frame, the most prominent spectral peaks         (separation.peaks)
    clusters   per texture window (~0.2 s), a similarity graph of    (separation.ncut)
               frequency, amplitude and harmonicity (HWPS), cut by
               normalized-cut spectral clustering
    sources    clusters linked across windows into sources that persist over the recording,
               by their pitch and spectral centroid (weighted k-means over all clusters, each
               cluster joining its nearest source)
    stems      each source's peaks draw the window's main lobe into a magnitude model; soft
               masks share each bin between the sources and a residual (whatever power the
               peaks do not explain: noise, transients, reverberation). The masks sum to one,
               so the stems add back to the input.

    backend = separation.get("formation", n_sources=3)
    sources = backend.separate(mono, progress=cb, cancel=event)
"""
from __future__ import annotations

import threading
import time
from typing import Optional

import numpy as np

from core import SAMPLE_RATE
from core.errors import ParameterError
from core.progress import ProgressFn, check_cancel, report
from core.stft import HOP, N_FFT, istft, n_frames, stft

from separation.base import RESIDUAL_COLOUR, Source, colour_for
from separation.ncut import kmeans, normalized_cut, similarity, single_threaded_blas
from separation.peaks import Peaks, harmonic_pitches, pick_peaks

__all__ = ["LegacyFormation"]

N_SOURCES_RANGE = (2, 8)
_CHUNK = 256          # frames per STFT chunk (~6 s)
_CTX = 2              # context frames either side of a chunk (n_fft / hop / 2)
_K_MAX = 6            # at most this many clusters per texture window (or n_sources if larger)
_MIN_SEPARATION = 0.5  # octaves of pitch between automatic sources
_MIN_SHARE = 0.03      # least share of the peak energy an automatic source must hold
_FAINT = 0.005         # automatic sources under this share of the input energy join the residual


class _Ticker:
    """Checks ``cancel`` on every call; reports a monotone overall fraction at most every 0.1 s,
    and always when the stage changes (so every stage is seen, however short)."""

    def __init__(self, progress: Optional[ProgressFn], cancel: Optional[threading.Event]):
        self.progress, self.cancel = progress, cancel
        self.last_t = -1.0
        self.last_stage = None
        self.done = 0.0

    def __call__(self, stage: str, fraction: float, *, force: bool = False) -> None:
        check_cancel(self.cancel)
        self.done = max(self.done, min(1.0, fraction))
        now = time.monotonic()
        if self.progress is not None and (force or stage != self.last_stage or now - self.last_t >= 0.1):
            self.last_t, self.last_stage = now, stage
            report(self.progress, stage, self.done, 1.0)


def _chunk_spectrum(x: np.ndarray, t0: int, t1: int) -> np.ndarray:
    """STFT frames ``t0 - _CTX .. t1 + _CTX`` of ``x`` (zero outside) [shape=(bins, t1-t0+2*_CTX+1)].

    Frame ``j`` of the result is global frame ``t0 - _CTX + j``, identical to ``stft(x)`` there."""
    s0, s1 = (t0 - _CTX) * HOP, (t1 + _CTX) * HOP
    seg = np.zeros(s1 - s0, dtype=np.float32)
    a, b = max(s0, 0), min(s1, len(x))
    if b > a:
        seg[a - s0:b - s0] = x[a:b]
    return stft(seg)


def _lobe(delta: np.ndarray) -> np.ndarray:
    """Magnitude of the Hann window's main lobe at ``delta`` bins off centre (1 at 0, 0 beyond ±2)."""
    den = 1.0 - delta * delta
    safe = np.where(np.abs(den) < 1e-6, 1.0, den)
    val = np.where(np.abs(den) < 1e-6, 0.5, np.sinc(delta) / safe)
    return np.where(np.abs(delta) < 2.0, np.abs(val), 0.0)


def _energy(x: np.ndarray, block: int = 1 << 20) -> float:
    """Sum of squares of ``x`` [shape=(n,)] in float64, without a float64 copy of it."""
    return float(sum(np.dot(x[i:i + block].astype(np.float64), x[i:i + block].astype(np.float64))
                     for i in range(0, len(x), block)))


def _fold_faint(x: np.ndarray, stems: np.ndarray, pitches: np.ndarray, src: np.ndarray):
    """Fold automatic sources holding under _FAINT of the input's energy into the residual
    (noise peaks, stray clusters). Returns ``(stems, pitches, source per peak)`` renumbered."""
    total = _energy(x)
    keep = np.array([_energy(s) >= _FAINT * total for s in stems[:-1]], dtype=bool)
    if keep.all():
        return stems, pitches, src
    for s in np.flatnonzero(~keep):
        stems[-1] += stems[s]
    remap = np.cumsum(keep) - 1
    src = np.where(keep[src], remap[src], -1)
    return np.concatenate([stems[:-1][keep], stems[-1:]]), pitches[keep], src


def _register_name(pitch: float) -> str:
    return "low" if pitch < 200 else ("mid" if pitch < 800 else "high")


class LegacyFormation:
    """Source formation by spectral-peak clustering (see the module docstring).

    ``n_sources``: 2..8 sources (plus the residual), or ``None`` to choose from the
    recording. ``sensitivity`` in [0, 1]: higher picks weaker, less prominent peaks (more of
    the signal goes to sources, less to the residual). ``max_peaks``: peaks per frame (5..100).
    ``texture_seconds``: the clustering window. ``seed`` makes k-means reproducible.
    """

    name = "formation"

    def __init__(self, *, n_sources: Optional[int] = None, sensitivity: float = 0.5,
                 max_peaks: int = 30, texture_seconds: float = 0.2, seed: int = 0):
        lo, hi = N_SOURCES_RANGE
        if n_sources is not None and not (lo <= int(n_sources) <= hi):
            raise ParameterError(f"n_sources must be between {lo} and {hi} (or None for automatic), got {n_sources}")
        if not 0.0 <= float(sensitivity) <= 1.0:
            raise ParameterError(f"sensitivity must be in [0, 1], got {sensitivity}")
        if not 5 <= int(max_peaks) <= 100:
            raise ParameterError(f"max_peaks must be between 5 and 100, got {max_peaks}")
        if not 0.05 <= float(texture_seconds) <= 2.0:
            raise ParameterError(f"texture_seconds must be in [0.05, 2], got {texture_seconds}")
        self.n_sources = None if n_sources is None else int(n_sources)
        self.sensitivity = float(sensitivity)
        self.max_peaks = int(max_peaks)
        self.texture_frames = max(2, int(round(texture_seconds * SAMPLE_RATE / HOP)))
        self.seed = int(seed)

    # -- pipeline -------------------------------------------------------------------------
    def separate(self, audio: np.ndarray, *, progress: Optional[ProgressFn] = None,
                 cancel: Optional[threading.Event] = None) -> list[Source]:
        """Split mono ``audio`` [shape=(n,)] into sources plus a residual; they sum to ``audio``."""
        x = np.asarray(audio)
        if x.ndim != 1:
            raise ParameterError(f"formation expects mono audio of shape (n,), got {x.shape}")
        if x.shape[0] == 0:
            raise ParameterError("formation got an empty signal")
        x = x.astype(np.float32, copy=False)
        if not np.isfinite(x).all():
            raise ParameterError("audio contains NaN or infinite samples")
        tick = _Ticker(progress, cancel)
        tick("peaks", 0.0, force=True)
        peaks = self.analyse(x, tick=tick)
        if len(peaks) == 0:
            tick("done", 1.0, force=True)
            return [Source("Residual", x.copy(), RESIDUAL_COLOUR, "residual", {"share": 1.0})]
        with single_threaded_blas():
            cl_peak, feats, k_per_window = self._cluster(peaks, tick)
            tick("linking", 0.80, force=True)
            src_of_peak, pitches = self._link(cl_peak, feats, k_per_window)
        stems = self._resynthesize(x, peaks, src_of_peak, len(pitches), tick)
        if self.n_sources is None:
            stems, pitches, src_of_peak = _fold_faint(x, stems, pitches, src_of_peak)
        tick("done", 1.0, force=True)
        return self._sources(x, stems, pitches, src_of_peak)

    def analyse(self, x: np.ndarray, *, tick=None) -> Peaks:
        """Spectral peaks of every frame of ``x`` [shape=(n,)] (computed chunk by chunk)."""
        total = n_frames(len(x))
        s = self.sensitivity
        parts = []
        for t0 in range(0, total, _CHUNK):
            t1 = min(t0 + _CHUNK, total)
            mag = np.abs(_chunk_spectrum(x, t0, t1)[:, _CTX:_CTX + t1 - t0])
            parts.append(pick_peaks(mag, sr=SAMPLE_RATE, n_fft=N_FFT, max_peaks=self.max_peaks,
                                    prominence_db=18.0 - 12.0 * s, range_db=50.0 + 30.0 * s,
                                    floor_db=-80.0 - 20.0 * s, frame_offset=t0))
            if tick is not None:
                tick("peaks", 0.15 * t1 / total)
        return Peaks.concat(parts)

    def _cluster(self, peaks: Peaks, tick: _Ticker):
        """Normalized cuts per texture window.

        Returns ``(cluster id per peak [shape=(P,)], cluster features [shape=(C, 5)]:
        window, pitch Hz, centroid Hz, energy, n_peaks; clusters per non-empty window)``."""
        rng = np.random.default_rng(self.seed)
        # Over-segment each window a little (pure clusters); linking merges them into sources.
        k_max = max(_K_MAX, self.n_sources or 0)
        total = int(peaks.frame[-1]) + 1
        tf = self.texture_frames
        cl_peak = np.zeros(len(peaks), dtype=np.int64)
        feats: list[tuple] = []
        ks: list[int] = []
        for w, f0 in enumerate(range(0, total, tf)):
            tick("clustering", 0.15 + 0.65 * f0 / total)
            sl = peaks.span(f0, f0 + tf)
            n = sl.stop - sl.start
            if n == 0:
                continue
            freq, mag, db, fr = peaks.freq[sl], peaks.mag[sl], peaks.db[sl], peaks.frame[sl]
            if n < 3:
                labels, k = np.zeros(n, dtype=np.int64), 1
            else:
                wraps = harmonic_pitches(freq, mag, n_pitches=5)
                aff = similarity(freq, db, mag, fr, wraps)
                labels, k = normalized_cut(aff, k_max=k_max, rng=rng)
            base = len(feats)
            cl_peak[sl] = base + labels
            ks.append(k)
            for c in range(k):
                m = labels == c
                fc, ac = freq[m], mag[m]
                p = harmonic_pitches(fc, ac, n_pitches=1)
                pitch = float(p[0]) if p.size else float(fc.min())
                e = ac * ac
                centroid = float(np.exp(np.sum(e * np.log(fc)) / np.sum(e)))
                feats.append((w, pitch, centroid, float(e.sum()), int(m.sum())))
        return cl_peak, np.asarray(feats, dtype=np.float64), np.asarray(ks)

    def _link(self, cl_peak: np.ndarray, feats: np.ndarray, ks: np.ndarray):
        """Group all windows' clusters into persistent sources by pitch / centroid signature.

        Returns ``(source per peak [shape=(P,)], pitch of each source [shape=(S,)])``, sources
        ordered from low to high pitch."""
        pitch, centroid, energy = feats[:, 1], feats[:, 2], feats[:, 3]
        sig = np.stack([np.log2(pitch), 0.5 * np.log2(centroid)], axis=1)
        weight = np.sqrt(energy) + 1e-12
        rng = np.random.default_rng(self.seed + 1)
        if self.n_sources is not None:
            labels, _ = kmeans(sig, self.n_sources, rng=rng, weights=weight, n_init=4)
        else:
            # Automatic: the most sources whose signatures stay _MIN_SEPARATION apart and that
            # each hold a real share of the peak energy.
            # One source when nothing else stands apart (a single tone, noise).
            labels = np.zeros(len(sig), dtype=np.int64)
            for n in range(2, min(N_SOURCES_RANGE[1], int(ks.max(initial=1)) + 2) + 1):
                if len(sig) < n:
                    break
                lab, cen = kmeans(sig, n, rng=rng, weights=weight, n_init=4)
                d = np.abs(cen[:, None, 0] - cen[None, :, 0])  # pitch distance, octaves
                share = np.bincount(lab, weights=energy, minlength=n) / energy.sum()
                if d[np.triu_indices(len(cen), 1)].min() < _MIN_SEPARATION or share.min() < _MIN_SHARE:
                    break
                labels = lab
        used = np.unique(labels)
        # Pitch of a source: energy-weighted median of its clusters' pitches.
        src_pitch = np.empty(len(used))
        for i, g in enumerate(used):
            m = labels == g
            order = np.argsort(pitch[m])
            cw = np.cumsum(energy[m][order])
            src_pitch[i] = pitch[m][order][np.searchsorted(cw, 0.5 * cw[-1])]
        rank = np.argsort(src_pitch)
        remap = np.full(labels.max() + 1, -1, dtype=np.int64)
        remap[used[rank]] = np.arange(len(used))
        return remap[labels][cl_peak], src_pitch[rank]

    def _resynthesize(self, x: np.ndarray, peaks: Peaks, src: np.ndarray, n_src: int,
                      tick: _Ticker) -> np.ndarray:
        """Masked stems [shape=(n_src + 1, n)], the last one the residual."""
        n = len(x)
        total = n_frames(n)
        out = np.zeros((n_src + 1, n), dtype=np.float32)
        n_bins = N_FFT // 2 + 1
        offsets = np.arange(-2, 3)
        for t0 in range(0, total, _CHUNK):
            t1 = min(t0 + _CHUNK, total)
            spec = _chunk_spectrum(x, t0, t1)
            n_fr = spec.shape[1]
            sl = peaks.span(t0 - _CTX, t0 - _CTX + n_fr)
            bins = np.rint(peaks.bin[sl]).astype(np.int64)[:, None] + offsets[None, :]
            amp = peaks.mag[sl][:, None] * _lobe(bins - peaks.bin[sl][:, None])
            ok = (bins >= 0) & (bins < n_bins)
            j = (peaks.frame[sl] - (t0 - _CTX))[:, None]
            idx = ((src[sl][:, None] * n_bins + bins) * n_fr + j)[ok]
            model = np.bincount(idx, weights=amp[ok], minlength=n_src * n_bins * n_fr)
            power = (model.reshape(n_src, n_bins, n_fr) ** 2).astype(np.float32)
            mix = np.abs(spec) ** 2
            explained = power.sum(axis=0)
            den = explained + np.maximum(mix - explained, 0.0) + 1e-20
            masks = power / den
            rest = 1.0 - masks.sum(axis=0)
            a, b = t0 * HOP, min(t1 * HOP, n)
            seg_len = (t1 - t0 + 2 * _CTX) * HOP
            for s in range(n_src + 1):
                m = masks[s] if s < n_src else rest
                y = istft(spec * m, length=seg_len)
                out[s, a:b] = y[_CTX * HOP:_CTX * HOP + (b - a)]
            tick("resynthesis", 0.82 + 0.18 * t1 / total)
        return out

    def _sources(self, x: np.ndarray, stems: np.ndarray, pitches: np.ndarray,
                 src_of_peak: np.ndarray) -> list[Source]:
        energy = np.array([_energy(s) for s in stems])
        total = _energy(x) or 1.0
        out = []
        for s, p in enumerate(pitches):
            meta = {"pitch_hz": float(p), "share": float(energy[s] / total),
                    "n_peaks": int(np.count_nonzero(src_of_peak == s))}
            out.append(Source(f"Source {s + 1} ({_register_name(p)}, ~{p:.0f} Hz)", stems[s],
                              colour_for(s), "source", meta))
        out.append(Source("Residual", stems[-1], RESIDUAL_COLOUR, "residual",
                          {"share": float(energy[-1] / total)}))
        return out
