"""The migrations create exactly the schema the code queries against, on both backends."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select

from paperfeed.community import comments, sessions, votes
from paperfeed.config import Settings
from paperfeed.store.db import Database
from paperfeed.store.schema import comments as comment_rows
from paperfeed.store.schema import metadata, papers
from paperfeed.store.schema import votes as vote_rows

from . import factories as f
from .community_util import community, make_user


def test_migrations_match_schema(any_db: Database) -> None:
    insp = inspect(any_db.engine)
    tables = set(insp.get_table_names()) - {"alembic_version"}
    assert tables == set(metadata.tables)
    for name, table in metadata.tables.items():
        cols = {c["name"] for c in insp.get_columns(name)}
        assert cols == {c.name for c in table.columns}, name
    assert not any_db.needs_migration()


def test_migrate_is_idempotent(any_db: Database) -> None:
    any_db.migrate()
    any_db.migrate()
    assert any_db.current_revision() == any_db.head_revision()


def test_sqlite_pragmas(db: Database) -> None:
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000


def test_sqlite_writers_take_the_lock_up_front(db: Database) -> None:
    """A read-then-write transaction must not fail when another writer commits in between."""
    import threading

    from sqlalchemy import insert, select

    from paperfeed.store.db import utcnow
    from paperfeed.store.schema import ingest_state

    started, other_done = threading.Event(), threading.Event()

    def other_writer() -> None:
        started.wait(5)
        with db.write() as conn:  # blocks until the first writer commits (busy timeout)
            conn.execute(insert(ingest_state).values(source="b", cursor="2", updated_at=utcnow()))
        other_done.set()

    t = threading.Thread(target=other_writer)
    t.start()
    with db.write() as conn:
        conn.execute(select(ingest_state.c.source)).all()
        started.set()
        assert not other_done.wait(0.3)  # the other writer waits for us
        conn.execute(insert(ingest_state).values(source="a", cursor="1", updated_at=utcnow()))
    t.join(10)
    with db.read() as conn:
        assert {r[0] for r in conn.execute(select(ingest_state.c.source))} == {"a", "b"}


def test_sqlite_writer_threads_queue_and_time_out_cleanly(db: Database, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Threads of one process take turns for the write lock; a writer that cannot get it in time
    gets a clear TimeoutError (not a hang), and the database stays writable afterwards."""
    import threading

    from paperfeed.store import db as db_mod

    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")

    def add(i: int) -> None:
        with db.write() as conn:
            n = conn.exec_driver_sql("SELECT count(*) FROM t").scalar()
            conn.exec_driver_sql("INSERT INTO t VALUES (?)", (n,))

    threads = [threading.Thread(target=add, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.read() as conn:  # serialised read-modify-write: exactly 0..39, no lost update
        assert sorted(r[0] for r in conn.exec_driver_sql("SELECT x FROM t")) == list(range(40))

    monkeypatch.setattr(db_mod, "WRITE_WAIT_S", 0.2)
    errors: list[str] = []

    def blocked() -> None:
        try:
            with db.write():
                pass
        except TimeoutError as exc:
            errors.append(str(exc))

    with db.write():
        t = threading.Thread(target=blocked)
        t.start()
        t.join(5)
    assert errors and "database is locked" in errors[0]
    add(40)


def test_dropping_a_users_column_keeps_everything_that_hangs_off_users(settings: Settings, tmp_path: Path) -> None:
    """The migration that drops ``users.session_version`` on a SQLite database in use: a batch
    rebuild of ``users`` would drop the table with foreign keys on, and the cascade would take every
    session, vote and comment with it."""
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    script = ScriptDirectory.from_config(db._alembic_config(None))  # type: ignore[arg-type]
    mine = next(r for r in script.walk_revisions() if "drop_session_version" in (r.path or ""))
    db.migrate(str(mine.down_revision))
    c = community(settings, db)
    paper = f.add_paper(db)["id"]
    alice = make_user(c, "alice")
    secret = sessions.start(c, alice)
    votes.set_vote(c, alice, paper, True)
    comments.add_comment(c, alice, paper, "still here after the migration")
    db.migrate()
    assert "session_version" not in {col["name"] for col in inspect(db.engine).get_columns("users")}
    found = sessions.resolve(c, secret)
    assert found is not None and found.user.id == alice.id
    with db.read() as conn:
        assert conn.scalar(select(func.count()).select_from(vote_rows)) == 1
        assert conn.scalar(select(papers.c.upvotes).where(papers.c.id == paper)) == 1
        assert conn.scalar(select(comment_rows.c.body).where(comment_rows.c.user_id == alice.id)) == (
            "still here after the migration"
        )
    db.dispose()
