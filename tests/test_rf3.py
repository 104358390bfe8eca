"""Emergencies that must put 120 first (session 20, RF3), over HTTP with the shipped config on both agents: a heart
attack told by its pressure (an elephant on the chest, a band, a vice, 胸口像压了块大石头, 胸口被攥住), a knock to the
head with drowsiness, vomiting, confusion or a worsening headache (a blood thinner or not), a blood sugar read in mg/dL,
a stroke said to be happening now; and their look-alikes. And one emergency table: the offline companion's cautions are
prompts/safety.yaml's `red_flag_cautions`, which the safety plugin reads for it (`Safety.cautions`) and the companion
reads the same way with the plugin disabled."""

import pytest

from conftest import assert_linear, in_one_session

HOTLINE = "12356"


def urgent_first(reply: dict) -> bool:
    return reply["content"].startswith("⚠️") and "120" in reply["content"].split("\n")[0]


def first_reply(client, agent: str, text: str) -> dict:
    token = client.register()["access_token"]
    return in_one_session(client, token, [text], agent)[0]


HEART = ["my dad's chest feels like an elephant is sitting on it",
         "胸口像压了块大石头，半个小时了",
         "奶奶说胸口被攥住了一样，直冒汗",
         "it's like a steel band tightening round my chest",
         "feels like somebody is kneeling on his chest"]
HEAD = ["Mum is on warfarin, she fell and hit her head this morning and now she's very sleepy",
        "爷爷吃着华法林，昨天摔倒撞到头，今天吐了",
        "外婆每天吃阿司匹林，磕到后脑勺以后一直迷迷糊糊的",
        "my husband takes apixaban, banged his head on a shelf and his headache is getting worse",
        "my daughter hit her head at football and she's been sick twice and is really drowsy"]
SUGAR = ["sugar is 45 and she's sweating", "BG 38 mg/dl", "血糖 500 mg/dL and vomiting",
         "我爸血糖才 52 mg/dl，手一直抖", "his glucose is 480 and he keeps throwing up"]
STROKE_NOW = ["I think my mum is having a stroke", "我爸好像中风了，快帮帮我"]


@pytest.mark.parametrize("agent", ["physical", "mental"])
@pytest.mark.parametrize("text", HEART + HEAD + SUGAR + STROKE_NOW)
def test_an_emergency_of_these_families_puts_120_first(client, agent, text):
    reply = first_reply(client, agent, text)
    assert urgent_first(reply), reply["content"]
    assert reply["emotion"] == "concerned"


@pytest.mark.parametrize("text", [
    # a weight lifted, a pet asleep, a worry told as a stone, what a heart attack is said to feel like, a circus trick
    "what a relief, that's a weight off my chest", "my cat loves sleeping on my chest", "心里像压了块石头，好难过",
    "do heart attacks really feel like an elephant on your chest?", "胸口碎大石是怎么练的",
    "sleep paralysis again, felt like something was sitting on my chest",
    # a knock that is fine, a fall with the head denied, dose questions, a headache with no knock
    "hit my head on the cupboard, it's fine", "外婆摔了一跤，头没碰到，手腕有点肿", "吃着华法林能吃阿胶吗",
    "my warfarin dose went up to 5 mg, is that a lot?", "bad headache and sleepy after a long shift",
    "刚吃了头孢，有点恶心",
    # numbers that are no sugar, a normal reading, insulin units
    "I weigh 45 kg, is my blood sugar of 5.4 ok?", "blood sugar 98 fasting", "血糖 65 岁的人多少算正常",
    "took 40 units of insulin at 8pm and my sugar is 120 now", "walked 4500 steps, sugar 6.1",
    # a stroke feared or long past
    "I'm scared of having a stroke like my dad", "我爸以前中风过，现在恢复得不错"])
def test_their_look_alikes_get_no_emergency_note(client, text):
    reply = first_reply(client, "physical", text)
    assert not urgent_first(reply), reply["content"]


# -- one emergency table -------------------------------------------------------------------------------------------

CAUTIONED = {"我胸口痛": ["chest"], "I have chest pain": ["chest"], "突然呼吸困难": ["breath"],
             "is this a stroke? his arm feels odd": ["stroke"], "my grandma fainted in the shop": ["faint"],
             "胸闷是不是因为最近太焦虑了": ["chest"],  # (an anxiety beside it keeps the caution: a heart attack read as anxiety)
             "我没有胸痛，就是有点咳嗽": [], "ok that meme killed me 😭 i can't breathe": [], "工作把我压得透不过气": [],
             "my chest hurts after coughing all week with this cold": [], "my housemate nearly fainted": [],
             "I fainted once at a concert years ago, can I give blood?": [], "孩子去年抽搐过一次，今年要注意什么": []}


def test_the_safety_plugin_and_the_companion_read_one_caution_table(make_wm):
    from wellmate_plugins import provider_offline
    from wellmate_plugins._cautions import CautionFile
    from wellmate_plugins._text import normalize

    wm = make_wm()
    safety = wm.service("safety")
    alone = CautionFile(wm).get()  # how the companion reads it with the safety plugin disabled
    for text, kinds in CAUTIONED.items():
        assert safety.cautions(text) == kinds, text
        assert alone.kinds(normalize(text)) == kinds, text
    # the companion keeps no emergency words of its own: only the fallback crisis words
    assert set(provider_offline.SAFETY) == {"crisis"}


@pytest.mark.parametrize("text,note", [("突然呼吸困难", "breath"), ("我胸口痛", "chest"),
                                       ("ok that meme killed me 😭 i can't breathe", None)])
def test_with_the_safety_plugin_disabled_the_companion_reads_the_same_cautions(make_wm, serve, text, note):
    from wellmate_plugins.provider_offline import SAFETY_NOTES

    client = serve(make_wm({"plugins": {"disabled": ["safety"]}})).client
    content = first_reply(client, "physical", text)["content"]
    shown = [kind for kind in ("chest", "breath", "stroke", "collapse")
             if SAFETY_NOTES[kind]["zh"][:8] in content or SAFETY_NOTES[kind]["en"][:8] in content]
    assert shown == ([note] if note else []), content


def test_the_new_patterns_stay_linear_on_hostile_input(make_wm):
    # 100,000 characters are allowed in a message: the session-20 patterns must not grow faster than the message
    from wellmate_plugins._text import normalize

    wm = make_wm()
    safety = wm.service("safety")
    red_flags = safety.phrases.get().red_flags
    calls = iter(range(10 ** 9))
    for unit in ["胸口像被", "my chest is like a ", "hit his head and ", "撞到头", "blood sugar is 4", "血糖 4",
                 "is having a stroke ", "好像中风", "can't breathe lol ",
                 # a symptom denied, again and again: its negation was looked for back to the text's start (R20: 60 s)
                 "没有胸闷，", "no chest pain and ", "not short of breath and "]:
        make = (lambda u: lambda n: u * (n // len(u)))(unit)
        # (a new text each call: red_flags keeps the last text's answer)
        assert_linear(lambda t: red_flags(normalize(t) + str(next(calls))), make)
        assert_linear(lambda t: safety.cautions(t + str(next(calls))), make)
