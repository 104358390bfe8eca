"""The offline companion answers the question asked (issue 12, point 3; the outside audit of
session 11), through the served app with the shipped config and the starter library: a tip for
the complaint named (an itchy rash is not acne, pollen not a food allergy, a toothache not
bleeding gums), a library quote only where it is about the question and never in place of the
tip, a new mother's caution after a birth, and someone the user speaks of not read as the user."""

import shutil

import pytest

from conftest import ROOT, in_one_session, served_shipped
from test_offline_companion import caution, has_tip

QUOTED = "《病友宝典》"


@pytest.fixture(scope="module")
def ask(tmp_path_factory):
    """ask(*texts, agent="physical") -> the replies (JSON), all in one session of a new user, over HTTP."""
    tmp = tmp_path_factory.mktemp("offline_answers")
    shutil.copytree(ROOT / "library", tmp / "library")
    with served_shipped(tmp) as served:
        token = served.client.register("asker", "asker password")["access_token"]
        yield lambda *texts, agent="physical": in_one_session(served.client, token, texts, agent)


# (message, what the answer must say, what it must not: the tip of another complaint of the topic)
@pytest.mark.parametrize("text,wanted,unwanted", [
    ("I have an itchy rash on my arms", ["For an itchy rash"], ["For acne"]),
    ("皮肤起疹子很痒", ["皮肤痒、起疹子"], ["长痘痘"]),
    ("I'm allergic to pollen, what helps?", ["In pollen season"], ["food allergy"]),
    ("My nose is running and my eyes are itchy every spring", ["In pollen season"], ["We blink less"]),
    ("芒果过敏，吃完嘴巴发痒", ["怀疑食物过敏"], ["花粉季"]),
    ("牙疼得厉害", ["牙疼时避开"], ["牙龈出血"]),
    ("月经痛得厉害怎么办", ["痛经时热敷", "布洛芬这类止痛药对痛经"], ["经前烦躁"]),
    ("terrible cramps on the first day of my period", ["For period pain", "Ibuprofen-type painkillers"], ["For PMS"]),
    ("我拉肚子一天了怎么办", ["补水"], []),
    ("最近工作压力很大，怎么放松", ["4-6 呼吸", "把压在心上的事", "每天留一点只属于自己的时间"], ["下面这些方法"]),
    ("How do I stop procrastinating?", ["For putting things off"], ["beyond what I can answer"]),
    ("怎么才能提高注意力", ["注意力集中不了"], ["下面这些方法"]),
    ("怀孕了可以喝咖啡吗", ["不超过 200 毫克", caution("pregnancy", "zh")], []),
])
def test_the_tip_answers_the_complaint_asked_about(ask, text, wanted, unwanted):
    reply = ask(text)[0]["content"]
    assert any(w in reply for w in wanted), reply
    assert not any(u in reply for u in unwanted), reply


@pytest.mark.parametrize("text,lang,topic,unwanted", [
    # the doctor's list has "没有刻意减肥，半年内体重下降明显": about the opposite of what was asked
    ("我想减肥", "zh", "weight", ["没有刻意减肥", "《什么时候该去看医生》"]),
    ("想减掉小肚子，有什么办法", "zh", "weight", ["没有刻意减肥"]),
    # the blood-pressure article's cuff posture and "no coffee before measuring" answer neither
    ("皮肤起疹子很痒", "zh", "skin", ["袖带", "《在家正确测血压》"]),
    ("怀孕了可以喝咖啡吗", "zh", "caffeine", ["《在家正确测血压》", "测量前"]),
    # the anxiety article's opening sentence promises methods below it and has none
    ("最近工作压力很大，怎么放松", "zh", "stress", ["下面这些方法"]),
    # "要不要去看医生" shares only generic words with 《什么时候该去看医生》: no whole list of reasons to go
    ("打算减肥了，减之前需要先去看医生吗", "zh", "weight", ["没有刻意减肥", "身上摸到新的肿块"]),
    # a line listing dizziness among a severe allergy's signs is about the allergy
    ("这几天总是头晕，站久了更厉害，要紧吗", "zh", "dizziness", ["严重过敏"]),
])
def test_a_library_quote_never_stands_in_for_the_tip_nor_answers_another_question(ask, text, lang, topic, unwanted):
    answer = ask(text)[0]
    assert has_tip(answer["content"], topic, lang), answer["content"]
    assert not any(u in answer["content"] for u in unwanted), answer["content"]
    if QUOTED not in answer["content"]:
        assert answer["sources"] == [], answer  # the reply cites only what it quoted


def test_a_quote_from_a_list_of_signs_keeps_only_the_lines_on_the_question(ask):
    """A child's fever found the doctor article's list of signs: its fever lines are quoted, not
    belly pain, black stools, chest pain or stroke."""
    answer = ask("孩子发烧了")[0]
    assert caution("child_fever", "zh") in answer["content"]
    quote = answer["content"].partition(QUOTED)[2]
    assert quote and "发烧" in quote, answer["content"]
    assert not any(sign in quote for sign in ("胸痛", "中风", "呼吸困难", "腹痛", "大便发黑")), answer["content"]
    assert answer["sources"] == [{"id": "when-to-see-a-doctor", "title": "什么时候该去看医生"}]


def test_an_article_on_the_topic_asked_is_still_quoted_whole(ask):
    answer = ask("早上还是晚上量血压比较好？")[0]
    assert "《在家正确测血压》" in answer["content"] and "早上起床后 1 小时内测" in answer["content"], answer["content"]
    assert answer["sources"] == [{"id": "blood-pressure-at-home", "title": "在家正确测血压"}]
    answer = ask("最近睡不好，老是半夜醒")[0]  # insomnia, and the sleep article is `related`
    assert "《睡个好觉》" in answer["content"], answer["content"]


@pytest.mark.parametrize("texts,lang,wanted", [
    (["产后总是想哭"], "zh", "产后抑郁是能治好的"),
    (["I gave birth last month and I can't stop crying"], "en", "postnatal depression is treatable"),
    (["坐月子期间头疼得厉害", "能吃布洛芬吗"], "zh", "哺乳期吃任何药"),
])
def test_after_a_birth_the_caution_is_a_new_mothers(ask, texts, lang, wanted):
    replies = ask(*texts)
    assert wanted in replies[0]["content"], replies[0]["content"]  # (a caution is said once a session: session 19)
    for answer in replies:
        assert caution("pregnancy", lang) not in answer["content"], answer["content"]  # 胎动, 破水: not now


def test_pregnancy_keeps_its_own_caution(ask):
    reply = ask("怀孕五个月，最近老是头疼")[0]["content"]
    assert caution("pregnancy", "zh") in reply and "产后抑郁" not in reply, reply


@pytest.mark.parametrize("text,wanted,not_the_users", [
    ("My teenage daughter seems withdrawn lately", "When someone close seems low or withdrawn",
     ["you're feeling", "you've been feeling"]),
    ("儿子上高中以后总是闷闷不乐，回家也不爱说话", "家人情绪低落、不爱说话时", ["你最近感到", "听起来你"]),
    ("我妈妈最近记性越来越差", "老人记性变差", ["你最近感到", "听起来你"]),
])
def test_someone_the_user_speaks_of_is_not_read_as_the_user(ask, text, wanted, not_the_users):
    reply = ask(text)[0]["content"]
    assert wanted in reply, reply
    assert not any(words in reply for words in not_the_users), reply
    assert caution("child_fever", "zh") not in reply and caution("child_fever", "en") not in reply, reply


def test_a_users_own_low_mood_keeps_the_tips_for_the_user(ask):
    reply = ask("最近心情很低落，什么都提不起劲")[0]["content"]
    assert has_tip(reply, "low_mood", "zh") and "家人情绪低落" not in reply, reply


@pytest.mark.parametrize("first,follow,lang", [
    ("My stomach hurts and I have diarrhoea", "should I eat anything?", "en"),
    ("胃有点疼，还一直拉肚子", "那现在能吃东西吗", "zh"),
])
def test_a_follow_up_stays_with_a_complaint_the_question_before_named(ask, first, follow, lang):
    """The first answer was on the stomach; read with it, the follow-up is about the diarrhoea it
    named too, not a healthy plate of vegetables."""
    reply = ask(first, follow)[1]["content"]
    assert has_tip(reply, "diarrhoea", lang) or has_tip(reply, "stomach", lang), reply
    assert not has_tip(reply, "diet", lang), reply


# -- session 12 (OF3): the families session 11 left ---------------------------------------------------

def tip_text(topic, lang, **about):
    """The text of the tip of ``topic`` in ``lang`` written {when: ...} or {about: ...} as ``about`` says."""
    from test_offline_companion import TIPS
    key, value = next(iter(about.items()))
    return next(t["text"] for t in TIPS[topic]["tips"][lang] if isinstance(t, dict) and
                (value in t.get(key, ()) if key == "when" else t.get(key) == value))


@pytest.mark.parametrize("texts,lang", [
    (["流产快一个月了，月经还没来，正常吗"], "zh"),
    (["上周胎停做了清宫，现在还有一点出血", "能洗澡吗"], "zh"),
    (["流产两个月了，心里还是空空的", "什么时候可以再要孩子"], "zh"),  # the follow-up names the group itself
    (["I had a miscarriage ten days ago and I'm still spotting"], "en"),
])
def test_a_miscarriage_gets_its_own_caution_and_tip_not_a_pregnancy_or_a_period_one(ask, texts, lang):
    loss = "流产" if lang == "zh" else "miscarriage"
    for i, answer in enumerate(ask(*texts)):
        reply = answer["content"]
        variant = next(v for v in TIPS_CAUTION_VARIANTS() if loss in v["when"])
        assert (variant[lang] in reply) == (i == 0), reply  # said once a session (session 19, A21)
        # the tip on a miscarriage; on a follow-up, a word that it is the one above (not folic acid)
        assert tip_text("pregnancy", lang, when=loss)[:20] in reply or (i and "上面那条建议" in reply), reply
        assert caution("pregnancy", lang) not in reply, reply  # the baby's movements, waters breaking: not now
        assert "产后抑郁" not in reply and "postnatal depression" not in reply, reply
        assert not has_tip(reply, "periods", lang), reply


def TIPS_CAUTION_VARIANTS():
    from test_offline_companion import TIPS
    return TIPS["pregnancy"]["caution"]["variants"]


@pytest.mark.parametrize("text,lang", [
    ("I'm 12 weeks pregnant, can I still have my morning coffee?", "en"),
    ("Is an espresso a day too much while pregnant?", "en"),
])
def test_coffee_in_pregnancy_is_answered_on_caffeine_with_the_caution(ask, text, lang):
    reply = ask(text)[0]["content"]
    assert caution("pregnancy", lang) in reply and tip_text("caffeine", lang, when="pregnant") in reply, reply


@pytest.mark.parametrize("text,topic,lang,not_the_users", [
    ("my girlfriend has been really down since her exams, how can I support her?", "low_mood", "en", ["you're feeling"]),
    ("我男朋友最近心情很差，工作也丢了，我该怎么安慰他", "low_mood", "zh", ["你最近感到", "听起来你"]),
    ("我老婆最近工作压力特别大，我能为她做点什么", "stress", "zh", ["你最近感到", "听起来你"]),
    ("my 9 year old gets really anxious before tests, how can I help him?", "anxiety", "en", ["you're feeling"]),
])
def test_asking_how_to_help_someone_gets_the_tip_for_helping_them(ask, text, topic, lang, not_the_users):
    reply = ask(text)[0]["content"]
    assert tip_text(topic, lang, about="someone_else") in reply, reply
    assert not any(words in reply for words in not_the_users), reply
    assert caution("child_fever", lang) not in reply, reply  # a child's worry is no illness
    from test_offline_companion import TIPS
    assert TIPS[topic]["see_doctor"][lang] not in reply, reply  # the tip says when they need help; once is enough


def test_the_users_own_feeling_caused_by_someone_is_still_the_users(ask):
    reply = ask("my kids stress me out every evening, what can I do?")[0]["content"]
    assert has_tip(reply, "stress", "en") and tip_text("stress", "en", about="someone_else") not in reply, reply


def test_his_is_no_greeting(ask):
    reply = ask("he quit his job and sits at home all day")[0]["content"]
    assert not reply.startswith("Hi!") and "I'm your physical health companion" not in reply, reply


@pytest.mark.parametrize("texts,lang", [
    (["踢球的时候把脚崴了", "现在肿起来了怎么处理", "需要去医院拍片吗"], "zh"),
    (["I sprained my wrist falling off my bike", "it's swollen now, what do I do", "do I need to see a doctor?"], "en"),
])
def test_follow_ups_stay_on_the_sprain_without_repeating_a_tip_and_a_doctor_question_gets_the_signs(ask, texts, lang):
    from test_offline_companion import TIPS
    replies = [a["content"] for a in ask(*texts)]
    given = [next((t for t in (x if isinstance(x, str) else x["text"] for x in TIPS["joints"]["tips"][lang]) if t in r), None)
             for r in replies]
    assert all(given) and given[1] != given[2], replies
    assert TIPS["joints"]["see_doctor"][lang] in replies[2], replies[2]


@pytest.mark.parametrize("text,lang,wanted,unwanted", [
    # a running tip only to a runner; knees on stairs get the tip on worn knees
    ("我爸七十了，膝盖一下楼梯就疼", "zh", "上楼好腿先上", ["先停跑几天"]),
    ("my knees ache when I climb the stairs at work", "en", "go up with the better leg first", ["after running"]),
    # swelling late in pregnancy: the tip on it, with its pre-eclampsia signs
    ("怀孕七个多月，小腿和脚都浮肿了", "zh", "子痫前期", ["叶酸", "孕吐"]),
    ("34 weeks pregnant and my ankles are so swollen by the evening", "en", "pre-eclampsia", ["folic acid", "morning sickness"]),
])
def test_the_tip_fits_who_asks_and_what_hurts(ask, text, lang, wanted, unwanted):
    reply = ask(text)[0]["content"]
    assert wanted in reply and not any(u in reply for u in unwanted), reply


def test_a_quote_on_when_to_see_a_doctor_is_not_followed_by_the_same_advice_nor_a_disclaimer(ask):
    answer = ask("晚上老是做梦，睡不踏实，怎么办")[0]
    from test_offline_companion import TIPS
    if "「什么时候该看医生」" in answer["content"]:
        assert TIPS["sleep"]["see_doctor"]["zh"] not in answer["content"], answer["content"]
    assert "本文是一般健康知识" not in answer["content"], answer["content"]


@pytest.mark.parametrize("text,topic,lang", [
    # the safety classifier may check in on these; the feeling's own topic named in words still gets its tip
    ("搬来这边半年了，一个朋友都没有，下了班就一个人在屋里待着", "loneliness", "zh"),
    ("some weeks I barely talk to anyone except the delivery guy", "loneliness", "en"),
    ("I snapped at my sister again this morning over nothing", "anger", "en"),
])
def test_loneliness_and_temper_named_in_words_get_their_tip(ask, text, topic, lang):
    reply = ask(text)[0]["content"]
    assert has_tip(reply, topic, lang), reply


@pytest.mark.parametrize("texts,lang,wanted", [
    # nausea in pregnancy is morning sickness, on the first message and on a follow-up that names no topic
    (["怀孕六周，一闻到油烟味就恶心", "那平时吃什么好"], "zh", "孕吐时少量多餐"),
    (["9 weeks pregnant and throwing up every morning", "anything I can eat?"], "en", "For morning sickness"),
])
def test_nausea_in_pregnancy_is_morning_sickness_and_the_follow_up_does_not_get_it_twice(ask, texts, lang, wanted):
    first, follow = (a["content"] for a in ask(*texts))
    assert wanted in first and not has_tip(first, "stomach", lang), first
    assert not has_tip(follow, "stomach", lang) and follow.count(wanted) == 0, follow
    assert ("上面那条建议" if lang == "zh" else "the tip above") in follow, follow


def test_a_stomach_follow_up_asking_about_a_doctor_gets_another_tip_and_the_signs(ask):
    from test_offline_companion import TIPS
    first, follow = (a["content"] for a in ask("肚子上面那块胃疼，吃完饭更明显", "需要去医院看看吗"))
    given = [t for t in TIPS["stomach"]["tips"]["zh"] if isinstance(t, str) and t in first]
    assert given and given[0] not in follow, (first, follow)
    assert TIPS["stomach"]["see_doctor"]["zh"] in follow, follow


@pytest.mark.parametrize("text,lang,child", [
    # an age given outside a small child's takes the person out of the group, both ways
    ("my daughter is 15 and gets awful period pain", "en", False),
    ("my son is 32 and has had a cough for a week", "en", False),
    ("儿子16岁了，最近老是头疼", "zh", False),
    ("my son is 4 and has had a fever since last night", "en", True),
])
def test_a_childs_caution_goes_with_a_childs_age(ask, text, lang, child):
    reply = ask(text)[0]["content"]
    assert (caution("child_fever", lang) in reply) == child, reply

