"""Every kind of page, as an admin, a moderator, a plain user and an anonymous visitor: 200 and
no traceback. Issue 10 found that an admin opening a paper without a daily entry got a 500 (the
moderation box read ``paper.featured``), which no test saw because none signed in with a role."""

from __future__ import annotations

from typing import Any

import pytest

from paperfeed.community import comments, moderation
from paperfeed.config import Settings
from paperfeed.store.db import Database

from . import factories as f
from .community_util import Web, make_user, second_browser, unlimited, web
from .webutil import DAY, seed

ROLES = ("admin", "moderator", "user", "anonymous")


@pytest.fixture
def site(db: Database, settings: Settings) -> dict[str, Any]:
    papers = seed(db)
    off = f.add_paper(db, title="A paper outside the daily feed", authors=["Ada Lovelace"])
    w = web(settings, db, limits=unlimited())
    alice = make_user(w.community, "alice")
    mod = make_user(w.community, "moddy", role="moderator")
    make_user(w.community, "root", role="admin")
    cid = comments.add_comment(w.community, alice, papers["top"]["id"], "Nice $x^2$ result.")
    hidden = comments.add_comment(w.community, alice, papers["top"]["id"], "spam spam")
    moderation.set_comment_hidden(w.community, mod, hidden, True, "spam")
    comments.add_comment(w.community, alice, off["id"], "Off the feed, still discussed.")
    return {"web": w, "papers": papers, "off": off["id"], "comment": cid}


def _pages(site: dict[str, Any]) -> list[str]:
    p = site["papers"]
    return [
        "/",
        f"/papers/date/{DAY}",
        "/papers/week/2025-W03",
        "/papers/month/2025-01",
        "/papers/new",
        "/papers/new?category=cs.LG",
        "/papers/trending",
        "/papers/search?q=attention",
        f"/papers/{p['top']['id']}",  # on the feed, with comments (one hidden)
        f"/papers/{p['hidden']['id']}",  # its daily entry was removed by a moderator
        f"/papers/{site['off']}",  # no daily entry at all
        "/authors/Ada%20Lovelace",
        "/users/alice",
        "/users/moddy",
        "/moderation",
        "/account",
        "/submit",
        "/digest/subscribe",
        "/about/ranking",
    ]


def _browser(site: dict[str, Any], role: str) -> Web:
    w = second_browser(site["web"])
    if role != "anonymous":
        w.sign_in({"admin": "root", "moderator": "moddy", "user": "alice"}[role])
    return w


@pytest.mark.parametrize("role", ROLES)
def test_every_page_opens_for_every_role(site: dict[str, Any], role: str) -> None:
    w = _browser(site, role)
    signed_in_only = {"/moderation", "/account", "/submit"}
    for path in _pages(site):
        r = w.client.get(path, follow_redirects=False)
        if role == "anonymous" and path in signed_in_only:
            assert r.status_code == 303 and r.headers["location"].startswith("/signin?next="), (path, r.status_code)
            continue
        if role == "user" and path == "/moderation":
            assert r.status_code == 403, (path, r.status_code)
            continue
        assert r.status_code == 200, (role, path, r.status_code, r.text[:500])
        assert "Traceback" not in r.text and "Something went wrong" not in r.text, (role, path)
        if path.startswith(("/papers/", "/authors/", "/about/")) or path == "/":
            j = w.client.get(path.replace("?", ".json?", 1) if "?" in path else path + ".json")
            assert j.status_code == 200, (role, path + ".json", j.status_code, j.text[:300])


def test_moderation_controls_match_the_paper(site: dict[str, Any]) -> None:
    """The daily-entry box appears only where there is a visible entry; admins can feature it."""
    top, off = site["papers"]["top"]["id"], site["off"]
    for role in ("admin", "moderator"):
        w = _browser(site, role)
        on_feed = w.client.get(f"/papers/{top}").text
        assert f'action="/moderation/entries/{top}"' in on_feed
        assert ('value="feature"' in on_feed) is (role == "admin")
        assert "hidden: spam" in on_feed or "<strong>hidden</strong>: spam" in on_feed
        off_feed = w.client.get(f"/papers/{off}").text
        assert "/moderation/entries/" not in off_feed and "Off the feed, still discussed." in off_feed
    w = _browser(site, "admin")
    assert w.post(f"/moderation/entries/{top}", {"action": "feature"}).status_code == 303
    assert 'value="unfeature"' in w.client.get(f"/papers/{top}").text
