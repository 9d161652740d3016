"""The headless upmix chain shared by ``soundstage upmix`` and ``soundstage batch``.

One function, :func:`upmix_file`, takes a recording and :class:`UpmixSettings` and writes the
stereo file(s):

* without a separator: the model's PS parameters drive the PS decoder over the whole recording;
* with one (``formation``, ``demucs``): the session chain (separate, predict, propose placements
  with the placement model at ``variety``, render, export) and a project file beside every
  rendition, which ``soundstage render`` and the desktop app re-make exactly.

Both paths end in the same output stage (:func:`core.loudness.plan_gain`: the original's loudness
when asked for, under a true-peak ceiling, -1 dBTP by default) and can run mono-compatible (the
output folds down to the input times the reported gain). Both commands call this function with the same settings, so a batch output is byte-identical to
``soundstage upmix`` on the same file. Models are cached per process (:func:`core.models.load_model`),
so a long-lived worker loads each model once.
"""
from __future__ import annotations

import contextlib
import ctypes
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional

from core import SAMPLE_RATE
from core.errors import ParameterError
from core.formats import OUTPUT_FORMATS
from core.limits import CEILING_DB_RANGE, DEFAULT_CEILING_DB, DEFAULT_VARIETY, VARIETY_RANGE, check_range
from core.progress import ProgressFn, Reporter, check_cancel, report
import math
import numpy as np
import threading
import separation
from core.models import list_models, load_model
from core.models.base import models_dir as shipped
from core.settings import Settings
from core.loudness import measure_stream, GainMeter, GainPlan, LoudnessStream, TruePeakStream
from concurrent.futures import ThreadPoolExecutor
from app.reference import follow_file, rendition_follows
from core import lazy, spill
app_dawproject = lazy.module("app.dawproject")
app_session = lazy.module("app.session")
audio = lazy.module("core.audio")
core_placement = lazy.module("core.placement")
mixdown = lazy.module("core.mixdown")
export = lazy.module("app.export")
output = lazy.module("app.output")
plans = lazy.module("app.plans")
project_io = lazy.module("app.project_io")
streaming = lazy.module("core.streaming")

__all__ = ["UpmixSettings", "UpmixResult", "Output", "upmix_file", "best_method", "rendition_path", "FORMATS",
           "NO_SEPARATOR", "write_decoded", "session_outputs"]

FORMATS = OUTPUT_FORMATS
NO_SEPARATOR = "none"


def best_method(models_dir=None) -> str:
    """The best method available in ``models_dir`` (default: the shipped models): PS-MTM, then
    PS-NN, then Decorr (which needs no model file)."""
    folder = Path(models_dir) if models_dir is not None else shipped()
    avail = {m.name for m in list_models() if m.available(folder)[0]}
    for name in ("ps-mtm", "ps-nn", "decorr"):
        if name in avail:
            return name
    return "decorr"


@dataclass(frozen=True)
class UpmixSettings:
    """Everything that decides the output of one upmix (the batch manifest records it)."""
    method: str = "best"
    seed: int = 0
    temperature: Optional[float] = None
    guidance: Optional[float] = None
    format: Optional[str] = None          # None: from the output's extension
    separator: Optional[str] = None       # None / "none": plain PS decoding, no project file
    sources: Optional[int] = None         # formation: number of sources (2-8), None = auto
    demucs_model: Optional[str] = None
    renditions: int = 1                   # with a separator: seeds seed .. seed + K - 1
    stems: bool = False
    models_dir: Optional[str] = None
    mono_compatible: bool = False         # (L + R) / 2 = the input (times the output gain)
    ceiling_db: float = DEFAULT_CEILING_DB  # true-peak ceiling, dBTP
    keep_loudness: bool = False           # output at the input's loudness (as played on both channels)
    placement: Optional[str] = None       # with a separator: "model" / "mean"; None = model when shipped
    variety: float = DEFAULT_VARIETY      # with a separator: 0 = as real mixes are .. 1 = boldest
    reference: Optional[str] = None       # with a separator: a stereo file the proposals follow (app.reference)

    def resolved(self) -> "UpmixSettings":
        """``best`` replaced by the model it means, names checked; raises ParameterError."""
        method = best_method(self.models_dir) if self.method == "best" else self.method
        names = [m.name for m in list_models()]
        if method not in names:
            raise ParameterError(f"unknown method {method!r}; choose one of: best, {', '.join(names)}")
        if self.format is not None and self.format not in FORMATS:
            raise ParameterError(f"unknown format {self.format!r}; choose one of {', '.join(FORMATS)}")
        if self.renditions < 1:
            raise ParameterError(f"renditions must be at least 1 (got {self.renditions})")
        check_range("the true-peak ceiling", self.ceiling_db, CEILING_DB_RANGE, " dBTP")
        check_range("variety", self.variety, VARIETY_RANGE)
        placement = self.placement or core_placement.default_method(self.models_dir)
        if placement not in core_placement.PLACEMENT_METHODS:
            raise ParameterError(f"unknown placement {placement!r}; "
                                 f"choose one of {', '.join(core_placement.PLACEMENT_METHODS)}")
        sep = None if self.separator in (None, "", NO_SEPARATOR) else self.separator
        if sep is not None:
            backends = [b.name for b in separation.list_backends()]
            if sep not in backends:
                raise ParameterError(f"unknown separator {sep!r}; choose one of: none, {', '.join(backends)}")
        if self.reference is not None and (sep is None or placement != "model"):
            raise ParameterError("a reference needs a separator and the placement model")
        ref = None if self.reference is None else str(Path(self.reference).absolute())   # workers may run elsewhere
        return replace(self, method=method, separator=sep, placement=placement, reference=ref)

    @property
    def uses_session(self) -> bool:
        return self.separator not in (None, "", NO_SEPARATOR)

    def separator_settings(self) -> dict:
        settings = {}
        if self.sources is not None:
            settings["n_sources"] = self.sources
        if self.demucs_model is not None:
            settings["model"] = self.demucs_model
        return settings

    def output_settings(self):
        return output.OutputSettings(self.ceiling_db, True, self.keep_loudness)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Output:
    """One written rendition: the stereo file, and with a separator its project file and stems."""
    path: Path
    seed: int
    gain_db: float
    project: Optional[Path] = None
    stems: list[Path] = field(default_factory=list)
    plan: Optional[object] = None         # core.loudness.GainPlan: the output gain and why
    sources: list[dict] = field(default_factory=list)   # with a separator: {name, pan, width} per source
    reference: Optional[str] = None       # with a reference: "followed" or "not followed" (app.reference)

    def files(self) -> list[Path]:
        return [self.path] + ([self.project] if self.project else []) + list(self.stems)


@dataclass
class UpmixResult:
    method: str
    seconds: float
    outputs: list[Output]
    sources: list[str] = field(default_factory=list)   # "name pan +0.20 width 0.31" per source
    input_loudness: Optional[object] = None            # core.loudness.Loudness of the input
    dawproject: Optional[Path] = None                  # the DAWproject file, when asked for


def rendition_path(out: Path, seed: int, k: int) -> Path:
    """Where rendition ``k`` (seed ``seed``) goes: ``OUT`` for the first, ``OUT-seedN`` after it."""
    out = Path(out)
    return out if k == 0 else out.with_name(f"{out.stem}-seed{seed}{out.suffix}")


def upmix_file(input, output, settings: UpmixSettings, *, project=None, overwrite: bool = False,
               user: Optional["Settings"] = None, progress: Optional[ProgressFn] = None,
               cancel=None, dawproject=None) -> UpmixResult:
    """Upmix ``input`` to ``output`` with ``settings`` (resolved here when needed).

    ``project``: with a separator, where the first rendition's project goes (default: beside the
    output, ``OUT.soundstage.json``). ``overwrite``: replace existing outputs. ``user``: the user's
    settings (folders, caches; default: resolved from the environment); ``settings.models_dir``,
    when given, overrides its model folder. ``dawproject``: with a separator, also write the first
    rendition as a DAWproject file there. Errors: AudioError (the input or an output),
    ParameterError (settings, models), Cancelled.
    """
    user = user if user is not None else Settings.resolve()
    if settings.models_dir is None:
        settings = replace(settings, models_dir=str(user.models_dir))
    else:
        user = user.with_(models_dir=Path(settings.models_dir))
    s = settings.resolved()
    output = Path(output)
    if s.uses_session:
        files, folders = session_outputs(output, s, project=project, dawproject=dawproject)
        audio.check_outputs(files, folders, inputs=[input], overwrite=overwrite)      # before any work
        if s.reference is not None:
            audio.check_input(s.reference)
        with audio.committing([p for _, p in files], [p for _, p in folders]):
            return _session_chain(input, output, s, user, project=project, overwrite=overwrite, progress=progress,
                                  cancel=cancel, dawproject=dawproject)
    if dawproject is not None:
        raise ParameterError("a DAWproject file needs sources: choose a separator")
    fmt = s.format or audio.format_for_path(output)
    audio.check_extension(output, fmt)
    mono = audio.load_mono(input)                  # decoded, downmixed, resampled in blocks
    model = load_model(s.method, s.models_dir)
    params = model.predict(mono, seed=s.seed, temperature=s.temperature, guidance=s.guidance,
                           progress=Reporter(progress, f"predict {s.method}", 0.0, 0.6), cancel=cancel)
    loud_in = measure_stream(mono)                 # as core.loudness.measure, block by block
    plan = write_decoded(output, mono, params, fmt=fmt, ceiling_db=s.ceiling_db, mono_compatible=s.mono_compatible,
                         target_lufs=loud_in.lufs_played if s.keep_loudness else None, overwrite=overwrite,
                         inputs=[input], progress=Reporter(progress, "decode", 0.6, 0.4), cancel=cancel)
    return UpmixResult(s.method, len(mono) / SAMPLE_RATE, [Output(output, s.seed, plan.gain_db, plan=plan)],
                       input_loudness=loud_in)


def write_decoded(output, mono, params, *, fmt: str, ceiling_db: float = -1.0, mono_compatible: bool = False,
                  target_lufs: Optional[float] = None, overwrite: bool = False, inputs=(),
                  progress: Optional[ProgressFn] = None, cancel=None):
    """Decode ``mono`` [shape=(n,)] with ``params`` into the stereo file ``output`` chunk by chunk,
    with one output gain (:func:`core.loudness.plan_gain`: to ``target_lufs`` when given, never
    past the ``ceiling_db`` true peak); returns the :class:`core.loudness.GainPlan`.

    Memory stays at a few chunks whatever the length: the stream is decoded twice, first to
    measure (true peak and loudness, block by block), then to scale and write as it comes (the PS
    decoder costs far less than prediction). The file equals decoding, planning and writing the
    whole signal at once, byte for byte."""
    n = len(mono)
    tp = TruePeakStream(n, 2)
    ls = LoudnessStream(n, 2) if n >= 0.4 * SAMPLE_RATE else None
    for start, block in streaming.decode_stream(mono, params, mono_compatible=mono_compatible,
                                      progress=Reporter(progress, "measure", 0.0, 0.5), cancel=cancel):
        tp.push(block)
        if ls is not None:
            ls.push(block, final=start + len(block) >= n)
    peak, lufs = tp.result(), (ls.result() if ls is not None else None)
    want = 0.0                                        # as core.loudness.plan_gain
    if target_lufs is not None and lufs is not None and math.isfinite(lufs) and math.isfinite(target_lufs):
        want = target_lufs - lufs
    room = ceiling_db - peak if math.isfinite(peak) else math.inf
    plan = GainPlan(float(min(want, room)), float(peak), float(ceiling_db), True, lufs, target_lufs)
    g = np.float32(10 ** (plan.gain_db / 20))
    with audio.AtomicWriters([output], fmt=fmt, channels=2, overwrite=overwrite, inputs=inputs) as (w,):
        for _start, block in streaming.decode_stream(mono, params, mono_compatible=mono_compatible,
                                           progress=Reporter(progress, "write", 0.5, 0.5), cancel=cancel):
            block *= g
            w.write(block)
    return plan


def _session_chain(input, output: Path, s: UpmixSettings, user, *, project, overwrite, progress,
                   cancel, dawproject=None) -> UpmixResult:
    """Separate, predict, place, render and export every rendition with its project.

    The PS model's parameters depend on the recording alone, so they are sampled in a second
    thread while the recording is separated (both are single-threaded: on two cores they overlap),
    and the input's loudness measured after them.
    Every rendition keeps that sample's per-band detail (:attr:`app.plans.Rendition.detail`) and
    samples its own places: another rendition costs a placement and a mix, not a prediction. The
    session is headless (``pairs`` False): each rendition is mixed in the STFT domain from its tile
    parameters, all renditions in one pass (:func:`_export_together`), no per-source stereo pair
    is made unless stems or a DAWproject are asked for, and each file equals ``soundstage render``
    of its project bit for bit."""

    session = app_session.Session(user)
    session.memory.keep_bytes = 0           # nothing is undone here: only the current renders in memory
    session.pairs = False                   # nothing plays here
    session.open(input)
    # the sources' stems and decorrelated copies on disk (core.spill), walked chunk by chunk: a
    # chunk of each resident, whatever the length (an hour is 635 MB a signal)
    with spill.spilling(session.settings.render_spill_dir):
        session.mono = spill.to_disk(session.mono)        # the input too (the same values), its pages
        return _chain_steps(session, input, output, s, project=project, cancel=cancel,  # dropped as work goes on
                            progress=spill.Releasing(progress, session.mono), overwrite=overwrite, dawproject=dawproject)


def _chain_steps(session, input, output: Path, s: UpmixSettings, *, project, overwrite, progress, cancel,
                 dawproject) -> UpmixResult:
    session.model = s.method
    session.set_mono_compatible(s.mono_compatible, record=False)
    session.set_output(s.output_settings())
    first = plans.Rendition(s.seed, s.method, s.temperature, s.guidance, s.placement, s.variety)
    failed = threading.Event()
    with ThreadPoolExecutor(1, thread_name_prefix="predict") as pool:
        job = pool.submit(session.predict, first, cancel=_Either(cancel, failed), elsewhere=True)
        pool.submit(session.stage.input_loudness, session.mono)     # then the input's loudness (kept)
        try:
            session.separate(s.separator, s.separator_settings(),
                             progress=Reporter(progress, f"separate {s.separator}"), cancel=cancel)
        except BaseException:
            failed.set()                    # the prediction stops at its next check
            raise
        session.keep_params(first, job.result())
    spill.release(session.mono)
    _trim_heap()                            # formation's and the sampler's temporaries, freed on their threads
    if s.reference is not None:             # analysed with the separator the recording used
        follow_file(session, s.reference, progress=Reporter(progress, "reference"), cancel=cancel)
    if s.stems or dawproject is not None:
        outputs, dawproject = _export_each(session, output, s, project=project, overwrite=overwrite,
                                           progress=progress, cancel=cancel, dawproject=dawproject)
    else:
        outputs = _export_together(session, output, s, project=project, overwrite=overwrite, progress=progress,
                                   cancel=cancel)
    names = [f"{src.name} pan {p.pan:+.2f} width {p.width:.2f}" for src, p in zip(session.sources, session.placements)]
    return UpmixResult(s.method, session.seconds, outputs, names, input_loudness=session.stage.input_loudness(session.mono),
                       dawproject=dawproject)


def _new_rendition(session, s: UpmixSettings, k: int, progress, cancel) -> int:
    return session.new_rendition(s.seed + k, model=s.method, temperature=s.temperature, guidance=s.guidance,
                                 placement=s.placement, variety=s.variety, detail=s.seed,
                                 progress=Reporter(progress, f"rendition {k + 1}"), cancel=cancel)


def _output(session, res, seed: int) -> Output:
    placed = [{"name": src.name, "pan": p.pan, "width": p.width} for src, p in zip(session.sources, session.placements)]
    r = session.renditions[session.current] if session.current >= 0 else None
    followed = None if r is None or r.reference is None else \
        ("followed" if rendition_follows(session, r) else "not followed")      # the gallery's answer, said here
    return Output(res.path, seed, res.gain_db, res.project, list(res.stems), plan=res.plan, sources=placed,
                  reference=followed)


def _export_each(session, output: Path, s: UpmixSettings, *, project, overwrite, progress, cancel, dawproject):
    """Every rendition planned and exported in turn (with stems or a DAWproject: each needs the
    sources' stereo pairs)."""
    outputs = []
    for k in range(s.renditions):
        seed = s.seed + k
        _new_rendition(session, s, k, progress, cancel)
        dest = rendition_path(output, seed, k)
        res = export.export(session, dest, fmt=s.format, stems=s.stems, overwrite=overwrite,
                            project=project is None or k > 0)
        if project is not None and k == 0:
            session.export_settings = {"path": str(dest), "format": s.format}
            res.project = project_io.save_project(session, project)
        outputs.append(_output(session, res, seed))
        if dawproject is not None and k == 0:
            session.make_pairs()            # a track per source: its stereo pair
            dawproject = app_dawproject.write_dawproject(session, dawproject, overwrite=overwrite)
    return outputs, dawproject


def _export_together(session, output: Path, s: UpmixSettings, *, project, overwrite, progress, cancel):
    """Every rendition planned (places and tile parameters: cheap), then mixed in one pass
    (:func:`core.mixdown.mix_streams`: each source transformed once per chunk for all of them),
    each measured as it comes and kept in a temporary file; then each one's gain, file and project
    (:func:`app.export.write_mix`). Every file equals :func:`app.export.export` of its rendition,
    and so ``soundstage render`` of its project, bit for bit."""
    planned = []
    for k in range(s.renditions):
        index = _new_rendition(session, s, k, progress, cancel)
        planned.append((index, list(session.renders), list(session.placements)))
    _trim_heap()
    n = len(session.mono)
    meters = [GainMeter(n, 2) for _ in planned]
    spools = [export.MixSpool(session.settings.render_spill_dir) for _ in planned]
    outputs = []
    with contextlib.ExitStack() as stack:
        for sp in spools:
            stack.enter_context(sp)
        rep = Reporter(progress, "mix", 0.0, 0.8)
        export.keep_measured(mixdown.mix_streams([p[1] for p in planned], [p[2] for p in planned],
                                                 mono_compatible=session.mono_compatible, cancel=cancel),
                             meters, spools, lambda done: report(rep, "mix", done, n))
        for k, ((index, _renders, _places), meter, spool) in enumerate(zip(planned, meters, spools)):
            check_cancel(cancel)
            seed = s.seed + k
            session.recall(index, record=False)           # its renders and places as planned: no work
            key = session.output_state()
            plan = session.stage.plan_meter(meter, session.mono)
            dest = rendition_path(output, seed, k)
            res = export.write_mix(session, dest, spool, plan, key, meter.true_peak_db(), fmt=s.format,
                                   overwrite=overwrite, project=project is None or k > 0)
            if project is not None and k == 0:
                session.export_settings = {"path": str(dest), "format": s.format}
                res.project = project_io.save_project(session, project)
            outputs.append(_output(session, res, seed))
    return outputs


def _trim_heap() -> None:
    """Hand the C heap's free pages back to the OS (glibc's ``malloc_trim``; elsewhere nothing).
    Between the chain's steps the threads' malloc arenas hold the freed temporaries of the step
    before (a song's worth of spectra and filter buffers) where the next step's allocations, made
    on other threads, do not reuse them: without this the peak memory grows step by step."""
    if _LIBC[0] is None:
        try:
            _LIBC[0] = ctypes.CDLL("libc.so.6") if sys.platform.startswith("linux") else False
        except OSError:
            _LIBC[0] = False
    if _LIBC[0] and hasattr(_LIBC[0], "malloc_trim"):
        _LIBC[0].malloc_trim(0)


_LIBC: list = [None]


class _Either:
    """Set when either event is (``None`` counts as never set): a cancel for a helper thread."""

    def __init__(self, a, b):
        self.a, self.b = a, b

    def is_set(self) -> bool:
        return bool((self.a is not None and self.a.is_set()) or (self.b is not None and self.b.is_set()))


def session_outputs(output: Path, s: UpmixSettings, *, project=None, dawproject=None):
    """Every output of a run with a separator, for :func:`core.audio.check_outputs`: the files
    (each rendition's audio and project file, ``project`` for the first when given, the
    DAWproject file) and the folders (each rendition's stems folder with ``stems``), as lists of
    ``(what, path)``."""
    files, folders = [], []
    for k in range(s.renditions):
        dest = rendition_path(output, s.seed + k, k)
        n = f"rendition {k + 1} " if k else ""
        files.append((f"{n}output", dest))
        files.append((f"{n}project file", Path(project) if (project is not None and k == 0)
                      else dest.with_suffix(".soundstage.json")))
        if s.stems:
            folders.append((f"{n}stems folder", dest.with_name(dest.stem + "-stems")))
    if dawproject is not None:
        files.append(("DAWproject file", Path(dawproject)))
    return files, folders
