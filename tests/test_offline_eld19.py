"""Older people, carers and the chronically ill in a conversation (session 19, audit A21), through the served
app with the shipped config, in sessions of 3-5 turns. The sentences are not A21's: the fixes are for why it
went wrong (a group's caution said on every turn, an elder's session keeping its own tips over a dose question,
a thank-you met with cheer, children named with no complaint of theirs, a dementia carer's question read as the
carer's own loss, a long-term condition not taken into account). Figures: NOTES-ELD.md."""

import re

import pytest

from test_offline_companion import caution, has_tip, talk, tips  # noqa: F401 (talk is a fixture)
from wellmate_plugins._reply_emotion import closing_label, thanks_only

CHEER = re.compile(r"真为你高兴|太好了|心情这么好|好心情|So glad|glad to hear|That's wonderful|great news", re.I)
CONDOLENCE = re.compile(r"节哀|sorry for your loss|sorry you're going through this loss|失去重要的人|Losing someone you love")


@pytest.mark.parametrize("lang,texts", [
    ("zh", ["我姥爷八十三了，这阵子吃饭老呛", "他高血压的药早上没吃，这会儿还要补吗？", "那晚上两顿一块儿吃行不行", "好嘞谢谢"]),
    ("en", ["My nan is 90 and has been off her food", "She forgot her morning tablets, should she still take them now?",
            "Is it ok to just double up tonight?", "cheers"]),
])
def test_an_elders_caution_is_said_once_and_a_dose_question_gets_the_missed_dose_tip(talk, lang, texts):
    replies = [r["content"] for r in talk("physical", *texts)]
    assert caution("elderly", lang) in replies[0], replies[0]
    assert not any(caution("elderly", lang) in r for r in replies[1:]), replies
    missed = next(t for t in tips("medicines", lang) if t.startswith(("漏吃", "A missed")))
    assert missed in replies[1], replies[1]
    for i, reply in enumerate(replies[2:], 2):  # the missed-dose tip not word for word again (a pointer back instead)
        assert missed not in reply or "这条建议说到了这一点" in reply or "this tip covers that" in reply, reply


@pytest.mark.parametrize("lang,texts", [
    ("zh", ["我公公有帕金森，晚上睡不踏实", "医生开的安眠药半片不管用，我想给他加到一片行吗"]),
    ("en", ["My grandad is 86 and wakes up every hour at night", "Could I give him an extra half of his sleeping tablet?"]),
])
def test_changing_a_dose_oneself_is_for_the_prescriber(talk, lang, texts):
    reply = talk("physical", *texts)[1]["content"]
    rule = next(t for t in tips("medicines", lang) if t.startswith(("药量不要自己加减", "Don't change a prescribed dose")))
    assert rule in reply, reply


@pytest.mark.parametrize("agent,texts", [
    ("physical", ["我妈最近总说胸口闷，我很担心她", "她有冠心病，一直在吃药", "谢谢你"]),
    ("physical", ["I'm really worried about my dad, he's been so breathless lately", "He's 77 and has a pacemaker",
                  "thank you so much"]),
    ("mental", ["我最近心里特别难受，照顾我爸快撑不住了", "谢谢你听我说"]),
])
def test_a_thank_you_gets_a_warm_plain_close_not_cheer(talk, agent, texts):
    replies = talk(agent, *texts)
    last = replies[-1]
    assert not CHEER.search(last["content"]), last["content"]
    assert last["emotion"] not in ("happy", "encouraging"), last
    assert len(last["content"].split("\n\n")[0]) < 120, last["content"]  # a close, not another tip


def test_thanks_only_and_its_label():
    for text in ["谢谢", "好的，谢谢你", "谢谢你陪我聊", "Thanks, that's really helpful", "ok thank you", "cheers!"]:
        assert thanks_only(text), text
    for text in ["谢谢领导，又排我夜班", "thanks but my knee still hurts", "谢谢，那我明天还要去复查吗", "thanks for nothing"]:
        assert not thanks_only(text), text
    assert closing_label("anxious") == "caring" and closing_label(None) == "neutral" and closing_label("happy") == "happy"


@pytest.mark.parametrize("lang,texts", [
    ("zh", ["复查结果出来了，医生说肿瘤又长大了", "我怕孙子们知道了难过", "我该怎么跟他们说"]),
    ("en", ["My scan showed the cancer has spread to my liver", "My kids are only teenagers and I haven't told them",
            "How do I even start that conversation?"]),
])
def test_children_named_with_no_complaint_of_theirs_bring_no_caution(talk, lang, texts):
    replies = [r["content"] for r in talk("mental", *texts)]
    assert not any(caution("child_fever", lang) in r for r in replies), replies


@pytest.mark.parametrize("lang,texts,tip_start", [
    ("en", ["My wife has Alzheimer's and doesn't always know me now",
            "She keeps asking when her dad is coming to pick her up, he died in the 80s",
            "Some nights I'm glad when she finally falls asleep and then I feel awful about it"], "When someone with dementia asks"),
    ("zh", ["我爸有阿尔茨海默，现在连我都认不全了", "他老问我奶奶怎么还不来看他，我奶奶去世二十年了",
            "每到下午四五点他就特别躁，来回走"], "痴呆的老人找早已去世的父母"),
])
def test_a_dementia_carers_questions_get_carers_answers_not_condolence(talk, lang, texts, tip_start):
    replies = [r["content"] for r in talk("mental", *texts)]
    assert not any(CONDOLENCE.search(r) for r in replies), replies
    assert tip_start in replies[1], replies[1]
    assert "离线" not in replies[2] and "beyond what I can answer offline" not in replies[2], replies[2]
    assert has_tip(replies[2], "elderly", lang), replies[2]


@pytest.mark.parametrize("lang,texts,must,must_not", [
    ("zh", ["我是糖尿病人，大脚趾旁边磨了个口子，十来天了还是湿的"], "糖尿病足", "薄涂一层凡士林"),
    ("en", ["I'm diabetic and there's a sore on my heel that hasn't healed in two weeks"], "diabetes foot clinic", "petroleum jelly"),
    ("en", ["Mum has heart failure", "how much fluid should she have each day?"], "your doctor's call", "7–8 glasses"),
    ("zh", ["我是2型糖尿病，今天早上空腹测了13.2"], "已经确诊糖尿病", "是否是糖尿病要由医生诊断"),
    ("en", ["I've got emphysema and walking to the bus leaves me puffed", "is that normal?"], "pursed-lip", "coffee"),
    ("zh", ["我腰疼一直在吃双氯芬酸", "我以前得过胃溃疡"], "伤胃黏膜", None),
])
def test_a_named_condition_is_taken_into_account(talk, lang, texts, must, must_not):
    replies = [r["content"] for r in talk("physical", *texts)]
    assert any(must in r for r in replies), replies
    if must_not:
        assert not any(must_not in r for r in replies), replies
