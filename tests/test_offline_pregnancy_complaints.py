"""The offline companion on a pregnant woman's complaint (session 17, OFFNO), through the served app with
the shipped config: the complaint's tips with the pregnancy caution, as a child's or an older person's
complaint is answered (complaint_topic); the pregnancy's own tips for what is the pregnancy's as such
(whether something is normal in pregnancy, whether one is pregnant); a new complaint in a pregnancy's
session is that complaint's; "at 8 weeks pregnant" names a pregnancy. Also keywords added this session
and bench/offline's test of whether a group's caution is due."""

import importlib.machinery
import importlib.util
from pathlib import Path

import pytest

from test_offline_companion import caution, has_tip, talk  # noqa: F401 (talk is a fixture)

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("lang,text,topic", [
    ("en", "I'm 24 weeks pregnant and my gums bleed whenever I brush", "teeth"),
    ("en", "18 weeks pregnant and I get heartburn after every meal", "stomach"),
    ("zh", "怀孕四个月了，这几天咳嗽咳得厉害", "cough"),
    ("zh", "孕中期了，晚上总是翻来覆去睡不着", "insomnia"),
    # session 18 (a team decision): the 40th topic, cramps, stays, and a pregnant writer's cramp is its
    ("en", "30 weeks pregnant and my calves cramp up every night", "cramps"),
    ("zh", "怀孕七个月，半夜小腿老抽筋", "cramps"),
])
def test_a_pregnant_womans_complaint_gets_its_tips_with_the_pregnancy_caution(talk, lang, text, topic):
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, topic, lang), reply
    assert caution("pregnancy", lang) in reply, reply
    assert not has_tip(reply, "pregnancy", lang), reply  # no folic acid tip for bleeding gums


@pytest.mark.parametrize("lang,text", [
    ("en", "is it normal to have mild cramps at 7 weeks pregnant?"),
    ("zh", "月经推迟了一个多星期，会不会是怀孕了"),
])
def test_a_question_on_the_pregnancy_as_such_gets_the_pregnancy_tips(talk, lang, text):
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, "pregnancy", lang) and caution("pregnancy", lang) in reply, reply
    assert not has_tip(reply, "periods", lang), reply


@pytest.mark.parametrize("lang,texts,topic", [
    ("zh", ["怀孕三个月了", "最近牙疼得厉害，怎么办"], "teeth"),
    ("en", ["I'm 20 weeks pregnant", "I've had a cough for a week now"], "cough"),
])
def test_a_new_complaint_in_a_pregnancys_session_is_the_complaints(talk, lang, texts, topic):
    replies = talk("physical", *texts)
    reply = replies[1]["content"]
    # the caution said once a session (session 19, A21): on the first reply, not word for word again
    assert caution("pregnancy", lang) in replies[0]["content"], replies[0]["content"]
    assert has_tip(reply, topic, lang) and caution("pregnancy", lang) not in reply, reply


def test_a_follow_up_with_no_complaint_stays_with_the_pregnancys_own_tip(talk):
    replies = talk("physical", "8 weeks pregnant and I feel queasy every morning", "what can I eat then?")
    assert "For morning sickness" in replies[0]["content"], replies[0]["content"]
    assert caution("pregnancy", "en") in replies[0]["content"], replies[0]["content"]  # once a session (session 19)
    assert "On pregnancy" in replies[1]["content"], replies[1]["content"]


def test_weeks_of_pregnancy_after_at_name_a_pregnancy(talk):
    reply = talk("physical", "I get a dull ache in my lower belly at 8 weeks pregnant, should I worry?")[0]["content"]
    assert caution("pregnancy", "en") in reply, reply


@pytest.mark.parametrize("lang,text,topic", [
    ("en", "type 2 for ten years and my fasting numbers keep creeping up", "blood_sugar"),
    ("en", "does matcha have as much caffeine as coffee?", "caffeine"),
    ("zh", "我有糖尿病，脚后跟磨破了一块，要注意什么", "wounds"),
])
def test_keywords_added_this_session(talk, lang, text, topic):
    reply = talk("physical", text)[0]["content"]
    # (a diabetic's foot wound: the diabetes condition's note instead of cut care, session 19)
    assert has_tip(reply, topic, lang) or ("糖尿病足门诊" in reply and topic == "wounds"), reply


def _bench():
    loader = importlib.machinery.SourceFileLoader("bench_offline", str(ROOT / "bench" / "offline"))
    spec = importlib.util.spec_from_loader("bench_offline", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.mark.parametrize("row,groups,undue", [
    ({"topic": "headache", "text": "pregnant and a headache all day"}, {"pregnancy"}, set()),
    ({"topic": "cough", "text": "my 4yo coughs at night"}, {"child_fever"}, set()),
    ({"topic": "joints", "text": "外婆78了，膝盖疼"}, {"elderly"}, set()),
    ({"topic": "stress", "text": "I'm expecting my results next week"}, {"pregnancy"}, {"pregnancy"}),
    ({"topic": "cough", "text": "my son is 30 and has a cough"}, {"child_fever"}, {"child_fever"}),
    # a follow-up: its session named the group
    ({"topic": "stomach", "text": "is that ok?", "follows": "14 weeks pregnant with heartburn"}, {"pregnancy"}, set()),
])
def test_the_bench_counts_a_caution_undue_only_where_nobody_of_the_group_is_named(row, groups, undue):
    assert _bench().undue_cautions(row, groups) == undue


@pytest.mark.parametrize("lang,text,topic", [
    ("en", "my husband drinks four beers every night after his shift, how do I get him to cut down?", "alcohol"),
])
def test_cutting_down_with_no_object_is_the_habit_named(talk, lang, text, topic):
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, topic, lang), reply


@pytest.mark.parametrize("text,grief", [
    ("my flatmate's dad died last week and he hardly talks, what do I say to him?", True),
    ("my old football coach died suddenly, I keep thinking about him", True),
    ("my friend's laptop died right before her deadline, she's so stressed", False),
])
def test_someone_elses_relative_or_a_mate_who_died_is_a_loss(talk, text, grief):
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, "grief", "en") == grief, reply


def test_the_patterns_added_stay_linear_on_floods():
    """The pregnancy's own_questions, the cutting-down frame and the grief patterns on 5,000 and 50,000
    characters of their own markers repeated: ten times the text costs about ten times the time."""
    import time

    import yaml
    from wellmate_plugins.provider_offline import QUIT_BARE, compile_tips

    guide = compile_tips(yaml.safe_load((ROOT / "prompts" / "offline_tips.yaml").read_text(encoding="utf-8")))
    patterns = [*guide["pregnancy"].own_questions, *guide["grief"].patterns, QUIT_BARE]

    def cost(unit, size):
        # each pattern's best of several runs, summed: a loaded machine preempts a run far longer than one search
        text = (unit * size)[:size] + "x"
        total = 0.0
        for pattern in patterns:
            best = float("inf")
            for _ in range(9):
                started = time.perf_counter()
                pattern.search(text)
                best = min(best, time.perf_counter() - started)
            total += best
        return total

    for unit in ("怀孕了，正常吗", "is it normal? ", "my friend's ", "x's dad ", "少抽点，", "cut down! ", "ttc "):
        small, large = cost(unit, 5_000), cost(unit, 50_000)
        assert large < 30 * max(small, 1e-4), (unit, small, large)


@pytest.mark.parametrize("text", ["since the baby came I cry every day and can't enjoy anything, what can I do",
                                  "since my baby was born I barely sleep and feel numb"])
def test_a_birth_told_as_the_babys_arrival_is_a_new_mothers_not_a_childs_fever(talk, text):
    # "since the baby came" names no child with a complaint: the baby word alone gave the child's fever caution to
    # a new mother's low mood (session 17); the postpartum note (postnatal depression, when to get help) is hers
    reply = talk("physical", text)[0]["content"]
    assert "Since you've recently had a baby" in reply and caution("child_fever", "en") not in reply, reply


def test_bench_offline_help_says_what_the_group_rule_counts():
    """Session 18: "all, group rule" is explained where it is printed (bench/offline --help), not only in
    docs/benchmarks.md: a group's complaint answered as the complaint with the group's caution."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(ROOT / "bench" / "offline"), "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "all, group rule" in out and "complaint_topic: true" in out and "cramps topic" in out, out
    assert _bench().FIGURES.split("\n", 1)[1] in out
