"""A plugin of the tests' own that keeps something per user, as a feature plugin would: a note in
its own collection, written when an account is created (`user_changed`) and deleted with the
account (`delete_user_data`). Its service ``user_watch`` keeps what the hooks saw, and can be told
to fail a delete half-way, as a process that dies would (tests/test_hooks.py)."""

from wellmate import hookimpl, new_id

NOTES = "user_watch_notes"


class Watch:
    def __init__(self):
        self.changes = []  # (before, user) of each user_changed call
        self.deleted = []  # the ids delete_user_data was called for
        self.fail_deletes = False  # raise after deleting the notes, before the account goes


@hookimpl
def register_collections(register):
    register(NOTES, indexes=[("user_id",)])


@hookimpl
def register_services(register):
    register("user_watch", lambda wm: Watch())


@hookimpl
def user_changed(user, before, wm):
    wm.service("user_watch").changes.append((before, user))
    if before is None:
        wm.storage.insert(NOTES, {"id": new_id(), "user_id": user["id"], "text": f"welcome, {user['username']}"})


@hookimpl
def delete_user_data(user, wm):
    watch = wm.service("user_watch")
    watch.deleted.append(user["id"])
    wm.storage.delete_where(NOTES, {"user_id": user["id"]})
    if watch.fail_deletes:
        raise RuntimeError("user_watch: the process dies half-way through deleting a user")
