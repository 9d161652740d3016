"""Dialogs: export, preferences and the About box, and where they propose to write."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from PyQt6.QtCore import QStandardPaths, Qt
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                             QFormLayout, QHBoxLayout, QLabel, QLineEdit, QMessageBox, QPushButton, QSpinBox,
                             QVBoxLayout, QWidget)

from app.playback import Player
from app.output import OutputSettings
from core.formats import FORMATS
from core.limits import CEILING_DB_RANGE

from . import theme
from importlib.resources import files
from app import __version__

__all__ = ["ExportDialog", "PreferencesDialog", "about_text", "show_about", "EXPORT_FORMATS", "output_folder",
           "remember_output_folder"]

# label -> (container, core.audio format name)
EXPORT_FORMATS = {c: {label: name for name, (cc, _, label) in FORMATS.items() if cc == c} for c in ("WAV", "FLAC")}


def _app_folder() -> Path:
    """The app's own shipped files (the demo recording, the models)."""
    return Path(str(files("resources"))).resolve()


def _user_folder(d: Path) -> bool:
    """A folder the user may write into: it exists, it is writable and it is none of the app's own."""
    try:
        d = d.expanduser().resolve()
    except OSError:
        return False
    app = _app_folder()
    return d.is_dir() and os.access(d, os.W_OK) and d != app and app not in d.parents


def output_folder(recording: Optional[Path], settings) -> Path:
    """Where to propose writing what is made from ``recording`` (an export, a DAW project, a project
    file): the recording's folder; for a recording among the app's own files (the bundled demo) or
    in a folder that cannot be written, the folder last written to, else the user's Music folder,
    else home. Never inside the app's install."""
    last = settings.value("dirs/export", "", str) if settings is not None else ""
    music = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.MusicLocation)
    for d in (recording.parent if recording is not None else None, Path(last) if last else None,
              Path(music) if music else None, Path.home()):
        if d is not None and _user_folder(d):
            return d.expanduser().resolve()
    return Path.home()


def remember_output_folder(settings, path) -> None:
    """The folder of a file the user chose to write: proposed next time (see :func:`output_folder`)."""
    folder = Path(path).expanduser().parent
    if settings is not None and _user_folder(folder):
        settings.setValue("dirs/export", str(folder.resolve()))


def _path_row(edit: QLineEdit, button_text: str, on_click) -> QWidget:
    w = QWidget()
    lay = QHBoxLayout(w)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.addWidget(edit, 1)
    b = QPushButton(button_text)
    b.clicked.connect(on_click)
    lay.addWidget(b)
    return w


class ExportDialog(QDialog):
    """Where to, which format and bit depth, whether to write each source's stem too, and the
    output stage (true-peak ceiling, keep the original's loudness) with the gain it applies.

    The output settings are the session's (``ctl``, read from its output view model): changing them
    here changes the preview too, and the label shows the gain measured for them (the one the export
    applies)."""

    def __init__(self, parent=None, *, suggested: Path = Path("stereo.wav"), ctl=None):
        super().__init__(parent)
        self.setWindowTitle("Export stereo mix")
        self.setMinimumWidth(520)
        form = QFormLayout()
        self.path = QLineEdit(str(suggested))
        form.addRow("File", _path_row(self.path, "Browse…", self._browse))
        self.container = QComboBox()
        self.container.addItems(list(EXPORT_FORMATS))
        self.depth = QComboBox()
        self.container.currentTextChanged.connect(self._container_changed)
        form.addRow("Format", self.container)
        form.addRow("Bit depth", self.depth)
        self.stems = QCheckBox("Also write each source's stereo stem (in a folder beside the file)")
        form.addRow("", self.stems)
        self.ctl = ctl
        out = ctl.output_vm.settings if ctl is not None else OutputSettings()
        self.ceiling = QDoubleSpinBox()
        self.ceiling.setRange(*CEILING_DB_RANGE)
        self.ceiling.setSingleStep(0.1)
        self.ceiling.setDecimals(1)
        self._true_peak = out.true_peak        # an older project's sample-peak ceiling is kept until edited
        self.ceiling.setSuffix(" dBTP" if out.true_peak else " dBFS (sample peak)")
        self.ceiling.setValue(out.ceiling_db)
        form.addRow("Peak ceiling", self.ceiling)
        self.keep_loudness = QCheckBox("Keep the original's loudness (within the ceiling)")
        self.keep_loudness.setChecked(out.keep_loudness)
        form.addRow("", self.keep_loudness)
        self.output_info = QLabel("")
        self.output_info.setObjectName("outputInfo")
        self.output_info.setWordWrap(True)
        form.addRow("Output gain", self.output_info)
        note = QLabel("The preview plays the same output gain. A project file is written beside the export "
                      "so it can be re-made exactly. The input is never overwritten.")
        note.setWordWrap(True)
        note.setStyleSheet(f"color: {theme.TEXT_DIM};")
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.ok = buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.container.setCurrentText("FLAC" if str(suggested).lower().endswith(".flac") else "WAV")
        self._container_changed(self.container.currentText())
        self.ceiling.valueChanged.connect(self._ceiling_edited)
        self.keep_loudness.toggled.connect(self._output_changed)
        if ctl is not None:
            ctl.output_changed.connect(self.refresh_output)
            if ctl.output_vm.settings != self.output_settings():
                self._output_changed()
            else:
                ctl.remeasure()
        self.refresh_output()

    def output_settings(self) -> OutputSettings:
        return OutputSettings(round(self.ceiling.value(), 1), self._true_peak, self.keep_loudness.isChecked())

    def _ceiling_edited(self, *_) -> None:
        if not self._true_peak:                # an edited ceiling is a true-peak one
            self._true_peak = True
            self.ceiling.setSuffix(" dBTP")
        self._output_changed()

    def _output_changed(self, *_) -> None:
        if self.ctl is not None:
            self.ctl.set_output(self.output_settings())
        self.refresh_output()

    def refresh_output(self) -> None:
        self.output_info.setText("" if self.ctl is None else self.ctl.output_details())

    def _container_changed(self, name: str) -> None:
        self.depth.clear()
        self.depth.addItems(list(EXPORT_FORMATS[name]))
        self.depth.setCurrentIndex(1 if self.depth.count() > 1 else 0)
        p = Path(self.path.text())
        want = ".flac" if name == "FLAC" else ".wav"
        if p.suffix.lower() != want:
            self.path.setText(str(p.with_suffix(want)))

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export to", self.path.text(),
                                              "Audio (*.wav *.flac)")
        if path:
            self.path.setText(path)
            self.container.setCurrentText("FLAC" if path.lower().endswith(".flac") else "WAV")

    def values(self) -> tuple[Path, str, bool]:
        fmt = EXPORT_FORMATS[self.container.currentText()][self.depth.currentText()]
        return Path(self.path.text()).expanduser(), fmt, self.stems.isChecked()


class PreferencesDialog(QDialog):
    """Audio output device, Demucs model folder and stem-cache size (kept in QSettings)."""

    def __init__(self, settings, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.setWindowTitle("Preferences")
        self.setMinimumWidth(520)
        form = QFormLayout()
        self.device = QComboBox()
        self.device.addItem("System default", "")
        devices = Player.output_devices()
        for name in devices:
            self.device.addItem(name, name)
        current = settings.value("audio/device", "", str)
        i = self.device.findData(current)
        self.device.setCurrentIndex(max(0, i))
        form.addRow("Output device", self.device)
        if not devices:
            none = QLabel("No output devices found (playback runs silently; export still works).")
            none.setStyleSheet(f"color: {theme.WARN};")
            none.setWordWrap(True)
            form.addRow("", none)
        self.models_dir = QLineEdit(settings.value("demucs/models_dir", "", str))
        self.models_dir.setPlaceholderText("download caches (default)")
        form.addRow("Demucs model folder", _path_row(self.models_dir, "Choose…", self._choose_dir))
        self.cache = QSpinBox()
        self.cache.setRange(0, 1_000_000)
        self.cache.setSingleStep(256)
        self.cache.setSuffix(" MB")
        self.cache.setSpecialValueText("default (4 GiB)")
        self.cache.setValue(settings.value("cache/size_mb", 0, int))
        form.addRow("Stem cache size", self.cache)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)

    def _choose_dir(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Demucs model folder", self.models_dir.text())
        if d:
            self.models_dir.setText(d)

    def save(self) -> None:
        self.settings.setValue("audio/device", self.device.currentData() or "")
        self.settings.setValue("demucs/models_dir", self.models_dir.text().strip())
        self.settings.setValue("cache/size_mb", self.cache.value())
        self.settings.sync()


def about_text() -> str:
    return f"""
<h2 style="color:{theme.ACCENT}">Soundstage {__version__}</h2>
<p>Mono recordings to stereo: find the sources, place them in the stereo image (by hand or as a
learned model proposes), render through a parametric-stereo decoder.</p>
<p><b>Built on</b><br>
Lagrange, Martins &amp; Tzanetakis (2007), sound source formation for mono-to-stereo up-mixing ·
Breebaart et al. (2005), parametric coding of stereo audio · Serrà et al. (2023), mono-to-stereo
through parametric stereo generation (CC BY 4.0) · Défossez et al., Demucs v4 (HTDemucs) ·
Schroeder (1958), Orban (1970), Faller (2005): decorrelation.</p>
<p><b>Licences</b><br>
Soundstage: MIT · Demo: “Feelings” by Sectoid (Carlos Viola Iborra), MIT ·
PyQt6 and Qt 6: GPL v3 · pyqtgraph: MIT · NumPy, SciPy, PyTorch: BSD · Demucs: MIT ·
python-sounddevice and PortAudio: MIT · soundfile/libsndfile: BSD/LGPL · soxr: LGPL ·
faiss: MIT.</p>
"""


def show_about(parent) -> QMessageBox:
    box = QMessageBox(parent)
    box.setWindowTitle("About Soundstage")
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setText(about_text())
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.open()
    return box
