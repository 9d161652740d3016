"""Project files: versioned JSON that re-makes a session (and its export) exactly.

This module reads and writes plain data (:class:`ProjectData`); it knows nothing of sessions.
:meth:`app.session.Session.to_project` makes the data and :meth:`app.session.Session.from_project`
re-makes a session from it (separation and prediction are deterministic, then the saved placements
are applied).

A project names the recording (relative to the project file when possible, with the audio's
SHA-256 to notice a changed file), the separation backend and its settings, the renditions (model,
seed, temperature, guidance), the current one, every source's placement, the version of Soundstage
that wrote it and the SHA-256 of every model file its renditions used, so that a re-render can say
when it cannot be exact. Files are written atomically (temporary file, then rename).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from core.audio import replacing
from core.errors import ParameterError

FORMAT = "soundstage-project"
VERSION = 1

__all__ = ["ProjectData", "ProjectError", "write_project", "read_project", "model_checksums",
           "exactness_notes", "FORMAT", "VERSION"]


class ProjectError(ParameterError):
    """A project file that cannot be used (missing recording, unknown version, bad JSON)."""


@dataclass
class ProjectData:
    """What a project file holds, as plain values."""
    recording: Optional[str]
    recording_sha256: Optional[str] = None
    backend: str = "formation"
    backend_settings: dict = field(default_factory=dict)
    model: str = "decorr"
    renditions: list = field(default_factory=list)      # Rendition.to_dict() each
    current: int = -1
    sources: list = field(default_factory=list)         # {"name", "colour", "kind", "placement"}
    export: dict = field(default_factory=dict)
    app_version: Optional[str] = None
    models: dict = field(default_factory=dict)          # model name -> {file name: SHA-256}
    mono_compatible: bool = False                       # (L + R) / 2 = the recording (docs/archivist.md)

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "app_version": self.app_version,
            "recording": self.recording,
            "recording_sha256": self.recording_sha256,
            "separation": {"backend": self.backend, "settings": self.backend_settings},
            "model": self.model,
            "models": self.models,
            "renditions": self.renditions,
            "current_rendition": self.current,
            "mono_compatible": self.mono_compatible,
            "sources": self.sources,
            "export": self.export,
        }

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "project") -> "ProjectData":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ProjectError(f"{where}: not a Soundstage project file")
        if data.get("version") != VERSION:
            raise ProjectError(f"{where}: project format version {data.get('version')!r} is not supported "
                               f"(this Soundstage reads version {VERSION})")
        sep = data.get("separation") or {}
        try:
            current = int(data.get("current_rendition", -1))
        except (TypeError, ValueError):
            raise ProjectError(f"{where}: current_rendition must be a number") from None
        return cls(recording=data.get("recording"), recording_sha256=data.get("recording_sha256"),
                   backend=sep.get("backend", "formation"), backend_settings=dict(sep.get("settings") or {}),
                   model=data.get("model") or "decorr", renditions=list(data.get("renditions") or []),
                   current=current, sources=list(data.get("sources") or []), export=dict(data.get("export") or {}),
                   app_version=data.get("app_version"), models=dict(data.get("models") or {}),
                   mono_compatible=bool(data.get("mono_compatible", False)))

    def recording_path(self, project_path) -> Path:
        """The recording, resolved against the project file's folder; ProjectError if missing."""
        project_path = Path(project_path)
        if not self.recording:
            raise ProjectError(f"{project_path}: the project names no recording")
        rec = Path(self.recording)
        rec = rec if rec.is_absolute() else project_path.parent / rec
        if not rec.exists():
            raise ProjectError(f"{project_path}: its recording {rec} is missing (move it back or edit 'recording')")
        return rec


def relative_recording(recording, base) -> Optional[str]:
    """``recording`` relative to folder ``base`` when possible (else absolute)."""
    if recording is None:
        return None
    rec_abs = Path(recording).resolve()
    if base is not None:
        try:
            return os.path.relpath(rec_abs, Path(base).resolve())
        except ValueError:  # another drive (Windows)
            pass
    return str(rec_abs)


def write_project(data: ProjectData, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(data.to_dict(), f, indent=2)
            f.write("\n")
    return path


def read_project(path) -> ProjectData:
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ProjectError(f"{path}: no such project file") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ProjectError(f"{path}: not a Soundstage project ({exc})") from None
    return ProjectData.from_dict(raw, where=str(path))


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def _sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]


def model_checksums(names, folder) -> dict:
    """{model name: {file name: SHA-256}} of the files that models ``names`` load from ``folder``
    (an empty dict for a model without files, such as Decorr)."""
    from core.models.base import model_files
    out = {}
    for name in sorted(set(names)):
        out[name] = {p.name: _sha256(p) for p in model_files(name, folder) if p.is_file()}
    return out


def exactness_notes(data: ProjectData, *, folder, app_version: str) -> list[str]:
    """Why a re-render of ``data`` may differ from the project's export (empty: it will be exact)."""
    notes = []
    if data.app_version is not None and data.app_version != app_version:
        notes.append(f"the project was saved by Soundstage {data.app_version}, this is {app_version}: "
                     f"the re-render may differ")
    names = {r.get("model") for r in data.renditions if isinstance(r, dict) and r.get("model")}
    if data.models:
        now = model_checksums(names, folder)
        for name in sorted(names):
            want = data.models.get(name)
            if want is None:
                notes.append(f"the project does not record the file of model {name!r}: the re-render may differ")
            elif now.get(name) != want:
                notes.append(f"model {name!r} in {folder} is not the file the project was made with "
                             f"(SHA-256 differs or missing): the re-render will not be exact")
    elif names:
        notes.append("the project records no model checksums (an older project): exactness cannot be checked")
    return notes
