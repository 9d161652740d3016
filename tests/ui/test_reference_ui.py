"""The "Reference…" control beside Variety: a stereo file is analysed in a job, new renditions
follow it and the gallery says which did; a mono file is a notice, not a reference. Real widgets,
offscreen."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")

from conftest import pan_mono  # noqa: E402
from core.models.reference_match import matcher_path  # noqa: E402
from test_ui_main import _wait_idle, settings, win  # noqa: E402,F401
from ui.reference_control import choose_reference  # noqa: E402

pytestmark = pytest.mark.skipif(not matcher_path().exists(), reason="no shipped reference matcher")


def _three_sources(rng, seconds):
    """A bass-like note, a bright lead and noise hats (as tests/app/test_session.py makes them)."""
    from conftest import harmonic_note, noise
    n = int(seconds * 44100)
    bass = np.concatenate([harmonic_note(82.4, 1.0, decay=1.0) for _ in range(int(seconds))])[:n]
    lead = np.zeros(n, np.float32)
    for k in range(int(seconds * 2)):
        seg = harmonic_note((659.3, 784.0, 880.0, 987.8)[k % 4], 0.5, n_harm=5, decay=2.0)
        lead[k * 22050: k * 22050 + len(seg)] += seg[: n - k * 22050]
    hats = np.diff(noise(rng, seconds, amp=0.05), prepend=0.0).astype(np.float32)
    return [bass, lead, hats]


def test_reference_control_reaches_renditions_and_gallery(win, qtbot, tmp_path):
    stems = _three_sources(np.random.default_rng(5), 4.0)
    ref = tmp_path / "record.wav"
    sf.write(str(ref), pan_mono(stems[0], 12.0) + pan_mono(stems[1], -12.0) + pan_mono(stems[2], 0.0), 44100)
    panel = win.renditions
    assert panel.reference.button.text() == "Ref…" and panel.reference.clear.isHidden()
    choose_reference(win.ctl, ref)
    _wait_idle(qtbot, win)
    s = win.ctl.session
    assert s.reference is not None and s.reference.name == "record.wav"
    qtbot.waitUntil(lambda: panel.reference.button.text() == "record.wav" and not panel.reference.clear.isHidden())
    n = len(s.renditions)
    panel.new.click()
    _wait_idle(qtbot, win)
    qtbot.waitUntil(lambda: len(s.renditions) == n + 1)
    assert s.renditions[-1].reference == s.reference
    g = panel.gallery
    qtbot.waitUntil(lambda: g.count() > n and "ref record.wav" in g.item(n).text())
    assert all("ref " not in g.item(k).text() for k in range(n))       # earlier ones did not follow it
    from app.reference import rendition_follows                         # whether this one did: the app says,
    assert panel.vm.entries[n].follows == rendition_follows(s, s.renditions[-1])     # the gallery shows it
    assert g.item(n).text().endswith("not followed") != panel.vm.entries[n].follows
    panel.reference.clear.click()
    assert s.reference is None
    qtbot.waitUntil(lambda: panel.reference.button.text() == "Ref…")


def test_mono_reference_is_a_notice(win, qtbot, tmp_path):
    mono = tmp_path / "mono.wav"
    sf.write(str(mono), np.sum(_three_sources(np.random.default_rng(5), 2.0), axis=0), 44100)
    said = []
    win.ctl.notice.connect(lambda title, text: said.append((title, text)))
    choose_reference(win.ctl, mono)
    _wait_idle(qtbot, win)
    assert win.ctl.session.reference is None
    assert len(said) == 1 and "mono.wav is mono" in said[0][1] and "\n" not in said[0][1]


def test_gallery_says_per_rendition_whether_it_followed_the_reference(win):
    """A hedged (or gated-out) reference: the renditions that did not follow it say so, the others
    name it as before."""
    from ui.viewmodels import RenditionEntry
    panel = win.renditions
    panel.vm._entries = (RenditionEntry(0, "ps-mtm", None, "model", 0.0, "record.wav", True),
                        RenditionEntry(2, "ps-mtm", None, "model", 0.0, "record.wav", False),
                        RenditionEntry(3, "ps-mtm", None, "model", 0.0, ""))
    panel.rebuild()
    g = panel.gallery
    assert g.item(0).text().endswith("ref record.wav") and "following the reference" in g.item(0).toolTip()
    assert g.item(1).text().endswith("ref record.wav not followed") and "not following it" in g.item(1).toolTip()
    assert "ref" not in g.item(2).text()
