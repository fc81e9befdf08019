"""Issue 10 item 3: API tokens are scoped and work on the JSON API only.

Tokens used to act as their owner everywhere: a Bearer token could mint more tokens
(``POST /account/tokens``), drive HTML form routes such as ``/moderation/users/{name}``, and it
outlived a password reset. Now a token carries scopes (``read``, ``vote``, ``comment``,
``submit``; ``moderate`` only when a moderator or admin grants it), works only under ``/api/``,
gets a 403 naming the missing scope, and dies with a password change or reset.
"""

from __future__ import annotations

import email
from datetime import date

import pytest
from sqlalchemy import func, insert, select

from paperfeed.community import accounts, comments, moderation
from paperfeed.community.core import COMMAND_LINE
from paperfeed.config import Settings
from paperfeed.store.db import Database
from paperfeed.store.schema import api_tokens, users, votes
from paperfeed.store.schema import comments as comments_table

from . import factories as f
from .community_util import PASSWORD, Web, make_user, unlimited, web


@pytest.fixture
def paper(request: pytest.FixtureRequest) -> dict:
    db = request.getfixturevalue("any_db" if "any_db" in request.fixturenames else "db")
    p = f.add_paper(db, title="A paper for the API")
    f.add_daily(db, p["id"], date(2026, 4, 15))
    return p


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _count(db: Database, table) -> int:  # type: ignore[no-untyped-def]
    with db.read() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)) or 0)


def _token(w: Web, name: str, scopes: list[str] | None = None) -> str:
    user = accounts.user_by_name(w.community, name)
    token, _ = accounts.create_api_token(w.community, user, "t", scopes)
    return token


def test_a_token_cannot_manage_tokens_or_drive_form_routes(db: Database, settings: Settings, paper: dict) -> None:
    w = web(settings, db, limits=unlimited())
    alice = make_user(w.community, "alice")
    make_user(w.community, "mod", role="moderator")
    cid = comments.add_comment(w.community, alice, paper["id"], "hello")
    token = _token(w, "mod", ["read", "vote", "comment", "submit", "moderate"])
    before = (_count(db, api_tokens), _count(db, votes))
    forms = [
        ("/account/tokens", {"name": "more"}),
        ("/account/tokens/1/revoke", {}),
        ("/account/password", {"current": PASSWORD, "new": "x" * 12, "new2": "x" * 12}),
        ("/account/sessions/end", {}),
        ("/moderation/users/alice", {"action": "ban", "reason": "token"}),
        (f"/moderation/comments/{cid}", {"action": "hide", "reason": "token"}),
        (f"/papers/{paper['id']}/vote", {}),
        (f"/papers/{paper['id']}/comments", {"body": "via a form"}),
        ("/submit", {"arxiv_id": paper["id"]}),
        ("/signout", {}),
    ]
    for path, data in forms:
        r = w.client.post(path, data=data, headers=_bearer(token), follow_redirects=False)
        assert r.status_code == 403, (path, r.status_code, r.text[:200])
        assert "API tokens work only on the JSON API" in r.text, path
    assert (_count(db, api_tokens), _count(db, votes)) == before
    with db.read() as conn:
        assert conn.scalar(select(users.c.banned).where(users.c.username == "alice")) is False
        assert conn.scalar(select(comments_table.c.hidden).where(comments_table.c.id == cid)) is False
    # The same token on the JSON API works.
    r = w.client.post(f"/api/papers/{paper['id']}/upvote", headers=_bearer(token))
    assert r.status_code == 200, r.text


def test_a_token_without_the_scope_gets_403_naming_it(any_db: Database, settings: Settings, paper: dict) -> None:
    w = web(settings, any_db, limits=unlimited())
    make_user(w.community, "alice")
    voter = _token(w, "alice", ["vote"])
    reader = _token(w, "alice", ["read"])
    r = w.client.post(f"/api/papers/{paper['id']}/comments", json={"comment": "hi"}, headers=_bearer(voter))
    assert r.status_code == 403 and "comment" in r.json()["detail"] and r.json()["scope"] == "comment"
    r = w.client.post("/api/papers/index", json={"arxivId": paper["id"]}, headers=_bearer(voter))
    assert r.status_code == 403 and r.json()["scope"] == "submit"
    r = w.client.get(f"/api/papers/{paper['id']}", headers=_bearer(voter))
    assert r.status_code == 403 and r.json()["scope"] == "read"
    r = w.client.post(f"/api/papers/{paper['id']}/upvote", headers=_bearer(reader))
    assert r.status_code == 403 and r.json()["scope"] == "vote"
    assert _count(any_db, votes) == 0 and _count(any_db, comments_table) == 0
    assert w.client.get(f"/api/papers/{paper['id']}", headers=_bearer(reader)).status_code == 200
    assert w.client.post(f"/api/papers/{paper['id']}/upvote", headers=_bearer(voter)).status_code == 200
    assert _count(any_db, votes) == 1


def test_only_moderators_grant_the_moderate_scope_and_use_it_on_the_api(db: Database, settings: Settings,
                                                                          paper: dict) -> None:  # fmt: skip
    w = web(settings, db, limits=unlimited())
    alice = make_user(w.community, "alice")
    make_user(w.community, "mod", role="moderator")
    cid = comments.add_comment(w.community, alice, paper["id"], "spam spam")
    w.sign_in("alice")
    page = w.client.get("/account").text
    assert 'value="moderate"' not in page and 'value="vote"' in page
    r = w.post("/account/tokens", {"name": "sneaky", "scopes": ["vote", "moderate"]})
    assert r.status_code == 403 and "moderate" in r.text
    assert _count(db, api_tokens) == 0
    mod = Web(w.client.__class__(w.client.app, raise_server_exceptions=False), w.community, w.clock)
    mod.sign_in("mod")
    assert 'value="moderate"' in mod.client.get("/account").text
    r = mod.post("/account/tokens", {"name": "mod bot", "scopes": ["read", "moderate"]})
    assert r.status_code == 201
    plain = _token(w, "mod")  # the default scopes: no moderate
    path = f"/api/moderation/comments/{cid}"
    r = w.client.post(path, json={"action": "hide", "reason": "spam"}, headers=_bearer(plain))
    assert r.status_code == 403 and r.json()["scope"] == "moderate"
    strong = _token(w, "mod", ["moderate"])
    r = w.client.post(path, json={"action": "hide", "reason": "spam"}, headers=_bearer(strong))
    assert r.status_code == 200, r.text
    with db.read() as conn:
        assert conn.scalar(select(comments_table.c.hidden).where(comments_table.c.id == cid)) is True
    alice_mod_scope = _token(w, "mod", ["moderate"])
    moderation.set_role(w.community, COMMAND_LINE, "mod", "user")  # demoted: the scope alone is not enough
    r = w.client.post(path, json={"action": "unhide"}, headers=_bearer(alice_mod_scope))
    assert r.status_code == 403


def test_password_reset_and_change_revoke_tokens(any_db: Database, settings: Settings, paper: dict) -> None:
    w = web(settings, any_db, limits=unlimited())
    make_user(w.community, "alice")
    token = _token(w, "alice")
    assert w.client.post(f"/api/papers/{paper['id']}/upvote", headers=_bearer(token)).status_code == 200
    assert w.post("/reset", {"email": "alice@example.org"}).status_code == 200
    (mail,) = settings.outbox_dir.glob("*.eml")
    body = email.message_from_bytes(mail.read_bytes()).get_payload(decode=True).decode()
    link = "/reset/" + body.split("/reset/", 1)[1].split()[0]
    assert w.post(link, {"password": "a fresh password", "password2": "a fresh password"}).status_code == 303
    r = w.client.delete(f"/api/papers/{paper['id']}/upvote", headers=_bearer(token))
    assert r.status_code == 401, r.text
    assert _count(any_db, votes) == 1
    token2 = _token(w, "alice")
    r = w.post("/account/password", {"current": "a fresh password", "new": "newer password", "new2": "newer password"})
    assert r.status_code == 200
    assert w.client.delete(f"/api/papers/{paper['id']}/upvote", headers=_bearer(token2)).status_code == 401
    assert "No tokens yet" in w.client.get("/account").text


def test_account_page_lists_scopes_and_last_use(db: Database, settings: Settings, paper: dict) -> None:
    w = web(settings, db, limits=unlimited())
    make_user(w.community, "alice")
    w.sign_in("alice")
    r = w.post("/account/tokens", {"name": "voting bot", "scopes": ["read", "vote"]})
    assert r.status_code == 201
    token = r.text.split('id="new-token">', 1)[1].split("<", 1)[0]
    w.clock.advance(minutes=7)
    assert w.client.post(f"/api/papers/{paper['id']}/upvote", headers=_bearer(token)).status_code == 200
    page = w.client.get("/account").text
    row = page.split("voting bot", 1)[1].split("</tr>", 1)[0]
    assert "read, vote" in row and "Apr 15, 2026 12:07 UTC" in row
    r = w.post("/account/tokens", {"name": "nothing", "scopes_sent": "1"})
    assert r.status_code == 400 and "at least one scope" in r.text


def test_tokens_from_before_scopes_get_the_non_moderation_scopes(db: Database, settings: Settings) -> None:
    c = web(settings, db).community
    alice = make_user(c, "alice", role="admin")
    with db.write() as conn:  # a row written the way the code before scopes wrote it
        conn.execute(insert(api_tokens).values(user_id=alice.id, name="old", prefix="pf_old", created_at=c.now(),
                                               token_hash=accounts.sha256("pf_old" + "x" * 40)))  # fmt: skip
    found = accounts.api_token(c, "pf_old" + "x" * 40)
    assert found is not None and found.scopes == frozenset({"read", "vote", "comment", "submit"})


def test_reads_ignore_other_sites_tokens_but_not_our_revoked_ones(db: Database, settings: Settings,
                                                                  paper: dict) -> None:  # fmt: skip
    """A Hugging Face client sends the user's hf_ token with every request to the HF-compatible API:
    reads stay anonymous. Our own revoked token on a read is a 401; any junk on a write too."""
    w = web(settings, db, limits=unlimited())
    make_user(w.community, "alice")
    hf = _bearer("hf_" + "a" * 34)
    assert w.client.get(f"/api/papers/{paper['id']}", headers=hf).status_code == 200
    assert w.client.get("/api/daily_papers", headers=hf).status_code == 200
    assert w.client.post(f"/api/papers/{paper['id']}/upvote", headers=hf).status_code == 401
    token = _token(w, "alice")
    alice = accounts.user_by_name(w.community, "alice")
    (row,) = accounts.list_api_tokens(w.community, alice)
    accounts.revoke_api_token(w.community, alice, row["id"])
    r = w.client.get(f"/api/papers/{paper['id']}", headers=_bearer(token))
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert _count(db, votes) == 0
