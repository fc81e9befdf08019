"""SQL for the ``embeddings`` table: which papers need (re-)embedding, batch upserts, bulk loads.

Runs inside ``paperfeed index`` (finding work and writing vectors) and whenever the vector index
loads or refreshes (reading vectors). One row per paper; ``id`` is the stable integer key the
vector index uses, and an update rewrites the row in place so the key does not change.
``created_at`` is the time the vector was last *written*: updates bump it, so "rows with
``created_at >= T``" is how an index learns what changed (migration 0003 indexes it).

Bulk reads go through the driver's own cursor and ``np.frombuffer`` into one preallocated
float32 matrix: SQLAlchemy row objects would cost more than the data for a million rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from paperfeed.store import pgvector
from paperfeed.store.db import Database, utcnow
from paperfeed.store.schema import embeddings, ingest_state, papers

log = logging.getLogger(__name__)

_FETCH = 4096  # rows per driver fetch when bulk-loading


@dataclass(frozen=True)
class PaperText:
    """A paper whose vector is missing or stale: what to embed and the hash to store with it."""

    paper_id: str
    title: str
    abstract: str
    content_hash: str


@dataclass(frozen=True)
class Marker:
    """A cheap fingerprint of the table: ``max_key`` and ``last_write`` change whenever a vector is
    added or rewritten; ``count`` (None when not asked for) also reveals deletions."""

    max_key: int
    last_write: datetime | None
    count: int | None

    @property
    def rows(self) -> int:
        """The row count, for a marker taken with ``count=True`` (the default)."""
        if self.count is None:
            raise ValueError("this marker was taken without counting the rows")
        return self.count

    def writes(self) -> tuple[int, datetime | None]:
        return (self.max_key, self.last_write)


@dataclass
class VectorRows:
    """Vectors read in bulk: ``keys[i]``, ``paper_ids[i]`` and ``models[i]`` describe ``matrix[i]``."""

    keys: np.ndarray  # int64
    paper_ids: list[str]
    models: list[str]
    matrix: np.ndarray  # float32 (n, dim), L2-normalised rows
    watermark: datetime | None  # max(created_at) read *before* the scan: later writes are >= it

    def __len__(self) -> int:
        return len(self.paper_ids)


# -- what needs embedding -----------------------------------------------------------------------
def _stale_condition(model: str, redo_before: datetime | None) -> Any:
    cond = or_(
        embeddings.c.id.is_(None),
        embeddings.c.content_hash != papers.c.content_hash,
        embeddings.c.model != model,
    )
    if redo_before is not None:  # a --rebuild: everything written before it started
        cond = or_(cond, embeddings.c.created_at < redo_before)
    return cond


def count_papers(db: Database) -> int:
    with db.read() as conn:
        return int(conn.scalar(select(func.count()).select_from(papers)) or 0)


def count_to_embed(db: Database, model: str, *, redo_before: datetime | None = None) -> int:
    """How many papers have no vector for ``model``, one from older text, or one older than ``redo_before``."""
    stmt = (
        select(func.count())
        .select_from(papers.outerjoin(embeddings, embeddings.c.paper_id == papers.c.id))
        .where(_stale_condition(model, redo_before))
    )
    with db.read() as conn:
        return int(conn.scalar(stmt) or 0)


def iter_to_embed(
    db: Database, model: str, *, batch_size: int = 256, redo_before: datetime | None = None, after: str | None = None
) -> Iterator[list[PaperText]]:
    """Papers to embed, in batches, in paper-id order.

    Each batch is its own short read (keyset pagination on ``papers.id``), so no read
    transaction stays open while the caller spends seconds embedding, and a re-run after a
    crash naturally resumes: papers already written no longer qualify.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    last = after
    while True:
        stmt = (
            select(papers.c.id, papers.c.title, papers.c.abstract, papers.c.content_hash)
            .select_from(papers.outerjoin(embeddings, embeddings.c.paper_id == papers.c.id))
            .where(_stale_condition(model, redo_before))
            .order_by(papers.c.id)
            .limit(batch_size)
        )
        if last is not None:
            stmt = stmt.where(papers.c.id > last)
        with db.read() as conn:
            batch = [PaperText(r.id, r.title or "", r.abstract or "", r.content_hash) for r in conn.execute(stmt)]
        if not batch:
            return
        yield batch
        last = batch[-1].paper_id


# -- an interrupted --rebuild is resumed, not restarted --------------------------------------
_REBUILD = "index:rebuild"


def rebuild_mark(db: Database) -> datetime | None:
    """When the unfinished ``paperfeed index --rebuild`` started, if there is one."""
    with db.read() as conn:
        value = conn.scalar(select(ingest_state.c.cursor).where(ingest_state.c.source == _REBUILD))
    return datetime.fromisoformat(value) if value else None


def set_rebuild_mark(db: Database, started: datetime) -> None:
    with db.write() as conn:
        conn.execute(delete(ingest_state).where(ingest_state.c.source == _REBUILD))
        conn.execute(insert(ingest_state).values(source=_REBUILD, cursor=started.isoformat(), updated_at=utcnow()))


def clear_rebuild_mark(db: Database) -> None:
    with db.write() as conn:
        conn.execute(delete(ingest_state).where(ingest_state.c.source == _REBUILD))


# -- writes -------------------------------------------------------------------------------------
def _check_vectors(vectors: np.ndarray, n: int) -> np.ndarray:
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ValueError(f"expected {n} vectors as an (n, dim) array, got shape {arr.shape}")
    if arr.shape[1] < 1:
        raise ValueError("vectors must have at least one dimension")
    if not np.isfinite(arr).all():
        raise ValueError("vectors contain NaN or infinity")
    norms = np.linalg.norm(arr, axis=1)
    if (norms < 1e-6).any():
        raise ValueError("vectors must not be all zeros")
    if np.abs(norms - 1.0).max() > 1e-3:  # cosine search relies on unit vectors
        arr = arr / norms[:, None]
    return arr


def upsert_vectors(db: Database, model: str, items: Sequence[tuple[str, str]], vectors: np.ndarray) -> int:
    """Store one vector per ``(paper_id, content_hash)`` in ONE transaction; returns rows written.

    An existing row is rewritten in place (same key). Papers deleted meanwhile are skipped. On a
    pgvector database the same statement writes the ``hvec`` column (store/pgvector.py), so the
    vector PostgreSQL searches is current as soon as the transaction commits.
    """
    if not items:
        return 0
    arr = _check_vectors(vectors, len(items))
    now = utcnow()
    latest: dict[str, dict[str, Any]] = {}  # a paper twice in one batch: the last one wins
    for (paper_id, content_hash), vec in zip(items, arr, strict=True):
        latest[paper_id] = {
            "paper_id": paper_id,
            "model": model,
            "content_hash": content_hash,
            "vector": vec.tobytes(),
            "created_at": now,
            "_vec": vec,
        }
    with db.write() as conn:
        present = set(conn.scalars(select(papers.c.id).where(papers.c.id.in_(list(latest)))))
        rows = [r for pid, r in latest.items() if pid in present]
        if rows:
            _upsert(conn, rows)
    return len(rows)


def _upsert(conn: Connection, rows: list[dict[str, Any]]) -> None:
    dialect = conn.dialect.name
    vecs = [r.pop("_vec") for r in rows]
    if dialect in ("sqlite", "postgresql"):
        table, cols = embeddings, ["model", "content_hash", "vector", "created_at"]
        if dialect == "postgresql" and pgvector.has_column(conn):
            pgvector.check_dim(len(vecs[0]))
            table, cols = pgvector.upsert_table, [*cols, pgvector.COLUMN]
            rows = [{**r, pgvector.COLUMN: v} for r, v in zip(rows, vecs, strict=True)]
        ins = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(table)
        stmt = ins.on_conflict_do_update(
            index_elements=[table.c.paper_id], set_={c: ins.excluded[c] for c in cols}
        )
        conn.execute(stmt, rows)
        return
    # Any other backend: update what exists, insert the rest.
    wanted = [r["paper_id"] for r in rows]
    existing = set(conn.scalars(select(embeddings.c.paper_id).where(embeddings.c.paper_id.in_(wanted))))
    upd = [{**r, "pid": r["paper_id"]} for r in rows if r["paper_id"] in existing]
    if upd:
        conn.execute(
            update(embeddings)
            .where(embeddings.c.paper_id == bindparam("pid"))
            .values(
                model=bindparam("model"),
                content_hash=bindparam("content_hash"),
                vector=bindparam("vector"),
                created_at=bindparam("created_at"),
            ),
            upd,
        )
    new = [r for r in rows if r["paper_id"] not in existing]
    if new:
        conn.execute(embeddings.insert(), new)


# -- cheap reads --------------------------------------------------------------------------------
def marker(db: Database, *, count: bool = True) -> Marker:
    """Max key and last write time (two index lookups, O(log n)); the row count if asked, which
    scans an index (SQLite) or the table (PostgreSQL): ~0.5 s at a million rows there."""
    # One scalar subquery per aggregate: SQLite only turns a *lone* max() into an index lookup.
    cols = [
        select(func.max(embeddings.c.id)).scalar_subquery(),
        select(func.max(embeddings.c.created_at)).scalar_subquery(),
    ]
    if count:
        cols.append(select(func.count(embeddings.c.id)).scalar_subquery())
    with db.read() as conn:
        row = conn.execute(select(*cols)).one()
    return Marker(int(row[0] or 0), row[1], int(row[2] or 0) if count else None)


def count_vectors(db: Database, model: str | None = None) -> int:
    stmt = select(func.count()).select_from(embeddings)
    if model is not None:
        stmt = stmt.where(embeddings.c.model == model)
    with db.read() as conn:
        return int(conn.scalar(stmt) or 0)


def models(db: Database) -> dict[str, int]:
    """Vector count per model name."""
    with db.read() as conn:
        rows = conn.execute(select(embeddings.c.model, func.count()).group_by(embeddings.c.model))
        return {r[0]: int(r[1]) for r in rows}


def latest_model(db: Database) -> str | None:
    """The model of the most recently written vector (what ``paperfeed index`` last used)."""
    with db.read() as conn:
        return conn.scalar(select(embeddings.c.model).order_by(embeddings.c.created_at.desc()).limit(1))


def all_keys(db: Database) -> np.ndarray:
    """Every key in the table, any model (spots deleted rows)."""
    with db.read() as conn:
        return np.fromiter(conn.scalars(select(embeddings.c.id)), dtype=np.int64)


def get_vector(db: Database, paper_id: str, model: str) -> np.ndarray | None:
    with db.read() as conn:
        blob = conn.scalar(
            select(embeddings.c.vector).where(embeddings.c.paper_id == paper_id, embeddings.c.model == model)
        )
    return None if blob is None else np.frombuffer(bytes(blob), dtype=np.float32).copy()


def keys_for(db: Database, paper_ids: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    with db.read() as conn:
        for i in range(0, len(paper_ids), 500):
            chunk = list(paper_ids[i : i + 500])
            for key, pid in conn.execute(
                select(embeddings.c.id, embeddings.c.paper_id).where(embeddings.c.paper_id.in_(chunk))
            ):
                out[pid] = int(key)
    return out


def paper_ids_for(db: Database, keys: Sequence[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    with db.read() as conn:
        for i in range(0, len(keys), 500):
            chunk = [int(k) for k in keys[i : i + 500]]
            stmt = select(embeddings.c.id, embeddings.c.paper_id).where(embeddings.c.id.in_(chunk))
            for key, pid in conn.execute(stmt):
                out[int(key)] = pid
    return out


# -- bulk reads ---------------------------------------------------------------------------------
def load_vectors(
    db: Database,
    model: str | None,
    *,
    after_key: int | None = None,
    since: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> VectorRows:
    """Vectors as one contiguous float32 matrix, in table order (not sorted: sorting a million
    1.5 KB rows costs PostgreSQL an on-disk sort).

    ``model=None`` reads every model (incremental refreshes need rows that *left* a model too).
    With ``after_key``/``since`` only rows with ``id > after_key`` or ``created_at >= since``
    are read. Rows whose blob has the wrong length are skipped with a warning.
    """
    with db.read() as conn:
        watermark = conn.scalar(select(func.max(embeddings.c.created_at)))
        # A full read sizes the matrix once from the row count (index-only: an upper bound); a
        # filtered read (refreshes) is usually tiny and grows from its first chunk instead of
        # reserving the whole table's 1.5 GB at a million vectors.
        full = after_key is None and since is None
        capacity = int(conn.scalar(select(func.count(embeddings.c.id))) or 0) if full else 0
    sql, params = _vector_query(model, after_key, since)

    keys = np.empty(0, dtype=np.int64)
    matrix: np.ndarray | None = None
    paper_ids: list[str] = []
    model_names: list[str] = []
    n = 0
    bad = 0
    with db.read() as conn:
        for chunk in _driver_rows(conn, sql, params):
            if matrix is None:
                dim = len(chunk[0][3]) // 4
                if dim < 1:
                    raise ValueError("embeddings table holds an empty vector")
                matrix = np.empty((max(capacity, len(chunk)), dim), dtype=np.float32)
                keys = np.empty(matrix.shape[0], dtype=np.int64)
            dim = matrix.shape[1]
            ids, pids, mods, blobs = zip(*chunk, strict=True)  # column-wise at C speed
            if set(map(len, blobs)) != {dim * 4}:
                good = [i for i, b in enumerate(blobs) if len(b) == dim * 4]
                bad += len(chunk) - len(good)
                ids, pids, mods, blobs = (tuple(col[i] for i in good) for col in (ids, pids, mods, blobs))
            m = len(ids)
            if n + m > matrix.shape[0]:  # rows added after we counted: grow
                new_cap = max(n + m, matrix.shape[0] * 2)
                matrix = np.resize(matrix, (new_cap, dim))
                keys = np.resize(keys, new_cap)
            if m:
                # One join, one copy straight into the matrix's memory.
                flat = matrix.reshape(-1).view(np.uint8).data
                flat[n * dim * 4 : (n + m) * dim * 4] = b"".join(blobs)
                keys[n : n + m] = ids
                paper_ids.extend(pids)
                model_names.extend(mods)
                n += m
            if progress is not None:
                progress(len(chunk))
    if bad:
        log.warning("skipped %d embeddings with a wrong vector length", bad)
    if matrix is None:
        matrix = np.empty((0, 0), dtype=np.float32)
    elif n < matrix.shape[0]:
        # Keep a tight copy unless nearly full (a copy of 1.5 GB is not free).
        matrix = matrix[:n].copy() if n < 0.9 * matrix.shape[0] else matrix[:n]
    return VectorRows(keys[:n].copy(), paper_ids, model_names, matrix, watermark)


def _vector_query(model: str | None, after_key: int | None, since: datetime | None) -> tuple[str, list[Any]]:
    """SQL (with ``{p}`` placeholders) and parameters for the rows ``load_vectors`` describes."""
    where: list[str] = []
    params: list[Any] = []
    if model is not None:
        where.append("model = {p}")
        params.append(model)
    recent: list[str] = []
    if after_key is not None:
        recent.append("id > {p}")
        params.append(int(after_key))
    if since is not None:
        recent.append("created_at >= {p}")
        params.append(since)
    if recent:
        where.append("(" + " OR ".join(recent) + ")")
    sql = "SELECT id, paper_id, model, vector FROM embeddings"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql, params


def iter_vectors(
    db: Database, model: str | None, *, after_key: int | None = None, since: datetime | None = None
) -> Iterator[VectorRows]:
    """The rows of :func:`load_vectors` in chunks of a few thousand, so a caller that keeps only
    some of them (a refresh dropping rows it already holds) never holds them all at once. Every
    chunk carries the same ``watermark``, read before the scan."""
    with db.read() as conn:
        watermark = conn.scalar(select(func.max(embeddings.c.created_at)))
    sql, params = _vector_query(model, after_key, since)
    dim = 0
    bad = 0
    with db.read() as conn:
        for chunk in _driver_rows(conn, sql, params):
            dim = dim or len(chunk[0][3]) // 4  # the first row sets the width, as in load_vectors
            good = [r for r in chunk if dim and len(r[3]) == dim * 4]
            bad += len(chunk) - len(good)
            if good:
                ids, pids, mods, blobs = zip(*good, strict=True)
                matrix = np.frombuffer(bytearray(b"".join(blobs)), dtype=np.float32).reshape(len(good), dim)
                yield VectorRows(np.asarray(ids, dtype=np.int64), list(pids), list(mods), matrix, watermark)
    if bad:
        log.warning("skipped %d embeddings with a wrong vector length", bad)


def concat_rows(parts: Sequence[VectorRows], watermark: datetime | None) -> VectorRows:
    """One :class:`VectorRows` from chunks (an empty one when there are none)."""
    if not parts:
        return VectorRows(np.empty(0, np.int64), [], [], np.empty((0, 0), np.float32), watermark)
    return VectorRows(
        np.concatenate([p.keys for p in parts]),
        [pid for p in parts for pid in p.paper_ids],
        [m for p in parts for m in p.models],
        np.concatenate([p.matrix for p in parts]) if len(parts) > 1 else parts[0].matrix,
        watermark,
    )


def _driver_rows(conn: Connection, sql: str, params: list[Any]) -> Iterator[list[tuple[Any, ...]]]:
    """Chunks of raw ``(id, paper_id, model, vector)`` tuples straight from the DB driver."""
    dialect = conn.dialect
    if dialect.name == "sqlite":
        # Bind datetimes exactly as SQLAlchemy stores them on SQLite (ISO text).
        proc = embeddings.c.created_at.type.bind_processor(dialect)
        args = [proc(p) if isinstance(p, datetime) and proc else p for p in params]
        cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]  # sqlite3 connection here, typed as any DBAPI
        try:
            cur.execute(sql.format(p="?"), args)
            while rows := cur.fetchmany(_FETCH):
                yield rows
        finally:
            cur.close()
    elif dialect.name == "postgresql" and dialect.driver == "psycopg":
        # A server-side cursor in binary mode: bytea arrives as raw bytes, not hex text.
        raw = conn.connection.driver_connection
        with raw.cursor(name="paperfeed_vectors", binary=True) as cur:  # type: ignore[union-attr]  # psycopg connection, typed as any DBAPI
            cur.itersize = _FETCH
            cur.execute(sql.format(p="%s"), params)
            while rows := cur.fetchmany(_FETCH):
                yield rows
    else:
        from sqlalchemy import text

        names = {f"p{i}": v for i, v in enumerate(params)}
        counter = iter(range(len(params)))
        stmt = text(sql.replace("{p}", "{}").format(*(f":p{next(counter)}" for _ in params)))
        result = conn.execution_options(stream_results=True).execute(stmt, names)
        for part in result.partitions(_FETCH):
            yield [tuple(r) for r in part]
