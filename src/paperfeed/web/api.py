"""The JSON API: Hugging Face-compatible endpoints plus paperfeed's own ``/api/v1``.

``/api/daily_papers``, ``/api/papers/{id}``, ``/api/papers/search`` and ``/api/papers`` return the
shapes of the Hugging Face papers API (so its clients work with a base-URL change); ``/api/v1/*``
adds every search filter and mode, the "why" of each hit, similar papers, trending with its
score breakdown, and stats. Answers are cached per data version and carry ETag/Last-Modified.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from paperfeed import periods
from paperfeed.cards import Card
from paperfeed.store import feed_queries
from paperfeed.web import params, render
from paperfeed.web.context import AppState, app_state
from paperfeed.web.hf_shape import hf_entry, hf_paper
from paperfeed.web.page_data import (
    daily_papers_data,
    paper_data,
    paper_detail_data,
    search_data,
    similar_data,
    trending_data,
    v1_search_data,
    v1_search_params,
)
from paperfeed.web.respond import JSONResponse, cached_json

router = APIRouter(prefix="/api")

# -- documented shapes (used for OpenAPI only: responses are built as dicts and not re-validated) --


class Error(BaseModel):
    detail: str


class HFAuthor(BaseModel):
    model_config = ConfigDict(extra="allow")
    id_: str | None = Field(None, alias="_id", description="the Hub's author id (imported papers)")
    name: str
    hidden: bool = Field(False, description="true: the Hub hides this author (never shown on pages)")
    user: dict[str, Any] | None = Field(None, description="the claiming user, when claimed")
    status: str | None = None


class HFUser(BaseModel):
    model_config = ConfigDict(extra="allow")
    id_: str | None = Field(None, alias="_id")
    name: str = Field(description="the username")
    fullname: str = Field(description="the display name")
    type: str = "user"
    avatarUrl: str | None = None


class HFPaper(BaseModel):
    """Keys the Hub omits for a paper are omitted here too (never ``null``); imported papers carry
    every key the Hub sent (``discussionId``, ``organization``, ``mediaUrls``, ...)."""

    model_config = ConfigDict(extra="allow")
    id: str = Field(description="arXiv id without version")
    authors: list[HFAuthor]
    publishedAt: str | None = Field(description="ISO 8601, milliseconds, UTC")
    title: str
    summary: str
    upvotes: int = Field(description="imported upvotes + local upvotes")
    githubRepo: str | None = None
    githubStars: int | None = None
    projectPage: str | None = None
    ai_summary: str | None = None
    ai_keywords: list[str] | None = None
    submittedOnDailyAt: str | None = None
    submittedOnDailyBy: HFUser | None = None


class HFDailyEntry(BaseModel):
    model_config = ConfigDict(extra="allow")
    paper: HFPaper
    publishedAt: str | None = Field(description="the entry's time (the Hub's tie order on equal upvotes)")
    title: str
    summary: str
    numComments: int = Field(description="the Hub's count + local comments")
    submittedBy: HFUser | None = None
    thumbnail: str | None = None


class HFSearchEntry(HFDailyEntry):
    highlightedTitle: str = Field(description="escaped HTML, matched terms in <mark>")
    highlightedSummary: str = Field(description="escaped HTML, matched terms in <mark>")


class SearchHitOut(BaseModel):
    paper: Card
    score: float
    why: list[str]
    highlights: dict[str, str]
    title_spans: list[list[int]]
    abstract_spans: list[list[int]]


class WeightingOut(BaseModel):
    semantic: float
    keyword: float
    method: str
    explanation: str


class SearchOut(BaseModel):
    query: str
    mode: str | None
    total: int
    took_ms: float | None
    warnings: list[str]
    limit: int
    offset: int
    hits: list[SearchHitOut]
    weighting: WeightingOut | None = None  # hybrid: how the query was read and the two retrievers weighted


class TrendingCard(Card):  # a TypedDict, like Card
    trending: dict[str, Any]
    trending_explain: str


class TrendingOut(BaseModel):
    reference_time: datetime
    window_days: int
    formula: str
    total: int
    page: int
    pages: int
    papers: list[TrendingCard]


class SimilarCard(Card):  # a TypedDict, like Card
    similarity: float | None


class SimilarOut(BaseModel):
    paper_id: str
    similar: list[SimilarCard]


# Shapes only: calendar validity (2025-02-30, 2025-W53) is checked in code, with a 422 that says why.
DAY_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
WEEK_PATTERN = r"^[0-9]{4}-W[0-9]{2}$"
MONTH_PATTERN = r"^[0-9]{4}-[0-9]{2}$"
_ERR: dict[int | str, dict[str, Any]] = {404: {"model": Error, "description": "Not found"}}
_BAD: dict[int | str, dict[str, Any]] = {
    400: {"model": Error, "description": "The search cannot run (e.g. nothing to search for)"}
}


# -- shaping ----------------------------------------------------------------------------------


def _invalid(field_name: str, message: str, value: Any = None) -> RequestValidationError:
    """A 422 in FastAPI's own error shape, so clients see one format for every bad parameter."""
    return RequestValidationError(
        [{"loc": ("query", field_name), "msg": message, "type": "value_error", "input": value}]
    )


def _next_link(state: AppState, path: str, args: dict[str, Any]) -> dict[str, str]:
    query = urlencode({k: v for k, v in args.items() if v is not None})
    return {"Link": f'<{state.settings.base_url}{path}?{query}>; rel="next"'}


# -- Hugging Face-compatible ------------------------------------------------------------------


@router.get("/daily_papers", response_model=None, responses={200: {"model": list[HFDailyEntry]}})
async def daily_papers(
    request: Request,
    date_: str | None = Query(
        None, alias="date", pattern=DAY_PATTERN, description="YYYY-MM-DD (default: the latest day with papers)"
    ),
    week: str | None = Query(None, pattern=WEEK_PATTERN, description="ISO week, YYYY-Www"),
    month: str | None = Query(None, pattern=MONTH_PATTERN, description="YYYY-MM"),
    submitter: str | None = Query(None, max_length=100, description="only entries submitted by this username"),
    sort: str = Query("upvotes", pattern="^(upvotes|publishedAt|trending)$"),
    p: int = Query(0, ge=0, le=10_000, description="page number, from 0"),
    limit: int = Query(50, ge=1, le=100),
) -> Response:
    """The daily papers of one day, ISO week or month (Hugging Face ``/api/daily_papers`` shape)."""
    state = app_state(request)
    given = [(n, v) for n, v in (("date", date_), ("week", week), ("month", month)) if v]
    if len(given) > 1:
        raise _invalid(given[1][0], "give only one of date, week and month")
    period: periods.Period | None = None
    if given:
        kind = {"date": "day", "week": "week", "month": "month"}[given[0][0]]
        try:
            period = periods.parse_period(kind, given[0][1])
        except periods.PeriodError as exc:
            raise _invalid(given[0][0], str(exc), given[0][1]) from None

    def build() -> tuple[Any, dict[str, str]]:
        entries, total = daily_papers_data(state, period, submitter=submitter, sort=sort, p=p, limit=limit)
        headers = {}
        if (p + 1) * limit < total:
            args = {"date": date_, "week": week, "month": month, "submitter": submitter}
            headers = _next_link(state, "/api/daily_papers", {**args, "sort": sort, "p": p + 1, "limit": limit})
        return entries, headers

    key = f"daily|{date_}|{week}|{month}|{submitter}|{sort}|{p}|{limit}|{datetime.now(UTC).date()}"
    return await cached_json(request, key=key, build=build)


@router.get("/papers/search", response_model=None, responses={200: {"model": list[HFSearchEntry]}, **_BAD})
async def hf_search(
    request: Request,
    q: str = Query(..., min_length=1, max_length=500, description="the search query"),
    limit: int = Query(20, ge=1, le=120),
) -> Response:
    """Hybrid search in the Hugging Face ``/api/papers/search`` shape, with highlighted fields."""
    state = app_state(request)
    sp = params.SearchParams(q=" ".join(q.split()), limit=limit)
    if not sp.q:
        return JSONResponse({"detail": "Type a few words to search for."}, status_code=400)

    def build() -> tuple[Any, dict[str, str]]:
        data = search_data(state, sp)
        if data["error"]:
            return {"detail": data["error"]}, {"x-status": "400"}
        rows = _rows_for(state, [h["id"] for h in data["hits"]])
        out = []
        for h in data["hits"]:
            if h["id"] not in rows:
                continue  # deleted since it was indexed
            e = hf_entry(rows[h["id"]])
            e["highlightedTitle"] = str(render.highlight(h["title"], h["title_spans"]))
            e["highlightedSummary"] = str(render.highlight(h["abstract"], h["abstract_spans"]))
            out.append(e)
        return out, {}

    return _status_from_header(await cached_json(request, key=f"hfsearch|{sp.cache_key()}", build=build))


def _rows_for(state: AppState, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Papers rows by id, with their visible daily entry's fields (what ``hf_shape`` needs)."""
    with state.db.read() as conn:
        papers = feed_queries.papers_by_ids(conn, ids)
        entries = feed_queries.daily_entries_for(conn, ids)
    return {pid: {**row, **entries.get(pid, {})} for pid, row in papers.items()}


def _status_from_header(response: Response) -> Response:
    """Cached answers that are errors carry their status in an internal header (stripped here)."""
    status = response.headers.get("x-status")
    if status:
        del response.headers["x-status"]
        if response.status_code == 200:
            response.status_code = int(status)
        for h in ("etag", "last-modified"):
            if h in response.headers:
                del response.headers[h]
    return response


@router.get("/papers", response_model=None, responses={200: {"model": list[HFPaper]}})
async def papers_list(
    request: Request,
    cursor: str | None = Query(None, max_length=200, description="from the previous page's Link header"),
    limit: int = Query(50, ge=1, le=100),
) -> Response:
    """All papers, newest arXiv id first, with keyset pagination (``Link: rel="next"``)."""
    state = app_state(request)
    try:
        before = params.decode_cursor(cursor)
    except params.ParamError as exc:
        raise _invalid("cursor", exc.message, cursor) from None

    def build() -> tuple[Any, dict[str, str]]:
        with state.db.read() as conn:
            rows = feed_queries.papers_page(conn, before, limit + 1)
        more, rows = len(rows) > limit, rows[:limit]
        headers = {}
        if more:
            headers = _next_link(state, "/api/papers", {"cursor": params.encode_cursor(rows[-1]["id"]), "limit": limit})
        with state.db.read() as conn:
            entries = feed_queries.daily_entries_for(conn, [r["id"] for r in rows])
        return [hf_paper({**r, **entries.get(r["id"], {})}) for r in rows], headers

    return await cached_json(request, key=f"papers|{before}|{limit}", build=build)


def _paper_id(paper_id: str) -> str | None:
    parts = params.split_arxiv_id(paper_id)
    return parts[0] if parts else None


def _not_an_id(paper_id: str) -> JSONResponse:
    return JSONResponse({"detail": f"{paper_id[:64]!r} is not an arXiv id"}, status_code=404)


@router.get("/papers/{paper_id}", response_model=None, responses={200: {"model": HFPaper}, **_ERR})
async def hf_paper_detail(request: Request, paper_id: str = Path(..., max_length=64)) -> Response:
    """One paper in the Hugging Face ``/api/papers/{id}`` shape (a version suffix is ignored)."""
    state = app_state(request)
    pid = _paper_id(paper_id)
    if pid is None:
        return _not_an_id(paper_id)

    def build() -> tuple[Any, dict[str, str]]:
        data = paper_detail_data(state, pid)
        if data is None:
            return {"detail": f"arXiv:{pid} is not in this paperfeed"}, {"x-status": "404"}
        return data, {}

    return _status_from_header(await cached_json(request, key=f"paper|{pid}", build=build))


# -- paperfeed's own --------------------------------------------------------------------------


@router.get("/v1/search", response_model=None, responses={200: {"model": SearchOut}, **_BAD})
async def v1_search(
    request: Request,
    q: str = Query(..., min_length=1, max_length=500),
    mode: str = Query("hybrid", pattern="^(hybrid|keyword|semantic)$"),
    sort: str = Query("relevance", pattern="^(relevance|date|upvotes)$"),
    date_from: str | None = Query(None, alias="from", pattern=DAY_PATTERN, description="published on or after"),
    date_to: str | None = Query(None, alias="to", pattern=DAY_PATTERN, description="published on or before"),
    category: str | None = Query(None, max_length=200, description="comma-separated arXiv categories"),
    has_code: bool = Query(False),
    min_upvotes: int = Query(0, ge=0, le=1_000_000),
    limit: int = Query(20, ge=1, le=100),
    offset: int = Query(0, ge=0, le=1_000),
) -> Response:
    """Search with every filter and mode; each hit says why it matched (retriever, rank, score)."""
    state = app_state(request)
    try:
        sp = v1_search_params(q, mode, sort, date_from, date_to, category, has_code, min_upvotes, limit)
    except params.ParamError as exc:
        raise _invalid(exc.field, exc.message) from None
    if not sp.q:
        return JSONResponse({"detail": "Type a few words to search for."}, status_code=400)

    def build() -> tuple[Any, dict[str, str]]:
        out, error = v1_search_data(state, sp, limit, offset)
        if out is None:
            return {"detail": error}, {"x-status": "400"}
        return out, {}

    key = f"v1search|{sp.cache_key()}|{offset}"
    return _status_from_header(await cached_json(request, key=key, build=build))


@router.get("/v1/papers/{paper_id}", response_model=None, responses=_ERR)
async def v1_paper(request: Request, paper_id: str = Path(..., max_length=64)) -> Response:
    """A paper with all its fields, its visible comments (threaded) and similar papers."""
    state = app_state(request)
    pid = _paper_id(paper_id)
    if pid is None:
        return _not_an_id(paper_id)

    def build() -> tuple[Any, dict[str, str]]:
        data = paper_data(state, pid)
        if data is None:
            return {"detail": f"arXiv:{pid} is not in this paperfeed"}, {"x-status": "404"}
        return data, {}

    return _status_from_header(await cached_json(request, key=f"v1paper|{pid}", build=build))


@router.get("/v1/papers/{paper_id}/similar", response_model=None, responses={200: {"model": SimilarOut}, **_ERR})
async def v1_similar(
    request: Request, paper_id: str = Path(..., max_length=64), k: int = Query(8, ge=1, le=50)
) -> Response:
    """The k papers most similar to this one (embedding neighbours; keyword fallback without vectors)."""
    state = app_state(request)
    pid = _paper_id(paper_id)
    if pid is None:
        return _not_an_id(paper_id)

    def build() -> tuple[Any, dict[str, str]]:
        data = similar_data(state, pid, k)
        if data is None:
            return {"detail": f"arXiv:{pid} is not in this paperfeed"}, {"x-status": "404"}
        return data, {}

    return _status_from_header(await cached_json(request, key=f"similar|{pid}|{k}", build=build))


@router.get("/v1/trending", response_model=None, responses={200: {"model": TrendingOut}})
async def v1_trending(
    request: Request, p: int = Query(1, ge=1, le=1_000), limit: int = Query(30, ge=1, le=100)
) -> Response:
    """Trending papers with each score's inputs (upvotes, stars, age) and the formula."""
    state = app_state(request)
    slot = int(datetime.now(UTC).timestamp() // 600)
    return await cached_json(
        request, key=f"trending|{p}|{limit}|{slot}", build=lambda: (trending_data(state, p, limit), {})
    )


@router.get("/v1/stats", response_model=None)
async def v1_stats(request: Request) -> Response:
    """Counts: papers, papers with code, daily entries, votes, comments, date ranges."""
    state = app_state(request)

    def build() -> tuple[Any, dict[str, str]]:
        with state.db.read() as conn:
            return feed_queries.site_stats(conn), {}

    return await cached_json(request, key="stats", build=build)
