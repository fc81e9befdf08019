"""Abuse limits: rate limits per account and per IP address, kept in the database so that every
uvicorn worker (and every host sharing a PostgreSQL server) enforces the same budget.

Each limit is a GCRA bucket (a token bucket stored as one number per key, see
``store.rate_limits.take_token``). An action checks all of its buckets (e.g. ``vote:user:12`` and
``vote:ip:10.0.0.7``) in one transaction: if any says no, nothing is taken from the others and
:class:`~paperfeed.community.errors.RateLimited` carries the wait for the ``Retry-After`` header.
Runs before every sign-in, sign-up, reset request, submission, vote and comment.

Sign-in failures also feed :class:`Backoff` counters (``store.rate_limits.record_failure``): a key
that keeps failing waits longer and longer, and a success clears it. Sign-in uses three keys,
see ``accounts.sign_in``: (name, address) and address with back-off, and a generous
per-account ceiling (a GCRA bucket that only failures take from): the owner gets in from a new
address during any attack that stays below the ceiling, and no number of failures locks an
account for longer than the ceiling's refill.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from paperfeed.community.errors import RateLimited
from paperfeed.store import rate_limits as store
from paperfeed.store.db import Database

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
class Backoff:
    """After ``free`` failures a key waits ``base`` seconds, doubling with each further failure,
    up to ``cap``. A key that has not failed for ``forget`` seconds starts again from zero."""

    free: int
    base: float
    cap: float
    forget: float = 86400.0

    def wait_after(self, failures: int) -> float:
        if failures < self.free:
            return 0.0
        return min(self.cap, self.base * 2 ** min(failures - self.free, 32))


@dataclass(frozen=True)
class Limits:
    """The site's abuse policy. Defaults suit a small public instance; tests pass tighter ones.
    A rate set to ``None`` is no limit (``bucket`` skips it): tests and benchmarks about something else."""

    signin_ip: Rate | None = Rate(60, 3600, burst=30)  # sign-in attempts (argon2 checks) from one address
    # Sign-in failures. One address guessing one name: 5 tries, then 30 s, 1 min, 2 min ... 15 min.
    signin_pair: Backoff = Backoff(free=5, base=30, cap=900)
    # One address guessing many names: 20 tries, then 1 min, 2 min ... 1 hour.
    signin_ip_failures: Backoff = Backoff(free=20, base=60, cap=3600)
    # All addresses together against one account: 300 wrong passwords an hour (bursts of 100).
    # Below this the owner signs in from anywhere during an attack; above it every sign-in to the
    # account waits a few seconds (one interval, 12 s) until the attack slows down.
    signin_account: Rate | None = Rate(300, 3600, burst=100)
    signup_ip: Rate | None = Rate(10, 3600, burst=5)
    reset_ip: Rate | None = Rate(10, 3600, burst=5)  # password-reset mails requested from one address
    reset_account: Rate | None = Rate(3, 3600)  # reset mails sent to one account
    submit_user: Rate | None = Rate(30, 3600, burst=10)  # on top of the per-day quota in Settings
    submit_ip: Rate | None = Rate(60, 3600, burst=20)
    vote_user: Rate | None = Rate(120, 60, burst=60)
    vote_ip: Rate | None = Rate(600, 60, burst=300)  # many users can share one address (NAT, a campus)
    comment_user: Rate | None = Rate(10, 60, burst=5)
    comment_ip: Rate | None = Rate(60, 60, burst=20)
    token_user: Rate | None = Rate(20, 3600, burst=10)  # API tokens created
    verify_user: Rate | None = Rate(3, 3600)  # "send the confirmation link again" per account
    import_user: Rate | None = Rate(30, 3600, burst=10)  # library imports (each may fetch papers from arXiv)
    import_ip: Rate | None = Rate(60, 3600, burst=20)


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

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock  # naive UTC now; injectable for tests
        self._calls = itertools.count(1)

    def hit(self, *buckets: Bucket, what: str = "requests") -> None:
        """Take one token from every bucket (see :func:`bucket`), or none and raise :class:`RateLimited`."""
        if not any(rate is not None and key for key, rate in buckets):
            return
        with self.db.write() as conn:
            self.take(conn, *buckets, what=what)

    def take(self, conn: Connection, *buckets: Bucket, what: str = "requests") -> None:
        """Like :meth:`hit`, inside the caller's write transaction (one lock instead of two for a vote).

        Raising :class:`RateLimited` makes the caller roll back, which also returns any token taken
        from an earlier bucket of this call.
        """
        live = [(key, rate) for key, rate in buckets if rate is not None and key]
        if not live:
            return
        now = epoch_seconds(self.clock())
        for key, rate in live:
            wait = store.take_token(conn, key, now, rate.interval, rate.tolerance)
            if wait:
                raise RateLimited(f"Too many {what}; please wait {human_wait(wait)} and try again.", wait)
        if next(self._calls) % self.PRUNE_EVERY == 0:
            store.prune_rate_limits(conn, now, self.PRUNE_GRACE)

    def blocked(self, *buckets: Bucket, backoffs: tuple[tuple[str, Backoff | None], ...] = ()) -> float:
        """Seconds until every given key would allow one more attempt (0.0: go ahead); takes nothing.

        ``buckets`` are GCRA buckets (see :meth:`hit`), ``backoffs`` are (key, policy) pairs."""
        now = epoch_seconds(self.clock())
        waits = [0.0]
        with self.db.read() as conn:
            for key, rate in buckets:
                if rate is not None and key:
                    waits.append(store.token_wait(conn, key, now, rate.tolerance))
            for key, policy in backoffs:
                if policy is not None and key:
                    waits.append(store.failure_wait(conn, key, now))
        return max(waits)

    def failed(self, *buckets: Bucket, backoffs: tuple[tuple[str, Backoff | None], ...] = ()) -> None:
        """Count one failure: a token from every GCRA bucket (none when already empty) and a step of
        every back-off."""
        now = epoch_seconds(self.clock())
        with self.db.write() as conn:
            for key, rate in buckets:
                if rate is not None and key:
                    store.take_token(conn, key, now, rate.interval, rate.tolerance)
            for key, policy in backoffs:
                if policy is not None and key:
                    store.record_failure(conn, key, now, policy.forget, policy.wait_after)
            if next(self._calls) % self.PRUNE_EVERY == 0:
                store.prune_failures(conn, now)

    def succeeded(self, *keys: str) -> None:
        """Forget the failures of these back-off keys (a right password from that address)."""
        live = [k for k in keys if k]
        if live:
            with self.db.write() as conn:
                store.clear_failures(conn, live)


def human_wait(seconds: float) -> str:
    s = max(1, int(seconds + 0.999))
    if s < 90:
        return f"{s} second{'s' if s != 1 else ''}"
    m = (s + 59) // 60
    if m < 90:
        return f"{m} minutes"
    return f"{(m + 59) // 60} hours"
