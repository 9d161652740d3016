"""Reference numbers of formation, PS-MTM and the chain (tests/_reference.py), computed on main before issue 22's
chain changes (b317555): tests/data/chain_reference.npz.

``--ps-model-only``: keep formation's numbers and compute again only what depends on the shipped PS-MTM file
(its tokens, the chain's outputs), for a new model file; the chain as tests/app/test_chain_reference.py runs it
(without the detail calibration, the odd seeds' mirror and the placement's pan spread, which came after the
reference)."""
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.chdir(ROOT)
sys.path.insert(0, str(ROOT))
sys.path.insert(0, "tests/separation"); sys.path.insert(0, "tests")
import numpy as np, soundfile as sf
from test_formation import small_band, three_instruments
import separation
from core.models import load_model

PROBE = np.random.default_rng(22).standard_normal(1024)

def fingerprint(x):
    x = np.asarray(x, np.float64)
    m = len(x) // 1024
    blk = x[:m * 1024].reshape(m, 1024)
    return np.stack([np.sqrt((blk ** 2).mean(1)), blk @ PROBE / 32.0], 1).astype(np.float32)

PS_ONLY = "--ps-model-only" in sys.argv
REF = "tests/data/chain_reference.npz"
if PS_ONLY:
    with np.load(REF) as z:
        out = {k: z[k] for k in z.files if k.startswith("formation_")}
    import app.proposal, core.detail, core.models.placement
    app.proposal.load_detail = lambda *a, **k: None
    core.detail.MIRROR_ODD = False
    core.models.placement.PAN_SPREAD = 1.0
else:
    out = {}
_, band = small_band(np.random.default_rng(0))
_, three = three_instruments(np.random.default_rng(7))
scenes = {"band": band, "three": three}
for sname, mix in ({} if PS_ONLY else scenes).items():
    for tag, kw in (("auto", {}), ("n8", {"n_sources": 8})):
        srcs = separation.get("formation", cache=False, **kw).separate(mix)
        out[f"formation_{sname}_{tag}_names"] = np.array([s.name for s in srcs])
        out[f"formation_{sname}_{tag}_npeaks"] = np.array([s.meta.get("n_peaks", -1) for s in srcs])
        out[f"formation_{sname}_{tag}_fp"] = np.stack([fingerprint(s.audio) for s in srcs])
        print(sname, tag, [s.name for s in srcs])
m = load_model("ps-mtm")
for seed in (0, 5):
    p = m.predict(band.astype(np.float32)[: 20 * 44100] if len(band) > 20 * 44100 else np.tile(band, 3)[: 20 * 44100],
                  seed=seed)
    from core.ps import to_tokens
    out[f"mtm_band20_seed{seed}_tokens"] = to_tokens(p).astype(np.uint8)
    print("mtm", seed, p.iid.shape)
# the chain on the band scene (12 s: tiled), through the command line's function
from app.chain import UpmixSettings, upmix_file
tmp = tempfile.mkdtemp()
inp = os.path.join(tmp, "band.wav")
sf.write(inp, np.tile(band, 2)[: 12 * 44100], 44100, subtype="FLOAT")
for tag, kw in (("plain", {}), ("monocompat", {"mono_compatible": True}), ("r2", {"renditions": 2})):
    res = upmix_file(inp, os.path.join(tmp, f"{tag}.wav"), UpmixSettings(method="ps-mtm", separator="formation", seed=3, **kw))
    for k, o in enumerate(res.outputs):
        y, _ = sf.read(str(o.path), dtype="float32")
        out[f"chain_{tag}_{k}_fp"] = np.stack([fingerprint(y[:, 0]), fingerprint(y[:, 1])])
        out[f"chain_{tag}_{k}_gain"] = np.array(o.gain_db)
        print("chain", tag, k, o.gain_db, [ (s['name'], round(s['pan'],3)) for s in o.sources])
np.savez_compressed(REF, **out)
print(os.path.getsize(REF))
