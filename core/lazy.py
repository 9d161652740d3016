"""Modules loaded on first use, declared once at the top of the module that needs them.

Soundstage's command line must answer ``--help`` without loading torch, scipy, dask or Qt, and the
desktop app must show its window before torch is loaded. Instead of importing inside functions, a
module declares what it uses once, at its top::

    from core import lazy
    torch = lazy.module("torch")
    renderer = lazy.module("core.renderer")

and uses ``torch.zeros(...)`` or ``renderer.mix_stream(...)`` as usual: the first attribute access
imports the real module (``importlib.import_module``, under the import system's per-module locks, so
worker threads may race to it safely). This is the role ``lazy_loader.load`` plays in scientific
Python, minus its ``importlib.util.LazyLoader``, which is not thread-safe before Python 3.12 and puts
half-loaded modules in ``sys.modules``. A proxy is never put in ``sys.modules``: what has been loaded
there is what has really been loaded. tests/test_architecture.py reads these declarations as imports
(layers one way, no cycle).
"""
from __future__ import annotations

import importlib
import types

__all__ = ["module"]


class _LazyModule(types.ModuleType):
    """A stand-in for the module ``name``: every attribute read, write or delete goes to the real
    module, imported at the first one."""

    def _real(self) -> types.ModuleType:
        real = self.__dict__.get("_lazy_real")
        if real is None:
            real = importlib.import_module(self.__name__)
            self.__dict__["_lazy_real"] = real
        return real

    def __getattr__(self, attr: str):
        # only called for names the stand-in itself lacks (everything but its own bookkeeping)
        return getattr(self._real(), attr)

    def __setattr__(self, attr: str, value) -> None:
        setattr(self._real(), attr, value)

    def __delattr__(self, attr: str) -> None:
        delattr(self._real(), attr)

    def __dir__(self):
        return dir(self._real())

    def __repr__(self) -> str:
        state = "loaded" if "_lazy_real" in self.__dict__ else "not loaded yet"
        return f"<lazy module {self.__name__!r} ({state})>"


def module(name: str) -> types.ModuleType:
    """The module ``name`` (absolute dotted name), imported when first used."""
    return _LazyModule(name)
