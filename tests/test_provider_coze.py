"""The coze provider through the real app over HTTP, against a fake Coze speaking the Chat API v3
wire format (tests/fakes/coze_server.py): conversations kept per session, both APIs (create, poll,
message list; and the SSE stream), and Coze's errors before and during a reply."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from fakes.coze_server import FakeCoze
from fakes.http_upstream import FakeUpstream
from test_chat import stream
from test_chat_upstream import raw_stream_request

ROOT = Path(__file__).resolve().parent.parent
REPLY = "多喝温水，早点休息。Sleep well!"


def coze_config(url, **provider):
    return {
        "providers": {"coze": {"plugin": "coze", "base_url": url + "/", "bot_id": "7348293334",
                               "api_key": "pat_fake", "timeout": 2, **provider}},
        "agents": {"physical": {"providers": ["coze", "offline"]}, "mental": {"providers": ["coze", "offline"]}},
        "chat": {"ping_seconds": 0.2},
        "safety": {"disclaimer": "never"},  # the bot's words arrive as they are
    }


@pytest.fixture
def coze():
    with FakeCoze(reply=REPLY) as fake:
        yield fake


@pytest.fixture
def served(make_wm, serve, coze):
    return serve(make_wm(coze_config(coze.url)))


def signed_in(client, username="xiaoming"):
    return client.register(username=username, full_name="小明", age=28)["access_token"]


def chat(client, token, text, session=None, agent="physical"):
    r = client.post(f"/api/v1/health/{agent}/chat", {"text": text, "session_id": session}, token=token)
    assert r.status == 200, r.text
    return r.json


def chat_stream(client, token, text, session=None, agent="physical"):
    """(deltas, the last event, session id) of a streamed turn."""
    events = stream(client, agent, {"text": text, **({"session_id": session} if session else {})}, token)
    return [d["delta"] for kind, d in events if kind == "message"], events[-1], events[1][1]["session_id"]


def stored(client, token, session):
    return client.get(f"/api/v1/health/sessions/{session}", token=token).json["messages"]["items"]


def question(text):
    return {"role": "user", "type": "question", "content": text, "content_type": "text"}


def answer(text):
    return {"role": "assistant", "type": "answer", "content": text, "content_type": "text"}


# -- answers --------------------------------------------------------------------------------------


def test_chat_creates_polls_and_reads_the_answer_only(served, coze):
    client = served.client
    registered = client.register(username="xiaoming", full_name="小明")
    token, user_id = registered["access_token"], registered["user"]["uuid"]
    reply = chat(client, token, "最近总是口渴")
    assert reply["content"] == REPLY and reply["provider"] == "coze"  # not the verbose or follow_up messages
    request = coze.last
    assert request.headers["authorization"] == "Bearer pat_fake" and "conversation_id" not in request.query
    assert request.body == {"bot_id": "7348293334", "user_id": f"wellmate-{user_id}", "stream": False,
                            "auto_save_history": True, "additional_messages": [question("最近总是口渴")]}
    assert request.chat["status"] == "completed"


def test_stream_sends_answer_deltas_once(served, coze):
    coze.pieces = 3
    deltas, (kind, done), _ = chat_stream(served.client, signed_in(served.client), "hi")
    assert deltas == [REPLY[i:i + 3] for i in range(0, len(REPLY), 3)]
    assert kind == "done" and done["content"] == REPLY and done["provider"] == "coze"  # message.completed not added
    assert coze.last.body["stream"] is True


def test_several_answer_messages_are_paragraphs(served, coze):
    coze.reply = ["第一段。", "第二段。"]
    token = signed_in(served.client)
    assert chat(served.client, token, "hi")["content"] == "第一段。\n\n第二段。"
    assert chat_stream(served.client, token, "hi")[1][1]["content"] == "第一段。\n\n第二段。"


# -- conversations --------------------------------------------------------------------------------


def test_a_session_continues_its_conversation_and_a_new_session_starts_one(served, coze):
    client = served.client
    token = signed_in(client)
    session = chat(client, token, "一")["session_id"]
    conversation = coze.last.chat["conversation_id"]
    chat(client, token, "二", session)
    _, (kind, _), _ = chat_stream(client, token, "三", session)
    assert kind == "done"
    assert [c.query.get("conversation_id") for c in coze.chats] == [None, conversation, conversation]
    # Coze has the history: each turn sends only its own message.
    assert coze.conversations[conversation].questions == [question("一"), question("二"), question("三")]
    chat(client, token, "新的话题")
    assert "conversation_id" not in coze.last.query and coze.last.chat["conversation_id"] != conversation
    assert len(coze.conversations) == 2


def test_two_users_never_share_a_conversation(served, coze):
    client = served.client
    tokens = [signed_in(client, "anna"), signed_in(client, "bobby")]
    for token in tokens:
        session = chat(client, token, "你好")["session_id"]
        chat_stream(client, token, "再聊聊", session)
    assert len(coze.conversations) == 2
    owners = [conversation.user_ids for conversation in coze.conversations.values()]
    assert all(len(set(users)) == 1 and len(users) == 2 for users in owners)
    assert owners[0][0] != owners[1][0]
    assert not any(name in str(owners) for name in ("anna", "bobby", "小明"))  # an id, never the username


def test_a_conversation_coze_no_longer_knows_is_replaced_with_recent_history(served, coze):
    client = served.client
    token = signed_in(client)
    session = chat(client, token, "我睡不好")["session_id"]
    old = coze.last.chat["conversation_id"]
    chat(client, token, "晚上总醒", session)
    coze.forget(old)  # deleted in the Coze console
    deltas, (kind, _), _ = chat_stream(client, token, "怎么办？", session)
    assert kind == "done" and "".join(deltas) == REPLY
    rejected, retried = coze.chats[-2:]
    assert rejected.query["conversation_id"] == old and "conversation_id" not in retried.query
    assert retried.body["additional_messages"] == [
        question("我睡不好"), answer(REPLY), question("晚上总醒"), answer(REPLY), question("怎么办？")]
    new = retried.chat["conversation_id"]
    chat(client, token, "谢谢", session)
    assert coze.last.query["conversation_id"] == new  # the session now keeps the new one


def test_a_session_without_a_conversation_sends_its_history(served, coze):
    """Coze was down for the session's first turn (the offline companion answered): its first
    Coze turn starts a conversation that carries what was said."""
    client = served.client
    token = signed_in(client)
    coze.mode = "error_body"
    first = chat(client, token, "头疼")
    assert first["provider"] == "offline"
    coze.mode = "ok"
    assert chat(client, token, "还是疼", first["session_id"])["provider"] == "coze"
    assert coze.last.body["additional_messages"] == [
        question("头疼"), answer(first["content"]), question("还是疼")]


def test_a_session_with_another_bot_starts_a_new_conversation_with_its_history(make_wm, serve, coze):
    served = serve(make_wm(coze_config(coze.url)))
    token = signed_in(served.client)
    session = chat(served.client, token, "一")["session_id"]
    served.stop()
    served.wm.close()  # the operator points the provider at another bot and restarts
    coze.bot_id = "7348290000"
    client = serve(make_wm(coze_config(coze.url, bot_id="7348290000"))).client
    assert chat(client, token, "二", session)["provider"] == "coze"
    assert "conversation_id" not in coze.last.query and len(coze.conversations) == 2
    assert coze.last.body["additional_messages"] == [question("一"), answer(REPLY), question("二")]


def test_custom_variables_are_filled_from_placeholders(make_wm, serve, coze):
    variables = {"name": "$name", "persona": "$system", "price": "5$$", "unknown": "$nothing"}
    client = serve(make_wm(coze_config(coze.url, custom_variables=variables))).client
    token = signed_in(client)
    chat(client, token, "hi")
    sent = coze.last.body["custom_variables"]
    assert sent["name"] == "小明" and sent["price"] == "5$" and sent["unknown"] == "$nothing"
    assert "小明" in sent["persona"] and "$" not in sent["persona"]  # the rendered system prompt


def test_a_call_outside_a_users_turn_is_a_one_off_conversation(served, coze):
    """A reminder to phrase, a label to find: no user's turn, so no session to continue."""
    coze_provider = served.wm.service("chat").provider("coze")
    messages = [{"role": "system", "content": "Say it kindly."}, {"role": "user", "content": "Take your pills."}]
    assert coze_provider.reply(messages) == REPLY
    assert "".join(coze_provider.stream(messages)) == REPLY
    assert len(coze.conversations) == 2
    assert [c.body["user_id"] for c in coze.chats] == ["wellmate", "wellmate"]
    assert coze.last.body["additional_messages"] == [question("Take your pills.")]


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("code, status", [(4100, 200), (4100, 401), (5000, 200), (4006, 200)])
def test_a_refusal_falls_back_to_the_next_provider(served, coze, code, status):
    coze.mode, coze.error_code, coze.error_status = "error_body", code, status
    client = served.client
    token = signed_in(client)
    assert chat(client, token, "I have a headache")["provider"] == "offline"
    _, (kind, done), _ = chat_stream(client, token, "I have a headache")
    assert kind == "done" and done["provider"] == "offline"


@pytest.mark.parametrize("mode", ["error_event", "chat_failed", "requires_action", "broken"])
def test_an_error_before_any_text_falls_back(served, coze, mode):
    coze.mode, coze.fault_after = mode, 0
    client = served.client
    token = signed_in(client)
    _, (kind, done), _ = chat_stream(client, token, "hello")
    assert kind == "done" and done["provider"] == "offline"
    if mode in ("chat_failed", "requires_action"):  # the non-stream API has these too
        assert chat(client, token, "hello")["provider"] == "offline"


def test_a_server_that_is_not_coze_falls_back(make_wm, serve):
    """base_url pointing at some other server: its answers are no Coze answers, not a 500."""
    with FakeUpstream() as other:
        client = serve(make_wm(coze_config(other.url))).client
        token = signed_in(client)
        assert chat(client, token, "hello")["provider"] == "offline"
        _, (kind, done), _ = chat_stream(client, token, "hello")
        assert kind == "done" and done["provider"] == "offline"
        assert other.requests[0][1] == "/v3/chat"


def test_a_wrong_bot_id_falls_back(make_wm, serve, coze):
    client = serve(make_wm(coze_config(coze.url, bot_id="1111"))).client
    assert chat(client, signed_in(client), "hello")["provider"] == "offline"
    assert coze.last.chat is None


@pytest.mark.parametrize("mode", ["error_event", "chat_failed", "broken", "stall"])
def test_an_error_mid_stream_ends_with_an_error_event_and_keeps_the_partial_reply(served, coze, mode):
    coze.mode, coze.fault_after, coze.pieces = mode, 2, 2
    client = served.client
    token = signed_in(client)
    deltas, (kind, error), session = chat_stream(client, token, "tell me")
    assert deltas == [REPLY[:2], REPLY[2:4]]
    assert kind == "error" and error["code"] == "provider_error" and error["message"]
    messages = stored(client, token, session)
    assert messages[1]["content"] == REPLY[:4] and messages[1]["incomplete"] is True


def test_a_stall_before_text_is_a_timeout_that_cancels_the_chat_and_falls_back(served, coze):
    coze.mode, coze.fault_after = "stall", 0
    client = served.client
    token = signed_in(client)
    _, (kind, done), session = chat_stream(client, token, "hello")
    assert kind == "done" and done["provider"] == "offline"
    assert coze.cancelled == [coze.last.chat["id"]]  # else the conversation stays busy (4016)
    reply = chat(client, token, "hello again", session)  # not streamed: the chat never completes
    assert reply["provider"] == "offline" and len(coze.cancelled) == 2
    coze.mode = "ok"
    assert chat(client, token, "and now?", session)["provider"] == "coze"
    assert coze.last.query["conversation_id"] == coze.chats[0].chat["conversation_id"]


def test_a_client_gone_mid_stream_cancels_the_chat_so_the_next_turn_is_answered(served, coze):
    coze.mode, coze.fault_after, coze.stall_seconds = "stall", 1, 30
    token = signed_in(served.client)
    s = raw_stream_request(served.port, token, "hi")
    received = b""
    while b'"delta"' not in received:
        received += s.recv(4096)
    s.close()  # the mini-program page was closed
    session = json.loads(received.split(b"event: start\ndata: ", 1)[1].split(b"\n", 1)[0])["session_id"]
    deadline = time.monotonic() + 10
    while not coze.cancelled and time.monotonic() < deadline:
        time.sleep(0.05)
    assert coze.cancelled == [coze.last.chat["id"]]
    coze.mode = "ok"
    assert chat(served.client, token, "still there?", session, "mental")["provider"] == "coze"  # not busy (4016)


def test_a_busy_conversation_falls_back_and_is_kept(served, coze):
    client = served.client
    token = signed_in(client)
    session = chat(client, token, "一")["session_id"]
    conversation = coze.conversations[coze.last.chat["conversation_id"]]
    conversation.running = "another chat"  # e.g. from the Coze console
    assert chat(client, token, "二", session)["provider"] == "offline"
    conversation.running = None
    assert chat(client, token, "三", session)["provider"] == "coze"
    assert coze.last.query["conversation_id"] == conversation.id


# -- config ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("key, value, said", [
    ("bot_id", None, "providers.coze.bot_id: required"),
    ("api_key", None, "providers.coze.api_key: required"),
    ("api_key", "", "providers.coze.api_key: required"),
    ("bot_id", "my-bot", "providers.coze.bot_id: must be the bot's digits"),
])
def test_check_names_a_missing_or_bad_key_by_its_path(make_wm, tmp_path, coze, key, value, said):
    make_wm(coze_config(coze.url))  # writes config.yaml
    path = tmp_path / "config.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["providers"]["coze"][key] = value
    if value is None:
        del config["providers"]["coze"][key]
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    run = subprocess.run([sys.executable, str(ROOT / "wellmate.py"), "--config", str(path), "check"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and said in run.stdout, run.stdout + run.stderr


# -- the official SDK reads the fake as it reads Coze -------------------------------------------------


def cozepy_or_skip():
    return pytest.importorskip("cozepy", reason="cozepy (the official Coze SDK, requirements-dev.txt) "
                                                "is not installed: the fake is not checked against it")


def test_cozepy_reads_the_fakes_stream_and_errors(coze):
    cozepy = cozepy_or_skip()
    client = cozepy.Coze(auth=cozepy.TokenAuth("pat_fake"), base_url=coze.url)
    question_ = cozepy.Message.build_user_question_text("hi")
    events = list(client.chat.stream(bot_id="7348293334", user_id="u1", additional_messages=[question_]))
    deltas = [e.message.content for e in events if e.event == cozepy.ChatEventType.CONVERSATION_MESSAGE_DELTA]
    assert "".join(deltas) == REPLY
    completed = [e.message for e in events if e.event == cozepy.ChatEventType.CONVERSATION_MESSAGE_COMPLETED]
    assert [(m.type, m.content) for m in completed][0] == (cozepy.MessageType.ANSWER, REPLY)
    assert events[-1].event == cozepy.ChatEventType.CONVERSATION_CHAT_COMPLETED
    conversation = events[0].chat.conversation_id
    again = list(client.chat.stream(bot_id="7348293334", user_id="u1", conversation_id=conversation,
                                    additional_messages=[question_]))
    assert again[0].chat.conversation_id == conversation
    coze.mode, coze.error_code = "error_body", 4100
    with pytest.raises(cozepy.CozeAPIError) as e:
        list(client.chat.stream(bot_id="7348293334", user_id="u1", additional_messages=[question_]))
    assert e.value.code == 4100 and e.value.logid
    coze.mode, coze.fault_after = "error_event", 1
    with pytest.raises(Exception, match="error event"):
        list(client.chat.stream(bot_id="7348293334", user_id="u1", additional_messages=[question_]))


def test_cozepy_creates_polls_and_lists_on_the_fake(coze):
    cozepy = cozepy_or_skip()
    client = cozepy.Coze(auth=cozepy.TokenAuth("pat_fake"), base_url=coze.url)
    poll = client.chat.create_and_poll(bot_id="7348293334", user_id="u1",
                                       additional_messages=[cozepy.Message.build_user_question_text("hi")])
    assert poll.chat.status == cozepy.ChatStatus.COMPLETED
    assert [m.content for m in poll.messages if m.type == cozepy.MessageType.ANSWER] == [REPLY]
    with pytest.raises(cozepy.CozeAPIError) as e:
        client.chat.create(bot_id="7348293334", user_id="u1", conversation_id="123",
                           additional_messages=[cozepy.Message.build_user_question_text("hi")])
    assert e.value.code == 4002
