"""The docs document every hook and every config key (as datasette checks its own docs): each
hook has a section in docs/plugins.md showing its signature, the README's plugin tour links to
each, and its complete example plugin works as printed."""

import inspect
import re
from datetime import datetime, timedelta

import pytest

import wellmate
from conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
PLUGINS_DOC = ROOT / "docs" / "plugins.md"
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


def test_the_readme_links_every_hook_to_its_section():
    tour = README[README.index("## Writing a plugin\n"):]
    tour = tour[:tour.index("\n## ", 1)]
    missing = [hook for hook in HOOKS if f"(docs/plugins.md#{hook})" not in tour]
    assert not missing, f"README's 'Writing a plugin' must link docs/plugins.md for: {missing}"


def test_the_readme_example_plugin_works(make_wm, serve, tmp_path):
    """The streaks plugin of 'Your own data', as printed: its collection, service, route, after_reply
    reading the turn's flags, and its answers to delete_user_data and export_user_data."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "streaks.py").write_text(code_block(README, '"""Counts the days in a row'), encoding="utf-8")
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


def config_keys(make_wm):
    wm = make_wm()
    for section, keys in wm.schema.items():
        for key, setting in keys.items():
            if key == "*":
                for sub in setting.items:
                    yield f"{section}.NAME.{sub}"
            else:
                yield f"{section}.{key}"
                for sub in setting.items or {}:  # a nested group, e.g. auth.throttle.window_seconds
                    yield f"{section}.{key}.{sub}"
    for name, conf in wm.config["providers"].items():
        for key in wm.provider_classes[conf["plugin"]].settings:
            yield f"providers.{conf['plugin']}.{key}"


def test_every_config_key_is_documented(make_wm):
    documented = set(re.findall(r"^\| `([\w.*]+)` \|", README, re.M))
    missing = [key for key in config_keys(make_wm) if key not in documented]
    assert not missing, f"README's configuration reference lacks: {missing}"
