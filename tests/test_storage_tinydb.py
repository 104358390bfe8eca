"""The TinyDB + JSON Lines backend: the shared contract, then what is particular to its files."""

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]  # the repo root (wellmate, plugins) and storage_contract

import plugins.storage_tinydb as backend  # noqa: E402
from plugins.storage_tinydb import TinyDBStorage  # noqa: E402
from wellmate import StorageUnavailable, new_id  # noqa: E402
from storage_contract import (StorageContract, at, ids, make_message, make_record,  # noqa: E402
                              make_reminder, make_session, make_token, make_user)


class TestTinyDBContract(StorageContract):
    @pytest.fixture
    def storage_factory(self, tmp_path):
        return lambda: TinyDBStorage.open(tmp_path / "data")


@pytest.fixture
def folder(tmp_path):
    return tmp_path / "data"


@pytest.fixture
def storage(folder):
    storage = TinyDBStorage.open(folder)
    yield storage
    storage.close()


def disk_full(monkeypatch):
    """Every file replace fails from now on as on a full disk (the real atomic_write runs up to
    its os.replace, and must clean up after itself)."""
    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)


def no_temp_files(folder) -> bool:
    return not [p.name for p in folder.rglob("*") if p.name.endswith(".tmp")]


def chat(storage, count=3):
    """A user with a session holding ``count`` messages; returns (session, messages)."""
    user = storage.create_user(make_user("alice"))
    session = storage.create_session(make_session(user["id"], created_at=at(0)))
    sent = [storage.append_message(session["id"], make_message(f"m{n}", created_at=at(n + 1))) for n in range(count)]
    return session, sent


def test_registered_under_its_name_and_built_by_the_app(folder):
    found = {}
    backend.register_storage(register=lambda name, factory: found.setdefault(name, factory))
    assert found == {"tinydb": TinyDBStorage}
    storage = TinyDBStorage({"path": "ignored: wm.data_dir wins"}, SimpleNamespace(data_dir=folder))
    try:
        assert storage.name == "tinydb" and storage.folder == folder.resolve()
        storage.create_user(make_user("alice"))
        assert (folder / "users.json").is_file()
    finally:
        storage.close()


def test_files_are_valid_json_with_private_modes(storage, folder):
    session, _ = chat(storage)
    storage.add_record(make_record(session["user_id"]))
    storage.add_refresh_token(make_token(session["user_id"]))
    storage.add_reminder(make_reminder(session["user_id"]))
    for name, tables in (("users", {"users", "refresh_tokens"}), ("sessions", {"sessions"}),
                         (f"records/{session['user_id']}", {"user_id", "records"}), ("reminders", {"reminders"})):
        path = folder / f"{name}.json"
        assert set(json.loads(path.read_text("utf-8"))) == tables
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    for sub in ("messages", "records"):
        assert stat.S_IMODE((folder / sub).stat().st_mode) & 0o077 == 0, sub
    log = folder / "messages" / f"{session['id']}.jsonl"
    assert stat.S_IMODE(log.stat().st_mode) & 0o077 == 0
    lines = log.read_bytes().split(b"\n")
    assert lines[-1] == b"" and [json.loads(line)["content"] for line in lines[:-1]] == ["m0", "m1", "m2"]
    assert not list(folder.glob(".*.tmp"))


def test_torn_last_line_is_skipped_and_the_next_append_works(storage, folder):
    session, sent = chat(storage)
    storage.close()
    log = folder / "messages" / f"{session['id']}.jsonl"
    with open(log, "ab") as f:  # what a crash in the middle of an append leaves
        f.write(b'{"id":"torn","role":"user","content":"half a mess')

    storage = TinyDBStorage.open(folder)
    try:
        assert ids(storage.list_messages(session["id"])[0]) == ids(sent)
        got = storage.get_session(session["id"])
        assert got["message_count"] == 3 and got["updated_at"] == at(3)
        more = storage.append_message(session["id"], make_message("after the crash"))
        assert ids(storage.list_messages(session["id"])[0]) == ids(sent) + [more["id"]]
        lines = log.read_bytes().split(b"\n")
        assert lines[-1] == b"" and len(lines) == 5
        assert [json.loads(line)["id"] for line in lines[:-1]] == ids(sent) + [more["id"]]
    finally:
        storage.close()


def test_opening_and_reading_write_nothing(storage, folder):
    """So that a second process that only reads (wellmate.py check) cannot disturb the server."""
    session, sent = chat(storage)
    storage.add_refresh_token(make_token(session["user_id"], expires_at=at(0)))
    storage.close()
    log = folder / "messages" / f"{session['id']}.jsonl"
    with open(log, "ab") as f:
        f.write(b'{"id":"torn"')
    before = {path: (path.stat().st_mtime_ns, path.read_bytes()) for path in folder.rglob("*") if path.is_file()}
    storage = TinyDBStorage.open(folder)
    try:
        storage.ping()
        assert storage.stats()["messages"] == 3
        assert ids(storage.list_messages(session["id"])[0]) == ids(sent)
        assert storage.list_sessions(session["user_id"])[0][0]["message_count"] == 3
        after = {path: (path.stat().st_mtime_ns, path.read_bytes()) for path in folder.rglob("*") if path.is_file()}
        assert after == before
    finally:
        storage.close()


def test_a_log_removed_behind_our_back(storage, folder):
    session, _ = chat(storage)
    (folder / "messages" / f"{session['id']}.jsonl").unlink()
    more = storage.append_message(session["id"], make_message("still works"))
    assert storage.list_messages(session["id"]) == ([more], None)
    assert storage.get_session(session["id"])["message_count"] == 1
    assert (folder / "messages" / f"{session['id']}.jsonl").read_bytes().count(b"\0") == 0


def test_a_garbage_line_is_skipped_by_readers(storage, folder):
    session, sent = chat(storage, 2)
    storage.close()
    log = folder / "messages" / f"{session['id']}.jsonl"
    with open(log, "ab") as f:  # e.g. zeros left by a power cut, then a later whole line
        f.write(b"\0\0\0\0\n" + json.dumps(make_message("later", id="later")).encode() + b"\n")
    storage = TinyDBStorage.open(folder)
    try:
        assert ids(storage.list_messages(session["id"])[0]) == ids(sent) + ["later"]
        pages = [storage.list_messages(session["id"], limit=1, before=None)]
        while pages[-1][1]:
            pages.append(storage.list_messages(session["id"], limit=1, before=pages[-1][1]))
        assert [m["id"] for items, _ in reversed(pages) for m in items] == ids(sent) + ["later"]
    finally:
        storage.close()


def test_leftover_temp_files_do_not_break_opening(storage, folder):
    user = storage.create_user(make_user("alice"))
    storage.close()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftovers = [folder / f".users.json.{int(dead.stdout)}.139.tmp", folder / f".records.json.{int(dead.stdout)}.1.tmp"]
    in_flight = folder / f".users.json.{os.getpid()}.7.tmp"  # a live process's write: not ours to remove
    for path in leftovers + [in_flight]:
        path.write_bytes(b'{"users": {"half-writ')
    storage = TinyDBStorage.open(folder)
    try:
        assert storage.get_user(user["id"])["username"] == "alice"
        assert not any(path.exists() for path in leftovers) and in_flight.exists()
        storage.create_user(make_user("bob"))
        assert len(json.loads((folder / "users.json").read_text())["users"]) == 2
    finally:
        storage.close()


def test_a_failed_write_leaves_memory_as_on_disk(storage, folder, monkeypatch):
    user = storage.create_user(make_user("alice"))
    record = storage.add_record(make_record(user["id"]))

    disk_full(monkeypatch)
    with pytest.raises(StorageUnavailable):
        storage.update_user(user["id"], {"full_name": "never stored", "settings": {"x": 1}})
    with pytest.raises(StorageUnavailable):
        storage.delete_record(record["id"])
    with pytest.raises(StorageUnavailable):
        storage.create_user(make_user("bob"))
    monkeypatch.undo()
    assert no_temp_files(folder)
    assert storage.get_user(user["id"])["full_name"] == "Alice"
    assert storage.get_record(record["id"]) is not None
    assert storage.find_user("username", "bob") is None
    storage.create_user(make_user("carol"))  # and the next write works
    assert json.loads((folder / "users.json").read_text())["users"][user["id"]]["full_name"] == "Alice"


def test_a_corrupt_file_is_reported_by_name(folder):
    folder.mkdir(parents=True)
    (folder / "records.json").write_text('{"records": {"1": ')
    with pytest.raises(StorageUnavailable, match="records.json"):
        TinyDBStorage.open(folder)


def test_session_ids_must_be_safe_file_names(storage):
    user = storage.create_user(make_user("alice"))
    for bad in ("../users", "a/b", "", "x" * 129, None, ".hidden"):
        with pytest.raises(ValueError):
            storage.create_session({**make_session(user["id"]), "id": bad})
    assert storage.list_messages("../users") == ([], None)
    assert storage.get_session("../users") is None


def test_expired_refresh_tokens_are_pruned(storage, folder):
    user = storage.create_user(make_user("alice"))
    expired = make_token(user["id"], expires_at=at(0))
    live = make_token(user["id"])
    storage.add_refresh_token(live)  # the first add sweeps, then not again for a while
    storage.add_refresh_token(expired)
    storage.close()
    storage = TinyDBStorage.open(folder)
    try:
        assert storage.use_refresh_token(expired["hash"])["used"] is False  # opening writes nothing
        newer = make_token(user["id"])
        storage.add_refresh_token(newer)  # the first add after opening sweeps
        assert set(json.loads((folder / "users.json").read_text())["refresh_tokens"]) == {live["hash"], newer["hash"]}
        assert storage.use_refresh_token(expired["hash"]) is None
        assert storage.use_refresh_token(live["hash"])["used"] is False
    finally:
        storage.close()


def test_message_cursor_must_point_at_a_line(storage):
    session, sent = chat(storage, 5)
    _, cursor = storage.list_messages(session["id"], limit=2)
    assert ids(storage.list_messages(session["id"], limit=2, before=cursor)[0]) == ids(sent[1:3])
    for bad in (str(int(cursor) + 1), str(int(cursor) - 1), "99999999", "-1", "abc"):
        with pytest.raises(ValueError):
            storage.list_messages(session["id"], before=bad)


def test_large_messages_page_across_read_blocks(storage):
    session, _ = chat(storage, 0)
    big = [storage.append_message(session["id"], make_message(f"{n}" + "x" * 100_000)) for n in range(5)]
    items, cursor = storage.list_messages(session["id"], limit=2)
    assert ids(items) == ids(big[3:])
    items, cursor = storage.list_messages(session["id"], limit=10, before=cursor)
    assert ids(items) == ids(big[:3]) and cursor is None


def test_no_files_outside_the_data_folder(tmp_path, folder):
    storage = TinyDBStorage.open(folder)
    chat(storage)
    storage.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    # Only what was written: opening an empty folder creates no data files.
    assert sorted(p.name for p in folder.iterdir()) == ["messages", "records", "sessions.json", "users.json"]
    assert not list((folder / "records").iterdir())


# -- the per-user index of health records: in step with the file through every kind of write,
# a failed write, and a reopen -------------------------------------------------------------------


def on_disk(folder, user_id) -> list[str]:
    """The user's record ids as their records file holds them, newest first."""
    path = folder / "records" / f"{user_id}.json"
    mine = list(json.loads(path.read_text())["records"].values()) if path.exists() else []
    assert all(r["user_id"] == user_id for r in mine)
    return ids(sorted(mine, key=lambda r: (r["recorded_at"], r["created_at"], r["id"]), reverse=True))


def test_every_write_keeps_the_index_and_the_file_alike(storage, folder):
    alice = storage.create_user(make_user("alice"))
    bob = storage.create_user(make_user("bob"))
    kept = storage.add_record(make_record(alice["id"], recorded_at=at(1)))
    gone = storage.add_record(make_record(alice["id"], recorded_at=at(2)))
    storage.put_records([make_record(alice["id"], recorded_at=at(n), client_id=f"c{n}") for n in range(3, 6)])
    storage.put_records([make_record(bob["id"], recorded_at=at(9))])
    storage.put_records([make_record(alice["id"], value=99, recorded_at=at(4), client_id="c4")])  # updated
    storage.delete_record(gone["id"])
    for user in (alice, bob):
        assert ids(storage.list_records(user["id"], limit=100)[0]) == on_disk(folder, user["id"])
    assert len(on_disk(folder, alice["id"])) == 4 and kept["id"] in on_disk(folder, alice["id"])
    storage.delete_user(bob["id"])
    assert storage.list_records(bob["id"]) == ([], None) and on_disk(folder, bob["id"]) == []


def test_a_failed_batch_write_stores_nothing_anywhere(storage, folder, monkeypatch):
    user = storage.create_user(make_user("alice"))
    before = storage.add_record(make_record(user["id"], client_id="old"))

    disk_full(monkeypatch)
    with pytest.raises(StorageUnavailable):
        storage.put_records([make_record(user["id"], client_id="new"), make_record(user["id"], client_id="old", value=1)])
    with pytest.raises(StorageUnavailable):
        storage.add_record(make_record(user["id"]))
    monkeypatch.undo()
    assert no_temp_files(folder)
    assert ids(storage.list_records(user["id"])[0]) == [before["id"]] == on_disk(folder, user["id"])
    assert storage.get_record(before["id"])["value"] == before["value"]
    # The next sync works, and still knows which client ids are stored.
    results = storage.put_records([make_record(user["id"], client_id="new"), make_record(user["id"], client_id="old", value=1)])
    assert [outcome for outcome, _ in results] == ["created", "updated"]


def test_index_is_built_from_the_file_on_reopen(folder):
    storage = TinyDBStorage.open(folder)
    users = [storage.create_user(make_user(f"user{n}")) for n in range(3)]
    for n, user in enumerate(users):
        storage.put_records([make_record(user["id"], recorded_at=at(day), client_id=str(day)) for day in range(n + 2)])
    storage.close()
    storage = TinyDBStorage.open(folder)
    try:
        for n, user in enumerate(users):
            assert ids(storage.list_records(user["id"])[0]) == on_disk(folder, user["id"])
            assert len(on_disk(folder, user["id"])) == n + 2
        again = storage.put_records([make_record(users[2]["id"], recorded_at=at(day), client_id=str(day)) for day in range(4)])
        assert [outcome for outcome, _ in again] == ["unchanged"] * 4
    finally:
        storage.close()


# -- records.json (every user's records in one file) is moved to records/<user_id>.json at open ---


def old_layout(folder, users=3, per_user=4) -> dict:
    """A data folder as the one-file backend left it; returns {record id: record}."""
    folder.mkdir(parents=True, exist_ok=True)
    storage = TinyDBStorage.open(folder)
    user_ids = [storage.create_user(make_user(f"user{n}"))["id"] for n in range(users)]
    storage.close()
    records = {}
    for n, user_id in enumerate(user_ids):
        for day in range(per_user):
            record = make_record(user_id, value=day, recorded_at=at(day), client_id=f"c{day}" if day % 2 else None)
            records[record["id"]] = record
    (folder / "records.json").write_text(json.dumps({"records": records}))
    os.chmod(folder / "records.json", 0o600)
    return records


def assert_all_there(folder, records):
    storage = TinyDBStorage.open(folder)
    try:
        assert not (folder / "records.json").exists()
        for record_id, record in records.items():
            assert storage.get_record(record_id) == record
        user_ids = {r["user_id"] for r in records.values()}
        for user_id in user_ids:
            assert sorted(ids(storage.list_records(user_id, limit=1000)[0])) == \
                sorted(i for i, r in records.items() if r["user_id"] == user_id)
            assert stat.S_IMODE((folder / "records" / f"{user_id}.json").stat().st_mode) == 0o600
        assert storage.stats()["records"] == len(records)
        assert stat.S_IMODE((folder / "records").stat().st_mode) == 0o700
        assert sorted(p.name for p in (folder / "records").iterdir()) == sorted(f"{u}.json" for u in user_ids)
        # Client ids still match: a sync again changes nothing.
        again = [{**r, "id": new_id()} for r in records.values() if r.get("client_id")]
        for user_id in user_ids:
            mine = [r for r in again if r["user_id"] == user_id]
            assert [outcome for outcome, _ in storage.put_records(mine)] == ["unchanged"] * len(mine)
    finally:
        storage.close()


def test_an_old_records_json_is_moved_into_one_file_per_user(folder):
    records = old_layout(folder)
    assert_all_there(folder, records)
    assert_all_there(folder, records)  # and opening again changes nothing


def test_a_failure_at_any_step_of_the_move_loses_nothing_and_the_next_open_finishes_it(tmp_path, monkeypatch):
    """Every os.replace of the move (one per user) failing in turn, as a crash at that point."""
    records = old_layout(tmp_path / "original", users=3)
    for fail_at in range(3):
        folder = tmp_path / f"try{fail_at}"
        shutil.copytree(tmp_path / "original", folder)
        real_replace, calls = os.replace, []

        def replace(*args, **kwargs):
            calls.append(args)
            if len(calls) > fail_at:
                raise OSError(5, "Input/output error")
            return real_replace(*args, **kwargs)

        monkeypatch.setattr(os, "replace", replace)
        with pytest.raises(StorageUnavailable):
            TinyDBStorage.open(folder)
        monkeypatch.undo()
        assert (folder / "records.json").exists() and len(list((folder / "records").iterdir())) == fail_at
        assert_all_there(folder, records)


def test_a_kill_during_the_move_loses_nothing_and_the_next_open_finishes_it(tmp_path):
    """A real SIGKILL of a process moving 150 users' records, at several points."""
    records = old_layout(tmp_path / "original", users=150, per_user=3)
    code = "import sys; sys.path.insert(0, sys.argv[1]); from plugins.storage_tinydb import TinyDBStorage; " \
           "TinyDBStorage.open(sys.argv[2])"
    for kill_after in (1, 40, 100):
        folder = tmp_path / f"kill{kill_after}"
        shutil.copytree(tmp_path / "original", folder)

        def moved():
            return len(list((folder / "records").glob("*.json"))) if (folder / "records").exists() else 0

        child = subprocess.Popen([sys.executable, "-c", code, str(HERE.parent), str(folder)])
        while child.poll() is None and moved() < kill_after:
            time.sleep(0.001)
        child.kill()
        child.wait()
        print(f"killed after {moved()} of 150 users' files (records.json left: {(folder / 'records.json').exists()})")
        assert_all_there(folder, records)
