"""Chat, streaming and sessions over HTTP with the shipped config (offline provider, no network)."""

import json

LABELS = {"happy", "calm", "neutral", "sad", "anxious", "angry", "tired"}
REPLY_LABELS = {"caring", "concerned", "encouraging", "happy", "calm", "neutral"}  # the shipped emotion.reply_labels


def parse_sse(raw: str) -> list[tuple[str, object]]:
    """SSE text -> [(kind, data)], kind being 'comment', 'message' or the event name."""
    events = []
    for block in raw.split("\n\n"):
        if not block:
            continue
        if block.startswith(":"):
            events.append(("comment", block[1:].strip()))
            continue
        event, data = "message", []
        for line in block.split("\n"):
            key, _, value = line.partition(": ")
            if key == "event":
                event = value
            elif key == "data":
                data.append(value)
        events.append((event, json.loads("\n".join(data))))
    return events


def stream(client, agent, body, token):
    r = client.post(f"/api/v1/health/{agent}/chat/stream", body, token=token)
    assert r.status == 200, r.text
    assert r.headers["Content-Type"].startswith("text/event-stream")
    return parse_sse(r.text)


def test_agents_listed(client):
    r = client.get("/api/v1/health/agents")
    assert r.status == 200
    assert {a["name"]: a["title"] for a in r.json["items"]} == {"physical": "身体健康", "mental": "心理健康"}


def test_chat_with_both_agents_offline(client):
    token = client.register()["access_token"]
    for agent, text in [("physical", "我最近睡不好，晚上总是醒"), ("mental", "I feel really anxious about work")]:
        r = client.post(f"/api/v1/health/{agent}/chat", {"text": text}, token=token)
        assert r.status == 200, r.text
        reply = r.json
        assert reply["agent"] == agent and reply["provider"] == "offline"
        assert reply["content"] and reply["content"] != text and text not in reply["content"]
        assert reply["emotion"] in REPLY_LABELS
        assert reply["session_id"] and reply["message_id"] and reply["timestamp"].endswith("Z")
    assert "睡" in client.post("/api/v1/health/physical/chat", {"text": "怎么才能睡得更好？"}, token=token).json["content"]


def test_session_continues_and_reads_back(client):
    token = client.register()["access_token"]
    first = client.post("/api/v1/health/mental/chat", {"text": "今天有点累"}, token=token).json
    second = client.post("/api/v1/health/mental/chat", {"text": "工作压力很大", "session_id": first["session_id"]}, token=token).json
    assert second["session_id"] == first["session_id"]
    r = client.get(f"/api/v1/health/sessions/{first['session_id']}", token=token)
    assert r.status == 200
    session = r.json
    assert session["message_count"] == 4 and session["agent"] == "mental" and session["title"] == "今天有点累"
    messages = session["messages"]["items"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[1]["content"] == first["content"] and messages[3]["id"] == second["message_id"]
    assert all(m["emotion"] in (LABELS if m["role"] == "user" else REPLY_LABELS) for m in messages)
    # Paging back through the session, two at a time.
    page = client.get(f"/api/v1/health/sessions/{first['session_id']}?limit=2", token=token).json["messages"]
    assert [m["role"] for m in page["items"]] == ["user", "assistant"] and page["items"][1]["id"] == second["message_id"]
    older = client.get(f"/api/v1/health/sessions/{first['session_id']}?limit=2&before={page['next']}", token=token).json["messages"]
    assert older["items"][1]["id"] == first["message_id"] and older["next"] is None


def test_stream_offline(client):
    token = client.register()["access_token"]
    events = stream(client, "physical", {"text": "How much water should I drink?"}, token)
    assert events[0] == ("comment", "connected")
    assert events[1][0] == "start"
    deltas = [data["delta"] for kind, data in events if kind == "message"]
    assert len(deltas) > 1
    kind, done = events[-1]
    assert kind == "done" and done["content"] == "".join(deltas) and done["emotion"] in REPLY_LABELS
    assert done["message_id"] == events[1][1]["message_id"]
    session = client.get(f"/api/v1/health/sessions/{done['session_id']}", token=token).json
    assert session["messages"]["items"][-1]["content"] == done["content"]


def test_sessions_list_create_delete_and_privacy(client):
    alice = client.register("alice")["access_token"]
    bob = client.register("bob")["access_token"]
    ids = [client.post("/api/v1/health/physical/chat", {"text": f"question {i}"}, token=alice).json["session_id"]
           for i in range(3)]
    r = client.post("/api/v1/health/sessions", {"agent": "mental", "title": "晚间日记"}, token=alice)
    assert r.status == 201 and r.json["title"] == "晚间日记" and r.json["message_count"] == 0
    page = client.get("/api/v1/health/sessions?limit=2", token=alice).json
    assert len(page["items"]) == 2 and page["next"]
    rest = client.get(f"/api/v1/health/sessions?limit=2&before={page['next']}", token=alice).json
    assert {s["id"] for s in page["items"] + rest["items"]} == set(ids) | {r.json["id"]}
    assert [s["agent"] for s in client.get("/api/v1/health/sessions?agent=mental", token=alice).json["items"]] == ["mental"]

    # Bob sees nothing of Alice's, and her sessions answer 404 to him, never 403.
    assert client.get("/api/v1/health/sessions", token=bob).json == {"items": [], "next": None}
    for method in ("GET", "DELETE"):
        r = client.request(method, f"/api/v1/health/sessions/{ids[0]}", token=bob)
        assert r.status == 404 and r.json["error"]["code"] == "session_not_found"
    r = client.post("/api/v1/health/physical/chat", {"text": "hi", "session_id": ids[0]}, token=bob)
    assert r.status == 404

    assert client.delete(f"/api/v1/health/sessions/{ids[0]}", token=alice).status == 204
    assert client.get(f"/api/v1/health/sessions/{ids[0]}", token=alice).status == 404


def test_chat_errors(client):
    token = client.register()["access_token"]
    r = client.post("/api/v1/health/chef/chat", {"text": "hi"}, token=token)
    assert r.status == 404 and r.json["error"]["code"] == "unknown_agent"
    assert client.post("/api/v1/health/physical/chat", {"text": "hi"}).status == 401
    r = client.post("/api/v1/health/physical/chat", {"text": 42}, token=token)
    assert r.status == 400 and "text" in r.json["error"]["message"]
    r = client.post("/api/v1/health/physical/chat", {"text": "  "}, token=token)
    assert r.status == 400
    r = client.post("/api/v1/health/physical/chat", {"text": "x" * 4001}, token=token)
    assert r.status == 400 and "4000" in r.json["error"]["message"]
    mental = client.post("/api/v1/health/mental/chat", {"text": "hi"}, token=token).json["session_id"]
    r = client.post("/api/v1/health/physical/chat", {"text": "hi", "session_id": mental}, token=token)
    assert r.status == 400 and r.json["error"]["code"] == "wrong_agent"
    assert client.get("/api/v1/health/sessions?limit=0", token=token).status == 400
    assert client.get("/api/v1/health/sessions?agent=chef", token=token).status == 404


def test_all_providers_down_keeps_the_users_message(make_wm, serve):
    # Nothing listens on port 9 of 127.0.0.1: connection refused at once.
    down = {"plugin": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m", "timeout": 2}
    served = serve(make_wm({"providers": {"down": down}, "agents": {"physical": {"providers": ["down"]}}}))
    client = served.client
    token = client.register()["access_token"]
    r = client.post("/api/v1/health/physical/chat", {"text": "are you there?"}, token=token)
    assert r.status == 503 and r.json["error"]["code"] == "providers_unavailable"
    assert "down" in r.json["error"]["message"]
    sessions = client.get("/api/v1/health/sessions", token=token).json["items"]
    messages = client.get(f"/api/v1/health/sessions/{sessions[0]['id']}", token=token).json["messages"]["items"]
    assert [(m["role"], m["content"]) for m in messages] == [("user", "are you there?")]
    events = stream(client, "physical", {"text": "still there?"}, token)
    assert events[-1][0] == "error" and events[-1][1]["code"] == "providers_unavailable"


def test_bad_cursor_is_400(client):
    token = client.register()["access_token"]
    session = client.post("/api/v1/health/mental/chat", {"text": "hi"}, token=token).json["session_id"]
    for path in ["/api/v1/health/sessions?before=garbage", f"/api/v1/health/sessions/{session}?before=%FF%FE",
                 f"/api/v1/health/sessions/{session}?before=-5"]:
        r = client.get(path, token=token)
        assert r.status == 400 and r.json["error"]["code"] == "invalid_cursor", (path, r.text)


def log_flushes(monkeypatch) -> list[str]:
    """The file names os.fsync is called on from now on (the server runs in this process)."""
    import os

    flushed, real_fsync = [], os.fsync

    def fsync(fd):
        flushed.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return flushed


def test_a_turn_flushes_its_log_once_and_before_anything_is_acknowledged(make_wm, serve, monkeypatch):
    down = {"plugin": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m", "timeout": 2}
    client = serve(make_wm({"providers": {"down": down}, "agents": {"physical": {"providers": ["down"]}}})).client
    token = client.register()["access_token"]
    session = client.post("/api/v1/health/mental/chat", {"text": "hi"}, token=token).json["session_id"]
    log = f"{session}.jsonl"
    flushed = log_flushes(monkeypatch)
    r = client.post("/api/v1/health/mental/chat", {"text": "睡不好怎么办", "session_id": session}, token=token)
    assert r.status == 200
    assert flushed.count(log) == 1  # the user's message and the reply: one flush

    # No reply to carry the user's message to disk: it is flushed before the 503 says "saved".
    flushed.clear()
    r = client.post("/api/v1/health/physical/chat", {"text": "are you there?"}, token=token)
    assert r.status == 503 and "saved" in r.json["error"]["message"]
    other = client.get("/api/v1/health/sessions?agent=physical", token=token).json["items"][0]["id"]
    assert flushed.count(f"{other}.jsonl") == 1

    # A stream flushes the user's message before its `start` event, and the reply at the end.
    flushed.clear()
    events = stream(client, "mental", {"text": "still tired", "session_id": session}, token)
    assert events[-1][0] == "done" and flushed.count(log) == 2



def test_a_turn_writes_the_session_once_per_message_and_each_counter_once(make_wm, serve, tmp_path):
    """A turn's writes besides its log (issue 13: bench/chat's overhead per turn went 3.3 -> 7 ms
    with 9 of them): its session's count once per message (the log's seq settles a kill in
    between, no mark before), the hour's counter (the total adds the latest hours when read) and the
    user's mood once each."""
    import shutil

    from conftest import ROOT

    (tmp_path / "plugins").mkdir()
    shutil.copy(ROOT / "tests" / "plugins" / "counting_storage.py", tmp_path / "plugins")
    served = serve(make_wm({"storage": {"backend": "counting"}}))
    client, storage = served.client, served.wm.storage
    token = client.register()["access_token"]
    session = client.post("/api/v1/health/mental/chat", {"text": "hi"}, token=token).json["session_id"]
    storage.writes.clear()
    r = client.post("/api/v1/health/mental/chat", {"text": "睡不好怎么办", "session_id": session}, token=token)
    assert r.status == 200
    # The total is the hours' from its checkpoint on: the hour's counter alone (2 before), once
    # for each message: the user's is counted as it is stored, not with the reply (a kill during
    # the provider's call lost it; server CPU a turn 4.33 -> 4.35 ms, bench/turn_ab).
    assert storage.writes == {"sessions": 2, "chat_activity": 2, "chat_moods": 1}  # was 4, 4 and 1
    assert client.get(f"/api/v1/health/sessions/{session}", token=token).json["message_count"] == 4

LAZY_PLUGIN = '''
from wellmate import hookimpl

@hookimpl
def prompt_context(user, agent, wm):
    def tea():
        with open(wm.data_dir / "tea_made", "a") as f:
            f.write(agent + "\\n")
        return "green tea"
    return {"tea": tea}
'''


def test_a_costly_placeholder_is_worked_out_only_for_prompts_that_use_it(make_wm, serve, tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "lazy.py").write_text(LAZY_PLUGIN)
    (tmp_path / "tea.txt").write_text("你是身体健康助手。今天推荐：$tea。")
    wm = make_wm({"agents": {"physical": {"prompt": str(tmp_path / "tea.txt")}}})
    client = serve(wm).client
    token = client.register()["access_token"]
    made = wm.data_dir / "tea_made"
    assert client.post("/api/v1/health/mental/chat", {"text": "hi"}, token=token).status == 200
    assert not made.exists()  # the mental prompt has no $tea
    assert client.post("/api/v1/health/physical/chat", {"text": "hi"}, token=token).status == 200
    assert made.read_text() == "physical\n"
    assert "推荐：green tea。" in wm.prompts.render(str(tmp_path / "tea.txt"), wm.prompt_values({"id": "x"}, "physical"))
