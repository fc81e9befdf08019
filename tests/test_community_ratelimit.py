"""Rate limits: GCRA bursts and refill with a fake clock, all-or-nothing across buckets, state
shared by separate app instances (several uvicorn workers) through the database."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event, func, select

from paperfeed.community.errors import RateLimited
from paperfeed.community.ratelimit import Limits, Rate, RateLimiter, bucket
from paperfeed.config import Settings
from paperfeed.store.db import Database
from paperfeed.store.schema import rate_limits

from .community_util import FakeClock, community


def test_burst_then_sustained_rate(any_db: Database, settings: Settings) -> None:
    clock = FakeClock()
    limiter = community(settings, any_db, clock).rate_limiter
    rate = Rate(6, 60, burst=3)  # one per 10 s, bursts of 3
    for _ in range(3):
        limiter.hit(bucket("t:user", 1, rate))
    with pytest.raises(RateLimited) as exc:
        limiter.hit(bucket("t:user", 1, rate))
    assert exc.value.retry_after == 10 and "wait 10 seconds" in exc.value.message
    limiter.hit(bucket("t:user", 2, rate))  # another key has its own budget
    clock.advance(seconds=10)
    limiter.hit(bucket("t:user", 1, rate))
    with pytest.raises(RateLimited):
        limiter.hit(bucket("t:user", 1, rate))
    clock.advance(seconds=60)
    for _ in range(3):  # refilled to the burst, not beyond
        limiter.hit(bucket("t:user", 1, rate))
    with pytest.raises(RateLimited):
        limiter.hit(bucket("t:user", 1, rate))


def test_all_buckets_or_none(db: Database, settings: Settings) -> None:
    clock = FakeClock()
    limiter = community(settings, db, clock).rate_limiter
    tight, loose = Rate(1, 60), Rate(100, 60)
    limiter.hit(bucket("a", "x", tight), bucket("b", "x", loose))
    with pytest.raises(RateLimited):
        limiter.hit(bucket("a", "x", tight), bucket("b", "x", loose))
    with db.read() as conn:
        tats = dict(conn.execute(select(rate_limits.c.key, rate_limits.c.tat)).all())
    # The refused call took nothing from "b": its state moved once (by 0.6 s), not twice.
    assert tats["b:x"] - tats["a:x"] == pytest.approx(0.6 - 60)
    limiter.hit(bucket("a", None, tight), ("", None))  # no address / no rate: skipped, never an error


def test_workers_share_one_budget(db: Database, settings: Settings) -> None:
    """Two Community objects (two worker processes) and 40 concurrent calls: exactly the burst passes."""
    clock = FakeClock()
    limits = Limits(vote_user=Rate(10, 3600, burst=10))
    workers = [community(settings, db, clock, limits).rate_limiter for _ in range(2)]

    def call(i: int) -> bool:
        try:
            workers[i % 2].hit(bucket("vote:user", 7, limits.vote_user))
            return True
        except RateLimited:
            return False

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(call, range(40)))
    assert sum(results) == 10


def test_full_buckets_are_pruned(db: Database, settings: Settings) -> None:
    clock = FakeClock()
    c = community(settings, db, clock)
    limiter = RateLimiter(c.db, c.now)
    limiter.PRUNE_EVERY = 3
    limiter.hit(bucket("p", 1, Rate(1, 10)))
    limiter.hit(bucket("p", 2, Rate(1, 10)))
    clock.advance(seconds=11 + 300)
    limiter.hit(bucket("p", 3, Rate(1, 10)))  # third call prunes the two buckets refilled long ago
    with db.read() as conn:
        assert conn.scalar(select(func.count()).select_from(rate_limits)) == 1


@pytest.mark.postgres
def test_a_bucket_pruned_mid_step_is_a_full_bucket(pg_db: Database, settings: Settings) -> None:
    """PostgreSQL only (SQLite serialises writers): another worker's clean-up deletes the bucket
    between this step's INSERT ... DO NOTHING and its UPDATE. That must not refuse the request."""
    clock = FakeClock()
    limiter = community(settings, pg_db, clock).rate_limiter
    rate = Rate(10, 10)
    limiter.hit(bucket("race", 1, rate))
    clock.advance(seconds=5)  # the bucket is full again: exactly what a clean-up removes
    other = pg_db.engine.connect()
    fired: list[str] = []

    def prune_in_between(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT INTO rate_limits") and not fired and conn is not other:
            fired.append(statement)
            with other.begin():
                other.execute(rate_limits.delete())

    event.listen(pg_db.engine, "after_cursor_execute", prune_in_between)
    try:
        limiter.hit(bucket("race", 1, rate))
    finally:
        event.remove(pg_db.engine, "after_cursor_execute", prune_in_between)
        other.close()
    assert len(fired) == 1, "the clean-up never ran between the INSERT and the UPDATE: nothing was raced"
