"""Formation's sources equal those computed before the speed work (tests/_reference.py): the
same names and peak counts, the same signals to float rounding, with and without a fixed count."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import separation  # noqa: E402
from _reference import assert_close_fingerprints, fingerprint, reference, scenes  # noqa: E402


@pytest.mark.parametrize("scene", ["band", "three"])
@pytest.mark.parametrize("tag,settings", [("auto", {}), ("n8", {"n_sources": 8})])
def test_formation_sources_as_before(scene, tag, settings):
    ref = reference()
    mix = scenes()[scene]
    sources = separation.get("formation", cache=False, **settings).separate(mix)
    key = f"formation_{scene}_{tag}"
    assert [s.name for s in sources] == list(ref[key + "_names"])
    assert [s.meta.get("n_peaks", -1) for s in sources] == list(ref[key + "_npeaks"])
    for src, want in zip(sources, ref[key + "_fp"]):
        assert_close_fingerprints(fingerprint(src.audio), want)
