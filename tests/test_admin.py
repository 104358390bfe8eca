"""Roles and administration: `wellmate.py user ...` commands, the admin API over HTTP, service
stats, and what disabling an account does to its tokens."""

import io
import re
import socket
import subprocess
import sys

import pytest
import yaml

import wellmate
from conftest import ROOT, ServerProcess, assert_error, free_port


@pytest.fixture
def config_path(make_wm):
    """The test config on disk, with no Wellmate holding its data (commands write it)."""
    wm = make_wm()
    wm.close()
    return wm.config_path


@pytest.fixture
def cli(config_path, monkeypatch, capsys):
    """cli("user", "create", "bob", password="...") -> (exit status, stdout, stderr), in-process."""
    def run(*argv, password=None):
        monkeypatch.setattr(sys, "stdin", io.StringIO("" if password is None else password + "\n"))
        status = wellmate.main(["--config", str(config_path), *argv])
        out, err = capsys.readouterr()
        return status, out, err
    return run


def login(client, username, password):
    return client.post("/api/v1/auth/login", {"username": username, "password": password})


def test_create_an_admin_from_the_command_line_and_use_it(config_path, make_wm, serve):
    result = subprocess.run([sys.executable, str(ROOT / "wellmate.py"), "--config", str(config_path),
                             "user", "create", "root", "--admin", "--password-stdin"],
                            input="a long admin password\n", capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "created admin root" in result.stdout
    client = serve(make_wm()).client
    r = login(client, "root", "a long admin password")
    assert r.status == 200 and r.json["user"]["role"] == "admin"
    assert client.get("/api/v1/admin/users", token=r.json["access_token"]).status == 200


def test_user_commands(cli, make_wm, serve):
    assert cli("user", "create", "alice", "--full-name", "Alice", "--password-stdin", password="correct horse")[0] == 0
    status, _, err = cli("user", "create", "ALICE", "--password-stdin", password="another one")
    assert status == 1 and "taken" in err
    status, _, err = cli("user", "create", "bob", "--password-stdin", password="short")
    assert status == 1 and "at least 8" in err
    status, _, err = cli("user", "create", "no spaces", "--password-stdin", password="long enough")
    assert status == 1 and "username" in err
    assert cli("user", "create", "bob", "--password-stdin", password="long enough")[0] == 0

    status, out, _ = cli("user", "list")
    assert status == 0 and "alice" in out and "bob" in out and "2 user(s)" in out
    assert "correct horse" not in out and "scrypt" not in out

    assert cli("user", "set-password", "alice", "--password-stdin", password="new password")[0] == 0
    assert cli("user", "disable", "bob")[0] == 0
    assert cli("user", "promote", "alice")[0] == 0
    status, _, err = cli("user", "disable", "nobody")
    assert status == 1 and "no user" in err

    served = serve(make_wm())
    client = served.client
    assert login(client, "alice", "correct horse").status == 401
    alice = login(client, "alice", "new password").json
    assert alice["user"]["role"] == "admin" and alice["user"]["full_name"] == "Alice"
    assert_error(login(client, "bob", "long enough"), 403, "account_disabled")
    # A WeChat-only account gets a username along with its password.
    served.wm.service("accounts").create({"id": "wx-user-1", "username": None, "password_hash": None, "role": "user",
                                   "settings": {}, "disabled": False, "created_at": wellmate.now_iso(),
                                   "wx_openid": "o-1"})
    served.wm.close()  # (its server stays up, unused) so the commands below are the only writer
    status, _, err = cli("user", "set-password", "wx-user-1", "--password-stdin", password="long enough")
    assert status == 1 and "--username" in err
    assert cli("user", "set-password", "wx-user-1", "--username", "carol", "--password-stdin", password="long enough")[0] == 0
    assert cli("user", "enable", "bob")[0] == 0
    assert cli("user", "demote", "alice")[0] == 0
    client = serve(make_wm()).client
    assert login(client, "carol", "long enough").json["user"]["uuid"] == "wx-user-1"
    assert login(client, "bob", "long enough").status == 200
    assert login(client, "alice", "new password").json["user"]["role"] == "user"


def test_commands_that_write_refuse_to_run_beside_a_server(cli, config_path):
    port = free_port()
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config["server"].update(host="127.0.0.1", port=port)
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    running = ServerProcess(config_path, port)
    try:
        status, _, err = cli("user", "create", "alice", "--password-stdin", password="long enough")
        assert status == 1 and f"server (pid {running.proc.pid}) is running" in err
        assert "admin API" not in err  # it cannot create accounts: the message says what works
        status, _, err = cli("user", "disable", "alice")
        assert status == 1 and "POST /api/v1/admin/users/{id}/disable" in err
        assert cli("user", "list")[0] == 0  # reading is harmless
    finally:
        assert running.stop()[0] == 0
    assert cli("user", "create", "alice", "--password-stdin", password="long enough")[0] == 0


def test_create_with_no_terminal_and_no_password_stdin_is_a_one_line_error(config_path):
    result = subprocess.run([sys.executable, str(ROOT / "wellmate.py"), "--config", str(config_path),
                             "user", "create", "alice"], stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: no terminal") and "--password-stdin" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # no traceback, no getpass warning


def test_passwords_are_never_taken_as_arguments(cli, capsys):
    for command in ("create", "set-password"):
        with pytest.raises(SystemExit):
            cli("user", command, "--help")
        usage = capsys.readouterr().out
        assert "--password-stdin" in usage and not re.search(r"--password(?!-stdin)", usage)


# -- the admin API -----------------------------------------------------------------------------

ADMIN_ROUTES = [("GET", "/api/v1/admin/users"), ("GET", "/api/v1/admin/users/{id}"),
                ("POST", "/api/v1/admin/users/{id}/disable"), ("POST", "/api/v1/admin/users/{id}/enable"),
                ("GET", "/api/v1/admin/stats")]


@pytest.fixture
def served(make_wm, serve):
    return serve(make_wm())


def make_admin(served, username="root"):
    pair = served.client.register(username)
    served.wm.service("accounts").update(pair["user"]["uuid"], {"role": "admin"})
    return pair


def test_admin_routes_refuse_users_and_strangers(served):
    client = served.client
    user = client.register("alice")
    for method, path in ADMIN_ROUTES:
        path = path.format(id=user["user"]["uuid"])
        assert_error(client.request(method, path, token=user["access_token"]), 403, "admin_only")
        assert_error(client.request(method, path), 401, "unauthorized")
    assert served.wm.service("accounts").get(user["user"]["uuid"])["disabled"] is False


def test_admin_lists_and_reads_users(served):
    client = served.client
    token = make_admin(served)["access_token"]
    made = [client.register(f"user{n}")["user"]["uuid"] for n in range(5)]
    seen, before = [], None
    while True:
        r = client.get("/api/v1/admin/users?limit=2" + (f"&before={before}" if before else ""), token=token)
        assert r.status == 200, r.text
        seen += r.json["items"]
        before = r.json["next"]
        if before is None:
            break
    assert len(seen) == 6 and set(made) <= {u["uuid"] for u in seen}
    assert set(seen[0]) == {"uuid", "username", "full_name", "role", "disabled", "has_password", "wechat", "created_at"}
    r = client.get(f"/api/v1/admin/users/{made[0]}", token=token)
    assert r.json["username"] == "user0" and r.json["has_password"] is True and r.json["wechat"] is False
    assert_error(client.get("/api/v1/admin/users/nope", token=token), 404, "user_not_found")
    assert_error(client.get("/api/v1/admin/users?before=garbage", token=token), 400, "invalid_cursor")


def test_disabling_a_user_stops_their_tokens_at_once(served):
    client = served.client
    admin = make_admin(served)
    alice = client.register("alice")
    alice_id, token = alice["user"]["uuid"], alice["access_token"]
    assert client.get("/api/v1/users/profile", token=token).status == 200

    r = client.post(f"/api/v1/admin/users/{alice_id}/disable", token=admin["access_token"])
    assert r.status == 200 and r.json["disabled"] is True
    assert_error(client.get("/api/v1/users/profile", token=token), 401, "invalid_token")
    assert_error(client.post("/api/v1/health/mental/chat", {"text": "hi"}, token=token), 401, "invalid_token")
    assert_error(client.post("/api/v1/auth/refresh", {"refresh_token": alice["refresh_token"]}), 401, "invalid_refresh_token")
    # The right password hears why; any other answer is the one an unknown name gets.
    assert_error(login(client, "alice", "correct horse"), 403, "account_disabled")
    assert_error(login(client, "alice", "wrong password"), 401, "invalid_credentials")

    r = client.post(f"/api/v1/admin/users/{alice_id}/enable", token=admin["access_token"])
    assert r.status == 200 and r.json["disabled"] is False
    # Tokens from before the disable stay dead: the user logs in again.
    assert_error(client.get("/api/v1/users/profile", token=token), 401, "invalid_token")
    fresh = login(client, "alice", "correct horse").json
    assert client.get("/api/v1/users/profile", token=fresh["access_token"]).status == 200

    assert_error(client.post(f"/api/v1/admin/users/{admin['user']['uuid']}/disable", token=admin["access_token"]),
                 400, "cannot_disable_self")
    assert_error(client.post("/api/v1/admin/users/nope/disable", token=admin["access_token"]), 404, "user_not_found")


def test_stats(make_wm, serve):
    with socket.socket() as s:  # a model server that is switched off
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    served = serve(make_wm({
        "providers": {"broken": {"plugin": "openai", "base_url": f"http://127.0.0.1:{port}/v1", "model": "m",
                                 "timeout": 2, "connect_timeout": 0.5}},
        "agents": {"mental": {"providers": ["broken", "offline"]}},
    }))
    client = served.client
    admin = make_admin(served)
    served.wm.service("accounts").update(admin["user"]["uuid"], {"settings": {"timezone": "Asia/Shanghai"}})
    alice = client.register("alice")
    for text in ("hello", "again"):
        assert client.post("/api/v1/health/mental/chat", {"text": text}, token=alice["access_token"]).status == 200

    r = client.get("/api/v1/admin/stats?days=3", token=admin["access_token"])
    assert r.status == 200, r.text
    stats = r.json
    assert stats["days"] == 3 and stats["timezone"] == "Asia/Shanghai"
    assert stats["users"] == {"total": 2, "admins": 1, "disabled": 0, "wechat": 0, "with_password": 2, "new": 2}
    days = stats["messages_per_day"]
    assert len(days) == 3 and days[0]["date"] < days[1]["date"] < days[2]["date"]
    assert days[-1] == {"date": days[-1]["date"], "user": 2, "assistant": 2, "total": 4}
    assert days[0]["total"] == days[1]["total"] == 0
    assert stats["provider_failures"]["broken"] == 2 and stats["provider_failures"]["offline"] == 0
    assert stats["storage"]["backend"] == "files" and stats["storage"]["messages"] == 4

    r = client.get("/api/v1/admin/stats?tz=UTC", token=admin["access_token"])
    assert r.json["timezone"] == "UTC" and len(r.json["messages_per_day"]) == 7
    for query in ("days=0", "days=abc", "days=400", "tz=Mars/Base"):
        assert_error(client.get(f"/api/v1/admin/stats?{query}", token=admin["access_token"]), 400, "invalid_field")


def test_new_users_are_counted_not_read(make_wm, serve, tmp_path):
    """The stats' new users come from counters kept as accounts are created and deleted: they
    read no user (before, every user created since the first day: 480-640 ms at 50,000 new)."""
    from test_hooks import use_plugin

    use_plugin(tmp_path, "counting_storage")
    served = serve(make_wm({"storage": {"backend": "counting"}}))
    accounts, storage = served.wm.service("accounts"), served.wm.storage
    admin = make_admin(served)
    made = [accounts.create({"id": wellmate.new_id(), "username": f"user{n}", "created_at": wellmate.now_iso()})
            for n in range(30)]
    accounts.delete(made[0])
    storage.documents.clear()
    r = served.client.get("/api/v1/admin/stats?days=2", token=admin["access_token"])
    assert r.status == 200 and r.json["users"]["new"] == 30, r.text
    assert storage.documents["users"] == 1  # the admin's own, who asks


def test_new_users_since_any_time(make_wm):
    """Counted by quarter hour, and exact from any time: the users of the quarter hour it falls
    in are read."""
    wm = make_wm()
    accounts = wm.service("accounts")
    times = ["2026-03-01T09:59:59.999Z", "2026-03-01T10:00:00.000Z", "2026-03-01T10:07:00.000Z",
             "2026-03-01T10:14:59.999Z", "2026-03-01T10:15:00.000Z", "2026-03-01T23:59:00.000Z",
             "2026-03-02T00:00:00.000Z", "2026-12-31T12:00:00.000Z"]
    made = [accounts.create({"id": wellmate.new_id(), "username": f"user{n}", "created_at": at})
            for n, at in enumerate(times)]
    for since in times + ["2026-01-01T00:00:00.000Z", "2026-03-01T10:07:00.001Z", "2027-01-01T00:00:00.000Z"]:
        assert accounts.created_since(since) == sum(at >= since for at in times), since
    accounts.delete(made[2])
    assert accounts.created_since("2026-03-01T10:00:00.000Z") == 6


def test_users_of_an_older_folder_are_counted_once(make_wm):
    """A folder whose users were stored before the counters has them counted at its first start,
    and counted again at no later one."""
    wm = make_wm()
    for n in range(5):
        wm.storage.insert("users", {"id": wellmate.new_id(), "username": f"old{n}",
                                    "created_at": f"2026-0{n + 1}-01T00:00:00.000Z"})
    wm.storage.delete("users_created", "counted")  # as a folder of the version before holds none
    wm.close()
    for start in range(2):
        wm = make_wm()
        assert wm.service("accounts").created_since("2026-02-01T00:00:00.000Z") == 4, start
        wm.close()


def test_stats_count_each_kind_through_the_plugin_that_keeps_it(make_wm, serve, tmp_path):
    """The admin plugin reads no other plugin's collection for its stats: accounts, chat, records
    and reminders each count their own (before, admin counted users, sessions, records and
    reminders in their collections by name)."""
    from test_hooks import use_plugin

    use_plugin(tmp_path, "counting_storage")
    served = serve(make_wm({"storage": {"backend": "counting"}}))
    client, storage = served.client, served.wm.storage
    admin = make_admin(served)
    alice = client.register("alice")["access_token"]
    assert client.post("/api/v1/health/mental/chat", {"text": "hello"}, token=alice).status == 200
    assert client.post("/api/v1/health/data", {"type": "weight", "value": 70}, token=alice).status == 201
    r = client.post("/api/v1/reminders", {"title": "water", "rule": {"kind": "daily", "times": ["09:00"]}}, token=alice)
    assert r.status == 201, r.text
    storage.readers.clear()
    r = client.get("/api/v1/admin/stats", token=admin["access_token"])
    assert r.status == 200, r.text
    counted = {kind: r.json["storage"].get(kind) for kind in ("users", "sessions", "records", "reminders", "messages")}
    assert counted == {"users": 2, "sessions": 1, "records": 1, "reminders": 1, "messages": 2}
    owners = {name: served.wm.collections[name].owner for name in served.wm.collections}
    assert {(plugin, name) for plugin, name in storage.readers if owners[name] != f"plugin {plugin}"} == set()
