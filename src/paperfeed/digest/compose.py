"""Compose digests: choose each subscriber's papers for a period and render the mail.

Runs inside the sender (``digest/send.py``) and ``paperfeed digest preview``. What a digest
holds:

* no topics: the period's daily feed, most upvoted first (10), and for daily digests the
  trending papers of the last seven days (5, the formula of ``ranking.py``);
* a saved search: the best hybrid-search matches among the period's *new* papers (first listed
  in the period, or entered the daily feed then), optionally restricted to categories;
* categories only: the period's new papers in those categories, most upvoted first.

Papers already mailed to the subscriber (``digest_sent_papers``) are never chosen again. All
subscribers with the same topics and period share one candidate computation (cached per run),
and each paper's card is rendered once per run; per subscriber only the envelope (links,
greeting) is rendered.
"""

from __future__ import annotations

import logging
import textwrap
import time as time_module
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from paperfeed import ranking
from paperfeed.cards import preview
from paperfeed.config import Settings
from paperfeed.digest.periods import DigestPeriod
from paperfeed.digest.subscriptions import Links, Prefs
from paperfeed.latex_text import to_plain
from paperfeed.store import digest_store as store
from paperfeed.store import feed_queries
from paperfeed.store.db import Database
from paperfeed.store.rows import PaperRow

log = logging.getLogger(__name__)

TOP_LIMIT = 10
TRENDING_LIMIT = 5
TOPIC_LIMIT = 10
POOL_FACTOR = 4  # candidates kept per section, so exclusions still leave enough
SEARCH_LOOKBACK = timedelta(days=14)  # a paper is listed a few days after its first version
SEARCH_DEPTH = 60  # hits asked of the search service per saved query (highlighting costs per hit)
ABSTRACT_CHARS = 300
TEMPLATES = Path(__file__).with_name("templates")

# (query, first day, last day, how many) -> (paper id, its categories), best first, new papers only.
# Categories are filtered by the caller: one search serves every subscriber with that query.
TopicSearch = Callable[[str, date, date, int], list[tuple[str, str]]]


@dataclass(frozen=True)
class Topic:
    query: str = ""
    categories: tuple[str, ...] = ()

    @classmethod
    def of(cls, prefs: Prefs) -> Topic:
        return cls(prefs.query, tuple(sorted(prefs.categories)))

    def __bool__(self) -> bool:
        return bool(self.query or self.categories)


@dataclass
class Section:
    key: str  # top | trending | topic | for_you | following (personal_sections.py)
    title: str
    ids: list[str] = field(default_factory=list)
    why: dict[str, list[str]] = field(default_factory=dict)  # personal sections: paper id -> reasons

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "title": self.title, "ids": list(self.ids)}
        if self.why:
            out["why"] = {k: list(v) for k, v in self.why.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Section:
        why = {str(k): [str(x) for x in v] for k, v in (data.get("why") or {}).items()}
        return cls(str(data["key"]), str(data["title"]), [str(i) for i in data["ids"]], why)


@dataclass
class Rendered:
    subject: str
    text: str
    html: str


class SearchTopics:
    """Saved-search matches through the hybrid :class:`SearchService`, kept to new papers."""

    REFRESH_S = 60.0  # pick up papers indexed by other processes at most this often

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._service: Any = None
        self._refreshed = 0.0

    def _search(self) -> Any:
        # One service for the scheduler's lifetime: the encoder and indexes load once.
        if self._service is None:
            from paperfeed.search.hybrid import SearchService

            self._service = SearchService(self.settings, self.db)
            self._refreshed = time_module.monotonic()
        elif time_module.monotonic() - self._refreshed > self.REFRESH_S:
            self._service.refresh()
            self._refreshed = time_module.monotonic()
        return self._service

    def __call__(self, query: str, start: date, end: date, limit: int) -> list[tuple[str, str]]:
        from paperfeed.search.hybrid import SearchError, SearchRequest, is_match

        req = SearchRequest(q=query, mode="hybrid", date_from=start - SEARCH_LOOKBACK, date_to=end, limit=SEARCH_DEPTH)
        try:
            results = self._search().search(req)
        except SearchError as exc:
            log.info("digest topic %r matches nothing: %s", query, exc)
            return []
        ids = [h.paper["id"] for h in results.hits if is_match(h)]
        with self.db.read() as conn:
            dates = store.paper_dates(conn, ids)
        return [(pid, dates[pid]["categories"] or "") for pid in ids if _is_new(dates.get(pid), start, end)][:limit]


def _is_new(d: dict[str, Any] | None, start: date, end: date) -> bool:
    if d is None or d.get("hidden"):
        return False
    first = d.get("listed") or d.get("published")
    return bool((first and start <= first <= end) or (d.get("feed_date") and start <= d["feed_date"] <= end))


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = lambda text, width=72, indent="": "\n".join(
        textwrap.wrap(str(text), width, initial_indent=indent, subsequent_indent=indent)
    )
    return env


def author_line(authors: list[str] | None) -> str:
    names = list(authors or [])
    if len(names) <= 3:
        return ", ".join(names)
    return f"{', '.join(names[:3])} and {len(names) - 3} more"


class Composer:
    """Chooses and renders digests; caches per-run work (create one per sender run)."""

    def __init__(self, settings: Settings, db: Database, *, topic_search: TopicSearch | None = None) -> None:
        self.settings = settings
        self.db = db
        self.base = settings.base_url.rstrip("/")
        self.topic_search = topic_search or SearchTopics(settings, db)
        self.env = _environment()
        self._pools: dict[tuple[str, date, date, Topic], list[Section]] = {}
        self._searches: dict[tuple[str, date, date], list[tuple[str, str]]] = {}
        self._papers: dict[str, PaperRow] = {}
        self._cards: dict[str, tuple[Markup, str]] = {}
        self._digest_html = self.env.get_template("digest.html")
        self._digest_txt = self.env.get_template("digest.txt")
        self._card_html = self.env.get_template("_card.html")
        self._card_txt = self.env.get_template("_card.txt")

    # -- choosing -----------------------------------------------------------------------------
    def pools(self, period: DigestPeriod, topic: Topic) -> list[Section]:
        """Candidate sections (longer than shown) for everyone with this period and topic."""
        key = (period.frequency, period.start, period.end, topic)
        if key not in self._pools:
            self._pools[key] = self._compute_pools(period, topic)
        return self._pools[key]

    def _compute_pools(self, period: DigestPeriod, topic: Topic) -> list[Section]:
        n = TOPIC_LIMIT * POOL_FACTOR
        if topic.query:
            key = (topic.query, period.start, period.end)
            if key not in self._searches:
                self._searches[key] = self.topic_search(topic.query, period.start, period.end, SEARCH_DEPTH)
            wanted = {c.lower() for c in topic.categories}
            ids = [
                pid for pid, cats in self._searches[key] if not wanted or wanted & {c.lower() for c in cats.split()}
            ][:n]
            return [Section("topic", f"New papers matching “{topic.query}”", ids)]
        if topic.categories:
            with self.db.read() as conn:
                rows = store.new_papers(conn, period.start, period.end, topic.categories, n)
            return [Section("topic", f"New in {', '.join(topic.categories)}", [r["id"] for r in rows])]
        with self.db.read() as conn:
            top = store.daily_feed(conn, period.start, period.end, TOP_LIMIT * POOL_FACTOR)
            title = "Most upvoted this week" if period.frequency == "weekly" else "Most upvoted"
            sections = [Section("top", title, [r["id"] for r in top])]
            if period.frequency == "daily":
                recent = store.daily_feed(conn, period.end - timedelta(days=6), period.end, 500)
                reference = datetime.combine(period.end + timedelta(days=1), time())
                ranked = ranking.rank_trending(recent, reference)
                sections.append(Section("trending", "Trending this week", [r["id"] for r in ranked]))
        return sections

    def candidate_ids(self, period: DigestPeriod, topic: Topic) -> set[str]:
        return {pid for s in self.pools(period, topic) for pid in s.ids}

    def choose(self, period: DigestPeriod, topic: Topic, exclude: set[str]) -> list[Section]:
        """The sections one subscriber gets: pools minus papers they already had; [] if none."""
        limits = {"top": TOP_LIMIT, "trending": TRENDING_LIMIT, "topic": TOPIC_LIMIT}
        taken: set[str] = set(exclude)
        out: list[Section] = []
        for pool in self.pools(period, topic):
            ids = []
            for pid in pool.ids:
                if pid not in taken:
                    ids.append(pid)
                    taken.add(pid)
                    if len(ids) >= limits[pool.key]:
                        break
            if ids:
                out.append(Section(pool.key, pool.title, ids))
        return out

    # -- rendering ----------------------------------------------------------------------------
    def load_papers(self, ids: Iterable[str]) -> None:
        missing = [pid for pid in ids if pid not in self._papers]
        if missing:
            with self.db.read() as conn:
                self._papers.update(feed_queries.papers_by_ids(conn, missing))

    def _card(self, pid: str) -> tuple[Markup, str] | None:
        if pid not in self._cards:
            paper = self._papers.get(pid)
            if paper is None:
                return None  # deleted since the digest was composed
            ctx = {
                "p": paper,
                "url": f"{self.base}/papers/{pid}",
                "abs_url": f"https://arxiv.org/abs/{pid}",
                "pdf_url": f"https://arxiv.org/pdf/{pid}",
                "authors": author_line(paper.get("authors")),
                "abstract": preview(to_plain(paper.get("abstract") or ""), ABSTRACT_CHARS),
                "upvotes": int(paper.get("upvotes_total") or 0),
                "category": (paper.get("categories") or "").split(" ")[0],
            }
            self._cards[pid] = (Markup(self._card_html.render(ctx)), self._card_txt.render(ctx))
        return self._cards[pid]

    def render_digest(
        self, *, email: str, prefs: Prefs, period: DigestPeriod, sections: list[Section], links: Links
    ) -> Rendered:
        self.load_papers(pid for s in sections for pid in s.ids)
        blocks = []
        count = 0
        for s in sections:
            shown = [(pid, c) for pid, c in ((pid, self._card(pid)) for pid in s.ids) if c is not None]
            count += len(shown)
            blocks.append({"title": s.title, "html": [c[0] for _, c in shown], "text": [c[1] for _, c in shown],
                           "why": [s.why.get(pid, []) for pid, _ in shown]})  # fmt: skip
        what = "weekly" if period.frequency == "weekly" else "daily"
        topic = (
            f" on “{prefs.query[:60]}”"
            if prefs.query
            else f" in {', '.join(prefs.categories)}"
            if prefs.categories
            else ""
        )
        subject = f"paperfeed {what}: {count} paper{'s' if count != 1 else ''}{topic} · {period.label}"
        ctx = {
            "email": email,
            "period": period,
            "sections": blocks,
            "count": count,
            "prefs": prefs,
            "settings_lines": prefs.describe(),
            "links": links,
            "base_url": self.base,
            "subject": subject,
        }
        return Rendered(subject, self._digest_txt.render(ctx), self._digest_html.render(ctx))

    def render_confirm(
        self, *, email: str, prefs: Prefs, confirm_url: str, change: bool, manage_url: str | None = None
    ) -> Rendered:
        subject = "Confirm the changes to your paperfeed digest" if change else "Confirm your paperfeed digest"
        ctx = {
            "email": email,
            "settings_lines": prefs.describe(),
            "confirm_url": confirm_url,
            "manage_url": manage_url,
            "change": change,
            "base_url": self.base,
            "subject": subject,
        }
        html = self.env.get_template("confirm.html").render(ctx)
        return Rendered(subject, self.env.get_template("confirm.txt").render(ctx), html)
