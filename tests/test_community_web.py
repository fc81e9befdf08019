"""The community web layer against the real app: CSRF on every POST, the session cookie, session
revocation, reset links, rate-limit answers, SQL fragments, cross-user actions, bans, headers."""

from __future__ import annotations

import email
import re
from datetime import date
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from paperfeed.community import accounts, comments
from paperfeed.community.ratelimit import Limits, Rate
from paperfeed.config import Settings
from paperfeed.store.db import Database
from paperfeed.store.schema import comments as comments_table
from paperfeed.store.schema import papers, users, votes

from . import factories as f
from .community_util import PASSWORD, TOKEN_RE, community, make_user, second_browser, unlimited, web


@pytest.fixture
def paper(request: pytest.FixtureRequest) -> dict:
    """A paper on the daily feed, in whichever database the test uses."""
    db = request.getfixturevalue("any_db" if "any_db" in request.fixturenames else "db")
    p = f.add_paper(db, title="A paper to discuss", imported_upvotes=5)
    f.add_daily(db, p["id"], date(2026, 4, 15))
    return p


def _csp_ok(headers) -> None:  # type: ignore[no-untyped-def]
    csp = headers["content-security-policy"]
    script = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    assert "unsafe-inline" not in script and "unsafe-eval" not in script
    assert "frame-ancestors 'none'" in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"


def test_security_headers_and_cookie_flags(db: Database, settings: Settings, paper: dict) -> None:
    w = web(settings, db, limits=unlimited())
    expected = {"/signin": 200, "/signup": 200, "/reset": 200, f"/papers/{paper['id']}": 200, "/users/nobody": 404,
                "/moderation": 303}  # fmt: skip
    for path, status in expected.items():
        r = w.client.get(path, follow_redirects=False)
        assert r.status_code == status, (path, r.status_code)
        _csp_ok(r.headers)
    r = w.post("/signin", {"login": "x", "password": "y"})
    _csp_ok(r.headers)
    cookie = w.client.get("/signin").headers.get("set-cookie") or ""
    make_user(w.community, "alice")
    r = w.sign_in("alice")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("pf_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie
    https = web(settings, db, limits=unlimited())
    https.client.base_url = https.client.base_url.copy_with(scheme="https")
    r = https.client.get("/signin")
    assert "; Secure" in r.headers["set-cookie"]


def test_every_post_needs_the_csrf_token(db: Database, settings: Settings, paper: dict) -> None:
    w = web(settings, db, limits=unlimited())
    alice = make_user(w.community, "alice")
    make_user(w.community, "mod", role="moderator")
    cid = comments.add_comment(w.community, alice, paper["id"], "hello")
    w.sign_in("mod")
    good = w.token()
    other = second_browser(w).token()  # a valid token of another session
    posts = [
        ("/signin", {"login": "alice", "password": PASSWORD}),
        ("/signup", {"username": "mallory", "email": "m@example.org", "password": PASSWORD, "password2": PASSWORD}),
        ("/signout", {}),
        (f"/papers/{paper['id']}/vote", {}),
        (f"/papers/{paper['id']}/comments", {"body": "csrf comment"}),
        (f"/comments/{cid}/delete", {}),
        (f"/moderation/comments/{cid}", {"action": "hide", "reason": "csrf"}),
        ("/moderation/users/alice", {"action": "ban", "reason": "csrf"}),
        ("/submit", {"arxiv_id": paper["id"]}),
        ("/account/password", {"current": PASSWORD, "new": "x" * 12, "new2": "x" * 12}),
        ("/account/tokens", {"name": "csrf"}),
        ("/reset", {"email": "alice@example.org"}),
        ("/digest/subscribe", {"email": "victim@example.org", "frequency": "daily"}),
    ]
    for path, data in posts:
        for token in (None, "", "forged", other, good[:-1]):
            body = dict(data) if token is None else {**data, "csrf_token": token}
            r = w.client.post(path, data=body, follow_redirects=False)
            assert r.status_code == 403, (path, token, r.status_code)
            assert "CSRF" in r.text
    r = w.client.post(f"/api/papers/{paper['id']}/upvote")  # cookie auth from JS needs the header
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    r = w.client.post(f"/api/papers/{paper['id']}/upvote", headers={"X-CSRF-Token": other})
    assert r.status_code == 403
    with db.read() as conn:
        assert conn.scalar(select(func.count()).select_from(votes)) == 0
        assert conn.scalar(select(func.count()).select_from(users)) == 2
        assert conn.scalar(select(comments_table.c.hidden).where(comments_table.c.id == cid)) is False
    assert w.client.get("/account", follow_redirects=False).status_code == 200  # the refused sign-out did nothing
    # The same requests with the right token work (a sample).
    assert w.client.post(f"/api/papers/{paper['id']}/upvote", headers={"X-CSRF-Token": good}).status_code == 200
    r = w.client.post(f"/moderation/comments/{cid}", data={"action": "hide", "reason": "spam", "csrf_token": good},
                      follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    # Unknown routes keep their 404/405 (no CSRF answer for what does not exist).
    assert w.client.post("/no/such/page").status_code == 404


def test_forms_get_the_token_and_pages_stay_revalidatable(db: Database, settings: Settings, paper: dict) -> None:
    w = web(settings, db, limits=unlimited())
    r = w.client.get("/")
    forms = re.findall(r"<form[^>]*>", r.text)
    posts = [x for x in forms if 'method="post"' in x]
    assert posts and r.text.count('name="csrf_token"') == len(posts)
    assert r.headers["cache-control"] == "private, no-cache" and "Cookie" in r.headers["vary"]
    etag = r.headers["etag"]
    assert w.client.get("/", headers={"If-None-Match": etag}).status_code == 304
    stranger = second_browser(w)
    assert stranger.client.get("/", headers={"If-None-Match": etag}).status_code == 200  # not someone else's token
    assert TOKEN_RE.search(w.client.get("/signin").text).group(1) == TOKEN_RE.search(r.text).group(1)


def test_sign_up_in_out_and_form_errors(db: Database, settings: Settings) -> None:
    w = web(settings, db, limits=unlimited())
    r = w.post("/signup", {"username": "<b>x</b>", "email": "a@example.org", "password": PASSWORD,
                           "password2": PASSWORD})  # fmt: skip
    assert r.status_code == 400 and "Invalid username" in r.text and "&lt;b&gt;x&lt;/b&gt;" in r.text
    r = w.post("/signup", {"username": "alice", "email": "a@example.org", "password": PASSWORD, "password2": "other"})
    assert r.status_code == 400 and "differ" in r.text
    r = w.post("/signup", {"username": "alice", "email": "a@example.org", "password": PASSWORD,
                           "password2": PASSWORD, "next": "//evil.example/"})  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == "/"  # never an off-site redirect
    assert "alice" in w.client.get("/account").text
    assert w.post("/signout").status_code == 303
    assert w.client.get("/account", follow_redirects=False).headers["location"].startswith("/signin")
    r = w.post("/signin", {"login": "alice", "password": "wrong password"})
    assert r.status_code == 400 and "Wrong username or password" in r.text
    r = w.post("/signin", {"login": "alice", "password": PASSWORD, "next": "/users/alice"})
    assert r.status_code == 303 and r.headers["location"] == "/users/alice"


def test_password_change_signs_out_other_sessions(any_db: Database, settings: Settings) -> None:
    w = web(settings, any_db, limits=unlimited())
    make_user(w.community, "alice")
    other = second_browser(w)
    w.sign_in("alice")
    other.sign_in("alice")
    assert "Your account" in other.client.get("/account").text
    r = w.post("/account/password", {"current": PASSWORD, "new": "new password 1", "new2": "new password 1"})
    assert r.status_code == 200 and "Password changed" in r.text
    assert "Your account" in w.client.get("/account").text  # this browser stays in
    r = other.client.get("/account", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/signin")  # the other one is out


def test_reset_link_works_once_in_the_browser(db: Database, settings: Settings) -> None:
    w = web(settings, db, limits=unlimited())
    make_user(w.community, "alice")
    r = w.post("/reset", {"email": "alice@example.org"})
    assert r.status_code == 200 and "If an account uses that address" in r.text
    r2 = w.post("/reset", {"email": "nobody@example.org"})
    assert r2.status_code == 200 and "If an account uses that address" in r2.text  # same answer
    (mail,) = settings.outbox_dir.glob("*.eml")
    body = email.message_from_bytes(mail.read_bytes()).get_payload(decode=True).decode()
    path = "/reset/" + body.split("/reset/", 1)[1].split()[0]
    assert w.client.get(path).status_code == 200
    r = w.post(path, {"password": "a fresh password", "password2": "a fresh password"})
    assert r.status_code == 303 and r.headers["location"] == "/account"
    assert w.client.get(path).status_code == 400
    r = w.post(path, {"password": "another password", "password2": "another password"})
    assert r.status_code == 400 and "already used" in r.text
    assert accounts.sign_in(w.community, "alice", "a fresh password", ip=None)


def test_rate_limits_answer_429_with_retry_after(db: Database, settings: Settings, paper: dict) -> None:
    limits = Limits(vote_user=Rate(2, 60), comment_user=Rate(1, 60), signin_ip=Rate(3, 60))
    w = web(settings, db, limits=limits)
    make_user(w.community, "alice")
    w.sign_in("alice")
    token = w.token()
    url = f"/papers/{paper['id']}/vote"
    for _ in range(2):
        assert w.client.post(url, data={"csrf_token": token}, headers={"Accept": "application/json"}).status_code == 200
    r = w.client.post(url, data={"csrf_token": token}, headers={"Accept": "application/json"})
    assert r.status_code == 429 and r.headers["retry-after"] == "30" and "Too many votes" in r.json()["detail"]
    r = w.client.post(url, data={"csrf_token": token})
    assert r.status_code == 429 and r.headers["retry-after"] and "Too many votes" in r.text and "<html" in r.text
    assert w.post(f"/papers/{paper['id']}/comments", {"body": "one"}).status_code == 303
    r = w.post(f"/papers/{paper['id']}/comments", {"body": "two"})
    assert r.status_code == 429 and r.headers["retry-after"] == "60"
    stranger = second_browser(w)
    for _ in range(2):  # (the sign-in above used one attempt from this address)
        stranger.post("/signin", {"login": "alice", "password": "nope nope"})
    r = stranger.post("/signin", {"login": "alice", "password": PASSWORD})
    assert r.status_code == 429 and "sign-in attempts" in r.text and r.headers["retry-after"]


SQL = ["' OR '1'='1", "'; DROP TABLE users; --", '" OR ""="', "1; DELETE FROM votes", "nul\x00byte", "%' --",
       "admin'--", "1 UNION SELECT password_hash FROM users"]  # fmt: skip


def test_sql_fragments_in_every_input_are_harmless(any_db: Database, settings: Settings, paper: dict) -> None:
    w = web(settings, any_db, limits=unlimited())
    make_user(w.community, "alice")
    make_user(w.community, "moddy", role="moderator")
    token, _ = accounts.create_api_token(w.community, accounts.user_by_name(w.community, "alice"), "t")
    bearer = {"Authorization": f"Bearer {token}"}
    w.sign_in("moddy")
    cid = comments.add_comment(w.community, accounts.user_by_name(w.community, "alice"), paper["id"], "x")
    # The answer each request gets, whatever the fragment: a clear refusal, or (where the text is
    # simply data: a comment body, a token name) success - never a 5xx and never a different answer.
    expected = [400, 400, 400, 400, 303, 422, 400, 400, 404, 201, 404, 400, 404, 201, 400, 404]
    for s in SQL:
        seg = quote(s, safe="")  # as a browser puts it in a path
        statuses = [
            w.post("/signup", {"username": s, "email": s, "password": s, "password2": s}).status_code,
            second_browser(w).post("/signin", {"login": s, "password": s}).status_code,
            w.post("/reset", {"email": s}).status_code,
            w.post("/submit", {"arxiv_id": s}).status_code,
            w.post(f"/papers/{paper['id']}/comments", {"body": s, "parent_id": "1"}).status_code,
            w.post(f"/papers/{paper['id']}/comments", {"body": s, "parent_id": s}).status_code,
            w.post(f"/moderation/comments/{cid}", {"action": s, "reason": s}).status_code,
            w.post("/moderation/users/alice", {"action": "role", "role": s}).status_code,
            w.post(f"/moderation/users/{seg}", {"action": "ban", "reason": s}).status_code,
            w.post("/account/tokens", {"name": s}).status_code,
            w.client.get(f"/users/{seg}").status_code,
            w.client.get(f"/reset/{seg}").status_code,
            w.client.post(f"/api/papers/{seg}/upvote", headers=bearer).status_code,
            w.client.post(f"/api/papers/{paper['id']}/comments", json={"comment": s}, headers=bearer).status_code,
            w.client.post("/api/papers/index", json={"arxivId": s}, headers=bearer).status_code,
            w.client.post(f"/papers/{seg}/vote", data={"csrf_token": w.token()}).status_code,
        ]
        assert statuses == expected, (s, statuses)
    with any_db.read() as conn:  # nothing was dropped, nobody was created or changed
        assert [r.username for r in conn.execute(select(users.c.username).order_by(users.c.id))] == ["alice", "moddy"]
        assert conn.scalar(select(func.count()).select_from(papers)) == 1
        assert conn.scalar(select(users.c.role).where(users.c.username == "alice")) == "user"


def test_one_user_cannot_act_for_another(any_db: Database, settings: Settings, paper: dict) -> None:
    w = web(settings, any_db, limits=unlimited())
    alice, bob = make_user(w.community, "alice"), make_user(w.community, "bob")
    cid = comments.add_comment(w.community, alice, paper["id"], "alice's words")
    w.sign_in("bob")
    assert w.client.get(f"/comments/{cid}/edit").status_code == 403
    assert w.post(f"/comments/{cid}/edit", {"body": "bob's words"}).status_code == 403
    assert w.post(f"/comments/{cid}/delete").status_code == 403
    r = w.post(f"/papers/{paper['id']}/vote", {"user_id": str(alice.id), "username": "alice"})
    assert r.status_code == 303
    bob_token, bob_token_id = accounts.create_api_token(w.community, bob, "bob")
    alice_token, alice_token_id = accounts.create_api_token(w.community, alice, "alice")
    assert w.post(f"/account/tokens/{alice_token_id}/revoke").status_code == 404
    r = w.client.delete(f"/api/papers/{paper['id']}/upvote", headers={"Authorization": f"Bearer {bob_token}"})
    assert r.json()["upvoted"] is False
    with any_db.read() as conn:
        assert conn.execute(select(votes.c.user_id)).all() == []  # bob voted and unvoted for himself only
        assert conn.scalar(select(comments_table.c.body).where(comments_table.c.id == cid)) == "alice's words"
    assert accounts.user_for_api_token(w.community, alice_token).id == alice.id
    assert w.client.get("/users/alice", headers={"Accept": "application/json"}).json().get("email") is None


def test_banned_user_can_do_nothing_on_the_web(any_db: Database, settings: Settings, paper: dict) -> None:
    w = web(settings, any_db, limits=unlimited())
    alice = make_user(w.community, "alice")
    make_user(w.community, "moddy", role="moderator")
    token, _ = accounts.create_api_token(w.community, alice, "t")
    w.sign_in("alice")
    mod = second_browser(w)
    mod.sign_in("moddy")
    assert mod.post("/moderation/users/alice", {"action": "ban", "reason": "spam"}).status_code == 303
    r = w.post(f"/papers/{paper['id']}/comments", {"body": "still here?"})
    assert r.status_code == 303 and r.headers["location"].startswith("/signin")  # the session is gone
    r = w.post("/signin", {"login": "alice", "password": PASSWORD})
    assert r.status_code == 403 and "banned" in r.text
    auth = {"Authorization": f"Bearer {token}"}
    assert w.client.post(f"/api/papers/{paper['id']}/upvote", headers=auth).status_code == 403
    r = w.client.post(f"/api/papers/{paper['id']}/comments", json={"comment": "hi"}, headers=auth)
    assert r.status_code == 403 and "banned" in r.json()["detail"]
    assert w.client.post("/api/papers/index", json={"arxivId": paper["id"]}, headers=auth).status_code == 403
    with any_db.read() as conn:
        assert conn.scalar(select(func.count()).select_from(comments_table)) == 0
        assert conn.scalar(select(papers.c.upvotes).where(papers.c.id == paper["id"])) == 0


def test_vote_and_comment_through_the_pages(db: Database, settings: Settings, paper: dict) -> None:
    w = web(settings, db, limits=unlimited())
    make_user(w.community, "alice")
    url = f"/papers/{paper['id']}"
    r = w.client.post(f"{url}/vote", data={"csrf_token": w.token()}, headers={"Accept": "application/json"})
    assert r.status_code == 401 and r.json()["signin"] == "/signin"
    r = w.post(f"{url}/vote", headers={"Referer": f"http://testserver{url}"})
    assert r.status_code == 303 and r.headers["location"] == "/signin?next=%2Fpapers%2F" + paper["id"]
    w.sign_in("alice")
    r = w.post(f"{url}/vote", headers={"Referer": "http://testserver/"})
    assert r.status_code == 303 and r.headers["location"] == "/"
    page = w.client.get(url).text
    assert 'aria-pressed="true"' in page and ">6<" in page
    r = w.client.post(f"{url}/vote", data={"csrf_token": w.token()}, headers={"Accept": "application/json"})
    assert r.json() == {"paperId": paper["id"], "upvoted": False, "changed": True, "upvotes": 5}
    r = w.post(f"{url}/comments", {"body": "Great **work**, see $E=mc^2$"})
    assert r.status_code == 303 and r.headers["location"].startswith(f"{url}#comment-")
    page = w.client.get(url).text
    assert "<strong>work</strong>" in page and "<math" in page and "Edit</a>" in page
    r = w.client.post(url + "/comments", data={"body": "x" * 30_000, "csrf_token": w.token()})
    assert r.status_code == 422 and "at most 20000 characters" in r.text
    big = {"body": "x" * (2 * 1024 * 1024), "csrf_token": w.token()}
    assert w.client.post(url + "/comments", data=big).status_code == 413


def test_moderation_page_and_profile(db: Database, settings: Settings, paper: dict) -> None:
    w = web(settings, db, limits=unlimited())
    alice = make_user(w.community, "alice")
    make_user(w.community, "moddy", role="moderator")
    comments.add_comment(w.community, alice, paper["id"], "needs review")
    w.sign_in("alice")
    assert w.client.get("/moderation").status_code == 403
    profile = w.client.get("/users/alice").text
    assert "needs review" in profile and "alice@example.org" not in profile
    w.post("/signout")
    w.sign_in("moddy")
    page = w.client.get("/moderation")
    assert page.status_code == 200 and "needs review" in page.text and "Audit log" in page.text
    assert w.client.get("/users/NOBODY").status_code == 404
    assert community(settings, db).settings.secret() == w.community.settings.secret()
