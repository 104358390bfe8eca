"""A storage backend of the tests' own: the files backend, counting the reads of each collection
(``get``, ``find``, ``count``) and its writes (``insert``, ``put``, ``update``, ``delete``,
``delete_where``, ``upsert``), so a test can say what a piece of work looked at or wrote, e.g.
that a reminder tick reads no user. Chosen with ``storage: {backend: counting}``."""

from collections import Counter

from wellmate import hookimpl
from wellmate_plugins.storage_files import FileStorage


class CountingStorage(FileStorage):
    name = "counting"

    def __init__(self, settings, wm=None, collections=None):
        super().__init__(settings, wm, collections)
        self.reads = Counter()  # collection -> reads since the test last cleared it
        self.writes = Counter()  # collection -> writes since the test last cleared it

    def get(self, collection, doc_id):
        self.reads[collection] += 1
        return super().get(collection, doc_id)

    def find(self, collection, where=None, **options):
        self.reads[collection] += 1
        return super().find(collection, where, **options)

    def count(self, collection, where=None):
        self.reads[collection] += 1
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

    def upsert(self, collection, docs, key, fixed=()):
        self.writes[collection] += 1
        return super().upsert(collection, docs, key, fixed)


@hookimpl
def register_storage(register):
    register("counting", lambda settings, wm: CountingStorage(settings, wm))
