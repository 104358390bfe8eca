"""Follow-ups to the offline companion (issue 12, point 3), through the served app with the shipped
config: a second message in a session stays on the session's topic when it continues it (a vague
question, a symptom the complaint includes, "should I be worried?"), takes the topic the earlier
reply actually answered (the topic model's too), and still moves on when it changes the subject.
Figures: bench/offline --file tests/data/offline_followups.tsv (and _held.tsv)."""

import pytest

from test_offline_companion import caution, has_tip, talk  # noqa: F401 (talk is a fixture)


# (session's topic, the follow-up's topic, lang, first message, follow-up, a topic it must not get)
FOLLOW_UPS = [
    # its words name another topic (eyes, anxiety), but it continues the session's
    ("allergies", "allergies", "zh", "花粉季一到就狂打喷嚏", "眼睛也有点痒", "eyes"),
    ("dizziness", "dizziness", "en", "I get woozy every time I get out of bed", "things look blurry for a second", "eyes"),
    ("teeth", "teeth", "en", "my gums have been bleeding a bit lately", "should I be worried?", "anxiety"),
    # its subject is the complaint ("they", "it"), another topic's word a circumstance (session 14)
    ("eyes", "eyes", "en", "my eyes feel gritty after staring at screens all day", "they sting a lot when I try to sleep",
     "insomnia"),
    ("joints", "joints", "en", "I jammed my finger playing volleyball", "there's a hard bump on the side of it now", "skin"),
    ("joints", "joints", "en", "I went over on my ankle on the stairs", "still can't bear weight on it this morning", "weight"),
    # ...but not when the new word comes first: "my stomach, it burns" is the stomach
    ("joints", "stomach", "en", "my knee aches after running", "also my stomach, it burns after every meal", "joints"),
    # it changes the subject, saying so or plainly about something else
    ("joints", "caffeine", "zh", "膝盖扭了一下，有点肿", "那顺便问下，每天喝几杯咖啡算多", "joints"),
    ("water", "low_mood", "en", "how many glasses of water is enough", "also I've been feeling pretty down lately", "water"),
    ("joints", "caffeine", "en", "my knee is sore after hiking", "by the way, is it ok to drink coffee every day?", "joints"),
]


@pytest.mark.parametrize("first_topic,topic,lang,first,follow,wrong_topic", FOLLOW_UPS)
def test_a_follow_up_gets_the_topic_it_is_about(talk, first_topic, topic, lang, first, follow, wrong_topic):
    replies = talk("physical", first, follow)
    assert has_tip(replies[0]["content"], first_topic, lang), replies[0]["content"]
    reply = replies[1]["content"]
    assert has_tip(reply, topic, lang) and not has_tip(reply, wrong_topic, lang), reply


def test_the_session_is_on_the_topic_the_earlier_reply_answered(make_wm, serve):
    """The first question's topic comes from the topic model (no keyword names it); the follow-up
    stays on it. (Without the crisis classifier, whose check-in turns name the feeling back.)"""
    client = serve(make_wm({"safety": {"model": ""}})).client
    token = client.register()["access_token"]
    first = client.post("/api/v1/health/physical/chat", {"text": "整个人绷着，下了班也松不下来"}, token=token).json
    assert has_tip(first["content"], "stress", "zh"), first["content"]
    reply = client.post("/api/v1/health/physical/chat", {"text": "有什么好办法吗", "session_id": first["session_id"]},
                        token=token).json["content"]
    assert has_tip(reply, "stress", "zh"), reply


@pytest.mark.parametrize("lang,first,follow", [
    ("en", "I keep waking up at 4am and lie there for hours", "does it matter?"),
])
def test_a_vague_follow_up_the_safety_plugin_checks_in_on_still_answers_the_complaint(talk, lang, first, follow):
    replies = talk("physical", first, follow)
    assert has_tip(replies[1]["content"], "insomnia", lang), replies[1]["content"]


def test_a_cause_and_a_complaint_named_as_often_are_told_apart_by_the_model(talk):
    # 久坐 (sitting) and 腰 (back pain) are one keyword each: the topic model breaks the tie.
    reply = talk("physical", "久坐以后腰酸得直不起来")[0]["content"]
    assert has_tip(reply, "back_pain", "zh"), reply


# A special group the follow-up names (a child, the user's own age) brings its caution, also on a turn
# the safety plugin checks in on ("burning up"); "what about ...?" asks about the session's complaint.
GROUP_FOLLOW_UPS = [
    ("child_fever", "en", "this cough has dragged on for days", "now my 3 year old has it too and he's burning up"),
    ("elderly", "en", "I feel unsteady on my feet lately", "I'm 84, if that matters"),
]


@pytest.mark.parametrize("group,lang,first,follow", GROUP_FOLLOW_UPS)
def test_a_follow_up_naming_a_special_group_carries_its_caution(talk, group, lang, first, follow):
    reply = talk("physical", first, follow)[1]["content"]
    assert caution(group, lang) in reply, reply


def test_a_what_about_follow_up_stays_on_the_sessions_complaint(talk):
    replies = talk("physical", "bad heartburn after late dinners", "what about sleeping on more pillows?")
    assert has_tip(replies[1]["content"], "stomach", "en") and not has_tip(replies[1]["content"], "sleep", "en"), replies
