"""Data shipped with Soundstage: the demo recording (with its licence) and the trained model files
with their cards. Found through :mod:`importlib.resources`, so they are there in any install."""
from importlib.resources import files
from pathlib import Path

__all__ = ["models_folder", "demo_recording"]


def models_folder() -> Path:
    """The folder of the shipped model files."""
    return Path(str(files(__name__) / "models"))


def demo_recording() -> Path:
    """The bundled demo recording ("Feelings" by Sectoid, MIT; see demo/CREDITS.md)."""
    return Path(str(files(__name__) / "demo" / "feelings-mono.flac"))
