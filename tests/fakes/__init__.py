"""Fake upstream servers that speak the real wire formats, started on 127.0.0.1 ports."""

import sys
import threading
from http.server import ThreadingHTTPServer


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], OSError):  # a client that hung up is not a bug
            super().handle_error(request, client_address)


class FakeServer:
    """Start/stop for a fake: a subclass sets ``handler`` (a BaseHTTPRequestHandler class, which
    reaches the fake as ``self.fake``), ``name`` and ``url_path``, and an ``_stopping`` Event."""

    handler = None
    name = "fake"
    url_path = ""

    def start(self):
        handler = type("Handler", (self.handler,), {"fake": self})
        self._httpd = QuietServer(("127.0.0.1", 0), handler)
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}{self.url_path}"
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         name=f"{self.name}-{self.port}", daemon=True).start()
        return self

    def stop(self):
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
