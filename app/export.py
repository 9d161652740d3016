"""Export: the session's stereo mix through the output stage to a file, never clipped, never over
the input, atomically, with a project file beside it that re-makes it exactly (and optionally each
source's stereo stem)."""
from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

from core import audio
from core.errors import ParameterError
from core.loudness import GainMeter, GainPlan, Loudness
from core.progress import ProgressFn, report
from core.renderer import mix_chunks, mix_stream

from .project_io import save_project

if TYPE_CHECKING:
    from .session import Session

__all__ = ["ExportResult", "export", "write_mix", "keep_measured", "MixSpool", "stem_paths"]


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
    ``result.plan`` under ``result.key`` on the UI thread.

    The mix is made once, block by block (:func:`core.renderer.mix_stream`), measured as it comes
    (:class:`core.loudness.GainMeter`: the plan the whole mix would give) and kept in a temporary
    file; then scaled by the one gain and written: memory stays at a few blocks."""
    s = session
    if not s.renders:
        raise ParameterError("nothing to render: separate the recording first")
    spool = MixSpool(s.settings.render_spill_dir)
    meter = GainMeter(len(s.mono), 2)
    n = len(s.mono)
    with spool:
        keep_measured(((a, [block]) for a, block in mix_stream(s.renders, s.placements,
                                                               mono_compatible=s.mono_compatible)),
                      [meter], [spool], lambda done: report(progress, "mix", 0.4 * done / max(n, 1), 1.0))
        key = s.output_state()
        plan = s.stage.plan if s.stage.is_current(key) else s.stage.plan_meter(meter, s.mono)
        return write_mix(s, path, spool, plan, key, meter.true_peak_db(), fmt=fmt, stems=stems, project=project,
                         overwrite=overwrite, adopt=adopt, progress=progress)


def keep_measured(mixed, meters: list[GainMeter], spools: list["MixSpool"], done=None) -> None:
    """Each ``(start, [block of rendition k])`` of ``mixed`` measured by ``meters[k]`` and kept in
    ``spools[k]``, in order, on a thread beside the mixing, one chunk behind (the true peak's and the
    loudness's FFTs and filters release the GIL: they run on the other core while the next chunk is
    mixed). ``done(samples)`` after each chunk is handed over."""
    def keep(blocks) -> None:
        for meter, spool, block in zip(meters, spools, blocks):
            meter.push(block)
            spool.write(block)

    with ThreadPoolExecutor(1, thread_name_prefix="measure") as pool:
        pending = []
        for a, blocks in mixed:
            pending.append(pool.submit(keep, blocks))
            while len(pending) > 2:
                pending.pop(0).result()
            if done is not None:
                done(a + len(blocks[0]))
        for job in pending:
            job.result()


def write_mix(session: "Session", path, spool: "MixSpool", plan: GainPlan, key, true_peak: float, *,
              fmt: Optional[str] = None, stems: bool = False, project: bool = True, overwrite: bool = False,
              adopt: bool = True, progress: Optional[ProgressFn] = None) -> ExportResult:
    """The second half of :func:`export`: the mix kept in ``spool`` (made for ``session`` as it
    is now, whose true peak before the gain is ``true_peak`` dBTP) scaled by ``plan``'s gain and
    written to ``path`` (with stems and the project file, as :func:`export`)."""
    s = session
    path = Path(path)
    fmt = fmt or audio.format_for_path(path)
    if s.recording is not None and audio.same_file(s.recording, path):
        raise ParameterError(f"{path}: refusing to write over the input recording")
    g = np.float32(10 ** (plan.gain_db / 20))
    paths = stem_paths(path, [src.name for src in s.sources], fmt)
    targets = [path] + (paths if stems else [])
    n = spool.frames
    with audio.AtomicWriters(targets, fmt=fmt, channels=2, overwrite=overwrite, inputs=[s.recording]) as writers:
        if stems:
            s.make_pairs()                       # each source's stereo stem is its pair
            for start, chunk, parts in mix_chunks(s.renders, s.placements, stems=True,
                                                  mono_compatible=s.mono_compatible):
                writers[0].write(spool.read(start, len(chunk)) * g)
                for w, part in zip(writers[1:], parts):
                    w.write(part * g)
                report(progress, "export", 0.5 + 0.5 * (start + len(chunk)) / n, 1.0)
        else:
            step = 1 << 18
            for start in range(0, n, step):
                writers[0].write(spool.read(start, min(step, n - start)) * g)
                report(progress, "export", 0.5 + 0.5 * min(n, start + step) / n, 1.0)
    out_tp = plan.out_peak_db if plan.true_peak else true_peak + plan.gain_db
    res = ExportResult(path, plan.gain_db, plan.out_peak_db, stems=paths if stems else [], plan=plan,
                       input=s.stage.input_loudness(s.mono), output_lufs=plan.out_lufs, output_true_peak_db=out_tp, key=key)
    written = {"path": path.name, "format": fmt}
    if project:
        res.project = save_project(s, path.with_suffix(".soundstage.json"), export=written)
    if adopt:
        s.stage.adopt(plan, key)
        s.export_settings = written
    return res


class MixSpool:
    """A stereo mix [shape=(n, 2)] float32 kept in an unlinked temporary file (in ``folder``, or
    the system's temporary folder) between measuring it and writing it: the OS's page cache holds
    it, not the process. ``write`` appends blocks in order; ``read(start, m)`` gives samples back,
    the same bits. Use as a context manager (the file goes when it closes)."""

    def __init__(self, folder=None):
        self.folder = folder
        self.frames = 0
        self._f = None

    def __enter__(self) -> "MixSpool":
        folder = None
        if self.folder is not None:
            try:
                Path(self.folder).mkdir(parents=True, exist_ok=True)
                folder = str(self.folder)
            except OSError:
                folder = None
        self._f = tempfile.TemporaryFile(prefix="mix-", suffix=".f32", dir=folder)
        return self

    def __exit__(self, *exc) -> bool:
        self._f.close()
        return False

    def write(self, block: np.ndarray) -> None:
        block = np.ascontiguousarray(block, dtype=np.float32)
        self._f.seek(self.frames * 8)
        self._f.write(block.data)
        self.frames += len(block)

    def read(self, start: int, m: int) -> np.ndarray:
        out = np.empty((m, 2), np.float32)
        self._f.seek(start * 8)
        if self._f.readinto(out.data) != out.nbytes:
            raise OSError("the temporary mix file was cut short")
        return out
