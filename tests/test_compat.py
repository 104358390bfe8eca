"""The compat plugin (plugins/compat.py, docs/compat.md): the earlier apps' clients, each speaking
its own wire format exactly, against a served Wellmate with that dialect on."""

import hashlib

import pytest
import yaml
from conftest import Served, merge, shipped_config

import wellmate

MP_KEY = "mp-" + "a1" * 15
FLASK_KEY = "fl-" + "b2" * 15
COMPAT = {"compat": {"miniprogram": {"key": MP_KEY}, "flask": {"key": FLASK_KEY, "user": "household"}}}


def build(tmp, overrides):
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(merge(shipped_config(tmp), overrides), allow_unicode=True), encoding="utf-8")
    return wellmate.create_app(path)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """One Wellmate with both dialects on, and its household account."""
    wm = build(tmp_path_factory.mktemp("compat"), COMPAT)
    served = Served(wm)
    served.household = served.client.register("household")
    yield served
    served.stop()
    wm.close()


def mp_chat(site, **body):
    return site.client.post(f"/{MP_KEY}/api/chat", body)


def mp_history(site, user_id, session_id):
    return site.client.get(f"/{MP_KEY}/api/chat/history?user_id={user_id}&session_id={session_id}")


def test_a_miniprogram_client_chats_and_reads_its_history(site):
    first = mp_chat(site, user_id="wx-user-1", session_id="s-1", message="I slept badly again",
                    timestamp="2026-12-06T08:00:00Z", history=[])
    assert first.status == 200, first.text
    assert set(first.json) >= {"message_id", "content", "emotion", "timestamp", "session_id"}
    assert first.json["session_id"] == "s-1" and first.json["content"]
    assert first.json["emotion"] in site.wm.config["emotion"]["reply_labels"]
    second = mp_chat(site, user_id="wx-user-1", session_id="s-1", message="What helps me fall asleep?")
    assert second.status == 200, second.text

    r = mp_history(site, "wx-user-1", "s-1")
    assert r.status == 200, r.text
    assert r.json["session_id"] == "s-1"
    messages = r.json["messages"]
    assert [m["role"] for m in messages] == ["user", "agent", "user", "agent"]
    assert [m["content"] for m in messages] == ["I slept badly again", first.json["content"],
                                                "What helps me fall asleep?", second.json["content"]]
    assert all(m["timestamp"] for m in messages)
    # A real Wellmate turn: one session of the real chat service, with the labels it stores.
    user = site.wm.storage.get("compat_users", "miniprogram:" + hashlib.sha256(b"wx-user-1").hexdigest())
    sessions, _ = site.wm.service("chat").sessions.list(user["user_id"])
    assert len(sessions) == 1 and sessions[0]["message_count"] == 4


def test_a_session_starts_without_a_session_id_and_numeric_ids_are_read(site):
    r = mp_chat(site, user_id=12345, message="hello")
    assert r.status == 200, r.text
    assert mp_history(site, "12345", r.json["session_id"]).json["messages"][0]["content"] == "hello"


def test_another_users_session_id_reads_nothing_of_theirs(site):
    assert mp_chat(site, user_id="alice-1", session_id="shared-1", message="my private worry").status == 200
    accounts = site.wm.service("accounts").count()
    r = mp_history(site, "mallory-1", "shared-1")
    assert r.status == 200 and r.json["messages"] == []
    assert site.wm.service("accounts").count() == accounts  # a read makes no account
    # Writing to it makes Mallory's own session of that name; Alice's stays hers alone.
    assert mp_chat(site, user_id="mallory-1", session_id="shared-1", message="hi").status == 200
    assert [m["content"] for m in mp_history(site, "mallory-1", "shared-1").json["messages"]][0] == "hi"
    assert [m["content"] for m in mp_history(site, "alice-1", "shared-1").json["messages"]][0] == "my private worry"
    assert len(mp_history(site, "alice-1", "shared-1").json["messages"]) == 2


def test_a_crisis_message_gets_the_hotline_in_both_dialects(site):
    for r in (mp_chat(site, user_id="crisis-1", session_id="c", message="I want to kill myself tonight"),
              site.client.post(f"/{FLASK_KEY}/api/chat", {"message": "I want to kill myself tonight"})):
        assert r.status == 200, r.text
        assert "12356" in (r.json.get("content") or r.json.get("reply")), r.text


def test_a_crisis_in_a_message_too_long_to_take_gets_the_hotline_in_both_dialects(site):
    # the session-15 review: the dialects' own length check said only "at most 4000 characters" to a long letter
    # ending in a crisis, where /api/v1 chat (Chat.refuse_too_long) gives the crisis reply's words; now they share it
    letter = "今天又是很长的一天，我写了很多话。" * 900
    for text, crisis in ((letter + "我想自杀", True), ("I want to kill myself. " + "and then I walked home. " * 700, True),
                         (letter, False)):
        for r in (mp_chat(site, user_id="long-1", session_id="l", message=text),
                  site.client.post(f"/{FLASK_KEY}/api/chat", {"message": text})):
            assert r.status == 400, r.text
            said = r.json.get("detail") or r.json.get("error")
            assert "message: at most 4000 characters" in str(said), r.text
            assert ("12356" in str(said)) is crisis, r.text


def test_bad_requests_answer_in_each_dialects_error_shape(site):
    r = mp_chat(site, user_id="u-2", session_id="s")
    assert r.status == 400 and "message" in r.json["detail"] and r.json["error"]["code"] == "missing_field"
    r = site.client.post(f"/{MP_KEY}/api/chat", raw=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.json["detail"]
    r = mp_chat(site, user_id="a/b", session_id="s", message="x")
    assert r.status == 400 and r.json["error"]["code"] == "invalid_field"
    r = site.client.get(f"/{MP_KEY}/api/chat/history?session_id=s")
    assert r.status == 400 and "user_id" in r.json["detail"]
    for odd in ({"user_id": ["u"], "session_id": "s", "message": "x"}, {"user_id": "u", "session_id": {}, "message": "x"},
                {"user_id": "u", "session_id": "s", "message": 5}, {"user_id": True, "message": "x"},
                {"user_id": "u" * 129, "message": "x"}):
        r = mp_chat(site, **odd)
        assert r.status == 400 and r.json["detail"], (odd, r.text)
    for body in ({"message": ""}, {"message": ["hi"]}, {}):
        r = site.client.post(f"/{FLASK_KEY}/api/chat", body)
        assert r.status == 400 and r.json["success"] is False and r.json["error"], (body, r.text)
    r = site.client.post(f"/{FLASK_KEY}/api/chat", raw=b"[1]", headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.json["success"] is False


def test_a_flask_client_chats_reads_its_history_with_reminders_and_health(site):
    r = site.client.post(f"/{FLASK_KEY}/api/chat", {"message": "Remind me to drink water"})
    assert r.status == 200, r.text
    assert r.json["success"] is True and r.json["reply"]
    # A reminder arrives in the household's conversation (as the in-app channel pushes it).
    chat = site.wm.service("chat")
    sessions, _ = chat.sessions.list(site.household["user"]["uuid"])
    chat.push(sessions[0]["id"], {"id": wellmate.new_id(), "content": "Time to drink water", "reminder_id": "r-1"})

    r = site.client.get(f"/{FLASK_KEY}/api/history")
    assert r.status == 200, r.text
    assert r.json["success"] is True
    tail = r.json["messages"][-3:]
    assert [(m["role"], m["is_scheduled"]) for m in tail] == [("user", False), ("assistant", False),
                                                               ("assistant", True)]
    assert tail[0]["content"] == "Remind me to drink water" and tail[2]["content"] == "Time to drink water"
    assert all(m["timestamp"] for m in tail)
    # The same conversation through the normal API, for the household's own login.
    token = site.household["access_token"]
    seen = site.client.get(f"/api/v1/health/sessions/{sessions[0]['id']}", token=token)
    assert [m["content"] for m in seen.json["messages"]["items"]][-3:] == [m["content"] for m in tail]

    health = site.client.get(f"/{FLASK_KEY}/api/health")
    assert health.status == 200 and health.json["status"] == "ok"
    assert isinstance(health.json["scheduler_running"], bool)


def test_a_wrong_key_or_the_other_dialects_route_is_a_404(site):
    assert site.client.post("/" + "x" * 30 + "/api/chat", {"message": "hi"}).status == 404
    assert site.client.get(f"/{MP_KEY}/api/history").status == 404
    assert site.client.get(f"/{FLASK_KEY}/api/chat/history?user_id=a&session_id=b").status == 404


def test_dialects_are_off_unless_config_gives_them_a_key(tmp_path):
    wm = build(tmp_path, {})
    served = Served(wm)
    try:
        assert served.client.post(f"/{MP_KEY}/api/chat", {"user_id": "u", "session_id": "s", "message": "hi"}).status == 404
        assert served.client.post(f"/{FLASK_KEY}/api/chat", {"message": "hi"}).status == 404
        assert served.client.get(f"/{FLASK_KEY}/api/health").status == 404
    finally:
        served.stop()
        wm.close()


@pytest.mark.parametrize("compat, says", [
    ({"miniprogram": {"key": MP_KEY}, "flask": {"key": MP_KEY, "user": "h"}}, "compat.flask.key"),
    ({"miniprogram": {"key": "short"}}, "compat.miniprogram.key"),
    ({"flask": {"key": FLASK_KEY}}, "compat.flask.user"),
    ({"miniprogram": {"key": MP_KEY, "agent": "nobody"}}, "compat.miniprogram.agent"),
])
def test_config_check_refuses_a_dialect_it_cannot_serve(tmp_path, compat, says):
    with pytest.raises(wellmate.ConfigError, match=says):
        build(tmp_path, {"compat": compat}).close()


def test_a_missing_household_account_is_a_flask_error_not_a_500(tmp_path):
    wm = build(tmp_path, {"compat": {"flask": {"key": FLASK_KEY, "user": "nobody-here"}}})
    served = Served(wm)
    try:
        r = served.client.post(f"/{FLASK_KEY}/api/chat", {"message": "hi"})
        assert r.status == 503 and r.json["success"] is False and "nobody-here" in r.json["error"]
    finally:
        served.stop()
        wm.close()


def test_a_disabled_account_is_refused_in_its_dialect(site):
    assert mp_chat(site, user_id="to-disable", session_id="s", message="hello").status == 200
    found = site.wm.storage.get("compat_users", "miniprogram:" + hashlib.sha256(b"to-disable").hexdigest())
    site.wm.service("accounts").update(found["user_id"], {"disabled": True})
    r = mp_chat(site, user_id="to-disable", session_id="s", message="hello again")
    assert r.status == 403 and r.json["error"]["code"] == "account_disabled" and r.json["detail"]
    assert mp_history(site, "to-disable", "s").status == 403
