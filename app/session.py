"""The session: a recording, its sources, the model's PS parameters, placements and renditions.

Data flow: load -> separate (a backend) -> predict (a model, a seed) -> propose places and render
each auto source band by band -> play / export. The session keeps state, events and undo. Every
heavy step runs in a worker as ``plan_*`` (the session is not changed) and returns a typed plan
(:mod:`app.plans`) whose ``adopt`` makes it current, cheaply, on the UI thread. The rest (placement
edits, mixing snapshots, undo steps whose renders are in memory) is cheap and runs anywhere.
Listeners (``subscribe``) hear "recording", "sources", "params", "placements", "renditions"
events; they must not block.

Elsewhere: the renditions' steps (:mod:`app.renditions`, a part of the session), the proposal's
steps (:mod:`app.proposal`), which undo states keep their renders
(:mod:`app.memory`), the output stage and export (:mod:`app.output`), project files
(:mod:`app.project_io`). In mono-compatible mode every source is rendered as mid = its stem,
side = a s + b d, and the mix folds down to the recording times the output gain (docs/archivist.md).
"""
from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np

import separation
from core import SAMPLE_RATE, audio
from core.errors import ParameterError
from core.hashing import sha256_array
from core.limits import DEFAULT_VARIETY
from core.loudness import GainPlan
from core.placement import Placement, default_method
from core.progress import ProgressFn, Reporter
from core.ps import PSParams
from core.renderer import SourceRender, mix, render_missing
from separation.base import Source
from separation.stem_cache import StemCache

from . import proposal
from .memory import MixCache, RenderMemory
from .output import OutputSettings, OutputStage, measure_session
from .playback import MixEngine, MixSnapshot, snapshot_for
from .plans import ModePlan, Rendition, ResetPlan, SourcesPlan
from .renditions import RenditionSteps
from core.settings import Settings
from .undo import Change, Command, UndoStack

__all__ = ["Session"]


class Session(RenditionSteps):
    """``settings``: the user's folders and limits (default: resolved from the environment)."""

    def __init__(self, settings: Optional[Settings] = None):
        self.settings = settings if settings is not None else Settings.resolve()
        self.project_notes: list[str] = []       # why re-making a loaded project may not be exact
        self.input_notes: list[str] = []         # how the recording was converted on loading
        self.loop_region: Optional[tuple[float, float]] = None   # the marked loop region (s), saved
        self.recording: Optional[Path] = None
        self.mono: Optional[np.ndarray] = None
        self.backend: str = "formation"
        self.backend_settings: dict = {}
        self.model: str = "decorr"
        self.placement: str = default_method(self.settings.models_dir)   # how renditions place sources
        self.variety: float = DEFAULT_VARIETY     # of new renditions, 0 (as real mixes are) .. 1
        self.reference = None                     # a ReferenceScene new renditions follow (app.reference)
        self.sources: list[Source] = []
        self.edits: list = []                    # the person's edits on top of the separation (app.editing)
        self.renders: list[SourceRender] = []
        self.placements: list[Placement] = []
        self.renditions: list[Rendition] = []
        self.gallery: list[Optional[list[Placement]]] = []   # each rendition's places as auditioned
        self.current: int = -1
        self._params: dict[tuple, PSParams] = {}   # by Rendition.ps_key
        self.undo = UndoStack()
        self._listeners: list[Callable[[str], None]] = []
        self._engine: Optional[MixEngine] = None
        self.ab_original = False
        self.export_settings: dict = {}          # the last export's path and format (saved in projects)
        self.mono_compatible = False
        self.stage = OutputStage()               # the output gain, preview and export (app.output)
        self._version = 0                        # bumped whenever what the mix plays changes (not placements)
        self.memory = RenderMemory()             # which states keep their auto renders (app.memory)
        self.mixes = MixCache()                  # the whole mixes of the states auditioned last (app.memory)
        # where auto pairs are mapped on (unlinked) files instead of held in RAM (None: in RAM)
        self.spill_dir: Optional[Path] = self.settings.render_spill_dir
        # each auto source's stereo pair for the playback engine; False where nothing plays (the
        # headless chain, ``render``): export mixes from the tile parameters, the pairs are made
        # only if an engine or stereo stems are asked for
        self.pairs = True
        self.prepare_workers = proposal.PREPARE_WORKERS   # stems decorrelated at a time
        self._fillers: list = []                 # (filler, thread) finishing mixes and pairs made from the playhead
        self._pair_lock = threading.Lock()       # one PairFiller at a time starts on the current renders
        self._prefetch_stop = threading.Event()  # stops the thread that plans the next rendition ahead
        self._ahead_ready = threading.Event()    # set when the rendition wanted next is planned
        self._ready = None                       # that plan (app.renditions.RenditionSteps.prefetch)
        self._kept: dict = {}                    # rendition index -> (renders, places, mode) last adopted

    # --- events -------------------------------------------------------------------------------
    def subscribe(self, fn: Callable[[str], None]) -> None:
        self._listeners.append(fn)

    def _emit(self, what: str) -> None:
        for fn in list(self._listeners):
            fn(what)

    # --- loading and heavy steps (workers) ------------------------------------------------------
    def open(self, path) -> None:
        """Load a recording (``input_notes``: what was converted to make it mono at 44.1 kHz)."""
        notes: list[str] = []
        mono = audio.load_mono(path, notes=notes)
        self.recording, self.mono, self.input_notes = Path(path), mono, notes
        self.loop_region = None
        self.sources, self.renders, self.placements, self.edits = [], [], [], []
        self._stop_fillers()
        self.renditions, self.gallery, self.current, self._params = [], [], -1, {}
        self._kept = {}
        self.memory.clear()
        self.mixes.clear()
        self._engine = None
        self.stage.reset()
        self._changed()
        self.undo.clear()
        self._emit("recording")

    @property
    def seconds(self) -> float:
        return 0.0 if self.mono is None else len(self.mono) / SAMPLE_RATE

    def audio_sha256(self) -> str:
        return sha256_array(self.mono)

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
        """Prepare every stem (:func:`app.proposal.prepare`); when a rendition is current, the new
        sources are seeded with its parameters."""
        renders = proposal.prepare(sources, len(self.mono), workers=self.prepare_workers, progress=progress,
                                   cancel=cancel, cache=self.copies_cache())
        placements = [Placement() for _ in sources]
        if self.renditions and self.current >= 0:  # re-seed with the current rendition's parameters
            r = self.renditions[self.current]
            placements = self._seed(r, renders, self._params[r.ps_key], placements, sources)
        return SourcesPlan(sources, renders, placements, backend, settings)

    def copies_cache(self) -> StemCache:
        """Where the sources' decorrelated copies are kept (:mod:`app.decorrelated_cache`): the stem cache."""
        return StemCache(self.settings.stem_cache_dir, max_bytes=self.settings.cache_max_bytes)

    def adopt_sources(self, plan: "SourcesPlan", *, engine: Optional[MixEngine] = None) -> None:
        """UI side of :meth:`separate` (cheap): install planned sources (and the playback ``engine``
        made for them, if any); the undo history restarts."""
        self.backend, self.backend_settings = plan.backend, plan.settings
        self._stop_fillers()                       # the old sources' pairs are not needed any more
        self.mixes.clear()
        self._kept = {}
        if self.pairs:
            render_missing(plan.renders, mono_compatible=self.mono_compatible, spill=self.spill_dir)  # planned in this mode
        self.sources, self.renders, self.placements = plan.sources, list(plan.renders), plan.placements
        self.edits = []
        self.gallery = [None] * len(self.renditions)     # other sources: the renditions are sampled anew
        self.memory.clear()
        self.memory.keep(self.renders)
        self._engine = engine
        self._changed()
        self.undo.clear()
        self._emit("sources")
        if self.renditions and self.current >= 0:
            self._emit("params")
            self._emit("placements")

    def _state(self) -> tuple:
        return self.current, list(self.renders), list(self.placements), self.mono_compatible

    def _push_state(self, label: str, before: tuple, after: tuple) -> None:
        """One undo step from recorded state ``before`` to ``after`` (see :meth:`_restore`)."""
        self.undo.push(Command(label, lambda a=after: self._restore(*a), lambda b=before: self._restore(*b),
                               states=(before, after), change=Change.RENDERS))

    def _restore(self, index: int, renders: list[SourceRender], placements: list[Placement],
                 mono_compatible: bool) -> None:
        """Make a recorded state current. Cheap when its mix is kept (:class:`app.memory.MixCache`:
        it plays at once, its pairs are made behind it) or its auto renders are in memory (they were
        made when planned; recent states keep them within ``keep_bytes``); else the released ones
        are rendered again here from their tile parameters (the UI makes the state's mix from the
        playhead in a job first: :func:`app.memory.plan_restore`)."""
        kept_mix = self.mixes.find(renders, placements, mono_compatible) if self.pairs else None
        if self.pairs and kept_mix is None:
            render_missing(renders, mono_compatible=mono_compatible, spill=self.spill_dir)
        self.current = index
        if index >= 0:
            self.model = self.renditions[index].model
        self.mono_compatible = mono_compatible
        self.renders = list(renders)
        self.placements = list(placements)
        self.memory.keep(self.renders)
        if kept_mix is not None:
            self.mixes.keep(kept_mix)
            self._make_behind(kept_mix)             # the rest of its mix, then its pairs
        self._changed()
        if self._engine is not None:
            self._engine.set_snapshot(self.snapshot())
        self._emit("params")
        self._emit("renditions")
        self._emit("placements")

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
        placements[index] = proposal.propose(r, self.renders, params, previous, self.sources,
                                             models_dir=self.settings.models_dir)[index]
        if placements == self.placements:
            return None
        renders = list(self.renders)
        renders[index] = replace(renders[index])
        self._render(r, renders, params, placements, only=[index], progress=progress, cancel=cancel)
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
        if self.pairs:
            render_missing(renders, mono_compatible=on, spill=self.spill_dir, progress=progress, cancel=cancel)
        else:
            for r in renders:
                if r.has_auto:
                    r.auto, r.mono_compatible = None, on
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

    # --- output ---------------------------------------------------------------------------------
    def _changed(self) -> None:
        self._version += 1

    @property
    def output(self) -> OutputSettings:
        """The output stage's settings (:meth:`set_output` changes them)."""
        return self.stage.settings

    def set_output(self, settings: OutputSettings) -> None:
        """New output-stage settings (preview and export); :meth:`plan_output` measures their gain."""
        self.stage.settings = settings

    def output_state(self, placements=None) -> tuple:
        """A key that changes whenever the output gain must be measured again."""
        return (self._version, tuple(self.placements if placements is None else placements), self.output)

    def output_plan_current(self) -> bool:
        return self.stage.is_current(self.output_state())

    def plan_output(self, *, cancel: Optional[threading.Event] = None) -> GainPlan:
        """Measure and keep the output gain of the mix as it is now (the UI measures in a job:
        :func:`app.output.measure_session`, then adopts)."""
        plan, key = measure_session(self, cancel=cancel)
        self.stage.adopt(plan, key)
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
        if not self.pairs:
            self.make_pairs()
        if self._engine is None:
            snap = self.snapshot()
            self._engine = MixEngine([r.s for r in self.renders], [r.d for r in self.renders], snap)
        return self._engine

    def make_pairs(self, *, progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None) -> None:
        """The current auto sources' stereo pairs, made where missing (a headless session,
        ``pairs`` False, makes them only when they are needed: an engine, stereo stems)."""
        render_missing(self.renders, mono_compatible=self.mono_compatible, spill=self.spill_dir, progress=progress,
                       cancel=cancel)

    @staticmethod
    def make_engine(renders: list[SourceRender], placements: list[Placement], *,
                    ab_original: bool = False, mono_compatible: bool = False, output_gain: float = 1.0,
                    bus=None) -> MixEngine:
        """A playback engine over ``renders`` (their signals are read in place, never copied);
        ``bus``: their whole mix at ``placements`` (:class:`app.mixes.StateMix`'s buffer), played
        instead of their pairs."""
        snap = snapshot_for(placements, has_auto=[r.has_auto for r in renders], pairs=[r.auto for r in renders],
                            ab_original=ab_original, mono_compatible=mono_compatible, output_gain=output_gain,
                            bus=bus)
        return MixEngine([r.s for r in renders], [r.d for r in renders], snap)

    def snapshot(self, placements: Optional[list[Placement]] = None) -> MixSnapshot:
        """The playback snapshot for ``placements`` (default the session's), with the output gain:
        the state's kept mix when the places are its own (the export's samples), else every source
        on its own row (their pairs are made from the playhead first where missing)."""
        placements = self.placements if placements is None else placements
        kept = None if self.ab_original else self.mixes.find(self.renders, placements, self.mono_compatible)
        if kept is None and self.pairs and not self.ab_original:
            self.ensure_pairs()
        return snapshot_for(placements, has_auto=[r.has_auto for r in self.renders], pairs=[r.auto for r in self.renders],
                            ab_original=self.ab_original, mono_compatible=self.mono_compatible,
                            output_gain=10 ** (self.stage.gain_db / 20), bus=None if kept is None else kept.buf)

    def _need_recording(self) -> None:
        if self.mono is None:
            raise ParameterError("no recording loaded")

