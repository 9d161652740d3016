"""Planning a batch: the audio files under IN_DIR, what each one writes under OUT_DIR, and which
are done already (see :mod:`app.batch`)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from app.chain import UpmixSettings
from core.hashing import sha256_file
import stat
from app.chain import rendition_path
from core import lazy
soundfile = lazy.module("soundfile")

if TYPE_CHECKING:
    from .batch_manifest import Manifest

__all__ = ["AUDIO_EXTENSIONS", "MANIFEST", "LOCK", "MANIFEST_VERSION", "BatchError", "file_sha256", "find_audio",
           "Task", "Plan", "output_claims", "plan_batch"]


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
    try:
        info = soundfile.info(str(path))
        return float(info.frames) / float(info.samplerate) if info.samplerate > 0 else 0.0
    except Exception:  # the worker reports why the file is bad
        return 0.0


def output_claims(out_rel: Path, settings: UpmixSettings) -> list[str]:
    """Every path (relative to OUT_DIR, POSIX) a task writing ``out_rel`` may write: each
    rendition's audio, with a separator its project file, with ``stems`` its stems folder."""
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
