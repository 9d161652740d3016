"""Denormal protection for recursive filters: flush-to-zero (FTZ) and denormals-are-zero (DAZ).

An IIR filter fed silence decays into subnormal floats and, in float32 with round-to-nearest, never
leaves them: the all-pass section ``y[n] = g y[n - m]`` with ``g = 0.6`` keeps one unit in the last
place forever (0.6 ulp rounds back to 1 ulp). Arithmetic on subnormals is tens of times slower on
x86 and ARM, so a source stem that is mostly silence (formation's sources often are: 94 % exact
zeros for a quiet part) took 3.5 s to decorrelate instead of 0.7 s. Audio software sets the CPU's
FTZ/DAZ flags around such loops (JUCE's ``ScopedNoDenormals``, every DAW's "denormal
protection"); :func:`flushed` does the same for the calling thread: results below the smallest
normal float (1.2e-38) become zero, which nothing audible can tell apart.

The flags live in each thread's floating-point control register (MXCSR on x86-64, FPCR on
AArch64), set through glibc's ``fegetenv``/``fesetenv`` and restored on exit. Elsewhere (other C
libraries or CPUs) :func:`flushed` does nothing and the filters are merely slower. Whether the
flags took is checked once, on a product that would be subnormal.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import platform
import threading
from typing import Iterator, Optional

import numpy as np

__all__ = ["flushed", "available"]

_MACHINE = platform.machine().lower()
# glibc's fenv_t: x86-64 = the 28-byte x87 environment, then MXCSR; AArch64 = FPCR, FPSR
_X86 = _MACHINE in ("x86_64", "amd64")
_ARM = _MACHINE in ("aarch64", "arm64")
_X86_FTZ_DAZ = (1 << 15) | (1 << 6)
_ARM_FZ = 1 << 24

_LIBM: list = []                  # [libm or None], loaded once
_OK: list = []                    # [whether the flags take], checked once
_LOCK = threading.Lock()


def _libm() -> Optional[ctypes.CDLL]:
    if not _LIBM:
        lib = None
        if _X86 or _ARM:
            try:
                name = ctypes.util.find_library("m")
                lib = ctypes.CDLL(name) if name else None
                if lib is not None and not (hasattr(lib, "fegetenv") and hasattr(lib, "fesetenv")):
                    lib = None
            except OSError:
                lib = None
        _LIBM.append(lib)
    return _LIBM[0]


def _env_buffer():
    return (ctypes.c_uint32 * 8)()     # 32 bytes: both layouts fit


def _set(lib, saved) -> None:
    env = _env_buffer()
    ctypes.memmove(env, saved, ctypes.sizeof(env))
    if _X86:
        env[7] |= _X86_FTZ_DAZ        # MXCSR: the 8th 32-bit word
    else:
        env[0] |= _ARM_FZ             # FPCR: the first word
    lib.fesetenv(ctypes.byref(env))


def _subnormal_product() -> float:
    a = np.array([1e-38], np.float32)
    return float((a * np.float32(0.5))[0])


def available() -> bool:
    """Whether :func:`flushed` sets the flags here (checked once: a product that would be
    subnormal comes out zero inside and not outside)."""
    if not _OK:
        with _LOCK:
            if not _OK:
                ok = False
                lib = _libm()
                if lib is not None:
                    saved = _env_buffer()
                    if lib.fegetenv(ctypes.byref(saved)) == 0:
                        try:
                            _set(lib, saved)
                            ok = _subnormal_product() == 0.0
                        finally:
                            lib.fesetenv(ctypes.byref(saved))
                        ok = ok and _subnormal_product() != 0.0
                _OK.append(ok)
    return _OK[0]


@contextlib.contextmanager
def flushed() -> Iterator[None]:
    """FTZ and DAZ in the calling thread for the ``with`` block (then the thread's floating-point
    environment as it was); nothing where :func:`available` is False."""
    if not available():
        yield
        return
    lib = _libm()
    saved = _env_buffer()
    lib.fegetenv(ctypes.byref(saved))
    _set(lib, saved)
    try:
        yield
    finally:
        lib.fesetenv(ctypes.byref(saved))
