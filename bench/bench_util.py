"""Small helpers the bench scripts share: a free loopback port, waiting for a server the bench
started, and a percentile.

Not a bench itself. Scripts import it as a sibling (``from bench_util import free_port, pct``):
python puts ``bench/`` on ``sys.path`` when it runs ``python bench/<script>.py``. Standard library
only, so any script can import it before (or without) putting ``src/`` on the path.

Every bench figure called p50/p95/p99 is :func:`pct`: linear between the two closest ranks
(numpy's default ``percentile``, ``statistics.quantiles(method="inclusive")``).
"""

from __future__ import annotations

import math
import socket
import subprocess
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
