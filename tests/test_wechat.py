"""WeChat mini-program login over HTTP, against a fake WeChat server speaking jscode2session's
real wire format; and the whole life of a WeChat user: wx-login, chat, export, delete."""

import json
import socket
import threading

import pytest

import wellmate

from fakes.wechat_server import FakeWeChat
from conftest import assert_error


@pytest.fixture
def wechat():
    with FakeWeChat(appid="wx-test-appid", secret="test-app-secret-123") as fake:
        yield fake


def wechat_config(fake, **extra):
    return {"auth": {"wechat": {"appid": fake.appid, "secret": fake.secret, "api_base": fake.url,
                                "timeout": 5, **extra}}}


@pytest.fixture
def served(make_wm, serve, wechat):
    return serve(make_wm(wechat_config(wechat)))


def wx_login(client, code):
    return client.post("/api/v1/auth/wx-login", {"code": code})


def test_first_login_creates_the_user_and_the_next_finds_it(served, wechat):
    client = served.client
    r = wx_login(client, wechat.login("o-alice"))
    assert r.status == 200, r.text
    first = r.json
    assert first["created"] is True and first["token_type"] == "Bearer"
    assert first["user"]["username"] is None and first["user"]["role"] == "user"
    assert client.get("/api/v1/users/profile", token=first["access_token"]).json["uuid"] == first["user"]["uuid"]

    again = wx_login(client, wechat.login("o-alice")).json
    assert again["created"] is False and again["user"]["uuid"] == first["user"]["uuid"]
    other = wx_login(client, wechat.login("o-bob")).json
    assert other["created"] is True and other["user"]["uuid"] != first["user"]["uuid"]

    # What WeChat was asked, as its API wants it.
    query = wechat.requests[0].query
    assert wechat.requests[0].path == "/sns/jscode2session"
    assert query["appid"] == wechat.appid and query["secret"] == wechat.secret
    assert query["grant_type"] == "authorization_code" and len(query["js_code"]) == 32


def test_session_key_never_leaves_the_server(served, wechat):
    client = served.client
    r = wx_login(client, wechat.login("o-alice"))
    profile = client.get("/api/v1/users/profile", token=r.json["access_token"])
    export = client.get("/api/v1/users/export", token=r.json["access_token"])
    stored = served.wm.service("accounts").get(r.json["user"]["uuid"])
    [session_key] = wechat.session_keys
    for text in (r.text, profile.text, export.text, json.dumps(stored)):
        assert session_key not in text
        assert wechat.secret not in text
    assert stored["wx_openid"] == "o-alice"
    assert export.json["profile"]["wx_openid"] == "o-alice"  # the user's own data is in their export


def test_unionid_links_the_same_person_across_apps(served, wechat):
    client = served.client
    alice = wx_login(client, wechat.login("o-alice")).json["user"]["uuid"]
    # The mini-program is later bound to an open-platform account: the unionid arrives and is kept.
    assert wx_login(client, wechat.login("o-alice", unionid="u-alice")).json["user"]["uuid"] == alice
    assert served.wm.service("accounts").get(alice)["wx_unionid"] == "u-alice"
    # The same person through another app of that platform (another openid) is the same user.
    r = wx_login(client, wechat.login("o-alice-in-other-app", unionid="u-alice")).json
    assert r["created"] is False and r["user"]["uuid"] == alice


@pytest.mark.parametrize("content_type", ["text/plain", "application/json"])
def test_reply_is_read_whatever_its_content_type(make_wm, serve, content_type):
    with FakeWeChat(content_type=content_type) as fake:
        client = serve(make_wm(wechat_config(fake))).client
        assert wx_login(client, fake.login("o-alice")).status == 200


def test_bad_codes_are_401(served, wechat):
    client = served.client
    code = wechat.login("o-alice")
    assert wx_login(client, code).status == 200
    assert_error(wx_login(client, code), 401, "invalid_wx_code")  # 40163: a code works once
    assert_error(wx_login(client, "never-issued-code"), 401, "invalid_wx_code")  # 40029
    assert_error(client.post("/api/v1/auth/wx-login", {}), 400, "missing_field")
    assert_error(client.post("/api/v1/auth/wx-login", {"code": 12}), 400, "invalid_field")


@pytest.mark.parametrize("mode, status, code", [
    ("rate_limited", 429, "wechat_rate_limited"),  # 45011
    ("busy", 502, "wechat_unavailable"),  # -1
    ("timeout", 502, "wechat_unavailable"),
    ("bad_gateway", 502, "wechat_unavailable"),
    ("blocked", 403, "wechat_login_blocked"),  # 40226
])
def test_wechat_failures_map_to_clear_errors(make_wm, serve, wechat, mode, status, code):
    # Only the timeout case waits for the timeout; elsewhere a slow machine must not trip it.
    served = serve(make_wm(wechat_config(wechat, **({"timeout": 0.5} if mode == "timeout" else {}))))
    wechat.mode = mode
    r = wx_login(served.client, wechat.login("o-alice"))
    assert_error(r, status, code)
    if status == 429:
        assert r.headers["Retry-After"] == "60"
    assert wechat.secret not in r.text
    wechat.mode = "ok"  # and it recovers: nothing was created by the failure
    assert wx_login(served.client, wechat.login("o-alice")).json["created"] is True


def test_unreachable_wechat_is_502(make_wm, serve):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = serve(make_wm({"auth": {"wechat": {"appid": "wx1", "secret": "s", "api_base": f"http://127.0.0.1:{port}"}}})).client
    assert_error(wx_login(client, "any"), 502, "wechat_unavailable")


def test_wrong_appsecret_is_the_servers_problem(make_wm, serve, wechat):
    client = serve(make_wm(wechat_config(wechat, secret="not-the-secret"))).client
    r = wx_login(client, wechat.login("o-alice"))
    assert_error(r, 503, "wechat_misconfigured")
    assert "auth.wechat.secret" in r.json["error"]["message"] and "not-the-secret" not in r.text


def test_not_configured_is_503(client):
    # The shipped config has no AppID or AppSecret.
    r = wx_login(client, "any")
    assert_error(r, 503, "wechat_not_configured")
    assert "auth.wechat.appid" in r.json["error"]["message"]


def test_first_logins_at_once_make_one_account(served, wechat):
    # A mini-program may call wx.login from app and page at launch: two codes, one person.
    codes = [wechat.login("o-alice") for _ in range(8)]
    results = [None] * len(codes)

    def run(n):
        results[n] = wx_login(served.client, codes[n])

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(codes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.status == 200 for r in results), [r.text for r in results]
    assert len({r.json["user"]["uuid"] for r in results}) == 1
    assert sum(r.json["created"] for r in results) == 1
    assert served.wm.storage.count("users") == 1


def test_closed_registration_and_disabled_accounts(make_wm, serve, wechat):
    served = serve(make_wm({**wechat_config(wechat), "auth": {**wechat_config(wechat)["auth"], "allow_registration": False}}))
    client = served.client
    assert_error(wx_login(client, wechat.login("o-new")), 403, "registration_closed")
    # Someone who already has an account still gets in.
    accounts = served.wm.service("accounts")
    accounts.create({"id": "u1", "username": None, "password_hash": None, "role": "user", "settings": {},
                     "disabled": False, "created_at": "2026-01-01T00:00:00.000Z", "wx_openid": "o-old"})
    assert wx_login(client, wechat.login("o-old")).status == 200
    accounts.update("u1", {"disabled": True})
    assert_error(wx_login(client, wechat.login("o-old")), 403, "account_disabled")


def test_bad_codes_from_one_address_are_throttled(make_wm, serve, wechat):
    config = wechat_config(wechat)
    config["auth"]["throttle"] = {"max_failures_per_address": 3}
    client = serve(make_wm(config)).client
    for _ in range(3):
        assert_error(wx_login(client, "bogus"), 401, "invalid_wx_code")
    asked = len(wechat.requests)
    r = wx_login(client, wechat.login("o-alice"))
    assert_error(r, 429, "too_many_attempts")
    assert int(r.headers["Retry-After"]) > 0
    assert len(wechat.requests) == asked  # refused before WeChat's quota is spent


def test_full_flow_wx_login_chat_export_delete(served, wechat):
    client = served.client
    pair = wx_login(client, wechat.login("o-alice")).json
    token = pair["access_token"]

    r = client.post("/api/v1/health/mental/chat", {"text": "最近睡不好，有点焦虑"}, token=token)
    assert r.status == 200, r.text
    session_id = r.json["session_id"]
    r = client.post("/api/v1/health/mental/chat/stream", {"text": "谢谢你", "session_id": session_id}, token=token)
    assert r.status == 200 and "event: done" in r.text

    r = client.get("/api/v1/users/export", token=token)
    assert r.status == 200, r.text
    export = r.json
    assert export["profile"]["uuid"] == pair["user"]["uuid"]
    [session] = export["sessions"]
    assert session["id"] == session_id
    assert [m["role"] for m in session["messages"]] == ["user", "assistant", "user", "assistant"]
    assert session["messages"][0]["content"] == "最近睡不好，有点焦虑"

    # A WeChat-only account proves it is its owner with a login that just happened.
    r = client.delete("/api/v1/users/me", {}, token=token)
    assert r.status == 204, r.text
    assert_error(client.get("/api/v1/users/export", token=token), 401, "invalid_token")
    assert_error(client.post("/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]}), 401, "invalid_refresh_token")
    storage = served.wm.storage
    assert served.wm.service("accounts").get(pair["user"]["uuid"]) is None
    assert served.wm.service("chat").sessions.get(session_id) is None and storage.list_messages(session_id) == ([], None)
    # The same WeChat user logging in again starts afresh.
    again = wx_login(client, wechat.login("o-alice")).json
    assert again["created"] is True and again["user"]["uuid"] != pair["user"]["uuid"]
    assert client.get("/api/v1/users/export", token=again["access_token"]).json["sessions"] == []


@pytest.mark.parametrize("api_base", ["https://", "https://api.weixin.qq.com:99999", "ftp://api.weixin.qq.com"])
def test_an_api_base_no_request_could_use_stops_startup(make_wm, api_base):
    """It used to pass start-up (the scheme was all that was checked) and fail every login with a 500."""
    with pytest.raises(wellmate.ConfigError, match="api_base"):
        make_wm({"auth": {"wechat": {"appid": "wx1", "secret": "s", "api_base": api_base}}})
