"""Per-band calibration of a PS model's detail as the chain renders it (issue 24).

The chain renders every "auto" source band by band with the PS model's tile parameters moved to the
source's place (:func:`core.placement.tile_parameters`). Summed over sources and analysed again, the
output's per-band distributions of IID and IC are not the real stereo's, and the Fréchet distance D_F
between the two (:mod:`training.ps_metrics`) is mostly in those per-band marginals. A
:class:`DetailCalibration` maps, band by band, the model's sampled values before they go to the tiles:

* IID: ``sign(IID) * M_b(|IID|)`` (symmetric: which side a tile leans to stays the model's sampled
  choice; only how far);
* IC: ``N_b(IC)``;

with ``M_b`` and ``N_b`` monotone piecewise-linear maps given by knots (the model's value at a set of
quantile levels, and what it becomes), and the width gain the tiles are then rendered with
(:data:`core.placement.WIDTH_GAIN` when the file gives none: the calibrated detail may need another gain for the
output to keep the real stereo's broadband width). It is fitted on the ``train`` split so that the chain's output
has the real stereo's per-band quantiles (``training/fit_detail.py``); the file sits beside the PS
model it calibrates (``<model>-detail.json``, one of that model's registered files, with a card).

How far the tiles lean is also the one thing about the detail that a rendition draws as a whole
(``iid_spread``, sigma): the mono cannot tell how wide the real mix of a recording is, and on ``train`` the real
stereo's per-excerpt spread of IID is the chain's times a factor whose logarithm has a standard deviation of
about 0.4 (``bench/rendition_spread.py``). :meth:`DetailCalibration.for_rendition` scales the |IID| map of a
rendition by ``exp(sigma z)``, z the standard normal quantile of ``frac(1/2 + seed * phi)`` (phi the golden
ratio's conjugate, :func:`detail_level`): seed 0 is the median (the default rendition keeps the calibrated
width), and any run of consecutive seeds covers the distribution evenly (quasi-random sampling). Nor can the
mono tell which side a scene leans to: a rendition of an odd seed renders its detail mirrored (every IID negated,
:func:`mirrored`), and the placement model mirrors its scene of places with it (:mod:`core.models.placement`), so
that every two consecutive seeds lean to both sides (the model's own leanings cancel over renditions).

Nor can the mono tell where a mix's frequency regions sit: over a real excerpt each band leans persistently to a
side (the instruments that play in it are panned). A calibration with a ``lean`` factor draws, per rendition, a
per-band pan offset ``lean @ n`` (``n`` standard normal, drawn from the seed, :func:`lean_draw`: seed 0 draws none,
the median rendition) that moves every band of every auto source alike, each source then moved back onto its place
(:func:`lean_tiles`): the places stay the placement model's, the bands of each lean around them as the covariance
fitted on ``train`` says (``training/fit_lean.py``). A rendition whose sides a stereo reference decides takes its
per-band image from the reference, and draws none. (On ``valid`` the real bands lean about twice as far as the
chain's; on ``train``, where the fit is made, they lean no further, so the shipped file carries no leans:
``ps-mtm-detail.md``.)
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from statistics import NormalDist
from typing import Optional

import numpy as np

from .bands import N_BANDS
from .errors import ParameterError
from .models.base import models_dir
from .pan import shift_band_row, source_weight_rows
from .ps import IID_MAX_DB, PSParams

__all__ = ["DetailCalibration", "detail_file", "load_detail", "detail_level", "lean_draw", "lean_tiles", "mirrored",
           "FORMAT", "MIRROR_ODD"]

FORMAT = "soundstage-detail-calibration/1"
_PHI = (math.sqrt(5.0) - 1.0) / 2.0     # the golden ratio's conjugate: the most even sequence frac(k phi)


MIRROR_ODD = True      # renditions of odd seeds are mirror images (their detail's IIDs and their scene's pans negated)


def mirrored(seed: int) -> bool:
    """Whether rendition ``seed`` is a mirror image (:data:`MIRROR_ODD`: the odd seeds)."""
    return bool(MIRROR_ODD) and int(seed) % 2 == 1


def detail_level(seed: int) -> float:
    """The standard normal quantile z of rendition ``seed``'s detail scale: ``Phi^-1(frac(1/2 + seed * phi))``
    (seed 0: z = 0, the median; seeds 1, 2, 3: -1.19, 0.63, -0.37, ...)."""
    u = (0.5 + int(seed) * _PHI) % 1.0
    return float(NormalDist().inv_cdf(min(max(u, 1e-9), 1.0 - 1e-9)))


LEAN_STREAM = 24       # the random stream the band leans are drawn from (with the seed)


def lean_draw(seed: int, n: int = N_BANDS) -> np.ndarray:
    """Rendition ``seed``'s standard normal vector [shape=(n,)] for its band leans: numpy's legacy ``RandomState``
    seeded with (:data:`LEAN_STREAM`, seed), whose stream numpy keeps the same in every version (exact re-renders);
    seed 0 draws the zero vector (the median rendition, as :func:`detail_level`)."""
    if int(seed) == 0:
        return np.zeros(n)
    return np.random.RandomState([LEAN_STREAM, int(seed) % 2 ** 32]).standard_normal(n)


def lean_tiles(iid: np.ndarray, energies: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Tile IIDs [shape=(S, 34, frames)] (each auto source's around its place) with every band's tiles moved by
    ``offsets`` [shape=(34,)] in pan, alike for every source, then each source moved back onto its place (its
    weighted mean pan, :func:`core.pan.source_weights`, unchanged up to the tiles clipped at the stage's edges)."""
    offsets = np.asarray(offsets, np.float64)
    if not np.any(offsets):
        return iid
    if offsets.shape != (N_BANDS,):
        raise ParameterError(f"band leans must be {N_BANDS} offsets, got {offsets.shape}")
    if np.shape(energies) != np.shape(iid):
        raise ParameterError(f"tile IIDs {np.shape(iid)} and energies {np.shape(energies)} differ")
    out = np.empty_like(iid)
    for s, w in enumerate(source_weight_rows(energies)):      # a source at a time (an hour's is 40 MB)
        out[s] = shift_band_row(iid[s], w, offsets)
    return out


def _check_knots(x: np.ndarray, y: np.ndarray, what: str) -> None:
    if x.ndim != 2 or x.shape[0] != N_BANDS or x.shape != y.shape or x.shape[1] < 2:
        raise ParameterError(f"{what} knots must be ({N_BANDS}, k >= 2) pairs, got {x.shape} and {y.shape}")
    if not (np.all(np.diff(x, axis=1) > 0) and np.all(np.diff(y, axis=1) >= 0)):
        raise ParameterError(f"{what} knots must increase along each band")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ParameterError(f"{what} knots must be finite")


def _interp_rows(v: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``np.interp`` of every row of ``v`` [shape=(34, frames)] with that band's knots (flat beyond the ends)."""
    out = np.empty(v.shape, np.float64)
    for b in range(N_BANDS):
        out[b] = np.interp(v[b], x[b], y[b])
    return out


@dataclass(frozen=True)
class DetailCalibration:
    """Per-band monotone maps of |IID| (dB) and of IC, each as knots [shape=(34, k)] (``*_from`` strictly
    increasing along a band, ``*_to`` non-decreasing)."""
    iid_from: np.ndarray
    iid_to: np.ndarray
    ic_from: np.ndarray
    ic_to: np.ndarray
    info: Optional[dict] = None
    width_gain: Optional[float] = None   # the tiles' width gain to render with (None: core.placement.WIDTH_GAIN)
    iid_spread: Optional[float] = None   # sigma of a rendition's log |IID| scale (:meth:`for_rendition`; None: 0)
    mirror: bool = False                  # every IID negated after the maps (a mirrored rendition's)
    lean: Optional[np.ndarray] = None     # [34, 34] factor of the band leans' covariance (pan; :func:`lean_draw`)
    lean_offsets: Optional[np.ndarray] = None   # the band leans [34] a rendition draws (:meth:`for_rendition`)

    def __post_init__(self):
        for name in ("iid_from", "iid_to", "ic_from", "ic_to"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), np.float64))
        _check_knots(self.iid_from, self.iid_to, "IID")
        _check_knots(self.ic_from, self.ic_to, "IC")
        if np.any(self.iid_from[:, 0] < 0) or np.any(self.iid_to < 0):
            raise ParameterError("IID knots are level differences |IID| >= 0")
        if self.width_gain is not None and not 0.0 < float(self.width_gain) <= 4.0:
            raise ParameterError(f"width gain must be in (0, 4], got {self.width_gain}")
        if self.iid_spread is not None and not 0.0 <= float(self.iid_spread) <= 2.0:
            raise ParameterError(f"IID spread must be in [0, 2], got {self.iid_spread}")
        for name, shape in (("lean", (N_BANDS, N_BANDS)), ("lean_offsets", (N_BANDS,))):
            v = getattr(self, name)
            if v is not None:
                v = np.asarray(v, np.float64)
                if v.shape != shape or not np.all(np.isfinite(v)):
                    raise ParameterError(f"{name} must be finite, of shape {shape}, got {v.shape}")
                object.__setattr__(self, name, v)

    def for_rendition(self, seed: int, *, mirror: bool = True) -> "DetailCalibration":
        """The calibration rendition ``seed`` renders with: the |IID| map times ``exp(iid_spread * z)``,
        z = :func:`detail_level` (``seed``), mirrored for a :func:`mirrored` seed unless ``mirror`` is False (a
        rendition following a stereo reference: the reference decides the sides, and the per-band image: no band
        leans), its band leans ``lean @`` :func:`lean_draw` (``seed``) (negated when mirrored); itself when none
        applies."""
        leans = None
        if self.lean is not None and mirror:
            leans = self.lean @ lean_draw(seed)
            leans = -leans if mirrored(seed) else leans
        mirror = (mirror and mirrored(seed)) != self.mirror
        if not self.iid_spread and mirror == self.mirror and leans is None:
            return self
        scale = math.exp(float(self.iid_spread or 0.0) * detail_level(seed))
        return replace(self, iid_to=self.iid_to * scale, iid_spread=None, mirror=mirror, lean=None,
                       lean_offsets=leans)

    @classmethod
    def identity(cls) -> "DetailCalibration":
        iid = np.tile(np.array([0.0, IID_MAX_DB]), (N_BANDS, 1))
        ic = np.tile(np.array([-1.0, 1.0]), (N_BANDS, 1))
        return cls(iid, iid.copy(), ic, ic.copy())

    def apply(self, params: PSParams) -> PSParams:
        """``params`` with every band's IID and IC mapped (same shape, float32)."""
        iid = np.asarray(params.iid, np.float64)
        if iid.shape[0] != N_BANDS:
            raise ParameterError(f"expected PS parameters with {N_BANDS} bands, got {iid.shape}")
        mag = _interp_rows(np.abs(iid), self.iid_from, self.iid_to)
        ic = _interp_rows(np.asarray(params.ic, np.float64), self.ic_from, self.ic_to)
        side = -np.sign(iid) if self.mirror else np.sign(iid)
        return PSParams(np.clip(side * mag, -IID_MAX_DB, IID_MAX_DB).astype(np.float32),
                        np.clip(ic, -1.0, 1.0).astype(np.float32))

    def to_dict(self) -> dict:
        r = lambda a: np.round(a, 6).tolist()  # noqa: E731
        return {"format": FORMAT, "iid_from": r(self.iid_from), "iid_to": r(self.iid_to), "ic_from": r(self.ic_from),
                "ic_to": r(self.ic_to), "width_gain": self.width_gain, "info": self.info or {},
                **({} if self.iid_spread is None else {"iid_spread": float(self.iid_spread)}),
                **({} if self.lean is None else {"lean": r(self.lean)})}

    @classmethod
    def from_dict(cls, d: dict) -> "DetailCalibration":
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ParameterError(f"not a detail calibration (format {FORMAT!r})")
        try:
            gain, spread, lean = d.get("width_gain"), d.get("iid_spread"), d.get("lean")
            return cls(np.array(d["iid_from"]), np.array(d["iid_to"]), np.array(d["ic_from"]), np.array(d["ic_to"]),
                       d.get("info") or {}, None if gain is None else float(gain),
                       None if spread is None else float(spread), lean=None if lean is None else np.array(lean))
        except (KeyError, TypeError, ValueError) as e:
            raise ParameterError(f"detail calibration: {e}") from None

    def save(self, path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=None, separators=(",", ":")) + "\n")

    @classmethod
    def load(cls, path) -> "DetailCalibration":
        return cls.from_dict(json.loads(Path(path).read_text()))


def detail_file(model: str, folder=None) -> Path:
    """Where PS model ``model``'s detail calibration lives (``<model>-detail.json`` in ``folder``, default the
    shipped models)."""
    return (Path(folder) if folder is not None else models_dir()) / f"{model}-detail.json"


_CACHE: dict = {}


def load_detail(model: Optional[str], folder=None) -> Optional[DetailCalibration]:
    """PS model ``model``'s detail calibration, or None when it has none (the detail is rendered as the model
    samples it). Cached per file and modification time."""
    if not model:
        return None
    path = detail_file(model, folder)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return None
    key = str(path)
    hit = _CACHE.get(key)
    if hit is None or hit[0] != stamp:
        hit = (stamp, DetailCalibration.load(path))
        _CACHE[key] = hit
    return hit[1]
