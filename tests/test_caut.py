"""One table, one reader (session 21, CAUT): the emergency cautions of prompts/safety.yaml are read by one module
(plugins/_cautions.py) whether the safety plugin serves them or the offline companion reads them with that plugin
disabled, `all:` groups included (the companion's own reader knew none); who a message is about is one pattern for the
companion and the records' question reader (`_text.OTHER_PERSON`); the blood-sugar lines are the records' grading
(plugins/_record_grades.py), which the companion's caution on one's own readings follows."""

import shutil
from pathlib import Path

import pytest

from conftest import in_one_session

ROOT = Path(__file__).resolve().parent.parent

# An `all:` group added to a kind: each group's word must be there (a user's edit the companion's own reader ignored)
ALL_GROUP = "    all: [[嘴唇发紫, lips are blue, lips have gone blue], [喘, wheezing, gasping]]\n"
ALL_SAID = {"他嘴唇发紫，一直在喘": ["breath"], "my son is wheezing and his lips have gone blue": ["breath"],
            "my lips are blue from the cold": [], "gasping at that plot twist": [],
            # (the group's words denied in their clause, as a red flag's are)
            "没有嘴唇发紫，也不喘": [], "突然呼吸困难，嘴唇发紫": ["breath"]}


def prompts_with_all_group(tmp_path: Path) -> None:
    """The shipped prompts in the test's folder (where make_wm's config reads them), `breath` given an `all:` group."""
    shutil.copytree(ROOT / "prompts", tmp_path / "prompts")
    path = tmp_path / "prompts" / "safety.yaml"
    text = path.read_text(encoding="utf-8")
    assert "\n  breath:\n" in text.split("\nred_flag_cautions:\n", 1)[1]
    head, cautions = text.split("\nred_flag_cautions:\n", 1)
    path.write_text(head + "\nred_flag_cautions:\n" + cautions.replace("\n  breath:\n", "\n  breath:\n" + ALL_GROUP, 1),
                    encoding="utf-8")


def test_the_cautions_read_with_the_safety_plugin_and_without_it_agree_all_groups_included(make_wm, tmp_path):
    from wellmate_plugins.provider_offline import CAUTION_KINDS, OfflineProvider

    prompts_with_all_group(tmp_path)
    served = make_wm().service("safety")
    alone = OfflineProvider("offline", {}, make_wm({"plugins": {"disabled": ["safety"]}}))
    assert served is not None
    for text, kinds in ALL_SAID.items():
        assert [k for k in served.cautions(text) if k in CAUTION_KINDS] == kinds, text
        assert alone._cautions(None, text, {}) == kinds, text  # (None: no safety service, as with the plugin disabled)
    # ...and the shipped table's own cases (tests/test_rf3.py) agree too
    from test_rf3 import CAUTIONED
    for text, kinds in CAUTIONED.items():
        assert served.cautions(text) == alone._cautions(None, text, {}) == kinds, text


def test_an_all_group_brings_its_note_over_http_with_the_safety_plugin_disabled(make_wm, serve, tmp_path):
    from wellmate_plugins.provider_offline import SAFETY_NOTES

    prompts_with_all_group(tmp_path)
    client = serve(make_wm({"plugins": {"disabled": ["safety"]}})).client
    token = client.register()["access_token"]
    content = in_one_session(client, token, ["my son is wheezing and his lips have gone blue"])[0]["content"]
    assert SAFETY_NOTES["breath"]["en"][:30] in content, content


def test_a_broken_edit_keeps_the_last_good_cautions(make_wm, tmp_path):
    import os

    from wellmate_plugins._cautions import CautionFile

    wm = make_wm({"plugins": {"disabled": ["safety"]}})
    table = CautionFile(wm)
    assert table.get().kinds("我胸口痛") == ["chest"]
    path = tmp_path / "prompts" / "safety.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("\n  chest:\n", "\n  chest:\n    patterns: ['(unclosed']\n", 1), encoding="utf-8")
    os.utime(path, ns=(1, 1))  # (a new stamp even on a coarse clock)
    assert table.get().kinds("我胸口痛") == ["chest"]
    assert "red_flag_cautions.chest.patterns" in table.problem


@pytest.mark.parametrize("text", ["我胸口痛", "I have chest pain"])
def test_the_companion_asks_the_safety_service_when_the_plugin_is_there(make_wm, text):
    wm = make_wm()
    offline = wm.service("chat").provider("offline")
    assert offline._cautions(wm.service("safety"), text, {}) == ["chest"]
    assert getattr(offline, "_cautions_read", None) is None  # the file was not read a second time
