"""Community pages and the write API: submit a paper, upvote, comment, moderate.

Included by the app factory (``web/app.py``), which calls :func:`install` before the account
and community routers: the session/CSRF middleware, the :class:`Community` context on
``app.state.community`` (tests swap its clock and limits), the template hooks (``user`` in every
page context, the ``viewer()`` global the vote button and comment thread use) and the handler
that turns community errors into helpful pages, JSON, or a redirect to the sign-in page.

Every state change is a POST (or DELETE in the API). Forms work without JavaScript (POST, then
303 back to the page); ``vote.js`` sends the same POST with ``Accept: application/json`` and
updates the button in place. The write API (``/api/papers/...``, ``/api/moderation/...``)
accepts a personal token (``Authorization: Bearer``, no CSRF; each endpoint names the scope it
needs with ``token_scope``) or the session cookie (with ``X-CSRF-Token``). Tokens never work on
the HTML form routes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Body, Depends, FastAPI, Form, Path, Query, Request
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from paperfeed.community import comments as comment_service
from paperfeed.community import moderation, submissions, votes
from paperfeed.community.core import Community, User, require_active, require_role
from paperfeed.community.errors import CommunityError, NotSignedIn, RateLimited
from paperfeed.web.context import client_ip, community
from paperfeed.web.redirects import redirect, referer_path, safe_next, signin_redirect
from paperfeed.web.respond import JSONResponse, error_response, render_page, wants_json
from paperfeed.web.security import CommunityMiddleware, check_token_scope, current_viewer, token_scope, viewer

router = APIRouter(include_in_schema=False)
# Documents the token scheme in OpenAPI (/docs "Authorize"); the token itself is checked by the
# session middleware's viewer, which also accepts the cookie + X-CSRF-Token from the site's own JS.
_bearer = HTTPBearer(auto_error=False, description="A personal API token from /account (pf_...)")
api_router = APIRouter(prefix="/api", tags=["write"], dependencies=[Depends(_bearer), Depends(check_token_scope)])
MAX_ID = 2**31 - 1  # ids are 32-bit integers in PostgreSQL; larger ones cannot exist
PaperId = Path(max_length=64, description="arXiv id without version, e.g. 2405.15738")
CommentId = Path(ge=1, le=MAX_ID)


# -- helpers ----------------------------------------------------------------------------------


def _paper_url(paper_id: str) -> str:
    return "/papers/" + quote(paper_id, safe="/.")


def _retry_headers(exc: CommunityError) -> dict[str, str]:
    return {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else {}


async def community_error(request: Request, exc: Exception) -> Response:
    """Errors no route caught itself: JSON for the API/JS, a sign-in redirect or an error page."""
    assert isinstance(exc, CommunityError)
    headers = _retry_headers(exc)
    api = request.url.path.startswith("/api/") or wants_json(request)
    if isinstance(exc, NotSignedIn):
        if api:
            headers["WWW-Authenticate"] = 'Bearer realm="paperfeed"'
            return JSONResponse({"detail": exc.message, "signin": "/signin"}, status_code=401, headers=headers)
        return signin_redirect(request, referer_path(request))
    titles = {403: "Not allowed", 404: "Not found", 409: "Already done", 429: "Slow down", 502: "arXiv unavailable"}
    if api:
        body = {"detail": exc.message}
        scope = getattr(exc, "scope", None)  # a token without the scope this endpoint needs
        if scope:
            body["scope"] = scope
        return JSONResponse(body, status_code=exc.status, headers=headers)
    response = error_response(request, exc.status, exc.message, title=titles.get(exc.status, "Could not do that"))
    response.headers.update(headers)
    return response


def _context(request: Request) -> dict[str, Any]:
    """Template context for every page: the signed-in user, and whether the page may be shared."""
    found = request.scope.get("state", {}).get("pf_viewer")
    user = found.user if found is not None else None
    return {"user": user, "shared": user is None}


def install(app: FastAPI) -> None:
    """Wire sessions, CSRF, templates and error handling into the app (once)."""
    if getattr(app.state, "community", None) is not None:
        return
    state = app.state.pf
    comm = Community(settings=state.settings, db=state.db)
    app.state.community = comm
    app.add_middleware(CommunityMiddleware, community=comm)
    app.add_exception_handler(CommunityError, community_error)
    state.context_processors.append(_context)
    app.state.templates.globals["viewer"] = current_viewer


def register(app: FastAPI) -> None:
    install(app)
    app.include_router(api_router)


# -- submit -----------------------------------------------------------------------------------


def _submit_ctx(request: Request, value: str, error: str | None) -> dict[str, Any]:
    s = community(request).settings
    return {"value": value, "error": error, "window_days": s.submission_window_days, "per_day": s.submissions_per_day,
            "active": "submit"}  # fmt: skip


@router.get("/submit", name="submit_paper")
def submit_page(request: Request, id: str = Query("", max_length=300)) -> Response:  # noqa: A002 - ?id= in links
    if viewer(request).user is None:
        return signin_redirect(request, "/submit?" + urlencode({"id": id}) if id else "/submit")
    return render_page(request, "community/submit.html", _submit_ctx(request, id, None))


@router.post("/submit")
def submit_form(request: Request, arxiv_id: str = Form("", max_length=300)) -> Response:
    view = viewer(request)
    if view.user is None:
        return signin_redirect(request, "/submit")
    try:
        done = submissions.submit(community(request), view.user, arxiv_id, ip=client_ip(request))
    except CommunityError as exc:
        return render_page(request, "community/submit.html", _submit_ctx(request, arxiv_id, exc.message),
                           status=exc.status, headers=_retry_headers(exc))  # fmt: skip
    return redirect(_paper_url(done.paper_id))


# -- votes ------------------------------------------------------------------------------------


@router.post("/papers/{paper_id:path}/vote")
def vote_form(request: Request, paper_id: str = PaperId, next: str = Form("")) -> Response:  # noqa: A002
    view = viewer(request)
    if view.user is None:
        if wants_json(request):
            raise NotSignedIn("Sign in to upvote papers.")
        return signin_redirect(request, safe_next(next, "") or referer_path(request) or _paper_url(paper_id))
    state = votes.toggle_vote(community(request), view.user, paper_id, ip=client_ip(request))
    if wants_json(request):
        return JSONResponse(state.as_json())
    # Without JS: back to the page the button was on (a feed page, the paper, a profile).
    return redirect(safe_next(next, referer_path(request) or _paper_url(paper_id)))


# -- comments ---------------------------------------------------------------------------------


@router.post("/papers/{paper_id:path}/comments")
def comment_form(
    request: Request,
    paper_id: str = PaperId,
    body: str = Form("", max_length=20_000),
    parent_id: int | None = Form(None, ge=1, le=MAX_ID),
) -> Response:
    view = viewer(request)
    if view.user is None:
        return signin_redirect(request, _paper_url(paper_id) + "#comments")
    comment_id = comment_service.add_comment(
        community(request), view.user, paper_id, body, parent_id, ip=client_ip(request)
    )
    return redirect(f"{_paper_url(paper_id)}#comment-{comment_id}")


@router.get("/comments/{comment_id}/edit")
def comment_edit_page(request: Request, comment_id: int = CommentId) -> Response:
    view = viewer(request)
    c = community(request)
    if view.user is None:
        return signin_redirect(request)
    comment = comment_service.get_comment(c, comment_id)
    if not comment_service.can_edit(c, view.user, comment):
        raise CommunityError("You can only edit your own comments, within 15 minutes of posting.", status=403)
    return render_page(request, "community/comment_edit.html", {"comment": comment, "error": None})


@router.post("/comments/{comment_id}/edit")
def comment_edit(request: Request, comment_id: int = CommentId, body: str = Form("", max_length=20_000)) -> Response:
    view = viewer(request)
    c = community(request)
    try:
        comment = comment_service.edit_comment(c, view.user, comment_id, body)
    except CommunityError as exc:
        if exc.status not in (400, 422):  # the text itself is wrong: show the form again, with it
            raise
        comment = {**comment_service.get_comment(c, comment_id), "body": body}
        return render_page(request, "community/comment_edit.html", {"comment": comment, "error": exc.message},
                           status=exc.status)  # fmt: skip
    return redirect(f"{_paper_url(comment['paper_id'])}#comment-{comment_id}")


@router.post("/comments/{comment_id}/delete")
def comment_delete(request: Request, comment_id: int = CommentId) -> Response:
    comment = comment_service.delete_comment(community(request), viewer(request).user, comment_id)
    return redirect(f"{_paper_url(comment['paper_id'])}#comments")


# -- moderation -------------------------------------------------------------------------------


@router.get("/moderation")
def moderation_page(request: Request) -> Response:
    view = viewer(request)
    if view.user is None:
        return signin_redirect(request)
    data = moderation.queue(community(request), view.user)
    return render_page(request, "community/moderation.html", data)


def _moderator(request: Request) -> User:
    """The signed-in moderator (or admin) making this request; 401/403 for anybody else."""
    return require_role(viewer(request).user, "moderator")


def _moderate_comment(c: Community, user: User, comment_id: int, action: str, reason: str) -> bool:
    if action not in ("hide", "unhide"):
        raise CommunityError("Unknown action: use hide or unhide.")
    return moderation.set_comment_hidden(c, user, comment_id, action == "hide", reason)


def _moderate_entry(c: Community, user: User, paper_id: str, action: str, reason: str) -> bool:
    if action in ("hide", "unhide"):
        return moderation.set_entry_hidden(c, user, paper_id, action == "hide", reason)
    if action in ("feature", "unfeature"):
        return moderation.set_entry_featured(c, user, paper_id, action == "feature")
    raise CommunityError("Unknown action: use hide, unhide, feature or unfeature.")


def _moderate_user(c: Community, user: User, username: str, action: str, reason: str, role: str) -> bool:
    if action in ("ban", "unban"):
        return moderation.set_banned(c, user, username, action == "ban", reason)
    if action == "role":
        return moderation.set_role(c, user, username, role)
    raise CommunityError("Unknown action: use ban, unban or role.")


@router.post("/moderation/comments/{comment_id}")
def moderate_comment(
    request: Request, comment_id: int = CommentId, action: str = Form(...), reason: str = Form("", max_length=2000),
    next: str = Form(""),  # noqa: A002
) -> Response:  # fmt: skip
    _moderate_comment(community(request), _moderator(request), comment_id, action, reason)
    return redirect(safe_next(next, "/moderation"))


@router.post("/moderation/entries/{paper_id:path}")
def moderate_entry(
    request: Request, paper_id: str = PaperId, action: str = Form(...), reason: str = Form("", max_length=2000),
    next: str = Form(""),  # noqa: A002
) -> Response:  # fmt: skip
    _moderate_entry(community(request), _moderator(request), paper_id, action, reason)
    return redirect(safe_next(next, "/moderation"))


@router.post("/moderation/users/{username}")
def moderate_user(
    request: Request, username: str = Path(max_length=64), action: str = Form(...),
    reason: str = Form("", max_length=2000), role: str = Form(""), next: str = Form(""),  # noqa: A002
) -> Response:  # fmt: skip
    _moderate_user(community(request), _moderator(request), username, action, reason, role)
    return redirect(safe_next(next, "/users/" + quote(username)))


# -- the write API ----------------------------------------------------------------------------

_API_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid input"},
    401: {"description": "No valid token or session"},
    403: {"description": "Banned account, missing CSRF token (cookie auth), or not allowed"},
    404: {"description": "No such paper or comment"},
    409: {"description": "Already done (e.g. the paper is already on the daily feed)"},
    429: {"description": "Rate limited; see Retry-After"},
}


class IndexIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    arxivId: str = Field(min_length=1, max_length=300, description="An arXiv id, arXiv: reference or abs/pdf URL")


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    comment: str = Field(min_length=1, max_length=20_000, description="Markdown; $...$ for math")
    parentId: int | None = Field(None, ge=1, le=MAX_ID, description="The comment this replies to")


def _api_user(request: Request) -> User:
    return require_active(viewer(request).user)


@api_router.post("/papers/index", status_code=201, responses=_API_ERRORS)
@token_scope("submit")
def api_index(request: Request, payload: IndexIn = Body(...)) -> Response:
    """Submit a paper to today's daily feed (fetched from arXiv when it is not known yet).
    A token needs the ``submit`` scope."""
    done = submissions.submit(community(request), _api_user(request), payload.arxivId, ip=client_ip(request))
    return JSONResponse(done.as_json(), status_code=201)


@api_router.post("/papers/{paper_id:path}/upvote", responses=_API_ERRORS)
@token_scope("vote")
def api_upvote(request: Request, paper_id: str = PaperId) -> Response:
    """Upvote a paper (idempotent). A token needs the ``vote`` scope."""
    state = votes.set_vote(community(request), _api_user(request), paper_id, True, ip=client_ip(request))
    return JSONResponse(state.as_json())


@api_router.delete("/papers/{paper_id:path}/upvote", responses=_API_ERRORS)
@token_scope("vote")
def api_unvote(request: Request, paper_id: str = PaperId) -> Response:
    """Take back an upvote (idempotent). A token needs the ``vote`` scope."""
    state = votes.set_vote(community(request), _api_user(request), paper_id, False, ip=client_ip(request))
    return JSONResponse(state.as_json())


@api_router.post("/papers/{paper_id:path}/comments", status_code=201, responses=_API_ERRORS)
@token_scope("comment")
def api_comment(request: Request, paper_id: str = PaperId, payload: CommentIn = Body(...)) -> Response:
    """Comment on a paper, or reply to one of its comments. A token needs the ``comment`` scope."""
    c = community(request)
    user = _api_user(request)
    comment_id = comment_service.add_comment(c, user, paper_id, payload.comment, payload.parentId,
                                             ip=client_ip(request))  # fmt: skip
    row = comment_service.get_comment(c, comment_id)
    return JSONResponse(
        {
            "id": row["id"],
            "paperId": row["paper_id"],
            "parentId": row["parent_id"],
            "author": {"user": user.username},
            "bodyHtml": row["body_html"],
            "createdAt": row["created_at"].isoformat(),
            "url": f"{_paper_url(row['paper_id'])}#comment-{row['id']}",
        },
        status_code=201,
    )


class ModerateIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    action: str = Field(min_length=1, max_length=20, description="See each endpoint")
    reason: str = Field("", max_length=2000, description="Kept in the audit log; required to hide or ban")
    role: str = Field("", max_length=20, description="For action=role: user, moderator or admin")


def _moderated(changed: bool) -> Response:
    return JSONResponse({"ok": True, "changed": changed})


@api_router.post("/moderation/comments/{comment_id}", responses=_API_ERRORS)
@token_scope("moderate")
def api_moderate_comment(request: Request, comment_id: int = CommentId, payload: ModerateIn = Body(...)) -> Response:
    """Hide or unhide a comment (``action``: hide|unhide). Moderators; a token needs ``moderate``."""
    c = community(request)
    return _moderated(_moderate_comment(c, _moderator(request), comment_id, payload.action, payload.reason))


@api_router.post("/moderation/entries/{paper_id:path}", responses=_API_ERRORS)
@token_scope("moderate")
def api_moderate_entry(request: Request, paper_id: str = PaperId, payload: ModerateIn = Body(...)) -> Response:
    """Hide/unhide (moderators) or feature/unfeature (admins) a daily entry. A token needs ``moderate``."""
    c = community(request)
    return _moderated(_moderate_entry(c, _moderator(request), paper_id, payload.action, payload.reason))


@api_router.post("/moderation/users/{username}", responses=_API_ERRORS)
@token_scope("moderate")
def api_moderate_user(
    request: Request, username: str = Path(max_length=64), payload: ModerateIn = Body(...)
) -> Response:
    """Ban/unban (moderators) or change the role (admins, ``action=role``) of a user. A token needs
    ``moderate``."""
    c = community(request)
    return _moderated(_moderate_user(c, _moderator(request), username, payload.action, payload.reason, payload.role))
