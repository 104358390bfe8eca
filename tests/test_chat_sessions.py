"""The chat plugin's own data (plugins/chat.py `Sessions`) on the default backend: sessions with
their activity, the cascade, the export, and the counters /admin/stats and /health/mood read
instead of the messages. What the storage contract held about sessions before chat owned them."""

import shutil
import sys
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage_contract import at, ids, make_message, walk  # noqa: E402
from plugins.storage_files import FileStorage  # noqa: E402
from wellmate import builtin_plugins_package  # noqa: E402

builtin_plugins_package()
from wellmate_plugins.chat import Sessions  # noqa: E402

UTC, SHANGHAI = ZoneInfo("UTC"), ZoneInfo("Asia/Shanghai")
DAY = 86400


@pytest.fixture
def storage(tmp_path):
    storage = FileStorage.open(tmp_path / "data")
    yield storage
    storage.close()


@pytest.fixture
def sessions(storage):
    return Sessions(storage)


def test_session_crud(sessions):
    created = sessions.create("alice", "coach", "chat")
    assert created["message_count"] == 0 and created["updated_at"] == created["created_at"]
    assert sessions.get(created["id"]) == created
    assert sessions.update(created["id"], {"title": "sleep", "message_count": 99})["title"] == "sleep"
    assert sessions.get(created["id"])["message_count"] == 0  # activity is the chat's own to keep
    assert sessions.update("nope", {"title": "x"}) is None and sessions.get("nope") is None
    assert sessions.delete(created["id"]) is True
    assert sessions.get(created["id"]) is None and sessions.delete(created["id"]) is False
    with pytest.raises(ValueError):
        sessions.create("alice", "coach", session_id="../etc")


def test_session_activity_and_order(sessions):
    old = sessions.create("alice", "coach")
    new = sessions.create("alice", "coach")
    other = sessions.create("alice", "sleep")
    sessions.create("bob", "coach")
    sessions.append(other["id"], make_message("one", created_at=at(10)))
    sessions.append(new["id"], make_message("two", created_at=at(20)))
    sessions.append(old["id"], make_message("three", role="assistant", created_at="2099-01-01T00:00:00.000Z"))
    got = sessions.get(old["id"])
    assert got["message_count"] == 1 and got["updated_at"] == "2099-01-01T00:00:00.000Z"
    assert ids(sessions.list("alice")[0])[0] == old["id"]
    assert ids(sessions.list("alice", agent="sleep")[0]) == [other["id"]]
    assert ids(sessions.list("bob")[0]) != [] and sessions.list("nobody") == ([], None)


def test_list_sessions_paging(sessions):
    made = [sessions.create("alice", "coach") for _ in range(10)]
    pages = walk(sessions.list, limit=4, user_id="alice")
    assert [len(p) for p in pages] == [4, 4, 2]
    assert sorted(s["id"] for p in pages for s in p) == sorted(ids(made))


def test_append_to_an_unknown_session_is_a_key_error(sessions):
    with pytest.raises(KeyError):
        sessions.append("no-such-session", make_message("lost"))
    with pytest.raises(KeyError):
        sessions.append("no-such-session", make_message("lost"), durable=False)
    sessions.sync("no-such-session")  # nothing to do, and no error


def test_delete_session_removes_its_messages_and_their_counts(sessions):
    doomed, kept = sessions.create("alice", "coach"), sessions.create("alice", "coach")
    for n in range(5):
        sessions.append(doomed["id"], make_message(f"d{n}", emotion="sad"))
        sessions.append(kept["id"], make_message(f"k{n}", emotion="sad"))
    assert sessions.message_total() == 10
    assert sessions.delete(doomed["id"])
    assert sessions.messages(doomed["id"]) == ([], None) and len(sessions.messages(kept["id"])[0]) == 5
    assert sessions.message_total() == 5
    assert sum(n for _, label, n, _ in sessions.moods("alice", at(0))) == 5
    again = sessions.create("alice", "coach", session_id=doomed["id"])  # the same id starts empty
    assert again["message_count"] == 0 and sessions.messages(doomed["id"]) == ([], None)


def test_messages_by_day(sessions):
    one, two, old = sessions.create("alice", "coach"), sessions.create("bob", "coach"), sessions.create("bob", "coach")
    sessions.append(old["id"], make_message("long ago", created_at=at(-3 * DAY)))
    # at(0) is 2026-01-01T00:00Z; Asia/Shanghai is UTC+8, so 16:30Z there is the next day.
    for session, seconds, role in [(one, 3600, "user"), (one, 3601, "assistant"), (one, 16 * 3600 + 1800, "user"),
                                   (two, DAY + 60, "user"), (two, DAY + 61, "assistant"), (two, 2 * DAY, "user")]:
        sessions.append(session["id"], make_message("x", role=role, created_at=at(seconds)))
    assert sessions.messages_by_day(at(0), UTC) == {
        "2026-01-01": {"user": 2, "assistant": 1}, "2026-01-02": {"user": 1, "assistant": 1}, "2026-01-03": {"user": 1}}
    assert sessions.messages_by_day(at(-8 * 3600), SHANGHAI) == {
        "2026-01-01": {"user": 1, "assistant": 1}, "2026-01-02": {"user": 2, "assistant": 1}, "2026-01-03": {"user": 1}}
    assert sessions.messages_by_day(at(DAY), UTC) == {"2026-01-02": {"user": 1, "assistant": 1}, "2026-01-03": {"user": 1}}
    assert sessions.messages_by_day(at(10 * DAY), UTC) == {}
    sessions.delete(two["id"])
    assert sessions.messages_by_day(at(DAY), UTC) == {}
    assert sessions.message_total() == 4


def test_counters_in_a_zone_a_quarter_hour_off(sessions):
    # Nepal is UTC+05:45: 18:14Z is 23:59 there, 18:15Z the next day.
    session = sessions.create("alice", "coach")
    for created_at in ("2026-01-01T18:14:59.000Z", "2026-01-01T18:15:00.000Z"):
        sessions.append(session["id"], make_message("x", created_at=created_at, emotion="calm"))
    kathmandu = ZoneInfo("Asia/Kathmandu")
    assert sessions.messages_by_day("2025-12-31T18:15:00.000Z", kathmandu) == {
        "2026-01-01": {"user": 1}, "2026-01-02": {"user": 1}}
    days = sorted((moment.astimezone(kathmandu).date().isoformat(), n)
                  for moment, _, n, _ in sessions.moods("alice", at(0)))
    assert days == [("2026-01-01", 1), ("2026-01-02", 1)]


def test_long_logs_count_every_message(sessions):
    session = sessions.create("alice", "coach")
    for n in range(450):
        sessions.append(session["id"], make_message(f"m{n}", created_at=at(n * 60)), durable=False)
    sessions.sync(session["id"])
    assert sessions.messages_by_day(at(0), UTC) == {"2026-01-01": {"user": 450}}
    assert sessions.messages_by_day(at(105 * 60), UTC) == {"2026-01-01": {"user": 345}}


def test_messages_stored_before_counters_are_counted_once(tmp_path):
    """A data folder from before the counters (messages appended to the log directly): the first
    start counts them, the next ones do not count them again."""
    storage = FileStorage.open(tmp_path / "data")
    session = {"id": "s1", "user_id": "alice", "agent": "coach", "title": "", "created_at": at(0),
               "message_count": 3, "updated_at": at(3)}
    storage.insert("sessions", session)
    for n in range(3):
        storage.append_message("s1", make_message(f"m{n}", created_at=at(n + 1), emotion="sad"))
    storage.close()
    for _ in range(2):
        storage = FileStorage.open(tmp_path / "data")
        sessions = Sessions(storage)
        assert sessions.message_total() == 3
        assert sessions.messages_by_day(at(0), UTC) == {"2026-01-01": {"user": 3}}
        assert [(label, n) for _, label, n, _ in sessions.moods("alice", at(0))] == [("sad", 3)]
        storage.close()


def test_delete_user_and_export(sessions):
    first, second = sessions.create("alice", "coach"), sessions.create("alice", "sleep")
    bobs = sessions.create("bob", "coach")
    for n in range(450):  # more than a page of the log
        sessions.append(first["id"], make_message(f"m{n}"))
    sessions.append(bobs["id"], make_message("bob's"))
    exported = sessions.export("alice")
    assert not isinstance(exported, list)  # a generator: a page in memory at a time
    exported = [{**s, "messages": list(s["messages"])} for s in exported]
    oldest_first = sorted([first, second], key=lambda s: (s["created_at"], s["id"]))  # ties (one ms) by id
    assert [s["id"] for s in exported] == [s["id"] for s in oldest_first]
    by_id = {s["id"]: s for s in exported}
    assert [m["content"] for m in by_id[first["id"]]["messages"]] == [f"m{n}" for n in range(450)]
    assert "user_id" not in by_id[first["id"]] and by_id[second["id"]]["messages"] == []
    sessions.delete_user("alice")
    sessions.delete_user("alice")  # twice is fine: a cascade resumed
    assert sessions.list("alice") == ([], None) and sessions.messages(first["id"]) == ([], None)
    assert sessions.count() == 1 and sessions.message_total() == 1


def test_an_append_a_kill_cut_in_two_is_settled_by_the_next_process(storage):
    """A process killed between writing a message to the log and counting it on the session:
    the next one counts it (and one killed before the log write counts nothing)."""
    sessions = Sessions(storage)
    landed, lost = sessions.create("alice", "coach"), sessions.create("alice", "coach")
    for session, message in ((landed, make_message("in the log", created_at=at(5))), (lost, make_message("never"))):
        storage.update("sessions", session["id"], {"appending": f"killed-process:{message['id']}"})
        if session is landed:
            storage.append_message(session["id"], message)
    later = Sessions(storage)  # the next process
    got = later.get(landed["id"])
    assert got["message_count"] == 1 and "appending" not in got
    assert later.message_total() == 1
    got = later.get(lost["id"])
    assert got["message_count"] == 0 and "appending" not in got
    assert later.get(landed["id"])["message_count"] == 1  # settled once


def test_a_count_a_kill_left_short_is_read_from_the_log_by_the_next_process(storage):
    """A process killed between a message's log line and its session's count: the next one reads
    the count from the seq of the log's newest line and counts the message once."""
    sessions = Sessions(storage)
    session = sessions.create("alice", "coach")
    sessions.append(session["id"], make_message("counted", created_at=at(5), emotion="sad"))
    # What the killed process wrote: the next line of the log (as `append` writes it), no count.
    later_at = "2099-01-01T00:00:09.000Z"
    storage.append_message(session["id"], {**make_message("cut off", created_at=later_at, emotion="sad"), "seq": 2})
    assert storage.get("sessions", session["id"])["message_count"] == 1
    later = Sessions(storage)  # the next process
    got = later.get(session["id"])
    assert got["message_count"] == 2 and got["updated_at"] == later_at
    assert later.message_total() == 2
    assert [(label, n) for _, label, n, _ in later.moods("alice", at(0))] == [("sad", 1), ("sad", 1)]
    later.append(session["id"], make_message("next", created_at=later_at))
    assert [m["seq"] for m in storage.iter_messages(session["id"])] == [1, 2, 3]
    assert Sessions(storage).get(session["id"])["message_count"] == 3 and later.message_total() == 3
    # The export is what the user wrote and read: not the log's numbering.
    exported = [{**s, "messages": list(s["messages"])} for s in later.export("alice")]
    assert not any("seq" in m for m in exported[0]["messages"]) and len(exported[0]["messages"]) == 3


class DeletingStorage(FileStorage):
    """The files backend that deletes a session (as a request served meanwhile would: the user
    deletes the chat, or their account) right after a message reaches its log."""

    sessions, doomed = None, None

    def append_message(self, session_id, message, durable=True):
        stored = super().append_message(session_id, message, durable)
        if session_id == self.doomed:
            self.doomed = None
            self.sessions.delete(session_id)
        return stored


def test_a_session_deleted_while_a_message_is_appended_leaves_no_log(tmp_path):
    """The append wrote the log again after the delete removed it: it removes it again (no session
    would ever delete that log), says there is no such session, and counts nothing."""
    storage = DeletingStorage.open(tmp_path / "data")
    try:
        sessions = storage.sessions = Sessions(storage)
        kept, doomed = sessions.create("alice", "coach"), sessions.create("alice", "coach")
        sessions.append(kept["id"], make_message("kept"))
        sessions.append(doomed["id"], make_message("first"))
        storage.doomed = doomed["id"]
        with pytest.raises(KeyError):
            sessions.append(doomed["id"], make_message("as it was deleted"))
        assert not (storage.messages_dir / f"{doomed['id']}.jsonl").exists()
        assert sessions.get(doomed["id"]) is None and sessions.messages(doomed["id"]) == ([], None)
        assert sessions.message_total() == 1 and sessions.count() == 1
    finally:
        storage.close()


def test_a_log_an_append_made_again_before_the_session_went_goes_with_it(tmp_path):
    """The other order: the delete removed the log, then an append wrote its line and counted it
    on the session, then the session went. The log the append made is removed as well."""

    class AppendingStorage(FileStorage):
        sessions, late = None, None

        def delete_messages(self, session_id):
            removed = super().delete_messages(session_id)
            if session_id == self.late:  # an append served meanwhile, between the delete's two steps
                self.late = None
                self.sessions.append(session_id, make_message("late"))
            return removed

    storage = AppendingStorage.open(tmp_path / "data")
    try:
        sessions = storage.sessions = Sessions(storage)
        doomed = sessions.create("alice", "coach")
        sessions.append(doomed["id"], make_message("first"))
        storage.late = doomed["id"]
        assert sessions.delete(doomed["id"]) is True
        assert not (storage.messages_dir / f"{doomed['id']}.jsonl").exists()
        assert sessions.get(doomed["id"]) is None
    finally:
        storage.close()


def test_a_message_counted_while_a_session_is_deleted_leaves_the_counters_with_it(storage):
    """An append that counted while the delete ran its hooks (a reply finishing as the user
    deletes the chat) leaves the counters as well: the delete reads the session again under the
    append lock (read before, the message stayed counted, a deleted user's mood among them)."""
    sessions = Sessions(storage)
    doomed = sessions.create("alice", "coach")
    sessions.append(doomed["id"], {**make_message("first"), "emotion": "sad"})
    late = [{**make_message("late"), "emotion": "sad"}]  # appended the first time the hooks run (they run twice)
    sessions.on_delete(lambda session: late and sessions.append(session["id"], late.pop()))
    assert sessions.delete(doomed["id"]) is True
    assert sessions.message_total() == 0
    assert storage.find("chat_moods", {"user_id": "alice"}, order="hour")[0] == []


def test_the_total_is_every_message_as_its_checkpoint_moves_through_deletes_restarts_and_an_older_total(storage):
    """The total holds the hours before its checkpoint, the hours' counters the rest (a turn writes
    its hour's counter alone): every message counts once as the checkpoint moves over ten days,
    after a session of mostly older hours is deleted, in the next process, and from a total
    written before checkpoints (it counted every hour)."""
    sessions = Sessions(storage)
    first, second = sessions.create("alice", "coach"), sessions.create("bob", "coach")
    stored = {first["id"]: 0, second["id"]: 0}
    for n in range(40):  # one every 6 hours: ten days
        session = first if n < 30 else second
        sessions.append(session["id"], make_message(f"m{n}", created_at=at(n * 6 * 3600), emotion="sad"))
        stored[session["id"]] += 1
        assert sessions.message_total() == sum(stored.values())
    moved = storage.get("chat_activity", "total")
    assert moved["through"] > at(0)[:13] and moved["messages"] > 0  # the checkpoint moved: hours were added up
    assert Sessions(storage).message_total() == 40  # the next process
    sessions.delete(first["id"])  # 30 messages, most of them in hours before the checkpoint
    assert sessions.message_total() == 10 and Sessions(storage).message_total() == 10
    assert sum(n for roles in sessions.messages_by_day(at(0), UTC).values() for n in roles.values()) == 10
    # A total as the version before checkpoints wrote it: every hour counted in it.
    storage.put("chat_activity", {"id": "total", "messages": 10})
    later = Sessions(storage)
    assert later.message_total() == 10
    later.append(second["id"], make_message("one more", created_at=at(41 * 6 * 3600)))
    assert later.message_total() == 11 and Sessions(storage).message_total() == 11


def test_an_older_total_with_no_hour_counters_starts(storage):
    # A total from before checkpoints, in a folder with no hour documents (pruned or partly
    # restored): the newest hour was looked up without `start`, "backfilled" came back and the
    # process failed to start (KeyError 'hour'), on every start.
    Sessions(storage)  # writes "backfilled"
    storage.put("chat_activity", {"id": "total", "messages": 7})
    sessions = Sessions(storage)
    assert sessions.message_total() == 7
    assert storage.get("chat_activity", "total")["through"] == ""
    session = sessions.create("alice", "coach")
    sessions.append(session["id"], make_message("hello", created_at=at(0)))
    assert sessions.message_total() == 8 and Sessions(storage).message_total() == 8


class PausingStorage(FileStorage):
    """The files backend that stops a count's write of one hour's counter (``pause_at``) until
    told to go on: a delete of a long session caught half-way through its counters."""

    pause_at = None

    def update(self, collection, doc_id, change, durable=True):
        if collection == "chat_activity" and doc_id == self.pause_at:
            self.pause_at = None
            self.paused.set()
            self.go.wait(30)
        return super().update(collection, doc_id, change, durable)


def test_another_turn_is_counted_while_a_long_session_is_deleted(tmp_path):
    """A delete's hour counters were written under the lock every turn's count takes: deleting a
    session over a year of hours held every other user's turn until it was done (287-524 ms).
    Here the delete stops half-way through its hours and another session's turn still counts; the
    total is right after both, with the checkpoint moving as they go."""
    storage = PausingStorage.open(tmp_path / "data")
    storage.paused, storage.go = threading.Event(), threading.Event()
    try:
        sessions = Sessions(storage)
        doomed, other = sessions.create("alice", "coach"), sessions.create("bob", "coach")
        for n in range(300):  # one an hour: the checkpoint follows a day behind
            sessions.append(doomed["id"], make_message(f"m{n}", created_at=at(n * 3600)))
        storage.pause_at = "h" + at(150 * 3600)[:13]
        deleting = threading.Thread(target=sessions.delete, args=(doomed["id"],))
        deleting.start()
        try:
            assert storage.paused.wait(30)
            turn = threading.Thread(target=sessions.append, args=(other["id"], make_message("meanwhile",
                                                                                            created_at=at(400 * 3600))))
            turn.start()
            turn.join(10)  # it waited for the whole delete before; ends at once now
            assert not turn.is_alive(), "the turn waited for another session's delete"
        finally:
            storage.go.set()
            deleting.join(30)
        assert sessions.message_total() == 1 and Sessions(storage).message_total() == 1
        sessions.append(other["id"], make_message("later", created_at=at(401 * 3600)))
        assert storage.get("chat_activity", "total")["through"] > at(300 * 3600)[:13]  # it moved on past the deleted hours
        assert sessions.message_total() == 2 and Sessions(storage).message_total() == 2
    finally:
        storage.go.set()
        storage.close()


class DeletingMidCountStorage(FileStorage):
    """The files backend that, as the reply's count writes its first counter, lets a delete of the
    chat run (as a request served meanwhile would) and waits for it a moment: the delete's
    subtraction and the reply's count interleave as a busy machine may have them."""

    sessions, doomed, waited = None, None, None

    def update(self, collection, doc_id, change, durable=True):
        if collection == "chat_activity" and self.doomed and threading.current_thread().name == "reply":
            deleting = threading.Thread(target=self.sessions.delete, args=(self.doomed,))
            self.doomed, self.waited = None, deleting
            deleting.start()
            deleting.join(0.5)  # waits on the session's lock (it took the count away before)
        return super().update(collection, doc_id, change, durable)


def test_a_delete_racing_a_replys_count_leaves_the_counters_the_logs(tmp_path):
    """The reply's count ran after the session's lock was released: a delete in between took away
    both messages (from cells of 0, clamped) and the late count stayed for good, the deleted
    user's mood document made again among it."""
    storage = DeletingMidCountStorage.open(tmp_path / "data")
    try:
        sessions = storage.sessions = Sessions(storage)
        kept, doomed = sessions.create("bob", "coach"), sessions.create("alice", "coach")
        sessions.append(kept["id"], make_message("kept", created_at=at(0)))
        sessions.append(doomed["id"], {**make_message("hi", created_at=at(1200)), "emotion": "sad"}, durable=False)
        storage.doomed = doomed["id"]
        reply = lambda: sessions.append(doomed["id"], make_message("hello", role="assistant", created_at=at(1201)))  # noqa: E731
        turn = threading.Thread(target=reply, name="reply")
        turn.start()
        turn.join(30)
        storage.waited.join(30)
        assert sessions.get(doomed["id"]) is None
        assert sessions.message_total() == 1 and Sessions(storage).message_total() == 1
        assert sessions.messages_by_day(at(0), UTC) == {at(0)[:10]: {"user": 1}}
        assert storage.find("chat_moods", {"user_id": "alice"})[0] == []
    finally:
        storage.close()


def test_a_users_message_is_counted_while_its_reply_is_awaited(storage):
    """The user's message went into the counters with the reply's append: a process killed during
    the provider's call (seconds) left it in the log and the session's count, and out of the
    counters for good. Here the process "dies" before the reply: the next one counts it."""
    sessions = Sessions(storage)
    session = sessions.create("alice", "coach")
    sessions.append(session["id"], {**make_message("hi", created_at=at(0)), "emotion": "sad"}, durable=False)
    later = Sessions(storage)  # the next process: the reply never came
    assert later.get(session["id"])["message_count"] == 1
    assert later.message_total() == 1
    assert later.messages_by_day(at(0), UTC) == {at(0)[:10]: {"user": 1}}
    assert [(label, n) for _, label, n, _ in later.moods("alice", at(0))] == [("sad", 1)]


class Killed(BaseException):
    """The process dies here (not an error anything catches)."""


class KilledStorage(FileStorage):
    """The files backend whose process "dies" at its ``kill_at``-th write from when it is armed:
    nothing from there on is written."""

    kill_at, writes = None, 0

    def _write(self):
        if self.kill_at is not None:
            self.writes += 1
            if self.writes == self.kill_at:
                self.kill_at = None
                raise Killed()

    def update(self, *args, **kwargs):
        self._write()
        return super().update(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self._write()
        return super().delete(*args, **kwargs)

    def delete_messages(self, *args, **kwargs):
        self._write()
        return super().delete_messages(*args, **kwargs)


def test_a_delete_killed_at_any_write_then_deleted_again_leaves_the_counters_the_logs(tmp_path):
    """A kill while a delete took a session's messages out of the counters left it listed and not
    marked: deleting it again took them out twice, and with them the same hours' messages of the
    user's other chats and of other users (clamped at 0), and the user's moods, for good. Here a
    delete is killed at each of its writes in turn; the next process starts, the user deletes the
    chat again if it is still listed, and every counter is what the logs left hold."""
    template = tmp_path / "template"
    storage = FileStorage.open(template)
    sessions = Sessions(storage)
    doomed, kept = sessions.create("alice", "coach", session_id="doomed"), sessions.create("alice", "sleep")
    other = sessions.create("bob", "coach")
    for n in range(10):  # every 6 hours: the checkpoint moves, some hours are in the total
        for session in (doomed, kept, other):
            sessions.append(session["id"], {**make_message(f"m{n}", created_at=at(n * 6 * 3600)), "emotion": "sad"})
    storage.close()
    days = {at(0)[:10]: {"user": 8}, at(86400)[:10]: {"user": 8}, at(2 * 86400)[:10]: {"user": 4}}
    kill_at = 0
    while True:
        kill_at += 1
        folder = tmp_path / f"kill{kill_at}"
        shutil.copytree(template, folder)
        storage = KilledStorage.open(folder)
        try:
            storage.kill_at = kill_at
            try:
                Sessions(storage).delete("doomed")
                killed = False
            except Killed:
                killed = True
            storage.kill_at = None
            later = Sessions(storage)  # the next process
            if later.get("doomed") is not None:
                assert killed
                later.delete("doomed")  # the user deletes it again
            where = f"killed at write {kill_at}"
            assert later.get("doomed") is None, where
            assert later.message_total() == 20 and Sessions(storage).message_total() == 20, where
            assert later.messages_by_day(at(0), UTC) == days, where
            moods = [(agent, n) for agent in ("coach", "sleep") for _, _, n, _ in later.moods("alice", at(0), agent)]
            assert moods == [("sleep", 1)] * 10, where
            assert sum(n for _, _, n, _ in later.moods("bob", at(0))) == 10, where
            assert storage.get("chat_activity", "total").get("deleting") == {}, where
        finally:
            storage.close()
        if not killed:
            break
    assert kill_at > 30  # every write of the delete had its turn


def test_a_session_killed_between_its_logs_delete_and_its_own_shows_no_messages(tmp_path):
    """Killed after its log went and before the session did: it stays listed until deleted again,
    and said it held its old count while it opened empty. The next process's check makes it 0."""
    class KilledAtTheSessionsDelete(FileStorage):
        armed = False

        def delete(self, collection, doc_id):
            if self.armed and collection == "sessions":
                raise Killed()
            return super().delete(collection, doc_id)

    storage = KilledAtTheSessionsDelete.open(tmp_path / "data")
    try:
        sessions = Sessions(storage)
        session = sessions.create("alice", "coach")
        for n in range(3):
            sessions.append(session["id"], make_message(f"m{n}", created_at=at(n)))
        storage.armed = True
        with pytest.raises(Killed):
            Sessions(storage).delete(session["id"])
        storage.armed = False
        later = Sessions(storage)
        assert [(s["id"], s["message_count"]) for s in later.list("alice")[0]] == [(session["id"], 3)]
        assert later.get(session["id"])["message_count"] == 0 and later.messages(session["id"]) == ([], None)
        assert later.list("alice")[0][0]["message_count"] == 0
        assert later.delete(session["id"]) and later.get(session["id"]) is None and later.message_total() == 0
    finally:
        storage.close()
