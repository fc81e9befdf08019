"""``paperfeed index``: bring the search indexes up to date with the papers table.

Runs after imports (by hand, cron, or the scheduler): (a) updates the lexical index, (b) embeds
papers that are new or whose title/abstract changed (``papers.content_hash`` differs from the
stored vector's) and never re-embeds unchanged ones, (c) builds or incrementally updates the
HNSW file once the collection is above ``settings.ann_threshold``.

Embedding commits every batch, so a kill loses at most one batch and a re-run resumes where it
stopped. ``--rebuild`` re-embeds everything: its start time is recorded in the database, so an
interrupted rebuild is resumed (not restarted) by the next run. One run at a time (a file lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from paperfeed.config import Settings
from paperfeed.search import hnsw, vector_backend
from paperfeed.search import vectors as vx
from paperfeed.store import embeddings as store
from paperfeed.store import pgvector
from paperfeed.store.db import Database, utcnow

log = logging.getLogger(__name__)

# An HNSW graph with many removed nodes searches worse: past this share, build it afresh.
MAX_TOMBSTONE_SHARE = 0.1
LEXICAL_LOCK_WAIT = 60.0  # seconds `paperfeed index` waits for another lexical updater to finish


class IndexerBusy(RuntimeError):
    """Another ``paperfeed index`` holds the lock."""


class EncoderLike(Protocol):
    model_name: str

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray: ...


@dataclass
class IndexReport:
    lexical: int | None  # documents the lexical index updated (None: not available)
    embedded: int
    unchanged: int
    seconds: float
    embed_seconds: float
    ann: str  # what happened to the HNSW index, in words
    resumed_rebuild: bool = False

    @property
    def papers_per_second(self) -> float:
        return self.embedded / self.embed_seconds if self.embed_seconds > 0 else 0.0


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f} {task.fields.get('unit', 'it')}/s" if speed else "", style="progress.data.speed")


def _progress(console: Console | None, enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    )


@contextlib.contextmanager
def _run_lock(settings: Settings) -> Iterator[None]:
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.index_dir / "indexer.lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise IndexerBusy("another `paperfeed index` is running") from exc
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _paper_text(title: str, abstract: str) -> str:
    from paperfeed.search.encoder import paper_text

    return paper_text(title, abstract)


def run_index(
    settings: Settings,
    db: Database,
    *,
    rebuild: bool = False,
    batch_size: int = 256,
    progress: bool = True,
    console: Console | None = None,
    encoder: EncoderLike | None = None,
    text_of: Callable[[str, str], str] | None = None,
    params: hnsw.HnswParams = hnsw.DEFAULT_PARAMS,
) -> IndexReport:
    """Run all three steps; raises :class:`IndexerBusy` if another run holds the lock."""
    t0 = time.perf_counter()
    with _run_lock(settings):
        lexical = _update_lexical(settings, db, rebuild=rebuild, progress=progress)
        if encoder is None:
            from paperfeed.search.encoder import get_encoder

            encoder = get_encoder(settings)
        embedded, unchanged, embed_s, resumed = embed_papers(
            db,
            encoder,
            rebuild=rebuild,
            batch_size=batch_size,
            progress=progress,
            console=console,
            text_of=text_of or _paper_text,
        )
        ann = sync_ann(
            settings, db, encoder.model_name, rebuild=rebuild, params=params, progress=progress, console=console
        )
    return IndexReport(lexical, embedded, unchanged, time.perf_counter() - t0, embed_s, ann, resumed)


def _update_lexical(settings: Settings, db: Database, *, rebuild: bool, progress: bool) -> int | None:
    try:
        from paperfeed.search.lexical import LexicalIndex
    except ImportError:
        log.info("lexical index module not available; skipping it")
        return None
    # A web process's follower may hold the lock for a moment (one small catch-up): wait for it.
    return int(LexicalIndex(settings).update(db, rebuild=rebuild, progress=progress, wait=LEXICAL_LOCK_WAIT))


def embed_papers(
    db: Database,
    encoder: EncoderLike,
    *,
    rebuild: bool = False,
    batch_size: int = 256,
    progress: bool = True,
    console: Console | None = None,
    text_of: Callable[[str, str], str] = _paper_text,
    stop: Callable[[], bool] | None = None,
) -> tuple[int, int, float, bool]:
    """Embed new/changed papers, one committed batch at a time.

    Returns ``(embedded, unchanged, seconds, resumed_rebuild)``. ``stop()`` is asked before each
    batch (the pipeline's leader stops when it stops leading); a stopped run leaves the rest for
    the next one, like a killed one.
    """
    model = encoder.model_name
    redo_before = store.rebuild_mark(db)
    resumed = redo_before is not None
    if rebuild and redo_before is None:
        redo_before = utcnow()
        store.set_rebuild_mark(db, redo_before)
    if resumed:
        log.info("resuming an interrupted --rebuild started at %s", redo_before)
    total = store.count_papers(db)
    todo = store.count_to_embed(db, model, redo_before=redo_before)
    done = 0
    t0 = time.perf_counter()
    with _progress(console, progress and todo > 0) as bar:
        task = bar.add_task("embedding papers", total=todo, unit="papers")
        for batch in store.iter_to_embed(db, model, batch_size=batch_size, redo_before=redo_before):
            if stop is not None and stop():
                return done, max(0, total - todo), time.perf_counter() - t0, resumed
            texts = [text_of(p.title, p.abstract) for p in batch]
            vecs = encoder.encode(texts, batch_size=32)
            done += store.upsert_vectors(db, model, [(p.paper_id, p.content_hash) for p in batch], vecs)
            if done > (bar.tasks[0].total or 0):  # papers imported while we run
                bar.update(task, total=done)
            bar.update(task, completed=done)
    if redo_before is not None:
        store.clear_rebuild_mark(db)
    return done, max(0, total - todo), time.perf_counter() - t0, resumed


def sync_ann(
    settings: Settings,
    db: Database,
    model: str,
    *,
    rebuild: bool = False,
    params: hnsw.HnswParams = hnsw.DEFAULT_PARAMS,
    progress: bool = True,
    console: Console | None = None,
) -> str:
    """Build or incrementally update the HNSW file; returns what was done, in words.

    Where PostgreSQL searches the vectors (pgvector, ``search/vector_backend.py``) there is no
    file: the embed step already wrote each vector into the index, and only rows written by
    something else (``paperfeed db copy``, an older paperfeed) are filled in here."""
    if vector_backend.backend(db) == vector_backend.PGVECTOR:
        filled = pgvector.fill_missing(db)[0] if pgvector.count_missing(db) else 0
        return "not needed: vectors are searched in PostgreSQL (pgvector)" + (
            f"; filled {filled:,} vectors written without it" if filled else ""
        )
    files = hnsw.IndexFiles(settings.index_dir / "vectors")
    total = store.marker(db).rows
    if total <= settings.ann_threshold:
        return f"not needed: {total:,} vectors is within exact-search range (threshold {settings.ann_threshold:,})"
    with files.lock(blocking=True):
        if not rebuild:
            try:
                loaded = files.load(model, view=True)  # mapped: cheap when nothing changed
            except hnsw.CorruptIndex as exc:
                if files.stamp() is not None:
                    log.warning("HNSW index unusable (%s): rebuilding it", exc)
            else:
                done = _update_ann(files, db, model, loaded, params)
                if done is not None:
                    return done
        return _build_ann(files, db, model, params, progress=progress, console=console)


def _build_ann(
    files: hnsw.IndexFiles,
    db: Database,
    model: str,
    params: hnsw.HnswParams,
    *,
    progress: bool,
    console: Console | None,
) -> str:
    t0 = time.perf_counter()
    with _progress(console, progress) as bar:
        task = bar.add_task("reading vectors", total=store.marker(db).count, unit="vectors")
        rows = store.load_vectors(db, model, progress=lambda n: bar.advance(task, n))
        bar.update(task, completed=len(rows), total=len(rows))
        if not len(rows):
            return "no vectors for this model yet"
        task = bar.add_task("building HNSW", total=len(rows), unit="vectors")
        index = hnsw.new_index(rows.matrix.shape[1], params)
        hnsw.add_to_index(index, rows.keys, rows.matrix, progress=lambda n: bar.advance(task, n))
    files.save(
        index,
        rows.keys,
        rows.paper_ids,
        model=model,
        params=params,
        watermark=rows.watermark,
        max_key=int(rows.keys.max()),
    )
    return f"built: {len(rows):,} vectors in {time.perf_counter() - t0:.1f} s"


def _update_ann(
    files: hnsw.IndexFiles, db: Database, model: str, loaded: hnsw.Loaded, params: hnsw.HnswParams
) -> str | None:
    """Apply rows written since the last build; None when a full rebuild is the better choice."""
    man = loaded.manifest
    if any(man.get(f) != getattr(params, f) for f in ("dtype", "connectivity", "expansion_add")):
        return None  # build settings changed
    watermark = hnsw.parse_watermark(man.get("watermark"))
    since = watermark - vx.SLACK if watermark else None
    rows = store.load_vectors(db, None, after_key=int(man["max_key"]), since=since)
    index = loaded.index
    pid_of: dict[int, str] = dict(zip(loaded.keys.tolist(), loaded.paper_ids.tolist(), strict=True))
    if rows.matrix.size and rows.matrix.shape[1] != index.ndim:
        return None
    removed: list[int] = []
    add: list[int] = []
    for i, key in enumerate(rows.keys.tolist()):
        if key in pid_of:
            if rows.models[i] == model and pid_of[key] == rows.paper_ids[i]:
                # usearch takes numpy dtypes; its annotation lists only its own names.
                stored = np.asarray(index.get(key, dtype=np.float32)).reshape(-1)  # type: ignore[arg-type]  # see above
                if np.abs(stored - rows.matrix[i]).max() < 2e-3:
                    continue  # re-read within SLACK, unchanged
            removed.append(key)
            del pid_of[key]
        if rows.models[i] == model:
            add.append(i)
            pid_of[key] = rows.paper_ids[i]
    present = store.all_keys(db)
    gone = np.setdiff1d(np.fromiter(pid_of, dtype=np.int64, count=len(pid_of)), present, assume_unique=True)
    for key in gone.tolist():
        removed.append(key)
        pid_of.pop(key, None)
    if not removed and not add:
        return f"up to date: {len(pid_of):,} vectors"
    tombstones = int(man.get("tombstones", 0)) + len(removed)
    if tombstones > MAX_TOMBSTONE_SHARE * max(1, len(pid_of)):
        return None
    restored = hnsw.Index.restore(str(files.dir / man["index_file"]), view=False)  # a writable copy
    if restored is None:
        return None
    index = restored
    index.expansion_search = params.expansion_search  # type: ignore[misc]  # usearch has a setter; its missing annotation makes mypy see a read-only property
    if removed:
        index.remove(np.array(removed, dtype=np.uint64))
    if add:
        hnsw.add_to_index(index, rows.keys[add], rows.matrix[add])
    keys = np.fromiter(pid_of, dtype=np.int64, count=len(pid_of))
    files.save(
        index,
        keys,
        [pid_of[k] for k in keys.tolist()],
        model=model,
        params=params,
        watermark=rows.watermark or watermark,
        max_key=max(int(man["max_key"]), int(rows.keys.max()) if len(rows) else 0),
        extra={"tombstones": tombstones},
    )
    return f"updated: +{len(add):,} / -{len(removed):,} vectors ({len(pid_of):,} in total)"


def describe(report: IndexReport) -> dict[str, Any]:
    """The summary as plain data (for ``--json`` style output and logs)."""
    return {
        "lexical_updated": report.lexical,
        "embedded": report.embedded,
        "unchanged": report.unchanged,
        "seconds": round(report.seconds, 2),
        "papers_per_second": round(report.papers_per_second, 1),
        "hnsw": report.ann,
        "resumed_rebuild": report.resumed_rebuild,
    }
