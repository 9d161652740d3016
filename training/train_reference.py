"""Tuning the reference matcher (:class:`core.models.reference_match.ReferenceMatcher`) on pairs of
excerpts of real stereo music of the ``train`` split (:func:`training.reference_data.build_analysed`:
excerpt A of a track as the recording, B of the same track or A of another track of its package as
the reference, each analysed as the app analyses a reference).

The objective is the evaluation's (``soundstage eval --sources --reference``): source E_min over K
proposals (seeds 0..K-1, variety 0), the energy-weighted mean |pan error| of the best one, averaged
over pairs, for same-track and same-album pairs, each as a ratio to the placement model alone.
Stages (each on the fitting pairs; every fifth track by content digest is held out and only
reported):

1. the transport's ``temperature`` and ``share_power`` at a fixed narrow ``sigma``, same-track pairs;
2. per pair, E_min for a ladder of pan deviations followed closely (the reference's sides), each
   with every rendition at the transported places and, for :data:`SPREAD_LADDER`, with the
   renditions carrying the image differently wide (``spread`` of :data:`SPREADS`,
   :meth:`~core.models.reference_match.ReferenceMatcher.for_rendition`), and loosely (the
   reference's sides or their mirror image, by seed);
3. ``sigma``, ``spread`` and ``gate_max`` (the close tier), ``loose_sigma`` and ``loose_gate`` (the
   loose tier, gates between the two; none: ``loose_gate`` 0) or ``hedge_gate`` and ``hedge_follow``
   (the hedged tier instead: past ``gate_max`` some renditions follow closely, the others are the
   placement model's, from each pair's per-seed errors; with ``hedge_gate2`` and ``hedge_follow2`` a
   farther band followed by fewer renditions), as the issue sets the targets: the
   lowest same-track ratio among the settings whose same-album ratio is not above 1 (no worse than
   the placement model alone), at K renditions and, from the per-seed errors, at the first
   :data:`K_ALSO` (the whole-output evaluation's K; session 11); if none is, the lowest mean of the
   two ratios; the first of the best
   few whose same-album source D_F of (pan, width) is not above the placement model's (its
   difference's standard error, a paired bootstrap over pairs, is logged); else the best close tier
   alone;
4. ``width_sigma``: the source-level D_F of (pan, width) on the same-track pairs.

Every pair's E_min is kept in ``--memo`` (keyed by the pair, the matcher's parameters and the
placement model's checksum and sampling), so a run resumes and a rerun on more tracks computes
only what is new.

    python -m training.train_reference --export resources/models/reference-match.json
"""
from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from core.audio import replacing
from core.hashing import sha256_file as file_sha256
from core.detail import MIRROR_ODD
from core.models.placement import PAN_SPREAD, load_placement_model, placement_model_path
from core.models.reference_match import HEDGE_ORDER, ReferenceMatcher
from core.reference import place_features

from .evaluation_sources import source_metrics

from .reference_data import analysed_pairs, load_analysed

__all__ = ["split_pairs", "pair_emin", "pair_errors", "hedged_emin", "tune"]

K = 8
TEMPERATURES = (0.05, 0.1, 0.2)
SHARE_POWERS = (0.5, 1.0, 2.0)
LADDER = (0.015, 0.03, 0.06, 0.1, 0.2)
LOOSE_LADDER = (0.1, 0.2, 0.3)
GATE_MAX = (0.15, 0.2, 0.25, 0.3, 0.35)
LOOSE_GATE = (0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8)     # beyond 0.8 a reference is never followed
WIDTH_SIGMAS = (0.1, 0.2, 0.4, 0.8)
SPREADS = (0.0, 0.2, 0.4, 0.6)
SPREAD_LADDER = (0.03, 0.06, 0.1)      # the pan deviations tried with a spread
HEDGE_GATE = (0.3, 0.35, 0.4, 0.5, 0.6)
HEDGE_FOLLOW = (0.25, 0.5, 0.75)      # the share of renditions that follow a hedged reference
HEDGE_GATE2 = (0.4, 0.5, 0.6)         # a second, farther hedged band (session 11) ...
HEDGE_FOLLOW2 = (0.25,)               # ... followed by fewer renditions (than the first band's)
COVER = 128                           # covering renditions (session 12): the pool's draws ...
COVER_LADDER = ((0.03, 0.2, 4.0), (0.03, 0.3, 4.0), (0.05, 0.2, 4.0), (0.05, 0.3, 4.0), (0.03, 0.2, 2.0))  # (sigma, spread, T)
KINDS = ("same-track", "same-album")
K_ALSO = 4            # same-album no worse than none at K and at this many renditions too (0: at K only)
CANDIDATES = 4
BOOTSTRAP = 200


def split_pairs(prs: Sequence, *, every: int = 5) -> tuple[list, list]:
    """(fit, held out): pairs whose recording's track digest is a multiple of ``every`` are held out."""
    held = [int(p[3][:8], 16) % every == 0 for p in prs]
    return [p for p, h in zip(prs, held) if not h], [p for p, h in zip(prs, held) if h]


def _arrays(rec):
    w = np.asarray(rec.share, np.float64)
    return (np.asarray(rec.feats, np.float32), np.asarray(rec.mix, np.float32), w, w / max(float(w.sum()), 1e-30),
            np.asarray(rec.pan, np.float64))


def pair_proposals(rec, ref, matcher, model, *, k: int = K) -> np.ndarray:
    """The K proposals [shape=(K, S, 2)] for recording ``rec`` with ``ref`` as the reference
    (``matcher=None``: the placement model alone)."""
    f, mix, energy, _, _ = _arrays(rec)
    if matcher is None:
        return np.array([model.sample(f, mix, energy, seed=s) for s in range(k)])
    return np.array([place_features(f, mix, energy, ref, model=model, matcher=matcher, seed=s) for s in range(k)])


def pair_errors(rec, ref, matcher, model, *, k: int = K) -> list[float]:
    """Each proposal's source error (its energy-weighted mean |pan error|), seeds 0..k-1, with ``ref``
    as the reference (``matcher=None``: the placement model alone)."""
    _, _, _, w, truth = _arrays(rec)
    ys = pair_proposals(rec, ref, matcher, model, k=k)
    return [float(v) for v in (np.abs(ys[:, :, 0] - truth[None]) * w[None]).sum(axis=1)]


def pair_emin(rec, ref, matcher, model, *, k: int = K) -> float:
    """Source E_min of the proposals with ``ref`` as the reference (``matcher=None``: the placement
    model alone)."""
    return min(pair_errors(rec, ref, matcher, model, k=k))


def hedged_emin(close: Sequence[float], none: Sequence[float], follow: float) -> float:
    """E_min of a hedged pair: rendition ``s`` takes the close tier's error ``close[s]`` when it
    follows (:meth:`core.models.reference_match.ReferenceMatcher.follows`, ``hedge_follow`` =
    ``follow``), the placement model's ``none[s]`` otherwise."""
    n = int(round(4 * follow))
    return min(c if HEDGE_ORDER.index(s % 4) < n else e for s, (c, e) in enumerate(zip(close, none)))


class _Fixed(ReferenceMatcher):
    """A matcher that follows every reference closely (its pan deviation one rung of the ladder,
    its width deviation ``width_sigma``), as the close tier would at any gate."""

    memo_tag = "_Fixed2"        # until session 9 the width deviation past gate_max was the unfollowed one

    def match(self, *a, **kw):
        m = super().match(*a, **kw)
        sig = np.tile([self.sigma, self.width_sigma], (len(m.sigma), 1))
        return replace(m, sigma=sig, confidence=np.ones(len(sig)), followed=True, tier="close")


def _loose(t: ReferenceMatcher, s: float, mirror: float) -> ReferenceMatcher:
    """A matcher that follows every reference loosely, pan deviation ``s``."""
    return ReferenceMatcher(temperature=t.temperature, share_power=t.share_power, gate_max=-1.0, loose_gate=2.0,
                            loose_sigma=s, loose_mirror=mirror)


class _Memo:
    """Per-pair proposals' measures, kept in a JSON file (``--memo``) keyed by the pair (its
    recording and its reference), the matcher's class and parameters and the placement model's
    checksum and sampling (:data:`core.models.placement.PAN_SPREAD`, :data:`core.detail.MIRROR_ODD`),
    so that a tuning run resumes."""

    def __init__(self, model, path: Optional[Path] = None):
        self.model, self.path = model, (Path(path) if path else None)
        # the model's file and how it is sampled (a cached E_min of the model alone depends on both)
        self.tag = f"{file_sha256(placement_model_path())[:12]}-{PAN_SPREAD:g}-{int(bool(MIRROR_ODD))}"
        self.d = json.loads(self.path.read_text()) if self.path and self.path.exists() else {}
        self.new = 0

    def key(self, p, matcher) -> str:
        params = {} if matcher is None else matcher.params()
        if not params.get("cover"):            # no covering renditions: the keys as before they existed
            params = {k: v for k, v in params.items() if k not in ("cover", "cover_temperature")}
        if not params.get("hedge_gate2"):      # no second hedged band: the keys as before it existed
            params = {k: v for k, v in params.items() if k not in ("hedge_gate2", "hedge_follow2")}
        if not params.get("hedge_gate"):       # no hedged tier: the keys as before it existed
            params = {k: v for k, v in params.items() if k not in ("hedge_gate", "hedge_follow")}
        what = ("none" if matcher is None else getattr(matcher, "memo_tag", type(matcher).__name__)
                + json.dumps(params, sort_keys=True))
        return f"{self.tag}|{p[3]}/{p[2]}/{p[1].id}|{what}"

    def emin(self, p, matcher) -> float:
        k = self.key(p, matcher)
        if k not in self.d:
            self.d[k] = pair_emin(p[0], p[1], matcher, self.model)
            self._count()
        return self.d[k]

    def errors(self, p, matcher) -> list[float]:
        """Each seed's error (:func:`pair_errors`), kept beside the E_min (which it gives too)."""
        k = self.key(p, matcher) + "|seeds"
        if k not in self.d:
            self.d[k] = pair_errors(p[0], p[1], matcher, self.model)
            self.d.setdefault(self.key(p, matcher), min(self.d[k]))
            self._count()
        return self.d[k]

    def _count(self) -> None:
        self.new += 1
        if self.new % 100 == 0:
            self.save()

    def save(self) -> None:
        if self.path is not None:
            with replacing(self.path) as tmp:
                Path(tmp).write_text(json.dumps(self.d))


def _choose(fit, gates, ladder, none, log, seeds=None, candidates: int = CANDIDATES) -> list[dict]:
    """Stage 3: the tiers' parameters (see the module docstring) from the per-pair ladders: the best
    few candidates, best first, and last the best close tier alone. ``seeds``: per pair the close
    rungs' and the placement model's per-seed errors (keys as ``ladder``'s, and ``(id, "none")``),
    for the hedged tier and for the same-album check at :data:`K_ALSO` renditions too (without them
    neither)."""
    mean = {kind: float(np.mean([none[id(p)] for p in fit if p[2] == kind])) for kind in KINDS}
    album = [p for p in fit if p[2] == "same-album"]
    also = bool(seeds is not None and K_ALSO and album)
    mean_also = float(np.mean([min(seeds[(id(p), "none")][:K_ALSO]) for p in album])) if also else 0.0
    opts = [(rg, g, 0.0, 0.0, 0.0, 0.0, 0.5, 0.0, 0.25) for rg in _close_rungs() for g in GATE_MAX]
    opts += [(rg, g, ls, lg, mr, 0.0, 0.5, 0.0, 0.25) for rg in _close_rungs() for g in GATE_MAX
             for ls in LOOSE_LADDER for lg in LOOSE_GATE for mr in (1.0,) if lg > g]
    if seeds is not None:       # a hedged tier, alone or with a farther band followed by fewer renditions
        bands = [(hg, hf, 0.0, 0.25) for hg in HEDGE_GATE for hf in HEDGE_FOLLOW]
        bands += [(hg, hf, hg2, hf2) for hg in HEDGE_GATE for hf in HEDGE_FOLLOW for hg2 in HEDGE_GATE2
                  for hf2 in HEDGE_FOLLOW2 if hg2 > hg and hf2 < hf]
        opts += [(rg, g, 0.0, 0.0, 0.0, *b) for rg in _close_rungs() for g in GATE_MAX for b in bands
                 if b[0] > g]
    rows = []
    for rg, g, ls, lg, mr, hg, hf, hg2, hf2 in opts:
        def e(p, k=None):       # the pair's E_min over K renditions (k: over the first k, from the per-seed errors)
            gp = gates[id(p)]
            if gp <= g:
                return ladder[(id(p), "close", *rg)] if k is None else min(seeds[(id(p), "close", *rg)][:k])
            if gp <= max(hg, hg2):
                return hedged_emin(seeds[(id(p), "close", *rg)][:k], seeds[(id(p), "none")][:k],
                                   hf if gp <= hg else hf2)
            if gp <= lg:
                return ladder[(id(p), "loose", ls, mr)]
            return none[id(p)] if k is None else min(seeds[(id(p), "none")][:k])
        r = {kind: float(np.mean([e(p) for p in fit if p[2] == kind])) / mean[kind] for kind in KINDS}
        # the album pairs at K_ALSO renditions (a loose tier has no per-seed errors: K renditions only)
        r_also = float(np.mean([e(p, K_ALSO) for p in album])) / mean_also if also and not lg else None
        row = dict(sigma=rg[0], spread=rg[1], gate_max=g, loose_sigma=ls or 0.15, loose_gate=lg, loose_mirror=mr)
        if rg[2]:
            row.update(cover=rg[2], cover_temperature=rg[3])
        if hg:
            row.update(hedge_gate=hg, hedge_follow=hf)
        if hg2:
            row.update(hedge_gate2=hg2, hedge_follow2=hf2)
        rows.append((r["same-track"], r["same-album"], row, r_also))

    def rank(r):        # album no worse than none (at K and K_ALSO) first, by the same-track ratio; then the mean
        ok = r[1] <= 1.0 and (r[3] is None or r[3] <= 1.0)
        return (not ok, round(r[0] if ok else r[0] + r[1], 4), round(r[0] + r[1], 4))
    ok = sorted(rows, key=rank)
    close = min((r for r in rows if r[2]["loose_gate"] == 0.0 and not r[2].get("hedge_gate")), key=rank)

    def said(r):
        return f"same-track {r[0]:.3f}, same-album {r[1]:.3f}" + ("" if r[3] is None else f" ({r[3]:.3f} at K {K_ALSO})")
    log(f"stage 3: {len(rows)} settings; best {ok[0][2]}: {said(ok[0])} of the placement model alone; "
        f"the best close tier alone {close[2]}: {said(close)}")
    seen, out = set(), []
    for r in ok:                    # the candidates in order, one per tier layout, then the close tier alone
        k = json.dumps(r[2], sort_keys=True)
        if k not in seen:
            seen.add(k)
            out.append(r[2])
    return out[:candidates] + [close[2]]


def _worse(prs, matcher, model, none_props) -> tuple[float, float]:
    """How much higher the source D_F of (pan, width) of ``matcher``'s proposals for ``prs`` is than
    the placement model's alone (``none_props``, its proposals for the same pairs), and that
    difference's standard error (a paired bootstrap over pairs, :data:`BOOTSTRAP` resamples)."""
    truth = [(np.asarray(p[0].pan), np.asarray(p[0].width), np.asarray(p[0].share)) for p in prs]
    props = [pair_proposals(p[0], p[1], matcher, model) for p in prs]

    def diff(idx):
        t = [truth[i] for i in idx]
        return (source_metrics(t, [props[i] for i in idx])["frechet"]
                - source_metrics(t, [none_props[i] for i in idx])["frechet"])
    rng = np.random.default_rng(0)
    boot = [diff(rng.integers(0, len(prs), len(prs))) for _ in range(BOOTSTRAP)]
    return diff(range(len(prs))), float(np.std(boot, ddof=1))


def _measures(prs, matcher, model) -> dict:
    """Source E_min and D_F of (pan, width) (:func:`training.evaluation_sources.source_metrics`) of
    the proposals for the pairs ``prs``."""
    truth = [(np.asarray(p[0].pan), np.asarray(p[0].width), np.asarray(p[0].share)) for p in prs]
    r = source_metrics(truth, [pair_proposals(p[0], p[1], matcher, model) for p in prs])
    return {"e_min": r["e_min"], "frechet": r["frechet"], "mean_abs_pan": r["mean_abs_pan"]}


def _close_rungs() -> list[tuple[float, float, int, float]]:
    """Stage 2's close rungs: (pan deviation, spread, cover, cover temperature); cover 0: each
    rendition drawn on its own."""
    return ([(s, 0.0, 0, 4.0) for s in LADDER] + [(s, sp, 0, 4.0) for s in SPREAD_LADDER for sp in SPREADS if sp]
            + [(s, sp, COVER, t) for s, sp, t in COVER_LADDER])


def tune(prs: Sequence, *, table=None, memo=None, candidates: int = CANDIDATES,
         log: Callable[[str], None] = print) -> tuple[ReferenceMatcher, dict]:
    """The matcher tuned on ``prs`` ((recording, reference, kind, digest) tuples) and its figures."""
    model = load_placement_model()
    mm = _Memo(model, memo)
    fit, held = split_pairs(prs)
    seeds = {(id(p), "none"): mm.errors(p, None) for p in prs}
    none = {id(p): min(seeds[(id(p), "none")]) for p in prs}
    st = [p for p in fit if p[2] == "same-track"]
    best, best_e = None, np.inf
    grid = [(t, 1.0) for t in TEMPERATURES]
    for t, b in grid + [(None, b) for b in SHARE_POWERS if b != 1.0]:            # stage 1
        t = best.temperature if t is None else t
        m = _Fixed(temperature=t, share_power=b, sigma=0.03)
        e = float(np.mean([mm.emin(p, m) for p in st]))
        log(f"temperature {t}, share power {b}: same-track E_min {e:.4f}")
        if e < best_e:
            best, best_e = m, e
    gates = {id(p): best.match(p[0].feats, p[0].mix, p[1].feats, p[1].mix, p[1].share, p[1].pan, p[1].width,
                               p[1].band_pan or None).gate for p in prs}
    ladder = {}                                                              # stage 2 (a pair's rungs
    for rg in _close_rungs():                                                # where some gate reaches it)
        m = _Fixed(temperature=best.temperature, share_power=best.share_power, sigma=rg[0], spread=rg[1],
                   cover=rg[2], cover_temperature=rg[3])
        for p in prs:
            e = (mm.errors(p, m) if gates[id(p)] <= max(GATE_MAX + HEDGE_GATE + HEDGE_GATE2)
                 else seeds[(id(p), "none")])
            seeds[(id(p), "close", *rg)] = e
            ladder[(id(p), "close", *rg)] = min(e)
    for s, mr in itertools.product(LOOSE_LADDER, (1.0,)):
        m = _loose(best, s, mr)
        for p in prs:
            ladder[(id(p), "loose", s, mr)] = (mm.emin(p, m) if min(GATE_MAX) < gates[id(p)] <= max(LOOSE_GATE)
                                               else none[id(p)])
    mm.save()
    log("stage 2: ladders done")
    if table is not None:
        Path(table).write_text(json.dumps({"gates": [gates[id(p)] for p in prs], "kinds": [p[2] for p in prs],
                                           "held": [p in held for p in prs], "none": [none[id(p)] for p in prs],
                                           "ladder": {" ".join(map(str, k[1:])): [ladder[(id(p), *k[1:])]
                                                                                  for p in prs]
                                                      for k in ladder if k[0] == id(prs[0])}}))
    base = dict(temperature=best.temperature, share_power=best.share_power)
    album = [p for p in fit if p[2] == "same-album"]
    album_none = [pair_proposals(p[0], p[1], None, model) for p in album]
    for chosen in _choose(fit, gates, ladder, none, log, seeds, candidates):      # no worse than none on D_F too
        params = dict(**base, **chosen)
        d, se = _worse(album, ReferenceMatcher(**params), model, album_none)
        log(f"candidate {chosen}: same-album source D_F(pan, width) {d:+.5f} (±{se:.5f}) from none's")
        if d <= 0.0 or not (chosen["loose_gate"] or chosen.get("hedge_gate")):   # the close tier alone: the
            break                                                                # fallback in any case
    widths = {}
    for ws in WIDTH_SIGMAS:                                                      # stage 4
        widths[ws] = _measures(st, ReferenceMatcher(**params, width_sigma=ws), model)["frechet"]
        log(f"width sigma {ws}: same-track source D_F(pan, width) {widths[ws]:.5f}")
    tuned = ReferenceMatcher(**params, width_sigma=min(widths, key=widths.get))
    figures = {}
    for name, group in (("fit", fit), ("held_out", held)):
        figures[name] = {}
        for kind in KINDS:
            g = [p for p in group if p[2] == kind]
            if g:
                figures[name][kind] = {"pairs": len(g), "none": _measures(g, None, model),
                                       "reference": _measures(g, tuned, model)}
        log(f"{name}: " + ", ".join(f"{kind} E_min {v['reference']['e_min']:.4f} D_F {v['reference']['frechet']:.4f}"
                                    f" (none {v['none']['e_min']:.4f}, {v['none']['frechet']:.4f}; {v['pairs']} pairs)"
                                    for kind, v in figures[name].items()))
    figures["width_frechet"] = {str(k): v for k, v in widths.items()}
    return tuned, figures


def _main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", default=None, help="analysed excerpts' folder (default: the reference cache)")
    ap.add_argument("--export", default=None, help="write the tuned matcher here")
    ap.add_argument("--table", default=None, help="write the per-pair E_min table (gates, ladder, none) here")
    ap.add_argument("--memo", default=None, help="keep the per-pair E_min values in this JSON file (resumes)")
    ap.add_argument("--candidates", type=int, default=CANDIDATES,
                    help="how many of stage 3's best settings the same-album D_F check may go through")
    a = ap.parse_args()
    t0 = time.monotonic()
    scenes, packages = load_analysed("train", out=Path(a.scenes) if a.scenes else None)
    prs = analysed_pairs(scenes, packages, with_digest=True)
    print(f"{len(scenes)} tracks, {len(prs)} pairs", flush=True)
    m, figures = tune(prs, table=a.table, memo=a.memo, candidates=a.candidates, log=lambda s: print(s, flush=True))
    info = {"tracks": len(scenes), "k": K, "figures": figures, "minutes": round((time.monotonic() - t0) / 60, 1)}
    print(json.dumps({"params": m.params(), "info": info}))
    if a.export:
        m.save(Path(a.export), info)


if __name__ == "__main__":
    _main()
