"""A stereo reference: "place it like this record".

A reference is analysed once (:func:`analyse_reference`): its mono downmix ``(L + R) / 2`` is
separated with the recording's separator, and each of its sources gets its features (as the
placement model sees a source, :func:`core.models.placement_features.source_features`) and its
true place, width and per-band pan in the reference's own L/R (as the placement model's training
truth is measured, :func:`core.models.placement_features.true_placement`). The result is a
:class:`ReferenceScene`: frozen, plain numbers, JSON-serialisable, recorded in projects with the
reference's file name and checksum, so that a proposal made with it is made again without the file.

A mono or near-mono reference (side at least :data:`MONO_SIDE_DB` dB under mid) has no scene to
give: :class:`MonoReference` says so in one line, and the caller goes on without it.

Proposal (:func:`propose_with_reference`): the reference matcher
(:mod:`core.models.reference_match`, learned from pairs of real stereo excerpts) says for each
source of the recording where its counterparts in the reference sit (``mu``) and how sure that is
(``sigma``). The placement model then places the sources one at a time, most surely matched first,
each drawn from its density given the sources placed before it *times* the matcher's
Normal(mu, sigma): a product of a Gaussian mixture and a Gaussian, again a Gaussian mixture (closed
form). Matched sources thus take places like their counterparts, the rest fit around them; pinned
sources are context and stay; no random mirroring (the reference fixes the sides), but each
rendition carries the reference's image a little narrower or wider by its seed (the matcher's
``spread``, :meth:`core.models.reference_match.ReferenceMatcher.for_rendition`; with the matcher's
``cover``, the renditions of eight consecutive seeds are instead chosen together from a pool of such draws,
so that they cover the proposal's distribution: :mod:`core.cover`). A reference the
matcher's gate is unsure of (its "hedged" tier) is followed so by some renditions only (by seed,
:func:`follows`); the others are the placement model's own proposals, detail and mirroring included,
exactly as without a reference. ``variety``
widens the product as it widens the model's density (temperature on the weights and deviations,
several candidates of which the one farthest from the others is kept).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from .errors import ParameterError
from dataclasses import replace
from core import lazy
bands = lazy.module("core.bands")
cover = lazy.module("core.cover")
detail = lazy.module("core.detail")
pan = lazy.module("core.pan")
placement = lazy.module("core.models.placement")
placement_features = lazy.module("core.models.placement_features")
ps = lazy.module("core.ps")
reference_match = lazy.module("core.models.reference_match")
stft = lazy.module("core.stft")

__all__ = ["ReferenceScene", "MonoReference", "analyse_reference", "propose_with_reference", "side_to_mid_db",
           "band_image", "follow_band_image", "followed", "follows", "match_scene", "decides_sides", "MONO_SIDE_DB", "SCENE_VERSION"]

MONO_SIDE_DB = -30.0      # side this far under mid: a mono or near-mono reference
MODEL_POWER = 1.0         # the placement model's density, tempered, times the matcher's
SCENE_VERSION = 1
MAX_REFERENCE_SOURCES = 32
UNSURE_PAN = 0.2          # a band's pans wandering this much over frames: the PS model half sure (0.1 until session 11)


class MonoReference(ParameterError):
    """A reference with no stereo image to follow (one line, naming it)."""


def side_to_mid_db(stereo: np.ndarray) -> float:
    """10 log10(sum(S^2) / sum(M^2)) of ``stereo`` [shape=(n, 2)], M = (L + R) / 2, S = (L - R) / 2."""
    x = np.asarray(stereo, np.float64)
    m, s = 0.5 * (x[:, 0] + x[:, 1]), 0.5 * (x[:, 0] - x[:, 1])
    pm, ps = float(np.dot(m, m)), float(np.dot(s, s))
    if pm <= 0:
        return float("inf") if ps > 0 else float("-inf")
    return float(10 * np.log10(ps / pm)) if ps > 0 else float("-inf")


def _floats(a) -> tuple:
    return tuple(float(v) for v in np.asarray(a, np.float32).ravel())


def _rows(a) -> tuple:
    return tuple(_floats(r) for r in np.asarray(a, np.float32))


@dataclass(frozen=True)
class ReferenceScene:
    """The sources of a stereo reference and where each sits in it, as plain numbers (float32
    values held as Python floats, so JSON keeps them exactly).

    ``feats`` [R][F] per source (:data:`core.models.placement_features.SOURCE_FEATURES`), ``mix``
    [M] the reference's mixture features, ``pan`` / ``width`` / ``share`` [R] each source's place
    and share of the energy, ``band_pan`` [R][34] its energy-weighted pan per band; ``name`` the
    file name, ``sha256`` the file's checksum, ``separator`` the separator that found the sources,
    ``side_db`` its side-to-mid level."""
    name: str
    sha256: str
    separator: str
    feats: tuple
    mix: tuple
    pan: tuple
    width: tuple
    share: tuple
    band_pan: tuple = ()
    side_db: float = 0.0
    version: int = SCENE_VERSION
    settings: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        n = len(self.pan)
        if not 1 <= n <= MAX_REFERENCE_SOURCES:
            raise ParameterError(f"a reference scene has 1 to {MAX_REFERENCE_SOURCES} sources, got {n}")
        if len(self.feats) != n or len(self.width) != n or len(self.share) != n:
            raise ParameterError("a reference scene needs features, pan, width and share for every source")
        if (any(len(f) != placement_features.N_SOURCE_FEATURES for f in self.feats)
                or len(self.mix) != placement_features.N_MIX_FEATURES):
            raise ParameterError("a reference scene's features have the wrong length")
        vals = np.array([*self.pan, *self.width, *self.share, *self.mix, *np.ravel(self.feats)], np.float64)
        if not np.all(np.isfinite(vals)):
            raise ParameterError("a reference scene holds a value that is not a finite number")
        if any(not -1 <= p <= 1 for p in self.pan) or any(not 0 <= w <= 1 for w in self.width):
            raise ParameterError("a reference scene's places are out of range")

    @property
    def id(self) -> str:
        """A short, stable name for this scene: the digest of its content."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    @property
    def n(self) -> int:
        return len(self.pan)

    def places(self) -> np.ndarray:
        """(pan, width) per source [shape=(R, 2)]."""
        return np.column_stack([self.pan, self.width]).astype(np.float64)

    def mirrored(self) -> "ReferenceScene":
        """The same scene with left and right swapped (every pan negated)."""
        return replace(self, pan=tuple(-p for p in self.pan),
                       band_pan=tuple(tuple(-v for v in r) for r in self.band_pan))

    def to_dict(self) -> dict:
        return {"version": self.version, "name": self.name, "sha256": self.sha256, "separator": self.separator,
                "settings": dict(self.settings), "side_db": self.side_db,
                "feats": [list(r) for r in self.feats], "mix": list(self.mix), "pan": list(self.pan),
                "width": list(self.width), "share": list(self.share), "band_pan": [list(r) for r in self.band_pan]}

    @classmethod
    def from_dict(cls, d: dict) -> "ReferenceScene":
        try:
            if int(d.get("version", SCENE_VERSION)) != SCENE_VERSION:
                raise ParameterError(f"reference scene version {d.get('version')!r} is not supported")
            return cls(name=str(d.get("name", "")), sha256=str(d.get("sha256", "")),
                       separator=str(d.get("separator", "")), feats=tuple(tuple(float(v) for v in r) for r in d["feats"]),
                       mix=tuple(float(v) for v in d["mix"]), pan=tuple(float(v) for v in d["pan"]),
                       width=tuple(float(v) for v in d["width"]), share=tuple(float(v) for v in d["share"]),
                       band_pan=tuple(tuple(float(v) for v in r) for r in d.get("band_pan", ())),
                       side_db=float(d.get("side_db", 0.0)), settings=dict(d.get("settings") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ParameterError):
                raise
            raise ParameterError(f"not a reference scene ({exc})") from None


def analyse_reference(stereo: np.ndarray, separate: Callable[[np.ndarray], Sequence], *, name: str = "",
                      sha256: str = "", separator: str = "", settings: Optional[dict] = None) -> ReferenceScene:
    """The :class:`ReferenceScene` of ``stereo`` [shape=(n, 2)] at 44.1 kHz, its downmix's sources
    from ``separate(mono)`` (objects with ``audio`` and ``kind``). Raises :class:`MonoReference`
    when the reference has no stereo image (side under mid by :data:`MONO_SIDE_DB` or more)."""
    x = np.asarray(stereo, np.float32)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ParameterError(f"a reference must be stereo [shape=(n, 2)], got {x.shape}")
    side = side_to_mid_db(x)
    label = name or "the reference"
    if not side > MONO_SIDE_DB:
        what = "mono" if side == float("-inf") else f"near-mono (side {side:.0f} dB under mid)"
        raise MonoReference(f"{label} is {what}: it has no stereo image to follow, so it is not used")
    mono = x.mean(axis=1, dtype=np.float64).astype(np.float32)
    sources = list(separate(mono))
    if not sources:
        raise ParameterError(f"{label}: the separator found no sources")
    sources = sources[:MAX_REFERENCE_SOURCES]
    specs = np.stack([stft.stft(np.ascontiguousarray(np.asarray(s.audio, np.float32)[:len(mono)])) for s in sources])
    energies = np.stack([ps.band_energy(sp) for sp in specs])
    L, R = stft.stft(x[:, 0]), stft.stft(x[:, 1])
    truth = placement_features.true_placement(specs, L, R)
    feats = placement_features.source_features(energies, [getattr(s, "kind", "") == "residual" for s in sources])
    share = truth["energy"].astype(np.float64) / max(float(truth["energy"].sum()), 1e-30)
    return ReferenceScene(name=name, sha256=sha256, separator=separator, feats=_rows(feats),
                          mix=_floats(placement_features.mix_features(energies)), pan=_floats(np.clip(truth["pan"],
                                                                                                      -1, 1)),
                          width=_floats(np.clip(truth["width"], 0, 1)), share=_floats(share),
                          band_pan=_rows(_band_pans(specs, L, R)), side_db=float(round(side, 3)),
                          settings=dict(settings or {}))


def _band_pans(specs: np.ndarray, L: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Each source's pan per band [shape=(S, 34)], its tiles weighted as in ``true_placement``."""
    p = (specs.real ** 2 + specs.imag ** 2).astype(np.float64)
    m2 = (p / np.maximum(p.sum(axis=0, keepdims=True), 1e-20)) ** 2
    ll = (L.real ** 2 + L.imag ** 2).astype(np.float64)
    rr = (R.real ** 2 + R.imag ** 2).astype(np.float64)
    pll = np.stack([bands.band_sum(m * ll) for m in m2])
    prr = np.stack([bands.band_sum(m * rr) for m in m2])
    floor = 1e-10 * max(float(pll.max(initial=0.0)), float(prr.max(initial=0.0)), 1e-20)
    pan_t = pan.iid_to_pan(10.0 * np.log10((pll + floor) / (prr + floor)))
    w = pan.source_weights(0.5 * (pll + prr))
    return (w * pan_t).sum(axis=2) / np.maximum(w.sum(axis=2), 1e-30)


def _product(w, mu, sd, m, s):
    """A Gaussian mixture (weights ``w`` [K], means ``mu`` [K, 2], deviations ``sd`` [K, 2]) times a
    diagonal Normal(``m`` [2], ``s`` [2]), renormalised: (weights, means, deviations)."""
    v, r = sd ** 2, s[None] ** 2
    var = 1.0 / (1.0 / v + 1.0 / r)
    mean = var * (mu / v + m[None] / r)
    tot = v + r
    logz = -0.5 * (((m[None] - mu) ** 2) / tot + np.log(2 * np.pi * tot)).sum(axis=1)
    lw = np.log(np.maximum(w, 1e-300)) + logz
    lw -= lw.max()
    nw = np.exp(lw)
    return nw / nw.sum(), mean, np.sqrt(var)


def propose_with_reference(energies: np.ndarray, scene: ReferenceScene, *, seed: int = 0, variety: float = 0.0,
                           known: Optional[dict] = None, residual=None, folder=None, match=None) -> np.ndarray:
    """One place per source [shape=(S, 2)] (pan, width) given the reference ``scene``; sources in
    ``known`` (index -> (pan, width), the pinned ones) are context and returned unchanged. See the
    module docstring. ``energies``: the sources' band energies [shape=(sources, 34, frames)];
    ``match``: :func:`match_scene` of them to ``scene`` when already made (the same proposal)."""
    e = np.maximum(np.asarray(energies, np.float64), 0.0)
    if e.ndim != 3 or not 1 <= len(e) <= placement.MAX_SOURCES:
        raise ParameterError(f"the placement model takes 1 to {placement.MAX_SOURCES} sources, got {e.shape}")
    matcher, m = match if match is not None else (reference_match.load_reference_matcher(folder), None)
    return place_features(placement_features.source_features(e, residual), placement_features.mix_features(e),
                          e.sum(axis=(1, 2)), scene, seed=seed,
                          variety=variety, known=known, model=placement.load_placement_model(folder),
                          matcher=matcher, match=m)


def place_features(feats: np.ndarray, mix: np.ndarray, energy: np.ndarray, scene: ReferenceScene, *, model,
                   matcher, seed: int = 0, variety: float = 0.0, known: Optional[dict] = None,
                   power: Optional[float] = None, match=None) -> np.ndarray:
    """:func:`propose_with_reference` on the sources' features [shape=(S, F)], the mixture's [M] and
    the sources' energies [S] with the given placement ``model`` and ``matcher``; ``power``: the
    exponent of the placement model's density in the product (default :data:`MODEL_POWER`);
    ``match``: ``matcher``'s :class:`~core.models.reference_match.Match` of these sources to
    ``scene`` as :func:`match_scene` makes it (made here when None: the same numbers)."""
    s = len(feats)
    if not 0.0 <= variety <= 1.0:
        raise ParameterError(f"variety must be in [0, 1], got {variety}")
    power = MODEL_POWER if power is None else float(power)
    known_in = known
    known = {int(i): (float(p), float(w)) for i, (p, w) in (known or {}).items()}
    # one orientation for a scene and its mirror image: a reference with its channels swapped gives
    # exactly the mirrored proposal (the placement model is only nearly symmetric)
    flip = float(np.dot(scene.share, scene.pan)) < 0.0
    if flip:
        known = {i: (-p, w) for i, (p, w) in known.items()}
    rng = np.random.default_rng(int(seed))
    y, is_known = placement.pinned_rows(known, s)
    if match is None:
        match = _match(matcher, feats, mix, scene)
    # the mirror image's match is the match mirrored, to the bit (the transport is linear in the pans,
    # IEEE negation exact; the distances and the gate do not see them)
    m = _mirror(match) if flip else match
    base = m
    m = matcher.for_rendition(m, seed)      # whether and how wide this rendition carries the reference's image
    if not m.followed:          # a reference unlike the recording (or hedged, not by this rendition):
        return model.sample(feats, mix, energy, seed=seed, variety=variety, known=known_in)   # the model alone
    if m.tier == "loose" and getattr(matcher, "loose_mirror", 0) and not known_in and _mirrored(seed, rng):
        m = _mirror(m)     # a loose reference's sides are not trusted
    tau = 1.0 + 2.0 * variety
    draw = dict(power=power, tau=tau, widen=np.array([tau, 1.0 + variety]), n_cand=1 + int(round(7 * variety)))
    energy = np.asarray(energy, np.float64)
    # most surely matched first (then the louder): they are the context the others fit around
    order = [int(i) for i in np.lexsort((-energy, m.sigma[:, 0])) if not is_known[i]]
    if getattr(matcher, "cover", 0) and m.tier == "close":     # the block's renditions chosen together (core.cover)
        block, index = cover.block_of(seed)

        def make():
            brng = np.random.default_rng([cover.STREAM, block])
            mus = cover.pool_means(base.mu, base.alt, base.weights, n=int(matcher.cover), spread=matcher.spread,
                                   temperature=matcher.cover_temperature, rng=brng)
            ys = _draw(model, feats, mix, np.repeat(y[None], len(mus), axis=0), is_known, mus, base.sigma, order,
                       brng, **draw)
            return ys[cover.greedy(ys[:, :, 0], energy / max(float(energy.sum()), 1e-30), cover.BLOCK)]
        y = cover.chosen((feats, mix, energy, y, is_known, base.mu, base.sigma, base.alt, base.weights,
                          json.dumps(matcher.params(), sort_keys=True), str(getattr(model, "path", "")), id(model), block,
                          variety, power), make)[index].copy()
    else:
        y = _draw(model, feats, mix, y[None], is_known, m.mu[None], m.sigma, order, rng, **draw)[0]
    if flip:
        y[:, 0] = -y[:, 0]
    for i, (p, w) in (known_in or {}).items():
        y[int(i)] = (float(p), float(w))
    return y


def _mirrored(seed: int, rng) -> bool:
    """Whether a rendition mirrors the scene it is given, as the placement model decides it
    (:func:`core.detail.mirrored`; with that off, a draw)."""
    u = rng.random()
    return detail.mirrored(seed) if detail.MIRROR_ODD else u < 0.5


def _mirror(m):
    """The match ``m`` of the scene mirrored (every pan negated; exact)."""
    return replace(m, mu=m.mu * [-1.0, 1.0], band=-m.band, alt=None if m.alt is None else -m.alt)


def _draw(model, feats, mix, y, is_known, mu, sig, order, rng, *, power, tau, widen, n_cand) -> np.ndarray:
    """The product sampler on ``N`` scenes of the same sources at once: rows ``y`` [N, S, 2] (the
    pinned ones filled in, ``is_known`` [S]), the matcher's places ``mu`` [N, S, 2] and deviations
    ``sig`` [S, 2]; the sources of ``order`` placed one at a time, each drawn from the placement
    model's density given the sources placed before it (tempered by ``power``) times
    Normal(mu, sig), then widened by ``variety``'s ``tau``, ``widen`` and ``n_cand`` candidates
    (the farthest from the centre and the placed sources kept). Returns the rows [N, S, 2]."""
    y, is_known = np.array(y, np.float64), np.array(is_known, bool)
    for i in order:
        w, m, sd = model.densities(feats, mix, y, np.repeat(is_known[None], len(y), axis=0))
        for n in range(len(y)):
            pw, pm, ps = _product(w[n, i] ** power, m[n, i], sd[n, i] / np.sqrt(power), mu[n, i], sig[i])
            pw = pw ** (1.0 / tau)
            pw /= pw.sum()
            comp = rng.choice(len(pw), size=n_cand, p=pw)
            z = rng.standard_normal((n_cand, 2))
            cand = pm[comp] + z * ps[comp] * widen
            cand[:, 0] = np.clip(cand[:, 0], -1.0, 1.0)
            cand[:, 1] = np.clip(cand[:, 1], 0.0, 1.0)
            if n_cand > 1:
                others = np.concatenate([[0.0], y[n, is_known, 0]])
                y[n, i] = cand[int(np.argmax(np.abs(cand[:, [0]] - others[None]).min(axis=1)))]
            else:
                y[n, i] = cand[0]
        is_known[i] = True
    return y


def _match(matcher, feats, mix, scene: ReferenceScene):
    """``matcher``'s match of sources with features ``feats`` [S, F] and mixture features ``mix`` to
    ``scene`` as it is (not mirrored), per band when the scene has its pans per band."""
    return matcher.match(feats, mix, np.array(scene.feats), np.array(scene.mix), np.array(scene.share),
                         np.array(scene.pan), np.array(scene.width),
                         np.array(scene.band_pan) if scene.band_pan else None)


def match_scene(energies: np.ndarray, scene: ReferenceScene, folder=None):
    """(the matcher, its :class:`~core.models.reference_match.Match` of sources of band energies
    ``energies`` [shape=(S, 34, frames)] to ``scene``): what a rendition's proposal
    (:func:`propose_with_reference`), per-band detail (:func:`band_image`) and sides
    (:func:`decides_sides`) all read, made once and passed to them as ``match``."""
    e = np.maximum(np.asarray(energies, np.float64), 0.0)
    matcher = reference_match.load_reference_matcher(folder)
    return matcher, _match(matcher, placement_features.source_features(e), placement_features.mix_features(e),
                           scene)


def decides_sides(energies: np.ndarray, scene: ReferenceScene, *, seed: int = 0, folder=None, match=None) -> bool:
    """Whether ``scene`` decides which side each source of a recording with band energies
    ``energies`` [shape=(S, 34, frames)] is on in rendition ``seed``: followed closely by it, or
    loosely without mirroring. Otherwise renditions lean either way by seed, as without a reference
    (the chain mirrors the PS model's detail with their places). ``match``: :func:`match_scene`'s
    answer when already made."""
    matcher, m = match or match_scene(energies, scene, folder)
    m = matcher.for_rendition(m, seed)
    return m.tier == "close" or (m.tier == "loose" and not matcher.loose_mirror)


def followed(energies: np.ndarray, scene: ReferenceScene, *, folder=None, match=None) -> tuple[str, float, float]:
    """Whether proposals for sources of band energies ``energies`` [shape=(S, 34, frames)] follow
    ``scene`` (the matcher's gate: the two mixtures' band profiles alike enough): "close", "hedged"
    (followed closely by some renditions, :func:`follows`), "loose" (followed with a wide deviation,
    its sides not trusted) or "" (not at all); the gate's distance and the limit of close following
    by every rendition."""
    matcher, m = match or match_scene(energies, scene, folder)
    return m.tier, m.gate, matcher.gate_max


def follows(energies: np.ndarray, scene: ReferenceScene, seed: int, *, folder=None, match=None) -> bool:
    """Whether rendition ``seed`` of sources of band energies ``energies`` [shape=(S, 34, frames)]
    follows ``scene`` at all (a hedged reference: some renditions do, the others are the placement
    model's own)."""
    matcher, m = match or match_scene(energies, scene, folder)
    return matcher.follows(m, seed)


def band_image(energies: np.ndarray, scene: ReferenceScene, *, seed: int = 0,
               folder=None, match=None) -> tuple[np.ndarray, np.ndarray]:
    """What the reference says of each source's per-band image in rendition ``seed``: (offsets
    [shape=(S, 34)], the pan per band its counterparts hold minus their place, and the match's
    confidence [shape=(S,)], 0 where the rendition does not follow it), for
    :func:`follow_band_image`. ``energies``: the sources' band energies [shape=(S, 34, frames)];
    ``match``: :func:`match_scene`'s answer when already made."""
    matcher, m = match or match_scene(energies, scene, folder)
    confidence = m.confidence if matcher.follows(m, seed) else np.zeros_like(m.confidence)
    return m.band - m.mu[:, :1], confidence


def follow_band_image(iid: np.ndarray, energies: np.ndarray, offsets: np.ndarray, confidence: np.ndarray, *,
                      unsure: float = UNSURE_PAN) -> np.ndarray:
    """Tile IIDs [shape=(S, 34, frames)] (each source's, around its place:
    :func:`core.placement.tile_parameters`) whose per-band detail follows a reference's image.

    Per source and band, the model's band offset (its tiles' mean pan in the band, weighted as
    :func:`core.pan.source_weights` weighs them, minus the source's mean) moves toward the
    reference's ``offsets`` [shape=(S, 34)] by ``confidence * u^2 / (u^2 + unsure^2)``, where ``u``
    is how much the model's pans in that band wander from frame to frame (where the PS model is
    unsure of a band its samples do not hold still); every tile of the band moves alike (the
    model's frame-to-frame detail stays), then the source is moved back onto its place (its
    weighted mean pan unchanged, up to the tiles clipped at the stage's edges). ``confidence``
    [shape=(S,)] in [0, 1]: 0 leaves ``iid`` as it is."""
    iid = np.asarray(iid)
    if not np.any(confidence):               # a reference not followed: the tiles exactly as they are
        return iid
    if np.shape(energies) != iid.shape:
        raise ParameterError(f"tile IIDs {iid.shape} and energies {np.shape(energies)} differ")
    conf = np.clip(np.asarray(confidence, np.float64), 0.0, 1.0)
    offsets = np.asarray(offsets, np.float64)
    out = np.empty_like(iid)
    for s, w in enumerate(pan.source_weight_rows(energies)):     # a source at a time (an hour's is 40 MB)
        tiles = pan.iid_to_pan(iid[s].astype(np.float64))
        wb = np.maximum(w.sum(axis=1), 1e-30)                               # [B]
        mean_b = (w * tiles).sum(axis=1) / wb
        place = (w * tiles).sum() / max(float(w.sum()), 1e-30)
        u2 = (w * (tiles - mean_b[:, None]) ** 2).sum(axis=1) / wb
        alpha = conf[s] * u2 / (u2 + unsure ** 2)
        out[s] = pan.shift_band_row(iid[s], w, alpha * (offsets[s] - (mean_b - place)), tiles=tiles)
    return out
