"""Counting papers over time for trends: timelines above searches, the trends page, small multiples.

Runs on every search page (the timeline), on ``/trends`` and ``/api/v1/trends``, and on category
pages. Counts come from the lexical index in one tantivy aggregation per query over the matching
documents (a date histogram on the ``published`` fast field, terms on the ``cat`` and
``author_name`` fast fields); no search is re-run per bucket and no paper row is read. The
"attention" measure (daily-feed upvotes) intersects the matches with the daily feed's papers and
sums their upvotes per feed week (rows from :func:`paperfeed.store.trend_queries.feed_entries`).

What "matching" means here: papers that contain the query's words (all of them; the rarest two
thirds in queries of five or more words, see :func:`paperfeed.search.lexical_query.words_needed`) and pass
its phrases, exclusions, ``author:`` and ``cat:`` filters. That is stricter than the ranked search,
which ORs the words and lets BM25 sort it out: a count of "papers mentioning any word" would be
most of the corpus.

Buckets are ISO weeks (Monday first) or calendar months; :func:`choose_unit` picks months when a
span is longer than :data:`MAX_WEEKS` weeks. All dates are UTC days.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import tantivy

from paperfeed.search.lexical import LexicalIndex
from paperfeed.search.lexical_docs import SCHEMA
from paperfeed.search.lexical_query import build_query
from paperfeed.search.query import ParsedQuery, canonical_category
from paperfeed.store.trend_queries import FeedEntry

log = logging.getLogger(__name__)

Unit = Literal["week", "month"]
UNITS: tuple[Unit, ...] = ("week", "month")
MAX_WEEKS = 156  # three years of weeks; longer spans are drawn per month
MAX_BUCKETS = 1_200  # a hundred years of months: bounds the work of any one request
TOP_N = 8
TAIL = 0.005  # charts start where the oldest 0.5% of the corpus ends (see TrendCounter.span)
# Archives that are never a paper's category by themselves (their papers are always "cs.XX" etc.):
# the index stores them next to each category so that cat:cs works; they are not shown as "top".
_ARCHIVE_ONLY = frozenset({"cs", "math", "stat", "eess", "econ", "q-bio", "q-fin", "physics", "nlin"})
_EPOCH = date(1970, 1, 1)
_MS_PER_DAY = 86_400_000
_NS_PER_DAY = _MS_PER_DAY * 1_000_000
_FATAL = (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError)


class TrendsUnavailable(RuntimeError):
    """There is no usable lexical index to count with (not built yet, or broken)."""


# -- buckets ------------------------------------------------------------------------------------


def bucket_start(day: date, unit: Unit) -> date:
    """The Monday of ``day``'s week, or the first of its month."""
    if unit == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_start(start: date, unit: Unit) -> date:
    if unit == "week":
        return start + timedelta(days=7)
    return date(start.year + (start.month == 12), start.month % 12 + 1, 1)


def bucket_end(start: date, unit: Unit) -> date:
    """The last day (inclusive) of the bucket starting on ``start``."""
    return next_start(start, unit) - timedelta(days=1)


def bucket_starts(lo: date, hi: date, unit: Unit) -> list[date]:
    """Every bucket start from ``lo``'s bucket to ``hi``'s, inclusive (at most MAX_BUCKETS)."""
    out: list[date] = []
    cur = bucket_start(lo, unit)
    while cur <= hi and len(out) < MAX_BUCKETS:
        out.append(cur)
        cur = next_start(cur, unit)
    return out


def choose_unit(lo: date, hi: date) -> Unit:
    return "week" if (hi - lo).days // 7 < MAX_WEEKS else "month"


def _day_ns(day: date) -> int:
    return (day - _EPOCH).days * _NS_PER_DAY


# -- results ------------------------------------------------------------------------------------


@dataclass
class Timeline:
    """Matching papers per bucket over the whole corpus, plus what the matches are about."""

    unit: Unit
    starts: list[date]
    counts: list[int]
    total: int  # matching papers with a publication date
    categories: list[tuple[str, int]] = field(default_factory=list)  # within the date filter
    authors: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Series:
    counts: list[float]
    total: float


@dataclass
class Trends:
    """One count per bucket for each query, and how many papers the corpus has per bucket."""

    unit: Unit
    starts: list[date]
    series: list[Series]
    corpus: list[int]  # all papers per bucket (the denominator of "share")


# -- counting -----------------------------------------------------------------------------------


class TrendCounter:
    """Counts over one lexical index. Thread-safe; corpus-wide figures are cached per index state."""

    CACHE_S = 60.0

    def __init__(self, lexical: LexicalIndex) -> None:
        self.lexical = lexical
        self._lock = threading.Lock()
        self._cache: dict[tuple[Any, ...], tuple[float, Any]] = {}

    # -- plumbing --
    def _searcher(self) -> tantivy.Searcher:
        try:
            searcher = self.lexical.searcher()
        except BaseException as exc:
            if isinstance(exc, _FATAL):
                raise
            raise TrendsUnavailable(f"the search index cannot be read ({exc})") from exc
        if searcher is None:
            raise TrendsUnavailable("there is no search index yet (run `paperfeed index`)")
        return searcher

    def _cached(self, searcher: tantivy.Searcher, key: tuple[Any, ...], make: Any) -> Any:
        full = (searcher.num_docs, searcher.num_segments, *key)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(full)
            if hit is not None and now - hit[0] < self.CACHE_S:
                return hit[1]
        value = make()
        with self._lock:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[full] = (now, value)
        return value

    @staticmethod
    def _aggregate(searcher: tantivy.Searcher, query: tantivy.Query, aggs: dict[str, Any]) -> dict[str, Any]:
        try:
            return searcher.aggregate(query, aggs)
        except BaseException as exc:
            if isinstance(exc, _FATAL):
                raise
            raise TrendsUnavailable(f"counting failed ({type(exc).__name__}: {exc})") from exc

    @staticmethod
    def _query(
        searcher: tantivy.Searcher, pq: ParsedQuery, categories: Sequence[str], has_code: bool
    ) -> tantivy.Query | None:
        """The counting query: ``pq`` without its own dates (the timeline spans the corpus)."""
        undated = replace(pq, date_from=None, date_to=None)
        built = build_query(searcher, undated, list(categories), None, None, counting=True)
        if built is None:
            return None
        query = built[0]
        if has_code:
            code = tantivy.Query.term_query(SCHEMA, "has_code", True)
            query = tantivy.Query.boolean_query([(tantivy.Occur.Must, query), (tantivy.Occur.Must, code)])
        return query

    def span(self) -> tuple[date, date] | None:
        """The days charts cover by default: from the week by which :data:`TAIL` of the dated papers
        have appeared to the newest publication day (None when the index holds no dated paper).
        A few very old papers (old work re-listed with a new version) would otherwise squash every
        chart into its last few bars; an explicit ``from`` on /trends reaches back further."""
        searcher = self._searcher()
        return self._cached(searcher, ("span",), lambda: self._span(searcher))

    def _span(self, searcher: tantivy.Searcher) -> tuple[date, date] | None:
        aggs = {
            "hi": {"max": {"field": "published"}},
            "weeks": {"date_histogram": {"field": "published", "fixed_interval": "7d", "offset": "-3d"}},
        }
        out = self._aggregate(searcher, tantivy.Query.all_query(), aggs)
        hi, weeks = out["hi"].get("value"), out["weeks"].get("buckets") or []
        total = sum(int(b["doc_count"]) for b in weeks)
        if hi is None or not total:
            return None
        seen = 0
        lo = None
        for b in weeks:
            seen += int(b["doc_count"])
            if b["doc_count"] and seen > TAIL * total:
                lo = _EPOCH + timedelta(days=int(b["key"]) // _MS_PER_DAY)
                break
        assert lo is not None
        return lo, _ns_to_day(hi)

    @staticmethod
    def _histogram(unit: Unit, starts: list[date]) -> dict[str, Any]:
        if unit == "week":
            # Fixed 7-day buckets; the epoch is a Thursday, so -3 days puts them on Mondays.
            return {"date_histogram": {"field": "published", "fixed_interval": "7d", "offset": "-3d"}}
        # Months differ in length: count days and add them up (at 1M papers this took half the time
        # of a range aggregation with one range per month).
        return {"date_histogram": {"field": "published", "fixed_interval": "1d"}}

    @staticmethod
    def _counts(result: dict[str, Any], unit: Unit, starts: list[date]) -> list[int]:
        index = {s: i for i, s in enumerate(starts)}
        counts = [0] * len(starts)
        for b in result.get("buckets", ()):
            n = int(b["doc_count"])
            if not n:
                continue
            day = _EPOCH + timedelta(days=int(b["key"]) // _MS_PER_DAY)
            i = index.get(day if unit == "week" else bucket_start(day, unit))
            if i is not None:
                counts[i] += n
        return counts

    # -- the timeline above a search --
    def timeline(
        self,
        pq: ParsedQuery,
        *,
        categories: Sequence[str] = (),
        has_code: bool = False,
        date_from: date | None = None,
        date_to: date | None = None,
        top: int = TOP_N,
    ) -> Timeline | None:
        """Matching papers per week/month over the corpus's whole span; top categories and authors
        among the matches inside ``date_from``..``date_to`` (and the query's own dates). None when
        the corpus has no dated paper or nothing can match."""
        searcher = self._searcher()
        span = self.span()
        query = self._query(searcher, pq, categories, has_code)
        if span is None or query is None:
            return None
        unit = choose_unit(*span)
        starts = bucket_starts(span[0], span[1], unit)
        tops = {
            "cats": {"terms": {"field": "cat", "size": top + len(_ARCHIVE_ONLY)}},
            "authors": {"terms": {"field": "author_name", "size": top}},
        }
        lo = max(filter(None, [date_from, pq.date_from]), default=None)
        hi = min(filter(None, [date_to, pq.date_to]), default=None)
        aggs: dict[str, Any] = {"t": self._histogram(unit, starts)}
        if lo or hi:
            window: dict[str, Any] = {}
            if lo:
                window["from"] = float(_day_ns(lo))
            if hi:
                window["to"] = float(_day_ns(hi + timedelta(days=1)))
            aggs["in"] = {"range": {"field": "published", "ranges": [window]}, "aggs": tops}
        else:
            aggs.update(tops)
        out = self._aggregate(searcher, query, aggs)
        counts = self._counts(out["t"], unit, starts)
        scope = out
        if "in" in out:  # tantivy adds open-ended buckets around ours: find ours by its bounds
            scope = next(
                b
                for b in out["in"]["buckets"]
                if b.get("from") == window.get("from") and b.get("to") == window.get("to")
            )
        cats = [
            (canonical_category(str(b["key"])) or str(b["key"]), int(b["doc_count"]))
            for b in scope["cats"]["buckets"]
            if str(b["key"]) not in _ARCHIVE_ONLY
        ]
        authors = [(str(b["key"]), int(b["doc_count"])) for b in scope["authors"]["buckets"]]
        cats.sort(key=lambda kv: (-kv[1], kv[0]))
        authors.sort(key=lambda kv: (-kv[1], kv[0]))
        return Timeline(unit, starts, counts, sum(counts), cats[:top], authors[:top])

    # -- several queries side by side --
    def buckets_for(self, date_from: date | None, date_to: date | None, unit: Unit | None) -> tuple[Unit, list[date]]:
        """The unit and bucket starts for a window (defaults: the corpus's span, the unit it needs)."""
        span = self.span()
        if span is None and (date_from is None or date_to is None):
            return unit or "week", []
        lo = date_from or (span[0] if span else date_from)
        hi = date_to or (span[1] if span else date_to)
        assert lo is not None and hi is not None
        if lo > hi:
            return unit or "week", []
        chosen = unit or choose_unit(lo, hi)
        return chosen, bucket_starts(lo, hi, chosen)

    def corpus_counts(self, unit: Unit, starts: list[date]) -> list[int]:
        """All papers per bucket (cached: the same for every query)."""
        if not starts:
            return []
        searcher = self._searcher()
        key = ("corpus", unit, starts[0], starts[-1])

        def make() -> list[int]:
            out = self._aggregate(searcher, tantivy.Query.all_query(), {"t": self._histogram(unit, starts)})
            return self._counts(out["t"], unit, starts)

        return list(self._cached(searcher, key, make))

    def volume(self, pq: ParsedQuery, unit: Unit, starts: list[date]) -> Series:
        """Matching papers per bucket (one aggregation)."""
        if not starts:
            return Series([], 0)
        searcher = self._searcher()
        query = self._query(searcher, pq, pq.categories, False)
        if query is None:
            return Series([0] * len(starts), 0)
        out = self._aggregate(searcher, query, {"t": self._histogram(unit, starts)})
        counts = self._counts(out["t"], unit, starts)
        return Series([float(c) for c in counts], float(sum(counts)))

    def attention(self, pq: ParsedQuery, unit: Unit, starts: list[date], feed: Mapping[str, FeedEntry]) -> Series:
        """Daily-feed upvotes of the matching papers, per bucket of the day they were featured."""
        if not starts or not feed:
            return Series([0.0] * len(starts), 0)
        searcher = self._searcher()
        query = self._query(searcher, pq, pq.categories, False)
        if query is None:
            return Series([0.0] * len(starts), 0)
        ids = tantivy.Query.term_set_query(SCHEMA, "id", list(feed))
        both = tantivy.Query.boolean_query([(tantivy.Occur.Must, query), (tantivy.Occur.Must, ids)])
        try:
            hits = searcher.search(both, len(feed), count=False).hits
            matched = {searcher.doc(address).get_first("id") for _score, address in hits}
        except BaseException as exc:
            if isinstance(exc, _FATAL):
                raise
            raise TrendsUnavailable(f"counting failed ({exc})") from exc
        index = {s: i for i, s in enumerate(starts)}
        sums = [0.0] * len(starts)
        for pid in matched:
            entry = feed.get(str(pid))
            if entry is None:
                continue
            i = index.get(bucket_start(entry.feed_date, unit))
            if i is not None:
                sums[i] += entry.upvotes
        return Series(sums, sum(sums))

    def trends(
        self,
        queries: Sequence[ParsedQuery],
        *,
        date_from: date | None = None,
        date_to: date | None = None,
        unit: Unit | None = None,
        measure: str = "volume",
        feed: Mapping[str, FeedEntry] | None = None,
    ) -> Trends:
        """One series per query over a shared window and unit."""
        chosen, starts = self.buckets_for(date_from, date_to, unit)
        if measure == "attention":
            series = [self.attention(pq, chosen, starts, feed or {}) for pq in queries]
            corpus = _feed_totals(feed or {}, chosen, starts)
        else:
            series = [self.volume(pq, chosen, starts) for pq in queries]
            corpus = self.corpus_counts(chosen, starts)
        return Trends(chosen, starts, series, corpus)


def _feed_totals(feed: Mapping[str, FeedEntry], unit: Unit, starts: list[date]) -> list[int]:
    index = {s: i for i, s in enumerate(starts)}
    totals = [0] * len(starts)
    for entry in feed.values():
        i = index.get(bucket_start(entry.feed_date, unit))
        if i is not None:
            totals[i] += entry.upvotes
    return totals


def count_days(
    days: Iterable[date | None], unit: Unit, starts: list[date], weights: Iterable[int] | None = None
) -> list[int]:
    """Bucket counts of dates read from the database (author pages, a paper's votes)."""
    index = {s: i for i, s in enumerate(starts)}
    counts = [0] * len(starts)
    for day, w in zip(days, weights if weights is not None else _ones(), strict=False):
        if day is None:
            continue
        i = index.get(bucket_start(day, unit))
        if i is not None:
            counts[i] += w
    return counts


def _ones() -> Iterable[int]:
    while True:
        yield 1


def _ns_to_day(value: float) -> date:
    # Min/max of a date fast field come back as nanoseconds since the epoch (a float).
    return datetime.fromtimestamp(float(value) / 1e9, UTC).date()
