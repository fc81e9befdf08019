"""``paperfeed eval``: load a BEIR-format data set into a throwaway database, index it with the
product's own pipeline (importer store, lexical index, encoder, vectors) and score every mode.

Runs only on demand (CLI, benchmarks); the same ``SearchService`` that serves users is measured.
By default the database is a SQLite file in the work folder; ``database_url`` puts it in another
database (a scratch PostgreSQL, e.g. one with pgvector, to measure that path), which must hold
no papers but the corpus's.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from paperfeed.config import Settings
from paperfeed.records import PaperRecord
from paperfeed.search.evaluate import load_beir, mrr_at_k, ndcg_at_k, recall_at_k
from paperfeed.search.hybrid import MODES, Fusion, SearchError, SearchRequest, SearchService
from paperfeed.store.db import Database
from paperfeed.store.papers import count_papers_outside, upsert_arxiv

Run = dict[str, list[str]]


class NotScratch(ValueError):
    """The database given for an evaluation holds papers that are not the corpus's."""


def load_corpus(db: Database, corpus: dict[str, dict[str, str]], batch: int = 2_000) -> int:
    """Store BEIR documents as papers (doc id as paper id, ``text`` as abstract)."""
    items = list(corpus.items())
    for i in range(0, len(items), batch):
        records = [
            PaperRecord(id=doc_id[:32], title=doc["title"] or doc["text"][:80] or doc_id, abstract=doc["text"])
            for doc_id, doc in items[i : i + batch]
        ]
        with db.write() as conn:
            upsert_arxiv(conn, records)
    return len(items)


def score(run: Run, qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    return {
        "ndcg@10": round(ndcg_at_k(run, qrels, 10), 4),
        "mrr@10": round(mrr_at_k(run, qrels, 10), 4),
        "recall@10": round(recall_at_k(run, qrels, 10), 4),
        "recall@100": round(recall_at_k(run, qrels, 100), 4),
    }


def run_queries(service: SearchService, queries: dict[str, str], mode: str, depth: int = 100) -> Run:
    run: Run = {}
    for qid, text in queries.items():
        try:
            res = service.search(SearchRequest(q=text, mode=mode, limit=depth))
            run[qid] = [h.paper["id"] for h in res.hits]
        except SearchError:
            run[qid] = []
    return run


def prepare(
    directory: Path, workdir: Path, *, progress: bool = True, database_url: str | None = None
) -> tuple[Settings, Database]:
    """Create (or reuse) an indexed database of the corpus under ``workdir`` (or in ``database_url``)."""
    from paperfeed.search.indexer import run_index

    settings = replace(Settings(home=workdir, database_url=database_url), secret_key="eval", ann_threshold=10**9)
    db = Database(settings.db_url)
    db.migrate()
    corpus, _queries, _qrels = load_beir(directory, "test")
    others = count_papers_outside(db, [doc_id[:32] for doc_id in corpus])
    if others:
        db.dispose()
        raise NotScratch(f"the database holds {others:,} papers that are not in {directory}: give a scratch database")
    load_corpus(db, corpus)
    run_index(settings, db, progress=progress)
    return settings, db


def evaluate(
    directory: str | Path,
    *,
    split: str = "test",
    modes: Iterable[str] = MODES,
    workdir: str | Path | None = None,
    fusion: Fusion | None = None,
    progress: bool = True,
    on_mode: Callable[[str, dict[str, float]], Any] | None = None,
    database_url: str | None = None,
) -> dict[str, dict[str, float]]:
    """Score each mode on ``split``; ``workdir`` keeps the indexed database for re-runs."""
    directory = Path(directory)
    tmp = None
    if workdir is None:
        tmp = tempfile.mkdtemp(prefix="paperfeed-eval-")
        workdir = tmp
    try:
        settings, db = prepare(directory, Path(workdir), progress=progress, database_url=database_url)
        _corpus, queries, qrels = load_beir(directory, split)
        service = SearchService(settings, db, **({"fusion": fusion} if fusion else {}))
        results: dict[str, dict[str, float]] = {}
        for mode in modes:
            results[mode] = score(run_queries(service, queries, mode), qrels)
            if on_mode:
                on_mode(mode, results[mode])
        db.dispose()
        return results
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
