"""RSS 2.0 and Atom feeds: valid XML (parsed), escaped text, links, and search feeds."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from paperfeed.search.lexical import LexicalIndex

from . import factories as f
from .webutil import client, seed

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_daily_and_trending_feeds_parse_and_link_back(settings, db, fmt: str) -> None:
    ids = seed(db)
    c = client(settings, db)
    for url in [f"/feeds/daily.{fmt}", f"/feeds/trending.{fmt}"]:
        r = c.get(url)
        assert r.status_code == 200 and r.headers["content-type"].startswith(f"application/{fmt}+xml")
        root = ET.fromstring(r.content)
        if fmt == "atom":
            links = [e.find(f"{ATOM}link").get("href") for e in root.findall(f"{ATOM}entry")]
            assert root.find(f"{ATOM}link[@rel='self']").get("href") == settings.base_url + url
        else:
            links = [i.findtext("link") for i in root.find("channel").findall("item")]
        assert f"{settings.base_url}/papers/{ids['top']['id']}" in links
        assert f"{settings.base_url}/papers/{ids['hidden']['id']}" not in links


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_hostile_text_is_escaped_and_control_characters_dropped(settings, db, fmt: str) -> None:
    p = f.add_paper(db, title="A <b>&</b> ]]> \x0b\x00 title", abstract="x < y & \x1f z", authors=["<Eve>"])
    f.add_daily(db, p["id"], f.date(2025, 1, 15))
    body = client(settings, db).get(f"/feeds/daily.{fmt}").content
    root = ET.fromstring(body)  # would raise on invalid XML
    text = ET.tostring(root, encoding="unicode")
    assert "&lt;b&gt;&amp;&lt;/b&gt; ]]&gt;" in text and "\x0b" not in text


def test_category_feed(settings, db) -> None:
    ids = seed(db)
    c = client(settings, db)
    root = ET.fromstring(c.get("/feeds/category/cs.CV.atom").content)
    entries = root.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}id") for e in entries] == [f"{settings.base_url}/papers/{ids['old']['id']}"]
    assert c.get("/feeds/category/cs.LG.rss").status_code == 200
    assert c.get("/feeds/category/bad!cat.atom").status_code == 404
    assert c.get("/feeds/category/cs.LG.pdf").status_code == 404


def test_search_feeds_follow_any_query(settings, db) -> None:
    ids = seed(db)
    LexicalIndex(settings).update(db, progress=False)
    c = client(settings, db)
    root = ET.fromstring(c.get("/feeds/search.atom", params={"q": "sparse attention", "mode": "keyword"}).content)
    assert root.findtext(f"{ATOM}title") == "Search: sparse attention"
    ids_in_feed = [e.findtext(f"{ATOM}id") for e in root.findall(f"{ATOM}entry")]
    assert f"{settings.base_url}/papers/{ids['top']['id']}" in ids_in_feed
    rss = ET.fromstring(c.get("/feeds/search.rss", params={"q": "<script> & 'x'"}).content)
    assert rss.find("channel").findtext("title") == "Search: <script> & 'x'"
    assert c.get("/feeds/search.atom").status_code == 422
    assert c.get("/feeds/search.atom?q=x&from=2025-02-30").status_code == 422


def test_pages_advertise_their_feeds(settings, db) -> None:
    seed(db)
    c = client(settings, db)
    assert 'rel="alternate" type="application/atom+xml"' in c.get("/").text
    assert 'href="/feeds/trending.atom"' in c.get("/papers/trending").text
    assert 'href="/feeds/category/cs.CV.atom"' in c.get("/papers/new?category=cs.CV").text
    assert "/feeds/search.atom?q=graph" in c.get("/papers/search?q=graph").text
