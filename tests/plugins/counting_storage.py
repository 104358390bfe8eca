"""A storage backend of the tests' own: the files backend, counting the reads of each collection
(``get``, ``find``, ``count``), the documents they returned and which plugin read each, and its
writes (``insert``, ``put``, ``update``, ``delete``, ``delete_where``, ``upsert``), so a test can
say what a piece of work looked at or wrote (a reminder tick reads no user; each plugin reads only
its own collections). Chosen with ``storage: {backend: counting}``."""

import sys
from collections import Counter

from wellmate import hookimpl
from wellmate_plugins.storage_files import FileStorage


class CountingStorage(FileStorage):
    name = "counting"

    def __init__(self, settings, wm=None, collections=None):
        super().__init__(settings, wm, collections)
        self.reads = Counter()  # collection -> reads since the test last cleared it
        self.documents = Counter()  # collection -> documents those reads returned
        self.readers = set()  # (plugin, collection): the built-in plugin nearest to each read
        self.writes = Counter()  # collection -> writes since the test last cleared it

    def _read(self, collection):
        self.reads[collection] += 1
        frame = sys._getframe(2)
        while frame is not None:
            module = frame.f_globals.get("__name__", "")
            if module.startswith("wellmate_plugins.") and module.split(".")[1] not in ("storage_files", "_legacy_storage"):
                self.readers.add((module.split(".")[1], collection))
                return
            frame = frame.f_back

    def get(self, collection, doc_id):
        self._read(collection)
        doc = super().get(collection, doc_id)
        self.documents[collection] += doc is not None
        return doc

    def find(self, collection, where=None, **options):
        self._read(collection)
        found, cursor = super().find(collection, where, **options)
        self.documents[collection] += len(found)
        return found, cursor

    def count(self, collection, where=None):
        self._read(collection)
        return super().count(collection, where)

    def insert(self, collection, doc, durable=True):
        self.writes[collection] += 1
        return super().insert(collection, doc, durable)

    def put(self, collection, doc, durable=True):
        self.writes[collection] += 1
        return super().put(collection, doc, durable)

    def update(self, collection, doc_id, change, durable=True):
        self.writes[collection] += 1
        return super().update(collection, doc_id, change, durable)

    def delete(self, collection, doc_id):
        self.writes[collection] += 1
        return super().delete(collection, doc_id)

    def delete_where(self, collection, where):
        self.writes[collection] += 1
        return super().delete_where(collection, where)

    def upsert(self, collection, docs, key, fixed=(), defaults=None):
        self.writes[collection] += 1
        return super().upsert(collection, docs, key, fixed, defaults)


@hookimpl
def register_storage(register):
    register("counting", lambda settings, wm: CountingStorage(settings, wm))
