"""Tune hybrid fusion on a BEIR *train* split (never on test), then report test with the winner.

    python bench/tune_fusion.py ../shared/data/scifact --workdir /tmp/scifact-work

Prints nDCG@10 on train for every fusion setting in the grid, the best one, and its test score.
Retrieval runs once per query and split; only the fusion step is repeated per setting.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from paperfeed.search.eval_runner import prepare
from paperfeed.search.evaluate import load_beir, ndcg_at_k
from paperfeed.search.hybrid import Fusion, SearchService, fuse
from paperfeed.search.query import parse_query

Ranking = dict[str, list[tuple[str, float]]]  # query id -> (paper id, score), best first


def retrieve(service: SearchService, queries: dict[str, str], depth: int = 100) -> tuple[Ranking, Ranking]:
    sem_parts = service._semantic()
    assert sem_parts is not None, "vectors missing: run the eval once to build them"
    encoder, vectors = sem_parts
    kw: Ranking = {}
    sem: Ranking = {}
    for qid, text in queries.items():
        pq = parse_query(text)
        kw[qid] = [(h.paper_id, h.score) for h in service.lexical.search(pq, limit=depth).hits]
        sem[qid] = vectors.search(encoder.encode_query(pq.text), k=depth) if pq.text.strip() else []
    return kw, sem


def run_for(kw: Ranking, sem: Ranking, fusion: Fusion) -> dict[str, list[str]]:
    return {qid: [p for p, _ in fuse(kw[qid], sem[qid], fusion)[:100]] for qid in kw}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("directory", type=Path)
    ap.add_argument("--workdir", type=Path, required=True)
    args = ap.parse_args()
    settings, db = prepare(args.directory, args.workdir, progress=False)
    service = SearchService(settings, db)
    grid = [Fusion("score", w / 20) for w in range(0, 21)] + [
        Fusion("rrf", w / 10, k) for w in range(1, 10) for k in (10, 30, 60)
    ]
    _c, train_q, train_qrels = load_beir(args.directory, "train")
    kw, sem = retrieve(service, train_q)
    scored = []
    for f in grid:
        s = ndcg_at_k(run_for(kw, sem, f), train_qrels, 10)
        scored.append((s, f))
        print(f"train nDCG@10 {s:.4f}  {f}")
    best_score, best = max(scored, key=lambda t: t[0])
    print(f"\nbest on train: {best}  nDCG@10 {best_score:.4f}")
    _c, test_q, test_qrels = load_beir(args.directory, "test")
    kw_t, sem_t = retrieve(service, test_q)
    print(f"test with it:  nDCG@10 {ndcg_at_k(run_for(kw_t, sem_t, best), test_qrels, 10):.4f}")
    empty: Ranking = {q: [] for q in kw_t}
    kw_only = ndcg_at_k(run_for(kw_t, empty, Fusion("score", 0.0)), test_qrels, 10)
    sem_only = ndcg_at_k(run_for(empty, sem_t, Fusion("score", 1.0)), test_qrels, 10)
    print(f"test keyword:  nDCG@10 {kw_only:.4f}")
    print(f"test semantic: nDCG@10 {sem_only:.4f}")


if __name__ == "__main__":
    main()
