"""Upvotes: one per user per paper, toggled on and off from the vote button (form POST or the
in-place JS) and the write API (``POST``/``DELETE /api/papers/{id}/upvote``).

``papers.upvotes`` always equals the number of vote rows: it moves by one in the same
transaction as the row, and only when the row really appeared or disappeared. What readers see
is ``upvotes + imported_upvotes`` (the count carried over from Hugging Face).
"""

from __future__ import annotations

from dataclasses import dataclass

from paperfeed.community.core import Community, User, paper_key, require_active
from paperfeed.community.errors import NotFound
from paperfeed.community.ratelimit import bucket
from paperfeed.store import community_store as store


@dataclass(frozen=True)
class VoteState:
    paper_id: str
    upvoted: bool  # the user's vote after the action
    changed: bool  # False when the action was a no-op (already voted / not voted)
    upvotes: int  # local votes + imported count, after the action

    def as_json(self) -> dict[str, object]:
        return {"paperId": self.paper_id, "upvoted": self.upvoted, "changed": self.changed, "upvotes": self.upvotes}


def set_vote(c: Community, user: User | None, paper_id: str, up: bool, *, ip: str | None = None) -> VoteState:
    """Add (``up``) or remove the user's vote; idempotent, so a double click cannot count twice."""
    user = require_active(user)
    paper_id = paper_key(paper_id)
    with c.db.read() as conn:
        if not store.paper_exists(conn, paper_id):
            raise NotFound(f"There is no paper {paper_id!r} here.")
    with c.db.write() as conn:
        c.rate_limiter.take(
            conn, bucket("vote:user", user.id, c.limits.vote_user), bucket("vote:ip", ip, c.limits.vote_ip),
            what="votes",
        )  # fmt: skip
        if up:
            changed = store.add_vote(conn, user.id, paper_id, c.now())
        else:
            changed = store.remove_vote(conn, user.id, paper_id)
        counts = store.paper_counts(conn, paper_id)
    if counts is None:  # deleted between the check and the write (the vote row went with it)
        raise NotFound(f"There is no paper {paper_id!r} here.")
    return VoteState(paper_id, up, changed, counts["upvotes_total"])


def toggle_vote(c: Community, user: User | None, paper_id: str, *, ip: str | None = None) -> VoteState:
    """Flip the user's vote (the vote button)."""
    user = require_active(user)
    paper_id = paper_key(paper_id)
    with c.db.read() as conn:
        voted = paper_id in store.voted_papers(conn, user.id, [paper_id])
    return set_vote(c, user, paper_id, not voted, ip=ip)


def voted(c: Community, user: User | None, paper_ids: list[str]) -> set[str]:
    """Which of ``paper_ids`` the user has upvoted (to draw the buttons pressed)."""
    paper_ids = [p for p in paper_ids if p and len(p) <= 32 and "\x00" not in p]
    if user is None or not paper_ids:
        return set()
    with c.db.read() as conn:
        return store.voted_papers(conn, user.id, list(dict.fromkeys(paper_ids))[:500])
