"""Project files: versioned JSON that re-makes a session (and its export) exactly.

This module reads and writes plain data (:class:`ProjectData`); it knows nothing of sessions.
:meth:`app.session.Session.to_project` makes the data and :meth:`app.session.Session.from_project`
re-makes a session from it (separation and prediction are deterministic, then the saved placements
are applied).

A project names the recording (relative to the project file when possible, with the audio's
SHA-256 to notice a changed file), the separation backend and its settings, the renditions (model,
seed, temperature, guidance, placement method, variety and the seed of the PS sample whose detail
it keeps), the current one, every source's placement, the edits a person made to the sources
(merge, split, move a region: :mod:`app.edits`; only when there are some, so older projects read
and write as before), the version of Soundstage that wrote it and the SHA-256 of every model file its
renditions used, so that a re-render can say when it cannot be exact. Files are written atomically (temporary file, then rename).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from core.audio import replacing
from core.errors import ParameterError
from core.formats import SUBTYPES
from core.hashing import sha256_file
from core.limits import CEILING_DB_RANGE, GAIN_DB_RANGE, VARIETY_RANGE
import math
import re
from core.models.base import list_models, model_files

FORMAT = "soundstage-project"
VERSION = 1
MAX_BYTES = 16 * 1024 * 1024

__all__ = ["ProjectData", "ProjectError", "write_project", "read_project", "looks_like_project", "model_checksums",
           "exactness_notes", "FORMAT", "VERSION", "SCHEMA", "BACKEND_SCHEMAS", "PLACEMENT_MODEL", "GROUPING_MODEL",
           "REFERENCE_MODEL"]

PLACEMENT_MODEL = "placement"   # the source-level placement model's entry in ``models``
GROUPING_MODEL = "grouping"     # the formation's grouping model's entry (projects separated with formation)
REFERENCE_MODEL = "reference-match"   # the reference matcher's entry (renditions that followed a reference)


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
    edits: list = field(default_factory=list)           # app.edits: the sources' edits, in order (issue 26)
    loop: Optional[list] = None                         # the marked loop region [start, end] in seconds
    references: dict = field(default_factory=dict)      # stereo references: scene id -> ReferenceScene.to_dict()
    reference: Optional[str] = None                     # the one new renditions follow (app.reference)

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
            **({"edits": self.edits} if self.edits else {}),      # a project without edits is as before
            **({"loop": list(self.loop)} if self.loop else {}),
            **({"references": self.references, "reference": self.reference} if self.references else {}),
        }

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "project") -> "ProjectData":
        """Project data from the parsed JSON, checked against :data:`SCHEMA` (types, ranges, no
        unknown keys; backend settings limited to the backend's options a project may set).
        Raises :class:`ProjectError` naming the first offending field, in one line."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ProjectError(f"{where}: not a Soundstage project file")
        if data.get("version") != VERSION:
            raise ProjectError(f"{where}: project format version {data.get('version')!r} is not supported "
                               f"(this Soundstage reads version {VERSION})")
        d = _check(data, SCHEMA, where, "")
        sep = d.get("separation") or {"backend": "formation", "settings": {}}
        backend = sep["backend"]
        settings = _check(sep.get("settings") or {}, _backend_schema(backend, where), where, "separation.settings")
        renditions = d.get("renditions") or []
        current = d.get("current_rendition", -1)
        if not -1 <= current < max(1, len(renditions)) or (current >= 0 and not renditions):
            raise ProjectError(f"{where}: current_rendition {current} does not name one of the "
                               f"{len(renditions)} renditions")
        references = d.get("references") or {}
        named = [("reference", d.get("reference"))] + [(f"renditions[{i}].reference", r.get("reference"))
                                                        for i, r in enumerate(renditions)]
        for at, ref in named:
            if ref is not None and ref not in references:
                raise ProjectError(f"{where}: {at} names no scene in 'references'")
        for k, sc in references.items():
            _check(sc.get("settings") or {}, _backend_schema(sc["separator"], where), where, f"references.{k}.settings")
        return cls(recording=d.get("recording"), recording_sha256=d.get("recording_sha256"),
                   backend=backend, backend_settings=settings,
                   model=d.get("model") or "decorr", renditions=renditions,
                   current=current, sources=d.get("sources") or [], export=d.get("export") or {},
                   app_version=d.get("app_version"), models=d.get("models") or {},
                   mono_compatible=d.get("mono_compatible", False), edits=d.get("edits") or [],
                   loop=d.get("loop"),
                   references=references, reference=d.get("reference"))

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


# -- the schema ------------------------------------------------------------------------------------
#
# A project is data. Each field has a type and a range; a key the schema does not name is refused,
# so nothing in a project can reach code it was not meant to (a model folder, a cache folder).
# Specs: ("str", max_len, pattern|None), ("int", lo, hi), ("num", lo, hi) (finite), ("bool",),
# ("enum", values), ("opt", spec) (None allowed), ("list", spec, max_len), ("obj", {key: spec},
# required keys), ("map", key_pattern, value_spec, max_len).

_NAME = r"[A-Za-z0-9_.+-]{1,64}"
_HEX64 = r"[0-9a-f]{64}"
_SEED = ("int", -(2 ** 63), 2 ** 63 - 1)
_PLACEMENT = ("obj", {"pan": ("num", -1.0, 1.0), "width": ("num", 0.0, 1.0), "gain_db": ("num", *GAIN_DB_RANGE),
                      "mute": ("bool",), "solo": ("bool",), "pinned": ("bool",)}, ())
_REF_ID = ("str", 12, r"[0-9a-f]{12}")
_NUM = ("num", -1e6, 1e6)
_SCENE = ("obj", {"version": ("int", 1, 1), "name": ("str", 4096, None), "sha256": ("str", 64, r"(?:[0-9a-f]{64})?"),
                  "separator": ("str", 64, _NAME), "settings": ("map", r"[a-z_]{1,64}", None, 64),
                  "side_db": _NUM, "feats": ("list", ("list", _NUM, 64), 32), "mix": ("list", _NUM, 64),
                  "pan": ("list", ("num", -1.0, 1.0), 32), "width": ("list", ("num", 0.0, 1.0), 32),
                  "share": ("list", ("num", 0.0, 1.0), 32), "band_pan": ("list", ("list", ("num", -1.0, 1.0), 64), 32)},
          ("separator", "feats", "mix", "pan", "width", "share"))
_RENDITION = ("obj", {"seed": _SEED, "model": ("str", 64, _NAME),
                      "temperature": ("opt", ("num", 0.0, 100.0)), "guidance": ("opt", ("num", -100.0, 100.0)),
                      "placement": ("enum", ("model", "mean")), "variety": ("num", *VARIETY_RANGE),
                      "places": ("list", _PLACEMENT, 1024), "detail": ("opt", _SEED), "reference": ("opt", _REF_ID)},
              ("seed", "model"))
_SOURCE = ("obj", {"name": ("str", 200, None), "colour": ("str", 7, r"#[0-9A-Fa-f]{6}"),
                   "kind": ("str", 32, r"[a-z_]{1,32}"), "placement": _PLACEMENT}, ("placement",))
_INDEX = ("int", 0, 1023)
_EDIT = ("obj", {"op": ("enum", ("merge", "split", "move")), "indices": ("list", _INDEX, 256),
                 "name": ("opt", ("str", 200, None)), "index": _INDEX, "parts": ("opt", ("int", 2, 8)),
                 "at_hz": ("opt", ("num", 1.0, 22049.0)), "src": _INDEX, "dst": ("opt", _INDEX),
                 "t0": ("num", 0.0, 1e6), "t1": ("num", 0.0, 1e6), "f0": ("num", 0.0, 22050.0),
                 "f1": ("num", 0.0, 22050.0)}, ("op",))
_EXPORT = ("obj", {"path": ("opt", ("str", 4096, None)),
                   "format": ("opt", ("enum", tuple(SUBTYPES))),
                   "ceiling_db": ("opt", ("num", *CEILING_DB_RANGE)), "true_peak": ("bool",),
                   "keep_loudness": ("bool",)}, ())
SCHEMA = ("obj", {
    "format": ("str", 64, None), "version": ("int", 0, 1000),
    "app_version": ("opt", ("str", 64, None)),
    "recording": ("opt", ("str", 4096, None)),
    "recording_sha256": ("opt", ("str", 64, _HEX64)),
    "separation": ("obj", {"backend": ("str", 64, _NAME), "settings": ("map", r"[a-z_]{1,64}", None, 64)},
                   ("backend",)),
    "model": ("opt", ("str", 64, _NAME)),
    "models": ("map", _NAME, ("map", r"[^/\\]{1,255}", ("str", 64, _HEX64), 64), 64),
    "renditions": ("list", _RENDITION, 10000),
    "current_rendition": ("int", -1, 10000),
    "mono_compatible": ("bool",),
    "sources": ("list", _SOURCE, 256),
    "export": _EXPORT,
    "edits": ("list", _EDIT, 1024),
    "loop": ("opt", ("list", ("num", 0.0, 1e7), 2)),
    "references": ("map", r"[0-9a-f]{12}", _SCENE, 64),      # stereo references' scenes (app.reference)
    "reference": ("opt", _REF_ID),
}, ("format", "version"))

# The backend options a project may set: what changes the result. Folders, caches, devices and
# thread counts are the user's (core.settings), never a project's.
BACKEND_SCHEMAS = {
    "formation": {"n_sources": ("opt", ("int", 2, 16)), "sensitivity": ("num", 0.0, 1.0),
                  "max_peaks": ("int", 5, 100), "texture_seconds": ("num", 0.05, 2.0), "seed": _SEED},
    "demucs": {"model": ("str", 64, _NAME), "shifts": ("int", 0, 20), "overlap": ("num", 0.0, 0.99),
               "segment": ("opt", ("num", 0.1, 60.0)), "seed": _SEED},
    "custom": {},     # sources a program gave the session (Session.set_sources): nothing to set
}


def _backend_schema(backend: str, where: str) -> tuple:
    if backend not in BACKEND_SCHEMAS:
        raise ProjectError(f"{where}: unknown separation backend {backend!r} "
                           f"(a project may use {', '.join(sorted(BACKEND_SCHEMAS))})")
    return ("obj", BACKEND_SCHEMAS[backend], ())


def _check(value, spec, where: str, at: str):
    """``value`` checked against ``spec`` (see above); returns it (lists and dicts copied)."""
    kind = spec[0]
    name = at or "the project"

    def bad(what):
        raise ProjectError(f"{where}: {name} {what}")
    if kind == "opt":
        return None if value is None else _check(value, spec[1], where, at)
    if kind == "str":
        if not isinstance(value, str):
            bad(f"must be text, not {_kind(value)}")
        if len(value) > spec[1] or (spec[2] is not None and not re.fullmatch(spec[2], value)):
            bad(f"is not a valid value ({value[:40]!r})")
        return value
    if kind in ("int", "num"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind == "int" and not isinstance(value, int)):
            bad(f"must be {'an integer' if kind == 'int' else 'a number'}, not {_kind(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            bad("must be a finite number")
        if not spec[1] <= value <= spec[2]:
            bad(f"must be between {spec[1]:g} and {spec[2]:g}, not {value:g}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            bad(f"must be true or false, not {_kind(value)}")
        return value
    if kind == "enum":
        if value not in spec[1]:
            bad(f"must be one of {', '.join(map(str, spec[1]))}, not {value!r}")
        return value
    if kind == "list":
        if not isinstance(value, list):
            bad(f"must be a list, not {_kind(value)}")
        if len(value) > spec[2]:
            bad(f"has too many entries ({len(value)})")
        return [_check(v, spec[1], where, f"{at}[{i}]") for i, v in enumerate(value)]
    if kind == "obj":
        if not isinstance(value, dict):
            bad(f"must be an object, not {_kind(value)}")
        unknown = sorted(k for k in value if k not in spec[1])
        if unknown:
            raise ProjectError(f"{where}: unknown key {'.'.join(filter(None, (at, unknown[0])))!r}"
                               + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""))
        missing = [k for k in spec[2] if k not in value]
        if missing:
            raise ProjectError(f"{where}: {'.'.join(filter(None, (at, missing[0])))} is missing")
        return {k: _check(v, spec[1][k], where, ".".join(filter(None, (at, k)))) for k, v in value.items()}
    if kind == "map":
        if not isinstance(value, dict):
            bad(f"must be an object, not {_kind(value)}")
        if len(value) > spec[3]:
            bad(f"has too many entries ({len(value)})")
        out = {}
        for k, v in value.items():
            if not re.fullmatch(spec[1], k):
                raise ProjectError(f"{where}: {name} has an invalid key {k[:40]!r}")
            out[k] = v if spec[2] is None else _check(v, spec[2], where, f"{at}.{k}")
        return out
    raise AssertionError(kind)


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _no_constants(name):
    raise ValueError(f"{name} is not a number a project may hold")


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


def looks_like_project(path) -> bool:
    """Whether ``path`` is to be opened as a project: a ``.json`` name, or (a project saved under another
    name, e.g. ``upmix --project mix.soundstage``) a file that starts as a Soundstage project does."""
    path = Path(path)
    if path.name.endswith(".json"):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return head.lstrip().startswith(b"{") and f'"format": "{FORMAT}"'.encode() in head


def read_project(path) -> ProjectData:
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ProjectError(f"{path}: too large for a project file ({path.stat().st_size} bytes)")
        raw = json.loads(path.read_text(), parse_constant=_no_constants)   # NaN, Infinity: refused
    except FileNotFoundError:
        raise ProjectError(f"{path}: no such project file") from None
    except RecursionError:
        raise ProjectError(f"{path}: not a Soundstage project (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProjectError(f"{path}: not a Soundstage project ({exc})") from None
    except OSError as exc:
        raise ProjectError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return ProjectData.from_dict(raw, where=str(path))




def model_checksums(names, folder) -> dict:
    """{model name: {file name: SHA-256}} of the files that the registered models ``names`` load
    (:func:`core.models.base.model_files`): PS and placement models from ``folder``, the grouping
    model from the shipped models (an empty dict for a model without files, such as Decorr)."""
    import separation.grouping  # noqa: F401  (registers the grouping model)
    kinds = {m.name: m.kind for m in list_models(kind=None)}
    out = {}
    for name in sorted(set(names)):
        files = model_files(name, None if kinds.get(name) == "grouping" else folder)
        out[name] = {p.name: sha256_file(p) for p in files if p.is_file()}
    return out


def exactness_notes(data: ProjectData, *, folder, app_version: str) -> list[str]:
    """Why a re-render of ``data`` may differ from the project's export (empty: it will be exact)."""
    notes = []
    if data.app_version is not None and data.app_version != app_version:
        notes.append(f"the project was saved by Soundstage {data.app_version}, this is {app_version}: "
                     f"the re-render may differ")
    names = {r.get("model") for r in data.renditions if isinstance(r, dict) and r.get("model")}
    if any(isinstance(r, dict) and r.get("placement") == "model" for r in data.renditions):
        names.add(PLACEMENT_MODEL)
    if any(isinstance(r, dict) and r.get("reference") for r in data.renditions):
        names.add(REFERENCE_MODEL)
    if data.backend == "formation" and GROUPING_MODEL in data.models:
        names.add(GROUPING_MODEL)
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
