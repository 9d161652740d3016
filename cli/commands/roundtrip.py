"""``soundstage roundtrip STEREO -o OUT``: encode a real stereo file's PS parameters and decode them
from its mono downmix, the ceiling of what PS upmixing can reach. Prints the re-analysis errors."""
from __future__ import annotations

import threading

from cli.commands import FORMATS
import numpy as np
from cli.progress_bar import TerminalProgress
from cli.main import check_output
from core import lazy
audio = lazy.module("core.audio")
decoder = lazy.module("core.decoder")
loudness = lazy.module("core.loudness")
metrics = lazy.module("core.metrics")
progress = lazy.module("core.progress")
ps = lazy.module("core.ps")
stft = lazy.module("core.stft")

NAME = "roundtrip"
HELP = "PS-encode a stereo file and decode it from its mono downmix"


def add_arguments(p) -> None:
    p.add_argument("input", help="stereo audio file")
    p.add_argument("-o", "--output", required=True, help="decoded stereo file")
    p.add_argument("--format", default=None, choices=FORMATS,
                   help="output format (default from the extension: wav24, or flac for .flac)")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")


def run(args) -> int:

    out = check_output(args.output, inputs=[args.input], force=args.force)
    stereo = audio.load_stereo(args.input)
    params = ps.analyze(stereo)
    mono = stereo.mean(axis=1).astype(np.float32)
    bar = TerminalProgress(enabled=not args.quiet)
    try:
        dec = decoder.decode(mono, params, progress=progress.Reporter(bar, "decode"), cancel=threading.Event())
    finally:
        bar.close()
    SL, SR = stft.stft(dec[:, 0]), stft.stft(dec[:, 1])
    energy = ps.band_energy(stft.stft(stereo[:, 0])) + ps.band_energy(stft.stft(stereo[:, 1]))
    err = metrics.roundtrip_errors(params, ps.analyze_spectra(SL, SR), energy)
    plan = loudness.plan_gain(dec)              # the output stage of upmix / export: at most -1 dBTP, never louder
    gain = min(plan.gain_db, 0.0)
    if gain < 0:
        dec = dec * np.float32(10 ** (gain / 20))
    audio.write(out, dec, fmt=args.format or audio.format_for_path(out), overwrite=args.force, inputs=[args.input])
    print(f"wrote {out}")
    print(f"re-analysis error: IID median |err| {err['iid_median_abs_db']:.2f} dB, IC median |err| {err['ic_median_abs']:.3f}"
          + (f"; scaled by {gain:.2f} dB to the {plan.ceiling_db:.1f} {plan.unit} ceiling" if gain < 0 else ""))
    return 0
