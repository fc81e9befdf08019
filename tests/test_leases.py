"""Database leases (store/leases.py): one holder at a time, on SQLite and PostgreSQL, also when
many takers race at the same moment from their own connections."""

from __future__ import annotations

import os
import socket
import threading
from datetime import datetime, timedelta

from paperfeed.store import leases
from paperfeed.store.db import Database, utcnow
from paperfeed.store.leases import Lease

TTL = timedelta(seconds=30)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 20, 0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def test_one_holder_until_it_expires_or_releases(any_db: Database) -> None:
    clock = Clock()
    a = Lease(any_db, "job", holder="host-a:1:x", ttl=TTL, clock=clock)
    b = Lease(any_db, "job", holder="host-b:2:y", ttl=TTL, clock=clock)
    assert a.acquire() and not b.acquire()
    clock.advance(seconds=10)
    assert a.renew() and a.acquire()  # renewing keeps the original acquisition time
    with any_db.read() as conn:
        row = leases.get(conn, "job")
    assert row is not None
    assert (row.holder, row.host, row.pid) == ("host-a:1:x", "host-a", 1)
    assert (row.acquired_at, row.renewed_at, row.expires_at) == (
        datetime(2026, 12, 1, 20, 0),
        datetime(2026, 12, 1, 20, 0, 10),
        datetime(2026, 12, 1, 20, 0, 40),
    )
    clock.advance(seconds=29)
    assert not b.acquire()  # still a's for one more second
    clock.advance(seconds=2)  # a stopped renewing (crashed on another host)
    assert b.acquire() and not a.renew() and not a.held
    b.release()
    with any_db.read() as conn:
        row = leases.get(conn, "job")
        assert row is not None and row.holder == "host-b:2:y" and not row.live(clock())  # the row says who held it
    assert a.acquire()
    with any_db.read() as conn:
        assert a.holds(conn) and not b.holds(conn)
        assert [r.name for r in leases.all_leases(conn)] == ["job"]


def test_a_dead_holder_on_this_host_is_taken_over_at_once(any_db: Database) -> None:
    clock = Clock()
    dead = Lease(any_db, "job", holder=f"{socket.gethostname()}:{2**22 + 12345}:z", ttl=timedelta(hours=1), clock=clock)
    assert dead.acquire()
    c = Lease(any_db, "job", holder="host-c:3:w", ttl=TTL, clock=clock)
    assert c.acquire()  # no process has that pid here: no need to wait an hour
    c.release()
    alive = Lease(any_db, "job", holder=f"{socket.gethostname()}:{os.getpid()}:live", ttl=TTL, clock=clock)
    assert alive.acquire()
    assert not Lease(any_db, "job", holder="host-c:3:w", ttl=TTL, clock=clock).acquire()  # this process lives


def test_leases_with_different_names_are_independent(db: Database) -> None:
    clock = Clock()
    assert Lease(db, "one", holder="h:1:a", ttl=TTL, clock=clock).acquire()
    assert Lease(db, "two", holder="h:2:b", ttl=TTL, clock=clock).acquire()
    assert not Lease(db, "one", holder="h:2:b", ttl=TTL, clock=clock).acquire()


def test_the_database_clock_measures_leases(any_db: Database) -> None:
    """Without a test clock, time is the database's (PostgreSQL's own clock): a lease taken now
    expires one TTL from now."""
    lease = Lease(any_db, "job", ttl=TTL)
    before = utcnow()
    assert lease.acquire()
    with any_db.read() as conn:
        row = leases.get(conn, "job")
        assert row is not None and row.holder == lease.holder and lease.holds(conn)
    assert abs((row.acquired_at - before).total_seconds()) < 5  # same machine: the clocks agree
    assert row.expires_at - row.acquired_at == TTL
    assert leases.holder_parts(lease.holder) == (socket.gethostname(), os.getpid())


def _race(url: str, name: str, takers: int, clock: Clock) -> list[str]:
    """``takers`` threads, each with its own engine (own connections), take ``name`` at once."""
    dbs = [Database(url) for _ in range(takers)]
    barrier = threading.Barrier(takers)
    won: list[str] = []
    errors: list[BaseException] = []

    def take(i: int) -> None:
        lease = Lease(dbs[i], name, holder=f"racer-{i}:{i}:r", ttl=TTL, clock=clock)
        barrier.wait(10)
        try:
            if lease.acquire():
                won.append(lease.holder)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=take, args=(i,)) for i in range(takers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for d in dbs:
        d.dispose()
    assert not errors, errors
    return won


def test_racing_takers_one_wins(any_db: Database) -> None:
    """A lease nobody holds yet (INSERT race) and an expired one (UPDATE race): exactly one winner
    every round."""
    clock = Clock()
    for round_ in range(3):
        assert len(_race(any_db.url, f"fresh-{round_}", 8, clock)) == 1
        assert Lease(any_db, f"stale-{round_}", holder="gone:1:x", ttl=TTL, clock=clock).acquire()
        clock.advance(minutes=1)
        taken = _race(any_db.url, f"stale-{round_}", 8, clock)
        assert len(taken) == 1
        with any_db.read() as conn:
            row = leases.get(conn, f"stale-{round_}")
        assert row is not None and [row.holder] == taken
