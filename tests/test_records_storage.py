"""The TinyDB backend's per-user index of health records: in step with the file through every
kind of write, a failed write, and a reopen. (The contract itself is in storage_contract.py.)"""

import json
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import plugins.storage_tinydb as backend  # noqa: E402
from plugins.storage_tinydb import TinyDBStorage  # noqa: E402
from storage_contract import at, ids, make_record, make_user  # noqa: E402


@pytest.fixture
def folder(tmp_path):
    return tmp_path / "data"


@pytest.fixture
def storage(folder):
    storage = TinyDBStorage.open(folder)
    yield storage
    storage.close()


def on_disk(folder, user_id) -> list[str]:
    """The user's record ids as records.json holds them, newest first."""
    records = json.loads((folder / "records.json").read_text())["records"].values()
    mine = [r for r in records if r["user_id"] == user_id]
    return ids(sorted(mine, key=lambda r: (r["recorded_at"], r["created_at"], r["id"]), reverse=True))


def test_every_write_keeps_the_index_and_the_file_alike(storage, folder):
    alice = storage.create_user(make_user("alice"))
    bob = storage.create_user(make_user("bob"))
    kept = storage.add_record(make_record(alice["id"], recorded_at=at(1)))
    gone = storage.add_record(make_record(alice["id"], recorded_at=at(2)))
    storage.put_records([make_record(alice["id"], recorded_at=at(n), client_id=f"c{n}") for n in range(3, 6)]
                        + [make_record(bob["id"], recorded_at=at(9))])
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

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(backend, "atomic_write", disk_full)
    with pytest.raises(OSError):
        storage.put_records([make_record(user["id"], client_id="new"), make_record(user["id"], client_id="old", value=1)])
    with pytest.raises(OSError):
        storage.add_record(make_record(user["id"]))
    monkeypatch.undo()
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
