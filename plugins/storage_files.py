"""The default storage backend: collections of documents as append-only JSON Lines files.

    collections/<name>.jsonl       one collection: a header line, then one line per write
                                   ({"put": doc}, {"del": id} or {"all": [...]}, a batch)
    messages/<session_id>.jsonl    a chat session's messages, one JSON object per line
    backup-<time>/                 what an older data folder held, moved aside when it was migrated

Why it is built this way (measured; see DESIGN.md, "Storage", and bench/storage, bench/growth):

- A write appends one line and fsyncs: its cost does not grow with what is stored. TinyDB
  rewrote a whole file per write (2.6 ms at 1k documents, 150 ms at 50k), and with users and
  refresh tokens in one file a login at 50,000 users took 316 ms.
- Each collection is held in memory as its documents' JSON (deflated from PACK_FROM documents
  on) plus the declared indexes: per key, the ids sorted by (order value, id), so a lookup and a
  page cost what the page holds. A lookup nobody declared is an error, not a scan. How compact
  this is matters at 50,000 users (see `_Collection`).
- The file is compacted (rewritten with only the live documents, atomically) when it holds
  three times what is live, so it stays within a small multiple of the data.
- A crash can leave at most a torn last line: it is ignored when read and cut off before the
  next append. Any other line that does not parse means the file was damaged: opening refuses
  it by name (StorageUnavailable) rather than start without what a backup could bring back.
  The header line means an empty (0-byte) file is also damage, never "no data".
- A write that fails (full disk, read-only folder) is cut back off the file, changes nothing
  in memory, raises StorageUnavailable (the app's 503) and is remembered for `trouble()` until
  a write succeeds.
- Chat messages are not documents: a session's log is its own append-only file (the cost of an
  append is flat at 100k messages) read backwards a page at a time.

Locks: each collection has one; a write holds it through its fsync, so writes to one collection
are in file order; reads take it briefly. Message logs are guarded by a fixed set of locks
picked by the log's id (bounded, however many sessions exist).

One process owns the data folder. Opening it writes nothing (but for migrating an older folder
once), so a second process that only reads (``wellmate.py check``) does no harm.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import sys
import threading
import time
import zlib
from itertools import islice
from bisect import bisect_left, bisect_right, insort
from contextlib import contextmanager
from pathlib import Path

from wellmate import (Collection, Conflict, Index, Storage, StorageUnavailable, atomic_write, fsync_dir, hookimpl,
                      json_dumps, now_iso)
from ._locks import KeyedLocks  # relative: tests and benches import this module as plugins.storage_files

log = logging.getLogger("wellmate.storage")

FORMAT = 1  # of the collection files; the header line says it
FILE_MODE = 0o600  # health data: readable by the server's own user only
READ_BLOCK = 64 * 1024  # chat logs are read backwards in blocks of this size
FIRST_READ = 8 * 1024  # a page of messages is read backwards from this much, doubling
LOG_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")  # log ids become file names
COMPACT_MIN_BYTES = 1 << 20  # files smaller than this are never compacted
COMPACT_RATIO = 3  # compact when the file holds this many times what is live
# A collection of at least PACK_FROM documents keeps each one deflated with a dictionary of 4 KB
# of its own documents (their field names and common values): ~300 bytes of JSON a document in
# bench/growth's 50,000-user folder, ~80 deflated (records with random ids and user ids 218 -> 75).
# Costs ~6-13 us a read and ~18-39 us a write, measured at load 8 on 2 cores (level 1).
PACK_FROM = 256
PACK_WBITS = -12  # raw deflate, a 4 KB window: the dictionary's size
PACKED = 0  # the first byte of a deflated document (JSON starts with "{")


def builtin_collections() -> list[Collection]:
    """The collections every built-in plugin declares, for a storage opened without an app."""
    import importlib

    from wellmate import BUILTIN_PLUGINS, builtin_plugins_package

    package = builtin_plugins_package().__name__
    found = []
    for name in BUILTIN_PLUGINS:
        declare = getattr(importlib.import_module(f"{package}.{name}"), "register_collections", None)
        if declare is not None:
            declare(lambda collection, **spec: found.append(Collection(collection, **spec)))
    return found


@hookimpl
def register_storage(register):
    register("files", FileStorage)
    # The name the default backend had before collections (its files are migrated on open).
    register("tinydb", FileStorage)


class _Collection:
    """One collection in memory: each document's JSON, its indexes, and its file.

    Kept compact: on bench/growth's 50,000-user folder (`bench/storage --memory`) collections
    took 411 MB as JSON str and index tuples (~1.2 million (order key, id) tuples, ~350,000
    one-entry lists), 148 MB now (70 documents, 78 indexes); the server's RSS after start went
    497 -> 214 MB.
    - a document is its compact JSON as UTF-8 bytes (str would widen a whole document to two
      bytes a character for one CJK letter), or that deflated (`_pack`, `unpack`);
    - an index maps an equality key (the value itself for one field, a tuple for several) to the
      ids holding it, as the one id's string when only one does (most buckets: a user's tokens,
      sessions, a name) or else a list sorted by (order value, id);
    - order values are kept once per field, not once per index (`values`), and read by the
      sort key as it compares; a unique key is checked in its index, not a map of its own.
    - short key strings are interned (`_hashable`), documents of big collections deflated (PACK_FROM).
    Strings, bytes and dicts of them are not tracked by the GC: 26,000 tracked objects after
    that load instead of 444,000, and a full collection walks only the lists of big buckets.
    """

    def __init__(self, spec: Collection, path: Path, storage: "FileStorage"):
        self.spec, self.path, self.storage = spec, path, storage
        self.lock = threading.RLock()
        self.docs: dict[str, bytes] = {}  # id -> the document as compact JSON, UTF-8, or deflated (`text`)
        self.zdict: bytes | None = None  # the deflate dictionary, once the collection has PACK_FROM documents
        self.deflate = None  # a compressor primed with it: a copy deflates a document (2.5x faster than a new one)
        indexes = list(spec.indexes)
        if Index() not in indexes:
            indexes.append(Index())  # every document, by id: find and delete_where with no index
        # index -> equality key -> the id holding it (str), or the ids, sorted (list)
        self.indexes: dict[Index, dict] = {index: {} for index in indexes}
        # order field -> id -> the field's value (documents without it are left out: None)
        self.values: dict[str, dict] = {index.order: {} for index in indexes if index.order}
        self.sort_keys = {index: _sort_key(self.values.get(index.order)) for index in indexes}
        self.keys_of = {index: _bucket_key_of(index.by) for index in indexes}  # document -> its bucket's key
        self.fields = tuple({field: None for index in indexes for field in index.by + (index.order,) if field})
        self.indexed = False  # while loading, only the documents: the indexes are built once at the end
        self.size = 0  # bytes of whole lines in the file: where the next line goes
        self.live = 0  # bytes the live documents take as lines
        self.compact_at = COMPACT_MIN_BYTES  # no compaction below this size (raised after a failed one)
        self.unsynced = False

    # -- reading the file ------------------------------------------------------------------------
    def load(self) -> None:
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            self._build_indexes()
            return
        except OSError as e:
            raise StorageUnavailable(f"{self.path}: cannot read it ({e.strerror or e})") from e
        with f:
            size, number = 0, 0
            for line in f:
                number += 1
                if not line.endswith(b"\n") or not line.strip(b"\x00\n"):
                    # Torn by a crash mid-append, or zeros a power cut left where lines written
                    # without fsync were to go: never acknowledged as durable; cut off at the next write.
                    break
                try:
                    op = _DECODER.decode(line.decode("utf-8"))  # the whole line: nothing may follow the JSON
                except ValueError:
                    op = None
                if number == 1:
                    if not isinstance(op, dict) or op.get("wellmate") != "collection":
                        raise StorageUnavailable(f"{self.path}: not a collection file of ours (line 1); "
                                                 f"restore it from a backup")
                    if op.get("format") != FORMAT:
                        raise StorageUnavailable(f"{self.path}: written by another version (format "
                                                 f"{op.get('format')!r}, this one reads {FORMAT})")
                elif not isinstance(op, dict) or not self._replay(op, line):
                    raise StorageUnavailable(f"{self.path}: line {number} is damaged (not a write of ours); "
                                             f"restore the file from a backup")
                size += len(line)
        if number == 0:
            raise StorageUnavailable(f"{self.path} is empty (0 bytes): its data was lost (a crash or a bad copy); "
                                     f"restore it from a backup, or delete it to start that collection empty")
        self.size = size
        self._build_indexes()

    def _replay(self, op: dict, line: bytes | None = None) -> bool:
        """Apply one line's write, as read from the file (``line``: the line itself)."""
        if "put" in op and isinstance(op["put"], dict) and isinstance(op["put"].get("id"), str):
            if line is not None and len(op) == 1 and line.startswith(b'{"put":{') and line.endswith(b"}}\n"):
                text = line[7:-2]  # the document's JSON as written (a put line is '{"put":' JSON '}')
            else:
                text = json_dumps(op["put"]).encode("utf-8")
            self._put(op["put"]["id"], op["put"], text)
        elif "del" in op and isinstance(op["del"], str):
            self._delete(op["del"])
        elif "all" in op and isinstance(op["all"], list):
            return all(isinstance(each, dict) and "all" not in each and self._replay(each) for each in op["all"])
        else:
            return False
        return True

    def _build_indexes(self) -> None:
        """Index every document at once, after loading: appending and sorting each bucket once
        costs far less than inserting each document in sorted place (a list insert moves what
        follows it: seconds at 100,000 documents)."""
        if len(self.docs) >= PACK_FROM:
            self._choose_dictionary()
        for doc_id, text in self.docs.items():
            self._index(doc_id, _loads(text), insert=False)
            self.docs[doc_id] = self._pack(text)
        for index, buckets in self.indexes.items():
            key = self.sort_keys[index]
            for bucket in buckets.values():
                if type(bucket) is list:
                    bucket.sort(key=key)
        self.indexed = True

    # -- memory ----------------------------------------------------------------------------------
    def doc(self, doc_id: str) -> dict | None:
        text = self.text(doc_id)
        return None if text is None else _loads(text)

    def text(self, doc_id: str) -> bytes | None:
        """A document's JSON (None: no such document). Safe without the lock."""
        held = self.docs.get(doc_id)
        return None if held is None else self.unpack(held)

    def unpack(self, held: bytes) -> bytes:
        """The JSON of a document as `docs` holds it. Safe without the lock (zdict never changes once set)."""
        if held[0] != PACKED:
            return held
        inflate = zlib.decompressobj(PACK_WBITS, self.zdict)
        return inflate.decompress(memoryview(held)[1:]) + inflate.flush()

    def _pack(self, text: bytes) -> bytes:
        if self.deflate is None:
            return text
        deflate = self.deflate.copy()
        packed = bytes([PACKED]) + deflate.compress(text) + deflate.flush()
        return packed if len(packed) < len(text) else text

    def _choose_dictionary(self) -> None:
        """4 KB of documents spread over the collection (all of them JSON yet)."""
        step = max(1, len(self.docs) // 64)
        self.zdict = b"".join(islice(self.docs.values(), 0, None, step))[-(1 << -PACK_WBITS):]
        self.deflate = zlib.compressobj(1, zlib.DEFLATED, PACK_WBITS, 2, zlib.Z_DEFAULT_STRATEGY, self.zdict)

    def keyed(self, doc: dict) -> dict:
        """What the indexes read of a document, kept apart from it (an update's change may alter
        it in place): a list or object as its JSON, which is also its key (`_hashable`)."""
        return {field: value if value is None or isinstance(value, (str, int, float)) else json_dumps(value)
                for field in self.fields if (value := doc.get(field)) is not None}

    def _put(self, doc_id: str, doc: dict, text: bytes, old: bytes | None = None,
             old_keyed: dict | None = None) -> None:
        old = self.text(doc_id) if old is None else old
        if old is not None:
            self.live -= len(old) + LINE_EXTRA
        # Replaced in one step: `get` reads without the lock and must never see it missing.
        self.docs[doc_id] = self._pack(text)
        self.live += len(text) + LINE_EXTRA
        if self.indexed:
            self._reindex(doc_id, old_keyed if old_keyed is not None or old is None else _loads(old), doc)
            if self.zdict is None and len(self.docs) >= PACK_FROM:
                self._choose_dictionary()  # documents written from now on are deflated

    def _delete(self, doc_id: str) -> None:
        old = self.text(doc_id)
        if old is None:
            return
        del self.docs[doc_id]
        self.live -= len(old) + LINE_EXTRA
        if self.indexed:
            self._reindex(doc_id, _loads(old), None)

    def _index(self, doc_id: str, doc: dict, insert: bool) -> None:
        """Add a document to every index: in sorted place (``insert``), or appended (a load)."""
        self._set_values(doc_id, doc)
        for index in self.indexes:
            self._add(index, doc_id, doc, insert)

    def _reindex(self, doc_id: str, old: dict | None, new: dict | None) -> None:
        """Move a document in the indexes whose key or order value its change touched (a session's
        count changes on every message; none of its indexes do)."""
        if old is None or new is None:
            changed = list(self.keys_of)
        else:  # by the indexed fields that changed: cheaper than every index's keys of both (5 updates a turn)
            touched = {field for field in self.fields if _differs(old.get(field), new.get(field))}
            changed = [index for index in self.keys_of
                       if index.order in touched or not touched.isdisjoint(index.by)] if touched else []
        if old is not None:
            for index in changed:  # found by the order values still held
                self._take(index, doc_id, old)
        self._set_values(doc_id, new)
        if new is not None:
            for index in changed:
                self._add(index, doc_id, new, True)

    def _set_values(self, doc_id: str, doc: dict | None) -> None:
        for field, values in self.values.items():
            value = None if doc is None else doc.get(field)
            if value is None:
                values.pop(doc_id, None)
            else:
                values[doc_id] = value if isinstance(value, (str, int, float)) else _sort_value(value)

    def _add(self, index: Index, doc_id: str, doc: dict, insert: bool) -> None:
        buckets = self.indexes[index]
        key = self.keys_of[index](doc)
        bucket = buckets.get(key)
        if bucket is None:
            buckets[key] = doc_id
            return
        if type(bucket) is str:
            bucket = buckets[key] = [bucket]
        if insert:
            insort(bucket, doc_id, key=self.sort_keys[index])
        else:
            bucket.append(doc_id)  # sorted once the load is over

    def _take(self, index: Index, doc_id: str, old: dict) -> None:
        buckets = self.indexes[index]
        key = self.keys_of[index](old)
        bucket = buckets.get(key)
        if type(bucket) is str:
            if bucket == doc_id:
                del buckets[key]
        elif bucket:
            sort_key = self.sort_keys[index]
            at = bisect_left(bucket, sort_key(doc_id), key=sort_key)
            if at < len(bucket) and bucket[at] == doc_id:
                del bucket[at]
            if len(bucket) == 1:
                buckets[key] = bucket[0]

    def ids(self, index: Index, key) -> list | tuple:
        """The ids in a bucket of an index, in its order."""
        bucket = self.indexes[index].get(key, ())
        return (bucket,) if type(bucket) is str else bucket

    def holder(self, fields: tuple, key: tuple) -> str | None:
        """The id of a document holding a unique key (None: none does)."""
        ids = self.ids(Index(fields), _bucket_key(key))
        return ids[0] if ids else None

    def check_unique(self, doc: dict, pending: dict | None = None) -> None:
        for fields in self.spec.unique:
            key = _unique_key(doc, fields)
            if key is None:
                continue
            holder = next((each for each in self.ids(Index(fields), _bucket_key(key)) if each != doc["id"]), None)
            if pending is not None:
                holder = pending.get((fields, key), holder)
            if holder is not None and holder != doc["id"]:
                raise Conflict(f"{self.spec.name}: {', '.join(fields)} {list(key)!r} is taken", fields=fields)

    # -- writing ---------------------------------------------------------------------------------
    def write(self, ops: list[dict], durable: bool, texts: list | None = None, old: bytes | None = None,
              old_keyed: dict | None = None) -> None:
        """Append the ops as one line (several as one batch line: all or nothing after a crash),
        then apply them in memory. Called with the lock held. ``texts``: the ops' documents as
        JSON already (None for a delete); ``old``: the JSON a single put replaces, read already,
        and ``old_keyed`` its `keyed` values."""
        # Each document is serialised once: its JSON is both the line's part and what memory keeps.
        if texts is None:
            texts = [json_dumps(op["put"]).encode("utf-8") if "put" in op else None for op in ops]
        parts = [b'{"put":' + text + b"}" if text is not None else json_dumps(op).encode("utf-8")
                 for op, text in zip(ops, texts)]
        data = (parts[0] if len(parts) == 1 else b'{"all":[' + b",".join(parts) + b"]}") + b"\n"
        with self.storage._writing(f"collections/{self.path.name}"):
            new = self.size == 0
            if new:
                # The first write makes the file whole, header and all, by temp file and rename:
                # an empty or zero-filled file (a power cut after the create) would stop startup.
                data = (json_dumps({"wellmate": "collection", "name": self.spec.name, "format": FORMAT})
                        + "\n").encode("utf-8") + data
                atomic_write(self.path, data, mode=FILE_MODE)
            else:
                self._append(data, durable)
        self.size += len(data)
        self.unsynced = not durable and not new  # a durable write's fsync covers the lines before it too
        for op, text in zip(ops, texts):
            if text is not None:
                self._put(op["put"]["id"], op["put"], text, *((old, old_keyed) if len(ops) == 1 else ()))
            else:
                self._delete(op["del"])
        if self.size > self.compact_at and self.size > COMPACT_RATIO * max(self.live, 1):
            try:
                self.compact()
            except StorageUnavailable as e:
                # The write above is stored: saying otherwise would make clients send it again.
                # Try again once the file has grown by as much again.
                self.compact_at = self.size + COMPACT_MIN_BYTES
                log.error("compacting %s failed (the write itself is stored): %s", self.path.name, e)

    def _append(self, data: bytes, durable: bool) -> None:
        fd = os.open(self.path, os.O_WRONLY, FILE_MODE)
        try:
            size = os.fstat(fd).st_size
            if size < self.size:
                raise OSError(f"{self.path.name} shrank behind our back ({self.size} -> {size} bytes)")
            if size > self.size:  # a torn line after a crash: cut it off
                os.ftruncate(fd, self.size)
            try:
                if os.pwrite(fd, data, self.size) != len(data):
                    raise OSError(f"short write to {self.path}")
                if durable:
                    os.fsync(fd)
            except BaseException:
                try:
                    os.ftruncate(fd, self.size)  # nothing half-written stays to be read at the next start
                except OSError:
                    pass
                raise
        finally:
            os.close(fd)

    def sync(self) -> None:
        with self.lock:
            if not self.unsynced:
                return
            with self.storage._writing(f"collections/{self.path.name}"):
                fd = os.open(self.path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            self.unsynced = False

    def compact(self) -> None:
        """Rewrite the file with only the live documents (atomically: a crash leaves the old one)."""
        started = time.monotonic()
        header = json_dumps({"wellmate": "collection", "name": self.spec.name, "format": FORMAT}).encode("utf-8")
        encoded = b"\n".join([header] + [b'{"put":' + self.text(doc_id) + b"}" for doc_id in self.docs]) + b"\n"
        with self.storage._writing(f"collections/{self.path.name}"):
            atomic_write(self.path, encoded, mode=FILE_MODE)
        before, self.size, self.unsynced = self.size, len(encoded), False
        log.info("compacted %s: %d -> %d bytes in %.0f ms", self.path.name, before, self.size,
                 (time.monotonic() - started) * 1000)

    # -- lookups ---------------------------------------------------------------------------------
    def bucket(self, where: dict | None, order: str | None) -> tuple[Index, list | tuple]:
        """The index answering a lookup, and the ids it holds for ``where`` (in its order)."""
        where = where or {}
        index = self.spec.index_for(where, order) if (where or order) else Index()
        return index, self.ids(index, self.keys_of[index](where))


class FileStorage(Storage):
    """Built by the app as ``FileStorage(config["storage"], wm)``, with the collections plugins
    declared; elsewhere (tests, scripts) with ``FileStorage.open(folder, collections)``."""

    name = "files"

    def __init__(self, settings: dict, wm=None, collections=None):
        self.folder = Path(wm.data_dir if wm is not None else settings["path"]).resolve()
        self.collections_dir = self.folder / "collections"
        self.messages_dir = self.folder / "messages"
        self._write_error: str | None = None  # the last write failure, until a write succeeds
        specs = dict(wm.collections if wm is not None else {c.name: c for c in collections or ()})
        from . import _legacy_storage  # an older data folder is migrated once
        _legacy_storage.migrate(self, specs)
        for folder in (self.collections_dir, self.messages_dir):
            with self._writing(f"the folder {folder.name}/"):
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for tmp in self.collections_dir.glob(".*.tmp"):
            if _left_by_dead_process(tmp):  # a compaction that a crash interrupted
                tmp.unlink(missing_ok=True)
        self._collections: dict[str, _Collection] = {}
        for spec in specs.values():
            collection = _Collection(spec, self.collections_dir / f"{spec.name}.jsonl", self)
            collection.load()
            self._collections[spec.name] = collection
        # A lock per message log that is being written or waited for, dropped when no one holds or
        # waits for it: so at most one per thread at work. Locks shared by a hash of the id (64 of
        # them before) made an append wait for an unrelated session's fsync.
        self._log_locks = KeyedLocks()  # one per session being written: see `_log_lock`
        self._unsynced_logs: set[str] = set()  # logs with a line written without fsync

    @classmethod
    def open(cls, folder, collections=None) -> "FileStorage":
        if collections is None:  # every collection the built-in plugins declare
            collections = builtin_collections()
        return cls({"path": str(folder)}, collections=collections)

    def _collection(self, name: str) -> _Collection:
        try:
            return self._collections[name]
        except KeyError:
            raise ValueError(f"no collection {name!r}; declare it in register_collections "
                             f"(known: {', '.join(sorted(self._collections)) or 'none'})") from None

    # -- documents -------------------------------------------------------------------------------
    def insert(self, collection: str, doc: dict, durable: bool = True) -> dict:
        store = self._collection(collection)
        doc, text = _checked(doc, with_text=True)
        with store.lock:
            if doc["id"] in store.docs:
                raise Conflict(f"{collection}: the id {doc['id']!r} is taken", fields=("id",))
            store.check_unique(doc)
            store.write([{"put": doc}], durable, texts=[text])
        return doc  # a copy: memory holds the text

    def put(self, collection: str, doc: dict, durable: bool = True) -> dict:
        store = self._collection(collection)
        doc, text = _checked(doc, with_text=True)
        with store.lock:
            store.check_unique(doc)
            store.write([{"put": doc}], durable, texts=[text])
        return doc  # a copy: memory holds the text

    def get(self, collection: str, doc_id: str) -> dict | None:
        store = self._collection(collection)
        text = store.text(doc_id) if isinstance(doc_id, str) else None
        return None if text is None else _loads(text)

    def update(self, collection: str, doc_id: str, change, durable: bool = True) -> dict | None:
        store = self._collection(collection)
        with store.lock:
            # Read, parsed and serialised once each: chat updates a session on every message (and
            # the counters: 5 updates a turn). What the indexes read of the old document is kept
            # aside for re-filing it, not parsed again.
            old = store.text(doc_id) if isinstance(doc_id, str) else None
            before = None if old is None else _loads(old)
            keyed = None if before is None else store.keyed(before)
            if callable(change):
                new = change(before)
                if new is None:
                    return None if old is None else _loads(old)
            else:
                if old is None:
                    return None
                new = {**before, **change, "id": doc_id}
            new, text = _checked(new, with_text=True)
            if new["id"] != doc_id:
                raise ValueError(f"{collection}: update of {doc_id!r} returned a document with id {new['id']!r}")
            store.check_unique(new)
            store.write([{"put": new}], durable, texts=[text], old=old, old_keyed=keyed)
        return new

    def delete(self, collection: str, doc_id: str) -> bool:
        store = self._collection(collection)
        with store.lock:
            if not isinstance(doc_id, str) or doc_id not in store.docs:
                return False
            store.write([{"del": doc_id}], True)
        return True

    def delete_where(self, collection: str, where: dict) -> int:
        store = self._collection(collection)
        if not where:
            raise ValueError("delete_where: give the fields to match (delete a whole collection elsewhere)")
        with store.lock:
            ids = list(store.bucket(where, None)[1])
            # In batches, so one line stays small: a user with 100k records is still one delete.
            for at in range(0, len(ids), 1000):
                store.write([{"del": doc_id} for doc_id in ids[at:at + 1000]], True)
        return len(ids)

    def find(self, collection: str, where: dict | None = None, *, order: str | None = None,
             start=None, end=None, limit: int = 50, before: str | None = None) -> tuple[list, str | None]:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError(f"limit must be a positive integer, got {limit!r}")
        if (start is not None or end is not None) and not order:
            raise ValueError("find: start and end bound the order field; give order=")
        store = self._collection(collection)
        descending = bool(order) and order.startswith("-")
        with store.lock:
            index, bucket = store.bucket(where, order)
            key = store.sort_keys[index]  # an id's (order value, id), as the bucket is sorted
            lo, hi = 0, len(bucket)
            if start is not None or end is not None:
                lo = bisect_left(bucket, ((_NONE_RANK + 1,),), key=key)  # documents without the field are out
                if start is not None:
                    lo = max(lo, bisect_left(bucket, (_sort_value(start),), key=key))
                if end is not None:
                    hi = bisect_left(bucket, (_sort_value(end),), key=key)
            if before is not None:
                mark = _decode_cursor(before)
                if descending:
                    hi = min(hi, bisect_left(bucket, mark, key=key))
                else:
                    lo = max(lo, bisect_right(bucket, mark, key=key))
            if descending:
                chosen = bucket[max(lo, hi - limit):hi][::-1]
                more = hi - limit > lo
            else:
                chosen = bucket[lo:min(hi, lo + limit)]
                more = lo + limit < hi
            held = [store.docs[doc_id] for doc_id in chosen]
            cursor = _encode_cursor(key(chosen[-1])) if more and chosen else None
        return [_loads(store.unpack(each)) for each in held], cursor

    def count(self, collection: str, where: dict | None = None) -> int:
        store = self._collection(collection)
        if not where:
            return len(store.docs)
        with store.lock:
            return len(store.bucket(where, None)[1])

    def sync(self, collection: str) -> None:
        self._collection(collection).sync()

    def upsert(self, collection: str, docs: list[dict], key: tuple, fixed: tuple = (),
               defaults: dict | None = None) -> list[tuple[str, dict]]:
        store = self._collection(collection)
        defaults = defaults or {}
        key = tuple(key)
        if key not in store.spec.unique:
            raise ValueError(f"{collection}: upsert by {key} needs it declared as a unique key")
        docs = [_checked(doc) for doc in docs]
        with store.lock:
            pending: dict = {}  # (fields, values) -> id, for the documents earlier in this call
            stored_now: dict[str, dict] = {}  # id -> the document as this call leaves it
            results, ops = [], []
            for doc in docs:
                values = _unique_key(doc, key)
                match_id = None if values is None else pending.get((key, values), store.holder(key, values))
                if match_id is not None:
                    old = stored_now.get(match_id) or store.doc(match_id)
                    for field in fixed:
                        if old.get(field) != doc.get(field):
                            raise Conflict(f"{collection}: {dict(zip(key, values))} is stored with {field} "
                                           f"{old.get(field)!r}", key=dict(zip(key, values)), field=field,
                                           stored=old.get(field))
                    new = {**doc, "id": old["id"], "created_at": old.get("created_at", doc.get("created_at"))}
                    # A field the document leaves out keeps its stored value, read under this lock: two
                    # retries at once without a time both keep the first one's (docs/records.md).
                    for field, default in defaults.items():
                        if field not in doc:
                            new[field] = old.get(field, default)
                    outcome = "unchanged" if new == old else "updated"
                else:
                    if doc["id"] in store.docs or doc["id"] in stored_now:
                        raise Conflict(f"{collection}: the id {doc['id']!r} is taken", fields=("id",))
                    new, outcome = {**doc, **{f: v for f, v in defaults.items() if f not in doc}}, "created"
                store.check_unique(new, pending)
                for fields in store.spec.unique:
                    each = _unique_key(new, fields)
                    if each is not None:
                        pending[(fields, each)] = new["id"]
                stored_now[new["id"]] = new
                results.append((outcome, new))
                if outcome != "unchanged":
                    ops.append({"put": new})
            if ops:  # one line: all or nothing, after a crash or a failed write alike
                store.write(ops, True)
        return [(outcome, json.loads(json_dumps(doc))) for outcome, doc in results]

    # -- messages --------------------------------------------------------------------------------
    def _log_path(self, session_id: str) -> str:
        if not isinstance(session_id, str) or not LOG_ID.fullmatch(session_id):
            raise ValueError(f"a log id is 1-128 letters, digits, '-' or '_', got {session_id!r}")
        # A str, not a Path: three a turn, and a Path join takes 2.4 us against 0.6.
        return os.path.join(self.messages_dir, session_id + ".jsonl")

    def _log_lock(self, session_id: str):
        return self._log_locks.hold(session_id)

    def append_message(self, session_id: str, message: dict, durable: bool = True) -> dict:
        # Serialised once when the caller dated it (chat does: two messages a turn).
        text = json_dumps(message if "created_at" in message else {**message, "created_at": now_iso()})
        message = json.loads(text)
        line = (text + "\n").encode("utf-8")
        path = self._log_path(session_id)
        with self._log_lock(session_id), self._writing("a chat log"):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
            try:
                size = os.fstat(fd).st_size
                whole = _whole_lines(fd, size)
                if whole != size:  # a torn line after a crash: cut off so the next line starts clean
                    os.ftruncate(fd, whole)
                try:
                    if os.pwrite(fd, line, whole) != len(line):
                        raise OSError(f"short write to the log of session {session_id}")
                    if durable:  # also makes lines written earlier without fsync durable
                        os.fsync(fd)
                except BaseException:
                    try:
                        os.ftruncate(fd, whole)
                    except OSError:
                        pass
                    raise
            finally:
                os.close(fd)
            if size == 0:  # a new file: make its name durable too
                fsync_dir(self.messages_dir)
            if durable:
                self._unsynced_logs.discard(session_id)
            else:
                self._unsynced_logs.add(session_id)
        return message

    def sync_messages(self, session_id: str) -> None:
        with self._log_lock(session_id):
            if session_id not in self._unsynced_logs:
                return
            try:
                fd = os.open(self._log_path(session_id), os.O_RDONLY)
            except FileNotFoundError:
                self._unsynced_logs.discard(session_id)
                return
            try:
                with self._writing("a chat log"):
                    os.fsync(fd)
            finally:
                os.close(fd)
            self._unsynced_logs.discard(session_id)

    def list_messages(self, session_id: str, limit: int = 50, before: str | None = None) -> tuple[list, str | None]:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError(f"limit must be a positive integer, got {limit!r}")
        # The cursor is the byte offset of the oldest message returned: the log is append-only,
        # so offsets never move, and a page is read backwards from there without an index.
        try:
            f = open(self._log_path(session_id), "rb")
        except FileNotFoundError:
            if before is not None and before != "0":
                raise ValueError(f"not a cursor of this session's messages: {before!r}")
            return [], None
        with f:
            size = _whole_lines(f.fileno(), os.fstat(f.fileno()).st_size)
            end = size if before is None else _offset_cursor(before, f, size)
            lines = _lines_before(f, end, limit)
        messages = [message for _, message in lines if message is not None]
        return messages, (str(lines[0][0]) if lines and lines[0][0] > 0 else None)

    def iter_messages(self, session_id: str):
        try:
            f = open(self._log_path(session_id), "rb")
        except FileNotFoundError:
            return
        with f:
            size = _whole_lines(f.fileno(), os.fstat(f.fileno()).st_size)
            read = 0
            for line in f:  # buffered: a block at a time
                read += len(line)
                if read > size:
                    return  # a torn last line
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if isinstance(message, dict):
                    yield message

    def delete_messages(self, session_id: str) -> bool:
        path = self._log_path(session_id)
        with self._log_lock(session_id), self._writing("a chat log"):
            try:
                os.unlink(path)
            except FileNotFoundError:
                return False
            fsync_dir(self.messages_dir)
            self._unsynced_logs.discard(session_id)
        return True

    # -- service ---------------------------------------------------------------------------------
    def ping(self) -> None:
        os.listdir(self.collections_dir)
        for store in self._collections.values():  # a real read: the first collection file's header
            if store.size:
                with open(store.path, "rb") as f:
                    f.readline()
                break
        trouble = self.trouble()
        if trouble:
            raise OSError(trouble)

    def trouble(self) -> str | None:
        # os.access does not see a full disk (nor, as root, a folder's mode): hence the memory of
        # the last failed write. Costs ~2 us a folder, and no write while all is well.
        # (No absolute path or id in it: health answers anyone.)
        for folder in (self.folder, self.collections_dir, self.messages_dir):
            if not os.access(folder, os.R_OK | os.W_OK | os.X_OK):
                where = "the data folder" if folder == self.folder else f"the data folder's {folder.name}/"
                return f"{where} is not readable and writable by this process"
        if self._write_error:
            # Only while writes fail: a small test write, so that health turns ok once there is room
            # again even when nothing else writes (a monitor or proxy that holds traffic back while
            # health says 503 would otherwise keep it 503 for good). A failing write costs little.
            probe = self.folder / ".write-probe"
            try:
                atomic_write(probe, b"ok", mode=FILE_MODE)
                probe.unlink()
            except OSError:
                return self._write_error  # still failing: keep what the real write met
            self._write_error = None
        return self._write_error

    @contextmanager
    def _writing(self, what: str):
        """Around every write: an OSError (full disk, read-only folder, I/O error) becomes
        StorageUnavailable and is remembered for `trouble`; a write that works clears it."""
        try:
            yield
        except OSError as e:
            self._write_error = f"writing {what} failed: {e.strerror or e}"
            raise StorageUnavailable(f"{self.folder}: {self._write_error}; nothing was saved") from e
        self._write_error = None

    def stats(self) -> dict:
        return {"bytes": {name: store.size for name, store in self._collections.items()}}

    def close(self) -> None:
        for store in self._collections.values():
            try:
                store.sync()
            except StorageUnavailable:
                log.warning("closing: %s could not be made durable", store.path.name)


# What a document's put line takes in the file beyond its JSON: '{"put":', '}' and the newline.
# (Counted in bytes, as the file's size is: counting characters compacted CJK text far too often.)
LINE_EXTRA = 9


# -- keys and cursors ------------------------------------------------------------------------------

_NONE_RANK = 0
_NO_ORDER = (_NONE_RANK, "")  # the order value of a document without the field


def _sort_value(value) -> tuple:
    """A value as a key that sorts with any other: None first, then numbers, text, the rest."""
    if value is None:
        return _NO_ORDER
    if isinstance(value, (int, float)):  # bool too: False < True < 2
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (3, json_dumps(value))


def _sort_key(values: dict | None):
    """How a bucket is sorted: an id's (order value as `_sort_value`, id), the value read from
    ``values`` (the collection's values of the index's order field; None: an index by id only)."""
    if values is None:
        return lambda doc_id: (_NO_ORDER, doc_id)

    def key(doc_id: str) -> tuple:
        value = values.get(doc_id)
        return (value if type(value) is tuple else _sort_value(value), doc_id)

    return key


# CPython 3.12 never frees an interned string (every login's token family would stay for the
# process's life: 500k dropped keys kept 56 MB), 3.11 and 3.13 do: no interning on 3.12.
_intern = (lambda value: value) if sys.version_info[:2] == (3, 12) else sys.intern


def _hashable(value):
    """A value as an index key. Short strings are interned: a user's id keys indexes in several
    collections, an agent's name or a record type thousands of buckets, and one copy serves all."""
    if type(value) is str:
        return _intern(value) if len(value) <= 64 else value
    return value if value is None or isinstance(value, (str, int, float)) else json_dumps(value)


def _differs(a, b) -> bool:
    """Whether a field's value changed as an index sees it: 1 and 1.0, or [1] and [1.0], are
    equal but may key differently, so a type change or any list or object counts as a change."""
    return type(a) is not type(b) or a != b or not (a is None or isinstance(a, (str, int, float)))


def _equal_key(doc: dict, fields: tuple) -> tuple:
    return tuple([_hashable(doc.get(field)) for field in fields])


def _bucket_key(key: tuple):
    """An index's key for equality values: the value itself for one field (no tuple to keep)."""
    return key[0] if len(key) == 1 else key


def _bucket_key_of(fields: tuple):
    """The function giving a document's (or a where's) `_bucket_key` for the fields of an index."""
    if len(fields) == 1:
        field = fields[0]
        return lambda doc: _hashable(doc.get(field))
    return lambda doc: _equal_key(doc, fields)


_DECODER = json.JSONDecoder()


def _loads(text: bytes):
    """A document held in memory, parsed: its JSON is our own making (UTF-8, no space around it,
    checked when its line was read), so neither json.loads's guess of the encoding of bytes nor
    decode's two whitespace scans around it: ~13 parses a chat turn (bench/turn_ab)."""
    return _DECODER.raw_decode(text.decode("utf-8"))[0]


def _unique_key(doc: dict, fields: tuple) -> tuple | None:
    key = _equal_key(doc, fields)
    return None if any(value is None for value in key) else key


def _checked(doc: dict, with_text: bool = False):
    """A copy of the document as it will be stored (JSON round trip), with a string id; with
    ``with_text``, (the copy, its JSON as stored)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str) or not doc["id"]:
        raise ValueError(f"a document is a dict with a non-empty string id, got {doc!r:.80}")
    text = json_dumps(doc).encode("utf-8")
    return (_loads(text), text) if with_text else _loads(text)


def _encode_cursor(entry: tuple) -> str:
    (rank, value), doc_id = entry
    return base64.urlsafe_b64encode(json_dumps([rank, value, doc_id]).encode("utf-8")).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str) -> tuple:
    if not isinstance(cursor, str) or len(cursor) > 4096:
        raise ValueError("not a cursor of this list")
    try:
        rank, value, doc_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        kind = {0: str, 1: (int, float), 2: str, 3: str}.get(rank) if type(rank) is int else None
        if kind is None or not isinstance(value, kind) or not isinstance(doc_id, str):
            raise TypeError
    except (ValueError, TypeError, RecursionError):  # binascii.Error, UnicodeDecodeError are ValueErrors
        raise ValueError(f"not a cursor of this list: {cursor[:80]!r}") from None
    return ((rank, value), doc_id)


def _left_by_dead_process(tmp: Path) -> bool:
    """Whether a temp file of `atomic_write` (.NAME.PID.THREAD.tmp) belongs to no live process."""
    try:
        os.kill(int(tmp.name.split(".")[-3]), 0)
    except ProcessLookupError:
        return True
    except (ValueError, IndexError, OSError):  # not our name, or alive under another user
        return False
    return False


# -- message logs ----------------------------------------------------------------------------------

def _whole_lines(fd: int, size: int) -> int:
    """Where the whole lines of a log end: bytes after the last newline are a line torn by a crash."""
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    pos = size
    while pos > 0:
        step = min(READ_BLOCK, pos)
        block = os.pread(fd, step, pos - step)
        at = block.rfind(b"\n")
        if at >= 0:
            return pos - step + at + 1
        pos -= step
    return 0


def _offset_cursor(cursor: str, f, size: int) -> int:
    """A message cursor: the offset of a line start in the log (checked, as clients send it)."""
    offset = int(cursor) if isinstance(cursor, str) and cursor.isdigit() else -1
    if 0 < offset <= size:
        f.seek(offset - 1)
        if f.read(1) == b"\n":
            return offset
    if offset == 0:
        return 0
    raise ValueError(f"not a cursor of this session's messages: {cursor!r}")


def _lines_before(f, end: int, limit: int) -> list[tuple[int, dict | None]]:
    """Up to ``limit`` whole lines that end by byte ``end`` (a line start), oldest first, as
    (offset, message); message is None for a line that is not a JSON object. Reads backwards
    in blocks, so the cost depends on the page, not on the size of the file."""
    # The first read is small: a turn reads its history (20 lines of a few hundred bytes) this
    # way, and 64 KB read, counted and split per turn cost more than the 20 lines' parsing.
    blocks, newlines, pos, step = [], 0, end, FIRST_READ
    # Once the bytes read hold limit + 1 newlines, every line after the first newline is whole
    # (and all are, once pos is 0). A very long line doubles the block size.
    while pos > 0 and newlines <= limit:
        step = min(step * 2 if blocks else step, pos)
        pos -= step
        f.seek(pos)
        blocks.append(f.read(step))
        newlines += blocks[-1].count(b"\n")
    buf = b"".join(reversed(blocks))
    # The last ``limit`` lines start after the newline limit + 1 back from the end (buf ends with
    # one); none there: the file's start (pos is 0 then, as the loop reads until it finds one).
    start = len(buf) - 1
    for _ in range(limit):
        start = buf.rfind(b"\n", 0, start)
        if start < 0:
            break
    start += 1
    raws = buf[start:].split(b"\n")[:-1]
    offset = pos + start
    lines = []
    for raw in raws:
        try:
            message = _DECODER.decode(raw.decode("utf-8"))  # ours: UTF-8 (json.loads would guess)
        except (ValueError, RecursionError):
            message = None
        lines.append((offset, message if isinstance(message, dict) else None))
        offset += len(raw) + 1
    return lines
