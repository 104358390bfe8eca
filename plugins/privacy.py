"""What a user controls about their own account: their password, a copy of all their data, and
deleting it all.

    PUT    /api/v1/users/password   set or change the password (and a username if there is none)
    GET    /api/v1/users/export     everything stored about the caller, as one JSON document
    DELETE /api/v1/users/me         remove the account and everything of it

Changing the password and deleting the account are what a stolen token must not be able to do,
so both ask for proof of identity besides the token: the current password, or for an account
that has none (WeChat-only) a fresh ``wx.login()`` code or a token from a login in the last
five minutes. A refreshed token does not count: a refresh token proves nothing about who holds it.
"""

import logging
import time

import bottle

import wellmate
from wellmate import ApiError, Conflict, all_pages, client_address, field, hookimpl, json_dumps, now_iso
from wellmate_plugins._openapi import Api, Content, obj, string
from wellmate_plugins.accounts import accounts_for
from wellmate_plugins.auth import (PASSWORD_MIN, SIGNED_IN, USERNAME_RULE, check_password, hash_password,
                                   username_form, username_problem,
                                   public_profile, required)

log = logging.getLogger("wellmate.privacy")

RECENT_LOGIN_SECONDS = 5 * 60
EXPORT_VERSION = 1
NOT_EXPORTED = {"id", "password_hash", "tokens_valid_after", "revoked_logins"}  # id is in the profile as uuid


def confirm_identity(wm, user: dict, body: dict, password_field: str) -> None:
    """Raise a 403 unless the request proves it comes from the account's owner (see the module)."""
    auth = wm.service("auth")
    throttle, claims = auth.throttle, auth.claims()
    address = client_address()
    if user.get("password_hash"):
        password = field(body, password_field, max_len=256, exact=True)
        # Counted per login (the token's family), as a device token is counted per device: by the
        # name, an attacker's failed logins made the owner's password change a 429, just when it
        # is needed. A stolen token (refreshed or not) still gets max_failures guesses a window.
        login = "login:" + str(claims.get("fam") or user["id"])
        throttle.check(device=login)
        if not check_password(password, user["password_hash"]):
            throttle.failed(device=login)
            raise ApiError(403, "wrong_password", f"{password_field}: that is not this account's password.")
        throttle.succeeded(None, login)
        return
    code = field(body, "code", required=False, max_len=128)
    if code:
        client = wm.service("wechat")
        if client is None:
            raise ApiError(503, "wechat_not_configured", "WeChat login is not enabled on this server.")
        throttle.check(None, address)
        try:
            openid = client.openid_for(code)
        except ApiError as e:
            if e.status_code != 401:
                raise
            throttle.failed(None, address)
            # 403, not 401: the access token is fine, and a 401 would make clients log out.
            raise ApiError(403, e.code, e.message)
        if openid != user.get("wx_openid"):
            raise ApiError(403, "wrong_wechat_account", "code: this login code belongs to another WeChat user.")
        return
    auth_time = claims.get("auth_time")
    if isinstance(auth_time, (int, float)) and time.time() - auth_time <= RECENT_LOGIN_SECONDS:
        return
    raise ApiError(403, "recent_login_required",
                   "This needs proof that it is you: send a fresh wx.login() code as `code`, "
                   "or log in again and retry within 5 minutes.")


SECTIONS = ("sessions", "records", "reminders")  # the export's order since version 1; others follow
CHUNK = 64 * 1024  # the streamed export is sent in pieces of about this many characters
EXPORT_FAILED = ("\n!! The export failed half-way: this document is incomplete and is not JSON. "
                 "Try again; if it fails again, the server's log says why.\n")


def export_user(wm, user: dict) -> dict:
    """Everything stored about the user, as one document whose lists may be iterators (read a
    page at a time as `stream_json` writes them): the profile, then each plugin's sections
    (``export_user_data``)."""
    profile = public_profile(user)
    for key, value in user.items():  # whatever else is stored (WeChat ids, disabled, ...)
        if key not in NOT_EXPORTED and key not in profile:
            profile[key] = value
    profile["has_password"] = bool(user.get("password_hash"))
    sections = {}
    for answer in reversed(wm.pm.hook.export_user_data(user=user, wm=wm)):  # the order plugins load in
        for name, value in (answer or {}).items():
            if name in sections or name in ("export_version", "exported_at", "server_version", "profile"):
                raise ValueError(f"export_user_data: two plugins export a section {name!r}")
            sections[name] = value
    ordered = {name: sections.pop(name) for name in SECTIONS if name in sections}
    return {"export_version": EXPORT_VERSION, "exported_at": now_iso(), "server_version": wellmate.__version__,
            "profile": profile, **ordered, **sections}


def json_pieces(value):
    """``value`` as JSON text in pieces, the same text as ``json_dumps(value)`` with every
    iterator in it written as a list: a generator of 100,000 messages is never held whole."""
    if isinstance(value, dict):
        yield "{"
        for n, (key, item) in enumerate(value.items()):
            yield ("," if n else "") + json_dumps(str(key)) + ":"
            yield from json_pieces(item)
        yield "}"
    elif isinstance(value, (list, tuple)) or (hasattr(value, "__next__") and not isinstance(value, (str, bytes))):
        yield "["
        for n, item in enumerate(value):
            if n:
                yield ","
            yield from json_pieces(item)
        yield "]"
    else:
        yield json_dumps(value)


def stream_json(document, what: str):
    """The document as UTF-8 pieces of about CHUNK characters, for a streamed response. If
    reading fails half-way the document is not finished: it ends with EXPORT_FAILED, which no
    JSON reader takes, and the connection is dropped before the end of the chunked body, so
    nobody mistakes a part for the whole."""
    buffer, size = [], 0
    try:
        for piece in json_pieces(document):
            buffer.append(piece)
            size += len(piece)
            if size >= CHUNK:
                yield "".join(buffer).encode("utf-8")
                buffer, size = [], 0
        yield "".join(buffer).encode("utf-8")
    except Exception:
        log.exception("%s failed half-way", what)
        yield ("".join(buffer) + EXPORT_FAILED).encode("utf-8")
        raise


THROTTLED = "too many wrong passwords: wait for Retry-After"


@hookimpl
def routes(app, wm):
    auth = required(wm, "privacy")
    accounts = accounts_for(wm, "privacy")

    @app.put("/api/v1/users/password", api=Api(
        "Set a new password (and a username, for a WeChat-only account); every other login ends",
        body=obj({"password": string(min_length=PASSWORD_MIN, max_length=256),
                  "current_password": string(max_length=256, description="required when the account has a password"),
                  "code": string(max_length=128, description="a WeChat-only account: a fresh wx.login() code"),
                  "username": string(max_length=32, description=USERNAME_RULE)},
                 required=["password"], example={"current_password": "correct horse", "password": "battery staple"}),
        responses={200: SIGNED_IN}, errors={403: "wrong_password", 409: "username_taken", 429: THROTTLED}))
    def set_password():
        user = wm.require_user()
        body = wm.json_body()
        password = field(body, "password", max_len=256, exact=True)
        if len(password) < PASSWORD_MIN:
            raise ApiError(400, "invalid_field", f"password: at least {PASSWORD_MIN} characters")
        changes = {"password_hash": hash_password(password)}
        username = username_form(field(body, "username", required=False, max_len=256))  # the rule says what is wrong
        if user.get("username"):
            if username and username.lower() != user["username"].lower():
                raise ApiError(400, "username_set", f"username: this account is already {user['username']!r}; "
                                                    f"it cannot be changed.")
        elif not username:
            raise ApiError(400, "missing_field", "username: required, to log in with the password "
                                                 f"({USERNAME_RULE})")
        else:
            if problem := username_problem(username):
                raise ApiError(400, "invalid_field", f"username: {problem}")
            if accounts.find_by_username(username) is not None:
                raise ApiError(409, "username_taken", f"The username {username!r} is taken; choose another.")
            changes["username"] = username
        confirm_identity(wm, user, body, "current_password")
        try:
            # Every other login of the account ends; the caller gets a new pair below.
            user = auth.tokens.revoke_all(user["id"], **changes)
        except Conflict:
            raise ApiError(409, "username_taken", f"The username {username!r} is taken; choose another.")
        log.info("user %s set their password", user["id"])
        return auth.signed_in(user)

    @app.get("/api/v1/users/export", api=Api(
        "Everything stored about the user, as one JSON file (a download)",
        responses={200: Content("application/json", obj({"export_version": {"type": "integer"}, "exported_at": string(),
                                                         "server_version": string(), "profile": obj()},
                                                        required=["export_version", "exported_at", "profile"]),
                                headers={"Content-Disposition": 'attachment; filename="wellmate-export-2026-01-05.json"'})}))
    def export():
        user = wm.require_user()
        document = export_user(wm, user)
        filename = f"wellmate-export-{document['exported_at'][:10]}.json"
        bottle.response.content_type = "application/json"
        bottle.response.set_header("Content-Disposition", f'attachment; filename="{filename}"')
        bottle.response.set_header("Cache-Control", "no-store")  # health data: no copies in caches
        # Streamed: a user with 100,000 messages costs the server a page of them, not the whole
        # document (154 MB of RSS when it was built in memory; bench/growth prints the peak).
        return stream_json(document, f"the export of user {user['id']}")

    @app.delete("/api/v1/users/me", api=Api(
        "Delete the account and everything stored about it",
        body=obj({"password": string(max_length=256), "code": string(max_length=128, description="a WeChat-only account")},
                 example={"password": "correct horse"}),
        responses={204: None}, errors={403: "wrong_password", 429: THROTTLED}))
    def delete_me():
        user = wm.require_user()
        confirm_identity(wm, user, wm.json_body(), "password")
        # Every plugin deletes what it keeps of theirs (tokens, sessions, messages, records,
        # reminders), then the account goes: every access token of theirs is refused by require_user.
        accounts.delete(user)
        log.info("user %s deleted their account", user["id"])
        bottle.response.status = 204
        return ""
