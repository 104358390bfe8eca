"""The dify provider through the real app over HTTP, against a fake Dify app (tests/fakes/dify_server.py)
speaking Dify's wire format: conversations kept by Dify, errors before and during a stream."""

import subprocess
import sys

import pytest
import yaml

from conftest import ROOT, merge, shipped_config
from fakes.dify_server import FakeDify
from fakes.openai_server import chars
from test_chat import stream
from wellmate import ProviderError

REPLY = "多喝水，早点睡。Sleep well!"


def dify_config(url, api_key, **provider):
    return {
        "providers": {"dify": {"plugin": "dify", "base_url": url, "api_key": api_key, "timeout": 2,
                               "inputs": {"wellmate_prompt": "$system", "name": "$name"}, **provider}},
        "agents": {"physical": {"providers": ["dify", "offline"]}, "mental": {"providers": ["dify", "offline"]}},
        "chat": {"ping_seconds": 0.2},
        # The upstream's words arrive unchanged; the safety plugin's disclaimer is tested in test_safety.py.
        "safety": {"disclaimer": "never"},
    }


@pytest.fixture
def dify():
    with FakeDify(reply=REPLY) as server:
        yield server


@pytest.fixture
def served(make_wm, serve, dify):
    return serve(make_wm(dify_config(dify.url + "/", dify.api_key)))  # a trailing slash is fine


def sign_in(client, username="alice"):
    """(access token, the user's id)"""
    answer = client.register(username=username, full_name="小明", age=28, gender="male")
    return answer["access_token"], answer["user"]["uuid"]


def chat(client, token, text, session=None, agent="physical"):
    r = client.post(f"/api/v1/health/{agent}/chat", {"text": text, "session_id": session}, token=token)
    assert r.status == 200, r.text
    return r.json


def deltas(events):
    return [data["delta"] for kind, data in events if kind == "message"]


def stored(client, token, session_id):
    return client.get(f"/api/v1/health/sessions/{session_id}", token=token).json["messages"]["items"]


# -- answers and conversations ------------------------------------------------------------------


def test_chat_and_stream_come_from_dify_with_the_users_stable_id_and_inputs(served, dify):
    client = served.client
    token, user_id = sign_in(client)
    first = chat(client, token, "最近总是口渴")
    assert first["content"] == REPLY and first["provider"] == "dify"
    body = dify.last.body
    assert body["query"] == "最近总是口渴" and body["response_mode"] == "blocking"
    assert body["user"] == f"wellmate-{user_id}" and "alice" not in str(body)  # never the username
    assert "conversation_id" not in body  # a new session: Dify starts the conversation
    assert body["inputs"]["name"] == "小明"
    assert "小明" in body["inputs"]["wellmate_prompt"] and "$" not in body["inputs"]["wellmate_prompt"]
    assert dify.last.headers["authorization"] == f"Bearer {dify.api_key}"

    events = stream(client, "mental", {"text": "睡不好怎么办"}, token)
    assert "".join(deltas(events)) == REPLY and len(deltas(events)) > 1
    assert events[-1][0] == "done" and events[-1][1]["provider"] == "dify"
    assert dify.last.body["response_mode"] == "streaming"


def test_second_turn_continues_the_conversation_and_a_new_session_starts_another(served, dify):
    client = served.client
    token, user_id = sign_in(client)
    session = chat(client, token, "我头疼")["session_id"]
    [conversation] = dify.conversations
    events = stream(client, "physical", {"text": "还有呢？", "session_id": session}, token)
    assert events[-1][1]["provider"] == "dify"
    # Only the new message: Dify has the history.
    assert dify.last.body["conversation_id"] == conversation and dify.last.body["query"] == "还有呢？"
    chat(client, token, "谢谢", session)
    assert dify.conversations[conversation]["queries"] == ["我头疼", "还有呢？", "谢谢"]

    chat(client, token, "新的话题")  # a new session
    assert "conversation_id" not in dify.last.body
    assert len(dify.of_user(f"wellmate-{user_id}")) == 2


def test_two_users_never_share_a_conversation(served, dify):
    client = served.client
    alice, alice_id = sign_in(client, "alice")
    bob, bob_id = sign_in(client, "bob")
    a = chat(client, alice, "hello")["session_id"]
    b = chat(client, bob, "hello")["session_id"]
    chat(client, alice, "again", a)
    stream(client, "physical", {"text": "again", "session_id": b}, bob)
    [alices] = dify.of_user(f"wellmate-{alice_id}")
    [bobs] = dify.of_user(f"wellmate-{bob_id}")
    assert alices != bobs
    assert dify.conversations[alices]["queries"] == ["hello", "again"] == dify.conversations[bobs]["queries"]


def test_a_lost_conversation_starts_a_new_one_with_the_recent_history(served, dify):
    client = served.client
    token, _ = sign_in(client)
    session = chat(client, token, "我最近失眠")["session_id"]
    chat(client, token, "晚上总是醒", session)
    [old] = dify.conversations
    dify.forget()  # deleted in Dify's console: Dify answers 404 "Conversation Not Exists."
    reply = chat(client, token, "怎么办？", session)
    assert reply["provider"] == "dify" and reply["content"] == REPLY
    refused, retried = dify.requests[-2:]
    assert refused.body["conversation_id"] == old
    assert "conversation_id" not in retried.body
    query = retried.body["query"]
    assert query.endswith("\n\n怎么办？")
    for text in ("User: 我最近失眠", f"Assistant: {REPLY}", "User: 晚上总是醒"):
        assert text in query
    [new] = dify.conversations
    # The new conversation is the session's now: the next turn continues it with the new message only.
    events = stream(client, "physical", {"text": "谢谢", "session_id": session}, token)
    assert events[-1][1]["provider"] == "dify"
    assert dify.last.body["conversation_id"] == new and dify.last.body["query"] == "谢谢"

    dify.end(new)  # Dify refuses an ended conversation (400 conversation_completed): the stream starts another
    events = stream(client, "physical", {"text": "明白了", "session_id": session}, token)
    assert "".join(deltas(events)) == REPLY
    assert "conversation_id" not in dify.last.body and "User: 谢谢" in dify.last.body["query"]


# -- the kinds of Dify app --------------------------------------------------------------------


def test_an_agent_app_refuses_blocking_so_chat_reads_its_stream(served, dify):
    dify.app = "agent"  # 400 invalid_param "Agent Chat App does not support blocking mode"
    client = served.client
    token, _ = sign_in(client)
    session = chat(client, token, "hello")["session_id"]
    assert [r.body["response_mode"] for r in dify.requests] == ["blocking", "streaming"]
    assert chat(client, token, "again", session)["content"] == REPLY
    assert dify.last.body["response_mode"] == "streaming" and len(dify.requests) == 3  # learnt: no blocking try


@pytest.mark.parametrize("app", ["new-agent", "chatflow"])
def test_other_apps_stream_each_piece_once_and_pings_are_skipped(served, dify, app):
    dify.app, dify.pings = app, True
    client = served.client
    token, _ = sign_in(client)
    events = stream(client, "mental", {"text": "hi"}, token)
    # new-agent repeats the whole answer in a closing message; chatflow ends with workflow_finished.
    assert "".join(deltas(events)) == REPLY
    assert chat(client, token, "hi")["content"] == REPLY


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["error_before_text", "429", "500", "quota", "bad_key"])
def test_an_error_before_any_text_falls_back_to_the_next_provider(served, dify, mode):
    if mode == "bad_key":
        dify.api_key = "app-another-key"
    else:
        dify.mode = mode
    client = served.client
    token, _ = sign_in(client)
    assert chat(client, token, "I have a headache")["provider"] == "offline"
    events = stream(client, "physical", {"text": "I have a headache"}, token)
    assert events[-1][0] == "done" and events[-1][1]["provider"] == "offline"
    assert dify.last.body["response_mode"] == "streaming"  # Dify was asked, and refused


def test_a_stall_is_a_timeout_that_falls_back(served, dify):
    dify.mode, dify.stall_seconds = "stall", 5  # the provider's timeout is 2 s
    client = served.client
    token, _ = sign_in(client)
    assert chat(client, token, "sleep tips?")["provider"] == "offline"
    events = stream(client, "physical", {"text": "sleep tips?"}, token)
    assert ("comment", "ping") in events  # Wellmate's own pings while it waits (ping_seconds 0.2)
    assert events[-1][0] == "done" and events[-1][1]["provider"] == "offline"
    assert dify.last.client_closed.wait(5)  # Wellmate hung up on the stalled answer


@pytest.mark.parametrize("mode", ["error_mid_stream", "broken", "stall_mid_stream", "replace", "no_end"])
def test_a_failure_mid_stream_ends_with_error_and_keeps_the_partial_reply(served, dify, mode):
    dify.mode, dify.fault_after, dify.chunker, dify.stall_seconds = mode, 2, chars(2), 5
    client = served.client
    token, _ = sign_in(client)
    events = stream(client, "physical", {"text": "tell me"}, token)
    shown = "".join(deltas(events))
    assert shown == (REPLY if mode == "no_end" else "多喝水，")  # no_end: every piece, then no message_end
    kind, error = events[-1]
    assert kind == "error" and error["code"] == "provider_error" and error["message"]
    messages = stored(client, token, events[1][1]["session_id"])
    assert messages[0]["content"] == "tell me"
    assert messages[1]["content"] == shown and messages[1]["incomplete"] is True


# -- turns that are no user's, and the config ---------------------------------------------------


def test_a_request_that_is_no_users_turn_is_a_one_off_conversation(dify):
    """A reminder to phrase, a label to find: no session, so nothing to continue or remember."""
    from wellmate_plugins.provider_dify import DifyProvider

    provider = DifyProvider("dify", {"plugin": "dify", "base_url": dify.url, "api_key": dify.api_key,
                                     "inputs": {"wellmate_prompt": "$system", "name": "$name"}}, wm=None)
    messages = [{"role": "system", "content": "你是健康助手。"}, {"role": "user", "content": "Say: drink water"}]
    assert provider.reply(messages) == REPLY
    assert "".join(provider.stream(messages)) == REPLY
    for request in dify.requests:
        assert request.body["user"] == "wellmate" and "conversation_id" not in request.body
        assert request.body["query"] == "Say: drink water"
        assert request.body["inputs"] == {"wellmate_prompt": "你是健康助手。", "name": "$name"}
    dify.mode = "500"
    with pytest.raises(ProviderError, match=r"dify: Dify failed \(500\): internal_server_error") as e:
        provider.reply(messages)
    assert e.value.retryable


def test_a_base_url_without_v1_says_to_check_it(dify):
    from wellmate_plugins.provider_dify import DifyProvider

    provider = DifyProvider("dify", {"plugin": "dify", "base_url": dify.url.removesuffix("/v1"),
                                     "api_key": dify.api_key}, wm=None)
    for ask in (provider.reply, lambda messages: "".join(provider.stream(messages))):
        with pytest.raises(ProviderError, match=r"answered 404 Not Found: check base_url \(it ends in /v1\)") as e:
            ask([{"role": "user", "content": "hi"}])
        assert e.value.retryable


@pytest.mark.parametrize("missing", ["api_key", "base_url"])
def test_check_names_a_missing_key_with_its_path(tmp_path, missing):
    config = merge(shipped_config(tmp_path), dify_config("https://api.dify.ai/v1", "app-x"))
    del config["providers"]["dify"][missing]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    result = subprocess.run([sys.executable, str(ROOT / "wellmate.py"), "--config", str(path), "check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"error: config.yaml: providers.dify.{missing}: required" in result.stdout


# -- the official SDK reads the fake ------------------------------------------------------------


def test_the_official_dify_client_talks_to_the_fake(dify):
    """dify-client (Dify's Python SDK on PyPI, 0.1.10) sends the requests and hands back the HTTP
    answer; reading it as its README shows must work on the fake as on Dify."""
    dify_client = pytest.importorskip("dify_client", reason="dify-client is not installed (pip install -r requirements-dev.txt)")
    import json

    client = dify_client.ChatClient(dify.api_key)
    client.base_url = dify.url
    blocking = client.create_chat_message(inputs={}, query="hello", user="sdk-user")
    blocking.raise_for_status()
    answer = blocking.json()
    assert answer["answer"] == REPLY and answer["conversation_id"] in dify.conversations

    dify.pings = True
    streamed = client.create_chat_message(inputs={}, query="again", user="sdk-user", response_mode="streaming",
                                          conversation_id=answer["conversation_id"])
    streamed.raise_for_status()
    pieces, kinds = [], []
    for line in streamed.iter_lines(decode_unicode=True):
        if line.startswith("data:"):  # skipping `event: ping`, as Dify's docs tell clients to
            event = json.loads(line.split("data:", 1)[-1].strip())
            kinds.append(event["event"])
            pieces.append(event.get("answer") or "")
    assert "".join(pieces) == REPLY and kinds[-1] == "message_end"
    assert dify.conversations[answer["conversation_id"]]["queries"] == ["hello", "again"]
    client.api_key = "app-wrong"
    error = client.create_chat_message(inputs={}, query="hi", user="sdk-user")
    assert error.status_code == 401 and error.json() == {"code": "unauthorized", "message": "Access token is invalid",
                                                         "status": 401}
