"""Running many regexes on a short text cheaply, with the same results (not a plugin: no hooks).

prompts/safety.yaml has a few hundred patterns (hard negatives to mask, aliases, concepts, red flags). Each
one alone costs ~0.6 us on a message even when it cannot match: Python's re finds no literal to search for
in a pattern that starts with \\b, a lookbehind or an alternation, and tries it at every position. Most
patterns can only match where one of a few literal strings stands (``\\b(game|novel|book)\\b ... suicide``
needs "suicide"), so `Gate` reads each pattern once when the file is loaded, works out such strings from
its parsed form (no list kept by hand: a pattern edited in the YAML gets its strings again), and finds all
the strings of all the patterns in one pass over the text (a trie, like the concepts'). A pattern whose
strings are all absent is not run: that it cannot match is certain, so every result is what running it
would give. A pattern with no such string (``[1-9]\\d+``, case-insensitive ones) always runs.
"""

from __future__ import annotations

import re
import warnings

from wellmate_plugins._text import _trie_pattern

# What a pattern is made of comes from the parser inside `re`: re._parser and re._constants since Python
# 3.11 (Debian bookworm, so Raspberry Pi OS, has 3.11; CI and the README ask for 3.11+), sre_parse and
# sre_constants before (deprecated names since 3.11). Both are private: a Python that has neither, or
# whose parser answers in another shape, leaves `_C` None or makes a reading fail, and then every
# pattern is tried on every text (`needed_strings` None: "always run"), which gives the same results,
# only slower (tests/test_gate.py forces this).
try:
    from re import _constants as _C, _parser as _sre_parse
except ImportError:  # pragma: no cover - Python 3.10 and older
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import sre_constants as _C
            import sre_parse as _sre_parse
    except ImportError:
        _C = _sre_parse = None

MAX_SET = 64  # the most strings one part of a pattern may stand for (a|b)(c|d)... multiplies them
MAX_CLASS = 10  # a character class of at most this many characters counts as that many one-character strings
try:
    _SUBPATTERN_LIKE = {_C.SUBPATTERN}
    _ATOMIC = getattr(_C, "ATOMIC_GROUP", None)
    _REPEATS = {_C.MAX_REPEAT, _C.MIN_REPEAT} | ({_C.POSSESSIVE_REPEAT} if hasattr(_C, "POSSESSIVE_REPEAT") else set())
    _parse = _sre_parse.parse
except AttributeError:  # no parser, or one without these names: nothing is read, every pattern runs
    _C = _parse = None


def _best(candidates: list[frozenset]) -> frozenset | None:
    """Of several sets any of which a match must hold, the one most texts lack: its shortest string longest,
    then the fewest strings."""
    candidates = [c for c in candidates if c and "" not in c]
    if not candidates:
        return None
    return max(candidates, key=lambda c: (min(len(s) for s in c), -len(c)))


def _class_chars(items) -> frozenset | None:
    chars = set()
    for op, av in items:
        if op is _C.LITERAL:
            chars.add(chr(av))
        elif op is _C.RANGE and av[1] - av[0] < MAX_CLASS:
            chars.update(chr(c) for c in range(av[0], av[1] + 1))
        else:  # NEGATE, a category (\d, \s), a wide range
            return None
    return frozenset(chars) if len(chars) <= MAX_CLASS else None


def _read(item) -> tuple[frozenset | None, frozenset | None]:
    """(every string ``item`` can match, if few; a set of strings one of which any of its matches holds)."""
    op, av = item
    if op is _C.LITERAL:
        s = frozenset({chr(av)})
        return s, s
    if op is _C.IN:
        s = _class_chars(av)
        return s, s
    if op is _C.AT:  # \b, ^, $: matches nothing, joins its neighbours
        return frozenset({""}), None
    if op in _SUBPATTERN_LIKE:
        group, add_flags, del_flags, sub = av
        if add_flags & (re.IGNORECASE | re.VERBOSE) or del_flags:
            raise _CaseSensitive
        return _sequence(sub)
    if _ATOMIC is not None and op is _ATOMIC:
        return _sequence(av)
    if op is _C.BRANCH:
        read = [_sequence(branch) for branch in av[1]]
        exact = None
        if all(e is not None for e, _ in read):
            union = frozenset().union(*(e for e, _ in read))
            exact = union if len(union) <= MAX_SET else None
        needs = [n if n is not None else (e if e is not None and "" not in e else None) for e, n in read]
        needed = frozenset().union(*needs) if all(n is not None for n in needs) else None
        return exact, needed
    if op in _REPEATS:
        low, high, sub = av
        exact, needed = _sequence(sub)
        if low == 0:
            return (exact | {""} if exact is not None and high == 1 else None), None
        if exact is not None and "" not in exact and needed is None:
            needed = exact
        return (exact if low == high == 1 else None), needed
    if op is _C.ASSERT:  # a lookahead or lookbehind that must match: what it needs is in the text too
        return None, _sequence(av[1])[1] or _exact_needs(_sequence(av[1])[0])
    return None, None  # ., a negated class or literal, a negative lookaround, a back reference...


def _exact_needs(exact):
    return exact if exact is not None and "" not in exact else None


def _sequence(items) -> tuple[frozenset | None, frozenset | None]:
    """`_read` of a sequence: adjacent parts whose strings are known are joined ("blade" + "s?")."""
    run = frozenset({""})
    exact_all = True
    candidates = []
    for item in items:
        exact, needed = _read(item)
        if exact is not None and len(run) * len(exact) <= MAX_SET:
            run = frozenset(a + b for a in run for b in exact)
            continue
        exact_all = False
        candidates.append(run)
        if exact is not None:  # too many strings to join: start again from this part
            run = exact
        else:
            run = frozenset({""})
            candidates.append(needed)
    candidates.append(run)
    return (run if exact_all else None), _best(candidates)


class _CaseSensitive(Exception):
    pass


def _minimal(strings: frozenset) -> frozenset:
    """Drops a string that holds another of the set: the shorter one is found wherever the longer is."""
    ordered = sorted(strings, key=len)
    kept: list[str] = []
    for s in ordered:
        if not any(k in s for k in kept):
            kept.append(s)
    return frozenset(kept)


def needed_strings(pattern: re.Pattern) -> frozenset | None:
    """Strings one of which is in any text ``pattern`` finds a match in, or None if it cannot tell."""
    if pattern.flags & re.IGNORECASE or _parse is None:
        return None
    try:
        exact, needed = _sequence(_parse(pattern.pattern, pattern.flags & ~re.UNICODE))
    except Exception:  # (case-insensitive parts; or a parser of another Python that reads otherwise): always run it
        return None
    needed = _best([n for n in (needed, _exact_needs(exact)) if n is not None])
    return _minimal(needed) if needed else None


class Gate:
    """The patterns of a list that may match a text (see the module's docstring), as a bit set: bit i is
    pattern i. ``live(text)`` costs one pass of one regex; `run` is what a loop of ``pattern.sub`` over
    the list gives."""

    def __init__(self, patterns: list[re.Pattern]):
        self.always = 0
        bits: dict[str, int] = {}
        for i, pattern in enumerate(patterns):
            needed = needed_strings(pattern)
            if needed is None:
                self.always |= 1 << i
            else:
                for s in needed:
                    bits[s] = bits.get(s, 0) | 1 << i
        # the trie reports the longest string at each place: it stands for the strings it starts with too
        self.bits = {s: b | 0 for s, b in bits.items()}
        for s in bits:
            for end in range(1, len(s)):
                if s[:end] in bits:
                    self.bits[s] |= bits[s[:end]]
        self.regex = self._finder(bits)
        # ...and the same of the ASCII strings alone, for an ASCII text (most English messages): the others cannot
        # stand in it, and without their branches the pass costs about half (the mask gate 22 -> 13 us, the rules'
        # 12 -> 6 us on a clause of 16 words). The same strings are found: a string's prefixes are ASCII too, so the
        # longest string found at each place is the one the whole trie finds there.
        self.ascii_regex = self._finder([s for s in bits if s.isascii()]) if any(not s.isascii() for s in bits) \
            else self.regex
        self.count = len(patterns)

    @staticmethod
    def _finder(strings) -> re.Pattern | None:
        """One regex that finds, at each place of a text, the longest of ``strings`` that starts there."""
        if not strings:
            return None
        trie: dict = {}
        for s in strings:
            node = trie
            for char in s:
                node = node.setdefault(char, {})
            node[""] = {}
        firsts = "".join(sorted({re.escape(s[0]) for s in strings}))
        return re.compile(f"(?=[{firsts}])(?=({_trie_pattern(trie)}))")

    def live(self, text: str) -> int:
        found = self.always
        regex = self.ascii_regex if text.isascii() else self.regex
        if regex is not None:
            bits = self.bits
            for s in set(regex.findall(text)):  # (the strings found, in C; each counted once)
                found |= bits[s]
        return found

    def search(self, patterns: list[re.Pattern], text: str, live: int | None = None) -> re.Match | None:
        """The first of ``patterns`` (in order) to match ``text``: its match, or None. ``live``: what `live`
        said of ``text`` already, if a wider gate read it (see `Gate.part`)."""
        live = self.live(text) if live is None else live
        while live:
            low = live & -live
            m = patterns[low.bit_length() - 1].search(text)
            if m:
                return m
            live ^= low
        return None

    def indices(self, text: str) -> list[int]:
        """The indices of the patterns that may match ``text``, in order."""
        live, out = self.live(text), []
        while live:
            low = live & -live
            out.append(low.bit_length() - 1)
            live ^= low
        return out

    def sub(self, patterns: list, text: str, replacement=None) -> str:
        """``text`` after each of ``patterns`` in turn replaced its matches by ``replacement`` (or by its own
        replacement: a list of (pattern, replacement)). A replacement may make a later pattern match: the
        text is looked at again after each one that changed it."""
        live = self.live(text)
        while live:
            low = live & -live
            i = low.bit_length() - 1
            pattern, repl = (patterns[i], replacement) if replacement is not None else patterns[i]
            new = pattern.sub(repl, text)
            live ^= low
            if new != text:
                text = new
                live = self.live(text) & ~((low << 1) - 1)
        return text
