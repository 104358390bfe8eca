"""The fakes' connections after an error in a stream. Each platform ends such a stream whole (the
HTTP status stays 200, the error is an event, the chunked body ends) and keeps the connection, so a
pooling client may send its next request on it. A fake that closed the socket silently after the
last chunk made that next request race the close: the openai client against the FastGPT fake failed
1 run in ~6 in CI, and httpx against the OpenAI fake 11 of 300. Here the next request goes on the
same socket, so a silent close fails every time, not now and then. (A fake's deliberate faults, a
dropped or stalled stream, still hang up mid-body: a client cannot reuse such a connection.)"""

import http.client
import json

import pytest
from fakes.coze_server import FakeCoze
from fakes.dify_server import FakeDify
from fakes.fastgpt_server import FakeFastGPT
from fakes.openai_server import FakeOpenAI

HI = [{"role": "user", "content": "hi"}]
# fake, its error mode, the stream request's path, headers and body, and what marks the error in it
CASES = {
    "openai": (lambda: FakeOpenAI(reply="one two three four"), "error_mid_stream", "/v1/chat/completions", {},
               {"model": "m", "messages": HI, "stream": True}, b'"error"'),
    "fastgpt": (lambda: FakeFastGPT(), "error_mid_stream", "/api/v1/chat/completions",
                {"Authorization": "Bearer fastgpt-testkey"}, {"messages": HI, "stream": True}, b"event: error"),
    "dify": (lambda: FakeDify(), "error_mid_stream", "/v1/chat-messages", {"Authorization": "Bearer app-fake0123456789"},
             {"inputs": {}, "query": "hi", "user": "u1", "response_mode": "streaming"}, b'"event": "error"'),
    "coze": (lambda: FakeCoze(), "error_event", "/v3/chat", {"Authorization": "Bearer pat_fake"},
             {"bot_id": "7348293334", "user_id": "u1", "stream": True,
              "additional_messages": [{"role": "user", "content": "hi", "content_type": "text"}]}, b"event:error"),
}


@pytest.mark.parametrize("platform", CASES)
def test_an_error_stream_ends_whole_and_the_next_request_uses_the_same_connection(platform):
    make, mode, path, headers, body, error = CASES[platform]
    headers = {"Content-Type": "application/json", **headers}
    with make() as fake:
        conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
        try:
            fake.mode = mode
            conn.request("POST", path, json.dumps(body), headers)
            response = conn.getresponse()
            assert response.status == 200 and error in response.read() and not response.will_close
            fake.mode = "ok"
            conn.request("POST", path, json.dumps(body), headers)  # on the same socket: no reconnect
            response = conn.getresponse()
            assert response.status == 200 and error not in response.read()
        finally:
            conn.close()
