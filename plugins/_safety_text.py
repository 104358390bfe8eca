"""What the safety plugin and the offline companion both read from prompts and config.yaml: the
hotline and emergency numbers (their Settings and defaults), ``{placeholder}`` filling that no
stray brace can break, and the word lists of an edited YAML file. A library, not a plugin: the
offline provider imports it instead of the safety plugin's internals, so it keeps working with
``safety`` in plugins.disabled."""

from __future__ import annotations

import re

from wellmate import Setting
from wellmate_plugins._text import normalize, term_alternatives

HOTLINES, EMERGENCY = ["12356", "400-161-9995"], ["120", "110"]  # safety.hotlines, safety.emergency
MASK = " | "  # what a hard negative ("笑死我了", "kill the process") or a caution's mask is replaced by


def number_settings() -> dict:
    """The Settings of safety.hotlines and safety.emergency. The safety plugin declares them, and
    so does the offline provider (the same Settings), so that its fallback crisis note reads them
    from config.yaml even with the safety plugin disabled."""
    return {"hotlines": Setting(HOTLINES, "Mental health hotlines given in a crisis reply.", list),
            "emergency": Setting(EMERGENCY, "Emergency numbers: the first is the one red-flag notes say to call.", list)}


def numbers(conf: dict, lang: str) -> dict:
    """{hotlines}, {emergency} and {first_emergency} for a wording, from the safety section of
    config.yaml (``conf``); an empty or missing list is the default one (an empty emergency list
    must not leave "call {first_emergency}" with nothing to call)."""
    sep = "、" if lang == "zh" else ", "
    hotlines = [str(n) for n in conf.get("hotlines") or HOTLINES]
    emergency = [str(n) for n in conf.get("emergency") or EMERGENCY]
    return {"hotlines": sep.join(hotlines), "emergency": sep.join(emergency), "first_emergency": emergency[0]}


def fill(template: str, values: dict) -> str:
    """``{name}`` placeholders filled by plain replacement: a stray brace in an edited file can
    never break a crisis reply the way str.format would."""
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


def items(value) -> list:
    """A list as written in prompts/safety.yaml. A lone string is one entry, never its characters:
    `zh: 不想活` written without brackets made 不, 想 and 活 crisis terms ("不错" got the crisis reply)."""
    if value is None:
        return []
    if isinstance(value, (str, int, float)):
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise ValueError(f"expected a list, not {type(value).__name__}: {str(value)[:60]!r}")


def patterns(entries, where: str) -> list[re.Pattern]:
    """The regexes of a list in an edited file; a bad one is a ValueError naming ``where`` (for WatchedYaml: the last
    good file stays in use)."""
    compiled = []
    for item in items(entries):
        try:
            compiled.append(re.compile(str(item)))
        except re.error as e:
            raise ValueError(f"{where}: bad pattern {item!r}: {e}")
    return compiled


def both_languages(spec) -> list[str]:
    """The words of a {zh: [...], en: [...]} mapping, or of a plain list."""
    if isinstance(spec, dict):
        return [str(w) for words in spec.values() for w in items(words)]
    return [str(w) for w in items(spec)]


def negation_pattern(words: list[str]) -> re.Pattern | None:
    """Words that, at the end of the clause before a symptom, say the user does not have it (prompts/safety.yaml
    red_flags.negations): read on the clause's last 16 characters by the red flags and, with the safety plugin
    disabled, by the offline companion's reading of the same cautions."""
    words = [normalize(w) for w in words if normalize(w)]
    other, latin = term_alternatives(words, False), term_alternatives(words, True)
    parts = ([other] if other else []) + ([rf"(?<![a-z])(?:{latin})" if latin else ""] if latin else [])
    if not parts:
        return None
    # "no chest pain", "没有任何胸痛", "don't have any chest pain", "I'm not having chest pain",
    # "不觉得胸闷": a word or two between the negation and the symptom
    return re.compile("(?:" + "|".join(parts) + r")\s*(?:(?:any|having|experiencing|getting|feeling|任何|什么|明显"
                      r"|觉得|感觉|感到|出现|有)\s*){0,2}$")
