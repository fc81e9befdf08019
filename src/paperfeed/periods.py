"""Feed periods: the day, ISO week or month one feed page shows, parsed from its URL.

Pure functions, no SQL, cheap: every feed request parses its period (``/papers/date/2025-01-15``,
``/papers/week/2025-W03``, ``/papers/month/2025-01``), and the digests and query parameters use
the same day parser. Malformed or impossible dates raise :class:`PeriodError` with a message a
person can act on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

_DAY_RE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")
_WEEK_RE = re.compile(r"^([0-9]{4})-W([0-9]{2})$")
_MONTH_RE = re.compile(r"^([0-9]{4})-([0-9]{2})$")
# The feed is about papers; dates outside this range are typos, not requests.
MIN_YEAR, MAX_YEAR = 1991, 2999


class PeriodError(ValueError):
    """A day/week/month string that is malformed or names no real period (e.g. 2025-02-30)."""


@dataclass(frozen=True)
class Period:
    """A closed date range shown as one feed page (a day, an ISO week or a month)."""

    kind: str  # day | week | month
    start: date
    end: date  # inclusive
    label: str  # the canonical string: 2025-01-15, 2025-W03, 2025-01

    @property
    def title(self) -> str:
        if self.kind == "day":
            return self.start.strftime("%A, %B %-d, %Y")
        if self.kind == "week":
            iso = self.start.isocalendar()
            return f"Week {iso.week}, {iso.year} ({self.start:%b %-d} – {self.end:%b %-d})"
        return self.start.strftime("%B %Y")

    def previous(self) -> Period:
        if self.kind == "day":
            return day_period(self.start - timedelta(days=1))
        if self.kind == "week":
            return week_period(self.start - timedelta(days=7))
        return month_period((self.start - timedelta(days=1)).replace(day=1))

    def next(self) -> Period:
        if self.kind == "day":
            return day_period(self.start + timedelta(days=1))
        if self.kind == "week":
            return week_period(self.start + timedelta(days=7))
        return month_period(self.end + timedelta(days=1))


def _year_ok(year: int, text: str) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise PeriodError(f"{text!r}: the year must be between {MIN_YEAR} and {MAX_YEAR}")


def day_period(d: date) -> Period:
    return Period("day", d, d, d.isoformat())


def week_period(d: date) -> Period:
    monday = d - timedelta(days=d.weekday())
    iso = monday.isocalendar()
    return Period("week", monday, monday + timedelta(days=6), f"{iso.year}-W{iso.week:02d}")


def month_period(d: date) -> Period:
    first = d.replace(day=1)
    nxt = (first + timedelta(days=32)).replace(day=1)
    return Period("month", first, nxt - timedelta(days=1), f"{first:%Y-%m}")


def parse_day(text: str) -> date:
    """``YYYY-MM-DD`` -> date, with a message that says what is wrong (format or calendar)."""
    m = _DAY_RE.match(text or "")
    if not m:
        raise PeriodError(f"{text!r} is not a date: use YYYY-MM-DD, e.g. 2025-01-15")
    year, month, day = (int(g) for g in m.groups())
    _year_ok(year, text)
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise PeriodError(f"{text!r} is not a real date ({exc})") from None


def parse_week(text: str) -> Period:
    """``YYYY-Www`` (ISO week) -> the Monday..Sunday period."""
    m = _WEEK_RE.match(text or "")
    if not m:
        raise PeriodError(f"{text!r} is not an ISO week: use YYYY-Www, e.g. 2025-W03")
    year, week = int(m.group(1)), int(m.group(2))
    _year_ok(year, text)
    try:
        monday = date.fromisocalendar(year, week, 1)
    except ValueError:
        raise PeriodError(f"{text!r}: {year} has no ISO week {week}") from None
    return week_period(monday)


def parse_month(text: str) -> Period:
    """``YYYY-MM`` -> the whole calendar month."""
    m = _MONTH_RE.match(text or "")
    if not m:
        raise PeriodError(f"{text!r} is not a month: use YYYY-MM, e.g. 2025-01")
    year, month = int(m.group(1)), int(m.group(2))
    _year_ok(year, text)
    if not 1 <= month <= 12:
        raise PeriodError(f"{text!r}: the month must be 01 to 12")
    return month_period(date(year, month, 1))


def parse_period(kind: str, text: str) -> Period:
    if kind == "day":
        return day_period(parse_day(text))
    if kind == "week":
        return parse_week(text)
    if kind == "month":
        return parse_month(text)
    raise PeriodError(f"unknown period kind {kind!r}")
