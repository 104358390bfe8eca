"""The server layer over real sockets: connection limits and deadlines (slow, idle and many
connections), stopping on SIGTERM under traffic, and which errors are waitress's plain text."""

import http.client
import json
import select
import socket
import threading
import time

import pytest

from conftest import Client, ServerProcess, free_port
from fakes.openai_server import FakeOpenAI
from test_chat import parse_sse
from test_chat_upstream import upstream_config
from test_core import write_config
from test_http import CRASH_PLUGIN

HEALTH = b"GET /api/v1/test/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"


def connect(port, source="127.0.0.2", timeout=10.0):
    """A socket to the server from ``source``: every 127.x.y.z address is this machine."""
    return socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))


def closed_by_server(sockets: list, timeout: float, expected: int | None = None) -> list:
    """Those of ``sockets`` that the server closes within ``timeout`` seconds (sending nothing).
    With ``expected``, stop looking half a second after that many are closed: a roomy timeout
    then costs nothing on a quick machine and saves a busy one from a false failure."""
    closed, deadline = [], time.monotonic() + timeout
    while len(closed) < len(sockets) and time.monotonic() < deadline:
        if expected is not None and len(closed) >= expected:
            deadline = min(deadline, time.monotonic() + 0.5)
            expected = None
        readable, _, _ = select.select([s for s in sockets if s not in closed], [], [], deadline - time.monotonic())
        for sock in readable:
            try:
                data = sock.recv(1)
            except ConnectionResetError:
                data = b""
            assert data == b"", data
            closed.append(sock)
    return closed


def raw_response(port, data: bytes) -> tuple[int, str, bytes]:
    """Send ``data`` on a fresh connection: (status, Content-Type, body) of what comes back."""
    with connect(port, "127.0.0.1") as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock, method="HEAD" if data.startswith(b"HEAD ") else None)
        response.begin()
        return response.status, response.getheader("Content-Type", ""), response.read()


# -- point 1: slow, idle and many connections ----------------------------------------------------


def test_slow_senders_from_one_address_do_not_lock_out_other_clients(make_wm, serve):
    served = serve(make_wm())  # shipped limits: connections_per_address 64, connection_limit 500
    slow = []
    try:
        for _ in range(100):  # waitress's own limit was 100 connections: everyone else waited
            sock = connect(served.port)
            sock.sendall(HEALTH)  # and never the blank line that ends the headers
            slow.append(sock)
        assert served.client.get("/api/v1/test/health").status == 200
        assert len(closed_by_server(slow, 15, 100 - 64)) == 100 - 64  # those over connections_per_address, at once
    finally:
        for sock in slow:
            sock.close()


def test_the_trusted_proxy_may_open_more_than_connections_per_address(make_wm, serve):
    served = serve(make_wm({"server": {"trusted_proxy": "127.0.0.2", "connections_per_address": 10}}))
    held = [connect(served.port) for _ in range(20)]
    try:
        for sock in held:
            sock.sendall(HEALTH)
        assert not closed_by_server(held, 1)
        others = [connect(served.port, "127.0.0.3") for _ in range(12)]
        assert len(closed_by_server(others, 15, 2)) == 2
        for sock in others:
            sock.close()
    finally:
        for sock in held:
            sock.close()


def test_the_addresses_told_of_going_over_the_cap_are_forgotten(make_wm, serve):
    # One entry per address that ever went over connections_per_address, never dropped.
    served = serve(make_wm({"server": {"connections_per_address": 1}}))
    served.server.told_seconds = 0  # forgotten at once (60 s: the log's once a minute per address)
    for address in ("127.0.0.2", "127.0.0.3"):
        held = [connect(served.port, address) for _ in range(2)]
        try:
            for sock in held:
                sock.sendall(HEALTH)
            assert len(closed_by_server(held, 15, 1)) == 1
        finally:
            for sock in held:
                sock.close()
    assert list(served.server._told) == ["127.0.0.3"]


def test_a_request_that_trickles_in_gets_408_after_request_timeout(make_wm, serve):
    served = serve(make_wm({"server": {"request_timeout": 1}}))
    with connect(served.port) as sock:
        sock.sendall(HEALTH)
        sock.settimeout(0.25)
        received = b""
        for _ in range(80):  # one header byte every 0.25 s: never silent, never finished
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                sock.sendall(b"X-Slow: a\r\n"[:1])
                continue
            received += chunk
            if not chunk:
                break
    status_line, _, rest = received.partition(b"\r\n")
    assert status_line.endswith(b"408 Request Timeout"), received
    head, _, body = rest.partition(b"\r\n\r\n")
    assert b"Content-Type: application/json" in head and b"X-Request-Id: " in head
    assert json.loads(body)["error"] == {"code": "request_timeout", "message": "The request was not received in full "
                                         "within 1 s (server.request_timeout)."}


def test_an_idle_kept_alive_connection_is_closed_after_channel_timeout(make_wm, serve):
    served = serve(make_wm({"server": {"channel_timeout": 1}}))
    with connect(served.port, "127.0.0.1") as sock:
        sock.sendall(HEALTH + b"\r\n")
        response = http.client.HTTPResponse(sock)
        response.begin()
        response.read()
        assert response.status == 200 and not response.will_close
        assert closed_by_server([sock], 15)  # waitress's default would keep it 120 s


# -- point 2: SIGTERM under traffic ----------------------------------------------------------------


def traffic(port, stop: threading.Event, outcomes: list):
    """GET /test/health in a loop until ``stop``, a fresh connection each: what came back."""
    while not stop.is_set():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", "/api/v1/test/health")
            response = conn.getresponse()
            outcomes.append((response.status, json.loads(response.read())["status"]))
        except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
            outcomes.append("refused")  # not taken in: the listening socket is closed (or closing)
        except Exception as e:  # a cut response (IncompleteRead), a timeout: what must not happen
            outcomes.append(repr(e))
        finally:
            conn.close()


def test_sigterm_under_traffic_stops_the_server_every_time(tmp_path):
    with FakeOpenAI(reply="慢慢来，先喝口水。", mode="slow_first_token", first_token_delay=0.5) as model:
        for run in range(10):
            port = free_port()
            # timeout=30: the turns must reach the model and come back from it, also on a loaded machine
            # (with 2 s, one in a suite run under load fell back to the offline companion).
            config = write_config(tmp_path, {**upstream_config(model.url, timeout=30), "server": {
                "host": "127.0.0.1", "port": port, "shutdown_seconds": 5}, "storage": {"path": str(tmp_path / f"data{run}")}})
            server = ServerProcess(config, port)
            client = Client(port)
            token = client.register()["access_token"]
            stop, outcomes, replies = threading.Event(), [], {}
            asked = len(model.requests)
            workers = [threading.Thread(target=traffic, args=(port, stop, outcomes)) for _ in range(3)]
            workers += [threading.Thread(target=lambda path=path: replies.__setitem__(path, client.post(
                f"/api/v1/health/physical/{path}", {"text": "今天有点累"}, token=token))) for path in ("chat", "chat/stream")]
            for worker in workers:
                worker.start()
            deadline = time.monotonic() + 60  # a bound for a broken build, not a speed check
            while len(model.requests) < asked + 2:  # both turns are waiting for the model
                if time.monotonic() > deadline:
                    stop.set()
                    server.stop(timeout=20)
                    pytest.fail(f"run {run}: the two turns never reached the model: {replies}")
                threading.Event().wait(0.01)
            status, output = server.stop(timeout=20)  # SIGTERM
            stop.set()
            for worker in workers:
                worker.join()
            assert status == 0 and "stopped" in output and "uncaptured" not in output, (run, output)
            assert replies["chat"].status == 200 and replies["chat"].json["content"] == "慢慢来，先喝口水。"
            assert replies["chat/stream"].status == 200
            events = parse_sse(replies["chat/stream"].text)
            assert events[-1][0] == "done", events
            assert outcomes and set(outcomes) <= {(200, "ok"), "refused"}, outcomes


# -- point 10: which errors come from the server layer ------------------------------------------

HOST = b"Host: 127.0.0.1\r\n"
# What waitress refuses itself, before the app runs (the status, the error code, what the message
# names): in the API's error shape all the same (wellmate.JsonErrorTask), and docs/api.md lists each status.
SERVER_LAYER = [
    (b"GARBAGE\r\n\r\n", 400, "bad_request", "Start line is invalid"),
    (b"POST /api/v1/auth/login HTTP/1.1\r\n" + HOST + b"Content-Length: abc\r\n\r\n", 400, "bad_request",
     "Content-Length is invalid"),
    (b"POST /api/v1/auth/login HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400,
     "bad_request", "Invalid chunk size"),
    (b"GET /api/v1/test/health HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * (256 * 1024) + b"\r\n\r\n", 431,
     "headers_too_large", "exceeds max_header"),
    (b"POST /api/v1/auth/login HTTP/1.1\r\n" + HOST + b"Content-Length: 70000000\r\n\r\n", 413, "body_too_large",
     "exceeds max_body of 67108864"),
    (b"POST /api/v1/auth/login HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip\r\n\r\n", 501, "not_implemented",
     "Content-Length, or chunked"),
    # urllib's ValueError: waitress logged an "uncaptured python exception" and closed with no answer.
    (b"GET http://[::1/x HTTP/1.1\r\n" + HOST + b"\r\n", 400, "bad_request", "Bad URI (Invalid IPv6 URL)"),
]


def raw_exchange(port, data: bytes) -> http.client.HTTPResponse:
    """Send ``data`` on a fresh connection; the answer, read."""
    with connect(port, "127.0.0.1") as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        response.body = response.read()
        return response


def test_server_layer_errors_are_json_with_a_request_id_and_the_api_docs_list_them(make_wm, serve):
    from conftest import ROOT

    served = serve(make_wm())
    api_docs = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    server_layer = api_docs[api_docs.index("**Errors from the server layer.**"):][:1500]
    ids = set()
    for data, status, code, detail in SERVER_LAYER:
        response = raw_exchange(served.port, data)
        assert (response.status, response.getheader("Content-Type")) == (status, "application/json"), (
            data[:60], response.status, response.body)
        error = json.loads(response.body)["error"]
        assert error["code"] == code and detail in error["message"], (data[:60], error)
        assert response.getheader("Connection") == "close"
        ids.add(response.getheader("X-Request-Id"))
        assert f"{status} " in server_layer, status
    assert len(ids) == len(SERVER_LAYER) and all(len(rid) == 32 for rid in ids)
    assert "408 " in server_layer  # server.request_timeout's answer, tested above
    # A client's own request id is kept, as on every other answer.
    response = raw_exchange(served.port, SERVER_LAYER[4][0].replace(HOST, HOST + b"X-Request-Id: caddy-7f3a:19\r\n"))
    assert (response.status, response.getheader("X-Request-Id")) == (413, "caddy-7f3a:19")


def test_a_url_with_raw_utf8_is_read_as_a_browser_would_send_it(tmp_path, make_wm, serve):
    """curl sends `?q=惊恐发作` as the bytes typed; a browser sends them %-encoded. waitress answered
    the first with a plain-text 400 Bad URI; both are now the same search."""
    import shutil
    from urllib.parse import quote

    from conftest import ROOT

    shutil.copytree(ROOT / "library", tmp_path / "library")
    served = serve(make_wm())
    token = served.client.register()["access_token"]
    auth = f"Authorization: Bearer {token}\r\n".encode()

    def get(target: bytes) -> http.client.HTTPResponse:
        return raw_exchange(served.port, b"GET " + target + b" HTTP/1.1\r\n" + HOST + auth + b"\r\n")

    raw, encoded = get("/api/v1/library?q=惊恐发作".encode()), get(b"/api/v1/library?q=" + quote("惊恐发作").encode())
    assert raw.status == encoded.status == 200, raw.body
    assert json.loads(raw.body)["items"] and json.loads(raw.body) == json.loads(encoded.body)
    assert json.loads(raw.body)["items"][0]["id"] == "anxiety-self-help"
    # In the path too; and bytes that are not UTF-8 are what their %XX is: the app's JSON 404.
    missing = get("/api/v1/不存在".encode())
    assert (missing.status, missing.getheader("Content-Type")) == (404, "application/json"), missing.body
    assert "GET /api/v1/不存在." in json.loads(missing.body)["error"]["message"]
    for target in (b"/api/v1/library/\xff\xfe", b"/api/v1/library?q=\xff"):
        answer = get(target)
        assert answer.getheader("Content-Type") == "application/json" and answer.status < 500, (target, answer.body)


def test_errors_the_app_reaches_are_json(make_wm, serve):
    served = serve(make_wm())
    for data, status, sent in [
        (b"GET /api/v1/nothing HTTP/1.1\r\n", 404, b""),
        (b"GET /api/v1/%ff%fe HTTP/1.1\r\n", 404, b""),  # not UTF-8 once decoded
        (b"OPTIONS /api/v1/test/health HTTP/1.1\r\n", 405, b""),
        (b"DELETE /api/v1/test/health HTTP/1.1\r\n", 405, b""),
        (b"POST /api/v1/auth/login HTTP/1.1\r\nContent-Length: 2000000\r\n", 413, b"x" * 2000000),  # > max_body_kb
    ]:
        got, content_type, body = raw_response(served.port, data + HOST + b"Connection: close\r\n\r\n" + sent)
        assert (got, content_type) == (status, "application/json"), (data, got, body)
        assert json.loads(body)["error"]["message"]
    got, content_type, body = raw_response(served.port, b"HEAD /api/v1/nothing HTTP/1.1\r\n" + HOST + b"\r\n")
    assert (got, content_type, body) == (404, "application/json", b"")


# -- point 19: a crash is logged once -------------------------------------------------------------

def test_a_crash_is_a_json_500_logged_once_with_method_and_path(tmp_path):
    from conftest import assert_error

    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "crash.py").write_text(CRASH_PLUGIN)
    port = free_port()
    server = ServerProcess(write_config(tmp_path, {"server": {"host": "127.0.0.1", "port": port}}), port)
    try:
        client = Client(port)
        assert_error(client.get("/api/v1/crash"), 500, "internal_error")
        r = client.get("/api/v1/nothing")
        assert_error(r, 404, "not_found")
        assert "/docs" in r.json["error"]["message"] and "README" not in r.json["error"]["message"]
    finally:
        status, output = server.stop()
    assert status == 0
    assert output.count("Traceback (most recent call last)") == 1, output
    assert "GET /api/v1/crash" in output and "RuntimeError: secret internals" in output


def test_a_stream_still_going_after_shutdown_seconds_is_closed_and_the_server_exits(tmp_path):
    with FakeOpenAI(reply="一 二 三 四 五 六", mode="stall_mid_stream", fault_after=2, stall_seconds=60) as model:
        port = free_port()
        config = write_config(tmp_path, {**upstream_config(model.url, timeout=60), "server": {
            "host": "127.0.0.1", "port": port, "shutdown_seconds": 1}})
        server = ServerProcess(config, port)
        token = Client(port).register()["access_token"]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/api/v1/health/physical/chat/stream", json.dumps({"text": "你好"}),
                     {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 200
        while b'"delta"' not in response.readline():  # the model has begun, and stalls
            pass
        status, output = server.stop(timeout=20)
        try:
            rest = response.read()
        except http.client.IncompleteRead as cut:
            rest = cut.partial
        conn.close()
    assert status == 0 and "stopped" in output, output
    assert b"event: done" not in rest  # ended by the shutdown, not finished


def test_a_stop_asked_from_another_thread_never_writes_to_a_closed_trigger(make_wm):
    """`request_stop` from a thread other than the loop's (tests, bench scripts): the loop may see
    the flag on its own 1 s wake-up and close its wake-up pipe before the caller's pull writes to
    it. Here the pull waits (up to 2 s) for the loop thread to end first: it failed with EBADF
    (a flaky teardown error in the suite), and with the fd number reused it writes into another file."""
    from conftest import Served

    served = Served(make_wm())
    trigger = served.server.trigger
    real_pull = trigger.pull_trigger

    def late_pull(*args):
        served.thread.join(2)  # the loop thread's turn comes first
        return real_pull(*args)

    trigger.pull_trigger = late_pull
    served.stop()
    assert not served.thread.is_alive()
