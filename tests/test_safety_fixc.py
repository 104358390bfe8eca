"""What the session-18 review and audit found wrong on the shipped config (session 19, FIXC), over HTTP: each family
by its why (a cut with bleeding told by what it soaked, a calm with affairs put in order, a plan said by someone else,
an overdose of "most of", a quote in single quotes, an ending of a habit, a carer's question, a fit with a fever, the
swallowing idioms), with twins that must keep their answer (NOTES-FIXC.md)."""

import pytest

from conftest import assert_linear

HOTLINE = "12356"
HELPER_ZH = "谢谢你愿意为对方出手"  # the first helper's wording (prompts/safety.yaml third_party_replies)
HELPER_EN = "it's good that you're reaching out for them"
CRISIS_ZH = "你现在安全吗"  # the crisis reply's question
CRISIS_EN = "are you safe right now"
CHECKIN_EN = "have these feelings ever led to thoughts of hurting yourself"


def chat(client, token, text, agent="mental"):
    r = client.post(f"/api/v1/health/{agent}/chat", {"text": text}, token=token)
    assert r.status == 200, r.text
    return r.json["content"]


def first_line_calls_120(content: str) -> bool:
    return content.startswith("⚠️") and "120" in content.split("\n")[0]


@pytest.mark.parametrize("text", [
    "kept cutting til the towel was soaked, not sure if I should go to hospital",
    "又划了手臂，血把毛巾都浸透了，要不要去医院",
    "been slicing my thigh and it won't stop bleeding",
])
def test_self_injury_with_bleeding_gets_first_aid_and_120_above_the_crisis_reply(client, text):
    token = client.register()["access_token"]
    content = chat(client, token, text)
    assert first_line_calls_120(content), content[:160]
    assert HOTLINE in content and (CRISIS_ZH in content or CRISIS_EN in content.lower()), content[:300]


@pytest.mark.parametrize("text", [
    "cut my finger chopping onions and the towel is soaked with blood, should I go to hospital",
    "切菜切到手，血把毛巾都浸透了，要去医院吗",
    "切排骨划得好深，血一直流止不住，要去缝针吗",  # (a look-alike of session 16: no hotline, and now the note)
])
def test_a_kitchen_cut_that_soaks_a_towel_gets_the_bleeding_note_and_no_hotline(client, text):
    token = client.register()["access_token"]
    content = chat(client, token, text, agent="physical")
    assert first_line_calls_120(content) and HOTLINE not in content, content[:200]


@pytest.mark.parametrize("text", [
    "Two years ago I lost my son. Now I finally feel at peace, I've written my letters",
    "去年老伴走了，现在心里终于平静了，给孩子们的信都写好了",
    "三年前离婚了，现在终于轻松了，东西都送人了",
    "I'm strangely calm these days. Gave my guitar and my books away to friends",
])
def test_a_sudden_calm_with_affairs_in_order_or_things_given_away_gets_the_hotlines(client, text):
    token = client.register()["access_token"]
    assert HOTLINE in chat(client, token, text)


@pytest.mark.parametrize("text", [
    "断舍离以后家里清爽多了，不用的东西都送人了",  # a clear-out (the crisis reply before, for its 以后)
    "奶奶走了两年了，现在我终于释怀了，给她写了一封信放在墓前",  # a letter to the dead
    "I finally feel at peace after the divorce, I've written my cover letters for new jobs",
    "Decluttered before the move, gave away old clothes, feels so freeing",
])
def test_a_clear_out_or_a_letter_to_the_dead_gets_no_hotline(client, text):
    token = client.register()["access_token"]
    assert HOTLINE not in chat(client, token, text)


@pytest.mark.parametrize("text", [
    "he said he's going to drive into the river and hung up",
    "他说要开车冲进河里，电话就断了",
])
def test_a_plan_said_by_someone_else_now_gets_the_helpers_wording(client, text):
    token = client.register()["access_token"]
    content = chat(client, token, text)
    assert HELPER_ZH in content or HELPER_EN in content, content[:200]


@pytest.mark.parametrize("text", [
    "he said he's going to drive to the river to fish and hung up",
    "我爸说要开车去河边钓鱼，然后挂了电话",
])
def test_a_drive_to_the_river_gets_no_hotline(client, text):
    token = client.register()["access_token"]
    assert HOTLINE not in chat(client, token, text)


@pytest.mark.parametrize("text", [
    "downed a bottle of vodka and most of my antidepressants",
    "necked a litre of rum plus most of my sertraline",
    "刚喝了好多啤酒，把抗抑郁药吃了大部分",
])
def test_most_of_a_supply_taken_gets_the_120_note_and_the_hotlines(client, text):
    token = client.register()["access_token"]
    content = chat(client, token, text)
    assert first_line_calls_120(content) and HOTLINE in content, content[:200]


@pytest.mark.parametrize("text", [
    "finished most of the antibiotics course, can I have a beer now?",
    "I drink a glass of wine and take my antidepressant at night, is that ok?",
])
def test_a_course_or_a_nightly_dose_gets_no_overdose_note(client, text):
    token = client.register()["access_token"]
    assert not chat(client, token, text, agent="physical").startswith("⚠️")


@pytest.mark.parametrize("text", [
    "这首诗写'我想死在春天里'",
    "这首歌唱的是'我想死在你怀里'，歌词好美",
    "我要把这个坏习惯戒掉，彻底了断",
    "这段感情我要彻底了断，不想再纠缠了",
])
def test_a_quoted_line_or_an_ending_of_a_habit_gets_no_crisis_reply(client, text):
    token = client.register()["access_token"]
    content = chat(client, token, text)
    assert CRISIS_ZH not in content and HOTLINE not in content, content[:200]


@pytest.mark.parametrize("text", [
    "这首诗写'我想死在春天里'，我也想死",  # said again as the writer's own
    "我要跟这个世界彻底了断",
    "我要彻底了断自己",
])
def test_the_writers_own_wish_beside_a_quote_or_an_ending_is_still_a_crisis(client, text):
    token = client.register()["access_token"]
    assert CRISIS_ZH in chat(client, token, text)


@pytest.mark.parametrize("text", [
    "How do I support my dad after his suicide attempt last year?",
    "What can I do to support my son after his overdose last year?",
    "朋友自杀过一次，我怎么跟他相处比较好",
])
def test_a_carers_question_gets_a_carers_answer(client, text):
    token = client.register()["access_token"]
    content = chat(client, token, text)
    assert any(w in content for w in ("suicide attempt", "自杀未遂", HELPER_EN, HELPER_ZH)), content[:200]
    assert "fall" not in content.lower() and "Fever medicine" not in content, content[:200]


@pytest.mark.parametrize("text, agent", [
    ("孩子高烧，手脚一直在抽", "physical"),
    ("外孙女发烧39度，刚才突然抽起来了", "physical"),
    ("宝宝发烧惊厥了怎么办", "mental"),
    ("my grandson has a fever and he's having a fit", "mental"),
])
def test_a_fit_with_a_fever_gets_120_up_front(client, text, agent):
    token = client.register()["access_token"]
    content = chat(client, token, text, agent=agent)
    assert "120" in content.split("\n")[0], content[:160]


@pytest.mark.parametrize("text", [
    "发烧以后小腿抽筋，怎么缓解",
    "my grandson is fit and well again after his fever",
])
def test_a_cramp_or_a_fit_child_gets_no_urgent_note(client, text):
    token = client.register()["access_token"]
    assert "120" not in chat(client, token, text, agent="physical").split("\n")[0]


@pytest.mark.parametrize("text", [
    "I swallowed my pride and said sorry",
    "she swallowed her tears and kept going",
    "I swallowed hard and told her the truth",
    "只能把委屈吞下去",
])
def test_the_swallowing_idioms_get_no_hotline(client, text):
    token = client.register()["access_token"]
    assert HOTLINE not in chat(client, token, text)


@pytest.mark.parametrize("text", [
    "I swallowed my pride and all my sleeping tablets",
    "吞了一整瓶安眠药",
])
def test_a_swallow_of_pills_beside_an_idiom_is_still_a_crisis(client, text):
    token = client.register()["access_token"]
    assert HOTLINE in chat(client, token, text)


def test_the_new_patterns_stay_linear_on_hostile_input(make_wm):
    # 100,000 characters are allowed in a message: the session-19 patterns (a cloth soaked, most of a supply, the swallowing
    # idioms, a poem's line in single quotes, a calm with letters) must not grow faster than the message
    wm = make_wm()
    safety = wm.service("safety")
    red_flags = safety.phrases.get().red_flags
    from wellmate_plugins._text import normalize

    calls = iter(range(10 ** 9))
    for unit in ["kept cutting my arm ", "towel soaked ", "swallowed my pride ", "这首诗写'", "终于平静了，信都写好了",
                 "把安眠药", "吃了大部分", "took most of my "]:
        make = (lambda u: lambda n: u * (n // len(u)))(unit)
        assert_linear(lambda text: safety.assess(text), make)
        # (a new text each call: red_flags keeps the last text's answer)
        assert_linear(lambda t: red_flags(normalize(t) + str(next(calls))), make)
