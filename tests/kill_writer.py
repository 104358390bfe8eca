"""The child process of test_kill.py: write to the storage until killed.

    python tests/kill_writer.py DATA_FOLDER SEED [big]

With "big", the first write is a 5 MB message, for the test to kill in the middle of.

Each write is acknowledged with a line on stdout, printed only after the storage call returned,
so a printed line means "durable". Deletes and appends are announced before the call too (they
may or may not have happened when the process dies).
"""

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from plugins.storage_files import FileStorage  # noqa: E402
from wellmate import builtin_plugins_package, new_id, now_iso  # noqa: E402

builtin_plugins_package()
from wellmate_plugins.chat import Sessions  # noqa: E402


def ack(*parts):
    # One write of the whole line (print() may write each part separately, e.g. unbuffered).
    sys.stdout.write(" ".join(map(str, parts)) + "\n")
    sys.stdout.flush()


def main(folder: str, seed: int, big: bool):
    rng = random.Random(seed)
    storage = FileStorage.open(folder)
    found, _ = storage.find("users", {"username_key": "owner"}, limit=1)  # as accounts.py stores users
    owner = found[0] if found else None
    chat = Sessions(storage)
    if owner is None:
        owner = storage.insert("users", {"id": new_id(), "username": "owner", "username_key": "owner", "created_at": now_iso()})
        ack("user", owner["id"])
    sessions = [s["id"] for s in chat.list(owner["id"])[0]]
    while len(sessions) < 2:
        session = chat.create(owner["id"], "coach", "kill test")
        ack("session", session["id"])
        sessions.append(session["id"])
    reminders = [r["id"] for r in storage.find("reminders", {"user_id": owner["id"]}, order="-created_at", limit=100)[0]]
    records = []
    ack("ready")

    while True:
        op = rng.random()
        if op < 0.1:
            name = f"u-{new_id()}"
            user = storage.insert("users", {"id": new_id(), "username": name, "username_key": name.lower(), "created_at": now_iso()})
            ack("user", user["id"])
        elif op < 0.3:
            record = storage.insert("records", {"id": new_id(), "user_id": owner["id"], "type": "steps",
                                                "value": rng.randrange(20000), "recorded_at": now_iso(),
                                                "created_at": now_iso()})
            records.append(record["id"])
            ack("record", record["id"])
        elif op < 0.35 and records:
            victim = records.pop(rng.randrange(len(records)))
            ack("deleting", victim)
            storage.delete("records", victim)
            ack("deleted", victim)
        elif op < 0.75 or big:
            session_id = rng.choice(sessions)
            # Some big messages, so that a kill can land in the middle of writing one; the
            # announcement lets the test aim its kill at them.
            text = "x" * rng.choice([10, 300, 5000, 60000])
            if big:  # SIGKILL stops a write only between large chunks (2 MB here): a torn line
                text, big = "x" * 5_000_000, False  # needs a write that long
            ack("appending", len(text), session_id)
            if rng.random() < 0.5:
                message = chat.append(session_id, {"id": new_id(), "role": "user", "content": text,
                                                   "created_at": now_iso()})
                ack("message", session_id, message["id"])
            else:  # a chat turn: the user's message unflushed (and uncounted) until the reply's append
                asked = chat.append(session_id, {"id": new_id(), "role": "user", "content": text, "emotion": "sad",
                                                 "created_at": now_iso()}, durable=False)
                reply = chat.append(session_id, {"id": new_id(), "role": "assistant", "content": "ok",
                                                 "created_at": now_iso()})
                ack("message", session_id, asked["id"])
                ack("message", session_id, reply["id"])
        elif op < 0.85 or not reminders:
            reminder = storage.insert("reminders", {"id": new_id(), "user_id": owner["id"], "next_fire_at": now_iso(),
                                             "version": time.time_ns(), "created_at": now_iso()})
            reminders.append(reminder["id"])
            ack("reminder", reminder["id"], reminder["version"])
        else:
            reminder_id, version = rng.choice(reminders), time.time_ns()
            storage.update("reminders", reminder_id, {"version": version, "next_fire_at": now_iso()})
            ack("reminder", reminder_id, version)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3:] == ["big"])
