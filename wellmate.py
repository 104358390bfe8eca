"""Wellmate: a self-hosted health companion backend.

This file is the core: hookspecs, plugin loading, config, prompts, the storage and provider
contracts, the app factory and the command line. Everything that varies (storage
backends, AI providers, emotion taggers, auth, the API route groups) lives in plugins/.

Importing this module has no side effects: `create_app(config_path)` builds a Wellmate, and
`main()` is the command line.
"""

from __future__ import annotations

import argparse
import difflib
import errno
import functools
import importlib
import importlib.machinery
import importlib.util
import inspect
import json
import logging
import math
import os
import re
import signal
import socket
import string
import sys
import threading
import time
import traceback
import uuid
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import NamedTuple

import bottle
import pluggy
import yaml

__version__ = "0.1.0"

HERE = Path(__file__).resolve().parent
log = logging.getLogger("wellmate")

hookspec = pluggy.HookspecMarker("wellmate")
hookimpl = pluggy.HookimplMarker("wellmate")

# Built-in plugins, loaded in this order from plugins/. Any other *.py file there is a user's
# plugin and loads after these.
BUILTIN_PLUGINS = [
    "storage_files",
    "provider_offline",
    "provider_openai",
    "provider_coze",
    "provider_fastgpt",
    "provider_dify",
    "tagger_lexicon",
    "tagger_model",
    "auth",
    "accounts",
    "chat",
    "record_types",
    "records",
    "wechat",
    "admin",
    "privacy",
    "reminders",
    "scheduler",
    "delivery_inapp",
    "delivery_wechat",
    "delivery_webhook",
    "tagger_llm",
    "library",  # before safety, so its before_reply runs after safety's and reads safety's flags
    "safety",
    "mood",
    "uploads",
    "compat",
    "compat_medical",
    "service",
    "openapi",
    "request_log",
    "metrics",
]


# ---------------------------------------------------------------------------------------------
# Hook specifications
# ---------------------------------------------------------------------------------------------


class Hookspecs:
    """Every hook a plugin may implement. Implementations take only the arguments they use."""

    @hookspec
    def config_schema(self):
        """Declare the config.yaml sections this plugin owns.

        Return ``{"section": {"key": Setting(...)}}``. Values are validated and defaults filled
        before any other hook runs; the result is ``wm.config["section"]["key"]``.
        """

    @hookspec
    def register_storage(self, register):
        """Offer storage backends.

        Call ``register(name, factory)`` for each; ``factory(settings, wm)`` returns a `Storage`.
        config.yaml picks one by name with ``storage.backend``.
        """

    @hookspec
    def register_collections(self, register):
        """Declare the collections of documents this plugin keeps in the storage, and the lookups
        it makes in them.

        Call ``register(name, indexes=[...], unique=[...])`` for each (see `Collection`): an
        index is ``Index(by=("user_id",), order="created_at")`` for ``storage.find(name,
        {"user_id": ...}, order="-created_at")``; ``unique=[("username_key",)]`` makes
        ``storage.insert`` refuse a second document with the same value. A backend builds what is
        declared and no more (a SQL backend: a table, and an index each), so a lookup that was
        not declared is a ValueError, not a slow scan. Only the plugin that declares a
        collection should write to it; others ask that plugin's service.
        """

    @hookspec
    def user_changed(self, user, before, wm):
        """Called after a user account is created (``before`` is None) or changed (``before`` is
        the user as it was), by whichever plugin changed it, through the ``accounts`` service.
        Follow what your data depends on here (the reminders plugin gives a user who opted in
        their copy of a config-wide reminder), not by reading every user on a timer."""

    @hookspec
    def delete_user_data(self, user, wm):
        """Called when a user is deleted, before their account goes: delete everything this
        plugin keeps for them (its own collections and files). Must be safe to call twice: if
        the process dies half-way, deleting the user again finishes the job."""

    @hookspec
    def export_user_data(self, user, wm):
        """What this plugin keeps for ``user``, for their data export (``GET /users/export``):
        None, or a dict of top-level sections of the export document (``{"records": [...]}``).
        Any list in it, at any depth, may be an iterator (a generator reading a page at a time):
        the export is streamed, so a user with 100,000 messages costs the server a page of memory,
        not the whole document. Sections keep the order plugins load in."""

    @hookspec
    def register_providers(self, register):
        """Offer AI provider implementations.

        Call ``register(name, ProviderClass)`` for each; a `Provider` subclass. config.yaml
        names provider instances under ``providers:`` and picks the code with ``plugin: name``.
        """

    @hookspec
    def register_taggers(self, register):
        """Offer emotion taggers.

        Call ``register(name, TaggerClass)``; a `Tagger` subclass. config.yaml picks one with
        ``emotion.tagger``.
        """

    @hookspec
    def register_record_types(self, register):
        """Offer health record types (weight, steps, ...).

        Call ``register(name, spec)`` for each. ``spec`` is a dict with the keys of a custom type
        in config.yaml's ``records.types.NAME`` (title, unit, min, max, decimals, units, daily,
        noticeable), and optionally ``fields`` and ``check`` for values made of several numbers
        (blood pressure). Records of the type are validated, converted and summarised by it.
        """

    @hookspec
    def register_services(self, register):
        """Offer objects other plugins find by name with ``wm.service(name)``.

        Call ``register(name, factory)``; ``factory(wm)`` builds the object for this Wellmate (or
        returns None: not in use with this config). It is built on the first lookup, so a factory
        may look up the services it needs: build order follows the lookups, never the order
        plugins load, and a cycle stops startup naming it. Every service is built before the app,
        after storage, so a mistake in its config stops startup.
        """

    @hookspec(firstresult=True)
    def authenticate(self, request, wm):
        """Who sends this request: return the user (a dict from ``wm.storage``) its credentials
        prove, or None when it carries none this plugin knows. Raise ``ApiError(401, ...)`` for
        credentials this plugin knows and refuses (expired, forged, revoked): the request is
        refused then, unless a plugin asked before this one already returned a user.

        ``wm.require_user()`` asks, the plugins loaded last first (a user's plugin before the
        built-in ``auth``, which answers ``Authorization: Bearer`` tokens); the first user
        returned wins, and the plugins after it are not asked (so a user's plugin that vouches
        for a request is not overruled by ``auth`` refusing a stale bearer token on it). Nobody answering is a 401 ``unauthorized``; a disabled user, a 401
        ``invalid_token``. ``request`` is Bottle's; read headers from ``request.environ``.
        """

    @hookspec
    def authentication_hint(self, request, wm):
        """What to send to be signed in by this plugin, for a request nobody authenticated: return
        a dict with ``hint``, a few words for a client's developer ("'Authorization: Bearer
        <access_token>' (from /auth/login)"), and, when the way in is an HTTP authentication
        scheme, ``challenge``: its ``WWW-Authenticate`` value (RFC 9110, e.g. "Bearer").

        A plugin that answers `authenticate` answers this too: the core does not know how users
        sign in. ``wm.require_user()``'s 401 ``unauthorized`` says "Send" and every hint, joined
        by "or", and carries every challenge; with no answer it says only that the request needs
        a signed-in user.
        """

    @hookspec
    def routes(self, app, wm):
        """Add HTTP routes to the Bottle ``app``.

        Called once while the app is built, after every service. Only add routes here: what a
        plugin keeps for the Wellmate is a service (`register_services`). Use ``wm.json_body()``,
        ``wm.require_user()`` and raise ``ApiError`` for errors so every answer has the error
        shape; declare each route's contract next to it (``@app.get(rule, api=Api(...))``,
        plugins/_openapi.py) so /api/v1/openapi.json and /docs list it.
        """

    @hookspec
    def startup(self, wm):
        """Called once after the app is built and before it serves: start background work here."""

    @hookspec
    def shutdown(self, wm):
        """Called once when the server stops (Ctrl-C, SIGTERM, or ``wm.close()``): stop what
        startup started. Storage is closed after every shutdown hook has run."""

    @hookspec
    def prompt_context(self, user, agent, wm):
        """Return a dict of extra ``$placeholders`` for an agent's system prompt, or None.

        ``user`` is the user dict, ``agent`` the agent's name. Called for every chat turn, and by
        ``wellmate.py check`` with a sample user to learn which placeholders are filled. A value
        that costs something to work out (a summary of the user's records) may be a function of
        no arguments: it is called only when the prompt being rendered uses the placeholder.
        """

    @hookspec
    def before_reply(self, user, agent, session, text, turn, wm):
        """Called for each chat turn just before the user's message ``text`` is stored (its
        emotion label then knows what safety did with it) and before any provider is asked. ``session`` is the session as it was before this turn (its
        ``message_count`` does not include ``text``). ``turn`` is the `Turn` (user, agent,
        session, text, ids, flags): set facts other plugins and providers act on in
        ``turn.flags`` (the safety plugin sets ``crisis``, ``check_in``, ``notes_shown``,
        ``crisis_earlier``, ``risk_word``), never as sentences in the system prompt for them to parse.

        Return None or a dict with any of:

        - ``reply``: the whole answer; no provider is called, so it works with every provider
          down (a crisis reply). ``provider`` names what answered (default ``"wellmate"``).
        - ``system``: text appended to the system prompt for this turn (for the model only).
        - ``prefix``: text put before the reply; in a stream it is the first delta, ahead of
          anything a provider says (an urgent "call 120 now").
        - ``suffix``: text put after a complete reply (a disclaimer).
        - ``fallback``: a name; when no provider answers, the prefix alone is the reply, stored
          under that name, instead of a 503 (safety's check-in note must reach the user).
        - ``reader``: a function of no arguments returning a reader of the provider's text,
          called once per provider asked: ``feed(delta) -> text to show now`` and ``end() ->
          the rest``, before the emotion tagger's reader. It may hold text back (show it at
          ``end``), cut a marker the model was asked to write, or show other text instead
          (the safety plugin checks replies in crisis sessions this way, streams included).
        - ``urgent``: a set the plugin fills, during this call or later while its reader reads,
          with what it found this turn (safety: ``crisis``, ``check_in``, ...): when it is not
          empty the reply is labelled as urgent (the mascot shows concern).
        - ``sources``: a list of ``{"id", "title"}`` the reply draws on (the library's articles),
          sent with the reply (``sources`` of the JSON answer and the stream's ``done``) and
          stored with it, so a client can link them; with a ``reply``, only that plugin's count.

        Include your own separators ("\n\n"). The first ``reply`` wins; the other keys of every
        plugin are joined in the order pluggy calls them.
        """

    @hookspec
    def after_reply(self, user, agent, session, text, reply, turn, wm):
        """Called when a reply is complete, before it is stored: ``reply`` is its whole text so
        far (prefixes and suffixes included), ``text`` the user's message, ``turn`` the `Turn`
        (with the flags ``before_reply`` hooks set).

        Return None or text to append to the reply (with its own separator); in a stream it is
        sent as a last delta, so what the client saw, ``done.content`` and what is stored are the
        same. Not called for a reply cut short (``incomplete``).
        """

    @hookspec
    def cli(self, subparsers, wm_factory):
        """Add sub-commands to ``python wellmate.py``.

        ``subparsers`` is argparse's; set ``func=callable(args)`` with ``set_defaults``.
        ``wm_factory()`` builds the Wellmate from the chosen config when the command needs it.
        """

    @hookspec
    def register_channels(self, register):
        """Offer reminder delivery channels (in-app, WeChat, webhook, ...).

        Call ``register(name, ready=None)`` for each channel this plugin delivers. Each reminder
        names its channels; when it fires, `deliver_reminder` is called on the plugin that
        registered the channel, and on no other. ``ready(user, wm)``, if given, returns None when
        the channel can reach that user, or a sentence saying why not (shown as a 400 when a
        reminder asks for the channel, and recorded as a skipped delivery, without calling
        `deliver_reminder`, when it cannot reach the user at firing time).
        """

    @hookspec
    def deliver_reminder(self, reminder, message, user, channel, wm):
        """Deliver one fired reminder on ``channel``, a channel this plugin registered.

        ``reminder`` is the stored reminder, ``user`` its owner, ``message`` what to say:
        ``{fire_id, text, title, note, agent, due_at, due_local, late_seconds, phrased_by}``
        (``fire_id`` is the same if a delivery is resumed after a crash). Called from a worker
        thread of that channel, up to ``reminders.delivery_threads`` at once: keep the plugin's
        client thread-safe. Return ``{"status": "sent" | "failed" | "skipped", "detail": "..."}``
        plus any facts worth keeping (ids, error codes); it is recorded in the reminder's
        deliveries. Do not retry for long: an exception is recorded as a failure.
        """

    @hookspec
    def reminder_delivered(self, reminder, delivery, wm):
        """Called once a fired reminder's delivery on one channel is recorded (after
        `deliver_reminder` answered, or without it: ``skipped`` when the channel cannot reach the
        user, ``missed`` when the server was down at the time). ``delivery`` is the record as
        stored: ``{channel, status: "sent" | "failed" | "skipped" | "missed", detail, due_at,
        late_seconds, ...}`` (``channel`` is None for a time missed as a whole). Called from a
        delivery worker: keep it quick (count it, queue it), and raise nothing.
        """

    @hookspec
    def request_finished(self, request, wm):
        """Called when the server has answered a request, for every answer, 404s and 500s
        included: a body made whole (JSON) just before it is sent, so a client that has read it
        finds what this hook did; a stream when it ended, however it ended; a file when it was
        handed to the server. ``request`` is a
        `FinishedRequest`: ``id`` (its ``X-Request-Id``), ``time`` (when it finished),
        ``method``, ``route`` (the matched route's template, such as
        ``/api/v1/health/sessions/<session_id>``, never the path, which holds ids and may hold
        anything a client typed; None when no route matched), ``status``, ``seconds``,
        ``user_id`` (whom ``wm.require_user()`` signed in, or None) and ``client`` (as
        `client_address`). Called in the worker thread that served it: a slow implementation
        holds up that worker, so buffer what you write. An exception is logged and ignored.
        """

    @hookspec
    def turn_finished(self, turn, outcome, wm):
        """Called when a chat turn is over, plain or streamed, whether a reply was stored or
        not: ``turn`` is the `Turn`, ``outcome`` a `TurnOutcome`: ``status`` ("complete",
        "incomplete": cut short and stored as far as it went, "fallback": a plugin's note stood
        in for the reply, or "failed": no reply stored), ``provider`` (what the reply is stored
        under, None when failed), ``streamed``, ``seconds`` (from the turn's start) and
        ``attempts``, one `ProviderAttempt` per provider asked, in order (``provider``,
        ``seconds``, ``first_delta`` for a stream, ``error`` or None). For counting and timing;
        it cannot change the reply (that is `after_reply`). An exception is logged and ignored.
        """

    @hookspec
    def storage_operation(self, operation, collection, seconds, wm):
        """Called after each call of the storage contract (``insert``, ``get``, ``find``,
        ``append_message``, ...; see `TimedStorage`), with its name, the collection it touched
        ("messages" for the chat message log, "" for ``ping``) and how long it took, whether it
        returned or raised. Only when a plugin implements this hook is ``wm.storage`` timed at
        all. Called on every storage call, in the caller's thread, often under the caller's
        locks: it must be quick (a counter, a histogram) and never touch the storage itself.
        """


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class ConfigError(Exception):
    """config.yaml or a prompt is wrong; the message names the file, the key and the fix."""


# A code point no UTF-8 text can hold: half of a UTF-16 surrogate pair, which json.loads gives for
# a lone "\ud800" (a JS client cutting text inside an emoji). A pair arrives as one code point.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")

# Two forms of a text a client sends (docs/api.md, "Text"): what is stored (`storable`) and what is
# checked (`visible`). Session 15 stored every text in its checked form, which broke what people write:
# the joiners inside Indic words and an emoji's skin tone or hair (🧑‍🦰 stored as 🧑🦰), the non-joiner a
# Persian word needs, soft hyphens pasted with an article, direction marks in Hebrew beside digits.
#
# Stored: the text as written, less only what does harm wherever it is shown or read next: C0 and C1
# controls but tab, newline and carriage return (NUL ends C strings and SQLite text; ESC and CSI start a
# terminal's escape sequences in a log or `user export` output), the bidi embeddings, overrides and
# isolates (U+202A-U+202E, U+2066-U+2069: "\u202egnp.exe" shows as "exe.png", and one left open reorders
# the list the text is shown in), the interlinear annotation marks (text between them may not be shown)
# and tag characters outside a flag (`_TAGS`).
HARMFUL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufff9-\ufffb]")

# Tag characters spell ASCII no reader sees but a model reads (instructions smuggled into a message);
# their one use is a flag: 🏴 with tags and the cancel tag is Scotland's. The whole run goes, not only
# its first character: a look-behind rule (session 15's) kept every tag but the first.
_TAGS = re.compile("(\U0001F3F4[\U000E0020-\U000E007E]{1,32}\U000E007F)|[\U000E0020-\U000E007F]+")

# Checked: without anything a reader does not see, so no word can hide from what matches text (the
# safety check, the taggers, the offline companion, the library's search, "must not be empty"): besides
# the harmful ones above, the format characters that only steer layout (soft hyphen, zero-width space,
# word joiner and the invisible operators, byte-order mark, direction marks, Hangul fillers). The
# zero-width joiner stays between two emoji (👨‍👩‍👧 is one family, not three people) and the non-joiner
# inside Arabic and Indic words, where they change what is shown. Anywhere else they hid words: 我想\u200b死
# got only a check-in, "i want to d\u200bie" a weight-loss tip, "kill\u00admyself" a check-in (session-14
# audit), and a message of nothing but U+200B passed `field`'s "must not be empty".
_EMOJI = "\u2300-\u23ff\u2600-\u27bf\u2b00-\u2bff\ufe0f\U0001F000-\U0001FAFF"
_JOINING = "\u0600-\u06ff\u0750-\u077f\u0900-\u0dff"
INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u115f\u1160\u180e\u200b\u200e\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb]"
    f"|(?<![{_EMOJI}])\u200d|\u200d(?![{_EMOJI}])"
    f"|(?<![{_JOINING}])\u200c|\u200c(?![{_JOINING}])")

# Any character `INVISIBLE`, `HARMFUL` or `_TAGS` may take: one scan of a character class finds there is
# none (nearly every message) several times faster than the alternation with its look-behinds would.
_INVISIBLE_CHARS = ("\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u115f\u1160\u180e\u200b-\u200f"
                    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb")
_MAYBE_INVISIBLE = re.compile(f"[{_INVISIBLE_CHARS}\U000E0020-\U000E007F]")

# What a stored text loses at either end as well as blanks: an invisible character there joins nothing
# (tag characters excepted: a flag may end the text; and direction marks: "\u200f" after a Hebrew line's
# closing "!" keeps it at the line's end).
_CANDIDATES = "".join(map(chr, [*range(0x3001), 0x3164, 0xfeff, 0xffa0, 0xfff9, 0xfffa, 0xfffb]))  # all there are
_EDGES = "".join(c for c in _CANDIDATES if c.isspace()) + "".join(
    re.findall(f"[{_INVISIBLE_CHARS}]", _CANDIDATES.replace("\u200e", "").replace("\u200f", "")))


def _without_stray_tags(text: str) -> str:
    return _TAGS.sub(lambda m: m.group(1) or "", text) if "\U000E0020" <= max(text, default="") else text


def visible(text: str) -> str:
    """``text`` as it is checked: without the characters no reader sees (`INVISIBLE`, stray tag
    characters). What the safety check, the taggers and the offline companion (`_text.normalize`) and
    the library's search read, and what `field` judges empty by; a stored text keeps its own form
    (`storable`). Linear (100,000 characters of U+200B: ~25 ms; of plain text, one scan)."""
    return _without_stray_tags(INVISIBLE.sub("", text)) if _MAYBE_INVISIBLE.search(text) else text


def storable(text: str) -> str:
    """``text`` as it is stored: less the `HARMFUL` characters and stray tags, and less blanks and
    invisible characters at either end; what `field` gives for a ``prose`` field (a message, a title,
    a note, a name). Linear, like `visible`."""
    if _MAYBE_INVISIBLE.search(text):
        text = _without_stray_tags(HARMFUL.sub("", text))
    return text.strip(_EDGES)


def sent_value(obj, limit: int = 80) -> str:
    """``obj`` as JSON for an error message that says what was sent: a long value is cut, with its length (a 20,000-digit
    value came back as a 20 KB error message: the session-18 review)."""
    text = json_dumps(obj)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def json_dumps(obj) -> str:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    # A lone surrogate cannot be encoded as UTF-8 (Bottle then answered an HTML "Critical error"
    # page): such text, e.g. from a provider, is written with \u escapes, which any JSON reader takes.
    if not text.isascii() and LONE_SURROGATE.search(text):
        return json.dumps(obj, separators=(",", ":"))
    return text


class ApiError(bottle.HTTPResponse):
    """Raise from a route to answer ``{"error": {"code", "message"}}`` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        self.code, self.message = code, message
        body = json_dumps({"error": {"code": code, "message": message}})
        super().__init__(body=body, status=status, headers=headers)
        self.content_type = "application/json"


ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    500: "internal_error",
}


STORAGE_RETRY_AFTER = 60  # seconds: a full disk or a read-only mount needs a person, not a quick retry


def _json_error_page(res: bottle.HTTPError) -> str:
    """Bottle's own errors (no route, wrong method, a crash) answered as JSON errors of the shape
    every route answers (``{"error": {"code", "message"}}``, /docs)."""
    status = res.status_code
    if status == 404:
        message = (f"No such endpoint: {bottle.request.method} {bottle.request.path}. The endpoints are "
                   f"listed at /docs (and /api/v1/openapi.json).")
    elif status == 405:
        message = f"{bottle.request.method} is not allowed here; allowed: {res.headers.get('Allow', '')}."
    elif status >= 500:
        if res.exception is not None:
            log.error("error in %s %s (request %s)\n%s", bottle.request.method, bottle.request.path, request_id(),
                      res.traceback)
        message = "The server hit an unexpected error; it has been logged. Try again."
    else:
        message = str(res.body or res.status_line)
    bottle.response.content_type = "application/json"
    return json_dumps({"error": {"code": ERROR_CODES.get(status, "http_%d" % status), "message": message}})


def storage_unavailable(e: "StorageUnavailable") -> ApiError:
    """The 503 a request answers when storage failed under it (logged here, once)."""
    log.error("storage unavailable in %s %s (request %s): %s", bottle.request.method, bottle.request.path,
              request_id(), e)
    return ApiError(503, "storage_unavailable", "The server cannot write its data now (full disk or "
                                                "read-only storage); nothing was saved. Try again later.",
                    headers={"Retry-After": str(STORAGE_RETRY_AFTER)})


def route_errors(callback):
    """Bottle route plugin: what a route raises becomes one JSON answer. StorageUnavailable is a
    503 storage_unavailable, so no route needs its own try; anything else unexpected is the 500
    that `_json_error_page` logs, once, with method and path. (Left to Bottle, each traceback
    was also written to wsgi.errors: every 500 logged it twice.)"""

    @functools.wraps(callback)
    def route(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except bottle.HTTPResponse:
            raise
        except StorageUnavailable as e:
            raise storage_unavailable(e)
        except Exception as e:
            raise bottle.HTTPError(500, "Internal Server Error", e, traceback.format_exc()) from e

    return route


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


class Setting:
    """One config key: its type, default, limits and a line of documentation."""

    def __init__(self, default=None, doc="", kind=str, choices=None, min=None, max=None, items=None,
                 required=False):
        self.default, self.doc, self.kind, self.required = default, doc, kind, required
        self.choices, self.min, self.max = choices, min, max
        # kind=dict with items {key: Setting}: as a section's "*", a mapping of name -> those keys
        # (e.g. agents); as any other key, one nested group of those keys (e.g. auth.throttle).
        self.items = items

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        kind = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
                list: "a list", dict: "a mapping"}[self.kind]
        if self.min is not None and self.max is not None:
            return f"{kind} {self.min}-{self.max}"
        if self.min is not None:
            return f"{kind} >= {self.min}"
        return kind

    def parse(self, value, where: str):
        bad = ConfigError(f"{where}: must be {self.describe()}, got {json_dumps(value)}")
        if self.kind is bool:
            if not isinstance(value, bool):
                raise bad
        elif self.kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad
            if self.kind is int and value != int(value):
                raise bad
            value = self.kind(value)
            if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
                raise bad
        elif self.kind is str:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str):
                raise bad
        elif self.kind is list:
            if not isinstance(value, list):
                raise bad
        elif self.kind is dict:
            if not isinstance(value, dict):
                raise bad
        if self.choices and value not in self.choices:
            raise bad
        return value


def core_schema() -> dict:
    """The config.yaml sections the core owns. Plugins add theirs with the config_schema hook."""
    agent = {
        "title": Setting("", "Name shown in the mini-program."),
        "description": Setting("", "One line about what the agent is for."),
        "prompt": Setting("", "System prompt file, relative to config.yaml."),
        "providers": Setting([], "Provider chain: names from providers:, tried in order.", list),
        "vision_providers": Setting([], "Provider chain for messages with images: names from providers: whose "
                                        "vision is true, tried in order; empty: the reply says this server cannot "
                                        "look at photos yet.", list),
        "history": Setting(20, "How many past messages of the session are sent.", int, min=0, max=500),
    }
    return {
        "server": {
            "host": Setting("0.0.0.0", "Address to listen on (0.0.0.0: every interface)."),
            "port": Setting(5000, "TCP port.", int, min=1, max=65535),
            "threads": Setting(16, "waitress worker threads: each open stream holds one.", int, min=1, max=512),
            "max_body_kb": Setting(1024, "Largest request body accepted, in KiB (bigger: 413).", int, min=1, max=1048576),
            "timezone": Setting("", "IANA time zone of users without settings.timezone (their days, $today, "
                                    "reminders); empty: this machine's."),
            # Behind Caddy or nginx every request comes from the proxy's address; these tell
            # waitress whose X-Forwarded-* headers to believe, so REMOTE_ADDR (which the login
            # throttle and the logs use) is the real client's.
            "trusted_proxy": Setting("", "Address of the reverse proxy whose forwarded headers are believed "
                                         "(e.g. 127.0.0.1); '*' trusts any peer; empty: none, headers are dropped."),
            "trusted_proxy_count": Setting(1, "How many proxies in front of the server add to X-Forwarded-For.",
                                           int, min=1, max=10),
            "trusted_proxy_headers": Setting(["x-forwarded-for", "x-forwarded-proto"],
                                             "Forwarded headers taken from the trusted proxy.", list),
            "clear_untrusted_proxy_headers": Setting(True, "Drop X-Forwarded-* and Forwarded headers that did "
                                                           "not come from the trusted proxy.", bool),
            # waitress's defaults (100 connections, silence timed out after 120 s, no deadline for
            # a request that trickles in) let 100 slow or idle connections lock everyone out
            # (measured: 0 of 12 other clients answered); see GuardedServer and bench/connections.
            "connection_limit": Setting(500, "Open connections at most; new ones wait in the listen queue "
                                             "(needs about this many open files: ulimit -n).", int, min=10, max=100000),
            "connections_per_address": Setting(64, "Open connections from one client address at most; more "
                                                   "are closed at once (the trusted_proxy is exempt). 0: no cap.",
                                               int, min=0, max=100000),
            "request_timeout": Setting(30, "Seconds a client has to send a whole request (headers and body) "
                                           "once it has begun; then 408 and closed.", int, min=1, max=3600),
            "channel_timeout": Setting(60, "Seconds a kept-alive connection may sit idle before it is closed.",
                                       int, min=1, max=86400),
            "shutdown_seconds": Setting(10, "On SIGTERM: seconds requests in progress (streams too) get to "
                                            "finish before their connections are closed.", int, min=0, max=600),
        },
        "storage": {
            "backend": Setting("files", "Storage plugin, by name."),
            "path": Setting("data", "Data folder, relative to config.yaml."),
        },
        "providers": {},  # name -> {plugin: ..., plugin's own keys}: validated by the provider class
        "agents": {"*": Setting({}, "Agents by name.", dict, items=agent)},
        "emotion": {
            "tagger": Setting("model", "Emotion tagger plugin, by name."),
            "labels": Setting(["happy", "calm", "neutral", "sad", "anxious", "angry", "tired"],
                              "Labels of the user's messages (the mood timeline).", list),
            # Empty (what a config from before reply labels has): replies use `labels`, as they did.
            "reply_labels": Setting([], "Labels a reply may carry, for the mascot: caring, concerned, encouraging, "
                                        "happy, calm, neutral; a new one a list lacks is shown as its nearest "
                                        "original label. Empty: the labels above.", list),
        },
        "plugins": {
            "disabled": Setting([], "Plugin names not to load (see `wellmate.py check`).", list),
            "directory": Setting("plugins", "Folder of user plugin files, relative to config.yaml."),
        },
        "logging": {
            "level": Setting("INFO", "Log level.", choices=["DEBUG", "INFO", "WARNING", "ERROR"]),
        },
    }


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def expand_env(value, where: str, env=os.environ):
    """Replace ${VAR} and ${VAR:-default} in every string of a parsed YAML tree."""
    if isinstance(value, dict):
        return {k: expand_env(v, f"{where}.{k}" if where else str(k), env) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, f"{where}[{i}]", env) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def sub(m):
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"{where}: environment variable {name} is not set; "
                          f"set it, or give a default with ${{{name}:-default}}")

    whole = _VAR.fullmatch(value)
    out = _VAR.sub(sub, value)
    # A value that is one ${VAR} alone takes the YAML type of what it expands to: port: ${PORT}.
    if whole and out.strip():
        try:
            typed = yaml.safe_load(out)
        except yaml.YAMLError:
            return out
        if isinstance(typed, (int, float, bool)):
            return typed
    return out


def _suggest(key, known) -> str:
    near = difflib.get_close_matches(str(key), list(known), n=1)
    return f"; did you mean '{near[0]}'?" if near else ""


def validate_config(raw: dict, schema: dict, filename: str) -> tuple[dict, list[str]]:
    """Check raw config against the schema; return (config with defaults, warnings)."""
    warnings = []
    config = {}
    for section, keys in schema.items():
        given = raw.get(section)
        where = f"{filename}: {section}"
        if given is None:
            given = {}
        if not isinstance(given, dict):
            raise ConfigError(f"{where}: must be a mapping of keys, got {json_dumps(given)}")
        if "*" in keys:  # a mapping of named entries, each with the same keys
            entry_schema = keys["*"].items
            config[section] = {}
            for name, entry in given.items():
                if not isinstance(entry, dict):
                    raise ConfigError(f"{where}.{name}: must be a mapping of keys, got {json_dumps(entry)}")
                config[section][name], w = _validate_keys(entry, entry_schema, f"{where}.{name}")
                warnings += w
        elif not keys:  # free-form, validated by its owner
            config[section] = given
        else:
            config[section], w = _validate_keys(given, keys, where)
            warnings += w
    # A disabled plugin's section is not unknown: it is kept for when the plugin is enabled again.
    plugins = raw.get("plugins") if isinstance(raw.get("plugins"), dict) else {}
    disabled = {name for name in plugins.get("disabled") or [] if isinstance(name, str)} \
        if isinstance(plugins.get("disabled"), list) else set()
    for section in raw:
        if section not in schema and section not in disabled:
            warnings.append(f"{filename}: unknown section '{section}'{_suggest(section, schema)}")
    return config, warnings


def _validate_keys(given: dict, keys: dict, where: str):
    out, warnings = {}, []
    for key, setting in keys.items():
        value = given.get(key)
        if setting.required and (value is None or value == ""):
            raise ConfigError(f"{where}.{key}: required: {setting.doc}")
        out[key] = setting.default if value is None else setting.parse(value, f"{where}.{key}")
        if isinstance(out[key], (list, dict)):
            out[key] = type(out[key])(out[key])  # never share a mutable default
        if setting.kind is dict and setting.items:  # a nested group of keys, e.g. auth.throttle
            out[key], nested = _validate_keys(out[key], setting.items, f"{where}.{key}")
            warnings += nested
    for key in given:
        if key not in keys:
            warnings.append(f"{where}.{key}: unknown key{_suggest(key, keys)}")
    return out, warnings


# libyaml's parser where PyYAML has it (its wheels do): the same values (the constructor is PyYAML's
# own Python either way) about 10 times sooner. prompts/safety.yaml parsed in 1.71 s, now 0.15 s;
# offline_tips.yaml 0.76 -> 0.13 s (load ~6): at every start, and in every app the tests build.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str):
    """What ``yaml.safe_load(text)`` gives, with libyaml's parser when PyYAML has it."""
    return yaml.load(text, Loader=YAML_LOADER)


def read_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file; copy config.yaml from the repository or pass --config PATH")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text")
    try:
        raw = load_yaml(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{at}: {getattr(e, 'problem', e)}")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections (server:, storage:, ...)")
    return raw


# ---------------------------------------------------------------------------------------------
# Prompts
# ---------------------------------------------------------------------------------------------


RACY_NS = 3_000_000_000  # a file's stamp is trusted once its mtime is this old (FAT's clock: 2 s)


class Prompts:
    """Prompt files with $placeholders, re-read when they change (their mtime, size or inode)."""

    def __init__(self, base: Path):
        self.base = base
        # name -> (stamp, template, its placeholders). Keyed by the name as given, stamped by what
        # stat says of the file it names: a chat turn renders its agent's prompt, and resolving
        # the path and scanning the template for placeholders every time cost ~30 us of it.
        self._cache: dict[str, tuple[tuple, string.Template, frozenset]] = {}
        self._lock = threading.Lock()

    def path(self, name: str) -> Path:
        return (self.base / name).resolve()

    def template(self, name: str) -> string.Template:
        return self._read(name)[0]

    def _read(self, name: str) -> tuple[string.Template, frozenset]:
        try:
            st = os.stat(self.base / name)
        except FileNotFoundError:
            raise ConfigError(f"{self.path(name)}: prompt file not found")
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev)
        with self._lock:
            cached = self._cache.get(name)
        if cached and cached[0] == stamp:
            return cached[1], cached[2]
        path = self.path(name)
        try:
            template = string.Template(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: prompt file is not UTF-8 text")
        if not template.is_valid():
            raise ConfigError(f"{path}: a '$' that is not a placeholder; write $$ for a literal dollar sign")
        used = frozenset(template.get_identifiers())
        # A file changed within the last RACY_NS may change again with the same stamp (a coarse
        # clock: FAT on an SD card counts 2 s; an edit to the same size): kept unstamped, it is read
        # again next time, until its stamp is old enough to tell edits apart (as git does). One
        # dated ahead of our clock is read each time until then: ~30 us a turn, and always right.
        if time.time_ns() - st.st_mtime_ns < RACY_NS:
            stamp = None
        with self._lock:
            self._cache[name] = (stamp, template, used)
        return template, used

    def placeholders(self, name: str) -> set[str]:
        return set(self._read(name)[1])

    def render(self, name: str, values: dict) -> str:
        template, used = self._read(name)
        missing = sorted(used - set(values))
        if missing:
            raise ConfigError(f"{self.path(name)}: nothing fills ${', $'.join(missing)}; "
                              f"known placeholders: {', '.join(sorted(values))}")
        # Values given as functions (see Hookspecs.prompt_context) are worked out only if used.
        return template.substitute({key: str(values[key]()) if callable(values[key]) else values[key] for key in used})


# ---------------------------------------------------------------------------------------------
# Contracts for plugins: storage, providers, taggers
# ---------------------------------------------------------------------------------------------


class Conflict(Exception):
    """A storage write would break uniqueness (a username already taken, a record's client_id
    already used for another type). ``details`` says what, for the API's answer."""

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.details = details


class StorageUnavailable(Exception):
    """The store cannot be used as it is: a write failed outside the request's control (read-only
    folder, full disk, I/O error: nothing was saved), or a data file cannot be trusted at open
    (empty, not valid). Backends raise it wrapping the OSError; the app answers every route's
    with a 503 `storage_unavailable` and the command line prints it as one line."""


class Index(NamedTuple):
    """A lookup a plugin makes in one of its collections: documents whose fields ``by`` equal given
    values, in the order of the field ``order`` (or of their ids). See `Hookspecs.register_collections`."""

    by: tuple = ()
    order: str | None = None


class Collection:
    """A named collection of documents and the lookups made in it: ``indexes`` (`Index`, or a
    tuple of field names: equality only) and ``unique`` (tuples of fields no two documents share;
    a document with one of them None is not held to it). A unique key is also an index."""

    def __init__(self, name: str, indexes=(), unique=(), owner: str = ""):
        if not isinstance(name, str) or not COLLECTION_NAME.fullmatch(name):
            raise ConfigError(f"{owner or 'collections'}: a collection name is 1-64 lower-case letters, "
                              f"digits or '_', got {name!r}")
        self.name, self.owner = name, owner
        self.unique = tuple(tuple(fields) for fields in unique)
        self.indexes = tuple(dict.fromkeys([Index(*i) if isinstance(i, (tuple, list)) and i and isinstance(i[0], (tuple, list))
                                            else i if isinstance(i, Index) else Index(tuple(i))
                                            for i in indexes] + [Index(fields) for fields in self.unique]))

    def index_for(self, by, order: str | None) -> Index:
        """The declared index that answers a lookup by the fields ``by`` in ``order`` (a field,
        maybe with a leading "-"; None: any order); ValueError naming what to declare if none."""
        fields, field = set(by), (order or "").lstrip("-") or None
        for index in self.indexes:
            if set(index.by) == fields and (order is None or index.order == field):
                return index
        if not fields and field is None:
            return Index()
        raise ValueError(f"collection {self.name}: no index by {sorted(fields)} ordered by {field}; "
                         f"declare Index(by={tuple(sorted(fields))}, order={field!r}) in register_collections")

    def __repr__(self) -> str:
        return f"Collection({self.name!r}, indexes={list(self.indexes)!r}, unique={list(self.unique)!r})"


class Storage:
    """The storage contract: a small generic part, collections of documents, plus three special
    operations that need a shape of their own (the chat message log, batched upserts, service
    checks). Every backend implements all of it and passes tests/storage_contract.py.

    Documents are plain JSON-able dicts with a string ``id`` chosen by the caller (`new_id()`);
    times are ISO 8601 UTC strings from `now_iso()` (they sort as text). A collection is declared
    by the plugin that owns it (`Hookspecs.register_collections`), with the lookups it makes: a
    backend builds those and no others, so every lookup costs what its answer costs, never what
    the whole collection holds. Features own their data: due times, pruning and what a deleted
    user leaves behind are the owning plugin's business, not the backend's.

    Every method is safe to call from several threads at once; a write is durable (on disk,
    fsynced) when it returns, unless asked with ``durable=False``: then every reader sees it and a
    crash or kill of the process does not lose it, but a power cut may, until the next durable
    write to the same collection (or `sync`). Documents returned are copies: change them freely.

    Lists are pages: ``(items, next_cursor)``; pass ``next_cursor`` back as ``before`` for the
    following page; it is None on the last page. Cursors are opaque strings made only of the
    characters a URL carries as they are (letters, digits and ``-._~``): routes hand them to
    clients as ``next``, who send them back as ``?before=``. One the backend did not make raises
    ValueError.
    """

    name = "?"

    # -- documents -------------------------------------------------------------------------------
    def insert(self, collection: str, doc: dict, durable: bool = True) -> dict:
        """Store a new document. Raise Conflict if its ``id`` or a unique key is taken
        (details: ``fields``, the unique key's field names, or ``("id",)``)."""
        raise NotImplementedError

    def put(self, collection: str, doc: dict, durable: bool = True) -> dict:
        """Store the document whole, replacing one with the same ``id``. Raise Conflict if a
        unique key is another document's."""
        raise NotImplementedError

    def get(self, collection: str, doc_id: str) -> dict | None:
        raise NotImplementedError

    def update(self, collection: str, doc_id: str, change, durable: bool = True) -> dict | None:
        """Change one document atomically and return it as stored; None if there is none.

        ``change`` is a dict of fields to set, or a function: it gets the document (None if there
        is none) and returns the whole new document (which may create it), or None to leave
        things as they are. It runs while no other write to the collection can, so a read,
        decide and write is one step (a refresh token used once, a counter). A new document
        with another ``id`` is a ValueError. Raise Conflict as `put` does; an exception from
        ``change`` stores nothing and passes through."""
        raise NotImplementedError

    def delete(self, collection: str, doc_id: str) -> bool:
        raise NotImplementedError

    def delete_where(self, collection: str, where: dict) -> int:
        """Delete every document whose fields equal ``where``'s (needs an index ``by`` them);
        return how many."""
        raise NotImplementedError

    def find(self, collection: str, where: dict | None = None, *, order: str | None = None,
             start=None, end=None, limit: int = 50, before: str | None = None) -> tuple[list, str | None]:
        """A page of the documents whose fields equal ``where``'s (a missing field is None).

        ``order`` is a field, ascending, or "-field", descending; ties go by id, the same way;
        without it, in the order of the index that answers (by id when it has no order field).
        With ``start`` or ``end`` only documents with ``start <= order field < end`` count (those
        where it is None are then left out); they need an ``order`` (ValueError without). The
        lookup needs a declared `Index` with ``by`` the fields of ``where`` and that ``order``
        field; ValueError otherwise. ``limit`` is a positive integer."""
        raise NotImplementedError

    def count(self, collection: str, where: dict | None = None) -> int:
        """How many documents match ``where`` (an index ``by`` its fields; none: all of them).
        Cheap: a counter, not a scan."""
        raise NotImplementedError

    def sync(self, collection: str) -> None:
        """Make every write to the collection durable (a no-op when they all are)."""

    # -- special: batched upsert -----------------------------------------------------------------
    def upsert(self, collection: str, docs: list[dict], key: tuple, fixed: tuple = (),
               defaults: dict | None = None) -> list[tuple[str, dict]]:
        """Store several documents in one atomic, durable write, matched to stored ones by the
        fields of ``key`` (a declared unique key, e.g. ``("user_id", "client_id")``).

        A field of ``defaults`` that a document leaves out keeps the value of the stored document
        it matches (a retry sent without its time keeps the stored time), and has the default's
        value in a document inserted; the match and the kept value are read in the same atomic step.

        A document whose key fields are all set and match a stored document replaces that
        document's fields, keeping its ``id`` and ``created_at``: sending the same documents again
        (a retried sync) never duplicates them. Others are inserted. Two calls at once with the
        same keys store each once. Return, in order, ``(outcome, stored)``, outcome "created",
        "updated" or "unchanged". Raise Conflict, storing nothing, if an inserted ``id`` is taken,
        or if a document would change a ``fixed`` field of the one it matches, stored or earlier
        in the call (details: ``key`` (the key's values as a dict), ``field``, ``stored``, the
        value it has): a steps record never silently becomes a weight."""
        raise NotImplementedError

    # -- special: the chat message log -----------------------------------------------------------
    def append_message(self, session_id: str, message: dict, durable: bool = True) -> dict:
        """Append a message (``{id, role, content, created_at, ...}``) to a chat session's log
        (``session_id``: 1-128 letters, digits, '-' or '_'), which starts empty. Cost must not grow with how
        many messages are stored. ``durable=False`` as for documents: the chat service writes
        the user's message so and makes it durable with the reply's append (a disk flush saved
        per turn; nothing is acknowledged to the user before that)."""
        raise NotImplementedError

    def sync_messages(self, session_id: str) -> None:
        """Make every message appended to the log durable (a no-op if they all are)."""

    def list_messages(self, session_id: str, limit: int = 50, before: str | None = None) -> tuple[list, str | None]:
        """The newest ``limit`` messages before the cursor, returned oldest first (reading order);
        the cursor pages further back in time. Cost: the page's, not the log's."""
        raise NotImplementedError

    def iter_messages(self, session_id: str):
        """Every message of the log, oldest first, read a block at a time (an export of 100,000
        messages in constant memory)."""
        raise NotImplementedError

    def delete_messages(self, session_id: str) -> bool:
        """Remove the log; False if there was none."""
        raise NotImplementedError

    # -- service ---------------------------------------------------------------------------------
    def ping(self) -> None:
        """Do a real read of the store; raise if it is unusable."""
        raise NotImplementedError

    def trouble(self) -> str | None:
        """Why writes fail now, or None: cheap enough for every health check (no read of the
        data). A backend remembers its last write failure until a write succeeds again."""
        return None

    def stats(self) -> dict:
        """What the backend would tell an operator about itself (sizes on disk, ...): for the
        admin's service view. Counts of documents are `count`'s."""
        return {}

    def close(self) -> None:
        """Flush and release files. Called once at shutdown."""


class TimedStorage:
    """The storage as a Wellmate hands it out when a plugin implements `storage_operation`: each
    call of the contract's operations in ``TIMED`` is timed and reported; everything else
    (``name``, ``trouble``, a backend's own attributes) is the backend's, untouched. The hook's
    implementations are called directly, each with the arguments it takes, not through pluggy's
    dispatch: on a loaded 2-core machine that took 6 us a call, more than the ``get`` it timed.
    Measured there (bench/observe, load 12 on 2 cores): a files-backend ``get`` takes 2.8 us alone
    and 12.1 us timed and observed in the metrics' histogram; a request costs ~0.1 ms more."""

    TIMED = ("insert", "put", "get", "update", "delete", "delete_where", "find", "count", "sync", "upsert",
             "append_message", "sync_messages", "list_messages", "delete_messages", "ping")
    MESSAGE_LOG = ("append_message", "sync_messages", "list_messages", "delete_messages")

    def __init__(self, storage: Storage, wm: "Wellmate"):
        self.backend = storage
        # pluggy's order: the plugin loaded last first.
        reports = [(impl.function, impl.argnames, impl.plugin_name) for impl in
                   reversed(wm.pm.hook.storage_operation.get_hookimpls())]
        for operation in self.TIMED:
            setattr(self, operation, self._timed(operation, getattr(storage, operation), reports, wm))

    def _timed(self, operation: str, method, reports: list, wm):
        message_log = operation in self.MESSAGE_LOG

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                seconds = time.perf_counter() - started
                given = {"operation": operation, "seconds": seconds, "wm": wm,
                         "collection": "messages" if message_log else (args[0] if args else kwargs.get("collection", ""))}
                for function, argnames, plugin in reports:
                    try:
                        function(*[given[name] for name in argnames])
                    except Exception:
                        log.exception("the storage_operation hook of plugin %s failed", plugin)

        timed.__name__ = timed.__qualname__ = operation
        timed.__doc__ = method.__doc__
        timed.__wrapped__ = method  # inspect.signature shows the backend's (records asks whether upsert takes defaults)
        return timed

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def __repr__(self) -> str:
        return f"TimedStorage({self.backend!r})"


class ProviderError(Exception):
    """A provider failed. ``retryable`` is True when the next provider in the chain may answer."""

    def __init__(self, message: str, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


class Provider:
    """Base class of AI providers. A subclass declares its config keys in ``settings`` and
    implements `reply` (and `stream` if the upstream can stream)."""

    settings: dict = {}
    # Whether it follows an instruction such as "say this reminder in your own words"; a
    # rule-based provider that only answers what a user says sets False, and is not asked.
    follows_instructions = True
    # For one that does not: what the operator is told when every agent's providers are such
    # (Wellmate.setup_notice), after "no AI model: every agent's providers (...) end at".
    no_model_notice = "providers that cannot follow instructions; add one that can (docs/models.md)"
    # Whether it sees this turn's system prompt: an agent platform that owns its bot's prompt may
    # not. What plugins added to the prompt (a library passage) is then not cited as a source.
    reads_system_prompt = True

    def __init__(self, name: str, config: dict, wm: "Wellmate"):
        filename = getattr(getattr(wm, "config_path", None), "name", None)
        where = f"{filename}: providers.{name}" if filename else f"providers.{name}"
        self.name, self.wm = name, wm
        self.config, _ = self.validate(config, where)  # also fills defaults when built directly

    @classmethod
    def validate(cls, config: dict, where: str) -> tuple[dict, list[str]]:
        """Check one ``providers.NAME`` mapping against ``settings`` and `check_config`; return
        (settings with defaults, warnings about unknown keys)."""
        keys = {"plugin": Setting("", "Provider plugin, by name."), **cls.settings}
        checked, warnings = _validate_keys(config, keys, where)
        return cls.check_config(checked, where), warnings

    @classmethod
    def check_config(cls, config: dict, where: str) -> dict:
        """Checks ``settings`` cannot express (a URL's scheme, say): return the config or raise
        ConfigError naming ``where`` and the key."""
        return config

    def reply(self, messages: list[dict], turn: Turn | None = None) -> str:
        """Return the whole reply to an OpenAI-style ``messages`` list. Raise ProviderError.
        ``turn`` is the chat turn (user, session, flags), None when the message is not a user's
        turn (a reminder to phrase, a label to find)."""
        raise NotImplementedError

    def stream(self, messages: list[dict], turn: Turn | None = None):
        """Yield the reply as text deltas. The default yields `reply` in one piece.
        Raise ProviderError before the first delta to let the next provider answer."""
        yield call_with_turn(self.reply, messages, turn)

    def close(self) -> None:
        """Release connections at shutdown."""


class Turn:
    """One chat turn as plugins and providers see it (``before_reply``, ``after_reply``,
    ``Provider.reply``/``stream``). ``user`` and ``session`` are the stored dicts (the session as
    it was before this turn), ``agent`` the agent's name, ``text`` the user's message,
    ``user_message_id`` its id and ``message_id`` the reply's (the ids the API answers with),
    ``attachments`` the images that came with the message (each a dict: ``type`` "image", ``id``
    (the upload's), ``content_type``, ``width``, ``height``, ``size`` and ``data``, the stored
    bytes; only a turn asked of its agent's ``vision_providers`` has them). ``flags`` holds facts plugins tell
    each other and the providers about this turn (the chat plugin's ``after_reminder``: the message answers a
    reminder pushed into the session; the safety plugin's: ``crisis``, ``check_in``,
    ``notes_shown``, ``crisis_earlier``, ``risk_word``); a platform that keeps its own conversations keys them
    by ``user["id"]`` and ``session["id"]``."""

    __slots__ = ("user", "agent", "session", "text", "user_message_id", "message_id", "attachments", "flags")

    def __init__(self, user: dict, agent: str, session: dict, text: str, user_message_id: str = "",
                 message_id: str = "", attachments: list | None = None, flags: dict | None = None):
        self.user, self.agent, self.session, self.text = user, agent, session, text
        self.user_message_id, self.message_id = user_message_id, message_id
        self.attachments = list(attachments or [])
        self.flags = dict(flags or {})

    def __repr__(self) -> str:
        return (f"Turn(agent={self.agent!r}, user={self.user.get('id')!r}, session={self.session.get('id')!r}, "
                f"flags={self.flags!r})")


class ProviderAttempt(NamedTuple):
    """One provider asked during a chat turn (`TurnOutcome.attempts`)."""

    provider: str
    seconds: float  # from asking it until its whole reply, or its failure
    first_delta: float | None  # a stream: seconds until its first text arrived; None if none did, or not streamed
    error: str | None  # why it failed; None when it answered


class TurnOutcome(NamedTuple):
    """How a chat turn ended, for the `turn_finished` hook."""

    status: str  # "complete", "incomplete", "fallback" or "failed"
    provider: str | None  # what the reply is stored under (a provider, or the plugin that answered); None: failed
    streamed: bool
    seconds: float  # from the turn's start (the user's message stored) to its end
    attempts: tuple  # ProviderAttempt for each provider asked, in order


def call_with_turn(method, messages: list[dict], turn: Turn | None):
    """``method(messages, turn=turn)``; ``method(messages)`` for a provider written before turns
    (``def reply(self, messages)``, or with options of its own: ``temperature=0.7`` must not
    receive the turn), which keeps working."""
    function = getattr(method, "__func__", method)
    return method(messages, turn=turn) if _takes_turn(function) else method(messages)


@functools.lru_cache(maxsize=256)
def _takes_turn(function) -> bool:
    """Whether a provider's ``reply``/``stream`` has a ``turn`` parameter (or ``**kwargs``),
    inspected once per function: ~15 us, too much for every turn."""
    parameters = inspect.signature(function).parameters.values()
    return any(p.name == "turn" and p.kind is not p.POSITIONAL_ONLY or p.kind is p.VAR_KEYWORD for p in parameters)


class Tagger:
    """Base class of emotion taggers."""

    settings: dict = {}

    def __init__(self, config: dict, wm: "Wellmate"):
        self.config, self.wm = config, wm

    def tag(self, text: str, labels: list[str]) -> str:
        """Return one of ``labels`` for ``text``."""
        raise NotImplementedError

    def instructions(self, labels: list[str]) -> str:
        """Text added to every agent's system prompt, e.g. asking the model to label its own
        reply; empty for a tagger that needs no help from the model."""
        return ""

    def reader(self, labels: list[str]):
        """For a tagger that reads a reply's label from the reply itself: a new object for one
        provider's output, with ``feed(delta) -> text to show``, ``end() -> text still held
        back`` and ``label`` (what it found, or None). None: replies are tagged with `tag`."""
        return None

    def reply_label(self, text: str, labels: list[str]) -> str | None:
        """For a tagger that asks a model: one of ``labels`` (emotion.reply_labels: what the mascot
        shows) for the reply ``text``, or None to let the chat decide from the turn and the words."""
        return None

    def close(self) -> None:
        """Release connections at shutdown."""


# ---------------------------------------------------------------------------------------------
# Small shared helpers
# ---------------------------------------------------------------------------------------------


COLLECTION_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def new_id() -> str:
    return uuid.uuid4().hex


def now_iso(moment: datetime | None = None) -> str:
    """UTC time as ISO 8601 with milliseconds and Z: these strings sort in time order."""
    moment = moment or datetime.now(timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def whole_text(text: str) -> str:
    """A provider's text as storable Unicode: halves of a surrogate pair (an emoji split across a
    stream's deltas) joined, a lone half replaced by U+FFFD. Stored as is, a half failed the next
    turn's request to the model (UTF-8 cannot encode it)."""
    if text.isascii() or not LONE_SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def parse_time(text: str, field: str) -> str:
    """Parse a client's ISO 8601 time (with offset) into our UTC form, or raise a 400."""
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "invalid_field", f"{field}: not an ISO 8601 time, got {sent_value(text)}")
    if moment.tzinfo is None:
        raise ApiError(400, "invalid_field", f"{field}: give a time with an offset, e.g. 2026-11-20T08:00:00+08:00")
    try:
        return now_iso(moment)
    except OverflowError:  # 9999-12-31T23:59-14:00 is in year 10000 in UTC (a 500 before)
        raise ApiError(400, "invalid_field", f"{field}: {sent_value(text)} is outside the years 1-9999 in UTC")


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               dict: "an object", list: "a list"}

# A number sent as text (a mini-program's <input> gives text, a CSV file has nothing else): accepted on purpose
# (looked at again in session 16: a WeChat <input>'s e.detail.value is always a string, and ../shared/API.md and
# docs/miniprogram.md give the field no type a client would convert to) when it is written as JSON writes a number,
# with a sign, a point or an exponent, blanks around it and any digits (a full-width ７０ from an IME left in
# full-width mode is 70); anything else is a 400, never a guess. A record's value and the profile's age read it
# here, one rule (session 17: `age: "30"` was a 400 while `value: "70"` was a weight).
# Session 18 (a team decision): digits are any Unicode decimal digits (category Nd: ASCII, full-width ３５, Arabic-Indic
# ٣٥, Persian ۳۵, Devanagari ३५, ...), since int() and float() read them all; but one number is written in one script
# (ASCII and full-width counting as one, the same keys of an IME), so "1৪" (Bengali 4, which looks like an 8) is no
# 18 and no 14 but a 400. What only looks like a digit (² ③ Ⅻ 三十五) is no digit. A full-width IME also types the sign,
# the point and the exponent full-width (－７０．５, ７ｅ１), and the Arabic decimal separator ٫ is the point of
# Arabic-Indic digits (٧٠٫٥): read as their ASCII forms, nothing else is translated.
NUMBER_PUNCTUATION = str.maketrans({"\uff0b": "+", "\uff0d": "-", "\uff0e": ".", "\uff45": "e", "\uff25": "E",
                                    "\u066b": "."})
# Possessive (++, *+): "\d+\.?\d*" tried every split of a run of digits that ended in a letter, so 20,000 digits and an
# "x" took 10 s of CPU, 100,000 four minutes (found in session 18); possessive runs never give back, so it is linear.
NUMBER_TEXT = re.compile(r"\s*+[+-]?+(?:\d++(?:\.\d*+)?+|\.\d++)(?:[eE][+-]?+\d++)?+\s*+")
INTEGER_TEXT = re.compile(r"\s*+[+-]?+\d++\s*+")
FULL_WIDTH_ZERO = 0xFF10


def digit_scripts(text: str) -> int:
    """How many scripts the text's decimal digits are written in: each script's digits run from its own zero
    (U+0030, U+0660, U+FF10...); full-width counts as ASCII. One pass."""
    zeros = set()
    for c in text:
        if c.isdecimal():
            zero = ord(c) - int(c)
            zeros.add(0x30 if zero == FULL_WIDTH_ZERO else zero)
    return len(zeros)


def number_in_text(text: str) -> int | float | None:
    """The number a text writes (`NUMBER_TEXT`): an int for whole digits ("70", " ７０ ", "٧٠"), a float otherwise
    ("70.5", "７０．５", "7e1"); None for anything else. float() alone also reads "7_0" as 70 (a typo stored as a
    weight), and "nan", "infinity", which are no numbers here; "", "0x46", "三十" and digits of two scripts ("7٠")
    are none either. Whole digits are read as an int exactly, up to JSON_MAX_DIGITS of them as a JSON integer may
    have (through float, thirty 1s were refused as "111111111111111105501764517888", a number nobody sent: the
    session-17 review); more are none. A decimal text of too many digits is inf, which callers refuse as they refuse
    any number that is not finite."""
    text = text.translate(NUMBER_PUNCTUATION)
    if INTEGER_TEXT.fullmatch(text):
        number = int(text) if sum(c.isdecimal() for c in text) <= JSON_MAX_DIGITS else None
    elif NUMBER_TEXT.fullmatch(text):
        number = float(text)
    else:
        return None
    return number if digit_scripts(text) == 1 else None


def query_integer(name: str, default: int, low: int, high: int, says: str = "") -> int:
    """``?name=N`` of the current request, an integer from ``low`` to ``high`` written as `number_in_text` reads
    one (full-width ３０ and other decimal digits too; "3_0", which int() read as 30, and "30.0" are not), else a
    400 naming the parameter (``says``: what sets its bounds, " (mood.max_days)")."""
    raw = bottle.request.query.get(name)
    if raw is None:
        return default
    try:  # bottle gives a query's bytes as latin-1 text: %EF%BC%93%EF%BC%90 is ３０ once read as UTF-8
        text = raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        text = None
    number = number_in_text(text) if text is not None and len(text) <= 100 else None
    if not isinstance(number, int) or not low <= number <= high:
        raise ApiError(400, "invalid_field", f"{name}: must be an integer {low}-{high}{says}, got {sent_value(text or raw)}")
    return number


def field(body: dict, name: str, kind=str, *, required=True, default=None, choices=None, number_text=False,
          min=None, max=None, max_len=None, exact=False, prose=False, leave_out=None, empty_code="invalid_field"):
    """Read one field of a JSON body, or raise a 400 that says which field and what was wrong. A
    text is given without surrounding blanks and in its checked form (`visible`: an id, a name to look
    up, a time zone); ``prose`` (a message, a title, a note, a name people read): in its stored form
    (`storable`: emoji and script joiners kept); ``exact``: only without the blanks (a password is
    checked as it was typed when it was set). A text that is empty once checked (blanks and invisible
    characters only) is missing if ``required``; if the field is optional and ``leave_out`` says what
    leaving it out does ("to start a new session"), an ``empty_code`` 400 that says so: an empty id
    is a client that lost it, not one that means none. ``number_text``: an int or float field also takes
    the number written as text (`number_in_text`: "30" for 30), as a form's input gives it."""
    value = body.get(name)
    if value is None:
        if required:
            raise ApiError(400, "missing_field", f"{name}: required")
        return default
    if number_text and kind in (int, float) and isinstance(value, str):
        # a number written as text, by the rule a record's value follows (`number_in_text`); what is not one stays
        # the text, so the 400 below says what was sent
        number = number_in_text(value)
        value = value if number is None or not math.isfinite(number) else number
    ok = isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        try:
            value, ok = float(value), True
        except OverflowError:  # an integer beyond any float
            value, ok = math.inf, True
    if kind is float and ok and not math.isfinite(value):
        raise ApiError(400, "invalid_field", f"{name}: must be a finite number, got {sent_value(value)}")
    if not ok:
        raise ApiError(400, "invalid_field", f"{name}: must be {_TYPE_NAMES[kind]}, got {sent_value(value)}")
    if kind is str:
        checked = value.strip() if exact else visible(value).strip()
        # empty once checked: a text of zero-width spaces is as empty as one of blanks
        if not checked and required:
            raise ApiError(400, "invalid_field", f"{name}: must not be empty")
        if not checked and leave_out:
            raise ApiError(400, empty_code, f"{name}: must not be empty; leave it out (or send null) {leave_out}")
        value = storable(value) if prose and checked and not exact else checked
        if max_len and len(value) > max_len:
            raise ApiError(400, "invalid_field", f"{name}: at most {max_len} characters")
    if choices and value not in choices:
        raise ApiError(400, "invalid_field", f"{name}: must be one of {', '.join(map(str, choices))}")
    if (min is not None and value < min) or (max is not None and value > max):
        raise ApiError(400, "invalid_field", f"{name}: must be between {min} and {max}, got {value}")
    return value


# What json_body lets through. No field needs more than 20 digits (a Unix time in ms has 13);
# Python refuses int() of over 4,300 digits with a ValueError and float() of a 400-digit one
# with an OverflowError, both 500s before. Real bodies nest 4 levels at most.
JSON_MAX_DIGITS = 20
JSON_MAX_DEPTH = 64


def _refuse_constant(name: str):
    raise ApiError(400, "invalid_json", f"The body contains {name}, which is not a JSON number; send a number or null.")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > JSON_MAX_DIGITS:
        raise ApiError(400, "invalid_json", f"The body contains an integer of {len(text.lstrip('-'))} digits; "
                                            f"the most any field takes is {JSON_MAX_DIGITS}.")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ApiError(400, "invalid_json", f"The body contains {text[:40]}, beyond what a number can hold.")
    return value


def _too_deep() -> ApiError:
    return ApiError(400, "invalid_json", f"The body nests lists or objects more than {JSON_MAX_DEPTH} levels deep.")


# json.loads makes a surrogate code point only from a \uD800-\uDFFF escape: UTF-8 holds none.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# ...and a NUL only from a \u0000 escape (strict json.loads refuses a raw control character).
_NUL_ESCAPE = "\\u0000"


def _check_json_tree(body: dict, text: str) -> None:
    """Refuse a parsed body nested deeper than JSON_MAX_DEPTH, or with a lone surrogate or a NUL
    in a string or key. Level by level over the containers only (a walk of every value took 3 times
    as long). With the parse hooks, reading a batch of 500 records (82 KB) takes 1.1 ms instead of
    json.loads' 0.4 ms; of 5,000 records (0.8 MB) 14 ms instead of 4.2 ms."""
    level, depth = [body], 1
    while level:
        if depth > JSON_MAX_DEPTH:
            raise _too_deep()
        inner = []
        for value in level:
            inner += [v for v in (value.values() if isinstance(value, dict) else value) if isinstance(v, (dict, list))]
        level, depth = inner, depth + 1
    if _SURROGATE_ESCAPE.search(text) or _NUL_ESCAPE in text:  # rare (a pair is an emoji): then look at every string
        _refuse_unstorable_text(body, ())


def _refuse_unstorable_text(value, path: tuple) -> None:
    if isinstance(value, str):
        _check_text(value, path)
    elif isinstance(value, dict):
        for key, inner in value.items():
            _check_text(key, path + (key,))
            _refuse_unstorable_text(inner, path + (key,))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            _refuse_unstorable_text(inner, path + (i,))


def _check_text(text: str, path: tuple) -> None:
    def where() -> str:
        named = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path).lstrip(".")
        # the key itself may hold the surrogate or the NUL
        return LONE_SURROGATE.sub("\ufffd", named).replace("\x00", "\ufffd") or "the body"

    if not text.isascii() and LONE_SURROGATE.search(text):
        raise ApiError(400, "invalid_text", f"{where()}: contains half of a UTF-16 surrogate pair "
                                            "(text cut inside an emoji?); send whole characters.")
    # A NUL was stored as is (a chat message, a record's note, a title) and ends C strings, file
    # names and SQLite text in whatever reads the data next; no field means one: refused, like a
    # lone surrogate, in every string and key of every JSON body, rather than quietly changed.
    if "\x00" in text:
        raise ApiError(400, "invalid_text", f"{where()}: contains a NUL character (\\u0000); leave it out.")


def page_args(default_limit=20, max_limit=100) -> tuple[int, str | None]:
    """``?limit=N&before=cursor`` of the current request, checked."""
    query = bottle.request.query
    return query_integer("limit", default_limit, 1, max_limit), (query.get("before") or None)


def paged(list_method, view=None, default_limit=20, max_limit=100, **filters) -> dict:
    """One page of a storage list for this request's ``?limit=`` and ``?before=``, as docs/api.md's
    ``{"items", "next"}``. Storage raises ValueError for a cursor it did not make: a 400."""
    limit, before = page_args(default_limit, max_limit)
    try:
        items, cursor = list_method(limit=limit, before=before, **filters)
    except ValueError:
        raise ApiError(400, "invalid_cursor", "before: not a cursor of this list; pass the `next` of the previous page.")
    return {"items": [view(item) for item in items] if view else items, "next": cursor}


def all_pages(list_method, page_size: int = 100, **filters) -> list:
    """Every item of a paged list (a service's ``list``, such as ``wm.service("accounts").list``,
    or a ``storage.find`` with its arguments bound), in its order, read ``page_size`` at a time."""
    items, before = [], None
    while True:
        page, before = list_method(limit=page_size, before=before, **filters)
        items += page
        if before is None:
            return items


def atomic_write(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write a file so that a crash leaves either the old or the new content, never a mix:
    temp file, fsync, rename over, fsync the folder (so the rename itself is durable)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode if mode is not None else 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def zone_or_none(name):
    """The ZoneInfo of an IANA time zone name, or None if it is no such name."""
    from zoneinfo import ZoneInfo

    if not isinstance(name, str) or not name.strip():
        return None
    try:
        return ZoneInfo(name.strip())
    except (ValueError, OSError, LookupError):  # ZoneInfoNotFoundError is a KeyError
        return None


def machine_timezone() -> str:
    """This machine's IANA zone name: $TZ, the /etc/localtime link, /etc/timezone, else UTC."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    try:
        candidates.append(Path("/etc/timezone").read_text().strip())
    except OSError:
        pass
    return next((name for name in candidates if zone_or_none(name)), "UTC")


SERVER_LOCK = "server.lock"  # in the data folder: held by the running server (see `serve`)


class FileLock:
    """An exclusive ``flock`` on a file in the data folder: one server per folder, one reminder
    scheduler. The kernel drops it when the process ends, however it ends, so a crash leaves no
    stale lock. The file holds the holder's pid, for a human wondering who has it."""

    def __init__(self, path):
        self.path = Path(path)
        self._fd = None

    def acquire(self) -> bool:
        """Take the lock if nobody holds it; False if another holder has it."""
        try:
            import fcntl
        except ImportError:  # no flock (Windows): one server per data folder, as docs/api.md asks
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return True

    def holder(self) -> str:
        try:
            return self.path.read_text().strip() or "?"
        except OSError:
            return "?"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


# ---------------------------------------------------------------------------------------------
# Users and requests: what every plugin that serves a user needs
# ---------------------------------------------------------------------------------------------


def client_address() -> str:
    """The current request's client address: REMOTE_ADDR as waitress set it, which is the
    proxy's forwarded client only when ``server.trusted_proxy`` names that proxy. Never read
    X-Forwarded-For yourself (bottle's ``request.remote_addr`` does): any client can write it."""
    return bottle.request.environ.get("REMOTE_ADDR") or ""


REQUEST_ID_KEY = "wellmate.request_id"  # environ keys `observed` and `require_user` set
USER_ID_KEY = "wellmate.user_id"
FORWARDED_KEY = "wellmate.forwarded"
# A client's own X-Request-Id is kept when it looks like an id (a UUID, a hex string, a proxy's
# 'caddy-1:abc'), else replaced: it goes into a response header and the log, never raw text.
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,63}")
# How a proxy says whom it forwards for. Read before untrusted_proxy_guard drops them.
FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def request_id() -> str:
    """The current request's id: its ``X-Request-Id`` response header, in the request log and in
    the server log's line about its error."""
    return bottle.request.environ.get(REQUEST_ID_KEY, "")


def forwarded() -> bool:
    """Whether the current request came with a header saying it was forwarded for someone else
    (X-Forwarded-For, Forwarded, X-Real-IP), whoever sent it and whether or not the header was
    then believed or dropped: behind Caddy, a request from the internet is one from 127.0.0.1
    with X-Forwarded-For."""
    return bool(bottle.request.environ.get(FORWARDED_KEY))


class FinishedRequest(NamedTuple):
    """A request the server answered, for the `request_finished` hook."""

    id: str
    time: str  # when it finished (now_iso)
    method: str
    route: str | None  # the matched route's template; None when no route matched (a 404)
    status: int
    seconds: float
    user_id: str | None  # whom wm.require_user() signed in
    client: str  # client_address()


def own_request_id(given: str) -> str:
    """A request's id: the client's own ``X-Request-Id`` when it looks like one, else a new one."""
    return given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def report_finished(wm: "Wellmate", request: FinishedRequest):
    """Tell the `request_finished` hook (request log, metrics); a hook that fails is logged, and
    the request is not its business."""
    try:
        wm.pm.hook.request_finished(request=request, wm=wm)
    except Exception:
        log.exception("a request_finished hook failed (request %s)", request.id)


def observed(app, wm: "Wellmate"):
    """The app as `serve` runs it: every response carries ``X-Request-Id`` (the client's own if it
    looks like one, else a new one), and the `request_finished` hook hears of every request once
    its answer is complete: a whole body (JSON) before it is sent, a stream when its body ends,
    however it ends (the body's ``close``, which waitress calls after the last chunk or a failed
    write)."""
    hook = wm.pm.hook.request_finished

    def serve_request(environ, start_response):
        started = time.perf_counter()
        rid = own_request_id(environ.get("HTTP_X_REQUEST_ID", ""))
        environ[REQUEST_ID_KEY] = rid
        environ[FORWARDED_KEY] = any(name in environ for name in FORWARDING_HEADERS)
        status = [500]  # until the app says otherwise: what an exception out of the app becomes

        def start(line, headers, exc_info=None):
            status[0] = int(line[:3])
            headers = [(name, value) for name, value in headers if name.lower() != "x-request-id"]
            headers.append(("X-Request-Id", rid))
            return start_response(line, headers, exc_info)

        def finished():
            if not hook.get_hookimpls():
                return
            route = environ.get("bottle.route")
            report_finished(wm, FinishedRequest(rid, now_iso(), environ.get("REQUEST_METHOD", ""),
                                                getattr(route, "rule", None), status[0], time.perf_counter() - started,
                                                environ.get(USER_ID_KEY), environ.get("REMOTE_ADDR") or ""))

        try:
            body = app(environ, start)
        except BaseException:
            finished()
            raise
        file_wrapper = environ.get("wsgi.file_wrapper")
        # A body made whole (Bottle's list: a JSON answer, an error) is done now, before a byte of
        # it is sent: the client that reads it finds its log line and metrics there. A file is
        # sent by waitress itself, which closes it without us.
        if isinstance(body, (list, tuple)) or isinstance(file_wrapper, type) and isinstance(body, file_wrapper):
            finished()
            return body
        return ClosingBody(body, finished)

    return serve_request


class ClosingBody:
    """A WSGI response body that calls ``on_close`` once when it ends, however it ends: waitress
    calls ``close`` after the last chunk, after a write that failed because the client went away,
    and on errors; also when the body never started. (A chat stream gives up its turn's place in
    the gate so; `observed` reports the request.)"""

    __slots__ = ("body", "iterator", "on_close")

    def __init__(self, body, on_close):
        self.body, self.iterator, self.on_close = body, iter(body), on_close

    def __iter__(self):
        return self

    def __next__(self):
        return next(self.iterator)

    def close(self):
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()  # a generator's: GeneratorExit at its yield (a chat stream keeps its partial reply)
        finally:
            on_close, self.on_close = self.on_close, None
            if on_close is not None:
                on_close()


# ---------------------------------------------------------------------------------------------
# Plugin loading
# ---------------------------------------------------------------------------------------------


BUILTIN_PACKAGE = "wellmate_plugins"


def builtin_plugins_package():
    """The built-in plugins folder as the importable package ``wellmate_plugins`` (its
    ``plugins/__init__.py``), so built-in plugins are imported, not executed by path, and import
    what they share by name (``from wellmate_plugins._text import Terms``). Modules whose names
    start with ``_`` are libraries, never plugins. The loader calls this; a test or bench that
    imports a built-in module without building a Wellmate calls it first. Importing ``wellmate``
    does not: it has no side effects."""
    package = sys.modules.get(BUILTIN_PACKAGE)
    if package is None:
        folder = HERE / "plugins"
        spec = importlib.util.spec_from_file_location(BUILTIN_PACKAGE, folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])
        package = importlib.util.module_from_spec(spec)
        sys.modules[BUILTIN_PACKAGE] = package
        try:
            spec.loader.exec_module(package)
        except BaseException:
            del sys.modules[BUILTIN_PACKAGE]
            raise
    return package


def _load_file_module(path: Path, module_name: str):
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def load_plugins(pm: pluggy.PluginManager, user_dir: Path, disabled: list[str]) -> list[dict]:
    """Register plugins in order: built-ins, the user's files in plugins/, then installed
    packages' ``wellmate`` entry points. A name in ``disabled`` is skipped."""
    loaded = []
    disabled = set(disabled)
    builtin_dir = HERE / "plugins"

    def add(name, module, source):
        try:
            pm.register(module, name=name)
        except ValueError as e:  # the same name twice
            raise ConfigError(f"plugin {name} ({source}): {e}")
        loaded.append({"name": name, "source": source})

    builtin_plugins_package()
    for name in BUILTIN_PLUGINS:
        if name not in disabled:
            # Imported once per process, like any module: a second Wellmate (tests build hundreds)
            # registers the same modules; what a plugin builds for one Wellmate is a service of it.
            add(name, importlib.import_module(f"{BUILTIN_PACKAGE}.{name}"), "built-in")
    for path in sorted(user_dir.glob("*.py")) if user_dir.is_dir() else []:
        name = path.stem
        if name.startswith("_") or (path.parent.resolve() == builtin_dir and name in BUILTIN_PLUGINS):
            continue
        if name in disabled:
            continue
        try:
            module = _load_file_module(path, f"wellmate_user_plugins.{name}")
        except Exception as e:
            raise ConfigError(f"plugin {name} ({path}) failed to load: {type(e).__name__}: {e}")
        add(name, module, str(path))
    from importlib.metadata import entry_points

    for ep in entry_points(group="wellmate"):
        if ep.name in disabled:
            continue
        add(ep.name, ep.load(), f"package {ep.dist.name if ep.dist else '?'}")
    # A function marked @hookimpl whose name is no hook: name the plugin and the nearest hook.
    for name, plugin in pm.list_name_plugin():
        for attr in dir(plugin):
            fn = getattr(plugin, attr, None)
            if callable(fn) and hasattr(fn, "wellmate_impl") and attr not in _hook_names():
                raise ConfigError(f"plugin {name}: '{attr}' is marked @hookimpl but is not a hook"
                                  f"{_suggest(attr, _hook_names())}")
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as e:
        raise ConfigError(f"plugin {pm.get_name(e.plugin)}: {e}")
    return loaded


def _hook_names() -> set[str]:
    return {n for n in vars(Hookspecs) if not n.startswith("_")}


class Registry(dict):
    """Names plugins give what they offer through a ``register_*`` hook: storage backends,
    providers, taggers, record types, reminder channels and services, all collected this one way.
    A name is given once (the error names both plugins), config and requests pick by name, never
    by hook order, and an unknown name gets the same answer everywhere: the known names and the
    nearest one."""

    def __init__(self, what: str, hook: str = ""):
        super().__init__()
        self.what, self.hook = what, hook
        self.owners: dict[str, str] = {}  # name -> the plugin (or config file) that gave it

    @classmethod
    def collect(cls, pm, hook: str, what: str, make=None) -> "Registry":
        """Call each plugin's ``hook(register)``, in the order the plugins loaded. ``register(name,
        obj)`` keeps ``obj``; with ``make``, ``register(name, *args, **kwargs)`` keeps
        ``make(name, plugin_name, *args, **kwargs)`` (a record type built from its spec)."""
        registry = cls(what, hook)
        loaded = {name: i for i, (name, _) in enumerate(pm.list_name_plugin())}
        # The order plugins loaded in (built-ins first), not pluggy's call order (the last first).
        for impl in sorted(getattr(pm.hook, hook).get_hookimpls(), key=lambda impl: loaded[impl.plugin_name]):
            def register(name, *args, _plugin=impl.plugin_name, **kwargs):
                if make is None and (len(args) != 1 or kwargs):
                    raise ConfigError(f"plugin {_plugin}: {hook}: call register(name, object)")
                registry.refuse_twice(name, f"plugin {_plugin}")
                registry.add(name, make(name, _plugin, *args, **kwargs) if make else args[0], f"plugin {_plugin}")
            impl.function(**{arg: register for arg in impl.argnames})
        return registry

    def refuse_twice(self, name, owner: str) -> None:
        if name in self:
            raise ConfigError(f"{owner}: {self.hook or self.what}: '{name}' is registered twice "
                              f"(already by {self.owners[name]})")

    def add(self, name, obj, owner: str) -> None:
        self.refuse_twice(name, owner)
        self[name] = obj
        self.owners[name] = owner

    def unknown(self, name, where: str) -> str:
        """The sentence for a name that is not here, for a ConfigError or an ApiError alike."""
        return f"{where}: unknown {self.what} '{name}'{_suggest(name, self)}; known: {', '.join(self) or 'none'}"

    def choose(self, name, where: str):
        """What config names: ``where`` is the config key that names it."""
        if name not in self:
            raise ConfigError(self.unknown(name, where))
        return self[name]


# ---------------------------------------------------------------------------------------------
# The application
# ---------------------------------------------------------------------------------------------


def untrusted_proxy_guard(app, clear: bool):
    """The app as `serve` runs it when no proxy is trusted: forwarded headers are dropped (if
    ``clear``), as waitress would drop them, but first, once, the log says so when they come from
    this machine or the local network: that is a reverse proxy (Caddy, nginx) that config does not
    name, and behind it every client has the proxy's address, so one attacker's wrong passwords
    throttle everyone's logins."""
    import ipaddress
    from waitress.proxy_headers import PROXY_HEADERS

    told = threading.Event()

    def guarded(environ, start_response):
        forwarded = [name for name in PROXY_HEADERS if "HTTP_" + name in environ]
        if forwarded and not told.is_set() and ("X_FORWARDED_FOR" in forwarded or "FORWARDED" in forwarded):
            peer = environ.get("REMOTE_ADDR") or ""
            try:
                nearby = ipaddress.ip_address(peer.split("%")[0]).is_private  # loopback included
            except ValueError:
                nearby = False
            if nearby:
                told.set()
                log.warning("requests from %s carry X-Forwarded-For: a reverse proxy? server.trusted_proxy is "
                            "empty, so every client behind it counts as %s (and is throttled as one); if the "
                            "proxy is yours, set server.trusted_proxy: \"%s\"", peer, peer, peer)
        if clear:
            for name in forwarded:
                del environ["HTTP_" + name]
        return app(environ, start_response)

    return guarded


def waitress_options(server: dict, filename: str = "config.yaml") -> dict:
    """waitress's connection limits and trusted-proxy settings from config's ``server`` section
    (no proxy settings without a ``trusted_proxy``: waitress refuses its other proxy settings
    alone, and `untrusted_proxy_guard` drops the forwarded headers then)."""
    limits = {"connection_limit": server["connection_limit"], "channel_timeout": server["channel_timeout"],
              # How often GuardedServer.maintenance closes idle and overdue connections (waitress:
              # 30 s): a loop over at most connection_limit connections.
              "cleanup_interval": 2,
              # How much of a response waitress holds for a slow reader before the app waits for
              # it (waitress: 16 MB, and its buffer keeps what was sent until then): a streamed
              # 18 MB export raised the server's peak RSS by 17.6 MB, with this by ~1 MB.
              "outbuf_high_watermark": 1 << 20}
    if not server["trusted_proxy"]:
        return {**limits, "clear_untrusted_proxy_headers": False}
    options = {**limits, "clear_untrusted_proxy_headers": server["clear_untrusted_proxy_headers"]}
    from waitress.adjustments import KNOWN_PROXY_HEADERS

    headers = {str(h).lower() for h in server["trusted_proxy_headers"]}
    unknown = sorted(headers - KNOWN_PROXY_HEADERS)
    if unknown or not headers:
        raise ConfigError(f"{filename}: server.trusted_proxy_headers: unknown {', '.join(unknown) or '(empty list)'}; "
                          f"use some of {', '.join(sorted(KNOWN_PROXY_HEADERS))}")
    if "forwarded" in headers and len(headers) > 1:
        raise ConfigError(f"{filename}: server.trusted_proxy_headers: 'forwarded' cannot be combined "
                          f"with the x-forwarded-* headers; trust one kind")
    return {**options, "trusted_proxy": server["trusted_proxy"],
            "trusted_proxy_count": server["trusted_proxy_count"], "trusted_proxy_headers": headers}


NON_ASCII = re.compile(rb"[\x80-\xff]")
# waitress's own errors (`JsonErrorTask`): the codes ERROR_CODES lacks, and what each means to a client.
SERVER_LAYER_CODES = {408: "request_timeout", 431: "headers_too_large", 501: "not_implemented"}
SERVER_LAYER_MESSAGES = {
    400: "The server could not read this HTTP request",
    413: "The request body is over the server's limit",
    431: "The request's headers are too large",
    501: "Send the body with Content-Length, or chunked",
}


def server_layer_message(error) -> str:
    """A message for one of waitress's errors: what it means, then waitress's own words ("Invalid
    header", "exceeds max_body of 67108864"). Ours (408) says it all itself."""
    if error.code not in SERVER_LAYER_MESSAGES:
        return error.body
    return f"{SERVER_LAYER_MESSAGES[error.code]}: {error.body.rstrip('.')}."


@functools.cache
def guarded_server_class():
    """`GuardedServer`, made on first use: wellmate is imported by every CLI command and plugin,
    and importing waitress then is what test_import_has_no_side_effects keeps out."""
    import waitress.server  # and what it imports: adjustments, channel, parser, task, utilities, wasyncore

    class RequestTimeout(waitress.utilities.Error):
        code = 408
        reason = "Request Timeout"

    class RequestParser(waitress.parser.HTTPRequestParser):
        """waitress's request parser, taking a request target with raw UTF-8 in it.

        waitress answered `GET /api/v1/library?q=嘌呤` as curl sends it (the bytes as they are) with
        a plain-text 400 Bad URI: it splits the target with urllib, which takes ASCII bytes only. A
        browser sends the same URL percent-encoded (`?q=%E5%98%8C%E5%91%A4`), and so is it read here:
        each byte over 0x7F of the request line becomes %XX before waitress parses it. Bytes that are
        not UTF-8 are then what their %XX would be: the app's own JSON 404 or 400."""

        def parse_header(self, header_plus):
            line_end = header_plus.find(b"\r\n")
            request_line = header_plus[:line_end] if line_end >= 0 else header_plus
            if not request_line.isascii():
                encoded = NON_ASCII.sub(lambda byte: b"%%%02X" % byte[0][0], request_line)
                header_plus = encoded + header_plus[len(request_line):]
            try:
                super().parse_header(header_plus)
            except ValueError as e:  # urllib's "Invalid IPv6 URL" (`GET http://[::1/`): waitress let it
                # out of the channel, logged an "uncaptured python exception" and closed with no answer
                raise waitress.parser.ParsingError(f"Bad URI ({e})") from e

    class JsonErrorTask(waitress.task.ErrorTask):
        """waitress's own answers (a request it cannot parse, a body over its limit, headers too
        large, a Transfer-Encoding it lacks, our 408) in the API's error shape,
        ``{"error": {"code", "message"}}``, with an ``X-Request-Id``, and heard by the
        `request_finished` hook (the request log, metrics) as a request with no route. They were
        plain text, the one kind of answer a client could not parse as the docs say."""

        def execute(self):
            error = self.request.error
            rid = own_request_id(self.request.headers.get("X_REQUEST_ID", ""))
            code = SERVER_LAYER_CODES.get(error.code) or ERROR_CODES.get(error.code) or "http_%d" % error.code
            body = json_dumps({"error": {"code": code, "message": server_layer_message(error)}}).encode()
            self.status = f"{error.code} {error.reason}"
            self.response_headers.extend([("Content-Type", "application/json"), ("X-Request-Id", rid)])
            self.set_close_on_finish()
            self.content_length = len(body)
            self.write(body)
            wm = self.channel.server.wm
            # A 500 here is the app's own exception, which `observed` has already reported.
            reported = isinstance(error, waitress.utilities.InternalServerError)
            if wm is not None and not reported and wm.pm.hook.request_finished.get_hookimpls():
                peer = self.channel.addr[0] if isinstance(self.channel.addr, tuple) else ""
                report_finished(wm, FinishedRequest(rid, now_iso(), getattr(self.request, "command", ""), None,
                                                    error.code, time.time() - self.start_time,  # waitress's clock
                                                    None, peer))

    class GuardedChannel(waitress.channel.HTTPChannel):
        """A waitress connection that knows when the request it is receiving began: waitress times
        out only silence, so a client sending one header byte a second held its connection forever."""

        request_began = None
        parser_class = RequestParser
        error_task_class = JsonErrorTask

        def __init__(self, server, sock, addr, adj, map=None):
            super().__init__(server, sock, addr, adj, map=map)
            if server.over_address_cap(self):
                self.handle_close()  # at once, before reading anything: no response

        def received(self, data):
            before = self.request
            result = super().received(data)
            if self.request is None:
                self.request_began = None
            elif self.request is not before:
                self.request_began = time.monotonic()
            return result

        def time_out(self, seconds: int):
            """Answer 408 as waitress answers its own errors (`JsonErrorTask`), and close once it is sent."""
            request = self.parser_class(self.adj)
            request.error = RequestTimeout(f"The request was not received in full within {seconds} s "
                                           f"(server.request_timeout).")
            self.request = None
            try:
                self.error_task_class(self, request).service()
            except waitress.channel.ClientDisconnected:
                pass
            self.close_when_flushed = True

    class GuardedServer(waitress.server.TcpWSGIServer):
        """waitress's TCP server with what it lacks for the open internet (set by `create_server`):
        a deadline for receiving a whole request, a cap on connections from one address, and a stop
        that a signal handler can ask for safely (`request_stop`) followed by `shut_down`."""

        channel_class = GuardedChannel
        request_timeout = 30
        per_address = 0
        exempt = frozenset()  # the trusted proxy: every client behind it shares its address
        wm = None  # whose request_finished hook hears of waitress's own answers (JsonErrorTask)
        stop_requested = False
        stopping = False  # set before stop_requested, see request_stop
        _told: dict = {}  # address -> when the log last said it was over the cap (create_server gives each its own)
        told_seconds = 60  # an address over the cap is said in the log once in this long

        def over_address_cap(self, channel) -> bool:
            peer = channel.addr[0] if isinstance(channel.addr, tuple) else channel.addr
            if not self.per_address or peer in self.exempt or "*" in self.exempt:
                return False
            open_here = sum(1 for c in list(self.active_channels.values()) if c.addr and c.addr[0] == peer)
            if open_here <= self.per_address:
                return False
            now = time.monotonic()
            if self._told.get(peer, 0) < now - self.told_seconds:  # once a minute per address, not per connection
                # The addresses told of longer ago go: each one over the cap stayed for good.
                self._told = {address: at for address, at in self._told.items() if at >= now - self.told_seconds}
                self._told[peer] = now
                log.warning("%s has %d connections open, more than server.connections_per_address (%d); closing "
                            "its new ones", peer, open_here - 1, self.per_address)
            return True

        def pull_trigger(self):
            # A worker that `shut_down` gave up waiting for (a slow request past its bound) still
            # wakes the loop when it finishes; by then the loop and its wake-up pipe are gone, and
            # the EBADF would surface as an error in that thread.
            try:
                self.trigger.pull_trigger()
            except OSError:
                if not self.stop_requested:
                    raise

        def maintenance(self, now):
            super().maintenance(now)  # idle kept-alive connections (server.channel_timeout)
            overdue = time.monotonic() - self.request_timeout
            for channel in list(self.active_channels.values()):
                # Not while a request of this connection is served: then it is not reading.
                if channel.request is not None and not channel.requests and (channel.request_began or 0) < overdue:
                    channel.time_out(self.request_timeout)

        def request_stop(self):
            """Stop `run` soon; safe in a signal handler. (Raising there instead landed inside a
            channel's handler in 5 of 10 SIGTERMs under traffic, where waitress logs it as an
            "uncaptured python exception" and serves on.)"""
            if not self.stop_requested:
                # A loop woken by the byte below before the flag is set would wait for its next
                # wake-up, up to a second (1 stop from another thread in 8 took 1.0 s, not 1 ms):
                # told beforehand, it waits 0.05 s at most.
                self.stopping = True
                self.pull_trigger()  # one byte into waitress's wake-up pipe, no lock taken
                # Only then the flag: from another thread (tests, bench), the loop may see it on its
                # own 1 s wake-up and close that pipe (shut_down) before a pull written after it.
                self.stop_requested = True

        def run(self):
            while not self.stop_requested:
                self.asyncore.loop(timeout=0.05 if self.stopping else self.adj.asyncore_loop_timeout, map=self._map,
                                   use_poll=self.adj.asyncore_use_poll, count=1)

        def shut_down(self, seconds: float):
            """Stop listening; give requests in progress up to ``seconds`` to finish and their
            responses to be sent; close every connection (a stream still going ends at its next
            write); stop the worker threads. Call it in the thread that ran `run`."""
            deadline = time.monotonic() + seconds
            waitress.wasyncore.dispatcher.close(self)  # the listening socket; the trigger stays for the workers
            while True:
                for channel in list(self.active_channels.values()):
                    if not channel.requests and not channel.total_outbufs_len:
                        channel.handle_close()  # idle, or a request not received in full
                if not self.active_channels or time.monotonic() >= deadline:
                    break
                self.asyncore.loop(timeout=0.05, map=self._map, use_poll=self.adj.asyncore_use_poll, count=1)
            for channel in list(self.active_channels.values()):
                channel.handle_close()
            self.task_dispatcher.shutdown(timeout=max(1.0, deadline - time.monotonic()))
            self.trigger.close()

    return GuardedServer


def create_server(wm: "Wellmate", host: str, port: int, threads: int | None = None, **overrides):
    """The waitress server for ``wm.server_app`` with the limits of config's ``server`` section;
    ``overrides`` are waitress settings (for tests)."""
    import waitress.adjustments
    import waitress.task

    server_conf = wm.config["server"]
    # waitress buffers a whole body before calling us; its own limit (plain-text 413) sits
    # well above ours so that ordinary oversized bodies get our JSON 413.
    adj = waitress.adjustments.Adjustments(
        host=host, port=port, threads=threads or server_conf["threads"],
        max_request_body_size=max(wm.max_body * 4, 64 * 1024 * 1024), ident="wellmate",
        **{**wm.waitress_options, **overrides})
    if len(adj.listen) != 1:
        raise ConfigError(f"server.host: {host} is {len(adj.listen)} addresses; give one, such as 0.0.0.0 "
                          f"(every interface) or 127.0.0.1 (this machine only)")
    ensure_open_files(adj.connection_limit + 2 * adj.threads + 64)  # + data files, upstream calls
    dispatcher = waitress.task.ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    server = guarded_server_class()(wm.server_app, map={}, dispatcher=dispatcher, adj=adj, sockinfo=adj.listen[0])
    server.wm = wm
    server.request_timeout = server_conf["request_timeout"]
    server.per_address = server_conf["connections_per_address"]
    server.exempt = frozenset([server_conf["trusted_proxy"]] if server_conf["trusted_proxy"] else [])
    server._told = {}
    return server


def ensure_open_files(needed: int):
    """Raise this process's open-file limit to ``needed`` if it is lower (up to the hard limit):
    past it, accept() fails and waitress spins logging errors."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise ConfigError(f"server.connection_limit: needs about {needed} open files, and this process may "
                              f"open {hard} (ulimit -Hn); lower server.connection_limit or raise the limit "
                              f"(LimitNOFILE= in a systemd unit)")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def default_config_path() -> Path:
    return Path(os.environ.get("WELLMATE_CONFIG") or HERE / "config.yaml")


class Wellmate:
    """Everything a running server has: config, plugins, storage, prompts, services and the app.

    Plugins receive it as ``wm``. Build it with `create_app`.
    """

    def __init__(self, config_path: str | os.PathLike | None = None):
        self.started_at = time.monotonic()
        self.config_path = Path(config_path or default_config_path()).resolve()
        self.base = self.config_path.parent
        raw = expand_env(read_yaml(self.config_path), "")

        self.pm = pluggy.PluginManager("wellmate")
        self.pm.add_hookspecs(Hookspecs)
        plugins_raw = raw.get("plugins") or {}
        if not isinstance(plugins_raw, dict):
            raise ConfigError(f"{self.config_path.name}: plugins: must be a mapping with disabled: [...]")
        disabled = plugins_raw.get("disabled") or []
        if not isinstance(disabled, list):
            raise ConfigError(f"{self.config_path.name}: plugins.disabled: must be a list of plugin names, got {json_dumps(disabled)}")
        self.plugins = load_plugins(self.pm, self.base / str(plugins_raw.get("directory") or "plugins"), disabled)

        self.storage_backends = Registry.collect(self.pm, "register_storage", "storage backend")
        self.provider_classes = Registry.collect(self.pm, "register_providers", "provider plugin")
        self.tagger_classes = Registry.collect(self.pm, "register_taggers", "tagger")
        self.collections = Registry.collect(self.pm, "register_collections", "collection",
                                            make=lambda name, plugin, **spec: Collection(name, owner=f"plugin {plugin}", **spec))
        self.services = Registry.collect(self.pm, "register_services", "service")
        self._built: dict[str, object] = {}  # service name -> what its factory built
        self._building: list[str] = []  # the factories running now, outermost first (a cycle shows here)
        self._services_lock = threading.RLock()

        schema = core_schema()
        for extra in self.pm.hook.config_schema():
            for section, keys in (extra or {}).items():
                schema.setdefault(section, {}).update(keys)
        tagger_name = (raw.get("emotion") or {}).get("tagger") if isinstance(raw.get("emotion"), dict) else None
        tagger_class = self.tagger_classes.get(tagger_name or schema["emotion"]["tagger"].default)
        if tagger_class:  # the chosen tagger's own keys live in the emotion section, and its fallback's
            schema["emotion"].update(tagger_class.settings)
            if "fallback" in tagger_class.settings:
                fallback = raw["emotion"].get("fallback") if isinstance(raw.get("emotion"), dict) else None
                fallback_class = self.tagger_classes.get(fallback or tagger_class.settings["fallback"].default)
                schema["emotion"].update({**getattr(fallback_class, "settings", {}), **tagger_class.settings})
        self.schema = schema
        self.config, self.warnings = validate_config(raw, schema, self.config_path.name)
        self.problems: list[str] = []  # what a plugin found broken at set-up; `check` reports them as errors
        self._check_providers()
        for warning in self.warnings:
            log.warning("%s", warning)

        self.data_dir = (self.base / self.config["storage"]["path"]).resolve()
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageUnavailable(f"cannot make the data folder {self.data_dir}: {e.strerror or e}; "
                                     f"check storage.path and its permissions") from e
        self.prompts = Prompts(self.base)
        self.max_body = self.config["server"]["max_body_kb"] * 1024

        self._check_agents()
        self.setup_notice = self._setup_notice()

        factory = self.storage_backends.choose(self.config["storage"]["backend"], f"{self.config_path.name}: storage.backend")
        self.storage: Storage = factory(self.config["storage"], self)
        if self.pm.hook.storage_operation.get_hookimpls():  # else not timed: not a call's cost more
            self.storage = TimedStorage(self.storage, self)
        # Whose day is it: users without settings.timezone live in this zone (see user_zone).
        self.timezone = self.config["server"]["timezone"].strip() or machine_timezone()
        if zone_or_none(self.timezone) is None:
            raise ConfigError(f"{self.config_path.name}: server.timezone: unknown time zone {self.timezone!r}; "
                              f"use an IANA name such as Asia/Shanghai, or leave it empty for this machine's")
        # Extra waitress settings for serve(): the trusted-proxy keys of server:.
        self.waitress_options = waitress_options(self.config["server"], self.config_path.name)
        self._closed = False
        for name in self.services:  # all of them now, so a mistake in their config stops startup
            self.service(name)
        self.app = self._build_app()
        server = self.config["server"]
        # What serve() hands to waitress (with waitress_options).
        # Outermost, it sees the forwarded headers before untrusted_proxy_guard drops them.
        self.server_app = observed(self.app if server["trusted_proxy"] else untrusted_proxy_guard(
            self.app, clear=server["clear_untrusted_proxy_headers"]), self)

    # -- services ------------------------------------------------------------------------------
    def service(self, name: str):
        """What the plugin offering service ``name`` built for this Wellmate (see
        `Hookspecs.register_services`), or None when no plugin offers it (it is disabled)."""
        try:
            return self._built[name]
        except KeyError:
            pass
        factory = self.services.get(name)
        if factory is None:
            return None
        with self._services_lock:
            if name in self._built:
                return self._built[name]
            if name in self._building:
                cycle = " -> ".join(self._building[self._building.index(name):] + [name])
                raise ConfigError(f"services: {cycle}: each needs the next to be built first; "
                                  f"one of them must look the other up later (when it is used)")
            self._building.append(name)
            try:
                built = factory(self)
            finally:
                self._building.pop()
            self._built[name] = built
            return built

    # -- config checks that need the registries ---------------------------------------------
    def _check_providers(self):
        """Validate each provider instance against its plugin class's own settings."""
        name = self.config_path.name
        for provider, settings in list(self.config["providers"].items()):
            where = f"{name}: providers.{provider}"
            if not isinstance(settings, dict) or not settings.get("plugin"):
                raise ConfigError(f"{where}: needs 'plugin: NAME'; known: {', '.join(self.provider_classes) or 'none'}")
            cls = self.provider_classes.choose(settings["plugin"], f"{where}.plugin")
            self.config["providers"][provider], warnings = cls.validate(settings, where)
            self.warnings += warnings
        self.tagger_classes.choose(self.config["emotion"]["tagger"], f"{name}: emotion.tagger")

    def build_providers(self) -> dict:
        """One instance per configured provider. Cheap: SDKs are imported on first use."""
        return {provider: self.provider_classes[conf["plugin"]](provider, conf, self)
                for provider, conf in self.config["providers"].items()}

    def _check_agents(self):
        name = self.config_path.name
        for agent, settings in self.config["agents"].items():
            where = f"{name}: agents.{agent}"
            if not settings["prompt"]:
                raise ConfigError(f"{where}.prompt: give the prompt file, e.g. prompts/{agent}.txt")
            if not self.prompts.path(settings["prompt"]).is_file():
                raise ConfigError(f"{where}.prompt: file {settings['prompt']} not found next to {name}")
            for chain in ("providers", "vision_providers"):  # whether a vision provider can see: chat's check
                for provider in settings[chain]:
                    if provider not in self.config["providers"]:
                        raise ConfigError(f"{where}.{chain}: '{provider}' is not defined under providers:"
                                          f"{_suggest(provider, self.config['providers'])}")

    def _setup_notice(self) -> str:
        """What the operator should know about the set-up, or "": that no agent can reach an AI
        model, because every agent's provider chain has only providers that cannot follow
        instructions (the rule-based offline companion), each saying what to do in its
        ``no_model_notice``. Said by `check`, the startup log and /test/health; end users are told
        no more than that answers come from a local guide."""
        agents = self.config["agents"]
        plugins = {name: self.provider_classes[conf["plugin"]] for name, conf in self.config["providers"].items()}
        if not agents or any(plugins[p].follows_instructions for conf in agents.values() for p in conf["providers"]):
            return ""
        notices = dict.fromkeys(plugins[p].no_model_notice for conf in agents.values() for p in conf["providers"])
        return f"no AI model: every agent's providers ({', '.join(f'agents.{a}' for a in agents)}) end at {'; '.join(notices)}"

    def _build_app(self) -> bottle.Bottle:
        app = bottle.Bottle(catchall=True)
        app.uninstall(bottle.JSONPlugin)
        app.install(bottle.JSONPlugin(json_dumps=json_dumps))
        app.install(route_errors)
        app.default_error_handler = _json_error_page
        app.config["wellmate"] = self
        self.pm.hook.routes(app=app, wm=self)
        return app

    # -- helpers for route plugins -----------------------------------------------------------
    def raw_body(self) -> bytes:
        """The request's body as bytes, or a 413 if it is over server.max_body_kb."""
        request = bottle.request
        if request.content_length > self.max_body:
            raise ApiError(413, "body_too_large", f"The request body is {request.content_length} bytes; "
                                                  f"the limit is {self.max_body} (server.max_body_kb).")
        raw = request.body.read(self.max_body + 1)
        if len(raw) > self.max_body:
            raise ApiError(413, "body_too_large", f"The request body is over the limit of {self.max_body} bytes (server.max_body_kb).")
        return raw

    def json_body(self, prose: tuple = ()) -> dict:
        """The request's JSON object, or a 400/413 that says what is wrong with it. Nothing odd
        gets past it: no NaN or Infinity, no number beyond what a float holds, no integer of
        more than JSON_MAX_DIGITS digits, no nesting deeper than JSON_MAX_DEPTH, and no lone
        UTF-16 surrogate (UTF-8 cannot store one) or NUL in any string or key, but in the
        top-level text fields named in ``prose`` (a chat message), whose NULs and halves of a surrogate pair
        go (`visible`, as `field` reads them): a stray NUL or an emoji cut in two by a client must not turn a
        message of someone in crisis into a 400 with no hotline (我想\u0000死, the session-14 audit; "I want to
        die tonight \ud83d", session 17's)."""
        raw = self.raw_body()
        if not raw.strip():
            return {}
        try:
            text = raw.decode("utf-8")
            body = json.loads(text, parse_constant=_refuse_constant, parse_int=_bounded_int, parse_float=_finite_float)
        except UnicodeDecodeError:
            raise ApiError(400, "invalid_json", "The body is not UTF-8 text.")
        except json.JSONDecodeError as e:
            raise ApiError(400, "invalid_json", f"The body is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}.")
        except RecursionError:  # json.loads recurses once a level: about 1,000 levels overflow
            raise _too_deep()
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_json", "The body must be a JSON object, e.g. {\"text\": \"...\"}.")
        for name in prose:
            if isinstance(body.get(name), str):
                # ...and half of a surrogate pair goes too: a client that cuts a message at a length inside an
                # emoji sent "I want to die tonight \ud83d", a 400 with no hotline (the session-17 audit)
                if "\x00" in body[name]:
                    body[name] = body[name].replace("\x00", "")
                if not body[name].isascii() and LONE_SURROGATE.search(body[name]):
                    body[name] = LONE_SURROGATE.sub("", body[name])
        _check_json_tree(body, text)
        return body

    def require_user(self) -> dict:
        """The user the request authenticates as, or a 401: the `authenticate` hook's first answer;
        what to send instead is the `authentication_hint` hook's. A disabled account is refused
        whoever vouches for it."""
        user = self.pm.hook.authenticate(request=bottle.request, wm=self)
        if user is None or user.get("disabled"):
            # A plugin's odd answer (a string, no hint) is skipped: it must not make every 401 a 500.
            hints = [hint for hint in self.pm.hook.authentication_hint(request=bottle.request, wm=self)
                     if isinstance(hint, dict) and isinstance(hint.get("hint"), str) and hint["hint"]]
            challenges = [hint["challenge"] for hint in hints if isinstance(hint.get("challenge"), str) and hint["challenge"]]
            headers = {"WWW-Authenticate": ", ".join(challenges)} if challenges else None
            if user is not None:
                raise ApiError(401, "invalid_token", "This account is disabled or gone.", headers=headers)
            raise ApiError(401, "unauthorized", "Send " + " or ".join(hint["hint"] for hint in hints) + "." if hints
                           else "This needs a signed-in user, and no plugin of this server signs requests in.",
                           headers=headers)
        bottle.request.environ[USER_ID_KEY] = user.get("id")  # for `request_finished`: whose request it was
        return user

    def user_zone(self, user: dict) -> tuple[str, tzinfo]:
        """(name, tzinfo) of the user's time zone: settings.timezone, else server.timezone. Every
        "day" of a user (stats, mood, reminders, $today) is a day in this zone."""
        name = (user.get("settings") or {}).get("timezone")
        zone = zone_or_none(name)
        return (name.strip(), zone) if zone else (self.timezone, zone_or_none(self.timezone))

    def prompt_values(self, user: dict, agent: str) -> dict:
        """Everything a prompt's $placeholders may use for this user and agent: the day, the time
        zone and the agent, and what the `prompt_context` hooks add (the accounts plugin: $name,
        $full_name, $username, $age, $gender)."""
        tz_name, tz = self.user_zone(user)
        today = datetime.now(tz).date().isoformat()
        agent_conf = self.config["agents"].get(agent, {})
        values = {
            "today": today,
            "timezone": tz_name,
            "agent": agent,
            "agent_title": agent_conf.get("title", agent),
        }
        for extra in self.pm.hook.prompt_context(user=user, agent=agent, wm=self):
            values.update({k: v if callable(v) else str(v) for k, v in (extra or {}).items()})
        return values

    def uptime(self) -> float:
        return time.monotonic() - self.started_at

    def start(self):
        self.pm.hook.startup(wm=self)

    def close(self):
        """Run every shutdown hook, then close storage. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            self.pm.hook.shutdown(wm=self)
        finally:
            self.storage.close()


def create_app(config_path: str | os.PathLike | None = None) -> Wellmate:
    """Build a Wellmate (config, plugins, storage, app) without serving or starting anything."""
    return Wellmate(config_path)


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def check(config_path) -> int:
    """Validate config and prompts and list plugins; print problems; return an exit status."""
    problems = []
    try:
        wm = create_app(config_path)
    except ConfigError as e:
        print(f"error: {e}")
        return 1
    try:
        print(f"config: {wm.config_path}")
        for warning in wm.warnings:
            print(f"warning: {warning}")
        if wm.setup_notice:
            print(f"notice: {wm.setup_notice}")
        print("plugins:")
        for plugin in wm.plugins:
            module = wm.pm.get_plugin(plugin["name"])
            hooks = sorted(h.name for h in wm.pm.get_hookcallers(module) or [])
            print(f"  {plugin['name']:<20} {plugin['source']:<10} hooks: {', '.join(hooks)}")
        for label, registry in (("storage backends", wm.storage_backends), ("providers", wm.provider_classes),
                                ("taggers", wm.tagger_classes)):
            print(f"{label}: {', '.join(sorted(registry)) or 'none'}")
        sample = {"id": "sample", "username": "sample", "full_name": "Sample", "age": 30,
                  "gender": "other", "settings": {}}
        for agent, settings in wm.config["agents"].items():
            try:
                wm.prompts.render(settings["prompt"], wm.prompt_values(sample, agent))
                print(f"prompt ok: agents.{agent} ({settings['prompt']})")
            except ConfigError as e:
                problems.append(f"agents.{agent}: {e}")
        problems += wm.problems
        for problem in problems:
            print(f"error: {problem}")
        print("ok" if not problems else f"{len(problems)} problem(s)")
        return 1 if problems else 0
    finally:
        wm.close()


def cannot_listen(host: str, port: int, error: OSError) -> str:
    """Why the server cannot open its port, and what to do, in the words of `server.*`."""
    where = f"{host}:{port}"
    if error.errno == errno.EADDRINUSE:
        return (f"cannot listen on {where}: the port is in use (is Wellmate already running?); stop "
                f"that program, or set server.port (or WELLMATE_PORT) to a free port")
    if error.errno == errno.EACCES:
        return (f"cannot listen on {where}: ports below 1024 need root; use a port such as 5000 "
                f"behind Caddy or nginx (docs/deploy.md)")
    if error.errno == errno.EADDRNOTAVAIL or isinstance(error, socket.gaierror):
        return (f"cannot listen on {where}: {host} is not an address of this machine; set "
                f"server.host to 0.0.0.0 (everywhere) or 127.0.0.1 (this machine only)")
    return f"cannot listen on {where}: {error.strerror or error}"


def serve(config_path) -> int:
    wm = create_app(config_path)
    logging.getLogger().setLevel(wm.config["logging"]["level"])
    server_conf = wm.config["server"]
    # One server per data folder: a second one would undo the first's writes (each keeps its
    # own copy of the JSON files in memory). Held until this process ends, however it ends.
    data_lock = FileLock(wm.data_dir / SERVER_LOCK)
    # A data folder this user cannot write would fail every write later, one 503 at a time.
    locked, trouble = False, wm.storage.trouble()
    if trouble is None:
        try:
            locked = data_lock.acquire()
        except OSError as e:
            trouble = f"{data_lock.path}: {e.strerror or e}"
    if trouble:
        wm.close()
        raise StorageUnavailable(f"{wm.data_dir}: {trouble}; make the data folder writable by the user that "
                                 f"runs Wellmate, and check the disk has room")
    if not locked:
        wm.close()
        raise ConfigError(f"another Wellmate (pid {data_lock.holder()}) is serving {wm.data_dir}: two servers on "
                          f"one data folder undo each other's writes; stop it first, or give this one its own "
                          f"storage.path")
    try:
        server = create_server(wm, server_conf["host"], server_conf["port"])
    except (OSError, ConfigError) as e:
        wm.close()
        data_lock.release()
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(cannot_listen(server_conf["host"], server_conf["port"], e)) from e
    signals = []

    def stop(signum, frame):
        signals.append(signum)
        server.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    wm.start()
    log.info("Wellmate %s serving on http://%s:%s (config %s)", __version__,
             server_conf["host"], server.effective_port, wm.config_path)
    if wm.setup_notice:
        log.warning("%s", wm.setup_notice)
    try:
        server.run()
        log.info("stopping (signal %s): up to %s s for requests in progress", signals[0],
                 server_conf["shutdown_seconds"])
    finally:
        server.shut_down(server_conf["shutdown_seconds"])
        wm.close()
        data_lock.release()
        log.info("stopped")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="wellmate.py", description="Wellmate health companion server.")
    parser.add_argument("--config", help="config file (default: $WELLMATE_CONFIG or config.yaml next to wellmate.py)")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve the API with waitress (the default)")
    sub.add_parser("check", help="validate config.yaml and prompts, list plugins")

    # Plugins may add commands; they need the plugin manager, so load plugins from the config
    # named on the command line, tolerating a broken config (check/serve report it properly).
    # Only --config is read here: the full parser would refuse a plugin's command, not added yet.
    pre_parser = argparse.ArgumentParser(add_help=False)
    pre_parser.add_argument("--config")
    pre, _ = pre_parser.parse_known_args(argv)
    config_path = pre.config or default_config_path()
    try:
        pm = pluggy.PluginManager("wellmate")
        pm.add_hookspecs(Hookspecs)
        raw = expand_env(read_yaml(Path(config_path)), "")
        plugins_conf = raw.get("plugins") or {}
        load_plugins(pm, Path(config_path).resolve().parent / str(plugins_conf.get("directory") or "plugins"),
                     plugins_conf.get("disabled") or [])
        pm.hook.cli(subparsers=sub, wm_factory=lambda: create_app(config_path))
    except (ConfigError, AttributeError, TypeError):
        pass
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "check":
            return check(config_path)
        if getattr(args, "func", None):
            return args.func(args) or 0
        return serve(config_path)
    except (ConfigError, StorageUnavailable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    # Run main() from the importable module, so plugins that `import wellmate` share its classes.
    import wellmate

    sys.exit(wellmate.main())
