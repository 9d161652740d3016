"""The session's renditions: predicting the PS model, proposing places, planning and adopting a
rendition, filling its stereo pairs from the playhead, and the gallery kept as auditioned.

:class:`RenditionSteps` is a part of :class:`app.session.Session` (a mixin: these methods work on
the session's own state, see there); it lives here so that the session module holds the state,
its events and its undo, and each heavy idea has a module of its own.
"""
from __future__ import annotations

import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Optional

from core.errors import ParameterError
from core.limits import VARIETY_RANGE, check_range
from core.placement import PLACEMENT_METHODS, Placement
from core.progress import ProgressFn, Reporter, check_cancel
from core.ps import PSParams
from core.renderer import PairFiller, SourceRender, missing
from separation.base import Source

from . import proposal
from .plans import Rendition, RenditionPlan
from core.models import load_model
from core import lazy
decoder = lazy.module("core.decoder")
stft = lazy.module("core.stft")

if TYPE_CHECKING:
    from .plans import SourcesPlan

__all__ = ["RenditionSteps"]


class RenditionSteps:
    """Renditions of a :class:`app.session.Session` (mixed into it)."""

    def predict(self, rendition: Rendition, *, progress: Optional[ProgressFn] = None,
                 cancel: Optional[threading.Event] = None) -> PSParams:
        """PS parameters of ``rendition`` (the same rendition always gives the same values); the
        cache is filled when a plan is adopted (safe in a worker)."""
        self._need_recording()
        if rendition.ps_key in self._params:
            return self._params[rendition.ps_key]
        return proposal.predict(rendition, self.mono, models_dir=self.settings.models_dir,
                                cache_dir=self.settings.cache_dir / "params", progress=progress,
                                cancel=cancel)

    def predict_ahead(self, rendition: Rendition, *, cancel: Optional[threading.Event] = None) -> threading.Thread:
        """Start predicting ``rendition``'s PS parameters in a thread of its own, into the on-disk
        prediction cache (the session is not changed): a plan for it made later finds them there.
        Join the returned thread before relying on it; errors are left for that plan to meet."""
        def run():
            try:
                self.predict(rendition, cancel=cancel)
            except Exception:       # cancelled or failed: the plan predicts (and reports) itself
                pass
        t = threading.Thread(target=run, name="predict ahead", daemon=True)
        t.start()
        return t

    def whole_mix(self, *, cancel: Optional[threading.Event] = None):
        """The recording upmixed as a whole [shape=(n, 2)], before any separation: the PS decoder
        with the Decorr baseline's parameters (no model to sample: a few seconds for a song), what
        the app plays while the sources are being found."""
        self._need_recording()
        params = load_model("decorr", self.settings.models_dir).predict(self.mono, cancel=cancel)
        return decoder.decode(self.mono, params.fit_frames(stft.n_frames(len(self.mono))), cancel=cancel)

    def keep_params(self, rendition: Rendition, params: PSParams) -> None:
        """PS parameters of ``rendition`` computed elsewhere (e.g. in a helper thread while the
        recording was separated): a plan for it uses them instead of predicting again."""
        self._params[rendition.ps_key] = params

    def shared_detail(self, model: Optional[str] = None, temperature: Optional[float] = None,
                      guidance: Optional[float] = None) -> Optional[int]:
        """The detail seed a new rendition can share at no cost: the current rendition's (or any
        kept one's) when its PS parameters, for the same model and settings, are in memory; None
        when there is none (the new rendition then samples its own)."""
        model = model or self.model
        order = ([self.current] if self.current >= 0 else []) + list(range(len(self.renditions) - 1, -1, -1))
        for i in order:
            r = self.renditions[i]
            if (r.model, r.temperature, r.guidance) == (model, temperature, guidance) and r.ps_key in self._params:
                return r.ps_seed
        return None

    def next_seed(self) -> int:
        """The seed a new rendition gets when none is given."""
        return self._next_seed()

    def detail_for(self, seed: int, model: Optional[str] = None, temperature: Optional[float] = None,
                   guidance: Optional[float] = None) -> Optional[int]:
        """The per-band detail a new rendition with ``seed`` can have at no wait: its own (None)
        when its PS sample is ready (in memory, or in the prediction cache: :meth:`prefetch` puts
        it there while the user listens), else one already computed (:meth:`shared_detail`)."""
        own = Rendition(int(seed), model or self.model, temperature, guidance)
        if own.ps_key in self._params or proposal.predicted(own, self.mono, models_dir=self.settings.models_dir,
                                                            cache_dir=self.settings.cache_dir / "params",
                                                            audio_sha256=self._audio_key()):
            return None
        return self.shared_detail(own.model, temperature, guidance)

    def prefetch(self, seed: int, model: Optional[str] = None, temperature: Optional[float] = None,
                 guidance: Optional[float] = None) -> None:
        """Sample the PS model for a rendition with ``seed`` in the background (one at a time,
        into the prediction cache), so that it gets a detail of its own (:meth:`detail_for`): the
        gallery's renditions differ in their per-band detail too when the user listens a while."""
        t = getattr(self, "_prefetching", None)
        if t is not None and t.is_alive():
            return
        own = Rendition(int(seed), model or self.model, temperature, guidance)
        if self.detail_for(own.seed, own.model, temperature, guidance) is None:
            return
        if not hasattr(self, "_prefetch_stop"):
            self._prefetch_stop = threading.Event()
        self._prefetching = self.predict_ahead(own, cancel=self._prefetch_stop)

    def _audio_key(self) -> str:
        """The recording's checksum (computed once per recording)."""
        memo = getattr(self, "_audio_memo", None)
        if memo is None or memo[0] is not self.mono:
            memo = self._audio_memo = (self.mono, self.audio_sha256())
        return memo[1]

    def _next_seed(self) -> int:
        used = {r.seed for r in self.renditions}
        return next(s for s in range(len(used) + 1) if s not in used)

    def new_rendition(self, seed: Optional[int] = None, *, model: Optional[str] = None,
                      temperature: Optional[float] = None, guidance: Optional[float] = None,
                      placement: Optional[str] = None, variety: Optional[float] = None,
                      detail: Optional[int] = None, progress: Optional[ProgressFn] = None,
                      cancel: Optional[threading.Event] = None) -> int:
        """Sample the models again (a new seed unless given), keep it in the gallery and switch to it.
        Pinned sources keep their place; the others are placed by ``placement`` ("model" or "mean";
        default: the session's) at ``variety`` in [0, 1] (default: the session's). ``detail``: keep
        the per-band detail of the PS model's sample with that seed (:attr:`Rendition.detail`;
        :meth:`shared_detail` names one already computed; default: a sample of its own). Returns
        the rendition's index."""
        plan = self.plan_rendition(seed, model=model, temperature=temperature, guidance=guidance,
                                   placement=placement, variety=variety, detail=detail, progress=progress,
                                   cancel=cancel)
        return self.adopt_rendition(plan)

    def plan_rendition(self, seed: Optional[int] = None, *, model: Optional[str] = None,
                       temperature: Optional[float] = None, guidance: Optional[float] = None,
                       placement: Optional[str] = None, variety: Optional[float] = None,
                       detail: Optional[int] = None, index: Optional[int] = None,
                       sources: Optional["SourcesPlan"] = None,
                       places: Optional[list[Placement]] = None, playhead: Optional[int] = None,
                       progress: Optional[ProgressFn] = None,
                       cancel: Optional[threading.Event] = None) -> "RenditionPlan":
        """Worker side of :meth:`new_rendition` (or, with ``index``, of :meth:`recall`): predict and
        place on copies; the session is not changed until the plan is adopted. With ``sources``: for
        planned sources adopted first. With ``places`` (one per source), the auto renders are made
        around those places instead of sampling new ones; a kept rendition comes back with the
        places it was auditioned with (the gallery is immutable: edits since do not resample it),
        and with the renders it had when they are still in memory (no work at all).
        ``playhead`` (a sample): the auto pairs are made from there (:class:`core.renderer.PairFiller`):
        the plan holds their first block, and adopting it starts a thread that fills the rest
        while the new rendition plays."""
        if index is not None:
            if not 0 <= index < len(self.renditions):
                raise ParameterError(f"no rendition {index}; there are {len(self.renditions)}")
            r = self.renditions[index]
            if places is None and sources is None:
                places = self.gallery[index]
                kept = self._kept.get(index)
                if (kept is not None and places is not None and kept[1] == list(places)
                        and kept[2] == self.mono_compatible and len(kept[0]) == len(self.renders)
                        and r.ps_key in self._params):
                    # its renders again (their tile parameters stay when pairs are released): at
                    # most the released pairs to make, from the playhead
                    renders, filler = list(kept[0]), None
                    if (playhead is not None and self.pairs
                            and missing(renders, mono_compatible=self.mono_compatible)):
                        filler = PairFiller(renders, start=playhead, mono_compatible=self.mono_compatible,
                                            spill=self.spill_dir).start_pairs(cancel, install=False)
                    return RenditionPlan(r, self._params[r.ps_key], renders, list(places), filler)
        else:
            placement = placement or self.placement
            if placement not in PLACEMENT_METHODS:
                raise ParameterError(f"unknown placement {placement!r}; choose one of {', '.join(PLACEMENT_METHODS)}")
            variety = self.variety if variety is None else float(variety)
            variety = check_range("variety", variety, VARIETY_RANGE)
            seed = int(self._next_seed() if seed is None else seed)
            r = Rendition(seed, model or self.model, temperature, guidance, placement, variety,
                          None if detail is None or int(detail) == seed else int(detail),
                          self.reference if placement == "model" else None)
        params = self.predict(r, progress=Reporter(progress, "predict", 0.0, 0.9), cancel=cancel)
        check_cancel(cancel)
        base_s, base_r, base_p = ((sources.sources, sources.renders, sources.placements) if sources is not None
                                  else (self.sources, self.renders, self.placements))
        renders = [replace(sr) for sr in base_r]
        progressive = playhead is not None and self.pairs
        rep = Reporter(progress, "render", 0.9, 0.1)
        if places is not None:
            if len(places) != len(renders):
                raise ParameterError(f"{len(places)} places for {len(renders)} sources")
            placements = list(places)
            self._render(r, renders, params, placements, pairs=not progressive, progress=rep, cancel=cancel)
        else:
            placements = self._seed(r, renders, params, list(base_p), base_s, pairs=not progressive, progress=rep,
                                    cancel=cancel)
        filler = None
        if progressive:
            filler = PairFiller(renders, start=playhead, mono_compatible=self.mono_compatible,
                                spill=self.spill_dir).start_pairs(cancel)
        return RenditionPlan(r, params, renders, placements, filler)

    def adopt_rendition(self, plan: "RenditionPlan", *, record: bool = True) -> int:
        """UI side (cheap): switch to a planned rendition, keep it in the gallery, one undo step.
        Returns the rendition's index."""
        before = self._state()
        self._params[plan.rendition.ps_key] = plan.params
        if plan.rendition not in self.renditions:
            self.renditions.append(plan.rendition)
            self.gallery.append(list(plan.placements))
            label = f"new rendition (seed {plan.rendition.seed})"
        else:
            label = f"switch to rendition {self.renditions.index(plan.rendition) + 1}"
        index = self.renditions.index(plan.rendition)
        if self.gallery[index] is None:
            self.gallery[index] = list(plan.placements)
        after = (index, plan.renders, plan.placements, self.mono_compatible)
        if plan.filler is not None:
            plan.filler.install()           # (a plan for kept renders installs its new pairs only now)
        if record:
            self._push_state(label, before, after)
        else:
            self._restore(*after)
        self._kept[index] = (list(plan.renders), list(plan.placements), self.mono_compatible)
        if plan.filler is not None:
            self.fill(plan.filler)
        return index

    def fill(self, filler: PairFiller) -> None:
        """Finish ``filler``'s pairs in a background thread (it writes only into those pairs)."""
        self._fillers = [(f, t) for f, t in self._fillers if t.is_alive()]
        t = threading.Thread(target=filler.run, name="fill pairs", daemon=True)
        self._fillers.append((filler, t))
        t.start()

    def wait_filled(self, timeout: Optional[float] = None) -> None:
        """Until every pair being filled is whole (tests, benches, export of stems)."""
        for _f, t in list(self._fillers):
            t.join(timeout)

    def _stop_fillers(self) -> None:
        stop, t = getattr(self, "_prefetch_stop", None), getattr(self, "_prefetching", None)
        if stop is not None and t is not None and t.is_alive():      # a background prediction too
            stop.set()
            t.join()
            self._prefetch_stop = threading.Event()
        for f, t in self._fillers:
            f.cancel()
        for f, t in self._fillers:
            t.join()
        self._fillers = []

    def recall(self, index: int, *, record: bool = True, places: Optional[list[Placement]] = None,
               progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None) -> None:
        """Switch to kept rendition ``index``, re-made exactly as it was auditioned (see
        :meth:`plan_rendition`)."""
        self.adopt_rendition(self.plan_rendition(index=index, places=places, progress=progress, cancel=cancel),
                             record=record)

    def _render(self, r: Rendition, renders: list[SourceRender], params: PSParams, placements: list[Placement],
                pairs: bool = True, **kw) -> None:
        proposal.render_around(r, renders, params, placements, mono_compatible=self.mono_compatible,
                               spill=self.spill_dir, pairs=self.pairs and pairs, models_dir=self.settings.models_dir,
                               **kw)

    def _seed(self, r: Rendition, renders: list[SourceRender], params: PSParams, previous: list[Placement],
              sources: list[Source], *, pairs: bool = True, progress: Optional[ProgressFn] = None,
              cancel: Optional[threading.Event] = None) -> list[Placement]:
        """The proposed placements of rendition ``r``, with the auto renders of ``renders`` (fresh
        copies) made around them."""
        placements = proposal.propose(r, renders, params, previous, sources, models_dir=self.settings.models_dir)
        self._render(r, renders, params, placements, pairs=pairs, progress=progress, cancel=cancel)
        return placements
