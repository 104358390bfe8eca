"""Pregnancy, birth and newborns (session 21, PERI; audit A23), over HTTP with the shipped config: an emergency sign of
a pregnancy told by its weeks or in everyday words, of the weeks after a birth, of a baby under 3 months with a fever,
of a newborn's jaundice with a danger sign puts the emergency first, and its follow-ups ("should I wait until
tomorrow's appointment?", 要不要先给他吃点退烧药, 如果出血越来越多怎么办) stay on it; a breastfeeding mother's medicine is
not the pregnancy's rule; a 月子 custom gets the answer; a missed pill with sex gets emergency contraception in time;
and the look-alikes stay calm."""

import pytest

from conftest import assert_linear, in_one_session


def urgent_first(reply: dict) -> bool:
    return reply["content"].startswith("⚠️") and "120" in reply["content"].split("\n")[0]


def replies(client, texts, agent="physical"):
    return in_one_session(client, client.register()["access_token"], texts, agent)


@pytest.mark.parametrize("text", [
    "I'm 34 weeks and the baby has been moving much less since yesterday",
    "怀孕35周，今天一天都没怎么感觉到胎动",
    "30 weeks pregnant and I think my waters just broke, there's fluid leaking",
    "我怀孕32周了，今天发现内裤上有血",
    "Gave birth 10 days ago and I'm soaking a pad every hour with big clots",
    "Had my baby 2 weeks ago, now my left calf is swollen and really painful",
    "生完孩子一周，突然发高烧39度",
    "my 6 week old has a temperature of 38.3",
    "宝宝出生20天，体温38.2度",
    "my newborn is 2 days old, yellow and very sleepy, not feeding",
])
def test_an_emergency_of_pregnancy_birth_or_a_young_baby_puts_120_first(client, text):
    reply = replies(client, [text])[0]
    assert urgent_first(reply), reply["content"]
    assert "thoughts of hurting" not in reply["content"] and "伤害自己的念头" not in reply["content"]


def test_the_follow_ups_of_reduced_movements_say_do_not_wait(client):
    first, wait = replies(client, ["I'm 34 weeks and the baby has been moving much less since yesterday",
                                   "should I wait until tomorrow's appointment?"])
    assert urgent_first(first)
    assert wait["content"].startswith("⚠️") and "don't wait" in wait["content"].lower(), wait["content"]
    assert "child" not in wait["content"]


def test_a_young_babys_fever_follow_ups_give_no_ibuprofen_and_no_waiting(client):
    fever, medicine, overnight = replies(client, ["宝宝出生20天，体温38.2度", "要不要先给他吃点退烧药？家里有布洛芬", "我老公说再观察一晚"])
    assert urgent_first(fever) and "布洛芬 6 个月以下不能用" in fever["content"]
    assert medicine["content"].startswith("⚠️") and "6 个月以下的宝宝不要自己用" in medicine["content"], medicine["content"]
    assert overnight["content"].startswith("⚠️") and "不要等" in overnight["content"], overnight["content"]


def test_bleeding_in_pregnancy_getting_worse_stays_on_the_emergency(client):
    first, worse = replies(client, ["我怀孕32周了，今天发现内裤上有血", "如果出血越来越多怎么办？"])
    assert urgent_first(first)
    assert worse["content"].startswith("⚠️") and "不要等到明天" in worse["content"], worse["content"]
    assert "散步、游泳" not in worse["content"]


def test_a_newborns_jaundice_is_the_babys_today_and_a_sleepy_baby_not_feeding_now(client):
    yellow, sleepy = replies(client, ["my 5 day old is looking really yellow, even his eyes",
                                      "he's also very sleepy and not feeding well"])
    assert "20-20-20" not in yellow["content"] and "today" in yellow["content"], yellow["content"]
    assert "needs a doctor now" in sleepy["content"] and "teenagers" not in sleepy["content"], sleepy["content"]


@pytest.mark.parametrize("text", ["I'm breastfeeding and my doctor prescribed codeine after my c-section, is that safe for the baby?",
                                  "I'm breastfeeding, can I take ibuprofen?"])
def test_breastfeeding_is_not_pregnancy_for_medicines(client, text):
    content = replies(client, [text])[0]["content"]
    assert "generally fine while breastfeeding" in content and "Codeine" in content, content
    assert "don't take ibuprofen or aspirin unless a doctor says so" not in content


def test_breastfeeding_medicines_in_chinese(client):
    content = replies(client, ["哺乳期可以吃布洛芬吗？宝宝两个月"])[0]["content"]
    assert "哺乳期用药不同于孕期" in content and "布洛芬、阿司匹林不要自己吃" not in content, content


def test_a_confinement_custom_gets_the_answer_and_her_feelings_the_postnatal_one(client):
    wash, air, hurt = replies(client, ["坐月子真的不能洗头洗澡吗？我婆婆不让", "那能不能开空调？", "感觉好委屈…"])
    assert "洗头、洗澡、刷牙都可以" in wash["content"], wash["content"]
    assert "用“我”开头表达" not in air["content"] and "生气" not in air["content"], air["content"]
    assert "产后抑郁" in hurt["content"] and "孕晚期腰背痛" not in hurt["content"], hurt["content"]


@pytest.mark.parametrize("text, words", [("我吃了避孕药漏了一天，昨晚同房了，怎么办", ["紧急避孕", "72 小时"]),
                                         ("I missed two pills this week and had unprotected sex on Saturday",
                                          ["emergency contraception", "72 hours"]),
                                         ("condom broke last night, what do I do", ["72 hours", "pharmacist"])])
def test_a_missed_pill_or_a_broken_condom_gets_emergency_contraception_in_time(client, text, words):
    content = replies(client, [text])[0]["content"]
    assert all(w in content for w in words), content
    assert not content.startswith("⚠️")


@pytest.mark.parametrize("text", [
    "my wife is pregnant, what foods should she avoid?", "is a little spotting at 6 weeks normal?",
    "怀孕早期有一点点褐色分泌物，正常吗", "I'm 25 weeks pregnant and my ankles are a bit puffy in the evening",
    "my breastfed baby poos yellow seedy poo, is that normal?", "my 8 year old has a 38.5 fever but is playing and drinking fine",
    "my best friend just found out she's pregnant and I've had a severe headache all day",
    "what temperature is a fever in a newborn?", "I'm 2 weeks postpartum, when can I start running?"])
def test_look_alikes_get_no_emergency_note(client, text):
    content = replies(client, [text])[0]["content"]
    assert "⚠️" not in content, content


def test_the_new_red_flags_stay_linear_on_hostile_input(make_wm):
    from wellmate_plugins.safety import normalize
    phrases = make_wm().service("safety").phrases.get()

    def read_anew(text):
        phrases._flagged = {}  # (its answers cache: a dict of up to FLAGGED_MAX texts since session 21's PERF)
        return phrases.red_flags(normalize(text))
    for unit in ["i'm 34 weeks pregnant and the baby ", "孕32周宝宝胎动", "gave birth my calf ", "6 week old fever ",
                 "新生儿出生3天黄", "newborn yellow baby "]:
        assert_linear(read_anew, lambda n: unit * (n // len(unit)))


@pytest.mark.parametrize("texts, wanted, not_wanted", [
    (["I'm breastfeeding", "can I take ibuprofen?"], "generally fine while breastfeeding", "don't take ibuprofen or aspirin unless"),
    (["坐月子期间头疼得厉害", "能吃布洛芬吗"], "哺乳期用药不同于孕期", "布洛芬、阿司匹林不要自己吃"),
    (["I'm 30 weeks pregnant", "can I take ibuprofen?"], "don't take ibuprofen or aspirin unless", "generally fine while breastfeeding")])
def test_a_medicine_asked_in_a_new_mothers_session_is_hers_and_in_a_pregnancy_the_pregnancys(client, texts, wanted, not_wanted):
    # (a tip's `also` words are read in the session's messages that named the group too)
    last = replies(client, texts)[-1]["content"]
    assert wanted in last and not_wanted not in last, last


@pytest.mark.parametrize("text", ["my 10 week old has a temp of 37.8, is that a fever?", "宝宝50天，体温37.5正常吗",
                                  "坐月子期间头疼得厉害", "how do I know if my waters have broken?"])
def test_no_emergency_note_for_a_reading_under_38_a_headache_alone_or_a_question(client, text):
    content = replies(client, [text])[0]["content"]
    assert not content.startswith("⚠️"), content
