"""Account pages: sign up, sign in/out, account settings (password, API tokens, the address to
confirm), password reset by mailed link, the address-confirmation link (``/verify``), and public
profiles (``/users/{name}``: submissions, upvotes, comments).

Included by the app factory (``web/app.py``), after it has installed the shared community
plumbing (``community_routes.install``); pages render through ``respond.render_page``. Forms
re-render with the error next to them and the right status (400/401/409/429 + Retry-After);
success answers with a 303 redirect. Signing in starts a new server-side session (new id and
CSRF token); signing out ends it on the server; a password change keeps this browser signed in
and ends every other session; "Sign out everywhere" ends them all. Account mail (confirmation
links, notices, reset links) is sent after the response (``BackgroundTasks``), so answers and
their timing do not depend on the address.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Form, Path, Query, Request
from starlette.responses import Response

from paperfeed.community import accounts, sessions, verification
from paperfeed.community.core import require_active
from paperfeed.community.errors import CommunityError, NotSignedIn
from paperfeed.personal import claims
from paperfeed.store import community_store as store
from paperfeed.web.context import client_ip, community
from paperfeed.web.redirects import redirect, safe_next, signin_redirect
from paperfeed.web.respond import JSONResponse, render_page, wants_json
from paperfeed.web.security import viewer

router = APIRouter(include_in_schema=False)


def _password() -> Any:
    """A fresh Form() per parameter: FastAPI must not share one FieldInfo between fields."""
    return Form("", max_length=1024)


def _form_error(request: Request, template: str, exc: CommunityError, **ctx: object) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if hasattr(exc, "retry_after") else None
    status = exc.status if exc.status != 401 else 400  # a wrong password is a form error, not an auth challenge
    return render_page(request, template, {**ctx, "error": exc.message}, status=status, headers=headers)


# -- sign up / in / out -----------------------------------------------------------------------


@router.get("/signup")
def signup_page(request: Request, next: str = Query("", max_length=2000)) -> Response:  # noqa: A002
    return render_page(request, "community/signup.html", {"next": safe_next(next), "form": {}, "error": None})


@router.post("/signup")
def signup(
    request: Request,
    background: BackgroundTasks,
    username: str = Form("", max_length=200),
    email: str = Form("", max_length=400),
    password: str = _password(),
    password2: str = _password(),
    next: str = Form(""),  # noqa: A002
) -> Response:
    form = {"username": username, "email": email}
    try:
        if password != password2:
            raise CommunityError("The two passwords differ.")
        signed_up = accounts.sign_up(community(request), username, email, password, ip=client_ip(request))
    except CommunityError as exc:
        return _form_error(request, "community/signup.html", exc, next=safe_next(next), form=form)
    background.add_task(signed_up.send_mail)  # a confirmation link, or a notice to the address's owner
    viewer(request).sign_in(signed_up.user)
    return redirect(safe_next(next))


@router.get("/signin")
def signin_page(request: Request, next: str = Query("", max_length=2000)) -> Response:  # noqa: A002
    return render_page(request, "community/signin.html", {"next": safe_next(next), "login": "", "error": None})


@router.post("/signin")
def signin(
    request: Request,
    login: str = Form("", max_length=400),
    password: str = _password(),
    next: str = Form(""),  # noqa: A002
) -> Response:
    try:
        user = accounts.sign_in(community(request), login, password, ip=client_ip(request))
    except CommunityError as exc:
        return _form_error(request, "community/signin.html", exc, next=safe_next(next), login=login)
    viewer(request).sign_in(user)
    return redirect(safe_next(next))


@router.post("/signout")
def signout(request: Request) -> Response:
    viewer(request).sign_out()
    return redirect("/")


# -- account settings -------------------------------------------------------------------------


def _account(request: Request, *, status: int = 200, **ctx: object) -> Response:
    view = viewer(request)
    user = require_active(view.user) if view.user is not None else None
    if user is None:
        raise NotSignedIn("Please sign in first.")
    c = community(request)
    base = {
        "tokens": accounts.list_api_tokens(c, user),
        "sessions": sessions.active(c, user, view.session.sid),
        "scope_help": accounts.SCOPE_HELP,
        "default_scopes": accounts.DEFAULT_SCOPES,
        "new_token": None,
        "error": None,
        "notice": "A new confirmation link is on its way." if request.query_params.get("link") == "sent" else None,
    }
    return render_page(request, "community/account.html", {**base, **ctx}, status=status)


@router.get("/account")
def account_page(request: Request) -> Response:
    if viewer(request).user is None:
        return signin_redirect(request)
    return _account(request)


@router.post("/account/password")
def change_password(
    request: Request, current: str = _password(), new: str = _password(), new2: str = _password()
) -> Response:
    view = viewer(request)
    try:
        if new != new2:
            raise CommunityError("The two new passwords differ.")
        user = accounts.change_password(community(request), view.user, current, new, ip=client_ip(request))
    except CommunityError as exc:
        if exc.status in (401, 429):  # the app's error page (429: with Retry-After)
            raise
        return _account(request, status=exc.status, error=exc.message)
    view.sign_in(user)  # this browser stays signed in, with a new session
    return _account(request, notice="Password changed. Every other session has been signed out.")


@router.post("/account/sessions/end")
def end_sessions(request: Request) -> Response:
    """Sign out everywhere: every session of the user ends, this browser's included."""
    view = viewer(request)
    sessions.end_all(community(request), require_active(view.user))
    view.sign_out()
    return redirect("/signin")


@router.post("/account/verify")
def resend_confirmation(request: Request, background: BackgroundTasks) -> Response:
    background.add_task(verification.resend(community(request), viewer(request).user))
    return redirect("/account?link=sent#email")


@router.post("/account/tokens")
def create_token(
    request: Request,
    name: str = Form("", max_length=200),
    scopes: list[str] = Form([], max_length=10),
    scopes_sent: str = Form("", max_length=10),
) -> Response:
    """A new token with the ticked scopes (the form always sends ``scopes_sent``, so ticking none
    is an error; a client that sends no scope fields at all gets the default scopes)."""
    wanted = scopes if (scopes or scopes_sent) else None
    try:
        token, _ = accounts.create_api_token(community(request), viewer(request).user, name, wanted)
    except CommunityError as exc:
        if exc.status in (401, 429):
            raise
        return _account(request, status=exc.status, error=exc.message)
    return _account(request, status=201, new_token=token)


@router.post("/account/tokens/{token_id}/revoke")
def revoke_token(request: Request, token_id: int = Path(ge=1, le=2**31 - 1)) -> Response:
    accounts.revoke_api_token(community(request), viewer(request).user, token_id)
    return redirect("/account#tokens")


# -- password reset ---------------------------------------------------------------------------


@router.get("/reset")
def reset_request_page(request: Request) -> Response:
    return render_page(request, "community/reset_request.html", {"sent": False, "email": "", "error": None})


@router.post("/reset")
def reset_request(request: Request, background: BackgroundTasks, email: str = Form("", max_length=400)) -> Response:
    try:
        background.add_task(accounts.request_reset(community(request), email, ip=client_ip(request)))
    except CommunityError as exc:
        return _form_error(request, "community/reset_request.html", exc, sent=False, email=email)
    return render_page(request, "community/reset_request.html", {"sent": True, "email": email, "error": None})


@router.get("/reset/{token}")
def reset_page(request: Request, token: str = Path(max_length=200)) -> Response:
    ok = accounts.reset_link_usable(community(request), token)
    return render_page(request, "community/reset_form.html", {"token": token, "usable": ok, "error": None},
                       status=200 if ok else 400)  # fmt: skip


@router.post("/reset/{token}")
def reset_password(
    request: Request, token: str = Path(max_length=200), password: str = _password(), password2: str = _password()
) -> Response:
    try:
        if password != password2:
            raise CommunityError("The two passwords differ.")
        user = accounts.reset_password(community(request), token, password)
    except CommunityError as exc:
        usable = accounts.reset_link_usable(community(request), token)
        return _form_error(request, "community/reset_form.html", exc, token=token, usable=usable)
    if user.banned:
        return redirect("/signin")
    viewer(request).sign_in(user)
    return redirect("/account")


# -- address confirmation ---------------------------------------------------------------------


def _verify_page(request: Request, *, token: str = "", info: verification.LinkInfo | None = None,
                 done: bool = False, error: CommunityError | None = None) -> Response:  # fmt: skip
    ctx = {"token": token, "info": info, "done": done, "error": error.message if error else None}
    return render_page(request, "community/verify.html", ctx, status=error.status if error else 200)


@router.get("/verify")
def verify_page(request: Request, t: str = Query("", max_length=2000)) -> Response:
    """What the mailed link confirms, and a button: following the link alone changes nothing."""
    try:
        info = verification.check_link(community(request), t)
    except CommunityError as exc:
        return _verify_page(request, error=exc)
    return _verify_page(request, token=t, info=info)


@router.post("/verify")
def verify(request: Request, t: str = Form("", max_length=2000)) -> Response:
    try:
        user = verification.verify_email(community(request), t)
    except CommunityError as exc:
        return _verify_page(request, error=exc)
    return _verify_page(request, info=verification.LinkInfo(user.username, user.email or ""), done=True)


# -- profiles ---------------------------------------------------------------------------------


@router.get("/users/{username}")
def profile(request: Request, username: str = Path(max_length=64)) -> Response:
    c = community(request)
    person = accounts.user_by_name(c, username)
    with c.db.read() as conn:
        data: dict[str, Any] = {
            "person": person,
            "submissions": store.user_submissions(conn, person.id),
            "upvoted": store.user_upvotes(conn, person.id),
            "comments": store.user_comments(conn, person.id),
        }
    data["authored"] = claims.user_claims(c, person.id, "confirmed")
    if wants_json(request):
        return JSONResponse(
            {
                "user": person.username,
                "role": person.role,
                "banned": person.banned,
                "joined": person.created_at.isoformat() if person.created_at else None,
                "submissions": [{"id": r["id"], "title": r["title"], "feedDate": r["feed_date"].isoformat()}
                                for r in data["submissions"]],
                "upvoted": [{"id": r["id"], "title": r["title"]} for r in data["upvoted"]],
                "papers": [{"id": r["paper_id"], "title": r["title"], "as": r["author_name"]}
                           for r in data["authored"]],
                "comments": [{"id": r["id"], "paperId": r["paper_id"], "bodyHtml": r["body_html"]}
                             for r in data["comments"]],
            }
        )  # fmt: skip
    return render_page(request, "community/profile.html", data)

