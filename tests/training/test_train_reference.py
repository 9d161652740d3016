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
    monkeypatch.setattr(tr, "COVER_LADDER", ())
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
            ladder[(id(p), "close", s, sp, 0, 4.0)] = v
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


def test_hedged_emin_takes_the_following_seeds_from_the_close_tier_and_the_others_from_none():
    close = [0.1, 0.2, 0.01, 0.02, 0.3, 0.4, 0.5, 0.6]          # seeds 2 and 3 would be best followed
    none = [0.9, 0.8, 0.7, 0.05, 0.9, 0.9, 0.9, 0.9]
    assert tr.hedged_emin(close, none, 0.5) == 0.05             # seeds 0, 1, 4, 5 follow; 3 is none's
    assert tr.hedged_emin(close, none, 0.75) == 0.02            # seed 3 follows too
    assert tr.hedged_emin(close, none, 0.25) == 0.05
    assert tr.hedged_emin(close, none, 1.0) == 0.01


def test_choose_takes_a_hedged_tier_that_helps_same_track_and_leaves_album_at_none(monkeypatch):
    """A same-track pair past the close gate (0.35) that every followed rendition helps, and an album
    pair at the same gate that following hurts: the loose tier costs the album pair (1.0625), the
    hedged tier does not (its renditions 2, 3, 6, 7 are none's), so it comes first; the close tier
    alone, last."""
    for name, v in (("LADDER", (0.03,)), ("SPREADS", (0.0,)), ("SPREAD_LADDER", ()), ("COVER_LADDER", ()), ("LOOSE_LADDER", (0.2,)),
                    ("GATE_MAX", (0.2,)), ("LOOSE_GATE", (0.6,)), ("HEDGE_GATE", (0.4,)), ("HEDGE_FOLLOW", (0.5,))):
        monkeypatch.setattr(tr, name, v)
    fit = [_pair("same-track", "a"), _pair("same-track", "b"), _pair("same-album", "c"), _pair("same-album", "d")]
    gates = dict(zip(map(id, fit), (0.1, 0.35, 0.35, 0.9)))
    none = dict(zip(map(id, fit), (0.08,) * 4))
    seeds, ladder = {}, {}
    for p, close, loose in zip(fit, (0.02, 0.01, 0.2, 0.2), (0.08, 0.05, 0.09, 0.08)):
        seeds[(id(p), "none")] = [0.08] * 8
        seeds[(id(p), "close", 0.03, 0.0, 0, 4.0)] = [close] * 8
        ladder[(id(p), "close", 0.03, 0.0, 0, 4.0)] = close
        ladder[(id(p), "loose", 0.2, 1.0)] = loose
    out = tr._choose(fit, gates, ladder, none, log=lambda s: None, seeds=seeds)
    base = {"sigma": 0.03, "spread": 0.0, "gate_max": 0.2, "loose_sigma": 0.15, "loose_gate": 0.0,
            "loose_mirror": 0.0}
    assert out[0] == {**base, "hedge_gate": 0.4, "hedge_follow": 0.5}
    assert out[-1] == base
    assert tr._choose(fit, gates, ladder, none, log=lambda s: None)[0] == base       # no per-seed errors: no hedging


def test_choose_refuses_a_tier_that_costs_album_pairs_at_four_renditions(monkeypatch):
    """An album pair in the hedged zone whose best rendition alone is seed 0 (and, as good, seed 6):
    hedging leaves it seed 6 at K = 8 (no worse than none) but takes seed 0 from it at K = 4 (its
    followed renditions are worse), so with the check at K_ALSO = 4 the close tier alone comes first;
    without it (K_ALSO 0) the hedged tier, which helps the same-track pair past the gate."""
    for name, v in (("LADDER", (0.03,)), ("SPREADS", (0.0,)), ("SPREAD_LADDER", ()), ("COVER_LADDER", ()), ("LOOSE_LADDER", ()),
                    ("GATE_MAX", (0.2,)), ("LOOSE_GATE", ()), ("HEDGE_GATE", (0.4,)), ("HEDGE_FOLLOW", (0.5,))):
        monkeypatch.setattr(tr, name, v)
    fit = [_pair("same-track", "a"), _pair("same-track", "b"), _pair("same-album", "c"), _pair("same-album", "d")]
    gates = dict(zip(map(id, fit), (0.1, 0.35, 0.35, 0.9)))
    album_none = [0.05, 0.08, 0.08, 0.08, 0.08, 0.08, 0.05, 0.08]
    seeds, ladder, none = {}, {}, {}
    for p, close, own in zip(fit, (0.02, 0.01, 0.2, 0.2), ([0.08] * 8, [0.08] * 8, album_none, [0.08] * 8)):
        seeds[(id(p), "none")] = own
        none[id(p)] = min(own)
        seeds[(id(p), "close", 0.03, 0.0, 0, 4.0)] = [close] * 8
        ladder[(id(p), "close", 0.03, 0.0, 0, 4.0)] = close
    base = {"sigma": 0.03, "spread": 0.0, "gate_max": 0.2, "loose_sigma": 0.15, "loose_gate": 0.0,
            "loose_mirror": 0.0}
    hedged = {**base, "hedge_gate": 0.4, "hedge_follow": 0.5}
    assert tr._choose(fit, gates, ladder, none, log=lambda s: None, seeds=seeds)[0] == base
    monkeypatch.setattr(tr, "K_ALSO", 0)
    assert tr._choose(fit, gates, ladder, none, log=lambda s: None, seeds=seeds)[0] == hedged


def test_choose_takes_a_farther_band_followed_by_fewer_renditions(monkeypatch):
    """Same-track pairs at gates 0.3 (its one good rendition is seed 1) and 0.5 (any followed rendition
    helps); an album pair at 0.5 whose own best renditions are seeds 1 and 5, which half the renditions
    following would take from it. Half up to 0.4 and a quarter (seeds 0, 4) up to 0.6 helps both
    same-track pairs and leaves the album pair its seeds: it comes first; a quarter alone misses seed
    1 of the first pair, half up to 0.6 costs the album pair."""
    for name, v in (("LADDER", (0.03,)), ("SPREADS", (0.0,)), ("SPREAD_LADDER", ()), ("COVER_LADDER", ()), ("LOOSE_LADDER", ()),
                    ("GATE_MAX", (0.2,)), ("LOOSE_GATE", ()), ("HEDGE_GATE", (0.4, 0.6)),
                    ("HEDGE_FOLLOW", (0.25, 0.5)), ("HEDGE_GATE2", (0.6,)), ("HEDGE_FOLLOW2", (0.25,))):
        monkeypatch.setattr(tr, name, v)
    fit = [_pair("same-track", "a"), _pair("same-track", "b"), _pair("same-track", "c"), _pair("same-album", "d")]
    gates = dict(zip(map(id, fit), (0.1, 0.3, 0.5, 0.5)))
    b_close = [0.08, 0.01] + [0.08] * 6
    album_none = [0.08, 0.05, 0.08, 0.08, 0.08, 0.05, 0.08, 0.08]
    seeds, ladder, none = {}, {}, {}
    for p, close, own in zip(fit, ([0.02] * 8, b_close, [0.01] * 8, [0.2] * 8),
                             ([0.08] * 8, [0.08] * 8, [0.08] * 8, album_none)):
        seeds[(id(p), "none")] = own
        none[id(p)] = min(own)
        seeds[(id(p), "close", 0.03, 0.0, 0, 4.0)] = close
        ladder[(id(p), "close", 0.03, 0.0, 0, 4.0)] = min(close)
    out = tr._choose(fit, gates, ladder, none, log=lambda s: None, seeds=seeds)
    assert out[0] == {"sigma": 0.03, "spread": 0.0, "gate_max": 0.2, "loose_sigma": 0.15, "loose_gate": 0.0,
                      "loose_mirror": 0.0, "hedge_gate": 0.4, "hedge_follow": 0.5, "hedge_gate2": 0.6,
                      "hedge_follow2": 0.25}


def test_choose_takes_a_covering_rung_and_writes_its_pool(monkeypatch):
    """Two close rungs, the renditions drawn on their own and chosen together (cover 128, T 2): the
    covering one's renditions are nearer on the same-track pairs and no farther on the album pair, so
    it is chosen and the row carries its pool's size and temperature; the close tier alone (last) is
    the covering rung too."""
    for name, v in (("LADDER", (0.03,)), ("SPREADS", (0.0,)), ("SPREAD_LADDER", ()), ("LOOSE_LADDER", ()),
                    ("COVER_LADDER", ((0.03, 0.0, 2.0),)), ("COVER", 128), ("GATE_MAX", (0.2,)), ("HEDGE_GATE", ()),
                    ("HEDGE_GATE2", ())):
        monkeypatch.setattr(tr, name, v)
    fit = [_pair("same-track", "a"), _pair("same-track", "b"), _pair("same-album", "c")]
    gates = dict(zip(map(id, fit), (0.1, 0.15, 0.1)))
    none = dict(zip(map(id, fit), (0.08,) * 3))
    seeds, ladder = {}, {}
    for p, alone, covering in zip(fit, ([0.05] * 8, [0.04] * 8, [0.08] * 8),
                                  ([0.05, 0.03] + [0.06] * 6, [0.04, 0.06, 0.02] + [0.05] * 5, [0.09, 0.08] + [0.1] * 6)):
        seeds[(id(p), "none")] = [0.08] * 8
        for rg, e in (((0.03, 0.0, 0, 4.0), alone), ((0.03, 0.0, 128, 2.0), covering)):
            seeds[(id(p), "close", *rg)] = e
            ladder[(id(p), "close", *rg)] = min(e)
    out = tr._choose(fit, gates, ladder, none, log=lambda s: None, seeds=seeds)
    want = {"sigma": 0.03, "spread": 0.0, "gate_max": 0.2, "loose_sigma": 0.15, "loose_gate": 0.0,
            "loose_mirror": 0.0, "cover": 128, "cover_temperature": 2.0}
    assert out[0] == want and out[-1] == want
    # the same-track pairs' E_min 0.03 and 0.02 against 0.05 and 0.04 drawn on their own
