"""Exception types shared by the core, the separation backends and the app."""


class ParameterError(ValueError):
    """A DSP function was called with bad arguments (shape, range, type)."""


class AudioError(Exception):
    """An audio file could not be used. ``str()`` names the file and the reason in one line."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class Cancelled(Exception):
    """A long operation stopped because its cancel event was set."""
