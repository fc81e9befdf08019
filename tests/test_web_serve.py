"""`paperfeed serve` for real: uvicorn with two worker processes on a free loopback port, both
starting their background jobs against the same database without errors; a server process's
garbage-collector freeze."""

from __future__ import annotations

import gc
import time
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from paperfeed.store.db import Database
from paperfeed.web.app import create_app

from .servers import ServeProcess
from .webutil import seed


@pytest.mark.slow
def test_serve_with_two_workers(settings, tmp_path: Path) -> None:
    db = Database(settings.db_url)
    db.migrate()
    seed(db)
    db.dispose()
    log = tmp_path / "serve.log"
    with ServeProcess({"PAPERFEED_HOME": str(settings.home)}, log, "--workers", "2") as server:
        with urllib.request.urlopen(f"{server.url}/api/daily_papers", timeout=30) as r:
            assert b"Sparse attention" in r.read()
        for _ in range(20):  # spread over both workers
            with urllib.request.urlopen(f"{server.url}/", timeout=30) as r:
                assert r.status == 200
        time.sleep(1.0)  # let both workers' start-up refreshes finish
    text = log.read_text()
    assert "Traceback" not in text and "ERROR" not in text, text


def test_a_server_process_freezes_its_start_up_objects_and_tests_do_not(settings, db: Database) -> None:
    """``paperfeed serve`` and ``demo`` build the app with ``freeze_gc``: once started, the process's
    objects leave the collector's generations (a full collection no longer walks them). The default,
    used by tests that build many apps in one process, leaves the collector alone."""
    assert gc.get_freeze_count() == 0
    with TestClient(create_app(settings, db)) as client:
        assert client.get("/").status_code == 200
        assert gc.get_freeze_count() == 0
    try:
        with TestClient(create_app(settings, db, freeze_gc=True)) as client:
            assert client.get("/").status_code == 200
            assert gc.get_freeze_count() > 10_000  # the libraries' modules, classes and functions at least
    finally:
        gc.unfreeze()  # back to the oldest generation: this test process goes on building apps
