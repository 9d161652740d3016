"""Export: the session's stereo mix through the output stage to a file, never clipped, never over
the input, atomically, with a project file beside it that re-makes it exactly (and optionally each
source's stereo stem)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

from core import audio
from core.errors import ParameterError
from core.loudness import GainPlan, Loudness, true_peak_db
from core.progress import ProgressFn, Reporter, report
from core.renderer import mix_chunks

from .project_io import save_project

if TYPE_CHECKING:
    from .session import Session

__all__ = ["ExportResult", "export", "stem_paths"]


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
