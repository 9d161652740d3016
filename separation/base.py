"""The interface every source-extraction backend implements, and the backend registry.

A backend is a facade (like demucs' ``api.Separator``)::

    backend = separation.get("formation", n_sources=4)
    sources = backend.separate(mono, progress=cb, cancel=event)

``mono`` is float32 at 44.1 kHz [shape=(n,)]. The returned sources are mono stems of the same
length whose sum is the input (a residual is a source too). Long work reports
:class:`core.progress.Progress` through ``progress`` and checks ``cancel`` between chunks,
raising :class:`core.errors.Cancelled`.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Optional, Protocol

import numpy as np

from core.errors import ParameterError
from core.progress import ProgressFn
import importlib

__all__ = ["Source", "Backend", "register", "list_backends", "get", "PALETTE", "colour_for", "BackendInfo"]

# Distinct, readable on a dark background (Okabe-Ito inspired, extended to 10).
PALETTE = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2",
           "#D55E00", "#CC79A7", "#8DD3C7", "#BEBADA", "#FB8072"]
RESIDUAL_COLOUR = "#9A9A9A"


def colour_for(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


@dataclass
class Source:
    """One sound source: a name, its mono stem [shape=(n,), float32] and a display colour.

    ``kind`` is "source" (found by clustering), "stem" (a separation model's stem) or
    "residual" (what nothing else explains)."""
    name: str
    audio: np.ndarray
    colour: str = PALETTE[0]
    kind: str = "source"
    meta: dict = field(default_factory=dict)


class Backend(Protocol):
    name: str

    def separate(self, audio: np.ndarray, *, progress: Optional[ProgressFn] = None,
                 cancel: Optional[threading.Event] = None) -> list[Source]: ...


@dataclass(frozen=True)
class BackendInfo:
    name: str
    label: str
    description: str
    factory: Callable[..., Backend]
    available: Callable[[], tuple[bool, str]]


_REGISTRY: dict[str, BackendInfo] = {}


def register(name: str, *, label: str, description: str, factory: Callable[..., Backend],
             available: Callable[[], tuple[bool, str]] = lambda: (True, "")) -> None:
    _REGISTRY[name] = BackendInfo(name, label, description, factory, available)


def list_backends() -> list[BackendInfo]:
    """All registered backends (available or not; ask ``info.available()``), built-in ones first in
    a fixed order (formation, the default, then demucs) whatever the import order was."""
    _load_builtin()
    order = {"formation": 0, "demucs": 1}
    return sorted(_REGISTRY.values(), key=lambda i: order.get(i.name, 2))


def get(name: str, **settings) -> Backend:
    """Instantiate backend ``name`` with its settings."""
    _load_builtin()
    if name not in _REGISTRY:
        raise ParameterError(f"unknown separation backend {name!r}; available: {', '.join(_REGISTRY) or 'none'}")
    return _REGISTRY[name].factory(**settings)


def _load_builtin() -> None:
    # Import backends lazily so that `import separation` stays light; each module registers itself.
    for mod in ("separation.formation", "separation.demucs_backend"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise


def check_sum(audio: np.ndarray, sources: list[Source]) -> float:
    """Relative error ||sum(sources) - audio|| / ||audio|| (0 for silence)."""
    total = np.sum([s.audio.astype(np.float64) for s in sources], axis=0)
    den = float(np.linalg.norm(audio))
    return float(np.linalg.norm(total - audio)) / den if den > 0 else float(np.linalg.norm(total))
