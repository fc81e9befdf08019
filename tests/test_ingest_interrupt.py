"""Interrupt safety: SIGKILL an import after some batches committed, re-run it, and compare every
content column of every table with one clean run.

The import reads a named pipe, so the test controls exactly how far it got: it feeds 35 lines,
waits until three batches of 10 are committed (5 lines sit in the uncommitted fourth batch), then
kills the process while it waits for more input.
"""

from __future__ import annotations

import errno
import gzip
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from paperfeed.config import Settings
from paperfeed.store.db import Database

from .ingest_helpers import HF_JSONL, LISTINGS, cli, count, other_db, snapshot

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")


@pytest.fixture
def second_db(any_db: Database, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Database]:
    yield from other_db(any_db, tmp_path, request)


def _open_writer(fifo: Path, proc: subprocess.Popen, deadline: float) -> int:
    """Open the pipe for writing once the importer has opened it for reading (never hang)."""
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
        else:
            os.set_blocking(fd, True)
            return fd
        if proc.poll() is not None:
            raise AssertionError(f"the importer exited early: {proc.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError("the importer never opened its input")
        time.sleep(0.05)


def _kill_after_first_batches(
    settings: Settings, db: Database, kind: str, head: bytes, table: str, want: int, tmp_path: Path
) -> None:
    fifo = tmp_path / "input.pipe"
    os.mkfifo(fifo)
    env = dict(os.environ, PAPERFEED_HOME=str(settings.home), PAPERFEED_DATABASE_URL=db.url)
    cmd = [sys.executable, "-c", "from paperfeed.cli import main; main()", "import", kind, str(fifo)]
    proc = subprocess.Popen([*cmd, "--batch-size", "10", "--quiet"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 120
    fd = _open_writer(fifo, proc, deadline)
    try:
        os.write(fd, head)
        while count(db, table) < want:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no batch was committed"
            time.sleep(0.02)
        time.sleep(0.3)  # let it block on the pipe, mid-batch
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        os.close(fd)
    assert proc.returncode == -signal.SIGKILL
    assert count(db, table) == want  # the fourth, uncommitted batch is gone


def test_kill_arxiv_import_then_rerun(
    any_db: Database, second_db: Database, settings: Settings, tmp_path: Path
) -> None:
    data = gzip.decompress(LISTINGS.read_bytes())
    lines = data.splitlines(keepends=True)
    _kill_after_first_batches(settings, any_db, "arxiv", b"".join(lines[:35]), "papers", 30, tmp_path)
    res = cli(settings, any_db, "import", "arxiv", str(LISTINGS), "--quiet", "--batch-size", "10")
    assert res.exit_code == 0 and "inserted 120, updated 0, unchanged 30" in res.stdout
    cli(settings, second_db, "import", "arxiv", str(LISTINGS), "--quiet")
    assert snapshot(any_db) == snapshot(second_db)


def test_kill_hf_import_then_rerun(any_db: Database, second_db: Database, settings: Settings, tmp_path: Path) -> None:
    # arXiv data first, so the HF run both creates papers and updates existing ones.
    for db in (any_db, second_db):
        cli(settings, db, "import", "arxiv", str(LISTINGS), "--quiet")
    first_day = gzip.decompress(HF_JSONL.read_bytes()).splitlines(keepends=True)[0]  # 35 entries
    _kill_after_first_batches(settings, any_db, "hf-daily", first_day, "daily_entries", 30, tmp_path)
    res = cli(settings, any_db, "import", "hf-daily", str(HF_JSONL), "--quiet", "--batch-size", "10")
    assert res.exit_code == 0 and "read 57," in res.stdout
    cli(settings, second_db, "import", "hf-daily", str(HF_JSONL), "--quiet")
    assert snapshot(any_db) == snapshot(second_db)
