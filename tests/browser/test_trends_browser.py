"""Trends in a real browser, on the bundled sample: the timeline above a search (a bar click narrows
the dates), the trends page with two queries (lines, legend, table), no CSP violations, and no
horizontal scroll at 390 px (in dark mode). Screenshots go to test-artifacts/ (docs/trends.png is one of them)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from .conftest import ARTIFACTS, demo_site

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with demo_site(tmp_path_factory, "trends-home") as url:
        yield url


def _watch(page: Any) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: "Content Security Policy" in m.text and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


def _no_sideways_scroll(page: Any, selector: str) -> None:
    widths = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"
    for box in page.locator(selector).all():
        assert box.evaluate("el => el.scrollWidth <= el.clientWidth"), f"{selector} scrolls sideways"
        right = box.evaluate("el => el.getBoundingClientRect().right")
        assert right <= widths[1] + 0.5


def test_search_timeline_bar_narrows_the_dates(browser: Any, site: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = _watch(page)
    page.goto(site + "/papers/search?q=language+models&mode=keyword")
    chart = page.locator("#timeline-chart svg")
    assert chart.count() == 1
    assert "per" in page.locator("#timeline-h").inner_text()
    assert page.locator("#timeline-chart svg title").first.text_content().startswith("Papers matching")
    assert page.locator(".timeline-facets a").count() >= 2  # top categories and authors are links
    page.screenshot(path=str(ARTIFACTS / "search-timeline.png"), full_page=False)

    links = page.locator("#timeline-chart a.chart-bar-link")
    assert links.count() >= 2
    # Click the bar with the most papers.
    counts = [
        int(x.replace(",", "")) for x in page.locator("#timeline-chart table tbody td:nth-child(3)").all_text_contents()
    ]
    target = links.nth(counts.index(max(counts)))
    start = target.get_attribute("data-start")
    with page.expect_navigation():
        target.click()
    args = parse_qs(urlparse(page.url).query)
    assert args["from"] == [start] and args["q"] == ["language models"]
    assert page.locator("#from").input_value() == start
    assert page.locator("#to").input_value() == args["to"][0] > start
    assert page.locator("#timeline-chart .chart-shade").count() == 1  # the chosen dates are shaded
    page.screenshot(path=str(ARTIFACTS / "search-timeline-narrowed.png"), full_page=False)
    assert problems == []


def test_trends_page_draws_two_queries_with_legend_and_table(browser: Any, site: str) -> None:
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    problems = _watch(page)
    page.goto(site + "/trends")
    page.fill("#tq0", "language models")
    page.fill("#tq1", "diffusion")
    page.fill("#t-from", "2026-05-25")  # the bundled sample's papers are from June and July 2026
    with page.expect_navigation():
        page.click("button:has-text('Compare')")
    assert page.locator("#trend-chart polyline.chart-line").count() == 2
    legend = page.locator("#trend-chart .chart-legend li")
    assert legend.count() == 2
    assert legend.nth(0).inner_text().startswith("language models")
    assert legend.nth(1).inner_text().startswith("diffusion")
    headers = page.locator("table.trend-table thead th").all_inner_texts()
    assert headers[1:] == ["language models", "diffusion", "All"]
    assert page.locator("table.trend-table tbody tr").count() >= 2
    assert parse_qs(urlparse(page.url).query)["from"] == ["2026-05-25"]
    assert page.locator("#trend-chart svg title").text_content().startswith("language models vs diffusion")
    page.screenshot(path=str(ARTIFACTS / "trends.png"), full_page=False)
    assert problems == []


def test_charts_fit_a_phone(browser: Any, site: str) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, color_scheme="dark")
    problems = _watch(page)
    page.goto(site + "/papers/search?q=language+models&mode=keyword")
    _no_sideways_scroll(page, ".timeline, .chart")
    page.screenshot(path=str(ARTIFACTS / "search-timeline-390.png"), full_page=False)
    page.goto(site + "/trends?q=language+models&q=diffusion&q=agent&q=%22reinforcement+learning%22&scale=share")
    assert page.locator("#trend-chart polyline.chart-line").count() == 4
    _no_sideways_scroll(page, ".chart, .table-scroll")
    page.screenshot(path=str(ARTIFACTS / "trends-390.png"), full_page=True)
    assert problems == []
