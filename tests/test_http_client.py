"""plugins/_http.py, the JSON and SSE client plugins share, against a fake upstream on 127.0.0.1
that answers, stalls, breaks off mid-stream and answers errors with HTTP 200."""

import json

import pytest

from fakes.http_upstream import FakeUpstream
from wellmate_plugins import _http


@pytest.fixture
def up():
    with FakeUpstream(stall_seconds=3.0) as fake:
        yield fake


def test_call_json_sends_and_reads_json(up):
    assert _http.call_json("POST", up.url + "/json", {"text": "你好"}) == {"ok": True, "echo": {"text": "你好"}}
    method, path, headers, body = up.requests[-1]
    assert (method, path) == ("POST", "/json") and headers["content-type"].startswith("application/json")


def test_an_error_answered_with_http_200_is_an_error_when_the_caller_says_so(up):
    # WeChat answers its errors with HTTP 200 and an errcode (as text/plain): JSON all the same.
    answer = _http.call_json("GET", up.url + "/json-error")
    assert answer["errcode"] == 40001
    with pytest.raises(_http.HttpError) as e:
        _http.call_json("GET", up.url + "/json-error", error_of=lambda a: a.get("errcode") and a.get("errmsg"))
    assert e.value.status == 200 and "invalid credential" in str(e.value)


def test_a_page_instead_of_json_and_an_error_status_are_errors_that_name_the_server(up):
    with pytest.raises(_http.HttpError) as e:
        _http.call_json("GET", up.url + "/page", name="WeChat")
    assert "not JSON" in str(e.value) and "WeChat" in str(e.value) and e.value.status == 200
    with pytest.raises(_http.HttpError) as e:
        _http.call_json("GET", up.url + "/status/503?secret=hush")
    assert e.value.status == 503 and str(e.value) == f"HTTP 503 from 127.0.0.1:{up.port}"
    assert "hush" not in str(e.value)  # a query may carry a secret: messages never show it


def test_request_answers_any_status_and_follows_no_redirect(up):
    response = _http.request("GET", up.url + "/redirect")
    assert response.status == 302 and response.headers["location"].endswith("/json")
    assert [r[1] for r in up.requests] == ["/redirect"]
    assert _http.request("POST", up.url + "/status/404", b"{}").status == 404


def test_a_lone_surrogate_in_a_body_is_sent_escaped_not_a_crash(up):
    # A JS client cutting text inside an emoji sends "\ud800"; wellmate.json_dumps escapes it.
    assert _http.call_json("POST", up.url + "/json", {"text": "hi \ud800"})["echo"] == {"text": "hi \ud800"}


def test_a_stalled_server_is_a_timeout_not_a_hang(up):
    with pytest.raises(_http.HttpError) as e:
        _http.request("GET", up.url + "/stall", timeout=0.3)
    assert e.value.status is None and "nothing for 0.3 s" in str(e.value)


def test_nobody_listening_is_an_error():
    with pytest.raises(_http.HttpError) as e:
        _http.call_json("GET", "http://127.0.0.1:9/json", timeout=1)  # port 9 (discard): refused
    assert e.value.status is None and str(e.value).startswith("no answer from 127.0.0.1:9")


def test_a_bad_address_is_refused_before_any_request():
    for url in ("ftp://example.com/x", "http:///nohost", "http://example.com:99999/"):
        with pytest.raises(ValueError):
            _http.request("GET", url)


def test_events_read_a_whole_stream(up):
    got = list(_http.events("POST", up.url + "/sse", {"q": 1}))
    assert [(e.event, e.data) for e in got] == [
        ("message", '{"delta": "he"}'), ("update", "line one\nline two"), ("message", "你好"), ("message", "[DONE]")]
    assert got[0].json() == {"delta": "he"} and got[1].id == "7" and got[2].retry == 1500
    assert up.requests[-1][2]["accept"] == "text/event-stream"


@pytest.mark.parametrize("path", ["/sse-break", "/sse-short"])
def test_a_stream_that_breaks_off_gives_its_whole_events_then_an_error(up, path):
    got = []
    with pytest.raises(_http.HttpError) as e:
        for event in _http.events("GET", up.url + path):
            got.append(event.data)
    assert got == ["one", "two"] if path == "/sse-break" else got == ["one"]  # never half an event
    assert e.value.events == len(got) and "broke off" in str(e.value)


def test_a_stream_that_stalls_ends_in_an_error_after_the_timeout(up):
    got = []
    with pytest.raises(_http.HttpError) as e:
        for event in _http.events("GET", up.url + "/sse-stall", timeout=0.3):
            got.append(event.data)
    assert got == ["one"] and "nothing for 0.3 s" in str(e.value)


def test_a_stream_of_keep_alives_alone_ends_in_an_error_after_the_timeout(up):
    # Each ping resets the socket's timeout: without a clock of its own the stream never ended.
    events = _http.events("GET", up.url + "/sse-pings", timeout=0.5)
    assert next(events).data == "one"
    with pytest.raises(_http.HttpError) as e:
        next(events)
    assert "only keep-alives for 0.5 s" in str(e.value) and e.value.events == 1


def test_an_event_that_never_ends_is_an_error_not_a_growing_buffer(up):
    with pytest.raises(_http.HttpError) as e:
        list(_http.events("GET", up.url + "/sse-unending-event", timeout=5))
    assert "an event over" in str(e.value) and e.value.events == 0


def test_an_error_status_on_a_stream_is_an_error_before_any_event(up):
    with pytest.raises(_http.HttpError) as e:
        next(_http.events("GET", up.url + "/status/429"))
    assert e.value.status == 429 and b"status 429" in e.value.body


def test_a_json_answer_to_a_stream_request_is_an_error_with_the_whole_body(up):
    with pytest.raises(_http.HttpError) as e:
        next(_http.events("POST", up.url + "/sse-json", {"stream": True}))
    assert e.value.status == 200 and e.value.events == 0 and "not an event stream" in str(e.value)
    assert json.loads(e.value.body)["code"] == 4100


def test_leaving_a_stream_early_hangs_up_so_the_upstream_stops(up):
    stream = _http.events("GET", up.url + "/sse-endless")
    assert [next(stream).data for _ in range(3)] == ["1", "2", "3"]
    stream.close()
    assert up.hung_up.wait(5)


def test_the_parser_reads_lines_as_the_sse_standard_does():
    lines = [b"\xef\xbb\xbfdata: a\n", b"data:b\r\n", b"\n", b"unknown: x\n", b"event: e\n", b"\n",  # no data: none
             b"id: 3\n", b"data: c\n", b"\n"]
    got = list(_http.parse_events(lines))
    assert [(e.event, e.data, e.id) for e in got] == [("message", "a\nb", None), ("message", "c", "3")]
