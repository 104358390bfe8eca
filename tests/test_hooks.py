"""Every hook, exercised through a plugin of the tests' own (tests/plugins/, copied into the
plugins folder a Wellmate's config names, as a user drops a file there), and the rules plugins
live by: services found by name, built in the order lookups need, never attributes set on ``wm``;
``routes`` only adds routes. `test_every_hook_has_a_test_through_a_test_plugin` fails when a
hookspec has no ``test_hook_<name>`` here that loads a tests/plugins module implementing it
(as datasette checks its own hooks)."""

import ast
import inspect
import re
import shutil
import subprocess
import sys
import textwrap
import time

import bottle
import pytest
import yaml

import wellmate
from conftest import ROOT, assert_error, merge, shipped_config
from test_chat import stream
from reminders_world import world  # noqa: F401 (the fixture a test asks for)

TEST_PLUGINS = ROOT / "tests" / "plugins"


def use_plugin(tmp_path, name: str):
    """Put tests/plugins/<name>.py into the plugins folder of the config make_wm writes."""
    folder = tmp_path / "plugins"
    folder.mkdir(exist_ok=True)
    shutil.copy(TEST_PLUGINS / f"{name}.py", folder / f"{name}.py")


def chat(client, token, text, agent="physical"):
    r = client.post(f"/api/v1/health/{agent}/chat", {"text": text}, token=token)
    assert r.status == 200, r.text
    return r.json


# -- the rules ---------------------------------------------------------------------------------


def test_every_hook_has_a_test_through_a_test_plugin():
    tree = ast.parse((ROOT / "tests" / "test_hooks.py").read_text(encoding="utf-8"))
    tests = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    missing = []
    for hook in sorted(wellmate._hook_names()):
        test = tests.get(f"test_hook_{hook}")
        used = [call.args[1].value for call in ast.walk(test) if isinstance(call, ast.Call)
                and getattr(call.func, "id", None) == "use_plugin" and isinstance(call.args[1], ast.Constant)] if test else []
        implemented = any(re.search(rf"@hookimpl[^\n]*\ndef {hook}\(", (TEST_PLUGINS / f"{name}.py").read_text(encoding="utf-8"))
                          for name in used)
        if not implemented:
            missing.append(hook)
    assert not missing, (f"hooks without a test_hook_<name> in tests/test_hooks.py that loads a tests/plugins "
                         f"module implementing them: {missing}")


def test_no_plugin_sets_attributes_on_wm(make_wm, serve, tmp_path):
    """A plugin keeps what it builds in a service: the Wellmate's attributes are its own code's."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(wellmate.Wellmate)))
    targets = [t for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.AnnAssign))
               for t in (node.targets if isinstance(node, ast.Assign) else [node.target])]
    own = {a.attr for t in targets for a in ast.walk(t)
           if isinstance(a, ast.Attribute) and getattr(a.value, "id", None) == "self"}
    use_plugin(tmp_path, "probe")
    wm = make_wm({"reminders": {"tick_seconds": 0.05}}, start=True)
    client = serve(wm).client
    token = client.register()["access_token"]
    chat(client, token, "我今天有点累")
    client.post("/api/v1/health/data", {"type": "weight", "value": 70}, token=token)
    wm.close()
    assert set(vars(wm)) - own == set()
    # What plugins used to set on wm (wm.chat, wm.records, ...) are services now.
    for name in ("auth", "chat", "records", "reminders", "safety", "scheduler", "wechat", "webhook", "wechat_subscribe"):
        assert wm.service(name) is not None, name


def test_no_plugin_imports_another_plugins_internals():
    """What two plugins share lives in a library module (plugins/_x.py) or goes through
    wm.service: a plugin imports no `_private` name of another plugin, no plugin module whole
    (whose hooks it could then call), and calls none of another plugin's hook functions
    (provider_offline took safety's `_both` and called its config_schema())."""
    plugins = ROOT / "plugins"
    modules = {p.stem: ast.parse(p.read_text(encoding="utf-8")) for p in plugins.glob("*.py")}
    hooks = {name: {node.name for node in tree.body if isinstance(node, ast.FunctionDef)
                    and any("hookimpl" in ast.unparse(d) for d in node.decorator_list)}
             for name, tree in modules.items()}
    reaches = []
    for name, tree in sorted(modules.items()):
        if name.startswith("_"):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("wellmate_plugins"):
                continue
            other = node.module.partition(".")[2]
            if not other:  # from wellmate_plugins import x: only a library module
                reaches += [f"{name}: imports plugin {a.name}" for a in node.names if not a.name.startswith("_")]
            elif not other.startswith("_") and other != name:
                reaches += [f"{name}: {other}.{a.name}" for a in node.names
                            if a.name.startswith("_") or a.name in hooks.get(other, ())]
    assert not reaches, f"plugins reaching into another plugin's internals: {reaches}"


def test_routes_only_adds_routes(make_wm):
    """Each plugin's routes hook adds routes and nothing else: delivery_webhook and
    delivery_wechat, which have no routes, no longer implement it to set themselves up. (Compat
    serves routes only for a dialect that config turns on: two are, here.)"""
    wm = make_wm({"compat": {"miniprogram": {"key": "k" * 24}, "medical": {"enabled": True}}})
    before = dict(vars(wm))
    for impl in wm.pm.hook.routes.get_hookimpls():
        app = bottle.Bottle()
        impl.function(**{name: {"app": app, "wm": wm}[name] for name in impl.argnames})
        assert app.routes, f"plugin {impl.plugin_name} implements routes but adds none"
    assert vars(wm) == before
    assert not {"delivery_webhook", "delivery_wechat"} & {i.plugin_name for i in wm.pm.hook.routes.get_hookimpls()}


CYCLE = textwrap.dedent('''
    from wellmate import hookimpl

    @hookimpl
    def register_services(register):
        register("eggs", lambda wm: ("eggs", wm.service("hens")))
        register("hens", lambda wm: ("hens", wm.service("eggs")))
''')


def test_a_cycle_of_services_stops_startup_naming_it(tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "farm.py").write_text(CYCLE)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(shipped_config(tmp_path), allow_unicode=True), encoding="utf-8")
    with pytest.raises(wellmate.ConfigError) as e:
        wellmate.create_app(path)
    assert str(e.value).startswith("services: eggs -> hens -> eggs: each needs the next")


def test_a_disabled_plugins_service_is_none_and_its_users_say_so(make_wm, serve):
    wm = make_wm({"plugins": {"disabled": ["chat"]}})
    assert wm.service("chat") is None and wm.service("records") is not None
    client = serve(wm).client
    token = client.register()["access_token"]
    r = client.post("/api/v1/reminders", {"title": "x", "channels": ["inapp"], "rule": {"kind": "daily", "times": ["10:00"]}},
                    token=token)
    assert r.status == 400 and r.json["error"]["message"] == (
        "channels: inapp: chat is switched off on this server (the chat plugin is disabled)")


# -- one test per hook -------------------------------------------------------------------------


def test_hook_config_schema(make_wm, tmp_path):
    use_plugin(tmp_path, "probe")
    wm = make_wm({"probe": {"greeting": "你好", "greting": "typo"}})
    assert wm.config["probe"] == {"greeting": "你好", "suffix": ""}
    assert "config.yaml: probe.greting: unknown key; did you mean 'greeting'?" in wm.warnings


def test_hook_register_services(make_wm, serve, tmp_path):
    use_plugin(tmp_path, "probe")
    wm = make_wm()
    probe = wm.service("probe")
    # "probe" was registered before "probe_clock" and needs it: built on lookup, in the order needed.
    assert probe.clock is wm.service("probe_clock") and wm.service("probe") is probe
    assert wm.service("no_such_service") is None
    assert make_wm({"plugins": {"disabled": ["probe"]}}).service("probe") is None
    client = serve(wm).client
    token = client.register()["access_token"]
    assert client.get("/api/v1/probe", token=token).json["clock"] == "Clock"


def test_hook_register_collections(make_wm, serve, tmp_path):
    use_plugin(tmp_path, "probe")
    wm = make_wm()
    assert wm.collections["probe_notes"].owner == "plugin probe"
    client = serve(wm).client
    alice = client.register("alice")["access_token"]
    bob = client.register("bob")["access_token"]
    for text in ("first", "second"):
        assert client.post("/api/v1/probe/notes", {"text": text}, token=alice).status == 200
    client.post("/api/v1/probe/notes", {"text": "bob's"}, token=bob)
    assert client.get("/api/v1/probe/notes", token=alice).json["items"] == ["second", "first"]
    # Only the lookups declared are built: any other is refused, never a scan.
    with pytest.raises(ValueError, match="no index by"):
        wm.storage.find("probe_notes", {"text": "first"})
    wm.close()
    # Kept on disk: a new Wellmate on the same data folder finds them by the same index.
    again = serve(make_wm()).client
    r = again.post("/api/v1/auth/login", {"username": "alice", "password": "correct horse"})
    assert again.get("/api/v1/probe/notes", token=r.json["access_token"]).json["items"] == ["second", "first"]
    # Without the plugin, its collection is not loaded (its file stays for when it comes back).
    assert "probe_notes" not in make_wm({"plugins": {"disabled": ["probe"]}}).collections


def test_hook_export_user_data(make_wm, serve, tmp_path):
    use_plugin(tmp_path, "probe")
    client = serve(make_wm()).client
    alice = client.register("alice")["access_token"]
    bob = client.register("bob")["access_token"]
    for text in ("one", "two", "three"):
        client.post("/api/v1/probe/notes", {"text": text}, token=alice)
    client.post("/api/v1/probe/notes", {"text": "bob's"}, token=bob)
    r = client.get("/api/v1/users/export", token=alice)
    assert r.status == 200 and r.headers.get("Transfer-Encoding") == "chunked"
    export = r.json
    # The plugin's section, read from its generator, after the built-in ones.
    assert list(export)[-6:] == ["profile", "sessions", "records", "reminders", "uploads", "probe_notes"]
    assert [note["text"] for note in export["probe_notes"]] == ["one", "two", "three"]


def test_hook_register_storage(make_wm, serve, tmp_path):
    use_plugin(tmp_path, "probe")
    client = serve(make_wm({"storage": {"backend": "probe"}})).client
    assert client.get("/api/v1/test/health").json["storage"] == "probe"
    token = client.register()["access_token"]
    assert client.get("/api/v1/users/profile", token=token).json["username"] == "alice"


def test_hook_register_providers(make_wm, serve, tmp_path):
    use_plugin(tmp_path, "probe")
    client = serve(make_wm({"providers": {"echo": {"plugin": "echo", "prefix": ">> "}},
                            "agents": {"physical": {"providers": ["echo", "offline"]}}})).client
    token = client.register()["access_token"]
    answer = chat(client, token, "hi there")
    assert answer["content"].startswith(">> hi there") and answer["provider"] == "echo"
    assert chat(client, token, "fail")["provider"] == "offline"  # the chain went on


def test_a_provider_that_crashes_is_a_failed_provider_not_a_500(make_wm, serve, tmp_path):
    """A provider's bug (a KeyError on an upstream body it did not expect) before any text: the
    next provider answers, plain and streamed, as after its ProviderError."""
    use_plugin(tmp_path, "probe")
    client = serve(make_wm({"providers": {"echo": {"plugin": "echo"}},
                            "agents": {"physical": {"providers": ["echo", "offline"]}}})).client
    token = client.register()["access_token"]
    assert chat(client, token, "crash")["provider"] == "offline"
    events = stream(client, "physical", {"text": "crash"}, token)
    assert events[-1][0] == "done" and events[-1][1]["provider"] == "offline"


def test_providers_get_the_turn_plain_and_streamed(make_wm, serve, tmp_path):
    """reply(messages, turn) and stream(messages, turn): whose turn, which session, the flags
    before_reply set, so a platform that keeps its own conversations can key them."""
    use_plugin(tmp_path, "probe")
    wm = make_wm({"providers": {"echo": {"plugin": "echo", "prefix": ">> "}},
                  "agents": {"physical": {"providers": ["echo"]}}})
    client = serve(wm).client
    alice, bob = client.register("alice")["access_token"], client.register("bob")["access_token"]
    first = chat(client, alice, "probe hello")
    assert first["content"].startswith("[probe] >> probe hello (alice, curious)")  # the probe's prefix, then the echo
    again = client.post("/api/v1/health/physical/chat", {"text": "and again", "session_id": first["session_id"]},
                        token=alice).json
    events = stream(client, "physical", {"text": "streamed"}, bob)
    done = events[-1][1]
    assert done["content"].startswith(">> streamed (bob, calm)")  # the default stream passes the turn on
    turns = [turn for who, turn in wm.service("probe").seen if who == "echo"]
    assert [(t.user["username"], t.session["id"], t.message_id) for t in turns] == [
        ("alice", first["session_id"], first["message_id"]), ("alice", first["session_id"], again["message_id"]),
        ("bob", done["session_id"], done["message_id"])]
    assert turns[0].agent == "physical" and turns[0].text == "probe hello" and turns[0].attachments == []
    stored = wm.storage.list_messages(first["session_id"], limit=10)[0]
    assert turns[1].user_message_id == [m["id"] for m in stored if m["content"] == "and again"][0]


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize("plugin", ["parrot", "mynah", "macaw"])
def test_a_provider_written_before_turns_keeps_working(make_wm, serve, tmp_path, plugin, streamed):
    """reply(self, messages) / stream(self, messages), as user plugins wrote them: called without the
    turn (mynah has no stream of its own: the default one calls its reply so)."""
    use_plugin(tmp_path, "probe")
    client = serve(make_wm({"providers": {plugin: {"plugin": plugin}},
                            "agents": {"physical": {"providers": [plugin]}}})).client
    token = client.register()["access_token"]
    answer = stream(client, "physical", {"text": "hi"}, token)[-1][1] if streamed else chat(client, token, "hi")
    assert answer["content"].startswith(f"{plugin}: hi") and answer["provider"] == plugin
    if plugin == "macaw":  # its own option keeps its default: the turn went to no parameter
        assert answer["content"].startswith("macaw: hi at 0.7"), answer["content"]


def test_hook_register_taggers(make_wm, serve, tmp_path):
    use_plugin(tmp_path, "probe")
    client = serve(make_wm({"emotion": {"tagger": "shout"}})).client
    token = client.register()["access_token"]
    session = chat(client, token, "WHY IS MY KNEE SORE")["session_id"]
    messages = client.get(f"/api/v1/health/sessions/{session}", token=token).json["messages"]["items"]
    assert [m["emotion"] for m in messages if m["role"] == "user"] == ["angry"]


def test_hook_register_record_types(make_wm, serve, tmp_path):
    use_plugin(tmp_path, "probe")
    client = serve(make_wm()).client
    token = client.register()["access_token"]
    r = client.post("/api/v1/health/data", {"type": "waist", "value": 32, "unit": "in"}, token=token)
    assert r.status == 201 and r.json["value"] == 81.3 and r.json["unit"] == "cm"
    assert "waist" in [t["name"] for t in client.get("/api/v1/health/data/types").json["items"]]


def test_hook_routes(make_wm, serve, tmp_path):
    use_plugin(tmp_path, "probe")
    client = serve(make_wm({"probe": {"greeting": "你好"}})).client
    assert client.get("/api/v1/probe").status == 401
    token = client.register()["access_token"]
    assert client.get("/api/v1/probe", token=token).json["greeting"] == "你好"
    r = client.get("/api/v1/probe/refuse")
    assert r.status == 418 and r.json["error"]["code"] == "probe_refuses"


def test_hook_authenticate(make_wm, serve, tmp_path):
    """Another way in, by a plugin file alone: X-Test-User (tests/plugins/header_auth.py)."""
    use_plugin(tmp_path, "header_auth")
    wm = make_wm()
    client = serve(wm).client
    pair = client.register("alice")
    as_alice = {"X-Test-User": "alice"}
    # Every route's one call, wm.require_user(), takes the plugin's answer: no token needed.
    assert client.get("/api/v1/users/profile", headers=as_alice).json["uuid"] == pair["user"]["uuid"]
    r = client.post("/api/v1/health/data", {"type": "weight", "value": 70}, headers=as_alice)
    assert r.status == 201, r.text
    assert chat_as(client, as_alice, "我今天有点累")["content"]
    # The bearer tokens of the auth plugin still work beside it, and nobody answering is a 401.
    assert client.get("/api/v1/users/profile", token=pair["access_token"]).status == 200
    assert_error(client.get("/api/v1/users/profile"), 401, "unauthorized")
    # Credentials the plugin knows and refuses are refused, whatever else the request carries.
    r = client.get("/api/v1/users/profile", token=pair["access_token"], headers={"X-Test-User": "mallory"})
    assert (r.status, r.json["error"]["code"]) == (401, "unknown_test_user")
    # A disabled account is refused whoever vouches for it.
    wm.service("accounts").update(pair["user"]["uuid"], {"disabled": True})
    r = client.get("/api/v1/users/profile", headers=as_alice)
    assert (r.status, r.json["error"]["code"]) == (401, "invalid_token")


def test_bearer_tokens_are_a_plugin_the_header_can_replace(make_wm, serve, tmp_path):
    """With the auth plugin and those that sign in with it disabled, the header plugin alone signs
    users in (the accounts plugin keeps the users, without its password routes); auth disabled
    alone stops startup naming what needs it."""
    use_plugin(tmp_path, "header_auth")
    needs = r"plugins.disabled: the (\w+) plugin needs the auth plugin \(passwords and tokens\); disable \1 too, or enable auth"
    with pytest.raises(wellmate.ConfigError, match=needs):
        make_wm({"plugins": {"disabled": ["auth"]}})
    wm = make_wm({"plugins": {"disabled": ["auth", "privacy", "wechat", "admin"]}})
    assert wm.service("auth") is None
    wm.service("accounts").create({"id": wellmate.new_id(), "username": "alice", "role": "user", "settings": {},
                                   "created_at": wellmate.now_iso()})
    client = serve(wm).client
    assert client.post("/api/v1/auth/login", {"username": "alice", "password": "correct horse"}).status == 404
    r = client.put("/api/v1/users/settings", {"full_name": "Alice"}, headers={"X-Test-User": "alice"})
    assert r.status == 200 and r.json["full_name"] == "Alice"
    assert chat_as(client, {"X-Test-User": "alice"}, "你好")["content"]
    assert client.get("/api/v1/health/sessions", token="anything").status == 401


def test_hook_authentication_hint(make_wm, serve, tmp_path):
    """A request nobody signed in is told every way in the plugins offer, and gets the challenge
    of each that is an HTTP authentication scheme; the core names none of them."""
    use_plugin(tmp_path, "header_auth")
    client = serve(make_wm()).client
    r = client.get("/api/v1/users/profile")
    assert (r.status, r.json["error"]) == (401, {"code": "unauthorized", "message": (
        "Send 'X-Test-User: <username>' or 'Authorization: Bearer <access_token>' (from /auth/login).")})
    assert challenge(r) == "Bearer"
    # A bearer token the auth plugin refuses: its own 401, with its challenge (RFC 6750).
    r = client.get("/api/v1/users/profile", token="garbage")
    assert (r.status, r.json["error"]["code"], challenge(r)) == (
        401, "invalid_token", 'Bearer error="invalid_token"')
    # Without the auth plugin, no word of bearer tokens and no challenge: only the header's way in.
    client = serve(make_wm({"plugins": {"disabled": ["auth", "privacy", "wechat", "admin"]}})).client
    r = client.get("/api/v1/users/profile")
    assert (r.status, r.json["error"]) == (401, {"code": "unauthorized", "message": "Send 'X-Test-User: <username>'."})
    assert challenge(r) is None


def challenge(r) -> str | None:
    """The response's WWW-Authenticate header (Bottle spells it Www-Authenticate: names are
    case-insensitive)."""
    return {name.lower(): value for name, value in r.headers.items()}.get("www-authenticate")


def chat_as(client, headers, text, agent="physical"):
    r = client.post(f"/api/v1/health/{agent}/chat", {"text": text}, headers=headers)
    assert r.status == 200, r.text
    return r.json


def test_hook_startup(make_wm, tmp_path):
    use_plugin(tmp_path, "probe")
    wm = make_wm()
    assert wm.service("probe").events == []
    wm.start()
    assert wm.service("probe").events == ["startup"]


def test_hook_shutdown(make_wm, tmp_path):
    use_plugin(tmp_path, "probe")
    wm = make_wm(start=True)
    wm.close()
    wm.close()  # once only
    assert (wm.data_dir / "probe-shutdown").read_text() == "startup,shutdown"


def test_hook_prompt_context(make_wm, tmp_path):
    use_plugin(tmp_path, "probe")
    wm = make_wm()
    (tmp_path / "prompts" / "physical.txt").write_text("You talk with $probe_name.", encoding="utf-8")
    user = {"id": "u1", "username": "alice", "settings": {}}
    assert wm.prompt_values(user, "physical")["probe_name"] == "alice@physical"
    assert wm.prompts.render("prompts/physical.txt", wm.prompt_values(user, "physical")) == "You talk with alice@physical."


def test_hook_before_reply(make_wm, serve, tmp_path):
    use_plugin(tmp_path, "probe")
    wm = make_wm()
    client = serve(wm).client
    token = client.register()["access_token"]
    answer = chat(client, token, "probe, answer yourself")  # the built-in disclaimer follows: a suffix
    assert answer["content"].startswith("the probe answered\n\n") and answer["provider"] == "probe"
    assert chat(client, token, "probe how are you")["content"].startswith("[probe] ")
    assert [t for t in wm.service("probe").turns if t[0] == "before_reply"] == [
        ("before_reply", "physical", "probe, answer yourself"), ("before_reply", "physical", "probe how are you")]
    [(_, turn), _] = [seen for seen in wm.service("probe").seen if seen[0] == "before_reply"]
    assert turn.agent == "physical" and turn.text == "probe, answer yourself" and turn.user["id"] == turn.session["user_id"]
    assert turn.message_id == answer["message_id"] and turn.session["id"] == answer["session_id"]


def test_hook_before_reply_sources(make_wm, serve, tmp_path):
    """A before_reply's ``sources`` go with the reply: its JSON, the stream's done, the stored
    message; once each. A canned reply from another plugin (safety's crisis reply) drops them."""
    use_plugin(tmp_path, "probe")
    wm = make_wm()
    client = serve(wm).client
    token = client.register()["access_token"]
    cited = [{"id": "probe-page", "title": "The probe's page"}]
    answer = chat(client, token, "probe cite your page")
    assert answer["sources"] == cited and answer["provider"] == "offline"
    stored = client.get(f"/api/v1/health/sessions/{answer['session_id']}", token=token).json["messages"]["items"]
    assert stored[-1]["sources"] == cited and "sources" not in stored[0]  # the user's message cites nothing
    events = stream(client, "physical", {"text": "probe cite it again"}, token)
    assert events[-1][0] == "done" and events[-1][1]["sources"] == cited
    assert chat(client, token, "probe how are you")["sources"] == []
    assert chat(client, token, "probe cite: I want to kill myself")["sources"] == []  # safety's reply read nothing


def test_hook_after_reply(make_wm, serve, tmp_path):
    use_plugin(tmp_path, "probe")
    wm = make_wm({"probe": {"suffix": "(checked by the probe)"}})
    client = serve(wm).client
    token = client.register()["access_token"]
    answer = chat(client, token, "我膝盖疼")
    assert answer["content"].endswith("\n\n(checked by the probe)")
    messages = client.get(f"/api/v1/health/sessions/{answer['session_id']}", token=token).json["messages"]["items"]
    assert messages[-1]["content"] == answer["content"]  # stored as sent
    [(_, text, reply)] = [t for t in wm.service("probe").turns if t[0] == "after_reply"]
    assert text == "我膝盖疼" and not reply.endswith("(checked by the probe)")
    # The turn, with the flags before_reply hooks set (the probe's, the safety plugin's) and the chat's
    # provider that answered.
    [(_, turn)] = [seen for seen in wm.service("probe").seen if seen[0] == "after_reply"]
    assert turn.message_id == answer["message_id"] and turn.text == "我膝盖疼"
    assert turn.flags == {"probe": "calm", "crisis": False, "check_in": False, "crisis_earlier": False, "notes_shown": [],
                          "provider": "offline", "risk_word": False, "after_reminder": False}


def test_hook_cli(tmp_path):
    use_plugin(tmp_path, "probe")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(merge(shipped_config(tmp_path), {"probe": {"greeting": "hello there"}})), encoding="utf-8")
    result = subprocess.run([sys.executable, str(ROOT / "wellmate.py"), "--config", str(path), "probe", "--shout"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "HELLO THERE"


def test_hook_register_channels(world, tmp_path):  # noqa: F811
    use_plugin(tmp_path, "probe")
    w = world("2026-11-20T01:00:00Z")
    token = w.user("alice")
    rule = {"kind": "daily", "times": ["10:00"]}
    assert w.create(token, title="喝水", channels=["probe"], rule=rule)["channels"] == ["probe"]
    other = w.user("bob", full_name="Unreachable")
    r = w.client.post("/api/v1/reminders", {"title": "x", "channels": ["probe"], "rule": rule}, token=other)
    assert r.status == 400 and r.json["error"] == {"code": "channel_unavailable", "message": "channels: probe: no probe for you"}


def test_hook_deliver_reminder(world, tmp_path):  # noqa: F811
    use_plugin(tmp_path, "probe")
    w = world("2026-11-20T01:00:00Z")
    token = w.user("alice")
    made = w.create(token, title="喝水", text="喝一杯水", channels=["probe", "inapp"], rule={"kind": "daily", "times": ["10:00"]})
    w.tick("2026-11-20T02:00:05Z")
    assert w.wm.service("probe").deliveries == [("probe", "喝一杯水")]  # only its own channel
    deliveries = {d["channel"]: d for d in w.deliveries(token, made["id"])}
    assert deliveries["probe"]["status"] == "sent" and deliveries["probe"]["detail"].startswith("probe got 喝水 for ")


def test_hook_user_changed(make_wm, serve, tmp_path):
    """Every change to an account, by whichever plugin makes it, reaches the plugins that follow
    accounts, with the user as it was: created (register), changed (settings, an admin's disable)."""
    use_plugin(tmp_path, "user_watch")
    wm = make_wm()
    client = serve(wm).client
    watch = wm.service("user_watch")
    alice = client.register("Alice")
    [(before, user)] = watch.changes
    assert before is None and user["id"] == alice["user"]["uuid"] and user["username"] == "Alice"
    assert "username_key" not in user  # the accounts plugin's own bookkeeping stays its own
    r = client.put("/api/v1/users/settings", {"settings": {"timezone": "Asia/Shanghai"}}, token=alice["access_token"])
    assert r.status == 200, r.text
    before, user = watch.changes[-1]
    assert before["settings"] == {} and user["settings"] == {"timezone": "Asia/Shanghai"}
    seen = len(watch.changes)
    r = client.put("/api/v1/users/settings", {"settings": {"timezone": "Asia/Shanghai"}}, token=alice["access_token"])
    assert r.status == 200 and len(watch.changes) == seen  # nothing changed: nobody is told
    boss = client.register("boss")
    wm.service("accounts").update(boss["user"]["uuid"], {"role": "admin"})
    assert watch.changes[-1][1]["role"] == "admin"
    r = client.post(f"/api/v1/admin/users/{alice['user']['uuid']}/disable", token=boss["access_token"])
    assert r.status == 200, r.text
    before, user = watch.changes[-1]
    assert (user["id"], before["disabled"], user["disabled"]) == (alice["user"]["uuid"], False, True)
    assert [user["username"] for before, user in watch.changes if before is None] == ["Alice", "boss"]
    assert wm.storage.count("user_watch_notes") == 2  # what the plugin keeps for each new user


def test_hook_delete_user_data(make_wm, serve, tmp_path):
    """Deleting an account has every plugin delete what it keeps for the user, then the account;
    a delete that dies half-way leaves the account, and deleting again finishes the job."""
    use_plugin(tmp_path, "user_watch")
    wm = make_wm()
    client = serve(wm).client
    watch = wm.service("user_watch")
    alice, bob = client.register("alice"), client.register("bob")
    alice_id, token = alice["user"]["uuid"], alice["access_token"]
    session_id = chat(client, token, "我膝盖疼")["session_id"]

    watch.fail_deletes = True
    assert client.delete("/api/v1/users/me", {"password": "correct horse"}, token=token).status == 500
    assert watch.deleted == [alice_id] and wm.storage.count("user_watch_notes", {"user_id": alice_id}) == 0
    # The account is still there and still works: the user (or a retry) can delete it again.
    assert client.get("/api/v1/users/profile", token=token).status == 200
    watch.fail_deletes = False
    assert client.delete("/api/v1/users/me", {"password": "correct horse"}, token=token).status == 204
    assert watch.deleted == [alice_id, alice_id]
    assert wm.service("accounts").get(alice_id) is None
    assert wm.storage.get("sessions", session_id) is None and wm.storage.list_messages(session_id) == ([], None)
    assert client.post("/api/v1/auth/refresh", {"refresh_token": alice["refresh_token"]}).status == 401
    assert wm.storage.count("refresh_tokens", {"user_id": alice_id}) == 0  # the auth plugin's own part
    # Bob's note, tokens and login are untouched.
    assert wm.storage.count("user_watch_notes", {"user_id": bob["user"]["uuid"]}) == 1
    assert client.post("/api/v1/auth/refresh", {"refresh_token": bob["refresh_token"]}).status == 200


# -- the observing hooks (metrics, request logs) -------------------------------------------------


def test_hook_request_finished(make_wm, serve, tmp_path):
    """Once per answered request, a stream when it has ended, a 404 and a 500 too: the route's
    template (never the path), the status, whom require_user signed in, the X-Request-Id."""
    use_plugin(tmp_path, "observer")
    wm = make_wm()
    client = serve(wm).client
    token = client.register()["access_token"]
    answer = chat(client, token, "我膝盖疼")
    r = client.get(f"/api/v1/health/sessions/{answer['session_id']}?limit=5", token=token)
    streamed = client.post("/api/v1/health/physical/chat/stream", {"text": "还疼"}, token=token,
                           headers={"X-Request-Id": "client-chosen-id-1"})
    missing = client.get("/api/v1/no/such/thing")
    crashed = client.get("/api/v1/observer/crash")
    assert (r.status, streamed.status, missing.status, crashed.status) == (200, 200, 404, 500)
    # A JSON answer is reported before it is sent; a stream once its body is closed, which
    # waitress does just after sending the last chunk: wait for that.
    deadline = time.monotonic() + 30
    while not any(request.id == "client-chosen-id-1" for request in wm.service("observer").requests):
        assert time.monotonic() < deadline, "the stream's request was never reported"
        time.sleep(0.01)
    seen = {request.id: request for request in wm.service("observer").requests}
    session = seen[r.headers["X-Request-Id"]]
    assert session.route == "/api/v1/health/sessions/<session_id>" and session.method == "GET"
    assert session.status == 200 and session.seconds > 0 and session.client == "127.0.0.1"
    assert session.user_id == wm.service("accounts").find_by_username("alice")["id"]
    assert session.time.endswith("Z")
    stream_request = seen["client-chosen-id-1"]
    assert stream_request.route == "/api/v1/health/<agent_name>/chat/stream" and stream_request.status == 200
    assert (seen[missing.headers["X-Request-Id"]].route, seen[missing.headers["X-Request-Id"]].status) == (None, 404)
    assert seen[crashed.headers["X-Request-Id"]].status == 500
    assert seen[crashed.headers["X-Request-Id"]].user_id is None


def test_hook_turn_finished(make_wm, serve, tmp_path):
    """Once per turn, plain or streamed: how it ended, what answered, each provider asked."""
    use_plugin(tmp_path, "probe")
    use_plugin(tmp_path, "observer")
    wm = make_wm({"providers": {"echo": {"plugin": "echo"}},
                  "agents": {"physical": {"providers": ["echo", "offline"]}}})
    client = serve(wm).client
    token = client.register()["access_token"]
    chat(client, token, "fail")  # the echo provider fails on it: offline answers
    stream(client, "physical", {"text": "我膝盖疼"}, token)
    [(plain_turn, plain), (streamed_turn, streamed)] = wm.service("observer").turns
    assert plain_turn.text == "fail" and plain_turn.agent == "physical"
    assert (plain.status, plain.provider, plain.streamed) == ("complete", "offline", False)
    assert [(a.provider, a.error is None, a.first_delta) for a in plain.attempts] == [
        ("echo", False, None), ("offline", True, None)]
    assert "fail" in plain.attempts[0].error and plain.seconds >= sum(a.seconds for a in plain.attempts)
    assert (streamed.status, streamed.provider, streamed.streamed) == ("complete", "echo", True)
    [attempt] = streamed.attempts
    assert attempt.error is None and 0 <= attempt.first_delta <= attempt.seconds
    assert streamed_turn.text == "我膝盖疼"


def test_hook_reminder_delivered(world, tmp_path):  # noqa: F811
    use_plugin(tmp_path, "observer")
    w = world("2026-11-20T01:00:00Z")
    token = w.user("alice")
    made = w.create(token, title="喝水", text="喝一杯水", channels=["inapp"], rule={"kind": "daily", "times": ["10:00"]})
    w.tick("2026-11-20T02:00:05Z")
    [(reminder_id, delivery)] = w.wm.service("observer").deliveries
    assert reminder_id == made["id"] and (delivery["channel"], delivery["status"]) == ("inapp", "sent")
    assert delivery == {**w.deliveries(token, made["id"])[0], **delivery}


def test_hook_storage_operation(make_wm, serve, tmp_path):
    """Every storage call, timed, with its collection ("messages": the chat log); the storage is
    timed only when a plugin implements the hook, and it is still the backend underneath."""
    use_plugin(tmp_path, "observer")
    wm = make_wm()
    client = serve(wm).client
    token = client.register()["access_token"]
    observer = wm.service("observer")
    observer.storage.clear()
    chat(client, token, "我膝盖疼")
    operations = {(operation, collection) for operation, collection, _ in observer.storage}
    assert {("append_message", "messages"), ("list_messages", "messages"), ("get", "sessions")} <= operations
    assert all(seconds >= 0 for _, _, seconds in observer.storage)
    assert type(wm.storage).__name__ == "TimedStorage" and wm.storage.name == "files"
    assert wm.storage.stats() == wm.storage.backend.stats()
