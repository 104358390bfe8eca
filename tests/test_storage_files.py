"""The default backend, files of collections: the shared contract, plus what only a file
backend can get wrong (torn lines, damaged files, migration of an older folder)."""

import gc
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage_contract import (COLLECTIONS, StorageContract, at, ids, make_delivery, make_message,  # noqa: E402
                              make_record, make_reminder, make_session, make_user, note, walk_find)
from plugins import storage_files  # noqa: E402
from plugins.storage_files import FileStorage  # noqa: E402
from wellmate import Collection, Conflict, Index, StorageUnavailable, new_id  # noqa: E402


class TestFilesContract(StorageContract):
    @pytest.fixture
    def storage_factory(self, tmp_path):
        return lambda collections=None: FileStorage.open(tmp_path / "data", collections)


class TestFilesContractDeflated(StorageContract):
    """The contract again with every collection of two documents or more kept deflated in memory
    (from PACK_FROM documents on, 256: few tests write that many)."""

    @pytest.fixture
    def storage_factory(self, tmp_path, monkeypatch):
        monkeypatch.setattr(storage_files, "PACK_FROM", 2)
        return lambda collections=None: FileStorage.open(tmp_path / "data", collections)


def disk_full(monkeypatch):
    """Every write of file data fails from now on as on a full disk (appends, and the replace
    at the end of an atomic write)."""
    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    for name in ("pwrite", "write", "replace"):
        monkeypatch.setattr(os, name, no_space)


@pytest.fixture
def folder(tmp_path):
    return tmp_path / "data"


def opened(folder):
    return FileStorage.open(folder, COLLECTIONS)


def notes_file(folder) -> Path:
    return folder / "collections" / "notes.jsonl"


def lines_parse(path: Path) -> list:
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    return [json.loads(line) for line in raw.splitlines()]


def test_a_torn_last_line_is_ignored_and_cut_off_by_the_next_write(folder):
    store = opened(folder)
    a, b = store.insert("notes", note()), store.insert("notes", note())
    store.close()
    with open(notes_file(folder), "ab") as f:  # a crash in the middle of an append
        f.write(b'{"put":{"id":"torn","owner":"alice","at":')
    store = opened(folder)
    assert store.get("notes", a["id"]) == a and store.get("notes", b["id"]) == b
    assert store.get("notes", "torn") is None and store.count("notes") == 2
    c = store.insert("notes", note())
    store.close()
    assert len(lines_parse(notes_file(folder))) == 4  # the header and three writes: the torn one is gone
    store = opened(folder)
    try:
        assert ids(store.find("notes", {"owner": "alice"}, order="at", limit=10)[0]) == sorted(ids([a, b, c]))
    finally:
        store.close()


def test_a_damaged_middle_line_is_refused_by_name(folder):
    store = opened(folder)
    for _ in range(3):
        store.insert("notes", note())
    store.close()
    lines = notes_file(folder).read_bytes().splitlines(keepends=True)
    lines[2] = b'{"put": garbage}\n'
    notes_file(folder).write_bytes(b"".join(lines))
    with pytest.raises(StorageUnavailable) as e:
        opened(folder)
    assert "notes.jsonl: line 3 is damaged" in str(e.value)


def test_an_empty_file_is_refused(folder):
    opened(folder).close()
    notes_file(folder).parent.mkdir(parents=True, exist_ok=True)
    notes_file(folder).write_bytes(b"")
    with pytest.raises(StorageUnavailable) as e:
        opened(folder)
    assert "notes.jsonl is empty (0 bytes)" in str(e.value)


def test_a_failed_write_leaves_memory_as_on_disk_and_the_file_clean(folder, monkeypatch):
    store = opened(folder)
    try:
        kept = store.insert("notes", note(slug="a"))
        on_disk = notes_file(folder).read_bytes()
        disk_full(monkeypatch)
        for write in (lambda: store.insert("notes", note(slug="b")),
                      lambda: store.update("notes", kept["id"], {"text": "lost"}),
                      lambda: store.put("notes", {**kept, "text": "lost"}),
                      lambda: store.delete("notes", kept["id"]),
                      lambda: store.delete_where("notes", {"owner": "alice"}),
                      lambda: store.upsert("notes", [note(slug="c")], key=("owner", "slug"))):
            with pytest.raises(StorageUnavailable):
                write()
        assert "No space left on device" in store.trouble()
        monkeypatch.undo()
        assert notes_file(folder).read_bytes() == on_disk  # nothing half-written was left
        assert store.get("notes", kept["id"]) == kept and store.count("notes") == 1
        assert store.count("notes", {"owner": "alice"}) == 1
        assert ids(store.find("notes", {"owner": "alice"}, order="at")[0]) == [kept["id"]]
        store.insert("notes", note(slug="b"))  # the key "b" was never taken
        assert store.trouble() is None
    finally:
        store.close()
    store = opened(folder)
    try:
        assert store.count("notes") == 2 and store.get("notes", kept["id"]) == kept
    finally:
        store.close()


def test_compaction_keeps_everything_and_survives_reopen(folder, monkeypatch):
    monkeypatch.setattr(storage_files, "COMPACT_MIN_BYTES", 50_000)
    store = opened(folder)
    try:
        docs = [store.insert("notes", note(at_seconds=n, slug=f"s{n}")) for n in range(20)]
        for n in range(400):  # one document rewritten over and over: the file is mostly dead lines
            docs[0] = store.update("notes", docs[0]["id"], {"text": "x" * 500, "n": n})
        store.delete("notes", docs[1]["id"])
        size = notes_file(folder).stat().st_size
        assert size < 50_000 * 2, size  # compacted along the way, not 200 kB of history
        assert store.count("notes") == 19 and store.get("notes", docs[0]["id"])["n"] == 399
    finally:
        store.close()
    assert not [p for p in (folder / "collections").iterdir() if p.name.endswith(".tmp")]
    lines = lines_parse(notes_file(folder))
    assert lines[0]["wellmate"] == "collection"
    store = opened(folder)
    try:
        assert store.count("notes") == 19 and store.get("notes", docs[1]["id"]) is None
        assert [store.get("notes", d["id"]) for d in docs[2:]] == docs[2:]
        assert store.get("notes", docs[0]["id"]) == docs[0]
        with pytest.raises(Conflict):
            store.insert("notes", note(slug="s5"))
    finally:
        store.close()


# -- an older (TinyDB) data folder is migrated once, with a backup ---------------------------------

def old_folder(folder: Path, users=3, per_user=4) -> dict:
    """A data folder as the TinyDB backend left it (users.json with refresh tokens, sessions.json,
    messages/, records/<user>.json and an older records.json, reminders.json, deliveries.json);
    returns what it holds by collection."""
    folder.mkdir(parents=True)
    held = {name: {} for name in ("users", "refresh_tokens", "sessions", "records", "reminders", "deliveries")}
    per_user_files = {}
    for n in range(users):
        user = make_user(f"User{n}")
        held["users"][user["id"]] = user
        token = {"hash": new_id(), "user_id": user["id"], "family": new_id(), "expires_at": at(10**6)}
        held["refresh_tokens"][token["hash"]] = token
        session = make_session(user["id"], created_at=at(n))
        held["sessions"][session["id"]] = session
        (folder / "messages").mkdir(exist_ok=True)
        (folder / "messages" / f"{session['id']}.jsonl").write_text(
            "".join(json.dumps(make_message(f"m{m}", created_at=at(100 + m))) + "\n" for m in range(3)))
        for day in range(per_user):
            record = make_record(user["id"], value=day, recorded_at=at(day), client_id=f"c{day}" if day % 2 else None)
            held["records"][record["id"]] = record
            per_user_files.setdefault(user["id"] if n else None, {})[record["id"]] = record
        reminder = make_reminder(user["id"])
        held["reminders"][reminder["id"]] = reminder
        delivery = make_delivery(reminder)
        held["deliveries"][delivery["id"]] = delivery
    for path, tables in (("users.json", ("users", "refresh_tokens")), ("sessions.json", ("sessions",)),
                         ("reminders.json", ("reminders",)), ("deliveries.json", ("deliveries",))):
        # TinyDB's layout, {table: {doc id: doc}}, with the old backend's own string ids as doc ids.
        (folder / path).write_text(json.dumps({table: held[table] for table in tables}))
    (folder / "records").mkdir()
    for user_id, records in per_user_files.items():
        target = folder / "records.json" if user_id is None else folder / "records" / f"{user_id}.json"
        target.write_text(json.dumps({"records": records}))
    return held


def assert_migrated(folder: Path, held: dict):
    storage = FileStorage.open(folder)
    try:
        for name, docs in held.items():
            assert storage.count(name) == len(docs), name
            for doc_id, doc in docs.items():
                stored = storage.get(name, doc_id)
                assert stored is not None and {k: stored[k] for k in doc} == doc, (name, doc_id)
        for user in held["users"].values():
            assert storage.find("users", {"username_key": user["username"].lower()})[0][0]["id"] == user["id"]
            mine = [r for r in held["records"].values() if r["user_id"] == user["id"]]
            assert storage.count("records", {"user_id": user["id"]}) == len(mine)
            # Client ids still match: a sync again stores nothing.
            again = [{**r, "id": new_id()} for r in mine if r.get("client_id")]
            outcomes = storage.upsert("records", again, key=("user_id", "client_id"), fixed=("type",))
            assert [outcome for outcome, _ in outcomes] == ["unchanged"] * len(again)
        for session_id, session in held["sessions"].items():
            assert [m["content"] for m in storage.iter_messages(session_id)] == ["m0", "m1", "m2"]
            assert storage.get("sessions", session_id)["message_count"] == 3
    finally:
        storage.close()
    left = sorted(p.name for p in folder.iterdir() if p.name != "server.lock")  # the migration holds it
    assert left == ["backup-" + left[0].split("-", 1)[1], "collections", "messages"], left
    assert sorted(p.name for p in (folder / left[0]).iterdir()) == sorted(
        ["deliveries.json", "records", "records.json", "reminders.json", "sessions.json", "users.json"])


def test_an_old_folder_is_migrated_once_with_a_backup(folder):
    held = old_folder(folder)
    assert_migrated(folder, held)
    backup = next(folder.glob("backup-*"))
    before = {p: p.read_bytes() for p in backup.rglob("*") if p.is_file()}
    assert_migrated(folder, held)  # opening again migrates nothing and backs nothing up again
    assert {p: p.read_bytes() for p in backup.rglob("*") if p.is_file()} == before


def test_an_old_folder_a_server_still_serves_is_not_migrated_under_it(folder):
    """Found in a walkthrough: the new version started beside a running old one moved the old
    server's files away under it (whatever it wrote next was lost)."""
    from wellmate import SERVER_LOCK, FileLock

    held = old_folder(folder)
    files = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != SERVER_LOCK}
    running = FileLock(folder / SERVER_LOCK)  # what the old version's server holds while it serves
    assert running.acquire()
    try:
        with pytest.raises(StorageUnavailable, match="another Wellmate"):
            FileStorage.open(folder, COLLECTIONS)
        assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != SERVER_LOCK} == files
    finally:
        running.release()
    assert_migrated(folder, held)  # once it stopped


def test_a_migration_failing_at_any_step_loses_nothing_and_the_next_open_finishes_it(tmp_path, monkeypatch):
    held = old_folder(tmp_path / "original")
    real_replace, steps = os.replace, []
    monkeypatch.setattr(os, "replace", lambda *args, **kwargs: (steps.append(args), real_replace(*args, **kwargs))[1])
    shutil.copytree(tmp_path / "original", tmp_path / "count")
    FileStorage.open(tmp_path / "count").close()
    monkeypatch.undo()
    assert len(steps) >= 2
    for fail_at in range(len(steps)):
        folder = tmp_path / f"try{fail_at}"
        shutil.copytree(tmp_path / "original", folder)
        calls = []

        def replace(*args, **kwargs):
            calls.append(args)
            if len(calls) > fail_at:
                raise OSError(5, "Input/output error")
            return real_replace(*args, **kwargs)

        monkeypatch.setattr(os, "replace", replace)
        with pytest.raises(StorageUnavailable):
            FileStorage.open(folder)
        monkeypatch.undo()
        assert_migrated(folder, held)


def test_a_kill_during_a_migration_loses_nothing(tmp_path):
    """A real SIGKILL of a process migrating 2,000 users, while it writes the new files, and
    after they are in place."""
    held = old_folder(tmp_path / "original", users=2000, per_user=3)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from plugins.storage_files import FileStorage; "
            "FileStorage.open(sys.argv[2]).close()")
    for point, reached in (("writing collections.tmp/", lambda f: len(list((f / "collections.tmp").glob("*"))) >= 2),
                           ("collections/ in place", lambda f: (f / "collections").exists())):
        folder = tmp_path / point.split()[0].rstrip("/")
        shutil.copytree(tmp_path / "original", folder)
        child = subprocess.Popen([sys.executable, "-c", code, str(ROOT), str(folder)])
        while child.poll() is None and not reached(folder):
            pass
        child.kill()
        child.wait()
        print(f"killed at {point}: {sorted(p.name for p in folder.iterdir())}")
        assert_migrated(folder, held)


# -- what an outside review found (each failed before its fix) -----------------------------------


def test_a_failed_first_write_leaves_no_file_the_next_start_refuses(folder, monkeypatch):
    store = opened(folder)
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(StorageUnavailable):
        store.insert("notes", note())
    monkeypatch.setattr(os, "replace", real)
    kept = store.insert("notes", note())
    store.close()
    again = opened(folder)  # it refused "not a collection file of ours (line 1)": the header was missing
    try:
        assert ids(again.find("notes", order="at")[0]) == [kept["id"]]
    finally:
        again.close()


def test_zeros_a_power_cut_left_after_the_last_line_are_a_torn_end(folder):
    store = opened(folder)
    kept = store.insert("notes", note())
    store.close()
    with open(notes_file(folder), "ab") as f:  # where lines written without fsync were to go
        f.write(b"\x00" * 200 + b"\n" + b"\x00" * 100)
    again = opened(folder)
    try:
        assert ids(again.find("notes", order="at")[0]) == [kept["id"]]
        more = again.insert("notes", note(at_seconds=1))
    finally:
        again.close()
    assert [op["put"]["id"] for op in lines_parse(notes_file(folder))[1:]] == [kept["id"], more["id"]]


def test_text_of_several_bytes_a_character_does_not_compact_on_every_write(folder):
    store = opened(folder)
    try:
        for n in range(700):  # 1.2 MB of emoji (four bytes each), nothing ever replaced or deleted
            store.insert("notes", note(at_seconds=n, text="😴" * 400), durable=False)
        inode = notes_file(folder).stat().st_ino
        store.insert("notes", note(text="又一条"))
        # Compaction replaces the file (a new inode); with nothing dead in it there is nothing to do.
        assert notes_file(folder).stat().st_ino == inode
    finally:
        store.close()


def test_a_failed_compaction_does_not_unsay_a_stored_write(folder, monkeypatch):
    store = opened(folder)
    try:
        doc = store.insert("notes", note(text="x" * 2000))
        monkeypatch.setattr(storage_files, "atomic_write",
                            lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left on device")))
        for n in range(700):  # rewrite one note: the file fills with dead lines, and compacting fails
            assert store.update("notes", doc["id"], {"n": n}, durable=False)["n"] == n
        stored = store.update("notes", doc["id"], {"n": "last"})
        assert stored["n"] == "last" and store.get("notes", doc["id"])["n"] == "last"
    finally:
        store.close()


def test_a_cursor_nested_deep_is_a_value_error_not_a_crash(folder):
    import base64
    store = opened(folder)
    try:
        for cursor in (base64.urlsafe_b64encode(b"[" * 1500).decode(), "A" * 10000):
            with pytest.raises(ValueError):
                store.find("notes", order="at", before=cursor)
    finally:
        store.close()


def test_an_upsert_of_thousands_is_one_line(folder):
    store = opened(folder)
    try:
        store.upsert("notes", [note(slug=f"s{n}") for n in range(2500)], key=("owner", "slug"))
    finally:
        store.close()
    assert len(lines_parse(notes_file(folder))) == 2  # the header, and one line: all or nothing


# Users and sessions as accounts and chat declare them: a lookup by a unique name, buckets of one
# document per user, order fields, and a few big buckets (role, an absent WeChat id).
GROWTH = [Collection("users", indexes=[Index((), "created_at"), ("role",), ("disabled",)],
                     unique=[("username_key",), ("wx_openid",)]),
          Collection("sessions", indexes=[Index(("user_id",), "updated_at"), Index(("user_id", "agent"), "updated_at"),
                                          Index(("user_id",), "created_at")])]


def grown(folder, users: int) -> None:
    """A folder with ``users`` users, each with a session, written as the app writes them."""
    store = FileStorage.open(folder, GROWTH)
    try:
        for n in range(users):
            user = store.insert("users", {"id": new_id(), "username": f"user{n}", "username_key": f"user{n}",
                                          "password_hash": "scrypt$16384$8$1$" + new_id() + new_id(), "role": "user",
                                          "disabled": False, "settings": {}, "created_at": at(n)}, durable=False)
            store.insert("sessions", {"id": new_id(), "user_id": user["id"], "agent": "mental", "title": "睡眠",
                                      "message_count": 4, "created_at": at(n), "updated_at": at(n + 1)}, durable=False)
    finally:
        store.close()


# In a fresh interpreter: in a long test run the interned strings' table may grow (and be
# counted) in the middle of the open.
HELD_AFTER_OPEN = """
import gc, sys, tracemalloc
sys.path[:0] = sys.argv[2:]
from plugins.storage_files import FileStorage
from test_storage_files import GROWTH
gc.collect()
tracemalloc.start()
store = FileStorage.open(sys.argv[1], GROWTH)
gc.collect()
print(tracemalloc.get_traced_memory()[0])
"""


def test_a_loaded_collection_takes_little_memory_per_document(folder):
    # Issue 13: at 50,000 users the server held 497 MB after start, TinyDB 319 MB; most of it was
    # a tuple or two per index per document (bench/storage --memory). Here (4,000 users with a
    # session each, ~560 bytes of JSON a pair, tracemalloc in a fresh interpreter) 3,413 bytes a
    # pair before, 1,395 now (of which ~250 the interned strings' table growing, once).
    grown(folder, 4000)
    held = int(subprocess.run([sys.executable, "-c", HELD_AFTER_OPEN, str(folder), str(ROOT), str(ROOT / "tests")],
                              capture_output=True, text=True, check=True).stdout)
    assert held / 4000 < 2000, f"{held / 4000:.0f} bytes a user and session"
    store = FileStorage.open(folder, GROWTH)
    try:
        user = store.find("users", {"username_key": "user1234"})[0][0]
        assert store.get("users", user["id"]) == user and user["created_at"] == at(1234)
        assert store.find("sessions", {"user_id": user["id"], "agent": "mental"}, order="-updated_at")[0][0]["title"] == "睡眠"
        assert store.count("users", {"role": "user"}) == 4000 and store.count("users", {"wx_openid": None}) == 4000
    finally:
        store.close()


def test_the_gc_tracks_no_object_per_document_of_a_loaded_collection(folder):
    # A full collection walks every tracked container: at 50,000 users ~450,000 of them (a list
    # per bucket, tuples per entry) made one take ~300 ms, a pause for whichever request met it.
    grown(folder, 4000)
    gc.collect()
    before = len(gc.get_objects())
    store = FileStorage.open(folder, GROWTH)
    try:
        gc.collect()
        assert len(gc.get_objects()) - before < 200
    finally:
        store.close()


def test_documents_deflated_in_memory_come_back_whole_after_updates_deletes_and_compaction(folder, monkeypatch):
    monkeypatch.setattr(storage_files, "COMPACT_MIN_BYTES", 20_000)
    store = opened(folder)
    try:
        docs = {}
        for n in range(storage_files.PACK_FROM + 100):  # crosses PACK_FROM while running
            doc = store.insert("notes", note(at_seconds=n, slug=f"s{n}", text="今天睡得不好 " * (n % 5), n=n), durable=False)
            docs[doc["id"]] = doc
        for n, doc_id in enumerate(list(docs)[::7]):
            docs[doc_id] = store.update("notes", doc_id, {"text": f"changed {n} 😀", "at": at(10_000 + n)})
        for doc_id in list(docs)[::11]:
            assert store.delete("notes", doc_id)
            del docs[doc_id]
        first = next(iter(docs))
        for n in range(400):  # the file is mostly dead lines: compacted from what memory holds
            docs[first] = store.update("notes", first, {"text": "很久没睡好 " * 80, "n": n}, durable=False)
        assert notes_file(folder).stat().st_size < 400 * 500
        assert store._collection("notes").zdict is not None  # deflated from then on
    finally:
        store.close()
    for round in range(2):  # as loaded (every document deflated at the end of the load), then written on
        store = opened(folder)
        try:
            assert store.count("notes") == len(docs)
            assert all(store.get("notes", doc_id) == doc for doc_id, doc in docs.items())
            newest = sorted(docs.values(), key=lambda doc: (doc["at"], doc["id"]), reverse=True)
            assert walk_find(store, "notes", {"owner": "alice"}, limit=40, order="-at") == ids(newest)
            extra = store.insert("notes", note(at_seconds=20_000, slug=f"extra{round}"))
            docs[extra["id"]] = extra
        finally:
            store.close()


def test_an_append_never_waits_for_another_sessions_lock(folder):
    """Each message log has a lock of its own, kept only while a thread holds or waits for it: an
    append to one session does not wait behind another session's writer (its fsync, a repair).
    With 64 locks shared by a hash of the id, one unrelated session in 64 waited."""
    storage = opened(folder)
    try:
        done = threading.Event()

        def append_to_others():
            for n in range(200):  # ids whose hash picked the busy session's lock: ~3 of them
                storage.append_message(f"other{n}", make_message("hello"), durable=False)
            done.set()

        with storage._log_lock("busy"):  # the busy session's writer, in its fsync
            writer = threading.Thread(target=append_to_others, daemon=True)
            writer.start()
            assert done.wait(30), "an append waited for another session's lock"  # a bound, not a speed check
        writer.join()
        assert [m["content"] for m in storage.list_messages("other7")[0]] == ["hello"]
        assert len(storage._log_locks) == 0  # none kept once no one writes
    finally:
        storage.close()



def test_updates_move_a_document_in_exactly_the_indexes_whose_fields_changed(folder):
    """An update re-files a document only in the indexes its changed fields key (see _reindex):
    after each kind of change every lookup answers as a fresh load of the file does."""
    store = opened(folder)
    a, b = store.insert("notes", note(at_seconds=1, count=0)), store.insert("notes", note(at_seconds=2))
    store.insert("notes", note("bob", at_seconds=3, kind=[1]))

    def lookups(storage):
        return [ids(storage.find("notes", where, order=order, limit=10)[0])
                for where, order in (({"owner": "alice"}, "at"), ({"owner": "bob"}, "at"), (None, "-at"),
                                     ({"kind": "plain"}, None), ({"kind": [1]}, None), ({"kind": [1.0]}, None),
                                     ({"kind": 1}, None), ({"kind": None}, None))]
    try:
        for change in ({"count": 1},                                    # no indexed field
                       {"at": at(5)},                                   # an order field
                       {"owner": "bob"},                                # a key field
                       lambda doc: {k: v for k, v in doc.items() if k != "kind"},  # a key field gone
                       {"kind": [1]}, {"kind": [1.0]},                  # equal, keyed apart
                       {"kind": 1}, {"kind": 1.0}, {"kind": True},      # equal, of another type
                       {"kind": [1]}, lambda doc: {**doc, "kind": doc["kind"].append(2) or doc["kind"]}):  # altered in place
            store.update("notes", a["id"], change)
            store.update("notes", b["id"], {"count": 2})
            again = opened(folder)
            try:
                assert lookups(store) == lookups(again), change
            finally:
                again.close()
    finally:
        store.close()


def test_pages_of_messages_long_and_short_lines_and_damaged_ones_are_every_line_once(folder):
    """`_lines_before` reads backwards from a small first block, doubling: pages of every size over
    lines shorter and far longer than that block, a damaged line and a blank one, come out as the
    log holds them, each line once, with cursors that resume where the page ended."""
    store = opened(folder)
    try:
        sizes = [10, 300, 20_000, 5, 9_000, 70_000, 200] * 4
        sent = [store.append_message("long", make_message("x" * size + f"#{n}")) for n, size in enumerate(sizes)]
        with open(folder / "messages" / "long.jsonl", "ab") as log:
            log.write(b'{"broken\n\n[1]\n')  # a line torn mid-way and mended, a blank one, not an object
        sent.append(store.append_message("long", make_message("after")))
        assert [m["id"] for m in store.iter_messages("long")] == [m["id"] for m in sent]
        for limit in (1, 2, 3, 7, 20, 50):
            seen, before = [], None
            while True:
                page, before = store.list_messages("long", limit=limit, before=before)
                assert len(page) <= limit
                seen[:0] = page
                if before is None:
                    break
            assert [m["id"] for m in seen] == [m["id"] for m in sent], limit
    finally:
        store.close()
