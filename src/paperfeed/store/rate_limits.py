"""All SQL behind rate limits and sign-in back-off: GCRA token buckets (one theoretical arrival
time per key, taken by a conditional UPDATE so the check-and-take is atomic across workers and
machines) and per-key failure counters with their wait.

Called by ``paperfeed.community.ratelimit`` (every limited action) and ``paperfeed.mail.mailbox``
(per-mailbox caps), each function inside the caller's transaction. Split out of
``community_store`` so each store module holds one concept.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, case, delete, literal, select, update

from paperfeed.store.db import insert_ignore
from paperfeed.store.schema import rate_limits, signin_failures


def take_token(conn: Connection, key: str, now: float, interval: float, tolerance: float) -> float:
    """One GCRA step for ``key``: 0.0 when allowed (state advanced), else seconds to wait.

    ``interval`` = seconds per event at the sustained rate, ``tolerance`` = interval x (burst - 1).
    The state is one number per key (the theoretical arrival time); a missing row is a full
    bucket. The conditional UPDATE makes the check-and-take atomic across workers.
    """
    tat = case((rate_limits.c.tat > now, rate_limits.c.tat), else_=literal(now))
    for _ in range(3):
        conn.execute(insert_ignore(conn, rate_limits).values(key=key, tat=now))
        res = conn.execute(
            update(rate_limits).where(rate_limits.c.key == key, tat - now <= tolerance).values(tat=tat + interval)
        )
        if res.rowcount == 1:
            return 0.0
        current = conn.scalar(select(rate_limits.c.tat).where(rate_limits.c.key == key))
        if current is not None:
            return max(0.001, float(current) - now - tolerance)
        # Pruned by another worker between our INSERT and UPDATE (PostgreSQL): a full bucket, retry.
    return 0.0


def token_wait(conn: Connection, key: str, now: float, tolerance: float) -> float:
    """Seconds until ``key`` would allow one event (0.0: now); reads only (see :func:`take_token`)."""
    tat = conn.scalar(select(rate_limits.c.tat).where(rate_limits.c.key == key))
    return 0.0 if tat is None else max(0.0, float(tat) - now - tolerance)


def prune_rate_limits(conn: Connection, now: float, grace: float = 300.0) -> int:
    """Drop buckets that refilled completely a while ago (a missing row is a full bucket)."""
    return int(conn.execute(delete(rate_limits).where(rate_limits.c.tat < now - grace)).rowcount or 0)


# -- sign-in failures (back-off) --------------------------------------------------------------


def failure_wait(conn: Connection, key: str, now: float) -> float:
    """Seconds ``key`` must still wait after its failures (0.0: not blocked)."""
    until = conn.scalar(select(signin_failures.c.blocked_until).where(signin_failures.c.key == key))
    return 0.0 if until is None else max(0.0, float(until) - now)


def record_failure(conn: Connection, key: str, now: float, forget: float, wait_after: Any) -> int:
    """Count one failure for ``key`` (atomically; from 1 again when the last one is older than
    ``forget`` seconds) and block it for ``wait_after(failures)`` seconds. Returns the count."""
    conn.execute(insert_ignore(conn, signin_failures).values(key=key, failures=0, last_failure=now, blocked_until=0.0))
    fresh = signin_failures.c.last_failure < now - forget
    conn.execute(
        update(signin_failures)
        .where(signin_failures.c.key == key)
        .values(failures=case((fresh, 1), else_=signin_failures.c.failures + 1), last_failure=now)
    )
    failures = int(conn.scalar(select(signin_failures.c.failures).where(signin_failures.c.key == key)) or 0)
    wait = float(wait_after(failures))
    if wait > 0:
        conn.execute(update(signin_failures).where(signin_failures.c.key == key).values(blocked_until=now + wait))
    return failures


def clear_failures(conn: Connection, keys: list[str]) -> None:
    conn.execute(delete(signin_failures).where(signin_failures.c.key.in_(keys)))


def prune_failures(conn: Connection, now: float, older_than: float = 86400.0) -> int:
    """Drop keys that have neither failed nor been blocked for a day."""
    stmt = delete(signin_failures).where(
        signin_failures.c.last_failure < now - older_than, signin_failures.c.blocked_until < now
    )
    return int(conn.execute(stmt).rowcount or 0)
