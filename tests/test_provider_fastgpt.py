"""The fastgpt provider through the real app over HTTP, against a fake FastGPT on 127.0.0.1: a
chatId per session (continued, never shared), FastGPT's errors before and during a reply, a chat
it refuses or that was lost, and `wellmate.py check` naming what is missing."""

import pytest
import yaml

import wellmate
from conftest import merge, shipped_config
from fakes.fastgpt_server import ERRORS, NODE_ERROR, THROWN, FakeFastGPT
from fakes.openai_server import chars
from test_chat import stream
from wellmate_plugins.provider_fastgpt import FastGPTProvider

KEY = "fastgpt-" + "x7Kq2" * 11
REPLY = "多喝温水，早点休息。Sleep well!"


def fastgpt_config(url, **provider):
    """FastGPT then offline for the physical agent; FastGPT alone for the mental one, which then
    answers 503 with FastGPT's error in its message."""
    return {
        "providers": {"fastgpt": {"plugin": "fastgpt", "base_url": url, "api_key": KEY, "timeout": 2, **provider}},
        "agents": {"physical": {"providers": ["fastgpt", "offline"]}, "mental": {"providers": ["fastgpt"]}},
        "chat": {"ping_seconds": 0.2},
        "safety": {"disclaimer": "never"},  # FastGPT's words arrive unchanged (the disclaimer: test_safety)
    }


@pytest.fixture
def fake():
    with FakeFastGPT(reply=REPLY, api_key=KEY, chunker=chars(3)) as server:
        yield server
    assert not server.leftover_threads


@pytest.fixture
def served(make_wm, serve, fake):
    return serve(make_wm(fastgpt_config(fake.url)))


def signed_in(client, username="alice"):
    return client.register(username=username, full_name="小明", age=28)["access_token"]


def chat(client, token, text, session=None, streamed=False, agent="physical"):
    """One turn, streamed or not: (reply text, provider, session id)."""
    body = {"text": text, **({"session_id": session} if session else {})}
    if not streamed:
        r = client.post(f"/api/v1/health/{agent}/chat", body, token=token)
        assert r.status == 200, r.text
        return r.json["content"], r.json["provider"], r.json["session_id"]
    events = stream(client, agent, body, token)
    kind, done = events[-1]
    assert kind == "done", events
    assert "".join(data["delta"] for kind, data in events if kind == "message") == done["content"]
    return done["content"], done["provider"], events[1][1]["session_id"]


def talk(fake) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in fake.last.body["messages"]]


# -- answers and conversations ------------------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True])
def test_reply_comes_from_the_app_in_a_chat_of_its_own(served, fake, streamed):
    client = served.client
    token = signed_in(client)
    user_id = served.wm.service("accounts").find_by_username("alice")["id"]
    assert chat(client, token, "最近总是口渴", streamed=streamed)[:2] == (REPLY, "fastgpt")
    request = fake.last
    assert request.path == "/api/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    body = request.body
    assert body["stream"] is streamed and body["detail"] is False
    assert body["chatId"].startswith("wellmate-") and body["customUid"] == f"wellmate-{user_id}"
    assert "alice" not in str(body)  # the username never leaves the server
    assert talk(fake) == [("user", "最近总是口渴")]  # the app has its own prompt: no system message
    assert fake.chats[body["chatId"]].items == [("user", "最近总是口渴"), ("assistant", REPLY)]


def test_second_turn_continues_the_chat_and_a_new_session_starts_another(served, fake):
    client = served.client
    token = signed_in(client)
    _, _, session = chat(client, token, "我睡不好")
    first = fake.last.body["chatId"]
    chat(client, token, "还有呢？", session, streamed=True)
    assert fake.last.body["chatId"] == first
    assert talk(fake) == [("user", "还有呢？")]  # FastGPT has the rest
    assert fake.last.histories == [("user", "我睡不好"), ("assistant", REPLY)]
    assert len(fake.chats[first].items) == 4
    _, _, other = chat(client, token, "换个话题")
    assert other != session and fake.last.body["chatId"] not in (first, None)
    assert fake.last.histories == []


def test_a_chat_title_event_is_not_text(served, fake):
    fake.chat_title = True  # newer FastGPT names a new chat in its stream, detail=false or not
    client = served.client
    token = signed_in(client)
    _, _, session = chat(client, token, "我最近总是睡不好", streamed=True)
    assert chat(client, token, "还有呢？", session, streamed=True)[:2] == (REPLY, "fastgpt")


def test_two_users_never_share_a_chat(served, fake):
    client = served.client
    sessions = {signed_in(client, name): None for name in ("alice", "bob")}
    for _ in range(2):
        for token, session in sessions.items():
            sessions[token] = chat(client, token, "hello", session, streamed=True)[2]
    assert len(fake.chats) == 2
    uids = [chat.uids for chat in fake.chats.values()]
    assert all(len(u) == 1 for u in uids) and uids[0] != uids[1]
    assert all(len(chat.items) == 4 for chat in fake.chats.values())  # each user's two turns, never the other's


def test_variables_are_filled_from_placeholders(make_wm, serve, fake):
    variables = {"uid": "$name", "age": "$age", "prompt": "$system", "price": "$$5", "unknown": "$nothing"}
    client = serve(make_wm(fastgpt_config(fake.url, variables=variables))).client
    token = signed_in(client)
    chat(client, token, "hi", streamed=True)
    sent = fake.last.body["variables"]
    assert sent["uid"] == "小明" and sent["age"] == "28" and sent["price"] == "$5"
    assert sent["unknown"] == "$nothing"  # left as written, as the docs say
    assert "小明" in sent["prompt"] and "$" not in sent["prompt"]  # the physical agent's rendered prompt
    assert fake.last.variables == sent


# -- errors before any text: the next provider answers ------------------------------------------


@pytest.mark.parametrize("fault, words", [
    ("bad_key", "the API key was refused; an app's own key is needed (unAuthApiKey: Api Key 不合法)"),
    ("bad_key_500", "the API key was refused; an app's own key is needed (unAuthApiKey: Api Key 不合法)"),
    ("quota", "the FastGPT team is out of points (insufficientQuota: 账号余额不足)"),
    ("server_error", f"FastGPT reported an error: {THROWN}"),
    ("node_error", f"the app's workflow failed: {NODE_ERROR}"),
])
@pytest.mark.parametrize("streamed", [False, True])
def test_an_error_before_any_text_falls_back_to_the_next_provider(make_wm, serve, fake, fault, words, streamed):
    if fault.startswith("bad_key"):
        fake.api_key = "fastgpt-another-apps-key"
        fake.error_status = 500 if fault == "bad_key_500" else 200  # newer FastGPT, older FastGPT
    else:
        fake.mode = fault
    client = serve(make_wm(fastgpt_config(fake.url))).client
    token = signed_in(client)
    assert chat(client, token, "I have a headache", streamed=streamed)[1] == "offline"
    # Alone in the chain, it says why.
    if streamed:
        events = stream(client, "mental", {"text": "I have a headache"}, token)
        assert events[-1][0] == "error" and events[-1][1]["code"] == "providers_unavailable"
        expected = "the reply was empty" if fault == "node_error" else words  # a stream carries no node error
        assert f"fastgpt: {expected}" in events[-1][1]["message"]
    else:
        r = client.post("/api/v1/health/mental/chat", {"text": "I have a headache"}, token=token)
        assert r.status == 503 and r.json["error"]["code"] == "providers_unavailable"
        assert f"fastgpt: {words}" in r.json["error"]["message"]


def test_a_base_url_without_api_says_to_check_it(make_wm, serve, fake):
    client = serve(make_wm(fastgpt_config(fake.url.removesuffix("/api")))).client
    token = signed_in(client)
    r = client.post("/api/v1/health/mental/chat", {"text": "hi"}, token=token)
    assert r.status == 503 and "answered 404 Not Found: check base_url (it ends in /api)" in r.json["error"]["message"]
    # /api/v1, as OpenAI-style clients want it, works too.
    client = serve(make_wm(fastgpt_config(fake.url + "/v1/"))).client
    assert chat(client, signed_in(client, "bob"), "hi")[:2] == (REPLY, "fastgpt")


@pytest.mark.parametrize("streamed", [False, True])
def test_a_stall_before_any_text_is_a_timeout_that_falls_back(make_wm, serve, fake, streamed):
    fake.mode, fake.first_token_delay = "slow_first_token", 10
    client = serve(make_wm(fastgpt_config(fake.url, timeout=0.5))).client
    token = signed_in(client)
    assert chat(client, token, "sleep tips?", streamed=streamed)[1] == "offline"
    assert fake.chats == {}


# -- errors during a reply: the stream ends with an error, the partial reply is kept ------------


@pytest.mark.parametrize("mode", ["error_mid_stream", "broken", "stall_mid_stream"])
def test_failure_mid_stream_ends_with_error_and_keeps_the_partial_reply(make_wm, serve, fake, mode):
    fake.mode, fake.fault_after, fake.stall_seconds = mode, 2, 10
    client = serve(make_wm(fastgpt_config(fake.url, timeout=0.5))).client
    token = signed_in(client)
    events = stream(client, "physical", {"text": "tell me"}, token)
    assert [data["delta"] for kind, data in events if kind == "message"] == ["多喝温", "水，早"]
    kind, error = events[-1]
    assert kind == "error" and error["code"] == "provider_error" and error["message"].startswith("The reply stopped: fastgpt: ")
    if mode == "error_mid_stream":
        assert error["message"].endswith(f"FastGPT reported an error during the reply: {THROWN}")
    session = events[1][1]["session_id"]
    messages = client.get(f"/api/v1/health/sessions/{session}", token=token).json["messages"]["items"]
    assert messages[1]["content"] == "多喝温水，早" and messages[1]["incomplete"] is True
    # FastGPT saved nothing of that chat: the next turn starts one, with what the user saw.
    first = fake.last.body["chatId"]
    fake.mode = "ok"
    chat(client, token, "go on", session, streamed=True)
    assert fake.last.body["chatId"] != first
    assert talk(fake) == [("user", "tell me"), ("assistant", "多喝温水，早"), ("user", "go on")]


def test_closing_the_stream_hangs_up_on_fastgpt(served, fake):
    fake.delay_between_chunks = 0.1
    provider = served.wm.service("chat").provider("fastgpt")
    stream_ = provider.stream([{"role": "user", "content": "hi"}])
    assert next(stream_) == REPLY[:3]
    stream_.close()  # what the chat does when our own client goes away
    assert fake.last.client_closed.wait(10), "FastGPT kept answering for nobody"


# -- a chat FastGPT refuses, or that Wellmate lost -----------------------------------------------


@pytest.mark.parametrize("streamed", [False, True])
def test_a_refused_chat_starts_a_new_one_with_recent_history(served, fake, streamed):
    client = served.client
    token = signed_in(client)
    _, _, session = chat(client, token, "我睡不好")
    chat(client, token, "还有呢？", session)
    old = fake.last.body["chatId"]
    fake.give_away(old)  # now another team's: FastGPT answers unAuthChat
    assert chat(client, token, "谢谢", session, streamed=streamed)[:2] == (REPLY, "fastgpt")
    refused, retried = fake.requests[-2:]
    assert refused.body["chatId"] == old and retried.body["chatId"] not in (old, None)
    assert [(m["role"], m["content"]) for m in retried.body["messages"]] == [
        ("user", "我睡不好"), ("assistant", REPLY), ("user", "还有呢？"), ("assistant", REPLY), ("user", "谢谢")]
    assert retried.histories == [(m["role"], m["content"]) for m in retried.body["messages"][:-1]]
    chat(client, token, "再见", session, streamed=streamed)
    assert fake.last.body["chatId"] == retried.body["chatId"] and talk(fake) == [("user", "再见")]


def test_a_lost_link_starts_a_new_chat_with_recent_history(served, fake):
    client = served.client
    token = signed_in(client)
    _, _, session = chat(client, token, "我睡不好")
    old = fake.last.body["chatId"]
    served.wm.service("chat").sessions.link(session, "fastgpt", None)  # as if the mapping were lost
    chat(client, token, "还有呢？", session, streamed=True)
    assert fake.last.body["chatId"] != old
    assert talk(fake) == [("user", "我睡不好"), ("assistant", REPLY), ("user", "还有呢？")]


def test_a_chat_deleted_in_fastgpt_goes_on_empty(served, fake):
    """Not an error to FastGPT: the same chatId starts an empty chat (docs/platforms.md says so)."""
    client = served.client
    token = signed_in(client)
    _, _, session = chat(client, token, "我睡不好")
    fake.delete(old := fake.last.body["chatId"])
    assert chat(client, token, "还有呢？", session)[:2] == (REPLY, "fastgpt")
    assert fake.last.body["chatId"] == old and fake.last.histories == []


def test_a_turn_that_is_no_users_has_no_chat(served, fake):
    """A reminder to phrase, a label to find: FastGPT reads it all from the messages, once."""
    provider = served.wm.service("chat").provider("fastgpt")
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say: drink water."}]
    assert provider.reply(messages) == REPLY
    body = fake.last.body
    assert "chatId" not in body and "customUid" not in body
    assert talk(fake) == [("user", "Say: drink water.")]
    assert len(fake.chats) == 1  # saved by FastGPT under an id of its own, never continued


def test_a_provider_built_without_an_app_keeps_the_chat_in_the_turns_session(fake):
    """A script may build the provider itself (wm None): the chat it starts is continued by the
    next turn of the same session, kept in the session dict it passes."""
    provider = FastGPTProvider("fastgpt", {"plugin": "fastgpt", "base_url": fake.url, "api_key": KEY}, None)
    session = {"id": "s-1"}
    for text in ("Hello", "And tomorrow?"):
        turn = wellmate.Turn({"id": "u-1"}, "physical", session, text)
        assert provider.reply([{"role": "user", "content": text}], turn) == REPLY
    first, second = [request.body["chatId"] for request in fake.requests[-2:]]
    assert first == second == session["links"]["fastgpt"]["id"]


# -- config ------------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["api_key", "base_url"])
def test_check_names_a_missing_key_with_its_path(tmp_path, capsys, missing):
    config = merge(shipped_config(tmp_path), fastgpt_config("http://127.0.0.1:3000/api"))
    del config["providers"]["fastgpt"][missing]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    assert wellmate.check(path) == 1
    assert f"error: config.yaml: providers.fastgpt.{missing}: required: " in capsys.readouterr().out


# -- the fake against the openai package: FastGPT's detail=false answers are OpenAI-shaped ---------


def test_the_openai_client_reads_the_fakes_answers(fake):
    """A dev check that the fake stays true to FastGPT's framing: no official FastGPT SDK exists,
    and its endpoint is OpenAI-compatible with detail=false, so the openai package must read it.
    FastGPT's errors (a 200 body, an ``event: error``) are not OpenAI's: the SDK does not see
    them as errors, which is why the provider reads them itself."""
    openai = pytest.importorskip("openai", reason="the openai package (requirements.txt) is not installed")
    client = openai.OpenAI(base_url=fake.url + "/v1", api_key=KEY, max_retries=0)
    extra = {"chatId": "sdk-chat", "detail": False, "variables": {"uid": "u1"}}
    messages = [{"role": "user", "content": "hi"}]
    completion = client.chat.completions.create(model="", messages=messages, extra_body=extra)
    assert completion.id == "sdk-chat" and completion.choices[0].message.content == REPLY
    chunks = list(client.chat.completions.create(model="", messages=messages, extra_body=extra, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == REPLY
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].choices[0].delta.content is None
    assert fake.chats["sdk-chat"].items[-1] == ("assistant", REPLY) and len(fake.chats["sdk-chat"].items) == 4
    fake.mode = "error_mid_stream"
    chunks = list(client.chat.completions.create(model="", messages=messages, extra_body=extra, stream=True))
    assert [c.choices[0].delta.content for c in chunks[:2]] == ["多喝温", "水，早"]
    assert chunks[-1].model_extra == {"message": THROWN} and not chunks[-1].choices  # not raised
    fake.mode, fake.api_key = "ok", "fastgpt-another-apps-key"
    refused = client.chat.completions.with_raw_response.create(model="", messages=messages, extra_body=extra)
    assert refused.status_code == 200 and refused.http_response.json() == ERRORS["unAuthApiKey"]


def test_another_apps_key_does_not_continue_a_chat(make_wm, serve, fake):
    """FastGPT looks a chatId up in the key's app: a session's chat is not sent to another app."""
    first = serve(make_wm(fastgpt_config(fake.url)))
    token = signed_in(first.client)
    _, _, session = chat(first.client, token, "我睡不好")
    old = fake.last.body["chatId"]
    first.stop()
    fake.api_key = KEY.upper()  # the key of another app on the same FastGPT
    client = serve(make_wm(fastgpt_config(fake.url, api_key=KEY.upper()))).client
    chat(client, token, "还有呢？", session)
    assert fake.last.body["chatId"] != old
    assert talk(fake) == [("user", "我睡不好"), ("assistant", REPLY), ("user", "还有呢？")]
