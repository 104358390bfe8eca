"""Kill a process that is writing to the storage at random moments; nothing acknowledged is lost.

The writer (tests/kill_writer.py) prints each write after the storage call returned. Round after
round on the same data folder, this test SIGKILLs it after a random delay (some very short, some
before it even opened the storage), then opens the storage here and checks that it opens, that
the JSON files parse and that every acknowledged write is there.

Repeat a failing run with ``KILL_SEED=<seed from the message> pytest tests/test_kill.py``.
"""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from plugins.storage_files import FileStorage  # noqa: E402
from wellmate import builtin_plugins_package  # noqa: E402

builtin_plugins_package()
from wellmate_plugins.chat import Sessions  # noqa: E402

ROUNDS = 30
# On a loaded machine a round's random moment to kill comes after fewer writes (CI once saw 49
# messages in 30 rounds): rounds go on until there is enough to check, up to this many.
MAX_ROUNDS = 150
WRITER = HERE / "kill_writer.py"


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1


def run_and_kill(folder: Path, seed: int, rng: random.Random, log, where: str) -> list[list[str]]:
    """Start a writer, kill it at a random moment, return the lines it acknowledged."""
    how = rng.random()
    big = 0.2 <= how < 0.5  # aim at the middle of writing a big message: a torn last line
    child = subprocess.Popen([sys.executable, str(WRITER), str(folder), str(seed)] + ["big"] * big,
                             stdout=subprocess.PIPE, stderr=log, text=True)
    lines, ready, big_append = [], threading.Event(), threading.Event()

    def read():
        for line in child.stdout:  # the pipe keeps what was printed before the kill
            if line.endswith("\n"):  # a line cut by the kill acknowledges nothing
                lines.append(line.split())
            if line.startswith("ready"):
                ready.set()
            elif line.startswith("appending") and int(line.split()[1]) > 1_000_000:
                big_append.log = folder / "messages" / f"{line.split()[2]}.jsonl"
                big_append.set()

    reader = threading.Thread(target=read)
    reader.start()
    if how < 0.2:
        time.sleep(rng.uniform(0.0, 0.4))  # maybe while it starts or opens the storage
    else:
        assert ready.wait(30), f"{where}: the writer did not start; see {log.name}"
        if big:
            assert big_append.wait(30), f"{where}: the writer did not announce its big message"
            # Kill as soon as the log starts growing: in the middle of the write.
            size, deadline = file_size(big_append.log), time.monotonic() + 5
            while file_size(big_append.log) == size and time.monotonic() < deadline:
                pass
        else:
            time.sleep(rng.choice([0, rng.uniform(0, 0.002), rng.uniform(0.002, 0.03), rng.uniform(0.03, 0.3)]))
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    reader.join(30)
    assert child.returncode == -signal.SIGKILL, f"{where}: the writer exited ({child.returncode}); see {log.name}"
    return [parts for parts in lines if parts and parts[0] not in ("ready", "appending")]


def test_acknowledged_writes_survive_sigkill(tmp_path):
    seed = int(os.environ.get("KILL_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    folder = tmp_path / "data"
    users, sessions, records, reminders, messages = set(), set(), set(), {}, {}
    deleting, deleted = set(), set()

    def enough() -> bool:
        return bool(users and records and reminders) and sum(map(len, messages.values())) > 100

    round_ = -1
    while round_ + 1 < ROUNDS or (not enough() and round_ + 1 < MAX_ROUNDS):
        round_ += 1
        where = f"seed {seed}, round {round_}"
        with open(tmp_path / "writer.log", "a") as log:
            acked = run_and_kill(folder, seed + round_, rng, log, where)
        for kind, *args in acked:
            if kind == "user":
                users.add(args[0])
            elif kind == "session":
                sessions.add(args[0])
            elif kind == "record":
                records.add(args[0])
            elif kind == "deleting":
                deleting.add(args[0])
            elif kind == "deleted":
                deleted.add(args[0])
            elif kind == "reminder":
                reminders[args[0]] = int(args[1])
            elif kind == "message":
                messages.setdefault(args[0], []).append(args[1])
        errors = (tmp_path / "writer.log").read_text()
        assert errors == "", f"{where}: the writer failed:\n{errors}"

        # The files as the kill left them: whole JSON, and logs with at most a torn last line.
        for path in folder.glob("*.json"):
            json.loads(path.read_text("utf-8"))
        for path in (folder / "messages").glob("*.jsonl"):
            for line in path.read_bytes().split(b"\n")[:-1]:
                json.loads(line)

        storage = FileStorage.open(folder)
        chat = Sessions(storage)
        try:
            for user_id in users:
                assert storage.get("users", user_id) is not None, f"{where}: user {user_id} lost"
            for record_id in records - deleting:
                assert storage.get("records", record_id) is not None, f"{where}: record {record_id} lost"
            for record_id in deleted:
                assert storage.get("records", record_id) is None, f"{where}: deleted record {record_id} is back"
            for reminder_id, version in reminders.items():
                stored = storage.get("reminders", reminder_id)
                assert stored is not None and stored["version"] >= version, f"{where}: reminder {reminder_id} lost"
            total = 0
            for session_id in sessions:
                stored, before = [], None
                while True:
                    page, before = storage.list_messages(session_id, limit=rng.choice([5, 50]), before=before)
                    stored[:0] = [m["id"] for m in page]
                    if before is None:
                        break
                assert len(stored) == len(set(stored)), f"{where}: a message is there twice"
                acked_ids = messages.get(session_id, [])
                positions = {message_id: n for n, message_id in enumerate(stored)}
                lost = [m for m in acked_ids if m not in positions]
                assert not lost, f"{where}: {len(lost)} acknowledged messages lost in {session_id}"
                assert [positions[m] for m in acked_ids] == sorted(positions[m] for m in acked_ids), \
                    f"{where}: messages out of order"
                session = chat.get(session_id)
                assert session["message_count"] == len(stored)
                total += len(stored)
            # The admin's counters are written after the message and its session's count: a kill
            # in between misses what they were to count (at most a turn's two messages per kill:
            # the user's is counted with the reply), never adds one.
            assert total - 2 * (round_ + 1) <= chat.message_total() <= total, \
                f"{where}: counted {chat.message_total()} of {total}"
        finally:
            storage.close()
        assert not list(folder.glob(".*.tmp")), f"{where}: a temp file was left after opening"

    assert enough(), f"the writer made too few writes in {round_ + 1} rounds for this test to mean anything"


def older_folder(folder: Path, sessions: int) -> int:
    """A data folder whose messages were stored before the chat's counters existed (a migrated
    one, at its first start): ``sessions`` sessions of 20 users, two messages each, over 10 hours."""
    from wellmate import json_dumps, now_iso

    storage = FileStorage.open(folder)
    start = datetime(2026, 3, 1, tzinfo=timezone.utc)
    try:
        for n in range(sessions):
            at = now_iso(start + timedelta(minutes=n % 600))
            storage.put("sessions", {"id": f"s{n}", "user_id": f"u{n % 20}", "agent": "mental", "title": "",
                                     "created_at": at, "message_count": 2, "updated_at": at}, durable=False)
            (storage.messages_dir / f"s{n}.jsonl").write_text("".join(json_dumps(
                {"id": f"m{n}-{role}", "role": role, "content": "x", "emotion": "sad", "created_at": at}) + "\n"
                for role in ("user", "assistant")))
    finally:
        storage.close()
    return 2 * sessions


def test_a_kill_during_the_first_count_of_older_messages_counts_each_once(tmp_path):
    """The chat's one-time count of the messages an older folder holds (`Sessions._backfill`) is
    killed half-way: the next start counts again, and every message is counted once."""
    activity = Path("collections") / "chat_activity.jsonl"
    for attempt in range(5):
        folder = tmp_path / f"data{attempt}"
        stored = older_folder(folder, 3000 * (attempt + 1))
        child = subprocess.Popen([sys.executable, str(WRITER), str(folder), "0"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not (folder / activity).exists() and child.poll() is None and time.monotonic() < deadline:
            pass  # the first page of counts is written: kill in the middle of the count
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        storage = FileStorage.open(folder)
        try:
            if (folder / activity).exists() and storage.get("chat_activity", "backfilled") is None:
                break  # killed half-way, as meant
        finally:
            storage.close()
    else:
        raise AssertionError("no kill landed in the middle of the count in 5 tries")
    for _ in range(2):  # the start after the kill, and one more
        storage = FileStorage.open(folder)
        try:
            chat = Sessions(storage)
            assert chat.message_total() == stored
            days = chat.messages_by_day("2026-03-01T00:00:00.000Z", timezone.utc)
            assert days == {"2026-03-01": {"user": stored // 2, "assistant": stored // 2}}
            moods = [n for user in range(20) for _, _, n, _ in chat.moods(f"u{user}", "2026-03-01T00:00:00.000Z")]
            assert sum(moods) == stored // 2
        finally:
            storage.close()
