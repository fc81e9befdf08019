"""Issue 10 in a real browser (headless Chromium, a live uvicorn server): comments that try to forge
formula placeholders render inert (one formula each, links keep ``rel``, no attribute is broken,
the page stays small), and every kind of page opens for an admin and a moderator."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

from paperfeed.community import accounts, moderation
from paperfeed.community import comments as comment_service
from paperfeed.community.core import Community
from paperfeed.config import Settings
from paperfeed.store.db import Database
from paperfeed.web.app import create_app
from tests import factories as f
from tests.community_util import FAST, PASSWORD, unlimited

from ..servers import LiveServer
from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AMPLIFY = "$" + r"\binom{a}{b}" * 166 + "$ " + "&#xe000;0&#xe001;" * 470
TITLE_BREAKOUT = '$x$ and [a link](https://example.org/ok "&#xe000;0&#xe001;")'


@dataclass
class Site:
    url: str
    db: Database
    community: Community
    on_feed: str  # a paper with a daily entry
    off_feed: str  # a paper without one (imported from arXiv, never submitted)
    removed: str  # a paper whose daily entry a moderator removed


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    settings = Settings(home=tmp_path_factory.mktemp("security-browser"), secret_key="test",
                        base_url="http://127.0.0.1", harvest_delay=0.0)  # fmt: skip
    db = Database(settings.db_url)
    db.migrate()
    on_feed = f.add_paper(db, title="Sparse attention with $O(n)$ cost", authors=["Ada Lovelace"])
    off_feed = f.add_paper(db, title="A paper nobody submitted", authors=["Ada Lovelace", "Grace Hopper"])
    removed = f.add_paper(db, title="Spam that was removed from the feed")
    f.add_daily(db, on_feed["id"], date.today(), submitter="alice")
    f.add_daily(db, removed["id"], date.today(), submitter="alice")
    app = create_app(settings, db)
    c: Community = app.state.community
    c.password_params, c.limits = FAST, unlimited()
    alice = accounts.create_account(c, "alice", "alice@example.org", PASSWORD)
    moddy = accounts.create_account(c, "moddy", "moddy@example.org", PASSWORD, role="moderator")
    accounts.create_account(c, "root", "root@example.org", PASSWORD, role="admin")
    for body in (AMPLIFY, TITLE_BREAKOUT):
        comment_service.add_comment(c, alice, on_feed["id"], body)
    comment_service.add_comment(c, alice, off_feed["id"], "A comment on a paper outside the feed.")
    spam = comment_service.add_comment(c, alice, off_feed["id"], "buy cheap pills")
    moderation.set_comment_hidden(c, moddy, spam, True, "spam")
    moderation.set_entry_hidden(c, moddy, removed["id"], True, "spam")
    with LiveServer(app) as server:
        yield Site(server.url, db, c, on_feed["id"], off_feed["id"], removed["id"])
    db.dispose()


def _watch(page: Any) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {"dialogs": [], "errors": []}

    def on_dialog(d: Any) -> None:
        seen["dialogs"].append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    return seen


def test_forged_formula_placeholders_render_inert(browser: Any, site: Site) -> None:
    page = browser.new_page()
    seen = _watch(page)
    response = page.goto(f"{site.url}/papers/{site.on_feed}")
    assert response is not None and response.status == 200
    assert len(response.body()) < 200_000  # was 13 MB: one formula copied 470 times
    bodies = page.locator("#comments .comment-body")
    assert bodies.count() == 2
    assert [bodies.nth(i).locator("math").count() for i in range(2)] == [1, 1]
    links = page.evaluate(
        """() => [...document.querySelectorAll('#comments .comment-body a')].map(a => ({
             names: a.getAttributeNames().sort(), rel: a.getAttribute('rel'), href: a.getAttribute('href'),
             title: a.getAttribute('title') || '', mathInside: a.querySelectorAll('math').length}))"""
    )
    assert links == [
        {"names": ["href", "rel", "title"], "rel": "nofollow ugc", "href": "https://example.org/ok",
         "title": links[0]["title"], "mathInside": 0},
    ]  # fmt: skip
    assert "<" not in links[0]["title"] and "math" not in links[0]["title"]
    # Nothing in a comment body is outside the Markdown + MathML allow-list.
    tags = set(page.evaluate("() => [...document.querySelectorAll('#comments .comment-body *')].map(e => e.localName)"))
    allowed = {"p", "a", "code", "em", "strong", "math", "mrow", "mi", "mo", "mfrac", "mn", "mstyle", "mtext"}
    assert tags <= allowed, tags - allowed
    assert seen == {"dialogs": [], "errors": []}
    page.close()


@pytest.mark.parametrize("login", ["root", "moddy"])
def test_every_kind_of_page_opens_for_admins_and_moderators(browser: Any, site: Site, login: str) -> None:
    ctx = browser.new_context()
    page = ctx.new_page()
    seen = _watch(page)
    sign_in(page, site.url, login)
    paths = ["/", "/papers/new", "/papers/trending", "/papers/search?q=attention", f"/papers/{site.on_feed}",
             f"/papers/{site.off_feed}", f"/papers/{site.removed}", "/authors/Ada%20Lovelace", "/users/alice",
             "/moderation", "/account", "/submit", f"/papers/date/{date.today()}"]  # fmt: skip
    for path in paths:
        response = page.goto(site.url + path)
        assert response is not None and response.status == 200, (login, path, response and response.status)
        assert page.locator("text=Something went wrong").count() == 0, (login, path)
        assert page.locator("nav .nav-user").inner_text() == login, path  # still signed in, as that role
    # The paper outside the feed: its comments (the hidden one too, for a moderator), no entry box.
    page.goto(f"{site.url}/papers/{site.off_feed}")
    assert "A comment on a paper outside the feed." in page.locator("#comments").inner_text()
    assert "hidden: spam" in page.locator("#comments").inner_text()
    assert page.locator("form[action^='/moderation/entries/']").count() == 0
    page.goto(f"{site.url}/moderation")
    assert "Spam that was removed from the feed" in page.locator("section.moderation").inner_text()
    assert seen == {"dialogs": [], "errors": []}
    ctx.close()
