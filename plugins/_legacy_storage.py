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
from datetime import datetime, timezone
from pathlib import Path

from wellmate import SERVER_LOCK, FileLock, StorageUnavailable, fsync_dir, json_dumps

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
    # A server of the version before may be running on the folder: moving its files away
    # under it would lose what it writes next. Its lock says so.
    lock = FileLock(folder / SERVER_LOCK)
    if not lock.acquire():
        raise StorageUnavailable(f"another Wellmate (pid {lock.holder()}) is serving {folder}: stop it first; "
                                 f"this version then moves the folder to collections, once")
    try:
        _migrate(storage, folder, old)
    finally:
        lock.release()


def _migrate(storage, folder: Path, old: list[Path]) -> None:
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
                data = memoryview(("\n".join(lines) + "\n").encode("utf-8"))
                while data:  # one write() may take less than asked (at most ~2 GiB on Linux)
                    data = data[os.write(fd, data):]
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
