"""Reminders: rules and their times (DST included), the API over real HTTP, and firing with a
clock the test moves, across restarts of the server on the same data."""

from datetime import timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from fakes.openai_server import FakeOpenAI
from reminders_world import world, z  # noqa: F401,F811 (world is the fixture tests ask for)
from wellmate import now_iso

UTC = timezone.utc
SHANGHAI, NEW_YORK = ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York")


def rules():
    """The rules module as the app loads it (plugins are loaded from files, not imported)."""
    import sys

    return sys.modules["wellmate_plugins.reminders"]


# ---------------------------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------------------------


def fire_times(rule, tz, start: str, end: str) -> list[str]:
    """Every moment the rule fires after start and up to end, in UTC."""
    out, moment = [], z(start)
    while (moment := rules().next_time(rule, tz, moment)) and moment <= z(end):
        out.append(now_iso(moment))
    return out


def test_daily_in_shanghai(make_wm):
    make_wm()
    rule = {"kind": "daily", "times": ["08:00", "20:00"]}
    assert fire_times(rule, SHANGHAI, "2026-11-20T00:30:00Z", "2026-11-21T12:00:00Z") == [
        "2026-11-20T12:00:00.000Z", "2026-11-21T00:00:00.000Z", "2026-11-21T12:00:00.000Z"]
    assert now_iso(rules().previous_time(rule, SHANGHAI, z("2026-11-21T11:59:59Z"))) == "2026-11-21T00:00:00.000Z"


def test_weekly_and_interval(make_wm):
    make_wm()
    weekly = {"kind": "weekly", "days": ["mon", "fri"], "times": ["09:00"]}
    # 2026-11-20 is a Friday.
    assert fire_times(weekly, SHANGHAI, "2026-11-20T02:00:00Z", "2026-11-30T00:00:00Z") == [
        "2026-11-23T01:00:00.000Z", "2026-11-27T01:00:00.000Z"]
    every = {"kind": "interval", "every_minutes": 150, "from": "09:00", "until": "14:00", "days": ["fri"]}
    assert fire_times(every, SHANGHAI, "2026-11-20T00:00:00Z", "2026-11-27T04:00:00Z") == [
        "2026-11-20T01:00:00.000Z", "2026-11-20T03:30:00.000Z", "2026-11-20T06:00:00.000Z",
        "2026-11-27T01:00:00.000Z", "2026-11-27T03:30:00.000Z"]


def test_new_york_spring_forward(make_wm):
    make_wm()
    # 2026-03-08: at 02:00 EST the clocks jump to 03:00 EDT.
    eight = {"kind": "daily", "times": ["08:00"]}
    assert fire_times(eight, NEW_YORK, "2026-03-06T14:00:00Z", "2026-03-09T13:00:00Z") == [
        "2026-03-07T13:00:00.000Z", "2026-03-08T12:00:00.000Z", "2026-03-09T12:00:00.000Z"]  # 08:00 local each day
    # 02:30 does not exist that day: it fires once, at 03:30 EDT.
    half_two = {"kind": "daily", "times": ["02:30"]}
    assert fire_times(half_two, NEW_YORK, "2026-03-07T08:00:00Z", "2026-03-09T08:00:00Z") == [
        "2026-03-08T07:30:00.000Z", "2026-03-09T06:30:00.000Z"]
    # Every 30 minutes through the gap: no moment twice, none lost after it.
    every = {"kind": "interval", "every_minutes": 30, "from": "01:00", "until": "04:00"}
    assert fire_times(every, NEW_YORK, "2026-03-08T05:00:00Z", "2026-03-08T09:00:00Z") == [
        "2026-03-08T06:00:00.000Z", "2026-03-08T06:30:00.000Z", "2026-03-08T07:00:00.000Z",
        "2026-03-08T07:30:00.000Z", "2026-03-08T08:00:00.000Z"]


def test_new_york_fall_back(make_wm):
    make_wm()
    # 2026-11-01: at 02:00 EDT the clocks go back to 01:00 EST; 01:30 happens twice.
    half_one = {"kind": "daily", "times": ["01:30"]}
    assert fire_times(half_one, NEW_YORK, "2026-10-31T06:00:00Z", "2026-11-02T07:00:00Z") == [
        "2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"]  # once, the first time
    eight = {"kind": "daily", "times": ["08:00"]}
    assert fire_times(eight, NEW_YORK, "2026-10-31T00:00:00Z", "2026-11-02T14:00:00Z") == [
        "2026-10-31T12:00:00.000Z", "2026-11-01T13:00:00.000Z", "2026-11-02T13:00:00.000Z"]
    every = {"kind": "interval", "every_minutes": 30, "from": "00:30", "until": "02:00"}
    assert fire_times(every, NEW_YORK, "2026-11-01T04:00:00Z", "2026-11-01T08:00:00Z") == [
        "2026-11-01T04:30:00.000Z", "2026-11-01T05:00:00.000Z", "2026-11-01T05:30:00.000Z",
        "2026-11-01T07:00:00.000Z"]


# ---------------------------------------------------------------------------------------------
# The API
# ---------------------------------------------------------------------------------------------


def test_reminder_crud(world):
    w = world("2026-11-20T00:00:00Z")
    token = w.user()
    made = w.create(token, title="喝水", text="该喝水啦", rule={"kind": "daily", "times": ["10:00", "8:30"]})
    assert made["timezone"] == "Asia/Shanghai"  # the user's settings.timezone
    assert made["rule"] == {"kind": "daily", "times": ["08:30", "10:00"]}
    assert made["channels"] == ["inapp"] and made["enabled"] is True and made["source"] == "api"
    assert made["next_fire_at"] == "2026-11-20T00:30:00.000Z"
    assert made["next_fire_local"] == "2026-11-20T08:30:00+08:00"
    pills = w.create(token, title="吃药", rule={"kind": "once", "at": "2026-11-21T20:00"}, timezone="America/New_York")
    assert pills["rule"] == {"kind": "once", "at": "2026-11-21T20:00:00-05:00"}
    assert pills["next_fire_at"] == "2026-11-22T01:00:00.000Z"

    listed = w.client.get("/api/v1/reminders?limit=1", token=token).json
    assert [r["id"] for r in listed["items"]] == [pills["id"]]
    more = w.client.get(f"/api/v1/reminders?limit=1&before={listed['next']}", token=token).json
    assert [r["id"] for r in more["items"]] == [made["id"]] and more["next"] is None

    r = w.client.put(f"/api/v1/reminders/{made['id']}", {"rule": {"kind": "weekly", "days": ["Monday", "sat"],
                                                                   "times": ["07:00"]}}, token=token)
    assert r.status == 200, r.text
    assert r.json["rule"] == {"kind": "weekly", "days": ["mon", "sat"], "times": ["07:00"]}
    assert r.json["next_fire_at"] == "2026-11-20T23:00:00.000Z" and r.json["text"] == "该喝水啦"
    r = w.client.put(f"/api/v1/reminders/{made['id']}", {"enabled": False}, token=token)
    assert r.json["next_fire_at"] is None
    r = w.client.put(f"/api/v1/reminders/{made['id']}", {"enabled": True, "title": "多喝水"}, token=token)
    assert r.json["next_fire_at"] == "2026-11-20T23:00:00.000Z" and r.json["title"] == "多喝水"

    assert w.client.delete(f"/api/v1/reminders/{made['id']}", token=token).status == 204
    r = w.client.get(f"/api/v1/reminders/{made['id']}", token=token)
    assert r.status == 404 and r.json["error"]["code"] == "reminder_not_found"


def test_another_users_reminder_is_404(world):
    w = world()
    alice, bob = w.user("alice"), w.user("bob")
    mine = w.create(alice, title="喝水", rule={"kind": "daily", "times": ["10:00"]})
    for method in ("get", "put", "delete"):
        r = getattr(w.client, method)(f"/api/v1/reminders/{mine['id']}", token=bob,
                                      **({"body": {"title": "x"}} if method == "put" else {}))
        assert r.status == 404 and r.json["error"]["code"] == "reminder_not_found"
    assert w.client.get(f"/api/v1/reminders/{mine['id']}/deliveries", token=bob).status == 404
    assert w.client.get("/api/v1/reminders", token=bob).json["items"] == []
    assert w.client.get("/api/v1/reminders").status == 401


@pytest.mark.parametrize("body, code, says", [
    ({"rule": {"kind": "daily", "times": ["10:00"]}}, "missing_field", "title: required"),
    ({"title": "x"}, "missing_field", "rule: required"),
    ({"title": "x", "rule": {"kind": "hourly"}}, "invalid_rule", "rule.kind: must be one of once, daily, weekly, interval"),
    ({"title": "x", "rule": {"kind": "daily", "times": ["25:00"]}}, "invalid_rule", 'rule.times[0]: "25:00" is not a time of day'),
    ({"title": "x", "rule": {"kind": "daily", "times": []}}, "invalid_rule", "rule.times: give one or more times"),
    ({"title": "x", "rule": {"kind": "daily", "at": "10:00"}}, "invalid_rule", "rule.at: not a key of a daily rule"),
    ({"title": "x", "rule": {"kind": "weekly", "days": ["someday"], "times": ["10:00"]}}, "invalid_rule",
     'rule.days[0]: "someday" is not a weekday'),
    ({"title": "x", "rule": {"kind": "interval", "every_minutes": 1}}, "invalid_rule", "rule.every_minutes: must be a whole number of minutes 5-1440"),
    ({"title": "x", "rule": {"kind": "interval", "every_hours": 2, "from": "22:00", "until": "06:00"}}, "invalid_rule",
     "a window cannot cross midnight"),
    ({"title": "x", "rule": {"kind": "interval"}}, "invalid_rule", "every_minutes or every_hours"),
    ({"title": "x", "rule": {"kind": "once", "at": "2026-11-19T08:00:00+08:00"}}, "invalid_rule", "is in the past"),
    ({"title": "x", "rule": {"kind": "once", "at": "tomorrow"}}, "invalid_rule", "rule.at: \"tomorrow\" is not a date and time"),
    ({"title": "x", "rule": "daily"}, "invalid_rule", "rule: must be an object"),
    ({"title": "x", "timezone": "Asia/Beijing", "rule": {"kind": "daily", "times": ["10:00"]}}, "invalid_timezone",
     "unknown time zone 'Asia/Beijing'"),
    ({"title": "x", "channels": ["pigeon"], "rule": {"kind": "daily", "times": ["10:00"]}}, "invalid_field",
     "unknown channel 'pigeon'; known: inapp, wechat, webhook"),
    ({"title": "x", "channels": ["webhook"], "rule": {"kind": "daily", "times": ["10:00"]}}, "channel_unavailable",
     "webhook: no webhook is set up on this server (reminders.webhook.url)"),
    ({"title": "x", "agent": "chef", "rule": {"kind": "daily", "times": ["10:00"]}}, "invalid_field", "agent: no agent 'chef'"),
    ({"title": "x", "colour": "red", "rule": {"kind": "daily", "times": ["10:00"]}}, "invalid_field", "colour: not a reminder field"),
])
def test_bad_reminders_are_400s_that_say_what_is_wrong(world, body, code, says):
    w = world()
    r = w.client.post("/api/v1/reminders", body, token=w.user())
    assert r.status == 400, r.text
    assert r.json["error"]["code"] == code and says in r.json["error"]["message"], r.json


def test_timezone_defaults_to_the_servers(world):
    w = world(overrides={"server": {"timezone": "America/New_York"}})
    token = w.user(tz=None)
    made = w.create(token, title="walk", rule={"kind": "daily", "times": ["18:00"]})
    assert made["timezone"] == "America/New_York" and made["next_fire_at"] == "2026-11-20T23:00:00.000Z"


# ---------------------------------------------------------------------------------------------
# Firing
# ---------------------------------------------------------------------------------------------


def test_one_minute_ahead_arrives_once_across_a_restart(world):
    w = world("2026-11-20T01:59:10Z")  # 09:59:10 in Shanghai
    token = w.user()
    made = w.create(token, title="喝水", text="该喝水啦，起来走动一下。", rule={"kind": "daily", "times": ["10:00"]})
    assert made["next_fire_at"] == "2026-11-20T02:00:00.000Z"
    w.tick("2026-11-20T01:59:40Z")
    assert w.reminder_messages(token) == []
    w.restart()  # the server restarts before it is due
    tick = w.wm.config["reminders"]["tick_seconds"]
    w.tick(now_iso(z("2026-11-20T02:00:00Z") + timedelta(seconds=tick)))  # within one tick of 10:00
    messages = w.reminder_messages(token)
    assert [(m["content"], m["role"], m["reminder_id"]) for m in messages] == [
        ("该喝水啦，起来走动一下。", "assistant", made["id"])]
    w.tick("2026-11-20T02:01:00Z")
    w.restart()  # and again after it fired
    w.tick("2026-11-20T02:02:00Z")
    assert len(w.reminder_messages(token)) == 1
    again = w.reminder(token, made["id"])
    assert again["next_fire_at"] == "2026-11-21T02:00:00.000Z" and again["fire_count"] == 1
    assert again["last_fired_at"] == "2026-11-20T02:00:30.000Z"
    [delivery] = w.deliveries(token, made["id"])
    assert delivery["channel"] == "inapp" and delivery["status"] == "sent" and delivery["late_seconds"] == 30
    assert delivery["fire_id"] == f"{made['id']}@2026-11-20T02:00:00.000Z" and "user_id" not in delivery


def test_inapp_goes_to_the_latest_session_with_the_agent_and_counts_unread(world):
    w = world("2026-11-20T00:00:00Z")
    token = w.user()
    old = w.client.post("/api/v1/health/physical/chat", {"text": "我最近睡不好"}, token=token).json["session_id"]
    latest = w.client.post("/api/v1/health/physical/chat", {"text": "今天走了八千步"}, token=token).json["session_id"]
    other = w.client.post("/api/v1/health/mental/chat", {"text": "有点累"}, token=token).json["session_id"]
    made = w.create(token, title="散步", agent="physical", rule={"kind": "daily", "times": ["08:05", "08:10"]})
    w.tick("2026-11-20T00:05:00Z")
    w.tick("2026-11-20T00:10:00Z")
    sessions = {s["id"]: s for s in w.client.get("/api/v1/health/sessions", token=token).json["items"]}
    assert {sid: s["unread"] for sid, s in sessions.items()} == {latest: 2, old: 0, other: 0}
    assert next(iter(sessions)) == latest  # a reminder makes it the most recent
    page = w.client.get(f"/api/v1/health/sessions/{latest}", token=token).json
    assert page["unread"] == 0
    pushed = page["messages"]["items"][-2:]
    assert [m["content"] for m in pushed] == ["散步", "散步"] and all(m["reminder_id"] == made["id"] for m in pushed)
    assert all(m["role"] == "assistant" and m["emotion"] for m in pushed)
    assert {s["id"]: s["unread"] for s in w.client.get("/api/v1/health/sessions", token=token).json["items"]}[latest] == 0
    # A user with no session with the agent gets a new one, titled after the reminder.
    bob = w.user("bob")
    w.create(bob, title="冥想", agent="mental", rule={"kind": "daily", "times": ["08:20"]})
    w.tick("2026-11-20T00:20:00Z")
    [session] = w.client.get("/api/v1/health/sessions", token=bob).json["items"]
    assert session["agent"] == "mental" and session["title"] == "冥想" and session["unread"] == 1


def test_missed_while_down_fires_once_within_grace(world):
    w = world("2026-11-19T23:00:00Z")  # 07:00 in Shanghai
    token = w.user()
    made = w.create(token, title="吃药", rule={"kind": "daily", "times": ["08:00"]})
    w.stop()  # down from 07:00 ...
    w.clock.set("2026-11-20T00:20:00Z")  # ... to 08:20: 20 minutes late, grace is 30
    w.start()
    w.tick()
    w.tick("2026-11-20T00:21:00Z")
    assert [m["content"] for m in w.reminder_messages(token)] == ["吃药"]
    [delivery] = w.deliveries(token, made["id"])
    assert delivery["status"] == "sent" and delivery["late_seconds"] == 20 * 60
    assert w.reminder(token, made["id"])["next_fire_at"] == "2026-11-21T00:00:00.000Z"


def test_missed_beyond_grace_skips_to_the_next_time_and_says_so(world):
    w = world("2026-11-19T23:00:00Z")
    token = w.user()
    made = w.create(token, title="吃药", rule={"kind": "daily", "times": ["08:00"]})
    w.stop()
    w.clock.set("2026-11-20T01:30:00Z")  # 09:30: 90 minutes late
    w.start()
    w.tick()
    assert w.reminder_messages(token) == []
    [missed] = w.deliveries(token, made["id"])
    assert missed["status"] == "missed" and missed["channel"] is None
    assert "2026-11-20T08:00+08:00" in missed["detail"] and "reminders.grace_minutes (30)" in missed["detail"]
    assert "Next: 2026-11-21T08:00+08:00" in missed["detail"]
    assert w.reminder(token, made["id"])["next_fire_at"] == "2026-11-21T00:00:00.000Z"
    w.tick("2026-11-21T00:00:10Z")  # the next day it fires as usual
    assert len(w.reminder_messages(token)) == 1


def test_a_late_tick_while_running_still_sends_even_with_no_grace(world):
    # grace_minutes: 0 is for times missed while the server was down; a tick that comes 25 s
    # after the due time (the tick interval, a slow webhook before it) is no such miss.
    w = world("2026-11-19T23:59:00Z", overrides={"reminders": {"grace_minutes": 0}})  # 07:59 in Shanghai
    token = w.user()
    made = w.create(token, title="吃药", rule={"kind": "daily", "times": ["08:00"]})
    w.tick()
    w.tick("2026-11-20T00:00:25Z")
    assert [m["content"] for m in w.reminder_messages(token)] == ["吃药"]
    assert w.deliveries(token, made["id"])[0]["status"] == "sent"
    # Down over the next day's 08:00, up 25 s after it: missed, as grace 0 says.
    w.stop()
    w.clock.set("2026-11-21T00:00:25Z")
    w.start()
    w.tick()
    assert len(w.reminder_messages(token)) == 1
    assert w.deliveries(token, made["id"])[0]["status"] == "missed"


def test_down_for_days_fires_the_latest_time_once(world):
    w = world("2026-11-20T00:00:00Z")
    token = w.user()
    made = w.create(token, title="站起来活动", rule={"kind": "interval", "every_minutes": 60, "from": "09:00", "until": "18:00"})
    w.stop()
    w.clock.set("2026-11-22T03:10:00Z")  # two days later, 11:10: the 11:00 time is 10 minutes late
    w.start()
    w.tick()
    assert len(w.reminder_messages(token)) == 1
    [sent] = w.deliveries(token, made["id"])
    assert sent["due_at"] == "2026-11-22T03:00:00.000Z" and sent["missed_since"] == "2026-11-20T01:00:00.000Z"
    assert w.reminder(token, made["id"])["next_fire_at"] == "2026-11-22T04:00:00.000Z"


def test_once_fires_once_and_is_done(world):
    w = world("2026-11-20T00:00:00Z")
    token = w.user()
    made = w.create(token, title="复查", rule={"kind": "once", "at": "2026-11-20T09:00:00+08:00"})
    for minute in range(55, 70):
        w.tick(now_iso(z("2026-11-20T00:00:00Z") + timedelta(minutes=minute)))
    assert len(w.reminder_messages(token)) == 1
    done = w.reminder(token, made["id"])
    assert done["next_fire_at"] is None and done["next_fire_local"] is None and done["fire_count"] == 1


def test_daily_in_new_york_across_both_dst_changes(world):
    for start, end, expected in [
        ("2026-03-07T00:00:00Z", "2026-03-10T00:00:00Z",
         ["2026-03-07T13:00:00.000Z", "2026-03-08T12:00:00.000Z", "2026-03-09T12:00:00.000Z"]),
        ("2026-10-31T00:00:00Z", "2026-11-03T00:00:00Z",
         ["2026-10-31T12:00:00.000Z", "2026-11-01T13:00:00.000Z", "2026-11-02T13:00:00.000Z"]),
    ]:
        w = world(start)
        token = w.user(f"ny{start[5:7]}", tz="America/New_York")
        made = w.create(token, title="morning walk", rule={"kind": "daily", "times": ["08:00"]})
        while w.clock.now < z(end):
            w.clock.advance(minutes=30)
            w.tick()
        assert [d["due_at"] for d in reversed(w.deliveries(token, made["id"]))] == expected
        assert len(w.reminder_messages(token)) == 3
        w.stop()


def test_a_crash_between_sending_and_bookkeeping_does_not_send_twice(world):
    w = world("2026-11-20T00:00:00Z")
    token = w.user()
    made = w.create(token, title="喝水", rule={"kind": "daily", "times": ["08:05"]})
    w.tick("2026-11-20T00:05:00Z")
    # What a crash right after the delivery leaves on disk: the message and the delivery record
    # are there, but next_fire_at was not moved on yet.
    w.wm.storage.update("reminders", made["id"], {"next_fire_at": made["next_fire_at"]})
    w.restart()
    w.tick("2026-11-20T00:06:00Z")
    assert len(w.reminder_messages(token)) == 1
    assert len(w.deliveries(token, made["id"])) == 1
    assert w.reminder(token, made["id"])["next_fire_at"] == "2026-11-21T00:05:00.000Z"


def test_editing_while_due_keeps_the_clients_time(world):
    w = world("2026-11-20T00:00:00Z")
    token = w.user()
    made = w.create(token, title="喝水", rule={"kind": "daily", "times": ["08:05"]})
    r = w.client.put(f"/api/v1/reminders/{made['id']}", {"rule": {"kind": "daily", "times": ["09:00"]}}, token=token)
    assert r.json["next_fire_at"] == "2026-11-20T01:00:00.000Z"
    w.tick("2026-11-20T00:05:30Z")
    assert w.reminder_messages(token) == []
    w.tick("2026-11-20T01:00:00Z")
    assert len(w.reminder_messages(token)) == 1


def test_agent_phrases_the_reminder_and_the_fixed_text_is_the_fallback(world):
    with FakeOpenAI(reply="“Alice，十点啦，喝杯温水吧～”") as upstream:
        w = world("2026-11-20T01:59:00Z", overrides={
            "providers": {"upstream": {"plugin": "openai", "base_url": upstream.url, "model": "m", "api_key": "k"}},
            "agents": {"mental": {"providers": ["upstream", "offline"]}}})
        token = w.user(full_name="Alice")
        made = w.create(token, title="喝水", note="一杯 200 毫升", text="该喝水啦", phrase=True, agent="mental",
                        rule={"kind": "daily", "times": ["10:00", "11:00"]})
        w.tick("2026-11-20T02:00:00Z")
        [message] = w.reminder_messages(token)
        assert message["content"] == "Alice，十点啦，喝杯温水吧～"
        system, ask = upstream.last.body["messages"]
        assert system["role"] == "system" and "心理健康" in system["content"]
        assert ask["role"] == "user" and "喝水" in ask["content"] and "一杯 200 毫升" in ask["content"]
        assert "Alice" in ask["content"] and "$" not in ask["content"]
        assert w.deliveries(token, made["id"])[0]["phrased_by"] == "upstream"

        upstream.mode = "500"
        w.tick("2026-11-20T03:00:00Z")
        assert [m["content"] for m in w.reminder_messages(token)][-1] == "该喝水啦"
        latest = w.deliveries(token, made["id"])[0]
        assert latest["status"] == "sent" and latest["phrased_by"] is None and "upstream" in latest["phrase_error"]


def test_offline_agents_do_not_phrase(world):
    w = world("2026-11-20T01:59:00Z")  # the shipped config: offline providers only
    token = w.user()
    w.create(token, title="喝水", phrase=True, rule={"kind": "daily", "times": ["10:00"]})
    w.tick("2026-11-20T02:00:00Z")
    assert [m["content"] for m in w.reminder_messages(token)] == ["喝水"]


def test_config_reminder_for_users_who_opt_in(world):
    w = world("2026-11-19T23:00:00Z")  # 07:00 in Shanghai; the shipped check-in is at 08:30
    alice, bob = w.user("alice"), w.user("bob", tz="America/New_York")
    w.tick()
    assert w.client.get("/api/v1/reminders", token=alice).json["items"] == []
    for token in (alice, bob):
        r = w.client.put("/api/v1/users/settings", {"settings": {"daily_checkin": True}}, token=token)
        assert r.status == 200, r.text
    w.tick()
    [checkin] = w.client.get("/api/v1/reminders", token=alice).json["items"]
    assert checkin["source"] == "config:checkin" and checkin["title"] == "每日打卡"
    assert checkin["next_fire_local"] == "2026-11-20T08:30:00+08:00"
    [bobs] = w.client.get("/api/v1/reminders", token=bob).json["items"]
    assert bobs["timezone"] == "America/New_York" and bobs["next_fire_local"] == "2026-11-20T08:30:00-05:00"
    r = w.client.put(f"/api/v1/reminders/{checkin['id']}", {"title": "x"}, token=alice)
    assert r.status == 409 and '"daily_checkin": false' in r.json["error"]["message"]
    assert w.client.delete(f"/api/v1/reminders/{checkin['id']}", token=alice).status == 409

    w.tick("2026-11-20T00:30:00Z")
    [message] = w.reminder_messages(alice)
    assert message["content"] == "早上好！昨晚睡得怎么样？今天感觉如何？"  # offline: the fixed text
    assert w.reminder_messages(bob) == []  # it is 19:30 in New York
    w.restart()
    w.tick("2026-11-20T00:31:00Z")
    assert len(w.reminder_messages(alice)) == 1  # the copy kept its next time across the restart

    w.client.put("/api/v1/users/settings", {"settings": {"daily_checkin": False}}, token=alice)
    w.tick()
    assert w.client.get("/api/v1/reminders", token=alice).json["items"] == []
    assert len(w.client.get("/api/v1/reminders", token=bob).json["items"]) == 1


def test_health_shows_the_next_reminder(world):
    w = world("2026-11-20T00:00:00Z")
    health = w.client.get("/api/v1/test/health").json
    assert health["scheduler_running"] is False and health["next_reminder_at"] is None  # not started here
    w.create(w.user(), title="喝水", rule={"kind": "daily", "times": ["10:00"]})
    assert w.client.get("/api/v1/test/health").json["next_reminder_at"] == "2026-11-20T02:00:00.000Z"
