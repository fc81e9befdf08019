"""Private feed tokens: the unguessable secret in a user's personal feed URLs
(``/feeds/u/{token}/following.atom`` and friends), so a feed reader - which has no cookies and no
API token - can read that user's Following and For-you feeds.

256 random bits, stored only as their sha256 (like API tokens); shown once, when made. One live
token per user: making a new one (rotate) or revoking kills the old URL at once, and so does a
password change or reset. A revoked token answers 410 Gone, a token that never existed 404. The
token can only read the two personal feeds: it signs nobody in and works on no other route.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from paperfeed.community.core import Community, User, require_active
from paperfeed.store import feed_token_store as store

PREFIX = "pff_"
MAX_LEN = 100


class Gone(Exception):
    """The token existed and was revoked (410)."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create(c: Community, user: User | None) -> str:
    """A new token for the user (their previous one stops working); the secret is returned once."""
    user = require_active(user)
    token = PREFIX + secrets.token_urlsafe(32)
    with c.db.write() as conn:
        store.replace_token(conn, user.id, _hash(token), token[:10], c.now())
    return token


def revoke(c: Community, user: User | None) -> bool:
    user = require_active(user)
    with c.db.write() as conn:
        return store.revoke_all(conn, user.id, c.now()) > 0


@dataclass(frozen=True)
class TokenInfo:
    prefix: str
    created_at: Any
    last_used_at: Any


def current(c: Community, user: User) -> TokenInfo | None:
    """What the account page shows about the live token (never the secret)."""
    with c.db.read() as conn:
        row = store.live_token(conn, user.id)
    return TokenInfo(row["prefix"], row["created_at"], row["last_used_at"]) if row else None


def owner(c: Community, token: str) -> User | None:
    """The user a feed URL's token belongs to; None for a token that never existed (404);
    :class:`Gone` for a revoked one or a banned owner (410)."""
    if not token.startswith(PREFIX) or len(token) > MAX_LEN:
        return None
    with c.db.read() as conn:
        row = store.lookup(conn, _hash(token))
    if row is None:
        return None
    if row["revoked_at"] is not None or row["banned"]:
        raise Gone()
    now = c.now()
    used = row.get("token_used_at")
    if used is None or (now - used).total_seconds() > 3600:  # at most one write an hour per token
        with c.db.write() as conn:
            store.touch(conn, row["token_id"], now)
    return User.from_row(row)
