"""What a new user hit on the mental agent (audit A22, session 20), through the served app with the shipped config and no
network: a parent's question about a teenager's life (bullying, vaping, gaming, coming out, school refused, how to talk
about self-harm) got a child's fever doses or a quit plan for the parent; therapy (EMDR, what to tell a therapist, a
workbook) had no topic; someone staying sober got the drinking limits; a heavy heart got palpitations; a thank-you at
the end of a conversation another tip. Each reply here is checked for what it must say and what it must not."""

import pytest
import yaml

from test_offline_companion import ROOT, talk  # noqa: F401 (talk is a fixture)

TIPS = yaml.safe_load((ROOT / "prompts" / "offline_tips.yaml").read_text(encoding="utf-8"))["topics"]
FEVER_DOSES = {"zh": "退烧药（对乙酰氨基酚", "en": "Fever medicine (paracetamol"}
HOTLINE = "12356"


def tips(topic, lang):
    return [tip["text"] if isinstance(tip, dict) else tip for tip in TIPS[topic]["tips"][lang]]


def has_tip(reply, topic, lang):
    return any(tip in reply for tip in tips(topic, lang))


# -- a parent's question about a teenager: the teen topic, no fever doses --------------------------------------------

@pytest.mark.parametrize("text,lang,words", [
    ("我女儿在网上被同学骂，还被P了丑图发到群里。", "zh", "截图"),
    ("儿子在班里被几个同学孤立，午饭都一个人吃", "zh", "班主任"),
    ("How to make my daughter stop vaping?", "en", "nicotine"),
    ("我儿子15岁，最近一直在偷偷抽电子烟，我该怎么跟他谈？", "zh", "尼古丁"),
    ("my son is 13 and plays roblox till 2am on school nights", "en", "limits"),
    ("How should I talk to my teenager about self-harm in general?", "en", "doesn't put ideas"),
    ("my kid refuse going to school this week, he just cry in the morning", "en", "won't go to school"),
    ("儿子说他喜欢男生，我该怎么回应他", "zh", "谢谢你告诉我")])
def test_a_parents_question_about_a_teen_gets_a_parents_answer_and_no_fever_doses(talk, text, lang, words):
    reply = talk("mental", text)[0]["content"]
    assert has_tip(reply, "teen", lang) and words in reply, reply
    assert FEVER_DOSES[lang] not in reply, reply
    assert not has_tip(reply, "smoking", lang), reply  # no "set a quit date" for the parent


def test_the_follow_ups_of_a_bullied_daughter_stay_with_her_and_never_turn_to_a_fever(talk):
    replies = talk("mental", "我女儿在网上被同学骂，还被P了丑图发到群里。", "她现在不想去上学了", "我心里很难受")
    for reply in replies:
        assert FEVER_DOSES["zh"] not in reply["content"], reply["content"]
        assert not has_tip(reply["content"], "child_fever", "zh"), reply["content"]


def test_a_grieving_son_is_no_patient_when_the_topic_model_reads_the_loss(talk):
    # no keyword names the loss ("killed himself"): the topic model's grief, and the son named, brought the fever doses
    reply = talk("mental", "My son's friend killed himself last year; how do I support my son on the anniversary?")[0]["content"]
    assert FEVER_DOSES["en"] not in reply, reply
    assert has_tip(reply, "grief", "en"), reply


@pytest.mark.parametrize("text,lang,topic", [
    ("我女儿3岁，今天发烧到38.9度", "zh", "child_fever"),          # a child's fever keeps its doses
    ("my 2 year old has a fever of 39, what can I give him", "en", "child_fever"),
    ("I vape all the time and want to stop, where do I start", "en", "smoking"),   # one's own vaping: the quit plan
    ("孩子出生以后我又开始抽烟了，想戒掉", "zh", "smoking"),             # the parent's smoking, the child named before it
    ("我儿子一直劝我戒烟，我该从哪开始", "zh", "smoking"),
    ("how many hours of sleep does a teenager need?", "en", "sleep"),  # a teen named as where a question comes from
    ("my teenager has bad acne on his forehead", "en", "skin")])
def test_look_alikes_keep_their_topic(talk, text, lang, topic):
    reply = talk("mental", text)[0]["content"]
    assert has_tip(reply, topic, lang) or (topic == "child_fever" and FEVER_DOSES[lang] in reply), reply
    assert not has_tip(reply, "teen", lang), reply


def test_a_parents_own_smoking_beside_a_son_brings_no_fever_doses_on_a_checked_in_turn_either(talk):
    # (the safety plugin checks in on this one, in session 20: its gentle reply named the group as any reply did)
    reply = talk("mental", "我儿子说要帮我戒烟，把我的烟都藏起来了，我真的想戒")[0]["content"]
    assert FEVER_DOSES["zh"] not in reply, reply


# -- therapy and recovery ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,lang", [
    ("Is EMDR safe? My therapist suggested it.", "en"), ("What should I tell my therapist?", "en"),
    ("My PTSD workbook asks me to list safe places", "en"), ("my counselor says I should journal, I hate writing", "en"),
    ("明天第一次去做心理咨询，有点不知道该说什么", "zh"), ("认知行为治疗的作业太多了，做不完", "zh")])
def test_a_question_about_therapy_gets_the_therapy_topic(talk, text, lang):
    reply = talk("mental", text)[0]["content"]
    assert has_tip(reply, "therapy", lang), reply
    assert not has_tip(reply, "caffeine", lang) and HOTLINE not in reply, reply


@pytest.mark.parametrize("text,lang", [("I had physical therapy for my knee, it still hurts going downstairs", "en"),
                                       ("my speech therapist says my stammer is improving, should I keep up the exercises", "en")])
def test_a_physiotherapist_or_a_lamp_is_no_talking_therapy(talk, text, lang):
    reply = talk("mental", text)[0]["content"]
    assert not has_tip(reply, "therapy", lang), reply


@pytest.mark.parametrize("text,lang,words", [
    ("我在戒酒，已经半年了，想找点新的爱好。", "zh", "戒酒这条路"),
    ("8 months sober now, what do people do on friday nights?", "en", "Staying off alcohol")])
def test_one_staying_off_alcohol_gets_support_not_limits(talk, text, lang, words):
    reply = talk("mental", text)[0]["content"]
    assert words in reply, reply
    assert "15 克" not in reply and "15 g of alcohol" not in reply, reply


def test_one_asking_how_much_to_drink_still_gets_the_limits(talk):
    reply = talk("physical", "how much wine is ok to drink in a week?")[0]["content"]
    assert has_tip(reply, "alcohol", "en") and "Staying off alcohol" not in reply, reply


# -- figures of speech -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["My heart is very heavy these days…", "my heart feels so heavy since she left"])
def test_a_heavy_heart_is_sadness_not_palpitations(talk, text):
    reply = talk("mental", text)[0]["content"]
    assert not has_tip(reply, "palpitations", "en"), reply


def test_a_pounding_heart_is_still_palpitations(talk):
    reply = talk("physical", "my heart keeps pounding and skipping beats at night")[0]["content"]
    assert has_tip(reply, "palpitations", "en"), reply


# -- a thank-you closes ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("first,then,lang", [
    ("My daughter has been so anxious about her exams", "thanks, that gives me a few ideas", "en"),
    ("女儿最近考试压力特别大，天天失眠", "好的，谢谢你，我去跟她聊聊", "zh"),
    ("How to make my daughter stop vaping?", "thank you, this is really helpful for us as parents", "en")])
def test_a_thank_you_with_a_closing_word_gets_a_close_not_another_tip(talk, first, then, lang):
    reply = talk("mental", first, then)[1]["content"]
    assert not any(has_tip(reply, key, lang) for key in TIPS), reply


@pytest.mark.parametrize("first,then,topic", [
    ("My daughter has been so anxious about her exams", "thanks, but she still can't sleep before the exam", "insomnia"),
    ("I've had a headache since this morning", "thanks, my head still hurts though", "headache")])
def test_a_thank_you_that_goes_on_is_answered(talk, first, then, topic):
    reply = talk("mental", first, then)[1]["content"]
    assert any(has_tip(reply, key, "en") for key in TIPS), reply


def test_a_first_message_of_thanks_is_no_frustration(talk):
    reply = talk("mental", "thanks a lot, that was really helpful")[0]["content"]
    assert "frustrat" not in reply and not has_tip(reply, "anger", "en"), reply


def test_the_new_patterns_stay_linear_on_hostile_input(make_wm):
    from conftest import assert_linear

    guide = make_wm().service("chat").provider("offline").tips_file.get()
    seen = iter(range(10**6))

    def read(text):
        guide.read(text + str(next(seen)))  # (a new text each time: the guide keeps its last readings)
    assert_linear(read, lambda size: ("my son 14 year old vape talk to my teen about refuse to go to school 儿子 初二的 被同学 "
                                      "跟女儿 喜欢男生 therapy physical therapist " * (size // 90))[:size], size=40_000)
