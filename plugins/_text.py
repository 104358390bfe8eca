"""Finding words in what users write: the text-matching library the emotion taggers, the safety
plugin, the offline companion and the reply labels share (not a plugin: no hooks).

``Terms(words).find(text)`` finds words of a list in a text normalized by `normalize`: Chinese
words anywhere, Latin words as whole words with their -s/-es/-ed/-ing forms.
"""

from __future__ import annotations

import re

LATIN_TERM = re.compile(r"[a-z0-9' .\-]+")
CLAUSE_END = re.compile(r"[。！？!?，,；;.\n]")


def normalize(text: str) -> str:
    """Lower case, straight apostrophes, single spaces: the form `Terms` match in."""
    return " ".join(str(text).replace("\u2019", "'").lower().split())


def term_alternatives(words, latin: bool) -> str:
    """A regex matching any of the Latin (or the other) words, the longest one where several
    start at the same place. It is written as a trie (``ab(?:c|d)?`` for ab, abc, abd) because
    Python's re tries a flat alternation word by word at every position of the text: with a
    lexicon of a few hundred words that made tagging one reply cost ~0.2 ms."""
    trie: dict = {}
    for word in {w for w in words if bool(LATIN_TERM.fullmatch(w)) == latin}:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}  # a word ends here
    return _trie_pattern(trie)


def _trie_pattern(node: dict) -> str:
    branches = []
    for char, child in sorted(node.items()):
        if not char:
            continue
        run = char
        while len(child) == 1 and "" not in child:  # a chain with no choices: one literal
            (char, child), = child.items()
            run += char
        branches.append(re.escape(run) + _trie_pattern(child))
    if not branches:
        return ""
    pattern = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    # Where a word may end, the greedy ? tries the longer words first.
    return f"(?:{pattern})?" if "" in node else pattern


class Terms:
    """Words to find in a text: Chinese words and emoji anywhere (Chinese has no spaces), Latin
    words only as whole words, also with -s/-es/-ed/-ing endings. Longer words are tried first."""

    def __init__(self, words):
        words = [normalize(w) for w in words if normalize(w)]
        other, latin = term_alternatives(words, False), term_alternatives(words, True)
        parts = ([f"(?P<other>{other})"] if other else []) + (
            [rf"(?<![a-z0-9])(?P<latin>{latin})(?:s|es|ed|ing)?(?![a-z0-9])"] if latin else [])
        self.regex = re.compile("|".join(parts)) if parts else None

    def find(self, text: str):
        """Yield (start, word) for each match in normalized ``text``, left to right."""
        for m in self.regex.finditer(text) if self.regex else ():
            groups = m.groupdict()
            yield m.start(), groups.get("other") or groups.get("latin")


CHINESE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
LATIN = re.compile(r"[A-Za-z]")


def language(text: str) -> str:
    """zh for text with Chinese characters, en for Latin-only text; zh when it cannot tell (no
    text, emoji only), since most users write Chinese."""
    if CHINESE.search(text):
        return "zh"
    return "en" if LATIN.search(text) else "zh"
