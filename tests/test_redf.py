"""Emergency signs and medicine cautions the offline companion missed (session 21, REDF), over HTTP with the shipped
config on both agents: a fever with a stiff neck or confusion, or a rash that doesn't fade, is 120 whatever came before
(`fever_danger`); a question about an emergency's signs gets the signs and "call 120 at once", no alarm; a faint is one
event whichever word tells it (a doctor soon; 120 with the danger signs: `faint_danger`); a medicine named with a
question about it is answered about the medicine (the tips file's `conditions`: opioid, nsaid, paracetamol, triptan,
warfarin); a question whether to go on with what brought an emergency's sign on gets a no. And the REDF held list
(tests/data/redf_held.tsv, written before the fixes: 24 must, 23 look-alikes)."""

import re
from pathlib import Path

import pytest

from conftest import assert_linear, in_one_session

HELD = Path(__file__).parent / "data" / "redf_held.tsv"


def urgent_first(reply: dict) -> bool:
    return reply["content"].startswith("⚠️") and "120" in reply["content"].split("\n")[0]


_TOKENS = {}


def replies(client, agent: str, texts: list[str]) -> list[dict]:
    """The replies to ``texts`` in one new session of one user per client (a test may ask several times)."""
    if id(client) not in _TOKENS:  # (the client is kept with its token: its id is not reused by another while kept)
        _TOKENS[id(client)] = (client, client.register(username=f"redf{len(_TOKENS)}")["access_token"])
    return in_one_session(client, _TOKENS[id(client)][1], texts, agent)


def held_rows(path: Path = HELD):
    """(label, text) of a held list: `E` the urgent note first, `N` none, `K:pattern` the pattern in the reply, `NK:pattern` both."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            label, text = line.split("\t")
            yield label, text


def meets(label: str, reply: dict) -> bool:
    kind, _, pattern = label.partition(":")
    urgent = urgent_first(reply)
    found = bool(re.search(pattern, reply["content"], re.I)) if pattern else True
    return {"E": urgent, "N": not urgent, "K": found, "NK": not urgent and found}[kind]


@pytest.mark.parametrize("agent", ["physical", "mental"])
def test_the_held_list_over_http(client, agent):
    missed = []
    for label, text in held_rows():
        reply = replies(client, agent, text.split(" || "))[-1]
        if not meets(label, reply):
            missed.append((label, text, reply["content"][:160]))
    assert not missed, missed


@pytest.mark.parametrize("agent", ["physical", "mental"])
@pytest.mark.parametrize("text", ["被狗咬了三天，现在脖子僵硬，高烧，意识不清", "fever since last night and his neck is so stiff he can't look down",
                                  "妈妈发高烧，今天说胡话了", "she has a temperature and a rash that doesn't fade when I press a glass on it"])
def test_a_fever_with_a_stiff_neck_confusion_or_a_rash_that_does_not_fade_is_120(client, agent, text):
    reply = replies(client, agent, [text])[0]
    assert urgent_first(reply), reply["content"]
    assert reply["emotion"] == "concerned"


@pytest.mark.parametrize("text,words", [("What are the signs of a stroke?", "FAST"), ("中风有哪些表现？", "中风 120"),
                                        ("how do you know if someone is having a heart attack?", "jaw"),
                                        ("败血症有什么症状", "小便"), ("what are the symptoms of anaphylaxis?", "adrenaline"),
                                        ("脑膜炎的征兆有哪些", "脖子发硬")])
def test_a_question_about_an_emergencys_signs_gets_them_and_120_with_no_alarm(client, text, words):
    reply = replies(client, "physical", [text])[0]
    assert not urgent_first(reply), reply["content"]
    assert words in reply["content"] and "120" in reply["content"], reply["content"]


FAINTS = {"en": ["I fainted", "I passed out", "I blacked out earlier"], "zh": ["我晕倒了", "我昏倒了", "刚才晕过去了"]}


@pytest.mark.parametrize("agent", ["physical", "mental"])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_faint_gets_one_answer_whichever_word_tells_it(client, agent, lang):
    from wellmate_plugins.provider_offline import SAFETY_NOTES

    note = SAFETY_NOTES["faint"][lang].split("{")[0]
    for text in FAINTS[lang]:
        reply = replies(client, agent, [text])[0]
        assert not urgent_first(reply) and note in reply["content"], (text, reply["content"])
        assert reply["emotion"] == "concerned", text


@pytest.mark.parametrize("text", ["I fainted while running and my chest hurt", "passed out and hit my head on the table",
                                  "刚才晕倒了，心慌得厉害", "打球的时候突然晕过去了"])
def test_a_faint_with_a_danger_sign_is_120(client, text):
    reply = replies(client, "physical", [text])[0]
    assert urgent_first(reply), reply["content"]


@pytest.mark.parametrize("agent", ["physical", "mental"])
@pytest.mark.parametrize("text,pattern", [
    ("Can I have a couple of beers with my oxycodone tonight?", r"breathing"),
    ("我腰疼好几年了，每天吃两片曲马多，最近加到四片了", r"医生.*(加量|减量)|不要再自己加量"),
    ("I've been taking ibuprofen every day for 3 years for my knee, is that ok?", r"stomach.*kidney"),
    ("她在吃布洛芬止痛，可以吗？她血小板低", r"出血"),
    ("I'm on oxycodone every day and constipated, can I just take more laxatives?", r"laxative"),
    ("what about my migraine pills with sumatriptan?", r"another triptan"),
    ("can I take paracetamol with cold and flu tablets?", r"same ingredient"),
    ("can I eat spinach on warfarin?", r"vitamin K"), ("吃华法林能吃菠菜吗", r"维生素 K")])
def test_a_medicine_named_with_a_question_about_it_is_answered_about_the_medicine(client, agent, text, pattern):
    reply = replies(client, agent, [text])[0]
    assert re.search(pattern, reply["content"], re.S), reply["content"]


@pytest.mark.parametrize("texts,no", [
    (["I've pulled 3 all-nighters and my chest feels tight and I'm short of breath",
      "should I just have another one to push through my exam?"], "No."),
    (["跑步时胸口痛得厉害，还冒冷汗", "我能接着跑完吗"], "不要。")])
def test_going_on_with_what_brought_an_emergency_on_gets_a_no(client, texts, no):
    reply = replies(client, "physical", texts)[-1]
    assert no in reply["content"] and "120" in reply["content"], reply["content"]


def test_the_faint_caution_is_one_kind_of_both_readings(make_wm):
    from wellmate_plugins.provider_offline import OfflineProvider

    safety = make_wm().service("safety")
    # the companion's own reading, with the safety plugin disabled (None: no safety service)
    alone = OfflineProvider("offline", {}, make_wm({"plugins": {"disabled": ["safety"]}}))
    for text, kinds in {"I passed out": ["faint"], "我晕倒了": ["faint"], "刚才晕过去了": ["faint"], "I fainted": ["faint"],
                        "I nearly passed out in the heat": [], "看恐怖片差点晕过去": [], "他笑晕了": [],
                        "I passed out once years ago, can I give blood?": []}.items():
        assert safety.cautions(text) == kinds, text
        assert alone._cautions(None, text, {}) == kinds, text


def test_the_new_patterns_stay_linear_on_hostile_input(make_wm):
    from wellmate_plugins._text import normalize
    from wellmate_plugins.provider_offline import KEEPS_ON, signs_asked

    wm = make_wm()
    safety = wm.service("safety")
    red_flags = safety.phrases.get().red_flags
    calls = iter(range(10 ** 9))
    for unit in ["发烧，脖子", "fever and a stiff ", "a rash that doesn't ", "按了不", "晕倒了，", "passed out and my ",
                 "how can i tell if ", "过敏性休克的症状", "signs of anaphylaxis "]:
        make = (lambda u: lambda n: u * (n // len(u)))(unit)
        assert_linear(lambda t: red_flags(normalize(t) + str(next(calls))), make)
        assert_linear(lambda t: safety.cautions(t + str(next(calls))), make)
        assert_linear(lambda t: (signs_asked(t), KEEPS_ON.search(t[:300])), make)
