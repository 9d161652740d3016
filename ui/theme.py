"""The dark theme: one palette, one style sheet and the few colours every widget shares.

Colours are chosen for long sessions in a dim room: a near-black background, mid-grey panels,
one accent (a warm amber, the colour of a VU lamp) for the playhead, selection and the current
rendition; source colours come from the separation backend's palette.
"""
from __future__ import annotations

from PyQt6.QtGui import QColor, QFont, QPalette
from core import lazy
pyqtgraph = lazy.module("pyqtgraph")

BG = "#16181d"          # window background
PANEL = "#1e2128"       # panels, canvases
PANEL_HI = "#262a33"    # raised controls
GRID = "#2f3440"        # grid lines, borders
TEXT = "#d8dce4"
TEXT_DIM = "#8a909c"
ACCENT = "#f0a830"      # playhead, selection, current rendition
ACCENT_DIM = "#7a5a20"
GOOD = "#5cc38a"        # meters: safe level / positive correlation
WARN = "#e8c547"
BAD = "#e5534b"         # clip, negative correlation
ORIGINAL = "#b0b6c2"    # the mono original in A/B

__all__ = ["apply", "qcolor", "BG", "PANEL", "PANEL_HI", "GRID", "TEXT", "TEXT_DIM", "ACCENT", "ACCENT_DIM",
           "GOOD", "WARN", "BAD", "ORIGINAL", "STYLE_SHEET"]


def qcolor(hex_colour: str, alpha: int = 255) -> QColor:
    c = QColor(hex_colour)
    c.setAlpha(alpha)
    return c


STYLE_SHEET = f"""
QWidget {{ color: {TEXT}; font-size: 10pt; }}
QMainWindow, QDialog {{ background: {BG}; }}
QFrame#panel, QGroupBox {{ background: {PANEL}; border: 1px solid {GRID}; border-radius: 6px; }}
QGroupBox {{ margin-top: 14px; padding: 8px 6px 6px 6px; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 10px; padding: 0 4px; color: {TEXT_DIM};
                    font-weight: bold; letter-spacing: 1px; }}
QLabel#title {{ color: {TEXT_DIM}; font-weight: bold; letter-spacing: 1px; }}
QLabel#time {{ font-family: "DejaVu Sans Mono", monospace; font-size: 13pt; color: {TEXT}; }}
QPushButton, QToolButton {{ background: {PANEL_HI}; border: 1px solid {GRID}; border-radius: 4px;
                            padding: 4px 10px; }}
QPushButton:hover, QToolButton:hover {{ border-color: {ACCENT_DIM}; }}
QPushButton:pressed, QToolButton:pressed {{ background: {GRID}; }}
QPushButton:checked, QToolButton:checked {{ background: {ACCENT_DIM}; border-color: {ACCENT}; color: #fff; }}
QPushButton:disabled, QToolButton:disabled {{ color: #555a66; }}
QPushButton#primary {{ background: {ACCENT}; color: #1a1a1a; font-weight: bold; border: none; }}
QPushButton#primary:disabled {{ background: {ACCENT_DIM}; color: #333; }}
QLineEdit, QSpinBox, QDoubleSpinBox, QComboBox {{ background: {BG}; border: 1px solid {GRID};
    border-radius: 3px; padding: 2px 4px; selection-background-color: {ACCENT_DIM}; }}
QLineEdit:focus, QSpinBox:focus, QDoubleSpinBox:focus {{ border: 1px solid {ACCENT}; background: #101216; }}
QLineEdit:disabled, QSpinBox:disabled, QDoubleSpinBox:disabled, QComboBox:disabled {{ color: #555a66; }}
QComboBox QAbstractItemView {{ background: {PANEL}; selection-background-color: {ACCENT_DIM}; }}
QListWidget {{ background: {BG}; border: 1px solid {GRID}; border-radius: 4px; }}
QListWidget::item {{ padding: 4px; border-radius: 3px; }}
QListWidget::item:selected {{ background: {ACCENT_DIM}; color: #fff; }}
QProgressBar {{ background: {BG}; border: 1px solid {GRID}; border-radius: 3px; text-align: center;
                height: 14px; }}
QProgressBar::chunk {{ background: {ACCENT}; border-radius: 2px; }}
QSlider::groove:horizontal {{ height: 4px; background: {GRID}; border-radius: 2px; }}
QSlider::handle:horizontal {{ width: 12px; margin: -5px 0; background: {TEXT}; border-radius: 6px; }}
QSlider::sub-page:horizontal {{ background: {ACCENT_DIM}; border-radius: 2px; }}
QMenuBar {{ background: {BG}; }}
QMenuBar::item:selected, QMenu::item:selected {{ background: {ACCENT_DIM}; }}
QMenu {{ background: {PANEL}; border: 1px solid {GRID}; }}
QStatusBar {{ background: {BG}; color: {TEXT_DIM}; border-top: 1px solid {GRID}; }}
QSplitter::handle {{ background: {BG}; }}
QScrollArea {{ border: none; background: transparent; }}
QToolTip {{ background: {PANEL_HI}; color: {TEXT}; border: 1px solid {GRID}; }}
"""


def apply(app) -> None:
    """Install the dark palette, the style sheet and pyqtgraph's matching defaults."""
    app.setStyle("Fusion")
    pal = QPalette()
    for role, col in ((QPalette.ColorRole.Window, BG), (QPalette.ColorRole.WindowText, TEXT),
                      (QPalette.ColorRole.Base, BG), (QPalette.ColorRole.AlternateBase, PANEL),
                      (QPalette.ColorRole.Text, TEXT), (QPalette.ColorRole.Button, PANEL_HI),
                      (QPalette.ColorRole.ButtonText, TEXT), (QPalette.ColorRole.Highlight, ACCENT_DIM),
                      (QPalette.ColorRole.HighlightedText, "#ffffff"), (QPalette.ColorRole.ToolTipBase, PANEL_HI),
                      (QPalette.ColorRole.ToolTipText, TEXT), (QPalette.ColorRole.PlaceholderText, TEXT_DIM)):
        pal.setColor(role, QColor(col))
    app.setPalette(pal)
    font = QFont("DejaVu Sans")
    font.setPointSizeF(9.5)
    app.setFont(font)
    app.setStyleSheet(STYLE_SHEET)
    pyqtgraph.setConfigOptions(background=PANEL, foreground=TEXT_DIM, antialias=True)
