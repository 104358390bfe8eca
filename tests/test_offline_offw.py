"""Wrong offline answers a new user and an outside review found in session 18, through the served app with the
shipped config (no network), each fixed at its cause: a special group's tip given under a complaint's title, the
emergency number said twice, swallowed objects and missed doses with no topic, a nappy rash answered with sunscreen,
a child or an elder named in a message that is no health question, a real word mended as a typo ("father" read as
"fatter"), and a headache told by where it hurts."""

import re

import pytest

from test_offline_companion import caution, has_tip, talk, tips  # noqa: F401 (talk is a fixture)


def reply_to(talk, text, agent="physical"):
    return talk(agent, text)[0]["content"]


def lang_of(text):
    return "en" if text.isascii() else "zh"


def any_group_caution(reply, lang):
    return any(caution(group, lang) in reply for group in ("child_fever", "pregnancy", "elderly"))


# -- a group's tip never under a complaint's title; the emergency number once ----------------------------------


@pytest.mark.parametrize("text", ["my 5-year-old got stung by a bee, what should I do?", "孩子被蜜蜂蛰了怎么办",
                                  "a wasp stung my little boy on the hand"])
def test_a_childs_sting_gets_the_stings_first_aid_not_the_fever_tip(talk, text):
    reply, lang = reply_to(talk, text), lang_of(text)
    assert not has_tip(reply, "child_fever", lang), reply  # was "A tip on allergies: Fever is the body fighting..."
    assert ("scrape it out" if lang == "en" else "刮出来") in reply, reply
    assert not re.search(r"antihistamine eases|可以用非处方的抗组胺药", reply), reply  # the caution says what to ask
    assert reply.count("120") == 1, reply


@pytest.mark.parametrize("text", ["I got stung by a bee on my arm, it's a bit swollen", "被蜜蜂蛰了一下，有点肿"])
def test_a_mild_sting_names_the_emergency_number_once(talk, text):
    reply = reply_to(talk, text)
    assert reply.count("120") == 1, reply


# -- swallowed objects --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["my toddler swallowed a coin", "孩子把硬币吞下去了", "宝宝好像咽了一颗小珠子",
                                  "my 3 year old swallowed a magnet off the fridge", "儿子吞了两颗磁力珠"])
def test_a_childs_swallowed_object_gets_its_note_not_the_fever_caution_nor_a_check_in(talk, text):
    # The swallowed_object red flag (prompts/safety.yaml): a doctor today, A&E now for a magnet; no mental-health
    # check-in (the classifier read "swallowed a small magnet" as a crisis at 0.77), no fever doses.
    reply, lang = reply_to(talk, text), lang_of(text)
    assert reply.startswith("⚠️") and ("magnet" in reply if lang == "en" else "磁铁" in reply), reply
    assert caution("child_fever", lang) not in reply, reply
    assert "12356" not in reply and "hotline" not in reply, reply


@pytest.mark.parametrize("text", ["I accidentally swallowed a small screw while fixing my glasses", "吃鱼的时候卡了根鱼刺"])
def test_an_adults_swallowed_object_gets_the_topics_advice(talk, text):
    reply, lang = reply_to(talk, text), lang_of(text)
    assert has_tip(reply, "swallowed", lang), reply


def test_salmon_sashimi_is_no_fish_bone(talk):
    reply = reply_to(talk, "怀孕了还能吃三文鱼刺身吗")
    assert not has_tip(reply, "swallowed", "zh"), reply


# -- missed doses ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["forgot my pills this morning, should I take two tonight?",
                                  "早上忘了吃降压药，晚上要不要补两片", "missed my dose yesterday, do I double up?"])
def test_a_missed_dose_gets_dont_double_up_not_another_topic(talk, text):
    reply, lang = reply_to(talk, text), lang_of(text)
    assert has_tip(reply, "medicines", lang), reply
    assert not has_tip(reply, "insomnia", lang) and not has_tip(reply, "blood_pressure", lang), reply


# -- nappy rash -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["宝宝尿布疹怎么办", "my baby has diaper rash", "her bum is red and sore from the nappy"])
def test_nappy_rash_gets_nappy_care_not_sunscreen(talk, text):
    reply, lang = reply_to(talk, text), lang_of(text)
    assert ("barrier cream" if lang == "en" else "护臀霜") in reply, reply
    assert "SPF" not in reply and "防晒" not in reply, reply


# -- no health question ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("agent,text", [
    ("mental", "我想把这个bug干掉"), ("physical", "my sister had a baby last week, what gift should I bring"),
    ("physical", "朋友的宝宝满月了，送什么礼物合适"), ("physical", "my daughter is off to summer camp, what should she pack?"),
])
def test_no_health_question_gets_no_tip_and_no_caution(talk, agent, text):
    reply, lang = reply_to(talk, text, agent), lang_of(text)
    assert not any_group_caution(reply, lang), reply
    assert not any(has_tip(reply, topic, lang) for topic in ("diarrhoea", "grief", "child_fever", "exercise")), reply


def test_a_childs_fever_still_gets_the_caution(talk):
    reply = reply_to(talk, "女儿发烧38度5，要吃退烧药吗")
    assert caution("child_fever", "zh") in reply, reply


# -- elders ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["how can I take care of my elderly father in general?",
                                  "my dad's dementia pills, should he take them with food?",
                                  "my elderly mum lives alone, how should I look after her health?"])
def test_an_elders_care_is_the_elders_not_weight_or_stress(talk, text):
    reply = reply_to(talk, text)
    assert caution("elderly", "en") in reply, reply
    assert not any(has_tip(reply, topic, "en") for topic in ("weight", "stress", "loneliness")), reply


# -- a headache told by where it hurts --------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["pain behind my eyes", "throbbing on the left side of my head", "眼眶后面一阵阵地疼"])
def test_a_headache_told_by_where_it_hurts_is_a_headache(talk, text):
    reply, lang = reply_to(talk, text), lang_of(text)
    assert has_tip(reply, "headache", lang), reply
