"""The offline companion on the situation around a question (session 12's audit, H2, M2-M4),
through the served app with the shipped config: an alcohol or ice rub for a fever is refused, not
answered with drinking limits; "expecting" something other than a baby brings no pregnancy
caution; a death, a grandparent's memory or a newborn's parents' lost sleep bring no older
person's or child's medicine caution; red sticky eyes, an older person's hip after a fall and a
weight goal with a date get the advice that fits them; a follow-up on milk or smoking is answered;
a back-pain reply quotes no belly-pain line; "more" neither repeats a group's caution nor goes round again (L1)."""

import pytest

from test_offline_answers import ask  # noqa: F401 (a fixture: served with the starter library)
from test_offline_companion import caution, has_tip, talk  # noqa: F401 (talk is a fixture)


# -- H2: an alcohol rub for a fever -----------------------------------------------------------------


@pytest.mark.parametrize("lang,first,follow", [
    ("zh", "儿子五岁，今天烧到38.8度", "用酒精给他擦擦身子可以吗"),
    ("en", "my daughter is 6 and has a fever of 39.2", "should I wipe her down with rubbing alcohol?"),
])
def test_an_alcohol_rub_in_a_childs_fever_session_is_refused(talk, lang, first, follow):
    reply = talk("physical", first, follow)[1]["content"]
    assert ("不要用酒精" in reply) if lang == "zh" else ("Don't rub or sponge a child with alcohol" in reply), reply
    assert not has_tip(reply, "alcohol", lang), reply  # no adult drinking limits


@pytest.mark.parametrize("lang,text,refusal", [("zh", "发烧了，用酒精擦身退烧管用吗", "不要用酒精"),
                                               ("en", "I have a fever, would sponging down with alcohol help?", "Don't rub")])
def test_an_alcohol_rub_for_ones_own_fever_is_refused(talk, lang, text, refusal):
    reply = talk("physical", text)[0]["content"]
    assert refusal in reply, reply
    assert not has_tip(reply, "alcohol", lang), reply


# -- M2: "expecting" something other than a baby -----------------------------------------------------


@pytest.mark.parametrize("text", ["We're expecting visitors tonight and my knee is sore",
                                  "I'm expecting a parcel this afternoon, and I've got a splitting headache"])
def test_expecting_something_else_brings_no_pregnancy_caution(talk, text):
    reply = talk("physical", text)[0]["content"]
    assert "pregnan" not in reply.lower(), reply


def test_expecting_a_baby_still_brings_the_pregnancy_caution(talk):
    reply = talk("physical", "expecting twins in the spring, can I keep running?")[0]["content"]
    assert caution("pregnancy", "en") in reply, reply


# -- M3: a death, a memory, a newborn ----------------------------------------------------------------


@pytest.mark.parametrize("agent,text,group,lang", [
    ("mental", "爷爷去年过世了，今天翻到他的老照片", "elderly", "zh"),
    ("physical", "外婆生前最爱包饺子，今天自己包的时候一直在想她", "elderly", "zh"),
    ("mental", "姥爷走了快两年了，昨天梦见他", "elderly", "zh"),
    ("mental", "my grandma died in the spring and I keep thinking about her", "elderly", "en"),
    ("physical", "our dog died last night, how do I tell my 6 year old son?", "child_fever", "en"),
])
def test_a_death_or_a_memory_brings_no_medicine_caution(talk, agent, text, group, lang):
    reply = talk(agent, text)[0]["content"]
    assert caution(group, lang)[:30] not in reply, reply
    assert not has_tip(reply, group, lang), reply


@pytest.mark.parametrize("lang,text,tip_word", [("zh", "孩子刚出生两周，我每天只能睡三四个小时", "轮流值夜"),
                                                ("en", "we have a newborn and I'm running on three hours of sleep", "take turns")])
def test_a_newborns_parents_lost_sleep_is_theirs_not_a_childs_illness(talk, lang, text, tip_word):
    reply = talk("physical", text)[0]["content"]
    assert caution("child_fever", lang)[:30] not in reply, reply
    assert tip_word in reply, reply


@pytest.mark.parametrize("lang,text,word", [("zh", "左眼红红的，早上起来还有黄色的分泌物", "结膜炎"),
                                            ("en", "my right eye is red and sticky this morning", "conjunctivitis")])
def test_red_sticky_eyes_get_conjunctivitis_advice_not_a_screen_tip(talk, lang, text, word):
    reply = talk("physical", text)[0]["content"]
    assert word in reply, reply


@pytest.mark.parametrize("lang,text,words", [
    ("zh", "外婆昨天在楼梯上摔了一跤，胯那里疼得厉害", ("髋部骨折", "当天")),
    ("en", "my 82-year-old grandpa slipped in the shower and his hip hurts", ("hip fracture", "same day")),
])
def test_an_older_persons_hip_pain_after_a_fall_is_a_possible_fracture_to_check_today(talk, lang, text, words):
    reply = talk("physical", text)[0]["content"]
    assert all(word in reply for word in words), reply
    assert not has_tip(reply, "joints", lang), reply  # not a sprain to ice at home


@pytest.mark.parametrize("lang,text,pace", [("zh", "想一个月减十斤，做得到吗", "0.5–1 公斤"),
                                            ("en", "how quickly can I drop 8 kg?", "0.5–1 kg")])
def test_a_weight_goal_gets_a_safe_pace(talk, lang, text, pace):
    reply = talk("physical", text)[0]["content"]
    assert pace in reply, reply


# -- M4: follow-ups that ask about something in particular ----------------------------------------


@pytest.mark.parametrize("lang,first,follow,word", [
    ("zh", "吃完饭老是烧心", "睡前喝杯牛奶行不行", "牛奶"),
    ("en", "my stomach feels bloated after meals", "is milk ok?", "milk"),
    ("zh", "咳嗽三个多星期了", "我烟抽得挺多的，要紧吗", "胸片"),
    ("en", "this cough has gone on for four weeks", "I smoke about ten a day, does that matter?", "X-ray"),
])
def test_a_follow_up_on_milk_or_smoking_is_answered(talk, lang, first, follow, word):
    reply = talk("physical", first, follow)[1]["content"]
    assert word in reply, reply



@pytest.mark.parametrize("texts", [("坐了一整天办公室，腰酸得厉害", "需要去医院看看吗？"), ("弯腰搬花盆以后腰一直疼", "这种情况要去医院吗"),
                                   ("提了一下午重物，腰疼得直不起来",), ("搬了一天家，腰疼得直不起来",)])
def test_a_back_pain_reply_quotes_no_line_on_belly_pain(ask, texts):
    # "剧烈腹痛…痛得直不起腰" of 《什么时候该去看医生》 names the waist after the belly: a belly pain's sign
    reply = ask(*texts)[-1]["content"]
    assert "腹痛" not in reply, reply


# -- L1: follow-ups that say the same again ----------------------------------------------------------


@pytest.mark.parametrize("lang,texts,new_complaint", [
    ("zh", ["女儿四岁，烧到39度了", "还有呢", "还有呢"], "她刚才还吐了两次"),
    ("en", ["I'm 30 weeks pregnant and my lower back aches", "more", "more"], "I've also got a bad headache now"),
])
def test_the_groups_caution_is_said_once_in_a_session(talk, lang, texts, new_complaint):
    # Not to "more", nor to a new complaint (session 19, A21: an elder's three things word for word on every
    # follow-up): said once, the group still holds; a caution variant for the new complaint would be new words.
    group = "child_fever" if lang == "zh" else "pregnancy"
    replies = [r["content"] for r in talk("physical", *texts, new_complaint)]
    assert caution(group, lang) in replies[0], replies[0]
    for reply in replies[1:]:
        assert caution(group, lang) not in reply, reply


@pytest.mark.parametrize("lang,first,more,done,say_more", [
    ("en", "how do I sleep better?", "more", "That's all the tips I have on sleep", 'Say "more"'),
    ("zh", "每天喝多少水合适", "还有呢", "我这里的建议上面都说过了", "还有呢"),
])
def test_asking_for_more_runs_out_instead_of_going_round_again(talk, lang, first, more, done, say_more):
    replies = [r["content"] for r in talk("physical", first, *[more] * 5)]
    assert done in replies[-1] and say_more not in replies[-1], replies[-1]


# -- session 13: "expecting" read by the topic model; follow-ups that add a detail or a child -------


@pytest.mark.parametrize("text", ["I'm expecting my results next week", "expecting the grades on monday"])
def test_expecting_results_guessed_by_the_topic_model_brings_no_pregnancy_caution(talk, text):
    reply = talk("physical", text)[0]["content"]
    assert "pregnan" not in reply.lower(), reply


@pytest.mark.parametrize("first,follow,detail", [
    ("昨天打球崴了脚，脚踝现在有点疼", "肿了怎么办", "肿的话"),  # the swelling part of the tip said first, again
    ("扭到脚踝了，有点疼", "会不会肿", "肿"),
])
def test_a_follow_up_with_a_new_detail_is_answered_on_that_detail(talk, first, follow, detail):
    replies = talk("physical", first, follow)
    assert detail in replies[1]["content"] and "深蹲" not in replies[1]["content"], replies[1]["content"]


@pytest.mark.parametrize("first,follow", [("I've got a sore throat and a blocked nose", "and for a child?"),
                                          ("I've had a dry cough for days", "what about for kids?")])
def test_a_follow_up_asking_the_same_for_a_child_gets_the_childs_caution(talk, first, follow):
    reply = talk("physical", first, follow)[1]["content"]
    assert caution("child_fever", "en") in reply, reply
