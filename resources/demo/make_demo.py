"""Re-make resources/demo/feelings-mono.flac from the Debian package fretsonfire-songs-sectoid.

Usage: python resources/demo/make_demo.py [DATA_DIR]   (DATA_DIR as written by shared/data/fetch-music.sh)
The full mix of a song is song.ogg + guitar.ogg; we downmix it to mono, take 30 s from 0:40,
normalize the peak to -1 dBFS, fade 50 ms in and out, and write 16-bit FLAC.
"""
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

data = Path(sys.argv[1] if len(sys.argv) > 1 else Path.home() / ".cache" / "soundstage-data")
song = data / "fretsonfire-songs-sectoid/usr/share/games/fretsonfire/data/songs/sectoid/Feelings"
s, sr = sf.read(song / "song.ogg", dtype="float64")
g, _ = sf.read(song / "guitar.ogg", dtype="float64")
mono = (s + g).mean(axis=1)[40 * sr: 70 * sr]
mono *= 10 ** (-1 / 20) / np.abs(mono).max()
fade = int(0.05 * sr)
ramp = np.linspace(0.0, 1.0, fade)
mono[:fade] *= ramp
mono[-fade:] *= ramp[::-1]
out = Path(__file__).with_name("feelings-mono.flac")
sf.write(out, mono.astype(np.float32), sr, subtype="PCM_16")
print(f"wrote {out} ({len(mono) / sr:.1f} s, {sr} Hz, mono)")
