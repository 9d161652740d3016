"""A session to a project file and back (:mod:`app.project` holds the file format itself).

:func:`to_project` records everything that decides the sound: the recording (with its checksum),
the separation, the renditions, each source's place, the mono-compatible switch and the output
stage's settings (so a re-render applies the same gain the app played and exported).
:func:`load_project` re-makes a session from it: separation and prediction are deterministic, then
the saved places are applied, so a re-render is exact; ``project_notes`` says when it cannot be.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Optional

from core import spill
from core.placement import Placement
from core.progress import ProgressFn, Reporter

from . import __version__
from .editing import apply_saved, edits_of
from .edits import EditError, edit_from_dict
from .output import OutputSettings
from .plans import Rendition
from .project import GROUPING_MODEL, PLACEMENT_MODEL, REFERENCE_MODEL, ProjectData, ProjectError, exactness_notes, model_checksums, read_project, \
    relative_recording, write_project
from .session import Session
from core.settings import Settings
from core.errors import ParameterError
from core.reference import ReferenceScene

__all__ = ["to_project", "save_project", "load_project"]


def to_project(s: Session, *, base: Optional[Path] = None, export: Optional[dict] = None) -> ProjectData:
    """The project data of session ``s`` (``base``: the folder the recording is named relative to;
    ``export``: the export's path and format, default the session's last)."""
    return ProjectData(
        recording=relative_recording(s.recording, base),
        recording_sha256=s.audio_sha256() if s.mono is not None else None,
        backend=s.backend, backend_settings=dict(s.backend_settings), model=s.model,
        renditions=[{**r.to_dict(), **({"places": [p.to_dict() for p in g]} if g else {})}
                    for r, g in zip(s.renditions, s.gallery)], current=s.current,
        sources=[{"name": src.name, "colour": src.colour, "kind": src.kind, "placement": p.to_dict()}
                 for src, p in zip(s.sources, s.placements)],
        export={**(s.export_settings if export is None else export), **s.output.to_dict()}, app_version=__version__,
        mono_compatible=bool(s.mono_compatible), edits=[e.to_dict() for e in edits_of(s)],
        loop=list(s.loop_region) if s.loop_region else None,
        references={sc.id: sc.to_dict() for sc in [s.reference] + [r.reference for r in s.renditions] if sc is not None},
        reference=s.reference.id if s.reference is not None else None,
        models=model_checksums([r.model for r in s.renditions]
                               + [PLACEMENT_MODEL for r in s.renditions if r.placement == "model"]
                               + [REFERENCE_MODEL for r in s.renditions if r.reference is not None]
                               + ([GROUPING_MODEL] if s.backend == "formation" else []), s.settings.models_dir))


def save_project(s: Session, path, *, export: Optional[dict] = None) -> Path:
    """Write session ``s`` as project file ``path`` (atomically; ``export``: see :func:`to_project`)."""
    path = Path(path)
    return write_project(to_project(s, base=path.parent, export=export), path)


def load_project(path, *, settings: Optional[Settings] = None, pairs: bool = True,
                 progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None) -> Session:
    """A session re-made from project file ``path``; its ``project_notes`` say why a re-render may
    not be exact (another app version, a model file that is not the one the project used).
    ``pairs=False``: a headless session (:attr:`Session.pairs`), to export only. Inside
    :func:`core.spill.spilling` its signals (the input, stems, decorrelated copies) are mapped on disk
    and walked chunk by chunk, as the headless chain's are."""
    path = Path(path)
    data = read_project(path)
    rec_path = data.recording_path(path)
    s = Session(settings)
    s.pairs = pairs
    s.open(rec_path)
    s.mono = spill.to_disk(s.mono)      # inside core.spill.spilling (``render``): the input on disk too
    progress = spill.Releasing(progress, s.mono)
    if data.recording_sha256 and data.recording_sha256 != s.audio_sha256():
        raise ProjectError(f"{path}: the recording {rec_path} has changed since the project was saved")
    s.model = data.model
    s.set_mono_compatible(data.mono_compatible, record=False)
    s.separate(data.backend, data.backend_settings, progress=Reporter(progress, "separate", 0.0, 0.7),
               cancel=cancel)
    try:
        apply_saved(s, [edit_from_dict(e) for e in data.edits], cancel=cancel)   # the person's edits, as saved
    except EditError as exc:
        raise ProjectError(f"{path}: {exc}") from None
    if len(data.sources) != len(s.sources):
        raise ProjectError(f"{path}: the project has {len(data.sources)} sources but separation gave "
                           f"{len(s.sources)}")
    saved = [Placement.from_dict(d["placement"]) for d in data.sources]
    scenes = _scenes(path, data.references)         # the references' scenes: no reference file is needed
    s.reference = scenes.get(data.reference) if data.reference else None
    s.renditions = [Rendition.from_dict(r, scenes) for r in data.renditions]
    s.gallery = [[Placement.from_dict(p) for p in r["places"]] if len(r.get("places") or []) == len(saved) else None
                 for r in data.renditions]        # older projects: sampled again when recalled
    if s.renditions and 0 <= data.current < len(s.renditions):
        # the saved places, not a fresh sample: a place may have been sampled with other sources
        # pinned than now (pinned or reset after the rendition)
        s.recall(data.current, record=False, places=saved, progress=Reporter(progress, "predict", 0.7, 0.3),
                 cancel=cancel)
    for i, d in enumerate(data.sources):
        s.sources[i].name = d.get("name", s.sources[i].name)
        s.sources[i].colour = d.get("colour", s.sources[i].colour)
        s.placements[i] = saved[i]
    s.export_settings = {k: v for k, v in data.export.items() if k in ("path", "format")}
    s.set_output(OutputSettings.from_dict(data.export))
    if data.loop and 0 <= data.loop[0] < data.loop[1] <= s.seconds:
        s.loop_region = (float(data.loop[0]), float(data.loop[1]))
    s.project_notes = exactness_notes(data, folder=s.settings.models_dir, app_version=__version__)
    s.undo.clear()
    return s


def _scenes(path: Path, saved: dict) -> dict:
    """The project's reference scenes (``ReferenceScene`` by id); ProjectError for a bad one."""
    out = {}
    for k, d in saved.items():
        try:
            out[k] = ReferenceScene.from_dict(d)
        except ParameterError as exc:
            raise ProjectError(f"{path}: references.{k}: {exc}") from None
    return out
