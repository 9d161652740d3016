"""The session: a recording, its sources, the model's PS parameters, placements and renditions.

Data flow: load -> separate (a backend) -> predict (a model, a seed) -> seed
placements -> render / play / export. Every heavy step takes ``progress`` and ``cancel`` and is
meant to run in a worker; the rest (placement edits, rendition recall of known parameters, mixing
snapshots) is cheap and runs anywhere. Listeners (``subscribe``) hear "sources", "params",
"placements", "renditions" events; they must not block.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np

import separation
from core import SAMPLE_RATE, audio
from core.errors import ParameterError
from core.models import load_model
from core.placement import Placement, seed_placements
from core.progress import ProgressFn, Reporter, check_cancel, report
from core.ps import PSParams
from core.renderer import SourceRender, auto_coefficients, mix, mix_chunks, prepare_source
from separation.base import Source

from . import __version__
from .playback import MixEngine, MixSnapshot, snapshot_for
from .project import ProjectData, ProjectError, exactness_notes, model_checksums, read_project, \
    relative_recording, write_project
from .settings import Settings
from .undo import Command, UndoStack

__all__ = ["Rendition", "Session", "ExportResult", "SourcesPlan", "RenditionPlan"]


@dataclass(frozen=True)
class Rendition:
    seed: int
    model: str
    temperature: Optional[float] = None
    guidance: Optional[float] = None

    def to_dict(self) -> dict:
        return {"seed": self.seed, "model": self.model, "temperature": self.temperature, "guidance": self.guidance}

    @classmethod
    def from_dict(cls, d: dict) -> "Rendition":
        return cls(int(d["seed"]), str(d["model"]), d.get("temperature"), d.get("guidance"))


@dataclass
class SourcesPlan:
    """New sources computed in a worker, to be adopted on the UI thread (:meth:`Session.adopt_sources`)."""
    sources: list[Source]
    renders: list[SourceRender]
    placements: list[Placement]
    backend: str
    settings: dict


@dataclass
class RenditionPlan:
    """A rendition's parameters, trajectories and placements computed in a worker, to be adopted on
    the UI thread (:meth:`Session.adopt_rendition`)."""
    rendition: "Rendition"
    params: PSParams
    renders: list[SourceRender]
    placements: list[Placement]


@dataclass
class ExportResult:
    path: Path
    gain_db: float
    peak_db: float
    project: Optional[Path] = None
    stems: list[Path] = field(default_factory=list)


class Session:
    """``settings``: the user's folders and limits (default: resolved from the environment)."""

    def __init__(self, settings: Optional[Settings] = None):
        self.settings = settings if settings is not None else Settings.resolve()
        self.project_notes: list[str] = []       # why re-making a loaded project may not be exact
        self.recording: Optional[Path] = None
        self.mono: Optional[np.ndarray] = None
        self.backend: str = "formation"
        self.backend_settings: dict = {}
        self.model: str = "decorr"
        self.sources: list[Source] = []
        self.renders: list[SourceRender] = []
        self.placements: list[Placement] = []
        self.renditions: list[Rendition] = []
        self.current: int = -1
        self._params: dict[Rendition, PSParams] = {}
        self.undo = UndoStack()
        self._listeners: list[Callable[[str], None]] = []
        self._engine: Optional[MixEngine] = None
        self.ab_original = False
        self.export_settings: dict = {}

    # --- events -------------------------------------------------------------------------------
    def subscribe(self, fn: Callable[[str], None]) -> None:
        self._listeners.append(fn)

    def _emit(self, what: str) -> None:
        for fn in list(self._listeners):
            fn(what)

    # --- loading and heavy steps (workers) ------------------------------------------------------
    def open(self, path) -> None:
        mono = audio.load_mono(path)
        self.recording, self.mono = Path(path), mono
        self.sources, self.renders, self.placements = [], [], []
        self.renditions, self.current, self._params = [], -1, {}
        self._engine = None
        self.undo.clear()
        self._emit("recording")

    @property
    def seconds(self) -> float:
        return 0.0 if self.mono is None else len(self.mono) / SAMPLE_RATE

    def audio_sha256(self) -> str:
        return hashlib.sha256(np.ascontiguousarray(self.mono).tobytes()).hexdigest()

    def separate(self, backend: Optional[str] = None, settings: Optional[dict] = None, *,
                 progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None) -> None:
        """Find the sources with ``backend`` and precompute what rendering needs."""
        self.adopt_sources(self.plan_sources(backend, settings, progress=progress, cancel=cancel))

    def plan_sources(self, backend: Optional[str] = None, settings: Optional[dict] = None, *,
                     progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None) -> "SourcesPlan":
        """Worker side of :meth:`separate`: the new sources, ready to adopt; the session is not changed."""
        self._need_recording()
        backend = backend or self.backend
        settings = dict(settings if settings is not None else self.backend_settings)
        options = {**settings, **self.settings.backend_options(backend)}   # folders: the user's, never a project's
        sources = separation.get(backend, **options).separate(
            self.mono, progress=Reporter(progress, "separate", 0.0, 0.8), cancel=cancel)
        return self._plan_install(sources, backend, settings, progress=Reporter(progress, "prepare", 0.8, 0.2),
                                  cancel=cancel)

    def set_sources(self, sources: list[Source], *, backend: str = "custom", settings: Optional[dict] = None,
                    progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None) -> None:
        """Use given sources (stems that sum to the recording), e.g. from a cache or a test."""
        self._need_recording()
        self.adopt_sources(self._plan_install(sources, backend, dict(settings or {}), progress=progress,
                                              cancel=cancel))

    def _plan_install(self, sources: list[Source], backend: str, settings: dict, *,
                      progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None) -> "SourcesPlan":
        """Decorrelate every stem. The stems are used in place (the playback engine reads them
        and their decorrelated copies directly: no second copy of any signal). When a rendition is
        current, the new sources are seeded with its parameters."""
        n = len(self.mono)
        renders = []
        for i, src in enumerate(sources):
            check_cancel(cancel)
            audio_i = np.ascontiguousarray(src.audio[:n], dtype=np.float32)
            if len(audio_i) < n:
                audio_i = np.pad(audio_i, (0, n - len(audio_i)))
            src.audio = audio_i
            renders.append(prepare_source(audio_i, cancel=cancel))
            report(progress, "prepare", i + 1, len(sources))
        placements = [Placement() for _ in sources]
        if self.renditions and self.current >= 0:  # re-seed with the current rendition's parameters
            r = self.renditions[self.current]
            placements = self._seed(renders, self._params[r], placements)
        return SourcesPlan(sources, renders, placements, backend, settings)

    def adopt_sources(self, plan: "SourcesPlan", *, engine: Optional[MixEngine] = None) -> None:
        """UI side of :meth:`separate` (cheap): install planned sources (and the playback ``engine``
        made for them, if any); the undo history restarts."""
        self.backend, self.backend_settings = plan.backend, plan.settings
        self.sources, self.renders, self.placements = plan.sources, plan.renders, plan.placements
        self._engine = engine
        self.undo.clear()
        self._emit("sources")
        if self.renditions and self.current >= 0:
            self._emit("params")
            self._emit("placements")

    def predict(self, rendition: Rendition, *, progress: Optional[ProgressFn] = None,
                cancel: Optional[threading.Event] = None) -> PSParams:
        """PS parameters of ``rendition`` (cached; the same rendition always gives the same values)."""
        params = self._predict(rendition, progress=progress, cancel=cancel)
        self._params[rendition] = params
        return params

    def _predict(self, rendition: Rendition, *, progress: Optional[ProgressFn] = None,
                 cancel: Optional[threading.Event] = None) -> PSParams:
        """:meth:`predict` without touching the cache (safe in a worker)."""
        self._need_recording()
        if rendition in self._params:
            return self._params[rendition]
        model = load_model(rendition.model, self.settings.models_dir)
        return model.predict(self.mono, seed=rendition.seed, temperature=rendition.temperature,
                             guidance=rendition.guidance, progress=progress, cancel=cancel)

    def _next_seed(self) -> int:
        used = {r.seed for r in self.renditions}
        return next(s for s in range(len(used) + 1) if s not in used)

    def new_rendition(self, seed: Optional[int] = None, *, model: Optional[str] = None,
                      temperature: Optional[float] = None, guidance: Optional[float] = None,
                      progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None) -> int:
        """Sample the model again (a new seed unless given), keep it in the gallery and switch to it.
        Pinned sources keep their place. Returns the rendition's index."""
        plan = self.plan_rendition(seed, model=model, temperature=temperature, guidance=guidance,
                                   progress=progress, cancel=cancel)
        return self.adopt_rendition(plan)

    def plan_rendition(self, seed: Optional[int] = None, *, model: Optional[str] = None,
                       temperature: Optional[float] = None, guidance: Optional[float] = None,
                       index: Optional[int] = None, sources: Optional["SourcesPlan"] = None,
                       progress: Optional[ProgressFn] = None,
                       cancel: Optional[threading.Event] = None) -> "RenditionPlan":
        """Worker side of :meth:`new_rendition` (or, with ``index``, of :meth:`recall`): predict and
        seed on copies; the session is not changed until :meth:`adopt_rendition`. With ``sources``,
        for planned sources that will be adopted first."""
        if index is not None:
            if not 0 <= index < len(self.renditions):
                raise ParameterError(f"no rendition {index}; there are {len(self.renditions)}")
            r = self.renditions[index]
        else:
            r = Rendition(int(self._next_seed() if seed is None else seed), model or self.model,
                          temperature, guidance)
        params = self._predict(r, progress=Reporter(progress, "predict", 0.0, 0.9), cancel=cancel)
        check_cancel(cancel)
        base_r, base_p = (sources.renders, sources.placements) if sources is not None else (self.renders, self.placements)
        renders = [replace(sr) for sr in base_r]
        placements = self._seed(renders, params, list(base_p))
        report(progress, "render", 1, 1)
        return RenditionPlan(r, params, renders, placements)

    def adopt_rendition(self, plan: "RenditionPlan", *, record: bool = True) -> int:
        """UI side (cheap): switch to a planned rendition, keep it in the gallery, one undo step.
        Returns the rendition's index."""
        before = self._state()
        self._params[plan.rendition] = plan.params
        if plan.rendition not in self.renditions:
            self.renditions.append(plan.rendition)
            label = f"new rendition (seed {plan.rendition.seed})"
        else:
            label = f"switch to rendition {self.renditions.index(plan.rendition) + 1}"
        index = self.renditions.index(plan.rendition)
        after = (index, plan.renders, plan.placements)
        if record:
            self.undo.push(Command(label, lambda a=after: self._restore(*a), lambda b=before: self._restore(*b)))
        else:
            self._restore(*after)
        return index

    def recall(self, index: int, *, record: bool = True, progress: Optional[ProgressFn] = None,
               cancel: Optional[threading.Event] = None) -> None:
        """Switch to kept rendition ``index``: re-made exactly from its seed; pinned sources stay."""
        self.adopt_rendition(self.plan_rendition(index=index, progress=progress, cancel=cancel), record=record)

    def _state(self) -> tuple:
        return self.current, list(self.renders), list(self.placements)

    def _restore(self, index: int, renders: list[SourceRender], placements: list[Placement]) -> None:
        """Make a recorded state current (cheap: the per-frame tables were computed when planned)."""
        self.current = index
        if index >= 0:
            self.model = self.renditions[index].model
        self.renders = list(renders)
        self.placements = list(placements)
        if self._engine is not None:
            self._engine.set_trajectories(self._trajectory_stack())
            self._engine.set_snapshot(self.snapshot())
        self._emit("params")
        self._emit("renditions")
        self._emit("placements")

    @staticmethod
    def _seed(renders: list[SourceRender], params: PSParams, previous: list[Placement]) -> list[Placement]:
        """Set the auto trajectories of ``renders`` (fresh copies) from ``params`` and return the
        re-seeded placements (every one not pinned)."""
        auto_coefficients(renders, params)
        if not renders:
            return []
        energies = np.stack([sr.energy for sr in renders])
        return seed_placements(params, energies, previous=previous or None)

    def _trajectory_stack(self) -> Optional[np.ndarray]:
        return _trajectory_stack(self.renders)

    def trajectory(self, index: int) -> Optional[tuple[np.ndarray, np.ndarray]]:
        """Per-frame (pan, width) of source ``index`` in auto mode for the current rendition."""
        from core.placement import ic_to_width, iid_to_pan
        r = self.renders[index]
        if r.iid_t is None:
            return None
        return iid_to_pan(r.iid_t), ic_to_width(r.ic_t)

    # --- cheap edits ----------------------------------------------------------------------------
    def set_placement(self, index: int, placement: Placement, *, merge_key=None, label: str = "move source") -> None:
        """Change one placement through the undo stack (consecutive edits with one merge_key merge)."""
        old = self.placements[index]
        if old == placement:
            return

        def do(i=index, p=placement):
            self.placements[i] = p
            self._emit("placements")

        def undo(i=index, p=old):
            self.placements[i] = p
            self._emit("placements")

        self.undo.push(Command(label, do, undo, merge_key))

    def reset_placement(self, index: int) -> None:
        """Back to the model's proposal for this source (auto)."""
        p = replace(self.placements[index], pinned=False)
        if self.current >= 0:
            r = self.renditions[self.current]
            energies = np.stack([sr.energy for sr in self.renders])
            p = seed_placements(self._params[r], energies, previous=[replace(q, pinned=False) for q in self.placements])[index]
        self.set_placement(index, p, label="reset to model")

    # --- output ---------------------------------------------------------------------------------
    def render(self, *, stems: bool = False, progress: Optional[ProgressFn] = None):
        """The stereo mix [shape=(n, 2)] (and the stereo stems with ``stems``)."""
        if not self.renders:
            raise ParameterError("nothing to render: separate the recording first")
        return mix(self.renders, self.placements, stems=stems, progress=progress)

    def mix_engine(self) -> MixEngine:
        """The playback engine over this session's precomputed signals (one per set of sources;
        renditions and placements update it in place)."""
        if not self.renders:
            raise ParameterError("nothing to play: separate the recording first")
        if self._engine is None:
            self._engine = self.make_engine(self.renders, self.placements, ab_original=self.ab_original)
        return self._engine

    @staticmethod
    def make_engine(renders: list[SourceRender], placements: list[Placement], *,
                    ab_original: bool = False) -> MixEngine:
        """A playback engine over ``renders`` (their signals are read in place, never copied)."""
        snap = snapshot_for(placements, has_auto=[r.auto is not None for r in renders], ab_original=ab_original)
        return MixEngine([r.s for r in renders], [r.d for r in renders], snap, _trajectory_stack(renders))

    def snapshot(self) -> MixSnapshot:
        return snapshot_for(self.placements, has_auto=[r.auto is not None for r in self.renders],
                            ab_original=self.ab_original)

    def export(self, path, *, fmt: Optional[str] = None, stems: bool = False, project: bool = True,
               overwrite: bool = False, ceiling_db: float = -0.1,
               progress: Optional[ProgressFn] = None) -> ExportResult:
        """Write the stereo mix (never clipped, never over the input, atomically) and, with
        ``project``, a project file beside it (``OUT.soundstage.json``) that re-makes it exactly."""
        path = Path(path)
        fmt = fmt or audio.format_for_path(path)
        if self.recording is not None and audio.same_file(self.recording, path):
            raise ParameterError(f"{path}: refusing to write over the input recording")
        # mix once (chunked inside), scale by one gain if the peak would pass the ceiling, write
        # in chunks; stems, when asked for, are mixed again chunk by chunk while writing
        full = self.render(progress=Reporter(progress, "mix", 0.0, 0.5))
        peak = float(np.max(np.abs(full), initial=0.0))
        limit = 10 ** (ceiling_db / 20)
        g = np.float32(min(1.0, limit / peak) if peak > 0 else 1.0)
        gain_db = float(20 * np.log10(g))
        inputs = [self.recording]
        folder = path.with_name(path.stem + "-stems")
        ext = ".flac" if fmt.startswith("flac") else ".wav"
        stem_paths = []
        for i, src in enumerate(self.sources):
            safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in src.name)[:40]
            stem_paths.append(folder / f"{i + 1:02d}-{safe}{ext}")
        targets = [path] + (stem_paths if stems else [])
        n = len(full)
        with audio.AtomicWriters(targets, fmt=fmt, channels=2, overwrite=overwrite, inputs=inputs) as writers:
            if stems:
                for start, chunk, parts in mix_chunks(self.renders, self.placements, stems=True):
                    writers[0].write(full[start:start + len(chunk)] * g)
                    for w, part in zip(writers[1:], parts):
                        w.write(part * g)
                    report(progress, "export", 0.5 + 0.5 * (start + len(chunk)) / n, 1.0)
            else:
                step = 1 << 18
                for start in range(0, n, step):
                    writers[0].write(full[start:start + step] * g)
                    report(progress, "export", 0.5 + 0.5 * min(n, start + step) / n, 1.0)
        res = ExportResult(path, gain_db, 20 * np.log10(max(peak * g, 1e-12)), stems=stem_paths if stems else [])
        if project:
            res.project = self.save_project(path.with_suffix(".soundstage.json"),
                                            export={"path": path.name, "format": fmt, "ceiling_db": ceiling_db})
        return res

    # --- projects -------------------------------------------------------------------------------
    def to_project(self, *, base: Optional[Path] = None, export: Optional[dict] = None) -> ProjectData:
        """The project data of this session (``base``: the folder the recording is named relative to)."""
        return ProjectData(
            recording=relative_recording(self.recording, base),
            recording_sha256=self.audio_sha256() if self.mono is not None else None,
            backend=self.backend, backend_settings=dict(self.backend_settings), model=self.model,
            renditions=[r.to_dict() for r in self.renditions], current=self.current,
            sources=[{"name": src.name, "colour": src.colour, "kind": src.kind, "placement": p.to_dict()}
                     for src, p in zip(self.sources, self.placements)],
            export=dict(export or {}), app_version=__version__,
            models=model_checksums([r.model for r in self.renditions], self.settings.models_dir))

    def save_project(self, path, *, export: Optional[dict] = None) -> Path:
        """Write the project file ``path`` (atomically)."""
        path = Path(path)
        return write_project(self.to_project(base=path.parent, export=export), path)

    @classmethod
    def from_project(cls, path, *, settings: Optional[Settings] = None, progress: Optional[ProgressFn] = None,
                     cancel: Optional[threading.Event] = None) -> "Session":
        """A session re-made from project file ``path``; ``project_notes`` says why a re-render may
        not be exact (another app version, a model file that is not the one the project used)."""
        path = Path(path)
        data = read_project(path)
        rec_path = data.recording_path(path)
        s = cls(settings)
        s.open(rec_path)
        if data.recording_sha256 and data.recording_sha256 != s.audio_sha256():
            raise ProjectError(f"{path}: the recording {rec_path} has changed since the project was saved")
        s.model = data.model
        s.separate(data.backend, data.backend_settings, progress=Reporter(progress, "separate", 0.0, 0.7),
                   cancel=cancel)
        s.renditions = [Rendition.from_dict(r) for r in data.renditions]
        if s.renditions and 0 <= data.current < len(s.renditions):
            s.recall(data.current, record=False, progress=Reporter(progress, "predict", 0.7, 0.3), cancel=cancel)
        if len(data.sources) != len(s.sources):
            raise ProjectError(f"{path}: the project has {len(data.sources)} sources but separation gave "
                               f"{len(s.sources)}")
        for i, d in enumerate(data.sources):
            s.sources[i].name = d.get("name", s.sources[i].name)
            s.sources[i].colour = d.get("colour", s.sources[i].colour)
            s.placements[i] = Placement.from_dict(d["placement"])
        s.export_settings = dict(data.export)
        s.project_notes = exactness_notes(data, folder=s.settings.models_dir, app_version=__version__)
        s.undo.clear()
        return s

    def _need_recording(self) -> None:
        if self.mono is None:
            raise ParameterError("no recording loaded")


def _trajectory_stack(renders: list[SourceRender]) -> Optional[np.ndarray]:
    """The per-frame auto coefficients of every source [shape=(frames, sources, 4)] (None: no rendition)."""
    if not renders or all(r.auto is None for r in renders):
        return None
    t = max(len(r.auto) for r in renders if r.auto is not None)
    out = np.zeros((t, len(renders), 4), np.float32)
    for i, r in enumerate(renders):
        if r.auto is not None:
            out[:, i] = r.auto
    return out
