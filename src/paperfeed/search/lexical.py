"""Keyword search: a BM25 index of papers (tantivy, on disk) and the queries that run against it.

``LexicalIndex.update`` runs from ``paperfeed index`` and after imports: it streams papers changed
since the last run from the database and (re)writes their index documents. ``LexicalIndex.search``
runs on every keyword/hybrid search. Queries are built programmatically from a
:class:`~paperfeed.search.query.ParsedQuery` (term, phrase, range and term-set queries); user text
never reaches tantivy's query parser.

Ranking (see :mod:`paperfeed.search.lexical_query`): BM25 over title + abstract plus a small title
boost; k1/b are tantivy's fixed 1.2/0.75; plain words are OR-ed (block-max WAND keeps that fast);
quoted phrases, authors, categories and dates are required; excluded words are removed. The document
layout is in :mod:`paperfeed.search.lexical_docs`.

On disk, under ``settings.index_dir / "lexical"``: ``state.json`` names the active index
generation (a ``gen-*`` folder) and the watermark ``(modified_at, id)`` of the last paper written to
it. A rebuild writes a new generation while the old one keeps serving, then switches over. A
missing or unreadable index makes ``search`` return no hits (hybrid search falls back to semantic)
and the next ``update`` rebuild it. One updater at a time (a lock file, plus tantivy's own writer
lock); readers in any process pick up commits by watching ``state.json``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import tantivy

from paperfeed.config import Settings
from paperfeed.search.analysis import register_analyzers
from paperfeed.search.highlight import highlight
from paperfeed.search.lexical_docs import FORMAT, SCHEMA, make_document, micros
from paperfeed.search.lexical_query import TITLE_BOOST, TermStat, build_query, query_terms
from paperfeed.search.query import ParsedQuery
from paperfeed.store.db import Database
from paperfeed.store.search_source import Watermark, count_papers_since, iter_papers_since

try:  # POSIX advisory lock for "one updater at a time"; tantivy's writer lock still applies elsewhere
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]  # no fcntl module on Windows; the lock is skipped there

__all__ = [
    "LexicalHit",
    "LexicalIndex",
    "LexicalIndexBusy",
    "LexicalResult",
    "TermStat",
    "TITLE_BOOST",
    "highlight",
    "make_document",
]

log = logging.getLogger(__name__)

MAX_LIMIT = 10_000
BATCH_SIZE = 2_000  # rows per change check and progress step
COMMIT_EVERY_DOCS = 100_000
COMMIT_EVERY_SECONDS = 60.0
# Rows committed by slower transactions can carry a modified_at just before the watermark; look
# back this far on each incremental update (unchanged documents are skipped, not rewritten).
OVERLAP = timedelta(minutes=10)
_FATAL = (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError)


@dataclass(frozen=True)
class LexicalHit:
    paper_id: str
    score: float  # BM25 (higher is better); 0.0 for filter-only queries, which come newest first


@dataclass(frozen=True)
class LexicalResult:
    hits: list[LexicalHit]
    terms: list[TermStat]  # the query's distinct analyzed terms: document frequency, used or pruned
    num_docs: int  # papers in the index searched (0 when there is none)


class LexicalIndexBusy(RuntimeError):
    """Another process is updating the lexical index right now."""


# -- on-disk state ---------------------------------------------------------------------------------


@dataclass
class _Generation:
    dir: str
    watermark: Watermark | None = None
    docs_written: int = 0

    def to_json(self) -> dict[str, Any]:
        wm = [self.watermark[0].isoformat(), self.watermark[1]] if self.watermark else None
        return {"dir": self.dir, "watermark": wm, "docs_written": self.docs_written}

    @classmethod
    def from_json(cls, data: Any) -> _Generation | None:
        if not isinstance(data, dict) or not isinstance(data.get("dir"), str) or "/" in data["dir"]:
            return None
        wm = data.get("watermark")
        watermark = (datetime.fromisoformat(wm[0]), str(wm[1])) if wm else None
        return cls(data["dir"], watermark, int(data.get("docs_written") or 0))


@dataclass
class _State:
    active: _Generation | None = None
    building: _Generation | None = None


@dataclass
class _Reader:
    dir: str
    index: tantivy.Index


def _new_generation() -> _Generation:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return _Generation(f"gen-{stamp}-{secrets.token_hex(3)}")


# -- the index -------------------------------------------------------------------------------------


class LexicalIndex:
    """The BM25 index of one paperfeed installation (``settings.index_dir / "lexical"``)."""

    def __init__(self, settings: Settings, *, writer_heap_mb: int = 512, writer_threads: int = 0) -> None:
        self.root = Path(settings.index_dir) / "lexical"
        self.writer_heap_mb = writer_heap_mb
        # tantivy wants >= 15 MB of heap per indexing thread; 2 threads saturate a 2-core box.
        threads = writer_threads or min(4, os.cpu_count() or 1)
        self.writer_threads = max(1, min(threads, writer_heap_mb // 20))
        self._lock = threading.Lock()
        self._reader: _Reader | None = None
        self._state_sig: tuple[int, int, int] | None = None
        self._warned_sig: object = object()  # nothing warned about yet
        self._warned_missing = False

    # -- state file ----------------------------------------------------------------------------
    @property
    def _state_path(self) -> Path:
        return self.root / "state.json"

    def _read_state(self) -> _State | None:
        """The saved state; None when missing, unreadable or from another index format."""
        try:
            data = json.loads(self._state_path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                log.warning("lexical index: %s is from another format; it will be rebuilt", self._state_path)
                return None
            return _State(_Generation.from_json(data.get("active")), _Generation.from_json(data.get("building")))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, KeyError, IndexError, OSError) as exc:
            log.warning("lexical index: unreadable %s (%s); it will be rebuilt", self._state_path, exc)
            return None

    def _write_state(self, state: _State) -> None:
        data = {
            "format": FORMAT,
            "active": state.active.to_json() if state.active else None,
            "building": state.building.to_json() if state.building else None,
        }
        tmp = self._state_path.with_name(f"state.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, self._state_path)  # readers see the old or the new state, never half of one

    def _state_signature(self) -> tuple[int, int, int] | None:
        try:
            st = self._state_path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    # -- reading -------------------------------------------------------------------------------
    def _open(self, gen: _Generation) -> tantivy.Index:
        path = self.root / gen.dir
        if not (path / "meta.json").is_file():
            raise FileNotFoundError(f"{path} holds no index")
        index = tantivy.Index.open(str(path))
        register_analyzers(index)
        return index

    def _current(self) -> _Reader | None:
        """The reader for the active generation, re-opened or reloaded when state.json changed."""
        sig = self._state_signature()
        if sig is not None and sig == self._state_sig and self._reader is not None:
            return self._reader
        with self._lock:
            if sig is not None and sig == self._state_sig and self._reader is not None:
                return self._reader
            reader = None
            state = self._read_state() if sig is not None else None
            if state is not None and state.active is not None:
                try:
                    if self._reader is not None and self._reader.dir == state.active.dir:
                        self._reader.index.reload()
                        reader = self._reader
                    else:
                        reader = _Reader(state.active.dir, self._open(state.active))
                except BaseException as exc:  # tantivy panics arrive as BaseException
                    if isinstance(exc, _FATAL):
                        raise
                    self._warn_once(sig, f"cannot open the lexical index ({exc}); run `paperfeed index`")
                    reader = None
            elif not self._warned_missing:  # once: a first build rewrites state.json every batch
                self._warned_missing = True
                log.warning(
                    "no lexical index yet: keyword search finds nothing until it is built "
                    "(`paperfeed serve` builds it by itself, and so does `paperfeed index`)"
                )
            self._reader, self._state_sig = reader, sig
            return reader

    def _warn_once(self, sig: object, message: str) -> None:
        if self._warned_sig != sig:
            log.warning(message)
            self._warned_sig = sig

    def version(self) -> tuple[int, int, int] | None:
        """What a search would read now: ``state.json``'s signature (one ``stat``), which moves
        with every commit by any process; None without an index. Part of the web cache's version."""
        return self._state_signature()

    def watermark(self) -> Watermark | None:
        """``(modified_at, id)`` of the last paper in the active index, as ``state.json`` says now."""
        state = self._read_state() if self._state_path.exists() else None
        return state.active.watermark if state is not None and state.active is not None else None

    def searcher(self) -> tantivy.Searcher | None:
        """A searcher on the active index, or None without one (for counting: search/trends.py)."""
        reader = self._current()
        return reader.index.searcher() if reader else None

    def count(self) -> int:
        """Documents in the active index (0 when there is none)."""
        try:
            reader = self._current()
            return int(reader.index.searcher().num_docs) if reader else 0
        except BaseException as exc:
            if isinstance(exc, _FATAL):
                raise
            log.warning("lexical index: count failed: %s", exc)
            return 0

    def search(
        self,
        q: ParsedQuery,
        *,
        limit: int = 100,
        categories: Iterable[str] | None = None,
        date_from: date | None = None,
        date_to: date | None = None,
    ) -> LexicalResult:
        """The best ``limit`` papers for ``q`` (BM25), restricted to ``categories`` (any of) and the
        inclusive publication-date range, on top of the filters inside ``q``; with them the query's
        terms (document frequency, used or pruned) and the number of indexed papers, which hybrid
        fusion reads to decide how far to trust the keyword side. Never raises: a missing or broken
        index gives no hits."""
        try:
            reader = self._current()
            if reader is None:
                return LexicalResult([], [], 0)
            searcher = reader.index.searcher()
            stats = query_terms(searcher, q)
            num_docs = int(searcher.num_docs)
            built = build_query(searcher, q, list(categories or ()), date_from, date_to, stats)
            if built is None:
                return LexicalResult([], stats, num_docs)
            query, scored = built
            limit = max(1, min(int(limit), MAX_LIMIT))
            if scored:
                hits = searcher.search(query, limit, count=False).hits
            else:  # filters only: newest first
                hits = searcher.search(query, limit, count=False, order_by_field="published").hits
            out: list[LexicalHit] = []
            seen: set[str] = set()
            for score, address in hits:
                pid = searcher.doc(address).get_first("id")
                if pid is None or pid in seen:
                    continue
                seen.add(pid)
                out.append(LexicalHit(pid, float(score) if scored else 0.0))
            return LexicalResult(out, stats, num_docs)
        except BaseException as exc:
            if isinstance(exc, _FATAL):
                raise
            log.warning("lexical search failed (%s: %s); returning no keyword results", type(exc).__name__, exc)
            return LexicalResult([], [], 0)

    # -- writing -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _update_lock(self, wait: float = 0.0) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        if fcntl is None:  # pragma: no cover - tantivy's writer lock still guards the files
            yield
            return
        with open(self.root / ".update.lock", "a+") as fh:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LexicalIndexBusy(
                            "another process is updating the lexical index; try again later"
                        ) from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _usable(self, gen: _Generation | None) -> bool:
        if gen is None:
            return False
        try:
            searcher = self._open(gen).searcher()
            searcher.search(tantivy.Query.all_query(), 1, count=True)
            return True
        except BaseException as exc:
            if isinstance(exc, _FATAL):
                raise
            log.warning("lexical index: generation %s is unusable (%s); rebuilding", gen.dir, exc)
            return False

    def _cleanup(self, state: _State) -> None:
        """Remove generations no longer referenced (and temp files of crashed runs)."""
        keep = {g.dir for g in (state.active, state.building) if g}
        for path in self.root.iterdir():
            if path.name in keep or path.name in ("state.json", ".update.lock"):
                continue
            if path.is_dir() and path.name.startswith("gen-"):
                shutil.rmtree(path, ignore_errors=True)
            elif path.is_file() and path.name.startswith("state.") and path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)

    def update(
        self,
        db: Database,
        *,
        rebuild: bool = False,
        progress: bool = True,
        overlap: timedelta = OVERLAP,
        commit_every: int = COMMIT_EVERY_DOCS,
        wait: float = 0.0,
    ) -> int:
        """Index papers added or changed since the last run; returns the number of documents written.

        With ``rebuild`` (or when the index is missing, unreadable or of an older format) a new
        index is built from all papers while the old one keeps serving searches. Interrupting
        (Ctrl-C) keeps what was committed; the next call resumes from there. ``overlap``: how far
        before the watermark changes are re-read (late commits); ``commit_every``: documents per
        commit (readers see each commit). Raises :class:`LexicalIndexBusy` when another process is
        updating for longer than ``wait`` seconds.
        """

        def rows(since: Watermark | None) -> tuple[int | None, Iterable[dict[str, Any]]]:
            return count_papers_since(db, since), iter_papers_since(db, since)

        return self._run(
            rows, rebuild=rebuild, progress=progress, overlap=overlap, commit_every=commit_every, wait=wait
        )

    def build_from_rows(
        self, rows: Iterable[dict[str, Any]], *, total: int | None = None, progress: bool = True
    ) -> int:
        """Build a fresh index from row dicts (the keys of ``iter_papers_since``) instead of the
        database, then switch to it. For evaluations and benchmarks on corpora kept in files."""
        return self._run(lambda _since: (total, rows), rebuild=True, progress=progress, fresh=True)

    def _run(
        self,
        source: Any,
        *,
        rebuild: bool,
        progress: bool,
        fresh: bool = False,
        overlap: timedelta = OVERLAP,
        commit_every: int = COMMIT_EVERY_DOCS,
        wait: float = 0.0,
    ) -> int:
        with self._update_lock(wait):
            state = self._read_state() or _State()
            if fresh:
                state.building = None
            if state.building is not None and not self._usable(state.building):
                state.building = None
            if state.building is None and (rebuild or not self._usable(state.active)):
                state.building = _new_generation()
                (self.root / state.building.dir).mkdir(parents=True)
                tantivy.Index(SCHEMA, path=str(self.root / state.building.dir), reuse=False)
                self._write_state(state)
            self._cleanup(state)
            target = state.building or state.active
            assert target is not None
            building = state.building is not None
            written = self._ingest(
                state, target, source, incremental=not building, progress=progress, overlap=overlap,
                commit_every=commit_every,
            )  # fmt: skip
            if building:
                state.active, state.building = target, None
                self._write_state(state)
                self._cleanup(state)
                log.info("lexical index: switched to %s (%d documents)", target.dir, target.docs_written)
            return written

    def _ingest(
        self,
        state: _State,
        gen: _Generation,
        source: Any,
        *,
        incremental: bool,
        progress: bool,
        overlap: timedelta = OVERLAP,
        commit_every: int = COMMIT_EVERY_DOCS,
    ) -> int:
        index = self._open(gen)
        since = gen.watermark
        if incremental and since is not None:
            since = (since[0] - overlap, "")
        total, rows = source(since)
        try:
            writer = index.writer(self.writer_heap_mb * 1_000_000, self.writer_threads)
        except ValueError as exc:
            if "LockBusy" in str(exc):
                raise LexicalIndexBusy("the lexical index is locked by another writer; try again later") from exc
            raise
        resumed = gen.watermark is not None  # docs of the last batch may be in the index already
        written = pending = 0
        last_commit = time.monotonic()

        def commit(watermark: Watermark | None) -> None:
            nonlocal pending, last_commit
            # Rows re-read from the overlap window lie before the watermark: it never moves back.
            if watermark is not None and gen.watermark is not None and watermark <= gen.watermark:
                watermark = None
            if not pending and watermark is None:
                return  # nothing new: leave the files (and the readers) alone
            writer.commit()
            if watermark is not None:
                gen.watermark = watermark
            gen.docs_written += pending
            pending = 0
            last_commit = time.monotonic()
            self._write_state(state)

        watermark: Watermark | None = None
        bar = _progress(progress, total, "lexical index")
        try:
            for batch in _batches(rows, BATCH_SIZE):
                skip = _unchanged(index, batch, gen.watermark) if incremental and gen.watermark else set()
                for row in batch:
                    if row["id"] in skip:
                        continue
                    if resumed or incremental:
                        writer.delete_documents_by_term("id", row["id"])
                    writer.add_document(make_document(row))
                    written += 1
                    pending += 1
                last = batch[-1]
                if last.get("modified_at") is not None:
                    watermark = (last["modified_at"], last["id"])
                bar.advance(len(batch))
                if pending >= commit_every or time.monotonic() - last_commit > COMMIT_EVERY_SECONDS:
                    commit(watermark)
            commit(watermark)
        except KeyboardInterrupt:
            # Keep what was written (rows arrive in watermark order, so the resume point is exact).
            commit(watermark)
            raise
        except BaseException:
            writer.rollback()
            raise
        finally:
            bar.close()
            writer.wait_merging_threads()
        return written


def _batches(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _unchanged(index: tantivy.Index, batch: list[dict[str, Any]], watermark: Watermark) -> set[str]:
    """Ids in ``batch`` (re-read because of the overlap window) whose index copy is current."""
    candidates = {
        r["id"]: micros(r["modified_at"]) for r in batch if r.get("modified_at") and r["modified_at"] <= watermark[0]
    }
    if not candidates:
        return set()
    searcher = index.searcher()
    hits = searcher.search(tantivy.Query.term_set_query(SCHEMA, "id", list(candidates)), len(candidates) * 2).hits
    addresses = [a for _, a in hits]
    stamps = searcher.fast_field_values("modified_us", addresses) if addresses else []
    same: set[str] = set()
    for address, stamp in zip(addresses, stamps, strict=True):
        pid = searcher.doc(address).get_first("id")
        if isinstance(pid, str) and pid in candidates and stamp == candidates[pid]:
            same.add(pid)
    return same


class _Bar:
    def __init__(self, progress: Any, task: Any) -> None:
        self.progress, self.task = progress, task

    def advance(self, n: int) -> None:
        if self.progress is not None:
            self.progress.advance(self.task, n)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def _progress(enabled: bool, total: int | None, label: str) -> _Bar:
    if not enabled:
        return _Bar(None, None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=False)
    task = bar.add_task(label, total=total)
    bar.start()
    return _Bar(bar, task)
