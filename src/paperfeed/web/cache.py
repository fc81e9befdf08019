"""The web tier's response cache, keyed by page and by the database's data version.

Per-day feed data changes rarely, so pages and API answers are built once per data version and
served from memory after that. The version is a fingerprint of the tables the pages show
(``store.feed_queries.data_version``), re-read at most every ``interval`` seconds; since it is
read from the database, a write by any process (another worker, ``paperfeed import``, a vote)
invalidates every worker's cache within that interval. The version also holds this process's
search index state (``extra``: the lexical commit and vector snapshot it searches), so a search
answered before the index caught up with a new paper is rebuilt once it has. ``ttl`` bounds the
age of an entry in case a write changes a page without moving the fingerprint.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from paperfeed.store import feed_queries
from paperfeed.store.db import Database


@dataclass(frozen=True)
class Version:
    token: str  # short hash of the fingerprint: equal across workers for the same data
    seen_at: float  # when this process first saw it (drives Last-Modified)


class DataVersion:
    """The current data version, memoised for ``interval`` seconds (thread-safe).

    ``extra()`` adds what this process's search indexes hold (cheap: a ``stat`` and a tuple).
    """

    def __init__(self, db: Database, interval: float = 0.25, extra: Callable[[], Hashable] | None = None) -> None:
        self.db = db
        self.interval = interval
        self.extra = extra
        self._lock = threading.Lock()
        self._checked = 0.0
        self._fingerprint: tuple[Any, ...] | None = None
        self._version = Version("0", time.time())

    def current(self) -> Version:
        now = time.monotonic()
        if now - self._checked < self.interval:
            return self._version
        with self._lock:
            if now - self._checked < self.interval:
                return self._version
            with self.db.read() as conn:
                fingerprint = feed_queries.data_version(conn)
            if self.extra is not None:
                fingerprint = (*fingerprint, self.extra())
            if fingerprint != self._fingerprint:
                token = hashlib.blake2b(repr(fingerprint).encode(), digest_size=8).hexdigest()
                self._fingerprint = fingerprint
                self._version = Version(token, time.time())
            self._checked = time.monotonic()
            return self._version

    def invalidate(self) -> None:
        """Force a re-read on the next request (in-process writers call this after committing)."""
        with self._lock:
            self._checked = 0.0


@dataclass
class Entry:
    key: str
    version: str
    created: float
    data: Any
    bodies: dict[str, bytes] = field(default_factory=dict)  # representation -> encoded body
    size: int = 0  # estimated bytes held (bodies, plus as much again for the data dict)


class ResponseCache:
    """A bounded LRU of page data and encoded bodies, valid for one data version.

    Bounded by entries and by an estimate of the bytes held, so a crawler walking thousands of
    distinct search pages cannot grow a worker's memory without limit.
    """

    def __init__(self, max_entries: int = 2048, ttl: float = 300.0, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._items: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: str, version: str) -> Entry | None:
        with self._lock:
            entry = self._items.get(key)
            if entry is None or entry.version != version or time.monotonic() - entry.created > self.ttl:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: str, version: str, data: Any) -> Entry:
        entry = Entry(key, version, time.monotonic(), data)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            self._items[key] = entry
            self._evict()
        return entry

    def add_body(self, entry: Entry, representation: str, body: bytes) -> bytes:
        """Store an encoded body on an entry (and count it against the byte budget)."""
        grow = len(body) * (2 if not entry.bodies else 1)
        entry.bodies[representation] = body
        with self._lock:
            if self._items.get(entry.key) is entry:  # not evicted or replaced meanwhile
                entry.size += grow
                self._bytes += grow
                self._evict()
        return body

    def _evict(self) -> None:
        while self._items and (len(self._items) > self.max_entries or self._bytes > self.max_bytes):
            _key, old = self._items.popitem(last=False)
            self._bytes -= old.size

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    @property
    def bytes_held(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)
