"""The output stage: one gain for the whole mix, heard in the preview and written by the export.

:class:`OutputSettings` (a peak ceiling, true peak by default, and optionally the original's
loudness as the target) decide a :class:`core.loudness.GainPlan`, measured on the full mix by
:meth:`OutputStage.measure` and cached under a key that changes whenever the mix does. The preview
(the playback snapshot's output gain) and :func:`export` apply the same plan, so what is heard is
what is exported (:func:`app.export.export` writes it).
"""
from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Optional

import numpy as np

from core.errors import Cancelled, ParameterError
from core.limits import CEILING_DB_RANGE, DEFAULT_CEILING_DB, check_range
from core.loudness import GainMeter, GainPlan, Loudness, measure, plan_gain
from core.progress import check_cancel
from core.renderer import mix

from .mixes import StateMix

if TYPE_CHECKING:
    from .session import Session

__all__ = ["OutputSettings", "OutputStage", "measure_session"]


@dataclass(frozen=True)
class OutputSettings:
    """The output gain stage: a peak ceiling (true peak, dBTP, or sample peak, dBFS) and whether
    to bring the mix to the original's loudness (as the mono plays on both channels) first."""
    ceiling_db: float = DEFAULT_CEILING_DB
    true_peak: bool = True
    keep_loudness: bool = False

    def __post_init__(self):
        check_range("the peak ceiling", self.ceiling_db, CEILING_DB_RANGE, " dB")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> "OutputSettings":
        """From a project's export entry; projects written before the output stage had only a
        sample-peak ``ceiling_db`` (-0.1 dBFS), which is kept so they re-make the same file."""
        d = d or {}
        if "true_peak" not in d:
            return cls(float(d.get("ceiling_db", -0.1)), False, False)
        return cls(float(d["ceiling_db"]), bool(d["true_peak"]), bool(d.get("keep_loudness", False)))


class OutputStage:
    """A session's output stage: its settings, the recording's loudness (measured once) and the
    latest measured gain with the key it was measured under (see :meth:`Session.output_state`)."""

    def __init__(self):
        self.settings = OutputSettings()
        self.plan: Optional[GainPlan] = None
        self.key = None
        self._input: Optional[Loudness] = None

    def reset(self) -> None:
        """A new recording: nothing measured."""
        self.plan, self.key, self._input = None, None, None

    def input_loudness(self, mono: np.ndarray) -> Loudness:
        if self._input is None:
            self._input = measure(mono)
        return self._input

    def is_current(self, key) -> bool:
        return self.plan is not None and self.key == key

    @property
    def gain_db(self) -> float:
        """The gain the preview applies now: the latest measured plan's (0 dB before any)."""
        return 0.0 if self.plan is None else self.plan.gain_db

    def adopt(self, plan: GainPlan, key) -> None:
        """``plan`` measured for the session in state ``key`` (on the UI thread, where there is one)."""
        self.plan, self.key = plan, key

    def plan_for(self, full: np.ndarray, key, mono: np.ndarray) -> GainPlan:
        """The gain for mix ``full`` [shape=(n, 2)]: the cached plan when it is for ``key``, else
        measured (not cached: :meth:`adopt` does that)."""
        if self.is_current(key):
            return self.plan
        o = self.settings
        target = self.input_loudness(mono).lufs_played if o.keep_loudness else None
        return plan_gain(full, ceiling_db=o.ceiling_db, true_peak=o.true_peak, target_lufs=target,
                         measure_lufs=True)

    def plan_meter(self, meter: GainMeter, mono: np.ndarray) -> GainPlan:
        """:meth:`plan_for` of a mix measured block by block (:class:`core.loudness.GainMeter`):
        the same plan, measured again whatever the cache holds."""
        o = self.settings
        target = self.input_loudness(mono).lufs_played if o.keep_loudness else None
        return meter.plan(ceiling_db=o.ceiling_db, true_peak=o.true_peak, target_lufs=target)


def measure_session(session: "Session", *, cancel: Optional[threading.Event] = None) -> tuple[GainPlan, tuple]:
    """The output gain of the full mix as ``session`` is now and the state key it is for (adopt
    both: :meth:`OutputStage.adopt`). Safe in a worker while the UI edits: it works on copies of
    the lists and changes nothing."""
    renders, placements = list(session.renders), list(session.placements)
    key = session.output_state(placements)
    if session.stage.is_current(key):
        return session.stage.plan, key
    if not renders:
        raise ParameterError("nothing to measure: separate the recording first")
    check_cancel(cancel)
    kept = session.mixes.find(renders, placements, session.mono_compatible)
    if kept is not None and kept.run():            # the state's mix (made behind the playhead): the same bits
        return session.stage.plan_for(kept.buf, key, session.mono), key
    try:
        full = mix(renders, placements, mono_compatible=session.mono_compatible, cancel=cancel)
    except ParameterError:
        if [id(r) for r in session.renders] != [id(r) for r in renders]:   # undone meanwhile, renders released
            raise Cancelled("the session moved on while measuring") from None
        raise
    check_cancel(cancel)
    if (session.pairs and list(session.placements) == placements and len(session.renders) == len(renders)
            and all(a is b for a, b in zip(session.renders, renders))):   # still the state: the preview plays it
        session.mixes.keep(StateMix(renders, placements, session.mono_compatible, buf=full))
    return session.stage.plan_for(full, key, session.mono), key
