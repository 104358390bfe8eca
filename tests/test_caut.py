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


# -- who a message is about: one pattern ------------------------------------------------------------------------------

def test_the_companion_and_the_records_read_one_person_pattern():
    from wellmate_plugins import _own_records, _text, provider_offline

    assert provider_offline.OTHER_PERSON is _text.OTHER_PERSON
    assert not hasattr(_own_records, "OTHER")  # (the records' own copy is gone)


@pytest.mark.parametrize("text", ["我闺女这周血糖怎么样", "我男友最近血压高不高", "我室友这个月体重有变化吗",
                                  "我家小孩最近血糖怎么样"])
def test_someone_elses_numbers_named_as_the_companion_names_them_are_not_the_users_records(text):
    from wellmate_plugins._own_records import asked_of_records
    from wellmate_plugins._text import normalize

    assert asked_of_records(normalize(text)) is None  # (the records' own list lacked 闺女, 男友, 室友, 小孩)


@pytest.mark.parametrize("text", ["我这周血糖怎么样", "how's my blood pressure been lately?", "我最近血压高不高",
                                  "can you show them my blood pressure readings this week?"])
def test_the_users_own_questions_stay_theirs(text):
    from wellmate_plugins._own_records import asked_of_records
    from wellmate_plugins._text import normalize

    assert asked_of_records(normalize(text)) is not None


@pytest.mark.parametrize("text,theirs", [
    # the records' patient or client: news of someone else
    ("my patient is exhausted after her chemo, what helps", True), ("our client seems so anxious lately", True),
    # the companion's own persons as they were
    ("my little sister has been so tired lately", True), ("我妈最近总是很累", True),
    # neither "them" nor "their" (things as often), nor 病人 (糖尿病人: a diabetic, often the user), nor "my <any word>
    # friend" (the user's own loss) is a person of the pattern
    ("took them all", False), ("can i crush them, the pills are too big", False), ("糖尿病人能吃什么水果", False),
    ("照顾病人一整天，累到不想动", False), ("my best friend moved abroad and the house feels so empty", False)])
def test_who_the_companion_reads_a_message_about(text, theirs):
    from wellmate_plugins.provider_offline import about_someone_else
    from wellmate_plugins._text import normalize

    assert about_someone_else(normalize(text)) is theirs


# -- blood sugar: the records' grading ---------------------------------------------------------------------------------

@pytest.mark.parametrize("low,high,average,grade", [
    (5.0, 16.7, 9.0, "very_high"), (3.0, 16.7, 9.0, "very_high"), (3.8, 6.0, 5.0, "low"), (3.9, 6.0, 5.0, ""),
    (5.0, 11.1, 6.0, "high"), (5.0, 11.0, 6.9, ""), (6.5, 7.5, 7.0, "high"), (4.0, 16.6, 8.0, "high")])
def test_the_blood_sugar_lines(low, high, average, grade):
    from wellmate_plugins._record_grades import glucose_grade

    assert glucose_grade(low, high, average) == grade


# what each sugar caution of the companion says (provider_offline.RECORD_CAUTIONS)
SUGAR_SAID = {"sugar_very_high": "mmol/L or higher (highest", "sugar_low": "which is low blood sugar",
              "sugar_high": "above the normal range"}


def test_the_companions_sugar_caution_is_the_records_grade_over_http(client):
    from test_offline_own_records import ago, ask, store, user

    cases = [([8.9, 17.2], "sugar_very_high", "16.7 mmol/L"), ([5.1, 3.4], "sugar_low", "3.9 mmol/L"),
             ([7.2, 7.6], "sugar_high", "11.1"), ([5.2, 5.8], None, None)]
    for i, (values, caution, line) in enumerate(cases):
        token = user(client, f"sugar{i}")
        store(client, token, [{"type": "blood_glucose", "value": v, "recorded_at": ago(1 + d, 7)} for d, v in enumerate(values)])
        reply = ask(client, token, "how's my blood sugar been this week?")
        assert reply.startswith("From your records"), reply
        shown = [key for key, words in SUGAR_SAID.items() if words in reply]
        assert shown == ([caution] if caution else []), reply
        assert line is None or line in reply, reply


def test_a_report_of_blood_sugar_in_another_unit_gets_no_grade(make_wm, serve):
    # with the built-in types disabled, a user's own blood_glucose in mg/dL: 110 mg/dL is no "16.7 mmol/L or higher"
    from test_offline_own_records import ago, ask, store, user

    client = serve(make_wm({"plugins": {"disabled": ["record_types"]}, "records": {"types": {
        "blood_glucose": {"title": "血糖", "title_en": "blood sugar", "unit": "mg/dL", "min": 20, "max": 600}}}})).client
    token = user(client, "sugar-mg")
    store(client, token, [{"type": "blood_glucose", "value": v, "recorded_at": ago(1 + d, 7)} for d, v in enumerate([110, 130])])
    reply = ask(client, token, "how's my blood sugar been this week?")
    assert reply.startswith("From your records"), reply
    assert not any(words in reply for words in SUGAR_SAID.values()), reply


def test_with_the_safety_plugin_disabled_a_wait_after_a_caution_is_told_not_to(make_wm, serve):
    # the companion's DONT_WAIT reads the earlier messages' cautions with the same reader (`_urgent_before`)
    from wellmate_plugins.provider_offline import DONT_WAIT

    client = serve(make_wm({"plugins": {"disabled": ["safety"]}})).client
    token = client.register()["access_token"]
    replies = in_one_session(client, token, ["我胸口痛，闷得慌", "要不要等我儿子下班再说？"])
    assert DONT_WAIT["chest"]["zh"][:20] in replies[1]["content"], replies[1]["content"]
