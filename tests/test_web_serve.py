"""`paperfeed serve` for real: uvicorn with two worker processes on a free loopback port, both
starting their background jobs against the same database without errors."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest

from paperfeed.store.db import Database

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
