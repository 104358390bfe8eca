"""Finding words in what users write: the text-matching library the emotion taggers, the safety
plugin, the offline companion and the reply labels share (not a plugin: no hooks).

``Terms(words).find(text)`` finds words of a list in a text normalized by `normalize`: Chinese
words anywhere, Latin words as whole words with their -s/-es/-ed/-ing forms.
"""

from __future__ import annotations

import re
import unicodedata

from wellmate import visible

LATIN_TERM = re.compile(r"[a-z0-9' .\-]+")
CLAUSE_END = re.compile(r"[。！？!?，,；;.\n]")


# Another person than the user, named: a pronoun, a relative or someone close ("my daughter", "our 2 year old", "my
# little sister", "my 15yo", 我妈, 他), a child by age or word (toddler, teens), a patient or a client of the user's. Who a
# message or a feeling is about (the offline companion: "my son is sick and I'm exhausted" is the user's tiredness,
# "我妈最近总是很累" not) and whose numbers a question asks about (plugins/_own_records.py: "my dad's blood pressure",
# 我妈最近血糖). One pattern for both since session 21 (CAUT): the records' own list lacked a colleague, a roommate, a
# grandchild, a child by age, 小孩, 婴儿, 闺女, 男友, 女友, 对象, 室友 (我闺女这周血糖怎么样 was answered from the user's
# records), the companion's "my patient", "my client". Of the records' list these are left out, as what measurably reads
# the companion's messages wrong, of no use to the records (a measure asked of is "my" one, or 我的, right before it):
# "them" and "their", of things as often as of people ("took them all", "the new meds are doing their job"), and owning
# no feeling ("sitting in their empty rooms feeling sad" is the user's); "my <any word> <person>", which made "my best
# friend moved abroad and the house feels so empty" news of the friend (12 replies of the offline and emotion sets lost
# their "you're feeling down"); 病人 (糖尿病人 is a diabetic, often the user: 糖尿病人能吃什么水果; 照顾病人一整天，累到不想动
# is the carer's tiredness).
_RELATIONS = (r"son|daughter|kids?|child|children|baby|toddler|boy|girl|mum|mom|mother|dad|father|parents?|husband|wife|"
              r"partner|grandma|grandpa|grandmother|grandfather|granny|brother|sister|friend|boyfriend|girlfriend|fiancée?|"
              r"colleague|coworker|co-worker|roommate|flatmate|grandson|granddaughter")
_KIN_ADJECTIVE = r"(?:little|teenage|teen|eldest|oldest|youngest|older|younger|grown-up|adult)\s+"
_AGED = r"\d+[\s-]*(?:years?|months?|yr)[\s-]*old\s+"
OTHER_PERSON = re.compile(
    r"(?<![a-z])(?:he|she|they|his|her|him"
    rf"|(?:my|our|his|her|the)\s+(?:{_KIN_ADJECTIVE}|{_AGED})?(?:{_RELATIONS})|(?:my|our)\s+(?:patient|client)"
    r"|(?:my|our)\s+\d+[\s-]*(?:years?|months?|yrs?)[\s-]*old|toddler|baby|newborn|teenagers?|teens?"
    # an age written short ("my 15yo is always exhausted", "my 8 y/o", "our 3yr": a parent asking, session 19, FIXO)
    r"|(?:my|our)\s+\d{1,2}\s?(?:yo|y/o|y\.o\.?|yrs?|mo|m/o)(?=[\s,.!?]|$))(?![a-z])"
    r"|孩子|小孩|宝宝|婴儿|儿子|女儿|闺女|老公|老婆|爸|妈|爷爷|奶奶|外公|外婆|姥|老人|(?<!其)他|她|朋友|同事|男友|女友|对象|室友")


def clause_before(text: str, start: int, reach: int | None = None) -> str:
    """The clause ``text[start:]`` is in, up to ``start``: what follows the last CLAUSE_END before it. With ``reach``,
    only its last ``reach`` characters, found in that many characters (the same answer for a reader that looks no
    further back): a search back to the text's start for every word found made a long message quadratic (R20:
    100,000 characters of "没有胸闷，" took the safety check 60 s)."""
    before = text[max(0, start - reach):start] if reach is not None else text[:start]
    return before[max((m.end() for m in CLAUSE_END.finditer(before)), default=0):]


def normalize(text: str) -> str:
    """Lower case, straight apostrophes, single spaces, no invisible characters (`wellmate.visible`: a
    message is stored with its soft hyphens and joiners, and 膝盖\u200b疼 is still 膝盖疼): the form `Terms`
    match in."""
    return " ".join(visible(str(text)).replace("\u2019", "'").lower().split())


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
        branches.append((run[0], re.escape(run) + _trie_pattern(child)))
    if not branches:
        return ""
    pattern = branches[0][1] if len(branches) == 1 else "(?:" + _dispatch(branches) + ")"
    # Where a word may end, the greedy ? tries the longer words first.
    return f"(?:{pattern})?" if "" in node else pattern


FANOUT = 8  # the most branches of a trie node tried one by one (see `_dispatch`)


def _dispatch(branches: list[tuple[str, str]]) -> str:
    """The branches of a trie node, each (its first character, its pattern), as an alternation. re tries
    an alternation's branches one by one at every position: the concepts' Chinese words start with ~1,000
    characters, and each character of a Chinese message was tested against them all (20 us a message of
    the 22 the concepts regex took). So many branches are cut into groups of `FANOUT` behind a class of
    their first characters, groups of groups if need be: a few class tests, then a few branches. The
    branches start with different characters, so at most one can match: what matches is the same."""
    if len(branches) <= FANOUT:
        return "|".join(pattern for _, pattern in branches)
    size = FANOUT
    while len(branches) > size * FANOUT:
        size *= FANOUT
    groups = [branches[i:i + size] for i in range(0, len(branches), size)]
    return "|".join("(?=[" + "".join(re.escape(first) for first, _ in group) + "])(?:" + _dispatch(group) + ")"
                    for group in groups)


class Terms:
    """Words to find in a text: Chinese words and emoji anywhere (Chinese has no spaces), Latin
    words only as whole words, also with -s/-es/-ed/-ing endings unless ``endings`` is false (a
    greeting's "hi" must not be found in "his"). Longer words are tried first."""

    def __init__(self, words, endings: bool = True):
        words = [normalize(w) for w in words if normalize(w)]
        self.regex = self._regex(words, endings)
        # ...and the regex of the ASCII words alone, which `find` reads an ASCII text with (most English messages):
        # no other word can stand in one, and the Chinese words' branches were tried at each of its places (the
        # crisis terms: 17 -> 6 us a clause of 16 words). It finds the same words.
        self.ascii_regex = self._regex([w for w in words if w.isascii()], endings) \
            if any(not w.isascii() for w in words) else self.regex

    @staticmethod
    def _regex(words, endings: bool) -> re.Pattern | None:
        other, latin = term_alternatives(words, False), term_alternatives(words, True)
        ending = "(?:s|es|ed|ing)?" if endings else ""
        if other:  # behind a class of its words' first characters: one test where no word starts (the same matches)
            firsts = "".join(sorted({re.escape(w[0]) for w in words if not LATIN_TERM.fullmatch(w)}))
            other = f"(?=[{firsts}])(?:{other})"
        parts = ([f"(?P<other>{other})"] if other else []) + (
            [rf"(?<![a-z0-9])(?P<latin>{latin}){ending}(?![a-z0-9])"] if latin else [])
        return re.compile("|".join(parts)) if parts else None

    def find(self, text: str):
        """Yield (start, word) for each match in normalized ``text``, left to right."""
        regex = self.ascii_regex if text.isascii() else self.regex
        for m in regex.finditer(text) if regex else ():
            groups = m.groupdict()
            yield m.start(), groups.get("other") or groups.get("latin")


CHINESE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
LATIN = re.compile(r"[A-Za-z]")


def language(text: str) -> str:
    """zh for text with Chinese characters, en for Latin-only text; zh when it cannot tell (no
    text, emoji only), since most users write Chinese. Read in NFKC form: full-width letters (an
    IME left in full-width mode: "ｉ　ｗａｎｔ　ｔｏ　ｄｉｅ") are English, not "cannot tell" (which got
    the Chinese crisis reply: session-14 audit)."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    if CHINESE.search(text):
        return "zh"
    return "en" if LATIN.search(text) else "zh"


class TypoIndex:
    """Keywords found from a word one typo away (a letter missing, extra, wrong, or two swapped): each
    keyword and each of its one-letter deletions point to it, and a word is looked up by itself and its
    own deletions. The safety plugin's fuzzy words and the offline companion's keywords share it."""

    def __init__(self, words):
        self.forms: dict[str, list[str]] = {}  # a keyword, or it less one letter -> keywords, first listed first
        for word in words:
            for form in (word, *_deletions(word)):
                found = self.forms.setdefault(form, [])
                if word not in found:
                    found.append(word)
        # One typo makes a word at most a letter longer than its keyword, so a longer one is looked up for
        # nothing: without this bound a 100,000-letter "word" cost 30 s of CPU and 10 GB in one message (n
        # deletions of n - 1 letters each; second review of session 10).
        self.longest = max((len(word) for word in words), default=0) + 1

    def matches(self, word: str):
        """Yield the keyword lists ``word`` and then each of its deletions find (none for a word
        longer than every keyword plus one letter)."""
        if len(word) > self.longest:
            return
        for form in (word, *_deletions(word)):
            found = self.forms.get(form)
            if found:
                yield found

    def first(self, word: str) -> str | None:
        """The first keyword one typo from ``word``, or None."""
        return next((found[0] for found in self.matches(word)), None)

    def only(self, word: str) -> str | None:
        """The keyword one typo from ``word`` if there is exactly one, else None."""
        found = {keyword for keywords in self.matches(word) for keyword in keywords}
        return found.pop() if len(found) == 1 else None


def _deletions(word: str):
    """``word`` less one letter, each way, one at a time (not a set of n copies of n - 1 letters)."""
    return (word[:i] + word[i + 1:] for i in range(len(word)))
