"""All SQL behind the personal library (issue 14): collections, their papers with a private note,
per-user feedback on papers (``not_interested``, ``hidden``), the paper lookups an import matches
against (arXiv id, DOI, normalised title), and :func:`user_signals`, the one read the for-you
ranker takes a user's likes and dislikes from.

Called by ``paperfeed.library.*`` (and the ranker), each function inside the caller's
transaction. Sizes are bounded by the service layer before anything reaches here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, exists, func, insert, literal, select, union_all, update

from paperfeed.records import title_key
from paperfeed.store.db import insert_ignore, new_id
from paperfeed.store.schema import collection_items, collections, paper_feedback, papers, users, votes

FEEDBACK_KINDS = ("not_interested", "hidden")
COLLECTION_COLS = [
    collections.c.id,
    collections.c.user_id,
    collections.c.name,
    collections.c.slug,
    collections.c.is_default,
    collections.c.public,
    collections.c.share_token,
    collections.c.created_at,
    collections.c.updated_at,
]


# -- the ranker's input -------------------------------------------------------------------------


@dataclass(frozen=True)
class Signal:
    """One paper a user reacted to, and when (naive UTC)."""

    paper_id: str
    at: datetime


@dataclass(frozen=True)
class UserSignals:
    """Everything a user told us about papers, newest first in each list.

    ``saved``: papers in any of the user's collections (``at``: when first added), positive;
    ``upvoted``: the user's upvotes, positive; ``not_interested``: "show fewer like this",
    negative; ``hidden``: never show again (a ranker drops these and may treat them as negative).
    A paper can be in several lists (saved and upvoted); the lists hold no duplicates.
    """

    user_id: int
    saved: tuple[Signal, ...]
    upvoted: tuple[Signal, ...]
    not_interested: tuple[Signal, ...]
    hidden: tuple[Signal, ...]

    @property
    def positive_ids(self) -> list[str]:
        """Saved and upvoted paper ids, newest first, each once."""
        merged = sorted([*self.saved, *self.upvoted], key=lambda s: s.at, reverse=True)
        return list(dict.fromkeys(s.paper_id for s in merged))

    @property
    def excluded_ids(self) -> set[str]:
        """Papers never to recommend: hidden ones and the ones the user already has."""
        return {s.paper_id for s in (*self.hidden, *self.saved)}


def user_signals(conn: Connection, user_id: int, *, limit: int = 20_000) -> UserSignals:
    """A user's saves, upvotes, "not interested" and hidden papers (at most ``limit`` of each, newest)."""
    first_added = func.min(collection_items.c.added_at)
    saved = conn.execute(
        select(collection_items.c.paper_id, first_added.label("at"))
        .select_from(collection_items.join(collections, collections.c.id == collection_items.c.collection_id))
        .where(collections.c.user_id == user_id)
        .group_by(collection_items.c.paper_id)
        .order_by(first_added.desc(), collection_items.c.paper_id)
        .limit(limit)
    ).all()
    upvoted = conn.execute(
        select(votes.c.paper_id, votes.c.created_at.label("at"))
        .where(votes.c.user_id == user_id)
        .order_by(votes.c.created_at.desc(), votes.c.paper_id)
        .limit(limit)
    ).all()
    feedback: dict[str, list[Signal]] = {k: [] for k in FEEDBACK_KINDS}
    for kind in FEEDBACK_KINDS:
        rows = conn.execute(
            select(paper_feedback.c.paper_id, paper_feedback.c.created_at)
            .where(paper_feedback.c.user_id == user_id, paper_feedback.c.kind == kind)
            .order_by(paper_feedback.c.created_at.desc(), paper_feedback.c.paper_id)
            .limit(limit)
        ).all()
        feedback[kind] = [Signal(r.paper_id, r.created_at) for r in rows]
    return UserSignals(
        user_id=user_id,
        saved=tuple(Signal(r.paper_id, r.at) for r in saved),
        upvoted=tuple(Signal(r.paper_id, r.at) for r in upvoted),
        not_interested=tuple(feedback["not_interested"]),
        hidden=tuple(feedback["hidden"]),
    )


# -- collections -----------------------------------------------------------------------------


def _dict(row: Any) -> dict[str, Any] | None:
    return dict(row._mapping) if row is not None else None


def create_collection(
    conn: Connection, user_id: int, name: str, slug: str, now: datetime, *, is_default: bool = False
) -> int:
    res = conn.execute(
        insert(collections).values(
            user_id=user_id, name=name, slug=slug, is_default=is_default, public=False, share_token=None,
            created_at=now, updated_at=now,
        )
    )  # fmt: skip
    return new_id(res)


def get_collection(conn: Connection, collection_id: int) -> dict[str, Any] | None:
    return _dict(conn.execute(select(*COLLECTION_COLS).where(collections.c.id == collection_id)).first())


def get_collection_by_slug(conn: Connection, user_id: int, slug: str) -> dict[str, Any] | None:
    stmt = select(*COLLECTION_COLS).where(collections.c.user_id == user_id, collections.c.slug == slug)
    return _dict(conn.execute(stmt).first())


def get_default_collection(conn: Connection, user_id: int) -> dict[str, Any] | None:
    stmt = select(*COLLECTION_COLS).where(collections.c.user_id == user_id, collections.c.is_default.is_(True))
    return _dict(conn.execute(stmt.order_by(collections.c.id).limit(1)).first())


def get_collection_by_token(conn: Connection, token: str) -> dict[str, Any] | None:
    """A public collection by its share token (a private one, or a banned owner's, is never found this way)."""
    owner_ok = exists().where(users.c.id == collections.c.user_id, users.c.banned.is_(False))
    stmt = select(*COLLECTION_COLS).where(collections.c.share_token == token, collections.c.public.is_(True), owner_ok)
    return _dict(conn.execute(stmt).first())


def slugs_taken(conn: Connection, user_id: int, prefix: str) -> set[str]:
    stmt = select(collections.c.slug).where(collections.c.user_id == user_id, collections.c.slug.like(prefix + "%"))
    return set(conn.scalars(stmt))


def list_collections(conn: Connection, user_id: int) -> list[dict[str, Any]]:
    """The user's collections with ``items`` (their paper count): the default one first, then by name."""
    count = (
        select(func.count())
        .select_from(collection_items)
        .where(collection_items.c.collection_id == collections.c.id)
        .scalar_subquery()
    )
    stmt = (
        select(*COLLECTION_COLS, count.label("items"))
        .where(collections.c.user_id == user_id)
        .order_by(collections.c.is_default.desc(), func.lower(collections.c.name), collections.c.id)
    )
    return [dict(r._mapping) for r in conn.execute(stmt)]


def count_collections(conn: Connection, user_id: int) -> int:
    return conn.scalar(select(func.count()).select_from(collections).where(collections.c.user_id == user_id)) or 0


def update_collection(conn: Connection, collection_id: int, now: datetime, **values: Any) -> bool:
    """Set ``name``, ``slug``, ``public`` and/or ``share_token``."""
    allowed = {"name", "slug", "public", "share_token"}
    if not values or set(values) - allowed:
        raise ValueError(f"can only update {sorted(allowed)}")
    res = conn.execute(update(collections).where(collections.c.id == collection_id).values(updated_at=now, **values))
    return res.rowcount == 1


def touch_collection(conn: Connection, collection_id: int, now: datetime) -> None:
    conn.execute(update(collections).where(collections.c.id == collection_id).values(updated_at=now))


def delete_collection(conn: Connection, collection_id: int) -> bool:
    conn.execute(delete(collection_items).where(collection_items.c.collection_id == collection_id))
    return conn.execute(delete(collections).where(collections.c.id == collection_id)).rowcount == 1


# -- items -----------------------------------------------------------------------------------


def add_items(conn: Connection, collection_id: int, items: Sequence[tuple[str, str | None]], now: datetime) -> int:
    """Add ``(paper_id, note)`` pairs that are not in the collection yet; returns how many were new.
    A paper already there keeps its note and date."""
    if not items:
        return 0
    rows = [{"collection_id": collection_id, "paper_id": pid, "note": note, "added_at": now} for pid, note in items]
    added = 0
    for start in range(0, len(rows), 500):
        # RETURNING says which rows went in (INSERT rowcounts are not reliable across drivers).
        stmt = insert_ignore(conn, collection_items).values(rows[start : start + 500])
        added += len(conn.execute(stmt.returning(collection_items.c.paper_id)).all())
    return added


def remove_item(conn: Connection, collection_id: int, paper_id: str) -> bool:
    stmt = delete(collection_items).where(
        collection_items.c.collection_id == collection_id, collection_items.c.paper_id == paper_id
    )
    return conn.execute(stmt).rowcount == 1


def set_note(conn: Connection, collection_id: int, paper_id: str, note: str | None) -> bool:
    stmt = (
        update(collection_items)
        .where(collection_items.c.collection_id == collection_id, collection_items.c.paper_id == paper_id)
        .values(note=note)
    )
    return conn.execute(stmt).rowcount == 1


def count_items(conn: Connection, collection_id: int) -> int:
    stmt = select(func.count()).select_from(collection_items).where(collection_items.c.collection_id == collection_id)
    return conn.scalar(stmt) or 0


def item_ids(conn: Connection, collection_id: int, paper_ids: Iterable[str]) -> set[str]:
    """Which of ``paper_ids`` the collection holds already."""
    wanted = list(dict.fromkeys(paper_ids))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        stmt = select(collection_items.c.paper_id).where(
            collection_items.c.collection_id == collection_id,
            collection_items.c.paper_id.in_(wanted[start : start + 500]),
        )
        found.update(conn.scalars(stmt))
    return found


def items(conn: Connection, collection_id: int, *, limit: int, offset: int = 0) -> list[dict[str, Any]]:
    """The collection's papers, newest addition first: ``paper_id``, ``note``, ``added_at``."""
    stmt = (
        select(collection_items.c.paper_id, collection_items.c.note, collection_items.c.added_at)
        .where(collection_items.c.collection_id == collection_id)
        .order_by(collection_items.c.added_at.desc(), collection_items.c.paper_id)
        .limit(limit)
        .offset(offset)
    )
    return [dict(r._mapping) for r in conn.execute(stmt)]


def paper_memberships(conn: Connection, user_id: int, paper_id: str) -> list[dict[str, Any]]:
    """The user's collections that hold the paper: ``id``, ``name``, ``slug``, ``is_default``, ``note``."""
    stmt = (
        select(collections.c.id, collections.c.name, collections.c.slug, collections.c.is_default,
               collection_items.c.note, collection_items.c.added_at)  # fmt: skip
        .select_from(collection_items.join(collections, collections.c.id == collection_items.c.collection_id))
        .where(collections.c.user_id == user_id, collection_items.c.paper_id == paper_id)
        .order_by(collections.c.is_default.desc(), func.lower(collections.c.name))
    )
    return [dict(r._mapping) for r in conn.execute(stmt)]


def saved_among(conn: Connection, user_id: int, paper_ids: Sequence[str]) -> set[str]:
    """Which of ``paper_ids`` are in any of the user's collections."""
    if not paper_ids:
        return set()
    stmt = (
        select(collection_items.c.paper_id)
        .select_from(collection_items.join(collections, collections.c.id == collection_items.c.collection_id))
        .where(collections.c.user_id == user_id, collection_items.c.paper_id.in_(list(paper_ids)))
    )
    return set(conn.scalars(stmt))


# -- feedback --------------------------------------------------------------------------------


def set_feedback(conn: Connection, user_id: int, paper_id: str, kind: str, now: datetime) -> bool:
    """Record ``kind`` for the paper; False when it was recorded already (the first time is kept)."""
    if kind not in FEEDBACK_KINDS:
        raise ValueError(f"unknown feedback kind {kind!r}")
    stmt = insert_ignore(conn, paper_feedback).values(user_id=user_id, paper_id=paper_id, kind=kind, created_at=now)
    return conn.execute(stmt.returning(paper_feedback.c.kind)).first() is not None


def clear_feedback(conn: Connection, user_id: int, paper_id: str, kind: str) -> bool:
    stmt = delete(paper_feedback).where(
        paper_feedback.c.user_id == user_id, paper_feedback.c.paper_id == paper_id, paper_feedback.c.kind == kind
    )
    return conn.execute(stmt).rowcount == 1


def count_feedback(conn: Connection, user_id: int) -> int:
    stmt = select(func.count()).select_from(paper_feedback).where(paper_feedback.c.user_id == user_id)
    return conn.scalar(stmt) or 0


def feedback_among(conn: Connection, user_id: int, paper_ids: Sequence[str]) -> dict[str, set[str]]:
    """paper id -> the feedback kinds the user gave it, for those of ``paper_ids`` that have any."""
    out: dict[str, set[str]] = {}
    if not paper_ids:
        return out
    stmt = select(paper_feedback.c.paper_id, paper_feedback.c.kind).where(
        paper_feedback.c.user_id == user_id, paper_feedback.c.paper_id.in_(list(paper_ids))
    )
    for pid, kind in conn.execute(stmt):
        out.setdefault(pid, set()).add(kind)
    return out


def feedback_list(conn: Connection, user_id: int, kind: str, *, limit: int, offset: int = 0) -> list[dict[str, Any]]:
    stmt = (
        select(paper_feedback.c.paper_id, paper_feedback.c.created_at)
        .where(paper_feedback.c.user_id == user_id, paper_feedback.c.kind == kind)
        .order_by(paper_feedback.c.created_at.desc(), paper_feedback.c.paper_id)
        .limit(limit)
        .offset(offset)
    )
    return [dict(r._mapping) for r in conn.execute(stmt)]


def reader_state(conn: Connection, user_id: int, saved_collection_id: int | None, paper_id: str) -> set[str]:
    """What one reader did with one paper, in one indexed query: ``saved`` (in the collection
    ``saved_collection_id``) and the feedback kinds. For drawing a card's buttons."""
    feedback_kinds = select(paper_feedback.c.kind).where(
        paper_feedback.c.user_id == user_id, paper_feedback.c.paper_id == paper_id
    )
    if saved_collection_id is None:
        return set(conn.scalars(feedback_kinds))
    saved = select(literal("saved")).where(
        collection_items.c.collection_id == saved_collection_id, collection_items.c.paper_id == paper_id
    )
    return set(conn.scalars(union_all(saved, feedback_kinds)))


def not_hidden_for(user_id: int | None) -> Any:
    """A WHERE clause for paper queries: the paper is not hidden by ``user_id`` (true for nobody)."""
    if user_id is None:
        return and_(True)
    return ~exists().where(
        paper_feedback.c.user_id == user_id,
        paper_feedback.c.paper_id == papers.c.id,
        paper_feedback.c.kind == "hidden",
    )


def papers_for_export(conn: Connection, paper_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """id -> the fields a reference export needs, for those of ``paper_ids`` that exist."""
    cols = [papers.c.id, papers.c.title, papers.c.authors, papers.c.published, papers.c.primary_category,
            papers.c.doi, papers.c.journal_ref, papers.c.abstract]  # fmt: skip
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(paper_ids), 500):
        for row in conn.execute(select(*cols).where(papers.c.id.in_(list(paper_ids[start : start + 500])))):
            out[row.id] = dict(row._mapping)
    return out


# -- matching an import ----------------------------------------------------------------------


def existing_ids(conn: Connection, paper_ids: Iterable[str]) -> set[str]:
    wanted = list(dict.fromkeys(paper_ids))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        found.update(conn.scalars(select(papers.c.id).where(papers.c.id.in_(wanted[start : start + 500]))))
    return found


def ids_by_doi(conn: Connection, dois: Iterable[str]) -> dict[str, str]:
    """lower-cased DOI -> paper id, for the DOIs some paper has (case-insensitively, on an index)."""
    wanted = list(dict.fromkeys(d.lower() for d in dois))
    out: dict[str, str] = {}
    for start in range(0, len(wanted), 500):
        doi = func.lower(papers.c.doi)
        stmt = select(doi, papers.c.id).where(doi.in_(wanted[start : start + 500])).order_by(papers.c.id)
        for key, pid in conn.execute(stmt):
            out.setdefault(key, pid)
    return out


def ids_by_title_key(conn: Connection, keys: Iterable[str]) -> dict[str, str]:
    """:func:`paperfeed.records.title_key` -> paper id, for titles some paper has.

    Titles have no normalised index, so this streams every title once (about 0.1 s per 20,000
    papers) - it runs only for import entries that neither an arXiv id nor a DOI matched.
    """
    wanted = {k for k in keys if k}
    out: dict[str, str] = {}
    if not wanted:
        return out
    result = conn.execution_options(yield_per=5_000).execute(select(papers.c.id, papers.c.title))
    for pid, title in result:
        key = title_key(title)
        if key in wanted and key not in out:
            out[key] = pid
    return out
