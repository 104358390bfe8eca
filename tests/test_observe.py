"""Observing a running server: X-Request-Id on every response, the request log in data/logs/
(real files: what a line holds and never holds, rotation, a full disk), the admin log API paging
back through rotated files, and Prometheus metrics at /metrics read with prometheus_client's own
parser (requests, chat turns, providers, streams, reminders, storage; who may scrape)."""

import base64
import json
import logging
import os
import re
import shutil
import time

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

import wellmate
from conftest import ROOT, Client, Served, assert_error, merge, shipped_config
from fakes.openai_server import FakeOpenAI
from reminders_world import world  # noqa: F401 (the fixture a test asks for)
from test_chat import stream

MAX_KB, KEEP = 8, 3


def build(tmp, overrides=None):
    """A Wellmate from the shipped config plus overrides, with the observer test plugin."""
    (tmp / "plugins").mkdir(exist_ok=True)
    shutil.copy(ROOT / "tests" / "plugins" / "observer.py", tmp / "plugins" / "observer.py")
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(merge(shipped_config(tmp), overrides or {}), allow_unicode=True), encoding="utf-8")
    return wellmate.create_app(path)


@pytest.fixture(scope="module")
def fake():
    with FakeOpenAI(reply="多喝水，早点睡。") as server:
        yield server


@pytest.fixture(scope="module")
def app(tmp_path_factory, fake):
    """One served app for the module: a fake upstream before the offline companion, a request
    log of small files (MAX_KB, KEEP) written often, an admin and a user."""
    wm = build(tmp_path_factory.mktemp("observe"), {
        "providers": {"fake": {"plugin": "openai", "base_url": fake.url, "model": "m", "timeout": 2, "max_retries": 0}},
        "agents": {"physical": {"providers": ["fake", "offline"]}},
        "request_log": {"max_kb": MAX_KB, "keep": KEEP, "flush_seconds": 0.02},
    })
    served = Served(wm)
    client = served.client
    admin = client.register("boss", "boss password")
    wm.service("accounts").update(admin["user"]["uuid"], {"role": "admin"})
    user = client.register("alice", "alice password")
    served.admin, served.token, served.user_id = admin["access_token"], user["access_token"], user["user"]["uuid"]
    yield served
    served.stop()
    wm.close()


def log_files(wm) -> list:
    folder = wm.data_dir / "logs"
    return [folder / "requests.log"] + [folder / f"requests.log.{n}" for n in range(1, KEEP + 2)]


def logged(wm) -> list[dict]:
    """Every line of the request log files, oldest first (after the writer has caught up)."""
    wm.service("request_log").flush()
    lines = []
    for path in reversed(log_files(wm)):
        if path.exists():
            lines += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return lines


def line_of(wm, request_id: str) -> dict:
    [line] = [line for line in logged(wm) if line["id"] == request_id]
    return line


def metrics(client, **kw) -> dict:
    """{(sample name, frozenset of labels): value} of GET /metrics, parsed by prometheus_client."""
    r = client.get("/metrics", **kw)
    assert r.status == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(r.text) for sample in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


# -- request ids -------------------------------------------------------------------------------


def test_every_response_carries_a_request_id(app):
    client = app.client
    answers = [client.get("/api/v1/health/agents"),
               client.get("/api/v1/no/such/route"),
               client.delete("/api/v1/health/agents"),  # 405
               client.get("/api/v1/users/profile"),  # 401
               client.get("/api/v1/observer/crash"),  # 500
               client.post("/api/v1/health/physical/chat/stream", {"text": "膝盖疼"}, token=app.token)]
    assert [r.status for r in answers] == [200, 404, 405, 401, 500, 200]
    ids = [r.headers.get("X-Request-Id") for r in answers]
    assert all(ids) and len(set(ids)) == len(ids)
    assert answers[-1].headers["Content-Type"].startswith("text/event-stream")
    # A client's own id is kept when it looks like one; anything else is replaced, never echoed.
    assert client.get("/api/v1/health/agents", headers={"X-Request-Id": "caddy-7f3a:19"}).headers[
        "X-Request-Id"] == "caddy-7f3a:19"
    for odd in ("short", "has spaces in it", "x" * 65, "<script>alert(1)</script>"):
        given = client.get("/api/v1/health/agents", headers={"X-Request-Id": odd}).headers["X-Request-Id"]
        assert given != odd and len(given) == 32


# -- the request log ---------------------------------------------------------------------------


def test_a_log_line_says_who_asked_what_and_never_what_was_said(app):
    wm, client = app.wm, app.client
    secret = "我的秘密：血糖 13.2 mmol/L"
    answer = client.post("/api/v1/health/physical/chat", {"text": secret}, token=app.token)
    session_id = answer.json["session_id"]
    read = client.get(f"/api/v1/health/sessions/{session_id}?limit=5&token=query-string-secret", token=app.token)
    login = client.post("/api/v1/auth/login", {"username": "alice", "password": "alice password"})
    line = line_of(wm, read.headers["X-Request-Id"])
    assert set(line) == {"time", "id", "method", "route", "status", "ms", "user", "client"}
    assert line["route"] == "/api/v1/health/sessions/<session_id>" and line["method"] == "GET"
    assert (line["status"], line["user"], line["client"]) == (200, app.user_id, "127.0.0.1")
    assert line["ms"] >= 0 and line["time"].endswith("Z")
    assert line_of(wm, answer.headers["X-Request-Id"])["route"] == "/api/v1/health/<agent_name>/chat"
    text = "".join(path.read_text(encoding="utf-8") for path in log_files(wm) if path.exists())
    for never in (session_id, secret, "13.2 mmol", "query-string-secret", "alice password", app.token,
                  login.json["access_token"], login.json["refresh_token"]):
        assert never not in text


def test_an_error_is_logged_with_its_request_id(app, caplog):
    with caplog.at_level(logging.ERROR, logger="wellmate"):
        r = app.client.get("/api/v1/observer/crash")
    assert r.status == 500 and r.json["error"]["code"] == "internal_error"
    request_id = r.headers["X-Request-Id"]
    [record] = [record for record in caplog.records if "observer/crash" in record.getMessage()]
    assert f"(request {request_id})" in record.getMessage() and "the observer's bug" in record.getMessage()
    line = line_of(app.wm, request_id)
    assert (line["status"], line["route"]) == (500, "/api/v1/observer/crash")


def test_an_answer_of_the_server_layer_is_logged_and_counted_with_its_request_id(app):
    """waitress answers a body over its limit itself, before the app: still one log line, one count."""
    import socket

    before = metrics(app.client)
    with socket.create_connection(("127.0.0.1", app.port), timeout=10) as sock:
        sock.sendall(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: proxy-1:4f2a9c\r\n"
                     b"Content-Length: 70000000\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 ") and b"X-Request-Id: proxy-1:4f2a9c" in answer, answer
    line = line_of(app.wm, "proxy-1:4f2a9c")
    assert (line["method"], line["route"], line["status"], line["user"], line["client"]) == (
        "POST", None, 413, None, "127.0.0.1")
    after = metrics(app.client)
    labels = dict(method="POST", route="(none)", status="413")
    assert value(after, "wellmate_http_requests_total", **labels) == value(before, "wellmate_http_requests_total", **labels) + 1


def test_the_log_rotates_by_size_and_keeps_its_count(app):
    # ~190 bytes a line: more than KEEP + 1 files of MAX_KB. Written a line or two at a time, as on
    # a quiet server: a rotation happens when the next batch would not fit, so how full a rotated
    # file is depends on the batch after it, and a slow machine queues bigger batches.
    for _ in range(150):
        assert app.client.get("/api/v1/health/agents").status == 200
        app.wm.service("request_log").flush()
    app.wm.service("request_log").flush()
    files = [path for path in log_files(app.wm) if path.exists()]
    assert [path.name for path in files] == ["requests.log"] + [f"requests.log.{n}" for n in range(1, KEEP + 1)]
    assert all(0 < path.stat().st_size <= MAX_KB * 1024 for path in files)
    lines = [line for path in files for line in path.read_bytes().splitlines(keepends=True)]
    longest = max(len(line) for line in lines)
    assert all(path.stat().st_size > MAX_KB * 1024 - 3 * longest for path in files[1:]), "a rotated file left half empty"
    times = [line["time"] for line in logged(app.wm)]
    assert times == sorted(times) and len(times) == len(lines)


def test_a_full_disk_costs_log_lines_never_a_request(tmp_path, caplog):
    wm = build(tmp_path, {"request_log": {"flush_seconds": 0.02}})
    (wm.data_dir / "logs").mkdir()
    os.symlink("/dev/full", wm.data_dir / "logs" / "requests.log")  # every write: ENOSPC
    served = Served(wm)
    try:
        with caplog.at_level(logging.WARNING, logger="wellmate.request_log"):
            assert [served.client.get("/api/v1/health/agents").status for _ in range(20)] == [200] * 20
            wm.service("request_log").flush()
    finally:
        served.stop()
        wm.close()
    [warning] = [r.getMessage() for r in caplog.records if r.name == "wellmate.request_log"]  # once a minute
    assert "cannot write the request log" in warning and "No space left on device" in warning


# -- the admin log API -------------------------------------------------------------------------


def test_only_admins_read_the_logs(app):
    assert_error(app.client.get("/api/v1/admin/logs"), 401, "unauthorized")
    assert_error(app.client.get("/api/v1/admin/logs", token=app.token), 403, "admin_only")


def test_the_admin_pages_back_through_rotated_files(app):
    client = app.client
    for n in range(40):
        client.get("/api/v1/health/agents")
    # The 404s come last, so that the pages' own lines, which rotate the oldest file away while
    # they are read, take the agents' lines with it and not these.
    for n in range(40):
        client.get(f"/api/v1/health/sessions/missing-{n}", token=app.token)  # 404s of a matched route
    everything = list(reversed(logged(app.wm)))  # newest first, as the API answers
    assert sum(1 for path in log_files(app.wm) if path.exists()) > 1  # the pages cross files

    def pages(query: str) -> list:
        items, before = [], ""
        while True:
            r = client.get(f"/api/v1/admin/logs?limit=7{query}{before}", token=app.admin)
            assert r.status == 200, r.text
            assert len(r.json["items"]) <= 7
            items += r.json["items"]
            if r.json["next"] is None:
                return items
            before = f"&before={r.json['next']}"

    wanted = [line for line in everything if line["status"] == 404 and line["user"] == app.user_id
              and line["route"] == "/api/v1/health/sessions/<session_id>"]
    assert len(wanted) >= 40
    # The pages' own requests are logged meanwhile and rotate the oldest file away: the pages end
    # there, having skipped nothing newer.
    found = pages(f"&status=404&user={app.user_id}&path=/api/v1/health/sessions/")
    assert found == wanted[:len(found)] and len(found) >= 40
    client_errors = [line for line in everything if 400 <= line["status"] < 500]
    found = pages("&status=4xx")
    assert found == client_errors[:len(found)] and len(found) >= 40
    # A window of time: from (inclusive) to (exclusive); the newest page first.
    middle = everything[len(everything) // 2]["time"]
    newer = client.get(f"/api/v1/admin/logs?limit=500&from={middle}", token=app.admin).json["items"]
    assert newer and all(line["time"] >= middle for line in newer)
    older = client.get(f"/api/v1/admin/logs?limit=3&to={middle}", token=app.admin).json["items"]
    assert len(older) == 3 and all(line["time"] < middle for line in older)


@pytest.mark.parametrize("query, field", [("status=abc", "status"), ("status=600", "status"), ("from=yesterday", "from"),
                                          ("to=2026-11-20", "to"), ("limit=0", "limit"), ("limit=501", "limit")])
def test_a_bad_log_query_is_a_400(app, query, field):
    r = app.client.get(f"/api/v1/admin/logs?{query}", token=app.admin)
    assert_error(r, 400, "invalid_field")
    assert r.json["error"]["message"].startswith(f"{field}:")


@pytest.mark.parametrize("cursor", ["nonsense", "LTE6Mg", "OjE", "YTpi", "MTox"[:3]])
def test_a_cursor_the_api_did_not_make_is_a_400(app, cursor):
    assert_error(app.client.get(f"/api/v1/admin/logs?before={cursor}", token=app.admin), 400, "invalid_cursor")


def test_a_cursor_into_a_file_rotated_away_is_the_end(app):
    gone = base64.urlsafe_b64encode(b"1:100").decode().rstrip("=")  # inode 1: no log file's
    assert app.client.get(f"/api/v1/admin/logs?before={gone}", token=app.admin).json == {"items": [], "next": None}


# -- metrics -----------------------------------------------------------------------------------


def test_metrics_count_requests_turns_providers_streams_and_storage(app, fake):
    client = app.client
    before = metrics(client)
    reply = client.post("/api/v1/health/physical/chat", {"text": "口渴"}, token=app.token).json
    assert reply["provider"] == "fake"
    events = stream(client, "physical", {"text": "还渴", "session_id": reply["session_id"]}, app.token)
    assert events[-1][0] == "done"
    fake.mode = "500"
    try:
        assert client.post("/api/v1/health/physical/chat", {"text": "头疼"}, token=app.token).json["provider"] == "offline"
    finally:
        fake.mode = "ok"
    after = metrics(client)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    chat_route = {"method": "POST", "route": "/api/v1/health/<agent_name>/chat"}
    assert grew("wellmate_http_requests_total", **chat_route, status="200") == 2
    assert grew("wellmate_http_request_duration_seconds_count", **chat_route) == 2
    assert grew("wellmate_http_request_duration_seconds_bucket", **chat_route, le="+Inf") == 2
    assert grew("wellmate_chat_turns_total", agent="physical", provider="fake", status="complete", streamed="false") == 1
    assert grew("wellmate_chat_turns_total", agent="physical", provider="fake", status="complete", streamed="true") == 1
    assert grew("wellmate_chat_turns_total", agent="physical", provider="offline", status="complete", streamed="false") == 1
    assert grew("wellmate_provider_duration_seconds_count", provider="fake", outcome="ok") == 2
    assert grew("wellmate_provider_duration_seconds_count", provider="fake", outcome="failed") == 1
    assert grew("wellmate_provider_failures_total", provider="fake") == 1
    assert grew("wellmate_stream_first_delta_seconds_count", provider="fake") == 1
    assert grew("wellmate_storage_operation_duration_seconds_count", operation="append_message", collection="messages") == 6
    assert value(after, "wellmate_info", version=wellmate.__version__) == 1
    assert value(after, "process_resident_memory_bytes") > 0


def test_metric_labels_stay_bounded_whatever_clients_send(app):
    """Route templates, not paths; methods from HTTP's list: 200 odd requests add no series."""
    client = app.client
    for n in range(3):  # every kind of request once, so its series exist
        client.get(f"/api/v1/nothing/{n}")
        client.get(f"/api/v1/health/sessions/nope-{n}", token=app.token)
        client.request(f"BREW{n}", "/api/v1/health/agents")
        client.request(f"PATCH{n}", f"/api/v1/x{n}")
    series = set(metrics(client))
    for n in range(100):
        client.get(f"/api/v1/nothing/here-{n}?q={n}")
        client.get(f"/api/v1/health/sessions/nope-x{n}", token=app.token)
        client.request(f"BREW{n}", "/api/v1/health/agents")
        client.request(f"PATCH{n}", f"/api/v1/x{n}")
    grown = {name for name, _ in set(metrics(client)) - series}
    assert grown <= {"wellmate_storage_operation_duration_seconds_bucket",  # a collection read for the first time
                     "wellmate_storage_operation_duration_seconds_count", "wellmate_storage_operation_duration_seconds_sum",
                     "wellmate_storage_operation_duration_seconds_created"}, grown
    text = client.get("/metrics").text
    assert "nope-x" not in text and "here-" not in text and "PATCH1" not in text and "BREW" not in text


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Real-IP"])
def test_metrics_refuse_a_forwarded_request(app, header):
    """Behind Caddy every request comes from 127.0.0.1: one that a proxy forwarded is refused."""
    r = app.client.get("/metrics", headers={header: "203.0.113.9" if header != "Forwarded" else "for=203.0.113.9"})
    assert_error(r, 403, "metrics_forbidden")
    assert "metrics.token" in r.json["error"]["message"]


def test_metrics_with_a_token_need_it(tmp_path):
    wm = build(tmp_path, {"metrics": {"token": "scrape-me-0123456789"}})
    served = Served(wm)
    try:
        client = served.client
        assert_error(client.get("/metrics"), 401, "unauthorized")
        assert {k.lower(): v for k, v in client.get("/metrics").headers.items()}["www-authenticate"] == "Bearer"
        assert_error(client.get("/metrics", token="wrong"), 401, "unauthorized")
        # With the token, from anywhere: through a proxy too.
        assert metrics(client, token="scrape-me-0123456789", headers={"X-Forwarded-For": "203.0.113.9"})
    finally:
        served.stop()
        wm.close()


def test_metrics_switched_off(tmp_path):
    wm = build(tmp_path, {"metrics": {"enabled": False}})
    served = Served(wm)
    try:
        assert_error(served.client.get("/metrics"), 404, "not_found")
    finally:
        served.stop()
        wm.close()


def test_metrics_count_reminder_deliveries(world):  # noqa: F811
    w = world("2026-11-20T01:00:00Z")
    token = w.user("alice")
    w.create(token, title="喝水", channels=["inapp"], rule={"kind": "daily", "times": ["10:00"]})
    w.tick("2026-11-20T02:00:05Z")
    samples = metrics(w.client)
    assert value(samples, "wellmate_reminder_deliveries_total", channel="inapp", status="sent") == 1


def test_the_docs_and_the_dashboard_name_only_metrics_that_exist(app):
    """docs/observability.md's table and queries and docs/grafana-dashboard.json's panels."""
    served = {sample for sample, _ in metrics(app.client)} | {
        # Series that exist once something happened (a turn, a failure, a stream, a delivery).
        f"{name}{suffix}" for name in ("wellmate_chat_turns", "wellmate_provider_failures",
                                       "wellmate_reminder_deliveries") for suffix in ("_total",)} | {
        f"{name}{suffix}" for name in ("wellmate_provider_duration_seconds", "wellmate_stream_first_delta_seconds")
        for suffix in ("_bucket", "_count", "_sum")}
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text(encoding="utf-8"))
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    named = set(re.findall(r"\b((?:wellmate|process)_[a-z_]+)", "\n".join(expressions)))
    named |= set(re.findall(r"`((?:wellmate|process)_[a-z_]+)`", (ROOT / "docs" / "observability.md").read_text()))
    missing = sorted(name for name in named if not {name, f"{name}_count"} & served)
    assert named and not missing, missing
