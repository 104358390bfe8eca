"""A storage backend of the tests' own written to the contract before session 18: the files backend
with ``upsert(collection, docs, key, fixed=())``, no ``defaults``. Records must still sync with it
(a record re-sent without a time then gets a new one, as before). ``storage: {backend: old_upsert}``."""

from wellmate import hookimpl
from wellmate_plugins.storage_files import FileStorage


class OldUpsertStorage(FileStorage):
    name = "old_upsert"

    def upsert(self, collection, docs, key, fixed=()):
        return super().upsert(collection, docs, key, fixed)


@hookimpl
def register_storage(register):
    register("old_upsert", lambda settings, wm: OldUpsertStorage(settings, wm))
