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
import shutil
import time
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
    if not old or (folder / "collections").exists():
        return
    from tinydb import TinyDB  # the old files are TinyDB's: read them with TinyDB itself
    from tinydb.storages import JSONStorage

    def table(path: Path, name: str) -> dict:
        if not path.exists():
            return {}
        if not path.read_bytes().strip():
            raise StorageUnavailable(f"{path} is empty (0 bytes): its data was lost (a crash or a bad copy); "
                                     f"restore it from a backup, or delete it to start without it")
        try:
            db = TinyDB(path, storage=JSONStorage, access_mode="r")
        except ValueError as e:
            raise StorageUnavailable(f"{path}: not valid JSON ({e}); restore it from a backup") from None
        try:
            return {str(doc.doc_id): dict(doc) for doc in db.table(name)}
        finally:
            db.close()

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
        backup = folder / f"backup-{stamp}"
        backup.mkdir(mode=0o700)
        for path in old:
            os.replace(path, backup / path.name)
        fsync_dir(backup)
        fsync_dir(folder)
    log.warning("migrated the data folder to collections: %s; the old files are in %s/",
                ", ".join(f"{len(docs)} {name}" for name, docs in collections.items()), backup.name)


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
    "users": {"indexes": [Index((), "created_at"), ("role",), ("disabled",), ("password_hash",)],
              "unique": [("username_key",), ("wx_openid",), ("wx_unionid",)]},
    "refresh_tokens": {"indexes": [("family",), ("user_id",), Index((), "expires_at")]},
    "records": {"indexes": [Index(("user_id",), "recorded_at"), Index(("user_id", "type"), "recorded_at")],
                "unique": [("user_id", "client_id")]},
    "reminders": {"indexes": [Index(("user_id",), "created_at"), Index((), "next_fire_at")]},
    "deliveries": {"indexes": [Index(("reminder_id",), "created_at"), ("user_id",)]},
}
PRUNE_EVERY = 3600  # seconds between sweeps of expired refresh tokens


def _all(find, *args, **kwargs) -> list:
    items, before = [], None
    while True:
        page, before = find(*args, limit=500, before=before, **kwargs)
        items += page
        if before is None:
            return items


class LegacyMethods:
    _pruned_at = float("-inf")

    # -- users
    def create_user(self, user: dict) -> dict:
        return _user_out(self.insert("users", _with_username_key(user)))

    def get_user(self, user_id: str) -> dict | None:
        return _user_out(self.get("users", user_id))

    def find_user(self, field: str, value) -> dict | None:
        if value is None:
            return None
        if field == "id":
            return self.get_user(value)
        if field == "username":
            field, value = "username_key", str(value).lower()
        found, _ = self.find("users", {field: value}, limit=1)
        return _user_out(found[0]) if found else None

    def update_user(self, user_id: str, changes: dict) -> dict | None:
        return _user_out(self.update("users", user_id, _with_username_key(changes)))

    def list_users(self, limit: int = 50, before: str | None = None) -> tuple[list, str | None]:
        users, cursor = self.find("users", order="-created_at", limit=limit, before=before)
        return [_user_out(user) for user in users], cursor

    def delete_user(self, user_id: str) -> bool:
        if self.get("users", user_id) is None:
            return False
        for name, where in (("records", {"user_id": user_id}), ("deliveries", {"user_id": user_id}),
                            ("refresh_tokens", {"user_id": user_id})):
            self.delete_where(name, where)
        for reminder in _all(self.find, "reminders", {"user_id": user_id}, order="-created_at"):
            self.delete("reminders", reminder["id"])
        return self.delete("users", user_id)

    # -- refresh tokens
    def add_refresh_token(self, token: dict) -> None:
        self.insert("refresh_tokens", {**token, "id": token["hash"]})
        if time.monotonic() - self._pruned_at > PRUNE_EVERY:
            self._pruned_at = time.monotonic()
            for old in _all(self.find, "refresh_tokens", order="expires_at", start="", end=now_iso()):
                self.delete("refresh_tokens", old["id"])

    def use_refresh_token(self, token_hash: str) -> dict | None:
        seen = []

        def use(token):
            if token is None:
                return None
            seen.append(dict(token))
            return None if token.get("used") else {**token, "used": True}
        self.update("refresh_tokens", token_hash, use)
        if not seen:
            return None
        seen[0].pop("id", None)
        return seen[0]

    def revoke_refresh_tokens(self, *, family: str | None = None, user_id: str | None = None) -> int:
        if family is None and user_id is None:
            raise ValueError("revoke_refresh_tokens: give family= or user_id=")
        return self.delete_where("refresh_tokens", {"family": family} if family is not None else {"user_id": user_id})

    # -- records
    def add_record(self, record: dict) -> dict:
        return self.insert("records", record)

    def put_records(self, records: list[dict]) -> list[tuple[str, dict]]:
        if len({json_dumps(r.get("user_id")) for r in records}) > 1:
            raise ValueError("put_records: records of one user at a time")
        try:
            return self.upsert("records", records, key=("user_id", "client_id"), fixed=("type",))
        except Conflict as e:
            if "key" in e.details:
                raise Conflict(str(e), client_id=e.details["key"]["client_id"], stored_type=e.details["stored"]) from None
            raise

    def count_records(self, user_id: str) -> int:
        return self.count("records", {"user_id": user_id})

    def get_record(self, record_id: str) -> dict | None:
        return self.get("records", record_id)

    def list_records(self, user_id: str, type: str | None = None, start: str | None = None,
                     end: str | None = None, limit: int = 100,
                     before: str | None = None) -> tuple[list, str | None]:
        where = {"user_id": user_id} if type is None else {"user_id": user_id, "type": type}
        if start is None and end is None:
            return self.find("records", where, order="-recorded_at", limit=limit, before=before)
        return self.find("records", where, order="-recorded_at", start=start if start is not None else "",
                         end=end, limit=limit, before=before)

    def delete_record(self, record_id: str) -> bool:
        return self.delete("records", record_id)

    # -- reminders and their deliveries
    def add_reminder(self, reminder: dict) -> dict:
        return self.insert("reminders", reminder)

    def get_reminder(self, reminder_id: str) -> dict | None:
        return self.get("reminders", reminder_id)

    def list_reminders(self, user_id: str, limit: int = 50, before: str | None = None) -> tuple[list, str | None]:
        return self.find("reminders", {"user_id": user_id}, order="-created_at", limit=limit, before=before)

    def update_reminder(self, reminder_id: str, changes: dict) -> dict | None:
        return self.update("reminders", reminder_id, changes)

    def delete_reminder(self, reminder_id: str) -> bool:
        removed = self.delete("reminders", reminder_id)
        if removed:
            self.delete_where("deliveries", {"reminder_id": reminder_id})
        return removed

    def due_reminders(self, now: str) -> list:
        # next_fire_at <= now: end is exclusive, and now + "\0" is the least text after now.
        return _all(self.find, "reminders", order="next_fire_at", start="", end=now + "\0")

    def next_fire_at(self) -> str | None:
        first, _ = self.find("reminders", order="next_fire_at", start="", limit=1)
        return first[0]["next_fire_at"] if first else None

    def add_delivery(self, delivery: dict, keep: int = 100) -> dict:
        if not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be a positive integer, got {keep!r}")
        stored = self.insert("deliveries", delivery)
        where = {"reminder_id": delivery.get("reminder_id")}
        extra = self.count("deliveries", where) - keep
        if extra > 0:
            for old in self.find("deliveries", where, order="created_at", limit=extra)[0]:
                self.delete("deliveries", old["id"])
        return stored

    def list_deliveries(self, reminder_id: str, limit: int = 50,
                        before: str | None = None) -> tuple[list, str | None]:
        return self.find("deliveries", {"reminder_id": reminder_id}, order="-created_at", limit=limit, before=before)


def _with_username_key(user: dict) -> dict:
    if "username" not in user:
        return user
    name = user["username"]
    return {**user, "username_key": name.lower() if isinstance(name, str) and name else None}


def _user_out(user: dict | None) -> dict | None:
    if user is not None:
        user.pop("username_key", None)
    return user
