"""The "Reference…" control beside Variety: choose a stereo record for new renditions to follow.

The controller analyses it in a job and adopts it (:meth:`ui.recording_actions.RecordingActions.follow_reference`);
a mono or near-mono file is said in one line (a notice) and not used. "×" stops following it; the
renditions made with it keep it (the gallery marks them). The row shows the reference's name from
the renditions' view model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from PyQt6.QtWidgets import QFileDialog, QHBoxLayout, QPushButton, QWidget

from .viewmodels import reference_label

__all__ = ["ReferenceRow", "choose_reference", "reference_label"]

_FILTER = "Audio (*.wav *.flac *.ogg *.mp3 *.aif *.aiff);;All files (*)"


def choose_reference(ctl, path: Optional[Path]):
    """Follow stereo file ``path`` in new renditions (a job), or none (``path`` None, at once)."""
    return ctl.follow_reference(path)


class ReferenceRow(QWidget):
    """"Ref…" (choose a reference file) and "×" (none, shown while one is followed); the button shows
    the reference's name, its tooltip the whole of it."""

    def __init__(self, ctl, parent=None):
        super().__init__(parent)
        self.ctl = ctl
        self.vm = ctl.vms.renditions             # the reference's name (the controller sets it)
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
        name = self.vm.reference
        short = name if len(name) <= 10 else name[:9] + "…"      # the panel is narrow; the tooltip has it whole
        self.button.setText(short if name else "Ref…")
        self.button.setToolTip(f"Reference: {name} (new renditions are placed like it; click for another)"
                               if name else self._tip)
        self.clear.setVisible(bool(name))           # no reference: the row is as narrow as it can be
