"""Accounts: the users, and register, login, refresh with rotation, logout, profile and settings
(docs/api.md: Auth and Users).

The ``users`` collection is this plugin's: every other plugin creates, changes, finds and deletes
users through its service ``accounts`` (`Accounts`), which tells the others what changed (the
`user_changed` hook) and has each delete what it keeps for a user (`delete_user_data`) before the
account goes. The routes that take a password (register, login, refresh, logout) need the auth
plugin; without it (another plugin signs requests in) the service, profile and settings remain.
"""

import logging
import re
from collections import Counter
from datetime import date, datetime, timedelta

import bottle

from wellmate import (ApiError, Conflict, Index, StorageUnavailable, all_pages, client_address, field, hookimpl,
                      new_id, now_iso, zone_or_none)
from wellmate_plugins._openapi import Api, obj, schema, string, text
from wellmate_plugins.auth import (PASSWORD_MIN, PROFILE, SIGNED_IN, TOKEN_PAIR, USERNAME, USERNAME_RULE, account_disabled,
                                   check_password, hash_password, needed, username_form, password_needs_rehash, public_profile,
                                   valid_username)

log = logging.getLogger("wellmate.accounts")

GENDERS = ["male", "female", "other"]
PROFILE_FIELDS = ["full_name", "gender", "age", "birth_date"]
USERS = "users"
# The username in lower case, kept on each user so that "Alice" and "alice" are one name (a unique
# key) and a login finds either in one lookup, whatever the number of users: the scan of every
# user before (issue 13) grew with them and answered early accounts sooner than unknown names.
# Never leaves `Accounts`.
USERNAME_KEY = "username_key"
FOUND_BY = ("wx_openid", "wx_unionid")  # the other unique fields a user is found by (`Accounts.find_by`)
# How many of the users were created in each quarter hour of a UTC day, one document a day
# (``day``, ``quarters``: {"0".."95": n}), for the admin's "new users": counting the users since a
# date read every one of them, 480-640 ms when 50,000 were new (a quarter hour: every time zone's
# offset is a whole number of them, so a local day is too). Written with each create and delete;
# "counted" marks that the users of a folder from before it are counted (`Accounts._backfill`).
CREATED = "users_created"
QUARTER = timedelta(minutes=15)


@hookimpl
def register_collections(register):
    # Newest first for the admin's list; the unique keys are the lookups; role, disabled and
    # password_hash are counted for the admin's stats (counters, not a read of every user).
    register(USERS, indexes=[Index((), "created_at"), ("role",), ("disabled",), ("password_hash",)],
             unique=[(USERNAME_KEY,), *((name,) for name in FOUND_BY)])
    register(CREATED, indexes=[Index((), "day")])


class Accounts:
    """The service ``accounts``: the one way to create, change, find and delete users.

    Users are dicts with a string ``id`` (`new_id()`), ``username`` (None for a WeChat-only
    account), ``created_at`` and whatever plugins keep on them (``password_hash``, ``settings``,
    ``wx_openid``, ...). Usernames are unique whatever their case (Conflict on `create` and
    `update`), as are ``wx_openid`` and ``wx_unionid``."""

    def __init__(self, wm):
        self.wm, self.storage = wm, wm.storage
        self._backfill()

    def age(self, user: dict) -> int | None:
        """The user's age in whole years: from birth_date when given (as of today in the user's
        time zone), else the age they gave, else None. Stats, $age and the profile use this one
        number: a child with only a birth_date was graded as an adult."""
        birth = user.get("birth_date")
        if birth:
            try:
                born = date.fromisoformat(birth)
            except ValueError:  # stored before birth dates were checked
                return user.get("age")
            return age_on(born, datetime.now(self.wm.user_zone(user)[1]).date())
        return user.get("age")

    def get(self, user_id) -> dict | None:
        return _out(self.storage.get(USERS, user_id)) if isinstance(user_id, str) else None

    def find_by_username(self, name) -> dict | None:
        """The user whose username is ``name`` in any case and width (`username_form`); None if there is none.
        A name kept as typed before session 15 (ｂｏｂ, unfolded) is found as typed first: where both ｂｏｂ１ and
        bob1 were registered before names were folded, each still logs in as itself (the session-15 review)."""
        if not isinstance(name, str) or not name:
            return None
        folded = username_form(name).lower()
        as_typed = self._find(USERNAME_KEY, name.lower()) if folded != name.lower() else None
        return as_typed or self._find(USERNAME_KEY, folded)

    def find_by(self, field: str, value) -> dict | None:
        """The user whose ``field`` (``wx_openid`` or ``wx_unionid``) is ``value``."""
        if field not in FOUND_BY:
            raise ValueError(f"find_by: users are found by {', '.join(FOUND_BY)} (or find_by_username), not {field!r}")
        return None if value is None else self._find(field, value)

    def _find(self, field: str, value) -> dict | None:
        found, _ = self.storage.find(USERS, {field: value}, limit=1)
        return _out(found[0]) if found else None

    def list(self, limit: int = 50, before: str | None = None) -> tuple[list, str | None]:
        """A page of users, newest first (a storage page: pass the cursor back as ``before``)."""
        users, cursor = self.storage.find(USERS, order="-created_at", limit=limit, before=before)
        return [_out(user) for user in users], cursor

    def count(self) -> int:
        return self.storage.count(USERS)

    def counts(self, since: str) -> dict:
        """The accounts by kind, from the counts of the collection's indexes, and how many were
        created at or after ``since`` (an ISO time), from the counters."""
        count = lambda where=None: self.storage.count(USERS, where)  # noqa: E731
        total = count()
        return {"total": total, "admins": count({"role": "admin"}), "disabled": count({"disabled": True}),
                "wechat": total - count({"wx_openid": None}), "with_password": total - count({"password_hash": None}),
                "new": self.created_since(since)}

    def created_since(self, since: str) -> int:
        """How many users were created at or after ``since`` (an ISO time): the counters of the
        quarter hours after the one ``since`` falls in, and the users of that one, read."""
        day, quarter = _quarter(since)
        counters = all_pages(self.storage.find, 400, collection=CREATED, order="day", start=day)
        end = now_iso(datetime.fromisoformat(day + "T00:00:00+00:00") + (quarter + 1) * QUARTER)
        return (sum(n for doc in counters for q, n in doc["quarters"].items() if doc["day"] > day or int(q) > quarter)
                + len(all_pages(self.storage.find, 500, collection=USERS, order="created_at", start=since, end=end)))

    def _count_created(self, by_day: dict[str, Counter], sign: int = 1) -> None:
        """Add (sign 1) or take away (-1) users counted by `_by_quarter` to the counters. The
        account is stored or deleted by then: a counter that cannot be written (the disk filled
        between the two writes) is logged and left a user off, not answered as a 503 that would
        say the account was not stored."""
        for day, counts in by_day.items():
            def add(doc, day=day, counts=counts):
                doc = doc or {"id": day, "day": day, "quarters": {}}
                for quarter, n in counts.items():
                    doc["quarters"][quarter] = max(0, doc["quarters"].get(quarter, 0) + sign * n)
                return doc
            try:
                self.storage.update(CREATED, day, add)
            except StorageUnavailable as e:
                log.warning("the new users of %s are counted a user off: %s", day, e)

    def _backfill(self) -> None:
        """Count the users of a data folder from before the counters, once. Until the mark is
        written each start counts them afresh and stores the sums, not additions to them, so a
        kill half-way counts no one twice."""
        if self.storage.get(CREATED, "counted") is not None:
            return
        by_day, before = {}, None
        while True:
            page, before = self.storage.find(USERS, order="created_at", limit=500, before=before)
            _by_quarter(page, by_day)
            if before is None:
                break
        for day, counts in by_day.items():
            self.storage.put(CREATED, {"id": day, "day": day, "quarters": dict(counts)})
        self.storage.put(CREATED, {"id": "counted", "at": now_iso()})

    def create(self, user: dict) -> dict:
        """Store a new user (Conflict if its username, in any case, or a WeChat id is taken), then
        call `user_changed` with ``before`` None."""
        stored = _out(self.storage.insert(USERS, _keyed(user)))
        # A kill between the two writes leaves the "new users" of that quarter hour one short.
        self._count_created(_by_quarter([stored]))
        self.wm.pm.hook.user_changed(user=dict(stored), before=None, wm=self.wm)
        return stored

    def update(self, user_id: str, changes: dict) -> dict | None:
        """Change some fields of a user in one atomic write and return the user as stored (None if
        there is no such user; Conflict as `create`), then call `user_changed` with the user as it
        was, if anything changed."""
        seen = []

        def change(current):
            if current is None:
                return None
            seen.append(current)
            return {**current, **_keyed(changes), "id": user_id}
        stored = self.storage.update(USERS, user_id, change) if isinstance(user_id, str) else None
        if not seen:
            return None
        before, stored = _out(seen[0]), _out(stored)
        if stored != before:
            self.wm.pm.hook.user_changed(user=dict(stored), before=before, wm=self.wm)
        return stored

    def delete(self, user: dict) -> bool:
        """Delete a user and everything of theirs: each plugin's `delete_user_data` first, then the
        account. If the process dies half-way the account is still there (still listed, its tokens
        refused or gone), and deleting it again finishes the job. False if it was already gone."""
        self.wm.pm.hook.delete_user_data(user=dict(user), wm=self.wm)
        if not self.storage.delete(USERS, user["id"]):
            return False
        self._count_created(_by_quarter([user]), -1)
        return True


def _quarter(at) -> tuple[str, int] | None:
    """The UTC day and the quarter hour of it (0-95) of a stored time, "2026-12-06T14:37:05.123Z"."""
    if not isinstance(at, str) or len(at) < 16 or not (at[11:13] + at[14:16]).isdigit():
        return None
    return at[:10], int(at[11:13]) * 4 + int(at[14:16]) // 15


def _by_quarter(users, by_day: dict | None = None) -> dict[str, Counter]:
    """The users counted by the UTC day and quarter hour ("0".."95") they were created in, added
    to ``by_day``."""
    by_day = {} if by_day is None else by_day
    for user in users:
        at = _quarter(user.get("created_at"))
        if at is not None:
            by_day.setdefault(at[0], Counter())[str(at[1])] += 1
    return by_day


def _keyed(user: dict) -> dict:
    """The user (or changes) with the username's key set beside the username."""
    if "username" not in user:
        return {key: value for key, value in user.items() if key != USERNAME_KEY}
    name = user["username"]
    return {**user, USERNAME_KEY: name.lower() if isinstance(name, str) and name else None}


def _out(user: dict | None) -> dict | None:
    if user is not None:
        user.pop(USERNAME_KEY, None)
    return user


def accounts_for(wm, plugin: str) -> Accounts:
    """The service ``accounts`` for a plugin that cannot work without it."""
    return needed(wm, "accounts", plugin, "the users")


@hookimpl
def register_services(register):
    register("accounts", Accounts)


def age_on(born: date, today: date) -> int:
    """Whole years from born to today (a 29 February birthday comes on 1 March in other years)."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


@hookimpl(tryfirst=True)  # first, so that another plugin's prompt_context may still override these
def prompt_context(user, wm):
    age = wm.service("accounts").age(user)
    return {"name": user.get("full_name") or user.get("username") or "", "full_name": user.get("full_name") or "",
            "username": user.get("username") or "", "age": "" if age is None else age, "gender": user.get("gender") or ""}


def profile_changes(body: dict, wm, user: dict) -> dict:
    """Validated profile fields from a register or settings body; ``user`` is the account with
    its settings as they will be (its time zone says which day "today" is for a birth date)."""
    changes = {}
    if "full_name" in body:
        changes["full_name"] = field(body, "full_name", required=False, default="", max_len=64, prose=True)
    if "gender" in body:
        changes["gender"] = field(body, "gender", required=False, choices=GENDERS)
    if "age" in body:
        # whole years, or the same number as text ("30", as a form's input gives it): the rule of a record's value
        changes["age"] = field(body, "age", int, required=False, min=0, max=150, number_text=True)
    if "birth_date" in body:
        birth = field(body, "birth_date", required=False)
        if birth is not None:
            check_birth_date(birth, wm, user)
        changes["birth_date"] = birth
    # Stats, $age and the profile take the age from birth_date (Accounts.age). A birth date sent
    # alone drops the stored age, which would go stale (a year on, it contradicted a corrected
    # birth date and refused it); an age sent that contradicts the birth date would be stored
    # and never used, so it is refused.
    if changes.get("birth_date") and "age" not in body:
        changes["age"] = None
    profile = {**user, **changes}
    if "age" in body and profile.get("birth_date") and profile.get("age") is not None:
        derived = accounts_for(wm, "accounts").age(profile)
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


PROFILE_IN = {
    "full_name": string(max_length=64), "gender": string(nullable=True, enum=GENDERS + [None]),
    "age": schema(["integer", "string", "null"], minimum=0, maximum=150,
                  description="whole years, 0-150; the same number as text (\"30\", as a form gives it) is read as one"), "birth_date": string(nullable=True, format="date", example="1990-05-17"),
    "settings": obj(description="keys to change (null removes one): timezone (IANA), default_agent, reminders_opt_in, "
                                "or the app's own short values; at most 50 keys", example={"timezone": "Asia/Shanghai"}),
}
REFRESH_IN = obj({"refresh_token": text(200)}, required=["refresh_token"], example={"refresh_token": "..."})


def register_account(wm, body: dict) -> dict:
    """Create the account a registration ``body`` asks for ({username, password, profile fields,
    settings}) and return it; a 400 naming the bad field, 403 when registration is closed, 409
    when the name is taken. Shared by POST /api/v1/auth/register and the compat dialects."""
    if not wm.config["auth"]["allow_registration"]:
        raise ApiError(403, "registration_closed", "This server does not accept new accounts (auth.allow_registration).")
    username, problem = valid_username(field(body, "username", max_len=256))
    if problem:
        raise ApiError(400, "invalid_field", f"username: {problem}")
    password = field(body, "password", max_len=256, exact=True)
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
        wm.service("accounts").create(user)
    except Conflict:
        raise ApiError(409, "username_taken", f"The username {username!r} is taken; choose another.")
    return user


def password_login(wm, body: dict) -> dict:
    """The user a login ``body`` ({username, password, device_token?}) proves, throttled per
    name, address and device; a 401 for a wrong pair, 403 for a disabled account, 429 while
    throttled. Shared by POST /api/v1/auth/login and the compat dialects."""
    typed = field(body, "username", max_len=256)
    username = username_form(typed)  # the throttle's key: ｂｏｂ and bob are one name to guess at
    password = field(body, "password", max_len=256, exact=True)
    address = client_address()
    accounts, auth = wm.service("accounts"), wm.service("auth")
    tokens, throttle = auth.tokens, auth.throttle
    user = accounts.find_by_username(typed)  # as typed first: a name kept unfolded before session 15 (R15b)
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
            user = accounts.update(user["id"], {"password_hash": hash_password(password)}) or user
        except ApiError as busy:  # 503 server_busy: the login stands; the next one rehashes
            if busy.code != "server_busy":
                raise
    return user


@hookimpl
def routes(app, wm):
    accounts = wm.service("accounts")

    @app.get("/api/v1/users/profile", api=Api("The signed-in user's profile", responses={200: PROFILE}))
    def profile():
        return public_profile(wm.require_user(), wm)

    @app.put("/api/v1/users/settings", api=Api(
        "Change the profile and settings",
        body=obj(PROFILE_IN, additional_properties=False,
                 example={"full_name": "Li Hua", "settings": {"timezone": "Asia/Shanghai"}}),
        responses={200: PROFILE}))
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
        return public_profile(accounts.update(user["id"], changes) if changes else user, wm)

    auth = wm.service("auth")
    if auth is None:  # another plugin signs requests in: no passwords, no tokens of ours
        return
    tokens = auth.tokens

    def tokens_for(user, status=200):
        """A password login's answer: the token pair, the user and a device token (LoginThrottle)."""
        bottle.response.status = status
        return auth.signed_in(user, device_token=tokens.device_token(user))

    @app.post("/api/v1/auth/register", api=Api(
        "Create an account and sign in", auth="public",
        body=obj({"username": string(pattern=USERNAME.pattern, description=USERNAME_RULE),
                  "password": string(min_length=PASSWORD_MIN, max_length=256), **PROFILE_IN},
                 required=["username", "password"], example={"username": "alice", "password": "correct horse"}),
        responses={201: SIGNED_IN},
        errors={403: "auth.allow_registration is off (registration_closed)", 409: "the username is taken"}))
    def register():
        return tokens_for(register_account(wm, wm.json_body()), 201)

    @app.post("/api/v1/auth/login", api=Api(
        "Sign in with a username and password", auth="public",
        body=obj({"username": text(256), "password": text(256),
                  "device_token": string(max_length=1000, description="the device_token of an earlier login")},
                 required=["username", "password"], example={"username": "alice", "password": "correct horse"}),
        responses={200: SIGNED_IN},
        errors={401: "wrong username or password", 403: "the account is disabled",
                429: "too many failed logins: wait for Retry-After"}))
    def login():
        return tokens_for(password_login(wm, wm.json_body()))

    @app.post("/api/v1/auth/refresh", api=Api(
        "Spend a refresh token for a new token pair of the same login", auth="public", body=REFRESH_IN,
        responses={200: TOKEN_PAIR}, errors={401: "the refresh token is unknown, used or expired (a reuse ends the login)",
                                             403: "the account is disabled"}))
    def refresh():
        return tokens.rotate(field(wm.json_body(), "refresh_token", max_len=200))

    @app.post("/api/v1/auth/logout", api=Api(
        "End the login of a refresh token (204 even when it is unknown)", auth="public", body=REFRESH_IN,
        responses={204: None}))
    def logout():
        tokens.logout(field(wm.json_body(), "refresh_token", max_len=200))
        # Logging out twice, or with an unknown token, still ends with no session: 204 either way.
        bottle.response.status = 204
        return ""
