"""All SQL behind the community features: users, API tokens, password resets, votes, comments,
local submissions, moderation (hide/feature/ban, audit log). Rate limits and sign-in back-off
live in ``rate_limits``.

Called by ``paperfeed.community.*`` (from web requests and the ``paperfeed user`` commands), each
function inside the caller's transaction. Counter columns (``papers.upvotes``/``num_comments``)
move only by ``+1``/``-1`` in the same transaction as the row change they mirror, and only when
that change really happened (rowcount 1), so concurrent requests never drift them; recounting in
a subquery would not be safe under PostgreSQL's READ COMMITTED. Portable SQL, except the
``INSERT ... ON CONFLICT DO NOTHING`` constructs picked by an explicit dialect check.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from paperfeed.store import feed_token_store, upvotes
from paperfeed.store.db import insert_ignore, new_id
from paperfeed.store.schema import (
    audit_log,
    comments,
    daily_entries,
    papers,
    password_resets,
    users,
    votes,
)
from paperfeed.store.session_store import delete_user_sessions
from paperfeed.store.token_store import revoke_user_tokens

USER_COLS = [
    users.c.id,
    users.c.username,
    users.c.email,
    users.c.password_hash,
    users.c.role,
    users.c.banned,
    users.c.created_at,
    users.c.pending_email,
    users.c.verified_at,
]


def lock_for_write(conn: Connection) -> None:
    """Take SQLite's write lock now, before the transaction's first read.

    The engine starts SQLite transactions with a deferred ``BEGIN``: a transaction that reads and
    then writes fails at once with "database is locked" if another writer committed in between
    (WAL snapshot upgrade), instead of waiting on busy_timeout. A no-op UPDATE takes the lock up
    front. PostgreSQL needs nothing here (row locks / FOR UPDATE do the job).
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("UPDATE rate_limits SET tat = tat WHERE 0 = 1")


# -- users ------------------------------------------------------------------------------------


def _user(row: Any) -> dict[str, Any] | None:
    return dict(row._mapping) if row is not None else None


def get_user(conn: Connection, user_id: int) -> dict[str, Any] | None:
    return _user(conn.execute(select(*USER_COLS).where(users.c.id == user_id)).first())


def get_user_by_name(conn: Connection, username: str) -> dict[str, Any] | None:
    """Usernames are unique case-insensitively; the stored spelling is kept for display."""
    stmt = select(*USER_COLS).where(func.lower(users.c.username) == username.lower())
    return _user(conn.execute(stmt).first())


def get_user_by_login(conn: Connection, login: str) -> dict[str, Any] | None:
    """A user by username or by (lower-cased) *confirmed* email address. Never by an address that
    waits for confirmation: anyone can put any address there, and signing in with it would tell
    whether the address has a confirmed owner."""
    low = login.lower()
    stmt = select(*USER_COLS).where(or_(func.lower(users.c.username) == low, users.c.email == low)).limit(2)
    rows = conn.execute(stmt).all()
    by_name = [r for r in rows if r.username.lower() == low]
    return _user(by_name[0] if by_name else rows[0] if rows else None)


def get_user_by_email(conn: Connection, email: str) -> dict[str, Any] | None:
    return _user(conn.execute(select(*USER_COLS).where(users.c.email == email.lower())).first())


def name_or_email_taken(conn: Connection, username: str, email: str | None) -> str | None:
    """Which of the two is already in use ("username"/"email"), or None."""
    if conn.scalar(select(users.c.id).where(func.lower(users.c.username) == username.lower())) is not None:
        return "username"
    if email and conn.scalar(select(users.c.id).where(users.c.email == email.lower())) is not None:
        return "email"
    return None


class Taken(Exception):
    """A unique value (``field``: username or email) is already in use."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} already in use")
        self.field = field


def create_user(
    conn: Connection,
    username: str,
    email: str | None,
    password_hash: str | None,
    role: str,
    now: datetime,
    *,
    pending_email: str | None = None,
) -> int:
    """Insert a user; raises :class:`Taken` when the name (case-insensitively) or email is in use.

    ``email`` is a confirmed address (the account counts as verified from ``now``); a web
    sign-up passes ``email=None`` and its address as ``pending_email`` instead."""
    lock_for_write(conn)
    taken = name_or_email_taken(conn, username, email)
    if taken:
        raise Taken(taken)
    try:
        with conn.begin_nested():  # a concurrent sign-up can still win the unique index
            res = conn.execute(
                insert(users).values(
                    username=username,
                    email=email.lower() if email else None,
                    password_hash=password_hash,
                    role=role,
                    banned=False,
                    created_at=now,
                    pending_email=pending_email.lower() if pending_email else None,
                    verified_at=now if pending_email is None else None,
                )
            )
    except IntegrityError as exc:
        raise Taken("username or email") from exc
    return new_id(res)


def set_password_hash(
    conn: Connection, user_id: int, password_hash: str, *, revoke_sessions: bool, now: datetime | None = None
) -> None:
    """Store a new hash; ``revoke_sessions`` ends every session of the user (the caller starts a new
    one for the browser that made the change) and revokes every API token and private feed URL (at
    ``now``): whoever knew the old password keeps nothing."""
    conn.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash))
    if revoke_sessions:
        delete_user_sessions(conn, user_id)
        revoke_user_tokens(conn, user_id, now)
        feed_token_store.revoke_all(conn, user_id, now)


def set_verify_nonce(conn: Connection, user_id: int, nonce: str) -> str | None:
    """Make ``nonce`` the only valid confirmation link of an unconfirmed account; returns the
    address waiting for confirmation (None: nothing to confirm)."""
    res = conn.execute(
        update(users)
        .where(users.c.id == user_id, users.c.pending_email.is_not(None), users.c.verified_at.is_(None))
        .values(verify_nonce=nonce)
    )
    if res.rowcount != 1:
        return None
    return conn.scalar(select(users.c.pending_email).where(users.c.id == user_id))


def get_verify_nonce(conn: Connection, user_id: int) -> str | None:
    return conn.scalar(select(users.c.verify_nonce).where(users.c.id == user_id))


def confirm_email(conn: Connection, user_id: int, nonce: str, address: str, now: datetime) -> str:
    """Use a confirmation link: "ok", "stale" (used, replaced, or the address changed) or "taken"
    (another account confirmed the address meanwhile)."""
    lock_for_write(conn)
    row = conn.execute(select(users.c.pending_email, users.c.verify_nonce).where(users.c.id == user_id)).first()
    if row is None or not row.verify_nonce or not secrets.compare_digest(row.verify_nonce, nonce):
        return "stale"
    if row.pending_email != address:
        return "stale"
    if conn.scalar(select(users.c.id).where(users.c.email == address, users.c.id != user_id)) is not None:
        return "taken"
    try:
        with conn.begin_nested():
            conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(email=address, pending_email=None, verify_nonce=None, verified_at=now)
            )
    except IntegrityError:
        return "taken"
    return "ok"


def rehash_password(conn: Connection, user_id: int, old_hash: str, new_hash: str) -> None:
    """Upgrade a hash to current parameters, unless the password changed meanwhile."""
    conn.execute(
        update(users).where(users.c.id == user_id, users.c.password_hash == old_hash).values(password_hash=new_hash)
    )


def set_role(conn: Connection, user_id: int, role: str) -> bool:
    res = conn.execute(update(users).where(users.c.id == user_id, users.c.role != role).values(role=role))
    return res.rowcount == 1


def set_banned(conn: Connection, user_id: int, banned: bool) -> bool:
    """Ban/unban; a ban also ends every session of the user."""
    res = conn.execute(update(users).where(users.c.id == user_id, users.c.banned.is_(not banned)).values(banned=banned))
    if banned and res.rowcount == 1:
        delete_user_sessions(conn, user_id)
    return res.rowcount == 1


# -- password resets --------------------------------------------------------------------------


def insert_password_reset(conn: Connection, user_id: int, token_hash: str, now: datetime, expires: datetime) -> None:
    conn.execute(
        insert(password_resets).values(user_id=user_id, token_hash=token_hash, created_at=now, expires_at=expires)
    )


def reset_is_usable(conn: Connection, token_hash: str, now: datetime) -> bool:
    stmt = select(password_resets.c.id).where(
        password_resets.c.token_hash == token_hash,
        password_resets.c.used_at.is_(None),
        password_resets.c.expires_at > now,
    )
    return conn.scalar(stmt) is not None


def consume_password_reset(conn: Connection, token_hash: str, now: datetime) -> int | None:
    """Mark the link used and return its user id, or None when unknown, used or expired.

    The conditional UPDATE is the single-use guarantee: of two concurrent uses, one updates
    the row and the other sees rowcount 0.
    """
    res = conn.execute(
        update(password_resets)
        .where(
            password_resets.c.token_hash == token_hash,
            password_resets.c.used_at.is_(None),
            password_resets.c.expires_at > now,
        )
        .values(used_at=now)
    )
    if res.rowcount != 1:
        return None
    user_id: int = conn.execute(
        select(password_resets.c.user_id).where(password_resets.c.token_hash == token_hash)
    ).scalar_one()
    # Other outstanding links for the same account die with this one.
    conn.execute(
        update(password_resets)
        .where(password_resets.c.user_id == user_id, password_resets.c.used_at.is_(None))
        .values(used_at=now)
    )
    return int(user_id)


# -- papers and votes -------------------------------------------------------------------------


def paper_exists(conn: Connection, paper_id: str) -> bool:
    return conn.scalar(select(papers.c.id).where(papers.c.id == paper_id)) is not None


def paper_counts(conn: Connection, paper_id: str) -> dict[str, int] | None:
    row = conn.execute(
        select(upvotes.TOTAL, papers.c.num_comments).where(papers.c.id == paper_id)
    ).first()
    if row is None:
        return None
    return {"upvotes_total": row.upvotes_total, "num_comments": row.num_comments}


def add_vote(conn: Connection, user_id: int, paper_id: str, now: datetime) -> bool:
    """Insert the vote row; the counter moves only if the row was new. True when inserted."""
    stmt = insert_ignore(conn, votes).values(user_id=user_id, paper_id=paper_id, created_at=now)
    # RETURNING says whether the row went in (INSERT rowcounts are not reliable across drivers).
    if conn.execute(stmt.returning(votes.c.user_id)).first() is None:
        return False
    conn.execute(update(papers).where(papers.c.id == paper_id).values(upvotes=papers.c.upvotes + 1))
    return True


def remove_vote(conn: Connection, user_id: int, paper_id: str) -> bool:
    res = conn.execute(delete(votes).where(votes.c.user_id == user_id, votes.c.paper_id == paper_id))
    if res.rowcount != 1:
        return False
    conn.execute(update(papers).where(papers.c.id == paper_id).values(upvotes=papers.c.upvotes - 1))
    return True


def voted_papers(conn: Connection, user_id: int, paper_ids: list[str]) -> set[str]:
    if not paper_ids:
        return set()
    stmt = select(votes.c.paper_id).where(votes.c.user_id == user_id, votes.c.paper_id.in_(paper_ids))
    return {r[0] for r in conn.execute(stmt)}


# -- comments ---------------------------------------------------------------------------------

_VISIBLE_COMMENT = and_(comments.c.deleted.is_(False), comments.c.hidden.is_(False))


def get_comment(conn: Connection, comment_id: int) -> dict[str, Any] | None:
    stmt = (
        select(comments, users.c.username)
        .select_from(comments.join(users, users.c.id == comments.c.user_id))
        .where(comments.c.id == comment_id)
    )
    row = conn.execute(stmt).first()
    return dict(row._mapping) if row else None


def thread_html_size(conn: Connection, paper_id: str, *, excluding: int | None = None) -> int:
    """Characters of stored HTML in the visible comments of one paper (optionally leaving one out)."""
    cond = [comments.c.paper_id == paper_id, _VISIBLE_COMMENT]
    if excluding is not None:
        cond.append(comments.c.id != excluding)
    stmt = select(func.coalesce(func.sum(func.length(comments.c.body_html)), 0)).where(*cond)
    return int(conn.scalar(stmt) or 0)


def insert_comment(
    conn: Connection, paper_id: str, user_id: int, parent_id: int | None, body: str, body_html: str, now: datetime
) -> int:
    res = conn.execute(
        insert(comments).values(
            paper_id=paper_id, user_id=user_id, parent_id=parent_id, body=body, body_html=body_html,
            created_at=now, deleted=False, hidden=False,
        )
    )  # fmt: skip
    conn.execute(update(papers).where(papers.c.id == paper_id).values(num_comments=papers.c.num_comments + 1))
    return new_id(res)


def edit_comment(
    conn: Connection, comment_id: int, user_id: int, body: str, body_html: str, now: datetime, since: datetime
) -> bool:
    """Replace the body of the user's own, live comment written after ``since`` (the edit window)."""
    res = conn.execute(
        update(comments)
        .where(
            comments.c.id == comment_id,
            comments.c.user_id == user_id,
            comments.c.deleted.is_(False),
            comments.c.created_at >= since,
        )
        .values(body=body, body_html=body_html, edited_at=now)
    )
    return res.rowcount == 1


def comment_sources(conn: Connection, after_id: int, limit: int) -> list[dict[str, Any]]:
    """Live comments' ids, Markdown and stored HTML in id order after ``after_id`` (for re-rendering)."""
    stmt = (
        select(comments.c.id, comments.c.body, comments.c.body_html)
        .where(comments.c.id > after_id, comments.c.deleted.is_(False))
        .order_by(comments.c.id)
        .limit(limit)
    )
    return [dict(r._mapping) for r in conn.execute(stmt)]


def set_comment_html(conn: Connection, comment_id: int, body_html: str) -> None:
    """Replace a comment's stored HTML (the source and the edit time stay)."""
    conn.execute(update(comments).where(comments.c.id == comment_id).values(body_html=body_html))


def _set_comment_flag(conn: Connection, comment_id: int, flag: str, value: bool, extra: dict[str, Any]) -> bool:
    """Flip ``deleted``/``hidden`` if it is not already ``value``; keep num_comments in step."""
    col = comments.c[flag]
    other = comments.c["hidden" if flag == "deleted" else "deleted"]
    res = conn.execute(
        update(comments).where(comments.c.id == comment_id, col.is_(not value)).values({flag: value, **extra})
    )
    if res.rowcount != 1:
        return False
    row = conn.execute(select(comments.c.paper_id, other).where(comments.c.id == comment_id)).one()
    if not row[1]:  # the other flag is off: the comment just left (or re-entered) the visible count
        delta = -1 if value else 1
        conn.execute(update(papers).where(papers.c.id == row[0]).values(num_comments=papers.c.num_comments + delta))
    return True


def delete_comment(conn: Connection, comment_id: int) -> bool:
    """Soft delete (the thread keeps its shape); the Markdown source is dropped."""
    return _set_comment_flag(conn, comment_id, "deleted", True, {"body": "", "body_html": ""})


def set_comment_hidden(conn: Connection, comment_id: int, hidden: bool, reason: str | None) -> bool:
    return _set_comment_flag(conn, comment_id, "hidden", hidden, {"hidden_reason": reason if hidden else None})


def comment_thread(conn: Connection, paper_id: str, limit: int = 1000) -> list[dict[str, Any]]:
    """Every comment of a paper (deleted/hidden ones too, so replies keep their parent), oldest first."""
    stmt = (
        select(
            comments.c.id, comments.c.paper_id, comments.c.parent_id, comments.c.user_id, comments.c.body,
            comments.c.body_html, comments.c.created_at, comments.c.edited_at, comments.c.deleted,
            comments.c.hidden, comments.c.hidden_reason, users.c.username,
        )
        .select_from(comments.join(users, users.c.id == comments.c.user_id))
        .where(comments.c.paper_id == paper_id)
        .order_by(comments.c.created_at, comments.c.id)
        .limit(limit)
    )  # fmt: skip
    return [dict(r._mapping) for r in conn.execute(stmt)]


def recent_comments(conn: Connection, limit: int = 50, *, hidden_only: bool = False) -> list[dict[str, Any]]:
    """Newest comments site-wide with paper title and author (the moderation queue)."""
    stmt = (
        select(
            comments.c.id, comments.c.paper_id, comments.c.body_html, comments.c.created_at, comments.c.hidden,
            comments.c.hidden_reason, comments.c.deleted, users.c.username, users.c.banned, papers.c.title,
        )
        .select_from(
            comments.join(users, users.c.id == comments.c.user_id).join(papers, papers.c.id == comments.c.paper_id)
        )
        .where(comments.c.deleted.is_(False))
        .order_by(comments.c.created_at.desc(), comments.c.id.desc())
        .limit(limit)
    )  # fmt: skip
    if hidden_only:
        stmt = stmt.where(comments.c.hidden.is_(True))
    return [dict(r._mapping) for r in conn.execute(stmt)]


# -- submissions (daily entries) --------------------------------------------------------------


def get_entry(conn: Connection, paper_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(daily_entries).where(daily_entries.c.paper_id == paper_id)).first()
    return dict(row._mapping) if row else None


def count_submissions_since(conn: Connection, user_id: int, since: datetime) -> int:
    stmt = (
        select(func.count())
        .select_from(daily_entries)
        .where(
            daily_entries.c.user_id == user_id, daily_entries.c.source == "local", daily_entries.c.submitted_at >= since
        )
    )
    return int(conn.scalar(stmt) or 0)


def lock_user_row(conn: Connection, user_id: int) -> None:
    """Serialise one user's concurrent submissions (quota check, then insert) on PostgreSQL."""
    lock_for_write(conn)
    conn.execute(select(users.c.id).where(users.c.id == user_id).with_for_update())


def insert_entry(conn: Connection, paper_id: str, feed_date: date, user_id: int, username: str, now: datetime) -> bool:
    """Add a local daily entry; False when the paper already has one (one entry per paper)."""
    stmt = insert_ignore(conn, daily_entries).values(
        paper_id=paper_id, feed_date=feed_date, submitter=username, user_id=user_id, submitted_at=now,
        source="local", featured=False, hidden=False,
    )  # fmt: skip
    return conn.execute(stmt.returning(daily_entries.c.id)).first() is not None


def set_entry_flag(conn: Connection, paper_id: str, flag: str, value: bool, reason: str | None = None) -> bool:
    """Hide/unhide or feature/unfeature a daily entry; True when something changed."""
    col = daily_entries.c[flag]
    values: dict[str, Any] = {flag: value}
    if flag == "hidden":
        values["hidden_reason"] = reason if value else None
    res = conn.execute(update(daily_entries).where(daily_entries.c.paper_id == paper_id, col.is_(not value))
                       .values(**values))  # fmt: skip
    return res.rowcount == 1


def recent_local_entries(conn: Connection, limit: int = 50) -> list[dict[str, Any]]:
    stmt = (
        select(
            daily_entries.c.paper_id, daily_entries.c.feed_date, daily_entries.c.submitter,
            daily_entries.c.submitted_at, daily_entries.c.featured, daily_entries.c.hidden,
            daily_entries.c.hidden_reason, papers.c.title,
        )
        .select_from(daily_entries.join(papers, papers.c.id == daily_entries.c.paper_id))
        .where(daily_entries.c.source == "local")
        .order_by(daily_entries.c.submitted_at.desc(), daily_entries.c.id.desc())
        .limit(limit)
    )  # fmt: skip
    return [dict(r._mapping) for r in conn.execute(stmt)]


def hidden_entries(conn: Connection, limit: int = 50) -> list[dict[str, Any]]:
    stmt = (
        select(daily_entries.c.paper_id, daily_entries.c.feed_date, daily_entries.c.submitter,
               daily_entries.c.featured, daily_entries.c.hidden, daily_entries.c.hidden_reason, papers.c.title)
        .select_from(daily_entries.join(papers, papers.c.id == daily_entries.c.paper_id))
        .where(daily_entries.c.hidden.is_(True))
        .order_by(daily_entries.c.feed_date.desc(), daily_entries.c.id.desc())
        .limit(limit)
    )  # fmt: skip
    return [dict(r._mapping) for r in conn.execute(stmt)]


# -- profiles ---------------------------------------------------------------------------------


def user_submissions(conn: Connection, user_id: int, limit: int = 50) -> list[dict[str, Any]]:
    stmt = (
        select(papers.c.id, papers.c.title, upvotes.TOTAL, papers.c.num_comments,
               daily_entries.c.feed_date, daily_entries.c.featured)
        .select_from(daily_entries.join(papers, papers.c.id == daily_entries.c.paper_id))
        .where(daily_entries.c.user_id == user_id, daily_entries.c.hidden.is_(False))
        .order_by(daily_entries.c.submitted_at.desc(), daily_entries.c.id.desc())
        .limit(limit)
    )  # fmt: skip
    return [dict(r._mapping) for r in conn.execute(stmt)]


def user_upvotes(conn: Connection, user_id: int, limit: int = 50) -> list[dict[str, Any]]:
    stmt = (
        select(papers.c.id, papers.c.title, upvotes.TOTAL, votes.c.created_at)
        .select_from(votes.join(papers, papers.c.id == votes.c.paper_id))
        .where(votes.c.user_id == user_id)
        .order_by(votes.c.created_at.desc(), papers.c.id.desc())
        .limit(limit)
    )
    return [dict(r._mapping) for r in conn.execute(stmt)]


def user_comments(conn: Connection, user_id: int, limit: int = 50) -> list[dict[str, Any]]:
    stmt = (
        select(comments.c.id, comments.c.paper_id, comments.c.body_html, comments.c.created_at, papers.c.title)
        .select_from(comments.join(papers, papers.c.id == comments.c.paper_id))
        .where(comments.c.user_id == user_id, _VISIBLE_COMMENT)
        .order_by(comments.c.created_at.desc(), comments.c.id.desc())
        .limit(limit)
    )
    return [dict(r._mapping) for r in conn.execute(stmt)]


# -- audit log --------------------------------------------------------------------------------


def log_action(
    conn: Connection,
    *,
    actor_id: int | None,
    actor_name: str | None,
    action: str,
    target_type: str,
    target_id: str,
    reason: str | None,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        insert(audit_log).values(
            created_at=now, actor_id=actor_id, actor_name=actor_name, action=action, target_type=target_type,
            target_id=target_id, reason=reason, details=details,
        )
    )  # fmt: skip


def recent_audit(conn: Connection, limit: int = 100) -> list[dict[str, Any]]:
    stmt = select(audit_log).order_by(audit_log.c.created_at.desc(), audit_log.c.id.desc()).limit(limit)
    return [dict(r._mapping) for r in conn.execute(stmt)]
