"""``soundstage analyze FILE``: loudness, peaks and PS parameter statistics of a file.

Loudness is ITU-R BS.1770 integrated loudness (LUFS) and true peak (dBTP, 4x oversampled); a mono
file is measured as one channel and also as played on both channels of a stereo system (+3.01 LU),
the figure to compare an upmix with (see :mod:`core.loudness`).
"""
from __future__ import annotations

import json
from core import lazy
audio = lazy.module("core.audio")
bands = lazy.module("core.bands")
loudness = lazy.module("core.loudness")
metrics = lazy.module("core.metrics")
soundfile = lazy.module("soundfile")

NAME = "analyze"
HELP = "print loudness (LUFS, dBTP) and stereo statistics of a file (median |IID|, mean IC, width, levels)"


def add_arguments(p) -> None:
    p.add_argument("input", help="audio file (mono or stereo)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--bands", action="store_true", help="also print per-band median IID and IC")


def run(args) -> int:

    stereo = audio.load_stereo(args.input)
    mono = soundfile.info(str(args.input)).channels == 1
    loud = loudness.measure(stereo[:, 0] if mono else stereo)
    st = metrics.stereo_stats(stereo)
    if args.json:
        print(json.dumps({**st.as_dict(), "loudness": loud.as_dict()}, indent=1))
        return 0
    print(f"file               {args.input}")
    print(f"duration           {st.seconds:.2f} s")
    print(f"loudness           {loud.line()}")
    print(f"peak L / R         {st.peak_db[0]:6.2f} / {st.peak_db[1]:6.2f} dBFS   clipped samples {st.clipped_samples}")
    print(f"rms  L / R         {st.rms_db[0]:6.2f} / {st.rms_db[1]:6.2f} dBFS")
    print(f"correlation        {st.correlation:6.3f}")
    print(f"width (S/M rms)    {st.width:6.3f}")
    print(f"median |IID|       {st.median_abs_iid_db:6.2f} dB")
    print(f"mean IC            {st.mean_ic:6.3f}")
    if args.bands:
        print("\n band   centre Hz   median IID dB   median IC")
        for b, (f, i, c) in enumerate(zip(bands.band_centres_hz(), st.band_iid_db, st.band_ic)):
            print(f" {b:4d}   {f:9.0f}   {i:13.2f}   {c:9.3f}")
    return 0
