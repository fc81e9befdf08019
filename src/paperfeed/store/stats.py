"""Summary counts for ``paperfeed stats`` and the about page."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from paperfeed.store import pgvector
from paperfeed.store.db import Database
from paperfeed.store.schema import daily_entries, embeddings, ingest_state, papers, users


def collect(db: Database) -> dict[str, Any]:
    with db.read() as conn:
        n_papers = conn.scalar(select(func.count()).select_from(papers)) or 0
        n_daily = conn.scalar(select(func.count()).select_from(daily_entries)) or 0
        pub_min, pub_max = conn.execute(select(func.min(papers.c.published), func.max(papers.c.published))).one()
        day_min, day_max = conn.execute(
            select(func.min(daily_entries.c.feed_date), func.max(daily_entries.c.feed_date))
        ).one()
        n_emb = conn.scalar(select(func.count()).select_from(embeddings)) or 0
        n_stale = (
            conn.scalar(
                select(func.count())
                .select_from(papers.outerjoin(embeddings, embeddings.c.paper_id == papers.c.id))
                .where((embeddings.c.id.is_(None)) | (embeddings.c.content_hash != papers.c.content_hash))
            )
            or 0
        )
        n_users = conn.scalar(select(func.count()).select_from(users)) or 0
        cursors = {r.source: r.cursor for r in conn.execute(select(ingest_state.c.source, ingest_state.c.cursor))}
    return {
        "papers": n_papers,
        "daily_entries": n_daily,
        "published_range": [pub_min, pub_max],
        "daily_range": [day_min, day_max],
        "embedded": n_emb,
        "embeddings_stale": n_stale,
        "users": n_users,
        "ingest_cursors": cursors,
        "schema_revision": db.current_revision(),
        "vector_search": pgvector.state(db).describe(),
    }
