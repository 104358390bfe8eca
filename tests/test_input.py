"""Bad input a new user's audit found accepted or mishandled (session 15), over a real server: each is a
clear JSON 400 with its own code, storing nothing, or (a look-alike name) one account, not two."""

from urllib.parse import quote

import pytest

from conftest import assert_error

DATA = "/api/v1/health/data"


def token_of(client, name="alice"):
    return client.register(name)["access_token"]


def records(client, token):
    return client.get(DATA, token=token).json["items"]


@pytest.mark.parametrize("body, message", [
    # an empty id was stored as no id, so a retry of the request stored the record twice
    ({"type": "weight", "value": 70, "client_id": ""}, "client_id: must not be empty; leave it out"),
    ({"type": "weight", "value": 70, "client_id": " \u200b "}, "client_id: must not be empty"),
])
def test_an_empty_client_id_is_a_400(client, body, message):
    token = token_of(client)
    r = client.post(DATA, body, token=token)
    assert_error(r, 400, "invalid_field")
    assert message in r.json["error"]["message"]
    assert records(client, token) == []
    r = client.post(DATA + "/batch", {"items": [{"type": "steps", "value": 10, "client_id": "a"},
                                                {"type": "steps", "value": 20, "client_id": ""}]}, token=token)
    assert_error(r, 400, "invalid_field")
    assert r.json["error"]["message"].startswith("items[1]: client_id")
    assert records(client, token) == []
    # left out or null: a record without one, as before
    assert client.post(DATA, {"type": "weight", "value": 70, "client_id": None}, token=token).status == 201


def test_a_number_as_text_is_the_number_and_anything_else_is_a_400(client):
    """"value": "70" is taken, as documented (docs/api.md, records.md): a mini-program's <input> gives text.
    Text that is not just a number is a 400 naming the field, storing nothing."""
    token = token_of(client)
    assert client.post(DATA, {"type": "weight", "value": "70"}, token=token).json["value"] == 70.0
    assert client.post(DATA, {"type": "weight", "value": " 71.5 "}, token=token).json["value"] == 71.5
    assert client.post(DATA, {"type": "weight", "value": "７０.５"}, token=token).json["value"] == 70.5  # full-width
    for value in ["70kg", "", "\u200b", "7O", "seventy", "7_0", "NaN", "Infinity", "0x46", "70 71"]:
        r = client.post(DATA, {"type": "weight", "value": value}, token=token)
        assert_error(r, 400, "invalid_value")
        assert r.json["error"]["message"].startswith("value: must be a number"), r.text
    assert sorted(item["value"] for item in records(client, token)) == [70.0, 70.5, 71.5]


def test_a_long_bad_value_is_named_in_the_400_cut_to_its_start_and_length(client):
    """The 400 says what was sent, but not all of it: a 20,000-digit value came back as a 20 KB message (session 18's
    review); the start and the length say enough."""
    token = token_of(client)
    for body in [{"type": "weight", "value": "7" * 20000 + "kg"}, {"type": "weight", "value": 70, "unit": "k" * 20000}]:
        r = client.post(DATA, body, token=token)
        assert r.status == 400 and len(r.json["error"]["message"]) < 300, r.text[:400]
        assert "characters)" in r.json["error"]["message"], r.text[:400]
    r = client.post("/api/v1/reminders", {"title": "pills", "rule": {"kind": "daily", "times": ["8" * 20000]}}, token=token)
    assert r.status == 400 and len(r.json["error"]["message"]) < 300 and "is not a time of day" in r.text, r.text[:400]
    r = client.post("/api/v1/auth/register", {"username": "bob", "password": "a-long-password", "age": "9" * 20000 + "x"})
    assert r.status == 400 and len(r.json["error"]["message"]) < 300, r.text[:400]
    assert records(client, token) == []


def test_a_range_that_ends_before_it_starts_is_a_400_not_an_empty_list(client):
    token = token_of(client)
    client.post(DATA, {"type": "weight", "value": 70}, token=token)
    for query in ["from=2026-12-05&to=2026-12-01", "from=2026-12-05T10:00:00Z&to=2026-12-05T09:00:00Z",
                  "from=2026-12-05T10:00:00Z&to=2026-12-05T10:00:00Z"]:
        r = client.get(f"{DATA}?{query}", token=token)
        assert_error(r, 400, "invalid_range")
        assert "must be before to" in r.json["error"]["message"]
    # one day, from and to the same date: that day, the whole of it (docs/api.md: a date in `to` ends at the next
    # midnight of the user's zone; this user has none set, so UTC)
    for at, value in (("2026-12-04T23:59:59Z", 71), ("2026-12-05T00:00:00Z", 72), ("2026-12-05T23:59:59Z", 73),
                      ("2026-12-06T00:00:00Z", 74)):
        assert client.post(DATA, {"type": "weight", "value": value, "recorded_at": at}, token=token).status == 201
    r = client.get(f"{DATA}?from=2026-12-05&to=2026-12-05", token=token)
    assert r.status == 200 and [item["value"] for item in r.json["items"]] == [73, 72], r.text


def test_a_full_width_username_is_the_name_it_looks_like(client):
    """ｂｏｂ (typed with a keyboard left in full-width mode) was a second account beside bob that nobody
    could tell apart: it is the name bob, stored as bob, refused beside it and logging in to it."""
    client.register("bob")
    r = client.post("/api/v1/auth/register", {"username": "ｂｏｂ", "password": "correct horse"})
    assert_error(r, 409, "username_taken")
    assert "'bob'" in r.json["error"]["message"]
    r = client.post("/api/v1/auth/login", {"username": "ＢＯＢ", "password": "correct horse"})
    assert r.status == 200 and r.json["user"]["username"] == "bob", r.text
    made = client.register("ｃａｒｏｌ_１")
    assert made["user"]["username"] == "carol_1"
    assert client.post("/api/v1/auth/login", {"username": "carol_1", "password": "correct horse"}).status == 200


def test_blank_and_invisible_text_is_empty_where_text_is_required(client):
    token = token_of(client)
    for text in ["   ", "\u200b", "\u3000\u200d\u00ad", "\ufeff\n\t"]:
        r = client.post("/api/v1/health/mental/chat", {"text": text}, token=token)
        assert_error(r, 400, "invalid_field")
        assert r.json["error"]["message"] == "text: must not be empty"
    r = client.post("/api/v1/reminders", {"title": "\u200b ", "rule": {"kind": "daily", "times": ["08:00"]}}, token=token)
    assert_error(r, 400, "invalid_field")
    assert client.get("/api/v1/health/sessions", token=token).json["items"] == []
    assert client.get("/api/v1/reminders", token=token).json["items"] == []
    # an optional note of blanks is no note
    r = client.post(DATA, {"type": "weight", "value": 70, "note": "\u200b "}, token=token)
    assert r.status == 201 and r.json["note"] == ""


def test_an_empty_time_zone_is_a_400(client):
    token = token_of(client)
    rule = {"kind": "daily", "times": ["08:00"]}
    for zone in ["", "  "]:
        r = client.post("/api/v1/reminders", {"title": "Water", "rule": rule, "timezone": zone}, token=token)
        assert_error(r, 400, "invalid_timezone")
        r = client.put("/api/v1/users/settings", {"settings": {"timezone": zone}}, token=token)
        assert_error(r, 400, "invalid_field")
    assert client.get("/api/v1/reminders", token=token).json["items"] == []
    # left out: the user's own zone
    assert client.post("/api/v1/reminders", {"title": "Water", "rule": rule}, token=token).json["timezone"] == "UTC"


def test_a_name_kept_full_width_before_names_were_folded_still_logs_in_as_itself(make_wm, serve):
    # R15b: beside bob1, an account stored as ｂｏｂ１ before session 15 logged in as bob1 (the login folded the
    # name before looking it up)
    served = serve(make_wm())
    client, accounts = served.client, served.wm.service("accounts")
    bob = client.register("bob1", "bob's own password")["user"]["uuid"]
    legacy = client.register("carol", "carol's own password")["user"]["uuid"]
    # as a name stored before folding looks (the storage of that time kept what was typed)
    stored = accounts.find_by_username("carol")
    accounts.storage.update("users", stored["id"], lambda doc: {**doc, "username": "ｂｏｂ１", "username_key": "ｂｏｂ１"})
    r = client.post("/api/v1/auth/login", {"username": "ｂｏｂ１", "password": "carol's own password"})
    assert r.status == 200 and r.json["user"]["uuid"] == legacy, r.text
    r = client.post("/api/v1/auth/login", {"username": "bob1", "password": "bob's own password"})
    assert r.status == 200 and r.json["user"]["uuid"] == bob, r.text


# Real sequences whose invisible characters are part of the text (session 16): an emoji's joiners and its
# tag characters, the joiner of Indic conjuncts, the non-joiner of Persian, a soft hyphen, a direction mark.
WRITTEN = ["周末带👨\u200d👩\u200d👧\u200d👦去爬山", "my nurse 👩🏽\u200d⚕️ said rest", "❤️\u200d🩹 better now",
           "🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F fan", "क्\u200dया करूँ", "അവന്\u200d വന്നില്ല",
           "ශ්\u200dරී ලංකා", "می\u200cخواهم بخوابم", "Blut\u00addruck morgens", "כואב לי הגב\u200f!"]


def test_text_is_stored_as_written_less_only_what_harms(client):
    """Session 15 stored every text without its invisible characters, so Indic conjuncts, soft hyphens and
    direction marks were lost (docs/api.md, "Text"). A message, a session's and a reminder's title, a note and
    a full name keep them; what harms wherever the text is shown next goes: controls (ESC), bidi overrides
    and isolates, tag characters that are not a flag's (ASCII no one sees but a model reads)."""
    token = token_of(client)
    rule = {"kind": "daily", "times": ["08:00"]}
    for text in WRITTEN:
        r = client.post("/api/v1/health/physical/chat", {"text": text}, token=token)
        assert r.status == 200, r.text
        session = client.get(f"/api/v1/health/sessions/{r.json['session_id']}", token=token).json
        assert session["messages"]["items"][0]["content"] == text
        assert session["title"] == text
        r = client.post("/api/v1/reminders", {"title": text[:60], "note": text, "rule": rule}, token=token)
        assert r.status == 201 and (r.json["title"], r.json["note"]) == (text[:60], text), r.text
        r = client.post(DATA, {"type": "weight", "value": 70, "note": text}, token=token)
        assert r.status == 201 and r.json["note"] == text, r.text
        r = client.put("/api/v1/users/settings", {"full_name": text[:64]}, token=token)
        assert r.status == 200 and r.json["full_name"] == text[:64], r.text
    harmful = [("\u202etxt.sllip", "txt.sllip"), ("water\u2066 now\u2069", "water now"), ("pills\x1b[2J", "pills[2J"),
               ("headache\U000E0069\U000E0067\U000E006E\U000E006F\U000E0072\U000E0065 again", "headache again"),
               ("\u200b\ufeff walk \u00ad", "walk")]  # and at the ends, invisible characters go with the blanks
    for text, stored in harmful:
        r = client.post("/api/v1/health/physical/chat", {"text": text}, token=token)
        assert r.status == 200, r.text
        items = client.get(f"/api/v1/health/sessions/{r.json['session_id']}", token=token).json["messages"]["items"]
        assert items[0]["content"] == stored
        r = client.post("/api/v1/reminders", {"title": text, "rule": rule}, token=token)
        assert r.status == 201 and r.json["title"] == stored, r.text


def test_ids_and_names_are_read_in_their_checked_form(client):
    """What is looked up (a username, a client_id, a time zone) is read without invisible characters, as
    before: bob\u200b is bob, a client_id with a soft hyphen is the same id on a retry."""
    client.register("bob")
    r = client.post("/api/v1/auth/login", {"username": "bo\u200bb", "password": "correct horse"})
    assert r.status == 200 and r.json["user"]["username"] == "bob", r.text
    token = r.json["access_token"]
    first = client.post(DATA, {"type": "weight", "value": 70, "client_id": "scale:1"}, token=token)
    again = client.post(DATA, {"type": "weight", "value": 70, "client_id": "scale\u00ad:1"}, token=token)
    assert (first.status, again.status) == (201, 200) and again.json["id"] == first.json["id"]
    r = client.post("/api/v1/reminders", {"title": "Water", "rule": {"kind": "daily", "times": ["08:00"]},
                                          "timezone": "Asia/\u200bShanghai"}, token=token)
    assert r.status == 201 and r.json["timezone"] == "Asia/Shanghai", r.text


# -- session 18: numbers given as text, in any decimal digits ------------------------------------------------------
# A team decision: full-width digits from a Chinese IME (３５) work; Arabic-Indic and the other Unicode decimal digits
# are accepted too; one number is written in one script; anything else (numerals, look-alikes) is a 400 naming the field.
TAKEN = [("３５", 35), ("٣٥", 35), ("۳۵", 35), ("३५", 35), ("๓๕", 35), ("　３５　", 35), ("＋３５", 35), ("３5", 35)]
REFUSED = ["三十五", "3٥", "1৪", "³⁵", "③⑤", "Ⅻ", "3_5", "35岁", "3\u200b5", "3\u00a05", "−35", "35.0e", "٣٥٫٫"]


def test_numbers_in_any_decimal_digits(client):
    token = token_of(client)
    for sent, number in TAKEN:
        r = client.put("/api/v1/users/settings", {"age": sent}, token=token)
        assert r.status == 200 and r.json["age"] == number, (sent, r.text)
        r = client.post(DATA, {"type": "weight", "value": sent}, token=token)
        assert r.status == 201 and r.json["value"] == number, (sent, r.text)
        r = client.get(f"{DATA}/stats?days={quote(sent)}", token=token)
        assert r.status == 200 and r.json["days"] == number, (sent, r.text)
    # the point, sign and exponent a full-width IME types, and the Arabic decimal separator
    for sent, number in (("７０．５", 70.5), ("٧٠٫٥", 70.5), ("７ｅ１", 70.0), ("７０.５", 70.5)):
        r = client.post(DATA, {"type": "weight", "value": sent}, token=token)
        assert r.status == 201 and r.json["value"] == number, (sent, r.text)
    r = client.post(DATA, {"type": "blood_pressure", "value": "١٢٠/٨٠"}, token=token)
    assert r.status == 201 and r.json["value"] == {"systolic": 120, "diastolic": 80}, r.text
    assert client.put("/api/v1/users/settings", {"age": "－５"}, token=token).json["error"]["message"].startswith(
        "age: must be between 0 and 150")
    kept = len(records(client, token))
    for sent in REFUSED:
        r = client.put("/api/v1/users/settings", {"age": sent}, token=token)
        assert_error(r, 400, "invalid_field")
        assert r.json["error"]["message"].startswith("age: must be an integer"), (sent, r.text)
        r = client.post(DATA, {"type": "weight", "value": sent}, token=token)
        assert_error(r, 400, "invalid_value")
        assert r.json["error"]["message"].startswith("value: must be a number"), (sent, r.text)
        r = client.get(f"{DATA}/stats?days={quote(sent)}", token=token)
        assert_error(r, 400, "invalid_field")
        assert r.json["error"]["message"].startswith("days: must be an integer 1-366"), (sent, r.text)
    assert client.get(f"{DATA}?limit=%FF", token=token).json["error"]["message"].startswith("limit: ")  # no UTF-8
    assert len(records(client, token)) == kept


def test_a_number_of_any_length_is_read_in_linear_time():
    from conftest import assert_linear
    from wellmate import number_in_text

    assert_linear(number_in_text, lambda n: "３" * n + "x")
    assert_linear(number_in_text, lambda n: "٣" * (n // 2) + "." + "3" * (n // 2))
