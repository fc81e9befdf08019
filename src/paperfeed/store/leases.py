"""Named, expiring leases held in the database: one holder at a time across processes and machines.

The one home of the lease rule. ``pipeline-leader`` elects the process that harvests, embeds and
runs the digest scheduler (``paperfeed.pipeline``); ``digest-sender`` keeps two digest senders
(the scheduler and a ``paperfeed digest send`` from cron) from sending at the same time.

A lease is a row of ``leases``: its ``name``, the ``holder`` (``host:pid:random``, from
:func:`process_holder`), when the holder took it, last renewed it, and when it expires. The rule:

- **take**: one conditional ``UPDATE`` that succeeds only when the lease is ours already or has
  expired; a lease that was never created is ``INSERT``-ed, and the primary key decides a race
  between two first takers. Both backends serialise the ``UPDATE`` on the row (SQLite's write
  lock, PostgreSQL's row lock with the ``WHERE`` re-checked after the wait), so two processes can
  never both see success.
- **renew**: the same ``UPDATE`` restricted to the current holder; False once somebody else took it.
- **dead holders**: a holder on this host whose process is gone is taken over at once (a
  conditional ``UPDATE`` from that holder to us), without waiting for the lease to expire.
- **release**: the holder marks the lease expired now (the row stays, so status can show who
  held it last).
- **time**: on PostgreSQL the database server's clock (``now()``), so machines whose clocks
  disagree still agree on when a lease expires; SQLite is on one machine, so its clock is ours.
  Tests pass a ``clock`` instead.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, case, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from paperfeed.store.db import Database, utcnow
from paperfeed.store.schema import leases


@dataclass(frozen=True)
class LeaseRow:
    name: str
    holder: str
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime

    @property
    def host(self) -> str:
        return holder_parts(self.holder)[0]

    @property
    def pid(self) -> int | None:
        return holder_parts(self.holder)[1]

    def live(self, now: datetime) -> bool:
        return self.expires_at > now


# -- holders ----------------------------------------------------------------------------------


def process_holder() -> str:
    """A holder id for this process: ``host:pid:random`` (random: a restarted process that got the
    same pid is a different holder)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_parts(holder: str) -> tuple[str, int | None]:
    """(host, pid) of a holder id; pid None when the id does not carry one."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    return host, int(pid) if pid.isdigit() else None


def holder_dead(holder: str) -> bool:
    """True when ``holder`` names a process on this host that no longer runs (or is a zombie)."""
    host, pid = holder_parts(holder)
    if host != socket.gethostname() or pid is None or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


# -- SQL --------------------------------------------------------------------------------------


def database_now(conn: Connection) -> datetime:
    """The time leases are measured in: PostgreSQL's clock (naive UTC), or ours for SQLite."""
    if conn.dialect.name == "postgresql":
        value = conn.execute(text("SELECT now() AT TIME ZONE 'UTC'")).scalar_one()
        assert isinstance(value, datetime)
        return value
    return utcnow()


def take(conn: Connection, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew lease ``name`` if it is free (expired) or already ours."""
    res = conn.execute(
        update(leases)
        .where(leases.c.name == name, (leases.c.holder == holder) | (leases.c.expires_at <= now))
        .values(
            holder=holder,
            acquired_at=case((leases.c.holder == holder, leases.c.acquired_at), else_=now),
            renewed_at=now,
            expires_at=now + ttl,
        )
    )
    if res.rowcount == 1:
        return True
    if conn.execute(select(leases.c.name).where(leases.c.name == name)).first() is not None:
        return False
    try:
        with conn.begin_nested():
            conn.execute(
                insert(leases).values(name=name, holder=holder, acquired_at=now, renewed_at=now, expires_at=now + ttl)
            )
    except IntegrityError:
        return False  # another process created it first
    return True


def renew(conn: Connection, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Extend our lease; False when it is no longer ours."""
    res = conn.execute(
        update(leases)
        .where(leases.c.name == name, leases.c.holder == holder)
        .values(renewed_at=now, expires_at=now + ttl)
    )
    return res.rowcount == 1


def steal(conn: Connection, name: str, old_holder: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take lease ``name`` from ``old_holder`` (known dead) if nobody else took it meanwhile."""
    res = conn.execute(
        update(leases)
        .where(leases.c.name == name, leases.c.holder == old_holder)
        .values(holder=holder, acquired_at=now, renewed_at=now, expires_at=now + ttl)
    )
    return res.rowcount == 1


def release(conn: Connection, name: str, holder: str, now: datetime) -> None:
    conn.execute(update(leases).where(leases.c.name == name, leases.c.holder == holder).values(expires_at=now))


def holds(conn: Connection, name: str, holder: str, now: datetime) -> bool:
    """Whether ``holder`` holds a live lease ``name`` (a fencing check inside a writer's transaction)."""
    row = get(conn, name)
    return row is not None and row.holder == holder and row.live(now)


def get(conn: Connection, name: str) -> LeaseRow | None:
    row = conn.execute(select(leases).where(leases.c.name == name)).mappings().first()
    return LeaseRow(**row) if row else None


def all_leases(conn: Connection) -> list[LeaseRow]:
    return [LeaseRow(**r) for r in conn.execute(select(leases).order_by(leases.c.name)).mappings()]


# -- the handle processes use -------------------------------------------------------------------


class Lease:
    """One process's handle on lease ``name``: ``acquire()``, ``renew()``, ``release()``.

    ``clock`` None measures time with :func:`database_now`; tests pass their own clock.
    """

    def __init__(
        self,
        db: Database,
        name: str,
        *,
        ttl: timedelta,
        holder: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.db, self.name, self.ttl, self.clock = db, name, ttl, clock
        self.holder = holder or process_holder()
        self.held = False

    def _now(self, conn: Connection) -> datetime:
        return self.clock() if self.clock is not None else database_now(conn)

    def acquire(self) -> bool:
        """Take the lease (or keep it, renewed); True when this process holds it now."""
        with self.db.write() as conn:
            now = self._now(conn)
            self.held = take(conn, self.name, self.holder, now, self.ttl)
            if not self.held:
                current = get(conn, self.name)
                if current is not None and holder_dead(current.holder):
                    self.held = steal(conn, self.name, current.holder, self.holder, now, self.ttl)
        return self.held

    def renew(self) -> bool:
        """Extend the lease; False (and ``held`` False) once another process has taken it."""
        with self.db.write() as conn:
            self.held = renew(conn, self.name, self.holder, self._now(conn), self.ttl)
        return self.held

    def release(self) -> None:
        if self.held:
            with self.db.write() as conn:
                release(conn, self.name, self.holder, self._now(conn))
            self.held = False

    def holds(self, conn: Connection) -> bool:
        """Fencing: inside a writer's transaction, whether the lease is still ours and live."""
        return holds(conn, self.name, self.holder, self._now(conn))
