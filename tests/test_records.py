"""Health records over real HTTP (README, Health records): types, units and ranges, filters and
paging, idempotent batches, stats, CSV round trips, and the physical agent seeing the numbers."""

import json
import re
import textwrap
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

import wellmate
from conftest import merge, shipped_config
from fakes.openai_server import FakeOpenAI
from test_chat_upstream import upstream_config

DATA = "/api/v1/health/data"
TZ = ZoneInfo("Asia/Shanghai")


def local(days_ago: int, hour: int = 0, minute: int = 5) -> str:
    """A time on the user's local day ``days_ago`` before today. Early in the day, so that even
    today's is not in the future (and 00:05 is within the 10 minutes a clock may run ahead)."""
    now = datetime.now(TZ)
    day = now.date() - timedelta(days=days_ago)
    at = datetime.combine(day, time(hour, minute), tzinfo=TZ)
    if at > now:  # today's 07:05 before 07:05 (CI after midnight in Shanghai): as far into the time so far
        midnight = datetime.combine(day, time(0), tzinfo=TZ)
        at = midnight + (now - midnight) * ((hour * 60 + minute) / (24 * 60))
    return at.isoformat()


def local_date(days_ago: int) -> str:
    return (datetime.now(TZ).date() - timedelta(days=days_ago)).isoformat()


def sign_in(client, username="alice", **profile):
    profile.setdefault("settings", {"timezone": "Asia/Shanghai"})
    return client.register(username, **profile)["access_token"]


def post(client, token, **record):
    r = client.post(DATA, record, token=token)
    assert r.status == 201, r.text
    return r.json


def everything(client, token, query=""):
    items, cursor = [], None
    while True:
        r = client.get(f"{DATA}?limit=3{query}" + (f"&before={cursor}" if cursor else ""), token=token)
        assert r.status == 200, r.text
        items += r.json["items"]
        cursor = r.json["next"]
        if cursor is None:
            return items


# -- types, units, ranges -----------------------------------------------------------------------


def test_types_are_listed_with_their_units_and_ranges(client):
    items = {t["name"]: t for t in client.get(f"{DATA}/types").json["items"]}
    assert list(items) == ["weight", "height", "steps", "sleep", "heart_rate", "blood_pressure",
                           "blood_glucose", "water", "mood", "temperature"]
    assert items["weight"]["unit"] == "kg" and "lb" in items["weight"]["units"]
    assert (items["mood"]["min"], items["mood"]["max"]) == (1, 5)
    assert items["blood_pressure"]["fields"]["systolic"] == {"min": 50, "max": 300}


@pytest.mark.parametrize("type, value, unit, stored, stored_unit", [
    ("weight", 150, "lb", 68.04, "kg"),
    ("weight", 130, "斤", 65.0, "kg"),
    ("weight", "70.5", None, 70.5, "kg"),  # a form's text
    ("height", 1.75, "m", 175.0, "cm"),
    ("sleep", 450, "min", 7.5, "h"),
    ("temperature", 98.6, "°F", 37.0, "°C"),
    ("temperature", 36.6, "℃", 36.6, "°C"),
    ("blood_glucose", 100, "mg/dL", 5.6, "mmol/L"),
    ("blood_glucose", 126, "MG/DL", 7.0, "mmol/L"),  # units compare without case
    ("water", 0.5, "L", 500, "ml"),
    ("steps", 8000, "步", 8000, "steps"),
    ("mood", 4, None, 4, "分"),
    ("blood_pressure", "120/80", None, {"systolic": 120, "diastolic": 80}, "mmHg"),
    ("blood_pressure", [16, 10.5], "kPa", {"systolic": 120, "diastolic": 79}, "mmHg"),
    ("blood_pressure", {"systolic": 135, "diastolic": 85}, "mmHg", {"systolic": 135, "diastolic": 85}, "mmHg"),
])
def test_values_are_converted_to_the_types_unit(client, type, value, unit, stored, stored_unit):
    token = sign_in(client)
    record = post(client, token, type=type, value=value, **({"unit": unit} if unit else {}))
    assert (record["value"], record["unit"]) == (stored, stored_unit)
    assert client.get(f"{DATA}/{record['id']}", token=token).json == record


@pytest.mark.parametrize("body, code, message", [
    ({"type": "weight", "value": 700}, "out_of_range", "value: 700 kg is outside the plausible range for weight, 1–500 kg"),
    ({"type": "weight", "value": 1500, "unit": "lb"}, "out_of_range", "1500 lb (= 680.39 kg) is outside the plausible range for weight, 1–500 kg"),
    ({"type": "heart_rate", "value": 7}, "out_of_range", "20–250 bpm"),
    ({"type": "temperature", "value": 120, "unit": "F"}, "out_of_range", "120 F (= 48.9°C) is outside the plausible range for temperature, 30–45°C"),
    ({"type": "mood", "value": 6}, "out_of_range", "1–5 分"),
    ({"type": "blood_pressure", "value": "400/80"}, "out_of_range", "value.systolic: 400 mmHg is outside"),
    ({"type": "blood_pressure", "value": "80/120"}, "invalid_value", "systolic (the upper number) must be above diastolic"),
    ({"type": "blood_pressure", "value": 120}, "invalid_value", '"systolic":"...","diastolic":"..."'),
    ({"type": "steps", "value": 8000.5}, "invalid_value", "steps is a whole number"),
    ({"type": "weight", "value": "heavy"}, "invalid_value", 'value: must be a number, got "heavy"'),
    ({"type": "weight", "value": True}, "invalid_value", "value: must be a number"),
    ({"type": "weight", "value": 70, "unit": "stone"}, "invalid_unit", "weight is recorded in kg; also accepted: 公斤"),
    ({"type": "weight"}, "missing_field", "value: required"),
    ({"type": "cholesterol", "value": 5}, "unknown_type", "type: unknown record type 'cholesterol'; known: weight, height, steps"),
    ({"value": 5}, "missing_field", "type: required"),
    ({"type": "weight", "value": 70, "recorded_at": "2999-01-01T00:00:00Z"}, "invalid_field", "in the future"),
    ({"type": "weight", "value": 70, "recorded_at": "2026-01-01 08:00"}, "invalid_field", "with an offset"),
    ({"type": "weight", "value": 70, "note": "x" * 501}, "invalid_field", "note: at most 500 characters"),
])
def test_bad_records_are_400s_that_say_why(client, body, code, message):
    token = sign_in(client)
    r = client.post(DATA, body, token=token)
    assert r.status == 400, r.text
    assert r.json["error"]["code"] == code and message in r.json["error"]["message"]
    assert everything(client, token) == []


@pytest.mark.parametrize("accept, named", [
    (None, "weight"), ("en-GB,en;q=0.9", "weight"), ("zh-CN,zh;q=0.9,en;q=0.8", "体重"), ("en;q=0.5, zh-TW", "体重"),
    ("fr-FR,en;q=0.7,zh;q=0.3", "weight"), ("zh;q=0,en;q=0.1", "weight"), ("zh;q=0", "weight"),
    # a malformed weight is ignored (RFC 9110 leaves it to us): its range weighs 1, as one with none does, and a
    # tie goes to the range written first (the session-17 review: a malformed English weight let Chinese win)
    ("en;q=abc, zh;q=0.5", "weight"), ("en;q=2, zh;q=0.9", "weight"), ("en, zh;q=2", "weight"),
    ("zh;q=, en;q=0.9", "体重"), ("zh;q=abc,en", "体重"), ("en;q=-1,zh-CN;q=0.8", "weight"),
    ("en;q=nan, zh", "weight"), ("zh ; Q=0.4 , en;q=0.3", "体重"), ("*, zh;q=0.5", "weight"), ("zh;q=1.000", "体重"),
    ("en_GB, zh;q=0.1", "体重"), (";q=1, en", "weight"), (",,,", "weight"), ("zh;q=0.5;q=abc, en;q=0.4", "体重"),
    # bytes that are no text (a 500 before: bottle raised UnicodeDecodeError decoding them, the session-17 review)
    ("\xff\xfe", "weight"), ("zh\xe9", "weight"),
])
def test_a_record_error_names_the_type_in_the_requests_language(client, accept, named):
    # the session-15 review: an English user read "outside the plausible range for 体重"; the message is English, so
    # the type's English name, unless the request asks for Chinese first (then its title, as before)
    token = sign_in(client)
    headers = {"Accept-Language": accept} if accept else None
    r = client.post(DATA, {"type": "weight", "value": 700}, token=token, headers=headers)
    assert r.status == 400 and f"plausible range for {named}, 1–500 kg" in r.json["error"]["message"], r.text
    r = client.post(DATA, {"type": "steps", "value": 80.5}, token=token, headers=headers)
    assert f"{'steps' if named == 'weight' else '步数'} is a whole number" in r.json["error"]["message"], r.text
    assert "体重" not in str(client.get(f"{DATA}/types").json["items"][0]["title_en"])


def test_records_need_a_token(client):
    assert client.get(DATA).status == 401
    assert client.post(DATA, {"type": "weight", "value": 70}).status == 401
    assert client.get(f"{DATA}/stats").status == 401
    assert client.get(f"{DATA}/csv").status == 401


# -- list, filters, delete, privacy ------------------------------------------------------------


def test_list_filters_by_type_and_local_days_and_pages(client):
    token = sign_in(client)
    made = [post(client, token, type="weight" if n % 2 else "sleep", value=70 + n if n % 2 else 7,
                 recorded_at=local(n)) for n in range(8)]
    assert [r["id"] for r in everything(client, token)] == [r["id"] for r in made]  # newest first
    assert [r["id"] for r in everything(client, token, "&type=weight")] == [r["id"] for r in made if r["type"] == "weight"]
    # Dates are the user's days, and `to` includes its day: 00:05 in Shanghai is 16:05 UTC the day before.
    window = everything(client, token, f"&from={local_date(5)}&to={local_date(2)}")
    assert [r["id"] for r in window] == [r["id"] for r in made[2:6]]
    assert made[2]["recorded_at"][:10] < local_date(2)  # stored in UTC, on the previous date
    since = everything(client, token, f"&from={local(3, 0, 0).replace('+', '%2B')}")
    assert [r["id"] for r in since] == [r["id"] for r in made[:4]]
    r = client.get(f"{DATA}?type=cholesterol", token=token)
    assert r.status == 400 and r.json["error"]["code"] == "unknown_type"
    r = client.get(f"{DATA}?from=2026-02-30", token=token)
    assert r.status == 400 and "no such date" in r.json["error"]["message"]
    assert client.get(f"{DATA}?before=nonsense", token=token).json["error"]["code"] == "invalid_cursor"


def test_delete_and_another_users_record_is_404(client):
    alice = sign_in(client, "alice")
    bob = sign_in(client, "bob")
    record = post(client, alice, type="steps", value=1234)
    for method in (client.get, client.delete):
        r = method(f"{DATA}/{record['id']}", token=bob)
        assert r.status == 404 and r.json["error"]["code"] == "record_not_found"
    assert everything(client, bob) == []
    assert client.delete(f"{DATA}/{record['id']}", token=alice).status == 204
    assert client.delete(f"{DATA}/{record['id']}", token=alice).status == 404
    assert everything(client, alice) == []


# -- batches: idempotent by client_id ------------------------------------------------------------


def werun(days: int, today_steps: int = 3000) -> dict:
    """A WeRun sync as a mini-program sends it: a daily total per day, Unix seconds, dated ids."""
    items = []
    for n in range(days):
        day = datetime.fromisoformat(local(n, 0, 0))
        items.append({"type": "steps", "value": today_steps if n == 0 else 5000 + 100 * n,
                      "recorded_at": int(day.timestamp()), "client_id": f"werun:{day.date().isoformat()}"})
    return {"items": items}


def test_a_repeated_batch_does_not_duplicate(client):
    token = sign_in(client)
    r = client.post(f"{DATA}/batch", werun(30), token=token)
    assert r.status == 200, r.text
    assert (r.json["created"], r.json["updated"], r.json["unchanged"]) == (30, 0, 0)
    ids = [item["id"] for item in r.json["items"]]
    assert all(item["status"] == "created" for item in r.json["items"])
    assert r.json["items"][1]["recorded_at"] == datetime.fromisoformat(local(1, 0, 0)).astimezone(timezone.utc) \
        .isoformat(timespec="milliseconds").replace("+00:00", "Z")

    again = client.post(f"{DATA}/batch", werun(30), token=token).json  # the retry of a sync
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 30)
    assert [item["id"] for item in again["items"]] == ids
    assert len(everything(client, token)) == 30

    later = client.post(f"{DATA}/batch", werun(30, today_steps=9000), token=token).json  # today's count grew
    assert (later["created"], later["updated"], later["unchanged"]) == (0, 1, 29)
    assert later["items"][0] == {**again["items"][0], "value": 9000, "status": "updated"}
    stats = client.get(f"{DATA}/stats?type=steps&days=30", token=token).json["types"]["steps"]
    assert stats["count"] == 30 and stats["daily"][-1]["value"] == 9000


def test_a_bad_batch_stores_nothing_and_names_the_item(make_wm, serve):
    client = serve(make_wm({"records": {"max_batch": 5}})).client
    token = sign_in(client)
    items = werun(4)["items"] + [{"type": "steps", "value": -1}]
    r = client.post(f"{DATA}/batch", {"items": items}, token=token)
    assert r.status == 400 and r.json["error"]["message"].startswith("items[4]: value: -1 steps is outside")
    r = client.post(f"{DATA}/batch", {"items": werun(2)["items"] * 2}, token=token)
    assert r.status == 400 and r.json["error"]["message"] == "items[2].client_id: the same as items[0]"
    for body in ({"items": werun(6)["items"]}, {"items": []}, {"items": {"type": "steps"}}, {}):
        r = client.post(f"{DATA}/batch", body, token=token)
        assert r.status == 400 and "1-5 records (records.max_batch)" in r.json["error"]["message"]
    r = client.post(f"{DATA}/batch", {"items": ["steps"]}, token=token)
    assert r.status == 400 and r.json["error"]["message"].startswith("items[0]: must be an object")
    assert everything(client, token) == []


def test_one_record_with_a_client_id_is_stored_once(client):
    token = sign_in(client)
    body = {"type": "water", "value": 250, "client_id": "cup-1", "recorded_at": local(0)}
    first = client.post(DATA, body, token=token)
    second = client.post(DATA, body, token=token)
    assert first.status == 201 and second.status == 200 and second.json == first.json
    assert first.json["client_id"] == "cup-1"
    assert len(everything(client, token)) == 1


def test_a_retry_without_a_time_keeps_the_stored_time(make_wm, serve):
    """A record re-sent without recorded_at (a phone retrying after a lost response) is the same record: it keeps
    the time it was stored with and answers unchanged; new contents answer updated and still keep that time. So
    across a restart, and for two retries at once (the match and the kept time are read under one lock)."""
    import threading
    import time as clock

    wm = make_wm()
    served = serve(wm)
    client = served.client
    token = sign_in(client)
    first = client.post(DATA, {"type": "weight", "value": 70, "client_id": "scale:1"}, token=token)
    assert first.status == 201, first.text
    clock.sleep(0.01)  # a retry a few milliseconds later: "now" has moved on
    again = client.post(DATA, {"type": "weight", "value": 70, "client_id": "scale:1"}, token=token)
    assert again.status == 200 and again.json == first.json, again.text
    batch = client.post(f"{DATA}/batch", {"items": [{"type": "weight", "value": 70, "client_id": "scale:1"},
                                                    {"type": "weight", "value": "71", "client_id": "scale:2"}]},
                        token=token).json
    assert [item["status"] for item in batch["items"]] == ["unchanged", "created"]
    assert batch["items"][0]["recorded_at"] == first.json["recorded_at"]
    grown = client.post(DATA, {"type": "weight", "value": 70.4, "client_id": "scale:1"}, token=token)
    assert grown.status == 200 and grown.json == {**first.json, "value": 70.4}, grown.text
    # A time given is the record's time, as before: the client says when it was measured.
    dated = client.post(DATA, {"type": "weight", "value": 70.4, "client_id": "scale:1", "recorded_at": local(1)},
                        token=token)
    assert dated.status == 200 and dated.json["recorded_at"] != first.json["recorded_at"]
    kept = dated.json["recorded_at"]
    served.stop()
    wm.close()

    client = serve(make_wm()).client  # the next process, on the same data folder
    token = client.post("/api/v1/auth/login", {"username": "alice", "password": "correct horse"}).json["access_token"]
    r = client.post(f"{DATA}/batch", {"items": [{"type": "weight", "value": 70.4, "client_id": "scale:1"}]}, token=token)
    assert r.json["items"][0]["status"] == "unchanged" and r.json["items"][0]["recorded_at"] == kept, r.text

    # Two retries at once of a record never stored: one creates it, the other finds it, with its time.
    for n in range(8):
        gate, answers = threading.Barrier(2), []

        def retry():
            gate.wait()
            answers.append(client.post(f"{DATA}/batch", {"items": [{"type": "steps", "value": 100 + n,
                                                                    "client_id": f"werun:{n}"}]}, token=token).json)

        threads = [threading.Thread(target=retry) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        items = [answer["items"][0] for answer in answers]
        assert sorted(item["status"] for item in items) == ["created", "unchanged"], answers
        assert items[0]["recorded_at"] == items[1]["recorded_at"] and items[0]["id"] == items[1]["id"]
    assert len(everything(client, token)) == 2 + 8


def test_a_storage_plugin_without_upsert_defaults_still_syncs(make_wm, serve, tmp_path):
    """A storage plugin written to the upsert contract before session 18 (no ``defaults``) is not broken by it: a
    record re-sent without a time is stored once and answers updated with a new time, as it did then."""
    from test_hooks import use_plugin

    use_plugin(tmp_path, "old_upsert_storage")
    client = serve(make_wm({"storage": {"backend": "old_upsert"}})).client
    token = sign_in(client)
    items = {"items": [{"type": "weight", "value": 70, "client_id": "scale:1"}]}
    first = client.post(f"{DATA}/batch", items, token=token)
    again = client.post(f"{DATA}/batch", items, token=token)
    assert first.status == again.status == 200, again.text
    assert [first.json["created"], again.json["updated"]] == [1, 1] and len(everything(client, token)) == 1


def test_a_client_id_reused_for_another_type_is_a_409_storing_nothing(client):
    token = sign_in(client)
    steps = post(client, token, type="steps", value=8000, client_id="werun:1", recorded_at=local(1))
    r = client.post(DATA, {"type": "weight", "value": 70, "client_id": "werun:1"}, token=token)
    assert r.status == 409 and r.json["error"]["code"] == "client_id_conflict", r.text
    assert "'werun:1' is already a steps record" in r.json["error"]["message"]
    items = [{"type": "sleep", "value": 7, "client_id": "s1"}, {"type": "weight", "value": 70, "client_id": "werun:1"}]
    r = client.post(f"{DATA}/batch", {"items": items}, token=token)
    assert r.status == 409 and r.json["error"]["message"].startswith("items[1]: client_id 'werun:1' is already a steps")
    csv_text = f"recorded_at,type,value,unit,note,client_id\n{local(2)},sleep,7,h,,s1\n{local(1)},weight,70,kg,,werun:1\n"
    r = client.post(f"{DATA}/csv", raw=csv_text.encode(), token=token)
    assert r.status == 409 and r.json["error"]["message"].startswith("line 3: client_id 'werun:1' is already a steps")
    # Within one request too: the second use of a client_id with another type.
    r = client.post(f"{DATA}/csv", raw=f"recorded_at,type,value,client_id\n{local(2)},sleep,7,x\n{local(2)},mood,3,x\n"
                    .encode(), token=token)
    assert r.status == 409 and r.json["error"]["message"].startswith("line 3: client_id 'x' is already a sleep")
    assert everything(client, token) == [steps]


def test_one_users_record_write_appends_only_itself(make_wm, serve):
    # A write costs what it stores, not what other users keep: bob's record is one line appended
    # to the records file, after alice's 2,000 (the TinyDB backend rewrote a whole file per write).
    wm = make_wm()
    client = serve(wm).client
    alice, bob = sign_in(client, "alice"), sign_in(client, "bob")
    rows = "".join(f"{local(n % 300 + 1, n % 24)},steps,{1000 + n},steps,,a{n}\n" for n in range(2000))
    r = client.post(f"{DATA}/csv", raw=("recorded_at,type,value,unit,note,client_id\n" + rows).encode(), token=alice)
    assert r.json["created"] == 2000, r.text

    def stored():  # the storage's files: not the request log (data/logs/)
        return [p for p in wm.data_dir.rglob("*") if p.is_file() and p.parent.name != "logs"]

    before = {p: p.read_bytes() for p in stored()}
    bobs = post(client, bob, type="weight", value=70)
    changed = [p for p in stored() if before.get(p) != p.read_bytes()]
    assert [p.relative_to(wm.data_dir).as_posix() for p in changed] == ["collections/records.jsonl"]
    after = changed[0].read_bytes()
    assert after.startswith(before[changed[0]])
    [line] = after[len(before[changed[0]]):].splitlines()
    assert json.loads(line)["put"]["id"] == bobs["id"]


def test_imports_are_bounded_and_refused_whole(make_wm, serve):
    client = serve(make_wm({"records": {"max_import_rows": 5, "max_records_per_user": 8}})).client
    token = sign_in(client)
    header = "recorded_at,type,value,unit,note,client_id\n"
    rows = [f"{local(n)},steps,{1000 + n},steps,,d{n}\n" for n in range(10)]
    r = client.post(f"{DATA}/csv", raw=(header + "".join(rows[:6])).encode(), token=token)
    assert r.status == 413 and r.json["error"]["code"] == "too_many_rows", r.text
    assert "records.max_import_rows" in r.json["error"]["message"] and everything(client, token) == []
    assert client.post(f"{DATA}/csv", raw=(header + "".join(rows[:5])).encode(), token=token).json["created"] == 5
    # 5 stored, 8 allowed: 4 more do not fit, whichever way they come; nothing is stored.
    r = client.post(f"{DATA}/csv", raw=(header + "".join(rows[5:9])).encode(), token=token)
    assert r.status == 422 and r.json["error"]["code"] == "too_many_records", r.text
    assert "records.max_records_per_user is 8" in r.json["error"]["message"]
    items = [{"type": "sleep", "value": 7, "recorded_at": local(n)} for n in range(4)]
    assert client.post(f"{DATA}/batch", {"items": items}, token=token).status == 422
    assert len(everything(client, token)) == 5
    # The same file again is nothing new: fine at the limit. Then up to the limit, then one more is refused.
    assert client.post(f"{DATA}/csv", raw=(header + "".join(rows[:5])).encode(), token=token).json["unchanged"] == 5
    assert client.post(f"{DATA}/batch", {"items": items[:3]}, token=token).json["created"] == 3
    r = client.post(DATA, {"type": "weight", "value": 70}, token=token)
    assert r.status == 422 and r.json["error"]["code"] == "too_many_records"
    assert client.post(DATA, {"type": "steps", "value": 1, "client_id": "d0", "recorded_at": local(0)},
                       token=token).status == 200  # an update of a stored record still fits
    assert len(everything(client, token)) == 8


# -- stats ---------------------------------------------------------------------------------------


def test_stats_per_type_daily_series_trend_bmi_and_blood_pressure(client):
    token = sign_in(client, age=40)
    for n, hours in enumerate([6.0, 6.2, 6.5, 6.8, 7.0, 7.2, 7.5]):  # n days ago: sleep getting shorter
        post(client, token, type="sleep", value=hours, recorded_at=local(n, 7))
    for n in (0, 0, 2):  # two glasses today, one two days ago: amounts add up per day
        post(client, token, type="water", value=300 if n else 250, recorded_at=local(n))
    post(client, token, type="steps", value=4000, recorded_at=local(1, 23, 50))  # late evening, local
    post(client, token, type="height", value=175, recorded_at=local(300))  # long ago: still counts for BMI
    post(client, token, type="weight", value=80, recorded_at=local(10))
    post(client, token, type="weight", value=76.5, recorded_at=local(1))
    post(client, token, type="blood_pressure", value="150/92", recorded_at=local(3))
    post(client, token, type="blood_pressure", value="136/86", recorded_at=local(1))
    post(client, token, type="mood", value=4, recorded_at=local(8))  # outside the 7 days

    r = client.get(f"{DATA}/stats?days=7", token=token)
    assert r.status == 200, r.text
    stats = r.json
    assert (stats["days"], stats["timezone"], stats["from"], stats["to"]) == (7, "Asia/Shanghai", local_date(6), local_date(0))
    assert list(stats["types"]) == ["weight", "steps", "sleep", "blood_pressure", "water"]

    sleep = stats["types"]["sleep"]
    assert (sleep["count"], sleep["min"], sleep["max"], sleep["avg"], sleep["over"]) == (7, 6.0, 7.5, 6.743, "record")
    assert sleep["latest"]["value"] == 6.0 and sleep["unit"] == "h" and sleep["title"] == "睡眠"
    assert [d["date"] for d in sleep["daily"]] == [local_date(n) for n in range(6, -1, -1)]
    assert [d["value"] for d in sleep["daily"]] == [7.5, 7.2, 7.0, 6.8, 6.5, 6.2, 6.0]
    assert sleep["trend"]["direction"] == "down" and sleep["trend"]["change"] == pytest.approx(-1.5, abs=0.05)

    water = stats["types"]["water"]
    assert water["over"] == "day" and water["count"] == 3
    assert [d["value"] for d in water["daily"]][-3:] == [300, None, 500]
    assert (water["min"], water["max"], water["avg"]) == (300, 500, 400)

    steps = stats["types"]["steps"]  # 23:50 in Shanghai is 15:50 UTC: still yesterday, locally
    assert steps["daily"][-2] == {"date": local_date(1), "value": 4000, "count": 1} and steps["trend"] is None

    assert stats["types"]["weight"]["count"] == 1  # the 80 kg of 10 days ago is outside the window
    bmi = stats["bmi"]
    assert bmi["value"] == 25.0 and bmi["weight"]["value"] == 76.5 and bmi["height"]["value"] == 175.0
    assert (bmi["category"], bmi["label"], bmi["guideline"]) == ("overweight", "超重", "WS/T 428-2013 成人体重判定")

    bp = stats["types"]["blood_pressure"]
    assert bp["avg"] == {"systolic": 143.0, "diastolic": 89.0}
    assert bp["min"] == {"systolic": 136, "diastolic": 86} and bp["max"] == {"systolic": 150, "diastolic": 92}
    assert bp["trend"]["systolic"]["direction"] == "down"
    category = stats["bp_category"]
    assert category["guideline"] == "中国高血压防治指南（2018年修订版）" and category["readings"] == 2
    assert category["average"] == {"systolic": 143.0, "diastolic": 89.0, "category": "grade_1",
                                   "label": "1级高血压（轻度），单纯收缩期高血压"}
    assert category["latest"]["category"] == "high_normal"

    one = client.get(f"{DATA}/stats?type=mood&days=30", token=token).json
    assert list(one["types"]) == ["mood"] and one["types"]["mood"]["count"] == 1 and one["bp_category"] is None
    empty = client.get(f"{DATA}/stats?type=heart_rate", token=token).json["types"]["heart_rate"]
    assert empty["count"] == 0 and empty["avg"] is None and len(empty["daily"]) == 30
    for query in ("days=0", "days=367", "days=week", "type=cholesterol"):
        assert client.get(f"{DATA}/stats?{query}", token=token).status == 400


def test_other_guidelines_and_no_adult_categories_for_children(make_wm, serve):
    client = serve(make_wm({"records": {"bp_guideline": "acc-aha-2017", "bmi_guideline": "who"}})).client
    adult, child = sign_in(client, "adult", age=40), sign_in(client, "child", age=12)
    for token in (adult, child):
        post(client, token, type="height", value=175, recorded_at=local(1))
        post(client, token, type="weight", value=74, recorded_at=local(1))
        post(client, token, type="blood_pressure", value="136/86", recorded_at=local(1))
    stats = client.get(f"{DATA}/stats?days=7", token=adult).json
    assert (stats["bmi"]["category"], stats["bmi"]["guideline"]) == ("normal", "WHO 2000 BMI classification")
    assert stats["bp_category"]["guideline"] == "2017 ACC/AHA Guideline for High Blood Pressure in Adults"
    assert stats["bp_category"]["latest"]["category"] == "stage_1"
    assert stats["types"]["blood_pressure"]["trend"] is None  # one day: no trend, in any part
    stats = client.get(f"{DATA}/stats?days=7", token=child).json
    assert stats["bmi"]["value"] == 24.2 and stats["bmi"]["category"] is None and "18" in stats["bmi"]["note"]
    assert stats["bp_category"]["average"]["category"] is None


def test_a_birth_date_alone_makes_a_child_a_child(make_wm, serve):
    with FakeOpenAI(reply="好的。") as fake:
        client = serve(make_wm(upstream_config(fake.url))).client
        today = datetime.now(TZ).date()
        tomorrow = today + timedelta(days=1 if (today.month, today.day) != (2, 28) else 2)  # not 29 Feb
        # Born on 1 January twelve years ago: 12 all year. Born tomorrow thirteen years ago:
        # still 12 today, in the user's own time zone.
        for name, born in (("child", f"{today.year - 12}-01-01"),
                           ("almost", tomorrow.replace(year=tomorrow.year - 13).isoformat())):
            token = sign_in(client, name, birth_date=born)
            post(client, token, type="height", value=150, recorded_at=local(1))
            post(client, token, type="weight", value=60, recorded_at=local(1))
            post(client, token, type="blood_pressure", value="136/86", recorded_at=local(1))
            stats = client.get(f"{DATA}/stats?days=7", token=token).json
            assert stats["bmi"]["value"] == 26.7 and stats["bmi"]["category"] is None and "18" in stats["bmi"]["note"]
            assert stats["bp_category"]["latest"]["category"] is None, (name, born)
            client.post("/api/v1/health/physical/chat", {"text": "我多大了？"}, token=token)
            assert "年龄 12，" in fake.last.body["messages"][0]["content"]


READINGS = [(118, 78), (125, 78), (118, 84), (135, 78), (142, 88), (128, 95), (165, 95), (150, 105),
            (182, 100), (170, 125)]


@pytest.mark.parametrize("guideline, expected", [
    ("china-2018", ["normal", "high_normal", "high_normal", "high_normal", "grade_1", "grade_1", "grade_2",
                    "grade_2", "grade_3", "grade_3"]),
    ("acc-aha-2017", ["normal", "elevated", "stage_1", "stage_1", "stage_2", "stage_2", "stage_2", "stage_2",
                      "crisis", "crisis"]),
])
def test_blood_pressure_categories(make_wm, serve, guideline, expected):
    client = serve(make_wm({"records": {"bp_guideline": guideline}})).client
    got = []
    for n, reading in enumerate(READINGS):
        token = sign_in(client, f"user{n}", age=50)
        post(client, token, type="blood_pressure", value=list(reading), recorded_at=local(0))
        got.append(client.get(f"{DATA}/stats?days=1", token=token).json["bp_category"]["latest"]["category"])
    assert got == expected


# -- the agents know the numbers --------------------------------------------------------------


def test_the_physical_agent_sees_the_users_records(make_wm, serve):
    with FakeOpenAI(reply="你这周睡得比上周少。") as fake:
        client = serve(make_wm(upstream_config(fake.url))).client
        token = sign_in(client, full_name="小明", age=40)
        client.post(f"{DATA}/batch", {"items": [
            {"type": "sleep", "value": hours, "recorded_at": local(n, 7)}
            for n, hours in enumerate([5.5, 6.0, 6.5, 6.5, 7.0, 7.5, 7.5])]}, token=token)
        post(client, token, type="blood_pressure", value="128/82", recorded_at=local(2))
        post(client, token, type="weight", value=68, recorded_at=local(1))
        post(client, token, type="height", value=172, recorded_at=local(100))

        r = client.post("/api/v1/health/physical/chat", {"text": "我最近睡得怎么样？"}, token=token)
        assert r.status == 200 and r.json["provider"] == "fake"
        system = fake.last.body["messages"][0]["content"]
        assert f"最近 7 天（{local_date(6)} 至 {local_date(0)}，Asia/Shanghai）的健康记录：" in system
        assert f"- 睡眠：7 条记录，平均 6.64 h（5.5–7.5 h），最近 5.5 h（{local_date(0)}），趋势下降 2.04 h" in system
        assert f"- 血压：128/82 mmHg（{local_date(2)}）；按《中国高血压防治指南（2018年修订版）》，属于「正常高值」" in system
        assert "- BMI 23，正常（WS/T 428-2013 成人体重判定）" in system
        assert "$" not in system

        # A new record shows in the next turn.
        post(client, token, type="heart_rate", value=72, recorded_at=local(0))
        client.post("/api/v1/health/physical/chat", {"text": "心率呢？"}, token=token)
        assert f"- 心率：72 bpm（{local_date(0)}）" in fake.last.body["messages"][0]["content"]


def test_a_user_without_records_is_told_so(make_wm, serve):
    with FakeOpenAI(reply="ok") as fake:
        client = serve(make_wm(upstream_config(fake.url))).client
        token = sign_in(client, settings={})
        client.post("/api/v1/health/physical/chat", {"text": "hi"}, token=token)
        assert "最近 7 天（" in fake.last.body["messages"][0]["content"]
        assert "，UTC）没有健康记录。" in fake.last.body["messages"][0]["content"]


# -- CSV -------------------------------------------------------------------------------------------


NOTES = ["", "跑步后", 'with "quotes", commas', "two\nlines", "crlf\r\nline", "emoji 😴", "=1+1", "@home", "'tis"]


def test_csv_export_imported_into_a_new_user_gives_identical_records(client):
    alice = sign_in(client, "alice")
    for n, (type, value) in enumerate([("weight", 68.04), ("sleep", 7.25), ("steps", 8000), ("mood", 3),
                                       ("blood_pressure", "118/76"), ("temperature", 36.6), ("water", 250),
                                       ("water", 250), ("blood_glucose", 5.4), ("heart_rate", 64)]):
        post(client, alice, type=type, value=value, recorded_at=local(n % 4, n), note=NOTES[n % len(NOTES)])
    post(client, alice, type="water", value=250, recorded_at=local(0, 8))  # two identical records
    post(client, alice, type="water", value=250, recorded_at=local(0, 8))
    client.post(f"{DATA}/batch", werun(3), token=alice)
    post(client, alice, type="weight", value=70.123, recorded_at="2025-06-01T12:00:00.123Z")

    exported = client.get(f"{DATA}/csv", token=alice)
    assert exported.status == 200 and exported.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in exported.headers["Content-Disposition"]
    text = exported.body.decode("utf-8")
    assert text.startswith("\ufeffrecorded_at,type,value,unit,note,client_id\r\n")
    assert "\r\n2025-06-01T20:00:00.123+08:00,weight,70.12,kg,,\r\n" in text  # local time, ms kept
    assert ",blood_pressure,118/76,mmHg," in text
    # Notes a spreadsheet would run as formulas are written as text, with a leading '.
    assert ",'=1+1," in text and ",'@home," in text and ",''tis," in text
    assert not re.search(r"(^|,)[=+@-]", text, re.MULTILINE)

    bob = sign_in(client, "bob", settings={"timezone": "America/New_York"})
    bob_tz = sign_in(client, "carol")  # same time zone as alice: the file's bytes must match
    for token in (bob, bob_tz):
        r = client.post(f"{DATA}/csv", raw=exported.body, token=token, headers={"Content-Type": "text/csv"})
        assert r.status == 200, r.text
        assert r.json == {"created": 16, "updated": 0, "unchanged": 0}

    def comparable(token):
        return sorted((r["type"], str(r["value"]), r["unit"], r["recorded_at"], r["note"], r.get("client_id"))
                      for r in everything(client, token))

    assert comparable(bob) == comparable(alice) == comparable(bob_tz)
    assert client.get(f"{DATA}/csv", token=bob_tz).body == exported.body

    # Importing again adds nothing, duplicates included; a changed row with a client id updates.
    r = client.post(f"{DATA}/csv", raw=exported.body, token=bob)
    assert r.json == {"created": 0, "updated": 0, "unchanged": 16}
    changed = text.replace(",steps,3000,steps,,werun:", ",steps,3500,steps,,werun:")
    r = client.post(f"{DATA}/csv", raw=changed.encode(), token=bob)
    assert r.json == {"created": 0, "updated": 1, "unchanged": 15}


def test_csv_import_checks_every_row_first(client):
    token = sign_in(client)
    good = f"recorded_at,type,value\r\n{local(1)},weight,70\r\n"
    r = client.post(f"{DATA}/csv", raw=(good + f"{local(2)},weight,700\r\n").encode(), token=token)
    assert r.status == 400 and r.json["error"]["code"] == "out_of_range"
    assert r.json["error"]["message"].startswith("line 3: value: 700 kg is outside")
    r = client.post(f"{DATA}/csv", raw=b"recorded_at,type,value\r\n,weight,70\r\n", token=token)
    assert r.status == 400 and r.json["error"]["message"] == "line 2: recorded_at: required"
    r = client.post(f"{DATA}/csv", raw=b"when,what\r\n2026-01-01,x\r\n", token=token)
    assert r.status == 400 and "the header lacks recorded_at, type, value" in r.json["error"]["message"]
    r = client.post(f"{DATA}/csv", raw=(good + f"{local(2)},weight,70,kg,,,extra\r\n").encode(), token=token)
    assert r.status == 400 and r.json["error"]["message"] == "line 3: more values than columns"
    r = client.post(f"{DATA}/csv", raw="recorded_at,type,value\r\n2026-01-01T08:00:00+08:00,体重,70\r\n".encode("gbk"), token=token)
    assert r.status == 400 and "UTF-8" in r.json["error"]["message"]
    assert everything(client, token) == []
    # Without a BOM, with \n line ends, with units to convert: fine.
    r = client.post(f"{DATA}/csv", raw=f"type,value,unit,recorded_at\nweight,150,lb,{local(1)}\n".encode(), token=token)
    assert r.json == {"created": 1, "updated": 0, "unchanged": 0}
    assert everything(client, token)[0]["value"] == 68.04


# -- types from config and from plugins -------------------------------------------------------


def test_custom_types_from_config_and_plugins(make_wm, serve, tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "lipids.py").write_text(textwrap.dedent('''
        from wellmate import hookimpl

        @hookimpl
        def register_record_types(register):
            register("cholesterol", {"title": "总胆固醇", "unit": "mmol/L", "min": 1, "max": 20,
                                     "units": {"mg/dL": 1 / 38.67}})
    '''))
    client = serve(make_wm({"records": {"types": {
        "waist": {"title": "腰围", "unit": "cm", "min": 40, "max": 200, "units": {"in": 2.54}},
        "coffee": {"title": "咖啡", "unit": "cups", "min": 0, "max": 20, "decimals": 0, "daily": "sum"},
    }}})).client
    names = [t["name"] for t in client.get(f"{DATA}/types").json["items"]]
    assert names[0] == "weight" and names[10] == "cholesterol" and set(names[11:]) == {"waist", "coffee"}  # built-ins first
    token = sign_in(client)
    assert post(client, token, type="waist", value=32, unit="in", recorded_at=local(0))["value"] == 81.3
    assert post(client, token, type="cholesterol", value=200, unit="mg/dL", recorded_at=local(0))["value"] == 5.2
    for _ in range(3):
        post(client, token, type="coffee", value=1, recorded_at=local(0))
    r = client.post(DATA, {"type": "waist", "value": 20}, token=token)
    assert r.status == 400 and "plausible range for waist, 40–200 cm" in r.json["error"]["message"]  # its name
    r = client.post(DATA, {"type": "waist", "value": 20}, token=token, headers={"Accept-Language": "zh-CN"})
    assert r.status == 400 and "plausible range for 腰围, 40–200 cm" in r.json["error"]["message"]  # its title
    stats = client.get(f"{DATA}/stats?days=7", token=token).json["types"]
    assert stats["coffee"]["daily"][-1]["value"] == 3 and stats["waist"]["latest"]["value"] == 81.3


@pytest.mark.parametrize("types, expected", [
    ({"waist": {"unit": "cm", "min": 40}}, "records.types.waist.min/max: must be a plausible range [min, max]"),
    ({"waist": {"unit": "cm", "min": 40, "max": 200, "units": {"in": 0}}}, "records.types.waist.units.in: must be a factor"),
    ({"waist": {"unit": "cm", "min": 40, "max": 200, "daily": "max"}}, "records.types.waist.daily: must be one of mean"),
    ({"waist": {"unit": "cm", "min": 40, "max": 200, "unti": "x"}}, "records.types.waist.unti: unknown key; did you mean 'unit'?"),
    ({"waist": {"min": 40, "max": 200}}, "records.types.waist.unit: must be the unit records are kept in"),
    ({"Waist Size": {"unit": "cm", "min": 40, "max": 200}}, "records.types.Waist Size: a type name is 1-32 lower-case"),
    ({"weight": {"unit": "kg", "min": 1, "max": 5}}, "records.types.weight: 'weight' is already a record type"),
    ({"waist": "cm"}, "records.types.waist: must be a mapping"),
])
def test_bad_custom_types_are_config_errors_naming_the_key(tmp_path, types, expected):
    import yaml

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(merge(shipped_config(tmp_path), {"records": {"types": types}}), allow_unicode=True),
                    encoding="utf-8")
    with pytest.raises(wellmate.ConfigError) as e:
        wellmate.create_app(path)
    assert f"config.yaml: {expected}" in str(e.value)
