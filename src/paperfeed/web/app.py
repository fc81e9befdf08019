"""The web application factory: FastAPI app with pages, API, feeds, docs and security headers.

``create_app(settings, db)`` is called once per server process by ``paperfeed serve`` (through
``create_app_from_env`` under uvicorn) and by the tests. Every router is imported here by name;
the feature route modules (accounts, community, trends, pipeline) also ``register(app)`` their
template context processors and start-up / shut-down hooks (the pipeline: harvest, embedding,
digests) on ``app.state.pf``.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from paperfeed import __version__
from paperfeed.config import Settings
from paperfeed.search.hybrid import SearchService
from paperfeed.store.db import Database, open_database
from paperfeed.web import (
    account_routes,
    api,
    community_routes,
    digest_routes,
    docs,
    feeds,
    for_you_routes,
    library_routes,
    mcp_server,
    pages,
    personal_routes,
    pipeline_routes,
    trends,
)
from paperfeed.web.availability import Availability
from paperfeed.web.cache import DataVersion, ResponseCache
from paperfeed.web.context import AppState
from paperfeed.web.respond import STATIC, JSONResponse, build_templates, error_response, wants_json

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
]


class SecurityHeaders:
    """Adds the security headers to every response (errors and static files included).

    A response that sets its own Content-Security-Policy keeps it (the API docs page needs
    inline styles for Swagger UI; its scripts are still ``'self'`` only).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", CSP.encode()))
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in names)
                if scope["path"].startswith(("/api/", "/feeds/")) and b"access-control-allow-origin" not in names:
                    # Public read-only data: any site may fetch it (no credentials are involved).
                    headers.append((b"access-control-allow-origin", b"*"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class JsonSuffix:
    """``/papers/date/2025-01-15.json`` is the JSON twin of ``/papers/date/2025-01-15`` (datasette style),
    ``/papers/2405.15738.md`` the Markdown twin of a paper page (the Hub's ``read_paper`` URL).

    The suffix is stripped before routing and remembered in the request state; only page paths
    are rewritten, never the API, the feeds, static files or ``/openapi.json``.
    """

    PREFIXES = ("/papers/", "/authors/", "/about/", "/trends", "/following", "/for-you", "/library", "/c/")
    SUFFIXES = ((".json", "json_suffix"), (".md", "md_suffix"))

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            for suffix, flag in self.SUFFIXES:
                if path.endswith(suffix) and (
                    path in ("/" + suffix, "/index" + suffix) or path.startswith(self.PREFIXES)
                ):
                    scope = dict(scope)
                    new_path = path[: -len(suffix)]
                    if new_path in ("", "/index"):
                        new_path = "/"
                    scope["path"] = new_path
                    scope["raw_path"] = new_path.encode()
                    scope["state"] = {**scope.get("state", {}), flag: True}
                    break
        await self.app(scope, receive, send)


class HeadAsGet:
    """Answer HEAD like GET without the body (FastAPI routes only list GET; feed readers and link
    checkers send HEAD). Headers, Content-Length included, stay those of the GET answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)


class CachedStatic(StaticFiles):
    """Static files with a long cache lifetime: templates link them with a content hash (?v=)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        messages = {404: "There is no page at this address.", 405: "This address does not accept that method."}
        detail = exc.detail if isinstance(exc.detail, str) and exc.status_code not in messages else None
        response = error_response(request, exc.status_code, detail or messages.get(exc.status_code, "Request failed."))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = []
        for e in exc.errors():
            errors.append({k: e[k] for k in ("loc", "msg", "type") if k in e})
        if request.url.path.startswith("/api/") or wants_json(request):
            return JSONResponse({"detail": errors}, status_code=422)
        text = "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in errors if e.get("loc"))
        return error_response(request, 422, text or "invalid input")

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        # Logged with its traceback for the operator; the visitor sees a plain apology.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        response = error_response(request, 500, "Something went wrong on our side. The error has been logged.")
        # This handler runs outside the middleware stack (Starlette's ServerErrorMiddleware),
        # so the security headers are added here as well.
        response.headers["content-security-policy"] = CSP
        for name, value in SECURITY_HEADERS:
            response.headers[name.decode()] = value.decode()
        return response


def _include_features(app: FastAPI) -> None:
    """The feature route modules: their routers, and the hooks their ``register(app)`` adds."""
    app.include_router(digest_routes.router)  # subscriptions, confirm/unsubscribe
    community_routes.install(app)  # sessions, CSRF, community errors: account and community routes
    app.include_router(account_routes.router)  # accounts, sessions, API tokens, profiles
    app.include_router(community_routes.router)  # votes, comments, submissions, moderation
    community_routes.register(app)
    app.include_router(personal_routes.router)  # follows, /following, authorship claims, feed token
    personal_routes.register(app)
    library_routes.register(app)  # save, collections, notes, import/export, not interested / hide
    app.include_router(for_you_routes.router)  # /for-you, its controls
    app.include_router(for_you_routes.api_router)  # /api/v1/me/for-you, /api/v1/me/following (token: read)
    app.include_router(trends.router)  # /trends, /api/v1/trends, chart template globals
    trends.register(app)
    pipeline_routes.register(app)  # the pipeline (start-up / shut-down hooks) and /api/v1/status


def create_app(
    settings: Settings,
    db: Database | None = None,
    *,
    search_factory: Callable[[], SearchService] | None = None,
    cache_ttl: float = 300.0,
    freeze_gc: bool = False,
) -> FastAPI:
    """Build the app. ``db`` defaults to the configured database (migrated on open).

    ``freeze_gc`` (a server process: ``paperfeed serve``, ``paperfeed demo``): once started, the
    process's objects leave the garbage collector's generations (:func:`freeze_startup_objects`)."""
    database = db or open_database(settings)
    state = AppState(
        settings=settings,
        db=database,
        version=DataVersion(database),
        cache=ResponseCache(ttl=cache_ttl),
        search_factory=search_factory,
    )
    state.version.extra = state.index_version  # cached searches move when an index catches up

    # Catch the author/category lookup tables up with whatever was imported while we were down.
    state.startup_hooks.append(lambda st: st.refresh_lookups())
    # Keep this process's search indexes current with the database (search/follower.py).
    state.startup_hooks.append(lambda st: st.start_follower())
    state.shutdown_hooks.append(lambda st: st.stop_follower())

    # Async context managers that live as long as the app (the MCP session manager).
    running: list[Callable[[], AbstractAsyncContextManager[Any]]] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for hook in list(state.startup_hooks):
            hook(state)
        if freeze_gc:
            freeze_startup_objects()
        try:
            async with AsyncExitStack() as stack:
                for context in running:
                    await stack.enter_async_context(context())
                yield
        finally:
            for hook in list(state.shutdown_hooks):
                try:
                    hook(state)
                except Exception:  # one failing hook must not keep the others from cleaning up
                    log.exception("shutdown hook failed")

    app = FastAPI(
        title="paperfeed",
        version=__version__,
        description=(
            "Research-paper discovery: the daily feed, hybrid search, trending. `/api/daily_papers`, "
            "`/api/papers/*` mirror the Hugging Face papers API; `/api/v1/*` is paperfeed's own."
        ),
        docs_url=None,  # FastAPI's pages load Swagger UI from a CDN; ours is served locally
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.pf = state
    app.state.templates = build_templates()
    app.state.templates.globals["author_url"] = pages.author_url
    _install_error_handlers(app)

    # The more specific mount first: /static would otherwise swallow /static/swagger/*.
    app.mount("/static/swagger", CachedStatic(directory=docs.swagger_dir()), name="swagger")
    app.mount("/static", CachedStatic(directory=str(STATIC)), name="static")
    # Pages first: they are most of the traffic and routes are matched in order. Their catch-all
    # GET /papers/{arxiv_id} only partially matches other methods, so a feature's
    # POST /papers/{id}/vote still reaches its own route.
    app.include_router(pages.router)
    app.include_router(api.router)
    app.include_router(feeds.router)
    app.include_router(docs.router)
    _include_features(app)
    # The MCP server (streamable HTTP) at /mcp: the same tools as `paperfeed mcp` over stdio.
    mcp = mcp_server.build_server(state, app.state.community)
    # Starlette runs an ASGI app given as a route endpoint as it is; its annotation only names functions.
    app.add_route("/mcp", mcp_server.http_app(mcp, settings.base_url), methods=["GET", "POST", "DELETE"],  # type: ignore[arg-type]  # see above
                  include_in_schema=False)  # fmt: skip
    running.append(mcp.session_manager.run)

    # Database faults (down, restarting, disk full) as 503/507 with Retry-After: around everything
    # that reads the database (sessions and tokens included), inside the ones that shape answers.
    app.add_middleware(Availability)
    app.add_middleware(JsonSuffix)
    app.add_middleware(HeadAsGet)
    app.add_middleware(SecurityHeaders)
    if settings.forwarded_allow_ips:
        # Outermost, so everything inside (rate limits, Secure cookies, uvicorn's access log, which
        # shares the scope) sees the visitor's address and scheme. Only the listed peers' headers
        # are believed, and of X-Forwarded-For only the right-most address they did not add.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.forwarded_allow_ips))
    return app


def freeze_startup_objects() -> None:
    """Move every object that exists once a server process has started (the libraries' modules,
    classes and functions, the app: ~250,000 objects) out of the garbage collector's generations.

    They live as long as the process, and every full collection walked them: on the search pages of
    an 80k-paper home, one ~130 ms collection per ~100 pages (1.3 ms a page on average, all of it in
    whichever request set it off), 0.1-0.16 ms a page once frozen (bench/README.md, "Where an uncached
    page's CPU goes"). Not for tests, which build many apps in one process: what is frozen is never
    collected."""
    gc.collect()
    gc.freeze()


def create_app_from_env() -> FastAPI:
    """Uvicorn factory (``paperfeed serve``): settings from the environment, one per worker."""
    return create_app(Settings.from_env(), freeze_gc=True)
