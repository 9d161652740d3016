"""Exception types shared by the core, the separation backends and the app."""


class ParameterError(ValueError):
    """A DSP function was called with bad arguments (shape, range, type)."""


class AudioError(Exception):
    """An audio file could not be used. ``str()`` names the file and the reason in one line."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class OutputError(AudioError, OSError):
    """An output file could not be written (permissions, space, name); one line, and nothing of
    the attempt is left behind. An :class:`OSError` too, so callers that tolerate a failed write
    (a cache) keep doing so."""


class Cancelled(Exception):
    """A long operation stopped because its cancel event was set."""
