"""Hand-off to a DAW: the session as a DAWproject file (the open exchange format of Bitwig Studio,
Studio One, Cubase and others; schema in ../shared/dawproject/).

A ``.dawproject`` file is a ZIP holding ``project.xml`` (Project.xsd), ``metadata.xml``
(MetaData.xsd) and the audio it references. Soundstage writes:

- one audio track per source, named and coloured as in Soundstage, holding the source's rendered
  stereo stem (its placement, its gain and the session's output gain applied, as in the export)
  as one clip from 0 s; a muted source (or one left out by solo) is written with its stem and the
  track muted, so the producer can bring it back;
- the original mono recording on a muted track ("Original (mono)"), for A/B in the DAW;
- a master channel at unity gain: the unmuted stems sum to Soundstage's export.

Audio is 32-bit float WAV at 44.1 kHz, so the stems sum to the export within float rounding.
The file is written atomically (temporary file, then rename) and never over the recording.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Optional
from xml.etree import ElementTree as ET

import numpy as np

from core import SAMPLE_RATE
from core.audio import replacing, same_file
from core.errors import ParameterError
from core.progress import ProgressFn, report
from core.renderer import mix_chunks
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, version
from core import lazy
soundfile = lazy.module("soundfile")

__all__ = ["write_dawproject", "DAWPROJECT_VERSION", "stem_placements"]

DAWPROJECT_VERSION = "1.0"
ORIGINAL_COLOUR = "#808080"


def stem_placements(placements):
    """The placements the stems are rendered with: mute and solo lifted (they become track mutes)."""
    return [replace(p, mute=False, solo=False) for p in placements]


def _muted(placements) -> list[bool]:
    solo = any(p.solo for p in placements)
    return [bool(p.mute or (solo and not p.solo)) for p in placements]


def _wav_bytes(audio: np.ndarray) -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, audio, SAMPLE_RATE, format="WAV", subtype="FLOAT")
    return buf.getvalue()


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40] or "source"


def _colour(c: str) -> str:
    c = (c or "").strip()
    return c if c.startswith("#") and len(c) in (7, 9) else ORIGINAL_COLOUR


class _Ids:
    def __init__(self):
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"id{self.n}"


def _channel(parent, ids: _Ids, *, name: str, channels: int, muted: bool, destination: Optional[str],
             role: str = "regular", volume: float = 1.0) -> ET.Element:
    ch = ET.SubElement(parent, "Channel", {"audioChannels": str(channels), "role": role, "solo": "false",
                                           "id": ids(), "name": name})
    if destination is not None:
        ch.set("destination", destination)
    ET.SubElement(ch, "Mute", {"value": "true" if muted else "false", "id": ids(), "name": "Mute"})
    ET.SubElement(ch, "Pan", {"max": "1.000000", "min": "0.000000", "unit": "normalized", "value": "0.500000",
                              "id": ids(), "name": "Pan"})
    ET.SubElement(ch, "Volume", {"max": "2.000000", "min": "0.000000", "unit": "linear",
                                 "value": f"{volume:.6f}", "id": ids(), "name": "Volume"})
    return ch


def project_xml(tracks: list[dict], *, seconds: float, app_version: str) -> bytes:
    """``project.xml`` for ``tracks`` (dicts: name, colour, file, channels, muted, comment)."""
    ids = _Ids()
    root = ET.Element("Project", {"version": DAWPROJECT_VERSION})
    ET.SubElement(root, "Application", {"name": "Soundstage", "version": app_version})
    transport = ET.SubElement(root, "Transport")
    ET.SubElement(transport, "Tempo", {"max": "666.000000", "min": "20.000000", "unit": "bpm", "value": "120.000000",
                                       "id": ids(), "name": "Tempo"})
    ET.SubElement(transport, "TimeSignature", {"denominator": "4", "numerator": "4", "id": ids()})
    structure = ET.SubElement(root, "Structure")
    master_track = ET.SubElement(structure, "Track", {"contentType": "audio", "loaded": "true", "id": ids(),
                                                      "name": "Master"})
    master = _channel(master_track, ids, name="Master", channels=2, muted=False, destination=None, role="master")
    master_id = master.get("id")
    track_ids = []
    for t in tracks:
        tr = ET.SubElement(structure, "Track", {"contentType": "audio", "loaded": "true", "id": ids(),
                                                "name": t["name"], "color": t["colour"]})
        if t.get("comment"):
            tr.set("comment", t["comment"])
        _channel(tr, ids, name=t["name"], channels=t["channels"], muted=t["muted"], destination=master_id)
        track_ids.append(tr.get("id"))
    arrangement = ET.SubElement(root, "Arrangement", {"id": ids()})
    lanes = ET.SubElement(arrangement, "Lanes", {"timeUnit": "seconds", "id": ids()})
    dur = f"{seconds:.6f}"
    for t, tid in zip(tracks, track_ids):
        lane = ET.SubElement(lanes, "Lanes", {"track": tid, "id": ids()})
        clips = ET.SubElement(lane, "Clips", {"id": ids()})
        clip = ET.SubElement(clips, "Clip", {"time": "0.0", "duration": dur, "playStart": "0.0", "name": t["name"]})
        au = ET.SubElement(clip, "Audio", {"channels": str(t["channels"]), "duration": dur,
                                           "sampleRate": str(SAMPLE_RATE), "id": ids()})
        ET.SubElement(au, "File", {"path": t["file"]})
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def metadata_xml(*, title: str, comment: str) -> bytes:
    root = ET.Element("MetaData")
    ET.SubElement(root, "Title").text = title
    ET.SubElement(root, "Comment").text = comment
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def write_dawproject(session, path, *, overwrite: bool = False, plan=None,
                     progress: Optional[ProgressFn] = None) -> Path:
    """Write ``session`` (separated, rendered) as a DAWproject file at ``path``; returns the path.

    The stems carry the output gain the export applies: ``plan`` (a :class:`core.loudness.GainPlan`
    measured for the session as it is), by default measured and kept (:meth:`Session.plan_output`)."""
    path = Path(path)
    if not session.renders:
        raise ParameterError("nothing to hand off: separate the recording first")
    if session.recording is not None and same_file(session.recording, path):
        raise ParameterError(f"{path}: refusing to write over the input recording")
    if path.exists() and not overwrite:
        raise ParameterError(f"{path}: already exists (use --force to overwrite)")
    try:
        app_version = version("soundstage")
    except PackageNotFoundError:
        app_version = "0"
    plan = plan if plan is not None else session.plan_output()
    g = np.float32(10 ** (plan.gain_db / 20))
    n = len(session.mono)
    stems = [np.zeros((n, 2), np.float32) for _ in session.renders]
    for start, _, parts in mix_chunks(session.renders, stem_placements(session.placements), stems=True,
                                      mono_compatible=session.mono_compatible):
        for st, part in zip(stems, parts):
            st[start:start + len(part)] = part * g
        report(progress, "stems", start + len(parts[0]) if parts else n, n)
    muted = _muted(session.placements)
    tracks, files = [], []
    for i, (src, p) in enumerate(zip(session.sources, session.placements)):
        name = f"audio/{i + 1:02d}-{_safe(src.name)}.wav"
        tracks.append({"name": src.name, "colour": _colour(src.colour), "file": name, "channels": 2,
                       "muted": muted[i], "comment": f"Soundstage {p.mode}: pan {p.pan:+.2f}, width {p.width:.2f}, "
                                                     f"gain {p.gain_db:+.1f} dB"})
        files.append((name, stems[i]))
    rec_name = session.recording.stem if session.recording is not None else "recording"
    orig = f"audio/00-original-{_safe(rec_name)}.wav"
    tracks.append({"name": "Original (mono)", "colour": ORIGINAL_COLOUR, "file": orig, "channels": 1,
                   "muted": True, "comment": "the mono recording as Soundstage read it (44.1 kHz)"})
    files.append((orig, session.mono))
    seconds = n / SAMPLE_RATE
    mode = "mono-compatible, " if session.mono_compatible else ""
    comment = (f"Upmixed by Soundstage ({mode}{plan.describe()}). The unmuted tracks sum to Soundstage's "
               f"export; the mono original is on a muted track.")
    with replacing(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("project.xml", project_xml(tracks, seconds=seconds, app_version=app_version))
            z.writestr("metadata.xml", metadata_xml(title=rec_name, comment=comment))
            for name, audio in files:
                z.writestr(name, _wav_bytes(audio))
    return path
