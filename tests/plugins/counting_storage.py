"""A storage backend of the tests' own: the files backend, counting the reads of each collection
(``get``, ``find``, ``count``) and the documents they returned, so a test can say what a piece of
work looked at, e.g. that a reminder tick reads no user. Chosen with ``storage: {backend: counting}``."""

from collections import Counter

from wellmate import hookimpl
from wellmate_plugins.storage_files import FileStorage


class CountingStorage(FileStorage):
    name = "counting"

    def __init__(self, settings, wm=None, collections=None):
        super().__init__(settings, wm, collections)
        self.reads = Counter()  # collection -> reads since the test last cleared it
        self.documents = Counter()  # collection -> documents those reads returned

    def get(self, collection, doc_id):
        self.reads[collection] += 1
        doc = super().get(collection, doc_id)
        self.documents[collection] += doc is not None
        return doc

    def find(self, collection, where=None, **options):
        self.reads[collection] += 1
        found, cursor = super().find(collection, where, **options)
        self.documents[collection] += len(found)
        return found, cursor

    def count(self, collection, where=None):
        self.reads[collection] += 1
        return super().count(collection, where)


@hookimpl
def register_storage(register):
    register("counting", lambda settings, wm: CountingStorage(settings, wm))
