"""The in-window message banner (errors and warnings that never block), and what it says when
Demucs has no weights: where in the app to give it a model folder."""
from __future__ import annotations

import html
from typing import Callable, Optional

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton

from . import theme

__all__ = ["MessageBanner", "demucs_advice"]


class MessageBanner(QFrame):
    """An in-window message (errors, warnings) that never blocks: text, an optional action button
    (e.g. "Open Preferences…") and a close button."""

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 4, 4, 4)
        lay.setSpacing(8)
        self.icon = QLabel("⚠")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setStyleSheet("font-size: 9pt;")
        self.action = QPushButton()
        self.action.hide()
        self.action.clicked.connect(self._run_action)
        self._action_fn: Optional[Callable[[], None]] = None
        self.close_button = close = QToolButton()
        close.setText("✕")
        close.setToolTip("Dismiss")
        close.setAutoRaise(True)
        close.setStyleSheet("QToolButton { padding: 0px; border: none; background: transparent; font-size: 11pt; }"
                            "QToolButton:hover { color: #ffffff; }")
        close.setFixedSize(26, 26)
        close.clicked.connect(self.hide)
        lay.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        lay.addWidget(self.text, 1)
        lay.addWidget(self.action, 0, Qt.AlignmentFlag.AlignVCenter)
        lay.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_message(self, title: str, message: str, *, level: str = "error",
                     action: Optional[tuple[str, Callable[[], None]]] = None) -> None:
        col = theme.BAD if level == "error" else theme.WARN
        self.setStyleSheet(f"MessageBanner {{ background: #3a2224; border: 1px solid {col}; border-radius: 5px; }}"
                           if level == "error" else
                           f"MessageBanner {{ background: #3a3322; border: 1px solid {col}; border-radius: 5px; }}")
        self.icon.setStyleSheet(f"color: {col}; font-size: 13pt;")
        self.text.setText(f"<b>{html.escape(title, quote=False)}</b><br>{html.escape(message, quote=False).replace(chr(10), '<br>')}")
        self._action_fn = action[1] if action else None
        self.action.setText(action[0] if action else "")
        self.action.setVisible(action is not None)
        self.show()

    def _run_action(self) -> None:
        if self._action_fn is not None:
            self._action_fn()


_CLI_ADVICE = ", then give that folder with --demucs-models"


def demucs_advice(message: str) -> str:
    """The Demucs "no weights" message for someone in the app: what to fetch and where (from the
    message), then where the app takes the folder, instead of command-line flags."""
    other = ("To go on without Demucs, choose “Sound source formation” in the Separation panel: it needs no "
             "model files.")
    if _CLI_ADVICE in message:
        head = message.split(_CLI_ADVICE, 1)[0].rstrip(". ")
        return (f"{head}, then choose that folder in Edit > Preferences > Demucs model folder and press "
                f"Separate again. {other}")
    return (f"{message.rstrip('. ')}. Choose the folder that holds the model files in Edit > Preferences > "
            f"Demucs model folder. {other}")
