"""The offline companion on a child's or an older person's complaint (session 15, OFFL2), through the
served app with the shipped config: the complaint's tips with the group's caution, not the group's own
tips (a child's eczema got a fever tip when every itchy-rash tip named a medicine); the group's own tips
for what is the group's as such (a child's fever with another sign, an elder's falls); a person carried
or a job's rank brings no caution; a child's habits none either, unless the session named the child."""

import pytest

from test_offline_companion import caution, has_tip, talk  # noqa: F401 (talk is a fixture)


@pytest.mark.parametrize("lang,text,topic", [
    ("en", "my 5 year old has an itchy red rash on her arms, what can I do?", "skin"),
    ("zh", "孩子四岁，脸上起了一片红疹子，有点痒", "skin"),
    ("en", "my grandad is 80 and has had a chesty cough for two weeks", "cough"),
    ("zh", "我妈七十多了，膝盖上下楼梯就疼", "joints"),
])
def test_a_childs_or_an_elders_complaint_gets_its_tips_with_the_groups_caution(talk, lang, text, topic):
    group = "child_fever" if any(w in text for w in ("year old", "孩子")) else "elderly"
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, topic, lang), reply
    assert caution(group, lang) in reply, reply
    assert not has_tip(reply, "child_fever", lang), reply  # no fever tip for a rash


@pytest.mark.parametrize("lang,text", [("zh", "孩子两岁，半夜突然烧到39度，还有点咳嗽"),
                                       ("en", "my 3 year old has a cough and she's burning up tonight")])
def test_a_childs_fever_beside_another_sign_keeps_the_childs_own_tips(talk, lang, text):
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, "child_fever", lang) and caution("child_fever", lang) in reply, reply


@pytest.mark.parametrize("lang,text,words", [
    ("en", "my grandma is 84 and keeps falling over, how do we help her", ("falls assessment",)),
    ("zh", "我爸七十八了，最近走路不稳，腿没劲", ("跌倒风险评估",)),
])
def test_an_elders_falls_get_the_falls_tip(talk, lang, text, words):
    reply = talk("physical", text)[0]["content"]
    assert all(w in reply for w in words) and caution("elderly", lang) in reply, reply


@pytest.mark.parametrize("lang,text,topic", [
    ("en", "my back hurts from carrying my toddler around all day", "back_pain"),
    ("en", "I'm a senior nurse on nights and my eyes are always dry", "eyes"),
    ("zh", "孩子特别挑食，只吃肉不吃菜，怎么办", "diet"),
])
def test_a_person_carried_a_rank_or_a_childs_habit_bring_no_caution(talk, lang, text, topic):
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, topic, lang), reply
    assert caution("child_fever", lang) not in reply and caution("elderly", lang) not in reply, reply
