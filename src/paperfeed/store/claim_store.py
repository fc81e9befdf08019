"""All SQL behind authorship claims (the ``authorship_claims`` table): a user's claim that they
wrote a paper under a name, and a moderator's decision.

Called by ``paperfeed.personal.claims`` (the claim form on paper pages, the moderation queue,
profiles and author pages). Each function runs in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from paperfeed.store.db import new_id
from paperfeed.store.schema import authorship_claims, papers, users

_C = authorship_claims.c
_COLS = [_C.id, _C.user_id, _C.paper_id, _C.author_name, _C.name_norm, _C.status, _C.created_at, _C.decided_at,
         _C.decided_by, _C.reason]  # fmt: skip


def insert_claim(conn: Connection, user_id: int, paper_id: str, name: str, norm: str, now: datetime) -> int | None:
    """A new pending claim; None when the user already claimed this paper."""
    try:
        with conn.begin_nested():
            values = {"user_id": user_id, "paper_id": paper_id, "author_name": name, "name_norm": norm,
                      "status": "pending", "created_at": now}  # fmt: skip
            res = conn.execute(insert(authorship_claims).values(**values))
    except IntegrityError:
        return None
    return new_id(res)


def get_claim(conn: Connection, claim_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(*_COLS, users.c.username).join(users, users.c.id == _C.user_id)
                       .where(_C.id == claim_id)).first()  # fmt: skip
    return dict(row._mapping) if row is not None else None


def count_user_claims(conn: Connection, user_id: int, status: str | None = None) -> int:
    stmt = select(func.count()).select_from(authorship_claims).where(_C.user_id == user_id)
    if status is not None:
        stmt = stmt.where(_C.status == status)
    return int(conn.scalar(stmt) or 0)


def confirmed_for(conn: Connection, paper_id: str, norm: str) -> dict[str, Any] | None:
    """The confirmed claim on this paper under this name, if any (one person per author slot)."""
    row = conn.execute(
        select(*_COLS).where(_C.paper_id == paper_id, _C.name_norm == norm, _C.status == "confirmed")
    ).first()
    return dict(row._mapping) if row is not None else None


def decide(conn: Connection, claim_id: int, status: str, by: str, reason: str | None, now: datetime) -> bool:
    """Confirm or reject a pending claim; False when it was already decided."""
    res = conn.execute(
        update(authorship_claims)
        .where(_C.id == claim_id, _C.status == "pending")
        .values(status=status, decided_by=by, decided_at=now, reason=reason)
    )
    return res.rowcount == 1


def withdraw(conn: Connection, claim_id: int, user_id: int) -> bool:
    """The claimant takes back a claim (any status): the row goes."""
    res = conn.execute(authorship_claims.delete().where(_C.id == claim_id, _C.user_id == user_id))
    return res.rowcount == 1


def _with_titles(stmt: Any) -> Any:
    return (
        stmt.add_columns(papers.c.title, users.c.username)
        .join(papers, papers.c.id == _C.paper_id)
        .join(users, users.c.id == _C.user_id)
    )


def pending(conn: Connection, limit: int = 50) -> list[dict[str, Any]]:
    """The moderation queue: oldest pending claims first, with the paper's title and authors."""
    stmt = _with_titles(select(*_COLS, papers.c.authors)).where(_C.status == "pending")
    return [dict(r._mapping) for r in conn.execute(stmt.order_by(_C.created_at, _C.id).limit(limit))]


def user_claims(conn: Connection, user_id: int, status: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """A user's claims (newest first), with titles: their profile and account page."""
    stmt = _with_titles(select(*_COLS)).where(_C.user_id == user_id)
    if status is not None:
        stmt = stmt.where(_C.status == status)
    return [dict(r._mapping) for r in conn.execute(stmt.order_by(_C.created_at.desc(), _C.id.desc()).limit(limit))]


def confirmed_paper_ids(conn: Connection, user_id: int) -> list[str]:
    """Papers the user is a confirmed author of (the ranker's positives)."""
    stmt = select(_C.paper_id).where(_C.user_id == user_id, _C.status == "confirmed").order_by(_C.created_at)
    return list(conn.scalars(stmt))


def claims_on(conn: Connection, paper_ids: list[str]) -> dict[str, dict[str, str]]:
    """Confirmed claims on these papers: paper id -> {author name as listed: username}."""
    out: dict[str, dict[str, str]] = {}
    if not paper_ids:
        return out
    stmt = (select(_C.paper_id, _C.author_name, users.c.username).join(users, users.c.id == _C.user_id)
            .where(_C.paper_id.in_(paper_ids), _C.status == "confirmed"))  # fmt: skip
    for r in conn.execute(stmt):
        out.setdefault(r.paper_id, {})[r.author_name] = r.username
    return out


def claimants_of(conn: Connection, norm: str) -> list[str]:
    """Usernames with a confirmed claim under this (normalised) author name: the author page."""
    stmt = (select(users.c.username).join(users, users.c.id == _C.user_id)
            .where(_C.name_norm == norm, _C.status == "confirmed").distinct().order_by(users.c.username))  # fmt: skip
    return list(conn.scalars(stmt))
