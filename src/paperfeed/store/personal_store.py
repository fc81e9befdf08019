"""All SQL behind a user's personal settings (the ``personal_settings`` table): the for-you
dials, exclusions, the ranker's reset time and the personal digest sections.

Called by ``paperfeed.personal.settings`` (the /for-you controls) and, through it, by the digest's
personal sections, which look settings up by the subscriber's confirmed address. A user without a
row has the defaults. Each function runs in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from paperfeed.store.schema import personal_settings, users

_COLS = [c for c in personal_settings.c if c.name not in ("user_id", "updated_at")]


def get_settings(conn: Connection, user_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(*_COLS).where(personal_settings.c.user_id == user_id)).first()
    return dict(row._mapping) if row is not None else None


def put_settings(conn: Connection, user_id: int, values: dict[str, Any], now: datetime) -> None:
    """Insert or update the user's row with ``values`` (column -> value)."""
    res = conn.execute(
        update(personal_settings).where(personal_settings.c.user_id == user_id).values(**values, updated_at=now)
    )
    if res.rowcount == 0:
        conn.execute(insert(personal_settings).values(user_id=user_id, **values, updated_at=now))


def digest_users(conn: Connection, emails: Iterable[str]) -> dict[str, dict[str, Any]]:
    """For digest subscribers' addresses (lower-cased): the account confirmed with that address
    that asked for a personal section, with its settings. Addresses without one are left out."""
    wanted = sorted({e.lower() for e in emails if e})
    if not wanted:
        return {}
    stmt = (
        select(
            func.lower(users.c.email).label("address"),
            users.c.id.label("user_id"),
            users.c.username,
            users.c.banned,
            *_COLS,
        )  # fmt: skip
        .join(personal_settings, personal_settings.c.user_id == users.c.id)
        .where(func.lower(users.c.email).in_(wanted))
        .where((personal_settings.c.digest_for_you.is_(True)) | (personal_settings.c.digest_following.is_(True)))
    )
    return {r.address: dict(r._mapping) for r in conn.execute(stmt) if not r.banned}
