"""The offline companion (plugins/provider_offline.py) and the lexicon emotion tagger
(plugins/tagger_lexicon.py): what makes Wellmate useful with no key and no network."""

import importlib.util
import os
import re
import shutil
import string
import sys
from pathlib import Path
from types import SimpleNamespace

import pluggy
import pytest
import yaml

import wellmate

ROOT = Path(__file__).resolve().parent.parent
CJK = re.compile(r"[\u4e00-\u9fff]")
LABELS = ["happy", "calm", "neutral", "sad", "anxious", "angry", "tired"]


def load_plugin(name):
    """Load a plugin file the way the core does: by path, as its own module."""
    spec = importlib.util.spec_from_file_location(f"test_plugins_{name}", ROOT / "plugins" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


offline = load_plugin("provider_offline")
lexicon = load_plugin("tagger_lexicon")
PHYSICAL = (ROOT / "prompts" / "physical.txt").read_text(encoding="utf-8")
MENTAL = (ROOT / "prompts" / "mental.txt").read_text(encoding="utf-8")
TIPS = yaml.safe_load((ROOT / "prompts" / "offline_tips.yaml").read_text(encoding="utf-8"))["topics"]


def chat(*turns, system=PHYSICAL):
    """OpenAI-style messages: the system prompt, then alternating user/assistant turns."""
    messages = [{"role": "system", "content": system}]
    for i, text in enumerate(turns):
        messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": text})
    return messages


def touch_later(path: Path):
    """Make sure an edit is seen as one even on file systems with coarse mtimes."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


@pytest.fixture
def provider():
    return offline.OfflineProvider("offline", {}, None)


@pytest.fixture
def tagger():
    return lexicon.LexiconTagger({}, None)


@pytest.fixture
def tmp_wm(tmp_path):
    """A stand-in for Wellmate with only what these plugins use: the config folder."""
    (tmp_path / "prompts").mkdir()
    for name in ("offline_tips.yaml", "emotion_lexicon.yaml"):
        shutil.copy(ROOT / "prompts" / name, tmp_path / "prompts" / name)
    return SimpleNamespace(base=tmp_path)


# -- plugin registration ---------------------------------------------------------------------------


def test_hooks_register_by_name():
    pm = pluggy.PluginManager("wellmate")
    pm.add_hookspecs(wellmate.Hookspecs)
    pm.register(offline, name="provider_offline")
    pm.register(lexicon, name="tagger_lexicon")
    pm.check_pending()
    assert wellmate.Registry.collect(pm, "register_providers", "provider plugin") == {"offline": offline.OfflineProvider}
    assert wellmate.Registry.collect(pm, "register_taggers", "tagger") == {"lexicon": lexicon.LexiconTagger}


def test_settings_have_defaults_and_are_checked():
    provider = offline.OfflineProvider("offline", {"plugin": "offline"}, None)
    assert provider.config == {"plugin": "offline", "tips": "prompts/offline_tips.yaml", "notice": True, "agent": "",
                               "topic_model": "models/offline_topics.json", "topic_confidence": 0.35}
    with pytest.raises(wellmate.ConfigError, match="providers.offline.notice"):
        offline.OfflineProvider("offline", {"notice": "yes"}, None)
    assert lexicon.LexiconTagger.settings["lexicon"].default == "prompts/emotion_lexicon.yaml"


# -- language -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["我最近睡不着", "今天有点累", "血压多少算高？", "你好"])
def test_chinese_message_gets_a_chinese_reply(provider, text):
    reply = provider.reply(chat(text))
    body = reply.split("\n\n（")[0]  # the one-line offline notice
    assert CJK.search(body)
    assert not re.search(r"[A-Za-z]{4,}", body), body


@pytest.mark.parametrize("text", ["I can't sleep at night", "I'm so tired today", "How much water should I drink?", "hi"])
def test_english_message_gets_an_english_reply(provider, text):
    reply = provider.reply(chat(text, system=MENTAL))  # even with a Chinese system prompt
    assert not CJK.search(reply), reply
    assert re.search(r"[A-Za-z]{4,}", reply)


# -- health tips from the editable file --------------------------------------------------------------


def test_sleep_question_gets_a_sleep_tip_from_the_file(provider):
    reply = provider.reply(chat("怎么才能睡得更好？"))
    assert any(tip in reply for tip in TIPS["sleep"]["tips"]["zh"]), reply
    reply = provider.reply(chat("How can I sleep better?"))
    assert any(tip in reply for tip in TIPS["sleep"]["tips"]["en"]), reply


@pytest.mark.parametrize("text,topic", [
    ("每天应该喝多少水", "water"), ("每周运动多久合适", "exercise"), ("血压高怎么办", "blood_pressure"),
    ("我想戒烟", "smoking"), ("腰疼好几天了", "back_pain"), ("How many steps should I walk a day?", "steps"),
    ("Is a glass of wine a day ok? I like beer too", "alcohol"), ("I have a headache", "headache"),
])
def test_health_topics_answered_from_the_file(provider, text, topic):
    reply = provider.reply(chat(text))
    lang = "zh" if CJK.search(text) else "en"
    assert any(tip in reply for tip in TIPS[topic]["tips"][lang]), reply


def test_editing_the_tips_file_changes_the_next_reply(tmp_wm):
    provider = offline.OfflineProvider("offline", {}, tmp_wm)
    question = chat("怎么才能睡得更好？")
    assert any(tip in provider.reply(question) for tip in TIPS["sleep"]["tips"]["zh"])

    path = tmp_wm.base / "prompts" / "offline_tips.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["topics"]["sleep"]["tips"]["zh"] = ["睡前泡脚十分钟（新写的建议一）", "睡前听十分钟白噪音（新写的建议二）"]
    data["topics"]["foot_bath"] = {"title": {"zh": "泡脚", "en": "foot baths"},
                                   "keywords": {"zh": ["泡脚"], "en": ["foot bath"]},
                                   "tips": {"zh": ["水温 40℃ 左右，泡 15 分钟就够了。"], "en": ["About 40 °C for 15 minutes."]}}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    touch_later(path)

    reply = provider.reply(question)  # same instance, no restart
    assert "新写的建议" in reply
    assert "水温 40℃ 左右" in provider.reply(chat("泡脚有用吗？"))


def test_a_broken_tips_edit_keeps_the_last_good_version(tmp_wm, caplog):
    provider = offline.OfflineProvider("offline", {}, tmp_wm)
    question = chat("每天应该喝多少水")
    before = provider.reply(question)
    path = tmp_wm.base / "prompts" / "offline_tips.yaml"
    path.write_text("topics: [unclosed", encoding="utf-8")
    touch_later(path)
    assert provider.reply(question) == before
    assert "offline_tips.yaml" in caplog.text


def test_a_tips_path_may_be_absolute(tmp_path):
    path = tmp_path / "my_tips.yaml"
    path.write_text("topics:\n  tea:\n    keywords: {zh: [喝茶], en: [tea]}\n"
                    "    tips: {zh: [淡茶比浓茶好。], en: [Weak tea is kinder than strong tea.]}\n", encoding="utf-8")
    provider = offline.OfflineProvider("offline", {"tips": str(path)}, None)
    assert "Weak tea is kinder" in provider.reply(chat("Is tea good for me?"))


def test_with_no_files_next_to_the_config_the_shipped_ones_are_used(tmp_path):
    wm = SimpleNamespace(base=tmp_path)  # a config kept elsewhere, e.g. /etc/wellmate
    provider = offline.OfflineProvider("offline", {}, wm)
    assert any(tip in provider.reply(chat("每天应该喝多少水")) for tip in TIPS["water"]["tips"]["zh"])
    assert lexicon.LexiconTagger({}, wm).tag("好开心", LABELS) == "happy"

    (tmp_path / "prompts").mkdir()  # the user makes their own copy: it takes over
    (tmp_path / "prompts" / "offline_tips.yaml").write_text(
        "topics:\n  water:\n    keywords: {zh: [喝水, 多少水], en: [water]}\n"
        "    tips: {zh: [自己写的喝水建议。], en: [My own water tip.]}\n", encoding="utf-8")
    assert "自己写的喝水建议" in provider.reply(chat("每天应该喝多少水"))


def test_the_same_tip_does_not_come_twice_in_a_row(provider):
    first = provider.reply(chat("怎么才能睡得更好？"))
    second = provider.reply(chat("怎么才能睡得更好？", first, "怎么才能睡得更好？"))
    tips = [t["text"] if isinstance(t, dict) else t for t in TIPS["sleep"]["tips"]["zh"]]  # {when: ..., text: ...} too
    assert [t for t in tips if t in first] != [t for t in tips if t in second]


def test_asking_for_more_continues_the_last_topic(provider):
    first = provider.reply(chat("每天应该喝多少水"))
    more = provider.reply(chat("每天应该喝多少水", first, "还有呢"))
    tips = TIPS["water"]["tips"]["zh"]
    assert any(t in more for t in tips) and not any(t in more and t in first for t in tips)


# -- listening --------------------------------------------------------------------------------------


def test_a_sad_message_is_acknowledged(provider):
    reply = provider.reply(chat("我今天很难过", system=MENTAL))
    assert "你今天感到很难过" in reply  # the feeling named back, in the second person
    reply = provider.reply(chat("I've been feeling really sad lately", system=MENTAL))
    assert "you've been feeling really sad lately" in reply


@pytest.mark.parametrize("text,words", [
    ("最近工作压力好大，每天都很焦虑", ["工作", "压力", "焦虑"]),
    ("明天要考试了，好紧张", ["考试", "紧张"]),
    ("一个人在外地，好孤单", ["孤单"]),
    ("气死我了，老板又让我加班", ["工作", "气愤"]),
    ("I'm so stressed about work", ["stressed", "work"]),
    ("I feel lonely", ["lonely"]),
    ("I'm exhausted", ["exhausted"]),
    ("今天升职了，好开心！", ["高兴", "开心"]),
    ("晚上睡不着，心里很烦", ["感到很烦"]),
    ("最近烦心事太多", ["心烦"]),
])
def test_feelings_are_reflected_in_its_own_words(provider, text, words):
    reply = provider.reply(chat(text, system=MENTAL))
    for word in words:
        assert word in reply, (word, reply)


@pytest.mark.parametrize("text", [
    "最近工作压力好大，每天都很焦虑", "我今天很难过", "I've been feeling really lonely lately",
    "今天吃了面条", "blah blah", "怎么才能睡得更好？",
])
def test_the_reply_is_not_an_echo(provider, text):
    reply = provider.reply(chat(text))
    assert text not in reply
    assert len(reply) > len(text)


def test_negated_feelings_are_not_reflected(provider):
    reply = provider.reply(chat("我不难过，就是想问问每天喝多少水", system=MENTAL))
    assert "感到难过" not in reply and "感到很难过" not in reply
    reply = provider.reply(chat("这事太麻烦了", system=MENTAL))  # 麻烦 is trouble, not being upset
    assert "感到" not in reply


def test_replies_are_stable_but_vary_between_messages(provider):
    messages = chat("我今天很难过", system=MENTAL)
    assert provider.reply(messages) == provider.reply(messages)
    replies = {provider.reply(chat(text, system=MENTAL)).split("。")[0]
               for text in ["我今天很难过", "我好难过", "最近很难过", "考试没考好，很难过", "分手了，难过"]}
    assert len(replies) > 1


def test_the_agent_is_known_from_the_system_prompt(provider):
    assert "身体健康" in provider.reply(chat("你好", system=PHYSICAL))
    assert "心理健康" in provider.reply(chat("你好", system=MENTAL))
    forced = offline.OfflineProvider("offline", {"agent": "mental"}, None)
    assert "心理健康" in forced.reply(chat("你好", system=PHYSICAL))


@pytest.mark.parametrize("text", ["still there?", "Are you there?", "在不在", "还在吗"])
def test_asking_whether_anyone_is_there_is_greeted(provider, text):
    reply = provider.reply(chat(text, system=MENTAL))
    assert reply.startswith(("你好！", "Hi! I'm your mental health companion")), reply


# -- safety -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["我胸口痛，很闷", "I have chest pain", "突然呼吸困难", "爸爸口角歪斜，说话不清"])
def test_red_flag_symptoms_get_a_safety_note_first(provider, text):
    reply = provider.reply(chat(text))
    assert "120" in reply
    assert reply.index("120") < len(reply) // 2 + 60  # up front, not buried after tips


def test_a_denied_symptom_raises_no_alarm(provider):
    reply = provider.reply(chat("我没有胸痛，就是有点咳嗽"))
    assert offline.SAFETY_NOTES["chest"]["zh"] not in reply
    # a word between the negation and the symptom (an outside audit: the chest pain note)
    assert offline.SAFETY_NOTES["chest"]["en"] not in provider.reply(chat("I'm not having chest pain, just heartburn"))
    assert any(tip in reply for tip in TIPS["cough"]["tips"]["zh"])


@pytest.mark.parametrize("text", ["我不想活了", "有时候想自杀", "I want to kill myself"])
def test_self_harm_gets_hotlines_and_care(provider, text):
    reply = provider.reply(chat(text, system=MENTAL))
    for number in ("12356", "400-161-9995", "120", "110"):
        assert number in reply
    assert offline.NOTICE["zh"] not in reply and offline.NOTICE["en"] not in reply  # nothing on top of a crisis


def test_a_high_blood_pressure_reading_is_explained(provider):
    reply = provider.reply(chat("我量了血压 150/95，要紧吗？"))
    assert "150/95" in reply and "140/90" in reply
    assert "120" in provider.reply(chat("My blood pressure is 190/115"))


# -- the offline notice and streaming -------------------------------------------------------------


def test_the_offline_notice_comes_once_per_session(provider):
    first = provider.reply(chat("你好"))
    assert offline.NOTICE["zh"] in first
    second = provider.reply(chat("你好", first, "每天应该喝多少水"))
    assert offline.NOTICE["zh"] not in second
    quiet = offline.OfflineProvider("offline", {"notice": False}, None)
    assert offline.NOTICE["zh"] not in quiet.reply(chat("你好"))


@pytest.mark.parametrize("text", ["最近工作压力好大，每天都很焦虑", "How much water should I drink a day?"])
def test_stream_yields_natural_pieces_that_join_to_the_reply(provider, text):
    messages = chat(text)
    pieces = list(provider.stream(messages))
    assert len(pieces) >= 4
    assert "".join(pieces) == provider.reply(messages)
    assert all(piece.strip() for piece in pieces)


# -- the lexicon tagger ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text,label", [
    # Chinese
    ("今天好开心！", "happy"), ("考试通过了，太高兴了", "happy"), ("最近心情很低落，想哭", "sad"),
    ("明天要面试，好紧张", "anxious"), ("我很担心我妈的身体", "anxious"), ("工作压力好大", "anxious"),
    ("气死我了，他又迟到", "angry"), ("同事太烦人了", "angry"), ("加班到半夜，累死了", "tired"),
    ("好困啊", "tired"), ("现在感觉很平静", "calm"), ("我今天吃了面条", "neutral"),
    ("遇到困难了，麻烦你帮我看看", "neutral"),
    # negation
    ("我不开心", "sad"), ("一点也不开心", "sad"), ("我没有很开心", "sad"), ("没有开心", "sad"),
    ("我并没有觉得很开心", "sad"), ("我不难过", "calm"), ("不那么焦虑了", "calm"), ("我一点都不累", "neutral"),
    ("I'm not happy with my job", "sad"), ("I don't feel good", "sad"), ("Not feeling great today", "sad"),
    ("I can't relax", "anxious"), ("I'm not tired at all", "neutral"), ("not sad anymore", "calm"),
    # English
    ("I'm so happy today!", "happy"), ("I feel really anxious about tomorrow's exam", "anxious"),
    ("I'm furious at my landlord", "angry"), ("I'm exhausted after work", "tired"),
    ("Feeling calm and relaxed after yoga", "calm"), ("I had rice for lunch", "neutral"),
    # emoji, mixed, intensity and contrast
    ("😊😊", "happy"), ("今天😭", "sad"), ("😡", "angry"), ("😴", "tired"), ("😰 明天考试", "anxious"),
    ("今天好happy", "happy"), ("最近好stressed啊", "anxious"), ("有点累", "tired"),
    ("虽然很累，但是很开心", "happy"),
])
def test_lexicon_labels(tagger, text, label):
    assert tagger.tag(text, LABELS) == label


@pytest.mark.parametrize("text,label", [
    ("听起来你最近感到很难过。谢谢你愿意说出来，你不用一个人扛着。", "calm"),
    ("It sounds like you've been feeling really lonely lately. I'm here with you.", "calm"),
    ("真为你高兴！发生了什么好事？", "happy"),
])
def test_replies_that_comfort_look_calm(tagger, text, label):
    assert tagger.tag(text, LABELS) == label


@pytest.mark.parametrize("text", ["我今天很难过", "最近工作压力好大，每天都很焦虑", "气死我了", "好累啊",
                                  "I feel sad and alone", "I'm really angry at my brother"])
def test_the_offline_companion_comforting_a_user_looks_calm(provider, tagger, text):
    assert tagger.tag(text, LABELS) != "calm"
    assert tagger.tag(provider.reply(chat(text, system=MENTAL)), LABELS) == "calm"


def test_a_tip_never_gives_the_mascot_a_troubled_face(provider, tagger):
    """A reply about stress or tiredness is helpful, not stressed or tired."""
    questions = ["我量了血压 150/95，要紧吗？", "My blood pressure is 190/115", "我胸口痛", "爸爸口角歪斜，说话不清"]
    for topic in TIPS.values():
        for lang, question in (("zh", "关于{}有什么建议？"), ("en", "any advice about {}?")):
            questions += [question.format(keyword) for keyword in topic["keywords"][lang][:3]]
    for question in questions:
        reply = provider.reply(chat(question))
        assert tagger.tag(reply, LABELS) in ("calm", "neutral", "happy"), (question, reply)


def test_other_label_sets_are_mapped(tagger):
    assert tagger.tag("好开心", ["positive", "negative", "neutral"]) == "positive"
    assert tagger.tag("我很难过", ["positive", "negative", "neutral"]) == "negative"
    assert tagger.tag("吃饭了", ["positive", "negative", "neutral"]) == "neutral"
    assert tagger.tag("so angry", ["Joy", "Anger", "Neutral"]) == "Anger"
    assert tagger.tag("好开心", ["开心", "难过", "平静"]) == "开心"
    assert tagger.tag("I'm sleepy", ["joy", "sadness"]) == "joy"  # nothing fits: the first label
    assert tagger.tag("", LABELS) == "neutral"


def test_editing_the_lexicon_takes_effect(tmp_wm):
    tagger = lexicon.LexiconTagger({"lexicon": "prompts/emotion_lexicon.yaml"}, tmp_wm)
    assert tagger.tag("芜湖起飞", LABELS) == "neutral"
    path = tmp_wm.base / "prompts" / "emotion_lexicon.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["labels"]["happy"]["zh"]["芜湖"] = 2
    data["labels"]["excited"] = {"en": {"woohoo": 3}}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    touch_later(path)
    assert tagger.tag("芜湖起飞", LABELS) == "happy"
    assert tagger.tag("woohoo!", LABELS + ["excited"]) == "excited"  # a label of the user's own


# -- prompts ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["physical.txt", "mental.txt"])
def test_system_prompts_use_only_the_core_placeholders(name):
    template = string.Template((ROOT / "prompts" / name).read_text(encoding="utf-8"))
    assert template.is_valid()
    from_plugins = {"physical.txt": {"health_summary"}}.get(name, set())  # plugins/records.py fills it
    assert set(template.get_identifiers()) == {"name", "age", "gender", "today", "timezone"} | from_plugins
    text = template.substitute(name="小明", age="30", gender="男", today="2026-11-20", timezone="Asia/Shanghai",
                               health_summary="最近 7 天没有健康记录。")
    assert "120" in text and "12356" in text


def test_tips_file_has_enough_well_formed_topics():
    assert len(TIPS) >= 15
    for key, topic in TIPS.items():
        for lang in ("zh", "en"):
            assert topic["keywords"][lang], key
            tips = topic["tips"][lang]
            # 2-4 for any message; more only as tips for one kind of message ({when: ...}: an itchy rash, acne;
            # {about: someone_else}: how to help another person); a group whose complaints are their complaints'
            # topics (complaint_topic) has a few more, one for each subject that is its own (an elder's falls,
            # night-time weeing, appetite, constipation, swollen ankles, medicines, memory, a hip after a fall)
            # ...and one cared for in an illness (cared_for: dementia) its carers' few (session 19, A21)
            most = 18 if topic.get("cared_for") else 12 if topic.get("complaint_topic") else 8
            assert 2 <= len(tips) <= most and len([t for t in tips if not isinstance(t, dict)]) <= 4, key
