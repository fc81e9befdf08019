"""pgvector: paper vectors inside PostgreSQL (``halfvec`` column + HNSW index), when the database has it.

Where the PostgreSQL server offers the ``vector`` extension (pgvector >= 0.7, for ``halfvec``), the
``embeddings`` table gets one more column, ``hvec halfvec(384)``, next to the float32 ``vector``
blob, and an HNSW index over it (cosine). Every process then asks PostgreSQL for nearest
neighbours instead of loading its own usearch index: a vector written by any process is found by
every other at once, and web processes hold no vector memory.

The column lives in the same row as the blob and is written by the same statement
(:func:`upsert_table`), so the two never disagree and deleting a paper deletes both. The blob
stays: SQLite, ``paperfeed db copy`` and the per-process index read it, and the column can be
filled again from it (:func:`fill_missing`).

Set-up (:func:`prepare`, :func:`create_index`, :func:`fill_missing`) is idempotent. Migration 0019
runs it where the extension is available and does nothing elsewhere (SQLite, PostgreSQL
without pgvector); ``paperfeed db enable-pgvector`` runs it on demand, e.g. after an operator
installed pgvector later or on a database with many vectors, where building the HNSW index is
left out of the migration (:data:`MIGRATION_MAX_ROWS`). Whether search uses this path is decided
in one place, ``search/vector_backend.py``, from :func:`state`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Column, Connection, MetaData, Table, text
from sqlalchemy.types import UserDefinedType

from paperfeed.store.db import Database
from paperfeed.store.schema import embeddings

log = logging.getLogger(__name__)

DIM = 384  # all-MiniLM-L6-v2, the product's one encoder; an HNSW index needs a fixed width
COLUMN = "hvec"
HNSW_INDEX = "ix_embeddings_hvec"
MISSING_INDEX = "ix_embeddings_hvec_missing"  # partial: rows whose hvec is still to fill (usually none)
MIN_VERSION = (0, 7, 0)  # halfvec
ITERATIVE_SCAN = (0, 8, 0)  # hnsw.iterative_scan: filtered queries still return k rows
MAX_EF_SEARCH = 1000  # pgvector's limit for hnsw.ef_search
# The migration fills and indexes at most this many existing vectors itself (seconds); above it the
# HNSW build can take long, so it is left to `paperfeed db enable-pgvector` (progress, resumable).
MIGRATION_MAX_ROWS = 20_000
FILL_BATCH = 2_000
# HNSW build settings, as search/hnsw.DEFAULT_PARAMS builds the per-process index (a test keeps them equal).
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 128


class PgVectorUnavailable(RuntimeError):
    """The database cannot hold vectors: not PostgreSQL, or no pgvector on the server."""


class HalfVec(UserDefinedType[np.ndarray]):
    """pgvector's ``halfvec(n)``, bound from a numpy vector as pgvector's text form ``[x,y,...]``."""

    cache_ok = True

    def __init__(self, dim: int = DIM) -> None:
        self.dim = dim

    def get_col_spec(self, **kw: Any) -> str:
        return f"halfvec({self.dim})"

    def bind_processor(self, dialect: Any) -> Callable[[Any], str | None]:
        return lambda value: None if value is None else literal(value)


def literal(vec: np.ndarray | Sequence[float]) -> str:
    """pgvector's text form of a vector (8 significant digits: more than half precision keeps)."""
    return "[" + ",".join(f"{x:.8g}" for x in np.asarray(vec, dtype=np.float32).tolist()) + "]"


# ``embeddings`` as it is on a pgvector database: the same columns plus ``hvec``. Writes use it so
# that the blob and the halfvec go into the row in one statement (store/embeddings.py).
upsert_table = Table(
    "embeddings",
    MetaData(),
    *(c._copy() for c in embeddings.columns),
    Column(COLUMN, HalfVec(DIM), nullable=True),
)


# -- state ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PgVectorState:
    """What the database offers; ``ready`` is the rule for using it (search/vector_backend.py)."""

    postgres: bool
    available: str | None = None  # version the server could install (pg_available_extensions)
    installed: str | None = None  # version created in this database
    column: bool = False
    indexed: bool = False  # the HNSW index exists and is valid

    @property
    def version(self) -> tuple[int, ...]:
        return _version(self.installed or self.available)

    @property
    def ready(self) -> bool:
        return bool(self.installed) and self.column and self.indexed

    def describe(self) -> str:
        if not self.postgres:
            return "not PostgreSQL: vectors are searched in each process (usearch)"
        if self.ready:
            return f"pgvector {self.installed}: vectors are searched in PostgreSQL (HNSW index {HNSW_INDEX})"
        if self.installed and self.column:
            return (
                f"pgvector {self.installed} installed but its HNSW index is not built: "
                "run `paperfeed db enable-pgvector`; vectors are searched in each process meanwhile"
            )
        if self.available:
            return (
                f"pgvector {self.available} is available but not enabled: run `paperfeed db enable-pgvector`; "
                "vectors are searched in each process meanwhile"
            )
        return "PostgreSQL without pgvector: vectors are searched in each process (usearch)"


def _version(value: str | None) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", value or "")[:3])


def conn_state(conn: Connection) -> PgVectorState:
    """:class:`PgVectorState` read on an open connection (a few catalog lookups)."""
    if conn.dialect.name != "postgresql":
        return PgVectorState(postgres=False)
    available, installed = conn.execute(
        text("SELECT default_version, installed_version FROM pg_available_extensions WHERE name = 'vector'")
    ).one_or_none() or (None, None)
    column = _column_exists(conn)
    indexed = bool(
        conn.scalar(
            text(
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = :n AND c.relnamespace = current_schema()::regnamespace"
            ),
            {"n": HNSW_INDEX},
        )
    )
    return PgVectorState(postgres=True, available=available, installed=installed, column=column, indexed=indexed)


def state(db: Database) -> PgVectorState:
    if db.is_sqlite:
        return PgVectorState(postgres=False)
    with db.read() as conn:
        return conn_state(conn)


def _column_exists(conn: Connection) -> bool:
    return bool(
        conn.scalar(
            text(
                "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('embeddings') "
                "AND attname = :c AND NOT attisdropped"
            ),
            {"c": COLUMN},
        )
    )


def has_column(conn: Connection) -> bool:
    """Whether writes must fill ``hvec`` (checked inside each write transaction: one catalog lookup,
    so a process started before ``paperfeed db enable-pgvector`` writes it too)."""
    return conn.dialect.name == "postgresql" and _column_exists(conn)


# -- set-up -------------------------------------------------------------------------------------
def prepare(conn: Connection) -> PgVectorState:
    """Create the extension, the column and the index of rows to fill, where the server offers
    pgvector; a no-op returning the state elsewhere. Idempotent; runs in the caller's transaction
    (a refused ``CREATE EXTENSION``, e.g. on a managed server that allows it only to an admin, is
    rolled back to a savepoint, logged, and leaves everything as it was)."""
    st = conn_state(conn)
    if not st.postgres or not (st.available or st.installed):
        return st
    if _version(st.installed or st.available) < MIN_VERSION:
        log.warning("pgvector %s is older than 0.7 (no halfvec): not used", st.installed or st.available)
        return st
    if not st.installed:
        try:
            with conn.begin_nested():
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        except Exception as exc:  # noqa: BLE001 - any refusal leaves the database as it was
            log.warning("pgvector is available but CREATE EXTENSION vector failed (%s); not used", exc)
            return conn_state(conn)
    if not st.column:
        conn.execute(text(f"ALTER TABLE embeddings ADD COLUMN IF NOT EXISTS {COLUMN} halfvec({DIM})"))
    conn.execute(text(f"CREATE INDEX IF NOT EXISTS {MISSING_INDEX} ON embeddings (id) WHERE {COLUMN} IS NULL"))
    return conn_state(conn)


def create_index(
    conn: Connection,
    *,
    m: int = HNSW_M,
    ef_construction: int = HNSW_EF_CONSTRUCTION,
    maintenance_work_mem: str | None = None,
) -> bool:
    """Build the HNSW index (cosine) unless it exists; True when it was built now.

    ``maintenance_work_mem`` (e.g. ``"2GB"``) lets the graph be built in memory: a build that
    outgrows it goes on much more slowly on disk. Runs in the caller's transaction."""
    if conn_state(conn).indexed:
        return False
    if maintenance_work_mem:
        conn.execute(text("SELECT set_config('maintenance_work_mem', :v, true)"), {"v": maintenance_work_mem})
    conn.execute(text(f"DROP INDEX IF EXISTS {HNSW_INDEX}"))  # an invalid one left by a failed build
    conn.execute(
        text(
            f"CREATE INDEX {HNSW_INDEX} ON embeddings USING hnsw ({COLUMN} halfvec_cosine_ops) "
            f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)})"
        )
    )
    return True


def count_missing(db: Database) -> int:
    """Rows whose ``hvec`` is not filled yet (an index lookup on the partial index)."""
    with db.read() as conn:
        return int(conn.scalar(text(f"SELECT count(*) FROM embeddings WHERE {COLUMN} IS NULL")) or 0)


def fill_missing_conn(conn: Connection, *, batch: int = FILL_BATCH, after: int = 0) -> tuple[int, int, int]:
    """Fill up to ``batch`` rows of ``hvec`` from their blobs, keys after ``after``, in the caller's
    transaction. Returns ``(filled, skipped, last_key)``; ``last_key`` 0 when nothing was left.
    Rows whose blob is not a ``DIM``-wide float32 vector are skipped (and stay out of pgvector)."""
    rows = conn.execute(
        text(f"SELECT id, vector FROM embeddings WHERE {COLUMN} IS NULL AND id > :a ORDER BY id LIMIT :n"),
        {"a": after, "n": batch},
    ).all()
    if not rows:
        return 0, 0, 0
    good = [(int(k), bytes(b)) for k, b in rows if len(b) == DIM * 4]
    if good:
        matrix = np.frombuffer(b"".join(b for _, b in good), dtype=np.float32).reshape(len(good), DIM)
        conn.execute(
            text(f"UPDATE embeddings SET {COLUMN} = CAST(:h AS halfvec({DIM})) WHERE id = :k"),
            [{"k": k, "h": literal(vec)} for (k, _), vec in zip(good, matrix, strict=True)],
        )
    return len(good), len(rows) - len(good), int(rows[-1][0])


def fill_missing(db: Database, *, progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Fill every missing ``hvec`` from its blob, one committed batch at a time (an interrupted
    fill resumes where it stopped). Returns ``(filled, skipped)``."""
    filled = skipped = 0
    after = 0
    while True:
        with db.write() as conn:
            n, bad, after = fill_missing_conn(conn, after=after)
        if not after:
            break
        filled += n
        skipped += bad
        if progress is not None:
            progress(n + bad)
    if skipped:
        log.warning("%d vectors are not %d-dimensional: they stay out of pgvector", skipped, DIM)
    return filled, skipped


@dataclass(frozen=True)
class EnableReport:
    state: PgVectorState
    filled: int  # vectors copied into hvec now
    skipped: int  # vectors of another width, left out
    indexed: bool  # the HNSW index was built now (False: it existed)
    index_seconds: float


def enable(
    db: Database,
    *,
    maintenance_work_mem: str | None = "1GB",
    progress: Callable[[int], None] | None = None,
) -> EnableReport:
    """``paperfeed db enable-pgvector``: set up pgvector, fill ``hvec`` for every vector, build
    the HNSW index. Idempotent and resumable (filled batches are committed; the index is built
    last, so search switches over only once it is complete). :class:`PgVectorUnavailable` with
    the reason where the database cannot do it."""
    if db.is_sqlite:
        raise PgVectorUnavailable("pgvector needs PostgreSQL: this database is SQLite (PAPERFEED_DATABASE_URL)")
    with db.write() as conn:
        st = prepare(conn)
    if not (st.available or st.installed):
        raise PgVectorUnavailable(
            "this PostgreSQL server has no pgvector extension: install it (Debian/Ubuntu: the "
            "postgresql-NN-pgvector package; managed PostgreSQL: allow the `vector` extension) and run this again"
        )
    if st.version < MIN_VERSION:
        raise PgVectorUnavailable(f"pgvector {st.installed or st.available} is too old: 0.7 or newer is needed")
    if not st.column:
        raise PgVectorUnavailable(
            "CREATE EXTENSION vector was refused (see the log): run it once as a database owner or "
            "administrator, then run this again"
        )
    filled, skipped = fill_missing(db, progress=progress)
    t0 = time.perf_counter()
    with db.write() as conn:
        built = create_index(conn, maintenance_work_mem=maintenance_work_mem)
    return EnableReport(state(db), filled, skipped, built, time.perf_counter() - t0)


def migrate(conn: Connection) -> PgVectorState:
    """Migration 0019: set up pgvector where the server offers it; fill and index the existing
    vectors too when there are at most :data:`MIGRATION_MAX_ROWS` (otherwise say how to finish)."""
    st = prepare(conn)
    if not st.column or st.indexed:
        return st
    rows = int(conn.scalar(text("SELECT count(*) FROM embeddings")) or 0)
    if rows > MIGRATION_MAX_ROWS:
        log.warning(
            "pgvector is set up but %d vectors are still to copy into it: run `paperfeed db enable-pgvector` "
            "(vectors are searched in each process until it finishes)",
            rows,
        )
        return st
    after = 0
    while True:
        _n, _bad, after = fill_missing_conn(conn, after=after)
        if not after:
            break
    create_index(conn)
    return conn_state(conn)


def check_dim(dim: int) -> None:
    """Writes to a pgvector database take ``DIM``-wide vectors only; say so clearly otherwise."""
    if dim != DIM:
        raise ValueError(
            f"this database keeps vectors in pgvector as halfvec({DIM}); a {dim}-dimensional model cannot be "
            "stored there (use the product's encoder, or a database without pgvector)"
        )


# -- queries ------------------------------------------------------------------------------------
def nearest(
    db: Database,
    model: str,
    query: np.ndarray,
    k: int,
    *,
    ef_search: int,
    exclude: Sequence[str] = (),
    iterative: bool = True,
) -> list[tuple[str, float]]:
    """``(paper_id, cosine)`` of the ``k`` nearest vectors of ``model`` to ``query``, best first.

    Runs on the HNSW index with ``hnsw.ef_search`` = max(``ef_search``, ``k``) (capped at
    pgvector's 1,000); with ``iterative`` (pgvector >= 0.8) the scan goes on past that until
    ``k`` rows passed the filters (another model's rows, ``exclude``), in exact distance order."""
    if k <= 0:
        return []
    q = literal(query)
    where = f"model = :model AND {COLUMN} IS NOT NULL"
    params: dict[str, Any] = {"q": q, "model": model, "k": int(k)}
    if exclude:
        where += " AND NOT (paper_id = ANY(:ex))"
        params["ex"] = list(exclude)
    sql = text(
        f"SELECT paper_id, 1 - ({COLUMN} <=> CAST(:q AS halfvec({DIM}))) FROM embeddings WHERE {where} "
        f"ORDER BY {COLUMN} <=> CAST(:q AS halfvec({DIM})) LIMIT :k"
    )
    ef = str(min(MAX_EF_SEARCH, max(int(ef_search), int(k))))
    with db.read() as conn:  # one transaction: SET LOCAL-like settings hold for this query only
        if iterative:
            conn.execute(
                text("SELECT set_config('hnsw.ef_search', :ef, true), set_config('hnsw.iterative_scan', :it, true)"),
                {"ef": ef, "it": "strict_order"},
            )
        else:
            conn.execute(text("SELECT set_config('hnsw.ef_search', :ef, true)"), {"ef": ef})
        return [(pid, float(sim)) for pid, sim in conn.execute(sql, params)]


def any_vectors(db: Database, model: str) -> bool:
    """Whether pgvector holds at least one vector of ``model`` (one index probe)."""
    with db.read() as conn:
        return bool(
            conn.scalar(
                text(f"SELECT EXISTS (SELECT 1 FROM embeddings WHERE model = :m AND {COLUMN} IS NOT NULL)"),
                {"m": model},
            )
        )
