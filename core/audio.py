"""Audio file I/O: anything soundfile reads -> mono float32 at 44.1 kHz; safe, atomic writing.

Nothing here ever writes next to or over an input file: writers refuse a destination that is
the same file as a given input, and write through a temporary file in the destination folder
followed by an atomic rename. A run with several outputs checks them all first
(:func:`check_outputs`) and writes them inside :func:`committing`, which renames them into place
together once all are written, or removes them all.
"""
from __future__ import annotations

import contextvars
import errno
import logging
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import soundfile as sf
import soxr

from . import N_FFT, SAMPLE_RATE
from .errors import AudioError, OutputError, ParameterError

__all__ = ["load", "load_mono", "load_stereo", "resample", "to_mono", "write", "SUBTYPES", "same_file", "temp_beside",
           "replacing", "output_error", "remove_stale_parts", "check_extension", "OutputError", "check_outputs",
           "committing", "missing_folders"]

log = logging.getLogger(__name__)


def _open_new(path: str) -> int:
    """Create file ``path`` (it must not exist) for writing; 0666 less the umask, as a normally
    created file (not a private 0600)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)


_NAME_MAX = 255               # bytes in one file name on the usual file systems
_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENAMETOOLONG,
                  errno.EFBIG, errno.ENOENT, errno.ENOTDIR, errno.EISDIR}


def output_error(dest, exc: BaseException) -> OutputError:
    """One line saying why ``dest`` could not be written, from ``exc`` (an OSError, or a
    soundfile error, which carries no errno: the folder is then checked for space and rights)."""
    dest = Path(dest)
    folder = dest.parent
    probe = _existing_ancestor(dest)                       # checks on the nearest existing folder
    code = getattr(exc, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT) or (code is None and _space_left(probe) < (1 << 16)):
        reason = f"no space left on the device of {folder}"
    elif code == errno.ENAMETOOLONG or len(os.fsencode(dest.name)) > _NAME_MAX:
        reason = f"file name too long ({len(os.fsencode(dest.name))} bytes; the limit is {_NAME_MAX})"
    elif code == errno.EROFS:
        reason = f"{folder} is on a read-only file system"
    elif code in (errno.EACCES, errno.EPERM) or (code is None and not os.access(probe, os.W_OK)):
        reason = f"permission denied: cannot write in {folder}"
    elif code in (errno.ENOENT, errno.ENOTDIR):
        reason = f"the folder {folder} does not exist"
    else:
        text = getattr(exc, "strerror", None) or " ".join(str(exc).split()) or type(exc).__name__
        reason = f"cannot write: {text}"
    return OutputError(dest, reason)


def _space_left(folder: Path) -> int:
    import shutil
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 1 << 62


def _is_output_failure(exc: BaseException) -> bool:
    return (isinstance(exc, OSError) and not isinstance(exc, OutputError) and exc.errno in _OUTPUT_ERRNOS) \
        or isinstance(exc, sf.SoundFileRuntimeError)


def _temp_prefix(dest: Path) -> str:
    """``.NAME.``; a long NAME is cut so that the temporary name stays a legal file name."""
    name = dest.name
    if len(os.fsencode(name)) > _NAME_MAX - 40:
        name = os.fsdecode(os.fsencode(name)[:_NAME_MAX - 60]).rstrip("\ufffd") + "~"
    return "." + name + "."


class _Temp:
    """A temporary file beside its destination (``.NAME.*.part``), locked while this process
    writes it, so that :func:`remove_stale_parts` can tell a killed writer's leftover from a
    live writer's file."""

    def __init__(self, dest: Path):
        # the name is chosen before the file exists, and kept by whoever will clean up before
        # :meth:`create` makes it: a signal (Ctrl+C, SIGTERM) landing anywhere in between, even
        # right after the file appears, finds its path known and the file is removed
        self.dest = Path(dest)
        self._fd = None
        self.path = self._name()

    def _name(self) -> str:
        return str(self.dest.parent / f"{_temp_prefix(self.dest)}{secrets.token_hex(8)}.part")

    def create(self) -> "_Temp":
        """Make the (empty, locked) file, with the permissions of a normally created file (0666
        less the umask)."""
        remove_stale_parts(self.dest)
        while True:
            try:
                fd = _open_new(self.path)
                break
            except FileExistsError:
                self.path = self._name()
        self._fd = fd
        _lock(fd)
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def discard(self) -> None:
        self.release()
        try:
            os.unlink(self.path)
        except OSError:
            pass


def _lock(fd: int) -> bool:
    """An exclusive non-blocking lock on ``fd`` (POSIX; elsewhere an open file cannot be deleted,
    which protects a live writer by itself). False when another process holds it."""
    try:
        import fcntl
    except ImportError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def remove_stale_parts(dest) -> int:
    """Remove the temporary files (``.NAME.*.part``) that a killed or crashed writer of ``dest``
    left; a file another live process is writing is kept. Returns how many were removed."""
    import glob
    dest = Path(dest)
    n = 0
    for p in dest.parent.glob(glob.escape(_temp_prefix(dest)) + "*.part"):
        try:
            fd = os.open(p, os.O_RDONLY)
        except OSError:
            continue
        try:
            if _lock(fd):
                os.unlink(p)
                n += 1
        except OSError:
            pass
        finally:
            os.close(fd)
    return n


def _rename(tmp: "_Temp", dest: Path) -> None:
    """Rename the finished temporary file onto ``dest``, holding its lock through the rename
    where the system allows renaming an open file (not Windows)."""
    if os.name == "nt":
        tmp.release()
    os.replace(tmp.path, dest)
    tmp.release()


def temp_beside(dest: Path) -> str:
    """A new empty temporary file next to ``dest`` (``.NAME.*.part``), to be renamed onto it, with
    the permissions of a normally created file. Prefer :func:`replacing`, which also cleans up."""
    t = _Temp(Path(dest)).create()
    t.release()
    return t.path


def missing_folders(folder) -> list[Path]:
    """``folder`` and those of its parents that do not exist, deepest last: what making it makes."""
    out, p = [], Path(folder)
    while not p.exists() and p != p.parent:
        out.append(p)
        p = p.parent
    return out[::-1]


def _existing_ancestor(path: Path) -> Path:
    """The nearest folder above ``path`` that exists."""
    p = Path(path).parent
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _make_folder(folder: Path) -> list[Path]:
    """Create ``folder`` and missing parents; returns the folders created (deepest last)."""
    made = missing_folders(folder)
    for d in made:
        try:
            d.mkdir()
        except FileExistsError:
            pass
    return made


def _remove_folders(made: list[Path]) -> None:
    for d in reversed(made):
        try:
            d.rmdir()          # only when empty
        except OSError:
            pass


@contextmanager
def replacing(dest: Path):
    """Write ``dest`` atomically: yields a temporary path beside it, renamed onto ``dest`` when
    the block succeeds and removed when it fails or is interrupted (with any folder this made).

    Failures of the output itself (no permission, no space, a name too long, a read-only file
    system, a soundfile write error) become one-line :class:`OutputError`; stale temporary files
    of a killed earlier writer of ``dest`` are removed first."""
    dest = Path(dest)
    made: list[Path] = []
    tmp = None
    try:
        made = _make_folder(dest.parent)
        tmp = _Temp(dest)
        tmp.create()
        yield tmp.path
        _finish(tmp, dest, made)
    except BaseException as exc:
        err = output_error(dest, exc) if _is_output_failure(exc) else None   # before the cleanup frees space
        if tmp is not None:
            tmp.discard()
        _remove_folders(made)
        if err is not None:
            raise err from None
        raise


# --- the outputs of one run: checked before any work, committed together or not at all -----------
_RUN: contextvars.ContextVar = contextvars.ContextVar("soundstage_outputs", default=None)


def _key(path) -> str:
    return str(Path(path).resolve())


class _OutputSet:
    """The planned outputs of a run (files, and folders whose files are outputs too) and the
    finished temporary files waiting for their rename (see :func:`committing`)."""

    def __init__(self, files, folders):
        self.files = {_key(p) for p in files}
        self.folders = [Path(_key(p)) for p in folders]
        self.staged: list[tuple[_Temp, Path]] = []
        self.made: list[Path] = []

    def covers(self, dest: Path) -> bool:
        k = _key(dest)
        return k in self.files or any(f in Path(k).parents for f in self.folders)

    def stage(self, tmp: _Temp, dest: Path, made: list[Path]) -> None:
        if any(_key(d) == _key(dest) for _t, d in self.staged):
            raise AudioError(dest, "written twice by one run (two of its outputs have this name)")
        self.staged.append((tmp, dest))
        self.made += made

    def discard(self) -> None:
        for tmp, _dest in self.staged:
            tmp.discard()
        _remove_folders(self.made)
        self.staged, self.made = [], []

    def commit(self) -> None:
        done, dest = [], None
        try:
            for tmp, dest in self.staged:
                _rename(tmp, dest)
                done.append(dest)
        except BaseException as exc:
            err = output_error(dest, exc) if _is_output_failure(exc) else None
            for d in done:                    # all or none
                try:
                    os.unlink(d)
                except OSError:
                    pass
            self.discard()
            if err is not None:
                raise err from None
            raise


def _finish(tmp: _Temp, dest: Path, made: list[Path]) -> None:
    """Put a finished temporary file in place now, or, when it is a planned output of the
    :func:`committing` block around it, when the whole run has succeeded."""
    run = _RUN.get()
    if run is not None and run.covers(dest):
        run.stage(tmp, dest, made)
    else:
        _rename(tmp, dest)


@contextmanager
def committing(files: Iterable = (), folders: Iterable = ()):
    """All of a run's outputs or none of them: a file written inside the block through this
    module's writers (:func:`write`, :func:`replacing`, :class:`AtomicWriters`, and so the project
    and DAWproject writers) that is one of ``files`` or lies in one of ``folders`` stays under its
    temporary name (``.NAME.*.part``) until the block ends; then all are renamed into place. If
    the block fails or is interrupted (Ctrl+C, SIGTERM), none is: every temporary file is
    removed, and so is every folder made for them (an existing file that ``--force`` would have
    replaced keeps its old content). Other files written meanwhile (a cache, a downloaded model)
    are put in place at once. A block inside another joins the outer one. Check the outputs
    first with :func:`check_outputs`."""
    if _RUN.get() is not None:
        yield
        return
    files, folders = [Path(p) for p in files], [Path(p) for p in folders]
    missing = sorted({d for p in files + folders for d in missing_folders(p.parent)}
                     | {d for f in folders for d in missing_folders(f)}, key=lambda d: len(d.parts))
    run = _OutputSet(files, folders)
    token = _RUN.set(run)
    try:
        yield
    except BaseException:
        _RUN.reset(token)
        run.discard()
        _remove_folders(missing)
        raise
    _RUN.reset(token)
    try:
        run.commit()
    except BaseException:
        _remove_folders(missing)
        raise


def check_outputs(files, folders=(), *, inputs: Iterable = (), overwrite: bool = False) -> None:
    """Check every output of a run before any work. ``files`` and ``folders`` (folders whose
    files are outputs too, e.g. the stems) are lists of ``(what, path)``; ``what`` names the
    output in messages ("output", "project file", ...). Raises :class:`AudioError` or
    :class:`OutputError` (one line) when two outputs are the same path, a file lies inside an
    output folder, an output is an input, a file exists without ``overwrite`` or is a folder, a
    folder is a file, a name is too long, or an output cannot be made (its nearest existing
    folder is a file, or is not writable)."""
    inputs = [i for i in inputs if i is not None]
    entries = [(what, Path(p), False) for what, p in files] + [(what, Path(p), True) for what, p in folders]
    seen: dict[str, str] = {}
    for what, path, _ in entries:
        k = _key(path)
        if k in seen:
            raise AudioError(path, f"named as the {seen[k]} and as the {what}; give them different names")
        seen[k] = what
    inside = [(what, Path(_key(p))) for what, p, is_folder in entries if is_folder]
    for what, path, is_folder in entries:
        for fwhat, folder in inside:
            if folder in Path(_key(path)).parents:
                raise AudioError(path, f"the {what} would be inside the {fwhat} {folder}; name it elsewhere")
        for src in inputs:
            if same_file(src, path):
                raise AudioError(path, "refusing to write over the input recording")
        if len(os.fsencode(path.name)) > _NAME_MAX:
            raise OutputError(path, f"file name too long ({len(os.fsencode(path.name))} bytes; the limit is {_NAME_MAX})")
        try:
            exists, is_dir = os.path.lexists(path), path.is_dir()
        except OSError as exc:
            raise output_error(path, exc) from None
        if is_folder:
            if exists and not is_dir:
                raise AudioError(path, f"exists and is not a folder (the {what} goes there)")
        elif is_dir:
            raise AudioError(path, "is a directory")
        elif exists and not overwrite:
            raise AudioError(path, "already exists (use --force to overwrite)")
        base = _existing_ancestor(path)
        if not base.is_dir():
            raise OutputError(path, f"{base} is a file, not a folder")
        if not os.access(base, os.W_OK | os.X_OK):
            ro = False
            try:
                ro = bool(os.statvfs(base).f_flag & os.ST_RDONLY)
            except (OSError, AttributeError):
                pass
            raise OutputError(path, f"{base} is on a read-only file system" if ro
                              else f"permission denied: cannot write in {base}")


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
    import stat
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


def load_mono(path, *, min_samples: int = N_FFT) -> np.ndarray:
    """Load any soundfile-readable file as mono float32 at 44.1 kHz [shape=(n,)], decoded,
    downmixed and resampled in blocks (an hour of 8-channel 192 kHz audio never sits in memory).

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
    _note_conversion(path, channels, sr, mono=True)
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


def _note_conversion(path, channels: int, sr: int, *, mono: bool) -> None:
    """One ``logging`` INFO line (logger ``core.audio``; the CLI prints it) when the input is
    downmixed to mono or resampled."""
    what = []
    if mono and channels > 1:
        what.append(f"{channels} channels downmixed to mono")
    if sr != SAMPLE_RATE:
        what.append(f"resampled from {sr} Hz to {SAMPLE_RATE} Hz")
    if what:
        log.info("%s: %s", Path(path).name, ", ".join(what))


load = load_mono


def same_file(a, b) -> bool:
    """True when paths ``a`` and ``b`` name the same file (following links)."""
    try:
        return Path(a).resolve() == Path(b).resolve() or (Path(b).exists() and os.path.samefile(a, b))
    except OSError:
        return False


_EXTENSIONS = {"WAV": (".wav", ".wave"), "FLAC": (".flac",)}


def check_extension(path, fmt: str) -> None:
    """Refuse (:class:`AudioError`) an output whose extension does not name the container of
    ``fmt``: WAV data in ``x.mp3``, FLAC data in ``x.wav``."""
    container = SUBTYPES[fmt][0]
    ext = Path(path).suffix.lower()
    if ext not in _EXTENSIONS[container]:
        if ext in (e for exts in _EXTENSIONS.values() for e in exts):
            raise AudioError(path, f"format {fmt} writes {container} data, which does not belong in a {ext} file; "
                                   f"name it {Path(path).stem}{_EXTENSIONS[container][0]} or choose a "
                                   f"{ext.lstrip('.').upper()} format")
        what = f"a {ext} file" if ext else "a file without an extension"
        raise AudioError(path, f"Soundstage writes WAV or FLAC, not {what}; name the output "
                               f"{Path(path).stem}.wav or {Path(path).stem}.flac")


def _check_destination(dest: Path, fmt: str, overwrite: bool, inputs) -> None:
    for src in inputs:
        if src is not None and same_file(src, dest):
            raise AudioError(dest, "refusing to write over the input recording")
    try:
        is_dir, exists = dest.is_dir(), dest.exists()
    except OSError as exc:            # a name too long for the file system, a folder we cannot enter
        raise output_error(dest, exc) from None
    if is_dir:
        raise AudioError(dest, "is a directory")
    if exists and not overwrite:
        raise AudioError(dest, "already exists (use --force to overwrite)")
    check_extension(dest, fmt)


def write(path, audio: np.ndarray, *, fmt: str = "wav24", sample_rate: int = SAMPLE_RATE,
          overwrite: bool = False, inputs: Iterable = ()) -> Path:
    """Write ``audio`` [shape=(n,) or (n, channels)] atomically (temporary file + rename).

    ``fmt`` is one of :data:`SUBTYPES` and must match the extension (:func:`check_extension`).
    Refuses to replace an existing file unless ``overwrite`` and always refuses to write over
    any path in ``inputs``. A failing output raises :class:`OutputError` (one line) and leaves
    nothing behind. Samples are not clipped here; the caller decides on gain, but PCM formats
    saturate.
    """
    if fmt not in SUBTYPES:
        raise ParameterError(f"unknown format {fmt!r}; choose one of {', '.join(SUBTYPES)}")
    dest = Path(path)
    _check_destination(dest, fmt, overwrite, inputs)
    container, subtype = SUBTYPES[fmt]
    with replacing(dest) as tmp:
        sf.write(tmp, np.asarray(audio, dtype=np.float32), sample_rate, format=container, subtype=subtype)
    return dest


def format_for_path(path, default: str = "wav24") -> str:
    """A sensible export format from a file extension (.flac -> flac, otherwise ``default``)."""
    return "flac" if str(path).lower().endswith(".flac") else default


class AtomicWriters:
    """Context manager writing several audio files chunk by chunk, atomically, all or none.

    ``with AtomicWriters([a, b], fmt="wav24", channels=2) as (wa, wb): wa.write(block)``. Every
    file goes to a temporary name in its folder and is renamed into place only when the block
    exits without an error; on an error (or a cancel) nothing is left behind: no temporary file,
    no file already renamed, no folder this made (an empty ``-stems`` folder). The same checks
    as :func:`write`: never over an input, never over an existing file without ``overwrite``,
    the extension matches the format; output failures raise :class:`OutputError`.
    """

    def __init__(self, paths, *, fmt: str = "wav24", channels: int = 2, sample_rate: int = SAMPLE_RATE,
                 overwrite: bool = False, inputs: Iterable = ()):
        if fmt not in SUBTYPES:
            raise ParameterError(f"unknown format {fmt!r}; choose one of {', '.join(SUBTYPES)}")
        self.paths = [Path(p) for p in paths]
        inputs = [i for i in inputs if i is not None]
        for dest in self.paths:
            _check_destination(dest, fmt, overwrite, inputs)
        self.fmt, self.channels, self.sample_rate = fmt, channels, sample_rate
        self._files, self._tmps, self._made = [], [], []

    def __enter__(self):
        container, subtype = SUBTYPES[self.fmt]
        dest = None
        try:
            for dest in self.paths:
                self._made += _make_folder(dest.parent)
                tmp = _Temp(dest)
                self._tmps.append(tmp)
                tmp.create()
                self._files.append(sf.SoundFile(tmp.path, "w", self.sample_rate, self.channels, subtype,
                                                format=container))
        except BaseException as exc:
            err = output_error(dest, exc) if _is_output_failure(exc) else None
            self._cleanup()
            if err is not None:
                raise err from None
            raise
        return self._files

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            err = output_error(self._failed_path(), exc) if _is_output_failure(exc) else None
            self._cleanup()
            if err is not None:
                raise err from None
            return False
        dest = self.paths[0]
        run, own = _RUN.get(), _OutputSet(self.paths, ())     # own: renamed here, all or none
        try:
            for f, dest in zip(self._files, self.paths):
                f.close()                     # flushes: a full disk can show here
            for tmp, dest in zip(self._tmps, self.paths):
                # a planned output of the run around us is renamed with the run's other outputs
                (run if run is not None and run.covers(dest) else own).stage(tmp, dest, [])
        except BaseException as exc:
            err = output_error(dest, exc) if _is_output_failure(exc) else None
            self._cleanup()
            if err is not None:
                raise err from None
            raise
        (own if own.staged or run is None else run).made += self._made
        self._made = []
        own.commit()
        return False

    def _failed_path(self) -> Path:
        """The output whose temporary file is smallest (the one a full disk stopped first)."""
        sizes = []
        for tmp, dest in zip(self._tmps, self.paths):
            try:
                sizes.append((os.path.getsize(tmp.path), str(dest), dest))
            except OSError:
                pass
        return min(sizes)[2] if sizes else self.paths[0]

    def _cleanup(self):
        for f in self._files:
            try:
                f.close()
            except Exception:
                pass
        for tmp in self._tmps:
            tmp.discard()
        _remove_folders(self._made)
        self._made = []
