"""Audio file input: anything soundfile reads -> mono float32 at 44.1 kHz, block by block.

Writing lives in :mod:`core.writing` (audio files: WAV or FLAC, never over an input) and
:mod:`core.atomic` (any output file atomically, a run's outputs all or none); their public names
are re-exported here (``audio.write``, ``audio.AtomicWriters``, ``audio.replacing``,
``audio.committing``, ...).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

import numpy as np
import soundfile as sf
import soxr

from . import N_FFT, SAMPLE_RATE
from .errors import AudioError, OutputError, ParameterError
from .atomic import (check_outputs, committing, missing_folders, output_error, remove_stale_parts,  # noqa: F401
                     replacing, same_file, temp_beside)
from .writing import SUBTYPES, AtomicWriters, check_extension, format_for_path, write  # noqa: F401
import stat

__all__ = ["load", "load_mono", "load_stereo", "resample", "to_mono", "write", "SUBTYPES", "same_file", "temp_beside",
           "replacing", "output_error", "remove_stale_parts", "check_extension", "OutputError", "check_outputs",
           "committing", "missing_folders", "AtomicWriters", "format_for_path"]

log = logging.getLogger(__name__)


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
    _check_input_file(p)
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


def _check_input_file(p: Path) -> None:
    """Refuse before opening: missing, a folder, not a regular file (a FIFO would block the
    reader), empty, or a WAV cut short in its audio data."""
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise AudioError(p, "no such file") from None
    except OSError as exc:
        raise AudioError(p, f"cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(p, "is a directory, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
                else "a device")
        raise AudioError(p, f"not a regular file ({kind}); give an audio file")
    if st.st_size == 0:
        raise AudioError(p, "file is empty (0 bytes)")
    cut = _wav_data_bytes(p)
    if cut is not None and cut[1] < cut[0]:
        raise AudioError(p, f"file is cut short: its header announces {cut[0]} bytes of audio but only {cut[1]} "
                            f"are there ({100 * cut[1] / cut[0]:.0f} %); an interrupted copy or download?")


def _wav_data_bytes(p: Path) -> Optional[tuple[int, int]]:
    """(bytes the RIFF/WAVE ``data`` chunk declares, bytes the file holds after its header), or
    None for other files and for streamed WAVs whose size field was never filled in (0 or
    0xFFFFFFFF)."""
    with open(p, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        size = os.fstat(f.fileno()).st_size
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            ck = f.read(8)
            n = int.from_bytes(ck[4:8], "little")
            if ck[:4] == b"data":
                return None if n in (0, 0xFFFFFFFF) else (n, size - pos - 8)
            pos += 8 + n + (n & 1)
    return None


def load_mono(path, *, min_samples: int = N_FFT, notes: Optional[list] = None) -> np.ndarray:
    """Load any soundfile-readable file as mono float32 at 44.1 kHz [shape=(n,)], decoded,
    downmixed and resampled in blocks (an hour of 8-channel 192 kHz audio never sits in memory).
    ``notes`` (a list) receives what was converted ("6 channels downmixed to mono, ...").

    Raises :class:`AudioError` (file and reason in one line) when the file is missing, a
    directory, empty, unreadable, shorter than one analysis frame, or holds NaN/Inf samples.
    """
    p = check_input(path)
    try:
        mono, frames, sr, channels = _read_mono_blocks(p)
    except (AudioError, MemoryError):
        raise
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AudioError(p, f"unreadable as audio ({msg})") from None
    if frames == 0:
        raise AudioError(p, "contains no audio samples")
    if frames * SAMPLE_RATE / sr < min_samples:
        raise AudioError(p, f"too short: {frames / sr * 1000:.1f} ms, "
                            f"need at least one analysis frame ({min_samples / SAMPLE_RATE * 1000:.0f} ms)")
    _note_conversion(path, channels, sr, mono=True, notes=notes)
    return mono


BLOCK_FRAMES = 1 << 16


def _read_mono_blocks(p: Path) -> tuple[np.ndarray, int, int, int]:
    """Decode, downmix and resample ``p`` block by block: (mono at 44.1 kHz, frames in the file,
    file rate, channels). Memory is the mono result plus one block, whatever the channel count or rate.
    The result equals downmixing and resampling the whole file at once, bit for bit (per-frame
    downmix; soxr's streaming resampler gives what its one-shot call gives)."""
    with sf.SoundFile(str(p)) as f:
        sr, channels, total = f.samplerate, f.channels, f.frames
        if channels == 0 or sr <= 0:
            raise AudioError(p, "contains no audio samples")
        rs = None if sr == SAMPLE_RATE else soxr.ResampleStream(sr, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        est = total if rs is None else -(-total * SAMPLE_RATE // sr) + 64
        out = np.empty(max(est, 0), np.float32)
        n = frames = 0

        def put(block: np.ndarray) -> None:
            nonlocal out, n
            if n + len(block) > len(out):
                out = np.concatenate([out[:n], np.empty(max(len(block), len(out) // 4), np.float32)])
            out[n:n + len(block)] = block
            n += len(block)
        while True:
            block = f.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
            last = len(block) < BLOCK_FRAMES
            if len(block) and not np.isfinite(block).all():
                raise AudioError(p, "contains NaN or infinite samples")
            frames += len(block)
            mono = to_mono(block) if channels > 1 else np.ascontiguousarray(block[:, 0])
            put(mono if rs is None else rs.resample_chunk(mono, last=last))
            if last:
                break
    return out[:n] if n == len(out) else np.ascontiguousarray(out[:n]), frames, sr, channels


def load_stereo(path, *, min_samples: int = N_FFT) -> np.ndarray:
    """Load a file as float32 stereo at 44.1 kHz [shape=(n, 2)]; mono files are duplicated,
    more than two channels raise :class:`AudioError`."""
    data, sr = _read(path, min_samples=min_samples)
    if data.shape[1] == 1:
        data = np.repeat(data, 2, axis=1)
    elif data.shape[1] != 2:
        raise AudioError(path, f"has {data.shape[1]} channels; a stereo file is needed here")
    _note_conversion(path, 2, sr, mono=False)
    return np.ascontiguousarray(resample(data, sr))


def _note_conversion(path, channels: int, sr: int, *, mono: bool, notes: Optional[list] = None) -> None:
    """One ``logging`` INFO line (logger ``core.audio``; the CLI prints it) when the input is
    downmixed to mono or resampled; the same line appended to ``notes`` when given."""
    what = []
    if mono and channels > 1:
        what.append(f"{channels} channels downmixed to mono")
    if sr != SAMPLE_RATE:
        what.append(f"resampled from {sr} Hz to {SAMPLE_RATE} Hz")
    if what:
        log.info("%s: %s", Path(path).name, ", ".join(what))
        if notes is not None:
            notes.append(f"{Path(path).name}: {', '.join(what)}")


load = load_mono
