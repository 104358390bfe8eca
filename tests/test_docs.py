"""The README documents every hook and every config key (as datasette checks its own docs)."""

import inspect
import re

import pytest

import wellmate
from conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("hook", sorted(wellmate._hook_names()))
def test_every_hook_has_a_docs_section(hook):
    assert f"\n#### {hook}\n" in README
    assert getattr(wellmate.Hookspecs, hook).__doc__, f"hookspec {hook} needs a docstring"


@pytest.mark.parametrize("hook", sorted(wellmate._hook_names()))
def test_every_hook_docs_section_shows_its_signature(hook):
    """The section shows the hook called with the hookspec's arguments, in order: `name(a, b)`."""
    arguments = [a for a in inspect.signature(getattr(wellmate.Hookspecs, hook)).parameters if a != "self"]
    section = re.search(rf"\n#### {hook}\n(.*?)(?=\n#|\Z)", README, re.S)
    assert section and f"`{hook}({', '.join(arguments)})`" in section.group(1), (
        f"README's '#### {hook}' section must show `{hook}({', '.join(arguments)})`")


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
