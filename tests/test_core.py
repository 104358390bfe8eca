"""The core: config validation, environment variables, plugin loading, prompts, the check command."""

import os
import subprocess
import sys
import textwrap
import time

import pytest
import yaml

import wellmate
from conftest import ROOT, ServerProcess, free_port, merge, shipped_config
from wellmate_plugins._files import WatchedYaml

HELLO_PLUGIN = textwrap.dedent('''
    from wellmate import hookimpl

    @hookimpl
    def routes(app, wm):
        @app.get("/api/v1/hello")
        def hello():
            return {"hello": "world", "agents": sorted(wm.config["agents"])}
''')


def write_config(tmp_path, overrides=None, text=None):
    path = tmp_path / "config.yaml"
    if text is None:
        text = yaml.safe_dump(merge(shipped_config(tmp_path), overrides or {}), allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    return path


def config_error(tmp_path, overrides=None, text=None) -> str:
    with pytest.raises(wellmate.ConfigError) as e:
        wellmate.create_app(write_config(tmp_path, overrides, text))
    return str(e.value)


def test_shipped_config_builds(make_wm):
    wm = make_wm()
    assert wm.config["server"]["port"] == 5000
    assert set(wm.config["agents"]) == {"physical", "mental"}
    assert wm.warnings == []


@pytest.mark.parametrize("overrides, expected", [
    ({"server": {"port": "abc"}}, 'config.yaml: server.port: must be an integer 1-65535, got "abc"'),
    ({"server": {"port": 70000}}, "server.port: must be an integer 1-65535, got 70000"),
    ({"server": {"threads": True}}, "server.threads: must be an integer 1-512, got true"),
    ({"storage": {"backend": "mongo"}}, "storage.backend: unknown storage backend 'mongo'; known: files, tinydb"),
    ({"agents": {"physical": {"providers": ["locl"]}}}, "agents.physical.providers: 'locl' is not defined under providers:; did you mean 'local'?"),
    ({"agents": {"mental": {"prompt": "prompts/nope.txt"}}}, "agents.mental.prompt: file prompts/nope.txt not found"),
    ({"providers": {"x": {"model": "m"}}}, "providers.x: needs 'plugin: NAME'"),
    ({"providers": {"x": {"plugin": "openia"}}}, "providers.x.plugin: unknown provider plugin 'openia'; did you mean 'openai'?"),
    ({"logging": {"level": "LOUD"}}, "logging.level: must be one of DEBUG, INFO, WARNING, ERROR"),
    ({"server": "big"}, "config.yaml: server: must be a mapping of keys"),
])
def test_bad_values_name_the_key(tmp_path, overrides, expected):
    assert expected in config_error(tmp_path, overrides)


def test_invalid_yaml_names_the_line(tmp_path):
    message = config_error(tmp_path, text="server:\n  port: [5000\n")
    assert "config.yaml: not valid YAML at line" in message


def test_unknown_keys_warn_with_suggestion(make_wm):
    wm = make_wm({"server": {"thread": 4}, "storag": {"path": "x"}})
    assert "config.yaml: server.thread: unknown key; did you mean 'threads'?" in wm.warnings
    assert "config.yaml: unknown section 'storag'; did you mean 'storage'?" in wm.warnings


def test_a_disabled_plugins_section_is_not_unknown(make_wm):
    """`check` called the shipped library: section unknown once the library plugin was disabled."""
    wm = make_wm({"plugins": {"disabled": ["library"]}, "library": {"passages": 2}, "libary": {}})
    assert not any("'library'" in w for w in wm.warnings), wm.warnings
    assert any("unknown section 'libary'" in w for w in wm.warnings), wm.warnings


def test_environment_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("WM_TEST_PORT", "5123")
    monkeypatch.delenv("WM_TEST_MISSING", raising=False)
    wm = wellmate.create_app(write_config(tmp_path, {"server": {"port": "${WM_TEST_PORT}",
                                                                "host": "${WM_TEST_MISSING:-127.0.0.2}"}}))
    try:
        assert wm.config["server"]["port"] == 5123  # typed: one ${VAR} alone becomes an int
        assert wm.config["server"]["host"] == "127.0.0.2"
    finally:
        wm.close()
    message = config_error(tmp_path, {"auth": {"secret": "${WM_TEST_MISSING}"}})
    assert "auth.secret: environment variable WM_TEST_MISSING is not set" in message


def test_generated_secret_is_kept_and_private(make_wm):
    wm = make_wm({"auth": {"secret": ""}})
    path = wm.data_dir / "secret.key"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    first = wm.service("auth").tokens.secret
    assert len(first) >= 32
    assert make_wm({"auth": {"secret": ""}}).service("auth").tokens.secret == first


def test_user_plugin_route_served_and_disabled(make_wm, serve, tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "hello.py").write_text(HELLO_PLUGIN)
    r = serve(make_wm()).client.get("/api/v1/hello")
    assert r.status == 200 and r.json == {"hello": "world", "agents": ["mental", "physical"]}
    r = serve(make_wm({"plugins": {"disabled": ["hello"]}})).client.get("/api/v1/hello")
    assert r.status == 404 and r.json["error"]["code"] == "not_found"


def test_misspelt_hook_names_the_plugin(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "typo.py").write_text("from wellmate import hookimpl\n\n@hookimpl\ndef route(app, wm):\n    pass\n")
    message = config_error(tmp_path)
    assert "plugin typo" in message and "route" in message and "did you mean 'routes'" in message


def test_plugin_that_fails_to_import_is_named(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "broken.py").write_text("import not_a_real_module_xyz\n")
    assert "plugin broken" in config_error(tmp_path) and "not_a_real_module_xyz" in config_error(tmp_path)


def test_prompt_reloads_when_edited(tmp_path):
    prompts = wellmate.Prompts(tmp_path)
    path = tmp_path / "p.txt"
    path.write_text("Hello $name")
    assert prompts.render("p.txt", {"name": "A"}) == "Hello A"
    path.write_text("Hi $name, today is $today")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert prompts.render("p.txt", {"name": "A", "today": "2026-11-20"}) == "Hi A, today is 2026-11-20"
    with pytest.raises(wellmate.ConfigError, match=r"nothing fills \$today"):
        prompts.render("p.txt", {"name": "A"})


def test_a_prompt_edited_within_the_same_mtime_is_read_again(tmp_path):
    """An edit the file system's clock does not tell apart (a coarse mtime, a copy that keeps it)
    still shows: the prompt's size or inode changed."""
    prompts = wellmate.Prompts(tmp_path)
    path = tmp_path / "p.txt"
    path.write_text("Hello $name")
    assert prompts.render("p.txt", {"name": "A"}) == "Hello A"
    stamp = path.stat().st_mtime_ns
    path.write_text("Hello again, $name")
    os.utime(path, ns=(stamp, stamp))
    assert prompts.render("p.txt", {"name": "A"}) == "Hello again, A"
    replaced = tmp_path / "new.txt"
    replaced.write_text("Howdy there $name!")  # as long as the last one, and moved over it: another inode
    os.utime(replaced, ns=(stamp, stamp))
    os.replace(replaced, path)
    assert prompts.render("p.txt", {"name": "A"}) == "Howdy there A!"
    assert prompts.placeholders("p.txt") == {"name"}
    # Just written, then edited in place to the same size within the same mtime (a coarse clock):
    # its stamp was too new to trust, so the edit shows. Dated a minute ahead (a clock ahead of
    # ours, and no stall of the test's machine makes the stamp old enough to be kept meanwhile).
    path.write_text("Hi, $name")
    stamp = time.time_ns() + 60 * 10**9
    os.utime(path, ns=(stamp, stamp))
    assert prompts.render("p.txt", {"name": "A"}) == "Hi, A"
    path.write_text("Yo, $name")
    os.utime(path, ns=(stamp, stamp))
    assert prompts.render("p.txt", {"name": "A"}) == "Yo, A"


def test_watched_files_with_the_same_text_are_compiled_once_and_an_edit_is_its_own(tmp_path):
    """The Wellmates a process builds (hundreds in this suite) share a YAML file's compiled form
    while its text is the same; each still sees its own file's edits, and a broken edit is logged
    by each one that reads it."""
    compiled = []

    def compile(data):
        compiled.append(data)
        return dict(data)

    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text("words: [calm, tired]\n", encoding="utf-8")
    a, b = (WatchedYaml([tmp_path / name], compile) for name in ("a.yaml", "b.yaml"))
    assert a.get() is b.get() and a.get() == {"words": ["calm", "tired"]} and len(compiled) == 1
    (tmp_path / "a.yaml").write_text("words: [happy]\n", encoding="utf-8")
    assert a.get() == {"words": ["happy"]} and b.get() == {"words": ["calm", "tired"]} and len(compiled) == 2
    (tmp_path / "b.yaml").write_text("words: [happy\n", encoding="utf-8")  # broken
    assert b.get() == {"words": ["calm", "tired"]} and "b.yaml: cannot use this file" in b.problem
    c = WatchedYaml([tmp_path / "b.yaml"], compile)
    assert c.get() == {} and "b.yaml: cannot use this file" in c.problem


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, str(ROOT / "wellmate.py"), *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


def test_check_passes_on_shipped_config(tmp_path):
    result = run_cli("--config", str(write_config(tmp_path)), "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "prompt ok: agents.physical" in result.stdout
    assert "storage_files" in result.stdout and "accounts" in result.stdout
    assert result.stdout.strip().endswith("ok")


def test_check_reports_unfilled_placeholder(tmp_path):
    prompt = tmp_path / "bad.txt"
    prompt.write_text("You help $name with $favourite_food.")
    path = write_config(tmp_path, {"agents": {"mental": {"prompt": str(prompt)}}})
    result = run_cli("--config", str(path), "check")
    assert result.returncode == 1
    assert "agents.mental" in result.stdout and "$favourite_food" in result.stdout


def test_check_reports_broken_config_via_environment(tmp_path):
    path = write_config(tmp_path, {"server": {"port": "abc"}})
    result = run_cli("check", env={"WELLMATE_CONFIG": str(path)})
    assert result.returncode == 1
    assert 'server.port: must be an integer 1-65535, got "abc"' in result.stdout


def test_import_has_no_side_effects(tmp_path):
    code = "import sys; sys.path.insert(0, %r); import wellmate; print(sorted(m for m in sys.modules if m.startswith(('openai', 'waitress', 'wellmate_'))))" % str(ROOT)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.stdout.strip() == "[]"
    assert list(tmp_path.iterdir()) == []


SHUTDOWN_PLUGIN = textwrap.dedent('''
    from wellmate import hookimpl

    @hookimpl
    def startup(wm):
        (wm.data_dir / "started").write_text("yes")

    @hookimpl
    def shutdown(wm):
        (wm.data_dir / "stopped").write_text("yes")
''')


def test_server_serves_and_stops_cleanly_on_sigterm(tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "lifecycle.py").write_text(SHUTDOWN_PLUGIN)
    port = free_port()
    server = ServerProcess(write_config(tmp_path, {"server": {"host": "127.0.0.1", "port": port}}), port)
    assert (tmp_path / "data" / "started").exists()
    status, output = server.stop()
    assert status == 0, output
    assert (tmp_path / "data" / "stopped").read_text() == "yes"
    assert "stopped" in output


def test_a_second_server_on_the_same_data_folder_refuses_to_start(tmp_path):
    port = free_port()
    first = ServerProcess(write_config(tmp_path, {"server": {"host": "127.0.0.1", "port": port}}), port)
    try:
        other = tmp_path / "other"
        other.mkdir()
        # Its own config and port, the first one's data folder.
        path = write_config(other, {"server": {"host": "127.0.0.1", "port": free_port()},
                                    "storage": {"path": str(tmp_path / "data")}})
        result = run_cli("--config", str(path))
        assert result.returncode == 2, result.stderr
        assert f"another Wellmate (pid {first.proc.pid}) is serving" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        assert first.stop()[0] == 0
    assert run_cli("--config", str(path), "check").returncode == 0


def test_a_port_in_use_is_a_clear_error_not_a_traceback(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = write_config(tmp_path, {"server": {"host": "127.0.0.1", "port": port}})
        result = run_cli("--config", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in result.stderr
    assert "server.port" in result.stderr


def test_users_without_a_time_zone_live_in_server_timezone_everywhere(make_wm, serve):
    client = serve(make_wm({"server": {"timezone": "Asia/Shanghai"}})).client
    token = client.register()["access_token"]  # no settings.timezone
    assert client.get("/api/v1/health/mood", token=token).json["timezone"] == "Asia/Shanghai"
    assert client.get("/api/v1/health/data/stats", token=token).json["timezone"] == "Asia/Shanghai"
    made = client.post("/api/v1/reminders", {"title": "喝水", "rule": {"kind": "daily", "times": ["10:00"]}}, token=token)
    assert made.status == 201 and made.json["timezone"] == "Asia/Shanghai"
    # A user's own setting wins.
    assert client.put("/api/v1/users/settings", {"settings": {"timezone": "Europe/Berlin"}}, token=token).status == 200
    assert client.get("/api/v1/health/mood", token=token).json["timezone"] == "Europe/Berlin"
    # And null removes it again (README: "`null` removes a key"): back to the server's.
    assert client.put("/api/v1/users/settings", {"settings": {"timezone": None}}, token=token).status == 200
    assert client.get("/api/v1/health/mood", token=token).json["timezone"] == "Asia/Shanghai"


def test_an_unknown_server_timezone_stops_startup(tmp_path):
    assert "server.timezone: unknown time zone 'Mars/Olympus'" in config_error(tmp_path, {"server": {"timezone": "Mars/Olympus"}})


DUPLICATE_PLUGIN = textwrap.dedent('''
    from wellmate import hookimpl

    @hookimpl
    def register_{hook}(register):
        register({name!r}, {obj})

    @hookimpl
    def deliver_reminder(message):
        return {{"status": "sent"}}
''')


@pytest.mark.parametrize("hook, name, obj, says", [
    ("storage", "tinydb", "None", "plugin dup: register_storage: 'tinydb' is registered twice (already by plugin storage_files)"),
    ("providers", "offline", "None", "plugin dup: register_providers: 'offline' is registered twice (already by plugin provider_offline)"),
    ("taggers", "lexicon", "None", "plugin dup: register_taggers: 'lexicon' is registered twice (already by plugin tagger_lexicon)"),
    ("record_types", "weight", '{"title": "w", "unit": "kg"}', "plugin dup: register_record_types: 'weight' is registered twice (already by plugin record_types)"),
    ("channels", "inapp", "", "plugin dup: register_channels: 'inapp' is registered twice (already by plugin delivery_inapp)"),
])
def test_a_name_registered_twice_names_both_plugins(tmp_path, hook, name, obj, says):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "dup.py").write_text(DUPLICATE_PLUGIN.format(hook=hook, name=name, obj=obj).replace(", )", ")"))
    assert config_error(tmp_path).endswith(says)


def test_an_unknown_name_gets_the_same_answer_from_every_registry(tmp_path, make_wm, serve):
    """Config at startup and requests alike: the name, the nearest known one, the known ones."""
    assert config_error(tmp_path, {"storage": {"backend": "tinydbb"}}).endswith(
        "storage.backend: unknown storage backend 'tinydbb'; did you mean 'tinydb'?; known: files, tinydb")
    assert config_error(tmp_path, {"emotion": {"tagger": "lexicn"}}).endswith(
        "emotion.tagger: unknown tagger 'lexicn'; did you mean 'lexicon'?; known: lexicon, model, llm")
    assert config_error(tmp_path, {"reminders": {"channels": ["inap"]}}).endswith(
        "reminders.channels[0]: unknown channel 'inap'; did you mean 'inapp'?; known: inapp, wechat, webhook")
    client = serve(make_wm()).client
    token = client.register()["access_token"]
    r = client.post("/api/v1/health/data", {"type": "wieght", "value": 70}, token=token)
    assert r.status == 400 and r.json["error"]["message"].startswith(
        "type: unknown record type 'wieght'; did you mean 'weight'?; known: weight, height, steps")
    r = client.post("/api/v1/reminders", {"title": "x", "channels": ["webhok"], "rule": {"kind": "daily", "times": ["10:00"]}},
                    token=token)
    assert r.status == 400 and r.json["error"]["message"] == (
        "channels: unknown channel 'webhok'; did you mean 'webhook'?; known: inapp, wechat, webhook")


def test_every_runtime_dependency_is_imported():
    """requirements.txt pins only what the core and the built-in plugins import: a Pi installs no
    package for nothing (tinydb stayed pinned after its last import went)."""
    import re

    module_of = {"pyyaml": "yaml", "pyjwt": "jwt", "pillow": "PIL"}
    code = "\n".join(path.read_text(encoding="utf-8") for path in [ROOT / "wellmate.py", *(ROOT / "plugins").glob("*.py")])
    unused = []
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        package = line.split("#")[0].split("==")[0].strip().lower()
        module = module_of.get(package, package)
        if package and not re.search(rf"^\s*(import|from) {module}\b", code, re.M):
            unused.append(package)
    assert unused == []
