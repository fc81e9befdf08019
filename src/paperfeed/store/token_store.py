"""All SQL behind personal API tokens (the ``api_tokens`` table): create, look up by hash (with
the owner and the token's scopes), list, revoke one, revoke all of a user's.

Called by ``paperfeed.community.accounts`` (account pages, every Bearer-authenticated API call)
and by ``community_store.set_password_hash``: a password change or reset revokes every token.
Tokens are stored as the sha256 of the secret; each function runs in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from paperfeed.store.db import new_id
from paperfeed.store.schema import api_tokens, users

# Every column of the user but the password hash (new columns come along without an edit here).
_USER_COLS = [c for c in users.c if c.name != "password_hash"]


def insert_api_token(
    conn: Connection, user_id: int, name: str, token_hash: str, prefix: str, now: datetime, scopes: str
) -> int:
    res = conn.execute(
        insert(api_tokens).values(user_id=user_id, name=name, token_hash=token_hash, prefix=prefix, created_at=now,
                                  scopes=scopes)
    )  # fmt: skip
    return new_id(res)


def user_for_token(conn: Connection, token_hash: str) -> dict[str, Any] | None:
    """The user row plus ``token_id``/``token_used_at`` for a live (not revoked) token."""
    stmt = (
        select(api_tokens.c.id.label("token_id"), api_tokens.c.last_used_at.label("token_used_at"),
               api_tokens.c.scopes.label("token_scopes"), *_USER_COLS)
        .select_from(api_tokens.join(users, users.c.id == api_tokens.c.user_id))
        .where(api_tokens.c.token_hash == token_hash, api_tokens.c.revoked_at.is_(None))
    )
    row = conn.execute(stmt).first()
    return dict(row._mapping) if row is not None else None


def touch_api_token(conn: Connection, token_id: int, now: datetime) -> None:
    conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=now))


def list_api_tokens(conn: Connection, user_id: int) -> list[dict[str, Any]]:
    stmt = (
        select(api_tokens.c.id, api_tokens.c.name, api_tokens.c.prefix, api_tokens.c.created_at,
               api_tokens.c.last_used_at, api_tokens.c.scopes)
        .where(api_tokens.c.user_id == user_id, api_tokens.c.revoked_at.is_(None))
        .order_by(api_tokens.c.created_at.desc(), api_tokens.c.id.desc())
    )  # fmt: skip
    return [dict(r._mapping) for r in conn.execute(stmt)]


def revoke_api_token(conn: Connection, user_id: int, token_id: int, now: datetime) -> bool:
    """Revoke one of the user's own tokens (another user's token id matches nothing)."""
    res = conn.execute(
        update(api_tokens)
        .where(api_tokens.c.id == token_id, api_tokens.c.user_id == user_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return res.rowcount == 1


def revoke_user_tokens(conn: Connection, user_id: int, now: datetime | None) -> int:
    """Revoke every live token of a user (password change or reset); returns how many."""
    res = conn.execute(
        update(api_tokens)
        .where(api_tokens.c.user_id == user_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now if now is not None else func.now())
    )
    return int(res.rowcount or 0)
