"""Reads that feed the lexical index: stream papers changed since a watermark, oldest change first.

Runs during ``LexicalIndex.update`` (``paperfeed index``, and each web process's index follower,
which also polls :func:`change_probe`). Papers come in keyset
pages ordered by ``(modified_at, id)``: each page is its own short read, so a long (re)build never
holds a transaction open, and an interrupted build resumes from the last row it wrote.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select

from paperfeed.store import upvotes
from paperfeed.store.db import Database
from paperfeed.store.schema import papers

Watermark = tuple[datetime, str]  # (modified_at, id) of the last paper already seen

_COLUMNS = [
    papers.c.id,
    papers.c.title,
    papers.c.abstract,
    papers.c.authors,
    papers.c.categories,
    papers.c.published,
    papers.c.listed,
    upvotes.TOTAL,
    papers.c.github_repo,
    papers.c.content_hash,
    papers.c.modified_at,
]


def _after(watermark: Watermark | None) -> ColumnElement[bool] | None:
    if watermark is None:
        return None
    ts, pid = watermark
    # Spelled out instead of a row-value comparison so that both backends use ix_papers_modified_at.
    return or_(papers.c.modified_at > ts, and_(papers.c.modified_at == ts, papers.c.id > pid))


def count_papers_since(db: Database, watermark: Watermark | None) -> int:
    """How many papers :func:`iter_papers_since` would yield now (for progress bars)."""
    stmt = select(func.count()).select_from(papers)
    cond = _after(watermark)
    if cond is not None:
        stmt = stmt.where(cond)
    with db.read() as conn:
        return int(conn.scalar(stmt) or 0)


def change_probe(db: Database, since: datetime | None) -> tuple[datetime | None, int | None]:
    """The newest ``modified_at`` and how many papers changed at or after ``since`` (None without
    one): moves with any commit that an index following the papers table has to read, also a late
    one whose ``modified_at`` lies before the newest. One statement, two lookups in
    ``ix_papers_modified_at``; what each web process's index follower polls (search/follower.py)."""
    newest = select(func.max(papers.c.modified_at)).scalar_subquery()
    if since is None:
        with db.read() as conn:
            return conn.scalar(select(newest)), None
    recent = select(func.count()).select_from(papers).where(papers.c.modified_at >= since).scalar_subquery()
    with db.read() as conn:
        row = conn.execute(select(newest, recent)).one()
    return row[0], int(row[1] or 0)


def _row(r: Any) -> dict[str, Any]:
    authors = r.authors if isinstance(r.authors, list) else []
    return {
        "id": r.id,
        "title": r.title or "",
        "abstract": r.abstract or "",
        "authors": [str(a) for a in authors if a],
        "categories": (r.categories or "").split(),
        "published": r.published or r.listed,
        "upvotes": int(r.upvotes_total or 0),
        "github_repo": r.github_repo,
        "content_hash": r.content_hash,
        "modified_at": r.modified_at,
    }


def iter_papers_since(
    db: Database, watermark: Watermark | None = None, batch_size: int = 2_000
) -> Iterator[dict[str, Any]]:
    """Papers with ``(modified_at, id)`` after ``watermark`` (all papers when None), oldest change
    first, read ``batch_size`` at a time.

    Each row is a dict: id, title, abstract, authors (list), categories (list, primary first),
    published (date; the listing date when the publication date is unknown), upvotes (local +
    imported), github_repo, content_hash, modified_at.
    """
    cursor = watermark
    while True:
        stmt = select(*_COLUMNS).order_by(papers.c.modified_at, papers.c.id).limit(batch_size)
        cond = _after(cursor)
        if cond is not None:
            stmt = stmt.where(cond)
        with db.read() as conn:
            rows = [_row(r) for r in conn.execute(stmt)]
        yield from rows
        if len(rows) < batch_size:
            return
        cursor = (rows[-1]["modified_at"], rows[-1]["id"])
