"""Upvotes: one per user per paper, toggles, counts equal to the vote rows (plus imported ones),
and 50 users voting at once through a live server - on SQLite (a file) and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from paperfeed.community import accounts, votes
from paperfeed.community.errors import Forbidden, NotFound, NotSignedIn
from paperfeed.config import Settings
from paperfeed.store.db import Database
from paperfeed.store.schema import papers
from paperfeed.store.schema import votes as votes_table

from . import factories as f
from .community_util import community, make_user, web
from .servers import LiveServer


def _counts(db: Database, paper_id: str) -> tuple[int, int]:
    with db.read() as conn:
        rows = conn.scalar(select(func.count()).select_from(votes_table).where(votes_table.c.paper_id == paper_id))
        column = conn.scalar(select(papers.c.upvotes).where(papers.c.id == paper_id))
    return rows, column


def test_vote_toggle_and_counts(any_db: Database, settings: Settings) -> None:
    c = community(settings, any_db)
    p = f.add_paper(any_db, imported_upvotes=7)
    alice, bob = make_user(c, "alice"), make_user(c, "bob")
    s = votes.set_vote(c, alice, p["id"], True)
    assert (s.upvoted, s.changed, s.upvotes) == (True, True, 8)
    s = votes.set_vote(c, alice, p["id"], True)  # a double click counts once
    assert (s.changed, s.upvotes) == (False, 8)
    assert votes.toggle_vote(c, bob, p["id"]).upvotes == 9
    assert votes.voted(c, bob, [p["id"], "nope"]) == {p["id"]}
    assert _counts(any_db, p["id"]) == (2, 2)
    s = votes.toggle_vote(c, alice, p["id"])
    assert (s.upvoted, s.upvotes) == (False, 8)
    assert votes.set_vote(c, alice, p["id"], False).changed is False
    assert _counts(any_db, p["id"]) == (1, 1)
    with pytest.raises(NotFound):
        votes.set_vote(c, alice, "2501.99999", True)
    with pytest.raises(NotFound):
        votes.set_vote(c, alice, "x' OR '1'='1", True)
    with pytest.raises(NotSignedIn):
        votes.set_vote(c, None, p["id"], True)


def test_banned_user_cannot_vote(db: Database, settings: Settings) -> None:
    c = community(settings, db)
    p = f.add_paper(db)
    alice = make_user(c, "alice")
    banned = accounts.load_user(c, alice.id).__class__(**{**alice.__dict__, "banned": True})
    with pytest.raises(Forbidden):
        votes.set_vote(c, banned, p["id"], True)
    assert _counts(db, p["id"]) == (0, 0)


@pytest.mark.slow
def test_fifty_users_upvoting_at_once_count_exactly_fifty(any_db: Database, settings: Settings) -> None:
    """50 users (each twice, at the same time: double clicks) through a live uvicorn server."""
    w = web(settings, any_db)
    p = f.add_paper(any_db, imported_upvotes=3)
    tokens = []
    for i in range(50):
        user = make_user(w.community, f"voter{i:02d}")
        tokens.append(accounts.create_api_token(w.community, user, "bench")[0])
    with LiveServer(w.client.app) as server, httpx.Client(base_url=server.url, timeout=60) as http:

        def vote(token: str) -> int:
            r = http.post(f"/api/papers/{p['id']}/upvote", headers={"Authorization": f"Bearer {token}"})
            return r.status_code

        with ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(vote, tokens * 2))
        assert statuses == [200] * 100
        assert _counts(any_db, p["id"]) == (50, 50)
        data = http.get(f"/api/papers/{p['id']}/upvote", headers={"Accept": "application/json"})
        assert data.status_code == 405  # GET is not a vote
        # Half take their vote back while the other half vote again, all at once.
        with ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(
                lambda it: http.request("DELETE" if it[0] % 2 else "POST", f"/api/papers/{p['id']}/upvote",
                                        headers={"Authorization": f"Bearer {it[1]}"}).status_code,
                enumerate(tokens),
            ))  # fmt: skip
        assert statuses == [200] * 50
        assert _counts(any_db, p["id"]) == (25, 25)
        r = http.post(f"/api/papers/{p['id']}/upvote", headers={"Authorization": f"Bearer {tokens[1]}"})
        assert r.json() == {"paperId": p["id"], "upvoted": True, "changed": True, "upvotes": 3 + 26}
