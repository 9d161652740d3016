"""Source-extraction backends behind one interface (see :mod:`separation.base`)."""
from .base import Source, get, list_backends, register, check_sum

__all__ = ["Source", "get", "list_backends", "register", "check_sum"]
