"""Which part of a message is its question: the offline companion's reading of passing mentions
(a library, not a plugin: no hooks).

Users mention a symptom in passing and then say what they really ask ("最近有点咳嗽，不过这个不急，
主要想问…", "I've had a cough but that's not a big deal, what's really bugging me is…"), or give a
condition as context for a question about something else ("我有高血压，想开始跑步", "type 2 diabetic
here, want to start working out"). Read as a whole, such a message is about its first symptom (a
cough outranks everything in the tips file), so the companion reads the parts this module picks
first and the whole message only when they name no topic (`candidates`).

All of it works on text as `wellmate_plugins._text.normalize` leaves it (lower case, single spaces).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from typing import NamedTuple

from wellmate_plugins._text import CLAUSE_END

# Words that open the main question: what follows them is what the message asks about.
LEAD_IN = re.compile(
    r"主要(?:是|想问|想知道|问|担心|是想问)|(?:其实|我)(?:是)?想问|想问的(?:其实)?是|(?:今天|这次|真正|最)想问|我真正|"
    r"重点是|关键是|言归正传|说正事|我的问题是|我想(?:说|知道)的是|"
    r"(?:真正|比较|更|最|主要)?(?:让我|令我)?(?:困扰|烦|难受|担心|在意|关心|想知道|想问)(?:我)?的(?:其实)?是|"
    r"(?<![a-z])(?:what'?s (?:really |actually )?(?:bugging|bothering|worrying) me(?: (?:more|most))?(?: is)?|"
    r"what (?:really |actually )?(?:bugs|bothers|worries) me(?: (?:more|most))?(?: is)?|"
    r"my (?:actual|real|main|proper|bigger) (?:question|concern|worry|issue|problem)(?: is)?|"
    r"the (?:actual|real|main|bigger) (?:question|concern|worry|issue|problem|thing)(?: is)?|"
    r"(?:the )?main (?:thing|question)(?: is)?|the bigger worry(?: is)?|the reason i'?m (?:asking|here|writing)(?: is)?|"
    r"what i'?m (?:more |most |really |actually )?(?:concerned|worried) about(?: is)?|"
    r"i'?m (?:more|most|mainly|really) (?:concerned|worried) about|"
    r"(?:what|the thing) i (?:wanna|want to|wanted to) (?:know|ask)(?: is| about)?|(?:today'?s |and )?my question (?:today |here )?is|"
    r"mainly|mostly (?:want|wondering|worried|asking|curious)|"
    r"what i (?:really |actually )?(?:want|wanted|need|meant) to (?:know|ask)(?: is)?|"
    r"i (?:really |actually )(?:want|wanted|need) to (?:know|ask)|"
    r"(?:but )?more importantly|anyway?s?(?= |,|$))(?![a-z])")

# Words that set what comes before them (in their clause, or the clause before) aside: the main
# question comes after their clause. Not "还好吗", "要不要紧": questions, not asides.
ASIDE = re.compile(
    r"(?:这个|这些|那个|倒|也)?(?:不急|不重要|无所谓|不是重点|不是主要的|是次要的)|不管它|先不管|先不说|先不提|暂且不说|"
    r"(?:这个|倒是?|也)还好(?![吗不么])|没什么大事|没啥大事|问题不大|(?<!要)不要紧(?![吗不么])|老毛病了|习惯了|"
    r"不打紧|不碍事|不算什么|(?:是)?常事了?|(?:小事|没啥|没事)(?=\s*[，,。；;]|$)|"
    r"(?<![a-z])(?:(?:that'?s |it'?s )?(?:not a|no) big deal|not a biggie|(?:that |it )?doesn'?t matter|"
    r"(?:that'?s|it'?s) (?:not the (?:point|issue)|under control|manageable|whatever|minor|nothing|fine)|whatever|"
    r"not important|(?:that |it )?doesn'?t bother me|not (?:too |that |really )?bothered(?: about (?:that|it))?|no biggie|"
    r"(?:but )?(?:that'?s )?not (?:really )?(?:what|why) i'?m (?:asking|here|writing)|"
    r"forget (?:about )?(?:the|my|that)|never ?mind(?: the| my| that)?|nvm|aside from|apart from|besides (?:the|my|that))(?![a-z])")

# A chronic condition given as context ("我有高血压", "diabetic here", "i have asthma"): the
# question is about something else when the rest of the message names another topic.
_CONDITIONS_ZH = (r"高血压|血压高|糖尿病|血糖高|哮喘|甲减|甲亢|甲状腺\w{0,2}|乙肝|丙肝|心脏病|冠心病|类风湿性?(?:关节炎)?|关节炎|痛风|肾病|"
                  r"慢阻肺|癫痫|贫血|高血脂|血脂高|偏头痛|胃病|鼻炎|抑郁症|焦虑症|类风湿|红斑狼疮|多囊")
_CONDITIONS_EN = (r"(?:type [12] )?diabet(?:es|ic)|type [12]|t[12]d|asthma|asthmatic|high blood pressure|"
                  r"hypertension|high bp|heart disease|a heart condition|(?:rheumatoid )?arthritis|crohn'?s|"
                  r"colitis|ibs|copd|an? (?:under|over)active thyroid|(?:hypo|hyper)thyroidism|thyroid issues|gout|"
                  r"epilepsy|an(?:a)?emia|high cholesterol|migraines|kidney disease|pcos|lupus|eczema|depression")
CONDITION = re.compile(
    r"(?:(?:我|本人|自己|我本身)(?:是|有|一直有|患有|得了|确诊了?|查出(?:来)?了?)?|(?<![\u4e00-\u9fff])(?:有|患有|得了))"
    r"(?:[一二两三四五六七八九十几多\d]+年(?:的)?)?(?P<zh>" + _CONDITIONS_ZH + r")(?:病)?(?:患者|病人)?"
    r"|(?P<zh2>" + _CONDITIONS_ZH + r")(?:患者|病人|病史|好几年了?|好多年了?|很多年了?|多年|[一二两三四五六七八九十几\d]+年了)"
    r"|(?<![a-z])(?:i have|i've got|ive got|i've had|i got|i'm|im|i am|diagnosed with|living with|as an?|"
    r"(?:as )?(?:someone|somebody|a person|people) with|"
    # an age then the condition ("I'm 52 with type 2 diabetes, never been sporty. What's a realistic exercise routine":
    # the blood-sugar tips before; the session-17 dev set P)
    r"\d{2}(?:\s*(?:yo|y/o|years? old))?,?\s+with|"
    r"being)\s+(?:(?:mild|chronic|bad|severe|controlled)\s+)?(?P<en>" + _CONDITIONS_EN + r")(?![a-z])"
    r"|(?<![a-z])(?P<en2>" + _CONDITIONS_EN + r")\s+here(?![a-z])"
    r"|^(?P<lead>" + _CONDITIONS_ZH + "|" + _CONDITIONS_EN + r")(?:患者|病人)?\s*(?=[,，;；:：-])")  # "type 1 diabetic, how much…"


# A clause that guesses at a cause ("脸上狂爆痘，是不是熬夜熬的", "头好痛，是不是昨晚没睡好", "could it be
# the coffee?"): the complaint before it is what the message is about, not the guess.
CAUSE_GUESS = re.compile(r"(?:^|(?<=[,，;；。.!！?？\s]))(?:是不是|会不会|难道是|可能是|是因为|因为|估计是|"
                         # "am I not drinking enough": a cause guessed as a lack, as "is it because I'm not…" is
                         r"am i (?:just )?not|do i not|have i not been|"
                         r"(?:could|can|would|might) (?:it|this|that) be|is (?:it|this|that) (?:because|from|due)|"
                         r"(?:probably|maybe|perhaps) (?:it'?s|because|from)|because|is it the)(?![a-z])[^,，;；。.!！?？]*")


# A guess put as a question: "会不会是低血糖", "是因为我怀孕了吗", "could it be the dust at work?". A
# statement ("因为昨天摔倒了膝盖肿得很厉害", "because i fell and now my knee is swollen") is news.
_ASKING_LEAD = re.compile(r"^(?:是不是|会不会|难道|(?:could|can|would|might) (?:it|this|that) be|is (?:it|this|that) )")
_ASKS = re.compile(_ASKING_LEAD.pattern + r"|(?:吗|么|嘛|呢|吧)\s*[?？!！.。~]*$|[?？]\s*$")


# A clause that asks: it opens with a question word (after a joiner: "…, but how do I…", "so what
# should I…") or holds a Chinese asking word, or ends the message with a question mark. Read against
# the clauses that tell the context ("night shifts leave me exhausted, how can I quit smoking?",
# "孩子晚上总闹，我整夜睡不好，头一直疼怎么办"): the topic the asking clause names is the question.
_ASKING_WORDS = re.compile(
    r"^(?:(?:but|and|so|then|though|or|anyway)\s+)?(?:how|what|what'?s|when|why|where|which|is it|is that|is there|"
    r"are there|can|could|should|shall|do|does|did|will|would|any|anything|ok to|okay to|is|are|am i)(?![a-z'])"
    # not an indefinite ("什么都不想做", "怎么也睡不着", "哪儿都不想去"): news told, no question
    r"|(?:怎么|怎样|如何|能不能|能否|可不可以|可以吗|要不要|该不该|需不需要|用不用|有没有|为什么|为啥|多少|多久|多长|"
    r"几[次个点小天杯顿]|什么|(?<!为)啥|哪(?:儿|里)?|(?:想|想要|打算|准备)戒)(?![都也])")  # 想戒: the wish is the question  # 吃点啥 asks as 吃点什么 does; 为啥 is a why
_ASKING_MARK = re.compile(r"[吗呢]\s*[?？]*\s*$|[?？]\s*$")
_ASKING_REACH = 4  # clauses from the end looked at for the asking one: a question asked last, then thanks
_ASKING_JOINER = re.compile(r"^(?:(?:but|and|so|then|though|or|anyway)\s+|但是|不过|可是|那么|那|所以)")

# A cause guessed as too little of something ("is it because I don't drink enough?", "是不是水喝得太少了"):
# the lack itself is what is asked about (not drinking enough is dehydration), unlike a cause guessed
# as a habit or an illness ("是不是熬夜熬的", "是不是低血糖"), which asks about the complaint told.
LACK = re.compile(r"太少|少了|不够|不足|缺|(?<![a-z])(?:not enough|enough|too little|not much|hardly any|barely)(?![a-z])")


def asking_clause(text: str, clauses: "_Clauses | None" = None) -> str:
    """The clause of ``text`` that asks, when clauses before it tell the context ("" when the message
    is one clause, or none of its last few clauses asks). A question mark after a comma inside the
    question ("what can I do about my dry, tired eyes?") ends the clause a question word opens."""
    ends = (clauses or _Clauses(text)).ends
    if not ends or ends == [len(text)]:
        return run_on_question(text)
    bounds = [0] + ends
    if ends and ends[-1] < len(text):
        bounds.append(len(text))
    looked, marked = 0, None
    for i in range(len(bounds) - 1, 0, -1):
        clause = text[bounds[i - 1]:bounds[i]].strip()
        if not clause.strip(" ,，.。!！?？;；~"):
            continue
        looked += 1
        if looked > _ASKING_REACH:
            break
        opens = _ASKING_WORDS.search(clause)
        if opens or (marked is None and _ASKING_MARK.search(clause)):
            end = marked if marked is not None and opens else bounds[i]
            if opens or i == 1:
                before = text[:bounds[i - 1]]
                if before.strip(" ,，.。!！?？;；~"):
                    return text[bounds[i - 1]:end].strip()
                # The question asked first, the story after it ("is 3 litres of water a day too much?? my coworker
                # swears by it and yes my headache went away"): a clause a question word opens and a question mark
                # ends, with more told after it, is the question; the telling clauses after it are its context
                asked = text[:end].strip()
                if opens and _ASKING_MARK.search(asked) and text[end:].strip(" ,，.。!！?？;；~"):
                    return asked
                return ""
            marked = bounds[i]  # a mark alone: a question word in the clauses before may open it
    if marked is not None:  # no question word opens it: the marked clause alone
        start = bisect_left(bounds, marked) - 1
        before = text[:bounds[start]]
        return text[bounds[start]:marked].strip() if before.strip(" ,，.。!！?？;；~") else ""
    return ""


# Where a voice-typed or blunt message with no punctuation at all starts asking ("night shift nurse my feet are
# killing me what can i do for my back"): a question opener after the words that tell the context. Only the last
# one counts, and only in one unpunctuated run, so a message is searched once.
_RUN_ON_ASKS = re.compile(r"(?<![a-z'])(?:how (?:do|can|should|much|many|long|often|to|would)|what (?:can|should|do|is|are|would|could|"
                          r"helps|works)|(?:should|can|could|do) i|is (?:it|that|this) (?:ok|okay|safe|normal|bad|fine)|"
                          r"any (?:tips|advice|ideas|way)|anything (?:i can|to)|why (?:do|does|is|am|does)|"
                          r"is there (?:anything|a way|something))(?![a-z'])")


def run_on_question(text: str) -> str:
    """The asking part of an unpunctuated English message whose question comes after words telling the context;
    "" when it opens with its question or has none."""
    last = None
    for last in _RUN_ON_ASKS.finditer(text):
        pass
    if last is None:
        return ""
    if not text[:last.start()].strip():
        # ...or, opening with its question, ends with something added "too" ("how many hours sleep should a 70 yr old
        # get my knees ache at night too"): the question is what comes before the addition
        added = None  # the last "my"/"I've got" before the "too": the first may be the question's own object
        if _ENDS_TOO.search(text):
            for added in _ADDED_TOO.finditer(text, last.end()):
                pass
        return text[:added.start()].strip() if added is not None else ""
    return text[last.start():].strip()


_ENDS_TOO = re.compile(r"(?<![a-z'])(?:too|to|as well|also)\W*$")  # "to": voice typing's "too"
_ADDED_TOO = re.compile(r" (?:(?:and|but|plus|oh and) )?(?:my|i'?ve got|i have|i get|i'?m getting)(?![a-z'])")


def guesses_lack(clause: str) -> bool | None:
    """None when ``clause`` guesses at no cause; else whether the cause it guesses is too little of
    something (LACK)."""
    clause = _ASKING_JOINER.sub("", clause.strip())
    if not CAUSE_GUESS.match(clause):
        return None
    return bool(LACK.search(clause))


def asks_outright(text: str) -> bool:
    """Whether ``text`` opens as a question ("会不会是…", "could it be…"), not only ends like one
    ("因为昨天摔倒了膝盖肿了吧": 吧 there is "I suppose", news told)."""
    return bool(_ASKING_LEAD.match(text.strip()))


def only_guesses_cause(text: str) -> bool:
    """Whether ``text`` is one clause asking whether something caused the complaint ("会不会是低血糖",
    "could it be the dust at work?"): a follow-up about the complaint before it."""
    text = text.strip()
    m = CAUSE_GUESS.match(text)
    return m is not None and not text[m.end():].strip(" ?？!！.。~") and bool(_ASKS.search(text))


class Condition(NamedTuple):
    start: int
    end: int
    name: str  # as the user wrote it ("高血压", "type 2 diabetic")


def conditions(text: str) -> list[Condition]:
    """The chronic conditions ``text`` gives as the user's context, in order."""
    found = []
    for m in CONDITION.finditer(text):
        name = m.group("zh") or m.group("zh2") or m.group("en") or m.group("en2") or m.group("lead")
        found.append(Condition(m.start(), m.end(), name))
    return found


class _Clauses:
    """Where ``text``'s clauses end, found once: every lead-in and aside asks where its clause starts
    or ends, and rescanning the text for each made `candidates` quadratic (a 4,000-char flood of
    "主要是，" took 230 ms an answer, 32,000 chars 15 s; bench/offline --floods)."""

    def __init__(self, text: str):
        self.ends = [m.end() for m in CLAUSE_END.finditer(text)]  # CLAUSE_END matches one character

    def start_before(self, pos: int) -> int:
        """Where the clause holding ``pos`` starts: after the last clause end at or before it."""
        i = bisect_right(self.ends, pos)
        return self.ends[i - 1] if i else 0

    def end_after(self, pos: int) -> int | None:
        """Where the first clause end at or after ``pos`` ends."""
        i = bisect_left(self.ends, pos + 1)
        return self.ends[i] if i < len(self.ends) else None


# "I also have a headache but mainly...": a "but" just before a lead-in belongs to it. Looked for in
# the few characters before the lead-in only (text is normalized: one space at most).
_JOINER = re.compile(r"(?:(?<![a-z])(?:but|and|so|though)|但是|不过|可是|但|而且|就是)\s*$")
_JOINER_REACH = 8


def candidates(text: str) -> list[tuple[str, str]]:
    """(kind, text) readings of ``text`` to try before the whole message, best first (none when it
    marks no passing mention or condition):

    - "condition": the message (or its main question) without the conditions it gives as context
      ("我有高血压好几年了，想开始跑步" -> "，想开始跑步");
    - "focus": the main question after the last lead-in or aside ("…，主要想问一下老是胃胀气" ->
      "一下老是胃胀气");
    - "aside": the message without the clause a lead-in sets aside (what is around it may name the
      topic: "my bp was 150/95, i also have a headache but mainly worried about the number");
    - "asks": the clause that asks, when clauses before it tell the context ("跑长途货车，天天累得要命，
      怎么才能把烟戒掉" -> "怎么才能把烟戒掉"; Guide.main_reading weighs it);
    - "cause": the message without a clause guessing at a cause ("脸上爆痘，是不是熬夜熬的").
    """
    found = []
    focus_at, dropped = None, None
    clauses = _Clauses(text)
    for m in LEAD_IN.finditer(text):
        focus_at = m.end()
        joiner = _JOINER.search(text, max(0, m.start() - _JOINER_REACH), m.start())
        end = m.start() if joiner is None else joiner.start()
        clause = clauses.start_before(end)
        if not text[clause:end].strip():  # the lead-in opens its clause: the one before is set aside
            end = clause
            clause = clauses.start_before(max(0, clause - 1))
        dropped = (clause, end)
    for m in ASIDE.finditer(text):
        end = clauses.end_after(m.end())
        if end is not None and (focus_at is None or end > focus_at):
            focus_at, dropped = end, None
        elif focus_at is not None and m.start() < focus_at:
            dropped = None  # an aside before the lead-in set aside everything before it already
    if focus_at is not None:
        focus = text[focus_at:].strip(" ,，.。:：;；")
        if focus:
            found.append(("focus", focus))
        if dropped and text[dropped[0]:dropped[1]].strip(" ,，.。:：;；"):
            found.append(("aside", (text[:dropped[0]] + " " + text[dropped[1]:]).strip()))
    if not found:
        asked = asking_clause(text, clauses)
        if asked:
            found.append(("asks", asked))
        rest = CAUSE_GUESS.sub(lambda m: " " * len(m.group()), text)
        if rest != text and rest.strip(" ,，.。!！?？"):
            found.append(("cause", rest))
    # The conditions are read out of the message (or its main question), never out of the asking clause
    # alone: "我有高血压，能跑步吗" keeps the condition's caution
    base = next((part for kind, part in found if kind != "asks"), text)
    given = conditions(base)
    if given:
        # spaces keep the other words' places (negation looks back); one join, not a copy per condition
        pieces, at = [], 0
        for c in given:
            pieces += [base[at:c.start], " " * (c.end - c.start)]
            at = c.end
        rest = "".join(pieces) + base[at:]
        if rest.strip(" ,，.。!！?？"):
            found.insert(0, ("condition", rest))
    return found
