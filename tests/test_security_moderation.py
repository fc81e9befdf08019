"""Issue 10 item 0: moderation routes need a signed-in moderator. An anonymous visitor (with its own
anonymous session's CSRF token) or a request with a junk Bearer token changes nothing, and the
trusted command-line actor is an explicit object that no web request can produce."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from paperfeed.community import comments, moderation
from paperfeed.community.core import COMMAND_LINE
from paperfeed.community.errors import NotSignedIn
from paperfeed.config import Settings
from paperfeed.store.db import Database
from paperfeed.store.schema import comments as comments_table
from paperfeed.store.schema import daily_entries, users

from . import factories as f
from .community_util import community, make_user, unlimited, web


@pytest.fixture
def paper(db: Database) -> dict:
    p = f.add_paper(db, title="A paper to moderate")
    f.add_daily(db, p["id"], date(2026, 4, 15))
    return p


def _state(db: Database) -> tuple:
    with db.read() as conn:
        u = conn.execute(select(users.c.username, users.c.role, users.c.banned).order_by(users.c.id)).all()
        c = conn.execute(select(comments_table.c.id, comments_table.c.hidden)).all()
        e = conn.execute(select(daily_entries.c.paper_id, daily_entries.c.hidden, daily_entries.c.featured)).all()
    return tuple(map(tuple, u)), tuple(map(tuple, c)), tuple(map(tuple, e))


def _routes(cid: int, pid: str) -> list[tuple[str, dict]]:
    return [
        (f"/moderation/comments/{cid}", {"action": "hide", "reason": "spam"}),
        (f"/moderation/entries/{pid}", {"action": "hide", "reason": "spam"}),
        (f"/moderation/entries/{pid}", {"action": "feature"}),
        ("/moderation/users/alice", {"action": "ban", "reason": "spam"}),
        ("/moderation/users/alice", {"action": "role", "role": "admin"}),
    ]


def test_anonymous_visitor_with_its_own_csrf_token_cannot_moderate(db: Database, settings: Settings,
                                                                    paper: dict) -> None:  # fmt: skip
    w = web(settings, db, limits=unlimited())
    alice = make_user(w.community, "alice")
    cid = comments.add_comment(w.community, alice, paper["id"], "hello")
    before = _state(db)
    for path, data in _routes(cid, paper["id"]):
        r = w.post(path, data)  # the anonymous session's own, valid CSRF token
        assert r.status_code == 303 and r.headers["location"].startswith("/signin"), (path, r.status_code)
        r = w.post(path, data, headers={"Accept": "application/json"})
        assert r.status_code == 401, (path, r.status_code, r.text)
    assert _state(db) == before


def test_junk_bearer_token_is_401_and_changes_nothing(db: Database, settings: Settings, paper: dict) -> None:
    w = web(settings, db, limits=unlimited())
    alice = make_user(w.community, "alice")
    cid = comments.add_comment(w.community, alice, paper["id"], "hello")
    before = _state(db)
    for bearer in ("nonsense", "pf_" + "x" * 43, ""):
        for path, data in _routes(cid, paper["id"]):
            r = w.client.post(path, data=data, headers={"Authorization": f"Bearer {bearer}"}, follow_redirects=False)
            assert r.status_code == 401, (bearer, path, r.status_code, r.text)
    assert _state(db) == before


def test_plain_user_cannot_moderate(db: Database, settings: Settings, paper: dict) -> None:
    w = web(settings, db, limits=unlimited())
    alice = make_user(w.community, "alice")
    make_user(w.community, "bob")
    cid = comments.add_comment(w.community, alice, paper["id"], "hello")
    w.sign_in("bob")
    before = _state(db)
    for path, data in _routes(cid, paper["id"]):
        r = w.post(path, data)
        assert r.status_code == 403, (path, r.status_code)
    assert _state(db) == before


def test_moderation_layer_refuses_none_and_accepts_the_command_line(db: Database, settings: Settings,
                                                                     paper: dict) -> None:  # fmt: skip
    c = community(settings, db, limits=unlimited())
    alice = make_user(c, "alice")
    cid = comments.add_comment(c, alice, paper["id"], "hello")
    with pytest.raises(NotSignedIn):
        moderation.set_banned(c, None, "alice", True, "spam")  # type: ignore[arg-type]  # what a web route could pass
    with pytest.raises(NotSignedIn):
        moderation.set_role(c, None, "alice", "admin")  # type: ignore[arg-type]
    with pytest.raises(NotSignedIn):
        moderation.set_comment_hidden(c, None, cid, True, "spam")  # type: ignore[arg-type]
    with pytest.raises(NotSignedIn):
        moderation.set_entry_featured(c, None, paper["id"], True)  # type: ignore[arg-type]
    assert moderation.set_role(c, COMMAND_LINE, "alice", "moderator") is True
    assert moderation.set_banned(c, COMMAND_LINE, "alice", True, None) is True
    with db.read() as conn:
        row = conn.execute(select(users.c.role, users.c.banned).where(users.c.username == "alice")).one()
    assert (row.role, bool(row.banned)) == ("moderator", True)
