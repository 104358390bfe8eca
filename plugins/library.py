"""The health library (病友宝典): articles as Markdown files in a folder, searchable, read by the
agents and cited in their replies (docs/library.md).

An article is ``library/<id>.md``: a YAML front matter (title, summary, tags, order, cover,
attachment, sources) between ``---`` lines, then Markdown. Files named in ``cover`` and
``attachment`` live in ``library/files/``. The folder is the truth; a full-text index of it is
kept in ``data/library.sqlite3`` (rebuilt from the files whenever they change, so deleting it
loses nothing; rebuilt when damaged or built with other settings). A file added, removed or
renamed into place (as editors and the admin API do) is seen at once; one written over in place
(``cp`` over it) at once when it is opened, by searches and turns within
``library.rescan_seconds``. Once the server runs a thread indexes, and chat turns read the last
committed index: a turn never waits for a rescan.

    GET    /api/v1/library?q=&tag=&limit=&before=   articles (logged-in users)
    GET    /api/v1/library/{id}                     one, with its body and attachment links
    GET    /api/v1/library/{id}/files/{name}        its cover or attachment
    POST   /api/v1/library                          admins: a new article (files written atomically)
    PUT    /api/v1/library/{id}                     admins: change the fields given (If-Match: its ETag)
    DELETE /api/v1/library/{id}                     admins: the file and its index entry

Search works on Chinese without a segmenter: Chinese text is indexed as overlapping two-character
terms (血压 from 测血压), English as words, in SQLite FTS5 (standard library). FTS5's own
``trigram`` tokenizer cannot find a two-character word, and most Chinese words are two
characters (血压, 失眠, 焦虑): bench/library prints both on the same questions.

Each chat turn, the passages that best match the user's message (covering at least
``library.min_score`` of what it says) go into the system prompt with their titles, in
``turn.flags["library"]`` for providers (the offline companion quotes the first), and as the
reply's ``sources``.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
import logging
import math
import os
import re
import sqlite3
import stat
import threading
import time
import unicodedata
from datetime import datetime, timezone
from pathlib import Path

import bottle
import yaml

from wellmate import ApiError, ConfigError, Setting, StorageUnavailable, atomic_write, hookimpl, now_iso, page_args, visible
from wellmate_plugins._openapi import Api, array, download, integer, nullable, obj, page, paging, string, text
from wellmate_plugins.auth import require_admin

log = logging.getLogger("wellmate.library")

ID_RULE = "1-64 lower-case letters, digits and '-', starting and ending with a letter or digit (blood-pressure)"
ARTICLE_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # a file in library/files: no folders, no dot first
TAG = re.compile(r"[^\W_](?:[\w-]{0,30}[^\W_])?")  # 1-32 letters (any script), digits, '-', '_'
FIELDS = ("title", "summary", "tags", "order", "cover", "attachment", "sources")
MAX_BODY_CHARS = 200_000
# An article file is read at most this far: 200,000 characters of Chinese are 600 KB of UTF-8. A
# larger file is left out after its stat, never read whole (a 2 GB file would be 2 GB of memory).
MAX_FILE_BYTES = 1_000_000
INDEX_FILE = "library.sqlite3"
RUNNER_UP = 0.75  # a second article's passage must cover this share of what the best one covers
SCHEMA = 5  # bump when the tables or `terms` change: the index is rebuilt from the files
# The passages' vocabulary is kept in memory up to this many terms (~160 bytes each while built:
# 8 MB at most). bench/library's 2,000 articles have 7,621 (1.2 MB, read from the index in 30 ms
# after each change). A larger index keeps none, and every turn queries it.
VOCABULARY_LIMIT = 50_000
# Terms the index's tokenizer (unicode61) surely keeps whole and as they are: ASCII letters and
# digits, and CJK characters assigned before Unicode 6.1 (its tables). Only such a term, if not in
# the vocabulary, is known to match nothing; any other is left to the query.
WHOLE_TERM = re.compile(r"[a-z0-9]+|[\u3400-\u4db5\u4e00-\u9fcb]+")


@hookimpl
def config_schema():
    return {"library": {
        "path": Setting("library", "Folder of articles (Markdown with a front matter), relative to config.yaml."),
        "passages": Setting(2, "Passages (from different articles) added to a chat turn at most; 0: the agents do "
                               "not read the library.", int, min=0, max=10),
        "min_score": Setting(0.3, "Share of the user's message (its words, not greetings) a passage must contain "
                                  "to be used in a turn, 0-1.", float, min=0.0, max=1.0),
        "passage_chars": Setting(500, "Longest passage given to a model or quoted, in characters.", int,
                                 min=50, max=5000),
        "rescan_seconds": Setting(5.0, "How often every file's stat is checked for files written over in place "
                                       "(cp over one): searches and turns see such an edit within this (added, "
                                       "removed and renamed files are seen at once); 0: at every read.",
                                  float, min=0, max=3600),
        "agent_tags": Setting({}, "Agents limited to articles with some tags, e.g. {mental: [mental, sleep]}; an "
                                  "agent not named reads every article.", dict),
    }}


# -- text: terms for the index and the queries ---------------------------------------------------

CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
RUNS = re.compile(f"[{CJK}]+|[^\\W_{CJK}]+")
CJK_CHAR = re.compile(f"[{CJK}]")
# Words that say nothing about health: greetings, pronouns, fillers. Matching only these is no
# reason to cite an article ("你好，我想问一下" would otherwise find every article with 一下).
STOP = frozenset("""
a about after again all also am an and any are as at be been before being but by can could did do does doing
don for from get got had has have having he her here him his how i if in into is it its just know let like me
more most my no not now of off on once only or other our out over own same she should so some still such than
that the their them then there these they this those through to too under until up very was we were what when
where which while who why will with would you your yours hi hello hey thanks thank please ok okay yes yeah
我们 你们 他们 她们 我的 你的 他的 她的 自己 什么 怎么 怎样 为什 么样 如何 哪些 哪个 这个 那个 这样 那样 这些 那些
一个 一下 一些 一点 有点 有些 没有 可以 可能 应该 需要 是不 不是 就是 还是 还有 或者 因为 所以 但是 如果 然后 现在
今天 最近 时候 比较 非常 特别 已经 一直 总是 老是 经常 觉得 感觉 知道 请问 问一 想问 你好 您好 谢谢 好的 大家 一样
我想 我要 我是 我有 我在 你是 你有 是什 了吗 吗？ 呢？ 的话 的时 样的 么办 怎么 办呢 有没 多少 一定 不要 要不
""".split())


def stem(word: str) -> str:
    """A light English stem, the same for the index and the query: plurals only (pressures ->
    pressure, worries -> worry); measured, -ing/-ed stripping matched unrelated words."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def runs(text: str) -> list[tuple[bool, str]]:
    """(is Chinese, run) of ``text``, normalized (invisible characters, full-width forms, case): a soft
    hyphen in an article's "hyper\u00adtension" or a zero-width space in a query splits no word."""
    text = unicodedata.normalize("NFKC", visible(text)).lower()
    return [(bool(CJK_CHAR.match(m.group())), m.group()) for m in RUNS.finditer(text)]


def run_terms(chinese: bool, run: str) -> list[str]:
    if not chinese:
        return [stem(run)]
    if len(run) == 1:
        return [run]
    return [run[i:i + 2] for i in range(len(run) - 1)]


def terms(text: str) -> list[str]:
    """The index's terms of ``text``: overlapping two-character terms of Chinese (a lone character
    alone), stemmed English words."""
    out = []
    for chinese, run in runs(text):
        out += run_terms(chinese, run)
    return out


def index_text(text: str) -> str:
    return " ".join(terms(text))


# Characters that carry no topic of their own (particles, pronouns): never a unit of a message.
STOP_CHARS = frozenset("我你他她它们的了吗呢吧啊呀哦嗯是在有很也都就还又和跟与把被给让会能要想这那个些么着过地得")


class MessageUnits:
    """What a chat message says, in units a passage may cover: each English word that is no stop
    word, and each Chinese character that is neither a particle nor part of a stop word (有点,
    怎么). ``covered(passage_terms)`` is the share of units a passage's terms contain (a character
    counts when a term holding it does); the terms to look for are ``query``.

    Why characters: without a segmenter, the two-character terms of "我最近血压有点高" include
    ones across word boundaries (近血, 压有) that no article has; counted as words of the
    message, they made a message about blood pressure cover a quarter of itself at best."""

    def __init__(self, text: str):
        self.units = []  # per unit: the terms that contain it
        for chinese, run in runs(text):
            if not chinese:
                word = stem(run)
                if word not in STOP and len(word) > 1:
                    self.units.append((word,))
                continue
            grams = run_terms(True, run)
            for i, char in enumerate(run):
                around = grams[max(0, i - 1):i + 1] if len(run) > 1 else grams
                if char in STOP_CHARS or any(g in STOP for g in around):
                    continue
                self.units.append(tuple(around))
        self.query = sorted({t for unit in self.units for t in unit})
        # The terms with a space either side, as a passage's terms hold them (``covered``).
        self._spaced_terms = [f" {t} " for t in self.query]
        self._spaced_units = [frozenset(f" {t} " for t in unit) for unit in self.units]

    def covered(self, passage_terms: str) -> float:
        """The share of units ``passage_terms`` (a passage's head and terms as the index keeps them,
        one space between terms) contains: the message's terms looked for in that text. Splitting
        it into a set of its ~400 terms instead, for each of up to 30 passages a turn, took 0.082 ms
        of bench/library's 0.23 ms questions on the starter articles; this 0.024."""
        if not self.units:
            return 0.0
        spaced = f" {passage_terms} "
        present = {term for term in self._spaced_terms if term in spaced}
        return sum(1 for unit in self._spaced_units if not present.isdisjoint(unit)) / len(self.units)


def fts_or(words) -> str:
    return " OR ".join(f'"{w}"' for w in words)


# -- articles: reading and checking ------------------------------------------------------------


class ArticleError(ValueError):
    """A field of an article is wrong: ``field`` names it (a 400 naming it, or a log line)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def _text_field(meta: dict, name: str, limit: int, required=False) -> str:
    value = meta.get(name)
    if value is None or value == "":
        if required:
            raise ArticleError(name, "required")
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ArticleError(name, f"must be text, got {type(value).__name__}")
    value = " ".join(str(value).split())
    if "\x00" in value:
        raise ArticleError(name, "contains a NUL character")
    if len(value) > limit:
        raise ArticleError(name, f"at most {limit} characters")
    if required and not value:
        raise ArticleError(name, "required")
    return value


def check_fields(meta, strict: bool) -> dict:
    """The front matter ``meta`` checked and tidied: {title, summary, tags, order, cover,
    attachment, sources}. ``strict`` (the API): an unknown field is an error; in a file it is
    ignored (a host's own notes)."""
    if not isinstance(meta, dict):
        raise ArticleError("front matter", "must be a mapping of fields (title: ..., tags: [...])")
    unknown = [str(k) for k in meta if k not in FIELDS]
    if strict and unknown:
        raise ArticleError(unknown[0], f"unknown field; known: {', '.join(FIELDS)}")
    tags = meta.get("tags") or []
    if isinstance(tags, str):
        tags = [t for t in re.split(r"[,，\s]+", tags) if t]
    if not isinstance(tags, list) or len(tags) > 20:
        raise ArticleError("tags", "must be a list of at most 20 words")
    clean_tags = []
    for tag in tags:
        if isinstance(tag, bool) or not isinstance(tag, (str, int)) or not TAG.fullmatch(str(tag)):
            raise ArticleError("tags", f"{tag!r} is not a tag: 1-32 letters, digits, '-' or '_'")
        if str(tag).lower() not in clean_tags:
            clean_tags.append(str(tag).lower())
    order = meta.get("order", 0)
    if order is None:
        order = 0
    if isinstance(order, bool) or not isinstance(order, int) or not -1_000_000 <= order <= 1_000_000:
        raise ArticleError("order", "must be a whole number (-1000000 to 1000000); lower comes first")
    files = {}
    for name in ("cover", "attachment"):
        value = meta.get(name)
        if value in (None, ""):
            files[name] = ""
        elif not isinstance(value, str) or not FILE_NAME.fullmatch(value):
            raise ArticleError(name, "must be the name of a file in the library's files/ folder "
                                     "(letters, digits, '.', '_', '-'; no folders)")
        else:
            files[name] = value
    sources = meta.get("sources") or []
    if isinstance(sources, str):
        sources = [sources]
    if not isinstance(sources, list) or len(sources) > 20:
        raise ArticleError("sources", "must be a list of at most 20 lines")
    sources = [_text_field({f"sources[{i}]": s}, f"sources[{i}]", 500) for i, s in enumerate(sources)]
    return {"title": _text_field(meta, "title", 200, required=True), "summary": _text_field(meta, "summary", 1000),
            "tags": clean_tags, "order": order, **files, "sources": [s for s in sources if s]}


def check_body(body) -> str:
    if not isinstance(body, str):
        raise ArticleError("body", "must be Markdown text")
    if "\x00" in body:
        raise ArticleError("body", "contains a NUL character")
    if len(body) > MAX_BODY_CHARS:
        raise ArticleError("body", f"at most {MAX_BODY_CHARS} characters")
    return body.replace("\r\n", "\n").strip("\n") + "\n"


FRONT = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)^---[ \t]*\r?$\n?", re.S | re.M)


def parse_article(text: str) -> tuple[dict, str]:
    """(fields, body) of an article file's text; ArticleError naming what is wrong."""
    match = FRONT.match(text)
    if not match:
        raise ArticleError("front matter", "missing: start the file with a '---' line, then title: ..., then '---'")
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark else ""
        raise ArticleError("front matter", f"not valid YAML{where}: {getattr(e, 'problem', e)}")
    except (ValueError, RecursionError) as e:  # PyYAML's own: 2026-02-30, a 5,000-digit number, deep nesting
        raise ArticleError("front matter", f"a value YAML cannot read: {str(e)[:200]}")
    return check_fields(meta, strict=False), check_body(text[match.end():])


def stamp_of(st: os.stat_result) -> str:
    """What says a file changed: its mtime, size and inode (a rename over it changes the inode,
    `cp` over it the mtime and mostly the size)."""
    return f"{st.st_mtime_ns}:{st.st_size}:{st.st_ino}"


def read_limited(path: Path) -> tuple[bytes, os.stat_result]:
    """(bytes, stat) of an article file, its size checked before it is read: OSError for one
    larger than MAX_FILE_BYTES (or that grew past it while read), a link, or not a file."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OSError(0, "not a regular file")
        too_big = f"{st.st_size:,} bytes, over the {MAX_FILE_BYTES:,} bytes an article may have: not read"
        if st.st_size > MAX_FILE_BYTES:
            raise OSError(0, too_big)
        raw = f.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise OSError(0, too_big)
    return raw, st


def article_text(fields: dict, body: str) -> str:
    meta = {k: fields[k] for k in FIELDS if fields.get(k) not in (None, "", [], 0)}
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False, width=1000)
    return f"---\n{front}---\n\n{body}"


# Markdown to plain text, for quoting a passage in a reply.
_MD = [(re.compile(r"!\[[^\]]*\]\([^)]*\)"), ""), (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),
       (re.compile(r"(\*\*|__|`)"), ""), (re.compile(r"(?m)^\s{0,3}#{1,6}\s*"), ""),
       (re.compile(r"(?m)^\s*(?:[-*+]|\d+[.)])\s+"), "· "), (re.compile(r"(?m)^>\s?"), "")]


def plain(markdown: str) -> str:
    for pattern, replacement in _MD:
        markdown = pattern.sub(replacement, markdown)
    return "\n".join(line.strip() for line in markdown.splitlines() if line.strip())


SENTENCE_END = re.compile(r"(?<=[。！？!?；;])|(?<=[.])\s")


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters at the end of a sentence (or a line) where it can be."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    ends = [m.end() for m in re.finditer(r"[。！？!?；;\n]|\.\s", cut)]
    if ends and ends[-1] > limit // 3:
        return cut[:ends[-1]].rstrip()
    return cut.rstrip() + "…"


HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")  # an ATX heading: "## 测之前"
FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
HEADING_CHARS = 80  # a longer heading is cut: it goes with every passage of its section, and into the quote


def blocks(body: str) -> list[tuple[str, str]]:
    """("heading", text) and ("text", paragraph) pieces of Markdown, in order. A heading is an ATX
    heading only ("#" to "######", a space, text), never inside a fenced code block: "#标签",
    "####### x" or a shell comment in ``` is text."""
    out, paragraph, fence = [], [], None

    def end_paragraph():
        if paragraph:
            out.append(("text", "\n".join(paragraph).strip()))
            paragraph.clear()

    for line in body.split("\n"):
        opened = FENCE.match(line)
        if fence is not None:  # inside a fence: text until the fence that closes it
            paragraph.append(line)
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence) and \
                    not line.strip()[len(opened.group(1)):].strip():
                fence = None
            continue
        if opened:
            fence = opened.group(1)
            paragraph.append(line)
            continue
        heading = HEADING.fullmatch(line)
        if heading:
            end_paragraph()
            out.append(("heading", shorten(" ".join((heading.group(2) or "").split()), HEADING_CHARS)))
        elif not line.strip():
            end_paragraph()
        else:
            paragraph.append(line)
    end_paragraph()
    return [(kind, text) for kind, text in out if kind == "heading" or text]


def split_passages(body: str, limit: int) -> list[tuple[str, str]]:
    """(heading, Markdown text) pieces of ``body``: its paragraphs, joined up to ``limit``
    characters within a section, a section's heading kept with each of its pieces."""
    out, heading, current = [], "", []

    def flush():
        if current:
            out.append((heading, "\n\n".join(current)))
            current.clear()

    for kind, block in blocks(body):
        if kind == "heading":
            flush()
            heading = block
            continue
        while len(block) > limit:  # a long paragraph: cut at sentence ends
            piece = shorten(block, limit)
            # The ellipsis is shorten's, unless the text itself ends so: each step takes something.
            piece = piece[:-1] if piece.endswith("…") and not block.startswith(piece) else piece
            flush()
            current.append(piece)
            block = block[len(piece):].strip()
        if current and sum(map(len, current)) + len(block) > limit:
            flush()
        current.append(block)
    flush()
    return out


# -- the library: files, index, search ---------------------------------------------------------


@contextlib.contextmanager
def unusable_index():
    """A read of the index that fails (the file damaged under a running server) is a 503
    storage_unavailable for a route, and costs a chat turn only the library's part: never a 500."""
    try:
        yield
    except sqlite3.Error as e:
        raise StorageUnavailable(f"the library index {INDEX_FILE}: {e}; delete it and restart to rebuild it") from e


class DamagedIndex(sqlite3.DatabaseError):
    """The index file is there but unusable (quick_check's findings, unreadable rows)."""


def etag_of(raw: bytes) -> str:
    """An article's ETag: a hash of its file's bytes, so an edit on disk changes it."""
    return hashlib.sha256(raw).hexdigest()[:24]


def etag_matches(if_match: str, etag: str | None) -> bool:
    """Whether an ``If-Match`` header (``"abc"``, ``W/"abc"``, a list, ``*``) names ``etag``
    (None: a file there that cannot be read, which only ``*`` matches)."""
    tags = [t.strip() for t in if_match.split(",")]
    return any(t == "*" or etag is not None and t.removeprefix("W/").strip('"') == etag for t in tags)


class Library:
    """The articles of ``library.path`` and their index (the ``library`` service).

    Two connections to the index: the indexer's (``_writer``, under ``_index_lock``: rescans,
    admin writes) and the readers' (``db``, under ``_read_lock``: searches, turns). In WAL mode a
    reader sees the last committed index while the indexer writes, so a chat turn never waits for
    a rescan: 400 new files held a turn for 406-470 ms when both were one connection behind one
    lock (bench/library --only-arrive)."""

    def __init__(self, wm):
        self.wm, self.config = wm, wm.config["library"]
        self.folder = (Path(wm.base) / self.config["path"]).resolve()
        self.files = self.folder / "files"
        self._index_lock = threading.RLock()  # the indexer's connection, the rescans, the stamps
        self._read_lock = threading.Lock()  # the readers' connection (a query at a time)
        self._write_lock = threading.Lock()  # admin writes of files
        self.articles: dict[str, dict] = {}  # id -> fields, updated_at, stamp, etag (no body); replaced whole
        # Every term of the passages (head and terms, as the index's tokenizer stored them), or
        # None when there are more than VOCABULARY_LIMIT: a turn whose terms are none of them
        # skips the query. Replaced whole; never missing a term the readers' index has.
        self.vocabulary: frozenset[str] | None = frozenset()
        self._sorted: list = []  # articles in listing order: (order, id)
        self._dir_stamp, self._scanned_at = None, -math.inf
        self._watcher, self._stopping, self._wake = None, threading.Event(), threading.Event()
        self.problems: dict[str, str] = {}  # file name -> why it is not in the library
        self._broken: dict[str, str] = {}  # file name -> the stamp of the version that could not be read
        self.agent_tags = self._agent_tags(wm)
        self.index_note = None  # why the index is not in the data folder, if it is not
        # What shapes the index's rows: an index built with other values is rebuilt.
        self.shape = json.dumps({"schema": SCHEMA, "passage_chars": self.config["passage_chars"]})
        self._writer, self.db = self._open(Path(wm.data_dir) / INDEX_FILE)
        self.refresh()
        for name, problem in sorted(self.problems.items()):
            wm.problems.append(f"library: {self.folder / name}: {problem}")

    def _agent_tags(self, wm) -> dict:
        where = f"{wm.config_path.name}: library.agent_tags"
        out = {}
        for agent, tags in self.config["agent_tags"].items():
            if agent not in wm.config["agents"]:
                raise ConfigError(f"{where}.{agent}: no such agent; agents: {', '.join(wm.config['agents'])}")
            if not isinstance(tags, list) or not all(isinstance(t, str) and TAG.fullmatch(t) for t in tags):
                raise ConfigError(f"{where}.{agent}: must be a list of tags, e.g. [mental, sleep]")
            out[agent] = [t.lower() for t in tags]
        return out

    # -- the index file
    def _open(self, path: Path) -> tuple[sqlite3.Connection, sqlite3.Connection]:
        """(the indexer's connection, the readers'). A damaged index (random bytes over its
        pages, not a database at all) is deleted and rebuilt from the files: it is only an index."""
        try:
            return self._open_checked(path)
        except sqlite3.OperationalError as e:  # a read-only data folder, a full disk
            return self._in_memory(path, e)
        except (sqlite3.DatabaseError, ValueError, KeyError, TypeError) as e:  # TypeError etc.: rows not as written
            log.warning("library: %s is damaged (%s); rebuilding the index from the files", path, e)
            self.articles = {}
            try:
                for suffix in ("", "-wal", "-shm"):
                    Path(str(path) + suffix).unlink(missing_ok=True)
                return self._open_checked(path)
            except (sqlite3.Error, OSError, ValueError, KeyError, TypeError) as again:
                return self._in_memory(path, again)
        except OSError as e:
            return self._in_memory(path, e)

    def _open_checked(self, path: Path):
        writer = self._connect(path)
        try:
            # quick_check reads every page (2,000 articles' 27.7 MB index: 70-100 ms at start, load 9); a
            # damaged page found later would fail every search that reads it until a restart.
            found = [row[0] for row in writer.execute("PRAGMA quick_check(3)")]
            if found != ["ok"]:
                raise DamagedIndex("; ".join(found))
            self._load(writer)
            reader = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            reader.execute("PRAGMA query_only=1")
            return writer, reader
        except BaseException:
            writer.close()
            raise

    def _in_memory(self, path: Path, error):
        # Said when the server starts (`start`), not now: a server refusing a read-only data
        # folder says so in one line (`wellmate.serve`), and this would be a second.
        self.index_note = f"{path}: {error}; the library index is kept in memory (rebuilt at each start)"
        self.articles = {}
        self.vocabulary = frozenset()
        writer = self._connect(":memory:")
        return writer, self._copy(writer)

    @staticmethod
    def _copy(db: sqlite3.Connection) -> sqlite3.Connection:
        """A copy of an index kept in memory, for the readers (one connection to memory cannot be
        read while it is written)."""
        copy = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        db.backup(copy)
        return copy

    def _connect(self, path) -> sqlite3.Connection:
        db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        try:
            return self._prepare(db)
        except BaseException:
            db.close()
            raise

    def _prepare(self, db: sqlite3.Connection) -> sqlite3.Connection:
        # WAL with synchronous=NORMAL: a crash or power cut may lose the last update (the next
        # start redoes it from the files, whose stamps are in the same transaction), never the file.
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        shape = None
        if version == SCHEMA:
            row = db.execute("SELECT value FROM meta WHERE key = 'shape'").fetchone()
            shape = row[0] if row else None
        if shape != self.shape:
            if version:
                log.warning("library: the index was built with %s, now %s: rebuilding it from the files",
                            shape or f"schema {version}", self.shape)
            for table in ("articles", "tags", "passages", "docs", "passage_terms", "meta"):
                db.execute(f"DROP TABLE IF EXISTS {table}")
            db.executescript(f"""
                CREATE TABLE articles (id TEXT PRIMARY KEY, stamp TEXT, updated_at TEXT, fields TEXT, body TEXT,
                    rows TEXT, etag TEXT);
                CREATE TABLE tags (tag TEXT, article TEXT, PRIMARY KEY (tag, article)) WITHOUT ROWID;
                CREATE VIRTUAL TABLE passages USING fts5(head, terms, article UNINDEXED, heading UNINDEXED,
                    text UNINDEXED, tokenize='unicode61 remove_diacritics 0');
                CREATE VIRTUAL TABLE docs USING fts5(head, terms, article UNINDEXED,
                    tokenize='unicode61 remove_diacritics 0');
                CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
                PRAGMA user_version={SCHEMA};
            """)
            db.execute("INSERT INTO meta VALUES ('shape', ?)", (self.shape,))
        return db

    def _load(self, db):
        articles = {}
        for article_id, stamp, updated_at, fields, etag in db.execute(
                "SELECT id, stamp, updated_at, fields, etag FROM articles"):
            articles[article_id] = {**json.loads(fields), "id": article_id, "updated_at": updated_at, "stamp": stamp,
                                    "etag": etag}
        self._publish(articles)
        self.vocabulary = self._vocabulary(db)

    @staticmethod
    def _vocabulary(db: sqlite3.Connection) -> frozenset[str] | None:
        """The passages' terms in ``db`` as its tokenizer stored them (fts5vocab, a table of the
        connection's own temp schema: the index file is not changed), or None if there are more
        than VOCABULARY_LIMIT."""
        db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.passage_vocabulary USING fts5vocab(main, passages, 'row')")
        found = [row[0] for row in db.execute("SELECT term FROM temp.passage_vocabulary LIMIT ?",
                                              (VOCABULARY_LIMIT + 1,))]
        return frozenset(found) if len(found) <= VOCABULARY_LIMIT else None

    def _publish(self, articles: dict):
        """Make ``articles`` the library's: one assignment each, so a reader sees the old or the
        new (an id in one and not the other is skipped by the readers)."""
        self.articles = articles
        self._sorted = sorted((a["order"], a["id"]) for a in articles.values())

    # -- keeping the index up to date
    def fresh(self, wait: bool = True):
        """Bring the index up to date if the folder changed: one stat of the folder per call
        (a file added, removed or replaced changes it). Edits made in place are found by a
        rescan of every file's stat every ``rescan_seconds``: in a thread of its own once the
        server has started (2,000 files took 15-37 ms), else here (the command line, tests
        without a server). With ``wait`` false (a chat turn) and the thread running, the thread
        is woken and the turn goes on with the index as it is."""
        try:
            stamp = self.folder.stat().st_mtime_ns
        except OSError:
            stamp = None
        rescan = self.config["rescan_seconds"]
        if stamp == self._dir_stamp and not (
                (self._watcher is None or rescan == 0) and time.monotonic() - self._scanned_at >= rescan):
            if wait:  # the thread may be indexing this very change (it stamps first): a read waits for it
                with self._index_lock:
                    pass
            return
        if wait or self._watcher is None:
            self.refresh()
        else:
            self._wake.set()

    def start(self):
        """Index in a thread of its own: every ``rescan_seconds`` (0: when a turn asks), and when a
        turn finds the folder changed."""
        if self.index_note:
            log.warning("library: %s", self.index_note)
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, name="library-index", daemon=True)
            self._watcher.start()

    def _watch(self):
        while True:
            self._wake.wait(self.config["rescan_seconds"] or None)
            if self._stopping.is_set():
                return
            self._wake.clear()  # before the rescan: a change seen during it wakes the next one
            try:
                self.refresh()
            except Exception:  # a bug or a vanished folder must not end the rescans
                log.exception("library: rescanning %s", self.folder)

    def _stamps(self) -> dict[str, str]:
        found = {}
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return found
        for entry in entries:
            name = entry.name
            if not name.endswith(".md") or name.startswith("."):
                continue
            try:
                st = entry.stat()
            except OSError:
                continue
            if not entry.is_file(follow_symlinks=False):  # a link may point anywhere (a repo can carry one)
                continue
            found[name] = stamp_of(st)
        return found

    def refresh(self):
        with self._index_lock:
            try:
                self._dir_stamp = self.folder.stat().st_mtime_ns
            except OSError:
                self._dir_stamp = None
            self._scanned_at = time.monotonic()
            stamps = self._stamps()
            seen, changed = set(), []
            for name, stamp in stamps.items():
                article_id = name[:-3]
                if not ARTICLE_ID.fullmatch(article_id):
                    if name not in self.problems:
                        self.problems[name] = f"not in the library: a file name must be {ID_RULE}, then .md"
                        log.warning("library: %s: %s", name, self.problems[name])
                    continue
                seen.add(article_id)
                known = self.articles.get(article_id)
                if (known and known["stamp"] == stamp) or self._broken.get(name) == stamp:
                    continue
                changed.append((article_id, stamp))
            gone = [a for a in self.articles if a not in seen]
            if (changed or gone) and not self._update(changed, gone):
                self._dir_stamp = None  # not done: the next read or rescan tries again
            self.problems = {name: p for name, p in self.problems.items() if name in stamps}
            self._broken = {name: stamp for name, stamp in self._broken.items() if name in stamps}

    def _update(self, changed: list, gone: list) -> bool:
        """Index the ``changed`` files (article id, stamp) and drop the ``gone`` articles, in one
        transaction (one per file, and a count after each: 2,000 new files took 51 s; so, 41 s).
        False if the index could not be written."""
        stored = {}
        for article_id, stamp in changed:
            read = self._read_file(article_id, stamp)
            if read is not None:
                stored[article_id] = read
            time.sleep(0)  # lets a waiting turn have the GIL now, not after the 5 ms switch interval
        db, old_vocabulary = self._writer, self.vocabulary
        try:
            # IMMEDIATE: the write lock now, waited for if another writer has it (a deferred BEGIN
            # that read first is refused at once when it then writes).
            db.execute("BEGIN IMMEDIATE")
            for article_id in gone:
                self._delete_rows(article_id)
            for article_id, (fields, body, stamp, updated_at, etag) in stored.items():
                self._write_rows(article_id, fields, body, stamp, updated_at, etag)
            # Read in the transaction; until the readers see the commit, a turn may meet either
            # index, so the old and the new vocabulary both count.
            vocabulary = self._vocabulary(db)
            self.vocabulary = None if vocabulary is None or old_vocabulary is None else vocabulary | old_vocabulary
            db.execute("COMMIT")
            if self.index_note:  # kept in memory: the readers get a new copy
                copy = self._copy(db)
                with self._read_lock:
                    self.db, old = copy, self.db
                old.close()
        except sqlite3.Error as e:  # a full disk: searches go on with what the index had
            if db.in_transaction:
                db.execute("ROLLBACK")
            self.vocabulary = old_vocabulary
            log.error("library: updating the index failed: %s; searches use the index as it was", e)
            return False
        articles = dict(self.articles)
        for article_id in gone:
            articles.pop(article_id, None)
        for article_id, (fields, body, stamp, updated_at, etag) in stored.items():
            articles[article_id] = {**fields, "id": article_id, "updated_at": updated_at, "stamp": stamp, "etag": etag}
        self._publish(articles)
        self.vocabulary = vocabulary  # the readers see the new index now
        return True

    def _read_file(self, article_id: str, stamp: str):
        """(fields, body, stamp, updated_at, etag) of the article's file, or None when it cannot
        be used (the reason is logged once and kept in ``problems``)."""
        name = f"{article_id}.md"
        path = self.folder / name
        try:
            raw, st = read_limited(path)
            fields, body = parse_article(raw.decode("utf-8"))
            updated = datetime.fromtimestamp(st.st_mtime, timezone.utc)
        except (OSError, UnicodeDecodeError, ArticleError) as e:
            why = str(e) if isinstance(e, ArticleError) else "not UTF-8 text" if isinstance(e, UnicodeDecodeError) \
                else (e.strerror or str(e))
            if self.problems.get(name) != why:
                log.warning("library: %s: %s; %s", path, why,
                            "keeping the last good version" if article_id in self.articles else "not in the library")
            self.problems[name] = why
            self._broken[name] = stamp  # read again when it changes, not at every rescan
            return None
        self.problems.pop(name, None)
        self._broken.pop(name, None)
        return fields, body, stamp, now_iso(updated), etag_of(raw)

    def _write_rows(self, article_id: str, fields: dict, body: str, stamp: str, updated_at: str, etag: str):
        # Every passage carries its article's title and summary: a paragraph of an article about
        # blood pressure is about blood pressure, whether it says so or not.
        head = index_text(f"{fields['title']}\n{fields['summary']}")
        db = self._writer
        self._delete_rows(article_id)
        db.executemany("INSERT INTO tags VALUES (?, ?)", [(t, article_id) for t in fields["tags"]])
        doc = db.execute("INSERT INTO docs (head, terms, article) VALUES (?, ?, ?)",
                         (head, index_text("\n".join([fields["summary"], *fields["tags"], *fields["sources"], body])),
                          article_id)).lastrowid
        rows = [db.execute("INSERT INTO passages (head, terms, article, heading, text) VALUES (?, ?, ?, ?, ?)",
                           (head, index_text(f"{heading}\n{text}"), article_id, heading, text)).lastrowid
                for heading, text in split_passages(body, self.config["passage_chars"])]
        db.execute("INSERT INTO articles VALUES (?, ?, ?, ?, ?, ?, ?)", (article_id, stamp, updated_at, json.dumps(
            fields, ensure_ascii=False), body, json.dumps({"doc": doc, "passages": rows}), etag))

    def _delete_rows(self, article_id: str):
        # The full-text tables by rowid (kept in `articles`): by their unindexed `article`
        # column, each delete read the whole table (2,000 new articles indexed in 41 s; so, 4-9 s).
        db = self._writer
        row = db.execute("SELECT rows FROM articles WHERE id = ?", (article_id,)).fetchone()
        if row is None:
            return
        rows = json.loads(row[0])
        db.execute("DELETE FROM docs WHERE rowid = ?", (rows["doc"],))
        db.executemany("DELETE FROM passages WHERE rowid = ?", [(r,) for r in rows["passages"]])
        db.execute("DELETE FROM tags WHERE article = ?", (article_id,))
        db.execute("DELETE FROM articles WHERE id = ?", (article_id,))

    # -- reading
    def get(self, article_id: str) -> dict | None:
        """The article with its ``body`` and ``etag``, or None. Its file is looked at too: `cp`
        over an article leaves the folder as it was, and a reader (or an admin about to edit it)
        must see what is on disk, not wait for the next rescan."""
        self.fresh()
        known = self.articles.get(article_id)
        if known is None:
            return None
        name = f"{article_id}.md"
        try:
            stamp = stamp_of(os.stat(self.folder / name, follow_symlinks=False))
        except OSError:
            stamp = known["stamp"]  # gone: the folder's stamp says so
        if stamp != known["stamp"] and self._broken.get(name) != stamp:
            self.refresh()
        article = self.articles.get(article_id)
        if article is None:
            return None
        with self._read_lock, unusable_index():
            row = self.db.execute("SELECT body, etag FROM articles WHERE id = ?", (article_id,)).fetchone()
        return {**article, "body": row[0], "etag": row[1]} if row else None

    def list(self, q: str = "", tag: str = "", limit: int = 20, before: str | None = None) -> tuple[list, str | None]:
        """A page of articles: in ``order`` (then id) without ``q``; best match first with it.
        Every word of ``q`` must be in the article (a Chinese word as written). ValueError for a
        cursor this did not make."""
        self.fresh()
        tag = tag.lower()
        with self._read_lock, unusable_index():
            if not q.strip():
                return self._list_all(tag, limit, before)
            return self._search(q, tag, limit, before)

    def _list_all(self, tag, limit, before):
        position = (-math.inf, "")
        if before:
            match = re.fullmatch(r"p(-?\d{1,7})\.([a-z0-9-]{1,64})", before)
            if not match:
                raise ValueError(before)
            position = (int(match.group(1)), match.group(2))
        items, articles, ordered = [], self.articles, self._sorted
        for order, article_id in ordered[bisect.bisect_right(ordered, position):]:
            article = articles.get(article_id)
            if article is None or tag and tag not in article["tags"]:
                continue
            items.append(article)
            if len(items) > limit:
                break
        more = len(items) > limit
        items = items[:limit]
        return items, (f"p{items[-1]['order']}.{items[-1]['id']}" if more else None)

    def _search(self, q, tag, limit, before):
        offset = 0
        if before:
            match = re.fullmatch(r"s(\d{1,6})", before)
            if not match:
                raise ValueError(before)
            offset = int(match.group(1))
        phrases, letters = [], []
        for chinese, run in runs(q):
            if chinese and len(run) == 1:
                letters.append(run)  # one character is no term of the index: looked for in the text
            else:
                grams = run_terms(chinese, run)
                phrases.append('"' + " ".join(grams) + '"')  # the terms side by side: the word as written
        if not phrases and not letters:
            return [], None
        found = None
        if phrases:
            found = [row[0] for row in self.db.execute(
                "SELECT article FROM docs WHERE docs MATCH ? ORDER BY bm25(docs, 3.0, 1.0)", [" AND ".join(phrases)])]
        if letters:  # a scan of the articles' text, in SQLite: 2,000 articles in ~10 ms (bench/library)
            where = " AND ".join(["instr(fields || body, ?) > 0"] * len(letters))
            keep = {row[0] for row in self.db.execute(f"SELECT id FROM articles WHERE {where}", letters)}
            found = [a for a in found if a in keep] if found is not None else [a for _, a in self._sorted if a in keep]
        articles = self.articles
        found = [articles[a] for a in found if a in articles and (not tag or tag in articles[a]["tags"])]
        page = found[offset:offset + limit]
        return page, (f"s{offset + limit}" if len(found) > offset + limit else None)

    def tags_of(self, agent: str) -> list[str] | None:
        """The tags ``agent`` is limited to, or None: every article."""
        return self.agent_tags.get(agent)

    def passages_for(self, text: str, tags: list[str] | None = None, count: int | None = None) -> list[dict]:
        """The passages that best match a chat message, at most one per article: ``[{id, title,
        heading, text, score}]``, best first. ``score`` is the share of the message's words the
        passage (with its title) contains; below ``library.min_score`` a passage is not used."""
        count = self.config["passages"] if count is None else count
        if count <= 0 or tags == []:
            return []
        units = MessageUnits(text[:2000])
        if not units.query:
            return []
        self.fresh(wait=False)  # a turn never waits for indexing: it reads the last index committed
        # A term no passage has matches nothing and adds nothing to a passage's bm25 (its
        # frequency is 0): left out, and no query at all when none is left (今天天气不错，出去玩了
        # on the starter articles: 0.021 ms instead of 0.046, the rest its units and the stat).
        vocabulary = self.vocabulary
        query = [t for t in units.query[:64] if vocabulary is None or t in vocabulary or not WHOLE_TERM.fullmatch(t)]
        if not query:
            return []
        # The best rowids first, then their columns: selected with the ranking, every matching
        # passage's text was read before the sort (600 of 6,600 passages: 6.6 ms, this way 1.6 ms).
        sql = "SELECT rowid FROM passages WHERE passages MATCH ?"
        args = [fts_or(query)]
        if tags is not None:
            sql += f" AND article IN (SELECT article FROM tags WHERE tag IN ({', '.join('?' * len(tags))}))"
            args += tags
        sql += " ORDER BY bm25(passages, 2.0, 1.0) LIMIT 30"
        with self._read_lock, unusable_index():
            ranked_ids = [row[0] for row in self.db.execute(sql, args)]
            columns = {row[0]: row[1:] for row in self.db.execute(
                "SELECT rowid, article, heading, text, head || ' ' || terms FROM passages WHERE rowid IN "
                f"({', '.join(map(str, ranked_ids))})")} if ranked_ids else {}
        rows = [columns[rowid] for rowid in ranked_ids if rowid in columns]
        best = {}  # article -> (score, place in bm25's order, heading, passage): its passage covering most of the message
        for place, (article_id, heading, passage, passage_terms) in enumerate(rows):
            score = units.covered(passage_terms)
            if score >= self.config["min_score"] and score > 0 and score > best.get(article_id, (0,))[0]:
                best[article_id] = (score, place, heading, passage)
        ranked = sorted(best.items(), key=lambda item: (-item[1][0], item[1][1]))
        found = []
        for article_id, (score, _, heading, passage) in ranked[:count]:
            # Another article only if it is nearly as good: "每天要喝多少水" about kidney stones
            # covered 0.71 of the message, the diabetes diet's paragraph on drinks 0.43.
            if found and score < found[0]["score"] * RUNNER_UP:
                break
            article = self.articles.get(article_id)
            if article is not None:
                found.append({"id": article_id, "title": article["title"], "heading": heading,
                              "text": shorten(plain(passage), self.config["passage_chars"]), "score": round(score, 3)})
        return found

    # -- the chat turn
    def before_reply(self, agent: str, text: str, turn) -> dict | None:
        flags = turn.flags if turn is not None else {}
        # A turn the safety plugin is worried about is about the person, not reading: the crisis
        # reply, a check-in, an emergency note. (This plugin loads before safety, so safety's
        # before_reply has run and set its flags.)
        if flags.get("crisis") or flags.get("check_in") or flags.get("crisis_earlier") or flags.get("notes_shown"):
            return None
        found = self.passages_for(text, self.tags_of(agent))
        if not found:
            return None
        if turn is not None:
            turn.flags["library"] = found
        return {"system": system_text(found), "sources": [{"id": f["id"], "title": f["title"]} for f in found]}

    # -- writing (the admin API)
    def path_of(self, article_id: str) -> Path:
        path = (self.folder / f"{checked_id(article_id)}.md").resolve()
        if path.parent != self.folder:  # never outside the folder (a slug cannot be; a check costs nothing)
            raise ApiError(400, "invalid_id", f"An article id is {ID_RULE}.")
        return path

    def write(self, article_id: str, payload: dict, create: bool, if_match: str | None = None) -> dict:
        """Write the article's file from an admin's JSON ``payload`` atomically and index it now.
        POST (``create``): 409 if it exists. PUT: 404 if it does not; the fields not given keep
        the values of the file on disk (the index may be a rescan behind an edit made there); with
        ``if_match``, 409 unless the file on disk is still the version the client read."""
        path = self.path_of(article_id)
        fields, body = body_fields(payload, None) if create else (None, None)
        with self._write_lock:
            exists = os.path.lexists(path)
            if create and exists:
                raise ApiError(409, "article_exists", f"An article {article_id!r} exists; change it with PUT.")
            if not create and not exists:
                raise ApiError(404, "article_not_found", f"No article {article_id!r}.")
            if not create:
                raw = self._on_disk(path, if_match)
                try:
                    on_disk, text = parse_article(raw.decode("utf-8")) if raw is not None else (None, None)
                except (UnicodeDecodeError, ArticleError):
                    on_disk = None
                # A file broken on disk: the fields not given come from its last good version.
                fields, body = body_fields(payload, {**on_disk, "body": text} if on_disk else self.get(article_id))
            for name in ("cover", "attachment"):
                if fields.get(name) and not (self.files / fields[name]).is_file():
                    raise ApiError(400, "invalid_field", f"{name}: no file {fields[name]!r} in {self.files}; "
                                                         f"put it there first")
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                atomic_write(path, article_text(fields, body).encode("utf-8"))
            except OSError as e:
                raise StorageUnavailable(f"writing {path}: {e.strerror or e}") from e
            self.refresh()
        return self.get(article_id)

    @staticmethod
    def _on_disk(path: Path, if_match: str | None) -> bytes | None:
        """The article file's bytes now (None if it cannot be read); a 409 if ``if_match`` (the
        ETag the client read) is not theirs: the file was edited since, on disk or by another admin."""
        raw = None
        with contextlib.suppress(OSError):
            raw, _ = read_limited(path)
        if if_match is not None and not etag_matches(if_match, etag_of(raw) if raw is not None else None):
            raise ApiError(409, "article_changed", f"{path.stem!r} changed since it was read (If-Match: "
                                                  f"{if_match[:60]}); read it again for its new ETag and change that")
        return raw

    def delete(self, article_id: str, if_match: str | None = None) -> bool:
        path = self.path_of(article_id)
        with self._write_lock:
            if not os.path.lexists(path):
                return False
            self._on_disk(path, if_match)
            try:
                path.unlink()
            except FileNotFoundError:
                return False
            except OSError as e:
                raise StorageUnavailable(f"deleting {path}: {e.strerror or e}") from e
            self.refresh()
        return True

    def close(self):
        self._stopping.set()
        self._wake.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)
        with self._index_lock:
            self._writer.close()
        with self._read_lock:
            self.db.close()


def checked_id(article_id) -> str:
    """``article_id`` if it is a slug, else a 400: nothing else becomes a path."""
    if not isinstance(article_id, str) or not ARTICLE_ID.fullmatch(article_id):
        raise ApiError(400, "invalid_id", f"An article id is {ID_RULE}.")
    return article_id


def system_text(found: list[dict]) -> str:
    """The passages for the model, with their titles."""
    parts = ["健康文库（本服务器的《病友宝典》）里与用户这条消息相关的内容如下。有帮助时可以据此回答，并说明出自哪篇文章（用书名号写标题）；"
             "文中没有写的不要编造，也不要照搬与问题无关的部分。"]
    for f in found:
        heading = f" · {f['heading']}" if f["heading"] else ""
        parts.append(f"《{f['title']}》{heading}\n{f['text']}")
    return "\n\n".join(parts)


# -- hooks -----------------------------------------------------------------------------------------


@hookimpl
def register_services(register):
    register("library", Library)


@hookimpl
def before_reply(agent, text, turn, wm):
    library = wm.service("library")
    return library.before_reply(agent, text, turn) if library else None


@hookimpl
def startup(wm):
    library = wm.service("library")
    if library:
        library.start()


@hookimpl
def shutdown(wm):
    library = wm.service("library")
    if library:
        library.close()


def list_view(article: dict) -> dict:
    view = {key: article[key] for key in ("id", "title", "summary", "tags", "updated_at")}
    if article.get("cover"):
        view["cover"] = file_link(article, "cover")
    return view


def file_link(article: dict, kind: str) -> dict | None:
    name = article.get(kind)
    return {"name": name, "url": f"/api/v1/library/{article['id']}/files/{name}"} if name else None


def article_view(article: dict) -> dict:
    """An article as the API answers it; its ETag also as the response's header (for If-Match)."""
    bottle.response.set_header("ETag", f'"{article["etag"]}"')
    return {**list_view(article), "order": article["order"], "sources": article["sources"],
            "cover": file_link(article, "cover"), "attachment": file_link(article, "attachment"),
            "body": article["body"], "etag": article["etag"]}


def body_fields(body: dict, current: dict | None) -> tuple[dict, str]:
    """The article fields and Markdown of an admin's JSON ``body``; with ``current`` (PUT), the
    fields not given keep their values (null clears one)."""
    unknown = [k for k in body if k not in (*FIELDS, "body", "id")]
    if unknown:
        raise ApiError(400, "invalid_field", f"{unknown[0]}: unknown field; known: {', '.join((*FIELDS, 'body'))}")
    meta = {k: current[k] for k in FIELDS} if current else {}
    meta.update({k: v for k, v in body.items() if k in FIELDS})
    try:
        fields = check_fields(meta, strict=True)
        text = check_body(body["body"] if "body" in body else (current or {}).get("body", ""))
    except ArticleError as e:
        raise ApiError(400, "invalid_field", str(e))
    return fields, text


FILE_LINK = obj({"name": string(), "url": string()}, required=["name", "url"], title="LibraryFile")
ARTICLE_SUMMARY = obj({"id": string(), "title": string(), "summary": string(), "tags": array(string()),
                       "updated_at": string(), "cover": FILE_LINK}, required=["id", "title", "summary", "tags", "updated_at"],
                      title="ArticleSummary")
ARTICLE = obj({**ARTICLE_SUMMARY["properties"], "cover": nullable(FILE_LINK), "attachment": nullable(FILE_LINK),
               "order": integer(), "sources": array(string()), "body": string(description="Markdown"),
               "etag": string(description="the file's version: send it back as If-Match to change or delete it")},
              required=ARTICLE_SUMMARY["required"] + ["cover", "attachment", "order", "sources", "body"], title="Article")
ARTICLE_FIELDS = {
    "title": text(200), "summary": string(max_length=1000),
    "tags": array(string(max_length=32), max_items=20), "order": integer(-1_000_000, 1_000_000, description="lower first"),
    "cover": string(nullable=True, description="a file in the library's files/ folder"),
    "attachment": string(nullable=True, description="a file in the library's files/ folder"),
    "sources": array(string(max_length=500), max_items=20), "body": string(max_length=MAX_BODY_CHARS, description="Markdown")}
ARTICLE_ID_PARAM = {"article_id": string(pattern=f"^{ARTICLE_ID.pattern}$", description=ID_RULE)}
BAD_ID = {400: "invalid_id: " + ID_RULE}


def if_match() -> str | None:
    value = bottle.request.get_header("If-Match")
    if value is not None and (len(value) > 1000 or not value.strip()):
        raise ApiError(400, "invalid_header", "If-Match: the ETag of the article as read (GET), in quotes")
    return value


@hookimpl
def routes(app, wm):
    library = wm.service("library")

    def existing(article_id: str) -> dict:
        article = library.get(checked_id(article_id))
        if article is None:
            raise ApiError(404, "article_not_found", f"No article {article_id!r}.")
        return article

    @app.get("/api/v1/library", api=Api(
        "The health library's articles, or those matching a search",
        query={"q": string(max_length=200, description="words to look for"), "tag": string(max_length=64),
               **paging()},
        responses={200: page(ARTICLE_SUMMARY)}))
    def list_articles():
        wm.require_user()
        query = bottle.request.query
        q, tag = query.getunicode("q", default="") or "", query.getunicode("tag", default="") or ""
        if len(q) > 200 or "\x00" in q:
            raise ApiError(400, "invalid_field", "q: at most 200 characters, no NUL")
        if len(tag) > 64 or "\x00" in tag:
            raise ApiError(400, "invalid_field", "tag: at most 64 characters, no NUL")
        limit, before = page_args()
        try:
            items, cursor = library.list(q, tag, limit, before)
        except ValueError:
            raise ApiError(400, "invalid_cursor", "before: not a cursor of this list; pass the `next` of the previous page.")
        return {"items": [list_view(a) for a in items], "next": cursor}

    @app.get("/api/v1/library/<article_id>", api=Api(
        "An article with its Markdown", params=ARTICLE_ID_PARAM, responses={200: ARTICLE}, errors=BAD_ID))
    def read_article(article_id):
        wm.require_user()
        return article_view(existing(article_id))

    @app.get("/api/v1/library/<article_id>/files/<name>", api=Api(
        "An article's cover (shown) or attachment (a download)", params=ARTICLE_ID_PARAM,
        responses={200: download("*/*", attachment=False)}, errors=BAD_ID))
    def article_file(article_id, name):
        wm.require_user()
        article = existing(article_id)
        if name not in (article.get("cover"), article.get("attachment")) or not FILE_NAME.fullmatch(name):
            raise ApiError(404, "file_not_found", f"Article {article_id!r} has no file {name!r}.")
        path = library.files / name
        # Not a link: one to config.yaml (its keys) or data/ would serve it to every user.
        if path.is_symlink() or not path.is_file():
            raise ApiError(404, "file_not_found", f"The file {name!r} of article {article_id!r} is missing on the server.")
        return bottle.static_file(name, root=str(library.files), download=name if name == article.get("attachment") else False)

    @app.post("/api/v1/library", api=Api(
        "Add an article", auth="admin",
        body=obj({"id": ARTICLE_ID_PARAM["article_id"], **ARTICLE_FIELDS}, required=["id", "title"], additional_properties=False,
                 example={"id": "sleep-hygiene", "title": "Sleeping better", "tags": ["sleep"], "body": "## Why\n..."}),
        responses={201: ARTICLE}, errors={409: "article_exists: change it with PUT"}))
    def create_article():
        require_admin(wm)
        body = wm.json_body()
        article_id = body.get("id")
        if not isinstance(article_id, str) or not ARTICLE_ID.fullmatch(article_id):
            raise ApiError(400, "invalid_field", f"id: required, {ID_RULE}")
        article = library.write(article_id, body, create=True)
        bottle.response.status = 201
        return article_view(article)

    @app.put("/api/v1/library/<article_id>", api=Api(
        "Change an article (the fields sent; null clears one)", auth="admin", params=ARTICLE_ID_PARAM,
        body=obj(ARTICLE_FIELDS, additional_properties=False, example={"summary": "Seven habits for a better night"}),
        responses={200: ARTICLE}, errors={409: "article_changed: If-Match is not the file's ETag any more"}))
    def update_article(article_id):
        require_admin(wm)
        checked_id(article_id)
        body = wm.json_body()
        if body.get("id", article_id) != article_id:
            raise ApiError(400, "invalid_field", "id: an article keeps its id; create a new one and delete this one")
        return article_view(library.write(article_id, body, create=False, if_match=if_match()))

    @app.delete("/api/v1/library/<article_id>", api=Api(
        "Delete an article", auth="admin", params=ARTICLE_ID_PARAM, responses={204: None},
        errors={**BAD_ID, 409: "article_changed: If-Match is not the file's ETag any more"}))
    def delete_article(article_id):
        require_admin(wm)
        if not library.delete(checked_id(article_id), if_match()):
            raise ApiError(404, "article_not_found", f"No article {article_id!r}.")
        bottle.response.status = 204
        return ""
