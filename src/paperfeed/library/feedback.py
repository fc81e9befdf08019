"""Feedback on papers: "not interested" (show fewer like this: a negative signal for the for-you
ranker) and "hide" (never show this paper in my feeds again). One click each, and undoable: the
answer to every action carries what undoes it.

Hidden papers leave the signed-in user's feeds: the card macro (``web/templates/macros.html``) does
not draw them on the daily/week/month pages, "new on arXiv", trending, Following and similar-paper
lists; the for-you ranking drops them through ``library_store.user_signals``; SQL that lists papers
can use ``library_store.not_hidden_for``. Search, author pages and the paper's own page still find
them (marked, with "unhide"), since looking a paper up on purpose is not a feed. The lists are on
``/library`` with an Undo button per paper.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from paperfeed.community.core import Community, User, paper_key, require_active
from paperfeed.community.errors import CommunityError, NotFound
from paperfeed.library.collections import LIMITS, LibraryLimits
from paperfeed.store import feed_queries
from paperfeed.store import library_store as store
from paperfeed.store.rows import PaperRow

KINDS = store.FEEDBACK_KINDS
LABELS = {"not_interested": "Not interested", "hidden": "Hidden"}


@dataclass(frozen=True)
class FeedbackState:
    paper_id: str
    kind: str
    active: bool  # the feedback is recorded after the action
    changed: bool

    def as_json(self) -> dict[str, object]:
        return {"paperId": self.paper_id, "kind": self.kind, "active": self.active, "changed": self.changed,
                "undo": {"kind": self.kind, "on": not self.active}}  # fmt: skip


@dataclass(frozen=True)
class FeedbackEntry:
    paper_id: str
    at: datetime
    paper: PaperRow | None


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise CommunityError(f"Unknown feedback {kind[:40]!r}: use {' or '.join(KINDS)}.", status=422)
    return kind


def set_feedback(c: Community, user: User | None, paper_id: str, kind: str, on: bool,
                 limits: LibraryLimits = LIMITS) -> FeedbackState:  # fmt: skip
    """Record (``on``) or undo feedback; idempotent either way."""
    user = require_active(user)
    kind = check_kind(kind)
    pid = paper_key(paper_id)
    with c.db.write() as conn:
        if on:
            if not store.existing_ids(conn, [pid]):
                raise NotFound(f"There is no paper {pid!r} here.")
            if store.count_feedback(conn, user.id) >= limits.feedback_per_user:
                raise CommunityError(f"You have {limits.feedback_per_user:,} hidden and not-interested papers, "
                                     "the most an account can keep; undo some on /library first.",
                                     status=409)  # fmt: skip
            changed = store.set_feedback(conn, user.id, pid, kind, c.now())
        else:
            changed = store.clear_feedback(conn, user.id, pid, kind)
    return FeedbackState(pid, kind, on, changed)


def feedback_among(c: Community, user: User | None, paper_ids: list[str]) -> dict[str, set[str]]:
    """paper id -> the kinds the user gave it (to draw the buttons)."""
    ids = [p for p in dict.fromkeys(paper_ids) if p and len(p) <= 32][:500]
    if user is None or not ids:
        return {}
    with c.db.read() as conn:
        return store.feedback_among(conn, user.id, ids)


def entries(c: Community, user: User | None, kind: str, *, limit: int = 100, offset: int = 0) -> list[FeedbackEntry]:
    """The user's papers with this feedback, newest first, with their card rows."""
    user = require_active(user)
    kind = check_kind(kind)
    with c.db.read() as conn:
        rows = store.feedback_list(conn, user.id, kind, limit=limit, offset=offset)
        papers = feed_queries.papers_by_ids(conn, [r["paper_id"] for r in rows])
    return [FeedbackEntry(r["paper_id"], r["created_at"], papers.get(r["paper_id"])) for r in rows]
