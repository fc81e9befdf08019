"""Server-side sign-in sessions: start one at sign-in, find the user behind a session cookie, end
one (sign out) or all of a user's (sign out everywhere; password changes and bans do it in the
store). Used by the web layer's session middleware (``web/security.py``) and the account pages.

The cookie carries a 256-bit random session id; the database keeps only its sha256, so a leaked
table does not give working cookies. A session lasts ``TTL`` after its last use: a request more
than ``TOUCH_EVERY`` after the previous recorded one moves ``last_seen_at`` and the expiry on (one
small write per session per ``TOUCH_EVERY``, not one per request) and tells the caller to renew the
cookie. Expired rows are pruned whenever somebody signs in.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from paperfeed.community.accounts import sha256
from paperfeed.community.core import Community, User, strip_controls
from paperfeed.store import faults
from paperfeed.store import session_store as store

log = logging.getLogger(__name__)
_quiet = faults.QuietLog(60.0)  # the database cannot be written: say so once a minute, not per request

TTL = timedelta(days=30)
TOUCH_EVERY = timedelta(hours=1)
MAX_SECRET = 100  # token_urlsafe(32) is 43 characters; anything much longer is not ours


@dataclass(frozen=True)
class Found:
    """The user behind a live session; ``renewed`` when its expiry moved (re-send the cookie)."""

    user: User
    renewed: bool


def start(c: Community, user: User, user_agent: str | None = None) -> str:
    """A new session for ``user``; returns the secret for the cookie (shown nowhere else)."""
    secret = secrets.token_urlsafe(32)
    now = c.now()
    agent = " ".join(strip_controls(user_agent).split())[:200] or None
    with c.db.write() as conn:
        store.create_session(conn, user.id, sha256(secret), now, now + TTL, agent)
    return secret


def resolve(c: Community, secret: str) -> Found | None:
    """The user of a live session (banned users included: callers refuse them), or None."""
    if not secret or len(secret) > MAX_SECRET:
        return None
    now = c.now()
    with c.db.read() as conn:
        row = store.session_user(conn, sha256(secret), now)
    if row is None:
        return None
    renewed = now - row["session_seen_at"] >= TOUCH_EVERY
    if renewed:
        try:
            with c.db.write() as conn:
                store.touch_session(conn, row["session_id"], now, now + TTL)
        except Exception as err:  # bookkeeping: a full disk or busy database must not sign anyone out
            if faults.classify(err) is None:
                raise
            _quiet.warn(log, "touch", "session not renewed (%s); it stays valid until it expires", faults.describe(err))
            renewed = False
    return Found(User.from_row(row), renewed)


def end(c: Community, secret: str) -> None:
    """Sign out: the session is gone on the server, whatever copies of the cookie exist."""
    if not secret or len(secret) > MAX_SECRET:
        return
    with c.db.write() as conn:
        store.delete_session(conn, sha256(secret))


def end_all(c: Community, user: User) -> int:
    """Sign the user out everywhere; returns how many sessions ended."""
    with c.db.write() as conn:
        return store.delete_user_sessions(conn, user.id)


_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
             ("Safari/", "Safari"), ("curl/", "curl"))
_SYSTEMS = (("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iPadOS"), ("Windows", "Windows"),
            ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


def describe_agent(agent: str | None) -> str:
    """A short name for a User-Agent ("Firefox on Linux"), for people telling their browsers apart."""
    if not agent:
        return "Unknown browser"
    browser = next((name for key, name in _BROWSERS if key in agent), None)
    system = next((name for key, name in _SYSTEMS if key in agent), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or agent[:60]


def active(c: Community, user: User, current: str | None) -> list[dict[str, Any]]:
    """The user's live sessions, newest use first, with ``current`` marking this browser's."""
    mine = sha256(current) if current else None
    with c.db.read() as conn:
        rows = store.list_user_sessions(conn, user.id, c.now())
    return [
        {
            "created_at": r["created_at"],
            "last_seen_at": r["last_seen_at"],
            "user_agent": r["user_agent"],
            "browser": describe_agent(r["user_agent"]),
            "current": r["token_hash"] == mine,
        }
        for r in rows
    ]
