"""The storage contract as tests: every backend runs all of these.

A backend's test file subclasses `StorageContract` and supplies one fixture, ``storage_factory``:
a callable that opens the backend, with the `Collection`s given (None: those the built-in plugins
declare), on one location that starts empty; calling it again (after ``close()``) opens the same
data, which is how persistence is tested::

    class TestMyBackend(StorageContract):
        @pytest.fixture
        def storage_factory(self, tmp_path):
            return lambda collections=None: MyStorage.open(tmp_path / "data", collections)

The generic part (documents, find with cursors, upsert) is tested on collections of its own
(`COLLECTIONS`); the special operations (the message log), persistence, concurrency, `stats` and
`ping` on the collections the built-in plugins declare.

The tests ask only what the `Storage` docstrings in wellmate.py promise (and docs/plugins.md, "The
storage contract", spells out): among them, a cursor the backend did not make raises ValueError,
and a cursor is made of characters a URL carries as they are, since routes hand it to clients.
"""

import re
import sys
import threading
from datetime import datetime, timedelta, timezone

import pytest

from wellmate import Collection, Conflict, Index, new_id, now_iso

BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)


def at(seconds: float) -> str:
    """A fixed time, ``seconds`` after BASE, in the stored form."""
    return now_iso(BASE + timedelta(seconds=seconds))


def make_user(username="alice", **extra):
    return {"id": new_id(), "username": username, "password_hash": "x", "full_name": (username or "").title(),
            "role": "user", "settings": {"timezone": "Asia/Shanghai"}, "disabled": False,
            "created_at": now_iso(), **extra}


def make_session(user_id, agent="coach", **extra):
    return {"id": new_id(), "user_id": user_id, "agent": agent, "title": "chat", "created_at": now_iso(), **extra}


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


# The generic contract's own collections: notes by owner and time, by time alone, by kind (no
# order), with a unique slug per owner; counters with no index at all.
COLLECTIONS = [Collection("notes", indexes=[Index(("owner",), "at"), Index((), "at"), ("kind",)],
                          unique=[("owner", "slug")]),
               Collection("counters")]


def note(owner="alice", at_seconds=0, **extra):
    return {"id": new_id(), "owner": owner, "at": at(at_seconds), "kind": "plain", **extra}


def walk_find(store, collection, where=None, limit=3, **kwargs):
    """Every page of a find, following cursors; the ids in the order given."""
    seen, before = [], None
    while True:
        page, before = store.find(collection, where, limit=limit, before=before, **kwargs)
        assert len(page) <= limit
        seen += ids(page)
        if before is None:
            return seen


class StorageContract:
    @pytest.fixture
    def storage(self, storage_factory):
        storage = storage_factory()
        yield storage
        storage.close()

    @pytest.fixture
    def store(self, storage_factory):
        store = storage_factory(COLLECTIONS)
        yield store
        store.close()

    # -- the generic part: documents -------------------------------------------------------------
    def test_insert_and_get(self, store):
        doc = note(text="你好", nested={"list": [1, 2.5, None, True]})
        assert store.insert("notes", doc) == doc
        assert store.get("notes", doc["id"]) == doc
        assert store.get("notes", "missing") is None
        got = store.get("notes", doc["id"])
        got["text"] = "changed"  # a copy
        assert store.get("notes", doc["id"])["text"] == "你好"

    def test_insert_refuses_a_taken_id_or_unique_key(self, store):
        first = store.insert("notes", note(slug="a"))
        with pytest.raises(Conflict) as e:
            store.insert("notes", {**note(), "id": first["id"]})
        assert e.value.details["fields"] == ("id",)
        with pytest.raises(Conflict) as e:
            store.insert("notes", note(slug="a"))
        assert tuple(e.value.details["fields"]) == ("owner", "slug")
        store.insert("notes", note(owner="bob", slug="a"))  # another owner: another key
        store.insert("notes", note(slug=None))
        store.insert("notes", note(slug=None))  # a None field is not held to the key
        assert store.count("notes") == 4

    def test_put_replaces_whole(self, store):
        doc = store.insert("notes", note(slug="a", extra=1))
        replaced = {"id": doc["id"], "owner": "alice", "at": at(5), "kind": "plain", "slug": "b"}
        assert store.put("notes", replaced) == replaced
        assert store.get("notes", doc["id"]) == replaced  # extra is gone
        new = note(slug="c")
        store.put("notes", new)  # put also creates
        assert store.get("notes", new["id"]) == new
        with pytest.raises(Conflict):
            store.put("notes", {**new, "slug": "b"})
        assert store.get("notes", new["id"])["slug"] == "c"
        store.insert("notes", note(slug="a"))  # doc's old slug is free again

    def test_update_with_a_dict(self, store):
        doc = store.insert("notes", note(slug="a", text="x"))
        other = store.insert("notes", note(slug="b"))
        assert store.update("notes", doc["id"], {"text": "y"}) == {**doc, "text": "y"}
        assert store.get("notes", doc["id"])["text"] == "y"
        assert store.update("notes", "missing", {"text": "y"}) is None
        assert store.get("notes", "missing") is None
        with pytest.raises(Conflict):
            store.update("notes", other["id"], {"slug": "a"})
        assert store.get("notes", other["id"])["slug"] == "b"

    def test_update_with_a_function(self, store):
        def bump(doc):
            return {"id": "c1", "n": 1} if doc is None else {**doc, "n": doc["n"] + 1}
        assert store.update("counters", "c1", bump) == {"id": "c1", "n": 1}  # created
        assert store.update("counters", "c1", bump) == {"id": "c1", "n": 2}
        assert store.update("counters", "c1", lambda doc: None) == {"id": "c1", "n": 2}  # left as it is
        assert store.update("counters", "c2", lambda doc: None) is None
        assert store.get("counters", "c2") is None

        def fail(doc):
            raise RuntimeError("no")
        with pytest.raises(RuntimeError):
            store.update("counters", "c1", fail)
        assert store.get("counters", "c1") == {"id": "c1", "n": 2}
        with pytest.raises(ValueError):  # a function may not move the document
            store.update("counters", "c1", lambda doc: {**doc, "id": "c3"})
        assert store.get("counters", "c1") == {"id": "c1", "n": 2} and store.get("counters", "c3") is None

    def test_delete_and_delete_where(self, store):
        a1, a2 = store.insert("notes", note(kind="x")), store.insert("notes", note(kind="x"))
        b1 = store.insert("notes", note(kind="y", slug="s"))
        assert store.delete("notes", a1["id"]) is True
        assert store.delete("notes", a1["id"]) is False
        assert store.get("notes", a1["id"]) is None
        assert store.delete_where("notes", {"kind": "x"}) == 1
        assert store.delete_where("notes", {"kind": "x"}) == 0
        assert store.get("notes", a2["id"]) is None and store.get("notes", b1["id"]) == b1
        with pytest.raises(ValueError):
            store.delete_where("notes", {"text": "undeclared"})
        assert store.count("notes") == 1
        with pytest.raises(Conflict):
            store.insert("notes", note(slug="s"))
        assert store.delete("notes", b1["id"]) is True
        store.insert("notes", note(slug="s"))  # a deleted document's unique key is free again

    def test_documents_survive_reopen(self, storage_factory):
        store = storage_factory(COLLECTIONS)
        kept = store.insert("notes", note(slug="a"))
        quiet = store.insert("notes", note(slug="b"), durable=False)
        gone = store.insert("notes", note())
        store.update("counters", "c", lambda doc: {"id": "c", "n": 1}, durable=False)
        store.delete("notes", gone["id"])
        store.sync("notes")
        store.sync("counters")
        store.close()
        store = storage_factory(COLLECTIONS)
        try:
            assert store.get("notes", kept["id"]) == kept and store.get("notes", quiet["id"]) == quiet
            assert store.get("notes", gone["id"]) is None and store.get("counters", "c") == {"id": "c", "n": 1}
            assert store.count("notes") == 2 and store.count("notes", {"owner": "alice"}) == 2
            with pytest.raises(Conflict):  # the unique key is rebuilt too
                store.insert("notes", note(slug="a"))
        finally:
            store.close()

    # -- the generic part: find and count --------------------------------------------------------
    def test_find_by_fields_in_order_both_ways(self, store):
        docs = [store.insert("notes", note("alice" if n % 2 else "bob", n * 60)) for n in range(10)]
        alice = [d for d in docs if d["owner"] == "alice"]
        items, cursor = store.find("notes", {"owner": "alice"}, order="at", limit=50)
        assert ids(items) == ids(alice) and cursor is None
        items, _ = store.find("notes", {"owner": "alice"}, order="-at", limit=50)
        assert ids(items) == ids(alice)[::-1]
        assert ids(store.find("notes", order="-at", limit=50)[0]) == ids(docs)[::-1]
        assert store.find("notes", {"owner": "carol"}, order="at") == ([], None)
        assert sorted(ids(store.find("notes", {"kind": "plain"}, limit=50)[0])) == sorted(ids(docs))
        assert sorted(ids(store.find("notes", limit=50)[0])) == sorted(ids(docs))  # no where, no order: by id

    def test_find_with_start_and_end(self, store):
        docs = [store.insert("notes", note(at_seconds=n * 60)) for n in range(10)]
        store.insert("notes", {**note(), "at": None})  # without the field: out of any range
        items, _ = store.find("notes", {"owner": "alice"}, order="at", start=at(120), end=at(300), limit=50)
        assert ids(items) == ids(docs[2:5])  # start <= at < end
        items, _ = store.find("notes", {"owner": "alice"}, order="-at", start=at(120), end=at(300), limit=50)
        assert ids(items) == ids(docs[2:5])[::-1]
        assert ids(store.find("notes", order="at", start="", limit=50)[0]) == ids(docs)
        assert ids(store.find("notes", order="at", end=at(60), limit=50)[0]) == ids(docs[:1])
        assert walk_find(store, "notes", {"owner": "alice"}, 2, order="-at", start=at(60), end=at(480)) == \
            ids(docs[1:8])[::-1]

    def test_find_pages_with_ties_in_both_orders(self, store):
        # Twelve documents at four times: ties go by id, in the direction of the order.
        docs = [store.insert("notes", note(at_seconds=(n % 4) * 60)) for n in range(12)]
        ascending = [d["id"] for d in sorted(docs, key=lambda d: (d["at"], d["id"]))]
        for limit in (1, 2, 3, 5, 12, 50):
            assert walk_find(store, "notes", {"owner": "alice"}, limit, order="at") == ascending
            assert walk_find(store, "notes", {"owner": "alice"}, limit, order="-at") == ascending[::-1]
            assert walk_find(store, "notes", None, limit) == sorted(ascending)

    def test_find_pages_with_writes_between_pages(self, store):
        docs = [store.insert("notes", note(at_seconds=n * 60)) for n in range(9)]
        page, cursor = store.find("notes", {"owner": "alice"}, order="-at", limit=3)
        assert ids(page) == ids(docs[6:])[::-1]
        store.insert("notes", note(at_seconds=10_000))  # newer than the cursor: not on later pages
        store.delete("notes", docs[4]["id"])  # on the next page: gone from it
        store.update("notes", docs[1]["id"], {"text": "changed"})
        rest = []
        while cursor:
            page, cursor = store.find("notes", {"owner": "alice"}, order="-at", limit=3, before=cursor)
            rest += page
        assert ids(rest) == [docs[n]["id"] for n in (5, 3, 2, 1, 0)]
        assert rest[3]["text"] == "changed"

    def test_find_refuses_bad_limits_cursors_and_lookups(self, store):
        store.insert("notes", note())
        for limit in (0, -1, "5", 2.5, True, None):
            with pytest.raises(ValueError):
                store.find("notes", {"owner": "alice"}, order="at", limit=limit)
        for cursor in ("not-a-cursor", "", "eyJ4IjoxfQ", "!!!"):
            with pytest.raises(ValueError):
                store.find("notes", {"owner": "alice"}, order="at", before=cursor)
        for where, order in (({"text": "x"}, None), ({"owner": "alice"}, "slug"), ({"owner": "alice", "kind": "plain"}, "at"),
                             ({"kind": "plain"}, "at")):
            with pytest.raises(ValueError):
                store.find("notes", where, order=order)
        with pytest.raises(ValueError):  # a range needs an order
            store.find("notes", {"owner": "alice"}, start=at(0))
        with pytest.raises(ValueError):
            store.count("notes", {"text": "x"})
        for call in (lambda: store.get("undeclared", "x"), lambda: store.insert("undeclared", note()),
                     lambda: store.find("undeclared")):
            with pytest.raises(ValueError):
                call()
        with pytest.raises(ValueError):
            store.insert("notes", {"text": "no id"})

    def test_count(self, store):
        assert store.count("notes") == 0 and store.count("notes", {"owner": "alice"}) == 0
        docs = [store.insert("notes", note("alice" if n < 3 else "bob", kind="x" if n % 2 else "y")) for n in range(5)]
        assert store.count("notes") == 5
        assert store.count("notes", {"owner": "alice"}) == 3 and store.count("notes", {"kind": "x"}) == 2
        store.delete("notes", docs[0]["id"])
        store.update("notes", docs[1]["id"], {"owner": "bob"})
        assert store.count("notes", {"owner": "alice"}) == 1 and store.count("notes", {"owner": "bob"}) == 3

    # -- the generic part: upsert ----------------------------------------------------------------
    def test_upsert_outcomes(self, store):
        sent = [note(slug=f"s{n}", created_at=at(n), text="v1") for n in range(3)] + [note(text="no key")]
        first = store.upsert("notes", sent, key=("owner", "slug"))
        assert [outcome for outcome, _ in first] == ["created"] * 4
        assert [doc for _, doc in first] == sent
        again = [{**doc, "id": new_id(), "created_at": at(999)} for doc in sent[:3]]
        again[1]["text"] = "v2"
        second = store.upsert("notes", again + [note(slug="s9")], key=("owner", "slug"))
        assert [outcome for outcome, _ in second] == ["unchanged", "updated", "unchanged", "created"]
        # A match keeps its id and created_at.
        assert [doc["id"] for _, doc in second[:3]] == ids(sent[:3])
        assert store.get("notes", sent[1]["id"]) == {**sent[1], "text": "v2"}
        assert store.count("notes") == 5
        # The same key twice in one call: the second updates what the first stored.
        twice = store.upsert("notes", [note(slug="t", text="a"), note(slug="t", text="b")], key=("owner", "slug"))
        assert [outcome for outcome, _ in twice] == ["created", "updated"] and twice[0][1]["id"] == twice[1][1]["id"]
        assert store.count("notes") == 6 and store.get("notes", twice[0][1]["id"])["text"] == "b"

    def test_upsert_defaults_keep_the_stored_value(self, store):
        """A field of ``defaults`` a document leaves out: the stored one's value when it matches (a retry
        without its time keeps the time), the default when it is inserted; given, it is the document's."""
        def sent(**extra):
            doc = note(slug="s", created_at=at(0), **extra)
            del doc["at"]
            return doc

        [(outcome, first)] = store.upsert("notes", [sent()], key=("owner", "slug"), defaults={"at": at(1)})
        assert outcome == "created" and first["at"] == at(1)
        again = store.upsert("notes", [sent(), sent(text="v2")], key=("owner", "slug"), defaults={"at": at(2)})
        assert [(o, doc["at"]) for o, doc in again] == [("unchanged", at(1)), ("updated", at(1))]
        [(outcome, given)] = store.upsert("notes", [{**sent(text="v2"), "at": at(3)}], key=("owner", "slug"),
                                          defaults={"at": at(4)})
        assert outcome == "updated" and store.get("notes", first["id"])["at"] == at(3) == given["at"]

    def test_upsert_conflicts_store_nothing(self, store):
        stored = store.insert("notes", note(slug="a", kind="steps"))
        before = store.count("notes")
        with pytest.raises(Conflict) as e:
            store.upsert("notes", [note(slug="new"), note(slug="a", kind="weight")], key=("owner", "slug"), fixed=("kind",))
        assert e.value.details["key"] == {"owner": "alice", "slug": "a"}
        assert e.value.details["field"] == "kind" and e.value.details["stored"] == "steps"
        with pytest.raises(Conflict) as e:  # against an earlier document of the same call
            store.upsert("notes", [note(slug="b", kind="x"), note(slug="b", kind="y")], key=("owner", "slug"), fixed=("kind",))
        assert e.value.details["stored"] == "x"
        with pytest.raises(Conflict):  # an inserted id that is taken
            store.upsert("notes", [note(slug="c"), {**note(slug="d"), "id": stored["id"]}], key=("owner", "slug"))
        assert store.count("notes") == before and store.get("notes", stored["id"]) == stored
        with pytest.raises(ValueError):  # by a key that is not declared unique
            store.upsert("notes", [note()], key=("kind",))

    def test_cursors_go_into_a_url_as_they_are(self, store):
        """Routes hand cursors to clients as ``next`` and get them back as ``?before=``, so a cursor
        is letters, digits and -._~ only, whatever the ids and order values it marks (a JSON
        cursor with spaces passed every other test here and failed route tests with InvalidURL)."""
        odd, log = "名字 with spaces/&?=#+%", self.log(store)
        for n in range(5):
            store.insert("notes", note(owner=odd, id=f"{odd}{n}", at=f"2026-01-0{n + 1} 08:00 {odd}"))
            store.insert("notes", note(owner="numbers", at=n * 1.5))
            store.append_message(log, make_message(f"{odd} {n}"))
        cursors = []
        for where, order in (({"owner": odd}, "at"), ({"owner": odd}, "-at"), ({"owner": "numbers"}, "at"), (None, None)):
            cursor = True
            while cursor:
                _, cursor = store.find("notes", where, order=order, limit=1, before=None if cursor is True else cursor)
                cursors += [cursor] if cursor else []
        before = True
        while before:
            _, before = store.list_messages(log, limit=1, before=None if before is True else before)
            cursors += [before] if before else []
        assert len(cursors) >= 4 * 4 + 4
        unsafe = [c for c in cursors if not re.fullmatch(r"[A-Za-z0-9._~-]+", c)]
        assert not unsafe, f"cursors a URL does not carry as they are: {unsafe[:3]}"

    # -- the message log -------------------------------------------------------------------------
    def log(self, store) -> str:
        return new_id()  # a log is a chat session's, by its id: it starts empty

    def test_message_log(self, storage):
        log, other = self.log(storage), self.log(storage)
        assert storage.list_messages(log) == ([], None) and list(storage.iter_messages(log)) == []
        sent = [storage.append_message(log, make_message(f"m{n}", created_at=at(n))) for n in range(25)]
        storage.append_message(other, make_message("elsewhere"))
        assert [m["content"] for m in storage.iter_messages(log)] == [f"m{n}" for n in range(25)]
        assert list(storage.iter_messages(log)) == sent
        pages, before = [], None
        while True:
            page, before = storage.list_messages(log, limit=10, before=before)
            pages.append([m["content"] for m in page])
            if before is None:
                break
        assert pages == [[f"m{n}" for n in range(15, 25)], [f"m{n}" for n in range(5, 15)], [f"m{n}" for n in range(5)]]
        with pytest.raises(ValueError):
            storage.list_messages(log, before="not-a-cursor")
        assert storage.delete_messages(log) is True and storage.delete_messages(log) is False
        assert storage.list_messages(log) == ([], None) and list(storage.iter_messages(log)) == []
        assert [m["content"] for m in storage.iter_messages(other)] == ["elsewhere"]
        for bad in ("../x", "a/b", "", "x" * 129):
            with pytest.raises((ValueError, KeyError)):
                storage.append_message(bad, make_message("no"))

    def test_message_log_survives_reopen(self, storage_factory):
        storage = storage_factory()
        log = self.log(storage)
        storage.append_message(log, make_message("durable"))
        storage.append_message(log, make_message("quiet"), durable=False)
        storage.sync_messages(log)
        storage.close()
        storage = storage_factory()
        try:
            assert [m["content"] for m in storage.iter_messages(log)] == ["durable", "quiet"]
        finally:
            storage.close()

    # -- concurrency ----------------------------------------------------------------------------
    def test_two_threads_updating_a_counter_lose_nothing(self, store):
        def bump(doc):
            return {"id": "hits", "n": (doc or {"n": 0})["n"] + 1}
        run_threads(2, lambda n: [store.update("counters", "hits", bump) for _ in range(300)])
        assert store.get("counters", "hits") == {"id": "hits", "n": 600}

    def test_racing_unique_inserts_store_one(self, store):
        won = []

        def insert(n):
            try:
                won.append(store.insert("notes", note(slug="same", n=n)))
            except Conflict:
                pass
        run_threads(8, insert)
        assert len(won) == 1 and store.count("notes") == 1
        assert ids(store.find("notes", {"owner": "alice"}, order="at")[0]) == ids(won)

    def test_empty_lists(self, storage):
        assert storage.find("users", order="-created_at") == ([], None)
        assert storage.list_messages("nobody") == ([], None)

    def test_bad_cursor_is_a_value_error(self, storage):
        session = {"id": new_id()}
        storage.append_message(session["id"], make_message("hi"))
        with pytest.raises(ValueError):
            storage.list_messages(session["id"], before="not-a-cursor")

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

    # -- service ---------------------------------------------------------------------------
    def test_stats_and_ping(self, storage):
        storage.ping()
        assert isinstance(storage.stats(), dict)
        user = storage.insert("users", make_user("alice"))
        for n in range(3):
            storage.append_message("s1", make_message(str(n)))
        storage.insert("records", make_record(user["id"]))
        assert counts(storage) == {"users": 1, "records": 1, "reminders": 0}
        assert isinstance(storage.stats(), dict)
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
        users = {u["username"]: u for page in walk(storage.find, limit=30, collection="users", order="-created_at")
                 for u in page}
        owner = users["owner"]
        assert counts(storage) == {"users": 1 + 8 + 80, "records": 80, "reminders": 8}
        records = storage.find("records", {"user_id": owner["id"]}, order="recorded_at", limit=1000)[0]
        assert sorted(r["value"] for r in records) == sorted(n * 1000 + i for n in range(8) for i in range(0, 50, 5))
        messages = storage.list_messages("shared", limit=1000)[0]
        assert len(set(ids(messages))) == 80
        for n in range(8):  # each thread's messages are in the order it appended them
            assert [m["content"] for m in messages if m["content"].startswith(f"{n}:")] == \
                [f"{n}:{i}" for i in range(1, 50, 5)]
            user = users[f"thread{n}"]
            [reminder] = storage.find("reminders", {"user_id": user["id"]}, order="-created_at")[0]
            assert reminder["count"] == 48
            assert len(storage.list_messages(f"own{n}", limit=100)[0]) == 10
        assert len(users) == 89

    def write_from_threads(self, storage):
        """8 threads x 50 writes of every kind, some to shared data, some to their own."""
        owner = storage.insert("users", make_user("owner"))
        reminders = {}

        def work(n):
            user = storage.insert("users", make_user(f"thread{n}"))
            own = {"id": f"own{n}"}
            reminders[n] = storage.insert("reminders", make_reminder(user["id"], count=-1))["id"]
            for i in range(50):
                op = i % 5
                if op == 0:
                    storage.insert("records", make_record(owner["id"], value=n * 1000 + i))
                elif op == 1:
                    storage.append_message("shared", make_message(f"{n}:{i}"))
                elif op == 2:
                    storage.append_message(own["id"], make_message(f"{n}:{i}"))
                elif op == 3:
                    storage.update("reminders", reminders[n], {"count": i})
                else:
                    storage.insert("users", make_user(f"thread{n}-{i}"))

        run_threads(8, work)

    # -- persistence -----------------------------------------------------------------------
    def test_data_survives_close_and_reopen(self, storage_factory):
        storage = storage_factory()
        user = storage.insert("users", make_user("alice", username_key="alice", wx_openid="openid-A"))
        storage.update("users", user["id"], {"age": 33})
        session = {"id": new_id()}
        sent = [storage.append_message(session["id"], make_message(f"m{n}", created_at=at(n + 1))) for n in range(30)]
        record = storage.insert("records", make_record(user["id"]))
        reminder = storage.insert("reminders", make_reminder(user["id"], next_fire_at=at(9)))
        gone = storage.insert("records", make_record(user["id"]))
        storage.delete("records", gone["id"])
        before = counts(storage)
        storage.close()

        storage = storage_factory()
        try:
            assert_has(storage.get("users", user["id"]), {**user, "age": 33})
            assert ids(storage.find("users", {"wx_openid": "openid-A"})[0]) == [user["id"]]
            with pytest.raises(Conflict):
                storage.insert("users", make_user("alice", username_key="alice"))
            pages = walk(storage.list_messages, limit=7, session_id=session["id"])
            assert ids([m for page in reversed(pages) for m in page]) == ids(sent)
            assert_has(storage.get("records", record["id"]), record)
            assert storage.get("records", gone["id"]) is None
            assert ids(storage.find("reminders", order="next_fire_at", start="", end=at(10))[0]) == [reminder["id"]]
            assert counts(storage) == before
            more = storage.append_message(session["id"], make_message("after reopen", created_at=at(99)))
            assert storage.list_messages(session["id"], limit=1)[0][0]["id"] == more["id"]
        finally:
            storage.close()
