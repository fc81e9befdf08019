"""All SQL for email digests: the delivery ledger, papers already mailed, and the read queries
that pick a digest's papers (subscriptions themselves: ``subscription_store``).

Used by ``paperfeed.digest`` (web sign-up, the sender, the scheduler and the CLI). Functions
take a :class:`~sqlalchemy.Connection` so callers can group several steps into one
transaction (``with db.write() as conn``). Portable SQL only (SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    Integer,
    String,
    and_,
    bindparam,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)

from paperfeed.store import upvotes
from paperfeed.store.db import insert_ignore, new_id
from paperfeed.store.schema import daily_entries, deliveries, digest_sent_papers, papers, subscriptions

# Delivery statuses. ``sending`` rows belong to ``claimed_by`` until it records the outcome.
PENDING, SENDING, SENT, RETRY, FAILED, EMPTY, SKIPPED = (
    "pending",
    "sending",
    "sent",
    "retry",
    "failed",
    "empty",
    "skipped",
)
OPEN_STATUSES = (PENDING, RETRY)

_TOTAL = upvotes.TOTAL
_PAPER_COLS = (
    papers.c.id,
    papers.c.title,
    papers.c.abstract,
    papers.c.authors,
    papers.c.categories,
    papers.c.published,
    papers.c.listed,
    papers.c.github_repo,
    papers.c.github_stars,
    papers.c.upvotes,
    papers.c.imported_upvotes,
    _TOTAL,
)


# -- planning: one ledger row per subscriber per period ---------------------------------------


def active_groups(conn: Connection, frequency: str | None = None) -> list[tuple[str, str, int, bool]]:
    """Distinct (frequency, timezone, send_hour, weekdays_only) among active subscriptions."""
    q = (
        select(
            subscriptions.c.frequency,
            subscriptions.c.timezone,
            subscriptions.c.send_hour,
            subscriptions.c.weekdays_only,
        )
        .where(subscriptions.c.status == "active")
        .distinct()
    )
    if frequency:
        q = q.where(subscriptions.c.frequency == frequency)
    return [(f, tz, int(h), bool(w)) for f, tz, h, w in conn.execute(q)]


def _group_filter(
    frequency: str,
    timezone: str | None,
    send_hour: int | None,
    weekdays_only: bool | None,
    confirmed_before: datetime | None,
    email: str | None,
) -> list[Any]:
    conds: list[Any] = [subscriptions.c.status == "active", subscriptions.c.frequency == frequency]
    if timezone is not None:
        conds.append(subscriptions.c.timezone == timezone)
    if send_hour is not None:
        conds.append(subscriptions.c.send_hour == send_hour)
    if weekdays_only is not None:
        conds.append(subscriptions.c.weekdays_only == weekdays_only)
    if confirmed_before is not None:
        conds.append(subscriptions.c.confirmed_at <= confirmed_before)
    if email is not None:
        conds.append(subscriptions.c.email == email)
    return conds


def plan_period(
    conn: Connection,
    *,
    frequency: str,
    period: str,
    now: datetime,
    timezone: str | None = None,
    send_hour: int | None = None,
    weekdays_only: bool | None = None,
    confirmed_before: datetime | None = None,
    email: str | None = None,
) -> int:
    """Create the ``pending`` ledger rows of ``period`` for every matching active subscriber
    that has none yet (one INSERT ... SELECT; the unique key makes it idempotent)."""
    conds = _group_filter(frequency, timezone, send_hour, weekdays_only, confirmed_before, email)
    already = exists().where(deliveries.c.subscription_id == subscriptions.c.id, deliveries.c.period == period)
    sel = select(
        subscriptions.c.id,
        literal(period, String),
        literal(PENDING, String),
        literal(0, Integer),
        literal(now, DateTime),
    ).where(*conds, ~already)
    stmt = insert(deliveries).from_select(["subscription_id", "period", "status", "attempts", "created_at"], sel)
    # SQLAlchemy keeps an INSERT's rowcount only when asked; without it psycopg reports -1.
    res = conn.execute(stmt.execution_options(preserve_rowcount=True))
    return max(res.rowcount or 0, 0)


def eligible_subscriptions(
    conn: Connection,
    *,
    frequency: str,
    period: str,
    timezone: str | None = None,
    send_hour: int | None = None,
    weekdays_only: bool | None = None,
    confirmed_before: datetime | None = None,
    email: str | None = None,
) -> list[dict[str, Any]]:
    """The subscribers :func:`plan_period` would add (for dry runs: nothing is written)."""
    conds = _group_filter(frequency, timezone, send_hour, weekdays_only, confirmed_before, email)
    already = exists().where(deliveries.c.subscription_id == subscriptions.c.id, deliveries.c.period == period)
    q = select(subscriptions).where(*conds, ~already).order_by(subscriptions.c.id)
    return [dict(r) for r in conn.execute(q).mappings()]


def insert_delivery(
    conn: Connection, sub_id: int, period: str, now: datetime, payload: dict[str, Any] | None = None
) -> int:
    res = conn.execute(
        insert(deliveries).values(
            subscription_id=sub_id, period=period, status=PENDING, attempts=0, payload=payload, created_at=now
        )
    )
    return new_id(res)


# -- the ledger: claims and outcomes ----------------------------------------------------------


def expire_open(conn: Connection, *, prefix: str, created_before: datetime, now: datetime) -> int:
    """Give up on open rows of one kind (``daily:`` ...) that are too old to be worth sending."""
    res = conn.execute(
        update(deliveries)
        .where(
            deliveries.c.status.in_(OPEN_STATUSES),
            deliveries.c.period.like(f"{prefix}%"),
            deliveries.c.created_at < created_before,
        )
        .values(status=FAILED, error="expired: not sent in time", next_attempt_at=None)
    )
    return res.rowcount


def sending_claims(conn: Connection) -> list[tuple[str, datetime | None]]:
    """(owner, oldest claim time) for every process holding ``sending`` rows."""
    q = (
        select(deliveries.c.claimed_by, func.min(deliveries.c.claimed_at))
        .where(deliveries.c.status == SENDING)
        .group_by(deliveries.c.claimed_by)
    )
    return [(owner or "", at) for owner, at in conn.execute(q)]


def release_claims(conn: Connection, owners: Sequence[str], now: datetime, note: str) -> int:
    """Put the ``sending`` rows of ``owners`` (crashed or interrupted) back in the queue, due now."""
    if not owners:
        return 0
    res = conn.execute(
        update(deliveries)
        .where(deliveries.c.status == SENDING, deliveries.c.claimed_by.in_(list(owners)))
        .values(status=RETRY, next_attempt_at=now, claimed_by=None, claimed_at=None, error=note)
    )
    return res.rowcount


def touch_claims(conn: Connection, owner: str, now: datetime) -> int:
    """Refresh ``claimed_at`` of the rows ``owner`` holds (a long batch is alive, not orphaned)."""
    res = conn.execute(
        update(deliveries)
        .where(deliveries.c.status == SENDING, deliveries.c.claimed_by == owner)
        .values(claimed_at=now)
    )
    return res.rowcount


def release_rows(conn: Connection, ids: Sequence[int], owner: str, now: datetime, note: str) -> int:
    if not ids:
        return 0
    res = conn.execute(
        update(deliveries)
        .where(deliveries.c.id.in_(list(ids)), deliveries.c.status == SENDING, deliveries.c.claimed_by == owner)
        .values(status=RETRY, next_attempt_at=now, claimed_by=None, claimed_at=None, error=note)
    )
    return res.rowcount


_WORK_COLS = (
    deliveries.c.id,
    deliveries.c.subscription_id,
    deliveries.c.period,
    deliveries.c.status,
    deliveries.c.attempts,
    deliveries.c.paper_ids,
    deliveries.c.message_id,
    deliveries.c.payload,
    deliveries.c.created_at,
    subscriptions.c.email,
    subscriptions.c.status.label("sub_status"),
    subscriptions.c.frequency,
    subscriptions.c.query,
    subscriptions.c.categories,
    subscriptions.c.timezone,
    subscriptions.c.send_hour,
    subscriptions.c.weekdays_only,
    subscriptions.c.token_nonce,
    subscriptions.c.manage_nonce,
    subscriptions.c.hard_bounces,
)


def open_work(
    conn: Connection,
    *,
    now: datetime,
    limit: int,
    after_id: int = 0,
    email: str | None = None,
    ids: Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    """Open ledger rows that are due, oldest first, with their subscription."""
    q = (
        select(*_WORK_COLS)
        .select_from(deliveries.join(subscriptions, subscriptions.c.id == deliveries.c.subscription_id))
        .where(
            deliveries.c.status.in_(OPEN_STATUSES),
            or_(deliveries.c.next_attempt_at.is_(None), deliveries.c.next_attempt_at <= now),
            deliveries.c.id > after_id,
        )
        .order_by(deliveries.c.id)
        .limit(limit)
    )
    if email is not None:
        q = q.where(subscriptions.c.email == email)
    if ids is not None:
        q = q.where(deliveries.c.id.in_(list(ids)))
    return [dict(r) for r in conn.execute(q).mappings()]


def claim(
    conn: Connection,
    delivery_id: int,
    *,
    expect_status: str,
    owner: str,
    now: datetime,
    paper_ids: list[str] | None,
    message_id: str,
    payload: dict[str, Any] | None = None,
) -> bool:
    """Compare-and-set an open row to ``sending`` for ``owner``; False if someone else moved it.
    ``payload`` (the composed sections) is stored when given, kept otherwise."""
    values: dict[str, Any] = {
        "status": SENDING,
        "attempts": deliveries.c.attempts + 1,
        "claimed_by": owner,
        "claimed_at": now,
        "paper_ids": paper_ids,
        "message_id": message_id,
    }
    if payload is not None:
        values["payload"] = payload
    res = conn.execute(
        update(deliveries).where(deliveries.c.id == delivery_id, deliveries.c.status == expect_status).values(**values)
    )
    return res.rowcount == 1


def claim_many(conn: Connection, items: list[dict[str, Any]], *, owner: str, now: datetime) -> set[int]:
    """:func:`claim` for a batch in two statements: a compare-and-set UPDATE run as executemany
    (items: ``id``, ``status`` expected, ``paper_ids``, ``message_id``, ``payload`` or None to
    keep), then a SELECT of the rows that are now ours. Returns the ids claimed."""
    if not items:
        return set()
    base = {
        "status": SENDING,
        "attempts": deliveries.c.attempts + 1,
        "claimed_by": owner,
        "claimed_at": now,
        "paper_ids": bindparam("b_paper_ids"),
        "message_id": bindparam("b_message_id"),
    }
    where = (deliveries.c.id == bindparam("b_id"), deliveries.c.status == bindparam("b_status"))
    for with_payload in (True, False):
        rows = [
            {
                "b_id": it["id"],
                "b_status": it["status"],
                "b_paper_ids": it["paper_ids"],
                "b_message_id": it["message_id"],
                **({"b_payload": it["payload"]} if with_payload else {}),
            }
            for it in items
            if (it["payload"] is not None) == with_payload
        ]
        if rows:
            values = {**base, "payload": bindparam("b_payload")} if with_payload else base
            conn.execute(update(deliveries).where(*where).values(**values), rows)
    ids = [it["id"] for it in items]
    q = select(deliveries.c.id).where(
        deliveries.c.id.in_(ids), deliveries.c.status == SENDING, deliveries.c.claimed_by == owner
    )
    return {int(r[0]) for r in conn.execute(q)}


def postpone(conn: Connection, delivery_id: int, error: str, next_at: datetime) -> bool:
    """Push an open row back (e.g. it could not be composed right now) without claiming it."""
    res = conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id, deliveries.c.status.in_(OPEN_STATUSES))
        .values(status=RETRY, attempts=deliveries.c.attempts + 1, error=error[:1000], next_attempt_at=next_at)
    )
    return res.rowcount == 1


def count_open(conn: Connection, *, now: datetime, email: str | None = None) -> int:
    """Open rows that are due now (for progress bars)."""
    q = (
        select(func.count())
        .select_from(deliveries.join(subscriptions, subscriptions.c.id == deliveries.c.subscription_id))
        .where(
            deliveries.c.status.in_(OPEN_STATUSES),
            or_(deliveries.c.next_attempt_at.is_(None), deliveries.c.next_attempt_at <= now),
        )
    )
    if email is not None:
        q = q.where(subscriptions.c.email == email)
    return int(conn.scalar(q) or 0)


def _finish(conn: Connection, delivery_id: int, owner: str, **values: Any) -> bool:
    res = conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id, deliveries.c.status == SENDING, deliveries.c.claimed_by == owner)
        .values(claimed_by=None, claimed_at=None, **values)
    )
    return res.rowcount == 1


# Built once: marking a row sent runs once per message, the hottest statement of a run.
_MARK_SENT = (
    update(deliveries)
    .where(
        deliveries.c.id == bindparam("b_id"),
        deliveries.c.status == SENDING,
        deliveries.c.claimed_by == bindparam("b_owner"),
    )
    .values(status=SENT, sent_at=bindparam("b_now"), error=None, next_attempt_at=None, claimed_by=None, claimed_at=None)
)


def mark_sent(conn: Connection, delivery_id: int, owner: str, now: datetime) -> bool:
    return conn.execute(_MARK_SENT, {"b_id": delivery_id, "b_owner": owner, "b_now": now}).rowcount == 1


def mark_retry(conn: Connection, delivery_id: int, owner: str, error: str, next_at: datetime) -> bool:
    return _finish(conn, delivery_id, owner, status=RETRY, error=error[:1000], next_attempt_at=next_at)


def mark_failed(conn: Connection, delivery_id: int, owner: str, error: str) -> bool:
    return _finish(conn, delivery_id, owner, status=FAILED, error=error[:1000], next_attempt_at=None)


def close_unclaimed(conn: Connection, delivery_id: int, status: str, error: str | None = None) -> bool:
    """Settle an open row without sending (``empty`` digest, ``skipped`` subscriber)."""
    res = conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id, deliveries.c.status.in_(OPEN_STATUSES))
        .values(status=status, error=error, next_attempt_at=None)
    )
    return res.rowcount == 1


def delivery_status_counts(conn: Connection, period: str | None = None) -> dict[str, int]:
    q = select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
    if period:
        q = q.where(deliveries.c.period == period)
    return {status: int(n) for status, n in conn.execute(q)}


def open_delivery_counts(conn: Connection) -> dict[str, int]:
    """Rows still to send, by status (``pending``, ``sending``, ``retry``; an index range)."""
    q = select(deliveries.c.status, func.count()).where(deliveries.c.status.in_((*OPEN_STATUSES, SENDING)))
    return {status: int(n) for status, n in conn.execute(q.group_by(deliveries.c.status))}


def get_delivery(conn: Connection, delivery_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(deliveries).where(deliveries.c.id == delivery_id)).mappings().first()
    return dict(row) if row else None


def deliveries_for(conn: Connection, sub_id: int) -> list[dict[str, Any]]:
    q = select(deliveries).where(deliveries.c.subscription_id == sub_id).order_by(deliveries.c.id)
    return [dict(r) for r in conn.execute(q).mappings()]


# -- papers already mailed --------------------------------------------------------------------


def reserved_papers(conn: Connection, sub_ids: Iterable[int], paper_ids: Iterable[str]) -> set[tuple[int, str]]:
    """The (subscription, paper) pairs among these that are already in some digest."""
    subs, pids = sorted(set(sub_ids)), sorted(set(paper_ids))
    found: set[tuple[int, str]] = set()
    if not subs or not pids:
        return found
    # Chunk the IN lists: SQLite caps bound parameters per statement.
    for i in range(0, len(subs), 400):
        for j in range(0, len(pids), 400):
            q = select(digest_sent_papers.c.subscription_id, digest_sent_papers.c.paper_id).where(
                digest_sent_papers.c.subscription_id.in_(subs[i : i + 400]),
                digest_sent_papers.c.paper_id.in_(pids[j : j + 400]),
            )
            found.update((int(s), p) for s, p in conn.execute(q))
    return found


def reserve_papers(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Record (subscription_id, paper_id, delivery_id, created_at) rows; existing pairs are kept."""
    if not rows:
        return
    conn.execute(insert_ignore(conn, digest_sent_papers), rows)


def papers_sent_to(conn: Connection, sub_id: int) -> list[str]:
    q = select(digest_sent_papers.c.paper_id).where(digest_sent_papers.c.subscription_id == sub_id)
    return [r[0] for r in conn.execute(q)]


# -- what goes into a digest -------------------------------------------------------------------


def _category_match(categories: Sequence[str]) -> Any:
    # categories is space separated; pad with spaces so "cs.L" cannot match "cs.LG". Names are
    # validated on input ([A-Za-z-.]), so they carry no LIKE wildcards.
    padded = func.lower(literal(" ") + papers.c.categories + literal(" "))
    return or_(*(padded.like(f"% {c.lower()} %") for c in categories))


def _not_hidden() -> Any:
    return ~exists().where(daily_entries.c.paper_id == papers.c.id, daily_entries.c.hidden.is_(True))


def daily_feed(
    conn: Connection, start: date, end: date, limit: int, categories: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """The community daily feed for [start, end], most upvoted first."""
    q = (
        select(*_PAPER_COLS, daily_entries.c.feed_date, daily_entries.c.submitted_at)
        .select_from(daily_entries.join(papers, papers.c.id == daily_entries.c.paper_id))
        .where(daily_entries.c.feed_date.between(start, end), daily_entries.c.hidden.is_(False))
        .order_by(_TOTAL.desc(), daily_entries.c.feed_date.desc(), papers.c.id)
        .limit(limit)
    )
    if categories:
        q = q.where(_category_match(categories))
    return [dict(r) for r in conn.execute(q).mappings()]


def new_papers(conn: Connection, start: date, end: date, categories: Sequence[str], limit: int) -> list[dict[str, Any]]:
    """Papers new in [start, end] (first listed then, or entered the daily feed then) in any of
    ``categories``, most upvoted first, then newest."""
    in_feed = (
        select(daily_entries.c.paper_id)
        .where(daily_entries.c.feed_date.between(start, end), daily_entries.c.hidden.is_(False))
        .scalar_subquery()
    )
    is_new = or_(
        papers.c.listed.between(start, end),
        and_(papers.c.listed.is_(None), papers.c.published.between(start, end)),
        papers.c.id.in_(in_feed),
    )
    q = (
        select(*_PAPER_COLS)
        .where(is_new, _category_match(categories), _not_hidden())
        .order_by(_TOTAL.desc(), func.coalesce(papers.c.listed, papers.c.published).desc(), papers.c.id)
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def paper_dates(conn: Connection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """For search hits: listing/publication date, daily-feed date and whether moderators hid it."""
    out: dict[str, dict[str, Any]] = {}
    ids = list(dict.fromkeys(ids))
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        q = (
            select(
                papers.c.id,
                papers.c.categories,
                papers.c.listed,
                papers.c.published,
                daily_entries.c.feed_date,
                daily_entries.c.hidden,
            )
            .select_from(papers.outerjoin(daily_entries, daily_entries.c.paper_id == papers.c.id))
            .where(papers.c.id.in_(chunk))
        )
        for r in conn.execute(q).mappings():
            out[r["id"]] = dict(r)
    return out
