"""Chat turns in progress are limited (issue 11, points 3 and 18), over real HTTP: per user (429)
and in all (503), so streams against a slow model leave threads for everyone else; and one turn
at a time per session (409), so concurrent turns cannot both be a session's first reply."""

import json
import threading
import time

import pytest

from conftest import assert_error
from fakes.openai_server import FakeOpenAI, chars
from test_chat_upstream import raw_stream_request, signed_in, upstream_config


@pytest.fixture
def stalling():
    """A model that sends one delta, then stalls until release()."""
    with FakeOpenAI(reply="好的，我们慢慢说。", mode="stall_mid_stream", fault_after=1, chunker=chars(2),
                    stall_seconds=60) as fake:
        yield fake


def open_stream(port, token, text="tell me a story"):
    """A stream read up to its first delta (it then stalls): the socket and the session id."""
    s = raw_stream_request(port, token, text)
    received = b""
    while b'"delta"' not in received:
        data = s.recv(4096)
        assert data, received
        received += data
    assert received.startswith(b"HTTP/1.1 200"), received
    return s, json.loads(received.split(b"event: start\ndata: ", 1)[1].split(b"\n", 1)[0])["session_id"]


def read_to_end(s) -> bytes:
    received = b""
    while b"event: done" not in received and b"event: error" not in received:
        data = s.recv(4096)
        if not data:
            break
        received += data
    s.close()
    return received


def until(check, what, seconds=20):
    """Poll ``check`` until it gives something true (no timing is asserted, only that it happens)."""
    deadline = time.monotonic() + seconds
    while not (result := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return result


def test_a_third_turn_of_one_user_waits_for_one_of_two_to_end(make_wm, serve, stalling):
    served = serve(make_wm(upstream_config(stalling.url, timeout=60)))
    client = served.client
    alice, bob = signed_in(client), client.register("bob")["access_token"]
    first, _ = open_stream(served.port, alice)
    second, _ = open_stream(served.port, alice)

    # A third turn, streamed or not, is refused at once and stores nothing.
    sessions_before = client.get("/api/v1/health/sessions", token=alice).json["items"]
    for path in ("/api/v1/health/mental/chat/stream", "/api/v1/health/mental/chat"):
        r = client.post(path, {"text": "one more"}, token=alice)
        assert_error(r, 429, "too_many_turns")
        assert int(r.headers["Retry-After"]) > 0
    assert client.get("/api/v1/health/sessions", token=alice).json["items"] == sessions_before

    # Another user is served meanwhile.
    r = client.post("/api/v1/health/mental/chat", {"text": "hello"}, token=bob)
    assert r.status == 200 and r.json["provider"] == "fake"
    assert client.get("/api/v1/health/sessions", token=bob).status == 200

    # The client of the first stream goes away: its place frees (at the next ping it fails to send).
    first.close()
    until(lambda: client.post("/api/v1/health/mental/chat", {"text": "again"}, token=alice).status == 200,
          "the closed stream's place was not freed")  # (the model stalls only streams)
    third, _ = open_stream(served.port, alice)
    assert_error(client.post("/api/v1/health/mental/chat", {"text": "one more"}, token=alice), 429, "too_many_turns")

    # Streams that end free their places: two new ones go in side by side.
    stalling.release()
    assert b"event: done" in read_to_end(second) and b"event: done" in read_to_end(third)
    # (a place frees once the turn is stored, just after "done" is sent: on a loaded CI the next stream came first, got
    # a 429 on a kept-alive socket and waited for a delta that never came)
    until(lambda: client.post("/api/v1/health/mental/chat", {"text": "again"}, token=alice).status == 200,
          "the ended streams' places were not freed")
    stalling.hold()
    streams = [open_stream(served.port, alice)[0] for _ in range(2)]
    assert_error(client.post("/api/v1/health/mental/chat", {"text": "one more"}, token=alice), 429, "too_many_turns")
    stalling.release()
    for s in streams:
        assert b"event: done" in read_to_end(s)


def test_turns_in_all_leave_threads_for_other_requests(make_wm, serve, stalling):
    # The test server runs 8 threads: 8 - 5 = 3 turns at once.
    served = serve(make_wm(upstream_config(stalling.url, timeout=60)
                           | {"server": {"threads": 8}, "chat": {"ping_seconds": 0.2, "reserve_threads": 5}}))
    client = served.client
    alice, bob, carol = signed_in(client), client.register("bob")["access_token"], client.register("carol")["access_token"]
    streams = [open_stream(served.port, token)[0] for token in (alice, alice, bob)]
    r = client.post("/api/v1/health/mental/chat", {"text": "hello"}, token=carol)
    assert_error(r, 503, "server_busy")
    assert int(r.headers["Retry-After"]) > 0
    assert client.get("/api/v1/health/sessions", token=carol).status == 200
    assert client.get("/api/v1/test/health").status == 200
    stalling.release()
    for s in streams:
        assert b"event: done" in read_to_end(s)
    assert client.post("/api/v1/health/mental/chat", {"text": "hello"}, token=carol).status == 200


def test_thirty_turns_at_once_in_one_session_take_turns(client):
    token = client.register()["access_token"]
    session_id = client.post("/api/v1/health/sessions", {"agent": "mental"}, token=token).json["id"]
    responses, start = [], threading.Barrier(30)

    def turn(n):
        start.wait()
        responses.append(client.post("/api/v1/health/mental/chat",
                                     {"text": f"I feel tired today ({n})", "session_id": session_id}, token=token))

    threads = [threading.Thread(target=turn, args=(n,)) for n in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    answered = [r for r in responses if r.status == 200]
    assert answered and len(answered) + sum(1 for r in responses if r.status == 409) == 30
    for r in responses:
        if r.status == 409:
            assert_error(r, 409, "turn_in_progress")
            assert int(r.headers["Retry-After"]) > 0
    # A later turn works.
    assert client.post("/api/v1/health/mental/chat", {"text": "thanks", "session_id": session_id}, token=token).status == 200

    messages = client.get(f"/api/v1/health/sessions/{session_id}?limit=200", token=token).json["messages"]["items"]
    assert len(messages) == 2 * (len(answered) + 1)  # nothing stored for a refused turn
    assert [m["role"] for m in messages] == ["user", "assistant"] * (len(answered) + 1)
    assert [m["created_at"] for m in messages] == sorted(m["created_at"] for m in messages)
    replies = [m["content"] for m in messages if m["role"] == "assistant"]
    assert sum("not medical advice" in reply for reply in replies) == 1
    assert sum("local health guide" in reply for reply in replies) <= 1
