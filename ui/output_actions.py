"""The controller's output and file actions: export, DAW project, projects, mono-compatible mode,
measuring the output gain and its settings.

:class:`OutputActions` is a part of :class:`ui.controller.SessionController` (a mixin working on its
session, jobs and playback, see there), in a module of its own so that the controller module holds
the wiring, the adoption of jobs' results and the cheap edits.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from app.export import export as write_export
from app.output import measure_session
from app.project_io import load_project, save_project

from .jobs import Prepared
from core import lazy
dawproject = lazy.module("app.dawproject")

__all__ = ["OutputActions"]


class OutputActions:
    """Export and project files, the output stage and mono-compatible mode of a :class:`SessionController`."""

    def _sync_output_vm(self, *_) -> None:
        """The OUTPUT panel's view model from the session as it is now."""
        s = self.session
        plan = s.stage.plan if s.renders else None
        self.output_vm.set_gain(None if plan is None else plan.gain_db, "" if plan is None else plan.describe(),
                                plan is not None and s.output_plan_current())
        self.output_vm.set_mode(s.mono_compatible, bool(s.renders) and not self.busy)
        self.output_vm.set_settings(s.output, bool(s.renders))

    def output_details(self) -> str:
        """What the output stage does to the mix now: the gain and why, input and output loudness
        ("" with nothing to play; the input's loudness is measured once, when first asked for)."""
        s = self.session
        if not s.renders:
            return ""
        plan = s.stage.plan
        if plan is None or not s.output_plan_current():
            return "Measuring the mix's loudness and true peak…"
        text = plan.describe()
        text = text[0].upper() + text[1:] + "."
        inp = s.stage.input_loudness(s.mono)
        out = f"{plan.out_lufs:.1f} LUFS, " if plan.out_lufs is not None else ""
        return f"{text}\nInput: {inp.line()}.\nOutput: {out}{plan.out_peak_db:.1f} {plan.unit}."

    def export(self, path, *, fmt: str, stems: bool, overwrite: bool = True, on_done: Optional[Callable] = None):
        s = self.session
        if not s.renders:
            self.status.emit("Nothing to export yet: separate the recording first")
            return None

        def fn(progress, cancel):
            return write_export(s, path, fmt=fmt, stems=stems, overwrite=overwrite, adopt=False, progress=progress)

        def done(res):
            self.last_export = res
            if s is self.session:                 # the gain the export measured is the preview's too
                s.stage.adopt(res.plan, res.key)
                s.export_settings = {"path": res.path.name, "format": fmt}
            self._push_snapshot()
            self.output_changed.emit()
            self.status.emit(f"Exported {res.path}: {res.summary()}")
            if on_done:
                on_done(res)

        return self.run_job("Export", fn, on_done=done)

    def export_dawproject(self, path):
        """Write the session as a DAWproject file (one track per source, the mono original muted)."""
        s = self.session
        if not s.renders:
            self.status.emit("Nothing to hand off yet: separate the recording first")
            return None

        def fn(progress, cancel):
            plan, key = measure_session(s, cancel=cancel)        # measured here, adopted when done
            return dawproject.write_dawproject(s, path, overwrite=True, plan=plan, progress=progress), plan, key

        def done(result):
            res, plan, key = result
            if s is self.session:
                s.stage.adopt(plan, key)
            self._push_snapshot()
            self.output_changed.emit()
            self.status.emit(f"Wrote DAW project {res} ({len(s.sources)} source tracks and the mono original, "
                             f"{s.stage.plan.describe()})")

        return self.run_job("Export DAW project", fn, on_done=done)

    def load_project(self, path):
        path = Path(path)

        def fn(progress, cancel):
            session = load_project(path, settings=self.user, progress=progress, cancel=cancel)
            return self._prepared(session, project_path=path)

        return self.run_job(f"Open project {path.name}", fn, on_done=lambda r: self.prefs.add_recent(path, project=True))

    def save_project(self, path) -> Path:
        """Write the project file (atomically); Save writes there from now on."""
        p = save_project(self.session, path)
        self.project_path = p
        self.mark_saved()
        self.status.emit(f"Project saved to {p}")
        self.prefs.add_recent(p, project=True)
        return p

    def set_mono_compatible(self, on: bool):
        """Mono-compatible mode on or off: the auto sources are rendered again in a job."""
        s = self.session
        if self.busy or not s.renders:
            return None

        def fn(progress, cancel):
            plan = s.plan_mono_compatible(on, progress=progress, cancel=cancel)
            return Prepared() if plan is None else self._adopting(plan, plan.renders)

        def done(_):
            self.status.emit("Mono-compatible: (L + R) / 2 is the recording" if on else "Mono-compatible off")

        return self.run_job("Mono-compatible" if on else "Mono-compatible off", fn, on_done=done)

    # --- the output stage (one gain for preview and export) ---------------------------------------
    def remeasure(self) -> None:
        """Measure the output gain of the mix as it is now, in the measuring lane (the full mix's
        true peak takes about a second a minute); adopted and heard when it ends."""
        s = self.session
        if not s.renders or s.output_plan_current() or s.output_state() == self._failed_state:
            return
        if self.jobs.measuring:
            self._measure_again = True
            return
        self._measure_again = False
        state = s.output_state()

        def done(result):
            plan, key = result
            if s is self.session:
                s.stage.adopt(plan, key)
                self._push_snapshot()
                self.output_changed.emit()
            if self._measure_again or not self.session.output_plan_current():
                self.remeasure()

        def failed(msg):     # a failed measurement keeps the last gain; say why, once
            self._failed_state = state
            self.jobs.last_error = f"measuring the output gain failed: {msg}"

        self.jobs.measure(lambda progress, cancel: measure_session(s, cancel=cancel), done, failed)

    def set_output(self, settings) -> None:
        """New output-stage settings (ceiling, keep loudness): re-measured, then heard."""
        self.session.set_output(settings)
        self._sync_output_vm()
        self._generation += 1                 # saved in the project, not in the undo history
        self._check_modified()
        self.remeasure()
