"""The data behind the views that several outputs share: the HTML pages with their JSON and
Markdown twins (``web/pages.py``), the HF-compatible API (``web/api.py``), the RSS/Atom feeds
(``web/feeds.py``) and the MCP server (``web/mcp_server.py``) build their data here, so route
modules import it from this module instead of from each other.

Each builder runs the SQL (and the search) for one view and returns plain dicts of cards
(``paperfeed.cards``); the callers cache, render and serialise them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from paperfeed import periods, ranking
from paperfeed.cards import card, snippet
from paperfeed.search.analysis import terms
from paperfeed.search.hybrid import SearchError
from paperfeed.store import feed_queries
from paperfeed.web import params, render, trends
from paperfeed.web.context import AppState
from paperfeed.web.hf_shape import hf_entry, hf_paper

log = logging.getLogger(__name__)

PERIOD_PAGE_SIZE = 30  # weeks and months are paginated; one day is shown whole
DAY_LIMIT = 300
TRENDING_PAGE_SIZE = 30


def today() -> date:
    return datetime.now(UTC).date()


def page_count(total: int, size: int) -> int:
    return max(1, math.ceil(total / size))


# -- the daily feed ---------------------------------------------------------------------------


def period_data(state: AppState, period: periods.Period, page_no: int, *, is_index: bool = False) -> dict[str, Any]:
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
        "pages": page_count(total, size),
        "page_size": size,
    }


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
        "pages": page_count(len(ranked), size),
    }


# -- search -----------------------------------------------------------------------------------


def search_data(state: AppState, sp: params.SearchParams) -> dict[str, Any]:
    """Run one search and shape its hits as cards with highlight spans (page, API, feeds)."""
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
        "weighting": None,
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
        "pages": min(page_count(results.total, sp.limit), params.MAX_SEARCH_PAGE),
        "warnings": base["warnings"] + list(results.warnings),
        "mode_used": results.mode,
        "took_ms": round(results.took_ms, 1),
        "weighting": results.fusion.explain() if results.fusion else None,
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


# -- builders (the JSON API and the MCP server answer with the same data) ----------------------


def daily_papers_data(
    state: AppState, period: periods.Period | None, *, submitter: str | None, sort: str, p: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """One page of ``/api/daily_papers`` (Hub-shaped entries) and the total; no period: the latest day."""
    with state.db.read() as conn:
        per = period
        if per is None:
            latest = feed_queries.latest_feed_date(conn, datetime.now(UTC).date())
            if latest is None:
                return [], 0
            per = periods.day_period(latest)
        rows: Sequence[Mapping[str, Any]]
        if sort == "trending":
            entries = feed_queries.entries_since(conn, per.start, per.end, limit=5_000)
            if submitter:
                entries = [r for r in entries if r.get("entry_submitter") == submitter]
            now = datetime.now(UTC).replace(tzinfo=None)
            times = [t for r in entries if (t := r.get("submitted_at")) is not None]
            ref = ranking.trending_reference_time(now, max(times, default=None))
            ranked = ranking.rank_trending(entries, ref)
            total, rows = len(ranked), ranked[p * limit : (p + 1) * limit]
        else:
            order = "published" if sort == "publishedAt" else "upvotes"
            rows, total = feed_queries.daily_cards(
                conn, per.start, per.end, sort=order, submitter=submitter, limit=limit, offset=p * limit
            )
    return [hf_entry(r) for r in rows], total


def paper_detail_data(state: AppState, pid: str) -> dict[str, Any] | None:
    """``/api/papers/{id}``: the Hub-shaped paper (with ``numComments``), or None when unknown."""
    with state.db.read() as conn:
        row = feed_queries.paper(conn, pid)
    return None if row is None else hf_paper(row, with_comments=True)


def similar_data(state: AppState, pid: str, k: int) -> dict[str, Any] | None:
    """``/api/v1/papers/{id}/similar``, or None when the paper is unknown."""
    with state.db.read() as conn:
        exists = feed_queries.paper(conn, pid) is not None
    if not exists:
        return None
    service = state.search()
    found = service.similar(pid, k=k) if service is not None else []
    return {"paper_id": pid, "similar": [{**card(s), "similarity": s.get("similarity")} for s in found]}


def v1_search_params(
    q: str, mode: str, sort: str, date_from: str | None, date_to: str | None, category: str | None,
    has_code: bool, min_upvotes: int, limit: int,
) -> params.SearchParams:  # fmt: skip
    """``/api/v1/search`` parameters as SearchParams; raises ``params.ParamError`` naming the bad one."""
    args = {"q": q, "mode": mode, "sort": sort, "from": date_from, "to": date_to, "category": category}
    args.update(has_code="1" if has_code else "", min_upvotes=str(min_upvotes))
    sp = params.search_params({k: v for k, v in args.items() if v is not None}, page_size=limit)
    sp.page = 1
    return sp


def v1_search_data(
    state: AppState, sp: params.SearchParams, limit: int, offset: int
) -> tuple[dict[str, Any] | None, str | None]:
    """``/api/v1/search``: (the answer, None) or (None, why the search cannot run)."""
    if not sp.q:
        return None, "Type a few words to search for."
    if stopword_error(sp.q):
        return None, stopword_error(sp.q)
    service = state.search()
    if service is None:
        return None, state.search_unavailable or "search is unavailable"
    req = sp.to_request()
    req.limit, req.offset = limit, offset
    try:
        results = service.search(req)
    except SearchError as exc:
        return None, str(exc)
    with state.db.read() as conn:
        entries = feed_queries.daily_entries_for(conn, [h.paper["id"] for h in results.hits])
    hits = []
    for h in results.hits:
        c = card({**h.paper, **entries.get(h.paper["id"], {})})
        hits.append(
            {
                "paper": c,
                "score": h.score,
                "why": h.why,
                "highlights": {
                    "title": str(render.highlight(c["title"], h.title_spans)),
                    "abstract": str(render.highlight(c["abstract"], h.abstract_spans)),
                },
                "title_spans": [list(s) for s in h.title_spans],
                "abstract_spans": [list(s) for s in h.abstract_spans],
            }
        )
    out = {
        "query": sp.q,
        "mode": results.mode,
        "total": results.total,
        "took_ms": round(results.took_ms, 2),
        "warnings": list(sp.notes) + list(results.warnings),
        "limit": limit,
        "offset": offset,
        "hits": hits,
        "weighting": _weighting(results.fusion),
    }
    return out, None


def _weighting(decision: Any) -> dict[str, Any] | None:
    """How a hybrid search read the query and weighted its two retrievers (None for other modes)."""
    if decision is None:
        return None
    w = round(float(decision.semantic_weight), 4)
    return {"semantic": w, "keyword": round(1 - w, 4), "method": decision.method, "explanation": decision.explain()}
