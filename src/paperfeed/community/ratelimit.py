"""Abuse limits: rate limits per account and per IP address, kept in the database so that every
uvicorn worker (and every host sharing a PostgreSQL server) enforces the same budget.

Each limit is a GCRA bucket (a token bucket stored as one number per key, see
``community_store.take_token``). An action checks all of its buckets (e.g. ``vote:user:12`` and
``vote:ip:10.0.0.7``) in one transaction: if any says no, nothing is taken from the others and
:class:`~paperfeed.community.core.RateLimited` carries the wait for the ``Retry-After`` header.
Runs before every sign-in, sign-up, reset request, submission, vote and comment.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from paperfeed.community.core import Community, RateLimited
from paperfeed.store import community_store as store

_EPOCH = datetime(1970, 1, 1)


def epoch_seconds(dt: datetime) -> float:
    """Naive-UTC datetime -> seconds since the epoch (the clock is injectable, so not time.time())."""
    return (dt - _EPOCH).total_seconds()


@dataclass(frozen=True)
class Rate:
    """``count`` events per ``period`` seconds sustained, bursts of up to ``burst`` (default ``count``)."""

    count: int
    period: float
    burst: int | None = None

    @property
    def interval(self) -> float:
        return self.period / self.count

    @property
    def tolerance(self) -> float:
        return self.interval * (max(1, self.burst or self.count) - 1)


@dataclass(frozen=True)
class Limits:
    """The site's abuse policy. Defaults suit a small public instance; tests pass tighter ones."""

    signin_ip: Rate = Rate(60, 3600, burst=30)  # sign-in attempts from one address
    signup_ip: Rate = Rate(10, 3600, burst=5)
    reset_ip: Rate = Rate(10, 3600, burst=5)  # password-reset mails requested from one address
    reset_account: Rate = Rate(3, 3600)  # reset mails sent to one account
    submit_user: Rate = Rate(30, 3600, burst=10)  # on top of the per-day quota in Settings
    submit_ip: Rate = Rate(60, 3600, burst=20)
    vote_user: Rate = Rate(120, 60, burst=60)
    vote_ip: Rate = Rate(600, 60, burst=300)  # many users can share one address (NAT, a campus)
    comment_user: Rate = Rate(10, 60, burst=5)
    comment_ip: Rate = Rate(60, 60, burst=20)
    token_user: Rate = Rate(20, 3600, burst=10)  # API tokens created
    # Sign-in lockout: after ``lockout_after`` wrong passwords in a row the account is locked for
    # ``lockout_base`` seconds, doubling with every further failure, up to ``lockout_max``.
    lockout_after: int = 10
    lockout_base: float = 60.0
    lockout_max: float = 3600.0

    def lock_for(self, failures: int) -> timedelta | None:
        if failures < self.lockout_after:
            return None
        steps = min(failures - self.lockout_after, 32)
        return timedelta(seconds=min(self.lockout_max, self.lockout_base * (2**steps)))


Bucket = tuple[str, "Rate | None"]


def bucket(kind: str, who: object, rate: Rate | None) -> Bucket:
    """``(key, rate)`` for ``hit``; a missing ``who`` (no client address, no account) is skipped."""
    if who is None or who == "":
        return ("", None)
    return (f"{kind}:{who}"[:200], rate)


class RateLimiter:
    """Checks and takes from a set of buckets atomically; prunes full buckets now and then."""

    PRUNE_EVERY = 500  # calls between clean-ups of long-full buckets
    PRUNE_GRACE = 300.0  # seconds a bucket must have been full before its row is dropped

    def __init__(self, community: Community) -> None:
        self.community = community
        self._calls = itertools.count(1)

    def hit(self, *buckets: Bucket, what: str = "requests") -> None:
        """Take one token from every bucket (see :func:`bucket`), or none and raise :class:`RateLimited`."""
        if not any(rate is not None and key for key, rate in buckets):
            return
        with self.community.db.write() as conn:
            self.take(conn, *buckets, what=what)

    def take(self, conn: Connection, *buckets: Bucket, what: str = "requests") -> None:
        """Like :meth:`hit`, inside the caller's write transaction (one lock instead of two for a vote).

        Raising :class:`RateLimited` makes the caller roll back, which also returns any token taken
        from an earlier bucket of this call.
        """
        live = [(key, rate) for key, rate in buckets if rate is not None and key]
        if not live:
            return
        now = epoch_seconds(self.community.now())
        for key, rate in live:
            wait = store.take_token(conn, key, now, rate.interval, rate.tolerance)
            if wait:
                raise RateLimited(f"Too many {what}; please wait {human_wait(wait)} and try again.", wait)
        if next(self._calls) % self.PRUNE_EVERY == 0:
            store.prune_rate_limits(conn, now, self.PRUNE_GRACE)


def human_wait(seconds: float) -> str:
    s = max(1, int(seconds + 0.999))
    if s < 90:
        return f"{s} second{'s' if s != 1 else ''}"
    m = (s + 59) // 60
    if m < 90:
        return f"{m} minutes"
    return f"{(m + 59) // 60} hours"
