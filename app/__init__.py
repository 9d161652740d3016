"""The application without widgets: CLI, session/project model, commands, playback, workers."""
