"""Issue 14's "done when", in a real browser (headless Chromium, a live uvicorn server): import a
BibTeX file -> the library appears, the unmatched entry listed -> /for-you ranks with a reason on
every card -> "Not interested" changes the ranking -> follow an author on their page -> the
private Atom feed's address parses in a feed reader (feedparser) -> the email digest (aiosmtpd)
has the "For you" section with why."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest

from paperfeed.community import accounts
from paperfeed.community.core import Community
from paperfeed.config import Settings
from paperfeed.digest import subscriptions as subs
from paperfeed.digest.send import send_due
from paperfeed.store.db import Database
from paperfeed.web.app import create_app
from tests import factories as f
from tests.community_util import FAST, PASSWORD, unlimited
from tests.smtp import SmtpSink

from ..servers import LiveServer
from .conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DAY = date(2026, 11, 23)  # a Monday: the daily digest of Tuesday the 24th covers it
GNN = "graph neural networks message passing over molecular graphs node embeddings"
TOPICS = ["protein folding", "quantum error correction", "speech recognition", "robot grasping", "weak lensing",
          "loop compilers", "auction design", "glacier melt", "sparse solvers", "music generation", "fluid mixing",
          "crop yields", "database indexes", "malware detection", "ocean currents", "dark matter halos"]  # fmt: skip


@dataclass
class Site:
    url: str
    settings: Settings
    db: Database
    lib: list[dict[str, Any]]
    graph: list[dict[str, Any]]
    sink: SmtpSink


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    sink = SmtpSink().start()
    home = tmp_path_factory.mktemp("personal-browser")
    settings = Settings(home=home, secret_key="test", base_url="http://127.0.0.1", smtp_url=sink.url)
    db = Database(settings.db_url)
    db.migrate()
    lib = [f.add_paper(db, title=f"Message passing graph networks {i}", abstract=f"We study {GNN} ({i}).",
                       doi=f"10.1234/gnn.{i}", listed=DAY - timedelta(days=40 + i)) for i in range(3)]  # fmt: skip
    graph = [f.add_paper(db, title=f"Scalable graph neural networks {i}", abstract=f"New {GNN} results ({i}).",
                         authors=["Grace Hopper", "Alan Turing"], listed=DAY - timedelta(days=i))
             for i in range(3)]  # fmt: skip
    for i in range(80):
        t = TOPICS[i % len(TOPICS)]
        f.add_paper(db, title=f"Advances in {t} {i}", abstract=f"We report on {t} and {TOPICS[(i * 7) % 16]}.",
                    authors=["Someone Else"], categories="physics.gen-ph",
                    listed=DAY - timedelta(days=i % 20))  # fmt: skip
    for p in graph:
        f.add_daily(db, p["id"], DAY)
    app = create_app(settings, db)
    c: Community = app.state.community
    c.password_params, c.limits = FAST, unlimited()
    accounts.create_account(c, "alice", "alice@example.org", PASSWORD)
    with LiveServer(app) as server:
        yield Site(server.url, settings, db, lib, graph, sink)
    sink.stop()
    db.dispose()


def _bibtex(site: Site, path: Path) -> Path:
    a, b, _ = site.lib
    path.write_text(
        f"@article{{first, title = {{{a['title']}}}, eprint = {{{a['id']}}}, archivePrefix = {{arXiv}}, year = 2026}}\n"
        f"@article{{second, title = {{Another title entirely}}, doi = {{{b['doi']}}}, year = 2026}}\n"
        "@book{nowhere, title = {A Treatise on Things Nobody Indexed}, author = {Nobody, N.}, year = 1901}\n",
        encoding="utf-8",
    )
    return path


def _card_ids(page: Any) -> list[str]:
    return page.locator(".cards.for-you article.card .lib-actions").evaluate_all(
        "els => els.map(e => e.dataset.paper)"
    )


def test_import_rank_dismiss_follow_feed_and_digest(browser: Any, site: Site, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{site.url}/signin")
    page.fill("#f-login", "alice")
    page.fill("#f-password", PASSWORD)
    page.click("form.cform button[type=submit]")
    page.wait_for_url(f"{site.url}/")

    # 1. Import a BibTeX file: two entries match (arXiv id, DOI), the third is listed as not imported.
    page.goto(f"{site.url}/library/import")
    page.set_input_files("#imp-file", str(_bibtex(site, tmp_path / "refs.bib")))
    with page.expect_navigation():
        page.click("main form.cform button[type=submit]")
    result = page.locator("main").inner_text()
    assert "A Treatise on Things Nobody Indexed" in page.locator("table.unmatched").inner_text()
    assert "2 added" in result and "by arxiv id" in result and "by doi" in result
    with page.expect_navigation():
        page.click("main a.btn:has-text('Open Saved')")
    library = page.locator("main").inner_text()
    assert site.lib[0]["title"] in library and site.lib[1]["title"] in library

    # 2. For you: the library's topic first, a reason on every card.
    page.goto(f"{site.url}/for-you")
    page.screenshot(path=str(ARTIFACTS / "for-you.png"), full_page=True)
    ranked = _card_ids(page)
    assert set(ranked[:3]) == {p["id"] for p in site.graph}, ranked[:5]
    whys = page.locator(".cards.for-you article.card ul.why").all_inner_texts()
    assert len(whys) == len(ranked) and all(w.strip() for w in whys)
    assert "in your library" in whys[0]

    # 3. "Not interested" on the top card (in place), then the ranking is different.
    top = ranked[0]
    card = page.locator(f".cards.for-you .lib-actions[data-paper='{top}']")
    card.locator("form.feedback-form button", has_text="Not interested").first.click()
    page.locator("article.card.dismissed .dismissed-note").first.wait_for()  # in place, with an Undo
    page.reload()
    after = _card_ids(page)
    assert top not in after and after != ranked

    # 4. Follow an author from their page (in place), then /following shows their new papers and why.
    page.goto(f"{site.url}/authors/Grace Hopper")
    page.click(".author-actions button.follow")
    page.wait_for_selector(".author-actions button.follow[aria-pressed=true]")
    page.goto(f"{site.url}/following")
    assert "from Grace Hopper, an author you follow" in page.locator("main").inner_text()

    # 5. A private feed address, read by a feed reader without cookies.
    page.goto(f"{site.url}/account")
    with page.expect_navigation():
        page.click("#feeds ~ form button:has-text('Make my private feed address')")
    for name in ("for-you-atom", "following-atom"):
        url = page.locator(f"#feed-{name}").inner_text().replace("http://127.0.0.1", site.url)
        parsed = feedparser.parse(httpx.get(url, timeout=30).content)
        assert not parsed.bozo and parsed.entries, name
        assert all(e.summary.startswith("Why: ") for e in parsed.entries)

    # 6. The digest: turn on the For-you section on /for-you; the mailed digest has it, with why.
    page.goto(f"{site.url}/for-you")
    page.check("input[name=digest_for_you]")
    page.fill("#fy-thr", "0.8")
    with page.expect_navigation():
        page.click("#controls form.cform button.primary")
    assert "Settings saved" in page.locator("main").inner_text()
    assert not errors, errors
    subs.bulk_activate(site.db, [("alice@example.org", subs.Prefs())], now=datetime(2026, 1, 1))
    send_day = DAY + timedelta(days=1)
    report = send_due(replace(site.settings, base_url=site.url), site.db, day=send_day,
                      clock=lambda: datetime.combine(send_day, datetime.min.time()) + timedelta(hours=9))  # fmt: skip
    assert report.sent == 1, report
    text = site.sink.messages[-1].msg.get_body(("plain",)).get_content()
    section = text.split("== For you ==", 1)[1].split("\n== ", 1)[0]
    assert "Scalable graph neural networks" in section and "Why: from Grace Hopper, an author you follow" in section
