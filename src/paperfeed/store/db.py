"""The database handle: engine set-up (SQLite pragmas, PostgreSQL), migrations, connections.

Every SQL statement in paperfeed runs through modules of this ``store`` package; everything
else receives a :class:`Database` and calls its query functions.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, CursorResult, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import NullPool

from paperfeed.config import Settings
from paperfeed.store.faults import DatabaseBusy

MIGRATIONS = Path(__file__).with_name("migrations")
WRITE_WAIT_S = 10.0  # = PRAGMA busy_timeout: how long a writer waits for the write lock
# PostgreSQL: a request never waits long on a database that is down or overloaded. Connecting
# gives up after CONNECT_TIMEOUT_S (a refused connection fails at once anyway); a request that
# finds every pooled connection busy gives up after POOL_TIMEOUT_S. Either way the web tier
# answers 503 with Retry-After (store/faults.py), and pre-ping replaces connections that died
# with a restarted server on their next checkout, so service resumes as soon as it is back.
CONNECT_TIMEOUT_S = 3
POOL_TIMEOUT_S = 5.0


def new_id(result: CursorResult[Any]) -> int:
    """The integer primary key a single-row INSERT created."""
    key = result.inserted_primary_key
    if key is None:
        raise ValueError("the statement inserted no row")
    return int(key[0])


def insert_ignore(conn: Connection, table: Table) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the connection's dialect (the two supported backends):
    the one home of that rule for every store module."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise NotImplementedError(f"unsupported database dialect {conn.dialect.name!r}")


def utcnow() -> datetime:
    """Naive UTC timestamps: the same on SQLite and PostgreSQL ``timestamp`` columns."""
    return datetime.now(UTC).replace(tzinfo=None)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA cache_size=-65536")  # 64 MiB page cache
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.pop("pf_immediate", False) else "BEGIN")


class Database:
    """A SQLAlchemy engine plus the paperfeed conventions around it."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.split("///", 1)[1] if "///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(
                url,
                echo=echo,
                connect_args={"check_same_thread": False, "timeout": 10},
                pool_size=8,
                max_overflow=16,
            )
            event.listen(self.engine, "connect", _sqlite_pragmas)
            # pysqlite's own transaction handling defers BEGIN; emit it ourselves so that
            # writers (``write()``) take the lock up front with BEGIN IMMEDIATE - a deferred
            # transaction that reads first would fail with "database is locked" when another
            # writer commits in between - while readers keep a plain, non-blocking BEGIN.
            event.listen(self.engine, "connect", lambda c, _r: setattr(c, "isolation_level", None))
            event.listen(self.engine, "begin", _sqlite_begin)
        else:
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url.split("://", 1)[1]
            self.engine = create_engine(
                url,
                echo=echo,
                pool_pre_ping=True,
                pool_size=10,
                max_overflow=20,
                pool_timeout=POOL_TIMEOUT_S,
                connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
            )
        self.dialect = self.engine.dialect.name
        self._write_lock = threading.RLock()  # re-entrant: a writer may call a helper that writes

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(settings.db_url)

    # -- connections -------------------------------------------------------------------------
    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads (no transaction is committed)."""
        with self.engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection inside one transaction: committed on success, rolled back on error."""
        if not self.is_sqlite:
            with self.engine.begin() as conn:
                yield conn
            return
        # One writer at a time per process, waiting on a lock: threads of one server worker
        # otherwise poll SQLite's busy handler (sleeps of up to 100 ms), which starves some of them
        # for seconds under concurrent votes. Other processes still meet at BEGIN IMMEDIATE.
        # Bounded like the busy timeout, so a writer that waits on another thread's write fails
        # the same way it did without the lock instead of hanging.
        if not self._write_lock.acquire(timeout=WRITE_WAIT_S):
            raise DatabaseBusy(f"database is locked: no write slot in this process for {WRITE_WAIT_S:.0f} s")
        try:
            with self.engine.connect() as conn:
                conn.info["pf_immediate"] = True
                with conn.begin():
                    yield conn
        finally:
            self._write_lock.release()

    def dispose(self) -> None:
        self.engine.dispose()

    # -- migrations --------------------------------------------------------------------------
    def _alembic_config(self, conn: Connection) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        return cfg

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema up to ``revision`` (idempotent)."""
        with self.engine.begin() as conn:
            command.upgrade(self._alembic_config(conn), revision)

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head_revision(self) -> str | None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        return ScriptDirectory.from_config(cfg).get_current_head()

    def needs_migration(self) -> bool:
        return self.current_revision() != self.head_revision()


def open_database(settings: Settings, *, migrate: bool = True) -> Database:
    """Open the configured database, creating/upgrading its schema unless told not to."""
    db = Database.from_settings(settings)
    if migrate:
        db.migrate()
    return db


def null_pool_engine(url: str) -> Engine:
    """A pool-less engine for short-lived tools (tests, benchmarks)."""
    return create_engine(url, poolclass=NullPool)
