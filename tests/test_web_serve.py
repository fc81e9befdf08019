"""`paperfeed serve` for real: uvicorn with two worker processes on a free loopback port, both
starting their background jobs against the same database without errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from paperfeed.store.db import Database

from .servers import free_port
from .webutil import seed


@pytest.mark.slow
def test_serve_with_two_workers(settings, tmp_path: Path) -> None:
    db = Database(settings.db_url)
    db.migrate()
    seed(db)
    db.dispose()
    port = free_port()
    env = {**os.environ, "PAPERFEED_HOME": str(settings.home), "PAPERFEED_BASE_URL": f"http://127.0.0.1:{port}"}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "paperfeed"),
                "serve",
                "--port",
                str(port),
                "--workers",
                "2",
                "--no-scheduler",
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline, body = time.monotonic() + 60, b""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/daily_papers", timeout=5) as r:
                    body = r.read()
                    break
            except OSError:
                time.sleep(0.3)
        assert b"Sparse attention" in body
        for _ in range(20):  # spread over both workers
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                assert r.status == 200
        time.sleep(1.0)  # let both workers' start-up refreshes finish
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    text = log.read_text()
    assert "Traceback" not in text and "ERROR" not in text, text
