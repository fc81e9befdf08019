"""The HTML pages (and their JSON twins): daily/weekly/monthly feed, new, trending, search,
paper, author, about.

Each handler checks its input, then hands ``respond.page`` a cache key and a ``build`` function
that runs the SQL and returns the page's data dict; the same dict becomes HTML or JSON.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from paperfeed import periods, ranking
from paperfeed.cards import card
from paperfeed.store import claim_store, feed_queries
from paperfeed.store.lookups import normalise_name
from paperfeed.web import params, trends
from paperfeed.web.context import app_state, request_context
from paperfeed.web.markdown import feed_markdown, paper_markdown, search_markdown
from paperfeed.web.page_data import page_count, paper_data, period_data, search_data, today, trending_data
from paperfeed.web.redirects import redirect
from paperfeed.web.respond import PageError, dumps, error_response, page, render_html, wants_json

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

NEW_PAGE_SIZE = 50
AUTHOR_PAGE_SIZE = 50
MAX_PAGE = 1_000


# -- the daily feed ---------------------------------------------------------------------------


@router.get("/")
async def index(request: Request) -> Response:
    state = app_state(request)

    def build() -> dict[str, Any]:
        with state.db.read() as conn:
            day = feed_queries.latest_feed_date(conn, today())
        if day is None:
            return {"kind": "day", "empty_site": True, "papers": [], "total": 0, "nav": {"prev": None, "next": None}}
        return {**period_data(state, periods.day_period(day), 1, is_index=True), "empty_site": False}

    # The key includes today's date so "today" moves on at midnight even with no new data.
    return await page(
        request, key=f"index|{today()}", build=build, template="feed.html", active="daily", markdown=feed_markdown
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
        return {**period_data(state, period, page_no), "empty_site": False}

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
            shown = day or feed_queries.latest_listed_date(conn, today()) or feed_queries.latest_listed_date(conn)
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
            "pages": page_count(total, NEW_PAGE_SIZE),
            "nav": nav,
            "feed_url": f"/feeds/category/{cat}.atom" if cat else None,
            "page_base": "/papers/new?" + urlencode(_drop_none(date=shown, category=cat)),
            "weekly": trends.category_weeks(state, cat),
        }

    return await page(
        request, key=f"new|{day}|{cat}|{page_no}|{today()}", build=build, template="new.html", active="new"
    )


def _drop_none(**kw: Any) -> dict[str, str]:
    return {k: str(v) for k, v in kw.items() if v is not None}


# -- trending ---------------------------------------------------------------------------------


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
        extra["submit_url"] = str(request.app.url_path_for("submit_paper")) + "?" + urlencode({"id": canonical})
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
            claimed_by = claim_store.claimants_of(conn, normalise_name(name))
        state.refresh_lookups(backlog)
        return {
            "name": name,
            "claimed_by": claimed_by,
            "papers": [card(r) for r in rows],
            "total": total,
            "page": page_no,
            "pages": page_count(total, AUTHOR_PAGE_SIZE),
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
