"""Small helpers the bench scripts share: a free loopback port, starting, waiting for and
stopping the ``paperfeed serve`` a bench measures, and a percentile.

Not a bench itself. Scripts import it as a sibling (``from bench_util import free_port, pct``):
python puts ``bench/`` on ``sys.path`` when it runs ``python bench/<script>.py``. Standard library
only, so any script can import it before (or without) putting ``src/`` on the path.

Every bench figure called p50/p95/p99 is :func:`pct`: linear between the two closest ranks
(numpy's default ``percentile``, ``statistics.quantiles(method="inclusive")``).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for a server the bench starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, server: subprocess.Popen[Any] | None = None, timeout: float = 120.0) -> None:
    """Poll ``url`` until it answers 200. SystemExit when ``timeout`` seconds pass first or when
    ``server`` (the process that should answer) has exited; stopping it is the caller's part."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:  # not listening yet, reset, an error status (HTTPError), a timeout
            pass
        if server is not None and server.poll() is not None:
            raise SystemExit(f"the server exited ({server.returncode}) before answering {url}")
        if time.monotonic() > deadline:
            raise SystemExit(f"the server did not answer {url} within {timeout:.0f} s")
        time.sleep(0.3)


def serve(
    env: dict[str, str], *args: str, port: int | None = None, ready: str = "/about/ranking", timeout: float = 120.0
) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m paperfeed serve --port PORT --log-level warning *args`` with ``env`` (which names
    the home, the database, the checkout on PYTHONPATH), in its own process group so that
    :func:`stop_server` takes every worker; returns once ``ready`` answers 200, with the base URL. A
    server that never answers is killed before SystemExit. ``port``: one the caller already put in
    ``env`` (e.g. in PAPERFEED_BASE_URL); a free one otherwise."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "paperfeed", "serve", "--port", str(port), "--log-level", "warning", *args]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_up(url + ready, proc, timeout=timeout)
    except BaseException:
        stop_server(proc, sig=signal.SIGKILL)
        raise
    return proc, url


def stop_server(proc: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM, timeout: float = 60.0) -> None:
    """Signal a :func:`serve` process group and wait for it (SIGKILL after ``timeout`` seconds)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def pct(values: Sequence[float], p: float, *, empty: float = math.nan) -> float:
    """The ``p``-th percentile (0..100) of ``values``, linear between the two closest ranks;
    ``empty`` (NaN unless given) when there are no values."""
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} is not within 0..100")
    v = sorted(values)
    if not v:
        return empty
    at = (len(v) - 1) * p / 100
    lo = math.floor(at)
    hi = min(lo + 1, len(v) - 1)
    return float(v[lo] + (v[hi] - v[lo]) * (at - lo))
