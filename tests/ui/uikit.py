"""The main window as the GUI tests open it (offscreen, pytest-qt), and waiting for its jobs.

Import after ``pytest.importorskip("PyQt6")``: this module imports Qt."""
from __future__ import annotations

from PyQt6.QtCore import QSettings
from PyQt6.QtWidgets import QApplication


def main_window(qtbot, settings: QSettings, *, model: str = "decorr", size=(1400, 880)):
    """A shown :class:`ui.main_window.MainWindow` in the app's theme, storing its preferences in
    ``settings``, predicting with ``model`` (decorr: no model file, fast)."""
    from ui import theme
    from ui.main_window import MainWindow
    theme.apply(QApplication.instance())
    w = MainWindow(settings=settings)
    w.ctl.set_model(model)
    w.resize(*size)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def ini_settings(folder) -> QSettings:
    """Preferences in an INI file of the test's own (never the user's)."""
    return QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)


def wait_idle(qtbot, w, timeout: int = 60000) -> None:
    """Until the window's background job (separation, rendition, export) has ended."""
    qtbot.waitUntil(lambda: not w.ctl.busy, timeout=timeout)
