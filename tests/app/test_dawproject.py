"""DAWproject hand-off: the file validates against the schema, and its stems sum to the export."""
import io
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lxml import etree

from cli.main import main
from app.dawproject import write_dawproject
from app.session import Session
from core.placement import Placement
from separation.base import Source, colour_for

from conftest import harmonic_note, noise
from app.export import export

SCHEMA = Path(__file__).resolve().parents[3] / "shared" / "dawproject"
if not SCHEMA.exists():
    SCHEMA = Path("/work/shared/dawproject")


def _schema(name):
    return etree.XMLSchema(etree.parse(str(SCHEMA / name)))


def _session(tmp_path, rng):
    srcs = [harmonic_note(110.0, 2.0) * 3, harmonic_note(440.0, 2.0, n_harm=4) * 3, noise(rng, 2.0, amp=0.2)]
    rec = tmp_path / "rec.wav"
    sf.write(str(rec), np.sum(srcs, axis=0), 44100, subtype="FLOAT")
    s = Session()
    s.open(rec)
    s.set_sources([Source(f"src {i}", x.astype(np.float32), colour_for(i)) for i, x in enumerate(srcs)])
    s.model = "decorr"
    s.new_rendition(0)
    s.placements[0] = Placement(pan=-0.8, width=0.1, pinned=True)
    s.placements[2] = replace(s.placements[2], mute=True)
    return s


def _read(z, name):
    y, sr = sf.read(io.BytesIO(z.read(name)), dtype="float32", always_2d=True)
    assert sr == 44100
    return y


@pytest.mark.skipif(not (SCHEMA / "Project.xsd").exists(), reason="DAWproject schema missing")
@pytest.mark.parametrize("mono_compatible", [False, True])
def test_dawproject_validates_and_stems_sum_to_the_export(tmp_path, rng, mono_compatible):
    s = _session(tmp_path, rng)
    s.set_mono_compatible(mono_compatible, record=False)
    res = export(s, tmp_path / "mix.wav", fmt="wav32f", project=False)
    assert res.gain_db < 0                        # the mix needed scaling: the stems carry it too
    out = write_dawproject(s, tmp_path / "mix.dawproject")
    mixed, _ = sf.read(str(res.path), dtype="float32")
    with zipfile.ZipFile(out) as z:
        assert {"project.xml", "metadata.xml"} <= set(z.namelist())
        project = etree.fromstring(z.read("project.xml"))
        _schema("Project.xsd").assertValid(project)
        _schema("MetaData.xsd").assertValid(etree.fromstring(z.read("metadata.xml")))
        tracks = {t.get("id"): t for t in project.iter("Track") if t.get("name") != "Master"}
        files = {ln.get("track"): ln.find(".//File").get("path") for ln in project.iter("Lanes") if ln.get("track")}
        assert set(files) == set(tracks)
        total = np.zeros_like(mixed)
        seen = []
        for tid, t in tracks.items():
            y = _read(z, files[tid])
            muted = t.find("Channel/Mute").get("value") == "true"
            seen.append((t.get("name"), t.get("color"), muted, y.shape[1]))
            if not muted:
                total += y
            if t.get("name") == "Original (mono)":
                assert np.array_equal(y[:, 0], s.mono)
            if t.get("name") == "src 2":             # muted in Soundstage: written, track muted
                assert np.abs(y).max() > 0.01
        assert seen == [("src 0", colour_for(0), False, 2), ("src 1", colour_for(1), False, 2),
                        ("src 2", colour_for(2), True, 2), ("Original (mono)", "#808080", True, 1)]
        assert np.max(np.abs(total - mixed)) < 1e-6
        # every track's channel goes to the master
        master = next(c for c in project.iter("Channel") if c.get("role") == "master")
        assert all(c.get("destination") == master.get("id") for c in project.iter("Channel") if c is not master)


def test_dawproject_refuses_input_and_existing(tmp_path, rng):
    s = _session(tmp_path, rng)
    with pytest.raises(Exception, match="over the input"):
        write_dawproject(s, s.recording, overwrite=True)
    p = tmp_path / "x.dawproject"
    p.write_bytes(b"keep")
    with pytest.raises(Exception, match="already exists"):
        write_dawproject(s, p)
    assert p.read_bytes() == b"keep"


def test_upmix_cli_writes_dawproject_and_mono_compatible(tmp_path, rng, capsys):
    x = (harmonic_note(220.0, 3.0) + harmonic_note(330.0, 3.0) * np.linspace(0, 1, 3 * 44100) + noise(rng, 3.0, amp=0.02))
    rec = tmp_path / "in.wav"
    sf.write(str(rec), x.astype(np.float32), 44100, subtype="FLOAT")
    out = tmp_path / "out.wav"
    dp = tmp_path / "out.dawproject"
    assert main(["upmix", str(rec), "-o", str(out), "--method", "decorr", "--separator", "formation",
                 "--sources", "2", "--mono-compatible", "--format", "wav32f", "--dawproject", str(dp)]) == 0
    text = capsys.readouterr().out
    assert "LUFS" in text and "dBTP" in text and "output gain" in text and str(dp) in text
    y, _ = sf.read(str(out), dtype="float32")
    mono, _ = sf.read(str(rec), dtype="float32")
    with zipfile.ZipFile(dp) as z:
        _schema("Project.xsd").assertValid(etree.fromstring(z.read("project.xml")))
    import json
    proj = json.loads(Path(str(out).replace(".wav", ".soundstage.json")).read_text())
    assert proj["mono_compatible"] is True and proj["export"]["true_peak"] is True
    g = 10 ** (proj_gain(text) / 20)
    assert np.max(np.abs((y[:, 0] + y[:, 1]) / 2 - g * mono)) < 1e-5
    # without a separator there are no sources to hand off
    assert main(["upmix", str(rec), "-o", str(tmp_path / "b.wav"), "--method", "decorr",
                 "--dawproject", str(tmp_path / "b.dawproject")]) == 2


def proj_gain(text: str) -> float:
    """The gain the CLI says it applied ("output gain -1.23 dB: ...")."""
    import re
    return float(re.search(r"output gain ([+-][0-9.]+) dB", text).group(1))
