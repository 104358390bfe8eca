"""Chat against a fake OpenAI-compatible server over real HTTP: provider chains, streaming
through waitress, failures before and during a stream."""

import json
import os
import socket
import time

import pytest

from fakes.openai_server import FakeOpenAI, chars
from test_chat import stream


def upstream_config(url, **provider):
    return {
        "providers": {"fake": {"plugin": "openai", "base_url": url, "model": "qwen-test", "timeout": 2,
                               "max_retries": 0, **provider}},
        "agents": {"physical": {"providers": ["fake", "offline"]}, "mental": {"providers": ["fake", "offline"]}},
        "chat": {"ping_seconds": 0.2},
        # These tests check that the upstream's words arrive unchanged; the disclaimer the safety
        # plugin adds to a session's first reply is tested in test_safety.py.
        "safety": {"disclaimer": "never"},
    }


@pytest.fixture
def fake():
    with FakeOpenAI(reply="多喝水，早点睡。Sleep well!") as server:
        yield server


@pytest.fixture
def served(make_wm, serve, fake):
    return serve(make_wm(upstream_config(fake.url, temperature=0.3)))


def signed_in(client, **profile):
    return client.register(full_name="小明", age=28, gender="male", **profile)["access_token"]


def test_reply_comes_from_upstream_with_rendered_prompt_and_history(served, fake):
    client = served.client
    token = signed_in(client)
    client.put("/api/v1/users/settings", {"settings": {"timezone": "Asia/Shanghai"}}, token=token)
    first = client.post("/api/v1/health/physical/chat", {"text": "最近总是口渴"}, token=token).json
    assert first["content"] == "多喝水，早点睡。Sleep well!" and first["provider"] == "fake"
    assert first["emotion"] in {"caring", "concerned", "encouraging", "happy", "calm", "neutral"}
    client.post("/api/v1/health/physical/chat", {"text": "还有呢？", "session_id": first["session_id"]}, token=token)

    body = fake.last.body
    assert body["model"] == "qwen-test" and body["temperature"] == 0.3
    system = body["messages"][0]
    assert system["role"] == "system"
    assert "小明" in system["content"] and "28" in system["content"] and "Asia/Shanghai" in system["content"]
    assert "$" not in system["content"]
    assert [(m["role"], m["content"]) for m in body["messages"][1:]] == [
        ("user", "最近总是口渴"), ("assistant", "多喝水，早点睡。Sleep well!"), ("user", "还有呢？")]


def test_history_limit(make_wm, serve, fake):
    config = upstream_config(fake.url)
    config["agents"]["mental"]["history"] = 2
    client = serve(make_wm(config)).client
    token = signed_in(client)
    session = None
    for i in range(4):
        r = client.post("/api/v1/health/mental/chat", {"text": f"message {i}", "session_id": session}, token=token)
        session = r.json["session_id"]
    messages = fake.last.body["messages"]
    # The system prompt, the last two stored messages, and the new one.
    assert [m["content"] for m in messages[1:]] == ["message 2", fake.reply, "message 3"][-3:]
    assert len(messages) == 1 + 3


def test_prompt_edit_applies_to_the_next_reply(served, fake, tmp_path):
    client = served.client
    token = signed_in(client)
    client.post("/api/v1/health/mental/chat", {"text": "hi"}, token=token)
    prompt = tmp_path / "prompts" / "mental.txt"
    prompt.write_text("你是$name的朋友。NEW PROMPT", encoding="utf-8")
    os.utime(prompt, ns=(time.time_ns(), time.time_ns() + 10**9))
    client.post("/api/v1/health/mental/chat", {"text": "hi again"}, token=token)
    # What follows the prompt is the safety plugin's request for the model's judgement (safety.model_judgement).
    assert fake.last.body["messages"][0]["content"].split("\n\n")[0] == "你是小明的朋友。NEW PROMPT"


@pytest.mark.parametrize("mode", ["401", "429", "500", "503"])
def test_upstream_error_falls_back_to_offline(served, fake, mode):
    fake.mode = mode
    client = served.client
    token = signed_in(client)
    r = client.post("/api/v1/health/physical/chat", {"text": "I have a headache"}, token=token)
    assert r.status == 200 and r.json["provider"] == "offline"
    events = stream(client, "physical", {"text": "I have a headache"}, token)
    assert events[-1][0] == "done" and events[-1][1]["provider"] == "offline"


def test_stopped_upstream_falls_back_without_an_error(make_wm, serve):
    with FakeOpenAI(reply="from the model") as upstream:
        client = serve(make_wm(upstream_config(upstream.url, connect_timeout=1))).client
        token = signed_in(client)
        assert client.post("/api/v1/health/mental/chat", {"text": "hello"}, token=token).json["provider"] == "fake"
    # The upstream is gone (connection refused now): the offline companion answers.
    r = client.post("/api/v1/health/mental/chat", {"text": "hello"}, token=token)
    assert r.status == 200 and r.json["provider"] == "offline"
    events = stream(client, "mental", {"text": "hello"}, token)
    assert events[-1][0] == "done" and events[-1][1]["provider"] == "offline"


def test_slow_first_token_times_out_to_the_next_provider_with_pings(served, fake):
    fake.mode, fake.first_token_delay = "slow_first_token", 3  # provider timeout is 2 s
    token = signed_in(served.client)
    events = stream(served.client, "physical", {"text": "sleep tips?"}, token)
    assert ("comment", "ping") in events  # sent while waiting (ping_seconds 0.2)
    assert events[-1][0] == "done" and events[-1][1]["provider"] == "offline"


def test_stream_from_upstream_with_keepalives_and_chinese(served, fake):
    fake.mode, fake.chunker = "keepalive", chars(1)
    fake.reply = "你好😊，今天感觉怎么样？"
    token = signed_in(served.client)
    events = stream(served.client, "mental", {"text": "hi"}, token)
    deltas = [data["delta"] for kind, data in events if kind == "message"]
    assert deltas == list("你好😊，今天感觉怎么样？")
    assert events[-1][1]["content"] == "你好😊，今天感觉怎么样？" and events[-1][1]["provider"] == "fake"


@pytest.mark.parametrize("mode", ["error_mid_stream", "broken", "stall_mid_stream"])
def test_failure_mid_stream_ends_with_error_and_keeps_the_partial_reply(served, fake, mode):
    fake.mode, fake.fault_after, fake.chunker, fake.stall_seconds = mode, 2, chars(2), 10
    client = served.client
    token = signed_in(client)
    events = stream(client, "physical", {"text": "tell me"}, token)
    deltas = [data["delta"] for kind, data in events if kind == "message"]
    assert deltas == ["多喝", "水，"]
    kind, error = events[-1]
    assert kind == "error" and error["code"] == "provider_error" and error["message"]
    session_id = events[1][1]["session_id"]
    messages = client.get(f"/api/v1/health/sessions/{session_id}", token=token).json["messages"]["items"]
    assert messages[0]["content"] == "tell me"
    assert messages[1]["content"] == "多喝水，" and messages[1]["incomplete"] is True


def raw_stream_request(port, token, text, session=None):
    body = json.dumps({"text": text, **({"session_id": session} if session else {})}).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST /api/v1/health/mental/chat/stream HTTP/1.1\r\nHost: test\r\n"
              b"Authorization: Bearer " + token.encode() + b"\r\nContent-Type: application/json\r\n"
              b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    return s


def test_deltas_reach_the_client_before_the_upstream_finishes(served, fake):
    """Read the stream off a raw socket: the first delta arrives while the fake is still sending."""
    fake.chunker, fake.delay_between_chunks = chars(1), 0.3
    fake.reply = "一二三四五六"  # 6 pieces, 0.3 s apart: the upstream takes ~1.8 s in all
    token = signed_in(served.client)
    s = raw_stream_request(served.port, token, "hi")
    received, delta_seen = b"", False
    while True:
        data = s.recv(4096)
        if not data:
            break
        received += data
        if not delta_seen and b'"delta"' in received:
            delta_seen = True
            assert not fake.last.done.is_set()  # the upstream has not finished its answer
        if b"event: done" in received:
            break
    s.close()
    head = received.split(b"\r\n\r\n", 1)[0].decode()
    assert "Transfer-Encoding: chunked" in head and "text/event-stream" in head
    assert "Connection: keep-alive" not in head
    assert delta_seen
    assert received.index(b": connected") < received.index(b"event: start") < received.index(b'"delta"')


def test_client_going_away_closes_the_upstream_and_keeps_the_partial_reply(served, fake):
    fake.chunker, fake.delay_between_chunks = chars(1), 0.2
    fake.reply = "这是一个很长很长的回答，" * 20
    token = signed_in(served.client)
    s = raw_stream_request(served.port, token, "talk to me")
    received = b""
    while received.count(b'"delta"') < 3:
        received += s.recv(4096)
    s.close()  # the mini-program page was closed
    assert fake.last.client_closed.wait(10), "the upstream request was not closed"
    session_id = json.loads(received.split(b"event: start\ndata: ", 1)[1].split(b"\n", 1)[0])["session_id"]
    deadline = time.monotonic() + 10
    while True:
        messages = served.client.get(f"/api/v1/health/sessions/{session_id}", token=token).json["messages"]["items"]
        if len(messages) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert messages[1]["incomplete"] is True and messages[1]["content"].startswith("这是一个")
    assert len(messages[1]["content"]) < len(fake.reply)
