"""Personal pages and actions (issue 14): follows (/following, the follow buttons), authorship
claims (the claim form on paper pages, the moderators' queue, withdrawing), and the private feed
token (/account: create, rotate, revoke).

Included by the app factory after ``community_routes.install`` (sessions, CSRF, community errors).
Every write is a form POST that works without JavaScript (303 back to the page it came from);
``follow.js`` sends the same POST with ``Accept: application/json`` and flips the button in place.
Personal pages are rendered per visitor (``private, no-store``); their JSON twins likewise.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Form, Path, Request
from starlette.responses import Response

from paperfeed.community.core import require_role
from paperfeed.community.errors import CommunityError, NotSignedIn
from paperfeed.personal import claims, feed_tokens, following, follows
from paperfeed.personal.settings import settings_of
from paperfeed.web.context import app_state, community
from paperfeed.web.redirects import redirect, referer_path, safe_next, signin_redirect
from paperfeed.web.respond import JSONResponse, render_page, wants_json
from paperfeed.web.security import current_viewer, signed_in_user, viewer

router = APIRouter(include_in_schema=False)
MAX_ID = 2**31 - 1
NO_STORE = {"Cache-Control": "private, no-store"}


def personal_json(data: dict[str, Any]) -> Response:
    return JSONResponse(data, headers=NO_STORE)


# -- template helpers -------------------------------------------------------------------------


def _following(kind: str, value: str, mode: str | None = None) -> bool:
    """For templates: whether the visitor follows this (False for anonymous visitors)."""
    view = current_viewer()
    if view is None or view.user is None:
        return False
    return follows.is_following(view.community, view.user, kind, value, mode)


def _my_feed_token() -> feed_tokens.TokenInfo | None:
    view = current_viewer()
    return feed_tokens.current(view.community, view.user) if view is not None and view.user else None


def _my_claims() -> list[dict[str, Any]]:
    view = current_viewer()
    return claims.user_claims(view.community, view.user.id) if view is not None and view.user else []


def _claims_queue() -> list[dict[str, Any]]:
    view = current_viewer()
    if view is None or view.user is None or not view.user.is_moderator:
        return []
    return claims.queue(view.community, view.user)


def _daily_excluded(p: dict[str, Any]) -> bool:
    """For the daily feed: whether the signed-in reader excluded this paper there (their words and
    categories, with "also hide them from my daily feed" on). Settings load once per request."""
    view = current_viewer()
    if view is None or view.user is None:
        return False
    prefs = getattr(view, "pf_personal_settings", None)
    if prefs is None:
        prefs = settings_of(view.community, view.user.id)
        setattr(view, "pf_personal_settings", prefs)  # noqa: B010 - a per-request memo on the viewer
    if not prefs.filter_daily:
        return False
    return prefs.excludes(p.get("title") or "", p.get("abstract") or "", p.get("categories") or [])


def register(app: FastAPI) -> None:
    env = app.state.templates
    env.globals["following"] = _following
    env.globals["daily_excluded"] = _daily_excluded
    env.globals["my_feed_token"] = _my_feed_token
    env.globals["my_claims"] = _my_claims
    env.globals["claims_queue"] = _claims_queue
    env.globals["confirmed_papers"] = lambda user_id: claims.user_claims(app.state.community, user_id, "confirmed")


# -- follows ----------------------------------------------------------------------------------


@router.get("/following")
def following_page(request: Request) -> Response:
    user = signed_in_user(request)
    if user is None:
        if wants_json(request):
            raise NotSignedIn("Sign in to see the papers of what you follow.")
        return signin_redirect(request)
    state = app_state(request)
    data = following.following_view(community(request), user, following.service_search(state.search()))
    if wants_json(request):
        return personal_json(data)
    return render_page(request, "personal/following.html", {**data, "active": "following"})


def _follow_answer(request: Request, f: follows.Follow, on: bool, next_url: str) -> Response:
    if wants_json(request):
        return personal_json({"following": on, **f.as_json()})
    return redirect(safe_next(next_url, referer_path(request) or "/following"))


def _follow_action(request: Request, on: bool, kind: str, value: str, mode: str, next_url: str) -> Response:
    user = viewer(request).user
    if user is None and not wants_json(request):
        return signin_redirect(request, safe_next(next_url, "") or referer_path(request) or "/following")
    c = community(request)
    if on:
        f, _ = follows.follow(c, user, kind, value, mode or None)
    else:
        f = follows.parse(kind, value, mode or None)
        follows.unfollow(c, user, kind, value, mode or None)
    return _follow_answer(request, f, on, next_url)


@router.post("/follow")
def follow_form(
    request: Request, kind: str = Form("", max_length=20), value: str = Form("", max_length=1000),
    mode: str = Form("", max_length=20), next: str = Form("", max_length=2000),  # noqa: A002
) -> Response:  # fmt: skip
    return _follow_action(request, True, kind, value, mode, next)


@router.post("/unfollow")
def unfollow_form(
    request: Request, kind: str = Form("", max_length=20), value: str = Form("", max_length=1000),
    mode: str = Form("", max_length=20), next: str = Form("", max_length=2000),  # noqa: A002
) -> Response:  # fmt: skip
    return _follow_action(request, False, kind, value, mode, next)


# -- authorship claims ------------------------------------------------------------------------


def _paper_url(paper_id: str) -> str:
    return "/papers/" + quote(paper_id, safe="/.")


@router.post("/papers/{paper_id:path}/claim")
def claim_form(
    request: Request, paper_id: str = Path(max_length=64), author_name: str = Form("", max_length=300)
) -> Response:
    if viewer(request).user is None:
        return signin_redirect(request, _paper_url(paper_id))
    claim_id = claims.claim(community(request), viewer(request).user, paper_id, author_name)
    if wants_json(request):
        return personal_json({"id": claim_id, "status": "pending"})
    return redirect("/account?claimed=1#claims")


@router.post("/account/claims/{claim_id}/withdraw")
def withdraw_claim(request: Request, claim_id: int = Path(ge=1, le=MAX_ID)) -> Response:
    claims.withdraw(community(request), viewer(request).user, claim_id)
    return redirect("/account#claims")


@router.post("/moderation/claims/{claim_id}")
def decide_claim(
    request: Request, claim_id: int = Path(ge=1, le=MAX_ID), action: str = Form(..., max_length=20),
    reason: str = Form("", max_length=2000),
) -> Response:  # fmt: skip
    user = require_role(viewer(request).user, "moderator")
    if action not in ("confirm", "reject"):
        raise CommunityError("Unknown action: use confirm or reject.")
    claims.decide(community(request), user, claim_id, action == "confirm", reason)
    return redirect("/moderation#claims")


# -- the private feed token -------------------------------------------------------------------


def feed_urls(base: str, token: str) -> dict[str, str]:
    """The private feed addresses a token opens (shown once, when it is made)."""
    root = f"{base}/feeds/u/{token}"
    return {
        f"{view}.{fmt}": f"{root}/{view}.{fmt}" for view in ("following", "for-you") for fmt in ("atom", "rss", "json")
    }


@router.post("/account/feed-token")
def create_feed_token(request: Request) -> Response:
    """Make (or replace) the private feed token and show its URLs once."""
    token = feed_tokens.create(community(request), viewer(request).user)
    urls = feed_urls(app_state(request).settings.base_url, token)
    return render_page(request, "personal/feed_token.html", {"urls": urls, "active": "account"}, status=201)


@router.post("/account/feed-token/revoke")
def revoke_feed_token(request: Request) -> Response:
    feed_tokens.revoke(community(request), viewer(request).user)
    return redirect("/account#feeds")
