"""Search page and search API over the real SearchService (keyword index built by the test):
highlights, the "why", filters, pagination, and empty/error states that help."""

from __future__ import annotations

import pytest

from paperfeed.search.lexical import LexicalIndex

from . import factories as f
from .webutil import client, seed


@pytest.fixture
def searchable(settings, db):  # type: ignore[no-untyped-def]
    ids = seed(db)
    f.add_paper(db, title="Graph <i>neural</i> networks & attention", abstract="Message passing with attention heads.")
    f.add_papers(db, [f.make_paper(title=f"Attention variant {n}", abstract="Attention again.") for n in range(30)])
    LexicalIndex(settings).update(db, progress=False)
    return ids, client(settings, db)


def test_results_are_highlighted_escaped_and_explained(searchable) -> None:
    _ids, c = searchable
    r = c.get("/papers/search", params={"q": "graph neural", "mode": "keyword"})
    assert r.status_code == 200
    assert "<mark>Graph</mark> &lt;i&gt;<mark>neural</mark>&lt;/i&gt;" in r.text
    assert "keyword match #1" in r.text
    j = c.get("/papers/search.json", params={"q": "graph neural", "mode": "keyword"}).json()
    assert j["hits"][0]["title"].startswith("Graph <i>neural</i>") and j["mode_used"] == "keyword"


def test_hybrid_without_vectors_says_it_fell_back(searchable) -> None:
    _ids, c = searchable
    j = c.get("/papers/search.json", params={"q": "sparse attention"}).json()
    assert j["total"] >= 1 and j["mode_used"] == "keyword"
    assert any("keyword" in w for w in j["warnings"])


def test_pagination_and_sort(searchable) -> None:
    _ids, c = searchable
    p1 = c.get("/papers/search.json", params={"q": "attention", "mode": "keyword"}).json()
    assert p1["pages"] >= 2 and len(p1["hits"]) == 20
    p2 = c.get("/papers/search.json", params={"q": "attention", "mode": "keyword", "p": 2}).json()
    assert not {h["id"] for h in p1["hits"]} & {h["id"] for h in p2["hits"]}
    html = c.get("/papers/search", params={"q": "attention", "mode": "keyword"}).text
    assert 'rel="next" href="/papers/search?mode=keyword&amp;q=attention&amp;p=2"' in html
    by_votes = c.get("/papers/search.json", params={"q": "attention", "sort": "upvotes", "mode": "keyword"}).json()
    assert by_votes["hits"][0]["title"] == "Sparse attention for long context"


@pytest.mark.parametrize(
    "params, status, message",
    [
        ({"q": "x", "from": "2025-02-30"}, 400, "not a real date"),
        ({"q": "x", "from": "2025-03-01", "to": "2025-01-01"}, 400, "after the end date"),
        ({"q": "x", "mode": "magic"}, 400, "mode must be one of"),
        ({"q": "x", "category": "not a category!"}, 400, "not an arXiv category"),
        ({"q": "x", "has_code": "maybe"}, 400, "true or false"),
        ({"q": "x", "p": "9999"}, 400, "between 1 and 50"),
    ],
)
def test_bad_filters_keep_the_query_and_say_what_to_fix(searchable, params, status, message) -> None:
    _ids, c = searchable
    r = c.get("/papers/search", params=params)
    assert r.status_code == status and message in r.text
    assert 'value="x"' in r.text  # the query stays in the box
    j = c.get("/papers/search.json", params=params)
    assert j.status_code == status and message in j.json()["detail"]


def test_empty_and_unhelpful_queries(searchable) -> None:
    _ids, c = searchable
    assert "Search titles, abstracts and authors" in c.get("/papers/search").text
    r = c.get("/papers/search", params={"q": "the of and"})
    assert r.status_code == 200 and 'role="alert"' in r.text
    none = c.get("/papers/search", params={"q": "zebrafishology", "mode": "keyword", "has_code": "1"})
    assert "No papers match with these filters" in none.text and "Search again without filters" in none.text


def test_search_apis(searchable) -> None:
    _ids, c = searchable
    hf = c.get("/api/papers/search", params={"q": "graph neural", "limit": 5}).json()
    assert hf[0]["highlightedTitle"].startswith("<mark>Graph</mark> &lt;i&gt;")
    assert hf[0]["paper"]["title"].startswith("Graph <i>")
    v1 = c.get("/api/v1/search", params={"q": "attention", "mode": "keyword", "limit": 3, "offset": 3}).json()
    assert v1["offset"] == 3 and len(v1["hits"]) == 3 and v1["hits"][0]["why"]
    assert c.get("/api/v1/search", params={"q": "the of and"}).status_code == 400
    assert c.get("/api/v1/search", params={"q": "x", "from": "2025-02-30"}).status_code == 422
    assert c.get("/api/papers/search").status_code == 422


def test_search_unavailable_is_a_message_not_a_500(settings, db) -> None:
    ids = seed(db)

    def broken():  # type: ignore[no-untyped-def]
        raise RuntimeError("index directory is unreadable")

    c = client(settings, db, search_factory=broken)
    r = c.get("/papers/search", params={"q": "attention"})
    assert r.status_code == 200 and "search is unavailable" in r.text
    # The paper page still works; only its similar-papers block says why it is empty.
    page = c.get(f"/papers/{ids['top']['id']}")
    assert page.status_code == 200 and "search is unavailable" in page.text
    assert c.get("/api/v1/search", params={"q": "attention"}).status_code == 400


def test_hybrid_results_say_how_the_query_was_weighted(settings, db) -> None:  # type: ignore[no-untyped-def]
    from paperfeed.search.indexer import run_index

    seed(db)
    f.add_paper(db, title="Graph neural networks & attention", abstract="Message passing with attention heads.")
    run_index(settings, db, progress=False)
    c = client(settings, db)
    q = "How do graph neural networks pass messages?"
    j = c.get("/papers/search.json", params={"q": q}).json()
    assert j["mode_used"] == "hybrid" and j["hits"]
    assert j["weighting"].startswith("question-like query, 7 words")
    assert all(h["why"][-1] == f"weighting: {j['weighting']}" for h in j["hits"])
    page = c.get("/papers/search", params={"q": q}).text
    assert f'<span class="weighting">{j["weighting"]}</span>' in page
    v1 = c.get("/api/v1/search", params={"q": q}).json()
    w = v1["weighting"]
    assert w["method"] == "score" and w["explanation"] == j["weighting"]
    assert w["semantic"] + w["keyword"] == pytest.approx(1.0)
    assert w["explanation"].endswith(f"semantic {w['semantic']:.2f} / keyword {w['keyword']:.2f} (fixed)")
    assert c.get("/api/v1/search", params={"q": q, "mode": "keyword"}).json()["weighting"] is None
