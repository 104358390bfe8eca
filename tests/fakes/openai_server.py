"""A fake OpenAI-compatible server for tests: real HTTP on 127.0.0.1, the real wire format.

    with FakeOpenAI(reply="你好，今天感觉怎么样？") as fake:
        provider = OpenAIProvider("local", {"base_url": fake.url, "model": "m"}, wm=None)
        ...
        assert fake.requests[0].body["messages"][0]["role"] == "system"

It speaks what api.openai.com speaks (and Ollama, DeepSeek, vLLM in their compatible modes):

- ``POST /v1/chat/completions`` answers a ``chat.completion`` object; with ``"stream": true`` a
  ``text/event-stream`` in chunked transfer encoding: ``data: {chat.completion.chunk}\\n\\n``
  events (the role first, then content deltas, then an empty delta with ``finish_reason``, then,
  if ``stream_options.include_usage``, a chunk with ``choices: []`` and the usage), ending with
  ``data: [DONE]\\n\\n``.
- Errors are ``{"error": {"message", "type", "param", "code"}}`` with the HTTP status.
- ``GET /v1/models`` lists the one model.
- Images: a message's ``content`` may be a list of ``text`` and ``image_url`` parts, the URL a
  ``data:image/...;base64,`` one as Ollama requires (an http URL, raw base64 or a GIF: 400
  ``invalid image input``, Ollama's words); each request keeps the decoded bytes in ``images``.

``mode`` scripts what goes wrong (see MODES); every option can be changed between requests.
"""

from __future__ import annotations

import json
import sys
import re
import select
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fakes.image_parts import content_parts

MODES = {
    "ok": "answer normally",
    "401": "refuse the API key",
    "429": "rate limited, with a retry-after header",
    "500": "server error",
    "503": "overloaded",
    "stall_mid_stream": "send fault_after deltas, then hang until release(), stop() or stall_seconds",
    "error_mid_stream": "send fault_after deltas, then an SSE error event, and end the stream",
    "slow_first_token": "wait first_token_delay seconds before the first delta (or the whole answer)",
    "broken": "send fault_after deltas, then drop the connection without finishing the body",
    "keepalive": "send ': keep-alive' comments before each delta (not streaming: blank lines "
                 "before the JSON), as DeepSeek does while busy",
}

# The bodies api.openai.com sends, so a client's error handling is tested against the real shape.
ERRORS = {
    400: ("We could not parse the JSON body of your request.", "invalid_request_error", None),
    401: ("Incorrect API key provided: sk-fake***. You can find your API key at "
          "https://platform.openai.com/account/api-keys.", "invalid_request_error", "invalid_api_key"),
    404: ("Invalid URL", "invalid_request_error", None),
    429: ("Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. "
          "Please try again in 1s.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}

_CJK = "\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef"
_WORDS = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+\s*|\s+")


def words(text: str) -> list[str]:
    """Split like a tokenizer might: words with their trailing space, CJK one character each."""
    return _WORDS.findall(text)


def chars(n: int = 1):
    """A chunker giving pieces of n characters."""
    return lambda text: [text[i:i + n] for i in range(0, len(text), n)]


class Request:
    """One request the fake received."""

    def __init__(self, method: str, path: str, headers: dict, body):
        self.method, self.path, self.body = method, path, body
        self.headers = headers  # lower-case names
        self.images: list[bytes] = []  # every image of its messages, decoded, as the server read them
        self.client_closed = threading.Event()  # the client hung up before the answer ended
        self.done = threading.Event()  # the fake has finished with it

    def __repr__(self):
        return f"<Request {self.method} {self.path}>"


class _ClientGone(Exception):
    pass


class FakeOpenAI:
    def __init__(self, reply="Hello! How can I help you today?", mode="ok", *, chunker=words,
                 delay_between_chunks=0.0, first_token_delay=5.0, fault_after=2, stall_seconds=30.0,
                 fragment=None, api_key=None, retry_after="1", model=None):
        self.reply = reply  # text, or a function of the Request returning text
        self.mode = mode
        self.chunker = chunker
        self.delay_between_chunks = delay_between_chunks
        self.first_token_delay = first_token_delay
        self.fault_after = fault_after  # deltas sent before a mid-stream fault
        self.stall_seconds = stall_seconds
        self.fragment = fragment  # if set, write the body in pieces of this many bytes (splits UTF-8)
        self.api_key = api_key  # if set, any other bearer token gets a 401
        self.retry_after = retry_after
        self.model = model  # None: echo the request's model
        self.requests: list[Request] = []
        self.url = None
        self.leftover_threads: list[threading.Thread] = []
        self._httpd = None
        self._release = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._live: dict[socket.socket, threading.Thread] = {}

    def start(self) -> "FakeOpenAI":
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = _Server(("127.0.0.1", 0), handler)
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         name=f"fake-openai-{self.port}", daemon=True).start()
        return self

    def release(self):
        """End a stall: the stream carries on."""
        self._release.set()

    def hold(self):
        """After release(): the next stalls wait again."""
        self._release.clear()

    def stop(self):
        """Stop serving, release stalls, hang up every open connection and join its thread."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            live = list(self._live.items())
        for conn, _ in live:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes a handler blocked reading a kept-alive connection
            except OSError:
                pass
        for _, thread in live:
            thread.join(5)
        self.leftover_threads = [t for _, t in live if t.is_alive()]
        self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def last(self) -> Request:
        return self.requests[-1]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], OSError):  # a hang-up is not a bug
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked transfer, as the real API
    fake: FakeOpenAI

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to each answer on a kept-alive connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.fake._lock:
            self.fake._live[self.connection] = threading.current_thread()

    def finish(self):
        with self.fake._lock:
            self.fake._live.pop(self.connection, None)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format, *args):
        pass

    # -- routes ---------------------------------------------------------------------------------
    def do_GET(self):
        if self.path.rstrip("/") == "/v1/models":
            model = self.fake.model or "fake-model"
            return self._json(200, {"object": "list", "data": [
                {"id": model, "object": "model", "created": 1700000000, "owned_by": "fake"}]})
        self._error(404, f"Invalid URL (GET {self.path})")

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        request = Request("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        self.fake.requests.append(request)
        try:
            self._answer(request)
        except (_ClientGone, OSError):
            self.close_connection = True
            if not self.fake._stopping.is_set():
                request.client_closed.set()
        finally:
            request.done.set()

    def _answer(self, request: Request):
        fake = self.fake
        if self.path != "/v1/chat/completions":
            return self._error(404, f"Invalid URL (POST {self.path})")
        if not isinstance(request.body, dict):
            return self._error(400)
        try:
            for message in request.body.get("messages") or []:
                request.images += content_parts(message.get("content"))[1]
        except (ValueError, AttributeError) as e:
            return self._error(400, str(e))
        if fake.mode in ("401", "429", "500", "503"):
            return self._error(int(fake.mode))
        if fake.api_key is not None and request.headers.get("authorization") != f"Bearer {fake.api_key}":
            return self._error(401)
        text = fake.reply(request) if callable(fake.reply) else fake.reply
        if request.body.get("stream"):
            self._stream(request, text)
        else:
            self._complete(request, text)

    # -- answers --------------------------------------------------------------------------------
    def _complete(self, request: Request, text: str):
        fake = self.fake
        if fake.mode == "slow_first_token":
            self._wait(fake.first_token_delay)
        completion = {
            "id": "chatcmpl-" + uuid.uuid4().hex[:24], "object": "chat.completion",
            "created": int(time.time()), "model": fake.model or request.body.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None,
                                                  "annotations": []},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": _usage(request, fake.chunker(text)), "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }
        if fake.mode != "keepalive":
            return self._json(200, completion)
        # DeepSeek, while busy, sends blank lines before the JSON of a non-streamed answer.
        self._start_chunked("application/json")
        for _ in range(2):
            self._send(b"\n")
            self._wait(fake.delay_between_chunks)
        self._send(json.dumps(completion, ensure_ascii=False).encode())
        self._end_chunked()

    def _stream(self, request: Request, text: str):
        fake, mode = self.fake, self.fake.mode
        pieces = [p for p in fake.chunker(text) if p]
        include_usage = (request.body.get("stream_options") or {}).get("include_usage") is True
        head = {"id": "chatcmpl-" + uuid.uuid4().hex[:24], "object": "chat.completion.chunk",
                "created": int(time.time()), "model": fake.model or request.body.get("model"),
                "system_fingerprint": "fp_fake"}

        def chunk(delta, finish_reason=None):
            event = dict(head, choices=[{"index": 0, "delta": delta, "logprobs": None,
                                         "finish_reason": finish_reason}])
            if include_usage:
                event["usage"] = None  # the real API puts usage: null on every chunk but the last
            return event

        self._start_chunked("text/event-stream; charset=utf-8")
        self._event(chunk({"role": "assistant", "content": "", "refusal": None}))
        if mode == "slow_first_token":
            self._wait(fake.first_token_delay)
        fault_at = min(fake.fault_after, len(pieces))
        for i in range(len(pieces) + 1):
            if i == fault_at and mode in ("stall_mid_stream", "error_mid_stream", "broken"):
                if mode == "stall_mid_stream":
                    self._wait(fake.stall_seconds, releasable=True)
                    if fake._stopping.is_set():
                        return self._drop()
                elif mode == "error_mid_stream":
                    message, kind, _ = ERRORS[500]
                    self._event({"error": {"message": message, "type": kind, "param": None, "code": None}})
                    # The stream ends whole and the connection stays open, as the API's does (an error is
                    # an event in a 200 stream). Closed without a word after a complete response, a
                    # pooling client that read to the end raced the close on its next request (httpx:
                    # 11 of 300 next requests failed).
                    return self._end_chunked()
                else:
                    return self._drop()
            if i == len(pieces):
                break
            if i:
                self._wait(fake.delay_between_chunks)
            if mode == "keepalive":
                self._send(b": keep-alive\n\n")
            self._event(chunk({"content": pieces[i]}))
        self._event(chunk({}, "stop"))
        if include_usage:
            self._event(dict(head, choices=[], usage=_usage(request, pieces)))
        self._send(b"data: [DONE]\n\n")
        self._end_chunked()

    def _error(self, status: int, message: str | None = None):
        default, kind, code = ERRORS[status]
        headers = {"x-request-id": "req_" + uuid.uuid4().hex}
        if status == 429:
            headers["retry-after"] = self.fake.retry_after
        self._json(status, {"error": {"message": message or default, "type": kind, "param": None,
                                      "code": code}}, headers)

    # -- wire -----------------------------------------------------------------------------------
    def _json(self, status: int, obj, headers: dict | None = None):
        data = _wire(obj)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _start_chunked(self, content_type: str):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", "req_" + uuid.uuid4().hex)
        self.end_headers()

    def _send(self, data: bytes):
        """Write data as HTTP chunks (several if fragment is set, splitting UTF-8 sequences)."""
        self._check_client()
        size = self.fake.fragment or len(data)
        for i in range(0, len(data), size):
            piece = data[i:i + size]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))

    def _event(self, obj):
        self._send(b"data: " + _wire(obj) + b"\n\n")

    def _end_chunked(self):
        self.wfile.write(b"0\r\n\r\n")

    def _drop(self):
        """Hang up mid-body: no last chunk, no [DONE]."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _check_client(self):
        """Raise _ClientGone if the client closed its end (readable with nothing to read)."""
        readable, _, _ = select.select([self.connection], [], [], 0)
        if readable:
            try:
                gone = not self.connection.recv(1, socket.MSG_PEEK)
            except OSError:
                gone = True
            if gone:
                raise _ClientGone()

    def _wait(self, seconds: float, releasable: bool = False):
        """Sleep, but notice a client that hangs up, and stop early when the fake stops."""
        fake = self.fake
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if fake._stopping.is_set() or (releasable and fake._release.is_set()):
                return
            self._check_client()
            time.sleep(min(left, 0.01))


def _wire(obj) -> bytes:
    """JSON as UTF-8; text with a lone surrogate (a reply cut inside an emoji) goes as \\u escapes,
    as JSON servers write it: it has no UTF-8 form."""
    try:
        return json.dumps(obj, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return json.dumps(obj).encode()


def _usage(request: Request, pieces: list[str]) -> dict:
    prompt = sum(len(str(m.get("content", ""))) for m in request.body.get("messages") or []) // 4 + 1
    return {"prompt_tokens": prompt, "completion_tokens": len(pieces),
            "total_tokens": prompt + len(pieces),
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
