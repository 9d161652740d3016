"""The view models the widgets bind to: each announces a change of the session with its notify
signal, once, carrying the value the session now holds; widgets show what their model says.
Real controller and widgets, offscreen."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")

from core.placement import Placement  # noqa: E402
from core.limits import DEFAULT_VARIETY  # noqa: E402
from test_ui_main import _recording, _wait_idle, settings, win  # noqa: E402,F401


class Count:
    """How many times a signal fired."""

    def __init__(self, *signals):
        self.n = 0
        for s in signals:
            s.connect(self)

    def __call__(self, *_):
        self.n += 1


def test_a_move_through_the_controller_reaches_the_canvas_model_once(win, qtbot):
    ctl = win.ctl
    vm = ctl.vms.sources
    assert len(vm.nodes) == len(ctl.session.sources) >= 3
    node, others = vm.nodes[0], vm.nodes[1:]
    moved, sources = Count(vm.nodes_changed), Count(vm.sources_changed)
    ctl.set_placement(0, node.placement.moved(0.3, 0.4), label="move")
    assert (vm.nodes[0].pan, vm.nodes[0].width, vm.nodes[0].pinned) == (0.3, 0.4, True)
    assert (moved.n, sources.n) == (1, 0)
    assert vm.nodes[0].key == node.key and vm.nodes[1:] == others
    c = win.canvas.node_center(0)
    assert (c.x(), c.y()) == (win.canvas.to_screen(0.3, 0.4).x(), win.canvas.to_screen(0.3, 0.4).y())
    qtbot.waitUntil(lambda: win.sources.rows[0].pan.value() == pytest.approx(0.3), timeout=10000)
    # a drag step: the engine hears it and the model moves the node, once per step
    ctl.begin_drag(1)
    ctl.drag_to(1, -0.5, 0.2)
    ctl.end_drag(1)
    assert (vm.nodes[1].pan, vm.nodes[1].width) == (-0.5, 0.2) and moved.n == 2
    # the same place again changes nothing: no signal
    ctl.set_placement(1, vm.nodes[1].placement, label="same")
    assert moved.n == 2 and sources.n == 0


def test_undo_rename_and_ab_reach_their_models(win, qtbot):
    ctl, vm, doc = win.ctl, win.ctl.vms.sources, win.ctl.vms.document
    before = vm.nodes[0].pan
    acts = Count(doc.actions_changed)
    ctl.set_placement(0, vm.nodes[0].placement.moved(-0.7, 0.1), label="move")
    assert doc.can_undo and acts.n >= 1 and win.act_undo.isEnabled()
    moved = Count(vm.nodes_changed)
    ctl.undo()
    _wait_idle(qtbot, win)
    assert vm.nodes[0].pan == pytest.approx(before) and moved.n == 1 and doc.can_redo
    key = vm.nodes[2].key
    renamed = Count(vm.sources_changed)
    ctl.rename(2, "Choir")
    assert (vm.nodes[2].name, vm.nodes[2].key, renamed.n) == ("Choir", key, 1)   # the same source, renamed
    qtbot.waitUntil(lambda: win.sources.rows[2].name.text() == "Choir", timeout=10000)
    ab = Count(vm.ab_changed)
    ctl.set_ab(True)
    assert vm.ab_original and ab.n == 1
    ctl.set_ab(True)
    assert ab.n == 1                         # no change, no signal
    ctl.set_ab(False)
    assert not vm.ab_original and ab.n == 2


def test_the_timeline_and_renditions_models_follow_the_session(win, qtbot):
    ctl, tl, rv = win.ctl, win.ctl.vms.timeline, win.ctl.vms.renditions
    assert tl.seconds == pytest.approx(4.0) and tl.mono is ctl.session.mono and tl.loop_region is None
    region = Count(tl.region_changed)
    ctl.set_region((1.25, 2.5))
    assert tl.loop_region == (1.25, 2.5) and region.n == 1
    ctl.set_region((1.25, 2.5))
    assert region.n == 1
    variety = Count(rv.variety_changed)
    ctl.set_variety(0.7)
    assert rv.variety == 0.7 and variety.n == 1
    assert [e.seed for e in rv.entries] == [r.seed for r in ctl.session.renditions] and rv.current == 0
    gallery = Count(rv.gallery_changed)
    ctl.new_rendition(seed=11)
    _wait_idle(qtbot, win)
    assert rv.current == 1 and rv.entries[1].seed == 11 and rv.entries[1].variety == 0.7
    assert gallery.n == 1
    qtbot.waitUntil(lambda: win.renditions.gallery.count() == 2, timeout=10000)
    assert "seed 11" in win.renditions.gallery.item(1).text()


def test_another_recording_reaches_every_model(win, qtbot, tmp_path):
    """Opening another recording (a new session): each model announces it once, with the new
    session's values, and the widgets show them (the variety box too: the new session starts from
    the default, which new renditions use)."""
    ctl, vms = win.ctl, win.ctl.vms
    win.renditions.variety.setValue(0.7)
    assert ctl.session.variety == 0.7
    counts = {name: Count(sig) for name, sig in (
        ("sources", vms.sources.sources_changed), ("recording", vms.timeline.recording_changed),
        ("document", vms.document.recording_changed), ("variety", vms.renditions.variety_changed))}
    ctl.open_file(_recording(tmp_path / "short.wav", seconds=2.0), separate=False)
    _wait_idle(qtbot, win)
    assert {name: c.n for name, c in counts.items()} == {"sources": 1, "recording": 1, "document": 1, "variety": 1}
    assert vms.sources.nodes == () and vms.timeline.seconds == pytest.approx(2.0) and vms.timeline.loop_region is None
    assert vms.document.recording_name == "short.wav" and win.windowTitle().startswith("short.wav")
    assert ctl.session.variety == DEFAULT_VARIETY == vms.renditions.variety == win.renditions.variety.value()
    assert not vms.renditions.entries
    qtbot.waitUntil(lambda: win.renditions.gallery.count() == 0 and not win.sources.rows, timeout=10000)


def test_the_transport_model_follows_the_engine(win, qtbot):
    ctl, tv = win.ctl, win.ctl.vms.transport
    assert tv.available and not tv.playing and tv.length == pytest.approx(4.0, abs=0.05)
    moved, state = Count(tv.position_changed), Count(tv.state_changed)
    ctl.seek(1.5)
    assert (tv.position, tv.position_samples, moved.n) == (1.5, 66150, 1)
    assert win.transport.time.text() == "0:01.5" and win.waveform.playhead.value() == 1.5
    ctl.toggle_play()
    assert tv.playing and state.n == 1 and win.transport.play.text() == "❚❚  Pause"
    qtbot.waitUntil(lambda: tv.position > 1.5, timeout=10000)     # the playhead moves on the ticks
    ctl.toggle_play()
    assert not tv.playing and state.n == 2 and win.transport.play.text() == "▶  Play"


def _fake_session(sources, places, **kw):
    base = dict(sources=sources, placements=places, ab_original=False, mono=None, renders=[])
    base.update(kw)
    return SimpleNamespace(**base)


def test_a_node_keeps_its_key_while_it_is_the_same_source(qtbot):
    """Keys follow the source objects: a rename keeps one, a replaced source gets a new one, and
    another session gives every source a new one (a value typed for one never reaches another)."""
    from ui.viewmodels import SourcesViewModel
    vm = SourcesViewModel()
    a, b = (SimpleNamespace(name=n, colour="#fff", kind="source") for n in "ab")
    s = _fake_session([a, b], [Placement(), Placement(pan=0.5)])
    sources, nodes = Count(vm.sources_changed), Count(vm.nodes_changed)
    vm.sync(s)
    k = [n.key for n in vm.nodes]
    assert len(set(k)) == 2 and (sources.n, nodes.n) == (1, 1) and vm.nodes[1].pan == 0.5
    a.name = "A"
    vm.sync(s)
    assert [n.key for n in vm.nodes] == k and vm.nodes[0].name == "A" and (sources.n, nodes.n) == (2, 2)
    c = SimpleNamespace(name="b", colour="#fff", kind="source")
    s.sources = [a, c]
    vm.sync(s)
    assert vm.nodes[0].key == k[0] and vm.nodes[1].key not in k and sources.n == 3
    seen = set(k) | {vm.nodes[1].key}
    vm.sync(_fake_session([a, c], list(s.placements)))          # another session, the same objects
    assert not {n.key for n in vm.nodes} & seen and sources.n == 4
    state = Count(vm.state_changed)
    vm.sync(_fake_session([a, c], list(s.placements), mono=[0.0], renders=[1]))
    assert vm.has_recording and vm.has_renders and state.n == 1


def test_every_view_model_property_is_read_only_and_announced(qtbot):
    """The pattern itself: each view model's Qt properties carry a notify signal and cannot be set
    from outside (a widget writes through the controller, never into its model)."""
    from ui.viewmodels import ViewModels
    vms = ViewModels()
    seen = 0
    for name in ("sources", "timeline", "renditions", "document", "output", "transport"):
        mo = getattr(vms, name).metaObject()
        for k in range(mo.propertyOffset(), mo.propertyCount()):
            prop = mo.property(k)
            assert prop.hasNotifySignal() and not prop.isWritable(), (name, prop.name())
            with pytest.raises(AttributeError):
                setattr(getattr(vms, name), prop.name(), None)
            seen += 1
    assert seen == 4 + 3 + 6 + 4 + 6 + 7
