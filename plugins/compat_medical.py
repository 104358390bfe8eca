"""The medical assistant's client (docs/compat.md), the third compat dialect: a FastGPT + vision
model WeChat mini-program backend for patients, with a patients' handbook (病友宝典). Its routes,
from its public design, mapped onto the real services: its users are Wellmate accounts with
Wellmate's tokens, its chats are chat turns (same storage, agents, safety, emotion), its files are
uploads, its handbook is the library, its logs are the request log.

    POST /api/user/register | login | logout | wx-login      GET /api/user/info
    POST /api/chat/text | image | upload                      GET /api/chat/history | config
    GET  /api/chat/upload/{fileId}   GET /api/chat/file/{fileId}?user=&expires=&sig= (a signed link)
    GET  /api/treasure/list | {id}   GET /api/treasure/{id}/file?expires=&sig= (a signed link)
    POST /api/upload/image           GET /api/system/health   GET /api/logs (admins)

Served at the root, off unless ``compat.medical.enabled``: these paths collide with no other
route, and unlike the other two dialects this client sent a token, so no secret path key stands
in for one. Every answer, errors included, is the envelope ``{code, message, data}`` (`code` the
HTTP status; errors add Wellmate's `error` code); the original code was stubs, so the envelope
is our reading of its design.
"""

import hmac
import mimetypes
import re
import time
import urllib.parse

import bottle

from wellmate import ApiError, ConfigError, Setting, field, hookimpl, json_dumps, new_id, page_args
from wellmate_plugins._openapi import (Api, Param, array, boolean, download, integer, nullable, number, obj,
                                       string, text, upload)
from wellmate_plugins.accounts import PROFILE_IN, password_login, register_account
from wellmate_plugins.auth import PASSWORD_MIN, USERNAME, USERNAME_RULE, public_profile, require_admin, required
from wellmate_plugins.chat import title_from
from wellmate_plugins.compat import ERROR_SHAPES, answered, client_id, compat_errors, no_such_route
from wellmate_plugins.library import FILE_NAME
from wellmate_plugins.request_log import LOG_LINE, filters
from wellmate_plugins.service import health_report
from wellmate_plugins.uploads import uploaded

DIALECT = "medical"
PAGE_SIZE_MAX = 100
FILE_LINK = "compat.medical file"  # the purposes of the two kinds of signed link (Auth.signature)
TREASURE_LINK = "compat.medical treasure"
DIALECT_PATHS = ("/api/user/", "/api/chat/", "/api/treasure/", "/api/upload/", "/api/system/", "/api/logs/")
SHOWN_SAFELY = ("application/pdf",)  # a handbook file of these types is not sandboxed (a PDF viewer needs its plugins)
# How far back pages by number reach: each page before the one asked for is a read (~20 us; page=10000
# of page_size=1 was 0.2 s of CPU a request), so at most 2,000 reads (~40 ms) a request.
PAGED_BACK = 2_000
# ASCII digits only: str.isdigit() takes "²", which int() refuses (a 500).
NUMBER = re.compile(r"[0-9]{1,12}")


@hookimpl
def config_schema():
    return {"compat": {"medical": Setting({}, "The medical assistant's API (/api/user/*, /api/chat/text|image|history|"
                                              "config|upload, /api/treasure/*, /api/upload/image, /api/system/health, "
                                              "/api/logs) at the server's root, with Wellmate's own accounts and "
                                              "tokens: the keys below.", dict, items={
        "enabled": Setting(False, "Serve the medical assistant's routes (off: they answer 404).", bool),
        "agent": Setting("", "The agent its chats go to; empty: the first agent."),
        "treasure_tag": Setting("", "The library articles its handbook (/api/treasure) lists: those with this tag; "
                                    "empty: every article."),
        "link_minutes": Setting(60, "How long a signed file link (an upload's file_url, a handbook file) works, in "
                                    "minutes: the link is the only key to the file, so keep it short.",
                                int, min=1, max=7 * 24 * 60),
        "base_url": Setting("", "The https://host file links start with (as the mini-program reaches this server); "
                                "empty: the request's own scheme and Host."),
    })}}


class Medical:
    """The service ``compat_medical`` (None while the dialect is off): its settings, its signed
    links and its handbook, for its routes."""

    def __init__(self, wm):
        self.wm, self.auth = wm, required(wm, "compat_medical")
        self.conf = wm.config["compat"]["medical"]
        agents = wm.config["agents"]
        self.agent = self.conf["agent"] or next(iter(agents))
        if self.agent not in agents:
            raise ConfigError(f"compat.medical.agent: no agent named {self.agent!r}; agents: {', '.join(agents)}")
        if self.conf["base_url"] and not self.conf["base_url"].startswith(("https://", "http://")):
            raise ConfigError("compat.medical.base_url: the https://host the mini-program reaches this server at")

    # -- signed links: what an <image src> or a download can fetch without a header
    def _base(self) -> str:
        if self.conf["base_url"]:
            return self.conf["base_url"].rstrip("/")
        environ = bottle.request.environ
        host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', '127.0.0.1')}:{environ.get('SERVER_PORT', '')}"
        return f"{environ.get('wsgi.url_scheme', 'http')}://{host}"

    def _signed(self, purpose: str, path: str, subject: str, **query) -> tuple[str, str]:
        expires = int(time.time()) + self.conf["link_minutes"] * 60
        query["expires"] = expires
        query["sig"] = self.auth.signature(purpose, f"{subject}:{expires}")
        url = f"{self._base()}{path}?{urllib.parse.urlencode(query)}"
        return url, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))

    def file_link(self, user_id: str, upload_id: str) -> tuple[str, str]:
        """(URL, when it stops working) of a user's upload: it names the owner and is signed for
        that owner and that upload only, so another upload id in it is refused."""
        return self._signed(FILE_LINK, f"/api/chat/file/{upload_id}", f"{user_id}:{upload_id}", user=user_id)

    def treasure_link(self, article_id: str, part: str = "file") -> str:
        """A signed link to a handbook entry's file (its attachment, else its cover) or cover."""
        query = {"part": part} if part != "file" else {}
        return self._signed(TREASURE_LINK, f"/api/treasure/{article_id}/file", article_id, **query)[0]

    def check_link(self, purpose: str, subject: str) -> None:
        """A 403 unless the request's ``expires`` and ``sig`` are this server's, for ``subject``,
        and not past."""
        query = bottle.request.query
        expires, sig = query.get("expires") or "", query.get("sig") or ""
        expected = self.auth.signature(purpose, f"{subject}:{expires}")
        if not NUMBER.fullmatch(expires) or not hmac.compare_digest(sig.encode(), expected.encode()):
            raise ApiError(403, "invalid_link", "This file link is not one this server gave; ask for a new one "
                                                "(GET /api/chat/upload/{fileId}, GET /api/treasure/{id}).")
        if int(expires) < time.time():
            raise ApiError(403, "link_expired", "This file link has expired; ask for a new one "
                                                "(GET /api/chat/upload/{fileId}, GET /api/treasure/{id}).")

    # -- the handbook: library articles (with the configured tag)
    def article(self, article_id: str) -> dict:
        library = self.library()
        found = library.get(article_id) if isinstance(article_id, str) and len(article_id) <= 64 else None
        tag = self.conf["treasure_tag"].lower()
        if found is None or tag and tag not in found["tags"]:
            raise ApiError(404, "not_found", f"No handbook entry {article_id!r}.")
        return found

    def library(self):
        library = self.wm.service("library")
        if library is None:
            raise ApiError(404, "not_found", "This server keeps no handbook (its library plugin is disabled).")
        return library


@hookimpl
def register_services(register):
    register("compat_medical", lambda wm: Medical(wm) if (wm.config["compat"].get("medical") or {}).get("enabled")
             else None)


def envelope(data, message: str = "success") -> dict:
    return {"code": bottle.response.status_code, "message": message, "data": data}


def page_number(name: str, default: int, most: int) -> int:
    raw = bottle.request.query.get(name)
    if raw is None or raw == "":
        return default
    if not NUMBER.fullmatch(raw) or not 1 <= int(raw) <= most:
        raise ApiError(400, "invalid_field", f"{name}: an integer 1-{most}")
    return int(raw)


def nth_page(read, page: int, size: int) -> tuple[list, bool]:
    """(the items of page ``page``, whether more follow) of a list read by cursor, ``read(before)
    -> (items, next cursor)``, walking the pages before it: the old clients asked by page number.
    Past the end: no items. A 400 for a page more than PAGED_BACK items back."""
    if (page - 1) * size >= PAGED_BACK:
        raise ApiError(400, "invalid_field", f"page: pages by number reach the newest {PAGED_BACK:,} items "
                                             f"((page - 1) * page_size under {PAGED_BACK:,}); older ones by cursor "
                                             "in Wellmate's own API")
    before = None
    for number in range(1, page + 1):
        items, after = read(before)
        if number == page:
            return items, after is not None
        if after is None:
            return [], False
        before = after
    return [], False


def user_info(user: dict, wm) -> dict:
    profile = public_profile(user, wm)
    return {"id": profile["uuid"], "username": profile["username"], "nickname": profile["full_name"],
            "role": profile["role"], "wechat": bool(user.get("wx_openid")), "created_at": profile["created_at"],
            "profile": profile}


# -- what the routes declare ------------------------------------------------------------------------

def wrapped(data: dict | None, title: str | None = None) -> dict:
    """The success envelope around ``data``."""
    return obj({"code": integer(200, 299, description="the HTTP status"), "message": string(), "data": data or {}},
               required=["code", "message", "data"], **({"title": title} if title else {}))


ENVELOPE_ERROR = obj({"code": integer(400, 599, description="the HTTP status"),
                      "message": string(description="what is wrong, for the user or developer"),
                      "data": {"type": "null"}, "error": string(description="Wellmate's error code (invalid_field, ...)")},
                     required=["code", "message", "data", "error"], title="MedicalError")
ERROR_WHEN = {
    400: "a field or parameter is missing or not valid (`message` names it)",
    401: "no valid token: send `Authorization: Bearer <token>` (from login); after logout the token is refused",
    403: "closed registration, a disabled account, an admin route, or a file link that is not valid or has expired",
    404: "no such session, upload, file or handbook entry (another user's answers so too)",
    409: "the username is taken; or this session is still answering",
    413: "the body or the photo is too big, or the photo quota is full",
    415: "not an image this server reads (JPEG, PNG, WebP, GIF)",
    429: "too many failed logins, or turns or uploads at once: wait for Retry-After",
    502: "WeChat did not answer",
    503: "storage cannot be written; no provider answered (the message was saved); WeChat login not configured",
}


def errors(*statuses: int) -> dict:
    return compat_errors(*statuses, body=ENVELOPE_ERROR, when=ERROR_WHEN)


USER_INFO = obj({"id": string(), "username": string(nullable=True), "nickname": string(),
                 "role": string(enum=["user", "admin"]), "wechat": boolean(description="signed in with WeChat"),
                 "created_at": string(format="date-time"), "profile": obj(description="Wellmate's profile of the user")},
                required=["id", "username", "nickname", "role", "wechat", "created_at"], title="MedicalUser")
SIGNED_IN = obj({"token": string(description="send as `Authorization: Bearer <token>`"),
                 "access_token": string(description="the same token"),
                 "refresh_token": string(description="POST /api/v1/auth/refresh renews the token"),
                 "expires_in": integer(description="seconds the token is valid"), "user": USER_INFO,
                 "created": boolean(description="wx-login: this login created the account")},
                required=["token", "access_token", "refresh_token", "expires_in", "user"], title="MedicalSignedIn")
CHAT_LOG = obj({"id": string(), "user_id": string(), "session_id": string(), "sender": string(enum=["user", "ai"]),
                "content": string(), "type": string(enum=["text", "image"]),
                "file_url": string(nullable=True, description="type image: a signed link to the photo"),
                "created_at": string(format="date-time"), "emotion": string(nullable=True)},
               required=["id", "user_id", "session_id", "sender", "content", "type", "file_url", "created_at"],
               title="MedicalChatLog")
FILE = obj({"file_id": string(), "file_url": string(description="a signed link, for <image src>"),
            "expires_at": string(format="date-time"), "content_type": string(), "size": integer(0),
            "width": integer(1), "height": integer(1), "created_at": string(format="date-time")},
           required=["file_id", "file_url", "expires_at"], title="MedicalFile")
TREASURE = obj({"id": string(), "title": string(), "summary": string(), "tags": array(string()),
                "file_url": string(nullable=True, description="a signed link to its attachment (or cover)"),
                "cover_url": string(nullable=True), "created_at": string(), "updated_at": string()},
               required=["id", "title", "file_url", "created_at", "updated_at"], title="MedicalTreasure")
PAGED = {"page": integer(1), "page_size": integer(1, PAGE_SIZE_MAX), "has_more": boolean()}
PAGING = {"page": integer(1, 100_000, default=1, description="1: the newest"),
          "page_size": integer(1, PAGE_SIZE_MAX, default=20)}
PUBLIC_ERRORS = (400, 403, 404, 413, 429, 503)
FILE_FORM = upload({"file": string(format="binary", content_media_type="image/jpeg",
                                   description="JPEG, PNG, WebP or GIF, judged by its bytes")}, required=["file"],
                   example={"file": "(the photo's bytes, as wx.uploadFile sends them)"})


@hookimpl
def routes(app, wm):
    medical = wm.service("compat_medical")
    if medical is None:
        return
    compat, chat, auth = wm.service("compat"), wm.service("chat"), wm.service("auth")
    max_chars = wm.config["chat"]["max_message_chars"]

    def route(method: str, rule: str, api: Api):
        """A route of the dialect: its answer in the envelope, its errors too."""
        def decorate(handler):
            def run(**kwargs):
                return answered(DIALECT, lambda: envelope(handler(**kwargs)))
            run.__name__ = handler.__name__
            return app.route(rule, method, run, api=api)
        return decorate

    # A path of the dialect that no route takes answers in the envelope too: its client reads no
    # other shape. An id that is not UTF-8 is one (/api/chat/upload/%ff reads as /api/chat/upload/).
    others = app.default_error_handler

    def not_found(error):
        path = bottle.request.path
        if path != "/api/logs" and not path.startswith(DIALECT_PATHS):
            return others(error)
        bottle.response.content_type = "application/json"
        return json_dumps(ERROR_SHAPES[DIALECT](no_such_route()))
    app.error_handler[404] = not_found

    def signed_in(user: dict, **extra) -> dict:
        pair = auth.signed_in(user)
        return {"token": pair["access_token"], "access_token": pair["access_token"],
                "refresh_token": pair["refresh_token"], "expires_in": pair["expires_in"],
                "user": user_info(user, wm), **extra}

    # -- users
    @route("POST", "/api/user/register", Api(
        "Medical: create an account and sign in", auth="public", tag="compat_medical",
        body=obj({"username": string(pattern=USERNAME.pattern, description=USERNAME_RULE),
                  "password": string(min_length=PASSWORD_MIN, max_length=256),
                  "nickname": string(max_length=100), **PROFILE_IN},
                 required=["username", "password"], example={"username": "patient1", "password": "a long password"}),
        responses={200: wrapped(SIGNED_IN), **errors(400, 403, 409, 413, 503)}))
    def medical_register():
        body = wm.json_body()
        if body.get("nickname") is not None and body.get("full_name") is None:
            body["full_name"] = body.pop("nickname")
        body.pop("nickname", None)
        return signed_in(register_account(wm, body))

    @route("POST", "/api/user/login", Api(
        "Medical: sign in with a username and password", auth="public", tag="compat_medical",
        body=obj({"username": text(256), "password": text(256)}, required=["username", "password"],
                 example={"username": "patient1", "password": "a long password"}),
        responses={200: wrapped(SIGNED_IN), **errors(400, 401, 403, 413, 429, 503)}))
    def medical_login():
        return signed_in(password_login(wm, wm.json_body()))

    @route("POST", "/api/user/wx-login", Api(
        "Medical: sign in with a wx.login() code (the first time creates the account)", auth="public",
        tag="compat_medical", body=obj({"code": text(128)}, required=["code"], example={"code": "081Kq4Ga1..."}),
        responses={200: wrapped(SIGNED_IN), **errors(400, 401, 403, 413, 429, 502, 503)}))
    def medical_wx_login():
        wechat_login = wm.service("wechat_login")
        if wechat_login is None:
            raise ApiError(503, "wechat_not_configured", "WeChat login is off on this server (its wechat plugin is disabled).")
        user, created = wechat_login.sign_in(field(wm.json_body(), "code", max_len=128))
        return signed_in(user, created=created)

    @route("GET", "/api/user/info", Api(
        "Medical: the signed-in user", tag="compat_medical",
        responses={200: wrapped(USER_INFO), **errors(401, 503)}))
    def medical_user_info():
        return user_info(wm.require_user(), wm)

    @route("POST", "/api/user/logout", Api(
        "Medical: end this token's login (the token, and its refresh token, stop working)", tag="compat_medical",
        responses={200: wrapped(None), **errors(401, 503)}))
    def medical_logout():
        user = wm.require_user()
        family = auth.claims().get("fam")
        if family:
            auth.tokens.revoke_login(user["id"], family)
        return None

    # -- chat
    def chat_row(user: dict, client_session_id: str, message: dict) -> dict:
        images = message.get("images") or []
        return {"id": message["id"], "user_id": user["id"], "session_id": client_session_id,
                "sender": "user" if message["role"] == "user" else "ai", "content": message["content"],
                "type": "image" if images else "text",
                "file_url": medical.file_link(user["id"], images[0])[0] if images else None,
                "created_at": message["created_at"], "emotion": message.get("emotion")}

    def turn(user: dict, body: dict, images: list | None) -> dict:
        client_session_id = client_id(body, "session_id", required=False) or new_id()
        compat.refuse_too_long(body, "content", max_chars)
        content = field(body, "content", required=images is None, default="", max_len=max_chars, prose=True)
        session = compat.client_session(user, medical.agent, client_session_id, title_from(content or "📷"), create=True)
        reply = chat.begin(user, medical.agent, {"text": content, "session_id": session["id"],
                                                 **({"images": images} if images else {})}).reply()
        return chat_row(user, client_session_id, {"id": reply["message_id"], "role": "assistant",
                                                  "content": reply["content"], "created_at": reply["timestamp"],
                                                  "emotion": reply["emotion"]})

    chat_body = {"content": string(max_length=max_chars, description="the message"),
                 "session_id": string(max_length=128, description="the client's conversation id; none: a new one")}

    @route("POST", "/api/chat/text", Api(
        "Medical: a text message; the AI's reply as a chat-log row", tag="compat_medical",
        body=obj({**chat_body, "content": text(max_chars)}, required=["content"],
                 example={"content": "术后饮食要注意什么？", "session_id": "s1"}),
        responses={200: wrapped(CHAT_LOG), **errors(400, 401, 403, 409, 413, 429, 503)}))
    def medical_chat_text():
        return turn(wm.require_user(), wm.json_body(prose=("content",)), None)

    @route("POST", "/api/chat/image", Api(
        "Medical: a photo (an upload's file_id) with an optional question; the AI's reply", tag="compat_medical",
        body=obj({**chat_body, "file_id": text(64, description="from POST /api/chat/upload or /api/upload/image")},
                 required=["file_id"], example={"file_id": "3f2c...", "content": "这张化验单怎么看？", "session_id": "s1"}),
        responses={200: wrapped(CHAT_LOG), **errors(400, 401, 403, 404, 409, 413, 429, 503)}))
    def medical_chat_image():
        user, body, uploads = wm.require_user(), wm.json_body(prose=("content",)), wm.service("uploads")
        file_id = field(body, "file_id", max_len=64)
        if uploads is None or uploads.get(user["id"], file_id) is None:  # before a session is made for it
            raise ApiError(404, "upload_not_found", f"file_id: you have no file {file_id!r} (upload it first).")
        return turn(user, body, [file_id])

    @route("GET", "/api/chat/history", Api(
        "Medical: a conversation's messages, a page at a time (page 1: the newest), oldest first in a page",
        tag="compat_medical",
        query={"session_id": Param(string(max_length=128), required=True), **PAGING},
        responses={200: wrapped(obj({"session_id": string(), "messages": array(CHAT_LOG), "total": integer(0), **PAGED},
                                    required=["session_id", "messages", "total", "page", "page_size", "has_more"])),
                   **errors(400, 401, 503)}))
    def medical_chat_history():
        user = wm.require_user()
        client_session_id = client_id({"session_id": bottle.request.query.getunicode("session_id")}, "session_id")
        page, size = page_number("page", 1, 100_000), page_number("page_size", 20, PAGE_SIZE_MAX)
        # Looked up under this user: another user's session id is a conversation this one never had.
        session = compat.client_session(user, medical.agent, client_session_id, "", create=False)
        total = (session or {}).get("message_count") or 0
        messages, more = [], False
        if session is not None and (page - 1) * size < total:  # never walks past the first message
            messages, more = nth_page(lambda before: chat.sessions.messages(session["id"], limit=size, before=before),
                                      page, size)
        return {"session_id": client_session_id, "messages": [chat_row(user, client_session_id, m) for m in messages],
                "total": total, "page": page, "page_size": size, "has_more": more}

    @route("GET", "/api/chat/config", Api(
        "Medical: the dialog's settings (the agent's name, its model; never keys or URLs)", tag="compat_medical",
        responses={200: wrapped(obj({"role_name": string(), "model_name": string(), "agent": string(),
                                     "vision": boolean(description="photos can be asked about"),
                                     "max_message_chars": integer(1), "emotions": array(string())},
                                    required=["role_name", "model_name", "agent", "vision"])), **errors(401, 503)}))
    def medical_chat_config():
        wm.require_user()
        agent = wm.config["agents"][medical.agent]
        first = (agent["providers"] or [""])[0]
        model = (wm.config["providers"].get(first) or {}).get("model") or first
        return {"role_name": agent["title"] or medical.agent, "model_name": str(model), "agent": medical.agent,
                "vision": bool(agent["vision_providers"]), "max_message_chars": max_chars,
                "emotions": chat.reply_labels}

    # -- files
    def stored_file(user: dict, stored: dict) -> dict:
        url, expires_at = medical.file_link(user["id"], stored["id"])
        return {"file_id": stored["id"], "file_url": url, "expires_at": expires_at,
                **{key: stored[key] for key in ("content_type", "size", "width", "height", "created_at")}}

    def take_upload() -> dict:
        uploads = wm.service("uploads")
        if uploads is None:
            raise ApiError(404, "not_found", "This server takes no files (its uploads plugin is disabled).")
        user = wm.require_user()
        return stored_file(user, uploaded(uploads, user))

    upload_api = dict(tag="compat_medical", body=FILE_FORM,
                      responses={200: wrapped(FILE), **errors(400, 401, 413, 415, 429, 503)})

    @route("POST", "/api/chat/upload", Api("Medical: upload a photo for the chat (multipart, part `file`)", **upload_api))
    def medical_chat_upload():
        return take_upload()

    @route("POST", "/api/upload/image", Api("Medical: upload an image (multipart, part `file`)", **upload_api))
    def medical_upload_image():
        return take_upload()

    @route("GET", "/api/chat/upload/<file_id>", Api(
        "Medical: an upload's signed link (file_url), for <image src>", tag="compat_medical",
        responses={200: wrapped(FILE), **errors(401, 404, 503)}))
    def medical_upload_url(file_id):
        user, uploads = wm.require_user(), wm.service("uploads")
        found = uploads.get(user["id"], file_id) if uploads else None
        if found is None:
            raise ApiError(404, "upload_not_found", f"You have no file {file_id!r}.")
        return stored_file(user, found)

    @app.get("/api/chat/file/<file_id>", api=Api(
        "Medical: the photo behind a signed link (no token: the link is the key, until it expires)", auth="public",
        tag="compat_medical", query={"user": Param(string(), required=True), "expires": Param(string(), required=True),
                                     "sig": Param(string(), required=True)},
        responses={200: [download("image/jpeg", attachment=False), download("image/png", attachment=False)],
                   **errors(400, 403, 404, 503)}))
    def medical_file(file_id):
        def serve():
            owner = bottle.request.query.get("user") or ""
            medical.check_link(FILE_LINK, f"{owner}:{file_id}")
            uploads = wm.service("uploads")
            data = uploads.read(owner, file_id) if uploads else None
            if data is None:
                raise ApiError(404, "upload_not_found", "This file is gone.")
            bottle.response.content_type = uploads.content_type(owner, file_id)
            bottle.response.set_header("Cache-Control", "private, max-age=300")
            bottle.response.set_header("X-Content-Type-Options", "nosniff")
            return data
        return answered(DIALECT, serve)

    # -- the handbook
    def treasure(article: dict) -> dict:
        name = article.get("attachment") or article.get("cover")
        return {"id": article["id"], "title": article["title"], "summary": article["summary"], "tags": article["tags"],
                "file_url": medical.treasure_link(article["id"]) if name else None,
                "cover_url": medical.treasure_link(article["id"], "cover") if article.get("cover") else None,
                # An article is a file: its one date is when it last changed.
                "created_at": article["updated_at"], "updated_at": article["updated_at"]}

    @route("GET", "/api/treasure/list", Api(
        "Medical: the patients' handbook (the library's articles), a page at a time", tag="compat_medical",
        query=PAGING, responses={200: wrapped(obj({"items": array(TREASURE), **PAGED},
                                                  required=["items", "page", "page_size", "has_more"])),
                                 **errors(400, 401, 404, 503)}))
    def medical_treasure_list():
        wm.require_user()
        page, size = page_number("page", 1, 100_000), page_number("page_size", 20, PAGE_SIZE_MAX)
        library = medical.library()
        items, more = nth_page(lambda before: library.list("", medical.conf["treasure_tag"], size, before), page, size)
        return {"items": [treasure(a) for a in items], "page": page, "page_size": size, "has_more": more}

    @route("GET", "/api/treasure/<article_id>", Api(
        "Medical: a handbook entry, with its Markdown", tag="compat_medical",
        responses={200: wrapped(obj({**TREASURE["properties"], "content": string(description="Markdown")},
                                    required=TREASURE["required"] + ["content"])), **errors(401, 404, 503)}))
    def medical_treasure(article_id):
        wm.require_user()
        article = medical.article(article_id)
        return {**treasure(article), "content": article["body"]}

    @app.get("/api/treasure/<article_id>/file", api=Api(
        "Medical: a handbook entry's file behind a signed link (?part=cover: its cover)", auth="public",
        tag="compat_medical", query={"expires": Param(string(), required=True), "sig": Param(string(), required=True),
                                     "part": string(enum=["file", "cover"], default="file")},
        responses={200: download("*/*", attachment=False), **errors(400, 403, 404, 503)}))
    def medical_treasure_file(article_id):
        def serve():
            medical.check_link(TREASURE_LINK, article_id)
            article = medical.article(article_id)
            part = bottle.request.query.get("part") or "file"
            name = article.get("cover") if part == "cover" else article.get("attachment") or article.get("cover")
            files = medical.library().files
            if not name or not FILE_NAME.fullmatch(name) or (files / name).is_symlink() or not (files / name).is_file():
                raise ApiError(404, "file_not_found", f"Handbook entry {article_id!r} has no such file.")
            # As the v1 route serves it: the attachment a download, the cover shown. Never a page
            # on our origin (/docs is on it): not sniffed, and sandboxed unless an image or a PDF
            # (an .html or .svg attachment ran its script here).
            attachment = part != "cover" and name == article.get("attachment")
            served = bottle.static_file(name, root=str(files), download=name if attachment else False)
            served.set_header("X-Content-Type-Options", "nosniff")
            kind = mimetypes.guess_type(name)[0] or ""
            if not (kind in SHOWN_SAFELY or kind.startswith("image/") and kind != "image/svg+xml"):
                served.set_header("Content-Security-Policy", "sandbox")
            return served
        return answered(DIALECT, serve)

    # -- system
    @route("GET", "/api/system/health", Api(
        "Medical: is the server up (503 when its storage cannot be written); the server's time", auth="public",
        tag="compat_medical",
        responses={200: wrapped(obj({"status": string(), "time": string(format="date-time"), "version": string(),
                                     "uptime_s": number(), "scheduler_running": boolean()},
                                    required=["status", "time", "version"])), **errors(503)}))
    def medical_health():
        report = health_report(wm)
        if report["status"] != "ok":
            raise ApiError(503, "storage_unavailable", report["error"]["message"])
        return {"status": "ok", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "version": report["version"], "uptime_s": report["uptime_s"],
                "scheduler_running": report["scheduler_running"]}

    @route("GET", "/api/logs", Api(
        "Medical: the request log, newest first (admins): as GET /api/v1/admin/logs", auth="admin", tag="compat_medical",
        query={"status": string(pattern="^[1-5]([0-9][0-9]|xx)$"), "user": string(), "path": string(),
               "from": string(format="date-time"), "to": string(format="date-time"),
               "limit": integer(1, 500, default=50), "before": string(description="the `next` of the previous page")},
        responses={200: wrapped(obj({"items": array(LOG_LINE), "next": nullable(string())}, required=["items", "next"])),
                   **errors(400, 401, 403, 503)}))
    def medical_logs():
        require_admin(wm)
        requests = wm.service("request_log")
        if requests is None:
            raise ApiError(404, "not_found", "This server keeps no request log (its request_log plugin is disabled).")
        matches, since = filters(bottle.request.query)
        limit, before = page_args(50, 500)
        items, cursor = requests.page(matches, limit, before, since)
        return {"items": items, "next": cursor}
