"""The ``safety`` plugin: crisis replies, red-flag notes and the medical disclaimer.

It sits on the reply path through the `before_reply` hook, so it works the same with every
provider, including none:

- A message with self-harm or suicide intent (Chinese or English, direct or indirect: "我不想活了",
  "everyone would be better off without me") gets a caring reply with the hotline and emergency
  numbers from config.yaml *instead of* any model's reply. No provider is called, so it answers
  even when every provider is down, and a small model cannot get this moment wrong. The session
  is flagged (``flags.crisis``), admins see the count at GET /api/v1/admin/flags, and later turns
  of that session tell the model to keep checking on the user's safety. A crisis is found in
  layers: the message is normalized (slang, homophones, spacing, typos, inflections), matched
  against phrases and semantic frames, and, for what no rule says, scored by a small classifier
  (``safety.model``, `python wellmate.py train-crisis`).
- A message possibly but not clearly at risk (a grey phrase or frame, or the classifier) gets a
  gentle check-in with the hotlines before the usual answer (``flags.check_in``).
- A model that answers is asked to mark a reply to a user at risk ([!check-in], [!crisis]); the
  marker is cut off and acted on (`ReplyGuard`). In a crisis-flagged session or a check-in turn
  the model's reply is held until it is checked, and one giving method or dose details is
  replaced by the crisis reply.
- An emergency symptom (chest pain with breathlessness, stroke signs, heavy bleeding, collapse,
  a sudden worst headache, a swelling throat) puts "call 120 now" at the very top of the reply:
  in a stream it is the first delta, ahead of any of the model's words.
- The one-line medical disclaimer is added after the first reply of a session (or every reply,
  or never: ``safety.disclaimer``).

The phrases and wordings live in prompts/safety.yaml, which users edit (re-read when it changes);
the numbers live in config.yaml. tests/data/crisis_cases.tsv is the test set: every positive
must be found; bench/safety prints recall and false positives there and on the held split of
models/training/crisis_*.tsv.
"""

from __future__ import annotations

import logging
import math
import re
import sys
import threading
import unicodedata
from bisect import bisect_right
from collections import Counter
from itertools import accumulate
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple

from wellmate import Index, Setting, hookimpl, now_iso, page_args, visible
from wellmate_plugins._gate import Gate
from wellmate_plugins._files import WatchedYaml, data_file_candidates, first_file, stop_if_unusable
from wellmate_plugins._openapi import Api, array, integer, obj, string
from wellmate_plugins.auth import require_admin
from wellmate_plugins._cautions import Cautions, Rule, has
from wellmate_plugins._safety_text import MASK, both_languages, fill, items, negation_pattern, number_settings, numbers
from wellmate_plugins._safety_text import patterns as _patterns
from wellmate_plugins._text import CLAUSE_END, LATIN_TERM, Terms, TypoIndex, language, normalize, term_alternatives

log = logging.getLogger("wellmate.safety")

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@hookimpl
def config_schema():
    return {"safety": {
        "phrases": Setting("prompts/safety.yaml", "Crisis and red-flag phrases and wordings, relative to "
                                                  "config.yaml; re-read when it changes."),
        **number_settings(),
        "red_flag_agents": Setting([], "Agents whose replies get red-flag notes; empty: every agent.", list),
        "disclaimer": Setting("first", "When the medical disclaimer is added: first (reply of a session), "
                                       "always, or never.", choices=["first", "always", "never"]),
        "model": Setting("models/crisis.json", "The crisis classifier's weights (python wellmate.py train-crisis "
                                               "writes them), relative to config.yaml; empty: phrase rules only."),
        "crisis_threshold": Setting(0.95, "Classifier probability of crisis at or above which a message gets the "
                                         "crisis reply.", float, min=0.0, max=1.0),
        # 0.40 (was 0.45) since the classifier reads concepts in English: on the held split English crisis recall
        # 89.8 -> 90.5% for hard negatives 3.2 -> 3.6%, Chinese 91.2 -> 92.6% for 4.1 -> 4.5%; A-G one more
        # English hard negative of 460 (bench/safety --sweep). The best value per language is the same: no key
        # per language (safety5 had measured Chinese best at 0.50 and English at 0.40 for another model).
        # 0.35 (was 0.40) and 0.50 (was 0.55) in session 11, with hard negatives weighed three times in training and
        # the mean of three runs (train-crisis): on the held split crisis recall en 93.8%, zh 92.2% (93.8, 92.8 before)
        # for hard negatives 4.0% and 3.5% (5.2, 5.1).
        "checkin_threshold": Setting(0.35, "Classifier probability of crisis plus grey at or above which a message "
                                          "with a risk word gets a check-in note before the reply (one not in "
                                          "Chinese: see checkin_threshold_zh).", float, min=0.0, max=1.0),
        # One value per language since session 13: on 4 folds of the train split (bench/crisis_folds' folds, rules +
        # classifier) Chinese hard negatives were 3.1% at 0.35, English 4.6%. Chinese at 0.30: crisis recall 92.4 ->
        # 93.1%, hard negatives 3.1 -> 3.5% (4.2% in the worst fold; 0.25: 3.9%, two folds over 4%). English
        # stays at 0.35: under 4% it needs 0.45-0.50 and loses 0.7-0.9 points of recall.
        "checkin_threshold_zh": Setting(0.30, "The same for a message in Chinese (one with a Chinese character): "
                                              "checkin_threshold is for the others.", float, min=0.0, max=1.0),
        "checkin_threshold_no_cue": Setting(0.50, "The same for a long message with no risk word (the classifier "
                                                  "reads every message of 10 words or more) and for one whose only "
                                                  "risk word is an everyday one (frames.concepts.weak_cue: end, "
                                                  "tonight, rope).", float, min=0.0, max=1.0),
        # 0.90, chosen on rows the classifier never trained on: of the short ones with no risk word that the rules
        # leave alone, the dev sets A-H get a check-in for 11 of their 12 grey rows (0.95: 10) and for none of their
        # other rows, nor for any of the short everyday sentences of tests/data/emotion_labelled.tsv (0.80: 4) or of
        # the emotion dev sets (1,176 messages; 0.80: 1). Lower, the classifier's sure-looking verdicts on a few
        # words are noise ("i'm a morning person now" 0.88).
        "checkin_threshold_short": Setting(0.90, "The same for a short message (4 to 9 words or Chinese characters) with no risk word and no "
                                                 "physical-care word: its check-in needs the classifier this sure "
                                                 "(\"i'm a shell of who i used to be\"); 1.0: none.", float, min=0.0, max=1.0),
        # 0.85 (session 17, HNEN), for talk about a topic (a study, a text, a case, a patient, a character): on the dev
        # set HN the crises said in such a frame that the frame's words hid were at p(crisis) 0.85-1.00 and 17 of its 20
        # at 0.85 or more; of its 101 hard negatives in such frames 2 were (0.90, 0.91). The crisis reply still needs
        # crisis_threshold.
        "checkin_threshold_talk": Setting(0.85, "The same for talk about a topic (a study, a text read, a case, a "
                                                "patient, a character: a talk frame marked heard, or a talk word): "
                                                "the writer's own risk said in it in words of no rule; 1.0: none.",
                                          float, min=0.0, max=1.0),
        "model_judgement": Setting("auto", "Ask the model to mark a reply to a user who may be at risk: auto (when "
                                           "a model is among the agent's providers or the llm tagger runs inline), "
                                           "always, or never.", choices=["auto", "always", "never"]),
        "check_replies": Setting(True, "In a crisis-flagged session or a check-in turn, hold a model's reply until "
                                       "it is checked, and replace one that gives method or dose details.", bool),
    }}


# What a crisis reply, check-in or crisis_system may say in braces: the numbers from config.yaml.
NUMBERS = ("hotlines", "emergency", "first_emergency")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def placeholders_known(wording: str, where: str, known: tuple[str, ...]) -> str:
    """``wording`` if every {placeholder} in it is one ``fill`` fills; otherwise a ValueError (the
    file is refused and its last good version stays): "{hotline}" would reach the user as written."""
    unknown = sorted({name for name in _PLACEHOLDER.findall(wording) if name not in known})
    if unknown:
        raise ValueError(f"{where}: unknown placeholder {', '.join('{' + n + '}' for n in unknown)}; "
                         f"this wording may use {', '.join('{' + n + '}' for n in known)}")
    return wording


class RedFlag(Rule):
    """One red flag (plugins/_cautions.py reads its words, patterns, groups and masks as it reads a caution), with the
    note that answers it."""

    def __init__(self, name: str, spec: dict):
        super().__init__(name, spec)
        note = spec.get("note") or {}
        self.note = {lang: placeholders_known(str(note.get(lang) or ""), f"red_flags.{name}.note.{lang}", ("emergency",))
                     for lang in ("zh", "en")}
        # The note for the same emergency told of someone else ("她站在窗台上说自己能飞走": the note said to keep *yourself*
        # away from heights); used when the turn gets the helper's wording. Optional: the note stands without it.
        other = spec.get("note_other") or {}
        self.note_other = {lang: placeholders_known(str(other.get(lang) or ""), f"red_flags.{name}.note_other.{lang}",
                                                    ("emergency",)) for lang in ("zh", "en")}


# -- reading a message the way a person would -------------------------------------------------------
#
# Crisis messages are rarely written the way a phrase list is: 紫砂 for 自杀, "s u i c i d e", 自 杀,
# "ending my life", "sucide". So before anything is matched the text is rewritten into one plain
# form (`Normalizer.clean`), and English words are cut to a stem on both sides (`Normalizer.stems`,
# applied to the phrase lists too) so that one entry covers every inflection. What the rewriting
# does is in prompts/safety.yaml (`normalize:`), so users can add a slang word without code.

_CJK_RANGE = "\u3400-\u9fff\uf900-\ufaff"
# Separators inside a run of Chinese characters ("自 杀", "自.杀", "自*杀"). Sentence punctuation
# (，。！？) is not one: it keeps clauses apart, so a frame cannot join words of two sentences.
_CJK_GAP = re.compile(rf"(?<=[{_CJK_RANGE}])[\s.·・*_~\-/|\\+]+(?=[{_CJK_RANGE}])")
# Three or more single letters with separators: "s u i c i d e", "k.m.s".
_SPACED = re.compile(r"(?<![a-z0-9'])[a-z](?:[ .\-*_]+[a-z](?![a-z0-9'])){2,}")
_SPACED_SEP = re.compile(r"[ .\-*_]+")
_SPACED_GAP = re.compile(r"(?:[.\-*_]*\s){2,}[ .\-*_]*")  # "e n d   i t": two spaces or more end a word
# Three or more pieces of letters joined by hyphens, cut where no word ends: "end-ing-it-to-night" (T: no hotline). At most
# 40 letters: longer ones are left as written (`Normalizer.segment` reads no longer word), so a hostile run stays linear.
_HYPHENED = re.compile(r"(?<![a-z0-9'\-])[a-z]+(?:-[a-z]+){2,}(?![a-z0-9'\-])")
# A word of letters and digits (d13, k1ll3d): read as leetspeak when that gives a listed word.
_MIXED = re.compile(r"(?<![a-z0-9'])(?=[a-z0-9]*[a-z])(?=[a-z0-9]*[0-9])[a-z0-9]{3,}(?![a-z0-9'])")
_REPEAT = re.compile(r"([a-z])\1{2,}")  # "dieeee", "killll"
_LEET = re.compile(r"(?<=[a-z])[0134578@$](?=[a-z])")  # su1c1de, k1ll, d3ath
_LEET_LETTERS = str.maketrans("0134578@$", "oieastbas")
_WORD = re.compile(r"[a-z][a-z']*")
# ...of five characters or more: the words `Normalizer._correct` may correct (it keeps shorter ones as they are). A run
# of letters and apostrophes has the same words of five or more by either regex, and the shorter ones cost no call.
_LONG_WORD = re.compile(r"[a-z][a-z']{4,}")
# Pinyin typed with its tone marks (自shā, 我想 sǐ: crisis_Y and a training row) reads as the plain letters the aliases
# know (自sha, si); an accented Latin letter of another language (café, más) loses only its accent. One character for
# one, so the length and every span stay as they were.
_TONE_MARKS = str.maketrans("āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜü", "aaaaeeeeiiiioooouuuuuuuuu")
_VOWELS = set("aeiou")
CORRECTED_MAX = 20000  # the most words whose correction `Normalizer._correct` keeps
STEMMED_LEN = 40  # the longest word whose stem `Normalizer._stem_of` keeps
# right after a decision ("i've decided" + " to | "): what was decided was masked as an ordinary ending (see `Phrases.assess`)
DECISION_MASKED = re.compile(r"\s*(?:to\s*)?\|")


def stem(word: str, irregular: dict) -> str:
    """A crude English stem, the same for the text and the lists: ending, ends, ended -> end;
    cutting -> cut; overdosed, overdose -> overdos; died, dying -> die (irregular)."""
    word = irregular.get(word, word)
    if len(word) <= 3 or "'" in word:
        return word
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[:-len(suffix)]
            if base[-1] == base[-2] and base[-1] not in "lsz":  # cutting, planned (killed keeps its ll)
                base = base[:-1]
            return base[:-1] if base.endswith("e") else base
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("es") and word[-3] in "sxz" or word.endswith(("ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def _is_latin(word: str) -> bool:
    return bool(LATIN_TERM.fullmatch(word))


def _words(spec) -> list[str]:
    """The words of a {zh: [...], en: [...]} mapping, or of a plain list (normalized)."""
    return [w for w in (normalize(unicodedata.normalize("NFKC", x)) for x in both_languages(spec)) if w]


class Normalizer:
    """The rewriting `normalize:` in prompts/safety.yaml describes (see there)."""

    def __init__(self, spec: dict, masks: list[str], mask_patterns: list):
        spec = spec or {}
        self.irregular = {normalize(k): normalize(v) for k, v in (spec.get("irregular") or {}).items()}
        self.keep = frozenset(normalize(str(w)) for w in items(spec.get("keep")))
        self.join_spaced = bool(spec.get("join_spaced_letters", True))
        self.compact_cjk = bool(spec.get("compact_chinese", True))
        self.squeeze = bool(spec.get("squeeze_repeats", True))
        self.leet = bool(spec.get("leetspeak", True))
        self.aliases = {}
        for target, variants in (spec.get("aliases") or {}).items():
            for variant in _words(variants):
                self.aliases[variant] = normalize(str(target))
        self.alias_regex = self._finder(self.aliases)
        # short English typos (kil, dei): only in a message with no Chinese, where dei is 得 (你dei多喝水)
        self.english_typos = {variant: normalize(str(target)) for target, variants in (spec.get("english_typos") or {}).items()
                              for variant in _words(variants)}
        self.english_typo_regex = self._finder(self.english_typos)
        self.alias_patterns = []
        for i, pair in enumerate(spec.get("alias_patterns") or []):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise ValueError(f"normalize.alias_patterns[{i}]: write [pattern, replacement]")
            self.alias_patterns.append((_patterns([pair[0]], "normalize.alias_patterns")[0], str(pair[1])))
        self.mask_regex = self._finder({w: MASK for w in masks})
        self.mask_patterns = mask_patterns
        # which of the patterns may match a text, found in one pass (each alone cost ~0.6 us a message, ~120 us
        # for the 178 of them; see plugins/_gate.py): the same text comes out
        self.mask_gate = Gate(mask_patterns)
        self.alias_gate = Gate([pattern for pattern, _ in self.alias_patterns])
        # Fuzzy: one edit (a letter missing, extra, wrong or swapped) from a long word of the list.
        # Only long, rare words: "giving" is one edit from "living".
        fuzzy = [word for word in _words(spec.get("fuzzy")) if len(word) >= 6 and _is_latin(word)]
        self.fuzzy = TypoIndex(fuzzy) if fuzzy else None
        self.known = set(fuzzy)
        self._corrected: dict[str, str] = {}  # word -> its correction (see `_correct`)
        self._stemmed: dict[str, str] = {}  # word -> its stem (see `_stem_of`)
        self.vocabulary: set[str] = set()  # the Latin words of every list (`Phrases` fills it)

    @staticmethod
    def _finder(table: dict) -> re.Pattern | None:
        other, latin = alternatives(table, False), alternatives(table, True)
        parts = ([other] if other else []) + ([rf"(?<![a-z0-9'])(?:{latin})(?![a-z0-9'])"] if latin else [])
        return re.compile("|".join(parts)) if parts else None

    def clean(self, text: str, mask: bool = True) -> str:
        """NFKC (full-width letters), lower case, separators closed up, repeats squeezed, aliases
        replaced (after hard negatives are masked), near-misses of long words corrected. Invisible
        characters go first (`wellmate.visible`): a zero-width space or a soft hyphen inside a word
        hid it ("kill\u00admyself" got a check-in, 我想\u200b死 too); a chat message is stored without
        them already, but a model's reply, a reminder or a plugin's text may still have them."""
        text = normalize(unicodedata.normalize("NFKC", visible(str(text)))).translate(_TONE_MARKS)
        # (a pass is skipped where what it needs is absent: Chinese characters, a hyphen)
        if self.compact_cjk and not text.isascii():
            text = _CJK_GAP.sub("", text)
        if self.join_spaced:
            text = _SPACED.sub(self._join_spaced, text)
            if "-" in text:
                text = _HYPHENED.sub(self._join_hyphened, text)
        if self.leet:
            text = _LEET.sub(lambda m: m.group().translate(_LEET_LETTERS), text)
            text = _MIXED.sub(self._leet_word, text)
        if self.squeeze:
            text = _REPEAT.sub(lambda m: m.group(1) if m.group(1) in _VOWELS else m.group(1) * 2, text)
        # Hard negatives first: 紫砂壶 is a teapot before 紫砂 can become 自杀.
        if mask and self.mask_regex:
            text = self.mask_regex.sub(MASK, text)
        if mask and self.mask_patterns:
            text = self.mask_gate.sub(self.mask_patterns, text, MASK)
        if self.alias_regex:
            text = self.alias_regex.sub(self._alias, text)
        if self.english_typo_regex and not _CJK.search(text):
            text = self.english_typo_regex.sub(lambda m: self.english_typos[m.group()], text)
        if self.alias_patterns:
            text = self.alias_gate.sub(self.alias_patterns, text)
        if self.fuzzy:
            text = _LONG_WORD.sub(self._correct, text)
        return text

    def _alias(self, m) -> str:
        """A slang word's plain form. A Latin one for an emoji stands apart as a word: "💊💊💊" was
        "pillspillspills", which no list or rule reads as pills."""
        target, text = self.aliases[m.group()], m.string
        if _is_latin(target) and not _is_latin(m.group()) and not _CJK.search(m.group()):
            before = " " if m.start() and not text[m.start() - 1].isspace() else ""
            after = " " if m.end() < len(text) and not text[m.end()].isspace() else ""
            return before + target + after
        return target

    def _join_spaced(self, m) -> str:
        """Spaced-out letters joined: a gap of two spaces or more ends a word ("e n d  i t" is "end
        it"), and a run that is no listed word is cut into listed words where it can be
        ("e n d i t a l l" is "end it all", "i w a n t t o d i e" is "i want to die")."""
        words = [_SPACED_SEP.sub("", group) for group in _SPACED_GAP.split(m.group())]
        return " ".join(self.segment(word) for word in words if word)

    def _join_hyphened(self, m) -> str:
        """Hyphened pieces read as the listed words they make together when some piece is no listed word: "end-ing-it-
        to-night" is "ending it tonight". Pieces that are all words stay ("state-of-the-art", "end-my-life"), and so
        does a run that no listed words make up ("mother-in-law")."""
        pieces = m.group().split("-")
        if all(piece in self.vocabulary for piece in pieces):
            return m.group()
        joined = "".join(pieces)
        words = self.segment(joined)  # (itself when it is one listed word: "kil-l-my-self" is "killmyself", an alias)
        return words if words != joined or joined in self.vocabulary else m.group()

    def segment(self, word: str) -> str:
        """``word``, or the fewest listed words it is made of (each of 2+ letters, or i or a; of
        as many, the one with fewer single letters: "enditall" is "end it all", not "end i tall")."""
        if word in self.vocabulary or not self.vocabulary or len(word) > 40:
            return word
        best: list = [None] * (len(word) + 1)  # (cost, words) of the best cut of word[:end]
        best[0] = (0, [])
        for end in range(1, len(word) + 1):
            for start in range(max(0, end - 20), end):
                piece = word[start:end]
                if best[start] is not None and (piece in self.vocabulary if len(piece) > 1 else piece in "ia"):
                    cost = best[start][0] + (3 if len(piece) == 1 else 2)
                    if best[end] is None or cost < best[end][0]:
                        best[end] = (cost, best[start][1] + [piece])
        return " ".join(best[-1][1]) if best[-1] else word

    def _leet_word(self, m) -> str:
        read = m.group().translate(_LEET_LETTERS)
        return read if read in self.vocabulary else m.group()

    def _correct(self, m) -> str:
        word = m.group()
        if len(word) < 5 or word in self.known:
            return word
        # a word's correction, once: each of its deletions was looked up at every message (~6 us a message)
        corrected = self._corrected.get(word)
        if corrected is None:
            corrected = self.fuzzy.first(word) or word
            if len(self._corrected) >= CORRECTED_MAX:
                self._corrected.clear()  # bounded: a flood of made-up words costs memory no longer than this
            self._corrected[word] = corrected
        return corrected

    def stems(self, clean: str) -> str:
        return _WORD.sub(self._stem_of, clean)

    def _stem_of(self, m) -> str:
        """A word's stem (or the word, if `keep` has it), worked out once a word: each part of a long message is stemmed
        again, and most words come back from message to message (bounded as `_corrected` is)."""
        word = m.group()
        stemmed = self._stemmed.get(word)
        if stemmed is None:
            stemmed = word if word in self.keep else stem(word, self.irregular)
            if len(word) <= STEMMED_LEN:  # (not a 100,000-letter "word": 20,000 of them would be 2 GB)
                if len(self._stemmed) >= CORRECTED_MAX:
                    self._stemmed.clear()
                self._stemmed[word] = stemmed
        return stemmed

    def phrase(self, word: str) -> str:
        """A list entry in the form `stems` gives the text ("gonna" is "going to" in both)."""
        return self.stems(self.clean(word, mask=False))


def alternatives(words, latin: bool) -> str:
    """`term_alternatives` behind a class of the characters its words start with: re tries a
    trie's first branches one by one at every position of the text, a class is one test. The
    concepts' ~3,000 words were found in 64 us a message, 21 us with the class (the same spans)."""
    words = [w for w in words if bool(LATIN_TERM.fullmatch(w)) == latin]
    pattern = term_alternatives(words, latin)
    if not pattern:
        return ""
    firsts = "".join(sorted({re.escape(w[0]) for w in words}))
    return f"(?=[{firsts}])(?:{pattern})"


def _within(outer):
    """A test of whether a span (start, end) lies within one of ``outer``: ``outer`` sorted once (see `_all_within`)."""
    ordered = sorted(outer)
    starts = [start for start, _ in ordered]
    reach = list(accumulate((end for _, end in ordered), max))

    def inside(start: int, end: int) -> bool:
        i = bisect_right(starts, start)
        return i > 0 and reach[i - 1] >= end
    return inside


def _all_within(spans, outer) -> bool:
    """Whether each of ``spans`` (start, end) lies within one of ``outer``. Each risk word was
    checked against every care word: a message of one phrase repeated (20,000 chars of 我有高血压，)
    made 5.5 million checks, 1.1 s of CPU; now ``outer`` is sorted once, with the furthest end any
    span starting at or before each start reaches, and each span is one binary search."""
    ordered = sorted(outer)
    starts = [start for start, _ in ordered]
    reach = list(accumulate((end for _, end in ordered), max))
    for start, end in spans:
        i = bisect_right(starts, start)
        if i == 0 or reach[i - 1] < end:
            return False
    return True


class Concepts:
    """Named word lists (`frames.concepts`), found in one pass over the stemmed text: every
    concept word at every position, overlapping (我想 and 想死 both)."""

    def __init__(self, spec: dict, normalizer: Normalizer):
        self.by_word: dict[str, set[str]] = {}
        self.patterns: list[tuple[str, re.Pattern]] = []
        # A concept's words that do not count inside another concept's spans (`not_within`): "die" in
        # "my aunt died after a long illness" is a death reported, not the outcome a method question asks for
        self.not_within: dict[str, list[str]] = {}
        for name, words in (spec or {}).items():
            name = str(name)
            if isinstance(words, dict) and "patterns" in words:
                self.patterns += [(name, p) for p in _patterns(words.get("patterns"), f"frames.concepts.{name}")]
            if isinstance(words, dict) and "not_within" in words:
                self.not_within[name] = [str(c) for c in items(words.get("not_within"))]
            if isinstance(words, dict):
                words = {k: v for k, v in words.items() if k not in ("patterns", "not_within")}
            for word in _words(words):
                self.by_word.setdefault(normalizer.phrase(word), set()).add(name)
        self.names = {str(n) for n in (spec or {})}
        unknown = [c for outer in self.not_within.values() for c in outer if c not in self.names]
        if unknown:
            raise ValueError(f"frames.concepts: not_within names unknown concepts {unknown}")
        # The regex reports the longest word at each place (楼顶, not 楼): it stands for the
        # shorter words it starts with too (Latin ones only where a word ends).
        for word, names in list(self.by_word.items()):
            for end in range(1, len(word)):
                prefix = word[:end]
                if prefix in self.by_word and (not _is_latin(word) or word[end] == " "):
                    names.update(self.by_word[prefix])
        other, latin = alternatives(self.by_word, False), alternatives(self.by_word, True)
        parts = ([rf"(?=({other}))"] if other else []) + (
            # (an apostrophe inside a word keeps it whole, "don't" is no "don"; a single quote around words is no part of
            # them: in "my kid said 'I'm gonna die' because I took away his ipad lol" neither 'i'm nor die' was read, the laugh
            # beside the death word made no joke of it and the crisis reply came; session 21, RISK2)
            [rf"(?<![a-z0-9])(?<![a-z0-9]')(?=({latin})(?![a-z0-9])(?!'[a-z0-9]))"] if latin else [])
        self.regex = re.compile("|".join(parts)) if parts else None
        self.names_of = {word: tuple(sorted(names)) for word, names in self.by_word.items()}
        self.gate = Gate([pattern for _, pattern in self.patterns])  # the patterns that may match (plugins/_gate.py)

    def find(self, stems: str) -> dict[str, list[tuple[int, int]]]:
        """concept name -> [(start, end), ...] in ``stems``."""
        found: dict[str, list[tuple[int, int]]] = {}
        names_of = self.names_of
        for m in self.regex.finditer(stems) if self.regex else ():
            word = m.group(m.lastindex)
            span = (m.start(), m.start() + len(word))
            for name in names_of.get(word, ()):
                spans = found.get(name)
                if spans is None:
                    found[name] = [span]
                else:
                    spans.append(span)
        for i in self.gate.indices(stems) if self.patterns else ():
            name, pattern = self.patterns[i]
            for m in pattern.finditer(stems):
                found.setdefault(name, []).append((m.start(), m.end()))
        for name, outer in self.not_within.items():
            if name not in found:  # (most messages have none of these: their outer spans are not gathered)
                continue
            spans = [span for c in outer for span in found.get(c, ())]
            if spans:
                # (the outer spans sorted once for all of them: one `_all_within` a span sorted them each time, and
                # 100,000 characters of 如果以后有人 took 400 s once `after_me` was not_within `care_in_case`: session 16)
                inside = _within(spans)
                kept = [(s, e) for s, e in found[name] if not inside(s, e)]
                if kept:
                    found[name] = kept
                else:
                    del found[name]
        return found


class Frame:
    """A rule of `frames.rules`: one word of every concept in `all`, starting within `window`
    characters of each other, and none of the concepts in `none` anywhere in the message."""

    def __init__(self, i: int, spec: dict, concepts, levels: tuple[str, ...], section: str = "frames.rules"):
        where = f"{section}[{i}]"
        if not isinstance(spec, dict):
            raise ValueError(f"{where}: must be a mapping with name, level, all")
        self.name = str(spec.get("name") or f"rule{i}")
        self.level = str(spec.get("level") or "crisis")
        if self.level not in levels:
            raise ValueError(f"{where} ({self.name}): level must be one of {', '.join(levels)}")
        self.all = [str(c) for c in items(spec.get("all"))]
        self.none = [str(c) for c in items(spec.get("none"))]
        unknown = [c for c in self.all + self.none if c not in concepts.names]
        if unknown or not self.all:
            raise ValueError(f"{where} ({self.name}): " + (f"unknown concepts {unknown}" if unknown else "needs all: [...]"))
        self.window = int(spec.get("window") or 30)
        self.needs, self.excludes = frozenset(self.all), frozenset(self.none)
        # Found also in talk or a joke (see `Phrases.assess`): what a message reports happened to
        # someone (a friend's overdose) is not less real for being next to "movie" or "lol".
        self.in_talk = bool(spec.get("in_talk", False))
        # A reply rule also read across a sentence and the one before it (see `Phrases.unsafe_reply`); a rule of
        # frames.rules whose words may lie in different sentences of a user's message (see `matches`).
        self.across = bool(spec.get("across", False))
        # A talk frame that makes a whole message talk (a joke, a professional's question, a story on a
        # screen): its parts are not read apart (see `Safety.assess`). Without it a talk frame explains its own
        # words only (moving house, an ordinary ending, a medicine question), and a long message's other
        # parts are still read.
        self.whole = bool(spec.get("whole", False))
        if self.whole and self.level != "talk":
            raise ValueError(f"{where} ({self.name}): whole is for talk frames only")
        # A talk frame about a topic (a study, a text, a case, a character) in which the classifier is still heard, at
        # safety.checkin_threshold_talk: what the frame's `none` has no word for ("Tonight I'm using one", 明天我就不在了)
        # the classifier reads in the writer's own sentences (see `Phrases.assess`).
        self.heard = bool(spec.get("heard", False))
        if self.heard and self.level != "talk":
            raise ValueError(f"{where} ({self.name}): heard is for talk frames only")
        # A talk frame about a thing asked or done in one clause (a medicine question, food eaten, an animal's scratch) that
        # explains its own clause only: what the message says beside that clause is read as if it were not there, by
        # the rules and the classifier (see `Phrases.beside_clause`). Without it a frame that is not `whole` still
        # silenced the whole message, and "Is it ok to take ibuprofen with lexapro, I don't see the point of living
        # anymore" got nothing (session 21, THIRD).
        self.clause = bool(spec.get("clause", False))
        if self.clause and (self.level != "talk" or self.whole):
            raise ValueError(f"{where} ({self.name}): clause is for talk frames that are not whole")

    def matches(self, found: dict, cuts: list | tuple = ()) -> bool:
        """Whether ``found`` (concept -> spans) has a word of each of `all` within `window` characters and no
        sentence end of ``cuts`` (sorted positions, if given) between them, and none of `none`."""
        if not self.needs <= found.keys() or not self.excludes.isdisjoint(found):
            return False
        if len(self.all) == 1:
            return True
        events = sorted((start, end, i) for i, c in enumerate(self.all) for start, end in found[c])
        for a, (start, _, _) in enumerate(events):
            seen = set()
            limit = start + self.window
            if cuts and not self.across:
                k = bisect_right(cuts, start)
                if k < len(cuts):
                    limit = min(limit, cuts[k])
            for s, _, i in events[a:]:
                if s > limit:
                    break
                seen.add(i)
                if len(seen) == len(self.all):
                    return True
        return False


class Detector:
    """One level of `crisis`, `grey` or `unsafe_reply`: its `terms` (stemmed), `patterns` (on the
    clean text) and the frames of that level; `topic_terms` count only in a message with none of
    the `mention_context` concepts (自杀 is a crisis, 自杀率的研究 is not)."""

    def __init__(self, spec: dict, name: str, normalizer: Normalizer, frames: list[Frame], concepts: Concepts):
        spec = spec or {}
        self.terms = Terms([normalizer.phrase(w) for w in both_languages(spec.get("terms"))])
        self.topic_terms = Terms([normalizer.phrase(w) for w in both_languages(spec.get("topic_terms"))])
        self.mention_context = [str(c) for c in items(spec.get("mention_context"))]
        unknown = [c for c in self.mention_context if c not in concepts.names]
        if unknown:
            raise ValueError(f"{name}.mention_context: unknown concepts {unknown}")
        self.patterns = _patterns(spec.get("patterns"), f"{name}.patterns")
        self.gate = Gate(self.patterns)  # the patterns that may match (plugins/_gate.py)
        self.frames = [f for f in frames if f.level == name]
        # the frames by the first concept of their `all`: a frame can match only a message with that concept (each
        # level's ~70 frames were tried one by one on every message)
        self.by_concept: dict[str, list[int]] = {}
        for i, frame in enumerate(self.frames):
            self.by_concept.setdefault(frame.all[0], []).append(i)

    def frames_for(self, found: dict) -> list[Frame]:
        """The frames of this level that may match a message whose concepts are ``found``, in file order."""
        by_concept = self.by_concept
        indices = [i for name in found if name in by_concept for i in by_concept[name]]
        return [self.frames[i] for i in sorted(indices)]

    def why(self, clean: str, stems: str, found: dict, talk: bool = False, cuts=(), live: int | None = None) -> str | None:
        """What matched (a term, "pattern", or a frame's name), or None. In ``talk`` (about a film,
        research, a joke) only the frames marked `in_talk`. ``cuts``: where sentences end in ``stems``
        (a frame's words are looked for within one). ``live``: which of `patterns` may match ``clean``, if
        the caller's gate read it already (see `Phrases.assess`)."""
        if not talk:
            for _, word in self.terms.find(stems):
                return word
            if not any(c in found for c in self.mention_context):
                for _, word in self.topic_terms.find(stems):
                    return word
            if self.patterns and self.gate.search(self.patterns, clean, live):
                return "pattern"
        for frame in self.frames_for(found):
            if (frame.in_talk or not talk) and frame.matches(found, cuts):
                return frame.name
        return None


# `talk` frames find talk or a joke rather than the writer's own risk ("wanted to die lmao",
# a hospital's screening policy): see `Phrases.assess`.
LEVELS = ("crisis", "grey", "unsafe_reply", "talk")
# A list item's number or letter ("1. Call 12356", "2) ...", "二、..."): not an amount the reply gives.
LIST_MARKER = re.compile(r"^\s*(?:\d{1,2}|[a-z]|[一二三四五六七八九十]{1,2})\s*[.)、．）]\s*(?=\S)")
# Where the reply check cuts a model's reply (cleaned: lower case) into sentences: their ends, and a
# turn after which a hedge or a safety word before it no longer covers what follows ("I wouldn't, but
# if you did, the whole box"; "我不建议，不过一般是吃整盒").
REPLY_SENTENCE = re.compile(r"[。！？!?；;]+|\.(?=\s|$)|(?<![a-z])(?:but|however|though|although|except)(?![a-z])|不过|但是|可是|但")


def _marker_apart(sentence: str, in_list: bool) -> list[str]:
    """A sentence without its list marker in a list ("2) Text a friend"); out of one, the marker's
    number apart from the rest ("50) That's what you'd need": "50", "that's what you'd need")."""
    marker = LIST_MARKER.match(sentence)
    if not marker:
        return [sentence]
    rest, number = sentence[marker.end():], marker.group().strip().rstrip(".)、．）").strip()
    # (a one-item list's "1) Call your sister" or "a) ..." keeps its marker out: an amount is 10 or more)
    return [rest] if in_list or not (number.isdigit() and int(number) >= 10) else [number, rest]


def _forget_inside(found: dict, spans, keep: str) -> None:
    """Forgets what was found inside ``spans``, but for the concept ``keep`` (the one that found them)."""
    for name in list(found):
        kept = [(s, e) for s, e in found[name] if not any(a <= s and e <= b for a, b in spans)]
        if name != keep and kept != list(found[name]):
            if kept:
                found[name] = kept
            else:
                del found[name]


def _drop_not_advice(found: dict, pardons=frozenset()) -> None:
    """The user's words said back (`reply_reflected`: "你提到想把药都吃了, ...") in a sentence that then keeps
    them safe (`reply_safe`) are not the reply's advice: what was found inside that clause is forgotten.
    A usual dose (`reply_usual_dose`: "your usual 1 tablet a day as prescribed", 按医嘱每天两片) is no amount
    given: its number, count and drug are forgotten, but only in a sentence with no other amount ("your
    1 tablet a day, or 40 if you want it over"). ``pardons``: the concepts that keep a sentence safe (see
    `_forget_usual_dose`)."""
    if found.get("reply_reflected") and "reply_safe" in found:
        _forget_inside(found, found["reply_reflected"], "reply_reflected")
    _forget_usual_dose(found, found.get("reply_usual_dose"), found, pardons)


def _forget_usual_dose(found: dict, usual, amounts: dict, pardons=frozenset()) -> None:
    """Forgets what lies inside a usual dose (`reply_usual_dose`) found in ``found``, but only when
    ``amounts`` (what was found in the same text, reply concepts included) gives no amount outside
    it: "take 2 tablets a day as prescribed. Tonight, take the rest of the bottle" is an amount given.
    Beside such an amount, the dose's own words of care (``pardons`` inside it: "as your doctor said",
    `reply_safe`) are forgotten instead: a usual dose excuses only itself, and "One pill a day as your
    doctor said, then 30 more before you sleep" passed the check on its "doctor" (session 14, AUD)."""
    if not usual:
        return
    if not any(not any(a <= s and e <= b for a, b in usual) for name in AMOUNTS for s, e in amounts.get(name, ())):
        _forget_inside(found, usual, "reply_usual_dose")
        return
    for name in pardons & found.keys():
        kept = [(s, e) for s, e in found[name] if not any(a <= s and e <= b for a, b in usual)]
        if kept:
            found[name] = kept
        else:
            del found[name]


# What gives a number or an amount in a reply (see `_drop_not_advice`), or points at more of the supply than a
# usual dose ("the rest of the bottle", "finish the bottle": a usual dose beside them was forgiven, an outside review)
AMOUNTS = ("reply_number", "reply_bare_number", "reply_amount", "dose_amount", "whole_supply", "reply_beyond_dose")


def _joined(before: dict, after: dict, shift: int, pardons: set) -> dict:
    """What two neighbouring sentences found, read as one (``after``'s spans moved by ``shift``), with the
    pardons found in ``before`` left out: a safe word before a turn does not cover what follows it."""
    joined = {name: list(spans) for name, spans in before.items() if name not in pardons}
    for name, spans in after.items():
        joined.setdefault(name, []).extend((s + shift, e + shift) for s, e in spans)
    return joined


# The classifier judges short messages only when they hold a `risk_cue` word: on short text with
# none ("message 0", "tell me", "no") its guesses were noise (a check-in for 16% of the everyday
# sentences of tests/data/emotion_labelled.tsv, 8% with this gate). Longer messages always.
LONG_MESSAGE = 10  # Chinese characters plus Latin words
# A wish to die laughed off gets a check-in when, the laughter left out, it is this short (我不想活了, "I want to die"):
# longer, it has a reason beside it and the laugh masks read it as hyperbole ("traffic was so bad i wanted to die lmao")
LAUGHED_OFF_SIZE = {"zh": 8, "en": 6}  # Chinese characters, English words (我真的不想活了; "this lecture made me want to die")
LAUGHTER = re.compile(r"(?:哈|嘻|呵|h){2,}|\b(?:lo+l|lo+lo+l|lmao|lmfao|rofl|xd)\b|[😂🤣😆😹]")  # not jk: a joke said
# What may stand beside tiredness in a message that says nothing else ("I'm so tired", 我真的好累啊)
TIRED_FILLER = {"i", "i'm", "im", "am", "so", "very", "really", "just", "super", "soo", "sooo", "feel", "feeling", "today",
                "我", "好", "很", "太", "真", "的", "了", "啊", "呀", "哦", "有", "点", "超", "今", "天", "最", "近"}
# An answer to "are you safe right now?" is a few words, not a question, and does not say the writer is safe
UNSAFE_ANSWER_SIZE = 8
# A word of pinyin without tone marks: syllables (an initial and a final, or a final alone), a tone digit after any
# ("wo", "xiang", "buxianghuole", "zi4sha1"). English words may spell syllables too ("he", "man", "die", even "been
# cuting agian"): a message is pinyin only if the aliases also read some of it as Chinese (`Safety.reply_language`).
PINYIN_WORD = re.compile(r"(?:(?:(?:zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])(?:iang|iong|uang|ueng|iao|ian|uai|uan|ang|eng|ing|ong"
                         r"|ai|ei|ao|ou|an|en|in|un|ia|ie|iu|ua|uo|ui|ue|ve|er|a|o|e|i|u|v)|ang|eng|ai|ei|ao|ou|an|en|er"
                         r"|a|o|e)[1-5]?)+")
# concepts that keep a mood of the day a risk for the classifier (see `Phrases.cue`)
# What says that talk about suicide (a `talk_about` word: a film, a study, the news) is the writer's own after all: the
# classifier hears the message again (Phrases.assess)
# (and a near time of the writer's own; not means `ready` or `hoard`, whose "count" and "stockpile" are a study's words too:
# "Any case law on whether just providing information counts?"; nor `decided`, which a decision whose object was masked has
# too: "I've decided to end my marriage. It's time." got a check-in, crisis_S)
TALK_OWNED = frozenset({"serious", "urge_thought", "owned_up", "unsafe_answer", "own_time"})
# the cue of a message that is talk about a topic (Phrases.assess): the rules are stopped but for `in_talk` frames, its
# parts are not read, and the classifier is heard at safety.checkin_threshold_talk only
TALK_HEARD = "talk"


def quiet(cue) -> bool:
    """Whether a message with this cue (Phrases.assess) is talk: not read in parts, rules stopped."""
    return cue is False or cue == TALK_HEARD
MOOD_BREAKERS = frozenset({"life_itself", "end_all", "end_soft", "death_word", "vanish", "release", "burden", "hopeless",
                           "own_risk", "gone", "no_return", "wish_no_wake"})
# (session 18, LOOK) what a settled grief (`at_peace`) does not outweigh: a wish, a plan, an act or joining the dead
# (MOOD_BREAKERS but its death word, which every grief has)
GRIEF_BREAKERS = (MOOD_BREAKERS - {"death_word"}) | frozenset({"wish", "join_dead", "follow_them", "decided", "ready", "hoard", "plan_words", "serious",
                            "urge_thought", "own_wish_to_die", "for_myself", "when"})
# (session 18, LOOK) a worry for whoever wrote the words: a text studied with it is still their report (`their_words`)
WORRIED = re.compile(r"担心|害怕|好怕|很怕|我怕|不放心|怎么办|不对劲|要不要告诉|该不该告诉|告诉老师|告诉家长|告诉她爸妈|告诉他爸妈"
                     r"|\b(?:worr\w*|scared|afraid|concern\w*|freaking out|what do i do|what should i do|should i tell|tell (?:a|the|her|his|their) "
                     r"(?:teacher|parents?|counsel\w*|mum|mom|dad))\b")
PINYIN_WORD_MAX = 24  # "buxianghuole" is 12; at 24 a failing match costs well under a millisecond
QUESTION = re.compile(r"[?？吗]")
# A wish or act of the writer's own in a message about someone else: the writer is at risk too (`about_someone_else`)
WRITERS_OWN_RISK = frozenset({"own_risk", "me_too", "for_myself"})
# ...and the writer saying the same of themself ("她在日记里写“我撑不下去了”，我也是，我是认真的", "He wrote 'I can't go on
# anymore' and I feel exactly the same": the helper's reply told them to help the other; the session-17 review)
SAME_AS_THEM = re.compile(r"我也(?:是|一样|这样|这么想|这么觉得|有同感|想过|差不多)|我跟(?:他|她|他们)一样|和(?:他|她)一样|"
                          r"\b(?:me too|same here|so do i|so am i|i do too|i am too|i'm the same|im the same|"
                          r"i (?:feel|felt|think|thought|wrote|said) (?:\w+ ){0,2}?the same|same for me|i feel it too)\b", re.I)
# After a check-in the user did not answer as a risk, the classifier's check-in comes again only at this p(crisis) or more
# (`Safety.checked_in_already`): a worry said again is no new sign, a message read as half a crisis may be one
SURE_AGAIN = 0.5
# ...and a rule's check-in comes again only with one of these: an end, a wish, a burden, a harm, life itself weighed (not
# loneliness, tiredness or "nothing works" told again)
RENEWED_SIGNS = frozenset({"own_wish_to_die", "done_living", "life_itself", "death_word", "burden", "vanish", "gone",
                           "own_harm_said", "harm_act", "end_all"})
# the rules of a crisis that takes someone else along (prompts/safety.yaml, session 21): the crisis reply says their safety too
TAKE_ALONG = "take_along"
THIRD_PARTY_SIZE = 60  # Chinese characters plus Latin words
# Right after a person word: what is theirs (奶奶的降压药, "my mum's pills"), not what they did
OWNER_OF = re.compile(r"\s*(?:的|'s\b|s'(?=\s))")
# Words quoted in a report are the other person's ("my 15 year old just texted me 'goodbye mom, I love you, I'm sorry'":
# its I read as the writer's own, it got the check-in written to the writer; the session-16 new-user audit). A quote opens
# after a space and closes before one, so the apostrophe of I'm or she's is no quote mark; double and Chinese quotes
# need no space (朋友小王说"我走了，别找我"). Each character has one way to match: no nested repeat, which made the
# first version exponential on " 'ab" runs (36 s for 35 words through the chat: the session-16 second review).
QUOTED = re.compile(r"[\"“「『]([^\"”」』\n]{1,160})[\"”」』]"
                    r"|(?:(?<=\s)|^)'((?:[^'\n]|'(?=[a-z])){1,160})'(?=[\s,.!?;:，。！？]|$)")
# Someone else's written words reported (session 17, LEFTS): "my 13yo wrote 'nobody will miss me' in her diary" got a
# loneliness tip. What they wrote is read as if the writer had said it (`Safety.their_words`); a worry of that kind is the
# helper's report. The words follow a verb of writing or posting, or a medium that "says" them; quoted words anywhere
# after such a verb or medium count too. Bounded: at most `THEIR_WORDS_MAX` characters of words, a few reports a message.
THEIR_WORDS_MAX = 160
WRITTEN = re.compile(
    r"\b(?:wrote|writes|written|writing|scribbled|typed|posted|posts|texted|texts|messaged|tweeted|(?:diary|journal|note|notebook|"
    r"essay|story|poem|post|status|caption|bio|message|text|letter|drawing|picture|page|entry|mirror|wall)s?(?:\s+(?:said|says|read|reads|saying)\b|:)"
    r"|(?:that|which) (?:says|said|reads|read)\b|(?:lines|things|words|stuff) like)"
    r"(?:\s+(?:that|me|to me|on (?:her|his|their|the|my) \w+|in (?:her|his|their|a|the) \w+(?: \w+)?|like|this|:))*[\s:,-]*"
    r"|(?:写着|写了|写道|写的是|写满了|写下|里写|上写|中写|面写|写(?=[：:，,\s]*[“\"「『])|留言说|留言|发消息说|发消息|发朋友圈说|发朋友圈|发了条|"
    r"发动态说|签名改成)[：:，,\s]*")
WRITTEN_GATE = Gate([WRITTEN])  # whether WRITTEN may match a text (plugins/_gate.py): one of its words is there
# a child named by age alone ("my 13yo", "my 15 y/o"): a person of `third_party.people`
CHILD_AGE = re.compile(r"\b\d{1,2}\s?(?:yo|y/o|yrs? old|yr)\b|\d{1,2}岁"
                       # ...and one of the writer's people named with a possessive ("my kid's journal", "my son's notebook")
                       r"|\b(?:my|our) (?:[\w-]+ ){0,2}?(?:son|daughter|kid|child|boy|girl|teen|teenager|friend|bestie|roommate|"
                       r"flatmate|brother|sister|cousin|niece|nephew|student|partner|husband|wife|mum|mom|dad|mother|father)'s\b")
# who wrote them: the last person or first-person subject before the verb of writing ("my best friend just texted",
# 学生在作文里写; not "I've written letters to my mum", "wrote letters to my mom, they're on my desk", 给我妈发了条消息: the
# writer's own goodbye, the crisis reply's). A person after 给/跟/to/for is whom it was written to.
WRITER_OF_IT = re.compile(r"(?<![给跟和对向])(?:朋友|闺蜜|儿子|女儿|孩子|学生|同学|室友|同事|老公|老婆|男朋友|女朋友|男友|女友|哥哥|姐姐|弟弟|妹妹|"
                          r"爸爸|妈妈|我爸|我妈|表妹|表弟|侄子|侄女|外甥|外甥女|他|她)"
                          r"|(?<!\bto )(?<!\bfor )(?<!\bwith )\b(?:son|daughter|kid|kids|child|boy|girl|teen|teenager|friend|bestie|roommate|"
                          r"flatmate|brother|sister|cousin|niece|nephew|students?|pupil|partner|husband|wife|mum|mom|dad|mother|father|"
                          r"he|she|they|\d{1,2}\s?(?:yo|y/o)|year old|yr old|year-old)(?:'s)?\b"
                          r"|(?P<me>\b(?:i|i've|ive|i'd|i'll|we|we've)\b|我(?![的家妈爸朋闺儿女老哥姐弟妹表侄外们])(?!们))")
# (not the `media` and `research` concepts: they hold the diary, the essay and the notebook the words are written in)
THEIR_WORDS_EXPLAINED = frozenset({"laugh"})
CELEBRATED = re.compile(r"\b(?:getting married|wedding|engaged|engagement|graduat\w*|new job|retir\w*|single life|promot\w*|"
                        r"birthday party|episode|movie|film|tv show|series|anime|manga|novel|character|in the game)\b"
                        r"|结婚|婚礼|订婚|毕业|升职|退休|生日派对|电影|剧里|剧中|小说|动漫|游戏里|主角")
# words aimed at the writer are an insult, not the other's own risk ("my brother wrote 'kill yourself'", 同学发消息让我去死)
AIMED_AT_ME = re.compile(r"\b(?:kill yourself|kys|you should die|you'd be better off dead|go die|die already)\b|你(?:怎么)?(?:不)?去死|让我去死")
# what a report of their words says in the third person, read as if they had said it
# (the contractions first: "she's" read as "i's" once "she" had become "i", the session-17 review)
THIRD_TO_FIRST = ((re.compile(r"\b(?:she's|he's)\b"), "i'm"), (re.compile(r"\b(?:she'd|he'd)\b"), "i'd"),
                  (re.compile(r"\b(?:she'll|he'll)\b"), "i'll"), (re.compile(r"\b(?:she|he)\b"), "i"),
                  (re.compile(r"\b(?:herself|himself)\b"), "myself"), (re.compile(r"\b(?:her|his)\b"), "my"),
                  (re.compile(r"[她他]"), "我"))
# what may stand between my/我 and the person: "my best friend", "my 14 year old son", 我的朋友, 我家
# (an age written with hyphens is one word: "my 14-year-old daughter", the session-14 audit)
THIRD_PARTY_POSSESSIVE = re.compile(r"\s*(?:的|家|家的)?\s*|\s+(?:(?!(?:to|for|with|and|of|the|a|an|my|our|at|in|on|from)\s)"
                                    r"[a-z0-9'-]+\s+){0,3}(?:\d+-)?")  # (the age of "my 14-year-old", R16b)
SAFER_NOW = re.compile(r"\b(?:i'?m|i am|im|we'?re) (?:safe|ok|okay|fine|alright|all right)\b|\bcalmer\b|\b(?:feel|feeling|i'?m|im) "
                       r"(?:a bit |a little |much |so much )?better\b|\b(?:it|that|the moment) (?:has )?passed\b|"
                       r"\b(?:called|rang|texted|talked to|spoke to) (?:the|a) (?:hotline|helpline|crisis line)\b|"
                       r"安全了|我很安全|我安全|没事了|好多了|好一些了|平静(?:了|多了|一些)|过去了|打了热线|打过热线")
# The one at risk saying they are fine, as the helper reports it ("he says he's fine now", 她说她没事了): no safety of
# theirs, and read as the helper's "I'm fine" it got an ordinary answer after the helper's crisis reply (the
# session-15 review). A person who says so (with a verb of saying) and a word of being fine (`Safety.follow_on`).
REPORTED = re.compile(r"\b(?:he|she|they|him|her|my [a-z'-]+(?: [a-z'-]+)?)\b[^.!?]{0,12}?\b(?:says|said|saying|tells me|told me|"
                      r"texted|texts|messaged|replied|claims|claimed|insists|insisted|promised|promises|swears|swore|"
                      r"keeps saying|kept saying)\b"
                      r"|(?:他|她|他们|她们|朋友|孩子|儿子|女儿|老公|老婆|妈妈|爸爸|对方|同事|同学)[^，。！？,.!?]{0,4}?"
                      r"(?:说|讲|保证|发消息|回消息|回复|告诉我|发来)")
THEIR_FINE = re.compile(r"\b(?:fine|ok|okay|alright|all right|safe|better|calmer|good now|not going to|won't|wouldn't|"
                        r"joking|kidding|didn't mean|doesn't mean|over it|nothing to worry|not to worry|shouldn't worry)\b"
                        r"|没事|没关系|好多了|好了|好一些|好点了|安全|不会|别担心|不用担心|不要担心|开玩笑|说着玩|想开了|冷静")
QUESTION_OR_SAFE = re.compile(r"[?？吗]|\b(?:i'?m|i am|im|we'?re) (?:safe|ok|okay|fine)\b|\bnot going to\b|安全了|我很安全|我安全|没事了")
# A harm denied (`Safety.denies_harm`): a negation right before a verb of harming oneself, in normalized text.
HARM_DENIED = re.compile(
    r"(?:不会|不想|不打算|不要|没想过|没有想过|从没想过|从来没想过|从没|从来没有?|绝不会|才不会)(?:再|去|要|真的)?"
    r"(?:伤害自己|伤害我自己|自杀|自残|轻生|寻死|做傻事|想不开|伤自己)"
    r"|(?<![a-z])(?:never|won'?t|wouldn'?t|will not|would not|not going to|not gonna|don'?t|do not|didn'?t|"
    r"haven'?t|have not|no plans? to)\s+(?:ever\s+|want\s+to\s+|plan\s+to\s+|going\s+to\s+)?"
    r"(?:hurt|harm|kill|cut|injure)\s+(?:myself|my ?self)(?![a-z])")
DENIAL_SIZE = 24  # Chinese characters plus Latin words: an answer, not a story
# What may follow a crisis reply and still be read as the same conversation (`Safety.follows_a_crisis_reply`): a few
# sentences ("她现在在房间里锁着门", "what do i do she's not answering"), not a long message on something else
FOLLOW_ON_SIZE = 40
NOBODY_WITH_ME = re.compile(r"(?<![a-z])(?:no one|noone|nobody|no-one|all alone|i'?m alone|im alone|by myself|on my own)(?![a-z])"
                            r"|没人|没有人|一个人|就我自己|就我一个")
LETTERS = re.compile(r"[^\W\d_]")  # a letter of any script: a message without one has no language of its own
FOLLOW_ON_QUESTION = 4  # ...where a question longer than this asks something else (怎么办, "what now?" are short)
# ...where a bare acknowledgement ("ok", 好的, 嗯) says nothing of being safe: "I want to kill myself" then "ok" got a tip
BARE_ACK = re.compile(r"\W*(?:ok|okay|k|kk|ok then|okay then|sure|fine|whatever|好|好的|好吧|嗯|嗯嗯|哦|行|行吧|知道了)\W*")
# ...and a goodbye is never an answer that one is safe, whatever else it says ("ok bye", "good night", "ok thanks, gonna
# go now" got an ordinary reply for their "ok" and "good": the session-15 second review)
GOODBYE = re.compile(r"(?<![a-z])(?:bye|byebye|goodbye|good night|goodnight|gn|night night|gonna go|going now|gotta go|got to go|"
                     r"logging off|signing off|farewell|see ya|cya)(?![a-z])|再见|拜拜|晚安|先走了|我走了|下线了|告辞")
# What may follow a yes to "are you safe right now?" and leave it an answer that one is (`Safety.follow_on`): politeness,
# hedges and "for now"; or someone with them, the crisis reply's second question ("yes, my sister is here")
YES_TAIL = re.compile(r"^[\s,，.。!！…~、的啊呀吧呢哦嗯]+|[\s,，.。!！…~、啊呀吧呢哦嗯]+$")
YES_ENOUGH = re.compile(r"(?:(?:i am|i'?m|im|i think so|i guess|i think|for now|right now|now|at the moment|thanks|thank you|"
                        r"ty|thx|i promise|promise|really|honestly|我是|是的|我在|现在|目前|暂时|应该|谢谢你|谢谢您|谢谢|谢啦|多谢|真的|放心|还在)"
                        r"[\s,，.。!！…~、]*)+")
WITH_SOMEONE = re.compile(r"(?<![a-z])(?:(?:is|are|'s) (?:here|with me|home with me|staying with me|coming over|on (?:her|his|their) way)|"
                          r"here with me|staying with me|came over|coming over|i'?m with (?:my|a|some) [a-z]+|"
                          r"at (?:my|a) [a-z]+'?s (?:house|place))(?![a-z])|陪着我|陪我|在我身边|在身边|在旁边|和我在一起|跟我在一起")
# ...unless a means is with them ("yes, I have the knife here with me" was someone with them: the session-16 second review)
MEANS_WITH_ME = re.compile(r"(?<![a-z])(?:knife|knives|blade|razor|pills?|tablets?|rope|gun|bottle|lighter)(?![a-z])|刀|药|绳|枪|刀片")
# A helper asking what to do now (`Safety.follow_on`, after "she says she's fine")
HELPER_ASKS = re.compile(r"(?<![a-z])(?:what (?:do|should|can) i (?:do|say)|how do i help|what now|now what|should i call|"
                         r"should i go)(?![a-z])|我[^，。！？,.!?\s]{0,3}(?:怎么办|怎么做|做什么|该)|要不要报警|要不要打|要不要过去")
# A helper's short message after the helper's reply (`Safety.helper_followup`, session 20, CARE): news of the one at risk
# gets the helper's reply again, as before (bleeding, pills, not answering, locked in: what is happening now); what
# the helper asks, feels or thanks for is no news, and got the same "I'm still here. If they're in danger right now..."
# three times over (audit A22). Each of these is answered in its own words (`third_party_followups`), the numbers kept.
HELPER_NEWS = re.compile(
    r"(?<![a-z])(?:bleed\w*|blood|took|taken|swallowed|pills?|tablets?|not answering|isn'?t answering|won'?t (?:answer|wake|open|"
    r"come out|talk|eat)|can'?t (?:reach|find|wake|get)|locked|missing|ran off|ran away|left (?:the )?house|a note|letter|"
    r"unconscious|passed out|rope|knife|razor|blade|roof|bridge|balcony|right now|now she|now he|just now)(?![a-z])"
    r"|流血|出血|血|吃了|吞了|喝了|不接|不回|联系不上|找不到|叫不醒|锁|不见了|跑出去|出门了|遗书|昏|抢救|刀|绳|楼顶|天台|阳台|桥|刚刚|现在")
# How a thank-you opens (a helper's in HELPER_FOLLOWUPS, a plain one in `Safety.plain_thanks`)
THANKS_OPEN = re.compile(r"\W*(?:thanks|thank you|thank u|thx|ty|many thanks|much appreciated|谢谢|感谢|多谢|谢啦)(?![a-z])")
HELPER_FOLLOWUPS = (
    # what to do if it happens again ("What if she does it again tonight?", 如果他今晚又割怎么办)
    ("again", re.compile(r"(?<![a-z])(?:what if|in case|(?:does|do|did|tries|try|happens?|cuts?|hurts?) (?:it |that |herself |himself |"
                         r"themselves )?again|how (?:do|can|should) i (?:stop|prevent|keep) (?:her|him|them|it))(?![a-z])"
                         r"|(?:如果|万一|要是|假如)[^，。！？?]{0,10}(?:又|再)|(?:又|再)[^，。！？?]{0,8}(?:怎么办|咋办|该怎么)"
                         r"|怎么(?:防止|阻止|避免)")),
    # how to talk with them, what to say ("What should I say to her tonight?", 我该怎么跟他谈？: review R20)
    ("talk", re.compile(r"(?<![a-z])(?:what (?:should|do|can|could) i (?:say|tell)|what to say|how (?:do|should|can|could) i "
                        r"(?:talk|speak|bring (?:it|this) up|start|approach|ask)|talk (?:to|with) (?:her|him|them) about)(?![a-z])"
                        r"|怎么(?:跟|和|同|对)[^，。！？?]{0,4}(?:说|谈|聊|开口)|(?:跟|和|对)[^，。！？?]{0,4}说什么|怎么开口|怎么(?:谈|聊|沟通)")),
    # whether to see a doctor, a therapist, a counsellor: a question (我该带他去看医生吗？)
    ("doctor", re.compile(r"(?=.*(?:[?？吗]|should i|do i need|要不要|该不该|应不应该))(?:.*(?<![a-z])(?:doctor|gp|therapist|therapy|"
                          r"counsell?or|counsell?ing|psychiatrist|psychologist|professional|mental health service|clinic|hospital)"
                          r"(?![a-z])|.*(?:看医生|看病|医院|心理医生|心理咨询|咨询师|精神科|心理科|门诊|心理老师))")),
    # the helper's own guilt ("I feel like I failed as a mother", 我觉得是我没照顾好他)
    ("guilt", re.compile(r"(?<![a-z])(?:my fault|guilty|i failed|failed (?:her|him|them|as a)|failure|blame myself|should have (?:noticed|"
                         r"seen|known)|didn'?t (?:notice|see it)|(?:bad|terrible|awful|useless) (?:mother|father|parent|mom|mum|dad|"
                         r"sister|brother|friend))(?![a-z])"
                         r"|没照顾好|我的错|怪我|我(?:太|很|真)?失败|不是(?:一个)?(?:好|合格的)|自责|内疚|早点发现|没(?:有)?(?:发现|注意到|察觉)")),
    # news that lowers the risk: "he didn't say he'd hurt himself, he's just low", 他没有说要伤害自己，只是很消极
    ("lower", re.compile(r"(?<![a-z])(?:(?:didn'?t|did not|doesn'?t|does not|hasn'?t|has not|never) (?:say|said|talk(?:ed)? about|"
                         r"mention(?:ed)?|want(?:ed)?)[^.?!]{0,25}(?:hurt|harm|kill|die|dying|suicide|end)|(?:just|only|mostly) "
                         r"(?:sad|down|low|negative|quiet|tired|moody|withdrawn))(?![a-z])"
                         r"|没(?:有)?(?:说|提)(?:过)?(?:要|想)?(?:伤害|自杀|死|轻生|不想活)|只是(?:很|有点|比较|特别)?(?:消极|低落|难过|不开心|沮丧|"
                         r"情绪不好|不爱说话)")),
    # a thank-you: a warm close
    ("thanks", re.compile("^" + THANKS_OPEN.pattern)),  # (read on the lowered text)
)
LOWER_RISK = dict(HELPER_FOLLOWUPS)["lower"]
# A helper asking whether to put the means away ("Should I take away the razors?", 要不要把刀片收起来): a question, not news
# of the one at risk, though it names a blade or pills (HELPER_NEWS); answered as what to do tonight (`again`). What else
# the message says is still read for news ("she took the pills, should I hide the rest?").
MEANS_AWAY = re.compile(r"(?<![a-z])(?:take away|put away|lock up|lock away|hide|get rid of|remove|throw (?:out|away)|clear out)"
                        r"(?![a-z])[^.?!]{0,30}?(?<![a-z])(?:razors?|blades?|knife|knives|pills?|tablets?|medicines?|medications?|meds|"
                        r"rope|cords?)(?![a-z])|(?:刀片|刀|剃须刀|药|绳子)[^，。！？?]{0,6}(?:收起来|藏起来|锁起来|拿走|扔掉|收好|锁好)")
HELPER_CLAUSE = re.compile(r"[，,。.！!？?；;]|(?<![a-z])(?:but|just|only)(?![a-z])|只是|但是|不过")
# A carer asking what to do IF risk appears (`Safety.carer_asks_signs`): "What if he starts talking about dying?" got "On
# low mood, the tip above is the closest I have" (audit A22). A condition or a question on signs, someone else, and a
# death or a harm of theirs, in a short message the rules read as no crisis.
# (what if, in case, the signs to watch for: a risk imagined; SIGNS_IMAGINED below is these without the bare "if")
_SIGNS_ASKED_EN = (r"what if|in case|warning signs?|signs? (?:of|that|to)|watch (?:for|out)|look out for|"
                   r"how (?:would|do|will|can) i (?:know|tell)")
_SIGNS_ASKED_ZH = r"万一|哪些(?:信号|迹象|征兆|表现)|什么(?:信号|迹象|征兆|表现)|怎么(?:看出|判断|知道)|注意什么"
SIGNS_IF = re.compile(rf"(?<![a-z])(?:{_SIGNS_ASKED_EN}|if (?:he|she|they|my [a-z]+))(?![a-z])|{_SIGNS_ASKED_ZH}|如果|要是|假如")
SIGNS_OTHER = re.compile(r"(?<![a-z])(?:he|she|they|him|her|them|his|my (?:son|daughter|kid|child|teen|teenager|boy|girl|friend|brother|"
                         r"sister|husband|wife|partner|mum|mom|dad|father|mother))(?![a-z])|他|她|孩子|儿子|女儿|朋友|弟弟|妹妹|哥哥|姐姐|"
                         r"老公|老婆|爸|妈")
SIGNS_HARM = re.compile(r"(?<![a-z])(?:dying|die|dies|death|dead|suicid\w*|kill(?:s|ing)? (?:him|her|them)sel(?:f|ves)|(?:hurt|harm|cut)(?:s|ting|ing)? "
                        r"(?:him|her|them)sel(?:f|ves)|self[- ]?harm\w*|end(?:s|ing)? (?:his|her|their) life|(?:be|stay) with (?:him|her|them)"
                        r"|join (?:him|her|them))(?![a-z])|死|自杀|轻生|不想活|活着没意思|伤害自己|自残|割|去陪")
# ...and, for a message the rules read as a crisis, a risk only imagined, none told (`Safety.imagined_only`)
SIGNS_IMAGINED = re.compile(rf"(?<![a-z])(?:{_SIGNS_ASKED_EN})(?![a-z])|{_SIGNS_ASKED_ZH}")
SIGNS_TOLD = re.compile(r"(?<![a-z])(?:said|says|told|tells|texted|wrote|posted|keeps saying|has said|already|tried|did)(?![a-z])"
                        r"|说|告诉我|发消息|写了|已经|试过")
# the writer's own I, other than as the owner of the person (my son, 我女儿) or the one asking (我该怎么办)
FIRST_PERSON = re.compile(r"(?<![a-z])(?:i|i'm|im|me|myself|i'd|i'll|i've)(?![a-z'])"
                          r"|我(?!的|家|们|女儿|儿子|孩子|闺女|朋友|老公|老婆|妈|爸|弟|妹|哥|姐|该|应该|要怎么|怎么|能|可以)")
SIGNS_SIZE = 40  # Chinese characters plus Latin words: a question, not a story (a story is read as any message)
# A thank-you and nothing of a goodbye (`Safety.plain_thanks`; THANKS_OPEN is above, with a helper's thank-you)
THANKS_FAREWELL = re.compile(r"(?<![a-z])(?:everything|all|always|forever|before i go|last|remember me|sorry|miss you|anymore|"
                             r"no more|end|good ?bye|the years|in my life)(?![a-z])|一切|所有|最后|永别|这些年|下辈子|一直以来|对不起|"
                             r"记得我|走了|告别|再也|来生|以后")
THANKS_SIZE = 12  # Chinese characters plus Latin words
# A diagnosis, a treatment or a recovery named, in a message's stemmed text (`Phrases.cue`)
CARE_NAMED = re.compile(
    r"(?<![a-z])(?:bipolar|c-?ptsd|ptsd|ocd|adhd|autis[a-z]*|schizophren[a-z]*|anorexi[a-z]*|bulimi[a-z]*|eating disorder|"
    r"anxiety disorder|social anxiety|panic disorder|borderline|bpd|depression|postpartum|postnatal|therap[a-z]*|"
    r"counsel[a-z]*|psychiatr[a-z]*|psycholog[a-z]*|sertralin[a-z]*|fluoxetin[a-z]*|prozac|zoloft|lexapro|escitalopram|"
    r"citalopram|paroxetin[a-z]*|venlafaxin[a-z]*|lithium|quetiapin[a-z]*|antidepressant[a-z]*|sober[a-z]*|sobriet[a-z]*|"
    r"in recover[a-z]*|rehab[a-z]*)(?![a-z])"
    r"|抑郁症|焦虑症|双相(?:情感障碍)?|躁郁症|强迫症|多动症|创伤后应激(?:障碍)?|精神分裂症?|厌食症|暴食症|进食障碍|惊恐障碍|心理咨询师?|"
    r"咨询师|心理医生|精神科|心理科|舍曲林|氟西汀|帕罗西汀|艾司西酞普兰|戒酒|戒毒|戒烟|康复|(?:在|按时|一直|每天|正在|开始)(?:吃药|服药)")
CARE_NAMED_CUE = "named"
SHORT_CHECKIN = 4  # the fewest of them for the classifier's check-in on a short message with no risk word
_SIZE = re.compile(rf"[{_CJK_RANGE}]|[a-z0-9']+")
# Where a sentence ends in a message's stemmed text, for the frames (see `Frame.matches`).
STEM_SENTENCE_END = re.compile(r"[。！？!?；;\n]|\.(?=\s|$)")
# Where one sentence of a user's message ends: its punctuation or a line break. Not a space between
# Chinese words: it often parts clauses of one thought ("念错了 当场想死 尴尬到脚趾抠地"), and read
# apart they lost the context that masked an idiom (crisis_M: 3 more hard negatives flagged).
MESSAGE_SENTENCE_END = re.compile(r"(?<=[。！？!?；;…])\s*|(?<=[A-Za-z0-9)\"']\.)\s+|\n+")
# ...and of a clause: a Chinese comma, a space between Chinese words, an English comma, or before an
# English "and"/"but"/"then"/"because" (kept with its clause, so two neighbours read as written).
# Held-split crisis rows after two or three everyday sentences joined by ，: found 61% of them whole,
# 81% by clauses; joined hard negatives flagged 3.3 -> 5.3%.
MESSAGE_CLAUSE_END = re.compile(rf"(?<=[，、,])\s*|(?<=[{_CJK_RANGE}])\s+(?=[{_CJK_RANGE}])"
                                r"|\s+(?=(?:and|but|then|because)\s)", re.IGNORECASE)
# A sentence is cut at its clauses only when it is long: a `_weight` of this much (a Chinese character
# weighs 1, a Latin word 2: 36 characters or 18 words; at 40, a held row of 39 characters and four clauses
# the session-12 rule cut was no longer found). Shorter ones are not: read apart, a clause loses
# what made its neighbour an idiom ("念错了老板的名字，当场想死，尴尬到脚趾抠地"; every development set flagged
# more hard negatives when every comma was a cut).
CLAUSES_WEIGHT_MIN, CLAUSES_MIN = 36, 3  # weight of the sentence, clauses it needs
# A clause still heavier than this (a message typed with no punctuation at all: "下班回来路上一直在下雨…
# 我真的不想活了今晚就从阳台跳下去", "so work was a mess again my manager yelled…") is cut into pieces of
# this weight; two neighbouring pieces are read together, so a phrase of up to this weight is never split.
PIECE_WEIGHT = 24
# Where `Phrases.beside_clause` cuts a message into clauses: the ends of sentences and clauses the parts are read at,
# and before a word that turns to something else said besides ("...with lexapro honestly I don't see the point").
CLAUSE_CUT = re.compile(r"[。！？!?；;…，、,\n]+\s*|(?<=[A-Za-z0-9)\"'])\.\s+"
                        r"|\s+(?=(?:and|but|so|also|honestly|tbh|because)\s)|(?=其实|反正|说实话|但是|可是|不过|而且|只是)",
                        re.IGNORECASE)
PASSAGES_MAX = 12  # the most passages read apart: a longer message is cut into PASSAGES_MAX + 1 runs of sentences
# A message longer than this is read whole only (chat.max_message_chars is 4,000 by default): its parts
# would cost about twice the whole again (an outside review timed 1.6 -> 4.0 s at 100,000 characters).
PASSAGES_TEXT_MAX = 4000
# p(crisis) a passage's classifier check-in needs, by the passage's cue (see `Phrases.cue`). With a risk
# word: 0.4 (a development set of long messages, session 12: 80 with a risk in one sentence, 80 look-alikes,
# found 97.5% of the risks either way; the look-alikes flagged were 3 whole, 6 with passages at the usual
# threshold, 5 with this). With one everyday word or none, 0.7 (session 13; `bench/safety --buried`: held
# crisis rows after an ordinary day found en 79.8 -> 83.4%, zh 77.1 -> 78.4%, joined hard negatives flagged
# as before, 10.3 / 7.3%; at 0.6 zh joined ones rose to 7.7%). A short part ("short") never.
PASSAGE_CRISIS = {"risk": 0.4, "weak": 0.7, "long": 0.7}
# ...and a sentence read alone (of a message of three or more, after the pairs): the rules, or the classifier
# at p(crisis) >= 0.65 with a risk word. A pair keeps one sentence of context, which also dilutes: `--buried`
# crisis en 83.4 -> 87.3%, zh 78.7 -> 82.8%, joined hard negatives flagged 11.0 -> 12.0%, 7.3 -> 8.0%, the
# long look-alikes of crisis_dev_long_DW.tsv as before. Every sentence at the pairs' thresholds found
# 90 / 89% and flagged 16 / 12% of the joined hard negatives, 4 + 2 more DW look-alikes; at 0.5, 88.6 /
# 84.6% for 12.0 / 9.0% and 1 more zh look-alike.
SENTENCE_ALONE_CRISIS = {"risk": 0.65}


def passages(text: str, alone: bool = False) -> list[str]:
    """The parts of a message read apart besides the whole: each sentence of a message of two ("is
    honey ok for a cough? some nights I think about driving off the bridge"), two neighbouring
    sentences at a time of a longer one ("Work was long. Had noodles. Honestly I just want it all to
    be over"). Read whole, the classifier weighs every word alike and the risk was averaged away
    (`bench/safety --buried`: held crisis rows after two or three everyday sentences were found
    59-64% of the time against 92-94% alone; 70-76% with passages); a passage of two keeps one
    sentence of context. A long sentence counts as its clauses, and a long clause with no punctuation
    as pieces (see `units`). A message of more than `PASSAGES_MAX` + 1 of them is cut into that many
    runs first. A passage is the message's own text from its first unit's start to its last's end.
    ``alone``: the sentences (units) of a message of three to `PASSAGES_MAX` + 1, each by itself, instead
    (a longer message's runs would be long again, and reading them would cost as much as the pairs)."""
    return [passage for passage, _ in passages_in_context(text, alone)]


def passages_in_context(text: str, alone: bool = False) -> list[tuple[str, str]]:
    """The `passages` of a message, each with what follows it: the passage and the unit (sentence, clause
    or run) after it, where a few words said first are explained ("I've got the rope. We're going climbing
    Saturday"). Not the unit before: an everyday sentence before a risk seldom explains it ("Exams start
    next week... i picked a date. the 14th."; `--buried` lost 4 crisis rows to the one before)."""
    text = str(text)
    return _in_context(text, _units_of(text), alone)


def _units_of(text: str) -> list[tuple[int, int]]:
    """The spans of the units (sentences, clauses, pieces) `passages_in_context` reads of ``text``."""
    spans, start = [], 0
    for end in [m.start() for m in MESSAGE_SENTENCE_END.finditer(text)] + [len(text)]:
        if _size(text[start:end].lower()):
            spans += units(text, start, end)
        start = max(start, end)
    return spans


def _in_context(text: str, spans: list[tuple[int, int]], alone: bool) -> list[tuple[str, str]]:
    """`passages_in_context` of ``text`` whose units are ``spans`` (`_units_of`: found once for the pairs and
    the sentences alone)."""
    if len(spans) < 2 or (alone and not 2 < len(spans) <= PASSAGES_MAX + 1):
        return []
    if len(spans) > PASSAGES_MAX + 1:
        size = len(spans) / (PASSAGES_MAX + 1)
        spans = [(spans[round(i * size)][0], spans[round((i + 1) * size) - 1][1]) for i in range(PASSAGES_MAX + 1)]
    # (first unit, last unit) of each passage: a pair of neighbours in a message of three units or more
    reach = 2 if len(spans) > 2 and not alone else 1
    read = [(i, i + reach - 1) for i in range(len(spans) - reach + 1)]
    return [(text[spans[i][0]:spans[j][1]].strip(),
             text[spans[i][0]:spans[min(j + 1, len(spans) - 1)][1]].strip()) for i, j in read]


def units(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The spans `passages` reads of the sentence text[start:end]: itself, or when heavy its clauses, and a
    clause still heavier than `PIECE_WEIGHT` as pieces of that weight (cut between words or characters)."""
    sentence = text[start:end]
    if _weight(sentence) < CLAUSES_WEIGHT_MIN:
        return [(start, end)]
    cuts = [0] + [m.start() for m in MESSAGE_CLAUSE_END.finditer(sentence)] + [len(sentence)]
    clauses = [(a, b) for a, b in zip(cuts, cuts[1:]) if _size(sentence[a:b].lower())]
    if len(clauses) < CLAUSES_MIN and max(_weight(sentence[a:b]) for a, b in clauses) <= PIECE_WEIGHT * 3 // 2:
        return [(start, end)]
    spans = []
    for a, b in clauses:
        # where each word or Chinese character ends, and its weight so far
        ends, weight = [], 0
        for m in _SIZE.finditer(sentence[a:b].lower()):
            weight += _token_weight(m.group())
            ends.append((a + m.end(), weight))
        if weight <= PIECE_WEIGHT * 3 // 2:
            spans.append((start + a, start + b))
            continue
        # cut every PIECE_WEIGHT, leaving no last piece lighter than half of it
        marks, next_cut = [], PIECE_WEIGHT
        for at, w in ends:
            if w >= next_cut and weight - w >= PIECE_WEIGHT // 2:
                marks.append(at)
                next_cut = w + PIECE_WEIGHT
        bounds = [a] + marks + [b]
        spans += [(start + x, start + y) for x, y in zip(bounds, bounds[1:])]
    return spans


def _weight(text: str) -> int:
    """Chinese characters plus twice the Latin words: about what a sentence says, in either language."""
    return sum(_token_weight(t) for t in _SIZE.findall(text.lower()))


def _token_weight(token: str) -> int:
    return 1 if len(token) == 1 and token >= "\u3400" else 2


def _size(text: str) -> int:
    return len(_SIZE.findall(text))


def vocabulary(data) -> set[str]:
    """Every Latin word written anywhere in prompts/safety.yaml's lists and mappings (keys too),
    lower case: what spaced-out or leetspeak letters may be read as."""
    words: set[str] = set()

    def walk(value):
        if isinstance(value, dict):
            for key, item in value.items():
                walk(key)
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)
        elif isinstance(value, str) and len(value) < 80:  # list entries, not wordings or patterns
            words.update(w.strip("'") for w in _WORD.findall(normalize(value)) if "\\" not in value)

    # (answers to a safety reply's question are read only in that answer: not what a message's letters may be)
    walk({k: v for k, v in (data or {}).items()
          if k not in ("crisis_replies", "checkin_replies", "red_flags", "unsafe_reply", "safety_answers", "routine_reports",
                       "third_party", "red_flag_followup", "red_flag_cautions",
                       "third_party_replies", "third_party_system", "crisis_others_note")})
    # the reply check's own concepts and rules read model replies, not users: not what a user's letters may be
    reply = (data or {}).get("unsafe_reply")
    walk({k: v for k, v in reply.items() if k not in ("concepts", "rules")} if isinstance(reply, dict) else reply)
    return {w for w in words if len(w) > 1 or w in ("i", "a")}


class Answers:
    """prompts/safety.yaml `safety_answers`: how a short answer to a yes-or-no question begins ("no", "yes",
    neither) and whether it says the writer is fine (see `Safety.answers_question`)."""

    # a negation just before a `fine` word, in its clause: "not ok", "I don't feel safe", 不安全, 不是很安全
    NOT_EN = re.compile(r"(?<![a-z])(?:not|never|n't|no longer)(?![a-z])(?:\s+[a-z']+){0,2}\s*$")
    NOT_ZH = re.compile(r"[不没][^\s]{0,2}$")

    def __init__(self, spec):
        spec = spec if isinstance(spec, dict) else {}
        words = {key: [normalize(w) for lang in ("zh", "en") for w in items((spec.get(key) or {}).get(lang))
                       if normalize(w)] for key in ("filler", "saying_no", "saying_yes", "fine")}
        self.filler = self._start(words["filler"], "[\\s,，.。!！…~、]*")
        self.no, self.yes = self._start(words["saying_no"]), self._start(words["saying_yes"])
        self.fine = Terms(words["fine"], endings=False)

    @staticmethod
    def _start(words: list[str], after: str = "") -> re.Pattern | None:
        """A regex for one of ``words`` at the start of a text (Latin ones as whole words)."""
        other, latin = term_alternatives(words, False), term_alternatives(words, True)
        parts = ([f"(?:{other})"] if other else []) + ([rf"(?:{latin})(?![a-z0-9'])"] if latin else [])
        return re.compile("^(?:" + "|".join(parts) + ")" + after) if parts else None

    class Reading(NamedTuple):
        begins: str | None  # "no", "yes" or None: how the answer begins
        fine: bool  # whether it says the writer is fine
        after_yes: str  # what a yes goes on to say ("" when it begins otherwise)

    def read(self, text: str) -> "Answers.Reading":
        """How a short answer begins, whether it says the writer is fine, and what a yes goes on to say (normalized,
        its punctuation and particles gone): "" for "yes", "yeah!", 是的; "i mean it" for "Yes I mean it"; 我是认真的
        for 是的，我是认真的. One reading, its filler stripped once: `after_yes` was a second method that stripped the
        filler and matched the yes again (session 17)."""
        text = normalize(text).strip(" ,，.。!！…~、")
        while self.filler is not None and (m := self.filler.match(text)) and m.end():
            text = text[m.end():]
        fine = any(not self._negated(text[:start]) for start, _ in self.fine.find(text))
        if self.no is not None and self.no.match(text):
            return self.Reading("no", fine, "")
        yes = self.yes.match(text) if self.yes is not None else None
        return self.Reading("yes", fine, YES_TAIL.sub("", text[yes.end():])) if yes else self.Reading(None, fine, "")

    def _negated(self, before: str) -> bool:
        clause = before[max((m.end() for m in CLAUSE_END.finditer(before)), default=0):]
        return bool(self.NOT_EN.search(clause) or self.NOT_ZH.search(clause))


class Phrases:
    """prompts/safety.yaml, compiled."""

    def __init__(self, data: dict):
        crisis = data.get("crisis") or {}
        masks = _words(crisis.get("not"))
        self.normalizer = Normalizer(data.get("normalize"), masks,
                                     _patterns(crisis.get("not_patterns"), "crisis.not_patterns"))
        self.normalizer.vocabulary = vocabulary(data)
        frames = data.get("frames") or {}
        self.concepts = Concepts(frames.get("concepts"), self.normalizer)
        rules = [Frame(i, spec, self.concepts, LEVELS) for i, spec in enumerate(frames.get("rules") or [])]
        self.explaining = frozenset(str(c) for c in items(frames.get("explained_after")))
        unknown = sorted(self.explaining - self.concepts.names)
        if unknown:
            raise ValueError(f"frames.explained_after: unknown concepts {unknown}")
        # The reply check's own concepts, found in model replies only: the user's messages are not read
        # for them (a cost on every message) and the classifier's features and training digest stay as they were.
        reply = data.get("unsafe_reply") if isinstance(data.get("unsafe_reply"), dict) else {}
        self.reply_concepts = Concepts(reply.get("concepts"), self.normalizer)
        both = self.concepts.names & self.reply_concepts.names
        if both:
            raise ValueError(f"unsafe_reply.concepts: {', '.join(sorted(both))} already in frames.concepts")
        known = SimpleNamespace(names=self.concepts.names | self.reply_concepts.names)
        self.reply_frames = [Frame(i, {"level": "unsafe_reply", **spec} if isinstance(spec, dict) else spec, known,
                                   ("unsafe_reply",), "unsafe_reply.rules") for i, spec in enumerate(reply.get("rules") or [])]
        # what keeps a reply's sentence safe (the rules' `none`): a usual dose's own words of care pardon nothing else
        self.reply_pardons = frozenset(name for frame in self.reply_frames for name in frame.none)
        self.detectors = {level: Detector(data.get(level), level, self.normalizer, rules, self.concepts)
                          for level in LEVELS}
        # the crisis and grey patterns' gate in one, as `assess` reads both levels' of a message (one pass, not two)
        self.level_gate = Gate(self.detectors["crisis"].patterns + self.detectors["grey"].patterns)
        self.level_shift = len(self.detectors["crisis"].patterns)
        self.crisis_replies = self._wordings(data.get("crisis_replies"), "crisis_replies", NUMBERS)
        self.checkin_replies = self._wordings(data.get("checkin_replies"), "checkin_replies", NUMBERS)
        self.answers = Answers(data.get("safety_answers"))
        routine = data.get("routine_reports") if isinstance(data.get("routine_reports"), dict) else {}
        self.routine_named = _patterns(routine.get("named"), "routine_reports.named")
        self.routine_bare = _patterns(routine.get("bare"), "routine_reports.bare")
        # (when a symptom began, told alone: no risk anywhere, as a named dose)
        self.routine_named = self.routine_named + _patterns(routine.get("onset"), "routine_reports.onset")
        third = data.get("third_party") if isinstance(data.get("third_party"), dict) else {}
        self.third_party = Concepts({k: third[k] for k in ("self", "helper", "people", "told") if third.get(k)},
                                    self.normalizer)
        self.third_party_replies = self._wordings(data.get("third_party_replies"), "third_party_replies", NUMBERS)
        # a helper's follow-up that is no news, and a carer's "what if" (`Safety.helper_followup`, `Safety.carer_asks_signs`)
        followups = data.get("third_party_followups") if isinstance(data.get("third_party_followups"), dict) else {}
        self.third_party_followups = {
            str(kind): {lang: placeholders_known(str(spec.get(lang) or ""), f"third_party_followups.{kind}.{lang}", NUMBERS)
                        for lang in ("zh", "en")}
            for kind, spec in followups.items() if isinstance(spec, dict)}
        self.third_party_system = placeholders_known(str(data.get("third_party_system") or ""), "third_party_system",
                                                     NUMBERS)
        self.crisis_system = placeholders_known(str(data.get("crisis_system") or ""), "crisis_system", NUMBERS)
        # a word for the other's safety after a crisis told with someone taken along (the take_along rules; session 21)
        others = data.get("crisis_others_note") if isinstance(data.get("crisis_others_note"), dict) else {}
        self.crisis_others_note = {lang: placeholders_known(str(others.get(lang) or ""), f"crisis_others_note.{lang}", NUMBERS)
                                   for lang in ("zh", "en")}
        self.judgement_system = str(data.get("judgement_system") or "")
        flags = data.get("red_flags") or {}
        self.rules = [RedFlag(str(name), spec) for name, spec in flags.items()
                      if name != "negations" and isinstance(spec, dict)]
        self.negation = self._negation([str(w) for w in items(flags.get("negations"))])
        # Which of the rules' phrase lists and patterns may match a text, found in one pass (plugins/_gate.py): each
        # alone cost ~0.5 us a message whether it matched or not. Bit i of the gate is checks[i].
        checks = []
        for rule in self.rules:
            rule.checks, first = [], len(checks)
            for kind, check in [("any", rule.any)] + [("pattern", p) for p in rule.patterns] + [("all", g) for g in rule.all]:
                regex = check.regex if kind != "pattern" else check
                rule.checks.append((kind, check, len(checks) if regex is not None else None))
                if regex is not None:
                    checks.append(regex)
            rule.bits = (1 << len(checks)) - (1 << first)  # its checks' bits: a rule with none on is not read
        self.flag_gate = Gate(checks)
        # the texts red_flags read last and what it found: a message is read up to 3 times, and between those reads
        # `_verdict` asks of each part read apart (`_symptom_noted`), which put the message's own answer out of a
        # one-text memory (2 of 3 reads of a long message missed it; session 21, PERF)
        self._flagged: dict[str, list] = {}
        self.red_flag_system = placeholders_known(str(data.get("red_flag_system") or ""), "red_flag_system", ("emergency",))
        # The offline companion's cautions (`red_flag_cautions`), read as the rules are and as the companion reads them
        # with this plugin disabled (plugins/_cautions.py), for `cautions` (not per message: only the companion asks,
        # and only where no red flag was found)
        self.caution_table = Cautions(data.get("red_flag_cautions"), self.negation)
        # An emergency that goes on in the next messages (`Safety.before_reply`): its short note, and what says help
        # has come (then the note is not repeated)
        followup = data.get("red_flag_followup") if isinstance(data.get("red_flag_followup"), dict) else {}
        self.followup_note = {lang: placeholders_known(str((followup.get("note") or {}).get(lang) or ""),
                                                       f"red_flag_followup.note.{lang}", ("emergency",)) for lang in ("zh", "en")}
        handled = _patterns(followup.get("handled"), "red_flag_followup.handled")
        self.followup_handled = re.compile("|".join(f"(?:{p.pattern})" for p in handled)) if handled else None
        self.disclaimer = {lang: str((data.get("disclaimer") or {}).get(lang) or "") for lang in ("zh", "en")}
        cheerless = data.get("cheerless_idioms") if isinstance(data.get("cheerless_idioms"), dict) else {}
        self.cheerless_idioms = Terms([str(w) for lang in ("zh", "en") for w in items(cheerless.get(lang))])
        ordeal = data.get("ordeal_idioms") if isinstance(data.get("ordeal_idioms"), dict) else {}
        ordeal_patterns = _patterns(ordeal.get("patterns"), "ordeal_idioms.patterns")
        self.ordeal = re.compile("|".join(f"(?:{p.pattern})" for p in ordeal_patterns)) if ordeal_patterns else None
        self.ordeal_unless = Terms([str(w) for w in items(ordeal.get("unless"))])
        plans = data.get("cheerless_plans") if isinstance(data.get("cheerless_plans"), dict) else {}
        self.plans = {key: _patterns(plans.get(key), f"cheerless_plans.{key}") for key in ("stop_medicine", "unless", "mania")}

    @staticmethod
    def _wordings(spec, where: str, known: tuple[str, ...]) -> dict:
        spec = spec if isinstance(spec, dict) else {}
        return {lang: [placeholders_known(str(r), f"{where}.{lang}[{i}]", known)
                       for i, r in enumerate(items(spec.get(lang))) if str(r).strip()] for lang in ("zh", "en")}

    @staticmethod
    def _negation(words: list[str]) -> re.Pattern | None:
        """Words that, at the end of the clause before a symptom, say the user does not have it."""
        return negation_pattern(words)

    # -- finding -------------------------------------------------------------------------------
    def read(self, text: str) -> tuple[str, str, dict]:
        """(clean text, stemmed text, concepts found) of a message."""
        clean = self.normalizer.clean(text)
        stems = self.normalizer.stems(clean)
        return clean, stems, self.concepts.find(stems)

    def assess(self, text: str) -> tuple[str | None, str | None, str, bool, dict]:
        """(crisis, grey or None; what matched; the clean text; how far the classifier is heard:
        "risk", "weak", "long", "short" or False; the concepts found, which the classifier reads too)
        for a user's message, by the rules. The classifier is asked about a message with a word of
        the `risk_cue` concept (every message if there is no such concept)."""
        clean, stems, found = self.read(text)
        # "risk": a risk word is there; "weak": one everyday one (see `cue`); "long": only the length
        # lets the classifier be asked (its check-in then needs safety.checkin_threshold_no_cue, as
        # "weak" does); "short": a few words with no risk
        # word, where its check-ins were noise ("message 0", "no") but its sure crisis verdicts are
        # not (emoji and slang: "🔪🩸 again", "gonna log off irl permanently"), so only those count;
        # False: it is not asked.
        cue = self.cue(clean, stems, found)
        # Talk about suicide (a `talk_about` word: research, teaching, a film, a novel, the news)
        # and a masked idiom with no risk word left (想死你了, 笑到去世) are not the writer's own
        # risk: the classifier, which reads the topic words, is not asked unless an `own_risk` cue
        # is there too. (The wider `mention_context` words, 研究/hospital, cost recall here.)
        figurative = MASK in clean and "risk_cue" not in found
        # A `talk` frame (a joke: "wanted to die lmao"; a professional's question; a book read
        # for class; each with its own `none`: "not a joke", an own-risk cue) stops the rules too,
        # but for their `in_talk` frames, and the classifier.
        talk_frames = [frame for frame in self.detectors["talk"].frames_for(found) if frame.matches(found)]
        talk = bool(talk_frames)
        # A wish whose object was masked ("i want to | boyfriend": end things with my, an ordinary
        # ending) is no own-risk cue: E and F each had one, and the classifier read "i want to".
        wishes = [stems[end:end + 8].lstrip().startswith(MASK.strip()) for _, end in found.get("own_risk", ())]
        own_risk = not all(wishes)
        # ...and when every wish was one, the classifier is not asked either: it reads "i want to |
        # but i'm scared of being alone" (end my marriage) as a wish to die (H: a check-in).
        # A decision whose object was masked is one too ("i've decided to | . it's time": end my marriage, an ordinary
        # ending the masks read; S: a check-in at p 0.59 for "i've decided to" and "it's time"), but only when every wish
        # and every decision of the message was one.
        decisions = [DECISION_MASKED.match(stems, end) is not None for _, end in found.get("decided", ())]
        masked_wish = bool(wishes or decisions) and all(wishes) and all(decisions)
        # Talk about it gives way to a word that says it is meant or an urge of one's own ("I saw a film
        # about it. Some nights I think about driving off the bridge"; "...and honestly the character is me").
        # (session 17, HNEN: also the frame taken back or the writer counted in, `owned_up`: "ok it's not a character.
        # it's me", 不是角色，是我自己; and not being safe said in it: "I'm a crisis line volunteer... I'm not safe")
        if talk or ((masked_wish or "talk_about" in found) and not own_risk and not TALK_OWNED & found.keys()):
            # (session 17, HNEN) ...but talk about a topic (a `heard` talk frame, or a `talk_about` word with no talk
            # frame) is still read by the classifier, at safety.checkin_threshold_talk: the frame's words make talk of
            # most messages, and a writer's own plan said in it in other words than the frame's `none` has ("ICU nurse.
            # ...Tonight's my last shift.", 看了那么多投毒案...今晚用在我自己身上) got no hotline; the classifier had them
            # at p 0.85-1.00, the hard negatives of the same frames mostly under 0.5 (dev set HN)
            heard = all(frame.heard for frame in talk_frames) if talk else not masked_wish
            cue = TALK_HEARD if heard else False
        elif figurative and not own_risk and cue:
            # A mask blanks what it explains, not the rest of the message: the classifier still reads what is
            # left ("想死我爸天天打我", "I want to disappear for a week. Actually, forever. I have the pills." got
            # no hotline at all when a mask silenced it: an outside review, session 11), its check-in at the
            # threshold of a message with no risk word.
            cue = "weak" if cue == "risk" else cue
        # The words of a crisis or grey frame are looked for within one sentence: across two of a long message
        # they joined what had nothing to do with each other (绳子 of a skipping rope with 今天 of the next
        # sentence; 大桥 of a drive with 心跳 of a racing heart: `--buried` joined hard negatives flagged zh 6.0 ->
        # 4.7%, en 10.3 -> 10.0%, no crisis row lost on the held split, the buried rows, A-Q or tests/data).
        cuts = [m.start() for m in STEM_SENTENCE_END.finditer(stems)]
        live = self.level_gate.live(clean) if not talk else 0
        for level, bits in (("crisis", live & ((1 << self.level_shift) - 1)), ("grey", live >> self.level_shift)):
            why = self.detectors[level].why(clean, stems, found, talk, cuts, bits)
            if why:
                return level, why, clean, cue, found
        return None, None, clean, cue, found

    def explained_after(self, level: str | None, why: str | None, found: dict, after: dict) -> bool:
        """Whether what a few words read apart found (``level`` and ``why`` of their rules, else the
        classifier's; their concepts ``found``) is explained by what follows them (its concepts ``after``): a
        concept of the `none` of the rule that matched, or for any other finding one of `frames.explained_after`
        that the words themselves lack."""
        frame = next((f for f in self.detectors[level].frames if f.name == why), None) if level in self.detectors else None
        if frame is not None:
            return not frame.excludes.isdisjoint(after)
        return not level and any(c in after and c not in found for c in self.explaining)

    def beside_clause(self, text: str, found: dict) -> tuple[str, str] | None:
        """What a message says beside the clauses that `clause` talk frames explain, and the first such frame's name, or
        None: when every talk frame that makes the message (concepts ``found``) talk is a `clause` frame, the text of
        its clauses (`CLAUSE_CUT`: sentences, commas, and/but/honestly, 其实/反正/说实话) that are not talk by
        themselves, joined; None also when no clause is talk alone (the frame's words lie across clauses) or every one
        is. At most `PASSAGES_MAX` clauses are read (a longer message: None), once each, only for such a message."""
        frames = [frame for frame in self.detectors["talk"].frames_for(found) if frame.matches(found)]
        if not frames or not all(frame.clause for frame in frames):
            return None
        cuts = sorted({0, len(text), *(m.start() for m in CLAUSE_CUT.finditer(text))})
        clauses = [text[a:b] for a, b in zip(cuts, cuts[1:]) if _size(text[a:b].lower())]
        if not 1 < len(clauses) <= PASSAGES_MAX:
            return None
        kept = [clause for clause in clauses if not quiet(self.assess(clause)[3])]
        if not kept or len(kept) == len(clauses):
            return None
        return " ".join(c.strip() for c in kept), frames[0].name

    def talk_as_a_whole(self, found: dict) -> bool:
        """Whether a message whose concepts are ``found`` is talk as a whole: a `talk` frame marked `whole`
        matches (a joke, a professional's or a class's question, a story on a screen)."""
        return any(frame.whole and frame.matches(found) for frame in self.detectors["talk"].frames_for(found))

    def cue(self, clean: str, stems: str, found: dict) -> str:
        cue = self._cue(clean, stems, found)
        if cue in ("risk", "weak", "long", "short") and CARE_NAMED.search(stems):
            # (session 20, CARE) a diagnosis, a treatment or a recovery named is not itself a risk ("I have bipolar and my
            # wife says I spend too much money lately" p(grey) 0.78, "My therapy homework is to write what I would say to
            # my younger self." 0.74, 我儿子…被诊断为抑郁症，在吃药 for its 吃药: check-ins, audit A22): the classifier learnt
            # these names from crises that named them. When every risk word of the message lies inside such a name, its
            # check-in needs safety.checkin_threshold_short, as a short message with no risk word; a risk word beside the
            # name ("I have bipolar and I can't go on") keeps the message's cue, and the crisis reply its own bar.
            named = [m.span() for m in CARE_NAMED.finditer(stems)]
            if _all_within(found.get("risk_cue", ()), named) and not MOOD_BREAKERS & found.keys():
                return CARE_NAMED_CUE
        if cue == "risk" and found.get("at_peace") and (found.get("death_reported") or found.get("grief_past")) \
                and not GRIEF_BREAKERS & found.keys():
            # (session 18, LOOK) a death of someone else told as past and settled ("My brother died when I was a kid. I've made
            # peace with it", 奶奶前几年去世了，现在想起她心里很平静): its death, grave and peace words are no risk of the
            # writer's, so the classifier's check-in needs safety.checkin_threshold_no_cue (its check-ins were at p
            # 0.38-0.40); a wish to join them, a hopeless word or any plan keeps it a risk
            return "weak"
        return cue

    def _cue(self, clean: str, stems: str, found: dict) -> str:
        """How far the classifier is heard on a message (see `assess`): "risk" with a `risk_cue`
        word or two different `weak_cue` words; "weak" with one weak word, or risk words that are all
        moods of the day (`everyday_mood`, tiredness) (its check-in needs
        safety.checkin_threshold_no_cue, as "long" does); "short" also when the message is about
        physical care (`ordinary_care`: "she's burning up", "does it matter") and no risk word
        stands outside those words."""
        if "risk_cue" not in self.concepts.names:
            return "risk"
        care = found.get("ordinary_care", ())
        # a few words whose only risk word is tiredness ("I'm tired", 我好累) are read as a short message: a
        # check-in to everyday fatigue was the classifier's, at p(grey) 0.83-0.92 (session-13 audit)
        tired = found.get("tiredness", ())
        if tired:  # ...when tiredness is all it says: not "tired of being me", 好累，想走 (R13b)
            rest = stems
            for start, end in sorted(tired, reverse=True):
                rest = rest[:start] + " " + rest[end:]
            tired = tired if set(_SIZE.findall(rest)) <= TIRED_FILLER else ()
        risk = found.get("risk_cue", ())
        if not _all_within(risk, tuple(care) + tuple(tired)):
            # A mood of the day said as it is (努力了那么久还是失败了, 压力很大, 好累，不想说话, "I can't believe they'd
            # do that"): when each risk word is one of `everyday_mood` or tiredness, the classifier's check-in needs
            # safety.checkin_threshold_no_cue, as one everyday word's does. At the risk-word thresholds (0.30 zh,
            # 0.35 en) these got check-ins at p 0.32-0.38 (session 14, brief EV); a word of life, death, no one or
            # an ending beside the mood ("tired of being me", 活着好累) keeps it a risk.
            # (...and any other word of life, an ending or a wish to be gone, risk word or not: 好累，想走 lost its
            # check-in to this rule, its 想走 no risk word; the session-14 CI)
            if not care and _all_within(risk, tuple(found.get("everyday_mood", ())) + tuple(found.get("tiredness", ()))) \
                    and not MOOD_BREAKERS & found.keys():
                return "weak"
            return "risk"
        if not care:
            weak = {stems[start:end] for start, end in found.get("weak_cue", ())}
            if len(weak) >= 2:
                return "risk"
            if weak:
                return "weak"
        return "long" if _size(clean) >= LONG_MESSAGE and not care else "short"

    def unsafe_reply(self, reply: str, by_model: bool = True) -> str | None:
        """What in a reply gives method or dose details (a term, pattern or frame), or None. A
        model's (``by_model``) is also read a sentence at a time by the rules of `unsafe_reply.rules`:
        a sentence that keeps someone safe ("give the pills to someone you trust") pardons its own
        words, not the next sentence's, nor what follows a "but". The offline companion's tips
        (``by_model`` False) meet only the terms and `frames.rules` (see `ReplyGuard`)."""
        clean, stems, found = self.read(reply)
        if by_model:  # (a usual dose in the reply is no amount: `dose_in_reply` of frames.rules reads it too)
            # ...with no other amount anywhere in the reply (it was forgiven beside "then 38 more", an outside review)
            in_reply = self.reply_concepts.find(stems)
            _forget_usual_dose(found, in_reply.get("reply_usual_dose"), {**found, **in_reply})
        why = self.detectors["unsafe_reply"].why(clean, stems, found)
        if why or not by_model:
            return why
        lines = [self.normalizer.clean(line) for line in str(reply).splitlines()]
        # A number that opens a line is a list's only in a list (two lines or more open with one): alone,
        # "50. That's what you'd need" is an amount given, not item 50.
        in_list = sum(bool(LIST_MARKER.match(line)) for line in lines) >= 2
        sentences = [sentence for line in lines for sentence in REPLY_SENTENCE.split(LIST_MARKER.sub("", line) if in_list else line)
                     if sentence.strip()]
        # ...and so is a sentence's ("Honestly? 50) That's what you'd need"): a list has two items or more,
        # on their lines or in one line ("1) Eat something. 2) Text a friend."). Alone, its number is read
        # as a sentence of its own, as "50." is.
        in_list = in_list or sum(bool(LIST_MARKER.match(s)) for s in sentences) >= 2
        across = [frame for frame in self.reply_frames if frame.across]
        pardons = {name for frame in across for name in frame.none}
        before = None  # (stems, found) of the sentence before
        for sentence in [part for s in sentences for part in _marker_apart(s, in_list)]:
            stems = self.normalizer.stems(sentence)
            found = self.concepts.find(stems)
            found.update(self.reply_concepts.find(stems))
            _drop_not_advice(found, self.reply_pardons)
            for frame in self.reply_frames:
                if frame.matches(found):
                    return frame.name
            if before:
                joined = _joined(before[1], found, len(before[0]) + 1, pardons)
                for frame in across:
                    if frame.matches(joined):
                        return frame.name
            before = stems, found
        return None

    def red_flags(self, text: str) -> list[Rule]:
        """The red-flag rules ``text`` (normalized) matches, in file order."""
        flagged = self._flagged.get(text)
        if flagged is not None:
            return list(flagged)
        found, live = [], self.flag_gate.live(text)
        for rule in self.rules:
            if not live & rule.bits:
                continue
            read, on = text, live
            if rule.mask is not None and rule.mask.search(text):
                # read without what the rule's masks cover, every check of it anew (rare: a mask matched)
                read, on = rule.mask.sub(MASK, text), -1
            # (a phrase list or pattern whose bit is off cannot match: `_has` and `search` would say no)
            if any(bit is not None and on >> bit & 1 and (self._has(check, read) if kind == "any" else check.search(read))
                   for kind, check, bit in rule.checks if kind != "all") or (
                    rule.all and all(bit is not None and on >> bit & 1 and self._has(check, read)
                                     for kind, check, bit in rule.checks if kind == "all")):
                found.append(rule)
        if len(self._flagged) >= FLAGGED_MAX:
            self._flagged.clear()  # bounded: a few messages' worth (a message and its parts), each up to 100,000 chars
        self._flagged[text] = found
        return list(found)

    def cautions(self, text: str) -> list[str]:
        """The `red_flag_cautions` kinds ``text`` (normalized) names, in file order (see `Cautions.kinds`)."""
        return self.caution_table.kinds(text)

    def _has(self, terms: Terms, text: str) -> bool:
        return has(terms, text, self.negation)  # (not negated in its clause's last 16 characters)


# Red flags that tell of a mind as much as a body: an overdose taken (`overdose_taken`) gets its 120 note and still the
# classifier's check-in, where an emergency symptom's note answers it alone (see `_verdict`): "I've taken half a pack
# of my mum's diazepam" and 已经吞下大半盒舍曲林了 lost their check-in's hotlines when the note came (session 18, AUDFIX).
OVERDOSE_FLAGS = frozenset({"overdose_taken"})
FLAGGED_MAX = 16  # the texts `Phrases.red_flags` keeps its answer for
ROUTINE_MAX = 60  # the longest message `Safety.routine_report` reads: a dose report is a few words
# ...and a needed treatment stopped (`vital_stopped`: insulin, dialysis) is one too, but its note does not bring a check-in by
# itself (it is as often a supply run out as a will): the classifier's check-in still comes with it, as it would without
# the note ("跟医院说了透析不做了，这样拖着没意思，让它结束吧" had p(crisis) 0.73 and got the note alone; session 19, CRIS2)
NOTE_AND_MIND_FLAGS = OVERDOSE_FLAGS | {"vital_stopped"}
# How many messages after a symptom's red-flag note keep the emergency first when they bring no sign of their own
# (`Safety.before_reply`): its next details ("It started 20 minutes ago", "He's on aspirin", "still hurts"), not a
# conversation's every later turn.
EMERGENCY_FOLLOWUPS = 3


def _symptom_noted(phrases, text: str) -> bool:
    """Whether an emergency symptom's red-flag note answers ``text`` (so no check-in is added): any red flag but an
    overdose taken or a needed treatment stopped."""
    return any(rule.name not in NOTE_AND_MIND_FLAGS for rule in phrases.red_flags(normalize(text)))


# Used if prompts/safety.yaml has no crisis reply at all: a crisis never goes unanswered.
FALLBACK_CRISIS = {
    "zh": "我很担心你。请现在就联系心理援助热线 {hotlines}；如果有立即的危险，请拨打 {emergency}。我在这里陪你，你现在安全吗？",
    "en": "I'm worried about you. Please call a hotline now: {hotlines}; if you're in immediate danger, call "
          "{emergency}. I'm here with you. Are you safe right now?",
}
FALLBACK_CHECKIN = {
    "zh": "听起来你最近很辛苦。如果有时候难受到想伤害自己，请拨打心理援助热线 {hotlines}，有人愿意听你说。",
    "en": "It sounds like things are hard right now. If it ever gets to thoughts of hurting yourself, a hotline "
          "is there to listen: {hotlines}.",
}

# The model's judgement: a marker the model is asked to put first (prompts/safety.yaml:
# judgement_system), after the [label] of an inline emotion tag if there is one.
MARKER = re.compile(r"(?P<lead>\s*(?:[\[【][^\]】\n!！]{0,30}[\]】]\s*)?)"
                    r"(?P<mark>[\[【]\s*[!！]\s*(?P<kind>crisis|check[\s_-]?in)\s*[\]】])\s*", re.IGNORECASE)
# What may still become a marker: brackets at the start and a few characters, no line break.
MARKER_START = re.compile(r"\s*(?:[\[【][^\]】\n]{0,30}(?:[\]】]\s*(?:[\[【][^\]】\n]{0,20})?)?)?")


def concept_features(found: dict, known=None) -> list[str]:
    """The classifier's features from the concepts the rules found in a message ("q:wish",
    "q:ordinary_care"): what a word list knows (a medicine's name is a drug, "kick in" a question
    about one) for words the training rows never held. English messages only, as the model
    file's meta says (train-crisis --concept-features). Measured against the same rows without them,
    at the shipped thresholds: held English hard negatives flagged 11 -> 9 of 195, the everyday
    sentences of tests/data/emotion_labelled.tsv 21 -> 18, crisis recall unchanged on the held split
    and A-G. Pairs of concepts as well did better on the held split (hard negatives 7) but worse on
    A-G, which nobody trained on (English hard negatives 12 -> 14 of 460, one more crisis missed);
    Chinese messages with them lost about 2 points of held recall at the same false alarms.
    ``known``: the concepts the model was trained with (its file's meta), if it says: features are
    hashed, so a concept added to prompts/safety.yaml after training would read the weights of
    whatever shares its bucket (three new concepts moved 13 verdicts on the training and dev rows)."""
    return ["q:" + name for name in sorted(found) if known is None or name in known]


class Verdict:
    """What the safety check found in a user's message."""

    def __init__(self, level: str | None, why: str | None, scores: dict | None = None):
        self.level, self.why, self.scores = level, why, scores or {}
        self.concepts = None  # Safety.assess: the concepts found, where no mask changed the message

    @property
    def found(self) -> bool:
        """Whether the reply carries the hotlines (crisis reply or check-in)."""
        return self.level is not None


class Safety:
    """What the plugin does for one Wellmate: reads its settings, the phrases file and the model."""

    def __init__(self, wm):
        self.wm = wm
        self.config = wm.config["safety"]
        self.phrases = WatchedYaml(data_file_candidates(wm, self.config["phrases"]), Phrases, empty_ok=False,
                                   without="no crisis or red-flag phrases are checked: crisis replies come from "
                                           "the classifier alone, in the built-in wording")
        self.phrases.read_now(wm)  # a broken file is logged at startup (and an error of `check`), not at the first message
        name = str(self.config["model"] or "").strip()
        self.model_paths = data_file_candidates(wm, name) if name else []
        self._model, self._model_stamp, self.model_problem = None, None, None
        self._model_lock = threading.Lock()
        self.model  # read now: a broken file is logged at startup
        self.book = FlagBook(wm)
        if self.model_problem and isinstance(getattr(wm, "problems", None), list):
            wm.problems.append(self.model_problem)

    # -- the classifier -------------------------------------------------------------------------
    @property
    def model(self):
        """The crisis classifier, read again when its file changes (`train-crisis` while the server
        runs), or None: without safety.model, or when the file is missing or broken (that costs
        the classifier only: the phrase rules still find crises; logged once per version of the
        file, and `wellmate.py check` says so)."""
        if not self.model_paths:
            return None
        path, stamp = first_file(self.model_paths)
        if stamp != self._model_stamp:
            with self._model_lock:
                if stamp != self._model_stamp:
                    self._model, self.model_problem = self.load_model(path)
                    self._model_stamp = stamp
        return self._model

    def use_model(self, path: Path):
        """Score with the weights at ``path`` from now on (train-crisis measures what it wrote)."""
        self.model_paths, self._model_stamp = [Path(path)], None

    @staticmethod
    def load_model(path: Path):
        """(the crisis classifier at ``path`` or None, why it cannot be used or None)."""
        try:
            from wellmate_plugins._textmodel import TextModel
            model = TextModel.load(path)
            if "crisis" not in model.labels:
                raise ValueError(f"its labels are {model.labels}, not crisis/grey/none")
            # the concepts it was trained with (see concept_features), as a set: a list cost ~80 us a message
            concepts = model.meta.get("concepts")
            model.known_concepts = frozenset(str(c) for c in concepts) if isinstance(concepts, list) else None
        except (ImportError, OSError, ValueError) as e:
            problem = f"safety.model: cannot use {path} ({e}); crisis checks use the phrase rules only"
            log.error("%s", problem)
            return None, problem
        return model, None

    def assess(self, text: str, phrases: Phrases | None = None) -> Verdict:
        """crisis, grey (a check-in) or nothing, by the rules first and then the classifier. ``phrases``: the
        phrases file as the caller has it already (`check`: one look at the file's date a message, not two)."""
        phrases = phrases or self.phrases.get()
        level, why, clean, cue, found = phrases.assess(text)
        verdict = self._verdict(phrases, text, level, why, clean, cue, found)
        if verdict.level != "crisis" and cue is False and len(text) <= PASSAGES_TEXT_MAX:
            # A talk frame that explains its own clause (a medicine question) does not silence the rest: what the message
            # says beside it is read as a message of its own, its crisis the crisis reply ("What happens if I miss a dose
            # of my zoloft? nobody would even notice if I was gone", 漏吃一次药要紧吗，反正我也撑不下去了 got nothing)
            beside = phrases.beside_clause(text, found)
            if beside is not None:
                rest, frame = beside
                r_level, r_why, r_clean, r_cue, r_found = phrases.assess(rest)
                apart = self._verdict(phrases, rest, r_level, r_why, r_clean, r_cue, r_found)
                if apart.level and not (apart.level == "grey" and verdict.level):
                    verdict = Verdict(apart.level, f"{apart.why} (beside {frame})", apart.scores)
        concepts = found if MASK not in clean else None
        # A message that is talk as a whole (a joke, a research question, a party game: a `talk` frame
        # marked `whole`) stays talk: its parts are not read apart, where one would lose the sentence that
        # made it talk ("...I was the victim so I 'died' before the starter came out. ... Ten out of ten
        # would die again": p(crisis) 0.9 for the last two sentences alone). A message the classifier is
        # not asked about for one talk word, a mask or a talk frame that explains its own words only still
        # has its parts read: each part with such a word is talk by itself and stays unread, and the others
        # are what the writer says besides ("...watched a couple episodes of something i dont even
        # remember, ... and now im sitting in the bathtub with the razor and i think tonight is the night"
        # got no hotline: crisis_P; "...moved back into my childhood bedroom... wrote letters to everyone
        # last night. gonna drive to the coast tomorrow and not come back" neither, for moving house).
        # Such a message's part counts only when it is sure: the crisis of the rules, or of the classifier at
        # safety.crisis_threshold. The talk word made the message an everyday one, and the check-ins of the
        # classifier on its other sentences were noise ("Long day of cutting." after a haircut, "We packed the
        # last boxes tonight." after a move, "want really clean cuts" after a fish knife): measured in NOTES-LONG.md.
        silenced = quiet(cue)
        # (nor are the parts of an emergency symptom read: its note answers it, as `_verdict` says; "My chest has felt
        # tight and heavy for the last half hour and the pain goes into my jaw." got a check-in in part: session-14 audit)
        if verdict.level is None and (not silenced or not phrases.talk_as_a_whole(found)) \
                and len(text) <= PASSAGES_TEXT_MAX and not phrases.red_flags(normalize(text)):
            # (session 18, LOOK) in a message that is talk as it stands, with words quoted as a mention (`quoted_mention`:
            # "the narrator says 'I want to die'"), the parts are read without the quotes: a long sentence cut into pieces
            # of 12 words parted the quote from its speaker, and "At book club tonight we talked about how the narrator
            # says 'I want to die' in the last chapter." got a check-in for "want to die" (in part). No wish of the
            # writer's own is anywhere in such a message: it would have taken the talk back.
            parted = QUOTED.sub(" ", str(text)) if silenced and "quoted_mention" in found else str(text)
            spans = _units_of(parted)  # (the units once, for the pairs and the sentences alone)
            pairs, alone = _in_context(parted, spans, False), _in_context(parted, spans, True)
            followed = dict(pairs + alone)  # each passage and what follows it
            pairs, alone = [p for p, _ in pairs], [p for p, _ in alone]
            # each text read once a message: a pair's text is also what follows a sentence alone (`followed`), and the
            # one pair of a message of two units is the message itself, read whole above
            read = {text: (level, why, clean, cue, found)}
            for sentence in alone:
                if sentence not in read:
                    read[sentence] = phrases.assess(sentence)

            def assessed(passage):
                seen = read.get(passage)
                if seen is None:
                    seen = read[passage] = phrases.assess(passage)
                return seen
            # A pair with a sentence that is talk by itself ("how does a chatbot decide a user is suicidal.",
            # a party game, a joke) is not read: the pair may have lost what made it talk (`--buried` joined
            # hard negatives flagged en 12.0 -> 11.3%, no crisis lost).
            talk = [quiet(read[sentence][3]) for sentence in alone]
            for i, (passage, thresholds) in enumerate([(p, PASSAGE_CRISIS) for p in pairs] +
                                                      [(p, SENTENCE_ALONE_CRISIS) for p in alone]):
                if i < len(pairs) and talk and (talk[i] or talk[i + 1]):
                    continue
                if passage == text:  # (its verdict is the message's, which found nothing: ~0.3 ms a message of two units)
                    continue
                level, why, clean, cue, found = assessed(passage)
                if silenced and level != "crisis" and cue not in ("risk", "weak"):
                    continue  # (the test below cannot pass for it, whatever the classifier says: it is not asked)
                apart = self._verdict(phrases, passage, level, why, clean, cue, found)
                # What a part says counts as a check-in, never the crisis reply: read apart it has lost
                # the rest of the message, which may have made it something else ("I'm planning a surprise
                # party for my wife. I've set a date, Friday." read a plan; an outside review, session
                # 12). A check-in still gives the hotlines, and the model's answer after them. (Session 13
                # measured the crisis reply for a part the rules call a crisis, with "I"/"我" in it and no
                # part or talk word taking it back: 6 more crisis replies among ~630 buried crisis rows,
                # 1 more among 600 joined hard negatives, and "I'm reading about the history of the Golden
                # Gate bridge and how many people jumped from it" got it: not taken.) The classifier's own
                # check-in needs p(crisis) of at least `PASSAGE_CRISIS` for the part's cue: sentences cut
                # from a long everyday message read as sadness more often than whole ones ("The plant is
                # probably dead now", a grave visited).
                # In a silenced message the classifier's sure crisis counts for a part with a risk word only: "...that
                # hospital drama's suicide attempt storyline... Anyway, going to make tea and go to bed." got 0.96 for
                # its last sentence (NOTES-LONG; nothing else measured moved).
                sure = apart.level == "crisis" and (level == "crisis" or not silenced or cue in ("risk", "weak"))
                if not (sure or (apart.level and not silenced and (
                        level or (cue in thresholds and apart.scores.get("crisis", 0.0) >= thresholds[cue])))):
                    continue
                # A few words that what follows them explains (see `Phrases.explained_after`) say nothing of their
                # own; nor does a part of a silenced message that is talk with what follows it ("I want to quit.
                # I've put enough aside. Handing in my notice on Monday.": leaving a job, said last).
                if _size(clean) < LONG_MESSAGE and phrases.explained_after(level, why, found, assessed(followed[passage])[4]):
                    continue
                if silenced and followed[passage] != passage and quiet(assessed(followed[passage])[3]):
                    continue
                verdict = Verdict("grey", f"{apart.why} (in part)", apart.scores)
                break
        # someone else's written words that are a worry: the helper's report (see `their_words`), unless what the message
        # says besides them is a crisis of the writer's own ("my mum wrote 'I give up on you' and I want to die")
        report = self.their_words(text, phrases)
        if report is not None:
            words, start, end = report
            # (the rules' crisis, or a wish or act of the writer's own: the classifier reads "found a note in my son's
            # backpack" as a crisis, p 0.98, for the note)
            rest = phrases.assess(text[:start] + " " + text[end:])
            if rest[0] != "crisis" and not rest[4].keys() & WRITERS_OWN_RISK and not SAME_AS_THEM.search(text):
                verdict = Verdict("crisis", f"their words: {words[:40]}")
        if verdict.level is None and self.laughed_off(text):
            verdict = Verdict("grey", "a wish laughed off")
        if verdict.level is None and any(r.name in OVERDOSE_FLAGS for r in phrases.red_flags(normalize(text))) \
                and not _symptom_noted(phrases, text):  # (a dose by mistake: the poisoning note alone, as before)
            # tablets taken by the handful or the half bottle, meant or not: the 120 note first, and the hotlines after
            # it, not the note alone ("I took a fistful of ibuprofen a few minutes ago" got "call 120" and nothing of
            # how they are: the session-18 audit's held list, AUDFIX)
            verdict = Verdict("grey", "an overdose taken")
        # the concepts of the message where no mask changed it: `names_death` need not read it again
        verdict.concepts = concepts
        return verdict

    def _verdict(self, phrases, text, level, why, clean, cue, found) -> Verdict:
        """The verdict of the rules (``level``, ``why``) and the classifier on a message ``phrases`` read."""
        if level == "crisis" or not cue:
            return Verdict(level, why)
        scores = self.scores(clean, found)
        crisis, grey = scores.get("crisis", 0.0), scores.get("grey", 0.0)
        if crisis >= self.config["crisis_threshold"]:
            return Verdict("crisis", "model", scores)
        if cue == TALK_HEARD:  # talk about a topic (see Phrases.assess): the classifier at its own bar
            if crisis + grey >= self.config["checkin_threshold_talk"] and level is None:
                return Verdict("grey", "model (in talk)", scores)
            return Verdict(level, why, scores)
        if cue == CARE_NAMED_CUE:  # a diagnosis or a treatment named, no risk word outside it (see Phrases.cue)
            if level is None and crisis + grey >= self.config["checkin_threshold_short"] and not _symptom_noted(phrases, text):
                return Verdict("grey", "model", scores)
            return Verdict(level, why, scores)
        if cue == "short":  # a sure verdict only (see Phrases.assess): the crisis reply, or a check-in
            # ...of four words or more: on fewer its sure-looking verdicts are noise ("talk to me" p(grey) 0.99)
            if level is None and crisis + grey >= self.config["checkin_threshold_short"] and _size(clean) >= SHORT_CHECKIN \
                    and "ordinary_care" not in found and not _symptom_noted(phrases, text):
                return Verdict("grey", "model", scores)
            return Verdict(level, why, scores)
        # An emergency symptom ("胸口很痛，喘不上气") has words the classifier reads as distress:
        # the red-flag note answers it, a mental-health check-in would not.
        threshold = self.checkin_threshold(text) if cue == "risk" else self.config["checkin_threshold_no_cue"]
        if level is None and crisis + grey >= threshold and not _symptom_noted(phrases, text):
            return Verdict("grey", "model", scores)
        return Verdict(level, why, scores)

    def assess_rules(self, text: str) -> Verdict:
        level, why = self.phrases.get().assess(text)[:2]
        return Verdict(level, why)

    def classify(self, text: str) -> Verdict:
        """The classifier's verdict alone (bench/safety and train-crisis compare it with the rules)."""
        scores = self.scores(self.phrases.get().normalizer.clean(text))
        crisis, grey = scores.get("crisis", 0.0), scores.get("grey", 0.0)
        level = "crisis" if crisis >= self.config["crisis_threshold"] else \
            "grey" if crisis + grey >= self.checkin_threshold(text) else None
        return Verdict(level, "model" if level else None, scores)

    def checkin_threshold(self, text: str) -> float:
        """The check-in threshold of a message with a risk word: safety.checkin_threshold_zh for one in Chinese."""
        return self.config["checkin_threshold_zh" if language(text) == "zh" else "checkin_threshold"]

    def scores(self, clean: str, found: dict | None = None) -> dict:
        """The classifier's probabilities for a cleaned message (``found``: its concepts, if the
        rules have them already); {} without a usable model."""
        model = self.model
        if model is None or not clean.strip(" |"):
            return {}
        try:
            extra = ()
            if language(clean) in model.meta.get("concept_features", ()):
                if found is None:
                    phrases = self.phrases.get()
                    found = phrases.concepts.find(phrases.normalizer.stems(clean))
                extra = concept_features(found, getattr(model, "known_concepts", None))
            return model.scores(clean, extra)
        except Exception:  # a model that loads but cannot score must not cost the reply
            log.exception("the crisis classifier failed")
            return {}

    def risky_plan(self, text: str) -> str:
        """"mania" when ``text`` tells of stopping a prescribed medicine on one's own with a word of a high, "stop" for
        the stopping alone, "" otherwise (`cheerless_plans` in prompts/safety.yaml): good news with a risky plan is not
        met with cheer (session 20, EMO2). Bounded regexes over the message, once a turn."""
        plans = self.phrases.get().plans
        text = normalize(text or "")[:4000]
        if not any(p.search(text) for p in plans["stop_medicine"]) or any(p.search(text) for p in plans["unless"]):
            return ""
        return "mania" if any(p.search(text) for p in plans["mania"]) else "stop"

    def names_death(self, text: str, verdict: Verdict | None = None) -> bool:
        """Whether ``text`` has a word of dying or killing (the `death_word` concept, read before the
        hard negatives are masked): "I'd rather be dead than sit through another lecture lol" is no
        crisis, yet it must not be met with cheer (the `risk_word` flag of a turn). Not when every such
        word is in a happy idiom (`happy_idiom`: "I killed it at work today", 笑死我了 kept their happy
        face; an outside review, session 11), unless one is of `cheerless_idioms`, which names the
        writer's own death ("I'm so happy I could die!": "How nice!", an outside review, session 13)."""
        phrases = self.phrases.get()
        if "death_word" not in phrases.concepts.names:
            return False
        if phrases.cheerless_idioms.regex is not None and phrases.cheerless_idioms.regex.search(normalize(text or "")):
            return True
        found = verdict.concepts if verdict is not None else None
        if found is None:  # the message was masked (or not read yet): read it whole (~0.2 ms)
            found = self.unmasked_concepts(text)
        if not found.get("death_word") or _all_within(found["death_word"], found.get("happy_idiom", ())):
            return False
        return not self._ordeal_only(phrases, text)

    @staticmethod
    def _ordeal_only(phrases, text: str) -> bool:
        """Whether every word of dying or killing of ``text`` is in an ordeal told with a turn for the good
        (`ordeal_idioms`: "labour nearly killed me lol but she's perfect", 生孩子差点要了我的命，但是宝宝很健康): the message
        is read again without the ordeal's words, only when a pattern matched (bounded: the first 4,000 characters)."""
        if phrases.ordeal is None:
            return False
        text = normalize(text or "")[:4000]
        spans = [m.span() for m in phrases.ordeal.finditer(text)]
        if not spans or (phrases.ordeal_unless.regex is not None and phrases.ordeal_unless.regex.search(text)):
            return False
        rest, last = [], 0
        for start, end in spans:
            rest += [text[last:start], " "]
            last = end
        rest = "".join(rest) + text[last:]
        found = phrases.concepts.find(phrases.normalizer.stems(phrases.normalizer.clean(rest, mask=False)))
        return not found.get("death_word") or _all_within(found["death_word"], found.get("happy_idiom", ()))

    def unmasked_concepts(self, text: str) -> dict:
        """The concepts of a message read with no mask (what a joke or an idiom blanked is read too)."""
        phrases = self.phrases.get()
        normalizer = phrases.normalizer
        return phrases.concepts.find(normalizer.stems(normalizer.clean(text, mask=False)))

    def answers_unsafe(self, text: str) -> bool:
        """Whether a message says the writer is not safe or has the means at hand (the `unsafe_answer`
        concept): after a crisis reply, which ends "are you safe right now?", that answer is the crisis
        again. 不安全 and "No I'm not safe right now" got a coffee tip and a question (session-13 audit)."""
        # only a short answer, not a question, and not one that says the writer is safe: "I'm safe now. My phone is
        # right next to me", 这个小区晚上不安全吗？ and "Not safe to drive in this snow" got the crisis reply again (R13b)
        if _size(text) > UNSAFE_ANSWER_SIZE or QUESTION_OR_SAFE.search(text.lower()):
            return False
        return bool(self.unmasked_concepts(text).get("unsafe_answer"))

    def about_someone_else(self, text: str) -> bool:
        """Whether a crisis message tells of someone else at risk, by a writer who wants to help them
        (prompts/safety.yaml `third_party`; the verdict already says crisis, this says whose): "my friend says she
        wants to kill herself, what do I do?" and
        我朋友说想自杀 我该怎么办 got the crisis reply written to the one at risk (session 14, AUD). Not when the
        writer says a wish of their own or speaks of themselves other than as the helper ("my friend wants to die
        and so do I", "gave my guitar to my little brother, I won't need it")."""
        phrases = self.phrases.get()
        normalizer = phrases.normalizer
        stems = normalizer.stems(normalizer.clean(text, mask=False))
        found = phrases.concepts.find(stems)
        mine = phrases.third_party.find(stems)
        # (the people of `third_party` count alone too: "My teenager is hurting herself on purpose", the session-14 audit)
        people, helper = found.get("someone_else", []) + found.get("in_my_care", []) + mine.get("people", []), mine.get("helper", [])
        # (a cue of the writer's own risk that lies inside the helper's ask is the helper's: 我现在 of 我现在该怎么办 is no
        # 我现在在天台上; the session-18 audit, AUDFIX)
        own = [span for name in WRITERS_OWN_RISK for span in found.get(name, ())]
        if not people or _size(text) > THIRD_PARTY_SIZE or any(
                not any(a <= start and end <= b for a, b in helper) for start, end in own):
            return False
        # something asked after a person is named, or told in the clause that names them: a person named beside
        # one's own plan is no report ("手腕上的口子又多了几道，别告诉我妈", "wrote letters to my mom, they're on my desk")
        first_person = min(start for start, _ in people)
        # (a person whose things are named is no one who did it: 刚刚把奶奶的降压药偷偷吃了一大把 is the writer's own overdose,
        # not a report of grandma's; session 18, AUDFIX)
        doers = [(a, b) for a, b in people if not OWNER_OF.match(stems, b)]
        told = [start for start, _ in mine.get("told", ()) if any(
            a < start and not CLAUSE_END.search(stems[a:start]) for a, _ in doers)]
        if not told and not any(start > first_person for start, _ in helper):
            return False
        quoted = [m.span(1) if m.group(1) is not None else m.span(2) for m in QUOTED.finditer(stems)]
        for start, end in mine.get("self", ()):
            if any(a <= start and end <= b for a, b in helper + people):  # "what do I do", 我妈 (a person word itself)
                continue
            if any(a <= start and end <= b for a, b in quoted):  # their words quoted: "texted me 'I love you, I'm sorry'"
                continue
            # 我的朋友, 我表妹, "my best friend", "my 14 year old son" (not "my desk", "my last message")
            if any(THIRD_PARTY_POSSESSIVE.fullmatch(stems[end:a]) for a, _ in people if a >= end):
                continue
            return False
        return True

    def their_words(self, text: str, phrases: Phrases | None = None) -> tuple[str, int, int] | None:
        """Someone else's written words that the message reports, when read as one's own they are a crisis or a check-in
        (rules, or the classifier with a risk word; a few words sure-looking to it alone are noise: "soon", 我会想你的):
        "my 13yo wrote 'nobody will miss me' in her diary" is a helper's report (the third-party reply). Not when a
        person other than the writer is not named, when the words are aimed at the writer, nor when the message is talk
        (a story read, a joke). (the words, as read; where the report and its words start and end in ``text``), or None.
        Cost: one regular expression a message, and a
        read of the words only where a verb of writing is found."""
        text = str(text or "")
        # (a report is a few sentences: in a long one the writer's own plan may lie a sentence away from what mum texted,
        # T and W, which the classifier reads as a crisis of the message, not of the words; as `about_someone_else`)
        if _size(text) > THIRD_PARTY_SIZE:
            return None
        lowered = text.lower()  # (the same length as ``text``: its spans are the message's)
        if not WRITTEN_GATE.live(lowered):  # (none of the words a report needs: 6 -> 3 us an English message of 16 words)
            return None
        reports = list(WRITTEN.finditer(lowered))[:4]
        if not reports:
            return None
        phrases = phrases or self.phrases.get()
        normalizer = phrases.normalizer
        stems = normalizer.stems(normalizer.clean(text, mask=False))
        found = phrases.concepts.find(stems)
        if not (found.get("someone_else") or found.get("in_my_care") or phrases.third_party.find(stems).get("people")
                or CHILD_AGE.search(lowered)):
            return None
        # talk, a laugh or a celebration beside the words explains them ("the episode where he writes goodbye letters",
        # 'my dad texted "sorry for everything" after he burned the turkey lol', 'best friend posted "goodbye single life"
        # she's getting married': a crisis reply for each, measured on the training files' none rows)
        if phrases.talk_as_a_whole(found) or not found.keys().isdisjoint(THEIR_WORDS_EXPLAINED) or CELEBRATED.search(lowered):
            return None
        # (session 18, LOOK) ...and a text read to be studied, when nothing says the writer worries for whoever wrote it:
        # "how do I analyse a classmate's poem that says 我想消失" is homework, "my daughter wrote a poem saying she wants to
        # disappear" (no study) or "...I'm worried, should I tell the teacher?" (a helper's words) still a report
        if "text_studied" in found and not WORRIED.search(lowered):
            return None
        for report in reports:
            subjects = list(WRITER_OF_IT.finditer(lowered, max(0, report.start() - 60), report.start()))
            if not subjects or subjects[-1].group("me") is not None:
                continue
            after = lowered[report.end():report.end() + THEIR_WORDS_MAX + 2]
            quote = QUOTED.search(after)
            if quote is not None and quote.start() <= 20:
                words = quote.group(1) if quote.group(1) is not None else quote.group(2)
                end = report.end() + quote.end()
            else:  # the words told without quotes, to the sentence's end, in the first person
                words = re.split(r"[.!?。！？\n]", after, maxsplit=1)[0]
                end = report.end() + len(words)
                for pattern, first in THIRD_TO_FIRST:
                    words = pattern.sub(first, words)
            words = words.strip(" ,:：，\"'“”")
            if _size(words) < 2 or AIMED_AT_ME.search(words):
                continue
            level, why, clean, cue, seen = phrases.assess(words)
            verdict = self._verdict(phrases, words, level, why, clean, cue, seen)
            if level or (verdict.level and cue in ("risk", "weak")) or (verdict.level == "grey" and cue == "short"):
                return words, report.start(), end
        return None

    def answers_question(self, asked: str | None, text: str) -> bool:
        """Whether a message is the worrying answer to what the session's last safety reply asked (``asked``,
        see `question_of`): a no to "are you safe right now?" (``safe``: "nope", "not really", 不, 没有, 不太好),
        unless it says the writer is fine ("no, I'm ok now", 没有，我没事); a yes to "have these feelings ever
        led to thoughts of hurting yourself?" (``hurt_thoughts``: "yeah sometimes", 有过, 想过). Only a short
        answer that is no question: a longer message is read as any other. These answers got an ordinary
        reply (session 14, AUD): "not really" after a crisis reply, "有过" after a check-in."""
        asked = "safe" if asked == "followed" else asked  # a crisis reply repeated asks it too
        if asked not in ("safe", "hurt_thoughts") or _size(text) > UNSAFE_ANSWER_SIZE or QUESTION.search(text):
            return False
        begins, fine, _ = self.phrases.get().answers.read(text)
        # A yes that says the writer is safe answers "are you safe?", whichever question was asked: "Yes, I am safe.
        # I just feel really empty." after the check-in's "have these feelings ever led to thoughts of hurting
        # yourself?" got the crisis reply (session-14 audit). It is read as any other message then: a check-in
        # again has no question (the later wordings), so the writer is not asked the same thing twice.
        return begins == "no" and not fine if asked == "safe" else begins == "yes" and not fine

    def denies_harm(self, asked: str | None, text: str) -> bool:
        """Whether a message that answers a safety reply's question (``asked``) is a crisis only by a harm it denies
        ("我没事，不会伤害自己的，就是心里空空的": 伤害自己 read as the crisis again after a check-in; a new-user
        audit, session 15): the message says the writer is fine or safer, and read without the denied harm it is no
        crisis. A denial negates a harm verb itself (不会伤害自己, "I'd never hurt myself"), never a wish ("我没事，就是
        不想活了", "I'm fine, I just don't want to live" stay crises). The caller keeps a check-in: the person was at
        risk a turn ago and still gets where help is."""
        if asked is None or _size(text) > DENIAL_SIZE:
            return False
        if not (SAFER_NOW.search(text.lower()) or self.phrases.get().answers.read(text).fine):
            return False
        plain = normalize(unicodedata.normalize("NFKC", text))
        undenied = HARM_DENIED.sub(" ", plain)
        if undenied == plain:
            return False
        # read without the denied harm, nothing that leans to a crisis: "我没事，不会伤害自己的，反正明天就都结束了" (an
        # ending tomorrow, p(crisis) 0.51) is the crisis still; "...就是心里空空的" a check-in (the session-15 review)
        verdict = self.assess(undenied)
        if verdict.level == "crisis":
            return False
        return verdict.level is None or self.scores(self.phrases.get().normalizer.clean(undenied)).get("crisis", 0) < 0.3

    def follow_on(self, asked: str | None, text: str) -> str | None:
        """What a short message right after a crisis reply (``asked`` "safe") or a helper's (``asked`` "helper")
        is: "crisis" when it says nothing of being safe ("I mean it", "ok", "bye", 我是认真的, "she stopped
        replying", 怎么办; a goodbye whatever else it says), "grey" for a question on something else ("how do I
        sleep better?", 换个话题，怎么缓解头痛？: answered, with where help is), None when it says the writer is
        safe ("I'm safe", "I feel calmer", "called the hotline", 没事了, a yes to "is someone with you?") or is
        longer than a few sentences. Only right after a crisis reply of a crisis the message itself said: a
        repeat asks nothing more of this kind (`asked` "followed"), or the same reply would answer every message
        after it ("换个话题吧", "能聊点别的吗", "今天天气怎么样": the session-15 second review)."""
        if asked not in ("safe", "helper", "helper_told_fine") or _size(text) > FOLLOW_ON_SIZE:
            return None
        lowered = text.lower()
        if asked == "helper_told_fine":
            # after the helper's wording repeated for "she says she's fine": the helper asking what to do still gets it
            # ("what do I do", 那我现在怎么办 got a 5-4-3-2-1 exercise: the session-16 review); "ok thanks" is answered
            return "crisis" if HELPER_ASKS.search(lowered) else None
        if asked == "helper" and self.reported_fine(lowered):
            return "crisis"  # the helper's wording once more; then nothing is asked (`before_reply`)
        if SAFER_NOW.search(lowered):
            return None
        if GOODBYE.search(lowered) or BARE_ACK.fullmatch(lowered):
            return "crisis"
        if QUESTION.search(text) and _size(text) > FOLLOW_ON_QUESTION:
            return "crisis" if asked == "helper" else "grey"  # (a helper's question is about the one at risk)
        phrases = self.phrases.get()
        begins, fine, rest = phrases.answers.read(text)
        if asked == "safe" and NOBODY_WITH_ME.search(lowered):
            return "crisis"  # "no one is with me, it's fine": no one to be with them is no fine (R15b)
        if asked == "safe" and begins == "yes" and not fine:
            # a yes to "are you safe right now?" is an answer when it says no more, or that someone is with them; a yes
            # that goes on confirms the crisis ("Yes I mean it", "yes all of them", "yes I did, what now", 是的，我是认真的
            # all got an ordinary answer, one an old man's falls tip: the session-16 new-user audit)
            return None if not rest or YES_ENOUGH.fullmatch(rest) or (
                WITH_SOMEONE.search(rest) and not MEANS_WITH_ME.search(rest)) else "crisis"
        return None if fine or (asked == "safe" and begins == "yes") else "crisis"

    def helper_followup(self, text: str, lang: str) -> str | None:
        """What a helper's short message after the helper's reply is when it is no news of the one at risk: one of
        `HELPER_FOLLOWUPS` (again, talk, doctor, guilt, lower, thanks) or a means to put away (`MEANS_AWAY`) with a wording in `third_party_followups`, or None (news,
        or anything else: the helper's reply again, as before). "A question, a feeling or a thank-you is not news" (audit
        A22): "What if she does it again tonight?", "I feel like I failed as a mother.", "Thank you, this helps a little."
        each got the same "I'm still here. If they're in danger right now..."."""
        lowered = visible(text).lower()
        if _size(text) > FOLLOW_ON_SIZE:
            return None
        wordings = self.phrases.get().third_party_followups
        means = MEANS_AWAY.search(lowered)
        if means and (wordings.get("again") or {}).get(lang) and \
                not HELPER_NEWS.search(lowered[:means.start()] + " " + lowered[means.end():]):
            return "again"
        if HELPER_NEWS.search(lowered):
            return None
        for kind, pattern in HELPER_FOLLOWUPS:
            if pattern.search(lowered) and (wordings.get(kind) or {}).get(lang):
                return kind
        return None

    def helper_denies_harm(self, text: str, lang: str) -> bool:
        """Whether a helper's short message says the one at risk did not speak of harm, and is no crisis without that
        clause: "他没有说要伤害自己，只是很消极", "she didn't say she wants to die, she's just quiet". Its harm words are the
        denied ones; "he didn't say he'd hurt himself but he has pills hidden" keeps the helper's reply (the rest is news)."""
        lowered = visible(text).lower()
        if _size(text) > FOLLOW_ON_SIZE or not LOWER_RISK.search(lowered) or \
                not (self.phrases.get().third_party_followups.get("lower") or {}).get(lang):
            return False
        rest = " ".join(c for c in HELPER_CLAUSE.split(lowered) if c.strip() and not LOWER_RISK.search(c))
        return HELPER_NEWS.search(rest) is None and (not rest.strip() or self.assess(rest).level != "crisis")

    @staticmethod
    def imagined_only(text: str) -> bool:
        """Whether a message's risk is only imagined by the one asking (`SIGNS_IMAGINED`: "what if", 万一, "warning signs"),
        with nothing told as said or done ("my son said if he fails again he'll kill himself", 他说万一考不上就去死, "what if
        she took the pills already?": a risk told, the helper's reply)."""
        lowered = visible(text).lower()
        imagined = SIGNS_IMAGINED.search(lowered)
        # (what is told before the "what if" is news: 我女儿说万一考不上就去死; after it, imagined: 万一孩子哪天说不想活了)
        return bool(imagined) and not SIGNS_TOLD.search(lowered[:imagined.start()]) and not HELPER_NEWS.search(lowered)

    def carer_asks_signs(self, text: str, lang: str) -> bool:
        """Whether a short message asks what to do if someone else comes to be at risk ("What if he starts talking
        about dying?", 万一她说不想活了怎么办, "what should I watch for if she starts saying she wants to be with him?"): a
        condition or a question on signs, another person and a death or a harm of theirs. The caller has found no
        crisis in it (a crisis told, "what if she kills herself tonight, she has the pills", is the helper's reply)."""
        if _size(text) > SIGNS_SIZE or not (self.phrases.get().third_party_followups.get("signs") or {}).get(lang):
            return False
        lowered = visible(text).lower()
        found = SIGNS_IF.search(lowered)
        # (a risk told before the condition is news, not a what-if: 我女儿说万一考不上就去死)
        return bool(found and SIGNS_OTHER.search(lowered) and SIGNS_HARM.search(lowered)) \
            and not SIGNS_TOLD.search(lowered[:found.start()]) and not HELPER_NEWS.search(lowered)

    @staticmethod
    def reported_fine(lowered: str) -> bool:
        """Whether a helper's message reports the one at risk saying they are fine ("he says he's fine now",
        她说她没事了, "she promised me she won't"): their word, not their safety."""
        return bool(REPORTED.search(lowered) and THEIR_FINE.search(lowered))

    @staticmethod
    def question_of(kind: str, wording: str) -> str | None:
        """What a safety reply's wording asks that the next message may answer (`answers_question`): the crisis
        reply whether the user is safe (or has someone with them), the check-in whether these feelings ever led
        to thoughts of hurting oneself; a wording with no question mark (the later check-ins) asks nothing."""
        if kind == "third_party":
            return "helper"  # no question, but the next message is read as the same report (`follows_a_crisis_reply`)
        if "?" not in wording and "？" not in wording:
            return None
        return {"crisis": "safe", "check_in": "hurt_thoughts"}.get(kind)

    def asked(self, session: dict, kind: str, wording: str) -> str:
        """Keeps what ``wording`` (shown now) asks on the session's flags for the next message; ``wording``."""
        self.keep_asked(session, self.question_of(kind, wording))
        return wording

    def keep_asked(self, session: dict, question: str | None, lang: str | None = None) -> None:
        try:
            self.book.ask(session["id"], question, lang)
        except Exception:  # storage trouble must not cost the reply: the next answer is then read as any message
            log.exception("session %s: cannot keep what the safety reply asked", session["id"])

    def laughed_off(self, text: str) -> bool:
        """Whether a short message is a wish to die of one's own with a laugh and nothing else to explain it
        (我不想活了哈哈哈, "I want to die lol": nothing, and a weight-loss tip, in the session-13 audit). The
        laugh masks blank the wish, rightly for "奶茶喝完了才发现忘了拍照 不想活了哈哈哈" (a hard negative of
        M), so only a message of a few words gets the check-in."""
        lowered = text.lower()
        unlaughed = LAUGHTER.sub(" ", lowered)
        if unlaughed == lowered or _size(unlaughed) > LAUGHED_OFF_SIZE[language(text)]:
            return False
        # read with the masks but without the laughter: the laugh masks no longer blank the wish, and the others
        # still do (好吃到想死哈哈, "so cute i want to die lol", "die of laughter lol": R13b)
        normalizer = self.phrases.get().normalizer
        return bool(self.phrases.get().concepts.find(normalizer.stems(normalizer.clean(unlaughed))).get("own_wish_to_die"))

    def cautions(self, text: str) -> list[str]:
        """The offline companion's caution kinds for ``text`` (prompts/safety.yaml `red_flag_cautions`, read as the red
        flags are): one table for both plugins, so the companion keeps no emergency list of its own."""
        return self.phrases.get().cautions(normalize(text))

    def check(self, text: str) -> tuple[bool, list[str]]:
        """(crisis found, red-flag rule names) for a message."""
        phrases = self.phrases.get()
        return self.assess(text, phrases).level == "crisis", [rule.name for rule in phrases.red_flags(normalize(text))]

    # -- the reply path -------------------------------------------------------------------------
    def numbers(self, lang: str) -> dict:
        return numbers(self.config, lang)

    def wording(self, kind: str, lang: str, flags: dict) -> str:
        """A crisis reply (the first of a session, then the follow-ups), its wording for someone helping a person
        at risk (``third_party``: the crisis reply if there is none) or a check-in note."""
        phrases = self.phrases.get()
        third_party = flags.get("third_party", 0)
        if kind == "third_party" and (phrases.third_party_replies["zh"] or phrases.third_party_replies["en"]):
            table, fallback, count = phrases.third_party_replies, FALLBACK_CRISIS, third_party
        elif kind in ("crisis", "third_party"):  # the user's own crisis: its first wording, if only others' came before
            table, fallback, count = phrases.crisis_replies, FALLBACK_CRISIS, max(0, flags.get("crisis", 0) - third_party)
        else:
            # (after the user's own crisis reply, a later wording: one who said "I want to die" a turn ago is not asked
            # whether these feelings ever led to thoughts of hurting themselves: the session-15 review)
            own_crises = flags.get("crisis", 0) > third_party
            table, fallback, count = phrases.checkin_replies, FALLBACK_CHECKIN, flags.get("check_in", 0) + own_crises
        replies = table[lang] or table["zh" if lang == "en" else "en"] or [fallback[lang]]
        return fill(replies[min(count, len(replies) - 1)], self.numbers(lang))

    def reply_language(self, text: str) -> str:
        """The language of our own wordings for a message: Chinese for Chinese, and for pinyin, whose writer reads
        Chinese ("wo xiang si", "bu xiang huo le" got the English crisis reply: session 14, AUD): a message whose
        Latin words are all pinyin and which the aliases read as Chinese in part. (Without that second condition,
        words that spell syllables ("# en none game_media", "been cuting agian") were pinyin in 7 of 18,219 English
        rows of tests/data and models/training; and "zhen de hao xiang si", which no alias reads, stays English.)"""
        text = unicodedata.normalize("NFKC", text)  # full-width pinyin is pinyin
        lang = language(text)
        if lang != "en":
            return lang
        words = re.findall(r"[a-z0-9']+", text.lower())
        # (a word of more than PINYIN_WORD_MAX letters is no pinyin anyone types: the pattern backtracks over every way
        # to split a long run into syllables, and "xianga" * 13 + "'" took 39 s in the session-14 review)
        if not words or not all(w.isdigit() or (len(w) <= PINYIN_WORD_MAX and PINYIN_WORD.fullmatch(w)) for w in words):
            return lang
        normalizer = self.phrases.get().normalizer
        return "zh" if language(normalizer.clean(text, mask=False)) == "zh" else lang

    def before_reply(self, user, agent, session, text, turn=None) -> dict | None:
        kept = self.book.state(session["id"])  # one read of the session's safety document a turn
        phrases, lang = self.phrases.get(), self.reply_language(text)
        if not LETTERS.search(text):
            # "...", "?", "😶" have no language: the session's last safety reply's ("..." after "I want to kill myself"
            # got the Chinese crisis reply: R15b)
            lang = kept.get("lang") or lang
        numbers = self.numbers(lang)
        result, system = {}, []
        # This turn's working copy: flag() counts on it, ReplyGuard and the wordings read it.
        flags = session["flags"] = dict(kept.get("flags") or {})
        asked = kept.get("asked")  # what the last safety reply asked, if it was the last reply
        urgent = set()  # what was flagged this turn, also later by the reader: the chat's `urgent`
        verdict = self.assess(text)
        if verdict.level and self.routine_report(text, flags, turn):
            verdict = Verdict(None, None, verdict.scores)
        if verdict.level and str(verdict.why).startswith("model") and self.plain_thanks(text, flags):
            verdict = Verdict(None, None, verdict.scores)
        if verdict.level == "grey" and self.checked_in_already(verdict, flags):
            verdict = Verdict(None, None, verdict.scores)
        agents = self.config["red_flag_agents"]
        rules = phrases.red_flags(normalize(text)) if not agents or agent in agents else []
        # An emergency that goes on: the last reply carried a symptom's red-flag note (stroke signs, a chest pain) and
        # this message has none of its own. It is most likely the emergency's next detail ("It started 20 minutes
        # ago", "He's on aspirin", 还是疼, "I'm alone at home"): audit A21 got the suicide check-in and a falls tip for
        # them, and "call 120" was gone. Such a message keeps the emergency first (a short note), for a few messages
        # (EMERGENCY_FOLLOWUPS), until it says help has come; the classifier's check-in on it is dropped (its
        # symptom-time words read as distress, the same reason `_symptom_noted` drops it beside a note), but not a
        # check-in of the rules' (a wish, a means) nor the crisis reply.
        emergency = kept.get("emergency") if isinstance(kept.get("emergency"), dict) else None
        symptoms = [r for r in rules if r.name not in OVERDOSE_FLAGS and (r.note[lang] or r.note["zh"])]
        handled = phrases.followup_handled is not None and bool(phrases.followup_handled.search(normalize(text)))
        going_on = bool(emergency) and not symptoms and not handled and verdict.level != "crisis"
        if emergency and not symptoms and verdict.level == "grey" and str(verdict.why).startswith("model"):
            # (after help has come too: "救护车到了，谢谢" got the check-in)
            verdict = Verdict(None, None, verdict.scores)
        followed = False  # this turn's safety reply repeats one for a short message after it (`follow_on`)
        care = None  # a helper's follow-up or a carer's "what if", answered in its own words (`helper_followup`)
        if verdict.level != "crisis" and flags.get("crisis") and self.answers_unsafe(text):
            verdict = Verdict("crisis", "not safe, after a crisis reply")
        elif verdict.level != "crisis" and self.answers_question(asked, text):
            verdict = Verdict("crisis", f"answered {asked}, after a safety reply's question")
        elif verdict.level == "crisis" and asked in ("helper", "helper_told_fine") and not self.model_in_chain(agent) \
                and self.helper_denies_harm(text, lang):
            # a helper's news that the one at risk said no harm ("他没有说要伤害自己，只是很消极"): the rules read 伤害自己 as
            # a crisis, and the helper's reply came again for the third time (audit A22)
            care, verdict = "lower", Verdict(None, "a helper's follow-up (lower)", verdict.scores)
        elif verdict.level == "crisis" and self.denies_harm(asked, text):
            verdict = Verdict("grey", f"{verdict.why} denied, after a safety reply's question")
        elif verdict.level == "grey" and flags.get("crisis", 0) > flags.get("third_party", 0) \
                and not SAFER_NOW.search(text.lower()) and not phrases.answers.read(text).fine:
            # after the user's own crisis, a message that may be at risk is the crisis again, not a check-in that asks
            # whether they ever thought of it: "我现在就在天台上" after 不安全 got the check-in and a breathing tip, and
            # "no. im not safe. i have my roommates pills in front of me" the same (the session-14 audit); not a message
            # that says the writer is safe or safer ("no, I'm ok now", "I called the hotline... I feel a bit calmer": R14b),
            # but a question may be one ("你知道吗，我现在就在天台上")
            verdict = Verdict("crisis", f"{verdict.why}, after a crisis reply")
        elif verdict.level != "crisis" and not self.model_in_chain(agent) and (follow := self.follow_on(asked, text)):
            # the next message after a crisis reply that says nothing of being safe: the crisis reply again (its later
            # wording), or the helper's; a question on something else is answered with a check-in. The offline
            # companion answered "I mean it", "ok", "bye", 我是认真的, 怎么办 and "he's in his room now" with a tip and no
            # hotline (one with a child's fever doses: the session-15 audit). A model is told to keep checking on the
            # user instead (`crisis_system`), and its reply is checked.
            # ...unless a helper's message is no news of the one at risk but a question, a feeling or a thank-you of
            # their own: answered in its own words (`helper_followup`), not the helper's reply again (audit A22)
            care = self.helper_followup(text, lang) if follow == "crisis" and asked.startswith("helper") else None
            if care:
                verdict = Verdict(None, f"a helper's follow-up ({care})", verdict.scores)
            else:
                followed = True
                verdict = Verdict(follow, f"after a {'helper' if asked.startswith('helper') else 'crisis'} reply, nothing said of being safe")
        if care is None and not self.model_in_chain(agent) and not symptoms and not flags.get("crisis") \
                and (verdict.level is None or str(verdict.why).startswith("model") or (
                    verdict.level == "crisis" and self.imagined_only(text)
                    and (self.about_someone_else(text) or not FIRST_PERSON.search(text.lower())))) \
                and self.carer_asks_signs(text, lang):
            # a carer asking what to do if the one they care for comes to be at risk: the signs, what to do, the numbers
            # ("What if he starts talking about dying?" got "On low mood, the tip above is the closest I have": A22);
            # the classifier's check-in for its death word is not the writer's own risk, nor is the rules' crisis of a wish
            # the carer imagines ("What if she starts talking about wanting to die?": the helper's reply, written for one at
            # risk now), when the writer speaks of themselves only as the helper or not at all; not in a session where a
            # crisis was told (there the helper's reply and its follow-ups answer)
            care, verdict = "signs", Verdict(None, "a carer's what-if", verdict.scores)
        crisis = verdict.level == "crisis"
        said = None  # the safety wording of this turn
        # a crisis told by someone who wants to help the one at risk: how to help them, with the same hotlines
        # (someone else's written words reported, `their_words`: the helper's too)
        third_party = crisis and (verdict.why.startswith(("after a helper reply", "their words")) or self.about_someone_else(text))
        kind = "third_party" if third_party else "crisis" if crisis else "check_in"
        if care:
            # (nothing flagged: no new risk is told; the session's earlier flags stay as they were)
            result["reply"] = said = fill(phrases.third_party_followups[care][lang], numbers)
            result["provider"] = "safety"
        elif crisis:
            result["reply"] = said = self.wording(kind, lang, flags)
            if kind == "crisis" and str(verdict.why).startswith(TAKE_ALONG) and phrases.crisis_others_note[lang]:
                # a plan that takes someone else along ("When he goes, I will take us both."): their safety too, after the
                # writer's own crisis reply (its question, "are you safe?", stays what the next message answers)
                result["reply"] = said = said + "\n\n" + fill(phrases.crisis_others_note[lang], numbers)
            result["provider"] = "safety"
        else:
            if verdict.level == "grey":  # a gentle check-in first, then the usual answer
                said = self.wording("check_in", lang, flags)
                result["prefix"] = said + "\n\n"
                result["fallback"] = "safety"  # with every provider down, the check-in alone
            # (a session whose crises were all someone else's: the model helps the user help them)
            told_of_others = flags.get("third_party", 0) >= flags.get("crisis", 0) and phrases.third_party_system
            if flags.get("crisis") and (phrases.crisis_system or told_of_others):
                system.append(fill(phrases.third_party_system if told_of_others else phrases.crisis_system, numbers))
            watch = self.watches(agent)
            if watch and phrases.judgement_system and verdict.level is None:
                system.append(phrases.judgement_system)
            checked = self.config["check_replies"] and (verdict.level or flags.get("crisis") or flags.get("check_in"))
            if checked or watch:
                # made when a provider is asked (chat.py sets turn.flags["provider"] first): the offline
                # companion's own tips are not a model's words and are not checked for means
                result["reader"] = lambda: ReplyGuard(self, session, lang, check=bool(checked),
                                                      watch=watch and verdict.level is None,
                                                      noted=verdict.level == "grey", urgent=urgent,
                                                      by_model=self.is_model((turn.flags if turn else {}).get("provider")))
        going_on = going_on and not crisis
        if going_on and not rules and phrases.followup_note[lang]:
            # (the emergency's short note first, above a check-in of the rules' if any; a model is told it is shown)
            result["prefix"] = fill(phrases.followup_note[lang], {"emergency": numbers["first_emergency"]}) + "\n\n" + \
                result.get("prefix", "")
            if phrases.red_flag_system:
                system.append(fill(phrases.red_flag_system, {"emergency": numbers["first_emergency"]}))
            urgent.add("red_flag")  # the mascot's concern; not counted again for admins (one emergency)
        if rules:
            # One note: each says to call the emergency number, and a wall of warnings buries that.
            note = next((r.note[lang] or r.note["zh"] for r in rules if r.note[lang] or r.note["zh"]), "")
            if third_party:  # (said of someone else: their note in words for the helper, where the rule has one)
                first = next((r for r in rules if r.note[lang] or r.note["zh"]), None)
                note = (first.note_other[lang] or note) if first is not None else note
            if note:
                result["prefix"] = fill(note, {"emergency": numbers["first_emergency"]}) + "\n\n" + result.get("prefix", "")
            if phrases.red_flag_system:
                system.append(fill(phrases.red_flag_system, {"emergency": numbers["first_emergency"]}))
        kinds = (["crisis"] if crisis else ["check_in"] if verdict.level == "grey" else []) + \
            (["third_party"] if third_party else []) + [f"red_flag:{r.name}" for r in rules]
        if kinds:
            self.flag(session, kinds, urgent)
        # what the next message may go on with: this turn's symptom note, or the one going on, a follow-up fewer
        after = {"rule": symptoms[0].name, "left": EMERGENCY_FOLLOWUPS} if symptoms and not crisis else \
            {**emergency, "left": int(emergency.get("left") or 0) - 1} if going_on and not rules else None
        if after and after["left"] <= 0:
            after = None
        if after != emergency:
            try:
                self.book.keep_emergency(session["id"], after)
            except Exception:  # storage trouble must not cost the reply: the next message is then read alone
                log.exception("session %s: cannot keep the emergency", session["id"])
        # what this turn's own wording asks (the reader keeps what a reply it changes asks): the next message may
        # answer it; an answer is to the last reply only
        # (a helper's reply is repeated as long as their news comes: "她刚刚挂了我电话", then 怎么办)
        question = ("followed" if followed and kind != "third_party" else self.question_of(kind, said)) if said else None
        if care:
            # the helper's news may still come after an answer ("she's locking herself in the bathroom"); after a thank-you
            # or a carer's what-if nothing is pending, and the next message is answered as any other
            question = asked if care not in ("thanks", "signs") else None
        if followed and kind == "third_party" and self.reported_fine(text.lower()):
            # once more after "she says she's fine", then an ordinary answer unless the helper asks what to do: what they
            # say is told again to no end otherwise ("she says she's fine" got the helper's wording, and so would "ok
            # thanks", "how do I sleep")
            question = "helper_told_fine"
        elif asked == "helper_told_fine" and not said:
            # ...kept past an ordinary answer: "ok thanks", then "what do I do now?" lost the helper's wording (R16b)
            question = asked
        if question != asked:
            self.keep_asked(session, question, lang)
        when = self.config["disclaimer"]
        if not crisis and phrases.disclaimer[lang] and (
                when == "always" or (when == "first" and self.first_reply(session))):
            result["suffix"] = "\n\n" + phrases.disclaimer[lang]
        if system:
            result["system"] = "\n\n".join(system)
        plan = self.risky_plan(text) if turn is not None else ""
        if turn is not None:  # what providers act on (the offline companion); `system` is for models
            turn.flags.update(crisis=crisis, check_in=verdict.level == "grey", crisis_earlier=bool(flags.get("crisis")),
                              notes_shown=[r.name for r in rules if r.note[lang] or r.note["zh"]][:1],
                              risk_word=self.names_death(text, verdict) or bool(plan),
                              **({"risky_plan": plan} if plan else {}))  # only when there is one (EMO2)
        if result or urgent:
            result["urgent"] = urgent
        return result or None

    @staticmethod
    def checked_in_already(verdict: Verdict, flags: dict) -> bool:
        """Whether a check-in of the classifier's alone comes after a check-in of this session that the user did not answer
        as a risk (no crisis told since): the user was asked, went on with their worry, and the same worry read again is
        no new sign. Session 21 (RISK2, audit A23): "I haven't made any friends, I eat alone every day" got the check-in,
        and then "I feel so lonely on weekends", 孩子们都在外地，帮不上忙, "I've tried physio, injections, everything. I'm so
        tired of it." each opened with "I'm still thinking about how you've been feeling…", a reminder on every turn of a
        sad conversation. A counsellor asks once and asks again at a new sign: the crisis reply is never dropped, nor a
        rule's check-in with a wish, a burden, an end or life weighed (撑不下去, 活着没意思), nor the
        classifier's check-in when it leans to a crisis (p(crisis) of SURE_AGAIN or more: a plan in words no rule has).
        A rule's check-in counts as a new sign with a concept of `RENEWED_SIGNS` only: loneliness said again is none."""
        if not flags.get("check_in") or flags.get("crisis"):
            return False
        if (verdict.scores or {}).get("crisis", 0.0) >= SURE_AGAIN:
            return False
        if str(verdict.why).startswith("model"):
            return True
        # a rule's check-in for the same worry said again ("weekends are the worst, I feel so alone" after a check-in on
        # loneliness) is no new sign either; one with a sign of an end, a wish, a burden or a harm (`RENEWED_SIGNS`) is
        # (the concepts are there when no mask changed the message: otherwise it is kept)
        found = verdict.concepts
        return found is not None and found.keys().isdisjoint(RENEWED_SIGNS)

    def routine_report(self, text: str, flags: dict, turn=None) -> bool:
        """Whether ``text`` is, whole, a dose reported as the routine (`routine_reports` in prompts/safety.yaml): a
        medicine named ("took my pills already, thanks", 药吃了), or after a reminder pushed into the session, the
        bare reply to it ("took them", 吃了，谢谢, "done ✅"). The classifier learnt took, them, meds and 吃了 from
        overdoses: every reply to the app's own medicine reminder got the check-in, and "already took my meds" the
        crisis reply (audit A20). Not after the writer's own crisis in the session (there "took them" may be the pills
        they spoke of); after a check-in, only as the reply to a reminder (the review R19 saw "I feel hopeless" then
        "just took mum's pills" lose the hotline); and never with an amount, a feeling or an end: the patterns take the
        whole message, of a few words only (ROUTINE_MAX: a long text is never read by them)."""
        if len(text) > ROUTINE_MAX or flags.get("crisis", 0) > flags.get("third_party", 0):
            return False
        after_reminder = bool(turn is not None and turn.flags.get("after_reminder"))
        if flags.get("check_in") and not after_reminder:
            return False
        phrases, lowered = self.phrases.get(), visible(text).strip().lower()
        if any(p.match(lowered) for p in phrases.routine_named):
            return True
        return after_reminder and any(p.match(lowered) for p in phrases.routine_bare)

    @staticmethod
    def plain_thanks(text: str, flags: dict) -> bool:
        """Whether a short message is a thank-you and nothing of a goodbye ("Thank you for being kind.", "Thank you, I
        feel less alone.", 谢谢你的耐心): the classifier learnt thanks from farewell notes ("thank you for everything"),
        and in a conversation about an eating disorder's recovery "Thank you for being kind." got the full crisis reply
        (p 0.95; audit A22). Its verdict alone is dropped, never the rules'; not after the writer's own crisis (there a
        thank-you follows the crisis reply, `follow_on`), nor with a word of an end or a goodbye ("thanks for
        everything", "thank you for always being there", 谢谢你这些年, "thanks. bye")."""
        if flags.get("crisis", 0) > flags.get("third_party", 0) or _size(text) > THANKS_SIZE:
            return False
        lowered = visible(text).lower()
        return bool(THANKS_OPEN.match(lowered)) and not THANKS_FAREWELL.search(lowered) and not GOODBYE.search(lowered)

    def watches(self, agent: str) -> bool:
        """Whether this turn asks the model for its judgement (safety.model_judgement)."""
        mode = self.config["model_judgement"]
        if mode == "never":
            return False
        if mode == "always":
            return True
        emotion = self.wm.config.get("emotion") or {}
        if emotion.get("tagger") == "llm" and (emotion.get("llm_mode") or "inline") == "inline":
            return True
        # models: an agent with a provider that is a model (anything but the offline companion)
        return self.model_in_chain(agent)

    def model_in_chain(self, agent: str) -> bool:
        """Whether any provider of the agent's chain is a model (not only the offline companion)."""
        chain = (self.wm.config.get("agents") or {}).get(agent, {}).get("providers") or []
        return any(self.is_model(name) for name in chain)

    def is_model(self, provider: str | None) -> bool:
        """Whether the provider of that name is a model, not the offline companion (None: unknown, a model)."""
        if provider is None:
            return True
        return ((self.wm.config.get("providers") or {}).get(provider) or {}).get("plugin", "offline") != "offline"

    def first_reply(self, session) -> bool:
        """Whether no reply has been given in this session yet (``message_count`` is what the
        session held before this turn's message)."""
        count = session.get("message_count") or 0
        if count == 0:
            return True
        if count > 40:  # a long session has had a reply
            return False
        messages, _ = self.book.chat.sessions.messages(session["id"], limit=count + 1)
        return not any(m.get("role") == "assistant" for m in messages)

    def flag(self, session: dict, kinds: list[str], urgent: set | None = None):
        """Count what was found on the session, for admins. The message itself is not logged."""
        keys = ["red_flag" if kind.startswith("red_flag") else kind for kind in kinds]
        flags = dict(session.get("flags") or {})
        for key in keys:
            flags[key] = flags.get(key, 0) + 1
        session["flags"] = flags  # this turn's wordings count it even if it cannot be stored
        if urgent is not None:
            urgent.update(keys)
        try:
            self.book.add(session, keys)
        except Exception:  # storage trouble must not cost the user the crisis reply built from this
            log.exception("session %s of user %s: cannot store the flags (%s)", session["id"],
                          session.get("user_id"), ", ".join(kinds))
            return
        log.warning("session %s of user %s flagged: %s", session["id"], session.get("user_id"), ", ".join(kinds))



class FlagBook:
    """The flags: per session, how often each kind of risk was found (crisis, check_in,
    red_flag, model_judgement, unsafe_reply), in the plugin's own collections, with counters for
    /admin/flags (which then costs its page, not a walk of every session of every user)."""

    def __init__(self, wm):
        self.wm, self.storage = wm, wm.storage
        self.chat = wm.service("chat")
        if self.chat:
            self.chat.sessions.on_delete(self.forget)  # a deleted session's flags go with it
            self.chat.sessions.on_export(self.exported)  # and show in the user's export, as they did
            self._migrate()

    def _add(self, collection: str, doc_id: str, amounts: dict, durable: bool = True) -> dict:
        return self.storage.update(collection, doc_id, _plus(doc_id, amounts), durable=durable)

    def state(self, session_id: str) -> dict:
        """The session's safety document: its `flags`, what the last reply `asked` and that reply's `lang`."""
        return self.storage.get("safety_flags", session_id) or {}

    def flags_of(self, session_id: str) -> dict:
        return dict(self.state(session_id).get("flags") or {})

    def asked(self, session_id: str) -> str | None:
        """What the session's last reply asked, if it was a safety reply with a question (`Safety.question_of`)."""
        return self.state(session_id).get("asked")

    def ask(self, session_id: str, question: str | None, lang: str | None = None) -> None:
        """Keeps ``question`` as what the last reply asked (None: it asked nothing of ours), and the language it was
        in. Only on a flagged session's document: a safety reply flags its session first, and an unflagged one has
        nothing to forget."""
        kept = {"asked": question, **({"lang": lang} if lang else {})}
        self.storage.update("safety_flags", session_id, lambda doc: doc and {**doc, **kept})

    def keep_emergency(self, session_id: str, emergency: dict | None) -> None:
        """Keeps the red flag the session's last reply carried and how many follow-ups it still goes on for (None:
        the last reply carried none). Only on a flagged session's document: a red flag flags its session first."""
        self.storage.update("safety_flags", session_id, lambda doc: doc and {**doc, "emergency": emergency})

    def add(self, session: dict, keys: list[str]) -> None:
        found = []  # the document before the change

        def count(doc):
            old = doc or {"id": session["id"], "user_id": session.get("user_id"), "agent": session.get("agent"),
                          "flags": {}}
            flags = dict(old["flags"])
            for key in keys:
                flags[key] = flags.get(key, 0) + 1
            found.append(doc)
            return {**old, "flags": flags, "flagged_at": now_iso()}
        stored = self.storage.update("safety_flags", session["id"], count)
        before = found[-1] or {"flags": {}}
        new_kinds = [kind for kind in stored["flags"] if kind not in before["flags"]]
        if found[-1] is None:
            self._add("safety_users", str(session.get("user_id")), {"sessions": 1})
        if new_kinds:
            self._add("safety_totals", "by_kind", {kind: 1 for kind in new_kinds})

    def forget(self, session: dict) -> None:
        doc = self.storage.get("safety_flags", session["id"])
        if doc is None:
            return
        self._add("safety_totals", "by_kind", {kind: -1 for kind in doc["flags"]})
        user = self._add("safety_users", str(doc.get("user_id")), {"sessions": -1})
        if user is not None and user.get("sessions", 0) <= 0:
            self.storage.delete("safety_users", user["id"])
        self.storage.delete("safety_flags", session["id"])

    def exported(self, session: dict) -> dict | None:
        doc = self.storage.get("safety_flags", session["id"])
        return {"flags": doc["flags"], "flagged_at": doc.get("flagged_at")} if doc else None

    def delete_user(self, user_id: str) -> None:
        while True:
            page, _ = self.storage.find("safety_flags", {"user_id": user_id}, limit=200)
            if not page:
                self.storage.delete("safety_users", user_id)
                return
            for doc in page:
                self.forget(doc)

    def flagged(self, limit: int = 50) -> dict:
        """Flagged sessions across all users: counts, and the ``limit`` most recently flagged."""
        by_kind = {k: v for k, v in (self.storage.get("safety_totals", "by_kind") or {}).items() if k != "id" and v > 0}
        docs, _ = self.storage.find("safety_flags", order="-flagged_at", limit=limit)
        items = []
        for doc in docs:
            user = self.wm.service("accounts").get(doc["user_id"]) or {}
            session = (self.chat.sessions.get(doc["id"]) if self.chat else None) or {}
            items.append({"session_id": doc["id"], "user_id": doc["user_id"], "username": user.get("username"),
                          "agent": doc.get("agent"), "flags": doc["flags"], "flagged_at": doc.get("flagged_at"),
                          "updated_at": session.get("updated_at")})
        return {"sessions": self.storage.count("safety_flags"), "users": self.storage.count("safety_users"),
                "by_kind": by_kind, "items": items}

    def _migrate(self) -> None:
        """Flags the version before kept on the sessions themselves, moved here once."""
        if self.storage.get("safety_totals", "migrated") is not None:
            return
        moved = 0
        for session in self.chat.sessions.every():
            flags = session.get("flags")
            if not flags or not isinstance(flags, dict) or self.storage.get("safety_flags", session["id"]):
                continue
            self.storage.put("safety_flags", {"id": session["id"], "user_id": session.get("user_id"),
                                              "agent": session.get("agent"), "flags": flags,
                                              "flagged_at": session.get("flagged_at")}, durable=False)
            self._add("safety_users", str(session.get("user_id")), {"sessions": 1}, durable=False)
            self._add("safety_totals", "by_kind", {kind: 1 for kind in flags}, durable=False)
            moved += 1
        for name in ("safety_flags", "safety_users"):
            self.storage.sync(name)
        self.storage.put("safety_totals", {"id": "migrated", "at": now_iso(), "sessions": moved})
        if moved:
            log.warning("moved the flags of %d sessions into the safety plugin's own collection (once)", moved)


def _plus(doc_id: str, amounts: dict):
    """An `update` function adding ``amounts`` to the counters document ``doc_id`` (creating it)."""
    def add(doc):
        doc = dict(doc or {"id": doc_id})
        for key, n in amounts.items():
            doc[key] = doc.get(key, 0) + n
        return doc
    return add


class ReplyGuard:
    """Reads a model's reply before the emotion tagger's reader does (chat.py `Turn.reader`):

    - ``watch``: the model was asked for its judgement. A leading ``[!crisis]`` turns the reply
      into the crisis reply; ``[!check-in]`` puts the check-in note first and the rest is checked.
      Either flags the session. A marker written later in the reply ("Sure… [!check-in] How…") is
      cut out and counted too: [!crisis] ends the model's text there and the crisis reply follows,
      [!check-in] adds the note at the end. No marker reaches the user, also when split across deltas.
    - ``check`` (a crisis-flagged session or a check-in turn): nothing is shown until the whole
      reply is read; one that gives method or dose details becomes the crisis reply. A model's reply
      (``by_model``) is read sentence by sentence for a way to die or self-harm named, an amount or
      a number (`Phrases.unsafe_reply`); the offline companion's only for what it was read for
      before (terms and `frames.rules`): its tips are ours, it knows the turn's flags, and "7–9
      hours of sleep" or a wrist strain tip in a check-in turn must not become the crisis reply
      (46 of its 375 tips would).
    """

    label = None

    def __init__(self, safety: Safety, session: dict, lang: str, check: bool, watch: bool, noted: bool = False,
                 urgent: set | None = None, by_model: bool = True):
        self.safety, self.session, self.lang = safety, session, lang
        self.by_model = by_model
        self.urgent = urgent  # the turn's: what this reply flags goes in it too
        self.check, self.watch = check, watch
        self.noted = noted  # a check-in note is already in this reply
        self.owed = ""  # a check-in note for the end (a marker later in a reply already being shown)
        self.judged: set[str] = set()  # each kind of marker counts once per reply
        self.held = ""
        self.replaced = False  # the crisis reply went out instead: the rest of the model's text is dropped

    def judge(self, kind: str) -> dict:
        """Flag the model's judgement (once per reply); the session's flags before it."""
        flags = dict(self.session.get("flags") or {})
        if kind not in self.judged:
            self.judged.add(kind)
            self.safety.flag(self.session, [kind, "model_judgement"], self.urgent)
            log.info("the model judged the user may be at risk (%s)", kind)
        return flags

    def checkin_note(self, flags: dict) -> str:
        self.noted = True
        return self.say("check_in", flags)

    def say(self, kind: str, flags: dict) -> str:
        """The crisis reply or a check-in note in place of (or beside) the model's words; what it asks is
        kept for the next message (`Safety.answers_question`)."""
        return self.safety.asked(self.session, kind, self.safety.wording(kind, self.lang, flags))

    def feed(self, delta: str) -> str:
        if self.replaced:
            return ""
        self.held += delta
        shown = ""
        if self.watch:
            m = MARKER.match(self.held)
            if m is None and MARKER_START.fullmatch(self.held) and len(self.held) < 64:
                return ""  # may still become a marker
            self.watch = False
            if m is not None:
                kind = "crisis" if m.group("kind").lower() == "crisis" else "check_in"
                flags = self.judge(kind)
                if kind == "crisis":
                    self.replaced, self.held = True, ""
                    return self.say("crisis", flags)
                shown = m.group("lead") + self.checkin_note(flags) + "\n\n"
                self.held = self.held[m.end():]
                self.check = self.check or bool(self.safety.config["check_replies"])
        if self.check:
            return shown
        cut = marker_tail(self.held)  # a marker a later delta may complete stays held
        ready, self.held = self.held[:cut], self.held[cut:]
        return shown + self.cut_markers(ready)

    def cut_markers(self, text: str) -> str:
        """``text`` (being shown) without markers; a [!crisis] ends it with the crisis reply."""
        pieces, last = [], 0
        for m in ANY_MARKER.finditer(text):
            pieces.append(text[last:m.start()])
            last = m.end()
            kind = "crisis" if m.group("kind").lower() == "crisis" else "check_in"
            flags = self.judge(kind)
            if kind == "crisis":
                self.replaced, self.held = True, ""
                return "".join(pieces).rstrip() + "\n\n" + self.say("crisis", flags)
            if not self.noted:
                self.owed = "\n\n" + self.checkin_note(flags)
        pieces.append(text[last:])
        return "".join(pieces)

    def end(self) -> str:
        if self.replaced:
            return ""
        held, self.held = self.held, ""
        if not self.check:
            shown = self.cut_markers(held)
            return shown if self.replaced else shown + self.owed
        first = ANY_MARKER.search(held)
        note = ""
        if first is not None:  # held back whole: nothing of it was shown yet
            kinds = {"crisis" if m.group("kind").lower() == "crisis" else "check_in" for m in ANY_MARKER.finditer(held)}
            held = ANY_MARKER.sub("", held).strip()
            flags = {kind: self.judge(kind) for kind in sorted(kinds)}
            if "crisis" in flags:
                self.replaced = True
                return self.say("crisis", flags["crisis"])
            if not self.noted:
                note = self.checkin_note(flags["check_in"]) + "\n\n"
        why = self.safety.phrases.get().unsafe_reply(held, self.by_model)  # the model's words, not our check-in note
        if why:
            self.replaced = True
            flags = dict(self.session.get("flags") or {})
            self.safety.flag(self.session, ["unsafe_reply"], self.urgent)
            if not self.by_model and flags.get("crisis", 0) <= flags.get("third_party", 0):
                # The offline companion's own tip (ours, not a model's words) with a dose, in a session whose user told of
                # no crisis of their own, only a check-in: the tip goes, and the check-in's later wording (the hotlines,
                # no question) stands in its place. The crisis reply there, and "are you safe?" asked with it, turned the
                # next turns into crisis replies: "I am 8 months sober... a wedding" (a check-in), then "How I can say no
                # without explain everything?" got the alcohol tip's "15 g a day" replaced by the crisis reply, and "I
                # feel nervous but also proud." the full crisis reply as its answer (audit A22).
                log.warning("the offline companion's tip named a dose (%s) in a check-in session: the check-in instead", why)
                return self.say("check_in", {**flags, "check_in": max(1, flags.get("check_in", 0))})
            log.warning("a model's reply gave method or dose details (%s): replaced by the crisis reply", why)
            return self.say("crisis", {**flags, "crisis": max(1, flags.get("crisis", 0))})
        return note + held


# A marker anywhere in a reply, with the spaces after it (those before may be shown already); and
# the forms one may take once spaces are dropped, to hold back a delta's end that may start one.
ANY_MARKER = re.compile(r"[\[【]\s*[!！]\s*(?P<kind>crisis|check[\s_-]?in)\s*[\]】]\s*", re.IGNORECASE)
MARKER_FORMS = ("[!crisis]", "[!check-in]", "[!checkin]", "[!check_in]")


def marker_tail(text: str) -> int:
    """Where a marker that is not finished yet may start at the end of ``text`` (else its length)."""
    start = max(text.rfind("["), text.rfind("【"))
    if start < 0 or len(text) - start > 24:
        return len(text)
    tail = re.sub(r"\s", "", text[start:]).lower().replace("【", "[").replace("！", "!").replace("】", "]")
    return start if any(form.startswith(tail) for form in MARKER_FORMS) else len(text)


@hookimpl
def register_services(register):
    register("safety", Safety)


@hookimpl
def register_collections(register):
    # One document per flagged session (its id), newest flagged first for the admin list; per
    # user who has one (for the count of users); the count of flagged sessions per kind.
    register("safety_flags", indexes=[Index((), "flagged_at"), ("user_id",)])
    register("safety_users")
    register("safety_totals")


@hookimpl
def delete_user_data(user, wm):
    wm.service("safety").book.delete_user(user["id"])


@hookimpl
def before_reply(user, agent, session, text, turn, wm):
    return wm.service("safety").before_reply(user, agent, session, text, turn)


@hookimpl
def routes(app, wm):
    safety = wm.service("safety")

    @app.get("/api/v1/admin/flags", api=Api(
        "Sessions safety flagged (crisis, check-in, ...), most recent first, with counts", auth="admin",
        query={"limit": integer(1, 500, default=50)},
        responses={200: obj({"sessions": integer(0), "users": integer(0), "by_kind": obj(),
                             "items": array(obj({"session_id": string(), "user_id": string(nullable=True),
                                                 "username": string(nullable=True), "agent": string(nullable=True),
                                                 "flags": obj(), "flagged_at": string(nullable=True),
                                                 "updated_at": string(nullable=True)}, required=["session_id", "flags"]))},
                            required=["sessions", "users", "by_kind", "items"])}))
    def admin_flags():
        require_admin(wm)
        limit, _ = page_args(default_limit=50, max_limit=500)
        return safety.book.flagged(limit)


# -- measuring and retraining ---------------------------------------------------------------------

def training_files(wm, pattern: str) -> list[Path]:
    """models/training/<pattern>: next to config.yaml if there are any there, else the shipped ones."""
    for folder in data_file_candidates(wm, "models/training"):
        files = sorted(folder.glob(pattern))
        if files:
            return files
    return []


# The emotion files whose user messages the classifier learns as everyday `none` rows: a fixed
# list, not every emotion_*.tsv. Emotion rows added for the emotion model (sarcasm, negation) then
# leave the classifier as it is: in session 11 each new emotion file forced a crisis retrain, which
# moved crisis_K's false alarms and broke a crisis test, so the rows were not shipped. Adding a
# file here is a crisis change: retrain (`train-crisis`) and measure bench/safety and bench/outside.
EVERYDAY_FILES = ("emotion_en.tsv", "emotion_en_2.tsv", "emotion_en_3.tsv", "emotion_en_4.tsv", "emotion_extra.tsv",
                  "emotion_sarcasm.tsv", "emotion_zh.tsv", "emotion_zh_2.tsv", "emotion_zh_3.tsv", "emotion_zh_4.tsv")


# The sealed sets of earlier sessions (tests/data/heldout), once measured and tuned on, are
# development data: rows by people who saw nothing of ours, in voices our own training files lack.
# The classifier learns their train split as it learns the training files'. Sets still sealed are
# never listed here (a set is added once its blind figures are measured: V and W at the end of session 16, X and Y at the end
# of session 17, Z and AA at the start of session 19, BB and CC at the start of session 20, DD and EE at the start of session 21). Names are listed,
# not spelt out of one string: after Z they take two letters.
DEV_SETS = tuple(f"tests/data/heldout/crisis_{name}.tsv"
                 for name in [*"ABCDEFGHIJKLMNOPQRSTUVWXYZ", "AA", "BB", "CC", "DD", "EE"])
DEV_SET_NAMES = frozenset(Path(name).name for name in DEV_SETS)


def dev_set_files() -> list[Path]:
    """The DEV_SETS shipped with Wellmate that exist."""
    from wellmate import HERE

    return [HERE / name for name in DEV_SETS if (HERE / name).exists()]


def everyday_files(wm) -> list[Path]:
    """The emotion files of EVERYDAY_FILES found under models/training (see training_files)."""
    return [p for p in training_files(wm, "emotion_*.tsv") if p.name in EVERYDAY_FILES]


# The emotion sets' user messages are crisis negatives too: ordinary chat ("hi" got a check-in
# from a model trained on the crisis sets alone, whose none rows are mostly hard negatives). Sad
# and tired ones as well: without them 21 of 280 independently written everyday messages got a
# check-in (12 of the 40 sad ones), with them 9; held crisis recall moved en 77->74%, zh 84->86%.
EVERYDAY_LABELS = {"happy", "calm", "neutral", "anxious", "angry", "sad", "tired"}
LABELS = ("crisis", "grey", "none")  # what the classifier tells apart


def figures(assess, rows: list[dict]) -> dict:
    """How many rows of each (language, label, kind) ``assess(text) -> Verdict`` finds (a reply
    with the hotlines: the crisis reply or a check-in), and the crisis replies among them."""
    table: dict[tuple, list[int]] = {}
    for row in rows:
        verdict = assess(row["text"])
        key = (language(row["text"]), row["label"], row.get("kind") or "")
        counts = table.setdefault(key, [0, 0, 0])  # rows, found, crisis replies
        counts[0] += 1
        counts[1] += verdict.found
        counts[2] += verdict.level == "crisis"
    return table


def summary(table: dict, indent: str = "  ") -> list[str]:
    """Recall on crisis and grey, false positives on none, per language: lines to print."""
    lines = []
    for lang in sorted({key[0] for key in table}):
        parts = []
        for label, what in (("crisis", "recall"), ("grey", "recall"), ("none", "false positives")):
            rows = sum(v[0] for k, v in table.items() if k[0] == lang and k[1] == label)
            found = sum(v[1] for k, v in table.items() if k[0] == lang and k[1] == label)
            if rows:
                parts.append(f"{label} {what} {100 * found / rows:5.1f}% ({found}/{rows})")
        lines.append(f"{indent}{lang}: " + ", ".join(parts))
    return lines


def training_rows(paths: list[Path], everyday: list[Path]) -> tuple[list[dict], list[dict]]:
    """(every row of the crisis files ``paths``, the rows the classifier learns from and is measured
    on: those labelled crisis, grey or none, then the user messages of the emotion files
    ``everyday`` as none). OSError or ValueError when a file cannot be read."""
    from wellmate_plugins._textmodel import read_rows

    given = read_rows(paths)
    rows = [r for r in given if r["label"] in LABELS]
    rows += [{**r, "label": "none", "everyday": True} for r in read_rows(everyday) if r["label"] in EVERYDAY_LABELS]
    return given, rows


def shipped_training_rows(wm) -> list[dict]:
    """The rows `train-crisis` learns from with no options (the shipped files under models/training)."""
    return training_rows(training_files(wm, "crisis_*.tsv") + dev_set_files(), everyday_files(wm))[1]


def copy_key(text: str) -> str:
    """A row's text with case, spacing and punctuation left out: how a copy of a row is told."""
    return " ".join(re.findall(r"\w+", text.lower()))


def set_folds(names: list[str], folds: int) -> list[list[str]]:
    """The sets ``names`` dealt into ``folds`` folds (bench/crisis_folds --by-set): fold i has the i-th,
    (i + folds)-th, ... set, so every fold mixes early and late writers, whose sets differ in size and style."""
    if folds < 1:
        raise ValueError("at least one fold")
    return [names[i::folds] for i in range(min(folds, len(names)))]


def leave_sets_out(rows: list[dict], held: set[str], copies_from: tuple[str, ...] = ("crisis_", "emotion_")) -> tuple[list[dict], list[dict]]:
    """``rows`` (of `training_rows`) cut for a writer the classifier never learnt (bench/crisis_folds
    --by-set): (the rows to learn from, with the split `learnt_rows` reads: no row of the files named
    in ``held`` is "train", nor a row of the training files (names starting with ``copies_from``, not the
    other sets) whose text is a held row's with case and punctuation aside, a copy; the rows of the
    ``held`` files to measure, both splits). Another writer's set keeps a row a held writer wrote too:
    "i want to kill myself" in seven sets is what writers say, not a copy, and a 24th would be met by it."""
    measured = [r for r in rows if r["file"] in held]
    copied = {copy_key(r["text"]) for r in measured}
    learn = []
    for r in rows:
        if r["file"] in held:
            continue
        if r["file"].startswith(copies_from) and r["file"] not in DEV_SET_NAMES and copy_key(r["text"]) in copied:
            r = dict(r, split="copy")
        learn.append(r)
    return learn, measured


def learnt_rows(phrases, rows: list[dict], concept_languages, hard_negative_weight: float = 1.0) -> list[tuple]:
    """The training split of ``rows`` as the classifier learns it: (the text as ``phrases`` reads
    it, its label, its concept features in ``concept_languages``, its weight: ``hard_negative_weight``
    for a `none` row of the crisis files, a hard negative, and 1 for the others)."""
    learnt = []
    for r in rows:
        if r["split"] == "train":
            clean, _, found = phrases.read(r["text"])
            weight = hard_negative_weight if r["label"] == "none" and not r.get("everyday") else 1.0
            learnt.append((clean, r["label"], concept_features(found) if language(clean) in concept_languages else [],
                           weight))
    return learnt


def rows_digest(learnt: list[tuple]) -> str:
    """A fingerprint of what the classifier learnt (`learnt_rows`: each training row's text as the
    rules read it, its label and concept features, in order), kept in the model file's meta: the
    shipped model must be what `train-crisis` makes from the shipped rows and rules (in session 9 the
    files held 486 rows the shipped model had not learnt, and a retrain gave a worse model than the
    one shipped). A rule edit that changes how a training row reads (an alias, a concept) changes
    it too; tests/test_safety.py compares the two."""
    import hashlib

    digest = hashlib.sha256()
    for clean, label, extra, weight in learnt:
        weighed = f"\t{weight:g}" if weight != 1 else ""  # the digests of models trained before weights stay true
        digest.update(f"{label}\t{clean}\t{' '.join(extra)}{weighed}\n".encode("utf-8"))
    return digest.hexdigest()[:16]


def train_crisis(wm_factory, args) -> int:
    """`python wellmate.py train-crisis`: retrain the classifier on the train split of the
    training files, write safety.model, print the figures on the held split."""
    from wellmate_plugins._textmodel import train

    if args.runs < 1 or not args.hard_negative_weight > 0 or not math.isfinite(args.hard_negative_weight):
        print("error: --runs must be 1 or more and --hard-negative-weight a number above 0", file=sys.stderr)
        return 1
    wm = wm_factory()
    try:
        safety = wm.service("safety")
        if stop_if_unusable(safety.phrases, "the concepts, aliases and masks"):
            return 1
        phrases = safety.phrases.get()
        paths = [Path(p) for p in args.data] if args.data else training_files(wm, "crisis_*.tsv")
        dev = [] if args.data or args.no_dev_sets else dev_set_files()
        everyday = [] if args.data or args.no_everyday else everyday_files(wm)
        if not paths:
            print("error: no training files (models/training/crisis_*.tsv)", file=sys.stderr)
            return 1
        try:
            given, rows = training_rows(paths + dev, everyday)
        except (OSError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        unknown = Counter(r["label"] for r in given if r["label"] not in LABELS)
        if unknown:
            print(f"warning: {sum(unknown.values())} rows with labels other than {', '.join(LABELS)} left out "
                  f"({', '.join(f'{label} {n}' for label, n in unknown.most_common())})", file=sys.stderr)
        concept_languages = {"en": ["en"], "both": ["en", "zh"], "none": []}[args.concept_features]
        train_rows = learnt_rows(phrases, rows, concept_languages, args.hard_negative_weight)
        held = [r for r in rows if r["split"] == "held" and r["file"] in {p.name for p in paths}]
        counts = Counter(row[1] for row in train_rows)
        short = [f"{label} {counts[label]}" for label in LABELS if counts[label] < args.min_rows]
        if short:
            print(f"error: too few training rows to learn from (at least {args.min_rows} per label, --min-rows): "
                  f"{', '.join(short)} in {', '.join(str(p) for p in paths + everyday)}", file=sys.stderr)
            return 1
        model = train(train_rows, epochs=args.epochs, l2=args.l2, rate=args.rate, seed=0, runs=args.runs,
                      labels=list(LABELS), min_count=args.min_count, families=args.features)
        out = Path(args.out) if args.out else data_file_candidates(wm, safety.config["model"] or "models/crisis.json")[0]
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            size = model.save(out, meta={"trained_on": [p.name for p in paths + dev + everyday], "train_rows": len(train_rows),
                                         "rows_digest": rows_digest(train_rows),
                                         "held_rows": len(held), "normalized_by": "prompts/safety.yaml",
                                         "concept_features": concept_languages,
                                         "hard_negative_weight": args.hard_negative_weight,
                                         "concepts": sorted(phrases.concepts.names)})
        except OSError as e:
            print(f"error: cannot write {out}: {e.strerror or e}", file=sys.stderr)
            return 1
        safety.use_model(out)
        print(f"trained on {len(train_rows)} rows of {', '.join(p.name for p in paths + dev + everyday)}; "
              f"wrote {out} ({size // 1024} KB)")
        alone = lambda text: safety.classify(text)
        for name, assess in (("classifier alone", alone), ("rules alone", safety.assess_rules),
                             ("rules + classifier (what replies use)", safety.assess)):
            print(f"held split ({len(held)} rows), {name}:")
            print("\n".join(summary(figures(assess, held))))
        return 0
    finally:
        wm.close()


@hookimpl
def cli(subparsers, wm_factory):
    parser = subparsers.add_parser(
        "train-crisis", help="retrain the crisis classifier (safety.model) and print its figures on the held split",
        description="Retrain the crisis classifier on models/training/crisis_*.tsv (all but the held eighth of the "
                    "rows), write it to safety.model and print recall and false positives on the held rows.")
    from wellmate_plugins._textmodel import FAMILIES, add_training_arguments

    # 20 epochs at rate 0.3 (was 12 at 0.5): crisis recall on the held split at 10% false positives
    # on none went from 71% to 80% (en) and 81% to 86% (zh), at 5% from 55% to 58% and 69% to 73%.
    # A two-class risk-vs-none model measured the same or worse (en 58%/77%, zh 75%/83%) and
    # cannot tell a crisis reply from a check-in: three classes stay.
    add_training_arguments(parser, out_default="safety.model", epochs=20, l2=1e-4)
    parser.add_argument("--concept-features", choices=["en", "both", "none"], default="en",
                        help="messages whose concepts (prompts/safety.yaml frames.concepts) the classifier reads too")
    parser.add_argument("--no-dev-sets", action="store_true",
                        help="do not learn from the earlier sealed sets (DEV_SETS, tests/data/heldout)")
    parser.add_argument("--no-everyday", action="store_true",
                        help="do not add the emotion sets' user messages as negatives")
    parser.add_argument("--rate", type=float, default=0.3, help="AdaGrad learning rate")
    # 3 (was 1): hard negatives are a few hundred of the ~9,000 `none` rows (most are everyday
    # messages), so the words they share with crises ("die", "overdose", "cut") were learnt as crisis
    # words. Weighed three times, with the mean of 3 runs and check-in thresholds 0.35/0.50 (were
    # 0.40/0.55), the held split's hard negatives went 5.2 -> 4.0% (en) and 5.1 -> 3.5% (zh) for crisis
    # recall 93.8 -> 93.8% and 92.8 -> 92.2% (session 11; `bench/safety --sweep` prints today's).
    parser.add_argument("--runs", type=int, default=3,
                        help="train this many times, the rows in a different order each time, and keep the mean")
    parser.add_argument("--hard-negative-weight", type=float, default=3.0,
                        help="how much more a `none` row of the crisis files (a hard negative) counts than another row")
    parser.add_argument("--min-count", type=int, default=3, help="drop features seen in fewer training rows (file size)")
    # Session 12 (helper CL's measurements): `skip` raised English crisis recall at 5% false positives on hard negatives
    # (classifier alone) on four folds of the train split, 85.8 -> 86.8% on average (3 of 4 folds), and
    # on the held split 89.6 -> 91.2%; but at today's thresholds it found 4 fewer held English crises (2 fewer false
    # alarms) and lost a sure short check-in ("just a spare part really" 0.93 -> 0.89, under 0.90), so it
    # waits for thresholds chosen with it. zh4 cost Chinese recall on the folds, and so did NBSVM feature scaling
    # (tried and taken out: 88.6 -> 86.8% at 5% false positives, 3-8 points less at 2%). Session 13 (trained with
    # DEV_SETS too): on 2 folds `skip` found as many English crises at every check-in threshold, with 0.3 points
    # fewer false alarms (74 against 79 of 1,827 at 0.35), within one run's noise; retrained, it found 282 held
    # English crises of 307 against 289, at the same 3.4% false alarms: still off.
    parser.add_argument("--features", nargs="*", choices=FAMILIES, default=[],
                        help="feature families beside the base n-grams (zh4: Chinese 4-grams, skip: word pairs with one "
                             "word between); the model file names them and scoring reads them")
    # One row per label trained a model that gave "今天天气很好" p(crisis) 0.70: too few rows learn
    # the rows' words, not what a crisis sounds like. The shipped sets have 300+ per label.
    parser.add_argument("--min-rows", type=int, default=50, help="refuse to train with fewer training rows of a label")
    parser.set_defaults(func=lambda args: train_crisis(wm_factory, args))
