"""Project files: versioned JSON that re-makes a session (and its export) exactly.

A project names the recording (relative to the project file when possible, with the audio's
SHA-256 to notice a changed file), the separation backend and its settings, the renditions (model,
seed, temperature, guidance), the current one, and every source's placement. Loading re-runs
separation and prediction, which are deterministic, then applies the saved placements.
Files are written atomically (temporary file, then rename).
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Optional

from core.audio import replacing
from core.errors import ParameterError
from core.placement import Placement
from core.progress import ProgressFn, Reporter

FORMAT = "soundstage-project"
VERSION = 1

__all__ = ["save_project", "load_project", "project_dict", "ProjectError", "FORMAT", "VERSION"]


class ProjectError(ParameterError):
    """A project file that cannot be used (missing recording, unknown version, bad JSON)."""


def project_dict(session, *, base: Optional[Path] = None, export: Optional[dict] = None) -> dict:
    rec = session.recording
    rec_str = None
    if rec is not None:
        rec_abs = Path(rec).resolve()
        rec_str = str(rec_abs)
        if base is not None:
            try:
                rec_str = os.path.relpath(rec_abs, Path(base).resolve())
            except ValueError:  # another drive (Windows)
                pass
    return {
        "format": FORMAT,
        "version": VERSION,
        "recording": rec_str,
        "recording_sha256": session.audio_sha256() if session.mono is not None else None,
        "separation": {"backend": session.backend, "settings": session.backend_settings},
        "model": session.model,
        "renditions": [r.to_dict() for r in session.renditions],
        "current_rendition": session.current,
        "sources": [{"name": s.name, "colour": s.colour, "kind": s.kind, "placement": p.to_dict()}
                    for s, p in zip(session.sources, session.placements)],
        "export": export or {},
    }


def save_project(session, path, *, export: Optional[dict] = None) -> Path:
    path = Path(path)
    data = project_dict(session, base=path.parent, export=export)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
    return path


def read_project(path) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ProjectError(f"{path}: no such project file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProjectError(f"{path}: not a Soundstage project ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ProjectError(f"{path}: not a Soundstage project file")
    if data.get("version") != VERSION:
        raise ProjectError(f"{path}: project format version {data.get('version')!r} is not supported "
                           f"(this Soundstage reads version {VERSION})")
    return data


def load_project(path, *, progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None):
    """A :class:`app.session.Session` re-made from project ``path``."""
    from .session import Rendition, Session
    path = Path(path)
    data = read_project(path)
    rec = data.get("recording")
    if not rec:
        raise ProjectError(f"{path}: the project names no recording")
    rec_path = Path(rec) if os.path.isabs(rec) else (path.parent / rec)
    if not rec_path.exists():
        raise ProjectError(f"{path}: its recording {rec_path} is missing (move it back or edit 'recording')")
    s = Session()
    s.open(rec_path)
    if data.get("recording_sha256") and data["recording_sha256"] != s.audio_sha256():
        raise ProjectError(f"{path}: the recording {rec_path} has changed since the project was saved")
    sep = data.get("separation") or {}
    s.model = data.get("model") or s.model
    s.separate(sep.get("backend", "formation"), sep.get("settings") or {},
               progress=Reporter(progress, "separate", 0.0, 0.7), cancel=cancel)
    s.renditions = [Rendition.from_dict(r) for r in data.get("renditions", [])]
    cur = int(data.get("current_rendition", -1))
    if s.renditions and 0 <= cur < len(s.renditions):
        s.recall(cur, record=False, progress=Reporter(progress, "predict", 0.7, 0.3), cancel=cancel)
    saved = data.get("sources", [])
    if len(saved) != len(s.sources):
        raise ProjectError(f"{path}: the project has {len(saved)} sources but separation gave {len(s.sources)}")
    for i, d in enumerate(saved):
        s.sources[i].name = d.get("name", s.sources[i].name)
        s.sources[i].colour = d.get("colour", s.sources[i].colour)
        s.placements[i] = Placement.from_dict(d["placement"])
    s.export_settings = dict(data.get("export") or {})
    s.undo.clear()
    return s
