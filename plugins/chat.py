"""Chat with health agents (docs/api.md: Chat and Sessions): provider chains with fallback, SSE
streaming, sessions, emotion labels."""

import logging
import queue
import re
import sys
import threading
import time
from collections import Counter, OrderedDict
from datetime import datetime, timedelta

import bottle

from wellmate import (ApiError, ClosingBody, ConfigError, Index, ProviderAttempt, ProviderError, Setting,
                      StorageUnavailable, Turn, TurnOutcome, call_with_turn, field, hookimpl, json_dumps, new_id, now_iso,
                      paged, visible, whole_text)
from wellmate_plugins._locks import Admission, KeyedLocks
from wellmate_plugins._openapi import ERROR, Api, Sse, array, boolean, integer, obj, page, paging, string, text
from wellmate_plugins._reply_emotion import REPLY_LABELS, ReplyEmotion, closing_label, shown, thanks_only, user_label
from wellmate_plugins._text import language

log = logging.getLogger("wellmate.chat")


@hookimpl
def config_schema():
    return {"chat": {
        "max_message_chars": Setting(4000, "Longest user message accepted.", int, min=1, max=100000),
        "ping_seconds": Setting(10.0, "Seconds between ': ping' comments while a stream waits.", float, min=0.05, max=300),
        "max_turns_per_user": Setting(2, "Chat turns (streamed or not) one user may have in progress at once; "
                                         "more get 429 too_many_turns.", int, min=1, max=512),
        "reserve_threads": Setting(4, "Worker threads kept for everything but chat turns: at most server.threads "
                                      "minus this many turns run at once (at least one); more get 503 server_busy.",
                                   int, min=0, max=512),
        "max_images": Setting(4, "Images one chat message may carry (upload ids from POST /api/v1/uploads); "
                                 "each goes to the vision model whole.", int, min=1, max=16),
    }}


RETRY_AFTER_SECONDS = 5  # what a refused turn's Retry-After says: a short reply's time on a small model

# The reply to a message with images when no vision provider is configured or none answered (in
# the language of the message's text); the images stay stored with the message.
CANNOT_SEE = {
    "zh": "抱歉，这个服务器还不能看照片（还没有接入能识别图片的模型）。你可以把照片上的内容打字发给我，我来帮你看看。",
    "en": "Sorry, this server cannot look at photos yet (no model that can see images is connected). "
          "You can type what the photo shows and I will help with that.",
}
# What the model reads as the message's text when images came without any.
IMAGE_ONLY = {"zh": "请看看这张照片。", "en": "Please look at this photo."}


class TurnGate:
    """The chat turns in progress, so that no user and no session takes more than its share of
    the worker threads. Each turn holds a waitress thread until its reply is done (a long streamed
    reply from a small local model: ~20 s), whether streamed or not: 16 streams from one user held
    all 16 threads and every other request waited up to 19 s (bench/streams). So a turn is let in only
    if its session has no turn in progress (one at a time: two would both see the session without
    a reply and both add the first reply's disclaimer), its user has fewer than
    ``chat.max_turns_per_user``, and fewer than ``server.threads - chat.reserve_threads`` run in
    all; else it is refused at once, before anything is stored (waiting would hold a thread too).

    The tables hold only turns in progress, so they stay as small as the cap."""

    def __init__(self, per_user: int, total: int):
        self.turns = Admission(per_user, total)  # per user and in all
        self._lock = threading.Lock()  # the session check and the admission are one step
        self._sessions = set()  # session ids with a turn in progress

    def enter(self, user_id: str, session_id: str) -> "TurnSlot":
        retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        with self._lock:
            if session_id in self._sessions:
                raise ApiError(409, "turn_in_progress", "This session is still answering your previous message; "
                                                        "send the next one when that reply has ended.", retry)
            refused = self.turns.enter(user_id)
            if refused == "key":
                raise ApiError(429, "too_many_turns", f"You already have {self.turns.per_key} replies in progress, "
                                                      "the most this server allows at once "
                                                      "(chat.max_turns_per_user); wait for one to end.", retry)
            if refused == "total":
                raise ApiError(503, "server_busy", f"The server is answering {self.turns.total} chats, as many as it "
                                                   "takes at once; try again in a few seconds.", retry)
            self._sessions.add(session_id)
        return TurnSlot(self, user_id, session_id)

    def _leave(self, user_id: str, session_id: str):
        with self._lock:
            self._sessions.discard(session_id)
            self.turns.leave(user_id)


class TurnSlot:
    """One turn's place in the `TurnGate`; `release` may be called any number of times."""

    def __init__(self, gate: TurnGate, user_id: str, session_id: str):
        self._gate, self._user_id, self._session_id = gate, user_id, session_id
        self._released = False
        self._lock = threading.Lock()

    def release(self):
        with self._lock:
            if self._released:
                return
            self._released = True
        self._gate._leave(self._user_id, self._session_id)


SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")  # the message log's id: a file name in some backends
# Sessions whose count this process has checked against the log's seq, at most: one more costs a
# read of the log's newest line (~20 us), once, when it next comes back.
CHECKED_SESSIONS = 10_000
ACTIVITY = ("message_count", "updated_at")  # kept by `Sessions` alone
# A turn's history comes from memory for the sessions most recently chatted in, at most this many,
# each with its newest messages (the longest agents.*.history, at most HISTORY_KEPT). One more costs a
# read of its log when it next has a turn. Bounded by bytes as well as sessions: 1,000 tails of 20
# messages of 4,000 emoji (chat.max_message_chars) were 326 MB (tracemalloc; 167 MB in CJK); with
# ~300-byte messages 1,000 tails are ~9 MB. So the tails held are at most HISTORY_BYTES (their
# strings' sys.getsizeof, ~the memory tracemalloc sees), and a session whose tail alone is over
# HISTORY_SESSION_BYTES is not held: its turns read the log, as every turn did before
# (bench/history_tails prints the figures).
HISTORY_SESSIONS = 1_000
HISTORY_BYTES = 8 * 1024 * 1024
HISTORY_SESSION_BYTES = 256 * 1024
HISTORY_KEPT = 50  # an agent's history longer than this is read from the log every turn
# The "total" counter holds the messages of the hours before its checkpoint ("through"); the
# hours from there on are added when it is read. So a message writes its hour's counter alone, not
# the total as well (~20 us a write), and the checkpoint moves to a day back once the hours after it
# pass two days: a write a day, and a read adds up at most 48 hours' documents.
TOTAL_HOURS = 48
PAGE = 200


@hookimpl
def register_collections(register):
    register("sessions", indexes=[Index(("user_id",), "updated_at"), Index(("user_id", "agent"), "updated_at"),
                                  Index(("user_id",), "created_at")])
    # Counters, so that /admin/stats and /health/mood cost what they show, not every message
    # stored: per hour of UTC, per role (documents "h<hour>"), the total of the hours before a
    # checkpoint ("total": see `Sessions.message_total`; with the deletes taking messages out of the
    # counters now, `Sessions._uncount`), and whether the messages stored before
    # counters existed were counted ("backfilled").
    register("chat_activity", indexes=[Index((), "hour")])
    # Per user, agent and hour: how many of the user's messages got each emotion label.
    register("chat_moods", indexes=[Index(("user_id",), "hour"), Index(("user_id", "agent"), "hour")])
    # Which sessions' messages show which uploads ("<session id>:<upload id>"), so that deleting a
    # session deletes the images no other session shows, without reading every message.
    register("chat_images", indexes=[("session_id",), ("upload_id",)])


def _slot(at) -> tuple[str, int] | None:
    """The UTC hour ("2026-12-06T11") and quarter of it (0-3) of a created_at. Counters keep
    quarters: every time zone's offset is a whole number of quarter hours (Nepal +05:45), so a
    local day is a whole number of them."""
    if not isinstance(at, str) or len(at) < 16 or at[13:14] != ":" or not at[14:16].isdigit():
        return None
    return at[:13], min(int(at[14:16]) // 15, 3)


def _hours_from(hour: str, hours: int) -> str | None:
    """The UTC hour (as `_slot` gives it) ``hours`` after ``hour``; None if it is not one."""
    try:
        return (datetime.fromisoformat(hour + ":00+00:00") + timedelta(hours=hours)).strftime("%Y-%m-%dT%H")
    except ValueError:
        return None


def quarter_start(hour: str, quarter: int) -> datetime:
    return datetime.fromisoformat(hour + ":00+00:00") + timedelta(minutes=15 * quarter)


class Sessions:
    """The chat plugin's data: sessions (with ``message_count`` and ``updated_at``, kept here),
    their message logs, and the counters other views read instead of the messages. Other plugins
    reach it as ``wm.service("chat").sessions``."""

    def __init__(self, storage, history: int = 0):
        """``history``: how many past messages a turn's prompt takes (the longest agents.*.history)."""
        self.storage = storage
        self._on_delete = []  # functions(session) called when a session goes (safety's flags)
        self._on_export = []  # functions(session) -> fields another plugin adds to its export
        # Appends to one session take turns (a reminder's push beside a turn's reply): each
        # line's seq is the session's count plus one. Reentrant: a delete reads the session again
        # (`get` -> `_check`) under it.
        self._append_locks = KeyedLocks(reentrant=True)
        self._checked: dict[str, None] = {}  # sessions whose count this process knows is the log's (see `get`)
        self._checked_lock = threading.Lock()
        # Session id -> its newest messages (at most ``_keep``; fewer only when that is the whole log)
        # as `_brief` has them, oldest first; the most recently used last. Changed under the
        # session's append lock, so it follows the log's order (see `history`).
        self._tails: OrderedDict[str, tuple] = OrderedDict()
        self._tail_sizes: dict[str, int] = {}  # session id -> its tail's bytes (`_size`)
        self._tail_bytes = 0  # their sum: at most HISTORY_BYTES
        self._tails_lock = threading.Lock()
        self._keep = min(max(history, 0), HISTORY_KEPT)
        # Held while the total and its checkpoint change or are read, and round a count's hour
        # writes (not across them: see `_count`): the checkpoint moves only with every hour before
        # it counted, and a reader adds each hour once.
        self._activity_lock = threading.Lock()
        # The earliest hour at or after the checkpoint of each count writing its hours now (`_count`).
        self._writing: Counter = Counter()
        self._through: str | None = None  # the total's checkpoint, once read (this process alone writes it)
        # Session id -> {"token", "low"} of the deletes taking messages out of the counters now: kept
        # in the total as well, so that one a kill cut short is finished by the next start (`_uncount`).
        self._deleting: dict[str, dict] = {}
        self._backfill()
        self._checkpoint_total()
        self._finish_deletes()

    # -- sessions
    def create(self, user_id: str, agent: str, title: str = "", session_id: str | None = None) -> dict:
        session_id = session_id or new_id()
        if not isinstance(session_id, str) or not SESSION_ID.fullmatch(session_id):
            raise ValueError(f"a session id must be 1-128 letters, digits, '-' or '_', got {session_id!r}")
        at = now_iso()
        session = self.storage.insert("sessions", {"id": session_id, "user_id": user_id, "agent": agent,
                                                   "title": title, "created_at": at, "message_count": 0,
                                                   "updated_at": at})
        self._checked_now(session_id)  # its log is empty: nothing to check
        return session

    def get(self, session_id: str) -> dict | None:
        session = self.storage.get("sessions", session_id)
        if session is not None and session_id not in self._checked:
            session = self._check(session_id)
        return session

    def _check(self, session_id: str) -> dict | None:
        """The session, its count made the log's: once per session and process. A process killed
        between a message's log line and its session's count left the count a message short; the
        seq of the log's newest line says what the count is, and the messages the count missed go
        into the counters (they were to be counted after the session, so they are not)."""
        with self._append_lock(session_id):
            session = self.storage.get("sessions", session_id)
            if session is None:
                return None
            if session.get("appending"):  # a mark of the versions before seq (see `_settle`)
                session = self._settle(session)
            newest = self.storage.list_messages(session_id, limit=1)[0] if SESSION_ID.fullmatch(session_id) else []
            seq = newest[-1].get("seq") if newest else None
            count = session.get("message_count") or 0
            if session.get("uncounted") and not newest and count:
                # Killed between its log's delete and its own: listed until deleted again, and empty
                # (it showed its old count and opened with no messages).
                session = self.storage.update("sessions", session_id, {"message_count": 0}) or session
            if type(seq) is int and seq != count:  # no seq: a log written before seq, or not by chat
                missed = []
                if seq > count:
                    page, _ = self.storage.list_messages(session_id, limit=seq - count)
                    missed = [m for m in page if type(m.get("seq")) is int and m["seq"] > count]

                def recount(doc):
                    if doc is None:
                        return None
                    return {**doc, "message_count": seq, "updated_at": max(
                        [doc.get("updated_at") or ""] + [m.get("created_at") or "" for m in missed])}
                session = self.storage.update("sessions", session_id, recount, durable=False) or session
                self._count([(session, m) for m in missed])
            self._checked_now(session_id)
            return session

    def _checked_now(self, session_id: str) -> None:
        with self._checked_lock:
            self._checked[session_id] = None
            if len(self._checked) > CHECKED_SESSIONS:  # the oldest is checked again if it comes back
                del self._checked[next(iter(self._checked))]

    def _unchecked(self, session_id: str) -> None:
        with self._checked_lock:
            self._checked.pop(session_id, None)

    def _append_lock(self, session_id: str):
        return self._append_locks.hold(session_id)

    def _settle(self, session: dict) -> dict:
        """Finish the count of an append that a process of a version before seq (which marked the
        session "appending" before the log write) was killed in: its message reached the log (then
        it counts) or not (then nothing does)."""
        message_id = session["appending"].split(":", 1)[-1]
        newest, _ = self.storage.list_messages(session["id"], limit=1)
        landed = newest[-1] if newest and newest[-1].get("id") == message_id else None

        def settle(doc):
            if doc is None or doc.get("appending") != session["appending"]:
                return None  # settled meanwhile
            doc = {k: v for k, v in doc.items() if k != "appending"}
            if landed is not None:
                doc.update(message_count=(doc.get("message_count") or 0) + 1,
                           updated_at=max(landed.get("created_at") or "", doc.get("updated_at") or ""))
            return doc
        settled = self.storage.update("sessions", session["id"], settle)
        if settled is not None and landed is not None:
            self._count([(settled, landed)])
        return settled or self.storage.get("sessions", session["id"])

    def list(self, user_id: str, agent: str | None = None, limit: int = 20,
             before: str | None = None) -> tuple[list, str | None]:
        """The user's sessions, most recently active first."""
        where = {"user_id": user_id} if agent is None else {"user_id": user_id, "agent": agent}
        return self.storage.find("sessions", where, order="-updated_at", limit=limit, before=before)

    def update(self, session_id: str, changes: dict) -> dict | None:
        return self.storage.update("sessions", session_id, {k: v for k, v in changes.items() if k not in ACTIVITY})

    def link(self, session_id: str, key: str, value) -> None:
        """Remember ``value`` (or forget it, with None) under ``key`` in the session's ``links``:
        what an agent platform calls this session (Coze, FastGPT and Dify keep conversations
        themselves). Kept on the session, it goes with it when it is deleted and is in its export."""
        def change(doc):
            if doc is None or (doc.get("links") or {}).get(key) == value:
                return None
            links = {k: v for k, v in (doc.get("links") or {}).items() if k != key}
            if value is not None:
                links[key] = value
            return {**doc, "links": links}
        self.storage.update("sessions", session_id, change)

    def on_delete(self, function) -> None:
        """Call ``function(session)`` when a session is deleted, for data another plugin keeps
        about it: before it goes, and once more after (for what a turn stored meanwhile), so the
        function must be safe to call twice."""
        self._on_delete.append(function)

    def on_export(self, function) -> None:
        """Add the fields ``function(session)`` returns (a dict, or None) to the session in the
        user's export: what another plugin keeps about a session (safety's flags)."""
        self._on_export.append(function)

    def delete(self, session_id: str) -> bool:
        session = self.get(session_id)
        if session is None:
            return False
        for function in self._on_delete:
            function(session)
        # Under the session's append lock, with the session read again: an append that counted
        # while the hooks ran is then taken away with the rest (read before it, its message stayed
        # in the counters: a deleted user's moods among them), and none starts until it is gone.
        with self._append_lock(session_id):
            session = self.get(session_id)
            if session is None:
                return False
            if not session.get("uncounted"):  # its messages leave the counters once, even if deleted twice
                self._uncount(session)
            # The log first, then the session: if the process dies in between, the session is still
            # listed (empty) and deleting it again finishes the job.
            self._hold(session_id, None)
            self.storage.delete_messages(session_id)
            deleted = self.storage.delete("sessions", session_id)
            # An append that wrote the log between the two and counted on the session before it went
            # made the log again: gone too (one that counts after it removes it itself: see `append`).
            self.storage.delete_messages(session_id)
            # Again, now that no turn can add to it: one stored while the hooks first ran left what
            # it noted (the photo it showed, a flag) with its message gone. Each hook does nothing twice.
            for function in self._on_delete:
                function(session)
        return deleted

    def delete_user(self, user_id: str) -> None:
        while True:
            page, _ = self.storage.find("sessions", {"user_id": user_id}, order="created_at", limit=PAGE)
            if not page:
                return
            for session in page:
                self.delete(session["id"])

    def of_user(self, user_id: str):
        """The user's sessions, oldest first by created_at, a page at a time."""
        before = None
        while True:
            page, before = self.storage.find("sessions", {"user_id": user_id}, order="created_at",
                                             limit=PAGE, before=before)
            yield from page
            if before is None:
                return

    def export(self, user_id: str):
        """The user's sessions for their export, oldest first, each with its messages (an
        iterator): a page of them in memory at a time."""
        for session in self.of_user(user_id):
            for function in self._on_export:
                session.update(function(session) or {})
            session.pop("user_id", None)
            session.pop("uncounted", None)
            session.pop("appending", None)
            session["messages"] = ({k: v for k, v in m.items() if k != "seq"}  # the log's numbering is chat's own
                                   for m in self.all_messages(session["id"]))
            yield session

    def every(self):
        """Every session of every user (a one-time migration's walk), a page at a time."""
        before = None
        while True:
            page, before = self.storage.find("sessions", limit=PAGE, before=before)
            yield from page
            if before is None:
                return

    def count(self) -> int:
        return self.storage.count("sessions")

    # -- messages
    def append(self, session_id: str, message: dict, durable: bool = True) -> dict:
        """Add a message to the session's log and count it; KeyError if there is no such session.
        One written without ``durable`` is made durable by the session's next durable append, or
        `sync`, which such a caller promises."""
        with self._append_lock(session_id):
            session = self.get(session_id)
            if session is None:
                raise KeyError(f"no session {session_id!r}")
            # The log and the session are two writes: the log first, each line with its number in
            # the session (seq), so that the next process reads a count a kill in between left short
            # from the log (`_check`). One write to the session per message: a mark before the log
            # write as well as the count after it made a turn 9 small writes (5 now: the session and the
            # hour's counter per message, the user's mood; bench/turn_ab).
            seq = (session.get("message_count") or 0) + 1
            message = self.storage.append_message(session_id, {**message, "seq": seq}, durable)

            def count(doc):
                if doc is None:
                    return None
                return {**doc, "message_count": seq,
                        "updated_at": max(message["created_at"], doc.get("updated_at") or "")}
            try:
                # Without a flush of its own: the turn's one fsync is the log's (a second one per
                # turn doubled the chat's overhead on the bench, 3.3 -> 7.5 ms). A kill loses nothing
                # (the log's seq has the count); a power cut may leave it short until `_check`.
                session = self.storage.update("sessions", session_id, count, durable=False)
            except BaseException:
                self._unchecked(session_id)  # the log has the message: the next `get` counts it
                self._hold(session_id, None)  # and the next turn reads it from the log
                raise
            if session is None:
                # Deleted while the message was written (a reply finishing as the user deletes the
                # chat or the account): the append made the log again; no session would ever delete it.
                self.storage.delete_messages(session_id)
                self._hold(session_id, None)
                raise KeyError(f"no session {session_id!r}")
            self._extend_tail(session_id, message)
            # Each message as it is stored, the user's too: counted with the reply (one write to
            # each counter a turn, not two), it was in memory alone for the whole provider call, and
            # a kill then lost it from the counters for good (the log and the session have it, so
            # the next process's `_check` sees nothing missed). The cost: none measurable, server CPU
            # 4.33 -> 4.35 ms a turn (bench/turn_ab --rounds 2 main HEAD, load 3.0).
            # Not durable: a power cut may lose the newest counts (never a message); the next durable
            # write to the counters, or shutdown, saves them. A kill between the session's count and
            # this misses this message alone, and never counts one twice. Under the lock: a delete
            # waiting on it takes away what the session counts, so the counters must hold it by then
            # (counted after, a reply's count outlived the delete of its chat).
            self._count([(session, message)])
        return message

    def sync(self, session_id: str) -> None:
        """Make the session's messages durable (its count follows without a flush: see append)."""
        self.storage.sync_messages(session_id)

    def messages(self, session_id: str, limit: int = 50, before: str | None = None) -> tuple[list, str | None]:
        return self.storage.list_messages(session_id, limit=limit, before=before)

    def history(self, session_id: str, limit: int) -> "list[dict]":
        """The session's newest ``limit`` messages, oldest first, for a turn's prompt: each its
        ``role``, ``content`` and ``images`` (if it has any); read-only.

        Held in memory for the sessions most recently written to: a turn read and parsed the last
        20 lines of its log (~60 us of the ~300 us of storage work a turn does, fsync aside; the
        whole turn ~4 ms of server CPU, bench/turn_ab). A process holds no tail it did not read
        from the log or write itself, so a kill or restart loses nothing but the time to read it."""
        if limit <= 0:
            return []
        if limit > self._keep:  # longer than any agent's history of this config, or over HISTORY_KEPT
            return [_brief(m) for m in self.storage.list_messages(session_id, limit=limit)[0]]
        with self._tails_lock:
            tail = self._tails.get(session_id)
            if tail is not None:
                self._tails.move_to_end(session_id)
        if tail is None:
            # Read under the append lock: an append meanwhile would add to no tail, and this one
            # would miss its message.
            with self._append_lock(session_id):
                with self._tails_lock:
                    tail = self._tails.get(session_id)
                if tail is None:
                    page, _ = self.storage.list_messages(session_id, limit=self._keep)
                    tail = tuple(_brief(m) for m in page)
                    self._hold(session_id, tail)
        return list(tail[-limit:])

    def _hold(self, session_id: str, tail: tuple | None, size: int | None = None) -> None:
        """Keep ``tail`` as the session's (None: forget it); ``size``: its bytes (`_size`), if
        known. Called under its append lock."""
        if size is None:
            size = 0 if tail is None else sum(map(_size, tail))
        with self._tails_lock:
            if session_id in self._tails:
                del self._tails[session_id]
                self._tail_bytes -= self._tail_sizes.pop(session_id)
            if tail is None or size > HISTORY_SESSION_BYTES:  # too big to hold: its turns read the log
                return
            self._tails[session_id] = tail
            self._tail_sizes[session_id] = size
            self._tail_bytes += size
            while len(self._tails) > HISTORY_SESSIONS or self._tail_bytes > HISTORY_BYTES:
                oldest, _ = self._tails.popitem(last=False)
                self._tail_bytes -= self._tail_sizes.pop(oldest)

    def _extend_tail(self, session_id: str, message: dict) -> None:
        """The message just appended joins the session's tail, if one is held (under the append lock)."""
        with self._tails_lock:
            tail = self._tails.get(session_id)
            size = self._tail_sizes.get(session_id)
        if tail is not None:
            # Its size from the one held, not every message's again (~10 us an append at history 20).
            brief = _brief(message)
            dropped = tail[:max(0, len(tail) + 1 - self._keep)]
            self._hold(session_id, (tail + (brief,))[-self._keep:], size + _size(brief) - sum(map(_size, dropped)))

    def all_messages(self, session_id: str):
        return self.storage.iter_messages(session_id)

    # -- counters
    def _count(self, messages, touched: set | None = None) -> None:
        """Add ``messages``, pairs (session, message), to the counters (a delete's: `_uncount`).
        With ``touched`` (a backfill's), a counter not in it yet starts from nothing, whatever a
        backfill cut short stored in it, and joins it."""
        hours, moods = _tally(messages)
        if not hours:
            return
        def fresh(doc_id):
            if touched is None or doc_id in touched:
                return False
            touched.add(doc_id)
            return True

        # The hours' writes run outside the lock, so that another turn's count never waits for
        # them (a session deleted over 8,760 hours held every other turn up to 287-524 ms while it
        # wrote them; with them outside, the turn's own time again). Instead the checkpoint does
        # not move past the earliest hour from it on that a count is still writing (`_advance`):
        # so an hour is on the same side of it from the lock's first hold to its second.
        with self._activity_lock:
            restart = fresh("total")  # a backfill's first count: the total is every hour's
            through = "" if restart else self._checkpoint()
            later = [hour for hour in hours if hour >= through]
            low = min(later) if later else None
            if low is not None:
                self._writing[low] += 1
        try:
            for hour, counts in hours.items():
                self.storage.update("chat_activity", "h" + hour, _adder(counts, 1, {"id": "h" + hour, "hour": hour},
                                                                        fresh=fresh("h" + hour)), durable=False)
        finally:
            with self._activity_lock:
                if low is not None:
                    self._writing[low] -= 1
                    if not self._writing[low]:
                        del self._writing[low]
        with self._activity_lock:
            # Messages of hours before the checkpoint (older ones `_check` recounts) are in the total too.
            before = sum(n for hour, counts in hours.items() if hour < through for n in counts.values())
            if restart or before:
                # The checkpoint as it is now: it may have moved since (over none of these hours).
                through = through if restart else self._checkpoint()
                self.storage.update("chat_activity", "total", lambda doc: {
                    **(doc or {}), "id": "total", "through": through,
                    "messages": max(0, (0 if restart else (doc or {}).get("messages", 0)) + before)},
                    durable=False)
                self._through = through
            if touched is None:  # not while a backfill runs: it starts hours over that the move would have added up
                self._advance(max(hours))
        for (user_id, agent, hour), (counts, latest) in moods.items():
            doc_id = f"{user_id}|{agent}|{hour}"
            self.storage.update("chat_moods", doc_id, _adder(counts, 1, {
                "id": doc_id, "hour": hour, "user_id": user_id, "agent": agent}, latest, fresh(doc_id)), durable=False)

    def _uncount(self, session: dict) -> None:
        """Take a deleted session's messages out of the counters (and mark it "uncounted"), so that
        doing it again after a kill part-way takes nothing away twice: subtracted twice, every other
        session's messages of the same hours and the user's moods went with it, for good (a year-long
        session's second delete left the total 0 with 8,762 messages in the logs). The total is
        written first, with the delete in its "deleting" (a token and the earliest hour from the
        checkpoint on, which the checkpoint then stays before); each hour and mood counter carries
        the token of the deletes that took from it while they are in progress (`_adder`); the
        next start finishes one a kill cut short (`_finish_deletes`), skipping the counters that
        carry its token. The cost: two more writes of the total a delete."""
        session_id = session["id"]
        counted = session.get("message_count") or 0  # not one an append is writing now (its seq is past it)
        hours, moods = _tally((session, m) for m in self.storage.iter_messages(session_id)
                              if not (type(m.get("seq")) is int and m["seq"] > counted))
        with self._activity_lock:
            pending = self._deleting.get(session_id)
            if pending is None and hours:
                through = self._checkpoint()
                later = [hour for hour in hours if hour >= through]
                pending = {"token": new_id(), "low": min(later) if later else None}
                # Messages of hours before the checkpoint (a deleted session's older ones) are in the total.
                before = sum(n for hour, counts in hours.items() if hour < through for n in counts.values())

                def start(doc):
                    doc = doc or {"id": "total", "messages": 0}
                    return {**doc, "through": through, "messages": max(0, doc.get("messages", 0) - before),
                            "deleting": {**doc.get("deleting", {}), session_id: pending}}
                self.storage.update("chat_activity", "total", start, durable=False)
                self._through = through
                self._deleting[session_id] = pending
                if pending["low"] is not None:
                    self._writing[pending["low"]] += 1
        if pending is not None:
            tokens = self._deleting_tokens
            for hour, counts in sorted(hours.items()):
                self.storage.update("chat_activity", "h" + hour, _adder(
                    counts, -1, {"id": "h" + hour, "hour": hour}, token=pending["token"], tokens=tokens), durable=False)
            empty = []
            for (user_id, agent, hour), (counts, _) in sorted(moods.items()):
                doc_id = f"{user_id}|{agent}|{hour}"
                stored = self.storage.update("chat_moods", doc_id, _adder(counts, -1, {
                    "id": doc_id, "hour": hour, "user_id": user_id, "agent": agent}, token=pending["token"],
                    tokens=tokens), durable=False) or self.storage.get("chat_moods", doc_id)
                if stored is not None and not any(any(quarters) for quarters in stored["counts"].values()):
                    empty.append(doc_id)
        self.storage.update("sessions", session_id, {"uncounted": True})
        if pending is None:
            return
        for doc_id in empty:  # nothing of a deleted user's stays (after the mark: their tokens go with them)
            self.storage.delete("chat_moods", doc_id)
        with self._activity_lock:
            self._done_deleting(session_id)
            if hours:
                self._advance(max(hours))

    def _done_deleting(self, session_id: str) -> None:
        """Take a delete out of the total's "deleting": the checkpoint may move past its hours.
        Under the activity lock."""
        self.storage.update("chat_activity", "total", lambda doc: doc and {
            **doc, "deleting": {k: v for k, v in doc.get("deleting", {}).items() if k != session_id}}, durable=False)
        low = self._deleting.pop(session_id).get("low")
        if low is not None:
            self._writing[low] -= 1
            if not self._writing[low]:
                del self._writing[low]

    def _deleting_tokens(self) -> set:
        """The tokens of the deletes in progress (a counter keeps those alone: `_adder`)."""
        return {pending["token"] for pending in list(self._deleting.values())}

    def _finish_deletes(self) -> None:
        """Finish taking out of the counters the sessions whose delete a kill cut short (before
        this process serves: the checkpoint waits for them)."""
        deleting = (self.storage.get("chat_activity", "total") or {}).get("deleting") or {}
        for session_id, pending in deleting.items():
            self._deleting[session_id] = pending
            if pending.get("low") is not None:
                self._writing[pending["low"]] += 1
        for session_id in deleting:
            session = self.storage.get("sessions", session_id)
            if session is not None:
                self._uncount(session)
                log.warning("finished taking session %s, deleted when the process was killed, out of the counters",
                            session_id)
            else:  # not ours to count any more (its session deleted by hand): let the checkpoint go on
                with self._activity_lock:
                    self._done_deleting(session_id)

    def message_total(self) -> int:
        """Every message counted: the total's, before its checkpoint, and the hours' from there on."""
        with self._activity_lock:
            total = self.storage.get("chat_activity", "total") or {}
            return total.get("messages", 0) + sum(sum(sum(quarters) for quarters in doc["counts"].values())
                                                  for doc in self._hours("chat_activity", None, self._checkpoint()))

    def _checkpoint(self) -> str:
        """The hour from which the hours' counters are not in the total yet ("": all of them)."""
        if self._through is None:
            self._through = (self.storage.get("chat_activity", "total") or {}).get("through", "")
        return self._through

    def _advance(self, hour: str) -> None:
        """Add the hours before a day back from ``hour`` to the total, once the hours after the
        checkpoint pass TOTAL_HOURS (one write: a kill before it leaves the checkpoint where it was)."""
        through = self._checkpoint()
        if through >= (_hours_from(hour, -TOTAL_HOURS) or through):
            return
        moved = _hours_from(hour, -TOTAL_HOURS // 2)
        if any(low < moved for low in self._writing):  # an hour it would add up is being written: a later count moves it
            return
        added = sum(sum(sum(quarters) for quarters in doc["counts"].values())
                    for doc in self._hours("chat_activity", None, through, moved))
        self.storage.update("chat_activity", "total", lambda doc: {
            **(doc or {}), "id": "total", "through": moved, "messages": (doc or {}).get("messages", 0) + added},
            durable=False)
        self._through = moved

    def _checkpoint_total(self) -> None:
        """A total written before checkpoints counted every hour: its checkpoint is the hour after
        the newest (once, on the first start of this version)."""
        total = self.storage.get("chat_activity", "total")
        if total is None or "through" in total:
            return
        # start: hour documents alone ("total" and "backfilled" have none; where a missing field
        # sorts is the backend's: first, it was a KeyError on every start).
        newest, _ = self.storage.find("chat_activity", order="-hour", start="0", limit=1)
        # (Not an hour we wrote: any text after it, as hours compare as text.)
        through = (_hours_from(newest[0]["hour"], 1) or newest[0]["hour"] + "~") if newest else ""
        self.storage.put("chat_activity", {**total, "through": through})
        self._through = through

    def messages_by_day(self, since: str, zone) -> dict[str, dict[str, int]]:
        """Messages per local day (in ``zone``) and role, created at or after ``since``."""
        days: dict[str, dict[str, int]] = {}
        for doc in self._hours("chat_activity", None, since):
            for key, quarters in doc["counts"].items():
                for quarter, n in enumerate(quarters):
                    moment = quarter_start(doc["hour"], quarter)
                    if n and now_iso(moment) >= since:
                        roles = days.setdefault(moment.astimezone(zone).date().isoformat(), {})
                        roles[key] = roles.get(key, 0) + n
        return days

    def moods(self, user_id: str, since: str, agent: str | None = None):
        """``(quarter's start, label, how many, the latest created_at)`` of the emotion labels of
        the user's own messages created at or after ``since``."""
        where = {"user_id": user_id} if agent is None else {"user_id": user_id, "agent": agent}
        for doc in self._hours("chat_moods", where, since):
            for label, quarters in doc["counts"].items():
                for quarter, n in enumerate(quarters):
                    moment = quarter_start(doc["hour"], quarter)
                    if n > 0 and now_iso(moment) >= since:
                        yield moment, label, n, (doc.get("latest") or {}).get(label) or now_iso(moment)

    def _hours(self, collection: str, where, since: str, until: str | None = None):
        before = None
        while True:
            page, before = self.storage.find(collection, where, order="hour", start=since[:13], end=until,
                                             limit=PAGE, before=before)
            yield from page
            if before is None:
                return

    def _backfill(self) -> None:
        """Count the messages stored before counters existed, once (an older data folder's first
        start). A kill half-way leaves counters holding part of it and no "backfilled": the next
        start counts again, each counter from nothing the first time it meets it (nothing else has
        counted meanwhile: this runs before the app serves), so every message counts once."""
        if self.storage.get("chat_activity", "backfilled") is not None:
            return
        touched = set()  # the counters this run has written: ids, at most one per hour and user's agent

        def count(page):  # a page of sessions counted in memory, then written at once
            self._count(((s, m) for s in page for m in self.storage.iter_messages(s["id"])), touched)
            return len(page)

        counted, page = 0, []
        for session in self.every():
            page.append(session)
            if len(page) == PAGE:
                counted, page = counted + count(page), []
        counted += count(page)
        self.storage.sync("chat_activity")
        self.storage.sync("chat_moods")
        self.storage.put("chat_activity", {"id": "backfilled", "at": now_iso(), "sessions": counted})
        if counted:
            log.warning("counted the messages of %d sessions for the admin stats and moods (once)", counted)


def _brief(message: dict) -> dict:
    """What a turn's prompt takes of a stored message (`Sessions.history`)."""
    brief = {"role": message.get("role"), "content": message.get("content")}
    if message.get("images"):
        brief["images"] = message["images"]
    if message.get("reminder_id"):
        # a reminder pushed into the session: the next user message answers it (Turn.flags["after_reminder"])
        brief["reminder"] = True
    if message.get("role") == "user" and isinstance(message.get("emotion"), str):
        brief["emotion"] = message["emotion"]  # the session's feeling, for the reply to a thank-you (`closing_label`)
    return brief


def _size(brief: dict) -> int:
    """What a `_brief` holds in memory, about: its text's (1, 2 or 4 bytes a character, as
    sys.getsizeof counts them), its images' ids, and ~250 bytes for the dict."""
    return 250 + sys.getsizeof(brief.get("content") or "") + 100 * len(brief.get("images") or ())


def _tally(messages) -> tuple[dict, dict]:
    """What ``messages``, pairs (session, message), add to the counters: hour -> Counter of (role,
    quarter), and (user id, agent, hour) -> [Counter of (label, quarter), label -> latest created_at]."""
    hours, moods = {}, {}
    for session, message in messages:
        slot = _slot(message.get("created_at"))
        if slot is None:
            continue
        role = str(message.get("role") or "?")
        hours.setdefault(slot[0], Counter())[(role, slot[1])] += 1
        label = message.get("emotion")
        if role == "user" and isinstance(label, str) and label:
            mood = moods.setdefault((session.get("user_id"), session.get("agent"), slot[0]), [Counter(), {}])
            mood[0][(label, slot[1])] += 1
            mood[1][label] = max(mood[1].get(label, ""), message["created_at"])
    return hours, moods


def _adder(counts: Counter, sign: int, fields: dict, latest: dict | None = None, fresh: bool = False,
           token: str | None = None, tokens=None):
    """An `update` function adding ``counts`` ((key, quarter) -> n) to a counters document (to an
    empty one if ``fresh``). With ``token`` (a delete's: `Sessions._uncount`), nothing if the
    document carries it already, else the document carries it from then on, with those of
    ``tokens()`` (the deletes in progress) it carried: the rest are of deletes that are done."""
    def add(doc):
        if token is not None and doc and token in doc.get("deletes", ()):
            return None  # taken away before the kill
        doc = {**fields, "counts": {}} if fresh or not doc else doc
        if token is not None:
            live = tokens()
            doc["deletes"] = [t for t in doc.get("deletes", ()) if t in live and t != token] + [token]
        for (key, quarter), n in counts.items():
            quarters = doc["counts"].setdefault(key, [0, 0, 0, 0])
            quarters[quarter] = max(0, quarters[quarter] + sign * n)
        if latest and sign > 0:
            known = doc.setdefault("latest", {})
            for key, at in latest.items():
                known[key] = max(at, known.get(key, ""))
        return doc
    return add


def check_vision_providers(wm) -> None:
    """A ConfigError unless every agent's vision_providers can see images (vision: true): a photo
    sent to a model that cannot see it would be answered as if there were none."""
    for agent, settings in wm.config["agents"].items():
        for provider in settings["vision_providers"]:
            conf = wm.config["providers"][provider]
            if conf.get("vision") is not True:
                why = ("set vision: true under it if its model can" if "vision" in wm.provider_classes[conf["plugin"]].settings
                       else f"plugin {conf['plugin']} sends no images")
                raise ConfigError(f"{wm.config_path.name}: agents.{agent}.vision_providers: providers.{provider} cannot "
                                  f"see images; {why}")


class ChatService:
    """One chat turn: store the user's message, build the context, run the provider chain,
    tag and store the reply. Shared by the plain and the streaming route."""

    def __init__(self, wm):
        check_vision_providers(wm)
        self.wm = wm
        self.sessions = Sessions(wm.storage, history=max((agent["history"] for agent in wm.config["agents"].values()),
                                                         default=0))
        self.providers = wm.build_providers()
        tagger_class = wm.tagger_classes[wm.config["emotion"]["tagger"]]
        self.tagger = tagger_class(wm.config["emotion"], wm)
        self.labels = wm.config["emotion"]["labels"]
        # Replies carry what the mascot shows (plugins/_reply_emotion.py); empty: the user labels.
        self.reply_labels = wm.config["emotion"]["reply_labels"] or list(self.labels)
        self.reply_emotion = ReplyEmotion(wm, wm.config["emotion"].get("lexicon") or "prompts/emotion_lexicon.yaml")
        self.failures = Counter()  # provider name -> failures since start, for the service view
        self._push_lock = threading.Lock()
        chat = wm.config["chat"]
        self.gate = TurnGate(chat["max_turns_per_user"],
                             max(1, wm.config["server"]["threads"] - chat["reserve_threads"]))
        self.sessions.on_delete(self._delete_images)

    def provider(self, name: str):
        """The provider instance configured as ``providers.NAME`` (None if there is none)."""
        return self.providers.get(name)

    def failure_counts(self) -> dict[str, int]:
        """Provider name -> how often it failed since the server started (for /admin/stats)."""
        return dict(self.failures)

    def agent(self, name: str) -> dict:
        agents = self.wm.config["agents"]
        if name not in agents:
            raise ApiError(404, "unknown_agent", f"No agent named {name!r}; agents: {', '.join(agents)}.")
        return agents[name]

    def tag(self, text: str, label: str | None = None) -> str:
        """A configured label for ``text``: ``label`` if it is one (what a tagger's reader found
        in the reply), else the tagger's; neutral if the tagger fails."""
        if label not in self.labels:
            try:
                label = self.tagger.tag(visible(text), self.labels)  # the checked form, as safety reads it
            except Exception:
                log.exception("emotion tagger failed")
                label = None
        return label if label in self.labels else ("neutral" if "neutral" in self.labels else self.labels[0])

    def reply_tag(self, text: str, turn: "Reply | None" = None, label: str | None = None) -> str:
        """One of ``emotion.reply_labels`` for a reply: ``label`` if the model named one (unless
        safety spoke this turn), else decided from the turn and the reply's words."""
        urgent = bool(turn and turn.urgent)
        try:
            if label not in self.reply_labels and not urgent:
                label = self.tagger.reply_label(text, self.reply_labels)  # a model's call, if the tagger has one
            if label in self.reply_labels and not urgent:
                return label
            if turn is not None and getattr(turn, "closing", None) and not urgent:
                return shown(turn.closing, self.reply_labels)
            decided = self.reply_emotion.decide(
                text, turn.user_emotion if turn else None, urgent,
                bool(turn and (turn.session.get("flags") or {}).get("crisis")),  # safety's count for this turn
                words_label=lambda words: self.tag(words),
                cheerless=bool((getattr(getattr(turn, "turn", None), "flags", None) or {}).get("risk_word")))
            if decided in ("happy", "encouraging") and self.sarcastic(getattr(getattr(turn, "turn", None), "text", None)):
                # Sarcasm is never met with cheer, whatever label the tagger settled on ("美滋滋，喂完奶
                # 天就亮了" read as happy, or tired with an effort cue: encouraging). Asked only for a
                # cheerful face, so most turns cost nothing more.
                decided = "caring"
            elif decided in ("happy", "encouraging", "calm") and (getattr(getattr(turn, "turn", None), "flags", None) or {}).get(
                    "risky_plan") == "mania":
                # a high told with a medicine stopped is a warning sign: not met with a settled face either (EMO2)
                decided = "caring"
        except Exception:
            log.exception("labelling a reply failed")
            decided = "neutral"
        return shown(decided, self.reply_labels)

    def aside(self, text: str | None) -> list[tuple[int, int]]:
        """Spans of ``text`` (normalized) whose feeling words the tagger reads as telling of none (tears from onions,
        "I could murder a pizza"); [] for a tagger that cannot tell."""
        read = getattr(self.tagger, "aside", None)
        return list(read(text)) if text and read else []

    def moved_on(self, text: str | None) -> bool:
        """Whether the tagger reads ``text`` as something long past told and then how it is now ("my dog passed away
        two years ago; … now … happy again"); False for a tagger that cannot tell."""
        read = getattr(self.tagger, "moved_on", None)
        return bool(text and read and read(text))

    def sarcastic(self, text: str | None) -> bool:
        """Whether the tagger reads ``text`` (the user's message) as sarcastic; False for a tagger
        that cannot tell (the llm tagger labels its own replies)."""
        read = getattr(self.tagger, "sarcastic", None)
        return bool(text and read and read(text))

    def own_session(self, user: dict, session_id: str) -> dict:
        session = self.sessions.get(session_id)
        # Another user's session answers exactly like a missing one: its existence is not revealed.
        if session is None or session["user_id"] != user["id"]:
            raise ApiError(404, "session_not_found", f"No session {session_id!r}.")
        return session

    def push(self, session_id: str, message: dict) -> dict:
        """Add a message the agent sends on its own (a reminder) to a session: role assistant,
        tagged with an emotion. It counts as unread until the user next opens the session.

        Unread is kept as the session's ``pushed_at`` (times of pushed messages, the newest
        MAX_UNREAD) against its ``read_at``; only this method writes the first and only reading
        the session writes the second, so neither can overwrite the other's update."""
        message = {"role": "assistant", "emotion": self.reply_tag(message.get("content") or ""),
                   "created_at": now_iso(), **message}
        with self._push_lock:
            stored = self.sessions.append(session_id, message)
            session = self.sessions.get(session_id) or {}
            pushed = (session.get("pushed_at") or [])[-(MAX_UNREAD - 1):] + [stored["created_at"]]
            self.sessions.update(session_id, {"pushed_at": pushed})
        return stored

    def refuse_too_long(self, text, limit: int, name: str = "text") -> None:
        """A message over ``limit`` characters is refused (400); one whose start or end is a crisis gets the crisis
        reply's words in the refusal: a long goodbye letter ending in 我想自杀 got "at most 4000 characters" and no
        hotline (the session-15 audit). Only the two ends are read, so a huge body costs two ordinary checks.
        ``name`` is the field as the client sent it: the compat dialects call this too (their `message`,
        `content`), which had a length check of their own that read no crisis (the session-15 review)."""
        if not isinstance(text, str) or len(text) <= limit:
            return
        safety = self.wm.service("safety")
        ends = (text[:limit], text[-limit:])
        crisis = next((end for end in ends if safety is not None and safety.assess(end).level == "crisis"), None)
        if crisis is not None:
            lang = safety.reply_language(crisis)
            raise ApiError(400, "invalid_field", f"{name}: at most {limit} characters.\n\n"
                           + safety.wording("crisis", lang, {}))

    def begin(self, user: dict, agent_name: str, body: dict):
        """Validate, find or create the session, store the user's message; return the turn,
        which holds a place in the gate until `Reply.release`."""
        agent = self.agent(agent_name)
        images = self.images(user, body, read=bool(agent["vision_providers"]))
        limit = self.wm.config["chat"]["max_message_chars"]
        self.refuse_too_long(body.get("text") if isinstance(body, dict) else None, limit)
        text = field(body, "text", required=not images, default="", max_len=limit, prose=True)
        # An empty id ("" or blanks) is a client that lost the one it had, not one asking for a new
        # session: starting one silently cut the conversation in two. Left out or null starts one.
        session_id = field(body, "session_id", required=False, max_len=64, leave_out="to start a new session")
        if session_id:
            session = self.own_session(user, session_id)
            if session["agent"] != agent_name:
                raise ApiError(400, "wrong_agent", f"Session {session_id!r} belongs to agent {session['agent']!r}.")
        new_session_id = None if session_id else new_id()
        slot = self.gate.enter(user["id"], session_id or new_session_id)
        try:
            if not session_id:
                session = self.sessions.create(user["id"], agent_name, title_from(text or "📷"), new_session_id)
            turn = self._begin(user, agent_name, agent, session, text, images)
        except BaseException:
            slot.release()
            raise
        turn.release = slot.release
        return turn

    def images(self, user: dict, body: dict, read: bool = True) -> list[dict]:
        """The images a chat message names (``images``: ids from POST /api/v1/uploads), each the
        user's upload with its bytes (`wellmate.Turn` attachments; ``data`` None when not
        ``read``: an agent with no vision provider sends them nowhere): checked before anything is
        stored. A 400 for a malformed list or more than chat.max_images; a 404 for an id that is
        not one of the user's uploads (another user's answers exactly like a missing one)."""
        ids = body.get("images")
        if ids is None:
            return []
        if not isinstance(ids, list) or not all(isinstance(i, str) and 0 < len(i) <= 64 for i in ids):
            raise ApiError(400, "invalid_field", "images: must be a list of upload ids (from POST /api/v1/uploads)")
        ids, most = list(dict.fromkeys(ids)), self.wm.config["chat"]["max_images"]
        if len(ids) > most:
            raise ApiError(400, "too_many_images", f"images: at most {most} in one message (chat.max_images)")
        uploads = self.wm.service("uploads")
        if ids and uploads is None:
            raise ApiError(400, "uploads_disabled", "images: this server takes no images (its uploads plugin is disabled)")
        images = []
        for upload_id in ids:
            found = uploads.get(user["id"], upload_id)
            data = uploads.read(user["id"], upload_id) if found is not None and read else None
            if found is None or (read and data is None):
                raise ApiError(404, "upload_not_found", f"images: no upload {upload_id!r} (upload it with POST /api/v1/uploads)")
            images.append({"type": "image", **found, "data": data})
        return images

    def _delete_images(self, session: dict) -> None:
        """Delete the uploads a session's messages show that no other session's do (called as the
        session goes). The upload first, then the note of it: a kill in between leaves the note,
        and deleting the session again finishes."""
        uploads = self.wm.service("uploads")
        while True:
            shown, _ = self.wm.storage.find("chat_images", {"session_id": session["id"]}, limit=PAGE)
            if not shown:
                return
            for note in shown:
                if uploads is not None and self.wm.storage.count("chat_images", {"upload_id": note["upload_id"]}) <= 1:
                    uploads.delete(session["user_id"], [note["upload_id"]])
                self.wm.storage.delete("chat_images", note["id"])

    def _begin(self, user: dict, agent_name: str, agent: dict, session: dict, text: str, images: list[dict]):
        system = self.system_prompt(user, agent_name, agent)
        # Not flushed to disk yet: the reply's append flushes both (one fsync per turn, not two),
        # and `Reply.sync` does it where a turn ends without a reply. Until then nothing has told
        # the user the message is saved.
        sessions = self.sessions
        history = sessions.history(session["id"], agent["history"])
        message = {"id": new_id(), "role": "user", "content": text}
        if images:
            message["images"] = [image["id"] for image in images]
        # A message of images alone reads, to a model, as a request to look at them.
        messages = [{"role": "system", "content": system}] + [
            {"role": m["role"], "content": m["content"] or (IMAGE_ONLY[language(text)] if m.get("images") else "")}
            for m in history if m["role"] in ("user", "assistant")] + [
            {"role": "user", "content": text or IMAGE_ONLY[language(text)]}]
        # Whether this message answers a reminder the app pushed into the session ("Time for your evening pills", then
        # "took them"): the safety plugin reads a short dose report after one as the routine it is (audit A20: "took
        # them" got the check-in). The newest message of the held tail; one read when the agent keeps no history, none in
        # a session with no message yet (a reminder pushed into a session is one of its messages).
        last = history[-1:] if history else sessions.history(session["id"], 1) if session.get("message_count") else []
        turn = Reply(self, Turn(user, agent_name, session, text, user_message_id=message["id"], message_id=new_id(),
                                attachments=images, flags={"after_reminder": bool(last and last[-1].get("reminder"))}),
                     agent, messages)
        if thanks_only(text):  # a thank-you's reply wears the session's feeling (`closing_label`): the latest one told
            turn.closing = closing_label(next((m.get("emotion") for m in reversed(history) if m["role"] == "user" and
                                               m.get("emotion") not in (None, "neutral") and not thanks_only(m.get("content"))),
                                              None), REPLY_LABELS)

        def store():
            # Stored once, after the before_reply hooks: its label then knows whether safety
            # answered it with a crisis reply or a check-in ("everyone would be better off if i just
            # disappeared for good" was stored as happy, for its "better" and "good").
            turn.user_emotion = user_label(self.tag(text), turn.raised(), self.labels)
            if turn.user_emotion in ("happy", "calm") and (getattr(turn.turn, "flags", None) or {}).get("risky_plan") == "mania" \
                    and "anxious" in self.labels:
                # a high told with a medicine stopped ("stopped my lithium and I feel invincible") is a warning sign,
                # not calm or joy, on the mood timeline too (session 20, EMO2; `cheerless_plans.mania`)
                turn.user_emotion = "anxious"
            for upload_id in message.get("images", ()):  # before the message: a session deleted meanwhile deletes it
                self.wm.storage.put("chat_images", {"id": f"{session['id']}:{upload_id}", "session_id": session["id"],
                                                    "upload_id": upload_id, "user_id": user["id"]})
            sessions.append(session["id"], {**message, "emotion": turn.user_emotion, "created_at": now_iso()},
                            durable=False)
        try:
            turn.ask_plugins()
        except BaseException:
            store()
            turn.sync()
            raise
        store()
        return turn

    def system_prompt(self, user, agent_name, agent) -> str:
        try:
            return self.wm.prompts.render(agent["prompt"], self.wm.prompt_values(user, agent_name))
        except ConfigError as e:
            log.error("%s", e)
            raise ApiError(500, "prompt_error", f"The {agent_name} agent's prompt file has a problem; the server log says what.")

    def close(self):
        try:
            self.tagger.close()
        except Exception:
            log.exception("closing the emotion tagger")
        for provider in self.providers.values():
            try:
                provider.close()
            except Exception:
                log.exception("closing provider %s", provider.name)


def title_from(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 30 else line[:30] + "…"


class Reply:
    """One reply in the making, after the user's message is stored. ``turn`` is what plugins
    and providers are given of it (`wellmate.Turn`)."""

    def __init__(self, chat: ChatService, turn: Turn, agent: dict, messages: list[dict]):
        self.chat, self.turn, self.agent = chat, turn, agent
        self.session, self.agent_name, self.message_id = turn.session, turn.agent, turn.message_id
        self.messages = messages
        self.failures = []
        self.stored = False
        self.canned, self.canned_by = None, None  # a plugin's whole reply: no provider is asked
        self.fallback_by = None  # a plugin whose prefix is the reply when no provider answers
        self.prefix, self.suffix = "", ""  # plugins' text around the reply
        self.readers = []  # plugins' reader factories: they see a provider's text before the tagger's reader
        self.user_emotion = None  # the user's message's label
        self.closing = None  # a thank-you and nothing more: the reply's label, from the session's feeling
        self.urgent_sets = []  # plugins' `urgent` sets: what they found this turn, filled as they go
        self.sources = []  # what the reply draws on ({id, title}: library articles), for the client to link
        self.release = lambda: None  # gives up the turn's place in the gate (set by ChatService.begin)
        # For the turn_finished hook (metrics): how it went, timed from here (the message is being stored).
        self.started = time.perf_counter()
        self.attempts = []  # a ProviderAttempt for each provider asked
        self.asking, self.asked_at, self.first_delta = None, 0.0, None  # the provider asked now
        self.status, self.answered_by, self.streamed, self.reported = "failed", None, False, False

    def ask_plugins(self):
        """Let the tagger and the before_reply hooks shape this turn (see wellmate.Hookspecs)."""
        user, text, wm = self.turn.user, self.turn.text, self.chat.wm
        results = [r for r in call_each(wm.pm.hook.before_reply, user=user, agent=self.agent_name,
                                        session=self.session, text=text, turn=self.turn, wm=wm) if isinstance(r, dict)]
        system = [self.chat.tagger.instructions(self.chat.reply_labels)] + [r.get("system") for r in results]
        system = "\n\n".join(part for part in system if part)
        if system:
            self.messages[0] = {"role": "system", "content": self.messages[0]["content"] + "\n\n" + system}
        canned = next((r for r in results if r.get("reply")), None)
        if canned:
            self.canned, self.canned_by = str(canned["reply"]), str(canned.get("provider") or "wellmate")
        # A canned reply (a crisis reply) draws on its own plugin's sources only: nobody read the others'.
        self.sources = sources_of([canned] if canned else results)
        self.prefix = "".join(str(r["prefix"]) for r in results if r.get("prefix"))
        fallback = next((r for r in results if r.get("fallback")), None)
        if fallback and self.prefix.strip():
            self.fallback_by = str(fallback["fallback"])
        self.suffix = "".join(str(r["suffix"]) for r in results if r.get("suffix"))
        self.readers = [r["reader"] for r in results if callable(r.get("reader"))]
        self.urgent_sets = [r["urgent"] for r in results if isinstance(r.get("urgent"), (set, frozenset))]

    def raised(self) -> set:
        """What plugins found this turn (safety's crisis, check_in, red_flag, unsafe_reply, ...): a
        crisis reply or an urgent note, and the mascot shows concern. Read when asked, not once
        after before_reply: safety's reader flags the session late, when it replaces a model's
        reply (the reply was labelled caring, not concerned)."""
        return set().union(*self.urgent_sets)

    @property
    def urgent(self) -> bool:
        return bool(self.raised())

    def reader(self):
        """A fresh reader of one provider's output: the plugins' readers (the safety plugin's
        cuts a marker off, or holds a reply back until it is checked), then the tagger's (which
        may strip a label the model wrote), or one that passes text through."""
        tagger = self.chat.tagger.reader(self.chat.reply_labels) or PassThrough()
        return Readers([make() for make in self.readers] + [tagger]) if self.readers else tagger

    def chain(self):
        """The agent's providers; for a message with images, its vision_providers."""
        for name in self.agent["vision_providers" if self.turn.attachments else "providers"]:
            yield self.chat.providers[name]

    def ask(self, provider):
        """``provider`` is asked now (``turn.flags["provider"]``: its name, for the readers made next)."""
        self.asking, self.asked_at, self.first_delta = provider.name, time.perf_counter(), None
        self.turn.flags["provider"] = provider.name

    def heard(self):
        """The provider asked now sent a piece of its reply."""
        if self.first_delta is None:
            self.first_delta = time.perf_counter() - self.asked_at

    def answered(self, provider, error=None):
        """The provider asked now answered in full, or failed with ``error``."""
        self.attempts.append(ProviderAttempt(provider.name, time.perf_counter() - self.asked_at, self.first_delta,
                                             None if error is None else str(error)))
        self.asking = None

    def report(self):
        """Tell the turn_finished hooks how the turn went: once, when it is over."""
        if self.reported:
            return
        self.reported = True
        if self.asking is not None:  # a stream whose client went away while a provider spoke
            self.attempts.append(ProviderAttempt(self.asking, time.perf_counter() - self.asked_at, self.first_delta,
                                                 "cut short: the client went away"))
        hook = self.chat.wm.pm.hook.turn_finished
        if hook.get_hookimpls():
            outcome = TurnOutcome(self.status if self.stored else "failed", self.answered_by if self.stored else None,
                                  self.streamed, time.perf_counter() - self.started, tuple(self.attempts))
            call_each(hook, turn=self.turn, outcome=outcome, wm=self.chat.wm)

    def unseen(self) -> str:
        """The reply to images no provider looked at (none can, or none answered): a plain
        sentence saying so, instead of a 503 or a reply that pretends to have seen them."""
        self.sources = []  # it draws on nothing
        return CANNOT_SEE[language(self.turn.text)]

    def failed(self, provider, error):
        self.answered(provider, error)
        self.chat.failures[provider.name] += 1
        self.failures.append(f"{provider.name}: {error}")
        log.warning("provider %s failed: %s", provider.name, error)

    def unavailable(self) -> ApiError:
        reasons = "; ".join(self.failures) or "the agent has no providers"
        return ApiError(503, "providers_unavailable", f"No provider could answer ({reasons}). Your message was saved.")

    def sync(self):
        """Make the user's message durable (a no-op once the reply's append has)."""
        self.chat.sessions.sync(self.session["id"])

    def reply(self) -> dict:
        try:
            if self.canned is not None:
                return self.finish(self.canned, self.canned_by)
            for provider in self.chain():
                self.ask(provider)
                try:
                    content = call_with_turn(provider.reply, self.messages, self.turn)
                    if not isinstance(content, str):
                        raise ProviderError(f"{provider.name}: the reply was {type(content).__name__}, not text")
                except ProviderError as e:
                    self.failed(provider, e)
                    continue
                except Exception as e:  # a provider's bug (an upstream answer it did not expect): the next one answers
                    log.exception("provider %s failed", provider.name)
                    self.failed(provider, ProviderError(f"{provider.name}: {type(e).__name__}: {e}"))
                    continue
                self.answered(provider)
                reader = self.reader()
                return self.finish(reader.feed(content) + reader.end(), provider.name, label=reader.label)
            if self.turn.attachments:
                return self.finish(self.unseen(), "wellmate")
            if self.fallback_by:
                return self.fall_back()
            raise self.unavailable()  # "Your message was saved": it is, by the sync below
        finally:
            self.report()
            try:
                self.sync()
            finally:
                self.release()

    def fall_back(self) -> dict:
        """No provider answered a turn whose prefix can stand alone (safety's check-in note): the
        prefix is the reply, stored and labelled, rather than a 503 that loses it. The prefix stays
        as it was (a stream has shown it), the suffix (a disclaimer) goes."""
        log.warning("no provider answered (%s): the reply is %s's note alone", "; ".join(self.failures),
                    self.fallback_by)
        self.suffix, self.sources = "", []
        return self.finish("", self.fallback_by, fallback=True)

    def finish(self, body: str, provider_name: str, incomplete=False, label=None, fallback=False) -> dict:
        """Store the reply: ``body`` (what the provider said, as shown) between the plugins'
        prefix and suffix and what after_reply hooks add. Its emotion is the body's own."""
        body = whole_text(body)
        content = self.prefix + body
        if not incomplete:
            content += self.suffix
            wm = self.chat.wm
            for extra in call_each(wm.pm.hook.after_reply, user=self.turn.user, agent=self.agent_name,
                                   session=self.session, text=self.turn.text, reply=content, turn=self.turn, wm=wm):
                content += str(extra)
        message = {"id": self.message_id, "role": "assistant", "content": content,
                   "emotion": self.chat.reply_tag(body, self, label), "provider": provider_name,
                   "created_at": now_iso()}
        if incomplete:
            message["incomplete"] = True
        provider = self.chat.provider(provider_name)
        sources = self.sources if getattr(provider, "reads_system_prompt", True) else []
        # A provider that left some unused says which (the offline companion quotes one passage).
        unused = self.turn.flags.get("sources_unused")
        if isinstance(unused, (list, tuple, set, frozenset)):
            sources = [source for source in sources if source["id"] not in unused]
        if sources:
            message["sources"] = sources
        self.chat.sessions.append(self.session["id"], message)
        self.stored = True
        self.status = "incomplete" if incomplete else "fallback" if fallback else "complete"
        self.answered_by = provider_name
        self.report()  # before the client hears of the reply: its metrics are there when it has read it
        return {"session_id": self.session["id"], "message_id": self.message_id, "content": content,
                "emotion": message["emotion"], "timestamp": message["created_at"],
                "agent": self.agent_name, "provider": provider_name, "sources": sources,
                **({"incomplete": True} if incomplete else {})}


def sources_of(results: list[dict]) -> list[dict]:
    """The ``sources`` of before_reply results, each ``{id, title}`` once, in order."""
    sources, seen = [], set()
    for result in results:
        given = result.get("sources")
        for source in given if isinstance(given, (list, tuple)) else ():
            if isinstance(source, dict) and isinstance(source.get("id"), str) and source["id"] not in seen:
                seen.add(source["id"])
                sources.append({"id": source["id"], "title": str(source.get("title") or source["id"])})
    return sources


def call_each(hook, **kwargs) -> list:
    """Call every implementation of a reply-path hook, each on its own, in pluggy's order: a bug
    in one plugin is logged and costs only its own contribution, never the reply or another
    plugin's (a crisis reply must not depend on every plugin being right)."""
    impls = hook.get_hookimpls()
    if any(impl.hookwrapper or getattr(impl, "wrapper", False) for impl in impls):
        try:  # wrappers need pluggy's own calling: all or nothing
            return hook(**kwargs)
        except Exception:
            log.exception("a %s hook failed", hook.name)
            return []
    results = []
    for impl in reversed(impls):  # pluggy calls the last registered first
        try:
            result = impl.function(*[kwargs[name] for name in impl.argnames])
        except Exception:
            log.exception("the %s hook of plugin %s failed", hook.name, impl.plugin_name)
            continue
        if result is not None:
            results.append(result)
    return results


class PassThrough:
    """The reader of a tagger that reads nothing from the reply."""

    label = None

    def feed(self, delta: str) -> str:
        return delta

    def end(self) -> str:
        return ""


class Readers:
    """Readers in a row: what one shows, the next one reads. The label is the last one's (the
    tagger's)."""

    def __init__(self, readers: list):
        self.readers = readers

    @property
    def label(self):
        return self.readers[-1].label

    def feed(self, delta: str) -> str:
        for reader in self.readers:
            delta = reader.feed(delta) if delta else ""
        return delta

    def end(self) -> str:
        text = ""
        for reader in self.readers:
            text = (reader.feed(text) if text else "") + reader.end()
        return text


class Relay:
    """Reads a provider's stream in its own thread so the response can send ': ping' while the
    upstream is silent. The reader stops (closing the upstream) once `cancel` is set."""

    def __init__(self, provider, messages, turn: Turn | None = None):
        self.queue = queue.Queue()
        self.cancelled = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(provider, messages, turn), daemon=True,
                                       name=f"relay-{provider.name}")
        self.thread.start()

    def _run(self, provider, messages, turn):
        stream, sent = None, False
        try:
            stream = call_with_turn(provider.stream, messages, turn)
            for delta in stream:
                if self.cancelled.is_set():
                    break
                if not isinstance(delta, str):
                    raise ProviderError(f"{provider.name}: a piece of the reply was {type(delta).__name__}, not text",
                                        retryable=not sent)
                if delta:
                    sent = True
                    self.queue.put(("delta", delta))
                    # Yield the interpreter now: else the worker that sends this delta waits out Python's 5 ms
                    # switch interval while this thread parses the rest of the upstream stream.
                    time.sleep(0)
            else:
                self.queue.put(("end", None))
        except ProviderError as e:
            self.queue.put(("error", e))
        except Exception as e:  # a provider's bug (an upstream answer it did not expect): like its error
            log.exception("provider %s failed", provider.name)
            self.queue.put(("error", ProviderError(f"{provider.name}: {type(e).__name__}: {e}", retryable=not sent)))
        finally:
            if stream is not None and hasattr(stream, "close"):
                stream.close()  # runs the provider's finally: the upstream request is closed

    def get(self, timeout):
        return self.queue.get(timeout=timeout)

    def cancel(self):
        self.cancelled.set()


def sse(data: dict, event: str | None = None) -> str:
    return (f"event: {event}\n" if event else "") + f"data: {json_dumps(data)}\n\n"


def stream_turn(turn: Reply, ping_seconds: float):
    """The SSE body of a streamed chat turn."""
    # Bottle sends the headers with the first chunk: this reaches the client before any
    # provider is called.
    yield ": connected\n\n"
    turn.streamed = True
    chain = iter(() if turn.canned is not None else turn.chain())
    provider = next(chain, None)
    if provider is not None:
        turn.ask(provider)
    # The first provider is asked now, and the user's message is flushed to disk while it
    # thinks, so a slow disk (a Pi's SD card) adds nothing to the time to the first delta.
    relay = Relay(provider, turn.messages, turn.turn) if provider else None
    parts = []
    try:
        turn.sync()  # before `start`, which tells the client its message is saved
        yield sse({"session_id": turn.session["id"], "message_id": turn.message_id}, "start")
        if turn.prefix:  # an urgent note goes out before any of the model's words
            yield sse({"delta": turn.prefix})
        if turn.canned is not None:
            yield sse({"delta": turn.canned})
            yield from closing(turn.finish(turn.canned, turn.canned_by), turn.prefix + turn.canned)
            return
        while provider is not None:
            if relay is None:
                turn.ask(provider)
                relay = Relay(provider, turn.messages, turn.turn)
            reader = turn.reader()
            while True:
                try:
                    kind, value = relay.get(timeout=ping_seconds)
                except queue.Empty:
                    yield ": ping\n\n"
                    continue
                if kind == "delta":
                    turn.heard()
                    shown = reader.feed(value)
                    if shown:
                        parts.append(shown)
                        yield sse({"delta": shown})
                elif kind == "end":
                    turn.answered(provider)
                    rest = reader.end()
                    if rest:
                        parts.append(rest)
                        yield sse({"delta": rest})
                    result = turn.finish("".join(parts), provider.name, label=reader.label)
                    yield from closing(result, turn.prefix + "".join(parts))
                    return
                elif not parts and isinstance(value, ProviderError) and value.retryable:
                    turn.failed(provider, value)
                    break  # nothing sent yet: the next provider in the chain answers
                else:
                    turn.failed(provider, value)
                    if not parts and turn.fallback_by:  # the prefix, already shown, is the whole reply
                        yield from closing(turn.fall_back(), turn.prefix)
                        return
                    if parts:  # keep what the user saw, marked incomplete
                        turn.finish("".join(parts), provider.name, incomplete=True)
                    code = "provider_error" if parts else "providers_unavailable"
                    turn.report()
                    yield sse({"code": code, "message": f"The reply stopped: {value}"}, "error")
                    return
            relay.cancel()
            provider, relay = next(chain, None), None
        if turn.turn.attachments:
            text = turn.unseen()
            yield sse({"delta": text})
            yield from closing(turn.finish(text, "wellmate"), turn.prefix + text)
            return
        if turn.fallback_by:  # the prefix, already shown, is the whole reply
            yield from closing(turn.fall_back(), turn.prefix)
            return
    except StorageUnavailable as e:
        # The 200 is out: the 503 storage_unavailable of other routes becomes the stream's error
        # event (raised on, it cut the stream without its last chunk and logged a traceback).
        log.error("storage unavailable in a chat stream: %s", e)
        parts = []  # nor the partial reply: it cannot be stored either
        turn.report()
        yield sse({"code": "storage_unavailable", "message": "The server cannot write its data now (full disk or "
                   "read-only storage): this reply was not saved. Try again later."}, "error")
        return
    finally:
        # Also reached by GeneratorExit when the client went away mid-stream.
        if relay is not None:
            relay.cancel()
        try:
            if parts and not turn.stored:
                turn.finish("".join(parts), provider.name, incomplete=True)
        finally:
            turn.report()
    error = turn.unavailable()
    yield sse({"code": error.code, "message": error.message}, "error")


def closing(result: dict, sent: str):
    """The end of a stream: what plugins added after the text already ``sent`` goes out as a
    last delta, so the deltas add up to ``done.content``, which is what was stored."""
    tail = result["content"][len(sent):] if result["content"].startswith(sent) else ""
    if tail:
        yield sse({"delta": tail})
    yield sse(result, "done")


MAX_UNREAD = 99  # a badge shows 99 at most


def unread(session: dict) -> int:
    """Messages pushed to the session (reminders) since the user last opened it."""
    read_at = session.get("read_at") or ""
    return sum(1 for at in session.get("pushed_at") or () if at > read_at)


def session_view(session: dict) -> dict:
    view = {key: session.get(key) for key in
            ("id", "agent", "title", "created_at", "updated_at", "message_count")}
    view["unread"] = unread(session)
    return view


def message_view(message: dict) -> dict:
    view = {key: message[key] for key in ("id", "role", "content", "created_at")}
    for key in ("emotion", "provider", "incomplete", "reminder_id", "sources", "images"):
        if message.get(key) is not None:
            view[key] = message[key]
    return view


@hookimpl
def register_services(register):
    register("chat", ChatService)


@hookimpl
def delete_user_data(user, wm):
    chat = wm.service("chat")
    if chat:
        chat.sessions.delete_user(user["id"])


@hookimpl
def export_user_data(user, wm):
    chat = wm.service("chat")
    if chat:
        return {"sessions": chat.sessions.export(user["id"])}


SOURCES = array(obj({"id": string(), "title": string()}, required=["id", "title"]),
                description="library articles the reply draws on")
CHAT_REPLY = obj({
    "session_id": string(), "message_id": string(), "content": string(),
    "emotion": string(description="one of emotion.reply_labels: the mascot's face"),
    "timestamp": string(format="date-time"), "agent": string(), "provider": string(description="who answered"),
    "sources": SOURCES, "incomplete": boolean(description="the provider stopped mid-reply")},
    required=["session_id", "message_id", "content", "emotion", "timestamp", "agent", "provider", "sources"],
    title="ChatReply")
SESSION = obj({"id": string(), "agent": string(), "title": string(), "created_at": string(format="date-time"),
               "updated_at": string(format="date-time"), "message_count": integer(0),
               "unread": integer(0, 99, description="reminders pushed since the session was last opened")},
              required=["id", "agent", "title", "created_at", "updated_at", "message_count", "unread"], title="Session")
MESSAGE = obj({"id": string(), "role": string(enum=["user", "assistant"]), "content": string(),
               "created_at": string(format="date-time"), "emotion": string(), "provider": string(),
               "incomplete": boolean(), "reminder_id": string(description="a reminder pushed into the session"),
               "sources": SOURCES, "images": array(string(), description="upload ids sent with the message")},
              required=["id", "role", "content", "created_at"], title="Message")
CHAT_ERRORS = {400: "wrong_agent: the session belongs to another agent", 404: "no such agent, or session",
               409: "turn_in_progress: this session is still answering", 429: "too_many_turns: a user's turns at once",
               503: "server_busy, providers_unavailable (your message was saved), storage_unavailable"}


def chat_in(wm) -> dict:
    return obj({"text": string(max_length=wm.config["chat"]["max_message_chars"],
                               description="the message; may be empty (or left out) only when images are sent"),
                "session_id": string(min_length=1, max_length=64, pattern=r"\S",
                                     description="continue this session; left out or null starts one, \"\" is a 400"),
                "images": array(string(min_length=1, max_length=64), max_items=wm.config["chat"]["max_images"],
                                description="ids of the user's uploads (POST /api/v1/uploads) to ask about; "
                                            "text, images or both")},
               example={"text": "I slept badly again, any advice?"})


@hookimpl
def routes(app, wm):
    chat = wm.service("chat")

    @app.get("/api/v1/health/agents", api=Api(
        "The agents users chat with", auth="public",
        responses={200: obj({"items": array(obj({"name": string(), "title": string(), "description": string()},
                                                required=["name", "title", "description"]))}, required=["items"])}))
    def agents():
        return {"items": [{"name": name, "title": conf["title"] or name, "description": conf["description"]}
                          for name, conf in wm.config["agents"].items()]}

    @app.post("/api/v1/health/<agent_name>/chat", api=Api(
        "Send a message; the agent's whole reply", body=chat_in(wm), responses={200: CHAT_REPLY}, errors=CHAT_ERRORS))
    def chat_reply(agent_name):
        user = wm.require_user()
        return chat.begin(user, agent_name, wm.json_body(prose=("text",))).reply()

    @app.post("/api/v1/health/<agent_name>/chat/stream", api=Api(
        "Send a message; the reply as server-sent events", body=chat_in(wm), errors=CHAT_ERRORS,
        responses={200: Sse({
            "start": obj({"session_id": string(), "message_id": string()}, required=["session_id", "message_id"]),
            "message": obj({"delta": string()}, required=["delta"],
                           description="(no `event:` line) the next piece of the reply; the deltas add up to done.content"),
            "done": CHAT_REPLY,
            "error": ERROR["properties"]["error"]},
            "`start`, then deltas (`data: {\"delta\": ...}`), then `done` (the stored reply) or `error` "
            "(`{code, message}`: the reply stopped); `: ping` comments while a provider thinks. Errors before "
            "the stream starts are JSON, as on every route.")}))
    def chat_stream(agent_name):
        user = wm.require_user()
        turn = chat.begin(user, agent_name, wm.json_body(prose=("text",)))
        bottle.response.content_type = "text/event-stream; charset=utf-8"
        bottle.response.set_header("Cache-Control", "no-cache")
        bottle.response.set_header("X-Accel-Buffering", "no")  # nginx: do not buffer this response
        return ClosingBody(stream_turn(turn, wm.config["chat"]["ping_seconds"]), turn.release)

    @app.get("/api/v1/health/sessions", api=Api(
        "The user's chat sessions, newest first",
        query={"agent": string(description="only this agent's"), **paging()},
        responses={200: page(SESSION)}, errors={404: "no such agent"}))
    def list_sessions():
        user = wm.require_user()
        agent = bottle.request.query.get("agent") or None
        if agent:
            chat.agent(agent)
        return paged(chat.sessions.list, session_view, user_id=user["id"], agent=agent)

    @app.post("/api/v1/health/sessions", api=Api(
        "Start an empty session with an agent",
        body=obj({"agent": text(), "title": string(max_length=100)}, required=["agent"], example={"agent": "mental"}),
        responses={201: SESSION}, errors={404: "no such agent"}))
    def create_session():
        user = wm.require_user()
        body = wm.json_body()
        agent = field(body, "agent")
        chat.agent(agent)
        title = field(body, "title", required=False, default="", max_len=100, prose=True)
        session = chat.sessions.create(user["id"], agent, title)
        bottle.response.status = 201
        return session_view(session)

    @app.get("/api/v1/health/sessions/<session_id>", api=Api(
        "A session and a page of its messages; opening it marks it read",
        query=paging(50, 200),
        responses={200: obj({**SESSION["properties"], "messages": page(MESSAGE)}, required=SESSION["required"] + ["messages"])}))
    def read_session(session_id):
        session = chat.own_session(wm.require_user(), session_id)
        if unread(session):  # opening the session reads it; marked before reading, so nothing is skipped
            session = chat.sessions.update(session_id, {"read_at": now_iso()}) or session
        messages = paged(chat.sessions.messages, message_view, 50, 200, session_id=session_id)
        return {**session_view(session), "messages": messages}

    @app.delete("/api/v1/health/sessions/<session_id>", api=Api(
        "Delete a session and its messages", responses={204: None}))
    def delete_session(session_id):
        chat.own_session(wm.require_user(), session_id)
        chat.sessions.delete(session_id)
        bottle.response.status = 204
        return ""


@hookimpl
def shutdown(wm):
    chat = wm.service("chat")
    if chat:
        chat.close()
