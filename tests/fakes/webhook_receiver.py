"""A fake webhook receiver for tests: real HTTP on 127.0.0.1 that keeps every request as it came
off the wire (headers and raw body bytes), so a test checks the signature over exactly what was
sent.

    with WebhookReceiver(statuses=[503, 200]) as hook:   # the first POST gets a 503, then 200s
        ... point reminders.webhook.url at hook.url ...
        request = hook.requests[-1]
        assert request.headers["x-wellmate-signature"] == "sha256=" + hmac(secret, request.body)

``statuses`` are answered in order, then ``default_status``. ``stall_seconds`` makes the next
``stalls`` requests wait that long and then hang up without answering (a receiver that times
out); ``release()`` ends the stalls early, and they are answered.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler

from fakes import FakeServer


class Received:
    def __init__(self, method: str, path: str, headers: dict, body: bytes):
        self.method, self.path, self.body = method, path, body
        self.headers = headers  # lower-case names

    @property
    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Received {self.method} {self.path} {len(self.body)} bytes>"


class WebhookReceiver(FakeServer):
    name, url_path = 'fake-webhook', '/hooks/wellmate'
    def __init__(self, statuses=(), default_status=200, stall_seconds=0.0, stalls=0):
        self.statuses = list(statuses)
        self.default_status = default_status
        self.stall_seconds, self.stalls = stall_seconds, stalls
        self.requests: list[Received] = []
        self.url = None
        self._httpd = None
        self._stopping = threading.Event()
        self._release = threading.Event()
        self._lock = threading.Lock()

    def release(self):
        """End the stalls now: they are answered after all."""
        self._release.set()

    def _next(self) -> tuple[int, float]:
        with self._lock:
            status = self.statuses.pop(0) if self.statuses else self.default_status
            stall = 0.0
            if self.stalls:
                self.stalls -= 1
                stall = self.stall_seconds
            return status, stall


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: WebhookReceiver

    def log_message(self, format, *args):
        pass

    def do_POST(self):
        fake = self.fake
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        fake.requests.append(Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        status, stall = fake._next()
        deadline = time.monotonic() + stall
        while time.monotonic() < deadline and not fake._stopping.is_set() and not fake._release.is_set():
            time.sleep(0.01)
        if stall and not fake._release.is_set():  # the client has given up by now; answering would only fail
            self.close_connection = True
            return
        answer = json.dumps({"ok": 200 <= status < 300}).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
        except OSError:
            pass


WebhookReceiver.handler = _Handler
