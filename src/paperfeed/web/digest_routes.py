"""Digest pages: subscribe, confirm, manage and unsubscribe (HTML forms, no login needed).

Included by the app factory (``web/app.py``). Every state change is a
POST; the GET pages behind mailed links only show what will happen and a button, so link
scanners and prefetchers cannot confirm or unsubscribe anybody. The exception RFC 8058 asks for
is also a POST: mail clients' one-click unsubscribe posts ``List-Unsubscribe=One-Click`` to the
link from the ``List-Unsubscribe`` header, token in the query string, no cookies.

Forms are read like every other form of the site, with FastAPI's ``Form()`` (one model,
:class:`DigestForm`, with a length cap per field; the body itself is capped by the security
middleware); a value over its cap is a 422 page saying which field.

The subscribe answer is the same page whatever the address's state (new, pending, active,
unsubscribed) and whether or not a mail was actually queued (per-address cap), so the form
cannot be used to find out who subscribes. Sign-ups are also limited per client IP (429). The
confirmation mail is sent right after the response (background task); if that fails it stays
queued in the ledger for the scheduler.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Form, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from paperfeed.community.errors import RateLimited
from paperfeed.community.ratelimit import Rate, bucket
from paperfeed.digest import send as digest_send
from paperfeed.digest import subscriptions as subs
from paperfeed.web.context import app_state, client_ip, community
from paperfeed.web.respond import render_page

router = APIRouter(prefix="/digest", include_in_schema=False)

COMMON_HOURS = list(range(24))

TZ_JS = """// Pre-selects the visitor's time zone in digest forms (the server default is UTC).
(function () {
  "use strict";
  var tz;
  try { tz = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
  if (!tz) return;
  document.querySelectorAll("[data-tz-guess]").forEach(function (el) {
    if (el.value !== "UTC") return;
    if (el.tagName === "SELECT") {
      for (var i = 0; i < el.options.length; i++) {
        if (el.options[i].value === tz) { el.value = tz; return; }
      }
    } else { el.value = tz; }
  });
})();
"""

CSS = """.digest-form{display:grid;gap:.75rem;max-width:34rem}
.digest-form .row{display:flex;flex-wrap:wrap;gap:.75rem}
.digest-form label{display:block;font-weight:600;margin-bottom:.2rem}
.digest-form input[type=email],.digest-form input[type=text],.digest-form select{width:100%;padding:.45rem .55rem;
border:1px solid #c7ccd4;border-radius:.4rem;font:inherit;background:transparent;color:inherit}
.digest-form .row>div{flex:1 1 10rem}
.digest-form .check{display:flex;gap:.4rem;align-items:center}.digest-form .check label{font-weight:400;margin:0}
.digest-form .hint{font-size:.85rem;opacity:.75;margin:.15rem 0 0}
.digest-form .err{color:#b91c1c;font-size:.9rem;margin:.2rem 0 0}
.digest-settings{margin:.5rem 0 1rem 1.2rem}
.digest-footer{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin:.25rem 0}
.digest-footer input[type=email]{min-width:14rem;padding:.35rem .5rem;border:1px solid #c7ccd4;border-radius:.4rem;
font:inherit;background:transparent;color:inherit}
.digest-footer select{padding:.35rem;border:1px solid #c7ccd4;border-radius:.4rem;font:inherit;background:transparent;
color:inherit}
"""


class DigestForm(BaseModel):
    """The fields the digest forms post (subscribe, confirm, manage, unsubscribe; others are ignored).

    The caps only stop absurd input early; the real rules (query length, categories, time zones)
    live in ``digest/subscriptions.py``, whose errors come back on the form with what was typed.
    """

    model_config = ConfigDict(extra="ignore")

    email: str | None = Field(None, max_length=1000)
    frequency: str | None = Field(None, max_length=40)
    q: str | None = Field(None, max_length=4 * subs.MAX_QUERY)
    categories: list[str] = Field(default_factory=list, max_length=100)
    category: list[str] = Field(default_factory=list, max_length=100)
    timezone: str | None = Field(None, max_length=100)
    send_hour: str | None = Field(None, max_length=10)
    weekends: str | None = Field(None, max_length=10)
    t: str | None = Field(None, max_length=20_000)  # a mailed link's signed token (a bad one is a 400 page)
    action: str | None = Field(None, max_length=20)

    @property
    def all_categories(self) -> list[str]:
        return self.categories + self.category


Posted = Annotated[DigestForm, Form()]


def _page(request: Request, template: str, status: int = 200, **ctx: Any) -> Response:
    defaults: dict[str, Any] = {
        "errors": {},
        "form": {},
        "timezones": sorted(subs.timezones()),
        "hours": COMMON_HOURS,
        "message": None,
        "title": "Email digest",
        "token": "",
    }
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}  # links carry tokens
    return render_page(request, template, {**defaults, **ctx, "shared": False}, status=status, headers=headers)


def _message(request: Request, status: int, title: str, message: str, **extra: Any) -> Response:
    return _page(request, "digest/message.html", status, title=title, message=message, **extra)


def _prefs_from(form: DigestForm) -> subs.Prefs:
    return subs.parse_prefs(
        frequency=form.frequency,
        query=form.q,
        categories=form.all_categories,
        timezone=form.timezone,
        send_hour=form.send_hour,
        weekdays_only=None if form.weekends is None else not subs._parse_bool(form.weekends, False),
    )


def _form_values(form: DigestForm) -> dict[str, Any]:
    """Echo what was typed back into the form (Jinja escapes it)."""
    return {
        "email": (form.email or "")[:320],
        "frequency": form.frequency or "daily",
        "q": (form.q or "")[:600],
        "categories": " ".join(form.all_categories)[:700],
        "timezone": form.timezone or "UTC",
        "send_hour": form.send_hour or "8",
        "weekends": bool(form.weekends),
    }


def _prefs_values(prefs: subs.Prefs, email: str = "") -> dict[str, Any]:
    return {
        "email": email,
        "frequency": prefs.frequency,
        "q": prefs.query,
        "categories": " ".join(prefs.categories),
        "timezone": prefs.timezone,
        "send_hour": str(prefs.send_hour),
        "weekends": not prefs.weekdays_only,
    }


# -- static helpers (served here so the CSP's 'self' covers them) -------------------------------


@router.get("/tz.js")
def tz_js() -> Response:
    return Response(TZ_JS, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})


@router.get("/digest.css")
def digest_css() -> Response:
    return Response(CSS, media_type="text/css", headers={"Cache-Control": "public, max-age=86400"})


# -- subscribe ----------------------------------------------------------------------------------


@router.get("/subscribe")
def subscribe_form(request: Request) -> Response:
    params = request.query_params
    cats = params.getlist("categories") + params.getlist("category")
    form = {
        "email": "",
        "frequency": params.get("frequency", "daily"),
        "q": params.get("q", "")[: subs.MAX_QUERY],
        "categories": " ".join(cats)[:700],
        "timezone": "UTC",
        "send_hour": "8",
        "weekends": False,
    }
    return _page(request, "digest/subscribe.html", form=form, title="Get new papers by email")


@router.post("/subscribe")
def subscribe(request: Request, background: BackgroundTasks, form: Posted) -> Response:
    state = app_state(request)
    try:
        email = subs.normalize_email(form.email)
        prefs = _prefs_from(form)
    except subs.SubscriptionError as exc:
        return _page(
            request, "digest/subscribe.html", 422, errors=exc.errors, form=_form_values(form), title="Check the form"
        )
    limited = _ip_limited(request)
    if limited is not None:
        return limited
    delivery = subs.request_subscription(state.db, email, prefs)
    if delivery is not None:
        background.add_task(digest_send.send_now, state.settings, state.db, delivery)
    return _message(
        request,
        200,
        "Check your inbox",
        f"If {email} can receive digests, a mail with a confirmation link is on its way. Nothing else is sent "
        "until you click it. The link works for 3 days.",
    )


SUBSCRIBE_IP_RATE = (20, 3600.0, 10)  # confirmation requests per address per hour, burst


def _ip_limited(request: Request) -> Response | None:
    """Per-IP budget for sign-ups (each one mails somebody), with the community rate limiter
    shared by all workers. The per-address cap is separate."""
    client = client_ip(request)
    if not client:
        return None
    count, period, burst = SUBSCRIBE_IP_RATE
    try:
        limit = bucket("digest_subscribe:ip", client, Rate(count, period, burst))
        community(request).rate_limiter.hit(limit, what="sign-ups")
    except RateLimited as exc:
        response = _message(request, 429, "Slow down", str(exc))
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    return None


# -- confirm ------------------------------------------------------------------------------------


@router.get("/confirm")
def confirm_page(request: Request, t: str = "") -> Response:
    state = app_state(request)
    try:
        pending = subs.check_confirm(state.db, subs.Tokens.from_settings(state.settings), t)
    except subs.TokenError as exc:
        return _message(request, 400, "This link does not work", str(exc), offer_subscribe=True)
    return _page(
        request,
        "digest/confirm.html",
        token=t,
        email=pending.email,
        settings_lines=pending.prefs.describe(),
        change=pending.already_active,
        form=_prefs_values(pending.prefs, pending.email),
        title="Confirm your digest",
    )


@router.post("/confirm")
def confirm(request: Request, form: Posted) -> Response:
    state = app_state(request)
    tokens = subs.Tokens.from_settings(state.settings)
    token = form.t or request.query_params.get("t", "")
    try:
        row = subs.confirm(state.db, tokens, token, timezone=form.timezone, send_hour=form.send_hour)
    except subs.TokenError as exc:
        return _message(request, 400, "This link does not work", str(exc), offer_subscribe=True)
    except subs.SubscriptionError as exc:
        pending = subs.check_confirm(state.db, tokens, token)
        return _page(
            request,
            "digest/confirm.html",
            422,
            token=token,
            email=pending.email,
            settings_lines=pending.prefs.describe(),
            change=pending.already_active,
            errors=exc.errors,
            form=_prefs_values(pending.prefs, pending.email),
            title="Confirm your digest",
        )
    links = subs.links_for(state.settings, tokens, row["id"], row["manage_nonce"])
    return _message(
        request,
        200,
        "You're subscribed",
        f"Digests will go to {row['email']}.",
        settings_lines=subs.Prefs.from_row(row).describe(),
        manage_url=links.manage_url,
    )


# -- manage -------------------------------------------------------------------------------------


@router.get("/manage")
def manage_page(request: Request, t: str = "") -> Response:
    state = app_state(request)
    try:
        row = subs.manage_view(state.db, subs.Tokens.from_settings(state.settings), t)
    except subs.TokenError as exc:
        return _message(request, 400, "This link does not work", str(exc), offer_subscribe=True)
    return _manage(request, row, t)


def _manage(request: Request, row: dict[str, Any], token: str, status: int = 200, **ctx: Any) -> Response:
    ctx.setdefault("form", _prefs_values(subs.Prefs.from_row(row), row["email"]))
    tokens = subs.Tokens.from_settings(app_state(request).settings)
    ctx["unsubscribe_token"] = tokens.unsubscribe(row["id"], row["manage_nonce"])
    return _page(
        request,
        "digest/manage.html",
        status,
        token=token,
        email=row["email"],
        sub_status=row["status"],
        title="Your digest settings",
        **ctx,
    )


@router.post("/manage")
def manage(request: Request, form: Posted) -> Response:
    state = app_state(request)
    tokens = subs.Tokens.from_settings(state.settings)
    token = form.t or ""
    try:
        row = subs.manage_view(state.db, tokens, token)
    except subs.TokenError as exc:
        return _message(request, 400, "This link does not work", str(exc), offer_subscribe=True)
    try:
        prefs = _prefs_from(form)
    except subs.SubscriptionError as exc:
        return _manage(request, row, token, 422, errors=exc.errors, form={**_form_values(form), "email": row["email"]})
    resume = form.action == "resume"
    row = subs.update_settings(state.db, tokens, token, prefs, resume=resume)
    return _manage(request, row, token, saved=True)


# -- unsubscribe --------------------------------------------------------------------------------


@router.get("/unsubscribe")
def unsubscribe_page(request: Request, t: str = "") -> Response:
    state = app_state(request)
    try:
        row = subs.unsubscribe_view(state.db, subs.Tokens.from_settings(state.settings), t)
    except subs.TokenError as exc:
        return _message(request, 400, "This link does not work", str(exc))
    return _page(
        request,
        "digest/unsubscribe.html",
        token=t,
        email=row["email"],
        sub_status=row["status"],
        title="Unsubscribe",
    )


@router.post("/unsubscribe")
def unsubscribe(request: Request, form: Posted) -> Response:
    """The confirmation form's POST, and RFC 8058 one-click (``List-Unsubscribe=One-Click``)."""
    state = app_state(request)
    tokens = subs.Tokens.from_settings(state.settings)
    token = request.query_params.get("t") or form.t or ""
    try:
        row = subs.unsubscribe(state.db, tokens, token)
    except subs.TokenError as exc:
        return _message(request, 400, "This link does not work", str(exc))
    links = subs.links_for(state.settings, tokens, row["id"], row["manage_nonce"])
    return _message(
        request,
        200,
        "You're unsubscribed",
        f"No more digests will be sent to {row['email']}.",
        manage_url=links.manage_url,
        manage_label="Changed your mind? Resume or change your digest",
    )
