"""HTTP conventions of the README (The API) over a real waitress server: JSON errors everywhere, body limits."""

import socket
import textwrap

import pytest
from conftest import assert_error

CRASH_PLUGIN = textwrap.dedent('''
    from wellmate import hookimpl

    @hookimpl
    def routes(app, wm):
        @app.get("/api/v1/crash")
        def crash():
            raise RuntimeError("secret internals")
''')


def test_health_and_db(client):
    r = client.get("/api/v1/test/health")
    assert r.status == 200
    assert r.json["status"] == "ok" and r.json["storage"] == "files"
    assert r.json["uptime_s"] >= 0 and "offline" in r.json["providers"]
    r = client.get("/api/v1/test/db")
    assert r.status == 200 and r.json["ok"] is True and r.json["backend"] == "files"


def test_404_and_405_are_json(client):
    assert_error(client.get("/api/v1/nope"), 404, "not_found")
    r = client.delete("/api/v1/test/health")
    assert_error(r, 405, "method_not_allowed")
    assert "GET" in r.headers.get("Allow", "")


def test_500_is_json_and_hides_internals(make_wm, serve, tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "crash.py").write_text(CRASH_PLUGIN)
    r = serve(make_wm()).client.get("/api/v1/crash")
    assert_error(r, 500, "internal_error")
    assert "secret internals" not in r.text


@pytest.mark.parametrize("raw, code", [
    (b"{not json", "invalid_json"),
    (b"[1, 2]", "invalid_json"),
    (b"\xff\xfe", "invalid_json"),
    (b'{"username": 5, "password": "long enough"}', "invalid_field"),
    (b'{"username": "bob"}', "missing_field"),
    (b'{"username": ["bob"], "password": {}}', "invalid_field"),
])
def test_malformed_bodies_are_400(client, raw, code):
    r = client.post("/api/v1/auth/register", raw=raw, headers={"Content-Type": "application/json"})
    assert_error(r, 400, code)


def test_huge_body_is_json_413_and_nothing_stored(make_wm, serve):
    served = serve(make_wm({"server": {"max_body_kb": 4}}))
    big = {"username": "bigbody", "password": "x" * 8, "full_name": "y" * 10_000}
    assert_error(served.client.post("/api/v1/auth/register", big), 413, "body_too_large")
    # Far past the limit too (2 MB), still JSON.
    r = served.client.post("/api/v1/auth/register", raw=b"{" + b" " * 2_000_000 + b"}")
    assert_error(r, 413, "body_too_large")
    assert served.wm.service("accounts").find_by_username("bigbody") is None


def test_chunked_body_over_limit_is_413(make_wm, serve):
    served = serve(make_wm({"server": {"max_body_kb": 1}}))
    chunk = b"{" + b" " * 5000 + b"}"
    request = (b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
               + b"%x\r\n" % len(chunk) + chunk + b"\r\n0\r\n\r\n")
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as s:
        s.sendall(request)
        reply = b""
        while data := s.recv(65536):
            reply += data
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert b'"body_too_large"' in body
