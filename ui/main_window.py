"""The main window: composes the panels, menus, shortcuts, drag and drop and the status bar.

Everything the window does goes through :class:`ui.controller.SessionController`; this module
only wires widgets to it and shows what happens (progress, messages, errors). What it shows of the
session (the title, which actions are enabled) comes from the document's view model."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from PyQt6.QtCore import QEvent, QSettings, QSize, Qt, QTimer
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import (QApplication, QFileDialog, QFrame, QHBoxLayout, QLabel, QMainWindow, QMessageBox,
                             QProgressBar, QPushButton, QScrollArea, QSplitter, QVBoxLayout, QWidget)

from . import theme
from .banner import MessageBanner, demucs_advice
from .controller import SessionController
from .dialogs import ExportDialog, PreferencesDialog, output_folder, remember_output_folder, show_about
from .keys import FieldKeys, is_text_field
from .meters import MetersPanel
from .pan_canvas import PanCanvas
from .renditions import RenditionsPanel
from .separation_panel import SeparationPanel
from .sources_panel import SourcesPanel
from .spectrogram_view import SpectrogramView
from .transport import TransportBar
from .waveform_view import WaveformView
from core import lazy
demucs_weights = lazy.module("separation.demucs_weights")
project = lazy.module("app.project")

__all__ = ["MainWindow", "AUDIO_FILTER", "recent_labels"]

AUDIO_FILTER = "Audio (*.wav *.flac *.ogg *.mp3 *.aif *.aiff);;All files (*)"
PROJECT_FILTER = "Soundstage project (*.soundstage.json *.json)"


def recent_labels(paths: list[str]) -> list[str]:
    """A recent list's menu labels: each file's name, and where two share a name, enough of their folders to
    tell them apart ("feelings-mono.flac — wt-lead/resources/demo")."""
    parts = [Path(p).parts for p in paths]
    out = []
    for i, p in enumerate(parts):
        same = [q for j, q in enumerate(parts) if j != i and q[-1] == p[-1]]
        depth = 0
        while same and depth < len(p) - 1 and any(q[-2 - depth:-1] == p[-2 - depth:-1] for q in same):
            depth += 1
        out.append(p[-1] if not same else f"{p[-1]} — {Path(*p[-2 - depth:-1])}")
    return out


class MainWindow(QMainWindow):
    def __init__(self, *, settings: Optional[QSettings] = None, controller: Optional[SessionController] = None):
        super().__init__()
        self.settings = settings or QSettings("Soundstage", "Soundstage")
        self.ctl = controller or SessionController(self, settings=self.settings)
        self.doc = self.ctl.vms.document           # the recording, the mix, undo and redo (the controller sets it)
        self.setWindowTitle("Soundstage")
        self.setAcceptDrops(True)
        avail = self.screen().availableGeometry() if self.screen() is not None else None
        self.resize(min(1480, avail.width()) if avail else 1480, min(920, avail.height()) if avail else 920)
        self._build()
        self._build_menus()
        self._build_status()
        self.setMinimumSize(self.minimum_size())
        self.content.installEventFilter(self)       # the minimum follows the panels' (names, readouts)
        self.field_keys = FieldKeys(self, home=self.canvas)
        self.field_keys.left.connect(lambda _field: self.sources.sync())
        ctl = self.ctl
        ctl.status.connect(lambda m: self.statusBar().showMessage(m, 8000))
        ctl.error.connect(self.show_error)
        ctl.notice.connect(lambda title, message: self.banner.show_message(title, message, level="warning"))
        ctl.busy_changed.connect(self._busy)
        ctl.job_progress.connect(self._progress)
        self.doc.recording_changed.connect(self._recording_changed)
        for signal in (self.doc.recording_changed, ctl.vms.sources.sources_changed, ctl.vms.renditions.gallery_changed,
                       ctl.vms.renditions.state_changed):
            signal.connect(self._minimum_may_grow)
        ctl.modified_changed.connect(self.setWindowModified)
        self.unsaved_prompt: Optional[QMessageBox] = None
        self._closing = False
        self._shut_down = False
        self._update_title()
        geom = self.settings.value("window/geometry")
        if geom is not None:
            self.restoreGeometry(geom)

    # --- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        ctl = self.ctl
        self.transport = TransportBar(ctl)
        self.separation = SeparationPanel(ctl)
        self.sources = SourcesPanel(ctl)
        self.canvas = PanCanvas(ctl)
        self.renditions = RenditionsPanel(ctl)
        self.meters = MetersPanel(ctl)
        self.waveform = WaveformView(ctl)
        self.spectrogram = SpectrogramView(ctl)
        self.banner = MessageBanner()
        self.transport.loopToggled.connect(self.waveform.set_loop_enabled)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.separation)
        ll.addWidget(self.sources, 1)
        left.setMaximumWidth(540)
        canvas_frame = QFrame()
        canvas_frame.setObjectName("panel")
        cl = QVBoxLayout(canvas_frame)
        cl.setContentsMargins(2, 2, 2, 2)
        cl.addWidget(self.canvas)
        self.renditions.setMaximumWidth(330)
        top = QWidget()
        tl = QHBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(left, 3)               # up to its maximum, most space beyond the minimums goes to the names
        tl.addWidget(canvas_frame, 2)
        tl.addWidget(self.renditions)
        # the overview and the spectrogram share the bottom row with the output meters: the right
        # column then holds only the gallery, so the window fits a 1280 x 720 screen
        views = QFrame()
        views.setObjectName("panel")
        vl = QVBoxLayout(views)
        vl.setContentsMargins(4, 4, 4, 4)
        vl.setSpacing(2)
        vl.addWidget(self.waveform, 2)           # (at most 110 px high) short windows: both get shorter
        vl.addWidget(self.spectrogram, 3)
        self.meters.setMaximumWidth(330)
        bottom = QWidget()
        bl = QHBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(views, 1)
        bl.addWidget(self.meters)
        split = QSplitter(Qt.Orientation.Vertical)
        split.setChildrenCollapsible(False)
        split.addWidget(top)
        split.addWidget(bottom)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([600, 260])
        self.splitter = split
        content = QWidget()
        lay = QVBoxLayout(content)
        lay.setContentsMargins(8, 0, 8, 4)
        lay.setSpacing(6)
        lay.addWidget(self.transport)
        lay.addWidget(split, 1)
        # below its minimum size (a window manager that ignores it, a smaller screen) the window
        # scrolls the panels instead of squeezing them over one another; the banner stays on top
        self.content = content
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setWidget(content)
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(0, 6, 0, 0)
        outer.setSpacing(6)
        banner_row = QHBoxLayout()
        banner_row.setContentsMargins(8, 0, 8, 0)
        banner_row.addWidget(self.banner)
        outer.addLayout(banner_row)
        outer.addWidget(self.scroll, 1)
        self.setCentralWidget(central)

    def minimum_size(self) -> QSize:
        """The smallest window at which every panel has its minimum size, with a few pixels to
        spare for readouts that grow (with the banner hidden; shown, it pushes the panels into a
        scroll area rather than over one another)."""
        m = self.content.minimumSizeHint()
        return QSize(m.width() + 8, m.height() + 6 + self.menuBar().sizeHint().height()
                     + self.statusBar().sizeHint().height() + 8)

    def eventFilter(self, obj, ev) -> bool:
        if obj is self.content and ev.type() == QEvent.Type.LayoutRequest:
            QTimer.singleShot(0, self._follow_minimum)    # once the layout has taken the change
        return False

    def _follow_minimum(self) -> None:
        """A larger minimum when the panels' own grew past the spare pixels (never smaller)."""
        least, now = self.minimum_size(), self.minimumSize()
        if least.width() - 8 > now.width() or least.height() - 8 > now.height():
            self.setMinimumSize(least.expandedTo(now))

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        self.separation.show_description(self.height() >= 900)   # where the panel has the height

    def _act(self, menu, text, slot, shortcut=None, *, name=None) -> QAction:
        a = QAction(text, self)
        if shortcut:
            a.setShortcuts([QKeySequence(s) for s in (shortcut if isinstance(shortcut, (list, tuple)) else [shortcut])])
        a.triggered.connect(slot)
        menu.addAction(a)
        self.addAction(a)     # shortcuts work without the menu bar open
        if name:
            setattr(self, name, a)
        return a

    def _build_menus(self) -> None:
        ctl = self.ctl
        mb = self.menuBar()
        f = mb.addMenu("&File")
        self._act(f, "&Open recording…", self.open_dialog, "Ctrl+O", name="act_open")
        self.recent_menu = f.addMenu("Open &recent recording")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        f.addSeparator()
        self._act(f, "Open &project…", self.open_project_dialog, "Ctrl+Shift+O", name="act_open_project")
        self.recent_projects_menu = f.addMenu("Recent pro&jects")
        self.recent_projects_menu.aboutToShow.connect(self._fill_recent)
        self._act(f, "&Save project", self.save, "Ctrl+S", name="act_save")
        self._act(f, "Save project &as…", self.save_as, "Ctrl+Shift+S", name="act_save_as")
        f.addSeparator()
        self._act(f, "&Export…", self.export_dialog, "Ctrl+E", name="act_export")
        self._act(f, "Export &DAW project…", self.export_dawproject_dialog, "Ctrl+Shift+E", name="act_export_daw")
        f.addSeparator()
        self._act(f, "&Quit", self.close, "Ctrl+Q", name="act_quit")
        e = mb.addMenu("&Edit")
        self._act(e, "&Undo", ctl.undo, "Ctrl+Z", name="act_undo")
        self._act(e, "&Redo", ctl.redo, ["Ctrl+Shift+Z", "Ctrl+Y"], name="act_redo")
        e.addSeparator()
        self._act(e, "&Preferences…", self.preferences_dialog, "Ctrl+,")
        p = mb.addMenu("&Playback")
        self._act(p, "Play / pause", ctl.toggle_play, "Space", name="act_play")
        self._act(p, "Stop", ctl.stop, "Ctrl+Space")
        self._act(p, "Loop region", lambda: self.transport.loop.toggle(), "L")
        self._act(p, "A/B: stereo or mono original", lambda: self.transport.ab.toggle(), "B", name="act_ab")
        p.addSeparator()
        self._act(p, "New rendition", self.renditions.request_new, "N", name="act_new_rendition")
        self.rendition_actions = []
        for k in range(9):
            a = QAction(f"Rendition {k + 1}", self)
            a.setShortcut(QKeySequence(str(k + 1)))
            a.triggered.connect(lambda _=False, k=k: ctl.recall(k))
            self.addAction(a)
            self.rendition_actions.append(a)
        h = mb.addMenu("&Help")
        self._act(h, "&About Soundstage", lambda: show_about(self))
        self.doc.actions_changed.connect(self._update_actions)
        self.doc.recording_changed.connect(self._update_actions)
        ctl.busy_changed.connect(lambda _b: self._update_actions())
        self._update_actions()

    def _build_status(self) -> None:
        sb = self.statusBar()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFixedWidth(260)
        self.progress.setTextVisible(True)
        self.time_left = QLabel()
        self.time_left.setStyleSheet(f"color: {theme.TEXT_DIM};")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running task; nothing is changed")
        self.cancel_button.clicked.connect(self.ctl.cancel)
        for w in (self.time_left, self.progress, self.cancel_button):
            sb.addPermanentWidget(w)
            w.hide()
        sb.showMessage("Ready")

    # --- reactions ------------------------------------------------------------------------------
    def _busy(self, busy: bool) -> None:
        for w in (self.time_left, self.progress, self.cancel_button):
            w.setVisible(busy)
        self._focus_off_fields()
        if busy:
            self.progress.setValue(0)
            self.progress.setFormat("starting…")

    def _focus_off_fields(self) -> None:
        """When a job starts or ends, focus must not be left in a field the user is not editing
        (disabling the button that had it moves focus on, to whatever comes next): the pan
        canvas takes it, so keys act on the session."""
        fw = QApplication.focusWidget()
        if fw is not None and fw.window() is not self:
            return
        if fw is None or not fw.isEnabled() or (is_text_field(fw) and fw is not self.field_keys.editing):
            self.canvas.setFocus(Qt.FocusReason.OtherFocusReason)

    def _progress(self, label: str, fraction: float, left: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.progress.setFormat(f"{label}  %p%")
        self.time_left.setText(left)

    def _minimum_may_grow(self) -> None:
        QTimer.singleShot(0, self._follow_minimum)    # once the panels have taken the change

    def _recording_changed(self) -> None:
        self._update_title()
        if self.doc.recording is not None:
            self.banner.hide()

    def _update_title(self) -> None:
        """``NAME[*] — Soundstage``: the project's name once saved, else the recording's; Qt shows
        the ``*`` while the session has unsaved changes."""
        ctl = self.ctl
        name = ctl.project_path.name if ctl.project_path else self.doc.recording_name
        self.setWindowTitle(f"{name}[*] — Soundstage" if name else "Soundstage[*]")
        self.setWindowModified(ctl.modified)

    def _update_actions(self, *_):
        d, busy = self.doc, self.ctl.busy
        self.act_undo.setEnabled(d.can_undo and not busy)
        self.act_redo.setEnabled(d.can_redo and not busy)
        self.act_export.setEnabled(d.has_renders and not busy)
        self.act_export_daw.setEnabled(d.has_renders and not busy)
        self.act_save.setEnabled(d.recording is not None and not busy)
        self.act_save_as.setEnabled(d.recording is not None and not busy)

    def show_error(self, title: str, message: str) -> None:
        if isinstance(self.ctl.last_exception, demucs_weights.ModelUnavailable) and message == self.ctl.last_error:
            self.banner.show_message(title, demucs_advice(message),
                                     action=("Preferences…", self._demucs_preferences))
            self.ctl.last_exception = None
            return
        self.banner.show_message(title, message)

    def _demucs_preferences(self) -> None:
        dlg = self.preferences_dialog()
        dlg.models_dir.setFocus(Qt.FocusReason.OtherFocusReason)

    # --- file actions ---------------------------------------------------------------------------
    def open_path(self, path) -> None:
        """Open a recording (separated at once when the Separation panel says so) or a project."""
        path = Path(path)
        if project.looks_like_project(path):          # (a project saved under another name too)
            self.ctl.load_project(path)
        else:
            name, st = self.separation.settings()
            self.ctl.open_file(path, backend=name, settings=st, separate=self.separation.auto.isChecked())

    def open_dialog(self) -> None:
        self.when_saved(self._open_dialog, "opening another recording")

    def _open_dialog(self) -> None:
        start = self.settings.value("dirs/open", str(Path.home()), str)
        path, _ = QFileDialog.getOpenFileName(self, "Open a mono recording", start, AUDIO_FILTER)
        if path:
            self.settings.setValue("dirs/open", str(Path(path).parent))
            self.open_path(path)

    def _fill_recent(self) -> None:
        for menu, mine in ((self.recent_menu, self.ctl.recent_files()),
                           (self.recent_projects_menu, self.ctl.recent_projects())):
            menu.clear()
            if not mine:
                menu.addAction("(none yet)").setEnabled(False)
            for f, label in zip(mine, recent_labels(mine)):
                menu.addAction(label, lambda f=f: self.when_saved(lambda: self.open_path(f),
                                                                  f"opening {Path(f).name}")).setToolTip(f)

    def open_project_dialog(self) -> None:
        self.when_saved(self._open_project_dialog, "opening a project")

    def _open_project_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a project", "", PROJECT_FILTER)
        if path:
            self.ctl.load_project(path)

    def save(self) -> bool:
        """Save to the project file (Save As the first time). Whether it was saved."""
        if self.ctl.project_path is None:
            return self.save_as()
        return self._save_to(self.ctl.project_path)

    def save_as(self) -> bool:
        if self.doc.recording is None:
            return False
        default = self.ctl.project_path or self._proposed(".soundstage.json")
        path, _ = QFileDialog.getSaveFileName(self, "Save project as", str(default), PROJECT_FILTER)
        if path:
            remember_output_folder(self.settings, path)
        return bool(path) and self._save_to(Path(path))

    save_project_dialog = save_as

    def _save_to(self, path: Path) -> bool:
        try:
            self.ctl.save_project(path)
        except Exception as exc:
            self.show_error("Could not save the project", str(exc))
            return False
        self._update_title()
        return True

    def when_saved(self, then: Callable[[], None], doing: str) -> None:
        """Run ``then`` at once if nothing is unsaved; else ask first (Save, Discard, Cancel) in a
        window-modal box that does not block the event loop. Cancel keeps everything as it is."""
        if not self.ctl.modified:
            then()
            return
        if self.unsaved_prompt is not None and self.unsaved_prompt.isVisible():
            self.unsaved_prompt.raise_()
            return
        name = self.ctl.project_path.name if self.ctl.project_path else (self.doc.recording_name or "this session")
        box = QMessageBox(QMessageBox.Icon.Warning, "Unsaved changes",
                          f"Save the changes to {name} before {doing}?", QMessageBox.StandardButton.Save
                          | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel, self)
        box.setInformativeText("If you don't save, your placements, names and renditions since the last save are lost.")
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        box.setEscapeButton(QMessageBox.StandardButton.Cancel)
        box.setWindowModality(Qt.WindowModality.WindowModal)

        def answered(_code) -> None:
            choice = box.standardButton(box.clickedButton())
            self.unsaved_prompt = None
            box.deleteLater()
            if choice == QMessageBox.StandardButton.Discard or (
                    choice == QMessageBox.StandardButton.Save and self.save()):
                then()

        box.finished.connect(answered)
        self.unsaved_prompt = box
        box.open()

    def _proposed(self, suffix: str) -> Path:
        """A file named after the recording (``suffix`` after its stem) in the folder to propose:
        the recording's, or the last one written to when that is the app's own (the demo)."""
        rec = self.doc.recording
        return output_folder(rec, self.settings) / ((rec.stem if rec else "soundstage") + suffix)

    def export_dialog(self) -> Optional[ExportDialog]:
        if not self.doc.has_renders:
            return None
        dlg = ExportDialog(self, suggested=self._proposed("-stereo.wav"), ctl=self.ctl)
        dlg.accepted.connect(lambda: self._export(dlg))
        dlg.open()
        self._export_dialog = dlg
        return dlg

    def export_dawproject_dialog(self) -> Optional[QFileDialog]:
        """Ask where to write the DAWproject file (a track per source, the mono original muted)."""
        if not self.doc.has_renders:
            return None
        dlg = QFileDialog(self, "Export DAW project", str(self._proposed(".dawproject")), "DAWproject (*.dawproject)")
        dlg.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dlg.setDefaultSuffix("dawproject")
        dlg.fileSelected.connect(lambda path: (remember_output_folder(self.settings, path),
                                               self.ctl.export_dawproject(path)))
        dlg.open()
        self._dawproject_dialog = dlg
        return dlg

    def _export(self, dlg: ExportDialog) -> None:
        path, fmt, stems = dlg.values()
        remember_output_folder(self.settings, path)
        self.ctl.export(path, fmt=fmt, stems=stems, overwrite=True)

    def preferences_dialog(self) -> PreferencesDialog:
        dlg = PreferencesDialog(self.settings, self)

        def save():
            old = self.settings.value("audio/device", "", str)
            dlg.save()
            self.ctl.apply_settings()
            if dlg.device.currentData() != old:
                self.ctl.reopen_player()
                self.transport.refresh()
        dlg.accepted.connect(save)
        dlg.open()
        self._prefs_dialog = dlg
        return dlg

    # --- drag and drop --------------------------------------------------------------------------
    def dragEnterEvent(self, ev):
        if ev.mimeData().hasUrls() and any(u.isLocalFile() for u in ev.mimeData().urls()):
            ev.acceptProposedAction()

    def dropEvent(self, ev):
        files = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if files:
            ev.acceptProposedAction()
            self.when_saved(lambda: self.open_path(files[0]), f"opening {Path(files[0]).name}")

    def close_without_asking(self) -> None:
        """Close even with unsaved changes (the event loop has ended: nobody is there to answer)."""
        self._closing = True
        self.close()

    def closeEvent(self, ev):
        if self.ctl.modified and not self._closing:
            ev.ignore()                  # ask first; Save or Discard close the window, Cancel keeps it

            def close_now():
                self._closing = True
                self.close()
            self.when_saved(close_now, "closing")
            return
        if not self._shut_down:          # (close_without_asking after a confirmed close: done already)
            self._shut_down = True
            self.settings.setValue("window/geometry", self.saveGeometry())
            self.ctl.shutdown()
        super().closeEvent(ev)
