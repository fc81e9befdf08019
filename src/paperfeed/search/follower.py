"""Keeps this process's search indexes current with the database, in a background thread.

Every ``paperfeed serve`` process runs one (``PAPERFEED_INDEX_FOLLOW=1``, the default). Every
``PAPERFEED_INDEX_POLL`` seconds (1) it asks the database one cheap question - the newest
``papers.modified_at`` and how many papers changed since just before the lexical index's
watermark (``store.search_source.change_probe``: two lookups in one index) - and when the answer
moved, it catches the lexical index up from its watermark, committing every batch so searches
see each batch at once. The vector snapshot refreshes from the ``embeddings`` table on the same
beat (``VectorIndex.refresh``: a ``stat`` and two lookups when nothing changed; where PostgreSQL
holds the vectors (pgvector) there is no vector index to follow). Vectors are
written by whoever embeds (the pipeline leader, ``paperfeed index``); until a new paper has one,
the keyword side of hybrid search finds it. So a paper committed by any process on any machine
(a web submission, an import, a harvest, another node) is searchable in every process about one
poll plus one small catch-up later.

Several processes on one home share its index files (``home/index``). The lexical index has one
writer at a time (a file lock): whichever process takes it catches up; the others find it busy,
skip, and their readers reload on the writer's commit (every reader watches ``state.json``, and
so does the page cache's version). A writer that dies drops the lock with it, and the next poll
of another process takes over. Separate machines have separate homes, and each catches up its
own files. The vector index lives in each process's memory (an HNSW file, when there is one, is
shared read-only), so each process refreshes its own.

Errors (the database down, a full disk) are logged when they start, then once a minute while
they last, and the look is retried after a growing pause (at most ``MAX_BACKOFF`` seconds); the
thread never dies of one, and requests never wait for it. :meth:`IndexFollower.state` says where
this process's follower and indexes stand (:class:`IndexState`: watermarks, the last look and
catch-up, errors) for ``/api/v1/status``; how far each index is behind the database is
``pipeline/lag.py``'s, from the same watermarks.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from paperfeed.config import Settings
from paperfeed.search import vector_backend
from paperfeed.search.hybrid import SearchService
from paperfeed.search.lexical import OVERLAP, LexicalIndex, LexicalIndexBusy
from paperfeed.store import embeddings as vector_store
from paperfeed.store import search_source
from paperfeed.store.db import Database, utcnow
from paperfeed.store.search_source import Watermark

log = logging.getLogger(__name__)

# A catch-up re-reads this far before the watermark (late commits, clocks a little apart); every
# SWEEP_EVERY seconds after changes, one re-reads the lexical index's full OVERLAP instead.
FOLLOW_OVERLAP = timedelta(seconds=60)
SWEEP_EVERY = 300.0
COMMIT_EVERY = 1  # commit after every batch the source yields (search_source reads 2,000 rows a batch)
WRITER_HEAP_MB = 64  # a small writer: catch-ups are small, and the process is serving requests
DATABASE_VECTORS = vector_backend.PGVECTOR  # the vector index's mode where PostgreSQL holds and searches them
MAX_BACKOFF = 5.0  # seconds between tries while the database (or the disk) fails: back within 5 s of it
ERROR_LOG_EVERY = 60.0


@dataclass(frozen=True)
class IndexState:
    """What one process's follower has done and what its indexes hold (JSON-ready: ``as_dict``).

    How far they are behind the database is ``pipeline/lag.py``'s (from the watermarks); this is
    the follower's side, readable without the database (also while it is down)."""

    following: bool  # the follower thread runs (False: stopped, or never started)
    lexical_docs: int  # documents in the keyword index
    lexical_watermark: datetime | None  # modified_at of the newest paper it holds
    # exact | hnsw | rebuilding | pgvector (PostgreSQL searches them) | "not loaded" (before the
    # first semantic search)
    vector_mode: str
    vectors: int | None  # vectors this process holds (None: not loaded, or in the database)
    vector_watermark: datetime | None  # created_at of the newest vector it has read (None: as above)
    last_check_at: datetime | None  # the follower's last completed look at the database
    last_catch_up_at: datetime | None  # its last look that read changes
    catch_ups: int
    docs_written: int  # lexical documents this process wrote (0 where another process on the home writes)
    errors: int  # failed looks since the start
    failing_since: datetime | None  # set while looks fail (the database is down, the disk full)
    last_error: str | None
    last_error_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, datetime):
                out[key] = value.isoformat()
        return out


class IndexFollower:
    """The background thread described in the module docstring; ``run_once`` is one look."""

    def __init__(self, settings: Settings, db: Database, service: SearchService, *, poll: float | None = None) -> None:
        self.settings = settings
        self.db = db
        self.service = service
        self.poll = float(poll if poll is not None else settings.index_poll)
        # Its own writer handle (small heap, one thread); searches read through service.lexical.
        self.writer = LexicalIndex(settings, writer_heap_mb=WRITER_HEAP_MB, writer_threads=1)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one look at a time (the thread, or a caller of run_once)
        self._seen: tuple[Any, ...] | None = None  # the probe the last completed catch-up started from
        self._own_watermark: Watermark | None = None  # the index's watermark after our last catch-up
        self._vectors_seen: tuple[int, datetime | None] | None = None
        self._changed_since_sweep = False
        self._swept_at = time.monotonic()
        self._last_check_at: datetime | None = None
        self._last_catch_up_at: datetime | None = None
        self._catch_ups = 0
        self._docs_written = 0
        self._errors = 0
        self._failing_since: float | None = None
        self._failing_at: datetime | None = None
        self._error_logged_at = 0.0
        self._last_error: str | None = None
        self._last_error_at: datetime | None = None

    # -- the thread ------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def errors(self) -> int:
        """Failed looks so far (readable while the database is down, unlike :meth:`state`)."""
        return self._errors

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self.service.followed = True  # requests no longer refresh the vectors themselves
        self._thread = threading.Thread(target=self._loop, name="index-follower", daemon=True)
        self._thread.start()
        log.info("index follower started (every %.1f s)", self.poll)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.service.followed = False

    def _loop(self) -> None:
        delay = 0.0  # the first look at once: catch up with whatever happened while we were down
        while not self._stop.wait(delay):
            try:
                self.run_once()
            except Exception as exc:  # never dies: logged, retried after a growing pause
                self._failed(exc)
                delay = min(MAX_BACKOFF, max(self.poll, delay * 2))
            else:
                if self._failing_since is not None:
                    log.warning(
                        "index follower: working again after %.0f s of errors",
                        time.monotonic() - self._failing_since,
                    )
                    self._failing_since = self._failing_at = None
                delay = self.poll

    def _failed(self, exc: Exception) -> None:
        now = time.monotonic()
        self._errors += 1
        self._last_error = f"{type(exc).__name__}: {exc}"[:500]
        self._last_error_at = utcnow()
        if self._failing_since is None:
            self._failing_since, self._failing_at = now, self._last_error_at
        if now - self._error_logged_at >= ERROR_LOG_EVERY or self._errors == 1:
            self._error_logged_at = now
            log.warning("index follower: could not catch up (%s); retrying", self._last_error)

    # -- one look ----------------------------------------------------------------------------------
    def run_once(self) -> int:
        """Look at the database once and catch up what moved; returns lexical documents written.
        Raises what the database or the index raised (the thread logs it and retries)."""
        with self._lock:
            written = self._follow_lexical()
            self._follow_vectors()
            self._last_check_at = utcnow()
            return written

    def _follow_lexical(self) -> int:
        watermark = self.writer.watermark()
        since = watermark[0] - FOLLOW_OVERLAP if watermark else None
        probe = (watermark, *search_source.change_probe(self.db, since))
        sweep = self._changed_since_sweep and time.monotonic() - self._swept_at > SWEEP_EVERY
        if probe == self._seen and not sweep:
            return 0
        newest = probe[1]
        # Moved by another process on this home (or we just started); after our own catch-up the
        # next look re-reads the overlap window once, for commits that landed behind our read.
        by_other = self._seen is None or watermark not in (self._seen[0], self._own_watermark)
        if not sweep and by_other and watermark is not None and newest is not None and watermark[0] >= newest:
            # The index already holds the newest change: no re-read of the overlap window here
            # (the writer does it); a commit that lands late, behind the watermark, moves the
            # probe's count or meets the sweep.
            self._seen, self._changed_since_sweep = probe, True
            return 0
        try:
            written = self.writer.update(
                self.db, progress=False, overlap=OVERLAP if sweep else FOLLOW_OVERLAP, commit_every=COMMIT_EVERY
            )
        except LexicalIndexBusy:
            if sweep:  # another process on this home is writing: its pass counts as ours
                self._swept_at = time.monotonic()
            return 0  # our reader reloads on its commit
        self._seen, self._own_watermark = probe, self.writer.watermark()
        self._catch_ups += 1
        self._docs_written += written
        self._last_catch_up_at = utcnow()
        if sweep:
            self._swept_at, self._changed_since_sweep = time.monotonic(), False
        else:
            self._changed_since_sweep = True
        if written:
            log.debug("index follower: %d paper(s) indexed", written)
        return written

    def _follow_vectors(self) -> None:
        vectors = self.service.vectors
        if vectors is not None:
            if vectors.mode != DATABASE_VECTORS:  # with pgvector, PostgreSQL is the index: nothing to follow
                self.service.refresh()  # cheap when nothing changed; picks up a new HNSW file too
            return
        # Not loaded (no semantic search yet, or nothing to load before): when vectors appear,
        # let the next semantic search load them instead of repeating "semantic index is empty".
        writes = vector_store.marker(self.db, count=False).writes()
        if writes != self._vectors_seen:
            self._vectors_seen = writes
            self.service.refresh()

    # -- state -------------------------------------------------------------------------------------
    def state(self) -> IndexState:
        """Where this process's follower and indexes stand (no database access)."""
        lexical = self.service.lexical
        watermark = lexical.watermark()
        vectors = self.service.vectors
        mode = str(vectors.mode) if vectors is not None else "not loaded"
        own = vectors is not None and mode != DATABASE_VECTORS  # held by this process (no SQL to describe)
        return IndexState(
            following=self.running,
            lexical_docs=lexical.count(),
            lexical_watermark=watermark[0] if watermark else None,
            vector_mode=mode,
            vectors=len(vectors) if own else None,
            vector_watermark=vectors.watermark if own else None,
            last_check_at=self._last_check_at,
            last_catch_up_at=self._last_catch_up_at,
            catch_ups=self._catch_ups,
            docs_written=self._docs_written,
            errors=self._errors,
            failing_since=self._failing_at,
            last_error=self._last_error,
            last_error_at=self._last_error_at,
        )
