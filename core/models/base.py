"""The interface of every PS prediction model, and the model registry.

A model proposes PS parameters for a whole mono recording::

    model = load_model("ps-mtm")
    params = model.predict(mono, seed=7, temperature=None, guidance=None, progress=cb, cancel=ev)

``mono`` is float32 at 44.1 kHz [shape=(n,)]; the result is a :class:`core.ps.PSParams` with
``core.stft.n_frames(n)`` frames. ``temperature`` / ``guidance`` of None mean the model's
defaults; deterministic models ignore ``seed``. The same seed gives exactly the same result.
Models load their trained files from ``resources/models/`` (or ``models_dir``) once; ``load_model``
caches instances per (name, folder).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Protocol

import numpy as np

from ..errors import ParameterError
from ..progress import ProgressFn
from ..ps import PSParams

__all__ = ["PSModel", "ModelInfo", "register_model", "list_models", "load_model", "models_dir", "load_count"]


def models_dir() -> Path:
    """The folder of shipped model files: <repo>/resources/models."""
    return Path(__file__).resolve().parents[2] / "resources" / "models"


class PSModel(Protocol):
    name: str
    generative: bool

    def predict(self, mono: np.ndarray, *, seed: int = 0, temperature: Optional[float] = None,
                guidance: Optional[float] = None, progress: Optional[ProgressFn] = None,
                cancel: Optional[threading.Event] = None) -> PSParams: ...


@dataclass(frozen=True)
class ModelInfo:
    name: str
    label: str
    description: str
    loader: Callable[[Path], PSModel]          # folder -> model
    available: Callable[[Path], tuple[bool, str]]  # folder -> (ok, reason when not)


_REGISTRY: dict[str, ModelInfo] = {}
_CACHE: dict[tuple[str, str], PSModel] = {}
_LOCK = threading.Lock()
_LOADS = [0]   # model files loaded by this process (batch workers report it: once per worker)
_BUILTIN = ("core.models.baselines", "core.models.psnn", "core.models.mtm", "core.models.reg", "core.models.ar")


def register_model(name: str, *, label: str, description: str, loader: Callable[[Path], PSModel],
                   available: Callable[[Path], tuple[bool, str]] = lambda d: (True, "")) -> None:
    _REGISTRY[name] = ModelInfo(name, label, description, loader, available)


def _load_builtin() -> None:
    import importlib
    for mod in _BUILTIN:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise


def list_models() -> list[ModelInfo]:
    _load_builtin()
    return list(_REGISTRY.values())


def load_model(name: str, folder: Optional[Path] = None) -> PSModel:
    """The model ``name`` loaded from ``folder`` (default: shipped models), cached."""
    _load_builtin()
    if name not in _REGISTRY:
        raise ParameterError(f"unknown PS model {name!r}; available: {', '.join(_REGISTRY)}")
    folder = Path(folder) if folder is not None else models_dir()
    key = (name, str(folder))
    with _LOCK:
        if key not in _CACHE:
            info = _REGISTRY[name]
            ok, why = info.available(folder)
            if not ok:
                raise ParameterError(f"model {name!r} is not available: {why}")
            _CACHE[key] = info.loader(folder)
            _LOADS[0] += 1
        return _CACHE[key]


def load_count() -> int:
    """How many models this process has loaded from files (the cache's misses)."""
    return _LOADS[0]
