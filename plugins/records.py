"""Health records (docs/records.md): record types, units, stats, CSV, and $health_summary
for the agents' prompts.

Record types come from the ``register_record_types`` hook (the built-ins are in
plugins/record_types.py) and from config.yaml's ``records.types``. A type checks a value's
plausible range and converts other units to its own; records are stored in that unit only.

Times: records are stored in UTC; days (the daily series, "the last 7 days", dates in ``from``
and ``to`` filters, CSV times) are in the user's ``settings.timezone``.
"""

from __future__ import annotations

import csv
import difflib
import functools
import inspect
import io
import logging
import math
import re
from bisect import bisect_right
from collections import Counter
from datetime import date, datetime, time, timedelta, timezone

import bottle

from wellmate import (ApiError, ConfigError, Conflict, Index, Registry, Setting, field, hookimpl, json_dumps, new_id,
                      sent_value, now_iso, number_in_text, paged, parse_time, query_integer)
from wellmate_plugins._openapi import Api, Content, array, download, integer, number, obj, page, paging, schema, string, text
from wellmate_plugins._record_grades import GLUCOSE_UNIT, glucose_grade

log = logging.getLogger("wellmate.records")

TYPE_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")  # type names appear in URLs and CSV files
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
COLLECTION = "records"
MAX_DAYS = 366  # stats cover at most a year
FUTURE_SLACK = timedelta(minutes=10)  # a phone's clock may run a little ahead
CSV_COLUMNS = ["recorded_at", "type", "value", "unit", "note", "client_id"]
# A cell starting with one of these is a formula to Excel and LibreOffice ("CSV injection"): a
# note such as =HYPERLINK(...) would run when the user opens the export. Free text is written
# with a leading ' (shown as text, not kept by spreadsheets), which the import takes off again.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")

BMI_GUIDELINES = {
    # Upper bounds (exclusive) of each category, for adults.
    "china": ("WS/T 428-2013 成人体重判定", [(18.5, "underweight", "体重过低"), (24, "normal", "正常"),
                                            (28, "overweight", "超重"), (math.inf, "obese", "肥胖")]),
    "who": ("WHO 2000 BMI classification", [(18.5, "underweight", "体重过低"), (25, "normal", "正常"),
                                            (30, "overweight", "超重"), (math.inf, "obese", "肥胖")]),
}


def _level(value, bounds):
    """How many of the ascending ``bounds`` ``value`` reaches (each bound is inclusive)."""
    return bisect_right(bounds, value)


def _china_2018(systolic, diastolic):
    # Each number falls in a grade; the higher one counts (中国高血压防治指南 2018, 表 3).
    level = max(_level(systolic, [120, 140, 160, 180]), _level(diastolic, [80, 90, 100, 110]))
    code, label = [("normal", "正常血压"), ("high_normal", "正常高值"), ("grade_1", "1级高血压（轻度）"),
                   ("grade_2", "2级高血压（中度）"), ("grade_3", "3级高血压（重度）")][level]
    if systolic >= 140 and diastolic < 90:
        label += "，单纯收缩期高血压"
    return code, label


def _acc_aha_2017(systolic, diastolic):
    # Elevated is systolic 120-129 with diastolic < 80; a crisis is above 180 and/or above 120.
    level = max(_level(systolic, [120, 130, 140]), 2 * (diastolic >= 80) + (diastolic >= 90))
    if systolic > 180 or diastolic > 120:
        level = 4
    return [("normal", "正常"), ("elevated", "血压升高"), ("stage_1", "1期高血压"), ("stage_2", "2期高血压"),
            ("crisis", "高血压危象")][level]


BP_GUIDELINES = {
    "china-2018": ("中国高血压防治指南（2018年修订版）", _china_2018),
    "acc-aha-2017": ("2017 ACC/AHA Guideline for High Blood Pressure in Adults", _acc_aha_2017),
}


@hookimpl
def config_schema():
    return {"records": {
        "types": Setting({}, "Your own record types: NAME: {title, title_en, unit, min, max, decimals, units, daily, noticeable}.", dict),
        "bp_guideline": Setting("china-2018", "Blood pressure categories by this guideline.", choices=list(BP_GUIDELINES)),
        "bmi_guideline": Setting("china", "BMI categories by this guideline.", choices=list(BMI_GUIDELINES)),
        "summary_days": Setting(7, "Days covered by $health_summary in prompts.", int, min=1, max=MAX_DAYS),
        "max_batch": Setting(500, "Most records in one POST /health/data/batch.", int, min=1, max=10000),
        # A bound on what one account may pile up (20,000 is ten years of five daily types);
        # a write costs the same however many records anyone keeps (bench/records --imports).
        "max_records_per_user": Setting(20000, "Most health records one user may keep (more: 422).", int,
                                        min=1, max=1000000),
        "max_import_rows": Setting(10000, "Most rows in one POST /health/data/csv (more: 413).", int,
                                   min=1, max=1000000),
    }}


# ---------------------------------------------------------------------------------------------
# Record types
# ---------------------------------------------------------------------------------------------


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def number_text(value, decimals: int | None = None) -> str:
    """70.0 -> "70", 6.857 with 2 decimals -> "6.86": numbers as people write them."""
    if isinstance(value, int):
        return str(value)
    text = f"{value:.{decimals}f}" if decimals is not None else repr(value)
    return text.rstrip("0").rstrip(".") if "." in text else text


def with_unit(text: str, unit: str) -> str:
    return text + (unit if unit[:1] in ("/", "°", "%", "") else " " + unit)


# RFC 9110 §12.5.4 and §12.4.2: Accept-Language is a list of language ranges, each with an optional weight `;q=`
# from 0 to 1 ("0", "0.5", "1", "1.000"; the RFC allows three decimals, more are read too) and 1 when none is given.
# Before session 17 a weight written otherwise was read by float() or as 0: `en;q=abc, zh;q=0.5` (en at 0) and
# `en, zh;q=2` (zh above any real weight) named the type in Chinese for a client that asked for English first (the
# session-17 review). The RFC leaves a malformed weight to the recipient; here it is ignored, so its range has the
# weight of a range with none, 1 (as werkzeug reads one): the language the client named keeps its place, the number
# it garbled ("abc", "2", "", "-1", "nan") counts for nothing. So `en;q=abc, zh;q=0.5` is English, `zh;q=` alone is
# Chinese (the only language named), and a tie goes to the range written first. A malformed tag is no range at all.
QVALUE = re.compile(r"0(?:\.[0-9]*)?|1(?:\.0*)?")
LANGUAGE_RANGE = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*")


def language_ranges(header: str, limit: int = 20) -> list[tuple[str, float]]:
    """The ranges of an Accept-Language header, lower case, with their weights, in the header's order
    (`zh-CN,en;q=0.8` -> [("zh-cn", 1.0), ("en", 0.8)]): a malformed weight is 1, a malformed tag left out. Only
    the first ``limit`` members are read: a header of a thousand entries is read no further."""
    ranges = []
    for member in header.split(",")[:limit]:
        tag, *params = (part.strip(" \t") for part in member.split(";"))
        if not LANGUAGE_RANGE.fullmatch(tag):
            continue
        weight = 1.0
        for param in params:
            name, equals, value = param.partition("=")
            if name.strip(" \t").lower() == "q":
                if equals and QVALUE.fullmatch(value.strip(" \t")):
                    weight = float(value.strip(" \t"))
                break
        ranges.append((tag.lower(), weight))
    return ranges


def request_wants_chinese() -> bool:
    """Whether this request's Accept-Language puts Chinese first: its highest-weighted range (`language_ranges`; the
    header's order for ties) is `zh` or `zh-*`. The API's messages are English; this only says which name of a record
    type goes in them. No request (a command, the scheduler), no header or none that parses: English, the language
    of the message around it. A weight of 0 means "not this language", so `zh;q=0` alone is English."""
    try:
        header = bottle.request.headers.get("Accept-Language") or ""
    # (bytes that are not text, \xff\xfe, raise UnicodeDecodeError as bottle decodes them: a 500 before session 17)
    except (RuntimeError, KeyError, AttributeError, UnicodeError):
        return False
    best, best_q = None, 0.0
    for tag, q in language_ranges(header):
        if q > best_q:
            best, best_q = tag, q
    return bool(best) and (best == "zh" or best.startswith("zh-"))


class RecordType:
    """One kind of record: its unit, plausible range, other units it converts, and how it is
    summarised. Built from a spec (see plugins/record_types.py for the keys)."""

    KEYS = {"title", "title_en", "unit", "min", "max", "decimals", "units", "daily", "noticeable", "fields", "check"}

    def __init__(self, name, title, unit, min=None, max=None, decimals=1, units=None, daily="mean",
                 noticeable=None, fields=None, check=None, title_en=None):
        self.name, self.title, self.unit = name, title, unit
        # the name in an English sentence: a Chinese title in one ("outside the plausible range for 体重") read as a
        # mistake to an English user (the session-15 review); the type's own name, "heart rate", when none is given
        self.title_en = title_en or (title if title.isascii() else name.replace("_", " "))
        self.min, self.max, self.decimals = min, max, decimals
        self.units = units or {}  # unit as written in the spec -> (factor, offset)
        self._lookup = {name.lower(): conversion for name, conversion in self.units.items()}
        self.daily, self.noticeable, self.check = daily, noticeable, check
        self.fields = fields or {}  # part name -> (min, max), for values of several numbers

    @classmethod
    def from_spec(cls, name, spec, where: str) -> "RecordType":
        """Check a spec from config or a plugin; a mistake is a ConfigError naming ``where``."""
        def bad(key, expected, got):
            return ConfigError(f"{where}.{key}: must be {expected}, got {json_dumps(got) if not callable(got) else got}")

        if not isinstance(name, str) or not TYPE_NAME.fullmatch(name):
            raise ConfigError(f"{where}: a type name is 1-32 lower-case letters, digits or '_', starting with a letter")
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: must be a mapping like {{title: 腰围, unit: cm, min: 40, max: 200}}")
        for key in spec:
            if key not in cls.KEYS:
                near = difflib.get_close_matches(str(key), cls.KEYS, n=1)
                raise ConfigError(f"{where}.{key}: unknown key{f'; did you mean {near[0]!r}?' if near else ''}; "
                                  f"known: {', '.join(sorted(cls.KEYS))}")
        title = spec.get("title", name)
        unit = spec.get("unit")
        if not isinstance(title, str) or not title.strip():
            raise bad("title", "a name to show, e.g. 腰围", title)
        if not isinstance(unit, str) or not unit.strip():
            raise bad("unit", "the unit records are kept in, e.g. cm", unit)
        decimals = spec.get("decimals", 1)
        if not isinstance(decimals, int) or isinstance(decimals, bool) or not 0 <= decimals <= 6:
            raise bad("decimals", "an integer 0-6 (0: whole numbers)", decimals)
        daily = spec.get("daily", "mean")
        if daily not in ("mean", "sum"):
            raise bad("daily", 'one of mean (a measurement, e.g. weight), sum (an amount, e.g. water)', daily)
        noticeable = spec.get("noticeable")
        if noticeable is not None and not (_is_number(noticeable) and noticeable > 0):
            raise bad("noticeable", "a number above 0", noticeable)
        check = spec.get("check")
        if check is not None and not callable(check):
            raise bad("check", "a function (plugins only)", check)

        def bounds(pair, key):
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(map(_is_number, pair))
                    and pair[0] < pair[1]):
                raise bad(key, "a plausible range [min, max] with min < max", list(pair) if isinstance(pair, tuple) else pair)
            return tuple(pair)

        fields = spec.get("fields")
        if fields is not None:
            if not isinstance(fields, dict) or not fields:
                raise bad("fields", "a mapping of part name -> [min, max]", fields)
            fields = {part: bounds(pair, f"fields.{part}") for part, pair in fields.items()}
            low = high = None
        else:
            low, high = bounds([spec.get("min"), spec.get("max")], "min/max")
        if not isinstance(spec.get("units") or {}, dict):
            raise bad("units", "a mapping of unit -> factor, e.g. {in: 2.54}", spec["units"])
        units = {}
        for other, conversion in (spec.get("units") or {}).items():
            if _is_number(conversion):
                conversion = [conversion, 0]
            if not (isinstance(conversion, (list, tuple)) and len(conversion) == 2
                    and all(map(_is_number, conversion)) and conversion[0] > 0):
                raise bad(f"units.{other}", "a factor (stored = given × factor) or [factor, offset]", conversion)
            units[str(other).strip()] = tuple(conversion)
        title_en = spec.get("title_en")
        if title_en is not None and (not isinstance(title_en, str) or not title_en.strip()):
            raise bad("title_en", "the name in English, e.g. waist", title_en)
        return cls(name, title.strip(), unit.strip(), low, high, decimals, units, daily, noticeable, fields, check,
                   title_en.strip() if title_en else None)

    def label(self) -> str:
        """The type's name in an error message: its title for a request that asks for Chinese first
        (Accept-Language: zh...), its English name otherwise, since the message around it is English."""
        return self.title if request_wants_chinese() else self.title_en

    def describe(self) -> dict:
        """What a client needs to build a form for this type."""
        out = {"name": self.name, "title": self.title, "title_en": self.title_en, "unit": self.unit,
               "units": [self.unit, *self.units],
               "decimals": self.decimals, "daily": self.daily}
        if self.fields:
            out["fields"] = {part: {"min": lo, "max": hi} for part, (lo, hi) in self.fields.items()}
        else:
            out.update(min=self.min, max=self.max)
        return out

    # -- values ------------------------------------------------------------------------------
    def parse(self, value, unit=None):
        """A client's value (in ``unit``, default ours) as stored: converted, rounded, checked.
        Numbers may come as text (a mini-program's <input> gives text, and so does a CSV file: "70.5";
        documented in docs/api.md since session 15, when a new user's audit asked whether "70" should
        be taken); several-number values as {"systolic": 120, "diastolic": 80}, [120, 80] or "120/80"."""
        factor, offset = self.conversion(unit)
        given_unit = unit.strip() if unit and unit.strip() else self.unit
        if not self.fields:
            return self._number(value, factor, offset, given_unit, self.min, self.max, "value")
        parts = self._parts(value)
        stored = {part: self._number(parts[part], factor, offset, given_unit, lo, hi, f"value.{part}")
                  for part, (lo, hi) in self.fields.items()}
        problem = self.check(stored) if self.check else None
        if problem:
            raise ApiError(400, "invalid_value", f"value: {problem}")
        return stored

    def conversion(self, unit) -> tuple[float, float]:
        if unit is None or not str(unit).strip() or str(unit).strip().lower() == self.unit.lower():
            return 1, 0
        if not isinstance(unit, str):
            raise ApiError(400, "invalid_field", f"unit: must be a string, got {sent_value(unit)}")
        try:
            return self._lookup[unit.strip().lower()]
        except KeyError:
            raise ApiError(400, "invalid_unit", f"unit: {self.name} is recorded in {self.unit}; also accepted: "
                                                f"{', '.join(self.units) or 'nothing else'}; got {sent_value(unit)}")

    def _parts(self, value) -> dict:
        names = list(self.fields)
        example = {"value": dict(zip(names, ["..."] * len(names)))}
        if isinstance(value, str) and "/" in value:
            value = [piece.strip() for piece in value.split("/")]
        if isinstance(value, (list, tuple)) and len(value) == len(names):
            value = dict(zip(names, value))
        if not isinstance(value, dict) or set(value) != set(names):
            raise ApiError(400, "invalid_value", f"value: {self.name} is {len(names)} numbers: "
                                                 f"{json_dumps(example)[1:-1]} or \"{'/'.join(['N'] * len(names))}\"; "
                                                 f"got {sent_value(value)}")
        return value

    def _number(self, raw, factor, offset, given_unit, low, high, where):
        # a number may come as text, by the rule the profile's numbers follow too (`wellmate.number_in_text`)
        number = number_in_text(raw) if isinstance(raw, str) else raw
        if raw is None:
            raise ApiError(400, "missing_field", f"{where}: required")
        if not _is_number(number):
            raise ApiError(400, "invalid_value", f"{where}: must be a number, got {sent_value(raw)}")
        converted = (factor, offset) != (1, 0)
        if self.decimals == 0 and not converted and number != int(number):
            raise ApiError(400, "invalid_value", f"{where}: {self.label()} is a whole number, got {number_text(number)}")
        value = round(number * factor + offset, self.decimals)
        value = int(value) if self.decimals == 0 else float(value)
        if not low <= value <= high:
            shown = with_unit(number_text(number), given_unit)
            if converted:
                shown += f" (= {with_unit(number_text(value), self.unit)})"
            raise ApiError(400, "out_of_range", f"{where}: {shown} is outside the plausible range for "
                                                f"{self.label()}, {number_text(low)}–{with_unit(number_text(high), self.unit)}")
        return value

    def value_text(self, value, decimals=None) -> str:
        """A stored value (or a stat) as text: "70.5", "120/80"."""
        if isinstance(value, dict):
            return "/".join(number_text(value[part], decimals) for part in self.fields or value)
        return number_text(value, decimals)


def fallback_type(name: str, record: dict) -> RecordType:
    """For records of a type no longer configured: summarised plainly rather than hidden."""
    value = record.get("value")
    fields = {part: (-math.inf, math.inf) for part in value} if isinstance(value, dict) else None
    return RecordType(name, name, record.get("unit") or "", -math.inf, math.inf, 2, fields=fields)


def collect_types(wm) -> Registry:
    """Every record type: the plugins' (register_record_types), then config's records.types."""
    types = Registry.collect(wm.pm, "register_record_types", "record type",
                             lambda name, plugin, spec: RecordType.from_spec(name, spec, f"register_record_types({name!r})"))
    filename = wm.config_path.name
    for name, spec in wm.config["records"]["types"].items():
        where = f"{filename}: records.types.{name}"
        if name in types:
            raise ConfigError(f"{where}: '{name}' is already a record type (from {types.owners[name]}); choose another name")
        if isinstance(spec, dict) and ("fields" in spec or "check" in spec):
            raise ConfigError(f"{where}: 'fields' and 'check' are for plugins; a type in config.yaml is one number")
        types.add(name, RecordType.from_spec(name, spec, where), filename)
    return types


# ---------------------------------------------------------------------------------------------
# Days in the user's time zone
# ---------------------------------------------------------------------------------------------


def midnight(day: date, tz) -> str:
    """The stored (UTC) form of the start of ``day`` in ``tz``."""
    return now_iso(datetime.combine(day, time(0), tzinfo=tz))


def last_days(tz, days: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The last ``days`` local days up to today (YYYY-MM-DD), and the ``days + 1`` UTC instants
    that bound them: a record is on day ``i`` when ``bounds[i] <= recorded_at < bounds[i + 1]``."""
    return _days_ending(tz, datetime.now(tz).date(), days)


@functools.lru_cache(maxsize=256)
def _days_ending(tz, today: date, days: int):
    # Kept: a year's 366 local midnights take a millisecond to compute, and change once a day.
    dates = [today - timedelta(days=days - 1 - i) for i in range(days)]
    bounds = [midnight(d, tz) for d in dates] + [midnight(today + timedelta(days=1), tz)]
    return tuple(d.isoformat() for d in dates), tuple(bounds)


def local_time_text(stored: str, tz) -> str:
    """A stored UTC time as the user's local ISO 8601 time with offset (ms only when there are)."""
    moment = datetime.fromisoformat(stored.replace("Z", "+00:00")).astimezone(tz)
    return moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds")


# ---------------------------------------------------------------------------------------------
# The service: records in and out, stats, summary, CSV
# ---------------------------------------------------------------------------------------------


def record_view(record: dict) -> dict:
    view = {key: record.get(key) for key in ("id", "type", "value", "unit", "recorded_at", "note")}
    if record.get("client_id") is not None:
        view["client_id"] = record["client_id"]
    return view


def located(where: str, error: ApiError) -> ApiError:
    """The same error, saying where in a batch or file it is."""
    return ApiError(error.status_code, error.code, f"{where}: {error.message}")


class Records:
    """The record types and everything done with records beyond storing them: checking what
    clients send, stats, the agents' summary, CSV. Built once per Wellmate, the service ``records``."""

    def __init__(self, wm):
        self.wm = wm
        self.config = wm.config["records"]
        self.types = collect_types(wm)
        # A storage plugin written before session 18 has upsert(collection, docs, key, fixed=()): with it a record
        # sent without a time is stamped before the match, as then (a retry moves its time), rather than a TypeError
        # on every sync. Said once in the log, so its author knows what to add.
        parameters = inspect.signature(wm.storage.upsert).parameters
        self.keeps_time = "defaults" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        if not self.keeps_time:
            log.warning("the storage's upsert takes no defaults=: a record re-sent without recorded_at gets a new time "
                        "(docs/plugins.md, upsert)")

    def type(self, name) -> RecordType:
        if name not in self.types:
            raise ApiError(400, "unknown_type", self.types.unknown(name, "type"))
        return self.types[name]

    def type_of(self, name, records) -> RecordType:
        return self.types.get(name) or fallback_type(name, records[0])

    def own(self, user, record_id) -> dict:
        record = self.wm.storage.get(COLLECTION, record_id)
        # Another user's record answers exactly like a missing one.
        if record is None or record.get("user_id") != user["id"]:
            raise ApiError(404, "record_not_found", f"No record {record_id!r}.")
        return record

    def make(self, user, item, csv_row=False) -> dict:
        """A record to store from a client's item (a JSON body, a batch item or a CSV row: ``csv_row``,
        whose values are all text)."""
        if not isinstance(item, dict):
            raise ApiError(400, "invalid_field", "must be an object like {\"type\": \"weight\", \"value\": 70.5}")
        record_type = self.type(field(item, "type", max_len=32))
        unit = item.get("unit")
        if unit is not None and not isinstance(unit, str):
            raise ApiError(400, "invalid_field", f"unit: must be a string, got {sent_value(unit)}")
        value = record_type.parse(item.get("value"), unit)
        # No time given: left out here and stamped as it is stored (`add`, `put`), so a retry of a record
        # with a client_id keeps the stored time (a phone re-sending after a lost response got a new time
        # and answered "updated" before session 18).
        given_time = item.get("recorded_at")
        recorded_at = None if given_time is None or given_time == "" else self.time(given_time)
        # An empty id ("" or blanks) was stored as no id, so a retry stored the record twice: a client that
        # means to send none leaves it out (as for a chat's session_id). A CSV's empty cell is none.
        client_id = field(item, "client_id", required=False, max_len=128,
                          leave_out=None if csv_row else "to store the record without one") or None
        record = {"id": new_id(), "user_id": user["id"], "type": record_type.name, "value": value,
                  "unit": record_type.unit, "recorded_at": recorded_at,
                  "note": field(item, "note", required=False, default="", max_len=500, prose=True),
                  "created_at": now_iso()}
        if recorded_at is None:
            del record["recorded_at"]
        if client_id:
            record["client_id"] = client_id
        return record

    @staticmethod
    def time(given) -> str:
        """recorded_at: ISO 8601 with offset, or Unix seconds (wx.getWeRunData's timestamps);
        now if absent. Not in the future beyond a phone clock's drift."""
        if given is None or given == "":
            return now_iso()
        if _is_number(given):
            try:
                stored = now_iso(datetime.fromtimestamp(given, timezone.utc))
            except (OverflowError, OSError, ValueError):
                raise ApiError(400, "invalid_field", f"recorded_at: not a Unix time in seconds, got {sent_value(given)}")
        elif isinstance(given, str):
            stored = parse_time(given, "recorded_at")
        else:
            raise ApiError(400, "invalid_field", f"recorded_at: give an ISO 8601 time with offset, got {sent_value(given)}")
        if stored > now_iso(datetime.now(timezone.utc) + FUTURE_SLACK):
            raise ApiError(400, "invalid_field", f"recorded_at: {given} is in the future")
        if stored < "1900":
            raise ApiError(400, "invalid_field", f"recorded_at: {given} is before 1900")
        return stored

    def bound(self, text, tz, end: bool) -> str | None:
        """A ?from= or ?to= value: a time with offset, or a local date (``to`` includes that day)."""
        if not text:
            return None
        if DATE.fullmatch(text):
            try:
                day = date.fromisoformat(text)
                return midnight(day + timedelta(days=1) if end else day, tz)
            except ValueError:
                raise ApiError(400, "invalid_field", f"{'to' if end else 'from'}: no such date {text!r}")
            except OverflowError:  # ?to=9999-12-31: its next midnight is in year 10000 (a 500 before)
                raise ApiError(400, "invalid_field", f"{'to' if end else 'from'}: {text} is too far from today")
        return parse_time(text, "to" if end else "from")

    def page(self, user_id, type=None, start=None, end=None, limit=100, before=None) -> tuple[list, str | None]:
        """A page of the user's records (of one type), newest first, ``start <= recorded_at < end``."""
        where = {"user_id": user_id} if type is None else {"user_id": user_id, "type": type}
        if start is not None or end is not None:
            return self.wm.storage.find(COLLECTION, where, order="-recorded_at", start=start or "", end=end,
                                        limit=limit, before=before)
        return self.wm.storage.find(COLLECTION, where, order="-recorded_at", limit=limit, before=before)

    def each(self, user_id, type=None, start=None, end=None, page=500):
        """Every record of the user in the window, newest first, read a page at a time."""
        before = None
        while True:
            items, before = self.page(user_id, type, start, end, page, before)
            yield from items
            if before is None:
                return

    def all_records(self, user_id, type=None, start=None, end=None) -> list[dict]:
        """Every record of the user in the window, newest first."""
        return list(self.each(user_id, type, start, end, 5000))

    def add(self, user, record: dict) -> dict:
        """Store a new record (without a client_id) within records.max_records_per_user."""
        self.check_room(user, [record])
        return self.wm.storage.insert(COLLECTION, {**record, "recorded_at": record.get("recorded_at") or now_iso()})

    def delete(self, record_id) -> bool:
        return self.wm.storage.delete(COLLECTION, record_id)

    def count(self) -> int:
        """How many records are stored, of every user (the admin's stats)."""
        return self.wm.storage.count(COLLECTION)

    def put(self, user, records: list[dict], where=lambda index: "") -> list[tuple[str, dict]]:
        """Store a user's new records within records.max_records_per_user, matched to stored ones
        by client_id (a retried sync stores nothing twice), refusing a client_id reused for
        another type. ``where(index)`` names the record at that
        index of ``records`` ("items[3]: ") for the error."""
        self.check_room(user, records)
        try:
            # A record sent without a time (make leaves it out) is stamped now when new, and keeps the
            # stored time when it matches a stored record: a retry of the same record answers "unchanged".
            if not self.keeps_time:
                stamp = now_iso()
                return self.wm.storage.upsert(COLLECTION, [{"recorded_at": stamp, **r} for r in records],
                                              key=("user_id", "client_id"), fixed=("type",))
            return self.wm.storage.upsert(COLLECTION, records, key=("user_id", "client_id"), fixed=("type",),
                                          defaults={"recorded_at": now_iso()})
        except Conflict as e:
            if "key" not in e.details:
                raise
            client_id, stored_type = e.details["key"]["client_id"], e.details["stored"]
            # The first of the records with that client_id and another type than the stored one
            # (stored before, or by an earlier record of this call) is the one refused.
            index = next(i for i, r in enumerate(records)
                         if r.get("client_id") == client_id and r.get("type") != stored_type)
            raise ApiError(409, "client_id_conflict", f"{where(index)}client_id {client_id!r} is already a "
                                                      f"{stored_type} record; a client_id names one record, so "
                                                      f"give this one its own. Nothing was stored.")

    def check_room(self, user, records: list[dict]):
        """A 422 if storing ``records`` would take the user past records.max_records_per_user.
        (Two requests at once may both fit and overshoot by one request: the bound is on cost,
        not an exact quota.)"""
        limit = self.config["max_records_per_user"]
        stored = self.wm.storage.count(COLLECTION, {"user_id": user["id"]})
        if stored + len(records) <= limit:
            return
        # Near the limit: only records that are really new count (a sync again stores nothing).
        known = {r["client_id"] for r in self.all_records(user["id"]) if r.get("client_id")}
        new = (sum(1 for r in records if not r.get("client_id"))
               + len({r["client_id"] for r in records if r.get("client_id")} - known))
        if stored + new > limit:
            raise ApiError(422, "too_many_records", f"This account keeps {stored} health records and "
                                                    f"records.max_records_per_user is {limit}: {new} more do not "
                                                    f"fit. Delete old records first; nothing was stored.")

    def latest(self, user_id, type) -> dict | None:
        items, _ = self.page(user_id, type, limit=1)
        return items[0] if items else None

    # -- stats -------------------------------------------------------------------------------
    def stats(self, user, days: int, type: str | None = None) -> dict:
        tz_name, tz = self.wm.user_zone(user)
        dates, bounds = last_days(tz, days)
        groups: dict[str, list] = {}
        for record in self.all_records(user["id"], type, bounds[0], bounds[-1]):
            groups.setdefault(record["type"], []).append(record)
        names = [type] if type else [n for n in self.types if n in groups] + [n for n in groups if n not in self.types]
        per_type = {}
        for name in names:
            records = groups.get(name, [])
            record_type = self.type_of(name, records)
            per_type[name] = type_stats(record_type, records, dates, bounds)
        bp = per_type.get("blood_pressure")
        return {
            "days": days, "timezone": tz_name, "from": dates[0], "to": dates[-1],
            "types": per_type,
            "bmi": self.bmi(user, groups) if type in (None, "weight", "height") else None,
            "bp_category": self.bp_category(user, bp) if bp and bp["count"] else None,
        }

    def bmi(self, user, window: dict | None = None) -> dict | None:
        """BMI from the latest weight and height ever recorded (height is rarely re-measured).
        ``window``: type -> records up to now, newest first, whose first is the latest ever."""
        window = window or {}
        weight, height = [window[name][0] if window.get(name) else self.latest(user["id"], name)
                          for name in ("weight", "height")]
        if not weight or not height or weight.get("unit") != "kg" or height.get("unit") != "cm":
            return None
        value = round(weight["value"] / (height["value"] / 100) ** 2, 1)
        name, cuts = BMI_GUIDELINES[self.config["bmi_guideline"]]
        result = {"value": value, "guideline": name, "weight": record_view(weight), "height": record_view(height)}
        return {**result, **self.adult_category(user, lambda: next((code, label) for bound, code, label in cuts
                                                                    if value < bound))}

    def bp_category(self, user, bp_stats: dict) -> dict:
        name, classify = BP_GUIDELINES[self.config["bp_guideline"]]
        average, latest = bp_stats["avg"], bp_stats["latest"]["value"]
        result = {"guideline": name, "readings": bp_stats["count"]}
        for key, value in (("average", average), ("latest", latest)):
            result[key] = {**value, **self.adult_category(user, lambda: classify(value["systolic"], value["diastolic"]))}
        return result

    def adult_category(self, user, classify) -> dict:
        accounts = self.wm.service("accounts")
        age = accounts.age(user) if accounts else user.get("age")
        if isinstance(age, int) and age < 18:
            return {"category": None, "label": None, "note": "这是成人的标准，不适用于 18 岁以下"}
        code, label = classify()
        return {"category": code, "label": label}

    # -- the agents' summary -----------------------------------------------------------------
    def summary(self, user) -> str:
        """$health_summary: the last few days' records in a few lines, for an agent's prompt."""
        days = self.config["summary_days"]
        stats = self.stats(user, days)
        _, tz = self.wm.user_zone(user)
        lines = []
        for name, s in stats["types"].items():
            record_type = self.types.get(name) or fallback_type(name, s["latest"])
            lines.append(summary_line(record_type, s, stats["bp_category"] if name == "blood_pressure" else None,
                                      lambda stored: local_date(stored, tz)))
        bmi = stats["bmi"]
        if bmi:
            category = f"，{bmi['label']}（{bmi['guideline']}）" if bmi.get("label") else ""
            lines.append(f"- BMI {number_text(bmi['value'])}{category}；体重 {number_text(bmi['weight']['value'])} kg"
                         f"（{local_date(bmi['weight']['recorded_at'], tz)}），身高 {number_text(bmi['height']['value'])} cm")
        period = f"最近 {days} 天（{stats['from']} 至 {stats['to']}，{stats['timezone']}）"
        if not stats["types"]:
            return "\n".join([f"{period}没有健康记录。", *lines])
        return "\n".join([f"{period}的健康记录：", *lines])

    def report(self, user, type: str, days: int, lang: str = "zh") -> dict:
        """One type's records over the last ``days`` days, for an answer to the user's question
        about them (the offline companion's, which has no model to read $health_summary): the
        same stats and grading as GET /health/data/stats and the same line as $health_summary,
        in ``lang`` ("zh" or "en"). ``stats`` is the type's stats (count 0: none in the period),
        ``line`` its line without the list dash ("" with none), ``bp_category`` as the stats
        give it, ``bmi`` too with its ``label`` and ``guideline`` in ``lang``, ``latest`` the latest record ever when the period has none, and
        ``title`` the type's name in ``lang``, ``glucose_grade`` the blood-sugar grade of the period (`glucose_grade`:
        "very_high", "low", "high" or ""; None for another type, none in the period or another unit than mmol/L)."""
        days = max(1, min(int(days), MAX_DAYS))
        stats = self.stats(user, days, type)
        _, tz = self.wm.user_zone(user)
        s = stats["types"][type]
        record_type = self.type_of(type, [s["latest"]] if s["latest"] else [])
        title = record_type.title if lang == "zh" else record_type.title_en or record_type.title
        line = summary_line(record_type, s, stats["bp_category"], lambda stored: local_date(stored, tz), lang)[2:] \
            if s["count"] else ""
        latest = None if s["count"] else self.latest(user["id"], type)
        bmi = stats["bmi"] and {**stats["bmi"], "label": category_text(stats["bmi"], lang),
                                "guideline": stats["bmi"]["guideline"] if lang == "zh" else
                                GUIDELINE_EN.get(stats["bmi"]["guideline"], stats["bmi"]["guideline"])}
        # blood sugar graded by the lines the companion's caution quotes (plugins/_record_grades.py); in mmol/L only (a
        # type of a user's own in mg/dL read by those lines had every reading over 16.7)
        sugar = glucose_grade(s["min"], s["max"], s["avg"]) \
            if type == "blood_glucose" and s["count"] and record_type.unit == GLUCOSE_UNIT else None
        return {"type": type, "title": title, "unit": record_type.unit, "days": days, "from": stats["from"],
                "to": stats["to"], "stats": s, "line": line, "bp_category": stats["bp_category"], "bmi": bmi,
                "glucose_grade": sugar,
                "latest": latest and {**record_view(latest), "date": local_date(latest["recorded_at"], tz),
                                      "text": with_unit(record_type.value_text(latest["value"]), record_type.unit)}}

    # -- CSV ---------------------------------------------------------------------------------
    def export_csv(self, user) -> str:
        """The user's records as CSV (UTF-8 with a BOM, so Excel reads Chinese), oldest first,
        times in the user's time zone. Without ids and creation times: importing the file into
        another account and exporting that gives the same bytes."""
        _, tz = self.wm.user_zone(user)
        rows = []
        for record in self.all_records(user["id"]):
            record_type = self.types.get(record["type"]) or fallback_type(record["type"], record)
            rows.append((record["recorded_at"], record["type"], record_type.value_text(record["value"]),
                         record.get("unit") or "", as_text_cell(record.get("note") or ""),
                         as_text_cell(record.get("client_id") or "")))
        rows.sort()
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow([local_time_text(row[0], tz), *row[1:]])
        return "\ufeff" + out.getvalue()

    def import_csv(self, user, text: str) -> dict:
        """Add a CSV file's records (as export_csv writes them). All or nothing: a bad row is a 400
        naming its line. Importing a file again adds nothing: rows with a client_id are matched
        by it, others by their contents (a row already stored as often as the file has it)."""
        reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
        missing = [column for column in ("recorded_at", "type", "value") if column not in (reader.fieldnames or [])]
        if missing:
            raise ApiError(400, "invalid_csv", f"line 1: the header lacks {', '.join(missing)}; "
                                               f"expected {','.join(CSV_COLUMNS)}")
        records, lines, limit = [], [], self.config["max_import_rows"]
        try:
            for row in reader:
                where = f"line {reader.line_num}"
                if len(records) == limit:
                    raise ApiError(413, "too_many_rows", f"The file has more than {limit} rows "
                                                         f"(records.max_import_rows); import it in parts. "
                                                         f"Nothing was stored.")
                if None in row:
                    raise ApiError(400, "invalid_csv", f"{where}: more values than columns")
                item = {key: (row.get(key) or None) for key in CSV_COLUMNS}
                for key in ("note", "client_id"):
                    if item[key] and item[key].startswith("'"):
                        item[key] = item[key][1:] or None
                try:
                    if not item["recorded_at"]:  # not "now": importing the file again would add it again
                        raise ApiError(400, "missing_field", "recorded_at: required")
                    records.append(self.make(user, item, csv_row=True))
                except ApiError as e:
                    raise located(where, e)
                lines.append(where)
        except csv.Error as e:
            raise ApiError(400, "invalid_csv", f"line {reader.line_num}: {e}")
        stored = Counter(content_key(r) for r in self.all_records(user["id"]) if not r.get("client_id"))
        counts, to_put, put_lines = Counter(), [], []
        for record, line in zip(records, lines):
            if not record.get("client_id") and stored[content_key(record)] > 0:
                stored[content_key(record)] -= 1
                counts["unchanged"] += 1
            else:
                to_put.append(record)
                put_lines.append(line)
        for outcome, _ in self.put(user, to_put, lambda index: f"{put_lines[index]}: "):
            counts[outcome] += 1
        return {key: counts[key] for key in ("created", "updated", "unchanged")}


def as_text_cell(text: str) -> str:
    """Free text for a CSV cell that a spreadsheet shows as text, never runs as a formula."""
    return "'" + text if text.startswith(FORMULA_START) else text


def content_key(record: dict) -> tuple:
    return (record["type"], json_dumps(record["value"]), record.get("unit"), record["recorded_at"],
            record.get("note") or "")


def local_date(stored: str, tz) -> str:
    return datetime.fromisoformat(stored.replace("Z", "+00:00")).astimezone(tz).date().isoformat()


def type_stats(record_type: RecordType, records: list[dict], dates, bounds) -> dict:
    """count, min, max, avg, latest, a daily series and a trend for one type's records (newest
    first, all within ``bounds``) over ``dates`` (YYYY-MM-DD; day i starts at bounds[i]).
    Amounts (daily: sum) are compared by day: min, max and avg are of daily totals; measurements
    by record. A value of several numbers gets each stat per part."""
    parts = list(record_type.fields) or [None]
    decimals, by_day = record_type.decimals, record_type.daily == "sum"
    per_day = [[] for _ in dates]
    for record in records:
        i = bisect_right(bounds, record["recorded_at"]) - 1
        if 0 <= i < len(dates):
            per_day[i].append(record["value"])

    series, figures = {}, {}  # part -> the daily values; part -> (min, max, avg, trend)
    for part in parts:
        column = per_day if part is None else [[value[part] for value in values] for values in per_day]
        if by_day:
            daily = [round(sum(numbers), decimals) if numbers else None for numbers in column]
            samples = [value for value in daily if value is not None]
        else:
            daily = [round(sum(numbers) / len(numbers), decimals + 1) if numbers else None for numbers in column]
            samples = [number for numbers in column for number in numbers]
        series[part] = daily
        if samples:
            points = [(x, y) for x, y in enumerate(daily) if y is not None]
            figures[part] = (min(samples), max(samples), round(sum(samples) / len(samples), decimals + 1),
                             trend(points, record_type) if len(points) >= 2 else None)

    def each(values: dict):
        return values[None] if parts == [None] else values

    daily = [{"date": d, "value": each({part: series[part][i] for part in parts}) if per_day[i] else None,
              "count": len(per_day[i])} for i, d in enumerate(dates)]
    stats = {"title": record_type.title, "unit": record_type.unit, "count": len(records),
             "over": "day" if by_day else "record", "min": None, "max": None, "avg": None, "latest": None,
             "daily": daily, "trend": None}
    if figures:
        for n, key in enumerate(("min", "max", "avg", "trend")):
            stats[key] = each({part: figures[part][n] for part in parts})
        if figures[parts[0]][3] is None:  # fewer than two days with data: no trend in any part
            stats["trend"] = None
        stats["latest"] = record_view(records[0])
    return stats


def trend(points: list[tuple[int, float]], record_type: RecordType) -> dict:
    """A least-squares line through the daily values: its change from the first day with data to
    the last, and whether that change is big enough to notice (``noticeable``, else 5% of the
    mean)."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    slope = (sum((x - mean_x) * (y - mean_y) for x, y in points)
             / sum((x - mean_x) ** 2 for x, _ in points))
    change = slope * (points[-1][0] - points[0][0])
    threshold = record_type.noticeable or abs(mean_y) * 0.05
    direction = "flat" if abs(change) < threshold else ("up" if change > 0 else "down")
    return {"direction": direction, "change": round(change, record_type.decimals + 1),
            "per_day": round(slope, record_type.decimals + 2)}


TREND_WORDS = {"zh": {"up": "上升", "down": "下降", "flat": "平稳"}, "en": {"up": "up", "down": "down", "flat": "steady"}}
# The words of a type's line, Chinese as $health_summary has always read, English for the offline
# companion's answers to an English question about one's records (Records.report).
LINE_WORDS = {
    "zh": {"days": "- {title}：{n} 天有记录", "daily_avg": "，日均 {value}{spread}", "last_day": "，最近一天 {value}（{date}）",
           "one": "- {title}：{latest}", "many": "- {title}：{n} 条记录，平均 {value}{spread}，最近 {latest}",
           "latest": "{value}（{date}）", "spread": "（{low}–{high}）", "trend": "，趋势{direction}", "sep": "、",
           "grade": "；按《{guideline}》，{average}属于「{label}」", "average": "平均"},
    "en": {"days": "- {title}: records on {n} days", "daily_avg": ", {value} a day on average{spread}",
           "last_day": ", {value} on the latest day ({date})", "one": "- {title}: {latest}",
           "many": "- {title}: {n} records, average {value}{spread}, latest {latest}", "latest": "{value} ({date})",
           "spread": " ({low}–{high})", "trend": ", trend {direction}", "sep": ", ",
           "grade": "; by the {guideline}, {average}{label}", "average": "the average is "},
}
# English names of the guidelines' categories (records.bp_guideline, records.bmi_guideline), by code.
CATEGORY_EN = {"normal": "normal", "high_normal": "high-normal", "grade_1": "grade 1 (mild) high blood pressure",
               "grade_2": "grade 2 (moderate) high blood pressure", "grade_3": "grade 3 (severe) high blood pressure",
               "elevated": "elevated", "stage_1": "stage 1 high blood pressure", "stage_2": "stage 2 high blood pressure",
               "crisis": "a hypertensive crisis", "underweight": "underweight", "overweight": "overweight", "obese": "obese"}
GUIDELINE_EN = {"中国高血压防治指南（2018年修订版）": "Chinese hypertension guideline (2018)",
                "WS/T 428-2013 成人体重判定": "Chinese adult weight standard (WS/T 428-2013)"}


def category_text(category: dict, lang: str) -> str:
    """A guideline category's label in ``lang`` (the stats give it in Chinese: "1级高血压（轻度）")."""
    if lang == "zh" or not category.get("category"):
        return category.get("label") or ""
    text = CATEGORY_EN.get(category["category"], category["category"].replace("_", " "))
    return text + (", isolated systolic" if "单纯收缩期" in (category.get("label") or "") else "")


def summary_line(record_type: RecordType, s: dict, bp_category: dict | None, date_of, lang: str = "zh") -> str:
    """One type's line of $health_summary (and, in English, of the offline companion's answer about
    one's records); ``date_of(stored_time)`` gives the user's local date."""
    d, words = record_type.decimals, LINE_WORDS[lang]
    title = record_type.title if lang == "zh" else (record_type.title_en or record_type.title).capitalize()

    def text(value, places=None):
        return with_unit(record_type.value_text(value, places), record_type.unit)

    spread = "" if s["min"] == s["max"] else words["spread"].format(low=record_type.value_text(s["min"]), high=text(s["max"]))
    places = d if d or s["over"] == "day" else 1  # an average mood of 3.4, but 8234 steps a day
    if s["over"] == "day":
        with_data = [day for day in s["daily"] if day["count"]]
        line = words["days"].format(title=title, n=len(with_data))
        if len(with_data) > 1:
            line += words["daily_avg"].format(value=text(s["avg"], places), spread=spread)
        line += words["last_day"].format(value=text(with_data[-1]["value"]), date=with_data[-1]["date"])
    else:
        latest = words["latest"].format(value=text(s["latest"]["value"]), date=date_of(s["latest"]["recorded_at"]))
        line = (words["one"].format(title=title, latest=latest) if s["count"] == 1 else
                words["many"].format(title=title, n=s["count"], value=text(s["avg"], places), spread=spread, latest=latest))
    trend_value = s["trend"]
    if trend_value:
        changes = [trend_value] if "direction" in trend_value else list(trend_value.values())
        direction = changes[0]["direction"]  # of the first part: systolic for blood pressure
        line += words["trend"].format(direction=TREND_WORDS[lang][direction])
        if direction != "flat":
            line += " " + text({part: abs(c["change"]) for part, c in trend_value.items()} if len(changes) > 1
                               else abs(changes[0]["change"]), places)
    if bp_category and bp_category["average"].get("label"):
        average = words["average"] if bp_category["readings"] > 1 else ""
        guideline = bp_category["guideline"] if lang == "zh" else GUIDELINE_EN.get(bp_category["guideline"], bp_category["guideline"])
        line += words["grade"].format(guideline=guideline, average=average,
                                      label=category_text(bp_category["average"], lang))
    return line


# ---------------------------------------------------------------------------------------------
# Hooks
# ---------------------------------------------------------------------------------------------


@hookimpl
def register_collections(register):
    # The lookups records.py makes: a user's records (of one type) by time, and a record by its
    # client's id (upsert). All are by user_id: a write or a page costs what that user holds.
    register(COLLECTION, indexes=[Index(("user_id",), "recorded_at"), Index(("user_id", "type"), "recorded_at")],
             unique=[("user_id", "client_id")])


@hookimpl
def register_services(register):
    register("records", Records)


@hookimpl
def delete_user_data(user, wm):
    wm.storage.delete_where(COLLECTION, {"user_id": user["id"]})


@hookimpl
def export_user_data(user, wm):
    def records():  # newest first, as GET /health/data lists them; a page in memory at a time
        for record in wm.service("records").each(user["id"]):
            record.pop("user_id", None)
            yield record

    return {"records": records()}


VALUE = schema(["number", "object", "string"], description="a number in the type's unit (or the same number as text, "
                                                           "\"70.5\", as a form gives it), or for several numbers "
                                                           "{\"systolic\": 120, \"diastolic\": 80}, [120, 80] or \"120/80\"")
RECORD_IN = obj({"type": text(32, example="weight", description="a name of GET /api/v1/health/data/types"),
                 "value": VALUE, "unit": string(description="another of the type's units: converted"),
                 "recorded_at": schema(["string", "number"], description="ISO 8601 with offset, or Unix seconds; default now "
                                                                  "(a retry with the same client_id keeps the stored time)"),
                 "note": string(max_length=500),
                 "client_id": string(min_length=1, max_length=128,
                                     description="the client's id: a retry stores nothing twice; not empty (leave it out)")},
                required=["type", "value"], example={"type": "weight", "value": 70.5, "note": "after breakfast"})
RECORD = obj({"id": string(), "type": string(), "value": schema(["number", "object"]), "unit": string(nullable=True),
              "recorded_at": string(format="date-time"), "note": string(nullable=True), "client_id": string()},
             required=["id", "type", "value", "unit", "recorded_at", "note"], title="Record")
COUNTS = {key: integer(0) for key in ("created", "updated", "unchanged")}
TYPE_QUERY = string(max_length=32, description="only this record type")
RECORD_ERRORS = {409: "client_id_conflict: the client_id was used for another record",
                 422: "too_many_records: the account is at records.max_records_per_user"}


@hookimpl
def routes(app, wm):
    records = wm.service("records")

    def query_type():
        name = bottle.request.query.get("type") or None
        return records.type(name).name if name else None

    @app.get("/api/v1/health/data/types", api=Api(
        "The record types this server keeps, with their units and limits", auth="public",
        responses={200: obj({"items": array(obj({"name": string(), "title": string(), "title_en": string(), "unit": string(nullable=True),
                                                  "units": array(string(nullable=True)), "decimals": integer(0), "daily": schema(["boolean", "string"]),
                                                  "fields": obj(), "min": number(nullable=True), "max": number(nullable=True)},
                                                 required=["name", "title", "unit", "units", "decimals", "daily"]))},
                            required=["items"])}))
    def list_types():
        return {"items": [record_type.describe() for record_type in records.types.values()]}

    @app.get("/api/v1/health/data", api=Api(
        "The user's records, newest first",
        query={"type": TYPE_QUERY, "from": string(description="a date (YYYY-MM-DD, the user's day) or an ISO time"),
               "to": string(description="a date (included) or an ISO time"), **paging(50, 500)},
        responses={200: page(RECORD)}))
    def list_records():
        user = wm.require_user()
        _, tz = wm.user_zone(user)
        query = bottle.request.query
        start, end = records.bound(query.get("from"), tz, False), records.bound(query.get("to"), tz, True)
        # a window that ends before it starts holds nothing: an empty page looked like "no records" (session 15)
        if start is not None and end is not None and start >= end:
            raise ApiError(400, "invalid_range", f"from ({query.get('from')}) must be before to ({query.get('to')}); "
                                                 f"a date in to includes that day")
        return paged(records.page, record_view, 50, 500, user_id=user["id"], type=query_type(),
                     start=start, end=end)

    @app.post("/api/v1/health/data", api=Api(
        "Store a record", body=RECORD_IN, errors=RECORD_ERRORS,
        responses={201: RECORD, 200: ("a retry with the same client_id: the record as stored", RECORD)}))
    def create_record():
        user = wm.require_user()
        record = records.make(user, wm.json_body())
        if record.get("client_id"):  # a retry of this request must not store it twice
            [(outcome, record)] = records.put(user, [record])
        else:
            outcome, record = "created", records.add(user, record)
        bottle.response.status = 201 if outcome == "created" else 200
        return record_view(record)

    @app.post("/api/v1/health/data/batch", api=Api(
        "Store up to records.max_batch records at once (all or none)", errors=RECORD_ERRORS,
        body=obj({"items": array(RECORD_IN, min_items=1)}, required=["items"],
                 example={"items": [{"type": "steps", "value": 8000}, {"type": "weight", "value": 70.5}]}),
        responses={200: obj({"items": array(obj({**RECORD["properties"], "status": string(enum=list(COUNTS))},
                                                required=RECORD["required"] + ["status"])), **COUNTS},
                            required=["items", *COUNTS])}))
    def create_batch():
        user = wm.require_user()
        items = wm.json_body().get("items")
        limit = records.config["max_batch"]
        if not isinstance(items, list) or not 1 <= len(items) <= limit:
            raise ApiError(400, "invalid_field", f"items: must be a list of 1-{limit} records "
                                                 f"(records.max_batch), like {{\"items\": [{{\"type\": \"steps\", \"value\": 8000}}]}}")
        batch, seen = [], {}
        for i, item in enumerate(items):
            try:
                record = records.make(user, item)
            except ApiError as e:
                raise located(f"items[{i}]", e)
            if record.get("client_id") in seen:
                raise ApiError(400, "invalid_field", f"items[{i}].client_id: the same as items[{seen[record['client_id']]}]")
            if record.get("client_id"):
                seen[record["client_id"]] = i
            batch.append(record)
        results = records.put(user, batch, lambda index: f"items[{index}]: ")
        counts = Counter(outcome for outcome, _ in results)
        return {"items": [{**record_view(record), "status": outcome} for outcome, record in results],
                **{key: counts[key] for key in ("created", "updated", "unchanged")}}

    @app.get("/api/v1/health/data/stats", api=Api(
        "Per-type statistics of the last days (the user's days), with BMI and blood pressure category",
        query={"days": integer(1, MAX_DAYS, default=30), "type": TYPE_QUERY},
        responses={200: obj({"days": integer(1), "timezone": string(), "from": string(format="date"),
                             "to": string(format="date"), "types": obj(description="type name -> its statistics"),
                             "bmi": obj(nullable=True), "bp_category": obj(nullable=True)},
                            required=["days", "timezone", "from", "to", "types", "bmi", "bp_category"])}))
    def stats():
        user = wm.require_user()
        return records.stats(user, query_integer("days", 30, 1, MAX_DAYS), query_type())

    @app.get("/api/v1/health/data/csv", api=Api(
        "Every record of the user as a CSV file", responses={200: download("text/csv")}))
    def export_csv():
        user = wm.require_user()
        body = records.export_csv(user)
        bottle.response.content_type = "text/csv; charset=utf-8"
        filename = f"wellmate-records-{datetime.now(wm.user_zone(user)[1]).date().isoformat()}.csv"
        bottle.response.set_header("Content-Disposition", f'attachment; filename="{filename}"')
        return body

    @app.post("/api/v1/health/data/csv", api=Api(
        "Import records from a CSV file (the export's columns); a row again is not stored twice",
        # The file the export saves, declared as the export declares it (a file of text/csv): a
        # client generator then sends it as a file (a bare string it could not send).
        body=Content("text/csv", download("text/csv").schema,
                     example="type,value,unit,recorded_at,note\nweight,70.5,kg,2026-01-05T08:00:00+08:00,\n"),
        responses={200: obj(COUNTS, required=list(COUNTS))}, errors=RECORD_ERRORS))
    def import_csv():
        user = wm.require_user()
        raw = wm.raw_body()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "invalid_csv", "The file is not UTF-8 text; save it as \"CSV UTF-8\".")
        return records.import_csv(user, text)

    @app.get("/api/v1/health/data/<record_id>", api=Api("One record", responses={200: RECORD}))
    def read_record(record_id):
        return record_view(records.own(wm.require_user(), record_id))

    @app.delete("/api/v1/health/data/<record_id>", api=Api("Delete a record", responses={204: None}))
    def delete_record(record_id):
        records.own(wm.require_user(), record_id)
        records.delete(record_id)
        bottle.response.status = 204
        return ""


@hookimpl
def prompt_context(user, agent, wm):
    def health_summary() -> str:  # worked out only for a prompt that uses it (physical.txt does)
        try:
            return wm.service("records").summary(user)
        except Exception:  # a summary must never stop a chat
            log.exception("health summary for user %s", user.get("id"))
            return "（健康记录暂时读不到）"

    return {"health_summary": health_summary}
