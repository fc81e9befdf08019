"""Trends over time: ``/trends`` (+ ``.json`` and ``.csv`` twins), ``/api/v1/trends``, the timeline
above every search, and the small charts on author, category and paper pages.

Page data is built here from counts made by :mod:`paperfeed.search.trends` (the search index) and
:mod:`paperfeed.store.trend_queries` (SQL); the same dict becomes the HTML page, the JSON twin,
the CSV and the API answer. Charts are drawn by ``templates/charts.html`` from geometry that
:mod:`paperfeed.web.charts` computes at render time (registered as template globals in
:func:`register`).
"""

from __future__ import annotations

import csv
import io
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response

from paperfeed.search.query import ParsedQuery, parse_query
from paperfeed.search.trends import (
    MAX_BUCKETS,
    TrendCounter,
    TrendsUnavailable,
    Unit,
    bucket_end,
    bucket_starts,
    choose_unit,
    count_days,
)
from paperfeed.store import feed_queries, trend_queries
from paperfeed.web import charts, params
from paperfeed.web.context import AppState, app_state, request_context
from paperfeed.web.respond import PageError, cached_json, dumps, error_response, page, render_html, wants_json

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api")

MAX_QUERIES = 4
MEASURES = ("volume", "attention")
SCALES = ("count", "share")
UNIT_CHOICES = ("auto", "week", "month")
EXAMPLES = [
    ["diffusion", "transformer"],
    ['"large language model"', '"reinforcement learning"', "agent"],
    ["cat:cs.CV", "cat:cs.CL"],
]
MATCH_NOTE = (
    "Counts papers containing all the query's words (for queries of five or more words, the rarest two thirds)."
)
_counters: weakref.WeakKeyDictionary[Any, TrendCounter] = weakref.WeakKeyDictionary()
_feed_cache: weakref.WeakKeyDictionary[TrendCounter, tuple[str, dict[str, trend_queries.FeedEntry]]] = (
    weakref.WeakKeyDictionary()
)


def counter(state: AppState) -> TrendCounter | None:
    """The trend counter over the search service's lexical index (None when search is down)."""
    service = state.search()
    lexical = getattr(service, "lexical", None)
    if service is None or lexical is None:
        return None
    found = _counters.get(service)
    if found is None:
        found = _counters.setdefault(service, TrendCounter(lexical))
    return found


def _unit_label(unit: str) -> str:
    return "week" if unit == "week" else "month"


def _bucket_label(start: date, unit: str) -> str:
    return start.isoformat() if unit == "week" else start.strftime("%Y-%m")


# -- the timeline above a search ---------------------------------------------------------------


def _narrowed_to(sp: params.SearchParams) -> Callable[[date, date], str]:
    """``(start, end) -> `` the query string of ``sp`` narrowed to those dates (page 1): what
    ``urlencode(sp.query_args(from=..., to=..., p=None))`` gives, with the other arguments encoded
    once instead of once per bar (a timeline has up to ~150 bars; urlencode was most of its cost)."""
    keys = list(sp.query_args(**{"from": "-", "to": "-", "p": None}))  # the canonical order
    args = sp.query_args(p=None)
    at = keys.index("from")  # "to" follows it
    head = urlencode({k: args[k] for k in keys[:at]})
    tail = urlencode({k: args[k] for k in keys[at + 2 :]})
    before = head + "&" if head else ""
    after = "&" + tail if tail else ""
    # ISO dates are digits and dashes: nothing to quote.
    return lambda start, end: f"{before}from={start.isoformat()}&to={end.isoformat()}{after}"


def search_timeline(state: AppState, sp: params.SearchParams) -> dict[str, Any] | None:
    """Matching papers per week/month for the search ``sp``; each bar links to the search narrowed
    to its dates; top categories and authors link to the search with that filter added."""
    if not sp.q:
        return None
    pq = parse_query(sp.q)
    if pq.is_empty:
        return None
    tc = counter(state)
    if tc is None:
        return None
    try:
        tl = tc.timeline(pq, categories=sp.categories, has_code=sp.has_code, date_from=sp.date_from, date_to=sp.date_to)
    except TrendsUnavailable as exc:
        log.info("no timeline for %r: %s", sp.q, exc)
        return None
    if tl is None:
        return None
    base = "/papers/search?"
    narrowed = _narrowed_to(sp)
    buckets = []
    for start, count in zip(tl.starts, tl.counts, strict=True):
        end = bucket_end(start, tl.unit)
        buckets.append(
            {
                "start": start,
                "end": end,
                "label": _bucket_label(start, tl.unit),
                "count": count,
                "url": base + narrowed(start, end),
            }
        )
    lo = max(filter(None, [sp.date_from, pq.date_from]), default=None)
    hi = min(filter(None, [sp.date_to, pq.date_to]), default=None)
    cats = []
    for cat, n in tl.categories:
        active = cat in sp.categories or cat in pq.categories
        url = None if active else base + urlencode(sp.query_args(category=",".join([*sp.categories, cat]), p=None))
        cats.append({"category": cat, "count": n, "url": url})
    authors = []
    wanted = {a.lower() for a in pq.authors}
    for name, n in tl.authors:
        active = name.lower() in wanted
        quoted = name.replace('"', "")
        url = None if active else base + urlencode(sp.query_args(q=f'{sp.q} author:"{quoted}"', p=None))
        authors.append({"name": name, "count": n, "url": url})
    return {
        "unit": tl.unit,
        "total": tl.total,
        "from": lo,
        "to": hi,
        "buckets": buckets,
        "categories": cats,
        "authors": authors,
        "note": MATCH_NOTE,
        "trends_url": "/trends?" + urlencode({"q": sp.q}),
    }


# -- the trends page -----------------------------------------------------------------------------


@dataclass
class TrendParams:
    queries: list[str] = field(default_factory=list)
    date_from: date | None = None
    date_to: date | None = None
    unit: str = "auto"
    measure: str = "volume"
    scale: str = "count"

    def args(self, **override: Any) -> list[tuple[str, str]]:
        """The canonical query string (repeated ``q``), for links and twins."""
        out = [("q", q) for q in self.queries]
        extra = {
            "from": self.date_from.isoformat() if self.date_from else None,
            "to": self.date_to.isoformat() if self.date_to else None,
            "unit": self.unit if self.unit != "auto" else None,
            "measure": self.measure if self.measure != "volume" else None,
            "scale": self.scale if self.scale != "count" else None,
        }
        extra.update(override)
        out.extend((k, str(v)) for k, v in extra.items() if v not in (None, ""))
        return out

    def cache_key(self) -> str:
        return urlencode(self.args())


def trend_params(qs: Any) -> TrendParams:
    """Check ``/trends`` parameters (``q`` repeated up to 4 times, from, to, unit, measure, scale)."""
    raw = [" ".join(q.split()) for q in qs.getlist("q")]
    queries = list(dict.fromkeys(q for q in raw if q))
    if len(queries) > MAX_QUERIES:
        raise params.ParamError("q", f"compare at most {MAX_QUERIES} queries at once (got {len(queries)})")
    for q in queries:
        if len(q) > params.MAX_QUERY_CHARS:
            raise params.ParamError("q", f"each query must be at most {params.MAX_QUERY_CHARS} characters")
    p = TrendParams(queries=queries)
    p.date_from = params.optional_day(qs.get("from"), "from")
    p.date_to = params.optional_day(qs.get("to"), "to")
    if p.date_from and p.date_to and p.date_from > p.date_to:
        raise params.ParamError("from", f"the start date {p.date_from} is after the end date {p.date_to}")
    p.unit = params.choice(qs.get("unit"), "unit", UNIT_CHOICES)
    p.measure = params.choice(qs.get("measure"), "measure", MEASURES)
    p.scale = params.choice(qs.get("scale"), "scale", SCALES)
    return p


def _value_label(tp: TrendParams, unit: str) -> str:
    per = _unit_label(unit)
    if tp.measure == "attention":
        what = "daily-feed upvotes"
        return f"% of all daily-feed upvotes that {per}" if tp.scale == "share" else f"{what} per {per}"
    return f"% of all papers that {per}" if tp.scale == "share" else f"papers per {per}"


def trends_data(state: AppState, tp: TrendParams) -> dict[str, Any]:
    """The series for ``tp`` (page, JSON twin, CSV and API); raises PageError for what cannot be counted."""
    base: dict[str, Any] = {
        "queries": tp.queries,
        "from": tp.date_from,
        "to": tp.date_to,
        "unit_asked": tp.unit,
        "unit": None,
        "measure": tp.measure,
        "scale": tp.scale,
        "value_label": "",
        "buckets": [],
        "series": [],
        "all": [],
        "warnings": [],
        "note": MATCH_NOTE,
        "examples": [{"queries": e, "url": "/trends?" + urlencode([("q", q) for q in e])} for e in EXAMPLES],
        "links": {},
    }
    if not tp.queries:
        return base
    tc = counter(state)
    if tc is None:
        raise PageError(503, state.search_unavailable or "search is unavailable, so trends cannot be counted")
    parsed: list[ParsedQuery] = []
    warnings: list[str] = []
    for q in tp.queries:
        pq = parse_query(q)
        warnings.extend(f"“{q}”: {w}" for w in pq.warnings)
        if pq.is_empty:
            warnings.append(f"“{q}” has nothing to count (only very common words or punctuation).")
        parsed.append(pq)
    try:
        unit, starts = _window(tc, tp)
        if not starts:
            span = tc.span()
            where = f" (they span {span[0]} to {span[1]})" if span else ""
            wanted = f"{tp.date_from or 'the start'} to {tp.date_to or 'the end'}"
            return {**base, "warnings": [f"No papers in this paperfeed were published from {wanted}{where}."]}
        feed = _feed_entries(state, tc) if tp.measure == "attention" else None
        result = tc.trends(
            parsed,
            date_from=starts[0] if starts else tp.date_from,
            date_to=tp.date_to or (bucket_end(starts[-1], unit) if starts else None),
            unit=unit,
            measure=tp.measure,
            feed=feed,
        )
    except TrendsUnavailable as exc:
        raise PageError(503, f"Trends cannot be counted right now: {exc}") from None
    series = []
    for q, s in zip(tp.queries, result.series, strict=True):
        if tp.scale == "share":
            values = [round(100 * c / t, 3) if t else 0.0 for c, t in zip(s.counts, result.corpus, strict=True)]
        else:
            values = [int(c) for c in s.counts]
        series.append(
            {
                "query": q,
                "label": q,
                "values": values,
                "counts": [int(c) for c in s.counts],
                "total": int(s.total),
                "search_url": "/papers/search?" + urlencode({"q": q}),
            }
        )
    qs = urlencode(tp.args())
    return {
        **base,
        "unit": result.unit,
        "value_label": _value_label(tp, result.unit),
        "buckets": [
            {"start": s, "end": bucket_end(s, result.unit), "label": _bucket_label(s, result.unit)}
            for s in result.starts
        ],
        "series": series,
        "all": result.corpus,
        "warnings": warnings,
        "links": {"json": f"/trends.json?{qs}", "csv": f"/trends.csv?{qs}", "api": f"/api/v1/trends?{qs}"},
    }


def _feed_entries(state: AppState, tc: TrendCounter) -> dict[str, trend_queries.FeedEntry]:
    """The daily feed's papers and upvotes, read once per data version (a vote or import changes it)."""
    token = state.version.current().token
    found = _feed_cache.get(tc)
    if found is not None and found[0] == token:
        return found[1]
    with state.db.read() as conn:
        entries = trend_queries.feed_entries(conn)
    _feed_cache[tc] = (token, entries)
    return entries


def _window(tc: TrendCounter, tp: TrendParams) -> tuple[Unit, list[date]]:
    span = tc.span()
    lo = tp.date_from or (span[0] if span else None)
    hi = tp.date_to or (span[1] if span else None)
    if lo is None or hi is None or lo > hi:
        # tp.unit was checked against UNIT_CHOICES: it is a Unit or "auto" (mypy sees a str).
        return ("week" if tp.unit == "auto" else tp.unit), []  # type: ignore[return-value]  # see above
    unit: Unit = choose_unit(lo, hi) if tp.unit == "auto" else tp.unit  # type: ignore[assignment]  # see above
    if unit == "week" and (hi - lo).days // 7 >= MAX_BUCKETS:
        raise PageError(400, f"that is more than {MAX_BUCKETS} weeks: choose unit=month or a shorter window")
    if unit == "month" and (hi.year - lo.year) * 12 + hi.month - lo.month >= MAX_BUCKETS:
        raise PageError(400, f"that is more than {MAX_BUCKETS} months: choose a shorter window")
    return unit, bucket_starts(lo, hi, unit)


def _csv_text(cell: str) -> str:
    """A visitor's text as a CSV cell that spreadsheets show as text, never run as a formula
    (CSV injection: a cell starting with = + - @, a tab or a CR is a formula to Excel and friends)."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def trends_csv(data: dict[str, Any]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    all_label = "all_upvotes" if data["measure"] == "attention" else "all_papers"
    writer.writerow(["start", "end", *[_csv_text(s["label"]) for s in data["series"]], all_label])
    for i, b in enumerate(data["buckets"]):
        row = [b["start"].isoformat(), b["end"].isoformat(), *[s["values"][i] for s in data["series"]]]
        writer.writerow([*row, data["all"][i]])
    return out.getvalue().encode()


def _bad_params(request: Request, exc: params.ParamError) -> Response:
    if wants_json(request):
        return Response(dumps({"detail": exc.message, "field": exc.field}), 400, media_type="application/json")
    data = {**trends_data_empty(request), "error": exc.message, "error_field": exc.field}
    body = render_html(request, "trends.html", {**data, **request_context(request, "trends")})
    return Response(body, 400, media_type="text/html; charset=utf-8")


def trends_data_empty(request: Request) -> dict[str, Any]:
    """The form, refilled with what the visitor typed, for an error page."""
    tp = TrendParams(queries=[" ".join(q.split())[:500] for q in request.query_params.getlist("q") if q.strip()])
    data = trends_data(app_state(request), TrendParams())
    return {**data, "queries": tp.queries[:MAX_QUERIES]}


@router.get("/trends")
async def trends_page(request: Request) -> Response:
    state = app_state(request)
    try:
        tp = trend_params(request.query_params)
    except params.ParamError as exc:
        return _bad_params(request, exc)

    def build() -> dict[str, Any]:
        return {**trends_data(state, tp), "error": None, "error_field": None}

    try:
        return await page(request, key="trends|" + tp.cache_key(), build=build, template="trends.html", active="trends")
    except PageError as exc:
        return error_response(request, exc.status, exc.message, title="Trends unavailable")


@router.get("/trends.csv")
async def trends_csv_route(request: Request) -> Response:
    state = app_state(request)
    try:
        tp = trend_params(request.query_params)
    except params.ParamError as exc:
        return Response(f"{exc.field}: {exc.message}\n", 400, media_type="text/plain; charset=utf-8")
    if not tp.queries:
        return Response("q: give at least one query, e.g. /trends.csv?q=diffusion&q=transformer\n", 400)
    try:
        data = trends_data(state, tp)
    except PageError as exc:
        return Response(exc.message + "\n", exc.status, media_type="text/plain; charset=utf-8")
    headers = {"Content-Disposition": 'inline; filename="trends.csv"'}
    return Response(trends_csv(data), media_type="text/csv; charset=utf-8", headers=headers)


@api_router.get("/v1/trends", response_model=None)
async def api_trends(
    request: Request,
    q: list[str] = Query(..., description=f"a search query (author:, cat:, phrases, -exclusions); up to {MAX_QUERIES}"),
    date_from: str | None = Query(None, alias="from", description="first day, YYYY-MM-DD (default: oldest paper)"),
    date_to: str | None = Query(None, alias="to", description="last day, YYYY-MM-DD (default: newest paper)"),
    unit: str = Query("auto", description="auto, week or month"),
    measure: str = Query("volume", description="volume (papers) or attention (daily-feed upvotes)"),
    scale: str = Query("count", description="count, or share of all papers (upvotes) in each bucket, in %"),
) -> Response:
    """Papers (or daily-feed upvotes) per week or month for up to four queries: the data of /trends."""
    state = app_state(request)
    try:
        tp = trend_params(request.query_params)
    except params.ParamError as exc:
        raise RequestValidationError(
            [{"loc": ("query", exc.field), "msg": exc.message, "type": "value_error"}]
        ) from None
    if not tp.queries:
        raise RequestValidationError(
            [{"loc": ("query", "q"), "msg": "give at least one non-empty query", "type": "value_error"}]
        )

    def build() -> tuple[Any, dict[str, str]]:
        try:
            data = trends_data(state, tp)
        except PageError as exc:
            return {"detail": exc.message}, {"x-status": str(exc.status)}
        data = {k: v for k, v in data.items() if k not in ("examples",)}
        return data, {}

    response = await cached_json(request, key="trends|" + tp.cache_key(), build=build)
    status = response.headers.get("x-status")
    if status:
        del response.headers["x-status"]
        response.status_code = int(status)
        for h in ("etag", "last-modified"):
            if h in response.headers:
                del response.headers[h]
    return response


# -- small multiples on other pages ------------------------------------------------------------


def author_activity(state: AppState, name: str) -> dict[str, Any] | None:
    """An author's papers per month (over their active span) and their categories."""
    with state.db.read() as conn:
        ids, _backlog = feed_queries.author_paper_ids(conn, name)
        rows = trend_queries.paper_days(conn, ids) if ids else []
    days = [r.published for r in rows if r.published]
    if not days:
        return None
    starts = bucket_starts(min(days), max(days), "month")
    counts = count_days(days, "month", starts)
    cats: dict[str, int] = {}
    for r in rows:
        for c in r.categories:
            cats[c] = cats.get(c, 0) + 1
    top = sorted(cats.items(), key=lambda kv: (-kv[1], kv[0]))[:8]
    return {
        "unit": "month",
        "buckets": _linked(starts, counts, "month", 'author:"' + name.replace('"', "") + '"'),
        "categories": [{"category": c, "count": n} for c, n in top],
    }


def category_weeks(state: AppState, category: str | None) -> dict[str, Any] | None:
    """Papers per week in a category over the last year of the corpus (from the search index)."""
    if not category:
        return None
    tc = counter(state)
    if tc is None:
        return None
    try:
        span = tc.span()
        if span is None:
            return None
        lo = max(span[0], date(span[1].year - 1, span[1].month, 1))
        starts = bucket_starts(lo, span[1], "week")
        series = tc.volume(ParsedQuery(categories=[category]), "week", starts)
    except TrendsUnavailable as exc:
        log.info("no category chart for %s: %s", category, exc)
        return None
    return {
        "unit": "week",
        "category": category,
        "total": int(series.total),
        # No bar links: a search needs words or an author next to cat: (see SearchService.search).
        "buckets": [
            {"start": s, "end": bucket_end(s, "week"), "label": _bucket_label(s, "week"), "count": int(n)}
            for s, n in zip(starts, series.counts, strict=True)
        ],
        "trends_url": "/trends?" + urlencode({"q": f"cat:{category}"}),
    }


def _linked(starts: list[date], counts: list[int], unit: Unit, q: str) -> list[dict[str, Any]]:
    """Buckets whose bars link to the search ``q`` narrowed to their dates."""
    out = []
    for s, n in zip(starts, counts, strict=True):
        end = bucket_end(s, unit)
        url = "/papers/search?" + urlencode({"q": q, "sort": "date", "from": s.isoformat(), "to": end.isoformat()})
        out.append({"start": s, "end": end, "label": _bucket_label(s, unit), "count": n, "url": url})
    return out


def paper_votes(state: AppState, paper_id: str) -> dict[str, Any] | None:
    """A paper's local upvotes per week (or month) since the first, from the votes' timestamps."""
    with state.db.read() as conn:
        times = trend_queries.vote_times(conn, paper_id)
    days = [t.date() for t in times if t is not None]
    if not days:
        return None
    unit = choose_unit(days[0], days[-1])
    starts = bucket_starts(days[0], days[-1], unit)
    counts = count_days(days, unit, starts)
    return {
        "unit": unit,
        "total": len(days),
        "buckets": [
            {"start": s, "end": bucket_end(s, unit), "label": _bucket_label(s, unit), "count": n}
            for s, n in zip(starts, counts, strict=True)
        ],
    }


def register(app: FastAPI) -> None:
    """Template globals for the charts, and the API route (pages come in through ``router``)."""
    env = app.state.templates
    env.globals.update(
        chart_bars=charts.bars,
        chart_bar_marks=charts.bar_marks,
        chart_table_rows=charts.table_rows,
        chart_lines=charts.lines,
        chart_value=charts.fmt_value,
    )
    app.include_router(api_router)
