"""The batch manifest: ``OUT_DIR/soundstage-batch.jsonl``, append-only, the last line of a file
wins (see :mod:`app.batch`)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

from app.chain import UpmixSettings

from .batch_plan import MANIFEST, MANIFEST_VERSION, BatchError, _stat, file_sha256
from core import lazy
audio = lazy.module("core.audio")

__all__ = ["Manifest"]


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
        with audio.replacing(self.path) as tmp, open(tmp, "w", encoding="utf-8") as f:
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
