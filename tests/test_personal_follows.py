"""Follows (issue 14): authors, categories and saved searches; the "Following" view of their new
papers with the reasons; the follow buttons without JS (form POST + 303) and in place (JSON);
bounds (how many follows, how long a saved search). Service on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest

from paperfeed.community.errors import CommunityError, Conflict, NotSignedIn
from paperfeed.config import Settings
from paperfeed.personal import following, follows
from paperfeed.store.db import Database

from . import factories as f
from .community_util import community, make_user, web

DAY1, DAY2, OLD = date(2026, 4, 13), date(2026, 4, 14), date(2026, 3, 1)


def _papers(db: Database) -> dict[str, dict]:
    return {
        "ada": f.add_paper(db, authors=["Ada Lovelace", "X Y"], categories="cs.CL", listed=DAY2),
        "zoe": f.add_paper(db, authors=["Zoë Müller"], categories="cs.CV", listed=DAY1),
        "lg": f.add_paper(db, authors=["Nobody"], categories="cs.LG stat.ML", listed=DAY1),
        "old": f.add_paper(db, authors=["Ada Lovelace"], categories="cs.LG", listed=OLD),
        "other": f.add_paper(db, authors=["Someone"], categories="math.AG", listed=DAY2),
    }


def test_follow_rules_and_the_following_view(any_db: Database, settings: Settings) -> None:
    c = community(settings, any_db)
    ps = _papers(any_db)
    alice = make_user(c, "alice")
    assert follows.follow(c, alice, "author", "  ada   LOVELACE ")[1] is True
    assert follows.follow(c, alice, "author", "Ada Lovelace")[1] is False  # the same author, once
    follows.follow(c, alice, "author", "zoe muller")  # accents and case aside
    follows.follow(c, alice, "category", "cs.LG")
    follows.follow(c, alice, "search", "Video Diffusion", "keyword")
    assert [x.kind for x in follows.follows_of(c, alice)] == ["author", "author", "category", "search"]

    # Saved searches go through a search function; here one that "finds" the cs.CV paper.
    def search(q: str, mode: str, start: date, end: date, limit: int) -> list[str]:
        assert (q, mode, start, end) == ("Video Diffusion", "keyword", DAY1, DAY2)
        return [ps["zoe"]["id"], ps["old"]["id"]]

    view = following.following_view(c, alice, search, days=2)
    got = {p["id"]: p["why"] for p in view["papers"]}
    assert list(got) == [ps["ada"]["id"], ps["zoe"]["id"], ps["lg"]["id"]]  # newest day, then more reasons
    assert got[ps["ada"]["id"]] == ["from Ada Lovelace, an author you follow"]
    assert got[ps["zoe"]["id"]] == ["from Zoë Müller, an author you follow",
                                    "matches your saved search “Video Diffusion” (keyword)"]  # fmt: skip
    assert got[ps["lg"]["id"]] == ["in cs.LG, a category you follow"]
    assert view["days"] == ["2026-04-14", "2026-04-13"]

    assert follows.unfollow(c, alice, "author", "ADA LOVELACE") is True
    assert follows.unfollow(c, alice, "author", "Ada Lovelace") is False
    assert ps["ada"]["id"] not in {p["id"] for p in following.following_view(c, alice, None, days=2)["papers"]}


def test_bad_follows_are_refused_with_a_reason(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = community(settings, db)
    alice = make_user(c, "alice")
    for kind, value, mode, words in [
        ("planet", "x", None, "Unknown kind"),
        ("author", "   ", None, "Say which author"),
        ("category", "cs.LG; drop table", None, "not an arXiv category"),
        ("search", "q" * (follows.MAX_QUERY + 1), None, "at most 200 characters"),
        ("search", "transformers", "fuzzy", "Unknown search mode"),
    ]:
        with pytest.raises(CommunityError, match=words):
            follows.follow(c, alice, kind, value, mode)
    with pytest.raises(NotSignedIn):
        follows.follow(c, None, "category", "cs.LG")
    monkeypatch.setattr(follows, "MAX_FOLLOWS", 2)
    follows.follow(c, alice, "category", "cs.LG")
    follows.follow(c, alice, "category", "cs.CV")
    with pytest.raises(Conflict, match="You follow 2 things already"):
        follows.follow(c, alice, "category", "cs.AI")
    assert len(follows.follows_of(c, alice)) == 2


def test_follow_buttons_without_and_with_js(db: Database, settings: Settings) -> None:
    w = web(settings, db)
    ps = _papers(db)
    make_user(w.community, "alice")
    anon = w.client.get("/authors/Ada Lovelace")
    assert 'action="/follow"' in anon.text  # anonymous visitors see the button; it asks them to sign in
    r = w.post("/follow", {"kind": "author", "value": "Ada Lovelace", "next": "/authors/Ada Lovelace"})
    assert r.status_code == 303 and r.headers["location"].startswith("/signin?next=")

    w.sign_in("alice")
    r = w.post("/follow", {"kind": "author", "value": "Ada Lovelace", "next": "/authors/Ada Lovelace"})
    assert (r.status_code, r.headers["location"]) == (303, "/authors/Ada%20Lovelace")
    page = w.client.get("/authors/Ada Lovelace")
    assert 'action="/unfollow"' in page.text and 'aria-pressed="true"' in page.text
    # In place: the same POST asking for JSON.
    r = w.post("/follow", {"kind": "category", "value": "cs.LG"}, headers={"Accept": "application/json"})
    assert r.json()["following"] is True and r.headers["cache-control"] == "private, no-store"
    r = w.post("/unfollow", {"kind": "category", "value": "cs.LG"}, headers={"Accept": "application/json"})
    assert r.json()["following"] is False
    r = w.post("/follow", {"kind": "category", "value": "not a category"}, headers={"Accept": "application/json"})
    assert r.status_code == 400 and "not an arXiv category" in r.json()["detail"]

    html = w.client.get("/following")
    assert html.status_code == 200 and "from Ada Lovelace, an author you follow" in html.text
    data = w.client.get("/following.json").json()
    # The last 7 listing days: here all three days with papers, the March one included.
    assert [p["id"] for p in data["papers"]] == [ps["ada"]["id"], ps["old"]["id"]]
    assert data["follows"][0] == {"kind": "author", "value": "Ada Lovelace", "mode": None,
                                  "url": "/authors/Ada%20Lovelace", "since": data["follows"][0]["since"]}  # fmt: skip
    w.client.cookies.clear()
    assert w.client.get("/following.json").status_code == 401
    assert w.client.get("/following", follow_redirects=False).headers["location"].startswith("/signin")
