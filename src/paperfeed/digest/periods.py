"""Digest periods: which ledger key a digest has and which days of papers it covers.

A period is named after its *send* day in the subscriber's time zone: ``daily:2026-11-24`` is
the digest sent on Tuesday 24 November, covering the papers of Monday 23; ``weekly:2026-W48``
is sent on the Monday of ISO week 48 and covers week 47. Daily digests skip Saturday and
Sunday by default (like Hugging Face's daily papers), so Monday's covers Friday to Sunday.
Pure functions, used by the planner, the composer and the CLI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

FREQUENCIES = ("daily", "weekly")
_KEY_RE = re.compile(r"^(daily):(\d{4}-\d{2}-\d{2})$|^(weekly):(\d{4})-W(\d{2})$")


@dataclass(frozen=True)
class DigestPeriod:
    frequency: str  # daily | weekly
    key: str  # the ledger key: daily:YYYY-MM-DD | weekly:YYYY-Www
    send_date: date  # local day it is sent (weekly: the Monday)
    start: date  # first day of papers covered (inclusive)
    end: date  # last day of papers covered (inclusive)

    @property
    def label(self) -> str:
        if self.start == self.end:
            return self.start.strftime("%a %-d %b %Y")
        if self.frequency == "weekly":
            iso = self.start.isocalendar()
            return f"week {iso.week} ({self.start:%-d %b} – {self.end:%-d %b %Y})"
        return f"{self.start:%a %-d %b} – {self.end:%a %-d %b %Y}"


def is_send_day(frequency: str, day: date, weekdays_only: bool) -> bool:
    if frequency == "weekly":
        return day.weekday() == 0
    return not (weekdays_only and day.weekday() >= 5)


def daily_period(send_date: date, weekdays_only: bool = True) -> DigestPeriod:
    end = send_date - timedelta(days=1)
    # Monday's weekday-only digest also covers the weekend nobody was mailed about.
    start = send_date - timedelta(days=3) if weekdays_only and send_date.weekday() == 0 else end
    return DigestPeriod("daily", f"daily:{send_date.isoformat()}", send_date, start, end)


def weekly_period(any_day: date) -> DigestPeriod:
    monday = any_day - timedelta(days=any_day.weekday())
    iso = monday.isocalendar()
    start = monday - timedelta(days=7)
    return DigestPeriod("weekly", f"weekly:{iso.year}-W{iso.week:02d}", monday, start, monday - timedelta(days=1))


def period_for(frequency: str, day: date, weekdays_only: bool = True) -> DigestPeriod:
    if frequency == "weekly":
        return weekly_period(day)
    if frequency == "daily":
        return daily_period(day, weekdays_only)
    raise ValueError(f"unknown digest frequency {frequency!r}: use daily or weekly")


def parse_key(key: str, weekdays_only: bool = True) -> DigestPeriod:
    """``daily:2026-11-24`` / ``weekly:2026-W48`` -> the period (ValueError when malformed)."""
    m = _KEY_RE.match(key or "")
    if not m:
        raise ValueError(f"{key!r} is not a digest period (daily:YYYY-MM-DD or weekly:YYYY-Www)")
    if m.group(1):
        return daily_period(date.fromisoformat(m.group(2)), weekdays_only)
    return weekly_period(date.fromisocalendar(int(m.group(4)), int(m.group(5)), 1))


def is_digest_key(key: str) -> bool:
    return key.startswith(("daily:", "weekly:"))


def due_period(
    frequency: str, timezone: str, send_hour: int, weekdays_only: bool, now_utc: datetime
) -> tuple[DigestPeriod, datetime] | None:
    """The period a subscriber group is due for at ``now_utc`` (naive UTC), with the UTC moment
    it became due; None when nothing is due yet today (or this week)."""
    tz = ZoneInfo(timezone)
    local = now_utc.replace(tzinfo=UTC).astimezone(tz)
    today = local.date()
    if frequency == "weekly":
        send_day = today - timedelta(days=today.weekday())  # catch up all week if Monday was missed
    else:
        if not is_send_day("daily", today, weekdays_only):
            return None
        send_day = today
    moment = datetime.combine(send_day, time(send_hour), tzinfo=tz).astimezone(UTC).replace(tzinfo=None)
    if now_utc < moment:
        return None
    return period_for(frequency, send_day, weekdays_only), moment
