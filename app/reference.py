"""A stereo reference for the session's proposals ("place it like this record").

:func:`analyse_file` reads a stereo file (anything soundfile reads), separates its downmix with the
session's separator and settings (the user's caches and folders apply) and returns its
:class:`core.reference.ReferenceScene`, with the file's name and SHA-256. A mono or near-mono file
raises :class:`core.reference.MonoReference` (one line); callers say it and go on without a
reference.

A rendition carries the scene it followed (:attr:`app.plans.Rendition.reference`) and the session
the one new renditions follow (``Session.reference``); projects save the scenes themselves (by
:attr:`ReferenceScene.id`), so a project re-makes its proposals without the reference file.
:class:`ReferencePlan` is the worker's result for the app (analysed in a worker, adopted on the UI
thread).
"""
from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from core.progress import ProgressFn, Reporter
from core.reference import MonoReference, ReferenceScene, analyse_reference, followed, match_scene
import numpy as np

import separation
from .undo import Change
from core import lazy
audio = lazy.module("core.audio")

if TYPE_CHECKING:
    from .session import Session

__all__ = ["analyse_file", "ReferencePlan", "plan_reference", "use_reference", "follow_file", "MonoReference",
           "notice", "unlike_notice", "rendition_follows", "scene_match"]

log = logging.getLogger("core.audio")       # the CLI prints this logger's INFO records as notes


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def analyse_file(path, backend: str, settings: Optional[dict] = None, *, user=None,
                 progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None) -> ReferenceScene:
    """The scene of stereo file ``path``, its downmix separated with ``backend`` and ``settings``
    (``user``: :class:`core.settings.Settings` for the separator's folders and caches). Raises
    AudioError (the file), MonoReference (no stereo image), ParameterError."""
    path = Path(audio.check_input(path))
    stereo = audio.load_stereo(path)
    settings = dict(settings or {})
    options = {**settings, **(user.backend_options(backend) if user is not None else {})}
    backend_obj = separation.get(backend, **options)

    def separate(mono):
        return backend_obj.separate(mono, progress=Reporter(progress, "reference", 0.0, 0.9), cancel=cancel)
    return analyse_reference(stereo, separate, name=path.name, sha256=_sha256(path), separator=backend,
                             settings=settings)


def notice(exc: MonoReference) -> str:
    """The one line said for a mono reference."""
    return f"reference not used: {exc}"


def unlike_notice(session: "Session", scene: Optional[ReferenceScene]) -> Optional[str]:
    """The one line said when ``scene`` sounds too unlike the session's recording for its proposals
    to follow it closely in every rendition (the matcher's gate, :func:`core.reference.followed`:
    not followed, followed by some renditions only, or followed loosely); None when it is followed
    closely or there are no sources yet."""
    if scene is None or not session.renders:
        return None
    tier, gate, limit = followed(np.stack([r.energy for r in session.renders]), scene,
                                 folder=session.settings.models_dir)
    name = scene.name or "the reference"
    if tier == "hedged":
        return (f"reference followed by some renditions: {name} sounds only partly like the recording (band "
                f"profiles {gate:.2f} apart, followed by every rendition up to {limit:.2f}); the gallery (upmix: its "
                f"summary) says which renditions follow it, the others are the placement model's own")
    if tier == "loose":
        return (f"reference followed loosely: {name} sounds only partly like the recording (band profiles "
                f"{gate:.2f} apart, followed closely up to {limit:.2f}); its places guide the proposals widely, "
                f"its sides either way round")
    if tier:
        return None
    return (f"reference not followed: {name} sounds unlike the recording (band profiles "
            f"{gate:.2f} apart, followed up to {limit:.2f}); proposals are the placement model's alone")


@dataclass
class ReferencePlan:
    """A reference analysed in a worker (``scene``), or None to stop using one."""
    scene: Optional[ReferenceScene]

    def adopt(self, session: "Session"):
        use_reference(session, self.scene)
        return Change.NOTHING


def plan_reference(session: "Session", path, *, progress: Optional[ProgressFn] = None,
                   cancel: Optional[threading.Event] = None) -> ReferencePlan:
    """Worker side: the scene of ``path`` with the session's separator (MonoReference for a mono file)."""
    return ReferencePlan(analyse_file(path, session.backend, session.backend_settings, user=session.settings,
                                      progress=progress, cancel=cancel))


def use_reference(session: "Session", scene: Optional[ReferenceScene]) -> None:
    """New renditions of ``session`` follow ``scene`` (None: no reference)."""
    session.reference = scene
    session._emit("renditions")


def follow_file(session: "Session", path, *, progress: Optional[ProgressFn] = None,
                cancel: Optional[threading.Event] = None) -> Optional[ReferenceScene]:
    """New renditions of ``session`` follow stereo file ``path`` (the headless chain's step); a
    mono reference is said in one line (a warning of the notes logger) and not used."""
    try:
        plan = plan_reference(session, path, progress=progress, cancel=cancel)
    except MonoReference as exc:
        log.warning("%s", notice(exc))
        return None
    plan.adopt(session)
    unlike = unlike_notice(session, plan.scene)
    if unlike:
        log.warning("%s", unlike)
    return plan.scene


_MATCHES: dict = {}     # (scene, sources' energies, models folder) -> the matcher and its match; objects held
_KEEP = 8               # matches kept (each holds its sources' energies: an hour's are large)


def scene_match(scene: ReferenceScene, energies: list, folder=None):
    """:func:`core.reference.match_scene` of sources of band energies ``energies`` (a list of
    [34, frames] arrays, one per source) to ``scene``, remembered per scene and sources (the very
    objects): a rendition's proposal, per-band detail and sides, and the gallery's "followed?" of
    every rendition of them read one match."""
    key = (id(scene), tuple(id(e) for e in energies), str(folder))
    hit = _MATCHES.get(key)
    if hit is None or hit[0] is not scene or any(a is not b for a, b in zip(hit[1], energies)):
        if len(_MATCHES) >= _KEEP:
            _MATCHES.clear()
        hit = _MATCHES[key] = (scene, list(energies), match_scene(np.stack(energies), scene, folder))
    return hit[2]


def rendition_follows(session: "Session", r) -> bool:
    """Whether rendition ``r`` of ``session`` followed its reference (``r.reference``) at all: False
    without one, for one the matcher's gate leaves out, and for the renditions a hedged reference
    leaves to the placement model (:meth:`core.models.reference_match.ReferenceMatcher.follows`); the
    gallery says it per rendition. The match is remembered per scene and sources (:func:`scene_match`:
    the view models ask on the UI thread at every change; each rendition's seed is then a lookup)."""
    scene = r.reference
    if scene is None or not session.renders or getattr(r, "placement", "model") != "model":
        return False
    matcher, m = scene_match(scene, [sr.energy for sr in session.renders], session.settings.models_dir)
    return matcher.follows(m, r.seed)
