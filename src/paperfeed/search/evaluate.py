"""Retrieval metrics (nDCG@k, MRR@k, recall@k) and a BEIR data-set loader.

Used by the search tests, the benchmarks and ``paperfeed eval`` to score a ranking against graded
relevance judgements. Runs offline on files; nothing here touches the database or an index.

A *run* maps a query id to its ranked document ids (best first); *qrels* map a query id to
``{doc_id: grade}``. Grades <= 0 count as not relevant, as in trec_eval. Metrics are averaged over
the queries that have at least one relevant document; a query missing from the run scores 0.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

Run = Mapping[str, Sequence[str]]
Qrels = Mapping[str, Mapping[str, int]]


def _judged(qrels: Qrels) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for qid, docs in qrels.items():
        rel = {d: int(g) for d, g in docs.items() if int(g) > 0}
        if rel:
            out[qid] = rel
    return out


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def ndcg_at_k(run: Run, qrels: Qrels, k: int = 10) -> float:
    """Mean nDCG@k with linear gains (the trec_eval / BEIR definition)."""
    scores = []
    for qid, rel in _judged(qrels).items():
        ranked = list(dict.fromkeys(run.get(qid, ())))[:k]  # a doc counts once even if repeated
        dcg = sum(rel.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked))
        ideal = sorted(rel.values(), reverse=True)[:k]
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        scores.append(dcg / idcg)
    return _mean(scores)


def mrr_at_k(run: Run, qrels: Qrels, k: int = 10) -> float:
    """Mean reciprocal rank of the first relevant document within the top k."""
    scores = []
    for qid, rel in _judged(qrels).items():
        rr = 0.0
        for i, doc in enumerate(list(run.get(qid, ()))[:k]):
            if doc in rel:
                rr = 1.0 / (i + 1)
                break
        scores.append(rr)
    return _mean(scores)


def recall_at_k(run: Run, qrels: Qrels, k: int = 100) -> float:
    """Mean fraction of the relevant documents found in the top k."""
    scores = []
    for qid, rel in _judged(qrels).items():
        top = set(list(run.get(qid, ()))[:k])
        scores.append(len(top & rel.keys()) / len(rel))
    return _mean(scores)


def precision_at_k(run: Run, qrels: Qrels, k: int = 5, min_grade: int = 1) -> float:
    """Mean share of the top k (k slots, even when fewer were returned) graded ``min_grade`` or more."""
    scores = []
    for qid in _judged(qrels):
        docs = qrels[qid]
        top = list(dict.fromkeys(run.get(qid, ())))[:k]
        scores.append(sum(1 for d in top if int(docs.get(d, 0)) >= min_grade) / k)
    return _mean(scores)


def judged_at_k(run: Run, qrels: Qrels, k: int = 5) -> float:
    """Mean share of the top k that the judgements cover at all (grade 0 included): how far a pooled
    set can be trusted for this run (unjudged documents count as not relevant in the other metrics)."""
    scores = []
    for qid in _judged(qrels):
        docs = qrels[qid]
        top = list(dict.fromkeys(run.get(qid, ())))[:k]
        scores.append(sum(1 for d in top if d in docs) / len(top) if top else 0.0)
    return _mean(scores)


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with _open_text(path) as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _find(directory: Path, name: str) -> Path:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{directory}: neither {name} nor {name}.gz exists")


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    """A BEIR qrels TSV (``query-id  corpus-id  score`` with a header line)."""
    qrels: dict[str, dict[str, int]] = {}
    with _open_text(path) as fh:
        reader = csv.reader(fh, delimiter="\t")
        for row in reader:
            if len(row) < 3 or row[0] == "query-id":
                continue
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return qrels


def load_beir(
    directory: str | Path, split: str = "test"
) -> tuple[dict[str, dict[str, str]], dict[str, str], dict[str, dict[str, int]]]:
    """Load a BEIR data set: ``corpus.jsonl[.gz]``, ``queries.jsonl[.gz]``, ``qrels/<split>.tsv``.

    Returns ``(corpus, queries, qrels)``: corpus maps doc id to ``{"title", "text"}``; queries are
    limited to those judged in the split.
    """
    directory = Path(directory)
    qrels = load_qrels(_find(directory / "qrels", f"{split}.tsv"))
    corpus = {
        str(d["_id"]): {"title": d.get("title") or "", "text": d.get("text") or ""}
        for d in _jsonl(_find(directory, "corpus.jsonl"))
    }
    queries = {str(q["_id"]): q.get("text") or "" for q in _jsonl(_find(directory, "queries.jsonl"))}
    queries = {qid: text for qid, text in queries.items() if qid in qrels}
    return corpus, queries, qrels
