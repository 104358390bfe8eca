"""Security over HTTP: tokens that must be refused, refresh-token reuse, login throttling (also
behind a reverse proxy), and every resource of another user answering 404.

Forged, expired, wrong-type and alg:none tokens are in test_accounts.py; admin routes refusing a
user token in test_admin.py; deletion and password changes revoking tokens in test_privacy.py.
"""

import hashlib
import itertools
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pytest
import yaml

from conftest import Client, ServerProcess, assert_error, free_port, merge, shipped_config
from wellmate import ConfigError
from wellmate_plugins.auth import LoginThrottle


def login(client, username, password, headers=None, **extra):
    return client.post("/api/v1/auth/login", {"username": username, "password": password, **extra}, headers=headers)


def serve_process(tmp_path, overrides=None) -> ServerProcess:
    """`wellmate.py` in a child process on tmp_path's data folder (again on the same folder and
    port after a stop)."""
    path = tmp_path / "config.yaml"
    if not path.exists():
        config = merge(shipped_config(tmp_path), {"server": {"host": "127.0.0.1", "port": free_port()}, **(overrides or {})})
        path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return ServerProcess(path, yaml.safe_load(path.read_text(encoding="utf-8"))["server"]["port"])


def profile_status(client, pair) -> int:
    return client.get("/api/v1/users/profile", token=pair["access_token"]).status


# -- tokens ------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # HS512 wants a longer key
def test_more_tokens_that_are_refused(make_wm, serve):
    served = serve(make_wm())
    client = served.client
    pair = client.register("alice")
    user_id, secret = pair["user"]["uuid"], served.wm.service("auth").tokens.secret
    now = int(time.time())
    claims = {"sub": user_id, "typ": "access", "iat": now, "exp": now + 600}

    def unsigned(alg):
        header = jwt.utils.base64url_encode(('{"alg":"%s","typ":"JWT"}' % alg).encode()).decode()
        body = jwt.utils.base64url_encode(jwt.api_jws.json.dumps(claims).encode()).decode()
        return f"{header}.{body}."

    refused = {
        "HS512 with the right secret": jwt.encode(claims, secret, algorithm="HS512"),
        "no iat": jwt.encode({k: v for k, v in claims.items() if k != "iat"}, secret, algorithm="HS256"),
        "no sub": jwt.encode({k: v for k, v in claims.items() if k != "sub"}, secret, algorithm="HS256"),
        "no typ": jwt.encode({k: v for k, v in claims.items() if k != "typ"}, secret, algorithm="HS256"),
        "issued in the future": jwt.encode({**claims, "iat": now + 3600, "exp": now + 7200}, secret, algorithm="HS256"),
        "another user's id, forged": jwt.encode({**claims, "sub": "someone-else"}, secret + "x", algorithm="HS256"),
        "an unknown user": jwt.encode({**claims, "sub": "no-such-user"}, secret, algorithm="HS256"),
        "alg None": unsigned("None"),
        "alg NONE": unsigned("NONE"),
        "a refresh token as access token": pair["refresh_token"],
        "the signature cut off": pair["access_token"].rsplit(".", 1)[0] + ".",
    }
    for what, token in refused.items():
        r = client.get("/api/v1/users/profile", token=token)
        assert r.status == 401 and r.json["error"]["code"] in ("invalid_token", "token_expired"), (what, r.text)
    assert client.get("/api/v1/users/profile", token=pair["access_token"]).status == 200


def test_ending_a_login_ends_its_access_tokens_also_after_a_restart(tmp_path):
    server = serve_process(tmp_path)
    client = Client(server.port)
    try:
        first = client.register("alice")
        other = login(client, "alice", "correct horse").json  # another login of the same user
        rotated = client.post("/api/v1/auth/refresh", {"refresh_token": first["refresh_token"]}).json
        assert profile_status(client, first) == profile_status(client, rotated) == 200

        # The replaced refresh token comes back: a thief or a replay. That login ends, all of it.
        assert_error(client.post("/api/v1/auth/refresh", {"refresh_token": first["refresh_token"]}),
                     401, "invalid_refresh_token")
        for pair in (first, rotated):
            assert_error(client.get("/api/v1/users/profile", token=pair["access_token"]), 401, "invalid_token")
        assert profile_status(client, other) == 200

        # Logout ends its login's access token too, and only that login's.
        assert client.post("/api/v1/auth/logout", {"refresh_token": other["refresh_token"]}).status == 204
        assert_error(client.get("/api/v1/users/profile", token=other["access_token"]), 401, "invalid_token")
        third = login(client, "alice", "correct horse").json
        assert profile_status(client, third) == 200
    finally:
        assert server.stop()[0] == 0

    server = serve_process(tmp_path)  # the ended logins stay ended
    try:
        assert [profile_status(client, pair) for pair in (first, rotated, other, third)] == [401, 401, 401, 200]
    finally:
        assert server.stop()[0] == 0


def test_racing_uses_of_one_refresh_token_have_one_winner(client):
    pair = client.register("alice")
    results = [None] * 8

    def use(n):
        results[n] = client.post("/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]}).status

    threads = [threading.Thread(target=use, args=(n,)) for n in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # At most one winner. A reuse ends the whole login (it may be a thief's), which can come
    # before the winner's new pair is stored: then nobody wins, and the user logs in again.
    assert results.count(200) <= 1 and set(results) <= {200, 401}
    assert client.post("/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]}).status == 401


# -- login throttling ----------------------------------------------------------------------------

def throttled(make_wm, serve, **throttle):
    return serve(make_wm({"auth": {"throttle": throttle}})).client


def without_seconds(r):
    return re.sub(r"\d+", "N", r.text)


def test_repeated_failures_for_a_username_get_429(make_wm, serve):
    client = throttled(make_wm, serve, max_failures=3, window_seconds=600)
    client.register("alice")
    for _ in range(3):
        assert_error(login(client, "alice", "wrong password"), 401, "invalid_credentials")
    r = login(client, "alice", "correct horse")  # even the right password, once throttled
    assert_error(r, 429, "too_many_attempts")
    assert 0 < int(r.headers["Retry-After"]) <= 600
    assert_error(login(client, "ALICE", "correct horse"), 429, "too_many_attempts")  # names are case-blind
    assert login(client, "bob", "wrong password").status == 401  # another name is not blocked

    # An unknown username answers exactly like a real one, before and after the limit.
    client.register("carol")
    for _ in range(3):
        unknown = login(client, "nobody", "wrong password")
        wrong = login(client, "carol", "wrong password")
        assert unknown.status == wrong.status == 401 and unknown.json == wrong.json
    unknown, real = login(client, "nobody", "x"), login(client, "carol", "x")
    assert unknown.status == real.status == 429 and without_seconds(unknown) == without_seconds(real)
    assert set(unknown.headers) == set(real.headers)


def test_a_success_starts_the_count_again(make_wm, serve):
    client = throttled(make_wm, serve, max_failures=3)
    client.register("alice")
    for _ in range(2):
        assert login(client, "alice", "wrong password").status == 401
    assert login(client, "alice", "correct horse").status == 200
    for _ in range(2):
        assert login(client, "alice", "wrong password").status == 401
    assert login(client, "alice", "correct horse").status == 200


def test_repeated_failures_from_an_address_get_429(make_wm, serve):
    client = throttled(make_wm, serve, max_failures=100, max_failures_per_address=4)
    client.register("alice")
    for n in range(4):
        assert login(client, f"guess{n}", "wrong password").status == 401
    assert_error(login(client, "alice", "correct horse"), 429, "too_many_attempts")


def test_forged_forwarded_for_does_not_escape_the_address_limit(make_wm, serve):
    # No trusted proxy (the default): X-Forwarded-For from a client is dropped, not believed.
    client = throttled(make_wm, serve, max_failures=100, max_failures_per_address=3)
    for n in range(3):
        assert login(client, f"u{n}", "wrong password", {"X-Forwarded-For": f"198.51.100.{n}"}).status == 401
    r = login(client, "u9", "wrong password", {"X-Forwarded-For": "198.51.100.99"})
    assert_error(r, 429, "too_many_attempts")


def test_behind_a_trusted_proxy_the_forwarded_client_is_throttled(make_wm, serve):
    wm = make_wm({"server": {"trusted_proxy": "127.0.0.1"},
                  "auth": {"throttle": {"max_failures": 100, "max_failures_per_address": 3}}})
    client = serve(wm).client
    one, two = {"X-Forwarded-For": "203.0.113.5"}, {"X-Forwarded-For": "203.0.113.6"}
    for n in range(3):
        assert login(client, f"u{n}", "wrong password", one).status == 401
    assert_error(login(client, "u9", "wrong password", one), 429, "too_many_attempts")
    assert login(client, "u9", "wrong password", two).status == 401  # another client behind the proxy
    # The proxy appends what a client forged; only the address the proxy saw counts.
    assert_error(login(client, "u9", "wrong password", {"X-Forwarded-For": "203.0.113.6, 203.0.113.5"}),
                 429, "too_many_attempts")


def test_proxy_settings_are_checked(make_wm):
    with pytest.raises(ConfigError, match="server.trusted_proxy_headers: unknown x-real-ip"):
        make_wm({"server": {"trusted_proxy": "127.0.0.1", "trusted_proxy_headers": ["x-real-ip"]}})
    with pytest.raises(ConfigError, match="'forwarded' cannot be combined"):
        make_wm({"server": {"trusted_proxy": "127.0.0.1", "trusted_proxy_headers": ["forwarded", "x-forwarded-for"]}})
    with pytest.raises(ConfigError, match="auth.throttle.max_failures: must be an integer 1-1000"):
        make_wm({"auth": {"throttle": {"max_failures": 0}}})
    wm = make_wm({"auth": {"throttle": {"max_failure": 3}}})
    assert any("auth.throttle.max_failure: unknown key; did you mean 'max_failures'?" in w for w in wm.warnings)
    options = make_wm().waitress_options  # no proxy settings: the guard clears the headers
    assert options["clear_untrusted_proxy_headers"] is False and "trusted_proxy" not in options


ECHO_PLUGIN = '''
import bottle
from wellmate import hookimpl

@hookimpl
def routes(app, wm):
    @app.get("/api/v1/test/forwarded")
    def forwarded():
        return {"x_forwarded_for": bottle.request.environ.get("HTTP_X_FORWARDED_FOR")}
'''


def test_a_proxy_nobody_configured_is_reported_once_and_its_headers_dropped(make_wm, serve, tmp_path, caplog):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "echo.py").write_text(ECHO_PLUGIN)
    client = serve(make_wm()).client
    assert client.get("/api/v1/test/forwarded").json == {"x_forwarded_for": None}
    assert "trusted_proxy" not in caplog.text  # no proxy, no word
    for n in range(3):  # Caddy on this machine, say, with server.trusted_proxy left empty
        r = client.get("/api/v1/test/forwarded", headers={"X-Forwarded-For": f"203.0.113.{n}"})
        assert r.json == {"x_forwarded_for": None}  # dropped: nobody may claim another address
    told = [r.getMessage() for r in caplog.records if "X-Forwarded-For" in r.getMessage()]
    assert len(told) == 1 and 'set server.trusted_proxy: "127.0.0.1"' in told[0]
    # Trusted, the proxy's header is believed and nothing is said.
    caplog.clear()
    trusted = serve(make_wm({"server": {"trusted_proxy": "127.0.0.1"}})).client
    assert trusted.get("/api/v1/test/forwarded", headers={"X-Forwarded-For": "203.0.113.9"}).status == 200
    assert "trusted_proxy" not in caplog.text


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_throttle_window_ends():
    clock = Clock()
    throttle = LoginThrottle(max_failures=2, max_failures_per_address=10, window_seconds=60, clock=clock)
    throttle.failed("alice", "10.0.0.1")
    clock.now += 30
    throttle.failed("alice", "10.0.0.1")
    assert throttle.retry_after("alice", "10.0.0.2") == 30  # counted from the first failure
    assert throttle.retry_after("bob", "10.0.0.1") == 0
    clock.now += 30
    assert throttle.retry_after("alice") == 0
    throttle.failed("alice")
    assert throttle.retry_after("alice") == 0  # a new window, one failure in it


def test_throttle_memory_is_bounded():
    clock = Clock()
    throttle = LoginThrottle(max_failures=1, max_failures_per_address=1, window_seconds=60, max_tracked=100, clock=clock)
    for n in range(1000):
        clock.now += 0.01
        throttle.failed(f"user{n}", f"10.0.{n // 250}.{n % 250}")
    assert len(throttle._failures) == 100
    assert throttle.retry_after("user999") > 0  # the newest are kept
    assert throttle.retry_after("user0") == 0  # the oldest went first


def test_an_attacker_cannot_lock_the_owner_out(make_wm, serve):
    wm = make_wm({"server": {"trusted_proxy": "127.0.0.1"},
                  "auth": {"throttle": {"max_failures": 3, "max_failures_per_address": 100}}})
    client = serve(wm).client
    owner, attacker = {"X-Forwarded-For": "198.51.100.7"}, {"X-Forwarded-For": "203.0.113.66"}
    registered = client.post("/api/v1/auth/register", {"username": "alice", "password": "correct horse"}, headers=owner)
    device = registered.json["device_token"]
    mallory_device = client.register("mallory", "mallory's own")["device_token"]

    for n in range(3):
        assert_error(login(client, "alice", f"guess {n}", attacker), 401, "invalid_credentials")
    for password in ("guess 4", "correct horse"):  # unknown clients are locked out, right password or not
        assert_error(login(client, "alice", password, attacker), 429, "too_many_attempts")
    assert_error(login(client, "alice", "correct horse", owner), 429, "too_many_attempts")  # without the token too

    # The owner's device token passes the lock, from anywhere, with the right password.
    r = login(client, "alice", "correct horse", owner, device_token=device)
    assert r.status == 200, r.text
    assert login(client, "alice", "correct horse", attacker, device_token=r.json["device_token"]).status == 200

    # The attacker still gets 429: with no token, a made-up one, or one of another account.
    for token in (None, "made-up", mallory_device, device.rsplit(".", 1)[0] + ".forged"):
        assert_error(login(client, "alice", "guess 5", attacker, device_token=token), 429, "too_many_attempts")
    # Even a stolen device token is good for max_failures guesses per window, no more.
    for n in range(3):
        assert_error(login(client, "alice", f"guess {n}", attacker, device_token=device), 401, "invalid_credentials")
    assert_error(login(client, "alice", "correct horse", attacker, device_token=device), 429, "too_many_attempts")
    assert login(client, "alice", "correct horse", owner, device_token=r.json["device_token"]).status == 200


def test_failed_logins_do_not_stop_the_owner_changing_the_password(make_wm, serve):
    wm = make_wm({"auth": {"throttle": {"max_failures": 3, "max_failures_per_address": 100}}})
    client = serve(wm).client
    pair = client.register("alice", "correct horse")
    for n in range(3):
        assert_error(login(client, "alice", f"guess {n}"), 401, "invalid_credentials")
    assert_error(login(client, "alice", "correct horse"), 429, "too_many_attempts")  # the name is locked

    # The owner, logged in, changes the password: their login's checks are counted apart.
    r = client.put("/api/v1/users/password", {"current_password": "correct horse", "password": "new horse!"},
                   token=pair["access_token"])
    assert r.status == 200, r.text
    # Guessing with one login's token stays bounded: max_failures wrong passwords, then 429, right or not.
    token = r.json["access_token"]
    for n in range(3):
        assert_error(client.put("/api/v1/users/password", {"current_password": f"guess {n}", "password": "mine now!"},
                                token=token), 403, "wrong_password")
    assert_error(client.delete("/api/v1/users/me", {"password": "new horse!"}, token=token), 429, "too_many_attempts")
    refreshed = client.post("/api/v1/auth/refresh", {"refresh_token": r.json["refresh_token"]}).json
    assert_error(client.put("/api/v1/users/password", {"current_password": "new horse!", "password": "mine now!"},
                            token=refreshed["access_token"]), 429, "too_many_attempts")  # a refresh is the same login


# -- passwords ----------------------------------------------------------------------------------

def test_older_cheaper_hashes_still_verify_and_are_rehashed_at_login(make_wm, serve, production_password_cost):
    served = serve(make_wm())
    client, accounts = served.client, served.wm.service("accounts")
    user_id = client.register("alice")["user"]["uuid"]
    assert accounts.get(user_id)["password_hash"].startswith("scrypt$16384$8$5$")  # OWASP: N=2^14 wants p=5
    salt = b"s" * 16
    old = hashlib.scrypt(b"old password", salt=salt, n=2**14, r=8, p=1, maxmem=64 * 1024 * 1024, dklen=32)
    accounts.update(user_id, {"password_hash": f"scrypt$16384$8$1${salt.hex()}${old.hex()}"})

    assert_error(login(client, "alice", "wrong password"), 401, "invalid_credentials")
    assert accounts.get(user_id)["password_hash"].startswith("scrypt$16384$8$1$")
    assert login(client, "alice", "old password").status == 200
    assert accounts.get(user_id)["password_hash"].startswith("scrypt$16384$8$5$")
    assert login(client, "alice", "old password").status == 200


def test_password_requests_beyond_the_hashing_queue_are_refused_at_once(make_wm, serve, production_password_cost):
    """Hashes run two at a time; a request waiting for its turn holds a server thread, so beyond a
    few waiting, register and login answer 503 server_busy at once, storing nothing, and the
    other requests (a health probe) still find a thread."""
    served = serve(make_wm())
    client = served.client
    client.register("alice", "correct horse")
    order = itertools.count()  # the order things happened in, not their times
    busy, probed, answers = threading.Event(), threading.Event(), []

    def hammer(worker: int):
        for n in range(10):
            if probed.is_set():  # what is checked below has happened: the rest would only take time
                break
            name = f"user{worker}x{n}"
            start = next(order)
            if worker % 2:
                r = client.post("/api/v1/auth/register", {"username": name, "password": "correct horse"})
            else:
                r = login(client, "alice", "correct horse")
            answers.append((start, next(order), name if worker % 2 else None, r))
            if r.status == 503:
                busy.set()

    workers = [threading.Thread(target=hammer, args=(worker,)) for worker in range(12)]
    for worker in workers:
        worker.start()
    while not busy.wait(0.05) and any(worker.is_alive() for worker in workers):
        pass
    probe_start = next(order)
    health = client.get("/api/v1/test/health")
    probe_end = next(order)
    probed.set()
    for worker in workers:
        worker.join()

    assert busy.is_set(), sorted({r.status for *_, r in answers})
    assert health.status == 200, health.text
    assert {r.status for *_, r in answers} <= {200, 201, 503}, [r.text for *_, r in answers if r.status >= 500]
    for _, _, name, r in answers:
        if r.status == 503:
            assert_error(r, 503, "server_busy")
            assert int(r.headers["Retry-After"]) >= 1
            if name:
                assert served.wm.service("accounts").find_by_username(name) is None  # refused before it was stored
    # The probe was answered while a password request sent before it was still hashing or queued.
    assert any(start < probe_start and end > probe_end and r.status in (200, 201) for start, end, _, r in answers)


def login_when_served(client, username, password):
    """A login that, like a client should, tries again after a 503's Retry-After."""
    while True:
        r = login(client, username, password)
        if r.status != 503:
            return r
        time.sleep(int(r.headers["Retry-After"]))


def memory_mb(pid: int) -> dict:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: int(rest.split()[0]) / 1024 for key, _, rest in (line.partition(":") for line in status)
            if key in ("VmRSS", "VmHWM")}


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's memory from /proc")
def test_logins_from_many_threads_leave_the_memory_bounded(tmp_path):
    # Measured in bench/memory: 32 logins from 16 threads took RSS from 37 to ~300 MB before.
    server = serve_process(tmp_path)
    client = Client(server.port)
    try:
        client.register("alice")
        before = memory_mb(server.proc.pid)
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(lambda n: login_when_served(client, "alice", "correct horse").status, range(32)))
        assert statuses == [200] * 32
        after = memory_mb(server.proc.pid)
        assert after["VmHWM"] - before["VmRSS"] < 80, (before, after)  # at most two 16 MiB hashes at once
        assert after["VmRSS"] - before["VmRSS"] < 30, (before, after)  # and their buffers given back
    finally:
        assert server.stop()[0] == 0


# -- another user's things are 404 -------------------------------------------------------------

@pytest.fixture
def two_users(client):
    return client, client.register("victim"), client.register("mallory")


def test_another_users_session_and_messages_are_404(two_users):
    client, victim, mallory = two_users
    mine = victim["access_token"]
    chat = client.post("/api/v1/health/mental/chat", {"text": "secret worries"}, token=mine).json
    session_id = chat["session_id"]
    theirs = mallory["access_token"]
    for r in [client.get(f"/api/v1/health/sessions/{session_id}", token=theirs),
              client.delete(f"/api/v1/health/sessions/{session_id}", token=theirs),
              client.post("/api/v1/health/mental/chat", {"text": "hi", "session_id": session_id}, token=theirs),
              client.post("/api/v1/health/mental/chat/stream", {"text": "hi", "session_id": session_id}, token=theirs)]:
        assert_error(r, 404, "session_not_found")
    missing = client.get("/api/v1/health/sessions/no-such-session", token=theirs)
    assert missing.json["error"]["code"] == "session_not_found"  # the same answer as for a missing one
    assert client.get("/api/v1/health/sessions", token=theirs).json["items"] == []
    export = client.get("/api/v1/users/export", token=theirs).json
    assert export["sessions"] == [] and "secret worries" not in str(export)
    # Nothing was added to or removed from the victim's session.
    r = client.get(f"/api/v1/health/sessions/{session_id}", token=mine)
    assert r.status == 200 and r.json["message_count"] == 2


def test_another_users_health_records_are_404(two_users):
    client, victim, mallory = two_users
    r = client.post("/api/v1/health/data", {"type": "weight", "value": 70.5}, token=victim["access_token"])
    assert r.status == 201, r.text
    record_id = r.json["id"]
    theirs = mallory["access_token"]
    get = client.get(f"/api/v1/health/data/{record_id}", token=theirs)
    assert get.status == 404 and get.json["error"]["code"] != "not_found", get.text  # the route exists
    assert client.delete(f"/api/v1/health/data/{record_id}", token=theirs).status == 404
    assert client.get("/api/v1/health/data", token=theirs).json["items"] == []
    assert record_id not in client.get("/api/v1/health/data/stats", token=theirs).text
    assert record_id not in client.get("/api/v1/users/export", token=theirs).text
    # Still the victim's.
    assert [item["id"] for item in client.get("/api/v1/health/data", token=victim["access_token"]).json["items"]] == [record_id]


def test_another_users_reminders_are_404(two_users):
    client, victim, mallory = two_users
    mine, theirs = victim["access_token"], mallory["access_token"]
    r = client.post("/api/v1/reminders", {"title": "喝水", "rule": {"kind": "daily", "times": ["09:00"]},
                                          "timezone": "Asia/Shanghai"}, token=mine)
    assert r.status == 201, r.text
    reminder_id = r.json["id"]
    for r in [client.get(f"/api/v1/reminders/{reminder_id}", token=theirs),
              client.put(f"/api/v1/reminders/{reminder_id}", {"title": "hijacked"}, token=theirs),
              client.delete(f"/api/v1/reminders/{reminder_id}", token=theirs),
              client.get(f"/api/v1/reminders/{reminder_id}/deliveries", token=theirs)]:
        assert r.status == 404, r.text
    assert client.get("/api/v1/reminders", token=theirs).json["items"] == []
    assert reminder_id not in client.get("/api/v1/users/export", token=theirs).text
    r = client.get(f"/api/v1/reminders/{reminder_id}", token=mine)
    assert r.status == 200 and r.json["title"] == "喝水"
