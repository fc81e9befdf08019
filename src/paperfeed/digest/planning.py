"""Planning digests: which ledger rows (one per subscriber per period) are due now or for a
given day. Creating the rows *before* anything is sent is what makes the sender's "exactly once,
in effect" possible (see ``send``): planning twice is a no-op, because a row's key is
(subscription, period).

Each (frequency, time zone, hour, weekdays-only) group of subscribers becomes due at its local send
time; ``plan_date`` plans one day's period for everyone, whatever their hour (``digest send --date``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from zoneinfo import ZoneInfoNotFoundError

from paperfeed.digest.periods import FREQUENCIES, DigestPeriod, due_period, period_for
from paperfeed.store import digest_store as store
from paperfeed.store.db import Database

log = logging.getLogger(__name__)


def due_groups(
    groups: Iterable[tuple[str, str, int, bool]], now: datetime
) -> Iterator[tuple[str, str, int, bool, DigestPeriod, datetime]]:
    """The (frequency, time zone, hour, weekdays-only) groups whose send time has come, each with
    its period and the moment it became due. Unknown time zones are skipped with a warning."""
    for freq, tz, hour, weekdays_only in groups:
        try:
            due = due_period(freq, tz, hour, weekdays_only, now)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("digest: skipping subscribers with unknown time zone %r", tz)
            continue
        if due is not None:
            yield freq, tz, hour, weekdays_only, *due


def plan_due(db: Database, now: datetime, *, frequency: str | None = None, email: str | None = None) -> int:
    """Create ledger rows for every subscriber whose local send time has come (the scheduler's
    and plain ``digest send``'s rule). People confirmed after today's send time wait for the next."""
    total = 0
    with db.read() as conn:
        groups = store.active_groups(conn, frequency)
    with db.write() as conn:
        for freq, tz, hour, weekdays_only, period, moment in due_groups(groups, now):
            total += store.plan_period(
                conn,
                frequency=freq,
                period=period.key,
                now=now,
                timezone=tz,
                send_hour=hour,
                weekdays_only=weekdays_only,
                confirmed_before=moment,
                email=email,
            )
    return total


def date_targets(frequency: str | None, day: date) -> list[tuple[str, bool | None, DigestPeriod]]:
    out: list[tuple[str, bool | None, DigestPeriod]] = []
    for freq in [frequency] if frequency else list(FREQUENCIES):
        if freq == "weekly":
            out.append((freq, None, period_for("weekly", day)))
            continue
        for weekdays_only in (True, False):
            if not (weekdays_only and day.weekday() >= 5):  # honour "weekdays only" even when forced
                out.append((freq, weekdays_only, period_for("daily", day, weekdays_only)))
    return out


def plan_date(db: Database, day: date, now: datetime, *, frequency: str | None = None, email: str | None = None) -> int:
    """Ledger rows for the period of ``day`` for all active subscribers, whatever their hour."""
    total = 0
    with db.write() as conn:
        for freq, weekdays_only, period in date_targets(frequency, day):
            total += store.plan_period(
                conn, frequency=freq, period=period.key, now=now, weekdays_only=weekdays_only, email=email
            )
    return total
