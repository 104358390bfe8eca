"""Issue 12, point 2, over HTTP with the shipped config (no model): sarcasm is never met with
cheer, nor a message with a word of dying or killing whatever the tagger read; negation reads
both ways; and the offline reply names a feeling only where the user showed one (a question, a
plain follow-up on a complaint or news of someone else gets its answer, not "It sounds like
you're feeling down")."""

import pytest

from conftest import in_one_session, served_shipped

CHEER = ["lovely to hear", "How nice!", "Enjoy this good feeling", "I can feel your joy", "What made your day",
         "太好了！", "真为你高兴", "能感觉到你的喜悦", "这份好心情", "发生了什么好事", "是什么让你心情这么好"]
CLAIMED = ["It sounds like you", "I hear that you", "听起来你", "我听到了：你", "让你感到"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with served_shipped(tmp_path_factory.mktemp("openers")) as served:
        served.token = served.client.register()["access_token"]
        yield served


def say(site, texts, agent="mental"):
    """Send ``texts`` in one new session; (the user's stored label, the reply's label, the reply) of the last."""
    reply = in_one_session(site.client, site.token, texts, agent)[-1]
    session = reply["session_id"]
    messages = site.client.get(f"/api/v1/health/sessions/{session}", token=site.token).json["messages"]["items"]
    user = [m for m in messages if m["role"] == "user"][-1]
    return user["emotion"], reply["emotion"], reply["content"]


@pytest.mark.parametrize("text", [
    "Lovely. Food poisoning on the first night of my holiday",
    "Perfect, I missed the last bus home and it's pouring 🙂",
    "excellent, my flight's delayed six hours",
    "太棒了，刚买的手机就摔碎了",
    "完美，周日一早又被叫去加班",
    # a sign of irony (session 12, EM2)
    "congrats to me, locked out of my flat in the rain",
    "nothing says weekend like a burst pipe in the kitchen",
    # a sign before a mishap with no praise word (session 13, FX: CI passed only while a crisis check-in fired)
    "nothing says monday like a flat tyre on the ring road",
    # praise for failing (session 13's outside review, FX)
    "I'm the best at failing, gold medal in disappointing everyone, lol",
    "时机选得真好，刚出门就下暴雨",
])
def test_a_cheer_then_a_mishap_is_sarcasm_and_gets_no_cheer(site, text):
    user, shown, content = say(site, [text])
    assert user not in ("happy", "calm"), (user, content)
    assert shown not in ("happy", "encouraging"), (shown, content)
    assert not any(cheer in content for cheer in CHEER), content


@pytest.mark.parametrize("text", ["Great news, my ankle has finally healed and I ran today!", "太好了，孩子终于退烧了！",
                                  # good news after a queue, and an idiom of "killing" it (an outside review)
                                  "好开心，排了三个小时的队终于买到了球赛门票！", "I killed it at my first half marathon today, so happy!"])
def test_good_news_after_a_mishap_stays_good_news(site, text):
    user, shown, content = say(site, [text])
    assert user == "happy" and shown != "caring", (user, shown, content)


@pytest.mark.parametrize("text", ["nice, the whole team got a bonus except me", "真不错，大家都涨工资了，就我没有"])
def test_left_out_while_everyone_else_gets_it_is_not_cheer(site, text):
    user, shown, _ = say(site, [text])
    assert user == "sad" and shown != "happy", (user, shown)


@pytest.mark.parametrize("text", [
    "honestly I'd rather be dead than sit through another lecture like that lol",
    "lol kill me, the printer ate my thesis",
    # a happy idiom that names the writer's own death (session 13's outside review, FX)
    "I'm so happy I could die!",
])
def test_a_word_of_dying_is_never_met_with_cheer_whatever_the_tagger_reads(site, text):
    _, shown, content = say(site, [text])
    assert shown not in ("happy", "encouraging"), (shown, content)
    assert not any(cheer in content for cheer in CHEER), content


@pytest.mark.parametrize("text,label", [
    ("I'm no longer nervous about the operation, the surgeon answered everything", "calm"),
    ("我不伤心了，已经放下了", "calm"),
    ("I can't say I'm happy with how my recovery is going", "sad"),
    # session 12 (EM2)
    ("not even annoyed tbh, it happens", "calm"),                 # "even" stands between
    ("no more panicking before flights, I've done six this year", "calm"),
    ("打完针没那么疼了", "calm"),                                  # pain eased: 疼 alone is no feeling
    ("一点都不开心，周末又是一个人", "sad"),
    ("说不开心是假的，我的论文终于发表了", "happy"),                  # a denied denial
    ("周末睡了两天还是没缓过来", "tired"),                           # rest that did not help: weariness, not worry
    ("however long I sleep I never feel rested", "tired"),
    ("我不想再忍了，他每次都放我鸽子", "angry"),
    # emotion_F's (dev): the model read "anxious", the lexicon its negation, which now stands
    ("i'm not anxious about the results now, the doctor explained everything", "calm"),
])
def test_negation_reads_both_ways(site, text, label):
    assert say(site, [text])[0] == label


@pytest.mark.parametrize("texts,agent", [
    (["I sprained my ankle yesterday", "it's still throbbing"], "physical"),
    (["I sprained my ankle yesterday", "it's been three weeks like this"], "physical"),
    (["I sprained my ankle yesterday", "when can I jog again?"], "physical"),
    (["我膝盖疼", "已经疼了一个月了"], "physical"),
    (["我脚踝扭了", "今天早上更肿了"], "physical"),
    (["My husband seems really quiet these days"], "mental"),
    (["我爸最近总是丢三落四"], "mental"),
])
def test_the_reply_claims_no_feeling_the_user_did_not_show(site, texts, agent):
    _, _, content = say(site, texts, agent)
    assert not any(claim in content for claim in CLAIMED), content


def test_a_feeling_shown_in_words_is_still_named(site):
    _, shown, content = say(site, ["my knee hurts after running", "I'm really frustrated, it's been a month"], "physical")
    assert "frustrated" in content and shown == "caring", content


# -- session 12 fix round (FXE): the families of an outside review (M5) and audit (L3, L4) ---------


@pytest.mark.parametrize("text,feels", [
    # a cheer before a bad test result is sarcasm; the result itself is a worry
    ("真棒，体检又查出甲状腺结节", {"anxious", "angry", "sad"}),
    # resignation before bad news ("as expected") is no joy
    ("As expected, my blood pressure is high again", {"anxious", "angry", "sad"}),
    # praise in plain single quotes is said with a raised eyebrow, as in double quotes
    ("Well, the weekend was 'relaxing'.", {"angry", "sad", "tired", "anxious"}),
])
def test_a_cheer_around_bad_news_or_in_quotes_is_no_good_mood(site, text, feels):
    user, shown, content = say(site, [text])
    assert user in feels, (user, content)
    assert shown not in ("happy", "encouraging") and not any(cheer in content for cheer in CHEER), (shown, content)


@pytest.mark.parametrize("text,label", [
    ("倒不是不高兴，就是提不起劲做任何事", "tired"),   # a denied sadness, then no drive: weariness
    ("lmfao that clip had me dead", "happy"),          # laughter slang: "dead" from laughing
    ("All fine here. 🙂", "calm"),                     # a polite smile after "fine" is no joy
    ("我一点儿都不紧张，今晚能睡个好觉", "calm"),
])
def test_slang_a_flat_smile_and_a_denied_feeling_read_as_meant(site, text, label):
    assert say(site, [text])[0] == label


@pytest.mark.parametrize("text", ["How often should I go jogging each week?", "经常胃胀，平时饮食要注意什么？"])
def test_a_plain_tip_whose_red_flag_line_names_120_does_not_look_worried(site, text):
    # The tip's "call 120 if the chest pain doesn't settle" is information, not worry about this user
    # (an urgent case gets safety's note and is concerned whatever the words).
    user, shown, content = say(site, [text], "physical")
    assert user == "neutral" and shown == "neutral", (user, shown, content)


@pytest.mark.parametrize("text", ["How do I chop onions without crying so much?",
                                  "I want to kill the background task that freezes my laptop"])
def test_a_feeling_word_in_a_practical_question_is_no_feeling(site, text):
    # The user's label only: the offline companion reads "crying" on its own (left to its owners).
    assert say(site, [text])[0] == "neutral"


# -- session 13 (EM3): sarcasm, negation and mixed feelings (emotion_G's families, dev data) ---------


@pytest.mark.parametrize("text,label", [
    # a feeling only said to be absent stands (嘴上说不担心), and so does a negated negation (不是不紧张)
    ("嘴上说不担心，其实一晚上都没睡着", "anxious"),
    ("I said I wasn't worried but I was up all night", "anxious"),
    ("不是不紧张，只是不想表现出来", "anxious"),
    # a refusal is anger, not a negated calm
    ("别跟我说冷静，我根本冷静不了！", "angry"),
    ("no, I will NOT forgive him this time", "angry"),
    # a boast dressed as a complaint, with a laugh, is joy
    ("哎呀烦死了，又被老板当众表扬了😂", "happy"),
    ("ugh, so annoying, my boss praised me in front of everyone again 😂", "happy"),
    # but not a good thing that befell someone else (a guard)
    ("lol my coworker got promoted instead of me, so annoying", "angry"),
])
def test_a_denial_only_said_a_refusal_and_a_boast_read_as_meant(site, text, label):
    assert say(site, [text])[0] == label


@pytest.mark.parametrize("text,feels", [
    # sarcasm means the bad feeling the text shows besides the cheer (angry when it shows none)
    ("awesome, another all-nighter, my eye bags thank me", {"tired"}),
    # a cheer closing a complaint on its own (emotion_F: the reply was cheerful)
    ("sure, 'seven day refund', and now the gym's support line just rings out, brilliant", {"angry"}),
])
def test_sarcasm_reads_as_the_bad_feeling_shown_and_gets_no_cheer(site, text, feels):
    user, shown, content = say(site, [text])
    assert user in feels, (user, content)
    assert shown not in ("happy", "encouraging") and not any(cheer in content for cheer in CHEER), (shown, content)


# -- session 13 (RF): 厉害 as a degree, and urgent notes look concerned (an outside audit) ----------


@pytest.mark.parametrize("text", ["最近掉头发很厉害", "孕吐很厉害", "头疼得厉害", "拉肚子拉得很厉害"])
def test_li_hai_after_a_symptom_or_de_is_how_bad_it_is_not_joy(site, text):
    user, shown, content = say(site, [text], "physical")
    assert user != "happy" and shown not in ("happy", "encouraging"), (user, shown, content)
    assert not any(cheer in content for cheer in CHEER), content


@pytest.mark.parametrize("text", ["他好厉害，考了第一名", "太厉害了，我终于跑完了全马！"])
def test_li_hai_said_of_a_person_or_on_its_own_is_still_praise(site, text):
    assert say(site, [text])[0] == "happy"


@pytest.mark.parametrize("text", ["My toddler has a rash that doesn't fade when I press on it",
                                  "宝宝发烧，身上起了按压不褪色的红点"])
def test_an_urgent_note_from_the_companion_looks_concerned(site, text):
    user, shown, content = say(site, [text], "physical")
    assert shown == "concerned", (user, shown, content)


# -- session 15 (EMO): what sarcasm means by its mishap's family, claims belied, mixed feelings ------


@pytest.mark.parametrize("text,label", [
    # lost sleep is weariness, not anger (parents of small children, shift workers)
    ("太棒了，又上夜班", "tired"),
    ("nice. another double shift 🙃", "tired"),
    ("fabulous, the little one is up at 3am again", "tired"),
    # missing one's people is sadness
    ("真不错，孩子生日我又在值班。", "sad"),
    # someone to blame keeps it angry
    ("great, another night shift, thanks so much boss", "angry"),
    ("太好了，又要加班了", "angry"),
    # a claim of ease belied by what follows
    ("我对明天的面试可淡定了，所以才一晚上看了二十遍简历。", "anxious"),
    ("oh I'm totally relaxed about the scan, that's why I've checked the portal every ten minutes", "anxious"),
])
def test_sarcasm_means_what_its_mishap_or_belied_claim_tells_and_gets_no_cheer(site, text, label):
    user, shown, content = say(site, [text])
    assert user == label, (user, content)
    assert shown not in ("happy", "encouraging") and not any(cheer in content for cheer in CHEER), (shown, content)


@pytest.mark.parametrize("text,label", [
    # a sincere "that's why" stays what it says
    ("I'm so happy with my results, that's why I treated myself to cake", "happy"),
    # the later, stronger feeling of a mixed message counts (what follows "but", 累是累，…)
    ("Glad it's Friday but honestly too wiped to enjoy it.", "tired"),
    ("开心是开心，宝宝会翻身了，可我连着三晚没睡，累得不行。", "tired"),
    ("Tired after nights but my son made me breakfast and I'm so happy.", "happy"),
])
def test_a_sincere_claim_stays_and_mixed_feelings_go_to_the_later_stronger_one(site, text, label):
    assert say(site, [text])[0] == label
