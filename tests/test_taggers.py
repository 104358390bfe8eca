"""Emotion taggers: the lexicon on the labelled set and on the rules it knows (negation,
intensity, emoji, mixed Chinese-English, sarcasm), and the llm tagger against a fake
OpenAI-compatible server: a tag the model writes first, stripped also mid-stream; one extra
classification call; the lexicon as fallback. Both the user's message and the reply are stored
with a label."""

import importlib.util
import sys
from pathlib import Path

import pytest

import wellmate
from cases import EMOTION_LABELLED, read_tsv
from fakes.openai_server import FakeOpenAI, chars
from test_chat import parse_sse

ROOT = Path(__file__).resolve().parent.parent
LABELS = ["happy", "calm", "neutral", "sad", "anxious", "angry", "tired"]


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


lexicon = load("test_taggers_lexicon", ROOT / "plugins" / "tagger_lexicon.py")


@pytest.fixture(scope="module")
def tagger():
    return lexicon.LexiconTagger({}, None)


# -- the lexicon on the labelled set ------------------------------------------------------------------


def test_labelled_set_is_varied_and_split():
    rows = read_tsv(EMOTION_LABELLED)
    assert len(rows) >= 300
    assert {row["label"] for row in rows} == set(LABELS)
    assert {"negation", "sarcasm", "emoji", "mixed", "short", "intensity"} <= {row["kind"] for row in rows}
    zh = sum(any("\u4e00" <= c <= "\u9fff" for c in row["text"]) for row in rows)
    assert zh >= 120 and len(rows) - zh >= 120
    assert {row["split"] for row in rows} == {"dev", "held"}


def test_lexicon_accuracy_on_the_labelled_set(tagger):
    rows = read_tsv(EMOTION_LABELLED)
    right = {split: [tagger.tag(r["text"], LABELS) == r["label"] for r in rows if r["split"] == split]
             for split in ("dev", "held")}
    overall = sum(right["dev"] + right["held"]) / len(rows)
    held = sum(right["held"]) / len(right["held"])
    assert overall >= 0.75, f"lexicon accuracy {overall:.1%} (goal 75%); run bench/emotion"
    # The half never tuned on: a floor against edits that fit the dev half and lose the rest.
    assert held >= 0.65, f"held-out accuracy {held:.1%}"


@pytest.mark.parametrize("text,label", [
    ("我不开心", "sad"), ("今天一点都不开心", "sad"), ("I'm not happy", "sad"), ("not feeling great today", "sad"),
    ("不紧张了", "calm"), ("不用担心我", "calm"), ("I'm not worried", "calm"),
    ("有点累", "tired"), ("超级生气", "angry"), ("a bit nervous", "anxious"),
    ("😭", "sad"), ("😡", "angry"), ("考完了🎉", "happy"), ("😴", "tired"),
    ("今天好 happy", "happy"), ("最近好 stress", "anxious"), ("好 tired", "tired"),
    ("太好了，又要加班了", "angry"), ("Wonderful, my flight got delayed again", "angry"),
    ("虽然又加班了，但是很开心", "happy"), ("又见面了，好开心", "happy"),
    ("Thanks a lot for nothing", "angry"),
])
def test_lexicon_rules(tagger, text, label):
    assert tagger.tag(text, LABELS) == label


def test_symptom_words_are_not_feelings(tagger):
    # A health app hears "一侧肢体无力" and "恶心" as symptoms, not as sadness or disgust.
    assert tagger.tag("一侧肢体无力", LABELS) == "neutral"
    assert tagger.tag("有点恶心想吐", LABELS) == "neutral"


# -- the llm tagger over real HTTP ---------------------------------------------------------------------


def llm_config(url, **emotion):
    return {
        "providers": {"fake": {"plugin": "openai", "base_url": url, "model": "m", "timeout": 2,
                               "connect_timeout": 1, "max_retries": 0}},
        "agents": {"physical": {"providers": ["fake", "offline"]}, "mental": {"providers": ["fake", "offline"]}},
        # A mini-program that draws the original seven labels for replies too.
        "emotion": {"tagger": "llm", "reply_labels": LABELS, **emotion},
        "safety": {"disclaimer": "never"},
        "chat": {"ping_seconds": 0.2},
    }


def stored(client, token, session_id):
    return client.get(f"/api/v1/health/sessions/{session_id}", token=token).json["messages"]["items"]


def test_inline_tag_is_read_and_stripped(make_wm, serve):
    with FakeOpenAI(reply="[sad] 听起来你今天过得很不容易。") as upstream:
        client = serve(make_wm(llm_config(upstream.url))).client
        token = client.register()["access_token"]
        reply = client.post("/api/v1/health/mental/chat", {"text": "今天好开心"}, token=token).json
        # The reply's label is the model's own, though its words alone would read differently.
        assert reply["content"] == "听起来你今天过得很不容易。" and reply["emotion"] == "sad"
        system = upstream.last.body["messages"][0]["content"]
        assert "square brackets" in system and "happy, calm, neutral, sad, anxious, angry, tired" in system
        user_message, answer = stored(client, token, reply["session_id"])
        assert user_message["emotion"] == "happy"  # the user's message: the fallback lexicon
        assert answer["emotion"] == "sad" and answer["content"] == reply["content"]
        # The history sent back to the model has no tags in it.
        client.post("/api/v1/health/mental/chat", {"text": "嗯", "session_id": reply["session_id"]}, token=token)
        assert "[sad]" not in str(upstream.last.body["messages"][1:])


@pytest.mark.parametrize("pieces", [1, 2, 3])
def test_inline_tag_split_across_stream_deltas_never_reaches_the_client(make_wm, serve, pieces):
    with FakeOpenAI(reply="[anxious]\n别着急，我们一步一步来。", chunker=chars(pieces)) as upstream:
        client = serve(make_wm(llm_config(upstream.url))).client
        token = client.register()["access_token"]
        r = client.post("/api/v1/health/mental/chat/stream", {"text": "明天考试"}, token=token)
        events = parse_sse(r.text)
        shown = "".join(data["delta"] for kind, data in events if kind == "message")
        assert "[" not in r.text.split("event: done")[0] and "anxious" not in r.text.split("event: done")[0]
        done = events[-1][1]
        assert shown == done["content"] == "别着急，我们一步一步来。" and done["emotion"] == "anxious"
        assert stored(client, token, done["session_id"])[-1]["content"] == done["content"]


@pytest.mark.parametrize("reply,expected", [
    ("[confused] 我好开心听到这个消息！", ("我好开心听到这个消息！", "happy")),  # not a label: stripped, lexicon decides
    ("我好开心听到这个消息！", ("我好开心听到这个消息！", "happy")),  # no tag at all
    ("[1] 先喝水。", ("[1] 先喝水。", "neutral")),  # not a tag: kept
])
def test_missing_or_unknown_label_falls_back_to_the_lexicon(make_wm, serve, reply, expected):
    with FakeOpenAI(reply=reply, chunker=chars(1)) as upstream:
        client = serve(make_wm(llm_config(upstream.url))).client
        token = client.register()["access_token"]
        plain = client.post("/api/v1/health/physical/chat", {"text": "hi"}, token=token).json
        assert (plain["content"], plain["emotion"]) == expected
        done = parse_sse(client.post("/api/v1/health/physical/chat/stream", {"text": "hi"}, token=token).text)[-1][1]
        assert (done["content"], done["emotion"]) == expected


def classifying_fake(reply, labels_for):
    """A fake whose chat replies are ``reply`` and whose label answers come from ``labels_for``."""
    def answer(request):
        system = request.body["messages"][0]["content"]
        if system.startswith("You label the feeling"):
            return labels_for(request.body["messages"][1]["content"])
        return reply
    return FakeOpenAI(reply=answer)


def test_call_mode_labels_the_users_message_and_the_reply(make_wm, serve):
    answers = {"我好紧张": "anxious", "别担心，我在。": "Calm."}
    with classifying_fake("别担心，我在。", lambda text: answers[text]) as upstream:
        client = serve(make_wm(llm_config(upstream.url, llm_mode="call", llm_provider="fake"))).client
        token = client.register()["access_token"]
        reply = client.post("/api/v1/health/mental/chat", {"text": "我好紧张"}, token=token).json
        assert reply["emotion"] == "calm"
        assert [m["emotion"] for m in stored(client, token, reply["session_id"])] == ["anxious", "calm"]
        classify = [r for r in upstream.requests if r.body["messages"][0]["content"].startswith("You label")]
        assert len(classify) == 2 and all(r.body["max_tokens"] == 16 and r.body["temperature"] == 0 for r in classify)
        chat = [r for r in upstream.requests if r not in classify]
        assert "square brackets" not in chat[0].body["messages"][0]["content"]  # no inline instruction


def test_call_mode_falls_back_when_the_answer_is_no_label_or_the_provider_is_down(make_wm, serve):
    with classifying_fake("好的。", lambda text: "I cannot tell") as upstream:
        client = serve(make_wm(llm_config(upstream.url, llm_mode="call", llm_provider="fake"))).client
        token = client.register()["access_token"]
        reply = client.post("/api/v1/health/mental/chat", {"text": "气死我了"}, token=token).json
        # The reply to an angry user is caring, shown as calm to a mini-program of the seven labels.
        assert [m["emotion"] for m in stored(client, token, reply["session_id"])] == ["angry", "calm"]
    # The upstream is gone: the offline companion answers and the lexicon labels both messages.
    reply = client.post("/api/v1/health/mental/chat", {"text": "今天好开心"}, token=token).json
    assert reply["provider"] == "offline"
    assert stored(client, token, reply["session_id"])[0]["emotion"] == "happy"


def test_llm_settings_are_checked_at_startup(make_wm):
    with pytest.raises(wellmate.ConfigError, match="emotion.llm_provider"):
        make_wm({"emotion": {"tagger": "llm", "llm_mode": "call"}})
    with pytest.raises(wellmate.ConfigError, match="emotion.fallback"):
        make_wm({"emotion": {"tagger": "llm", "fallback": "llm"}})
    with pytest.raises(wellmate.ConfigError, match="emotion.llm_mode"):
        make_wm({"emotion": {"tagger": "llm", "llm_mode": "sometimes"}})
    wm = make_wm({"emotion": {"tagger": "llm"}})  # inline with the shipped offline provider: fine
    assert wm.config["emotion"]["fallback"] == "model"


def test_lexicon_tagger_needs_no_help_from_the_model(make_wm):
    wm = make_wm({"emotion": {"tagger": "lexicon"}})
    assert wm.service("chat").tagger.instructions(LABELS) == "" and wm.service("chat").tagger.reader(LABELS) is None
