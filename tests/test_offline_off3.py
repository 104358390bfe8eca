"""Session 20 (OFF3): why offline answers went off topic for new writers (offline_T: babies and new mothers; offline_U:
manual and shift workers), fixed as families, over HTTP with the shipped config: a remedy asked of for the complaint
told is no topic of its own (toothpaste on a burn is no tooth); the hard-news acknowledgement only where news is told;
a baby's age in months without "old" brings the child's caution; a topic's word in a figure of speech ("keep an eye
on him", "running on coffee", "when it's cold") is no topic; a calf told as locking or seizing is a cramp; urine the
colour of tea and few wet nappies are dehydration's signs. Fresh sentences (none is a row of a bench set or of the
held list tests/data/offline_held_off3.tsv), with look-alikes that must keep their topic."""

import pytest

from test_audit_a20 import REMINDER, chat_with_reminder  # noqa: F401 (a fixture)
from test_offline_companion import TIPS, caution, has_tip, talk  # noqa: F401 (talk is a fixture)


def lang_of(text):
    return "en" if text.isascii() else "zh"


@pytest.mark.parametrize("text", ["女儿被开水烫到了手指，起了个小泡，要不要抹点牙膏", "burnt my wrist on the kettle, should I put toothpaste on it"])
def test_a_remedy_asked_of_for_a_burn_is_the_burn_not_the_remedys_word(talk, text):
    lang = lang_of(text)
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, "wounds", lang) and not has_tip(reply, "teeth", lang), reply


def test_a_remedy_asked_of_for_the_teeth_stays_the_teeth(talk):
    reply = talk("physical", "牙龈又红又肿，要涂点什么药吗")[0]["content"]
    assert has_tip(reply, "teeth", "zh"), reply


@pytest.mark.parametrize("text", ["what questions should I ask the oncologist", "化疗一般要做几个疗程"])
def test_a_question_on_an_illness_that_tells_no_news_gets_no_hard_news_acknowledgement(talk, text):
    lang = lang_of(text)
    reply = talk("physical", text)[0]["content"]
    assert TIPS["serious_illness"]["acknowledge"][lang] not in reply and has_tip(reply, "serious_illness", lang), reply


@pytest.mark.parametrize("text", ["My aunt has just been diagnosed with lymphoma, what should we ask the oncologist?",
                                  "我舅舅查出来肝癌，我们该问医生些什么"])
def test_news_told_with_the_same_question_is_acknowledged(talk, text):
    reply = talk("physical", text)[0]["content"]
    assert reply.startswith(TIPS["serious_illness"]["acknowledge"][lang_of(text)]), reply


@pytest.mark.parametrize("text", ["he's 10 months and has had a temperature of 38.5 since breakfast, what should I do",
                                  "my 9mo has a runny nose and a bit of a fever"])
def test_a_babys_age_in_months_without_old_brings_the_childs_caution(talk, text):
    reply = talk("physical", text)[0]["content"]
    assert caution("child_fever", "en") in reply, reply


@pytest.mark.parametrize("text", ["the last 3 months I've had headaches most afternoons", "I'm 34 weeks and my ankles are swollen"])
def test_months_or_weeks_with_no_baby_bring_no_childs_caution(talk, text):
    assert caution("child_fever", "en") not in talk("physical", text)[0]["content"]


@pytest.mark.parametrize("text,topic,not_topic", [
    # (a swallowed object is the safety plugin's red flag before any topic: no sentence of that kind here)
    ("the nurse told me to keep an eye on my blood pressure, how often should I check it at home", "blood_pressure", "eyes"),
    ("running on 4 hours sleep and three coffees, how bad is that for me", None, "exercise"),
    ("when its cold outside do I still need to drink 2 litres of water", "water", "cold_fever"),
])
def test_a_topics_word_in_a_figure_of_speech_is_no_topic(talk, text, topic, not_topic):
    reply = talk("physical", text)[0]["content"]
    assert not has_tip(reply, not_topic, "en") and (topic is None or has_tip(reply, topic, "en")), reply


@pytest.mark.parametrize("text,topic", [("is running every day bad for my knees", "joints"),
                                        ("I think I'm catching a cold, scratchy throat since yesterday", "cold_fever"),
                                        ("my eyes feel dry and gritty after a day at the screen", "eyes")])
def test_the_same_words_said_plainly_keep_their_topic(talk, text, topic):
    assert has_tip(talk("physical", text)[0]["content"], topic, "en")


@pytest.mark.parametrize("text", ["my calf seized up in the pool last night, how do I stop it happening again",
                                  "both calves locked solid at 2am, what helps"])
def test_a_calf_told_as_locking_or_seizing_is_a_cramp(talk, text):
    assert has_tip(talk("physical", text)[0]["content"], "cramps", "en")


@pytest.mark.parametrize("text", ["my urine was the colour of strong tea after the hike, is that bad?",
                                  "only two wet nappies since this morning and it's so hot, is she ok",
                                  "干了一下午活，尿跟浓茶一个颜色，要紧吗"])
def test_dehydrations_signs_told_without_its_words_are_dehydration(talk, text):
    lang = "zh" if text.startswith("干") else "en"
    assert has_tip(talk("physical", text)[0]["content"], "hydration", lang)


def test_a_bare_reply_to_a_medicine_reminder_gets_no_cheer(chat_with_reminder):
    reply = chat_with_reminder("how much water should I drink a day?", REMINDER, "吃了，谢谢")[-1]["content"]
    assert not any(w in reply for w in ("真为你高兴", "太好了！", "That's lovely", "So glad")), reply
