"""Config-wide reminders (reminders.everyone) follow users as they change, not a tick that reads
every user (issue 13, "Growth"): one pass at the first tick of a process, then the user_changed
hook per user. And what the reminders plugin owns now that the storage no longer does: its
collections' cascade on a deleted user, its export section, pruning old deliveries."""

import shutil

import jwt

from conftest import ROOT
from reminders_world import world  # noqa: F401 (the fixture tests ask for)

CHECKIN = {"daily_checkin": True}  # the opt-in of the shipped config's reminders.everyone.checkin


def use_plugin(tmp_path, name: str):
    """Put tests/plugins/<name>.py into the plugins folder of the config make_wm writes."""
    folder = tmp_path / "plugins"
    folder.mkdir(exist_ok=True)
    shutil.copy(ROOT / "tests" / "plugins" / f"{name}.py", folder / f"{name}.py")


def reminders_of(w, token) -> list[dict]:
    r = w.client.get("/api/v1/reminders", token=token)
    assert r.status == 200, r.text
    return r.json["items"]


def user_id(token) -> str:
    return jwt.decode(token, options={"verify_signature": False})["sub"]


def change_user(w, token, **changes):
    """Change a user through the accounts service, which tells the plugins (user_changed)."""
    w.wm.service("accounts").update(user_id(token), changes)


def test_a_tick_reads_no_user_only_what_is_due(world, tmp_path):  # noqa: F811
    use_plugin(tmp_path, "counting_storage")
    w = world("2026-11-19T23:00:00Z", overrides={"storage": {"backend": "counting"}})
    for n in range(20):
        w.client.register(f"user{n}", settings={"timezone": "Asia/Shanghai", **(CHECKIN if n % 2 else {})})
    w.tick()  # the first tick of the process: the one pass over every user
    storage = w.wm.storage
    assert storage.count("reminders") == 10
    storage.reads.clear()
    for minute in range(1, 4):
        w.tick(f"2026-11-19T23:0{minute}:00Z")
    # Before: every tick paged through every user (and read each one's copies): 1.8 s at 10,000
    # users. Now a tick asks for what is due, once, and reads nobody.
    assert storage.reads == {"reminders": 3}
    w.tick("2026-11-20T00:30:00Z")  # 08:30 in Shanghai: the ten copies are due
    assert storage.count("deliveries") == 10


def test_a_user_change_gives_or_takes_their_copy_at_once(world):  # noqa: F811
    w = world("2026-11-19T23:00:00Z")  # 07:00 in Shanghai; the shipped check-in is at 08:30
    alice = w.user("alice")
    w.tick()
    assert reminders_of(w, alice) == []
    change_user(w, alice, settings={"timezone": "Asia/Shanghai", **CHECKIN})
    [checkin] = reminders_of(w, alice)  # no tick in between
    assert checkin["source"] == "config:checkin" and checkin["next_fire_local"] == "2026-11-20T08:30:00+08:00"
    change_user(w, alice, settings={"timezone": "America/New_York", **CHECKIN})
    [checkin] = reminders_of(w, alice)
    assert checkin["timezone"] == "America/New_York" and checkin["next_fire_local"] == "2026-11-20T08:30:00-05:00"
    change_user(w, alice, disabled=True)
    assert w.wm.storage.get("reminders", checkin["id"]) is None
    change_user(w, alice, disabled=False)
    [again] = reminders_of(w, alice)
    assert again["id"] == checkin["id"]
    change_user(w, alice, settings={"timezone": "America/New_York", "daily_checkin": False})
    assert reminders_of(w, alice) == []
    # A new user who is in from the start (an entry with no opt_in would be everyone's).
    bob = w.client.register("bob", settings={"timezone": "Asia/Shanghai", **CHECKIN})
    w.wm.pm.hook.user_changed(user=w.wm.storage.get("users", bob["user"]["uuid"]), before=None, wm=w.wm)
    assert [r["source"] for r in reminders_of(w, bob["access_token"])] == ["config:checkin"]


def test_a_channel_that_becomes_ready_gives_the_copy(world, tmp_path):  # noqa: F811
    use_plugin(tmp_path, "probe")  # its channel cannot reach a user whose full_name is "Unreachable"
    everyone = {"ping": {"title": "ping", "rule": {"kind": "daily", "times": ["09:00"]}, "channels": ["probe"]}}
    w = world("2026-11-19T23:00:00Z", overrides={"reminders": {"everyone": everyone}})
    alice = w.user("alice", full_name="Unreachable")
    w.tick()
    assert reminders_of(w, alice) == []
    change_user(w, alice, full_name="Alice")
    assert [r["source"] for r in reminders_of(w, alice)] == ["config:ping"]


def test_the_first_tick_sweeps_removed_entries_and_gives_added_ones(world):  # noqa: F811
    water = {"title": "喝水", "rule": {"kind": "daily", "times": ["10:00"]}}
    w = world("2026-11-19T23:00:00Z", overrides={"reminders": {"everyone": {"water": water}}})
    alice, bob = w.user("alice"), w.user("bob")
    w.tick()
    assert [r["source"] for r in reminders_of(w, alice)] == ["config:water"]
    own = w.create(alice, title="mine", rule={"kind": "daily", "times": ["12:00"]})
    w.overrides = {"reminders": {"everyone": {"stretch": {**water, "title": "伸展"}}}}
    w.restart()
    assert len(reminders_of(w, bob)) == 1  # nothing changed before the first tick
    w.tick()
    assert sorted(r["source"] for r in reminders_of(w, alice)) == ["api", "config:stretch"]
    assert [r["title"] for r in reminders_of(w, bob)] == ["伸展"]
    assert w.reminder(alice, own["id"])["title"] == "mine"


def every_five_minutes(w, *tokens) -> list[dict]:
    return [w.create(token, title="喝水", rule={"kind": "interval", "every_minutes": 5}) for token in tokens]


def fire(w, times: int):
    """Tick at the next ``times`` five-minute marks (00:05, 00:10, ... of the world's day)."""
    for _ in range(times):
        w.clock.advance(minutes=5)
        w.tick()


def alice_and_bob(world, fires: int):  # noqa: F811
    """A world where alice and bob each have a reminder every five minutes, fired ``fires`` times:
    (world, alice's stored user, her reminder, bob's token, his reminder)."""
    w = world("2026-11-20T00:00:00Z")
    alice, bob = w.user("alice"), w.user("bob")
    mine, theirs = every_five_minutes(w, alice, bob)
    fire(w, fires)
    return w, w.wm.storage.get("users", user_id(alice)), mine, bob, theirs


def test_delete_user_data_removes_their_reminders_and_deliveries_only(world):  # noqa: F811
    w, user, mine, bob, theirs = alice_and_bob(world, 1)
    for _ in range(2):  # twice: a delete that died half-way is finished by the next
        w.wm.pm.hook.delete_user_data(user=user, wm=w.wm)
        assert w.wm.storage.get("reminders", mine["id"]) is None
        assert w.wm.storage.find("deliveries", {"user_id": user["id"]}) == ([], None)
    assert len(w.deliveries(bob, theirs["id"])) == 1 and reminders_of(w, bob)


def test_export_user_data_lists_reminders_with_their_deliveries(world):  # noqa: F811
    w, user, made, _, _ = alice_and_bob(world, 3)
    [section] = [s for s in w.wm.pm.hook.export_user_data(user=user, wm=w.wm) if s and "reminders" in s]
    reminders = list(section["reminders"])  # a generator: the export is streamed
    assert [r["id"] for r in reminders] == [made["id"]]
    deliveries = list(reminders[0]["deliveries"])
    assert len(deliveries) == 3 and all(d["status"] == "sent" for d in deliveries)
    assert all("user_id" not in item for item in reminders + deliveries)


def test_deliveries_beyond_keep_are_dropped_oldest_first(world):  # noqa: F811
    w = world("2026-11-20T00:00:00Z", overrides={"reminders": {"keep_deliveries": 2}})
    alice = w.user("alice")
    [made] = every_five_minutes(w, alice)
    fire(w, 4)
    kept = w.deliveries(alice, made["id"])
    assert [d["due_at"] for d in kept] == ["2026-11-20T00:20:00.000Z", "2026-11-20T00:15:00.000Z"]
