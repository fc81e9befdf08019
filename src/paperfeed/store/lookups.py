"""Derived lookup tables for the web: ``paper_authors`` (author pages) and ``paper_categories``
(category feeds), rebuilt from ``papers``.

Scanning 75k papers' JSON author lists costs ~200 ms; an index lookup costs well under one.
``refresh`` brings the tables up to date with every paper modified since its watermark (kept in
``ingest_state``); it runs after imports, at server start and in the background when the web
notices a large backlog. Readers never trust the tables for papers modified after the watermark
(see ``store.feed_queries``), so a late refresh makes pages slower, never wrong.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, text

from paperfeed.store.db import Database, utcnow
from paperfeed.store.schema import ingest_state, paper_authors, paper_categories, papers

SOURCE = "web:feed_helpers"  # the ingest_state row that holds the watermark (named before this module was)
BATCH = 5_000
# A writer stamps modified_at before it commits; the watermark stays this far behind the start of
# the refresh so a transaction still open while we read is re-checked next time, never skipped.
COMMIT_MARGIN = timedelta(seconds=60)


def normalise_name(name: str) -> str:
    """Case- and accent-insensitive form of an author name ("Zoë  Müller" -> "zoe muller")."""
    decomposed = unicodedata.normalize("NFKD", name or "")
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())


def watermark(conn: Connection) -> datetime | None:
    """Papers modified at or after this time may be missing from the tables (None: never built)."""
    cursor = conn.scalar(select(ingest_state.c.cursor).where(ingest_state.c.source == SOURCE))
    return datetime.fromisoformat(cursor) if cursor else None


def _set_watermark(conn: Connection, value: datetime) -> None:
    now = utcnow()
    updated = conn.execute(
        ingest_state.update().where(ingest_state.c.source == SOURCE).values(cursor=value.isoformat(), updated_at=now)
    )
    if updated.rowcount == 0:
        conn.execute(insert(ingest_state).values(source=SOURCE, cursor=value.isoformat(), updated_at=now))


def _rows_for(batch: Sequence[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    authors, cats = [], []
    for r in batch:
        seen_norm: set[str] = set()
        for pos, name in enumerate(r.authors or []):
            if not isinstance(name, str) or not name.strip():
                continue
            norm = normalise_name(name)
            seen_norm.add(norm)
            authors.append({"paper_id": r.id, "position": pos, "name": name, "name_norm": norm})
        for cat in dict.fromkeys((r.categories or "").split()):
            if len(cat) <= 32:
                cats.append({"paper_id": r.id, "category": cat, "listed": r.listed})
    return authors, cats


def refresh(db: Database, *, full: bool = False, batch_size: int = BATCH, margin: timedelta = COMMIT_MARGIN) -> int:
    """Rebuild the rows of every paper modified since the watermark (all papers with ``full``).

    Batches commit one by one and move the watermark, so an interrupted refresh resumes where it
    stopped. Returns the number of papers processed.
    """
    done = 0
    ceiling = utcnow() - margin
    with db.read() as conn:
        since = None if full else watermark(conn)
    last: tuple[datetime, str] | None = None
    if full:
        with db.write() as conn:
            _lock(db, conn)
            conn.execute(delete(paper_authors))
            conn.execute(delete(paper_categories))
    while True:
        with db.write() as conn:
            _lock(db, conn)
            stmt = select(papers.c.id, papers.c.authors, papers.c.categories, papers.c.listed, papers.c.modified_at)
            if last is not None:
                stmt = stmt.where(
                    or_(
                        papers.c.modified_at > last[0],
                        and_(papers.c.modified_at == last[0], papers.c.id > last[1]),
                    )
                )
            elif since is not None:
                stmt = stmt.where(papers.c.modified_at >= since)
            batch = conn.execute(stmt.order_by(papers.c.modified_at, papers.c.id).limit(batch_size)).all()
            if not batch:
                # Everything stamped before the ceiling is now covered (the margin allows for
                # writers that had not committed yet); batches only moved it to their last row.
                current = watermark(conn)
                if current is None or current < ceiling:
                    _set_watermark(conn, ceiling)
                break
            ids = [r.id for r in batch]
            conn.execute(delete(paper_authors).where(paper_authors.c.paper_id.in_(ids)))
            conn.execute(delete(paper_categories).where(paper_categories.c.paper_id.in_(ids)))
            authors, cats = _rows_for(batch)
            if authors:
                conn.execute(insert(paper_authors), authors)
            if cats:
                conn.execute(insert(paper_categories), cats)
            last = (batch[-1].modified_at, batch[-1].id)
            _set_watermark(conn, min(last[0], ceiling))
            done += len(batch)
    return done


def _lock(db: Database, conn: Connection) -> None:
    """One refresh at a time, taken before the first read of the transaction.

    SQLite: a write statement first takes the write lock (waiting out busy_timeout), so two
    workers refreshing at start-up queue up instead of one failing to upgrade its read snapshot.
    PostgreSQL: an advisory lock for the transaction.
    """
    if db.is_sqlite:
        conn.execute(ingest_state.update().where(ingest_state.c.source == SOURCE).values(source=SOURCE))
    else:
        # The lock's name predates this module's; kept so a mixed-version upgrade still excludes.
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('paperfeed.feed_helpers'))"))


def backlog(conn: Connection) -> int | None:
    """How many papers the tables do not cover yet (None: never built)."""
    wm = watermark(conn)
    if wm is None:
        return None
    return conn.scalar(select(func.count()).select_from(papers).where(papers.c.modified_at >= wm)) or 0
