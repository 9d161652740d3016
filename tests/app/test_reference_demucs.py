"""A reference analysed with a Demucs separator (issue 27): the real path (demucs' own loading and
separation) with a tiny random-weight HTDemucs the test builds, as tests/separation does; Demucs'
released weights cannot be downloaded here."""
import numpy as np
import pytest
import soundfile as sf

from app.reference import analyse_file
from conftest import pan_mono
from core.pan import iid_to_pan
from test_session import _three_sources

pytest.importorskip("demucs")

IID = 6.0           # dB, L over R: every stem, however the tiny model splits the mix, sits there


def test_a_demucs_reference_measures_each_stem_where_the_mix_sits(tmp_path):
    from _demucs_tiny import STEMS4, make_model_folder
    models = tmp_path / "demucs"
    make_model_folder(models, name="tiny")
    ref = tmp_path / "ref.wav"
    sf.write(str(ref), pan_mono(np.sum(_three_sources(np.random.default_rng(5), 2.0), axis=0), IID), 44100,
             subtype="FLOAT")
    scene = analyse_file(ref, "demucs", {"model": "tiny", "models_dir": str(models), "shifts": 0, "device": "cpu",
                                         "cache": False})
    assert scene.separator == "demucs" and scene.n == len(STEMS4) and scene.name == "ref.wav"
    # one level difference everywhere: any mask keeps L/R, so every stem's place and per-band pan is it
    assert np.allclose(scene.pan, iid_to_pan(IID), atol=5e-3)          # -0.408 (tiles near silence: floored)
    assert max(scene.width) < 0.01
    assert abs(sum(scene.share) - 1) < 1e-6
    loud = np.array(scene.feats)[:, :34] > np.log10(0.02)       # bands with 2 % of a stem's energy or more
    assert loud.sum() >= 8 and np.allclose(np.array(scene.band_pan)[loud], iid_to_pan(IID), atol=0.02)
