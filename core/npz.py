"""Reading ``.npz`` cache entries from any thread.

numpy parses the header of every member with ``ast.literal_eval``, and CPython's AST constructor keeps its
recursion depth in interpreter-wide state: when threads build ASTs at the same time (a garbage collection in one
can hand the GIL to another mid-construction) it can raise a spurious ``SystemError: AST constructor recursion depth
mismatch`` (python/cpython gh-106905) on a file that is perfectly fine. Caches read their entries through
:func:`read_npz`, which reads such a file again, instead of dropping a good entry as damaged (a stem cache entry was
once dropped and separated again that way while two processes and several threads used it).
"""
from __future__ import annotations

from typing import Callable, TypeVar

import numpy as np

__all__ = ["read_npz", "ATTEMPTS"]

ATTEMPTS = 3
T = TypeVar("T")


def read_npz(path, read: Callable[[np.lib.npyio.NpzFile], T], *, attempts: int = ATTEMPTS) -> T:
    """``read(z)`` of the ``.npz`` file ``path`` opened without pickles, tried again on CPython's spurious
    ``SystemError`` (up to ``attempts`` times in all, then the error is raised); every other error is the caller's
    (a missing file, a damaged one)."""
    for _ in range(max(1, int(attempts)) - 1):
        try:
            with np.load(path, allow_pickle=False) as z:
                return read(z)
        except SystemError:
            pass
    with np.load(path, allow_pickle=False) as z:      # the last attempt: its error is the caller's
        return read(z)
