"""The "Reference…" control beside Variety: choose a stereo record for new renditions to follow.

:func:`choose_reference` runs on the controller's public API (``run_job``, ``status``, ``notice``).
The reference is analysed in a job (:func:`app.reference.plan_reference`: its downmix separated with
the session's separator, each of its sources measured in its own L/R) and adopted on the UI thread;
a mono or near-mono file is said in one line (a notice) and not used. "×" stops following it; the
renditions made with it keep it (the gallery marks them).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from PyQt6.QtWidgets import QFileDialog, QHBoxLayout, QPushButton, QWidget

__all__ = ["ReferenceRow", "choose_reference", "reference_label"]

_FILTER = "Audio (*.wav *.flac *.ogg *.mp3 *.aif *.aiff);;All files (*)"


def reference_label(scene) -> str:
    """The name of reference scene ``scene`` as the gallery shows it ("" for none)."""
    return (scene.name or scene.id) if scene is not None else ""


def choose_reference(ctl, path: Optional[Path]):
    """Follow stereo file ``path`` in new renditions (a job), or none (``path`` None, at once)."""
    from app.reference import MonoReference, ReferencePlan, notice, plan_reference
    s = ctl.session
    if path is None:
        ReferencePlan(None).adopt(s)
        ctl.status.emit("New renditions follow no reference")
        return None
    if s.mono is None or not s.sources:
        ctl.status.emit("Separate the recording first: the reference is separated the same way")
        return None

    def fn(progress, cancel):
        try:
            return plan_reference(s, path, progress=progress, cancel=cancel)
        except MonoReference as exc:
            return notice(exc)

    def done(result):
        if isinstance(result, str):
            ctl.notice.emit("Reference not used", result)
            return
        result.adopt(ctl.session)
        ctl.status.emit(f"New renditions follow {result.scene.name} ({result.scene.n} sources)")

    return ctl.run_job(f"Reference {Path(path).name}", fn, on_done=done)


class ReferenceRow(QWidget):
    """"Ref…" (choose a reference file) and "×" (none, shown while one is followed); the button shows
    the reference's name, its tooltip the whole of it."""

    def __init__(self, ctl, parent=None):
        super().__init__(parent)
        self.ctl = ctl
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.button = QPushButton("Ref…")
        self.button.setObjectName("reference")
        self._tip = ("Reference…: a stereo record to place the sources like: its own sources (found by the same separator) "
                     "and where each sits; new renditions follow it, pinned sources still win")
        self.button.setToolTip(self._tip)
        self.button.clicked.connect(self._choose)
        self.clear = QPushButton("×")
        self.clear.setObjectName("reference-clear")
        self.clear.setToolTip("Follow no reference in new renditions")
        self.clear.setFixedWidth(28)
        self.clear.clicked.connect(lambda: choose_reference(ctl, None))
        lay.addWidget(self.button, 1)
        lay.addWidget(self.clear)
        self.refresh()

    @staticmethod
    def beside(field: QWidget, row: "ReferenceRow") -> QWidget:
        """``field`` and ``row`` side by side in one widget (a form row of its own height)."""
        box = QWidget()
        lay = QHBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        lay.addWidget(field)
        lay.addWidget(row, 1)
        return box

    def _choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Reference record (stereo)", "", _FILTER)
        if path:
            choose_reference(self.ctl, Path(path))

    def refresh(self) -> None:
        name = reference_label(self.ctl.session.reference)
        short = name if len(name) <= 10 else name[:9] + "…"      # the panel is narrow; the tooltip has it whole
        self.button.setText(short if name else "Ref…")
        self.button.setToolTip(f"Reference: {name} (new renditions are placed like it; click for another)"
                               if name else self._tip)
        self.clear.setVisible(bool(name))           # no reference: the row is as narrow as it can be
