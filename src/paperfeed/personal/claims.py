"""Authorship claims: a signed-in user with a confirmed address says "I am NAME on this paper";
a moderator confirms or rejects the claim (reason kept, decision in the audit log like every
moderation action). Confirmed claims seed the user's profile ("papers by @user"), show on the
author page ("claimed by @user") and count as the user's own papers for the for-you ranker.

The name must be one of the paper's listed authors; one account per (paper, author name) can be
confirmed; nobody decides their own claim; a user has at most :data:`MAX_PENDING` claims waiting.
"""

from __future__ import annotations

from typing import Any

from paperfeed.community.core import (
    Community,
    User,
    paper_key,
    require_active,
    require_role,
    require_verified,
    strip_controls,
)
from paperfeed.community.errors import CommunityError, Conflict, Forbidden, NotFound
from paperfeed.store import claim_store as store
from paperfeed.store import community_store, feed_queries
from paperfeed.store.lookups import normalise_name

MAX_PENDING = 50
MAX_REASON = 500
STATUSES = ("pending", "confirmed", "rejected")


def claim(c: Community, user: User | None, paper_id: str, author_name: str) -> int:
    """File a claim; returns its id. The name is matched against the paper's authors (case and
    accents aside) and stored as the paper lists it."""
    user = require_verified(user)
    paper_id = paper_key(paper_id)
    wanted = normalise_name(strip_controls(author_name))
    with c.db.write() as conn:
        community_store.lock_for_write(conn)
        row = feed_queries.paper(conn, paper_id)
        if row is None:
            raise NotFound(f"There is no paper {paper_id} here.")
        listed = [a for a in row.get("authors") or [] if normalise_name(a) == wanted]
        if not wanted or not listed:
            raise CommunityError(
                f"Pick your name as {paper_id} lists it: {', '.join((row.get('authors') or [])[:10])}."
            )
        name = listed[0]
        taken = store.confirmed_for(conn, paper_id, wanted)
        if taken is not None and taken["user_id"] != user.id:
            raise Conflict(f"Another account is already confirmed as {name} on {paper_id}.")
        if store.count_user_claims(conn, user.id, "pending") >= MAX_PENDING:
            raise Conflict(f"You have {MAX_PENDING} claims waiting for a moderator already.")
        claim_id = store.insert_claim(conn, user.id, paper_id, name, wanted, c.now())
        if claim_id is None:
            raise Conflict(f"You have claimed {paper_id} already (see your account page).")
    return claim_id


def decide(c: Community, actor: User | None, claim_id: int, confirm: bool, reason: str | None) -> bool:
    """A moderator confirms or rejects a pending claim (a rejection needs a reason). False when it
    was decided already."""
    actor = require_role(actor, "moderator")
    why = " ".join(strip_controls(reason).split())[:MAX_REASON] or None
    if not confirm and not why:
        raise CommunityError("Please give a reason (the claimant sees it, and it is kept in the audit log).")
    with c.db.write() as conn:
        community_store.lock_for_write(conn)
        row = store.get_claim(conn, claim_id)
        if row is None:
            raise NotFound("No such claim.")
        if row["user_id"] == actor.id:
            raise Forbidden("Another moderator has to decide your own claim.")
        if confirm:
            taken = store.confirmed_for(conn, row["paper_id"], row["name_norm"])
            if taken is not None and taken["id"] != claim_id:
                raise Conflict(f"Another account is already confirmed as {row['author_name']} on this paper.")
        changed = store.decide(conn, claim_id, "confirmed" if confirm else "rejected", actor.username, why, c.now())
        if changed:
            action = "claim.confirm" if confirm else "claim.reject"
            community_store.log_action(
                conn, actor_id=actor.id, actor_name=actor.username, action=action,
                target_type="claim", target_id=str(claim_id), reason=why, now=c.now(),
                details={"paper": row["paper_id"], "author": row["author_name"], "user": row["username"]},
            )  # fmt: skip
    return changed


def withdraw(c: Community, user: User | None, claim_id: int) -> bool:
    user = require_active(user)
    with c.db.write() as conn:
        if not store.withdraw(conn, claim_id, user.id):
            raise NotFound("You have no such claim.")
    return True


def queue(c: Community, actor: User | None, limit: int = 50) -> list[dict[str, Any]]:
    """Pending claims for the moderation page, oldest first."""
    require_role(actor, "moderator")
    with c.db.read() as conn:
        return store.pending(conn, limit)


def user_claims(c: Community, user_id: int, status: str | None = None) -> list[dict[str, Any]]:
    with c.db.read() as conn:
        return store.user_claims(conn, user_id, status)


def confirmed_paper_ids(c: Community, user_id: int) -> list[str]:
    """The user's confirmed papers (the ranker's positives, the profile's "papers")."""
    with c.db.read() as conn:
        return store.confirmed_paper_ids(conn, user_id)


def claimants(c: Community, author_name: str) -> list[str]:
    """Usernames confirmed as this author on at least one paper (the author page)."""
    with c.db.read() as conn:
        return store.claimants_of(conn, normalise_name(author_name))


def claims_on(c: Community, paper_ids: list[str]) -> dict[str, dict[str, str]]:
    with c.db.read() as conn:
        return store.claims_on(conn, paper_ids)
