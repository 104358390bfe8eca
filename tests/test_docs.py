"""The docs tell the truth (as datasette checks its own docs): each hook has a section in
docs/plugins.md showing its signature, the plugin tour links to each and its complete example
plugin works as printed; docs/config.md lists every config key with its type and default, and no
other; every relative link in README.md and docs/ resolves; the README's two commands are the ones
CI runs; the mini-program's stream reader in docs/miniprogram.md reads a real stream under node."""

import base64
import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from datetime import datetime, timedelta

import pytest
import yaml

import wellmate
from conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = ROOT / "docs"
PLUGINS_DOC = DOCS / "plugins.md"
PLUGIN_TOUR = (DOCS / "writing-plugins.md").read_text(encoding="utf-8")
HOOKS = sorted(wellmate._hook_names())


def sections(markdown: str) -> dict[str, str]:
    """``{"### heading": the text under it, up to the next heading}``; a line starting with "#"
    inside a code block (a Python comment) is not a heading."""
    found, heading, fenced = {}, None, False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            heading = line.strip()
            found[heading] = ""
            continue
        if heading is not None:
            found[heading] += line + "\n"
    return found


def code_block(markdown: str, first_line: str) -> str:
    """The fenced Python block of ``markdown`` whose first line is ``first_line``."""
    blocks = re.findall(r"^```python\n(.*?)^```$", markdown, re.S | re.M)
    chosen = [block for block in blocks if block.startswith(first_line)]
    assert len(chosen) == 1, f"one python block starting {first_line!r}, found {len(chosen)}"
    return chosen[0]


def fenced(markdown: str, language: str) -> list[str]:
    blocks, current = [], None
    for line in markdown.splitlines():
        if line.startswith("```"):
            if current is None:
                current = (line[3:].strip(), [])
            else:
                if current[0] == language:
                    blocks.append("\n".join(current[1]) + "\n")
                current = None
        elif current is not None:
            current[1].append(line)
    return blocks


def signature(hook: str) -> str:
    arguments = [a for a in inspect.signature(getattr(wellmate.Hookspecs, hook)).parameters if a != "self"]
    return f"`{hook}({', '.join(arguments)})`"


@pytest.fixture(scope="module")
def reference():
    return sections(PLUGINS_DOC.read_text(encoding="utf-8"))


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_docs_section(hook, reference):
    assert f"### {hook}" in reference, f"docs/plugins.md needs a '### {hook}' section"
    assert getattr(wellmate.Hookspecs, hook).__doc__, f"hookspec {hook} needs a docstring"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_docs_section_shows_its_signature(hook, reference):
    """The section shows the hook called with the hookspec's arguments, in order: `name(a, b)`."""
    assert signature(hook) in reference.get(f"### {hook}", ""), (
        f"docs/plugins.md's '### {hook}' section must show {signature(hook)}")


def test_every_hook_section_is_a_hook(reference):
    """A section named like a hook is one: a renamed or removed hook leaves no stale section."""
    stale = [h for h in reference if re.fullmatch(r"### [a-z_]+", h) and h[4:] not in HOOKS]
    assert not stale, f"docs/plugins.md documents hooks that do not exist: {stale}"


def test_the_plugin_tour_links_every_hook_to_its_section():
    missing = [hook for hook in HOOKS if f"(plugins.md#{hook})" not in PLUGIN_TOUR]
    assert not missing, f"docs/writing-plugins.md must link docs/plugins.md for: {missing}"


def test_the_tour_example_plugin_works(make_wm, serve, tmp_path):
    """The streaks plugin of docs/writing-plugins.md's 'Your own data', as printed: its collection, service, route, after_reply
    reading the turn's flags, and its answers to delete_user_data and export_user_data."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "streaks.py").write_text(code_block(PLUGIN_TOUR, '"""Counts the days in a row'), encoding="utf-8")
    wm = make_wm()
    client = serve(wm).client
    token = client.register("alice")["access_token"]
    user_id = client.get("/api/v1/users/profile", token=token).json["uuid"]
    assert client.get("/api/v1/streak", token=token).json == {"days": 0}

    def chat(text, session_id=None):
        r = client.post("/api/v1/health/physical/chat", {"text": text, **({"session_id": session_id} if session_id else {})},
                        token=token)
        assert r.status == 200, r.text
        return r.json

    assert "🔥" not in chat("今天走了一万步")["content"]
    assert client.get("/api/v1/streak", token=token).json == {"days": 1}
    # Six days before today in the user's zone: today's first chat is the seventh, and cheered,
    # unless the safety plugin's turn.flags say the session had a crisis; the second is not.
    user = wm.storage.get("users", user_id)
    today = datetime.now(wm.user_zone(user)[1]).date()
    wm.storage.delete_where("chat_days", {"user_id": user_id})
    for back in range(1, 7):
        day = (today - timedelta(days=back)).isoformat()
        wm.storage.put("chat_days", {"id": f"{user_id}:{day}", "user_id": user_id, "day": day})
    crisis = chat("我真的不想活了")
    assert "🔥" not in crisis["content"]
    assert client.get("/api/v1/streak", token=token).json == {"days": 7}
    wm.storage.delete("chat_days", f"{user_id}:{today.isoformat()}")
    assert "🔥" not in chat("好一点了", crisis["session_id"])["content"]  # crisis_earlier
    wm.storage.delete("chat_days", f"{user_id}:{today.isoformat()}")
    assert chat("又是新的一天")["content"].endswith("🔥 你已经连续聊了 7 天！")
    assert "🔥" not in chat("再聊一句")["content"]
    assert client.get("/api/v1/streak", token=token).json == {"days": 7}
    # A gap ends the streak.
    wm.storage.delete("chat_days", f"{user_id}:{(today - timedelta(days=3)).isoformat()}")
    assert client.get("/api/v1/streak", token=token).json == {"days": 3}

    exported = [section for section in wm.pm.hook.export_user_data(user=user, wm=wm) if section and "chat_days" in section]
    assert [list(section["chat_days"]) for section in exported] == [
        [(today - timedelta(days=back)).isoformat() for back in (6, 5, 4, 2, 1, 0)]]
    wm.pm.hook.delete_user_data(user=user, wm=wm)
    wm.pm.hook.delete_user_data(user=user, wm=wm)  # twice is safe
    assert wm.storage.count("chat_days", {"user_id": user_id}) == 0



# -- docs/config.md: every config key, its type and default, and no other ----------------------

def yaml_text(value) -> str:
    """A default as it is written in config.yaml (flow style), e.g. `[happy, calm]`, `{a: 1}`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        def item(v):  # quoted where YAML would read another type: "12356", ""
            quote = isinstance(v, str) and (not v or v[0].isdigit() or yaml.safe_load(v) != v)
            return f'"{v}"' if quote else yaml_text(v)
        if isinstance(value, list):
            return "[" + ", ".join(item(v) for v in value) + "]"
        return "{" + ", ".join(f"{k}: {item(v)}" for k, v in value.items()) + "}"
    return str(value)


def default_text(setting: wellmate.Setting) -> str:
    if setting.required:
        return "required"
    if setting.default is None:
        return "unset"
    if setting.default == "":
        return "empty"
    return f"`{yaml_text(setting.default)}`"


def type_text(setting: wellmate.Setting) -> str:
    return setting.describe().replace("one of , ", 'one of "", ')


def schema_keys(wm):
    """{dotted key: its Setting (None for providers.NAME.plugin)}: the core's sections, every
    plugin's config_schema, every tagger's keys (they live under emotion:) and every provider
    plugin's keys (under providers.NAME, written providers.<plugin>.KEY)."""
    schema = wellmate.core_schema()
    for extra in wm.pm.hook.config_schema():
        for section, keys in (extra or {}).items():
            schema.setdefault(section, {}).update(keys)
    for tagger in wm.tagger_classes.values():
        for key, setting in tagger.settings.items():
            schema["emotion"].setdefault(key, setting)
    found = {"providers.NAME.plugin": None}  # Provider.validate checks it for every provider
    for section, keys in schema.items():
        for key, setting in keys.items():
            if key == "*":  # a mapping of names, each with these keys (agents.NAME.history)
                found.update({f"{section}.NAME.{sub}": s for sub, s in setting.items.items()})
                continue
            found[f"{section}.{key}"] = setting
            for sub, s in (setting.items or {}).items():  # a nested group (auth.throttle.window_seconds)
                found[f"{section}.{key}.{sub}"] = s
    for plugin, provider in wm.provider_classes.items():
        found.update({f"providers.{plugin}.{key}": s for key, s in provider.settings.items()})
    return found


def documented_keys() -> dict[str, tuple[str, str]]:
    """{key: (type, default)} from docs/config.md's table rows `| `key` | type | default | meaning |`."""
    rows = re.findall(r"^\| `([\w.*]+)` \| (.*?) \| (.*?) \| .* \|$", (DOCS / "config.md").read_text(encoding="utf-8"), re.M)
    keys = [key for key, _, _ in rows]
    assert len(keys) == len(set(keys)), f"docs/config.md lists a key twice: {sorted(k for k in keys if keys.count(k) > 1)}"
    return {key: (kind, default) for key, kind, default in rows}


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    from conftest import shipped_config

    tmp = tmp_path_factory.mktemp("schema")
    (tmp / "config.yaml").write_text(yaml.safe_dump(shipped_config(tmp), allow_unicode=True), encoding="utf-8")
    wm = wellmate.Wellmate(tmp / "config.yaml")
    assert not wm.config["plugins"]["disabled"], "the schema is every plugin's: none may be disabled"
    return schema_keys(wm)


def test_config_md_documents_every_config_key(schema):
    documented = documented_keys()
    missing = [key for key in schema if key not in documented]
    rows = "\n".join(f"| `{key}` | {type_text(s)} | {default_text(s)} | {s.doc} |" for key, s in schema.items()
                     if key in missing and s is not None)
    assert not missing, f"docs/config.md lacks these keys; rows to start from:\n{rows}"


def test_config_md_documents_no_key_the_schema_lacks(schema):
    stale = [key for key in documented_keys() if key not in schema]
    assert not stale, f"docs/config.md documents keys no plugin reads: {stale}"


def test_config_md_says_each_keys_type_and_default(schema):
    wrong = [f"{key}: docs say {documented_keys()[key]}, the schema ({type_text(s)}, {default_text(s)})"
             for key, s in schema.items()
             if s is not None and key in documented_keys() and documented_keys()[key] != (type_text(s), default_text(s))]
    assert not wrong, "\n".join(wrong)


# -- links and commands --------------------------------------------------------------------------

def anchors(markdown: str) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces as dashes,
    a repeated heading numbered -1, -2."""
    found = set()
    for heading in sections(markdown):
        slug = re.sub(r"[^\w\- ]", "", heading.lstrip("#").strip().lower()).replace(" ", "-")
        n, unique = 0, slug
        while unique in found:
            n += 1
            unique = f"{slug}-{n}"
        found.add(unique)
    return found


def links(markdown: str) -> list[str]:
    """Targets of the page's Markdown links, outside code blocks and `code`."""
    prose = re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M)
    prose = re.sub(r"`[^`\n]*`", "", prose)
    return re.findall(r"\]\(([^)\s]+)\)", prose)


PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page):
    broken = []
    for target in links(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        name = file.relative_to(ROOT).as_posix() if file.is_relative_to(ROOT) else str(file)
        if not file.exists():
            broken.append(f"{target}: no file {name}")
            continue
        if anchor and file.suffix == ".md" and anchor not in anchors(file.read_text(encoding="utf-8")):
            broken.append(f"{target}: no heading #{anchor} in {name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def ci_commands() -> list[str]:
    """The commands .ci/run runs from making the venv on, pip's output options (-q,
    --disable-pip-version-check) dropped: they change what is printed, not what is installed.
    (Before the venv: the CI machine's own setup, chromium for tests/test_docs_browser.py, which
    skip without it on a reader's machine.)"""
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    commands = [line for line in lines if line and not line.startswith(("#", "set ", "cd "))]
    commands = commands[next(i for i, c in enumerate(commands) if c.startswith("python3 -m venv")):]
    quiet = {"-q", "--quiet", "--disable-pip-version-check"}
    return [" ".join(word for word in shlex.split(c) if "pip install" not in c or word not in quiet) for c in commands]


def first_screen() -> str:
    return "\n".join(README.splitlines()[:40])


def test_the_readme_test_command_is_what_ci_runs():
    """The first screen's test command, from a fresh clone, is .ci/run's: make the venv, install
    the dev requirements, run pytest with the same options."""
    assert " && ".join(ci_commands()) in first_screen(), (
        f"README's first screen must show the test command CI runs: {' && '.join(ci_commands())}")


def test_the_readme_run_command_installs_as_ci_does():
    venv, install, _ = ci_commands()
    run = f"{venv} && {install.replace('requirements-dev.txt', 'requirements.txt')} && .venv/bin/python wellmate.py"
    assert run in first_screen(), f"README's first screen must show: {run}"


def test_the_readme_says_how_to_change_the_port_on_its_first_screen(tmp_path):
    """The variable the first screen names is the one config.yaml reads for server.port."""
    match = re.search(r"(\w+)=(\d+) \.venv/bin/python wellmate\.py", first_screen())
    assert match, "README's first screen must show how to run on another port"
    assert "server.port" in first_screen()
    variable, port = match.groups()
    env = {**os.environ, variable: port, "WELLMATE_DATA": str(tmp_path / "data")}
    got = subprocess.run([sys.executable, "-c", "import sys, wellmate; "
                          "print(wellmate.Wellmate(sys.argv[1]).config['server']['port'])", str(ROOT / "config.yaml")],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert got.stdout.strip() == port, got.stderr


# -- docs/miniprogram.md: the stream reader, run under node on a real stream --------------------

def js_block(markdown: str, contains: str) -> str:
    blocks = [b for b in fenced(markdown, "js") if contains in b]
    assert len(blocks) == 1, f"one js block with {contains!r}, found {len(blocks)}"
    return blocks[0]


# Feeds one response to streamChat through a fake wx.request, in pieces of each size, in a context
# with TextDecoder and in one without (the decodeURIComponent fallback).
NODE_HARNESS = r"""
const vm = require('vm')
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'))
const body = Buffer.from(input.body, 'base64')
const results = []
for (const decoder of [true, false]) {
  for (const size of input.sizes) {
    let request = null
    const context = {
      wx: {
        getStorageSync: () => ({ access_token: 'A', refresh_token: 'R' }),
        request: (options) => { request = options; return { onChunkReceived: (f) => { request.chunk = f } } },
      },
    }
    if (decoder) context.TextDecoder = TextDecoder
    vm.createContext(context)
    vm.runInContext(input.code, context)
    const got = { deltas: [], start: null, done: null, errors: [] }
    context.streamChat('mental', 'hi', null, {
      start: (p) => { got.start = p }, delta: (d) => got.deltas.push(d),
      done: (p) => { got.done = p }, error: (e) => got.errors.push(e),
    })
    for (let i = 0; i < body.length; i += size) {
      const piece = body.subarray(i, i + size)
      request.chunk({ data: piece.buffer.slice(piece.byteOffset, piece.byteOffset + piece.length) })
    }
    request.success({ statusCode: input.status, header: input.headers, data: '' })
    results.push(got)
  }
}
process.stdout.write(JSON.stringify(results))
"""


def run_stream_client(code: str, status: int, headers: dict, body: bytes, sizes) -> list[dict]:
    given = json.dumps({"code": code, "status": status, "headers": headers, "sizes": sizes,
                        "body": base64.b64encode(body).decode()})
    done = subprocess.run(["node", "-e", NODE_HARNESS], input=given, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.skipif(not shutil.which("node"), reason="node is not installed")
def test_the_miniprogram_stream_reader_reads_a_real_stream_in_pieces(make_wm, serve):
    markdown = (DOCS / "miniprogram.md").read_text(encoding="utf-8")
    code = "\n".join(js_block(markdown, contains) for contains in ("function apiError", "function sseReader",
                                                                  "function streamChat"))
    client = serve(make_wm()).client
    token = client.register("alice")["access_token"]
    r = client.post("/api/v1/health/mental/chat/stream", {"text": "最近睡不好，有点焦虑，怎么办？"}, token=token)
    assert r.status == 200 and "\n\n" in r.text, r.text
    # The stream as the server sent it, read whole by Python: what the client must see.
    blocks = [b for b in r.text.split("\n\n") if b and not b.startswith(":")]
    events = [(re.search(r"^event: (.*)$", b, re.M), json.loads(re.search(r"^data: (.*)$", b, re.M)[1])) for b in blocks]
    deltas = [data["delta"] for name, data in events if name is None]
    done = [data for name, data in events if name and name[1] == "done"]
    assert deltas and len(done) == 1 and any(ord(c) > 0x7FF for c in "".join(deltas)), r.text
    # Pieces of 1, 2 and 3 bytes end inside every Chinese character somewhere; 4096 is a whole body.
    for got in run_stream_client(code, 200, {}, r.body, [1, 2, 3, 5, 64, 4096]):
        assert got["errors"] == [] and got["deltas"] == deltas and got["done"] == done[0], got
        assert got["start"]["session_id"] == done[0]["session_id"]
    # A 4-byte character (an emoji) cut anywhere, and a data line without the space after the colon.
    emoji = 'event: start\ndata: {"session_id": "s"}\n\ndata:{"delta": "好🙂"}\n\nevent: done\ndata: {"content": "好🙂"}\n\n'
    for got in run_stream_client(code, 200, {}, emoji.encode(), [1, 2, 3]):
        assert got["deltas"] == ["好🙂"] and got["done"] == {"content": "好🙂"} and got["errors"] == [], got
    # A stream cut before `done` is an error, not a silent end.
    for got in run_stream_client(code, 200, {}, r.body[:r.body.index(b"event: done")], [7]):
        assert got["done"] is None and [e["code"] for e in got["errors"]] == ["stream_cut"], got
    # An error answer is JSON, not a stream: the client reports its status, code and Retry-After.
    refused = client.post("/api/v1/health/nobody/chat/stream", {"text": "hi"}, token=token)
    assert refused.status == 404, refused.text
    for got in run_stream_client(code, 404, {"Retry-After": "3"}, refused.body, [1, 4096]):
        assert got["errors"] == [{"status": 404, "code": refused.json["error"]["code"],
                                  "message": refused.json["error"]["message"], "retryAfter": 3}], got


# -- docs/deploy.md: the systemd unit as printed -------------------------------------------------

@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_the_deploy_unit_file_passes_systemd_analyze_verify(tmp_path):
    """The unit, with /opt/wellmate standing for this checkout (verify needs ExecStart to exist)."""
    [unit] = fenced((DOCS / "deploy.md").read_text(encoding="utf-8"), "ini")
    assert "ExecStart=/opt/wellmate/.venv/bin/python wellmate.py" in unit
    unit = unit.replace("/opt/wellmate/.venv/bin/python", sys.executable).replace("/opt/wellmate", str(ROOT))
    (tmp_path / "wellmate.service").write_text(unit)
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "wellmate.service")],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout + done.stderr) == (0, ""), done.stdout + done.stderr


def test_the_offline_topics_docs_list_are_the_tips_files():
    """docs/models.md lists the offline companion's topics (session 18: the 40th, cramps, stays; a pregnant woman's
    complaint is the complaint's topic with the pregnancy caution): the list is the shipped tips file's, in its
    order, and says the count, and the group rule is in both the docs and the file."""
    text = (ROOT / "docs" / "models.md").read_text(encoding="utf-8")
    topics = list(yaml.safe_load((ROOT / "prompts" / "offline_tips.yaml").read_text(encoding="utf-8"))["topics"])
    listed = re.search(r"The (\d+) topics of the shipped `prompts/offline_tips.yaml` \([^)]*\): (.*?)\. A group's",
                       text, re.S)
    assert listed, "docs/models.md: the topic list is gone"
    names = re.split(r",\s+(?:and the three special groups\s+)?|\s+and\s+", " ".join(listed.group(2).split()))
    assert names == topics and int(listed.group(1)) == len(topics) and f"({len(topics)} everyday topics" in text
    tips = yaml.safe_load((ROOT / "prompts" / "offline_tips.yaml").read_text(encoding="utf-8"))["topics"]
    assert tips["pregnancy"].get("complaint_topic") is True and "leg cramps are `cramps`" in text
