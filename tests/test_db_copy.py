"""``paperfeed db copy``: SQLite -> PostgreSQL -> SQLite ends with the same rows, resumes after
``kill -9``, moves PostgreSQL's sequences past the copied ids, and refuses a target in use.

Every table of the schema gets rows (``fill``), generated from the column types so that a table
added later is covered without touching this file: booleans, naive datetimes with microseconds,
dates, floats, bytes with NUL, non-ASCII text, JSON objects and lists, a JSON ``null`` next to a
SQL NULL, and foreign keys that point at real parent rows.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, Boolean, Date, DateTime, Float, Integer, LargeBinary, String, func, insert, select, update
from sqlalchemy import null as sql_null
from typer.testing import CliRunner

from paperfeed.cli import app as cli_app
from paperfeed.store.copy import STATE_TABLE, Copier
from paperfeed.store.db import Database
from paperfeed.store.schema import metadata, papers, users

from .pgserver import PgServer

ROWS = 4


def _value(column: Any, i: int, parents: dict[str, list[Any]]) -> Any:
    fk = next(iter(column.foreign_keys), None)
    if fk is not None:
        target = fk.column
        if target.table is column.table:
            return None  # a self-reference (a reply): left empty
        pool = parents[f"{target.table.name}.{target.name}"]
        return pool[i % len(pool)]
    nullable = column.nullable and not column.primary_key
    t = column.type
    if isinstance(t, JSON):
        options: list[Any] = [{"k": [i, "x", 1.5], "b": True, "ü": None}, [i, "two"], JSON.NULL, sql_null()]
        choice = options[i % len(options)]
        return {"k": i} if (choice is JSON.NULL or choice is sql_null()) and not nullable else choice
    if nullable and i == ROWS - 1:
        return None
    if isinstance(t, Boolean):
        return i % 2 == 0
    if isinstance(t, DateTime):
        return datetime(2025, 1, 1, 12, 0, 0, 123456) + timedelta(hours=i, microseconds=i)
    if isinstance(t, Date):
        return date(2025, 1, 1) + timedelta(days=i)
    if isinstance(t, Float):
        return 0.1 * (i + 1) + 1e-9
    if isinstance(t, LargeBinary):
        return bytes([0, i % 256, 255]) * 128
    if isinstance(t, Integer):
        return i + 1
    text = f"{i}-{column.name} ünïcödé 'quoted' \"dq\"\nline"
    length = getattr(t, "length", None) if isinstance(t, String) else None
    return text[:length] if length else text


def fill(db: Database, rows: int = ROWS) -> None:
    """``rows`` rows in every table of the schema, in foreign-key order."""
    parents: dict[str, list[Any]] = {}
    with db.write() as conn:
        for table in metadata.sorted_tables:
            data = []
            for i in range(rows):
                data.append(
                    {c.name: _value(c, i, parents) for c in table.columns if c is not table.autoincrement_column}
                )
            for row in data:  # one by one: autoincrement ids come back in order
                conn.execute(insert(table), row)
            for c in table.columns:
                parents[f"{table.name}.{c.name}"] = list(conn.execute(select(c).order_by(c)).scalars())


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's raw stored rows (SQLite's own values, no SQLAlchemy), sorted."""
    with sqlite3.connect(path) as raw:
        names = [r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {n: sorted(raw.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr) for n in names}


def copy(src: str, dst: str, *extra: str) -> Any:
    return CliRunner().invoke(cli_app, ["db", "copy", "--from", src, "--to", dst, "-q", *extra])


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    fill(db)
    db.dispose()
    return path


@pytest.mark.postgres
def test_sqlite_to_postgresql_and_back_is_identical(source: Path, tmp_path: Path, pg_server: PgServer | str) -> None:
    if isinstance(pg_server, str):
        pg_url = PgServer.create_database_at(pg_server, f"copy{os.getpid()}")
    else:
        pg_url = pg_server.create_database(f"copy{os.getpid()}")
    original = dump(source)
    assert all(original[t.name] for t in metadata.sorted_tables), "every table has rows"

    there = copy(str(source), pg_url)
    assert there.exit_code == 0, there.output
    assert "every count and checksum matches" in there.output
    back_path = tmp_path / "back.db"
    back = copy(pg_url, str(back_path))
    assert back.exit_code == 0, back.output
    assert dump(back_path) == original  # byte for byte what SQLite stored, bookkeeping table gone

    pg = Database(pg_url)
    try:
        with pg.write() as conn:  # sequences are past the copied ids: new rows get fresh ones
            new = conn.execute(insert(users).values(username="newcomer", created_at=datetime(2026, 1, 1)))
            assert new.inserted_primary_key[0] == ROWS + 1
        with pg.write() as conn:  # a changed value is caught by the checksum, on either backend
            conn.execute(update(papers).where(papers.c.id == select(func.min(papers.c.id)).scalar_subquery())
                         .values(title="changed"))  # fmt: skip
        checks = {c.name: c for c in Copier(Database(f"sqlite:///{back_path}"), pg).verify()}
        assert not checks["papers"].ok and checks["papers"].source_rows == checks["papers"].target_rows
        assert not checks["users"].ok and checks["users"].target_rows == ROWS + 1
        assert all(c.ok for name, c in checks.items() if name not in ("papers", "users"))
    finally:
        pg.dispose()


def test_refuses_a_target_that_holds_another_instance(source: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    db = Database(f"sqlite:///{other}")
    db.migrate()
    fill(db, rows=1)
    db.dispose()
    before = dump(other)
    result = copy(str(source), str(other))
    assert result.exit_code == 2
    assert "refused: the target is not empty" in result.output and "papers (1)" in result.output
    assert dump(other) == before
    assert copy(str(source), str(source)).exit_code == 2  # onto itself
    missing = copy(str(tmp_path / "nope.db"), str(tmp_path / "t.db"))
    assert missing.exit_code == 2 and "no database at" in missing.output


def _copied(path: Path) -> int:
    try:
        with sqlite3.connect(path, timeout=0.1) as raw:
            return int(raw.execute(f"SELECT coalesce(sum(copied), 0) FROM {STATE_TABLE}").fetchone()[0])
    except sqlite3.Error:  # not created yet, or busy
        return 0


@pytest.mark.slow
def test_resumes_after_kill_9_and_ends_identical(tmp_path: Path) -> None:
    src = tmp_path / "big.db"
    db = Database(f"sqlite:///{src}")
    db.migrate()
    fill(db, rows=120)
    db.dispose()
    dst = tmp_path / "target.db"
    cmd = [sys.executable, "-m", "paperfeed", "db", "copy", "--from", str(src), "--to", str(dst), "-q",
           "--batch-size", "5"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    total = 120 * len(metadata.tables)
    while _copied(dst) < total // 2 and proc.poll() is None:  # killed about half way
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the copy ended before it could be interrupted"
    partway = _copied(dst)
    assert 0 < partway < total

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"resuming an interrupted copy: {partway:,} rows were already copied" in again.stderr
    assert dump(dst) == dump(src)
