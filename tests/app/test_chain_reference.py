"""The headless chain (``soundstage upmix --separator formation --method ps-mtm``) writes what it
wrote before the speed work (tests/_reference.py), to float rounding: the plain mode, the
mono-compatible mode and a second rendition, with the same output gains."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _reference import assert_close_fingerprints, fingerprint, reference, scenes  # noqa: E402
from app.chain import UpmixSettings, upmix_file  # noqa: E402


@pytest.mark.parametrize("tag,settings", [("plain", {}), ("monocompat", {"mono_compatible": True}),
                                          ("r2", {"renditions": 2})])
def test_chain_outputs_as_before(tmp_path, monkeypatch, tag, settings):
    """(Without the PS model's detail calibration, which came after the reference: a shipped
    calibration changes the output by design, core/detail.py; nor the odd seeds' mirror and the placement's
    calibrated pan spread at variety 0, which also came after it, issue 24.)"""
    import app.proposal
    import core.detail
    import core.models.placement
    monkeypatch.setattr(app.proposal, "load_detail", lambda *a, **k: None)
    monkeypatch.setattr(core.detail, "MIRROR_ODD", False)
    monkeypatch.setattr(core.models.placement, "PAN_SPREAD", 1.0)
    ref = reference()
    inp = tmp_path / "band.wav"
    sf.write(str(inp), np.tile(scenes()["band"], 2)[: 12 * 44100], 44100, subtype="FLOAT")
    res = upmix_file(inp, tmp_path / f"{tag}.wav",
                     UpmixSettings(method="ps-mtm", separator="formation", seed=3, **settings))
    assert len(res.outputs) == settings.get("renditions", 1)
    for k, out in enumerate(res.outputs):
        y, _ = sf.read(str(out.path), dtype="float32")
        assert abs(out.gain_db - float(ref[f"chain_{tag}_{k}_gain"])) < 1e-4
        assert_close_fingerprints(np.stack([fingerprint(y[:, 0]), fingerprint(y[:, 1])]), ref[f"chain_{tag}_{k}_fp"])


@pytest.mark.parametrize("mono_compatible", [False, True])
def test_renditions_mixed_together_equal_render_of_their_projects(tmp_path, mono_compatible):
    """``--renditions 3`` mixes every rendition in one pass; each file still equals, bit for bit,
    what ``soundstage render`` makes of its project (a session re-made from it, exported), and
    what exporting each rendition on its own wrote (the stems path, one export per rendition)."""
    from app.export import export
    from app.project_io import load_project
    inp = tmp_path / "band.wav"
    sf.write(str(inp), scenes()["band"][: 5 * 44100], 44100, subtype="FLOAT")
    settings = UpmixSettings(method="ps-mtm", separator="formation", seed=1, renditions=3,
                             mono_compatible=mono_compatible)
    res = upmix_file(inp, tmp_path / "out.wav", settings)
    each = upmix_file(inp, tmp_path / "each" / "out.wav", UpmixSettings(**{**settings.to_dict(), "stems": True}))
    assert [o.seed for o in res.outputs] == [1, 2, 3]
    for out, one in zip(res.outputs, each.outputs):
        y, _ = sf.read(str(out.path), dtype="float32")
        session = load_project(out.project, pairs=False)
        again = export(session, tmp_path / f"render-{out.seed}.wav", project=False)
        z, _ = sf.read(str(again.path), dtype="float32")
        w, _ = sf.read(str(one.path), dtype="float32")
        assert np.array_equal(y, z) and np.array_equal(y, w)
        assert again.gain_db == out.gain_db == one.gain_db


@pytest.mark.parametrize("where", ["separate", "mix"])
def test_chain_cancel_stops_within_a_chunk_and_leaves_nothing(tmp_path, where):
    """A cancel during the separation or during the renditions' one mixing pass stops the chain at
    its next chunk (at most the chunks already handed to the measuring thread follow) and leaves
    no output, project or temporary file behind."""
    import threading

    from core.errors import Cancelled
    inp = tmp_path / "in" / "band.wav"
    inp.parent.mkdir()
    sf.write(str(inp), np.tile(scenes()["band"], 3)[: 24 * 44100], 44100, subtype="FLOAT")
    cancel = threading.Event()
    after = []

    def progress(p):
        if cancel.is_set():
            after.append(p.stage)
        elif p.stage.startswith(where) and p.fraction > 0.0:
            cancel.set()

    with pytest.raises(Cancelled):
        upmix_file(inp, tmp_path / "out" / "x.wav", UpmixSettings(method="ps-mtm", separator="formation", seed=2,
                                                                  renditions=2),
                   progress=progress, cancel=cancel)
    assert cancel.is_set()
    assert sum(s.startswith(where) for s in after) <= 3, after
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
