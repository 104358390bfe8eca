"""The safety plugin (plugins/safety.py) and the reply-path hooks it uses: crisis replies that
need no provider, red-flag notes at the top of a reply, session flags for admins, the medical
disclaimer; and before_reply / after_reply from a user's own plugin file."""

import textwrap

import pytest

from cases import CRISIS_CASES, read_tsv
from fakes.openai_server import FakeOpenAI, chars
from test_chat import stream



CASES = read_tsv(CRISIS_CASES)


def fake_only(url, **extra):
    """Agents whose only provider is an OpenAI-compatible server at ``url``: no offline
    companion to fall back on."""
    return {"providers": {"fake": {"plugin": "openai", "base_url": url, "model": "m", "timeout": 2,
                                   "connect_timeout": 1, "max_retries": 0}},
            "agents": {"physical": {"providers": ["fake"]}, "mental": {"providers": ["fake"]}},
            "chat": {"ping_seconds": 0.2}, **extra}


def deltas(events) -> list[str]:
    return [data["delta"] for kind, data in events if kind == "message"]


def stored_reply(client, token, session_id) -> dict:
    items = client.get(f"/api/v1/health/sessions/{session_id}", token=token).json["messages"]["items"]
    return items[-1]


# -- the case set ------------------------------------------------------------------------------------


def test_case_set_is_big_enough_and_well_formed():
    kinds = {row["expect"] for row in CASES}
    assert kinds == {"crisis", "red_flag", "none"}
    assert sum(row["expect"] == "crisis" for row in CASES) >= 50
    assert sum(row["expect"] == "red_flag" for row in CASES) >= 20
    assert sum(row["expect"] == "none" for row in CASES) >= 50


def test_every_positive_is_found_and_no_idiom_triggers(make_wm, capsys):
    wm = make_wm()
    from_plugin = wm.pm.get_plugin("safety").Safety(wm)
    missed, alarms, negatives = [], [], 0
    for row in CASES:
        crisis, flags = from_plugin.check(row["text"])
        if row["expect"] == "crisis" and not crisis:
            missed.append(row["text"])
        elif row["expect"] == "red_flag" and not flags:
            missed.append(row["text"])
        elif row["expect"] == "none":
            negatives += 1
            if crisis or flags:
                alarms.append((row["kind"], row["text"]))
    rate = len(alarms) / negatives
    with capsys.disabled():
        print(f"\nsafety cases: recall 100% required, missed {len(missed)}; false positives "
              f"{len(alarms)}/{negatives} = {rate:.1%}: {alarms}")
    assert not missed, f"positives not found: {missed}"
    # Hyperbole and everyday words never trigger; talking *about* suicide may (a cautious reply).
    assert not [text for kind, text in alarms if kind != "mention"], alarms


def test_red_flag_symptoms_the_user_does_not_have_are_not_flagged(make_wm):
    wm = make_wm()
    safety = wm.pm.get_plugin("safety").Safety(wm)
    assert safety.check("胸口很痛，喘不上气")[1] == ["chest_and_breath"]
    assert safety.check("没有胸痛，也没有呼吸困难")[1] == []
    assert safety.check("I don't have chest pain or shortness of breath")[1] == []
    assert safety.check("My face is drooping")[1] == ["stroke"]


def test_editing_the_phrases_file_applies_to_the_next_message(make_wm, tmp_path):
    wm = make_wm()
    safety = wm.pm.get_plugin("safety").Safety(wm)
    assert safety.check("我想去火星流浪")[0] is False
    path = tmp_path / "prompts" / "safety.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("zh: [自杀,", "zh: [去火星流浪, 自杀,", 1), encoding="utf-8")
    import os
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    assert safety.check("我想去火星流浪")[0] is True
    # A broken edit keeps the last good version: crisis checks never stop.
    path.write_text("crisis: [unclosed", encoding="utf-8")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 4_000_000_000))
    assert safety.check("我不想活了")[0] is True


# -- crisis over HTTP ----------------------------------------------------------------------------------


def test_crisis_gets_hotlines_with_every_provider_stopped(make_wm, serve):
    with FakeOpenAI() as upstream:
        url = upstream.url
    # The only provider is gone (connection refused): an ordinary message cannot be answered...
    served = serve(make_wm(fake_only(url)))
    client = served.client
    token = client.register()["access_token"]
    r = client.post("/api/v1/health/mental/chat", {"text": "最近睡不好"}, token=token)
    assert r.status == 503 and r.json["error"]["code"] == "providers_unavailable"
    # ...but a crisis is, with the hotlines and emergency numbers from config.
    for text in ("我真的不想活了", "Everyone would be better off without me"):
        r = client.post("/api/v1/health/mental/chat", {"text": text}, token=token)
        assert r.status == 200, r.text
        reply = r.json
        for number in ("12356", "400-161-9995", "120", "110"):
            assert number in reply["content"]
        assert reply["provider"] == "safety" and reply["emotion"] == "concerned"
    assert "你现在安全吗" in client.post("/api/v1/health/physical/chat", {"text": "我想自杀"}, token=token).json["content"]
    events = stream(client, "physical", {"text": "I want to kill myself"}, token)
    assert events[0] == ("comment", "connected") and events[1][0] == "start"
    done = events[-1]
    assert done[0] == "done" and "12356" in done[1]["content"] and "Are you safe" in done[1]["content"]
    assert "".join(deltas(events)) == done[1]["content"]
    assert stored_reply(client, token, done[1]["session_id"])["content"] == done[1]["content"]


def test_crisis_never_reaches_the_model_and_flags_the_session(make_wm, serve):
    with FakeOpenAI(reply="model reply") as upstream:
        served = serve(make_wm(fake_only(upstream.url)))
        client, wm = served.client, served.wm
        token = client.register()["access_token"]
        first = client.post("/api/v1/health/mental/chat", {"text": "我撑不下去了，想解脱"}, token=token).json
        assert upstream.requests == [] and first["provider"] == "safety"
        session_id = first["session_id"]
        assert wm.storage.get_session(session_id)["flags"] == {"crisis": 1}
        # The user's message was stored first, as always.
        items = client.get(f"/api/v1/health/sessions/{session_id}", token=token).json["messages"]["items"]
        assert [m["role"] for m in items] == ["user", "assistant"] and items[0]["content"] == "我撑不下去了，想解脱"
        # A second crisis message in the session: the shorter follow-up, still with the hotlines.
        second = client.post("/api/v1/health/mental/chat", {"text": "还是想死", "session_id": session_id},
                             token=token).json
        assert second["content"] != first["content"] and "12356" in second["content"]
        assert wm.storage.get_session(session_id)["flags"] == {"crisis": 2}
        # Later turns reach the model, told to keep checking on the user's safety.
        third = client.post("/api/v1/health/mental/chat", {"text": "嗯，我在听", "session_id": session_id},
                            token=token).json
        assert third["content"] == "model reply"
        system = upstream.last.body["messages"][0]["content"]
        assert "spoke of suicide or self-harm" in system and "12356" in system


def test_hotlines_come_from_config(make_wm, serve):
    config = {"safety": {"hotlines": ["Samaritans 2389 2222"], "emergency": ["999"]}}
    client = serve(make_wm(config)).client
    token = client.register()["access_token"]
    content = client.post("/api/v1/health/mental/chat", {"text": "I want to end my life"}, token=token).json["content"]
    assert "Samaritans 2389 2222" in content and "999" in content and "12356" not in content


def test_admin_sees_flagged_sessions(make_wm, serve):
    served = serve(make_wm())
    client, wm = served.client, served.wm
    token = client.register("alice")["access_token"]
    boss = client.register("boss")
    client.post("/api/v1/health/mental/chat", {"text": "我想自杀"}, token=token)
    client.post("/api/v1/health/physical/chat", {"text": "胸口很痛，喘不上气"}, token=token)
    client.post("/api/v1/health/mental/chat", {"text": "今天挺开心的"}, token=token)
    r = client.get("/api/v1/admin/flags", token=token)
    assert r.status == 403 and r.json["error"]["code"] == "admin_only"
    assert client.get("/api/v1/admin/flags").status == 401
    wm.storage.update_user(boss["user"]["uuid"], {"role": "admin"})
    flags = client.get("/api/v1/admin/flags", token=boss["access_token"]).json
    assert flags["sessions"] == 2 and flags["users"] == 1
    assert flags["by_kind"] == {"crisis": 1, "red_flag": 1}
    assert {item["username"] for item in flags["items"]} == {"alice"}
    assert all("content" not in item and "text" not in item for item in flags["items"])  # counts, not words


# -- red flags ------------------------------------------------------------------------------------------


def test_red_flag_note_is_the_first_thing_a_stream_sends(make_wm, serve):
    with FakeOpenAI(reply="先坐下休息，我陪着你。", chunker=chars(2), delay_between_chunks=0.05) as upstream:
        client = serve(make_wm(fake_only(upstream.url))).client
        token = client.register()["access_token"]
        events = stream(client, "physical", {"text": "胸口很痛，喘不上气，出了好多汗"}, token)
        pieces = deltas(events)
        assert pieces[0].startswith("⚠️") and "立即拨打 120" in pieces[0]
        assert "".join(pieces[1:]).startswith("先坐下休息")
        done = events[-1][1]
        assert done["content"] == "".join(pieces) and done["provider"] == "fake"
        assert stored_reply(client, token, done["session_id"])["content"] == done["content"]
        # The model is told the note is already there.
        assert "already shown above your reply" in upstream.last.body["messages"][0]["content"]
        # Not streamed: the same note at the top.
        reply = client.post("/api/v1/health/physical/chat", {"text": "My dad collapsed and isn't responding"},
                            token=token).json
        assert reply["content"].startswith("⚠️") and "Call 120 now" in reply["content"]


def test_offline_companion_does_not_repeat_the_red_flag_note(make_wm, serve):
    client = serve(make_wm()).client  # the shipped config: the offline provider answers
    token = client.register()["access_token"]
    for text in ["突然胸口痛，喘不上气", "Sudden chest pain and I can't breathe"]:
        content = client.post("/api/v1/health/physical/chat", {"text": text}, token=token).json["content"]
        assert content.startswith("⚠️") and content.count("120") == 1, content  # one note, not two
        assert "config.yaml" not in content  # and no setup notice under it
    # Chest pain alone is no red flag for the safety plugin: the companion's own note says 120.
    content = client.post("/api/v1/health/physical/chat", {"text": "胸口痛"}, token=token).json["content"]
    assert not content.startswith("⚠️") and "120" in content
    # Without the safety plugin the companion gives its own note.
    client = serve(make_wm({"plugins": {"disabled": ["safety"]}})).client
    token = client.register("bob")["access_token"]
    content = client.post("/api/v1/health/physical/chat", {"text": "突然胸口痛，喘不上气"}, token=token).json["content"]
    assert not content.startswith("⚠️") and "120" in content


def test_red_flags_only_in_the_agents_config_names(make_wm, serve):
    client = serve(make_wm({"safety": {"red_flag_agents": ["physical"]}})).client
    token = client.register()["access_token"]
    text = "Chest pain and I can't breathe"
    assert client.post("/api/v1/health/physical/chat", {"text": text}, token=token).json["content"].startswith("⚠️")
    assert not client.post("/api/v1/health/mental/chat", {"text": text}, token=token).json["content"].startswith("⚠️")


# -- disclaimer ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("when,expected", [("first", [True, False, False]), ("always", [True, True, True]),
                                           ("never", [False, False, False])])
def test_disclaimer_where_config_says(make_wm, serve, when, expected):
    with FakeOpenAI(reply="Drink some water.", chunker=chars(3)) as upstream:
        client = serve(make_wm(fake_only(upstream.url, safety={"disclaimer": when}))).client
        token = client.register()["access_token"]
        session, seen = None, []
        for i, text in enumerate(["How much water?", "And tea?", "Thanks"]):
            if i == 1:  # streamed: the disclaimer comes as the last delta before done
                events = stream(client, "physical", {"text": text, "session_id": session}, token)
                reply = events[-1][1]
                assert "".join(deltas(events)) == reply["content"]
            else:
                reply = client.post("/api/v1/health/physical/chat", {"text": text, "session_id": session},
                                    token=token).json
            session = reply["session_id"]
            assert reply["content"].startswith("Drink some water.")
            seen.append("not medical advice" in reply["content"])
            assert stored_reply(client, token, session)["content"] == reply["content"]
        assert seen == expected


def test_crisis_reply_has_no_disclaimer(client):
    token = client.register()["access_token"]
    content = client.post("/api/v1/health/mental/chat", {"text": "我想结束自己的生命"}, token=token).json["content"]
    assert "仅供参考" not in content


# -- the hooks, from a user's own plugin file -------------------------------------------------------------------


PLUGIN = '''
from wellmate import hookimpl

@hookimpl
def before_reply(user, agent, session, text, wm):
    if "secret" in text:
        return {"reply": "canned for " + user["username"], "provider": "my_plugin"}
    if "boom" in text:
        raise RuntimeError("a bug in a plugin")
    return {"system": "EXTRA SYSTEM TEXT", "prefix": "[pre] "}

@hookimpl
def after_reply(user, agent, session, text, reply, wm):
    return " [after:" + agent + ":" + str(len(reply)) + "]"
'''


def test_before_and_after_reply_hooks_from_a_plugin_file(make_wm, serve, tmp_path):
    (tmp_path / "plugins").mkdir(exist_ok=True)
    (tmp_path / "plugins" / "my_plugin.py").write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    with FakeOpenAI(reply="hello", chunker=chars(1)) as upstream:
        client = serve(make_wm(fake_only(upstream.url, safety={"disclaimer": "never"}))).client
        token = client.register("bob")["access_token"]
        reply = client.post("/api/v1/health/mental/chat", {"text": "hi"}, token=token).json
        assert reply["content"] == "[pre] hello [after:mental:11]"
        assert upstream.last.body["messages"][0]["content"].endswith("EXTRA SYSTEM TEXT")
        events = stream(client, "mental", {"text": "hi"}, token)
        pieces = deltas(events)
        assert pieces[0] == "[pre] " and pieces[-1] == " [after:mental:11]" and "".join(pieces[1:-1]) == "hello"
        assert events[-1][1]["content"] == "".join(pieces)
        requests = len(upstream.requests)
        canned = client.post("/api/v1/health/mental/chat", {"text": "my secret"}, token=token).json
        assert canned["content"] == "canned for bob [after:mental:14]" and canned["provider"] == "my_plugin"
        assert len(upstream.requests) == requests  # no provider was asked
        # A plugin's bug costs nothing but its own contribution.
        broken = client.post("/api/v1/health/mental/chat", {"text": "boom"}, token=token)
        assert broken.status == 200 and broken.json["content"].startswith("hello")
