"""Shared pieces of the community layer: the :class:`Community` context every action receives,
the acting :class:`User` and role checks (the errors actions raise are in ``errors.py``).

Built once per web app (``web/community_routes.install``) or per CLI command; tests build their
own with a fake clock and tight limits.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from paperfeed.community.errors import Forbidden, NotFound, NotSignedIn
from paperfeed.community.passwords import PasswordParams, Passwords
from paperfeed.community.ratelimit import Limits, RateLimiter
from paperfeed.config import Settings
from paperfeed.mail.mailer import OutgoingMessage
from paperfeed.store import community_store as store
from paperfeed.store.db import Database, utcnow

Clock = Callable[[], datetime]  # naive UTC, like store.db.utcnow
# C0 controls other than tab/newline/CR are never content, PostgreSQL rejects NUL in text, and
# lone surrogates (possible from JSON "\\ud800") cannot be encoded as UTF-8.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
MAX_PAPER_ID = 32  # papers.id is String(32)
ROLES = ("user", "moderator", "admin")
_RANK = {name: i for i, name in enumerate(ROLES)}


def strip_controls(text: str | None) -> str:
    return _CONTROL.sub("", text or "")


def paper_key(paper_id: str) -> str:
    """A paper id from a URL or a body, or NotFound before it reaches SQL (length, control bytes)."""
    if not paper_id or len(paper_id) > MAX_PAPER_ID or _CONTROL.search(paper_id) or paper_id != paper_id.strip():
        raise NotFound(f"There is no paper {paper_id[:40]!r} here.")
    return paper_id


@dataclass(frozen=True)
class User:
    """The acting account, as loaded for one request (never the password hash)."""

    id: int
    username: str
    email: str | None
    role: str
    banned: bool
    created_at: datetime | None = None
    verified: bool = False  # the email address is confirmed (or the operator made the account)
    pending_email: str | None = None  # the address waiting for its confirmation link

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> User:
        return cls(
            id=int(row["id"]),
            username=row["username"],
            email=row.get("email"),
            role=row["role"] if row["role"] in _RANK else "user",
            banned=bool(row["banned"]),
            created_at=row.get("created_at"),
            verified=row.get("verified_at") is not None,
            pending_email=row.get("pending_email"),
        )

    def has_role(self, role: str) -> bool:
        return _RANK[self.role] >= _RANK[role]

    @property
    def is_moderator(self) -> bool:
        return self.has_role("moderator")

    @property
    def is_admin(self) -> bool:
        return self.has_role("admin")


@dataclass(frozen=True)
class CommandLine:
    """The trusted operator at the server's command line (``paperfeed user role|ban``).

    An explicit object, never ``None``: ``None`` is what a web request has when nobody is signed
    in, and a layer that read ``None`` as "trusted" would hand moderation to anonymous visitors.
    No web request can produce this object (the web layer only ever passes a ``User`` or ``None``).
    Recorded in the audit log as "cli".
    """

    username: str = "cli"


COMMAND_LINE = CommandLine()


def require_active(user: User | None) -> User:
    """The user, if signed in and not banned: a banned account can do nothing."""
    if user is None:
        raise NotSignedIn("Please sign in first.")
    if user.banned:
        raise Forbidden("This account is banned.")
    return user


def require_verified(user: User | None) -> User:
    """An active user whose email address is confirmed: commenting and submitting need one
    (reading and voting do not), so a throwaway sign-up cannot post."""
    user = require_active(user)
    if not user.verified:
        where = f" (we sent a link to {user.pending_email})" if user.pending_email else ""
        raise Forbidden(
            f"Confirm your email address first{where}: open the link in that mail, or send a new one "
            "from your account page."
        )
    return user


def require_role(user: User | None, role: str) -> User:
    user = require_active(user)
    if not user.has_role(role):
        raise Forbidden(f"This needs the {role} role.")
    return user


@dataclass
class Community:
    """What every community action needs. ``clock``, ``limits`` and ``password_params`` are
    injectable for tests; the rate limiter and the password hasher are built from them on first
    use and take only what they need (database and clock, cost parameters), not this object."""

    settings: Settings
    db: Database
    clock: Clock = utcnow
    limits: Limits = field(default_factory=Limits)
    password_params: PasswordParams | None = None  # None -> the defaults
    send_mail: Callable[[OutgoingMessage], None] | None = None  # None -> SMTP/outbox
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def now(self) -> datetime:
        return self.clock()

    @property
    def rate_limiter(self) -> RateLimiter:
        limiter = self._cache.get("rate_limiter")
        if limiter is None:
            limiter = self._cache["rate_limiter"] = RateLimiter(self.db, self.now)
        return limiter

    @property
    def passwords(self) -> Passwords:
        hasher = self._cache.get("passwords")
        if hasher is None:
            hasher = self._cache["passwords"] = Passwords(self.password_params)
        return hasher


def user_row_by_name(c: Community, username: str) -> dict[str, Any]:
    """The account row for ``username``, or NotFound (odd names never reach SQL)."""
    row = None
    if username and len(username) <= 64 and strip_controls(username) == username:
        with c.db.read() as conn:
            row = store.get_user_by_name(conn, username)
    if row is None:
        raise NotFound(f"There is no user called {username[:64]!r}.")
    return row
