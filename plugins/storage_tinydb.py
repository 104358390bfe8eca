"""The default storage backend: TinyDB files and JSON Lines chat logs in the data folder.

    users.json                     users and refresh tokens (TinyDB)
    sessions.json                  chat sessions (TinyDB)
    records/<user_id>.json         one user's health records: {"user_id", "records": {id: record}}
    reminders.json                 reminders (TinyDB)
    deliveries.json                what each reminder sent where, the newest few per reminder (TinyDB)
    messages/<session_id>.jsonl    a session's messages, one JSON object per line, append-only

Why it is built this way (measured on TinyDB 4.9.0, see DESIGN.md, "Storage"):

- TinyDB is not thread-safe, so every TinyDB access holds one lock.
- TinyDB's JSONStorage rewrites its file in place and a killed process can leave it unreadable.
  `AtomicJSONStorage` keeps the data in memory and replaces the whole file with `atomic_write`.
- Every TinyDB write rewrites its whole file, so the data is split over several files (a new
  health record does not rewrite every user) and chat messages are not in TinyDB at all:
  appending a line to a session's log costs the same at 100 or 100,000 stored messages.
- Health records are the bulk of the data (a CSV import adds thousands), so each user's are a
  file of their own, written with `atomic_write` under that user's lock: a record write costs
  what that user's records cost. With all users in one records.json, 10 imports of 9,000 rows
  by one user made another user's record write 24 -> 294 ms (bench/records --imports 10).
  Every user's records are read at open (as records.json was), with an index record id -> user
  for get_record and delete_record. An old records.json is moved into records/ at open.
- A data file that is empty (0 bytes) lost its data in a crash or a bad copy: opening refuses
  it by name (StorageUnavailable) rather than start empty and overwrite what a backup could
  bring back. Our files are never empty: TinyDB writes at least ``{}``.
- A write that fails (full disk, read-only folder) raises StorageUnavailable (the app's 503)
  and is remembered for `trouble()` (the health check) until a write succeeds.

Locks: ``self._lock`` guards every TinyDB table; each session's log has its own lock, so a slow
fsync of one chat does not hold up the others. A log lock may be held while taking
``self._lock``, never the other way round. Each user's records have their own lock, taken
before ``self._records_lock`` (which guards only the two indexes, briefly); record reads take
no lock, as a user's records are replaced whole (copy on write), never changed in place.

One process owns the data folder. Opening it writes nothing (but for moving an old records.json
into records/ once), so a second process that only reads (``wellmate.py check``) does no harm;
two processes writing would lose writes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from tinydb import TinyDB
from tinydb.storages import Storage as TinyDBFileStorage
from tinydb.table import Document, Table

from wellmate import (Conflict, Storage, StorageUnavailable, atomic_write, fsync_dir, hookimpl, json_dumps,
                      now_iso)

FILE_MODE = 0o600  # health data: readable by the server's own user only
PRUNE_EVERY = 3600  # seconds between sweeps of expired refresh tokens
READ_BLOCK = 64 * 1024  # chat logs are read backwards in blocks of this size
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")  # session ids become file names
DB_FILES = ("users", "sessions", "reminders", "deliveries")
LEGACY_RECORDS = "records.json"  # every user's records in one TinyDB file, before records/


@hookimpl
def register_storage(register):
    register("tinydb", TinyDBStorage)


class AtomicJSONStorage(TinyDBFileStorage):
    """A TinyDB storage that reads its file once, keeps the data in memory and replaces the file
    atomically on every write.

    TinyDB changes the dict that `read` returns in place before it calls `write`; if the write
    fails, the data is read back from disk so memory never holds what is not durable.
    """

    def __init__(self, path: Path, writing=None):
        self.path = path
        self.writing = writing  # TinyDBStorage._writing: turns OSError into StorageUnavailable
        self.data = read_json_file(path, {})

    def read(self):
        return self.data

    def write(self, data):
        try:
            with self.writing(self.path.name):
                atomic_write(self.path, json_dumps(data).encode("utf-8"), mode=FILE_MODE)
        except BaseException:
            self.data = read_json_file(self.path, {})
            raise
        self.data = data


class IdTable(Table):
    """Documents keyed by our own string ids, so a lookup by id is a dict lookup, not a scan.
    Every insert passes a `Document` with its id (TinyDB's int id counter is never used)."""

    document_id_class = str


class IdTinyDB(TinyDB):
    table_class = IdTable


class _Records:
    """One user's health records: the file and what it holds. ``records`` is replaced, never
    changed in place, so readers need no lock."""

    __slots__ = ("lock", "user_id", "path", "records", "deleted")

    def __init__(self, user_id, path: Path, records: dict):
        self.lock = threading.Lock()
        self.user_id, self.path, self.records = user_id, path, records
        self.deleted = False  # the user is gone; fetch a fresh _Records


class _Log:
    """What is known about one session's message log, filled by one scan of its file."""

    __slots__ = ("lock", "count", "last_at", "size", "deleted", "unsynced")

    def __init__(self):
        self.lock = threading.Lock()
        self.count = None  # None: not scanned yet
        self.last_at = None  # created_at of the last message
        self.size = 0  # bytes of whole lines: where the next line goes
        self.deleted = False  # the session is gone; fetch a fresh _Log
        self.unsynced = False  # a line was written without fsync (append_message(durable=False))


class TinyDBStorage(Storage):
    """Built by the app as ``TinyDBStorage(config["storage"], wm)``; elsewhere (tests, scripts)
    with ``TinyDBStorage.open(folder)``."""

    name = "tinydb"

    def __init__(self, settings: dict, wm=None):
        self.folder = Path(wm.data_dir if wm is not None else settings["path"]).resolve()
        self.messages_dir = self.folder / "messages"
        self.records_dir = self.folder / "records"
        self._write_error: str | None = None  # the last write failure, until a write succeeds
        for folder in (self.messages_dir, self.records_dir):
            with self._writing(f"the folder {folder.name}/"):
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for folder, pattern in ((self.folder, ".*.json.*.tmp"), (self.records_dir, ".*.json.*.tmp")):
            for tmp in folder.glob(pattern):
                if _left_by_dead_process(tmp):  # a write that a crash interrupted
                    tmp.unlink(missing_ok=True)
        self._lock = threading.RLock()
        self._dbs = {name: IdTinyDB(self.folder / f"{name}.json", storage=AtomicJSONStorage, writing=self._writing)
                     for name in DB_FILES}
        # No query cache: reads are by id or one pass over a table, and writes clear it anyway.
        self._users = self._dbs["users"].table("users", cache_size=0)
        self._tokens = self._dbs["users"].table("refresh_tokens", cache_size=0)
        self._sessions = self._dbs["sessions"].table("sessions", cache_size=0)
        self._reminders = self._dbs["reminders"].table("reminders", cache_size=0)
        # Deliveries have their own file: a reminder firing does not rewrite every reminder.
        self._deliveries = self._dbs["deliveries"].table("deliveries", cache_size=0)
        self._logs: dict[str, _Log] = {}
        self._logs_lock = threading.Lock()
        self._pruned_at = float("-inf")  # expired tokens go at the first add_refresh_token
        self._records_lock = threading.Lock()  # for the next two only, held briefly
        self._user_records: dict[str, _Records] = {}  # user_id -> that user's records
        self._record_owner: dict[str, str] = {}  # record id -> user_id
        self._load_records()
        self._migrate_records_json()

    @classmethod
    def open(cls, folder) -> "TinyDBStorage":
        return cls({"path": str(folder)})

    # -- users -------------------------------------------------------------------------------
    def create_user(self, user: dict) -> dict:
        with self._lock:
            self._check_username(user.get("username"), None)
            return self._insert(self._users, user)

    def get_user(self, user_id: str) -> dict | None:
        return self._get(self._users, user_id)

    def find_user(self, field: str, value) -> dict | None:
        if value is None:  # never "the first user without a wx_openid"
            return None
        if field == "id":
            return self.get_user(value)
        if field == "username":
            wanted = str(value).lower()

            def cond(user):
                return isinstance(user.get("username"), str) and user["username"].lower() == wanted
        else:
            def cond(user):
                return field in user and user[field] == value
        with self._lock:
            return _copy(self._users.get(cond))

    def update_user(self, user_id: str, changes: dict) -> dict | None:
        with self._lock:
            if self._users.get(doc_id=user_id) is None:
                return None
            if "username" in changes:
                self._check_username(changes["username"], user_id)
            return self._update(self._users, user_id, changes)

    def list_users(self, limit: int = 50, before: str | None = None) -> tuple[list, str | None]:
        with self._lock:
            users = self._users.all()
        return _page(users, ("created_at", "id"), limit, before)

    def delete_user(self, user_id: str) -> bool:
        if self.get_user(user_id) is None:
            return False
        # Sessions first, each with its log; then everything else, the user last. If the process
        # dies half-way, the user is still there and deleting again finishes the job.
        for session in self._select(self._sessions, lambda s: s.get("user_id") == user_id):
            self.delete_session(session["id"])
        self._delete_user_records(user_id)
        with self._lock:
            mine = lambda doc: doc.get("user_id") == user_id  # noqa: E731
            late = self._remove_where(self._sessions, mine)  # created meanwhile
            for table in (self._reminders, self._deliveries, self._tokens):
                self._remove_where(table, mine)
            removed = self._remove_id(self._users, user_id)
        for session_id in late:
            self._delete_log(session_id)
        return removed

    def _check_username(self, username, user_id):
        if not username:  # a WeChat-only account has none
            return
        taken = self.find_user("username", username)
        if taken is not None and taken["id"] != user_id:
            raise Conflict(f"the username {username!r} is taken")

    # -- refresh tokens ----------------------------------------------------------------------
    def add_refresh_token(self, token: dict) -> None:
        with self._lock:
            self._tokens.insert(Document(_copy(token), token["hash"]))
            if time.monotonic() - self._pruned_at > PRUNE_EVERY:
                self._prune_tokens()

    def use_refresh_token(self, token_hash: str) -> dict | None:
        with self._lock:  # read and mark in one step: of two racing uses, one sees used=False
            token = _copy(self._tokens.get(doc_id=token_hash))
            if token is not None and not token.get("used"):
                self._tokens.update({"used": True}, doc_ids=[token_hash])
            return token

    def revoke_refresh_tokens(self, *, family: str | None = None, user_id: str | None = None) -> int:
        if family is None and user_id is None:
            raise ValueError("revoke_refresh_tokens: give family= or user_id=")

        def cond(token):
            return ((family is None or token.get("family") == family)
                    and (user_id is None or token.get("user_id") == user_id))
        return len(self._remove_where(self._tokens, cond))

    def _prune_tokens(self):
        """Expired tokens are useless (used ones are kept until then, to notice a reuse)."""
        now = now_iso()
        with self._lock:
            self._pruned_at = time.monotonic()
            self._remove_where(self._tokens, lambda t: (t.get("expires_at") or "") < now)

    # -- sessions ----------------------------------------------------------------------------
    def create_session(self, session: dict) -> dict:
        if not isinstance(session.get("id"), str) or not SESSION_ID.fullmatch(session["id"]):
            raise ValueError(f"a session id must be 1-128 letters, digits, '-' or '_', got {session.get('id')!r}")
        stored = self._insert(self._sessions, _without_activity(session))
        return dict(stored, message_count=0, updated_at=stored.get("created_at"))

    def get_session(self, session_id: str) -> dict | None:
        session = self._get(self._sessions, session_id)
        return self._with_activity(session) if session else None

    def list_sessions(self, user_id: str, agent: str | None = None, limit: int = 20,
                      before: str | None = None) -> tuple[list, str | None]:
        sessions = self._select(self._sessions, lambda s: s.get("user_id") == user_id
                                and (agent is None or s.get("agent") == agent))
        sessions = [self._with_activity(s) for s in sessions]
        return _page(sessions, ("updated_at", "created_at", "id"), limit, before)

    def update_session(self, session_id: str, changes: dict) -> dict | None:
        session = self._update(self._sessions, session_id, _without_activity(changes))
        return self._with_activity(session) if session else None

    def delete_session(self, session_id: str) -> bool:
        with self._session_log(session_id, scan=False) as log:
            if log is None:
                return False
            # The log first, then the session: if the process dies in between, the session is
            # still listed (empty) and deleting it again finishes the job.
            self._delete_log(session_id, log)
            with self._lock:
                self._sessions.remove(doc_ids=[session_id])
        return True

    def _with_activity(self, session: dict) -> dict:
        with self._session_log(session["id"]) as log:
            count, last_at = (log.count, log.last_at) if log else (0, None)
        session["message_count"] = count
        session["updated_at"] = last_at or session.get("created_at")
        return session

    # -- messages ----------------------------------------------------------------------------
    def append_message(self, session_id: str, message: dict, durable: bool = True) -> dict:
        message = _copy(message)
        message.setdefault("created_at", now_iso())
        line = (json_dumps(message) + "\n").encode("utf-8")
        with self._session_log(session_id) as log:
            if log is None:
                raise KeyError(f"no session {session_id!r}")
            with self._writing("a chat log"):
                try:
                    # One write() of the whole line on an O_APPEND file: a crash leaves at most a
                    # torn last line. Readers skip it; here it is cut off so the line starts clean.
                    fd = os.open(self._log_path(session_id), os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
                    try:
                        if os.fstat(fd).st_size < log.size:  # changed behind our back: count again
                            self._scan(session_id, log)
                        if os.fstat(fd).st_size > log.size:
                            os.ftruncate(fd, log.size)
                        if os.write(fd, line) != len(line):
                            raise OSError(f"short write to the log of session {session_id}")
                        if durable:  # also makes lines written earlier without fsync durable
                            os.fsync(fd)
                    finally:
                        os.close(fd)
                    if log.size == 0:  # a new file: make its name durable too
                        fsync_dir(self.messages_dir)
                except BaseException:
                    log.count = None  # unknown state: scan again before the next use
                    raise
            log.unsynced = not durable
            log.count += 1
            log.size += len(line)
            log.last_at = message.get("created_at")
        return message

    def sync_messages(self, session_id: str) -> None:
        with self._session_log(session_id, scan=False) as log:
            if log is None or not log.unsynced:
                return
            try:
                fd = os.open(self._log_path(session_id), os.O_RDONLY)
            except FileNotFoundError:
                return
            try:
                with self._writing("a chat log"):
                    os.fsync(fd)
            finally:
                os.close(fd)
            log.unsynced = False

    def list_messages(self, session_id: str, limit: int = 50,
                      before: str | None = None) -> tuple[list, str | None]:
        _check_limit(limit)
        # The cursor is the byte offset of the oldest message returned: the log is append-only,
        # so offsets never move, and a page is read backwards from there without an index.
        with self._session_log(session_id) as log:
            if log is None:
                return [], None
            try:
                f = open(self._log_path(session_id), "rb")
            except FileNotFoundError:
                return [], None
            with f:
                end = log.size if before is None else _offset_cursor(before, f, log.size)
                lines = _lines_before(f, end, limit)
        messages = [message for _, message in lines if message is not None]
        return messages, (str(lines[0][0]) if lines and lines[0][0] > 0 else None)

    def count_messages_by_day(self, since: str, tz: str = "UTC") -> dict[str, dict[str, int]]:
        from datetime import datetime
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {tz!r}") from None
        counts: dict[str, dict[str, int]] = {}
        with self._lock:
            session_ids = [session.doc_id for session in self._sessions]
        for session_id in session_ids:
            with self._session_log(session_id) as log:
                if log is None or not log.last_at or log.last_at < since:
                    continue  # nothing new in this session: its file is not opened
                try:
                    f = open(self._log_path(session_id), "rb")
                except FileNotFoundError:
                    continue
                with f:
                    # Read backwards a page at a time. A log is in time order, give or take a
                    # reply finished after the next question: stop after a page wholly too old.
                    end = log.size
                    while end > 0:
                        lines = _lines_before(f, end, 200)
                        recent = 0
                        for _, message in lines:
                            at = (message or {}).get("created_at")
                            if not isinstance(at, str) or at < since:
                                continue
                            recent += 1
                            try:
                                day = datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(zone).date().isoformat()
                            except ValueError:
                                continue
                            roles = counts.setdefault(day, {})
                            role = str(message.get("role") or "?")
                            roles[role] = roles.get(role, 0) + 1
                        if not lines or not recent:
                            break
                        end = lines[0][0]
        return counts

    def _log_path(self, session_id: str) -> Path:
        return self.messages_dir / f"{session_id}.jsonl"

    @contextmanager
    def _session_log(self, session_id: str, scan: bool = True):
        """Hold the session's log lock; yield its `_Log` (scanned), or None if there is no
        such session."""
        while True:
            with self._logs_lock:
                log = self._logs.setdefault(session_id, _Log())
            with log.lock:
                if log.deleted:  # deleted while we waited: start again
                    continue
                with self._lock:
                    exists = self._sessions.get(doc_id=session_id) is not None
                if not exists:
                    with self._logs_lock:
                        if self._logs.get(session_id) is log:
                            del self._logs[session_id]
                    log.deleted = True
                    yield None
                    return
                if scan and log.count is None:
                    self._scan(session_id, log)
                yield log
                return

    def _scan(self, session_id: str, log: _Log):
        """Count the whole lines of a log and find the last message's time. Bytes after the
        last newline are a torn line (a crash in the middle of an append): not counted."""
        try:
            f = open(self._log_path(session_id), "rb")
        except FileNotFoundError:
            log.count, log.size, log.last_at = 0, 0, None
            return
        with f:
            count = size = end = 0
            while chunk := f.read(1 << 20):
                newlines = chunk.count(b"\n")
                if newlines:
                    count += newlines
                    end = size + chunk.rindex(b"\n") + 1
                size += len(chunk)
            last_at, pos = None, end
            while pos > 0 and last_at is None:
                [(pos, message)] = _lines_before(f, pos, 1)
                last_at = (message or {}).get("created_at")
        log.count, log.size, log.last_at = count, end, last_at

    def _delete_log(self, session_id: str, log: _Log | None = None):
        """Remove a session's log file and forget it. Called with ``log`` locked, or for a
        session that no longer exists (no append can start then)."""
        with self._writing("a chat log"):
            self._log_path(session_id).unlink(missing_ok=True)
            fsync_dir(self.messages_dir)
        with self._logs_lock:
            if log is None or self._logs.get(session_id) is log:
                self._logs.pop(session_id, None)
        if log is not None:
            log.deleted = True

    # -- health records: one file per user (see the module's docstring) ------------------------
    def add_record(self, record: dict) -> dict:
        [(_, stored)] = self._write_records(record.get("user_id"), [record], by_client_id=False)
        return stored

    def put_records(self, records: list[dict]) -> list[tuple[str, dict]]:
        if not records:
            return []
        users = {record.get("user_id") for record in records}
        if len(users) > 1:
            raise ValueError("put_records: the records of one user at a time")
        return self._write_records(users.pop(), records, by_client_id=True)

    def _write_records(self, user_id, records: list[dict], by_client_id: bool) -> list[tuple[str, dict]]:
        """Add or (by client_id) update records of one user in one write of that user's file."""
        for record in records:
            if not isinstance(record.get("id"), str) or not record["id"]:
                raise ValueError(f"a record needs a string id (new_id()), got {record.get('id')!r}")
        with self._records_of(user_id) as mine:
            results = []
            changed = {}  # id -> the record as it will be stored
            by_client = {}  # client_id -> stored record, as it stands after each record
            if by_client_id:
                by_client = {r["client_id"]: r for r in mine.records.values() if r.get("client_id") is not None}
            for record in map(_copy, records):
                client_id = record.get("client_id") if by_client_id else None
                old = by_client.get(client_id) if client_id is not None else None
                if old is None:
                    if record["id"] in changed or record["id"] in self._record_owner:
                        raise Conflict(f"the id {record['id']} is taken")
                    stored, outcome = record, "created"
                elif old.get("type") != record.get("type"):
                    raise Conflict(f"the client_id {client_id!r} is a {old.get('type')} record, not {record.get('type')}",
                                   client_id=client_id, stored_type=old.get("type"))
                else:
                    stored = {**record, "id": old["id"], "created_at": old.get("created_at", record.get("created_at"))}
                    outcome = "unchanged" if stored == old else "updated"
                if outcome != "unchanged":
                    changed[stored["id"]] = stored
                if client_id is not None:
                    by_client[client_id] = stored
                results.append((outcome, stored))
            if changed:
                new_ids = [doc_id for doc_id in changed if doc_id not in mine.records]
                with self._records_lock:  # claim the new ids: of two users racing for one, one wins
                    if any(doc_id in self._record_owner for doc_id in new_ids):
                        raise Conflict("a record id is taken")
                    self._record_owner.update(dict.fromkeys(new_ids, user_id))
                try:
                    self._save_records(mine, {**mine.records, **changed})
                except BaseException:
                    with self._records_lock:
                        for doc_id in new_ids:
                            self._record_owner.pop(doc_id, None)
                    raise
            return [(outcome, _copy(record)) for outcome, record in results]

    def get_record(self, record_id: str) -> dict | None:
        if not isinstance(record_id, str):
            return None
        mine = self._user_records.get(self._record_owner.get(record_id))
        return _copy(mine.records.get(record_id)) if mine is not None else None

    def list_records(self, user_id: str, type: str | None = None, start: str | None = None,
                     end: str | None = None, limit: int = 100,
                     before: str | None = None) -> tuple[list, str | None]:
        mine = self._user_records.get(user_id)
        # A comprehension, not a function call per record: stats read a year.
        records = [r for r in (mine.records.values() if mine is not None else ())
                   if (type is None or r.get("type") == type)
                   and (start is None or (r.get("recorded_at") or "") >= start)
                   and (end is None or (r.get("recorded_at") or "") < end)]
        return _page(records, ("recorded_at", "created_at", "id"), limit, before)

    def count_records(self, user_id: str) -> int:
        mine = self._user_records.get(user_id)
        return len(mine.records) if mine is not None else 0

    def delete_record(self, record_id: str) -> bool:
        user_id = self._record_owner.get(record_id) if isinstance(record_id, str) else None
        if user_id is None:
            return False
        with self._records_of(user_id) as mine:
            if record_id not in mine.records:
                return False
            self._save_records(mine, {doc_id: r for doc_id, r in mine.records.items() if doc_id != record_id})
            with self._records_lock:
                self._record_owner.pop(record_id, None)
            return True

    def _delete_user_records(self, user_id) -> None:
        with self._records_of(user_id) as mine:
            with self._writing("a records file"):
                mine.path.unlink(missing_ok=True)
                fsync_dir(self.records_dir)
            with self._records_lock:
                for record_id in mine.records:
                    self._record_owner.pop(record_id, None)
                self._user_records.pop(user_id, None)
            mine.deleted = True

    @contextmanager
    def _records_of(self, user_id):
        """Hold the user's records lock; yield their `_Records` (made empty if they have none)."""
        while True:
            with self._records_lock:
                mine = self._user_records.get(user_id)
                if mine is None:
                    mine = self._user_records[user_id] = _Records(user_id, self.records_dir / _records_file(user_id), {})
            with mine.lock:
                if mine.deleted:  # the user was deleted while we waited: start again
                    continue
                yield mine
                return

    def _save_records(self, mine: _Records, records: dict) -> None:
        """Replace the user's records file, then what is in memory (only if the write worked)."""
        data = json_dumps({"user_id": mine.user_id, "records": records}).encode("utf-8")
        with self._writing("a records file"):
            atomic_write(mine.path, data, mode=FILE_MODE)
        mine.records = records

    def _load_records(self) -> None:
        """Read every user's records file (as TinyDB read records.json at open): ~0.3 s for
        90,000 records (bench/records --imports 10, "reopen")."""
        for path in sorted(self.records_dir.glob("*.json")):
            if path.name.startswith("."):
                continue
            data = read_json_file(path, {})
            if not isinstance(data.get("records"), dict) or "user_id" not in data:
                raise StorageUnavailable(f"{path}: not a Wellmate records file; restore it from a backup")
            mine = _Records(data["user_id"], path, data["records"])
            self._user_records[mine.user_id] = mine
            self._record_owner.update(dict.fromkeys(mine.records, mine.user_id))

    def _migrate_records_json(self) -> None:
        """Move an old records.json (every user's records, TinyDB) into records/, one file per
        user. Crash-safe and idempotent: each user's file is written whole (merged with what an
        interrupted earlier run wrote), and records.json goes only after all of them are
        durable, so a kill at any point loses nothing and the next open finishes the job."""
        legacy = self.folder / LEGACY_RECORDS
        data = read_json_file(legacy, None)
        if data is None:
            return
        by_user: dict = {}
        for doc_id, record in (data.get("records") or {}).items():
            by_user.setdefault(record.get("user_id"), {})[doc_id] = record
        for user_id, records in by_user.items():
            with self._records_of(user_id) as mine:
                self._save_records(mine, {**mine.records, **records})
                with self._records_lock:
                    self._record_owner.update(dict.fromkeys(records, user_id))
        with self._writing(LEGACY_RECORDS):
            legacy.unlink()
            fsync_dir(self.folder)

    # -- reminders ---------------------------------------------------------------------------
    def add_reminder(self, reminder: dict) -> dict:
        return self._insert(self._reminders, reminder)

    def get_reminder(self, reminder_id: str) -> dict | None:
        return self._get(self._reminders, reminder_id)

    def list_reminders(self, user_id: str, limit: int = 50,
                       before: str | None = None) -> tuple[list, str | None]:
        with self._lock:
            reminders = self._reminders.search(lambda r: r.get("user_id") == user_id)
        return _page(reminders, ("created_at", "id"), limit, before)

    def update_reminder(self, reminder_id: str, changes: dict) -> dict | None:
        return self._update(self._reminders, reminder_id, changes)

    def delete_reminder(self, reminder_id: str) -> bool:
        with self._lock:
            removed = self._remove_id(self._reminders, reminder_id)
            if removed:
                self._remove_where(self._deliveries, lambda d: d.get("reminder_id") == reminder_id)
            return removed

    def due_reminders(self, now: str) -> list:
        due = self._select(self._reminders, lambda r: bool(r.get("next_fire_at")) and r["next_fire_at"] <= now)
        return sorted(due, key=lambda r: (r["next_fire_at"], r["id"]))

    def next_fire_at(self) -> str | None:
        with self._lock:
            times = [r["next_fire_at"] for r in self._reminders if r.get("next_fire_at")]
        return min(times, default=None)

    def add_delivery(self, delivery: dict, keep: int = 100) -> dict:
        _check_limit(keep)
        reminder_id = delivery.get("reminder_id")
        with self._lock:
            stored = self._insert(self._deliveries, delivery)
            mine = self._deliveries.search(lambda d: d.get("reminder_id") == reminder_id)
            if len(mine) > keep:
                mine.sort(key=lambda d: (str(d.get("created_at") or ""), d.doc_id), reverse=True)
                self._deliveries.remove(doc_ids=[d.doc_id for d in mine[keep:]])
        return stored

    def list_deliveries(self, reminder_id: str, limit: int = 50,
                        before: str | None = None) -> tuple[list, str | None]:
        with self._lock:
            deliveries = self._deliveries.search(lambda d: d.get("reminder_id") == reminder_id)
        return _page(deliveries, ("created_at", "id"), limit, before)

    # -- service -----------------------------------------------------------------------------
    def ping(self) -> None:
        try:
            self._dbs["users"].storage.path.read_bytes()
        except FileNotFoundError:  # nothing written yet
            pass
        trouble = self.trouble()
        if trouble:
            raise OSError(trouble)

    def trouble(self) -> str | None:
        # os.access does not see a full disk (nor, as root, a folder's mode): hence the memory of
        # the last failed write. Costs ~2 us a folder, and no write while all is well.
        # (No absolute path or id in it: health answers anyone.)
        for folder in (self.folder, self.messages_dir, self.records_dir):
            if not os.access(folder, os.R_OK | os.W_OK | os.X_OK):
                where = "the data folder" if folder == self.folder else f"the data folder's {folder.name}/"
                return f"{where} is not readable and writable by this process"
        if self._write_error:
            # Only while writes fail: a small test write, so that health turns ok once there is room
            # again even when nothing else writes (a monitor or proxy that holds traffic back while
            # health says 503 would otherwise keep it 503 for good). A failing write costs little.
            probe = self.folder / ".write-probe"
            try:
                atomic_write(probe, b"ok", mode=FILE_MODE)
                probe.unlink()
            except OSError:
                return self._write_error  # still failing: keep what the real write met
            self._write_error = None
        return self._write_error

    @contextmanager
    def _writing(self, what: str):
        """Around every write: an OSError (full disk, read-only folder, I/O error) becomes
        StorageUnavailable and is remembered for `trouble`; a write that works clears it."""
        try:
            yield
        except OSError as e:
            self._write_error = f"writing {what} failed: {e.strerror or e}"
            raise StorageUnavailable(f"{self.folder}: {self._write_error}; nothing was saved") from e
        self._write_error = None

    def stats(self) -> dict:
        with self._lock:
            counts = {"users": len(self._users), "sessions": len(self._sessions),
                      "records": len(self._record_owner), "reminders": len(self._reminders)}
            session_ids = [session.doc_id for session in self._sessions]
        counts["messages"] = 0
        for session_id in session_ids:  # the first call scans every log once
            with self._session_log(session_id) as log:
                counts["messages"] += log.count if log else 0
        return counts

    def close(self) -> None:
        with self._logs_lock:
            unsynced = [session_id for session_id, log in self._logs.items() if log.unsynced]
        for session_id in unsynced:
            self.sync_messages(session_id)
        with self._lock:
            for db in self._dbs.values():
                db.close()
        with self._logs_lock:
            self._logs.clear()

    # -- TinyDB helpers: every one holds the lock and hands out copies -------------------------
    def _get(self, table: Table, doc_id: str) -> dict | None:
        if not isinstance(doc_id, str):
            return None
        with self._lock:
            return _copy(table.get(doc_id=doc_id))

    def _select(self, table: Table, cond) -> list[dict]:
        with self._lock:
            return [_copy(doc) for doc in table.search(cond)]

    def _insert(self, table: Table, doc: dict) -> dict:
        if not isinstance(doc.get("id"), str) or not doc["id"]:
            raise ValueError(f"a document needs a string id (new_id()), got {doc.get('id')!r}")
        with self._lock:
            if table.get(doc_id=doc["id"]) is not None:
                raise Conflict(f"the id {doc['id']} is taken")
            table.insert(Document(_copy(doc), doc["id"]))
        return _copy(doc)

    def _update(self, table: Table, doc_id: str, changes: dict) -> dict | None:
        changes = {key: _copy(value) for key, value in changes.items() if key != "id"}
        with self._lock:
            if not isinstance(doc_id, str) or table.get(doc_id=doc_id) is None:
                return None
            if changes:
                table.update(changes, doc_ids=[doc_id])
            return _copy(table.get(doc_id=doc_id))

    def _remove_id(self, table: Table, doc_id: str) -> bool:
        with self._lock:
            if not isinstance(doc_id, str) or table.get(doc_id=doc_id) is None:
                return False
            table.remove(doc_ids=[doc_id])
            return True

    def _remove_where(self, table: Table, cond) -> list[str]:
        """Remove matching documents; write only if there are any. Return their ids."""
        with self._lock:
            ids = [doc.doc_id for doc in table.search(cond)]
            if ids:
                table.remove(doc_ids=ids)
            return ids


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


_SCALARS = {str, int, float, bool, type(None)}


def _copy(value):
    """A deep copy of JSON data, so callers may change what they get or gave without changing
    what is stored. Documents come out as plain dicts. (Scalars are not passed to a call of
    their own: a year of health records is copied twice as fast.)"""
    if isinstance(value, dict):
        return {key: item if item.__class__ in _SCALARS else _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [item if item.__class__ in _SCALARS else _copy(item) for item in value]
    return value


def read_json_file(path: Path, missing):
    """A data file's JSON object; ``missing`` if there is no such file. An empty file is refused:
    we never write one, so its data was lost (a crash, a bad copy), and starting empty would
    overwrite what a backup could bring back."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return missing
    except OSError as e:
        raise StorageUnavailable(f"{path}: cannot read it ({e.strerror or e})") from e
    if not raw.strip():
        raise StorageUnavailable(f"{path} is empty ({len(raw)} bytes): its data was lost (a crash or a bad copy); "
                                 f"restore it from a backup, or delete it if you mean to start without it")
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise StorageUnavailable(f"{path}: not valid JSON ({e}); restore it from a backup") from None
    if not isinstance(data, dict):
        raise StorageUnavailable(f"{path}: not a data file of ours (the top level is not an object); "
                                 f"restore it from a backup")
    return data


def _records_file(user_id) -> str:
    """The file name of a user's records: the id itself when it is a safe name (new_id()'s are)."""
    if isinstance(user_id, str) and SESSION_ID.fullmatch(user_id):
        return f"{user_id}.json"
    return "~" + hashlib.sha256(json_dumps(user_id).encode("utf-8")).hexdigest() + ".json"


def _left_by_dead_process(tmp: Path) -> bool:
    """Whether a temp file of `atomic_write` (.NAME.PID.THREAD.tmp) belongs to no live process."""
    try:
        os.kill(int(tmp.name.split(".")[-3]), 0)
    except ProcessLookupError:
        return True
    except (ValueError, IndexError, OSError):  # not our name, or alive under another user
        return False
    return False


def _without_activity(session: dict) -> dict:
    """message_count and updated_at are computed from the log, never stored."""
    return {k: v for k, v in session.items() if k not in ("message_count", "updated_at")}


def _check_limit(limit):
    if not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")


def _page(docs: list, fields: tuple, limit: int, before: str | None) -> tuple[list, str | None]:
    """Newest first by ``fields`` (the last is the id, so ties have a stable order); one page
    after the cursor, which is the sort key of the previous page's last item."""
    _check_limit(limit)

    def key(doc):
        return tuple([str(doc.get(f) or "") for f in fields])  # a list is built faster than a generator runs

    docs = sorted(docs, key=key, reverse=True)
    if before is not None:
        mark = _decode_cursor(before, len(fields))
        docs = [doc for doc in docs if key(doc) < mark]
    page = [_copy(doc) for doc in docs[:limit]]
    return page, (_encode_cursor(key(page[-1])) if len(docs) > limit else None)


def _encode_cursor(key: tuple) -> str:
    return base64.urlsafe_b64encode(json_dumps(list(key)).encode("utf-8")).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str, size: int) -> tuple:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError):  # binascii.Error and UnicodeDecodeError are ValueErrors
        key = None
    if not isinstance(key, list) or len(key) != size or not all(isinstance(k, str) for k in key):
        raise ValueError(f"not a cursor of this list: {cursor!r}")
    return tuple(key)


def _offset_cursor(cursor: str, f, size: int) -> int:
    """A message cursor: the offset of a line start in the log (checked, as clients send it)."""
    offset = int(cursor) if isinstance(cursor, str) and cursor.isdigit() else -1
    if 0 < offset <= size:
        f.seek(offset - 1)
        if f.read(1) == b"\n":
            return offset
    if offset == 0:
        return 0
    raise ValueError(f"not a cursor of this session's messages: {cursor!r}")


def _lines_before(f, end: int, limit: int) -> list[tuple[int, dict | None]]:
    """Up to ``limit`` whole lines that end by byte ``end`` (a line start), oldest first, as
    (offset, message); message is None for a line that is not a JSON object. Reads backwards
    in blocks, so the cost depends on the page, not on the size of the file."""
    blocks, newlines, pos, step = [], 0, end, READ_BLOCK
    # Once the bytes read hold limit + 1 newlines, every line after the first newline is whole
    # (and all are, once pos is 0). A very long line doubles the block size.
    while pos > 0 and newlines <= limit:
        step = min(step * 2 if blocks else step, pos)
        pos -= step
        f.seek(pos)
        blocks.append(f.read(step))
        newlines += blocks[-1].count(b"\n")
    buf = b"".join(reversed(blocks))
    start = 0 if pos == 0 else buf.index(b"\n") + 1
    raws = buf[start:].split(b"\n")[:-1][-limit:]  # buf ends with a newline
    offset = pos + len(buf) - sum(len(raw) + 1 for raw in raws)
    lines = []
    for raw in raws:
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        lines.append((offset, message if isinstance(message, dict) else None))
        offset += len(raw) + 1
    return lines
