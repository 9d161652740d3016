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

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from app.chain import UpmixSettings

from .batch_manifest import Manifest
from .batch_plan import (AUDIO_EXTENSIONS, LOCK, MANIFEST, BatchError, Plan, Task, _stat, file_sha256, find_audio,
                         output_claims, plan_batch)
import logging
from core.errors import AudioError, ParameterError
from app.chain import upmix_file
from core.models.base import load_count
from core import lazy
fcntl = lazy.module("fcntl")        # POSIX only: loaded when a batch locks its folder (the GUI runs on Windows too)
addressing = lazy.module("distributed.comm.addressing")
asyncio = lazy.module("asyncio")
audio = lazy.module("core.audio")
dask = lazy.module("dask")
distributed = lazy.module("distributed")
distributed_comm = lazy.module("distributed.comm")
distributed_security = lazy.module("distributed.security")
resource = lazy.module("resource")  # POSIX only
utils = lazy.module("dask.utils")

__all__ = ["AUDIO_EXTENSIONS", "MANIFEST", "Task", "Plan", "Summary", "BatchError", "find_audio", "plan_batch",
           "Manifest", "process_file", "run_batch", "file_sha256", "clock", "output_claims", "probe_scheduler",
           "check_scheduler_address"]

# --- the worker side -------------------------------------------------------------------------------
def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, (AudioError, ParameterError)):
        return text
    return f"{type(exc).__name__}: {text}"


def process_file(job: dict) -> dict:
    """Upmix one file (runs on a Dask worker). Never raises for a bad file: the result says
    ``done`` with the outputs' sizes and checksums, or ``failed`` with one line of reason."""
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
        res.update(state="failed", error=_describe(exc).removeprefix(f"{inp}: "),
                   input_error=isinstance(exc, AudioError) and exc.path == str(inp))
    res["wall_s"] = round(time.perf_counter() - t0, 3)
    res["model_loads"] = load_count()
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
            fcntl.flock(self.f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.f.close()
            raise BatchError(f"{self.path.parent}: another batch is writing to this folder") from None
        self.f.write(f"{os.getpid()}\n")
        self.f.flush()
        return self

    def __exit__(self, *exc):
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

    n = workers or os.cpu_count() or 1
    try:
        security = distributed_security.Security.temporary()
    except ImportError:
        raise BatchError("the local Dask cluster needs the 'cryptography' package for its TLS credentials "
                         "(pip install cryptography)") from None
    # a file that kills its worker (out of memory) is tried on one more worker, then reported
    dask.config.set({"distributed.scheduler.allowed-failures": 1})
    return distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                    protocol="tls://",
                        security=security, memory_limit=memory_limit or "auto", silence_logs=logging.ERROR,
                        dashboard_address="127.0.0.1:0" if dashboard else None)


def check_scheduler_address(address: str) -> None:
    """A Dask scheduler address (``tcp://HOST:PORT``, ``tls://...``), else :class:`BatchError`."""
    try:
        addressing.parse_address(address, strict=True)
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

    check_scheduler_address(address)

    async def ask():
        comm = await distributed_comm.connect(address, timeout=timeout,
                                              **distributed_security.Security().get_connection_args("client"))
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
    try:
        n = utils.parse_bytes(value)
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
    settings (core.settings.Settings: Demucs model folder, stem cache...) the workers use.

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
    made = audio.missing_folders(out_dir)
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
    if not scheduler:
        cluster = _local_cluster(workers, memory_limit, _has_bokeh())
        return distributed.Client(cluster, security=cluster.security), cluster
    probe_scheduler(scheduler, timeout=connect_timeout)
    try:
        client = distributed.Client(scheduler, timeout=f"{connect_timeout}s")
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
        for fut in distributed.as_completed(futures):
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

