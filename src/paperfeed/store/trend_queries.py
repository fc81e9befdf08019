"""Read queries behind the trend charts that are counted in SQL rather than in the search index.

Used by ``web/trends.py``: the daily feed's upvotes (the "attention" measure of ``/trends``), the
publication days and categories of a set of papers (an author's activity), and the times of a
paper's local votes. Each is one indexed query; bucketing into weeks/months happens in
``search/trends.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, select

from paperfeed.store import upvotes
from paperfeed.store.schema import daily_entries, papers, votes

MAX_IDS_PER_QUERY = 900  # stays under SQLite's bound-parameter limits on every version


@dataclass(frozen=True)
class FeedEntry:
    """A visible daily-feed paper: the day it was featured and its upvotes (local + imported)."""

    paper_id: str
    feed_date: date
    upvotes: int


@dataclass(frozen=True)
class PaperDay:
    paper_id: str
    published: date | None
    categories: list[str]


def feed_entries(conn: Connection) -> dict[str, FeedEntry]:
    """Every visible daily-feed entry by paper id."""
    stmt = (
        select(daily_entries.c.paper_id, daily_entries.c.feed_date, upvotes.TOTAL)
        .join(papers, papers.c.id == daily_entries.c.paper_id)
        .where(daily_entries.c.hidden.is_(False))
    )
    return {
        r.paper_id: FeedEntry(r.paper_id, r.feed_date, int(r.upvotes_total or 0))
        for r in conn.execute(stmt)
    }


def paper_days(conn: Connection, ids: Sequence[str]) -> list[PaperDay]:
    """Publication day and categories of each paper in ``ids`` (missing ids are skipped)."""
    out: list[PaperDay] = []
    for i in range(0, len(ids), MAX_IDS_PER_QUERY):
        chunk = list(ids[i : i + MAX_IDS_PER_QUERY])
        stmt = select(papers.c.id, papers.c.published, papers.c.categories).where(papers.c.id.in_(chunk))
        out.extend(PaperDay(r.id, r.published, (r.categories or "").split()) for r in conn.execute(stmt))
    return out


def vote_times(conn: Connection, paper_id: str) -> list[datetime]:
    """When each of a paper's local upvotes was cast, oldest first."""
    stmt = select(votes.c.created_at).where(votes.c.paper_id == paper_id).order_by(votes.c.created_at)
    return list(conn.scalars(stmt))
