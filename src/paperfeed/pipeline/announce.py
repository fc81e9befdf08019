"""arXiv's announcement schedule: when new papers appear, so the harvest runs right after.

arXiv announces new submissions Sunday to Thursday at 20:00 US/Eastern (New York time, so the
UTC hour moves with daylight saving); nothing is announced on Friday and Saturday evenings. The
OAI-PMH interface has the new records shortly after, so the pipeline harvests
``HARVEST_AFTER`` past each announcement. Holidays on which arXiv skips a mailing are not known
here: such an evening's harvest finds nothing new, which costs one request.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

EASTERN = ZoneInfo("America/New_York")
ANNOUNCE_AT = time(20, 0)
ANNOUNCE_DAYS = frozenset({6, 0, 1, 2, 3})  # Sunday .. Thursday (Monday is 0)
HARVEST_AFTER = timedelta(minutes=30)  # give OAI-PMH time to have the new records


def _to_utc(local: datetime) -> datetime:
    return local.astimezone(UTC).replace(tzinfo=None)


def _candidates(now: datetime, step: int) -> list[datetime]:
    """Announcement instants (naive UTC) on the eight days from ``now``'s New York date, walking
    back (``step`` -1) or forward (+1)."""
    local_day = now.replace(tzinfo=UTC).astimezone(EASTERN).date()
    out = []
    for i in range(8):
        day = local_day + timedelta(days=step * i)
        if day.weekday() in ANNOUNCE_DAYS:
            out.append(_to_utc(datetime.combine(day, ANNOUNCE_AT, tzinfo=EASTERN)))
    return out


def last_announcement(now: datetime) -> datetime:
    """The latest announcement at or before ``now`` (naive UTC in, naive UTC out)."""
    return next(t for t in _candidates(now, -1) if t <= now)


def next_announcement(now: datetime) -> datetime:
    """The first announcement after ``now``."""
    return next(t for t in _candidates(now, +1) if t > now)


def last_harvest_slot(now: datetime) -> datetime:
    """The latest harvest time (``HARVEST_AFTER`` past an announcement) at or before ``now``: a
    harvest that last succeeded before it has missed the newest papers."""
    return last_announcement(now - HARVEST_AFTER) + HARVEST_AFTER


def next_harvest_slot(now: datetime) -> datetime:
    """The first harvest time after ``now``."""
    return next_announcement(now - HARVEST_AFTER) + HARVEST_AFTER
