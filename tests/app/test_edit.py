"""Sources a person shapes (issue 26): merge, split, move a region; undo, projects, the edit command."""
import json

import numpy as np
import pytest
import soundfile as sf

from cli.main import main
from app.editing import adopt_edit, plan_edit
from app.edits import EditError, Merge, MoveRegion, Split, apply_edits, edit_from_dict, region_mask
from app.export import export
from app.project_io import load_project, save_project
from core.stft import istft, stft

from test_session import _session_with, _three_sources


def total(sources) -> np.ndarray:
    return np.sum([s.audio.astype(np.float64) for s in sources], axis=0)


@pytest.fixture()
def separated(rng, tmp_path):
    """Formation's 3 sources and the residual of a 4-s bass, lead and hats, the first rendition current."""
    s = _session_with(_three_sources(rng), tmp_path / "mix.wav", tmp_path)
    s.separate("formation", {"n_sources": 3})
    s.new_rendition(0)
    s.undo.clear()
    return s


def edit(s, e):
    adopt_edit(s, plan_edit(s, e))


def test_each_edit_keeps_the_sum_and_undo_gives_back_the_very_sources(separated):
    s = separated
    before_sum = total(s.sources)
    assert np.abs(before_sum - s.mono).max() < 1e-6                      # the separation sums to the recording
    history = [(list(s.sources), list(s.placements), list(s.renders))]
    steps = [Merge((0, 1)), Split(0, at_hz=300.0), MoveRegion(2, None, 0.5, 2.0, 100.0, 2000.0), Split(1, parts=2)]
    counts = [4]
    for e in steps:
        edit(s, e)
        # float32 rounding of a few stems, nothing more: 1e-7 of a 0.5 full-scale signal
        assert np.abs(total(s.sources) - before_sum).max() < 2e-7
        assert len(s.sources) == len(s.renders) == len(s.placements)
        counts.append(len(s.sources))
        history.append((list(s.sources), list(s.placements), list(s.renders)))
    assert counts == [4, 3, 4, 5, 6]
    assert s.edits == steps and s.undo.depth == 4
    assert s.undo.peek().change.value == "sources"
    for k in range(len(steps), 0, -1):
        s.undo.undo()
        srcs, places, renders = history[k - 1]
        assert all(a is b for a, b in zip(s.sources, srcs)) and len(s.sources) == len(srcs)
        assert s.placements == places and all(a is b for a, b in zip(s.renders, renders))
        assert s.edits == steps[:k - 1]
    s.undo.redo()
    assert [x.name for x in s.sources] == [x.name for x in history[1][0]]


def test_merge_is_the_sum_at_the_first_place_and_the_rest_untouched(separated):
    s = separated
    a, b, c, r = s.sources
    old_renders = list(s.renders)
    edit(s, Merge((1, 0), name="low end"))
    assert [x.name for x in s.sources] == ["low end", c.name, "Residual"]
    assert np.array_equal(s.sources[0].audio, (a.audio.astype(np.float64) + b.audio).astype(np.float32))
    assert s.sources[1] is c and s.sources[2] is r
    assert s.sources[0].colour == a.colour
    assert s.renders[0] is not old_renders[0]                            # only the merged source was prepared
    assert np.array_equal(s.renders[1].s, old_renders[2].s)


def test_split_at_a_frequency_is_two_complementary_masks(separated):
    s = separated
    src = s.sources[0]
    edit(s, Split(0, at_hz=250.0))
    low, high = s.sources[0].audio, s.sources[1].audio
    spec = stft(src.audio)
    freqs = np.arange(spec.shape[0]) * 44100 / 4096
    expected = istft(spec * (freqs < 250.0)[:, None], length=len(src.audio)).astype(np.float32)
    assert np.array_equal(low, expected)
    assert np.abs(low.astype(np.float64) + high - src.audio).max() < 1e-7
    assert s.sources[1].colour != s.sources[0].colour


def test_moving_a_region_moves_only_its_tiles(separated):
    s = separated
    lead, bass = s.sources[2].audio.copy(), s.sources[0].audio.copy()       # "lead around G#5", "bass line"
    edit(s, MoveRegion(2, 0, 1.0, 2.0, 500.0, 4000.0))
    moved = s.sources[0].audio.astype(np.float64) - bass
    mask = region_mask(len(lead), 1.0, 2.0, 500.0, 4000.0)
    spec_moved = stft(moved.astype(np.float32))
    inside = float(np.sum(np.abs(spec_moved[mask]) ** 2))
    outside = float(np.sum(np.abs(spec_moved[~mask]) ** 2))
    assert inside > 0.5 * float(np.sum(np.abs(stft(lead)[mask]) ** 2))
    assert outside < 0.05 * inside                                        # the region, up to the window's spread
    assert np.abs(s.sources[2].audio.astype(np.float64) + moved - lead).max() < 1e-7


@pytest.mark.parametrize("bad, message", [
    (Merge((2,)), "two or more different sources"),
    (Merge((1, 1)), "two or more different sources"),
    (Merge((0, 9)), "there is no source 10: the sources are numbered 1 to 4"),
    (Split(3, parts=8), "'Residual' has"),
    (Split(0, parts=1), "into 2 to 8 parts"),
    (Split(0, at_hz=30000.0), "between 0 and 22050 Hz"),
    (MoveRegion(0, 1, 10.0, 12.0, 100.0, 200.0), "lies outside the recording (0-4.00 s, 0-22050 Hz)"),
    (MoveRegion(0, 1, 2.0, 1.0, 100.0, 200.0), "t0 < t1"),
    (MoveRegion(0, 0, 1.0, 2.0, 100.0, 200.0), "not to itself"),
    (MoveRegion(0, 7, 1.0, 2.0, 100.0, 200.0), "there is no target source 8"),
])
def test_a_bad_edit_is_one_line_and_changes_nothing(separated, bad, message):
    s = separated
    sources, placements, depth = list(s.sources), list(s.placements), s.undo.depth
    with pytest.raises(EditError) as err:
        plan_edit(s, bad)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert all(a is b for a, b in zip(s.sources, sources)) and s.placements == placements
    assert s.undo.depth == depth and s.edits == []


def test_pinned_sources_keep_their_place_and_the_others_follow_the_model(separated):
    s = separated
    s.set_placement(2, s.placements[2].moved(0.8, 0.1))                   # pin the hats
    edit(s, Merge((0, 1)))
    assert s.placements[1].pinned and (s.placements[1].pan, s.placements[1].width) == (0.8, 0.1)
    assert not s.placements[0].pinned


def test_edit_list_round_trips_and_old_projects_have_none(separated, tmp_path):
    s = separated
    plain = json.loads(save_project(s, tmp_path / "plain.json").read_text())
    assert "edits" not in plain                                          # as before issue 26
    steps = [Merge((0, 1), name="low"), Split(0, at_hz=300.0), MoveRegion(1, None, 0.5, 1.5, 0.0, 22050.0, "x")]
    for e in steps:
        edit(s, e)
    data = json.loads(save_project(s, tmp_path / "edited.json").read_text())
    assert [edit_from_dict(d) for d in data["edits"]] == steps
    again, origin, changed = apply_edits(load_project(tmp_path / "plain.json").sources, steps)
    assert [x.name for x in again] == [x.name for x in s.sources]
    assert all(np.array_equal(a.audio, b.audio) for a, b in zip(again, s.sources))


def test_a_reopened_edited_project_renders_bit_identically(separated, tmp_path):
    s = separated
    edit(s, Merge((0, 1)))
    edit(s, MoveRegion(1, 0, 1.0, 3.0, 2000.0, 12000.0))
    s.set_placement(0, s.placements[0].moved(-0.5, 0.3))
    first = export(s, tmp_path / "app.wav", fmt="wav24", project=False)
    again = load_project(save_project(s, tmp_path / "p.json"))
    assert again.project_notes == [] and again.edits == s.edits
    assert [x.name for x in again.sources] == [x.name for x in s.sources]
    assert all(np.array_equal(a.audio, b.audio) for a, b in zip(again.sources, s.sources))
    assert again.placements == s.placements
    second = export(again, tmp_path / "again.wav", fmt="wav24", project=False)
    assert (tmp_path / "app.wav").read_bytes() == (tmp_path / "again.wav").read_bytes()
    assert first.path.exists() and second.path.exists()


def test_a_project_whose_edits_do_not_fit_is_refused_in_one_line(separated, tmp_path):
    from app.project import ProjectError
    p = save_project(separated, tmp_path / "p.json")
    data = json.loads(p.read_text())
    data["edits"] = [{"op": "merge", "indices": [0, 9]}]
    p.write_text(json.dumps(data))
    with pytest.raises(ProjectError, match=r"p.json: edit 1 \(merge\): there is no source 10"):
        load_project(p)
    data["edits"] = [{"op": "merge", "indices": [0, 1], "colour": "red"}]
    p.write_text(json.dumps(data))
    with pytest.raises(ProjectError, match="unknown key 'edits\\[0\\].colour'"):
        load_project(p)


def test_the_edit_command_then_render_equals_the_app(rng, tmp_path, capsys):
    stems = _three_sources(rng)
    rec = tmp_path / "mix.wav"
    sf.write(str(rec), np.sum(stems, axis=0).astype(np.float32), 44100, subtype="FLOAT")
    proj = tmp_path / "mix.soundstage.json"
    assert main(["-q", "upmix", str(rec), "-o", str(tmp_path / "up.wav"), "--separator", "formation",
                 "--sources", "3", "--project", str(proj)]) == 0
    out = tmp_path / "edited.json"
    assert main(["-q", "edit", str(proj), "--merge", "1,2", "--split", "1@300", "--name", "3=lead", "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert "wrote" in said and "4 sources after 2 edits" in said and "3. lead" in said
    assert main(["-q", "render", str(out), "-o", str(tmp_path / "cli.wav"), "--format", "wav24"]) == 0
    # the same edits in the app: the project opened, two edits, the rename, exported
    s = load_project(proj)
    edit(s, Merge((0, 1)))
    edit(s, Split(0, at_hz=300.0))
    s.sources[2].name = "lead"
    export(s, tmp_path / "app.wav", fmt="wav24", project=False)
    assert (tmp_path / "cli.wav").read_bytes() == (tmp_path / "app.wav").read_bytes()
    data = json.loads(out.read_text())
    assert data["edits"] == [{"op": "merge", "indices": [0, 1]}, {"op": "split", "index": 0, "at_hz": 300.0}]
    assert data["sources"][2]["name"] == "lead"


@pytest.mark.parametrize("argv, message", [
    (["--merge", "2"], "--merge 2: a merge needs two or more different sources"),
    (["--merge", "1,9"], "--merge 1,9: there is no source 9"),
    (["--split", "4:9"], "--split 4:9: a source splits into 2 to 8 parts, not 9"),
    (["--split", "0:2"], "--split 0:2: sources are numbered from 1, not 0"),
    (["--move", "1:2:50-60:0-100"], "lies outside the recording"),
    (["--move", "1:2:x"], "write SRC:DST:T0-T1:F0-F1"),
    (["--name", "9=x"], "there is no source 9"),
    ([], "nothing to do"),
])
def test_bad_edit_commands_are_one_line_and_write_nothing(separated, tmp_path, capsys, argv, message):
    proj = save_project(separated, tmp_path / "p.json")
    out = tmp_path / "out.json"
    assert main(["-q", "edit", str(proj), *argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not out.exists()


def test_the_dawproject_export_has_the_edited_tracks(separated, tmp_path):
    import zipfile
    from lxml import etree
    from app.dawproject import write_dawproject
    s = separated
    edit(s, Merge((0, 1), name="low end"))
    out = write_dawproject(s, tmp_path / "edited.dawproject")
    with zipfile.ZipFile(out) as z:
        project = etree.fromstring(z.read("project.xml"))
    names = [t.get("name") for t in project.iter("Track") if t.get("name") != "Master"]
    assert [n for n in names if n in {x.name for x in s.sources}] == [x.name for x in s.sources]
    assert "low end" in names and len(s.sources) == 3


def test_suggested_merges_come_from_the_grouping_model(rng):
    import separation
    from app.edits import suggested_merges
    mix = np.sum(_three_sources(rng), axis=0).astype(np.float32)
    sources = separation.get("formation", n_sources=6, cache=False).separate(mix)
    pairs = suggested_merges(sources)
    assert pairs and all(0.3 <= p <= 1.0 for _, _, p in pairs)
    assert all(a[2] >= b[2] for a, b in zip(pairs, pairs[1:]))
    i, j, p = pairs[0]
    assert p == pytest.approx(sources[i].meta["same"][sources[j].meta["formation_id"]])
    assert p == pytest.approx(sources[j].meta["same"][sources[i].meta["formation_id"]])   # symmetric
    merged, _, _ = apply_edits(sources, [Merge((i, j))])
    assert all(k != min(i, j) and m != min(i, j) for k, m, _ in suggested_merges(merged))  # an edit's source has none
