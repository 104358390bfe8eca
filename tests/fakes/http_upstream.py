"""A fake upstream for tests of plugins/_http.py: real HTTP/1.1 on 127.0.0.1 that answers as
the servers a plugin calls do when they work and when they do not.

    with FakeUpstream() as up:
        up.url + "/json"            200 {"ok": true, "echo": <the JSON body sent>}
        up.url + "/json-error"      200 {"errcode": 40001, "errmsg": "invalid credential"} (an error in a 200)
        up.url + "/page"            200 text/html: a proxy's page, no JSON
        up.url + "/status/503"      that status, a JSON error body
        up.url + "/redirect"        302 to /json (a client must not follow it)
        up.url + "/stall"           nothing for ``stall_seconds``, then a hang-up
        up.url + "/sse"             a whole SSE stream (chunked): comments, multi-line data, CRLF, ids
        up.url + "/sse-json"        200 application/json: a stream refused with an error body (Coze)
        up.url + "/sse-break"       two events, half a third, then the connection is cut mid-chunk
        up.url + "/sse-short"       Content-Length promises more than is sent before the hang-up
        up.url + "/sse-stall"       one event, then nothing for ``stall_seconds``
        up.url + "/sse-endless"     an event every 20 ms until the client hangs up (``hung_up`` is set)

``requests`` keeps (method, path, headers, body) of each request.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler

from fakes import FakeServer

SSE_EVENTS = (b": connected\n\n"
              b"data: {\"delta\": \"he\"}\n\n"
              b"event: update\r\nid: 7\r\ndata: line one\r\ndata: line two\r\n\r\n"
              b": ping\n\n"
              b"retry: 1500\ndata: \xe4\xbd\xa0\xe5\xa5\xbd\n\n"
              b"data: [DONE]\n\n")


class FakeUpstream(FakeServer):
    name, url_path = "fake-upstream", ""

    def __init__(self, stall_seconds: float = 5.0):
        self.stall_seconds = stall_seconds
        self.requests: list[tuple] = []
        self.hung_up = threading.Event()
        self.url = None
        self._httpd = None
        self._stopping = threading.Event()

    def wait(self, seconds: float):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._stopping.is_set():
            time.sleep(0.01)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeUpstream

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self._answer(b"")

    def do_POST(self):
        self._answer(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def _send(self, status: int, body: bytes, content_type: str = "application/json", **headers):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _stream_head(self, chunked=True, length=None):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _chunk(self, data: bytes):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _answer(self, body: bytes):
        fake, path = self.fake, self.path.split("?")[0]
        fake.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        if path == "/json":
            self._send(200, json.dumps({"ok": True, "echo": json.loads(body) if body else None}).encode())
        elif path == "/json-error":
            self._send(200, b'{"errcode": 40001, "errmsg": "invalid credential"}', "text/plain")
        elif path == "/page":
            self._send(200, b"<html><body>502 Bad Gateway</body></html>", "text/html")
        elif path.startswith("/status/"):
            status = int(path.rsplit("/", 1)[1])
            self._send(status, json.dumps({"error": {"message": f"status {status}"}}).encode())
        elif path == "/redirect":
            self._send(302, b"", Location=f"{fake.url}/json")
        elif path == "/stall":
            fake.wait(fake.stall_seconds)
            self.close_connection = True
        elif path == "/sse":
            self._stream_head()
            for event in SSE_EVENTS.split(b"\n\n")[:-1]:
                self._chunk(event + b"\n\n")
            self._chunk(b"")
        elif path == "/sse-json":
            self._send(200, b'{"code":4100,"msg":"authentication is invalid","detail":{"logid":"2026"}}')
        elif path == "/sse-break":
            self._stream_head()
            self._chunk(b"data: one\n\n")
            self._chunk(b"data: two\n\n")
            self.wfile.write(b"40\r\ndata: thr")  # a chunk of 64 bytes cut after 9, then gone
            self.wfile.flush()
            self.close_connection = True
        elif path == "/sse-short":
            data = b"data: one\n\ndata: tw"
            self._stream_head(chunked=False, length=len(data) + 100)
            self.wfile.write(data)
            self.wfile.flush()
            self.close_connection = True
        elif path == "/sse-stall":
            self._stream_head()
            self._chunk(b"data: one\n\n")
            fake.wait(fake.stall_seconds)
            self.close_connection = True
        elif path == "/sse-pings":  # one event, then only keep-alives (comments, Dify's dataless pings)
            self._stream_head()
            try:
                self._chunk(b"data: one\n\n")
                while not fake._stopping.is_set():
                    self._chunk(b": ping\n\n" if time.monotonic() % 0.2 < 0.1 else b"event: ping\n\n")
                    time.sleep(0.05)
            except OSError:
                fake.hung_up.set()
            self.close_connection = True
        elif path == "/sse-unending-event":  # data lines with no blank line to end the event
            self._stream_head()
            try:
                while not fake._stopping.is_set():
                    self._chunk(b"data: " + b"x" * 60000 + b"\n")
            except OSError:
                fake.hung_up.set()
            self.close_connection = True
        elif path == "/sse-endless":
            self._stream_head()
            try:
                n = 0
                while not fake._stopping.is_set():
                    n += 1
                    self._chunk(b"data: %d\n\n" % n)
                    time.sleep(0.02)
            except OSError:
                fake.hung_up.set()
            self.close_connection = True
        else:
            self._send(404, b'{"error": "not found"}')


FakeUpstream.handler = _Handler
