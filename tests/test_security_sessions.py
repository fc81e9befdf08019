"""Issue 10 item 2: a session lives on the server, so signing out ends it there. A cookie copied
before ``POST /signout`` (or before "sign out everywhere", a password change/reset or a ban) no
longer opens ``/account`` nor votes; sign-in always starts a new session id (fixation); old rows
expire and are pruned."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from paperfeed.community import moderation
from paperfeed.community.core import COMMAND_LINE
from paperfeed.config import Settings
from paperfeed.store.db import Database
from paperfeed.store.schema import sessions, votes
from paperfeed.web.security import COOKIE

from . import factories as f
from .community_util import PASSWORD, Web, make_user, second_browser, unlimited, web


@pytest.fixture
def paper(request: pytest.FixtureRequest) -> dict:
    db = request.getfixturevalue("any_db" if "any_db" in request.fixturenames else "db")
    p = f.add_paper(db, title="A paper to vote on")
    f.add_daily(db, p["id"], date(2026, 4, 15))
    return p


def _replay(w: Web, cookie: str) -> Web:
    """Another browser that carries a copy of ``cookie`` (what a thief or a shared computer keeps)."""
    thief = second_browser(w)
    thief.client.cookies.set(COOKIE, cookie, domain="testserver.local")  # where the app's own cookie lives
    return thief


def _vote_count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.scalar(select(func.count()).select_from(votes)) or 0)


def _session_rows(db: Database) -> int:
    with db.read() as conn:
        return int(conn.scalar(select(func.count()).select_from(sessions)) or 0)


def _locked_out(thief: Web, paper_id: str) -> None:
    r = thief.client.get("/account", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/signin"), r.status_code
    r = thief.post(f"/papers/{paper_id}/vote")  # with the CSRF token of the copied cookie's session
    assert r.status_code == 303 and r.headers["location"].startswith("/signin"), (r.status_code, r.headers)
    r = thief.client.post(f"/api/papers/{paper_id}/upvote", headers={"X-CSRF-Token": thief.token()})
    assert r.status_code == 401, r.text


def test_cookie_saved_before_sign_out_no_longer_works(any_db: Database, settings: Settings, paper: dict) -> None:
    w = web(settings, any_db, limits=unlimited())
    make_user(w.community, "alice")
    w.sign_in("alice")
    saved = w.client.cookies[COOKIE]
    thief = _replay(w, saved)
    assert "Your account" in thief.client.get("/account").text  # the copy works while the session lives
    assert w.post("/signout").status_code == 303
    _locked_out(thief, paper["id"])
    assert _vote_count(any_db) == 0
    assert _session_rows(any_db) == 0


def test_sign_out_everywhere_ends_every_session_of_the_user(db: Database, settings: Settings, paper: dict) -> None:
    w = web(settings, db, limits=unlimited())
    make_user(w.community, "alice")
    make_user(w.community, "bob")
    laptop, phone, bob = w, second_browser(w), second_browser(w)
    laptop.sign_in("alice")
    phone.sign_in("alice")
    bob.sign_in("bob")
    page = laptop.client.get("/account").text
    assert "Sign out everywhere" in page and "2 browsers" in page
    r = laptop.post("/account/sessions/end")
    assert r.status_code == 303 and r.headers["location"] == "/signin"
    _locked_out(laptop, paper["id"])
    _locked_out(phone, paper["id"])
    assert "Your account" in bob.client.get("/account").text  # other users are not touched
    assert _session_rows(db) == 1


def test_password_change_reset_and_ban_delete_the_session_rows(db: Database, settings: Settings,
                                                               paper: dict) -> None:  # fmt: skip
    w = web(settings, db, limits=unlimited())
    make_user(w.community, "alice")
    w.sign_in("alice")
    stolen = _replay(w, w.client.cookies[COOKIE])
    r = w.post("/account/password", {"current": PASSWORD, "new": "new password 1", "new2": "new password 1"})
    assert r.status_code == 200
    _locked_out(stolen, paper["id"])
    assert _session_rows(db) == 1  # only the browser that changed it
    stolen = _replay(w, w.client.cookies[COOKIE])
    moderation.set_banned(w.community, COMMAND_LINE, "alice", True, "spam")
    _locked_out(stolen, paper["id"])
    _locked_out(w, paper["id"])
    assert _session_rows(db) == 0


def test_sign_in_starts_a_new_session_id_and_drops_the_old_one(db: Database, settings: Settings) -> None:
    w = web(settings, db, limits=unlimited())
    make_user(w.community, "alice")
    make_user(w.community, "bob")
    w.sign_in("alice")
    first = w.client.cookies[COOKIE]
    w.sign_in("bob")  # signing in again on the same browser (no sign-out in between)
    assert w.client.cookies[COOKIE] != first
    assert _session_rows(db) == 1
    old = _replay(w, first)
    r = old.client.get("/account", follow_redirects=False)
    assert r.status_code == 303


def test_sessions_expire_and_old_rows_are_pruned(db: Database, settings: Settings, paper: dict) -> None:
    w = web(settings, db, limits=unlimited())
    make_user(w.community, "alice")
    make_user(w.community, "bob")
    w.sign_in("alice")
    w.clock.advance(days=31)  # the server-side lifetime is 30 days after the last use
    r = w.client.get("/account", follow_redirects=False)
    assert r.status_code == 303
    assert _session_rows(db) == 1  # still there, but dead
    second_browser(w).sign_in("bob")  # a new sign-in prunes expired rows
    assert _session_rows(db) == 1


def test_active_sessions_stay_alive_while_used(db: Database, settings: Settings) -> None:
    w = web(settings, db, limits=unlimited())
    make_user(w.community, "alice")
    w.sign_in("alice")
    for _ in range(3):
        w.clock.advance(days=20)
        assert "Your account" in w.client.get("/account").text  # each visit pushes the expiry on


def test_account_page_names_each_signed_in_browser(db: Database, settings: Settings) -> None:
    w = web(settings, db, limits=unlimited())
    make_user(w.community, "alice")
    phone = second_browser(w)
    w.client.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    phone.client.headers["User-Agent"] = ("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) "
                                          "Chrome/126.0 Mobile Safari/537.36")  # fmt: skip
    w.sign_in("alice")
    phone.sign_in("alice")
    page = w.client.get("/account").text
    assert "Firefox on Linux <strong>(this browser)</strong>" in page
    assert "Chrome on Android</td>" in page
