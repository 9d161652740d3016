"""Source-level evaluation of placement proposals, and of the whole chain's stereo output.

On the excerpts of :func:`training.evaluation.load_excerpts` (10 s from the middle of each clean track
of a split), the mono downmix is separated (``separate``: the app passes the source-formation
backend) and every source's true place in the real stereo is measured
(:func:`core.models.placement_features.true_placement`). Each method then proposes K placements
per excerpt, seeds 0..K-1:

* ``centre``: every source at pan 0, width 0 (the app's state before any proposal);
* ``uniform``: pan ~ U(-1, 1), width ~ U(0, 1) per source, independently;
* ``mean``: today's projection of the PS model's parameters (:func:`core.placement.seed_placements`);
* ``model``: the placement model at variety 0 (its default) and at variety 1.

Measures (each source weighted by its share of the excerpt's energy, ``w``):

* ``diversity``: per source, the standard deviation of its proposed pan over the K seeds; the
  w-weighted mean over an excerpt's sources, averaged over excerpts.
* ``D_F (pan, width)``: Fréchet distance between Gaussian fits of the real sources' (pan, width)
  and of all proposed ones, every source counted with weight w (each proposal with w / K).
* ``source E_min``: per excerpt, the minimum over the K seeds of the w-weighted mean |pan - true
  pan|; averaged over excerpts (with its standard error).
* The real sources' own spread: the w-weighted standard deviation of their pans (pooled over
  excerpts) and their w-weighted mean |pan| and width.

Whole output (``chain``): each excerpt rendered as ``soundstage upmix --separator ...`` does (the
sources decorrelated, each rendition proposed, every auto source rendered band by band with the PS
model's tile parameters around its place, :func:`core.renderer.auto_renders`; with the mean
projection, its broadband per-frame projection), mixed, analysed again, and compared with the real stereo's PS parameters as ``soundstage eval``
does (E_min, D_F of :mod:`training.ps_metrics`), beside the PS model on the whole mix (decoded without
separation) for the same seeds.
"""
from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from core.audio import replacing
from core.decoder import decode
from core.detail import load_detail
from core.errors import ParameterError
from core.npz import read_npz
from core.placement import Placement, propose
from core.progress import ProgressFn, check_cancel, report
from core.ps import PSParams, analyze
from core.stft import stft

from .image_metrics import OutputPool, broadband_correlation, paired_se, side_to_mid_db
from .ps_metrics import GaussianStats, frechet_distance
from core.hashing import sha256_file
from core.models.base import load_model, model_files
from core import lazy
placement_features = lazy.module("core.models.placement_features")
renderer = lazy.module("core.renderer")

__all__ = ["SourceRow", "ChainRow", "SourceEvalResult", "evaluate_sources", "format_source_tables",
           "source_metrics", "METHODS"]

METHODS = ("centre", "uniform", "mean", "model", "model-v1")
LABELS = {"centre": "All centre", "uniform": "Uniform random", "mean": "Mean projection",
          "model": "Placement model (variety 0)", "model-v1": "Placement model (variety 1)"}


@dataclass
class SourceRow:
    name: str
    label: str
    diversity: float
    frechet: float
    e_min: float
    e_min_se: Optional[float]
    mean_abs_pan: float


@dataclass
class ChainRow:
    name: str
    label: str
    e_min: float
    e_min_se: Optional[float]
    d_f: float
    d_f_se: Optional[float] = None     # bootstrap over tracks
    corr: float = float("nan")         # median broadband L/R correlation
    side_mid_db: float = float("nan")  # median side-to-mid level
    excerpts: int = 0
    renditions: int = 0
    d_f_vs_ps: Optional[float] = None     # D_F minus the PS model's on the whole mix
    d_f_vs_ps_se: Optional[float] = None  # its standard error (paired bootstrap over tracks)


@dataclass
class SourceEvalResult:
    split: str
    seconds: float
    k: int
    excerpts: int
    sources: int
    real_spread: float = 0.0
    real_abs_pan: float = 0.0
    real_width: float = 0.0
    rows: list[SourceRow] = field(default_factory=list)
    chain: list[ChainRow] = field(default_factory=list)
    wall_seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def row(self, name: str) -> Optional[SourceRow]:
        return next((r for r in self.rows if r.name == name), None)


def _se(x) -> Optional[float]:
    x = np.asarray(x, np.float64)
    return float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else None


def source_metrics(truth: Sequence[tuple], proposals: Sequence[np.ndarray]) -> dict:
    """The measures of the module docstring for one method.

    ``truth``: per excerpt (pan [S], width [S], weight [S]); ``proposals``: per excerpt an array
    [shape=(K, S, 2)] of proposed (pan, width). Returns diversity, frechet, e_min, e_min_se,
    mean_abs_pan and e_min_per (each excerpt's E_min, in order)."""
    if len(truth) != len(proposals) or not truth:
        raise ParameterError("need one proposal array per excerpt")
    real, gen = GaussianStats(2), GaussianStats(2)
    div, emin, absp = [], [], []
    for (pan, width, w), prop in zip(truth, proposals):
        w = np.asarray(w, np.float64) / max(float(np.sum(w)), 1e-30)
        k = prop.shape[0]
        for i in range(len(pan)):
            real.add(np.array([[pan[i], width[i]]]), w[i])
            gen.add(prop[:, i, :], w[i] / k)
        div.append(float((w * prop[:, :, 0].std(axis=0)).sum()))
        emin.append(float(np.min((np.abs(prop[:, :, 0] - pan[None]) * w[None]).sum(axis=1))))
        absp.append(float((np.abs(prop[:, :, 0]).mean(axis=0) * w).sum()))
    return {"diversity": float(np.mean(div)), "frechet": frechet_distance(real.mean, real.cov, gen.mean, gen.cov),
            "e_min": float(np.mean(emin)), "e_min_se": _se(emin), "mean_abs_pan": float(np.mean(absp)),
            "e_min_per": emin}


def _propose(method: str, energies, residual, params, seed: int) -> list[Placement]:
    s = len(energies)
    if method == "centre":
        return [Placement() for _ in range(s)]
    if method == "uniform":
        rng = np.random.default_rng(seed)
        return [Placement(float(rng.uniform(-1, 1)), float(rng.uniform(0, 1))) for _ in range(s)]
    if method == "mean":
        return propose(energies, method="mean", params=params)
    variety = 1.0 if method == "model-v1" else 0.0
    return propose(energies, method="model", seed=seed, variety=variety, residual=residual)


def prediction_tag(ps_model: str, folder=None) -> str:
    """What a cached prediction of ``ps_model`` depends on besides the audio and the seed: its model file (whose
    meta holds the sampling defaults), as the first 16 hex digits of the file's SHA-256 ("" for a model without
    files, e.g. ``decorr``). A new model file makes every cached prediction of the old one a miss."""
    files = [f for f in model_files(ps_model, folder) if f.suffix != ".json"]
    return sha256_file(files[0])[:16] if files and files[0].is_file() else ""


def _cached(folder: Optional[Path], name: str, make: Optional[Callable[[], PSParams]], tag: str = "") -> PSParams:
    """``make()``, kept in ``folder/name.npz`` when a folder is given (the PS model's predictions do
    not depend on the placement, so re-evaluating a new placement model reuses them). ``tag``
    (:func:`prediction_tag`): an entry made with another tag is made again (with no ``make``: an error
    naming it)."""
    if folder is None:
        return make()
    path = Path(folder) / (name + ".npz")
    if path.exists():
        hit = read_npz(path, lambda z: PSParams(z["iid"], z["ic"])
                       if not tag or ("tag" in z.files and str(z["tag"]) == tag) else None)
        if hit is not None:
            return hit
    if make is None:
        raise ParameterError(f"{path}: no cached PS parameters of this model file (tag {tag or 'none'}): "
                             f"make them first (soundstage eval or train with this cache)")
    p = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, iid=p.iid, ic=p.ic, tag=tag)
    return p


DECODE_LAW = 2   # the decoder's law the cached analyses were made with (2: at real stereo's power, issue 24)


def _cached_decode(folder: Optional[Path], name: str, mono: np.ndarray, params: PSParams, cancel,
                   tag: str = ""):
    """The PS parameters and broadband measures of ``params`` decoded onto ``mono`` (cached as
    :func:`_cached`, ``tag`` the parameters' own)."""
    path = None if folder is None else Path(folder) / (name + ".npz")
    if path is not None and path.exists():
        def read(z):
            same = "law" in z.files and int(z["law"]) == DECODE_LAW   # older entries: decoded at another law
            if same and (not tag or ("tag" in z.files and str(z["tag"]) == tag)):
                return PSParams(z["iid"], z["ic"]), (float(z["corr"]), float(z["side"]))
            return None
        hit = read_npz(path, read)
        if hit is not None:
            return hit
    out = decode(mono, params, cancel=cancel)
    a, m = analyze(out), (broadband_correlation(out), side_to_mid_db(out))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, iid=a.iid, ic=a.ic, corr=m[0], side=m[1], law=DECODE_LAW, tag=tag)
    return a, m


def _cached_sources(folder: Optional[Path], key: str, mono: np.ndarray, separate: Callable, cancel):
    """The sources of ``mono`` as renders (stem, decorrelated copy, band energies) and their residual
    flags, kept in ``folder`` when given (separation and decorrelation are the slow part)."""
    path = None if folder is None else Path(folder) / f"sources-{key}.npz"
    if path is not None and path.exists():
        return read_npz(path, lambda z: ([renderer.SourceRender(z["s"][i], z["d"][i], z["energy"][i])
                                          for i in range(len(z["s"]))], [bool(v) for v in z["residual"]]))
    sources = separate(mono)
    renders = [renderer.prepare_source(np.ascontiguousarray(src.audio[:len(mono)], dtype=np.float32), cancel=cancel)
               for src in sources]
    residual = [src.kind == "residual" for src in sources]
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, s=np.stack([r.s for r in renders]), d=np.stack([r.d for r in renders]),
                     energy=np.stack([r.energy for r in renders]), residual=np.array(residual))
    return renders, residual


CHAIN_ROWS = (("stereo", "real stereo (the reference itself)"), ("next", "real stereo, next 10 s"),
              ("decorr", "decorr on the whole mix"), ("ps", "{ps} on the whole mix (no separator)"),
              ("chain-raw", "chain, variety 0, detail uncalibrated"), ("chain-raw-v1", "chain, variety 1, uncalibrated"),
              ("chain-model", "chain, variety 0"), ("chain-model-v1", "chain, variety 1"))


def evaluate_sources(excerpts, separate: Callable, *, k: int = 8, ps_model: str = "ps-mtm", chain: bool = True,
                     methods: Sequence[str] = METHODS, split: str = "valid", seconds: float = 10.0,
                     cache: Optional[Path] = None, raw_rows: bool = False, progress: Optional[ProgressFn] = None,
                     cancel: Optional[threading.Event] = None) -> SourceEvalResult:
    """Source-level rows (and with ``chain`` the whole-output rows) on ``excerpts``
    (:class:`training.evaluation.Excerpt` list; each needs ``stereo``) with sources from ``separate(mono)``.
    ``cache``: a folder keeping each excerpt's sources (stems and decorrelated copies) and the PS
    model's predictions and their decoded analysis per excerpt and seed. The chain renders the PS model's detail
    through its calibration (:mod:`core.detail`) when it has one; ``raw_rows`` then adds the chain's rows without it
    (paired: the same excerpts, seeds and places)."""
    if k < 1:
        raise ParameterError(f"K must be at least 1, got {k}")
    t0 = time.monotonic()
    ps, dec = load_model(ps_model), load_model("decorr")
    tag = prediction_tag(ps_model)        # cached predictions of another model file are made again
    detail = load_detail(ps_model)        # the chain renders the PS model's detail through its calibration
    variants = [("chain-model", 0.0, detail), ("chain-model-v1", 1.0, detail)]
    if detail is not None and raw_rows:   # and, for the paired comparison, as the model samples it
        variants = [("chain-raw", 0.0, None), ("chain-raw-v1", 1.0, None)] + variants
    truth, props = [], {m: [] for m in methods}
    pools = {n: OutputPool() for n, _ in CHAIN_ROWS}
    n_src = 0
    for j, ex in enumerate(excerpts):
        check_cancel(cancel)
        digest = hashlib.sha1(ex.mono.tobytes()).hexdigest()[:16]
        renders, residual = _cached_sources(cache, digest, ex.mono, separate, cancel)
        energies = np.stack([r.energy for r in renders])
        specs = np.stack([stft(r.s) for r in renders])
        t = placement_features.true_placement(specs, stft(ex.stereo[:, 0]), stft(ex.stereo[:, 1]))
        del specs
        truth.append((t["pan"], t["width"], t["energy"]))
        n_src += len(renders)
        track = ex.track or ex.name.split("@")[0]
        outs = {n: ([], []) for n, _ in CHAIN_ROWS}
        per = {m: [] for m in methods}
        for seed in range(k):
            check_cancel(cancel)
            key = f"{ps_model}-{digest}-{seed}"
            params = _cached(cache, key, lambda: ps.predict(ex.mono, seed=seed, cancel=cancel), tag)
            for m in methods:
                pl = _propose(m, energies, residual, params, seed)
                per[m].append([(p.pan, p.width) for p in pl])
            if chain:
                a, meas = _cached_decode(cache, key + "-decoded", ex.mono, params, cancel, tag)
                outs["ps"][0].append(a)
                outs["ps"][1].append(meas)
                for name, variety, cal in variants:
                    pl = propose(energies, method="model", seed=seed, variety=variety, residual=residual)
                    renderer.auto_renders(renders, params, np.array([(p.pan, p.width) for p in pl]),
                                          detail=None if cal is None else cal.for_rendition(seed),
                                          cancel=cancel)
                    y = renderer.mix(renders, pl)
                    outs[name][0].append(analyze(y))
                    outs[name][1].append((broadband_correlation(y), side_to_mid_db(y)))
            report(progress, "sources", j * k + seed + 1, len(excerpts) * k, ex.name)
        for m in methods:
            props[m].append(np.array(per[m], np.float64))
        if chain:
            a, meas = _cached_decode(cache, f"decorr-{digest}", ex.mono, dec.predict(ex.mono), cancel)
            pools["decorr"].add(track, ex.real, [a], weight=float(k), measures=[meas])
            pools["stereo"].add(track, ex.real, [ex.real], [ex.stereo])
            if ex.other is not None and ex.other_stereo is not None:
                pools["next"].add(track, ex.real, [ex.other], [ex.other_stereo])
            for name in ("ps", *(v[0] for v in variants)):
                pools[name].add(track, ex.real, outs[name][0], measures=outs[name][1])
    res = SourceEvalResult(split, seconds, k, len(truth), n_src)
    pans = np.concatenate([t[0] for t in truth])
    widths = np.concatenate([t[1] for t in truth])
    w = np.concatenate([t[2] / max(float(t[2].sum()), 1e-30) for t in truth])
    mu = np.average(pans, weights=w)
    res.real_spread = float(np.sqrt(np.average((pans - mu) ** 2, weights=w)))
    res.real_abs_pan = float(np.average(np.abs(pans), weights=w))
    res.real_width = float(np.average(widths, weights=w))
    for m in methods:
        r = source_metrics(truth, props[m])
        res.rows.append(SourceRow(m, LABELS.get(m, m), r["diversity"], r["frechet"], r["e_min"], r["e_min_se"],
                                  r["mean_abs_pan"]))
    if chain:
        figs = {name: pools[name].figures() for name, _ in CHAIN_ROWS if pools[name].emin}
        ref = figs.get("ps")
        for name, label in CHAIN_ROWS:
            if name not in figs:
                continue
            f = figs[name]
            res.chain.append(ChainRow(name, label.format(ps=ps_model), f.e_min, f.e_min_se, f.d_f, f.d_f_se,
                                      f.corr, f.side_mid_db, f.excerpts, f.renditions,
                                      None if ref is None else f.d_f - ref.d_f,
                                      None if ref is None else paired_se(f, ref)))
    res.wall_seconds = time.monotonic() - t0
    return res


def format_source_tables(res: SourceEvalResult) -> str:
    lines = [f"source level, split {res.split!r}: {res.excerpts} excerpts of {res.seconds:g} s, "
             f"{res.sources} sources, K = {res.k}",
             f"real sources: pan spread (weighted std) {res.real_spread:.3f}, mean |pan| {res.real_abs_pan:.3f}, "
             f"mean width {res.real_width:.3f}"]
    head = f"{'Method':<30s} {'diversity':>9s} {'D_F(pan,w)':>10s} {'src E_min':>9s} {'(+-se)':>7s} {'mean|pan|':>9s}"
    lines += [head, "-" * len(head)]
    for r in res.rows:
        se = f"{r.e_min_se:7.3f}" if r.e_min_se is not None else f"{'':7s}"
        lines.append(f"{r.label:<30s} {r.diversity:9.3f} {r.frechet:10.4f} {r.e_min:9.3f} {se} {r.mean_abs_pan:9.3f}")
    if res.chain:
        lines.append("")
        lines.append("whole output (rendered stereo vs the real stereo's PS parameters)")
        head = (f"{'Approach':<38s} {'E_min':>6s} {'(+-se)':>6s} {'D_F':>6s} {'(+-se)':>6s} {'-PS':>6s} "
                f"{'(+-se)':>6s} {'corr':>6s} {'S/M dB':>7s}  excerpts x renditions")
        lines += [head, "-" * len(head)]

        def num(v, fmt):
            return format(v, fmt) if v is not None else " " * 6
        for r in res.chain:
            lines.append(f"{r.label:<38s} {r.e_min:6.3f} {num(r.e_min_se, '6.3f')} {r.d_f:6.2f} {num(r.d_f_se, '6.2f')} "
                         f"{num(r.d_f_vs_ps, '+6.2f')} {num(r.d_f_vs_ps_se, '6.2f')} {r.corr:6.3f} "
                         f"{r.side_mid_db:7.2f}  {r.excerpts} x {r.renditions}")
        lines.append("(E_min: mean over excerpts of the best of K renditions, +- its standard error; D_F +- a "
                     "bootstrap over tracks; -PS: D_F minus the PS model's on the whole mix, +- the paired bootstrap's "
                     "standard error; corr: median broadband L/R correlation, S/M: median side-to-mid level)")
    return "\n".join(lines)
