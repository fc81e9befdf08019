"""Reads for the search layer: fetch candidate papers by id (one query per result page)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from paperfeed.store.db import Database
from paperfeed.store.schema import papers

# The columns a search result card needs (the abstract is needed for highlighting).
_COLUMNS = [
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
    papers.c.comments,
]


def fetch_papers(db: Database, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Papers by id, as dicts; ids that do not exist are simply absent."""
    wanted = list(dict.fromkeys(ids))
    found: dict[str, dict[str, Any]] = {}
    if not wanted:
        return found
    with db.read() as conn:
        # Chunked so a PostgreSQL/SQLite parameter limit is never hit.
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            for row in conn.execute(select(*_COLUMNS).where(papers.c.id.in_(chunk))):
                found[row.id] = dict(row._mapping)
    return found
