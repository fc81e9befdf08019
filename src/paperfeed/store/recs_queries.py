"""SQL behind the "for you" ranker (``paperfeed.recs``): what it ranks, what it learns against,
and the text, categories, popularity and vectors of those papers.

* candidates: papers first listed on the newest ``days`` listing days, plus the daily picks
  (visible daily entries) of the newest ``days`` feed days;
* background: a random sample of papers listed in a recent window, the negatives every user
  model is fitted against (and the reference for the idf and for relevance percentiles);
* paper facts and vectors for a list of ids, read in chunks of 500 (PostgreSQL and SQLite both
  take that many bound parameters).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from sqlalchemy import ColumnElement, Connection, func, select

from paperfeed.store import upvotes
from paperfeed.store.schema import daily_entries, embeddings, papers

_CHUNK = 500


@dataclass(frozen=True)
class PaperFacts:
    """What the ranker reads about a paper (never its authors)."""

    paper_id: str
    title: str
    abstract: str
    categories: tuple[str, ...]
    listed: date | None
    upvotes: int
    feed_date: date | None  # when it was a daily pick


def _recent_days(conn: Connection, col: ColumnElement[date], days: int, on_or_before: date | None) -> list[date]:
    """The newest ``days`` distinct dates in a Date column (not after ``on_or_before``)."""
    stmt = select(col).where(col.isnot(None)).distinct().order_by(col.desc()).limit(days)
    if on_or_before is not None:
        stmt = stmt.where(col <= on_or_before)
    return [d for d in conn.scalars(stmt) if d is not None]


def candidate_ids(
    conn: Connection, *, days: int = 7, picks: bool = True, on_or_before: date | None = None
) -> list[str]:
    """Ids listed on the newest ``days`` listing days (and the daily picks of the newest ``days``
    feed days), newest first."""
    out: dict[str, None] = {}
    listed = _recent_days(conn, papers.c.listed, days, on_or_before)
    if listed:
        stmt = select(papers.c.id).where(papers.c.listed >= min(listed), papers.c.listed <= max(listed))
        out.update(dict.fromkeys(conn.scalars(stmt.order_by(papers.c.listed.desc(), papers.c.id.desc()))))
    if picks:
        feed = _recent_days(conn, daily_entries.c.feed_date, days, on_or_before)
        if feed:
            stmt = select(daily_entries.c.paper_id).where(
                daily_entries.c.feed_date >= min(feed),
                daily_entries.c.feed_date <= max(feed),
                daily_entries.c.hidden.is_(False),
            )
            out.update(dict.fromkeys(conn.scalars(stmt.order_by(daily_entries.c.feed_date.desc()))))
    return list(out)


def background_ids(conn: Connection, *, size: int, window_days: int, seed: int = 0) -> list[str]:
    """A random sample of up to ``size`` papers listed in the ``window_days`` listing days up to
    the newest one. The draw is stable for a given set of papers and ``seed`` (ids are sorted
    before sampling), so every worker process fits against the same background."""
    days = _recent_days(conn, papers.c.listed, window_days, None)
    if days:
        stmt = select(papers.c.id).where(papers.c.listed >= min(days))
    else:  # no listing dates at all (e.g. only daily picks): any papers
        stmt = select(papers.c.id)
    ids = sorted(conn.scalars(stmt))
    if len(ids) <= size:
        return ids
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(ids), size=size, replace=False))
    return [ids[int(i)] for i in pick]


def paper_facts(conn: Connection, ids: Sequence[str]) -> dict[str, PaperFacts]:
    out: dict[str, PaperFacts] = {}
    cols = (
        papers.c.id,
        papers.c.title,
        papers.c.abstract,
        papers.c.categories,
        papers.c.listed,
        upvotes.TOTAL,
        daily_entries.c.feed_date,
    )
    src = papers.outerjoin(daily_entries, (daily_entries.c.paper_id == papers.c.id) & daily_entries.c.hidden.is_(False))
    for i in range(0, len(ids), _CHUNK):
        chunk = list(ids[i : i + _CHUNK])
        for row in conn.execute(select(*cols).select_from(src).where(papers.c.id.in_(chunk))):
            out[row.id] = PaperFacts(
                row.id,
                row.title or "",
                row.abstract or "",
                tuple((row.categories or "").split()),
                row.listed,
                int(row.upvotes_total or 0),
                row.feed_date,
            )
    return out


def popularity(conn: Connection, ids: Sequence[str]) -> dict[str, int]:
    """Total upvotes of each id (votes change all day; text does not)."""
    out: dict[str, int] = {}
    for i in range(0, len(ids), _CHUNK):
        chunk = list(ids[i : i + _CHUNK])
        for pid, n in conn.execute(select(papers.c.id, upvotes.TOTAL).where(papers.c.id.in_(chunk))):
            out[pid] = int(n or 0)
    return out


def vectors_for(conn: Connection, ids: Sequence[str], model: str | None) -> dict[str, np.ndarray]:
    """Stored vectors (float32, L2-normalised) of the ids that have one for ``model`` (any model
    when None: the newest row wins)."""
    out: dict[str, np.ndarray] = {}
    for i in range(0, len(ids), _CHUNK):
        chunk = list(ids[i : i + _CHUNK])
        stmt = select(embeddings.c.paper_id, embeddings.c.vector).where(embeddings.c.paper_id.in_(chunk))
        if model is not None:
            stmt = stmt.where(embeddings.c.model == model)
        for pid, blob in conn.execute(stmt):
            out[pid] = np.frombuffer(bytes(blob), dtype=np.float32)
    return out


def newest_listed(conn: Connection) -> date | None:
    return conn.scalar(select(func.max(papers.c.listed)))
