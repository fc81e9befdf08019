"""All SQL for digest subscriptions: the subscriber rows (address, preferences, status, confirm
and manage nonces), their counts for the admin and CLI, confirmation-mail throttling and hard
bounces (an address is suppressed after too many).

Used by ``paperfeed.digest`` (web sign-up and manage pages, the sender, the CLI); each function
runs inside the caller's transaction. Split out of ``digest_store`` (the delivery ledger) so each
store module holds one concept. Portable SQL only (SQLite and PostgreSQL).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from paperfeed.store.db import new_id
from paperfeed.store.schema import deliveries, subscriptions


def get_subscription(conn: Connection, sub_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(subscriptions).where(subscriptions.c.id == sub_id)).mappings().first()
    return dict(row) if row else None


def get_subscription_by_email(conn: Connection, email: str) -> dict[str, Any] | None:
    row = conn.execute(select(subscriptions).where(subscriptions.c.email == email)).mappings().first()
    return dict(row) if row else None


def insert_subscription(conn: Connection, values: dict[str, Any]) -> int:
    """Insert one subscription; raises IntegrityError when the address already exists."""
    res = conn.execute(insert(subscriptions).values(**values))
    return new_id(res)


def insert_subscriptions(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Bulk insert (admin imports, benchmarks); raises IntegrityError on a duplicate address."""
    if rows:
        conn.execute(insert(subscriptions), rows)


def update_subscription(conn: Connection, sub_id: int, **values: Any) -> int:
    return conn.execute(update(subscriptions).where(subscriptions.c.id == sub_id).values(**values)).rowcount


def subscription_status_counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(subscriptions.c.status, func.count()).group_by(subscriptions.c.status))
    return {status: int(n) for status, n in rows}


def list_subscriptions(conn: Connection, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    q = select(subscriptions).order_by(subscriptions.c.id).limit(limit)
    if status:
        q = q.where(subscriptions.c.status == status)
    return [dict(r) for r in conn.execute(q).mappings()]


def confirmations_since(conn: Connection, sub_id: int, since: datetime) -> int:
    """How many confirmation mails were queued for this subscription since ``since``."""
    return int(
        conn.scalar(
            select(func.count())
            .select_from(deliveries)
            .where(
                deliveries.c.subscription_id == sub_id,
                deliveries.c.period.like("confirm:%"),
                deliveries.c.created_at >= since,
            )
        )
        or 0
    )


def record_bounce(conn: Connection, sub_id: int, max_bounces: int) -> bool:
    """Count a hard bounce; suppress the address once it reaches ``max_bounces``. True if suppressed."""
    conn.execute(
        update(subscriptions).where(subscriptions.c.id == sub_id).values(hard_bounces=subscriptions.c.hard_bounces + 1)
    )
    res = conn.execute(
        update(subscriptions)
        .where(
            subscriptions.c.id == sub_id,
            subscriptions.c.hard_bounces >= max_bounces,
            subscriptions.c.status != "suppressed",
        )
        .values(status="suppressed")
    )
    return res.rowcount > 0


