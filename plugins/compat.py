"""The earlier apps' clients (docs/compat.md): their old wire formats mapped onto the real chat
service, so a compat chat is a Wellmate chat turn (same storage, agents, safety, emotion) that the
normal API shows too. Each dialect is off until config gives it a key; the key is the first path
segment (`https://host/<key>/api/chat`), so an unchanged client only changes its base URL, and the
key is how one server tells the two `POST /api/chat` dialects apart. The third, the medical
assistant's, signs in with real tokens and lives in compat_medical.py; it shares this module's
session lookup (`Compat.client_session`) and error shaping (`answered`)."""

import hashlib
import hmac
import re
import threading

import bottle

from wellmate import (ApiError, ConfigError, Index, Setting, StorageUnavailable, field, hookimpl, new_id, now_iso,
                      storage_unavailable)
from wellmate_plugins._openapi import Api, Param, array, boolean, obj, string, text
from wellmate_plugins.chat import title_from

DIALECTS = ("miniprogram", "flask")
KEY = re.compile(r"^[A-Za-z0-9_-]{24,128}$")
KEY_RULE = "24-128 letters, digits, '_' or '-' (e.g. python -c 'import secrets; print(secrets.token_urlsafe(24))')"
HISTORY = 200  # messages a history answers at most (the newest): the old clients asked for no pages
CLIENT_ID = re.compile(r"^[\w.:@\-]{1,128}$")


def _dialect_settings(doc: str, household: bool) -> Setting:
    items = {
        "key": Setting("", "The secret first path segment of this dialect's routes (`/<key>/api/chat`); "
                           "empty: the dialect is off. " + KEY_RULE + "."),
        "agent": Setting("", "The agent its chats go to; empty: the first agent."),
    }
    if household:
        items["user"] = Setting("", "The username of the one Wellmate account this client speaks as "
                                    "(a single-user household); required when the key is set.")
    return Setting({}, doc, dict, items=items)


@hookimpl
def config_schema():
    return {"compat": {
        "miniprogram": _dialect_settings("The mini-program chat backend's API (POST /api/chat with user_id and "
                                         "session_id, GET /api/chat/history): the keys below.", household=False),
        "flask": _dialect_settings("The Flask chat assistant's API (POST /api/chat {message}, GET /api/history, "
                                   "GET /api/health), for one household: the keys below.", household=True),
    }}


@hookimpl
def register_collections(register):
    # "<dialect>:<sha256 of the client's user_id>" -> the Wellmate user made for it on first use.
    register("compat_users", indexes=[Index(("user_id",))])
    # "<Wellmate user id>:<client session id>" -> the Wellmate session: a session id is only ever
    # looked up under the user that sent it, so another user's id finds nothing of theirs.
    register("compat_sessions", indexes=[Index(("user_id",))])


class Compat:
    """The service ``compat``: the keyed dialects config turned on, by key; the users and
    sessions the clients of every dialect name."""

    def __init__(self, wm):
        self.wm = wm
        self.dialects = {}  # key -> (dialect, its config)
        for dialect in DIALECTS:
            conf = wm.config["compat"][dialect]
            if not conf.get("key"):
                continue
            where = f"compat.{dialect}"
            if not KEY.match(conf["key"]):
                raise ConfigError(f"{where}.key: {KEY_RULE}")
            if conf["key"] in self.dialects:
                raise ConfigError(f"{where}.key: the same as compat.{self.dialects[conf['key']][0]}.key; each dialect "
                                  f"needs its own key (it is how POST /<key>/api/chat knows which client speaks)")
            agent = conf.get("agent") or next(iter(wm.config["agents"]))
            if agent not in wm.config["agents"]:
                raise ConfigError(f"{where}.agent: no agent named {agent!r}; agents: {', '.join(wm.config['agents'])}")
            if dialect == "flask" and not conf.get("user"):
                raise ConfigError(f"{where}.user: the username the Flask client speaks as (it sends no user)")
            self.dialects[conf["key"]] = (dialect, {**conf, "agent": agent})
        self.conf = {dialect: conf for dialect, conf in self.dialects.values()}  # of the dialects that are on
        self._lock = threading.Lock()  # one first message makes one user and one session, not two

    def dialect(self, key: str) -> tuple[str, dict]:
        """The dialect whose key is ``key``; a 404, as for any missing route, for any other."""
        for known, found in self.dialects.items():
            if hmac.compare_digest(known.encode(), key.encode()):
                return found
        raise no_such_route()

    def client_user(self, dialect: str, client_user_id: str, create: bool = True) -> dict | None:
        """The Wellmate user for a client's ``user_id``, made on first use if ``create`` (no
        username, no password: it is reached through this dialect's key only)."""
        storage, accounts = self.wm.storage, self.wm.service("accounts")
        mapping_id = f"{dialect}:{hashlib.sha256(client_user_id.encode()).hexdigest()}"
        with self._lock:
            found = storage.get("compat_users", mapping_id)
            user = found and accounts.get(found["user_id"])
            if user is None and create:
                if not self.wm.config["auth"]["allow_registration"]:
                    raise ApiError(403, "registration_closed",
                                   "This server does not accept new accounts (auth.allow_registration).")
                # The lookup first: a kill between the writes leaves it naming no account (made
                # again next time), never an account nothing leads to.
                user_id = new_id()
                storage.put("compat_users", {"id": mapping_id, "user_id": user_id})
                user = accounts.create({"id": user_id, "username": None, "password_hash": None, "full_name": "",
                                        "gender": None, "age": None, "birth_date": None, "role": "user",
                                        "settings": {}, "disabled": False, "created_at": now_iso(),
                                        "compat": dialect})
        if user and user.get("disabled"):
            raise ApiError(403, "account_disabled", "This user's account is disabled.")
        return user

    def household_user(self, conf: dict) -> dict:
        user = self.wm.service("accounts").find_by_username(conf["user"])
        if user is None or user.get("disabled"):
            raise ApiError(503, "compat_user_missing", f"compat.flask.user: no usable account named {conf['user']!r} "
                                                       "on this server; create it (POST /api/v1/auth/register).")
        return user

    def client_session(self, user: dict, agent: str, client_session_id: str, title: str, create: bool) -> dict | None:
        """The Wellmate session this user's client calls ``client_session_id``; a new one if
        ``create`` and there is none (or the user deleted it through the normal API)."""
        chat, storage = self.wm.service("chat"), self.wm.storage
        mapping_id = f"{user['id']}:{client_session_id}"
        with self._lock:
            found = storage.get("compat_sessions", mapping_id)
            session = found and chat.sessions.get(found["session_id"])
            if session is None and create:  # the lookup first, as for users
                session_id = new_id()
                storage.put("compat_sessions", {"id": mapping_id, "user_id": user["id"], "session_id": session_id})
                session = chat.sessions.create(user["id"], agent, title, session_id)
        return session

    def latest_session(self, user: dict, agent: str, title: str | None) -> dict | None:
        """The household's conversation: its most recent session with the agent, where the in-app
        reminders arrive too (plugins/delivery_inapp.py); a new one if ``title`` and none."""
        chat = self.wm.service("chat")
        with self._lock:
            sessions, _ = chat.sessions.list(user["id"], agent=agent, limit=1)
            if not sessions and title is not None:
                sessions = [chat.sessions.create(user["id"], agent, title)]
        return sessions[0] if sessions else None

    def refuse_too_long(self, body, name: str, limit: int) -> None:
        """The chat API's own refusal of a message over ``limit`` characters (`Chat.refuse_too_long`): one whose start
        or end is a crisis gets the crisis reply's words, here as there; the dialects' `field` check, read first,
        said only "at most N characters" to a long goodbye letter (the session-15 review)."""
        chat = self.wm.service("chat")
        if chat is not None:
            chat.refuse_too_long(body.get(name) if isinstance(body, dict) else None, limit, name)

    def turn(self, user: dict, agent: str, session: dict, message: str) -> dict:
        return self.wm.service("chat").begin(user, agent, {"text": message, "session_id": session["id"]}).reply()

    def messages(self, session: dict | None) -> list[dict]:
        if session is None:
            return []
        messages, _ = self.wm.service("chat").sessions.messages(session["id"], limit=HISTORY)
        return messages


@hookimpl
def register_services(register):
    # Always built (a few dicts): the medical dialect (compat_medical.py) keeps its sessions here too.
    register("compat", Compat)


@hookimpl
def delete_user_data(user, wm):
    wm.storage.delete_where("compat_sessions", {"user_id": user["id"]})
    wm.storage.delete_where("compat_users", {"user_id": user["id"]})


def no_such_route() -> ApiError:
    """What a wrong key answers: the 404 of a route that does not exist (it tells no key apart)."""
    return ApiError(404, "not_found", f"No such endpoint: {bottle.request.method} {bottle.request.path}.")


# An error as each dialect's client reads it (Wellmate's own code is in each). The mini-program
# read `detail` (and the status); the Flask page read `success` and `error`; the medical
# assistant's envelope is `{code, message, data}` (docs/compat.md: our reading of its design).
ERROR_SHAPES = {
    "miniprogram": lambda e: {"detail": e.message, "error": {"code": e.code, "message": e.message}},
    "flask": lambda e: {"success": False, "error": e.message, "code": e.code},
    "medical": lambda e: {"code": e.status_code, "message": e.message, "data": None, "error": e.code},
}


def answered(dialect: str, handler, *args):
    """``handler(*args)``, its errors (a full disk's 503 too) in the dialect's shape with
    Wellmate's status and headers (Retry-After, WWW-Authenticate)."""
    try:
        return handler(*args)
    except StorageUnavailable as e:
        error = storage_unavailable(e)
    except ApiError as e:
        error = e
    bottle.response.status = error.status_code
    for name in ("Retry-After", "WWW-Authenticate"):
        if error.headers.get(name):
            bottle.response.set_header(name, error.headers[name])
    return ERROR_SHAPES[dialect](error)


def _in_dialect(compat, key: str, wanted: tuple, handler):
    """Run ``handler(dialect, conf)`` for the dialect of ``key`` if it is one of ``wanted``; its
    errors in that dialect's shape."""
    dialect, conf = compat.dialect(key)
    if dialect not in wanted:  # a route of the other dialect: the same 404 as a wrong key
        raise no_such_route()
    return answered(dialect, handler, dialect, conf)


KEY_PARAM = {"key": string(min_length=24, max_length=128, description="compat.<dialect>.key")}
MP_MESSAGE = obj({"role": string(enum=["user", "agent"]), "content": string(),
                  "timestamp": string(format="date-time"), "emotion": string()},
                 required=["role", "content", "timestamp"], title="CompatMiniprogramMessage")
FLASK_MESSAGE = obj({"role": string(enum=["user", "assistant"]), "content": string(),
                     "timestamp": string(format="date-time"), "is_scheduled": boolean(description="a reminder")},
                    required=["role", "content", "timestamp", "is_scheduled"], title="CompatFlaskMessage")
# The dialects' errors (`_answer_error`), and Wellmate's own for a wrong key (404) or a full disk (503).
COMPAT_ERROR = obj({"error": {"description": "Flask: the message (a string); otherwise `{code, message}`"},
                    "success": boolean(description="Flask: false"), "code": string(description="Flask: the error code"),
                    "detail": string(description="mini-program: the message")},
                   required=["error"], title="CompatError")


COMPAT_ERROR_WHEN = {
    400: "a field is missing or not valid (`detail` / `error` names it)",
    403: "mini-program: a new user_id while auth.allow_registration is off, or its account disabled",
    404: "no dialect has this key, or the key's dialect has no such route",
    409: "turn_in_progress: this session is still answering",
    413: "the body is over server.max_body_kb",
    429: "too_many_turns: a user's turns at once",
    503: "storage full or read-only; chat: providers_unavailable, server_busy; Flask: compat.flask.user is no account",
}


def compat_errors(*statuses: int, body: dict = COMPAT_ERROR, when: dict = COMPAT_ERROR_WHEN) -> dict:
    """``responses`` entries for these error statuses, each with the dialect's error ``body``."""
    return {status: (when[status], body) for status in statuses}


@hookimpl
def routes(app, wm):
    compat = wm.service("compat")
    if compat is None or not compat.dialects:  # no keyed dialect is on: none of these routes exist
        return
    on = set(compat.conf)
    max_chars = wm.config["chat"]["max_message_chars"]

    def mp_chat(body):
        compat.refuse_too_long(body, "message", max_chars)  # before the client's user is made: a refusal makes nothing
        user = compat.client_user("miniprogram", client_id(body, "user_id"))
        client_session_id = client_id(body, "session_id", required=False) or new_id()
        message = field(body, "message", max_len=max_chars, prose=True)
        conf = compat.conf["miniprogram"]
        session = compat.client_session(user, conf["agent"], client_session_id, title_from(message), create=True)
        reply = compat.turn(user, conf["agent"], session, message)
        return {"message_id": reply["message_id"], "content": reply["content"], "emotion": reply["emotion"],
                "timestamp": reply["timestamp"], "session_id": client_session_id}

    def flask_chat(body):
        conf = compat.conf["flask"]
        user = compat.household_user(conf)
        compat.refuse_too_long(body, "message", max_chars)
        message = field(body, "message", max_len=max_chars, prose=True)
        session = compat.latest_session(user, conf["agent"], title_from(message))
        reply = compat.turn(user, conf["agent"], session, message)
        return {"success": True, "reply": reply["content"], "emotion": reply["emotion"]}

    @app.post("/<key>/api/chat", api=Api(
        "Compat: a chat message from an earlier app's client",
        description="The dialect is the key's (docs/compat.md). Mini-program: `{user_id, session_id, message, "
                    "timestamp?, history?}` -> `{message_id, content, emotion, timestamp, session_id}`. "
                    "Flask: `{message}` -> `{success, reply}`.",
        auth="public", tag="compat", params=KEY_PARAM,
        body=obj({"message": text(max_chars), "user_id": string(max_length=128), "session_id": string(max_length=128),
                  "timestamp": string(), "history": array(obj({}))},
                 example={"user_id": "u1", "session_id": "s1", "message": "I slept badly again"}),
        responses={200: obj({"message_id": string(), "content": string(), "emotion": string(),
                             "timestamp": string(format="date-time"), "session_id": string(),
                             "success": boolean(), "reply": string()}, title="CompatChatReply"),
                   **compat_errors(400, 403, 404, 409, 413, 429, 503)}))
    def compat_chat(key):
        def handle(dialect, conf):
            body = wm.json_body(prose=("message",))
            return mp_chat(body) if dialect == "miniprogram" else flask_chat(body)
        return _in_dialect(compat, key, DIALECTS, handle)

    if "miniprogram" in on:
        @app.get("/<key>/api/chat/history", api=Api(
            "Compat (mini-program): a session's messages, oldest first",
            auth="public", tag="compat", params=KEY_PARAM,
            query={"user_id": Param(string(max_length=128), required=True),
                   "session_id": Param(string(max_length=128), required=True)},
            responses={200: obj({"session_id": string(), "messages": array(MP_MESSAGE)},
                                required=["session_id", "messages"]), **compat_errors(400, 403, 404, 503)}))
        def compat_mp_history(key):
            def handle(dialect, conf):
                query = bottle.request.query
                client = {"user_id": query.getunicode("user_id"), "session_id": query.getunicode("session_id")}
                user = compat.client_user("miniprogram", client_id(client, "user_id"), create=False)
                client_session_id = client_id(client, "session_id")
                session = user and compat.client_session(user, conf["agent"], client_session_id, "", create=False)
                return {"session_id": client_session_id, "messages": [
                    {"role": "agent" if m["role"] == "assistant" else "user", "content": m["content"],
                     "timestamp": m["created_at"], **({"emotion": m["emotion"]} if m.get("emotion") else {})}
                    for m in compat.messages(session)]}
            return _in_dialect(compat, key, ("miniprogram",), handle)

    if "flask" in on:
        @app.get("/<key>/api/history", api=Api(
            "Compat (Flask): the household's conversation, oldest first; reminders are is_scheduled",
            auth="public", tag="compat", params=KEY_PARAM,
            responses={200: obj({"success": boolean(), "messages": array(FLASK_MESSAGE)},
                                required=["success", "messages"]), **compat_errors(404, 503)}))
        def compat_flask_history(key):
            def handle(dialect, conf):
                session = compat.latest_session(compat.household_user(conf), conf["agent"], None)
                return {"success": True, "messages": [
                    {"role": m["role"], "content": m["content"], "timestamp": m["created_at"],
                     "is_scheduled": bool(m.get("reminder_id"))} for m in compat.messages(session)]}
            return _in_dialect(compat, key, ("flask",), handle)

        @app.get("/<key>/api/health", api=Api(
            "Compat (Flask): is the server up, is the reminder scheduler running",
            auth="public", tag="compat", params=KEY_PARAM,
            responses={200: obj({"status": string(), "scheduler_running": boolean()},
                                required=["status", "scheduler_running"]), **compat_errors(404, 503)}))
        def compat_flask_health(key):
            def handle(dialect, conf):
                scheduler = wm.service("scheduler")
                return {"status": "ok", "scheduler_running": bool(scheduler and scheduler.running)}
            return _in_dialect(compat, key, ("flask",), handle)


def client_id(body: dict, name: str, required: bool = True) -> str | None:
    """A client's user or session id: a string, or a number (some clients sent their ids so)."""
    if isinstance(body.get(name), int) and not isinstance(body.get(name), bool):
        body = {name: str(body[name])}
    value = field(body, name, required=required, max_len=128)
    if value is not None and not CLIENT_ID.match(value):
        raise ApiError(400, "invalid_field", f"{name}: 1-128 letters, digits, '_', '.', ':', '@' or '-'")
    return value
