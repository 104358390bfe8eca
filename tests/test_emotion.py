"""Issue 12, point 2: the ``model`` emotion tagger (a trained classifier over the lexicon's
findings, the lexicon as fallback) labels user messages, sarcasm and negation included; replies
are labelled for what the mascot shows (caring, concerned, encouraging, happy, calm, neutral),
from the reply's words and the turn (the user's label, safety's crisis reply or note), and mapped
to the original seven labels for a mini-program that knows only those."""

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

import wellmate
from cases import EMOTION_LABELLED, REPLY_SAMPLES, read_tsv
from fakes.openai_server import FakeOpenAI, chars
from test_chat import parse_sse

ROOT = Path(__file__).resolve().parent.parent
LABELS = ["happy", "calm", "neutral", "sad", "anxious", "angry", "tired"]
REPLY_LABELS = ["caring", "concerned", "encouraging", "happy", "calm", "neutral"]


def stored(client, token, session_id):
    return client.get(f"/api/v1/health/sessions/{session_id}", token=token).json["messages"]["items"]


# -- user messages: the model tagger ------------------------------------------------------------------


def test_model_tagger_is_the_shipped_default_and_beats_the_lexicon_on_held_rows(make_wm):
    wm = make_wm()
    assert wm.config["emotion"]["tagger"] == "model"
    tagger = wm.service("chat").tagger
    assert tagger.model() is not None, "models/emotion.json is shipped"
    held = [r for r in read_tsv(EMOTION_LABELLED) if r["split"] == "held"]  # never trained on
    model_right = sum(wm.service("chat").tag(r["text"]) == r["label"] for r in held) / len(held)
    lexicon_right = sum(tagger.lexicon.tag(r["text"], LABELS) == r["label"] for r in held) / len(held)
    assert model_right >= 0.8 and model_right > lexicon_right, (model_right, lexicon_right)


@pytest.mark.parametrize("text,label", [
    # sarcasm: a praise word that complains is not happy
    ("太好了，又要加班了", "angry"), ("呵呵，周末又泡汤了，真开心", "angry"), ("这服务可真“贴心”啊", "angry"),
    ("wonderful, the printer jammed again 🙄", "angry"), ("oh great, the train is late again", "angry"),
    # negation
    ("我不开心", "sad"), ("今天一点都不开心", "sad"), ("I'm not happy about it", "sad"),
    ("not worried anymore, it went fine", "calm"), ("不紧张了，准备好了", "calm"),
    # and the plain cases stay plain
    ("今天升职了，太开心了", "happy"), ("好累啊，想睡觉", "tired"), ("每天应该喝多少水？", "neutral"),
])
def test_model_tagger_on_sarcasm_and_negation(make_wm, text, label):
    assert make_wm().service("chat").tag(text) == label


@pytest.mark.parametrize("content", [None, "{not json", json.dumps({"format": "something else"})])
def test_a_missing_or_broken_model_file_falls_back_to_the_lexicon_and_logs_once(make_wm, serve, tmp_path, caplog,
                                                                                content):
    name = "models/mine.json"  # not shipped, so no shipped copy stands in for it
    if content is not None:
        (tmp_path / "models").mkdir()
        (tmp_path / name).write_text(content, encoding="utf-8")
    wm = make_wm({"emotion": {"model": name}})
    client = serve(wm).client
    token = client.register()["access_token"]
    with caplog.at_level(logging.WARNING, logger="wellmate.tagger_model"):
        for text, label in [("我不开心", "sad"), ("气死我了", "angry"), ("今天好开心", "happy")]:
            r = client.post("/api/v1/health/mental/chat", {"text": text}, token=token)
            assert r.status == 200, r.text
            assert stored(client, token, r.json["session_id"])[0]["emotion"] == label  # the lexicon's
    warnings = [r for r in caplog.records if "emotion model unusable" in r.getMessage()]
    assert len(warnings) == 1 and "train-emotion" in warnings[0].getMessage()
    assert wm.service("chat").tagger.model() is None


def test_the_model_is_read_again_when_its_file_changes(make_wm, tmp_path):
    (tmp_path / "models").mkdir()
    wm = make_wm({"emotion": {"model": "models/mine.json"}})
    assert wm.service("chat").tagger.model() is None
    (tmp_path / "models" / "mine.json").write_bytes((ROOT / "models" / "emotion.json").read_bytes())
    assert wm.service("chat").tagger.model() is not None and wm.service("chat").tag("太好了，又要加班了") == "angry"


def test_lexicon_and_llm_stay_choosable_and_llm_falls_back_to_the_model(make_wm):
    assert type(make_wm({"emotion": {"tagger": "lexicon"}}).service("chat").tagger).__name__ == "LexiconTagger"
    wm = make_wm({"emotion": {"tagger": "llm", "model_confidence": 0.5}})
    assert type(wm.service("chat").tagger.fallback).__name__ == "ModelTagger"
    assert wm.config["emotion"]["fallback"] == "model" and wm.config["emotion"]["model_confidence"] == 0.5
    wm = make_wm({"emotion": {"tagger": "llm", "fallback": "lexicon"}})
    assert type(wm.service("chat").tagger.fallback).__name__ == "LexiconTagger"


def test_train_emotion_writes_the_weights_and_prints_held_accuracy(make_wm, tmp_path):
    make_wm()  # writes tmp_path/config.yaml from the shipped one
    data = tmp_path / "emotion_mine.tsv"
    rows = ["label\tkind\ttext"]
    for i in range(40):
        rows += [f"happy\tplain\t今天好开心 {i}", f"sad\tplain\t心里好难过 {i}", f"tired\tplain\tso tired today {i}",
                 f"angry\tplain\tI'm furious with them {i}"]
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "models" / "emotion.json"
    run = subprocess.run([sys.executable, str(ROOT / "wellmate.py"), "--config", str(tmp_path / "config.yaml"),
                          "train-emotion", "--data", str(data), "--out", str(out), "--epochs", "3"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "held-out accuracy" in run.stdout and "lang zh" in run.stdout and "lang en" in run.stdout
    assert "emotion_labelled.tsv:" in run.stdout  # its dev rows train too, its held rows are measured
    wm = make_wm({"emotion": {"model": str(out)}})
    assert wm.service("chat").tagger.model().labels == LABELS and wm.service("chat").tag("今天好开心") == "happy"
    # A bad data file is an error message, not a traceback.
    data.write_text("label\ttext\nhappy\n", encoding="utf-8")
    run = subprocess.run([sys.executable, str(ROOT / "wellmate.py"), "--config", str(tmp_path / "config.yaml"),
                          "train-emotion", "--data", str(data), "--out", str(out)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 1 and "error:" in run.stderr and "Traceback" not in run.stderr


# -- replies: what the mascot shows --------------------------------------------------------------------


def test_offline_replies_show_concern_care_and_joy(make_wm, serve):
    client = serve(make_wm()).client
    token = client.register()["access_token"]

    def turn(text, agent="mental"):
        reply = client.post(f"/api/v1/health/{agent}/chat", {"text": text}, token=token).json
        user, answer = stored(client, token, reply["session_id"])
        assert answer["emotion"] == reply["emotion"]
        return user["emotion"], reply["emotion"]

    assert turn("我真的不想活了")[1] == "concerned"  # the crisis reply
    assert turn("突然胸痛，左臂发麻，喘不上气", "physical")[1] == "concerned"  # an urgent note
    assert turn("最近心情很低落，什么都不想做") == ("sad", "caring")
    # Sarcasm: the user is angry, and the offline reply must not cheer.
    assert turn("太好了，又要加班了") == ("angry", "caring")
    assert turn("oh great, the train is late again")[1] not in ("happy", "encouraging")
    assert turn("今天升职了，太开心了") == ("happy", "happy")


def answering(replies: dict):
    """A fake model whose reply to each user text is ``replies[text]``."""
    return FakeOpenAI(reply=lambda request: replies[request.body["messages"][-1]["content"]])


def upstream_config(url, **emotion):
    return {"providers": {"fake": {"plugin": "openai", "base_url": url, "model": "m", "timeout": 2,
                                   "connect_timeout": 1, "max_retries": 0}},
            "agents": {"physical": {"providers": ["fake"]}, "mental": {"providers": ["fake"]}},
            "safety": {"disclaimer": "never"}, "emotion": emotion}


REPLIES = {
    "我现在好紧张，心跳得好快": ("我们先一起深呼吸：吸气四秒，再慢慢呼气六秒，重复几次。", "calm", "calm"),
    "今天走了一万步": ("一万步，做得很好！坚持下去，每天都在进步。", "encouraging", "happy"),
    "I passed my driving test!": ("Congratulations! That's wonderful news.", "happy", "happy"),
    "How much sleep do adults need?": ("Most adults need 7 to 9 hours of sleep a night.", "neutral", "neutral"),
    "I'm exhausted, the baby kept us up all night": ("Nights like that are so draining. Rest when you can.",
                                                     "caring", "calm"),
}


@pytest.mark.parametrize("reply_labels", [None, LABELS])
def test_model_replies_are_labelled_from_their_words_and_the_turn(make_wm, serve, reply_labels):
    """With the shipped reply labels, and for a mini-program that knows only the original seven
    (caring shown as calm, encouraging as happy)."""
    with answering({text: reply for text, (reply, _, _) in REPLIES.items()}) as upstream:
        emotion = {"reply_labels": reply_labels} if reply_labels else {}
        client = serve(make_wm(upstream_config(upstream.url, **emotion))).client
        token = client.register()["access_token"]
        for text, (_, new, old) in REPLIES.items():
            want = old if reply_labels else new
            assert client.post("/api/v1/health/mental/chat", {"text": text}, token=token).json["emotion"] == want, text
            done = parse_sse(client.post("/api/v1/health/mental/chat/stream", {"text": text}, token=token).text)[-1]
            assert done[1]["emotion"] == want, text


def test_seven_label_hosts_see_concern_as_anxious_and_old_configs_keep_the_seven(make_wm, serve):
    for emotion, crisis, sad in [({"reply_labels": LABELS}, "anxious", "calm"), ({"reply_labels": []}, "anxious", "calm"),
                                 ({}, "concerned", "caring")]:
        client = serve(make_wm({"emotion": emotion})).client
        token = client.register(f"user{len(emotion)}{len(str(emotion))}")["access_token"]
        assert client.post("/api/v1/health/mental/chat", {"text": "我想自杀"}, token=token).json["emotion"] == crisis
        assert client.post("/api/v1/health/mental/chat", {"text": "我好难过"}, token=token).json["emotion"] == sad


def test_llm_inline_mode_asks_for_a_reply_label(make_wm, serve):
    with FakeOpenAI(reply="[encouraging] 坚持得很好，继续加油！", chunker=chars(2)) as upstream:
        client = serve(make_wm(upstream_config(upstream.url, tagger="llm"))).client
        token = client.register()["access_token"]
        done = parse_sse(client.post("/api/v1/health/mental/chat/stream", {"text": "今天跑了五公里"},
                                     token=token).text)[-1][1]
        assert done["content"] == "坚持得很好，继续加油！" and done["emotion"] == "encouraging"
        assert ", ".join(REPLY_LABELS) in upstream.last.body["messages"][0]["content"]


def test_reply_labels_must_be_a_list(make_wm):
    with pytest.raises(wellmate.ConfigError, match="emotion.reply_labels"):
        make_wm({"emotion": {"reply_labels": "caring"}})


def test_sample_replies_mostly_get_the_label_a_person_chose(make_wm):
    wm = make_wm()
    samples = read_tsv(REPLY_SAMPLES)
    right = 0
    for row in samples:
        turn = type("SampleTurn", (), {"urgent": False, "user_emotion": wm.service("chat").tag(row["user"]), "session": {}})()
        right += wm.service("chat").reply_tag(row["text"], turn) == row["label"]
    assert len({row["label"] for row in samples}) == 6 and right / len(samples) >= 0.85


@pytest.mark.parametrize("text,sarcastic", [
    ("太棒了，又上夜班", True), ("nice. another double shift 🙃", True),
    ("我对面试可淡定了，所以才一晚上看了二十遍简历", True),
    ("太好了，孩子终于退烧了！", False), ("I'm so happy with my results, that's why I treated myself to cake", False),
])
def test_chat_asks_the_tagger_whether_a_message_is_sarcastic_before_showing_cheer(make_wm, text, sarcastic):
    # session 15 (EMO): a reply to a sarcastic message is never shown happy or encouraging, whatever
    # label the message got; chat asks only when it would show cheer
    chat = make_wm().service("chat")
    assert chat.sarcastic(text) is sarcastic
    turn = type("SarcasmTurn", (), {"urgent": False, "user_emotion": "tired", "session": {},
                                    "turn": type("T", (), {"text": text, "flags": {}})()})()
    shown = chat.reply_tag("You kept going through all of it, that's real progress, well done!", turn)
    # the same reply to a sincere message keeps its encouragement: the guard is what turns it
    assert shown == ("caring" if sarcastic else "encouraging"), shown
