"""The digest's personal sections (issue 14), for subscribers whose address is the confirmed
address of an account that asked for them on /for-you:

* **For you** - the period's new papers (first listed in it, or daily picks of it) ranked for the
  user by the for-you ranker, keeping only those whose relevance is at least the user's threshold
  (none rather than filler), each with why;
* **Following** - the period's new papers from the authors, categories and saved searches the
  user follows, each with why.

With "also leave them out of my email digest" on, the user's excluded words and categories also
drop papers from the digest's other sections. Papers already mailed to the subscriber are never
chosen again (the same ledger as the other sections). Called by the sender (``send.py``) once per
batch (:meth:`PersonalSections.prepare`) and per subscriber (:meth:`PersonalSections.apply`).
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from paperfeed.community.core import Community, User
from paperfeed.config import Settings
from paperfeed.digest.compose import Section
from paperfeed.digest.periods import DigestPeriod
from paperfeed.personal import following
from paperfeed.personal.follows import follows_of
from paperfeed.personal.for_you import author_reasons, rank_for, ranker_for
from paperfeed.personal.settings import PersonalSettings
from paperfeed.search.hybrid import SearchService
from paperfeed.store import community_store, digest_store, feed_queries, personal_store
from paperfeed.store.db import Database
from paperfeed.store.rows import PaperRow

log = logging.getLogger(__name__)

FOR_YOU_LIMIT = 10
FOLLOWING_LIMIT = 10


class PersonalSections:
    """Builds the personal sections of one sending run (candidates are read once per period)."""

    def __init__(self, settings: Settings, db: Database, *, search: SearchService | None = None) -> None:
        self.community = Community(settings=settings, db=db)
        self.db = db
        self._search = search
        self._search_failed = False
        self._users: dict[str, dict[str, Any]] = {}
        self._candidates: dict[tuple[date, date], list[PaperRow]] = {}
        self._searched: dict[tuple[str, str, date, date, int], list[str]] = {}

    def prepare(self, emails: list[str]) -> None:
        """Look up, in one query, which of these subscribers want a personal section."""
        with self.db.read() as conn:
            self._users.update(personal_store.digest_users(conn, emails))

    def _rows(self, period: DigestPeriod) -> list[PaperRow]:
        key = (period.start, period.end)
        if key not in self._candidates:
            with self.db.read() as conn:
                rows = {r["id"]: r for r in feed_queries.listed_between(conn, period.start, period.end)}
                for r in feed_queries.entries_since(conn, period.start, period.end):
                    rows.setdefault(r["id"], r)
            self._candidates[key] = list(rows.values())
        return self._candidates[key]

    def _search_fn(self) -> following.SearchFn | None:
        """Followed searches through one search service, each (query, mode, period) run once per
        sending run however many subscribers follow it."""
        if self._search is None and not self._search_failed:
            try:
                self._search = SearchService(self.community.settings, self.db)
            except Exception:  # no index yet: saved searches are left out, the rest still works
                log.exception("digest: search unavailable for followed searches")
                self._search_failed = True
        run = following.service_search(self._search)
        if run is None:
            return None

        def cached(query: str, mode: str, start: date, end: date, limit: int) -> list[str]:
            key = (query, mode, start, end, limit)
            if key not in self._searched:
                self._searched[key] = run(query, mode, start, end, limit)
            return self._searched[key]

        return cached

    def apply(self, row: dict[str, Any], period: DigestPeriod, sections: list[Section]) -> list[Section]:
        """The subscriber's sections: the personal ones first, then ``sections`` (filtered by the
        user's exclusions when they asked for that). A failure here never stops the digest: the
        subscriber gets the other sections and the error is logged."""
        try:
            return self._apply(row, period, sections)
        except Exception:
            log.exception("digest: personal sections failed for subscription %s", row.get("subscription_id"))
            return sections

    def _apply(self, row: dict[str, Any], period: DigestPeriod, sections: list[Section]) -> list[Section]:
        info = self._users.get((row.get("email") or "").lower())
        if info is None:
            return sections
        prefs = PersonalSettings.from_row(info)
        with self.db.read() as conn:
            account = community_store.get_user(conn, int(info["user_id"]))
        if account is None:
            return sections
        user = User.from_row(account)
        rows = {r["id"]: r for r in self._rows(period)}
        with self.db.read() as conn:
            had = {pid for _, pid in digest_store.reserved_papers(conn, [row["subscription_id"]], rows)}
        taken = set(had)  # the personal sections come first: they take their papers from the others
        out: list[Section] = []
        if prefs.digest_for_you and rows:
            result = rank_for(self.community, user, ranker=ranker_for(self.db), candidates=list(rows), explain=0)
            picked = [r for r in result.ranked if r.relevance >= prefs.digest_threshold and r.paper_id not in taken]
            picked = result.explain(picked[:FOR_YOU_LIMIT])  # reasons for the chosen ten only
            if picked:
                why = {r.paper_id: author_reasons(rows[r.paper_id], result.follows) + [x.text for x in r.reasons]
                       or [f"relevance {r.relevance:.2f}"] for r in picked}  # fmt: skip
                out.append(Section("for_you", "For you", [r.paper_id for r in picked], why))
                taken |= set(why)
        if prefs.digest_following:
            follows = follows_of(self.community, user)
            window = following.Window(sorted({d for r in rows.values() if (d := r.get("listed"))}, reverse=True))
            items = [i for i in following.following_items(follows, list(rows.values()), self._search_fn(), window,
                                                          FOLLOWING_LIMIT * 3) if i["id"] not in taken]  # fmt: skip
            items = [i for i in items if not prefs.filter_digest or not prefs.excludes(i["title"], i["abstract"],
                                                                                      i["categories"])]  # fmt: skip
            if items:
                items = items[:FOLLOWING_LIMIT]
                out.append(Section("following", "From what you follow", [i["id"] for i in items],
                                   {i["id"]: i["why"] for i in items}))  # fmt: skip
        mine = {pid for s in out for pid in s.ids}
        sections = [Section(s.key, s.title, [p for p in s.ids if p not in mine], s.why) for s in sections]
        if prefs.filter_digest and (prefs.exclude_words or prefs.exclude_categories):
            sections = [self._filtered(s, prefs) for s in sections]
        return out + [s for s in sections if s.ids]

    def _filtered(self, section: Section, prefs: PersonalSettings) -> Section:
        with self.db.read() as conn:
            papers = feed_queries.papers_by_ids(conn, section.ids)
        keep = [
            pid for pid in section.ids
            if pid in papers and not prefs.excludes(papers[pid].get("title") or "", papers[pid].get("abstract") or "",
                                                    (papers[pid].get("categories") or "").split())
        ]  # fmt: skip
        return Section(section.key, section.title, keep, section.why)
