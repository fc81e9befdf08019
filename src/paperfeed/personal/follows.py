"""Follows: authors (by the name as a paper lists it), arXiv categories and saved searches (a
query and its search mode). Following is idempotent and undone with one click; a user follows at
most :data:`MAX_FOLLOWS` things, and a saved search is at most :data:`MAX_QUERY` characters.

Used by the follow buttons (author pages, /following, the JSON API) and by the views that read
the follows (``following.py``, the private feeds, the digest's "following" section).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from paperfeed.community.core import Community, User, require_active, strip_controls
from paperfeed.community.errors import CommunityError, Conflict
from paperfeed.records import is_category
from paperfeed.search.hybrid import MODES
from paperfeed.store import follow_store as store
from paperfeed.store.lookups import normalise_name

KINDS = ("author", "category", "search")
MAX_FOLLOWS = 200
MAX_QUERY = 200
MAX_NAME = 200
DEFAULT_MODE = "hybrid"


@dataclass(frozen=True)
class Follow:
    """One thing a user follows."""

    kind: str  # author | category | search
    value: str  # the name as given, the category, the query as typed
    key: str  # what makes two follows the same
    mode: str | None = None  # searches only
    created_at: datetime | None = None

    @property
    def url(self) -> str:
        """Where the followed thing lives on the site."""
        if self.kind == "author":
            return "/authors/" + quote(self.value, safe="")
        if self.kind == "category":
            return "/papers/new?" + urlencode({"category": self.value})
        return "/papers/search?" + urlencode({"q": self.value, "mode": self.mode or DEFAULT_MODE})

    @property
    def label(self) -> str:
        if self.kind == "search":
            return f"“{self.value}”" + (f" ({self.mode})" if self.mode and self.mode != DEFAULT_MODE else "")
        return self.value

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value, "mode": self.mode, "url": self.url,
                "since": self.created_at.isoformat() if self.created_at else None}  # fmt: skip

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Follow:
        return cls(row["kind"], row["value"], row["key"], row.get("mode"), row.get("created_at"))


def parse(kind: str, value: str, mode: str | None = None) -> Follow:
    """A follow from form or API input, normalised; CommunityError (400) says what is wrong."""
    kind = (kind or "").strip().lower()
    if kind not in KINDS:
        raise CommunityError(f"Unknown kind {kind[:20]!r}: follow an author, a category or a search.")
    text = " ".join(strip_controls(value).split())
    if not text:
        raise CommunityError(f"Say which {kind} to follow.")
    if kind == "author":
        if len(text) > MAX_NAME:
            raise CommunityError(f"An author name is at most {MAX_NAME} characters.")
        return Follow("author", text, normalise_name(text))
    if kind == "category":
        if len(text) > 32 or not is_category(text):
            raise CommunityError(f"{text[:40]!r} is not an arXiv category (examples: cs.LG, cs.CV, stat.ML).")
        return Follow("category", text, text)
    if len(text) > MAX_QUERY:
        raise CommunityError(f"A saved search is at most {MAX_QUERY} characters (this one has {len(text)}).")
    m = (mode or DEFAULT_MODE).strip().lower()
    if m not in MODES:
        raise CommunityError(f"Unknown search mode {m[:20]!r}: one of {', '.join(MODES)}.")
    return Follow("search", text, f"{m}:{text.casefold()}", m)


def follow(c: Community, user: User | None, kind: str, value: str, mode: str | None = None) -> tuple[Follow, bool]:
    """Follow something; (the follow, whether it is new). Following it again changes nothing."""
    user = require_active(user)
    f = parse(kind, value, mode)
    with c.db.write() as conn:
        if store.get_follow(conn, user.id, f.kind, f.key) is not None:
            return f, False
        if store.count_follows(conn, user.id) >= MAX_FOLLOWS:
            raise Conflict(f"You follow {MAX_FOLLOWS} things already: unfollow some on /following first.")
        added = store.add_follow(conn, user.id, f.kind, f.value, f.key, f.mode, c.now())
    return f, added


def unfollow(c: Community, user: User | None, kind: str, value: str, mode: str | None = None) -> bool:
    """Stop following; False when it was not followed (not an error: the button is idempotent)."""
    user = require_active(user)
    f = parse(kind, value, mode)
    with c.db.write() as conn:
        return store.remove_follow(conn, user.id, f.kind, f.key)


def follows_of(c: Community, user: User) -> list[Follow]:
    with c.db.read() as conn:
        return [Follow.from_row(r) for r in store.list_follows(conn, user.id)]


def is_following(c: Community, user: User | None, kind: str, value: str, mode: str | None = None) -> bool:
    if user is None:
        return False
    try:
        f = parse(kind, value, mode)
    except CommunityError:
        return False
    with c.db.read() as conn:
        return store.get_follow(conn, user.id, f.kind, f.key) is not None
