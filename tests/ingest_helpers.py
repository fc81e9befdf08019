"""Helpers for the ingest tests: fixture paths, running the CLI, and content snapshots of a database."""

from __future__ import annotations

import gzip
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from paperfeed.cli import app
from paperfeed.config import Settings
from paperfeed.store.db import Database
from paperfeed.store.schema import metadata

from .pgserver import PgServer

FIX = Path(__file__).resolve().parent / "fixtures" / "ingest"
KAGGLE = FIX / "kaggle_head20.jsonl"
LISTINGS = FIX / "listings_sample.jsonl.gz"
HF_DIR = FIX / "hf"
HF_JSONL = FIX / "hf_days.jsonl.gz"

# Bookkeeping columns: they record when a row was written, not what it says.
VOLATILE = {"created_at", "modified_at", "updated_at"}
TIME_WATERMARKS = {"web:feed_helpers"}


def cli(settings: Settings, db: Database, *args: str, input: str | bytes | None = None) -> Result:
    env = {"PAPERFEED_HOME": str(settings.home), "PAPERFEED_DATABASE_URL": db.url, "PAPERFEED_HARVEST_DELAY": "0"}
    return CliRunner().invoke(app, list(args), env=env, input=input, catch_exceptions=False)


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every content column of every table, rows sorted: equal snapshots = equal databases."""
    snap: dict[str, list[tuple[Any, ...]]] = {}
    with db.read() as conn:
        for name, table in metadata.tables.items():
            cols = [c for c in table.columns if c.name not in VOLATILE]
            cols = [c for c in cols if not (c.name == "id" and c.autoincrement is True)]
            if name == "daily_entries":
                cols = [c for c in cols if c.name != "id"]
            rows = conn.execute(select(*cols)).all()
            if name == "ingest_state":
                # Time-based watermarks (derived lookup tables) differ run to run; the content they
                # cover is compared through those tables themselves.
                rows = [r for r in rows if r.source not in TIME_WATERMARKS]
            snap[name] = sorted(tuple(orjson.dumps(v, default=str) for v in r) for r in rows)
    return snap


def lines(path: Path) -> list[bytes]:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return data.splitlines(keepends=True)


def write_lines(path: Path, rows: list[Any]) -> Path:
    """One line per row: dicts/lists as JSON, bytes and str as they are."""
    out = []
    for r in rows:
        if isinstance(r, dict | list):
            out.append(orjson.dumps(r) + b"\n")
        elif isinstance(r, str):
            out.append(r.encode() + b"\n")
        else:
            out.append(r if r.endswith(b"\n") else r + b"\n")
    path.write_bytes(b"".join(out))
    return path


def count(db: Database, table: str) -> int:
    from sqlalchemy import func

    with db.read() as conn:
        return int(conn.scalar(select(func.count()).select_from(metadata.tables[table])) or 0)


def other_db(any_db: Database, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Database]:
    """Another empty database on the same backend as ``any_db`` (to compare two import orders)."""
    if any_db.is_sqlite:
        url = f"sqlite:///{tmp_path / 'second.db'}"
    else:
        server = request.getfixturevalue("pg_server")
        name = f"second_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        # An external server (PAPERFEED_TEST_POSTGRES_URL) gets the second database too: a skip
        # here would fail a CI run (tests/ci_gate.py).
        url = PgServer.create_database_at(server, name) if isinstance(server, str) else server.create_database(name)
    db = Database(url)
    db.migrate()
    yield db
    db.dispose()
