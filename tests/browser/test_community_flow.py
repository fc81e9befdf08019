"""The community in a real browser (headless Chromium, a live uvicorn server): sign up, confirm the
address from the mailed link, submit a paper (fetched from a local OAI-PMH replay server), upvote
in place, comment with Markdown and math, and a moderator hides the comment; the vote form
without JavaScript; and hostile titles, abstracts, authors, comments and usernames that must
stay text (no dialog ever opens)."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from paperfeed.community import accounts
from paperfeed.community.comments import render_markdown
from paperfeed.community.core import Community
from paperfeed.config import Settings
from paperfeed.store import community_store
from paperfeed.store.db import Database, utcnow
from paperfeed.web.app import create_app
from tests import factories as f
from tests.community_util import FAST, PASSWORD, unlimited
from tests.oai_server import OAIReplayServer, Reply

from ..servers import LiveServer
from .conftest import ARTIFACTS, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HOSTILE_NAME = "<svg onload=alert('user')>"
HOSTILE_COMMENT = (
    "<script>alert('comment')</script> <img src=x onerror=alert('img')> [link](javascript:alert('link')) "
    "$\\text{<script>alert('math')</script>}$"
)


@dataclass
class Site:
    url: str
    db: Database
    community: Community
    hostile_paper: str
    outbox: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    oai = OAIReplayServer().start()
    oai.route({"verb": "GetRecord", "identifier": "oai:arXiv.org:2604.07429"}, Reply(fixture="get_record.xml"))
    home = tmp_path_factory.mktemp("community-browser")
    # The replayed paper is from April 2026: a wide window lets it in whatever today's date is.
    settings = Settings(home=home, secret_key="test", base_url="http://127.0.0.1", oai_url=oai.url,
                        harvest_delay=0.0, submission_window_days=100_000)  # fmt: skip
    db = Database(settings.db_url)
    db.migrate()
    today = date.today()
    hostile = f.add_paper(
        db,
        title="<script>alert('title')</script> $\\text{<img src=x onerror=alert('tmath')>}$ hostile",
        abstract="<img src=x onerror=alert('abstract')> and <iframe src=javascript:alert('frame')></iframe>",
        authors=["<img src=x onerror=alert('author')>", "Ada Lovelace"],
    )
    f.add_daily(db, hostile["id"], today, submitter="<script>alert('submitter')</script>")
    app = create_app(settings, db)
    c: Community = app.state.community
    c.password_params, c.limits = FAST, unlimited()
    accounts.create_account(c, "moddy", "moddy@example.org", PASSWORD, role="moderator")
    # A hostile username cannot be chosen on the sign-up form; an importer or an old database could
    # still hold one, so it is written directly - and must render as text everywhere.
    evil_id = f.add_user(db, HOSTILE_NAME)
    with db.write() as conn:
        community_store.insert_comment(conn, hostile["id"], evil_id, None, HOSTILE_COMMENT,
                                       render_markdown(HOSTILE_COMMENT), utcnow())  # fmt: skip
    with LiveServer(app) as server:
        yield Site(server.url, db, c, hostile["id"], settings.outbox_dir)
    oai.stop()
    db.dispose()


def _watch(page: Any) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {"dialogs": [], "csp": [], "errors": []}

    def on_dialog(d: Any) -> None:
        seen["dialogs"].append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda m: "Content Security Policy" in m.text and seen["csp"].append(m.text))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    return seen


def test_sign_up_submit_upvote_comment_and_moderator_hides_it(browser: Any, site: Site) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    page = ctx.new_page()
    seen = _watch(page)

    page.goto(f"{site.url}/signup")
    page.fill("#f-username", "alice")
    page.fill("#f-email", "alice@example.org")
    page.fill("#f-password", PASSWORD)
    page.fill("#f-password2", PASSWORD)
    page.click("form.cform button[type=submit]")
    page.wait_for_url(f"{site.url}/")
    assert page.locator(".site-nav .nav-user").inner_text() == "alice"

    # Signed in, but submitting waits for the address: the page says so instead of the form.
    page.click("text=Submit")
    assert "Confirm your email address" in page.locator("main").inner_text()
    assert page.locator("#submit-id").count() == 0
    mail = max(site.outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime)
    body = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default).get_content()
    link = re.search(r"/verify\?t=[A-Za-z0-9_.\-]+", body)
    assert link is not None
    page.goto(site.url + link.group(0))
    assert "alice@example.org" in page.locator("main").inner_text()
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    assert "is confirmed" in page.locator("main").inner_text()

    page.click("text=Submit")
    page.fill("#submit-id", "arXiv:2604.07429")
    page.click("form.cform button[type=submit]")
    page.wait_for_url(f"{site.url}/papers/2604.07429")
    assert "GameWorld" in page.locator("h1").inner_text()
    assert "submitted by alice" in page.content()

    # Upvote in place: the count and the pressed state change, the page does not reload.
    page.evaluate("window.__noReload = 1")
    button = page.locator(".paper-head button.vote")
    assert button.get_attribute("aria-pressed") == "false" and button.locator(".vote-count").inner_text() == "0"
    button.click()
    # A selector wait, not wait_for_function: polling a string predicate needs eval, which the CSP forbids.
    page.wait_for_selector(".paper-head button.vote[aria-pressed='true']")
    assert button.locator(".vote-count").inner_text() == "1"
    assert page.evaluate("window.__noReload") == 1
    page.reload()
    assert page.locator(".paper-head button.vote").get_attribute("aria-pressed") == "true"

    page.fill("#comment-body", "A *clean* benchmark. The score is $s = \\frac{a}{b}$, see **Table 2**.")
    page.click(".comment-form button[type=submit]")
    page.wait_for_url("**/papers/2604.07429#comment-*")
    comment = page.locator("li.comment").first
    assert comment.locator("math").count() == 1 and comment.locator("strong").inner_text() == "Table 2"
    page.screenshot(path=str(ARTIFACTS / "community-paper.png"), full_page=True)
    assert seen == {"dialogs": [], "csp": [], "errors": []}
    ctx.close()

    mod_ctx = browser.new_context()
    mod = mod_ctx.new_page()
    mod_seen = _watch(mod)
    sign_in(mod, site.url, "moddy")
    mod.goto(f"{site.url}/papers/2604.07429")
    item = mod.locator("li.comment").first
    item.locator("summary", has_text="Hide").click()
    item.locator("input[name=reason]").fill("off-topic")
    with mod.expect_navigation():  # the form POST redirects back to the paper
        item.locator("button", has_text="Hide comment").click()
    item = mod.locator("li.comment").first
    assert "hidden: off-topic" in item.locator(".comment-meta").inner_text()
    mod.goto(f"{site.url}/moderation")
    assert "comment.hide" in mod.locator("table.audit").inner_text()
    mod.screenshot(path=str(ARTIFACTS / "community-moderation.png"), full_page=True)
    assert mod_seen == {"dialogs": [], "csp": [], "errors": []}
    mod_ctx.close()

    anon = browser.new_page()
    anon.goto(f"{site.url}/papers/2604.07429")
    assert "clean" not in anon.locator("#comments").inner_text()  # hidden from everyone else
    assert "Sign in" in anon.locator("#comments").inner_text()
    anon.close()


def test_vote_without_javascript(browser: Any, site: Site) -> None:
    accounts.create_account(site.community, "nojs", "nojs@example.org", PASSWORD)
    ctx = browser.new_context(java_script_enabled=False)
    page = ctx.new_page()
    sign_in(page, site.url, "nojs")
    page.goto(f"{site.url}/papers/{site.hostile_paper}")
    before = int(page.locator(".paper-head .vote-count").inner_text())
    with page.expect_navigation():  # without JS the vote is a form POST and a redirect
        page.click(".paper-head button.vote")
    assert page.url == f"{site.url}/papers/{site.hostile_paper}"  # back where the button was
    assert page.locator(".paper-head button.vote").get_attribute("aria-pressed") == "true"
    assert int(page.locator(".paper-head .vote-count").inner_text()) == before + 1
    ctx.close()


def test_hostile_data_stays_text(browser: Any, site: Site) -> None:
    ctx = browser.new_context()
    page = ctx.new_page()
    seen = _watch(page)
    sign_in(page, site.url, "moddy")  # a moderator sees the most (hidden items, the queue)
    for path in ("/", f"/papers/{site.hostile_paper}", f"/users/{quote(HOSTILE_NAME, safe='')}", "/moderation",
                 "/account", "/submit"):  # fmt: skip
        response = page.goto(site.url + path)
        assert response is not None and response.status == 200, path
        page.wait_for_load_state("load")
    page.goto(f"{site.url}/papers/{site.hostile_paper}")
    text = page.locator("body").inner_text()
    assert "<script>alert('title')</script>" in text and HOSTILE_NAME in text
    assert "<img src=x onerror=alert('abstract')>" in text
    assert page.locator("#comments script, #comments img, #comments iframe, .abstract-full img").count() == 0
    with page.expect_navigation():
        page.locator(f'a.comment-author:has-text("{HOSTILE_NAME}")').click()
    assert page.locator("h1").inner_text().startswith(HOSTILE_NAME)
    assert seen == {"dialogs": [], "csp": [], "errors": []}, seen
    ctx.close()


def test_signed_in_header_fits_a_phone(browser: Any, site: Site) -> None:
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    page = ctx.new_page()
    sign_in(page, site.url, "moddy")
    for path in ("/", f"/papers/{site.hostile_paper}", "/moderation", "/account"):
        page.goto(site.url + path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (path, overflow)
    page.goto(site.url + "/")
    page.screenshot(path=str(ARTIFACTS / "community-mobile.png"))
    ctx.close()
