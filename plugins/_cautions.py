"""The emergency cautions of prompts/safety.yaml (`red_flag_cautions`: chest, breath, stroke, collapse), read one way
for everyone: the safety plugin reads them with the rest of its file and serves them (`Safety.cautions`); the offline
companion asks that service, and with the plugin disabled reads the same file with the same code (`CautionFile`).
A library, not a plugin. Session 21 (CAUT): the companion had its own reader, which took the section out with regexes
and knew no `all:` groups, so one table could be read two ways.

A caution is read as a red flag is (`Rule`, which the red flags of plugins/safety.py are): a word of `any` not denied
in its clause (`red_flags.negations`), a pattern, or a word of every `all` group, outside the kind's `mask` spans."""

from __future__ import annotations

import re

from wellmate_plugins._files import WatchedYaml, data_file_candidates
from wellmate_plugins._safety_text import MASK, both_languages, items, negation_pattern, patterns
from wellmate_plugins._text import Terms, clause_before

SAFETY_FILE = "prompts/safety.yaml"  # the safety plugin's default `phrases` file
NEGATION_REACH = 16  # characters: a negation is read in the last 16 of the word's clause


class Rule:
    """One red flag or caution kind: found when any `any` phrase or pattern is, or one phrase of every `all` group, in
    the text without its `mask` spans. ``section``: where it is written, for an error's message."""

    def __init__(self, name: str, spec: dict, section: str = "red_flags"):
        self.name = name
        self.any = Terms(both_languages(spec.get("any")))
        self.patterns = patterns(spec.get("patterns"), f"{section}.{name}.patterns")
        self.all = [Terms(both_languages(group)) for group in items(spec.get("all"))]
        # Spans this rule does not read: words of its lists said of something else (下巴 of 下巴痘, a double dose
        # in "so he doesn't double dose", a pregnancy named beside the writer's own headache). One pattern: a red flag
        # reads it only when the rule's gate bits are on (see `Phrases.red_flags`); a caution (`Cautions.kinds`, no
        # gate) on every text.
        masks = patterns(spec.get("mask"), f"{section}.{name}.mask")
        self.mask = re.compile("|".join(f"(?:{m.pattern})" for m in masks)) if masks else None


def has(terms: Terms, text: str, negation: re.Pattern | None) -> bool:
    """Whether a word of ``terms`` is in ``text`` with no negation at the end of its clause ("没有胸痛", "no chest
    pain"): the clause's last NEGATION_REACH characters, so a long message stays linear."""
    for start, _ in terms.find(text):
        if negation is None or not negation.search(clause_before(text, start, NEGATION_REACH)):
            return True
    return False


class Cautions:
    """`red_flag_cautions` compiled, with the red flags' negations: `kinds(text)`."""

    def __init__(self, spec, negation: re.Pattern | None):
        spec = spec if isinstance(spec, dict) else {}
        self.rules = [Rule(str(name), rule, "red_flag_cautions") for name, rule in spec.items() if isinstance(rule, dict)]
        self.negation = negation

    def kinds(self, text: str) -> list[str]:
        """The kinds ``text`` (normalized) names, in file order: a symptom the offline companion adds its conditional
        note for. A negation before a word in its clause denies it, and a kind's mask covers what it does not read."""
        found = []
        for rule in self.rules:
            read = rule.mask.sub(MASK, text) if rule.mask is not None and rule.mask.search(text) else text
            if (rule.any.regex is not None and has(rule.any, read, self.negation)) \
                    or any(p.search(read) for p in rule.patterns) \
                    or (rule.all and all(g.regex is not None and has(g, read, self.negation) for g in rule.all)):
                found.append(rule.name)
        return found


def read_cautions(data: dict) -> Cautions:
    """The cautions of prompts/safety.yaml's data (its `red_flag_cautions` and `red_flags.negations`)."""
    flags = data.get("red_flags") if isinstance(data.get("red_flags"), dict) else {}
    return Cautions(data.get("red_flag_cautions"), negation_pattern([str(w) for w in items(flags.get("negations"))]))


# Only the file's `red_flag_cautions` section and the red flags' `negations` line are parsed: the whole file takes
# ~0.3 s to parse (1 s on a loaded machine) for 2% of it.
SECTION = re.compile(r"^red_flag_cautions:[^\n]*\n(?:(?:[ #][^\n]*)?\n)*", re.M)
NEGATIONS = re.compile(r"^red_flags:[^\n]*\n(?:(?:[ #][^\n]*)?\n)*?(  negations:[^\n]*\n)", re.M)


def caution_part(text: str) -> str:
    """What of prompts/safety.yaml's text `read_cautions` reads, as YAML."""
    section, negations = SECTION.search(text), NEGATIONS.search(text)
    return (section.group(0) if section else "") + ("red_flags:\n" + negations.group(1) if negations else "")


class CautionFile(WatchedYaml):
    """The cautions of the safety plugin's phrases file (config.yaml safety.phrases), for the companion with the safety
    plugin disabled: read on first use and again when the file changes; a broken edit keeps the last good table."""

    def __init__(self, wm):
        name = ((getattr(wm, "config", None) or {}).get("safety") or {}).get("phrases") or SAFETY_FILE
        super().__init__(data_file_candidates(wm, str(name)), read_cautions, part=caution_part,
                         without="no emergency cautions are added")
