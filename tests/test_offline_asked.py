"""The offline companion answers the question asked (session 16, OFFA), through the served app with the
shipped config: what the asking clause asks over the context the message tells; the topic of a turn the
safety plugin checked in on chosen as on any turn; a healthy resting heart rate; a baby's diarrhoea with
its own tip and caution; no loss read into a figure of speech; no library article for a phone that
crashed. Sentences written for these tests, not taken from the bench sets."""

import pytest

from test_library import ask, library, site  # noqa: F401 (fixtures)
from test_offline_companion import TIPS, caution, has_tip, talk  # noqa: F401 (talk is a fixture)


@pytest.mark.parametrize("lang,text", [("en", "What's a normal resting heart rate for someone my age?"),
                                       ("zh", "静息心率多少算正常")])
def test_a_healthy_resting_heart_rate_gets_the_range(talk, lang, text):
    reply = talk("physical", text)[0]["content"]
    assert "60–100" in reply, reply


def gut_caution(lang):
    return TIPS["child_fever"]["caution"]["variants"][0][lang]


@pytest.mark.parametrize("lang,text,nappies,adult", [
    ("en", "my 7 month old has had runny poo all day", "nappies", "You don't need to starve"),
    ("zh", "宝宝八个月，今天拉稀拉了四次", "尿布", "不用饿着，能吃就吃清淡好消化的东西"),
])
def test_a_babys_diarrhoea_gets_its_own_tip_and_caution_not_the_adults(talk, lang, text, nappies, adult):
    reply = talk("physical", text)[0]["content"]
    assert gut_caution(lang) in reply and nappies in reply, reply
    assert adult not in reply and caution("child_fever", lang) not in reply, reply


@pytest.mark.parametrize("lang,text", [("zh", "孩子三岁，烧到39度，还吐了两次"),
                                       ("en", "my 2 year old has a temperature of 38.9 and was sick twice")])
def test_a_childs_vomiting_beside_a_fever_keeps_the_fevers_caution(talk, lang, text):
    reply = talk("physical", text)[0]["content"]
    assert caution("child_fever", lang) in reply and gut_caution(lang) not in reply, reply


@pytest.mark.parametrize("text", ["we nearly died laughing at the wedding speeches",
                                  "I'm dying to try the new pool at the leisure centre"])
def test_death_as_a_figure_of_speech_gets_no_grief_tip(talk, text):
    reply = talk("physical", text)[0]["content"]
    assert not has_tip(reply, "grief", "en"), reply


def test_a_phone_that_crashed_gets_no_library_article(site):
    served, user, _ = site()
    for text in ("我的手机死机了", "my laptop froze again"):
        answer = ask(served.client, user, text)
        assert not answer["sources"], answer


@pytest.mark.parametrize("lang,text,topic,not_topic", [
    # the asking clause over the context told
    ("zh", "上夜班老是半夜饿，夜宵吃点啥好", "diet", None),
    ("en", "the nurse said my blood pressure was a bit high, do I need to see someone or is it the energy drinks?",
     "blood_pressure", "caffeine"),
    ("en", "I work in a hot warehouse and get headaches by the afternoon, am I not drinking enough?", "hydration", None),
    # a time told, not insomnia; an ache placed in the head; a cut asked after; an animal that sets eyes off
    ("en", "I keep waking up with a stiff neck, is it my pillow?", "sitting", "insomnia"),
    ("en", "I get a dull pain at the back of my head every afternoon, what can I do?", "headache", None),
    ("en", "caught my arm on a nail yesterday and it looks infected now", "wounds", None),
    ("en", "my eyes go puffy and itchy whenever I'm near my sister's cat", "allergies", "eyes"),
    ("zh", "孩子咳了一个星期了，晚上老咳醒", "cough", None),
    # 不容易 opening its clause is a purpose (no sleepiness told); after other words it is "hard to"
    ("zh", "上晚班的时候吃点什么零食好，不容易犯困？", "diet", "fatigue"),
    ("zh", "我怎么减都不容易瘦下来，是不是代谢慢", "weight", None),
    # a pain told outranks the setting's words; a misspelt complaint beside a habit's word
    ("en", "my lower back aches after a whole day sitting at my desk, any stretches?", "back_pain", "sitting"),
    ("en", "my stomache hurts after every meal lately, what can I do?", "stomach", "diet"),
    # a topic giving way on words of its setting: sleeping in, nerves before an event
    ("en", "retired last year and I still wake at 6 sharp, how do I learn to sleep in?", "sleep", "insomnia"),
    ("en", "my heart pounds every time before a presentation at work, how do I calm down?", "anxiety", "palpitations"),
    # quitting with no object; a reaction after something eaten; whether a means works for the goal told
    ("en", "I vape all day at my desk job, how do I quit?", "smoking", None),
    ("zh", "每天抽一包烟，老婆让我戒，想戒又戒不掉", "smoking", None),
    ("en", "my lips tingled and swelled after eating peanuts at lunch", "allergies", None),
    ("zh", "想减点肥，晚上去游泳有用吗", "weight", None),
])
def test_the_question_asked_gets_its_topics_tip(talk, lang, text, topic, not_topic):
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, topic, lang), reply
    assert not_topic is None or not has_tip(reply, not_topic, lang), reply


def test_a_follow_up_guessing_at_a_cause_stays_on_the_complaint(talk):
    """"could it be the blood pressure tablets…?" names blood pressure, but guesses at the dizziness's cause:
    on a turn the safety plugin checks in on too (pills), the topic is chosen as on any turn."""
    replies = talk("physical", "I get lightheaded when I stand up quickly",
                   "could it be the blood pressure tablets I just started?")
    assert has_tip(replies[1]["content"], "dizziness", "en"), replies[1]["content"]
    assert not has_tip(replies[1]["content"], "blood_pressure", "en"), replies[1]["content"]


@pytest.mark.parametrize("text,topic", [
    ("working from home means I hardly see anyone all week, how do people stay connected?", "loneliness"),
    # offline_J's (development data now), which the safety plugin checks in on: the topic model's sure topic
    ("working nights means I basically never see my friends anymore, how do people on shifts keep a social life",
     "loneliness"),
])
def test_an_everyday_question_a_check_in_follows_still_gets_its_topic(talk, text, topic):
    reply = talk("physical", text)[0]["content"]
    assert has_tip(reply, topic, "en"), reply


def test_a_loss_told_beside_days_alone_gets_condolence_and_a_loneliness_tip(talk):
    from wellmate_plugins.provider_offline import CONDOLENCE
    reply = talk("physical", "my husband died in spring and since then I live alone and feel so lonely, what can I do?")[0]["content"]
    assert any(line in reply for line in CONDOLENCE["en"]) and has_tip(reply, "loneliness", "en"), reply
