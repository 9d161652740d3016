"""Real-time factor of the PS decoder and the Decorr upmix on a 3-minute recording.

Run: .venv/bin/python bench/bench_decoder.py [--seconds 180]
Paper (Serrà et al. 2023, Xeon CPU): Decorr RTF 0.25. Target here: both <= 0.02.
"""
import argparse
import os
import platform

import numpy as np

from _common import peak_rss_mb, real_mono, timed

from core.decoder import decode
from core.models import load_model
from core.ps import PSParams
from core.stft import n_frames


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=180.0)
    a = ap.parse_args()
    x, what = real_mono(a.seconds)
    dur = len(x) / 44100
    rng = np.random.default_rng(0)
    t = n_frames(len(x))
    params = PSParams(rng.uniform(-20, 20, (34, t)), rng.uniform(-1, 1, (34, t)))
    decorr = load_model("decorr")
    t_dec, _ = timed(decode, x, params)
    t_decorr, _ = timed(lambda: decode(x, decorr.predict(x)))
    print(f"input: {what}, {dur:.1f} s; {os.cpu_count()} cores, {platform.processor() or platform.machine()}")
    print(f"{'method':<22}{'wall s':>9}{'RTF':>9}")
    print(f"{'PS decoder':<22}{t_dec:9.3f}{t_dec / dur:9.4f}")
    print(f"{'Decorr upmix':<22}{t_decorr:9.3f}{t_decorr / dur:9.4f}")
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
