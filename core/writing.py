"""Audio files written safely: WAV or FLAC in the format the extension names, atomically, never
over an input or an existing file without ``overwrite`` (:func:`write` for a whole signal,
:class:`AtomicWriters` for several files chunk by chunk, all or none). Temporary files, one-line
output errors and a run's outputs committed together come from :mod:`core.atomic`.
:mod:`core.audio` re-exports the public names.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np
import soundfile as sf

from . import SAMPLE_RATE
from .atomic import (_RUN, _is_output_failure, _make_folder, _OutputSet, _remove_folders, _Temp, output_error,
                     replacing, same_file)
from .errors import AudioError, ParameterError
from .formats import EXTENSIONS as _EXTENSIONS
from .formats import SUBTYPES

__all__ = ["write", "AtomicWriters", "SUBTYPES", "check_extension", "format_for_path"]




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
            err = self._abandon(dest, exc)
            if err is not None:
                raise err from None
            raise
        return self._files

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            err = self._abandon(self._failed_path(), exc)
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
            err = self._abandon(dest, exc)
            if err is not None:
                raise err from None
            raise
        (own if own.staged or run is None else run).made += self._made
        self._made = []
        own.commit()
        return False

    def _abandon(self, dest: Path, exc: BaseException):
        """Remove every temporary file and folder made; returns the one-line :class:`OutputError`
        for ``exc`` when it is a failure of the output ``dest`` (worked out before the cleanup
        frees space), else None."""
        err = output_error(dest, exc) if _is_output_failure(exc) else None
        self._cleanup()
        return err

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
