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
from .mixes import StateMix, background
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
                 cancel: Optional[threading.Event] = None, elsewhere: bool = False) -> PSParams:
        """PS parameters of ``rendition`` (the same rendition always gives the same values); the
        cache is filled when a plan is adopted (safe in a worker). ``elsewhere``: sampled in a
        process of its own (:mod:`app.sample_process`), for a prediction made beside other work."""
        self._need_recording()
        if rendition.ps_key in self._params:
            return self._params[rendition.ps_key]
        return proposal.predict(rendition, self.mono, models_dir=self.settings.models_dir,
                                cache_dir=self.settings.cache_dir / "params", progress=progress,
                                cancel=cancel, elsewhere=self.settings.render_spill_dir if elsewhere else None)

    def predict_ahead(self, rendition: Rendition, *, cancel: Optional[threading.Event] = None) -> threading.Thread:
        """Start predicting ``rendition``'s PS parameters in a thread of its own, into the on-disk
        prediction cache (the session is not changed): a plan for it made later finds them there.
        Join the returned thread before relying on it; errors are left for that plan to meet."""
        def run():
            try:
                self.predict(rendition, cancel=cancel, elsewhere=True)
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
        """Get the next rendition (``seed``) ready while the user listens, in one background thread:
        its places and tile parameters planned over the detail there is now (so that "New rendition"
        only makes its first block: :meth:`plan_rendition` takes the prepared plan when it is for
        the same rendition and state), then the PS model sampled for a detail of its own (into the
        prediction cache, :meth:`detail_for`) and the plan made again over it: the gallery's
        renditions differ in their per-band detail too when the user listens a while. A later
        call names the rendition wanted next; the thread moves on to it."""
        self._want = (int(seed), model or self.model, temperature, guidance)
        self._ahead_ready.clear()
        t = getattr(self, "_prefetching", None)
        if t is not None and t.is_alive():
            return
        stop = self._prefetch_stop
        self._prefetching = background(lambda: self._ahead(stop), stop.set, "rendition ahead")

    def wait_ahead(self, timeout: Optional[float] = None) -> bool:
        """Until the rendition asked for last by :meth:`prefetch` is planned (benches, tests)."""
        return self._ahead_ready.wait(timeout)

    def _ahead(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                want = self._want
                seed, model, temperature, guidance = want
                detail = self.detail_for(seed, model, temperature, guidance)
                base = (list(self.sources), list(self.renders), list(self.placements), self.mono_compatible)
                if self.mono is None or not base[1]:
                    return
                r = self._new_rendition_record(seed, model, temperature, guidance, None, None, detail)
                if self._prepared_for(r, base[1], base[2]) is None:
                    params = self.predict(r, cancel=stop)
                    renders = [replace(sr) for sr in base[1]]
                    placements = self._seed(r, renders, params, base[2], base[0], pairs=False, cancel=stop)
                    self._ready = (r, base[1], base[2], params, renders, placements)
                if self._want == want:
                    self._ahead_ready.set()
                if detail is not None and self._want == want:       # then a detail of its own
                    own = Rendition(seed, model, temperature, guidance)
                    if own.ps_key in self._params or not proposal.model_has_files(model, self.settings.models_dir):
                        return
                    self.predict(own, cancel=stop, elsewhere=True)      # (a process: playback keeps the GIL)
                    continue                                         # planned again over it
                if self._want == want:
                    return
        except Exception:          # cancelled, or failed: a plan made at the press reports it
            return

    def _prepared_for(self, r: Rendition, base_r: list[SourceRender], base_p: list[Placement]):
        """The rendition planned ahead when it is ``r`` over that state, else None."""
        ready = getattr(self, "_ready", None)
        if (ready is None or ready[0] != r or len(ready[1]) != len(base_r)
                or not all(a is b for a, b in zip(ready[1], base_r)) or ready[2] != list(base_p)):
            return None
        return ready

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
        and with the renders it had when they are still in memory or its mix is kept (no work at
        all). ``playhead`` (a sample): the rendition's whole mix is made from there
        (:class:`app.mixes.StateMix`): the plan holds its first block, and adopting it starts a
        thread that makes the rest while the new rendition plays, then the sources' pairs."""
        if index is not None:
            if not 0 <= index < len(self.renditions):
                raise ParameterError(f"no rendition {index}; there are {len(self.renditions)}")
            r = self.renditions[index]
            if places is None and sources is None:
                places = self.gallery[index]
                kept = self._kept_renders(index)
                if kept is not None:
                    # its renders again (their tile parameters stay when pairs are released): its
                    # kept mix plays at once; else, with its pairs released, its mix from the playhead
                    renders, mix = kept, None
                    if (playhead is not None and self.pairs
                            and self.mixes.find(renders, places, self.mono_compatible) is None
                            and missing(renders, mono_compatible=self.mono_compatible)):
                        mix = StateMix(renders, places, self.mono_compatible, spill=self.spill_dir).start(
                            playhead, cancel=cancel).run_behind()
                    return RenditionPlan(r, self._params[r.ps_key], renders, list(places), mix)
        else:
            seed = int(self._next_seed() if seed is None else seed)
            r = self._new_rendition_record(seed, model, temperature, guidance, placement, variety, detail)
        base_s, base_r, base_p = ((sources.sources, sources.renders, sources.placements) if sources is not None
                                  else (self.sources, self.renders, self.placements))
        progressive = playhead is not None and self.pairs
        ready = self._prepared_for(r, base_r, base_p) if index is None and places is None else None
        if ready is not None:               # planned ahead while the user listened (:meth:`prefetch`)
            self._ready = None
            params, renders, placements = ready[3], ready[4], ready[5]
            if not progressive and self.pairs:
                self._render(r, renders, params, placements)
            return RenditionPlan(r, params, renders, placements, self._start_mix(renders, placements, playhead,
                                                                                 cancel))
        params = self.predict(r, progress=Reporter(progress, "predict", 0.0, 0.9), cancel=cancel)
        check_cancel(cancel)
        renders = [replace(sr) for sr in base_r]
        rep = Reporter(progress, "render", 0.9, 0.1)
        if places is not None:
            if len(places) != len(renders):
                raise ParameterError(f"{len(places)} places for {len(renders)} sources")
            placements = list(places)
            self._render(r, renders, params, placements, pairs=not progressive, progress=rep, cancel=cancel)
        else:
            placements = self._seed(r, renders, params, list(base_p), base_s, pairs=not progressive, progress=rep,
                                    cancel=cancel)
        return RenditionPlan(r, params, renders, placements, self._start_mix(renders, placements, playhead, cancel))

    def _kept_renders(self, index: int) -> Optional[list[SourceRender]]:
        """Kept rendition ``index``'s renders as it was auditioned (None: to be made again)."""
        r, places, kept = self.renditions[index], self.gallery[index], self._kept.get(index)
        if (kept is not None and places is not None and kept[1] == list(places) and kept[2] == self.mono_compatible
                and len(kept[0]) == len(self.renders) and r.ps_key in self._params):
            return list(kept[0])
        return None

    def switch_at_once(self, index: int) -> Optional["RenditionPlan"]:
        """The plan of a switch to kept rendition ``index`` when it costs nothing (its mix kept, or
        its pairs in memory): the UI adopts it on its own thread, heard from the next audio block;
        None when something must be made first (then :meth:`plan_rendition` in a worker)."""
        if not 0 <= index < len(self.renditions) or index == self.current:
            return None
        renders, places = self._kept_renders(index), self.gallery[index]
        if renders is None or (self.mixes.find(renders, places, self.mono_compatible) is None
                               and missing(renders, mono_compatible=self.mono_compatible)):
            return None
        r = self.renditions[index]
        return RenditionPlan(r, self._params[r.ps_key], renders, list(places))

    def _start_mix(self, renders, placements, playhead: Optional[int], cancel) -> Optional[StateMix]:
        """The state's mix from ``playhead`` (its first block made), or None without a playhead."""
        if playhead is None or not self.pairs:
            return None
        return StateMix(renders, placements, self.mono_compatible, spill=self.spill_dir).start(
            playhead, cancel=cancel).run_behind()

    def _new_rendition_record(self, seed: int, model, temperature, guidance, placement, variety,
                              detail) -> Rendition:
        """The :class:`Rendition` a new one with these settings is (the session's where None)."""
        placement = placement or self.placement
        if placement not in PLACEMENT_METHODS:
            raise ParameterError(f"unknown placement {placement!r}; choose one of {', '.join(PLACEMENT_METHODS)}")
        variety = check_range("variety", self.variety if variety is None else float(variety), VARIETY_RANGE)
        return Rendition(int(seed), model or self.model, temperature, guidance, placement, variety,
                         None if detail is None or int(detail) == int(seed) else int(detail),
                         self.reference if placement == "model" else None)

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
        if plan.mix is not None:
            self.mixes.keep(plan.mix)       # the state's mix: played at once, the rest made behind it
        if record:
            self._push_state(label, before, after)
        else:
            self._restore(*after)
        self._kept[index] = (list(plan.renders), list(plan.placements), self.mono_compatible)
        return index

    def fill(self, filler) -> None:
        """Finish ``filler`` (a :class:`core.renderer.PairFiller`, or anything with ``run`` and
        ``cancel``) in a background thread."""
        self._fillers = [(f, t) for f, t in self._fillers if t.is_alive()]
        self._fillers.append((filler, background(filler.run, filler.cancel, "fill behind")))

    def wait_filled(self, timeout: Optional[float] = None) -> None:
        """Until every mix and pair being made behind the playhead is whole (tests, benches)."""
        while True:
            alive = [t for _f, t in list(self._fillers) if t.is_alive()]
            if not alive:
                return
            for t in alive:
                t.join(timeout)
            if timeout is not None:
                return

    def _make_behind(self, mix: StateMix) -> None:
        """The rest of the current state's ``mix`` in a background thread, then its pairs (for
        the edits that play the sources one by one)."""
        if mix.filled.is_set() and not missing(self.renders, mono_compatible=self.mono_compatible):
            return
        self.fill(_Behind(self, mix, list(self.renders), self.mono_compatible))

    def ensure_pairs(self) -> None:
        """The current auto sources' pairs where missing: their first block from the playhead
        now, the rest behind it (an edit plays the sources one by one)."""
        filler = self._start_pairs(self.renders, self.mono_compatible)
        if filler is not None:
            self.fill(filler)

    def _start_pairs(self, renders: list[SourceRender], mono_compatible: bool) -> Optional[PairFiller]:
        """A :class:`core.renderer.PairFiller` with its first blocks made and installed, for the
        missing pairs of ``renders`` while they are the current state's (else None); any thread."""
        with self._pair_lock:
            current = len(renders) == len(self.renders) and all(a is b for a, b in zip(renders, self.renders))
            if (not self.pairs or not current or mono_compatible != self.mono_compatible
                    or not missing(renders, mono_compatible=mono_compatible)):
                return None
            start = self._engine.position if self._engine is not None else 0
            return PairFiller(renders, start=start, mono_compatible=mono_compatible,
                              spill=self.spill_dir).start_pairs()

    def _stop_fillers(self) -> None:
        stop, t = self._prefetch_stop, getattr(self, "_prefetching", None)
        if t is not None and t.is_alive():      # the rendition planned ahead too
            stop.set()
            t.join()
            self._prefetch_stop = threading.Event()
        self._ready = None
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


class _Behind:
    """A state's mix finished in the background, then its pairs while it is the current state."""

    def __init__(self, session, mix: StateMix, renders: list[SourceRender], mono_compatible: bool):
        self.session, self.mix, self.renders, self.mono_compatible = session, mix, renders, mono_compatible
        self.filler: Optional[PairFiller] = None
        self.stopped = threading.Event()

    def run(self) -> None:
        if not self.mix.run() or self.stopped.is_set():
            return
        self.filler = self.session._start_pairs(self.renders, self.mono_compatible)
        if self.filler is not None:
            if self.stopped.is_set():
                self.filler.cancel()
            self.filler.run()

    def cancel(self) -> None:
        self.stopped.set()
        self.mix.cancel()
        if self.filler is not None:
            self.filler.cancel()
