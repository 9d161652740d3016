"""Render General-MIDI files one channel at a time: multitrack scenes with exact stems.

Usage::

    nice .venv/bin/python scripts/render_midi_scenes.py [--out ~/.cache/soundstage-midi] [--seconds 30]

Needs (development only, not the app): ``apt-get install fluidsynth fluid-soundfont-gm
openttd-openmsx planetblupi-music-midi`` and ``pip install mido`` (the ``bench`` extra).

Every MIDI file of the two Debian packages becomes one scene. Each MIDI channel that plays notes is
written to its own MIDI file (all meta messages, so the tempo map is shared, plus that channel's
messages) and rendered with FluidSynth and the FluidR3 GM soundfont, reverb and chorus off (so the
channels add up to the full render), at 44.1 kHz, float, averaged to mono. The scene is the
``--seconds`` excerpt (starting in the first 90 s) where the most channels play; one gain for the
whole scene brings the mixture's peak to 0.9. Stems are stored as 24-bit FLAC (``OUT/<scene>/chNN.flac``); the mixture is
their sum (bench/formation_multitrack.py builds it). ``OUT/scenes.tsv`` lists
``scene  split  midi  start_s  channel  program  name  share``: ``split`` is ``heldout`` for every
fourth MIDI file in sorted path order (kept out of tuning: 10 of 41), ``tune`` otherwise; ``share`` is the stem's share of
the mixture's energy. Resumable: a scene whose folder is complete is not rendered again.

More tuning material (other timbres, other passages of the same files; the split stays by file, so
the held-out files are never rendered into it)::

    nice .venv/bin/python scripts/render_midi_scenes.py --out ~/.cache/soundstage-midi-tim \
        --soundfont /usr/share/sounds/sf2/TimGM6mb.sf2 --excerpt 1 --split tune
"""
from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
MIDI_DIRS = (Path("/usr/share/games/openttd/baseset/openmsx"), Path("/usr/share/planetblupi/music"))
SR = 44100
FAMILIES = ("piano", "chromatic percussion", "organ", "guitar", "bass", "strings", "ensemble", "brass",
            "reed", "pipe", "synth lead", "synth pad", "synth effects", "ethnic", "percussive", "sound effects")


def timed_events(mid) -> list[tuple[int, float, object]]:
    """All messages of all tracks merged: ``(absolute tick, absolute seconds, message)`` in order."""
    events = []
    for track in mid.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            events.append((tick, len(events), msg))
    events.sort(key=lambda e: (e[0], e[1]))
    out, tempo, last_tick, sec = [], 500000, 0, 0.0
    for tick, _, msg in events:
        sec += (tick - last_tick) * tempo / (mid.ticks_per_beat * 1e6)
        last_tick = tick
        if msg.is_meta and msg.type == "set_tempo":
            tempo = msg.tempo
        out.append((tick, sec, msg))
    return out


def pick_excerpt(events, seconds: float, latest: float = 90.0, skip: int = 0) -> float:
    """Start (whole seconds, at most ``latest``) of the excerpt where the most channels play at least
    three notes (then the most notes); ``skip`` > 0: the ``skip``-th next best start that overlaps none
    of the better ones (another excerpt of the same file)."""
    ons = [(t, m.channel) for _, t, m in events if m.type == "note_on" and m.velocity > 0]
    if not ons:
        return 0.0
    end = max(t for t, _ in ons)
    scored = []
    for start in np.arange(0.0, max(0.0, min(latest + skip * seconds, end - seconds)) + 1.0):
        counts: dict[int, int] = {}
        for t, ch in ons:
            if start <= t < start + seconds:
                counts[ch] = counts.get(ch, 0) + 1
        scored.append((-(sum(c >= 3 for c in counts.values()) * 1e6 + sum(counts.values())), float(start)))
    taken: list[float] = []
    for _, start in sorted(scored):
        if all(abs(start - t) >= seconds for t in taken):
            taken.append(start)
            if len(taken) > skip:
                return start
    return taken[-1] if taken else 0.0


def channel_files(path: Path, tmp: Path, seconds: float, skip: int = 0) -> tuple[float, dict[int, tuple[Path, int]]]:
    """The excerpt's start (s) and one MIDI file per channel that plays notes in it, cut after it:
    ``{channel: (file, GM program)}``."""
    import mido
    mid = mido.MidiFile(path)
    events = timed_events(mid)
    start = pick_excerpt(events, seconds, skip=skip)
    stop = start + seconds + 0.5
    playing = sorted({m.channel for _, t, m in events
                      if m.type == "note_on" and m.velocity > 0 and start <= t < start + seconds})
    out = {}
    for ch in playing:
        track = mido.MidiTrack()
        last, program = 0, None
        for tick, t, msg in events:
            if t > stop:
                break
            if msg.is_meta:
                if msg.type == "end_of_track":
                    continue
            elif getattr(msg, "channel", None) != ch:
                continue
            elif msg.type == "program_change" and program is None:
                program = msg.program
            track.append(msg.copy(time=tick - last))
            last = tick
        track.append(mido.Message("control_change", channel=ch, control=123, value=0, time=0))
        f = mido.MidiFile(type=0, ticks_per_beat=mid.ticks_per_beat)
        f.tracks.append(track)
        dest = tmp / f"ch{ch:02d}.mid"
        f.save(dest)
        out[ch] = (dest, program or 0)
    return start, out


def wad_midis(wads: list[Path], dest: Path) -> list[Path]:
    """The Standard MIDI music lumps (``D_*``) of Doom WAD files, written once into ``dest`` as
    ``<wad>-<lump>.mid``; a lump whose bytes repeat an earlier one is dropped."""
    import hashlib
    import struct
    dest.mkdir(parents=True, exist_ok=True)
    seen, out = set(), []
    for wad in wads:
        data = wad.read_bytes()
        _, count, table = struct.unpack("<4sii", data[:12])
        for i in range(count):
            pos, size, raw = struct.unpack("<ii8s", data[table + 16 * i:table + 16 * i + 16])
            name = raw.rstrip(b"\0").decode("ascii", "replace")
            lump = data[pos:pos + size]
            digest = hashlib.sha1(lump).hexdigest()
            if name.startswith("D_") and lump[:4] == b"MThd" and digest not in seen:
                seen.add(digest)
                path = dest / f"{wad.stem}-{name.lower()}.mid"
                if not path.exists():
                    path.write_bytes(lump)
                out.append(path)
    return out


def render(mid: Path, wav: Path, soundfont: Path = SOUNDFONT) -> np.ndarray:
    subprocess.run(["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-r", str(SR),
                    "-O", "float", "-T", "wav", "-F", str(wav), str(soundfont), str(mid)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    y, sr = sf.read(wav, dtype="float32", always_2d=True)
    assert sr == SR
    return y.mean(axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path.home() / ".cache" / "soundstage-midi")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--soundfont", type=Path, default=SOUNDFONT,
                    help="another GM soundfont (e.g. /usr/share/sounds/sf2/TimGM6mb.sf2): other timbres")
    ap.add_argument("--excerpt", type=int, default=0,
                    help="0: the best excerpt of each file; N: the N-th next best that overlaps none before it")
    ap.add_argument("--wad", type=Path, action="append", default=[],
                    help="render the MIDI music lumps of this Doom WAD instead (every scene 'tune')")
    ap.add_argument("--split", choices=("all", "tune", "heldout"), default="all",
                    help="render only this split's files (the split is always by file, as for the default set)")
    args = ap.parse_args()
    if not args.soundfont.exists():
        raise SystemExit(f"no soundfont at {args.soundfont}: apt-get install fluid-soundfont-gm fluidsynth")
    args.out.mkdir(parents=True, exist_ok=True)
    files = (wad_midis(args.wad, args.out / "midi") if args.wad else
             sorted(p for d in MIDI_DIRS if d.is_dir() for p in d.glob("*.mid")))
    if not files:
        raise SystemExit("no MIDI files: apt-get install openttd-openmsx planetblupi-music-midi")
    rows = []
    for i, path in enumerate(files):
        scene = path.stem if args.wad else f"{path.parent.name}-{path.stem}"
        split = "tune" if args.wad else ("heldout" if i % 4 == 3 else "tune")
        if args.split != "all" and split != args.split:
            continue
        folder = args.out / scene
        info = folder / "stems.tsv"
        if not info.exists():
            with tempfile.TemporaryDirectory() as td:
                start_s, chans = channel_files(path, Path(td), args.seconds, args.excerpt)
                stems = {ch: render(m, Path(td) / f"ch{ch:02d}.wav", args.soundfont) for ch, (m, _) in chans.items()}
            n_full = max(len(s) for s in stems.values())
            start = int(start_s * SR)
            n = min(int(args.seconds * SR), n_full - start)
            cut = {ch: np.pad(s, (0, n_full - len(s)))[start:start + n] for ch, s in stems.items()}
            mix = np.sum(list(cut.values()), axis=0)
            gain = 0.9 / max(float(np.abs(mix).max()), 1e-9)
            total = float(np.dot(mix, mix)) * gain * gain
            folder.mkdir(exist_ok=True)
            lines = []
            for ch, y in cut.items():
                y = y * gain
                sf.write(folder / f"ch{ch:02d}.flac", y, SR, subtype="PCM_24")
                prog = chans[ch][1]
                name = "drums" if ch == 9 else FAMILIES[prog // 8]
                lines.append(f"{ch}\t{prog}\t{name}\t{float(np.dot(y, y)) / max(total, 1e-20):.4f}\t{start / SR:.0f}")
            info.write_text("\n".join(lines) + "\n")
            print(f"{scene}: {len(cut)} channels, excerpt from {start / SR:.0f} s", flush=True)
        for line in info.read_text().splitlines():
            ch, prog, name, share, start_s = line.split("\t")
            rows.append((scene, split, str(path), start_s, ch, prog, name, share))
    with open(args.out / "scenes.tsv", "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t")
        w.writerow(("scene", "split", "midi", "start_s", "channel", "program", "name", "share"))
        w.writerows(rows)
    print(f"{len({r[0] for r in rows})} scenes in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
