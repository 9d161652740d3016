"""The defaults and ranges of the user's knobs, in one place: the command line's parser, the
session, the project schema and the desktop app all read them from here."""
from __future__ import annotations

from .errors import ParameterError

__all__ = ["DEFAULT_VARIETY", "VARIETY_RANGE", "GAIN_DB_RANGE", "DEFAULT_CEILING_DB", "CEILING_DB_RANGE",
           "check_range"]

DEFAULT_VARIETY = 0.0             # renditions: 0 = as real mixes are
VARIETY_RANGE = (0.0, 1.0)        # .. 1 = the boldest
GAIN_DB_RANGE = (-120.0, 24.0)    # a source's gain; beyond it is silence or certain clipping
DEFAULT_CEILING_DB = -1.0         # the output stage's peak ceiling (true peak, dBTP)
CEILING_DB_RANGE = (-24.0, 0.0)


def check_range(what: str, value, bounds: tuple, unit: str = "") -> float:
    """``value`` as a float inside ``bounds`` (NaN refused), else one :class:`ParameterError` line."""
    v = float(value)
    if not bounds[0] <= v <= bounds[1]:
        raise ParameterError(f"{what} must be between {bounds[0]:g} and {bounds[1]:g}{unit}, got {value:g}")
    return v
