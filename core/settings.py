"""The user's settings: one object, resolved once, passed down.

Every folder and knob that is the user's choice rather than a project's lives here: the data folder
(training and evaluation music), the stem cache (folder and size limit), the Demucs model folder,
the PS model folder and torch's thread count. :meth:`Settings.resolve` takes each value from the
first place that sets it:

1. the command line (``--models-dir``, ``--demucs-models``, ``--cache-dir`` ...),
2. the environment (``SOUNDSTAGE_MODELS``, ``SOUNDSTAGE_DEMUCS_MODELS``, ``SOUNDSTAGE_CACHE_DIR`` ...),
3. the desktop app's stored preferences (a plain mapping the UI reads from QSettings),
4. the defaults (the shipped models, platformdirs' user cache, ``~/.cache/soundstage-data``).

The object is frozen; sessions, the upmix chain and the backends receive it (or the values they
need) as arguments; a backend built without them takes :meth:`Settings.resolve`'s. This module is
the only reader of ``os.environ`` (a test keeps it so). Project files never carry these values: a project
says *what* to compute, the user's settings say *where* things are.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping, Optional

from .errors import ParameterError
import sys
from resources import models_folder
from core import lazy
platformdirs = lazy.module("platformdirs")

__all__ = ["Settings", "ENV", "STORED", "has_display", "torch_hub_dir", "training_cache_dir"]

# field -> environment variable
ENV = {
    "data_dir": "SOUNDSTAGE_DATA",
    "cache_dir": "SOUNDSTAGE_CACHE_DIR",
    "cache_max_mb": "SOUNDSTAGE_CACHE_MAX_MB",
    "demucs_models": "SOUNDSTAGE_DEMUCS_MODELS",
    "models_dir": "SOUNDSTAGE_MODELS",
    "torch_threads": "SOUNDSTAGE_TORCH_THREADS",
}
# field -> the desktop app's preference key (QSettings)
STORED = {
    "cache_dir": "cache/dir",
    "cache_max_mb": "cache/size_mb",
    "demucs_models": "demucs/models_dir",
    "models_dir": "models/dir",
    "torch_threads": "models/torch_threads",
}


def _shipped_models() -> Path:
    return models_folder()


def _user_cache() -> Path:
    return Path(platformdirs.user_cache_dir("soundstage"))


@dataclass(frozen=True)
class Settings:
    """Where things are and how much the app may use (see the module docstring).

    ``cache_dir`` is the cache root (stems go to ``cache_dir/stems``); ``cache_max_mb`` bounds the
    stem cache (0 keeps nothing); ``demucs_models`` None means Demucs' download caches;
    ``models_dir`` holds the PS and placement model files."""
    data_dir: Path
    cache_dir: Path
    cache_max_mb: float
    demucs_models: Optional[Path]
    models_dir: Path
    torch_threads: int
    sources: tuple = ()          # where each value came from, for `soundstage --version -v` / About

    @classmethod
    def defaults(cls) -> "Settings":
        return cls.resolve(env={})

    @classmethod
    def resolve(cls, cli: Optional[Mapping[str, Any]] = None, *, env: Optional[Mapping[str, str]] = None,
                stored: Optional[Mapping[str, Any]] = None) -> "Settings":
        """Each field from ``cli`` (field name -> value, None = not given), else ``env`` (default
        ``os.environ``), else ``stored`` (preference key -> value), else the default."""
        cli = cli or {}
        env = os.environ if env is None else env
        stored = stored or {}
        values, origin = {}, []
        for f in fields(cls):
            if f.name == "sources":
                continue
            raw, where = None, "default"
            if cli.get(f.name) not in (None, ""):
                raw, where = cli[f.name], "command line"
            elif env.get(ENV[f.name]) not in (None, ""):
                raw, where = env[ENV[f.name]], ENV[f.name]
            elif f.name in STORED and stored.get(STORED[f.name]) not in (None, ""):
                raw, where = stored[STORED[f.name]], "preferences"
            values[f.name] = _parse(f.name, raw, where)
            origin.append((f.name, where))
        return cls(**values, sources=tuple(origin))

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    @property
    def stem_cache_dir(self) -> Path:
        return self.cache_dir / "stems"

    @property
    def render_spill_dir(self) -> Path:
        """Where the auto renders of long recordings are mapped on files (unlinked at once:
        nothing stays there) instead of being held in RAM."""
        return self.cache_dir / "renders"

    @property
    def cache_max_bytes(self) -> int:
        return int(self.cache_max_mb * 1024 ** 2)

    def backend_options(self, backend: str) -> dict:
        """The user-level options of separation ``backend`` (folders, cache): they override whatever
        a project's backend settings say."""
        if backend == "demucs":
            return {"models_dir": self.demucs_models, "cache_dir": self.stem_cache_dir,
                    "cache_max_bytes": self.cache_max_bytes}
        if backend == "formation":
            return {"cache_dir": self.stem_cache_dir, "cache_max_bytes": self.cache_max_bytes}
        return {}

    def describe(self) -> list[str]:
        where = dict(self.sources)
        return [f"{f.name}: {getattr(self, f.name)} ({where.get(f.name, 'default')})"
                for f in fields(self) if f.name != "sources"]


def _parse(name: str, raw, where: str):
    if raw is None:
        return {
            "data_dir": lambda: Path.home() / ".cache" / "soundstage-data",
            "cache_dir": _user_cache,
            "cache_max_mb": lambda: 4096.0,
            "demucs_models": lambda: None,
            "models_dir": _shipped_models,
            "torch_threads": lambda: 1,
        }[name]()
    if name in ("data_dir", "cache_dir", "demucs_models", "models_dir"):
        return Path(str(raw)).expanduser()
    try:
        value = float(raw) if name == "cache_max_mb" else int(raw)
    except (TypeError, ValueError):
        raise ParameterError(f"{name.replace('_', ' ')} from {where}: {raw!r} is not a number") from None
    if name == "cache_max_mb" and not 0 <= value < 1e9:
        raise ParameterError(f"stem cache size from {where} must be >= 0 MB, got {raw!r}")
    if name == "torch_threads" and not 1 <= value <= 1024:
        raise ParameterError(f"torch threads from {where} must be at least 1, got {raw!r}")
    return value


# --- other things the environment says (this module is the only reader of os.environ) -------------

def has_display(environ: Optional[Mapping[str, str]] = None) -> bool:
    """Whether a desktop window can open (a display, or an offscreen Qt platform)."""
    env = os.environ if environ is None else environ
    if env.get("QT_QPA_PLATFORM", "").split(":")[0] in ("offscreen", "minimal", "vnc", "eglfs", "linuxfb"):
        return True
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def torch_hub_dir() -> Path:
    """``torch.hub.get_dir()`` as torch computes it when no ``set_dir`` was called (``$TORCH_HOME``,
    else ``$XDG_CACHE_HOME/torch``, + ``/hub``), without importing torch."""
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(os.path.expanduser(home)) / "hub"


def training_cache_dir(kind: str) -> Path:
    """Where training keeps its caches: ``train`` (PS training examples, ``$SOUNDSTAGE_TRAIN_CACHE``)
    , ``placement`` (the placement model's scenes, ``$SOUNDSTAGE_PLACEMENT_CACHE``), ``reference``
    (the reference matcher's pairs, ``$SOUNDSTAGE_REFERENCE_CACHE``) or ``detail`` (the detail calibration's
    sources and predictions, ``$SOUNDSTAGE_DETAIL_CACHE``); default ``~/.cache/soundstage-KIND``."""
    var = {"train": "SOUNDSTAGE_TRAIN_CACHE", "placement": "SOUNDSTAGE_PLACEMENT_CACHE",
           "reference": "SOUNDSTAGE_REFERENCE_CACHE", "detail": "SOUNDSTAGE_DETAIL_CACHE"}[kind]
    return Path(os.environ.get(var) or Path.home() / ".cache" / f"soundstage-{kind}").expanduser()


def child_environment(path_first) -> dict:
    """This process's environment for a Python child process, with ``path_first`` (the project's
    root) first on its ``PYTHONPATH`` (:mod:`app.sample_process`)."""
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(path_first)] + rest))
