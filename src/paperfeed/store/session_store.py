"""All SQL behind server-side sign-in sessions (the ``sessions`` table).

Called by ``paperfeed.community.sessions`` for every request that carries a session cookie (one
indexed lookup by the hash of the cookie's session id, joined with the user), on sign-in/out and
from ``community_store`` when a password change or a ban must end every session of a user.
Each function runs inside the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from paperfeed.store.db import new_id
from paperfeed.store.schema import sessions, users

# Every column of the user but the password hash (new columns come along without an edit here).
_USER_COLS = [c for c in users.c if c.name != "password_hash"]


def create_session(
    conn: Connection, user_id: int, token_hash: str, now: datetime, expires: datetime, user_agent: str | None
) -> int:
    """A new session row; expired rows of every user are pruned on the way (sign-ins are rare)."""
    conn.execute(delete(sessions).where(sessions.c.expires_at <= now))
    res = conn.execute(
        insert(sessions).values(
            user_id=user_id, token_hash=token_hash, created_at=now, last_seen_at=now, expires_at=expires,
            user_agent=user_agent,
        )
    )  # fmt: skip
    return new_id(res)


def session_user(conn: Connection, token_hash: str, now: datetime) -> dict[str, Any] | None:
    """The user row plus ``session_id``/``session_seen_at`` for a live session, else None."""
    stmt = (
        select(sessions.c.id.label("session_id"), sessions.c.last_seen_at.label("session_seen_at"), *_USER_COLS)
        .select_from(sessions.join(users, users.c.id == sessions.c.user_id))
        .where(sessions.c.token_hash == token_hash, sessions.c.expires_at > now)
    )
    row = conn.execute(stmt).first()
    return dict(row._mapping) if row is not None else None


def touch_session(conn: Connection, session_id: int, now: datetime, expires: datetime) -> None:
    conn.execute(update(sessions).where(sessions.c.id == session_id).values(last_seen_at=now, expires_at=expires))


def delete_session(conn: Connection, token_hash: str) -> bool:
    return (conn.execute(delete(sessions).where(sessions.c.token_hash == token_hash)).rowcount or 0) == 1


def delete_user_sessions(conn: Connection, user_id: int) -> int:
    """End every session of a user (sign out everywhere, password change/reset, ban)."""
    return int(conn.execute(delete(sessions).where(sessions.c.user_id == user_id)).rowcount or 0)


def list_user_sessions(conn: Connection, user_id: int, now: datetime) -> list[dict[str, Any]]:
    stmt = (
        select(sessions.c.id, sessions.c.token_hash, sessions.c.created_at, sessions.c.last_seen_at,
               sessions.c.user_agent)
        .where(sessions.c.user_id == user_id, sessions.c.expires_at > now)
        .order_by(sessions.c.last_seen_at.desc(), sessions.c.id.desc())
    )  # fmt: skip
    return [dict(r._mapping) for r in conn.execute(stmt)]
