"""What an older data folder needs to keep working with the collections backend.

`migrate` turns a folder of the TinyDB backend (users.json with users and refresh tokens,
sessions.json, reminders.json, deliveries.json, records/<user>.json or records.json) into
collection files, once, at the first start, and moves what it replaced into
``backup-<time>/``: nothing is deleted. The new files are written to ``collections.tmp/``
and renamed into place in one step, so a crash half-way leaves the old folder as it was and
the next start migrates again.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

from wellmate import Conflict, Index, StorageUnavailable, fsync_dir, json_dumps, now_iso

log = logging.getLogger("wellmate.storage")

OLD_FILES = ("users.json", "sessions.json", "reminders.json", "deliveries.json", "records.json")


def migrate(storage, specs: dict) -> None:
    """Migrate ``storage.folder`` if it holds the TinyDB backend's files and no collections yet."""
    folder: Path = storage.folder
    old = [folder / name for name in OLD_FILES if (folder / name).exists()]
    if (folder / "records").is_dir():
        old.append(folder / "records")
    if not old:
        return
    if (folder / "collections").exists():  # migrated, but a crash came before the old files were moved aside
        with storage._writing("the backup of the old files"):
            backup = _move_aside(folder, old, max(folder.glob("backup-*"), default=None))
        log.warning("moved the old files of a migrated data folder into %s/", backup.name)
        return

    def table(path: Path, name: str) -> dict:
        # A TinyDB file is {table: {doc_id: doc}}; read as JSON, not with TinyDB, whose tables
        # take doc ids for ints (ours were our own string ids: TinyDB refused every old folder).
        if not path.exists():
            return {}
        raw = path.read_bytes()
        if not raw.strip():
            raise StorageUnavailable(f"{path} is empty (0 bytes): its data was lost (a crash or a bad copy); "
                                     f"restore it from a backup, or delete it to start without it")
        try:
            data = json.loads(raw)
        except ValueError as e:
            raise StorageUnavailable(f"{path}: not valid JSON ({e}); restore it from a backup") from None
        docs = data.get(name) if isinstance(data, dict) else None
        return {str(doc_id): dict(doc) for doc_id, doc in (docs or {}).items() if isinstance(doc, dict)}

    users = table(folder / "users.json", "users")
    for user in users.values():
        if isinstance(user.get("username"), str):
            user["username_key"] = user["username"].lower()
    tokens = {doc["hash"]: {**doc, "id": doc["hash"]} for doc in table(folder / "users.json", "refresh_tokens").values()
              if isinstance(doc.get("hash"), str)}
    sessions = table(folder / "sessions.json", "sessions")
    for session_id, session in sessions.items():
        count, last_at = _log_activity(folder / "messages" / f"{session_id}.jsonl")
        session.update(message_count=count, updated_at=last_at or session.get("created_at"))
    records = {}
    for record in table(folder / "records.json", "records").values():
        records[record["id"]] = record
    for path in sorted((folder / "records").glob("*.json")) if (folder / "records").is_dir() else ():
        try:
            data = json.loads(path.read_bytes())
        except ValueError as e:
            raise StorageUnavailable(f"{path}: not valid JSON ({e}); restore it from a backup") from None
        for record in (data.get("records") or {}).values():
            records[record["id"]] = record
    collections = {"users": users, "refresh_tokens": tokens, "sessions": sessions, "records": records,
                   "reminders": table(folder / "reminders.json", "reminders"),
                   "deliveries": table(folder / "deliveries.json", "deliveries")}

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    staging = folder / "collections.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    with storage._writing("the migrated collections"):
        staging.mkdir(mode=0o700)
        from .storage_files import FILE_MODE, FORMAT
        for name, docs in collections.items():
            lines = [json_dumps({"wellmate": "collection", "name": name, "format": FORMAT})]
            lines += [json_dumps({"put": {**doc, "id": str(doc.get("id") or doc_id)}}) for doc_id, doc in docs.items()]
            path = staging / f"{name}.jsonl"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            try:
                os.write(fd, ("\n".join(lines) + "\n").encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(staging)
        os.replace(staging, folder / "collections")  # the one step: from here on the folder is migrated
        fsync_dir(folder)
        backup = _move_aside(folder, old, folder / f"backup-{stamp}")
    log.warning("migrated the data folder to collections: %s; the old files are in %s/",
                ", ".join(f"{len(docs)} {name}" for name, docs in collections.items()), backup.name)


def _move_aside(folder: Path, old: list[Path], backup: Path | None) -> Path:
    """Move the old files into ``backup`` (made if needed; None: a new one)."""
    backup = backup or folder / f"backup-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"
    backup.mkdir(mode=0o700, exist_ok=True)
    for path in old:
        os.replace(path, backup / path.name)
    fsync_dir(backup)
    fsync_dir(folder)
    return backup


def _log_activity(path: Path) -> tuple[int, str | None]:
    """How many whole lines a chat log has, and the last message's created_at."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return 0, None
    lines = raw[:raw.rfind(b"\n") + 1].splitlines()
    for line in reversed(lines):
        try:
            at = json.loads(line).get("created_at")
        except (ValueError, AttributeError):
            continue
        if at:
            return len(lines), at
    return len(lines), None


# -- the storage methods of before collections, on top of them --------------------------------------
# Plugins move off these one feature at a time (each to its own collection calls, owning its
# lookups and cascades); what is still here is what some plugin still calls.

LEGACY_COLLECTIONS = {
    "sessions": {"indexes": [Index(("user_id",), "updated_at"), Index(("user_id", "agent"), "updated_at"),
                             Index((), "updated_at")]},
}
LOG_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")  # session ids become file names
ACTIVITY = ("message_count", "updated_at")


def _all(find, *args, **kwargs) -> list:
    items, before = [], None
    while True:
        page, before = find(*args, limit=500, before=before, **kwargs)
        items += page
        if before is None:
            return items


def delete_user_data(storage, user_id: str) -> None:
    """What a deleted user leaves in the collections above (the ``delete_user_data`` of
    storage_files.py), until each moves to the plugin that answers for it."""
    if "sessions" in LEGACY_COLLECTIONS:
        for session in _all(storage.find, "sessions", {"user_id": user_id}, order="-updated_at"):
            storage.delete_messages(session["id"])  # the log first: deleting again finishes the job
            storage.delete("sessions", session["id"])
    for name in ("records", "deliveries", "reminders"):
        if name in LEGACY_COLLECTIONS:
            storage.delete_where(name, {"user_id": user_id})


class LegacyMethods:
    # -- sessions
    def create_session(self, session: dict) -> dict:
        if not isinstance(session.get("id"), str) or not LOG_ID.fullmatch(session["id"]):
            raise ValueError(f"a session id must be 1-128 letters, digits, '-' or '_', got {session.get('id')!r}")
        clean = {k: v for k, v in session.items() if k not in ACTIVITY}
        return self.insert("sessions", {**clean, "message_count": 0, "updated_at": clean.get("created_at")})

    def get_session(self, session_id: str) -> dict | None:
        return self.get("sessions", session_id)

    def list_sessions(self, user_id: str, agent: str | None = None, limit: int = 20,
                      before: str | None = None) -> tuple[list, str | None]:
        where = {"user_id": user_id} if agent is None else {"user_id": user_id, "agent": agent}
        return self.find("sessions", where, order="-updated_at", limit=limit, before=before)

    def update_session(self, session_id: str, changes: dict) -> dict | None:
        return self.update("sessions", session_id, {k: v for k, v in changes.items() if k not in ACTIVITY})

    def delete_session(self, session_id: str) -> bool:
        if self.get("sessions", session_id) is None:
            return False
        # The log first, then the session: if the process dies in between, the session is still
        # listed (empty) and deleting it again finishes the job.
        self.delete_messages(session_id)
        return self.delete("sessions", session_id)

    def append_message(self, session_id: str, message: dict, durable: bool = True) -> dict:
        if self.get("sessions", session_id) is None:
            raise KeyError(f"no session {session_id!r}")
        message = super().append_message(session_id, message, durable)

        def count(session):
            if session is None:
                return None
            return {**session, "message_count": (session.get("message_count") or 0) + 1,
                    "updated_at": max(message["created_at"], session.get("updated_at") or "")}
        self.update("sessions", session_id, count, durable=durable)
        return message

    def sync_messages(self, session_id: str) -> None:
        super().sync_messages(session_id)
        self.sync("sessions")

    def count_messages_by_day(self, since: str, tz: str = "UTC") -> dict[str, dict[str, int]]:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {tz!r}") from None
        counts: dict[str, dict[str, int]] = {}
        for session in _all(self.find, "sessions", order="updated_at", start=since):
            before = None
            while True:
                page, before = self.list_messages(session["id"], limit=200, before=before)
                recent = 0
                for message in page:
                    at = message.get("created_at")
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
                if not recent or before is None:
                    break
        return counts


    def stats(self) -> dict:
        counts = {name: self.count(name) for name in ("users", "sessions", "records", "reminders")}
        counts["messages"] = sum(s.get("message_count") or 0 for s in _all(self.find, "sessions", order="updated_at"))
        return counts

