"""Soundstage's desktop application (PyQt6 + pyqtgraph), built on the session engine in app/.

Start it with ``soundstage gui [FILE]`` or :func:`ui.app.run_gui`."""
