"""What mono-compatible mode costs, on real music: the `valid` split, PS-MTM (seed 0), with the
formation separator (the session chain) and without a separator (the PS decoder on the whole mix).

Per excerpt (10 s from the middle of each track, downmixed to mono) and configuration, the
normal render N and the mono-compatible render M of the same parameters and placements:
- fold-down: max |(L + R) / 2 - mono| of M in dBFS (target < -90), and of N for contrast
  (its error relative to the mono's RMS, dB);
- image: median |IID_M - IID_N| (dB) and |IC_M - IC_N| over the tiles that carry energy;
- D_F (Frechet distance of [IID; IC] frames, Serra et al. 2023) of N and of M against the real
  stereo of the same excerpts (the whole split pooled);
- loudness: LUFS(M) - LUFS(N) (BS.1770 integrated).

Run: nice -n 10 .venv/bin/python bench/monocompat_valid.py [--limit 20] [--seconds 10]
"""
import argparse
import time

import numpy as np

from _common import real_mono  # noqa: F401  (sets sys.path)

from core.decoder import decode
from training.evaluation import load_excerpts
from core.loudness import integrated_lufs
from core.metrics import energy_mask
from core.models import load_model
from core.ps import analyze, band_energy
from training.ps_metrics import GaussianStats, d_f
from core.stft import stft


def _db(x: float) -> float:
    return 20 * np.log10(max(x, 1e-20))


def _session_renders(mono, model_name: str, tmp):
    """(normal, mono-compatible) stereo renders of the formation session chain."""
    import soundfile as sf

    from app.session import Session
    path = tmp / "excerpt.wav"
    sf.write(str(path), mono, 44100, subtype="FLOAT")
    s = Session()
    s.open(path)
    s.model = model_name
    s.separate("formation", {})
    s.new_rendition(0, model=model_name)
    n = s.render()
    s.set_mono_compatible(True, record=False)
    m = s.render()
    return s.mono, n, m


def main():
    import tempfile
    from pathlib import Path
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--model", default="ps-mtm")
    a = ap.parse_args()
    t0 = time.time()
    exs = load_excerpts(split="valid", seconds=a.seconds, limit=a.limit)
    model = load_model(a.model)
    real = GaussianStats()
    for ex in exs:
        real.add_params(ex.real)
    configs = ("none", "formation")
    gen = {(c, m): GaussianStats() for c in configs for m in "NM"}
    rows = {c: [] for c in configs}
    tmp = Path(tempfile.mkdtemp(prefix="soundstage-monocompat-"))
    print(f"{len(exs)} excerpts of {a.seconds:g} s, model {a.model}, seed 0")
    print(f"{'excerpt':<28}{'config':<11}{'fold M dBFS':>12}{'fold N dB':>10}{'dIID dB':>9}{'dIC':>7}{'dLUFS':>7}")
    for ex in exs:
        params = model.predict(ex.mono, seed=0)
        for c in configs:
            if c == "none":
                x = ex.mono
                yn = decode(x, params)
                ym = decode(x, params, mono_compatible=True)
            else:
                x, yn, ym = _session_renders(ex.mono, a.model, tmp)
            fold_m = float(np.max(np.abs((ym[:, 0] + ym[:, 1]) / 2 - x)))
            rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
            fold_n = float(np.sqrt(np.mean(((yn[:, 0] + yn[:, 1]) / 2 - x).astype(np.float64) ** 2))) / rms
            pn, pm = analyze(yn), analyze(ym)
            gen[(c, "N")].add_params(pn)
            gen[(c, "M")].add_params(pm)
            mask = energy_mask(band_energy(stft(x)))
            d_iid = float(np.median(np.abs(pm.iid - pn.iid)[mask]))
            d_ic = float(np.median(np.abs(pm.ic - pn.ic)[mask]))
            d_lufs = integrated_lufs(ym) - integrated_lufs(yn)
            rows[c].append((_db(fold_m), _db(fold_n), d_iid, d_ic, d_lufs))
            print(f"{ex.name[:27]:<28}{c:<11}{_db(fold_m):12.1f}{_db(fold_n):10.1f}{d_iid:9.2f}{d_ic:7.3f}{d_lufs:7.2f}",
                  flush=True)
    print()
    print(f"{'config':<11}{'worst fold M dBFS':>18}{'median fold N dB':>17}{'med dIID dB':>12}{'med dIC':>9}"
          f"{'med dLUFS':>10}{'max dLUFS':>10}{'D_F N':>8}{'D_F M':>8}")
    for c in configs:
        r = np.array(rows[c])
        print(f"{c:<11}{r[:, 0].max():18.1f}{np.median(r[:, 1]):17.1f}{np.median(r[:, 2]):12.2f}{np.median(r[:, 3]):9.3f}"
              f"{np.median(r[:, 4]):10.2f}{r[:, 4].max():10.2f}{d_f(real, gen[(c, 'N')]):8.2f}{d_f(real, gen[(c, 'M')]):8.2f}")
    print(f"\n{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
