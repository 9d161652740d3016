"""View models: small QObjects whose properties carry notify signals (Friture's level view model is
the pattern). The controller owns them (:class:`ViewModels`) and sets them from the session on the
UI thread; a widget binds to one, reads only it, and writes through the controller's methods.

=================  =====================================================  ==========================
view model         what it holds                                          bound by
=================  =====================================================  ==========================
``sources``        one node per source: name, colour, place; A/B          pan canvas, sources list,
                                                                          edit bar and menus
``timeline``       the recording's samples and length, the loop region    overview, spectrogram
``renditions``     the gallery, the one playing, model, variety, reference renditions panel
``document``       the recording open, whether there is a mix, undo/redo  main window
``output``         the output gain, mono-compatible mode, output settings OUTPUT panel, export dialog
``transport``      can it play, is it playing, the playhead, the device   transport bar, playheads
=================  =====================================================  ==========================
"""
from __future__ import annotations

from PyQt6.QtCore import QObject

from .document import DocumentViewModel
from .output import OutputViewModel
from .renditions import RenditionEntry, RenditionsViewModel, reference_label
from .sources import SourceNode, SourcesViewModel
from .timeline import TimelineViewModel
from .transport import TransportViewModel

__all__ = ["ViewModels", "SourcesViewModel", "SourceNode", "TimelineViewModel", "RenditionsViewModel",
           "RenditionEntry", "DocumentViewModel", "OutputViewModel", "TransportViewModel", "reference_label"]

# which view models a session event can change (any other event, or "all": every one)
_EVENT_MODELS = {"placements": ("sources", "document"), "undo": ("document",)}


class ViewModels(QObject):
    """The controller's view models, one per group of widgets (see the table above)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.sources = SourcesViewModel(self)
        self.timeline = TimelineViewModel(self)
        self.renditions = RenditionsViewModel(self)
        self.document = DocumentViewModel(self)
        self.output = OutputViewModel(self)
        self.transport = TransportViewModel(self)

    def sync(self, session, event: str = "all") -> None:
        """Take what ``event`` (a session event's name) can have changed from ``session`` (the
        output and transport models follow the output stage and the playback engine: the controller
        sets them)."""
        for name in _EVENT_MODELS.get(event, ("sources", "timeline", "renditions", "document")):
            getattr(self, name).sync(session)
