"""Feed logic shared by the web pages, the JSON API and the feeds: periods and trending.

Pure functions, no SQL: parsing the day / ISO week / month a feed page shows, the trending
score (documented on ``/about/ranking``) and the card fields derived from a papers row.
They run on every feed request, so they stay cheap and side-effect free.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

# -- periods --------------------------------------------------------------------------------

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


# -- trending -------------------------------------------------------------------------------

GRAVITY = 1.5  # how fast age wins over votes; 1.5 halves a paper's score in ~1.6 days at 2 days old
AGE_OFFSET_HOURS = 2.0  # keeps brand-new papers from dividing by ~0
TRENDING_WINDOW_DAYS = 7  # only papers that entered the daily feed this recently can trend
TRENDING_FORMULA = "(upvotes + 1 + log2(1 + github_stars)) / (age_hours + 2) ^ 1.5"


@dataclass(frozen=True)
class TrendingScore:
    upvotes: int
    github_stars: int
    age_hours: float
    points: float
    score: float

    def explain(self) -> str:
        """One line for the card tooltip: the inputs and the result of the formula."""
        stars = f" + log2(1 + {self.github_stars} stars)" if self.github_stars else ""
        return (
            f"score {self.score:.4f} = ({self.upvotes} upvotes + 1{stars}) / "
            f"({self.age_hours:.0f} h old + {AGE_OFFSET_HOURS:g}) ^ {GRAVITY:g}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "upvotes": self.upvotes,
            "github_stars": self.github_stars,
            "age_hours": round(self.age_hours, 2),
            "points": round(self.points, 4),
            "gravity": GRAVITY,
            "score": self.score,
            "formula": TRENDING_FORMULA,
        }


def trending_score(upvotes: int, github_stars: int | None, entered: datetime, now: datetime) -> TrendingScore:
    """The trending score of one paper: votes (plus a little for code popularity) over age.

    ``entered`` is when the paper entered the daily feed; ages below zero (clock skew, a
    future-dated import) count as zero so a paper can never jump ahead by being "from the future".
    """
    stars = max(0, int(github_stars or 0))
    votes = max(0, int(upvotes or 0))
    age_hours = max(0.0, (now - entered).total_seconds() / 3600.0)
    points = votes + 1 + math.log2(1 + stars)
    score = points / (age_hours + AGE_OFFSET_HOURS) ** GRAVITY
    return TrendingScore(votes, stars, age_hours, points, score)


def trending_reference_time(now: datetime, latest_entry: datetime | None) -> datetime:
    """The "now" trending ages are measured from.

    An instance that has stopped importing (or a demo on a historical sample) would otherwise
    show an empty trending page; so when the newest daily entry is older than a day, time
    stands still at one day after it.
    """
    if latest_entry is None:
        return now
    return min(now, latest_entry + timedelta(days=1))


def rank_trending(rows: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Attach ``trending`` (a TrendingScore) to each card row and sort best first.

    Ties are broken by upvotes, then by the newer paper, then by id, so the order is stable.
    """
    for row in rows:
        row["trending"] = trending_score(row["upvotes_total"], row.get("github_stars"), row["submitted_at"], now)
    rows.sort(key=lambda r: (-r["trending"].score, -r["upvotes_total"], -r["submitted_at"].timestamp(), r["id"]))
    return rows


# -- cards ----------------------------------------------------------------------------------

AUTHORS_SHOWN = 3
_DOLLAR_RE = re.compile(r"(?<!\\)\$")
_SPACE_RUN = re.compile(r"\s+")
PREVIEW_CHARS = 320


def _cut_outside_math(head: str) -> str:
    # An odd number of unescaped dollars means the cut fell inside inline math: back off to
    # before it so a preview never shows half a formula.
    dollars = [m.start() for m in _DOLLAR_RE.finditer(head)]
    if len(dollars) % 2 == 1:
        head = head[: dollars[-1]].rstrip()
    return head


def snippet(text: str | None, spans: list[tuple[int, int]] | list[list[int]] = (), limit: int = PREVIEW_CHARS) -> dict:
    """A preview of ``text`` (whitespace collapsed) and the highlight spans moved to match it.

    Without spans this is the start of the text; with spans, the window starts a little before
    the first highlight when that would otherwise be cut off. Cuts land on word boundaries and
    never inside ``$...$`` math.
    """
    raw = text or ""
    text = raw.lstrip()
    lead = len(raw) - len(text)
    text = text.rstrip()
    # Collapse whitespace runs to one space; each run shrinks everything after it by len-1.
    starts: list[int] = []
    shrink: list[int] = []
    total = 0
    for m in _SPACE_RUN.finditer(text):
        if m.group() != " ":
            total += len(m.group()) - 1
            starts.append(m.start())
            shrink.append(total)
    norm = _SPACE_RUN.sub(" ", text) if starts else text

    def to_norm(offset: int) -> int:
        offset = min(max(offset - lead, 0), len(text))
        i = bisect.bisect_left(starts, offset) - 1  # runs starting strictly before the offset
        if i < 0:
            return offset
        run_start = starts[i]
        before = shrink[i - 1] if i else 0
        # Inside a run (past its first character) counts as the end of its single space.
        return max(run_start + 1 - before, offset - shrink[i])

    moved = []
    for span in spans or ():
        try:
            a, b = int(span[0]), int(span[1])
        except (TypeError, ValueError, IndexError):
            continue
        na, nb = to_norm(a), to_norm(b)
        if na < nb and not norm[na:nb].isspace():
            moved.append((na, nb))
    moved.sort()
    start, prefix = 0, ""
    if moved and moved[0][1] > limit * 0.8 and len(norm) > limit:
        start = norm.rfind(" ", 0, max(0, moved[0][0] - 60)) + 1
        if len(_DOLLAR_RE.findall(norm, 0, start)) % 2 == 1:
            # The window would open inside a formula: start after its closing dollar instead.
            close = _DOLLAR_RE.search(norm, start)
            start = close.end() if close and close.end() <= moved[0][0] else 0
        prefix = "…" if start > 0 else ""
    window = norm[start:]
    if len(window) > limit:
        cut = window.rfind(" ", 0, limit)
        cut = cut if cut > limit // 2 else limit
        window = _cut_outside_math(window[:cut]).rstrip(" ,;:") + "…"
    out_spans = [(a - start + len(prefix), min(b, start + len(window)) - start + len(prefix)) for a, b in moved]
    out_spans = [(a, b) for a, b in out_spans if a >= len(prefix) and a < b <= len(prefix) + len(window)]
    return {"text": prefix + window, "spans": out_spans}


def preview(text: str | None, limit: int = PREVIEW_CHARS) -> str:
    """The start of an abstract, cut at a word boundary and never inside ``$...$`` math."""
    return snippet(text, (), limit)["text"]


def author_summary(authors: list[str]) -> dict[str, Any]:
    shown = authors[:AUTHORS_SHOWN]
    return {"shown": shown, "more": max(0, len(authors) - len(shown)), "count": len(authors)}


def categories_of(row: dict[str, Any]) -> list[str]:
    return [c for c in (row.get("categories") or "").split() if c]


def total_upvotes(row: dict[str, Any]) -> int:
    """Local votes plus the count imported from Hugging Face (what every page shows and sorts by)."""
    if row.get("upvotes_total") is not None:
        return int(row["upvotes_total"])
    return int(row.get("upvotes") or 0) + int(row.get("imported_upvotes") or 0)


def card(row: dict[str, Any]) -> dict[str, Any]:
    """The public fields of one paper card (pages, JSON twins, feeds) from a query row."""
    return {
        "id": row["id"],
        "url": f"/papers/{row['id']}",
        "title": row["title"],
        "authors": list(row.get("authors") or []),
        "abstract": row.get("abstract") or "",
        "categories": categories_of(row),
        "published": row.get("published"),
        "listed": row.get("listed"),
        "upvotes": total_upvotes(row),
        "num_comments": int(row.get("num_comments") or 0),
        "github_repo": row.get("github_repo"),
        "github_stars": row.get("github_stars"),
        "project_page": row.get("project_page"),
        "submitter": row.get("entry_submitter"),
        "feed_date": row.get("feed_date"),
        "submitted_at": row.get("submitted_at"),
    }
