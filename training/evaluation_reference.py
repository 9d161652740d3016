"""Placement given a stereo reference, evaluated on real stereo (issue 27).

On every clean track of a split (as :func:`training.evaluation.load_excerpts` chooses them), excerpt
A (10 s from the middle) is the recording: its mono downmix is separated with source formation and
every source's true place measured in A's real stereo (as :mod:`training.evaluation_sources`). Its
proposals come from one of the *conditions*:

* ``none``: the placement model alone (variety 0), as the app proposes without a reference;
* ``same-track``: with excerpt B of the same track as the reference: the 10 s after A (before it
  when the track ends too soon), the neighbour :func:`training.evaluation.load_excerpts` takes for
  the real-stereo floor;
* ``same-track-far``: with another part of the same track: 10 s centred at a quarter of the track
  (a track under 30 s: as ``same-track``);
* ``same-track-places`` (asked for by name, not in "all"): as ``same-track`` for the places, the
  per-band detail the PS model's alone (what following the reference's per-band image adds);
* ``itself``: with A's own stereo (the archivist's stereo issue of the very recording): the
  ceiling of the method, where the reference's sources are the recording's;
* ``same-album``: with excerpt A of another track of the same package (the next clean track of
  that package in the split, cyclically; a package with one clean track in the split: the middle
  10 s of a track of that package in ``train``; no such track: the excerpt is left out of every
  condition).

Each reference is analysed as the app analyses one (:func:`core.reference.analyse_reference`, the
same separator); a mono or near-mono reference is not used (the excerpt is proposed without it, as
the app does, and the table counts them); K proposals per excerpt (seeds 0..K-1, variety 0).

Measures: source level as :func:`training.evaluation_sources.source_metrics` (source E_min with its
standard error over excerpts, D_F of (pan, width), diversity, mean |pan|); whole output as the
chain renders it (every auto source band by band around its place with PS-MTM's tile parameters,
mixed), against A's real stereo: E_min (+-se over excerpts) and D_F (+-se, a bootstrap over
excerpts) of :mod:`training.ps_metrics`, and the median broadband L/R correlation and side-to-mid
level over all renditions (the real stereo's own in the first line).
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from core.audio import replacing
from core.detail import load_detail
from core.errors import ParameterError
from core.progress import ProgressFn, check_cancel, report
from core.ps import analyze
from core.reference import MonoReference, ReferenceScene, analyse_reference, side_to_mid_db
from core.stft import stft

from .dataset import Track, load_excerpt, tracks
from . import evaluation_sources
from .evaluation_sources import _cached, source_metrics
from .ps_metrics import GaussianStats, frechet_distance, rendition_error
from types import SimpleNamespace
from core.models.base import load_model
from core.reference import band_image, decides_sides, followed, match_scene, propose_with_reference
from core import lazy
datahash = lazy.module("training.datahash")
placement = lazy.module("core.placement")
placement_features = lazy.module("core.models.placement_features")
renderer = lazy.module("core.renderer")

__all__ = ["CONDITIONS", "ALL_CONDITIONS", "RefRow", "ReferenceEvalResult", "evaluate_reference", "format_reference_table",
           "reference_excerpts", "RefExcerpt"]

CONDITIONS = ("none", "same-track", "same-album", "same-track-far", "itself")
ALL_CONDITIONS = CONDITIONS + ("same-track-places",)
SECONDS = 10.0
BOOTSTRAP = 200


@dataclass
class RefExcerpt:
    name: str
    package: str
    stereo: np.ndarray            # A [shape=(n, 2)]
    same_track: np.ndarray        # B of the same track
    same_album: Optional[np.ndarray]
    album_from: str = ""          # the same-album reference's track
    same_track_far: Optional[np.ndarray] = None

    @property
    def mono(self) -> np.ndarray:
        return self.stereo.mean(axis=1, dtype=np.float64).astype(np.float32)


@dataclass
class RefRow:
    condition: str
    e_min: float
    e_min_se: Optional[float]
    frechet: float
    diversity: float
    mean_abs_pan: float
    out_e_min: float = float("nan")
    out_e_min_se: Optional[float] = None
    out_d_f: float = float("nan")
    out_d_f_se: Optional[float] = None
    corr: float = float("nan")
    side_mid_db: float = float("nan")
    ratio: float = float("nan")              # source E_min / none's (means over excerpts; session 12)
    ratio_se: Optional[float] = None         # its paired bootstrap standard error over excerpts
    out_diff: float = float("nan")           # output E_min minus none's, per excerpt, averaged
    out_diff_se: Optional[float] = None      # its standard error over excerpts


@dataclass
class ReferenceEvalResult:
    split: str
    k: int
    excerpts: int
    sources: int
    rows: list[RefRow] = field(default_factory=list)
    real_corr: float = float("nan")
    real_side_mid_db: float = float("nan")
    album_from_train: int = 0
    mono_references: dict = field(default_factory=dict)   # condition -> excerpts whose reference was mono
    unfollowed: dict = field(default_factory=dict)        # condition -> references the matcher's gate left out
    loose: dict = field(default_factory=dict)             # condition -> references followed loosely
    hedged: dict = field(default_factory=dict)            # condition -> references followed by some renditions
    wall_seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def row(self, condition: str) -> Optional[RefRow]:
        return next((r for r in self.rows if r.condition == condition), None)


def _clean_tracks(data, split: str) -> list[Track]:
    ts = [t for t in tracks(data, split) if t.seconds >= SECONDS]
    leaked = set(datahash.copies_of(ts, [t for t in tracks(data) if t.split != split]))
    return [t for t in ts if t not in leaked]


def _middle(t: Track) -> float:
    return max(0.0, t.seconds / 2 - SECONDS / 2)


def _b_start(t: Track, far: bool = False) -> float:
    a = _middle(t)
    if far and t.seconds >= 3 * SECONDS:
        return max(0.0, min(t.seconds / 4 - SECONDS / 2, a - SECONDS))
    after = a + SECONDS
    return after if after + SECONDS <= t.seconds else max(0.0, min(a - SECONDS, t.seconds - SECONDS))


def reference_excerpts(data=None, split: str = "valid", *, limit: Optional[int] = None,
                       progress: Optional[ProgressFn] = None,
                       cancel: Optional[threading.Event] = None) -> tuple[list[RefExcerpt], int]:
    """The excerpts of the module docstring, and how many same-album references came from ``train``."""
    ts = _clean_tracks(data, split)[:limit]
    if not ts:
        raise ParameterError(f"no tracks of at least {SECONDS:g} s in split {split!r}")
    by_pk: dict = {}
    for t in ts:
        by_pk.setdefault(t.package, []).append(t)
    train_by_pk: dict = {}
    for t in tracks(data, "train"):
        if t.seconds >= SECONDS:
            train_by_pk.setdefault(t.package, []).append(t)
    out, from_train = [], 0
    for i, t in enumerate(ts):
        check_cancel(cancel)
        same = by_pk[t.package]
        if len(same) > 1:
            o = same[(same.index(t) + 1) % len(same)]
        elif train_by_pk.get(t.package):
            o = train_by_pk[t.package][0]
            from_train += 1
        else:
            continue
        out.append(RefExcerpt(t.path.stem, t.package, load_excerpt(t.path, _middle(t), SECONDS),
                              load_excerpt(t.path, _b_start(t), SECONDS),
                              load_excerpt(o.path, _middle(o), SECONDS), o.path.stem,
                              load_excerpt(t.path, _b_start(t, far=True), SECONDS)))
        report(progress, "excerpts", i + 1, len(ts), t.path.name)
    return out, from_train


def _digest(x: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(x).tobytes()).hexdigest()[:16]


def _cached_sources(folder: Optional[Path], mono: np.ndarray, separate: Callable, cancel):
    """(renders, residual flags) of ``mono``'s sources, kept in ``folder`` when given: the cache of
    :mod:`training.evaluation_sources` (one cache serves both), keyed by the excerpt's digest."""
    return evaluation_sources._cached_sources(folder, _digest(mono), mono, separate, cancel)


def _cached_scene(folder: Optional[Path], stereo: np.ndarray, separate: Callable) -> Optional[ReferenceScene]:
    """The scene of ``stereo`` (None for a mono or near-mono one, which the app does not use)."""
    path = None if folder is None else Path(folder) / f"reference-{_digest(stereo)}.json"
    if path is not None and path.exists():
        d = json.loads(path.read_text())
        return None if d.get("mono") else ReferenceScene.from_dict(d)
    try:
        scene = analyse_reference(stereo, separate, separator="formation")
    except MonoReference:
        scene = None
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path) as tmp:
            Path(tmp).write_text(json.dumps({"mono": True} if scene is None else scene.to_dict()))
    return scene


def _scene_of(stereo: np.ndarray, renders, residual) -> Optional[ReferenceScene]:
    given = [SimpleNamespace(audio=r.s, kind="residual" if res else "") for r, res in zip(renders, residual)]
    try:
        return analyse_reference(stereo, lambda mono: given, separator="formation")
    except MonoReference:
        return None


def _broadband(y: np.ndarray) -> tuple[float, float]:
    left, right = y[:, 0].astype(np.float64), y[:, 1].astype(np.float64)
    den = float(np.sqrt(np.dot(left, left) * np.dot(right, right)))
    return (float(np.dot(left, right) / den) if den > 0 else 1.0), side_to_mid_db(y)


def _se(x) -> Optional[float]:
    x = np.asarray(x, np.float64)
    return float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else None


def _d_f(real: list, gen: list, idx) -> float:
    a, b = GaussianStats(), GaussianStats()
    for i in idx:
        a.merge(real[i])
        b.merge(gen[i])
    return frechet_distance(a.mean, a.cov, b.mean, b.cov)


def evaluate_reference(excerpts: Sequence[RefExcerpt], separate: Callable, *, k: int = 8,
                       conditions: Sequence[str] = CONDITIONS, ps_model: str = "ps-mtm", chain: bool = True,
                       split: str = "valid", album_from_train: int = 0, cache: Optional[Path] = None,
                       progress: Optional[ProgressFn] = None,
                       cancel: Optional[threading.Event] = None) -> ReferenceEvalResult:
    """The rows of the module docstring, one per condition."""
    bad = [c for c in conditions if c not in ALL_CONDITIONS]
    if bad or not conditions:
        raise ParameterError(f"unknown reference condition {bad[0] if bad else ''!r}; "
                             f"choose from {', '.join(ALL_CONDITIONS)}")
    if k < 1:
        raise ParameterError(f"K must be at least 1, got {k}")
    t0 = time.monotonic()
    ps = load_model(ps_model) if chain else None
    tag = evaluation_sources.prediction_tag(ps_model) if chain else ""
    truth, props = [], {c: [] for c in conditions}
    real_s, gen_s = [], {c: [] for c in conditions}
    emin, meas, real_meas = {c: [] for c in conditions}, {c: [] for c in conditions}, []
    n_src = 0
    mono_refs: dict = {}
    unfollowed: dict = {}
    loose: dict = {}
    hedged: dict = {}
    for j, ex in enumerate(excerpts):
        check_cancel(cancel)
        mono = ex.mono
        renders, residual = _cached_sources(cache, mono, separate, cancel)
        energies = np.stack([r.energy for r in renders])
        t = placement_features.true_placement(np.stack([stft(r.s) for r in renders]), stft(ex.stereo[:, 0]),
                                              stft(ex.stereo[:, 1]))
        truth.append((t["pan"], t["width"], t["energy"]))
        n_src += len(renders)
        refs = {"same-track": ex.same_track, "same-album": ex.same_album, "same-track-far": ex.same_track_far,
                "same-track-places": ex.same_track}
        scenes = {c: _cached_scene(cache, refs[c], separate) for c in conditions if c not in ("none", "itself")}
        if "itself" in conditions:        # the same downmix: the separator gives the recording's sources
            scenes["itself"] = _scene_of(ex.stereo, renders, residual)
        matches = {c: match_scene(energies, sc) for c, sc in scenes.items() if sc is not None}   # one each
        for c, sc in scenes.items():
            mono_refs[c] = mono_refs.get(c, 0) + (sc is None)
            if sc is not None:         # a reference unlike the recording: the placement model alone
                tier = followed(energies, sc, match=matches[c])[0]
                unfollowed[c] = unfollowed.get(c, 0) + (not tier)
                loose[c] = loose.get(c, 0) + (tier == "loose")
                hedged[c] = hedged.get(c, 0) + (tier == "hedged")
        real = analyze(ex.stereo)
        rs = GaussianStats()
        rs.add_params(real)
        real_s.append(rs)
        real_meas.append(_broadband(ex.stereo))
        per = {c: [] for c in conditions}
        errs = {c: [] for c in conditions}
        gs = {c: GaussianStats() for c in conditions}
        for seed in range(k):
            check_cancel(cancel)
            params = None
            if chain:
                params = _cached(cache, f"{ps_model}-{_digest(mono)}-{seed}",
                                 lambda: ps.predict(mono, seed=seed, cancel=cancel), tag)
            for c in conditions:
                band = None
                if c == "none" or scenes[c] is None:     # a mono reference: not used (the app says so)
                    pl = placement.propose(energies, method="model", seed=seed, residual=residual)
                    y = np.array([(p.pan, p.width) for p in pl])
                else:
                    y = propose_with_reference(energies, scenes[c], seed=seed, residual=residual, match=matches[c])
                    if c != "same-track-places":
                        band = band_image(energies, scenes[c], seed=seed, match=matches[c])
                per[c].append(y)
                if chain:           # the detail of a rendition as the app draws it (mirrored with the
                    cal = load_detail(ps_model)        # places unless the reference decides the sides)
                    cal = cal and cal.for_rendition(seed, mirror=c == "none" or scenes[c] is None
                                                    or not decides_sides(energies, scenes[c], seed=seed,
                                                                         match=matches[c]))
                    renderer.auto_renders(renders, params, y, detail=cal, band_image=band,
                                          cancel=cancel)
                    out = renderer.mix(renders, [placement.Placement(float(p), float(w)) for p, w in y])
                    a = analyze(out).fit_frames(real.n_frames)
                    errs[c].append(rendition_error(real, a))
                    gs[c].add_params(a)
                    meas[c].append(_broadband(out))
            report(progress, "reference", j * k + seed + 1, len(excerpts) * k, ex.name)
        for c in conditions:
            props[c].append(np.array(per[c], np.float64))
            if chain:
                emin[c].append(min(errs[c]))
                gen_s[c].append(gs[c])
    res = ReferenceEvalResult(split, k, len(truth), n_src, album_from_train=album_from_train,
                              mono_references={c: v for c, v in mono_refs.items() if v},
                              unfollowed={c: v for c, v in unfollowed.items() if v},
                              loose={c: v for c, v in loose.items() if v},
                              hedged={c: v for c, v in hedged.items() if v})
    if real_meas:
        res.real_corr = float(np.median([m[0] for m in real_meas]))
        res.real_side_mid_db = float(np.median([m[1] for m in real_meas]))
    rng = np.random.default_rng(0)
    boot = [rng.integers(0, len(truth), len(truth)) for _ in range(BOOTSTRAP)] if len(truth) > 1 else []
    per: dict = {}                      # each condition's source E_min, excerpt by excerpt
    for c in conditions:
        r = source_metrics(truth, props[c])
        per[c] = np.asarray(r["e_min_per"])
        row = RefRow(c, r["e_min"], r["e_min_se"], r["frechet"], r["diversity"], r["mean_abs_pan"])
        if chain and emin[c]:
            row.out_e_min, row.out_e_min_se = float(np.mean(emin[c])), _se(emin[c])
            row.out_d_f = _d_f(real_s, gen_s[c], range(len(truth)))
            row.out_d_f_se = float(np.std([_d_f(real_s, gen_s[c], b) for b in boot], ddof=1)) if boot else None
            row.corr = float(np.median([m[0] for m in meas[c]]))
            row.side_mid_db = float(np.median([m[1] for m in meas[c]]))
        res.rows.append(row)
    if "none" in conditions:            # each condition against the placement model alone, excerpt by excerpt
        for row in res.rows:
            e, n = per[row.condition], per["none"]
            row.ratio = float(e.mean() / n.mean())
            row.ratio_se = float(np.std([e[b].mean() / n[b].mean() for b in boot], ddof=1)) if boot else None
            if chain and emin[row.condition]:
                d = np.asarray(emin[row.condition]) - np.asarray(emin["none"])
                row.out_diff, row.out_diff_se = float(d.mean()), _se(list(d))
    res.wall_seconds = time.monotonic() - t0
    return res


def _pm(v: float, se: Optional[float], w: int = 6, p: int = 3) -> str:
    return f"{v:{w}.{p}f} ±{se:.{p}f}" if se is not None else f"{v:{w}.{p}f}{'':{p + 3}s}"


def format_reference_table(res: ReferenceEvalResult) -> str:
    lines = [f"placement given a reference, split {res.split!r}: {res.excerpts} excerpts of {SECONDS:g} s "
             f"(A: the recording), {res.sources} sources, K = {res.k}"
             + (f"; {res.album_from_train} same-album references from train tracks" if res.album_from_train else "")
             + "".join(f"; {v} {c} reference(s) near-mono, not used" for c, v in res.mono_references.items())
             + "".join(f"; {v} {c} reference(s) unlike the recording, not followed"
                       for c, v in res.unfollowed.items())
             + "".join(f"; {v} {c} reference(s) followed loosely" for c, v in res.loose.items())
             + "".join(f"; {v} {c} reference(s) hedged (followed by some renditions)" for c, v in res.hedged.items())]
    head = (f"{'Reference':<11s} {'src E_min (±se)':>16s} {'D_F(pan,w)':>10s} {'diversity':>9s} {'mean|pan|':>9s}"
            f" | {'out E_min (±se)':>16s} {'out D_F (±se)':>15s} {'corr':>6s} {'S/M dB':>7s}")
    lines += [head, "-" * len(head)]
    for r in res.rows:
        lines.append(f"{r.condition:<11s} {_pm(r.e_min, r.e_min_se, 9):>16s} {r.frechet:10.4f} {r.diversity:9.3f} "
                     f"{r.mean_abs_pan:9.3f} | {_pm(r.out_e_min, r.out_e_min_se, 9):>16s} "
                     f"{_pm(r.out_d_f, r.out_d_f_se, 7, 2):>15s} {r.corr:6.3f} {r.side_mid_db:7.1f}")
    lines.append(f"{'real A':<11s} {'':>16s} {'':>10s} {'':>9s} {'':>9s} | {'':>16s} {'':>15s} "
                 f"{res.real_corr:6.3f} {res.real_side_mid_db:7.1f}")
    paired = [r for r in res.rows if r.condition != "none" and np.isfinite(r.ratio)]
    if paired:
        lines.append("against none, excerpt by excerpt: " + "; ".join(
            f"{r.condition} src E_min {_pm(r.ratio, r.ratio_se, 1)} of none's"
            + (f", out E_min {r.out_diff:+.4f} ±{r.out_diff_se:.4f}" if np.isfinite(r.out_diff) and r.out_diff_se else "")
            for r in paired))
    return "\n".join(lines)
