"""Copying a whole paperfeed database to another one (SQLite <-> PostgreSQL), resumably, and proving it.

``paperfeed db copy --from URL --to URL`` moves an instance between backends. The target is
migrated to the schema revision the source is at (this version's head: the source must be
upgraded first), then every table of ``schema.metadata`` is copied in foreign-key order, in
primary-key order, in batches. Each batch is inserted in one target transaction together with
the copy's progress row in ``paperfeed_copy_state`` (a bookkeeping table of the target), so a
copy killed at any point (``kill -9`` included) resumes where its last committed batch ended
and never duplicates or skips a row. PostgreSQL sequences are moved past the copied ids.

At the end both sides are read again and compared table by table: row counts, and a checksum
that does not depend on the backend or on row order. Each row is hashed from canonical forms of
its values (naive-UTC ISO datetimes, ISO dates, JSON re-serialised with sorted keys, booleans
as such whatever SQLite stored, bytes as bytes, floats by ``repr``), and the row hashes are
summed modulo 2**128, so the same rows give the same checksum on SQLite and PostgreSQL even
though the two sort text differently. The bookkeeping table is dropped once everything matches.

A target that holds data and is not an unfinished copy of the same source is refused: the copy
never mixes two instances' rows. On a target with pgvector, the copied vectors are written into
its ``hvec`` column too before the end (``store/pgvector.py``), so PostgreSQL's vector search
finds them at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    func,
    insert,
    inspect,
    null,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.engine import RowMapping, make_url

from paperfeed.store import pgvector
from paperfeed.store.db import Database
from paperfeed.store.schema import metadata

STATE_TABLE = "paperfeed_copy_state"
HEADER = "*"  # the state row that names the source
NULL_FLAG = "pf_copy_null_"
_state_meta = MetaData()
state = Table(
    STATE_TABLE,
    _state_meta,
    Column("table_name", String(128), primary_key=True),
    Column("source", Text, nullable=False),  # the source URL (password hidden); the header row only matters
    Column("last_key", Text),  # JSON list: the primary key of the last copied row
    Column("copied", Integer, nullable=False, server_default="0"),
    Column("done", Boolean, nullable=False, server_default="0"),
)


class CopyRefused(Exception):
    """The copy cannot start: the message says why and what to do."""


def database_url(text_or_path: str) -> str:
    """A database URL from what the user typed: a URL, or the path of a SQLite file."""
    if "://" in text_or_path:
        return text_or_path
    return f"sqlite:///{Path(text_or_path).expanduser().resolve()}"


def display_url(url: str) -> str:
    """The URL without its password, for messages and the progress row."""
    return make_url(url).render_as_string(hide_password=True)


@dataclass
class TableCheck:
    name: str
    source_rows: int
    target_rows: int
    source_sum: str
    target_sum: str

    @property
    def ok(self) -> bool:
        return self.source_rows == self.target_rows and self.source_sum == self.target_sum


@dataclass
class Progress:
    name: str
    total: int  # rows in the source table
    copied: int  # rows already in the target (from an earlier, interrupted run)
    done: bool


# -- canonical row hashing --------------------------------------------------------------------


def _canonical(value: Any, is_json: bool) -> bytes:
    if value is None:
        return b"N"
    if is_json:
        return b"J" + orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    if isinstance(value, bool):
        return b"B1" if value else b"B0"
    if isinstance(value, int):
        return b"I" + str(value).encode()
    if isinstance(value, float):
        return b"F" + repr(value).encode()
    if isinstance(value, Decimal):
        return b"F" + repr(float(value)).encode()
    if isinstance(value, str):
        return b"S" + value.encode()
    if isinstance(value, bytes | bytearray | memoryview):
        return b"X" + bytes(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return b"T" + value.isoformat().encode()
    if isinstance(value, date):
        return b"D" + value.isoformat().encode()
    raise TypeError(f"no canonical form for {type(value).__name__}")


def row_digest(row: tuple[Any, ...], json_columns: tuple[bool, ...]) -> int:
    """A 128-bit hash of one row's canonical values (length-prefixed, so values cannot run together)."""
    h = hashlib.blake2b(digest_size=16)
    for value, is_json in zip(row, json_columns, strict=True):
        canon = _canonical(value, is_json)
        h.update(len(canon).to_bytes(4, "big"))
        h.update(canon)
    return int.from_bytes(h.digest(), "big")


def _json_columns(table: Table) -> list[Column[Any]]:
    return [c for c in table.columns if isinstance(c.type, JSON)]


def _readable(table: Table) -> Select[Any]:
    """All columns, plus for each JSON column whether it is SQL NULL: decoded, SQL NULL and a
    stored JSON ``null`` both read as None, and the copy must keep them apart."""
    return select(table, *(c.is_(None).label(f"{NULL_FLAG}{c.name}") for c in _json_columns(table)))


def table_checksum(conn: Connection, table: Table) -> tuple[int, str]:
    """(row count, checksum) of a table: the sum of its row hashes modulo 2**128, as hex."""
    json_columns = tuple(isinstance(c.type, JSON) for c in table.columns) + (False,) * len(_json_columns(table))
    total, count = 0, 0
    result = conn.execution_options(stream_results=True, yield_per=2000).execute(_readable(table))
    for row in result:
        total = (total + row_digest(tuple(row), json_columns)) % (1 << 128)
        count += 1
    return count, f"{total:032x}"


def _insertable(row: RowMapping, json_columns: list[Column[Any]]) -> dict[str, Any]:
    """A source row as insert parameters: JSON columns keep SQL NULL and JSON ``null`` apart."""
    values = {k: v for k, v in row.items() if not k.startswith(NULL_FLAG)}
    for c in json_columns:
        if row[f"{NULL_FLAG}{c.name}"]:
            values[c.name] = null()
        elif values[c.name] is None:
            values[c.name] = JSON.NULL
    return values


# -- the copy ---------------------------------------------------------------------------------


def _pk(table: Table) -> list[Column[Any]]:
    return list(table.primary_key.columns)


class Copier:
    """One copy from ``source`` to ``target`` (see the module docstring)."""

    def __init__(self, source: Database, target: Database, *, batch_size: int = 1000) -> None:
        self.source = source
        self.target = target
        self.batch_size = batch_size
        self.source_name = display_url(source.url)
        self.resumed = False
        self.skipped: list[str] = []  # source tables this version does not know (not copied)

    # -- checks ---------------------------------------------------------------------------------
    def _tables(self, db: Database) -> set[str]:
        with db.read() as conn:
            return set(inspect(conn).get_table_names())

    def prepare(self) -> list[Progress]:
        """Check both sides, migrate the target and start (or pick up) the bookkeeping."""
        if display_url(self.source.url) == display_url(self.target.url):
            raise CopyRefused("the source and the target are the same database")
        src_tables = self._tables(self.source)
        if "alembic_version" not in src_tables:
            raise CopyRefused(f"{self.source_name} is not a paperfeed database (no schema revision)")
        head = self.source.head_revision()
        if self.source.current_revision() != head:
            raise CopyRefused(
                f"the source is at schema revision {self.source.current_revision()}, this paperfeed's is "
                f"{head}: upgrade the source first (PAPERFEED_DATABASE_URL=... paperfeed db upgrade), "
                "or use the paperfeed version that wrote it"
            )
        self.skipped = sorted(src_tables - set(metadata.tables) - {"alembic_version", STATE_TABLE})

        tgt_tables = self._tables(self.target)
        if STATE_TABLE in tgt_tables:
            with self.target.read() as conn:
                header = conn.execute(select(state.c.source).where(state.c.table_name == HEADER)).scalar()
            if header != self.source_name:
                raise CopyRefused(
                    f"the target holds an unfinished copy of another database ({header}), not of "
                    f"{self.source_name}: finish that copy, or empty the target"
                )
            self.resumed = True
        else:
            filled = self._rows_in(self.target, tgt_tables)
            if filled:
                listed = ", ".join(f"{name} ({n:,})" for name, n in filled[:5])
                raise CopyRefused(
                    f"the target is not empty ({listed}{', ...' if len(filled) > 5 else ''}) and is not an "
                    "unfinished copy of this source (a finished copy needs nothing more): copy into a new, "
                    "empty database"
                )
        self.target.migrate()
        with self.target.write() as conn:
            _state_meta.create_all(conn)
            if not self.resumed:
                conn.execute(insert(state), [{"table_name": HEADER, "source": self.source_name}])
        return self.progress()

    def _rows_in(self, db: Database, names: set[str]) -> list[tuple[str, int]]:
        found = []
        with db.read() as conn:
            for table in metadata.sorted_tables:
                if table.name in names:
                    n = conn.execute(select(func.count()).select_from(table)).scalar_one()
                    if n:
                        found.append((table.name, int(n)))
        return found

    def progress(self) -> list[Progress]:
        """Every table to copy, in foreign-key order, with what an earlier run already copied."""
        with self.target.read() as conn:
            rows = {r.table_name: r for r in conn.execute(select(state))}
        out = []
        with self.source.read() as conn:
            for table in metadata.sorted_tables:
                total = int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                mine = rows.get(table.name)
                out.append(Progress(table.name, total, mine.copied if mine else 0, bool(mine and mine.done)))
        return out

    # -- copying -------------------------------------------------------------------------------
    def _batches(self, table: Table, last: list[Any] | None) -> Iterator[list[dict[str, Any]]]:
        pk = _pk(table)
        json_columns = _json_columns(table)
        while True:
            query = _readable(table).order_by(*pk).limit(self.batch_size)
            if last is not None:
                query = query.where(tuple_(*pk) > tuple_(*last)) if len(pk) > 1 else query.where(pk[0] > last[0])
            with self.source.read() as conn:
                rows = [_insertable(r._mapping, json_columns) for r in conn.execute(query)]
            if not rows:
                return
            yield rows
            last = [rows[-1][c.name] for c in pk]
            if len(rows) < self.batch_size:
                return

    def copy_table(self, name: str, on_rows: Callable[[int], None] | None = None) -> None:
        """Copy one table from where the last committed batch ended."""
        table = metadata.tables[name]
        with self.target.read() as conn:
            mine = conn.execute(select(state).where(state.c.table_name == name)).first()
        if mine is not None and mine.done:
            return
        if mine is None:
            with self.target.write() as conn:
                conn.execute(insert(state), [{"table_name": name, "source": self.source_name}])
        last = json.loads(mine.last_key) if mine is not None and mine.last_key else None
        pk = _pk(table)
        for rows in self._batches(table, last):
            key = json.dumps([rows[-1][c.name] for c in pk])
            with self.target.write() as conn:
                conn.execute(insert(table), rows)
                conn.execute(
                    update(state)
                    .where(state.c.table_name == name)
                    .values(last_key=key, copied=state.c.copied + len(rows))
                )
            if on_rows is not None:
                on_rows(len(rows))
        with self.target.write() as conn:
            conn.execute(update(state).where(state.c.table_name == name).values(done=True))

    def fix_sequences(self) -> None:
        """PostgreSQL: move each serial column's sequence past the largest copied id."""
        if self.target.dialect != "postgresql":
            return
        with self.target.write() as conn:
            for table in metadata.sorted_tables:
                column = table.autoincrement_column
                if column is None or not isinstance(column.type, Integer):
                    continue
                seq = conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column.name})
                name = seq.scalar()
                if name is None:
                    continue
                top = conn.execute(select(func.max(column))).scalar()
                conn.execute(text("SELECT setval(:s, :v, :called)"),
                             {"s": name, "v": top if top is not None else 1, "called": top is not None})  # fmt: skip

    # -- proof ---------------------------------------------------------------------------------
    def verify(self, on_table: Callable[[TableCheck], None] | None = None) -> list[TableCheck]:
        """Row counts and canonical checksums of every table on both sides."""
        checks = []
        for table in metadata.sorted_tables:
            with self.source.read() as conn:
                n_src, sum_src = table_checksum(conn, table)
            with self.target.read() as conn:
                n_tgt, sum_tgt = table_checksum(conn, table)
            check = TableCheck(table.name, n_src, n_tgt, sum_src, sum_tgt)
            checks.append(check)
            if on_table is not None:
                on_table(check)
        return checks

    def finish(self) -> None:
        """Drop the bookkeeping table: the target is now an ordinary paperfeed database (on a
        pgvector target, with every copied vector searchable there)."""
        if pgvector.state(self.target).column:
            pgvector.fill_missing(self.target)
        with self.target.write() as conn:
            state.drop(conn)
