"""Accounts over HTTP: register, login, profile, refresh rotation and reuse, logout, settings."""

import time

import jwt

from conftest import assert_error


def test_register_login_profile_refresh_flow(client):
    r = client.post("/api/v1/auth/register", {"username": "Alice", "password": "correct horse",
                                              "full_name": "爱丽丝", "gender": "female", "age": 31})
    assert r.status == 201, r.text
    pair = r.json
    assert pair["token_type"] == "Bearer" and pair["expires_in"] == 30 * 60
    assert pair["user"]["username"] == "Alice" and pair["user"]["full_name"] == "爱丽丝"
    assert "password_hash" not in r.text
    assert "爱丽丝" in r.text  # UTF-8, not \\u escapes

    r = client.post("/api/v1/auth/login", {"username": "alice", "password": "correct horse"})
    assert r.status == 200
    login = r.json
    r = client.get("/api/v1/users/profile", token=login["access_token"])
    assert r.status == 200
    profile = r.json
    assert set(profile) == {"uuid", "username", "full_name", "gender", "age", "birth_date", "role",
                            "settings", "created_at"}
    assert profile["age"] == 31 and profile["role"] == "user"

    r = client.post("/api/v1/auth/refresh", {"refresh_token": login["refresh_token"]})
    assert r.status == 200
    new = r.json
    assert new["refresh_token"] != login["refresh_token"]
    assert client.get("/api/v1/users/profile", token=new["access_token"]).status == 200

    # The old refresh token is refused, and reusing it revokes the whole family,
    # including the token that replaced it.
    r = client.post("/api/v1/auth/refresh", {"refresh_token": login["refresh_token"]})
    assert r.status == 401 and r.json["error"]["code"] == "invalid_refresh_token"
    r = client.post("/api/v1/auth/refresh", {"refresh_token": new["refresh_token"]})
    assert r.status == 401
    # Another login's family is untouched.
    r = client.post("/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert r.status == 200


def test_wrong_password_and_unknown_user_answer_alike(client):
    client.register("bob")
    wrong = client.post("/api/v1/auth/login", {"username": "bob", "password": "wrong password"})
    unknown = client.post("/api/v1/auth/login", {"username": "nobody", "password": "wrong password"})
    assert wrong.status == unknown.status == 401
    assert wrong.json == unknown.json


def test_duplicate_username_is_409(client):
    client.register("carol")
    r = client.post("/api/v1/auth/register", {"username": "CAROL", "password": "another one"})
    assert r.status == 409 and r.json["error"]["code"] == "username_taken"


def test_register_validation(client):
    for body, text in [
        ({"username": "ab", "password": "long enough"}, "username"),
        ({"username": "dave", "password": "short"}, "password: at least 8"),
        ({"username": "dave", "password": "long enough", "gender": "x"}, "gender: must be one of male, female, other"),
        ({"username": "dave", "password": "long enough", "age": "30"}, "age: must be an integer"),
        ({"username": "dave", "password": "long enough", "age": 300}, "age: must be between 0 and 150"),
    ]:
        r = client.post("/api/v1/auth/register", body)
        assert r.status == 400 and text in r.json["error"]["message"], (body, r.text)


def test_birth_dates_that_cannot_be_are_refused(client):
    from datetime import date, datetime, timedelta, timezone

    tomorrow = (date.today() + timedelta(days=2)).isoformat()  # after today in every time zone
    for fields, text in [
        ({"birth_date": tomorrow}, f"birth_date: {tomorrow} is after today"),
        ({"birth_date": "1800-05-17"}, "birth_date: 1800-05-17 is before 1900"),
        ({"birth_date": "2012-02-30"}, "birth_date: '2012-02-30' is not a date"),
        ({"birth_date": "2012-01-01", "age": 40}, "age, birth_date: age 40 contradicts birth_date 2012-01-01"),
    ]:
        r = client.post("/api/v1/auth/register", {"username": "dave", "password": "long enough", **fields})
        assert r.status == 400 and r.json["error"]["code"] == "invalid_field", (fields, r.text)
        assert r.json["error"]["message"].startswith(text), (fields, r.text)

    born = date(date.today().year - 30, 1, 1).isoformat()
    token = client.register("dave", birth_date=born, age=30)["access_token"]
    # A change is checked against what is stored: an age alone that does not fit is refused.
    r = client.put("/api/v1/users/settings", {"age": 31}, token=token)
    assert r.status == 400 and "age 31 contradicts birth_date" in r.json["error"]["message"]
    r = client.put("/api/v1/users/settings", {"birth_date": "1990-01-01", "age": None}, token=token)
    assert r.status == 200 and r.json["birth_date"] == "1990-01-01", r.text
    assert r.json["age"] == datetime.now(timezone.utc).year - 1990  # the birth date's, in the served zone (UTC)


def test_a_birth_date_alone_replaces_a_stale_age(make_wm, serve):
    from datetime import date, datetime, timezone

    served = serve(make_wm())
    client, accounts = served.client, served.wm.service("accounts")
    this_year = datetime.now(timezone.utc).date().year  # the served config's time zone
    pair = client.register("gail", age=30)
    token = pair["access_token"]
    # A year on, she sends only her birth date (31 today): the age stored a year ago is dropped.
    r = client.put("/api/v1/users/settings", {"birth_date": date(this_year - 31, 1, 1).isoformat()}, token=token)
    assert r.status == 200, r.text
    assert r.json["age"] == 31 and accounts.get(pair["user"]["uuid"])["age"] is None
    # An age stored beside a birth date goes stale too: the profile shows the birth date's, as stats use.
    accounts.update(pair["user"]["uuid"], {"birth_date": date(this_year - 32, 1, 1).isoformat(), "age": 31})
    assert client.get("/api/v1/users/profile", token=token).json["age"] == 32
    r = client.put("/api/v1/users/settings", {"birth_date": date(this_year - 40, 1, 1).isoformat()}, token=token)
    assert r.status == 200 and r.json["age"] == 40, r.text
    # Both in one request must agree.
    r = client.put("/api/v1/users/settings", {"birth_date": date(this_year - 20, 1, 1).isoformat(), "age": 25}, token=token)
    assert_error(r, 400, "invalid_field")
    r = client.put("/api/v1/users/settings", {"birth_date": date(this_year - 20, 1, 1).isoformat(), "age": 20}, token=token)
    assert r.status == 200 and r.json["age"] == 20, r.text


def test_logout_ends_the_refresh_family(client):
    pair = client.register("erin")
    r = client.post("/api/v1/auth/logout", {"refresh_token": pair["refresh_token"]})
    assert r.status == 204 and r.body == b""
    assert client.post("/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]}).status == 401
    assert client.post("/api/v1/auth/logout", {"refresh_token": pair["refresh_token"]}).status == 204


def test_settings_partial_update(client):
    token = client.register("frank")["access_token"]
    r = client.put("/api/v1/users/settings", {"full_name": "Frank", "settings": {"timezone": "Asia/Shanghai"}}, token=token)
    assert r.status == 200 and r.json["full_name"] == "Frank"
    r = client.put("/api/v1/users/settings", {"settings": {"default_agent": "mental"}}, token=token)
    assert r.json["settings"] == {"timezone": "Asia/Shanghai", "default_agent": "mental"}
    assert client.get("/api/v1/users/profile", token=token).json["full_name"] == "Frank"
    for body, text in [({"settings": {"timezone": "Mars/Base"}}, "unknown time zone"),
                       ({"settings": {"default_agent": "chef"}}, "no agent"),
                       ({"role": "admin"}, "role: cannot be changed"),
                       ({"settings": "dark"}, "settings: must be an object")]:
        r = client.put("/api/v1/users/settings", body, token=token)
        assert r.status == 400 and text in r.json["error"]["message"], r.text
    assert client.get("/api/v1/users/profile", token=token).json["role"] == "user"


def test_bad_tokens_are_refused(make_wm, serve):
    served = serve(make_wm())
    client = served.client
    pair = client.register("gina")
    user_id = pair["user"]["uuid"]
    secret = served.wm.service("auth").tokens.secret
    now = int(time.time())
    claims = {"sub": user_id, "typ": "access", "iat": now, "exp": now + 600}
    forged = jwt.encode(claims, "not-the-secret-" + "y" * 32, algorithm="HS256")
    expired = jwt.encode({**claims, "iat": now - 1200, "exp": now - 600}, secret, algorithm="HS256")
    wrong_type = jwt.encode({**claims, "typ": "refresh"}, secret, algorithm="HS256")
    header = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    payload = jwt.utils.base64url_encode(('{"sub":"%s","typ":"access","iat":%d,"exp":%d}' % (user_id, now, now + 600)).encode()).decode()
    alg_none = f"{header}.{payload}."
    for token, code in [(forged, "invalid_token"), (expired, "token_expired"), (wrong_type, "invalid_token"),
                        (alg_none, "invalid_token"), ("garbage", "invalid_token")]:
        r = client.get("/api/v1/users/profile", token=token)
        assert r.status == 401 and r.json["error"]["code"] == code, (token, r.text)
    assert client.get("/api/v1/users/profile", headers={"Authorization": "Basic abc"}).status == 401
    assert client.get("/api/v1/users/profile", token=pair["access_token"]).status == 200


def test_registration_can_be_closed(make_wm, serve):
    client = serve(make_wm({"auth": {"allow_registration": False}})).client
    r = client.post("/api/v1/auth/register", {"username": "henry", "password": "long enough"})
    assert r.status == 403 and r.json["error"]["code"] == "registration_closed"
