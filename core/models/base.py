"""The interface of every PS prediction model, and the one registry of every model file.

The registry holds the PS models (kind "ps"), the source-level placement model (kind "placement",
:mod:`core.models.placement`) and the formation's grouping model (kind "grouping", registered by
:mod:`separation.grouping`): each with its files (a model card beside each in ``resources/models``),
one loader, one cache and one lock; :func:`model_files` gives the files whose checksums projects
record. (Demucs' weights are fetched and cached by :mod:`separation.demucs_weights`.)

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
from typing import TYPE_CHECKING, Callable, Optional, Protocol

import numpy as np

from ..errors import ParameterError
from ..progress import ProgressFn
import importlib
import pickle
import re
import json
from resources import models_folder
from ..settings import Settings
from dataclasses import asdict
from ..hashing import sha256_file
from core import lazy
audio = lazy.module("core.audio")
torch = lazy.module("torch")
if TYPE_CHECKING:                 # (core.ps pulls scipy; the registry stays light for the CLI)
    from ..ps import PSParams

__all__ = ["PSModel", "ModelInfo", "register_model", "list_models", "load_model", "models_dir", "load_count",
           "model_files", "file_available", "load_weights", "TorchModel", "register_file_model"]


def models_dir() -> Path:
    """The folder of shipped model files (``resources/models``, package data of any install)."""
    return models_folder()


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
    files: tuple[str, ...] = ()                # the file names it loads from its folder
    kind: str = "ps"                           # "ps", "placement", "grouping" or "reference"


_REGISTRY: dict[str, ModelInfo] = {}
_CACHE: dict[tuple[str, str], PSModel] = {}
_LOCK = threading.Lock()
_LOADS = [0]   # PS model files loaded by this process (batch workers report it: once per worker)
_BUILTIN = ("core.models.baselines", "core.models.psnn", "core.models.catalog", "core.models.placement",
            "core.models.reference_match")     # none imports torch: the torch models are declared in the catalog


def register_model(name: str, *, label: str, description: str, loader: Callable[[Path], PSModel],
                   available: Callable[[Path], tuple[bool, str]] = lambda d: (True, ""),
                   files: tuple[str, ...] = (), kind: str = "ps") -> None:
    _REGISTRY[name] = ModelInfo(name, label, description, loader, available, tuple(files), kind)


def file_available(folder, filename: str) -> tuple[bool, str]:
    """Whether a model's file ``filename`` is in ``folder``, with the reason when not."""
    p = Path(folder) / filename
    return (True, "") if p.is_file() else (False, f"model file {p} is missing (train it with "
                                                  f"`soundstage train` and export it there)")


def model_files(name: str, folder: Optional[Path] = None) -> list[Path]:
    """The files model ``name`` loads from ``folder`` (default: shipped models)."""
    _load_builtin()
    if name not in _REGISTRY:
        raise ParameterError(f"unknown model {name!r}; available: {', '.join(_REGISTRY)}")
    folder = Path(folder) if folder is not None else models_dir()
    return [folder / f for f in _REGISTRY[name].files]


def _load_builtin() -> None:
    for mod in _BUILTIN:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise


def list_models(kind: Optional[str] = "ps") -> list[ModelInfo]:
    """The registered models of ``kind`` (None: all)."""
    _load_builtin()
    return [m for m in _REGISTRY.values() if kind is None or m.kind == kind]


def load_model(name: str, folder: Optional[Path] = None) -> PSModel:
    """The model ``name`` loaded from ``folder`` (default: shipped models), cached."""
    _load_builtin()
    if name not in _REGISTRY:
        ps = [m.name for m in _REGISTRY.values() if m.kind == "ps"]
        raise ParameterError(f"unknown PS model {name!r}; available: {', '.join(ps)}")
    folder = Path(folder) if folder is not None else models_dir()
    key = (name, str(folder))
    with _LOCK:
        if key not in _CACHE:
            info = _REGISTRY[name]
            ok, why = info.available(folder)
            if not ok:
                raise ParameterError(f"model {name!r} is not available: {why}")
            _CACHE[key] = info.loader(folder)
            _LOADS[0] += info.kind == "ps"
        return _CACHE[key]


def load_weights(path, *, keys: tuple[str, ...] = ()) -> dict:
    """A model file or training checkpoint ``path`` read weights-only: tensors and plain
    containers, nothing that runs code. A pickle naming any function or class, a file torch
    cannot read, or one without ``keys`` raises :class:`ParameterError` with one line saying why
    (the user put the wrong file there; nothing in it ran)."""

    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ParameterError(f"{path}: no such file") from None
    except pickle.UnpicklingError as exc:
        named = re.search(r"GLOBAL (\S+)", str(exc))
        raise ParameterError(f"refusing to load {path}: it is not a plain weights file"
                             + (f" (it names {named.group(1)})" if named else "")
                             + "; model files are loaded weights-only, never as code") from None
    except (RuntimeError, EOFError, ValueError) as exc:       # truncated, not a torch file
        text = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ParameterError(f"{path}: not a readable model file ({text})") from None
    if not isinstance(blob, dict) or any(k not in blob for k in keys):
        raise ParameterError(f"{path}: not a Soundstage model file or checkpoint"
                             + (f" (expected {', '.join(keys)})" if keys else ""))
    return blob


class TorchModel:
    """A small trained torch network with its config dataclass, in one model file: fp16 weights
    (standardisation buffers ``*_mean`` / ``*_std`` kept in fp32), the config and an ``info`` dict
    (JSON), read weights-only (:func:`load_weights`). Subclasses set ``config`` (the dataclass,
    with ``from_dict``) and ``build`` (config -> ``nn.Module``); the placement model and the
    reference matcher are such models."""

    name = ""
    config: type = None

    def __init__(self, net, cfg, info: Optional[dict] = None, path: Optional[Path] = None):
        self.net, self.cfg, self.info, self.path = net.eval(), cfg, dict(info or {}), path
        self._lock = threading.Lock()

    @staticmethod
    def build(cfg):
        """The network of ``cfg`` (an ``nn.Module``): each subclass sets its own (abstract here)."""
        raise NotImplementedError("a TorchModel subclass sets build: config -> nn.Module")

    @classmethod
    def new(cls, cfg=None, seed: int = 0):
        """An untrained model of ``cfg`` (default config), its weights drawn with ``seed``."""
        cfg = cfg or cls.config()
        torch.manual_seed(seed)
        return cls(cls.build(cfg), cfg)

    @classmethod
    def load(cls, path: Path):
        """The model in file ``path`` (:class:`ParameterError` with one line when it is not one)."""
        ck = load_weights(path, keys=("config", "state"))
        cfg = cls.config.from_dict(ck["config"])
        net = cls.build(cfg)
        net.load_state_dict({k: v.float() for k, v in ck["state"].items()})
        return cls(net, cfg, json.loads(ck.get("info", "{}")), Path(path))

    def save(self, path: Path, info: Optional[dict] = None) -> None:
        """Write the model file (fp16 weights, config and ``info`` as JSON), atomically."""
        state = {k: (v.half() if v.is_floating_point() and not k.endswith(("_mean", "_std")) else v)
                 for k, v in self.net.state_dict().items()}
        with audio.replacing(Path(path)) as tmp:
            torch.save({"config": asdict(self.cfg), "state": state,
                        "info": json.dumps(info if info is not None else self.info)}, tmp)

    @property
    def sha256(self) -> Optional[str]:
        return sha256_file(self.path) if self.path is not None else None


def register_file_model(name: str, cls, file: str, *, label: str, kind: str, description: str,
                        train: str) -> None:
    """Register ``cls`` (a :class:`TorchModel`) kept in one ``file`` of the models folder; ``train``:
    the command that makes it, said when the file is missing."""
    def available(folder) -> tuple[bool, str]:
        path = Path(folder) / file
        return (True, "") if path.exists() else (False, f"{label.lower()} {path} not found (train it: {train})")

    register_model(name, label=label, kind=kind, files=(file,), available=available, description=description,
                   loader=lambda folder: cls.load(Path(folder) / file))


_THREADS: list[Optional[int]] = [None]


def set_default_threads(n: Optional[int]) -> None:
    """Torch threads for model inference in this process (the user's setting; None: the
    ``SOUNDSTAGE_TORCH_THREADS`` environment variable, else 1)."""
    _THREADS[0] = None if n is None else int(n)


def default_threads() -> int:
    if _THREADS[0]:
        return _THREADS[0]
    return Settings.resolve().torch_threads


def load_count() -> int:
    """How many models this process has loaded from files (the cache's misses)."""
    return _LOADS[0]
