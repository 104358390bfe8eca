"""Reminders (docs/reminders.md): rules, the REST API, config-wide reminders, and firing what is
due through delivery channels.

A reminder is stored with its rule, an IANA time zone and ``next_fire_at`` (UTC). The scheduler
plugin calls `Reminders.tick` periodically; a tick fires every reminder whose ``next_fire_at`` has
come, records each delivery, and stores the following time. Everything the tick knows is in
storage, so a restart neither loses nor repeats a reminder:

- Each firing has a ``fire_id`` (the reminder's id and the time it was due). Deliveries are
  recorded per channel under it, and a channel that already has one for this fire_id is not
  sent again: a crash between two channels resumes with the ones not yet done.
- ``next_fire_at`` moves on only after the channels are done.
- Deliveries run in worker threads, ``reminders.delivery_threads`` per channel, so a slow channel
  (a webhook receiver that does not answer: 5 s timeout x 4 attempts + backoff, ~34 s) holds up
  only its own deliveries, not other users' reminders of the same tick. A reminder whose
  delivery is still running is not fired again by the next tick. Lateness (``late_seconds``) is
  measured when the channel has delivered.
- A reminder that came due while the server was down fires once, for its latest missed time, if
  that is at most ``reminders.grace_minutes`` ago; otherwise the miss is recorded and it skips to
  its next time.

Rules are wall-clock times in the reminder's zone, turned into UTC with zoneinfo day by day, so
daylight-saving changes are handled: a time that does not exist on the day clocks spring forward
(02:30 in New York on a March Sunday) fires when the clock reads the same offset after the jump
(03:30); a time that happens twice when clocks fall back fires once, the first time.

Channels are plugins: `register_channels` names them, `deliver_reminder` delivers, and a
reminder lists the channels it wants by name.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from time import monotonic

import bottle

from wellmate import (ApiError, ConfigError, Index, ProviderError, Registry, Setting, field, hookimpl, json_dumps,
                      new_id, now_iso, paged, sent_value, whole_text, zone_or_none)
from wellmate_plugins._openapi import Api, array, boolean, integer, obj, page, paging, string, text

log = logging.getLogger("wellmate.reminders")

KINDS = ("once", "daily", "weekly", "interval")
RULE_KEYS = {
    "once": ("kind", "at"),
    "daily": ("kind", "times"),
    "weekly": ("kind", "days", "times"),
    "interval": ("kind", "every_minutes", "every_hours", "from", "until", "days"),
}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FULL_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CLOCK_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
MIN_INTERVAL_MINUTES = 5  # a companion that speaks every minute is a bug, and spends WeChat quota
MAX_TIMES_A_DAY = 24
CONFIG_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")
CHANNEL_NAME = re.compile(r"[a-z][a-z0-9_]{0,30}")
EDITABLE = ("title", "note", "text", "phrase", "agent", "rule", "timezone", "channels", "enabled")
ONE_DAY = timedelta(days=1)
UTC = timezone.utc
REMINDERS, DELIVERIES = "reminders", "deliveries"  # the collections this plugin keeps


@hookimpl
def config_schema():
    return {"reminders": {
        "enabled": Setting(True, "Run the scheduler in this process, so reminders fire. false: they can be "
                                 "edited but nothing fires.", bool),
        "tick_seconds": Setting(30.0, "Seconds between scheduler ticks: a reminder arrives at most this late.",
                                float, min=0.05, max=3600),
        "grace_minutes": Setting(30, "A reminder missed while the server was down still fires if at most this "
                                     "late; otherwise it skips to its next time.", int, min=0, max=1440),
        "channels": Setting(["inapp"], "Channels of a new reminder that names none.", list),
        "agent": Setting("", "Agent that speaks a reminder that names none (after the user's "
                             "settings.default_agent); empty: the first agent."),
        "prompt": Setting("prompts/reminder.txt", "Prompt asking the agent to phrase a reminder, relative "
                                                  "to config.yaml."),
        "max_per_user": Setting(100, "Most reminders one user may have.", int, min=1, max=10000),
        "keep_deliveries": Setting(100, "Deliveries kept per reminder; older ones are dropped.", int,
                                   min=1, max=10000),
        "delivery_threads": Setting(4, "Deliveries sent at once per channel (and phrasings asked at once): a slow "
                                       "channel holds up only its own deliveries.", int, min=1, max=64),
        "everyone": Setting({}, "Config-wide reminders by name; each user who opts in gets their own.", dict),
    }}


@hookimpl
def register_collections(register):
    # reminders: a user's list (newest first), and the tick's "what is due" and the health
    # check's "what is next" (earliest next_fire_at first; None, a finished reminder, is never due).
    register(REMINDERS, indexes=[Index(("user_id",), "created_at"), Index((), "next_fire_at")])
    # deliveries: a reminder's history (newest first; the oldest pruned beyond keep_deliveries),
    # and a deleted user's.
    register(DELIVERIES, indexes=[Index(("reminder_id",), "created_at"), ("user_id",)])


# ---------------------------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------------------------


def bad_rule(where: str, message: str) -> ApiError:
    return ApiError(400, "invalid_rule", f"{where}: {message}")


def zone(name, where: str = "timezone"):
    """The ZoneInfo of an IANA name, or a 400 saying it is unknown."""
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "invalid_timezone", f"{where}: give an IANA time zone name such as Asia/Shanghai")
    found = zone_or_none(name)
    if found is None:
        raise ApiError(400, "invalid_timezone", f"{where}: unknown time zone {name!r}; use an IANA name "
                                                "such as Asia/Shanghai or America/New_York")
    return found


def parse_clock(value, where: str) -> str:
    """'8:05' or '08:05' -> '08:05'."""
    m = CLOCK_TIME.fullmatch(value.strip()) if isinstance(value, str) else None
    if not m:
        raise bad_rule(where, f"{sent_value(value)} is not a time of day; use HH:MM, 00:00-23:59")
    return f"{int(m.group(1)):02d}:{m.group(2)}"


def parse_times(value, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise bad_rule(where, 'give one or more times of day, e.g. ["08:00", "20:00"]')
    if len(value) > MAX_TIMES_A_DAY:
        raise bad_rule(where, f"at most {MAX_TIMES_A_DAY} times a day; for more use an interval rule")
    return sorted({parse_clock(v, f"{where}[{i}]") for i, v in enumerate(value)})


def parse_days(value, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise bad_rule(where, 'give one or more weekdays, e.g. ["mon", "wed", "fri"]')
    days = set()
    for i, day in enumerate(value):
        name = day.strip().lower() if isinstance(day, str) else None
        if name in FULL_WEEKDAYS:
            name = name[:3]
        if name not in WEEKDAYS:
            raise bad_rule(f"{where}[{i}]", f"{sent_value(day)} is not a weekday; use {', '.join(WEEKDAYS)}")
        days.add(name)
    return [d for d in WEEKDAYS if d in days]


def parse_rule(raw, tz, now: datetime | None) -> dict:
    """Check a rule from a client or config.yaml and return it in its stored form. ``tz`` is the
    reminder's zone (a ``once`` time without an offset is read in it); with ``now``, a ``once`` time
    in the past is refused."""
    example = '{"kind": "daily", "times": ["08:00"]}'
    if not isinstance(raw, dict):
        raise bad_rule("rule", f"must be an object, e.g. {example}")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise bad_rule("rule.kind", f"must be one of {', '.join(KINDS)}; got {sent_value(kind)}")
    for key in raw:
        if key not in RULE_KEYS[kind]:
            raise bad_rule(f"rule.{key}", f"not a key of a {kind} rule; its keys are {', '.join(RULE_KEYS[kind])}")
    if kind == "once":
        at = parse_moment(raw.get("at"), tz)
        if now is not None and at <= now:
            raise bad_rule("rule.at", f"{at.astimezone(tz).isoformat(timespec='minutes')} is in the past")
        return {"kind": "once", "at": at.astimezone(tz).isoformat(timespec="seconds")}
    if kind == "daily":
        return {"kind": "daily", "times": parse_times(raw.get("times"), "rule.times")}
    if kind == "weekly":
        return {"kind": "weekly", "days": parse_days(raw.get("days"), "rule.days"),
                "times": parse_times(raw.get("times"), "rule.times")}
    # interval
    minutes, hours = raw.get("every_minutes"), raw.get("every_hours")
    if (minutes is None) == (hours is None):
        raise bad_rule("rule", "an interval rule needs every_minutes or every_hours (one of them)")
    if hours is not None:
        if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= 24:
            raise bad_rule("rule.every_hours", f"must be a whole number of hours 1-24, got {sent_value(hours)}")
        minutes = hours * 60
    elif isinstance(minutes, bool) or not isinstance(minutes, int) or not MIN_INTERVAL_MINUTES <= minutes <= 1440:
        raise bad_rule("rule.every_minutes", f"must be a whole number of minutes {MIN_INTERVAL_MINUTES}-1440, "
                                             f"got {sent_value(minutes)}")
    start = parse_clock(raw.get("from", "00:00"), "rule.from")
    until = parse_clock(raw.get("until", "23:59"), "rule.until")
    if until < start:
        raise bad_rule("rule.until", f"{until} is before rule.from {start}; a window cannot cross midnight "
                                     "(make two reminders)")
    rule = {"kind": "interval", "every_minutes": minutes, "from": start, "until": until}
    if raw.get("days") is not None:
        rule["days"] = parse_days(raw["days"], "rule.days")
    return rule


def parse_moment(value, tz) -> datetime:
    """A client's date and time: with an offset it is exact; without one it is in ``tz``."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise bad_rule("rule.at", f"{sent_value(value)} is not a date and time; use e.g. 2026-11-20T08:00 "
                                  "(in the reminder's timezone) or 2026-11-20T08:00:00+08:00")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)


def day_slots(rule: dict) -> list[time]:
    """The wall-clock times of day a daily, weekly or interval rule fires at."""
    if rule["kind"] != "interval":
        return [time(int(t[:2]), int(t[3:])) for t in rule["times"]]
    start = int(rule["from"][:2]) * 60 + int(rule["from"][3:])
    until = int(rule["until"][:2]) * 60 + int(rule["until"][3:])
    return [time(m // 60, m % 60) for m in range(start, until + 1, rule["every_minutes"])]


def _on_day(rule: dict, tz, day: date) -> list[datetime]:
    """The moments (UTC) the rule fires on one local day.

    ``datetime.combine(..., tzinfo=tz)`` has fold=0: a wall time that happens twice (clocks fall
    back) means its first occurrence, and one that does not exist (clocks spring forward) is read
    with the offset before the jump, which lands the same distance after it (02:30 -> 03:30)."""
    days = rule.get("days")
    if days and WEEKDAYS[day.weekday()] not in days:
        return []
    return [datetime.combine(day, slot, tzinfo=tz).astimezone(UTC) for slot in day_slots(rule)]


def next_time(rule: dict, tz, after: datetime) -> datetime | None:
    """The first moment strictly after ``after`` (aware) that the rule fires, in UTC; None if never."""
    if rule["kind"] == "once":
        at = datetime.fromisoformat(rule["at"]).astimezone(UTC)
        return at if at > after else None
    day = after.astimezone(tz).date() - ONE_DAY
    for _ in range(10):  # a weekly rule fires within 8 local days
        found = [m for m in _on_day(rule, tz, day) if m > after]
        if found:
            # A moment shifted by a DST jump near midnight may pass the next day's first one.
            return min(found + [m for m in _on_day(rule, tz, day + ONE_DAY) if m > after])
        day += ONE_DAY
    return None


def previous_time(rule: dict, tz, until: datetime) -> datetime | None:
    """The last moment at or before ``until`` that the rule fires, in UTC; None if none."""
    if rule["kind"] == "once":
        at = datetime.fromisoformat(rule["at"]).astimezone(UTC)
        return at if at <= until else None
    day = until.astimezone(tz).date() + ONE_DAY
    for _ in range(10):
        found = [m for m in _on_day(rule, tz, day) if m <= until]
        if found:
            return max(found + [m for m in _on_day(rule, tz, day - ONE_DAY) if m <= until])
        day -= ONE_DAY
    return None


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


# ---------------------------------------------------------------------------------------------
# Channels
# ---------------------------------------------------------------------------------------------


@dataclass
class Channel:
    name: str
    plugin_name: str
    ready: object  # ready(user, wm) -> None or the reason this user cannot be reached
    caller: object  # the deliver_reminder hook of the registering plugin only

    def reason_unready(self, user, wm) -> str | None:
        return self.ready(user, wm) if self.ready else None


def collect_channels(pm) -> Registry:
    """Ask every plugin for its channels, remembering which plugin registered each, so that a
    reminder's channel is delivered by that plugin: chosen by name, never by hook order."""
    deliverers = {impl.plugin_name for impl in pm.hook.deliver_reminder.get_hookimpls()}

    def channel(name, plugin_name, ready=None):
        where = f"plugin {plugin_name}: register_channels"
        if not isinstance(name, str) or not CHANNEL_NAME.fullmatch(name):
            raise ConfigError(f"{where}: a channel name is lower-case letters, digits and _, got {name!r}")
        if plugin_name not in deliverers:
            raise ConfigError(f"{where}: registers channel '{name}' but has no deliver_reminder hook")
        others = [p for p in pm.get_plugins() if p is not pm.get_plugin(plugin_name)]
        return Channel(name, plugin_name, ready, pm.subset_hook_caller("deliver_reminder", remove_plugins=others))

    return Registry.collect(pm, "register_channels", "channel", channel)


class Workers:
    """A few daemon threads running jobs of one kind (one channel's deliveries, or composing
    messages), started at the first job. Daemon threads, so a delivery stuck past the shutdown
    bound does not keep the process from exiting (its fire_id is sent again after the restart)."""

    def __init__(self, name: str, size: int):
        self.jobs: queue.Queue = queue.Queue()
        self.threads = [threading.Thread(target=self._run, name=f"reminders-{name}-{i}", daemon=True)
                        for i in range(size)]
        for thread in self.threads:
            thread.start()

    def submit(self, job, *args):
        self.jobs.put((job, args))

    def _run(self):
        while True:
            job, args = self.jobs.get()
            if job is None:
                return
            try:
                job(*args)
            except Exception:  # the job records its own failures; this is a bug in that
                log.exception("a reminder job failed")

    def stop(self, deadline: float):
        """Let the running jobs end by ``deadline`` (monotonic); queued ones are dropped (they go
        out after the restart). Return the threads still running then."""
        while True:
            try:
                self.jobs.get_nowait()
            except queue.Empty:
                break
        for _ in self.threads:
            self.jobs.put((None, ()))
        for thread in self.threads:
            thread.join(max(0.0, deadline - monotonic()))
        return [t for t in self.threads if t.is_alive()]


class Firing:
    """One firing of one reminder in flight: what is sent, and the channels still sending."""

    def __init__(self, reminder: dict, user: dict, latest: datetime, due: datetime, now: datetime, fire_id: str):
        self.reminder, self.user, self.latest, self.due, self.now = reminder, user, latest, due, now
        self.fire_id = fire_id
        self.message: dict = {}
        self.pending: set[str] = set()
        self.abandoned = False  # a channel was not sent because the server is stopping
        self.lock = threading.Lock()


# ---------------------------------------------------------------------------------------------
# The service
# ---------------------------------------------------------------------------------------------


class Reminders:
    """Reminders of every user: checking what clients send, computing times, and firing.

    ``clock`` returns the current time (aware UTC); tests replace it to walk through days without
    waiting. The scheduler's thread calls `tick`; routes call the rest."""

    def __init__(self, wm):
        self.wm = wm
        self.config = wm.config["reminders"]
        self.storage = wm.storage
        self.clock = lambda: datetime.now(UTC)
        where = f"{wm.config_path.name}: reminders"
        if not wm.prompts.path(self.config["prompt"]).is_file():
            raise ConfigError(f"{where}.prompt: file {self.config['prompt']} not found next to {wm.config_path.name}")
        agents = wm.config["agents"]
        if self.config["agent"] and self.config["agent"] not in agents:
            raise ConfigError(f"{where}.agent: no agent {self.config['agent']!r}; agents: {', '.join(agents)}")
        self.channels = collect_channels(wm.pm)
        for i, name in enumerate(self.config["channels"]):
            self.channels.choose(name, f"{where}.channels[{i}]")
        self.everyone = self._check_everyone(self.config["everyone"], f"{where}.everyone")
        self.grace = timedelta(minutes=self.config["grace_minutes"])
        self.lock = threading.RLock()  # an API write and the tick's bookkeeping of one reminder
        self._tick_lock = threading.Lock()  # one tick at a time
        self.stopping = threading.Event()  # set at shutdown: deliveries stop waiting to retry
        self._attempted: dict[str, set] = {}  # fire_id -> channels tried by this process
        self._in_flight: dict[str, Firing] = {}  # reminder id -> its firing still being delivered
        self._in_flight_changed = threading.Condition()
        self._workers: dict[tuple, Workers] = {}  # ("compose",), ("phrase",), ("channel", name) -> its threads
        self._recording = threading.Lock()
        self._closed = False  # after shutdown: a delivery that ends late records nothing (storage is closed)
        self._everyone_synced = False  # the pass over every user, at the first tick
        self.ticks = 0
        # The first tick of this process: a time due before it came while the server was down,
        # and only such a time can be too late to send (grace_minutes). A time due later is
        # always sent, however long a tick took (a slow webhook) or however long the tick is.
        self.ticking_since: datetime | None = None

    def now(self) -> datetime:
        return self.clock()

    def wait(self, seconds: float) -> bool:
        """Sleep for a delivery's retry backoff; True if the server is stopping (give up)."""
        return self.stopping.wait(seconds)

    def stop_waiting(self) -> None:
        """The server is stopping: deliveries waiting to retry give up (see `wait`)."""
        self.stopping.set()

    def resume(self) -> None:
        """The scheduler runs (again): deliveries wait for their retries."""
        self.stopping.clear()

    # -- what is stored: the collections reminders and deliveries ---------------------------------
    def get(self, reminder_id: str) -> dict | None:
        return self.storage.get(REMINDERS, reminder_id)

    def list(self, user_id: str, limit: int = 50, before: str | None = None) -> tuple[list, str | None]:
        """A page of the user's reminders, newest first."""
        return self.storage.find(REMINDERS, {"user_id": user_id}, order="-created_at", limit=limit, before=before)

    def count(self) -> int:
        """How many reminders are stored, of every user (the admin's stats)."""
        return self.storage.count(REMINDERS)

    def _remove(self, reminder_id: str) -> bool:
        """Delete a reminder, then its deliveries (a crash in between leaves deliveries of no
        reminder: never listed, and gone with their user)."""
        removed = self.storage.delete(REMINDERS, reminder_id)
        self.storage.delete_where(DELIVERIES, {"reminder_id": reminder_id})
        return removed

    def due(self, now: datetime) -> list:
        """Every reminder with next_fire_at <= now, earliest first: what the tick fires. It costs
        what is due, not how many reminders (or users) exist."""
        found, before, end = [], None, now_iso(now) + "\0"  # end is exclusive; now + "\0" is the least text after now
        while True:
            page, before = self.storage.find(REMINDERS, order="next_fire_at", start="", end=end, limit=500,
                                             before=before)
            found += page
            if before is None:
                return found

    def next_fire_at(self) -> str | None:
        """When the scheduler has work next (the health check shows it); None: no reminder will fire."""
        first, _ = self.storage.find(REMINDERS, order="next_fire_at", start="", limit=1)
        return first[0]["next_fire_at"] if first else None

    def deliveries(self, reminder_id: str, limit: int = 50, before: str | None = None) -> tuple[list, str | None]:
        """A page of a reminder's deliveries, newest first."""
        return self.storage.find(DELIVERIES, {"reminder_id": reminder_id}, order="-created_at", limit=limit,
                                 before=before)

    def _add_delivery(self, delivery: dict) -> dict:
        """Store a delivery and drop the reminder's oldest beyond reminders.keep_deliveries: a
        reminder every 5 minutes would otherwise keep 105,000 a year."""
        stored = self.storage.insert(DELIVERIES, delivery)
        where = {"reminder_id": delivery["reminder_id"]}
        extra = self.storage.count(DELIVERIES, where) - self.config["keep_deliveries"]
        if extra > 0:
            for old in self.storage.find(DELIVERIES, where, order="created_at", limit=extra)[0]:
                self.storage.delete(DELIVERIES, old["id"])
        return stored

    def delete_user_data(self, user_id: str) -> None:
        """A deleted user's reminders and deliveries; safe to run twice."""
        with self.lock:
            while True:
                mine, _ = self.list(user_id, limit=500)
                if not mine:
                    break
                for reminder in mine:
                    self._remove(reminder["id"])
            self.storage.delete_where(DELIVERIES, {"user_id": user_id})

    def export(self, user_id: str):
        """The user's reminders, newest first, each with its deliveries (newest first), a page at
        a time: for their data export."""
        def own(item: dict) -> dict:
            return {key: value for key, value in item.items() if key != "user_id"}

        def pages(list_method, key):
            before = None
            while True:
                page, before = list_method(key, limit=100, before=before)
                yield from page
                if before is None:
                    return

        for reminder in pages(self.list, user_id):
            yield {**own(reminder), "deliveries": (own(d) for d in pages(self.deliveries, reminder["id"]))}

    # -- checking what clients send ------------------------------------------------------------
    def default_agent(self, user: dict) -> str:
        agents = self.wm.config["agents"]
        preferred = (user.get("settings") or {}).get("default_agent")
        for name in (preferred, self.config["agent"]):
            if name and name in agents:
                return name
        return next(iter(agents), "")

    def check_agent(self, name: str | None) -> str | None:
        """An agent name read with `field` (a string), or None when none was given."""
        agents = self.wm.config["agents"]
        if name is not None and name not in agents:
            raise ApiError(400, "invalid_field", f"agent: no agent {name!r}; agents: {', '.join(agents)}")
        return name

    def check_channels(self, value, user: dict) -> list[str]:
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise ApiError(400, "invalid_field", f"channels: give a list of one or more of {', '.join(self.channels)}")
        names = list(dict.fromkeys(value))
        for name in names:
            channel = self.channels.get(name)
            if channel is None:
                raise ApiError(400, "invalid_field", self.channels.unknown(name, "channels"))
            reason = channel.reason_unready(user, self.wm)
            if reason:
                raise ApiError(400, "channel_unavailable", f"channels: {name}: {reason}")
        return names

    def create(self, user: dict, body: dict) -> dict:
        self._refuse_unknown_keys(body)
        now = self.now()
        # "" (or blanks) fell back to the user's zone silently: a client that means that leaves it out (session 15)
        tz_name = field(body, "timezone", required=False, max_len=64, empty_code="invalid_timezone",
                        leave_out="for the user's own time zone (settings.timezone)") or self.wm.user_zone(user)[0]
        tz = zone(tz_name)
        if body.get("rule") is None:
            raise ApiError(400, "missing_field", 'rule: required, e.g. {"kind": "daily", "times": ["08:00"]}')
        reminder = {
            "id": new_id(), "user_id": user["id"], "source": "api",
            "title": field(body, "title", max_len=60, prose=True),
            "note": field(body, "note", required=False, default="", max_len=500, prose=True),
            "text": field(body, "text", required=False, default="", max_len=500, prose=True),
            "phrase": field(body, "phrase", bool, required=False, default=False),
            "agent": self.check_agent(field(body, "agent", required=False)) or self.default_agent(user),
            "rule": parse_rule(body["rule"], tz, now),
            "timezone": tz.key,
            "channels": self.check_channels(body.get("channels", self.config["channels"]), user),
            "enabled": field(body, "enabled", bool, required=False, default=True),
            "fire_count": 0, "last_fired_at": None, "created_at": now_iso(), "updated_at": now_iso(),
        }
        reminder["next_fire_at"] = self.next_fire(reminder, now)
        with self.lock:
            mine = self.storage.count(REMINDERS, {"user_id": user["id"]})
            if mine >= self.config["max_per_user"]:
                raise ApiError(400, "too_many_reminders", f"You have {mine} reminders, the most this server "
                                                          "allows (reminders.max_per_user); delete some first.")
            return self.storage.insert(REMINDERS, reminder)

    def update(self, user: dict, reminder: dict, body: dict) -> dict:
        self._refuse_unknown_keys(body)
        if reminder.get("source", "").startswith("config:"):
            raise self._managed(reminder)
        now = self.now()
        changes = {}
        for name, kind, max_len in (("title", str, 60), ("note", str, 500), ("text", str, 500)):
            if name in body:
                changes[name] = field(body, name, kind, required=name == "title", default="", max_len=max_len, prose=True)
        for name in ("phrase", "enabled"):
            if name in body:
                changes[name] = field(body, name, bool)
        if "agent" in body:
            changes["agent"] = self.check_agent(field(body, "agent"))
        if "channels" in body:
            changes["channels"] = self.check_channels(body["channels"], user)
        tz = zone(reminder["timezone"])
        if "timezone" in body:
            tz = zone(field(body, "timezone", max_len=64))
            changes["timezone"] = tz.key
        if "rule" in body:
            changes["rule"] = parse_rule(body["rule"], tz, now)
        with self.lock:
            current = self.get(reminder["id"])
            if current is None:
                raise self._not_found(reminder["id"])
            updated = {**current, **changes}
            if {"rule", "timezone", "enabled"} & set(changes):  # when it fires changed: from now on
                changes["next_fire_at"] = self.next_fire(updated, now)
            changes["updated_at"] = now_iso()
            return self.storage.update(REMINDERS, reminder["id"], changes)

    def delete(self, reminder: dict):
        if reminder.get("source", "").startswith("config:"):
            raise self._managed(reminder)
        with self.lock:
            self._remove(reminder["id"])

    def own(self, user: dict, reminder_id: str) -> dict:
        reminder = self.get(reminder_id)
        # Another user's reminder answers exactly like a missing one.
        if reminder is None or reminder.get("user_id") != user["id"]:
            raise self._not_found(reminder_id)
        return reminder

    def _not_found(self, reminder_id) -> ApiError:
        return ApiError(404, "reminder_not_found", f"No reminder {reminder_id!r}.")

    def _managed(self, reminder) -> ApiError:
        name = reminder["source"].split(":", 1)[1]
        key = (self.everyone.get(name) or {}).get("opt_in")
        how = (f' turn it off with PUT /api/v1/users/settings {{"settings": {{"{key}": false}}}}' if key
               else " the server's owner can remove it from config.yaml")
        return ApiError(409, "managed_by_config", f"This reminder comes from the server's config "
                                                  f"(reminders.everyone.{name}) and cannot be changed here;{how}.")

    def _refuse_unknown_keys(self, body: dict):
        unknown = sorted(set(body) - set(EDITABLE))
        if unknown:
            raise ApiError(400, "invalid_field", f"{', '.join(unknown)}: not a reminder field; "
                                                 f"fields: {', '.join(EDITABLE)}")

    def next_fire(self, reminder: dict, after: datetime) -> str | None:
        if not reminder.get("enabled", True):
            return None
        moment = next_time(reminder["rule"], zone(reminder["timezone"]), after)
        return now_iso(moment) if moment else None

    # -- what clients see ----------------------------------------------------------------------
    def view(self, reminder: dict) -> dict:
        out = {key: reminder.get(key) for key in
               ("id", "title", "note", "text", "phrase", "agent", "rule", "timezone", "channels", "enabled",
                "source", "next_fire_at", "last_fired_at", "fire_count", "created_at", "updated_at")}
        out["next_fire_local"] = None
        if reminder.get("next_fire_at"):
            out["next_fire_local"] = utc(reminder["next_fire_at"]).astimezone(
                zone(reminder["timezone"])).isoformat(timespec="seconds")
        return out

    @staticmethod
    def delivery_view(delivery: dict) -> dict:
        return {key: value for key, value in delivery.items() if key != "user_id"}

    # -- config-wide reminders -----------------------------------------------------------------
    def _check_everyone(self, specs: dict, where: str) -> dict:
        """Validate reminders.everyone once, at startup: a mistake there stops the server."""
        checked = {}
        known = ("opt_in", "title", "text", "note", "phrase", "agent", "rule", "channels")
        for name, spec in specs.items():
            here = f"{where}.{name}"
            if not CONFIG_NAME.fullmatch(str(name)):
                raise ConfigError(f"{here}: a name is 1-40 letters, digits, '-' or '_'")
            if not isinstance(spec, dict):
                raise ConfigError(f"{here}: must be a mapping with title, rule, ...")
            for key in spec:
                if key not in known:
                    raise ConfigError(f"{here}.{key}: unknown key; keys: {', '.join(known)}")
            try:
                rule = parse_rule(spec.get("rule"), zone("UTC"), None)
            except ApiError as e:
                raise ConfigError(f"{here}.{e.message}")
            if rule["kind"] == "once":
                raise ConfigError(f"{here}.rule.kind: a reminder for everyone repeats: daily, weekly or interval")
            title = spec.get("title")
            if not isinstance(title, str) or not title.strip():
                raise ConfigError(f"{here}.title: required, e.g. title: 每日打卡")
            agent = spec.get("agent") or self.config["agent"] or next(iter(self.wm.config["agents"]), "")
            if agent not in self.wm.config["agents"]:
                raise ConfigError(f"{here}.agent: no agent {agent!r}; agents: {', '.join(self.wm.config['agents'])}")
            channels = spec.get("channels") or self.config["channels"]
            if not isinstance(channels, list) or any(c not in self.channels for c in channels):
                raise ConfigError(f"{here}.channels: a list of {', '.join(self.channels)}; got {json_dumps(channels)}")
            checked[str(name)] = {
                "opt_in": str(spec.get("opt_in") or ""), "title": title.strip(),
                "text": str(spec.get("text") or ""), "note": str(spec.get("note") or ""),
                "phrase": bool(spec.get("phrase", False)), "agent": agent, "rule": rule, "channels": channels,
            }
        return checked

    def _opted_in(self, user: dict, spec: dict) -> bool:
        if user.get("disabled"):
            return False
        if not spec["opt_in"]:
            return True
        value = (user.get("settings") or {}).get(spec["opt_in"])
        return value is True or str(value).strip().lower() in ("true", "1", "yes", "on")

    def _user(self, user_id: str) -> dict | None:
        return self.wm.service("accounts").get(user_id)

    def _all_users(self):
        before = None
        while True:
            users, before = self.wm.service("accounts").list(limit=100, before=before)
            yield from users
            if before is None:
                return

    def sync_user(self, user_id: str, now: datetime | None = None, durable: bool = True):
        """Give the user their own copy of every reminders.everyone entry they opted into,
        following their time zone and the channels that can reach them, and remove the copies
        of entries they opted out of (or of a disabled or deleted account). The copy has a fixed
        id, so it keeps its own next_fire_at and deliveries like any reminder. Called when the
        user changes (the user_changed hook) and for every user once at start (`sync_everyone`);
        the user is read here, under the lock, so whichever of the two runs last sees them as
        they are now. ``durable=False``: the start-up pass, which syncs once at its end."""
        now = now or self.now()
        with self.lock:
            user = self._user(user_id)
            for name, spec in self.everyone.items():
                reminder_id = f"config-{name}-{user_id}"
                channels = [c for c in spec["channels"] if user and not self.channels[c].reason_unready(user, self.wm)]
                wanted = user is not None and self._opted_in(user, spec) and channels
                current = self.get(reminder_id)
                if not wanted:
                    if current is not None:
                        self._remove(reminder_id)
                    continue
                desired = {key: spec[key] for key in ("title", "text", "note", "phrase", "agent", "rule")}
                desired.update(timezone=self.wm.user_zone(user)[0], channels=channels, enabled=True)
                if current is None:
                    reminder = {"id": reminder_id, "user_id": user_id, "source": f"config:{name}",
                                **desired, "fire_count": 0, "last_fired_at": None,
                                "created_at": now_iso(), "updated_at": now_iso()}
                    reminder["next_fire_at"] = self.next_fire(reminder, now)
                    self.storage.insert(REMINDERS, reminder, durable=durable)
                    continue
                changes = {k: v for k, v in desired.items() if current.get(k) != v}
                if changes:
                    if {"rule", "timezone", "enabled"} & set(changes):
                        changes["next_fire_at"] = self.next_fire({**current, **changes}, now)
                    changes["updated_at"] = now_iso()
                    self.storage.update(REMINDERS, reminder_id, changes, durable=durable)

    def sync_everyone(self, now: datetime):
        """Once per process, after its first tick has fired what was due: remove the copies of
        reminders.everyone entries taken out of config.yaml (one pass over the reminders), then
        bring every user's copies in line with config.yaml as it is now (one pass over the
        users). From then on only a user who changes is looked at (`sync_user`): a tick that read
        every user cost 1.8 s at 10,000 users and 90 s at 50,000, and kept the idle server busy."""
        before = None
        while True:
            page, before = self.storage.find(REMINDERS, order="next_fire_at", limit=500, before=before)
            for reminder in page:
                source = reminder.get("source") or ""
                if source.startswith("config:") and source[7:] not in self.everyone:
                    with self.lock:
                        self._remove(reminder["id"])
            if before is None:
                break
        if self.everyone:
            # Not fsynced one by one (a new entry for 5,000 users: 20 s of fsyncs), but once at the
            # end; a crash before it loses nothing that the next start's pass does not redo.
            for user in self._all_users():
                self.sync_user(user["id"], now, durable=False)
            self.storage.sync(REMINDERS)

    # -- firing --------------------------------------------------------------------------------
    def tick(self, now: datetime | None = None):
        """Fire every reminder that is due at ``now`` (default: the clock). Safe to call from any
        thread; ticks run one at a time."""
        with self._tick_lock:
            now = now or self.now()
            if self.ticking_since is None:
                self.ticking_since = now
            # Taken before the due list is read: a firing that lands in between has stored its
            # next time after this tick read the old one, and must not be fired again from it.
            with self._in_flight_changed:
                busy = set(self._in_flight)
            for reminder in self.due(now):
                if self.stopping.is_set():
                    break
                if reminder["id"] in busy or reminder["id"] in self._in_flight:  # still being delivered
                    continue
                try:
                    self.fire_due(reminder, now)
                except Exception as e:
                    log.exception("reminder %s: firing failed", reminder["id"])
                    self._give_up(reminder, now, e)
            if not self._everyone_synced:
                self._everyone_synced = True  # tried once: a failure is logged, not retried every tick
                try:
                    self.sync_everyone(now)
                except Exception:
                    log.exception("syncing reminders.everyone failed")
            self.ticks += 1

    def fire_due(self, reminder: dict, now: datetime):
        tz = zone(reminder["timezone"])
        due = utc(reminder["next_fire_at"])
        # The latest time it should have fired: later than `due` only if the server was down.
        latest = max(previous_time(reminder["rule"], tz, now) or due, due)
        fire_id = f"{reminder['id']}@{now_iso(latest)}"
        late = now - latest
        user = self._user(reminder["user_id"])
        if user is None:  # a copy of reminders.everyone that a sync made as its account was being deleted
            with self.lock:
                self._remove(reminder["id"])
            return
        if user.get("disabled"):
            self.record(reminder, {"fire_id": fire_id, "due_at": now_iso(latest)}, None,
                        {"status": "skipped", "detail": "The account is disabled."}, now)
            return self.finalize(reminder, now, latest, fired=False)
        if latest < self.ticking_since and late > self.grace:
            following = next_time(reminder["rule"], tz, now)
            self.record(reminder, {"fire_id": fire_id, "due_at": now_iso(latest)}, None, {
                "status": "missed", "late_seconds": int(late.total_seconds()),
                "detail": f"Not sent: it was due at {latest.astimezone(tz).isoformat(timespec='minutes')} while "
                          f"the server was not running, {int(late.total_seconds() // 60)} minutes ago, more than "
                          f"reminders.grace_minutes ({self.config['grace_minutes']}). Next: "
                          f"{following.astimezone(tz).isoformat(timespec='minutes') if following else 'none'}."}, now)
            return self.finalize(reminder, now, latest, fired=False)
        firing = Firing(reminder, user, latest, due, now, fire_id)
        with self._in_flight_changed:
            self._in_flight[reminder["id"]] = firing
        # Phrasing asks a model, which may be slow: in a worker too, not in the tick, and on workers
        # of its own, so a slow model holds up only reminders that are phrased, not the plain ones
        # of the same tick (a daily check-in phrased for many users at 08:30 filled them all).
        if not self._submit(("phrase",) if reminder.get("phrase") else ("compose",), self._send, firing):
            self._landed(firing)

    def _submit(self, kind: tuple, job, *args) -> bool:
        """Run ``job(*args)`` on the workers of ``kind``: ("compose",), ("phrase",) or ("channel",
        name), tuples so that a channel plugin named "phrase" gets threads of its own. False if the
        server is stopping."""
        with self._in_flight_changed:
            if self.stopping.is_set():
                return False
            workers = self._workers.get(kind)
            if workers is None:
                workers = self._workers[kind] = Workers("-".join(kind), self.config["delivery_threads"])
            workers.submit(job, *args)
        return True

    def _send(self, firing: Firing):
        """Compose the message, then hand each channel not yet sent under this fire_id to that
        channel's workers."""
        reminder = firing.reminder
        try:
            message = self.compose(reminder, firing.user, firing.latest, firing.now, firing.fire_id)
            if firing.latest > firing.due:
                message["missed_since"] = now_iso(firing.due)
            firing.message = message
            done = self._attempted.setdefault(firing.fire_id, set())
            deliveries, _ = self.deliveries(reminder["id"], limit=50)
            done.update(d["channel"] for d in deliveries if d.get("fire_id") == firing.fire_id)
            todo = [name for name in reminder["channels"] if name not in done]
            # even if recording fails later, this process will not send these again
            done.update(todo)
            firing.pending = set(todo)
        except Exception as e:
            log.exception("reminder %s: firing failed", reminder["id"])
            self._give_up(reminder, firing.now, e)
            return self._landed(firing)
        if not todo:
            return self._channel_done(firing, None)
        for name in todo:
            if not self._submit(("channel", name), self._deliver_one, firing, name):
                firing.abandoned = True  # it goes out after the restart, under the same fire_id
                self._channel_done(firing, name)

    def _deliver_one(self, firing: Firing, name: str):
        if self.stopping.is_set():
            firing.abandoned = True  # it goes out after the restart, under the same fire_id
        else:
            started = self.now()
            # The receiver is told how late it is as it is sent, not as of the tick.
            message = {**firing.message, "late_seconds": max(0, int((started - firing.latest).total_seconds()))}
            result = self.deliver(name, firing.reminder, message, firing.user)
            delivered = self.now()
            result = {"late_seconds": max(0, int((delivered - firing.latest).total_seconds())),
                      **({"delivered_at": now_iso(delivered)} if result["status"] == "sent" else {}), **result}
            with self._recording:
                if self._closed:
                    log.warning("reminder %s: %s answered after shutdown; it is sent again after the restart",
                                firing.reminder["id"], name)
                    return
                try:
                    self.record(firing.reminder, message, name, result, delivered)
                except Exception:
                    log.exception("reminder %s: recording the %s delivery failed", firing.reminder["id"], name)
        self._channel_done(firing, name)

    def _channel_done(self, firing: Firing, name: str | None):
        """When a firing's last channel is done: store when the reminder fires next."""
        with firing.lock:
            firing.pending.discard(name)
            if firing.pending:
                return
        try:
            if not firing.abandoned and not self.stopping.is_set() and not self._closed:
                self.finalize(firing.reminder, firing.now, firing.latest, fired=True)
                self._attempted.pop(firing.fire_id, None)
        except Exception as e:
            log.exception("reminder %s: firing failed", firing.reminder["id"])
            self._give_up(firing.reminder, firing.now, e)
        finally:
            self._landed(firing)

    def _landed(self, firing: Firing):
        with self._in_flight_changed:
            if self._in_flight.get(firing.reminder["id"]) is firing:
                del self._in_flight[firing.reminder["id"]]
            self._in_flight_changed.notify_all()

    def settle(self, timeout: float | None = None) -> bool:
        """Wait until no delivery is in flight; False if some still are after ``timeout``."""
        with self._in_flight_changed:
            return self._in_flight_changed.wait_for(lambda: not self._in_flight, timeout)

    def stop_deliveries(self, timeout: float):
        """At shutdown: deliveries stop retrying, queued ones are dropped (they go out after the
        restart, under the same fire_id), running ones get ``timeout`` seconds to end."""
        with self._in_flight_changed:
            self.stopping.set()
            workers, self._workers = list(self._workers.values()), {}
        deadline = monotonic() + timeout
        stuck = [thread for w in workers for thread in w.stop(deadline)]
        with self._recording:
            self._closed = True
        if stuck:
            log.warning("%d reminder deliveries still running after %ss; leaving them (they are sent again "
                        "after the restart)", len(stuck), timeout)
        with self._in_flight_changed:
            self._in_flight.clear()
            self._in_flight_changed.notify_all()

    def compose(self, reminder: dict, user: dict, due: datetime, now: datetime, fire_id: str) -> dict:
        """What to say: the fixed text, or the agent's phrasing of it when the reminder asks."""
        tz = zone(reminder["timezone"])
        agent = reminder.get("agent") if reminder.get("agent") in self.wm.config["agents"] else self.default_agent(user)
        fixed = reminder.get("text") or reminder["title"]
        message = {"fire_id": fire_id, "title": reminder["title"], "note": reminder.get("note") or "",
                   "agent": agent, "text": fixed, "due_at": now_iso(due),
                   "due_local": due.astimezone(tz).isoformat(timespec="seconds"),
                   "late_seconds": max(0, int((now - due).total_seconds())), "phrased_by": None}
        if reminder.get("phrase"):
            try:
                message["text"], message["phrased_by"] = self.phrase(reminder, user, agent, fixed)
            except (ProviderError, ConfigError) as e:
                log.warning("reminder %s: phrasing failed, sending the fixed text: %s", reminder["id"], e)
                message["phrase_error"] = str(e)
            except Exception as e:  # a provider plugin's bug must not stop the reminder
                log.exception("reminder %s: phrasing failed", reminder["id"])
                message["phrase_error"] = f"{type(e).__name__}: {e}"
        return message

    def phrase(self, reminder: dict, user: dict, agent: str, fixed: str) -> tuple[str, str]:
        """Ask the agent's providers to say the reminder in the agent's voice: (text, provider)."""
        chat = self.wm.service("chat")
        if chat is None:
            raise ProviderError("chat is switched off, so no agent can phrase it")
        conf = self.wm.config["agents"][agent]
        values = {**self.wm.prompt_values(user, agent), "title": reminder["title"],
                  "note": reminder.get("note") or "", "text": fixed}
        messages = [{"role": "system", "content": self.wm.prompts.render(conf["prompt"], values)},
                    {"role": "user", "content": self.wm.prompts.render(self.config["prompt"], values)}]
        failures = []
        for name in conf["providers"]:
            provider = chat.provider(name)
            if not provider.follows_instructions:  # its answer would be worse than the fixed text
                continue
            try:
                text = clean_phrasing(provider.reply(messages))
            except ProviderError as e:
                failures.append(f"{name}: {e}")
                continue
            if text:
                return text, name
            failures.append(f"{name}: an empty answer")
        raise ProviderError("; ".join(failures) or f"agent {agent} has no provider that can phrase it "
                                                     "(a rule-based one such as offline cannot)")

    def deliver(self, name: str, reminder: dict, message: dict, user: dict) -> dict:
        channel = self.channels.get(name)
        if channel is None:
            return {"status": "failed", "detail": f"No channel {name!r} on this server (its plugin is not loaded)."}
        try:
            # Checked here for every channel, so a plugin's deliver_reminder may count on it.
            reason = channel.reason_unready(user, self.wm)
            if reason:
                return {"status": "skipped", "detail": reason}
            results = channel.caller(reminder=reminder, message=dict(message), user=user, channel=name, wm=self.wm)
        except Exception as e:
            log.exception("reminder %s: channel %s failed", reminder["id"], name)
            return {"status": "failed", "detail": f"{type(e).__name__}: {e}"}
        result = results[0] if results else None
        if not isinstance(result, dict) or result.get("status") not in ("sent", "failed", "skipped"):
            return {"status": "failed", "detail": f"plugin {channel.plugin_name} answered {result!r}, not a result"}
        return result

    def record(self, reminder: dict, message: dict, channel: str | None, result: dict, now: datetime):
        delivery = {"id": new_id(), "reminder_id": reminder["id"], "user_id": reminder["user_id"],
                    "fire_id": message["fire_id"], "due_at": message["due_at"], "channel": channel,
                    "status": result["status"], "detail": str(result.get("detail") or ""),
                    "created_at": now_iso(now)}
        delivery.update({key: value for key, value in result.items() if isinstance(key, str) and key not in delivery})
        if channel is not None:
            delivery.setdefault("late_seconds", message.get("late_seconds", 0))
            delivery.setdefault("text", message.get("text"))
            delivery.setdefault("phrased_by", message.get("phrased_by"))
            for key in ("phrase_error", "missed_since"):
                if message.get(key):
                    delivery.setdefault(key, message[key])
        with self.lock:
            if self.get(reminder["id"]) is not None:  # not deleted meanwhile
                self._add_delivery(delivery)
        log.log(logging.INFO if delivery["status"] in ("sent", "skipped") else logging.WARNING,
                "reminder %s %s %s: %s", reminder["id"], channel or "-", delivery["status"], delivery["detail"])
        try:
            self.wm.pm.hook.reminder_delivered(reminder=reminder, delivery=delivery, wm=self.wm)
        except Exception:
            log.exception("a reminder_delivered hook failed")

    def finalize(self, reminder: dict, now: datetime, due: datetime, fired: bool):
        """Store that this time is dealt with and when the reminder fires next."""
        with self.lock:
            current = self.get(reminder["id"])
            if current is None:
                return
            changes = {"last_due_at": now_iso(due)}
            if fired:
                changes.update(last_fired_at=now_iso(now), fire_count=(current.get("fire_count") or 0) + 1)
            # If the client changed when it fires while we were delivering, their time stands.
            if current.get("next_fire_at") == reminder["next_fire_at"]:
                changes["next_fire_at"] = self.next_fire(current, now)
            self.storage.update(REMINDERS, reminder["id"], changes)

    def _give_up(self, reminder: dict, now: datetime, error: Exception):
        """A reminder that cannot be fired (a bug, a broken record) moves on rather than failing
        again every tick."""
        try:
            due = utc(reminder["next_fire_at"])
            self.record(reminder, {"fire_id": f"{reminder['id']}@{reminder['next_fire_at']}",
                                   "due_at": reminder["next_fire_at"]}, None,
                        {"status": "failed", "detail": f"Could not fire: {type(error).__name__}: {error}"}, now)
            with self.lock:
                current = self.get(reminder["id"])
                if current is not None and current.get("next_fire_at") == reminder["next_fire_at"]:
                    try:
                        following = self.next_fire(current, max(now, due))
                    except Exception:
                        following = None
                    self.storage.update(REMINDERS, reminder["id"], {"next_fire_at": following})
        except Exception:
            log.exception("reminder %s: could not even record the failure", reminder["id"])


def clean_phrasing(text: str) -> str:
    """A model's phrasing as a message: no surrounding quotes or blank lines, and not too long."""
    text = whole_text(text or "").strip().strip('"“”「」').strip()
    return text[:500]


# ---------------------------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------------------------


@hookimpl
def register_services(register):
    register("reminders", Reminders)  # built before the app, so a mistake in reminders: stops startup


RULE = obj({"kind": string(enum=list(KINDS)),
             "at": string(description="once: an ISO time (or local, in the reminder's time zone)"),
             "times": array(string(pattern="^\\d{1,2}:\\d{2}$"), description="daily, weekly: HH:MM local times (one time may be sent as a plain string)"),
             "days": array(string(enum=list(WEEKDAYS)), description="weekly, interval: the days (one day may be sent as a plain string)"),
             "every_minutes": integer(1), "every_hours": integer(1),
             "from": string(nullable=True, description="interval: HH:MM, the first of each day"),
             "until": string(nullable=True, description="interval: HH:MM, the last of each day")},
            required=["kind"], description="keys by kind: " + "; ".join(f"{kind}: {', '.join(keys[1:])}" for kind, keys in RULE_KEYS.items()), title="Rule")
REMINDER_FIELDS = {
    "title": text(60), "note": string(max_length=500),
    "text": string(max_length=500, description="what is sent; empty: the title"),
    "phrase": boolean(description="let the agent phrase it each time"), "agent": string(),
    "rule": RULE, "timezone": string(max_length=64, description="IANA; default the user's"),
    "channels": array(string(), description="e.g. inapp, wechat, webhook"), "enabled": boolean()}
REMINDER = obj({"id": string(), **REMINDER_FIELDS, "source": string(nullable=True), "next_fire_at": string(nullable=True),
                "last_fired_at": string(nullable=True), "fire_count": integer(0), "created_at": string(),
                "updated_at": string(nullable=True), "next_fire_local": string(nullable=True)},
               required=["id", "title", "rule", "timezone", "channels", "enabled", "next_fire_at", "next_fire_local"],
               title="Reminder")
REMINDER_EXAMPLE = {"title": "Blood pressure pill", "rule": {"kind": "daily", "times": ["08:00"]}, "channels": ["inapp"]}


@hookimpl
def routes(app, wm):
    reminders = wm.service("reminders")

    @app.get("/api/v1/reminders", api=Api(
        "The user's reminders", query=paging(), responses={200: page(REMINDER)}))
    def list_reminders():
        user = wm.require_user()
        return paged(reminders.list, reminders.view, 20, 100, user_id=user["id"])

    @app.post("/api/v1/reminders", api=Api(
        "Create a reminder", body=obj(REMINDER_FIELDS, required=["title", "rule"], additional_properties=False, example=REMINDER_EXAMPLE),
        responses={201: REMINDER}, errors={404: "no such agent"}))
    def create_reminder():
        user = wm.require_user()
        reminder = reminders.create(user, wm.json_body())
        bottle.response.status = 201
        return reminders.view(reminder)

    @app.get("/api/v1/reminders/<reminder_id>", api=Api("One reminder", responses={200: REMINDER}))
    def read_reminder(reminder_id):
        return reminders.view(reminders.own(wm.require_user(), reminder_id))

    @app.put("/api/v1/reminders/<reminder_id>", api=Api(
        "Change a reminder (the keys sent)", body=obj(REMINDER_FIELDS, additional_properties=False, example={"enabled": False}),
        responses={200: REMINDER}, errors={409: "managed_by_config: a reminders.everyone copy (only enabled changes)"}))
    def update_reminder(reminder_id):
        user = wm.require_user()
        reminder = reminders.own(user, reminder_id)
        return reminders.view(reminders.update(user, reminder, wm.json_body()))

    @app.delete("/api/v1/reminders/<reminder_id>", api=Api(
        "Delete a reminder", responses={204: None}, errors={409: "managed_by_config: opt out in settings instead"}))
    def delete_reminder(reminder_id):
        reminders.delete(reminders.own(wm.require_user(), reminder_id))
        bottle.response.status = 204
        return ""

    @app.get("/api/v1/reminders/<reminder_id>/deliveries", api=Api(
        "What became of each firing of a reminder, newest first", query=paging(),
        responses={200: page(obj({"channel": string(nullable=True, description="null: the firing itself (skipped, missed)"),
                                  "status": string(enum=["sent", "failed", "skipped", "missed"]),
                                  "detail": string()}, title="Delivery"))}))
    def deliveries(reminder_id):
        reminders.own(wm.require_user(), reminder_id)
        return paged(reminders.deliveries, reminders.delivery_view, 20, 100, reminder_id=reminder_id)


@hookimpl
def user_changed(user, wm):
    # A new user, or one whose settings (the opt-in, the time zone), disabled flag or WeChat
    # binding (which makes the wechat channel ready) changed: their copies of reminders.everyone.
    reminders = wm.service("reminders")
    if reminders is not None and reminders.everyone:
        reminders.sync_user(user["id"])


@hookimpl
def delete_user_data(user, wm):
    reminders = wm.service("reminders")
    if reminders is not None:
        reminders.delete_user_data(user["id"])


@hookimpl
def export_user_data(user, wm):
    reminders = wm.service("reminders")
    return {"reminders": reminders.export(user["id"])} if reminders is not None else None


@hookimpl
def shutdown(wm):
    reminders = wm.service("reminders")
    if reminders is not None:
        # The same bound the server gives requests in progress (server.shutdown_seconds).
        reminders.stop_deliveries(wm.config["server"]["shutdown_seconds"])
