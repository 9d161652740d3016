"""Audio file I/O: anything soundfile reads -> mono float32 at 44.1 kHz; safe, atomic writing.

Nothing here ever writes next to or over an input file: writers refuse a destination that is
the same file as a given input, and write through a temporary file in the destination folder
followed by an atomic rename.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import soundfile as sf
import soxr

from . import N_FFT, SAMPLE_RATE
from .errors import AudioError, ParameterError

__all__ = ["load", "load_mono", "load_stereo", "resample", "to_mono", "write", "SUBTYPES", "same_file", "temp_beside", "replacing"]

_UMASK = os.umask(0o022)
os.umask(_UMASK)


def temp_beside(dest: Path) -> str:
    """A new empty temporary file next to ``dest`` (``.NAME.*.part``), to be renamed onto it.
    Its permissions are those of a normally created file (0666 less the umask), not mkstemp's
    private 0600, so that a renamed output is readable by whoever could read a plain one."""
    fd, tmp = tempfile.mkstemp(prefix="." + dest.name + ".", suffix=".part", dir=dest.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)
    return tmp


@contextmanager
def replacing(dest: Path):
    """Write ``dest`` atomically: yields a temporary path beside it (:func:`temp_beside`), renamed
    onto ``dest`` when the block succeeds and removed when it fails or is interrupted."""
    tmp = temp_beside(Path(dest))
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise

# export format name -> (soundfile format, subtype)
SUBTYPES = {
    "wav16": ("WAV", "PCM_16"),
    "wav24": ("WAV", "PCM_24"),
    "wav32f": ("WAV", "FLOAT"),
    "flac16": ("FLAC", "PCM_16"),
    "flac": ("FLAC", "PCM_24"),
    "flac24": ("FLAC", "PCM_24"),
}


def resample(x: np.ndarray, sr_in: int, sr_out: int = SAMPLE_RATE) -> np.ndarray:
    """Resample ``x`` [shape=(n,) or (n, channels)] with soxr (high quality)."""
    if sr_in == sr_out:
        return x
    if sr_in <= 0:
        raise ParameterError(f"sample rate must be positive, got {sr_in}")
    return soxr.resample(x, sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)


def to_mono(x: np.ndarray) -> np.ndarray:
    """Downmix [shape=(n, channels)] to [shape=(n,)] by averaging the channels."""
    if x.ndim == 1:
        return x
    return x.mean(axis=1, dtype=np.float64).astype(np.float32)


def check_input(path) -> Path:
    """Cheap checks of an input file before any heavy work (the full ones happen when it is read):
    it exists, is a file and is not empty. Raises :class:`AudioError`."""
    p = Path(path)
    if not p.exists():
        raise AudioError(p, "no such file")
    if p.is_dir():
        raise AudioError(p, "is a directory, not an audio file")
    if p.stat().st_size == 0:
        raise AudioError(p, "file is empty (0 bytes)")
    return p


def _read(path, *, min_samples: int) -> tuple[np.ndarray, int]:
    p = check_input(path)
    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AudioError(p, f"unreadable as audio ({msg})") from None
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise AudioError(p, "contains no audio samples")
    if not np.isfinite(data).all():
        raise AudioError(p, "contains NaN or infinite samples")
    if data.shape[0] * SAMPLE_RATE / sr < min_samples:
        raise AudioError(p, f"too short: {data.shape[0] / sr * 1000:.1f} ms, "
                            f"need at least one analysis frame ({min_samples / SAMPLE_RATE * 1000:.0f} ms)")
    return data, sr


def load_mono(path, *, min_samples: int = N_FFT) -> np.ndarray:
    """Load any soundfile-readable file as mono float32 at 44.1 kHz [shape=(n,)].

    Raises :class:`AudioError` (file and reason in one line) when the file is missing, a
    directory, empty, unreadable, shorter than one analysis frame, or holds NaN/Inf samples.
    """
    data, sr = _read(path, min_samples=min_samples)
    return np.ascontiguousarray(resample(to_mono(data), sr))


def load_stereo(path, *, min_samples: int = N_FFT) -> np.ndarray:
    """Load a file as float32 stereo at 44.1 kHz [shape=(n, 2)]; mono files are duplicated,
    more than two channels raise :class:`AudioError`."""
    data, sr = _read(path, min_samples=min_samples)
    if data.shape[1] == 1:
        data = np.repeat(data, 2, axis=1)
    elif data.shape[1] != 2:
        raise AudioError(path, f"has {data.shape[1]} channels; a stereo file is needed here")
    return np.ascontiguousarray(resample(data, sr))


load = load_mono


def same_file(a, b) -> bool:
    """True when paths ``a`` and ``b`` name the same file (following links)."""
    try:
        return Path(a).resolve() == Path(b).resolve() or (Path(b).exists() and os.path.samefile(a, b))
    except OSError:
        return False


def write(path, audio: np.ndarray, *, fmt: str = "wav24", sample_rate: int = SAMPLE_RATE,
          overwrite: bool = False, inputs: Iterable = ()) -> Path:
    """Write ``audio`` [shape=(n,) or (n, channels)] atomically (temporary file + rename).

    ``fmt`` is one of :data:`SUBTYPES`. Refuses to replace an existing file unless ``overwrite``
    and always refuses to write over any path in ``inputs``. Samples are not clipped here; the
    caller decides on gain (see ``core.metrics.peak_ceiling`` / ``Session.export``), but PCM formats saturate.
    """
    if fmt not in SUBTYPES:
        raise ParameterError(f"unknown format {fmt!r}; choose one of {', '.join(SUBTYPES)}")
    dest = Path(path)
    for src in inputs:
        if src is not None and same_file(src, dest):
            raise AudioError(dest, "refusing to write over the input recording")
    if dest.exists() and not overwrite:
        raise AudioError(dest, "already exists (use --force to overwrite)")
    if dest.is_dir():
        raise AudioError(dest, "is a directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    container, subtype = SUBTYPES[fmt]
    with replacing(dest) as tmp:
        sf.write(tmp, np.asarray(audio, dtype=np.float32), sample_rate, format=container, subtype=subtype)
    return dest


def format_for_path(path, default: str = "wav24") -> str:
    """A sensible export format from a file extension (.flac -> flac, otherwise ``default``)."""
    return "flac" if str(path).lower().endswith(".flac") else default


class AtomicWriters:
    """Context manager writing several audio files chunk by chunk, atomically.

    ``with AtomicWriters([a, b], fmt="wav24", channels=2) as (wa, wb): wa.write(block)``. Every
    file goes to a temporary name in its folder and is renamed into place only when the block
    exits without an error; on an error (or a cancel) nothing is left behind. The same checks as
    :func:`write`: never over an input, never over an existing file without ``overwrite``.
    """

    def __init__(self, paths, *, fmt: str = "wav24", channels: int = 2, sample_rate: int = SAMPLE_RATE,
                 overwrite: bool = False, inputs: Iterable = ()):
        if fmt not in SUBTYPES:
            raise ParameterError(f"unknown format {fmt!r}; choose one of {', '.join(SUBTYPES)}")
        self.paths = [Path(p) for p in paths]
        inputs = [i for i in inputs if i is not None]
        for dest in self.paths:
            if any(same_file(src, dest) for src in inputs):
                raise AudioError(dest, "refusing to write over the input recording")
            if dest.exists() and not overwrite:
                raise AudioError(dest, "already exists (use --force to overwrite)")
            if dest.is_dir():
                raise AudioError(dest, "is a directory")
        self.fmt, self.channels, self.sample_rate = fmt, channels, sample_rate
        self._files, self._tmps = [], []

    def __enter__(self):
        container, subtype = SUBTYPES[self.fmt]
        try:
            for dest in self.paths:
                dest.parent.mkdir(parents=True, exist_ok=True)
                tmp = temp_beside(dest)
                self._tmps.append(tmp)
                self._files.append(sf.SoundFile(tmp, "w", self.sample_rate, self.channels, subtype, format=container))
        except BaseException:
            self._cleanup()
            raise
        return self._files

    def __exit__(self, exc_type, exc, tb):
        for f in self._files:
            f.close()
        if exc_type is not None:
            self._cleanup()
            return False
        for tmp, dest in zip(self._tmps, self.paths):
            os.replace(tmp, dest)
        return False

    def _cleanup(self):
        for f in self._files:
            try:
                f.close()
            except Exception:
                pass
        for tmp in self._tmps:
            try:
                os.unlink(tmp)
            except OSError:
                pass
