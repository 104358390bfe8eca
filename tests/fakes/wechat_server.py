"""A fake WeChat API server for tests: real HTTP on 127.0.0.1, the real wire format of
``GET /sns/jscode2session`` (mini-program login, code to session).

    with FakeWeChat(appid="wx-test", secret="s3cret") as fake:
        code = fake.login("o-alice", unionid="u-alice")  # what wx.login() gives the mini-program
        # point auth.wechat.api_base at fake.url, then POST /api/v1/auth/wx-login {"code": code}
        assert fake.requests[-1].query["js_code"] == code

What api.weixin.qq.com does, and so does this:

- ``GET /sns/jscode2session?appid=&secret=&js_code=&grant_type=authorization_code``.
- The HTTP status is 200 whatever happened; the body is JSON sent as ``Content-Type: text/plain``
  (so a client must parse the body, not trust the header).
- Success: ``{"session_key": "...", "openid": "..."}`` plus ``"unionid"`` when the mini-program
  is bound to an open-platform account. No ``errcode``.
- Failure: ``{"errcode": N, "errmsg": "..., rid: ..."}``: 40029 invalid code, 40163 code been
  used (a code works once), 40013 invalid appid, 40125 invalid appsecret, 40002 invalid
  grant_type, 41008 missing code, 45011 minute quota reached, 40226 high-risk user blocked,
  -1 system busy.

``mode`` scripts what goes wrong (see MODES) and can be changed between requests.

Subscribe messages (reminders), also as WeChat does them, JSON in and JSON out, HTTP 200 always:

- ``POST /cgi-bin/stable_token`` ``{"grant_type": "client_credential", "appid", "secret",
  "force_refresh"?}`` -> ``{"access_token", "expires_in"}``. Without force_refresh the current
  token is handed out again while it lives; with it, a new one replaces it.
- ``POST /cgi-bin/message/subscribe/send?access_token=`` ``{"touser", "template_id", "page"?,
  "miniprogram_state"?, "lang"?, "data": {"thing1": {"value": "..."}}}`` -> ``{"errcode": 0,
  "errmsg": "ok", "msgid"}``, or 40001 (token invalid or not the latest), 40037 (template id),
  40003 (openid), 47003 (a value too long or badly formed for its field), 43101 (the user has no
  allowance: see ``refusing``).

    fake.template_id = "tmpl-1"; fake.refusing.add("o-bob"); fake.revoke_tokens()
    assert fake.sent[-1]["data"]["thing1"]["value"] == "喝水"
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler

from fakes import FakeServer
from urllib.parse import parse_qs, urlsplit

MODES = {
    "ok": "answer by the code: a session for a code from login(), 40029 or 40163 otherwise",
    "rate_limited": "45011, as when the app's minute quota is spent",
    "busy": "-1, WeChat's 'system error, try again later'",
    "blocked": "40226, WeChat refuses to log in a user it rates high-risk",
    "timeout": "accept the request and answer nothing until stall_seconds pass or stop()",
    "bad_gateway": "HTTP 502 with an HTML page, as a gateway in front of the API sends",
}

ERRMSG = {
    -1: "system error",
    40002: "invalid grant_type",
    40013: "invalid appid",
    40029: "invalid code",
    40125: "invalid appsecret",
    40163: "code been used",
    40226: "high risk user, login blocked",
    41008: "missing code",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    40001: "invalid credential, access_token is invalid or not latest",
    40003: "invalid openid",
    40037: "invalid template_id",
    43101: "user refuse to accept the msg",
    47001: "data format error",
    47003: "argument invalid!",
}
# The longest value of each kind of subscribe message field (订阅消息 "模板参数值要求").
FIELD_LIMITS = {"thing": 20, "phrase": 5, "name": 10, "character_string": 32, "number": 32, "letter": 32,
                "symbol": 5}


class Request:
    """One request the fake received."""

    def __init__(self, method: str, path: str, query: dict, body=None):
        self.method, self.path, self.query = method, path, query  # query: name -> last value
        self.body = body  # a POST's parsed JSON

    def __repr__(self):
        return f"<Request {self.method} {self.path}>"


class FakeWeChat(FakeServer):
    name, url_path = 'fake-wechat', ''
    def __init__(self, appid="wx-test-appid", secret="test-app-secret", mode="ok", stall_seconds=30.0,
                 content_type="text/plain"):
        self.appid, self.secret, self.mode = appid, secret, mode
        self.stall_seconds = stall_seconds
        self.content_type = content_type
        self.requests: list[Request] = []
        self.codes: dict[str, dict] = {}  # code -> {"openid", "unionid", "used"}
        self.session_keys: list[str] = []  # every session_key handed out, to check none leaks
        self.url = None
        self._httpd = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        # Subscribe messages.
        self.template_id = "tmpl-reminder"
        self.token_seconds = 7200  # expires_in of access tokens
        self.tokens: list[str] = []  # every access token handed out; the last is the current one
        self.revoked: set[str] = set()  # refused with 40001 although stable_token still hands it out
        self.refusing: set[str] = set()  # openids with no allowance left: 43101
        self.refuse_every_token = False  # 40001 for any token, even a fresh one
        self.sent: list[dict] = []  # subscribe messages accepted

    def login(self, openid: str, unionid: str | None = None) -> str:
        """A fresh one-time code for this user, as ``wx.login()`` gives the mini-program."""
        code = secrets.token_hex(16)  # real codes are 32 characters too
        with self._lock:
            self.codes[code] = {"openid": openid, "unionid": unionid, "used": False}
        return code

    def answer(self, query: dict) -> dict:
        """The JSON WeChat would send for this query, in the current mode."""
        def error(code):
            return {"errcode": code, "errmsg": f"{ERRMSG[code]}, rid: {secrets.token_hex(4)}-{secrets.token_hex(6)}"}

        if self.mode == "rate_limited":
            return error(45011)
        if self.mode == "busy":
            return error(-1)
        if query.get("appid") != self.appid:
            return error(40013)
        if query.get("secret") != self.secret:
            return error(40125)
        if query.get("grant_type") != "authorization_code":
            return error(40002)
        if not query.get("js_code"):
            return error(41008)
        with self._lock:
            entry = self.codes.get(query["js_code"])
            if entry is None:
                return error(40029)
            if entry["used"]:
                return error(40163)
            entry["used"] = True
        if self.mode == "blocked":
            return error(40226)
        session_key = secrets.token_urlsafe(16)
        self.session_keys.append(session_key)
        reply = {"session_key": session_key, "openid": entry["openid"]}
        if entry["unionid"]:
            reply["unionid"] = entry["unionid"]
        return reply


    def revoke_tokens(self):
        """The current access token stops working (reset from the console, say), while
        stable_token keeps handing it out until asked with force_refresh."""
        with self._lock:
            self.revoked.update(self.tokens)

    def _error(self, code: int, detail: str = "") -> dict:
        rid = f"{secrets.token_hex(4)}-{secrets.token_hex(6)}"
        return {"errcode": code, "errmsg": f"{ERRMSG[code]}{detail} rid: {rid}"}

    def stable_token(self, body) -> dict:
        if not isinstance(body, dict):
            return self._error(47001)
        if body.get("grant_type") != "client_credential":
            return self._error(40002)
        if body.get("appid") != self.appid:
            return self._error(40013)
        if body.get("secret") != self.secret:
            return self._error(40125)
        with self._lock:
            if body.get("force_refresh") is True or not self.tokens:
                self.tokens.append(secrets.token_urlsafe(32))
            return {"access_token": self.tokens[-1], "expires_in": self.token_seconds}

    def subscribe_send(self, query: dict, body) -> dict:
        token = query.get("access_token")
        with self._lock:
            if not self.tokens or token != self.tokens[-1] or token in self.revoked or self.refuse_every_token:
                return self._error(40001)
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            return self._error(47001)
        if body.get("template_id") != self.template_id:
            return self._error(40037)
        if not isinstance(body.get("touser"), str) or not body["touser"]:
            return self._error(40003)
        for name, entry in body["data"].items():
            value = entry.get("value") if isinstance(entry, dict) else None
            kind = name.rstrip("0123456789")
            if not isinstance(value, str) or not value:
                return self._error(47003, f" data.{name}.value is empty")
            if kind in FIELD_LIMITS and len(value) > FIELD_LIMITS[kind]:
                return self._error(47003, f" data.{name}.value exceeds limit")
            if kind == "time" and not (len(value) in (5, 16) and value[-3] == ":"):
                return self._error(47003, f" data.{name}.value invalid time format")
        if body["touser"] in self.refusing:
            return self._error(43101)
        with self._lock:
            self.sent.append(body)
            return {"errcode": 0, "errmsg": "ok", "msgid": 3000000000 + len(self.sent)}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeWeChat

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        fake = self.fake
        url = urlsplit(self.path)
        query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        fake.requests.append(Request("GET", url.path, query))
        if fake.mode == "timeout":
            deadline = time.monotonic() + fake.stall_seconds
            while time.monotonic() < deadline and not fake._stopping.is_set():
                time.sleep(0.01)
            self.close_connection = True
            return
        if fake.mode == "bad_gateway":
            page = b"<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>"
            return self._send(502, page, "text/html")
        if url.path != "/sns/jscode2session":
            return self._send(404, b"<html><body>404 Not Found</body></html>", "text/html")
        body = json.dumps(fake.answer(query), separators=(",", ":")).encode()
        self._send(200, body, fake.content_type)

    def do_POST(self):
        fake = self.fake
        url = urlsplit(self.path)
        query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        fake.requests.append(Request("POST", url.path, query, body))
        if url.path == "/cgi-bin/stable_token":
            answer = fake.stable_token(body)
        elif url.path == "/cgi-bin/message/subscribe/send":
            answer = fake.subscribe_send(query, body)
        else:
            return self._send(404, b"<html><body>404 Not Found</body></html>", "text/html")
        self._send(200, json.dumps(answer, ensure_ascii=False).encode(), "application/json; encoding=utf-8")

    def _send(self, status: int, body: bytes, content_type: str):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "keep-alive")
        self.end_headers()
        self.wfile.write(body)


FakeWeChat.handler = _Handler
