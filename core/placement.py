"""Where a source sits in the stereo image, and how that maps to PS parameters.

A :class:`Placement` is frozen state: ``pan`` in [-1, 1] (left to right), ``width`` in [0, 1]
(a point source to fully diffuse), ``gain_db``, ``mute``, ``solo`` and ``pinned`` (a fixed place the
user chose; otherwise the source follows the model over time, "auto").

Mapping (constant-power pan law): a source at ``pan`` has IID = 20 log10(cot(theta)) with
theta = (pan + 1) pi / 4 (hard left = +50 dB, the quantizer's limit), and IC = 1 - width.
Proposals (:func:`propose`) come from one of two methods (:data:`PLACEMENT_METHODS`):

* ``model`` (the default): the generative source-level placement model
  (:mod:`core.models.placement`), trained on real stereo music, samples one coherent scene per
  seed; pinned sources are its context; ``variety`` (0 = as real mixes are, 1 = boldest) widens it.
* ``mean`` (the baseline): projects the PS model's parameters onto each source
  (:func:`seed_placements`): every band and frame counts with the source's energy there times its
  share of the mixture's energy, so tiles the source dominates decide its place. The PS model
  draws the sign of each tile's IID almost independently, so this average tends to the centre.

With the model, a source in "auto" mode keeps the PS model's per-band, per-frame detail around its
place (:func:`tile_parameters` with ``centres``, rendered band by band by the renderer);
:func:`trajectories` gives the broadband per-frame path of that detail, which the pan canvas draws
(and which the "mean" baseline renders, as it always did).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Optional

import numpy as np

from .bands import N_BANDS
from .decoder import DOWNMIX_MAX_GAIN, downmix_gain  # noqa: F401  (re-exported: the chain's tiles use it)
from .errors import ParameterError
from .limits import DEFAULT_VARIETY, GAIN_DB_RANGE  # noqa: F401  (re-exported)
from .pan import ic_to_width, iid_to_pan, pan_to_iid, source_weights, width_to_ic
from .ps import IID_MAX_DB, PSParams
from .reference import propose_with_reference
from core import lazy
placement = lazy.module("core.models.placement")
placement_features = lazy.module("core.models.placement_features")
signal = lazy.module("scipy.signal")

__all__ = ["Placement", "pan_to_iid", "iid_to_pan", "width_to_ic", "ic_to_width", "seed_placements",
           "source_weights", "trajectories", "tile_parameters", "propose", "default_method", "downmix_gain",
           "PLACEMENT_METHODS", "DEFAULT_VARIETY", "DOWNMIX_MAX_GAIN", "WIDTH_GAIN"]

PLACEMENT_METHODS = ("model", "mean")
# the tiles' widths around a place times this, and never turned anti-phase by it: calibrated on the `train` split so
# that the chain's output at variety 0 reads as wide as the real stereo (bench/width_calibration.py, docs/evaluation.md)
WIDTH_GAIN = 1.8
KEEP_SIGN = True




@dataclass(frozen=True)
class Placement:
    pan: float = 0.0
    width: float = 0.0
    gain_db: float = 0.0
    mute: bool = False
    solo: bool = False
    pinned: bool = False

    def __post_init__(self):
        if not -1.0 <= self.pan <= 1.0:
            raise ParameterError(f"pan must be in [-1, 1], got {self.pan}")
        if not 0.0 <= self.width <= 1.0:
            raise ParameterError(f"width must be in [0, 1], got {self.width}")
        if not GAIN_DB_RANGE[0] <= self.gain_db <= GAIN_DB_RANGE[1]:       # also refuses NaN
            raise ParameterError(f"gain_db must be in [{GAIN_DB_RANGE[0]:g}, {GAIN_DB_RANGE[1]:g}] dB, got {self.gain_db}")

    @property
    def mode(self) -> str:
        return "pinned" if self.pinned else "auto"

    def moved(self, pan: float, width: float) -> "Placement":
        """The placement dragged to (pan, width): pinned there."""
        return replace(self, pan=float(np.clip(pan, -1, 1)), width=float(np.clip(width, 0, 1)), pinned=True)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Placement":
        return cls(**{k: d[k] for k in ("pan", "width", "gain_db", "mute", "solo", "pinned") if k in d})


def seed_placements(params: PSParams, energies: np.ndarray, previous=None) -> list[Placement]:
    """One placement per source from the model's parameters [34, frames] and the sources' band
    energies [shape=(sources, 34, frames)]. Pinned placements in ``previous`` are kept as they are;
    gain, mute and solo are carried over."""
    if energies.ndim != 3 or energies.shape[1:] != params.iid.shape:
        raise ParameterError(f"energies must be (sources, {params.iid.shape[0]}, {params.n_frames}), got {energies.shape}")
    w = source_weights(energies)
    out = []
    for i in range(len(w)):
        prev = previous[i] if previous is not None and i < len(previous) else None
        if prev is not None and prev.pinned:
            out.append(prev)
            continue
        wi = w[i]
        tot = wi.sum()
        if tot <= 0:
            iid, ic = 0.0, 1.0
        else:
            iid = float((wi * params.iid).sum() / tot)
            ic = float((wi * params.ic).sum() / tot)
        base = prev if prev is not None else Placement()
        out.append(replace(base, pan=float(iid_to_pan(iid)), width=float(ic_to_width(ic)), pinned=False))
    return out


def default_method(folder=None) -> str:
    """"model" when the placement model's file is there (shipped, or in ``folder``), else "mean"."""
    return "model" if placement.placement_model_path(folder).exists() else "mean"


def propose(energies: np.ndarray, *, method: str = "model", params: Optional[PSParams] = None, seed: int = 0,
            variety: float = DEFAULT_VARIETY, previous=None, residual=None, folder=None,
            reference=None, reference_match=None) -> list[Placement]:
    """One proposed placement per source from the sources' band energies [shape=(sources, 34, frames)].

    ``method`` "model": sampled by the placement model (seed ``seed``, ``variety`` in [0, 1]; pinned
    placements in ``previous`` are its context); ``residual``: a flag per source (the residual of a
    separation); ``reference``: a :class:`core.reference.ReferenceScene` the proposal follows
    (:func:`core.reference.propose_with_reference`; ``reference_match``: its match to the sources,
    :func:`core.reference.match_scene`, when already made). "mean": :func:`seed_placements` of the PS parameters ``params``. Pinned placements
    in ``previous`` are kept as they are; gain, mute and solo are carried over."""
    energies = np.asarray(energies)
    if energies.ndim != 3 or energies.shape[1] != N_BANDS:
        raise ParameterError(f"energies must be (sources, {N_BANDS}, frames), got {energies.shape}")
    if method == "mean":
        if params is None:
            raise ParameterError("the 'mean' placement needs the PS model's parameters")
        return seed_placements(params, energies, previous)
    if method != "model":
        raise ParameterError(f"unknown placement method {method!r}; choose one of {', '.join(PLACEMENT_METHODS)}")
    model = placement.load_placement_model(folder)
    known = {i: (p.pan, p.width) for i, p in enumerate(previous or []) if p.pinned and i < len(energies)}
    if reference is not None:
        y = propose_with_reference(np.maximum(energies.astype(np.float64), 0.0), reference, seed=seed,
                                   variety=variety, known=known, residual=residual, folder=folder,
                                   match=reference_match)
    else:                    # the features a source at a time (float64 copies of an hour's energies are large)
        totals = np.array([np.maximum(energies[i].astype(np.float64), 0.0).sum() for i in range(len(energies))])
        y = model.sample(placement_features.source_features(energies, residual),
                         placement_features.mix_features(energies), totals, seed=seed, variety=variety, known=known)
    out = []
    for i in range(len(energies)):
        prev = previous[i] if previous is not None and i < len(previous) else None
        if prev is not None and prev.pinned:
            out.append(prev)
            continue
        base = prev if prev is not None else Placement()
        out.append(replace(base, pan=float(np.clip(y[i, 0], -1, 1)), width=float(np.clip(y[i, 1], 0, 1)),
                           pinned=False))
    return out


def _weight_total(energies: np.ndarray) -> np.ndarray:
    """The tiles' total energy over the sources [shape=(bands, frames)], float64, summed in source
    order as :func:`core.pan.source_weights` sums it (the same bits), one source at a time."""
    total = np.maximum(np.asarray(energies[0], dtype=np.float64), 0.0)
    for i in range(1, len(energies)):
        total += np.maximum(np.asarray(energies[i], dtype=np.float64), 0.0)
    return total


def _weights(energies: np.ndarray, total: np.ndarray, i: int) -> np.ndarray:
    """Source ``i``'s row of :func:`core.pan.source_weights` [shape=(bands, frames)] (the same bits)."""
    e = np.maximum(np.asarray(energies[i], dtype=np.float64), 0.0)
    e *= e / np.maximum(total, 1e-30)
    return e


def _recentre_stats(params: PSParams, energies: np.ndarray, total: np.ndarray, tile_pan: np.ndarray,
                    tile_w: Optional[np.ndarray] = None):
    """Per source [shape=(sources,)] each: the weight sum (floored), the weighted mean tile pan,
    the weighted mean tile IC and (with ``tile_w``) the weighted mean tile width, a source at a
    time (each sum as over the whole [sources, bands, frames] array: the same bits)."""
    n = len(energies)
    wsum, mp, mic, mw = (np.empty(n) for _ in range(4))
    for i in range(n):
        w = _weights(energies, total, i)
        wsum[i], mp[i], mic[i] = w.sum(), (w * tile_pan).sum(), (w * params.ic).sum()
        if tile_w is not None:
            mw[i] = (w * tile_w).sum()
    wsum = np.maximum(wsum, 1e-30)
    return wsum, mp / wsum, mic / wsum, mw / wsum


def tile_parameters(params: PSParams, energies: np.ndarray, *, centres=None, max_ratio: float = 2.0,
                    width_gain: Optional[float] = None, keep_sign: Optional[bool] = None):
    """Per-tile IID (dB) and IC of each source in "auto" mode [shape=(sources, bands, frames)] each:
    what the renderer mixes band by band (:func:`core.renderer.render_auto`).

    With ``centres`` [shape=(sources, 2)] (pan, width of each source's proposed place), the model's
    tile parameters around the place: every tile's pan moved by the place's pan minus the source's
    weighted mean tile pan (weights of :func:`source_weights`), and every tile's width (1 - IC)
    scaled by the place's width over the source's weighted mean tile width (by a factor between
    1 / ``max_ratio`` and ``max_ratio``),
    so that the source sits at its place, as wide as the place says, and keeps the model's
    per-band, per-frame detail around it. The width is scaled rather than shifted: coherent tiles
    stay coherent, and the spread of the tiles' coherence over bands (high bands less coherent
    than low ones in real mixes) is kept; a shift by the same amount in every band distorts it.
    Every tile keeps its parameters, even where the source is quiet: the rendered mixture's
    parameters in a band every source is quiet in are those tiles' parameters.

    The factor is ``width_gain`` (default :data:`WIDTH_GAIN`) times that ratio, and a tile the model
    made coherent (IC >= 0) is never widened past IC 0 (``keep_sign``, default :data:`KEEP_SIGN`):
    the places are the real sources' measured widths, narrower than PS-MTM's tiles around them
    (the ratio is mostly below 1), and the rendered output reads more coherent than its tiles'
    targets where it is loud (measured on ``train``: energy-weighted IC of bands 4-10 about 0.85
    rendered, 0.6 in PS-MTM's tiles, 0.77 in the real stereo), so without the gain the chain's
    output is narrower than real stereo. Calibrated on the ``train`` split
    (``bench/width_calibration.py``): with 1.8 the output at variety 0 has the real stereo's
    broadband correlation and side-to-mid level there, and the same D_F as without it; widening
    coherent tiles past IC 0 costs E_min and D_F.

    Without ``centres`` (the "mean" baseline): the broadband per-frame projection of
    :func:`trajectories`, the same in every band."""
    energies = np.asarray(energies)
    if energies.ndim != 3 or energies.shape[1:] != params.iid.shape:
        raise ParameterError(f"energies must be (sources, {params.iid.shape[0]}, {params.n_frames}), got {energies.shape}")
    if centres is None:
        iid, ic = trajectories(params, energies)
        shape = (len(energies),) + params.iid.shape
        return (np.ascontiguousarray(np.broadcast_to(iid[:, None, :], shape)),
                np.ascontiguousarray(np.broadcast_to(ic[:, None, :], shape)))
    # a source at a time (an hour's [sources, bands, frames] in float64 is 300 MB an array): each
    # tile and each sum as over the whole array at once, the same bits
    c = np.asarray(centres, dtype=np.float64).reshape(len(energies), 2)
    total = _weight_total(energies)
    tile_pan = iid_to_pan(params.iid)                                   # [B, T]
    tile_w = 1.0 - params.ic.astype(np.float64)                       # [B, T], in [0, 2]
    _, mean_pan, _, mean_w = _recentre_stats(params, energies, total, tile_pan, tile_w)
    del total
    g = WIDTH_GAIN if width_gain is None else float(width_gain)
    ratio = g * np.clip(c[:, 1] / np.maximum(mean_w, 1e-3), 1.0 / max_ratio, max_ratio)
    floor = np.minimum(params.ic.astype(np.float64), 0.0) if (KEEP_SIGN if keep_sign is None else keep_sign) else None
    iid_out = np.empty(energies.shape, np.float32)
    ic_out = np.empty(energies.shape, np.float32)
    for i in range(len(energies)):
        pan = np.clip(tile_pan + (c[i:i + 1, 0] - mean_pan[i:i + 1])[:, None], -1.0, 1.0)
        iid_out[i] = np.clip(pan_to_iid(pan), -IID_MAX_DB, IID_MAX_DB)
        ic = 1.0 - np.clip(tile_w * ratio[i:i + 1, None], 0.0, 2.0)
        if floor is not None:                # widening never turns a coherent tile anti-phase
            ic = np.maximum(ic, floor)
        ic_out[i] = np.clip(ic, -1.0, 1.0)
    return iid_out, ic_out


def trajectories(params: PSParams, energies: np.ndarray, *, centres=None, smooth: float = 0.9,
                 floor_db: float = 50.0):
    """Per-frame IID and IC of each source [shape=(sources, frames)] each, for "auto" mode.

    Without ``centres`` (the "mean" method): in every frame a source takes the model's parameters of
    the bands where it lives, weighted by its energy times its share of the tile (as
    :func:`seed_placements` does over the whole recording); IIDs of opposite sign cancel.

    With ``centres`` [shape=(sources, 2)] (pan, width of each source's proposed place): the model's
    per-tile parameters are re-centred on that place (each tile's pan moved by the place's pan
    minus the source's weighted mean tile pan, each tile's IC by the place's IC minus the mean
    tile IC), and a frame's broadband parameters are those of the power sums of its tiles
    (left power, right power and cross term, each tile weighted as above), the frames' pans then
    shifted together so that their weighted mean is the place's pan. Tiles panned apart thus
    become width instead of cancelling: the source keeps the model's per-band and per-frame
    detail around its place, and it is never narrower than its place says.

    Frames where the source is silent (below ``floor_db`` under its loudest frame) hold its overall
    place. A forward-backward exponential smoothing (``smooth`` per frame, zero phase) removes
    frame-to-frame wobble.
    """
    # a source at a time (as tile_parameters): every sum as over the whole array, the same bits
    total = _weight_total(energies)
    n_src, t = len(energies), energies.shape[2]
    tot = np.empty((n_src, t))                                              # [S, T]
    if centres is None:
        iid, ic = np.empty((n_src, t)), np.empty((n_src, t))
        with np.errstate(invalid="ignore", divide="ignore"):
            for i in range(n_src):
                w = _weights(energies, total, i)
                tot[i] = w.sum(axis=0)
                iid[i] = (w * params.iid).sum(axis=0) / tot[i]
                ic[i] = (w * params.ic).sum(axis=0) / tot[i]
    else:
        c = np.asarray(centres, dtype=np.float64).reshape(n_src, 2)
        tile_pan = iid_to_pan(params.iid)
        _, mean_pan, mean_ic, _ = _recentre_stats(params, energies, total, tile_pan)
        pll, prr, plr = np.empty((n_src, t)), np.empty((n_src, t)), np.empty((n_src, t))
        for i in range(n_src):
            w = _weights(energies, total, i)
            tot[i] = w.sum(axis=0)
            pan = np.clip(tile_pan + (c[i:i + 1, 0] - mean_pan[i:i + 1])[:, None], -1.0, 1.0)
            tic = np.clip(params.ic + (width_to_ic(c[i:i + 1, 1]) - mean_ic[i:i + 1])[:, None], -1.0, 1.0)
            theta = (pan + 1.0) * np.pi / 4
            gl, gr = np.cos(theta), np.sin(theta)
            pll[i] = (w * gl * gl).sum(axis=0)
            prr[i] = (w * gr * gr).sum(axis=0)
            plr[i] = (w * tic * gl * gr).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            fpan = iid_to_pan(10.0 * np.log10(pll / prr))      # [S, T]
            ic = plr / np.sqrt(pll * prr)
        # power sums pull a spread source towards the centre: shift its frames so that their
        # weighted mean pan is the proposed one again
        ok = np.isfinite(fpan)
        tw = np.where(ok, tot, 0.0)
        shift = c[:, 0] - (np.where(ok, fpan, 0.0) * tw).sum(axis=1) / np.maximum(tw.sum(axis=1), 1e-30)
        iid = pan_to_iid(np.clip(fpan + shift[:, None], -1.0, 1.0))
        iid = np.where(ok, iid, np.nan)
    g_iid = np.nansum(iid * tot, axis=1, keepdims=True) / np.maximum(tot.sum(axis=1, keepdims=True), 1e-30)
    g_ic = np.nansum(ic * tot, axis=1, keepdims=True) / np.maximum(tot.sum(axis=1, keepdims=True), 1e-30)
    if centres is not None:   # a silent source holds its proposed place
        g_iid = pan_to_iid(c[:, :1])
        g_ic = width_to_ic(c[:, 1:])
    quiet = tot < tot.max(axis=1, keepdims=True) * 10 ** (-floor_db / 10)
    iid = np.where(quiet | ~np.isfinite(iid), g_iid, iid)
    ic = np.where(quiet | ~np.isfinite(ic), np.where(np.isfinite(g_ic), g_ic, 1.0), ic)
    if iid.shape[1] > 12 and smooth > 0:
        iid = signal.filtfilt([1 - smooth], [1, -smooth], iid, axis=1)
        ic = signal.filtfilt([1 - smooth], [1, -smooth], ic, axis=1)
    return np.clip(iid, -IID_MAX_DB, IID_MAX_DB).astype(np.float32), np.clip(ic, -1, 1).astype(np.float32)
