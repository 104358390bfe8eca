"""The history a turn sends its provider: the session's newest stored messages, in order, whether
they come from memory (the sessions most recently written to, `Sessions.history`) or from the log
(a session this process holds no tail of, or an agent whose history is longer than is kept).
Checked against the session's messages as GET /api/v1/health/sessions/ID lists them, through
pushed reminders, other sessions' turns pushing a session's tail out, and a deleted session."""

import sys

import pytest

import wellmate

from fakes.openai_server import FakeOpenAI
from test_chat_upstream import signed_in, upstream_config


@pytest.fixture
def fake():
    with FakeOpenAI(reply="Let us take it one step at a time.") as server:
        yield server


def prompt_history(fake) -> list[tuple[str, str]]:
    """What the provider was sent last, between the system prompt and the new message."""
    return [(m["role"], m["content"]) for m in fake.last.body["messages"][1:-1]]


def stored(client, token, session_id) -> list[tuple[str, str]]:
    messages = client.get(f"/api/v1/health/sessions/{session_id}?limit=200", token=token).json["messages"]["items"]
    return [(m["role"], m["content"]) for m in messages]


def test_the_prompt_history_is_the_sessions_newest_messages_from_memory_or_from_the_log(make_wm, serve, fake,
                                                                                       monkeypatch):
    chat_module = __import__("wellmate_plugins.chat", fromlist=["HISTORY_SESSIONS"])
    # Two sessions' tails at most, so that a third session's turn pushes the oldest out.
    monkeypatch.setattr(chat_module, "HISTORY_SESSIONS", 2)
    config = upstream_config(fake.url)
    config["agents"]["mental"]["history"] = 3
    config["agents"]["physical"]["history"] = chat_module.HISTORY_KEPT + 10  # longer than is kept: the log's
    served = serve(make_wm(config))
    client, wm = served.client, served.wm
    token = signed_in(client)

    def turn(agent, text, session_id=None):
        before = stored(client, token, session_id) if session_id else []
        r = client.post(f"/api/v1/health/{agent}/chat", {"text": text, "session_id": session_id}, token=token)
        assert r.status == 200, r.json
        history = wm.config["agents"][agent]["history"]
        assert prompt_history(fake) == before[-history:], (agent, text)
        return r.json["session_id"]

    a = turn("mental", "I can't sleep")
    for i in range(3):
        turn("mental", f"still awake {i}", a)
    # A reminder pushed into the session is part of the history of its next turn.
    wm.service("chat").push(a, {"id": wellmate.new_id(), "content": "Time for your evening walk", "reminder_id": "r-1"})
    turn("mental", "I went for the walk", a)
    # Two other sessions' turns push a's tail out of memory: its next turn reads the log.
    b = turn("mental", "work is stressful")
    c = turn("mental", "my knee hurts")
    turn("mental", "more about work", b)
    turn("mental", "more about the knee", c)
    assert len(wm.service("chat").sessions._tails) <= 2  # held for HISTORY_SESSIONS sessions at most
    turn("mental", "back to sleep", a)
    turn("mental", "and again", a)
    # A deleted session's tail goes with it: a turn in it is refused, the others go on.
    assert client.delete(f"/api/v1/health/sessions/{b}", token=token).status == 204
    r = client.post("/api/v1/health/mental/chat", {"text": "hello?", "session_id": b}, token=token)
    assert r.status == 404 and r.json["error"]["code"] == "session_not_found"
    turn("mental", "the knee again", c)
    # An agent whose history is longer than is kept reads its log every turn.
    p = turn("physical", "my back hurts")
    for i in range(3):
        turn("physical", f"and my neck {i}", p)
    assert len(prompt_history(fake)) == 6  # three turns before: all of them


def test_an_agent_with_no_history_sends_the_new_message_alone(make_wm, serve, fake):
    # agents.*.history takes 0 (Setting min=0); a turn read the log with limit 0, a ValueError: a 500.
    config = upstream_config(fake.url)
    config["agents"]["mental"]["history"] = 0
    client = serve(make_wm(config)).client
    token = signed_in(client)
    first = client.post("/api/v1/health/mental/chat", {"text": "hello"}, token=token)
    assert first.status == 200, first.json
    second = client.post("/api/v1/health/mental/chat", {"text": "hello again", "session_id": first.json["session_id"]},
                         token=token)
    assert second.status == 200, second.json
    assert [(m["role"], m["content"]) for m in fake.last.body["messages"][1:]] == [("user", "hello again")]


def test_the_tails_held_stay_within_a_byte_budget_and_the_history_stays_exact(make_wm, serve, fake, monkeypatch):
    # Bounded by sessions alone, 1,000 tails of 4,000-character messages held 326 MB (emoji).
    # raising=False: on a version without the budget the test fails on what is held, not here.
    chat_module = __import__("wellmate_plugins.chat", fromlist=["HISTORY_BYTES"])
    monkeypatch.setattr(chat_module, "HISTORY_BYTES", 14_000, raising=False)
    monkeypatch.setattr(chat_module, "HISTORY_SESSION_BYTES", 8_000, raising=False)
    config = upstream_config(fake.url)
    config["agents"]["mental"]["history"] = 4
    served = serve(make_wm(config))
    client, wm = served.client, served.wm
    sessions = wm.service("chat").sessions
    token = signed_in(client)

    def turn(text, session_id=None):
        before = stored(client, token, session_id) if session_id else []
        r = client.post("/api/v1/health/mental/chat", {"text": text, "session_id": session_id}, token=token)
        assert r.status == 200, r.json
        assert prompt_history(fake) == before[-4:]  # the same messages the log gives, held or not
        held = sum(sys.getsizeof(m["content"]) for tail in sessions._tails.values() for m in tail)
        assert held <= 14_000, held
        # The bytes counted as tails grow and drop, the same as counting every tail again.
        assert sessions._tail_bytes == sum(sum(map(chat_module._size, tail)) for tail in sessions._tails.values())
        return r.json["session_id"]

    ids = []
    for n in range(4):  # each tail ~4 KB of text (5 KB held): the third pushes the oldest out
        ids.append(turn(f"{n} " + "I slept badly and my head aches. " * 60))
        turn("and today? " * 180, ids[-1])
    assert ids[0] not in sessions._tails
    for session_id in ids:  # back to each: from the log or memory, the same history
        turn("still here", session_id)
    # One session whose four newest messages alone are over the share of one: never held.
    big = turn("x" * 4000)
    turn("y" * 4000, big)
    turn("and now?", big)
    assert big not in sessions._tails


def test_a_tail_that_drops_its_oldest_messages_counts_its_bytes_as_a_recount_does(make_wm, serve, fake):
    # Every agent's history 2: each message a held tail takes in drops its oldest one.
    chat_module = __import__("wellmate_plugins.chat", fromlist=["HISTORY_BYTES"])
    config = upstream_config(fake.url)
    for agent in config["agents"].values():
        agent["history"] = 2
    served = serve(make_wm(config))
    client, sessions = served.client, served.wm.service("chat").sessions
    token = signed_in(client)
    session_id = None
    for n, text in enumerate(["short", "a longer message " * 20, "睡不着" * 50, "ok", "🙂" * 300, "bye"]):
        before = stored(client, token, session_id) if session_id else []
        r = client.post("/api/v1/health/mental/chat", {"text": text, "session_id": session_id}, token=token)
        assert r.status == 200, r.json
        session_id = r.json["session_id"]
        assert prompt_history(fake) == before[-2:]
        assert session_id in sessions._tails or n == 0  # held from its second turn on (read from the log once)
        assert sessions._tail_bytes == sum(sum(map(chat_module._size, tail)) for tail in sessions._tails.values())
