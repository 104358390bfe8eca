"""The user's own account over HTTP: setting and changing the password, exporting all their
data, deleting the account (with proof of identity) and what is left afterwards."""

import http.client
import json
import time

import jwt
import pytest

from fakes.wechat_server import FakeWeChat
from wellmate import json_dumps, new_id, now_iso
from storage_contract import at, make_message, make_record, make_reminder
from conftest import assert_error


@pytest.fixture
def wechat():
    with FakeWeChat() as fake:
        yield fake


@pytest.fixture
def served(make_wm, serve, wechat):
    return serve(make_wm({"auth": {"wechat": {"appid": wechat.appid, "secret": wechat.secret,
                                              "api_base": wechat.url, "timeout": 1}}}))


def token_for(served, user_id, auth_age=None, iat_age=0):
    """An access token made with the server's secret: one from a login ``auth_age`` seconds ago,
    or (None) one from a refresh, which carries no auth_time."""
    now = time.time()
    claims = {"sub": user_id, "typ": "access", "iat": now - iat_age, "exp": now + 600}
    if auth_age is not None:
        claims["auth_time"] = now - auth_age
    return jwt.encode(claims, served.wm.service("auth").tokens.secret, algorithm="HS256")


# -- export ------------------------------------------------------------------------------------

def test_export_holds_everything_of_the_caller_and_nothing_else(served):
    client, storage = served.client, served.wm.storage
    alice = client.register("alice", full_name="爱丽丝", settings={"timezone": "Asia/Shanghai"})
    bob = client.register("bob")
    token, alice_id = alice["access_token"], alice["user"]["uuid"]
    first = client.post("/api/v1/health/physical/chat", {"text": "膝盖疼"}, token=token).json
    client.post("/api/v1/health/mental/chat", {"text": "有点累"}, token=token)
    client.post("/api/v1/health/mental/chat", {"text": "bob's secret"}, token=bob["access_token"])
    # A long history: more than one page of every list the export walks.
    for n in range(230):
        served.wm.service("chat").sessions.append(first["session_id"],
                                                  make_message(f"m{n}", role="user" if n % 2 else "assistant"))
    for n in range(105):
        storage.insert("records", make_record(alice_id, value=60 + n / 10))
    storage.insert("records", make_record(bob["user"]["uuid"], note="bob's record"))
    reminder = storage.insert("reminders", make_reminder(alice_id))
    storage.insert("deliveries", {"id": new_id(), "reminder_id": reminder["id"], "user_id": alice_id, "fire_id": "f1",
                          "channel": "inapp", "status": "sent", "detail": "", "created_at": now_iso()})
    storage.insert("reminders", make_reminder(bob["user"]["uuid"], title="bob's reminder"))

    r = client.get("/api/v1/users/export", token=token)
    assert r.status == 200, r.text
    assert r.headers["Content-Disposition"].startswith('attachment; filename="wellmate-export-')
    assert r.headers["Cache-Control"] == "no-store"
    export = r.json
    assert export["export_version"] == 1 and export["exported_at"].endswith("Z")
    profile = export["profile"]
    assert profile["uuid"] == alice_id and profile["full_name"] == "爱丽丝" and profile["has_password"] is True
    assert profile["settings"] == {"timezone": "Asia/Shanghai"}
    assert "password_hash" not in r.text and "bob" not in r.text and "tokens_valid_after" not in r.text

    assert [s["agent"] for s in export["sessions"]] == ["physical", "mental"]  # oldest first
    physical = export["sessions"][0]
    assert physical["message_count"] == 2 + 230 == len(physical["messages"])
    assert [m["content"] for m in physical["messages"][:1]] == ["膝盖疼"]
    assert [m["content"] for m in physical["messages"][2:]] == [f"m{n}" for n in range(230)]
    assert len(export["records"]) == 105 and len(export["reminders"]) == 1
    assert [d["fire_id"] for d in export["reminders"][0]["deliveries"]] == ["f1"]
    assert all("user_id" not in item for item in
               export["records"] + export["reminders"] + export["sessions"] + export["reminders"][0]["deliveries"])


def test_export_is_streamed_and_holds_every_message_and_record(served):
    # Built as it is sent (chunked, no Content-Length): 3,000 messages and 1,200 records, more
    # than a page of each list the export reads, come out whole, in order, as json_dumps writes them.
    client, storage = served.client, served.wm.storage
    alice = client.register("alice")
    token, alice_id = alice["access_token"], alice["user"]["uuid"]
    session_id = client.post("/api/v1/health/physical/chat", {"text": "膝盖疼"}, token=token).json["session_id"]
    sessions = served.wm.service("chat").sessions  # which counts them, as a chat turn does
    for n in range(3000):
        sessions.append(session_id, make_message(f"m{n}", role="user" if n % 2 else "assistant"), durable=False)
    sessions.sync(session_id)
    records = [make_record(alice_id, value=50 + n % 100, recorded_at=at(n * 60)) for n in range(1200)]
    for record in records:
        storage.insert("records", record, durable=False)
    storage.sync("records")

    r = client.get("/api/v1/users/export", token=token)
    assert r.status == 200, r.text
    assert r.headers.get("Transfer-Encoding") == "chunked" and "Content-Length" not in r.headers
    assert r.headers["Content-Type"].startswith("application/json")
    export = r.json
    assert r.body == json_dumps(export).encode("utf-8")
    assert list(export) == ["export_version", "exported_at", "server_version", "profile", "sessions", "records",
                            "reminders", "uploads"]
    [session] = export["sessions"]
    assert session["message_count"] == 3002 == len(session["messages"])
    assert [m["content"] for m in session["messages"][2:]] == [f"m{n}" for n in range(3000)]
    newest_first = sorted(records, key=lambda record: record["recorded_at"], reverse=True)
    assert export["records"] == [{k: v for k, v in record.items() if k != "user_id"} for record in newest_first]
    assert export["reminders"] == []


def test_an_export_that_fails_half_way_does_not_parse(make_wm, serve, tmp_path):
    # A plugin's section fails after the built-in ones were sent: what the client got must not
    # pass for a whole export (a JSON reader refuses it, and the chunked body never ends).
    (tmp_path / "plugins").mkdir(exist_ok=True)
    (tmp_path / "plugins" / "failing_export.py").write_text("""
from wellmate import hookimpl


@hookimpl
def export_user_data(user, wm):
    def items():
        for n in range(3000):
            if n == 2000:
                raise OSError(5, "Input/output error")
            yield {"n": n, "text": "x" * 50}
    return {"failing_export": items()}
""", encoding="utf-8")
    served = serve(make_wm())
    token = served.client.register("alice")["access_token"]
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    try:
        conn.request("GET", "/api/v1/users/export", headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        assert response.status == 200  # sent before the failure
        with pytest.raises(http.client.IncompleteRead) as cut:
            response.read()
    finally:
        conn.close()
    body = cut.value.partial.decode("utf-8")
    assert '"profile":{' in body and '"failing_export":[{"n":0,' in body and '{"n":1999,' in body
    assert body.endswith("\n!! The export failed half-way: this document is incomplete and is not JSON. "
                         "Try again; if it fails again, the server's log says why.\n")
    with pytest.raises(ValueError):
        json.loads(body)


def test_export_needs_a_token(served):
    assert_error(served.client.get("/api/v1/users/export"), 401, "unauthorized")


# -- delete ------------------------------------------------------------------------------------

def test_delete_with_password_removes_everything(served):
    client, storage = served.client, served.wm.storage
    alice = client.register("alice")
    bob = client.register("bob")
    token, alice_id = alice["access_token"], alice["user"]["uuid"]
    session_id = client.post("/api/v1/health/mental/chat", {"text": "hello"}, token=token).json["session_id"]
    bob_session = client.post("/api/v1/health/mental/chat", {"text": "hi"}, token=bob["access_token"]).json["session_id"]
    storage.insert("records", make_record(alice_id))
    storage.insert("reminders", make_reminder(alice_id))

    assert_error(client.delete("/api/v1/users/me", {}, token=token), 400, "missing_field")
    assert_error(client.delete("/api/v1/users/me", {"password": "not it at all"}, token=token), 403, "wrong_password")
    assert served.wm.service("accounts").get(alice_id) is not None  # nothing happened

    r = client.delete("/api/v1/users/me", {"password": "correct horse"}, token=token)
    assert r.status == 204 and r.body == b""
    assert_error(client.get("/api/v1/users/export", token=token), 401, "invalid_token")
    assert_error(client.get("/api/v1/users/profile", token=token), 401, "invalid_token")
    assert_error(client.post("/api/v1/auth/refresh", {"refresh_token": alice["refresh_token"]}), 401, "invalid_refresh_token")
    assert_error(client.post("/api/v1/auth/login", {"username": "alice", "password": "correct horse"}), 401, "invalid_credentials")
    accounts = served.wm.service("accounts")
    assert accounts.get(alice_id) is None and accounts.find_by_username("alice") is None
    assert served.wm.service("chat").sessions.get(session_id) is None
    assert storage.count("records", {"user_id": alice_id}) == 0 and served.wm.service("reminders").list(alice_id) == ([], None)
    assert not (served.wm.data_dir / "messages" / f"{session_id}.jsonl").exists()
    # Bob is untouched, and the name is free again.
    assert client.get(f"/api/v1/health/sessions/{bob_session}", token=bob["access_token"]).status == 200
    client.register("alice")


def test_wechat_only_account_deletes_with_a_recent_login_or_a_fresh_code(served, wechat):
    client = served.client
    pair = client.post("/api/v1/auth/wx-login", {"code": wechat.login("o-alice")}).json
    user_id = pair["user"]["uuid"]
    refreshed = client.post("/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]}).json
    # A refreshed token, or a login long ago, is not proof enough.
    for token in (refreshed["access_token"], token_for(served, user_id, auth_age=6 * 60)):
        assert_error(client.delete("/api/v1/users/me", {}, token=token), 403, "recent_login_required")
    token = refreshed["access_token"]
    assert_error(client.delete("/api/v1/users/me", {"code": wechat.login("o-mallory")}, token=token),
                 403, "wrong_wechat_account")
    assert_error(client.delete("/api/v1/users/me", {"code": "used-or-bogus"}, token=token), 403, "invalid_wx_code")
    assert served.wm.service("accounts").get(user_id) is not None
    assert client.delete("/api/v1/users/me", {"code": wechat.login("o-alice")}, token=token).status == 204
    assert served.wm.service("accounts").get(user_id) is None
    assert_error(client.get("/api/v1/users/profile", token=pair["access_token"]), 401, "invalid_token")


def test_a_recent_login_token_is_enough_for_a_wechat_only_account(served, wechat):
    client = served.client
    user_id = client.post("/api/v1/auth/wx-login", {"code": wechat.login("o-alice")}).json["user"]["uuid"]
    assert client.delete("/api/v1/users/me", token=token_for(served, user_id, auth_age=4 * 60)).status == 204


# -- password ----------------------------------------------------------------------------------

def test_wechat_user_sets_a_username_and_password_then_logs_in_either_way(served, wechat):
    client = served.client
    pair = client.post("/api/v1/auth/wx-login", {"code": wechat.login("o-alice")}).json
    token = pair["access_token"]
    client.register("taken")
    assert_error(client.put("/api/v1/users/password", {"password": "long enough"}, token=token), 400, "missing_field")
    assert_error(client.put("/api/v1/users/password", {"password": "short", "username": "alice"}, token=token), 400, "invalid_field")
    assert_error(client.put("/api/v1/users/password", {"password": "long enough", "username": "a b"}, token=token), 400, "invalid_field")
    assert_error(client.put("/api/v1/users/password", {"password": "long enough", "username": "TAKEN"}, token=token), 409, "username_taken")

    r = client.put("/api/v1/users/password", {"password": "long enough", "username": "alice"}, token=token)
    assert r.status == 200, r.text
    assert r.json["user"]["username"] == "alice" and r.json["user"]["uuid"] == pair["user"]["uuid"]
    new = r.json
    # Every other login ended; the new pair works at once.
    assert_error(client.get("/api/v1/users/profile", token=token), 401, "invalid_token")
    assert_error(client.post("/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]}), 401, "invalid_refresh_token")
    assert client.get("/api/v1/users/profile", token=new["access_token"]).status == 200

    by_password = client.post("/api/v1/auth/login", {"username": "alice", "password": "long enough"}).json
    by_wechat = client.post("/api/v1/auth/wx-login", {"code": wechat.login("o-alice")}).json
    assert by_password["user"]["uuid"] == by_wechat["user"]["uuid"] == pair["user"]["uuid"]
    assert by_wechat["created"] is False

    # From now on the account has a password: changing it needs the current one.
    token = by_wechat["access_token"]
    assert_error(client.put("/api/v1/users/password", {"password": "another one"}, token=token), 400, "missing_field")
    assert_error(client.put("/api/v1/users/password", {"password": "another one", "current_password": "nope nope"},
                            token=token), 403, "wrong_password")
    assert_error(client.put("/api/v1/users/password", {"password": "another one", "current_password": "long enough",
                                                       "username": "bob"}, token=token), 400, "username_set")


def test_wechat_user_with_a_stale_token_needs_a_code_to_set_a_password(served, wechat):
    client = served.client
    user_id = client.post("/api/v1/auth/wx-login", {"code": wechat.login("o-alice")}).json["user"]["uuid"]
    stale = token_for(served, user_id)  # as from a refresh
    body = {"password": "long enough", "username": "alice"}
    assert_error(client.put("/api/v1/users/password", body, token=stale), 403, "recent_login_required")
    r = client.put("/api/v1/users/password", {**body, "code": wechat.login("o-alice")}, token=stale)
    assert r.status == 200, r.text


def test_change_password(served):
    client = served.client
    alice = client.register("alice")
    r = client.put("/api/v1/users/password", {"password": "new password", "current_password": "correct horse"},
                   token=alice["access_token"])
    assert r.status == 200, r.text
    assert_error(client.get("/api/v1/users/profile", token=alice["access_token"]), 401, "invalid_token")
    assert client.get("/api/v1/users/profile", token=r.json["access_token"]).status == 200
    assert client.post("/api/v1/auth/login", {"username": "alice", "password": "correct horse"}).status == 401
    assert client.post("/api/v1/auth/login", {"username": "alice", "password": "new password"}).status == 200


def test_wrong_current_passwords_are_throttled_per_login(make_wm, serve):
    client = serve(make_wm({"auth": {"throttle": {"max_failures": 3}}})).client
    token = client.register("alice")["access_token"]
    for _ in range(3):
        r = client.put("/api/v1/users/password", {"password": "new password", "current_password": "guess guess"}, token=token)
        assert_error(r, 403, "wrong_password")
    r = client.put("/api/v1/users/password", {"password": "new password", "current_password": "correct horse"}, token=token)
    assert_error(r, 429, "too_many_attempts")
    # Counted for that login alone: a stolen token cannot lock the owner out of logging in.
    assert client.post("/api/v1/auth/login", {"username": "alice", "password": "correct horse"}).status == 200
