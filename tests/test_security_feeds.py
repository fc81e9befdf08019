"""Issue 10 item 8: a feed's self link (RSS ``atom:link rel="self"``, Atom ``link rel="self"`` and
``<id>``) is built from the parameters the feed knows, normalised, never from the request's query
string: otherwise the first visitor's junk (``?x=...``) is cached and served to everybody."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from fastapi.testclient import TestClient

from paperfeed.config import Settings
from paperfeed.search.lexical import LexicalIndex
from paperfeed.store.db import Database

from .webutil import client, seed

ATOM = "{http://www.w3.org/2005/Atom}"
JUNK = {"x": '"><script>alert(1)</script>', "utm_source": "evil.example", "callback": "https://evil.example/"}


def _self_links(body: bytes, fmt: str) -> list[str]:
    """Every place the feed names its own address."""
    root = ET.fromstring(body)
    if fmt == "atom":
        return [root.find(f"{ATOM}link[@rel='self']").get("href"), root.findtext(f"{ATOM}id")]
    return [root.find("channel").find(f"{ATOM}link[@rel='self']").get("href")]


def _check(c: TestClient, settings: Settings, fmt: str, path: str, args: dict[str, str], canonical: str) -> None:
    """The junk request first (so it fills the cache), then the plain one: both name ``canonical``."""
    want = settings.base_url + canonical
    poisoned = c.get(path, params={**args, **JUNK})
    assert poisoned.status_code == 200, poisoned.text[:300]
    assert _self_links(poisoned.content, fmt) == [want] * (2 if fmt == "atom" else 1)
    plain = c.get(path, params=args)
    assert plain.status_code == 200
    assert _self_links(plain.content, fmt) == [want] * (2 if fmt == "atom" else 1)
    for junk in ("alert", "evil.example", "utm_source", "callback"):
        assert junk not in plain.text


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_self_link_ignores_unknown_parameters(settings: Settings, db: Database, fmt: str) -> None:
    seed(db)
    c = client(settings, db)
    _check(c, settings, fmt, f"/feeds/trending.{fmt}", {}, f"/feeds/trending.{fmt}")
    _check(c, settings, fmt, f"/feeds/daily.{fmt}", {}, f"/feeds/daily.{fmt}")
    _check(c, settings, fmt, f"/feeds/category/cs.LG.{fmt}", {}, f"/feeds/category/cs.LG.{fmt}")


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_search_feed_self_link_is_the_normalised_query(settings: Settings, db: Database, fmt: str) -> None:
    seed(db)
    LexicalIndex(settings).update(db, progress=False)
    c = client(settings, db)
    # Defaults (hybrid mode, date order for feeds) and extra spaces are not part of the address.
    _check(c, settings, fmt, f"/feeds/search.{fmt}", {"q": "  sparse   attention ", "mode": "hybrid", "sort": "date"},
           f"/feeds/search.{fmt}?q=sparse+attention")  # fmt: skip
    _check(c, settings, fmt, f"/feeds/search.{fmt}", {"q": "graph", "mode": "keyword", "category": "cs.CV"},
           f"/feeds/search.{fmt}?q=graph&mode=keyword&category=cs.CV")  # fmt: skip


def test_cached_search_page_does_not_keep_the_first_visitors_raw_query(settings: Settings, db: Database) -> None:
    """Pages share the same rule: the search box in the (cached) page shows the normalised query,
    which is what the cache key holds, not the first visitor's raw text."""
    seed(db)
    LexicalIndex(settings).update(db, progress=False)
    c = client(settings, db)
    long_query = "attention " * 50  # normalised to its first 500 characters
    first = c.get("/papers/search", params={"q": long_query + "INJECTED-BY-THE-FIRST-VISITOR"})
    assert first.status_code == 200
    second = c.get("/papers/search", params={"q": long_query})
    assert second.status_code == 200
    assert "INJECTED-BY-THE-FIRST-VISITOR" not in first.text + second.text
