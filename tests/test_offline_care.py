"""The offline companion beside the safety plugin (issue 12, points 1-3), through the served app
with the shipped config: crisis judgement is the safety plugin's (the companion's own word list is
the fallback only with `safety` disabled, and its numbers come from config), no cheer on a turn
the safety plugin checked in on, negation ("不再焦虑了"), follow-ups that keep the session's topic
when they name only a generic word, a cut as first aid, someone else's symptoms not read as the
user's feelings, and a mishap with a thing not read as a low mood."""

import pytest

from test_offline_companion import caution, has_tip, talk  # noqa: F401 (talk is a fixture)

HOTLINES = ("12356", "400-161-9995")


def no_hotline(reply):
    return not any(number in reply for number in HOTLINES)


# -- 1. crisis judgement is the safety plugin's -----------------------------------------------------

# The safety plugin judges these harmless (talk about suicide, an idiom, a shaving nick, a film):
# the companion must not put its own crisis note on them.
HARMLESS = ["我在写一篇关于青少年自杀预防的论文", "i'm writing an essay on suicide prevention programs in schools",
            "好久不见，想死你了", "昨晚看了电影《自杀小队》", "cut myself shaving this morning, just a small nick"]


@pytest.mark.parametrize("text", HARMLESS)
def test_the_companion_leaves_crisis_judgement_to_the_safety_plugin(talk, text):
    reply = talk("mental", text)[0]
    assert reply["provider"] == "offline", reply  # the safety plugin did not answer it as a crisis
    assert no_hotline(reply["content"]), reply["content"]
    assert "担心你" not in reply["content"] and "worried about you" not in reply["content"], reply["content"]


def test_with_the_safety_plugin_disabled_the_companion_answers_a_crisis_with_the_configured_numbers(make_wm, serve):
    wm = make_wm({"plugins": {"disabled": ["safety"]},
                  "safety": {"hotlines": ["800-810-1117"], "emergency": ["999"]}})
    client = serve(wm).client
    token = client.register()["access_token"]
    for text in ("我真的不想活了", "i want to kill myself"):
        r = client.post("/api/v1/health/mental/chat", {"text": text}, token=token)
        assert r.status == 200 and r.json["provider"] == "offline", r.text
        assert "800-810-1117" in r.json["content"] and "999" in r.json["content"], r.json["content"]
        assert no_hotline(r.json["content"]), r.json["content"]


# -- 2. no cheer after a check-in ----------------------------------------------------------------------

CHEERFUL = ("That's lovely to hear", "How nice", "真为你高兴", "太好了！", "Enjoy this good feeling",
            "I can feel your joy", "这份好心情", "跟着开心", "What made your day", "好事")


@pytest.mark.parametrize("text", ["everyone would be better off if i just disappeared for good",
                                  "我走了以后大家会过得更好，这样我也开心"])
def test_no_cheer_on_a_turn_the_safety_plugin_checked_in_on(talk, text):
    reply = talk("mental", text)[0]["content"]
    assert any(number in reply for number in HOTLINES), reply  # the safety plugin's check-in is there
    assert not any(word in reply for word in CHEERFUL), reply
    assert "?" in reply or "？" in reply, reply  # a gentle question


# -- 3. negation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,worry", [("我不再焦虑了，检查结果正常", "焦虑"), ("已经不再担心了，医生说没事", "担心"),
                                        ("I'm no longer anxious, the scan came back normal", "anxious"),
                                        ("i don't feel worried about the results anymore", "worried")])
def test_a_worry_the_user_says_is_over_is_not_reflected(talk, text, worry):
    reply = talk("mental", text)[0]["content"]
    assert f"感到{worry}" not in reply and f"feeling {worry}" not in reply and f"feeling really {worry}" not in reply, reply
    assert not has_tip(reply, "anxiety", "zh" if worry in ("焦虑", "担心") else "en"), reply


# -- 4. follow-ups that name only a generic word keep the session's topic -----------------------------


@pytest.mark.parametrize("topic,lang,first,follow,tip_word", [
    ("weight", "zh", "想减肥，怎么减比较健康", "那运动方面呢", "运动"),
    ("eyes", "zh", "最近眼睛干涩发酸", "眼药水可以天天用吗", "眼药水"),
    ("back_pain", "en", "I strained my lower back lifting a box", "heat or ice?", "heat"),
    ("diarrhoea", "zh", "今天拉肚子拉了好几次", "能吃什么东西", "吃"),
    ("diarrhoea", "en", "I've had diarrhoea since this morning", "what can I eat?", "eat"),
])
def test_a_follow_up_with_only_a_generic_word_stays_on_the_sessions_topic(talk, topic, lang, first, follow, tip_word):
    replies = talk("physical", first, follow)
    reply = replies[1]["content"]
    assert has_tip(reply, topic, lang), reply
    # the tip that speaks of it, unless the first reply gave it already (a tip is not repeated)
    assert tip_word in reply or tip_word in replies[0]["content"], reply


# -- 5. a cut is first aid ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text,lang", [("切菜的时候不小心划到手指，流了点血", "zh"),
                                       ("I cut my finger on a broken glass, it's bleeding a bit", "en")])
def test_a_cut_gets_wound_care_not_a_sprain_tip(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, "wounds", lang), reply
    assert not has_tip(reply, "joints", lang), reply
    assert ("伤口" in reply) if lang == "zh" else ("wound" in reply or "cut" in reply), reply


# -- 6. someone else's symptoms are not the user's feelings -----------------------------------------------


@pytest.mark.parametrize("text,lang", [("my 2 year old has a fever of 39 and is very sleepy", "en"),
                                       ("my toddler has a high temperature and seems really drowsy", "en"),
                                       ("孩子三岁，发烧39度，一直昏昏沉沉想睡", "zh")])
def test_a_drowsy_feverish_child_gets_see_a_doctor_now_first_not_a_feeling(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert "you're feeling" not in reply and "okay to rest" not in reply and "你感到" not in reply, reply
    first = reply.split("。")[0] if lang == "zh" else reply.split(".")[0]
    assert ("就医" in first or "医院" in first or "120" in first) if lang == "zh" else \
        ("doctor" in first or "120" in first or "now" in first), reply


def test_a_parents_tiredness_is_not_the_users_feeling(talk):
    reply = talk("physical", "my mum is 80 and has been very tired and weak all week")[0]["content"]
    assert "you're feeling" not in reply and "you've been feeling" not in reply, reply


# -- 7. a mishap with a thing is not a low mood -----------------------------------------------------------


@pytest.mark.parametrize("text", ["my phone died in the middle of the call", "the car battery died this morning",
                                  "手机没电了，电话打到一半断了"])
def test_a_thing_that_died_is_not_a_low_mood(talk, text):
    reply = talk("mental", text)[0]["content"]
    assert "feeling down" not in reply and "feeling sad" not in reply and "感到难过" not in reply, reply


# -- session 15 (OFFL): grief, "X is killing me", a follow-up that asks whether to wait ------------------


@pytest.mark.parametrize("text,lang", [
    ("My wife passed away last month and I keep crying at night", "en"),
    ("we had to put our old cat down on saturday", "en"),
    ("老伴走了两个月了，饭也吃不下", "zh"),
    ("我家狗狗昨天去世了，孩子和我都很难受", "zh"),
])
def test_a_loss_gets_condolence_and_the_grief_tips_not_a_reflection_or_a_shower_tip(talk, text, lang):
    reply = talk("mental", text)[0]["content"]
    assert has_tip(reply, "grief", lang), reply
    assert any(word in reply for word in ("sorry for your loss", "going through this loss", "节哀", "这样的失去")), reply
    assert not has_tip(reply, "low_mood", lang) and "marriage" not in reply and "伴侣" not in reply, reply
    assert caution("child_fever", lang) not in reply and caution("elderly", lang) not in reply, reply  # a mourner


@pytest.mark.parametrize("text,lang", [("my laptop died and I lost everything I wrote", "en"),
                                       ("my phone died in the middle of the call", "en"),
                                       ("老公走了三年了，我现在一个人过得还好", "zh")])
def test_a_thing_that_died_is_no_loss_and_years_since_a_death_are(talk, text, lang):
    # main (R15): a laptop or phone that died got "let people help" and "thoughts of joining them"; 走了三年了 read as a count
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, "grief", lang) == (lang == "zh"), reply


def test_a_grief_follow_up_stays_on_the_loss(talk):
    _, follow = (r["content"] for r in talk("mental", "My dad died in the spring", "how long is this supposed to last?"))
    assert has_tip(follow, "grief", "en"), follow
    assert "sorry" not in follow, follow  # condolence once a session


@pytest.mark.parametrize("text", ["my boss is killing me with these deadlines 😂", "This traffic is killing me",
                                  "exam week is killing me lol"])
def test_a_thing_that_is_killing_me_is_no_toothache(talk, text):
    reply = talk("mental", text)[0]["content"]
    assert not has_tip(reply, "teeth", "en"), reply


def test_a_word_one_letter_from_a_keyword_keeps_its_first_letter(talk):
    reply = talk("physical", "My phone died and the morning was chaos, so stressed")[0]["content"]
    assert not has_tip(reply, "grief", "en") and not has_tip(reply, "teeth", "en"), reply


@pytest.mark.parametrize("texts,lang,words", [
    (["我爸爸突然说话不清楚，一边手臂没力气", "已经过了二十分钟了，好像好一点了，要不要等我儿子下班再说？"], "zh", ("不要等", "120", "小中风")),
    (["My mum's face is drooping and her speech is slurred", "she seems a bit better now, can we wait for my brother?"], "en",
     ("don't wait", "120", "TIA")),
    (["我胸口很痛，喘不上气", "好多了，明天再去医院行吗"], "zh", ("不要等", "120")),
])
def test_a_follow_up_that_asks_to_wait_after_an_emergency_sign_is_told_not_to(talk, texts, lang, words):
    follow = talk("physical", *texts)[1]["content"]
    assert all(word in follow for word in words), follow
    assert caution("child_fever", lang) not in follow, follow  # a son home from work is no sick child


def test_waiting_is_only_urged_against_after_an_emergency_sign(talk):
    follow = talk("physical", "孩子发烧38度，精神还可以", "要不要等明天再去医院？")[1]["content"]
    assert "不要等" not in follow, follow


def test_after_the_call_no_call_again(talk):
    follow = talk("physical", "My dad's face is drooping on one side", "we called an ambulance, he seems better, should we still wait?")[1]["content"]
    assert "Please don't wait" not in follow, follow
