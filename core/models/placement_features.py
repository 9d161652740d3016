"""What the placement model sees of a source, and where a source truly sits in real stereo.

Features come from band energies only (the 34 ERB-like bands, per STFT frame), which the session
already holds for every source (:class:`core.renderer.SourceRender.energy`), so proposing a
placement costs no extra analysis. They are invariant to the recording's level and length.

Per source (:data:`SOURCE_FEATURES` values, in this order):

* ``profile`` (34): log10 of the share of the source's energy in each band (floored at -6);
* ``share``: log10 of the source's share of the mixture's energy;
* ``centroid``, ``spread``: energy-weighted mean and standard deviation of the band index / 34;
* ``dominance``: energy-weighted mean of the source's share of each tile (how much of what it
  plays it plays alone);
* ``flux``: mean positive frame-to-frame rise of its log10 frame energy (percussiveness);
* ``band_flux``: the same per band, energy-weighted over bands (onsets that are not broadband);
* ``stationarity``: standard deviation of log10 frame energy over its active frames;
* ``activity``: fraction of frames within 30 dB of its loudest frame;
* ``residual``: 1 for a residual source (what the other sources do not explain), else 0.

Per recording (:data:`MIX_FEATURES`): the mixture's band profile (34), log10 of the number of
sources, the mixture's frame-energy standard deviation.

The truth (:func:`true_placement`): each source's share of every STFT bin (its mask) applied to the
real left and right channels, then per band and frame IID and IC
(:func:`core.ps.analyze_spectra`'s definitions) -> pan (:func:`core.placement.iid_to_pan`) and width
(1 - IC); a source's place is the mean over its tiles weighted by its energy times its share of
the tile (the weighting :func:`core.placement.source_weights` uses), so tiles it dominates decide.
"""
from __future__ import annotations

import numpy as np

from ..bands import N_BANDS, band_sum
from ..errors import ParameterError
from ..pan import iid_to_pan, source_weights

__all__ = ["source_features", "mix_features", "true_placement", "N_SOURCE_FEATURES", "N_MIX_FEATURES",
           "SOURCE_FEATURES", "MIX_FEATURES"]

SOURCE_FEATURES = ("profile",) * N_BANDS + ("share", "centroid", "spread", "dominance", "flux", "band_flux",
                                              "stationarity", "activity", "residual")
MIX_FEATURES = ("profile",) * N_BANDS + ("log_sources", "mix_stationarity")
N_SOURCE_FEATURES = len(SOURCE_FEATURES)
N_MIX_FEATURES = len(MIX_FEATURES)
_TINY = 1e-20


def _log_frames(e: np.ndarray) -> np.ndarray:
    """log10 frame energies [shape=(..., frames)] of band energies [shape=(..., 34, frames)]."""
    return np.log10(e.sum(axis=-2) + _TINY)


def _positive(energies: np.ndarray, i: int) -> np.ndarray:
    """Source ``i``'s band energies in float64, negatives at 0 [shape=(34, frames)]."""
    return np.maximum(np.asarray(energies[i], dtype=np.float64), 0.0)


def source_features(energies: np.ndarray, residual=None) -> np.ndarray:
    """Features [shape=(sources, N_SOURCE_FEATURES), float32] of band energies
    [shape=(sources, 34, frames)]; ``residual``: one flag per source (default none is)."""
    energies = np.asarray(energies)
    if energies.ndim != 3 or energies.shape[1] != N_BANDS or energies.shape[0] < 1:
        raise ParameterError(f"energies must be (sources, {N_BANDS}, frames), got {energies.shape}")
    # a source at a time (an hour's [sources, bands, frames] in float64 is 300 MB an array), every
    # sum as over the whole array at once: the same bits
    s, t = energies.shape[0], energies.shape[2]
    res = np.zeros(s) if residual is None else np.asarray(residual, dtype=np.float64).reshape(s)
    total = _positive(energies, 0)
    for i in range(1, s):
        total += _positive(energies, i)
    per_band, dom, lf = np.empty((s, N_BANDS)), np.empty(s), np.empty((s, t))
    bflux = np.empty((s, N_BANDS))
    for i in range(s):
        e = _positive(energies, i)
        per_band[i] = e.sum(axis=1)                                  # [B]
        dom[i] = (e * (e / np.maximum(total, _TINY))).sum()
        lf[i] = _log_frames(e)
        if t > 1:
            bflux[i] = np.maximum(np.diff(np.log10(e + _TINY * 1e3), axis=1), 0.0).mean(axis=1)
    del total
    tot = per_band.sum(axis=1)                                   # [S]
    profile = np.log10(np.maximum(per_band / np.maximum(tot[:, None], _TINY), 1e-6))
    share = np.log10(np.maximum(tot / max(tot.sum(), _TINY), 1e-6))
    idx = (np.arange(N_BANDS) + 0.5) / N_BANDS
    pb = per_band / np.maximum(tot[:, None], _TINY)
    centroid = (pb * idx).sum(axis=1)
    spread = np.sqrt(np.maximum((pb * (idx - centroid[:, None]) ** 2).sum(axis=1), 0.0))
    dominance = dom / np.maximum(tot, _TINY)
    active = lf > lf.max(axis=1, keepdims=True) - 3.0
    if t > 1:
        flux = np.maximum(np.diff(lf, axis=1), 0.0).mean(axis=1)
        band_flux = (bflux * pb).sum(axis=1)
    else:
        flux = band_flux = np.zeros(s)
    stat = np.array([lf[i][active[i]].std() if active[i].sum() > 1 else 0.0 for i in range(s)])
    activity = active.mean(axis=1)
    out = np.column_stack([profile, share, centroid, spread, dominance, flux, band_flux, stat, activity, res])
    return np.nan_to_num(out).astype(np.float32)


def mix_features(energies: np.ndarray) -> np.ndarray:
    """Recording-level features [shape=(N_MIX_FEATURES,)] of the sources' band energies
    [shape=(sources, 34, frames)] (their sum stands for the mixture)."""
    energies = np.asarray(energies)
    if energies.ndim != 3 or energies.shape[1] != N_BANDS:
        raise ParameterError(f"energies must be (sources, {N_BANDS}, frames), got {energies.shape}")
    m = _positive(energies, 0)                    # summed a source at a time, in order: the same bits
    for i in range(1, len(energies)):
        m += _positive(energies, i)
    pb = m.sum(axis=1)
    profile = np.log10(np.maximum(pb / max(pb.sum(), _TINY), 1e-6))
    lf = _log_frames(m)
    active = lf > lf.max() - 3.0
    stat = lf[active].std() if active.sum() > 1 else 0.0
    return np.nan_to_num(np.concatenate([profile, [np.log10(energies.shape[0]), stat]])).astype(np.float32)


def true_placement(stem_specs: np.ndarray, L: np.ndarray, R: np.ndarray) -> dict:
    """Where each source sits in the real stereo.

    ``stem_specs``: the sources' complex STFTs [shape=(sources, bins, frames)] (mono stems that sum
    to the mixture); ``L``, ``R``: the real channels' STFTs [shape=(bins, frames)]. Returns arrays
    of shape (sources,): ``pan``, ``width`` (energy-weighted over the source's tiles, see the module
    docstring), ``pan_spread`` (the weighted standard deviation of the tiles' pan: per-band and
    per-frame detail inside the source) and ``energy`` (the source's energy)."""
    S = np.asarray(stem_specs)
    if S.ndim != 3 or S.shape[1:] != L.shape or L.shape != R.shape:
        raise ParameterError(f"stem spectra {S.shape} do not match L {L.shape} / R {R.shape}")
    p = (S.real ** 2 + S.imag ** 2).astype(np.float64)
    mask = p / np.maximum(p.sum(axis=0, keepdims=True), _TINY)       # [S, bins, T], sums to 1
    ll = (L.real ** 2 + L.imag ** 2).astype(np.float64)
    rr = (R.real ** 2 + R.imag ** 2).astype(np.float64)
    lr = (L.real * R.real + L.imag * R.imag).astype(np.float64)
    # mask m applied to both channels: |mL|^2 = m^2 |L|^2, Re(mL (mR)*) = m^2 Re(L R*)
    m2 = mask ** 2
    pll = np.stack([band_sum(m2[i] * ll) for i in range(len(S))])      # [S, B, T]
    prr = np.stack([band_sum(m2[i] * rr) for i in range(len(S))])
    plr = np.stack([band_sum(m2[i] * lr) for i in range(len(S))])
    floor = 1e-10 * max(float(pll.max(initial=0.0)), float(prr.max(initial=0.0)), _TINY)
    iid = 10.0 * np.log10((pll + floor) / (prr + floor))
    ic = np.clip(plr / np.sqrt(np.maximum(pll * prr, floor * floor)), -1.0, 1.0)
    pan_t = iid_to_pan(iid)
    width_t = np.clip(1.0 - ic, 0.0, 1.0)
    w = source_weights(0.5 * (pll + prr))
    tot = np.maximum(w.sum(axis=(1, 2)), _TINY)
    pan = (w * pan_t).sum(axis=(1, 2)) / tot
    width = (w * width_t).sum(axis=(1, 2)) / tot
    spread = np.sqrt(np.maximum((w * (pan_t - pan[:, None, None]) ** 2).sum(axis=(1, 2)) / tot, 0.0))
    energy = p.sum(axis=(1, 2))
    return {"pan": pan.astype(np.float32), "width": width.astype(np.float32),
            "pan_spread": spread.astype(np.float32), "energy": energy.astype(np.float32)}
