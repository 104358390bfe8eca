"""Older adults, their carers and grandparents (session 18, OFFRS), through the served app with the shipped
config: a grandchild's fever is a child's; an in-law or grown children living away are no patient child; an age
the writer gives themself (我今年七十一，…; in my eighties) puts them in the older group; what "the old folk say"
is a saying, not an older patient; how much sleep an age needs is the sleep topic's, not insomnia's; thirst that
no longer comes is dehydration; hearing that fades with age and night-time trips told with a count are the older
group's. The sentences are fresh (none is a line of the tips file or a bench set)."""

import pytest

from test_offline_companion import TIPS, caution, has_tip, talk  # noqa: F401 (talk is a fixture)


def tip(topic, lang, words):
    """The one tip of ``topic`` in ``lang`` written for ``words`` (its `when`), by a phrase of its text."""
    found = [t["text"] for t in TIPS[topic]["tips"][lang] if isinstance(t, dict) and words in t["text"]]
    assert len(found) == 1, (topic, lang, words)
    return found[0]


@pytest.mark.parametrize("text,lang", [
    ("外孙女昨天开始发烧，三十八度六，还有点咳嗽，要不要带她去医院", "zh"),
    ("my granddaughter is with us this week and she's come down with a fever of 38.5 and a runny nose", "en"),
])
def test_a_grandchilds_fever_is_a_childs(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert caution("child_fever", lang) in reply, reply
    assert has_tip(reply, "child_fever", lang), reply


@pytest.mark.parametrize("text,lang", [
    ("我都七十了，外孙女今天烧到三十九度，咳得也厉害，我一个人带着有点慌", "zh"),
    ("I'm 69 and my grandson is with me today, he's hot and grizzly with a cough, 38.7 on the thermometer", "en"),
])
def test_a_grandparent_giving_their_own_age_still_tells_of_a_childs_fever(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert caution("child_fever", lang) in reply, reply


@pytest.mark.parametrize("text,lang", [
    ("my son-in-law has had a streaming cold all week, how long is it catching", "en"),
    ("孩子们都在国外，过年也回不来，我这几天老是咳嗽", "zh"),
])
def test_an_in_law_or_grown_children_away_are_no_patient_child(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert caution("child_fever", lang) not in reply, reply


def test_an_in_law_who_is_expecting_is_a_pregnancy(talk):
    reply = talk("physical", "my daughter-in-law is expecting, is it true she should avoid lifting her arms")[0]["content"]
    assert caution("pregnancy", "en") in reply, reply
    assert caution("child_fever", "en") not in reply, reply


@pytest.mark.parametrize("text,lang,older", [
    ("我今年七十二，最近走路老觉得腿没劲，怕摔", "zh", True),
    ("我八十了，腿脚一天不如一天", "zh", True),
    ("I'm in my eighties and my legs feel wobbly on the stairs", "en", True),
    ("今年三月开始腰疼，一直没好", "zh", False),
])
def test_an_age_the_writer_gives_themself(talk, text, lang, older):
    reply = talk("physical", text)[0]["content"]
    assert (caution("elderly", lang) in reply) is older, reply


def test_what_the_old_folk_say_is_a_saying_not_an_older_patient(talk):
    reply = talk("physical", "老人常说吃西瓜伤胃，胃不好的人是不是一点都不能吃")[0]["content"]
    assert caution("elderly", "zh") not in reply, reply


@pytest.mark.parametrize("text,lang", [
    ("上了年纪觉就少了吗？我现在五点就醒，白天也不困", "zh"),
    ("do older people need less sleep? I'm up with the birds every day now and feel fine", "en"),
])
def test_the_sleep_an_age_needs_is_sleep_not_insomnia(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, "sleep", lang), reply
    assert not has_tip(reply, "insomnia", lang), reply


@pytest.mark.parametrize("text,lang", [
    ("我奶奶八十五了，一天喝不了两口水，问她就说不渴", "zh"),
    ("my grandad hardly drinks anything, he says he's just not thirsty", "en"),
])
def test_thirst_that_no_longer_comes_is_dehydration(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, "hydration", lang), reply


@pytest.mark.parametrize("text,lang,words", [
    ("我妈耳朵背得厉害，打电话老是听岔，要不要给她配个助听器", "zh", "助听器"),
    ("Dad's getting hard of hearing and won't admit it, how do I get him to a hearing test", "en", "hearing aids"),
])
def test_hearing_that_fades_with_age_gets_its_tip(talk, text, lang, words):
    reply = talk("physical", text)[0]["content"]
    assert tip("elderly", lang, words) in reply, reply
    assert caution("elderly", lang) in reply, reply


def test_night_time_trips_told_with_a_count(talk):
    reply = talk("physical", "我爷爷八十一了，夜里要起来上四五次厕所，睡不好")[0]["content"]
    assert tip("elderly", "zh", "起夜") in reply, reply


# -- food beliefs, naps, typos and check-ins (session 18, OFFRS) ----------------------------------------

@pytest.mark.parametrize("text,lang,words", [
    ("家里人说吃羊肉容易上火，冬天进补到底该怎么吃", "zh", "上火、湿气"),
    ("my aunt swears a detox juice week cleans out your system, real or a myth?", "en", "Food beliefs"),
])
def test_a_food_belief_gets_the_food_beliefs_tip(talk, text, lang, words):
    reply = talk("physical", text)[0]["content"]
    assert tip("diet", lang, words) in reply, reply


def test_a_food_belief_beside_a_complaint_is_the_complaints(talk):
    reply = talk("physical", "这两天牙龈肿了，一碰就疼，是不是上火了")[0]["content"]
    assert tip("diet", "zh", "上火、湿气") not in reply, reply


@pytest.mark.parametrize("text,lang", [
    ("is it bad to doze off on the sofa every evening after tea", "en"),
    ("每天中午在办公室打盹二十分钟，对身体好吗", "zh"),
])
def test_a_nap_in_other_words_is_sleep(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, "sleep", lang) or has_tip(reply, "insomnia", lang), reply


def test_blood_sugars_pinyin_slip_is_blood_sugar(talk):
    reply = talk("physical", "我爸雪糖有点高，早上空腹测了7.8，要紧吗")[0]["content"]
    assert has_tip(reply, "blood_sugar", "zh"), reply


def test_electrolyte_sachets_are_dehydrations(talk):
    reply = talk("physical", "worked outside all day in the heat and barely drank, should I take an electrolyte sachet")[0]["content"]
    assert has_tip(reply, "hydration", "en"), reply


# -- the new patterns stay linear on hostile input ------------------------------------------------------

@pytest.mark.parametrize("unit", ["she is expecting ", "'s expecting ", "老人说", "今年七十", "我七十", "in my seventies ",
                                  "my daughter in law ", "孩子们都", "is it actually that bad "])
def test_a_flood_of_the_new_patterns_words_costs_work_in_proportion_to_its_length(unit):
    """Each new pattern is one bounded search per message read: four times the text costs about four times the
    CPU (conftest.assert_linear), not sixteen."""
    from conftest import ROOT as _, assert_linear  # noqa: F401  (the plugins package is importable once conftest ran)
    from wellmate_plugins.provider_offline import NORM_QUESTION, Reading, compile_tips, normalize
    from test_offline_companion import ROOT
    import yaml

    guide = compile_tips(yaml.safe_load((ROOT / "prompts" / "offline_tips.yaml").read_text(encoding="utf-8")))
    assert_linear(lambda text: (Reading(guide, text), NORM_QUESTION.search(text)), lambda n: normalize((unit * n)[:n]))
