"""Auth: how a request proves whose it is. Passwords (scrypt), JWT access tokens and rotating
refresh tokens, the login throttle, the ``auth`` config section, and the `authenticate` hook for
``Authorization: Bearer`` tokens, which `wm.require_user()` asks (docs/api.md: Tokens), with
its `authentication_hint`: what a request without one should send.

Other plugins use the service ``auth`` (an `Auth`: its `tokens` and `throttle`): accounts
(register, login, refresh, logout), privacy (password changes, deleting an account), admin
(disabling an account ends its logins) and wechat (wx-login). What needs no Wellmate is a plain
function of this module: `hash_password` for the ``wellmate.py user`` commands, the username and
password rules, `public_profile`. The refresh tokens are this plugin's collection
``refresh_tokens``; the users are the accounts plugin's, changed through its service.
"""

import contextlib
import hashlib
import hmac
import logging
import math
import os
import re
import secrets
import threading
import time
import unicodedata
from datetime import datetime, timedelta, timezone

import bottle

from wellmate import (ApiError, ConfigError, Index, Setting, StorageUnavailable, atomic_write, hookimpl, new_id,
                      now_iso)
from wellmate_plugins._openapi import integer, obj, string
from wellmate_plugins._word import WORD

log = logging.getLogger("wellmate.auth")


@hookimpl
def config_schema():
    return {"auth": {
        "secret": Setting("", "JWT signing secret. Empty: generated once into the data folder (mode 0600) and kept."),
        "access_token_minutes": Setting(30, "Access token lifetime.", int, min=1, max=1440),
        "refresh_token_days": Setting(30, "Refresh token lifetime.", int, min=1, max=365),
        "allow_registration": Setting(True, "Whether /auth/register accepts new accounts.", bool),
        "throttle": Setting({}, "Failed logins before 429 too_many_attempts.", dict, items={
            "max_failures": Setting(5, "Failed password checks per username in a window.", int, min=1, max=1000),
            "max_failures_per_address": Setting(20, "Failed logins from one client address in a window.",
                                                int, min=1, max=100000),
            "window_seconds": Setting(900, "Seconds a window lasts from its first failure.", int, min=1, max=86400),
        }),
    }}


# ---------------------------------------------------------------------------------------------
# Passwords
# ---------------------------------------------------------------------------------------------

# OWASP's Password Storage Cheat Sheet: scrypt N=2^17, r=8, p=1, or an equal-cost row of its table;
# N=2^14, r=8, p=5 is the row that keeps the memory at 16 MiB (p runs one after another), for
# 5 times the work of the p=1 hashes made before (39 -> 178 ms here). Those still verify, and a
# login rehashes them (`password_needs_rehash`).
SCRYPT = dict(n=2**14, r=8, p=5, maxmem=64 * 1024 * 1024, dklen=32)

# Each hash takes a 16 MiB buffer, so 16 logins at once peaked at 16 x 16 MiB (VmHWM 295 MB in
# bench/memory even with the buffers given back, below). Two at a time: peak 71 MB; the others
# wait their turn (a hash is ~0.18 s here, ~1.8 s on a Raspberry Pi 3).
HASHING_AT_ONCE = 2
_HASHING = threading.BoundedSemaphore(HASHING_AT_ONCE)
# A hash waiting for its turn holds one of server.threads: 24 registrations at once took them all
# and a health probe waited 2.3-2.9 s. With at most this many waiting, a full queue is worked off
# in three hash times (~0.5 s here, ~5 s on a Pi 3) and at most 6 threads hash or wait (of 16
# shipped); a password request beyond it is refused at once with 503 server_busy and Retry-After.
HASHES_WAITING_MAX = 2 * HASHING_AT_ONCE
_hashes_admitted = 0  # running or waiting for a turn
_hashes_admitted_lock = threading.Lock()
_last_hash_seconds = 0.2  # for Retry-After: how long the queue takes to be worked off
_big_buffers_returned = False


def _return_big_buffers() -> None:
    """glibc serves a freed 16 MiB block again from the arena of the thread that hashed, and
    raises its mmap threshold to fit it, so every worker thread came to keep 16 MiB (bench/memory:
    RSS 37 -> 310 MB after 64 logins from 16 threads; 502 MB with hashing limited to two at a
    time but not this). A fixed threshold (which turns the raising off) makes blocks of 1 MiB and
    more their own mappings, given back when freed: 40 MB after the logins, 46 MB after 3,000
    more requests. Other C libraries have no such arenas; there this does nothing."""
    global _big_buffers_returned
    if _big_buffers_returned:
        return
    _big_buffers_returned = True
    try:
        os.confstr("CS_GNU_LIBC_VERSION")  # ValueError or None where the C library is not glibc
        import ctypes

        M_MMAP_THRESHOLD = -3
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, 1024 * 1024)
    except (ValueError, OSError, AttributeError, TypeError):
        pass


@contextlib.contextmanager
def hashing_turn():
    """Wait for one of the `HASHING_AT_ONCE` turns to hash, or raise 503 ``server_busy`` at once
    when `HASHES_WAITING_MAX` already wait (nothing is stored before a request's hashing)."""
    global _hashes_admitted
    with _hashes_admitted_lock:
        if _hashes_admitted >= HASHING_AT_ONCE + HASHES_WAITING_MAX:
            wait = max(1, math.ceil(_hashes_admitted / HASHING_AT_ONCE * _last_hash_seconds))
            raise ApiError(503, "server_busy", f"The server is checking {_hashes_admitted} passwords, as many as it "
                                               f"takes at once; try again in {wait} seconds.",
                           headers={"Retry-After": str(wait)})
        _hashes_admitted += 1
    try:
        _return_big_buffers()
        with _HASHING:
            yield
    finally:
        with _hashes_admitted_lock:
            _hashes_admitted -= 1


def _scrypt(password: str, salt: bytes, params: dict) -> bytes:
    """One hash; call it within a `hashing_turn`."""
    global _last_hash_seconds
    start = time.monotonic()
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, **params)
    _last_hash_seconds = time.monotonic() - start
    return digest


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    with hashing_turn():
        digest = _scrypt(password, salt, SCRYPT)
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${salt.hex()}${digest.hex()}"


def _stored_params(stored: str | None) -> tuple[dict, bytes, bytes] | None:
    try:
        _, n, r, p, salt, digest = (stored or "").split("$")
        return dict(SCRYPT, n=int(n), r=int(r), p=int(p)), bytes.fromhex(salt), bytes.fromhex(digest)
    except ValueError:
        return None


def password_needs_rehash(stored: str | None) -> bool:
    """True for a hash made with other (older) parameters than `SCRYPT`."""
    parsed = _stored_params(stored)
    return parsed is not None and parsed[0] != SCRYPT


def check_password(password: str, stored: str | None) -> bool:
    """Constant-time check. With no stored hash, still does the work, so that an unknown
    username takes as long to refuse as a wrong password."""
    params, salt_bytes, expected = _stored_params(stored) or (SCRYPT, b"\0" * 16, b"")
    with hashing_turn():  # one turn for both: admitted, a check is not refused half-way
        actual = _scrypt(password, salt_bytes, params)
        if params["p"] < SCRYPT["p"] and (params["n"], params["r"]) == (SCRYPT["n"], SCRYPT["r"]):
            # An older p=1 hash: the missing rounds are worked too, or a wrong password for such an
            # account would answer in a fifth of the time of an unknown name's.
            _scrypt(password, salt_bytes, dict(params, p=SCRYPT["p"] - params["p"]))
    return bool(expected) and hmac.compare_digest(actual, expected)


# ---------------------------------------------------------------------------------------------
# Tokens and the login throttle
# ---------------------------------------------------------------------------------------------


TOKENS = "refresh_tokens"  # id: the token's hash (`Tokens.digest`); user_id, family, epoch, created_at, expires_at, used
# On the user: when every login of the account was last ended (`Tokens.revoke_all`). A login's
# tokens carry the value it had when the login was made (its epoch: ``epoch`` on a refresh token,
# ``ep`` in an access token), so a login made before the latest end is told apart whenever its
# tokens were issued (`Tokens.ended`).
VALID_AFTER = "tokens_valid_after"
# Expired refresh tokens are deleted a few at a time as new ones are issued: more than one per
# token issued, so they never pile up, and each a small write (~4 ms here), where a sweep of all
# of them at once could hold one login for seconds.
PRUNE_PER_ISSUE = 2


@hookimpl
def register_collections(register):
    # A login's tokens (revoked together), a user's (revoked or deleted together), and the
    # expired ones (pruned).
    register(TOKENS, indexes=[("family",), ("user_id",), Index((), "expires_at")])


class Tokens:
    """JWT HS256 access tokens and opaque, rotating refresh tokens (stored hashed)."""

    ALGORITHMS = ["HS256"]

    # A device token outlives the refresh tokens on purpose: it matters when the account is under
    # attack and its owner has to type the password again, often after the refresh token ran out.
    DEVICE_TTL = timedelta(days=365)

    def __init__(self, secret: str, storage, accounts, access_minutes: int, refresh_days: int):
        self.secret, self.storage, self.accounts = secret, storage, accounts
        self.access_ttl = timedelta(minutes=access_minutes)
        self.refresh_ttl = timedelta(days=refresh_days)
        self._revoking = threading.Lock()  # one read-change-write of a user's revoked_logins at a time
        # Access token -> its claims, for the tokens verified most recently (at most VERIFIED_KEPT):
        # a client sends the same token with every request until it expires, and decoding it
        # (base64, JSON, the HMAC, the claims' checks) cost ~34 us a request. Only a token that
        # passed every check is kept; its expiry is checked again on every use.
        self._verified: dict[str, dict] = {}
        self._verified_lock = threading.Lock()

    @staticmethod
    def digest(refresh_token: str) -> str:
        return hashlib.sha256(refresh_token.encode("utf-8")).hexdigest()

    def issue(self, user: dict, renewing: dict | None = None) -> dict:
        """A new token pair for ``user`` as read when the login was made (its password checked),
        or, ``renewing`` a login (its ``family`` and ``epoch``: `rotate`), for that login. A new
        login's access token carries ``auth_time``; a refreshed one does not, so a route can ask
        for a login that just happened (a refresh token alone does not prove who holds it). Both
        tokens carry the login's family (``fam`` in the access token), so `revoke_login` ends
        them together, and its epoch (see `VALID_AFTER`)."""
        import jwt

        now = datetime.now(timezone.utc)
        family, epoch = (renewing["family"], renewing["epoch"]) if renewing else (new_id(), user.get(VALID_AFTER))
        claims = {"sub": user["id"], "typ": "access", "iat": now.timestamp(),
                  "exp": now + self.access_ttl, "jti": new_id(), "fam": family, "ep": epoch}
        if renewing is None:
            claims["auth_time"] = claims["iat"]
        access = jwt.encode(claims, self.secret, algorithm="HS256")
        refresh = secrets.token_urlsafe(32)
        digest = self.digest(refresh)
        self.storage.insert(TOKENS, {
            "id": digest, "user_id": user["id"], "family": family, "epoch": epoch,
            "created_at": now_iso(now), "expires_at": now_iso(now + self.refresh_ttl), "used": False,
        })
        # Stored first, checked after: `revoke_all` and `revoke_login` mark the user first and
        # delete the tokens after, so a token stored before the mark is deleted by them, and a
        # check made after it sees it. Without this check, a refresh or a login whose user was
        # read before a password change, and whose token was stored after its delete, left a
        # login alive (test_a_refresh_racing_a_password_change_leaves_no_login_alive: 4 or more
        # of its 25 refreshing logins in each of 7 runs).
        current = self.accounts.get(user["id"])
        if self.ended(current, epoch, family):
            self.storage.delete(TOKENS, digest)
            if renewing is not None:
                raise login_ended()
            if current is not None and current.get("disabled"):
                raise account_disabled()
            raise ApiError(401, "invalid_credentials", "The account's password was changed, or the account deleted, "
                                                       "while this login was made; log in again.")
        self.prune(now_iso(now))
        return {"access_token": access, "refresh_token": refresh, "token_type": "Bearer",
                "expires_in": int(self.access_ttl.total_seconds())}

    @staticmethod
    def ended(user: dict | None, epoch, family: str | None) -> bool:
        """Whether a login (its ``family``, made in the account's ``epoch``) has been ended: the
        account is gone or disabled, every login of it was ended since (`revoke_all`), or this
        one was (`revoke_login`)."""
        return (user is None or bool(user.get("disabled")) or user.get(VALID_AFTER) != epoch
                or family in (user.get("revoked_logins") or {}))

    def revoke_all(self, user_id: str, **changes) -> dict | None:
        """End every login of a user at once (password change, disable): the user's epoch moves
        on, so its logins' access tokens are refused by `Auth.user_of`, and its refresh tokens
        are deleted. ``changes`` are stored with the new epoch in the same write, before the
        delete (see `issue`). Return the updated user."""
        user = self.accounts.update(user_id, {**changes, VALID_AFTER: time.time()})
        self.storage.delete_where(TOKENS, {"user_id": user_id})
        return user

    def revoke_login(self, user_id: str, family: str) -> None:
        """End one login (logout, a reused refresh token): its refresh tokens are deleted and its
        access tokens refused. The family is kept on the user record, which `Auth.user_of`
        reads anyway (no extra read per request), for as long as one of its access tokens can
        live; expired entries are dropped on each write, so the list stays as short as the
        logins ended in the last ``auth.access_token_minutes``.

        The refresh tokens are deleted before the mark, so a kill between the two leaves none
        (the mark does not outlive the access tokens), and again after it, so one stored by a
        refresh racing this one goes too (see `issue`); the second delete finds nothing, and
        writes nothing, unless there was such a race."""
        self.storage.delete_where(TOKENS, {"family": family})
        now = time.time()
        with self._revoking:
            user = self.accounts.get(user_id)
            if user is not None:
                revoked = {fam: until for fam, until in (user.get("revoked_logins") or {}).items() if until > now}
                revoked[family] = now + self.access_ttl.total_seconds()
                self.accounts.update(user_id, {"revoked_logins": revoked})
        self.storage.delete_where(TOKENS, {"family": family})

    def logout(self, refresh_token: str) -> None:
        """End the login of a refresh token; an unknown or used one ends nothing."""
        record = self.use(refresh_token)
        if record is not None:
            self.revoke_login(record["user_id"], record["family"])

    def is_revoked(self, claims: dict, user: dict) -> bool:
        """Whether an access token's login, or every login before it, was ended."""
        if "ep" in claims:
            return self.ended(user, claims["ep"], claims.get("fam"))
        # An access token of the version before epochs (it lives access_token_minutes at most):
        # refused if issued before the latest end of every login.
        valid_after = user.get(VALID_AFTER)
        return bool(valid_after and claims["iat"] < valid_after) or claims.get("fam") in (user.get("revoked_logins") or {})

    def device_token(self, user: dict) -> str:
        """A signed token naming this account and a new device id, given with each password login
        for the client to keep and send back (see `LoginThrottle`)."""
        import jwt

        now = datetime.now(timezone.utc)
        return jwt.encode({"sub": user["id"], "typ": "device", "jti": new_id(), "iat": int(now.timestamp()),
                           "exp": now + self.DEVICE_TTL}, self.secret, algorithm="HS256")

    def device_of(self, token, user: dict | None) -> str | None:
        """The device id of a device token that this account's login gave, else None (a stale,
        forged or another account's token is no token: the login goes on without one)."""
        import jwt

        if not isinstance(token, str) or not token or user is None:
            return None
        try:
            claims = jwt.decode(token, self.secret, algorithms=self.ALGORITHMS, options={"require": ["sub", "jti", "typ"]})
        except jwt.InvalidTokenError:
            return None
        return claims["jti"] if claims["typ"] == "device" and claims["sub"] == user["id"] else None

    def use(self, refresh_token: str) -> dict | None:
        """Mark a refresh token used and return it as it was before (``used`` True means it had
        been used already: a replay); None if it is unknown. One atomic write: of two uses at
        once, exactly one sees it unused."""
        seen = []

        def use(token):
            if token is None:
                return None
            seen.append(token)
            return None if token.get("used") else {**token, "used": True}
        self.storage.update(TOKENS, self.digest(refresh_token), use)
        return seen[0] if seen else None

    def prune(self, now: str) -> None:
        """Delete up to `PRUNE_PER_ISSUE` refresh tokens that expired before ``now``."""
        expired, _ = self.storage.find(TOKENS, order="expires_at", start="", end=now, limit=PRUNE_PER_ISSUE)
        for token in expired:
            self.storage.delete(TOKENS, token["id"])

    def rotate(self, refresh_token: str) -> dict:
        """Spend a refresh token for a new pair of the same login. A second use of the same
        token is theft or a replay: the whole family is revoked."""
        record = self.use(refresh_token)
        refused = ApiError(401, "invalid_refresh_token", "This refresh token is unknown, expired or already used; log in again.")
        if record is None:
            raise refused
        if record["used"]:
            self.revoke_login(record["user_id"], record["family"])
            log.warning("refresh token reused for user %s: that login is ended", record["user_id"])
            raise refused
        if record["expires_at"] <= now_iso():
            raise refused
        user = self.accounts.get(record["user_id"])
        # A refresh token stored before epochs were kept is of the account's current epoch: the
        # tokens of an earlier one were deleted when it ended.
        login = {"family": record["family"], "epoch": record.get("epoch", (user or {}).get(VALID_AFTER))}
        if self.ended(user, login["epoch"], login["family"]):
            raise login_ended()
        return self.issue(user, renewing=login)

    VERIFIED_KEPT = 1024

    def verify_access(self, token: str) -> dict:
        import jwt

        claims = self._verified.get(token)
        if claims is not None:
            if int(claims["exp"]) <= time.time():  # as jwt.decode checks it (no leeway)
                raise bad_token("token_expired", "The access token has expired; use /auth/refresh.")
            return dict(claims)
        try:
            claims = jwt.decode(token, self.secret, algorithms=self.ALGORITHMS,
                                options={"require": ["sub", "exp", "iat", "typ"]})
        except jwt.ExpiredSignatureError:
            raise bad_token("token_expired", "The access token has expired; use /auth/refresh.")
        except jwt.InvalidTokenError:
            raise bad_token("invalid_token", "The access token is not valid; log in again.")
        if claims.get("typ") != "access":
            raise bad_token("invalid_token", "Not an access token; log in again.")
        with self._verified_lock:
            while len(self._verified) >= self.VERIFIED_KEPT:
                del self._verified[next(iter(self._verified))]  # the oldest
            self._verified[token] = dict(claims)
        return claims


# RFC 6750: a refused bearer token's 401 names the scheme and why (expired is invalid_token too;
# the JSON code tells the two apart).
BEARER_REFUSED = 'Bearer error="invalid_token"'


def bad_token(code: str, message: str) -> ApiError:
    """The 401 for an access token this plugin refuses."""
    return ApiError(401, code, message, headers={"WWW-Authenticate": BEARER_REFUSED})


def login_ended() -> ApiError:
    """The 401 for a refresh of a login that was ended (logout, password change, disable) or
    whose account is gone."""
    return ApiError(401, "invalid_refresh_token", "This login was ended, or its account disabled or gone; log in again.")


class LoginThrottle:
    """Failed logins counted per account and per client address, in memory. Once either count
    reaches its limit, every try answers 429 ``too_many_attempts`` (right password or not) until
    the window that began with the first failure is over.

    The account is whatever name was tried, known or not, so a throttled unknown username looks
    exactly like a throttled real one. Memory is bounded: beyond ``max_tracked`` keys the one
    whose window began first (the nearest to expiring) is forgotten. One process serves, so
    memory is the right place; a restart forgets the counts.

    A client known to the account is counted apart: OWASP's device cookies (Authentication
    Cheat Sheet, "Slow Down Online Guessing Attacks with Device Cookies"). Each password login
    gives a device token (`Tokens.device_token`); a try that sends back one of this account's
    is counted for that device alone, so an attacker's failures lock out unknown clients but
    not the owner's (a lock-out switch for anyone who knows a username, before). Guessing stays
    bounded: ``max_failures`` per window for all unknown clients together, and as many for each
    device token, which only the right password gives.
    """

    def __init__(self, max_failures: int, max_failures_per_address: int, window_seconds: float,
                 max_tracked: int = 10_000, clock=time.monotonic):
        self.limits = {"account": max_failures, "address": max_failures_per_address, "device": max_failures}
        self.window, self.max_tracked, self.clock = window_seconds, max_tracked, clock
        self._failures: dict[tuple, list] = {}  # (kind, key) -> [window start, count], oldest first
        self._lock = threading.Lock()

    @staticmethod
    def _keys(account, address, device=None) -> list[tuple]:
        if device:
            return [("device", device)]
        return ([("account", str(account).lower())] if account else []) + (
            [("address", str(address))] if address else [])

    def retry_after(self, account: str | None = None, address: str | None = None, device: str | None = None) -> int:
        """Whole seconds until this account may try from this address (or device) again; 0: now."""
        now, wait = self.clock(), 0.0
        with self._lock:
            for key in self._keys(account, address, device):
                start, count = self._failures.get(key, (None, 0))
                if start is None:
                    continue
                if now - start >= self.window:
                    del self._failures[key]
                elif count >= self.limits[key[0]]:
                    wait = max(wait, start + self.window - now)
        return math.ceil(wait)

    def check(self, account: str | None = None, address: str | None = None, device: str | None = None) -> None:
        """Raise the 429 if either (or the device) is over its limit. Call before checking the password."""
        wait = self.retry_after(account, address, device)
        if wait:
            raise ApiError(429, "too_many_attempts", f"Too many failed attempts; try again in {wait} seconds.",
                           headers={"Retry-After": str(wait)})

    def failed(self, account: str | None = None, address: str | None = None, device: str | None = None) -> None:
        now = self.clock()
        with self._lock:
            for key in self._keys(account, address, device):
                entry = self._failures.get(key)
                if entry is not None and now - entry[0] < self.window:
                    entry[1] += 1
                    continue
                self._failures.pop(key, None)
                self._failures[key] = [now, 1]  # dicts keep insertion order: newest window last
                while len(self._failures) > self.max_tracked:
                    del self._failures[next(iter(self._failures))]

    def succeeded(self, account: str, device: str | None = None) -> None:
        """The account's own count (or the device's) starts again; the address's does not (one
        working account must not buy an address more guesses at others), nor, after a known
        device's login, the unknown clients' (the owner's logins must not buy an attacker more)."""
        with self._lock:
            self._failures.pop(("device", device) if device else ("account", str(account).lower()), None)


# ---------------------------------------------------------------------------------------------
# Accounts: what the plugins that sign users in share
# ---------------------------------------------------------------------------------------------

# Every script's letters are letters here (\w): 张三丰, さくら, 김민수 always passed. A name of two characters is one too
# when both are of the scripts that write a whole name in two: Chinese characters (most Chinese names are two or three;
# 张三 was refused with "3-32 letters", which read as "no Chinese": the session-15 review), Japanese kana and kanji
# (ゆき, ユキ, 奈々) and Korean Hangul syllables (지민). The first rule took only the Han characters of the Basic
# Multilingual Plane, so 𠀋子 (CJK Extension B), ゆき and 지민 were refused with "got 2 characters" beside "2 are
# enough (张三)" (the session-17 review): the rule and its message now name the same set. Two Latin letters ("ab")
# are still too few to tell people apart; so are two Hangul jamo (ㄱㄴ: letters, not syllables). The ranges:
# Han (Extension A, the unified block, compatibility ideographs, Extensions B-H and their supplement), 々 and 〇,
# hiragana, katakana with ー and its phonetic extensions (half-width katakana are full-width once NFKC'd, see
# `username_form`), Hangul syllables. The string holds the characters themselves, not `\U` escapes, which the
# ECMAScript regexes reading the pattern published in the OpenAPI document do not have.
NAME_IN_TWO = ("\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ee5f\U0002f800-\U0002fa1f\U00030000-\U000323af"
               "\u3005\u3007\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff\uac00-\ud7a3"
               # half-width katakana (ｦ-ﾝ): the server checks the NFKC form, where they are full-width already, but
               # a client checks what was typed, and ﾕｷ is the name ユキ (session 18)
               "\uff66-\uff9d")
# Published in the OpenAPI document, where the mini-program validates with it: it must mean in JavaScript what it
# means here. `\w` is ASCII in JavaScript's RegExp (张三丰 and josé passed the server and failed the client: session
# 18), so the letters are written out (`_word.WORD`, generated from what `\w` matches here). `$(?!\n)`: Python's `$`
# also matches before a final newline ("alice\n"), JavaScript's does not; with the look-ahead neither does.
USERNAME = re.compile(r"^(?:[" + WORD + r"]{3,32}|[" + NAME_IN_TWO + r"]{2})$(?!\n)")
WORD_CHARACTER = re.compile("[" + WORD + "]")
USERNAME_RULE = ("3-32 letters of any script (张三丰, alice), digits, '_', '.' or '-'; "
                 "2 are enough when both are Chinese, Japanese or Korean characters (张三, ゆき, 지민)")


def username_problem(name: str) -> str | None:
    """What is wrong with ``name`` (in `username_form`) as a username, said with the rule; None if nothing."""
    if USERNAME.match(name):
        return None
    bad = sorted({c for c in name if not WORD_CHARACTER.match(c)})
    if bad:
        return f"{USERNAME_RULE}; not {' '.join(repr(c) for c in bad[:5])}"
    return f"{USERNAME_RULE}; got {len(name)} character{'s' if len(name) != 1 else ''}"


def username_form(name: str) -> str:
    """A username as it is kept and looked up: NFKC, so the full-width letters a Chinese keyboard left
    in full-width mode types are the letters they look like (ｂｏｂ is bob: registered beside bob it was a
    second account nobody could tell apart; a new user's audit, session 15). What a user expects is one
    name however the keyboard was set: ｂｏｂ logs in as bob and cannot be registered beside it."""
    return unicodedata.normalize("NFKC", name) if isinstance(name, str) and not name.isascii() else name


def valid_username(name: str) -> tuple[str, str | None]:
    """``name`` as it is kept (`username_form`) and what is wrong with it (`username_problem`), None if
    nothing: the check registration and the admin commands share (the form first, so a full-width ｂｏｂ passes as
    bob; each caller words its own error). Setting a username with a password needs the form before the check, to
    compare it with the account's, and calls the two itself."""
    name = username_form(name)
    return name, username_problem(name)


PASSWORD_MIN = 8


PROFILE = obj({
    "uuid": string(), "username": string(nullable=True), "full_name": string(),
    "gender": string(nullable=True, enum=["male", "female", "other", None]), "age": integer(nullable=True),
    "birth_date": string(nullable=True, format="date"), "role": string(enum=["user", "admin"]),
    "settings": obj(description="the user's settings: timezone, default_agent, reminders_opt_in and the app's own keys"),
    "created_at": string(format="date-time")},
    required=["uuid", "username", "full_name", "gender", "age", "birth_date", "role", "settings", "created_at"],
    title="Profile")
SIGNED_IN = obj({
    "access_token": string(description="send as `Authorization: Bearer ...`"), "refresh_token": string(),
    "token_type": string(enum=["Bearer"]), "expires_in": integer(description="seconds the access token is valid"),
    "user": PROFILE, "device_token": string(description="send back with login: a locked-out name stays open to this device")},
    required=["access_token", "refresh_token", "token_type", "expires_in", "user"], title="SignedIn")
TOKEN_PAIR = obj({"access_token": string(), "refresh_token": string(), "token_type": string(enum=["Bearer"]),
                  "expires_in": integer()}, required=["access_token", "refresh_token", "token_type", "expires_in"],
                 title="TokenPair")


def public_profile(user: dict, wm=None) -> dict:
    """What a client sees of a user: never the password hash or token bookkeeping. With ``wm``
    (and the accounts plugin), the age is `Accounts.age` (from birth_date when there is one), the
    age stats use; without, the age as stored."""
    accounts = wm.service("accounts") if wm else None
    return {
        "uuid": user["id"],
        "username": user.get("username"),
        "full_name": user.get("full_name") or "",
        "gender": user.get("gender"),
        "age": accounts.age(user) if accounts else user.get("age"),
        "birth_date": user.get("birth_date"),
        "role": user.get("role", "user"),
        "settings": user.get("settings") or {},
        "created_at": user["created_at"],
    }


def account_disabled() -> ApiError:
    """What a login into a disabled account hears (password, once it is right, and WeChat)."""
    return ApiError(403, "account_disabled", "This account has been disabled by the server's admin.")



# ---------------------------------------------------------------------------------------------
# The service and the hook
# ---------------------------------------------------------------------------------------------

SECRET_FILE = "secret.key"  # in the data folder, when auth.secret is empty
CLAIMS_KEY = "wellmate.token"  # where `Auth.user_of` keeps a request's token claims (its environ)


def generated_secret(data_dir) -> str:
    """A signing secret made once and kept in the data folder, readable by its owner only."""
    path = data_dir / SECRET_FILE
    try:
        secret = path.read_text().strip()
    except FileNotFoundError:
        try:
            atomic_write(path, secrets.token_urlsafe(48).encode(), mode=0o600)
        except OSError as e:
            raise StorageUnavailable(f"cannot write {path}: {e.strerror or e}; make the data folder "
                                     f"writable by this user (or set auth.secret)") from e
        return path.read_text().strip()
    if not secret:  # a crash or a bad copy emptied it: every login would fail
        raise ConfigError(f"{path} is empty: restore it from a backup, or delete it to make a new one "
                          f"(everyone then logs in again)")
    return secret


class Auth:
    """The service ``auth``: the `Tokens` (``tokens``) and the `LoginThrottle` (``throttle``) of a
    Wellmate, and who a request's bearer token belongs to."""

    def __init__(self, wm):
        settings = wm.config["auth"]
        self.wm = wm
        self.accounts = needed(wm, "accounts", "auth", "the users")
        self.tokens = Tokens(settings["secret"] or generated_secret(wm.data_dir), wm.storage, self.accounts,
                             settings["access_token_minutes"], settings["refresh_token_days"])
        self.throttle = LoginThrottle(**settings["throttle"])

    def user_of(self, request) -> dict | None:
        """The user of the request's bearer token; None without one (another plugin may know the
        request); a 401 for a token that is not (or no longer) good."""
        # The raw WSGI value (Latin-1 text): Bottle's get_header decodes it as UTF-8 and raised
        # UnicodeDecodeError (a 500) on bytes that are not; a token is ASCII, anything else is invalid.
        header = request.environ.get("HTTP_AUTHORIZATION", "")
        if not header.isascii():
            raise bad_token("invalid_token", "The access token is not valid; log in again.")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        claims = self.tokens.verify_access(token.strip())
        user = self.accounts.get(str(claims["sub"]))
        if user is None or user.get("disabled"):
            raise bad_token("invalid_token", "This account is disabled or gone.")
        # Tokens issued before a password change, disable or logout-everywhere stop working, and
        # those of a login that logged out or whose refresh token was reused.
        if self.tokens.is_revoked(claims, user):
            raise bad_token("invalid_token", "This token was revoked; log in again.")
        request.environ[CLAIMS_KEY] = claims
        return user

    @staticmethod
    def claims() -> dict:
        """The verified claims of the request's access token, once `wm.require_user()` took it
        (``fam``: the login, ``auth_time``: set when the token came from a login, not a refresh);
        {} for a request another plugin authenticated."""
        return bottle.request.environ.get(CLAIMS_KEY) or {}

    def signature(self, purpose: str, text: str) -> str:
        """An HMAC-SHA256 of ``text`` (hex) under a key of this server's secret kept for
        ``purpose`` alone, for links that must work without a token (a signed file URL): one
        purpose's signature is no other's, and none is a token."""
        key = hmac.new(self.tokens.secret.encode(), f"wellmate signature: {purpose}".encode(), hashlib.sha256).digest()
        return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()

    def signed_in(self, user: dict, **extra) -> dict:
        """What a client gets when it signs in: a new token pair, the user's profile and ``extra``."""
        return {**self.tokens.issue(user), "user": public_profile(user, self.wm), **extra}


def needed(wm, service: str, plugin: str, what: str):
    """The service ``service`` for a plugin that cannot work without it; a startup error when the
    plugin offering it is disabled and ``plugin`` is not (``what``: what that plugin keeps)."""
    found = wm.service(service)
    if found is None:
        raise ConfigError(f"{wm.config_path.name}: plugins.disabled: the {plugin} plugin needs the {service} plugin "
                          f"({what}); disable {plugin} too, or enable {service}")
    return found


def require_admin(wm) -> dict:
    """The request's user if an admin (role "admin"); 401 without a valid sign-in, 403 for anyone
    else. It asks `wm.require_user`, so it works with whatever plugin signs requests in."""
    user = wm.require_user()
    if user.get("role") != "admin":
        raise ApiError(403, "admin_only", "This needs an admin account (make one with `wellmate.py user promote`).")
    return user


def required(wm, plugin: str) -> Auth:
    """The service ``auth`` for a plugin that cannot work without it."""
    return needed(wm, "auth", plugin, "passwords and tokens")


@hookimpl
def register_services(register):
    register("auth", Auth)


@hookimpl
def delete_user_data(user, wm):
    wm.storage.delete_where(TOKENS, {"user_id": user["id"]})


@hookimpl
def authenticate(request, wm):
    return wm.service("auth").user_of(request)


@hookimpl
def authentication_hint():
    return {"hint": "'Authorization: Bearer <access_token>' (from /auth/login)", "challenge": "Bearer"}
