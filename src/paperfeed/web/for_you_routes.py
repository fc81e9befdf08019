"""The /for-you page (and its JSON twin), its controls, and the personal JSON API.

``/for-you`` ranks the recent papers for the signed-in user (``paperfeed.personal.for_you``) and
shows why on every card; its controls change the user's settings (``personal.settings``): reset
what was learned, learn from upvotes on/off, popularity and recency weights, words and categories
to exclude (optionally from the daily feed and the digest too), and the personal digest sections.
A user the ranker knows nothing about gets the cold start: pick categories, follow authors,
import a library, or save a few papers found by a search right there.

``/api/v1/me/for-you`` and ``/api/v1/me/following`` answer the same data to a personal API token
with the ``read`` scope (or the session). Everything here is per user: ``private, no-store``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from paperfeed.community.core import User, require_active
from paperfeed.community.errors import CommunityError, NotSignedIn
from paperfeed.personal import following
from paperfeed.personal import settings as personal_settings
from paperfeed.personal.for_you import for_you_view
from paperfeed.web import params
from paperfeed.web.context import app_state, community
from paperfeed.web.page_data import search_data
from paperfeed.web.redirects import redirect, signin_redirect
from paperfeed.web.respond import JSONResponse, render_page, wants_json
from paperfeed.web.security import signed_in_user, viewer

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/v1/me", tags=["personal"])
NO_STORE = {"Cache-Control": "private, no-store"}
COLD_START_CATEGORIES = ["cs.AI", "cs.CL", "cs.CV", "cs.LG", "cs.IR", "cs.RO", "cs.NE", "cs.CR", "stat.ML", "eess.AS"]


def _cold_search(request: Request, q: str) -> dict[str, Any] | None:
    """Cold start: a search right on the page, to save a few papers from."""
    if not q.strip():
        return None
    try:
        sp = params.search_params({"q": q}, page_size=10, max_page=1)
    except params.ParamError as exc:
        return {"error": exc.message, "hits": [], "query": q}
    return search_data(app_state(request), sp)


@router.get("/for-you")
async def for_you_page(request: Request, q: str = Query("", max_length=500),
                       limit: int = Query(50, ge=1, le=200)) -> Response:  # fmt: skip
    user = signed_in_user(request)
    if user is None:
        if wants_json(request):
            raise NotSignedIn("Sign in to see papers ranked for you.")
        return signin_redirect(request)
    c = community(request)
    data = await run_in_threadpool(for_you_view, c, user, limit=limit)
    if wants_json(request):
        return JSONResponse(data, headers=NO_STORE)
    found = await run_in_threadpool(_cold_search, request, q) if q else None
    ctx = {**data, "active": "for-you", "cold_q": q, "cold_found": found, "categories": COLD_START_CATEGORIES,
           "notice": _notice(request)}  # fmt: skip
    return render_page(request, "personal/for_you.html", ctx)


def _notice(request: Request) -> str | None:
    done = request.query_params.get("done")
    return {"saved": "Settings saved; the ranking below uses them.",
            "reset": "Forgot what was learned from your upvotes and “not interested” clicks; the dials are back to "
                     "their defaults."}.get(done or "")  # fmt: skip


@router.post("/for-you/settings")
def save_settings(
    request: Request,
    popularity: float = Form(personal_settings.DEFAULT_POPULARITY, ge=0, le=personal_settings.MAX_WEIGHT),
    recency: float = Form(personal_settings.DEFAULT_RECENCY, ge=0, le=personal_settings.MAX_WEIGHT),
    learn_from_upvotes: str = Form("", max_length=5),
    exclude_words: str = Form("", max_length=3000),
    exclude_categories: str = Form("", max_length=1000),
    filter_daily: str = Form("", max_length=5),
    filter_digest: str = Form("", max_length=5),
    digest_for_you: str = Form("", max_length=5),
    digest_threshold: float = Form(personal_settings.DEFAULT_THRESHOLD, ge=0, le=1),
    digest_following: str = Form("", max_length=5),
) -> Response:
    user = viewer(request).user
    if user is None:
        return signin_redirect(request, "/for-you")
    try:
        personal_settings.update(
            community(request), user, popularity=popularity, recency=recency,
            learn_from_upvotes=bool(learn_from_upvotes), exclude_words=exclude_words,
            exclude_categories=exclude_categories, filter_daily=bool(filter_daily), filter_digest=bool(filter_digest),
            digest_for_you=bool(digest_for_you), digest_threshold=digest_threshold,
            digest_following=bool(digest_following),
        )  # fmt: skip
    except CommunityError as exc:
        if wants_json(request):
            raise
        return render_page(request, "error.html", {"status": exc.status, "title": "Settings not saved",
                                                   "message": exc.message}, status=exc.status)  # fmt: skip
    if wants_json(request):
        return JSONResponse(personal_settings.settings_of(community(request), user.id).as_json(), headers=NO_STORE)
    return redirect("/for-you?done=saved#controls")


@router.post("/for-you/reset")
def reset_learning(request: Request) -> Response:
    user = viewer(request).user
    if user is None:
        return signin_redirect(request, "/for-you")
    personal_settings.reset(community(request), user)
    return redirect("/for-you?done=reset#controls")


# -- the personal API (token scope: read) ------------------------------------------------------


def _api_user(request: Request) -> User:
    user = viewer(request).user
    if user is None:
        raise NotSignedIn("Sign in, or send a personal API token with the read scope.")
    return require_active(user)


_API_READ_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid token or session"},
    403: {"description": "Banned account, or a token without the read scope"},
}


@api_router.get("/for-you", response_model=None, responses=_API_READ_ERRORS)
async def api_for_you(request: Request, limit: int = Query(50, ge=1, le=200)) -> Response:
    """The signed-in user's (or the token owner's) for-you ranking: papers with ``why`` (reasons),
    ``relevance`` (0..1) and ``score``, plus the settings and signal counts behind it."""
    data = await run_in_threadpool(for_you_view, community(request), _api_user(request), limit=limit)
    return JSONResponse(data, headers=NO_STORE)


@api_router.get("/following", response_model=None, responses=_API_READ_ERRORS)
async def api_following(request: Request) -> Response:
    """New papers (last 7 listing days) from the authors, categories and searches the user follows,
    each with ``why``."""
    user = _api_user(request)
    search = following.service_search(app_state(request).search())
    data = await run_in_threadpool(following.following_view, community(request), user, search)
    return JSONResponse(data, headers=NO_STORE)
