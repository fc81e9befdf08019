"""Embedding storage (both backends) and the vector index: exact search, HNSW files, incremental
refresh, corruption recovery, concurrent readers."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete, select, update

from paperfeed.config import Settings
from paperfeed.search import vectors as vx
from paperfeed.search.hnsw import DEFAULT_PARAMS, add_to_index, new_index
from paperfeed.search.indexer import sync_ann
from paperfeed.search.vectors import VectorIndex
from paperfeed.store import embeddings as store
from paperfeed.store.db import Database
from paperfeed.store.schema import embeddings, papers

from .factories import add_papers, make_paper

MODEL = "test-model"
DIM = 384


def clustered(n: int, seed_: int = 0, clusters: int = 40) -> np.ndarray:
    """Unit vectors around shared topic centres (real embeddings are clustered, not uniform):
    a sample's nearest neighbour has cosine ~0.57, like a real query's best match."""
    centers = np.random.default_rng(1234).standard_normal((clusters, DIM))
    rng = np.random.default_rng(seed_)
    x = centers[rng.integers(0, clusters, n)] + rng.standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def seed(db: Database, n: int, seed_: int = 0, model: str = MODEL) -> tuple[list[str], np.ndarray]:
    rows = add_papers(db, [make_paper() for _ in range(n)])
    vecs = clustered(n, seed_)
    for i in range(0, n, 500):
        store.upsert_vectors(db, model, [(r["id"], r["content_hash"]) for r in rows[i : i + 500]], vecs[i : i + 500])
    return [r["id"] for r in rows], vecs


def brute(ids: list[str], vecs: np.ndarray, q: np.ndarray, k: int) -> list[str]:
    return [ids[i] for i in np.argsort(-(vecs @ q), kind="stable")[:k]]


def set_paper_text(db: Database, paper_id: str, abstract: str) -> str:
    h = hashlib.sha256(abstract.encode()).hexdigest()
    with db.write() as conn:
        conn.execute(update(papers).where(papers.c.id == paper_id).values(abstract=abstract, content_hash=h))
    return h


@pytest.fixture
def hnsw_settings(settings: Settings) -> Settings:
    return replace(settings, ann_threshold=200)


# -- storage ------------------------------------------------------------------------------------
def test_upsert_load_roundtrip(any_db: Database) -> None:
    ids, vecs = seed(any_db, 700)
    rows = store.load_vectors(any_db, MODEL)
    assert len(rows) == 700 and rows.matrix.dtype == np.float32 and rows.matrix.flags.c_contiguous
    assert sorted(rows.keys.tolist()) == sorted(store.keys_for(any_db, ids).values())
    by_id = dict(zip(rows.paper_ids, rows.matrix, strict=True))
    assert all(np.array_equal(by_id[pid], v) for pid, v in zip(ids, vecs, strict=True))
    keys = store.keys_for(any_db, ids[:3])
    assert store.paper_ids_for(any_db, list(keys.values())) == {v: k for k, v in keys.items()}
    assert np.array_equal(store.get_vector(any_db, ids[5], MODEL), vecs[5])
    assert store.get_vector(any_db, ids[5], "other-model") is None
    assert store.load_vectors(any_db, "other-model").matrix.shape[0] == 0


def test_what_needs_embedding(any_db: Database) -> None:
    ids, vecs = seed(any_db, 30)
    add_papers(any_db, [make_paper() for _ in range(5)])  # never embedded
    assert store.count_to_embed(any_db, MODEL) == 5
    set_paper_text(any_db, ids[3], "a new abstract")
    todo = [p for batch in store.iter_to_embed(any_db, MODEL, batch_size=2) for p in batch]
    assert len(todo) == 6 and ids[3] in {p.paper_id for p in todo}
    assert [p.paper_id for p in todo] == sorted(p.paper_id for p in todo)
    assert store.count_to_embed(any_db, "another-model") == 35  # a model change re-embeds everything
    mark = store.marker(any_db).last_write
    assert store.count_to_embed(any_db, MODEL, redo_before=mark + timedelta(seconds=1)) == 35


def test_upsert_updates_in_place(any_db: Database) -> None:
    ids, vecs = seed(any_db, 10)
    before = store.keys_for(any_db, ids)
    t0 = store.marker(any_db).last_write
    h = set_paper_text(any_db, ids[2], "changed")
    store.upsert_vectors(any_db, MODEL, [(ids[2], h)], vecs[7:8])
    assert store.keys_for(any_db, ids) == before  # same integer key
    assert np.array_equal(store.get_vector(any_db, ids[2], MODEL), vecs[7])
    changed = store.load_vectors(any_db, None, since=t0 + timedelta(microseconds=1))
    assert changed.paper_ids == [ids[2]]
    assert store.count_to_embed(any_db, MODEL) == 0
    assert store.count_vectors(any_db) == 10 and store.models(any_db) == {MODEL: 10}


def test_upsert_rejects_bad_input_and_writes_nothing(db: Database) -> None:
    rows = add_papers(db, [make_paper() for _ in range(3)])
    items = [(r["id"], r["content_hash"]) for r in rows]
    good = clustered(3)
    for bad in (good[:2], good[:, :0], np.full((3, DIM), np.nan, np.float32), np.zeros((3, DIM), np.float32)):
        with pytest.raises(ValueError):
            store.upsert_vectors(db, MODEL, items, bad)
    assert store.count_vectors(db) == 0
    # Not normalised: stored normalised.
    assert store.upsert_vectors(db, MODEL, items, good * 3) == 3
    assert np.allclose(store.load_vectors(db, MODEL).matrix, good, atol=1e-6)


def test_upsert_skips_deleted_papers_and_duplicates(db: Database) -> None:
    rows = add_papers(db, [make_paper() for _ in range(3)])
    with db.write() as conn:
        conn.execute(delete(papers).where(papers.c.id == rows[0]["id"]))
    items = [(r["id"], r["content_hash"]) for r in rows] + [(rows[1]["id"], rows[1]["content_hash"])]
    vecs = clustered(4)
    assert store.upsert_vectors(db, MODEL, items, vecs) == 2
    assert np.allclose(store.get_vector(db, rows[1]["id"], MODEL), vecs[3])  # the last one wins


def test_marker_and_filters(any_db: Database) -> None:
    assert store.marker(any_db) == store.Marker(0, None, 0)
    ids, vecs = seed(any_db, 20)
    m1 = store.marker(any_db)
    assert m1.count == 20 and m1.max_key >= 20
    assert len(store.load_vectors(any_db, None, after_key=m1.max_key - 5)) == 5
    assert len(store.load_vectors(any_db, None, after_key=m1.max_key, since=m1.last_write + timedelta(seconds=1))) == 0
    with any_db.write() as conn:
        conn.execute(delete(papers).where(papers.c.id == ids[0]))  # cascades to the vector
    assert store.marker(any_db).count == 19
    assert ids[0] not in set(store.load_vectors(any_db, MODEL).paper_ids)
    assert len(store.all_keys(any_db)) == 19


def test_iter_vectors_matches_load_vectors(any_db: Database) -> None:
    ids, vecs = seed(any_db, 9000)  # more than one driver fetch
    m = store.marker(any_db)
    chunks = list(store.iter_vectors(any_db, MODEL))
    assert len(chunks) > 1 and all(c.watermark == m.last_write for c in chunks)
    whole, joined = store.load_vectors(any_db, MODEL), store.concat_rows(chunks, m.last_write)
    assert joined.paper_ids == whole.paper_ids and np.array_equal(joined.keys, whole.keys)
    assert np.array_equal(joined.matrix, whole.matrix)
    joined.matrix[0, 0] = 0.5  # chunks own writable memory
    recent = list(store.iter_vectors(any_db, None, after_key=m.max_key - 3))
    assert sum(len(c) for c in recent) == 3
    assert len(store.concat_rows([], None)) == 0


def test_rebuild_mark(any_db: Database) -> None:
    assert store.rebuild_mark(any_db) is None
    now = store.utcnow()
    store.set_rebuild_mark(any_db, now)
    store.set_rebuild_mark(any_db, now)
    assert store.rebuild_mark(any_db) == now
    store.clear_rebuild_mark(any_db)
    assert store.rebuild_mark(any_db) is None


def test_wrong_length_blob_is_skipped(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    ids, _ = seed(db, 5)
    with db.write() as conn:
        conn.execute(update(embeddings).where(embeddings.c.paper_id == ids[1]).values(vector=b"\x00" * 10))
    with caplog.at_level(logging.WARNING):
        rows = store.load_vectors(db, MODEL)
    assert len(rows) == 4 and ids[1] not in rows.paper_ids
    assert "wrong vector length" in caplog.text
    chunked = store.concat_rows(list(store.iter_vectors(db, MODEL)), None)
    assert chunked.paper_ids == rows.paper_ids


# -- exact search -------------------------------------------------------------------------------
def test_exact_search(any_db: Database, settings: Settings) -> None:
    ids, vecs = seed(any_db, 500)
    vi = VectorIndex(settings, any_db, model=MODEL)
    assert vi.mode == "exact" and len(vi) == 500
    q = clustered(1, seed_=9)[0]
    got = vi.search(q, 20)
    assert [p for p, _ in got] == brute(ids, vecs, q, 20)
    assert got[0][1] == pytest.approx(float(vecs[ids.index(got[0][0])] @ q), abs=1e-5)
    top = got[0][0]
    assert top not in [p for p, _ in vi.search(q, 20, exclude={top})]
    odd = {pid for i, pid in enumerate(ids) if i % 2}
    allowed = vi.search(q, 50, allow=lambda pid: pid in odd)
    assert len(allowed) == 50 and all(p in odd for p, _ in allowed)
    assert [p for p, _ in allowed] == [p for p in brute(ids, vecs, q, 500) if p in odd][:50]
    assert vi.search(q, 20, allow=lambda pid: False) == []
    assert len(vi.search(q, 10_000)) == 500
    assert vi.search(q, 0) == []
    sim = vi.similar(ids[0], 5)
    assert len(sim) == 5 and ids[0] not in [p for p, _ in sim]
    assert [p for p, _ in sim] == [p for p in brute(ids, vecs, vecs[0], 6) if p != ids[0]][:5]
    more = vi.more_like(ids[:3], 5)
    assert len(more) == 5 and not set(ids[:3]) & {p for p, _ in more}
    assert vi.similar("9999.99999") == [] and vi.more_like(["nope"]) == []
    assert np.array_equal(vi.vector_for(ids[4]), vecs[4]) and vi.vector_for("nope") is None
    assert vi.scores_for(q, [ids[1], "nope"]) == {ids[1]: pytest.approx(float(vecs[1] @ q), abs=1e-5)}


def test_bad_queries_raise_value_error(db: Database, settings: Settings) -> None:
    seed(db, 10)
    vi = VectorIndex(settings, db, model=MODEL)
    for bad in (np.ones(5, np.float32), np.zeros(DIM, np.float32), np.full(DIM, np.nan, np.float32)):
        with pytest.raises(ValueError):
            vi.search(bad)


def test_empty_index(db: Database, settings: Settings) -> None:
    vi = VectorIndex(settings, db)
    assert len(vi) == 0 and vi.search(np.ones(DIM, np.float32)) == [] and vi.similar("x") == []
    model = vx.default_model(db) or MODEL  # the encoder's model name, else the last one written
    seed(db, 5, model=model)
    vi.refresh()
    assert vi.model == model and len(vi) == 5


# -- HNSW -------------------------------------------------------------------------------------
def test_hnsw_build_and_recall(any_db: Database, hnsw_settings: Settings) -> None:
    ids, vecs = seed(any_db, 3000)
    assert sync_ann(hnsw_settings, any_db, MODEL, progress=False).startswith("built")
    vi = VectorIndex(hnsw_settings, any_db, model=MODEL)
    assert vi.mode == "hnsw" and len(vi) == 3000
    queries = clustered(200, seed_=5)
    recall = np.mean([len({p for p, _ in vi.search(q, 10)} & set(brute(ids, vecs, q, 10))) / 10 for q in queries])
    assert recall >= 0.98
    got = vi.search(queries[0], 10)
    assert all(abs(s - float(vecs[ids.index(p)] @ queries[0])) < 2e-3 for p, s in got)  # f16 storage
    odd = {pid for i, pid in enumerate(ids) if i % 2}
    allowed = vi.search(queries[0], 30, allow=lambda pid: pid in odd)
    assert len(allowed) == 30 and all(p in odd for p, _ in allowed)
    sim = vi.similar(ids[7], 5)
    assert len(sim) == 5 and ids[7] not in [p for p, _ in sim]
    assert np.abs(vi.vector_for(ids[7]) - vecs[7]).max() < 1e-3
    assert sync_ann(hnsw_settings, any_db, MODEL, progress=False).startswith("up to date")


def test_refresh_picks_up_new_changed_and_deleted(db: Database, hnsw_settings: Settings) -> None:
    ids, vecs = seed(db, 1000)
    sync_ann(hnsw_settings, db, MODEL, progress=False)
    vi = VectorIndex(hnsw_settings, db, model=MODEL)
    assert vi.mode == "hnsw" and len(vi._snap.pids) == 0  # nothing in the delta

    calls = []
    real = store.iter_vectors
    vx.store.iter_vectors = lambda *a, **kw: calls.append(1) or real(*a, **kw)  # type: ignore[assignment]
    try:
        vi.refresh()
        assert calls == []  # nothing changed: no vector read
        vi.refresh(full=True)
        assert calls == []
    finally:
        vx.store.iter_vectors = real  # type: ignore[assignment]

    new_ids, new_vecs = seed(db, 3, seed_=77)
    h = set_paper_text(db, ids[10], "rewritten")
    store.upsert_vectors(db, MODEL, [(ids[10], h)], new_vecs[2:3] * -1)
    with db.write() as conn:
        conn.execute(delete(papers).where(papers.c.id == ids[20]))
    vi.refresh(full=True)  # full: also count rows, which reveals the deletion
    assert len(vi) == 1002
    assert vi.search(new_vecs[0], 1)[0][0] == new_ids[0]
    assert vi.search(-new_vecs[2], 1)[0][0] == ids[10]
    assert ids[10] not in [p for p, _ in vi.search(vecs[10], 5)]  # its old vector is masked
    assert ids[20] not in [p for p, _ in vi.search(vecs[20], 5)] and vi.vector_for(ids[20]) is None
    # Many at once (one HNSW read): the same vectors as one at a time, in the order asked, from the
    # file, the delta and over a masked old copy; deleted and unknown papers left out.
    batch = vi.vectors_for([new_ids[0], ids[0], ids[10], ids[20], "nope", ids[0], ids[500]])
    assert list(batch) == [new_ids[0], ids[0], ids[10], ids[500]]
    assert all(np.array_equal(vec, vi.vector_for(pid)) for pid, vec in batch.items())
    assert np.abs(batch[ids[500]] - vecs[500]).max() < 1e-3 and np.abs(batch[ids[10]] + new_vecs[2]).max() < 1e-6

    # The next `paperfeed index` folds the changes into the file; a fresh load has an empty delta.
    assert sync_ann(hnsw_settings, db, MODEL, progress=False).startswith("updated: +4 / -2")
    vi.refresh()
    assert vi.mode == "hnsw" and len(vi) == 1002 and len(vi._snap.pids) == 0
    assert vi.search(-new_vecs[2], 1)[0][0] == ids[10]
    assert ids[20] not in {p for p, _ in vi.search(vecs[20], 1000)}


def test_model_switch_hides_old_vectors(db: Database, settings: Settings) -> None:
    ids, vecs = seed(db, 50)
    vi = VectorIndex(settings, db, model=MODEL)
    store.upsert_vectors(db, "model-b", [(ids[0], "h")], vecs[:1])
    vi.refresh()
    assert len(vi) == 49 and vi.vector_for(ids[0]) is None


def _index_file(s: Settings) -> Path:
    man = vx.IndexFiles(s.index_dir / "vectors").manifest()
    assert man is not None
    return s.index_dir / "vectors" / man["index_file"]


@pytest.mark.parametrize("damage", ["garbage", "truncate", "delete", "manifest"])
def test_damaged_index_is_rebuilt(
    db: Database, hnsw_settings: Settings, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    ids, vecs = seed(db, 1500)
    sync_ann(hnsw_settings, db, MODEL, progress=False)
    path = _index_file(hnsw_settings)
    size = path.stat().st_size
    if damage == "garbage":
        with open(path, "r+b") as fh:  # same size, different bytes
            fh.seek(size // 2)
            fh.write(os.urandom(4096))
    elif damage == "truncate":
        with open(path, "r+b") as fh:
            fh.truncate(size // 3)
    elif damage == "delete":
        path.unlink()
    else:
        (hnsw_settings.index_dir / "vectors" / "manifest.json").write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="paperfeed.search.vectors"):
        vi = VectorIndex(hnsw_settings, db, model=MODEL)
    assert "rebuilding" in caplog.text
    q = vecs[3]
    assert vi.search(q, 5)[0][0] == ids[3]  # answers at once (exact) while the file is rebuilt
    assert vi.wait_for_rebuild(60)
    assert vi.mode == "hnsw" and len(vi) == 1500
    assert vi.search(q, 5)[0][0] == ids[3]
    vx.IndexFiles(hnsw_settings.index_dir / "vectors").load(MODEL)  # valid again
    assert sync_ann(hnsw_settings, db, MODEL, progress=False).startswith("up to date")


def test_damaged_index_is_rebuilt_by_the_indexer(
    db: Database, hnsw_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    seed(db, 400)
    sync_ann(hnsw_settings, db, MODEL, progress=False)
    _index_file(hnsw_settings).write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING):
        assert sync_ann(hnsw_settings, db, MODEL, progress=False).startswith("built")
    assert "unusable" in caplog.text
    leftovers = sorted(p.name for p in (hnsw_settings.index_dir / "vectors").iterdir())
    assert len([n for n in leftovers if n.startswith("hnsw-")]) == 1  # old generations removed


def test_concurrent_readers_during_refresh(db: Database, hnsw_settings: Settings) -> None:
    ids, vecs = seed(db, 800)
    sync_ann(hnsw_settings, db, MODEL, progress=False)
    vi = VectorIndex(hnsw_settings, db, model=MODEL)
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader(i: int) -> None:
        try:
            while not stop.is_set():
                got = vi.search(vecs[i], 5)
                assert got[0][0] == ids[i] and len(got) == 5
                vi.similar(ids[i], 3)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for round_ in range(5):
        seed(db, 20, seed_=100 + round_)
        vi.refresh()
    sync_ann(hnsw_settings, db, MODEL, progress=False)
    vi.refresh()
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert len(vi) == 900


def test_exact_to_hnsw_when_collection_grows(db: Database, hnsw_settings: Settings) -> None:
    seed(db, 150)
    vi = VectorIndex(hnsw_settings, db, model=MODEL)
    assert vi.mode == "exact"
    seed(db, 100, seed_=3)
    assert sync_ann(hnsw_settings, db, MODEL, progress=False).startswith("built")
    vi.refresh()
    assert vi.mode == "hnsw" and len(vi) == 250


def test_store_uses_one_row_per_paper(db: Database) -> None:
    ids, vecs = seed(db, 5)
    store.upsert_vectors(db, MODEL, [(ids[0], "x")] * 1, vecs[:1])
    with db.read() as conn:
        assert len(list(conn.execute(select(embeddings.c.id)))) == 5


def test_small_hnsw_build_on_several_threads_reaches_every_neighbour() -> None:
    """Concurrent inserts into a young graph leave nodes that no search reaches: built on two
    threads, 458 clustered vectors (the bundled sample's size) missed a true top-18 neighbour
    for ~4% of self-queries (a CI failure of the pgvector-vs-usearch test). The first vectors of
    any build go in one at a time, so a small index answers like exact search."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, DIM)).astype(np.float32)
    matrix = rng.normal(size=(458, DIM)).astype(np.float32) * 0.5 + centres[rng.integers(0, 20, 458)]
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    sims = matrix @ matrix.T
    for _ in range(3):
        index = new_index(DIM, DEFAULT_PARAMS)
        add_to_index(index, np.arange(458, dtype=np.int64), matrix, threads=2)
        found = index.search(matrix, 18, threads=1)
        # A neighbour may only be missed for one tied with the 19th (half-precision rounding).
        missed = [
            (i, j)
            for i in range(458)
            for j in set(np.argsort(-sims[i])[:18].tolist()) - set(found.keys[i].tolist())
            if sims[i, j] - np.sort(sims[i])[-19] > 2e-3
        ]
        assert missed == []
