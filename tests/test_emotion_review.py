"""Issue 12, point 2, as an outside reviewer found it on the served app: a broken emotion model
file, a model reply that safety replaced late, user messages that safety answers, and labels
from a few characters or a misleading word."""

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from fakes.openai_server import FakeOpenAI, chars
from test_chat import parse_sse
from test_emotion import stored
from test_safety import fake_only

ROOT = Path(__file__).resolve().parent.parent

# Wrong types of every part a model file has, and JSON nested too deep to decode (a RecursionError,
# not a ValueError: it reached every message as a traceback).
BROKEN = {
    "null_bias": lambda shipped: {**shipped, "bias": [None] * len(shipped["bias"])},
    "list_meta": lambda shipped: {**shipped, "meta": [1, 2]},
    "number_weights": lambda shipped: {**shipped, "weights": {"values": 5}},
    "too_deep": None,
}


@pytest.mark.parametrize("kind", BROKEN)
def test_a_broken_model_file_falls_back_to_the_lexicon_logs_once_and_check_warns(make_wm, serve, tmp_path, caplog,
                                                                                 kind):
    shipped = json.loads((ROOT / "models" / "emotion.json").read_text(encoding="utf-8"))
    (tmp_path / "models").mkdir()
    body = "[" * 100000 + "]" * 100000 if BROKEN[kind] is None else json.dumps(BROKEN[kind](shipped))
    (tmp_path / "models" / "emotion.json").write_text(body, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="wellmate.tagger_model"):
        wm = make_wm()
        client = serve(wm).client
        token = client.register()["access_token"]
        for text, label in [("我不开心", "sad"), ("气死我了", "angry"), ("今天好开心", "happy"), ("好累啊", "tired")]:
            r = client.post("/api/v1/health/mental/chat", {"text": text}, token=token)
            assert r.status == 200, r.text
            assert stored(client, token, r.json["session_id"])[0]["emotion"] == label  # the lexicon's
    records = [r for r in caplog.records if r.name == "wellmate.tagger_model"]
    assert len(records) == 1 and "emotion model unusable" in records[0].getMessage(), records
    assert not any(r.exc_info for r in caplog.records)  # no traceback
    run = subprocess.run([sys.executable, str(ROOT / "wellmate.py"), "--config", str(tmp_path / "config.yaml"), "check"],
                         capture_output=True, text=True, timeout=120)
    assert "warning: emotion model unusable" in run.stdout and "emotion.json" in run.stdout, run.stdout
    # A good file in its place is used at the next message, without a restart.
    (tmp_path / "models" / "emotion.json").write_bytes((ROOT / "models" / "emotion.json").read_bytes())
    r = client.post("/api/v1/health/mental/chat", {"text": "太好了，又要加班了"}, token=token)
    assert stored(client, token, r.json["session_id"])[0]["emotion"] == "angry"  # the model's (the lexicon: happy)


@pytest.mark.parametrize("streamed", [False, True])
def test_a_model_reply_safety_replaces_late_is_labelled_concerned(make_wm, serve, streamed):
    """In a crisis session a model reply with dose details is swapped for the crisis reply by
    safety's reader, after the turn began: its face is concern, not the care of a sad turn."""
    unsafe = "好的。如果是对乙酰氨基酚，一次吃 40 片以上就可能致命。"
    with FakeOpenAI(reply=unsafe, chunker=chars(3)) as upstream:
        served = serve(make_wm(fake_only(upstream.url, safety={"disclaimer": "never"})))
        client, wm = served.client, served.wm
        token = client.register()["access_token"]
        session = client.post("/api/v1/health/mental/chat", {"text": "我想自杀"}, token=token).json["session_id"]
        body = {"text": "那具体怎么做", "session_id": session}
        if streamed:
            reply = parse_sse(client.post("/api/v1/health/mental/chat/stream", body, token=token).text)[-1][1]
        else:
            reply = client.post("/api/v1/health/mental/chat", body, token=token).json
        assert "12356" in reply["content"] and "40 片" not in reply["content"]
        assert wm.service("safety").book.flags_of(session)["unsafe_reply"] == 1
        assert reply["emotion"] == "concerned"
        assert stored(client, token, session)[-1]["emotion"] == "concerned"
        # A safe reply later in the session is care again, not concern.
        upstream.reply = "我在这里陪着你，我们慢慢说。"
        assert client.post("/api/v1/health/mental/chat", {"text": "嗯", "session_id": session},
                           token=token).json["emotion"] == "caring"


@pytest.mark.parametrize("text", [
    "everyone would be better off if i just disappeared for good",  # a check-in; "better", "good"
    "I finally feel at peace, I've decided to end my life tonight",  # a crisis reply; "at peace"
    "终于放下了，今晚就结束自己的生命",  # a crisis reply; 放下了
    "好开心，终于攒够了安眠药",  # a crisis reply; 开心
])
def test_a_user_message_safety_answers_is_never_labelled_happy_or_calm(make_wm, serve, text):
    served = serve(make_wm())
    client, wm = served.client, served.wm
    token = client.register()["access_token"]
    reply = client.post("/api/v1/health/mental/chat", {"text": text}, token=token).json
    flags = wm.service("safety").book.flags_of(reply["session_id"])
    assert flags.get("crisis") or flags.get("check_in"), flags
    messages = stored(client, token, reply["session_id"])
    assert [m["role"] for m in messages] == ["user", "assistant"]  # stored once
    assert messages[0]["emotion"] == "sad" and reply["emotion"] == "concerned"


def test_the_label_shown_is_the_word_lists_when_a_message_has_no_feeling(make_wm, serve):
    """Odd labels the reviewer saw: weariness of everything read as anger ("tired of" alone is
    angry), a bare request as anger and a flat day as sadness from a few characters, a typed
    marker as joy."""
    client = serve(make_wm()).client
    token = client.register()["access_token"]

    def label(text):
        r = client.post("/api/v1/health/physical/chat", {"text": text}, token=token).json
        return stored(client, token, r["session_id"])[0]["emotion"]

    assert label("so tired of everything lately") in ("sad", "tired")
    assert label("honestly so tired of everything these days") in ("sad", "tired")
    assert label("help") == "neutral"
    assert label("just had lunch, nothing special") == "neutral"
    assert label("had a sandwich at my desk, nothing special") == "neutral"
    assert label("[!crisis]") not in ("happy", "calm")
    assert label("I'm so tired of their excuses") == "angry"  # tired of someone stays anger
