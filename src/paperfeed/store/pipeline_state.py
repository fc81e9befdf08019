"""SQL for the pipeline's own records: node heartbeats, job records, and the cheap "did papers
change?" reads the pipeline polls.

- ``pipeline_nodes``: one row per process running the pipeline, renewed every few seconds, with
  the state of that process's search indexes (``info``); rows not seen for a day are pruned.
- job records (the last harvest, the last digest pass) are small JSON documents kept in
  ``ingest_state`` under ``pipeline:<job>`` sources, next to the harvest's own resume points.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from paperfeed.store.papers import get_ingest_state, set_ingest_state
from paperfeed.store.schema import embeddings, papers, pipeline_nodes


def heartbeat(conn: Connection, holder: str, started_at: datetime, now: datetime, info: dict[str, Any]) -> None:
    """Record that ``holder`` is alive now (creating its row the first time)."""
    res = conn.execute(update(pipeline_nodes).where(pipeline_nodes.c.holder == holder).values(seen_at=now, info=info))
    if res.rowcount == 0:
        conn.execute(insert(pipeline_nodes).values(holder=holder, started_at=started_at, seen_at=now, info=info))


def forget_node(conn: Connection, holder: str) -> None:
    conn.execute(delete(pipeline_nodes).where(pipeline_nodes.c.holder == holder))


def prune_nodes(conn: Connection, before: datetime) -> int:
    return int(conn.execute(delete(pipeline_nodes).where(pipeline_nodes.c.seen_at < before)).rowcount or 0)


def nodes(conn: Connection, since: datetime) -> list[dict[str, Any]]:
    """Nodes seen at or after ``since``, oldest first."""
    q = select(pipeline_nodes).where(pipeline_nodes.c.seen_at >= since).order_by(pipeline_nodes.c.started_at)
    return [dict(r) for r in conn.execute(q).mappings()]


def job_source(job: str) -> str:
    return f"pipeline:{job}"


def job_record(conn: Connection, job: str) -> dict[str, Any]:
    """The last record ``job`` saved (``{}`` before its first run)."""
    state = get_ingest_state(conn, job_source(job))
    return dict((state or {}).get("info") or {})


def save_job_record(conn: Connection, job: str, record: dict[str, Any]) -> None:
    set_ingest_state(conn, job_source(job), None, record)


def papers_changed_at(conn: Connection) -> datetime | None:
    """The newest ``papers.modified_at`` (an index lookup): moves whenever a paper is added or changed."""
    value = conn.scalar(select(func.max(papers.c.modified_at)))
    return value if isinstance(value, datetime) else None


def papers_changed_since(conn: Connection, since: datetime | None) -> int:
    """Papers written after ``since`` (all of them for None): what an index at that watermark lacks."""
    q = select(func.count()).select_from(papers)
    if since is not None:
        q = q.where(papers.c.modified_at > since)
    return int(conn.scalar(q) or 0)


def vectors_written_at(conn: Connection) -> datetime | None:
    value = conn.scalar(select(func.max(embeddings.c.created_at)))
    return value if isinstance(value, datetime) else None


def vectors_written_since(conn: Connection, since: datetime | None) -> int:
    q = select(func.count()).select_from(embeddings)
    if since is not None:
        q = q.where(embeddings.c.created_at > since)
    return int(conn.scalar(q) or 0)
