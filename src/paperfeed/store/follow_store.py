"""All SQL behind follows (the ``follows`` table): add, remove, list and count a user's follows.

Called by ``paperfeed.personal.follows`` (the follow buttons, /following, the private feeds and
the digest's "following" section). ``key`` is the normalised form the service computes (an
author's normalised name, a category, a lower-cased query with its mode), so following the same
thing twice is one row. Each function runs in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from paperfeed.store.schema import follows

_COLS = [follows.c.id, follows.c.kind, follows.c.value, follows.c.key, follows.c.mode, follows.c.created_at]


def count_follows(conn: Connection, user_id: int) -> int:
    return int(conn.scalar(select(func.count()).select_from(follows).where(follows.c.user_id == user_id)) or 0)


def add_follow(
    conn: Connection, user_id: int, kind: str, value: str, key: str, mode: str | None, now: datetime
) -> bool:
    """Insert the follow; False when the user already follows it (nothing changes then)."""
    if get_follow(conn, user_id, kind, key) is not None:
        return False
    try:
        with conn.begin_nested():
            conn.execute(insert(follows).values(user_id=user_id, kind=kind, value=value, key=key, mode=mode,
                                                created_at=now))  # fmt: skip
    except IntegrityError:  # a concurrent request added it first
        return False
    return True


def get_follow(conn: Connection, user_id: int, kind: str, key: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(*_COLS).where(follows.c.user_id == user_id, follows.c.kind == kind, follows.c.key == key)
    ).first()
    return dict(row._mapping) if row is not None else None


def remove_follow(conn: Connection, user_id: int, kind: str, key: str) -> bool:
    res = conn.execute(
        delete(follows).where(follows.c.user_id == user_id, follows.c.kind == kind, follows.c.key == key)
    )
    return res.rowcount == 1


def list_follows(conn: Connection, user_id: int) -> list[dict[str, Any]]:
    """The user's follows, by kind, then oldest first."""
    stmt = select(*_COLS).where(follows.c.user_id == user_id).order_by(follows.c.kind, follows.c.id)
    return [dict(r._mapping) for r in conn.execute(stmt)]


def follows_of(conn: Connection, user_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Every follow of many users at once (the digest: one query per batch of subscribers)."""
    out: dict[int, list[dict[str, Any]]] = {u: [] for u in user_ids}
    if not user_ids:
        return out
    stmt = select(follows.c.user_id, *_COLS).where(follows.c.user_id.in_(user_ids)).order_by(follows.c.id)
    for r in conn.execute(stmt):
        d = dict(r._mapping)
        out[int(d.pop("user_id"))].append(d)
    return out
