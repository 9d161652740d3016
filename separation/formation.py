"""Sound source formation backend (Lagrange, Martins & Tzanetakis 2007, AES 122).

Pipeline, all on the 4096 / 1024 Hann STFT of :mod:`core.stft` (computed in chunks, so memory
stays bounded on long recordings)::

    peaks      per frame, the most prominent spectral peaks, with     (separation.peaks,
               the percussive share of their tiles                    separation.timbre)
    clusters   per texture window (~0.2 s), a similarity graph of    (separation.ncut)
               frequency, amplitude and harmonicity (HWPS), cut by
               normalized-cut spectral clustering
    tracks     a window's cluster continues the previous window's    (separation.timbre)
               cluster of the same pitch: notes and held chords
    sources    tracks grouped into instruments: a small network      (separation.grouping)
               fitted on rendered General-MIDI scenes gives P(same
               instrument) of every pair of tracks from their timbre
               (envelope over the fundamental and over frequency,
               percussiveness, decay, vibrato ...), loudness, register
               and timing (overlap, gaps, common onsets); average
               linkage cut where groups are no longer likely one
               instrument, so the number of sources follows the music
    stems      each source's peaks draw the window's main lobe into a magnitude model; soft
               masks share each bin between the sources and the unexplained power (noise,
               transients, reverberation), whose percussive part goes to the percussive source
               and the rest to the residual. The masks sum to one, so the stems add back to
               the input.

Sources are named from their measurements ("bass line", "percussive", "lead around A4",
"sustained pad", ...); the names are only proposals a user can rename.

    backend = separation.get("formation", n_sources=3)
    sources = backend.separate(mono, progress=cb, cancel=event)

With a ``cache_dir`` (the app and the command line pass the user's stem cache) the sources are kept
in the on-disk :class:`separation.stem_cache.StemCache` as Demucs stems are, keyed by the audio,
the formation's signature (:data:`VERSION` and the grouping model's file) and every setting that
changes the output: reopening or re-rendering a recording skips the formation, and an entry made
with other settings is never used.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import numpy as np
from scipy.ndimage import uniform_filter1d

from core import SAMPLE_RATE
from core.errors import ParameterError
from core.progress import ProgressFn, check_cancel, report
from core.spill import release, signal_buffer
from core.stft import HOP, N_FFT, istft, n_frames, stft
from core.hashing import sha256_file

from .base import RESIDUAL_COLOUR, Source, colour_for, register
from .ncut import normalized_cut, similarity, single_threaded_blas
from .peaks import Peaks, harmonic_pitches, pick_peaks
from .grouping import group_tracks, tracks_from_clusters
from .timbre import FEATURES, cluster_features, continuation, describe, link_tracks, percussive_fraction
from core import lazy
grouping = lazy.module("separation.grouping")
stem_cache = lazy.module("separation.stem_cache")

__all__ = ["SourceFormation", "N_SOURCES_RANGE", "VERSION"]

VERSION = 2           # bump when the sources change for the same input and settings (cache entries)

N_SOURCES_RANGE = (2, 16)   # up to 16: more, smaller sources for a person to merge (issue 26)
_CHUNK = 256          # frames per STFT chunk (~6 s)
_CTX = 8              # context frames either side of a chunk (percussive smoothing, overlap-add)
_K_MAX = 12           # at most this many clusters per texture window (or n_sources if larger): purer
                      # clusters (the grouping joins them into instruments)
_MAX_AUTO = 6         # at most this many automatic sources (besides the residual)
_MIN_SHARE = 0.03     # least share of the peak energy an automatic source must hold
_TINY = 0.01          # fixed count: groups under this share of the peak energy join their closest first
_IMPULSIVE = 4.0      # unexplained transients form a source only when this impulsive (peak / median power)
_FAINT = 0.005        # automatic sources under this share of the input energy join the residual
RESYNTH_WORKERS = 2   # chunks of the stems made at a time (the same samples as one at a time)
_SPREAD = 6           # bins either side of a source's peaks that its neighbourhood covers
_RESIDUAL_WEIGHT = 1.0  # how strongly the residual competes for unexplained power near the sources
_PERCUSSIVE = 0.4     # a source whose peaks are at least this percussive takes the unexplained transients
_F = {name: i for i, name in enumerate(FEATURES)}


class _Ticker:
    """Checks ``cancel`` on every call; reports a monotone overall fraction at most every 0.1 s
    unless a tenth of the work was done since the last report, and always when the stage changes
    (so every stage is seen, however short, and no report misses a sixth of the work however fast
    the machine)."""

    def __init__(self, progress: Optional[ProgressFn], cancel: Optional[threading.Event]):
        self.progress, self.cancel = progress, cancel
        self.last_t = -1.0
        self.last_stage = None
        self.last_done = 0.0
        self.done = 0.0

    def __call__(self, stage: str, fraction: float, *, force: bool = False) -> None:
        check_cancel(self.cancel)
        self.done = max(self.done, min(1.0, fraction))
        now = time.monotonic()
        if self.progress is not None and (force or stage != self.last_stage or now - self.last_t >= 0.1
                                          or self.done - self.last_done >= 0.1):
            self.last_t, self.last_stage, self.last_done = now, stage, self.done
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


_BLOCK = 1 << 20       # samples per block when walking a whole stem (a file-mapped one keeps a block resident)


def _energy(x: np.ndarray, block: int = _BLOCK) -> float:
    """Sum of squares of ``x`` [shape=(n,)] in float64, without a float64 copy of it."""
    total = 0
    for i in range(0, len(x), block):
        total += np.dot(x[i:i + block].astype(np.float64), x[i:i + block].astype(np.float64))
        release(x)
    return float(total)


def _finite(x: np.ndarray, block: int = _BLOCK) -> bool:
    """Whether every sample of ``x`` [shape=(n,)] is finite (a block at a time: no n-long mask)."""
    for i in range(0, len(x), block):
        ok = bool(np.isfinite(x[i:i + block]).all())
        release(x)
        if not ok:
            return False
    return True


def _add_into(dst: np.ndarray, src: np.ndarray, block: int = _BLOCK) -> None:
    """``dst += src`` [shape=(n,)] a block at a time (the same sums)."""
    for i in range(0, len(dst), block):
        dst[i:i + block] += src[i:i + block]
        release(dst, src)


def _impulsive(y: np.ndarray) -> bool:
    """Whether ``y`` [shape=(n,)] comes in bursts (drums) rather than steadily (noise, hiss): the
    95th percentile of its power per hop over the median is at least _IMPULSIVE."""
    m = len(y) // HOP
    if m < 8:
        return False
    rows = _BLOCK // HOP
    p = np.empty(m, np.result_type(y.dtype, np.float32))
    for r in range(0, m, rows):          # a block of hops at a time (each hop's sum as over the whole)
        q = min(m, r + rows)
        seg = y[r * HOP:q * HOP].reshape(q - r, HOP)
        p[r:q] = np.einsum("ij,ij->i", seg, seg)
        release(y)
    return float(np.percentile(p, 95)) >= _IMPULSIVE * max(float(np.median(p)), 1e-20)


def _unique_names(names: list[str]) -> list[str]:
    """``names`` with repeats numbered: ["lead around A4", "lead around A4 (2)"]."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n} ({seen[n]})")
    return out


class SourceFormation:
    """Source formation by spectral-peak clustering (see the module docstring).

    ``n_sources``: 2..16 sources (plus the residual), or ``None`` to choose from the
    recording. ``sensitivity`` in [0, 1]: higher picks weaker, less prominent peaks (more of
    the signal goes to sources, less to the residual). ``max_peaks``: peaks per frame (5..100).
    ``texture_seconds``: the clustering window. ``seed`` makes k-means reproducible.
    ``cache_dir``: keep the sources in the stem cache there (``cache_max_bytes``: its size limit;
    default none: no cache); ``cache=False`` turns it off.
    """

    name = "formation"

    def __init__(self, *, n_sources: Optional[int] = None, sensitivity: float = 0.5,
                 max_peaks: int = 30, texture_seconds: float = 0.2, seed: int = 0, cache: bool = True,
                 cache_dir=None, cache_max_bytes: Optional[int] = None):
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
        self.cache = None
        if cache and cache_dir is not None:
            self.cache = stem_cache.StemCache(cache_dir, max_bytes=cache_max_bytes)
        self.last_from_cache = False

    def settings(self) -> dict:
        """What changes the output (the cache key, with :meth:`signature`)."""
        return {"n_sources": self.n_sources, "sensitivity": self.sensitivity, "max_peaks": self.max_peaks,
                "texture_frames": self.texture_frames, "seed": self.seed}

    @staticmethod
    def signature() -> str:
        """The formation's version and its grouping model's file (its SHA-256)."""
        return f"v{VERSION}-{sha256_file(grouping.MODEL_PATH)[:16]}"

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
        if not _finite(x):
            raise ParameterError("audio contains NaN or infinite samples")
        self.last_from_cache = False
        key = None
        if self.cache is not None:
            key = self.cache.key(stem_cache.StemCache.content_hash(x, SAMPLE_RATE), self.name, self.signature(),
                                 self.settings())
            hit = self.cache.load(key)
            if hit is not None and all(len(src.audio) == len(x) for src in hit):
                self.last_from_cache = True
                report(progress, "separate", 1, 1, "from the stem cache")
                return hit
        sources = self._separate(x, progress=progress, cancel=cancel)
        if self.cache is not None:
            try:
                self.cache.store(key, sources, meta={"backend": self.name, "signature": self.signature(),
                                                     "seconds": len(x) / SAMPLE_RATE})
            except OSError:
                pass  # a full or read-only cache never fails a separation
        return sources

    def _separate(self, x: np.ndarray, *, progress: Optional[ProgressFn] = None,
                  cancel: Optional[threading.Event] = None) -> list[Source]:
        # every matrix here is small (window graphs, track pairs, a few hundred rows): threaded
        # BLAS only spins (the track grouping took 7x the CPU with two OpenBLAS threads)
        with single_threaded_blas():
            return self._separate_blas1(x, progress=progress, cancel=cancel)

    def _separate_blas1(self, x: np.ndarray, *, progress: Optional[ProgressFn] = None,
                        cancel: Optional[threading.Event] = None) -> list[Source]:
        tick = _Ticker(progress, cancel)
        tick("peaks", 0.0, force=True)
        peaks, perc = self.analyse(x, tick=tick)
        if len(peaks) == 0:
            tick("done", 1.0, force=True)
            return [Source("Residual", x.copy(), RESIDUAL_COLOUR, "residual", {"share": 1.0})]
        cl_peak, feats, track = self._cluster(peaks, perc, tick)
        tick("linking", 0.80, force=True)
        src_of_cluster, info = self._link(feats, track)
        src_of_peak = src_of_cluster[cl_peak]
        stems = self._resynthesize(x, peaks, src_of_peak, len(info), tick)
        tick("done", 1.0, force=True)
        return self._sources(x, stems, info, src_of_peak)

    def analyse(self, x: np.ndarray, *, tick=None) -> tuple[Peaks, np.ndarray]:
        """Spectral peaks of every frame of ``x`` [shape=(n,)] (computed chunk by chunk) and the
        percussive share of each peak's tile [shape=(P,)]."""
        total = n_frames(len(x))
        s = self.sensitivity
        parts, percs = [], []
        for t0 in range(0, total, _CHUNK):
            t1 = min(t0 + _CHUNK, total)
            full = np.abs(_chunk_spectrum(x, t0, t1))
            release(x)                                   # (a file-mapped input: a chunk resident)
            mag = full[:, _CTX:_CTX + t1 - t0]
            pk = pick_peaks(mag, sr=SAMPLE_RATE, n_fft=N_FFT, max_peaks=self.max_peaks,
                            prominence_db=18.0 - 12.0 * s, range_db=50.0 + 30.0 * s,
                            floor_db=-80.0 - 20.0 * s, frame_offset=t0)
            pf = percussive_fraction(full)[:, _CTX:_CTX + t1 - t0]
            percs.append(pf[np.rint(pk.bin).astype(np.int64), pk.frame - t0])
            parts.append(pk)
            if tick is not None:
                tick("peaks", 0.15 * t1 / total)
        return Peaks.concat(parts), (np.concatenate(percs) if percs else np.zeros(0))

    def _cluster(self, peaks: Peaks, perc: np.ndarray, tick: _Ticker):
        """Normalized cuts per texture window.

        Returns ``(cluster id per peak [shape=(P,)], cluster features [shape=(C, len(FEATURES))],
        track per cluster [shape=(C,)])`` (see :mod:`separation.timbre`): a cluster's track continues
        the previous window's cluster whose partials its own continue."""
        rng = np.random.default_rng(self.seed)
        # Over-segment each window a little (pure clusters); linking merges them into sources.
        k_max = max(_K_MAX, self.n_sources or 0)
        total = int(peaks.frame[-1]) + 1
        tf = self.texture_frames
        cl_peak = np.zeros(len(peaks), dtype=np.int64)
        feats: list[np.ndarray] = []
        links: list[tuple[int, int, np.ndarray]] = []
        n_cl = 0
        last = None   # (first cluster id, k, window, last frame's freq, mag, local cluster ids)
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
            first, final = fr == fr[0], fr == fr[-1]
            if last is not None and last[2] == w - 1 and fr[0] == f0:
                links.append((last[0], n_cl, continuation(last[3], last[4], last[5], last[1], freq[first],
                                                          mag[first], labels[first], k)))
            last = (n_cl, k, w, freq[final], mag[final], labels[final])
            cl_peak[sl] = n_cl + labels
            n_cl += k
            feats.append(cluster_features(w, freq, mag, db, fr, perc[sl], labels, k))
        return cl_peak, np.concatenate(feats), link_tracks(n_cl, links)

    def _link(self, feats: np.ndarray, track: np.ndarray):
        """Group all windows' clusters into sources by timbre (see :mod:`separation.timbre`).

        Returns ``(source per cluster [shape=(C,)], one dict per source)``: pitch_hz, percussive,
        decay_db_s, duration_s, polyphony (peaks per frame), energy, ordered from low to high pitch with the
        percussive source last."""
        window_s = self.texture_frames * HOP / SAMPLE_RATE
        tracks = tracks_from_clusters(feats, track, window_s=window_s)
        table, weight = tracks.table, tracks.weight
        aff: dict = {}
        if self.n_sources is None:
            group = group_tracks(tracks, n_sources=None, max_sources=_MAX_AUTO, min_share=_MIN_SHARE, affinity=aff)
        else:
            group = group_tracks(tracks, n_sources=self.n_sources, max_sources=self.n_sources, min_share=_TINY,
                                 affinity=aff)
        n_src = int(group.max()) + 1
        info = []
        for g in range(n_src):
            m = group == g
            w = weight[m] / weight[m].sum()
            reg = table[m, 0]
            order = np.argsort(reg)
            median_reg = reg[order][np.searchsorted(np.cumsum(w[order]), 0.5)]
            info.append({"pitch_hz": float(2.0 ** median_reg), "percussive": float(w @ table[m, 2]),
                         "decay_db_s": float(w @ table[m, 6]), "duration_s": float(2.0 ** (w @ table[m, 7])),
                         "polyphony": float(2.0 ** (w @ table[m, 5])), "energy": float(weight[m].sum())})
        rank = sorted(range(n_src), key=lambda g: (info[g]["percussive"] >= _PERCUSSIVE, info[g]["pitch_hz"]))
        remap = np.empty(n_src, dtype=np.int64)
        remap[rank] = np.arange(n_src)
        same = aff["same"] if aff["same"].shape == (n_src, n_src) else np.full((n_src, n_src), np.nan)
        for k, g in enumerate(rank):             # P(same) with each other source: suggested merges
            info[g]["same"] = [float(v) for v in same[g, rank]]
        return remap[group][track], [info[g] for g in rank]

    def _resynthesize(self, x: np.ndarray, peaks: Peaks, src: np.ndarray, n_src: int,
                      tick: _Ticker) -> list:
        """Masked stems (``n_src + 2`` arrays [shape=(n,)]): the sources, the unexplained percussive part (taken
        by the most percussive source if one is, else a stem of its own) and the residual.

        Each chunk of frames is made on its own (its spectrum with context, the masks, one inverse
        transform a stem) and written to its own samples, ``RESYNTH_WORKERS`` chunks at a time: the
        transforms and filters run outside the GIL, so the second core (free once the PS model's sample
        beside the separation is done) shares the work; every sample is the same as one at a time."""
        n = len(x)
        total = n_frames(n)
        out = [signal_buffer(n) for _ in range(n_src + 2)]   # one array each (on disk inside
        # core.spill.spilling): a stem that joins another (the transients, faint sources) is freed once added
        starts = range(0, total, _CHUNK)
        stop, cancel = threading.Event(), tick.cancel

        def chunk(t0: int) -> int:
            if stop.is_set():                       # an earlier chunk failed or the work was cancelled
                return t0
            check_cancel(cancel)
            return self._resynthesize_chunk(x, peaks, src, n_src, out, t0, total)

        pool = ThreadPoolExecutor(max_workers=RESYNTH_WORKERS, thread_name_prefix="resynthesis")
        try:
            futures = [pool.submit(chunk, t0) for t0 in starts]
            for f in futures:                       # in order: progress and cancel on this thread
                t1 = f.result()
                release(x, *out)
                tick("resynthesis", 0.82 + 0.18 * t1 / total)
        finally:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
        return out

    @staticmethod
    def _resynthesize_chunk(x: np.ndarray, peaks: Peaks, src: np.ndarray, n_src: int, out: list,
                            t0: int, total: int) -> int:
        """Frames ``t0`` to ``t0 + _CHUNK`` of every stem written into ``out``; returns the chunk's end."""
        n = len(x)
        n_bins = N_FFT // 2 + 1
        offsets = np.arange(-2, 3)
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
        mag = np.abs(spec)
        mix = mag ** 2
        explained = power.sum(axis=0)
        unexplained = np.maximum(mix - explained, 0.0)
        den = explained + unexplained + 1e-20
        pf = percussive_fraction(mag)
        # The unexplained harmonic power near a source's peaks (its partials' skirts, the
        # noise of its attacks and bow or breath) goes to that source; the rest to the residual.
        near = uniform_filter1d(uniform_filter1d(power, size=2 * _SPREAD + 1, axis=1), size=3, axis=2)
        share = near / (near.sum(axis=0) + _RESIDUAL_WEIGHT * unexplained + 1e-20)
        harmonic_rest = unexplained * (1.0 - pf)
        masks = (power + harmonic_rest * share) / den
        a, b = t0 * HOP, min(t1 * HOP, n)
        seg_len = (t1 - t0 + 2 * _CTX) * HOP
        for s in range(n_src + 2):
            m = masks[s] if s < n_src else (
                unexplained * pf / den if s == n_src else harmonic_rest * (1.0 - share.sum(axis=0)) / den)
            y = istft(spec * m, length=seg_len)
            out[s][a:b] = y[_CTX * HOP:_CTX * HOP + (b - a)]
        return t1

    def _sources(self, x: np.ndarray, stems: np.ndarray, info: list[dict], src_of_peak: np.ndarray) -> list[Source]:
        """Sources from the stems of :meth:`_resynthesize`: the transients join the percussive source
        (or stand alone, automatic mode), faint automatic sources join the residual."""
        n_src = len(info)
        total = _energy(x) or 1.0
        perc = [s for s in range(n_src) if info[s]["percussive"] >= _PERCUSSIVE]
        stems = list(stems)
        residual = stems.pop()
        transients = stems.pop()
        if perc:
            _add_into(stems[perc[0]], transients)
        elif self.n_sources is None and _energy(transients) >= _FAINT * total and _impulsive(transients):
            stems.append(transients)
            info = info + [{"pitch_hz": 0.0, "percussive": 1.0, "decay_db_s": -60.0, "duration_s": 0.0,
                            "polyphony": 1.0, "energy": 0.0}]
        else:
            _add_into(residual, transients)
        keep = []
        for s, y in enumerate(stems):
            if self.n_sources is None and _energy(y) < _FAINT * total:
                _add_into(residual, y)
            else:
                keep.append(s)
        names = _unique_names([describe(info[s]["pitch_hz"], info[s]["percussive"], info[s]["decay_db_s"],
                                        info[s]["duration_s"], info[s]["polyphony"]) for s in keep])
        out = []
        for i, (s, name) in enumerate(zip(keep, names)):
            meta = {k: v for k, v in info[s].items() if k not in ("energy", "same")}
            meta.update(share=_energy(stems[s]) / total, n_peaks=int(np.count_nonzero(src_of_peak == s)),
                        formation_id=i)
            if "same" in info[s]:                # P(same instrument) with each kept source, by formation_id
                meta["same"] = [info[s]["same"][t] if t < len(info[s]["same"]) else None for t in keep]
            out.append(Source(name, stems[s], colour_for(i), "source", meta))
        out.append(Source("Residual", residual, RESIDUAL_COLOUR, "residual", {"share": _energy(residual) / total}))
        return out


def _factory(**settings) -> SourceFormation:
    return SourceFormation(**settings)


register("formation", label="Sound source formation",
         description="Spectral peaks grouped into notes (Lagrange et al. 2007), notes into instruments by "
                     "timbre; sources plus a residual; no model needed. Suits music made of notes; a heavily "
                     "distorted guitar stays in the residual (dense rock or metal: use Demucs).",
         factory=_factory)
