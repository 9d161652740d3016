"""Output files written atomically, and all of a run's outputs together or none.

Every file goes to a temporary name beside its destination (``.NAME.*.part``, locked while this
process writes it) and is renamed onto it when complete; a failure or an interrupt (Ctrl+C,
SIGTERM) removes it, and the temporary files a killed writer left are removed by the next writer
of that destination. A failing output is one line (:class:`OutputError`: no space, no permission,
a read-only file system, a name too long). A run with several outputs checks them all before any
work (:func:`check_outputs`) and writes them inside :func:`committing`, which renames them into
place together once all are written, or removes them all. :mod:`core.audio` re-exports the
public names.
"""
from __future__ import annotations

import contextvars
import errno
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable

import soundfile as sf

from .errors import AudioError, OutputError
import shutil
import glob

__all__ = ["replacing", "committing", "check_outputs", "output_error", "remove_stale_parts", "temp_beside",
           "missing_folders", "same_file", "OutputError"]


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


def same_file(a, b) -> bool:
    """True when paths ``a`` and ``b`` name the same file (following links)."""
    try:
        return Path(a).resolve() == Path(b).resolve() or (Path(b).exists() and os.path.samefile(a, b))
    except OSError:
        return False
