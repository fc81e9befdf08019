"""The site in a real browser: navigate the feed, search, open a paper, follow a similar paper,
read a feed; no script from data ever runs; no CSP violations; no horizontal scroll at 390 px."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import ARTIFACTS, demo_site

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with demo_site(tmp_path_factory, "browser-home") as url:
        yield url


def _watch(page: Any) -> dict[str, list[str]]:
    """Collect dialogs (a script from data ran), CSP violations and page errors."""
    seen: dict[str, list[str]] = {"dialogs": [], "csp": [], "errors": []}

    def on_dialog(d: Any) -> None:
        seen["dialogs"].append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda m: "Content Security Policy" in m.text and seen["csp"].append(m.text))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    return seen


def test_reader_journey(browser: Any, site: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    seen = _watch(page)

    page.goto(site + "/")
    assert page.locator("article.card").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "feed-desktop.png"), full_page=True)
    page.screenshot(path=str(ARTIFACTS / "feed-desktop-viewport.png"))

    # Previous day (link or the left arrow key).
    first_url = page.url
    with page.expect_navigation():
        page.locator("nav.date-nav a[rel=prev]").click()
    assert page.url != first_url and "/papers/date/" in page.url
    prev_url = page.url
    with page.expect_navigation():
        page.keyboard.press("ArrowRight")
    assert page.url != prev_url

    # Search from the header box ("/" focuses it).
    page.keyboard.press("/")
    page.keyboard.type("attention")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "/papers/search?q=attention" in page.url
    assert page.locator("article.card mark").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "search-desktop.png"), full_page=True)

    # Open the first result, then a similar paper.
    first = page.locator("article.card .card-title a").first
    clicked = " ".join(first.inner_text().split())
    with page.expect_navigation():
        first.click()
    assert "/papers/" in page.url
    title = page.locator("h1").inner_text()
    assert " ".join(title.split()) == clicked  # the page of the paper that was clicked
    page.screenshot(path=str(ARTIFACTS / "paper-desktop.png"), full_page=True)
    similar = page.locator("section[aria-labelledby=similar-h] .card-title a")
    if similar.count():
        with page.expect_navigation():
            similar.first.click()
        assert page.locator("h1").inner_text() != title

    # A feed is valid XML with items.
    response = page.goto(site + "/feeds/daily.rss")
    root = ET.fromstring(response.body())
    assert root.find("channel/item/link") is not None

    assert seen["dialogs"] == [], "a script from the data ran"
    assert seen["csp"] == [] and seen["errors"] == []
    page.close()


def test_hostile_titles_stay_text(browser: Any, site: str) -> None:
    page = browser.new_page()
    seen = _watch(page)
    for url in ["/", "/papers/search?q=script+alert+hostile", "/papers/trending", "/api/daily_papers"]:
        page.goto(site + url)
    assert seen["dialogs"] == []
    page.close()


def test_mobile_layout_has_no_horizontal_scroll(browser: Any, site: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    for url in ["/", "/papers/trending", "/papers/search?q=attention&mode=keyword", "/papers/new", "/about/ranking"]:
        page.goto(site + url)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{url} scrolls sideways by {overflow}px"
    page.goto(site + "/")
    page.screenshot(path=str(ARTIFACTS / "feed-mobile.png"), full_page=True)
    page.screenshot(path=str(ARTIFACTS / "feed-mobile-viewport.png"))
    context.close()


def test_dark_mode_follows_the_system(browser: Any, site: str) -> None:
    context = browser.new_context(color_scheme="dark")
    page = context.new_page()
    page.goto(site + "/")
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg != "rgb(248, 250, 252)"  # the light surface colour
    page.screenshot(path=str(ARTIFACTS / "feed-dark.png"))
    context.close()


def test_keyboard_users_can_skip_to_content(browser: Any, site: str) -> None:
    page = browser.new_page()
    page.goto(site + "/")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.className")
    assert focused == "skip-link"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.close()
