"""The MCP server (Model Context Protocol, official ``mcp`` SDK): paperfeed's tools for agents.

``paperfeed mcp`` serves it over stdio; the web app mounts the same server at ``/mcp``
(streamable HTTP, stateless, JSON responses, so any worker can answer any request). Tools:

* ``search_papers`` (query, mode, sort, filters, limit/offset) = ``GET /api/v1/search``
* ``daily_papers`` (date / week / month, submitter, sort, p, limit) = ``GET /api/daily_papers``
* ``get_paper`` (arXiv id) = ``GET /api/papers/{id}``
* ``similar_papers`` (arXiv id, k) = ``GET /api/v1/papers/{id}/similar``
* ``upvote`` (arXiv id, up) and ``submit_paper`` (arXiv id or URL): need an API token with the
  ``vote`` / ``submit`` scope - ``Authorization: Bearer`` on ``/mcp``, ``PAPERFEED_TOKEN`` for stdio.
* ``for_you`` (limit) = ``GET /api/v1/me/for-you`` and ``following`` = ``GET /api/v1/me/following``:
  the token owner's personal views; need a token with the ``read`` scope (personal data, so
  never anonymous).

Each tool calls the same builder as its JSON endpoint (``web/api.py``) and returns the same JSON.
Security: the HTTP transport never looks at cookies (a browser's session cannot act through it, so
there is nothing for a cross-site request to ride on); write tools need a valid token with the
right scope (the community rules - bans, quotas, rate limits - apply as on the JSON API); request
bodies are capped; Host and Origin are checked against the site's base URL (DNS rebinding).
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

import orjson
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations
from starlette.applications import Starlette

from paperfeed import __version__, periods
from paperfeed.community import accounts, submissions, votes
from paperfeed.community.core import Community, User, require_active
from paperfeed.community.errors import CommunityError
from paperfeed.personal.following import following_view, service_search
from paperfeed.personal.for_you import for_you_view
from paperfeed.web import params
from paperfeed.web.context import AppState
from paperfeed.web.page_data import daily_papers_data, paper_detail_data, similar_data, v1_search_data, v1_search_params
from paperfeed.web.respond import dumps

__all__ = ["MAX_BODY", "build_server", "http_app"]

MAX_BODY = 256 * 1024  # an MCP request is a small JSON-RPC message
# ToolAnnotations takes its camelCase aliases; without pydantic's mypy plugin mypy sees only the snake_case names.
READ = ToolAnnotations(readOnlyHint=True, openWorldHint=False)  # type: ignore[call-arg]  # see above
WRITE = ToolAnnotations(  # type: ignore[call-arg]  # see above
    readOnlyHint=False, destructiveHint=False, idempotentHint=True, openWorldHint=False
)


class ToolInputError(ToolError):
    """A bad argument or a refused action: the client sees the message as the tool's error."""


def _json(data: Any) -> Any:
    """The value exactly as the JSON API would send it (dates as ISO strings, ...)."""
    return orjson.loads(dumps(data))


def _paper_id(text: str) -> str:
    parts = params.split_arxiv_id((text or "").strip()[:64])
    if parts is None:
        raise ToolInputError(f"{text[:64]!r} is not an arXiv id (they look like 2405.15738)")
    return parts[0]


def _bounded(name: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ToolInputError(f"{name} must be an integer from {low} to {high}")
    return value


def build_server(state: AppState, community: Community, *, stdio_token: str | None = None) -> MCPServer:
    """The server with its eight tools. ``stdio_token``: the API token of a stdio session (the HTTP
    transport reads ``Authorization: Bearer`` per request instead)."""
    server = MCPServer(
        name="paperfeed",
        title="paperfeed",
        version=__version__,
        instructions=(
            "Research papers: the community daily feed (Hugging Face daily papers shape), hybrid "
            "keyword + semantic search, paper details and similar papers. upvote and submit_paper "
            "need an API token (Authorization: Bearer on HTTP, PAPERFEED_TOKEN on stdio)."
        ),
    )

    def caller(ctx: Context[Any, Any] | None, scope: str) -> User:
        """The owner of the token behind this call, checked for ``scope``; never a cookie session."""
        token = stdio_token
        if token is None and ctx is not None:
            headers = ctx.headers or {}
            auth = headers.get("authorization") or ""
            scheme, _, value = auth.partition(" ")
            token = value.strip() if scheme.lower() == "bearer" else None
        if not token:
            raise ToolInputError(f"This tool needs an API token with the {scope!r} scope (Authorization: Bearer).")
        found = accounts.api_token(community, token)
        if found is None:
            raise ToolInputError("Invalid or revoked API token.")
        if scope not in found.scopes:
            raise ToolInputError(f"This API token lacks the {scope!r} scope.")
        try:
            return require_active(found.user)
        except CommunityError as exc:
            raise ToolInputError(exc.message) from None

    @server.tool(annotations=READ)
    def search_papers(
        query: str,
        mode: Literal["hybrid", "keyword", "semantic"] = "hybrid",
        sort: Literal["relevance", "date", "upvotes"] = "relevance",
        date_from: str | None = None,
        date_to: str | None = None,
        category: str | None = None,
        has_code: bool = False,
        min_upvotes: int = 0,
        limit: int = 20,
        offset: int = 0,
    ) -> dict[str, Any]:
        """Search papers (keyword, semantic or both fused). Query operators: "phrase", -exclude,
        author:NAME, cat:cs.LG, year:2025, after:/before:YYYY-MM-DD. Dates are YYYY-MM-DD
        (publication date); category is comma-separated arXiv categories. Same answer as
        GET /api/v1/search: hits with the paper, score and why it matched."""
        if len(query or "") > 500:
            raise ToolInputError("query must be at most 500 characters")
        _bounded("limit", limit, 1, 100)
        _bounded("offset", offset, 0, 1_000)
        _bounded("min_upvotes", min_upvotes, 0, 1_000_000)
        try:
            sp = v1_search_params(query, mode, sort, date_from, date_to, category, has_code, min_upvotes, limit)
        except params.ParamError as exc:
            raise ToolInputError(f"{exc.field}: {exc.message}") from None
        out, error = v1_search_data(state, sp, limit, offset)
        if out is None:
            raise ToolInputError(error or "the search cannot run")
        return _json(out)

    @server.tool(annotations=READ)
    def daily_papers(
        date: str | None = None,
        week: str | None = None,
        month: str | None = None,
        submitter: str | None = None,
        sort: Literal["upvotes", "publishedAt", "trending"] = "upvotes",
        p: int = 0,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """The daily papers of one day (date=YYYY-MM-DD), ISO week (week=YYYY-Www) or month
        (month=YYYY-MM); none given: the latest day. submitter filters by username. Same answer
        as GET /api/daily_papers (the Hugging Face daily papers shape)."""
        _bounded("p", p, 0, 10_000)
        _bounded("limit", limit, 1, 100)
        given = [(k, v) for k, v in (("day", date), ("week", week), ("month", month)) if v]
        if len(given) > 1:
            raise ToolInputError("give only one of date, week and month")
        period = None
        if given:
            try:
                period = periods.parse_period(given[0][0], given[0][1])
            except periods.PeriodError as exc:
                raise ToolInputError(str(exc)) from None
        if submitter is not None and len(submitter) > 100:
            raise ToolInputError("submitter must be at most 100 characters")
        entries, _total = daily_papers_data(state, period, submitter=submitter or None, sort=sort, p=p, limit=limit)
        return _json(entries)

    @server.tool(annotations=READ)
    def get_paper(paper_id: str) -> dict[str, Any]:
        """One paper by arXiv id (a version suffix is ignored). Same answer as GET /api/papers/{id}."""
        pid = _paper_id(paper_id)
        data = paper_detail_data(state, pid)
        if data is None:
            raise ToolInputError(f"arXiv:{pid} is not in this paperfeed")
        return _json(data)

    @server.tool(annotations=READ)
    def similar_papers(paper_id: str, k: int = 8) -> dict[str, Any]:
        """The k papers most similar to this one (embedding neighbours). Same answer as
        GET /api/v1/papers/{id}/similar."""
        pid = _paper_id(paper_id)
        _bounded("k", k, 1, 50)
        data = similar_data(state, pid, k)
        if data is None:
            raise ToolInputError(f"arXiv:{pid} is not in this paperfeed")
        return _json(data)

    @server.tool(annotations=READ)
    def for_you(ctx: Context[Any, Any], limit: int = 20) -> dict[str, Any]:
        """Recent papers ranked for the token's owner from their library, upvotes, authored papers
        and "not interested" feedback, each with why (reasons) and relevance (0..1). Needs an API
        token with the 'read' scope. Same answer as GET /api/v1/me/for-you."""
        user = caller(ctx, "read")
        _bounded("limit", limit, 1, 100)
        return _json(for_you_view(community, user, limit=limit))

    @server.tool(annotations=READ)
    def following(ctx: Context[Any, Any]) -> dict[str, Any]:
        """New papers (the last 7 listing days) from the authors, categories and saved searches the
        token's owner follows, each with why. Needs an API token with the 'read' scope. Same answer
        as GET /api/v1/me/following."""
        user = caller(ctx, "read")
        return _json(following_view(community, user, service_search(state.search())))

    @server.tool(annotations=WRITE)
    def upvote(paper_id: str, ctx: Context[Any, Any], up: bool = True) -> dict[str, Any]:
        """Upvote a paper (up=false takes the upvote back); idempotent. Needs an API token with the
        'vote' scope. Same answer as POST/DELETE /api/papers/{id}/upvote."""
        user = caller(ctx, "vote")
        try:
            done = votes.set_vote(community, user, _paper_id(paper_id), up)
        except CommunityError as exc:  # unknown paper, rate limit, ...: the JSON API's message
            raise ToolInputError(exc.message) from None
        state.version.invalidate()  # this process's cached pages show the vote at once, as after the API's
        return _json(done.as_json())

    @server.tool(annotations=WRITE)
    def submit_paper(arxiv_id: str, ctx: Context[Any, Any]) -> dict[str, Any]:
        """Submit a paper (arXiv id or abs/pdf URL) to today's daily feed. Needs an API token with
        the 'submit' scope. Same answer as POST /api/papers/index."""
        user = caller(ctx, "submit")
        try:
            done = submissions.submit(community, user, (arxiv_id or "")[:300])
        except CommunityError as exc:  # too old, already listed, quota, ...: the JSON API's message
            raise ToolInputError(exc.message) from None
        state.version.invalidate()
        return _json(done.as_json())

    return server


def _security(base_url: str) -> TransportSecuritySettings:
    """Host/Origin allow-list: the site's own address (and loopback, for local clients)."""
    parts = urlsplit(base_url)
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost"]
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    if parts.netloc:
        hosts.append(parts.netloc)
        origins.append(f"{parts.scheme}://{parts.netloc}")
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


def http_app(server: MCPServer, base_url: str) -> Starlette:
    """The streamable HTTP app for ``/mcp`` (its session manager must run in the host's lifespan:
    ``server.session_manager.run()``)."""
    return server.streamable_http_app(
        streamable_http_path="/mcp",
        json_response=True,
        stateless_http=True,
        max_request_body_size=MAX_BODY,
        transport_security=_security(base_url),
    )
