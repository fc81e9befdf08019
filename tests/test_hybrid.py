"""Hybrid search end to end on a small corpus: fusion, modes, filters, sorting, highlights,
explanations, similar papers, fallbacks and bad input."""

from __future__ import annotations

from datetime import date

import pytest

from paperfeed.search.fusion import SMOOTHED
from paperfeed.search.hybrid import Fusion, SearchError, SearchRequest, SearchService, fuse
from paperfeed.search.indexer import run_index

from .factories import add_paper

CORPUS = [
    (
        "Training neural networks without backpropagation",
        "We propose forward-forward learning, a local "
        "learning rule that trains deep networks layer by layer without backward passes.",
        "cs.LG",
        2024,
        None,
        5,
    ),
    (
        "Protein structure prediction with attention",
        "Protein folding from amino acid sequences using an attention-based model achieves atomic accuracy.",
        "q-bio.BM",
        2023,
        "https://github.com/x/fold",
        50,
    ),
    (
        "Offline reinforcement learning with DICE",
        "Orthogonal gradient updates stabilise distribution correction estimation (DICE) for offline RL.",
        "cs.LG",
        2025,
        None,
        1,
    ),
    (
        "Diffusion models for video generation",
        "A latent diffusion model that generates temporally coherent video clips from text prompts.",
        "cs.CV",
        2025,
        "https://github.com/x/vid",
        30,
    ),
    (
        "Graph neural networks for molecules",
        "Message passing networks predict molecular properties.",
        "cs.LG",
        2022,
        None,
        0,
    ),
    (
        "Speech recognition at scale",
        "Weakly supervised speech recognition trained on 680k hours.",
        "cs.CL",
        2023,
        None,
        12,
    ),
]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    from paperfeed.config import Settings
    from paperfeed.store.db import Database

    home = tmp_path_factory.mktemp("hybrid")
    settings = Settings(home=home, secret_key="t", ann_threshold=10**6)
    db = Database(settings.db_url)
    db.migrate()
    for i, (title, abstract, cat, year, repo, ups) in enumerate(CORPUS):
        add_paper(
            db,
            id=f"2401.{i:05d}",
            title=title,
            abstract=abstract,
            categories=f"{cat} cs.AI",
            primary_category=cat,
            published=date(year, 3, 1),
            github_repo=repo,
            imported_upvotes=ups,
            authors=["Geoffrey Hinton"] if i == 0 else ["Jane Doe", f"Author {i}"],
        )
    run_index(settings, db, progress=False)
    yield SearchService(settings, db)
    db.dispose()


def ids(res) -> list[str]:
    return [h.paper["id"] for h in res.hits]


def test_fuse_score_and_rrf() -> None:
    kw = [("a", 10.0), ("b", 5.0), ("c", 1.0)]
    sem = [("c", 0.9), ("d", 0.5)]
    assert fuse(kw, sem, Fusion("score", 0.5))[0][0] in {"a", "c"}
    assert [p for p, _ in fuse(kw, [], Fusion("score", 0.5))] == ["a", "b", "c"]
    rrf = dict(fuse(kw, sem, Fusion("rrf", 0.5, 60)))
    assert rrf["c"] > rrf["b"]  # found by both retrievers
    assert fuse([], [], Fusion()) == []


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
def test_modes_find_the_right_paper(service: SearchService, mode: str) -> None:
    res = service.search(SearchRequest(q="training networks without backpropagation", mode=mode))
    assert ids(res)[0] == "2401.00000"
    assert res.mode == mode
    assert res.hits[0].why


def test_hybrid_hits_explain_how_the_query_was_weighted(service: SearchService) -> None:
    res = service.search(SearchRequest(q="How do proteins fold from their amino acid sequence?", mode="hybrid"))
    assert res.fusion is not None and res.fusion.method == "score" and res.fusion.semantic_weight == 0.45
    line = f"weighting: {res.fusion.explain()}"
    assert line.startswith("weighting: question-like query, 9 words")
    assert all(h.why[-1] == line for h in res.hits)
    w = res.fusion.semantic_weight
    assert line.endswith(f"semantic {w:.2f} / keyword {1 - w:.2f} (fixed)")
    kw = service.search(SearchRequest(q="proteins", mode="keyword"))
    assert kw.fusion is None and not any(w.startswith("weighting") for h in kw.hits for w in h.why)


def test_smoothed_fusion_lifts_similar_results_and_says_so(service: SearchService) -> None:
    smoothed = SearchService(service.settings, service.db, fusion=SMOOTHED)
    res = smoothed.search(SearchRequest(q="neural networks for molecules and proteins", mode="hybrid"))
    assert res.fusion is not None and res.fusion.method == "smoothed" and res.fusion.semantic_weight == 0.40
    line = f"weighting: {res.fusion.explain()}"
    assert line.endswith("semantic 0.40 / keyword 0.60 (fixed; bounded scores, similar results lift each other)")
    lifted = [w for h in res.hits for w in h.why if w.startswith("lifted +")]
    assert len(lifted) >= len(res.hits) - 1 and all(h.why[-1] == line for h in res.hits)
    # The order is the bounded fusion smoothed over the candidates' own vectors.
    plain = [h.paper["id"] for h in service.search(SearchRequest(q="neural networks for molecules and proteins")).hits]
    assert sorted(ids(res)) == sorted(plain)
    assert [h.score for h in res.hits] == sorted((h.score for h in res.hits), reverse=True)


def test_semantic_finds_paraphrase(service: SearchService) -> None:
    res = service.search(SearchRequest(q="how do proteins fold", mode="semantic"))
    assert ids(res)[0] == "2401.00001"


def test_filters_and_sorts(service: SearchService) -> None:
    res = service.search(SearchRequest(q="networks", categories=["cs.LG"], limit=10))
    assert res.hits and all("cs.LG" in h.paper["categories"] for h in res.hits)
    res = service.search(SearchRequest(q="model", has_code=True, limit=10))
    assert res.hits and all(h.paper["github_repo"] for h in res.hits)
    res = service.search(SearchRequest(q="learning", min_upvotes=10, limit=10))
    assert all(h.paper["imported_upvotes"] >= 10 for h in res.hits)
    res = service.search(SearchRequest(q="learning after:2025-01-01", limit=10))
    assert res.hits and all(h.paper["published"] >= date(2025, 1, 1) for h in res.hits)
    res = service.search(SearchRequest(q="networks", sort="date", limit=10))
    days = [h.paper["published"] for h in res.hits]
    assert days == sorted(days, reverse=True)
    res = service.search(SearchRequest(q="author:hinton"))
    assert ids(res) == ["2401.00000"]
    res = service.search(SearchRequest(q="networks -molecules", mode="hybrid", limit=10))
    assert "2401.00004" not in ids(res)


@pytest.mark.parametrize(
    "req",
    [
        SearchRequest(q="networks learning", limit=2, offset=1),
        SearchRequest(q="networks learning", sort="upvotes", categories=["cs"], limit=2),
        SearchRequest(q='"amino acid" -speech', mode="hybrid", limit=1),
    ],
    ids=["plain", "filtered-sorted", "phrase-exclusion"],
)
def test_card_rows_are_read_for_the_shown_page_only(
    service: SearchService, req: SearchRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every candidate of both retrievers used to be read as a full card row (~200 per search,
    # abstracts included) to show 20: filters now read small columns, cards the page alone.
    import paperfeed.search.hybrid as hybrid

    asked: list[list[str]] = []
    real = hybrid.papers_by_ids
    monkeypatch.setattr(hybrid, "papers_by_ids", lambda conn, wanted: asked.append(list(wanted)) or real(conn, wanted))
    res = service.search(req)
    assert res.hits and asked == [ids(res)]


def test_paging_and_totals_match_an_unpaged_search(service: SearchService) -> None:
    whole = service.search(SearchRequest(q="networks learning model", sort="upvotes", limit=50))
    for offset in range(whole.total):
        one = service.search(SearchRequest(q="networks learning model", sort="upvotes", limit=1, offset=offset))
        assert one.total == whole.total and ids(one) == ids(whole)[offset : offset + 1]


def test_highlight_spans(service: SearchService) -> None:
    res = service.search(SearchRequest(q="diffusion video", mode="keyword"))
    hit = res.hits[0]
    marked = [hit.paper["title"][a:b].lower() for a, b in hit.title_spans]
    assert "diffusion" in marked and "video" in marked


def test_similar_excludes_itself(service: SearchService) -> None:
    sim = service.similar("2401.00000", k=3)
    assert sim and all(p["id"] != "2401.00000" for p in sim)
    assert service.similar("9999.99999") == []
    more = service.more_like(["2401.00000", "2401.00004"], k=2)
    assert all(p["id"] not in {"2401.00000", "2401.00004"} for p in more)


@pytest.mark.parametrize(
    "q",
    [
        '"unbalanced quote',
        "AND OR NOT NEAR(",
        "*",
        "foo:bar baz",
        "🧬 蛋白质 folding",
        "a\x00b",
        "'; DROP TABLE papers; --",
        "x" * 5000,
        "-",
        '""',
        "cat:",
        "year:abcd",
    ],
)
def test_bad_queries_never_raise(service: SearchService, q: str) -> None:
    try:
        res = service.search(SearchRequest(q=q))
    except SearchError as exc:
        assert str(exc)  # a clear user error is fine
    else:
        assert res.total >= 0


def test_bad_parameters_are_user_errors(service: SearchService) -> None:
    for req in (
        SearchRequest(q=""),
        SearchRequest(q="x", mode="magic"),
        SearchRequest(q="x", sort="random"),
        SearchRequest(q="x", limit=0),
        SearchRequest(q="x", limit=1000),
        SearchRequest(q="x", date_from=date(2025, 1, 2), date_to=date(2025, 1, 1)),
    ):
        with pytest.raises(SearchError):
            service.search(req)


def test_missing_vectors_fall_back_to_keyword(tmp_path) -> None:
    from paperfeed.config import Settings
    from paperfeed.search.lexical import LexicalIndex
    from paperfeed.store.db import Database

    settings = Settings(home=tmp_path, secret_key="t")
    db = Database(settings.db_url)
    db.migrate()
    add_paper(db, title="Sparse attention kernels", abstract="Fast kernels.")
    LexicalIndex(settings).update(db, progress=False)  # keyword index only, no embeddings
    res = SearchService(settings, db).search(SearchRequest(q="sparse attention"))
    assert res.mode == "keyword" and res.warnings
    assert res.hits[0].paper["title"] == "Sparse attention kernels"


def test_running_service_picks_up_a_later_index(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A long-running service (a web worker) started before `paperfeed index` embedded anything
    answers keyword-only, does not retry loading on every query, and turns hybrid by itself
    once the refresh interval has passed."""
    from paperfeed.config import Settings
    from paperfeed.search import hybrid
    from paperfeed.search.lexical import LexicalIndex
    from paperfeed.search.vectors import VectorIndex
    from paperfeed.store.db import Database

    settings = Settings(home=tmp_path, secret_key="t")
    db = Database(settings.db_url)
    db.migrate()
    add_paper(db, id="2401.00001", title="Sparse attention kernels", abstract="Fast kernels for sparse attention.")
    LexicalIndex(settings).update(db, progress=False)
    monkeypatch.setattr(hybrid, "REFRESH_EVERY_S", 3600.0)
    service = SearchService(settings, db)
    loads = []
    real_init = VectorIndex.__init__

    def counting_init(self, *a, **kw):  # type: ignore[no-untyped-def]
        loads.append(1)
        real_init(self, *a, **kw)

    monkeypatch.setattr(VectorIndex, "__init__", counting_init)
    for _ in range(3):
        assert service.search(SearchRequest(q="sparse attention")).mode == "keyword"
    assert len(loads) == 1  # the empty index was looked at once, not per query

    run_index(settings, db, progress=False)
    assert service.search(SearchRequest(q="sparse attention")).mode == "keyword"  # within the interval
    monkeypatch.setattr(hybrid, "REFRESH_EVERY_S", 0.0)
    res = service.search(SearchRequest(q="sparse attention"))
    assert res.mode == "hybrid" and not res.warnings and res.hits[0].semantic_similarity is not None
    assert len(loads) == 2


def test_candidate_reads_on_both_databases(any_db) -> None:  # type: ignore[no-untyped-def]
    from paperfeed.store import feed_queries

    a = add_paper(any_db, categories="cs.LG", github_repo="https://github.com/x/y", imported_upvotes=3, upvotes=1)
    b = add_paper(any_db)
    wanted = [a["id"], "9999.99999", b["id"]]
    with any_db.read() as conn:
        assert feed_queries.existing_ids(conn, wanted) == {a["id"], b["id"]}
        assert feed_queries.existing_ids(conn, []) == set()
        fields = feed_queries.filter_fields_by_ids(conn, wanted)
        with_text = feed_queries.filter_fields_by_ids(conn, wanted, text=True)
    assert set(fields) == set(with_text) == {a["id"], b["id"]}
    row = fields[a["id"]]
    assert (row["upvotes_total"], row["categories"], row["github_repo"]) == (4, "cs.LG", "https://github.com/x/y")
    assert "abstract" not in row and "authors" not in row
    assert with_text[a["id"]]["abstract"] == a["abstract"] and with_text[a["id"]]["authors"] == a["authors"]
