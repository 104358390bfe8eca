"""The medical assistant's dialect (plugins/compat_medical.py, docs/compat.md): a client speaking
its wire format exactly, `{code, message, data}` envelopes and bearer tokens, against a served
Wellmate with the dialect on, a fake vision model (OpenAI wire format, `vision: true`) and a
fake WeChat server. One served app for the module."""

import urllib.parse

import pytest
import yaml
from conftest import Served, merge, shipped_config
from fakes.openai_server import FakeOpenAI
from fakes.wechat_server import FakeWeChat
from test_hooks import challenge
from test_uploads import BOUNDARY, REFERER, wx_upload_body
from test_vision import photo

import wellmate

SEEN = "化验单上的白细胞偏高，建议复查。"
PDF = b"%PDF-1.4\n% the handbook's attachment\n"
HANDBOOK = """---
title: 术后饮食
summary: 胰腺术后怎么吃
tags: [handbook, diet]
order: 1
attachment: diet.pdf
---

少量多餐，低脂饮食。
"""
NOT_HANDBOOK = """---
title: 别的文章
summary: 不在宝典里
tags: [other]
order: 2
---

正文。
"""


@pytest.fixture(scope="module")
def fakes():
    with FakeOpenAI(reply=SEEN) as eye, FakeWeChat(appid="wx-test-appid", secret="test-app-secret-123") as wechat:
        yield eye, wechat


def build(tmp, overrides):
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(merge(shipped_config(tmp), overrides), allow_unicode=True), encoding="utf-8")
    return wellmate.create_app(path)


@pytest.fixture(scope="module")
def site(tmp_path_factory, fakes):
    eye, wechat = fakes
    tmp = tmp_path_factory.mktemp("medical")
    (tmp / "library" / "files").mkdir(parents=True)
    (tmp / "library" / "post-op-diet.md").write_text(HANDBOOK, encoding="utf-8")
    (tmp / "library" / "other.md").write_text(NOT_HANDBOOK, encoding="utf-8")
    (tmp / "library" / "files" / "diet.pdf").write_bytes(PDF)
    wm = build(tmp, {
        "providers": {"eye": {"plugin": "openai", "base_url": eye.url, "model": "qwen2.5vl:3b", "vision": True,
                              "timeout": 5}},
        "agents": {"physical": {"vision_providers": ["eye"]}},
        "auth": {"wechat": {"appid": wechat.appid, "secret": wechat.secret, "api_base": wechat.url, "timeout": 5}},
        "library": {"path": "library"},
        "request_log": {"flush_seconds": 0.01},
        "compat": {"medical": {"enabled": True, "agent": "physical", "treasure_tag": "handbook"}},
    })
    served = Served(wm)
    yield served
    served.stop()
    wm.close()


def call(site, method, path, body=None, token=None, **kw):
    """A request as the mini-program sends it; the envelope checked on every answer."""
    r = site.client.request(method, path, body=body, token=token, **kw)
    assert r.headers["Content-Type"].startswith("application/json"), r.text
    assert set(r.json) >= {"code", "message", "data"} and r.json["code"] == r.status, r.text
    if r.status >= 400:
        assert r.json["data"] is None and r.json["message"] and r.json["error"], r.text
    return r


def register(site, username):
    r = call(site, "POST", "/api/user/register", {"username": username, "password": "a long password"})
    assert r.status == 200, r.text
    return r.json["data"]


def upload(site, token, path="/api/chat/upload"):
    r = call(site, "POST", path, raw=wx_upload_body(photo()), token=token,
             headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Referer": REFERER})
    assert r.status == 200, r.text
    return r.json["data"]


def fetch(site, url):
    """GET a file link as <image src> does: no header, the URL as given."""
    parts = urllib.parse.urlsplit(url)
    assert parts.scheme == "http" and parts.netloc == f"127.0.0.1:{site.port}", url
    return site.client.get(parts.path + "?" + parts.query)


def test_a_medical_client_from_register_to_logout(site, fakes):
    eye, _ = fakes
    signed = register(site, "patient1")
    assert signed["user"]["username"] == "patient1" and signed["token"] == signed["access_token"]
    r = call(site, "POST", "/api/user/login", {"username": "patient1", "password": "a long password"})
    assert r.status == 200 and r.json["data"]["user"]["id"] == signed["user"]["id"]
    token = r.json["data"]["token"]
    info = call(site, "GET", "/api/user/info", token=token)
    assert info.status == 200 and info.json["data"]["username"] == "patient1" and info.json["data"]["role"] == "user"

    # Text chat: a real turn, with the mascot's emotion.
    r = call(site, "POST", "/api/chat/text", {"content": "最近睡不好，总是醒", "session_id": "s1"}, token=token)
    assert r.status == 200, r.text
    first = r.json["data"]
    assert first["sender"] == "ai" and first["type"] == "text" and first["session_id"] == "s1" and first["content"]
    assert first["emotion"] in site.wm.config["emotion"]["reply_labels"]

    # Image chat: upload, then ask about it; the vision model gets the stored photo.
    uploaded = upload(site, token)
    assert fetch(site, uploaded["file_url"]).body == site.wm.service("uploads").read(signed["user"]["id"], uploaded["file_id"])
    again = call(site, "GET", f"/api/chat/upload/{uploaded['file_id']}", token=token)
    assert again.status == 200 and fetch(site, again.json["data"]["file_url"]).status == 200
    r = call(site, "POST", "/api/chat/image", {"file_id": uploaded["file_id"], "content": "这张化验单怎么看",
                                               "session_id": "s1"}, token=token)
    assert r.status == 200, r.text
    assert r.json["data"]["content"].startswith(SEEN) and eye.last.images
    other = upload(site, token, "/api/upload/image")
    assert other["file_id"] != uploaded["file_id"]

    # History: page 1 is the newest, oldest first within it; rows as the chat_logs table had them.
    r = call(site, "GET", "/api/chat/history?session_id=s1&page=1&page_size=2", token=token)
    assert r.status == 200, r.text
    page = r.json["data"]
    assert page["total"] == 4 and page["has_more"] is True
    assert [(m["sender"], m["type"]) for m in page["messages"]] == [("user", "image"), ("ai", "text")]
    assert page["messages"][0]["content"] == "这张化验单怎么看" and fetch(site, page["messages"][0]["file_url"]).status == 200
    older = call(site, "GET", "/api/chat/history?session_id=s1&page=2&page_size=2", token=token).json["data"]
    assert [m["content"] for m in older["messages"]] == ["最近睡不好，总是醒", first["content"]]
    assert older["has_more"] is False
    assert call(site, "GET", "/api/chat/history?session_id=s1&page=3&page_size=2", token=token).json["data"]["messages"] == []
    # The same conversation through the normal API.
    sessions = site.client.get("/api/v1/health/sessions", token=token).json["items"]
    assert len(sessions) == 1 and sessions[0]["message_count"] == 4 and sessions[0]["agent"] == "physical"

    config = call(site, "GET", "/api/chat/config", token=token).json["data"]
    assert config["agent"] == "physical" and config["vision"] is True and config["role_name"]
    assert "http" not in str(config) and "key" not in str(config).lower()

    # The handbook: the library's articles tagged handbook, with a signed link to the attachment.
    listed = call(site, "GET", "/api/treasure/list", token=token).json["data"]
    assert [t["id"] for t in listed["items"]] == ["post-op-diet"] and listed["has_more"] is False
    entry = call(site, "GET", "/api/treasure/post-op-diet", token=token).json["data"]
    assert entry["title"] == "术后饮食" and "低脂" in entry["content"] and entry["updated_at"]
    assert fetch(site, entry["file_url"]).body == PDF
    assert call(site, "GET", "/api/treasure/other", token=token).status == 404  # not in the handbook

    health = call(site, "GET", "/api/system/health")
    assert health.status == 200 and health.json["data"]["status"] == "ok" and health.json["data"]["time"]

    # Logs: admins only.
    assert call(site, "GET", "/api/logs", token=token).status == 403
    admin = register(site, "doctor1")
    site.wm.service("accounts").update(admin["user"]["id"], {"role": "admin"})
    logs = call(site, "GET", "/api/logs?path=/api/chat/text", token=admin["token"])
    assert logs.status == 200, logs.text
    assert logs.json["data"]["items"] and logs.json["data"]["items"][0]["route"] == "/api/chat/text"
    assert logs.json["data"]["items"][0]["user"] == signed["user"]["id"]

    # Logout: the token is refused afterwards.
    assert call(site, "POST", "/api/user/logout", token=token).status == 200
    r = call(site, "GET", "/api/user/info", token=token)
    assert r.status == 401 and r.json["error"] == "invalid_token"


def test_a_crisis_message_gets_the_hotline(site):
    token = register(site, "patient-crisis")["token"]
    r = call(site, "POST", "/api/chat/text", {"content": "我不想活了，今晚就结束一切"}, token=token)
    assert r.status == 200, r.text
    assert "12356" in r.json["data"]["content"] and r.json["data"]["session_id"]


def test_a_crisis_in_a_message_too_long_to_take_gets_the_hotline(site):
    # the session-15 review: this dialect's own length check read no crisis; it shares Chat.refuse_too_long now
    token = register(site, "patient-long")["token"]
    letter = "今天又是很长的一天，我写了很多话。" * 900
    for text, crisis in ((letter + "我想自杀", True), ("I want to kill myself. " + "and then I walked home. " * 700, True),
                         (letter, False)):
        r = call(site, "POST", "/api/chat/text", {"content": text}, token=token)
        assert r.status == 400 and "content: at most 4000 characters" in r.json["message"], r.text
        assert ("12356" in r.json["message"]) is crisis, r.text


def test_another_users_history_upload_and_file_are_not_found(site):
    alice, mallory = register(site, "alice-md")["token"], register(site, "mallory-md")
    assert call(site, "POST", "/api/chat/text", {"content": "我的隐私", "session_id": "mine"}, token=alice).status == 200
    photo_of_alice = upload(site, alice)
    token = mallory["token"]
    r = call(site, "GET", "/api/chat/history?session_id=mine", token=token)
    assert r.status == 200 and r.json["data"]["messages"] == [] and r.json["data"]["total"] == 0
    assert call(site, "GET", f"/api/chat/upload/{photo_of_alice['file_id']}", token=token).status == 404
    r = call(site, "POST", "/api/chat/image", {"file_id": photo_of_alice["file_id"]}, token=token)
    assert r.status == 404 and r.json["error"] == "upload_not_found"
    # Alice's link with Mallory's id, or another file's id, is no link.
    url = urllib.parse.urlsplit(photo_of_alice["file_url"])
    query = dict(urllib.parse.parse_qsl(url.query))
    forged = {**query, "user": mallory["user"]["id"]}
    assert call(site, "GET", f"{url.path}?{urllib.parse.urlencode(forged)}").status == 403
    mallorys = upload(site, token)
    assert call(site, "GET", f"/api/chat/file/{mallorys['file_id']}?{url.query}").status == 403
    assert call(site, "GET", f"{url.path}?{urllib.parse.urlencode({**query, 'expires': '1'})}").status == 403
    assert call(site, "GET", url.path).status == 403  # no signature at all


def test_bad_requests_are_400s_in_the_envelope_never_500s(site):
    token = register(site, "patient-bad")["token"]
    for body, says in (({}, "content"), ({"content": ""}, "content"), ({"content": 5}, "content"),
                       ({"content": "hi", "session_id": "a/b"}, "session_id"), ({"content": "x" * 100_000}, "")):
        r = call(site, "POST", "/api/chat/text", body, token=token)
        assert r.status in (400, 413) and says in r.json["message"], (body, r.text)
    r = call(site, "POST", "/api/chat/text", raw=b"{not json", token=token, headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.json["error"] == "invalid_json"
    assert call(site, "POST", "/api/chat/image", {"content": "?"}, token=token).status == 400
    assert call(site, "GET", "/api/chat/history", token=token).status == 400
    assert call(site, "GET", "/api/chat/history?session_id=s&page=0", token=token).status == 400
    assert call(site, "GET", "/api/chat/history?session_id=s&page_size=x", token=token).status == 400
    assert call(site, "GET", "/api/treasure/list?page=-1", token=token).status == 400
    assert call(site, "GET", "/api/treasure/list?page=%B2", token=token).status == 400  # "²": isdigit() but no int()
    assert call(site, "GET", "/api/treasure/post-op-diet/file?expires=%B2&sig=x").status == 403
    assert call(site, "POST", "/api/user/register", {"username": "x", "password": "short"}).status == 400
    assert call(site, "POST", "/api/user/register", {"username": "patient-bad", "password": "a long password"}).status == 409
    assert call(site, "POST", "/api/user/login", {"username": "patient-bad", "password": "wrong password"}).status == 401
    r = call(site, "POST", "/api/chat/upload", raw=b"not a form", token=token, headers={"Content-Type": "text/plain"})
    assert r.status == 400
    r = call(site, "POST", "/api/chat/upload", raw=wx_upload_body(b"not an image"), token=token,
             headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert r.status == 415
    r = call(site, "GET", "/api/user/info")
    assert r.status == 401 and challenge(r) == "Bearer"
    assert call(site, "GET", "/api/user/info", token="not-a-token").status == 401
    assert call(site, "GET", "/api/treasure/NO_SUCH", token=token).status == 404
    # Paths of the dialect no route takes: the envelope too (an id that is not UTF-8 had Wellmate's shape).
    for path in ("/api/chat/upload/%ff", "/api/chat/upload/", "/api/treasure/x/y/z", "/api/logs/x"):
        r = call(site, "GET", path, token=token)
        assert r.status == 404 and r.json["error"] == "not_found", path
    other = site.client.get("/api/v1/no-such-thing", token=token)  # Wellmate's own paths keep its shape
    assert other.status == 404 and other.json["error"]["code"] == "not_found"


def test_handbook_files_are_downloads_never_pages_on_our_origin(site):
    # An .html (or .svg) attachment was served inline on the API's origin, /docs's: its script ran there.
    token = register(site, "patient-guide")["token"]
    library = site.wm.service("library").folder
    files = {library / "guide.md": "---\ntitle: Guide\ntags: [handbook]\norder: 3\nattachment: guide.html\n"
                                   "cover: guide.svg\n---\n\nRead the page.\n",
             library / "files" / "guide.html": "<html><body><script>document.write(location.origin)</script>",
             library / "files" / "guide.svg": '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'}
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    try:
        entry = call(site, "GET", "/api/treasure/guide", token=token).json["data"]
        page = fetch(site, entry["file_url"])
        assert page.status == 200 and page.headers["Content-Disposition"] == 'attachment; filename="guide.html"'
        assert page.headers["X-Content-Type-Options"] == "nosniff" and page.headers["Content-Security-Policy"] == "sandbox"
        cover = fetch(site, entry["cover_url"])  # shown, as v1 shows a cover, but sandboxed: an SVG runs script
        assert cover.status == 200 and "Content-Disposition" not in cover.headers
        assert cover.headers["X-Content-Type-Options"] == "nosniff" and cover.headers["Content-Security-Policy"] == "sandbox"
        pdf = fetch(site, call(site, "GET", "/api/treasure/post-op-diet", token=token).json["data"]["file_url"])
        assert pdf.body == PDF and pdf.headers["Content-Disposition"] == 'attachment; filename="diet.pdf"'
        assert pdf.headers["X-Content-Type-Options"] == "nosniff" and "Content-Security-Policy" not in pdf.headers
    finally:
        for path in files:
            path.unlink()


def test_pages_by_number_reach_back_so_far_then_a_400(site, monkeypatch):
    # Each page before the one asked for was read: page=10000&page_size=1 cost 0.2 s of CPU.
    medical_module = __import__("wellmate_plugins.compat_medical", fromlist=["PAGED_BACK"])
    monkeypatch.setattr(medical_module, "PAGED_BACK", 4, raising=False)  # raising=False: main has no cap
    token = register(site, "patient-pages")["token"]
    for n in range(3):
        assert call(site, "POST", "/api/chat/text", {"content": f"第{n}次", "session_id": "long"}, token=token).status == 200
    history = "/api/chat/history?session_id=long&page_size=1&page="
    r = call(site, "GET", history + "4", token=token)
    assert r.status == 200 and len(r.json["data"]["messages"]) == 1 and r.json["data"]["total"] == 6
    for page in (5, 6):  # 4 and 5 messages back: past the reach
        r = call(site, "GET", history + str(page), token=token)
        assert r.status == 400 and r.json["error"] == "invalid_field" and "page" in r.json["message"], r.text
    r = call(site, "GET", history + "7", token=token)  # past the end: nothing to walk
    assert r.status == 200 and r.json["data"]["messages"] == [] and r.json["data"]["has_more"] is False
    assert call(site, "GET", "/api/treasure/list?page_size=1&page=4", token=token).status == 200
    assert call(site, "GET", "/api/treasure/list?page_size=1&page=5", token=token).status == 400


def test_wx_login_against_the_fake_wechat_server(site, fakes):
    _, wechat = fakes
    r = call(site, "POST", "/api/user/wx-login", {"code": wechat.login("o-patient")})
    assert r.status == 200, r.text
    first = r.json["data"]
    assert first["created"] is True and first["user"]["wechat"] is True and "session_key" not in r.text
    again = call(site, "POST", "/api/user/wx-login", {"code": wechat.login("o-patient")}).json["data"]
    assert again["created"] is False and again["user"]["id"] == first["user"]["id"]
    assert call(site, "GET", "/api/user/info", token=again["token"]).json["data"]["id"] == first["user"]["id"]
    r = call(site, "POST", "/api/user/wx-login", {"code": "a-code-wechat-never-gave"})
    assert r.status == 401 and r.json["error"] == "invalid_wx_code"


def test_every_route_is_in_the_openapi_document(site):
    doc = site.client.get("/api/v1/openapi.json").json
    medical = {(method.upper(), path) for path, ops in doc["paths"].items() for method, op in ops.items()
               if op["tags"] == ["compat_medical"]}
    assert medical == {
        ("POST", "/api/user/register"), ("POST", "/api/user/login"), ("POST", "/api/user/wx-login"),
        ("GET", "/api/user/info"), ("POST", "/api/user/logout"), ("POST", "/api/chat/text"),
        ("POST", "/api/chat/image"), ("GET", "/api/chat/history"), ("GET", "/api/chat/config"),
        ("POST", "/api/chat/upload"), ("GET", "/api/chat/upload/{file_id}"), ("GET", "/api/chat/file/{file_id}"),
        ("GET", "/api/treasure/list"), ("GET", "/api/treasure/{article_id}"),
        ("GET", "/api/treasure/{article_id}/file"), ("POST", "/api/upload/image"), ("GET", "/api/system/health"),
        ("GET", "/api/logs")}
    text = doc["paths"]["/api/chat/text"]["post"]["responses"]
    assert text["400"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/MedicalError"}


def test_the_dialect_is_off_unless_config_turns_it_on(tmp_path):
    wm = build(tmp_path, {})
    served = Served(wm)
    try:
        for method, path in (("POST", "/api/user/register"), ("POST", "/api/chat/text"), ("GET", "/api/treasure/list"),
                             ("GET", "/api/system/health"), ("GET", "/api/logs")):
            assert served.client.request(method, path).status == 404, path
    finally:
        served.stop()
        wm.close()


def test_config_check_refuses_an_unknown_agent(tmp_path):
    with pytest.raises(wellmate.ConfigError, match="compat.medical.agent"):
        build(tmp_path, {"compat": {"medical": {"enabled": True, "agent": "nobody"}}}).close()


def test_the_fuzzer_finds_no_5xx_and_every_answer_documented(site, tmp_path):
    """schemathesis on the dialect's operations (tests/test_openapi_fuzz.py, which runs the shipped
    config, where the dialect is off), signed in as an admin with a photo; logout runs last."""
    import hypothesis.configuration
    import schemathesis
    from test_openapi_fuzz import fuzz

    hypothesis.configuration.set_hypothesis_home_dir(tmp_path / ".hypothesis")
    admin = register(site, "fuzz-doctor")
    site.wm.service("accounts").update(admin["user"]["id"], {"role": "admin"})
    ids = {"file_id": upload(site, admin["token"])["file_id"], "article_id": "post-op-diet"}
    doc = site.client.get("/api/v1/openapi.json").json
    doc["paths"] = {path: ops for path, ops in doc["paths"].items()
                    if any(op["tags"] == ["compat_medical"] for op in ops.values())}
    operations = sorted((result.ok() for result in schemathesis.openapi.from_dict(doc).get_all_operations()),
                        key=lambda op: op.path == "/api/user/logout")
    headers, failures = {"Authorization": f"Bearer {admin['token']}"}, []
    for operation in operations:
        failures += fuzz(operation, operation.as_strategy(), site.url, headers)
        if "{" in operation.path:
            params = {name: ids[name] for name in ("file_id", "article_id") if "{" + name + "}" in operation.path}
            failures += fuzz(operation, operation.as_strategy(path_parameters=params), site.url, headers)
    assert not failures, f"{len(failures)} failures:\n\n" + "\n\n".join(failures)
