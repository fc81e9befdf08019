"""The HTML pages (and their JSON twins): daily/weekly/monthly feed, new, trending, search,
paper, author, about.

Each handler checks its input, then hands ``respond.page`` a cache key and a ``build`` function
that runs the SQL and returns the page's data dict; the same dict becomes HTML or JSON.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.routing import NoMatchFound

from paperfeed import periods, ranking
from paperfeed.cards import card, snippet
from paperfeed.search.analysis import terms
from paperfeed.store import feed_queries
from paperfeed.web import params, trends
from paperfeed.web.context import AppState, app_state, request_context
from paperfeed.web.markdown import feed_markdown, paper_markdown, search_markdown
from paperfeed.web.redirects import redirect
from paperfeed.web.respond import PageError, dumps, error_response, page, render_html, wants_json

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

PERIOD_PAGE_SIZE = 30  # weeks and months are paginated; one day is shown whole
DAY_LIMIT = 300
NEW_PAGE_SIZE = 50
TRENDING_PAGE_SIZE = 30
AUTHOR_PAGE_SIZE = 50
MAX_PAGE = 1_000


def _today() -> date:
    return datetime.now(UTC).date()


def _pages(total: int, size: int) -> int:
    return max(1, math.ceil(total / size))


# -- the daily feed ---------------------------------------------------------------------------


def _period_data(state: AppState, period: periods.Period, page_no: int, *, is_index: bool = False) -> dict[str, Any]:
    size = DAY_LIMIT if period.kind == "day" else PERIOD_PAGE_SIZE
    with state.db.read() as conn:
        rows, total = feed_queries.daily_cards(conn, period.start, period.end, limit=size, offset=(page_no - 1) * size)
        before, after = feed_queries.adjacent_feed_dates(conn, period.start, period.end)
    nav: dict[str, Any] = {"prev": None, "next": None}
    if period.kind == "day":
        # Days skip to the nearest day that has papers (weekends and gaps are empty).
        if before:
            nav["prev"] = {"label": before.isoformat(), "url": f"/papers/date/{before}"}
        if after:
            nav["next"] = {"label": after.isoformat(), "url": f"/papers/date/{after}"}
    else:
        prev_p, next_p = period.previous(), period.next()
        if before:
            nav["prev"] = {"label": prev_p.label, "url": f"/papers/{period.kind}/{prev_p.label}"}
        if after:
            nav["next"] = {"label": next_p.label, "url": f"/papers/{period.kind}/{next_p.label}"}
    week, month = periods.week_period(period.start), periods.month_period(period.start)
    return {
        "kind": period.kind,
        "period": period.label,
        "start": period.start,
        "end": period.end,
        "heading": period.title,
        "is_index": is_index,
        "nav": nav,
        "views": {
            "day": f"/papers/date/{period.start}",
            "week": f"/papers/week/{week.label}",
            "month": f"/papers/month/{month.label}",
        },
        "papers": [card(r) for r in rows],
        "total": total,
        "page": page_no,
        "pages": _pages(total, size),
        "page_size": size,
    }


@router.get("/")
async def index(request: Request) -> Response:
    state = app_state(request)

    def build() -> dict[str, Any]:
        with state.db.read() as conn:
            day = feed_queries.latest_feed_date(conn, _today())
        if day is None:
            return {"kind": "day", "empty_site": True, "papers": [], "total": 0, "nav": {"prev": None, "next": None}}
        return {**_period_data(state, periods.day_period(day), 1, is_index=True), "empty_site": False}

    # The key includes today's date so "today" moves on at midnight even with no new data.
    return await page(
        request, key=f"index|{_today()}", build=build, template="feed.html", active="daily", markdown=feed_markdown
    )


async def _period_page(request: Request, kind: str, text: str) -> Response:
    state = app_state(request)
    try:
        period = periods.parse_period(kind, text)
    except periods.PeriodError as exc:
        return error_response(request, 404, str(exc), title="No such date")
    try:
        page_no = params.bounded_int(request.query_params.get("p"), "p", 1, 1, MAX_PAGE)
    except params.ParamError as exc:
        return error_response(request, 400, exc.message)

    def build() -> dict[str, Any]:
        return {**_period_data(state, period, page_no), "empty_site": False}

    return await page(
        request,
        key=f"{kind}|{period.label}|{page_no}",
        build=build,
        template="feed.html",
        active="daily",
        markdown=feed_markdown,
    )


@router.get("/papers/date/{day}")
async def by_day(request: Request, day: str) -> Response:
    return await _period_page(request, "day", day)


@router.get("/papers/week/{week}")
async def by_week(request: Request, week: str) -> Response:
    return await _period_page(request, "week", week)


@router.get("/papers/month/{month}")
async def by_month(request: Request, month: str) -> Response:
    return await _period_page(request, "month", month)


# -- new on arXiv -----------------------------------------------------------------------------


@router.get("/papers/new")
async def new_on_arxiv(request: Request) -> Response:
    state = app_state(request)
    qp = request.query_params
    try:
        cat = params.category(qp.get("category") or qp.get("cat"))
        day = params.optional_day(qp.get("date"), "date")
        page_no = params.bounded_int(qp.get("p"), "p", 1, 1, MAX_PAGE)
    except params.ParamError as exc:
        return error_response(request, 400, exc.message, title="Invalid filter")

    def build() -> dict[str, Any]:
        with state.db.read() as conn:
            shown = day or feed_queries.latest_listed_date(conn, _today()) or feed_queries.latest_listed_date(conn)
            if shown is None:
                return {
                    "date": None,
                    "heading": "",
                    "category": cat,
                    "categories": params.COMMON_CATEGORIES,
                    "papers": [],
                    "total": 0,
                    "page": 1,
                    "pages": 1,
                    "nav": {},
                    "feed_url": None,
                    "page_base": "",
                }
            rows, total = feed_queries.new_papers(
                conn, shown, cat, limit=NEW_PAGE_SIZE, offset=(page_no - 1) * NEW_PAGE_SIZE
            )
            before, after = feed_queries.adjacent_listed_dates(conn, shown)
        nav = {
            "prev": {
                "label": before.isoformat(),
                "url": f"/papers/new?{urlencode(_drop_none(date=before, category=cat))}",
            }
            if before
            else None,
            "next": {
                "label": after.isoformat(),
                "url": f"/papers/new?{urlencode(_drop_none(date=after, category=cat))}",
            }
            if after
            else None,
        }
        return {
            "date": shown,
            "heading": shown.strftime("%A, %B %-d, %Y"),
            "category": cat,
            "categories": params.COMMON_CATEGORIES,
            "papers": [card(r) for r in rows],
            "total": total,
            "page": page_no,
            "pages": _pages(total, NEW_PAGE_SIZE),
            "nav": nav,
            "feed_url": f"/feeds/category/{cat}.atom" if cat else None,
            "page_base": "/papers/new?" + urlencode(_drop_none(date=shown, category=cat)),
            "weekly": trends.category_weeks(state, cat),
        }

    return await page(
        request, key=f"new|{day}|{cat}|{page_no}|{_today()}", build=build, template="new.html", active="new"
    )


def _drop_none(**kw: Any) -> dict[str, str]:
    return {k: str(v) for k, v in kw.items() if v is not None}


# -- trending ---------------------------------------------------------------------------------


def trending_data(state: AppState, page_no: int, size: int = TRENDING_PAGE_SIZE) -> dict[str, Any]:
    """Trending papers with their score breakdown (shared by the page, the API and the feeds)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    with state.db.read() as conn:
        ref = ranking.trending_reference_time(now, feed_queries.latest_entry_time(conn))
        since = (ref - timedelta(days=ranking.TRENDING_WINDOW_DAYS)).date()
        rows = feed_queries.entries_since(conn, since, ref.date())
    ranked = ranking.rank_trending([r for r in rows if r["submitted_at"] is not None and r["submitted_at"] <= ref], ref)
    chunk = ranked[(page_no - 1) * size : page_no * size]
    cards = [
        {**card(r), "trending": r["trending"].as_dict(), "trending_explain": r["trending"].explain()} for r in chunk
    ]
    return {
        "reference_time": ref,
        "window_days": ranking.TRENDING_WINDOW_DAYS,
        "formula": ranking.TRENDING_FORMULA,
        "papers": cards,
        "total": len(ranked),
        "page": page_no,
        "pages": _pages(len(ranked), size),
    }


@router.get("/papers/trending")
async def trending(request: Request) -> Response:
    state = app_state(request)
    try:
        page_no = params.bounded_int(request.query_params.get("p"), "p", 1, 1, MAX_PAGE)
    except params.ParamError as exc:
        return error_response(request, 400, exc.message)
    # Scores move with the clock: the key changes every 10 minutes so pages refresh.
    slot = int(datetime.now(UTC).timestamp() // 600)
    return await page(
        request,
        key=f"trending|{page_no}|{slot}",
        build=lambda: trending_data(state, page_no),
        template="trending.html",
        active="trending",
    )


# -- search -----------------------------------------------------------------------------------


def search_data(state: AppState, sp: params.SearchParams) -> dict[str, Any]:
    """Run one search and shape its hits as cards with highlight spans (page, API, feeds)."""
    from paperfeed.search.hybrid import SearchError

    base: dict[str, Any] = {
        "query": sp.q,
        "params": sp.query_args(),
        "filters": {
            "mode": sp.mode,
            "sort": sp.sort,
            "from": sp.date_from,
            "to": sp.date_to,
            "categories": sp.categories,
            "has_code": sp.has_code,
            "min_upvotes": sp.min_upvotes,
        },
        "categories": params.COMMON_CATEGORIES,
        "page": sp.page,
        "pages": 1,
        "total": 0,
        "hits": [],
        "warnings": list(sp.notes),
        "error": None,
        "mode_used": None,
        "took_ms": None,
    }
    if not sp.q:
        return base
    if stopword_error(sp.q):
        return {**base, "error": stopword_error(sp.q)}
    service = state.search()
    if service is None:
        return {**base, "error": state.search_unavailable or "search is unavailable"}
    try:
        results = service.search(sp.to_request())
    except SearchError as exc:
        return {**base, "error": str(exc)}
    hits = []
    with state.db.read() as conn:
        entries = feed_queries.daily_entries_for(conn, [h.paper["id"] for h in results.hits])
    for h in results.hits:
        row = {**h.paper, **entries.get(h.paper["id"], {})}
        c: dict[str, Any] = {**card(row)}
        snip = snippet(c["abstract"], h.abstract_spans)
        c.update(
            score=round(h.score, 6),
            why=h.why,
            title_spans=[list(s) for s in h.title_spans],
            abstract_spans=[list(s) for s in h.abstract_spans],
            snippet=snip["text"],
            snippet_spans=[list(s) for s in snip["spans"]],
        )
        hits.append(c)
    return {
        **base,
        "hits": hits,
        "total": results.total,
        "pages": min(_pages(results.total, sp.limit), params.MAX_SEARCH_PAGE),
        "warnings": base["warnings"] + list(results.warnings),
        "mode_used": results.mode,
        "took_ms": round(results.took_ms, 1),
    }


def stopword_error(q: str) -> str | None:
    """A message for queries such as "the of and": words, but none that the keyword analyzer keeps."""
    if not any(ch.isalnum() for ch in q) or any(ch in q for ch in ':"-'):
        return None  # operators (author:, "phrase", -term) are the search service's business
    if terms(q):
        return None
    return (
        f"“{q}” only has very common words, which search ignores. Add a more specific word (a method, task or dataset)."
    )


@router.get("/papers/search")
async def search(request: Request) -> Response:
    state = app_state(request)
    try:
        sp = params.search_params(dict(request.query_params))
    except params.ParamError as exc:
        # Keep the visitor's query in the box and say which filter to fix.
        data = search_data(state, params.SearchParams(q=" ".join(request.query_params.get("q", "").split())[:500]))
        data = {**data, "error": exc.message, "error_field": exc.field}
        if wants_json(request):
            return Response(dumps({"detail": exc.message, "field": exc.field}), 400, media_type="application/json")
        body = render_html(request, "search.html", {**data, **request_context(request, "search")})
        return Response(body, 400, media_type="text/html; charset=utf-8")
    return await page(
        request,
        key="search|" + sp.cache_key(),
        build=lambda: {**search_data(state, sp), "timeline": trends.search_timeline(state, sp)},
        template="search.html",
        active="search",
        markdown=search_markdown,
    )


# -- one paper --------------------------------------------------------------------------------


def _thread(comments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nest comments under their parents; replies to hidden/deleted comments stay top level."""
    by_id = {c["id"]: {**c, "replies": []} for c in comments}
    roots: list[dict[str, Any]] = []
    for c in by_id.values():
        parent = by_id.get(c["parent_id"]) if c["parent_id"] else None
        (parent["replies"] if parent else roots).append(c)
    return roots


def paper_data(state: AppState, paper_id: str) -> dict[str, Any] | None:
    with state.db.read() as conn:
        row = feed_queries.paper(conn, paper_id)
        if row is None:
            return None
        comments = feed_queries.paper_comments(conn, paper_id)
    c: dict[str, Any] = {**card(row)}
    c.update(
        version=row.get("version"),
        updated=row.get("updated"),
        primary_category=row.get("primary_category"),
        arxiv_comments=row.get("comments"),
        doi=row.get("doi"),
        journal_ref=row.get("journal_ref"),
        license=row.get("license"),
        arxiv_submitter=row.get("submitter"),
        abs_url=f"https://arxiv.org/abs/{paper_id}",
        pdf_url=f"https://arxiv.org/pdf/{paper_id}",
        featured=bool(row.get("featured")),  # False without a (visible) daily entry
    )
    similar, similar_note = [], None
    service = state.search()
    if service is None:
        similar_note = state.search_unavailable
    else:
        try:
            found = service.similar(paper_id, k=8)
        except Exception as exc:  # similar papers are an extra: never fail the paper page for them
            log.warning("similar papers failed for %s: %s", paper_id, exc)
            found, similar_note = [], "Similar papers are unavailable right now."
        similar = [{**card(s), "similarity": s.get("similarity")} for s in found]
    votes = trends.paper_votes(state, paper_id)
    return {"paper": c, "comments": _thread(comments), "similar": similar, "similar_note": similar_note, "votes": votes}


@router.get("/papers/{arxiv_id:path}")
async def paper(request: Request, arxiv_id: str) -> Response:
    state = app_state(request)
    parts = params.split_arxiv_id(arxiv_id)
    if parts is None:
        return error_response(
            request,
            404,
            f"{arxiv_id[:80]!r} is not an arXiv identifier (they look like 2405.15738).",
            title="No such paper",
        )
    canonical, version = parts
    if version:
        flags = request.scope.get("state", {})
        suffix = ".json" if flags.get("json_suffix") else ".md" if flags.get("md_suffix") else ""
        return redirect(f"/papers/{canonical}{suffix}", status=301)

    def build() -> dict[str, Any]:
        data = paper_data(state, canonical)
        if data is None:
            raise PageError(404, f"arXiv:{canonical} is not in this paperfeed yet.", extra={"arxiv_id": canonical})
        return data

    try:
        return await page(
            request, key=f"paper|{canonical}", build=build, template="paper.html", markdown=paper_markdown
        )
    except PageError as exc:
        extra = dict(exc.extra)
        try:  # offer submission once the community feature provides it
            extra["submit_url"] = str(request.app.url_path_for("submit_paper")) + "?" + urlencode({"id": canonical})
        except NoMatchFound:
            pass
        return error_response(request, exc.status, exc.message, title="Paper not found", **extra)


# -- authors ----------------------------------------------------------------------------------


@router.get("/authors/{name:path}")
async def author(request: Request, name: str) -> Response:
    state = app_state(request)
    name = " ".join(name.split())
    if not name or len(name) > 200:
        return error_response(request, 404, "Give an author's name, e.g. /authors/Yann LeCun.", title="No such author")
    try:
        page_no = params.bounded_int(request.query_params.get("p"), "p", 1, 1, MAX_PAGE)
    except params.ParamError as exc:
        return error_response(request, 400, exc.message)

    def build() -> dict[str, Any]:
        with state.db.read() as conn:
            rows, total, backlog = feed_queries.author_papers(
                conn, name, limit=AUTHOR_PAGE_SIZE, offset=(page_no - 1) * AUTHOR_PAGE_SIZE
            )
        state.refresh_lookups(backlog)
        return {
            "name": name,
            "papers": [card(r) for r in rows],
            "total": total,
            "page": page_no,
            "pages": _pages(total, AUTHOR_PAGE_SIZE),
            "search_url": "/papers/search?" + urlencode({"q": f'author:"{name}"'}),
            "activity": trends.author_activity(state, name) if page_no == 1 else None,
        }

    return await page(request, key=f"author|{name}|{page_no}", build=build, template="author.html")


# -- about ------------------------------------------------------------------------------------


@router.get("/about/ranking")
async def about_ranking(request: Request) -> Response:
    def build() -> dict[str, Any]:
        return {
            "formula": ranking.TRENDING_FORMULA,
            "gravity": ranking.GRAVITY,
            "age_offset_hours": ranking.AGE_OFFSET_HOURS,
            "window_days": ranking.TRENDING_WINDOW_DAYS,
            "examples": [
                {
                    "upvotes": u,
                    "stars": s,
                    "age_hours": a,
                    "score": ranking.trending_score(u, s, _ago(a), _ago(0)).score,
                }
                for u, s, a in [(10, 0, 6), (10, 0, 48), (50, 0, 48), (50, 1000, 48), (200, 0, 160)]
            ],
        }

    return await page(request, key="about-ranking", build=build, template="about_ranking.html", active="about")


def _ago(hours: float) -> datetime:
    return datetime(2025, 1, 10) - timedelta(hours=hours)


def author_url(name: str) -> str:
    return "/authors/" + quote(name, safe="")
