"""PS round trip on real music: encode each 10-s excerpt of the `valid` split, decode the
parameters from its mono downmix, re-analyse, and compare.

Run: .venv/bin/python bench/roundtrip_valid.py [--limit N]
Targets (issue 2): IID median |error| <= 1.5 dB over tiles that carry energy, IC <= 0.1;
per-band output power within 0.5 dB of 2x the mono's (bands within 40 dB of the loudest;
the last column adds the near-silent edge bands: DC and above the codecs' low-pass).
"""
import argparse

import numpy as np

from _common import real_mono  # noqa: F401  (sets sys.path)

from training.dataset import eval_excerpts
from core.decoder import decode
from core.metrics import energy_mask
from core.ps import analyze_spectra, band_energy
from core.stft import stft


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--split", default="valid")
    a = ap.parse_args()
    rows = []
    print(f"{'excerpt':<34}{'IID err dB':>11}{'IC err':>8}{'max |dP| dB':>12}{'all bands':>10}")
    for track, st in eval_excerpts(split=a.split, seconds=10.0, limit=a.limit):
        SL, SR = stft(st[:, 0]), stft(st[:, 1])
        p = analyze_spectra(SL, SR)
        mono = st.mean(axis=1).astype(np.float32)
        y = decode(mono, p)
        YL, YR = stft(y[:, 0]), stft(y[:, 1])
        q = analyze_spectra(YL, YR)
        mask = energy_mask(band_energy(SL) + band_energy(SR))
        e_iid = float(np.median(np.abs(p.iid - q.iid)[mask]))
        e_ic = float(np.median(np.abs(p.ic - q.ic)[mask]))
        ps = band_energy(stft(mono)).sum(axis=1)
        po = (band_energy(YL) + band_energy(YR)).sum(axis=1)
        dband = np.abs(10 * np.log10(po / (2 * ps)))
        carry = ps > ps.max() * 1e-4          # bands within 40 dB of the loudest carry energy
        dp, dall = float(dband[carry].max()), float(dband.max())
        rows.append((e_iid, e_ic, dp, dall))
        print(f"{track.path.stem[:33]:<34}{e_iid:11.2f}{e_ic:8.3f}{dp:12.2f}{dall:10.2f}")
    r = np.array(rows)
    print(f"{'median over ' + str(len(r)) + ' excerpts':<34}{np.median(r[:, 0]):11.2f}{np.median(r[:, 1]):8.3f}{np.median(r[:, 2]):12.2f}{np.median(r[:, 3]):10.2f}")
    print(f"{'worst excerpt':<34}{r[:, 0].max():11.2f}{r[:, 1].max():8.3f}{r[:, 2].max():12.2f}{r[:, 3].max():10.2f}")


if __name__ == "__main__":
    main()
