"""A lock per key (a session, a user), and admission of work per key, not a plugin: shared by the
plugins that serialise work on one thing without making unrelated things wait.

Striped locks (a fixed list picked by a hash of the key) were bounded but made one unrelated key
in 64 wait behind another's slow work: a session's turn behind the delete of a year-long chat, an
append behind another log's fsync. Here each key has its own lock, kept only while a thread holds
or waits for it, so memory follows the work in progress, not the number of keys ever seen."""

from __future__ import annotations

import threading
from collections import Counter
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


class Admission:
    """Work in progress per key (a user) and in all, let in at once or refused: never waited for,
    since a waiting request holds a server thread too. Chat turns and uploads each keep one.
    Its table holds only keys with work in progress, so it stays as small as ``total``."""

    def __init__(self, per_key: int, total: int):
        self.per_key, self.total = per_key, total
        self.open = 0
        self._keys: Counter = Counter()
        self._lock = threading.Lock()

    def enter(self, key: str) -> str | None:
        """Let one more of ``key``'s in (None), or say why not: "key" (it has ``per_key`` in
        progress) or "total" (``total`` are)."""
        with self._lock:
            if self._keys[key] >= self.per_key:
                return "key"
            if self.open >= self.total:
                return "total"
            self._keys[key] += 1
            self.open += 1
        return None

    def leave(self, key: str) -> None:
        with self._lock:
            self.open -= 1
            self._keys[key] -= 1
            if not self._keys[key]:
                del self._keys[key]
