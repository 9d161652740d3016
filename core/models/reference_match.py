"""The reference matcher: where each source of a recording sits, given a stereo reference's sources
and their measured places: a similarity-weighted transport of the reference's measured image onto
the recording's sources, with a confidence; its few parameters tuned on pairs of real stereo
excerpts of the ``train`` split (``python -m training.train_reference``, card
``resources/models/reference-match.md``).

Transport (:meth:`ReferenceMatcher.match`). Source ``i`` of the recording has a band profile
``p_i`` (its share of its energy in each of the 34 bands, from its features), source ``j`` of the
reference ``q_j``, its share of the reference's energy ``s_j``, its measured pan per band
``bp_j[b]`` and its measured width ``w_j``. Their distance is the Hellinger distance of the
profiles, ``d_ij``; the weights ``a_ij`` are softmax over ``j`` of ``-d_ij / temperature +
share_power * log s_j`` (a loud reference source is a likelier counterpart). Per band, the image
the counterparts hold there::

    band_i[b] = sum_j a_ij s_j q_j[b] bp_j[b] / sum_j a_ij s_j q_j[b]

and the source's place: pan ``mu_i = sum_b p_i[b] band_i[b]`` (its energy decides which bands
count), width ``sum_j a_ij w_j``.

Confidence. A reference of the same music sounds like the recording; another piece mostly does
not. ``gate`` = the Hellinger distance between the two mixtures' band profiles (their first
:data:`~core.bands.N_BANDS` mixture features). Three tiers (:attr:`Match.tier`):

* ``"close"``, up to ``gate_max``: the pan's standard deviation is ``sigma``, the width's
  ``width_sigma``, ``confidence`` 1 (the per-band detail follows ``band``,
  :func:`core.reference.follow_band_image`);
* ``"loose"``, beyond ``gate_max`` and up to ``loose_gate`` (0: no such tier): the pan's deviation
  is ``loose_sigma`` (wide), ``confidence`` 0 (no per-band detail); with ``loose_mirror`` (1) the
  proposal takes the reference's sides or their mirror image by seed (a reference that sounds only
  partly like the recording, another part of the track or another track of the album, says how the
  sources spread more surely than which side each is on);
* ``"hedged"``, beyond ``gate_max`` and up to ``hedge_gate`` (0: no such tier), checked before the loose
  tier: as close, but only for ``hedge_follow`` of the renditions (:meth:`ReferenceMatcher.follows`); and
  beyond ``hedge_gate`` up to ``hedge_gate2`` (0: no such band; session 11) for ``hedge_follow2`` of them
  (fewer: the farther the gate, the likelier the reference is other music of the album); the
  others are the placement model's own proposals, as without a reference. Past the gate a reference of
  another part of the same track cannot be told from one of another track of the album (the ones that
  hurt when followed), and E_min is the best of K renditions: hedging gives the first a followed
  rendition and leaves the second most of the placement model's;
* ``""``, beyond: not followed (``followed`` False): the proposal is the placement model's alone.

Use (:mod:`core.reference`): ``mu`` and ``sigma`` multiply the placement model's density for each
source (the product is the proposal); ``band`` and ``confidence`` guide the per-band detail; ``alt``
and ``weights`` (each counterpart's own reading of a source's place, and how likely) feed covering
renditions.

Covering renditions (``cover`` > 0; session 12, :mod:`core.cover`): the renditions of a reference followed
closely are chosen a block of eight seeds at a time from a pool of ``cover`` draws (half carrying the image
wider or narrower by ``exp(spread * z)``, half also giving each source one of its counterparts' places, drawn
with the weights to the power ``1 / cover_temperature``): the pool's medoid first, then each the draw
that most lowers the pool's distance to its nearest chosen one. ``cover`` 0: each rendition drawn on its
own, its width factor by its seed's quantile (below).

Renditions (:meth:`ReferenceMatcher.for_rendition`). How wide the reference's image is, carried onto
another part of the music, is what a followed reference says least surely (on ``train`` the best single
factor on a same-track pair's transported pans ranges from 0 to 1.8, median 0.9): with a reference
followed closely, rendition ``seed`` takes the transported pans times ``exp(spread * z)``, ``z`` the seed's standard normal quantile
(:func:`core.detail.detail_level`, the quantile by which the chain scales a rendition's detail: seed 0
is the median, 1, consecutive seeds cover the distribution evenly); ``spread`` 0: every rendition
the same transported places (as before). A hedged match is followed closely by the renditions
:meth:`ReferenceMatcher.follows` names (by seed, :data:`HEDGE_ORDER`: with ``hedge_follow`` 1/2 seeds
0 and 1 of every four, so that the placement model's own renditions keep one of each leaning, as it
mirrors odd seeds) and not at all by the others.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Optional

import numpy as np

from ..bands import N_BANDS
from ..errors import ParameterError
from .base import load_model, models_dir, register_model
from core import lazy
audio = lazy.module("core.audio")
detail = lazy.module("core.detail")

__all__ = ["ReferenceMatcher", "Match", "load_reference_matcher", "matcher_path", "MODEL_FILE"]

MODEL_FILE = "reference-match.json"
FORMAT = "soundstage-reference-match"
_MAX_SIGMA = 1.0
HEDGE_ORDER = (0, 1, 3, 2)      # seed % 4 in the order the hedged tier's followed renditions take them


@dataclass(frozen=True)
class Match:
    """What the reference says of each recording source: ``mu`` and ``sigma`` [shape=(S, 2)] (pan,
    width), ``band`` [shape=(S, 34)] the reference's pan per band where the source's counterparts
    sit, ``confidence`` [shape=(S,)] in [0, 1], ``gate`` the distance between the two mixtures'
    band profiles, ``followed`` whether the reference is followed at all, ``tier`` how ("close",
    "hedged": by some renditions, :meth:`ReferenceMatcher.for_rendition`, "loose" or ""); ``alt``
    [shape=(S, R)] the pan each source would take from reference source ``j`` alone (its per-band
    image read through the source's band profile) and ``weights`` [shape=(S, R)] the transport's
    (each row sums to 1): the alternatives a covering set of renditions draws from
    (:mod:`core.cover`)."""
    mu: np.ndarray
    sigma: np.ndarray
    band: np.ndarray
    confidence: np.ndarray
    gate: float
    followed: bool = True
    tier: str = "close"
    alt: Optional[np.ndarray] = None
    weights: Optional[np.ndarray] = None


def _profiles(feats: np.ndarray) -> np.ndarray:
    p = np.power(10.0, np.asarray(feats, np.float64)[:, :N_BANDS])
    return p / np.maximum(p.sum(axis=1, keepdims=True), 1e-30)


@dataclass(frozen=True)
class ReferenceMatcher:
    """The transport's parameters (see the module docstring) and the file's ``info``."""
    temperature: float = 0.1
    share_power: float = 1.0
    sigma: float = 0.03
    width_sigma: float = 0.2
    gate_max: float = 0.25
    loose_gate: float = 0.0
    loose_sigma: float = 0.15
    loose_mirror: float = 0.0
    spread: float = 0.0
    hedge_gate: float = 0.0
    hedge_follow: float = 0.5
    hedge_gate2: float = 0.0
    hedge_follow2: float = 0.25
    cover: float = 0.0
    cover_temperature: float = 4.0
    info: dict = field(default_factory=dict, compare=False)
    path: Optional[Path] = field(default=None, compare=False)

    name = "reference-match"

    def __post_init__(self):
        for f in ("temperature", "sigma", "width_sigma", "loose_sigma"):
            if not getattr(self, f) > 0:
                raise ParameterError(f"reference matcher: {f} must be positive, got {getattr(self, f)}")
        if not 0.0 <= self.spread <= 2.0:
            raise ParameterError(f"reference matcher: spread must be in [0, 2], got {self.spread}")
        for f in ("hedge_follow", "hedge_follow2"):
            if not 0.0 <= getattr(self, f) <= 1.0:
                raise ParameterError(f"reference matcher: {f} must be in [0, 1], got {getattr(self, f)}")
        if not (self.cover == 0 or 8 <= self.cover <= 1024) or self.cover != int(self.cover):
            raise ParameterError(f"reference matcher: cover must be 0 or a whole number in [8, 1024], got {self.cover}")
        if not self.cover_temperature > 0:
            raise ParameterError(f"reference matcher: cover_temperature must be positive, got {self.cover_temperature}")

    def params(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("info", "path")}

    @classmethod
    def load(cls, path: Path) -> "ReferenceMatcher":
        """The matcher in ``path`` (one line saying why when it is not one)."""
        try:
            d = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ParameterError(f"{path}: no such file") from None
        except (OSError, ValueError) as exc:
            raise ParameterError(f"{path}: not a reference matcher file ({exc})") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT or not isinstance(d.get("params"), dict):
            raise ParameterError(f"{path}: not a reference matcher file")
        names = {f.name for f in fields(cls)} - {"info", "path"}
        try:
            params = {k: float(v) for k, v in d["params"].items() if k in names}
        except (TypeError, ValueError):
            raise ParameterError(f"{path}: a reference matcher parameter is not a number") from None
        return cls(**params, info=dict(d.get("info") or {}), path=Path(path))

    def save(self, path: Path, info: Optional[dict] = None) -> None:
        """Write the matcher file (its parameters and ``info``) atomically."""
        with audio.replacing(Path(path)) as tmp:
            Path(tmp).write_text(json.dumps({"format": FORMAT, "params": self.params(),
                                             "info": info if info is not None else self.info}, indent=1) + "\n")

    def match(self, feats: np.ndarray, mix: np.ndarray, ref_feats: np.ndarray, ref_mix: np.ndarray,
              ref_share: np.ndarray, ref_pan: np.ndarray, ref_width: np.ndarray,
              ref_band_pan: Optional[np.ndarray] = None) -> Match:
        """The :class:`Match` of the recording's sources (features [S, F], mixture features [M]) to
        the reference's (features [R, F], mixture features [M], energy shares [R], pans [R], widths
        [R], pans per band [R, 34]; without these, every band holds the source's pan)."""
        feats, ref_feats = np.asarray(feats, np.float64), np.asarray(ref_feats, np.float64)
        if feats.ndim != 2 or ref_feats.ndim != 2 or len(feats) < 1 or len(ref_feats) < 1:
            raise ParameterError("the matcher needs at least one source on each side")
        pan = np.asarray(ref_pan, np.float64)
        bp = (np.repeat(pan[:, None], N_BANDS, axis=1) if ref_band_pan is None or len(ref_band_pan) == 0
              else np.asarray(ref_band_pan, np.float64))
        share = np.maximum(np.asarray(ref_share, np.float64), 1e-6)
        share = share / share.sum()
        p, q = _profiles(feats), _profiles(ref_feats)
        d = np.sqrt(np.maximum(0.5 * ((np.sqrt(p)[:, None] - np.sqrt(q)[None]) ** 2).sum(-1), 0.0))   # [S, R]
        lg = -d / self.temperature + self.share_power * np.log(share)[None]
        a = np.exp(lg - lg.max(axis=1, keepdims=True))
        a /= a.sum(axis=1, keepdims=True)
        eb = q * share[:, None]                                                       # [R, B]
        den = a @ eb
        band = (a @ (eb * bp)) / np.maximum(den, 1e-30)
        band = np.where(den > 1e-30, band, (a @ pan)[:, None])
        mu_pan = (p * band).sum(axis=1)
        alt = p @ np.where(eb > 1e-30, bp, pan[:, None]).T                            # [S, R]: one counterpart each
        mu_w = a @ np.asarray(ref_width, np.float64)
        pm, qm = _profiles(np.asarray(mix, np.float64)[None]), _profiles(np.asarray(ref_mix, np.float64)[None])
        gate = float(np.sqrt(max(0.5 * float(((np.sqrt(pm) - np.sqrt(qm)) ** 2).sum()), 0.0)))
        hedged = self.gate_max < gate <= max(self.hedge_gate, self.hedge_gate2 if self.hedge_gate else 0.0)
        close = gate <= self.gate_max or hedged         # a hedged match: as close, for some renditions
        loose = not close and gate <= self.loose_gate
        n = len(feats)
        return Match(np.column_stack([np.clip(mu_pan, -1, 1), np.clip(mu_w, 0, 1)]),
                     np.tile([self.sigma if close else self.loose_sigma if loose else _MAX_SIGMA,
                              self.width_sigma if close or loose else _MAX_SIGMA], (n, 1)),
                     np.clip(band, -1, 1), np.full(n, 1.0 if close else 0.0), gate, close or loose,
                     "hedged" if hedged else "close" if close else "loose" if loose else "",
                     np.clip(alt, -1, 1), a)

    def follows(self, m: Match, seed: int) -> bool:
        """Whether rendition ``seed`` follows ``m`` at all: a hedged match for the first
        ``round(4 * share)`` seeds of every four in :data:`HEDGE_ORDER` (``share``: ``hedge_follow`` up to
        ``hedge_gate``, ``hedge_follow2`` past it; 1/2: seeds 0, 1, 4,
        5, ...; any four consecutive seeds hold the same share), any other match as ``m.followed``."""
        if m.tier != "hedged":
            return bool(m.followed)
        farther = self.hedge_gate2 > self.hedge_gate and m.gate > self.hedge_gate      # the second band
        share = self.hedge_follow2 if farther else self.hedge_follow
        return HEDGE_ORDER.index(int(seed) % 4) < int(round(4 * share))

    def for_rendition(self, m: Match, seed: int) -> Match:
        """``m`` as rendition ``seed`` follows it. A hedged match: followed closely (tier "close") by the
        renditions :meth:`follows` names, not at all (``followed`` False, tier "", confidence 0) by the
        others. Then the transported pans times ``exp(spread * z)``, ``z``
        the seed's quantile (:func:`core.detail.detail_level`; see the module docstring), clipped to the
        stage, for a reference followed closely (a loose one has its own wide deviation and mirroring).
        ``spread`` 0, a reference not followed closely, or seed 0: ``m`` itself (or its close tier)."""
        if m.tier == "hedged":
            if not self.follows(m, seed):
                return replace(m, sigma=np.full_like(m.sigma, _MAX_SIGMA), confidence=np.zeros_like(m.confidence),
                               followed=False, tier="")
            m = replace(m, tier="close")
        if not self.spread or m.tier != "close":
            return m
        c = float(np.exp(self.spread * detail.detail_level(seed)))
        if c == 1.0:
            return m
        return replace(m, mu=np.column_stack([np.clip(m.mu[:, 0] * c, -1.0, 1.0), m.mu[:, 1]]))


def matcher_path(folder: Optional[Path] = None) -> Path:
    return Path(folder if folder is not None else models_dir()) / MODEL_FILE


def _available(folder) -> tuple[bool, str]:
    p = Path(folder) / MODEL_FILE
    return (True, "") if p.exists() else (False, f"{p} not found (tune it: python -m training.train_reference)")


register_model("reference-match", label="Reference matcher", kind="reference", files=(MODEL_FILE,),
               available=_available, description="matches a recording's sources to a stereo reference's",
               loader=lambda folder: ReferenceMatcher.load(Path(folder) / MODEL_FILE))


def load_reference_matcher(folder: Optional[Path] = None) -> ReferenceMatcher:
    """The shipped (or ``folder``'s) matcher, loaded once per process (the registry's cache)."""
    return load_model("reference-match", folder)
