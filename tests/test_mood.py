"""GET /api/v1/health/mood: per day in the user's time zone, the labels of their own messages,
the dominant one, and the trend, over a week of messages seeded into the real storage."""

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from wellmate import new_id, now_iso

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(day, hour, minute=0, zone=SHANGHAI) -> str:
    """A local wall-clock time on ``day`` as our UTC ISO form."""
    return now_iso(datetime.combine(day, time(hour, minute), zone))


def seed(wm, user_id, agent, messages):
    """One session holding ``messages``: (created_at, role, emotion), appended in time order."""
    sessions = wm.service("chat").sessions
    session = sessions.create(user_id, agent, "seeded")
    for created_at, role, emotion in sorted(messages):
        sessions.append(session["id"], {"id": new_id(), "role": role, "content": f"{role} {emotion}",
                                        "emotion": emotion, "created_at": created_at})
    return session["id"]


@pytest.fixture
def week(make_wm, serve):
    """A user in Shanghai with a week that starts sad and ends happy, plus noise that must not count."""
    served = serve(make_wm())
    client = served.client
    me = client.register("mei")
    other = client.register("other")
    token = me["access_token"]
    client.put("/api/v1/users/settings", {"settings": {"timezone": "Asia/Shanghai"}}, token=token)
    today = datetime.now(SHANGHAI).date()
    days = [today - timedelta(days=6 - i) for i in range(7)]  # days[6] is today
    uid = me["user"]["uuid"]
    mental = [
        (at(days[0], 9), "user", "sad"), (at(days[0], 9, 1), "assistant", "calm"),
        (at(days[0], 21), "user", "sad"), (at(days[0], 22), "user", "anxious"),
        (at(days[1], 8), "user", "anxious"), (at(days[1], 23, 50), "user", "tired"),
        # 00:30 in Shanghai is 16:30 UTC the day before: it belongs to days[2], not days[1].
        (at(days[2], 0, 30), "user", "tired"),
        (at(days[4], 10), "user", "calm"), (at(days[4], 11), "user", "happy"),
        (at(days[5], 12), "user", "happy"), (at(days[5], 13), "user", "happy"), (at(days[5], 14), "user", "calm"),
        (at(days[6], 0, 5), "user", "happy"),
    ]
    physical = [(at(days[3], 15), "user", "neutral"), (at(days[3], 15, 1), "assistant", "neutral")]
    old = [(at(today - timedelta(days=30), 12), "user", "angry")]  # before the period: an older session
    seed(served.wm, uid, "mental", old)
    seed(served.wm, uid, "mental", mental)
    seed(served.wm, uid, "physical", physical)
    seed(served.wm, other["user"]["uuid"], "mental", [(at(days[5], 12), "user", "angry")])
    return client, token, days


def test_a_week_of_seeded_messages(week):
    client, token, days = week
    r = client.get("/api/v1/health/mood?days=7", token=token)
    assert r.status == 200, r.text
    mood = r.json
    assert mood["timezone"] == "Asia/Shanghai" and mood["from"] == days[0].isoformat() and mood["to"] == days[6].isoformat()
    assert mood["labels"] == ["happy", "calm", "neutral", "sad", "anxious", "angry", "tired"]
    daily = {d["date"]: d for d in mood["daily"]}
    assert list(daily) == [d.isoformat() for d in days]

    def counts(day):
        return {k: v for k, v in daily[day.isoformat()]["counts"].items() if v}

    assert counts(days[0]) == {"sad": 2, "anxious": 1}  # the assistant's reply is not the user's mood
    assert daily[days[0].isoformat()]["dominant"] == "sad" and daily[days[0].isoformat()]["score"] == -1.0
    assert counts(days[1]) == {"anxious": 1, "tired": 1}
    assert daily[days[1].isoformat()]["dominant"] == "tired"  # a tie: the feeling of the latest message
    assert counts(days[2]) == {"tired": 1}
    assert counts(days[3]) == {"neutral": 1}  # every agent's messages count
    assert counts(days[4]) == {"calm": 1, "happy": 1}
    assert counts(days[5]) == {"happy": 2, "calm": 1} and daily[days[5].isoformat()]["dominant"] == "happy"
    assert counts(days[6]) == {"happy": 1}
    assert all(d["total"] == sum(d["counts"].values()) for d in mood["daily"])
    assert mood["total"] == 13 and mood["counts"]["angry"] == 0  # not the old message, not the other user's
    assert mood["dominant"] == "happy"  # happy 4 against sad 2, anxious 2, tired 2
    trend = mood["trend"]
    assert trend["direction"] == "improving" and trend["change"] > 1
    assert trend["first_half"] < 0 < trend["second_half"]


def test_agent_filter_and_shorter_periods(week):
    client, token, days = week
    physical = client.get("/api/v1/health/mood?days=7&agent=physical", token=token).json
    assert physical["total"] == 1 and physical["counts"]["neutral"] == 1 and physical["agent"] == "physical"
    today = client.get("/api/v1/health/mood?days=1", token=token).json
    assert today["total"] == 1 and today["dominant"] == "happy" and today["trend"]["direction"] == "unknown"
    month = client.get("/api/v1/health/mood?days=31", token=token).json
    assert month["counts"]["angry"] == 1 and len(month["daily"]) == 31


def test_default_period_and_time_zone(make_wm, serve):
    served = serve(make_wm())
    client = served.client
    me = client.register()
    now = datetime.now(timezone.utc)
    # Sent now, not a minute ago: run just after midnight, a minute ago was yesterday.
    seed(served.wm, me["user"]["uuid"], "mental", [(now_iso(now), "user", "sad")])
    mood = client.get("/api/v1/health/mood", token=me["access_token"]).json
    assert mood["days"] == 7 and mood["timezone"] == "UTC"
    if mood["to"] == now.date().isoformat():  # else midnight came between the two lines: it is yesterday's
        assert mood["daily"][-1]["counts"]["sad"] == 1
    else:
        assert mood["daily"][-2]["counts"]["sad"] == 1


def test_messages_sent_through_chat_show_up_today(client):
    token = client.register()["access_token"]
    for text in ("今天好开心", "好开心啊😊", "有点累"):
        client.post("/api/v1/health/mental/chat", {"text": text}, token=token)
    today = client.get("/api/v1/health/mood?days=1", token=token).json
    assert today["counts"]["happy"] == 2 and today["counts"]["tired"] == 1 and today["dominant"] == "happy"


def test_worsening_and_steady(make_wm, serve):
    served = serve(make_wm({"mood": {"trend_threshold": 0.5}}))
    client = served.client
    me = client.register()
    today = datetime.now(timezone.utc).date()
    days = [today - timedelta(days=3 - i) for i in range(4)]
    seed(served.wm, me["user"]["uuid"], "mental", [(at(days[0], 10, zone=timezone.utc), "user", "happy"),
                                                 (at(days[3], 10, zone=timezone.utc), "user", "sad")])
    trend = client.get("/api/v1/health/mood?days=4", token=me["access_token"]).json["trend"]
    assert trend == {"direction": "worsening", "change": -2.0, "first_half": 1.0, "second_half": -1.0}
    seed(served.wm, me["user"]["uuid"], "mental", [(at(days[1], 10, zone=timezone.utc), "user", "sad"),
                                                 (at(days[2], 10, zone=timezone.utc), "user", "happy")])
    trend = client.get("/api/v1/health/mood?days=4", token=me["access_token"]).json["trend"]
    assert trend == {"direction": "steady", "change": 0.0, "first_half": 0.0, "second_half": 0.0}
    trend = client.get("/api/v1/health/mood?days=2", token=me["access_token"]).json["trend"]
    assert trend["direction"] == "worsening"  # yesterday happy, today sad


@pytest.mark.parametrize("query,status,code", [
    ("days=0", 400, "invalid_field"), ("days=abc", 400, "invalid_field"), ("days=1000", 400, "invalid_field"),
    ("agent=nobody", 404, "unknown_agent"),
])
def test_bad_queries(client, query, status, code):
    token = client.register()["access_token"]
    r = client.get(f"/api/v1/health/mood?{query}", token=token)
    assert r.status == status and r.json["error"]["code"] == code


def test_needs_a_token(client):
    assert client.get("/api/v1/health/mood").status == 401
