"""What a new user found in session 18 (audit A19), over HTTP on the shipped config: an overdose told without a count,
someone asking for another person, cheer for bad news, feelings read into words that tell of none. Each family with a
twin that must keep its answer (NOTES-AUDFIX.md)."""

import pytest

from conftest import assert_linear
from test_emotion import stored

HELPER_ZH = "谢谢你愿意为对方出手"  # the first helper's wording (prompts/safety.yaml third_party_replies)
HELPER_EN = "it's good that you're reaching out for them"
HOTLINE = "12356"


def chat(client, token, text, agent="mental"):
    r = client.post(f"/api/v1/health/{agent}/chat", {"text": text}, token=token)
    assert r.status == 200, r.text
    return r.json


@pytest.mark.parametrize("text", [
    "我吞了半瓶安眠药",
    "刚把家里的降压药全吃了",
    "I swallowed half a bottle of my sleeping pills",
    "i took all my antidepressants 20 mins ago",
    "I took a fistful of ibuprofen a few minutes ago",  # no other verdict: the note, then a check-in
    "i took like 40 paracetamol",  # a count, as before
])
def test_an_overdose_told_without_a_count_gets_the_120_note_first_and_the_hotlines(client, text):
    token = client.register()["access_token"]
    reply = chat(client, token, text)
    assert reply["content"].startswith("⚠️") and "120" in reply["content"].split("\n")[0], reply["content"][:120]
    assert HOTLINE in reply["content"], reply["content"]
    assert reply["emotion"] == "concerned"


@pytest.mark.parametrize("text", [
    "I took all my meds this morning like the doctor said",  # a routine
    "我的降压药吃完了，明天去医院开",  # run out
    "今天的降压药已经吃了",
    "What if I took half a bottle of ibuprofen?",  # a question
    "i took half a tablet of melatonin to sleep",
    "我把过期的感冒药全扔了",
])
def test_a_routine_dose_or_a_question_gets_no_overdose_note(client, text):
    token = client.register()["access_token"]
    assert not chat(client, token, text)["content"].startswith("⚠️")


def test_an_overdose_with_a_wish_is_still_the_writers_crisis(client):
    token = client.register()["access_token"]
    reply = chat(client, token, "I swallowed the pills and I want to die")
    assert HOTLINE in reply["content"] and HELPER_EN not in reply["content"]


@pytest.mark.parametrize("text, note", [
    ("我女儿16岁，刚才发微信说她站在江边的桥上，说活着没意思，我现在该怎么办", False),  # an age, a time word, a message
    ("我儿子说不想活了，我该怎么帮他", False),  # 怎么帮 was a care question in general: nothing at all
    ("我同学在宿舍割腕了，流了很多血", True),  # a past-tense act by someone else: the bleeding note, then the helper's
    ("my roommate cut her wrists in the bathroom an hour ago and she's bleeding a lot", True),
    ("my flatmate slit his wrist last night, he's at the hospital now, how do I talk to him", False),
])
def test_someone_asking_for_another_person_gets_the_helpers_wording(client, text, note):
    token = client.register()["access_token"]
    content = chat(client, token, text)["content"]
    assert (HELPER_ZH in content) or (HELPER_EN in content), content[:200]
    assert content.startswith("⚠️") == note


@pytest.mark.parametrize("text", [
    "室友刚才说他想死，其实我也是，我也不想活了",
    "我女儿刚睡着，我不想活了，等她长大就不需要我了",
    "My friend said I should talk to someone, but I've decided to kill myself tonight",
])
def test_a_writer_at_risk_who_mentions_someone_else_gets_their_own_crisis_reply(client, text):
    token = client.register()["access_token"]
    content = chat(client, token, text)["content"]
    assert HOTLINE in content and HELPER_ZH not in content and HELPER_EN not in content, content[:200]


@pytest.mark.parametrize("text, agent", [
    ("我血糖又15了，太棒了", "physical"),
    ("My exam went so badly I wanted the ground to swallow me, lol, but I'll retake it", "mental"),
    ("My A1c came back at 9.5, just fantastic", "physical"),
    ("got dumped over text today lol", "mental"),
    ("考试又挂了两科，我可真厉害", "mental"),
])
def test_cheer_for_bad_news_gets_no_cheer(client, text, agent):
    token = client.register()["access_token"]
    reply = chat(client, token, text, agent)
    assert reply["emotion"] not in ("happy", "encouraging"), reply
    assert "lovely to hear" not in reply["content"] and "太好了！" not in reply["content"] and "真为你高兴" not in reply["content"]
    assert stored(client, token, reply["session_id"])[0]["emotion"] not in ("happy", "calm")


@pytest.mark.parametrize("text", ["血糖降到6了，太好了", "My fasting sugar is 5.8 today, great!", "Passed my exam, so relieved and happy lol"])
def test_good_news_keeps_its_cheer(client, text):
    token = client.register()["access_token"]
    reply = chat(client, token, text)
    assert stored(client, token, reply["session_id"])[0]["emotion"] == "happy"


@pytest.mark.parametrize("text, label, not_said", [
    ("What's the best way to cut onions without crying?", "neutral", "feeling sad"),
    ("why do babies cry more in the evening", "neutral", "feeling sad"),
    ("I could murder a pizza right now honestly", "neutral", "frustrated"),
    ("My dog passed away two years ago; I've adopted a new puppy now and feel happy again", "happy", "sorry"),
])
def test_feelings_not_read_into_words_that_tell_of_none(client, text, label, not_said):
    token = client.register()["access_token"]
    reply = chat(client, token, text)
    assert not_said not in reply["content"], reply["content"][:200]
    assert stored(client, token, reply["session_id"])[0]["emotion"] == label


@pytest.mark.parametrize("text, label", [
    ("My dog died yesterday and I can't stop crying", "sad"),
    ("my baby cries all night and I'm exhausted", "tired"),
    ("我真想揍他一顿，气死我了", "angry"),
])
def test_real_feelings_beside_those_words_still_count(client, text, label):
    token = client.register()["access_token"]
    reply = chat(client, token, text)
    assert stored(client, token, reply["session_id"])[0]["emotion"] == label


def test_the_new_readings_stay_linear_on_hostile_input(make_wm):
    wm = make_wm()
    safety = wm.service("safety")
    lexicon = wm.service("chat").tagger.lexicon
    red_flags = safety.phrases.get().red_flags
    from wellmate_plugins._text import normalize

    calls = iter(range(10 ** 9))
    for make in (lambda n: "我把药" * (n // 3), lambda n: "took all my " * (n // 12), lambda n: "吃了半瓶" * (n // 4)):
        # (a new text each call: red_flags keeps its answers for the last FLAGGED_MAX (16) texts)
        assert_linear(lambda t: red_flags(normalize(t) + str(next(calls))), make)
    # (and runs of digits or numerals, which `then_now` read from every digit until session 18's review: minutes)
    for make in (lambda n: "onions crying " * (n // 14), lambda n: "血糖又15 " * (n // 6), lambda n: "two years ago " * (n // 14),
                 lambda n: "1234567890" * (n // 10), lambda n: "三" * n, lambda n: "两年前" * (n // 3)):
        assert_linear(lambda t: lexicon.lexicon.get().analyse(t), make)
