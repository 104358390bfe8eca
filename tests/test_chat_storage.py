"""The chat plugin's and the safety plugin's own collections, over the served app: a data folder
of the previous version keeps its flags, message counts and moods; what a user deletes leaves
the admin's flags and counts; the counters and the flag index answer instead of the sessions."""

import json
from datetime import datetime, timedelta, timezone

from wellmate import json_dumps, new_id, now_iso


def old_folder(data, alice_id: str, now: datetime) -> list[str]:
    """A data folder as the version before collections left it (TinyDB files, safety's flags on
    the sessions, messages in per-session logs): alice has three sessions, two of them flagged."""
    from wellmate_plugins.auth import hash_password

    data.mkdir(parents=True)
    alice = {"id": alice_id, "username": "alice", "password_hash": hash_password("correct horse"), "full_name": "",
             "role": "user", "settings": {}, "disabled": False, "created_at": now_iso(now - timedelta(days=9))}
    (data / "users.json").write_text(json.dumps({"users": {"1": alice}, "refresh_tokens": {}}))
    ids = [new_id() for _ in range(3)]
    sessions = {}
    for n, (session_id, flags) in enumerate(zip(ids, [{"crisis": 2}, {"red_flag": 1, "check_in": 1}, None])):
        session = {"id": session_id, "user_id": alice_id, "agent": "mental", "title": "old",
                   "created_at": now_iso(now - timedelta(hours=5 - n))}
        if flags:
            session.update(flags=flags, flagged_at=now_iso(now - timedelta(hours=4 - n)))
        sessions[str(n + 1)] = session
        messages = [{"id": new_id(), "role": role, "content": "x", "emotion": "sad" if role == "user" else "calm",
                     "created_at": now_iso(now - timedelta(hours=4 - n, minutes=10 - m))}
                    for m, role in enumerate(["user", "assistant", "user"])]
        (data / "messages").mkdir(exist_ok=True)
        (data / "messages" / f"{session_id}.jsonl").write_text("".join(json_dumps(m) + "\n" for m in messages))
    (data / "sessions.json").write_text(json.dumps({"sessions": sessions}))
    return ids


def test_an_older_folders_flags_counts_and_moods_still_show(make_wm, serve, tmp_path):
    now = datetime.now(timezone.utc).replace(hour=12)  # today's noon: every message is today
    alice_id = new_id()
    ids = old_folder(tmp_path / "data", alice_id, now)  # the folder the shipped config's tests use

    served = serve(make_wm())
    client, wm = served.client, served.wm
    boss = client.register("boss")
    wm.service("accounts").update(boss["user"]["uuid"], {"role": "admin"})
    admin = boss["access_token"]
    # The flags moved into the safety plugin's collection, once, at the first start.
    assert wm.storage.count("safety_flags") == 2
    flags = client.get("/api/v1/admin/flags", token=admin).json
    assert flags["sessions"] == 2 and flags["users"] == 1
    assert flags["by_kind"] == {"crisis": 1, "red_flag": 1, "check_in": 1}
    assert [item["session_id"] for item in flags["items"]] == [ids[1], ids[0]]  # most recently flagged first
    assert flags["items"][0]["username"] == "alice" and flags["items"][1]["flags"] == {"crisis": 2}
    stats = client.get("/api/v1/admin/stats?days=2", token=admin).json
    assert stats["messages_per_day"][-1] == {"date": now.date().isoformat(), "user": 6, "assistant": 3, "total": 9}
    assert stats["storage"]["messages"] == 9 and stats["storage"]["sessions"] == 3

    alice = client.post("/api/v1/auth/login", {"username": "alice", "password": "correct horse"}).json["access_token"]
    mood = client.get("/api/v1/health/mood?days=1", token=alice).json
    assert mood["counts"]["sad"] == 6 and mood["total"] == 6
    # A flagged session deleted: gone from the flags, its messages from the counts.
    assert client.delete(f"/api/v1/health/sessions/{ids[0]}", token=alice).status == 204
    flags = client.get("/api/v1/admin/flags", token=admin).json
    assert flags["sessions"] == 1 and flags["by_kind"] == {"red_flag": 1, "check_in": 1}
    stats = client.get("/api/v1/admin/stats?days=2", token=admin).json
    assert stats["messages_per_day"][-1]["total"] == 6 and stats["storage"]["messages"] == 6
    assert client.get("/api/v1/health/mood?days=1", token=alice).json["counts"]["sad"] == 4


def test_a_deleted_account_leaves_no_flags_or_counts(make_wm, serve):
    served = serve(make_wm())
    client, wm = served.client, served.wm
    alice = client.register("alice")
    bob = client.register("bob")
    boss = client.register("boss")
    wm.service("accounts").update(boss["user"]["uuid"], {"role": "admin"})
    for token, text in ((alice["access_token"], "我想自杀"), (bob["access_token"], "我不想活了"),
                        (alice["access_token"], "今天挺开心的")):
        assert client.post("/api/v1/health/mental/chat", {"text": text}, token=token).status == 200
    before = client.get("/api/v1/admin/flags", token=boss["access_token"]).json
    assert before["sessions"] == 2 and before["users"] == 2
    # The user's export shows a session's flags, as when they were kept on the session.
    exported = client.get("/api/v1/users/export", token=alice["access_token"]).json["sessions"]
    assert [s.get("flags") for s in exported] == [{"crisis": 1}, None]
    assert exported[0]["flagged_at"] and [m["role"] for m in exported[0]["messages"]] == ["user", "assistant"]
    r = client.delete("/api/v1/users/me", {"password": "correct horse"}, token=alice["access_token"])
    assert r.status == 204
    flags = client.get("/api/v1/admin/flags", token=boss["access_token"]).json
    assert flags["sessions"] == 1 and flags["users"] == 1 and flags["by_kind"] == {"crisis": 1}
    assert [item["username"] for item in flags["items"]] == ["bob"]
    stats = client.get("/api/v1/admin/stats", token=boss["access_token"]).json
    assert stats["storage"]["messages"] == 2 and stats["messages_per_day"][-1]["total"] == 2
    assert wm.storage.count("chat_moods") == 1  # bob's hour; alice's went with her
