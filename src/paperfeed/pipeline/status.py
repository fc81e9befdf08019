"""What ``paperfeed status`` and ``/api/v1/status`` show: the leader, the last harvest, the embedding
backlog, each search index's lag behind the database, the digest scheduler.

One builder (:func:`collect`) for both; the CLI renders it as a table, the API returns it as JSON.
Index lag (``lag.py``): how far an index's watermark is behind the database. Every node (a
process running the pipeline) reports its own indexes in its heartbeat, a few seconds old at
most; the process answering adds its own, live.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypedDict

from paperfeed.config import Settings
from paperfeed.digest.send import LEASE_NAME as SENDER_LEASE
from paperfeed.pipeline import harvest_job
from paperfeed.pipeline.digest_job import JOB as DIGEST_JOB
from paperfeed.pipeline.lag import IndexLag, index_lags
from paperfeed.pipeline.runner import LEADER
from paperfeed.search.vectors import default_model
from paperfeed.store import digest_store, leases, pipeline_state
from paperfeed.store import embeddings as embedding_store
from paperfeed.store.db import Database

NODE_GONE = timedelta(minutes=2)  # a node whose heartbeat is older is not listed


class LeaseInfo(TypedDict):
    holder: str
    host: str
    pid: int | None
    since: str
    renewed: str
    expires: str
    live: bool


class NodeInfo(TypedDict):
    holder: str
    host: str
    pid: int | None
    started_at: str
    seen_at: str
    leader: bool
    version: str | None
    indexes: list[IndexLag]


class EmbeddingInfo(TypedDict):
    model: str | None
    backlog: int  # papers without a vector from their current text
    vectors: int
    papers: int


class DigestInfo(TypedDict):
    sender: LeaseInfo | None  # who sends right now (or last)
    last_pass: dict[str, Any]  # the leader's last scheduler pass
    open: dict[str, int]  # deliveries still to send, by status


class Status(TypedDict):
    now: str
    pipeline: bool  # whether this process runs the pipeline (settings.pipeline)
    harvest_sets: list[str]
    leader: LeaseInfo | None
    harvest: dict[str, Any]  # harvest_job.HarvestRecord
    embedding: EmbeddingInfo
    indexes: list[IndexLag]  # the answering process's own (or this home's, from the CLI)
    # The answering process's index follower (search/follower.IndexState: last look and catch-up,
    # errors); None from the CLI or where it does not run.
    follower: dict[str, Any] | None
    nodes: list[NodeInfo]
    digest: DigestInfo


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _lease(row: leases.LeaseRow | None, now: datetime) -> LeaseInfo | None:
    if row is None:
        return None
    return LeaseInfo(
        holder=row.holder,
        host=row.host,
        pid=row.pid,
        since=row.acquired_at.isoformat(),
        renewed=row.renewed_at.isoformat(),
        expires=row.expires_at.isoformat(),
        live=row.live(now),
    )


def _node(row: dict[str, Any]) -> NodeInfo:
    info = row.get("info") or {}
    host, pid = leases.holder_parts(row["holder"])
    return NodeInfo(
        holder=row["holder"],
        host=host,
        pid=pid,
        started_at=row["started_at"].isoformat(),
        seen_at=row["seen_at"].isoformat(),
        leader=bool(info.get("leader")),
        version=info.get("version"),
        indexes=list(info.get("indexes") or []),
    )


def collect(
    settings: Settings,
    db: Database,
    own_indexes: dict[str, datetime | None],
    follower: dict[str, Any] | None = None,
) -> Status:
    """The whole status. ``own_indexes``: the watermarks of the caller's own indexes (a web
    process's, or the lexical index in this home for the CLI); ``follower``: its index
    follower's state."""
    model = default_model(db)
    with db.read() as conn:
        now = leases.database_now(conn)
        leader = _lease(leases.get(conn, LEADER), now)
        sender = _lease(leases.get(conn, SENDER_LEASE), now)
        harvest = pipeline_state.job_record(conn, harvest_job.JOB)
        last_digest = pipeline_state.job_record(conn, DIGEST_JOB)
        nodes = [_node(r) for r in pipeline_state.nodes(conn, now - NODE_GONE)]
        indexes = index_lags(conn, own_indexes)
        open_deliveries = digest_store.open_delivery_counts(conn)
    embedding = EmbeddingInfo(
        model=model,
        backlog=embedding_store.count_to_embed(db, model) if model else embedding_store.count_papers(db),
        vectors=embedding_store.count_vectors(db, model),
        papers=embedding_store.count_papers(db),
    )
    return Status(
        now=now.isoformat(),
        pipeline=settings.pipeline,
        harvest_sets=list(settings.harvest_sets),
        leader=leader,
        harvest=dict(harvest),
        embedding=embedding,
        indexes=indexes,
        follower=follower,
        nodes=nodes,
        digest=DigestInfo(sender=sender, last_pass=last_digest, open=open_deliveries),
    )
