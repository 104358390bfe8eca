"""What reviewers got from a running server in session 17, each wrong, fixed as a family (the kind of
message, in both languages), through the served app with the shipped config: an allergic reaction's
swelling is the allergies topic with "call 120 now" first; muscle cramps are no period pain; an older
person's swollen joint is the joint's (with the older person's caution), not a sprain's or a fall's;
storing or carrying insulin is its own question; a pet dying or put to sleep is grief, not sleep.
The sentences are fresh (none is a line of the tips file or a bench set)."""

import pytest

from test_offline_companion import TIPS, caution, has_tip, talk  # noqa: F401 (talk is a fixture)


def tip(topic, lang, words):
    """The one tip of ``topic`` in ``lang`` written for ``words`` (its `when`), by a phrase of its text."""
    found = [t["text"] for t in TIPS[topic]["tips"][lang] if isinstance(t, dict) and words in t["text"]]
    assert len(found) == 1, (topic, lang, words)
    return found[0]


URGENT = {lang: TIPS["allergies"]["urgent"][lang] for lang in ("zh", "en")}
FEVER_CAUTION = {lang: caution("child_fever", lang) for lang in ("zh", "en")}


# -- 1. an allergic reaction's swelling: the allergies topic, "call 120 now" first ---------------------

@pytest.mark.parametrize("text,lang,child", [
    ("my little girl got stung by a wasp in the garden and now her lips are puffing up", "en", True),
    ("my daughter ate a cashew and her lips are swelling, what do I do", "en", True),
    ("had some prawns at lunch and my lips have swollen right up", "en", False),
    ("儿子在公园被马蜂蜇了，嘴唇肿起来了", "zh", True),
    ("吃了芒果以后嘴巴肿了，怎么办", "zh", False),
])
def test_a_swelling_allergic_reaction_says_call_120_first(talk, text, lang, child):
    reply = talk("physical", text)[0]["content"]
    assert reply.startswith(URGENT[lang]), reply  # before any caution, reflection or tip
    assert FEVER_CAUTION[lang] not in reply, reply  # no fever doses for a sting or a food
    if child:  # the child's own caution is the one for a reaction
        variant = next(v for v in TIPS["child_fever"]["caution"]["variants"] if "stung" in v["when"])
        assert variant[lang] in reply, reply


@pytest.mark.parametrize("text,lang", [
    ("got stung by a bee on my hand, it's red and sore, what do I put on it", "en"),
    ("被蜜蜂蛰了一下，手背红了一块，怎么处理", "zh"),
])
def test_a_sting_without_a_reaction_gets_its_first_aid_and_no_alarm(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert tip("allergies", lang, "蜂刺" if lang == "zh" else "scrape it out") in reply, reply
    assert URGENT[lang] not in reply, reply


@pytest.mark.parametrize("text,lang", [
    ("sore throat and swollen glands since Monday, what helps", "en"),
    ("hay fever is awful, my nose is so blocked I can't breathe through it at night", "en"),
])
def test_a_cold_or_a_blocked_nose_is_no_severe_reaction(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert URGENT[lang] not in reply, reply


# -- 2. muscle cramps are not periods -----------------------------------------------------------------

@pytest.mark.parametrize("text,lang", [
    ("I'm 67 and I get cramps in my legs most nights, any advice", "en"),
    ("my calf keeps cramping up in bed, what can I do", "en"),
    ("我七十岁了，半夜腿抽筋疼醒，怎么办", "zh"),
])
def test_muscle_cramps_get_the_cramp_tips_not_a_period_tip(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, "cramps", lang), reply
    assert not has_tip(reply, "periods", lang), reply
    if any(age in text for age in ("67", "七十")):
        assert caution("elderly", lang) in reply, reply


@pytest.mark.parametrize("text,lang", [("period cramps are wiping me out this month", "en"), ("痛经好厉害，肚子抽着疼", "zh")])
def test_period_cramps_stay_periods(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, "periods", lang) and not has_tip(reply, "cramps", lang), reply


# -- 3. an older person's swollen joint is the joint's ------------------------------------------------

@pytest.mark.parametrize("text,lang", [
    ("my grandad is 81 and his knee has swollen up, no fall or anything", "en"),
    ("奶奶七十九了，膝盖积水肿胀，走路疼", "zh"),
])
def test_an_older_persons_swollen_joint_gets_the_joint_tip_and_the_caution(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert tip("joints", lang, "关节肿了" if lang == "zh" else "A swollen joint") in reply, reply
    assert caution("elderly", lang) in reply, reply
    assert not has_tip(reply, "elderly", lang), reply  # no falls or ankle-swelling tip


def test_a_sprained_and_swollen_ankle_still_gets_rest_and_ice(talk):
    reply = talk("physical", "went over on my ankle at netball and it's swollen")[0]["content"]
    assert has_tip(reply, "joints", "en") and "ice" in reply, reply


# -- 4. storing or carrying insulin ---------------------------------------------------------------------

@pytest.mark.parametrize("text,lang", [
    ("going camping for a week, how do I keep my insulin from getting too warm", "en"),
    ("does insulin have to stay in the fridge once I've opened the pen?", "en"),
    ("坐飞机能带胰岛素吗？要不要放冰袋", "zh"),
])
def test_storing_insulin_gets_the_storage_tip(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert tip("blood_sugar", lang, "胰岛素的保存" if lang == "zh" else "Storing insulin") in reply, reply


def test_a_diabetic_diet_question_gets_no_storage_tip(talk):
    reply = talk("physical", "I have type 2 diabetes, what should I eat for breakfast")[0]["content"]
    assert tip("blood_sugar", "en", "Storing insulin") not in reply, reply


# -- 5. a pet dying or put to sleep is grief -------------------------------------------------------------

@pytest.mark.parametrize("text,lang", [
    ("the vet says it's kinder to put her to sleep, our cat is 19", "en"),
    ("my old dog is dying and I can't stop crying", "en"),
    ("我们家兔子快不行了，明天带去医院安乐死", "zh"),
])
def test_a_pet_dying_or_put_to_sleep_is_grief(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, "grief", lang), reply
    assert not has_tip(reply, "sleep", lang), reply


def test_putting_a_baby_to_sleep_is_still_sleep(talk):
    reply = talk("physical", "how do I put my baby to sleep when she fights it every night")[0]["content"]
    assert not has_tip(reply, "grief", "en"), reply


# -- the new patterns stay linear on hostile input ------------------------------------------------------

@pytest.mark.parametrize("unit", ["bee ", "lips ", "cramp in my ", "calf ", "the vet put our ", "my dog ", "狗狗", "嘴唇", "蛰"])
def test_a_flood_of_the_new_patterns_words_costs_work_in_proportion_to_its_length(unit):
    """Each new pattern is one bounded search per message read ({0,60}, not .*): four times the text costs about
    four times the CPU (conftest.assert_linear), not sixteen. A wall-clock ratio of 10k and 100k failed on a loaded
    machine (31x for a read that is linear when timed alone)."""
    from conftest import ROOT as _, assert_linear  # noqa: F401  (the plugins package is importable once conftest ran)
    from wellmate_plugins.provider_offline import Reading, compile_tips, normalize
    from test_offline_companion import ROOT
    import yaml

    guide = compile_tips(yaml.safe_load((ROOT / "prompts" / "offline_tips.yaml").read_text(encoding="utf-8")))
    assert_linear(lambda text: Reading(guide, text), lambda n: normalize((unit * n)[:n]))


# -- found beside them: an animal's bite, an older person's swollen feet -----------------------------------

@pytest.mark.parametrize("text,lang", [("a stray cat bit my finger, it's only a small puncture", "en"),
                                       ("邻居家的狗咬了我一口，破了点皮", "zh")])
def test_an_animal_bite_gets_washing_and_the_rabies_vaccine(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert tip("wounds", lang, "狂犬疫苗" if lang == "zh" else "rabies vaccine") in reply, reply


def test_an_older_persons_swollen_feet_and_ankles_get_the_groups_own_tip(talk):
    reply = talk("physical", "my gran is 91 and her feet and ankles are swollen by the evening")[0]["content"]
    assert tip("elderly", "en", "Swollen ankles or lower legs") in reply, reply
    assert tip("joints", "en", "A swollen joint") not in reply, reply


# -- English breadth (session 17): everyday British and American ways of saying it ---------------------------

@pytest.mark.parametrize("text,topic,not_topic", [
    ("dodgy kebab last night and I've been sick three times since", "stomach", "low_mood"),
    ("my mood's been pretty grim since the clocks changed", "low_mood", None),
    ("my hair is falling out in the shower, handfuls of it", None, "teeth"),  # "falling" is no dental "filling"
    ("how long can I sit in my chair before I should get up and stretch", "sitting", None),
    ("aged 58 with asthma, is swimming a good way to get fit", "exercise", None),
    ("cutting out energy drinks and the withdrawal headaches are rough, any tips", None, "low_mood"),
    ("think I'm coming down with something, sore throat and sneezing", "cold_fever", "allergies"),
])
def test_everyday_english_finds_its_topic(talk, text, topic, not_topic):
    reply = talk("physical", text)[0]["content"]
    if topic:
        assert has_tip(reply, topic, "en"), reply
    if not_topic:
        assert not has_tip(reply, not_topic, "en"), reply


@pytest.mark.parametrize("text", ["caught something off my kid, sneezing and a scratchy throat, what helps",
                                  "picked up a cold from my son, my nose is blocked and my throat hurts"])
def test_a_cold_caught_from_ones_child_is_the_parents_not_the_childs_fever(talk, text):
    # "off my kid" named the child as the patient: the parent got the child-fever answer (OFFCAL's notes, session 17)
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, "cold_fever", "en") and caution("child_fever", "en") not in reply, reply
