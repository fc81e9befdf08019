"""The "Following" view: the recent papers (the last few listing days) from the authors,
categories and saved searches a user follows, each with the reasons it is there.

Built for /following (and its JSON twin), the private following feeds and the digest's
"following" section. Candidates are every paper first listed in the window (a few thousand at
most); authors and categories are matched in Python against the normalised names, saved searches
through the hybrid search service (kept to matches that really match, as digest topics are).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from paperfeed.cards import card
from paperfeed.community.core import Community, User
from paperfeed.personal.follows import Follow, follows_of
from paperfeed.search.hybrid import SearchError, SearchRequest, SearchService, is_match
from paperfeed.store import feed_queries
from paperfeed.store.lookups import normalise_name
from paperfeed.store.rows import PaperRow

log = logging.getLogger(__name__)

DAYS = 7  # listing days shown by default
MAX_ITEMS = 300
SEARCH_DEPTH = 100  # hits asked of the search service per followed search
PUBLISHED_LOOKBACK = timedelta(days=14)  # a paper is listed a few days after its first version

# (query, mode, first day, last day, how many) -> ids of matching papers, best first.
SearchFn = Callable[[str, str, date, date, int], list[str]]


def service_search(service: SearchService | None) -> SearchFn | None:
    """A :data:`SearchFn` over the hybrid search service (None when search is unavailable)."""
    if service is None:
        return None

    def run(query: str, mode: str, start: date, end: date, limit: int) -> list[str]:
        req = SearchRequest(q=query, mode=mode, date_from=start - PUBLISHED_LOOKBACK, date_to=end, limit=limit)
        try:
            results = service.search(req)
        except SearchError as exc:
            log.info("followed search %r matches nothing: %s", query, exc)
            return []
        return [h.paper["id"] for h in results.hits if is_match(h)]

    return run


@dataclass
class Window:
    """The listing days a personal view covers (newest first); empty on an empty site."""

    days: list[date] = field(default_factory=list)

    @property
    def start(self) -> date | None:
        return self.days[-1] if self.days else None

    @property
    def end(self) -> date | None:
        return self.days[0] if self.days else None


def recent_window(c: Community, days: int = DAYS, today: date | None = None) -> Window:
    with c.db.read() as conn:
        return Window(feed_queries.listing_days(conn, days, today))


def candidates(c: Community, window: Window) -> list[PaperRow]:
    if window.start is None or window.end is None:
        return []
    with c.db.read() as conn:
        return feed_queries.listed_between(conn, window.start, window.end)


def reasons(
    follows: Sequence[Follow], rows: Sequence[PaperRow], search_hits: dict[str, set[str]]
) -> dict[str, list[str]]:
    """paper id -> why it is in the user's following view (only papers with a reason)."""
    authors = {f.key: f.value for f in follows if f.kind == "author"}
    cats = {f.value for f in follows if f.kind == "category"}
    searches = [f for f in follows if f.kind == "search"]
    out: dict[str, list[str]] = {}
    for row in rows:
        why: list[str] = []
        for name in row.get("authors") or []:
            if normalise_name(name) in authors:
                why.append(f"from {name}, an author you follow")
        paper_cats = (row.get("categories") or "").split()
        why += [f"in {cat}, a category you follow" for cat in paper_cats if cat in cats]
        why += [f"matches your saved search {f.label}" for f in searches if row["id"] in search_hits.get(f.key, ())]
        if why:
            out[row["id"]] = why
    return out


def following_items(
    follows: Sequence[Follow], rows: Sequence[PaperRow], search: SearchFn | None, window: Window, limit: int
) -> list[dict[str, Any]]:
    """The cards (with ``why``) of the papers the follows select, newest listing day first, then
    the ones with more reasons, then the most upvoted."""
    hits: dict[str, set[str]] = {}
    if search is not None and window.start is not None and window.end is not None:
        for f in follows:
            if f.kind == "search":
                hits[f.key] = set(search(f.value, f.mode or "hybrid", window.start, window.end, SEARCH_DEPTH))
    why = reasons(follows, rows, hits)
    picked = [r for r in rows if r["id"] in why]
    picked.sort(key=lambda r: (r.get("listed") or date.min, len(why[r["id"]]), r.get("upvotes_total") or 0),
                reverse=True)  # fmt: skip
    return [{**card(r), "why": why[r["id"]]} for r in picked[:limit]]


def following_view(
    c: Community, user: User, search: SearchFn | None, *, days: int = DAYS, today: date | None = None,
    limit: int = MAX_ITEMS,
) -> dict[str, Any]:  # fmt: skip
    """Everything /following shows (and its JSON twin): the follows, the window, the papers."""
    follows = follows_of(c, user)
    window = recent_window(c, days, today)
    items = following_items(follows, candidates(c, window) if follows else [], search, window, limit)
    notes = []
    if search is None and any(f.kind == "search" for f in follows):
        notes.append("Search is unavailable right now: saved searches are left out.")
    return {
        "follows": [f.as_json() for f in follows],
        "days": [d.isoformat() for d in window.days],
        "start": window.start,
        "end": window.end,
        "papers": items,
        "total": len(items),
        "notes": notes,
    }
