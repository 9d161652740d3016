"""The output formats, in one table: the writers, the command line, the project schema and the
export dialog all read them from here (no audio code is imported, so the command line's parser
stays light)."""
from __future__ import annotations

__all__ = ["FORMATS", "OUTPUT_FORMATS", "SUBTYPES", "EXTENSIONS", "DEFAULT_FORMAT", "extension"]

# name -> (container, soundfile subtype, label in the export dialog), in the order offered
FORMATS = {
    "wav16": ("WAV", "PCM_16", "16-bit PCM"),
    "wav24": ("WAV", "PCM_24", "24-bit PCM"),
    "wav32f": ("WAV", "FLOAT", "32-bit float"),
    "flac16": ("FLAC", "PCM_16", "16-bit"),
    "flac": ("FLAC", "PCM_24", "24-bit"),
}
OUTPUT_FORMATS = tuple(FORMATS)               # what --format and the export dialog offer
DEFAULT_FORMAT = "wav24"
# what the writers accept: the offered formats and "flac24" (the same as "flac", read in projects)
SUBTYPES = {**{name: (c, st) for name, (c, st, _) in FORMATS.items()}, "flac24": ("FLAC", "PCM_24")}
EXTENSIONS = {"WAV": (".wav", ".wave"), "FLAC": (".flac",)}


def extension(fmt: str) -> str:
    """The file extension of format ``fmt`` (".wav" or ".flac")."""
    return EXTENSIONS[SUBTYPES[fmt][0]][0]
