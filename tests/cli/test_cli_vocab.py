"""One option vocabulary across the commands, plain progress in logs, and a word about conversions
(issue 14, item 8)."""
from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import cli.main as cli
from cli.progress_bar import TerminalProgress
from core.progress import Progress

ROOT = Path(__file__).resolve().parents[2]
SR = 44100


def _sub(name: str) -> argparse.ArgumentParser:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


def _help(name: str) -> str:
    return _sub(name).format_help()


def _parse(*argv) -> argparse.Namespace:
    return cli.build_parser().parse_args(list(argv))


# --- one vocabulary -------------------------------------------------------------------------------

@pytest.mark.parametrize("command, argv", [
    ("upmix", ["in.wav", "-o", "out.wav"]),
    ("batch", ["in", "out"]),
    ("train", []),
])
def test_method_names_the_ps_model_everywhere(command, argv):
    text = _help(command)
    assert "--method" in text and "--model " not in text and "--model," not in text
    new = _parse(command, *argv, "--method", "ps-reg")
    old = _parse(command, *argv, "--model", "ps-reg")       # the old spelling still works, unlisted
    assert new.method == old.method == "ps-reg"


def test_eval_takes_methods_and_the_old_models():
    assert "--methods" in _help("eval") and "--models " not in _help("eval")
    assert _parse("eval", "--methods", "mono,decorr").methods == "mono,decorr"
    assert _parse("eval", "--models", "mono,decorr").methods == "mono,decorr"


def test_separate_speaks_like_upmix():
    text = _help("separate")
    for opt in ("--separator", "--sources", "--demucs-model", "--demucs-models"):
        assert opt in text, opt
        assert opt in _help("upmix"), opt
    assert "--backend" not in text and "--model " not in text
    a = _parse("separate", "in.wav", "-o", "stems")
    assert a.separator == "formation"                        # as upmix --separator and batch: no model files
    assert _parse("batch", "i", "o").separator == "formation"
    b = _parse("separate", "in.wav", "-o", "stems", "--backend", "demucs", "--model", "htdemucs_6s")
    c = _parse("separate", "in.wav", "-o", "stems", "--separator", "demucs", "--demucs-model", "htdemucs_6s")
    assert (b.separator, b.demucs_model) == (c.separator, c.demucs_model) == ("demucs", "htdemucs_6s")


@pytest.mark.parametrize("command, argv", [("render", ["p.json", "-o", "o.wav"]),
                                           ("roundtrip", ["s.wav", "-o", "o.wav"]),
                                           ("upmix", ["in.wav", "-o", "o.wav"]),
                                           ("separate", ["in.wav", "-o", "d"])])
def test_format_lists_its_choices(command, argv, capsys):
    from app.chain import FORMATS as CHAIN_FORMATS
    from cli.commands import FORMATS
    from core.audio import SUBTYPES
    assert FORMATS == CHAIN_FORMATS and set(FORMATS) <= set(SUBTYPES)
    assert "{" + ",".join(sorted(FORMATS) if command == "separate" else FORMATS) + "}" in _help(command)
    with pytest.raises(SystemExit) as exc:
        _parse(command, *argv, "--format", "mp3")
    assert exc.value.code == 2
    assert "invalid choice: 'mp3'" in capsys.readouterr().err


def test_separate_by_default_needs_no_model_files(tmp_path, rng):
    t = np.arange(2 * SR) / SR
    x = (0.3 * np.sin(2 * np.pi * 110 * t) + 0.2 * np.sin(2 * np.pi * 1320 * t)
         + 0.02 * rng.standard_normal(len(t))).astype(np.float32)
    sf.write(tmp_path / "in.wav", x, SR, subtype="FLOAT")
    assert cli.main(["-q", "separate", str(tmp_path / "in.wav"), "-o", str(tmp_path / "stems"),
                     "--format", "wav32f"]) == 0
    stems = [sf.read(p, dtype="float32")[0] for p in sorted((tmp_path / "stems").iterdir())]
    assert len(stems) >= 2
    assert np.max(np.abs(np.sum(stems, axis=0) - x)) < 1e-4          # formation: the stems sum to the input


def test_separate_names_the_option_a_separator_lacks(tmp_path, capsys):
    sf.write(tmp_path / "in.wav", np.zeros(SR, np.float32), SR)
    assert cli.main(["-q", "separate", str(tmp_path / "in.wav"), "-o", str(tmp_path / "s"),
                     "--shifts", "2"]) == 2
    assert "separator 'formation' has no setting --shifts" in capsys.readouterr().err


# --- progress on a terminal and in a log ------------------------------------------------------------

def _feed(bar, stages=("separate", "render"), steps=50):
    for stage in stages:
        for k in range(steps + 1):
            bar(Progress(stage, k, steps))
    bar.close()


def test_progress_in_a_log_is_plain_lines():
    log = io.StringIO()                            # not a terminal
    _feed(TerminalProgress(stream=log))
    out = log.getvalue()
    assert "\r" not in out and "\x1b" not in out
    lines = out.splitlines()
    # per stage: the start, each tenth, the end
    assert [ln.split()[0] for ln in lines] == ["separate"] * 11 + ["render"] * 11
    assert [float(ln.split()[1].rstrip("%")) for ln in lines[:11]] == [10.0 * k for k in range(11)]


def test_progress_on_a_terminal_rewrites_one_line():
    tty = io.StringIO()
    _feed(TerminalProgress(stream=tty, tty=True))
    out = tty.getvalue()
    assert out.count("\n") == 1 and out.endswith("\n") and out.startswith("\rseparate")
    assert "\x1b[K" in out and "render         100.0%" in out


# --- a word when the input is converted -------------------------------------------------------------

def test_upmix_says_when_the_input_was_downmixed_and_resampled(tmp_path):
    t = np.arange(8000) / 8000
    x = 0.3 * np.sin(2 * np.pi * 220 * t)
    sf.write(tmp_path / "six.wav", np.stack([x * (k + 1) / 6 for k in range(6)], axis=1).astype(np.float32), 8000)
    sf.write(tmp_path / "plain.wav", np.interp(np.arange(SR) / SR, t, x).astype(np.float32), SR)
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def upmix(name, out, *extra):
        return subprocess.run([sys.executable, "-m", "cli", *extra, "upmix", str(tmp_path / name), "-o",
                               str(tmp_path / out), "--method", "decorr"],
                              capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)

    r = upmix("six.wav", "six-out.wav")
    assert r.returncode == 0, r.stderr
    notes = [ln for ln in r.stderr.splitlines() if ln.startswith("soundstage: note:")]
    assert notes == ["soundstage: note: six.wav: 6 channels downmixed to mono, resampled from 8000 Hz to 44100 Hz"]
    assert "\r" not in r.stderr and "\x1b" not in r.stderr          # stderr is a pipe here: plain lines
    assert sf.info(tmp_path / "six-out.wav").samplerate == SR
    r = upmix("plain.wav", "plain-out.wav")                          # mono at 44.1 kHz: nothing to say
    assert r.returncode == 0 and "note:" not in r.stderr
    r = upmix("six.wav", "six-quiet.wav", "-q")
    assert r.returncode == 0 and r.stderr == ""


@pytest.mark.parametrize("argv", [["-q", "upmix", "in.wav", "-o", "o.wav"], ["upmix", "in.wav", "-o", "o.wav", "-q"],
                                  ["upmix", "in.wav", "--quiet", "-o", "o.wav"], ["--quiet", "separate", "i", "-o", "d"],
                                  ["separate", "i", "-o", "d", "-q"], ["batch", "i", "o", "-q"]])
def test_quiet_before_or_after_the_command(argv):
    assert _parse(*argv).quiet is True
    loud = [a for a in argv if a not in ("-q", "--quiet")]
    assert _parse(*loud).quiet is False
