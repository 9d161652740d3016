"""PS-NN: load time, real-time factor of the prediction, and of prediction + PS decoding, on a
3-minute recording.

Run: .venv/bin/python bench/bench_psnn.py [--seconds 180]
Paper (Serrà et al. 2023, Xeon CPU, 0.5 M pairs): PS-NN RTF 0.82. Target here: <= 0.05; load <= 1 s.
"""
import argparse
import os
import platform
import time

from _common import peak_rss_mb, real_mono, timed

from core.decoder import decode
from core.models import psnn
from core.models.base import models_dir


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=180.0)
    a = ap.parse_args()
    x, what = real_mono(a.seconds)
    dur = len(x) / 44100
    path = models_dir() / psnn.FILE_NAME
    t0 = time.perf_counter()
    model = psnn.load(models_dir())
    t_load = time.perf_counter() - t0
    t_pred, p = timed(model.predict, x)
    t_both, _ = timed(lambda: decode(x, model.predict(x)), repeat=2)
    n = model.table.keys.shape[0]
    print(f"input: {what}, {dur:.1f} s; {os.cpu_count()} cores, {platform.processor() or platform.machine()}")
    print(f"table: {n} pairs, {model.key_kind} keys, {path.stat().st_size / 1e6:.2f} MB on disk")
    print(f"{'step':<26}{'wall s':>9}{'RTF':>9}")
    print(f"{'load (file -> index)':<26}{t_load:9.3f}{'':>9}")
    print(f"{'PS-NN predict':<26}{t_pred:9.3f}{t_pred / dur:9.4f}")
    print(f"{'PS-NN predict + decode':<26}{t_both:9.3f}{t_both / dur:9.4f}")
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
