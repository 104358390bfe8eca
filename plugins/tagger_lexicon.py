"""The ``lexicon`` emotion tagger: weighted word lists in prompts/emotion_lexicon.yaml.

Every message, the user's and the reply, gets a label that drives the mascot's face. This tagger
needs no model: it adds up the weights of the words it finds, minding negation (不开心, not happy),
intensity (很累, really tired), emoji and mixed Chinese-English text. The file explains the rules
to users, who edit it; it is re-read when it changes.

A reply that comforts ("听起来你很难过，我在这里陪你") is tagged calm rather than sad: the
mascot should look kind while listening, not mirror the user's sadness.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import defaultdict

from wellmate import Setting, Tagger, hookimpl
from wellmate_plugins._files import WatchedYaml, data_file_candidates
from wellmate_plugins._text import CLAUSE_END, Terms, normalize, term_alternatives


@hookimpl
def register_taggers(register):
    register("lexicon", LexiconTagger)


# A short span in quotation marks: a praise word inside one is said with a raised eyebrow
# (我真是太“幸运”了, so "lucky").
# Where a clause ends: punctuation, or a space after a Chinese character (many write "好累 不想动").
CLAUSE = re.compile(CLAUSE_END.pattern + r"|(?<=[\u4e00-\u9fff])\s")
NEGATION_IN_CLAUSE = re.compile(r"n't|\b(?:not|no|never)\b|不|没")
# A subject pronoun: after a feeling word, it begins a statement of its own (see Lexicon._negated_after).
SUBJECT = re.compile(r"\b(?:i|i'm|im|we|he|she|they|you)\b|[我他她]")
# "从来没这么开心过": never this happy before, i.e. happier than ever; the 没 negates nothing.
EVER = re.compile(r"(?:这么|那么|如此|这样)$")
QUOTED = re.compile(r'[“"「『‘]([^“”"「」『』‘’]{1,12})[”"」』’]'
                    # or plain single quotes ('great'), which are apostrophes inside a word (I'm, kids')
                    r"|(?<![a-z0-9])'([^'\n]{1,12})'(?![a-z0-9])")


# The concessive "X是X，…" (累是累，开心是开心): granted, and then the clause that counts, a
# contrast even with no 但 after it ("开心是开心，孩子会叫妈妈了，可我实在太累了" is tired).
CONCESSIVE = re.compile(r"([\u4e00-\u9fff]{1,3})是\1(?=[，,、 ])")
# A thing done over and over, which belies a claim of ease (see Lexicon._belied); and a habit of
# the mind, which does the same ("I'm not scared, I just keep reading about the side effects",
# 我没事，就是老觉得这个包又大了点): session 18 (EMOM), denials belied so in four writers' sets.
REPEATED = re.compile(r"\b(?:\w+ times|every (?:\w+ )?(?:minutes?|hours?|night|day|morning)|all night|non-?stop"
                      r"|keeps? (?:on )?\w+ing|kept (?:on )?\w+ing|can't stop \w+ing|over and over|again and again)\b"
                      r"|[0-9一二两三四五六七八九十几百]+[遍次回趟]|每.{0,4}[天晚夜分小]|一晚上|整晚|整夜"
                      r"|老是|老觉得|老想|总是|总觉得|总想|反复|翻来覆去")
# 可 opening a clause is "but" in everyday Chinese, older writers' most of all ("腿还是有点酸，可今天
# 跳了半小时广场舞，心里乐呵着呢"; "高兴是高兴，可我这心脏坐飞机行不行啊"): what follows it counts
# more, as after 可是. Not 可 as a word's first character (可以, 可能, 可惜, 可怕, 可爱, 可乐) nor the
# intensifier (可真会挑, 可太方便了, 可好了, 可不是).
CLAUSE_BUT = re.compile(r"(?:^|(?<=[，,。.！!？?；;…~\s]))可(?![是以能惜怕爱怜乐口笑真太好不算谓见靠观恶恨喜])")
# "Just" and its kin, then a thing done over and over: what belies a denied worry ("I'm not panicking,
# I'm just checking his temperature every 15 minutes", 我不紧张，只是每五分钟看一次手机).
JUST_REPEATED = re.compile(r"\b(?:just|only)\b|只是|只不过|就是")
# The weight of a bad feeling that sarcasm is taken to mean (see Lexicon.analyse).
SHOWN = 1.5


def ending(words, extra: str = "") -> re.Pattern | None:
    """A regex for any of ``words`` at the very end of a text (Latin ones as whole words)."""
    words = [normalize(w) for w in words if normalize(w)]
    other, latin = term_alternatives(words, False), term_alternatives(words, True)
    parts = ([f"(?:{other})"] if other else []) + ([rf"(?<![a-z0-9'])(?:{latin})"] if latin else [])
    if extra:
        parts.append(extra)
    return re.compile("(?:" + "|".join(parts) + r")\s*$") if parts else None


class Lexicon:
    """The lexicon file, compiled for scoring."""

    def __init__(self, data: dict):
        self.words: dict[str, tuple[str, float]] = {}
        self.negated: dict[str, str | None] = {}
        self.order: list[str] = []
        for label, spec in (data.get("labels") or {}).items():
            label, spec = str(label), spec or {}
            self.order.append(label)
            self.negated[label] = spec.get("negated")
            for group in ("zh", "en", "emoji", "words"):
                entries = spec.get(group) or {}
                if isinstance(entries, list):
                    entries = dict.fromkeys(entries, 1)
                for word, weight in entries.items():
                    self.words[normalize(word)] = (label, float(weight))
        self.terms = Terms(self.words)

        def section(name):
            return data.get(name) or {}

        degrees = section("degrees")
        words = [normalize(w) for w in degrees.get("words") or [] if normalize(w)]
        self.degree_words = re.compile(term_alternatives(words, False)) if words else None
        self.degree_as = str(degrees.get("as") or "")
        self.praise_after = ending(degrees.get("praise_after") or [])
        skip = term_alternatives([normalize(w) for w in degrees.get("skip") or [] if normalize(w)], False)
        self.degree_skip = re.compile(f"(?:{skip})+$") if skip else None

        # Words of a feeling that tell of none (`aside`: tears from onions, a baby's crying asked about, "I could murder a
        # pizza"): read as if not written (session 18, AUDFIX)
        aside = [str(p) for p in section("aside").get("patterns") or []]
        self.aside = re.compile("|".join(f"(?:{p})" for p in aside)) if aside else None
        # ...and counted as plain talk (`neutral`), so the model's reading of "crying" gives way where nothing else is felt
        self.aside_weight = float(section("aside").get("weight", 2))
        self.intensifiers = ending(section("intensifiers").get("words") or [])
        self.intensify = float(section("intensifiers").get("weight", 1.5))
        self.downtoners = ending(section("downtoners").get("words") or [])
        self.downtone = float(section("downtoners").get("weight", 0.6))
        negations = section("negations")
        # Any English "…n't" negates too, whether or not the list names it.
        self.negations = ending(negations.get("words") or [], extra=r"(?<![a-z])[a-z]+n't")
        self.skip = ending(negations.get("skip") or [])
        self.reported = Terms(negations.get("reported") or [])
        self.negated_after = Terms(negations.get("after") or [])
        self.negation_weight = float(negations.get("weight", 0.8))
        contrast = section("contrast")
        self.contrast = Terms(contrast.get("words") or [])
        self.before_contrast = float(contrast.get("before", 1))
        # a loss or a trouble told as long past and then how it is now (`contrast.then_now`): the present weighs as
        # what follows "but" (session 18, AUDFIX)
        then_now = [str(p) for p in contrast.get("then_now") or []]
        self.then_now = re.compile("|".join(f"(?:{p})" for p in then_now)) if then_now else None
        self.after_contrast = float(contrast.get("after", 1))
        comfort = section("comfort")
        self.comfort = Terms([*(comfort.get("zh") or []), *(comfort.get("en") or []), *(comfort.get("words") or [])])
        self.comfort_label = str(comfort.get("label", "calm"))
        self.comfort_weight = float(comfort.get("weight", 1.5))
        self.soothes = set(comfort.get("soothes") or [])
        self.soothe_factor = float(comfort.get("factor", 0.3))
        self.aliases = {str(k): [str(a) for a in v or []] for k, v in section("aliases").items()}
        irony = section("irony")
        self.irony_label = str(irony.get("label", "angry"))
        self.irony_factor = float(irony.get("factor", 0.7))
        self.cheers = {normalize(w) for w in irony.get("cheers") or []}
        self.again = Terms(irony.get("again") or [])
        # In the file's order, not a set: sarcasm's weight goes to the bad feeling shown most (`analyse`), and a tie
        # went to whichever label the set's hash order gave first, so a label changed from one process to the next
        # (emotion_L row 16, angry 1.5 and sad 1.5 shown, was angry or sad by PYTHONHASHSEED; session 21, PERF).
        self.irony_needs = tuple(dict.fromkeys(irony.get("needs") or ["sad", "anxious", "angry", "tired"]))
        self.irony_signs = Terms(irony.get("signs") or [])
        self.plain_irony = Terms(irony.get("plain_signs") or [])
        self.before_mishap = Terms(irony.get("before_mishap") or [])
        self.praise = set(irony.get("praise") or ["happy", "calm"])
        # what sarcasm means by the family of its mishap (lost sleep: tired), unless someone is blamed
        self.irony_means = [(str(label), Terms(words or [])) for label, words in (irony.get("means") or {}).items()]
        self.blame = Terms(irony.get("blame") or [])
        pairs = [str(p) for p in irony.get("belied_pairs") or []]
        self.belied = Terms(irony.get("belied") or [])
        self.belied_pairs = re.compile("|".join(f"(?:{p})" for p in pairs)) if pairs else None
        self.openers = Terms(sorted({*(irony.get("openers") or []), *(irony.get("cheers") or [])}))
        self.smiles = Terms(irony.get("smiles") or [])
        self.mishaps = Terms(irony.get("mishaps") or [])
        self.relief = Terms(irony.get("relief") or [])
        mock = irony.get("mock") or {}
        self.laughs, self.boasts = Terms(mock.get("laughs") or []), Terms(mock.get("boasts") or [])
        self.mock_label = str(mock.get("label", "happy"))
        # A health reading that is bad news by its number (`irony.bad_numbers`: 血糖又15了, "A1c came back at 9.5"),
        # a mishap as a word of `mishaps` is; self-praise closing a failure ("great job me", 我可真厉害: `self_praise`)
        # (session 18, AUDFIX: cheer for bad news)
        self.bad_numbers = []
        for spec in irony.get("bad_numbers") or []:
            words = [normalize(w) for w in (spec or {}).get("words") or [] if normalize(w)]
            if words:
                latin, other = term_alternatives(words, True), term_alternatives(words, False)
                parts = ([rf"(?<![a-z])(?:{latin})(?![a-z])"] if latin else []) + ([f"(?:{other})"] if other else [])
                self.bad_numbers.append((re.compile(
                    "(?:" + "|".join(parts) + r")[^0-9。！？!?;；\n]{0,14}?(?<![\d.])(\d+(?:\.\d+)?)"),
                    float(spec.get("above", 0))))
        self.self_praise = Terms(irony.get("self_praise") or [])
        self.turned_out = Terms(irony.get("turned_out") or [])

    def scores(self, text: str) -> dict[str, float]:
        return self.analyse(text)[0]

    def mishap(self, text: str) -> bool:
        """Whether ``text`` tells of a mishap: a word of `irony.mishaps`, or a health reading past its `bad_numbers` mark."""
        if self.mishaps.regex is not None and self.mishaps.regex.search(text):
            return True
        for pattern, above in self.bad_numbers:
            for m in pattern.finditer(text[:2000]):  # (bounded: a reading is told early, and a long text is read linearly)
                try:
                    if float(m.group(1)) >= above:
                        return True
                except ValueError:
                    continue
        return False

    def laughed_off(self, text: str) -> bool:
        """A laugh after a mishap told with no relief and no boast ("got dumped over text today lol", 被裁员了哈哈哈,
        今天空腹血糖16，哈哈): the laugh is no joy, and the text is read as sarcasm is (session 18, AUDFIX: "My exam went
        so badly I wanted the ground to swallow me, lol, but I'll retake it" got "That's lovely to hear!")."""
        if self.laughs.regex is None:
            return False
        laugh = self.laughs.regex.search(text)
        if laugh is None:
            return False
        before = text[:laugh.start()]
        if self.boasts.regex is not None and self.boasts.regex.search(text):
            return False
        if self.relief.regex is not None and self.relief.regex.search(before):
            return False
        if self.turned_out.regex is not None and self.turned_out.regex.search(before):
            return False
        return self.mishap(before)

    def plain(self, text: str) -> str:
        """``text`` (normalized) with each `degrees` word that says how bad something is, not praise,
        written as `degrees.as`: 掉头发很厉害 -> 掉头发很严重; 他好厉害 and 太厉害了 stay."""
        if self.degree_words is None:
            return text
        out, last = [], 0
        for m in self.degree_words.finditer(text):
            before = text[:m.start()]
            before = before[max((c.end() for c in CLAUSE_END.finditer(before)), default=0):].rstrip()
            if self.degree_skip is not None:
                before = self.degree_skip.sub("", before)
            # praise: nothing before it in its clause (太厉害了!), or a person (他好厉害, 你真厉害)
            if before and not (self.praise_after is not None and self.praise_after.search(before)):
                out += [text[last:m.start()], self.degree_as]
                last = m.end()
        return "".join(out) + text[last:]

    def analyse(self, text: str, turned: set | None = None) -> tuple[dict[str, float], bool]:
        """The weight per label of the words in ``text``, and whether it is sarcastic (a praise
        word was turned by a sign of irony, "again" or quotation marks). ``turned``, when given,
        gets the labels of the words a negation turned away ("not anxious": anxious)."""
        text = self.plain(normalize(text))
        aside = 0
        if self.aside is not None:
            text, aside = self.aside.subn(" ", text)
        sarcastic = False
        contrast = max([start for start, _ in self.contrast.find(text)] + [m.start() for m in CLAUSE_BUT.finditer(text)],
                       default=None)
        concession = CONCESSIVE.search(text)
        if concession and (contrast is None or contrast < concession.end()):
            contrast = concession.end()  # "开心是开心，可我实在太累了": what follows outweighs it
        moved = self.then_now.search(text) if self.then_now is not None else None
        if moved is not None:
            # from the clause of the word of now: "my dog passed away two years ago; I've adopted a puppy now and feel
            # happy again", 外婆前年走了，现在一家人过得挺好: what follows outweighs what came before
            now = moved.end(moved.lastindex) if moved.lastindex else moved.end()
            turn = max((m.end() for m in CLAUSE.finditer(text, 0, now)), default=now)
            if contrast is None or contrast < turn:
                contrast = turn
        comforting = sum(1 for _ in self.comfort.find(text))
        totals = defaultdict(float)
        found = list(self.terms.find(text))
        # A cheer and then a mishap is sarcasm whether or not the cheer is a word of this file ("lucky me").
        complaint = contrast is None and self._cheer_then_mishap(text)
        laughed = not complaint and self.laughed_off(text)
        ironic = "sign" if complaint or laughed else self._ironic(text, found, contrast)
        quoted = [m.span(1) if m.group(1) is not None else m.span(2) for m in QUOTED.finditer(text)]
        quote_starts = [a for a, _ in quoted]
        # Where each clause begins, once: each word searched the whole text before it (and after
        # it, `_negated_after`), so a 4,000-character message of emoji took 0.4-0.8 s of CPU. A
        # clause end is one character, and its look-behind sees what it saw in the text cut at the
        # word: the same clauses.
        clause_starts = [m.end() for m in CLAUSE.finditer(text)]
        mock = self._mock(text)
        belied = self._belied(text, found)  # where a claim is belied: praise words before it are turned
        denial_belied = self._denial_belied(text, found)  # where a denied bad feeling is belied by what is done
        irony = 0.0  # the weight of praise words said with a raised eyebrow, given out below
        for start, word in found:
            label, weight = self.words[word]
            clause = bisect_right(clause_starts, start)
            clause_start = clause_starts[clause - 1] if clause else 0
            before = text[max(clause_start, start - 16):start]
            weight *= self._degree(before)
            # "嘴上说不担心", "I said I wasn't worried": a feeling only said to be absent, or only shown
            reported = self.reported.regex is not None and self.reported.regex.search(text[max(clause_start, start - 24):start])
            if text.startswith("过", start + len(word)) and EVER.search(before):
                weight = self.words[word][1] * self.intensify
            elif self._negated(before) or self._negated_after(text, start + len(word), before):
                if reported or (denial_belied is not None and start < denial_belied and label == "anxious"):
                    totals[label] += weight  # the denial is not believed: the feeling stands
                    continue
                if turned is not None:
                    turned.add(label)
                label = self.negated.get(label)
                if not label:
                    continue
                weight = self.words[word][1] * self.negation_weight  # "not very happy" is just "not happy"
            elif reported and label in self.praise and self.negated.get(label):
                label = self.negated[label]  # "假装很开心": the cheer is a front
            elif denial_belied is not None and start < denial_belied and label == "calm":
                label = "anxious"  # ease claimed, then "just" a worry's habit: 放心，我稳得很，就是把稿子改了十二遍
            elif belied is not None and start < belied and label in self.praise and self.negated.get(label):
                label = self.negated[label]  # "可淡定了，所以才背了四十遍稿子": anxious
                sarcastic = True
            elif mock and label in self.irony_needs:
                label = self.mock_label  # "烦死了，又被表扬了😂": a boast dressed as a complaint
            elif (ironic and (word in self.cheers or (ironic == "sign" and label in self.praise))) or (
                    label in self.praise and _within(quoted, quote_starts, start)):
                irony += weight * self.irony_factor
                sarcastic = True
                continue
            if contrast is not None:
                weight *= self.after_contrast if start > contrast else self.before_contrast
            if comforting and label in self.soothes:
                weight *= self.soothe_factor
            totals[label] += weight
        if comforting:
            totals[self.comfort_label] += comforting * self.comfort_weight
        if aside:
            totals["neutral"] += self.aside_weight
        if irony:
            # Sarcasm means the bad feeling the text shows besides ("真开心，又熬了个通宵" is tired),
            # and `label` when it shows none: a circumstance of weight 1 (加班) is no feeling shown,
            # "太好了，又要加班了" is angry.
            shown = [label for label in self.irony_needs if totals.get(label, 0) >= SHOWN]
            totals[max(shown, key=totals.get) if shown else self.irony_meaning(text)] += irony
        if not sarcastic and (complaint or laughed or self.plain_irony.regex is not None and self.plain_irony.regex.search(text)):
            sarcastic = True  # "just what I needed, a flat tire": no praise word to turn, still sarcasm
        return dict(totals), sarcastic

    def _belied(self, text: str, found: list) -> int | None:
        """Where the first sign that belies a claim begins (所以才, "that's why I", 也就…而已), or
        None; only when what follows it tells of something bad (a word of a bad feeling, a mishap)
        or of a thing done over and over (forty times, 每五分钟, every night): "I'm happy with it,
        that's why I smiled all day" is sincere."""
        starts = [start for start, _ in self.belied.find(text)][:1]
        if self.belied_pairs is not None:
            m = self.belied_pairs.search(text)
            if m:
                starts.append(m.start())
        if not starts:
            return None
        at = min(starts)
        after = text[at:]
        bad = any(start > at and self.words[word][0] in self.irony_needs for start, word in found)
        if bad or REPEATED.search(after) or (self.mishaps.regex is not None and self.mishaps.regex.search(after)):
            return at
        return None

    @staticmethod
    def _denial_belied(text: str, found: list) -> int | None:
        """Where "just" (只是, 就是) begins when a thing done over and over follows it, and no word of
        a feeling ("not worried, just tired, up three times" is tired), or None. It belies a denied
        worry only: checking again and again is what worry does ("not sad, just busy every day")."""
        m = JUST_REPEATED.search(text)
        if m is None or any(start > m.start() for start, _ in found) or not REPEATED.search(text, m.end()):
            return None
        return m.start()

    def opens_with_cheer(self, text: str) -> bool:
        """Whether ``text`` opens with a cheer standing as its own short first clause ("Brilliant,
        …", "so fun being …", "太好了，…"): where sarcasm puts it."""
        text = normalize(text)
        if self.openers.regex is None:
            return False
        opening = self.openers.regex.match(text)  # the message's first words ("so fun being awake …")
        end = CLAUSE.search(text)
        head = text[:end.start()] if end else ""
        if len(re.findall(r"[a-z0-9']+", head)) > 4 or len(re.findall(r"[\u4e00-\u9fff]", head)) > 8:
            head = ""
        return opening is not None or (bool(head) and self.openers.regex.search(head) is not None)

    def aside_spans(self, text: str) -> list[tuple[int, int]]:
        """Where in ``text`` (normalized) words of a feeling tell of none (`aside`): the offline companion does not name
        a feeling for them either ("cut onions without crying" got "It sounds like you're feeling sad")."""
        if self.aside is None:
            return []
        return [m.span() for m in self.aside.finditer(text)]

    def moved_on(self, text: str) -> bool:
        """Whether ``text`` tells of something long past and then of now (`contrast.then_now`)."""
        return self.then_now is not None and self.then_now.search(self.plain(normalize(text))) is not None

    def contrasted(self, text: str) -> bool:
        """Whether ``text`` has a contrast word or a concession (累是累，…): feelings on both sides."""
        text = normalize(text)
        return (self.contrast.regex is not None and self.contrast.regex.search(text) is not None) or \
            CLAUSE_BUT.search(text) is not None or CONCESSIVE.search(text) is not None or \
            (self.then_now is not None and self.then_now.search(text) is not None)

    def irony_meaning(self, text: str) -> str:
        """The bad feeling a sarcastic ``text`` that shows none in words means: the label of the first
        `irony.means` family its mishap belongs to ("太棒了，又上夜班": lost sleep, tired), else
        `irony.label` (angry), which a word of blame keeps ("谢谢领导，又排我夜班": someone did it)."""
        if self.blame.regex is not None and self.blame.regex.search(text):
            return self.irony_label
        return next((label for label, terms in self.irony_means if terms.regex is not None and terms.regex.search(text)),
                    self.irony_label)

    def _ironic(self, text: str, found: list, contrast):
        """Whether the cheers in ``text`` are sarcasm: "sign" for a sign of irony (呵呵, 🙄, "oh
        great"), which turns every praise word; True for "again" together with a word of a bad
        feeling (and no contrast word, which makes a mixed but sincere text), which turns cheers."""
        if self.irony_signs.regex is not None and self.irony_signs.regex.search(text) and any(
                word in self.cheers or self.words[word][0] in self.praise for _, word in found):
            return "sign"
        if not any(word in self.cheers for _, word in found):
            return False
        if contrast is not None or self.again.regex is None or not self.again.regex.search(text):
            return False
        return any(self.words[word][0] in self.irony_needs for _, word in found if word not in self.cheers)

    def _mock(self, text: str) -> bool:
        """A complaint that is a boast: a laugh and a good thing that happened to the writer ("ugh,
        my boss praised me in front of everyone again 😂"): its words of anger or weariness are joy."""
        if self.laughs.regex is None or self.boasts.regex is None or not self.laughs.regex.search(text):
            return False
        if self.irony_signs.regex is not None and self.irony_signs.regex.search(text):
            return False  # the good thing befell everyone but the writer ("except me", 就我没有)
        return any(not self._negated(text[max(0, start - 16):start]) for start, _ in self.boasts.find(text))

    def _cheer_then_mishap(self, text: str) -> bool:
        """A cheer that opens the text (a first clause of a few words) and then a mishap in a later
        clause, or a cheer, a mishap after it and a smile that does not fit ("nothing says happy
        birthday like a double shift 🙂"), or a sign of `before_mishap` and a mishap after it; with
        no word of relief after the cheer (see the file)."""
        if (self.mishaps.regex is None and not self.bad_numbers) or self.openers.regex is None:
            return False
        end = CLAUSE.search(text)
        head = text[:end.start()] if end else ""
        short = len(re.findall(r"[a-z0-9']+", head)) <= 4 and len(re.findall(r"[\u4e00-\u9fff]", head)) <= 8
        cheer = next((start + len(word) for start, word in self.openers.find(head) if not self._negated(head[:start])),
                     None) if short and head else None
        if cheer is None and self.smiles.regex is not None and self.smiles.regex.search(text):
            cheer = next((start + len(word) for start, word in self.openers.find(text)
                          if not self._negated(text[max(0, start - 16):start])), None)
        if cheer is None:  # "nothing says weekend like a burst pipe": a sign of irony before the mishap
            cheer = next((start + len(word) for start, word in self.before_mishap.find(text)), None)
        if cheer is None:
            return self._mishap_then_cheer(text)
        rest = text[max(cheer, end.end() if end and head else cheer):]
        return self.mishap(rest) and (
            self.relief.regex is None or self.relief.regex.search(rest) is None)

    def _mishap_then_cheer(self, text: str) -> bool:
        """A mishap and then a cheer that closes the text on its own (its last clause, a word or
        two): "…and now the gym's support line just rings out, brilliant", "高铁又晚点了，真棒"."""
        text = text.rstrip(" .!！。~～…")
        ends = [m.end() for m in CLAUSE.finditer(text)]
        if not ends:
            return False
        tail, rest = text[ends[-1]:], text[:ends[-1]]
        praised = self.self_praise.regex is not None and self.self_praise.regex.fullmatch(tail.strip()) is not None
        if not praised and (len(re.findall(r"[a-z0-9']+", tail)) > 2 or len(re.findall(r"[\u4e00-\u9fff]", tail)) > 4):
            return False
        return (praised or any(True for _ in self.openers.find(tail))) and self.mishap(rest) and (
            self.relief.regex is None or self.relief.regex.search(rest) is None)

    def _degree(self, before: str) -> float:
        for regex, factor in ((self.intensifiers, self.intensify), (self.downtoners, self.downtone)):
            if regex is not None and regex.search(before):
                return factor
        return 1.0

    def _negated_after(self, text: str, end: int, before: str) -> bool:
        """Whether the clause goes on to say the feeling is gone ("the worry isn't there anymore")."""
        if self.negated_after.regex is None:
            return False
        after = CLAUSE.split(text[end:end + 24], 1)[0]  # the clause's next 24 characters at most
        if self.negated_after.regex.search(after) is None:
            return False
        if NEGATION_IN_CLAUSE.search(before):
            return True
        negation = NEGATION_IN_CLAUSE.search(after)
        # A subject of its own before the negation starts another statement, whose negation is not
        # the feeling's: "I'm so sad I can't run anymore" is sad (it was calm), as against "the worry
        # isn't there anymore".
        return negation is not None and SUBJECT.search(after[:negation.start()]) is None

    def _negated(self, before: str, twice: bool = True) -> bool:
        """Whether ``before`` ends in a negation, past a few words that may stand between it
        and the feeling word (不是很开心, not feeling happy), and that negation is not negated in
        turn (不是不紧张, "it's not that I'm not happy": the feeling stands)."""
        words = [r for r in (self.skip, self.intensifiers, self.downtoners) if r is not None]
        for _ in range(4):
            negation = self.negations.search(before) if self.negations is not None else None
            m = min((m for m in (r.search(before) for r in words) if m), key=lambda m: m.start(), default=None)
            # The longer of the two words that end here: 特别 is an intensifier, not 别 (don't).
            if negation and not (m and m.start() < negation.start()):
                return not (twice and self._negated(before[:negation.start()], twice=False))
            if m is None or m.start() == len(before):
                return False
            before = before[:m.start()]
        return False


def _within(spans: list, starts: list, at: int) -> bool:
    """Whether ``at`` is in one of ``spans`` (sorted, apart; ``starts`` their starts)."""
    i = bisect_right(starts, at) - 1
    return i >= 0 and at < spans[i][1]


class LexiconTagger(Tagger):
    settings = {
        "lexicon": Setting("prompts/emotion_lexicon.yaml",
                           "Emotion word lists for the lexicon tagger, relative to config.yaml; re-read when it changes."),
    }

    def __init__(self, config: dict, wm=None):
        super().__init__(config, wm)
        name = config.get("lexicon") or self.settings["lexicon"].default
        self.lexicon = WatchedYaml(data_file_candidates(wm, name), Lexicon, without="tagging everything neutral",
                                   empty_ok=False)  # an emptied file is a mistake, as a broken one
        self.lexicon.read_now(wm)  # a broken file is an error of `check`, not "ok" and every message neutral

    def tag(self, text: str, labels: list[str]) -> str:
        lexicon = self.lexicon.get()
        totals = lexicon.scores(text or "")
        return self.choose(totals, labels, lexicon)

    def sarcastic(self, text: str) -> bool:
        """Whether ``text`` carries a sign of sarcasm (a praise word turned, a cheer before a
        mishap): chat then never shows a cheerful face for its reply."""
        return self.lexicon.get().analyse(text or "")[1]

    def aside(self, text: str) -> list[tuple[int, int]]:
        """Spans of ``text`` (normalized) whose feeling words tell of none (see Lexicon.aside_spans)."""
        return self.lexicon.get().aside_spans(text or "")

    def moved_on(self, text: str) -> bool:
        """Whether ``text`` tells of something long past and then of now (see Lexicon.moved_on)."""
        return self.lexicon.get().moved_on(text or "")

    def choose(self, totals: dict[str, float], labels: list[str], lexicon: Lexicon) -> str:
        """The configured label for the lexicon's ``totals``."""
        rank = {label: i for i, label in enumerate(lexicon.order)}
        ranked = sorted(totals.items(), key=lambda kv: (-kv[1], rank.get(kv[0], len(rank))))
        best = ranked[0][1] if ranked else 0
        # The best label the configuration knows, by name or alias; a distant runner-up is no
        # substitute for the winner (a sad text must not come out happy).
        for label, score in ranked:
            if score <= 0 or score < best / 2:
                break
            found = self.configured(label, labels, lexicon)
            if found:
                return found
        return self.configured("neutral", labels, lexicon) or (labels[0] if labels else "neutral")

    @staticmethod
    def configured(label: str, labels: list[str], lexicon: Lexicon) -> str | None:
        by_name = {str(l).lower(): l for l in labels}
        for name in [label, *lexicon.aliases.get(label, [])]:
            if name.lower() in by_name:
                return by_name[name.lower()]
        return None
