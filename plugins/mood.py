"""The ``mood`` plugin: GET /api/v1/health/mood, a timeline of the emotion labels of the user's
own messages.

Every message a user sends is stored with an emotion label (plugins/chat.py tags it with the
configured tagger). For the last N days, in the user's own time zone (``settings.timezone``),
this counts each label per day, names the day's dominant one, scores the day (the mean of the
labels' valence from config: happy 1 ... sad -1), and compares the second half of the period with
the first to say whether the mood is improving, worsening or steady.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, time, timedelta, timezone

import bottle

from wellmate import ApiError, Setting, hookimpl, now_iso, query_integer
from wellmate_plugins._openapi import Api, integer, number, obj, string

DEFAULT_VALENCE = {"happy": 1.0, "calm": 0.5, "neutral": 0.0, "tired": -0.5, "sad": -1.0, "anxious": -1.0,
                   "angry": -1.0}


@hookimpl
def config_schema():
    return {"mood": {
        "valence": Setting(dict(DEFAULT_VALENCE), "How pleasant each label is, -1 to 1, for day scores and "
                                                  "the trend; a label not listed counts 0.", dict),
        "max_days": Setting(92, "Longest period ?days= may ask for.", int, min=1, max=3660),
        "trend_threshold": Setting(0.25, "How much the mean score must change between the halves of the "
                                         "period to count as improving or worsening.", float, min=0, max=2),
    }}


def timeline(wm, user: dict, days: int, agent: str | None = None, now: datetime | None = None) -> dict:
    """The mood of ``user``'s last ``days`` days (today included, in their time zone)."""
    conf = wm.config["mood"]
    valence = {**{label: 0.0 for label in wm.config["emotion"]["labels"]},
               **{str(k): float(v) for k, v in conf["valence"].items() if isinstance(v, (int, float))}}
    zone_name, zone = wm.user_zone(user)
    today = (now or datetime.now(timezone.utc)).astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    since = now_iso(datetime.combine(first, time.min, zone))
    labels = list(wm.config["emotion"]["labels"])
    per_day = {first + timedelta(days=i): Counter() for i in range(days)}
    latest = {}  # (day, label) -> created_at of its latest message, to break ties
    # The chat plugin's counters (per hour and quarter), not the messages: what this costs follows
    # the hours the user talked in the period, not how many sessions or messages they hold.
    chat = wm.service("chat")
    for moment, label, count, last_at in chat.sessions.moods(user["id"], since, agent) if chat else ():
        day = moment.astimezone(zone).date()
        if day not in per_day:
            continue
        per_day[day][label] += count
        latest[(day, label)] = max(latest.get((day, label), ""), last_at)
        if label not in labels:
            labels.append(label)  # a label from before the config changed

    def dominant(counts: Counter, days_in) -> str | None:
        if not counts:
            return None
        top = max(counts.values())
        tied = [label for label, n in counts.items() if n == top]
        # On a tie, the label felt most recently.
        return max(tied, key=lambda label: max(latest.get((d, label), "") for d in days_in))

    def score(counts: Counter):
        total = sum(counts.values())
        return round(sum(valence.get(label, 0.0) * n for label, n in counts.items()) / total, 3) if total else None

    daily = []
    for day, counts in per_day.items():
        daily.append({"date": day.isoformat(), "counts": {label: counts.get(label, 0) for label in labels},
                      "total": sum(counts.values()), "dominant": dominant(counts, [day]), "score": score(counts)})
    overall = sum(per_day.values(), Counter())
    ordered = list(per_day)
    halves = (ordered[:days // 2], ordered[days // 2:])
    first_half, second_half = (score(sum((per_day[d] for d in half), Counter())) for half in halves)
    if first_half is None or second_half is None:
        direction, change = "unknown", None  # one half has no messages: nothing to compare
    else:
        change = round(second_half - first_half, 3)
        threshold = conf["trend_threshold"]
        direction = "improving" if change >= threshold else "worsening" if change <= -threshold else "steady"
    return {
        "days": days, "timezone": zone_name, "from": first.isoformat(), "to": today.isoformat(), "agent": agent,
        "labels": labels, "daily": daily,
        "counts": {label: overall.get(label, 0) for label in labels}, "total": sum(overall.values()),
        "dominant": dominant(overall, ordered), "score": score(overall),
        "trend": {"direction": direction, "change": change, "first_half": first_half, "second_half": second_half},
    }


@hookimpl
def routes(app, wm):
    @app.get("/api/v1/health/mood", api=Api(
        "The labels of the user's messages per day over the last days, with the trend",
        query={"days": integer(1, wm.config["mood"]["max_days"], default=7), "agent": string(description="only this agent's sessions")},
        responses={200: obj({"days": integer(1), "timezone": string(), "from": string(format="date"), "to": string(format="date"),
                             "agent": string(nullable=True), "labels": {"type": "array", "items": string()},
                             "daily": {"type": "array", "items": obj()}, "counts": obj(), "total": integer(0),
                             "dominant": string(nullable=True), "score": number(nullable=True),
                             "trend": obj({"direction": string(), "change": number(nullable=True)})},
                            required=["days", "timezone", "from", "to", "labels", "daily", "counts", "total", "trend"])},
        errors={404: "no such agent"}))
    def mood():
        user = wm.require_user()
        query = bottle.request.query
        max_days = wm.config["mood"]["max_days"]
        days = query_integer("days", 7, 1, max_days, " (mood.max_days)")
        agent = query.get("agent") or None
        if agent is not None and agent not in wm.config["agents"]:
            raise ApiError(404, "unknown_agent", f"No agent named {agent!r}; agents: {', '.join(wm.config['agents'])}.")
        return timeline(wm, user, days, agent)
