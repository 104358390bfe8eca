"""A small HTTP client on the standard library for plugins that call other servers: JSON calls
(WeChat's API), signed POSTs (the reminder webhook) and Server-Sent Events (what agent platforms
such as Coze, Dify and FastGPT stream their answers in). Not a plugin: no hooks.

- `request(method, url, ...)`: one request, any status answered; `HttpError` only when there is
  no HTTP answer at all (refused, reset, timed out). Redirects are not followed: a signed body or
  a secret in the query must not travel on to another host.
- `call_json(method, url, ...)`: a JSON object back, or `HttpError` saying why not: no answer,
  a status that is not 2xx, a body that is no JSON object (a proxy's HTML page), or, through
  ``error_of``, an error an API answers with HTTP 200 (WeChat's ``errcode``).
- `events(method, url, ...)`: the events of an SSE stream as they come. An answer in JSON
  instead (an API's error, even with status 200) is `HttpError` with that whole body (up to 64 KB)
  before any event. A stream that stalls
  longer than ``timeout`` or breaks off (a reset, a cut chunk, an end in the middle of an event)
  ends in `HttpError` after every complete event was yielded; half an event is never yielded.
  Leaving the loop early closes the connection, so the upstream stops generating.

Messages name the host, never the path or the query (an access token or a secret travels there).
"""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.parse
from dataclasses import dataclass, field

from wellmate import json_dumps

DEFAULT_TIMEOUT = 10.0  # seconds to connect, and between two reads of an answer
MAX_BODY = 1 << 20  # bytes of an answer read at most: a receiver's page is not ours to keep


class HttpError(Exception):
    """No usable answer. ``status`` is the HTTP status when there was one (else None), ``body``
    the start of the answer's body, ``events`` how many events a stream gave before it broke."""

    def __init__(self, message: str, status: int | None = None, body: bytes = b"", events: int = 0):
        super().__init__(message)
        self.status, self.body, self.events = status, body, events


@dataclass
class Response:
    status: int
    headers: dict  # lower-case names
    body: bytes
    host: str = ""

    def json(self):
        """The body as JSON (any UTF-8 JSON, whatever the Content-Type says: WeChat labels its
        JSON text/plain), or HttpError."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise HttpError(f"the answer from {self.host} is not JSON: {self.body[:200]!r}", self.status, self.body) from None


@dataclass
class Event:
    """One Server-Sent Event: ``data`` is its data lines joined with newlines."""
    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None

    def json(self):
        try:
            return json.loads(self.data)
        except ValueError:
            raise HttpError(f"an event's data is not JSON: {self.data[:200]!r}") from None


@dataclass
class _Target:
    scheme: str
    host: str
    port: int | None
    path: str  # with the query
    where: str = field(init=False)

    def __post_init__(self):
        self.where = self.host if self.port is None else f"{self.host}:{self.port}"


def check_url(url: str) -> str:
    """``url`` if it is an http:// or https:// address this client can call, else a ValueError
    (for a plugin to check its configured address at start-up, not at the first request)."""
    _target(url)
    return url


def _target(url: str) -> _Target:
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # no number, or above 65535
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise ValueError(f"not an http:// or https:// address: {url!r}")
    return _Target(parts.scheme, parts.hostname, port, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))


def _open(method: str, url: str, body, headers: dict | None, timeout: float, name: str | None):
    """Send the request; (connection, response, target). The caller closes the connection."""
    target = _target(url)
    if name:
        target.where = name
    headers = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, bytearray)):
        body = json_dumps(body).encode("utf-8")  # a lone surrogate is escaped, never a UnicodeEncodeError
        headers.setdefault("Content-Type", "application/json; charset=utf-8")
    connection_class = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
    conn = connection_class(target.host, target.port, timeout=timeout)
    try:
        conn.request(method, target.path, body=body, headers=headers)
        return conn, conn.getresponse(), target
    except (OSError, http.client.HTTPException) as e:
        conn.close()
        raise HttpError(f"no answer from {target.where} ({_why(e, timeout)})") from None


def _why(error: BaseException, timeout: float) -> str:
    if isinstance(error, (TimeoutError, socket.timeout)):
        return f"nothing for {timeout:g} s"
    return f"{type(error).__name__}: {getattr(error, 'reason', None) or error}"


def request(method: str, url: str, body=None, headers: dict | None = None, timeout: float = DEFAULT_TIMEOUT,
            max_body: int = MAX_BODY, name: str | None = None) -> Response:
    """One request; the answer whatever its status. ``body`` is bytes, or anything JSON can
    write (sent as JSON). ``name`` is what messages call the server (default: its host). Raises
    HttpError when no answer comes, ValueError for a bad ``url``."""
    conn, response, target = _open(method, url, body, headers, timeout, name)
    try:
        data = response.read(max_body)
    except (OSError, http.client.HTTPException) as e:
        raise HttpError(f"the answer from {target.where} broke off ({_why(e, timeout)})", response.status) from None
    finally:
        conn.close()
    return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, data, target.where)


def call_json(method: str, url: str, body=None, headers: dict | None = None, timeout: float = DEFAULT_TIMEOUT,
              error_of=None, name: str | None = None) -> dict:
    """The JSON object a 2xx answer holds. ``error_of(answer)`` may return a sentence for an error
    the API answers with a 2xx; it is raised as HttpError. Raises HttpError when there is no such
    object, saying why."""
    response = request(method, url, body, headers, timeout, name=name)
    if not 200 <= response.status < 300:
        raise HttpError(f"HTTP {response.status} from {response.host}", response.status, response.body[:200])
    answer = response.json()
    if not isinstance(answer, dict):
        raise HttpError(f"the answer from {response.host} is not a JSON object: {response.body[:200]!r}",
                        response.status, response.body[:200])
    reason = error_of(answer) if error_of else None
    if reason:
        raise HttpError(f"{response.host} answered with an error: {reason}", response.status, response.body[:200])
    return answer


def events(method: str, url: str, body=None, headers: dict | None = None, timeout: float = DEFAULT_TIMEOUT,
           name: str | None = None):
    """Yield the `Event`s of an SSE answer as they arrive (see the module's docstring). An answer
    that is not 2xx raises HttpError with its status and body, before any event."""
    headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache", **(headers or {})}
    conn, response, target = _open(method, url, body, headers, timeout, name)
    try:
        if not 200 <= response.status < 300:
            try:
                data = response.read(64 * 1024)
            except (OSError, http.client.HTTPException):
                data = b""
            raise HttpError(f"HTTP {response.status} from {target.where}", response.status, data[:200])
        if "json" in (response.getheader("Content-Type") or "").lower():
            # Coze and FastGPT refuse a stream request with a JSON error and status 200 ({"code":
            # 4100, "msg": ...}): that is an answer, not a broken stream, and the caller reads it.
            try:
                data = response.read(64 * 1024)
            except (OSError, http.client.HTTPException):
                data = b""
            raise HttpError(f"{target.where} answered JSON, not an event stream", response.status, data)
        count, last = 0, [time.monotonic()]
        try:
            for item in parse_events(_lines(response, last, timeout)):
                count += 1
                yield item
                last[0] = time.monotonic()
        except _Broken as e:
            raise HttpError(f"the stream from {target.where} broke off after {count} event(s) ({e})",
                            response.status, events=count) from None
        except (OSError, http.client.HTTPException) as e:
            raise HttpError(f"the stream from {target.where} broke off after {count} event(s) ({_why(e, timeout)})",
                            response.status, events=count) from None
    finally:
        conn.close()  # also when the caller stops early (GeneratorExit): the upstream stops


class _Broken(Exception):
    pass


def _lines(response, last: list | None = None, timeout: float | None = None):
    """The answer's lines as bytes; _Broken when it ends short of its Content-Length, or when
    only keep-alives (comments, events without data) came for ``timeout`` seconds since
    ``last[0]``, the time of the last event: the socket's timeout alone never ends such a stream."""
    expected = response.length  # None when chunked or closed to end
    got = 0
    while True:
        if last is not None and time.monotonic() - last[0] > timeout:
            raise _Broken(f"only keep-alives for {timeout:g} s")
        line = response.readline(MAX_BODY)
        if not line:
            if expected and got < expected:
                raise _Broken(f"{got} of {expected} bytes")
            return
        got += len(line)
        yield line


def parse_events(lines):
    """Events from an iterable of byte lines, as the SSE standard reads them: ``field: value``
    lines, an event ends at a blank line, lines starting with ``:`` are comments (pings), unknown
    fields are ignored, CR, LF and CRLF all end a line. Raises _Broken when the lines end inside
    an event (its half is dropped)."""
    data, event, last_id, retry, pending, first, size = [], "", None, None, False, True, 0
    for raw in lines:
        text = raw.decode("utf-8", "replace")
        if first:
            text, first = text.removeprefix("\ufeff"), False
        for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")[:-1] or [text]:
            if line == "":
                if data:
                    yield Event("\n".join(data), event or "message", last_id, retry)
                data, event, pending, size = [], "", False, 0
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            pending = True
            if name == "data":
                data.append(value)
                size += len(value)
                if size > MAX_BODY:  # data lines with no blank line to end them: not an event to keep
                    raise _Broken(f"an event over {MAX_BODY} bytes")
            elif name == "event":
                event = value
            elif name == "id" and "\0" not in value:
                last_id = value
            elif name == "retry" and value.isdigit():
                retry = int(value)
    if pending:
        raise _Broken("it ended in the middle of an event")
