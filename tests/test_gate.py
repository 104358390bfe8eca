"""plugins/_gate.py (which of many patterns may match a text) and the trie regexes of plugins/_text.py: faster
ways to the same results, so each test compares them with the plain way."""

import random
import re
from pathlib import Path

from cases import CRISIS_CASES, EMOTION_LABELLED, read_tsv
from wellmate_plugins._gate import Gate, needed_strings
from wellmate_plugins._text import normalize, term_alternatives


def test_needed_strings_read_from_the_pattern():
    assert needed_strings(re.compile(r"\b(game|novel|book)\b.{0,20}\bsuicide\b")) == {"suicide"}
    # parts next to each other are joined into the strings they can make together
    assert needed_strings(re.compile(r"\b(pills?|rope) (are|is) ready")) == {
        "pill are ready", "pill is ready", "pills are ready", "pills is ready", "rope are ready", "rope is ready"}
    assert needed_strings(re.compile(r"(?:i|we) (?:want|wanna) (?:die|go)")) == {
        "i want die", "i want go", "i wanna die", "i wanna go", "we want die", "we want go", "we wanna die", "we wanna go"}
    assert needed_strings(re.compile(r"(?<!不是)(?:出国|移民)")) == {"出国", "移民"}
    assert needed_strings(re.compile(r"^(?!.*\bgym\b)(?=.*\b(lips?|face)\b)")) == {"lip", "face"}
    assert needed_strings(re.compile(r"[1-9]\d+")) == set("123456789")
    # what it cannot tell: every text may match, the pattern always runs
    assert needed_strings(re.compile(r"(?i)kill")) is None
    assert needed_strings(re.compile(r"(?i:kill) me")) is None
    assert needed_strings(re.compile(r"a?b?")) is None
    assert needed_strings(re.compile(r"\w+ing")) == {"ing"}
    assert needed_strings(re.compile(r"[^a]{3}")) is None


def test_a_replacement_that_makes_a_later_pattern_match_is_followed():
    patterns = [(re.compile("ab"), "X"), (re.compile("Xc"), "Y"), (re.compile("zz"), "W")]
    gate = Gate([p for p, _ in patterns])
    assert gate.sub(patterns, "abc abd") == "Y Xd"
    assert gate.sub(patterns, "nothing here") == "nothing here"
    masks = [re.compile("kill (time|it)"), re.compile(r"\|\s+(lol|haha)")]  # the second needs the first's mask
    assert Gate(masks).sub(masks, "kill time lol", " | ") == "  | "


def test_every_shipped_pattern_that_matches_a_sentence_is_let_through(make_wm):
    """Against the plain way: on every sentence of crisis_cases.tsv and emotion_labelled.tsv, read as each
    list reads it, a pattern that matches has its bit on; the check's own loops give the same text."""
    phrases = make_wm().service("safety").phrases.get()
    n = phrases.normalizer
    texts = [r["text"] for r in read_tsv(CRISIS_CASES)] + [r["text"] for r in read_tsv(EMOTION_LABELLED)]
    cleaned = [n.clean(t, mask=False) for t in texts]
    stems = [n.stems(n.clean(t)) for t in texts]
    lists = [(n.mask_patterns, cleaned), ([p for p, _ in n.alias_patterns], cleaned),
             ([p for _, p in phrases.concepts.patterns], stems),
             (phrases.detectors["crisis"].patterns + phrases.detectors["grey"].patterns, cleaned),
             ([p for rule in phrases.rules for p in rule.patterns], [normalize(t) for t in texts])]
    for patterns, corpus in lists:
        gate = Gate(patterns)
        for text in corpus:
            live = gate.live(text)
            assert all(live >> i & 1 for i, p in enumerate(patterns) if p.search(text)), text
    for text in cleaned:
        plain = text
        for pattern in n.mask_patterns:
            plain = pattern.sub(" | ", plain)
        assert n.mask_gate.sub(n.mask_patterns, text, " | ") == plain


def test_a_trie_of_many_branches_finds_what_a_plain_alternation_finds():
    draw = random.Random(3)
    chars = [chr(c) for c in range(0x4e00, 0x4e00 + 300)] + list("abcdefghij")
    words = {"".join(draw.choice(chars) for _ in range(draw.randint(1, 4))) for _ in range(2000)}
    words = {w for w in words if not re.fullmatch("[a-j]+", w)}  # (the Latin words are another regex's)
    plain = re.compile("(?=(" + "|".join(sorted(map(re.escape, words), key=len, reverse=True)) + "))")
    trie = re.compile("(?=(" + term_alternatives(words, False) + "))")
    for _ in range(200):
        text = "".join(draw.choice(chars) for _ in range(60))
        assert [(m.start(), m.group(1)) for m in trie.finditer(text)] == \
            [(m.start(), m.group(1)) for m in plain.finditer(text)]


def test_without_the_private_parser_every_pattern_runs_and_finds_the_same(make_wm, monkeypatch):
    """`re._parser` is private (sre_parse before 3.11): a Python without it, or whose parser fails, must
    cost speed, not results. Forced both ways: a parser that raises, and (in a fresh interpreter) a `re`
    with neither module, where the gate must still import."""
    import subprocess
    import sys

    import wellmate_plugins._gate as gate_module
    phrases = make_wm().service("safety").phrases.get()
    patterns = phrases.detectors["crisis"].patterns + phrases.detectors["grey"].patterns
    texts = [phrases.normalizer.clean(r["text"], mask=False) for r in read_tsv(CRISIS_CASES)]

    def broken(*args, **kwargs):
        raise RuntimeError("a parser that reads otherwise")

    monkeypatch.setattr(gate_module, "_parse", broken)
    assert needed_strings(re.compile(r"\bsuicide\b")) is None
    gate = Gate(patterns)
    assert gate.always == (1 << len(patterns)) - 1  # every pattern always tried
    found = 0
    for text in texts:
        plain = next((m.span() for m in (p.search(text) for p in patterns) if m), None)
        gated = gate.search(patterns, text)
        assert (gated.span() if gated else None) == plain, text
        found += plain is not None
    assert found > 10  # (the comparison is not all misses: 24 of the 145 sentences match one)
    masks = [re.compile("kill (time|it)"), re.compile(r"\|\s+(lol|haha)")]
    assert Gate(masks).sub(masks, "kill time lol", " | ") == "  | "

    code = ("import re, sys\n"
            "del re._parser\n"
            "sys.modules['re._parser'] = sys.modules['sre_parse'] = None\n"
            f"sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})\n"
            "import wellmate; wellmate.builtin_plugins_package()\n"
            "from wellmate_plugins import _gate\n"
            "assert _gate._parse is None\n"
            "patterns = [re.compile(r'\\bsuicide\\b'), re.compile('[1-9]\\\\d+ pills')]\n"
            "gate = _gate.Gate(patterns)\n"
            "assert gate.always == 3 and _gate.needed_strings(patterns[0]) is None\n"
            "assert gate.search(patterns, 'took 30 pills').group() == '30 pills'\n"
            "print('fallback ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "fallback ok" in done.stdout, done.stderr
