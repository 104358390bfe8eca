"""What a reviewer got wrong from a running server in session 19, each fixed as a family, through the served app with
the shipped config: head lice and a first-aid kit get a tip; household chemicals mixed get "don't mix, fresh air, 120
or poison help"; someone else's tiredness asked about gets tips for them, not "you're feeling exhausted"; a routine
report of medicines taken is no happy news; a drink named beside a complaint is where it came on (palpitations after
red wine are the heart's); food to avoid beside a complaint is the complaint's; a gym beginner gets how often to go.
The sentences are fresh (none is a line of the tips file, a bench set or tests/data/fixo19)."""

import pytest

from test_offline_companion import TIPS, has_tip, talk  # noqa: F401 (talk is a fixture)


def tip(topic, lang, words):
    """The one tip of ``topic`` in ``lang`` with ``words`` in its text."""
    found = [t["text"] for t in TIPS[topic]["tips"][lang] if isinstance(t, dict) and words in t["text"]]
    assert len(found) == 1, (topic, lang, words)
    return found[0]


@pytest.mark.parametrize("text,lang", [
    ("儿子班上有人长头虱，他也一直挠头，怎么处理", "zh"),
    ("found nits in my son's hair this morning, what now", "en"),
])
def test_head_lice_get_the_wet_combing_tip(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert tip("skin", lang, "篦子" if lang == "zh" else "wet-comb") in reply, reply


@pytest.mark.parametrize("text,lang", [
    ("下个月去露营，急救箱里要放些什么", "zh"),
    ("what do I need in a first aid kit for a weekend trek", "en"),
])
def test_a_first_aid_kit_gets_its_list(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert tip("wounds", lang, "急救包" if lang == "zh" else "first-aid kit:") in reply, reply


@pytest.mark.parametrize("text,lang", [
    ("洁厕灵和漂白水兑在一起刷厕所会怎么样", "zh"),
    ("my flatmate mixed bleach and toilet cleaner in the bathroom, the smell is awful", "en"),
])
def test_cleaners_mixed_get_dont_mix_fresh_air_and_120(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert tip("chemicals", lang, "氯气" if lang == "zh" else "chlorine gas") in reply, reply
    assert "120" in reply


@pytest.mark.parametrize("text,lang", [
    ("my 16yo is wiped out every single day after school", "en"),
    ("my wife is always worn out these days, what could cause it", "en"),
    ("我儿子高二，每天回家都说累得不行", "zh"),
])
def test_someone_elses_tiredness_gets_tips_for_them_not_a_feeling_of_the_writer(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert tip("fatigue", lang, "家里人总喊累" if lang == "zh" else "someone close is always tired") in reply, reply
    assert "you're feeling" not in reply and "听起来你" not in reply, reply


@pytest.mark.parametrize("text,lang", [
    ("running after my twin toddlers all day, I'm completely drained", "en"),
    ("哄孩子睡觉哄到半夜，累得不行", "zh"),
])
def test_a_parents_own_tiredness_stays_theirs(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert not has_tip(reply, "fatigue", lang) or \
        tip("fatigue", lang, "家里人总喊累" if lang == "zh" else "someone close is always tired") not in reply, reply


@pytest.mark.parametrize("text", [
    "took my heart tablets after breakfast like the cardiologist said",
    "晚饭后的药按医生说的吃过了",
])
def test_a_routine_report_of_medicines_taken_is_no_happy_news(client, text):
    token = client.register()["access_token"]
    r = client.post("/api/v1/health/physical/chat", {"text": text}, token=token)
    assert r.status == 200, r.text
    assert r.json["emotion"] not in ("happy", "concerned"), r.json  # encouragement at most, no cheer nor alarm
    assert "How nice" not in r.json["content"] and "真好" not in r.json["content"], r.json
    session = client.get(f"/api/v1/health/sessions/{r.json['session_id']}", token=token).json
    messages = session["messages"]["items"] if isinstance(session["messages"], dict) else session["messages"]
    assert next(m for m in messages if m["role"] == "user")["emotion"] in ("neutral", "calm"), messages


@pytest.mark.parametrize("text,topic,lang", [
    ("my heart flips and races after a couple of glasses of prosecco", "palpitations", "en"),
    ("喝了点啤酒以后心慌得厉害", "palpitations", "zh"),
    ("how many glasses of wine a week is too many", "alcohol", "en"),
    ("我爸一顿能喝半斤白酒，这样多不多", "alcohol", "zh"),
])
def test_a_drink_named_beside_a_complaint_is_where_it_came_on(talk, text, topic, lang):
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, topic, lang), reply


@pytest.mark.parametrize("text,topic,lang", [
    ("acid reflux every evening after dinner, which foods should I stay away from", "stomach", "en"),
    ("吃完饭总是烧心，平时要忌口什么", "stomach", "zh"),
    ("my stomach's been a bit unsettled, what does a healthy diet look like", "diet", "en"),
])
def test_food_to_avoid_beside_a_complaint_is_the_complaints_question(talk, text, topic, lang):
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, topic, lang), reply


@pytest.mark.parametrize("text,lang", [
    ("started lifting last week, how often should I be training", "en"),
    ("刚开始去健身房，新手一周练几天", "zh"),
])
def test_a_gym_beginner_gets_how_often_to_go(talk, text, lang):
    reply = talk("physical", text)[0]["content"]
    assert tip("exercise", lang, "2–3") in reply, reply
