"""A small text classifier that needs nothing beyond Python: character and word n-grams into a
multinomial logistic regression, its weights a JSON file of a few hundred KB.

Not a plugin (the leading underscore keeps the loader from registering it): the safety plugin
(crisis, a check-in, or nothing) and the emotion tagger (a label per user message) both use it,
each with its own weights file and its own training sentences under models/training/. A word list
only finds what someone wrote into it; n-grams of characters also catch the spellings, slang and
inflections nobody listed (紫砂 beside 自杀, "ending" beside "end"), and word pairs catch what a
word alone does not say ("kill the process" is not "kill myself").

    model = TextModel.load("models/crisis.json")
    model.scores("真的不想再醒来了")   # {"crisis": 0.93, "grey": 0.05, "none": 0.02}

Scoring one message costs tens of microseconds, so it runs on every message on a Raspberry Pi.
Features are hashed into a fixed number of buckets (crc32), and the weights live in one flat
array of floats: as a dictionary of feature strings the two shipped models took 51 MB of RSS,
hashed they take a few MB. Training is plain Python too, deterministic for a given seed
and set of rows, and takes seconds to a minute for a few thousand sentences (`python wellmate.py
train-crisis`, `train-emotion`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import re
import sys
import threading
import unicodedata
import zlib
from array import array
from itertools import repeat
from operator import add
from pathlib import Path

FORMAT = "wellmate-textmodel/1"
BUCKETS = 1 << 17  # 131,072: the ~60,000 features of a few thousand sentences rarely share one

# One piece of text each: a run of Chinese characters, a Latin word (with digits and '), or one
# other visible character (emoji, !, ?, …). Spaces separate; they are not features.
_PIECE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+|[a-z0-9']+|[^\s\w]|_", re.UNICODE)
_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_DIGITS = re.compile(r"\d+")
_REPEAT = re.compile(r"(.)\1{2,}")


def prepare(text: str) -> str:
    """The form features are taken from: NFKC (full-width letters and digits become plain ones),
    lower case, straight apostrophes, a character repeated three or more times kept twice
    ("sooooo" -> "soo", "！！！！" -> "!!"), single spaces."""
    text = unicodedata.normalize("NFKC", str(text)).lower().replace("\u2019", "'")
    return " ".join(_REPEAT.sub(r"\1\1", text).split())


# A word's character n-grams (``c:``), made once: slicing and joining them was half of what features cost (an
# English message's ~16 words, ~150 n-grams: ~23 us of ~45). Words repeat from message to message; the table is
# emptied when it holds GRAMS_MAX of them.
_GRAMS: dict[str, tuple[str, ...]] = {}
GRAMS_MAX = 5000  # ~1.1 KB a word (its ~15 n-grams): ~5.5 MB at most
CACHED_LEN = 40  # the longest word (or feature, see `TextModel._rows`) kept in these tables: they stay a few MB

# Feature families a model may add to the base ones (its file's meta "features" names them, so
# scoring reads the text as training did): Chinese 4-grams, Latin word pairs with one word between.
FAMILIES = ("zh4", "skip")


def features(text: str, families=()) -> list[str]:
    """The distinct features of ``text``: Chinese character 1-3-grams (``z:``), Latin words and
    word pairs (``w:``, ``b:``), Latin character 3-5-grams inside word boundaries (``c:``),
    other characters such as emoji and punctuation (``o:``), and a rough length (``len:``).
    ``families`` (of `FAMILIES`) adds Chinese 4-grams (``zh4``) and word pairs with one word
    between (``skip``, ``s:``: "want to X die")."""
    found: dict[str, None] = {}
    pieces = _PIECE.findall(prepare(text))
    zh_sizes = (1, 2, 3, 4) if "zh4" in families else (1, 2, 3)
    skip = "skip" in families
    previous_word = before_previous = None
    for piece in pieces:
        first = piece[0]
        # (a piece is a run of Chinese characters when its first character is one: `_PIECE` makes no mixed piece;
        # a test of two ranges, not a regex call a piece)
        if "\u3400" <= first <= "\u9fff" or "\uf900" <= first <= "\ufaff":
            for n in zh_sizes:
                for i in range(len(piece) - n + 1):
                    found["z:" + piece[i:i + n]] = None
            # Where a run starts and ends says something too: 呵呵 at the end is not 呵呵 inside.
            found["z:^" + piece[:2]] = None
            found["z:" + piece[-2:] + "$"] = None
            previous_word = before_previous = None
        elif first.isalnum() or first == "'":
            word = piece if piece.isalpha() else _DIGITS.sub("0", piece)
            found["w:" + word] = None
            if previous_word:
                found["b:" + previous_word + " " + word] = None
            if skip and before_previous:
                found["s:" + before_previous + " " + word] = None
            before_previous, previous_word = previous_word, word
            if len(word) > 2:
                grams = _GRAMS.get(word)
                if grams is None:
                    padded = f" {word} "
                    grams = tuple("c:" + padded[i:i + n] for n in (3, 4, 5) for i in range(len(padded) - n + 1))
                    if len(word) <= CACHED_LEN:  # (a "word" of 100,000 letters is not kept: its n-grams would be 20 MB)
                        if len(_GRAMS) >= GRAMS_MAX:
                            _GRAMS.clear()  # bounded: a flood of made-up words costs no more memory than this
                        _GRAMS[word] = grams
                # (added in the order the loop over n and i gives: the order is the sum's, and so the scores')
                found.update(zip(grams, repeat(None)))
        else:
            found["o:" + piece] = None
            previous_word = before_previous = None
    length = len(pieces)
    found["len:" + ("1" if length <= 1 else "2-3" if length <= 3 else "4-9" if length <= 9 else "10+")] = None
    return list(found)


def _pack(numbers: array) -> str:
    if sys.byteorder == "big":
        numbers = array(numbers.typecode, numbers)
        numbers.byteswap()
    return base64.b64encode(numbers.tobytes()).decode("ascii")


def _unpack(typecode: str, text: str) -> array:
    numbers = array(typecode)
    numbers.frombytes(base64.b64decode(text.encode("ascii"), validate=True))
    if sys.byteorder == "big":
        numbers.byteswap()
    return numbers


def bucket_of(feature: str, buckets: int) -> int:
    """Where ``feature``'s weights sit: a hash that is the same in every process (Python's own
    str hash is salted per process), fast (crc32 is C), and spread evenly."""
    return zlib.crc32(feature.encode("utf-8")) % buckets


class TextModel:
    """Weights per feature bucket and label; ``scores`` turns a text into a probability per label."""

    def __init__(self, labels: list[str], bias: list[float], weights: array, buckets: int,
                 meta: dict | None = None, starts: array | None = None):
        """``weights`` is flat, bucket by bucket: bucket b's weight for label i is
        ``weights[b * len(labels) + i]``, the layout training updates fastest. With ``starts``
        (a model read from its file), ``weights`` holds the rows of the buckets that have weights
        alone, bucket b's from ``starts[b]`` (-1: none)."""
        self.labels = list(labels)
        self.bias = list(bias)
        self.buckets = buckets
        width = len(self.labels)
        if starts is None:
            starts, rows = array("i", [-1]) * buckets, array("f")
            for b in range(buckets):
                row = weights[b * width:(b + 1) * width]
                if any(row):
                    starts[b] = len(rows)
                    rows.extend(row)
            weights = rows
        # Only the buckets some training feature reached hold weights (the topic model's 8,976
        # of 16,384 buckets, the emotion model's 23,614 and the crisis model's 36,237 of 131,072):
        # their rows alone are kept, bucket by bucket (the three models 7.5 -> 3.4 MB), and a
        # text's score adds up the rows of its features' buckets, label by label (`_probabilities`).
        self.starts, self.weights = starts, weights
        # feature -> its bucket's row (() for a bucket without weights), once a feature: its hash and the slice of its
        # row were two thirds of `_probabilities` (~30 of ~42 us for an English sentence's ~160 features). The common
        # features (n-grams of common words) come back in every message and are among the first seen: the table keeps
        # the first ROWS_MAX features and then stops growing (emptied when full, it was refilled with rare ones over
        # and over: the 10,805 sentences of bench/safety_cost have ~86,000 features, 2 in 3 of those read then hit).
        self._rows: dict[str, tuple] = {}
        self.meta = dict(meta or {})
        # the feature families it was trained with (a tuple: `features` looks names up in it)
        self.families = tuple(f for f in self.meta.get("features", ()) if f in FAMILIES)

    # The model last read from each file, with the file's (mtime, size) then: the Wellmates a
    # process builds (the test suite builds hundreds) share it rather than decode the same weights
    # again (0.15-0.35 s a model). A model is not changed once made. At most `SHARED_MAX` files.
    _shared: dict = {}
    _shared_lock = threading.Lock()
    SHARED_MAX = 8

    @classmethod
    def load(cls, path) -> "TextModel":
        """The model saved at ``path``; ValueError saying what is wrong when it is missing,
        unreadable or not a model file (callers keep working without it)."""
        path = Path(path)
        try:
            stat = path.stat()
            key, stamp = str(path.resolve()), (stat.st_mtime_ns, stat.st_size)
        except OSError:
            key = stamp = None
        shared = cls._shared.get(key)
        if shared is not None and shared[0] == stamp:
            return shared[1]
        model = cls._read(path)
        if key is not None:
            with cls._shared_lock:
                cls._shared.pop(key, None)
                while len(cls._shared) >= cls.SHARED_MAX:
                    cls._shared.pop(next(iter(cls._shared)))  # the oldest
                cls._shared[key] = (stamp, model)
        return model

    @classmethod
    def _read(cls, path: Path) -> "TextModel":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(f"{path}: no such file")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: cannot read it: {e}")
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} file")
        labels, bias, scale = data.get("labels"), data.get("bias"), data.get("scale")
        buckets, packed = data.get("buckets"), data.get("weights")
        if not (isinstance(labels, list) and labels and isinstance(bias, list) and len(bias) == len(labels)
                and all(isinstance(b, (int, float)) and math.isfinite(b) for b in bias)
                and isinstance(packed, dict) and isinstance(scale, (int, float)) and scale > 0
                and isinstance(buckets, int) and 0 < buckets <= 1 << 24
                and isinstance(data.get("meta", {}), dict)):
            raise ValueError(f"{path}: labels, bias, scale, buckets or weights missing or of the wrong shape")
        width = len(labels)
        try:
            gaps = _unpack("I", packed["buckets"])
            values = _unpack("h", packed["values"])
        except (KeyError, TypeError, ValueError, AttributeError) as e:  # not strings of base64
            raise ValueError(f"{path}: the weights cannot be read: {e!r}")
        if len(values) != len(gaps) * width:
            raise ValueError(f"{path}: {len(values)} weights for {len(gaps)} buckets of {width} labels")
        starts = array("i", [-1]) * buckets
        b = -1
        for n, gap in enumerate(gaps):
            b += gap
            if b >= buckets:
                raise ValueError(f"{path}: bucket {b} is not under {buckets}")
            starts[b] = n * width
        weights = array("f", (value / scale for value in values))
        return cls([str(label) for label in labels], [float(b) for b in bias], weights, buckets, data.get("meta"),
                   starts=starts)

    def save(self, path, meta: dict | None = None, scale: int = 1000) -> int:
        """Write the model to ``path`` atomically (a crash leaves the old file whole); weights are
        kept as 16-bit integers in thousandths, which changes no prediction we measured and keeps
        the file small. Returns the file's size in bytes."""
        from wellmate import atomic_write  # the core's crash-safe write; imported late: no cycle at load

        width = len(self.labels)
        gaps, values, last = array("I"), array("h"), -1
        for b, start in enumerate(self.starts):
            if start < 0:
                continue
            row = [max(-32767, min(32767, round(weight * scale))) for weight in self.weights[start:start + width]]
            if any(row):
                gaps.append(b - last)
                values.extend(row)
                last = b
        data = {"format": FORMAT, "labels": self.labels, "bias": [round(b, 4) for b in self.bias],
                "scale": scale, "buckets": self.buckets, "meta": {**self.meta, **(meta or {})},
                # Base64 of little-endian integers: the buckets that have weights (each as the gap
                # from the one before) and their weights; a third of the size of a JSON list.
                "weights": {"buckets": _pack(gaps), "values": _pack(values)}}
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        atomic_write(Path(path), body)
        return len(body)

    def scores(self, text: str, extra=()) -> dict[str, float]:
        """A probability per label for ``text`` (they add up to 1). ``extra``: features the caller
        found in the text itself (the safety plugin's concepts), given as they were in training."""
        return dict(zip(self.labels, self._probabilities(features(text, self.families) + list(extra))))

    def predict(self, text: str, extra=()) -> tuple[str, float]:
        """The most likely label and its probability."""
        probabilities = self._probabilities(features(text, self.families) + list(extra))
        best = max(range(len(self.labels)), key=probabilities.__getitem__)
        return self.labels[best], probabilities[best]

    ROWS_MAX = 20000  # ~3.5 MB for the crisis model (10,000: 1.7 MB, but hits 77 -> 63%)

    def _probabilities(self, feats: list[str]) -> list[float]:
        value = 1 / math.sqrt(len(feats)) if feats else 0.0  # each text weighs the same, long or short
        # The rows of the features' buckets, turned into a column per label by zip and each added
        # up by sum, in C: a label's total is the same sum in the same order as adding up its
        # weight feature by feature (the buckets left out hold zeros), but the topic model's 37
        # labels cost 38 us a text instead of 90 us (the emotion model's 7: 18 instead of 22; the
        # crisis model's 3: 16 instead of 13).
        width, cache = len(self.labels), self._rows
        rows = list(map(cache.get, feats))
        if None in rows:
            size, crc32 = self.buckets, zlib.crc32  # bucket_of, inlined: a call per feature was a fifth of scoring
            starts, weights = self.starts, self.weights
            for i, row in enumerate(rows):
                if row is None:
                    start = starts[crc32(feats[i].encode("utf-8")) % size]
                    rows[i] = row = weights[start:start + width] if start >= 0 else ()
                    # room is asked per row, not once per text: a long text's new features would pass the bound
                    if len(feats[i]) <= CACHED_LEN and len(cache) < self.ROWS_MAX:
                        cache[feats[i]] = row
        rows = list(filter(None, rows))  # (the features whose bucket has weights, in order)
        totals = map(sum, zip(*rows)) if rows else repeat(0.0, width)
        return _softmax([bias + value * total for bias, total in zip(self.bias, totals)])


def _logits(bias: list[float], weights: array, buckets: list[int]) -> list[float]:
    """Training's scoring, over the flat bucket-by-bucket weights it updates."""
    width = len(bias)
    totals = [0.0] * width
    for b in buckets:
        totals = list(map(add, totals, weights[b * width:(b + 1) * width]))
    value = 1 / math.sqrt(len(buckets)) if buckets else 0.0
    return [b + t * value for b, t in zip(bias, totals)]


def _softmax(logits: list[float]) -> list[float]:
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = sum(exps)
    return [e / total for e in exps]


def train(rows, *, epochs: int = 12, l2: float = 1e-4, rate: float = 0.5, balance: bool = True,
          seed: int = 0, min_count: int = 1, labels: list[str] | None = None,
          buckets: int = BUCKETS, runs: int = 1, families=(), shuffle: str = "seed") -> TextModel:
    """A model fitted to ``rows`` (pairs of text and label, or triples with a list of ``extra``
    features for `TextModel.scores`, or quadruples with a weight too: how much the row counts, 1 by
    default) by AdaGrad on the cross-entropy.

    ``balance`` weighs each label's rows by how rare the label is, so a label with a third of the
    rows counts as much as the others (the crisis label must not lose to the many ordinary
    messages). ``min_count`` drops features seen in fewer rows (noise). The same rows and seed
    give the same weights. ``runs`` > 1: the mean of that many runs, with seeds ``seed``,
    ``seed`` + 1, ...: less of the model depends on the order the rows came in. ``shuffle`` "seed": each
    epoch shuffles the rows' positions with the seed, so a row added or removed reorders all the others
    (the topic model moved borderline answers of unrelated rows on every retrain: session 18); "text":
    each epoch orders the rows by a hash of the seed, the epoch and the row's text, so another row
    changes no row's place relative to the rest."""
    rows = [(str(row[0]), str(row[1]), list(row[2]) if len(row) > 2 else [], float(row[3]) if len(row) > 3 else 1.0)
            for row in rows]
    labels = list(labels or sorted({row[1] for row in rows}))
    index = {label: i for i, label in enumerate(labels)}
    width = len(labels)
    families = [f for f in FAMILIES if f in families]
    docs = [(list(dict.fromkeys(features(text, families) + extra)), index[label])
            for text, label, extra, _ in rows if label in index]
    keys = [text.encode("utf-8") for text, label, _, _ in rows if label in index] if shuffle == "text" else None
    row_weights = [w for _, label, _, w in rows if label in index]
    if not docs:
        raise ValueError("no rows to train on")
    if min_count > 1:
        seen: dict[str, int] = {}
        for feats, _ in docs:
            for f in feats:
                seen[f] = seen.get(f, 0) + 1
        docs = [([f for f in feats if seen[f] >= min_count], y) for feats, y in docs]
    docs = [([bucket_of(f, buckets) for f in feats], y) for feats, y in docs]
    counts = [0] * width
    for _, y in docs:
        counts[y] += 1
    sample_weight = [(len(docs) / (width * c)) if (balance and c) else 1.0 for c in counts]
    total_weights, total_bias = array("f", bytes(4 * width * buckets)), [0.0] * width
    for run in range(runs):
        weights, bias = _fit(docs, row_weights, sample_weight, width, buckets, epochs, l2, rate, seed + run, keys)
        total_weights = array("f", map(add, total_weights, weights)) if run else weights
        total_bias = list(map(add, total_bias, bias))
    if runs > 1:
        # The mean of runs that saw the rows in different orders: the model is linear in its weights, so
        # this is the mean of their logits. One run moved 3-5 held-split verdicts each time anything
        # changed (session 11); the mean of three moves fewer and was better on sentences nobody trained on.
        total_weights = array("f", (w / runs for w in total_weights))
        total_bias = [b / runs for b in total_bias]
    return TextModel(labels, total_bias, total_weights, buckets,
                     {"rows": len(docs), "epochs": epochs, "l2": l2, "seed": seed, "runs": runs,
                      "counts": dict(zip(labels, counts)), **({"features": families} if families else {})})


def _fit(docs, row_weights, sample_weight, width, buckets, epochs, l2, rate, seed, keys=None) -> tuple[array, list[float]]:
    """One run of AdaGrad over ``docs`` (bucket lists and label indexes) in an order shuffled by ``seed``, or with
    ``keys`` (a text per doc) ordered by a hash of the seed, the epoch and the doc's key (`train` shuffle="text")."""
    weights = array("f", bytes(4 * width * buckets))
    squares = array("d", [1e-8]) * (width * buckets)
    bias, bias_squares = [0.0] * width, [1e-8] * width
    order = list(range(len(docs)))
    shuffler = random.Random(seed)
    for epoch in range(epochs):
        if keys is None:
            shuffler.shuffle(order)
        else:
            salt = f"{seed}:{epoch}:".encode()
            order.sort(key=lambda n: (zlib.crc32(salt + keys[n]), n))
        for n in order:
            feats, y = docs[n]
            value = 1 / math.sqrt(len(feats)) if feats else 0.0
            probabilities = _softmax(_logits(bias, weights, feats))
            weight = sample_weight[y] * row_weights[n]
            errors = [(probabilities[i] - (1.0 if i == y else 0.0)) * weight for i in range(width)]
            for i in range(width):
                bias_squares[i] += errors[i] * errors[i]
                bias[i] -= rate * errors[i] / math.sqrt(bias_squares[i])
            for b in feats:
                base = b * width
                for i in range(width):
                    gradient = errors[i] * value + l2 * weights[base + i]
                    squares[base + i] += gradient * gradient
                    weights[base + i] -= rate * gradient / math.sqrt(squares[base + i])
    return weights, bias


def split_of(text: str, held_fraction: int = 8) -> str:
    """"held" for about one row in ``held_fraction`` (chosen by a hash of the text, so a row keeps
    its split when files are edited or reordered), "train" for the rest. Held rows are never
    trained on: their accuracy is the honest figure a retrain prints."""
    digest = hashlib.sha1(text.encode("utf-8")).digest()
    return "held" if digest[0] % held_fraction == 0 else "train"


def read_rows(paths) -> list[dict]:
    """The rows of tab-separated files with a header line naming ``label`` and ``text`` columns
    (``kind`` optional); ``#`` lines and blank lines are skipped. Each row gets its ``split``
    and the file it came from. ValueError names the file and line of a malformed row."""
    rows = []
    for path in paths:
        path = Path(path)
        header = None
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            cells = line.split("\t")
            if header is None:
                header = cells
                if "label" not in header or "text" not in header:
                    raise ValueError(f"{path}:{number}: the header must name label and text columns")
                continue
            if len(cells) != len(header):
                raise ValueError(f"{path}:{number}: {len(cells)} columns, the header has {len(header)}")
            row = dict(zip(header, cells))
            row["text"] = row["text"].strip()
            if not row["text"] or not row["label"].strip():
                raise ValueError(f"{path}:{number}: empty label or text")
            row["label"] = row["label"].strip()
            row.setdefault("kind", "")
            row["split"] = split_of(row["text"])
            row["file"] = path.name
            rows.append(row)
    return rows


def add_training_arguments(parser, *, out_default: str, epochs: int, l2: float) -> None:
    """The options every retrain command shares (train-crisis, train-emotion, train-topics)."""
    parser.add_argument("--data", nargs="+", type=Path, metavar="FILE.tsv", help="training files (header: label kind text)")
    parser.add_argument("--out", type=Path, help=f"where to write the weights (default: {out_default})")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--l2", type=float, default=l2)
