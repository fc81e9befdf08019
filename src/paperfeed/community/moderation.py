"""Moderation: roles (user < moderator < admin), hiding comments and daily entries with a reason,
featuring entries, banning accounts, and the audit log that records every such action.

Moderators hide/unhide comments and entries and ban plain users; admins also feature entries,
ban moderators and change roles. Nobody acts on their own account or on someone of equal or
higher rank (so two admins cannot lock each other out by accident). Runs from ``/moderation``
and from ``paperfeed user role|ban`` (actor :data:`~paperfeed.community.core.COMMAND_LINE`, the
trusted operator, recorded as "cli"). ``None`` - nobody signed in - is refused like any visitor.
"""

from __future__ import annotations

from typing import Any

from paperfeed.community.core import (
    ROLES,
    CommandLine,
    Community,
    User,
    paper_key,
    require_role,
    strip_controls,
    user_row_by_name,
)
from paperfeed.community.errors import CommunityError, Forbidden, NotFound
from paperfeed.store import community_store as store

MAX_REASON = 500
_RANK = {name: i for i, name in enumerate(ROLES)}


def _reason(text: str | None, *, required: bool = True) -> str | None:
    reason = " ".join(strip_controls(text).split())[:MAX_REASON]
    if required and not reason:
        raise CommunityError("Please give a reason (it is kept in the audit log).")
    return reason or None


Actor = User | CommandLine  # who acts: a signed-in account, or the trusted command line


def _actor(c: Community, actor: Actor | None, role: str) -> Actor:
    """The command line is trusted; anybody else must be a signed-in, unbanned ``role``."""
    if isinstance(actor, CommandLine):
        return actor
    return require_role(actor, role)


def _log(c: Community, conn: Any, actor: Actor, action: str, ttype: str, tid: str, reason: str | None,
         details: dict[str, Any] | None = None) -> None:  # fmt: skip
    store.log_action(
        conn,
        actor_id=actor.id if isinstance(actor, User) else None,
        actor_name=actor.username,
        action=action,
        target_type=ttype,
        target_id=tid,
        reason=reason,
        now=c.now(),
        details=details,
    )


# -- comments and entries ---------------------------------------------------------------------


def set_comment_hidden(c: Community, actor: Actor | None, comment_id: int, hidden: bool, reason: str | None) -> bool:
    """Hide (reason required) or restore a comment. False when it already was in that state."""
    actor = _actor(c, actor, "moderator")
    why = _reason(reason, required=hidden)
    with c.db.write() as conn:
        changed = store.set_comment_hidden(conn, comment_id, hidden, why)
        if not changed and store.get_comment(conn, comment_id) is None:
            raise NotFound("No such comment.")
        if changed:
            _log(c, conn, actor, "comment.hide" if hidden else "comment.unhide", "comment", str(comment_id), why)
    return changed


def set_entry_hidden(c: Community, actor: Actor | None, paper_id: str, hidden: bool, reason: str | None) -> bool:
    """Remove a paper from the daily feed (reason required) or put it back."""
    actor = _actor(c, actor, "moderator")
    paper_id = paper_key(paper_id)
    why = _reason(reason, required=hidden)
    with c.db.write() as conn:
        changed = store.set_entry_flag(conn, paper_id, "hidden", hidden, why)
        if not changed and store.get_entry(conn, paper_id) is None:
            raise NotFound(f"{paper_id} has no daily entry.")
        if changed:
            _log(c, conn, actor, "entry.hide" if hidden else "entry.unhide", "entry", paper_id, why)
    return changed


def set_entry_featured(c: Community, actor: Actor | None, paper_id: str, featured: bool) -> bool:
    actor = _actor(c, actor, "admin")
    paper_id = paper_key(paper_id)
    with c.db.write() as conn:
        changed = store.set_entry_flag(conn, paper_id, "featured", featured)
        if not changed and store.get_entry(conn, paper_id) is None:
            raise NotFound(f"{paper_id} has no daily entry.")
        if changed:
            _log(c, conn, actor, "entry.feature" if featured else "entry.unfeature", "entry", paper_id, None)
    return changed


# -- accounts ---------------------------------------------------------------------------------


def _target(c: Community, actor: Actor, username: str) -> dict[str, Any]:
    row = user_row_by_name(c, username)
    if isinstance(actor, User):
        if row["id"] == actor.id:
            raise Forbidden("You cannot do this to your own account.")
        if _RANK.get(row["role"], 0) >= _RANK[actor.role]:
            raise Forbidden(f"Only someone with a higher role than {row['role']} can do this.")
    return row


def set_banned(c: Community, actor: Actor | None, username: str, banned: bool, reason: str | None) -> bool:
    """Ban (every session and API token stops working at once) or unban an account."""
    actor = _actor(c, actor, "moderator")
    why = _reason(reason, required=banned and isinstance(actor, User))
    row = _target(c, actor, username)
    with c.db.write() as conn:
        changed = store.set_banned(conn, row["id"], banned)
        if changed:
            _log(c, conn, actor, "user.ban" if banned else "user.unban", "user", row["username"], why)
    return changed


def set_role(c: Community, actor: Actor | None, username: str, role: str) -> bool:
    if role not in ROLES:
        raise CommunityError(f"Unknown role {role!r}: one of {', '.join(ROLES)}.")
    actor = _actor(c, actor, "admin")
    row = _target(c, actor, username)
    with c.db.write() as conn:
        changed = store.set_role(conn, row["id"], role)
        if changed:
            _log(c, conn, actor, "user.role", "user", row["username"], None, {"from": row["role"], "to": role})
    return changed


# -- the queue --------------------------------------------------------------------------------


def queue(c: Community, actor: User | None, limit: int = 50) -> dict[str, Any]:
    """What the moderation page shows: newest comments and submissions, what is hidden, the log."""
    require_role(actor, "moderator")
    with c.db.read() as conn:
        return {
            "recent_comments": store.recent_comments(conn, limit),
            "hidden_comments": store.recent_comments(conn, limit, hidden_only=True),
            "recent_entries": store.recent_local_entries(conn, limit),
            "hidden_entries": store.hidden_entries(conn, limit),
            "audit": store.recent_audit(conn, limit * 2),
        }
