"""All SQL behind private feed tokens (the ``feed_tokens`` table): the secret in a user's private
Atom/RSS/JSON feed URLs, stored as its sha256 like API tokens.

Called by ``paperfeed.personal.feed_tokens``. A user has at most one live token: creating one
revokes the others in the same transaction. Revoked rows stay, so an old URL answers 410 Gone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from paperfeed.store.db import new_id
from paperfeed.store.schema import feed_tokens, users

_USER_COLS = [c for c in users.c if c.name != "password_hash"]


def replace_token(conn: Connection, user_id: int, token_hash: str, prefix: str, now: datetime) -> int:
    """Revoke the user's live token (if any) and store a new one."""
    revoke_all(conn, user_id, now)
    res = conn.execute(insert(feed_tokens).values(user_id=user_id, token_hash=token_hash, prefix=prefix,
                                                  created_at=now))  # fmt: skip
    return new_id(res)


def revoke_all(conn: Connection, user_id: int, now: datetime | None) -> int:
    """Revoke the user's live token (also on a password change or reset: ``community_store``)."""
    res = conn.execute(
        update(feed_tokens)
        .where(feed_tokens.c.user_id == user_id, feed_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now if now is not None else func.now())
    )
    return int(res.rowcount or 0)


def lookup(conn: Connection, token_hash: str) -> dict[str, Any] | None:
    """The token row (``revoked_at`` included) and its owner's columns, or None for a token that
    never existed."""
    stmt = (
        select(feed_tokens.c.id.label("token_id"), feed_tokens.c.revoked_at, feed_tokens.c.last_used_at.label(
            "token_used_at"), *_USER_COLS)
        .select_from(feed_tokens.join(users, users.c.id == feed_tokens.c.user_id))
        .where(feed_tokens.c.token_hash == token_hash)
    )  # fmt: skip
    row = conn.execute(stmt).first()
    return dict(row._mapping) if row is not None else None


def touch(conn: Connection, token_id: int, now: datetime) -> None:
    conn.execute(update(feed_tokens).where(feed_tokens.c.id == token_id).values(last_used_at=now))


def live_token(conn: Connection, user_id: int) -> dict[str, Any] | None:
    """The user's live token's public facts (prefix, dates), never its hash."""
    row = conn.execute(
        select(feed_tokens.c.id, feed_tokens.c.prefix, feed_tokens.c.created_at, feed_tokens.c.last_used_at)
        .where(feed_tokens.c.user_id == user_id, feed_tokens.c.revoked_at.is_(None))
        .order_by(feed_tokens.c.id.desc())
    ).first()
    return dict(row._mapping) if row is not None else None
