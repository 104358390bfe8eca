"""What a new user got from a running server in session 19 (audit A20), each wrong, fixed as a family (the kind of
message, in both languages), over HTTP with the shipped config: a baby's feeding is answered as feeding, not with
the fever doses; what to eat beside diabetes is the blood-sugar food tip; a serious diagnosis gets a word for the
hard news and what the guide can offer, never "out of scope"; a child's good news gets joy, no caution; a burn told
by its cause is a burn, eyes that will not stay open are tiredness, a machine's "eating" or dying battery and a
hard maths problem are no health question; a loss long past told as fine now gets a warm word on the memory, no
condolence; two feelings either side of a turn each keep their own cause; a calm user's reply is labelled calm.
The sentences are fresh (none is a line of the tips file or a bench set)."""

import pytest

from test_offline_companion import TIPS, caution, talk  # noqa: F401 (talk is a fixture)

FEVER = {lang: caution("child_fever", lang) for lang in ("zh", "en")}
OUT_OF_SCOPE = ("超出了我离线时能回答的范围", "beyond what I can answer offline")
CONDOLENCE = ("请节哀", "很抱歉你正在经历", "sorry for your loss", "going through this loss")


def lang_of(text):
    return "en" if text.isascii() else "zh"


def tip_with(topic, lang, words):
    found = [t["text"] for t in TIPS[topic]["tips"][lang] if isinstance(t, dict) and words in t["text"]]
    assert len(found) == 1, (topic, lang, words)
    return found[0]


@pytest.mark.parametrize("text", ["My 3 month old spits up a little after every feed, is that normal?",
                                  "our 7 week old brings up milk after most bottles",
                                  "宝宝两个月，喝完奶老是溢奶，要紧吗", "我家宝宝4个月，奶量一直上不去怎么办"])
def test_a_babys_feeding_gets_a_feeding_answer_and_no_fever_doses(talk, text):
    lang = lang_of(text)
    reply = talk("physical", text)[0]
    assert tip_with("child_fever", lang, "posseting" if lang == "en" else "溢奶") in reply["content"], reply
    assert FEVER[lang] not in reply["content"] and reply["emotion"] != "happy", reply


@pytest.mark.parametrize("text", ["my 2 month old has a temperature of 38.2 and is feeding less", "宝宝三个月，发烧38度，吃奶也少了"])
def test_a_babys_fever_beside_feeding_keeps_the_fever_caution(talk, text):
    # (a baby under 3 months at 38 °C or more gets the young_baby_fever red flag instead since session 21: hospital now,
    # no fever medicine before a doctor; never the feeding caution)
    content = talk("physical", text)[0]["content"]
    assert FEVER[lang_of(text)] in content or content.startswith("⚠️ A baby under 3 months"), content


@pytest.mark.parametrize("text", ["type 1 diabetic, what's a good bedtime snack to avoid lows?",
                                  "I've got type 2 diabetes, what can I eat when I'm peckish in the afternoon?",
                                  "我有2型糖尿病，下午饿了吃什么零食比较好？", "我爸有糖尿病，早饭吃什么好"])
def test_what_to_eat_beside_diabetes_is_the_blood_sugar_food_tip(talk, text):
    lang = lang_of(text)
    reply = talk("physical", text)[0]["content"]
    assert tip_with("blood_sugar", lang, "Snacks and meals" if lang == "en" else "加餐") in reply, reply


@pytest.mark.parametrize("text", ["what's a healthy snack for the afternoon?", "下午饿了吃什么零食比较健康？"])
def test_a_snack_question_without_a_condition_stays_healthy_eating(talk, text):
    lang = lang_of(text)
    reply = talk("physical", text)[0]["content"]
    assert "血糖" not in reply and "blood sugar" not in reply, reply


@pytest.mark.parametrize("text", ["医生说我爸是肺癌晚期，我们接下来该注意什么？", "我妈查出来胃癌，家里该怎么照顾她",
                                  "My wife was just diagnosed with ovarian cancer, what do we do now?",
                                  "I found out today my tumour is malignant. What should I ask the oncologist?"])
def test_a_serious_diagnosis_is_acknowledged_and_answered(talk, text):
    lang = lang_of(text)
    reply = talk("physical", text)[0]
    acknowledgement = TIPS["serious_illness"]["acknowledge"][lang]
    assert reply["content"].startswith(acknowledgement), reply
    assert not any(o in reply["content"] for o in OUT_OF_SCOPE) and reply["emotion"] in ("caring", "concerned"), reply


@pytest.mark.parametrize("text", ["how can I lower my risk of bowel cancer?", "怎么预防肝癌？"])
def test_a_question_on_preventing_cancer_gets_the_prevention_tip_without_condolence(talk, text):
    lang = lang_of(text)
    reply = talk("physical", text)[0]["content"]
    assert TIPS["serious_illness"]["acknowledge"][lang] not in reply, reply
    assert tip_with("serious_illness", lang, "lower the risk" if lang == "en" else "降低患癌") in reply, reply


def test_a_death_from_cancer_is_grief(talk):
    reply = talk("mental", "my uncle died of cancer last month and I keep crying")[0]["content"]
    assert any(c in reply for c in CONDOLENCE) and TIPS["serious_illness"]["acknowledge"]["en"] not in reply, reply


@pytest.mark.parametrize("text", ["哈哈哈 我儿子今天第一次叫爸爸了", "宝宝今天自己坐起来了，太开心了！",
                                  "lol our son took his first steps today!!", "so proud, my little girl read her first book on her own"])
def test_a_childs_good_news_gets_joy_and_no_caution(talk, text):
    reply = talk("mental", text)[0]
    assert FEVER[lang_of(text)] not in reply["content"] and reply["emotion"] == "happy", reply


@pytest.mark.parametrize("text,topic,words", [
    ("炒菜的时候被热油溅到手上，起了水泡", "wounds", "流动的凉水"),
    ("spilled boiling water on my hand making tea and it's blistering", "wounds", "cool running water"),
])
def test_a_burn_told_by_its_cause_gets_the_burn_tip(talk, text, topic, words):
    assert words in talk("physical", text)[0]["content"]


@pytest.mark.parametrize("text", ["连续上了三个夜班，眼睛都睁不开了", "two night shifts back to back and I can barely keep my eyes open"])
def test_eyes_that_will_not_stay_open_are_tiredness(talk, text):
    lang = lang_of(text)
    reply = talk("mental", text)[0]["content"]
    assert TIPS["fatigue"]["title"][lang] in reply and TIPS["eyes"]["title"][lang] not in reply, reply


@pytest.mark.parametrize("text", ["how do I kill the process in linux that's eating all my CPU", "这道数学题真是要了我的命，怎么都做不出来",
                                  "我的手机快没电了，要死机了", "my laptop battery is dying fast"])
def test_no_health_question_gets_no_tip_and_no_doctor(talk, text):
    reply = talk("mental", text)[0]["content"]
    assert not any(w in reply for w in ("tip", "建议：", "可以试试这样做", "小办法", "可以参考这一条", "去医院", "你感到很累")), reply


@pytest.mark.parametrize("text", ["My mum passed away ten years ago; today I cooked her soup recipe and smiled",
                                  "My grandmother died peacefully last year at 94; I'm doing okay",
                                  "我爷爷三年前去世了，今天去扫墓，心里有点难过，但现在挺平静的", "外婆走了好几年了，今天翻到她的照片，心里暖暖的"])
def test_a_loss_long_past_told_as_fine_now_gets_no_condolence(talk, text):
    reply = talk("mental", text)[0]["content"]
    assert not any(c in reply for c in CONDOLENCE), reply
    assert "刚失去亲人的头几周" not in reply and "In the first weeks after a death" not in reply, reply


@pytest.mark.parametrize("text", ["My dad died two years ago and I still can't get through a day without crying",
                                  "我妈妈昨天去世了，我不知道该怎么办"])
def test_a_loss_still_raw_or_fresh_gets_condolence(talk, text):
    reply = talk("mental", text)[0]["content"]
    assert any(c in reply for c in CONDOLENCE), reply


@pytest.mark.parametrize("text,first,later", [
    ("今天上班被老板骂了一顿，挺难受的，不过晚上和朋友吃了火锅，心情好多了", "工作让你感到很难受", "后来又好了一些，感到开心"),
    ("failed my exam this morning, gutted, but my sister took me out and I feel better", "you felt down", "and then happy"),
])
def test_two_feelings_either_side_of_a_turn_keep_their_own_causes(talk, text, first, later):
    reply = talk("mental", text)[0]["content"]
    assert first in reply and later in reply and reply.index(first) < reply.index(later), reply
    assert "让你感到开心" not in reply, reply  # the relief is never put on the work that hurt


@pytest.mark.parametrize("text", ["Did twenty minutes of meditation, feeling peaceful and settled now", "刚泡完脚，整个人都放松下来了，很平静"])
def test_a_calm_users_reply_is_labelled_calm(talk, text):
    assert talk("mental", text)[0]["emotion"] == "calm"
