"""Psychiatric medicines and conditions in the offline companion (session 20, audit A22: people with a psychiatric
history, parents of teenagers, non-native English writers), through the served app with the shipped config. A
medicine the session names (lithium, clozapine, an antidepressant, a sedating one) brings what never to do with it and
when to call the prescriber today; an eating disorder (named, or told by its signs) or bipolar changes which tips are
safe; a follow-up keeps the medicine in view. The messages are fresh ones, not the audit's (those are the held list's
look: tests/data/psy20_held.tsv), with look-alikes that must not change."""

import itertools

import pytest
import yaml

from conftest import ROOT, assert_linear
from test_offline_companion import talk  # noqa: F401 (talk is a fixture)

WEIGHT_LOSS = ("kcal", "300–500", "千卡", "每周 0.5", "0.5–1 kg")


def body(reply: dict) -> str:
    """The reply without its set-up and disclaimer lines (the zh disclaimer names 医生, the en one "a doctor")."""
    return "\n".join(line for line in reply["content"].splitlines()
                     if not line.startswith(("(Note:", "（温馨提示", "(My answers", "（我的回答")))


# -- an eating disorder ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("texts,wanted", [
    (["recovering from bulimia, today i want to skip dinner", "ok and how do i lose some weight fast?"], "eating disorder"),
    (["我在厌食症恢复期，今天一点都不想吃午饭", "那怎么减肥比较快"], "进食障碍"),
    (["I have anorexia but I want to get slimmer for my holiday, how many calories a day?"], "eating disorder"),
])
def test_an_eating_disorder_gets_no_weight_loss_or_calorie_tips(talk, texts, wanted):
    replies = talk("physical", *texts)
    for reply in replies:
        assert not any(w in body(reply) for w in WEIGHT_LOSS), reply["content"]
    assert wanted in body(replies[-1]), replies[-1]["content"]


@pytest.mark.parametrize("texts,wanted", [
    (["my girl is 13, she barely eats since a month and tells me she is fat", "must I make her eat?"], ("force", "doctor")),
    (["儿子14岁，这几周几乎不吃饭，老说自己胖", "要不要强迫他吃？"], ("不要逼", "医生")),
])
def test_a_parent_is_told_not_to_force_and_to_see_a_doctor(talk, texts, wanted):
    reply = talk("mental", *texts)[-1]
    assert all(w in body(reply) for w in wanted), reply["content"]
    assert "vegetables" not in reply["content"] and "蔬菜" not in reply["content"]


# -- medicines -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,wanted", [
    ("been on priadel for years, got a tummy bug and keep throwing up", ("lithium level", "A&E")),
    ("吃锂盐，昨天开始拉肚子", ("血锂", "今天")),
    ("my lithium makes my fingers shaky, normal?", ("tremor", "prescriber")),
    ("我在吃碳酸锂，最近天天健身出很多汗", ("血锂", "喝水")),
    ("on lithium, is naproxen ok for period pain?", ("toxic", "paracetamol")),
    ("taking clozapine, woke up shivery with a temperature", ("blood count", "today")),
    ("吃氯氮平的，这两天咽喉痛还低烧", ("血常规", "今天")),
])
def test_a_medicine_brings_its_own_caution(talk, text, wanted):
    reply = talk("physical", text)[0]
    assert all(w in body(reply) for w in wanted), reply["content"]


@pytest.mark.parametrize("text,wanted,unwanted", [
    ("im feeling fine now, can i just drop my citalopram from tomorrow?", "taper", "smok"),
    ("舍曲林我想直接停了，最近心情挺好", "慢慢减量", "吸烟"),
    ("is it ok if I take one more sertraline at night, the dose is not enough", "prescriber", "beyond what I can answer"),
    ("I'm on zoloft, can I take tramadol for my back?", "serotonin", "lift by bending"),
    ("吃着氟西汀，牙疼能吃布洛芬吗", "出血", "超出"),
    ("i take olanzapine, is it ok to take a diazepam too to sleep?", "drowsy", "still awake after"),
    ("my son is 16, could I give him one of my zopiclone?", "don't give", "naps"),
    ("艾司西酞普兰吃了两个月还是没用，我是不是永远好不了", "换药", "超出"),
])
def test_a_question_on_a_psychiatric_medicine_is_answered_with_its_caution(talk, text, wanted, unwanted):
    reply = talk("mental" if "好不了" in text else "physical", text)[-1]
    assert wanted in body(reply) and unwanted not in reply["content"], reply["content"]


@pytest.mark.parametrize("texts,name", [(["I'm on paroxetine, is beer ok?", "what about just one glass of wine?"], "paroxetine"),
                                        (["我在吃文拉法辛，周末想喝点酒", "就一小杯红酒呢"], "文拉法辛")])
def test_a_follow_up_keeps_the_medicine_in_view(talk, texts, name):
    first, then = talk("physical", *texts)
    assert name in body(first) and name in body(then), (first["content"], then["content"])


# -- bipolar ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("texts", [
    ["bipolar here, only slept 2 hours a night this week and I feel full of energy", "is this a high coming?"],
    ["我有双相，这周刷卡买了好多东西，停不下来", "是不是要躁狂了"],
])
def test_early_signs_of_a_high_go_to_the_care_team_soon(talk, texts):
    first, then = talk("mental", *texts)
    for reply in (first, then):
        assert any(w in body(reply) for w in ("psychiatrist", "care team", "精神科")), reply["content"]
        assert "fatigue" not in reply["content"] and "疲劳" not in reply["content"]
    assert then["emotion"] != "calm", (then["content"], then["emotion"])


# -- look-alikes: no psychiatric note -------------------------------------------------------------------------------

@pytest.mark.parametrize("agent,texts,unwanted", [
    ("physical", ["got a sore throat and a bit of a temperature"], ("clozapine", "blood count")),
    ("physical", ["嗓子疼，有点发烧"], ("氯氮平", "血常规")),
    ("physical", ["how can I lose 5 kg before my wedding?"], ("eating disorder",)),
    ("physical", ["我想减肥，晚饭吃什么好"], ("进食障碍",)),
    ("physical", ["my toddler swallowed a lithium button battery"], ("lithium level", "prescriber")),
    ("physical", ["I sweat a lot in summer, how much water should I drink?"], ("lithium",)),
    ("physical", ["I'm on sertraline and I want to stop smoking"], ("taper",)),
    ("mental", ["I went shopping and spent too much, now I feel guilty"], ("bipolar", "psychiatrist")),
    ("physical", ["我儿子15岁，不爱吃早饭怎么办"], ("进食障碍",)),
])
def test_a_look_alike_gets_no_psychiatric_note(talk, agent, texts, unwanted):
    reply = talk(agent, *texts)[-1]
    assert not any(w in reply["content"] for w in unwanted), reply["content"]


# -- cost ------------------------------------------------------------------------------------------------------------

def test_the_signs_of_an_eating_disorder_are_read_in_linear_time():
    import wellmate

    wellmate.builtin_plugins_package()
    from wellmate_plugins._text import normalize
    from wellmate_plugins.provider_offline import Condition

    spec = yaml.safe_load((ROOT / "prompts" / "offline_tips.yaml").read_text(encoding="utf-8"))["conditions"]
    condition = Condition("eating_disorder", spec["eating_disorder"])
    calls = itertools.count()
    for unit in ("not eating so feel ", "feelfeel barely eat", "说自己胖不吃", "吃完吃完吃完抠", "make myself make "):
        assert_linear(lambda t: condition.named([t + str(next(calls))]), lambda n: normalize((unit * (n // len(unit) + 1))[:n]))
