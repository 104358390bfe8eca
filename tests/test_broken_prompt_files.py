"""A prompt file a retrain command learns from, broken by an edit (a bracket left open, the file emptied):
`train-emotion`, `train-crisis` and `train-topics` stop with an error naming the file and write no
weights, and `wellmate.py check` reports it as an error rather than "ok". Before, train-emotion logged one
line among its output, trained a model on no lexicon hints and succeeded (session 13)."""

import shutil

import pytest

import wellmate
from conftest import ROOT

BROKEN = "labels:\n  happy: [oops\n"  # a flow list never closed: not YAML
COMMANDS = [  # (prompt file, the command that learns from it)
    ("emotion_lexicon.yaml", "train-emotion"),
    ("safety.yaml", "train-crisis"),
    ("offline_tips.yaml", "train-topics"),
]


def broken_copy(make_wm, tmp_path, name: str, text: str = BROKEN):
    """A Wellmate of the shipped config whose prompts/<name>, next to config.yaml, is ``text``."""
    shutil.copytree(ROOT / "prompts", tmp_path / "prompts")
    wm = make_wm()  # writes config.yaml; the good file is read first, as after an earlier start
    (tmp_path / "prompts" / name).write_text(text, encoding="utf-8")
    return wm


@pytest.mark.parametrize("name,command", COMMANDS)
def test_a_retrain_command_stops_on_a_broken_prompt_file_and_writes_nothing(make_wm, tmp_path, capsys, name, command):
    wm = broken_copy(make_wm, tmp_path, name)
    out = tmp_path / "weights.json"
    status = wellmate.main(["--config", str(wm.config_path), command, "--out", str(out)])
    printed = capsys.readouterr()
    assert status == 1 and not out.exists(), printed.out[-500:]
    assert f"prompts/{name}: cannot use this file" in printed.err and "not trained" in printed.err, printed.err


def test_train_emotion_stops_on_an_emptied_lexicon(make_wm, tmp_path, capsys):
    wm = broken_copy(make_wm, tmp_path, "emotion_lexicon.yaml", "# all words removed\n")
    out = tmp_path / "weights.json"
    assert wellmate.main(["--config", str(wm.config_path), "train-emotion", "--out", str(out)]) == 1
    assert "the file is empty" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("name", ["emotion_lexicon.yaml", "offline_tips.yaml", "safety.yaml"])
def test_check_reports_a_broken_prompt_file_as_an_error(make_wm, tmp_path, capsys, name):
    wm = broken_copy(make_wm, tmp_path, name)
    status = wellmate.main(["--config", str(wm.config_path), "check"])
    printed = capsys.readouterr().out
    assert status == 1 and f"error: {tmp_path / 'prompts' / name}: cannot use this file" in printed, printed[-800:]
