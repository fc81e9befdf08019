"""All SQL behind the persisted "for you" models (the ``user_models`` table, issue 14).

A user's fitted model is stored with the fingerprint of what it was fitted from, so that any
process (web workers, the digest sender) ranks with it and refits only when the fingerprint no
longer matches (the user saved, upvoted or dismissed something, or the model settings changed).
The bytes are opaque here (``paperfeed.recs.persisted`` writes and reads them). Each function
runs in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, delete, literal, select, update

from paperfeed.store.db import insert_ignore
from paperfeed.store.schema import user_models, users


@dataclass(frozen=True)
class StoredModel:
    fingerprint: str
    background_day: date | None
    model: bytes
    fitted_at: datetime


def get_model(conn: Connection, user_id: int) -> StoredModel | None:
    row = conn.execute(
        select(user_models.c.fingerprint, user_models.c.background_day, user_models.c.model, user_models.c.fitted_at)
        .where(user_models.c.user_id == user_id)
    ).first()  # fmt: skip
    if row is None:
        return None
    return StoredModel(row.fingerprint, row.background_day, bytes(row.model), row.fitted_at)


def put_model(
    conn: Connection, user_id: int, fingerprint: str, background_day: date | None, model: bytes, now: datetime
) -> bool:
    """Store (or replace) the user's model; False when there is no such user (nothing stored).
    Two processes storing at once: one row, the later write wins."""
    values = {"fingerprint": fingerprint, "background_day": background_day, "model": model, "fitted_at": now}
    if conn.execute(update(user_models).where(user_models.c.user_id == user_id).values(**values)).rowcount:
        return True
    source = select(users.c.id, *(literal(v, user_models.c[k].type) for k, v in values.items())).where(
        users.c.id == user_id
    )
    stmt = insert_ignore(conn, user_models).from_select(["user_id", *values], source)
    return conn.execute(stmt.returning(user_models.c.user_id)).first() is not None


def delete_model(conn: Connection, user_id: int) -> bool:
    return bool(conn.execute(delete(user_models).where(user_models.c.user_id == user_id)).rowcount)
