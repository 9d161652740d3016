"""The session: a recording, its sources, the model's PS parameters, placements and renditions.

Data flow: load -> separate (a backend) -> predict (a model, a seed) -> seed
placements and render each auto source band by band -> play / export. Every heavy step takes
``progress`` and ``cancel`` and is meant to run in a worker as ``plan_*`` (the session is not
changed) followed by a cheap ``adopt_*`` on the UI thread: sources, renditions, reset to the
model's proposal, the mono-compatible switch. The rest (placement edits, mixing snapshots, undo
steps whose renders are in memory) is cheap and runs anywhere. Listeners (``subscribe``) hear
"sources", "params", "placements", "renditions" events; they must not block.

Memory: an auto source's band-by-band render is a stereo pair as long as the recording (8 bytes a
sample: 484 MiB for 8 sources of 3 minutes). Undo states record their renders; the current
state's pairs always stay in memory, and those of the most recent other states as long as all
together fit in ``Session.keep_bytes`` (:data:`KEEP_BYTES`, 1 GiB: the state before too for 8
sources of 3 minutes, the current one alone for 10 minutes). Released pairs are made again from
their tile parameters when an undo step returns to them (:meth:`Session.plan_restore` in a worker).

The output stage: one gain for the whole mix (:class:`core.loudness.GainPlan`), decided by the
session's :class:`OutputSettings` (a peak ceiling, true peak by default, and optionally the
original's loudness as the target), measured on the full mix by :meth:`Session.plan_output` and
applied both by the preview (the playback snapshot) and by :meth:`Session.export`, so what is heard
is what is exported. In mono-compatible mode (:meth:`Session.set_mono_compatible`) every source is
rendered as mid = its stem, side = a s + b d, and the mix folds down to the recording times the
output gain (docs/archivist.md).
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np

import separation
from core import SAMPLE_RATE, audio
from core.errors import Cancelled, ParameterError
from core.loudness import GainPlan, Loudness, measure, plan_gain
from core.models import load_model
from core.placement import DEFAULT_VARIETY, PLACEMENT_METHODS, Placement, default_method, propose
from core.progress import ProgressFn, Reporter, check_cancel, report
from core.ps import PSParams
from core.renderer import SourceRender, auto_renders, missing, mix, mix_chunks, prepare_source, render_auto, \
    render_missing
from separation.base import Source

from . import __version__
from .playback import MixEngine, MixSnapshot, snapshot_for
from .project import PLACEMENT_MODEL, ProjectData, ProjectError, exactness_notes, model_checksums, read_project, \
    relative_recording, write_project
from .settings import Settings
from .undo import Command, UndoStack

__all__ = ["Rendition", "Session", "ExportResult", "SourcesPlan", "RenditionPlan", "ModePlan", "ResetPlan",
           "RestorePlan", "OutputSettings", "KEEP_BYTES"]

KEEP_BYTES = 1 << 30   # auto renders of recent undo states kept in memory, the current state's included


@dataclass(frozen=True)
class Rendition:
    """One proposal: the PS model's parameters (``model``, ``seed``, ``temperature``, ``guidance``)
    and the sources' places (``placement`` method, the same ``seed``, ``variety``; see
    :func:`core.placement.propose`). Projects made before the placement model had no ``placement``
    and were placed by the "mean" projection, which ``from_dict`` keeps."""
    seed: int
    model: str
    temperature: Optional[float] = None
    guidance: Optional[float] = None
    placement: str = "model"
    variety: float = 0.0

    def to_dict(self) -> dict:
        return {"seed": self.seed, "model": self.model, "temperature": self.temperature, "guidance": self.guidance,
                "placement": self.placement, "variety": self.variety}

    @classmethod
    def from_dict(cls, d: dict) -> "Rendition":
        return cls(int(d["seed"]), str(d["model"]), d.get("temperature"), d.get("guidance"),
                   str(d.get("placement", "mean")), float(d.get("variety", 0.0)))

    @property
    def ps_key(self) -> tuple:
        """What the PS parameters depend on (renditions that differ only in placement share them)."""
        return (self.seed, self.model, self.temperature, self.guidance)


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
class ModePlan:
    """The current renders re-rendered in mono-compatible mode ``on`` (or out of it) in a worker, to
    be adopted on the UI thread (:meth:`Session.adopt_mono_compatible`)."""
    on: bool
    renders: list[SourceRender]


@dataclass
class ResetPlan:
    """Source ``index`` back at the current rendition's proposal, its auto render made in a worker
    (:meth:`Session.adopt_reset`)."""
    index: int
    renders: list[SourceRender]
    placements: list[Placement]


@dataclass
class RestorePlan:
    """The auto renders an undo (or redo) step needs that were released to save memory, made again
    in a worker (:meth:`Session.adopt_restore`)."""
    redo: bool
    command: object
    pairs: list[tuple]        # (render, pair [shape=(n, 2)], mono_compatible)


@dataclass(frozen=True)
class OutputSettings:
    """The output gain stage: a peak ceiling (true peak, dBTP, or sample peak, dBFS) and whether
    to bring the mix to the original's loudness (as the mono plays on both channels) first."""
    ceiling_db: float = -1.0
    true_peak: bool = True
    keep_loudness: bool = False

    def __post_init__(self):
        if not -24.0 <= self.ceiling_db <= 0.0:
            raise ParameterError(f"the peak ceiling must be between -24 and 0 dB, got {self.ceiling_db}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> "OutputSettings":
        """From a project's export entry; projects written before the output stage had only a
        sample-peak ``ceiling_db`` (-0.1 dBFS), which is kept so they re-make the same file."""
        d = d or {}
        if "true_peak" not in d:
            return cls(float(d.get("ceiling_db", -0.1)), False, False)
        return cls(float(d["ceiling_db"]), bool(d["true_peak"]), bool(d.get("keep_loudness", False)))


@dataclass
class ExportResult:
    path: Path
    gain_db: float
    peak_db: float                       # output peak (dBTP or dBFS, as the plan's ceiling)
    project: Optional[Path] = None
    stems: list[Path] = field(default_factory=list)
    plan: Optional[GainPlan] = None
    input: Optional[Loudness] = None     # the recording (mono)
    output_lufs: Optional[float] = None
    output_true_peak_db: Optional[float] = None

    def summary(self) -> str:
        """Input and output loudness and the gain applied, in one line."""
        parts = []
        if self.input is not None:
            parts.append(f"input {self.input.line()}")
        if self.output_lufs is not None:
            parts.append(f"output {self.output_lufs:.1f} LUFS, {self.output_true_peak_db:.1f} dBTP")
        if self.plan is not None:
            parts.append(self.plan.describe())
        return "; ".join(parts)


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
        self.placement: str = default_method(self.settings.models_dir)   # how renditions place sources
        self.variety: float = DEFAULT_VARIETY     # of new renditions, 0 (as real mixes are) .. 1
        self.sources: list[Source] = []
        self.renders: list[SourceRender] = []
        self.placements: list[Placement] = []
        self.renditions: list[Rendition] = []
        self.current: int = -1
        self._params: dict[tuple, PSParams] = {}   # by Rendition.ps_key
        self.undo = UndoStack()
        self._listeners: list[Callable[[str], None]] = []
        self._engine: Optional[MixEngine] = None
        self.ab_original = False
        self.export_settings: dict = {}
        self.mono_compatible = False
        self.output = OutputSettings()
        self._version = 0                      # bumped whenever what the mix plays changes (not placements)
        self._plan: Optional[GainPlan] = None
        self._plan_key = None
        self._input_loudness: Optional[Loudness] = None
        self._resident: list[list[SourceRender]] = []   # recent states' renders, auto pairs kept
        self.keep_bytes = KEEP_BYTES             # 0 where nothing is undone (the headless chain)
        # where auto pairs are mapped on (unlinked) files instead of held in RAM (None: in RAM)
        self.spill_dir: Optional[Path] = self.settings.render_spill_dir

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
        self._resident = []
        self._engine = None
        self._input_loudness = None
        self._changed()
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
            placements = self._seed(r, renders, self._params[r.ps_key], placements, sources)
        return SourcesPlan(sources, renders, placements, backend, settings)

    def adopt_sources(self, plan: "SourcesPlan", *, engine: Optional[MixEngine] = None) -> None:
        """UI side of :meth:`separate` (cheap): install planned sources (and the playback ``engine``
        made for them, if any); the undo history restarts."""
        self.backend, self.backend_settings = plan.backend, plan.settings
        render_missing(plan.renders, mono_compatible=self.mono_compatible, spill=self.spill_dir)  # planned in this mode
        self.sources, self.renders, self.placements = plan.sources, list(plan.renders), plan.placements
        self._resident = []
        self._keep(self.renders)
        self._engine = engine
        self._changed()
        self.undo.clear()
        self._emit("sources")
        if self.renditions and self.current >= 0:
            self._emit("params")
            self._emit("placements")

    def predict(self, rendition: Rendition, *, progress: Optional[ProgressFn] = None,
                cancel: Optional[threading.Event] = None) -> PSParams:
        """PS parameters of ``rendition`` (cached; the same rendition always gives the same values)."""
        params = self._predict(rendition, progress=progress, cancel=cancel)
        self._params[rendition.ps_key] = params
        return params

    def _predict(self, rendition: Rendition, *, progress: Optional[ProgressFn] = None,
                 cancel: Optional[threading.Event] = None) -> PSParams:
        """:meth:`predict` without touching the cache (safe in a worker)."""
        self._need_recording()
        if rendition.ps_key in self._params:
            return self._params[rendition.ps_key]
        model = load_model(rendition.model, self.settings.models_dir)
        return model.predict(self.mono, seed=rendition.seed, temperature=rendition.temperature,
                             guidance=rendition.guidance, progress=progress, cancel=cancel)

    def _next_seed(self) -> int:
        used = {r.seed for r in self.renditions}
        return next(s for s in range(len(used) + 1) if s not in used)

    def new_rendition(self, seed: Optional[int] = None, *, model: Optional[str] = None,
                      temperature: Optional[float] = None, guidance: Optional[float] = None,
                      placement: Optional[str] = None, variety: Optional[float] = None,
                      progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None) -> int:
        """Sample the models again (a new seed unless given), keep it in the gallery and switch to it.
        Pinned sources keep their place; the others are placed by ``placement`` ("model" or "mean";
        default: the session's) at ``variety`` in [0, 1] (default: the session's). Returns the
        rendition's index."""
        plan = self.plan_rendition(seed, model=model, temperature=temperature, guidance=guidance,
                                   placement=placement, variety=variety, progress=progress, cancel=cancel)
        return self.adopt_rendition(plan)

    def plan_rendition(self, seed: Optional[int] = None, *, model: Optional[str] = None,
                       temperature: Optional[float] = None, guidance: Optional[float] = None,
                       placement: Optional[str] = None, variety: Optional[float] = None,
                       index: Optional[int] = None, sources: Optional["SourcesPlan"] = None,
                       places: Optional[list[Placement]] = None, progress: Optional[ProgressFn] = None,
                       cancel: Optional[threading.Event] = None) -> "RenditionPlan":
        """Worker side of :meth:`new_rendition` (or, with ``index``, of :meth:`recall`): predict and
        seed on copies; the session is not changed until :meth:`adopt_rendition`. With ``sources``,
        for planned sources that will be adopted first. With ``places`` (one per source, as a
        project saved them), the auto renders are made around those places instead of sampling
        new ones: a place sampled in another context (a source pinned or reset after the
        rendition) is re-made exactly."""
        if index is not None:
            if not 0 <= index < len(self.renditions):
                raise ParameterError(f"no rendition {index}; there are {len(self.renditions)}")
            r = self.renditions[index]
        else:
            placement = placement or self.placement
            if placement not in PLACEMENT_METHODS:
                raise ParameterError(f"unknown placement {placement!r}; choose one of {', '.join(PLACEMENT_METHODS)}")
            variety = self.variety if variety is None else float(variety)
            if not 0.0 <= variety <= 1.0:
                raise ParameterError(f"variety must be between 0 and 1, got {variety:g}")
            r = Rendition(int(self._next_seed() if seed is None else seed), model or self.model,
                          temperature, guidance, placement, variety)
        params = self._predict(r, progress=Reporter(progress, "predict", 0.0, 0.9), cancel=cancel)
        check_cancel(cancel)
        base_s, base_r, base_p = ((sources.sources, sources.renders, sources.placements) if sources is not None
                                  else (self.sources, self.renders, self.placements))
        renders = [replace(sr) for sr in base_r]
        if places is not None:
            if len(places) != len(renders):
                raise ParameterError(f"{len(places)} places for {len(renders)} sources")
            placements = list(places)
            self._set_auto(r, renders, params, placements, progress=Reporter(progress, "render", 0.9, 0.1),
                           cancel=cancel)
        else:
            placements = self._seed(r, renders, params, list(base_p), base_s,
                                    progress=Reporter(progress, "render", 0.9, 0.1), cancel=cancel)
        return RenditionPlan(r, params, renders, placements)

    def adopt_rendition(self, plan: "RenditionPlan", *, record: bool = True) -> int:
        """UI side (cheap): switch to a planned rendition, keep it in the gallery, one undo step.
        Returns the rendition's index."""
        before = self._state()
        self._params[plan.rendition.ps_key] = plan.params
        if plan.rendition not in self.renditions:
            self.renditions.append(plan.rendition)
            label = f"new rendition (seed {plan.rendition.seed})"
        else:
            label = f"switch to rendition {self.renditions.index(plan.rendition) + 1}"
        index = self.renditions.index(plan.rendition)
        after = (index, plan.renders, plan.placements, self.mono_compatible)
        if record:
            self._push_state(label, before, after)
        else:
            self._restore(*after)
        return index

    def recall(self, index: int, *, record: bool = True, places: Optional[list[Placement]] = None,
               progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None) -> None:
        """Switch to kept rendition ``index``: re-made exactly from its seed; pinned sources stay
        (with ``places``: at those places, see :meth:`plan_rendition`)."""
        self.adopt_rendition(self.plan_rendition(index=index, places=places, progress=progress, cancel=cancel),
                             record=record)

    def _state(self) -> tuple:
        return self.current, list(self.renders), list(self.placements), self.mono_compatible

    def _push_state(self, label: str, before: tuple, after: tuple) -> None:
        """One undo step from recorded state ``before`` to ``after`` (see :meth:`_restore`)."""
        self.undo.push(Command(label, lambda a=after: self._restore(*a), lambda b=before: self._restore(*b),
                               states=(before, after)))

    def _restore(self, index: int, renders: list[SourceRender], placements: list[Placement],
                 mono_compatible: bool) -> None:
        """Make a recorded state current. Cheap when its auto renders are in memory (they were made
        when planned; recent states keep them within ``keep_bytes``); a released one is rendered again
        here from its tile parameters (the UI does that in a job first: :meth:`plan_restore`)."""
        render_missing(renders, mono_compatible=mono_compatible, spill=self.spill_dir)
        self.current = index
        if index >= 0:
            self.model = self.renditions[index].model
        self.mono_compatible = mono_compatible
        self.renders = list(renders)
        self.placements = list(placements)
        self._keep(self.renders)
        self._changed()
        if self._engine is not None:
            self._engine.set_snapshot(self.snapshot())
        self._emit("params")
        self._emit("renditions")
        self._emit("placements")

    def _keep(self, renders: list[SourceRender]) -> None:
        """``renders`` (now current) first among the states whose auto pairs stay in memory, then
        the most recent others while all their pairs together fit in ``keep_bytes``; the pairs of
        the rest are released (their tile parameters stay: :meth:`plan_restore`)."""
        ids = [id(r) for r in renders]
        self._resident = [rs for rs in self._resident if [id(r) for r in rs] != ids]
        self._resident.insert(0, list(renders))
        kept, total, keep = set(), 0, 0
        for k, rs in enumerate(self._resident):
            new = [r for r in rs if id(r) not in kept]
            size = sum(r.auto_bytes for r in new)
            if k > 0 and total + size > self.keep_bytes:
                break
            total += size
            kept.update(id(r) for r in new)
            keep = k + 1
        for rs in self._resident[keep:]:
            for r in rs:
                if id(r) not in kept:
                    r.auto = None
        del self._resident[keep:]

    def _target_state(self, redo: bool) -> Optional[tuple]:
        cmd = self.undo.peek(redo=redo)
        if cmd is None or cmd.states is None:
            return None
        return cmd.states[1 if redo else 0]

    def restore_needs_render(self, *, redo: bool = False) -> bool:
        """Whether the next undo (or redo) step restores a state whose auto renders were released
        (then :meth:`plan_restore` in a worker and :meth:`adopt_restore` keep the UI responsive)."""
        state = self._target_state(redo)
        return state is not None and missing(state[1], mono_compatible=state[3])

    def plan_restore(self, *, redo: bool = False, progress: Optional[ProgressFn] = None,
                     cancel: Optional[threading.Event] = None) -> RestorePlan:
        """Worker side of an undo (or redo) step: render the released auto pairs of the state it
        restores; nothing is changed until :meth:`adopt_restore`."""
        cmd = self.undo.peek(redo=redo)
        state = self._target_state(redo)
        pairs = []
        if state is not None:
            todo = [r for r in state[1] if r.has_auto and (r.auto is None or r.mono_compatible != state[3])]
            for i, r in enumerate(todo):
                check_cancel(cancel)
                pairs.append((r, render_auto(r, *r.tiles, mono_compatible=state[3], spill=self.spill_dir,
                                                  cancel=cancel), state[3]))
                report(progress, "render", i + 1, len(todo))
        return RestorePlan(redo, cmd, pairs)

    def adopt_restore(self, plan: RestorePlan) -> Optional[str]:
        """UI side (cheap): install the planned pairs and run the undo (or redo) step; its label
        (None when the history moved on meanwhile and nothing ran)."""
        if self.undo.peek(redo=plan.redo) is not plan.command:
            return None
        for r, pair, mode in plan.pairs:
            r.auto, r.mono_compatible = pair, mode
        return self.undo.redo() if plan.redo else self.undo.undo()

    def _propose(self, r: Rendition, renders: list[SourceRender], params: PSParams, previous: list[Placement],
                 sources: list[Source]) -> list[Placement]:
        """Rendition ``r``'s places (every one not pinned in ``previous``), see core.placement.propose."""
        if not renders:
            return []
        energies = np.stack([sr.energy for sr in renders])
        return propose(energies, method=r.placement, params=params, seed=r.seed, variety=r.variety,
                       previous=previous or None, residual=[src.kind == "residual" for src in sources],
                       folder=self.settings.models_dir)

    def _set_auto(self, r: Rendition, renders: list[SourceRender], params: PSParams,
                  placements: list[Placement], *, only=None, progress: Optional[ProgressFn] = None,
                  cancel: Optional[threading.Event] = None) -> None:
        """Auto renders of ``renders`` (fresh copies) from ``params``, in the session's mode: band by
        band around each place with the placement model, the broadband projection with "mean"
        (heavy: in a worker). ``only``: the indices to render (default all)."""
        centres = None
        if r.placement != "mean" and placements:
            centres = np.array([(p.pan, p.width) for p in placements])
        auto_renders(renders, params, centres, mono_compatible=self.mono_compatible, only=only,
                     spill=self.spill_dir, progress=progress, cancel=cancel)

    def _seed(self, r: Rendition, renders: list[SourceRender], params: PSParams, previous: list[Placement],
              sources: list[Source], *, progress: Optional[ProgressFn] = None,
              cancel: Optional[threading.Event] = None) -> list[Placement]:
        """The proposed placements of rendition ``r``, with the auto renders of ``renders`` (fresh
        copies) made around them."""
        placements = self._propose(r, renders, params, previous, sources)
        self._set_auto(r, renders, params, placements, progress=progress, cancel=cancel)
        return placements

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
        """Back to the current rendition's proposal for this source (auto): sampled again with its
        seed and variety, the other pinned sources as context (with "mean", its projection); its
        auto render follows. One undo step."""
        plan = self.plan_reset(index)
        if plan is not None:
            self.adopt_reset(plan)

    def plan_reset(self, index: int, *, progress: Optional[ProgressFn] = None,
                   cancel: Optional[threading.Event] = None) -> Optional[ResetPlan]:
        """Worker side of :meth:`reset_placement` (the source's auto render is made here); None
        when nothing would change."""
        p = replace(self.placements[index], pinned=False)
        placements = list(self.placements)
        if self.current < 0:
            placements[index] = p
            return None if placements == self.placements else ResetPlan(index, list(self.renders), placements)
        r = self.renditions[self.current]
        params = self._params[r.ps_key]
        previous = list(self.placements)
        previous[index] = p
        placements[index] = self._propose(r, self.renders, params, previous, self.sources)[index]
        if placements == self.placements:
            return None
        renders = list(self.renders)
        renders[index] = replace(renders[index])
        self._set_auto(r, renders, params, placements, only=[index], progress=progress, cancel=cancel)
        return ResetPlan(index, renders, placements)

    def adopt_reset(self, plan: ResetPlan) -> None:
        """UI side of :meth:`reset_placement` (cheap): one undo step."""
        if self.current < 0:
            self.set_placement(plan.index, plan.placements[plan.index], label="reset to model")
            return
        self._push_state("reset to model", self._state(),
                         (self.current, plan.renders, plan.placements, self.mono_compatible))

    def set_mono_compatible(self, on: bool, *, record: bool = True, progress: Optional[ProgressFn] = None,
                            cancel: Optional[threading.Event] = None) -> None:
        """Mono-compatible mode on or off (through the undo stack with ``record``); the auto
        renders are made again in the new mode (:meth:`plan_mono_compatible` in a worker, then
        :meth:`adopt_mono_compatible`, is the same in two steps)."""
        plan = self.plan_mono_compatible(on, progress=progress, cancel=cancel)
        if plan is not None:
            self.adopt_mono_compatible(plan, record=record)

    def plan_mono_compatible(self, on: bool, *, progress: Optional[ProgressFn] = None,
                             cancel: Optional[threading.Event] = None) -> Optional[ModePlan]:
        """Worker side: copies of the current renders, their auto pairs made in mode ``on``; None
        when the session is in that mode already."""
        on = bool(on)
        if on == self.mono_compatible:
            return None
        renders = [replace(r) if r.has_auto else r for r in self.renders]
        render_missing(renders, mono_compatible=on, spill=self.spill_dir, progress=progress, cancel=cancel)
        return ModePlan(on, renders)

    def adopt_mono_compatible(self, plan: ModePlan, *, record: bool = True) -> None:
        """UI side (cheap): switch to the planned mode and renders (one undo step with ``record``)."""
        if plan.on == self.mono_compatible:
            return
        after = (self.current, plan.renders, list(self.placements), plan.on)
        if record:
            self._push_state(f"mono-compatible {'on' if plan.on else 'off'}", self._state(), after)
        else:
            self._restore(*after)

    def set_output(self, settings: OutputSettings) -> None:
        """New output-stage settings (preview and export); :meth:`plan_output` measures their gain."""
        self.output = settings

    # --- output ---------------------------------------------------------------------------------
    def _changed(self) -> None:
        self._version += 1

    def _plan_key_for(self, placements) -> tuple:
        return (self._version, tuple(placements), self.output)

    @property
    def output_plan(self) -> Optional[GainPlan]:
        """The latest measured output gain (None before any); :meth:`output_plan_current` says
        whether it is for the session as it is now."""
        return self._plan

    def output_plan_current(self) -> bool:
        return self._plan is not None and self._plan_key == self._plan_key_for(self.placements)

    def output_state(self) -> tuple:
        """A key that changes whenever the output gain must be measured again."""
        return self._plan_key_for(self.placements)

    @property
    def output_gain_db(self) -> float:
        """The gain the preview applies now: the latest measured plan's (0 dB before any)."""
        return 0.0 if self._plan is None else self._plan.gain_db

    def input_loudness(self) -> Loudness:
        """Loudness and peaks of the recording (measured once per recording)."""
        self._need_recording()
        if self._input_loudness is None:
            self._input_loudness = measure(self.mono)
        return self._input_loudness

    def _plan_for(self, full: np.ndarray) -> GainPlan:
        o = self.output
        target = self.input_loudness().lufs_played if o.keep_loudness else None
        return plan_gain(full, ceiling_db=o.ceiling_db, true_peak=o.true_peak, target_lufs=target,
                         measure_lufs=True)

    def plan_output(self, *, cancel: Optional[threading.Event] = None) -> GainPlan:
        """Measure the output gain on the full mix as the session is now (cached until the mix or
        the output settings change). Safe to call from a worker thread while the UI edits: it works
        on copies of the lists and keeps the plan under the key it measured."""
        renders, placements = list(self.renders), list(self.placements)
        key = self._plan_key_for(placements)
        if self._plan is not None and self._plan_key == key:
            return self._plan
        if not renders:
            raise ParameterError("nothing to measure: separate the recording first")
        check_cancel(cancel)
        try:
            full = mix(renders, placements, mono_compatible=self.mono_compatible)
        except ParameterError:
            if [id(r) for r in self.renders] != [id(r) for r in renders]:   # undone meanwhile, renders released
                raise Cancelled("the session moved on while measuring") from None
            raise
        check_cancel(cancel)
        self.input_loudness()
        plan = self._plan_for(full)
        self._plan, self._plan_key = plan, key
        return plan

    def render(self, *, stems: bool = False, progress: Optional[ProgressFn] = None):
        """The stereo mix [shape=(n, 2)] (and the stereo stems with ``stems``), before the output gain."""
        if not self.renders:
            raise ParameterError("nothing to render: separate the recording first")
        return mix(self.renders, self.placements, stems=stems, mono_compatible=self.mono_compatible,
                   progress=progress)

    def mix_engine(self) -> MixEngine:
        """The playback engine over this session's precomputed signals (one per set of sources;
        renditions and placements update it in place)."""
        if not self.renders:
            raise ParameterError("nothing to play: separate the recording first")
        if self._engine is None:
            self._engine = self.make_engine(self.renders, self.placements, ab_original=self.ab_original,
                                            mono_compatible=self.mono_compatible,
                                            output_gain=10 ** (self.output_gain_db / 20))
        return self._engine

    @staticmethod
    def make_engine(renders: list[SourceRender], placements: list[Placement], *,
                    ab_original: bool = False, mono_compatible: bool = False, output_gain: float = 1.0) -> MixEngine:
        """A playback engine over ``renders`` (their signals are read in place, never copied)."""
        snap = snapshot_for(placements, has_auto=[r.has_auto for r in renders], pairs=[r.auto for r in renders],
                            ab_original=ab_original, mono_compatible=mono_compatible, output_gain=output_gain)
        return MixEngine([r.s for r in renders], [r.d for r in renders], snap)

    def snapshot(self, placements: Optional[list[Placement]] = None) -> MixSnapshot:
        """The playback snapshot for ``placements`` (default the session's), with the output gain."""
        return snapshot_for(self.placements if placements is None else placements,
                            has_auto=[r.has_auto for r in self.renders], pairs=[r.auto for r in self.renders],
                            ab_original=self.ab_original, mono_compatible=self.mono_compatible,
                            output_gain=10 ** (self.output_gain_db / 20))

    def export(self, path, *, fmt: Optional[str] = None, stems: bool = False, project: bool = True,
               overwrite: bool = False, output: Optional[OutputSettings] = None,
               progress: Optional[ProgressFn] = None) -> ExportResult:
        """Write the stereo mix through the output stage (the gain the preview plays; ``output``
        replaces the session's settings first), never over the input, atomically, and with
        ``project`` a project file beside it (``OUT.soundstage.json``) that re-makes it exactly."""
        if output is not None:
            self.set_output(output)
        path = Path(path)
        fmt = fmt or audio.format_for_path(path)
        if self.recording is not None and audio.same_file(self.recording, path):
            raise ParameterError(f"{path}: refusing to write over the input recording")
        # mix once (chunked inside), scale by the output stage's one gain, write in chunks; stems,
        # when asked for, are mixed again chunk by chunk while writing
        full = self.render(progress=Reporter(progress, "mix", 0.0, 0.4))
        key = self._plan_key_for(self.placements)
        plan = self._plan if self._plan is not None and self._plan_key == key else self._plan_for(full)
        self._plan, self._plan_key = plan, key
        report(progress, "measure", 0.5, 1.0)
        g = np.float32(10 ** (plan.gain_db / 20))
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
                for start, chunk, parts in mix_chunks(self.renders, self.placements, stems=True,
                                                      mono_compatible=self.mono_compatible):
                    writers[0].write(full[start:start + len(chunk)] * g)
                    for w, part in zip(writers[1:], parts):
                        w.write(part * g)
                    report(progress, "export", 0.5 + 0.5 * (start + len(chunk)) / n, 1.0)
            else:
                step = 1 << 18
                for start in range(0, n, step):
                    writers[0].write(full[start:start + step] * g)
                    report(progress, "export", 0.5 + 0.5 * min(n, start + step) / n, 1.0)
        out_tp = plan.out_peak_db
        if not plan.true_peak:
            from core.loudness import true_peak_db
            out_tp = true_peak_db(full) + plan.gain_db
        res = ExportResult(path, plan.gain_db, plan.out_peak_db, stems=stem_paths if stems else [], plan=plan,
                           input=self.input_loudness(), output_lufs=plan.out_lufs, output_true_peak_db=out_tp)
        if project:
            res.project = self.save_project(path.with_suffix(".soundstage.json"),
                                            export={"path": path.name, "format": fmt, **self.output.to_dict()})
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
            export=dict(export or {}), app_version=__version__, mono_compatible=bool(self.mono_compatible),
            models=model_checksums([r.model for r in self.renditions]
                                   + [PLACEMENT_MODEL for r in self.renditions if r.placement == "model"],
                                   self.settings.models_dir))

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
        s.set_mono_compatible(data.mono_compatible, record=False)
        s.separate(data.backend, data.backend_settings, progress=Reporter(progress, "separate", 0.0, 0.7),
                   cancel=cancel)
        if len(data.sources) != len(s.sources):
            raise ProjectError(f"{path}: the project has {len(data.sources)} sources but separation gave "
                               f"{len(s.sources)}")
        saved = [Placement.from_dict(d["placement"]) for d in data.sources]
        s.renditions = [Rendition.from_dict(r) for r in data.renditions]
        if s.renditions and 0 <= data.current < len(s.renditions):
            # the saved places, not a fresh sample: a place may have been sampled with other sources
            # pinned than now (pinned or reset after the rendition)
            s.recall(data.current, record=False, places=saved, progress=Reporter(progress, "predict", 0.7, 0.3),
                     cancel=cancel)
        for i, d in enumerate(data.sources):
            s.sources[i].name = d.get("name", s.sources[i].name)
            s.sources[i].colour = d.get("colour", s.sources[i].colour)
            s.placements[i] = saved[i]
        s.export_settings = dict(data.export)
        s.set_output(OutputSettings.from_dict(s.export_settings))
        s.project_notes = exactness_notes(data, folder=s.settings.models_dir, app_version=__version__)
        s.undo.clear()
        return s

    def _need_recording(self) -> None:
        if self.mono is None:
            raise ParameterError("no recording loaded")

