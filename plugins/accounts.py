"""Accounts: register, login, refresh with rotation, logout, profile and settings (README, The API: Auth and Users)."""

import logging
import re
from datetime import date, datetime

import bottle

from wellmate import ApiError, Conflict, client_address, field, hookimpl, new_id, now_iso, zone_or_none
from wellmate_plugins.auth import (PASSWORD_MIN, USERNAME, USERNAME_RULE, account_disabled, check_password,
                                   hash_password, password_needs_rehash, public_profile, required)

log = logging.getLogger("wellmate.accounts")

GENDERS = ["male", "female", "other"]
PROFILE_FIELDS = ["full_name", "gender", "age", "birth_date"]


def profile_changes(body: dict, wm, user: dict) -> dict:
    """Validated profile fields from a register or settings body; ``user`` is the account with
    its settings as they will be (its time zone says which day "today" is for a birth date)."""
    changes = {}
    if "full_name" in body:
        changes["full_name"] = field(body, "full_name", required=False, default="", max_len=64)
    if "gender" in body:
        changes["gender"] = field(body, "gender", required=False, choices=GENDERS)
    if "age" in body:
        changes["age"] = field(body, "age", int, required=False, min=0, max=150)
    if "birth_date" in body:
        birth = field(body, "birth_date", required=False)
        if birth is not None:
            check_birth_date(birth, wm, user)
        changes["birth_date"] = birth
    # Stats, $age and the profile take the age from birth_date (wm.user_age). A birth date sent
    # alone drops the stored age, which would go stale (a year on, it contradicted a corrected
    # birth date and refused it); an age sent that contradicts the birth date would be stored
    # and never used, so it is refused.
    if changes.get("birth_date") and "age" not in body:
        changes["age"] = None
    profile = {**user, **changes}
    if "age" in body and profile.get("birth_date") and profile.get("age") is not None:
        derived = wm.user_age(profile)
        if profile["age"] != derived:
            raise ApiError(400, "invalid_field", f"age, birth_date: age {profile['age']} contradicts birth_date "
                                                 f"{profile['birth_date']} ({derived} today); send both, or age: null")
    return changes


def check_birth_date(birth: str, wm, user: dict) -> None:
    try:
        born = date.fromisoformat(birth) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", birth) else None
    except ValueError:  # 2012-02-30
        born = None
    if born is None:
        raise ApiError(400, "invalid_field", f"birth_date: {birth!r} is not a date; use YYYY-MM-DD, e.g. 1990-05-17")
    zone_name, zone = wm.user_zone(user)
    today = datetime.now(zone).date()
    if born > today:
        raise ApiError(400, "invalid_field",
                       f"birth_date: {birth} is after today ({today} in {zone_name or 'the server time zone'})")
    if born.year < 1900:
        raise ApiError(400, "invalid_field", f"birth_date: {birth} is before 1900")


def settings_changes(given, current: dict, wm) -> dict:
    """Merge a partial `settings` object into the user's, checking the keys Wellmate reads."""
    if not isinstance(given, dict):
        raise ApiError(400, "invalid_field", "settings: must be an object, e.g. {\"timezone\": \"Asia/Shanghai\"}")
    merged = dict(current)
    for key, value in given.items():
        if value is None:
            merged.pop(key, None)
            continue
        # The type first: a list or object as default_agent was looked up in a dict (unhashable, a 500).
        if not isinstance(value, (str, int, float, bool)) or len(str(value)) > 200:
            raise ApiError(400, "invalid_field", f"settings.{key}: must be a short string, number or true/false")
        if key == "timezone" and zone_or_none(value) is None:
            raise ApiError(400, "invalid_field", f"settings.timezone: unknown time zone {value!r}; use an IANA name such as Asia/Shanghai")
        if key == "default_agent" and value not in wm.config["agents"]:
            raise ApiError(400, "invalid_field", f"settings.default_agent: no agent {value!r}; agents: {', '.join(wm.config['agents'])}")
        merged[key] = value
    if len(merged) > 50:
        raise ApiError(400, "invalid_field", "settings: at most 50 keys")
    return merged


@hookimpl
def routes(app, wm):
    auth = required(wm, "accounts")
    tokens, throttle = auth.tokens, auth.throttle

    def tokens_for(user, status=200):
        """A password login's answer: the token pair, the user and a device token (LoginThrottle)."""
        bottle.response.status = status
        return auth.signed_in(user, device_token=tokens.device_token(user))

    @app.post("/api/v1/auth/register")
    def register():
        if not wm.config["auth"]["allow_registration"]:
            raise ApiError(403, "registration_closed", "This server does not accept new accounts (auth.allow_registration).")
        body = wm.json_body()
        username = field(body, "username", max_len=32)
        if not USERNAME.match(username):
            raise ApiError(400, "invalid_field", f"username: {USERNAME_RULE}")
        password = field(body, "password", max_len=256)
        if len(password) < PASSWORD_MIN:
            raise ApiError(400, "invalid_field", f"password: at least {PASSWORD_MIN} characters")
        user = {
            "id": new_id(), "username": username, "password_hash": hash_password(password),
            "full_name": "", "gender": None, "age": None, "birth_date": None, "role": "user",
            "settings": settings_changes({} if body.get("settings") is None else body["settings"], {}, wm), "disabled": False,
            "created_at": now_iso(),
        }
        user.update(profile_changes(body, wm, user))
        try:
            wm.storage.create_user(user)
        except Conflict:
            raise ApiError(409, "username_taken", f"The username {username!r} is taken; choose another.")
        return tokens_for(user, 201)

    @app.post("/api/v1/auth/login")
    def login():
        body = wm.json_body()
        username = field(body, "username", max_len=256)
        password = field(body, "password", max_len=256)
        address = client_address()
        user = wm.storage.find_user("username", username)
        # A device token this account gave is counted for that device alone (LoginThrottle);
        # without one, by the name tried, known or not: a throttled unknown name answers like a real one.
        device = tokens.device_of(field(body, "device_token", required=False, max_len=1000), user)
        throttle.check(username, address, device)
        # check_password runs the full hash even for an unknown user, so both cases take as long.
        if not check_password(password, user.get("password_hash") if user else None):
            throttle.failed(username, address, device)
            log.info("failed login for %r from %s", username, address)
            raise ApiError(401, "invalid_credentials", "Wrong username or password.")
        # Only now, so that it tells nothing to someone without the password.
        if user.get("disabled"):
            raise account_disabled()
        throttle.succeeded(username, device)
        if password_needs_rehash(user["password_hash"]):
            try:
                user = wm.storage.update_user(user["id"], {"password_hash": hash_password(password)}) or user
            except ApiError as busy:  # 503 server_busy: the login stands; the next one rehashes
                if busy.code != "server_busy":
                    raise
        return tokens_for(user)

    @app.post("/api/v1/auth/refresh")
    def refresh():
        body = wm.json_body()
        user_id, family = tokens.rotate(field(body, "refresh_token", max_len=200))
        user = wm.storage.get_user(user_id)
        if user is None or user.get("disabled"):
            raise ApiError(401, "invalid_refresh_token", "This account is disabled or gone; log in again.")
        return tokens.issue(user, family=family)

    @app.post("/api/v1/auth/logout")
    def logout():
        tokens.logout(field(wm.json_body(), "refresh_token", max_len=200))
        # Logging out twice, or with an unknown token, still ends with no session: 204 either way.
        bottle.response.status = 204
        return ""

    @app.get("/api/v1/users/profile")
    def profile():
        return public_profile(wm.require_user(), wm)

    @app.put("/api/v1/users/settings")
    def update_settings():
        user = wm.require_user()
        body = wm.json_body()
        unknown = set(body) - set(PROFILE_FIELDS) - {"settings"}
        if unknown:
            raise ApiError(400, "invalid_field", f"{', '.join(sorted(unknown))}: cannot be changed here; "
                                                 f"send any of {', '.join(PROFILE_FIELDS)}, settings")
        changes = {}
        if "settings" in body:
            changes["settings"] = settings_changes(body["settings"], user.get("settings") or {}, wm)
        changes.update(profile_changes(body, wm, {**user, **changes}))
        return public_profile(wm.storage.update_user(user["id"], changes) if changes else user, wm)
