"""Keyword search: the tantivy index built from the database, queries, highlighting, recovery."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from paperfeed.config import Settings
from paperfeed.search import lexical as lexical_module
from paperfeed.search.evaluate import load_beir, mrr_at_k, ndcg_at_k, recall_at_k
from paperfeed.search.highlight import highlight
from paperfeed.search.lexical import LexicalIndex, LexicalIndexBusy
from paperfeed.search.query import parse_query
from paperfeed.store.db import Database, utcnow
from paperfeed.store.schema import papers
from paperfeed.store.search_source import count_papers_since, iter_papers_since

from .conftest import shared_path
from .factories import add_paper

CORPUS = [
    dict(
        id="2401.00001",
        title="Graph neural networks for molecular property prediction",
        abstract="We propose a message passing network that learns molecular representations.",
        authors=["Ada Lovelace", "Grace Hopper"],
        categories="cs.LG q-bio.BM",
        published=date(2024, 1, 10),
    ),
    dict(
        id="2402.00002",
        title="A survey of graph neural networks",
        abstract="We review the state of the art in graph representation learning.",
        authors=["Alan Turing"],
        categories="cs.LG cs.AI",
        published=date(2024, 2, 20),
    ),
    dict(
        id="2303.00003",
        title="Attention is all you need, again",
        abstract="Transformers replace recurrence with attention. The neural network is trained on translation.",
        authors=["Yann LeCun", "Jürgen Müller"],
        categories="cs.CL",
        published=date(2023, 3, 5),
    ),
    dict(
        id="2212.00004",
        title="Diffusion models for video generation",
        abstract="A denoising diffusion model generates video frames; neural rendering is not used.",
        authors=["Yann Dauphin", "Bob LeCun"],
        categories="cs.CV",
        published=date(2022, 12, 1),
        github_repo="https://github.com/example/vdm",
    ),
    dict(
        id="2405.00005",
        title="Zebrafish regeneration",
        abstract="A study of fin tissue in a small fish.",
        authors=["Ada Lovelace"],
        categories="q-bio.TO",
        published=date(2024, 5, 1),
    ),
    dict(
        id="2405.00006",
        title="Tissue study",
        abstract="A study of zebrafish regeneration in the lab.",
        authors=["Carl Gauss"],
        categories="q-bio.TO",
        published=date(2024, 5, 2),
    ),
]


def ids(hits) -> list[str]:  # type: ignore[no-untyped-def]
    return [h.paper_id for h in hits]


@pytest.fixture
def index(settings: Settings, db: Database) -> LexicalIndex:
    for row in CORPUS:
        add_paper(db, **row)
    idx = LexicalIndex(settings, writer_heap_mb=64)
    assert idx.update(db, progress=False) == len(CORPUS)
    return idx


def search(index: LexicalIndex, text: str, **kw) -> list[str]:  # type: ignore[no-untyped-def]
    return ids(index.search(parse_query(text), **kw).hits)


# -- ranking -----------------------------------------------------------------------------------------


def test_ranking_sanity(index: LexicalIndex) -> None:
    hits = index.search(parse_query("graph neural networks")).hits
    assert set(ids(hits)[:2]) == {"2401.00001", "2402.00002"}
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))
    assert search(index, "diffusion video")[0] == "2212.00004"
    assert index.count() == len(CORPUS)


def test_title_boost(index: LexicalIndex) -> None:
    # Both contain "zebrafish regeneration" once in title+abstract; only one has it in the title.
    assert search(index, "zebrafish regeneration")[:2] == ["2405.00005", "2405.00006"]


def test_stemming(index: LexicalIndex) -> None:
    assert "2303.00003" in search(index, "networks")  # indexed as "network"
    assert "2401.00001" in search(index, "learning")  # "learns"
    assert search(index, "regenerating")[:2] == ["2405.00005", "2405.00006"]


def test_phrase(index: LexicalIndex) -> None:
    # "neural network" adjacent: papers 1, 2 (title "graph neural networks") and 3; not 4 ("neural rendering").
    assert set(search(index, '"neural network"')) == {"2401.00001", "2402.00002", "2303.00003"}
    # Stopwords inside a phrase keep their gaps: "state of the art" matches exactly.
    assert search(index, '"state of the art"') == ["2402.00002"]
    assert search(index, '"state art"') == []
    assert search(index, '"art of the state"') == []
    # A phrase does not run from the title into the abstract.
    assert search(index, '"prediction we propose"') == []


def test_exclusions(index: LexicalIndex) -> None:
    assert set(search(index, "graph")) == {"2401.00001", "2402.00002"}
    assert search(index, "graph -survey") == ["2401.00001"]
    assert search(index, 'graph -"message passing"') == ["2402.00002"]
    assert search(index, "graph -surveys") == ["2401.00001"]  # stem-aware too
    # Exclusions alone: everything else, newest first.
    assert search(index, "-graph") == ["2405.00006", "2405.00005", "2303.00003", "2212.00004"]


def test_author_filter(index: LexicalIndex) -> None:
    assert set(search(index, "author:lecun")) == {"2303.00003", "2212.00004"}
    assert search(index, 'author:"Yann LeCun"') == ["2303.00003"]  # the full name, in order
    assert search(index, 'author:"LeCun Yann"') == []
    assert search(index, "author:muller") == ["2303.00003"]  # accents folded
    assert search(index, "author:lovelace author:hopper") == ["2401.00001"]  # every author must match
    assert search(index, "attention author:turing") == []


def test_category_filter(index: LexicalIndex) -> None:
    assert search(index, "neural cat:cs.CV") == ["2212.00004"]
    assert set(search(index, "cat:cs.lg")) == {"2401.00001", "2402.00002"}
    assert set(search(index, "cat:cs.CV cat:cs.CL")) == {"2212.00004", "2303.00003"}  # any of them
    assert set(search(index, "cat:q-bio")) == {"2401.00001", "2405.00005", "2405.00006"}  # a whole archive
    assert set(search(index, "neural", categories=["cs.CL", "cs.CV"])) == {"2303.00003", "2212.00004"}
    assert search(index, "neural cat:cs.CV", categories=["cs.CL"]) == []  # both restrictions hold
    assert search(index, "neural", categories=["not a category!"]) == []


def test_date_filters(index: LexicalIndex) -> None:
    assert set(search(index, "neural year:2024")) == {"2401.00001", "2402.00002"}
    assert search(index, "neural before:2023-01") == ["2212.00004"]
    assert search(index, "neural after:2023 before:2023") == ["2303.00003"]
    assert set(search(index, "neural", date_from=date(2023, 3, 5), date_to=date(2024, 1, 10))) == {
        "2303.00003",
        "2401.00001",
    }
    assert search(index, "neural year:2024", date_to=date(2023, 12, 31)) == []
    assert search(index, "neural year:2020 after:2023") == []


def test_filters_only_come_newest_first(index: LexicalIndex) -> None:
    hits = index.search(parse_query("cat:q-bio.TO")).hits
    assert ids(hits) == ["2405.00006", "2405.00005"]
    assert all(h.score == 0.0 for h in hits)
    assert search(index, "the of and cat:cs.CV") == ["2212.00004"]  # stopwords only: filters still apply


def test_limit(index: LexicalIndex) -> None:
    assert len(search(index, "a study neural graph", limit=2)) == 2
    assert search(index, "neural", limit=0) == search(index, "neural", limit=1)


def test_nothing_to_search(index: LexicalIndex) -> None:
    for text in ["", "the of and", "*", "?", "!!!"]:
        assert search(index, text) == []


# -- hostile input -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LexicalIndex]:
    s = Settings(home=tmp_path_factory.mktemp("fuzz"), secret_key="x")
    database = Database(s.db_url)
    database.migrate()
    for row in CORPUS:
        add_paper(database, **row)
    idx = LexicalIndex(s, writer_heap_mb=64)
    idx.update(database, progress=False)
    yield idx
    database.dispose()


HOSTILE = [
    "",
    "AND OR NOT NEAR(",
    "*",
    "?",
    "'; DROP TABLE papers; --",
    "🚀 neural 🤖",
    "神经网络 graph",
    "graph\x00neural\x01",
    '"unbalanced phrase',
    "year:abcd graph",
    "cat:zz.ZZ",
    "title:graph",
    "x" * 5_000,
    "graph " * 1_000,
    " ".join(f"w{i}" for i in range(2_000)),
    "\ud800\udfff",
    'author:"" cat:"" "" -',
    "graph~2 neural^3 (a OR b)",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_queries(shared_index: LexicalIndex, text: str) -> None:
    q = parse_query(text)
    hits = shared_index.search(q).hits
    assert isinstance(hits, list)
    highlight("Graph neural networks 🚀 神经网络", q)


def test_concurrent_searches(shared_index: LexicalIndex) -> None:
    """Web workers search from many threads at once (shared analyzers, one reader)."""
    errors: list[BaseException] = []
    expected = {"2401.00001", "2402.00002", "2303.00003"}  # the phrase is required, "graph" is not

    def work() -> None:
        try:
            for _ in range(50):
                q = parse_query('graph neural "neural networks"')
                assert set(ids(shared_index.search(q).hits)) == expected
                assert highlight("Graph neural networks", q) == [(0, 5), (6, 21)]
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_sql_text_is_just_words(index: LexicalIndex, db: Database) -> None:
    assert search(index, "'; DROP TABLE papers; --") == []
    with db.read() as conn:
        assert conn.execute(papers.select()).fetchall()


_QUERY_PARTS = st.one_of(
    st.text(max_size=10),
    st.sampled_from(["graph", "neural", "state of the art", '"', "-", '-"', "author:", "cat:", "cs.LG", "year:"]),
    st.sampled_from(["2024", "after:", "before:", "2023-02", " ", "*", "lecun", "AND", "NOT", "(", "\x00", "🚀"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(max_size=200), st.lists(_QUERY_PARTS, max_size=16).map("".join)))
def test_search_never_raises_fuzz(shared_index: LexicalIndex, text: str) -> None:
    q = parse_query(text)
    assert isinstance(shared_index.search(q, limit=5).hits, list)
    for start, end in highlight(text, q):
        assert 0 <= start < end <= len(text)


# -- highlighting ------------------------------------------------------------------------------------


def test_highlight_is_stem_aware() -> None:
    text = "A Network of networks: networking, nets"
    spans = highlight(text, parse_query("networks"))
    assert [text[a:b] for a, b in spans] == ["Network", "networks", "networking"]  # not "nets"


def test_highlight_phrases_and_offsets() -> None:
    text = "🚀 Naïve: the state of the art; state art. Art of the state."
    q = parse_query('"state of the art" naive')
    marked = [text[a:b] for a, b in highlight(text, q)]
    assert marked == ["Naïve", "state of the art"]


def test_highlight_ignores_exclusions_and_filters() -> None:
    text = "Graph neural networks by LeCun"
    q = parse_query("graph -neural author:lecun cat:cs.LG")
    assert [text[a:b] for a, b in highlight(text, q)] == ["Graph"]
    assert highlight(text, parse_query("")) == []
    assert highlight("", parse_query("graph")) == []


def test_highlight_merges_overlaps() -> None:
    text = "deep neural network models"
    q = parse_query('"neural network" network deep')
    assert [text[a:b] for a, b in highlight(text, q)] == ["deep", "neural network"]


# -- updates, recovery, concurrency ------------------------------------------------------------------


def test_incremental_update(settings: Settings, db: Database, index: LexicalIndex) -> None:
    assert index.update(db, progress=False) == 0  # nothing changed: nothing written
    with db.write() as conn:
        conn.execute(
            update(papers)
            .where(papers.c.id == "2405.00005")
            .values(title="Axolotl limb regrowth", modified_at=utcnow() + timedelta(seconds=1))
        )
    add_paper(db, id="2406.00007", title="Quantum error correction codes", abstract="Surface codes.")
    assert index.update(db, progress=False) == 2
    assert search(index, "axolotl") == ["2405.00005"]
    assert "2405.00005" not in search(index, "zebrafish")  # the old title is gone
    assert search(index, "quantum") == ["2406.00007"]
    assert index.count() == len(CORPUS) + 1  # the changed paper was replaced, not duplicated


def test_late_commits_inside_the_overlap_window_are_indexed(db: Database, index: LexicalIndex) -> None:
    # A row whose modified_at is older than the watermark (its transaction committed late).
    state = index.root / "state.json"
    before = json.loads(state.read_text())["active"]["watermark"]
    add_paper(db, id="2406.00008", title="Late arrival of tardigrades", modified_at=utcnow() - timedelta(minutes=5))
    assert index.update(db, progress=False) == 1
    assert search(index, "tardigrades") == ["2406.00008"]
    assert json.loads(state.read_text())["active"]["watermark"] == before  # it never moves back
    assert index.update(db, progress=False) == 0


def test_second_reader_sees_updates(settings: Settings, db: Database, index: LexicalIndex) -> None:
    other = LexicalIndex(settings)  # like another web worker process
    assert search(other, "graph")
    add_paper(db, id="2406.00009", title="Photonic graph accelerators")
    index.update(db, progress=False)
    assert "2406.00009" in search(other, "photonic")


def test_rebuild_switches_generation(settings: Settings, db: Database, index: LexicalIndex) -> None:
    root = settings.index_dir / "lexical"
    before = json.loads((root / "state.json").read_text())["active"]["dir"]
    reader = LexicalIndex(settings)
    assert search(reader, "zebrafish")
    assert index.update(db, rebuild=True, progress=False) == len(CORPUS)
    after = json.loads((root / "state.json").read_text())["active"]["dir"]
    assert after != before
    assert not (root / before).exists()  # the old generation is removed
    assert search(reader, "zebrafish")[:2] == ["2405.00005", "2405.00006"]


def test_missing_index(settings: Settings, db: Database) -> None:
    idx = LexicalIndex(settings)
    assert idx.search(parse_query("graph")).hits == []
    assert idx.count() == 0
    add_paper(db, title="Graph theory")
    assert idx.update(db, progress=False) == 1
    assert len(search(idx, "graph")) == 1


def _garbage_meta(root: Path) -> None:
    gen = json.loads((root / "state.json").read_text())["active"]["dir"]
    (root / gen / "meta.json").write_text("garbage {")


def _garbage_everything(root: Path) -> None:
    gen = json.loads((root / "state.json").read_text())["active"]["dir"]
    for path in (root / gen).iterdir():
        if path.is_file():
            path.write_bytes(b"\x00garbage" * 10)


def _garbage_state(root: Path) -> None:
    (root / "state.json").write_text("{not json")


def _wrong_format_state(root: Path) -> None:
    (root / "state.json").write_text(json.dumps({"format": -1, "active": {"dir": "gen-x"}}))


def _no_generation(root: Path) -> None:
    import shutil

    gen = json.loads((root / "state.json").read_text())["active"]["dir"]
    shutil.rmtree(root / gen)


@pytest.mark.parametrize(
    "damage", [_garbage_meta, _garbage_everything, _garbage_state, _wrong_format_state, _no_generation]
)
def test_corrupted_index_recovers(
    settings: Settings, db: Database, index: LexicalIndex, damage, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    root = settings.index_dir / "lexical"
    damage(root)
    fresh = LexicalIndex(settings)  # a new process finds the damage
    with caplog.at_level(logging.WARNING, logger="paperfeed.search.lexical"):
        assert fresh.search(parse_query("graph")).hits == []
        assert fresh.count() == 0
    said = [r.getMessage() for r in caplog.records if r.name == "paperfeed.search.lexical"]
    assert any(re.search(r"lexical index.*(will be rebuilt|rebuilding|run `paperfeed index`)", m) for m in said), said
    assert fresh.update(db, progress=False) == len(CORPUS)
    assert set(search(fresh, "graph")) == {"2401.00001", "2402.00002"}
    assert set(search(index, "graph")) == {"2401.00001", "2402.00002"}  # the old reader follows


def test_interrupted_build_resumes(settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(25):
        add_paper(db, id=f"2407.{i:05d}", title=f"Paper {i} about lattice cryptography")
    real_iter = lexical_module.iter_papers_since

    def interrupted(database, since=None, batch_size=2_000):  # type: ignore[no-untyped-def]
        for n, row in enumerate(real_iter(database, since)):
            if n == 20:
                raise KeyboardInterrupt
            yield row

    monkeypatch.setattr(lexical_module, "iter_papers_since", interrupted)
    monkeypatch.setattr(lexical_module, "BATCH_SIZE", 10)  # 2 batches are written, then Ctrl-C
    idx = LexicalIndex(settings, writer_heap_mb=64)
    with pytest.raises(KeyboardInterrupt):
        idx.update(db, progress=False)
    assert idx.count() == 0  # the build was not finished: nothing switched over yet
    monkeypatch.setattr(lexical_module, "iter_papers_since", real_iter)
    assert idx.update(db, progress=False) == 5  # resumes after the 20 rows already committed
    assert idx.count() == 25
    assert len(search(idx, "lattice cryptography", limit=100)) == 25


def test_one_updater_at_a_time(settings: Settings, db: Database, index: LexicalIndex) -> None:
    other = LexicalIndex(settings)
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        with index._update_lock():
            entered.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert entered.wait(10)
        with pytest.raises(LexicalIndexBusy):
            other.update(db, progress=False)
    finally:
        release.set()
        t.join()
    assert other.update(db, progress=False) == 0
    assert search(other, "zebrafish")


def test_build_from_rows(settings: Settings) -> None:
    idx = LexicalIndex(settings, writer_heap_mb=64)
    rows = [{"id": f"d{i}", "title": f"title {i}", "abstract": "shared words here"} for i in range(50)]
    assert idx.build_from_rows(iter(rows), total=50, progress=False) == 50
    assert search(idx, "title 7")[0] == "d7"
    assert len(search(idx, "shared", limit=100)) == 50


# -- the database side ---------------------------------------------------------------------------------


def test_iter_papers_since(any_db: Database) -> None:
    base = utcnow()
    for i, row in enumerate(CORPUS):
        add_paper(any_db, **{**row, "modified_at": base + timedelta(seconds=i % 3)})
    rows = list(iter_papers_since(any_db, None, batch_size=4))  # two pages: 4 + 2
    keys = [(r["modified_at"], r["id"]) for r in rows]
    assert keys == sorted(keys) and len(set(keys)) == len(CORPUS)
    first = rows[0]
    assert set(first) >= {"id", "title", "abstract", "authors", "categories", "published", "upvotes",
                          "github_repo", "content_hash", "modified_at"}  # fmt: skip
    assert isinstance(first["authors"], list) and isinstance(first["categories"], list)
    # Resume after the third row: exactly the rest, even with equal timestamps.
    wm = keys[2]
    rest = [r["id"] for r in iter_papers_since(any_db, wm, batch_size=2)]
    assert rest == [r["id"] for r in rows[3:]]
    assert count_papers_since(any_db, wm) == len(CORPUS) - 3
    assert count_papers_since(any_db, None) == len(CORPUS)


def test_update_from_postgres(pg_db: Database, settings: Settings) -> None:
    for row in CORPUS:
        add_paper(pg_db, **row)
    idx = LexicalIndex(settings, writer_heap_mb=64)
    assert idx.update(pg_db, progress=False) == len(CORPUS)
    assert search(idx, '"state of the art" cat:cs.LG year:2024') == ["2402.00002"]
    assert idx.update(pg_db, progress=False) == 0


# -- metrics and SciFact ---------------------------------------------------------------------------------


def test_metrics() -> None:
    qrels = {"q1": {"a": 1, "b": 1}, "q2": {"c": 2, "x": 0}, "q3": {"z": 0}}
    run = {"q1": ["a", "x", "b"], "q2": ["y", "c"]}
    # q1: dcg = 1 + 1/log2(4) = 1.5; idcg = 1 + 1/log2(3). q2: dcg = 2/log2(3); idcg = 2. q3 unjudged.
    import math

    q1 = 1.5 / (1 + 1 / math.log2(3))
    q2 = (2 / math.log2(3)) / 2
    assert ndcg_at_k(run, qrels, 10) == pytest.approx((q1 + q2) / 2)
    assert ndcg_at_k(run, qrels, 1) == pytest.approx((1.0 + 0.0) / 2)
    assert mrr_at_k(run, qrels, 10) == pytest.approx((1 + 0.5) / 2)
    assert recall_at_k(run, qrels, 2) == pytest.approx((0.5 + 1.0) / 2)
    assert ndcg_at_k({}, qrels) == 0.0


@pytest.mark.slow
def test_scifact_ndcg(tmp_path: Path) -> None:
    directory = shared_path("scifact")
    corpus, queries, qrels = load_beir(directory, "test")
    idx = LexicalIndex(Settings(home=tmp_path), writer_heap_mb=128)
    rows = ({"id": did, "title": d["title"], "abstract": d["text"]} for did, d in corpus.items())
    assert idx.build_from_rows(rows, total=len(corpus), progress=False) == len(corpus) == 5183
    run = {qid: [h.paper_id for h in idx.search(parse_query(text), limit=100).hits] for qid, text in queries.items()}
    assert len(queries) == 300
    ndcg = ndcg_at_k(run, qrels, 10)
    assert ndcg >= 0.67, ndcg
    assert recall_at_k(run, qrels, 100) >= 0.9
