"""Fault drill: the SQLite home's disk is full.

SQLite's own ``SQLITE_FULL`` is produced by capping the database at its current size
(``PRAGMA max_page_count`` on every connection the app or the CLI opens, after a VACUUM so no
free page is left): a write that needs a new page fails exactly as on a full disk. Writes then
get a clear ``507`` (JSON API) or an error exit with a message (CLI), reads keep working, the
failed write leaves nothing behind, ``PRAGMA integrity_check`` stays ``ok``, and writes work again
once there is room. The same on a real full tmpfs: ``bench/drill_disk_full.py``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select
from typer.testing import CliRunner

from paperfeed.cli import app as cli_app
from paperfeed.cli.common import EXIT_STORAGE_FULL
from paperfeed.community import accounts
from paperfeed.community.core import Community, User, user_row_by_name
from paperfeed.config import Settings
from paperfeed.store.db import Database
from paperfeed.store.schema import comments, papers

from . import factories as f
from .conftest import FIXTURES
from .webutil import client, seed


class Cap:
    """``PRAGMA max_page_count`` = the file's size on every new SQLite connection while active."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pages = 0

    def _connect(self, dbapi_conn: Any, _record: Any) -> None:
        if isinstance(dbapi_conn, sqlite3.Connection):
            dbapi_conn.execute(f"PRAGMA max_page_count = {self.pages}")

    def __enter__(self) -> Cap:
        with sqlite3.connect(self.path) as raw:
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            raw.execute("VACUUM")  # no free pages left: any write that needs space needs a new page
            self.pages = raw.execute("PRAGMA page_count").fetchone()[0]
        event.listen(Engine, "connect", self._connect)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(Engine, "connect", self._connect)


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as raw:
        return str(raw.execute("PRAGMA integrity_check").fetchone()[0])


def counts(db: Database) -> tuple[int, int, int]:
    with db.read() as conn:
        n_comments = conn.execute(select(func.count()).select_from(comments)).scalar_one()
        n_papers = conn.execute(select(func.count()).select_from(papers)).scalar_one()
        listed = conn.execute(select(func.sum(papers.c.num_comments))).scalar_one()
    return n_comments, n_papers, listed


@pytest.fixture
def site(settings: Settings, db: Database) -> Iterator[tuple[TestClient, str, dict[str, Any]]]:
    data = seed(db)
    f.add_user(db, "writer")
    c = Community(settings=settings, db=db)
    token, _ = accounts.create_api_token(c, User.from_row(user_row_by_name(c, "writer")), "drill")
    with client(settings, db) as web:
        yield web, token, data


def test_full_disk_refuses_writes_clearly_keeps_reads_and_corrupts_nothing(
    site: tuple[TestClient, str, dict[str, Any]], settings: Settings, db: Database
) -> None:
    web, token, data = site
    path = settings.home / "paperfeed.db"
    auth = {"Authorization": f"Bearer {token}"}
    paper = data["top"]["id"]
    long_comment = {"comment": "A long review. " * 650}  # ~10 KB (x2 stored): needs pages the file does not have
    before = counts(db)

    with Cap(path):
        db.engine.dispose()  # the app's pooled connections reopen under the cap
        refused = web.post(f"/api/papers/{paper}/comments", json=long_comment, headers=auth)
        assert refused.status_code == 507, refused.text
        assert refused.json()["error"] == "storage_full"
        assert "disk is full" in refused.json()["detail"]
        assert int(refused.headers["Retry-After"]) > 0

        # Reads keep working, for visitors and for token holders alike.
        for url in ("/", f"/papers/{paper}", "/api/daily_papers", "/papers/trending"):
            assert web.get(url).status_code == 200, url
        assert web.get(f"/api/papers/{paper}", headers=auth).status_code == 200
        assert counts(db) == before  # nothing of the refused comment was written
    db.engine.dispose()

    assert integrity(path) == "ok"
    # With room again the same write goes through.
    assert web.post(f"/api/papers/{paper}/comments", json=long_comment, headers=auth).status_code == 201
    assert counts(db)[0] == before[0] + 1


def test_full_disk_stops_an_import_with_a_message_and_an_exit_code(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = settings.home / "paperfeed.db"
    monkeypatch.setenv("PAPERFEED_HOME", str(settings.home))
    monkeypatch.delenv("PAPERFEED_DATABASE_URL", raising=False)
    before = counts(db)
    db.dispose()
    with Cap(path):
        source = str(FIXTURES / "ingest" / "kaggle_head20.jsonl")
        result = CliRunner().invoke(cli_app, ["import", "arxiv", source, "-q"])
    assert result.exit_code == EXIT_STORAGE_FULL, result.output
    assert "disk holding the database is full" in result.output
    assert "Traceback" not in result.output
    assert integrity(path) == "ok"
    assert counts(db) == before  # the one batch was rolled back whole
