"""The reference matcher's tuning (training/train_reference.py): the choice of the tiers from
per-pair ladders, on made-up ladders whose best setting is known."""
from types import SimpleNamespace

import pytest

from training import train_reference as tr


def _pair(kind, digest):
    return (SimpleNamespace(), SimpleNamespace(id=digest), kind, digest)


def test_choose_ranks_by_same_track_with_album_no_worse_and_ends_with_the_close_tier(monkeypatch):
    """Same-track pairs at gates 0.1 (helped by close following at sigma 0.03, more with spread 0.4)
    and 0.5 (helped by loose following); same-album pairs at 0.5 (loose following at 0.2 costs them
    a little, at 0.3 nothing) and 0.9. Among the settings whose same-album ratio is not above 1, the
    lowest same-track ratio: close at 0.03 with spread 0.4 up to 0.2, loose at 0.3 up to 0.6
    (same-track 0.01 / 0.05: 0.375; same-album 1); the loose tier at 0.2 is better for same-track
    (0.25) but costs the album pairs (1.0625). Last, the close tier alone (0.01 / 0.08: 0.5625).
    Whether the album pairs' D_F allows the loose tier is checked after."""
    monkeypatch.setattr(tr, "LADDER", (0.03, 0.1))
    monkeypatch.setattr(tr, "SPREADS", (0.0, 0.4))
    monkeypatch.setattr(tr, "SPREAD_LADDER", (0.03,))
    monkeypatch.setattr(tr, "LOOSE_LADDER", (0.2, 0.3))
    monkeypatch.setattr(tr, "GATE_MAX", (0.2, 0.3))
    monkeypatch.setattr(tr, "LOOSE_GATE", (0.6, 1.0))
    fit = [_pair("same-track", "a"), _pair("same-track", "b"), _pair("same-album", "c"), _pair("same-album", "d")]
    gates = dict(zip(map(id, fit), (0.1, 0.5, 0.5, 0.9)))
    none = dict(zip(map(id, fit), (0.08, 0.08, 0.08, 0.08)))
    ladder = {}
    for p, close, loose in zip(fit, ({(0.03, 0.0): 0.02, (0.1, 0.0): 0.05, (0.03, 0.4): 0.01},
                                     {(0.03, 0.0): 0.2, (0.1, 0.0): 0.1, (0.03, 0.4): 0.2},
                                     {(0.03, 0.0): 0.3, (0.1, 0.0): 0.2, (0.03, 0.4): 0.3},
                                     {(0.03, 0.0): 0.3, (0.1, 0.0): 0.2, (0.03, 0.4): 0.3}),
                               ({0.2: 0.01, 0.3: 0.05}, {0.2: 0.01, 0.3: 0.05}, {0.2: 0.09, 0.3: 0.08},
                                {0.2: 0.085, 0.3: 0.08})):
        for (s, sp), v in close.items():
            ladder[(id(p), "close", s, sp)] = v
        for s, v in loose.items():
            ladder[(id(p), "loose", s, 1.0)] = v
    out = tr._choose(fit, gates, ladder, none, log=lambda s: None)
    assert out[0] == {"sigma": 0.03, "spread": 0.4, "gate_max": 0.2, "loose_sigma": 0.3, "loose_gate": 0.6,
                      "loose_mirror": 1.0}
    assert out[-1] == {"sigma": 0.03, "spread": 0.4, "gate_max": 0.2, "loose_sigma": 0.15, "loose_gate": 0.0,
                       "loose_mirror": 0.0}
    assert {"sigma": 0.03, "spread": 0.4, "gate_max": 0.2, "loose_sigma": 0.2, "loose_gate": 0.6,
            "loose_mirror": 1.0} not in out[:-1]
    assert len(out) <= tr.CANDIDATES + 1


def test_split_holds_out_every_fifth_digest():
    prs = [_pair("same-track", f"{i:08x}") for i in range(20)]
    fit, held = tr.split_pairs(prs)
    assert [p[3] for p in held] == [f"{i:08x}" for i in (0, 5, 10, 15)] and len(fit) == 16
