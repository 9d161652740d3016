"""Batch upmixing of a folder tree on Dask distributed: planning, the resumable manifest, the run.

``soundstage batch IN_DIR OUT_DIR`` (see :mod:`cli.commands.batch`) walks ``IN_DIR`` for audio
files, upmixes each one with :func:`app.chain.upmix_file` (the chain of ``soundstage upmix``,
so the outputs are byte-identical to it) and writes the stereo file plus its project file under
``OUT_DIR``, mirroring the folders.

* **Where it runs.** A local Dask cluster by default (one single-threaded worker process per
  core, memory divided between them), or an existing one (``scheduler="tcp://HOST:PORT"``; its
  workers need Soundstage installed and must see IN_DIR and OUT_DIR at the same paths). Models
  are loaded once per worker process: :func:`core.models.load_model` caches them, and the worker
  processes live for the whole batch.
* **Manifest.** ``OUT_DIR/soundstage-batch.jsonl``: a header with the settings, then one line
  per finished file (``done`` with the size and SHA-256 of every file written, or ``failed``
  with the reason), appended and flushed as results arrive; the last line for a file wins. A
  re-run skips files that are done (input unchanged, every output present with its recorded
  size and checksum), retries failures and re-makes missing or changed outputs. Only the
  process that drives the batch writes the manifest.
* **Safety.** Outputs are written atomically (temporary file, rename), so killing the batch loses
  at most the files in flight; their leftover temporary files are removed by the next run. A lock
  file keeps two batches out of the same OUT_DIR. One bad file (unreadable, empty, too short, a
  worker that dies on it) is recorded as failed with its reason and the rest go on.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from app.chain import UpmixSettings
from core.hashing import sha256_file

__all__ = ["AUDIO_EXTENSIONS", "MANIFEST", "Task", "Plan", "Summary", "BatchError", "find_audio", "plan_batch",
           "Manifest", "process_file", "run_batch", "file_sha256", "clock", "output_claims", "probe_scheduler",
           "check_scheduler_address"]

AUDIO_EXTENSIONS = (".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au",
                    ".snd", ".w64", ".caf", ".rf64")
MANIFEST = "soundstage-batch.jsonl"
LOCK = ".soundstage-batch.lock"
MANIFEST_VERSION = 1


class BatchError(Exception):
    """A batch that cannot start (bad folders, a busy or incompatible OUT_DIR, no scheduler)."""


file_sha256 = sha256_file      # (core.hashing)


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


# --- planning --------------------------------------------------------------------------------------
def find_audio(in_dir: Path, *, exclude: Optional[Path] = None,
               skipped: Optional[list] = None) -> list[Path]:
    """Audio files under ``in_dir`` by extension, recursively, sorted; hidden files and folders
    and anything inside ``exclude`` (an OUT_DIR inside IN_DIR) are left out. Names with an audio
    extension that are not regular files (a FIFO, a socket, a device, a broken link) are never
    opened (a FIFO would block the reader forever): they go to ``skipped`` as (path, reason)."""
    in_dir = Path(in_dir)
    exclude = exclude.resolve() if exclude is not None else None
    found = []
    for root, dirs, files in os.walk(in_dir):
        rootp = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and (exclude is None or (rootp / d).resolve() != exclude))
        for name in files:
            if not name.startswith(".") and name.lower().endswith(AUDIO_EXTENSIONS):
                path = rootp / name
                why = _not_regular(path)
                if why is None:
                    found.append(path)
                elif skipped is not None:
                    skipped.append((path, why))
    if skipped is not None:
        skipped.sort()
    return sorted(found)


def _not_regular(path: Path) -> Optional[str]:
    """None for a regular file (links followed), else why it is skipped."""
    import stat
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a broken link"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a file")
    return f"not a regular file: {kind}"


@dataclass
class Task:
    """One input file and where its outputs go (paths relative to IN_DIR / OUT_DIR)."""
    rel: str
    input: Path
    output: Path
    seconds: float = 0.0          # from the file header; 0 when it cannot be read
    reason: str = ""              # why it is (re)done: new, failed before, output missing, ...
    claims: list = field(default_factory=list)   # every path it may write, relative to OUT_DIR

    def to_job(self, settings: UpmixSettings, out_dir: Path, user=None) -> dict:
        return {"rel": self.rel, "input": str(self.input), "output": str(self.output), "out_dir": str(out_dir),
                "settings": settings.to_dict(), "user": user}


@dataclass
class Plan:
    pending: list[Task]    # files to (re)make now
    done: list[str]               # rel paths already done with these settings
    total: int
    standing: list[tuple[str, str]] = field(default_factory=list)   # (rel, error): failed on an unchanged input
    skipped: list[tuple[str, str]] = field(default_factory=list)    # (rel, reason): not regular files


def _output_for(rel: Path, ext: str, clash: bool) -> Path:
    """``a/b/song.flac`` -> ``a/b/song.wav``; ``song-flac.wav`` when two inputs share a stem."""
    stem = f"{rel.stem}-{rel.suffix.lstrip('.').lower()}" if clash else rel.stem
    return rel.with_name(stem + ext)


def _audio_seconds(path: Path) -> float:
    import soundfile as sf
    try:
        info = sf.info(str(path))
        return float(info.frames) / float(info.samplerate) if info.samplerate > 0 else 0.0
    except Exception:  # the worker reports why the file is bad
        return 0.0


def output_claims(out_rel: Path, settings: UpmixSettings) -> list[str]:
    """Every path (relative to OUT_DIR, POSIX) a task writing ``out_rel`` may write: each
    rendition's audio, with a separator its project file, with ``stems`` its stems folder."""
    from app.chain import rendition_path
    claims = []
    for k in range(settings.renditions):
        p = rendition_path(out_rel, settings.seed + k, k)
        claims.append(p.as_posix())
        if settings.uses_session:
            claims.append(p.with_suffix(".soundstage.json").as_posix())
            if settings.stems:
                claims.append(p.with_name(p.stem + "-stems").as_posix() + "/")
    return claims


def plan_batch(in_dir: Path, out_dir: Path, settings: UpmixSettings, manifest: "Manifest", *,
               verify: bool = False, retry_failed: bool = False, force: bool = False) -> Plan:
    """Which files still need work: new ones, failures (except bad inputs that have not changed,
    unless ``retry_failed``), and done ones whose input changed or whose outputs are missing or
    differ from the manifest's checksums.

    Raises :class:`BatchError` before any work when two inputs would write the same output, or
    (without ``force``) when a file a pending task would write exists in OUT_DIR and this batch
    did not make it."""
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    skipped_paths: list = []
    files = find_audio(in_dir, exclude=out_dir, skipped=skipped_paths)
    ext = ".flac" if (settings.format or "wav24").startswith("flac") else ".wav"
    rels = [f.relative_to(in_dir) for f in files]
    stems: dict[Path, int] = {}
    for r in rels:
        stems[r.with_suffix("")] = stems.get(r.with_suffix(""), 0) + 1
    tasks, owner = [], {}
    for f, r in zip(files, rels):
        out_rel = _output_for(r, ext, stems[r.with_suffix("")] > 1)
        task = Task(r.as_posix(), f, out_dir / out_rel, claims=output_claims(out_rel, settings))
        for c in task.claims:
            if c in owner:
                raise BatchError(f"{in_dir / owner[c]} and {f} would both write {out_dir / c}; rename one of "
                                 f"them (nothing was rendered)")
            owner[c] = task.rel
        tasks.append(task)
    pending, done, standing = [], [], []
    for task in tasks:
        f = task.input
        why = manifest.needs_work(task.rel, f, out_dir, verify=verify, retry_failed=retry_failed)
        if why is None:
            done.append(task.rel)
            continue
        if why == "failed":
            standing.append((task.rel, manifest.entries[task.rel].get("error", "unknown error")))
            continue
        task.reason = why
        pending.append(task)
    if not force:
        made = manifest.made()
        for task in pending:
            for c in task.claims:
                p = out_dir / c
                if c in made or not os.path.lexists(p):
                    continue
                if c.endswith("/") and p.is_dir() and not any(p.iterdir()):
                    continue
                raise BatchError(f"{p} exists and this batch did not make it; move it away, choose another "
                                 f"output folder, or use --force to overwrite (nothing was rendered)")
    for task in pending:
        task.seconds = _audio_seconds(task.input)
    pending.sort(key=lambda t: -t.seconds)   # longest first: the last minutes are not one long file alone
    skipped = [(p.relative_to(in_dir).as_posix(), why) for p, why in skipped_paths]
    return Plan(pending, done, len(files), standing, skipped)


# --- manifest --------------------------------------------------------------------------------------
class Manifest:
    """The append-only record of a batch in OUT_DIR (JSON lines; the last line of a file wins)."""

    def __init__(self, out_dir: Path, settings: UpmixSettings):
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / MANIFEST
        self.settings = settings.to_dict()
        self.entries: dict[str, dict] = {}
        self._f = None

    def load(self, *, force: bool = False) -> "Manifest":
        """Read an existing manifest. Settings that differ from this batch's raise BatchError
        (the outputs were made otherwise), unless ``force``: then every file is made again."""
        if not self.path.exists():
            return self
        header, entries = None, {}
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:   # a line cut by a kill: that file was in flight
                    continue
                if rec.get("kind") == "header":
                    header = rec
                elif rec.get("kind") == "file" and "rel" in rec:
                    entries[rec["rel"]] = rec
        if header is None or header.get("version") != MANIFEST_VERSION:
            raise BatchError(f"{self.path}: not a Soundstage batch manifest this version can read; "
                             f"move it away or choose another output folder")
        if header.get("settings") != self.settings:
            if not force and any(e.get("state") == "done" for e in entries.values()):
                changed = sorted(k for k in set(header["settings"]) | set(self.settings)
                                 if header["settings"].get(k) != self.settings.get(k))
                raise BatchError(f"{self.out_dir} holds a batch made with other settings (different: "
                                 f"{', '.join(changed)}); choose another output folder, or use --force to make "
                                 f"every file again")
            entries = {}
        self.entries = entries
        return self

    def open(self) -> None:
        """Start appending: the file is rewritten compactly (header + the current entries)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        from core.audio import replacing
        with replacing(self.path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps({"kind": "header", "version": MANIFEST_VERSION, "settings": self.settings}) + "\n")
            for rec in self.entries.values():
                f.write(json.dumps(rec) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._f = open(self.path, "a", encoding="utf-8")

    def record(self, rec: dict) -> None:
        rec = {"kind": "file", **rec}
        self.entries[rec["rel"]] = rec
        self._f.write(json.dumps(rec) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def made(self) -> set:
        """Paths (relative to OUT_DIR) this batch made or claimed: the outputs of done files and
        the claims of every file it started (a run killed after a write still owns that file)."""
        out = set()
        for rec in self.entries.values():
            out.update(rec.get("claims", []))
            out.update(o["path"] for o in rec.get("outputs", []))
        return out

    def needs_work(self, rel: str, input_path: Path, out_dir: Path, *, verify: bool = False,
                   retry_failed: bool = False) -> Optional[str]:
        """None when ``rel`` is done and intact; ``"failed"`` when it failed on its unchanged
        input (an unreadable, empty or too short file fails the same way again; ``retry_failed``
        tries it anyway); otherwise why it must be (re)made."""
        rec = self.entries.get(rel)
        if rec is None:
            return "new"
        try:
            stat = list(_stat(input_path))
        except OSError:
            return "input unreadable"
        if rec.get("state") == "started":
            return "interrupted before"
        if rec.get("state") != "done":
            if rec.get("input_error") and stat == rec.get("input_stat") and not retry_failed:
                return "failed"
            return "failed before"
        if stat != rec.get("input_stat"):
            return "input changed"
        for out in rec.get("outputs", []):
            p = out_dir / out["path"]
            try:
                osize, omtime = _stat(p)
            except OSError:
                return f"output missing: {out['path']}"
            if osize != out["size"]:
                return f"output changed: {out['path']}"
            if verify or omtime != out["mtime_ns"]:
                if file_sha256(p) != out["sha256"]:
                    return f"output changed: {out['path']}"
        return None


# --- the worker side -------------------------------------------------------------------------------
def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    from core.errors import AudioError, ParameterError
    if isinstance(exc, (AudioError, ParameterError)):
        return text
    return f"{type(exc).__name__}: {text}"


def process_file(job: dict) -> dict:
    """Upmix one file (runs on a Dask worker). Never raises for a bad file: the result says
    ``done`` with the outputs' sizes and checksums, or ``failed`` with one line of reason."""
    from app.chain import upmix_file
    from core.models.base import load_count
    t0 = time.perf_counter()
    inp, out, out_dir = Path(job["input"]), Path(job["output"]), Path(job["out_dir"])
    res = {"rel": job["rel"], "worker_pid": os.getpid()}
    try:
        res["input_stat"] = list(_stat(inp))
        settings = UpmixSettings(**job["settings"])
        result = upmix_file(inp, out, settings, overwrite=True, user=job.get("user"))
        outputs = []
        for o in result.outputs:
            for p in o.files():
                size, mtime = _stat(p)
                outputs.append({"path": p.relative_to(out_dir).as_posix(), "size": size, "mtime_ns": mtime,
                                "sha256": file_sha256(p)})
        res.update(state="done", seconds=round(result.seconds, 3), outputs=outputs, method=result.method)
    except Exception as exc:
        from core.errors import AudioError
        res.update(state="failed", error=_describe(exc).removeprefix(f"{inp}: "),
                   input_error=isinstance(exc, AudioError) and exc.path == str(inp))
    res["wall_s"] = round(time.perf_counter() - t0, 3)
    res["model_loads"] = load_count()
    import resource          # POSIX only: imported where it is used (the GUI must start on Windows)
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)   # the worker's so far
    return res


# --- the driver ------------------------------------------------------------------------------------
@dataclass
class Summary:
    total: int = 0
    skipped: int = 0              # done by an earlier run
    done: int = 0                 # done by this run
    failed: list[tuple[str, str]] = field(default_factory=list)
    standing: list[tuple[str, str]] = field(default_factory=list)   # bad inputs not retried
    not_files: list[tuple[str, str]] = field(default_factory=list)  # audio names that are no regular files
    audio_seconds: float = 0.0    # audio made by this run
    wall_s: float = 0.0
    interrupted: bool = False
    workers: int = 0
    dashboard: Optional[str] = None
    results: list[dict] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        """Audio hours per wall-clock hour (= seconds of audio per second)."""
        return self.audio_seconds / self.wall_s if self.wall_s > 0 else 0.0

    def lines(self) -> list[str]:
        head = "batch interrupted" if self.interrupted else "batch finished"
        bad = len(self.failed) + len(self.standing)
        standing = f" ({len(self.standing)} not retried: unchanged bad inputs)" if self.standing else ""
        out = [f"{head}: {self.done} rendered, {self.skipped} already done, {bad} failed{standing}, "
               f"{self.total} audio files in all"]
        if self.workers:
            out.append(f"audio rendered {self.audio_seconds / 3600:.3f} h in {clock(self.wall_s)} on {self.workers} "
                       f"worker{'s' if self.workers != 1 else ''}: {self.throughput:.1f} audio hours per hour")
        for rel, why in self.failed + self.standing:
            out.append(f"  failed: {rel}: {why}")
        for rel, why in self.not_files:
            out.append(f"  skipped: {rel}: {why}")
        retryable = sum(1 for r in self.results if r.get("state") == "failed" and not r.get("input_error"))
        if self.interrupted:
            out.append("run the same command again to continue")
        elif retryable:
            out.append(f"run the same command again to retry {retryable} failed file{'s' if retryable > 1 else ''}")
        elif bad:
            out.append("bad inputs are not retried until they change (or with --retry-failed)")
        return out


def clock(s: float) -> str:
    """Seconds as m:ss, or h:mm:ss from an hour."""
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class _Lock:
    """An exclusive lock on OUT_DIR for the duration of a batch (fcntl; released if we die)."""

    def __init__(self, out_dir: Path):
        self.path = Path(out_dir) / LOCK

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(self.path, "w")
        try:
            import fcntl
            fcntl.flock(self.f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.f.close()
            raise BatchError(f"{self.path.parent}: another batch is writing to this folder") from None
        self.f.write(f"{os.getpid()}\n")
        self.f.flush()
        return self

    def __exit__(self, *exc):
        import fcntl
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()
        try:
            self.path.unlink()
        except OSError:
            pass


def _remove_leftovers(out_dir: Path) -> int:
    """Temporary files of writes cut short by a kill (``.NAME.*.part``)."""
    n = 0
    for root, _dirs, files in os.walk(out_dir):
        for name in files:
            if name.startswith(".") and name.endswith(".part"):
                try:
                    os.unlink(os.path.join(root, name))
                    n += 1
                except OSError:
                    pass
    return n


def _local_cluster(workers: Optional[int], memory_limit, dashboard: bool):
    """A local cluster on loopback that only this process can use: Dask's TLS with temporary
    credentials (a fresh CA and certificate, kept in memory and handed to the worker processes
    through their start-up pipe), and every connection must present that certificate. Another
    local user can connect to the port but cannot talk to the scheduler or the workers."""
    import logging

    import dask
    from distributed import LocalCluster
    from distributed.security import Security
    n = workers or os.cpu_count() or 1
    try:
        security = Security.temporary()
    except ImportError:
        raise BatchError("the local Dask cluster needs the 'cryptography' package for its TLS credentials "
                         "(pip install cryptography)") from None
    # a file that kills its worker (out of memory) is tried on one more worker, then reported
    dask.config.set({"distributed.scheduler.allowed-failures": 1})
    return LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1", protocol="tls://",
                        security=security, memory_limit=memory_limit or "auto", silence_logs=logging.ERROR,
                        dashboard_address="127.0.0.1:0" if dashboard else None)


def check_scheduler_address(address: str) -> None:
    """A Dask scheduler address (``tcp://HOST:PORT``, ``tls://...``), else :class:`BatchError`."""
    from distributed.comm.addressing import parse_address
    try:
        parse_address(address, strict=True)
        ok = ":" in address.split("://", 1)[1]
    except (ValueError, TypeError) as exc:
        ok, why = False, str(exc)
    else:
        why = "no port"
    if not ok:
        raise BatchError(f"--scheduler {address!r} is not a Dask scheduler address (tcp://HOST:PORT): {why}")


def probe_scheduler(address: str, *, timeout: float = 10.0) -> dict:
    """Ask the scheduler at ``address`` who it is; :class:`BatchError` (one line) when it cannot be
    reached or does not answer within ``timeout`` seconds (a peer that accepts the connection and
    stays silent would otherwise hang ``distributed.Client`` past its own timeout)."""
    import asyncio

    from distributed.comm import connect
    from distributed.security import Security
    check_scheduler_address(address)

    async def ask():
        comm = await connect(address, timeout=timeout, **Security().get_connection_args("client"))
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()
    try:
        info = asyncio.run(asyncio.wait_for(ask(), timeout))
    except (asyncio.TimeoutError, TimeoutError):
        raise BatchError(f"the Dask scheduler at {address} did not answer within {timeout:g} s") from None
    except Exception as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise BatchError(f"cannot reach the Dask scheduler at {address}: {text}") from None
    if not isinstance(info, dict) or info.get("type") != "Scheduler":
        raise BatchError(f"{address} answered, but it is not a Dask scheduler")
    return info


def _has_bokeh() -> bool:
    try:
        import bokeh  # noqa: F401
        return True
    except ImportError:
        return False


ProgressLine = Callable[[dict], None]


def memory_limit_bytes(value) -> Optional[int]:
    """A local worker's memory limit from ``--memory-limit``: None or "auto" (the machine's memory
    divided by the workers), else a size Dask reads ("4GB", "512MiB", 4e9) as bytes, over 0;
    anything else is a :class:`BatchError` before any work."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return None
    from dask.utils import parse_bytes
    try:
        n = parse_bytes(value)
    except (ValueError, TypeError):
        n = None
    if n is None or n <= 0:
        raise BatchError(f"--memory-limit {value!r} is not a memory size (e.g. 4GB, 512MiB, or auto)")
    return int(n)


def run_batch(in_dir, out_dir, settings: UpmixSettings, *, scheduler: Optional[str] = None,
              workers: Optional[int] = None, memory_limit=None, verify: bool = False, force: bool = False,
              retry_failed: bool = False, connect_timeout: float = 10.0,
              progress: Optional[ProgressLine] = None, on_start: Optional[Callable[[dict], None]] = None,
              user=None) -> Summary:
    """Run (or resume) a batch; returns the :class:`Summary`. ``progress`` gets a dict after every
    finished file (files / seconds done and in all, rate, ETA); ``on_start`` gets the plan and
    the cluster (workers, dashboard address) before the first file starts. Ctrl+C stops the
    batch cleanly (``Summary.interrupted``). ``force``: also overwrite files in OUT_DIR this batch
    did not make. ``connect_timeout``: seconds a ``scheduler`` has to answer. ``user``: the user's
    settings (app.settings.Settings: Demucs model folder, stem cache...) the workers use.

    A batch that cannot start (bad folders or settings, a scheduler that cannot be reached, no
    workers) raises :class:`BatchError` and leaves OUT_DIR as it was: the manifest is written only
    once the cluster is there, and an OUT_DIR this call made is removed again."""
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if not in_dir.is_dir():
        raise BatchError(f"{in_dir}: not a folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise BatchError(f"{out_dir}: exists and is not a folder")
    if in_dir.resolve() == out_dir.resolve():
        raise BatchError(f"{out_dir}: the output folder must differ from the input folder")
    if scheduler:
        check_scheduler_address(scheduler)
        if workers is not None or memory_limit is not None:
            raise BatchError("--workers and --memory-limit set up the local cluster; a --scheduler cluster has "
                             "its own workers")
    memory_limit = memory_limit_bytes(memory_limit)
    settings = settings.resolved()
    t0 = time.perf_counter()
    summary = Summary()
    from core.audio import missing_folders
    made = missing_folders(out_dir)
    started = False
    try:
        with _Lock(out_dir):
            manifest = Manifest(out_dir, settings).load(force=force)
            _remove_leftovers(out_dir)
            plan = plan_batch(in_dir, out_dir, settings, manifest, verify=verify, retry_failed=retry_failed,
                              force=force)
            summary.total, summary.skipped, summary.standing = plan.total, len(plan.done), plan.standing
            summary.not_files = plan.skipped
            if not plan.pending:
                started = True
                manifest.open()
                manifest.close()
                if on_start is not None:
                    on_start({"pending": 0, "skipped": summary.skipped, "total": summary.total, "workers": 0,
                              "dashboard": None, "seconds": 0.0, "standing": len(plan.standing)})
            else:
                client, cluster = _connect(scheduler, workers, memory_limit, connect_timeout)
                try:
                    started = True
                    manifest.open()
                    try:
                        _run_tasks(plan, settings, out_dir, manifest, summary, client, user=user,
                                   progress=progress, on_start=on_start)
                    finally:
                        manifest.close()
                finally:
                    client.close()
                    if cluster is not None:
                        cluster.close()
    except BaseException:
        if not started:                # nothing written: an OUT_DIR this call made goes again
            for d in reversed(made):
                try:
                    d.rmdir()
                except OSError:
                    break
        raise
    summary.wall_s = time.perf_counter() - t0
    return summary


def _connect(scheduler: Optional[str], workers: Optional[int], memory_limit: Optional[int],
             connect_timeout: float):
    """(client, local cluster or None): the ``scheduler``'s cluster with at least one worker, or
    a new local one; :class:`BatchError` when the scheduler cannot be reached or has no workers."""
    from distributed import Client
    if not scheduler:
        cluster = _local_cluster(workers, memory_limit, _has_bokeh())
        return Client(cluster, security=cluster.security), cluster
    probe_scheduler(scheduler, timeout=connect_timeout)
    try:
        client = Client(scheduler, timeout=f"{connect_timeout}s")
    except (OSError, TimeoutError) as exc:
        raise BatchError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    try:
        client.wait_for_workers(1, timeout=30)
    except TimeoutError:
        client.close()
        raise BatchError(f"the Dask cluster at {scheduler} has no workers (waited 30 s)") from None
    return client, None


def _run_tasks(plan: Plan, settings: UpmixSettings, out_dir: Path, manifest: Manifest, summary: Summary, client, *,
               user=None, progress, on_start) -> None:
    from distributed import as_completed
    workers_info = client.scheduler_info(n_workers=-1)["workers"].values()
    n_workers = len(workers_info)
    mem = [w.get("memory_limit") or 0 for w in workers_info]
    summary.workers = n_workers
    summary.dashboard = client.dashboard_link if _has_bokeh() else None
    total_s = sum(t.seconds for t in plan.pending)
    if on_start is not None:
        on_start({"pending": len(plan.pending), "skipped": summary.skipped, "total": summary.total,
                  "workers": n_workers, "dashboard": summary.dashboard, "seconds": total_s,
                  "standing": len(plan.standing), "memory_limit": min(mem) if mem and min(mem) > 0 else None})
    futures = {}
    for t in plan.pending:    # claimed before any write: a kill leaves the outputs owned by the batch
        manifest.record({"rel": t.rel, "state": "started", "claims": t.claims})
    for t in plan.pending:
        fut = client.submit(process_file, t.to_job(settings, out_dir, user), key=f"upmix-{t.rel}-{time.time_ns()}",
                            pure=False, priority=int(t.seconds))
        futures[fut] = t
    t_start = time.perf_counter()
    done_s, n_done = 0.0, 0
    try:
        for fut in as_completed(futures):
            task = futures[fut]
            try:
                res = fut.result()
            except Exception as exc:   # the worker died on this file (KilledWorker) or similar
                res = {"rel": task.rel, "state": "failed",
                       "error": f"the worker process died on this file ({type(exc).__name__}); out of memory?"}
            manifest.record({**{k: v for k, v in res.items() if k not in ("worker_pid", "model_loads", "peak_rss_mb")},
                             "claims": task.claims})
            summary.results.append(res)
            n_done += 1
            done_s += task.seconds
            if res["state"] == "done":
                summary.done += 1
                summary.audio_seconds += float(res.get("seconds", task.seconds))
            else:
                summary.failed.append((task.rel, res.get("error", "unknown error")))
            if progress is not None:
                el = time.perf_counter() - t_start
                frac = done_s / total_s if total_s > 0 else n_done / len(plan.pending)
                progress({"files": n_done, "files_total": len(plan.pending), "seconds": done_s,
                          "seconds_total": total_s, "rate": done_s / el if el > 0 else 0.0,
                          "failed": len(summary.failed), "last": task.rel, "state": res["state"],
                          "eta": el * (1 - frac) / frac if 0.02 < frac < 1 else None})
    except KeyboardInterrupt:
        summary.interrupted = True
        client.cancel(list(futures))

