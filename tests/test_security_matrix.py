"""The authorization matrix (issue 10, "make the suite catch this class of bug").

Every route that changes state - discovered from the app's route table, so a new route is covered
the moment it exists - is sent by each kind of caller:

    anonymous (with its own anonymous session's CSRF token), a junk Bearer token, a signed-in user,
    a banned user (signed in before the ban), a moderator, an admin, an API token without the
    scope the route needs, and one with it (tokens belong to the admin, so only the scope decides)

and must answer with the status in ``EXPECTED``. A refused request (``no``) must leave every table
exactly as it was (a snapshot of all rows before and after); after an allowed one (``ok``) the
database is put back, so each cell starts from the same state. A state-changing route missing
from ``EXPECTED`` fails the test: whoever adds a route decides who may call it.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, insert, select
from starlette.routing import BaseRoute

from paperfeed.community import accounts, comments, moderation
from paperfeed.community.core import COMMAND_LINE
from paperfeed.config import Settings
from paperfeed.digest import subscriptions as subs
from paperfeed.library import collections as library
from paperfeed.personal import claims
from paperfeed.store import community_store
from paperfeed.store.db import Database
from paperfeed.store.schema import metadata, subscriptions
from paperfeed.web.security import COOKIE

from . import factories as f
from .community_util import PASSWORD, TOKEN_RE, Web, make_user, second_browser, unlimited, web

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
ACTORS = ("anonymous", "junk_token", "user", "banned", "moderator", "admin", "token_without_scope", "token_with_scope")
SCOPES = ("read", "vote", "comment", "submit", "library", "moderate")
RESET_TOKEN = "matrix-reset-token-" + "x" * 24


@dataclass(frozen=True)
class Cell:
    status: int
    allowed: bool  # False: the request is refused and must change nothing


def ok(status: int) -> Cell:
    return Cell(status, True)


def no(status: int) -> Cell:
    return Cell(status, False)


TOKENS_NOT_HERE = {"junk_token": no(401), "token_without_scope": no(403), "token_with_scope": no(403)}


def public(status: int) -> dict[str, Cell]:
    """A form anybody may send with the site's CSRF token (sign-in, sign-up, reset, digest)."""
    return {"anonymous": ok(status), "user": ok(status), "banned": ok(status), "moderator": ok(status),
            "admin": ok(status), **TOKENS_NOT_HERE}  # fmt: skip


def member(status: int, **override: Cell) -> dict[str, Cell]:
    """A form for signed-in, active users; the others are sent to the sign-in page."""
    cells = {"anonymous": no(303), "banned": no(303), "user": ok(status), "moderator": ok(status),
             "admin": ok(status), **TOKENS_NOT_HERE}  # fmt: skip
    return {**cells, **override}


def moderator_form() -> dict[str, Cell]:
    return member(303, user=no(403))


def api(status: int, **override: Cell) -> dict[str, Cell]:
    """The JSON write API: a session (with X-CSRF-Token) or a token with the route's scope."""
    cells = {"anonymous": no(401), "junk_token": no(401), "banned": no(401), "user": ok(status),
             "moderator": ok(status), "admin": ok(status), "token_without_scope": no(403),
             "token_with_scope": ok(status)}  # fmt: skip
    return {**cells, **override}


# (method, route path) -> the scope the route needs from a token, and the answer per caller.
EXPECTED: dict[tuple[str, str], tuple[str | None, dict[str, Cell]]] = {
    ("POST", "/signup"): (None, public(303)),
    ("POST", "/signin"): (None, public(303)),
    ("POST", "/signout"): (None, public(303)),
    ("POST", "/reset"): (None, public(200)),
    ("POST", "/reset/{token}"): (None, public(303)),
    ("POST", "/digest/subscribe"): (None, public(200)),
    ("POST", "/digest/confirm"): (None, public(200)),
    ("POST", "/digest/manage"): (None, public(200)),
    ("POST", "/digest/unsubscribe"): (None, public(200)),
    ("POST", "/account/password"): (None, member(200)),
    ("POST", "/account/sessions/end"): (None, member(303)),
    ("POST", "/account/tokens"): (None, member(201)),
    # Every actor's address is confirmed already: nothing to resend (an unconfirmed account gets a
    # 303 and a mail: tests/test_email_verification.py).
    ("POST", "/account/verify"): (None, member(400, user=no(400), moderator=no(400), admin=no(400))),
    ("POST", "/verify"): (None, public(200)),
    ("POST", "/account/tokens/{token_id}/revoke"): (None, member(303, moderator=no(404), admin=no(404))),
    ("POST", "/submit"): (None, member(303)),
    ("POST", "/papers/{paper_id:path}/vote"): (None, member(303)),
    ("POST", "/papers/{paper_id:path}/comments"): (None, member(303)),
    ("POST", "/comments/{comment_id}/edit"): (None, member(303, moderator=no(403), admin=no(403))),
    ("POST", "/comments/{comment_id}/delete"): (None, member(303, moderator=no(403), admin=no(403))),
    ("POST", "/moderation/comments/{comment_id}"): (None, moderator_form()),
    ("POST", "/moderation/entries/{paper_id:path}"): (None, moderator_form()),
    ("POST", "/moderation/users/{username}"): (None, moderator_form()),
    # Personal (issue 14): follows, authorship claims, the private feed token.
    ("POST", "/follow"): (None, member(303)),
    ("POST", "/unfollow"): (None, member(303)),
    ("POST", "/papers/{paper_id:path}/claim"): (None, member(303)),
    ("POST", "/account/claims/{claim_id}/withdraw"): (None, member(303, moderator=no(404), admin=no(404))),
    ("POST", "/moderation/claims/{claim_id}"): (None, moderator_form()),
    ("POST", "/account/feed-token"): (None, member(201)),
    ("POST", "/account/feed-token/revoke"): (None, member(303)),
    # The library (issue 14): collections belong to their owner (alice's "reading" is a 404 to anyone else).
    ("POST", "/papers/{paper_id:path}/save"): (None, member(303)),
    ("POST", "/papers/{paper_id:path}/collect"): (None, member(303)),
    ("POST", "/papers/{paper_id:path}/feedback"): (None, member(200)),
    ("POST", "/library/collections"): (None, member(303)),
    ("POST", "/library/import"): (None, member(200)),
    ("POST", "/library/{slug}/settings"): (None, member(303, moderator=no(404), admin=no(404))),
    ("POST", "/library/{slug}/delete"): (None, member(303, moderator=no(404), admin=no(404))),
    ("POST", "/library/{slug}/papers/{paper_id:path}/note"): (None, member(303, moderator=no(404), admin=no(404))),
    ("POST", "/library/{slug}/papers/{paper_id:path}/remove"): (None, member(303, moderator=no(404), admin=no(404))),
    ("POST", "/api/library"): ("library", api(201)),
    ("POST", "/api/library/import"): ("library", api(200)),
    ("POST", "/api/papers/{paper_id:path}/save"): ("library", api(200)),
    ("DELETE", "/api/papers/{paper_id:path}/save"): ("library", api(200)),
    ("POST", "/api/papers/{paper_id:path}/feedback"): ("library", api(200)),
    ("DELETE", "/api/papers/{paper_id:path}/feedback"): ("library", api(200)),
    ("POST", "/for-you/settings"): (None, member(303)),
    ("POST", "/for-you/reset"): (None, member(303)),
    ("POST", "/api/papers/index"): ("submit", api(201)),
    ("POST", "/api/papers/{paper_id:path}/upvote"): ("vote", api(200)),
    ("DELETE", "/api/papers/{paper_id:path}/upvote"): ("vote", api(200)),
    ("POST", "/api/papers/{paper_id:path}/comments"): ("comment", api(201)),
    ("POST", "/api/moderation/comments/{comment_id}"): ("moderate", api(200, user=no(403))),
    ("POST", "/api/moderation/entries/{paper_id:path}"): ("moderate", api(200, user=no(403))),
    ("POST", "/api/moderation/users/{username}"): ("moderate", api(200, user=no(403))),
    # A read only admins may make (it names hosts and processes): listed in RESTRICTED_READS too.
    ("GET", "/api/v1/status"): ("read", api(200, user=no(403), moderator=no(403))),
}
# Reads that not everybody may make: checked by the matrix like the state-changing routes.
RESTRICTED_READS = frozenset({("GET", "/api/v1/status")})


# -- discovering the routes -------------------------------------------------------------------


def _leaf_routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, BaseRoute]]:
    """Every endpoint route, through included routers (FastAPI keeps them as wrappers)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from _leaf_routes(inner.routes, prefix + (getattr(context, "prefix", "") or ""))
        elif getattr(route, "routes", None) and not hasattr(route, "endpoint"):
            yield from _leaf_routes(route.routes, prefix + getattr(route, "path", ""))  # a Mount with routes
        else:
            yield prefix + getattr(route, "path", ""), route


# JSON-RPC endpoints whose authorisation is per tool inside one POST route, not per route: the
# MCP server (/mcp) is token-only for its write tools, tested in tests/test_mcp.py.
PROTOCOL_ENDPOINTS = frozenset({"/mcp"})


def state_changing_routes(app: Any) -> set[tuple[str, str]]:
    """Every state-changing route, plus the restricted reads the app has."""
    found = set()
    for path, route in _leaf_routes(app.router.routes):
        if path in PROTOCOL_ENDPOINTS:
            continue
        methods = getattr(route, "methods", None) or set()
        for method in methods & WRITE_METHODS:
            found.add((method, path))
        found.update((method, path) for method in methods if (method, path) in RESTRICTED_READS)
    return found


# -- the world every cell starts from ---------------------------------------------------------


@dataclass
class World:
    w: Web
    browsers: dict[str, Web]  # actor -> a client with that actor's session cookie
    cookies: dict[str, str | None]
    paper: str  # on the daily feed
    other_paper: str  # known, not on the daily feed (for submissions)
    comment: int  # by the user
    claim: int  # the user's pending authorship claim on ``paper``
    token_id: int  # the user's
    digest: dict[str, str]  # confirm / manage / unsubscribe tokens
    verify: str  # a confirmation link's token for an account that signed up on the web
    scoped: dict[str, str]  # scope -> an admin token with only that scope
    unscoped: dict[str, str]  # scope -> an admin token with every scope but that one


def _build(db: Database, settings: Settings) -> World:
    p = f.add_paper(db, title="A paper on the daily feed")
    f.add_daily(db, p["id"], date(2026, 4, 15))
    other = f.add_paper(db, title="A known paper not on the feed yet", published=date(2026, 4, 14))
    w = web(settings, db, limits=unlimited())
    c = w.community
    user = make_user(c, "alice")
    make_user(c, "bob")
    make_user(c, "carol")
    make_user(c, "mod", role="moderator")
    admin = make_user(c, "admin", role="admin")
    comment_id = comments.add_comment(c, user, p["id"], "a comment to act on")
    claim_id = claims.claim(c, user, p["id"], "Ada Lovelace")
    reading = library.create_collection(c, user, "Reading")
    library.add_paper(c, user, p["id"], reading.slug, note="a note")
    _, token_id = accounts.create_api_token(c, user, "alice's token")
    scoped = {s: accounts.create_api_token(c, admin, f"only {s}", [s])[0] for s in SCOPES}
    unscoped = {s: accounts.create_api_token(c, admin, f"all but {s}", [x for x in SCOPES if x != s])[0]
                for s in SCOPES}  # fmt: skip
    for token in [*scoped.values(), *unscoped.values()]:
        assert accounts.api_token(c, token) is not None  # first use records last_used_at now, not mid-matrix
    with db.write() as conn:
        now = c.now()
        expires = now + timedelta(hours=1)
        community_store.insert_password_reset(conn, user.id, accounts.sha256(RESET_TOKEN), now, expires)
    mails: list[Any] = []
    c.send_mail = mails.append
    accounts.sign_up(c, "newcomer", "newcomer@example.org", PASSWORD, ip=None).send_mail()
    c.send_mail = None
    mail = email.message_from_bytes(mails[0].data, policy=email.policy.default)
    verify = re.search(r"/verify\?t=([A-Za-z0-9_.\-]+)", mail.get_content())
    assert verify is not None
    prefs = subs.parse_prefs(frequency="daily")
    subs.request_subscription(db, "reader@example.org", prefs)
    with db.read() as conn:
        sub = conn.execute(select(subscriptions).where(subscriptions.c.email == "reader@example.org")).one()
    tokens = subs.Tokens.from_settings(settings)
    digest = {
        "confirm": tokens.confirm(sub.id, sub.token_nonce, prefs),
        "manage": tokens.manage(sub.id, sub.manage_nonce),
        "unsubscribe": tokens.unsubscribe(sub.id, sub.manage_nonce),
    }
    browsers: dict[str, Web] = {}
    for actor, name in (("user", "alice"), ("banned", "carol"), ("moderator", "mod"), ("admin", "admin")):
        browsers[actor] = second_browser(w)
        browsers[actor].sign_in(name)
    moderation.set_banned(c, COMMAND_LINE, "carol", True, "matrix")  # her browser was signed in before
    browsers["anonymous"] = second_browser(w)
    browsers["anonymous"].token()  # an anonymous session with its own CSRF token
    for actor in ("junk_token", "token_without_scope", "token_with_scope"):
        browsers[actor] = second_browser(w)
    cookies = {actor: b.client.cookies.get(COOKIE) for actor, b in browsers.items()}
    return World(w, browsers, cookies, p["id"], other["id"], comment_id, claim_id, token_id, digest, verify.group(1),
                 scoped, unscoped)  # fmt: skip


def _request(world: World, method: str, route: str) -> tuple[str, dict[str, Any] | None, dict[str, Any] | None]:
    """The concrete path and a body (form fields, or JSON for /api/) that would succeed."""
    pid, cid = world.paper, world.comment
    forms: dict[str, tuple[str, dict[str, Any]]] = {
        "/signup": ("/signup", {"username": "newbie", "email": "newbie@example.org", "password": PASSWORD,
                                "password2": PASSWORD}),
        "/signin": ("/signin", {"login": "bob", "password": PASSWORD}),
        "/signout": ("/signout", {}),
        "/reset": ("/reset", {"email": "bob@example.org"}),
        "/reset/{token}": (f"/reset/{RESET_TOKEN}", {"password": "a fresh password", "password2": "a fresh password"}),
        "/digest/subscribe": ("/digest/subscribe", {"email": "new-reader@example.org", "frequency": "daily"}),
        "/digest/confirm": ("/digest/confirm", {"t": world.digest["confirm"], "timezone": "UTC", "send_hour": "8"}),
        "/digest/manage": ("/digest/manage", {"t": world.digest["manage"], "frequency": "weekly", "timezone": "UTC",
                                              "send_hour": "9"}),
        "/digest/unsubscribe": ("/digest/unsubscribe", {"t": world.digest["unsubscribe"]}),
        "/account/password": ("/account/password", {"current": PASSWORD, "new": "new password 1",
                                                    "new2": "new password 1"}),
        "/account/sessions/end": ("/account/sessions/end", {}),
        "/account/tokens": ("/account/tokens", {"name": "matrix"}),
        "/account/verify": ("/account/verify", {}),
        "/verify": ("/verify", {"t": world.verify}),
        "/account/tokens/{token_id}/revoke": (f"/account/tokens/{world.token_id}/revoke", {}),
        "/submit": ("/submit", {"arxiv_id": world.other_paper}),
        "/papers/{paper_id:path}/vote": (f"/papers/{pid}/vote", {}),
        "/papers/{paper_id:path}/comments": (f"/papers/{pid}/comments", {"body": "a matrix comment"}),
        "/comments/{comment_id}/edit": (f"/comments/{cid}/edit", {"body": "edited by the matrix"}),
        "/comments/{comment_id}/delete": (f"/comments/{cid}/delete", {}),
        "/moderation/comments/{comment_id}": (f"/moderation/comments/{cid}", {"action": "hide", "reason": "m"}),
        "/moderation/entries/{paper_id:path}": (f"/moderation/entries/{pid}", {"action": "hide", "reason": "m"}),
        "/moderation/users/{username}": ("/moderation/users/bob", {"action": "ban", "reason": "m"}),
        "/follow": ("/follow", {"kind": "author", "value": "Ada Lovelace", "next": "/following"}),
        "/unfollow": ("/unfollow", {"kind": "author", "value": "Ada Lovelace", "next": "/following"}),
        "/papers/{paper_id:path}/claim": (f"/papers/{world.other_paper}/claim", {"author_name": "Alan Turing"}),
        "/account/claims/{claim_id}/withdraw": (f"/account/claims/{world.claim}/withdraw", {}),
        "/moderation/claims/{claim_id}": (f"/moderation/claims/{world.claim}", {"action": "confirm"}),
        "/account/feed-token": ("/account/feed-token", {}),
        "/account/feed-token/revoke": ("/account/feed-token/revoke", {}),
        "/papers/{paper_id:path}/save": (f"/papers/{pid}/save", {}),
        "/papers/{paper_id:path}/collect": (f"/papers/{pid}/collect", {"new_collection": "Matrix", "note": "n"}),
        "/papers/{paper_id:path}/feedback": (f"/papers/{pid}/feedback", {"kind": "hidden", "on": "true"}),
        "/library/collections": ("/library/collections", {"name": "Matrix"}),
        "/library/import": ("/library/import", {"text": pid, "new_collection": "Imported"}),
        "/library/{slug}/settings": ("/library/reading/settings", {"name": "Renamed", "public": "true"}),
        "/library/{slug}/delete": ("/library/reading/delete", {}),
        "/library/{slug}/papers/{paper_id:path}/note": (f"/library/reading/papers/{pid}/note", {"note": "new"}),
        "/library/{slug}/papers/{paper_id:path}/remove": (f"/library/reading/papers/{pid}/remove", {}),
        "/for-you/settings": ("/for-you/settings", {"popularity": "0.5", "exclude_words": "quantum"}),
        "/for-you/reset": ("/for-you/reset", {}),
    }  # fmt: skip
    if route in forms:
        path, data = forms[route]
        return path, data, None
    api: dict[str, tuple[str, dict[str, Any] | None]] = {
        "/api/papers/index": ("/api/papers/index", {"arxivId": world.other_paper}),
        "/api/papers/{paper_id:path}/upvote": (f"/api/papers/{pid}/upvote", None),
        "/api/papers/{paper_id:path}/comments": (f"/api/papers/{pid}/comments", {"comment": "via the API"}),
        "/api/moderation/comments/{comment_id}": (f"/api/moderation/comments/{cid}", {"action": "hide", "reason": "m"}),
        "/api/moderation/entries/{paper_id:path}": (f"/api/moderation/entries/{pid}", {"action": "hide",
                                                                                       "reason": "m"}),
        "/api/moderation/users/{username}": ("/api/moderation/users/bob", {"action": "ban", "reason": "m"}),
        "/api/v1/status": ("/api/v1/status", None),
        "/api/library": ("/api/library", {"name": "Via the API"}),
        "/api/library/import": ("/api/library/import", {"text": pid}),
        "/api/papers/{paper_id:path}/save": (f"/api/papers/{pid}/save", {"note": "via the API"}),
        "/api/papers/{paper_id:path}/feedback": (f"/api/papers/{pid}/feedback", {"kind": "not_interested"}),
    }  # fmt: skip
    if method == "DELETE" and route.endswith("/feedback"):
        return f"/api/papers/{pid}/feedback?kind=not_interested", None, None
    path, body = api[route]
    return path, None, body


def _send(world: World, actor: str, method: str, path: str, form: dict[str, Any] | None,
          body: dict[str, Any] | None, scope: str | None) -> Any:  # fmt: skip
    browser = world.browsers[actor]
    browser.client.cookies.clear()
    if world.cookies[actor]:
        browser.client.cookies.set(COOKIE, world.cookies[actor], domain="testserver.local")
    headers: dict[str, str] = {}
    if actor == "junk_token":
        headers["Authorization"] = "Bearer pf_" + "junk" * 10
    elif actor in ("token_without_scope", "token_with_scope"):
        table = world.scoped if actor == "token_with_scope" else world.unscoped
        headers["Authorization"] = "Bearer " + table[scope or "vote"]
    else:
        m = TOKEN_RE.search(browser.client.get("/signin").text)
        assert m, actor
        if form is not None:
            form = {**form, "csrf_token": m.group(1)}
        else:
            headers["X-CSRF-Token"] = m.group(1)
    if form is not None:
        return browser.client.request(method, path, data=form, headers=headers, follow_redirects=False)
    return browser.client.request(method, path, json=body, headers=headers, follow_redirects=False)


# -- snapshot and restore ---------------------------------------------------------------------


def _snapshot(db: Database) -> dict[str, list[tuple]]:
    out = {}
    with db.read() as conn:
        for table in metadata.sorted_tables:
            rows = conn.execute(select(table)).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


def _restore(db: Database, snap: dict[str, list[tuple]]) -> None:
    with db.write() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(delete(table))
        for table in metadata.sorted_tables:
            rows = snap[table.name]
            if "id" in table.c:  # parents before children (comments.parent_id)
                index = [c.name for c in table.columns].index("id")
                rows = sorted(rows, key=lambda r: r[index])
            if rows:
                conn.execute(insert(table), [dict(zip(table.c.keys(), r, strict=True)) for r in rows])


def _diff(before: dict[str, list[tuple]], after: dict[str, list[tuple]]) -> list[str]:
    return [name for name in before if before[name] != after[name]]


# -- the test ---------------------------------------------------------------------------------


def test_every_state_changing_route_is_in_the_matrix(db: Database, settings: Settings) -> None:
    app = web(settings, db).client.app
    routes = state_changing_routes(app)
    assert routes, "no routes discovered: the route walk is broken"
    missing = sorted(routes - set(EXPECTED))
    assert not missing, f"state-changing routes with no expectation in EXPECTED: {missing}"
    stale = sorted(set(EXPECTED) - routes)
    assert not stale, f"EXPECTED lists routes the app no longer has: {stale}"
    for key, (_, cells) in EXPECTED.items():
        assert set(cells) == set(ACTORS), key


@pytest.mark.slow
def test_authorization_matrix(any_db: Database, settings: Settings) -> None:
    world = _build(any_db, settings)
    baseline = _snapshot(any_db)
    failures = []
    for (method, route), (scope, cells) in sorted(EXPECTED.items()):
        path, form, body = _request(world, method, route)
        for actor in ACTORS:
            cell = cells[actor]
            r = _send(world, actor, method, path, form, body, scope)
            after = _snapshot(any_db)
            changed = _diff(baseline, after)
            if r.status_code != cell.status:
                got = f"{r.status_code} (expected {cell.status}) {r.text[:160]!r}"
                failures.append(f"{method} {path} as {actor}: {got}")
            elif not cell.allowed and changed:
                failures.append(f"{method} {path} as {actor}: refused ({r.status_code}) but changed {changed}")
            elif not cell.allowed and cell.status == 303:
                location = r.headers.get("location", "")
                if not location.startswith("/signin"):
                    failures.append(f"{method} {path} as {actor}: refused with a redirect to {location!r}")
            if changed:
                _restore(any_db, baseline)
    assert not failures, "\n".join(failures)
