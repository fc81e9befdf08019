"""CSRF when the request carries no session cookie at all.

The first thing a cross-site attacker's form sends from a browser that never visited the site
is a POST without any cookie. The server then has no token to compare with, and "no expected
token" must mean "refused", never "nothing to check". Every state-changing route is taken from
the app's route table (a new route is covered without editing this file); each gets cookie-less
POSTs with no token, an empty one, a made-up one and another visitor's real token (as a form
field and as the ``X-CSRF-Token`` header). All are a 403 that says CSRF, and the database and the
outbox are left exactly as they were.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from paperfeed.community import comments
from paperfeed.config import Settings
from paperfeed.store.db import Database
from paperfeed.store.schema import metadata
from paperfeed.web.security import CSRF_EXEMPT

from . import factories as f
from .community_util import PASSWORD, TOKEN_RE, make_user, unlimited, web
from .test_security_matrix import WRITE_METHODS, state_changing_routes

# Rows a refused request may legitimately touch: rate-limit counters and session bookkeeping.
_UNTRACKED = re.compile(r"rate_limit|session|signin_failures")


def _state(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    with db.read() as conn:
        for name, table in sorted(metadata.tables.items()):
            if not _UNTRACKED.search(name):
                out[name] = sorted(map(tuple, conn.execute(select(table)).all()), key=repr)
    return out


def _write_routes(app: Any, values: dict[str, str]) -> list[tuple[str, str]]:
    """(method, concrete path) for every state-changing route, path parameters filled in."""
    out = []
    for method, template in sorted(state_changing_routes(app)):
        # Only writes carry a CSRF token; the matrix's admin-only reads (RESTRICTED_READS) are not writes.
        if method in WRITE_METHODS and not template.startswith(CSRF_EXEMPT):
            out.append((method, re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "1"), template)))
    return out


def _form(path: str) -> dict[str, str]:
    """A body that would do something if the route ran: a real sign-in, sign-up, comment..."""
    if path == "/signin":
        return {"login": "alice", "password": PASSWORD}
    if path == "/signup":
        return {"username": "mallory", "email": "m@example.org", "password": PASSWORD, "password2": PASSWORD}
    return {"email": "alice@example.org", "body": "hello", "action": "hide", "reason": "x", "name": "t"}


@pytest.mark.parametrize(
    "token",
    ["missing", "empty", "made-up", "another visitor's, as a field", "another visitor's, as the header"],
)
def test_a_post_without_a_session_cookie_is_refused_whatever_token_it_sends(
    db: Database, settings: Settings, token: str
) -> None:
    w = web(settings, db, limits=unlimited())
    paper = f.add_paper(db, title="A paper to discuss")
    f.add_daily(db, paper["id"], date(2026, 4, 15))
    alice = make_user(w.community, "alice")
    cid = comments.add_comment(w.community, alice, paper["id"], "hello")
    other_visitor = TOKEN_RE.search(w.client.get("/signin").text)
    assert other_visitor is not None
    theirs = other_visitor.group(1)
    routes = _write_routes(
        w.client.app, {"paper_id": paper["id"], "comment_id": str(cid), "username": "alice", "token": "x" * 43}
    )
    assert ("POST", "/signin") in routes and ("POST", f"/moderation/comments/{cid}") in routes
    assert len(routes) >= 20, routes
    before = _state(db)

    for method, path in routes:
        fresh = TestClient(w.client.app, raise_server_exceptions=False)  # a browser with no cookie
        data, headers = _form(path), {}
        if token == "empty":
            data["csrf_token"] = ""
        elif token == "made-up":
            data["csrf_token"] = "A" * 43
        elif token == "another visitor's, as a field":
            data["csrf_token"] = theirs
        elif token == "another visitor's, as the header":
            headers["X-CSRF-Token"] = theirs
        if path.startswith("/api/"):
            r = fresh.request(method, path, json=data, headers=headers, follow_redirects=False)
        else:
            r = fresh.request(method, path, data=data, headers=headers, follow_redirects=False)
        assert r.status_code == 403, (method, path, r.status_code, r.text[:300])
        assert "CSRF" in r.text, (method, path, r.text[:300])
        if path == "/signin":  # a refused sign-in hands out no signed-in session either
            account = fresh.get("/account", follow_redirects=False)
            assert account.status_code == 303 and account.headers["location"].startswith("/signin"), account

    assert _state(db) == before
    assert not settings.outbox_dir.exists() or list(settings.outbox_dir.glob("*.eml")) == []
