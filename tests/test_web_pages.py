"""The HTML pages and their JSON twins, on SQLite and PostgreSQL: ordering, hiding, navigation,
escaping, errors that help, security headers, caching with ETag/304 and invalidation."""

from __future__ import annotations

import re
import time
from datetime import date, timedelta
from html.parser import HTMLParser

import pytest
from sqlalchemy import insert, update

from paperfeed.store import feed_queries, lookups
from paperfeed.store.db import utcnow
from paperfeed.store.schema import comments, daily_entries, papers

from . import factories as f
from .webutil import DAY, PREV_DAY, client, seed


def _titles(html: str) -> list[str]:
    return re.findall(r'class="card-title"><a href="[^"]+">(.*?)</a>', html)


def test_day_page_orders_by_upvotes_and_hides_hidden_entries(settings, any_db) -> None:
    ids = seed(any_db)
    c = client(settings, any_db)
    r = c.get(f"/papers/date/{DAY}")
    assert r.status_code == 200
    titles = _titles(r.text)
    assert titles[0] == "Sparse attention for long context"
    assert len(titles) == 3 and "Hidden spam paper" not in r.text
    assert f'href="/papers/date/{PREV_DAY}"' in r.text and 'rel="prev"' in r.text
    # Cards: the first authors and a count, GitHub stars, submitter, comment count.
    assert "and 2 more · 5 authors" in r.text
    assert "★ 1.2k" in r.text and "submitted by alice" in r.text

    j = c.get(f"/papers/date/{DAY}.json").json()
    assert [p["id"] for p in j["papers"]] == [ids["top"]["id"], ids["mid"]["id"], ids["low"]["id"]]
    assert j["papers"][0]["upvotes"] == 42 and j["total"] == 3
    assert j["nav"]["prev"]["label"] == str(PREV_DAY) and j["nav"]["next"] is None
    # The Accept header gives the same document as the .json twin.
    assert c.get(f"/papers/date/{DAY}", headers={"Accept": "application/json"}).json() == j


def test_index_shows_the_latest_day_with_papers(settings, db) -> None:
    seed(db)
    c = client(settings, db)
    j = c.get("/.json").json()
    assert j["period"] == str(DAY) and j["is_index"] is True
    assert c.get("/index.json").json() == j
    assert "Sparse attention" in c.get("/").text


def test_empty_site_says_how_to_get_papers(settings, db) -> None:
    r = client(settings, db).get("/")
    assert r.status_code == 200 and "No daily papers yet" in r.text and "paperfeed demo" in r.text


def test_week_and_month_pages(settings, db) -> None:
    seed(db)
    c = client(settings, db)
    w = c.get("/papers/week/2025-W03.json").json()
    assert w["kind"] == "week" and w["total"] == 4  # Monday 13th .. Sunday 19th
    assert c.get("/papers/month/2025-01.json").json()["total"] == 4
    empty = c.get("/papers/month/2024-06")
    assert empty.status_code == 200 and "No papers were featured" in empty.text


def test_day_without_papers_links_to_neighbours(settings, db) -> None:
    seed(db)
    r = client(settings, db).get("/papers/date/2025-01-14")
    assert r.status_code == 200
    assert f'href="/papers/date/{PREV_DAY}"' in r.text and f'href="/papers/date/{DAY}"' in r.text


@pytest.mark.parametrize(
    "url, status, text",
    [
        ("/papers/date/2025-02-30", 404, "not a real date"),
        ("/papers/date/banana", 404, "use YYYY-MM-DD"),
        ("/papers/week/2025-W60", 404, "no ISO week 60"),
        ("/papers/month/2025-13", 404, "01 to 12"),
        ("/papers/date/2025-01-15?p=0", 400, "between 1 and"),
        ("/papers/week/2025-W03?p=99999999999999999999999", 400, "between 1 and"),
        ("/papers/new?category=%27%3B+DROP", 400, "not an arXiv category"),
        ("/papers/new?date=2025-02-30", 400, "not a real date"),
        ("/papers/trending?p=abc", 400, "whole number"),
        ("/papers/not-an-id", 404, "not an arXiv identifier"),
        ("/authors/x?p=-3", 400, "between 1 and"),
        ("/no/such/page", 404, "no page at this address"),
    ],
)
def test_bad_input_gets_a_helpful_4xx(settings, db, url: str, status: int, text: str) -> None:
    seed(db)
    r = client(settings, db).get(url)
    assert r.status_code == status
    assert text in r.text
    assert "Traceback" not in r.text


def test_odd_requests_never_5xx(settings, db) -> None:
    seed(db)
    c = client(settings, db)
    odd = {  # each gets its specific answer: a page, or a clear 4xx - never a 5xx
        "/papers/%ff%fe": 404,
        "/authors/%00": 200,
        "/papers/search?q=%ff": 200,
        "/papers/search?q=" + "x" * 5000: 200,
        "/papers/date/2025-01-15.json.json": 404,
        "/papers/" + "9" * 500: 404,
        "/?p=%00": 200,
        "/papers/new?cat=cs.LG&p=1000": 200,
        "/feeds/category/.atom": 404,
        "/feeds/category/cs.LG.xml": 404,
        "/papers/search?from=2025-01-01&to=2024-01-01&q=a": 400,
        "/api/daily_papers?date=%00": 422,
        "/api/papers/%2e%2e": 404,
        "/papers/2501.00001v999999": 404,
    }
    for url, status in odd.items():
        r = c.get(url)
        assert r.status_code == status, (url, r.status_code)
        assert "Traceback" not in r.text
    assert c.post("/papers/date/2025-01-15").status_code == 405


def test_paper_page_escapes_renders_math_and_lists_everything(settings, any_db) -> None:
    p = f.add_paper(
        any_db,
        title="<script>alert(1)</script> on $O(n^2)$ attention",
        abstract="We show $a<b$ & more.\nSecond line.",
        authors=["Ada Lovelace", "O'Brien <x>"],
        github_repo="https://github.com/ex/x",
        github_stars=5,
        project_page="https://example.org/p",
        version=3,
    )
    f.add_daily(any_db, p["id"], DAY, submitter="carol")
    c = client(settings, any_db)
    html = c.get(f"/papers/{p['id']}").text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<math" in html and "<msup>" in html
    assert 'href="/authors/O%27Brien%20%3Cx%3E"' in html and "O&#39;Brien &lt;x&gt;" in html
    assert f"https://arxiv.org/pdf/{p['id']}" in html and "https://example.org/p" in html
    assert "submitted by carol" in html and "v3" in html
    # Versioned ids redirect to the canonical page (and keep the JSON suffix).
    r = c.get(f"/papers/{p['id']}v2", follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == f"/papers/{p['id']}"
    r = c.get(f"/papers/{p['id']}v2.json", follow_redirects=False)
    assert r.headers["location"] == f"/papers/{p['id']}.json"
    j = c.get(f"/papers/{p['id']}.json").json()
    assert j["paper"]["title"].startswith("<script>") and j["paper"]["authors"][1] == "O'Brien <x>"


def test_unknown_paper_offers_arxiv(settings, db) -> None:
    r = client(settings, db).get("/papers/2412.99999")
    assert r.status_code == 404
    assert "https://arxiv.org/abs/2412.99999" in r.text and "not in this paperfeed yet" in r.text
    j = client(settings, db).get("/papers/2412.99999.json")
    assert j.status_code == 404 and "not in this paperfeed" in j.json()["detail"]


def test_comments_thread_shows_visible_comments_only(settings, any_db) -> None:
    p = f.add_paper(any_db, num_comments=2)
    uid = f.add_user(any_db, "dana")
    now = utcnow()
    with any_db.write() as conn:
        root = conn.execute(
            insert(comments).values(
                paper_id=p["id"], user_id=uid, body="hi", body_html="<p>Root <em>comment</em></p>", created_at=now
            )
        ).inserted_primary_key[0]
        conn.execute(
            insert(comments).values(
                paper_id=p["id"],
                user_id=uid,
                parent_id=root,
                body="r",
                body_html="<p>A reply</p>",
                created_at=now + timedelta(seconds=1),
            )
        )
        conn.execute(
            insert(comments).values(
                paper_id=p["id"], user_id=uid, body="x", body_html="<p>Hidden one</p>", created_at=now, hidden=True
            )
        )
        conn.execute(
            insert(comments).values(
                paper_id=p["id"], user_id=uid, body="y", body_html="<p>Deleted one</p>", created_at=now, deleted=True
            )
        )
    c = client(settings, any_db)
    html = c.get(f"/papers/{p['id']}").text
    assert "<p>Root <em>comment</em></p>" in html and "<p>A reply</p>" in html
    assert "Hidden one" not in html and "Deleted one" not in html
    thread = c.get(f"/papers/{p['id']}.json").json()["comments"]
    assert len(thread) == 1 and thread[0]["replies"][0]["body_html"] == "<p>A reply</p>"


@pytest.mark.parametrize("refreshed", [False, True])
def test_author_page_matches_names(settings, any_db, refreshed: bool) -> None:
    a = f.add_paper(any_db, authors=["Ann Lee", "Bob"], published=date(2025, 1, 2))
    b = f.add_paper(any_db, authors=["Zoë Ünicode", "Ann Lee"], published=date(2025, 1, 5))
    f.add_paper(any_db, authors=["Ann Leeds"])
    f.add_paper(any_db, authors=["100%_match"])
    if refreshed:  # the lookup table path (margin 0: the rows were written a moment ago)
        assert lookups.refresh(any_db, margin=timedelta(0)) == 4
    c = client(settings, any_db)
    j = c.get("/authors/Ann Lee.json").json()
    assert [p["id"] for p in j["papers"]] == [b["id"], a["id"]] and j["total"] == 2
    assert c.get("/authors/ann  LEE.json").json()["total"] == 2  # case and spacing do not matter
    assert c.get("/authors/Zoe Unicode.json").json()["total"] == 1  # nor do accents
    assert c.get("/authors/100%25_match.json").json()["total"] == 1
    assert c.get("/authors/100%25.json").json()["total"] == 0
    assert "No papers by" in c.get("/authors/Nobody").text


def test_author_lookup_never_trusts_a_stale_table(settings, any_db) -> None:
    p = f.add_paper(any_db, authors=["Old Name"])
    lookups.refresh(any_db, margin=timedelta(0))
    time.sleep(0.01)
    with any_db.write() as conn:  # an import changes the author list after the refresh
        conn.execute(update(papers).where(papers.c.id == p["id"]).values(authors=["New Name"], modified_at=utcnow()))
    with any_db.read() as conn:
        assert feed_queries.author_papers(conn, "Old Name", limit=10, offset=0)[1] == 0
        rows, total, backlog = feed_queries.author_papers(conn, "New Name", limit=10, offset=0)
        assert total == 1 and backlog == 1
    lookups.refresh(any_db, margin=timedelta(0))
    with any_db.read() as conn:
        assert feed_queries.author_papers(conn, "New Name", limit=10, offset=0)[1:] == (1, 0)  # from the table
        # Category feed: same rule, same answer with or without the table.
        assert [r["id"] for r in feed_queries.category_latest(conn, "cs.LG")] == [p["id"]]


def test_new_on_arxiv_filters_by_category(settings, db) -> None:
    ids = seed(db)
    c = client(settings, db)
    day = c.get("/papers/new.json?date=2025-01-13").json()
    assert [p["id"] for p in day["papers"]] == [ids["old"]["id"]]
    assert c.get("/papers/new.json?date=2025-01-13&category=cs.CV").json()["total"] == 1
    assert c.get("/papers/new.json?date=2025-01-13&category=cs.AI").json()["total"] == 0
    assert c.get("/papers/new.json?date=2025-01-13&category=cs.L").json()["total"] == 0  # no prefix matches
    latest = c.get("/papers/new.json").json()
    assert latest["date"] == "2025-01-16" and latest["total"] == 4
    assert latest["nav"]["prev"]["label"] == "2025-01-13"


def test_trending_page_explains_each_score(settings, db) -> None:
    seed(db)
    c = client(settings, db)
    j = c.get("/papers/trending.json").json()
    assert j["papers"][0]["title"] == "Sparse attention for long context"
    t = j["papers"][0]["trending"]
    assert t["upvotes"] == 42 and t["github_stars"] == 1200 and t["score"] > 0
    assert "Hidden spam paper" not in str(j)
    html = c.get("/papers/trending").text
    assert 'title="score ' in html and "/about/ranking" in html
    assert "log2(1 + github_stars)" in c.get("/about/ranking").text


def test_security_headers_everywhere(settings, db) -> None:
    c = client(settings, db)
    for url in ["/", "/static/style.css", "/nope", "/api/v1/stats", "/feeds/daily.atom", "/docs"]:
        h = c.get(url).headers
        assert "script-src 'self'" in h["content-security-policy"], url
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert "unsafe-inline" not in h["content-security-policy"].split("script-src", 1)[1].split(";")[0]
        assert h["x-content-type-options"] == "nosniff"
        assert h["x-frame-options"] == "DENY"
        assert h["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "style-src 'self';" in c.get("/").headers["content-security-policy"]


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self.style_attrs = 0

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        a = dict(attrs)
        if tag == "script":
            if a.get("src"):
                self.urls.append(a["src"])
            else:
                self.inline_scripts += 1
        if tag == "link" and a.get("rel") in ("stylesheet", "icon"):
            self.urls.append(a["href"])
        if tag == "img":
            self.urls.append(a["src"])
        if "style" in a:
            self.style_attrs += 1


def test_pages_use_local_assets_only_and_no_inline_script_or_style(settings, db) -> None:
    ids = seed(db)
    c = client(settings, db)
    for url in [
        "/",
        f"/papers/{ids['top']['id']}",
        "/papers/search?q=x",
        "/papers/trending",
        "/about/ranking",
        "/docs",
    ]:
        parser = _Assets()
        parser.feed(c.get(url).text)
        assert parser.inline_scripts == 0 and parser.style_attrs == 0, url
        for asset in parser.urls:
            # Same-origin paths only (no CDN, no protocol-relative //host).
            assert asset.startswith("/") and not asset.startswith("//"), (url, asset)
            assert c.get(asset).status_code == 200, asset


def test_etag_and_last_modified_give_304(settings, db) -> None:
    seed(db)
    c = client(settings, db)
    r = c.get(f"/papers/date/{DAY}")
    etag, lm = r.headers["etag"], r.headers["last-modified"]
    assert c.get(f"/papers/date/{DAY}", headers={"If-None-Match": etag}).status_code == 304
    assert c.get(f"/papers/date/{DAY}", headers={"If-Modified-Since": lm}).status_code == 304
    assert c.get(f"/papers/date/{DAY}", headers={"If-None-Match": '"other"'}).status_code == 200
    assert c.get(f"/papers/date/{DAY}", headers={"If-Modified-Since": "garbage"}).status_code == 200
    # The JSON twin is a different representation: different tag.
    assert c.get(f"/papers/date/{DAY}.json").headers["etag"] != etag


def test_writes_by_another_process_invalidate_the_cache(settings, db) -> None:
    ids = seed(db)
    c = client(settings, db)
    first = c.get(f"/papers/date/{DAY}.json")
    # Another worker/importer writes: a new entry, then a hide (no timestamp moves for that).
    extra = f.add_paper(db, title="Late addition", imported_upvotes=3)
    f.add_daily(db, extra["id"], DAY)
    time.sleep(0.3)
    second = c.get(f"/papers/date/{DAY}.json", headers={"If-None-Match": first.headers["etag"]})
    assert second.status_code == 200 and second.json()["total"] == 4
    with db.write() as conn:
        conn.execute(update(daily_entries).where(daily_entries.c.paper_id == ids["top"]["id"]).values(hidden=True))
    time.sleep(0.3)
    assert c.get(f"/papers/date/{DAY}.json").json()["total"] == 3
    # A vote count change shows up as well.
    with db.write() as conn:
        conn.execute(update(papers).where(papers.c.id == ids["low"]["id"]).values(upvotes=500, modified_at=utcnow()))
    time.sleep(0.3)
    assert c.get(f"/papers/date/{DAY}.json").json()["papers"][0]["id"] == ids["low"]["id"]


def test_unexpected_errors_give_a_friendly_500_without_traceback(settings, db) -> None:
    c = client(settings, db)

    @c.app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    r = c.get("/boom")
    assert r.status_code == 500
    assert "Something went wrong" in r.text and "secret internals" not in r.text and "Traceback" not in r.text
    assert r.headers["x-frame-options"] == "DENY"


def test_head_requests_get_headers_without_a_body(settings, db) -> None:
    seed(db)
    c = client(settings, db)
    for url in ["/", "/api/daily_papers", "/feeds/daily.atom", f"/papers/date/{DAY}.json"]:
        get, head = c.get(url), c.head(url)
        assert head.status_code == 200 and head.content == b"", url
        assert head.headers["etag"] == get.headers["etag"]
        assert head.headers["content-length"] == str(len(get.content))
