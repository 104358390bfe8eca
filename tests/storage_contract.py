"""The storage contract as tests: every backend runs all of these.

A backend's test file subclasses `StorageContract` and supplies one fixture, ``storage_factory``:
a callable that opens the backend on one location that starts empty; calling it again (after
``close()``) opens the same data, which is how persistence is tested::

    class TestMyBackend(StorageContract):
        @pytest.fixture
        def storage_factory(self, tmp_path):
            return lambda: MyStorage.open(tmp_path / "data")

The tests ask only what the `Storage` docstrings in wellmate.py promise, plus a choice that the
docstrings leave open and routes rely on: a cursor that the backend did not make raises ValueError.
"""

import sys
import threading
from datetime import datetime, timedelta, timezone

import pytest

from wellmate import Conflict, new_id, now_iso

BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)


def at(seconds: float) -> str:
    """A fixed time, ``seconds`` after BASE, in the stored form."""
    return now_iso(BASE + timedelta(seconds=seconds))


def make_user(username="alice", **extra):
    return {"id": new_id(), "username": username, "password_hash": "x", "full_name": (username or "").title(),
            "role": "user", "settings": {"timezone": "Asia/Shanghai"}, "disabled": False,
            "created_at": now_iso(), **extra}


def make_message(text, role="user", **extra):
    return {"id": new_id(), "role": role, "content": text, "created_at": now_iso(), **extra}


def make_record(user_id, type="weight", value=70.5, recorded_at=None, **extra):
    return {"id": new_id(), "user_id": user_id, "type": type, "value": value, "unit": "kg",
            "recorded_at": recorded_at or now_iso(), "note": "", "created_at": now_iso(), **extra}


def make_reminder(user_id, next_fire_at=None, **extra):
    return {"id": new_id(), "user_id": user_id, "title": "water", "rule": {"kind": "daily", "at": "09:00"},
            "timezone": "Asia/Shanghai", "next_fire_at": next_fire_at, "created_at": now_iso(), **extra}


def make_delivery(reminder, channel="inapp", status="sent", **extra):
    return {"id": new_id(), "reminder_id": reminder["id"], "user_id": reminder["user_id"],
            "fire_id": f"{reminder['id']}@{at(0)}", "channel": channel, "status": status,
            "detail": "", "created_at": now_iso(), **extra}


def make_token(user_id, family=None, expires_at=None):
    return {"hash": new_id(), "user_id": user_id, "family": family or new_id(), "created_at": now_iso(),
            "expires_at": expires_at or now_iso(datetime.now(timezone.utc) + timedelta(days=30)), "used": False}


def assert_has(got: dict, expected: dict):
    """``got`` holds every key of ``expected`` with the same value (a backend may add keys)."""
    assert got is not None
    assert {key: got.get(key) for key in expected} == expected


def walk(list_page, limit, **kwargs):
    """Every page of a list method, following the cursors; returns the pages."""
    pages, before = [], None
    while True:
        items, before = list_page(limit=limit, before=before, **kwargs)
        assert len(items) <= limit
        pages.append(items)
        if before is None:
            return pages
        assert isinstance(before, str) and items
        assert len(pages) < 10_000, "the cursors never end"


def counts(storage) -> dict:
    return {name: storage.count(name) for name in ("users", "records", "reminders")}


def ids(items):
    return [item["id"] for item in items]


def run_threads(count, target):
    """Run ``target(n)`` in ``count`` threads that start together; re-raise the first error.
    Threads switch as often as CPython allows, so that a missing lock shows."""
    barrier = threading.Barrier(count)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    errors = []

    def run(n):
        try:
            barrier.wait()
            target(n)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    if errors:
        raise errors[0]


class StorageContract:
    @pytest.fixture
    def storage(self, storage_factory):
        storage = storage_factory()
        yield storage
        storage.close()

    # -- users ---------------------------------------------------------------------------------
    def test_create_and_get_user(self, storage):
        user = make_user("alice", age=41, wx_openid=None)
        assert_has(storage.create_user(user), user)
        assert_has(storage.get_user(user["id"]), user)
        assert storage.get_user("nobody") is None

    def test_returned_users_are_copies(self, storage):
        user = make_user("alice")
        storage.create_user(user)
        user["settings"]["timezone"] = "changed by the caller"
        got = storage.get_user(user["id"])
        assert got["settings"] == {"timezone": "Asia/Shanghai"}
        got["settings"]["timezone"] = "changed again"
        got["full_name"] = "changed"
        again = storage.get_user(user["id"])
        assert again["settings"] == {"timezone": "Asia/Shanghai"} and again["full_name"] == "Alice"

    def test_username_is_unique_case_insensitively(self, storage):
        storage.create_user(make_user("Alice"))
        for name in ("Alice", "alice", "ALICE"):
            with pytest.raises(Conflict):
                storage.create_user(make_user(name))
        storage.create_user(make_user("bob"))
        assert storage.count("users") == 2

    def test_users_without_username_do_not_conflict(self, storage):
        first = storage.create_user(make_user(username=None, wx_openid="o-1"))
        second = storage.create_user(make_user(username=None, wx_openid="o-2"))
        assert storage.find_user("wx_openid", "o-2")["id"] == second["id"]
        assert storage.find_user("wx_openid", "o-1")["id"] == first["id"]

    def test_find_user(self, storage):
        alice = storage.create_user(make_user("Alice", wx_openid="openid-A"))
        storage.create_user(make_user("bob", wx_openid="openid-B"))
        assert storage.find_user("username", "alice")["id"] == alice["id"]
        assert storage.find_user("username", "ALICE")["id"] == alice["id"]
        assert storage.find_user("wx_openid", "openid-A")["id"] == alice["id"]
        assert storage.find_user("wx_openid", "OPENID-A") is None  # other fields: exact
        assert storage.find_user("username", "carol") is None
        assert storage.find_user("wx_openid", "nope") is None

    def test_update_user(self, storage):
        user = storage.create_user(make_user("alice"))
        updated = storage.update_user(user["id"], {"full_name": "Alice Liddell", "age": 30,
                                                   "settings": {"timezone": "UTC"}})
        assert updated["full_name"] == "Alice Liddell" and updated["age"] == 30
        assert updated["username"] == "alice" and updated["role"] == "user"  # merged, not replaced
        assert_has(storage.get_user(user["id"]), {"full_name": "Alice Liddell", "age": 30,
                                                  "settings": {"timezone": "UTC"}})
        assert storage.update_user("nobody", {"age": 1}) is None

    def test_update_username_conflict(self, storage):
        alice = storage.create_user(make_user("alice"))
        storage.create_user(make_user("bob"))
        with pytest.raises(Conflict):
            storage.update_user(alice["id"], {"username": "BOB"})
        assert storage.get_user(alice["id"])["username"] == "alice"
        assert storage.update_user(alice["id"], {"username": "Alice"})["username"] == "Alice"  # own name
        assert storage.update_user(alice["id"], {"username": "carol"})["username"] == "carol"
        assert storage.find_user("username", "alice") is None
        storage.create_user(make_user("alice"))  # the old name is free again

    def test_list_users_pages_newest_first(self, storage):
        made = []
        for n in range(11):  # pairs of users created at the same moment: ties break on id
            made.append(storage.create_user(make_user(f"user{n}", created_at=at(n // 2))))
        expected = sorted(made, key=lambda u: (u["created_at"], u["id"]), reverse=True)
        pages = walk(storage.list_users, limit=3)
        assert [len(p) for p in pages] == [3, 3, 3, 2]
        assert [u["id"] for p in pages for u in p] == ids(expected)
        items, cursor = storage.list_users(limit=50)
        assert cursor is None and ids(items) == ids(expected)

    def test_empty_lists(self, storage):
        assert storage.list_users() == ([], None)
        assert storage.list_records("nobody") == ([], None)
        assert storage.list_reminders("nobody") == ([], None)
        assert storage.due_reminders(now_iso()) == []

    def test_bad_cursor_is_a_value_error(self, storage):
        user = storage.create_user(make_user("alice"))
        session = {"id": new_id()}
        storage.append_message(session["id"], make_message("hi"))
        with pytest.raises(ValueError):
            storage.list_users(before="not-a-cursor")
        with pytest.raises(ValueError):
            storage.list_records(user["id"], before="not-a-cursor")
        with pytest.raises(ValueError):
            storage.list_messages(session["id"], before="not-a-cursor")

    # -- refresh tokens --------------------------------------------------------------------
    def test_refresh_token_use_and_reuse(self, storage):
        user = storage.create_user(make_user("alice"))
        token = make_token(user["id"])
        storage.add_refresh_token(token)
        first = storage.use_refresh_token(token["hash"])
        assert_has(first, {**token, "used": False})
        second = storage.use_refresh_token(token["hash"])
        assert_has(second, {**token, "used": True})
        assert storage.use_refresh_token("unknown") is None

    def test_revoke_refresh_tokens(self, storage):
        alice = storage.create_user(make_user("alice"))
        bob = storage.create_user(make_user("bob"))
        family = new_id()
        a1, a2 = make_token(alice["id"], family), make_token(alice["id"], family)
        a3 = make_token(alice["id"])
        b1 = make_token(bob["id"])
        for token in (a1, a2, a3, b1):
            storage.add_refresh_token(token)
        assert storage.revoke_refresh_tokens(family=family) == 2
        assert storage.use_refresh_token(a1["hash"]) is None
        assert storage.use_refresh_token(a2["hash"]) is None
        assert storage.revoke_refresh_tokens(family=family) == 0
        assert storage.revoke_refresh_tokens(user_id=alice["id"]) == 1
        assert storage.use_refresh_token(a3["hash"]) is None
        assert storage.use_refresh_token(b1["hash"])["used"] is False  # bob's untouched

    def test_concurrent_token_use_has_one_winner(self, storage):
        user = storage.create_user(make_user("alice"))
        for _ in range(100):  # other tokens around make the work of a use longer, and a race likelier
            storage.add_refresh_token(make_token(user["id"]))
        for _ in range(20):
            token = make_token(user["id"])
            storage.add_refresh_token(token)
            seen = []
            run_threads(8, lambda n: seen.append(storage.use_refresh_token(token["hash"])["used"]))
            assert sorted(seen) == [False] + [True] * 7

    # -- messages --------------------------------------------------------------------------
    def test_append_and_list_messages(self, storage):
        session = {"id": new_id()}
        sent = [make_message("hello"), make_message("hi! how did you sleep?", role="assistant", emotion="calm"),
                make_message("badly\nvery badly \u2028 \"quoted\" 你好")]
        for message in sent:
            assert_has(storage.append_message(session["id"], message), message)
        items, cursor = storage.list_messages(session["id"])
        assert cursor is None
        assert ids(items) == ids(sent)
        for got, message in zip(items, sent):
            assert_has(got, message)

    def test_message_paging_walks_every_message_once(self, storage):
        session = {"id": new_id()}
        sent = [storage.append_message(session["id"], make_message(f"m{n}" * (n % 7 + 1))) for n in range(53)]
        newest, cursor = storage.list_messages(session["id"], limit=10)
        assert ids(newest) == ids(sent[-10:]) and cursor is not None  # the newest, oldest first
        for limit in (1, 7, 10, 53, 100):
            pages = walk(storage.list_messages, limit=limit, session_id=session["id"])
            assert all(len(p) == limit for p in pages[:-1])
            in_order = [m for page in reversed(pages) for m in page]
            assert ids(in_order) == ids(sent), f"limit {limit}"

    def test_messages_unknown_log(self, storage):
        assert storage.list_messages("no-such-session") == ([], None)
        assert list(storage.iter_messages("no-such-session")) == []
        assert storage.delete_messages("no-such-session") is False
        storage.sync_messages("no-such-session")  # nothing to do, and no error

    def test_message_appended_not_yet_durable_is_read_like_any_other(self, storage_factory):
        storage = storage_factory()
        session = {"id": new_id()}
        asked = storage.append_message(session["id"], make_message("how do I sleep better?"), durable=False)
        assert ids(storage.list_messages(session["id"])[0]) == [asked["id"]]
        answer = storage.append_message(session["id"], make_message("a fixed bedtime", role="assistant"))
        storage.sync_messages(session["id"])  # already durable: a no-op
        late = storage.append_message(session["id"], make_message("thanks"), durable=False)
        storage.close()  # closing makes it durable too

        storage = storage_factory()
        try:
            assert ids(storage.list_messages(session["id"])[0]) == ids([asked, answer, late])
        finally:
            storage.close()

    def test_messages_of_sessions_are_separate(self, storage):
        one, two = {"id": new_id()}, {"id": new_id()}
        a = storage.append_message(one["id"], make_message("a"))
        b = storage.append_message(two["id"], make_message("b"))
        assert ids(storage.list_messages(one["id"])[0]) == [a["id"]]
        assert ids(storage.list_messages(two["id"])[0]) == [b["id"]]

    # -- health records --------------------------------------------------------------------
    def test_record_crud(self, storage):
        user = storage.create_user(make_user("alice"))
        record = make_record(user["id"], note="after run")
        assert_has(storage.add_record(record), record)
        assert_has(storage.get_record(record["id"]), record)
        assert storage.delete_record(record["id"]) is True
        assert storage.get_record(record["id"]) is None
        assert storage.delete_record(record["id"]) is False

    def test_list_records_order_filters_and_paging(self, storage):
        alice = storage.create_user(make_user("alice"))
        bob = storage.create_user(make_user("bob"))
        made = []
        for n in range(24):
            kind = "weight" if n % 3 else "steps"
            # recorded_at ties (n // 2), and created_at ties inside them (n // 4): id decides last
            made.append(storage.add_record(make_record(alice["id"], type=kind, value=n, recorded_at=at(n // 2),
                                                       created_at=at(1000 + n // 4))))
        storage.add_record(make_record(bob["id"], recorded_at=at(5)))

        def expected(keep):
            chosen = [r for r in made if keep(r)]
            return ids(sorted(chosen, key=lambda r: (r["recorded_at"], r["created_at"], r["id"]), reverse=True))

        everything, cursor = storage.list_records(alice["id"])
        assert cursor is None and ids(everything) == expected(lambda r: True)
        assert ids(storage.list_records(alice["id"], type="steps")[0]) == expected(lambda r: r["type"] == "steps")
        window = storage.list_records(alice["id"], start=at(3), end=at(7))[0]
        assert ids(window) == expected(lambda r: at(3) <= r["recorded_at"] < at(7))
        assert {r["recorded_at"] for r in window} == {at(3), at(4), at(5), at(6)}  # end is exclusive
        both = storage.list_records(alice["id"], type="weight", start=at(6))[0]
        assert ids(both) == expected(lambda r: r["type"] == "weight" and r["recorded_at"] >= at(6))
        assert ids(storage.list_records(alice["id"], end=at(1))[0]) == expected(lambda r: r["recorded_at"] < at(1))
        pages = walk(storage.list_records, limit=5, user_id=alice["id"], type="weight", end=at(11))
        assert [r["id"] for p in pages for r in p] == expected(lambda r: r["type"] == "weight" and r["recorded_at"] < at(11))
        assert all(len(p) == 5 for p in pages[:-1])

    def test_put_records_is_idempotent_by_client_id(self, storage):
        alice = storage.create_user(make_user("alice"))
        bob = storage.create_user(make_user("bob"))

        def batch(user_id, changes=None):  # a sync as a client sends it: fresh ids every time
            return [make_record(user_id, **{"type": "steps", "value": 1000 * day, "client_id": f"werun:{day}",
                                            "recorded_at": at(day * 86400), **(changes or {}).get(day, {})})
                    for day in range(1, 4)]

        first = storage.put_records(batch(alice["id"]) + [make_record(alice["id"], note="no client id")])
        assert [outcome for outcome, _ in first] == ["created"] * 4
        for (_, stored), sent in zip(first, batch(alice["id"])):
            assert_has(stored, {**sent, "id": stored["id"], "created_at": stored["created_at"]})
        again = storage.put_records(batch(alice["id"]))
        assert [outcome for outcome, _ in again] == ["unchanged"] * 3
        assert [r["id"] for _, r in again] == [r["id"] for _, r in first[:3]]
        # A later sync of the same day with a bigger count updates the record in place.
        later = storage.put_records(batch(alice["id"], {2: {"value": 2500}}))
        assert [outcome for outcome, _ in later] == ["unchanged", "updated", "unchanged"]
        assert_has(storage.get_record(first[1][1]["id"]), {"value": 2500, "client_id": "werun:2",
                                                          "created_at": first[1][1]["created_at"]})
        assert len(storage.list_records(alice["id"])[0]) == 4
        # Client ids are per user.
        assert [outcome for outcome, _ in storage.put_records(batch(bob["id"]))] == ["created"] * 3
        assert len(storage.list_records(bob["id"])[0]) == 3
        # A deleted record's client id is free again.
        storage.delete_record(first[0][1]["id"])
        assert [outcome for outcome, _ in storage.put_records(batch(alice["id"])[:1])] == ["created"]
        assert storage.put_records([]) == []

    def test_put_records_same_client_id_twice_in_one_call(self, storage):
        user = storage.create_user(make_user("alice"))
        one = make_record(user["id"], value=1, client_id="c")
        two = make_record(user["id"], value=2, client_id="c")
        results = storage.put_records([one, two])
        assert [outcome for outcome, _ in results] == ["created", "updated"]
        [stored], _ = storage.list_records(user["id"])
        assert stored["value"] == 2 and stored["id"] == one["id"]

    def test_put_records_with_a_taken_id_stores_nothing(self, storage):
        user = storage.create_user(make_user("alice"))
        taken = storage.add_record(make_record(user["id"]))
        with pytest.raises(Conflict):
            storage.put_records([make_record(user["id"], client_id="new"), {**make_record(user["id"]), "id": taken["id"]}])
        assert ids(storage.list_records(user["id"])[0]) == [taken["id"]]

    def test_put_records_refuses_a_client_id_of_another_type(self, storage):
        user = storage.create_user(make_user("alice"))
        [(_, steps)] = storage.put_records([make_record(user["id"], type="steps", value=8000, client_id="c1")])
        for attempt in ([make_record(user["id"], type="weight", value=70, client_id="c1")],
                        [make_record(user["id"], client_id="new"), make_record(user["id"], type="weight", client_id="c1")],
                        [make_record(user["id"], type="sleep", client_id="c2"), make_record(user["id"], type="weight", client_id="c2")]):
            with pytest.raises(Conflict) as refused:
                storage.put_records(attempt)
            assert refused.value.details["stored_type"] in ("steps", "sleep")
            assert refused.value.details["client_id"] in ("c1", "c2")
            assert storage.list_records(user["id"])[0] == [steps]  # nothing stored, the steps record kept
        assert storage.count_records(user["id"]) == 1
        # The same client_id for another user's record of any type is theirs.
        bob = storage.create_user(make_user("bob"))
        assert storage.put_records([make_record(bob["id"], type="weight", client_id="c1")])[0][0] == "created"
        assert (storage.count_records(bob["id"]), storage.count_records("nobody")) == (1, 0)

    def test_concurrent_put_records_store_each_once(self, storage):
        user = storage.create_user(make_user("alice"))
        for n in range(200):  # other records around make a put longer, and a race likelier
            storage.add_record(make_record(user["id"], value=n))
        run_threads(8, lambda n: storage.put_records(
            [make_record(user["id"], type="steps", value=day, client_id=f"day{day}") for day in range(20)]))
        synced = storage.list_records(user["id"], type="steps", limit=1000)[0]
        assert sorted(r["value"] for r in synced) == list(range(20))

    def test_put_records_survive_reopen(self, storage_factory):
        storage = storage_factory()
        user = storage.create_user(make_user("alice"))
        sent = [make_record(user["id"], value=n, client_id=f"c{n}") for n in range(5)]
        stored = [r for _, r in storage.put_records(sent)]
        storage.close()
        storage = storage_factory()
        try:
            assert sorted(ids(storage.list_records(user["id"])[0])) == sorted(ids(stored))
            again = storage.put_records([{**r, "id": new_id()} for r in sent])
            assert [outcome for outcome, _ in again] == ["unchanged"] * 5
        finally:
            storage.close()

    # -- reminders -------------------------------------------------------------------------
    def test_reminder_crud(self, storage):
        user = storage.create_user(make_user("alice"))
        reminder = make_reminder(user["id"], next_fire_at=at(60))
        assert_has(storage.add_reminder(reminder), reminder)
        assert_has(storage.get_reminder(reminder["id"]), reminder)
        updated = storage.update_reminder(reminder["id"], {"next_fire_at": at(120), "last_fired_at": at(60)})
        assert_has(updated, {**reminder, "next_fire_at": at(120), "last_fired_at": at(60)})
        assert_has(storage.get_reminder(reminder["id"]), {"next_fire_at": at(120), "title": "water"})
        assert storage.update_reminder("nope", {"title": "x"}) is None
        assert storage.delete_reminder(reminder["id"]) is True
        assert storage.get_reminder(reminder["id"]) is None
        assert storage.delete_reminder(reminder["id"]) is False

    def test_list_reminders_paging(self, storage):
        alice = storage.create_user(make_user("alice"))
        bob = storage.create_user(make_user("bob"))
        made = [storage.add_reminder(make_reminder(alice["id"], created_at=at(n // 2))) for n in range(7)]
        storage.add_reminder(make_reminder(bob["id"]))
        expected = ids(sorted(made, key=lambda r: (r["created_at"], r["id"]), reverse=True))
        pages = walk(storage.list_reminders, limit=2, user_id=alice["id"])
        assert [r["id"] for p in pages for r in p] == expected

    def test_due_reminders_earliest_first(self, storage):
        alice = storage.create_user(make_user("alice"))
        bob = storage.create_user(make_user("bob"))
        r5 = storage.add_reminder(make_reminder(alice["id"], next_fire_at=at(5)))
        r1 = storage.add_reminder(make_reminder(bob["id"], next_fire_at=at(1)))
        storage.add_reminder(make_reminder(alice["id"], next_fire_at=None))  # finished: never due
        r3 = storage.add_reminder(make_reminder(alice["id"], next_fire_at=at(3)))
        r9 = storage.add_reminder(make_reminder(bob["id"], next_fire_at=at(9)))
        assert ids(storage.due_reminders(at(0))) == []
        assert ids(storage.due_reminders(at(5))) == [r1["id"], r3["id"], r5["id"]]  # <= now
        storage.update_reminder(r1["id"], {"next_fire_at": at(7)})
        storage.update_reminder(r3["id"], {"next_fire_at": None})
        assert ids(storage.due_reminders(at(8))) == [r5["id"], r1["id"]]
        assert ids(storage.due_reminders(at(100))) == [r5["id"], r1["id"], r9["id"]]

    def test_next_fire_at_is_the_earliest_waiting(self, storage):
        alice = storage.create_user(make_user("alice"))
        assert storage.next_fire_at() is None
        storage.add_reminder(make_reminder(alice["id"], next_fire_at=None))
        assert storage.next_fire_at() is None
        r9 = storage.add_reminder(make_reminder(alice["id"], next_fire_at=at(9)))
        r4 = storage.add_reminder(make_reminder(alice["id"], next_fire_at=at(4)))
        assert storage.next_fire_at() == at(4)
        storage.update_reminder(r4["id"], {"next_fire_at": None})
        assert storage.next_fire_at() == at(9)
        storage.delete_reminder(r9["id"])
        assert storage.next_fire_at() is None

    # -- reminder deliveries ---------------------------------------------------------------
    def test_deliveries_page_newest_first_per_reminder(self, storage):
        alice = storage.create_user(make_user("alice"))
        water = storage.add_reminder(make_reminder(alice["id"]))
        pills = storage.add_reminder(make_reminder(alice["id"]))
        made = [storage.add_delivery(make_delivery(water, created_at=at(n // 2))) for n in range(7)]
        other = storage.add_delivery(make_delivery(pills, channel="webhook", status="failed"))
        assert_has(storage.list_deliveries(pills["id"])[0][0], other)
        expected = ids(sorted(made, key=lambda d: (d["created_at"], d["id"]), reverse=True))
        pages = walk(storage.list_deliveries, limit=3, reminder_id=water["id"])
        assert [d["id"] for p in pages for d in p] == expected
        assert storage.list_deliveries("nope") == ([], None)

    def test_deliveries_keep_only_the_newest(self, storage):
        alice = storage.create_user(make_user("alice"))
        water = storage.add_reminder(make_reminder(alice["id"]))
        pills = storage.add_reminder(make_reminder(alice["id"]))
        pill_delivery = storage.add_delivery(make_delivery(pills, created_at=at(0)))
        for n in range(6):
            storage.add_delivery(make_delivery(water, created_at=at(10 + n)), keep=4)
        kept, _ = storage.list_deliveries(water["id"])
        assert [d["created_at"] for d in kept] == [at(15), at(14), at(13), at(12)]
        assert ids(storage.list_deliveries(pills["id"])[0]) == [pill_delivery["id"]]  # another reminder's stay

    def test_deleting_a_reminder_deletes_its_deliveries(self, storage):
        alice = storage.create_user(make_user("alice"))
        water = storage.add_reminder(make_reminder(alice["id"]))
        pills = storage.add_reminder(make_reminder(alice["id"]))
        storage.add_delivery(make_delivery(water))
        kept = storage.add_delivery(make_delivery(pills))
        assert storage.delete_reminder(water["id"]) is True
        assert storage.list_deliveries(water["id"]) == ([], None)
        assert ids(storage.list_deliveries(pills["id"])[0]) == [kept["id"]]

    def test_deliveries_persist(self, storage_factory):
        storage = storage_factory()
        alice = storage.create_user(make_user("alice"))
        water = storage.add_reminder(make_reminder(alice["id"], next_fire_at=at(30)))
        delivery = storage.add_delivery(make_delivery(water, detail="会话 s1"))
        storage.close()
        storage = storage_factory()
        try:
            assert_has(storage.list_deliveries(water["id"])[0][0], delivery)
            assert storage.next_fire_at() == at(30)
        finally:
            storage.close()

    # -- delete_user cascade -----------------------------------------------------------------
    def test_delete_user_removes_everything_of_theirs(self, storage):
        def populate(name):
            user = storage.create_user(make_user(name))
            token = make_token(user["id"])
            storage.add_refresh_token(token)
            session = {"id": new_id()}
            record = storage.add_record(make_record(user["id"]))
            reminder = storage.add_reminder(make_reminder(user["id"], next_fire_at=at(1)))
            storage.add_delivery(make_delivery(reminder))
            return user, token, session, record, reminder

        alice, a_token, a_session, a_record, a_reminder = populate("alice")
        bob, b_token, b_session, b_record, b_reminder = populate("bob")
        assert storage.delete_user(alice["id"]) is True
        assert storage.get_user(alice["id"]) is None
        assert storage.find_user("username", "alice") is None
        assert storage.use_refresh_token(a_token["hash"]) is None
        assert storage.get_record(a_record["id"]) is None
        assert storage.list_records(alice["id"]) == ([], None)
        assert storage.get_reminder(a_reminder["id"]) is None
        assert storage.list_deliveries(a_reminder["id"]) == ([], None)
        assert len(storage.list_deliveries(b_reminder["id"])[0]) == 1
        assert ids(storage.due_reminders(at(2))) == [b_reminder["id"]]
        assert counts(storage) == {"users": 1, "records": 1, "reminders": 1}
        # Bob is untouched.
        assert storage.get_user(bob["id"])["username"] == "bob"
        assert storage.use_refresh_token(b_token["hash"])["used"] is False
        assert storage.get_record(b_record["id"]) is not None
        assert storage.delete_user(alice["id"]) is False
        storage.create_user(make_user("alice"))  # the name is free

    # -- service ---------------------------------------------------------------------------
    def test_stats_and_ping(self, storage):
        storage.ping()
        assert counts(storage) == {"users": 0, "records": 0, "reminders": 0}
        user = storage.create_user(make_user("alice"))
        storage.add_record(make_record(user["id"]))
        storage.add_reminder(make_reminder(user["id"]))
        assert counts(storage) == {"users": 1, "records": 1, "reminders": 1}
        storage.ping()

    # -- threads ---------------------------------------------------------------------------
    def test_concurrent_mixed_writes(self, storage_factory):
        storage = storage_factory()
        try:
            self.write_from_threads(storage)
            self.check_writes_from_threads(storage)
            storage.close()
            storage = storage_factory()  # all of it reached the disk, not only memory
            self.check_writes_from_threads(storage)
        finally:
            storage.close()

    def check_writes_from_threads(self, storage):
        owner = storage.find_user("username", "owner")
        assert counts(storage) == {"users": 1 + 8 + 80, "records": 80, "reminders": 8}
        records = storage.list_records(owner["id"], limit=1000)[0]
        assert sorted(r["value"] for r in records) == sorted(n * 1000 + i for n in range(8) for i in range(0, 50, 5))
        messages = storage.list_messages("shared", limit=1000)[0]
        assert len(set(ids(messages))) == 80
        for n in range(8):  # each thread's messages are in the order it appended them
            assert [m["content"] for m in messages if m["content"].startswith(f"{n}:")] == \
                [f"{n}:{i}" for i in range(1, 50, 5)]
            user = storage.find_user("username", f"thread{n}")
            assert ids(storage.list_reminders(user["id"])[0]) and \
                storage.list_reminders(user["id"])[0][0]["count"] == 48
            assert len(storage.list_messages(f"own{n}", limit=100)[0]) == 10
        assert len({u["id"] for page in walk(storage.list_users, limit=30) for u in page}) == 89

    def write_from_threads(self, storage):
        """8 threads x 50 writes of every kind, some to shared data, some to their own."""
        owner = storage.create_user(make_user("owner"))
        shared = {"id": "shared"}
        reminders = {}

        def work(n):
            user = storage.create_user(make_user(f"thread{n}"))
            own = {"id": f"own{n}"}
            reminders[n] = storage.add_reminder(make_reminder(user["id"], count=-1))["id"]
            for i in range(50):
                op = i % 5
                if op == 0:
                    storage.add_record(make_record(owner["id"], value=n * 1000 + i))
                elif op == 1:
                    storage.append_message(shared["id"], make_message(f"{n}:{i}"))
                elif op == 2:
                    storage.append_message(own["id"], make_message(f"{n}:{i}"))
                elif op == 3:
                    storage.update_reminder(reminders[n], {"count": i})
                else:
                    storage.create_user(make_user(f"thread{n}-{i}"))

        run_threads(8, work)

    def test_concurrent_same_username_has_one_winner(self, storage):
        for n in range(100):
            storage.create_user(make_user(f"someone{n}"))
        won, lost = [], []

        def claim(n):
            try:
                won.append(storage.create_user(make_user("Popular" if n % 2 else "popular")))
            except Conflict:
                lost.append(n)

        for attempt in range(5):
            won.clear(), lost.clear()
            run_threads(8, claim)
            assert len(won) == 1 and len(lost) == 7
            assert storage.delete_user(won[0]["id"])
        assert storage.count("users") == 100

    # -- persistence -----------------------------------------------------------------------
    def test_data_survives_close_and_reopen(self, storage_factory):
        storage = storage_factory()
        user = storage.create_user(make_user("alice", wx_openid="openid-A"))
        storage.update_user(user["id"], {"age": 33})
        used, fresh = make_token(user["id"]), make_token(user["id"])
        storage.add_refresh_token(used)
        storage.add_refresh_token(fresh)
        storage.use_refresh_token(used["hash"])
        session = {"id": new_id()}
        sent = [storage.append_message(session["id"], make_message(f"m{n}", created_at=at(n + 1))) for n in range(30)]
        record = storage.add_record(make_record(user["id"]))
        reminder = storage.add_reminder(make_reminder(user["id"], next_fire_at=at(9)))
        gone = storage.add_record(make_record(user["id"]))
        storage.delete_record(gone["id"])
        stats = counts(storage)
        storage.close()

        storage = storage_factory()
        try:
            assert_has(storage.get_user(user["id"]), {**user, "age": 33})
            assert storage.find_user("username", "ALICE")["id"] == user["id"]
            assert storage.find_user("wx_openid", "openid-A")["id"] == user["id"]
            with pytest.raises(Conflict):
                storage.create_user(make_user("alice"))
            assert storage.use_refresh_token(used["hash"])["used"] is True
            assert storage.use_refresh_token(fresh["hash"])["used"] is False
            pages = walk(storage.list_messages, limit=7, session_id=session["id"])
            assert ids([m for page in reversed(pages) for m in page]) == ids(sent)
            assert_has(storage.get_record(record["id"]), record)
            assert storage.get_record(gone["id"]) is None
            assert ids(storage.due_reminders(at(10))) == [reminder["id"]]
            assert counts(storage) == stats
            more = storage.append_message(session["id"], make_message("after reopen", created_at=at(99)))
            assert storage.list_messages(session["id"], limit=1)[0][0]["id"] == more["id"]
        finally:
            storage.close()
