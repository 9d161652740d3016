"""The output stage: one gain for the whole mix, heard in the preview and written by the export.

:class:`OutputSettings` (a peak ceiling, true peak by default, and optionally the original's
loudness as the target) decide a :class:`core.loudness.GainPlan`, measured on the full mix by
:meth:`OutputStage.measure` and cached under a key that changes whenever the mix does. The preview
(the playback snapshot's output gain) and :func:`export` apply the same plan, so what is heard is
what is exported. :func:`export` writes the mix (and optionally the stereo stems) atomically, never
over the input, with a project file beside it that re-makes it exactly.
"""
from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

from core import audio
from core.errors import Cancelled, ParameterError
from core.loudness import GainPlan, Loudness, measure, plan_gain, true_peak_db
from core.progress import ProgressFn, Reporter, check_cancel, report
from core.renderer import mix, mix_chunks

if TYPE_CHECKING:
    from .session import Session

__all__ = ["OutputSettings", "OutputStage", "ExportResult", "export", "stem_paths"]


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


class OutputStage:
    """A session's output stage: its settings, the recording's loudness (measured once) and the
    latest measured gain with the key it was measured under (see :meth:`Session.output_state`)."""

    def __init__(self):
        self.settings = OutputSettings()
        self.plan: Optional[GainPlan] = None
        self.key = None
        self._input: Optional[Loudness] = None

    def reset(self) -> None:
        """A new recording: nothing measured."""
        self.plan, self.key, self._input = None, None, None

    def input_loudness(self, mono: np.ndarray) -> Loudness:
        if self._input is None:
            self._input = measure(mono)
        return self._input

    def is_current(self, key) -> bool:
        return self.plan is not None and self.key == key

    @property
    def gain_db(self) -> float:
        """The gain the preview applies now: the latest measured plan's (0 dB before any)."""
        return 0.0 if self.plan is None else self.plan.gain_db

    def adopt(self, plan: GainPlan, key) -> None:
        """``plan`` measured for the session in state ``key`` (on the UI thread, where there is one)."""
        self.plan, self.key = plan, key

    def plan_for(self, full: np.ndarray, key, mono: np.ndarray) -> GainPlan:
        """The gain for mix ``full`` [shape=(n, 2)]: the cached plan when it is for ``key``, else
        measured (not cached: :meth:`adopt` does that)."""
        if self.is_current(key):
            return self.plan
        o = self.settings
        target = self.input_loudness(mono).lufs_played if o.keep_loudness else None
        return plan_gain(full, ceiling_db=o.ceiling_db, true_peak=o.true_peak, target_lufs=target,
                         measure_lufs=True)


def measure_session(session: "Session", *, cancel: Optional[threading.Event] = None) -> tuple[GainPlan, tuple]:
    """The output gain of the full mix as ``session`` is now and the state key it is for (adopt
    both: :meth:`OutputStage.adopt`). Safe in a worker while the UI edits: it works on copies of
    the lists and changes nothing."""
    renders, placements = list(session.renders), list(session.placements)
    key = session.output_state(placements)
    if session.stage.is_current(key):
        return session.stage.plan, key
    if not renders:
        raise ParameterError("nothing to measure: separate the recording first")
    check_cancel(cancel)
    try:
        full = mix(renders, placements, mono_compatible=session.mono_compatible)
    except ParameterError:
        if [id(r) for r in session.renders] != [id(r) for r in renders]:   # undone meanwhile, renders released
            raise Cancelled("the session moved on while measuring") from None
        raise
    check_cancel(cancel)
    return session.stage.plan_for(full, key, session.mono), key


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
    key: Optional[tuple] = None          # the session state ``plan`` was measured for

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


def stem_paths(path: Path, names: list[str], fmt: str) -> list[Path]:
    """Where :func:`export` writes the stereo stems of export ``path``: ``OUT-stems/NN-name.ext``."""
    folder = path.with_name(path.stem + "-stems")
    ext = ".flac" if fmt.startswith("flac") else ".wav"
    out = []
    for i, name in enumerate(names):
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40]
        out.append(folder / f"{i + 1:02d}-{safe}{ext}")
    return out


def export(session: "Session", path, *, fmt: Optional[str] = None, stems: bool = False, project: bool = True,
           overwrite: bool = False, adopt: bool = True, progress: Optional[ProgressFn] = None) -> ExportResult:
    """Write ``session``'s stereo mix through the output stage (the gain the preview plays), never
    over the input, atomically, and with ``project`` a project file beside it
    (``OUT.soundstage.json``) that re-makes it exactly. With ``adopt`` the session records the
    measured gain and the export's path and format; without (a worker), the caller adopts
    ``result.plan`` under ``result.key`` on the UI thread."""
    from .project_io import save_project
    s = session
    path = Path(path)
    fmt = fmt or audio.format_for_path(path)
    if s.recording is not None and audio.same_file(s.recording, path):
        raise ParameterError(f"{path}: refusing to write over the input recording")
    # mix once (chunked inside), scale by the output stage's one gain, write in chunks; stems,
    # when asked for, are mixed again chunk by chunk while writing
    full = s.render(progress=Reporter(progress, "mix", 0.0, 0.4))
    key = s.output_state()
    plan = s.stage.plan_for(full, key, s.mono)
    report(progress, "measure", 0.5, 1.0)
    g = np.float32(10 ** (plan.gain_db / 20))
    paths = stem_paths(path, [src.name for src in s.sources], fmt)
    targets = [path] + (paths if stems else [])
    n = len(full)
    with audio.AtomicWriters(targets, fmt=fmt, channels=2, overwrite=overwrite, inputs=[s.recording]) as writers:
        if stems:
            s.make_pairs()                       # each source's stereo stem is its pair
            for start, chunk, parts in mix_chunks(s.renders, s.placements, stems=True,
                                                  mono_compatible=s.mono_compatible):
                writers[0].write(full[start:start + len(chunk)] * g)
                for w, part in zip(writers[1:], parts):
                    w.write(part * g)
                report(progress, "export", 0.5 + 0.5 * (start + len(chunk)) / n, 1.0)
        else:
            step = 1 << 18
            for start in range(0, n, step):
                writers[0].write(full[start:start + step] * g)
                report(progress, "export", 0.5 + 0.5 * min(n, start + step) / n, 1.0)
    out_tp = plan.out_peak_db if plan.true_peak else true_peak_db(full) + plan.gain_db
    res = ExportResult(path, plan.gain_db, plan.out_peak_db, stems=paths if stems else [], plan=plan,
                       input=s.stage.input_loudness(s.mono), output_lufs=plan.out_lufs, output_true_peak_db=out_tp, key=key)
    written = {"path": path.name, "format": fmt}
    if project:
        res.project = save_project(s, path.with_suffix(".soundstage.json"), export=written)
    if adopt:
        s.stage.adopt(plan, key)
        s.export_settings = written
    return res
