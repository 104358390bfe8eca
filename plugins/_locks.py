"""A lock per key (a session, a user), not a plugin: shared by the plugins that serialise work on
one thing without making unrelated things wait.

Striped locks (a fixed list picked by a hash of the key) were bounded but made one unrelated key
in 64 wait behind another's slow work: a session's turn behind the delete of a year-long chat, an
append behind another log's fsync. Here each key has its own lock, kept only while a thread holds
or waits for it, so memory follows the work in progress, not the number of keys ever seen."""

from __future__ import annotations

import threading
from contextlib import contextmanager


class KeyedLocks:
    """``with locks.hold(key):`` runs alone among holders of the same key. ``reentrant``: the
    holder may take it again (an RLock), for code that calls itself through a public method."""

    def __init__(self, reentrant: bool = False):
        self._make = threading.RLock if reentrant else threading.Lock
        self._entries: dict[str, list] = {}  # key -> [lock, threads holding or waiting for it]
        self._guard = threading.Lock()

    @contextmanager
    def hold(self, key: str):
        with self._guard:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = [self._make(), 0]
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._guard:
                entry[1] -= 1
                if not entry[1]:
                    del self._entries[key]

    def __len__(self) -> int:
        """How many keys have a holder or a waiter (0 when nothing is in progress)."""
        return len(self._entries)
