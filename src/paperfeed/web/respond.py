"""Turning a page's data dict into a response: HTML or JSON, cached, with ETag/304 handling.

Every page handler builds one dict and hands it here; the same dict is rendered by a Jinja
template or dumped with orjson (``Accept: application/json`` or a ``.json`` twin URL), like
datasette. Runs on every page and API request, so the cached path does no SQL and no rendering.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any

import orjson
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from paperfeed import ranking
from paperfeed.cards import AI_SUMMARY_LABEL, author_summary, preview
from paperfeed.web import render
from paperfeed.web.context import app_state, request_context

log = logging.getLogger(__name__)
WEB = Path(__file__).resolve().parent
STATIC = WEB / "static"


class PageError(Exception):
    """A request the page cannot answer: shown as a helpful error page (HTML) or ``{"detail"}``."""

    def __init__(self, status: int, message: str, *, title: str | None = None, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.title = title
        self.extra = extra or {}


# -- JSON -------------------------------------------------------------------------------------


def _default(obj: Any) -> Any:
    if isinstance(obj, ranking.TrendingScore):
        return obj.as_dict()
    if isinstance(obj, set | tuple):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(data: Any) -> bytes:
    # Stored timestamps are naive UTC; say so ("Z") so they are valid RFC 3339 date-times.
    return orjson.dumps(
        data, default=_default, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z
    )


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else dumps(content)


# -- templates --------------------------------------------------------------------------------


def _asset_versions() -> dict[str, str]:
    """Content hashes of static files, appended as ``?v=`` so they can be cached for a year."""
    out = {}
    for p in STATIC.rglob("*"):
        if p.is_file():
            out[p.relative_to(STATIC).as_posix()] = hashlib.blake2b(p.read_bytes(), digest_size=6).hexdigest()
    return out


def _fmt_date(value: date | datetime | None, style: str = "medium") -> str:
    if value is None:
        return ""
    if style == "iso":
        return value.isoformat()
    if style == "short":
        return value.strftime("%b %-d")
    if style == "time" and isinstance(value, datetime):
        return value.strftime("%b %-d, %Y %H:%M UTC")
    return value.strftime("%b %-d, %Y")


def _compact(n: int | None) -> str:
    n = int(n or 0)
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    if n >= 1_000:
        return f"{n / 1000:.1f}k"
    return str(n)


def build_templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(WEB / "templates")),
        autoescape=select_autoescape(["html", "xml"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    versions = _asset_versions()
    env.globals["static"] = lambda name: f"/static/{name}?v={versions.get(name, '0')}"
    env.filters["rich"] = render.rich_text
    env.filters["preview"] = preview
    env.filters["date"] = _fmt_date
    env.filters["compact"] = _compact
    env.filters["plain"] = render.plain_text
    env.globals["author_summary"] = author_summary
    env.globals["ai_summary_label"] = AI_SUMMARY_LABEL
    env.globals["formula"] = ranking.TRENDING_FORMULA
    return env


# -- negotiation and conditional requests -----------------------------------------------------


def wants_json(request: Request) -> bool:
    if request.scope.get("state", {}).get("json_suffix"):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def wants_markdown(request: Request) -> bool:
    """A ``.md`` twin URL, or ``Accept: text/markdown`` from a client that does not ask for HTML."""
    if request.scope.get("state", {}).get("md_suffix"):
        return True
    accept = request.headers.get("accept", "")
    return "text/markdown" in accept and "text/html" not in accept


def _etag(*parts: str) -> str:
    return 'W/"' + hashlib.blake2b("|".join(parts).encode(), digest_size=10).hexdigest() + '"'


def not_modified(request: Request, etag: str, last_modified: datetime | None) -> bool:
    """RFC 9110: If-None-Match wins; If-Modified-Since is only looked at without it."""
    inm = request.headers.get("if-none-match")
    if inm is not None:
        tags = {t.strip() for t in inm.split(",")}
        bare = etag.removeprefix("W/")
        return "*" in tags or etag in tags or bare in tags or f"W/{bare}" in tags
    ims = request.headers.get("if-modified-since")
    if ims and last_modified is not None:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError, IndexError):
            return False  # an unreadable date is ignored, as the RFC says
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return last_modified.replace(microsecond=0) <= since
    return False


def finish(
    request: Request, body: bytes, media_type: str, etag: str, last_modified: datetime | None, *, private: bool
) -> Response:
    headers = {
        "ETag": etag,
        "Cache-Control": "private, no-cache" if private else "public, no-cache",
        "Vary": "Accept",
    }
    if last_modified is not None:
        headers["Last-Modified"] = format_datetime(last_modified.replace(microsecond=0), usegmt=True)
    if not_modified(request, etag, last_modified):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


# -- the page pipeline ------------------------------------------------------------------------


async def page(
    request: Request,
    *,
    key: str,
    build: Callable[[], dict[str, Any]],
    template: str,
    active: str = "",
    headers: dict[str, str] | None = None,
    markdown: Callable[[dict[str, Any], str], str] | None = None,
) -> Response:
    """Serve one page: ``build()`` (sync, runs SQL) is called once per cache key and data version.

    ``markdown(data, base_url)`` gives the page a Markdown twin (``.md`` or ``Accept: text/markdown``);
    a ``.md`` URL of a page without one is a 404.
    """
    state = app_state(request)
    as_md = wants_markdown(request)
    if as_md and markdown is None:
        if request.scope.get("state", {}).get("md_suffix"):
            return error_response(request, 404, "This page has no Markdown version.")
        as_md = False
    version = state.version.current()
    as_json = wants_json(request) and not as_md
    entry = state.cache.get(key, version.token)
    if entry is None:
        data = await run_in_threadpool(build)
        entry = state.cache.put(key, version.token, data)
    last_modified = datetime.fromtimestamp(version.seen_at, UTC)
    if as_md and markdown is not None:
        body = entry.bodies.get("md")
        if body is None:
            body = state.cache.add_body(entry, "md", markdown(entry.data, state.settings.base_url).encode())
        response = finish(
            request, body, "text/markdown; charset=utf-8", _etag(key, version.token, "md"), last_modified, private=False
        )
    elif as_json:
        body = entry.bodies.get("json")
        if body is None:
            body = state.cache.add_body(entry, "json", dumps(entry.data))
        response = finish(
            request, body, "application/json", _etag(key, version.token, "json"), last_modified, private=False
        )
    else:
        ctx = request_context(request, active)
        shared = ctx.get("shared", True)
        body = entry.bodies.get("html") if shared else None
        if body is None:
            body = render_html(request, template, {**entry.data, **ctx})
            if shared:
                state.cache.add_body(entry, "html", body)
        tag = _etag(key, version.token, "html") if shared else _etag(hashlib.blake2b(body).hexdigest())
        response = finish(request, body, "text/html; charset=utf-8", tag, last_modified, private=not shared)
    if headers:
        response.headers.update(headers)
    return response


async def cached_json(request: Request, *, key: str, build: Callable[[], tuple[Any, dict[str, str]]]) -> Response:
    """Serve an API answer: ``build()`` returns (payload, extra headers such as Link), cached like pages."""
    state = app_state(request)
    version = state.version.current()
    entry = state.cache.get("api|" + key, version.token)
    if entry is None:
        payload, extra = await run_in_threadpool(build)
        entry = state.cache.put("api|" + key, version.token, extra)
        state.cache.add_body(entry, "json", dumps(payload))
    last_modified = datetime.fromtimestamp(version.seen_at, UTC)
    etag = _etag("api", key, version.token)
    response = finish(request, entry.bodies["json"], "application/json", etag, last_modified, private=False)
    response.headers.update(entry.data)
    return response


def render_page(
    request: Request,
    template: str,
    ctx: dict[str, Any] | None = None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """A page for one visitor (account, community and digest pages): the shared template context
    with ``ctx`` on top, never stored by shared caches (``Cache-Control: private, no-store``
    unless ``headers`` set it). Pages that everyone sees go through :func:`page` instead."""
    body = render_html(request, template, {**request_context(request), **(ctx or {})})
    response = Response(body, status, media_type="text/html; charset=utf-8", headers=headers)
    if "cache-control" not in response.headers:
        response.headers["Cache-Control"] = "private, no-store"
    return response


def render_html(request: Request, template: str, context: dict[str, Any]) -> bytes:
    env: Environment = request.app.state.templates
    return env.get_template(template).render(context).encode()


def error_response(
    request: Request, status: int, message: str, *, title: str | None = None, visitor: bool = True, **extra: Any
) -> Response:
    """A helpful error: JSON ``{"detail": ...}`` for API/JSON requests, a page for people
    (``visitor=False``: rendered without looking up who is signed in, see ``request_context``)."""
    api = request.url.path.startswith(("/api/", "/feeds/", "/openapi")) or wants_json(request)
    if api:
        return JSONResponse({"detail": message, **extra}, status_code=status)
    titles = {
        400: "Bad request",
        404: "Not found",
        405: "Method not allowed",
        422: "Invalid input",
        500: "Server error",
        503: "Temporarily unavailable",
        507: "Storage full",
    }
    ctx = {
        **request_context(request, visitor=visitor),
        "status": status,
        "title": title or titles.get(status, "Error"),
        "message": message,
        **extra,
    }
    try:
        body = render_html(request, "error.html", ctx)
    except Exception:  # never let the error page itself fail: fall back to plain text
        log.exception("error page failed to render")
        body = f"{status}: {message}".encode()
        return Response(body, status_code=status, media_type="text/plain; charset=utf-8")
    return Response(body, status_code=status, media_type="text/html; charset=utf-8")
