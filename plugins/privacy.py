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
from wellmate import ApiError, Conflict, all_pages, client_address, field, hookimpl, now_iso
from wellmate_plugins.auth import (PASSWORD_MIN, USERNAME, USERNAME_RULE, check_password, hash_password,
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
        password = field(body, password_field, max_len=256)
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


def export_user(wm, user: dict) -> dict:
    """Everything stored about the user, as one JSON-able document."""
    storage = wm.storage
    profile = public_profile(user)
    for key, value in user.items():  # whatever else is stored (WeChat ids, disabled, ...)
        if key not in NOT_EXPORTED and key not in profile:
            profile[key] = value
    profile["has_password"] = bool(user.get("password_hash"))
    sessions = []
    for part in wm.pm.hook.export_user_data(user=user, wm=wm):  # the chat plugin's, for now
        for session in (part or {}).get("sessions", ()):
            sessions.append({**session, "messages": list(session["messages"])})

    def own(items):
        return [{key: value for key, value in item.items() if key != "user_id"} for item in items]

    reminders = own(all_pages(storage.list_reminders, user_id=user["id"]))
    for reminder in reminders:  # what was sent when: theirs too
        reminder["deliveries"] = own(all_pages(storage.list_deliveries, reminder_id=reminder["id"]))
    return {
        "export_version": EXPORT_VERSION,
        "exported_at": now_iso(),
        "server_version": wellmate.__version__,
        "profile": profile,
        "sessions": sessions,
        "records": own(all_pages(storage.list_records, user_id=user["id"])),
        "reminders": reminders,
    }


@hookimpl
def routes(app, wm):
    auth = required(wm, "privacy")

    @app.put("/api/v1/users/password")
    def set_password():
        user = wm.require_user()
        body = wm.json_body()
        password = field(body, "password", max_len=256)
        if len(password) < PASSWORD_MIN:
            raise ApiError(400, "invalid_field", f"password: at least {PASSWORD_MIN} characters")
        changes = {"password_hash": hash_password(password)}
        username = field(body, "username", required=False, max_len=32)
        if user.get("username"):
            if username and username.lower() != user["username"].lower():
                raise ApiError(400, "username_set", f"username: this account is already {user['username']!r}; "
                                                    f"it cannot be changed.")
        elif not username:
            raise ApiError(400, "missing_field", "username: required, to log in with the password "
                                                 f"({USERNAME_RULE})")
        else:
            if not USERNAME.match(username):
                raise ApiError(400, "invalid_field", f"username: {USERNAME_RULE}")
            if wm.storage.find_user("username", username) is not None:
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

    @app.get("/api/v1/users/export")
    def export():
        user = wm.require_user()
        document = export_user(wm, user)
        filename = f"wellmate-export-{document['exported_at'][:10]}.json"
        bottle.response.set_header("Content-Disposition", f'attachment; filename="{filename}"')
        bottle.response.set_header("Cache-Control", "no-store")  # health data: no copies in caches
        return document

    @app.delete("/api/v1/users/me")
    def delete_me():
        user = wm.require_user()
        confirm_identity(wm, user, wm.json_body(), "password")
        # Cascades to tokens, sessions, messages, records and reminders; with the user gone,
        # every access token of theirs is refused by require_user.
        wm.pm.hook.delete_user_data(user=user, wm=wm)
        wm.storage.delete_user(user["id"])
        log.info("user %s deleted their account", user["id"])
        bottle.response.status = 204
        return ""
