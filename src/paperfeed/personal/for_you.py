"""The "for you" view: recent papers (the last 7 listing days plus the daily picks) ranked for one
signed-in user by the ranker (``paperfeed.recs``), with the reasons on every paper.

This module gathers what the ranker learns from - the library's saves, the user's upvotes (if
they want), confirmed authorship claims, "not interested" (negatives), hidden papers, followed
categories, followed authors (a reason, never a feature), the exclusions and the dials - and
shapes the result for the page, its JSON twin, the API, the private feed, the digest section and
the MCP tool. One :class:`~paperfeed.recs.ranker.Ranker` per database per process (it caches paper
features), built on first use.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from paperfeed.cards import card
from paperfeed.community.core import Community, User
from paperfeed.personal.follows import Follow, follows_of
from paperfeed.personal.settings import PersonalSettings, settings_of
from paperfeed.recs.model import UserModel
from paperfeed.recs.ranker import RankedPaper, Ranker, UserSignals, Weights, from_library
from paperfeed.store import claim_store, feed_queries, library_store
from paperfeed.store.db import Database
from paperfeed.store.lookups import normalise_name
from paperfeed.store.rows import PaperRow

PAGE_SIZE = 50
MAX_LIMIT = 200
_rankers: weakref.WeakKeyDictionary[Database, Ranker] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def ranker_for(db: Database) -> Ranker:
    """The process's ranker for this database (built once; it caches paper features)."""
    with _lock:
        found = _rankers.get(db)
        if found is None:
            found = _rankers[db] = Ranker(db)
        return found


def _forget_before_reset(lib: library_store.UserSignals, since: datetime | None) -> library_store.UserSignals:
    """After a reset, upvotes and "not interested" clicks made before it teach the ranker nothing;
    those papers still stay out of the list (as hidden ones do)."""
    if since is None:
        return lib

    def old(s: library_store.Signal) -> bool:
        return s.at <= since

    gone = tuple(s for s in (*lib.upvoted, *lib.not_interested) if old(s))
    upvoted = tuple(s for s in lib.upvoted if not old(s))
    dismissed = tuple(s for s in lib.not_interested if not old(s))
    return replace(lib, upvoted=upvoted, not_interested=dismissed, hidden=(*lib.hidden, *gone))


def user_signals(c: Community, user: User, prefs: PersonalSettings, follows: list[Follow]) -> UserSignals:
    """Everything the ranker takes about one user (the ranker itself never reads user tables)."""
    with c.db.read() as conn:
        lib = library_store.user_signals(conn, user.id)
        authored = claim_store.confirmed_paper_ids(conn, user.id)
    return from_library(
        _forget_before_reset(lib, prefs.reset_at),
        authored=authored,
        followed_categories=frozenset(f.value for f in follows if f.kind == "category"),
        excluded_categories=frozenset(prefs.exclude_categories),
        excluded_words=prefs.exclude_words,
        weights=Weights(popularity=prefs.popularity, recency=prefs.recency,
                        learn_from_upvotes=prefs.learn_from_upvotes),
    )  # fmt: skip


@dataclass
class ForYou:
    """One ranking for one user: the ranked papers, the signals behind it, and whether the ranker
    had anything to learn from (cold start when not)."""

    ranked: list[RankedPaper]
    signals: UserSignals
    follows: list[Follow]
    prefs: PersonalSettings
    learned: bool
    ranker: Ranker
    model: UserModel | None
    candidates: list[str] | None = None  # what was ranked (None: the default list)

    def explain(self, ranked: list[RankedPaper]) -> list[RankedPaper]:
        """These papers of the ranking with their reasons (for those ranked without)."""
        return self.ranker.explain(self.signals, self.model, ranked, candidates=self.candidates)


def rank_for(
    c: Community, user: User, *, ranker: Ranker | None = None, candidates: list[str] | None = None,
    limit: int | None = None, today: date | None = None, explain: int | None = None,
) -> ForYou:  # fmt: skip
    """Rank the recent papers (or ``candidates``) for the user; the first ``explain`` (default:
    all) carry their reasons (``result.explain(...)`` adds them to others)."""
    ranker = ranker or ranker_for(c.db)
    prefs = settings_of(c, user.id)
    follows = follows_of(c, user)
    signals = user_signals(c, user, prefs, follows)
    model = ranker.model_for(user.id, signals)  # the process's cache: refitted only when the signals change
    ranked = ranker.rank(signals, candidates, model=model, limit=limit, today=today, explain=explain)
    return ForYou(ranked, signals, follows, prefs, model is not None, ranker, model, candidates)


def author_reasons(row: PaperRow, follows: list[Follow]) -> list[str]:
    wanted = {f.key for f in follows if f.kind == "author"}
    if not wanted:  # most users follow no author: no names to normalise
        return []
    return [f"from {a}, an author you follow" for a in row.get("authors") or [] if normalise_name(a) in wanted]


def _fallback(result: ForYou, r: RankedPaper) -> str:
    if result.learned:
        return f"scores above {r.relevance:.0%} of recent papers for your library"
    return "new this week (follow categories or save papers to have these ranked for you)"


def cards_for(c: Community, result: ForYou, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` ranked papers as cards with ``why`` (sentences), ``reasons`` (the
    ranker's, structured), ``relevance`` (0..1) and ``score``."""
    top = result.ranked[:limit]
    with c.db.read() as conn:
        rows = feed_queries.papers_by_ids(conn, [r.paper_id for r in top])
    out = []
    for r in top:
        row = rows.get(r.paper_id)
        if row is None:
            continue
        why = author_reasons(row, result.follows) + [x.text for x in r.reasons]
        out.append({
            **card(row),
            "why": why or [_fallback(result, r)],
            "reasons": [{"kind": x.kind, "text": x.text, "paperId": x.paper_id} for x in r.reasons],
            "relevance": round(r.relevance, 4),
            "score": round(r.score, 4),
        })  # fmt: skip
    return out


def for_you_view(c: Community, user: User, *, limit: int = PAGE_SIZE, ranker: Ranker | None = None) -> dict[str, Any]:
    """Everything /for-you shows (and its JSON twin, the API and the feeds)."""
    limit = max(1, min(limit, MAX_LIMIT))
    result = rank_for(c, user, ranker=ranker, explain=limit)  # only the shown papers need their reasons
    s = result.signals
    return {
        "papers": cards_for(c, result, limit),
        "total": len(result.ranked),
        "learned": result.learned,
        "cold_start": not result.learned,
        "signals": {"saved": len(s.saves), "upvoted": len(s.upvotes), "authored": len(s.authored),
                    "notInterested": len(s.not_interested), "hidden": len(s.hidden),
                    "followedCategories": sorted(s.followed_categories),
                    "followedAuthors": [f.value for f in result.follows if f.kind == "author"]},
        "settings": result.prefs.as_json(),
    }  # fmt: skip
