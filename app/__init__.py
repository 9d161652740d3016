"""The application without widgets: CLI, session/project model, commands, playback, workers."""

__version__ = "0.2.0"
