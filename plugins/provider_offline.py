"""The ``offline`` provider: a rule-based companion that needs no key and no network.

The shipped config.yaml answers with it, so a fresh install has someone to talk to. It is not
a model and not an echo. For each message it:

- answers in the user's language (Chinese if the message has Chinese characters, else English);
- adds a safety note first when the message mentions a red-flag symptom or self-harm (unless
  the safety plugin's note is already shown above the reply: the turn's ``notes_shown`` flag);
- reflects the feelings it notices back in its own words ("最近工作压力好大" -> "听起来最近
  工作让你感到压力大"), with a warm line and a question, as a good listener would;
- answers everyday health topics from prompts/offline_tips.yaml, a file users edit (re-read
  when it changes), without repeating the tip it gave last time: a symptom outranks an activity
  ("跑步后膝盖疼" is about the knee), negated words do not count, and a follow-up stays on the topic
  the session's last tip was about when it has none of its own ("要不要冰敷", "should I ice it?") or
  its words name another topic it does not make clear ("眼睛也痒" after hay fever), and moves on
  when it says it changes the subject or is plainly about something else;
- answers the main question, not a symptom mentioned in passing ("最近有点咳嗽，不过这个不急，主要想问…",
  "…but what's really bugging me is…") nor a long-term condition given as context ("type 2 diabetic
  here, want to start working out": exercise, with a word on the condition) nor a guessed cause
  ("脸上爆痘，是不是熬夜熬的"): plugins/_main_question.py picks the parts to read first;
- adds a caution for a special group (pregnancy, children, older people) whenever the message or
  the session mentions one, on top of whatever topic answers;
- says once per session, in one short sentence, that its answers come from a local guide (how
  to connect a model is for the operator: `check`, the startup log and /test/health say it).

Choices between wordings are made from a hash of the message, so a reply is the same for the
same conversation (stable tests) but varies from message to message.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import logging
import re
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import NamedTuple

from wellmate import Provider, Setting, hookimpl
from wellmate_plugins._files import WatchedYaml, data_file_candidates, stop_if_unusable
from wellmate_plugins._gate import Gate
from wellmate_plugins._main_question import asks_outright, candidates, conditions, guesses_lack, only_guesses_cause
from wellmate_plugins._reply_emotion import thanks_only
from wellmate_plugins._cautions import CautionFile
from wellmate_plugins._own_records import asked_of_records
from wellmate_plugins._record_grades import glucose_lines_text
from wellmate_plugins._text import CLAUSE_END, OTHER_PERSON, Terms, TypoIndex, clause_before, normalize
from wellmate_plugins._safety_text import both_languages, fill, number_settings, numbers

log = logging.getLogger("wellmate.provider_offline")


@hookimpl
def register_providers(register):
    register("offline", OfflineProvider)


@hookimpl
def config_schema():
    # The numbers are the safety plugin's keys (safety.hotlines, safety.emergency). Declared here
    # too, the same Settings, so that with `safety` in plugins.disabled the companion's fallback
    # crisis note still reads them from config.yaml instead of a number written into this file.
    return {"safety": number_settings()}


def safety_numbers(wm, lang: str) -> dict:
    """{hotlines}, {emergency} and {first_emergency} for the notes, from config.yaml (the safety
    plugin's defaults where there is no Wellmate, as in a test that builds the provider alone)."""
    return numbers((getattr(wm, "config", None) or {}).get("safety") or {}, lang)


@hookimpl
def cli(subparsers, wm_factory):
    parser = subparsers.add_parser(
        "train-topics", help="retrain the offline companion's topic model and print its accuracy on the held split",
        description="Retrain the topic model of the offline provider on models/training/offline_topics*.tsv and the earlier "
                    "sessions' offline sets (DEV_SETS, tests/data/heldout/offline_*.tsv), all but the held eighth of the rows; "
                    "write it to providers.<offline>.topic_model and print its accuracy on the held rows.")
    from wellmate_plugins._textmodel import add_training_arguments

    add_training_arguments(parser, out_default="the offline provider's topic_model", epochs=TOPIC_EPOCHS, l2=TOPIC_L2)
    parser.add_argument("--no-dev-sets", action="store_true",
                        help="do not learn from the earlier sessions' offline sets (DEV_SETS, tests/data/heldout)")
    parser.add_argument("--follow-ups", choices=FOLLOW_UP_WAYS, default=FOLLOW_UPS,
                        help="how a dev set's follow-up row is learnt (bench/offline_folds --follow-ups compares them)")
    parser.add_argument("--runs", type=int, default=TOPIC_RUNS,
                        help="train this many times, the rows in a different order each time, and keep the mean")
    parser.set_defaults(func=lambda args: train_topics(wm_factory, args))


# How train-topics trains (bench/offline_folds trains each fold the same way).
TOPIC_EPOCHS, TOPIC_L2, TOPIC_MIN_COUNT = 20, 1e-4, 2
TOPIC_RUNS = 1


def fit_topics(rows: list[dict], *, epochs: int = TOPIC_EPOCHS, l2: float = TOPIC_L2, runs: int = TOPIC_RUNS,
               order: str = "text"):
    """The topic model trained on the train split of ``rows`` (of `topic_rows`), as train-topics trains it.
    ``order`` "text" (train-topics): the rows sorted by text and each epoch's order drawn from each row's own
    text (`train` shuffle="text"), so the model depends on which rows there are, not on the order the files
    list them in, and a row added moves no other row's place; "given": the rows as listed, shuffled by the
    seed as before session 19 (bench/offline_folds --stability measures both)."""
    from wellmate_plugins._textmodel import train

    train_rows = [(r["text"], r["label"]) for r in rows if r["split"] == "train"]
    if order == "text":
        train_rows.sort()
    if not train_rows:
        raise ValueError("no rows to train on")
    return train(train_rows, epochs=epochs, l2=l2, seed=0, min_count=TOPIC_MIN_COUNT, buckets=TOPIC_BUCKETS, runs=runs,
                 shuffle="text" if order == "text" else "seed")


# The offline sets of earlier sessions (tests/data/heldout/offline_*.tsv), each written by another person who
# saw neither the code nor the training rows, columns `topic lang text follows`: the topic model learns them (their
# train split; the held eighth is never learnt), as the crisis classifier learns its sets (plugins/safety.py
# DEV_SETS; T and U since session 20, V and W since session 21). Before session 19 it learnt only models/training/offline_topics*.tsv, written by a few people.
# bench/offline_folds --by-set N measures what that buys a writer it never learnt (leave-writer-out).
DEV_SETS = tuple(f"tests/data/heldout/offline_{name}.tsv" for name in "ABCDEFGHIJKLNORSTUVW")
DEV_SET_NAMES = frozenset(Path(name).name for name in DEV_SETS)

# A follow-up row ("那明天还能走路去上班吗" after a sprained ankle) is on the session's topic, which its own words
# may not say: "joined" learns it with the line it follows before it (the words the topic comes from), "alone" as it
# is, "skip" not at all. Chosen by bench/offline_folds --by-set (docs/models.md).
FOLLOW_UP_WAYS = ("skip", "joined", "alone")
FOLLOW_UPS = "skip"


def dev_set_files() -> list[Path]:
    """The DEV_SETS shipped with Wellmate that exist."""
    from wellmate import HERE

    return [HERE / name for name in DEV_SETS if (HERE / name).exists()]


def dev_set_rows(paths, follow_ups: str = FOLLOW_UPS) -> list[dict]:
    """The rows of offline question files (``topic lang text follows``) as `read_rows` gives training rows: label,
    text, split (the same hash split), file; a follow-up learnt as ``follow_ups`` says (FOLLOW_UP_WAYS)."""
    from wellmate_plugins._files import read_table
    from wellmate_plugins._textmodel import split_of

    if follow_ups not in FOLLOW_UP_WAYS:
        raise ValueError(f"follow_ups: one of {', '.join(FOLLOW_UP_WAYS)}")
    rows = []
    for path in paths:
        path = Path(path)
        for row in read_table(path):
            text, label, follows = (row.get("text") or "").strip(), (row.get("topic") or "").strip(), (row.get("follows") or "").strip()
            if not text or not label:
                raise ValueError(f"{path}: a row without topic or text")
            if follows:
                if follow_ups == "skip":
                    continue
                if follow_ups == "joined":
                    text = follows + "\n" + text
            # the split of the row's own words, so a follow-up joined or not keeps the same one
            rows.append({"label": label, "text": text, "kind": "follow-up" if follows else "", "file": path.name,
                         "split": split_of(row["text"].strip())})
    return rows


def copy_key(text: str) -> str:
    """A text with case, spaces and punctuation aside: what makes a training row a copy of a dev set's."""
    return re.sub(r"[\W_]+", "", text.lower())


def leave_sets_out(rows: list[dict], held: set[str]) -> tuple[list[dict], list[dict]]:
    """``rows`` cut for writers the model never learnt (bench/offline_folds --by-set): (the rows to learn from: none
    of the files in ``held``, and a training file's row that is a copy of one of theirs is "copy", not "train";
    the rows of the ``held`` files)."""
    measured = [r for r in rows if r["file"] in held]
    copied = {copy_key(r["text"]) for r in measured}
    learn = [dict(r, split="copy") if r["file"] not in DEV_SET_NAMES and r["split"] == "train" and copy_key(r["text"]) in copied
             else r for r in rows if r["file"] not in held]
    return learn, measured


def topic_rows(wm, data=None, dev_sets: bool = True, follow_ups: str = FOLLOW_UPS) -> tuple[list[dict], list[Path], list[Path]]:
    """(the rows train-topics learns, the training files, the dev sets): ``data`` or the training files
    (`topic_training_files`), and the DEV_SETS unless ``data`` is given or ``dev_sets`` is false."""
    from wellmate_plugins._textmodel import read_rows

    paths = [Path(p) for p in data] if data else topic_training_files(wm)
    dev = [] if data or not dev_sets else dev_set_files()
    return read_rows(paths) + dev_set_rows(dev, follow_ups), paths, dev


def train_topics(wm_factory, args) -> int:
    """`python wellmate.py train-topics`: train on the train split, save, print held accuracy per language."""
    wm = wm_factory()
    try:
        offline = next((name for name, conf in wm.config["providers"].items() if conf.get("plugin") == "offline"), None)
        chat = wm.service("chat")
        provider = chat.provider(offline) if chat and offline else None
        if provider and stop_if_unusable(provider.tips_file, "which topics there are"):
            return 1
        guide = provider.tips_file.get() if provider else None
        try:
            rows, paths, dev = topic_rows(wm, args.data, not args.no_dev_sets, args.follow_ups)
        except (OSError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        unknown = sorted({r["label"] for r in rows} - set(guide or ()) - {NO_TOPIC})
        if guide is not None and unknown:
            print(f"error: labels that are no topic of the tips file: {', '.join(unknown)}", file=sys.stderr)
            return 1
        held = [r for r in rows if r["split"] == "held"]
        try:
            model = fit_topics(rows, epochs=args.epochs, l2=args.l2, runs=args.runs)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        train_rows = sum(r["split"] == "train" for r in rows)
        configured = (provider.config["topic_model"] if provider else "") or "models/offline_topics.json"
        out = Path(args.out) if args.out else data_file_candidates(wm, configured)[0]
        size = model.save(out, meta={"trained_on": [p.name for p in paths], "dev_sets": [p.name for p in dev],
                                     "follow_ups": args.follow_ups, "train_rows": train_rows, "held_rows": len(held)})
        print(f"trained on {train_rows} rows of {', '.join(p.name for p in paths)}; wrote {out} ({size // 1024} KB)")
        if dev:
            print(f"learnt the dev sets too ({sum(r['file'] in DEV_SET_NAMES and r['split'] == 'train' for r in rows)} rows, "
                  f"follow-ups {args.follow_ups}): {', '.join(p.name for p in dev)}")
        confidence = provider.config["topic_confidence"] if provider else 0.35
        for lang in ("all", "zh", "en"):
            rows_ = [r for r in held if lang == "all" or ("zh" if _CJK.search(r["text"]) else "en") == lang]
            if not rows_:
                continue
            guesses = [(model.predict(r["text"]), r["label"]) for r in rows_]
            right = sum(label == want for (label, _), want in guesses)
            sure = [(label == want) for (label, p), want in guesses if p >= confidence]
            print(f"held split, {lang}: {right}/{len(rows_)} right ({100 * right / len(rows_):.1f}%); "
                  f"at confidence >= {confidence:g} it answers {len(sure)} ({100 * len(sure) / len(rows_):.0f}%), "
                  f"{100 * sum(sure) / max(1, len(sure)):.1f}% of them right")
        if len(paths) > 1 or dev:  # a file's held rows alone: a new file's rows must not be bought with the others'
            for path in paths:
                rows_ = [r for r in held if r["file"] == path.name]
                right = sum(model.predict(r["text"])[0] == r["label"] for r in rows_)
                print(f"held split of {path.name}: {right}/{len(rows_)} right ({100 * right / max(1, len(rows_)):.1f}%)")
            if dev:
                rows_ = [r for r in held if r["file"] in DEV_SET_NAMES]
                right = sum(model.predict(r["text"])[0] == r["label"] for r in rows_)
                print(f"held split of the dev sets: {right}/{len(rows_)} right ({100 * right / max(1, len(rows_)):.1f}%)")
        return 0
    finally:
        wm.close()


# The topic model's label for a message that is no health question at all ("what gift for my sister's new baby",
# "我想把这个bug干掉"): no topic of the tips file, so no tip; and a child or an elder it names brings no caution
# (Composer.compose). Before it the model gave such messages whatever topic was nearest (a bug at work got the
# diarrhoea tip at 0.57; a baby's gift the child's fever caution: the session-18 audit).
NO_TOPIC = "none"


def topic_training_files(wm) -> list[Path]:
    """models/training/offline_topics.tsv and the numbered files beside it (offline_topics_2.tsv, ...):
    helpers each write rows to a file of their own, so no two edit the same one; the first folder
    (next to config.yaml, then the shipped one) that holds any of them."""
    candidates = data_file_candidates(wm, TOPIC_TRAINING)
    for first in candidates:
        found = sorted(first.parent.glob("offline_topics*.tsv"))
        if found:
            return found
    return candidates[:1]


_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


# 别 is "don't" on its own, not in 特别 (very: "我心里特别累" is tired, not denied), 分别, 区别, 告别...
_NEGATION = re.compile(r"(?:不再|再也不|再也没有?|不|没有|没|(?<![特分区告识级类性个差离辨])别|并非|(?<![a-z])(?:no longer|not|no|never|cannot)|n't)\s*"
                       r"(?:是|太|很|那么|怎么|觉得|感到|感觉|刻意|故意|特意|有意|出现|任何|(?<![a-z])(?:really|very|so|too|that|feel|feeling|felt"
                       r"|having|experiencing|getting|any|have|has|had|a|an)|\s)*$")  # "I'm not having chest pain" (an outside audit)
# ...nor "she doesn't have a fever though" (offline_E: an elder's follow-up read as a cold once her session moves on)


# A clause that opens with 不容易 before the keyword (so as not to get sleepy): a purpose after a question; not
# "我怎么减都不容易瘦下来" (it is hard to), where 不容易 follows other words of its clause
_PURPOSE = re.compile(r"\s*(?:才|就|又|也)?不(?:太)?容易\s*$")
_A_NOT_A = re.compile(r"([\u4e00-\u9fff])[不没]\1\s*$")


NEGATION_REACH = 32  # characters: more than the 12 of its clause that `negated` reads


def negated(text: str, start: int) -> bool:
    """Whether the words just before ``start`` (in the same clause) negate it: 不难过, not sad."""
    # Only the last NEGATION_REACH characters (the same answer: the clause's end is all it reads); a
    # search back to the text's start for every keyword made a long message quadratic (4,000 chars
    # of "头痛，": 180 ms an answer; bench/offline --floods).
    clause = clause_before(text, start, NEGATION_REACH)
    if _A_NOT_A.search(clause):  # 是不是过敏了, 有没有胸痛: a question, not a denial
        return False
    if _PURPOSE.match(clause):  # "吃什么比较好，不容易犯困？": a goal the question is for, no complaint told
        return True
    tail = clause[-12:]
    found = _NEGATION.search(tail)
    # A negation a "how" governs is what the user wishes for, not a denial: "怎么才能不那么孤单",
    # "how can I not feel so anxious" ask about the loneliness, the worry
    return found is not None and not _WISHED.search(clause[:len(clause) - len(tail) + found.start()])


_WISHED = re.compile(r"(?:怎么|怎样|如何|咋)(?:样)?(?:才能|才可以|才|能|可以|让自己|让我)?\s*$|"
                     r"(?<![a-z])how (?:do|can|could|should|would) i\s*$")


# Looser: a negation anywhere earlier in the clause, or "anymore" after the word ("焦虑的感觉已经
#不再有了", "the worry isn't there anymore"); used only where the emotion tagger reads the message
# as calm, to take away a worry the words deny.
_NEGATION_WORD = re.compile(r"不再|再也不|不|没有|没|并非|(?<![a-z])(?:no longer|not|no|never)(?![a-z])|n't")
_NEGATED_AFTER = re.compile(r"[^,.;!?，。；！？]*?(?:(?<![a-z])(?:any ?more|no more|(?:is|are|has|have) (?:all )?gone)(?![a-z])"
                            r"|消失了|没有了|不见了|好多了)")


def loosely_negated(text: str, start: int, end: int) -> bool:
    before = text[:start]
    clause = before[max((m.end() for m in CLAUSE_END.finditer(before)), default=0):]
    return bool(_NEGATION_WORD.search(clause) or _NEGATED_AFTER.match(text, end))


# Whose feeling a word is: the person named last before it. "my 2 year old ... is very sleepy", "我妈
# 最近总是很累" are someone else's symptoms, not the user's feelings; "my son is sick and I'm
# exhausted" is the user's. (Who another person is: `_text.OTHER_PERSON`, which the records' question reader
# reads too.)
FIRST_PERSON = re.compile(r"(?<![a-z])(?:i|i'm|i've|i'd|i'll|im|me|myself)(?![a-z'])"
                          r"|我(?!的|家|们|儿子|女儿|妈|爸|老公|老婆|孩子|爷|奶|外公|外婆|姥|宝宝|朋友|同事|男|女|对象|室友)")
BODILY = {"tired", "unwell"}  # feelings that are also symptoms, so may be another person's across clauses


# How far back a feeling's person is looked for: a few sentences. Read from the message's start, a text of many
# feeling words cost the square of its length ("my dad is so tired " x 5,000: 153 s; the review R19).
PERSON_REACH = 400  # characters


def someone_elses(text: str, start: int, feeling: str) -> bool:
    """Whether the feeling word at ``start`` describes someone else rather than the user."""
    reach = max(0, start - PERSON_REACH)
    before = text[reach:start]
    clause = before[max((m.end() for m in CLAUSE_END.finditer(before)), default=0):]
    for scope in ([clause, before] if feeling in BODILY else [clause]):
        offset = reach + len(before) - len(scope)
        # (a person the user acts on, named in passing, is no one the feeling is of: 带孩子累死了; session 19)
        last = max([(m.start(), "other") for m in OTHER_PERSON.finditer(scope)
                    if not in_passing(text, offset + m.start(), m.group())] +
                   [(m.start(), "self") for m in FIRST_PERSON.finditer(scope)], default=None)
        if last is not None:
            return last[1] == "other"
    return False


SUBJECT_REACH = 12  # characters: "lately my son...", "最近我妈妈..."; not "been low since he left"


def only_someone_else(text: str) -> bool:
    """Whether ``text`` speaks of someone else and never of the user: it opens with another person
    ("我妈妈最近记性越来越差", "儿子最近总是闷闷不乐", "my teenage daughter seems withdrawn lately") and has no
    I or me. A feeling the emotion tagger reads in it is theirs, not the user's. Chinese leaves the
    user out ("刚退休，每天在家…，跟以前同事也联系少了" is the user's own), hence the opening."""
    other = OTHER_PERSON.search(text, 0, SUBJECT_REACH + 30)
    # ...not one the user acts on, named in passing (带孩子累死了, "worn out from chasing my toddler": the user's own
    # tiredness, whose tips are the user's; session 19, when tiredness got tips for someone else's)
    if other is not None and in_passing(text, other.start(), other.group()):
        return False
    return other is not None and other.start() <= SUBJECT_REACH and not FIRST_PERSON.search(text)


# The user asking how to be there for another person ("how can I help him", "我该怎么安慰她", "我能为他做点
# 什么"): the user is the helper, so "I" in the question does not make a feeling theirs. Naming whom to
# help is enough ("I'm worried about my daughter ... how can I help her?" asks for her); "what can I
# do?", "我能做点什么" only where the feelings named are all someone else's (Composer.for_another).
HELPING_THEM = re.compile(
    r"(?<![a-z])(?:help|support|comfort|cheer|be there for|encourage|reassure|calm)\s+(?:him|her|them)(?![a-z])"
    r"|(?:安慰|开导|劝劝|劝|帮帮|帮|陪陪|陪|支持|鼓励|照顾)(?:一下)?(?:他|她|他们|她们)|(?:为|帮|给)(?:他|她|他们|她们)做(?:点|些)什么")
HELPING = re.compile(
    r"(?<![a-z])(?:how (?:can|do|should|could) (?:i|we) (?:best )?|what can (?:i|we) do to |ways to |how to )"
    r"(?:help|support|comfort|cheer up|be there)(?![a-z])"
    r"|(?<![a-z])what (?:can|should|could) (?:i|we) (?:do|say)(?![a-z])"
    r"|怎么(?:样才能|才能|去)?(?:安慰|帮|开导|劝|陪|支持|鼓励)|(?:能|可以|该|应该)做(?:点|些)什么")
# ...unless the feeling is the user's, caused by them ("my kids stress me out", "老公气得我…").
AFFECTS_ME = re.compile(r"(?<![a-z])(?:me|myself|us)(?![a-z])|让我|把我|弄得我|搞得我|害我|气得我|逼得我")


def helps_someone(text: str, named: bool = True) -> bool:
    """Whether ``text`` speaks of another person and asks how to help them (``named``: them by name
    or pronoun; else any "what can I do?" counts) without saying it is the user who is affected."""
    if OTHER_PERSON.search(text) is None or AFFECTS_ME.search(text):
        return False
    return HELPING_THEM.search(text) is not None or (not named and HELPING.search(text) is not None)


# A thing that broke or died ("my phone died", "the car battery died", "手机没电了"): a mishap, not a
# low mood the tagger may read into "died".
MISHAP = re.compile(r"(?<![a-z])(?:phone|battery|laptop|computer|pc|car|engine|tv|wifi|internet|router|printer|charger|"
                    r"headphones|earbuds|screen|app|game|plant|fridge|call|console|watch|torch|bulb)s?\s+"
                    r"(?:just\s+|suddenly\s+|completely\s+)?(?:died|dead|is dead|went dead|broke|is broken|crashed|"
                    r"froze|stopped working|gave up|gave out|cut out|dropped)(?![a-z])"
                    r"|(?:手机|电脑|电池|车|网|电视|路由器|打印机|耳机|屏幕|游戏|电话|充电器)(?:突然|又|直接)?"
                    r"(?:没电|坏了|死机|黑屏|卡死|断了|掉线|没信号)"
                    # ...or is about to: "我的手机快没电了，要死机了", "my laptop battery is dying" (a device's, not the user's
                    # tiredness: the session-19 audit A20)
                    r"|(?:手机|电脑|电池|电量|平板|笔记本|充电宝)[^。！？!?]{0,12}?(?:快|快要|就要|马上|要)(?:没电|关机|死机|耗光|用完)"
                    r"|(?<![a-z])(?:phone|battery|laptop|tablet|computer|pc|charger|power bank)(?:'s|\s+is)?\s+(?:almost\s+|nearly\s+|about\s+to\s+)?"
                    r"(?:dying|die|dead|flat|running (?:out|low))(?![a-z])")

# A task's difficulty said as a death or killing ("这道数学题真是要了我的命", "这道物理题把我难死了", "this crossword is
# killing me"): no feeling the tagger reads into the idiom is the user's tiredness or anger to answer with a health tip
# (tiredness and "去医院做个检查" in the session-19 audit A20). Bounded: a dozen characters between the task and the idiom.
TASK_IDIOM = re.compile(r"(?:题|作业|论文|报告|代码|程序|拼图|关卡|数独|填字|谜题|公式)[^。！？!?]{0,12}?(?:要了我的命|要我的命|要我命|难死|愁死)"
                        r"|(?<![a-z])(?:crossword|puzzle|sudoku|homework|assignment|essay|code|bug|level|maths?|physics|equation|problem set)"
                        r"(?![a-z])[^.!?]{0,20}?(?:is (?:killing|murdering) me|will be the death of me|is the death of me)(?![a-z])")


# What a thing eats that is no food: a machine's or a budget's resource ("a process eating all my CPU", "eats up my data")
EATS_A_RESOURCE = re.compile(r"\s+(?:up\s+)?(?:all\s+|so\s+much\s+|most\s+of\s+|half\s+|through\s+)?(?:of\s+)?(?:my|the|your|our|his|her)?\s*"
                             r"(?:cpu|memory|ram|battery|data|disk|storage|space|bandwidth|gpu|ssd|budget|savings|credits?)(?![a-z])")


# Death as a figure of speech ("I nearly died laughing", "I'm dying to see it", "bored to death", "笑死我了"):
# no loss, so no grief tips (the topic model learnt "died" from its grief rows: _guess).
FIGURATIVE_DEATH = re.compile(r"(?<![a-z])(?:(?:died|dying|die|dead)\s+(?:of\s+|from\s+|with\s+)?(?:laugh\w*|embarrassment|"
                              r"boredom|shame|cringe|cuteness)|dying (?:to|for)|to die for|(?:bored|scared|worried|freezing|"
                              r"frozen|loved?)\s+to death|dead (?:tired|on my feet|beat|serious|good|easy)|"
                              r"(?:killing|killed) it)(?![a-z])|笑死|笑得要死|笑得半死|羡慕死|乐死|美死|帅死|萌死|可爱死")


def _hash(*parts: str) -> int:
    return int(hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:12], 16)


def pick(options, seed: str, said: str = ""):
    """One of ``options`` chosen by ``seed``, preferring one not already in ``said`` (the recent
    replies), so the same tip or phrase does not come twice in a row."""
    start = _hash(seed) % len(options)
    for i in range(len(options)):
        option = options[(start + i) % len(options)]
        if option not in said:
            return option
    return options[start]


# ---------------------------------------------------------------------------------------------
# The tips file
# ---------------------------------------------------------------------------------------------


def _number(value, where: str, default=None):
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        log.warning("tips file: %s is not a whole number (%r); ignored", where, value)
        return default


# English forms the word matcher's plain -s/-ed/-ing endings miss: "exercise" -> "exercising",
# "worry" -> "worried", "jog" -> "jogging", and the verb of a phrase: "work out" -> "worked out",
# "lose weight" -> "lost weight". Irregular pasts of the verbs the tips file's phrases start with.
IRREGULAR = {"lose": ["lost", "losing"], "put": ["putting"], "feel": ["felt", "feeling"], "sleep": ["slept", "sleeping"],
             "get": ["got", "getting"], "throw": ["threw", "thrown", "throwing"], "run": ["ran", "running"],
             "eat": ["ate", "eaten", "eating"], "drink": ["drank", "drunk", "drinking"], "sit": ["sat", "sitting"],
             "fall": ["fell", "fallen", "falling"], "wake": ["woke", "woken", "waking"], "keep": ["kept", "keeping"],
             "lie": ["lay", "lying"], "can't": ["couldn't", "cannot"]}
_CVC = re.compile(r"(?:^|[^aeiou])[aeiou]([bdgmnpt])$")


def verb_forms(verb: str) -> list[str]:
    """Forms of an English verb beyond the +s/+ed/+ing the matcher adds by itself (none for most)."""
    if verb in IRREGULAR:
        return IRREGULAR[verb]
    if len(verb) > 3 and verb.endswith("e") and not verb.endswith("ee"):
        return [verb[:-1] + "ing", verb + "d"]
    if len(verb) > 2 and verb.endswith("y") and verb[-2] not in "aeiou":
        return [verb[:-1] + "ies", verb[:-1] + "ied"]
    if len(verb) <= 4 and _CVC.search(verb):
        return [verb + verb[-1] + "ing", verb + verb[-1] + "ed"]
    return []


def inflections(word: str) -> list[str]:
    """``word`` and the forms of it the matcher should also find: a single English word inflected
    itself, a phrase by its first word ("work out" -> "worked out", "works out")."""
    if not re.fullmatch(r"[a-z][a-z' -]*", word):
        return [word]
    first, _, rest = word.partition(" ")
    if not rest:
        return [word, *verb_forms(word)]
    forms = verb_forms(first) or [first + "ed", first + "ing"]
    return list(dict.fromkeys([word, *(f"{form} {rest}" for form in [first + "s", *forms])]))


class Topic:
    def __init__(self, key: str, spec: dict):
        self.key = key
        title = spec.get("title") or {}
        self.title = {"zh": str(title.get("zh") or key), "en": str(title.get("en") or key)}
        keywords = spec.get("keywords") or {}
        self.keywords = [normalize(w) for w in [*(keywords.get("zh") or []), *(keywords.get("en") or [])] if normalize(w)]
        # ...and each form with its apostrophes dropped, as blunt and voice-typed messages write them ("cant get
        # to sleep", "im on my own", "dont know anyone"): the typo fixer mends only single words of six letters
        self.words = list(dict.fromkeys(variant for word in self.keywords for form in inflections(word)
                                        for variant in (form, form.replace("'", "")) if variant.strip()))
        # Keywords a list cannot spell, as patterns on the lower-cased message: a person or pet said to
        # have gone a few characters on ("我爸上个月走了"), which a fixed word would take from 走了一万步 too.
        try:
            self.patterns = [re.compile(str(p)) for p in spec.get("patterns") or ()]
        except re.error as e:
            raise ValueError(f"topics.{key}.patterns: {e}") from e
        # Patterns read on the whole message that decide its topic over any clause's reading (Guide.main_reading): what
        # needs two things said anywhere in it, a blood thinner and an NSAID ("My father takes warfarin. Can he take
        # ibuprofen for knee pain?": the asking clause alone is the knee's; audit A20, session 19).
        try:
            self.whole_patterns = [re.compile(str(p)) for p in spec.get("whole_patterns") or ()]
        except re.error as e:
            raise ValueError(f"topics.{key}.whole_patterns: {e}") from e
        # A topic whose tips are about medicines (`medicines`): they are the answer, and are not left out while a group is
        # mentioned (a 75-year-old's aspirin with ibuprofen got the elder's own tip and no word of bleeding: session 19)
        self.about_medicines = bool(spec.get("about_medicines"))
        tips = spec.get("tips") or {}
        # A tip may be {when: [words], text: ...}: given only to a message with one of the words, so
        # a weight-gain tip never answers "我想减肥"; or {about: someone_else, text: ...}: given only to
        # a message about someone else ("my teenage daughter seems withdrawn lately"), instead of the others.
        # {when: [...], first: true}: given before the topic's other tips whose words the message has too (a hip
        # that hurts after a fall is a possible fracture, before the tip on preventing falls).
        # {when: [...], also: [words]}: only to a message that has one of the `also` words too (a medicine asked of while
        # breastfeeding is not the pregnancy's medicine rule: session 21).
        self.tips, self.tip_when, self.tip_also, self.for_others, self.tips_first = {}, {}, {}, set(), set()
        for lang in ("zh", "en"):
            self.tips[lang] = []
            for tip in tips.get(lang) or []:
                text = str(tip.get("text") if isinstance(tip, dict) else tip).strip()
                if not text or text == "None":
                    continue
                self.tips[lang].append(text)
                if isinstance(tip, dict) and tip.get("when"):
                    self.tip_when[text] = [normalize(w) for w in tip["when"] if normalize(w)]
                if isinstance(tip, dict) and tip.get("also"):
                    self.tip_also[text] = [normalize(w) for w in tip["also"] if normalize(w)]
                if isinstance(tip, dict) and tip.get("about") == "someone_else":
                    self.for_others.add(text)
                if isinstance(tip, dict) and tip.get("first") is True:
                    self.tips_first.add(text)
        doctor = spec.get("see_doctor") or {}
        self.see_doctor = {lang: str(doctor.get(lang) or "").strip() for lang in ("zh", "en")}
        self.priority = _number(spec.get("priority"), f"{key}.priority", 0)
        # Signs that need a doctor now ({when: [words], zh, en}): said first when the message has one.
        urgent = spec.get("urgent") if isinstance(spec.get("urgent"), dict) else {}
        self.urgent = {lang: str(urgent.get(lang) or "").strip() for lang in ("zh", "en")}
        self.urgent_terms = Terms([w for w in (normalize(str(x)) for x in both_languages(urgent.get("when"))) if w])
        # ...and signs a word alone misreads (patterns): 叫不醒 is a child who cannot be woken, but not
        # in "孩子早上叫不醒，总赖床" (one who will not get up for school).
        try:
            self.urgent_patterns = [re.compile(str(p)) for p in urgent.get("patterns") or ()]
        except re.error as e:
            raise ValueError(f"topics.{key}.urgent.patterns: {e}") from e
        # A special group (pregnancy, children, older people): its keywords name the person, its
        # caution goes with whatever topic answers, its tips replace those of `instead_of`.
        caution = spec.get("caution") or {}
        self.caution = {lang: str(caution.get(lang) or "").strip() for lang in ("zh", "en")}
        self.is_group = any(self.caution.values())
        # A caution for part of the group, said instead when the message naming the group has one of
        # its words ({when: [words], zh, en}): a new mother's is not a pregnant woman's (产后总是想哭).
        self.caution_variants = []
        self.variant_topics = []
        # ...and variants whose part of the group is still the group's own question (`own_question: true`): a newborn's
        # jaundice is the baby's, not the eyes topic's (session 21), where a new mother's periods are the periods'
        self.variants_own = []
        for variant in caution.get("variants") or ():
            if not isinstance(variant, dict):
                variant = {}
            words = [normalize(w) for w in both_languages(variant.get("when")) if normalize(w)]
            texts = {lang: str(variant.get(lang) or "").strip() for lang in ("zh", "en")}
            # ...unless it has one of the variant's `unless` words: a child's vomiting beside a fever keeps the
            # fever's caution (the doses by weight), the gut's is for a tummy bug alone
            unless = [normalize(w) for w in both_languages(variant.get("unless")) if normalize(w)]
            if words and all(texts.values()):
                self.caution_variants.append((words, texts, unless))
                if variant.get("own_question") is True:
                    self.variants_own.append(words)
                # ...and topics that stay the complaint's for that part of the group: a new mother's weight
                # question is the weight topic (with the after-birth caution), a pregnant woman's is the pregnancy's
                self.variant_topics.append((words, {str(k) for k in variant.get("complaint_topics") or ()}))
            else:
                log.warning("tips file: %s.caution.variants: each needs when words, zh and en; one ignored", key)
        ages = spec.get("ages") if isinstance(spec.get("ages"), dict) else {}
        self.age_from = _number(ages.get("from"), f"{key}.ages.from")
        self.age_under = _number(ages.get("under"), f"{key}.ages.under")
        self.instead_of = {str(k) for k in spec.get("instead_of") or ()}
        # A group of persons (children, older people), not a state (pregnancy): a complaint of theirs is
        # the complaint's topic, with the group's caution ("my 6-year-old's cough" is the cough topic);
        # the group is the topic only where its own tips answer (its `instead_of`, its `when` tips, a
        # session its own tips answered). Without it the group is the topic whenever it is named.
        self.complaint_topic = bool(spec.get("complaint_topic"))
        # Whether a follow-up in a session the group's own tips answered stays the group's (a child's fever: "now
        # there's a rash too"), or, false, is the complaint it names (a pregnancy's session, then "I have a cold")
        self.session_stays = spec.get("session_stays") is not False
        # Questions on the group as such (patterns on the lower-cased message that names it): "is it normal at 6
        # weeks?", "could I be pregnant?" are the pregnancy's, whatever complaint they name (`asks_of_itself`)
        try:
            self.own_questions = [re.compile(str(p)) for p in spec.get("own_questions") or ()]
        except re.error as e:
            raise ValueError(f"topics.{key}.own_questions: {e}") from e
        # Topics answered without the caution when the message alone names the group: habits, not illnesses
        self.caution_not_with = {str(k) for k in spec.get("caution_not_with") or ()}

        # Topics that stay the user's own when the group is only mentioned: a parent's temper or
        # stress is not a child's illness ("孩子不听话，气死我了", "the kids are driving me mad").
        self.not_with = {str(k) for k in spec.get("not_with") or ()}
        # Another topic this one gives way to when the message has one of its words ({topic: [words]}): waking
        # early told of a day's sleep after a night shift, or of sleeping in, asks about the sleep's timing
        gives_way = spec.get("gives_way") if isinstance(spec.get("gives_way"), dict) else {}
        self.gives_way = [(str(k), Terms([w for w in (normalize(str(x)) for x in both_languages(v)) if w]))
                          for k, v in gives_way.items()]
        # A word first for news hard to take in (a serious diagnosis, the writer's or a relative's): said before the tip
        # when the message tells it, not when it asks about preventing or the risk (`unless`): "医生说我爸是肺癌晚期" got
        # "这个问题超出了我离线时能回答的范围" with no acknowledgement (the session-19 audit A20)
        acknowledge = spec.get("acknowledge") if isinstance(spec.get("acknowledge"), dict) else {}
        self.acknowledge = {lang: str(acknowledge.get(lang) or "") for lang in ("zh", "en")}
        self.acknowledge_unless = Terms([w for w in (normalize(str(x)) for x in both_languages(acknowledge.get("unless"))) if w])
        # ...and only when the message tells news (`when`: a diagnosis, whose illness it is): "what questions should I ask
        # the oncologist", "化疗一般要做几次" tell none, and got "that's very hard news ... thank you for telling me" (R19)
        when = [w for w in (normalize(str(x)) for x in both_languages(acknowledge.get("when"))) if w]
        self.acknowledge_when = Terms(when) if when else None
        # A habit one quits (smoking, alcohol): "想戒", "how can I quit?" with no object ask about it when the message names it
        self.quit = bool(spec.get("quit"))
        # Keywords whose negation is the complaint itself ("my mind won't switch off", "I can't drop off"): no denial
        self.negated_too = {normalize(str(w)) for w in both_languages(spec.get("negated_too")) if normalize(str(w))}
        # Keywords that name only where the user is (a desk, sitting all day), not what ails them: a topic
        # placed by these alone ranks below another complaint of its priority (Reading), since "sitting at my
        # desk, my heart does this flip-flop thing" asks about the heart, the desk is the setting
        self.setting = {normalize(str(w)) for w in both_languages(spec.get("setting")) if normalize(str(w))}
        # ...except beside a complaint of what the setting itself strains (stiff hips after 9 hours sat down are
        # the sitting's: its tips are the breaks and stretches): the topics it keeps (setting_keeps)
        self.setting_keeps = {str(k) for k in spec.get("setting_keeps") or ()}
        # ...and whether what the topic's patterns find names only the setting too (a drink with a count between,
        # 喝了两杯酒: the alcohol's setting beside palpitations; session 19)
        self.setting_patterns = spec.get("setting_patterns") is True
        # Words that make a message naming the group not about the person's health: a death, a funeral
        # or a memory ("奶奶去世三年了", "how do I explain death to my 5-year-old") brings no caution.
        self.not_when = Terms([w for w in (normalize(str(x)) for x in both_languages(spec.get("not_when"))) if w])
        # Words of an illness the group's person is cared for in (dementia) that keep the group despite `not_when` and
        # `not_with`: a parent long dead asked for by someone with dementia is the illness, not the user's loss (A21:
        # "How do I answer when she asks for her own mother, who died 30 years ago?" got grief tips, then "I'm so sorry
        # for your loss" to the carer's guilt). Such a message is the group's own topic, not grief's.
        self.cared_for = Terms([w for w in (normalize(str(x)) for x in both_languages(spec.get("cared_for"))) if w])
        # Patterns that read a message's only hint of the group another way, so the topic model's guess of
        # the group is refused: "I'm expecting my results next week" is no pregnancy (no keyword named one).
        try:
            self.not_guessed_when = [re.compile(str(p)) for p in spec.get("not_guessed_when") or ()]
        except re.error as e:
            raise ValueError(f"topics.{key}.not_guessed_when: {e}") from e
        # Topics whose library articles answer this one's questions too (sleep and insomnia): both ways.
        self.related = {str(k) for k in spec.get("related") or ()}

    def owns(self, topic, text: str) -> bool:
        """Whether a reply on ``topic`` (a complaint's, or None) for the group named in ``text`` is reported as
        this group's topic: never with `complaint_topic` (the complaint is); else yes, unless the caution
        variant ``text`` calls for lists ``topic`` in its `complaint_topics` (a new mother's weight)."""
        if self.complaint_topic or topic is None:
            return not self.complaint_topic
        for words, keys in self.variant_topics:
            if any(shares(w, text) for w in words):
                return topic.key not in keys
        return True

    def tips_for(self, lang: str, text: str, for_another: bool | None = None, context: str = "") -> list[str]:
        """The tips in ``lang`` for the message ``text`` (normalized): for a message about someone
        else (``for_another``, by default `only_someone_else`), those `about` them; else those whose
        `when` words it has, as they answer it more closely ("I'm too skinny" must not get "eat 300
        kcal less"); else those with no `when` words."""
        tips = self.tips[lang]
        if self.for_others:
            theirs = [tip for tip in tips if tip in self.for_others]
            if theirs and (only_someone_else(text) if for_another is None else for_another):
                return theirs
            tips = [tip for tip in tips if tip not in self.for_others]
        matched = [tip for tip in tips if self._tip_fits(tip, text, context)]
        matched = [tip for tip in matched if tip in self.tips_first] or matched
        return matched or [tip for tip in tips if tip not in self.tip_when]

    def _tip_fits(self, tip: str, text: str, context: str = "") -> bool:
        """Whether ``text`` has one of the tip's `when` words, and one of its `also` words if it has any, in ``text``
        or in ``context`` (the session's messages that named the group: "能吃布洛芬吗" after 坐月子 is a new mother's)."""
        return any(shares(w, text) for w in self.tip_when.get(tip, ())) and \
            (tip not in self.tip_also or any(shares(w, text) or (context and shares(w, context)) for w in self.tip_also[tip]))

    def asks_of_itself(self, text: str) -> bool:
        """Whether ``text`` (a message naming the group) asks about the group as such (`own_questions`): not where it
        names only a part of the group with a caution of its own ("periods came back at 4 months pp, normal??" after
        a birth asks about the periods)."""
        return any(p.search(text) for p in self.own_questions) and \
            not any(any(shares(w, text) for w in words) for words, _, _ in self.caution_variants
                    if not any(words is own for own in self.variants_own))

    def answers_outright(self, lang: str, text: str) -> bool:
        """Whether a tip of this topic in ``lang`` is written for words ``text`` has (`when`): a
        special group's such tip answers before any other topic's ("流产后多久来月经" is about the
        miscarriage, not a period's usual cycle)."""
        return any(tip in self.tip_when and self._tip_fits(tip, text) for tip in self.tips[lang])

    def caution_for(self, lang: str, text: str) -> str:
        """The group's caution in ``lang`` for ``text``, the message that named the group: the first
        variant whose `when` words it has, else the group's own."""
        for words, texts, unless in self.caution_variants:
            if any(shares(w, text) for w in words) and not any(shares(w, text) for w in unless):
                return texts[lang]
        return self.caution[lang]

    def speaks_of(self, lang: str, words: set[str]) -> bool:
        """Whether a tip of this topic in ``lang`` has one of ``words`` (see `tip_words`)."""
        return any(shares(word, tip) for tip in self.tips[lang] for word in words)

    def has_age(self, ages: list[int]) -> bool:
        return any((self.age_from is not None and age >= self.age_from) or
                   (self.age_under is not None and age < self.age_under) for age in ages)


# Asking whether a complaint is worth a worry: one frame of the words before "worry" / "be concerned"
# ("should I be", "do we need to", "is it something to", "when would I", "worth"), read three ways: an
# asking clause in it is about the complaint told (Guide.ABOUT_THE_TOLD), a worry keyword after it is no
# anxiety (WORTH_A_WORRY), and a follow-up that is only it stays on the session's topic (WORTH_WORRYING).
_WORRY_FRAME = (r"(?:(?:should|do|must|need) (?:i|we|you|she|he) (?:actually |really )?(?:(?:need|have) to )?|"
                r"(?:i|we|you) (?:actually |really )?(?:should|need to|have to|ought to) |needs? to |"
                r"when (?:should|do|would) (?:i|we) |is (?:it|this|that|there) (?:a |anything to |something to )?|"
                r"worth |nothing to |anything to |something to |when to )(?:be )?")
_WORRY = r"(?:worr(?:y|ied)|concerned)"


class Guide(dict):
    """The tips file's topics by id, and one index of all their keywords, so that reading a
    message is one regex pass (a pass per topic cost ~2 ms a reply at 37 topics). Where keywords
    overlap the longest wins: 眼睛痒 is an allergy, not the eyes topic."""

    def __init__(self, topics: dict):
        super().__init__(topics)
        self.condition_caution = {"zh": "", "en": ""}  # the tips file's, for a condition given as context
        self.conditions = []  # the tips file's long-term conditions (Condition)
        self.by_word = {}
        for topic in topics.values():
            for key in topic.related & set(topics):
                topics[key].related.add(topic.key)
        listed = {word for topic in topics.values() for word in topic.keywords}
        for topic in topics.values():
            for word in topic.words:
                # A form made from a keyword that another topic lists is that topic's word:
                # "cycling" is exercise, not a form of the periods topic's "cycle".
                if word in topic.keywords or word not in listed:
                    self.by_word.setdefault(word, []).append(topic)
        self.terms = Terms(list(self.by_word))
        self.patterned = [topic for topic in topics.values() if topic.patterns]  # a search each, per message read
        # ...their patterns in that order, and which of them may match a text (plugins/_gate.py): each of the ~90 was
        # searched in every text read, three or four a reply (~0.9 ms of a reply's ~3; session 21, PERF)
        self.topic_patterns = [(topic, pattern) for topic in self.patterned for pattern in topic.patterns]
        self.pattern_gate = Gate([pattern for _, pattern in self.topic_patterns])
        self.deciding = [topic for topic in topics.values() if topic.whole_patterns]  # ...per message, once (main_reading)
        self._read = {}
        self._typos = None  # built on the first message no keyword places (Guide.spelled)
        self._spelt = frozenset()  # ...with the English words of the file's own texts (Guide._typo_index)
        self.words_written = frozenset()  # ...and of the topic model's training rows (set by the provider)
        # Each tip's topic, to tell which topic an earlier reply answered (Guide.answered).
        self.tip_topic = {tip: topic for topic in topics.values() for lang in ("zh", "en") for tip in topic.tips[lang]}
        # ...and each tip as given to a special group, without its medicines (medicine_free)
        for tip, topic in list(self.tip_topic.items()):
            self.tip_topic.setdefault(medicine_free(tip) or tip, topic)

    def answered(self, reply: str):
        """The topic whose tip ``reply`` (an earlier reply of the companion) gives, or None."""
        return next((topic for tip, topic in self.tip_topic.items() if tip in reply), None)

    def read(self, text: str) -> "Reading":
        reading = self._read.get(text)
        if reading is None:
            reading = self.main_reading(text)
            if len(self._read) > 256:  # a turn reads its message and a few earlier ones
                self._read.clear()
            self._read[text] = reading
        return reading

    def spelled(self, text: str, strict: bool = False) -> str:
        """``text`` with English words one typo away from exactly one keyword of six letters or more
        spelled as the keyword ("insomina", "stomache", "diarhea"); asked only of a message no keyword
        places, so a real word that happens to be one letter from a keyword costs nothing elsewhere."""
        index = self._typo_index()

        def fix(m):
            # The first letter is kept: a slip is rarely there, and a real word one letter from a keyword
            # usually differs in it ("this traffic is killing me" was read as a dental "filling": teeth tips).
            word = m.group()
            if word in self.by_word or word in self._spelt or word in self.words_written:
                return word
            fixed = index.only(word)
            # ``strict`` (a message a habit's keyword already places): the first two letters kept, as a real word
            # there is no slip ("8 glasses of water" was read as "gasses", a stomach's)
            return fixed if fixed and fixed[:1 + strict] == word[:1 + strict] else word
        return re.sub(r"(?<![a-z'])[a-z]{6,}(?![a-z'])", fix, text)

    def _typo_index(self) -> TypoIndex:
        """The single-word English keywords of 6+ letters, found one typo away."""
        if self._typos is None:
            self._typos = TypoIndex([word for word in self.by_word if len(word) >= 6 and re.fullmatch(r"[a-z]+", word)])
            # ...and the words the file's own English texts spell, which are words, not slips: "my hair is falling out"
            # was read as a dental "filling" (the tips say "fear of falling"; session 17)
            self._spelt = frozenset(re.findall(r"[a-z]{6,}", " ".join(
                text.lower() for topic in self.values() for text in (*topic.tips["en"], topic.see_doctor["en"],
                                                                    topic.caution["en"], topic.urgent["en"]))))
        return self._typos

    # Topics a question keeps even after a condition given as context: "我有糖尿病，早餐吃什么好"
    # asks about eating with diabetes (the blood sugar tips), not about a healthy diet in general.
    WITH_CONDITION = {"diet"}

    # A condition's own signs, by the topic the condition is listed under: a message giving the
    # condition and one of these asks about the condition itself, which stays its topic ("i have
    # diabetes and my sugar is 25 and i'm vomiting" is a possible ketoacidosis, not bloating; "我有
    # 糖尿病，最近老是口渴，尿多" is not a question on drinking water; 190/120 with a pounding head is
    # blood pressure, not a tension headache).
    CONDITION_SIGNS = {
        "blood_sugar": re.compile(
            r"渴|多饮|尿多|多尿|尿频|小便多|夜尿|呕吐|想吐|一直吐|吐了|恶心|血糖|糖\s*\d|\d\s*(?:mmol|多)|手抖|出冷汗|心慌|"
            r"视力模糊|看不清|体重下降|瘦了|(?<![a-z])(?:thirst\w*|pee|peeing|wee|weeing|urinat\w*|vomit\w*|throwing up|"
            r"nause\w*|sugar|sugars|reading|readings|mmol|shak(?:y|ing)|sweat(?:y|ing)|blurr\w*|weight loss|losing weight|"
            r"hypo|hyper)(?![a-z])"),
        "blood_pressure": re.compile(
            r"头痛|头疼|头晕|头胀|晕倒|发晕|眩晕|眼花|视物模糊|看不清|流鼻血|耳鸣|\d{2,3}\s*/\s*\d{2,3}|血压\s*\d|"
            r"(?<![a-z])(?:head|headache|headaches|dizzy|dizziness|pounding|throbbing|reading|readings|nosebleed|"
            r"blurr\w*|mmhg)(?![a-z])"),
    }

    def about_the_condition(self, text: str, part: str) -> bool:
        """Whether ``part`` (``text`` without the conditions it gives) names a sign of one of them."""
        for condition in conditions(text):
            topic = Reading(self, condition.name).topic
            signs = self.CONDITION_SIGNS.get(topic.key) if topic is not None else None
            if signs is not None and signs.search(part):
                return True
        return False

    # An asking clause on whether to worry or see a doctor asks about the complaint told ("my period is
    # 10 days late, should I worry?" is no anxiety question, "要不要去看看心理医生" after a loss no low mood).
    # Worry as the question's frame ("should I worry", "is that something to worry about"), not as its
    # subject ("what can I do about the constant worry about mistakes?" asks about the worry).
    ABOUT_THE_TOLD = re.compile(r"(?<![a-z])(?:" + _WORRY_FRAME + _WORRY + r"|worr(?:y|ied|ying) about (?:it|this|that|him|her)|"
                                r"(?:is|could) (?:it|this|that) (?:be )?(?:serious|worrying|concerning|a worry)|"
                                r"doctor|gp|a&e|er|see (?:someone|somebody|anyone|a professional)|get (?:it|this|that) checked)(?![a-z])|"
                                r"担心吗|要担心|用担心|需要担心|该担心|担不担心|要紧|严重|医生|医院|急诊|就医")

    ASKS_IF_IT_WORKS = re.compile(r"有用吗|有没有用|管用吗|管不管用|有效吗|有没有效|有效果吗|有帮助吗|能不能帮|会好点吗|会好一点吗|"
                                  r"(?<![a-z])(?:does (?:it|that|this) (?:help|work)|(?:would|will|could|can|does) \w+(?: \w+)? help|"
                                  r"is (?:it|that|this) (?:any good|worth it|enough|effective)|will (?:it|that|this) work)(?![a-z])")

    POINTS_BACK = re.compile(r"^(?:但是|不过|那|那么)?(?:这种|这样的|这个|那种)|(?<![a-z])(?:lose|get rid of|fix|treat|manage|shift|"
                             r"ease|deal with|cope with|get over|shake|sort) (?:it|this|that|them)(?![a-z])")

    # Food to keep away from, or food that sets a complaint off or makes it worse ("I always get heartburn after meals,
    # what foods should I avoid", 胃老是反酸，哪些东西不能吃, 有什么忌口): asked because of the complaint told, whose
    # own tips name its triggers, not a healthy-eating question (session 19, FIXO: the reviewer's heartburn after a
    # meal got the diet tips). "what should a healthy meal plan look like?" beside a stomach ache is still diet's.
    AVOIDS = re.compile(r"(?<![a-z])(?:avoid|avoiding|stay away from|steer clear of|cut out|keep off|give up|trigger|triggers|"
                        r"set (?:it|them) off|sets (?:it|them) off|make (?:it|them) worse|makes (?:it|them) worse|worse|bad for (?:it|them))(?![a-z])|"
                        r"忌口|忌嘴|不能吃|不该吃|不要吃|别吃|少吃|避免吃|不宜吃|要避开|会加重|加重|诱发|刺激")

    def asked_topic(self, whole: "Reading", reading: "Reading", clause: str):
        """The topic of the clause that asks (``reading`` of ``clause``) where it is the message's,
        over the topic of the whole (``whole``), which the clauses telling the context may decide
        ("night shifts leave me so tired, how can I quit smoking?" is smoking, not tiredness); else
        None. A clause guessing at a cause asks about the complaint told ("脸上爆痘，是不是熬夜熬的"),
        unless the cause is too little of something, a complaint as strong as the one told: too little
        of a habit is the complaint its topic is related to ("head pounding after a shift, is it because
        I'm not drinking enough water?": dehydration; water's related topic in the tips file)."""
        topic = reading.topic
        if topic is None or self.ABOUT_THE_TOLD.search(clause):
            return None
        lack = guesses_lack(clause)
        if lack is not None:
            if not lack or whole.topic is None:
                return None
            if not topic.priority:
                complaints = [self[key] for key in topic.related if key in self and self[key].priority
                              and not self[key].is_group]
                topic = complaints[0] if len(complaints) == 1 else topic
            if topic.priority < whole.topic.priority:
                return None
        if topic is whole.topic:
            return None
        # Whether an activity or habit works, asked beside a complaint or goal told ("最近想减点肥，每天快走半小时
        # 有用吗", "my knees ache, would swimming help?"): a means to the told, whose tips answer it
        if reading.weak and whole.topic is not None and whole.topic.priority > topic.priority and \
                self.ASKS_IF_IT_WORKS.search(clause):
            return None
        # An asking clause that points back at what was told ("put on 8kg since i started working from home, how do i
        # lose it without a gym", "我爸上个月走了…这种难过要多久才会好一点"): its own word names a means or a feeling of
        # the stronger complaint told, which stays the topic
        if whole.topic is not None and whole.topic.priority > topic.priority and self.POINTS_BACK.search(clause):
            return None
        # A remedy asked of for the complaint told, whose name has another topic's word ("孩子被热汤烫了，手背红了一片，要涂
        # 牙膏吗": the toothpaste is no tooth; review R19, a burn got a tooth tip; "should I put toothpaste on the burn"):
        # the clause read without the thing put on stays the complaint's, if it names no other topic then
        if whole.topic is not None and whole.topic.priority > topic.priority and REMEDY.search(clause) and \
                Reading(self, REMEDY.sub(" ", clause)).topic in (None, whole.topic):
            return None
        # What to eat, asked beside a complaint of the strongest kind ("我对花生过敏, what should i check on
        # food labels"; a cough, a wound, a period): the complaint's own tips answer eating with it, as a
        # condition's do (WITH_CONDITION); beside a lesser one it is a diet question ("my stomach gets upset
        # on nights, what should a healthy meal plan look like?")
        if topic.key in self.WITH_CONDITION and whole.topic is not None and \
                whole.topic.priority >= max(t.priority for t in self.values()):
            return None
        # ...and food to avoid or that sets it off, beside any complaint (AVOIDS): the complaint's question
        if topic.key in self.WITH_CONDITION and whole.topic is not None and whole.topic.priority > 0 \
                and not whole.topic.is_group and self.AVOIDS.search(clause):
            return None
        # ...and beside a long-term condition named (diabetes, high blood pressure: CONDITION_SIGNS' topics), mine or
        # another's ("我有2型糖尿病，下午饿了吃什么零食比较好？", "我妈有糖尿病，早餐吃什么", "type 1 diabetic, what's a good
        # bedtime snack"): the condition's tips answer eating with it, as for a condition given as context (session 19, A20)
        if topic.key in self.WITH_CONDITION and whole.topic is not None and whole.topic.key in self.CONDITION_SIGNS:
            return None
        # A complication of the complaint told, asked of by its own word ("my toddler has diarrhoea, how do
        # I stop him getting dehydrated?"): the complaint's tips speak of it, so the complaint stays
        if whole.topic is not None and topic.priority == whole.topic.priority and lack is None:
            lang = "zh" if _CJK.search(clause) else "en"
            # a stem: the tips say "dehydration" where the user says "dehydrated"
            stems = {w[:-3] if w.isascii() and len(w) > 7 else w for w in reading.hits.get(topic.key, ())}
            if whole.topic.speaks_of(lang, stems):
                return None
        return topic

    def main_reading(self, text: str) -> "Reading":
        """The reading of ``text``'s main question (plugins/_main_question.py): a symptom mentioned
        in passing before a lead-in or an aside ("有点咳嗽，不过这个不急，主要想问…"), or a condition
        given as context ("type 2 diabetic here, want to start working out") is not the topic when
        the rest of the message names one. Special groups are read from the whole message."""
        whole = Reading(self, ADDITIVE.sub("", text))
        # ...or only a habit places ("my stomache burns after every meal", "had diarhea since last night after some
        # street food": the meal and the food are diet's, the misspelt complaint is the question)
        if whole.topic is None or whole.weak:
            spelled = self.spelled(text, strict=whole.topic is not None)
            if spelled != text:
                respelled = Reading(self, ADDITIVE.sub("", spelled))
                if whole.topic is None or (respelled.topic is not None and respelled.topic.priority > whole.topic.priority):
                    text, whole = spelled, respelled
        lowered = text.lower()
        for topic in self.deciding:
            if any(p.search(lowered) for p in topic.whole_patterns):
                whole.topic, whole.tied, whole.weak, whole.single = topic, [topic], False, False
                whole.decided = True  # no topic model overrules it (Composer.choose_topic)
                return whole
        for kind, part in candidates(text):
            reading = Reading(self, ADDITIVE.sub("", part), whole=whole)
            if kind == "asks" and QUIT_BARE.search(part) and (reading.topic is None or not reading.topic.quit):
                # "想戒又怕开车犯困", "how can I quit?": quitting with no object is quitting the habit the message names
                habits = sorted((min(words.values()), key) for key, words in whole.hits.items() if self[key].quit)
                if habits:
                    habit = self[habits[0][1]]
                    reading.topic, reading.tied, reading.weak, reading.single = habit, [habit], False, False
                    return reading
            if kind == "asks":
                topic = self.asked_topic(whole, reading, part)
                if topic is None:
                    continue
                if topic is not reading.topic:  # too little of a habit guessed as the cause: its complaint
                    reading.topic, reading.tied, reading.weak, reading.single = topic, [topic], False, False
                # no ``part``: the topic model reads the whole message, not the clause alone ("how do i manage
                # the pressure?" alone is blood pressure to it, 0.85; the whole, on edge with the kids, 0.28)
                if reading.weak and whole.topic is not None and whole.topic.priority > reading.topic.priority:
                    reading.told = whole  # the topic model may say the complaint told is asked of (Composer.compose)
                return reading
            if reading.topic is None:
                if not whole.focus:  # no keyword in it: the topic model may place it (Composer.choose_topic)
                    whole.focus, whole.focus_kind = part, kind
                continue
            if kind == "condition" and whole.topic is not None and (
                    reading.topic.key in self.WITH_CONDITION or self.about_the_condition(text, part)):
                continue
            if kind == "condition":
                reading.conditions = [c.name for c in conditions(text)]
            reading.part = part
            return reading
        return whole


# A remedy put on or taken (涂/抹/擦/敷 + up to four characters, "put/rub/apply/use + a word or two"): the thing named.
REMEDY = re.compile(r"(?:涂|抹|擦|搽|敷|喷|贴)(?:点|些|一点|一些|上|点儿)?[\u4e00-\u9fff]{1,4}|"
                    r"(?<![a-z])(?:put|putting|rub|rubbing|apply|applying|dab|smear|spread|use|using)\s+(?:some\s+|a bit of\s+|a little\s+)?"
                    r"[a-z]+(?:\s+[a-z]+)?(?=\s+(?:on|onto|over)(?![a-z]))", re.I)


# Quitting with no object ("想戒又怕…", "how can I quit?", "how do I give it up"): the habit the message names.
# ...or cutting down with no object ("有什么办法能让他少抽点" after "我男朋友一天一包…不抽烟顶不住", "how do I get him to cut
# down?"): smoking less or drinking less of the habit named, not the late nights told beside it.
QUIT_BARE = re.compile(r"戒(?:掉|了|得掉)?(?=又|但|却|可|吗|呢|[，,。？?！!]|$)|少(?:抽|喝)(?:点|一点|些|一些)?(?=吗|呢|[，,。？?！!]|$)|"
                       r"(?<![a-z])(?:quit|stop|give (?:it|them) up|kick (?:it|the habit)|cut (?:it|them) out|cut (?:it |them )?(?:down|back))"
                       r"\s*(?:for good|now|a bit|a little)?\s*[?.!]*$")


# "也/还/又" or a degree between a body part and its symptom ("眼睛也痒", "膝盖还肿", "头好痛", "头特别痛")
# splits the keyword the symptom is listed under (眼睛痒 is allergies, 头痛 headache); read as if it
# were not there.
ADDITIVE = re.compile(r"(?<=[\u4e00-\u9fff])(?:[也还又都](?:有点|有些|很|挺|老是|总是)?|好|很|太|超|特别|有点|有些|挺|巨|"
                      r"(?:一直|老是|总是|经常|时常|常常)(?:有点|有些|很|会)?)"
                      r"(?=[痒疼痛肿酸胀红麻晕干黄])")


# A topic's word in a figure of speech, not the complaint or activity (offline_T, offline_U at session 20's start: "Can
# I just keep an eye on him?" after a swallowed battery got the eyes' tips, "running on coffee ... too much?" exercise,
# "nearly decked a customer over a cold chip complaint" and "do i need the 2 litres thing when its cold" a cold's).
# Read in a bounded window around the word only when the word is one of these (no pass over every message).
IDIOM_WORDS = {"eye", "eyes", "running", "run", "runs", "cold", "colds"}
IDIOMS = re.compile(r"(?<![a-z])(?:(?:keep|keeps|keeping|kept|have|has|had|got)\s+(?:an?\s+|my\s+|both\s+|his\s+|her\s+)?"
                    r"(?:close\s+|careful\s+|beady\s+|watchful\s+)?eyes?\s+(?:on|out|peeled)|"
                    r"run(?:s|ning)?\s+on\s+(?:coffee|caffeine|fumes|empty|energy drinks?|red bull|adrenaline|no sleep|autopilot|tea|"
                    r"(?:\d+|a few|few|two|three|four|five)\s+hours?(?:\s+of)?\s+sleep)|"
                    r"run(?:s|ning)?\s+(?:a|the)\s+(?:house|home|business|shop|team|household|errands?)|"
                    r"cold\s+(?:chips?|food|coffee|tea|pizza|dinner|drinks?|shoulder|call|snap|spell|weather|mornings?|nights?|months|days?|water|shower)|"
                    r"(?:it's|its|it is|when it's|when its|it gets|it's so|its so|it's really|in the|the|bitter|freezing)\s+cold(?!\s+(?:sore|symptoms?|virus|and flu)))(?![a-z])",
                    re.I)


def idiom_at(text: str, start: int) -> bool:
    """Whether the word at ``start`` is part of a figure of speech (IDIOMS), read in a window of 40 characters."""
    low = max(0, start - 40)
    return any(m.start() <= start - low < m.end() for m in IDIOMS.finditer(text[low:start + 40]))


# A waking word followed by what one wakes with ("waking up with a headache", "wake up with a stiff back"):
# the time a complaint is felt, not a night's broken sleep (the insomnia topic lists "waking up").
WAKING = {"waking up", "wake up", "woke up", "wakes up", "waking", "keep waking"}
WAKES_WITH = re.compile(r"\s+(?:every day |each day |most days |in the morning |every morning )?with(?![a-z])")


# "worry" asked of a complaint ("how long before i should worry", "when do I actually need to worry vs just
# calpol", "retake later or is that a worry") asks whether it is serious, not about the user's anxiety: the
# anxiety topic took 3 of session 16's fresh English misses (offline_K, offline_L) this way. The frame is the
# few words before the keyword, a bounded slice of the text.
WORRY_WORDS = {"worry", "worried", "worrying"}
WORTH_A_WORRY = re.compile(r"(?<![a-z])" + _WORRY_FRAME + "$")


class Reading:
    """What one message says: the topic it is about and the special group it mentions."""

    def __init__(self, guide: Guide, text: str, whole: "Reading | None" = None):
        self.conditions = []  # conditions the message gives as context, set aside (Guide.main_reading)
        self.part = ""  # the part of the message read, where it is not the whole (Guide.main_reading)
        # The whole message's reading, where an asking clause naming only an activity or habit was read
        # over a complaint the other clauses tell (Guide.main_reading); None otherwise
        self.told = None
        self.focus = ""  # the main question, where it names no topic by keyword
        self.focus_kind = ""  # what `focus` leaves out (plugins/_main_question.py: focus, condition, cause...)
        self.text = text
        self.decided = False  # its topic decided by a topic's `whole_patterns` (Guide.main_reading)
        self.denied = set()  # keywords the text denies ("没有刻意减肥": a library item on the opposite case)
        self.hits = hits = {}  # topic key -> {keyword: first position}
        for start, word in guide.terms.find(text):
            start, word = child_to_do(text, start, word)
            for topic in guide.by_word.get(word, ()):
                # A symptom or group the user denies ("不是腰疼", "no stomach pain", "没怀孕") is
                # not what they ask about; a habit they lack ("不喝水") still is. A keyword that is
                # itself a negation (没大便) counts.
                if topic.priority or topic.is_group or topic.key in FEELING_TOPICS:  # "我不再焦虑了"
                    if not word.startswith(("不", "没")) and word not in topic.negated_too and negated(text, start):
                        self.denied.add(word)
                        continue
                # (an illness the group's person is cared for in is never in passing: "my mum has dementia" names her
                # illness, not people the user has, as "I have two kids" does; A21)
                if topic.is_group and in_passing(text, start, word) and not (
                        topic.cared_for.regex is not None and topic.cared_for.regex.fullmatch(word)):
                    continue
                if word in ("died", "dies") and (MISHAP.search(text) or FIGURATIVE_DEATH.search(text)):
                    continue  # "my phone died", "I nearly died laughing": no bereavement
                if word in ("eating", "eats", "eat", "ate") and EATS_A_RESOURCE.match(text, start + len(word)):
                    continue  # "the process that's eating all my CPU", "apps eating my battery": no food (session 19, A20)
                if word in IDIOM_WORDS and idiom_at(text, start):
                    continue  # "keep an eye on him", "running on coffee", "a cold chip", "when it's cold": no eyes, run or cold
                if word in WAKING and WAKES_WITH.match(text, start + len(word)):
                    continue  # "waking up with a dull ache at the back of my head": when the ache comes, not insomnia
                if word in WORRY_WORDS and WORTH_A_WORRY.search(text[max(0, start - 30):start]):
                    continue  # "when do I actually need to worry", "is that a worry": is the complaint serious, no anxiety
                hits.setdefault(topic.key, {}).setdefault(word, start)
        patterned_setting = set()  # what a topic's patterns found that names only its setting (Topic.setting_patterns)
        live, topic_patterns = guide.pattern_gate.live(text), guide.topic_patterns
        while live:  # (the patterns that may match, in the file's order: those skipped cannot match)
            low = live & -live
            live ^= low
            topic, pattern = topic_patterns[low.bit_length() - 1]
            found = pattern.search(text)
            if found and not negated(text, found.start()) and not MISHAP.search(found.group()):
                hits.setdefault(topic.key, {}).setdefault(found.group(), found.start())
                if topic.setting_patterns:
                    patterned_setting.add(found.group())
        # The highest priority (a symptom over an activity: "跑步后膝盖疼" is about the knee), then
        # the most distinct keywords, then the one mentioned first.
        # ...and among complaints of one priority, one told as a pain ("my lower back hurts after sitting at my desk
        # all day": the back, not the desk and the sitting, two keywords of the setting)
        # (an English keyword that is itself a pain counts as told as one: "banging headache after the long drive,
        # neck stiff too" is the headache, a pain, over the neck named after it)
        # ...and among those, one named by more than its setting's words (a desk, sitting: Topic.setting)
        ranked = [(guide[key].priority, not (set(words) <= guide[key].setting | patterned_setting
                                             and not guide[key].setting_keeps & hits.keys()),
                   guide[key].priority > 0 and any(
                      word[-1] in "肿疼痛酸" or word.endswith(_PAIN_WORD) or _PAIN_AFTER.match(text, start + len(word))
                      for word, start in words.items()),
                   len(words), -min(words.values()), key)
                  for key, words in hits.items() if not guide[key].is_group]
        self.topic = guide[max(ranked)[-1]] if ranked else None
        gave_way = next((guide[key] for key, words in (self.topic.gives_way if self.topic is not None else ())
                         if key in guide and words.regex is not None and words.regex.search(text)), None)
        # Topics as strong as the chosen one, mentioned later ("久坐以后腰特别酸": sitting and back pain
        # tie on one keyword each); the topic model may choose among them (Composer.choose_topic).
        self.tied = [guide[r[-1]] for r in ranked if r[:4] == max(ranked)[:4]] if ranked else []
        # An activity or habit (priority 0) is a weak reading, one keyword of it the weakest: "my
        # sugar reading before breakfast" is not a diet question, "戒了烟，脾气特别大" is about
        # smoking, not anger; the topic model may overrule it (Composer.modelled_topic).
        self.weak = bool(ranked) and max(ranked)[0] == 0
        self.single = bool(ranked) and max(ranked)[3] == 1
        self.gave_way_from = None  # the topic this reading's gave way to it (a loss told beside days alone)
        if gave_way is not None:  # a reading as strong as the one it replaces: not a habit's the model may overrule
            self.gave_way_from = self.topic
            self.topic, self.tied, self.weak, self.single = gave_way, [gave_way], False, False
        elif len(self.tied) > 1:
            # ...nor is a topic tied with the chosen one that gives way to it on these words a tie for the model to
            # break ("pain behind my eyes": the eyes give way to the headache; the model chose eyes at 0.49)
            self.tied = [t for t in self.tied if t is self.topic or not any(
                key == self.topic.key and words.regex is not None and words.regex.search(text) for key, words in t.gives_way)]
        ages = ages_in(text)
        # ``whole``: this reads a part of the message; the group is the whole message's.
        # An age given outside the group's ages takes the person out of it: "my daughter is 14" is not a
        # small child with a fever to dose ("my son is 30 and has a fever" neither).
        # ...but the writer's own age does not take out a grandchild or a baby ("我六十八了，孙子发烧三十八度五": a
        # grandparent minding one; session 18), as it takes out a son who may be grown ("I'm 70, my son...").
        own = set(own_ages(text))
        self.named_group = whole.named_group if whole is not None else next(
            (topic for topic in guide.values() if topic.is_group and (topic.has_age(ages) or (
                topic.key in hits and not (ages and (topic.age_from is not None or topic.age_under is not None)
                                           and not (set(ages) <= own and YOUNG_WORDS & hits[topic.key].keys())))))
            , None)
        cared = self.named_group is not None and self.named_group.cared_for.regex is not None and \
            bool(self.named_group.cared_for.regex.search(text))
        if self.named_group is not None and whole is None and self.named_group.not_when.regex is not None \
                and self.named_group.not_when.regex.search(text) and not cared:
            self.named_group = None
        self.group = self.named_group
        if cared and self.topic is not None and self.topic.key in self.group.not_with:
            # (see `cared_for`): the carer's question, not a loss of theirs
            self.topic, self.tied, self.weak, self.single = self.group, [self.group], False, False
        if self.group and self.topic and self.topic.key in self.group.not_with:
            self.group = None


# A group named as the one the user acts on or lives with ("snapping at my kids", "对孩子发火",
# "I have two kids", "带孩子") is not the patient; "my son's fever", "孩子的体温" is.
_PASSING_EN = re.compile(r"(?<![a-z])(?:at|with|to|around|toward|towards|from|have|has|had|having|raising|raise|"
                         # ...or carried ("my back hurts from carrying my toddler"): the load, not the patient
                         r"after|like|than|carrying|carry|lifting|lift|holding|picking up|pick up|chasing|rocking|"
                         # ...or caught from them ("caught something off my kid, sneezing": the parent's cold, OFFCAL)
                         r"off|caught from|picked up from|got it from)"
                         r"\s+(?:(?:my|our|the|his|her|their|two|three|four|\d+|young|little|small)\s+)*$")
_PASSING_ZH = re.compile(r"(?:(?:对|冲|朝|跟|陪|带|哄|管|骂|吼|凶|打|教|接|送|为了|抱|背着)(?:我|我们|我家|家里|自己)?的?"
                         r"(?:[一两三四五六七八九]个)?|有[一两三四五六七八九]个)$")
_POSSESSIVE = re.compile(r"\s*(?:'s|的)")


# ...and one said to live elsewhere or be grown up ("my kids live overseas", "孩子都出国了") is context.
_AWAY_EN = re.compile(r"\s+(?:all\s+|both\s+)?(?:live|lives|living|moved|have moved|left home|are grown|grew up|are all grown|"
                      r"are away|are abroad|study abroad|are at uni|are overseas|"
                      r"(?:is |are |gets |get |comes |come |finishes |finish )?(?:at work|off work|home from work|back from work|"
                      r"from work|from his shift|from her shift|works|drives))(?![a-z])")
_AWAY_ZH = re.compile(r"们?(?:都|也|早就|已经)*(?:出国|不在身边|长大了|大了|工作了|成家了|在外地|在国外|去外地|上大学)"
                     # ...or one who goes out to work: a son coming home from work is no child with a fever
                     # ("要不要等我儿子下班再说" after a stroke note got the child-fever caution)
                     r"|(?:还|正|也|都|今天|今晚|晚上|要|得|快|刚)*(?:在)?(?:下班|上班|加班|出差|开车|值班|上夜班|单位|公司)")


# A job's rank ("a senior nurse"), or a birth as a time ("since the baby arrived I get headaches"): no patient.
_RANK_EN = re.compile(r"\s+(?:nurse|doctor|manager|staff|engineer|developer|analyst|director|officer|role|position|"
                      r"colleague|carer|driver|technician|partner|shift|staff nurse|care assistant|associate)(?![a-z])")
_SINCE_BIRTH = (re.compile(r"(?<![a-z])(?:since|ever since)\s+(?:the|my|our)\s+$"),
                re.compile(r"\s+(?:arrived|was born|came along|came home)(?![a-z])"))


# A son's or daughter's spouse, or the daughter herself as an in-law, is a grown-up ("my daughter in law is
# expecting" is a pregnancy, not a child's illness: set S, session 18)
_IN_LAW = re.compile(r"[\s-]+in[\s-]+law(?![a-z])")
# What the old folk say (老人说吃荔枝容易上火, 老一辈讲究…): a saying about food or health, no older patient. Only the
# generic words: "奶奶说她头晕" is a grandmother telling her own complaint.
_SAYING_ZH = re.compile(r"(?:们)?(?:都|常|总|老|也)?(?:说|讲|讲究|常说|常讲|说过|讲过|口中|嘴里|那一套|的说法|的老话)")
_SAYERS_ZH = {"老人", "老人家", "老年人"}


def in_passing(text: str, start: int, word: str) -> bool:
    """Whether the special group named by ``word`` at ``start`` is mentioned in passing (the
    object of what the user does, or people living elsewhere) rather than as the one with the complaint."""
    if word == "senior" and _RANK_EN.match(text, start + len(word)):
        return True
    if word.endswith(("son", "daughter")) and _IN_LAW.match(text, start + len(word)):
        return True
    if word in _SAYERS_ZH and _SAYING_ZH.match(text, start + len(word)):
        return True
    if _SINCE_BIRTH[0].search(text[max(0, start - 20):start]) and _SINCE_BIRTH[1].match(text, start + len(word)):
        return True
    if _POSSESSIVE.match(text, start + len(word)):
        return False
    if word.startswith(("weeks ", "months ")):  # "cramps at 6 weeks pregnant": a length, not "at my 2 kids"
        return False
    if (_AWAY_ZH if _CJK.match(word) else _AWAY_EN).match(text, start + len(word)):
        return True
    before = text[max(0, start - 30):start]
    return bool(_PASSING_ZH.search(before) if _CJK.match(word) else _PASSING_EN.search(before))


# "我想要孩子多运动" (I want my child to exercise more), "现在要宝宝吃药吗": a trying-for-a-baby phrase
# (想要孩子, 在要宝宝) followed by what the child is to do names a child, not a pregnancy.
_WANTS_A_CHILD = re.compile(r"要个?(孩子|宝宝|小孩)$")
_CHILD_TO_DO = re.compile(r"\s*(?:多|少|去|来|学|做|吃|喝|睡|写|读|练|上|听|早|晚|别|不要|能|会|自己|好好|认真|跟|和|陪|"
                          r"把|给|快|慢|注意|锻炼|运动|知道|懂|明白|记住|乖|穿|戴|用|洗|刷|看|玩|背|考|参加|坚持|保持|养成)")


def child_to_do(text: str, start: int, word: str) -> tuple[int, str]:
    """(start, word) of the keyword found at ``start``: the child in it when it is a want for a child
    followed by what the child is to do, else as found."""
    m = _WANTS_A_CHILD.search(word)
    if m is not None and _CHILD_TO_DO.match(text, start + len(word)):
        return start + m.start(1), m.group(1)
    return start, word


# A pain or swelling told of in a body part a keyword names, after the keyword or in it ("now my knee
# is really swollen", "膝盖肿了", "胃疼"): a complaint of its own. "疼得睡不着" (the pain keeps me awake),
# "嘴巴也干" after diarrhoea, "it's spreading to my neck now" tell of none, and stay on the session's.
_PAIN_WORD = ("ache", "aches", "pain", "pains", "hurts")
_PAIN_AFTER = re.compile(r"(?:s|es)?(?:\s*(?:is|are|was|has|have|been|got|getting|really|so|very|badly|all|now|also|too|still|"
                         r"quite|a bit|kind of|getting))*\s*(?:swollen|swelling|swelled|hurts?|hurting|aches?|aching|sore|"
                         r"painful|killing me|bruised|sprained|twisted)(?![a-z])|[肿疼痛酸]")


def tells_of_pain(guide: Guide, text: str, topic: Topic) -> bool:
    """Whether ``text`` tells of a pain or swelling where one of ``topic``'s keywords names it."""
    text = ADDITIVE.sub("", text)  # 膝盖也肿了: 膝盖肿了
    return any(topic in guide.by_word.get(word, ()) and (word[-1] in "肿疼痛酸" or _PAIN_AFTER.match(text, start + len(word)))
               for start, word in guide.terms.find(text))


def compile_tips(data: dict) -> Guide:
    topics = {}
    for key, spec in (data.get("topics") or {}).items():
        if isinstance(spec, dict):
            topics[str(key)] = Topic(str(key), spec)
        else:
            log.warning("tips file: topic %r is not a mapping; skipped", key)
    guide = Guide(topics)
    caution = data.get("condition_caution") if isinstance(data.get("condition_caution"), dict) else {}
    guide.condition_caution = {lang: str(caution.get(lang) or "").strip() for lang in ("zh", "en")}
    guide.conditions = []
    for key, spec in (data.get("conditions") or {}).items():
        try:
            guide.conditions.append(Condition(str(key), spec))
        except (TypeError, ValueError, AttributeError) as e:
            log.warning("tips file: conditions.%s: %s; skipped", key, e)
    return guide


class NoteWords:
    """A condition note's words and patterns (`Condition`): found when any of its regexes is."""

    def __init__(self, regexes: list):
        self.regexes = regexes

    def search(self, text: str) -> bool:
        return any(r.search(text) for r in self.regexes)


def named_in(note: str, word: str) -> str:
    """``note`` with its {named} as the user wrote the word: an acronym in capitals ("SSRI"), and a sentence that
    starts with it capitalised ("Sertraline with St John's wort...")."""
    word = word.strip()
    word = word.upper() if word.isascii() and len(word) <= 4 else word
    note = note.replace("{named}", word)
    return note[:1].upper() + note[1:] if note.startswith(word) and word.isascii() else note


class Condition:
    """A long-term condition the user names for themselves or the person they ask about (the tips file's
    `conditions`): what it changes in a topic's answer. Read from any message of the session (a heart failure
    told first, then "how much water should I drink?"), said once a session (A21: a diabetic's slow-healing
    foot wound got cut care, heart failure's water question "1.5–2 litres", a diabetic's 14 mmol/L "only a
    doctor can diagnose diabetes", COPD's breathlessness coffee and early nights)."""

    def __init__(self, key: str, spec: dict):
        self.key = key
        self.words = Terms([w for w in (normalize(str(x)) for x in both_languages(spec.get("words"))) if w])
        # Signs that name it where no word does (session 20, A22: "my son not eating anything since two weeks, he say
        # he is fat" is an eating disorder's, named by none of its words): bounded patterns on the lower-cased text
        self.patterns = [re.compile(str(x)) for x in spec.get("patterns") or ()]
        # words that make a message's word not this condition's ("a lithium button battery" is no lithium taken)
        self.unless = Terms([w for w in (normalize(str(x)) for x in both_languages(spec.get("unless"))) if w])
        # words that must be in the session too (an NSAID beside a stomach ulcer)
        self.with_words = Terms([w for w in (normalize(str(x)) for x in both_languages(spec.get("with"))) if w])
        self.notes = {}  # topic key ("*": any) -> {zh, en}
        self.worded = []  # (Terms, {zh, en}, instead, session, unless): a note for the message's own words, whatever its topic
        for note in spec.get("notes") or ():
            texts = {lang: str(note.get(lang) or "").strip() for lang in ("zh", "en")}
            for topic in note.get("topics") or ():
                self.notes[str(topic)] = texts
            words = Terms([w for w in (normalize(str(x)) for x in both_languages(note.get("when"))) if w])
            # ...or its bounded patterns: what a list cannot spell (a child's age: "my 15 year old", 十五岁), one regex
            patterns = [str(x) for x in note.get("patterns") or ()]
            if patterns:
                words = [words.regex] if words.regex is not None else []
                words = NoteWords(words + [re.compile("|".join(f"(?:{x})" for x in patterns))])
            else:
                words = NoteWords([words.regex] if words.regex is not None else [])
            if words.regexes:
                # `session: true`: its words may be in any message of the session (a parent's "my son ... he says he
                # is fat", then "should I force him to eat?": the note for a parent, not for one in recovery)
                # `unless`: words that make the message another question ("stop smoking" on sertraline is no stopping of it)
                unless = Terms([w for w in (normalize(str(x)) for x in both_languages(note.get("unless"))) if w])
                self.worded.append((words, texts, bool(note.get("instead")), bool(note.get("session")), unless))
        self.instead_of = {str(k) for k in spec.get("instead_of") or ()}  # topics whose tips the note replaces
        self.drop = [str(w) for w in spec.get("drop") or ()]  # a tip with one of these words is not for them
        # how a later reply names it (a sign a pattern found is no name: "she eat very little ... too fat"), and what it
        # says once its note was given, instead of "what I said above applies" (a direct question: 是不是又要发作了)
        self.name = {lang: str((spec.get("name") or {}).get(lang) or "") for lang in ("zh", "en")}
        self.again = {lang: str((spec.get("again") or {}).get(lang) or "").strip() for lang in ("zh", "en")}

    def named(self, texts) -> str:
        """The condition's word (or sign) as the session names it, latest message first ("" if it doesn't)."""
        found = ""
        for t in texts:
            if self.unless.regex is not None and self.unless.regex.search(t):
                continue
            m = (self.words.regex.search(t) if self.words.regex is not None else None) or \
                next((m for m in (p.search(t) for p in self.patterns) if m), None)
            if m:
                found = m.group(0)
                break
        if found and (self.with_words.regex is None or any(self.with_words.regex.search(t) for t in texts)):
            return found
        return ""

    def note(self, topic_key: str | None, lang: str, text: str = "", session=()) -> tuple[str, bool]:
        """(the note for the topic or for ``text``'s own words, whether it replaces the topic's tips); a `session:`
        note's words may be in any of ``session``'s texts."""
        for words, texts, instead, anywhere, unless in self.worded:
            if unless.regex is not None and unless.regex.search(text):
                continue
            if words.search(text) or (anywhere and any(words.search(t) for t in session)):
                return texts[lang], instead
        spec = self.notes.get(topic_key or "") or self.notes.get("*")
        return (spec[lang], topic_key in self.instead_of) if spec else ("", False)


# Ages in a message, for the groups with `ages:` in the tips file ("儿子三岁", "my 78-year-old dad").
_ZH_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_NUM = r"(\d{1,3}|[一二两三四五六七八九十]{1,3})"
_PERSON_ZH = r"(?:我|爸|妈|爷|奶|公|婆|姥|父亲|母亲|老人|他|她)"
_PERSON_EN = (r"(?:mom|mum|mother|dad|father|grandma|grandpa|grandmother|grandfather|granny|grandad|gran|nan|nana|nanna|husband|"
              r"wife|aunt|uncle|son|daughter|kid|child|boy|girl|brother|sister|he|she|they)")
AGE_IN_YEARS = [
    re.compile(_NUM + r"\s*多?\s*周?岁"),  # 三岁, 一岁半, 78岁, 八十多岁
    re.compile(_PERSON_ZH + r"\s*(?:今年|已经|都)?\s*" + _NUM + r"\s*多?了"),  # 我爸七十五了
    # 今年 and a number closing the clause (我今年七十一，一个人住): an age; not 今年三月, 今年两次
    re.compile(r"今年\s*" + _NUM + r"(?=\s*(?:多|出头|[，,。！!？?；;、]|$))"),
    re.compile(r"(?<![\d.])(\d{1,3})[\s-]*(?:years?|yrs?)[\s-]*old"),  # 3 year old, 78-year-old
    re.compile(r"(?<![\d.])(\d{1,3})\s*(?:yo|y/o)(?![a-z])"),
    re.compile(r"(?<![a-z])(?:" + _PERSON_EN + r"(?:'s| is| was| just turned| turned| turns)|i'm|i am|im)\s+(?:now\s+)?"
               r"(\d{1,3})(?![\d.]|\s*(?:kg|lb|pounds|cm|%|/|mmhg|bpm|degrees|weeks?|wks?|months?|days?|hours?|"
               r"minutes?|times?|mg|ml|steps|miles|km))"),  # "my dad's 80", "I should say I'm 81"
]
AGE_IN_DECADES = re.compile(r"(?<![a-z])in (?:his|her|their|my) (?:early |mid |mid-|late )?(\d)0s")  # in her 80s
# ...and in words ("now I'm in my seventies", session 18)
DECADE_WORDS = {"sixties": 60, "seventies": 70, "eighties": 80, "nineties": 90}
AGE_IN_DECADE_WORDS = re.compile(r"(?<![a-z])in (?:his|her|their|my) (?:early |mid |mid-|late )?(sixties|seventies|eighties|nineties)(?![a-z])")
# ...and a baby's age told without "old" (T, session 20: "she's 14 months, hot to touch since lunch, 38.9" got no child's
# caution): "she's 14 months", "he is 9 mo", "my 10mo", "our 3 month", "5 weeks old"; not "32 weeks" (a pregnancy)
# nor "the last 3 months" (no person before the figure).
AGE_IN_MONTHS = re.compile(_NUM + r"\s*个?多?月大|(?<![\d.])(\d{1,2})[\s-]*(?:months?|mo|mos|wks?|weeks?)[\s-]*old(?![a-z])|"
                           r"(?<![a-z])(?:she|he|they|baby|bub|it)(?:'s|’s| is| was| are|s)\s+(?:only\s+|just\s+|nearly\s+|almost\s+)?"
                           r"(\d{1,2})\s*(?:months?|mo|mos|m)(?![a-z])|"
                           r"(?<![a-z])(?:my|our|his|her|the)\s+(\d{1,2})\s*(?:mo|mos|month|m)(?![a-z])")


def _zh_number(text: str) -> int:
    if text.isdigit():
        return int(text)
    tens, _, ones = text.partition("十")
    if "十" not in text:
        return _ZH_DIGITS.get(text, 0)
    return (_ZH_DIGITS.get(tens, 1) if tens else 1) * 10 + (_ZH_DIGITS.get(ones, 0) if ones else 0)


# Ages the writer gives themself (我六十八了, 我今年七十一, I'm 72, in my seventies), and the words that name a
# child whatever the writer's age (a grandchild, a baby): Reading.named_group.
OWN_AGES = [re.compile(r"我\s*(?:今年|已经|都)?\s*" + _NUM + r"\s*多?(?:了|岁|周岁)"),
            re.compile(r"我\s*今年\s*" + _NUM + r"(?=\s*(?:多|出头|[，,。！!？?；;、]|$))"),
            re.compile(r"(?<![a-z])(?:i'm|i am|im)\s+(?:now\s+)?(\d{1,3})(?![\d.]|\s*(?:kg|lb|pounds|cm|%|weeks?|months?|days?|hours?))")]
YOUNG_WORDS = {"孙子", "孙女", "外孙", "外孙女", "孙儿", "宝宝", "婴儿", "新生儿", "grandson", "granddaughter", "grandchild",
               "grandkid", "grandbaby", "grandchildren", "grandkids", "baby", "toddler", "infant", "newborn"}


def own_ages(text: str) -> list[int]:
    ages = [_zh_number(m.group(1)) for pattern in OWN_AGES for m in pattern.finditer(text)]
    ages += [DECADE_WORDS[m.group(1)] for m in AGE_IN_DECADE_WORDS.finditer(text) if m.group().startswith("in my")]
    return ages


def ages_in(text: str) -> list[int]:
    """Ages in years (a baby's months count as 0) that ``text`` gives someone."""
    ages = [_zh_number(m.group(1)) for pattern in AGE_IN_YEARS for m in pattern.finditer(text)]
    ages += [int(m.group(1)) * 10 for m in AGE_IN_DECADES.finditer(text)]
    ages += [DECADE_WORDS[m.group(1)] for m in AGE_IN_DECADE_WORDS.finditer(text)]
    ages += [0 for _ in AGE_IN_MONTHS.finditer(text)]
    return [age for age in ages if age <= 120]


# Tips that name medicines are left out while a group is mentioned: its caution says what to ask first.
MEDICINE = re.compile(r"药|布洛芬|阿司匹林|对乙酰氨基酚|(?<![a-z])(?:ibuprofen|aspirin|paracetamol|acetaminophen|"
                      r"painkillers?|medicines?|medications?|antihistamines?|tablets?|pills?|fever reducers?)(?![a-z])")
_CLAUSES = re.compile(r"(?:[^。！？；;.!?]|[.!?](?!\s|$))+(?:[。！？；;]|[.!?](?=\s|$)|$)")


def medicine_free(tip: str) -> str:
    """``tip`` without its sentences and clauses (to a full stop or semicolon) that name a medicine, for a
    special group (see Composer.compose); "" when what is left is too little to stand as a tip. A bee sting's
    first aid keeps its scraping, washing and cold pack for a child ("...; an antihistamine eases the itch"
    went, and with it the whole tip: the child's fever tip was given under "A tip on allergies", the
    session-18 new-user audit)."""
    if not MEDICINE.search(tip):
        return tip
    clauses = [c for c in (m.group().strip() for m in _CLAUSES.finditer(tip)) if c]
    kept = []
    for i, clause in enumerate(clauses):
        if MEDICINE.search(clause):
            continue
        if i + 1 < len(clauses) and MEDICINE.search(clauses[i + 1]):  # "raise it;" before a clause left out ends a sentence
            clause = re.sub(r"[；;]$", "。" if _CJK.search(clause) else ".", clause)
        kept.append(clause)
    text = ("" if _CJK.search(tip) else " ").join(kept)
    return text if len(text) >= len(tip) // 2 else ""  # most of it: not a lone "ask a pharmacist first"


# A follow-up that points back at what was said ("那要不要…", "would that help?", "should I ice it?").
# Going back to an activity the session's complaint stopped ("how long until I can play football again" after a
# twisted ankle, "什么时候能重新跑步"): a question on getting over the complaint, not on the activity.
BACK_TO = re.compile(r"(?<![a-z])(?:(?:how long|how soon|when)\s+(?:until|till|before|can|could|will|should)\s[^.!?\n]{0,40}?"
                     r"(?<![a-z])again|(?:go|get|going|getting)\s+back\s+to|return\s+to)(?![a-z])|"
                     r"(?:多久|什么时候|啥时候|多长时间)(?:才)?(?:能|可以)(?:再|重新|恢复)|(?:恢复|重新)(?:跑步|运动|训练|上班|打球|踢球)")
REFERS_BACK = re.compile(r"^(?:那|这样|这个|它)|(?<![a-z])(?:it|that|this|those|these)(?![a-z])"
                         r"|^(?:and |so |but )?(?:what|how) about(?![a-z])")  # "what about sleeping propped up?"
# A follow-up whose subject is the complaint already talked of: "it"/"they" with what it does ("they kind of
# burn when I try to sleep" after dry eyes, "它还是肿") or where on it ("a lump on the back of it"). Another
# topic's word after it is a circumstance of the same complaint (Composer.choose_topic, Composer.moves_on).
THE_COMPLAINT = re.compile(r"(?<![a-z'])(?:it|they|it's|they're|its|their)\s+(?:[a-z]+\s+){0,2}?(?:burn|burns|burning|hurt|hurts|"
                           r"hurting|ache|aches|aching|itch|itches|itchy|itching|sting|stings|stinging|throb|throbs|throbbing|"
                           r"swell|swells|swelling|swollen|sore|red|bleed|bleeds|bleeding|water|watering|tingle|tingles|"
                           r"feel|feels|get|gets|go|goes|look|looks|seem|seems)(?![a-z])"
                           r"|(?<![a-z])(?:of|on|in|around|near|under|behind|above|below) (?:it|them)(?![a-z])|^它")
# A how-to question: practical advice is what it asks for, even on a turn the safety plugin checks in on.
PRACTICAL_QUESTION = re.compile(r"(?<![a-z])(?:how (?:should|do|can|would) i|how to|what'?s a (?:good|safe) way|"
                                r"where (?:do|should) i (?:even )?(?:start|begin)|any tips)(?![a-z])"
                                r"|怎么(?:开始|做|练|吃|安排|调整)|如何(?:开始|做|安排)|从哪(?:里)?开始|有什么(?:办法|建议|方法)")
# A question on a habit's norms or a belief about it ("is it actually that bad to...", "does weekend catch-up
# count", "is the pasta thing real or a myth", "anything that gets them to sleep longer?", "真的有用吗"): asked for
# facts, as a practical question is (Composer.gentle; session 18: four writers' such questions lost their tip to
# the safety classifier's check-in).
NORM_QUESTION = re.compile(r"(?<![a-z])(?:is (?:it|this|that)(?: actually| really| even)?(?: that)? (?:normal|ok|okay|bad|fine|"
                           r"safe|healthy|enough|too much|too little|true|a myth)|does (?:it|that|this)(?: really| actually)? "
                           r"count|real or (?:a )?myth|anything that (?:helps?|gets|works)|do i (?:really |actually )?need)(?![a-z])"
                           r"|正常吗|算不算|也算吗|真的有用吗|有用吗|靠谱吗|是真的吗|管用吗|有没有科学依据")
# A follow-up asking only whether the complaint is worth worrying about: a question on it, not anxiety.
WORTH_WORRYING = re.compile(r"(?:(?:so|and|but|ok|okay)[, ]*)?(?:" + _WORRY_FRAME + _WORRY + r"|is (?:it|this|that) (?:something )?"
                            r"(?:to worry about|worrying|serious|a worry))(?: about (?:it|this|that))?\s*[?？!.]*"
                            r"|(?:那|这)?(?:要紧吗|严重吗|需要担心吗|要不要担心|用不用担心|该不该担心|是不是很严重)[?？]*")
# A question whether to see a doctor: the topic's when-to-see-a-doctor line answers it, said before or not.
ASKS_DOCTOR = re.compile(r"(?:要不要|用不用|需不需要|需要|该不该|要|得|用)(?:去|上)?(?:医院|看医生|看病|就医|看急诊|挂号)|去医院吗|"
                         r"(?<![a-z])(?:should|do|must) (?:i|we|she|he|they) (?:go and |go to )?(?:see|get|call|visit|go to)"
                         r" (?:a |the )?(?:doctor|gp|hospital|a&e|er|emergency)|(?:see|get seen by) a doctor\?")
# A follow-up that says it changes the subject: its own topic answers even when it says little.
CHANGES_SUBJECT = Terms(["另外", "对了", "换个话题", "换个问题", "另一个问题", "还有个问题", "顺便问", "顺便说", "话说",
                         "说起来", "算了", "by the way", "btw", "unrelated", "different question", "another question",
                         "on another note", "switching topics", "change of subject", "changing the subject",
                         "off topic", "separate question", "random question", "something else"])


# Short words a follow-up's tip choice ignores ("what can I eat?" is about "eat").
SHORT_STOPWORDS = {"and", "the", "can", "how", "what", "who", "why", "for", "you", "your", "are", "was", "not", "but",
                   "any", "too", "all", "its", "it's", "that", "this", "with", "have", "has", "had", "does", "should",
                   "would", "could", "will", "then", "than", "they", "them", "there", "also", "just", "about", "ok"}


def shares(word: str, tip: str) -> bool:
    """Whether ``tip`` has ``word`` (an English one at the start of a word: "eat" is not in "heat")."""
    if not word.isascii():
        return word in tip
    # (str.find, not re.search(r"(?<![a-z])" + re.escape(word), ...): the same answer, but each word was a pattern of its
    # own, and a reply asks ~130 of them over the tips, more than re's cache of 512 keeps over a session: ~13 regex
    # compilations an answer were a fifth of the offline reply's time; session 21, PERF)
    lowered = tip.lower()
    at = lowered.find(word)
    while at > 0 and "a" <= lowered[at - 1] <= "z":
        at = lowered.find(word, at + 1)
    return at >= 0


# Characters that say nothing of a follow-up's detail: what is left of "肿了怎么办" is 肿 (see `tip_words`);
# nor do eating, a doctor or a time in general ("那平时吃什么好", "需要去医院看看吗" are no new detail).
FUNCTION_CHARS = set("了怎么办吗呢吧啊呀哦嘛还有的地得是我你他她它们那这哪些个也就都不没很太再别该着过把被给让在和跟与或"
                     "及点下好多少用做去来说想看试会能可以要什样如何为吃喝医院药病平时常候天次东西")


# ...and the English words of the same kind (吃喝, 药, 用做, 东西, 医院): "anything I can eat?" after a morning
# sickness tip tells no new detail, so the tip is not given again word for word ("the tip above").
FUNCTION_WORDS = {"eat", "eating", "drink", "drinking", "take", "taking", "use", "using", "try", "trying", "do", "doing",
                  "anything", "something", "thing", "things", "stuff", "good", "better", "help", "helps", "food", "foods",
                  "medicine", "medicines", "meds", "doctor", "hospital", "usually", "normally", "day", "days", "time", "times"}


def detail_words(text: str, asked: str = "") -> set[str]:
    """A follow-up's words that tell a new detail (肿, "heat"): `tip_words` without any of `FUNCTION_CHARS`
    nor what the session ``asked`` already (疼 after 牙疼 is no new detail); none in a question whether to
    see a doctor (the topic's see-a-doctor line answers it)."""
    if ASKS_DOCTOR.search(text):
        return set()
    return {w for w in tip_words(text, True) if (w not in FUNCTION_WORDS if w.isascii() else not any(c in FUNCTION_CHARS for c in w))
            and not shares(w, asked)}


def tip_words(text: str, follow_up: bool = False) -> set[str]:
    """What a tip may share with the message: Chinese character pairs and longer Latin words (in a
    follow-up, where every word counts, Latin words of three letters or more: "heat or ice?", and
    Chinese characters alone but for `FUNCTION_CHARS`: 肿 of "肿了怎么办", 痒 of "晚上更痒")."""
    words = {text[i:i + 2] for i in range(len(text) - 1) if _CJK.match(text[i]) and _CJK.match(text[i + 1])}
    if follow_up:
        words |= {c for c in text if _CJK.match(c) and c not in FUNCTION_CHARS}
    latin = re.findall(r"[a-z][a-z'-]{2,}" if follow_up else r"[a-z][a-z'-]{4,}", text)
    return words | {w for w in latin if w not in SHORT_STOPWORDS}


def detail_score(words: set[str], tip: str) -> float:
    """How much of ``words`` (`tip_words`) ``tip`` has; a Chinese character alone counts half a word."""
    return sum(1 if len(w) > 1 else 0.5 for w in words if shares(w, tip))


def choose_tip(tips: list[str], text: str, seed: str, recent: str, follow_up: bool = False, last: str = "",
               asked: str = "") -> str:
    """A tip not given just before, preferring the ones that share most words with the message
    (a wrist question gets the wrist tip of the joints topic; one shared word is enough in a
    follow-up, whose few words are what it asks: "那运动方面呢"), then by ``seed``. When every tip
    is among the ``recent`` replies, any but the one of the ``last`` reply (a third question on a
    sprain with two tips got the second one again, word for word). A follow-up whose detail only a
    tip already given answers ("肿了怎么办" after the sprain tip that ends "肿的话可以用弹力绷带") gets
    that tip again (introduced as `AGAIN`), not a tip on something else ("no squats")."""
    words = tip_words(text, follow_up)
    fresh = [tip for tip in tips if tip not in recent] or [tip for tip in tips if tip not in last] or tips
    scores = [detail_score(words, tip) for tip in fresh]
    best = max(scores)
    details = detail_words(text, asked) if follow_up else set()
    if details:
        said = [tip for tip in tips if tip not in fresh]
        said_best = max(said, key=lambda tip: detail_score(details, tip), default=None)
        if said_best is not None and detail_score(details, said_best) > max(detail_score(details, tip) for tip in fresh):
            return said_best
    if best >= (1 if follow_up else 2) or (follow_up and best > 0):
        fresh = [tip for tip, score in zip(fresh, scores) if score == best]
    return pick(fresh, seed)


# ---------------------------------------------------------------------------------------------
# What the companion says. Feelings live here rather than in the tips file because each entry
# must fit the grammar of the sentence it is put in ("你最近感到{很}{难过}", "feeling really sad").
# ---------------------------------------------------------------------------------------------

# feeling -> words that show it, mapped to how to name it back; and the tips-file topic that helps.
FEELINGS = {
    "sad": {
        "zh": {"难过": "难过", "伤心": "伤心", "不开心": "不开心", "心情不好": "心情低落", "心情差": "心情低落",
               "郁闷": "郁闷", "沮丧": "沮丧", "失落": "失落", "低落": "低落", "想哭": "难过", "委屈": "委屈",
               "痛苦": "痛苦", "emo": "低落", "失恋": "难过", "😢": "难过", "😭": "难过"},
        "en": {"sad": "sad", "unhappy": "unhappy", "feeling down": "down", "feel down": "down", "depressed": "low",
               "feeling low": "low", "feel low": "low", "felt low": "low", "feeling really low": "really low",
               "feeling so low": "so low", "feeling pretty low": "pretty low", "low mood": "low",
               "upset": "upset", "miserable": "miserable", "heartbroken": "heartbroken", "hopeless": "hopeless",
               "cry": "sad", "cried": "sad"},
        "topic": "low_mood",
    },
    "anxious": {
        "zh": {"焦虑": "焦虑", "紧张": "紧张", "担心": "担心", "害怕": "害怕", "不安": "不安", "心慌": "心慌",
               "忐忑": "忐忑", "恐惧": "害怕", "慌": "慌", "😰": "焦虑", "😟": "担心"},
        "en": {"anxious": "anxious", "anxiety": "anxious", "nervous": "nervous", "worried": "worried",
               "worry": "worried", "scared": "scared", "afraid": "afraid", "panic": "panicky"},
        "topic": "anxiety",
    },
    "stressed": {
        "zh": {"压力": "压力{deg}大", "喘不过气": "压得喘不过气", "焦头烂额": "焦头烂额", "忙不过来": "忙得透不过气",
               "心烦": "心烦", "烦心": "心烦", "烦闷": "烦闷", "烦": "烦"},
        "en": {"stressed": "stressed", "stress": "stressed", "overwhelmed": "overwhelmed",
               "under pressure": "under pressure"},
        "topic": "stress",
    },
    "angry": {
        "zh": {"生气": "生气", "气死": "气愤", "气炸": "气愤", "愤怒": "愤怒", "恼火": "恼火", "火大": "恼火", "烦死": "烦",
               "烦躁": "烦躁", "不爽": "不痛快", "受不了": "烦", "😡": "生气", "😠": "生气"},
        "en": {"angry": "angry", "mad": "angry", "furious": "furious", "annoyed": "annoyed",
               "frustrated": "frustrated", "irritated": "irritated", "pissed": "angry"},
        "topic": "anger",
    },
    "lonely": {
        "zh": {"孤独": "孤独", "孤单": "孤单", "寂寞": "寂寞", "没人理": "孤单", "没有朋友": "孤单", "没人陪": "孤单"},
        "en": {"lonely": "lonely", "alone": "alone", "isolated": "isolated", "no friends": "lonely"},
        "topic": "loneliness",
    },
    "tired": {
        "zh": {"累": "累", "疲惫": "疲惫", "疲倦": "疲惫", "没精神": "没精神", "没力气": "没力气", "困": "困",
               "筋疲力尽": "筋疲力尽", "心累": "心累", "😴": "累"},
        "en": {"tired": "tired", "exhausted": "exhausted", "worn out": "worn out", "drained": "drained",
               "burned out": "burned out", "burnt out": "burned out", "sleepy": "sleepy", "fatigued": "tired"},
        "topic": "fatigue",
    },
    "unwell": {
        "zh": {"不舒服": "不舒服", "难受": "难受", "不太舒服": "不太舒服"},
        "en": {"don't feel good": "unwell", "don't feel well": "unwell", "not feeling well": "unwell",
               "not feeling good": "unwell", "feel unwell": "unwell", "feel sick": "sick", "feel awful": "awful"},
        "topic": None,
    },
    "happy": {
        "zh": {"开心": "开心", "高兴": "高兴", "快乐": "快乐", "太好了": "开心", "好消息": "开心", "兴奋": "兴奋",
               "幸福": "幸福", "😊": "开心", "😄": "开心"},
        "en": {"happy": "happy", "glad": "glad", "excited": "excited", "thrilled": "thrilled", "proud": "proud",
               "great news": "happy"},
        "topic": None,
    },
}
FEELING_TOPICS = {spec["topic"] for spec in FEELINGS.values() if spec["topic"]}
FEELING_TERMS = {feeling: Terms([*spec["zh"], *spec["en"]]) for feeling, spec in FEELINGS.items()}
# The emotion tagger's labels and the feelings here, both ways, and how to name a label's feeling.
FEELING_LABEL = {"happy": "happy", "sad": "sad", "lonely": "sad", "anxious": "anxious", "stressed": "anxious",
                 "angry": "angry", "tired": "tired"}
LABEL_FEELING = {"happy": "happy", "sad": "sad", "anxious": "anxious", "angry": "angry", "tired": "tired"}
LABEL_WORDS = {"happy": {"zh": "开心", "en": "happy"}, "sad": {"zh": "难过", "en": "down"},
               "anxious": {"zh": "担心", "en": "worried"}, "angry": {"zh": "不痛快", "en": "frustrated"},
               "tired": {"zh": "累", "en": "tired"}}
HISTORY_TURNS = 6  # earlier user messages searched for the session's topic and special groups
# Words that contain a feeling word but mean something else (积累 is not 累, 困难 is not 困).
NOT_FEELINGS = ("积累", "累计", "累加", "连累", "困难", "困扰", "麻烦", "不厌其烦", "不安全", "恐慌症")

INTENSIFIERS = re.compile(r"(?:很|非常|特别|太|好|超|超级|真的|挺|十分|巨|好大|really|very|so|super|extremely|too)\s*$")
DOWNTONERS = re.compile(r"(?:有点|有点儿|有些|稍微|略|a bit|a little|slightly|kind of|kinda|somewhat)\s*$")

DEGREE = {"zh": {"strong": "很", "mild": "有点", "": ""}, "en": {"strong": "really ", "mild": "a bit ", "": ""}}

# What the user's feeling is about, and since when: named back in the reflection.
CONTEXT = {
    "zh": {
        "time": ["这段时间", "这阵子", "这几天", "最近", "今天", "昨天", "今晚", "每天", "一直", "总是"],
        "about": {"找工作": "找工作的事", "工作": "工作", "上班": "工作", "加班": "加班", "老板": "工作",
                  "领导": "工作", "同事": "和同事相处", "学习": "学习", "考试": "考试", "作业": "学业",
                  "学校": "学校的事", "家里": "家里的事", "家人": "家里的事", "父母": "和父母之间的事",
                  "爸妈": "和父母之间的事", "孩子": "孩子的事", "感情": "感情上的事", "男朋友": "感情上的事",
                  "女朋友": "感情上的事", "对象": "感情上的事", "老公": "和伴侣之间的事", "老婆": "和伴侣之间的事",
                  "分手": "分手这件事", "朋友": "和朋友之间的事", "房贷": "经济上的事", "钱": "经济上的事",
                  "身体": "身体的状况", "生病": "生病这件事", "失业": "失业这件事", "面试": "面试"},
    },
    "en": {
        "time": ["these days", "this week", "lately", "recently", "today", "tonight", "every day", "all the time"],
        "about": {"work": "work", "job": "work", "boss": "work", "coworker": "your coworkers",
                  "colleague": "your colleagues", "school": "school", "exam": "your exams", "study": "your studies",
                  "studies": "your studies", "family": "your family", "parents": "your parents",
                  "kids": "your kids", "children": "your kids", "partner": "your relationship",
                  "boyfriend": "your relationship", "girlfriend": "your relationship",
                  "husband": "your marriage", "wife": "your marriage", "relationship": "your relationship",
                  "breakup": "the breakup", "broke up": "the breakup", "friends": "your friends",
                  "money": "money", "bills": "money", "debt": "money", "health": "your health",
                  "interview": "the interview"},
    },
}
CONTEXT_TERMS = {lang: Terms(ctx["about"]) for lang, ctx in CONTEXT.items()}
ONGOING = {"these days", "this week", "lately", "recently", "all the time", "every day"}

OPENERS = {
    "zh": ["听起来{core}。", "我听到了：{core}。", "谢谢你告诉我。听起来{core}。"],
    "en": ["It sounds like {core}.", "I hear that {core}.", "Thank you for telling me. It sounds like {core}."],
}
HAPPY_OPENERS = {"zh": ["真为你高兴！听起来{core}。", "太好了！听起来{core}。"],
                 "en": ["That's lovely to hear! It sounds like {core}.", "How nice! It sounds like {core}."]}

SUPPORT = {
    "sad": {"zh": ["谢谢你愿意说出来，难过的时候你不用一个人扛着。", "心里沉沉的时候，不需要马上好起来，我在这里陪你。",
                   "这种感觉很不好受，想说多少都可以，我在听。"],
            "en": ["Thank you for telling me; you don't have to carry this alone.",
                   "It's okay to feel this way, and you don't need to be fine right away. I'm here.",
                   "That's a heavy feeling. Say as much or as little as you like; I'm listening."]},
    "anxious": {"zh": ["担心往往说明这件事对你很重要，我们可以一起慢慢理一理。", "先停一下，慢慢呼一口气，我在这里陪你。"],
                "en": ["Worry often means something matters to you; we can sort through it together, slowly.",
                       "Let's pause for a moment and take a slow breath; I'm here with you."]},
    "stressed": {"zh": ["事情一件件压过来，谁都会觉得吃力，辛苦你了。", "辛苦你了，先照顾好自己，事情可以一件一件来。"],
                 "en": ["When things pile up, anyone would feel stretched; you've been holding a lot.",
                        "That's a lot to carry. Looking after yourself comes first; the rest can go one step at a time."]},
    "angry": {"zh": ["生气是很正常的情绪，往往说明有些事让你觉得不公平或不被尊重。", "能把火气说出来挺好的，比憋在心里强，我在听。"],
              "en": ["Anger is a normal feeling; it often means something felt unfair or disrespectful.",
                     "It's good to let it out here rather than keep it bottled up. I'm listening."]},
    "lonely": {"zh": ["孤单的感觉很难受，谢谢你愿意跟我说，此刻你不是一个人。", "想有人陪、被理解，是每个人都有的需要，我在这里陪你。"],
               "en": ["Loneliness hurts; thank you for sharing it with me. You're not alone right now.",
                      "Wanting company and to be understood is a very human need. I'm here with you."]},
    "tired": {"zh": ["辛苦了，累的时候允许自己停下来歇一歇。", "身体和心都在提醒你该休息了，照顾好自己。"],
              "en": ["That sounds draining. It's okay to stop and rest when you're this tired.",
                     "Your body and mind may be asking for a break; take care of yourself."]},
    "unwell": {"zh": ["身体不舒服的时候，做什么都更吃力，辛苦你了。", "难受的时候有人问一句会好一点，我在这里。"],
               "en": ["Feeling unwell makes everything harder; I'm sorry you're going through it.",
                      "I'm sorry you're feeling this way; I'm here with you."]},
    "happy": {"zh": ["这份好心情值得好好享受。", "能感觉到你的喜悦，我也跟着开心。"],
              "en": ["Enjoy this good feeling.", "I can feel your joy from here."]},
}

QUESTIONS = {
    "feeling": {"zh": ["你愿意多说说发生了什么吗？", "这种感觉是从什么时候开始的？", "现在最让你放不下的是哪一部分？"],
                "en": ["Would you like to tell me more about what happened?", "When did this feeling start?",
                       "What part of it weighs on you most right now?"]},
    "unwell": {"zh": ["这种不舒服是从什么时候开始的？", "除了这个，还有别的不舒服吗？"],
               "en": ["When did it start?", "Is anything else bothering you besides this?"]},
    "happy": {"zh": ["发生了什么好事？说来听听！", "是什么让你心情这么好？"],
              "en": ["What happened? I'd love to hear about it.", "What made your day?"]},
    "urgent": {"zh": ["你现在身边有人可以帮忙吗？", "现在情况怎么样？如果有人在身边，请让他陪着你。"],
               "en": ["Is someone with you who can help?", "How are you right now? If someone is nearby, ask them to stay with you."]},
    "grief": {"zh": ["你愿意跟我说说 TA 吗？", "这些天有人陪在你身边吗？"],
              "en": ["Would you like to tell me about them?", "Is there someone with you these days?"]},
    "topic": {"zh": ["想了解更多，可以说“还有呢”。", "说说你的具体情况，我可以给更贴合的建议。"],
              "en": ["Say \"more\" for another tip.", "Tell me more about your situation and I can be more specific."]},
}

# A loss (the tips file's `grief` topic) is met with condolence, not a reflection of the feeling: "My husband
# died three weeks ago and I can't stop crying" got "you're feeling sad about your marriage" and a shower tip.
GRIEF = "grief"
MEDICINES = "medicines"  # taking, missing, doubling or changing a dose: the tips file's topic
CONDOLENCE = {"zh": ["听到这个消息，我很心疼你，请节哀。失去重要的人，心里的痛是真实的，此刻有什么样的感受都可以。",
                     "真的很抱歉你正在经历这样的失去。这么重的事需要时间慢慢消化，你不用急着走出来。"],
              "en": ["I'm so sorry for your loss. Losing someone you love hurts deeply, and whatever you're feeling right now is allowed.",
                     "I'm so sorry you're going through this loss. Something this big takes time to take in, and you don't have to be okay yet."]}
# A loss told as long past with how it is now not a hardship ("My mum passed away ten years ago; today I cooked her soup
# recipe and smiled", 我奶奶去世五年了，今天看到她的照片，心里很温暖): a warm word on the memory, not condolence for a fresh
# loss nor the first weeks' tips (docs/emotion-safety.md, `contrast.then_now`; the session-19 audit A20)
REMEMBERING = {"zh": ["谢谢你和我分享关于 TA 的回忆。过了这么久还能这样温暖地想起 TA，说明 TA 一直在你心里。",
                      "能这样想起 TA，真好。那些一起的日子和 TA 留给你的东西，会一直陪着你。"],
               "en": ["Thank you for sharing that memory. That you can think of them with warmth after all this time says a lot "
                      "about what they gave you.",
                      "That sounds like a warm way to remember them. What they gave you stays with you."]}
REMEMBERING_QUESTIONS = {"zh": ["你愿意多说说 TA 吗？", "TA 是个什么样的人？"],
                         "en": ["Would you like to tell me more about them?", "What were they like?"]}
# When a loss is placed years back: "ten years ago", "last year", "back in 2015", 三年前, 去年, 去世五年了, 走了好几年了.
# (Numbers of at most three digits or numerals, each read from its start, as `contrast.then_now`: bounded on long runs.)
LONG_PAST = re.compile(
    r"(?<![a-z])(?:(?:a |one |two |three |four |five |six |seven |eight |nine |ten |a few |few |several |many |(?<!\d)\d{1,3} )"
    r"years? (?:ago|back|on|later)|last year|(?:back )?in (?:19|20)\d\d)(?![a-z\d])"
    r"|去年|前年|几年前|好几年|(?<!\d)\d{1,3}年前|(?<![一二三四五六七八九十两几])[一二三四五六七八九十两几]{1,3}年前"
    r"|(?:去世|过世|离世|走了|离开我们|不在了)(?:已经|都|快|有)?(?:[\d一二三四五六七八九十两几]{1,3}|好几|十几)年")
# The clause a time or a loss is told in ends here; what follows tells how it is now.
CLAUSE_AFTER = re.compile(r"[，。；！？,;.!?]")


def loss_now(text: str) -> str:
    """What ``text`` (normalized) says after the clause that places a loss years back (LONG_PAST): how it is now; ""
    when no loss is so placed or nothing follows it."""
    past = LONG_PAST.search(text.lower())
    if past is None:
        return ""
    end = CLAUSE_AFTER.search(text, past.end())
    return text[end.end() if end else past.end():].strip(" ，。；！？,;.!?")


# ...said once a session; after it, a line on what comes next (a follow-up: "还是睡不好，一闭眼就想起她")
STILL_GRIEVING = {"zh": ["想念会一阵一阵地涌上来，这很正常，我在这里陪你。", "这种时候难熬是自然的，慢慢来，我在听。"],
                  "en": ["Missing them comes in waves, and that's normal. I'm here with you.",
                         "It's natural for this to be hard right now. Take it slowly; I'm listening."]}

# A turn between two feelings told (then how it went): "…挺难受的，不过晚上和朋友吃了火锅，心情好多了", "felt awful, but
# dinner with friends cheered me up". Read from the first one only; a clause-level word, so one search.
MIXED_TURN = re.compile(r"不过|但是|可是|然而|好在|幸好|还好|后来|(?<=[，,])\s*但|(?<![a-z])(?:but|though|luckily|thankfully|then)(?![a-z])")

# Relief told after the turn: the later feeling is a good one
RELIEF = re.compile(r"好多了|好了很多|好一些了|好些了|好点了|好了|舒服多了|开心多了|开心起来|轻松多了|放松多了|"
                    r"(?<![a-z])(?:cheered me up|cheer me up|feel(?:ing)? (?:much |a lot |a bit )?better|felt (?:much |a lot |a bit )?better|"
                    r"made my day|better now|lifted my mood|in a better mood)(?![a-z])")

# Each intro says a tip is being offered ("小建议", "a tip"): the lexicon tagger reads that as
# a calm, helpful reply even when the tip itself mentions stress or tiredness.
TIP_INTROS = {"zh": ["关于{title}，一个实用的建议：", "说到{title}，一个小建议：", "关于{title}，可以试试这样做："],
              "en": ["On {title}, a practical tip: ", "About {title}, a tip that may help: ", "A tip on {title}: "]}
SOFT_INTROS = {"zh": ["如果你愿意，这个小办法也许有帮助：", "一个也许有用的小办法：", "等你准备好了，可以参考这一条："],
               "en": ["If you'd like, you could try this: ", "One small thing that may help: ",
                      "When you feel ready, try this: "]}
QUOTE_INTROS = {"zh": "《病友宝典》的《{title}》{section}里写道：", "en": "From the library's article \"{title}\"{section}:"}
QUOTE_SECTIONS = {"zh": "「{heading}」一节", "en": ", section \"{heading}\""}
# Said instead of the one tip that fits when the last reply gave it ("能吃点什么" after a tip on morning sickness).
SAID_ABOVE = {"zh": "关于{title}，我这里最贴合的就是上面那条建议。", "en": "On {title}, the tip above is the closest I have."}
# A tip given again because it is the one that speaks of a follow-up's detail ("肿了怎么办": `choose_tip`)
AGAIN = {"zh": "关于{title}，这条建议说到了这一点：", "en": "On {title}, this tip covers that: "}
# A topic a long-term condition's note replaces (Condition.instead_of), after the note was said in the session
CONDITION_SAID = {"zh": ["上面说到的{condition}要注意的地方，这里也适用；拿不准的，请问问你的医生。",
                         "这一点也请按上面关于{condition}的说法来，具体的量和做法以你的医生说的为准。"],
                  "en": ["What I said above about {condition} applies here too; if you're unsure, ask your doctor or nurse.",
                         "The same goes here as I said above for {condition}: your own doctor or nurse has the final word on it."]}
# Said to "还有呢" / "more" once every tip that fits has been given in the session (instead of them again).
ALL_SAID = {"zh": "关于{title}，我这里的建议上面都说过了；如果一直不见好，或者出现上面提到的情况，请去看医生。",
            "en": "That's all the tips I have on {title}; if it isn't getting better, or any of the warning signs above appear, please see a doctor."}
MORE_INTROS = {"zh": ["再给你一条关于{title}的小建议：", "关于{title}，还有一个小建议："],
               "en": ["Another tip on {title}: ", "One more tip on {title}: "]}

MORE = Terms(["还有呢", "还有吗", "还有别的", "更多", "再来一条", "再说说", "其他建议", "别的建议", "多说点",
              "more", "anything else", "what else", "another tip", "other tips"])
GREETING = Terms(["你好", "您好", "嗨", "哈喽", "在吗", "在不在", "早上好", "下午好", "晚上好", "早安",
                  "hi", "hello", "hey", "good morning", "good afternoon", "good evening",
                  "are you there", "you there", "still there", "anyone there"], endings=False)  # "his" is no "hi"
THANKS = Terms(["谢谢", "感谢", "多谢", "thank you", "thanks", "thx"])
BYE = Terms(["再见", "拜拜", "晚安", "下次聊", "bye", "goodbye", "good night", "see you"])

GREET = {
    "physical": {"zh": "你好！我是你的身体健康小助手，可以陪你聊睡眠、饮食、运动、喝水、体重、血压和头痛感冒这些日常健康话题。今天想聊点什么？",
                 "en": "Hi! I'm your physical health companion. I can help with sleep, diet, exercise, water, weight, blood pressure, headaches, colds and other everyday health topics. What's on your mind today?"},
    "mental": {"zh": "你好！我是你的心理健康陪伴助手。开心的、烦心的，都可以跟我说说。你今天感觉怎么样？",
               "en": "Hi! I'm your mental health companion. Good days and hard ones, you can tell me about both. How are you feeling today?"},
}
THANKED = {"zh": ["不客气！照顾好自己，有需要随时找我。", "不用谢，能帮上忙我很高兴。"],
           "en": ["You're welcome! Take care, and come back any time.", "Glad I could help."]}
# A thank-you and nothing more in a session (`thanks_only`): a warm, plain close, not another tip on the
# session's topic, nor cheer for the word (A21: "谢谢你" after a worried daughter's turns got "真为你高兴！",
# 谢谢 after bad news "请节哀"; "Thanks" after a diabetic's readings another diet tip).
CLOSING = {"zh": ["不客气。照顾好自己，有什么变化或者还想聊的，随时来找我。", "不用谢，我一直在。照顾好自己，需要的时候随时回来。"],
           "en": ["You're welcome. Take good care of yourself, and come back any time something changes or you'd like to talk.",
                  "Any time. Look after yourself, and I'm here whenever you need me."]}
FAREWELL = {"zh": ["好的，照顾好自己，随时回来聊。", "晚安也好、再见也好，祝你一切顺利，我一直在。"],
            "en": ["Take care of yourself, and come back any time.", "Goodbye for now; I'm here whenever you need me."]}
LISTENING = {
    "physical": {"zh": ["我在听。想聊哪方面的健康话题？睡眠、饮食、运动，或者哪里不太舒服，都可以告诉我。",
                        "明白。如果有哪里不舒服，可以说说是哪里、从什么时候开始的，我帮你一起看看。"],
                 "en": ["I'm listening. What would you like to talk about: sleep, food, exercise, or something that doesn't feel right?",
                        "I see. If something is bothering you, tell me where and since when, and we can look at it together."]},
    "mental": {"zh": ["我在听，你可以慢慢说，想到什么说什么都没关系。现在心里最挂着的是什么？",
                      "嗯，我在这里。能多说一点吗？这件事让你有什么感觉？"],
               "en": ["I'm listening; take your time and say whatever comes to mind. What's on your mind most right now?",
                      "I'm here. Could you tell me a bit more? How does it make you feel?"]},
}
UNKNOWN = {"zh": "这个问题超出了我离线时能回答的范围。我可以聊：{titles}。能换个说法，或者说说你的具体情况吗？",
           "en": "That's beyond what I can answer offline. I can talk about {titles}. Could you put it another way, or tell me more about your situation?"}

# Red flags: a note before anything else. The crisis words are a fallback only: where the safety
# plugin is loaded it judges crises (it answers them before any provider runs, and knows talk about
# suicide, idioms and shaving nicks from a crisis), and the companion leaves them to it.
# The emergency signs (chest, breath, stroke, collapse) are no list of this file since session 20 (RF3): they are
# prompts/safety.yaml's `red_flag_cautions`, one table with the red flags, read by one reader (plugins/_cautions.py):
# the safety plugin serves it (`Safety.cautions`); with that plugin disabled the companion reads the same file with it.
# This file's own list had none of the red flags' masks ("ok that meme killed me 😭 i can't breathe", a fit last year
# got a call-120 note) and "having a stroke" the red flags lacked.
SAFETY = {
    "crisis": Terms(["自杀", "轻生", "不想活", "活不下去", "想死", "去死", "结束生命", "自残", "自伤", "割腕",
                     "伤害自己", "跳楼", "活着没意思", "活着没有意义",
                     "suicide", "suicidal", "kill myself", "end my life", "want to die", "self-harm", "self harm",
                     "hurt myself", "cut myself", "no reason to live", "better off dead"]),
}
CAUTION_KINDS = ("chest", "breath", "stroke", "collapse", "faint")  # the kinds of `red_flag_cautions` this file has notes for


# A question about what an emergency's signs are, not a report of them ("中风有哪些症状？比如嘴歪", "what are the warning
# signs of a stroke, like face drooping?" got "call 120 now": session 19); the safety plugin's red flags mask the same.
SIGNS_ASKED = re.compile(r"(?:有哪些|有什么|哪些)(?:症状|征兆|表现|信号|前兆)|(?:症状|征兆|表现|信号|前兆)(?:是什么|是啥|有哪些|有什么|包括)|"
                         r"(?<![a-z])(?:what are|what're|what r) (?:the )?(?:early |warning |common |main |first |typical )?"
                         r"(?:signs|symptoms)(?![a-z])|(?<![a-z])what does fast stand for(?![a-z])")
# A question about what an emergency looks like (session 21, REDF: "What are the signs of a stroke?" got "beyond what I
# can answer", 中风有哪些表现 the same, 过敏性休克有什么症状 "call 120 now" as if one were happening): the signs, and that
# seeing them means calling 120 at once. A question, not an emergency, so no alarm first (the red flags' masks leave a
# signs question alone); one told as happening still gets the red flag's note, which answers instead (`note_shown`).
# The emergency named (EMERGENCY_NAMED) with a signs question (SIGNS_ASKED, or "how can I tell if", "what does it look
# like", 怎么判断): both, in one message of at most SIGNS_TEXT_MAX characters (a bounded read).
EMERGENCY_NAMED = {
    "stroke": re.compile(r"中风|脑卒中|卒中|脑梗|脑溢血|脑出血|(?<![a-z])(?:strokes?|tia|mini-stroke)(?![a-z])"),
    "heart_attack": re.compile(r"心梗|心肌梗死|心肌梗塞|心脏病发作|心脏病突发|(?<![a-z])heart attacks?(?![a-z])"),
    "sepsis": re.compile(r"败血症|脓毒症|脓毒血症|(?<![a-z])(?:sepsis|septic shock|septicaemia|septicemia)(?![a-z])"),
    "anaphylaxis": re.compile(r"过敏性休克|严重过敏|(?<![a-z])(?:anaphyla\w*|severe allergic reactions?)(?![a-z])"),
    "meningitis": re.compile(r"脑膜炎|(?<![a-z])meningitis(?![a-z])"),
}
# (a signs question asks what the signs are: 有哪些表现, 症状是什么; not a bare 症状 told as a story, 我爸中风三年了，最近后遗症的
# 症状越来越重 got the FAST answer instead of rehab advice: session 21, REDF2, review R21)
SIGNS_ASKED_MORE = re.compile(r"怎么(?:判断|知道|识别|看出|分辨|辨别|认出)|如何(?:判断|识别|辨别)|什么(?:症状|表现|征兆|信号|样子)|(?:症状|表现|征兆|信号)(?:是什么|是啥|有哪些|有什么|有啥|都有什么|都有哪些|包括)|哪些(?:症状|表现|征兆|信号)|(?:的|早期|前期)(?:症状|表现|征兆|信号)\s*(?:[？?]|吗|呢|$)|(?:症状|表现|征兆)(?:和|与|跟)(?:症状|表现|征兆)|"
                              r"(?<![a-z])(?:how (?:can|do|would|should|could) (?:i|you|we|one|people) (?:tell|know|spot|recogni[sz]e)|"
                              r"what (?:does|do|would) (?:it|that|a|an|one|they)\b[^.!?]{0,30}\blook like|(?:signs?|symptoms?) of|"
                              r"warning signs?|what are (?:the )?(?:signs|symptoms))(?![a-z])")
SIGNS_TEXT_MAX = 300
EMERGENCY_SIGNS = {
    # (its first sentence names no emergency number nor the stroke: an answer, not an alarm; bench/outside and the A20
    # tests read either there as one)
    "stroke": {"zh": "中风的信号主要看三处：看脸，一侧嘴角歪斜、笑起来不对称；看胳膊，两只胳膊平举时一侧无力垂下；听说话，说话含糊、说不清或"
                     "听不懂。这就是“中风 120”口诀里的“1、2、0”。突然一只眼看不清、走路不稳或突发剧烈头痛也可能是。只要出现一个，就立即拨打 "
                     "{first_emergency}，记下开始的时间；哪怕症状很快消失了也要打，不要等着看会不会好。",
               "en": "Remember them as FAST: Face drooping on one side (a lopsided smile), Arm weakness (one arm drifts down when both "
                     "are raised), Speech slurred, jumbled or not understood, and Time to call for help at once. These are the warning "
                     "signs of a stroke; sudden loss of sight in one eye, loss of balance or a sudden severe headache can be signs too. If you see any "
                     "one of them, call {first_emergency} at once and note the time they began, even if they pass; don't wait to see."},
    "heart_attack": {"zh": "心梗（心脏病发作）常见的信号：胸口中间压榨样、紧缩样或沉重的痛或闷，持续几分钟以上或反复出现；痛可以放射到左臂、肩膀、"
                           "后背、脖子或下巴；常伴出冷汗、气短、恶心、头晕。女性、老人和糖尿病人有时只有气短、乏力、恶心或上腹不适。出现这些，"
                           "立即拨打 {first_emergency}，停下坐着休息，不要自己开车去医院，也不要等着看会不会好。",
                     "en": "Common signs of a heart attack: pressure, squeezing, tightness or heaviness in the centre of the chest that lasts "
                           "more than a few minutes or keeps coming back; pain spreading to the arm, shoulder, back, neck or jaw; with a cold "
                           "sweat, breathlessness, nausea or light-headedness. Women, older people and people with diabetes may have only "
                           "breathlessness, tiredness, nausea or upper-stomach discomfort. If you notice these, call {first_emergency} at "
                           "once, stop and sit down, and don't drive yourself or wait to see if it passes."},
    "sepsis": {"zh": "败血症（脓毒症）是感染引起的急症，信号包括：说话含糊或糊涂；剧烈发抖或肌肉剧痛；一整天没有小便；呼吸很急、喘不上气；"
                     "感觉从来没这么难受过；皮肤发花、发青、苍白，或出现按压不褪色的皮疹。有感染或发烧的人出现其中任何一个，立即拨打 "
                     "{first_emergency} 或去急诊，并说“担心是败血症”。",
               "en": "Sepsis is an emergency caused by an infection. Its signs include slurred speech or confusion, extreme shivering or "
                     "muscle pain, passing no urine all day, severe breathlessness, feeling the worst you have ever felt, and skin that "
                     "is mottled, bluish or very pale, or a rash that doesn't fade under a pressed glass. If someone with an infection or "
                     "a fever has any of these, call {first_emergency} at once or go to the emergency department and say you are "
                     "worried about sepsis."},
    "anaphylaxis": {"zh": "严重过敏（过敏性休克）的信号：喉咙或舌头肿、喉咙发紧、吞咽或说话困难；喘不上气、喘鸣、一直咳；头晕、晕倒或糊涂；"
                          "常伴嘴唇或脸肿、全身风团。多在吃了某种食物、用了某种药或被蜂蜇后几分钟内出现。一旦出现，有肾上腺素笔就马上用，"
                          "并立即拨打 {first_emergency}；让人躺下、抬高双腿（呼吸困难就坐起来），不要站起来走动。",
                    "en": "The signs of anaphylaxis (a severe allergic reaction): a swelling throat or tongue, a tight throat, trouble "
                          "swallowing or speaking; wheezing or trouble breathing; dizziness, fainting or confusion; often with swollen "
                          "lips or face and hives. It usually comes within minutes of a food, a medicine or a sting. If it happens, use an "
                          "adrenaline pen if there is one and call {first_emergency} at once; lie down with the legs raised (sit up if "
                          "breathing is hard), and don't stand or walk."},
    "meningitis": {"zh": "脑膜炎的信号：发烧伴脖子发硬（低头下巴碰不到胸口）、怕光、剧烈头痛、呕吐、嗜睡叫不醒或糊涂，有时出现按压不褪色的皮疹；"
                         "宝宝可能只是烦躁、不肯吃奶、囟门鼓起。出现这些，立即拨打 {first_emergency} 或去急诊，不要等皮疹出现。",
                   "en": "Signs of meningitis: a fever with a stiff neck (the chin can't touch the chest), dislike of bright light, a severe "
                         "headache, vomiting, drowsiness or confusion, and sometimes a rash that doesn't fade under a pressed glass; a "
                         "baby may just be irritable, off feeds, with a bulging soft spot. If you see these, call {first_emergency} at "
                         "once or go to the emergency department; don't wait for a rash."},
}


def signs_asked(text: str) -> str:
    """The EMERGENCY_SIGNS kind whose signs ``text`` (normalized) asks about, "" for none."""
    if len(text) > SIGNS_TEXT_MAX or not (SIGNS_ASKED.search(text) or SIGNS_ASKED_MORE.search(text)):
        return ""
    return next((kind for kind, named in EMERGENCY_NAMED.items() if named.search(text)), "")


# Whether to go on with what brought on an emergency's signs (session 21, REDF: after three all-nighters and a tight
# chest, which rightly got 120, "should I just have another one to push through my exam?" got an extra-beats tip): a
# question whether to keep doing it, one more, or carry on, asked within URGENT_TURNS of the sign. The answer is no.
KEEPS_ON = re.compile(r"(?:再|还)(?:熬|喝|跑|练|干|来|吃|抽|做)(?:一|1|两)?(?:个|次|杯|罐|晚|夜|圈|组|根|回|下)|接着(?:跑|练|熬|干|喝|做|上班|比赛|打)|继续(?:跑|练|熬|干|喝|做|上班|比赛|打|运动|训练|工作)|"
                      r"坚持(?:跑|练|熬|干|一下|下去|到)|撑(?:过去|一下|下去|到)|(?:能|可以)(?:跑完|练完|打完|比完|做完|熬完)|"
                      r"(?<![a-z])(?:(?:have|do|pull|drink|take|run|try|go for|get) (?:just )?(?:another|one more)|one more|another one|"
                      r"keep (?:going|running|training|working|playing|drinking|pushing)|carry on|push through|power through|"
                      r"push on|finish (?:the|my) (?:run|race|game|match|workout|shift|session|exam|essay)|tough it out|"
                      r"(?:go|get) back (?:to|out)|(?:still|go ahead and) (?:run|train|play|work|race)|sleep it off)(?![a-z])")
KEEP_ON_NO = {"zh": "不要。刚才出现的症状可能是急症，在医生看过、说没事之前，请不要再继续让它发生的那件事（再熬夜、再喝、再跑、再练都不行）："
                    "现在停下来休息，如果还没打，请拨打 {first_emergency}，或者马上去急诊。考试、比赛、工作都可以之后再想办法，身体先要紧。",
              "en": "No. What you described can be an emergency, and until a doctor has checked you and says it's safe, please don't do "
                    "more of what brought it on (another all-nighter, another drink, finishing the run or the session): stop and "
                    "rest now, and if you haven't yet, call {first_emergency} or go to the emergency department. The exam, the race or "
                    "the work can be sorted out later; your body comes first."}


# A follow-up, after an emergency sign earlier in the session, that asks whether to wait or says it eased
# ("已经过了二十分钟了，好像好一点了，要不要等我儿子下班再说？" after a stroke note got the child-fever caution
# and a fatigue tip): don't wait. Signs that ease can still be a stroke (a TIA) or a heart attack.
WAITS = re.compile(r"要不要等|能不能等|可不可以等|可以等|先等|再等|等等看|等一等|等一下再|等.{0,12}(?:再说|再去|再看|再打|回来|下班|"
                   r"放学|明天|天亮|早上)|再观察|观察一下|观察观察|看看再说|明天再|先不去|不去医院|不用(?:打|叫|去)|还要(?:打|叫|去|送)|"
                   r"还需要(?:打|叫|去|送)|还用(?:打|叫|去)|有必要(?:打|叫|去)|好像好(?:一)?点了|好(?:一)?点了|好多了|缓过来了|缓解了|没事了|"
                   r"恢复了|退了|消了|不疼了|不痛了|能说话了|"
                   r"(?<![a-z])(?:wait|waiting)(?![a-z])|(?<![a-z])(?:hold off|sleep on it|see how (?:it|he|she|they) (?:goes|go|is|are)|"
                   r"(?:seems?|feels?|looks?|is|are|getting|got) (?:a bit |a little |much |a lot |way )?better|"
                   r"(?:it'?s|it has|it's|has|have) (?:passed|gone|eased|settled|stopped)|(?:still|really) (?:need to |have to |should )?"
                   r"(?:call|go)|no need to (?:call|go)|(?:until|till|in) the morning|tomorrow)(?![a-z])")
# ...but not one who is already getting help ("已经打了120", "the paramedics are here")
IN_CARE = re.compile(r"打了\s*1[12]0|打过\s*1[12]0|叫了救护车|救护车(?:到了|来了|在路上)|在医院|到医院了|到了医院|急诊室|医生说|"
                     r"(?<![a-z])(?:called (?:an ambulance|the ambulance|9|1|emergency)|ambulance is (?:here|coming|on its way)|"
                     r"paramedics|at the hospital|in (?:the )?(?:er|a&e|emergency room)|doctor said|the doctors? says?)(?![a-z])")
URGENT_TURNS = 3  # earlier user messages searched for an emergency sign
DONT_WAIT = {
    "stroke": {"zh": "不要等。中风的症状减轻甚至消失，也可能是小中风（短暂性脑缺血发作），接下来几小时到几天里再发中风的风险很高，"
                     "而且越早治疗效果越好。请现在就拨打 {first_emergency}，告诉他们症状从几点开始、现在有所好转；不用等家人回来或明天再说，"
                     "先打电话，再通知家人。",
               "en": "Please don't wait. Stroke symptoms that ease or go away can still be a stroke or a mini-stroke (a TIA), the "
                     "risk of a full stroke is highest in the hours and days after, and treatment works best the sooner it starts. "
                     "Call {first_emergency} now and say when the symptoms began and that they have eased; don't wait for family "
                     "to get home or for the morning: call first, then let them know."},
    "chest": {"zh": "不要等。胸痛减轻了，也可能是心脏急症（心梗的疼痛会时轻时重）。请现在就拨打 {first_emergency}，坐下休息，"
                    "不要自己开车去医院；不用等家人回来或明天再说，先打电话。",
              "en": "Please don't wait. Chest pain that eases can still be a heart attack (the pain can come and go). Call "
                    "{first_emergency} now, sit and rest, and don't drive yourself; don't wait for family or the morning: call first."},
    "other": {"zh": "不要等。急症的症状减轻了，并不代表危险已经过去。请现在就拨打 {first_emergency}（或马上去急诊），让医生来判断；"
                    "不用等家人回来或明天再说，先打电话，再通知家人。",
              "en": "Please don't wait. Emergency signs that ease don't mean the danger has passed. Call {first_emergency} now (or go "
                    "to the emergency department) and let a doctor judge; don't wait for family or the morning: call first, then "
                    "let them know."},
}


def urgent_kind(names) -> str:
    """The DONT_WAIT wording for red-flag rule names (the safety plugin's, or this file's SAFETY kinds)."""
    names = list(names)
    if any("stroke" in n for n in names):
        return "stroke"
    return "chest" if any("chest" in n for n in names) else "other" if names else ""


SAFETY_NOTES = {
    "crisis": {"zh": "你说的话让我很担心你。你的安全最重要：如果你有伤害自己的念头，请现在就联系一个信任的人，"
                     "或拨打心理援助热线 {hotlines}；如果有立即的危险，请拨打 {emergency}。"
                     "我在这里陪你，你愿意和我说说现在发生了什么吗？",
               "en": "What you said makes me worried about you, and your safety matters most. If you're thinking about "
                     "hurting yourself, please reach out to someone you trust right now, or call a mental health hotline: "
                     "{hotlines}. If you're in immediate danger, call {emergency}. I'm here with you. Would you tell "
                     "me what's happening right now?"},
    "chest": {"zh": "请注意：胸痛或胸闷不能大意。如果是压榨样的痛、持续几分钟以上，或伴有出汗、气短、恶心、疼痛放射到手臂、"
                    "后背或下巴，请立即拨打 {first_emergency}，不要自己开车去医院。",
              "en": "Please take chest pain seriously. If it feels like pressure or squeezing, lasts more than a few "
                    "minutes, or comes with sweating, shortness of breath, nausea, or pain spreading to the arm, back or "
                    "jaw, call {first_emergency} (or your local emergency number) now, and don't drive yourself."},
    "breath": {"zh": "请注意：如果呼吸困难是突然出现的、越来越重，或伴有胸痛、嘴唇发紫、说不出完整的话，请立即拨打 {first_emergency}。",
               "en": "Please note: if breathing trouble came on suddenly, is getting worse, or comes with chest pain, "
                     "blue lips or being unable to speak in full sentences, call {first_emergency} (or your local emergency number) now."},
    "stroke": {"zh": "请注意：口角歪斜、一侧手脚无力或麻木、说话含糊，是中风的警示信号，请立即拨打 {first_emergency}，并记下症状开始的时间。",
               "en": "Please note: a drooping face, weakness or numbness on one side, or slurred speech are warning signs "
                     "of a stroke. Call {first_emergency} (or your local emergency number) now and note the time the symptoms began."},
    "collapse": {"zh": "请注意：昏迷、抽搐、大量出血、呕血或严重过敏（喉咙肿、呼吸困难）都需要立即拨打 {first_emergency}。",
                 "en": "Please note: unconsciousness, a seizure, heavy bleeding, vomiting blood or a severe allergic reaction "
                       "(throat swelling, trouble breathing) all need {first_emergency} (or your local emergency number) right away."},
    # A faint, whichever word tells it ("I fainted", "I passed out", 我晕倒了, 晕过去了: one event, one answer; session 21,
    # REDF, where "passed out" and 晕倒 got "call 120 now, lay them on their side" and "fainted" this file's collapse
    # note, also "call 120"): what a careful nurse says (NHS "fainting", ESC syncope guideline): one who came round at
    # once and feels normal sees a doctor soon for a first faint; the signs that make it an emergency are 120 (told in
    # the message, they are the red flag `faint_danger` and its note comes instead of this one).
    "faint": {"zh": "请注意：晕倒（晕过去）后一两分钟内就醒、很快恢复正常的，多数不危险，但第一次晕倒请尽快（今天或这几天）去看医生查查原因。"
                    "如果一两分钟还醒不过来，晕倒时伴有胸痛、心慌，是在运动中晕倒的，撞到了头，喘不上气、抽搐，或者醒来后还是糊涂、"
                    "很不舒服，请立即拨打 {first_emergency}。现在先坐下或躺下，把腿抬高，起身要慢。",
              "en": "Please note: a faint (passing out) where someone comes round within a minute or two and soon feels normal is usually not "
                    "dangerous, but a first faint needs a doctor soon (today or in the next few days) to find the cause. Call "
                    "{first_emergency} if they don't come round within a minute or two, or if it came with chest pain or a racing "
                    "heart, happened during exercise, with a knock to the head, breathlessness or a fit, or they are still "
                    "confused or unwell after. For now, sit or lie down with your legs raised, and get up slowly."},
}

BP_TERMS = Terms(["血压", "高压", "低压", "blood pressure", "bp", "mmhg"])
BP_READING = re.compile(r"(?<!\d)(\d{2,3})\s*[/／]\s*(\d{2,3})(?!\d)")
BP_NOTES = {
    "high": {"zh": "你提到的读数 {reading} 很高。如果伴有胸痛、气短、剧烈头痛、视物模糊、说话不清或一侧无力，请立即拨打 {first_emergency}；"
                   "即使没有不适，也请静坐 5 分钟后复测，仍然这么高请今天就去医院。",
             "en": "The reading you mention, {reading}, is very high. With chest pain, shortness of breath, a severe headache, "
                   "blurred vision, slurred speech or weakness on one side, call {first_emergency} now; even without symptoms, rest "
                   "5 minutes and measure again, and if it is still this high, see a doctor today."},
    "raised": {"zh": "你提到的读数 {reading} 达到了高血压的参考线（≥140/90 mmHg）。一次读数不能下结论：静坐 5 分钟后复测，"
                     "几天里在不同时间多测几次并记下来；如果多次都在这个水平，请去医院确认。",
               "en": "The reading you mention, {reading}, is at or above the high blood pressure line (140/90 mmHg). One "
                     "reading isn't a diagnosis: rest 5 minutes and measure again, take a few readings at different times "
                     "over several days and write them down, and if they stay this high, see a doctor."},
    "low": {"zh": "你提到的读数 {reading} 偏低（低于 90/60 mmHg）。如果伴有头晕、眼前发黑或乏力，请慢慢坐下或躺下，并尽快就医。",
            "en": "The reading you mention, {reading}, is low (under 90/60 mmHg). If you feel dizzy, faint or weak, sit or "
                  "lie down slowly and see a doctor soon."},
}

# -- answers from the user's own records (plugins/_own_records.py reads the question) -------------
# The tips file's topic for a record type: its tip follows the figures.
RECORD_TOPICS = {"blood_pressure": "blood_pressure", "blood_glucose": "blood_sugar", "weight": "weight", "sleep": "sleep",
                 "steps": "steps", "water": "water", "heart_rate": "palpitations", "temperature": "cold_fever"}
RECORDS_WORDS = {
    "zh": {"period": "按你的记录，最近 {days} 天（{start} 至 {end}）：", "today": "按你的记录，今天（{end}）：",
           "none": "最近 {days} 天（{start} 至 {end}）你没有{title}记录", "none_today": "今天你还没有{title}记录",
           "last": "，最近一次是 {date} 的 {value}。", "never": "你还没有{title}记录。",
           "add": "在小程序的健康记录里添上一条，我就能按你的记录回答。", "bmi": "按 BMI {value}，属于「{label}」（{guideline}）。",
           "end": "。"},
    "en": {"period": "From your records for the last {days} days ({start} to {end}): ", "today": "From your records for today ({end}): ",
           "none": "You have no {title} records in the last {days} days ({start} to {end})", "none_today": "You have no {title} records today",
           "last": "; the latest is {value} on {date}.", "never": "You have no {title} records yet.",
           "add": "Add one under health records in the app and I can answer from it.",
           "bmi": "Your BMI is {value}: {label} ({guideline}).", "end": "."},
}
# What the figures call for, by the same lines the companion's note on a reading told uses (BP_NOTES):
# 180/110 is the emergency range, 140/90 the high blood pressure line.
RECORD_CAUTIONS = {
    "bp_emergency": {"zh": "其中有读数达到 180/110 mmHg 以上（最高 {high}），属于危险范围：如果伴有胸痛、气短、剧烈头痛、视物模糊、说话不清或一侧无力，"
                           "请立即拨打 {first_emergency}；即使没有不适，也请静坐 5 分钟后复测，仍然这么高请今天就去医院。",
                     "en": "One of these readings is in the emergency range, 180/110 mmHg or higher (highest {high}): with chest pain, "
                           "shortness of breath, a severe headache, blurred vision, slurred speech or weakness on one side, call "
                           "{first_emergency} now; even without symptoms, rest 5 minutes and measure again, and if it is still this "
                           "high, see a doctor today."},
    "bp_high": {"zh": "这些读数在高血压的范围里（≥140/90 mmHg），请带着这些记录去看医生，让医生判断要不要开始或调整治疗；已经在吃降压药的，不要自己加减药量。",
                "en": "These readings are in the high blood pressure range (140/90 mmHg or more): please see a doctor and take "
                      "these records along, so they can judge whether treatment should start or change; if you already take "
                      "blood pressure medicine, don't change the dose yourself."},
    "bp_low": {"zh": "有读数偏低（低于 90/60 mmHg）：如果伴有头晕、眼前发黑或乏力，请慢慢坐下或躺下，并尽快就医。",
               "en": "Some readings are low (under 90/60 mmHg): if you feel dizzy, faint or weak, sit or lie down slowly and see a doctor soon."},
    "sugar_very_high": {"zh": "有读数达到 {sugar_very_high} mmol/L 以上（最高 {high}）：如果口渴得厉害、恶心呕吐、呼吸深快、嗜睡或神志不清，请立即拨打 {first_emergency}；"
                              "没有这些也请今天就去看医生。",
                        "en": "A reading is {sugar_very_high} mmol/L or higher (highest {high}): with great thirst, vomiting, fast deep breathing, "
                              "drowsiness or confusion, call {first_emergency} now; without them, see a doctor today."},
    "sugar_high": {"zh": "这些读数高于正常范围（空腹 {sugar_low}–6.1、餐后 2 小时低于 7.8 mmol/L；空腹 ≥{sugar_average} 或任何时候 ≥{sugar_high} 是糖尿病的参考线），"
                         "请带着记录去看医生。",
                   "en": "These readings are above the normal range ({sugar_low}–6.1 mmol/L fasting, under 7.8 two hours after a meal; "
                         "{sugar_average} fasting or {sugar_high} at any time is the diabetes line): please see a doctor and take your records along."},
    "sugar_low": {"zh": "有读数低于 {sugar_low} mmol/L，是低血糖：再出现心慌、手抖、出汗时，马上吃约 15 克糖（半杯果汁），15 分钟后复测；神志不清请拨打 {first_emergency}。"
                        "请把这些低值告诉医生。",
                  "en": "A reading is under {sugar_low} mmol/L, which is low blood sugar: when you feel shaky, sweaty or your heart races, "
                        "take about 15 g of sugar (half a glass of juice) and measure again after 15 minutes; if someone becomes "
                        "confused, call {first_emergency}. Tell your doctor about these low readings."},
    "pulse": {"zh": "静息心率持续高于 100 或低于 50 次/分，请去看医生；伴有胸痛、晕厥或气短，请立即拨打 {first_emergency}。",
              "en": "A resting heart rate that stays over 100 or under 50 beats a minute is worth seeing a doctor about; with chest "
                    "pain, fainting or shortness of breath, call {first_emergency}."},
    "fever": {"zh": "有读数在 38.5 °C 以上，是发烧：多喝水、休息；持续三天以上、超过 39.5 °C 或伴有呼吸困难、意识不清，请去医院。",
              "en": "A reading is over 38.5 °C, a fever: drink plenty and rest; if it lasts over three days, goes above 39.5 °C or "
                    "comes with trouble breathing or confusion, see a doctor."},
    "weight_loss": {"zh": "体重下降得比较快；如果不是刻意减重，值得去看医生查一查。",
                    "en": "That is a fast drop; if you are not trying to lose weight, it is worth seeing a doctor."},
}
# The blood-sugar lines the sugar cautions quote: the records' grading table ({sugar_very_high} 16.7, {sugar_low} 3.9,
# {sugar_high} 11.1, {sugar_average} 7.0 mmol/L)
SUGAR_LINES = {f"sugar_{key}": text for key, text in glucose_lines_text().items()}
RAISED_BP = {"grade_1", "grade_2", "grade_3", "stage_1", "stage_2", "crisis"}


def record_caution(report: dict) -> str:
    """The RECORD_CAUTIONS key the period's figures call for, "" for none."""
    s, kind = report["stats"], report["type"]
    if not s["count"]:
        return ""
    low, high, average = s["min"], s["max"], s["avg"]
    if kind == "blood_pressure":
        category = report["bp_category"] or {}
        codes = {(category.get(key) or {}).get("category") for key in ("average", "latest")}
        if high["systolic"] >= 180 or high["diastolic"] >= 110:
            return "bp_emergency"
        if codes & RAISED_BP or average["systolic"] >= 140 or average["diastolic"] >= 90:
            return "bp_high"
        return "bp_low" if low["systolic"] < 90 or low["diastolic"] < 60 else ""
    if kind == "blood_glucose":
        # the records' grade (plugins/_record_grades.py): None for readings in another unit than mmol/L
        grade = report.get("glucose_grade")
        return f"sugar_{grade}" if grade else ""
    if kind == "heart_rate":
        return "pulse" if average > 100 or average < 50 else ""
    if kind == "temperature":
        return "fever" if high >= 38.5 else ""
    if kind == "weight" and s["trend"] and s["trend"]["direction"] == "down" and \
            abs(s["trend"]["change"]) >= 0.05 * average and report["days"] <= 183:
        return "weight_loss"
    return ""


def records_text(report: dict, lang: str, numbers: dict) -> str:
    """The answer's first part to a question about one's records: the period's figures (the records
    service's line), the BMI for weight, and what they call for; or that there are none, the latest
    before, and how to add one."""
    words, s = RECORDS_WORDS[lang], report["stats"]
    fields = {"days": report["days"], "start": report["from"], "end": report["to"], "title": report["title"]}
    if not s["count"]:
        latest = report["latest"]
        said = [words["never"].format(**fields)] if latest is None else [
            words["none_today" if report["days"] == 1 else "none"].format(**fields)
            + words["last"].format(date=latest["date"], value=latest["text"])]
        return _join(said + [words["add"]], lang)
    said = [words["today" if report["days"] == 1 else "period"].format(**fields) + report["line"] + words["end"]]
    bmi = report["bmi"]
    if report["type"] == "weight" and bmi and bmi.get("label"):  # (the report gives its label in ``lang``)
        said.append(words["bmi"].format(value=bmi["value"], label=bmi["label"], guideline=bmi["guideline"]))
    caution = record_caution(report)
    if caution:
        high = s["max"]
        shown = f"{high['systolic']}/{high['diastolic']}" if isinstance(high, dict) else f"{high:g}"
        said.append(fill(RECORD_CAUTIONS[caution][lang], {**numbers, **SUGAR_LINES, "high": shown}))
    return _join(said, lang)


WEEKDAYS = {"zh": {"mon": "周一", "tue": "周二", "wed": "周三", "thu": "周四", "fri": "周五", "sat": "周六", "sun": "周日"},
            "en": {"mon": "Mon", "tue": "Tue", "wed": "Wed", "thu": "Thu", "fri": "Fri", "sat": "Sat", "sun": "Sun"}}
MEDICINE_WORDS = {
    "zh": {"intro": "你的吃药提醒：", "item": "「{title}」{when}", "next": "，下一次在 {next}", "sep": "；", "end": "。",
           "daily": "每天 {times}", "weekly": "每{days} {times}", "once": "{at} 一次", "every": "每 {n} 分钟",
           "off": "（已暂停）", "taken": "我看不到你有没有真的吃，只知道提醒什么时候响过（上一次：{last}）。",
           "taken_never": "我看不到你有没有真的吃，这个提醒也还没有响过。",
           "none": "你还没有设吃药提醒。可以在小程序的提醒里加一个（比如每天 08:00 和 20:00），到时间我会在聊天里提醒你。"},
    "en": {"intro": "Your medicine reminders: ", "item": "\"{title}\" {when}", "next": ", next at {next}", "sep": "; ", "end": ".",
           "daily": "every day at {times}", "weekly": "on {days} at {times}", "once": "once, at {at}", "every": "every {n} minutes",
           "off": " (paused)", "taken": "I can't see whether you took it, only when the reminder went off (last: {last}).",
           "taken_never": "I can't see whether you took it, and this reminder hasn't gone off yet.",
           "none": "You have no medicine reminder yet. Add one under reminders in the app (say every day at 08:00 and "
                   "20:00) and I'll remind you in this chat when it's time."},
}


def _local(stored: str | None, timezone: str) -> str:
    """A stored UTC time as "YYYY-MM-DD HH:MM" in the reminder's time zone."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    if not stored:
        return ""
    try:
        moment = datetime.fromisoformat(stored.replace("Z", "+00:00")).astimezone(ZoneInfo(timezone))
    except (ValueError, KeyError, OSError):
        return stored
    return moment.strftime("%Y-%m-%d %H:%M")


def medicine_times(reminders, user: dict, asked, lang: str) -> str:
    """The answer's first part to a question about when one takes one's medicine, or whether one
    took it: the user's medicine reminders (a reminder whose title, text or note names a medicine)."""
    words = MEDICINE_WORDS[lang]
    items, _ = reminders.list(user["id"], limit=100)
    mine = [r for r in items if MEDICINE.search(" ".join(str(r.get(k) or "") for k in ("title", "text", "note")).lower())]
    if not mine:
        return words["none"]
    said = []
    for reminder in mine[:5]:
        rule, zone = reminder.get("rule") or {}, reminder.get("timezone") or "UTC"
        kind = rule.get("kind")
        times = "、".join(rule.get("times") or []) if lang == "zh" else ", ".join(rule.get("times") or [])
        when = words["daily"].format(times=times) if kind == "daily" else \
            words["weekly"].format(days=("、" if lang == "zh" else ", ").join(WEEKDAYS[lang].get(d, d) for d in rule.get("days") or []),
                                   times=times) if kind == "weekly" else \
            words["once"].format(at=str(rule.get("at", ""))[:16].replace("T", " ")) if kind == "once" else \
            words["every"].format(n=rule.get("every_minutes")) if kind == "interval" else ""
        item = words["item"].format(title=reminder.get("title") or reminder.get("text") or "", when=when)
        if reminder.get("enabled", True) is False:
            item += words["off"]
        elif reminder.get("next_fire_at"):
            item += words["next"].format(next=_local(reminder["next_fire_at"], zone))
        said.append(item)
    text = [words["intro"] + words["sep"].join(said) + words["end"]]
    if asked.taken:
        last = max((r.get("last_fired_at") or "" for r in mine), default="")
        text.append(words["taken"].format(last=_local(last, next(r.get("timezone") or "UTC" for r in mine))) if last else
                    words["taken_never"])
    return _join(text, lang)


# For end users one plain sentence; how to connect a model is the operator's business, told by
# `wellmate.py check`, the startup log and /test/health (Wellmate.setup_notice).
NOTICE = {"zh": "（我的回答来自本地的健康指南，仅供参考。）",
          "en": "(My answers come from a local health guide, for reference only.)"}

# Where the reply may be cut into stream pieces: after a sentence, and after a clause if long.
_SENTENCE_END = re.compile(r"[。！？!?；;）)]+[”’」』]*\s*|(?<=[a-z0-9)\"'])[.]\s+|\n+")
_CLAUSE_CUT = re.compile(r"[，,：]\s*")


def stream_pieces(text: str, clause_min: int = 18) -> list[str]:
    """``text`` cut into sentences, and long sentences into clauses; the pieces join to ``text``."""
    pieces, start = [], 0
    ends = [m.end() for m in _SENTENCE_END.finditer(text)] + [len(text)]
    for end in ends:
        sentence, cut = text[start:end], 0
        for m in _CLAUSE_CUT.finditer(sentence):
            if m.end() - cut >= clause_min and len(sentence) - m.end() >= clause_min // 2:
                pieces.append(sentence[cut:m.end()])
                cut = m.end()
        if sentence[cut:]:
            pieces.append(sentence[cut:])
        start = end
    return pieces


# ---------------------------------------------------------------------------------------------
# The topic model: when no keyword names a topic
# ---------------------------------------------------------------------------------------------

TOPIC_TRAINING = "models/training/offline_topics.tsv"
# 37 topics x 16,384 buckets of 4-byte weights: 2.4 MB of RSS; the library's default 131,072 takes
# 19 MB for the ~28,000 features of 2,000 sentences, and was right on 57.4% of the held rows
# against 54.5% (the first 1,971 sentences), which the confidence threshold makes up for.
TOPIC_BUCKETS = 1 << 14


class TopicModel:
    """The trained fallback for questions the keyword lists miss ("feel tense all the time, how do I
    unwind", "how many drinks a week is ok"): plugins/_textmodel.py over character and word
    n-grams, trained on models/training/offline_topics.tsv (`python wellmate.py train-topics`).
    Loaded on first use; a missing or broken file is logged once and the companion goes on with
    its keywords alone."""

    def __init__(self, paths: list[Path]):
        self.paths = paths
        self.training: list[Path] = []  # the rows it was trained on (`words`), set by the provider
        self._model, self._loaded = None, False
        self._lock = threading.Lock()

    def get(self):
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    self._model = self._load()
                    self._loaded = True
        return self._model

    def _load(self):
        from wellmate_plugins._textmodel import TextModel

        path = next((p for p in self.paths if p.exists()), self.paths[0])
        try:
            return TextModel.load(path)
        except ValueError as e:
            log.warning("offline topic model: %s; answering from the keyword lists alone", e)
            return None

    @functools.cached_property
    def words(self) -> frozenset:
        """The English words (6+ letters) of the training rows beside the model: words people wrote, so no
        slips for Guide.spelled to correct ("my elderly father" was read as "fatter", a weight question: the
        session-18 new-user audit). The tips file's own texts did not spell "father"; these rows do, and
        a thousand everyday words more. A word written twice or more: the rows hold slips on purpose, each
        once (diarrea, headachs, stomache); of the 41 words they hold one typo from a keyword, these 3 are slips and 16
        real words are written twice or more (burning was read as burping, spring as sprain, ruining as running).
        Read once (about 4,000 rows)."""
        found = Counter()
        for path in self.training:
            try:
                found.update(re.findall(r"(?<![a-z'])[a-z]{6,}(?![a-z'])", path.read_text(encoding="utf-8").lower()))
            except OSError:
                continue
        return frozenset(word for word, times in found.items() if times >= 2)

    def guess(self, text: str) -> tuple[str, float] | None:
        """The most likely topic id of ``text`` and its probability, or None without a model: NO_TOPIC (no health
        question) where it is the likeliest label; else the likeliest health topic, with its probability among the
        health topics alone, as the model gave it before it learnt NO_TOPIC (whose share would otherwise pull a
        health question under `topic_confidence`)."""
        model = self.get()
        if model is None or not text.strip():
            return None
        if NO_TOPIC not in model.labels:
            return model.predict(text)
        scores = model.scores(text)
        none = scores.pop(NO_TOPIC)
        best = max(scores, key=scores.__getitem__)
        if none > scores[best]:
            return NO_TOPIC, none
        return best, scores[best] / (1.0 - none) if none < 1.0 else 0.0


# ---------------------------------------------------------------------------------------------
# The provider
# ---------------------------------------------------------------------------------------------


def _text(content) -> str:
    """Message content as text: a string, or OpenAI's list of parts."""
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")


class Answer(NamedTuple):
    text: str
    topic: str | None  # the topic id the reply is about (a special group's, when one is cautioned)
    groups: tuple  # the special groups whose caution the reply carries


class OfflineProvider(Provider):
    follows_instructions = False  # it answers what the user says; it cannot phrase a reminder
    no_model_notice = ("the offline companion, which answers from prompts/offline_tips.yaml; to connect a model, add a "
                       "provider with plugin: openai under providers: (Ollama on this machine or a cloud API) and list "
                       "it first in each agent's providers (docs/models.md)")
    settings = {
        "tips": Setting("prompts/offline_tips.yaml", "Health tips file, relative to config.yaml; re-read when it changes."),
        "notice": Setting(True, "Say once per session, in one short sentence, that answers come from a local guide.", bool),
        "agent": Setting("", "Speak as the physical or mental agent; empty: tell from the system prompt.",
                         choices=["", "physical", "mental"]),
        "topic_model": Setting("models/offline_topics.json", "Topic model for questions the tips file's keywords "
                               "miss (python wellmate.py train-topics), relative to config.yaml; empty: keywords only."),
        "topic_confidence": Setting(0.35, "How sure the topic model must be to choose a topic (0-1); below it the "
                                    "answer is the one for no topic.", float, min=0.0, max=1.0),
    }

    def __init__(self, name: str, config: dict, wm=None):
        super().__init__(name, config, wm)
        self.tips_file = WatchedYaml(data_file_candidates(wm, self.config["tips"]), compile_tips, without="answering without it")
        self.tips_file.read_now(wm)  # a broken file is an error of `check`
        path = self.config["topic_model"]
        self.topic_model = TopicModel(data_file_candidates(wm, path)) if path else None
        if self.topic_model is not None and wm is not None:
            self.topic_model.training = topic_training_files(wm)

    def stream(self, messages, turn=None):
        # Pieces arrive one by one, so a client sees a streamed reply even with no model.
        yield from stream_pieces(self.reply(messages, turn))

    def reply(self, messages: list[dict], turn=None) -> str:
        return self.answer(messages, turn).text

    def answer(self, messages: list[dict], turn=None) -> Answer:
        """The reply to ``messages`` with the topic it chose and the groups it cautioned. What
        the safety plugin did on this turn comes from ``turn.flags`` (none without a turn)."""
        system = _text(messages[0].get("content")) if messages and messages[0].get("role") == "system" else ""
        users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
        last = users[-1] if users else len(messages)
        message = _text(messages[last].get("content")) if users else ""
        history = [m for m in messages[:last] if m.get("role") in ("user", "assistant")]
        said = "\n".join(_text(m.get("content")) for m in history if m.get("role") == "assistant")
        recent = "\n".join(_text(m.get("content")) for m in history[-6:] if m.get("role") == "assistant")
        earlier = [_text(m.get("content")) for m in history if m.get("role") == "user"]

        lang = self._language(message, earlier, system)
        safety = self._service("safety")  # None where the safety plugin is disabled
        flags = turn.flags if turn is not None else {}
        composing = Composer(lang, self._agent(system, turn), normalize(message), said, recent,
                         seed=f"{len(history)}\x1f{message}", note_shown=bool(flags.get("notes_shown")),
                         label=self._label(message), guess=self._guess, rather_none=self._rather_none,
                         confidence=self.config["topic_confidence"], numbers=safety_numbers(self.wm, lang),
                         judges_crisis=safety is None, checked_in=self._checked_in(safety, message, flags),
                         cheerless=self._names_death(safety, message, flags), aside=self._aside(message),
                         moved_on=self._moved_on(message),
                         passages=flags.get("library") or (),
                         replies=tuple(_text(m.get("content")) for m in history if m.get("role") == "assistant"),
                         urgent_before=self._urgent_before(safety, message, earlier),
                         cautions=self._cautions(safety, message, flags),
                         records=self._own_records(message, lang, turn, earlier[-1:]))
        guide = self.tips_file.get()
        if self.topic_model is not None and guide.words_written is not self.topic_model.words:
            guide.words_written = self.topic_model.words  # (a re-read tips file is a new Guide)
        parts = composing.compose(guide, [normalize(t) for t in earlier])
        unused = [p.get("id") for p in composing.passages if isinstance(p, dict) and p.get("id") != composing.quoted]
        if turn is not None and unused:  # the reply cites what it quoted, not every passage the library found
            turn.flags["sources_unused"] = unused
        # Once per session (as far as the history reaches), and never on top of an urgent note.
        if self.config["notice"] and not any(n in said for n in NOTICE.values()) and not (
                composing.crisis or composing.note_shown or composing.checked_in):
            parts.append("\n\n" + NOTICE[lang])
        return Answer(_join(parts, lang), composing.topic, composing.groups)

    def _own_records(self, message: str, lang: str, turn=None, before: list[str] = ()) -> tuple[str, str]:
        """(what the user's own records say, the tips file's topic for them) when ``message`` asks about
        them ("how's my BP been lately?", 我几点吃药: plugins/_own_records.py), else ("", ""). The figures
        and grading are the records service's (Records.report: the stats and the $health_summary line a
        model reads), the medicine times the reminders service's; either disabled, its questions get
        the general answer as before. Asked only for such a question: one stats query."""
        user = getattr(turn, "user", None)
        # (a long message is no such question: not even normalized again, so a hostile one costs nothing here)
        if not user or not message.strip() or len(message) > 1000:
            return "", ""
        # A short follow-up naming another measure ("那血糖呢？") after a question about one's records: the
        # user's previous message, read the same way (its answer came from the records).
        after = bool(before) and len(before[-1]) <= 1000 and asked_of_records(normalize(before[-1])) is not None
        asked = asked_of_records(normalize(message), after_records=after)
        if asked is None:
            return "", ""
        try:
            if asked.kind == "medicine":
                reminders = self._service("reminders")
                return (medicine_times(reminders, user, asked, lang), "medicines") if reminders else ("", "")
            records = self._service("records")
            if records is None:
                return "", ""
            report = records.report(user, asked.kind, asked.days, lang)
            return records_text(report, lang, safety_numbers(self.wm, lang)), RECORD_TOPICS.get(asked.kind, "")
        except Exception:  # the records must never cost the reply: the general answer still comes
            log.exception("answering from the records of user %s", user.get("id"))
            return "", ""

    def _service(self, name: str):
        """Another plugin's service, None where it is disabled or where this provider runs
        without a Wellmate (a test that builds it alone)."""
        lookup = getattr(self.wm, "service", None)
        return lookup(name) if lookup else None

    @staticmethod
    def _checked_in(safety, message: str, flags: dict) -> bool:
        """Whether the safety plugin put a check-in (or a crisis note) on this turn, or the session
        had a crisis earlier: the reply then stays gentle and never cheerful. Read from the turn's
        flags where the plugin judged this turn; else (no turn, or its hook failed) its verdict
        is asked here (~0.1 ms; the same words give the same verdict)."""
        if flags.get("crisis_earlier"):
            return True
        if "check_in" in flags:
            return bool(flags["check_in"] or flags.get("crisis"))
        if safety is None or not message.strip():
            return False
        try:
            return safety.assess(message).level is not None
        except Exception:  # a broken safety check must not cost the reply
            log.exception("asking the safety plugin about a message")
            return False

    def _cautions(self, safety, message: str, flags: dict) -> list[str]:
        """The emergency caution kinds ``message`` names (prompts/safety.yaml `red_flag_cautions`): the safety plugin's
        answer, or with it disabled the same reader on the same file. None when the red-flag note is shown."""
        if flags.get("notes_shown") or not message.strip():
            return []
        if safety is not None:
            try:
                return [k for k in safety.cautions(message) if k in CAUTION_KINDS]
            except Exception:  # a broken safety check must not cost the reply
                log.exception("asking the safety plugin for a message's cautions")
                return []
        return [k for k in self._caution_file().get().kinds(normalize(message)) if k in CAUTION_KINDS]

    def _caution_file(self) -> CautionFile:
        table = getattr(self, "_cautions_read", None)
        if table is None:
            table = self._cautions_read = CautionFile(self.wm)
        return table

    def _urgent_before(self, safety, message: str, earlier: list[str]) -> str:
        """The DONT_WAIT kind when ``message`` asks whether to wait, or says the signs eased, and one of the
        last few earlier messages had an emergency sign (the safety plugin's red flags, else this file's
        own); "keep_on" when it asks whether to go on with what brought them on (KEEPS_ON); "" otherwise. The earlier messages are read only for such a message (~0.1 ms each)."""
        text = normalize(message)
        keeps_on = len(text) <= SIGNS_TEXT_MAX and KEEPS_ON.search(text)  # "should I have another one?": no (KEEP_ON_NO)
        if keeps_on and not IN_CARE.search(text):
            # ...and in the message that tells the sign too (session 21, REDF2, review R21: "my chest hurt and my arm went
            # numb earlier, should I just have another coffee and push through my shift?" in one message got a caffeine tip)
            try:
                own = (safety.check(message)[1] or safety.cautions(message)) if safety is not None \
                    else self._caution_file().get().kinds(text)
            except Exception:  # a broken safety check must not cost the reply
                log.exception("asking the safety plugin about a keep-on message")
                own = []
            if own:
                return "keep_on"
        if not earlier or not (WAITS.search(text) or keeps_on) or IN_CARE.search(text):
            return ""
        for before in reversed(earlier[-URGENT_TURNS:]):
            names = []
            if safety is not None:
                try:
                    names = safety.check(before)[1]
                    # ...to go on with what brought on a caution's sign too (a chest that hurts after five energy drinks,
                    # then "can I have one more?"): no
                    names = names or (safety.cautions(before) if keeps_on else [])
                except Exception:  # a broken safety check must not cost the reply
                    log.exception("asking the safety plugin about an earlier message")
            else:
                names = self._caution_file().get().kinds(normalize(before))
            if names:
                return "keep_on" if keeps_on else urgent_kind(names)
        return ""

    @staticmethod
    def _names_death(safety, message: str, flags: dict) -> bool:
        """Whether the message has a word of dying or killing (the safety plugin's `risk_word` flag,
        else its answer here): the reply is then never cheerful, whatever the tagger read."""
        if "risk_word" in flags:
            return bool(flags["risk_word"])
        if safety is None or not message.strip():
            return False
        try:
            return safety.names_death(message)
        except Exception:  # a broken safety check must not cost the reply
            log.exception("asking the safety plugin about a message")
            return False

    def _guess(self, text: str) -> tuple[str, float]:
        """The topic model's (topic id, probability) for ``text``; ("", 0) without a model."""
        guessed = self.topic_model.guess(text) if self.topic_model is not None else None
        if guessed and guessed[0] == GRIEF and (MISHAP.search(text.lower()) or FIGURATIVE_DEATH.search(text.lower())):
            # a thing that died is no loss to grieve: the model learnt "died" from its grief rows ("my laptop died and
            # I lost my whole essay" got "let people help" and "thoughts of joining them": the session-15 review)
            return ("", 0.0)
        return guessed or ("", 0.0)

    def _rather_none(self, text: str, key: str) -> bool:
        """Whether the topic model finds ``text`` likelier no health question (NO_TOPIC) than about topic ``key``."""
        model = self.topic_model.get() if self.topic_model is not None else None
        if model is None or NO_TOPIC not in model.labels or not text.strip():
            return False
        scores = model.scores(text)
        return scores[NO_TOPIC] > scores.get(key, 0.0)

    def _label(self, message: str) -> str | None:
        """The configured emotion tagger's label for the user's message (None when this provider
        runs outside a Wellmate): it reads sarcasm and negation better than the word match here."""
        chat = self._service("chat")
        return chat.tag(message) if chat is not None and message.strip() else None

    def _moved_on(self, message: str) -> bool | str:
        """Whether the message tells of a loss long past and then of how it is now, fine: True when a loss placed years
        back (LONG_PAST) is followed by words the emotion tagger reads as no bad feeling ("…ten years ago; today I cooked
        her soup recipe and smiled"; not "…two years ago and I still cry every day"); "then_now" when the tagger reads a
        past and a now (chat's `moved_on`) and the whole message's label is to decide; False otherwise."""
        chat = self._service("chat")
        read = getattr(chat, "moved_on", None)
        try:
            now = loss_now(normalize(message))
            if now and not asks(now) and chat is not None and chat.tag(now) in ("happy", "calm", "neutral"):
                return True
            return "then_now" if read and message.strip() and read(message) else False
        except Exception:  # a broken lexicon must not cost the reply
            log.exception("asking the emotion tagger about a message")
            return False

    def _aside(self, message: str) -> list[tuple[int, int]]:
        """Spans of the normalized message whose feeling words the emotion tagger reads as telling of none (chat's
        `aside`); [] outside a Wellmate or with a tagger that cannot tell."""
        chat = self._service("chat")
        read = getattr(chat, "aside", None)
        if read is None or not message.strip():
            return []
        try:
            return read(normalize(message))
        except Exception:  # a broken lexicon must not cost the reply
            log.exception("asking the emotion tagger about a message")
            return []

    def _agent(self, system: str, turn=None) -> str:
        """Which of its two voices the companion speaks in: the provider's setting; else the
        agent of the turn when it is one of them (the shipped physical and mental agents); else,
        for an agent the host defined (or a call without a turn, a reminder phrased), the
        system prompt's first mention of either kind of health (身体健康 or 心理健康 up front)."""
        if self.config["agent"]:
            return self.config["agent"]
        if turn is not None and turn.agent in ("physical", "mental"):
            return turn.agent
        text = system.lower()
        found = []
        for agent, marks in (("mental", ("心理", "mental", "情绪", "emotion")), ("physical", ("身体", "physical", "body"))):
            positions = [text.find(m) for m in marks if m in text]
            if positions:
                found.append((min(positions), agent))
        return min(found)[1] if found else "physical"

    @staticmethod
    def _language(message: str, earlier: list[str], system: str) -> str:
        for text in [message, *reversed(earlier)]:
            if _CJK.search(text):
                return "zh"
            if re.search(r"[A-Za-z]", text):
                return "en"
        return "en" if system and not _CJK.search(system) else "zh"  # emoji only: the prompt's language


# Sleep lost to a symptom: the symptom is the subject (Composer.choose_topic).
KEPT_AWAKE = re.compile(r"(?:疼|痛|痒|咳|酸|胀|肿|难受)得[^，。！？,.!?]{0,4}(?:睡不着|睡不好|没法睡|没办法睡|睡不了|整晚没睡)|"
                        r"(?<![a-z])(?:pain|hurts?|hurting|ache|aching|throbbing|itch|itching|itchiness|cough|coughing)\s+"
                        r"(?:keeps|kept|is keeping|has been keeping|wakes|woke) me (?:up|awake)(?![a-z])|"
                        r"(?<![a-z])too (?:sore|painful|itchy) to sleep(?![a-z])")

# A fever's own words among a cold's keywords (a child's fever named beside another sign is the child topic's;
# "a cough for a week after a cold" is the cough's).
_FEVER_WORD = re.compile(r"烧|热|体温|fever|temp|burning up|hot to the touch")
# ...or a fever's reading with a decimal or a unit ("feels warm, 38.1", "39度", "101.5f"), not "38 weeks".
BODY_TEMPERATURE = re.compile(r"(?<![\d.])(?:3[89]|4[0-2])(?:[.,]\d(?!\d)|\s*(?:度|℃|°))"
                              r"|(?<![\d.])10[0-4](?:\.\d)?\s*(?:°\s*f|f(?![a-z])|degrees)")

# A question: a question mark or particle at the end, or a question word up front.
QUESTION = re.compile(r"(?:[?？]|[吗呢么]\W*)$|^(?:how|what|when|why|where|which|who|can|could|should|is|are|do|does|"
                      r"will|would|怎么|为什么|什么|多久|多长|多少|要不要|能不能|是不是|可不可以|需不需要|哪)(?![a-z])")


def asks(text: str) -> bool:
    return bool(QUESTION.search(text.strip()))


# A message that opens with a thank-you ("ok thanks, ...", "好的，谢谢你，..."), and goes on with no question and no
# "but" ("thanks, but she still won't eat" is news): a close, where it names no topic (Composer.compose).
_OPENS_THANKS = re.compile(r"^\W{0,3}(?:(?:ok|okay|oh|好的|好|嗯嗯|嗯|哦)\W{0,3})?(?:谢谢|感谢|多谢|非常感谢|(?<![a-z])(?:thank you|thanks|thankyou|thx|ty|cheers)(?![a-z]))")
_GOES_ON = re.compile(r"不过|但是|可是|还是|只是|就是|(?<![a-z])(?:but|though|still|however|except|although)(?![a-z])")
CLOSE_CHARS = 100  # a close is a line or two, not a new story told after a thanks


def closes_with_thanks(text: str) -> bool:
    text = text.strip()
    return len(text) <= CLOSE_CHARS and bool(_OPENS_THANKS.match(text)) and not asks(text) and not _GOES_ON.search(text)


def about_someone_else(text: str) -> bool:
    """Whether ``text`` speaks of another person (my daughter, 我妈) and never of the user after them."""
    other = max((m.start() for m in OTHER_PERSON.finditer(text)), default=None)
    return other is not None and not any(m.start() > other for m in FIRST_PERSON.finditer(text))


def asks_enough(text: str) -> bool:
    """Whether ``text``, without greetings, thanks and goodbyes, says enough for the topic model to
    place it (three English words or five Chinese characters): "still there?" or "谢谢你" is small
    talk, and the model would guess a topic for it all the same."""
    for terms in (GREETING, THANKS, BYE):
        text = terms.regex.sub(" ", text)
    return len(re.findall(r"[a-z']+", text)) >= 3 or len(_CJK.findall(text)) >= 5


# A sentence that points at what follows ("可以先试试下面这些方法", "出现下面任何一种情况", "try the
# following:"): quoted only with a list item after it, never as a heading followed by nothing.
PROMISE = re.compile(r"下面|下列|以下|如下|[：:]\s*$|(?<![a-z])(?:the following|below|these (?:steps|tips|ways|signs))(?![a-z])")
_QUOTE_SENTENCE = re.compile(r"[^。！？!?；;]+[。！？!?；;]*|[^。！？!?；;]*[。！？!?；;]+")


def quote_units(text: str) -> list[tuple[bool, str]]:
    """(is a list item, text) of a library passage as the library plugin gives it (plugins/library.py
    `plain`: a line per paragraph, "· " before each list item): its items, and its paragraphs' sentences."""
    units = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("· "):
            units.append((True, line))
        elif line:
            units += [(False, m.group().strip()) for m in _QUOTE_SENTENCE.finditer(line) if m.group().strip()]
    return units


def fitting_lines(guide: Guide, title: str, heading: str, text: str, keys: set, asked: "Reading") -> str:
    """What of a library passage (``text``, in the section ``heading`` of the article ``title``) to
    quote in a reply about the topics ``keys`` to a message read as ``asked``:

    - all of it when the reply has no topic, or its section is about one of them or a `related`
      one ("在家正确测血压" for blood pressure, "睡个好觉" for insomnia) or about a topic the message
      names too;
    - nothing when its section is about another topic (its "测量前 30 分钟内不喝咖啡" does not
      answer a question on coffee in pregnancy);
    - of a section about no topic, its lines that name one of ``keys`` and deny none of the
      message's words (of "什么时候该去看医生", a child's fever gets the fever lines, not chest pain
      and stroke, and 我想减肥 not "没有刻意减肥，半年内体重下降明显"); or all of it when none does but
      the article is about something the message names that no topic knows ("痛风能喝啤酒吗").

    A sentence that points at what follows goes only with a list item after it. "" when nothing is left."""
    about = Reading(guide, normalize(f"{title}\n{heading}")).topic
    units = [(item, line) for item, line in quote_units(text) if not DISCLAIMER.search(line)]
    if keys and not (about is not None and (about.key in keys or about.related & keys or about.key in asked.hits)):
        if about is not None:
            return ""
        said = {word for words in asked.hits.values() for word in words}
        lines = [(item, line) for item, line in units if fits(guide, line, keys, said)]
        units = lines if lines or not names_subject(normalize(title), asked.text) else units
    kept = [(item, line) for i, (item, line) in enumerate(units)
            if item or not PROMISE.search(line) or any(later for later, _ in units[i + 1:])]
    if not any(item or not PROMISE.search(line) for item, line in kept):
        return ""
    lines = []  # a paragraph's sentences on one line again, each item on its own
    for i, (item, line) in enumerate(kept):
        if item or i == 0 or kept[i - 1][0]:
            lines.append(line)
        else:
            lines[-1] += line if _CJK.search(line[:1]) else " " + line
    return "\n".join(lines)


# An article's closing disclaimer: the reply has its own, and it is no answer to anything.
DISCLAIMER = re.compile(r"本文是一般健康知识|不能代替医生的诊断|(?:is|are) not (?:a )?substitute for|general health information")
# A section on when to see a doctor: the topic's own see_doctor line after it would say it twice.
# Where a text says to call the emergency number (120, not 120/80 or 120 a minute).
EMERGENCY_CALL = re.compile(r"(?<![\d/])120(?![\d/])(?! a minute| beats)|emergency number", re.I)
DOCTOR_SECTION = re.compile(r"医生|医院|就医|就诊|门诊|120|doctor|hospital|gp|a&e|emergency", re.I)

# Words of an article's title that name no subject ("什么时候该去看医生" is not about what a message with
# 什么时候 asks). The Chinese ones are taken out of the title before its character pairs are read, so
# that no pair straddles them: "要不要去看医生" shares 去看 with 什么时候该去看医生, and asks about no subject.
GENERIC_TITLE_ZH = re.compile(r"什么时候|什么|时候|怎么|如何|去看医生|看医生|去看|看病|就医|医生|健康|正确|方法|预防|注意|知识|"
                              r"可以|自己|[该要的了吗呢]")
GENERIC_TITLE_WORDS = {"doctor", "health", "guide", "about", "should", "what", "when", "your"}


def names_subject(title: str, message: str) -> bool:
    """Whether ``message`` names what the article ``title`` is about: a two-character Chinese word
    or an English word of four letters or more of the title, other than the generic ones."""
    title = GENERIC_TITLE_ZH.sub(" ", title)
    words = {title[i:i + 2] for i in range(len(title) - 1) if _CJK.match(title[i]) and _CJK.match(title[i + 1])}
    words |= set(re.findall(r"[a-z]{4,}", title))
    return any(shares(word, message) for word in words - GENERIC_TITLE_WORDS)


def fits(guide: Guide, line: str, keys: set, said: set) -> bool:
    """Whether ``line`` is about one of the topics ``keys`` (the first topic it names, as a list of
    signs names its subject first: "严重过敏：…全身起风团并头晕" is an allergy's sign, not an answer on
    dizziness) and denies none of the words ``said``."""
    reading = Reading(guide, normalize(line))
    named = sorted((min(words.values()), key) for key, words in reading.hits.items() if not guide[key].is_group)
    return bool(named) and named[0][1] in keys and not (reading.denied & said)


GENTLE = {"zh": ["我在这里陪着你，不着急，想说什么都可以慢慢说。", "谢谢你愿意告诉我，你不用一个人扛着这些。"],
          "en": ["I'm here with you, and there's no rush; say as much or as little as you like.",
                 "Thank you for telling me. You don't have to carry this on your own."]}


def _join(parts: list[str], lang: str) -> str:
    if lang == "zh":
        return "".join(parts)
    out = ""
    for part in parts:
        out += part if not out or part.startswith("\n") else " " + part
    return out


# "Them too" ("我女儿也是", "my son has it as well"): the session's complaint is the group's person's now.
# ...or asks the same for them ("and for a child?", "what about for kids?", "孩子呢？", "给孩子能吃吗").
SAME_FOR_THEM = re.compile(r"也(?:是|有|这样|一样|开始|跟着|出现|发|咳|拉|吐)|(?<![a-z])(?:too|as well|also|the same)(?![a-z])|"
                           r"(?<![a-z])(?:for|about)\s+(?:an?\s+|my\s+|the\s+|our\s+)?[a-z]+\s*\?|给(?:孩子|宝宝|老人|小孩)|"
                           r"(?:呢|可以吗|行吗|能吃吗|能用吗|要紧吗)\s*[？?]?\s*$")


class Composer:
    """Composing one reply (not `wellmate.Turn`, the chat turn it answers): the pieces in order are safety, feelings, a special group's caution,
    a tip, a question."""

    def __init__(self, lang: str, agent: str, text: str, said: str, recent: str, seed: str, note_shown=False,
                 label: str | None = None, guess=None, confidence: float = 0.35, numbers: dict | None = None,
                 judges_crisis: bool = True, checked_in: bool = False, replies: tuple = (), passages=(),
                 cheerless: bool = False, urgent_before: str = "", rather_none=None, aside=(),
                 moved_on: bool = False, records: tuple = ("", ""), cautions=()):
        self.lang, self.agent, self.text, self.seed = lang, agent, text, seed
        # the emergency cautions the text names (OfflineProvider._cautions: prompts/safety.yaml `red_flag_cautions`)
        self.cautions = list(cautions)
        # what the user's own records say, for a question about them, and the tips file's topic for them
        # (OfflineProvider._own_records): said before the tip, which follows on that topic
        self.records, self.records_topic = records
        self.rather_none = rather_none or (lambda text, key: False)  # OfflineProvider._rather_none
        self.urgent_before = urgent_before  # a DONT_WAIT kind: an emergency sign earlier, and this asks to wait
        self.said, self.recent = said, recent  # the whole history's replies; the last few
        self.replies = replies  # the earlier replies one by one, latest last (the session's topic)
        self.note_shown = note_shown  # the safety plugin's emergency note is shown above
        self.label = label  # the emotion tagger's label for the message, if there is a tagger
        # the topic model: text -> (topic id, probability); remembered per text for this reply, as choosing
        # a topic may ask it of the same text more than once (the focus, a keyword reading it may overrule)
        guess, guessed = guess or (lambda text: ("", 0.0)), {}
        self.guess = lambda text: guessed[text] if text in guessed else guessed.setdefault(text, guess(text))
        self.confidence = confidence
        self.numbers = numbers or {}  # {hotlines}, {emergency}, {first_emergency} from config
        self.judges_crisis = judges_crisis  # no safety plugin: the crisis words here are the fallback
        self.checked_in = checked_in  # the safety plugin checked in on this turn: gentle, never cheerful
        self.cheerless = cheerless  # a word of dying or killing: never cheerful either
        self.aside = list(aside)  # spans of ``text`` whose feeling words tell of none (the tagger's `aside`)
        # A loss told as long past and a good feeling now (the tagger's happy or calm for it): no condolence for it
        # ("My dog passed away two years ago; I've adopted a new puppy now and feel happy again" got "I'm so sorry you're
        # going through this loss": the session-18 audit, AUDFIX)
        # ...also when the tagger, reading the whole, weighs the loss (sad for "…ten years ago; today I cooked her soup and
        # smiled"): OfflineProvider._moved_on then reads how it is now on its own (True) or not (False)
        self.moved_on = moved_on is True or (moved_on == "then_now" and label in ("happy", "calm"))
        if self.moved_on:
            asked = self.guess
            self.guess = lambda text: ("", 0.0) if asked(text)[0] == GRIEF else asked(text)
        self.crisis = False
        self.denied, self.others = set(), set()  # feelings the words deny; feelings that are someone else's
        self.follow_up = False  # the topic is the session's, for a follow-up
        self.worded = []  # the feelings the message names in words (before the tagger's label)
        self.topic, self.groups = None, ()  # what the reply is about, for Answer
        self.passages = passages  # the library's passages for the message ({title, text, ...}), best first
        self.quoted = None  # the id of the article quoted
        self.group_text = ""  # the message that named the special group the reply cautions
        self.quoted_heading = ""  # the section of the article quoted
        self.quoted_whole = False  # ...and whether that section is about the topic (quoted whole)
        self.all_said = False  # every tip that fits was given in the session already (ALL_SAID)
        self.replies_had_topic = False  # the session's replies answered a topic before (bare_mention)

    def pick(self, options, slot: str):
        return pick(options, f"{slot}\x1f{self.seed}", self.recent)

    def compose(self, topics: dict, earlier: list[str]) -> list[str]:
        lang, text = self.lang, self.text
        parts = self.safety()
        notes = len(parts)
        if self.crisis:
            return parts
        if self.note_shown:  # short and practical while they get help, as the note asks
            # (...and the no to a keep-on question asked beside the sign: 胸口疼，胳膊也麻了，要不要再喝一杯咖啡撑到下班 got
            # the note and "how are things now?", not the no: session 21, REDF2)
            said = [fill(KEEP_ON_NO[lang], self.numbers)] if self.urgent_before == "keep_on" else []
            return said + [self.pick(QUESTIONS["urgent"][lang], "urgent")]
        if self.urgent_before:  # "好像好一点了，要不要等我儿子下班再说？" after a stroke note: don't wait
            self.note_shown = True  # the reply is the urgent note: no set-up notice, no cheer
            said = KEEP_ON_NO if self.urgent_before == "keep_on" else DONT_WAIT[self.urgent_before]
            return parts + [fill(said[lang], self.numbers), self.pick(QUESTIONS["urgent"][lang], "urgent")]
        asked = signs_asked(text)
        if asked:  # "what are the signs of a stroke?": the signs and "call 120 at once", no alarm (EMERGENCY_SIGNS)
            self.topic = None
            return parts + [fill(EMERGENCY_SIGNS[asked][lang], self.numbers)]
        if thanks_only(text):  # the close of a session's conversation (CLOSING); a first message's thanks, THANKED
            # (not only in a session: "thanks a lot, that was really helpful" alone was read as frustration and got an
            # anger tip, the words after the thanks being enough for the tagger; audit A22, session 20)
            return parts + [self.pick((CLOSING if earlier else THANKED)[lang], "thanks")]
        self.read_texts = [text, *reversed(earlier[-HISTORY_TURNS:])]
        readings = [topics.read(t) for t in self.read_texts]
        readings[0] = self.cared_for(readings)
        if earlier and closes_with_thanks(text) and readings[0].topic is None and readings[0].group is None:
            # ...and a thank-you that closes with what the user will do or feels now, naming no topic of its own
            # ("thanks, that gives me some ideas", "好的，谢谢你，我去跟她聊聊" after a parent's question got the
            # session's anxiety or insomnia tip again; audit A22, session 20)
            return parts + [self.pick(CLOSING[lang], "thanks")]
        told = readings[0].told
        # (the model reads the message as spelled: "had diarhea…, what should i eat?")
        if told is not None and (self.guess(told.text) or ("", 0.0))[0] == told.topic.key:
            # An activity or habit asked of as a means for the complaint told ("拉肚子拉了一天了，能吃什么",
            # "想减肥，晚饭不吃可以吗", "my knee aches after running, should I stop running?"): the topic
            # model reading the whole message picks the complaint (diarrhoea 0.75, weight 0.75, joints 0.93);
            # for a habit asked of beside a complaint ("night shifts leave me so tired, how can I quit
            # smoking?") it picks the habit (smoking 0.91) or another topic (tests/data/offline_dev_OFFL3.tsv)
            readings[0] = told
        session = self.session_topic(readings, topics)
        self.replies_had_topic = session is not None
        if self.checked_in:
            return parts + self.gentle(readings, topics, session, earlier[-1:])
        feelings = self.feelings(asks_about=readings[0].topic or session)
        mourning = self.mourning(readings, session)
        reflected = []  # the feelings named back, which an acknowledgement of hard news replaces (below)
        feelings = self.relieved(feelings) if not mourning else feelings
        # A loss long past and how it is now, fine (__init__): a warm word on the memory, no grief tip (below)
        remembering = self.moved_on and any(t is not None and t.key == GRIEF for t in (readings[0].topic, readings[0].gave_way_from))
        if notes and not feelings:
            parts.append(self.pick(QUESTIONS["urgent"][lang], "urgent"))
        elif mourning:  # a loss: condolence, not "you're feeling sad about your marriage"
            parts += self.condole()
        elif remembering:
            parts.append(self.pick(REMEMBERING[lang], "remembering"))
        elif feelings:
            reflected = self.reflect(feelings)
            parts += reflected
        urgent = self.warning_signs(readings)
        if urgent:  # a see-a-doctor-now sign comes before anything else but a safety note
            parts.insert(notes, urgent)
        bp = self.blood_pressure()
        if bp:
            parts.append(bp)
        if self.records:
            parts.append(self.records)

        topic, intros = self.choose_topic(readings, topics, session, earlier[-1:]), TIP_INTROS
        if remembering and topic is not None and topic.key == GRIEF:
            topic = None  # the grief tips are for the first weeks and for a grief that will not ease
        cared = self.cared_group(readings)
        if cared is not None and topic is not None and topic.key in cared.not_with:
            topic = cared  # (the topic model's grief, in a dementia carer's session: see `cared_for`)
        if self.records and (topic is None or not readings[0].hits) and topics.get(self.records_topic) is not None:
            topic = topics.get(self.records_topic)  # "when do I take my medicine?" names no topic's keyword
        more = bool(MORE.regex.search(text)) and readings[0].topic is None  # "还有呢" on the session's topic
        if more and topic is not None:
            intros = MORE_INTROS
        group, caution = self.group_of(readings, topic)
        if group is not None and topic is not None and topic is not group and topic.key in group.not_with and \
                readings[0].group is group:
            # A topic the group does not take (`not_with`), where the topic model chose it for a message naming one of the
            # group with no keyword of it: the keywords' reading drops the group so (Reading), the model's did not ("My son's
            # friend killed himself last year; how do I support my son on the anniversary?" got grief with the fever
            # doses: audit A22, session 20). A grieving or bullied child is no patient.
            group, caution = None, ""
        if group is not None and topic is None and session is None and readings[0].group is group and \
                not group.answers_outright(lang, text) and not group.asks_of_itself(text) and \
                (self.no_health_question() or self.rather_none(text, group.key)):
            # A child, a baby or an elder named in a message that is no health question ("朋友的宝宝满月了，送什么
            # 礼物合适", "my daughter's camp next week, what do I pack"): neither the group's tips nor its caution.
            # The model need not be sure of NO_TOPIC: likelier than the group's own health is enough, as the group's
            # fever tips are the only other answer ("my sister had a baby last week, what gift": none 0.19, child 0.01).
            group, caution = None, ""
        # Good news about a child, a pregnancy or an elder, with no complaint and no question ("哈哈哈 我女儿今天第一次叫妈妈
        #了", "our baby girl took her first steps this morning", 宝宝今天第一次翻身了): joy met with joy, no fever doses,
        # nor the habit tip its words happen to name (her first steps are no step count of the user's). A fever's
        # session, a temperature or a sign named, or a question, keeps the caution (the session-19 audit A20).
        if group is not None and readings[0].group is group and session is None and self.label == "happy" and \
                not self.cheerless and not asks(text) and all(f[0] == "happy" for f in feelings) and not urgent and \
                not BODY_TEMPERATURE.search(text) and (readings[0].topic is None or not readings[0].topic.priority) and \
                not any(r.group is group for r in readings[1:]):
            group, caution = None, ""
            if topic is not None and (topic.is_group or not topic.priority):
                topic = None
            if not feelings and not mourning and not notes:  # the joy the tagger read, named back ("haha" has no word of it)
                feelings = [("happy", LABEL_WORDS["happy"][lang], "")]
                parts += self.reflect(feelings)
        # A follow-up with no complaint of its own ("能吃点什么" after 孕早期老是恶心想吐) stays with the group's own tip too.
        outright = group is not None and (group.answers_outright(lang, text) or (
            (readings[0].topic is None or readings[0].weak) and group.answers_outright(lang, self.group_text)))
        # ...or one asking about the group as such ("is it normal to get cramps at 6 weeks pregnant?")
        outright = outright or (group is not None and readings[0].group is group and group.asks_of_itself(text))
        decided = readings[0].decided
        if group and (topic is None or topic.key in group.instead_of or (outright and not decided) or topic.is_group) and \
                not (topic is not None and topic.key == MEDICINES and readings[0].topic is topic and readings[0].group is not group):
            # its own tips: a child's fever is not an adult's cold (nor the model's other group); but not a topic its
            # `whole_patterns` decided (an elder's aspirin with ibuprofen is the interaction tip), and a dose missed,
            # doubled or changed in a follow-up is the medicines topic's (A21 and ELD: "她的降压药昨晚漏吃了一顿，要补吗"
            # got the elder's pill-box tip, as 降压药 and 漏吃 are words of its medicines tip); a message naming the
            # elder with their memory and their pills is still the elder's (offline_S)
            topic = group
        elif group and group.complaint_topic and not CHANGES_SUBJECT.regex.search(text) and (
                any(_FEVER_WORD.search(word) for key in group.instead_of for word in readings[0].hits.get(key, ()))
                or (group.instead_of and BODY_TEMPERATURE.search(text)) or (session is group and (
                    group.session_stays or readings[0].topic is None))):
            # ...and a child's fever with another sign ("烧到39度，还有点咳嗽", "diarrhoea and a slight
            # temperature"), or a follow-up in a session its own tips answered ("now there's a rash on
            # her tummy too" after a baby's fever): the fever's signs, still the group's as such.
            topic = group
        # ...the feeling of now, where two are told either side of a turn (a hard morning, then a good evening: no
        # low-mood tip for one who feels better, whether its word or the tagger placed the earlier feeling's topic)
        mixed = self.mixed(feelings) if feelings and not mourning else None
        if mixed and mixed[1][0] == "happy" and topic is not None and topic.key in FEELING_TOPICS:
            topic = None
        elif topic is None and feelings:
            topic = topics.get(FEELINGS[(mixed[1] if mixed else feelings[0])[0]]["topic"] or "")
        if topic is None and self.for_another() and self.others:  # "我女朋友心情很差，我该怎么安慰她"
            topic = next((topics.get(spec["topic"]) for f, spec in FEELINGS.items()
                          if f in self.others and spec["topic"] in topics), None)
        if topic and (topic.key in {FEELINGS[f]["topic"] for f, _, _ in feelings} or topic.key == GRIEF):
            intros = SOFT_INTROS  # a tip for the feeling itself (or a loss) is offered gently, not as a lesson
        if group and topic is not None and topic is not group and topic.key in group.caution_not_with and \
                not any(r.group is group for r in readings[1:]):
            group, caution = None, ""  # "孩子不爱吃蔬菜": the diet tips, no fever doses (a fever's session keeps them)
        if group:
            # Once a session, never word for word again (a "more", a question or a new complaint alike): the A21
            # audit's older people read the elder's three things (falls, medicines, odd symptoms) on every
            # follow-up, above the amlodipine's missed dose and the warfarin taken twice, as a child's session its
            # fever doses. The group still holds (self.groups): its tips, the medicine rule below; the follow-up's
            # own answer comes instead of the block said above.
            if caution not in self.said:
                parts.append(caution)
            self.groups = (group.key,)
        if topic is not None and topic.acknowledge[lang] and topic.acknowledge[lang] not in self.said and \
                (topic.acknowledge_unless.regex is None or not topic.acknowledge_unless.regex.search(text)) and \
                (topic.acknowledge_when is None or topic.acknowledge_when.regex.search(text)):
            # hard news: the acknowledgement instead of a reflection of the feeling ("you sound anxious")
            parts = [part for part in parts if part not in reflected]
            parts.insert(notes, topic.acknowledge[lang])
        given = readings[0].conditions
        if given and topic is not None and topic is readings[0].topic and topics.condition_caution[lang]:
            # "type 2 diabetic here, want to start working out": the exercise tips, with a word on the condition
            parts.append(topics.condition_caution[lang].replace("{condition}", "、".join(given) if lang == "zh" else
                                                                 ", ".join(given)))
        # The topic is what is asked, the group who has it: "my 6-year-old's cough" is answered with the
        # cough tips and the child's caution, so it is the cough topic; the group is the topic only where
        # its own tips answer (a child's fever, an elder's falls or memory, or no complaint named).
        self.topic = (group.key if group and group.owns(topic, self.group_text) else topic.key if topic is not None
                      else group.key if group else None)
        tips = self.tips_of(topic, group) if topic else []
        if group and topic is not group and not getattr(topic, "about_medicines", False):
            # (not the medicines topic's own tips, which are about taking a medicine as prescribed and asking
            # the pharmacist: an elder's missed amlodipine gets the missed-dose tip, not a stripped one)
            kept = [tip for tip in tips if not MEDICINE.search(tip)]
            if not kept and group.complaint_topic and topic is not None:
                # A child's itchy rash whose tip names a medicine (as a thing to stop) gets the complaint's general
                # tips, not a fever tip: the group's own tips answer its own questions, not the complaint
                kept = [tip for tip in topic.tips_for(lang, "", self.for_another()) if not MEDICINE.search(tip)]
            # ...else the tip without its medicine's clause: a child's bee sting keeps its first aid
            kept = kept or [tip for tip in map(medicine_free, tips) if tip]
            # Never the group's own tips under the complaint's title: a child's bee sting was answered "A tip on
            # allergies: Fever is the body fighting an infection" (the session-18 audit). No tip then: the
            # caution says what to ask first, and the complaint's see-a-doctor line follows.
            tips = kept
        # A long-term condition named in the session (Condition): its note for the topic, once; it replaces the tips of
        # a topic that misreads it (COPD's breathlessness is no tiredness), and the tips not written for them go.
        noted, tips = self.conditions(topics, topic, tips)
        parts += noted
        tip_given = ""
        if topic and tips and not bp:  # the reading's note already says what the tips would
            asked = "\n".join(self.read_texts[1:])  # the session's earlier messages: what is no new detail
            tip = choose_tip(tips, text, f"tip\x1f{self.seed}", self.recent, self.follow_up, self.replies[-1:] and self.replies[-1],
                             asked)
            # Not said again word for word: not the last reply's tip, nor one an earlier reply of the session gave (A21 and
            # the ELD held list: a constipated mother's tip again two turns on, to "Could those be the cause?")
            repeated = bool(self.replies) and (tip in self.replies[-1] or tip in self.said)
            # ...unless it is the tip that speaks of the follow-up's new detail (`choose_tip`), the last reply's
            again = repeated and tip in self.replies[-1] and self.follow_up and detail_score(detail_words(text, asked), tip) > 0
            self.all_said = more and all(t in self.said for t in tips)
            tip_given = "" if self.all_said or (repeated and not again) else tip
            parts.append(ALL_SAID[lang].format(title=topic.title[lang]) if self.all_said else
                         AGAIN[lang].format(title=topic.title[lang]) + tip if again else
                         SAID_ABOVE[lang].format(title=topic.title[lang]) if repeated else
                         self.pick(intros[lang], "intro").format(title=topic.title[lang]) + tip)
        # The host's own article after the tip that answers the question: quoted only where it is
        # about what was asked (Composer.quote), never in place of that tip (我想减肥 was answered
        # with a list of reasons to see a doctor that has "没有刻意减肥，半年内体重下降明显" and no tip).
        quote = self.quote(topics, topic, readings, bool(parts))
        if quote:
            parts.append(quote)
        if topic and tips:
            doctor = topic.see_doctor[lang]
            # said the first time the topic comes up; not after a tip on being there for someone else,
            # which says when they need help itself (this speaks to the user: "if low mood ... affects your work")
            # ...and again to a follow-up that asks whether to go ("要去医院吗", "should I see a doctor?"), or whose
            # detail it names ("肿了怎么办": "肿得很快…请尽快去医院")
            detail = self.follow_up and detail_score(detail_words(text, "\n".join(self.read_texts[1:])), doctor or "") > 0
            # The emergency number once: not again where the urgent note, the tip or a caution written for this
            # complaint (a child's sting) already says when to call it (the session-18 audit: a child's bee sting
            # read 120 three times). A group's general caution (an elder's stroke signs) is about something else.
            told = [urgent, tip_given, caution if group and caution != group.caution[lang] else "", self.records]
            if doctor and EMERGENCY_CALL.search(doctor) and any(EMERGENCY_CALL.search(part or "") for part in told):
                doctor = ""
            if doctor and (doctor not in self.said or ASKS_DOCTOR.search(text) or detail) and \
                    not any(t in part for part in parts for t in topic.for_others) and \
                    not (quote and self.quoted_whole and DOCTOR_SECTION.search(self.quoted_heading)):  # it says when
                parts.append(doctor)

        if remembering and topic is None:
            parts.append(self.pick(REMEMBERING_QUESTIONS[lang], "question"))
        elif mourning and topic is not None and topic.key == GRIEF:
            parts.append(self.pick(QUESTIONS["grief"][lang], "question"))
        elif feelings:
            kind = "happy" if all(f == "happy" for f, _, _ in feelings) else \
                "unwell" if feelings[0][0] == "unwell" else "feeling"
            parts.append(self.pick(QUESTIONS[kind][lang], "question"))
        elif topic or quote:  # no "say more" (the first) when there is no more (or no tip: a child's allergy)
            parts.append(self.pick(QUESTIONS["topic"][lang][1 if self.all_said or not tips else 0:], "question"))
        elif not parts:
            return [self.small_talk(topics)]
        if GREETING.regex.search(text):
            parts.insert(0, "你好！" if lang == "zh" else "Hi!")
        return parts

    def group_of(self, readings: list, topic=None) -> tuple:
        """(the special group the reply cautions, its caution): the message's group, else the
        session's (a follow-up about a pregnancy is still one), else the topic model's choice
        (``topic``: a child's illness no keyword named). The caution is the variant for the words
        of the message that named the group (产后总是想哭: a new mother's, not a pregnant woman's)."""
        named = next((i for i, r in enumerate(readings) if r.group and not self.bare_mention(readings, i)), None)
        group = readings[named].group if named is not None else None
        if group is None and topic is not None and topic.is_group:
            group, named = topic, 0
        if group is None:
            return None, ""
        # ...or of any message of the session that named it: "什么时候能再要孩子" after a miscarriage is still after one
        self.group_text = "\n".join([self.read_texts[named]] + [t for t, r in zip(self.read_texts, readings)
                                                                 if r.group is group and t != self.read_texts[named]])
        return group, group.caution_for(self.lang, self.group_text)

    def conditions(self, topics, topic, tips: list) -> tuple[list, list]:
        """(what the first long-term condition the session names (Condition) adds for ``topic``, the tips left)."""
        lang = self.lang
        for condition in topics.conditions:
            key = topic.key if topic is not None else None
            note, instead = condition.note(key, lang, self.text, self.read_texts[1:])
            word = condition.named(self.read_texts) if note else ""
            if not word:
                continue
            # a medicine's note names it as the user wrote it ("sertraline", 舍曲林): a follow-up keeps it in view
            note = named_in(note, word)
            if instead:
                tips = []
            tips = [tip for tip in tips if not any(w in tip for w in condition.drop)]
            if note not in self.said:
                return [note], tips
            if instead:  # (its note was said: not again, nor the tips it replaces; nor this line word for word)
                again = named_in(condition.again[lang], word)
                if again and again not in self.said:
                    return [again], tips
                word = condition.name[lang] or word
                word = word.strip().upper() if word.isascii() and len(word.strip()) <= 4 else word.strip()  # "COPD"
                unsaid = [line for line in (x.format(condition=word) for x in CONDITION_SAID[lang]) if line not in self.said]
                return ([self.pick(unsaid, "condition")] if unsaid else []), tips
            return [], tips
        return [], tips

    def cared_for(self, readings: list):
        """``readings[0]``, or a copy of it as its group's when the session named an illness the group's person is cared
        for in (`cared_for`: dementia) and the message reads as a topic the group does not take (grief): "How do I
        answer when she asks for her own mother, who died 30 years ago?" after "My mum has dementia" is the carer's
        question, not the user's loss (A21 got grief tips, then "I'm so sorry for your loss")."""
        r = readings[0]
        if r.topic is None or r.group is not None:
            return r
        group = self.cared_group(readings)
        if group is not None and r.topic.key in group.not_with:
            r = copy.copy(r)
            r.topic, r.tied, r.weak, r.single, r.group = group, [group], False, False, group
        return r

    def cared_group(self, readings: list):
        """The group an earlier message of the session named with an illness its person is cared for in, or None."""
        for older, text in zip(readings[1:], self.read_texts[1:]):
            group = older.group
            if group is not None and group.cared_for.regex is not None and group.cared_for.regex.search(text):
                return group
        return None

    def bare_mention(self, readings: list, i: int) -> bool:
        """Whether the group of ``readings[i]`` (latest first) is only mentioned: a person of it named with no complaint
        of theirs, no question on the group as such, and nothing about the group said before, in a session already
        about something else (the user's own news, their topic). A21: 我还没告诉孩子们 after "医生说我的癌症复发了"
        got the child-fever doses on three turns; "my grandchildren are coming and I don't know what to tell them"
        the same. A child named first ("我儿子3岁", then "他发烧了") or with "也/too" ("我女儿也是") still counts."""
        r, older = readings[i], readings[i + 1:]
        if not older or r.topic is not None or any(o.group is r.group for o in older):
            return False
        text = self.read_texts[i]
        if r.group.answers_outright(self.lang, text) or r.group.asks_of_itself(text) or SAME_FOR_THEM.search(text):
            return False
        if own_ages(text):  # the user's own age ("I'm 84, if that matters"): the session's complaint is theirs
            return False
        return self.replies_had_topic or any(o.topic is not None for o in older)

    def tips_of(self, topic, group) -> list[str]:
        """``topic``'s tips for the message; a group's own also for the words of the message that
        named it (after "上周胎停做了清宫", "能洗澡吗" is still about the miscarriage, not folic acid)."""
        if topic is group and group is not None:
            # ...but a tip written for the words of the message itself comes first: "每天傍晚她就特别烦躁" after 找她妈妈
            # is the evening's restlessness, not the dead mother's tip again (ELD held list, A21's carers)
            own = [tip for tip in topic.tips_for(self.lang, self.text, self.for_another(), self.group_text) if tip in topic.tip_when]
            if own:
                return own
        text = self.text + "\n" + self.group_text if topic is group and group is not None else self.text
        return topic.tips_for(self.lang, text, self.for_another())

    def quote(self, topics, topic, readings: list, after_text: bool) -> str:
        """The best passage the library found for the message (the library plugin's
        ``turn.flags["library"]``) that is about ``topic``, the one the reply answers, quoted with
        its article's title (or only its lines about the topic, `fitting_lines`); "" without one."""
        keys = set()
        if topic is not None:
            keys.add(topic.key)
            if topic.is_group and readings[0].topic is not None:  # a child's fever: the fever too
                keys.add(readings[0].topic.key)
        for passage in self.passages:
            if not (isinstance(passage, dict) and isinstance(passage.get("text"), str) and passage.get("title")):
                continue
            heading = passage.get("heading") if isinstance(passage.get("heading"), str) else ""
            # A reply with no topic quotes a passage only about what the message names: the library's search
            # finds a passage by any word, and "我的手机死机了" matched "测的时候不说话、不看手机" (a blood-pressure
            # article, in the session-16 review); a thing that broke is no health question at all.
            if not keys and (MISHAP.search(self.text) or not names_subject(normalize(f"{passage['title']} {heading}"), self.text)):
                continue
            text = fitting_lines(topics, str(passage["title"]), heading, passage["text"], keys, readings[0])
            if not text:
                continue
            # The section's heading goes with it: "马上拨打 120" is what a list of emergency signs says to do.
            section = QUOTE_SECTIONS[self.lang].format(heading=heading[:80]) if heading else ""
            intro = QUOTE_INTROS[self.lang].format(title=passage["title"], section=section)
            self.quoted, self.quoted_heading = passage.get("id"), heading
            about = Reading(topics, normalize(f"{passage['title']}\n{heading}")).topic
            self.quoted_whole = about is not None and (about.key in keys or bool(about.related & keys))
            # Chinese parts are joined without spaces: the next sentence starts on a line of its own.
            return ("\n" if after_text else "") + intro + "\n" + text + ("\n" if self.lang == "zh" else "")
        return ""

    def session_topic(self, readings: list, topics: dict):
        """The topic the session is on: the one the latest earlier reply that gave a tip answered
        (the topic model's choice too, which the words of the question alone may not show: "been
        running to the loo all morning"), else that of the latest earlier message with one."""
        for reply in reversed(self.replies[-HISTORY_TURNS:]):
            answered = topics.answered(reply)
            if answered is not None:
                return answered
        return next((r.topic for r in readings[1:] if r.topic), None)

    def choose_topic(self, readings: list, topics: dict, session=None, before: list[str] = ()):
        """The topic for the message (``readings[0]``): its own topic; else, for a follow-up
        ("膝盖肿了" has its own, "要不要冰敷" / "should I ice it?" has none), the session's.
        A follow-up that points back ("would that make it faster?") keeps the session's topic
        unless its own outranks it; one whose own topic the words name but the message alone
        does not make clear ("and sometimes my vision goes dark", "should I worry?") keeps it too
        when the message read with the question before it (``before``) is still about it; one
        that says it changes the subject ("对了，我最近老是胃胀") or is clearly about its own
        topic ("膝盖疼还能跑步吗" after a weight question) moves on."""
        own = readings[0].topic
        if readings[0].decided:  # a `whole_patterns` topic: a blood thinner with an NSAID
            return own
        if readings[0].focus and asks_enough(readings[0].focus):  # "…不过这个不急，主要是晚上两三点才睡得着"
            key, probability = self.guess(readings[0].focus)
            guessed = topics.get(key)
            # Without a condition given as context the model must be sure ("i have type 1 diabetes and
            # want to start playing football again"): "我有糖尿病，平时要注意什么" leaves little to place.
            # A main question after a lead-in or aside that names no topic leaves the whole message only
            # the symptom set aside ("腰有点不舒服，不算什么，比较在意的是后脑勺老是一阵阵地疼"): the model's
            # guess, if not a wild one (FOCUS_GUESS), is a better answer than what the user set aside.
            sure = {"condition": self.OVERRULE, "focus": self.FOCUS_GUESS}.get(readings[0].focus_kind, self.confidence)
            if guessed is not None and not guessed.is_group and probability >= sure:
                return guessed
        # A dose missed, doubled or changed is a subject of its own whatever the session's complaint (A21: an elder's
        # "现在要不要马上补吃？" after a missed amlodipine, "how should they take their tablets if they miss a dose?"
        # after blood pressure tablets got the blood pressure tips): the medicines topic's words are specific.
        if own is not None and own.key == MEDICINES and not readings[0].weak:
            return own
        if session is not None and session.is_group:
            session = next((r.topic for r in readings[1:] if r.topic), None)  # the group comes from the readings
        bodily = [f for f in self.worded if f in BODILY and FEELINGS[f]["topic"]]
        if session is not None and own is None and session.priority and bodily and \
                not CHANGES_SUBJECT.regex.search(self.text):
            # Tiredness that may follow from the session's complaint ("白天特别困怎么办" after a question
            # on insomnia) stays on it, as a follow-up naming another topic's words does (stays_on); a
            # mood named ("also, I've been feeling really low lately") is a subject of its own.
            feeling = topics.get(FEELINGS[bodily[0]]["topic"])
            if feeling is not None and feeling is not session and self.stays_on(session, feeling, before):
                self.follow_up = True
                return session
        if session is not None and own is None and not self.named_feeling_topic():
            moved = self.moves_on(topics, session, before)
            if moved is not None:
                return moved
            self.follow_up = True
            return session
        if session is not None and own is not None and own is not session and \
                not CHANGES_SUBJECT.regex.search(self.text):  # "by the way, is it ok to ..." moves on
            if REFERS_BACK.search(self.text) and session.priority > own.priority:
                self.follow_up = True
                return session
            # ...as does one whose subject is the complaint, named before the other topic's word: "they burn
            # when I try to sleep" (not "also my stomach, it burns", where the new word comes first)
            if session.priority and session.priority >= own.priority and self.about_the_complaint(readings[0], own):
                self.follow_up = True
                return session
            # A pain or swelling the follow-up tells of elsewhere ("…and now my knee is really swollen") is
            # a new complaint: the topic model read with the question before stays on it (a fall is a head
            # injury to it after a headache), so neither its guess (stays_on) nor a "因为…吧" keeps it.
            new_pain = bool(own.priority and session.priority) and tells_of_pain(topics, self.text, own)
            # Sleep lost to the session's complaint ("疼得睡不着" after a swollen wisdom tooth, "the itch keeps me
            # up at night") is that complaint's, not insomnia's: the topic model alone decided it, at 0.34-0.42.
            if session.priority and own.key in ("sleep", "insomnia") and KEPT_AWAKE.search(self.text):
                self.follow_up = True
                return session
            # "should I be worried?", "会不会是低血糖" (a guess at the cause) ask about the session's complaint
            if WORTH_WORRYING.fullmatch(self.text) or (only_guesses_cause(self.text) and not (new_pain and not asks_outright(self.text))):
                self.follow_up = True
                return session
            # A follow-up naming only a generic word, an activity or habit ("能吃什么东西", "那运动方面呢")
            # that the session's topic speaks of, stays on it: a diarrhoea question's food is not the diet
            # topic's added sugar.
            if readings[0].weak and session.priority > own.priority and (
                    session.speaks_of(self.lang, tip_words(self.text, follow_up=True)) or BACK_TO.search(self.text)):
                self.follow_up = True
                return session
            if not new_pain and self.stays_on(session, own, before):
                self.follow_up = True
                return session
        if own is None and session is not None:  # a feeling named in words ("also, I've been feeling low")
            return None
        if own is None or readings[0].weak:
            return self.modelled_topic(topics, own, readings[0].single, readings[0].part)
        if len(readings[0].tied) > 1:  # the keywords narrowed it down; the model's first choice breaks the tie
            key, _ = self.guess(readings[0].part or self.text)
            return next((t for t in readings[0].tied if t.key == key), own)
        # A follow-up's words are read with the session's topic (above): "眼睛也有点痒" after hay fever is
        # the hay fever's, though the model alone is sure of eyes (0.83)
        return self.overruled(topics, readings[0]) if session is None else own

    def moves_on(self, topics: dict, session, before: list[str]):
        """For a follow-up no keyword places: the topic model's topic when the model is sure of it
        from the message alone and, read with the question before it, it still does not pick the
        session's ("also, I've been feeling really low lately" after a water question: 0.99, and
        0.54 together); "what should I eat?" after diarrhoea is diet at 0.84 alone but diarrhoea
        together, so stays; and a complaint the question before it named, where the two together read
        as that one. None: the follow-up stays on the session's topic."""
        if not before or not asks_enough(self.text):
            return None
        key, probability = self.guess(self.text)
        guessed = topics.get(key)
        if guessed is None or guessed is session or guessed.is_group or probability < self.FOLLOW_SURE:
            return None
        together, sure = self.guess(before[-1] + "\n" + self.text)
        if together == session.key:
            return None
        # One that points back at the complaint ("there's a little lump on the back of it now" after a wrist
        # question: back pain to the model at 0.43, 0.29 together) moves on only if the two read together are
        # as surely about the new topic.
        if THE_COMPLAINT.search(self.text) and not (together == key and sure >= self.confidence):
            return None
        # ...nor another complaint the question before it named: "should I eat anything?" after "my
        # stomach hurts and I have diarrhoea" (the stomach answered, the two together read as diarrhoea).
        named = topics.get(together)
        if named is not None and named.priority and together in topics.read(before[-1]).hits:
            self.follow_up = True
            return named
        return guessed

    @staticmethod
    def about_the_complaint(reading, own) -> bool:
        """Whether the message's subject is the complaint already talked of (`THE_COMPLAINT`), said
        before any keyword of ``own``, the topic its words name."""
        found = THE_COMPLAINT.search(reading.text)
        first = min(reading.hits.get(own.key, {}).values(), default=None)
        return found is not None and first is not None and found.start() < first

    # How sure the model must be of a follow-up's own topic, from its words alone, for it to move on
    # (stays_on, moves_on); was topic_confidence. bench/offline --follow-up-scores: the unmarked
    # follow-ups that change the subject score 0.68 and up, most that stay 0.50 or less ("blackout curtains
    # or just an eye mask?" after day sleep: eyes 0.50). Leaving one set out picked 0.6 for every set.
    FOLLOW_SURE = 0.6

    def for_another(self) -> bool:
        """Whether the message is about someone else's feelings, not the user's: it speaks of them
        alone, or it names only their feelings and asks how to help ("my boyfriend has been really down
        since he lost his job, what can I do?": the "I" there is the helper)."""
        return only_someone_else(self.text) or helps_someone(self.text, named=bool(self.worded))

    def named_feeling_topic(self) -> bool:
        """Whether the message names a feeling of the user's in words that has a topic ("feeling
        really low lately"): its own subject, not a follow-up of the session's."""
        return any(FEELINGS[f]["topic"] for f in self.worded)

    def stays_on(self, session, own, before: list[str]) -> bool:
        """Whether a follow-up whose words name another topic (``own``) still continues the
        session's: it does not say it changes the subject, the topic model is not sure of
        ``own`` from the message alone (below ``FOLLOW_SURE``: a short or vague message never is;
        "膝盖疼还能跑步吗" after a weight question is, 0.74), and the model reading the earlier
        question with it picks the session's topic. On tests/data/offline_followups.tsv the
        follow-ups that stay scored at most 0.29 for their own words' topic, those that change
        the subject without saying so at least 0.51 (0.45 after the retrain: bench/offline
        --follow-up-scores)."""
        if not before:
            return False
        key, probability = self.guess(self.text)
        if key == own.key and probability >= self.FOLLOW_SURE:
            return False
        together, _ = self.guess(before[-1] + "\n" + self.text)
        return together == session.key

    # A weak keyword reading gives way only to a model this sure: the right overrulings we saw scored
    # 0.73-0.94 ("戒了一个月的烟，脾气特别大" is smoking, "my sugar reading before breakfast" blood
    # sugar); recalibrated across 16 writers' sets (session 17, leaving one set out): 0.5 and 0.6 score
    # alike and one row better than 0.7 ("一天走六千步够不够啊 送外卖骑车算不算" is steps at 0.66, not diet).
    OVERRULE = 0.6
    FOCUS_GUESS = 0.2  # 37 topics: 0.2 is over seven times chance

    # A complaint the keywords name gives way only to a model surer still: across 16 writers' sets (heldout
    # A-L, M dev/held, dev17 P and Q) the model disagreeing with such a reading at 0.8 or more was right 11
    # times of 12 and the keywords never; at 0.6-0.7 the keywords were right 4 times of 5. Left one set out
    # (NOTES-OFFCAL.md), 0.65-0.85 score alike on those sets and 0.9 loses three rows; the tests' sentences
    # (other writers again) lose four at 0.76-0.83 ("do blue light filters on my laptop actually help" is
    # smoking to the model at 0.76), so 0.85. The rows it turns: "scratchy throat and sneezing all day, how
    # do I stop it getting worse" is a cold (0.94), not hay fever; "road rage ... how to calm down" anger (0.98).
    SURE_OVER_WORDS = 0.85

    def overruled(self, topics: dict, reading):
        """The topic of a message whose keywords name a complaint (``reading.topic``): that one, unless
        the topic model, reading the main question, is SURE_OVER_WORDS sure of another. Never the topic
        the words gave way from (`Topic.gives_way`): the model reads "wide awake at 5" as insomnia (0.97)
        where "do you need less sleep as you get older?" said why it is the sleep's length (session 18)."""
        own = reading.topic
        if not asks_enough(self.text):
            return own
        key, probability = self.guess(reading.part or self.text)
        guessed = topics.get(key)
        if guessed is None or guessed is own or guessed.is_group or probability < self.SURE_OVER_WORDS \
                or guessed is reading.gave_way_from \
                or key in {FEELINGS[f]["topic"] for f in self.denied} \
                or any(p.search(self.text) for p in guessed.not_guessed_when):
            return own
        return guessed

    def no_health_question(self) -> bool:
        """Whether the topic model reads the message as no health question at all (NO_TOPIC its likeliest label)."""
        return self.guess(self.text)[0] == NO_TOPIC

    def modelled_topic(self, topics: dict, own, single: bool, part: str = ""):
        """The topic model's choice for a message no keyword placed, taken at ``confidence`` or
        more; or for one whose keywords name only an activity or habit (``own``), taken when the
        model is sure (``OVERRULE``) and it either names a complaint (a higher priority) or ``own``
        rests on a ``single`` keyword. A feeling the message names ("累", "lonely") answers first."""
        if own is None and any(FEELINGS[f]["topic"] for f in self.worded):
            return None  # "睡八个小时还是觉得累": the feeling named in words answers (compose)
        if not asks_enough(self.text):
            return own  # "still there?", "谢谢你": small talk, not a question to place
        # ``part``: the main question, read without a condition given as context ("i've got high
        # blood pressure and want to start lifting weights": the whole message is blood pressure to the model)
        key, probability = self.guess(part or self.text)
        guessed = topics.get(key)
        if guessed is None or probability < self.confidence or key in {FEELINGS[f]["topic"] for f in self.denied}:
            return own  # ...and never the topic of a feeling the words deny ("不再焦虑了")
        if guessed.is_group and guessed.not_when.regex is not None and guessed.not_when.regex.search(self.text):
            return own  # a death or a memory ("my grandad passed away last year") is no patient of the group
        if any(p.search(self.text) for p in guessed.not_guessed_when):
            return own  # "expecting my results": the model's one hint of a pregnancy, read another way
        if own is None or (probability >= self.OVERRULE and (single or guessed.priority > own.priority)
                           and not guessed.is_group):  # a group is who asks, and brings its caution anyway:
            return guessed  # "Is coffee ok while pregnant?" is about coffee, not any pregnancy tip
        return own

    # -- pieces ----------------------------------------------------------------------------------
    def safety(self) -> list[str]:
        notes = []
        # Self-harm is never waved away, even when phrased as a denial (the fallback crisis words, no safety plugin)
        if self.judges_crisis and any(True for _ in SAFETY["crisis"].find(self.text)):
            notes.append(fill(SAFETY_NOTES["crisis"][self.lang], self.numbers))
            self.crisis = True
        # the emergency cautions (symptoms denied, 没有胸痛, are none: `Safety.cautions`), unless the note shown above
        # the reply says it already, or the signs are asked about ("what are the warning signs of a stroke, like face
        # drooping?" names no sign happening)
        if not self.note_shown and not SIGNS_ASKED.search(self.text) and not signs_asked(self.text):
            notes += [fill(SAFETY_NOTES[kind][self.lang], self.numbers) for kind in self.cautions if kind in SAFETY_NOTES]
        # One note is enough: each says to call 120, and a wall of warnings buries that.
        return notes[:1]

    def feelings(self, asks_about=None) -> list[tuple[str, str, str]]:
        """Up to two (feeling, word to name it back, degree) in the order the user said them;
        ``asks_about``: the health topic of the message, if it has one."""
        text = self.text
        for word in NOT_FEELINGS:
            text = text.replace(word, "\0" * len(word))
        for start, end in self.aside:  # (the same length: the spans of the words found stay the message's)
            text = text[:start] + "\0" * (end - start) + text[end:]
        found = []
        for feeling, spec in FEELINGS.items():
            for start, term in FEELING_TERMS[feeling].find(text):
                if not term.startswith("不") and negated(text, start):
                    self.denied.add(feeling)
                    continue
                if term in WORRY_WORDS and WORTH_A_WORRY.search(text[max(0, start - 30):start]):
                    continue  # "should I be worried?" after a complaint asks if it is serious: no feeling told (Reading)
                if someone_elses(text, start, feeling):
                    self.others.add(feeling)
                    continue
                if self.label in ("calm", "neutral") and feeling != "happy" and \
                        loosely_negated(text, start, start + len(term)):
                    self.denied.add(feeling)  # "不再有那种焦虑" read as calm: the worry is over
                    continue
                before = text[max(0, start - 12):start]
                degree = "strong" if INTENSIFIERS.search(before) else "mild" if DOWNTONERS.search(before) else ""
                display = spec["zh"].get(term) or spec["en"].get(term) or term
                found.append((start, feeling, display, degree))
                break
        found.sort()
        self.worded = [f for _, f, _, _ in found]
        return self.agree([(f, d, g) for _, f, d, g in found[:2]], asks_about)

    def agree(self, feelings: list, asks_about=None) -> list:
        """``feelings`` (word match) reconciled with the emotion tagger's label, which wins where
        they disagree: sarcasm ("太好了，又要加班了") must not be met with cheer. A calm or neutral
        label only takes away a cheerful reading; a worry the words show is still answered. A
        health question that shows no feeling in words gets its answer, not a feeling the tagger
        reads into its symptom words ("my period cramps are awful" is not "feeling down")."""
        label = self.label
        if self.cheerless:
            feelings = [f for f in feelings if f[0] != "happy"]
        if label is None or (not feelings and asks_about is not None and not asks_about.is_group):
            return feelings
        if label in ("calm", "neutral") or (self.cheerless and label == "happy"):
            return [f for f in feelings if f[0] != "happy"]
        # A question, or news of someone else, that names no feeling of the user's in words gets no
        # feeling claimed for it ("how long until I can run again?" is not "you're feeling tired",
        # "my teenage daughter seems withdrawn lately" not "you've been feeling down").
        # Joy at news of someone else is the user's own (session 21, EMO3: "my daughter absolutely killed it at her piano
        # recital", "labour nearly killed me lol but she's perfect" got "Could you tell me a bit more?"): named back.
        if not feelings and (asks(self.text) or (about_someone_else(self.text) and label != "happy")):
            return feelings
        if label not in LABEL_FEELING or any(FEELING_LABEL.get(f[0]) == label for f in feelings):
            return feelings
        # The tagger's label names no feeling the words deny ("我不再焦虑了"), none that is someone
        # else's ("my 2 year old ... is very sleepy"; news of someone else alone returned above) and no
        # low mood for a thing that died.
        if LABEL_FEELING[label] in self.denied or (not feelings and (self.others or MISHAP.search(self.text)
                                                                      or TASK_IDIOM.search(self.text))):
            return [f for f in feelings if f[0] != "happy"]
        named = (LABEL_FEELING[label], LABEL_WORDS[label][self.lang], "")
        return [named] + [f for f in feelings if f[0] != "happy"][:1]

    def gentle(self, readings: list, topics: dict, session=None, before: list[str] = ()) -> list[str]:
        """After the safety plugin's check-in: what the user feels named back if it is not cheer
        (the tagger read "better off" as happy), else a warm line; a tip only for a complaint the
        message names in words (a check-in on "wrist clicks and hurts" still answers the wrist) or
        for the feeling named back, or the session's complaint for a follow-up that names neither in
        words (the safety classifier checks in on "does it matter?", "how long will it last"); a special
        group's see-a-doctor-now signs and caution as on any turn ("my 4 year old has it now too
        and she's burning up" was checked in on and lost the child caution); and a question."""
        topic = readings[0].topic
        feelings = [f for f in self.feelings() if f[0] != "happy"]
        # The safety classifier checks in on everyday questions too ("working nights means I never see my
        # friends, how do people on shifts keep a social life", "could it be the bp pills my GP just started
        # me on?" after a dizzy spell): their topic is chosen as on any turn (ties broken by the topic model, a
        # follow-up kept on the session's complaint, a message no keyword places placed by the model), where
        # that choice is a complaint the words name, the session's, or the model's when it is sure
        # (OVERRULE): a vague word of distress is never given a tip the model only half guessed.
        chosen = self.choose_topic(readings, topics, session, before)
        if chosen is not None and chosen is not topic and (chosen.key in readings[0].hits or chosen is session or (
                asks_enough(self.text) and self.guess(self.text)[1] >= self.OVERRULE)):
            topic = chosen
        if topic is None and not self.named_feeling_topic() and session is not None and session.priority:
            topic = session  # a feeling only the tagger reads ("吃了止痛片也没用") leaves the complaint's tip
        urgent = self.warning_signs(readings)
        opening = self.condole() if self.mourning(readings, session) else \
            self.reflect(feelings) if feelings else [self.pick(GENTLE[self.lang], "gentle")]
        parts = ([urgent] if urgent else []) + opening
        if self.records and self.records_topic != "medicines":
            # A question about one's own numbers the safety classifier checks in on (我这两周体重有变化没: 3 of the 60 of
            # tests/data/own_records_held_REC*.tsv) still gets them, after the check-in: facts, no cheer. Not the
            # medicine times on such a turn ("what time are my pills?"): the check-in is about what the pills are for.
            parts.append(self.records)
        # A habit's tip only for a practical question ("haven't worked out in years, what's a good way to
        # start": the safety classifier checks in on it, as on 19 of the 386 everyday questions of
        # tests/data/offline_questions.tsv and heldout/offline_A-D.tsv).
        asked = topic is not None and not topic.priority and PRACTICAL_QUESTION.search(self.text)
        # ...and a feeling's own topic named in words ("一个朋友都没有", "I snapped at my partner"), as low mood is
        asked = asked or (topic is not None and topic.key in FEELING_TOPICS)
        # ...or a question on a habit's norms its words name, with no feeling of the user's named or read ("is it that
        # bad to do 5h on weeknights and sleep till 1pm at the weekend?": the sleep tips, after the warm line)
        asked = asked or (topic is not None and not feelings and topic.key in readings[0].hits
                          and bool(NORM_QUESTION.search(self.text)))
        if (topic is None or not (topic.priority or asked)) and feelings:  # a tip for the feeling itself, offered gently
            topic = topics.get(FEELINGS[feelings[0][0]]["topic"] or "")
        group, caution = self.group_of(readings, topic)
        if group is not None and topic is not None and topic is not group and (
                (topic.key in group.not_with and readings[0].group is group) or
                (topic.key in group.caution_not_with and not any(r.group is group for r in readings[1:]))):
            # as in `compose`: a topic the group does not take, or a habit's, brings no caution on a checked-in turn
            # either ("我儿子说要帮我戒烟，我真的想戒", checked in on, got the fever doses: audit A22, session 20)
            group, caution = None, ""
        if group:
            if caution not in self.said:  # once a session, as in `compose`
                parts.append(caution)
            self.groups = (group.key,)
            if topic is None or topic.key in group.instead_of or (
                    group.answers_outright(self.lang, self.text) and not readings[0].decided):
                topic = group  # (a medicine question is the medicines topic's: an elder's aspirin with ibuprofen)
        tips = self.tips_of(topic, group) if topic is not None and (topic.priority or feelings or group or asked) \
            else []
        if group and topic is not group and not getattr(topic, "about_medicines", False):
            tips = [tip for tip in tips if not MEDICINE.search(tip)] or group.tips_for(self.lang, self.text)
        noted, tips = self.conditions(topics, topic, tips)  # (as in `compose`)
        parts += noted
        if tips:
            tip = choose_tip(tips, self.text, f"tip\x1f{self.seed}", self.recent, last=self.replies[-1:] and self.replies[-1])
            parts.append(self.pick(SOFT_INTROS[self.lang], "intro") + tip)
            self.topic = topic.key
        if group and (not tips or not group.complaint_topic):  # the caution alone: about the person as such
            self.topic = group.key
        return parts + [self.pick(QUESTIONS["feeling"][self.lang], "question")]

    def mourning(self, readings: list, session=None) -> bool:
        """Whether the message tells of a loss (the `grief` topic), or follows one with no topic of its own."""
        if self.moved_on:  # (a loss long past and a good feeling now: see __init__)
            return False
        about = readings[0].topic or session
        # ...and a loss told as the time since which one lives alone still gets the condolence, before the loneliness tip
        given_way = readings[0].gave_way_from
        return (about is not None and about.key == GRIEF) or (given_way is not None and given_way.key == GRIEF)

    def condole(self) -> list[str]:
        """Condolence the first time in a session; after it, a line on grief coming in waves."""
        if any(line in self.said for line in CONDOLENCE[self.lang]):
            return [self.pick(STILL_GRIEVING[self.lang], "grieving")]
        return [self.pick(CONDOLENCE[self.lang], "condolence")]

    def warning_signs(self, readings: list) -> str:
        """A topic's `urgent` note when the message names one of its signs (a drowsy child with a
        fever): the topic of the message, or the special group of the session."""
        group = next((r.group for r in readings if r.group), None)
        for topic in (group, readings[0].topic):
            if topic is not None and topic.urgent[self.lang]:
                if any(not negated(self.text, start) for start, _ in topic.urgent_terms.find(self.text)) or \
                        any(p.search(self.text) for p in topic.urgent_patterns):
                    return topic.urgent[self.lang]
        return ""

    def context(self) -> tuple[str, str]:
        """(when, about what) the user said, e.g. ("最近", "工作"), to name back in the reflection."""
        ctx = CONTEXT[self.lang]
        when = next((t for t in ctx["time"] if t in self.text), "")
        hit = next(CONTEXT_TERMS[self.lang].find(self.text), None)
        return when, ctx["about"][hit[1]] if hit else ""

    def relieved(self, feelings) -> list:
        """``feelings`` with the relief told after a turn ("…吵架了很难过，晚上她给我做了好吃的，心情好了", "felt awful, but
        dinner with friends cheered me up") as the later feeling, where one bad feeling is named and none after the turn:
        the reply answers how it is now, not only the morning's hurt (the session-19 audit A20)."""
        if len(feelings) != 1 or feelings[0][0] == "happy" or self.cheerless:
            return feelings
        turn = MIXED_TURN.search(self.text)
        display = feelings[0][1]
        if turn is None or (display in self.text and self.text.find(display) > turn.start()) or \
                not RELIEF.search(self.text, turn.end()):
            return feelings
        return feelings + [("happy", LABEL_WORDS["happy"][self.lang], "")]

    def mixed(self, feelings) -> tuple | None:
        """(the feeling before, the feeling after, the text before the turn) for two feelings told either side of a
        turn ("被老板骂了一顿，挺难受的，不过晚上和朋友吃了火锅，心情好多了": down, then happy), in the order told; None
        when there are not two, or no turn lies between them. A feeling only the tagger read (no word of it found in the
        text) is placed by its kind: a good one after the turn, a bad one before it."""
        if len(feelings) != 2:
            return None
        turn = MIXED_TURN.search(self.text)
        if turn is None:
            return None
        # (a feeling no word of which is in the text: a good one is the relief after the turn, a bad one what came before)
        where = [self.text.find(display) if display and display in self.text else len(self.text) if feeling == "happy" else 0
                 for feeling, display, _ in feelings]
        first, second = sorted(range(2), key=lambda i: where[i])
        if not where[first] < turn.start() <= where[second]:
            return None
        return feelings[first], feelings[second], self.text[:turn.start()]

    def reflect(self, feelings) -> list[str]:
        lang = self.lang
        when, about = self.context()
        mixed = self.mixed(feelings)
        if mixed is not None:
            # Each feeling with its own cause, or none: "今天工作让你感到开心，也很难受" put the evening's relief on the
            # work that hurt (the session-19 audit A20). The cause found before the turn is the first feeling's.
            (f0, d0, g0), (f1, d1, g1), before = mixed
            hit = next(CONTEXT_TERMS[lang].find(before), None)
            cause = CONTEXT[lang]["about"][hit[1]] if hit else ""
            deg0, deg1 = DEGREE[lang][g0], DEGREE[lang][g1]
            if lang == "zh":
                n0 = d0.replace("{deg}", deg0) if "{deg}" in d0 else (deg0 or ("很" if len(d0) == 1 else "")) + d0
                n1 = d1.replace("{deg}", deg1) if "{deg}" in d1 else deg1 + d1
                core = (f"{when}{cause}让你感到{n0}" if cause else f"你{when}感到{n0}") + f"，后来又{'好了一些，' if f1 == 'happy' else ''}感到{n1}"
            else:
                core = f"you felt {deg0}{d0}" + (f" about {cause}" if cause else "") + (f" {when}" if when else "") + \
                    f", and then {deg1}{d1}"
            later = f1  # how it is now: what the support line answers
            opener = self.pick(OPENERS[lang], "opener").format(core=core)
            return [opener, self.pick(SUPPORT[later][lang], "support")]
        named = []
        for feeling, display, degree in feelings:
            deg = DEGREE[lang][degree]
            if lang == "zh":
                if "{deg}" in display:
                    named.append(display.replace("{deg}", deg))
                else:
                    named.append((deg or ("很" if len(display) == 1 else "")) + display)
            else:
                named.append(deg + display)
        if lang == "zh":
            feeling_words = "感到" + named[0] + ("，也" + ("有点" if not named[1].startswith(("很", "有点")) else "")
                                                 + named[1] if len(named) > 1 else "")
            core = f"{when}{about}让你{feeling_words}" if about else f"你{when}{feeling_words}"
        else:
            verb = "you've been feeling" if when in ONGOING else "you're feeling"
            core = f"{verb} {' and '.join(named)}" + (f" about {about}" if about else "") + (f" {when}" if when else "")
        happy_only = all(f == "happy" for f, _, _ in feelings)
        opener = self.pick((HAPPY_OPENERS if happy_only else OPENERS)[lang], "opener").format(core=core)
        return [opener, self.pick(SUPPORT[feelings[0][0]][lang], "support")]

    def blood_pressure(self) -> str:
        m = BP_READING.search(self.text)
        if not m or not BP_TERMS.regex.search(self.text):
            return ""
        high, low = sorted((int(m.group(1)), int(m.group(2))), reverse=True)
        if not (60 <= high <= 260 and 30 <= low <= 160):
            return ""
        kind = "high" if high >= 180 or low >= 110 else "raised" if high >= 140 or low >= 90 else \
            "low" if high < 90 or low < 60 else ""
        return fill(BP_NOTES[kind][self.lang], {**self.numbers, "reading": f"{high}/{low}"}) if kind else ""

    def small_talk(self, topics: dict) -> str:
        lang, text = self.lang, self.text
        if THANKS.regex.search(text):
            return self.pick(THANKED[lang], "thanks")
        if BYE.regex.search(text):
            return self.pick(FAREWELL[lang], "bye")
        if GREETING.regex.search(text) or not text:
            return GREET[self.agent][lang]
        if asks(text):
            titles = [t.title[lang] for t in topics.values()][:12]
            if titles:
                return UNKNOWN[lang].format(titles=("、" if lang == "zh" else ", ").join(titles))
        return self.pick(LISTENING[self.agent][lang], "listen")
