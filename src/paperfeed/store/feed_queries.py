"""Read queries behind the web pages, the JSON API and the RSS/Atom feeds.

Every page request runs one or two of these (a cache in ``web/cache.py`` keeps most requests
from reaching them at all). Each is a few indexed lookups: daily entries by ``feed_date``,
papers by primary key or ``listed``, keyset pages by ``id``. Rows come back as plain dicts
with ``upvotes_total`` (local + imported votes) added.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Connection, Select, and_, case, func, literal, or_, select

from paperfeed.store import lookups, upvotes
from paperfeed.store.rows import PaperRow
from paperfeed.store.schema import (
    authorship_claims,
    comments,
    daily_entries,
    paper_authors,
    paper_categories,
    papers,
    users,
    votes,
)

# Columns a card needs; the abstract is included because cards show a preview of it.
_PAPER_COLS = [
    papers.c.id,
    papers.c.version,
    papers.c.title,
    papers.c.abstract,
    papers.c.authors,
    papers.c.categories,
    papers.c.primary_category,
    papers.c.published,
    papers.c.updated,
    papers.c.listed,
    papers.c.github_repo,
    papers.c.github_stars,
    papers.c.project_page,
    papers.c.upvotes,
    papers.c.imported_upvotes,
    papers.c.num_comments,
    papers.c.ai_summary,
    papers.c.ai_keywords,
]
_ENTRY_COLS = [
    daily_entries.c.feed_date,
    daily_entries.c.submitter.label("entry_submitter"),
    daily_entries.c.submitted_at,
    daily_entries.c.source.label("entry_source"),
    daily_entries.c.featured,
    daily_entries.c.user_id.label("entry_user_id"),
    daily_entries.c.submitter_fullname,
    daily_entries.c.published_at.label("entry_published_at"),
    daily_entries.c.hf_source,
]
# The Hub's order on equal upvotes: the entry with the later entry-level ``publishedAt`` first
# (local entries have none: their submission time stands in).
_ENTRY_TIME = func.coalesce(daily_entries.c.published_at, daily_entries.c.submitted_at)
_POSITION = func.coalesce(daily_entries.c.hf_position, 1_000_000)
_UPVOTES = upvotes.TOTAL
_VISIBLE = daily_entries.c.hidden.is_(False)


def _rows(result: Any) -> list[PaperRow]:
    out = []
    for row in result:
        d = dict(row._mapping)
        if isinstance(d.get("authors"), str):  # a raw-SQL writer may have stored JSON text
            d["authors"] = json.loads(d["authors"])
        d.setdefault("upvotes_total", upvotes.total(d))
        out.append(cast(PaperRow, d))  # the selected columns, named as in PaperRow
    return out


def _in_category(category: str) -> Any:
    # categories is space separated; padding both sides makes "cs.L" never match "cs.LG".
    padded = literal(" ").concat(papers.c.categories).concat(literal(" "))
    return padded.like(f"% {category} %")


# -- cache validation -------------------------------------------------------------------------


def data_version(conn: Connection) -> tuple[Any, ...]:
    """A cheap fingerprint of everything the feeds show; any write that changes a page changes it.

    Each part is an indexed max() or a count over a small community table, so the whole
    statement costs well under a millisecond; the web cache runs it a few times per second at most.
    """
    stmt = select(
        select(func.max(papers.c.modified_at)).scalar_subquery(),
        select(func.max(daily_entries.c.id)).scalar_subquery(),
        # An entry changed on its own (a re-import that changes only the Hub's source object).
        select(func.max(daily_entries.c.modified_at)).scalar_subquery(),
        select(func.count()).select_from(daily_entries).where(daily_entries.c.hidden.is_(True)).scalar_subquery(),
        select(func.count()).select_from(daily_entries).scalar_subquery(),
        select(func.count()).select_from(daily_entries).where(daily_entries.c.featured.is_(True)).scalar_subquery(),
        select(func.count()).select_from(votes).scalar_subquery(),
        # With the count: one user's unvote plus another's vote keeps the count but moves this.
        select(func.max(votes.c.created_at)).scalar_subquery(),
        select(func.max(comments.c.id)).scalar_subquery(),
        select(func.max(comments.c.edited_at)).scalar_subquery(),
        select(func.count())
        .select_from(comments)
        .where(or_(comments.c.hidden.is_(True), comments.c.deleted.is_(True)))
        .scalar_subquery(),
        # Author pages say who is a confirmed author ("claimed by"): a decision or a withdrawal moves these.
        select(func.max(authorship_claims.c.decided_at)).scalar_subquery(),
        select(func.count())
        .select_from(authorship_claims)
        .where(authorship_claims.c.status == "confirmed")
        .scalar_subquery(),
    )
    return tuple(conn.execute(stmt).one())


# -- the daily feed ---------------------------------------------------------------------------


def latest_feed_date(conn: Connection, on_or_before: date | None = None) -> date | None:
    """The newest day with a visible daily entry (not after ``on_or_before`` when given)."""
    stmt = select(func.max(daily_entries.c.feed_date)).where(_VISIBLE)
    if on_or_before is not None:
        stmt = stmt.where(daily_entries.c.feed_date <= on_or_before)
    found = conn.scalar(stmt)
    if found is None and on_or_before is not None:
        # Only future-dated entries exist (clock behind the data): show the earliest of those.
        found = conn.scalar(select(func.min(daily_entries.c.feed_date)).where(_VISIBLE))
    return found


def adjacent_feed_dates(conn: Connection, start: date, end: date) -> tuple[date | None, date | None]:
    """The nearest days with visible entries before ``start`` and after ``end``."""
    prev = conn.scalar(select(func.max(daily_entries.c.feed_date)).where(_VISIBLE, daily_entries.c.feed_date < start))
    nxt = conn.scalar(select(func.min(daily_entries.c.feed_date)).where(_VISIBLE, daily_entries.c.feed_date > end))
    return prev, nxt


def _daily_select(start: date, end: date, submitter: str | None) -> Select[Any]:
    stmt = (
        select(*_PAPER_COLS, *_ENTRY_COLS, _UPVOTES)
        .select_from(daily_entries.join(papers, papers.c.id == daily_entries.c.paper_id))
        .where(daily_entries.c.feed_date >= start, daily_entries.c.feed_date <= end, _VISIBLE)
    )
    if submitter:
        stmt = stmt.where(daily_entries.c.submitter == submitter)
    return stmt


def daily_cards(
    conn: Connection,
    start: date,
    end: date,
    *,
    sort: str = "upvotes",
    submitter: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[PaperRow], int]:
    """Visible daily entries in [start, end] with their papers, plus the total count.

    ``sort``: ``upvotes`` (most upvoted first, as on the feed pages and the Hub; equal upvotes:
    the later entry-level ``publishedAt`` first, as the Hub) or ``published`` (newest entry-level
    ``publishedAt`` first). Ties fall back to id so pages are stable.
    """
    stmt = _daily_select(start, end, submitter)
    if sort == "published":
        order: list[Any] = [_ENTRY_TIME.desc(), papers.c.id.desc()]
    else:
        # Equal upvotes and entry time: the Hub's own order for imported entries (no key in the
        # data explains it), local entries after them.
        order = [_UPVOTES.desc(), _ENTRY_TIME.desc(), _POSITION, papers.c.id.desc()]
    rows = _rows(conn.execute(stmt.order_by(*order).limit(limit).offset(offset)))
    if offset == 0 and len(rows) < limit:
        total = len(rows)
    else:
        count = (
            select(func.count())
            .select_from(daily_entries)
            .where(daily_entries.c.feed_date >= start, daily_entries.c.feed_date <= end, _VISIBLE)
        )
        if submitter:
            count = count.where(daily_entries.c.submitter == submitter)
        total = conn.scalar(count) or 0
    return rows, total


def latest_entry_time(conn: Connection) -> datetime | None:
    return conn.scalar(select(func.max(daily_entries.c.submitted_at)).where(_VISIBLE))


def entries_since(conn: Connection, since: date, until: date, limit: int = 2_000) -> list[PaperRow]:
    """Candidates for trending: visible entries whose feed day is in [since, until]."""
    stmt = _daily_select(since, until, None).order_by(_UPVOTES.desc(), papers.c.id).limit(limit)
    return _rows(conn.execute(stmt))


# -- new on arXiv -----------------------------------------------------------------------------


def latest_listed_date(conn: Connection, on_or_before: date | None = None) -> date | None:
    stmt = select(func.max(papers.c.listed))
    if on_or_before is not None:
        stmt = stmt.where(papers.c.listed <= on_or_before)
    return conn.scalar(stmt)


def adjacent_listed_dates(conn: Connection, day: date) -> tuple[date | None, date | None]:
    prev = conn.scalar(select(func.max(papers.c.listed)).where(papers.c.listed < day))
    nxt = conn.scalar(select(func.min(papers.c.listed)).where(papers.c.listed > day))
    return prev, nxt


def new_papers(
    conn: Connection, day: date, category: str | None, *, limit: int, offset: int
) -> tuple[list[PaperRow], int]:
    """Papers first listed on ``day`` (optionally in one category), primary category then id."""
    cond = [papers.c.listed == day]
    if category:
        cond.append(_in_category(category))
    stmt = (
        select(*_PAPER_COLS, _UPVOTES)
        .where(*cond)
        .order_by(_UPVOTES.desc(), papers.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    rows = _rows(conn.execute(stmt))
    total = conn.scalar(select(func.count()).select_from(papers).where(*cond)) or 0
    return rows, total


def listing_days(conn: Connection, n: int, on_or_before: date | None = None) -> list[date]:
    """The last ``n`` days on which papers were first listed (newest first): "recent" for the
    personal views, so a weekend or a gap in harvesting does not empty them."""
    stmt = select(papers.c.listed).where(papers.c.listed.is_not(None)).distinct()
    if on_or_before is not None:
        stmt = stmt.where(papers.c.listed <= on_or_before)
    return [d for d in conn.scalars(stmt.order_by(papers.c.listed.desc()).limit(n)) if d is not None]


def listed_between(conn: Connection, start: date, end: date, limit: int = 50_000) -> list[PaperRow]:
    """Every paper first listed in [start, end] (with its daily entry's columns when it has a
    visible one), newest listing first: the candidates of the personal views."""
    stmt = (
        select(*_PAPER_COLS, *_ENTRY_COLS, _UPVOTES)
        .select_from(papers.outerjoin(daily_entries, and_(daily_entries.c.paper_id == papers.c.id, _VISIBLE)))
        .where(papers.c.listed >= start, papers.c.listed <= end)
        .order_by(papers.c.listed.desc(), papers.c.id.desc())
        .limit(limit)
    )
    return _rows(conn.execute(stmt))


# -- one paper --------------------------------------------------------------------------------


def paper(conn: Connection, paper_id: str) -> PaperRow | None:
    """The full papers row, with its daily entry fields when it has a visible one."""
    stmt = (
        select(papers, *_ENTRY_COLS, daily_entries.c.hidden.label("entry_hidden"), _UPVOTES)
        .select_from(papers.outerjoin(daily_entries, daily_entries.c.paper_id == papers.c.id))
        .where(papers.c.id == paper_id)
    )
    rows = _rows(conn.execute(stmt))
    if not rows:
        return None
    row = rows[0]
    if row.pop("entry_hidden", None):
        row = cast(PaperRow, {**row, **{col.name: None for col in _ENTRY_COLS}})
    return row


def paper_comments(conn: Connection, paper_id: str, limit: int = 500) -> list[dict[str, Any]]:
    """Visible comments (not hidden, not deleted), oldest first, with the author's username."""
    stmt = (
        select(
            comments.c.id,
            comments.c.parent_id,
            comments.c.body_html,
            comments.c.created_at,
            comments.c.edited_at,
            users.c.username,
        )
        .select_from(comments.join(users, users.c.id == comments.c.user_id))
        .where(comments.c.paper_id == paper_id, comments.c.hidden.is_(False), comments.c.deleted.is_(False))
        .order_by(comments.c.created_at, comments.c.id)
        .limit(limit)
    )
    return [dict(r._mapping) for r in conn.execute(stmt)]


def daily_entries_for(conn: Connection, paper_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Visible daily-entry fields by paper id (to decorate search hits and similar papers)."""
    if not paper_ids:
        return {}
    stmt = select(daily_entries.c.paper_id, *_ENTRY_COLS).where(daily_entries.c.paper_id.in_(paper_ids), _VISIBLE)
    return {r.paper_id: dict(r._mapping) for r in conn.execute(stmt)}


# -- authors ----------------------------------------------------------------------------------


def _delta(conn: Connection, *cols: Any) -> list[Any] | None:
    """Papers the helper tables may not reflect yet (None: the tables were never built)."""
    wm = lookups.watermark(conn)
    if wm is None:
        return None
    return list(conn.execute(select(papers.c.id, *cols).where(papers.c.modified_at >= wm)))


def author_paper_ids(conn: Connection, name: str) -> tuple[list[str], int]:
    """Ids of the papers with ``name`` among their authors (case and accents ignored), and the
    backlog: how many recently modified papers were checked directly because ``paper_authors``
    does not cover them yet (a refresh makes it 0). Author pages and their activity chart."""
    norm = lookups.normalise_name(name)
    delta = _delta(conn, papers.c.authors)
    if delta is None:
        return _author_ids_scan(conn, norm), 0
    fresh = {r.id for r in delta}
    ids = {
        pid
        for pid in conn.scalars(select(paper_authors.c.paper_id).where(paper_authors.c.name_norm == norm))
        if pid not in fresh
    }
    ids |= {r.id for r in delta if any(lookups.normalise_name(a) == norm for a in _authors(r.authors))}
    return sorted(ids), len(delta)


def author_papers(conn: Connection, name: str, *, limit: int, offset: int) -> tuple[list[PaperRow], int, int]:
    """Papers with ``name`` among their authors (case and accents ignored), newest first.

    Returns (rows, total, backlog), ``backlog`` as in :func:`author_paper_ids`.
    """
    ids, backlog = author_paper_ids(conn, name)
    if not ids:
        return [], 0, backlog
    order = (papers.c.published.desc(), papers.c.id.desc())
    stmt = select(*_PAPER_COLS, _UPVOTES).where(papers.c.id.in_(ids)).order_by(*order)
    return _rows(conn.execute(stmt.limit(limit).offset(offset))), len(ids), backlog


def _authors(value: Any) -> list[str]:
    if isinstance(value, str):
        value = json.loads(value)
    return [a for a in value or [] if isinstance(a, str)]


def _author_ids_scan(conn: Connection, norm: str) -> list[str]:
    """Before the helper table exists: every paper's author list, checked in Python (~200 ms on 75k)."""
    return [
        r.id
        for r in conn.execute(select(papers.c.id, papers.c.authors))
        if any(lookups.normalise_name(a) == norm for a in _authors(r.authors))
    ]


def category_latest(conn: Connection, category: str, limit: int = 50) -> list[PaperRow]:
    """The newest papers listed in a category (for its Atom/RSS feed), by listing date then id."""
    delta = _delta(conn, papers.c.categories, papers.c.listed)
    if delta is None:
        stmt = select(*_PAPER_COLS, _UPVOTES).where(_in_category(category))
        return _rows(conn.execute(stmt.order_by(papers.c.listed.desc(), papers.c.id.desc()).limit(limit)))
    fresh = {r.id for r in delta}
    indexed = conn.execute(
        select(paper_categories.c.paper_id, paper_categories.c.listed)
        .where(paper_categories.c.category == category)
        .order_by(paper_categories.c.listed.desc(), paper_categories.c.paper_id.desc())
        .limit(limit + len(fresh))
    ).all()
    keyed = [(r.listed or date.min, r.paper_id) for r in indexed if r.paper_id not in fresh]
    keyed += [(r.listed or date.min, r.id) for r in delta if category in (r.categories or "").split()]
    top = [pid for _, pid in sorted(keyed, reverse=True)[:limit]]
    by_id = {r["id"]: r for r in _rows(conn.execute(select(*_PAPER_COLS, _UPVOTES).where(papers.c.id.in_(top))))}
    return [by_id[pid] for pid in top if pid in by_id]


# -- the papers list (keyset pages) -----------------------------------------------------------


def papers_page(conn: Connection, before_id: str | None, limit: int) -> list[PaperRow]:
    """Papers by id descending (new-style arXiv ids sort chronologically), after a cursor id."""
    stmt = select(*_PAPER_COLS, _UPVOTES).order_by(papers.c.id.desc()).limit(limit)
    if before_id is not None:
        stmt = stmt.where(papers.c.id < before_id)
    return _rows(conn.execute(stmt))


def papers_by_ids(conn: Connection, ids: Iterable[str]) -> dict[str, PaperRow]:
    """Card rows of ``ids`` (unknown ids are simply absent), fetched 500 at a time so any number
    of ids stays under the databases' bound-parameter limits."""
    wanted = list(dict.fromkeys(ids))
    out: dict[str, PaperRow] = {}
    for i in range(0, len(wanted), 500):
        stmt = select(*_PAPER_COLS, _UPVOTES).where(papers.c.id.in_(wanted[i : i + 500]))
        out.update({r["id"]: r for r in _rows(conn.execute(stmt))})
    return out


# What search filters and sorts read of every candidate (a search keeps ~100-200 of them and shows
# 20): the small columns, plus the text and authors only when the query's own constraints must be
# checked on semantic hits. Full card rows are then read for the shown page only.
_FILTER_COLS = [
    papers.c.id,
    papers.c.categories,
    papers.c.published,
    papers.c.listed,
    papers.c.github_repo,
    _UPVOTES,
]
_TEXT_COLS = [papers.c.title, papers.c.abstract, papers.c.authors]


def filter_fields_by_ids(conn: Connection, ids: list[str], *, text: bool = False) -> dict[str, PaperRow]:
    """The filterable fields of the papers ``ids`` (``text``: also title, abstract and authors)."""
    if not ids:
        return {}
    cols = [*_FILTER_COLS, *_TEXT_COLS] if text else _FILTER_COLS
    return {r["id"]: r for r in _rows(conn.execute(select(*cols).where(papers.c.id.in_(ids))))}


def existing_ids(conn: Connection, ids: list[str]) -> set[str]:
    """Which of ``ids`` are papers (an index may still hold one removed since).

    Every search runs this over its ~100-200 candidates, so it is written for the driver
    directly: SQLAlchemy's expanding ``IN`` cost more than SQLite's own lookups (1.2 vs 0.5 ms).
    """
    if not ids:
        return set()
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = f"SELECT id FROM papers WHERE id IN ({', '.join([mark] * len(ids))})"
    return {row[0] for row in conn.exec_driver_sql(sql, tuple(ids))}


# -- stats ------------------------------------------------------------------------------------


def site_stats(conn: Connection) -> dict[str, Any]:
    """Counts for ``/api/v1/stats``: cheap aggregates only (no join over all papers)."""
    p = conn.execute(
        select(func.count(), func.min(papers.c.published), func.max(papers.c.published), func.max(papers.c.listed))
    ).one()
    d = conn.execute(
        select(
            func.count(),
            func.min(daily_entries.c.feed_date),
            func.max(daily_entries.c.feed_date),
            func.sum(case((daily_entries.c.hidden.is_(True), 1), else_=0)),
        )
    ).one()
    with_code = conn.scalar(select(func.count()).select_from(papers).where(papers.c.github_repo.is_not(None))) or 0
    n_comments = conn.scalar(
        select(func.count())
        .select_from(comments)
        .where(and_(comments.c.hidden.is_(False), comments.c.deleted.is_(False)))
    )
    return {
        "papers": p[0],
        "papers_with_code": with_code,
        "published_range": [p[1], p[2]],
        "latest_listing": p[3],
        "daily_entries": d[0],
        "hidden_entries": int(d[3] or 0),
        "daily_range": [d[1], d[2]],
        "votes": conn.scalar(select(func.count()).select_from(votes)) or 0,
        "comments": n_comments or 0,
        "users": conn.scalar(select(func.count()).select_from(users)) or 0,
    }
