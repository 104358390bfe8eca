"""The health library (issue 16): articles as files in library/, found by Chinese and English
words, read over the API, written by admins over it, and read by the agents: the passage in a
model's system prompt, quoted by the offline companion, listed in the reply's ``sources``. Served
app, real files, no restart."""

import json
import os
import shutil
import sqlite3
import urllib.parse

import pytest
import yaml

from conftest import ROOT, assert_error
from fakes.openai_server import FakeOpenAI
from test_chat import stream

KIDNEY = """---
title: 肾结石的预防
summary: 多喝水、少盐，预防结石复发。
tags: [kidney, physical]
---

## 多喝水

得过肾结石的人，每天喝水要让尿量达到两升半以上，尿色保持清淡。柠檬水也有帮助。

## 少吃盐

每天盐不超过五克，少吃腌制食品。
"""


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # as an editor or `cp` over it would: a new file in the folder


@pytest.fixture
def library(tmp_path):
    """The shipped starter articles, copied next to the config the test's Wellmate reads."""
    shutil.copytree(ROOT / "library", tmp_path / "library")
    return tmp_path / "library"


@pytest.fixture
def site(make_wm, serve, library):
    """(served app, user token, admin token) on the shipped config with the starter library."""
    def make(overrides=None):
        served = serve(make_wm({"safety": {"disclaimer": "never"}, **(overrides or {})}))
        client = served.client
        user = client.register("alice")["access_token"]
        admin = client.register("boss")
        served.wm.service("accounts").update(admin["user"]["uuid"], {"role": "admin"})
        return served, user, client.post("/api/v1/auth/login", {"username": "boss", "password": "correct horse"}).json["access_token"]
    return make


def ask(client, token, text, agent="physical", session_id=None):
    r = client.post(f"/api/v1/health/{agent}/chat", {"text": text, **({"session_id": session_id} if session_id else {})},
                    token=token)
    assert r.status == 200, r.text
    return r.json


def search(client, token, **query):
    r = client.get("/api/v1/library?" + urllib.parse.urlencode(query), token=token)
    assert r.status == 200, r.text
    return r.json


# -- the "Done when" ---------------------------------------------------------------------


def test_a_dropped_article_is_found_read_quoted_given_to_a_model_and_edited_without_a_restart(make_wm, serve, library):
    with FakeOpenAI(reply="好的。") as model:
        wm = make_wm({"providers": {"fake": {"plugin": "openai", "base_url": model.url, "model": "m", "timeout": 5,
                                             "max_retries": 0}},
                      "agents": {"mental": {"providers": ["fake", "offline"]}}, "safety": {"disclaimer": "never"}})
        client = serve(wm).client
        user = client.register("alice")["access_token"]
        boss = client.register("boss")
        wm.service("accounts").update(boss["user"]["uuid"], {"role": "admin"})
        admin = client.post("/api/v1/auth/login", {"username": "boss", "password": "correct horse"}).json["access_token"]

        write(library / "kidney-stones.md", KIDNEY)  # the host drops a file in; nothing restarts
        # A user finds it by a Chinese word of its body (two characters: 尿量), and reads it.
        assert [a["id"] for a in search(client, user, q="尿量")["items"]] == ["kidney-stones"]
        article = client.get("/api/v1/library/kidney-stones", token=user).json
        assert article["title"] == "肾结石的预防" and "两升半以上" in article["body"] and article["tags"] == ["kidney", "physical"]

        # The offline companion (the physical agent's provider) answers from it, quoting it.
        answer = ask(client, user, "得过肾结石，每天要喝多少水？")
        assert answer["provider"] == "offline"
        assert "《肾结石的预防》" in answer["content"] and "尿量达到两升半以上" in answer["content"], answer["content"]
        assert answer["sources"] == [{"id": "kidney-stones", "title": "肾结石的预防"}]
        stored = client.get(f"/api/v1/health/sessions/{answer['session_id']}", token=user).json["messages"]["items"]
        assert stored[-1]["sources"] == answer["sources"] and stored[-1]["content"] == answer["content"]

        # Pointed at a model, the passage and its title are in the system prompt.
        answer = ask(client, user, "得过肾结石，每天要喝多少水？", agent="mental")
        assert answer["provider"] == "fake" and answer["sources"] == [{"id": "kidney-stones", "title": "肾结石的预防"}]
        system = model.requests[-1].body["messages"][0]["content"]
        assert "《肾结石的预防》" in system and "尿量达到两升半以上" in system

        # An admin edits it over the API; the next answers use the new text.
        r = client.put("/api/v1/library/kidney-stones", {"body": "## 多喝水\n\n每天喝水让尿量达到三升，夜里也喝一杯。\n"},
                       token=admin)
        assert r.status == 200, r.text
        assert r.json["title"] == "肾结石的预防" and "三升" in r.json["body"]  # the fields not given are kept
        offline = ask(client, user, "得过肾结石，每天要喝多少水？")
        assert "尿量达到三升" in offline["content"] and "两升半" not in offline["content"], offline["content"]
        ask(client, user, "得过肾结石，每天要喝多少水？", agent="mental")
        system = model.requests[-1].body["messages"][0]["content"]
        assert "尿量达到三升" in system and "两升半" not in system
        assert "三升" in (library / "kidney-stones.md").read_text(encoding="utf-8")  # the file is the truth


def test_the_stream_carries_sources_in_done(site):
    served, user, _ = site()
    events = stream(served.client, "physical", {"text": "早上还是晚上量血压比较好？"}, user)
    kind, done = events[-1]
    assert kind == "done" and done["sources"] == [{"id": "blood-pressure-at-home", "title": "在家正确测血压"}]
    assert "".join(e[1]["delta"] for e in events if e[0] == "message" and "delta" in e[1]) == done["content"]
    assert "早上起床后 1 小时内测" in done["content"]


def test_a_reply_without_a_passage_has_no_sources_and_small_talk_cites_nothing(site):
    served, user, _ = site()
    for text in ("你好", "今天天气不错", "我想买一台新手机，推荐一下", "thanks!"):
        answer = ask(served.client, user, text)
        assert answer["sources"] == [] and "《病友宝典》" not in answer["content"], (text, answer)


def test_a_crisis_turn_gets_no_article(site):
    """Safety's crisis reply is the whole answer: nothing cited, even when the words match one."""
    served, user, _ = site()
    answer = ask(served.client, user, "焦虑得不想活了，想结束生命")
    assert answer["provider"] == "safety" and answer["sources"] == []


# -- search ---------------------------------------------------------------------------------------


def test_search_finds_chinese_words_of_two_and_more_characters_and_english_words(site):
    served, user, _ = site()
    client = served.client
    assert [a["id"] for a in search(client, user, q="失眠")["items"]] == ["sleep"]
    assert [a["id"] for a in search(client, user, q="低血糖")["items"]] == ["diabetes-and-diet"]
    assert search(client, user, q="血压")["items"][0]["id"] == "blood-pressure-at-home"
    assert [a["id"] for a in search(client, user, q="焦虑 呼吸")["items"]] == ["anxiety-self-help"]  # every word
    assert search(client, user, q="焦虑 血糖仪")["items"] == []
    # One character is no term of the index: looked for in the text.
    assert {a["id"] for a in search(client, user, q="糖")["items"]} == {"diabetes-and-diet", "when-to-see-a-doctor"}
    # Full-width letters and case are folded: ＷＨＯ finds WHO in a source line.
    assert "anxiety-self-help" in {a["id"] for a in search(client, user, q="ｗｈｏ")["items"]}
    item = search(client, user, q="失眠")["items"][0]
    assert set(item) == {"id", "title", "summary", "tags", "updated_at"} and item["updated_at"].endswith("Z")


def test_listing_pages_in_order_and_filters_by_tag(site):
    served, user, _ = site()
    client = served.client
    first = search(client, user, limit=2)
    assert [a["id"] for a in first["items"]] == ["when-to-see-a-doctor", "blood-pressure-at-home"]  # order: 1, 10
    rest = search(client, user, limit=10, before=first["next"])
    assert [a["id"] for a in rest["items"]] == ["diabetes-and-diet", "sleep", "anxiety-self-help"] and rest["next"] is None
    assert [a["id"] for a in search(client, user, tag="mental")["items"]] == [
        "when-to-see-a-doctor", "sleep", "anxiety-self-help"]
    assert [a["id"] for a in search(client, user, tag="MENTAL", q="失眠")["items"]] == ["sleep"]
    page = search(client, user, q="医院", limit=1)
    assert len(page["items"]) == 1 and page["next"]
    assert search(client, user, q="医院", limit=1, before=page["next"])["items"][0]["id"] != page["items"][0]["id"]
    for before in ("nonsense", "s-1", "p1", "../x"):
        assert_error(client.get(f"/api/v1/library?before={urllib.parse.quote(before)}", token=user), 400, "invalid_cursor")
    assert_error(client.get("/api/v1/library?limit=0", token=user), 400, "invalid_field")
    assert_error(client.get("/api/v1/library"), 401, "unauthorized")


# -- files changing under the server -------------------------------------------------------------


def test_edits_in_place_removals_and_broken_files(site, library):
    served, user, _ = site({"library": {"rescan_seconds": 0}})
    client = served.client
    path = library / "sleep.md"
    text = path.read_text(encoding="utf-8")
    with open(path, "w", encoding="utf-8") as f:  # an edit in place: the folder itself does not change
        f.write(text.replace("睡个好觉", "睡眠小贴士") + "\n午后小睡别超过半小时。\n")
    assert search(client, user, q="半小时")["items"][0]["title"] == "睡眠小贴士"

    # A broken edit keeps the last good version; a broken new file stays out, named by `check`.
    with open(path, "w", encoding="utf-8") as f:
        f.write("---\ntitle: [unclosed\n---\nbody\n")
    assert search(client, user, q="半小时")["items"][0]["title"] == "睡眠小贴士"
    write(library / "broken.md", "---\nsummary: 忘了写标题\n---\n没有标题的文章\n")
    write(library / "Bad Name.md", "---\ntitle: x\n---\n")
    assert search(client, user, q="没有标题")["items"] == []
    problems = served.wm.service("library").problems
    assert problems["broken.md"] == "title: required" and "file name must be" in problems["Bad Name.md"]

    # A file removed leaves the index: search, the article and its rows are gone.
    (library / "diabetes-and-diet.md").unlink()
    assert search(client, user, q="低血糖")["items"] == []
    assert_error(client.get("/api/v1/library/diabetes-and-diet", token=user), 404, "article_not_found")
    assert ask(client, user, "糖尿病能吃水果吗")["sources"] == []
    db = sqlite3.connect(served.wm.data_dir / "library.sqlite3")
    assert db.execute("SELECT count(*) FROM passages WHERE article = 'diabetes-and-diet'").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM docs WHERE article = 'diabetes-and-diet'").fetchone() == (0,)


def test_the_index_is_kept_across_restarts_and_rebuilt_when_lost_or_torn(make_wm, library, tmp_path):
    wm = make_wm()
    assert wm.service("library").list("失眠")[0][0]["id"] == "sleep"
    wm.close()
    index = tmp_path / "data" / "library.sqlite3"
    for leftover in (index.with_name(index.name + "-wal"), index.with_name(index.name + "-shm")):
        leftover.unlink(missing_ok=True)
    index.write_bytes(b"this is not a database" * 100)  # torn by a bad copy
    wm = make_wm()
    assert wm.service("library").list("失眠")[0][0]["id"] == "sleep"
    assert not wm.problems


# -- the admin API ----------------------------------------------------------------------------------


def test_admins_create_update_and_delete_articles_as_files(site, library):
    served, user, admin = site()
    client = served.client
    body = {"id": "hand-washing", "title": "正确洗手", "summary": "七步洗手法", "tags": ["Hygiene", "physical"],
            "order": 5, "sources": ["世界卫生组织（WHO）《Hand Hygiene: Why, How & When?》"],
            "body": "## 七步洗手法\n\n用流动水和肥皂，搓手至少二十秒。\n"}
    for token, status in ((None, 401), (user, 403)):
        assert client.post("/api/v1/library", body, token=token).status == status
        assert client.put("/api/v1/library/sleep", {"title": "x"}, token=token).status == status
        assert client.delete("/api/v1/library/sleep", token=token).status == status
    assert not (library / "hand-washing.md").exists() and (library / "sleep.md").exists()

    r = client.post("/api/v1/library", body, token=admin)
    assert r.status == 201, r.text
    assert r.json["tags"] == ["hygiene", "physical"] and r.json["order"] == 5 and r.json["sources"] == body["sources"]
    stored = (library / "hand-washing.md").read_text(encoding="utf-8")
    assert stored.startswith("---\ntitle: 正确洗手\n") and stored.endswith("搓手至少二十秒。\n")
    assert not [p for p in library.iterdir() if p.name.startswith(".")]  # no temp file left
    assert search(client, user, q="肥皂")["items"][0]["id"] == "hand-washing"
    assert_error(client.post("/api/v1/library", body, token=admin), 409, "article_exists")

    r = client.put("/api/v1/library/hand-washing", {"summary": None, "tags": ["hygiene"]}, token=admin)
    assert r.status == 200 and r.json["summary"] == "" and r.json["tags"] == ["hygiene"] and "二十秒" in r.json["body"]
    assert_error(client.put("/api/v1/library/no-such", {"title": "x"}, token=admin), 404, "article_not_found")
    assert_error(client.put("/api/v1/library/hand-washing", {"id": "other"}, token=admin), 400, "invalid_field")

    assert client.delete("/api/v1/library/hand-washing", token=admin).status == 204
    assert not (library / "hand-washing.md").exists()
    assert search(client, user, q="肥皂")["items"] == []
    assert_error(client.delete("/api/v1/library/hand-washing", token=admin), 404, "article_not_found")
    db = sqlite3.connect(served.wm.data_dir / "library.sqlite3")
    assert db.execute("SELECT count(*) FROM passages WHERE article = 'hand-washing'").fetchone() == (0,)


BAD_FIELDS = [
    ({"title": ""}, "title"), ({"title": None}, "title"), ({"title": "x" * 201}, "title"), ({"title": ["a"]}, "title"),
    ({"tags": "a b!"}, "tags"), ({"tags": [{"a": 1}]}, "tags"), ({"tags": ["x"] * 21}, "tags"),
    ({"order": "first"}, "order"), ({"order": 1.5}, "order"), ({"order": True}, "order"),
    ({"cover": "../../etc/passwd"}, "cover"), ({"attachment": "/etc/passwd"}, "attachment"),
    ({"attachment": "missing.pdf"}, "attachment"), ({"sources": [["nested"]]}, "sources[0]"),
    ({"body": 42}, "body"),
    ({"author": "me"}, "author"),
]


def test_bad_fields_are_a_400_naming_the_field(site, library):
    served, _, admin = site()
    for change, field in BAD_FIELDS:
        for method, path in (("POST", "/api/v1/library"), ("PUT", "/api/v1/library/sleep")):
            r = served.client.request(method, path, {"id": "new-one" if method == "POST" else "sleep", "title": "新文章",
                                                     "body": "正文", **change}, token=admin)
            assert_error(r, 400, "invalid_field")
            assert r.json["error"]["message"].startswith(f"{field}: "), (change, r.text)
    # A NUL is refused in every body before any route reads it (docs/api.md): invalid_text, naming the field.
    for field in ("body", "summary", "title"):
        for method, path in (("POST", "/api/v1/library"), ("PUT", "/api/v1/library/sleep")):
            r = served.client.request(method, path, {"id": "new-one" if method == "POST" else "sleep", "title": "新文章",
                                                     "body": "正文", field: "a\x00b"}, token=admin)
            assert_error(r, 400, "invalid_text")
            assert r.json["error"]["message"].startswith(f"{field}: "), r.text
    assert not (library / "new-one.md").exists()
    assert (library / "sleep.md").read_text(encoding="utf-8") == (ROOT / "library" / "sleep.md").read_text(encoding="utf-8")


HOSTILE_IDS = ["..", "../sleep", "..%2Fsleep", "%2e%2e", "%2e%2e%2f%2e%2e%2fconfig.yaml", "a%00b", "%00", "x" * 65,
               "Sleep", "sleep.md", "-sleep", "sleep-", "睡眠", "a b", "%2Fetc%2Fpasswd", "sleep%2F..%2F..%2Fx", "~root"]


def test_hostile_ids_never_reach_the_disk(site, library, tmp_path):
    served, user, admin = site()
    client = served.client
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if "data" not in p.parts)
    for article_id in HOSTILE_IDS:
        for method, token, body in (("GET", user, None), ("PUT", admin, {"title": "x", "body": "y"}),
                                    ("DELETE", admin, None), ("GET", user, "files")):
            path = f"/api/v1/library/{urllib.parse.quote(article_id, safe='%')}"
            if body == "files":
                path, body = path + "/files/x.pdf", None
            r = client.request(method, path, body=body, token=token)
            assert r.status in (400, 404) and r.json["error"]["code"], (method, article_id, r.status, r.text)
        r = client.post("/api/v1/library", {"id": urllib.parse.unquote(article_id), "title": "x", "body": "y"}, token=admin)
        # a NUL is refused in any body before the route reads it (docs/api.md)
        assert_error(r, 400, "invalid_text" if "\x00" in urllib.parse.unquote(article_id) else "invalid_field")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if "data" not in p.parts) == before
    assert (library / "sleep.md").exists()


def test_hostile_bodies_are_json_errors(site, library):
    served, user, admin = site()
    client = served.client
    for body in ([], "text", {"id": None}, {"id": 5, "title": "x"}, {"id": "/abs", "title": "x"},
                 {"id": "ok-id", "title": {"$gt": ""}}, {"id": "ok-id", "title": "x", "body": ["a"]},
                 {"id": "ok-id", "title": "x", "tags": "\ud800"}, {"id": "ok-id", "title": "x", "order": 10 ** 30}):
        r = client.request("POST", "/api/v1/library", raw=json.dumps(body).encode(), token=admin,
                           headers={"Content-Type": "application/json"})
        assert r.status == 400 and r.json["error"]["code"], (body, r.status, r.text)
    r = client.request("POST", "/api/v1/library", raw=b"\xff\xfe", token=admin, headers={"Content-Type": "application/json"})
    assert_error(r, 400, "invalid_json")
    for query in ("q=%00", "q=" + urllib.parse.quote("血" * 201), "tag=%00", "q=%22%20OR%20%22", "q=NEAR(a%20b)", "q=*", "q=a%22b",
                  "q=%E8%A1%80%22%20AND%20x", "q=-", "q=%F0%9F%98%80"):
        r = client.get(f"/api/v1/library?{query}", token=user)
        assert r.status in (200, 400), (query, r.status, r.text)
    assert not (library / "ok-id.md").exists()


def test_attachments_are_served_to_logged_in_users(site, library):
    served, user, admin = site()
    client = served.client
    (library / "files").mkdir()
    (library / "files" / "bp-chart.pdf").write_bytes(b"%PDF-1.4 fake chart")
    (library / "files" / "secret.txt").write_bytes(b"not linked from any article")
    r = client.put("/api/v1/library/blood-pressure-at-home", {"attachment": "bp-chart.pdf"}, token=admin)
    assert r.status == 200, r.text
    link = r.json["attachment"]
    assert link == {"name": "bp-chart.pdf", "url": "/api/v1/library/blood-pressure-at-home/files/bp-chart.pdf"}
    got = client.get(link["url"], token=user)
    assert got.status == 200 and got.body == b"%PDF-1.4 fake chart"
    assert_error(client.get(link["url"]), 401, "unauthorized")
    for name in ("secret.txt", "..%2Fsleep.md", "%2e%2e", "missing.pdf"):
        r = client.get(f"/api/v1/library/blood-pressure-at-home/files/{name}", token=user)
        assert r.status in (400, 404) and r.json["error"], (name, r.text)


# -- agents and tags ------------------------------------------------------------------------------


def test_agents_limited_to_tags_read_only_those_articles(site):
    served, user, _ = site({"library": {"agent_tags": {"mental": ["mental"]}}})
    client = served.client
    assert ask(client, user, "早上还是晚上量血压比较好？", agent="mental")["sources"] == []
    assert ask(client, user, "早上还是晚上量血压比较好？")["sources"][0]["id"] == "blood-pressure-at-home"
    assert ask(client, user, "最近睡不好，老是半夜醒", agent="mental")["sources"][0]["id"] == "sleep"


def test_agent_tags_naming_no_agent_stop_startup(make_wm, library):
    import wellmate

    with pytest.raises(wellmate.ConfigError, match="library.agent_tags.mentl: no such agent"):
        make_wm({"library": {"agent_tags": {"mentl": ["mental"]}}})


def test_passages_zero_switches_the_agents_reading_off(site):
    served, user, _ = site({"library": {"passages": 0}})
    assert ask(served.client, user, "早上还是晚上量血压比较好？")["sources"] == []
    assert search(served.client, user, q="血压")["items"]  # the library itself is still there


def test_no_library_folder_is_an_empty_library(make_wm, serve):
    client = serve(make_wm()).client
    user = client.register()["access_token"]
    assert search(client, user) == {"items": [], "next": None}
    assert ask(client, user, "早上还是晚上量血压比较好？")["sources"] == []


def test_an_index_that_cannot_be_opened_is_kept_in_memory(make_wm, serve, library, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "library.sqlite3").mkdir()  # sqlite cannot open a folder: as a read-only one
    wm = make_wm()
    client = serve(wm).client
    user = client.register()["access_token"]
    assert search(client, user, q="失眠")["items"][0]["id"] == "sleep"
    assert "kept in memory" in wm.service("library").index_note


def test_a_platform_that_never_saw_the_passage_does_not_cite_it(site):
    """A Coze bot owns its prompt: the passage reaches it only through $system in its variables.
    Without that the reply cites nothing; with it, the article it was given."""
    from fakes.coze_server import FakeCoze
    with FakeCoze(reply="早上测比较好。") as coze:
        bot = {"plugin": "coze", "base_url": coze.url, "bot_id": "7348293334", "api_key": "pat_fake", "timeout": 5}
        served, user, _ = site({"providers": {"coze": bot, "briefed": {**bot, "custom_variables": {"guide": "$system"}}},
                                "agents": {"physical": {"providers": ["coze", "offline"]},
                                           "mental": {"providers": ["briefed", "offline"]}}})
        reply = ask(served.client, user, "早上还是晚上量血压比较好？")
        assert reply["provider"] == "coze" and reply["sources"] == []
        reply = ask(served.client, user, "早上还是晚上量血压比较好？", agent="mental")
        assert reply["provider"] == "briefed" and reply["sources"] == [{"id": "blood-pressure-at-home", "title": "在家正确测血压"}]
        assert "在家正确测血压" in coze.chats[-1].body["custom_variables"]["guide"]


def test_a_linked_attachment_or_article_is_not_followed_out_of_the_library(site, library, tmp_path):
    """A symlink in library/ (a git checkout can carry one) pointing at config.yaml would serve
    its keys to every user: links are neither served nor indexed."""
    served, user, admin = site()
    (library / "files").mkdir()
    (library / "files" / "guide.pdf").symlink_to(tmp_path / "config.yaml")
    (library / "leak.md").symlink_to(tmp_path / "config.yaml")
    write(library / "linked.md", "---\ntitle: 有附件\nattachment: guide.pdf\n---\n正文。")
    r = served.client.get("/api/v1/library/linked/files/guide.pdf", token=user)
    assert r.status == 404 and b"providers" not in r.body
    assert_error(served.client.get("/api/v1/library/leak", token=user), 404, "article_not_found")


def test_front_matter_yaml_cannot_read_and_a_long_run_of_ellipses_neither_stop_nor_hang_it(make_wm, serve, library):
    """An impossible date in a host's own field (PyYAML raises ValueError) stopped startup; a
    paragraph of 600 '…' looped for ever under the index lock."""
    write(library / "bad-date.md", "---\ntitle: 日期\nreviewed: 2026-02-30\n---\n正文。")
    write(library / "dots.md", "---\ntitle: 省略号\n---\n" + "……" * 300 + "\n\n血压的正文。")
    served = serve(make_wm({"safety": {"disclaimer": "never"}}))
    user = served.client.register("alice")["access_token"]
    assert served.client.get("/api/v1/library/dots", token=user).status == 200
    assert served.client.get("/api/v1/library/bad-date", token=user).status == 404
    assert any(item["id"] == "blood-pressure-at-home" for item in search(served.client, user, q="血压")["items"])


def test_a_quoted_emergency_list_keeps_what_to_do(site):
    """The emergency list's action is its heading ("马上拨打 120"): the offline companion quotes
    the section's heading with the passage, and each sign in it says to call 120 as well. (Asked as a question: a fever
    with a stiff neck and a rash told now is a red flag since session 21, whose reply is the 120 note alone.)"""
    served, user, _ = site()
    answer = ask(served.client, user, "什么情况下发烧要马上打120？")
    assert answer["sources"] and answer["sources"][0]["id"] == "when-to-see-a-doctor", answer
    assert "「马上拨打 120」一节" in answer["content"] and "立即拨打 120" in answer["content"], answer["content"]


# -- the second outside review's open points ------------------------------------------------------


def in_place(path, text):
    """Overwrite a file in place, as `cp new.md old.md` does: same inode, the folder unchanged."""
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write(text.encode("utf-8"))


def etag_header(response):
    return next(value for name, value in response.headers.items() if name.lower() == "etag")


def damage_middle(path):
    data = bytearray(path.read_bytes())
    noise = __import__("random").Random(16).randbytes(len(data) // 2)
    data[len(data) // 4:len(data) // 4 + len(noise)] = noise
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["random bytes over its middle", "zero length", "not sqlite"])
def test_a_damaged_index_is_rebuilt_from_the_files_at_start(make_wm, serve, library, tmp_path, caplog, damage):
    """A damaged (not truncated) index stopped startup, or failed every search reading a damaged
    page: it is only an index, so it is deleted and rebuilt from the files, with a log line."""
    make_wm().close()  # the index as a previous run left it
    index = tmp_path / "data" / "library.sqlite3"
    assert index.stat().st_size > 0 and not (tmp_path / "data" / "library.sqlite3-wal").exists()
    if damage == "random bytes over its middle":
        damage_middle(index)
    else:
        index.write_bytes(b"" if damage == "zero length" else b"# not a database\n" * 500)
    served = serve(make_wm({"safety": {"disclaimer": "never"}}))
    user = served.client.register()["access_token"]
    assert [a["id"] for a in search(served.client, user, q="失眠")["items"]] == ["sleep"]
    assert ask(served.client, user, "早上还是晚上量血压比较好？")["sources"][0]["id"] == "blood-pressure-at-home"
    if damage != "zero length":  # an empty file is an empty database: nothing to say
        assert any("damaged" in r.getMessage() and "rebuilding" in r.getMessage() for r in caplog.records)


def test_a_turn_uses_the_last_good_index_while_new_files_are_indexed(make_wm, serve, library, tmp_path):
    """Indexing ran in the chat turn under the index's lock (400 new files: 406-470 ms of one
    turn, bench/library --only-arrive). Now a thread indexes while turns read the last committed
    index. Here the index is held up by another writer: the turn answers from the index as it
    was, and once the writer lets go the next turn has the new article."""
    wm = make_wm({"safety": {"disclaimer": "never"}, "library": {"rescan_seconds": 3600}}, start=True)
    served = serve(wm)
    user = served.client.register()["access_token"]
    cited = lambda answer: [s["id"] for s in answer["sources"]]  # noqa: E731
    assert "kidney-stones" not in cited(ask(served.client, user, "得过肾结石，每天要喝多少水？"))
    other = sqlite3.connect(tmp_path / "data" / "library.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # the index's one writer is busy
    # Let go as soon as the turn has answered, or after 4 s (below sqlite's 5 s wait for a lock):
    # an indexer in the turn would wait for it there.
    release = __import__("threading").Timer(4.0, other.rollback)
    release.start()
    try:
        write(library / "kidney-stones.md", KIDNEY)
        answer = ask(served.client, user, "得过肾结石，每天要喝多少水？")
        assert "kidney-stones" not in cited(answer), answer  # the last good index: the new file is not in it yet
    finally:
        release.cancel()
        other.rollback()
        other.close()
    assert [a["id"] for a in search(served.client, user, q="尿量")["items"]] == ["kidney-stones"]  # a read waits for it
    assert cited(ask(served.client, user, "得过肾结石，每天要喝多少水？"))[0] == "kidney-stones"


def test_an_oversized_file_is_left_out_after_its_stat_not_read(make_wm, serve, library):
    """A file was read whole before its size was checked (a 2 GB file: 2 GB of memory)."""
    write(library / "huge.md", "---\ntitle: 很大\n---\n" + "血压" * 600_000)  # 3.6 MB
    wm = make_wm()
    client = serve(wm).client
    user = client.register()["access_token"]
    assert_error(client.get("/api/v1/library/huge", token=user), 404, "article_not_found")
    assert any("huge.md" in p and "over the 1,000,000 bytes an article may have: not read" in p for p in wm.problems), wm.problems


def test_cp_over_an_article_is_read_at_once_and_put_is_conditional(make_wm, serve, library):
    """`cp` over an article leaves the folder as it was: a reader saw the old text until the
    next rescan, and an admin's PUT (a field, or with the ETag it read) overwrote the edit."""
    served = serve(make_wm({"library": {"rescan_seconds": 3600}}))
    client = served.client
    user = client.register("alice")["access_token"]
    boss = client.register("boss")
    served.wm.service("accounts").update(boss["user"]["uuid"], {"role": "admin"})
    admin = client.post("/api/v1/auth/login", {"username": "boss", "password": "correct horse"}).json["access_token"]
    read = client.get("/api/v1/library/sleep", token=admin)
    etag = etag_header(read)
    assert etag == f'"{read.json["etag"]}"'

    text = (library / "sleep.md").read_text(encoding="utf-8")
    in_place(library / "sleep.md", text.replace("7–8 小时", "七到八个小时"))
    assert "七到八个小时" in client.get("/api/v1/library/sleep", token=user).json["body"]

    in_place(library / "sleep.md", text.replace("7–8 小时", "八个小时左右"))  # edited on disk after the admin read it
    r = client.put("/api/v1/library/sleep", {"body": "管理员的新正文。"}, token=admin, headers={"If-Match": etag})
    assert_error(r, 409, "article_changed")
    assert "八个小时左右" in (library / "sleep.md").read_text(encoding="utf-8")
    r = client.put("/api/v1/library/sleep", {"title": "睡个好觉（修订）"}, token=admin)  # no If-Match: one field
    assert r.status == 200, r.text
    assert "八个小时左右" in r.json["body"] and r.json["title"] == "睡个好觉（修订）"  # the body on disk, kept
    fresh = etag_header(r)
    assert fresh != etag
    r = client.put("/api/v1/library/sleep", {"body": "管理员的新正文。"}, token=admin, headers={"If-Match": fresh})
    assert r.status == 200 and r.json["body"] == "管理员的新正文。\n", r.text
    assert_error(client.request("DELETE", "/api/v1/library/sleep", token=admin, headers={"If-Match": fresh}),
                 409, "article_changed")
    assert (library / "sleep.md").exists()


def test_the_offline_reply_cites_what_it_quoted_and_a_model_what_it_was_given(make_wm, serve, library):
    """"焦虑睡不着怎么办" finds two articles: a model is given both and cites both; the offline
    companion quotes one, and listed both."""
    with FakeOpenAI(reply="好的。") as model:
        served = serve(make_wm({"providers": {"fake": {"plugin": "openai", "base_url": model.url, "model": "m",
                                                       "timeout": 5, "max_retries": 0}},
                                "agents": {"mental": {"providers": ["fake", "offline"]}},
                                "safety": {"disclaimer": "never"}}))
        user = served.client.register()["access_token"]
        offline = ask(served.client, user, "焦虑睡不着怎么办")
        assert offline["provider"] == "offline"
        quoted = [s for s in ({"id": "sleep", "title": "睡个好觉"}, {"id": "anxiety-self-help", "title": "焦虑时可以自己做的事"})
                  if f"《{s['title']}》" in offline["content"]]
        assert len(quoted) == 1 and offline["sources"] == quoted, offline
        stored = served.client.get(f"/api/v1/health/sessions/{offline['session_id']}", token=user).json["messages"]["items"]
        assert stored[-1]["sources"] == quoted
        answer = ask(served.client, user, "焦虑睡不着怎么办", agent="mental")
        assert answer["provider"] == "fake" and {s["id"] for s in answer["sources"]} == {"sleep", "anxiety-self-help"}
        system = model.requests[-1].body["messages"][0]["content"]
        assert all(f"《{s['title']}》" in system for s in answer["sources"])


def test_only_atx_headings_outside_code_are_headings_and_they_are_capped(make_wm, serve, library):
    """Any line starting with "#" was a heading, of any length: "#重要 ..." made a paragraph a
    heading (and its section lost its own), a shell comment in a code block too."""
    write(library / "knee.md", "---\ntitle: 膝盖保养\n---\n\n## 护膝的方法\n\n#重要 膝盖疼的时候少爬楼梯，少深蹲。\n\n"
          "```\n# 这是代码里的注释\n```\n\n# " + "很长的标题" * 60 + "\n\n膝盖酸痛时可以热敷膝盖。\n")
    served = serve(make_wm({"safety": {"disclaimer": "never"}}))
    user = served.client.register()["access_token"]
    answer = ask(served.client, user, "膝盖疼能爬楼梯吗")
    assert answer["sources"] == [{"id": "knee", "title": "膝盖保养"}], answer
    assert "「护膝的方法」一节" in answer["content"] and "#重要" not in answer["content"].split("一节")[0], answer["content"]
    assert "这是代码里的注释" in answer["content"]
    # (about the knee, as its article is: the offline companion quotes a knee article only on the knee)
    answer = ask(served.client, user, "膝盖酸痛可以热敷吗")
    heading = answer["content"].split("「", 1)[1].split("」一节", 1)[0]
    assert heading.startswith("很长的标题") and len(heading) <= 80, answer["content"]


def test_an_index_built_with_another_passage_length_is_rebuilt(make_wm, serve, library):
    """passage_chars shapes the index's passages; an index built with 100 was kept at 2000."""
    make_wm({"library": {"passage_chars": 100}}).close()
    served = serve(make_wm({"library": {"passage_chars": 2000}, "safety": {"disclaimer": "never"}}))
    user = served.client.register()["access_token"]
    answer = ask(served.client, user, "早上还是晚上量血压比较好？")
    assert answer["sources"][0]["id"] == "blood-pressure-at-home"
    # The section's two paragraphs are one passage at 2000 characters.
    assert "早上起床后" in answer["content"] and "连续测 7 天" in answer["content"], answer["content"]


def test_a_very_high_reading_without_symptoms_and_heart_symptoms_get_the_right_advice(make_wm, serve, library):
    """What to do with 180/110 and no symptoms was missing; the anxiety article said nothing of
    chest pain on exertion or fainting before its breathing advice."""
    with FakeOpenAI(reply="好的。") as model:
        served = serve(make_wm({"providers": {"fake": {"plugin": "openai", "base_url": model.url, "model": "m",
                                                       "timeout": 5, "max_retries": 0}},
                                "agents": {"physical": {"providers": ["fake"]}, "mental": {"providers": ["fake"]}},
                                "safety": {"disclaimer": "never"}}))
        user = served.client.register()["access_token"]
        assert ask(served.client, user, "在家量的血压有180/110，要紧吗")["sources"][0]["id"] == "blood-pressure-at-home"
        system = model.requests[-1].body["messages"][0]["content"]
        assert all(words in system for words in ("没有上面这些不舒服", "休息 5 分钟", "重测", "当天就去医院", "120")), system
        assert ask(served.client, user, "爬楼梯的时候胸口闷痛", agent="mental")["sources"][0]["id"] == "anxiety-self-help"
        system = model.requests[-1].body["messages"][0]["content"]
        assert all(words in system for words in ("心内科", "晕倒", "120")), system
    article = (library / "anxiety-self-help.md").read_text(encoding="utf-8")
    assert article.index("先分清要不要看医生") < article.index("## 慢呼吸")  # the warnings before the self-help


# -- a turn's search costs: the passages' vocabulary ------------------------------------------------


def match_queries(service, text, tags=None):
    """The full-text queries (SQL with its values) ``passages_for`` runs for ``text``."""
    statements = []
    service.db.set_trace_callback(statements.append)
    try:
        found = service.passages_for(text, tags)
    finally:
        service.db.set_trace_callback(None)
    return found, [s for s in statements if "MATCH" in s]


def test_a_message_with_no_term_of_the_library_runs_no_query_and_unknown_terms_are_left_out(site):
    served, user, _ = site()
    service = served.wm.service("library")
    assert {"血压", "睡眠", "wellmate"} <= service.vocabulary and "天气" not in service.vocabulary
    # Small talk: none of its terms is in a passage, so nothing is asked of the index.
    assert match_queries(service, "今天天气不错，出去玩了") == ([], [])
    assert ask(served.client, user, "今天天气不错，出去玩了")["sources"] == []
    # A question: only the terms some passage has are looked for; the same passage is found.
    found, queries = match_queries(service, "天气冷了，早上还是晚上量血压比较好？")
    assert found[0]["id"] == "blood-pressure-at-home" and len(queries) == 1
    assert '"血压"' in queries[0] and "天气" not in queries[0]


def test_the_vocabulary_follows_articles_added_and_removed_while_the_server_runs(site, library):
    served, user, admin = site({"library": {"rescan_seconds": 0}})
    client, service = served.client, served.wm.service("library")
    assert "结石" not in service.vocabulary and ask(client, user, "肾结石")["sources"] == []

    write(library / "kidney-stones.md", KIDNEY)  # dropped in while the server runs
    assert [a["id"] for a in search(client, user, q="结石")["items"]] == ["kidney-stones"]  # indexed now
    assert {"结石", "尿量"} <= service.vocabulary
    assert ask(client, user, "肾结石")["sources"] == [{"id": "kidney-stones", "title": "肾结石的预防"}]

    (library / "kidney-stones.md").unlink()
    assert search(client, user, q="结石")["items"] == []
    assert "结石" not in service.vocabulary and "血压" in service.vocabulary
    assert ask(client, user, "肾结石")["sources"] == []

    # An admin's article over the API: its words count at once, and no longer once it is deleted.
    r = client.post("/api/v1/library", {"id": "gout", "title": "痛风", "summary": "少喝啤酒。", "tags": ["physical"],
                                        "body": "痛风发作时关节红肿，要多喝水。"}, token=admin)
    assert r.status == 201, r.text
    assert "痛风" in service.vocabulary and ask(client, user, "痛风能喝啤酒吗")["sources"][0]["id"] == "gout"
    assert client.request("DELETE", "/api/v1/library/gout", token=admin).status == 204
    assert "痛风" not in service.vocabulary and ask(client, user, "痛风能喝啤酒吗")["sources"] == []


def test_a_library_with_more_terms_than_kept_in_memory_queries_every_turn(site, monkeypatch):
    from wellmate_plugins import library as library_plugin

    monkeypatch.setattr(library_plugin, "VOCABULARY_LIMIT", 50)  # the starter articles have ~2,000 terms
    served, user, _ = site()
    service = served.wm.service("library")
    assert service.vocabulary is None
    found, queries = match_queries(service, "早上还是晚上量血压比较好？")
    assert found[0]["id"] == "blood-pressure-at-home" and len(queries) == 1
    assert match_queries(service, "今天天气不错，出去玩了")[1] != []  # no vocabulary to tell it matches nothing
