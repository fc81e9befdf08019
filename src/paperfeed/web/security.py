"""Sessions, CSRF protection and the current visitor, for every request of the web app.

One pure-ASGI middleware (:class:`CommunityMiddleware`, installed by ``community_routes.register``)
does three things per request:

* **Session**: reads the ``pf_session`` cookie - itsdangerous-signed JSON ``{s: session id,
  c: CSRF token}``, HttpOnly, SameSite=Lax, Secure when the request came over https - and writes
  it back only when it changed. The session id is a random secret whose hash names a row of the
  ``sessions`` table (``community/sessions.py``): signing out deletes that row, so a copy of the
  cookie is worthless afterwards; a password change/reset or a ban deletes all of the user's rows.
  Anonymous visitors have only a CSRF token (no row). One indexed lookup per request, at most.
* **CSRF**: every POST/PUT/PATCH/DELETE needs the session's token, as the ``csrf_token`` form
  field or the ``X-CSRF-Token`` header - anonymous visitors too. Requests authenticated with
  ``Authorization: Bearer`` are exempt (browsers cannot attach that header cross-site) when the token
  is valid - a junk or revoked token is a 401 - and so
  is RFC 8058 one-click unsubscribe, which mail clients post without cookies (its signed URL
  token is the protection). Bodies are read here with a size cap (413) and replayed downstream.
* **API tokens**: a Bearer token works only under ``/api/`` (on a form route or account page it
  is a 403; on a GET of a page it is ignored, and so is another site's token - an ``hf_...`` one
  from a Hugging Face client - on an API read) and only for what its scopes allow: ``read`` for
  GET/HEAD, and for a write the scope its endpoint declares with :func:`token_scope` (checked by
  the write API's :func:`check_token_scope` dependency; an undeclared one refuses tokens). A token
  without the scope gets a 403 naming it.
* **Token in forms**: instead of asking every template to print the token, the middleware adds
  ``<input type="hidden" name="csrf_token">`` to each same-site ``<form method="post">`` of an
  HTML page as it leaves (templates write ``<form`` in lower case; user content can never
  produce a form tag, since it is escaped or sanitised without ``form``). Pages stay cacheable
  (the web cache stores them without a token); the response with the token is marked ``private``
  and ``Vary: Cookie``, and its ETag carries a hash of the token so a 304 never revives a page
  holding another session's token. A page that said ``no-store`` (it shows a secret or personal
  data: account, new API token, reset and digest links) keeps ``no-store``.

Routes get the visitor with :func:`viewer` (user loaded lazily, at most one query per request);
templates call the ``viewer()`` global, which reads the same object from a context variable.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import orjson
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paperfeed.community import accounts, sessions
from paperfeed.community import comments as comment_service
from paperfeed.community import votes as vote_service
from paperfeed.community.core import Community, User
from paperfeed.community.errors import Forbidden

COOKIE = "pf_session"
API_PREFIX = "/api/"  # the JSON API: with /mcp, the only places API tokens work
TOKEN_PREFIXES = (API_PREFIX, "/mcp")  # /mcp: the MCP server (web/mcp_server.py), token-only
TOKEN_SCOPE_ATTR = "pf_token_scope"
MAX_AGE = 30 * 24 * 3600
MAX_BODY = 1024 * 1024  # forms and write-API bodies; nothing legitimate comes near this
HEADER = "x-csrf-token"
FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# RFC 8058 one-click unsubscribe: posted by mail clients without cookies; protected by its signed token.
# /mcp never reads cookies (its write tools need a Bearer token), so a cross-site post has no
# session to ride on there; MCP clients send JSON-RPC without a CSRF token.
CSRF_EXEMPT = ("/digest/unsubscribe", "/mcp")
_POST_RE = re.compile(rb"""\bmethod\s*=\s*["']?post\b""", re.I)
_ACTION_RE = re.compile(rb"""\baction\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)
_TAGGED = re.compile(r'^(W/)?"([^"]*)\.c([0-9a-f]{8})"$')

_F = TypeVar("_F", bound=Callable[..., Any])
_current: ContextVar[Viewer | None] = ContextVar("paperfeed_viewer", default=None)


# -- the session cookie -----------------------------------------------------------------------


@dataclass
class Session:
    """What the cookie holds: the server-side session's secret id (signed in) and the CSRF token."""

    sid: str | None = None
    csrf: str | None = None
    dirty: bool = False

    def token(self) -> str:
        """The CSRF token, created (and the cookie scheduled) on first need."""
        if not self.csrf:
            self.csrf = secrets.token_urlsafe(32)
            self.dirty = True
        return self.csrf

    def sign_in(self, sid: str) -> None:
        """A new session id and CSRF token on every sign-in: nothing planted before it survives."""
        self.sid, self.csrf, self.dirty = sid, secrets.token_urlsafe(32), True

    def sign_out(self) -> None:
        self.sid, self.csrf, self.dirty = None, secrets.token_urlsafe(32), True


class SessionCodec:
    def __init__(self, secret: str) -> None:
        self._s = URLSafeTimedSerializer(
            secret, salt="paperfeed.session", signer_kwargs={"digest_method": hashlib.sha256}
        )

    def dumps(self, session: Session) -> str:
        data: dict[str, Any] = {"c": session.csrf}
        if session.sid is not None:
            data["s"] = session.sid
        return self._s.dumps(data)

    def loads(self, value: str | None) -> Session:
        """The session in a cookie; a missing, forged, expired or malformed one is a new session.
        (Cookies from before server-side sessions carry no ``s``: they are simply signed out.)"""
        if not value or len(value) > 4096:
            return Session()
        try:
            data = self._s.loads(value, max_age=MAX_AGE)
        except (BadSignature, ValueError, TypeError):
            return Session(dirty=True)  # replace the bad cookie
        if not isinstance(data, dict):
            return Session(dirty=True)
        sid, csrf = data.get("s"), data.get("c")
        if not isinstance(sid, str | None) or not isinstance(csrf, str | None):
            return Session(dirty=True)
        return Session(sid=sid or None, csrf=csrf or None)


# -- the visitor ------------------------------------------------------------------------------


class Viewer:
    """Who is asking: the session, the (lazily loaded) user, and per-request helpers for templates."""

    def __init__(
        self, community: Community, session: Session, bearer: str | None, ip: str | None, user_agent: str | None = None
    ) -> None:
        self.community = community
        self.session = session
        self.bearer = bearer
        self.ip = ip
        self.user_agent = user_agent
        self.token_scopes: frozenset[str] | None = None  # set for Bearer requests (None: cookie session)
        self._user: User | None = None
        self._loaded = False
        self._votes: dict[str, bool] = {}

    @property
    def user(self) -> User | None:
        if not self._loaded:
            self._loaded = True
            self._user = self._load()
        return self._user

    def _load(self) -> User | None:
        if self.bearer is not None:
            # Token requests never fall back to the cookie: they are exempt from CSRF.
            token = accounts.api_token(self.community, self.bearer)
            if token is None:
                return None
            self.token_scopes = token.scopes
            return token.user
        if self.session.sid is None:
            return None
        found = sessions.resolve(self.community, self.session.sid)
        if found is None:
            self.session.sign_out()  # signed out elsewhere, expired, password changed, banned
            return None
        if found.renewed:
            self.session.dirty = True  # the server moved the expiry on: renew the cookie's too
        return found.user

    def sign_in(self, user: User) -> None:
        """Start a new server-side session (ending the one this browser had, if any)."""
        if self.session.sid is not None:
            sessions.end(self.community, self.session.sid)
        self.session.sign_in(sessions.start(self.community, user, self.user_agent))
        self._user, self._loaded = user, True

    def sign_out(self) -> None:
        if self.session.sid is not None:
            sessions.end(self.community, self.session.sid)
        self.session.sign_out()
        self._user, self._loaded = None, True

    # Template helpers (called while a page renders).
    def voted(self, paper_id: str) -> bool:
        user = self.user
        if user is None:
            return False
        if paper_id not in self._votes:
            self._votes[paper_id] = paper_id in vote_service.voted(self.community, user, [paper_id])
        return self._votes[paper_id]

    def thread(self, paper_id: str) -> list[dict[str, Any]]:
        return comment_service.thread(self.community, paper_id, self.user)

    def comments(self, paper_id: str) -> tuple[list[dict[str, Any]], int]:
        """The thread and how many comments in it are visible to everybody."""
        items = self.thread(paper_id)
        count, stack = 0, list(items)
        while stack:
            node = stack.pop()
            count += not node["removed"] and not node["hidden"]
            stack.extend(node["children"])
        return items, count


def viewer(request: Request) -> Viewer:
    """The current visitor (set up by the middleware)."""
    found = request.scope.get("state", {}).get("pf_viewer")
    if found is None:
        raise RuntimeError("CommunityMiddleware is not installed")
    return found


def signed_in_user(request: Request) -> User | None:
    """The signed-in visitor of ``request``, or None when signed out or banned (a banned account
    sees the personal pages as a visitor does)."""
    user = viewer(request).user
    return user if user is not None and not user.banned else None


def current_viewer() -> Viewer | None:
    """For templates (the ``viewer()`` global): the visitor of the request being rendered."""
    return _current.get()


# -- the middleware ---------------------------------------------------------------------------


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _cookie(scope: Scope, name: str) -> str | None:
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    for part in raw.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value.strip('"')
    return None


def _bearer(scope: Scope) -> str | None:
    auth = _header(scope, b"authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return None


def _token_tag(token: str) -> str:
    return hashlib.blake2b(token.encode(), digest_size=4).hexdigest()


class CommunityMiddleware:
    def __init__(self, app: ASGIApp, community: Community, exempt: tuple[str, ...] = CSRF_EXEMPT) -> None:
        self.app = app
        self.community = community
        self.codec = SessionCodec(community.settings.secret())
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session = self.codec.loads(_cookie(scope, COOKIE))
        method = scope["method"]
        bearer = _bearer(scope)
        if bearer is not None and method in SAFE_METHODS and not _ours_for_reading(scope["path"], bearer):
            bearer = None  # pages read the browser session; another site's token does not concern us
        client = scope.get("client")
        view = Viewer(self.community, session, bearer, client[0] if client else None, _header(scope, b"user-agent"))
        scope.setdefault("state", {})["pf_viewer"] = view
        ctx_token = _current.set(view)
        try:
            routed = _routed(scope)
            if bearer is not None and routed and method != "OPTIONS":
                refused = await anyio.to_thread.run_sync(_token_refusal, scope, view)
                if refused is not None:
                    status, message, extra = refused
                    headers = {"WWW-Authenticate": 'Bearer realm="paperfeed"'} if status == 401 else None
                    await self._reject(scope, send, status, message, headers=headers, extra=extra)
                    return
            if method not in SAFE_METHODS:
                body = await self._read_body(scope, receive, send)
                if body is None:
                    return
                if bearer is None and not scope["path"].startswith(self.exempt) and routed:
                    if not await self._csrf_ok(scope, body, session):
                        await self._reject(
                            scope,
                            send,
                            403,
                            "This form has expired or did not come from this "
                            "site (missing or wrong CSRF token). Reload the page and try again.",
                        )
                        return
                receive = _replay(body, receive)
            else:
                self._strip_foreign_etags(scope, session.csrf)
            await self.app(scope, receive, self._sender(scope, send, session))
            if method not in SAFE_METHODS:
                _invalidate_page_cache(scope)
        finally:
            _current.reset(ctx_token)

    # -- request side --

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
            await self._reject(scope, send, 413, "The request body is too large.")
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                await self._reject(scope, send, 413, "The request body is too large.")
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _csrf_ok(self, scope: Scope, body: bytes, session: Session) -> bool:
        expected = session.csrf
        if not expected:
            return False
        sent = _header(scope, b"x-csrf-token")
        if sent is None:
            ctype = (_header(scope, b"content-type") or "").lower()
            if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
                try:
                    form = await Request(scope, _replay(body, None)).form()
                    value = form.get(FIELD)
                    sent = value if isinstance(value, str) else None
                    await form.close()
                except Exception:  # a malformed body is simply "no token"; the route never runs
                    sent = None
        if not sent:
            return False
        return hmac.compare_digest(sent.encode("utf-8", "replace"), expected.encode())

    def _strip_foreign_etags(self, scope: Scope, token: str | None) -> None:
        """Undo our ETag tagging on If-None-Match: keep tags made for this token, drop others."""
        inm = _header(scope, b"if-none-match")
        if not inm or ".c" not in inm:
            return
        mine = _token_tag(token) if token else None
        kept = []
        for tag in (t.strip() for t in inm.split(",")):
            m = _TAGGED.match(tag)
            if m is None:
                kept.append(tag)
            elif m.group(3) == mine:
                kept.append(f'{m.group(1) or ""}"{m.group(2)}"')
                scope["state"]["pf_etag_tagged"] = True
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"if-none-match"]
        if kept:
            headers.append((b"if-none-match", ", ".join(kept).encode("latin-1")))
        scope["headers"] = headers

    async def _reject(
        self, scope: Scope, send: Send, status: int, message: str, headers: dict[str, str] | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        request = Request(scope)
        response: Response | None = None
        if not scope["path"].startswith("/api/") and "application/json" not in (_header(scope, b"accept") or ""):
            try:
                from paperfeed.web.respond import error_response

                response = error_response(request, status, message, title="Request refused")
            except Exception:  # the app's error page is optional here (tiny test apps)
                response = None
        if response is None:
            response = Response(orjson.dumps({"detail": message, **(extra or {})}), status,
                                media_type="application/json")  # fmt: skip
        response.headers.update(headers or {})
        await response(scope, _no_receive, send)

    # -- response side --

    def _sender(self, scope: Scope, send: Send, session: Session) -> Send:
        start: Message | None = None
        chunks: list[bytes] = []
        hold = scope["method"] != "HEAD"

        async def wrapped(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if hold and ctype.startswith(b"text/html"):
                    start = message  # hold it: the body may get tokens, which changes headers
                    return
                await send(self._finish_headers(scope, message, session, tagged=False))
                return
            if message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body, tagged = self._add_tokens(b"".join(chunks), session)
                start_message = self._finish_headers(scope, start, session, tagged=tagged, length=len(body))
                start = None
                await send(start_message)
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
            await send(message)

        return wrapped

    def _add_tokens(self, body: bytes, session: Session) -> tuple[bytes, bool]:
        """Insert the hidden token field after every same-site ``<form method="post">`` tag.

        The templates write form tags in lower case; ``bytes.find`` locates them much faster than
        a case-insensitive regex over the whole page (a feed page has a form per card).
        """
        out: list[bytes] = []
        pos = start = 0
        field = b""
        while True:
            at = body.find(b"<form", start)
            if at < 0:
                break
            end = body.find(b">", at)
            if end < 0:
                break
            tag = body[at : end + 1]
            start = end + 1
            if not _POST_RE.search(tag) or not _same_site(tag):
                continue
            if not field:
                field = f'<input type="hidden" name="{FIELD}" value="{session.token()}">'.encode()
            out.append(body[pos:start])
            out.append(field)
            pos = start
        if not out:
            return body, False
        out.append(body[pos:])
        return b"".join(out), True

    def _finish_headers(
        self, scope: Scope, message: Message, session: Session, *, tagged: bool, length: int | None = None
    ) -> Message:
        headers = list(message.get("headers", []))
        if length is not None:
            headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
            headers.append((b"content-length", str(length).encode()))
        retag = tagged or (message["status"] == 304 and scope["state"].get("pf_etag_tagged"))
        private = None
        if retag and session.csrf:
            suffix = f'.c{_token_tag(session.csrf)}"'.encode()
            headers = [(k, v[:-1] + suffix if k.lower() == b"etag" and v.endswith(b'"') else v) for k, v in headers]
            headers.append((b"vary", b"Cookie"))
            private = b"private, no-cache"  # revalidate, but never from a shared cache
            if any(k.lower() == b"cache-control" and b"no-store" in v.lower() for k, v in headers):
                private = b"private, no-store"  # never weaken a page that holds a secret (token, link)
        if session.dirty:
            headers.append((b"set-cookie", self._cookie_header(scope, session).encode("latin-1")))
            private = private or b"private, no-store"
        if private is not None:
            headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
            headers.append((b"cache-control", private))
        return {**message, "headers": headers}

    def _cookie_header(self, scope: Scope, session: Session) -> str:
        value = self.codec.dumps(session)
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        return f"{COOKIE}={value}; Path=/; Max-Age={MAX_AGE}; HttpOnly; SameSite=Lax{secure}"


def _invalidate_page_cache(scope: Scope) -> None:
    """After a write, this worker's cached pages re-check the data version at once (the redirect
    that follows a vote or comment must show it); other workers see it within their interval."""
    state = getattr(getattr(scope.get("app"), "state", None), "pf", None)
    version = getattr(state, "version", None)
    if version is not None:
        version.invalidate()


def _routed(scope: Scope) -> bool:
    """Whether a route takes this method and path; others get the app's own 404/405, not a CSRF
    or token answer."""
    router = getattr(scope.get("app"), "router", None)
    if router is None:
        return True
    for route in router.routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return True
    return False


# -- API tokens -------------------------------------------------------------------------------


class MissingScope(Forbidden):
    """A token request to an endpoint its scopes do not cover (``scope``: what it would need)."""

    def __init__(self, scope: str | None) -> None:
        if scope is None:
            super().__init__("This endpoint does not accept API tokens.")
        else:
            super().__init__(f"This token lacks the {scope!r} scope. Create a token with it on /account.")
        self.scope = scope


def token_scope(name: str) -> Callable[[_F], _F]:
    """Mark a JSON API write endpoint as usable with a Bearer token that has scope ``name``.

    :func:`check_token_scope` (a dependency of the write API router) refuses tokens on endpoints
    without this mark: a new endpoint must say which scope it needs before a token can reach it.
    """

    def mark(endpoint: _F) -> _F:
        setattr(endpoint, TOKEN_SCOPE_ATTR, name)
        return endpoint

    return mark


def check_token_scope(request: Request) -> None:
    """Dependency: a Bearer request may reach this endpoint only with the scope it declares."""
    view = viewer(request)
    if view.bearer is None or request.method in SAFE_METHODS:
        return  # cookie sessions: role checks only; token reads were checked by the middleware
    needed = getattr(request.scope.get("endpoint"), TOKEN_SCOPE_ATTR, None)
    if needed is None or needed not in (view.token_scopes or frozenset()):
        raise MissingScope(needed)


def _ours_for_reading(path: str, bearer: str) -> bool:
    """Whether a read should be authenticated by this Bearer value: only on the JSON API (and /mcp),
    and only when it looks like one of our tokens. Hugging Face clients pointed at the HF-compatible
    API send the user's ``hf_...`` token with every request; reads stay anonymous for them instead of 401."""
    return path.startswith(TOKEN_PREFIXES) and bearer.startswith(accounts.TOKEN_PREFIX)


def _token_refusal(scope: Scope, view: Viewer) -> tuple[int, str, dict[str, str] | None] | None:
    """Why this Bearer request may not go on (status, message, extra JSON fields), or None.

    Runs in a worker thread (it loads the token). A junk or revoked token is a 401, never an
    anonymous pass around the CSRF check; a real one works only on the JSON API, reads need the
    ``read`` scope, and writes the scope of their endpoint (:func:`check_token_scope`).
    """
    if view.user is None:
        return 401, "Invalid or revoked API token.", None
    if not scope["path"].startswith(TOKEN_PREFIXES):
        return 403, ("API tokens work only on the JSON API (/api/...). Forms and account settings need a "
                     "signed-in browser session."), None  # fmt: skip
    if scope["method"] in SAFE_METHODS and "read" not in (view.token_scopes or frozenset()):
        return 403, MissingScope("read").message, {"scope": "read"}
    return None


def _same_site(form_tag: bytes) -> bool:
    """Only forms that post to this site get the token (never leak it to another origin)."""
    m = _ACTION_RE.search(form_tag)
    if m is None:
        return True
    action = (m.group(1) or m.group(2) or m.group(3) or b"").strip()
    return action == b"" or (action.startswith(b"/") and not action.startswith(b"//")) or action.startswith(b"?")


def _replay(body: bytes, receive: Receive | None) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        if receive is None:
            return {"type": "http.disconnect"}
        return await receive()

    return replay


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
